/*
 * The watcher: one thread that follows every environment's state in the store
 * and keeps each site's two pointers (live, preview) on the right tables.
 *
 * A new release is loaded completely (bodies in memory or in the local blob
 * cache) before its table is published with one atomic store, so workers
 * never wait for a switch. A blue-green switch usually loads nothing: the
 * release going live was already loaded for the preview listener.
 *
 * Old tables are retired, not freed: a table is freed only after every worker
 * has passed a quiescent point since it was unpublished (so none can still be
 * about to take a reference) and the per-worker reference counts it carries
 * have all dropped to zero (so no response in flight still reads it).
 *
 * Beside each live table the watcher publishes the path set of the release
 * it replaced (the state's previous release), read by workers to count
 * regressed 404s; it is retired the same way, and needs only the quiescent
 * point, since no response holds it past its handling.
 *
 * A store that cannot be reached (S3 down, a network partition) changes
 * nothing that is served: every site keeps its tables, and the watcher goes
 * on polling. The edge's store handle fails fast (store_set_fail_fast, set by
 * its owner), and the first state read of a round that finds the store
 * unreachable ends the round, so a dead store costs each round one timeout
 * however many environments there are, and a switch made when it returns is
 * seen within a poll interval of that. The store's status (store_status) is
 * what /_slipway/health reports; the watcher logs its changes once each.
 */
#include "edge/internal.h"

#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct wsite {
    struct env_config *cfg;
    char etag[SHA256_HEX_LEN + 1];
    struct table *live, *preview;
    struct pathset *replaced; /* published as the site's replaced */
    int failed;               /* FAILED_*: what the newest attempt failed at; 0: it did not */
    int rebuild;              /* load fresh tables even for releases already loaded (SIGHUP) */
    /* A failed load is retried with backoff (a body may still be on its way
     * to a shared bucket), and logged once per distinct reason. */
    int64_t retry_at_ms, backoff_ms;
    char logged[sizeof(((struct sw_err *)0)->msg)];
    /* The generation last seen, for edge_opts.on_change; known: seen once. */
    int64_t generation;
    int known;
};

#define RETRY_FIRST_MS 250
#define RETRY_MAX_MS 30000

enum {
    FAILED_LOAD = 1,  /* the state was read; its release could not be loaded */
    FAILED_STATE = 2, /* the state document is invalid */
    FAILED_STORE = 3, /* the store could not be reached: nothing to retry but the read */
};

/* Codes of a read that did not reach the store, or that it refused
 * (store_status counts the same ones). */
static int unreachable(int rc)
{
    return rc == SW_EIO || rc == SW_EACCES || rc == SW_ENOSPC;
}

const char *edge_failure_text(int why)
{
    switch (why) {
    case LOAD_STATE:
        return "its state document in the store is unreadable or invalid";
    case LOAD_MANIFEST:
        return "its release manifest is missing or invalid";
    case LOAD_MISSING:
        return "a file of its release is missing from the store";
    case LOAD_HASH:
        return "a file of its release does not match its hash";
    case LOAD_IO:
        return "the store or the local cache could not be read";
    case LOAD_SPACE:
        return "its release does not fit in the edge's local cache";
    }
    return "no failure";
}

static int classify(int rc, int state_failed)
{
    if (state_failed)
        return rc == SW_EIO ? LOAD_IO : LOAD_STATE;
    if (rc == TABLE_EHASH)
        return LOAD_HASH;
    if (rc == SW_EINVAL)
        return LOAD_MANIFEST;
    if (rc == SW_ENOSPC)
        return LOAD_SPACE;
    return rc == SW_ENOTFOUND ? LOAD_MISSING : LOAD_IO;
}

struct retired {
    struct table *t;    /* or */
    struct pathset *ps; /* one of the two */
    unsigned long epoch[EDGE_MAX_WORKERS];
    int quiesced;
};

struct watch {
    struct edge *e;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t lock; /* guards pending */
    struct env_config **pending;
    size_t npending;
    int have_pending;
    struct env_config **envs;
    size_t nenvs;
    struct wsite ws[EDGE_MAX_SITES];
    struct retired *retired;
    size_t nretired, capretired;
    int over_budget; /* the loaded releases need more than --cache-max: said once */
    int notify;      /* store_watch("envs") descriptor, -1: none (poll only) */
    int stop_fd;     /* eventfd watch_stop writes, -1: none (stop within a poll interval) */
    int first;       /* the site a round starts with (poll_all) */
    int store_down;  /* the store's status as last logged */
    int64_t down_since_ms;
    int loaded; /* a table was loaded or freed since the last give_back */
};

int edge_site_index(struct edge *e, const char *name, int create)
{
    for (int i = 0; i < EDGE_MAX_SITES; i++)
        if (!strcmp(e->sites[i].name, name))
            return i;
    if (!create)
        return -1;
    int idx = -1;
    /* Names are written once, under the lock metrics_render reads them with. */
    pthread_mutex_lock(&e->err_lock);
    for (int i = 0; i < EDGE_MAX_SITES && idx < 0; i++)
        if (!e->sites[i].name[0]) {
            snprintf(e->sites[i].name, sizeof(e->sites[i].name), "%s", name);
            idx = i;
        }
    pthread_mutex_unlock(&e->err_lock);
    return idx;
}

static void retire(struct watch *w, struct table *t, struct pathset *ps)
{
    if (!t && !ps)
        return;
    if (w->nretired == w->capretired)
        w->retired = xrealloc(w->retired, (w->capretired = w->capretired ? w->capretired * 2 : 8) *
                                              sizeof(*w->retired));
    struct retired *r = &w->retired[w->nretired++];
    memset(r, 0, sizeof(*r));
    r->t = t;
    r->ps = ps;
    http_server_snapshot(w->e->http, r->epoch);
}

/* Frees retired tables no worker can reach or hold any more, then the
 * large bodies no loaded table uses. */
static void reap(struct watch *w)
{
    struct edge *e = w->e;
    size_t keep = 0;
    for (size_t k = 0; k < w->nretired; k++) {
        struct retired *r = &w->retired[k];
        if (!r->quiesced)
            r->quiesced = http_server_quiesced(e->http, r->epoch);
        long held = 0;
        for (int i = 0; r->quiesced && r->t && i < r->t->nworkers; i++)
            held += atomic_load(&r->t->refs[i].n);
        if (r->quiesced && held == 0) {
            table_free(r->t);
            pathset_free(r->ps);
            w->loaded = 1;
        } else {
            w->retired[keep++] = *r;
        }
    }
    w->nretired = keep;
    blob_cache_collect(e->cache);
    /* Bodies in use are never deleted, so releases that together need more
     * than the bound keep it exceeded: say so once, and when it is over. */
    uint64_t held = blob_cache_bytes(e->cache), max = blob_cache_max(e->cache);
    if ((held > max) != w->over_budget) {
        char a[32], b[32];
        size_format(held, a, sizeof(a));
        size_format(max, b, sizeof(b));
        w->over_budget = held > max;
        if (w->over_budget)
            edge_log(e, "local cache: the loaded releases need %s, more than --cache-max %s", a, b);
        else
            edge_log(e, "local cache: %s, within --cache-max %s again", a, b);
    }
}

/* Returns a table for release id on site idx, reusing one the site has
 * unless its tables are being rebuilt. */
static int table_for(struct watch *w, int idx, const char *id, struct table **out,
                     struct sw_err *err)
{
    struct wsite *ws = &w->ws[idx];
    *out = NULL;
    if (!id)
        return 0;
    if (!ws->rebuild && ws->live && !strcmp(ws->live->release_id, id))
        return *out = ws->live, 0;
    if (!ws->rebuild && ws->preview && !strcmp(ws->preview->release_id, id))
        return *out = ws->preview, 0;
    /* Bodies the site's tables hold are copied, not fetched again (a rebuild
     * changes headers, never the bytes a body's name stands for). */
    const struct table *from[2] = {ws->live, ws->preview};
    int rc = table_load(w->e->o->store, id, ws->cfg, idx, w->e->cache, w->e->o->small_body_max,
                        w->e->nworkers, from, 2, out, err);
    if (!rc)
        (*out)->owner = &w->e->sites[idx];
    w->loaded = 1;
    return rc;
}

static void publish(struct watch *w, int idx, struct table *live, struct table *preview,
                    struct pathset *replaced)
{
    struct wsite *ws = &w->ws[idx];
    struct site *s = &w->e->sites[idx];
    struct table *old_live = ws->live, *old_preview = ws->preview;
    struct pathset *old_replaced = ws->replaced;
    /* Before the live table: a worker still answering from the old live release may then
     * look in the new set, the paths of that very release, which never holds what it lacks;
     * the other order could count the new release's 404s against the set before. */
    atomic_store(&s->replaced, replaced);
    ws->replaced = replaced;
    atomic_store(&s->live, live);
    atomic_store(&s->preview, preview);
    /* A rebuilt table of the same release is not a switch. */
    if (live && (!old_live || strcmp(old_live->release_id, live->release_id) != 0))
        atomic_fetch_add(&w->e->switches[idx], 1);
    ws->live = live;
    ws->preview = preview;
    /* What edge_slot_stats reports as each slot's release (a copy: tables are
     * freed by this thread, while any thread may ask). */
    pthread_mutex_lock(&w->e->err_lock);
    memset(w->e->slot_release[idx], 0, sizeof(w->e->slot_release[idx]));
    w->e->live_slot[idx] = live ? live->slot : -1;
    for (int k = 0; k < 2; k++) {
        struct table *t = k ? preview : live;
        if (t && t->slot >= 0 && t->slot < EDGE_SLOTS)
            snprintf(w->e->slot_release[idx][t->slot], sizeof(w->e->slot_release[idx][t->slot]),
                     "%s", t->release_id);
    }
    pthread_mutex_unlock(&w->e->err_lock);
    if (old_live && old_live != live && old_live != preview)
        retire(w, old_live, NULL);
    if (old_preview && old_preview != live && old_preview != preview && old_preview != old_live)
        retire(w, old_preview, NULL);
    if (old_replaced != replaced)
        retire(w, NULL, old_replaced);
}

/*
 * The paths of the release the live one replaced: the state's previous release, which every
 * deploy, switch and rollback that changes the live release sets to the one live just before
 * (so after a rollback it is the release rolled back from). NULL when errors: regressed_404
 * is off, when there is none, or when its manifest cannot be read (gc removes it once
 * keep_previous is over): that is said once per state and nothing counts as regressed;
 * serving goes on.
 */
static struct pathset *replaced_for(struct watch *w, int idx, const struct env_state *st,
                                    const struct table *live)
{
    struct wsite *ws = &w->ws[idx];
    const char *prev = st->previous_release;
    if (!ws->cfg->errors.regressed_404 || !live || !prev || !strcmp(prev, live->release_id))
        return NULL;
    if (ws->replaced && !strcmp(ws->replaced->release_id, prev))
        return ws->replaced;
    struct pathset *p = NULL;
    struct sw_err err = {0};
    if (pathset_load(w->e->o->store, prev, &p, &err) != 0) {
        edge_log(w->e, "%s: 404s are not checked for regressions while %s is live: %s",
                 w->e->sites[idx].name, live->release_id, err.msg);
        return NULL;
    }
    return p;
}

/* The error shown by /_slipway/ready (workers read it under the same lock)
 * and what failed (FAILED_*, 0 with an empty msg). */
static void set_error(struct watch *w, int idx, int failed, const char *msg)
{
    w->ws[idx].failed = failed;
    pthread_mutex_lock(&w->e->err_lock);
    snprintf(w->e->site_error[idx], sizeof(w->e->site_error[idx]), "%s", msg);
    pthread_mutex_unlock(&w->e->err_lock);
}

/* Follows site idx's state one step. Returns 1 when its state could not be
 * read because the store could not be reached, else 0. */
static int poll_site(struct watch *w, int idx)
{
    struct wsite *ws = &w->ws[idx];
    struct site *s = &w->e->sites[idx];
    struct env_state *st = NULL;
    struct sw_err err = {0};
    struct table *live = NULL, *preview = NULL;
    int state_failed = 0;
    /* Unchanged and loaded: a conditional read (a 304 on S3) and done. */
    int quiet = ws->etag[0] && !ws->failed && !ws->rebuild;
    int rc = quiet ? deploy_state_poll(w->e->o->store, s->name, ws->etag, &st, &err)
                   : deploy_state_load(w->e->o->store, s->name, &st, &err);
    if (rc) {
        state_failed = 1;
        goto fail;
    }
    if (!st)
        return 0;
    /* Unchanged: nothing to do, unless a load failed and its retry is due, or
     * the last read failed (then the tables are checked against the state,
     * which normally keeps them, and the failure is over at once). */
    if (ws->etag[0] && !strcmp(ws->etag, st->etag) &&
        (!ws->failed || (ws->failed == FAILED_LOAD && time_mono_ms() < ws->retry_at_ms))) {
        env_state_free(st);
        return 0;
    }
    /* A new state is a new attempt: retry it at once if it fails too. */
    if (strcmp(ws->etag, st->etag) != 0)
        ws->backoff_ms = 0;
    /* The change happened in the store whether or not its release loads. */
    if (ws->known && st->generation > ws->generation && w->e->o->on_change && st->last.action[0])
        w->e->o->on_change(w->e->o->on_change_arg, s->name, st->last.action, st->last.to,
                           st->last.time_ms > 0 ? st->last.time_ms : time_now_ms());
    ws->generation = st->generation;
    ws->known = 1;
    const char *preview_id = NULL;
    if (ws->cfg->strategy == STRATEGY_BLUE_GREEN && st->strategy == STRATEGY_BLUE_GREEN)
        preview_id = st->slot_release[deploy_idle_slot(st)];
    if ((rc = table_for(w, idx, st->live_release, &live, &err)))
        goto fail;
    if (preview_id && live && !strcmp(preview_id, live->release_id))
        preview = live;
    else if ((rc = table_for(w, idx, preview_id, &preview, &err)))
        goto fail;
    /* A release stays in its slot when the slot goes live: label tables once. */
    if (live && live != ws->live && live != ws->preview)
        live->slot = st->strategy == STRATEGY_BLUE_GREEN ? st->live_slot : 2;
    if (preview && preview != live && preview != ws->live && preview != ws->preview)
        preview->slot = deploy_idle_slot(st);
    publish(w, idx, live, preview, replaced_for(w, idx, st, live));
    atomic_store(&s->live_state, live ? 1 : 0);
    atomic_store(&s->strategy, (int)ws->cfg->strategy);
    atomic_store(&s->regressed_404, ws->cfg->errors.regressed_404);
    memcpy(ws->etag, st->etag, sizeof(ws->etag));
    ws->rebuild = 0;
    /* Only a failure that was said is said to be over: the store's own come
     * and go in one line each (log_store). */
    if (ws->logged[0])
        edge_log(w->e, "%s: loaded release %s; the earlier failure is over", s->name,
                 live ? live->release_id : "(none)");
    ws->backoff_ms = 0;
    ws->logged[0] = '\0';
    atomic_store(&s->load_failure, LOAD_OK);
    set_error(w, idx, 0, "");
    env_state_free(st);
    return 0;
fail:
    /* Keep serving what is loaded; report through /_slipway/ready, the
     * metrics and stderr, and try again later. */
    if (live && live != ws->live && live != ws->preview)
        table_free(live);
    /* A store that cannot be reached is no release failing to load: it has a
     * status of its own (/_slipway/health, slipway_store_up), and what is
     * served is still the newest release known. With nothing loaded, it is
     * what the 503 explains. */
    int down = state_failed && unreachable(rc);
    if (!down)
        atomic_fetch_add(&w->e->load_failures[idx], 1);
    if (!down || !ws->live)
        atomic_store(&s->load_failure, classify(rc, state_failed));
    if (st)
        memcpy(ws->etag, st->etag, sizeof(ws->etag));
    ws->backoff_ms = ws->backoff_ms ? ws->backoff_ms * 2 : RETRY_FIRST_MS;
    if (ws->backoff_ms > RETRY_MAX_MS)
        ws->backoff_ms = RETRY_MAX_MS;
    ws->retry_at_ms = time_mono_ms() + ws->backoff_ms;
    if (!down && strcmp(ws->logged, err.msg) != 0) {
        char kept[160];
        snprintf(kept, sizeof(kept), ws->live ? "keeps serving release %s" : "%s",
                 ws->live ? ws->live->release_id : "has nothing older to serve (503)");
        edge_log(w->e, "%s: %s; %s; retrying", s->name, err.msg, kept);
        snprintf(ws->logged, sizeof(ws->logged), "%s", err.msg);
    }
    set_error(w, idx, down ? FAILED_STORE : state_failed ? FAILED_STATE : FAILED_LOAD, err.msg);
    /* Nothing to serve is an error, unless the state said so (nothing
     * deployed) and only the store's absence keeps it from being read now. */
    if (!ws->live && !(down && ws->known))
        atomic_store(&s->live_state, -1);
    env_state_free(st);
    return down;
}

/* One round: every site's state, from w->first on. A site whose state read
 * finds the store unreachable ends the round: the others would wait out the
 * same timeout, and they keep serving what they have. The next round starts
 * with the site after it, so the first to be tried moves on, and one
 * environment whose state alone cannot be read never keeps the others from
 * being followed. */
static void poll_all(struct watch *w)
{
    /* A stop is not kept waiting for the other sites' polls either. */
    for (int k = 0; k < EDGE_MAX_SITES && !atomic_load(&w->stop); k++) {
        int i = (w->first + k) % EDGE_MAX_SITES;
        if (w->ws[i].cfg && poll_site(w, i)) {
            w->first = (i + 1) % EDGE_MAX_SITES;
            return;
        }
    }
}

/* Says once when the store becomes unreachable, and once when it is back. */
static void log_store(struct watch *w)
{
    struct store_status ss;
    store_status(w->e->o->store, &ss);
    if (ss.degraded == w->store_down)
        return;
    w->store_down = ss.degraded;
    char d[32];
    duration_format(ss.since_ms - w->down_since_ms, d, sizeof(d));
    w->down_since_ms = ss.since_ms;
    if (ss.degraded)
        edge_log(w->e,
                 "the store cannot be reached: %s; every environment keeps serving what it has, "
                 "checking again every %lld ms",
                 ss.error, (long long)w->e->o->poll_ms);
    else
        edge_log(w->e, "the store is reachable again (it was not for %s); following its state", d);
}

/* Applies a pending SIGHUP reload: new, changed and removed environments. */
static void apply_reload(struct watch *w)
{
    pthread_mutex_lock(&w->lock);
    if (!w->have_pending) {
        pthread_mutex_unlock(&w->lock);
        return;
    }
    struct env_config **envs = w->pending;
    size_t n = w->npending;
    w->have_pending = 0;
    pthread_mutex_unlock(&w->lock);
    int seen[EDGE_MAX_SITES] = {0};
    for (size_t i = 0; i < n; i++) {
        int idx = edge_site_index(w->e, envs[i]->name, 0);
        if (idx < 0)
            continue;
        seen[idx] = 1;
        struct wsite *ws = &w->ws[idx];
        /* Settings baked into tables (cache rules, fallback) may have changed:
         * rebuild this site's tables from scratch. The old ones stay published
         * until the new ones replace them, so an unchanged listener never
         * answers 503 during a reload. */
        ws->rebuild = 1;
        ws->cfg = envs[i];
        ws->etag[0] = '\0';
        atomic_store(&w->e->sites[idx].active, 1);
        poll_site(w, idx);
    }
    for (int idx = 0; idx < EDGE_MAX_SITES; idx++)
        if (!seen[idx] && w->ws[idx].cfg) {
            atomic_store(&w->e->sites[idx].active, 0);
            publish(w, idx, NULL, NULL, NULL);
            w->ws[idx].cfg = NULL;
            w->ws[idx].etag[0] = '\0';
            w->ws[idx].known = 0;
        }
    env_configs_free(w->envs, w->nenvs);
    w->envs = envs;
    w->nenvs = n;
}

/* Waits one poll interval, or less: a state change made on this host (a
 * deploy, a switch, a rollback: deploy_state_save notifies "envs") or a stop
 * wakes the watcher at once. The interval stays the bound for other stores,
 * other hosts and a notice lost. */
static void watch_wait(struct watch *w)
{
    int64_t ms = w->e->o->poll_ms;
    struct pollfd p[2] = {{w->notify, POLLIN, 0}, {w->stop_fd, POLLIN, 0}};
    int n = poll(p, 2, ms > INT_MAX ? INT_MAX : (int)ms);
    if (n > 0 && (p[0].revents & POLLIN))
        store_watch_drain(w->notify);
}

/* A table load builds the manifest's parse tree and fetch buffers, freed when it ends, in the
 * middle of a heap the table's own blocks then pin: glibc keeps those free pages resident. Handing
 * them back after each change is worth 16 MiB of RSS with a 10,000-file release (bench/edge.sh)
 * and costs a walk of the free lists, once per change, on this thread. */
static void give_back(struct watch *w)
{
    if (!w->loaded)
        return;
    w->loaded = 0;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static void *watch_thread(void *arg)
{
    struct watch *w = arg;
    while (!atomic_load(&w->stop)) {
        watch_wait(w);
        if (atomic_load(&w->stop))
            break;
        apply_reload(w);
        poll_all(w);
        log_store(w);
        reap(w);
        give_back(w);
    }
    return NULL;
}

static void close_fds(struct watch *w)
{
    if (w->notify >= 0)
        close(w->notify);
    if (w->stop_fd >= 0)
        close(w->stop_fd);
}

int watch_start(struct edge *e, struct env_config **envs, size_t n, struct watch **out,
                struct sw_err *err)
{
    struct watch *w = xcalloc(1, sizeof(*w));
    struct sw_err werr = {0};
    w->e = e;
    pthread_mutex_init(&w->lock, NULL);
    w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    /* a hint: without it (other stores, inotify refused) the poll interval applies */
    if (store_watch(e->o->store, "envs", &w->notify, &werr) < 0)
        edge_log(e, "%s; state is checked every %lld ms", werr.msg, (long long)e->o->poll_ms);
    w->envs = envs;
    w->nenvs = n;
    for (size_t i = 0; i < n; i++) {
        int idx = edge_site_index(e, envs[i]->name, 0);
        if (idx < 0)
            continue;
        w->ws[idx].cfg = envs[i];
        atomic_store(&e->sites[idx].active, 1);
        poll_site(w, idx);
    }
    /* What the first loads did not take is left from an earlier process. */
    blob_cache_sweep(e->cache);
    give_back(w);
    if (pthread_create(&w->thread, NULL, watch_thread, w) != 0) {
        close_fds(w);
        free(w);
        return sw_err_set(err, SW_EIO, "cannot start the watcher thread");
    }
    *out = w;
    return 0;
}

void watch_reload(struct watch *w, struct env_config **envs, size_t n)
{
    pthread_mutex_lock(&w->lock);
    if (w->have_pending)
        env_configs_free(w->pending, w->npending);
    w->pending = envs;
    w->npending = n;
    w->have_pending = 1;
    pthread_mutex_unlock(&w->lock);
}

void watch_stop(struct watch *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, 1);
    uint64_t one = 1;
    if (w->stop_fd >= 0 && write(w->stop_fd, &one, sizeof(one)) < 0) {
        /* cannot fail short of a full counter: the flag is set either way */
    }
    pthread_join(w->thread, NULL);
    close_fds(w);
    /* Workers are gone: everything can be freed now. */
    for (int i = 0; i < EDGE_MAX_SITES; i++)
        publish(w, i, NULL, NULL, NULL);
    for (size_t k = 0; k < w->nretired; k++) {
        table_free(w->retired[k].t);
        pathset_free(w->retired[k].ps);
    }
    free(w->retired);
    pthread_mutex_lock(&w->lock);
    if (w->have_pending)
        env_configs_free(w->pending, w->npending);
    pthread_mutex_unlock(&w->lock);
    env_configs_free(w->envs, w->nenvs);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
