/*
 * The monitor thread of `slipway serve`: once a second it reads what every
 * environment's slots have served and the process and host figures, judges
 * each environment's live slot by the alert rules, and every ten seconds
 * writes a step of history.
 *
 * The one idea: everything read is cumulative. The edge's counters and
 * histograms, and /proc's CPU ticks and disk bytes, only grow, so a window of
 * any length is the difference of two readings, and consecutive steps of
 * history telescope: their requests add up exactly to what the edge counted.
 * The thread keeps the last MONITOR_WINDOW_TICKS + 1 readings of each slot
 * (a fixed ring: 0.7 MiB per environment and slot) and of the host, and the
 * workers never know it is there: reading the counters takes no lock they
 * take, and nothing here runs on a worker.
 *
 * Windows are read per physical slot (blue, green, direct), never per "live"
 * slot: after a switch the live slot's window is the new slot's own traffic,
 * so a bad release is judged on its requests alone from the first second.
 */
#include "monitor/sampler_internal.h"
#include "deploy/deploy.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ENVS_MAX 64   /* as many as the edge serves */
#define SEEN_MAX 1024 /* names remembered for zero_base; beyond, none is new */

/* ---- window arithmetic ------------------------------------------------------------- */

static size_t ring_at(size_t cap, size_t head, size_t i)
{
    return (head + i) % cap;
}

void window_init(struct window *w, size_t cap)
{
    w->cap = cap < 2 ? 2 : cap;
    w->n = w->head = 0;
    w->v = xcalloc(w->cap, sizeof(*w->v));
}

void window_free(struct window *w)
{
    free(w->v);
    w->v = NULL;
}

struct snap *window_push(struct window *w)
{
    if (w->n == w->cap) {
        w->head = (w->head + 1) % w->cap;
        w->n--;
    }
    return &w->v[ring_at(w->cap, w->head, w->n++)];
}

const struct snap *window_back(const struct window *w, size_t back)
{
    if (!w->n)
        return NULL;
    if (back > w->n - 1)
        back = w->n - 1;
    return &w->v[ring_at(w->cap, w->head, w->n - 1 - back)];
}

static uint64_t sub(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

void window_delta(const struct window *w, size_t back, struct hist *scratch,
                  struct window_delta *out)
{
    memset(out, 0, sizeof(*out));
    memset(scratch, 0, sizeof(*scratch));
    const struct snap *cur = window_back(w, 0), *base = window_back(w, back);
    if (!cur || cur == base)
        return;
    out->ms = cur->mono_ms - base->mono_ms;
    if (out->ms < 0)
        out->ms = 0;
    out->requests = sub(cur->requests, base->requests);
    out->errors = sub(cur->errors, base->errors);
    if (out->errors > out->requests)
        out->errors = out->requests;
    hist_sub(scratch, &cur->h, &base->h);
    /* the histogram, not the class counters, says how many durations there
     * are: the two are read a moment apart while workers count */
    out->durations = hist_count(scratch);
    if (out->durations) {
        out->p50_us = hist_quantile(scratch, 0.50);
        out->p95_us = hist_quantile(scratch, 0.95);
        out->p99_us = hist_quantile(scratch, 0.99);
    }
}

void host_snap_from(struct host_snap *s, const struct monitor_proc_reading *r, int64_t mono_ms)
{
    memset(s, 0, sizeof(*s));
    s->mono_ms = mono_ms;
    s->ok = r->ok;
    s->cpu = r->cpu;
    for (size_t i = 0; i < r->disks.n && i < MONITOR_MAX_DISKS; i++)
        s->disk_bytes += r->disks.disk[i].read_bytes + r->disks.disk[i].written_bytes;
    s->proc_ticks = r->self.utime_ticks + r->self.stime_ticks;
    s->clk_tck = r->clk_tck;
    s->rss_bytes = r->self.rss_pages * (uint64_t)(r->page_size > 0 ? r->page_size : 0);
    s->mem_total = r->mem.total_bytes;
    s->mem_available = r->mem.available_bytes;
    s->has_available = r->mem.has_available;
}

void host_window_init(struct host_window *w, size_t cap)
{
    w->cap = cap < 2 ? 2 : cap;
    w->n = w->head = 0;
    w->v = xcalloc(w->cap, sizeof(*w->v));
}

void host_window_free(struct host_window *w)
{
    free(w->v);
    w->v = NULL;
}

struct host_snap *host_window_push(struct host_window *w)
{
    if (w->n == w->cap) {
        w->head = (w->head + 1) % w->cap;
        w->n--;
    }
    return &w->v[ring_at(w->cap, w->head, w->n++)];
}

void host_window_delta(const struct host_window *w, size_t back, struct host_delta *out)
{
    out->ms = 0;
    out->cpu = out->memory = out->disk_bps = out->proc_cpu = out->rss = NAN;
    if (!w->n)
        return;
    if (back > w->n - 1)
        back = w->n - 1;
    const struct host_snap *cur = &w->v[ring_at(w->cap, w->head, w->n - 1)];
    const struct host_snap *base = &w->v[ring_at(w->cap, w->head, w->n - 1 - back)];
    /* the figures of a moment need one reading */
    if ((cur->ok & MONITOR_SRC_MEMINFO) && cur->has_available && cur->mem_total) {
        uint64_t avail = cur->mem_available < cur->mem_total ? cur->mem_available : cur->mem_total;
        out->memory = 1.0 - (double)avail / (double)cur->mem_total;
    }
    if (cur->ok & MONITOR_SRC_SELF_STAT)
        out->rss = (double)cur->rss_bytes;
    out->ms = cur->mono_ms - base->mono_ms;
    if (cur == base || out->ms <= 0) {
        out->ms = 0;
        return;
    }
    double secs = (double)out->ms / 1000;
    unsigned both = cur->ok & base->ok;
    if (both & MONITOR_SRC_STAT) {
        double r = monitor_cpu_busy_ratio(&base->cpu, &cur->cpu);
        if (r >= 0)
            out->cpu = r;
    }
    /* a device that went away takes its bytes with it: no time, not negative */
    if (both & MONITOR_SRC_DISKSTATS)
        out->disk_bps = (double)sub(cur->disk_bytes, base->disk_bytes) / secs;
    if ((both & MONITOR_SRC_SELF_STAT) && cur->clk_tck > 0)
        out->proc_cpu =
            (double)sub(cur->proc_ticks, base->proc_ticks) / (double)cur->clk_tck / secs;
}

void window_sample(const struct window_delta *d, const struct host_delta *h, const char *release,
                   struct monitor_sample *out)
{
    double n = (double)d->requests;
    out->requests = d->requests;
    out->release = release && release[0] ? release : NULL;
    out->value[MONITOR_SIGNAL_ERROR_RATIO] = d->requests ? (double)d->errors / n : NAN;
    int lat = d->requests && d->durations;
    out->value[MONITOR_SIGNAL_LATENCY_P50] = lat ? (double)d->p50_us / 1e6 : NAN;
    out->value[MONITOR_SIGNAL_LATENCY_P95] = lat ? (double)d->p95_us / 1e6 : NAN;
    out->value[MONITOR_SIGNAL_LATENCY_P99] = lat ? (double)d->p99_us / 1e6 : NAN;
    out->value[MONITOR_SIGNAL_REQUEST_RATE] = d->ms > 0 ? n * 1000 / (double)d->ms : NAN;
    out->value[MONITOR_SIGNAL_CPU] = h->cpu;
    out->value[MONITOR_SIGNAL_MEMORY] = h->memory;
    out->value[MONITOR_SIGNAL_DISK_IO] = h->disk_bps;
}

static uint32_t u32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void window_figures(const struct window_delta *d, struct monitor_slot_figures *out)
{
    memset(out, 0, sizeof(*out));
    out->requests = u32(d->requests);
    if (!out->requests)
        return;
    out->errors = u32(d->errors);
    out->p50_us = u32(d->p50_us);
    out->p95_us = u32(d->p95_us);
    out->p99_us = u32(d->p99_us);
}

/* x rounded to an integer within 0..max; NaN is not measured (0 with ok clear). */
static int fig(double x, double scale, double max, uint64_t *out)
{
    if (isnan(x))
        return 0;
    x = x * scale + 0.5;
    *out = x <= 0 ? 0 : x >= max ? (uint64_t)max : (uint64_t)x;
    return 1;
}

void host_figures(const struct host_delta *h, struct monitor_host_figures *out)
{
    uint64_t v;
    memset(out, 0, sizeof(*out));
    if (fig(h->cpu, 1e6, MONITOR_PPM_MAX, &v)) {
        out->ok |= MONITOR_HOST_CPU;
        out->host_cpu_ppm = (uint32_t)v;
    }
    if (fig(h->memory, 1e6, MONITOR_PPM_MAX, &v)) {
        out->ok |= MONITOR_HOST_MEM;
        out->host_mem_ppm = (uint32_t)v;
    }
    if (fig(h->disk_bps, 1, 1.8e19, &v)) {
        out->ok |= MONITOR_HOST_DISK;
        out->disk_io_bps = v;
    }
    if (fig(h->proc_cpu, 1e3, MONITOR_PROC_CPU_MAX, &v)) {
        out->ok |= MONITOR_PROC_CPU;
        out->proc_cpu_milli = (uint32_t)v;
    }
    if (fig(h->rss, 1, 1.8e19, &v)) {
        out->ok |= MONITOR_PROC_RSS;
        out->proc_rss_bytes = v;
    }
}

/* ---- the sampler ------------------------------------------------------------------- */

/* What counts as an error (docs/monitor.md): every 5xx (and any other status
 * the edge counts as such), and a 404 for a path the release it replaced
 * served with 200. The edge counts those only while the environment has
 * errors: regressed_404 (the default), so the sum only grows, also when a
 * reload turns it off: windows and history are differences of it.
 * Everything that judges or records errors takes them from this one place. */
static uint64_t slot_errors(const struct edge_slot_stats *st)
{
    return st->requests[4] + st->regressed_404;
}

struct slot_state {
    struct window w;
    int zero_base; /* the first reading's base is zero: the edge began counting for us */
    int read;      /* the last interval read it */
    int live;      /* ... and found it live */
    char release[RELEASE_ID_MAX + 1];
};

struct menv {
    char name[64];
    enum deploy_strategy strategy;
    struct slot_state *slot[EDGE_SLOTS]; /* the strategy's slots */
    /* the last judgement (under the lock: read by monitor_sampler_signals) */
    int has_sample;
    struct monitor_sample sample;
    char release[RELEASE_ID_MAX + 1];
    struct monitor_judged judged; /* the watch's question, answered at each judgement */
};

struct monitor_sampler {
    struct monitor_sampler_opts o;
    pthread_t thread;
    int running;
    pthread_mutex_t lock; /* guards stop, the kept transitions, the history, the envs'
                             samples, and the list of envs when it changes */
    pthread_cond_t cond;
    int stop;
    atomic_int reload;
    struct menv *envs[ENVS_MAX];
    size_t nenvs;
    struct host_window host;
    struct monitor_rules *rules;
    char rules_sum[SHA256_HEX_LEN + 1];
    struct monitor_alerts *alerts;
    struct monitor_transitions fresh; /* of one interval */
    struct monitor_transition kept[MONITOR_TRANSITIONS_KEPT];
    size_t kept_head, kept_n;
    struct monitor_history *history;
    int64_t first_ms;  /* the first reading (monotonic) */
    int64_t last_mono; /* the last reading's time; 0 before the first */
    char (*seen)[64];  /* every environment sampled so far, up to SEEN_MAX */
    size_t nseen;
    uint64_t ticks;         /* readings taken */
    uint64_t step_tick;     /* the reading the last history step ended at */
    uint64_t steps;         /* history steps appended */
    int save_failing;       /* the last save failed (said once) */
    uint64_t status_writes; /* status files written (status_write) */
    int status_failing;     /* the last status write failed (said once) */
    struct hist *scratch;
    struct edge_slot_stats *stats;
    char window_text[32];
};

static void say(struct monitor_sampler *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(struct monitor_sampler *s, const char *fmt, ...)
{
    if (!s->o.log)
        return;
    struct buf b = BUF_INIT;
    va_list ap;
    buf_adds(&b, "monitor: ");
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    s->o.log(s->o.log_arg, b.data);
    buf_free(&b);
}

void monitor_sampler_opts_init(struct monitor_sampler_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->interval_ms = MONITOR_INTERVAL_MS;
}

static int read_stats(struct monitor_sampler *s, const char *env, int slot,
                      struct edge_slot_stats *out)
{
    if (s->o.slot_stats)
        return s->o.slot_stats(s->o.stats_arg, env, slot, out, NULL);
    if (!s->o.edge)
        return SW_ENOTFOUND;
    return edge_slot_stats(s->o.edge, env, slot, out, NULL);
}

static void env_free(struct menv *e)
{
    if (!e)
        return;
    for (int k = 0; k < EDGE_SLOTS; k++)
        if (e->slot[k]) {
            window_free(&e->slot[k]->w);
            free(e->slot[k]);
        }
    free(e);
}

static struct menv *env_new(const char *name, enum deploy_strategy strategy)
{
    struct menv *e = xcalloc(1, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->strategy = strategy;
    static const int bg[] = {EDGE_SLOT_BLUE, EDGE_SLOT_GREEN}, direct[] = {EDGE_SLOT_DIRECT};
    const int *v = strategy == STRATEGY_BLUE_GREEN ? bg : direct;
    size_t n = strategy == STRATEGY_BLUE_GREEN ? 2 : 1;
    for (size_t i = 0; i < n; i++) {
        e->slot[v[i]] = xcalloc(1, sizeof(struct slot_state));
        window_init(&e->slot[v[i]]->w, MONITOR_WINDOW_TICKS + 1);
    }
    return e;
}

static struct menv *env_find(struct monitor_sampler *s, const char *name)
{
    for (size_t i = 0; i < s->nenvs; i++)
        if (!strcmp(s->envs[i]->name, name))
            return s->envs[i];
    return NULL;
}

/* Reads the environment files: environments kept keep their windows (unless
 * their strategy changed), new ones start empty, removed ones go. */
static int envs_load(struct monitor_sampler *s, struct sw_err *err)
{
    struct env_config **cfg = NULL;
    size_t n = 0;
    int rc = env_configs_load_dir(s->o.envs_dir, &cfg, &n, err);
    if (rc)
        return rc;
    if (n > ENVS_MAX) {
        env_configs_free(cfg, n);
        return sw_err_set(err, SW_EINVAL, "%s: more than %d environments", s->o.envs_dir, ENVS_MAX);
    }
    struct menv *next[ENVS_MAX] = {NULL};
    int taken[ENVS_MAX] = {0}; /* s->envs[j] goes on in next */
    for (size_t i = 0; i < n; i++) {
        next[i] = NULL;
        for (size_t j = 0; j < s->nenvs && !next[i]; j++)
            if (!strcmp(s->envs[j]->name, cfg[i]->name) &&
                s->envs[j]->strategy == cfg[i]->strategy) {
                next[i] = s->envs[j];
                taken[j] = 1;
            }
        if (!next[i])
            next[i] = env_new(cfg[i]->name, cfg[i]->strategy);
        /* An environment this process never sampled is new to the edge too
         * (started with it, or added by the reload before this one): its
         * counters began at zero, so the requests served before its first
         * reading count. One removed and added again kept its counters (the
         * edge keeps a name's): its first reading is its base. */
        int known = s->nseen >= SEEN_MAX;
        for (size_t j = 0; j < s->nseen && !known; j++)
            known = !strcmp(s->seen[j], cfg[i]->name);
        if (!known) {
            if (!s->seen)
                s->seen = xcalloc(SEEN_MAX, sizeof(*s->seen));
            snprintf(s->seen[s->nseen++], sizeof(*s->seen), "%s", cfg[i]->name);
            for (int k = 0; k < EDGE_SLOTS; k++)
                if (next[i]->slot[k])
                    next[i]->slot[k]->zero_base = 1;
        }
    }
    struct menv *old[ENVS_MAX];
    size_t nold = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t j = 0; j < s->nenvs; j++)
        if (!taken[j])
            old[nold++] = s->envs[j];
    memcpy(s->envs, next, n * sizeof(*next));
    s->nenvs = n;
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < nold; i++)
        env_free(old[i]);
    env_configs_free(cfg, n);
    return 0;
}

/* Reads the rules file: missing gives the defaults. *changed: the rules in
 * force were replaced (their file's bytes differ from the last read's). */
static int rules_load(struct monitor_sampler *s, int *changed, struct sw_err *err)
{
    char *data = NULL, sum[SHA256_HEX_LEN + 1];
    size_t len = 0;
    struct monitor_rules *r = NULL;
    *changed = 0;
    int rc = s->o.alerts_file ? file_read_all(s->o.alerts_file, &data, &len, err) : SW_ENOTFOUND;
    if (rc == SW_ENOTFOUND) {
        snprintf(sum, sizeof(sum), "default");
        rc = 0;
    } else if (rc) {
        return rc;
    } else {
        sha256_hex(data, len, sum);
    }
    if (s->rules && !strcmp(sum, s->rules_sum)) {
        free(data);
        return 0;
    }
    if (data)
        rc = monitor_rules_parse(data, len, s->o.alerts_file, &r, err);
    else
        r = monitor_rules_default();
    free(data);
    if (rc)
        return rc;
    monitor_alerts_free(s->alerts);
    monitor_rules_free(s->rules);
    s->rules = r;
    s->alerts = monitor_alerts_new(r);
    snprintf(s->rules_sum, sizeof(s->rules_sum), "%s", sum);
    *changed = 1;
    return 0;
}

static void transition_clear(struct monitor_transition *x)
{
    for (size_t j = 0; j < x->nlabels; j++) {
        free(x->labels[j].name);
        free(x->labels[j].value);
    }
    free(x->summary);
    free(x->release);
    memset(x, 0, sizeof(*x));
}

static void transition_copy(struct monitor_transition *d, const struct monitor_transition *x)
{
    *d = *x;
    d->rule = NULL; /* rules may be reloaded while the copy lives */
    for (size_t j = 0; j < x->nlabels; j++) {
        d->labels[j].name = xstrdup(x->labels[j].name);
        d->labels[j].value = xstrdup(x->labels[j].value);
    }
    d->summary = x->summary ? xstrdup(x->summary) : NULL;
    d->release = x->release ? xstrdup(x->release) : NULL;
}

static const char *kind_text(enum monitor_transition_kind k)
{
    switch (k) {
    case MONITOR_TRANSITION_PENDING:
        return "pending";
    case MONITOR_TRANSITION_FIRING:
        return "firing";
    case MONITOR_TRANSITION_RESOLVED:
        return "resolved";
    case MONITOR_TRANSITION_CLEARED:
        return "cleared before firing";
    case MONITOR_TRANSITION_NO_VERDICT:
        return "no verdict";
    case MONITOR_TRANSITION_EVENT:
        return "event";
    }
    return "?";
}

/* One line per transition that changes an alert; a rule losing its verdict
 * (too little traffic, nothing measured) is kept and hooked but not logged:
 * a quiet environment would otherwise say so every time traffic dips. */
static void transition_log(struct monitor_sampler *s, const char *env,
                           const struct monitor_transition *x)
{
    if (x->kind == MONITOR_TRANSITION_NO_VERDICT || !x->rule)
        return;
    const struct monitor_rule *r = x->rule;
    say(s, "%s on %s: %s (%s %g %s %g over %llu requests in the last %s; release %s)", r->name, env,
        kind_text(x->kind), monitor_signal_name(r->signal),
        x->kind == MONITOR_TRANSITION_FIRING || x->kind == MONITOR_TRANSITION_PENDING ? x->value
                                                                                      : x->last,
        monitor_op_name(r->op), r->threshold, (unsigned long long)x->requests, s->window_text,
        x->release ? x->release : "none");
}

/* Records, logs and hands on what one evaluation of env changed. */
static void transitions_take(struct monitor_sampler *s, const char *env)
{
    if (!s->fresh.n)
        return;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->fresh.n; i++) {
        if (s->kept_n == MONITOR_TRANSITIONS_KEPT) {
            transition_clear(&s->kept[s->kept_head]);
            s->kept_head = (s->kept_head + 1) % MONITOR_TRANSITIONS_KEPT;
            s->kept_n--;
        }
        size_t idx = (s->kept_head + s->kept_n++) % MONITOR_TRANSITIONS_KEPT;
        transition_copy(&s->kept[idx], &s->fresh.v[i]);
    }
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < s->fresh.n; i++) {
        transition_log(s, env, &s->fresh.v[i]);
        if (s->o.on_transition)
            s->o.on_transition(s->o.hook_arg, env, &s->fresh.v[i]);
    }
    monitor_transitions_reset(&s->fresh);
}

/* Reads every slot of every environment and the host into their rings. */
static void read_all(struct monitor_sampler *s, int64_t mono_ms)
{
    struct monitor_proc_reading *r = xmalloc(sizeof(*r));
    (void)monitor_proc_read(s->o.proc_root, r, NULL); /* what failed is a clear bit */
    host_snap_from(host_window_push(&s->host), r, mono_ms);
    free(r);
    for (size_t i = 0; i < s->nenvs; i++) {
        struct menv *e = s->envs[i];
        for (int k = 0; k < EDGE_SLOTS; k++) {
            struct slot_state *st = e->slot[k];
            if (!st)
                continue;
            st->read = read_stats(s, e->name, k, s->stats) == 0;
            if (!st->read)
                continue; /* not served (yet): the window keeps what it had */
            if (st->zero_base) {
                struct snap *z = window_push(&st->w);
                memset(z, 0, sizeof(*z));
                z->mono_ms = s->last_mono ? s->last_mono : mono_ms;
                st->zero_base = 0;
            }
            struct snap *p = window_push(&st->w);
            p->mono_ms = mono_ms;
            p->requests = 0;
            for (int c = 0; c < 5; c++)
                p->requests += s->stats->requests[c];
            p->errors = slot_errors(s->stats);
            memcpy(&p->h, &s->stats->duration_us, sizeof(p->h));
            /* a direct environment's one slot is its live one, release or not */
            st->live = e->strategy == STRATEGY_DIRECT || s->stats->live;
            memcpy(st->release, s->stats->release, sizeof(st->release));
            st->release[RELEASE_ID_MAX] = '\0';
        }
    }
    s->last_mono = mono_ms;
}

static void judged(struct monitor_sampler *s, const char *env, struct monitor_judged *j);

/* Judges each environment's live slot over the window. */
static void judge(struct monitor_sampler *s, int64_t wall_ms)
{
    struct host_delta hd;
    struct window_delta d;
    host_window_delta(&s->host, MONITOR_WINDOW_TICKS, &hd);
    for (size_t i = 0; i < s->nenvs; i++) {
        struct menv *e = s->envs[i];
        struct slot_state *live = NULL;
        for (int k = 0; k < EDGE_SLOTS && !live; k++)
            if (e->slot[k] && e->slot[k]->read && e->slot[k]->live)
                live = e->slot[k];
        if (!live) {
            pthread_mutex_lock(&s->lock);
            e->has_sample = 0;
            pthread_mutex_unlock(&s->lock);
            continue; /* nothing is live: nothing to judge */
        }
        struct monitor_sample sample;
        window_delta(&live->w, MONITOR_WINDOW_TICKS, s->scratch, &d);
        window_sample(&d, &hd, live->release, &sample);
        pthread_mutex_lock(&s->lock);
        e->sample = sample;
        memcpy(e->release, live->release, sizeof(e->release));
        e->sample.release = NULL;
        e->has_sample = 1;
        pthread_mutex_unlock(&s->lock);
        struct sw_err err = {0};
        if (monitor_alerts_eval(s->alerts, e->name, &sample, wall_ms, &s->fresh, &err))
            say(s, "%s: alert rules not evaluated: %s", e->name, err.msg);
        struct monitor_judged j;
        judged(s, e->name, &j);
        pthread_mutex_lock(&s->lock);
        e->judged = j;
        pthread_mutex_unlock(&s->lock);
        transitions_take(s, e->name);
    }
}

/* Of env's critical measured rules, the one whose last verdict is oldest:
 * the watch asks whether every one of them could judge its window. */
static void judged(struct monitor_sampler *s, const char *env, struct monitor_judged *j)
{
    memset(j, 0, sizeof(*j));
    j->verdict_ms = INT64_MAX;
    for (size_t i = 0; i < s->rules->n; i++) {
        const struct monitor_rule *r = &s->rules->v[i];
        if (r->severity != MONITOR_CRITICAL || r->signal == MONITOR_SIGNAL_DEPLOYMENT ||
            !monitor_rule_applies(r, env))
            continue;
        j->critical++;
        const struct monitor_alert *a = monitor_alerts_find(s->alerts, r->name, env);
        int64_t at = a ? a->last_verdict_ms : 0;
        if (at < j->verdict_ms) {
            j->verdict_ms = at;
            snprintf(j->rule, sizeof(j->rule), "%s", r->name);
            j->requests = a ? a->requests : 0;
            j->min_requests = r->min_requests;
        }
    }
    if (!j->critical)
        j->verdict_ms = 0;
}

/* Appends a history step covering the readings since the last step. */
static void step(struct monitor_sampler *s, int64_t wall_ms)
{
    size_t back = (size_t)(s->ticks - s->step_tick);
    if (!back)
        return;
    struct host_delta hd;
    struct monitor_host_figures hf;
    struct monitor_history_entry ent[ENVS_MAX * EDGE_SLOTS];
    size_t n = 0;
    host_window_delta(&s->host, back, &hd);
    host_figures(&hd, &hf);
    for (size_t i = 0; i < s->nenvs; i++) {
        struct menv *e = s->envs[i];
        for (int k = 0; k < EDGE_SLOTS; k++) {
            struct slot_state *st = e->slot[k];
            if (!st || !st->read)
                continue;
            struct window_delta d;
            window_delta(&st->w, back, s->scratch, &d);
            ent[n].env = e->name;
            ent[n].slot = k;
            ent[n].live = st->live;
            window_figures(&d, &ent[n].s);
            n++;
        }
    }
    pthread_mutex_lock(&s->lock);
    size_t left_out = monitor_history_append(s->history, wall_ms, hd.ms, &hf, ent, n);
    pthread_mutex_unlock(&s->lock);
    if (left_out && s->steps == 0)
        say(s, "history: %zu slots left out: more than %d series", left_out,
            MONITOR_HISTORY_SERIES_MAX);
    s->step_tick = s->ticks;
    s->steps++;
}

/* Writes the file; a failure is said once, and its end too. */
static void save(struct monitor_sampler *s)
{
    if (!s->o.history_file)
        return;
    struct sw_err err = {0};
    /* Only this thread changes the history: it is read here without the lock. */
    if (monitor_history_save(s->history, s->o.history_file, &err)) {
        if (!s->save_failing)
            say(s, "history not saved (retrying every minute): %s", err.msg);
        s->save_failing = 1;
    } else if (s->save_failing) {
        say(s, "history saved again to %s", s->o.history_file);
        s->save_failing = 0;
    }
}

static void reload(struct monitor_sampler *s)
{
    struct sw_err err = {0};
    int changed = 0;
    if (envs_load(s, &err))
        say(s, "environments not reloaded, sampling the previous ones: %s", err.msg);
    err = (struct sw_err){0};
    if (rules_load(s, &changed, &err))
        say(s, "alert rules not reloaded, keeping the running ones: %s", err.msg);
    else if (changed)
        say(s, "alert rules reloaded from %s (%zu rules); their states start over",
            s->rules->file ? s->rules->file : "the defaults", s->rules->n);
}

/* ---- the status file (status.c): what `slipway alerts` and `slipway top` read ---- */

/* A serve killed between writing its temporary status file and renaming it
 * leaves "status.json.tmp-PID": removed when that PID is gone. */
static void status_temps_remove(const char *file)
{
    char *dir = xstrdup(file), *slash = strrchr(dir, '/');
    const char *name = slash ? slash + 1 : file;
    if (slash)
        *slash = '\0';
    char *prefix = xasprintf("%s.tmp-", name);
    DIR *d = opendir(slash ? dir : ".");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char *end;
        if (!str_starts_with(de->d_name, prefix))
            continue;
        long pid = strtol(de->d_name + strlen(prefix), &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char *p = slash ? path_join(dir, de->d_name) : xstrdup(de->d_name);
        (void)unlink(p); /* gone already is as good */
        free(p);
    }
    if (d)
        closedir(d);
    free(prefix);
    free(dir);
}

static void status_slot(struct monitor_sampler *s, int k, const struct slot_state *st,
                        struct monitor_status_slot *x)
{
    struct window_delta d;
    window_delta(&st->w, MONITOR_WINDOW_TICKS, s->scratch, &d);
    x->slot = k;
    x->live = st->live;
    memcpy(x->release, st->release, sizeof(x->release));
    x->requests = d.requests;
    x->errors = d.errors;
    x->req_per_s = d.ms > 0 ? (double)d.requests * 1000 / (double)d.ms : NAN;
    x->error_ratio = d.requests ? (double)d.errors / (double)d.requests : NAN;
    int lat = d.requests && d.durations;
    x->p50_s = lat ? (double)d.p50_us / 1e6 : NAN;
    x->p95_s = lat ? (double)d.p95_us / 1e6 : NAN;
    x->p99_s = lat ? (double)d.p99_us / 1e6 : NAN;
    /* each interval's own counts: consecutive readings' differences, oldest first */
    size_t n = st->w.n ? st->w.n - 1 : 0;
    if (n > MONITOR_STATUS_RECENT)
        n = MONITOR_STATUS_RECENT;
    for (size_t i = 0; i < n; i++) {
        const struct snap *a = window_back(&st->w, n - i), *b = window_back(&st->w, n - i - 1);
        x->recent_requests[i] = sub(b->requests, a->requests);
        x->recent_errors[i] = sub(b->errors, a->errors);
    }
    x->nrecent = n;
}

static void status_alert(const struct monitor_rule *r, const struct monitor_alert *a,
                         struct monitor_status_alert *x)
{
    snprintf(x->rule, sizeof(x->rule), "%s", r->name);
    x->severity = r->severity;
    x->signal = r->signal;
    x->op = r->op;
    x->threshold = r->threshold;
    x->for_ms = r->for_ms;
    x->min_requests = r->min_requests;
    x->value = x->last = NAN;
    if (!a)
        return; /* never evaluated: inactive, no verdict */
    x->state = a->state;
    x->verdict = a->verdict;
    x->value = a->value;
    x->last = a->last;
    x->requests = a->requests;
    x->active_ms = a->active_ms;
    x->fired_ms = a->fired_ms;
    x->resolved_ms = a->resolved_ms;
    x->eval_ms = a->last_eval_ms;
    snprintf(x->release, sizeof(x->release), "%s", a->release ? a->release : "");
    x->summary = a->summary ? xstrdup(a->summary) : NULL;
}

/* Writes the status file at the end of an interval. Runs on the monitor
 * thread, which alone changes what it reads: no lock is taken. */
static void status_write(struct monitor_sampler *s, int64_t wall_ms)
{
    if (!s->o.status_file)
        return;
    struct monitor_status st = {0};
    struct host_delta hd;
    struct sw_err err = {0};
    if (!s->status_writes++) {
        char *dir = xstrdup(s->o.status_file), *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            (void)fs_mkdir_p(dir, NULL); /* a failure is the write's, said below */
        }
        free(dir);
        status_temps_remove(s->o.status_file);
    }
    st.written_ms = wall_ms;
    st.interval_ms = s->o.interval_ms;
    st.window_ms = s->o.interval_ms * MONITOR_WINDOW_TICKS;
    st.pid = (int64_t)getpid();
    snprintf(st.host, sizeof(st.host), "%s", sys_host());
    host_window_delta(&s->host, 1, &hd);
    st.proc_cpu = hd.proc_cpu;
    st.proc_rss = hd.rss;
    st.host_cpu = hd.cpu;
    st.host_mem = hd.memory;
    st.envs = xcalloc(s->nenvs ? s->nenvs : 1, sizeof(*st.envs));
    for (size_t i = 0; i < s->nenvs && i < MONITOR_STATUS_ENVS_MAX; i++) {
        const struct menv *e = s->envs[i];
        struct monitor_status_env *x = &st.envs[st.nenvs++];
        snprintf(x->name, sizeof(x->name), "%s", e->name);
        for (int k = 0; k < EDGE_SLOTS; k++)
            if (e->slot[k] && e->slot[k]->read)
                status_slot(s, k, e->slot[k], &x->slots[x->nslots++]);
        x->alerts = xcalloc(s->rules->n ? s->rules->n : 1, sizeof(*x->alerts));
        for (size_t r = 0; r < s->rules->n; r++) {
            const struct monitor_rule *rule = &s->rules->v[r];
            if (rule->signal == MONITOR_SIGNAL_DEPLOYMENT || !monitor_rule_applies(rule, e->name))
                continue;
            status_alert(rule, monitor_alerts_find(s->alerts, rule->name, e->name),
                         &x->alerts[x->nalerts++]);
        }
    }
    if (monitor_status_save(&st, s->o.status_file, &err)) {
        if (!s->status_failing)
            say(s, "status not written (retrying every interval): %s", err.msg);
        s->status_failing = 1;
    } else if (s->status_failing) {
        say(s, "status written again to %s", s->o.status_file);
        s->status_failing = 0;
    }
    monitor_status_clear(&st);
}
/* ---- end status file ---- */

static void tick(struct monitor_sampler *s, int64_t mono_ms, int64_t wall_ms)
{
    if (atomic_exchange(&s->reload, 0))
        reload(s);
    read_all(s, mono_ms);
    s->ticks++;
    judge(s, wall_ms);
    if (s->ticks - s->step_tick >= MONITOR_HISTORY_TICKS) {
        step(s, wall_ms);
        if (s->steps % MONITOR_SAVE_STEPS == 0)
            save(s);
    }
    status_write(s, wall_ms);
}

void monitor_sampler_tick(struct monitor_sampler *s, int64_t mono_ms, int64_t wall_ms)
{
    if (s->o.manual)
        tick(s, mono_ms, wall_ms);
}

static void *run(void *arg)
{
    struct monitor_sampler *s = arg;
    int64_t next = s->first_ms; /* start took the first reading then */
    pthread_mutex_lock(&s->lock);
    for (;;) {
        next += s->o.interval_ms;
        struct timespec ts = {(time_t)(next / 1000), (long)(next % 1000) * 1000000};
        while (!s->stop && time_mono_ms() < next)
            pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        if (s->stop)
            break;
        pthread_mutex_unlock(&s->lock);
        tick(s, time_mono_ms(), time_now_ms());
        /* more than an interval behind (a slow save): on from now, no burst */
        int64_t now = time_mono_ms();
        if (next + s->o.interval_ms < now)
            next = now;
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* A serve killed while it saved leaves its temporary file (fs_write_atomic's
 * "NAME.tmp-PID-XXXXXX", up to a full history each): gone at the next start,
 * before this process writes one of its own. */
static void temps_remove(struct monitor_sampler *s, const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char *prefix = xasprintf("%s.tmp-", name);
    struct dirent *de;
    while ((de = readdir(d)))
        if (str_starts_with(de->d_name, prefix)) {
            char *p = path_join(dir, de->d_name);
            if (unlink(p) == 0)
                say(s, "history: removed %s, left by a serve stopped while it saved", p);
            free(p);
        }
    closedir(d);
    free(prefix);
}

/* The history file at start: loaded, or reported, kept aside and replaced. */
static void history_open(struct monitor_sampler *s)
{
    int64_t step_ms = s->o.interval_ms * MONITOR_HISTORY_TICKS;
    struct sw_err err = {0};
    const char *file = s->o.history_file;
    if (!file) {
        s->history = monitor_history_new(MONITOR_HISTORY_STEPS, step_ms);
        return;
    }
    char *dir = xstrdup(file), *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (fs_mkdir_p(dir, &err))
            say(s, "history: %s", err.msg);
        temps_remove(s, dir, slash + 1);
    }
    free(dir);
    int rc = monitor_history_load(file, step_ms, MONITOR_HISTORY_STEPS, &s->history, &err);
    if (!rc && monitor_history_newest_ms(s->history) > time_now_ms() + 60000) {
        monitor_history_free(s->history);
        s->history = NULL;
        rc = sw_err_set(&err, SW_EINVAL, "%s: its newest step is in the future", file);
    }
    if (rc == 0) {
        say(s, "history: %zu steps read from %s", monitor_history_count(s->history), file);
        return;
    }
    s->history = monitor_history_new(MONITOR_HISTORY_STEPS, step_ms);
    if (rc == SW_ENOTFOUND)
        return; /* saved before it is said: whoever reads the line finds the new file */
    char *aside = xasprintf("%s.corrupt", file);
    int kept = rename(file, aside) == 0;
    save(s);
    if (kept)
        say(s, "history unusable, kept as %s and replaced by a new one: %s", aside, err.msg);
    else
        say(s, "history unusable, replaced by a new one: %s", err.msg);
    free(aside);
}

int monitor_sampler_start(const struct monitor_sampler_opts *o, struct monitor_sampler **out,
                          struct sw_err *err)
{
    *out = NULL;
    if (!o->envs_dir || o->interval_ms < 1 ||
        o->interval_ms > MONITOR_HISTORY_STEP_MAX_MS / MONITOR_HISTORY_TICKS)
        return sw_err_set(err, SW_EINVAL,
                          "monitor: the sampling interval must be 1 ms to %lld ms, and the "
                          "environments directory given",
                          (long long)(MONITOR_HISTORY_STEP_MAX_MS / MONITOR_HISTORY_TICKS));
    struct monitor_sampler *s = xcalloc(1, sizeof(*s));
    s->o = *o;
    pthread_mutex_init(&s->lock, NULL);
    cond_init_monotonic(&s->cond);
    atomic_init(&s->reload, 0);
    host_window_init(&s->host, MONITOR_WINDOW_TICKS + 1);
    s->scratch = xcalloc(1, sizeof(*s->scratch));
    s->stats = xcalloc(1, sizeof(*s->stats));
    duration_format(o->interval_ms * MONITOR_WINDOW_TICKS, s->window_text, sizeof(s->window_text));
    /* the first step covers MONITOR_HISTORY_TICKS intervals from the first reading */
    s->step_tick = 1;
    int changed, rc = envs_load(s, err);
    if (!rc)
        rc = rules_load(s, &changed, err);
    if (rc) {
        monitor_sampler_stop(s);
        return rc;
    }
    history_open(s);
    if (!o->manual) {
        s->first_ms = time_mono_ms();
        tick(s, s->first_ms, time_now_ms());
        int e = pthread_create(&s->thread, NULL, run, s);
        if (e) {
            monitor_sampler_stop(s);
            return sw_err_sys(err, e, "monitor: starting its thread");
        }
        s->running = 1;
    }
    *out = s;
    return 0;
}

void monitor_sampler_reload(struct monitor_sampler *s)
{
    if (s)
        atomic_store(&s->reload, 1);
}

void monitor_sampler_stop(struct monitor_sampler *s)
{
    if (!s)
        return;
    if (s->running) {
        pthread_mutex_lock(&s->lock);
        s->stop = 1;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
        /* The requests since the last step are not lost to a clean stop: a
         * last, shorter step covers them. */
        read_all(s, time_mono_ms());
        s->ticks++;
        step(s, time_now_ms());
    }
    if (s->history) {
        save(s);
        monitor_history_free(s->history);
    }
    for (size_t i = 0; i < s->nenvs; i++)
        env_free(s->envs[i]);
    for (size_t i = 0; i < s->kept_n; i++)
        transition_clear(&s->kept[(s->kept_head + i) % MONITOR_TRANSITIONS_KEPT]);
    monitor_transitions_reset(&s->fresh);
    free(s->seen);
    monitor_alerts_free(s->alerts);
    monitor_rules_free(s->rules);
    host_window_free(&s->host);
    free(s->scratch);
    free(s->stats);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void monitor_sampler_transitions(struct monitor_sampler *s, struct monitor_transitions *out)
{
    monitor_transitions_reset(out);
    pthread_mutex_lock(&s->lock);
    if (s->kept_n) {
        out->v = xcalloc(s->kept_n, sizeof(*out->v));
        out->cap = s->kept_n;
    }
    for (size_t i = 0; i < s->kept_n; i++)
        transition_copy(&out->v[out->n++], &s->kept[(s->kept_head + i) % MONITOR_TRANSITIONS_KEPT]);
    pthread_mutex_unlock(&s->lock);
}

int monitor_sampler_judged(struct monitor_sampler *s, const char *env, struct monitor_judged *out)
{
    int rc = SW_ENOTFOUND;
    pthread_mutex_lock(&s->lock);
    struct menv *e = env_find(s, env);
    if (e && e->has_sample) {
        *out = e->judged;
        rc = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int monitor_sampler_signals(struct monitor_sampler *s, const char *env, struct monitor_sample *out,
                            char release[RELEASE_ID_MAX + 1], struct sw_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    struct menv *e = env_find(s, env);
    if (!e || !e->has_sample) {
        rc = sw_err_set(err, SW_ENOTFOUND, "%s: %s", env,
                        e ? "no live slot judged yet" : "not sampled");
    } else {
        *out = e->sample;
        memcpy(release, e->release, RELEASE_ID_MAX + 1);
        out->release = release[0] ? release : NULL;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

size_t monitor_sampler_points(struct monitor_sampler *s, const char *env, enum monitor_pick pick,
                              int64_t since_ms, struct monitor_point **out)
{
    pthread_mutex_lock(&s->lock);
    size_t n = monitor_history_points(s->history, env, pick, since_ms, out);
    pthread_mutex_unlock(&s->lock);
    return n;
}
