/*
 * The watch: after a deploy or switch changes what serves an environment's
 * traffic, the release that went live is watched for the environment's
 * watch.duration. A critical alert inside that window rolls it back (or is
 * only logged, with on_critical: notify); the window's end is recorded as a
 * verdict ("passed", "not enough traffic ..."). docs/environments.md, "Watch
 * and automatic rollback".
 *
 * The one idea: the window is a fact of the environment's state, never of
 * this process. It opens with the state's last change (a deploy or switch
 * that went live) and closes with the next one, so every node sharing the
 * store judges the same window, and each change the watch makes is a
 * compare-and-swap on the generation it judged (deploy_opts.if_generation):
 * of several nodes that see the same incident exactly one rolls back, the
 * others find the rollback when they look again and say so, once each (their
 * own alert finds it, or the state read every interval_ms shows it when their
 * rule never fired: note_rollback); a rollback that finds a person's change
 * in its place gives way. The rollback is itself a
 * change that opens no window, so no rollback is ever rolled back.
 *
 * Alerts come from the sampler's thread and from edge workers (the
 * Alertmanager hook); they are copied into a bounded queue and judged on the
 * watch's own thread, which may wait on the store and the lock.
 */
#include "monitor/monitor.h"
#include "deploy/deploy.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_MAX 64
#define LOCKED_WAIT_MS 250 /* between attempts while another change holds the lock */
#define LOCKED_ATTEMPTS 40 /* 10 s: then the watch gives way */
#define MEMO_MAX 1024

struct item {
    char env[64], rule[64], source[16];
    char detail[512];
    char release[RELEASE_ID_MAX + 1]; /* "" : whatever is live */
    int64_t at_ms;
};

/* What this node did about one environment's current window. */
struct memo {
    char env[64];
    int64_t generation; /* the window's change: its verdict was handled */
    int64_t criticals_gen;
    unsigned criticals;   /* critical alerts seen inside that window */
    int64_t rollback_gen; /* the automatic rollback this node made, found or noted */
};

struct monitor_watch {
    struct monitor_watch_opts o;
    pthread_t thread;
    int running;
    pthread_mutex_t lock; /* guards the queue, stop and stats */
    pthread_cond_t cond;
    int stop;
    struct item q[QUEUE_MAX];
    size_t qhead, qn;
    struct monitor_watch_stats stats;
    int64_t started_ms; /* wall: windows that ended before get no verdict */
    struct memo *memo;  /* the watch thread's own */
    char locked[1024];  /* the watch thread's: why the last rollback found a lock */
    size_t nmemo;
};

static void say(struct monitor_watch *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(struct monitor_watch *w, const char *fmt, ...)
{
    if (!w->o.log)
        return;
    struct buf b = BUF_INIT;
    va_list ap;
    buf_adds(&b, "watch: ");
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    w->o.log(w->o.log_arg, b.data);
    buf_free(&b);
}

/* The same, as data, for the incident journal (o.on_event). it NULL: a verdict. */
static void tell(struct monitor_watch *w, enum monitor_watch_event_kind kind, const char *env,
                 const struct item *it, const char *release, const char *to, const char *text)
{
    if (!w->o.on_event)
        return;
    struct monitor_watch_event e = {kind,
                                    env,
                                    it ? it->rule : NULL,
                                    it ? it->source : NULL,
                                    it ? it->at_ms : 0,
                                    release && release[0] ? release : NULL,
                                    to,
                                    text,
                                    time_now_ms()};
    w->o.on_event(w->o.event_arg, &e);
}

static int str_eq(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

int monitor_watch_window(const struct env_config *c, const struct env_state *s, int64_t *start_ms,
                         int64_t *end_ms)
{
    const struct env_change *l = &s->last;
    if (!c->watch.duration_ms || !s->live_release || l->switched != 1 ||
        (strcmp(l->action, "deploy") != 0 && strcmp(l->action, "switch") != 0) ||
        !str_eq(l->to, s->live_release))
        return 0;
    *start_ms = l->time_ms;
    *end_ms = l->time_ms + c->watch.duration_ms;
    return 1;
}

enum monitor_watch_decision monitor_watch_judge(const struct env_config *c,
                                                const struct env_state *s, const char *release,
                                                int64_t now_ms, struct buf *why)
{
    int64_t start, end;
    char d[32];
    if (!c->watch.duration_ms) {
        buf_addf(why, "%s has no watch", c->name);
        return MONITOR_WATCH_UNWATCHED;
    }
    if (!s->live_release) {
        buf_addf(why, "nothing is live on %s", c->name);
        return MONITOR_WATCH_OUTSIDE;
    }
    if (release && !str_eq(release, s->live_release)) {
        buf_addf(why, "the alert is about %s, but %s is live on %s", release, s->live_release,
                 c->name);
        return MONITOR_WATCH_OTHER;
    }
    if (!monitor_watch_window(c, s, &start, &end)) {
        buf_addf(why, "no watch window is open on %s: its last change was a %s", c->name,
                 s->last.action[0] ? s->last.action : "(none)");
        if (!strcmp(s->last.action, "deploy") && s->last.switched == 0)
            buf_adds(why, " to the idle slot");
        return MONITOR_WATCH_OUTSIDE;
    }
    if (now_ms > end) {
        duration_format(c->watch.duration_ms, d, sizeof(d));
        buf_addf(why, "%s went live on %s more than %s ago: its watch is over", s->live_release,
                 c->name, d);
        return MONITOR_WATCH_OUTSIDE;
    }
    if (c->watch.on_critical == ENV_WATCH_NOTIFY) {
        buf_addf(why, "%s is watched on %s with on_critical: notify", s->live_release, c->name);
        return MONITOR_WATCH_NOTIFY;
    }
    duration_format(now_ms > start ? now_ms - start : 0, d, sizeof(d));
    buf_addf(why, "%s went live on %s %s ago, inside its watch", s->live_release, c->name, d);
    return MONITOR_WATCH_ROLLBACK;
}

static struct memo *memo_get(struct monitor_watch *w, const char *env)
{
    for (size_t i = 0; i < w->nmemo; i++)
        if (!strcmp(w->memo[i].env, env))
            return &w->memo[i];
    if (w->nmemo == MEMO_MAX)
        return NULL;
    struct memo *m = &w->memo[w->nmemo++];
    memset(m, 0, sizeof(*m));
    snprintf(m->env, sizeof(m->env), "%s", env);
    return m;
}

static void count(struct monitor_watch *w, uint64_t *field)
{
    pthread_mutex_lock(&w->lock);
    (*field)++;
    pthread_mutex_unlock(&w->lock);
}

/* Another change took the state the watch judged: says whose. */
static void gave_way(struct monitor_watch *w, const struct item *it, const char *judged,
                     const struct env_state *s)
{
    const struct env_change *l = &s->last;
    if (!strcmp(l->action, "rollback") && str_eq(l->from, judged)) {
        say(w, "%s: %s was already rolled back to %s by %s (%s)", it->env, judged,
            l->to ? l->to : "(nothing)", l->actor ? l->actor : "?",
            l->message ? l->message : "no message");
        char *text = xasprintf("already rolled back by %s (%s)", l->actor ? l->actor : "?",
                               l->message ? l->message : "no message");
        tell(w, MONITOR_WATCH_EVENT_ROLLED_BACK, it->env, it, judged, l->to, text);
        free(text);
        struct memo *m = memo_get(w, it->env);
        if (!m || m->rollback_gen != l->generation) /* counted once, however it was found */
            count(w, &w->stats.rolled_back_elsewhere);
        if (m)
            m->rollback_gen = l->generation;
        return;
    }
    say(w, "%s: the rollback of %s gave way to a newer change (%s of %s by %s)", it->env, judged,
        l->action, l->to ? l->to : "(nothing)", l->actor ? l->actor : "?");
    char *text = xasprintf("gave way to a newer change (%s of %s by %s)", l->action,
                           l->to ? l->to : "(nothing)", l->actor ? l->actor : "?");
    tell(w, MONITOR_WATCH_EVENT_SKIPPED, it->env, it, judged, NULL, text);
    free(text);
    count(w, &w->stats.gave_way);
}

/* s's last change is the rollback of judged, which is no longer live. */
static int rolled_back(const struct env_state *s, const char *judged)
{
    return judged[0] && !strcmp(s->last.action, "rollback") && str_eq(s->last.from, judged) &&
           !str_eq(s->live_release, judged);
}

static int is_rejected(const struct env_state *s, const char *release)
{
    for (size_t i = 0; i < s->nrejected; i++)
        if (str_eq(s->rejected[i].release, release))
            return 1;
    return 0;
}

/* An automatic rollback another node made (its release rejected) since this
 * one started, and that this node has neither made nor found: said once. A
 * node whose edge served the release rolled back to before its own rule's
 * `for` was over never has an alert to judge; this is how it records that
 * the rollback happened. */
static void note_rollback(struct monitor_watch *w, const char *env, const struct env_state *s)
{
    const struct env_change *l = &s->last;
    struct memo *m;
    if (strcmp(l->action, "rollback") != 0 || !l->from || l->time_ms < w->started_ms ||
        !is_rejected(s, l->from) || !(m = memo_get(w, env)) || m->rollback_gen == l->generation)
        return;
    m->rollback_gen = l->generation;
    say(w, "%s: %s was rolled back to %s by %s, another node's watch (%s)", env, l->from,
        l->to ? l->to : "(nothing)", l->actor ? l->actor : "?",
        l->message ? l->message : "no message");
    char *text = xasprintf("rolled back by %s, another node's watch (%s)",
                           l->actor ? l->actor : "?", l->message ? l->message : "no message");
    tell(w, MONITOR_WATCH_EVENT_ROLLED_BACK, env, NULL, l->from, l->to, text);
    free(text);
    count(w, &w->stats.rolled_back_elsewhere);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* What one look at the state ended in: done (said), or look again. */
enum look { LOOK_DONE, LOOK_AGAIN, LOOK_LOCKED };

/* Something went wrong that is not the state moving: said, and done. */
static void skipped(struct monitor_watch *w, const struct item *it, const char *release,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void skipped(struct monitor_watch *w, const struct item *it, const char *release,
                    const char *fmt, ...)
{
    struct buf text = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&text, fmt, ap);
    va_end(ap);
    say(w, "%s: %s", it->env, text.data);
    tell(w, MONITOR_WATCH_EVENT_SKIPPED, it->env, it, release, NULL, text.data);
    buf_free(&text);
}

/* Inside the window, on_critical: notify: counted for the window's verdict. */
static void count_critical(struct monitor_watch *w, const char *env, int64_t generation)
{
    struct memo *m = memo_get(w, env);
    if (!m)
        return;
    if (m->criticals_gen != generation) {
        m->criticals_gen = generation;
        m->criticals = 0;
    }
    m->criticals++;
}

/* Rolls judged back by compare-and-swap on generation; the reason is the
 * alert. DEPLOY_ELOCKED, DEPLOY_ESTALE and SW_ECONFLICT are returned
 * unsaid: the caller looks again. */
static int rollback(struct monitor_watch *w, const struct item *it, const struct env_config *c,
                    const struct env_state *s, const char *judged)
{
    struct sw_err err = {0};
    char *reason = xasprintf("%s (critical, from %s): %s", it->rule, it->source, it->detail);
    char *message = xasprintf("automatic rollback: %s", reason);
    struct deploy_opts o = {
        .actor = w->o.actor, .message = message, .if_generation = s->generation, .reject = reason};
    struct deploy_result res = {0};
    int rc = deploy_rollback(w->o.store, c, NULL, &o, &res, &err);
    if (!rc) {
        char took[32];
        duration_format(time_now_ms() - s->last.time_ms, took, sizeof(took));
        say(w, "%s: rolled back %s -> %s, %s after it went live: %s", it->env, judged,
            res.to ? res.to : "(nothing)", took, reason);
        tell(w, MONITOR_WATCH_EVENT_ROLLED_BACK, it->env, it, judged, res.to, reason);
        count(w, &w->stats.rollbacks);
        struct memo *m = memo_get(w, it->env);
        if (m) /* this node's own: never noted as another's */
            m->rollback_gen = res.generation;
    } else if (rc == DEPLOY_ELOCKED) {
        /* the lock holder's message is what a give-up says */
        snprintf(w->locked, sizeof(w->locked), "%s", err.msg);
    } else if (rc != DEPLOY_ESTALE && rc != SW_ECONFLICT) {
        skipped(w, it, judged, "the automatic rollback of %s failed: %s", judged, err.msg);
    }
    deploy_result_free(&res);
    free(message);
    free(reason);
    return rc;
}

/* One look at the environment's state for the alert: judged against it, and
 * rolled back when inside an open window. judged (the release the alert is
 * about) is pinned at the first look; *generation is what the last look
 * tried to change (0: none). */
static enum look look(struct monitor_watch *w, const struct item *it, const struct env_config *c,
                      char judged[RELEASE_ID_MAX + 1], int64_t *generation)
{
    struct env_state *s = NULL;
    struct sw_err err = {0};
    if (deploy_state_load(w->o.store, it->env, &s, &err)) {
        skipped(w, it, it->release, "critical alert %s: %s; nothing rolled back", it->rule,
                err.msg);
        return LOOK_DONE;
    }
    if (!judged[0]) /* pinned: a later look never judges a newer release */
        snprintf(judged, RELEASE_ID_MAX + 1, "%s",
                 it->release[0]    ? it->release
                 : s->live_release ? s->live_release
                                   : "");
    enum look next = LOOK_DONE;
    struct buf why = BUF_INIT;
    /* The state moved since it was judged, or the alert is about a release
     * another node has rolled back already (its sampler was a tick ahead):
     * either way the alert finds what was done, and says so. */
    if ((*generation && s->generation != *generation) || rolled_back(s, judged)) {
        gave_way(w, it, judged, s);
        goto out;
    }
    enum monitor_watch_decision d =
        monitor_watch_judge(c, s, judged[0] ? judged : NULL, time_now_ms(), &why);
    if (d != MONITOR_WATCH_ROLLBACK) {
        say(w, "critical alert %s on %s (%s): %s; nothing rolled back", it->rule, it->env,
            it->detail, why.data ? why.data : "");
        tell(w, MONITOR_WATCH_EVENT_SKIPPED, it->env, it, judged, NULL, why.data ? why.data : "");
        if (d == MONITOR_WATCH_NOTIFY)
            count_critical(w, it->env, s->generation);
        goto out;
    }
    *generation = s->generation;
    int rc = rollback(w, it, c, s, judged);
    /* Locked: look again once the lock is free; a change its holder made
     * shows as a newer generation, and the look gives way to it by name. */
    if (rc == DEPLOY_ELOCKED)
        next = LOOK_LOCKED;
    else if (rc == DEPLOY_ESTALE || rc == SW_ECONFLICT)
        next = LOOK_AGAIN; /* the state moved under us: the next look says by whom */
out:
    buf_free(&why);
    env_state_free(s);
    return next;
}

/* One critical alert: looked at until it is done, waiting out a lock held
 * by another change for at most LOCKED_ATTEMPTS x LOCKED_WAIT_MS. */
static void handle_alert(struct monitor_watch *w, const struct item *it)
{
    struct env_config *c = NULL;
    struct sw_err err = {0};
    if (env_config_find(w->o.envs_dir, it->env, &c, &err)) {
        skipped(w, it, it->release, "critical alert %s: %s; nothing rolled back", it->rule,
                err.msg);
        return;
    }
    char judged[RELEASE_ID_MAX + 1] = "";
    int64_t generation = 0;
    for (int attempt = 0; attempt < LOCKED_ATTEMPTS; attempt++) {
        enum look l = look(w, it, c, judged, &generation);
        if (l == LOOK_DONE)
            break;
        if (l == LOOK_LOCKED && attempt + 1 == LOCKED_ATTEMPTS) {
            skipped(w, it, judged, "the rollback of %s gave way: %s", judged, w->locked);
            count(w, &w->stats.gave_way);
            break;
        }
        if (l == LOOK_LOCKED)
            sleep_ms(LOCKED_WAIT_MS);
    }
    env_config_free(c);
}

/* The words of a window's verdict, from what the sampler could judge. */
static void verdict_text(struct monitor_watch *w, const struct env_config *c,
                         const struct env_state *s, int64_t start, const struct memo *m,
                         struct buf *out)
{
    struct monitor_judged j = {0};
    char d[32];
    duration_format(c->watch.duration_ms, d, sizeof(d));
    int sampled = w->o.sampler && !monitor_sampler_judged(w->o.sampler, c->name, &j);
    if (m && m->criticals_gen == s->generation && m->criticals)
        buf_addf(out,
                 "critical alerts: %u critical alert%s fired in the %s watch of %s "
                 "(on_critical: notify)",
                 m->criticals, m->criticals == 1 ? "" : "s", d, s->live_release);
    else if (sampled && !j.critical)
        buf_addf(out, "no verdict: no critical rule applies to %s", c->name);
    else if (sampled && j.verdict_ms >= start)
        buf_addf(out, "passed: %s was watched for %s and no critical alert fired", s->live_release,
                 d);
    else if (sampled)
        buf_addf(out,
                 "not enough traffic: %s had no verdict on %s in its %s watch (%llu requests "
                 "in the last window, min_requests %lld)",
                 j.rule, s->live_release, d, (unsigned long long)j.requests,
                 (long long)j.min_requests);
    else
        buf_addf(out, "not enough traffic: this node measured nothing of %s in its %s watch",
                 s->live_release, d);
}

/* Records the verdict of every watch window that has ended, and notes
 * another node's automatic rollback. Without a sampler (serve --no-monitor)
 * nothing was measured: no verdict. */
static void check_windows(struct monitor_watch *w)
{
    struct env_config **v = NULL;
    size_t n = 0;
    struct sw_err err = {0};
    if (env_configs_load_dir(w->o.envs_dir, &v, &n, &err))
        return; /* the edge and the sampler say what is wrong with the files */
    int64_t now = time_now_ms();
    for (size_t i = 0; i < n; i++) {
        struct env_state *s = NULL;
        int64_t start, end;
        struct memo *m;
        if (!v[i]->watch.duration_ms || deploy_state_load(w->o.store, v[i]->name, &s, &err))
            continue;
        note_rollback(w, v[i]->name, s);
        if (!w->o.sampler || !monitor_watch_window(v[i], s, &start, &end) || now < end ||
            !(m = memo_get(w, v[i]->name)) || m->generation == s->generation) {
            env_state_free(s);
            continue;
        }
        m->generation = s->generation;
        if (end < w->started_ms) { /* ended while no one here watched */
            env_state_free(s);
            continue;
        }
        struct buf text = BUF_INIT;
        verdict_text(w, v[i], s, start, m, &text);
        char *message = xasprintf("watch of %s ended: %s", s->live_release, text.data);
        struct deploy_opts o = {
            .actor = w->o.actor, .message = message, .if_generation = s->generation};
        struct deploy_result res = {0};
        int rc = deploy_verdict(w->o.store, v[i], &o, &res, &err);
        if (!rc) {
            say(w, "%s: %s", v[i]->name, message);
            tell(w, MONITOR_WATCH_EVENT_VERDICT, v[i]->name, NULL, s->live_release, NULL,
                 text.data);
            count(w, &w->stats.verdicts);
        } else if (rc != DEPLOY_ESTALE && rc != SW_ECONFLICT && rc != DEPLOY_ELOCKED) {
            say(w, "%s: the verdict of %s was not recorded: %s", v[i]->name, s->live_release,
                err.msg);
        } /* else another node recorded it, or a newer change ended the window */
        deploy_result_free(&res);
        free(message);
        buf_free(&text);
        env_state_free(s);
    }
    env_configs_free(v, n);
}

static void *thread_main(void *arg)
{
    struct monitor_watch *w = arg;
    int64_t next = time_mono_ms();
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        if (w->qn) {
            struct item it = w->q[w->qhead];
            w->qhead = (w->qhead + 1) % QUEUE_MAX;
            w->qn--;
            pthread_mutex_unlock(&w->lock);
            handle_alert(w, &it);
            pthread_mutex_lock(&w->lock);
            continue;
        }
        int64_t now = time_mono_ms();
        if (now >= next) {
            pthread_mutex_unlock(&w->lock);
            check_windows(w);
            pthread_mutex_lock(&w->lock);
            next = time_mono_ms() + w->o.interval_ms;
            continue;
        }
        struct timespec ts = {(time_t)(next / 1000), (long)(next % 1000) * 1000000};
        pthread_cond_timedwait(&w->cond, &w->lock, &ts);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

void monitor_watch_opts_init(struct monitor_watch_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->interval_ms = MONITOR_INTERVAL_MS;
}

int monitor_watch_start(const struct monitor_watch_opts *o, struct monitor_watch **out,
                        struct sw_err *err)
{
    if (!o->store || !o->envs_dir || !o->actor || o->interval_ms < 1)
        return sw_err_set(err, SW_EINVAL, "watch: needs a store, the environments and an actor");
    struct monitor_watch *w = xcalloc(1, sizeof(*w));
    w->o = *o;
    w->started_ms = time_now_ms();
    w->memo = xcalloc(MEMO_MAX, sizeof(*w->memo));
    pthread_mutex_init(&w->lock, NULL);
    cond_init_monotonic(&w->cond);
    int e = pthread_create(&w->thread, NULL, thread_main, w);
    if (e) {
        monitor_watch_free(w);
        return sw_err_set(err, SW_EIO, "watch: cannot start its thread: %s", strerror(e));
    }
    w->running = 1;
    *out = w;
    return 0;
}

void monitor_watch_critical(struct monitor_watch *w, const struct monitor_critical *c)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stats.alerts++;
    if (w->qn == QUEUE_MAX) { /* a burst: the newest alerts matter, as in the notifier */
        w->qhead = (w->qhead + 1) % QUEUE_MAX;
        w->qn--;
        w->stats.dropped++;
    }
    struct item *it = &w->q[(w->qhead + w->qn++) % QUEUE_MAX];
    snprintf(it->env, sizeof(it->env), "%s", c->env);
    snprintf(it->rule, sizeof(it->rule), "%s", c->rule);
    snprintf(it->source, sizeof(it->source), "%s", c->source);
    snprintf(it->detail, sizeof(it->detail), "%s", c->detail ? c->detail : "");
    snprintf(it->release, sizeof(it->release), "%s", c->release ? c->release : "");
    it->at_ms = c->at_ms;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void monitor_watch_stats(struct monitor_watch *w, struct monitor_watch_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->lock);
}

void monitor_watch_stop(struct monitor_watch *w)
{
    if (!w || !w->running)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    w->running = 0;
}

void monitor_watch_free(struct monitor_watch *w)
{
    if (!w)
        return;
    monitor_watch_stop(w);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w->memo);
    free(w);
}
