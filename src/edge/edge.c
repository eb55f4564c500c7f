/*
 * The edge: the static-file handler of the http module, over every
 * environment of a project. This file wires the pieces together — the http
 * server and its listeners (each environment's live and preview address, the
 * admin address), the watcher that keeps release tables current, metrics and
 * the access log — and owns nothing of the I/O itself.
 *
 * The one idea: a listener's handler argument is a struct listener_info kept
 * at a fixed place in struct edge for the server's whole life, so a reload
 * that keeps an address for the same environment hands http the same
 * (handler, arg) pair and the listener keeps its sockets and connections.
 */
#include "edge/respond.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void edge_opts_init(struct edge_opts *o)
{
    memset(o, 0, sizeof(*o));
    http_opts_init(&o->http);
    o->poll_ms = 50;
    o->small_body_max = 64 * 1024;
    o->cache_max = 10ULL << 30;
    o->hook_body_max = 1 << 20;
}

void edge_log(struct edge *e, const char *fmt, ...)
{
    if (!e->o->log)
        return;
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    e->o->log(e->o->log_arg, b.data);
    buf_free(&b);
}

/* ---- the handler --------------------------------------------------------------- */

/* tag[0] of a response http built itself (a refused head): count it on the
 * listener's own site. */
#define SITE_OF_LISTENER (-2)

/*
 * Test hook (like SLIPWAY_TEST_DEPLOY_DELAY_MS): SLIPWAY_TEST_EDGE_DELAY is a
 * comma-separated list of PREFIX=MICROSECONDS; a request whose target, as
 * sent, starts with a rule's prefix is held that long (the first rule that
 * matches; at most 10 s) after its response is built, before it is written.
 * It gives tests responses with known, spread-out durations from a static
 * server. It blocks the worker thread, which a handler must never do: tests
 * only (docs/development.md).
 */
struct test_delay {
    char prefix[128];
    size_t len;
    uint64_t us;
};

#define TEST_DELAY_MAX 256
#define TEST_DELAY_US_MAX 10000000

static int test_delay_parse(struct edge *e, const char *spec, struct sw_err *err)
{
    e->delay = xcalloc(TEST_DELAY_MAX, sizeof(*e->delay));
    for (const char *p = spec; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        struct test_delay *d = &e->delay[e->ndelay];
        uint64_t us = 0;
        size_t plen = eq ? (size_t)(eq - p) : 0;
        const char *q = eq ? eq + 1 : NULL;
        while (q && q < p + len && *q >= '0' && *q <= '9' && us <= TEST_DELAY_US_MAX)
            us = us * 10 + (uint64_t)(*q++ - '0');
        if (!eq || plen == 0 || plen >= sizeof(d->prefix) || q == eq + 1 || q != p + len ||
            us > TEST_DELAY_US_MAX || e->ndelay == TEST_DELAY_MAX)
            return sw_err_set(err, SW_EINVAL,
                              "SLIPWAY_TEST_EDGE_DELAY: expected PREFIX=MICROSECONDS[,...] (at "
                              "most %d rules, each at most %d us), at \"%.*s\"",
                              TEST_DELAY_MAX, TEST_DELAY_US_MAX, (int)(len > 64 ? 64 : len), p);
        memcpy(d->prefix, p, plen);
        d->len = plen;
        d->us = us;
        e->ndelay++;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

static void test_delay(struct edge *e, const struct http_request *req)
{
    for (size_t i = 0; i < e->ndelay; i++) {
        const struct test_delay *d = &e->delay[i];
        if (req->target_len < d->len || memcmp(req->target, d->prefix, d->len) != 0)
            continue;
        struct timespec ts = {(time_t)(d->us / 1000000), (long)(d->us % 1000000) * 1000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        return;
    }
}

static void edge_handle(void *arg, int worker, const struct http_request *req, const char *date,
                        struct http_response *res)
{
    struct listener_info *li = arg;
    respond(li->e, worker, li, req, date, res);
}

/* The handler with the test hook: a handler of its own, so that a server
 * without SLIPWAY_TEST_EDGE_DELAY pays not even a test for it per request. */
static void edge_handle_delayed(void *arg, int worker, const struct http_request *req,
                                const char *date, struct http_response *res)
{
    struct listener_info *li = arg;
    respond(li->e, worker, li, req, date, res);
    test_delay(li->e, req);
}

static void edge_done(void *arg, int worker, const struct http_exchange *x,
                      struct http_response *res)
{
    struct listener_info *li = arg;
    struct edge *e = li->e;
    int site = res->tag[0] == SITE_OF_LISTENER ? li->site : res->tag[0];
    int slot = res->tag[1];
    if (site >= 0)
        metrics_observe(e, worker, site, slot, res->status, x->bytes, x->us);
    if (e->log && site >= 0) {
        char when[40];
        time_format_iso(time_now_ms(), when, sizeof(when));
        /* The slot, without the mark of a regressed 404 (EDGE_TAG_REGRESSED). */
        const char *slot_name = edge_slot_name(slot % EDGE_TAG_REGRESSED);
        access_log_add(e->log, worker, "%s %s %s %s %s %d %llu %lld\n", when, e->sites[site].name,
                       slot_name ? slot_name : "direct", x->method, x->target, res->status,
                       (unsigned long long)x->bytes, (long long)x->us);
    }
    /* Release the table only now: its bodies were being written until here. */
    struct table *t = res->hold;
    if (t)
        atomic_fetch_sub_explicit(&t->refs[worker].n, 1, memory_order_release);
}

/* body_max 0: a static site takes no request bodies; one that announces any is refused. */
static const struct http_handler edge_handler = {
    .handle = edge_handle, .done = edge_done, .tag_default = {SITE_OF_LISTENER, 2}, .body_max = 0};
static const struct http_handler edge_handler_delayed = {.handle = edge_handle_delayed,
                                                         .done = edge_done,
                                                         .tag_default = {SITE_OF_LISTENER, 2},
                                                         .body_max = 0};

/* ---- listeners ------------------------------------------------------------------- */

/* The listeners the environments want: live and preview addresses, then the
 * admin address. *out (caller frees) borrows strings from envs and e. */
static int plan(struct edge *e, struct env_config **envs, size_t n, struct http_listener **out,
                size_t *nout, struct sw_err *err)
{
    struct http_listener *v = xcalloc(2 * n + 1, sizeof(*v));
    size_t k = 0;
    /* Chosen once per process (the hook is read at start), so a reload hands
     * http the same pair for a kept address. */
    const struct http_handler *h = e->ndelay ? &edge_handler_delayed : &edge_handler;
    for (size_t i = 0; i < n; i++) {
        struct env_config *c = envs[i];
        int site = edge_site_index(e, c->name, 1);
        if (site < 0) {
            free(v);
            return sw_err_set(err, SW_EINVAL, "too many environments (at most %d)", EDGE_MAX_SITES);
        }
        for (int preview = 0; preview < 2; preview++) {
            const char *addr = preview ? c->preview : c->listen;
            if (!addr || (preview && c->strategy != STRATEGY_BLUE_GREEN))
                continue;
            struct listener_info *li = &e->li[site][preview];
            /* Its values are fixed by its place: written once, before a listener uses it.
             * Writing them again on a reload, even unchanged, would race with the workers
             * reading them (ThreadSanitizer, e2e 305). */
            if (!li->e)
                *li = (struct listener_info){e, site, preview ? LISTEN_PREVIEW : LISTEN_LIVE};
            v[k++] = (struct http_listener){addr, c->file, h, li};
        }
    }
    if (e->o->admin) {
        /* admin_li is set once, in edge_start: a reload must not write what
         * workers answering the admin listener read (edge_done). */
        v[k++] = (struct http_listener){e->o->admin, "--admin", e->o->hook ? &e->admin_handler : h,
                                        &e->admin_li};
    }
    *out = v;
    *nout = k;
    return 0;
}

/* ---- start, reload, stop ------------------------------------------------------------ */

int edge_start(const struct edge_opts *o, struct edge **out, struct sw_err *err)
{
    struct edge *e = xcalloc_aligned(1, sizeof(*e), CACHELINE);
    struct env_config **envs = NULL;
    struct http_listener *ls = NULL;
    size_t n = 0, nls = 0;
    e->opts = *o;
    e->o = &e->opts;
    e->started_ms = time_now_ms();
    pthread_mutex_init(&e->err_lock, NULL);
    pthread_mutex_init(&e->extra_lock, NULL);
    for (int i = 0; i < EDGE_MAX_SITES; i++)
        e->live_slot[i] = -1;
    e->admin_li = (struct listener_info){e, -1, LISTEN_ADMIN};
    /* The admin listener takes request bodies only for the hooks. */
    e->admin_handler = edge_handler;
    e->admin_handler.body_max = o->hook_body_max;
    const char *delay = getenv("SLIPWAY_TEST_EDGE_DELAY");
    int rc = 0;
    if (delay && *delay && (rc = test_delay_parse(e, delay, err)))
        goto fail;
    if ((rc = http_server_new(&o->http, &e->http, err)))
        goto fail;
    e->nworkers = http_server_workers(e->http);
    e->stats = xcalloc_aligned((size_t)e->nworkers, sizeof(*e->stats), CACHELINE);
    if ((rc = env_configs_load_dir(o->envs_dir, &envs, &n, err)) ||
        (rc = plan(e, envs, n, &ls, &nls, err)))
        goto fail;
    /* Bound before anything is loaded: an address someone else holds must
     * fail start-up at once, not after a large release was fetched. */
    if ((rc = http_server_listen(e->http, ls, nls, err)))
        goto fail;
    if (o->access_log && (rc = access_log_open(o->access_log, o->store, e->nworkers, &e->log, err)))
        goto fail;
    if ((rc = blob_cache_new(o->cache_dir, o->cache_max, &e->cache, err)) ||
        (rc = watch_start(e, envs, n, &e->watch, err)))
        goto fail;
    envs = NULL; /* the watcher owns them */
    n = 0;
    if ((rc = http_server_start(e->http, err)))
        goto fail;
    atomic_store(&e->ready, 1);
    free(ls);
    *out = e;
    return 0;
fail:
    free(ls);
    env_configs_free(envs, n);
    edge_stop(e);
    return rc;
}

int edge_reload(struct edge *e, size_t *nenvs, struct sw_err *err)
{
    struct env_config **envs = NULL;
    struct http_listener *ls = NULL;
    size_t n = 0, nls = 0;
    int rc = env_configs_load_dir(e->o->envs_dir, &envs, &n, err);
    if (!rc)
        rc = plan(e, envs, n, &ls, &nls, err);
    if (!rc)
        rc = http_server_listen(e->http, ls, nls, err);
    free(ls);
    if (rc) {
        env_configs_free(envs, n);
        return rc;
    }
    *nenvs = n;
    watch_reload(e->watch, envs, n);
    return 0;
}

void edge_set_metrics_extra(struct edge *e, void (*fn)(struct buf *b, void *arg), void *arg)
{
    pthread_mutex_lock(&e->extra_lock);
    e->extra_fn = fn;
    e->extra_arg = arg;
    pthread_mutex_unlock(&e->extra_lock);
}

void edge_stop(struct edge *e)
{
    if (!e)
        return;
    /* Workers first: once they are joined no response can hold a table. */
    http_server_stop(e->http);
    watch_stop(e->watch);
    blob_cache_free(e->cache);
    http_server_free(e->http);
    access_log_close(e->log);
    metrics_free(e);
    free(e->stats);
    free(e->delay);
    pthread_mutex_destroy(&e->err_lock);
    pthread_mutex_destroy(&e->extra_lock);
    free(e);
}
