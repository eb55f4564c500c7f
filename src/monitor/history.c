/*
 * The monitor's history: a day of 10-second steps per environment and slot,
 * in memory of a size fixed when it is made, and its file.
 *
 * The one idea: steps are a ring shared by every series. A step holds the
 * time, its length and the host figures; each series (an environment's slot)
 * holds, at the same ring index, that slot's figures for the step and whether
 * it was there at all (present) and live. So appending a step writes one
 * column across every series, a series that appears later is absent from the
 * steps before it, and a series absent from every step kept is a free place.
 *
 * The file is read back by a later serve and by `slipway metrics` as hostile
 * input: another process (or a disk) may have written anything there. Every
 * count is bounded before anything is allocated, the exact length is known
 * before the body is read, and every value is checked against the range the
 * writer keeps; a SHA-256 at the end catches the accidents (a torn or
 * truncated write, a flipped bit) that still look well-formed.
 */
#include "monitor/monitor.h"
#include "deploy/deploy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { PRESENT = 1, LIVE = 2 };

#define MAGIC "SLIPWAYH"
#define HEADER_LEN 32
#define STEP_LEN 41
#define POINT_LEN 21
#define SUM_LEN SHA256_HEX_LEN
#define NAME_MAX_LEN 63

struct step {
    int64_t at_ms;
    uint32_t dur_ms;
    struct monitor_host_figures host;
};

struct series {
    char env[NAME_MAX_LEN + 1];
    int slot;
    uint64_t last_seq; /* the newest step it is present in; 0: none */
    uint8_t *flags;    /* [cap]: PRESENT, LIVE */
    uint32_t *v[5];    /* [cap] each: requests, errors, p50, p95, p99 */
};

struct monitor_history {
    int64_t step_ms;
    size_t cap, head, n; /* step i (0 the oldest) is at (head + i) % cap */
    uint64_t seq;        /* steps ever appended: the newest step's number */
    struct step *steps;
    struct series *series[MONITOR_HISTORY_SERIES_MAX];
    size_t nseries;
};

struct monitor_history *monitor_history_new(size_t steps, int64_t step_ms)
{
    if (steps < 1 || steps > MONITOR_HISTORY_STEPS || step_ms < 1 ||
        step_ms > MONITOR_HISTORY_STEP_MAX_MS)
        return NULL;
    struct monitor_history *h = xcalloc(1, sizeof(*h));
    h->step_ms = step_ms;
    h->cap = steps;
    h->steps = xcalloc(steps, sizeof(*h->steps));
    return h;
}

static void series_free(struct series *s)
{
    if (s) {
        free(s->v[0]); /* the block */
        free(s);
    }
}

void monitor_history_free(struct monitor_history *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nseries; i++)
        series_free(h->series[i]);
    free(h->steps);
    free(h);
}

int64_t monitor_history_step_ms(const struct monitor_history *h)
{
    return h->step_ms;
}

size_t monitor_history_count(const struct monitor_history *h)
{
    return h->n;
}

static size_t at(const struct monitor_history *h, size_t i)
{
    return (h->head + i) % h->cap;
}

int64_t monitor_history_newest_ms(const struct monitor_history *h)
{
    return h->n ? h->steps[at(h, h->n - 1)].at_ms : 0;
}

/* One block per series: the five columns, then the flags, so a series is one
 * allocation of cap * 21 bytes with every column aligned. */
static struct series *series_new(size_t cap)
{
    struct series *s = xcalloc(1, sizeof(*s));
    uint32_t *col = xcalloc(cap, 5 * sizeof(uint32_t) + 1);
    for (int k = 0; k < 5; k++)
        s->v[k] = col + (size_t)k * cap;
    s->flags = (uint8_t *)(col + 5 * cap);
    return s;
}

static int name_ok(const char *env)
{
    return env && env_name_check(env, NULL) == 0;
}

static struct series *series_find(const struct monitor_history *h, const char *env, int slot)
{
    for (size_t i = 0; i < h->nseries; i++)
        if (h->series[i]->slot == slot && !strcmp(h->series[i]->env, env))
            return h->series[i];
    return NULL;
}

/* A series absent from every kept step holds nothing: its place is free. */
static int series_empty(const struct monitor_history *h, const struct series *s)
{
    return s->last_seq == 0 || s->last_seq + h->n <= h->seq;
}

static struct series *series_place(struct monitor_history *h, const char *env, int slot)
{
    struct series *s = NULL;
    for (size_t i = 0; i < h->nseries && !s; i++)
        if (series_empty(h, h->series[i]))
            s = h->series[i];
    if (s) {
        memset(s->flags, 0, h->cap);
        for (int k = 0; k < 5; k++)
            memset(s->v[k], 0, h->cap * sizeof(uint32_t));
    } else {
        if (h->nseries == MONITOR_HISTORY_SERIES_MAX)
            return NULL;
        s = h->series[h->nseries++] = series_new(h->cap);
    }
    snprintf(s->env, sizeof(s->env), "%s", env);
    s->slot = slot;
    s->last_seq = 0;
    return s;
}

static uint32_t clamp32(uint64_t v, uint32_t max)
{
    return v > max ? max : (uint32_t)v;
}

static void host_clamp(struct monitor_host_figures *d, const struct monitor_host_figures *s)
{
    memset(d, 0, sizeof(*d));
    if (!s)
        return;
    d->ok = s->ok & MONITOR_HOST_ALL;
    if (d->ok & MONITOR_HOST_CPU)
        d->host_cpu_ppm = clamp32(s->host_cpu_ppm, MONITOR_PPM_MAX);
    if (d->ok & MONITOR_HOST_MEM)
        d->host_mem_ppm = clamp32(s->host_mem_ppm, MONITOR_PPM_MAX);
    if (d->ok & MONITOR_HOST_DISK)
        d->disk_io_bps = s->disk_io_bps;
    if (d->ok & MONITOR_PROC_CPU)
        d->proc_cpu_milli = clamp32(s->proc_cpu_milli, MONITOR_PROC_CPU_MAX);
    if (d->ok & MONITOR_PROC_RSS)
        d->proc_rss_bytes = s->proc_rss_bytes;
}

/* The figures as the file requires them: errors within requests, ordered
 * percentiles within the histogram's range, nothing without requests. */
static void slot_clamp(struct monitor_slot_figures *d, const struct monitor_slot_figures *s)
{
    memset(d, 0, sizeof(*d));
    d->requests = s->requests;
    if (!d->requests)
        return;
    d->errors = s->errors < d->requests ? s->errors : d->requests;
    d->p50_us = clamp32(s->p50_us, (uint32_t)HIST_LIMIT);
    d->p95_us = clamp32(s->p95_us, (uint32_t)HIST_LIMIT);
    d->p99_us = clamp32(s->p99_us, (uint32_t)HIST_LIMIT);
    if (d->p95_us < d->p50_us)
        d->p95_us = d->p50_us;
    if (d->p99_us < d->p95_us)
        d->p99_us = d->p95_us;
}

static void series_set(struct series *s, size_t idx, int live, const struct monitor_slot_figures *f)
{
    struct monitor_slot_figures c;
    slot_clamp(&c, f);
    s->flags[idx] = PRESENT | (live ? LIVE : 0);
    s->v[0][idx] = c.requests;
    s->v[1][idx] = c.errors;
    s->v[2][idx] = c.p50_us;
    s->v[3][idx] = c.p95_us;
    s->v[4][idx] = c.p99_us;
}

/* Makes room for a step and returns its ring index: every series absent from it. */
static size_t step_new(struct monitor_history *h, int64_t at_ms, int64_t dur_ms,
                       const struct monitor_host_figures *host)
{
    int64_t newest = monitor_history_newest_ms(h);
    if (h->n == h->cap) {
        h->head = (h->head + 1) % h->cap;
        h->n--;
    }
    size_t idx = at(h, h->n);
    h->n++;
    h->seq++;
    if (at_ms <= newest)
        at_ms = newest + 1;
    if (at_ms < 1)
        at_ms = 1;
    h->steps[idx].at_ms = at_ms;
    h->steps[idx].dur_ms =
        (uint32_t)(dur_ms < 0                             ? 0
                   : dur_ms > MONITOR_HISTORY_STEP_MAX_MS ? MONITOR_HISTORY_STEP_MAX_MS
                                                          : dur_ms);
    host_clamp(&h->steps[idx].host, host);
    for (size_t i = 0; i < h->nseries; i++) {
        struct series *s = h->series[i];
        s->flags[idx] = 0;
        for (int k = 0; k < 5; k++)
            s->v[k][idx] = 0;
    }
    return idx;
}

size_t monitor_history_append(struct monitor_history *h, int64_t at_ms, int64_t dur_ms,
                              const struct monitor_host_figures *host,
                              const struct monitor_history_entry *e, size_t n)
{
    size_t idx = step_new(h, at_ms, dur_ms, host), left_out = 0;
    for (size_t i = 0; i < n; i++) {
        if (!name_ok(e[i].env) || !edge_slot_name(e[i].slot)) {
            left_out++;
            continue;
        }
        struct series *s = series_find(h, e[i].env, e[i].slot);
        if (!s)
            s = series_place(h, e[i].env, e[i].slot);
        if (!s) {
            left_out++;
            continue;
        }
        series_set(s, idx, e[i].live, &e[i].s);
        s->last_seq = h->seq;
    }
    return left_out;
}

static void point_fill(const struct monitor_history *h, const struct series *s, size_t idx,
                       struct monitor_point *p)
{
    p->at_ms = h->steps[idx].at_ms;
    p->dur_ms = h->steps[idx].dur_ms;
    p->slot = s->slot;
    p->live = (s->flags[idx] & LIVE) != 0;
    p->s.requests = s->v[0][idx];
    p->s.errors = s->v[1][idx];
    p->s.p50_us = s->v[2][idx];
    p->s.p95_us = s->v[3][idx];
    p->s.p99_us = s->v[4][idx];
    p->host = h->steps[idx].host;
}

size_t monitor_history_points(const struct monitor_history *h, const char *env,
                              enum monitor_pick pick, int64_t since_ms, struct monitor_point **out)
{
    const struct series *mine[EDGE_SLOTS];
    size_t nmine = 0, n = 0;
    *out = NULL;
    for (size_t i = 0; i < h->nseries && nmine < EDGE_SLOTS; i++)
        if (!strcmp(h->series[i]->env, env) && !series_empty(h, h->series[i]))
            mine[nmine++] = h->series[i];
    if (!nmine)
        return 0;
    struct monitor_point *v = NULL;
    for (size_t i = 0; i < h->n; i++) {
        size_t idx = at(h, i);
        if (h->steps[idx].at_ms < since_ms)
            continue;
        /* The first series in the pick: a switch read between two slots'
         * readings may show both (or neither) live for one step. */
        for (size_t k = 0; k < nmine; k++) {
            uint8_t f = mine[k]->flags[idx];
            if (!(f & PRESENT) || ((f & LIVE) != 0) != (pick == MONITOR_PICK_LIVE))
                continue;
            if (!v)
                v = xcalloc(h->n - i, sizeof(*v));
            point_fill(h, mine[k], idx, &v[n++]);
            break;
        }
    }
    *out = v;
    return n;
}

int monitor_history_has(const struct monitor_history *h, const char *env)
{
    for (size_t i = 0; i < h->nseries; i++)
        if (!strcmp(h->series[i]->env, env) && !series_empty(h, h->series[i]))
            return 1;
    return 0;
}

int monitor_history_series(const struct monitor_history *h, size_t i, const char **env, int *slot)
{
    for (size_t k = 0; k < h->nseries; k++) {
        if (series_empty(h, h->series[k]))
            continue;
        if (i-- == 0) {
            *env = h->series[k]->env;
            *slot = h->series[k]->slot;
            return 0;
        }
    }
    return -1;
}

/* ---- the file ---------------------------------------------------------------------- */

/*
 *   0  "SLIPWAYH"                       magic
 *   8  u32 version (1)
 *  12  u32 steps (<= MONITOR_HISTORY_STEPS)
 *  16  u32 series (<= MONITOR_HISTORY_SERIES_MAX)
 *  20  u32 0                            reserved
 *  24  i64 step_ms
 *  32  steps x 41 bytes, oldest first:  i64 at_ms, u32 dur_ms, u8 ok, u32 host_cpu_ppm,
 *                                       u32 host_mem_ppm, u64 disk_io_bps,
 *                                       u32 proc_cpu_milli, u64 proc_rss_bytes
 *      series x (u8 name length, name, u8 slot, steps x 21 bytes: u8 flags,
 *                u32 requests, errors, p50_us, p95_us, p99_us)
 *      64 bytes: the SHA-256 of everything before, in lowercase hex
 * Every integer little-endian.
 */

static void put(struct buf *b, uint64_t v, int bytes)
{
    unsigned char c[8];
    for (int i = 0; i < bytes; i++)
        c[i] = (unsigned char)(v >> (8 * i));
    buf_add(b, c, (size_t)bytes);
}

void monitor_history_encode(const struct monitor_history *h, struct buf *out)
{
    size_t start = out->len, nseries = 0;
    for (size_t i = 0; i < h->nseries; i++)
        nseries += !series_empty(h, h->series[i]);
    buf_add(out, MAGIC, 8);
    put(out, MONITOR_HISTORY_VERSION, 4);
    put(out, h->n, 4);
    put(out, nseries, 4);
    put(out, 0, 4);
    put(out, (uint64_t)h->step_ms, 8);
    for (size_t i = 0; i < h->n; i++) {
        const struct step *s = &h->steps[at(h, i)];
        put(out, (uint64_t)s->at_ms, 8);
        put(out, s->dur_ms, 4);
        put(out, s->host.ok, 1);
        put(out, s->host.host_cpu_ppm, 4);
        put(out, s->host.host_mem_ppm, 4);
        put(out, s->host.disk_io_bps, 8);
        put(out, s->host.proc_cpu_milli, 4);
        put(out, s->host.proc_rss_bytes, 8);
    }
    for (size_t k = 0; k < h->nseries; k++) {
        const struct series *s = h->series[k];
        if (series_empty(h, s))
            continue;
        size_t nlen = strlen(s->env);
        put(out, nlen, 1);
        buf_add(out, s->env, nlen);
        put(out, (uint64_t)s->slot, 1);
        for (size_t i = 0; i < h->n; i++) {
            size_t idx = at(h, i);
            put(out, s->flags[idx], 1);
            for (int c = 0; c < 5; c++)
                put(out, s->v[c][idx], 4);
        }
    }
    char sum[SHA256_HEX_LEN + 1];
    sha256_hex(out->data + start, out->len - start, sum);
    buf_add(out, sum, SUM_LEN);
}

/* A reader of the file's bytes: every read is bounded by what is left. */
struct rd {
    const unsigned char *p;
    size_t left;
};

static uint64_t get(struct rd *r, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += bytes;
    r->left -= (size_t)bytes;
    return v;
}

/* Reads one step (the caller checked there are STEP_LEN bytes); 0 or why not. */
static const char *step_read(struct rd *r, struct step *s)
{
    memset(s, 0, sizeof(*s)); /* padding too: steps are compared and copied whole */
    int64_t t = (int64_t)get(r, 8);
    s->at_ms = t;
    s->dur_ms = (uint32_t)get(r, 4);
    s->host.ok = (unsigned)get(r, 1);
    s->host.host_cpu_ppm = (uint32_t)get(r, 4);
    s->host.host_mem_ppm = (uint32_t)get(r, 4);
    s->host.disk_io_bps = get(r, 8);
    s->host.proc_cpu_milli = (uint32_t)get(r, 4);
    s->host.proc_rss_bytes = get(r, 8);
    if (t < 1)
        return "a step's time is not after 1970";
    if (s->dur_ms > MONITOR_HISTORY_STEP_MAX_MS)
        return "a step lasts more than a day";
    unsigned ok = s->host.ok;
    if (ok & ~(unsigned)MONITOR_HOST_ALL)
        return "a step names host figures this version does not know";
    if (s->host.host_cpu_ppm > MONITOR_PPM_MAX || s->host.host_mem_ppm > MONITOR_PPM_MAX)
        return "a host ratio is above 1";
    if (s->host.proc_cpu_milli > MONITOR_PROC_CPU_MAX)
        return "the process CPU is out of range";
    if ((!(ok & MONITOR_HOST_CPU) && s->host.host_cpu_ppm) ||
        (!(ok & MONITOR_HOST_MEM) && s->host.host_mem_ppm) ||
        (!(ok & MONITOR_HOST_DISK) && s->host.disk_io_bps) ||
        (!(ok & MONITOR_PROC_CPU) && s->host.proc_cpu_milli) ||
        (!(ok & MONITOR_PROC_RSS) && s->host.proc_rss_bytes))
        return "a host figure marked missing has a value";
    return NULL;
}

static const char *point_read(struct rd *r, struct series *s, size_t idx)
{
    uint8_t f = (uint8_t)get(r, 1);
    uint32_t v[5];
    for (int c = 0; c < 5; c++)
        v[c] = (uint32_t)get(r, 4);
    if (f & ~(PRESENT | LIVE))
        return "a point has unknown flags";
    if ((f & LIVE) && !(f & PRESENT))
        return "a point is live but absent";
    if (!(f & PRESENT) && (v[0] | v[1] | v[2] | v[3] | v[4]))
        return "an absent point has values";
    if (v[1] > v[0])
        return "a point has more errors than requests";
    if (!v[0] && (v[2] | v[3] | v[4]))
        return "a point without requests has percentiles";
    if (v[2] > v[3] || v[3] > v[4] || v[4] > HIST_LIMIT)
        return "a point's percentiles are out of order or range";
    if (idx != (size_t)-1) {
        s->flags[idx] = f;
        for (int c = 0; c < 5; c++)
            s->v[c][idx] = v[c];
    }
    return NULL;
}

int monitor_history_decode(const char *data, size_t len, const char *name, int64_t step_ms,
                           size_t steps, struct monitor_history **out, struct sw_err *err)
{
    struct monitor_history *h = NULL;
    const char *why = NULL;
    char detail[160];
    struct rd r = {(const unsigned char *)data, len};
    *out = NULL;

    if (len < HEADER_LEN + SUM_LEN || memcmp(data, MAGIC, 8) != 0) {
        why = len < 8 || memcmp(data, MAGIC, 8) != 0 ? "not a slipway monitor history"
                                                     : "truncated (shorter than its header)";
        goto out;
    }
    r.p += 8;
    r.left -= 8 + SUM_LEN; /* the checksum is not body */
    uint32_t version = (uint32_t)get(&r, 4);
    uint32_t nsteps = (uint32_t)get(&r, 4), nseries = (uint32_t)get(&r, 4);
    uint32_t reserved = (uint32_t)get(&r, 4);
    int64_t file_step = (int64_t)get(&r, 8);
    if (version != MONITOR_HISTORY_VERSION) {
        snprintf(detail, sizeof(detail), "version %u; this slipway reads version %d", version,
                 MONITOR_HISTORY_VERSION);
        why = detail;
        goto out;
    }
    if (nsteps > MONITOR_HISTORY_STEPS || nseries > MONITOR_HISTORY_SERIES_MAX || reserved) {
        why = "its header is out of range";
        goto out;
    }
    if (file_step < 1 || file_step > MONITOR_HISTORY_STEP_MAX_MS) {
        why = "its step is out of range";
        goto out;
    }
    /* The exact length, from the counts, before anything is read: the names are
     * the only variable part, each 1 to 63 bytes. */
    uint64_t fixed =
        (uint64_t)nsteps * STEP_LEN + (uint64_t)nseries * (2 + (uint64_t)nsteps * POINT_LEN);
    if (r.left < fixed + nseries || r.left > fixed + (uint64_t)nseries * NAME_MAX_LEN) {
        why = r.left < fixed + nseries ? "truncated" : "longer than its counts say";
        goto out;
    }
    char sum[SHA256_HEX_LEN + 1];
    sha256_hex(data, len - SUM_LEN, sum);
    if (memcmp(sum, data + len - SUM_LEN, SUM_LEN) != 0) {
        why = "checksum mismatch (a torn or damaged write)";
        goto out;
    }
    if (step_ms && file_step != step_ms) {
        snprintf(detail, sizeof(detail), "recorded with steps of %lld ms, not %lld ms",
                 (long long)file_step, (long long)step_ms);
        why = detail;
        goto out;
    }
    if (steps < 1 || steps > MONITOR_HISTORY_STEPS) {
        why = "asked for a history of no size";
        goto out;
    }
    h = monitor_history_new(steps, file_step);
    /* Keep the newest steps: the first skip ones of the file are read and
     * checked but not kept. */
    size_t skip = nsteps > steps ? nsteps - steps : 0;
    int64_t prev = 0;
    for (size_t i = 0; i < nsteps; i++) {
        struct step s;
        if ((why = step_read(&r, &s)))
            goto out;
        if (s.at_ms <= prev) {
            why = "its steps are not in time order";
            goto out;
        }
        prev = s.at_ms;
        if (i >= skip)
            h->steps[h->n++] = s;
    }
    h->seq = h->n;
    for (size_t k = 0; k < nseries; k++) {
        if (r.left < 1) {
            why = "truncated";
            goto out;
        }
        size_t nlen = (size_t)get(&r, 1);
        if (nlen < 1 || nlen > NAME_MAX_LEN || r.left < nlen + 1 + (size_t)nsteps * POINT_LEN) {
            why = "a series name is out of range";
            goto out;
        }
        char env[NAME_MAX_LEN + 1];
        memcpy(env, r.p, nlen);
        env[nlen] = '\0';
        r.p += nlen;
        r.left -= nlen;
        int slot = (int)get(&r, 1);
        if (memchr(env, '\0', nlen) || !name_ok(env)) {
            why = "a series is not named like an environment";
            goto out;
        }
        if (!edge_slot_name(slot)) {
            why = "a series names no slot";
            goto out;
        }
        if (series_find(h, env, slot)) {
            why = "a series is there twice";
            goto out;
        }
        struct series *s = h->series[h->nseries++] = series_new(h->cap);
        snprintf(s->env, sizeof(s->env), "%s", env);
        s->slot = slot;
        for (size_t i = 0; i < nsteps; i++) {
            size_t idx = i >= skip ? i - skip : (size_t)-1;
            if ((why = point_read(&r, s, idx)))
                goto out;
            if (idx != (size_t)-1 && (s->flags[idx] & PRESENT))
                s->last_seq = (uint64_t)idx + 1;
        }
    }
    if (r.left != 0)
        why = "longer than its counts say";
out:
    if (why) {
        monitor_history_free(h);
        return sw_err_set(err, SW_EINVAL, "%s: %s", name, why);
    }
    *out = h;
    return 0;
}

int monitor_history_save(const struct monitor_history *h, const char *path, struct sw_err *err)
{
    struct buf b = BUF_INIT;
    monitor_history_encode(h, &b);
    int rc = fs_write_atomic(path, b.data, b.len, err);
    buf_free(&b);
    return rc;
}

int monitor_history_load(const char *path, int64_t step_ms, size_t steps,
                         struct monitor_history **out, struct sw_err *err)
{
    struct stat st;
    char *data = NULL;
    int rc = 0;
    *out = NULL;
    /* O_NONBLOCK: a FIFO put there must not hang the reader; it is refused below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return sw_err_sys(err, errno, "%s", path);
    if (fstat(fd, &st) != 0) {
        rc = sw_err_sys(err, errno, "%s", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = sw_err_set(err, SW_EINVAL, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > MONITOR_HISTORY_FILE_MAX) {
        rc = sw_err_set(err, SW_EINVAL, "%s: %lld bytes, more than a history can hold", path,
                        (long long)st.st_size);
        goto out;
    }
    size_t len = (size_t)st.st_size, got = 0;
    data = xmalloc(len + 1);
    /* Read to the size seen; a file that grew meanwhile is read as it was
     * (its checksum then fails, or it is a complete older one). */
    while (got < len) {
        ssize_t n = read(fd, data + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = sw_err_sys(err, errno, "%s", path);
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    rc = monitor_history_decode(data, got, path, step_ms, steps, out, err);
out:
    free(data);
    close(fd);
    return rc;
}
