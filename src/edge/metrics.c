/*
 * Request metrics. Each worker counts into blocks of its own, one per
 * environment and slot, with relaxed atomics (no contention: no other thread
 * writes them); a scrape or edge_slot_stats sums the blocks. Nothing on the
 * request path is shared between workers.
 *
 * A duration is counted twice: in a log-linear histogram (base's hist), from
 * which percentiles come within 0.78 %, and in exact counters at Prometheus's
 * classic bounds, which fall inside the histogram's buckets and so could not
 * be read off it exactly.
 */
#include "edge/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint64_t edge_classic_us[EDGE_CLASSIC_BOUNDS] = {
    5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
static const char *const classic_le[EDGE_CLASSIC_BOUNDS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"};

#define ADD(field, v) atomic_fetch_add_explicit(&(field), (v), memory_order_relaxed)
#define GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

const char *edge_slot_name(int slot)
{
    static const char *const names[EDGE_SLOTS] = {"blue", "green", "direct"};
    return slot >= 0 && slot < EDGE_SLOTS ? names[slot] : NULL;
}

/* The first allocation for a (worker, site, slot): once per process, off the
 * steady state. The release store pairs with the readers' acquire loads, so a
 * reader that sees the pointer sees a zeroed block. */
static __attribute__((noinline)) struct slot_stats *slot_block_new(_Atomic(struct slot_stats *) *p)
{
    struct slot_stats *s = xcalloc_aligned(1, sizeof(*s), CACHELINE);
    atomic_store_explicit(p, s, memory_order_release);
    return s;
}

void metrics_observe(struct edge *e, int worker, int site, int slot, int status, uint64_t bytes,
                     int64_t us)
{
    if ((unsigned)site >= EDGE_MAX_SITES)
        return;
    /* The one test every response makes: a regressed 404 (respond marks it, docs/edge.md
     * "Regressed 404s") is told apart only behind it. */
    int regressed = 0;
    if (__builtin_expect((unsigned)slot >= EDGE_SLOTS, 0)) {
        regressed = slot >= EDGE_TAG_REGRESSED && slot < EDGE_TAG_REGRESSED + EDGE_SLOTS;
        slot = regressed ? slot - EDGE_TAG_REGRESSED : EDGE_SLOT_DIRECT;
    }
    _Atomic(struct slot_stats *) *p = &e->stats[worker].slot[site][slot];
    /* Relaxed: this worker is the only writer of *p. */
    struct slot_stats *s = atomic_load_explicit(p, memory_order_relaxed);
    if (__builtin_expect(s == NULL, 0))
        s = slot_block_new(p);
    if (__builtin_expect(regressed, 0))
        ADD(s->regressed_404, 1);
    unsigned cls = (unsigned)(status / 100 - 1);
    if (cls > 4)
        cls = 4;
    uint64_t u = us > 0 ? (uint64_t)us : 0;
    /* Most requests end at the first bound (5 ms), so this is one comparison. */
    unsigned k = 0;
    while (k < EDGE_CLASSIC_BOUNDS && u > edge_classic_us[k])
        k++;
    ADD(s->requests[cls], 1);
    ADD(s->bytes, bytes);
    ADD(s->duration_sum_us, u);
    ADD(s->classic[k], 1);
    hist_record(&s->duration_us, u);
}

/* Adds every worker's block of (site, slot) into out, which starts zeroed. */
static void slot_sum(struct edge *e, int site, int slot, struct edge_slot_stats *out)
{
    for (int w = 0; w < e->nworkers; w++) {
        const struct slot_stats *s =
            atomic_load_explicit(&e->stats[w].slot[site][slot], memory_order_acquire);
        if (!s)
            continue;
        for (int c = 0; c < 5; c++)
            out->requests[c] += GET(s->requests[c]);
        out->bytes += GET(s->bytes);
        out->duration_sum_us += GET(s->duration_sum_us);
        for (int k = 0; k <= EDGE_CLASSIC_BOUNDS; k++)
            out->classic[k] += GET(s->classic[k]);
        out->regressed_404 += GET(s->regressed_404);
        hist_merge(&out->duration_us, &s->duration_us);
    }
}

/* The site named name, or -1. Names are written once, under err_lock. */
static int site_find(struct edge *e, const char *name)
{
    int site = -1;
    pthread_mutex_lock(&e->err_lock);
    for (int i = 0; i < EDGE_MAX_SITES && site < 0; i++)
        if (e->sites[i].name[0] && !strcmp(e->sites[i].name, name))
            site = i;
    pthread_mutex_unlock(&e->err_lock);
    return site;
}

int edge_slot_stats(struct edge *e, const char *env, int slot, struct edge_slot_stats *out,
                    struct sw_err *err)
{
    if (!edge_slot_name(slot))
        return sw_err_set(err, SW_EINVAL, "no slot %d (0 blue, 1 green, 2 direct)", slot);
    int site = site_find(e, env);
    if (site < 0)
        return sw_err_set(err, SW_ENOTFOUND, "no environment '%s' is served", env);
    memset(out, 0, sizeof(*out));
    slot_sum(e, site, slot, out);
    pthread_mutex_lock(&e->err_lock);
    out->live = e->live_slot[site] == slot;
    out->regressed_404_on = atomic_load(&e->sites[site].regressed_404);
    memcpy(out->release, e->slot_release[site][slot], sizeof(out->release));
    pthread_mutex_unlock(&e->err_lock);
    return 0;
}

void metrics_free(struct edge *e)
{
    for (int w = 0; e->stats && w < e->nworkers; w++)
        for (int i = 0; i < EDGE_MAX_SITES; i++)
            for (int a = 0; a < EDGE_SLOTS; a++)
                free(atomic_load(&e->stats[w].slot[i][a]));
}

/* ---- /_slipway/latency ------------------------------------------------------------------ */

/* The value of key in a query ("env=dev&slot=blue"), taken as it is (no
 * percent-decoding: names and slots need none, and a value that would is no
 * name); NULL when absent or longer than max bytes. */
static int query_get(const char *q, size_t len, const char *key, char *out, size_t max)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && q[j] != '&')
            j++;
        if (j - i > klen && !memcmp(q + i, key, klen) && q[i + klen] == '=') {
            size_t vlen = j - i - klen - 1;
            if (vlen >= max)
                return -1;
            memcpy(out, q + i + klen + 1, vlen);
            out[vlen] = '\0';
            return 0;
        }
        i = j + 1;
    }
    return -1;
}

int metrics_latency(struct edge *e, const char *query, size_t len, struct buf *b)
{
    char env[64], slotname[8];
    int slot = -1;
    if (query_get(query, len, "env", env, sizeof(env)) < 0 || !env[0]) {
        buf_adds(b, "{\"error\":\"name an environment: ?env=NAME&slot=blue|green|direct\"}\n");
        return 400;
    }
    if (query_get(query, len, "slot", slotname, sizeof(slotname)) == 0)
        for (int a = 0; a < EDGE_SLOTS; a++)
            if (!strcmp(slotname, edge_slot_name(a)))
                slot = a;
    if (slot < 0) {
        buf_adds(b, "{\"error\":\"slot must be blue, green or direct\"}\n");
        return 400;
    }
    struct edge_slot_stats *st = xmalloc(sizeof(*st));
    int status = 200;
    if (edge_slot_stats(e, env, slot, st, NULL) < 0) {
        buf_adds(b, "{\"error\":\"no such environment\"}\n");
        status = 404;
        goto out;
    }
    /* env matched a served name, and names and release ids need no JSON escaping
     * (env_name_check, release_id_valid). */
    uint64_t n = hist_count(&st->duration_us);
    buf_addf(b, "{\"env\":\"%s\",\"slot\":\"%s\",\"live\":%s,\"release\":", env,
             edge_slot_name(slot), st->live ? "true" : "false");
    if (st->release[0])
        buf_addf(b, "\"%s\"", st->release);
    else
        buf_adds(b, "null");
    buf_addf(b, ",\"requests\":%llu,\"duration_sum_us\":%llu", (unsigned long long)n,
             (unsigned long long)st->duration_sum_us);
    buf_addf(b, ",\"regressed_404\":%llu,\"regressed_404_on\":%s",
             (unsigned long long)st->regressed_404, st->regressed_404_on ? "true" : "false");
    static const struct {
        const char *name;
        double q;
    } qs[] = {{"p50_us", 0.5}, {"p95_us", 0.95}, {"p99_us", 0.99}};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
        if (n)
            buf_addf(b, ",\"%s\":%llu", qs[i].name,
                     (unsigned long long)hist_quantile(&st->duration_us, qs[i].q));
        else
            buf_addf(b, ",\"%s\":null", qs[i].name);
    buf_adds(b, "}\n");
out:
    free(st);
    return status;
}

/* ---- the Prometheus exposition ---------------------------------------------------------- */

/* One zero 2xx row per environment even before traffic, so rate() and alert
 * rules have a series to work on: "direct", or "blue" for blue-green. */
static void render_slots(struct edge *e, struct buf *b, const int *used, const int *baseline)
{
    struct edge_slot_stats *st = xmalloc(sizeof(*st));
    struct buf req = BUF_INIT, dur = BUF_INIT, bytes = BUF_INIT, reg = BUF_INIT;
    for (int i = 0; i < EDGE_MAX_SITES; i++) {
        for (int a = 0; used[i] && a < EDGE_SLOTS; a++) {
            memset(st, 0, sizeof(*st));
            slot_sum(e, i, a, st);
            uint64_t n = 0;
            for (int k = 0; k <= EDGE_CLASSIC_BOUNDS; k++)
                n += st->classic[k];
            if (n == 0 && a != baseline[i])
                continue;
            const char *env = e->sites[i].name, *slot = edge_slot_name(a);
            for (int c = 0; c < 5; c++)
                if (st->requests[c] || c == 1)
                    buf_addf(&req,
                             "slipway_requests_total{env=\"%s\",slot=\"%s\",class=\"%dxx\"} %llu\n",
                             env, slot, c + 1, (unsigned long long)st->requests[c]);
            uint64_t cum = 0;
            for (int k = 0; k < EDGE_CLASSIC_BOUNDS; k++) {
                cum += st->classic[k];
                buf_addf(
                    &dur,
                    "slipway_request_duration_seconds_bucket{env=\"%s\",slot=\"%s\",le=\"%s\"} "
                    "%llu\n",
                    env, slot, classic_le[k], (unsigned long long)cum);
            }
            buf_addf(&dur,
                     "slipway_request_duration_seconds_bucket{env=\"%s\",slot=\"%s\",le=\"+Inf\"} "
                     "%llu\n"
                     "slipway_request_duration_seconds_sum{env=\"%s\",slot=\"%s\"} %llu.%06llu\n"
                     "slipway_request_duration_seconds_count{env=\"%s\",slot=\"%s\"} %llu\n",
                     env, slot, (unsigned long long)n, env, slot,
                     (unsigned long long)(st->duration_sum_us / 1000000),
                     (unsigned long long)(st->duration_sum_us % 1000000), env, slot,
                     (unsigned long long)n);
            buf_addf(&bytes, "slipway_response_bytes_total{env=\"%s\",slot=\"%s\"} %llu\n", env,
                     slot, (unsigned long long)st->bytes);
            buf_addf(&reg, "slipway_regressed_404_total{env=\"%s\",slot=\"%s\"} %llu\n", env, slot,
                     (unsigned long long)st->regressed_404);
        }
    }
    buf_adds(b, "# HELP slipway_requests_total Requests answered, by environment, slot and "
                "status class.\n# TYPE slipway_requests_total counter\n");
    buf_add(b, req.data, req.len);
    buf_adds(b, "# HELP slipway_request_duration_seconds Time from a complete request head to "
                "the last byte handed to the kernel.\n"
                "# TYPE slipway_request_duration_seconds histogram\n");
    buf_add(b, dur.data, dur.len);
    buf_adds(b, "# HELP slipway_response_bytes_total Response bytes sent (headers and bodies).\n"
                "# TYPE slipway_response_bytes_total counter\n");
    buf_add(b, bytes.data, bytes.len);
    buf_adds(b, "# HELP slipway_regressed_404_total 404 answers (also in slipway_requests_total's "
                "4xx) for a path the release live before this one served with 200: a file the "
                "release lost. Counted where the environment's errors: regressed_404 is on.\n"
                "# TYPE slipway_regressed_404_total counter\n");
    buf_add(b, reg.data, reg.len);
    buf_free(&req);
    buf_free(&reg);
    buf_free(&dur);
    buf_free(&bytes);
    free(st);
}

void metrics_render(struct edge *e, struct buf *b)
{
    int used[EDGE_MAX_SITES];
    int baseline[EDGE_MAX_SITES];
    pthread_mutex_lock(&e->err_lock);
    for (int i = 0; i < EDGE_MAX_SITES; i++) {
        baseline[i] = atomic_load(&e->sites[i].strategy) == STRATEGY_BLUE_GREEN ? EDGE_SLOT_BLUE
                                                                                : EDGE_SLOT_DIRECT;
        used[i] = e->sites[i].name[0] != '\0';
    }
    pthread_mutex_unlock(&e->err_lock);
    render_slots(e, b, used, baseline);
    buf_adds(b, "# HELP slipway_switches_total Live releases made active by this process.\n"
                "# TYPE slipway_switches_total counter\n");
    for (int i = 0; i < EDGE_MAX_SITES; i++)
        if (used[i])
            buf_addf(b, "slipway_switches_total{env=\"%s\"} %lu\n", e->sites[i].name,
                     GET(e->switches[i]));
    buf_adds(b, "# HELP slipway_release_load_failures_total Failed attempts to load an "
                "environment's release (it keeps serving the one it has).\n"
                "# TYPE slipway_release_load_failures_total counter\n");
    for (int i = 0; i < EDGE_MAX_SITES; i++)
        if (used[i])
            buf_addf(b, "slipway_release_load_failures_total{env=\"%s\"} %lu\n", e->sites[i].name,
                     GET(e->load_failures[i]));
    buf_adds(b, "# HELP slipway_release_load_ok Whether the newest attempt to load each "
                "environment's release succeeded (0 while it fails).\n"
                "# TYPE slipway_release_load_ok gauge\n");
    for (int i = 0; i < EDGE_MAX_SITES; i++)
        if (used[i] && atomic_load(&e->sites[i].active))
            buf_addf(b, "slipway_release_load_ok{env=\"%s\"} %d\n", e->sites[i].name,
                     atomic_load(&e->sites[i].load_failure) == LOAD_OK);
    buf_adds(b, "# HELP slipway_release_info The release each listener serves.\n"
                "# TYPE slipway_release_info gauge\n");
    for (int i = 0; i < EDGE_MAX_SITES; i++) {
        if (!used[i] || !atomic_load(&e->sites[i].active))
            continue;
        struct table *lt = atomic_load(&e->sites[i].live);
        struct table *pt = atomic_load(&e->sites[i].preview);
        if (lt)
            buf_addf(b, "slipway_release_info{env=\"%s\",listener=\"live\",release=\"%s\"} 1\n",
                     e->sites[i].name, lt->release_id);
        if (pt)
            buf_addf(b, "slipway_release_info{env=\"%s\",listener=\"preview\",release=\"%s\"} 1\n",
                     e->sites[i].name, pt->release_id);
    }
    struct http_stats hs;
    http_server_stats(e->http, &hs);
    buf_addf(b,
             "# HELP slipway_open_connections Client connections open now.\n"
             "# TYPE slipway_open_connections gauge\nslipway_open_connections %ld\n"
             "# HELP slipway_connections_accepted_total Connections accepted.\n"
             "# TYPE slipway_connections_accepted_total counter\n"
             "slipway_connections_accepted_total %lu\n"
             "# HELP slipway_connections_rejected_total Connections refused with 503 over the "
             "connection limit.\n"
             "# TYPE slipway_connections_rejected_total counter\n"
             "slipway_connections_rejected_total %lu\n"
             "# HELP slipway_timeouts_total Connections closed by the header or idle timeout.\n"
             "# TYPE slipway_timeouts_total counter\nslipway_timeouts_total %lu\n"
             "# HELP slipway_start_time_seconds When this process started.\n"
             "# TYPE slipway_start_time_seconds gauge\nslipway_start_time_seconds %.3f\n",
             hs.open, hs.accepted, hs.rejected, hs.timeouts, (double)e->started_ms / 1000);
    buf_adds(b, "# HELP slipway_worker_connections_accepted_total Connections each worker "
                "accepted.\n"
                "# TYPE slipway_worker_connections_accepted_total counter\n");
    for (int i = 0; i < http_server_workers(e->http); i++)
        buf_addf(b, "slipway_worker_connections_accepted_total{worker=\"%d\"} %lu\n", i,
                 http_server_worker_accepted(e->http, i));
    buf_addf(b,
             "# HELP slipway_connections_by_cpu 1 while new connections go to the worker of the "
             "CPU that received them (--balance cpu), 0 while the kernel spreads them by hash.\n"
             "# TYPE slipway_connections_by_cpu gauge\nslipway_connections_by_cpu %d\n"
             "# HELP slipway_connections_unsteered_total Times one busy worker beside idle cores "
             "sent new connections back to the hash for 10 minutes.\n"
             "# TYPE slipway_connections_unsteered_total counter\n"
             "slipway_connections_unsteered_total %lu\n",
             hs.by_cpu, hs.unsteered);
    buf_addf(b,
             "# HELP slipway_cache_bytes Bodies held in the local cache of large bodies.\n"
             "# TYPE slipway_cache_bytes gauge\nslipway_cache_bytes %llu\n"
             "# HELP slipway_cache_max_bytes The bound of the local cache (--cache-max).\n"
             "# TYPE slipway_cache_max_bytes gauge\nslipway_cache_max_bytes %llu\n",
             (unsigned long long)blob_cache_bytes(e->cache),
             (unsigned long long)blob_cache_max(e->cache));
    struct store_status ss;
    store_status(e->o->store, &ss);
    buf_addf(b,
             "# HELP slipway_store_up 1 while the store answers, 0 while it cannot be reached.\n"
             "# TYPE slipway_store_up gauge\nslipway_store_up %d\n"
             "# HELP slipway_store_errors_total Store operations that failed because the store "
             "could not be reached or refused them.\n"
             "# TYPE slipway_store_errors_total counter\nslipway_store_errors_total %llu\n",
             !ss.degraded, (unsigned long long)ss.failures);
    /* What the caller registered (slipway serve: the process and host figures). */
    pthread_mutex_lock(&e->extra_lock);
    if (e->extra_fn)
        e->extra_fn(b, e->extra_arg);
    pthread_mutex_unlock(&e->extra_lock);
}
