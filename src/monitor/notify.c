/*
 * The notifier: alerts out to Alertmanager and to webhooks, on a thread of
 * its own, so that no evaluation, deploy or rollback ever waits on a slow or
 * dead receiver.
 *
 * The one idea: two hand-offs, each bounded. Producers (the sampler, the
 * edge's watcher) copy transitions into a ring under a lock held only for
 * the copy; a full ring drops its oldest entry. The thread turns what it
 * takes into messages, one per target, kept in order in the target's own
 * bounded list, and tries each message's head when it is due: at once, then
 * after a backoff that doubles with jitter, up to `retries` more times, and
 * then logs it as lost. A dead Alertmanager delays only its own messages.
 *
 * Alertmanager expects its clients to re-send firing alerts (its "Sending
 * alerts" page: every 30 s to 3 min), so the thread keeps the alerts firing
 * now, by fingerprint, and re-sends them every `resend`, each with an endsAt
 * of 4 x resend ahead, as Prometheus does: if slipway stops, Alertmanager
 * resolves them by itself. Webhooks hear each change once.
 */
#include "base/curl.h"
#include "monitor/monitor.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TARGET_MSGS_MAX 64 /* messages waiting for one target */
#define ACTIVE_MAX 4096    /* firing alerts kept for re-sending */
#define REPLY_KEEP 200     /* bytes of a refusal's body kept for the log */

enum { TARGET_ALERTMANAGER, TARGET_WEBHOOK };

/* A firing alert a message carries, for on_delivery: who hears of it. */
struct carried {
    char env[64], rule[64], fingerprint[17];
    int64_t starts_ms;
};

struct msg {
    struct msg *next;
    struct carried *alerts; /* the firing alerts of a first send (not a re-send) */
    size_t nalerts;
    char *body;
    size_t len;
    int attempts;   /* made so far */
    int64_t due_ms; /* monotonic: the next attempt */
    char *what;     /* for the log: "2 alerts: high-error-rate env=staging firing, ..." */
};

struct target {
    int kind;
    char *url;     /* what is POSTed to */
    char *display; /* for the log: kind and origin, never a path or credentials */
    struct msg *head, *tail;
    size_t n;
};

struct monitor_notify {
    const struct monitor_config *c;
    void (*log)(void *arg, const char *line);
    void *log_arg;
    void (*on_delivery)(void *arg, const struct monitor_notify_delivery *d);
    void *delivery_arg;

    pthread_mutex_t lock; /* guards the ring, stop and the ring's counters */
    pthread_cond_t cond;
    struct monitor_transition *ring;
    size_t cap, head, n;
    uint64_t pushed, dropped;
    atomic_int stop;
    int started;
    pthread_t thread;

    atomic_ullong sent, retried, lost, resends, firing;

    /* The thread's own. */
    struct target *targets;
    size_t ntargets;
    struct monitor_transition *active; /* firing now, one per fingerprint */
    size_t nactive, capactive;
    int64_t next_resend_ms;
    uint64_t rng;
    CURL *curl;
};

/* ---- transitions, copied ---------------------------------------------------------- */

/* A deep copy without the rule pointer: the rule set may be reloaded while a
 * copy waits. */
static void copy_transition(struct monitor_transition *d, const struct monitor_transition *s)
{
    *d = *s;
    d->rule = NULL;
    d->nlabels = s->nlabels < MONITOR_LABELS_MAX ? s->nlabels : MONITOR_LABELS_MAX;
    for (size_t i = 0; i < d->nlabels; i++) {
        d->labels[i].name = xstrdup(s->labels[i].name);
        d->labels[i].value = xstrdup(s->labels[i].value);
    }
    d->summary = s->summary ? xstrdup(s->summary) : NULL;
    d->release = s->release ? xstrdup(s->release) : NULL;
    d->fingerprint[16] = '\0';
}

static void clear_transition(struct monitor_transition *t)
{
    for (size_t i = 0; i < t->nlabels; i++) {
        free(t->labels[i].name);
        free(t->labels[i].value);
    }
    free(t->summary);
    free(t->release);
    memset(t, 0, sizeof(*t));
}

static int notified(const struct monitor_transition *t)
{
    return t->kind == MONITOR_TRANSITION_FIRING || t->kind == MONITOR_TRANSITION_RESOLVED ||
           t->kind == MONITOR_TRANSITION_EVENT;
}

static const char *label(const struct monitor_transition *t, const char *name)
{
    for (size_t i = 0; i < t->nlabels; i++)
        if (!strcmp(t->labels[i].name, name))
            return t->labels[i].value;
    return NULL;
}

/* ---- JSON ---------------------------------------------------------------------------- */

/* A JSON string of s; what is not UTF-8 (nothing from alert.c, but a pushed
 * transition is the caller's) is escaped rather than lost. */
static json_t *jstr(const char *s)
{
    if (utf8_valid(s, 0))
        return json_string(s);
    struct buf b = BUF_INIT;
    buf_add_escaped(&b, s);
    json_t *j = json_string(b.data ? b.data : "");
    buf_free(&b);
    return j;
}

static json_t *jtime(int64_t ms)
{
    char when[40];
    time_format_iso(ms, when, sizeof(when));
    return json_string(when);
}

static json_t *labels_json(const struct monitor_transition *t)
{
    json_t *o = json_object();
    for (size_t i = 0; i < t->nlabels; i++)
        json_object_set_new(o, t->labels[i].name, jstr(t->labels[i].value));
    return o;
}

/* summary; value (%g, as the summary shows it) when measured; release for a
 * measured alert (an event has it as a label already). */
static json_t *annotations_json(const struct monitor_transition *t)
{
    json_t *o = json_object();
    if (t->summary)
        json_object_set_new(o, "summary", jstr(t->summary));
    if (!isnan(t->value) && t->kind != MONITOR_TRANSITION_EVENT) {
        char num[64];
        snprintf(num, sizeof(num), "%g", t->value);
        json_object_set_new(o, "value", json_string(num));
    }
    if (t->release && t->kind != MONITOR_TRANSITION_EVENT)
        json_object_set_new(o, "release", jstr(t->release));
    return o;
}

static void dump(json_t *j, struct buf *out)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s) /* only when out of memory */
        abort();
    buf_adds(out, s);
    free(s);
    json_decref(j);
}

void monitor_am_alerts_json(const struct monitor_transition *const *v, size_t n, int64_t now_ms,
                            int64_t resend_ms, const char *gen_url, struct buf *out)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct monitor_transition *t = v[i];
        if (!notified(t))
            continue;
        json_t *a = json_object();
        json_object_set_new(a, "labels", labels_json(t));
        json_object_set_new(a, "annotations", annotations_json(t));
        if (t->starts_ms > 0)
            json_object_set_new(a, "startsAt", jtime(t->starts_ms));
        json_object_set_new(
            a, "endsAt",
            jtime(t->kind == MONITOR_TRANSITION_FIRING ? now_ms + 4 * resend_ms : t->ends_ms));
        if (gen_url)
            json_object_set_new(a, "generatorURL", jstr(gen_url));
        json_array_append_new(arr, a);
    }
    dump(arr, out);
}

/* What every object of objs has alike: the members of the first with the
 * same value in all the others, in the first's order. */
static json_t *common(json_t *const *objs, size_t n)
{
    json_t *o = json_object();
    const char *key;
    json_t *val;
    if (!n)
        return o;
    json_object_foreach(objs[0], key, val)
    {
        size_t k = 1;
        while (k < n && json_equal(json_object_get(objs[k], key), val))
            k++;
        if (k == n)
            json_object_set(o, key, val);
    }
    return o;
}

void monitor_webhook_json(const struct monitor_transition *const *v, size_t n,
                          const char *external_url, struct buf *out)
{
    json_t *alerts = json_array();
    json_t **lab = xcalloc(n ? n : 1, sizeof(*lab)), **ann = xcalloc(n ? n : 1, sizeof(*ann));
    size_t k = 0;
    int firing = 0;
    for (size_t i = 0; i < n; i++) {
        const struct monitor_transition *t = v[i];
        if (!notified(t))
            continue;
        int res = t->kind == MONITOR_TRANSITION_RESOLVED;
        json_t *a = json_object();
        firing |= !res;
        lab[k] = labels_json(t);
        ann[k] = annotations_json(t);
        json_object_set_new(a, "status", json_string(res ? "resolved" : "firing"));
        json_object_set(a, "labels", lab[k]);
        json_object_set(a, "annotations", ann[k]);
        json_object_set_new(a, "startsAt", jtime(t->starts_ms));
        /* Alertmanager writes Go's zero time for an end not known yet. */
        json_object_set_new(a, "endsAt",
                            t->kind == MONITOR_TRANSITION_FIRING
                                ? json_string("0001-01-01T00:00:00Z")
                                : jtime(t->ends_ms));
        json_object_set_new(a, "generatorURL", jstr(external_url ? external_url : ""));
        json_object_set_new(a, "fingerprint", json_string(t->fingerprint));
        json_array_append_new(alerts, a);
        k++;
    }
    /* The members in the order Alertmanager 0.25 writes them. */
    json_t *o = json_object();
    json_object_set_new(o, "receiver", json_string("slipway"));
    json_object_set_new(o, "status", json_string(firing ? "firing" : "resolved"));
    json_object_set_new(o, "alerts", alerts);
    json_object_set_new(o, "groupLabels", json_object());
    json_object_set_new(o, "commonLabels", common(lab, k));
    json_object_set_new(o, "commonAnnotations", common(ann, k));
    json_object_set_new(o, "externalURL", jstr(external_url ? external_url : ""));
    json_object_set_new(o, "version", json_string("4"));
    json_object_set_new(o, "groupKey", json_string("{}:{}"));
    json_object_set_new(o, "truncatedAlerts", json_integer(0));
    for (size_t i = 0; i < k; i++) {
        json_decref(lab[i]);
        json_decref(ann[i]);
    }
    free(lab);
    free(ann);
    dump(o, out);
}

int64_t monitor_notify_backoff_ms(const struct monitor_config *c, int retry, uint64_t rnd)
{
    int64_t d = c->backoff_ms;
    for (int i = 1; i < retry && d < c->backoff_max_ms; i++)
        d *= 2; /* both are at most an hour: no overflow before the cap */
    if (d > c->backoff_max_ms)
        d = c->backoff_max_ms;
    /* "Equal jitter": never less than half the wait, so retries stay spread
     * out, and never the same instant for two notifiers that failed together. */
    return d - d / 2 + (int64_t)(rnd % (uint64_t)(d / 2 + 1));
}

/* ---- the queue ----------------------------------------------------------------------- */

/* "alertmanager http://host:9093", "webhook 2 https://hooks.example.com":
 * the origin only, since a webhook's path or query often is its secret. */
static char *display_of(int kind, size_t index, const char *url)
{
    CURLU *u = curl_url();
    char *origin = NULL, *scheme = NULL, *host = NULL, *port = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        (void)curl_url_get(u, CURLUPART_PORT, &port, 0);
        origin = xasprintf("%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "");
    }
    char *d = kind == TARGET_ALERTMANAGER
                  ? xasprintf("alertmanager %s", origin ? origin : "?")
                  : xasprintf("webhook %zu %s", index + 1, origin ? origin : "?");
    free(origin);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return d;
}

struct monitor_notify *monitor_notify_new(const struct monitor_config *c,
                                          void (*log)(void *arg, const char *line), void *log_arg)
{
    struct monitor_notify *n = xcalloc(1, sizeof(*n));
    n->c = c;
    n->log = log;
    n->log_arg = log_arg;
    pthread_mutex_init(&n->lock, NULL);
    cond_init_monotonic(&n->cond);
    n->cap = c->queue > 0 ? (size_t)c->queue : 1;
    n->ring = xcalloc(n->cap, sizeof(*n->ring));
    n->ntargets = c->nalertmanager + c->nwebhooks;
    /* The configuration's URLs were checked with libcurl, so it is loaded
     * already; were it not, nothing could be sent, and that is said once. */
    struct sw_err lerr = {0};
    if (n->ntargets && sw_curl_load(&lerr) != 0) {
        char *line = xasprintf("notifications are off: %s", lerr.msg);
        log(log_arg, line);
        free(line);
        n->ntargets = 0;
    }
    n->targets = xcalloc(n->ntargets ? n->ntargets : 1, sizeof(*n->targets));
    for (size_t i = 0; n->ntargets && i < c->nalertmanager; i++) {
        struct target *t = &n->targets[i];
        t->kind = TARGET_ALERTMANAGER;
        t->url = xasprintf("%s/api/v2/alerts", c->alertmanager[i]);
        t->display = display_of(t->kind, i, c->alertmanager[i]);
    }
    for (size_t i = 0; n->ntargets && i < c->nwebhooks; i++) {
        struct target *t = &n->targets[c->nalertmanager + i];
        t->kind = TARGET_WEBHOOK;
        t->url = xstrdup(c->webhooks[i]);
        t->display = display_of(t->kind, i, c->webhooks[i]);
    }
    n->rng = (uint64_t)time_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)n;
    return n;
}

void monitor_notify_on_delivery(struct monitor_notify *n,
                                void (*fn)(void *arg, const struct monitor_notify_delivery *d),
                                void *arg)
{
    n->on_delivery = fn;
    n->delivery_arg = arg;
}

void monitor_notify_push(struct monitor_notify *n, const struct monitor_transition *t)
{
    struct monitor_transition copy, old;
    int dropped = 0;
    if (!n)
        return;
    /* Copied and freed outside the lock: the lock covers moving structs only. */
    copy_transition(&copy, t);
    pthread_mutex_lock(&n->lock);
    if (n->n == n->cap) {
        old = n->ring[n->head];
        n->head = (n->head + 1) % n->cap;
        n->n--;
        n->dropped++;
        dropped = 1;
    }
    n->ring[(n->head + n->n) % n->cap] = copy;
    n->n++;
    n->pushed++;
    pthread_cond_signal(&n->cond);
    pthread_mutex_unlock(&n->lock);
    if (dropped)
        clear_transition(&old);
}

void monitor_notify_deployed(struct monitor_notify *n, const struct monitor_rules *r,
                             const char *env, const char *action, const char *release,
                             int64_t at_ms)
{
    struct monitor_transitions t = MONITOR_TRANSITIONS_INIT;
    if (!n || !r)
        return;
    monitor_rules_deployed(r, env, action, release, at_ms, &t);
    for (size_t i = 0; i < t.n; i++)
        monitor_notify_push(n, &t.v[i]);
    monitor_transitions_reset(&t);
}

void monitor_notify_stats(struct monitor_notify *n, struct monitor_notify_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&n->lock);
    out->pushed = n->pushed;
    out->dropped = n->dropped;
    out->queued = n->n;
    pthread_mutex_unlock(&n->lock);
    out->sent = atomic_load(&n->sent);
    out->retried = atomic_load(&n->retried);
    out->lost = atomic_load(&n->lost);
    out->resends = atomic_load(&n->resends);
    out->firing = atomic_load(&n->firing);
}

/* ---- messages ------------------------------------------------------------------------ */

static void nlog(struct monitor_notify *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void nlog(struct monitor_notify *n, const char *fmt, ...)
{
    if (!n->log)
        return;
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    n->log(n->log_arg, b.data);
    buf_free(&b);
}

static void msg_free(struct msg *m)
{
    free(m->alerts);
    free(m->body);
    free(m->what);
    free(m);
}

/* Tells on_delivery of each firing alert m carried: delivered, or lost and why. */
static void told(struct monitor_notify *n, const struct target *t, const struct msg *m,
                 const char *why)
{
    for (size_t i = 0; n->on_delivery && i < m->nalerts; i++) {
        const struct carried *a = &m->alerts[i];
        struct monitor_notify_delivery d = {!why,           t->display,   a->env, a->rule,
                                            a->fingerprint, a->starts_ms, why,    time_now_ms()};
        n->on_delivery(n->delivery_arg, &d);
    }
}

static void lose(struct monitor_notify *n, struct target *t, struct msg *m, const char *why)
{
    atomic_fetch_add(&n->lost, 1);
    nlog(n, "notify: lost: %s (%s) after %d attempt%s: %s", t->display, m->what, m->attempts,
         m->attempts == 1 ? "" : "s", why);
    told(n, t, m, why);
}

static void enqueue(struct monitor_notify *n, struct target *t, const char *body, size_t len,
                    const char *what, const struct carried *alerts, size_t nalerts)
{
    struct msg *m = xcalloc(1, sizeof(*m));
    if (nalerts) {
        m->alerts = xcalloc(nalerts, sizeof(*m->alerts));
        memcpy(m->alerts, alerts, nalerts * sizeof(*alerts));
        m->nalerts = nalerts;
    }
    m->body = xstrndup(body, len);
    m->len = len;
    m->what = xstrdup(what);
    m->due_ms = time_mono_ms();
    if (t->n == TARGET_MSGS_MAX) { /* the oldest goes: it is the stalest news */
        struct msg *old = t->head;
        t->head = old->next;
        t->n--;
        lose(n, t, old, "too many messages waiting for this receiver");
        msg_free(old);
        if (!t->head)
            t->tail = NULL;
    }
    if (t->tail)
        t->tail->next = m;
    else
        t->head = m;
    t->tail = m;
    t->n++;
}

/* "2 alerts: high-error-rate env=staging firing, deployment-completed env=dev firing". */
static char *describe(const struct monitor_transition *const *v, size_t n, const char *prefix)
{
    struct buf b = BUF_INIT;
    buf_addf(&b, "%s%zu alert%s:", prefix, n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n && i < 3; i++) {
        const char *name = label(v[i], "alertname"), *env = label(v[i], "env");
        buf_addf(&b, "%s %s env=%s %s", i ? "," : "", name ? name : "?", env ? env : "?",
                 v[i]->kind == MONITOR_TRANSITION_RESOLVED ? "resolved" : "firing");
    }
    if (n > 3)
        buf_addf(&b, ", and %zu more", n - 3);
    return buf_detach(&b, NULL);
}

/* Messages for every target about v (all of them to be notified). */
static void send_all(struct monitor_notify *n, const struct monitor_transition *const *v, size_t k,
                     int resend)
{
    struct buf am = BUF_INIT, wh = BUF_INIT;
    char *what = describe(v, k, resend ? "re-send of " : "");
    /* Who hears of an alert's firing is told once, for its first send. */
    struct carried *fired = NULL;
    size_t nfired = 0;
    for (size_t i = 0; !resend && n->on_delivery && i < k; i++) {
        const char *env = label(v[i], "env"), *name = label(v[i], "alertname");
        if (v[i]->kind != MONITOR_TRANSITION_FIRING || !env || !name)
            continue;
        if (!fired)
            fired = xcalloc(k, sizeof(*fired));
        struct carried *a = &fired[nfired++];
        snprintf(a->env, sizeof(a->env), "%s", env);
        snprintf(a->rule, sizeof(a->rule), "%s", name);
        memcpy(a->fingerprint, v[i]->fingerprint, sizeof(a->fingerprint));
        a->fingerprint[16] = '\0';
        a->starts_ms = v[i]->starts_ms;
    }
    for (size_t i = 0; i < n->ntargets; i++) {
        struct target *t = &n->targets[i];
        if (t->kind == TARGET_ALERTMANAGER) {
            if (!am.data)
                monitor_am_alerts_json(v, k, time_now_ms(), n->c->resend_ms, n->c->external_url,
                                       &am);
            enqueue(n, t, am.data, am.len, what, fired, nfired);
        } else if (!resend) {
            if (!wh.data)
                monitor_webhook_json(v, k, n->c->external_url, &wh);
            enqueue(n, t, wh.data, wh.len, what, fired, nfired);
        }
    }
    free(fired);
    free(what);
    buf_free(&am);
    buf_free(&wh);
}

static struct monitor_transition *active_find(struct monitor_notify *n, const char *fp)
{
    for (size_t i = 0; i < n->nactive; i++)
        if (!strcmp(n->active[i].fingerprint, fp))
            return &n->active[i];
    return NULL;
}

/* Keeps the firing set current: a firing alert is (re)placed, a resolved one removed. */
static void track(struct monitor_notify *n, const struct monitor_transition *t)
{
    struct monitor_transition *a = active_find(n, t->fingerprint);
    if (t->kind == MONITOR_TRANSITION_RESOLVED && a) {
        clear_transition(a);
        *a = n->active[--n->nactive];
        memset(&n->active[n->nactive], 0, sizeof(*a));
    } else if (t->kind == MONITOR_TRANSITION_FIRING) {
        if (a) {
            clear_transition(a);
        } else if (n->nactive < ACTIVE_MAX) {
            if (n->nactive == n->capactive)
                n->active =
                    xrealloc(n->active, (n->capactive = n->capactive ? n->capactive * 2 : 16) *
                                            sizeof(*n->active));
            if (n->nactive == 0)
                n->next_resend_ms = time_mono_ms() + n->c->resend_ms;
            a = &n->active[n->nactive++];
        }
        if (a)
            copy_transition(a, t);
    }
    atomic_store(&n->firing, n->nactive);
}

static void resend_due(struct monitor_notify *n)
{
    int64_t now = time_mono_ms();
    if (!n->nactive || now < n->next_resend_ms)
        return;
    n->next_resend_ms = now + n->c->resend_ms;
    const struct monitor_transition **v = xcalloc(n->nactive, sizeof(*v));
    for (size_t i = 0; i < n->nactive; i++)
        v[i] = &n->active[i];
    atomic_fetch_add(&n->resends, 1);
    send_all(n, v, n->nactive, 1);
    free(v);
}

/* ---- one attempt ------------------------------------------------------------------------ */

struct reply {
    char text[REPLY_KEEP + 1];
    size_t len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct reply *r = arg;
    size_t len = size * nmemb, room = REPLY_KEEP - r->len;
    memcpy(r->text + r->len, data, len < room ? len : room);
    r->len += len < room ? len : room;
    r->text[r->len] = '\0';
    return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct monitor_notify *n = arg;
    return atomic_load(&n->stop) != 0; /* non-zero aborts the transfer */
}

enum { SENT, RETRY, GIVE_UP, STOPPED };

/* POSTs m to t once. why: what went wrong, for the log. */
static int attempt(struct monitor_notify *n, struct target *t, struct msg *m, char *why,
                   size_t whylen)
{
    struct reply r = {{0}, 0};
    char curlerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *h = NULL;
    long status = 0;
    int out;
    if (!n->curl && !(n->curl = curl_easy_init())) {
        snprintf(why, whylen, "libcurl could not be initialised");
        return RETRY;
    }
    CURL *c = n->curl;
    /* Expect: 100-continue would hold a body back for a second on receivers that
     * do not answer it; the bodies are small. */
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    curl_easy_reset(c); /* the connection cache survives a reset */
    curl_easy_setopt(c, CURLOPT_URL, t->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "slipway");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, m->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)n->c->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)n->c->timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, n);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curlerr);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(h);
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(why, whylen, "stopping");
        return STOPPED;
    }
    if (rc != CURLE_OK) {
        snprintf(why, whylen, "%s", curlerr[0] ? curlerr : curl_easy_strerror(rc));
        return rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT ? GIVE_UP : RETRY;
    }
    if (status >= 200 && status < 300)
        return SENT;
    /* A refusal (4xx) says the message itself is wrong: sending it again
     * cannot help, except where the receiver asks for patience. 3xx is not
     * followed: a receiver's address is configured, not discovered. */
    out = status >= 500 || status == 408 || status == 425 || status == 429 ? RETRY : GIVE_UP;
    while (r.len && (r.text[r.len - 1] == '\n' || r.text[r.len - 1] == '\r'))
        r.text[--r.len] = '\0';
    snprintf(why, whylen, "HTTP %ld%s%s", status, r.len ? ": " : "", r.text);
    return out;
}

static uint64_t next_rnd(struct monitor_notify *n)
{
    /* splitmix64: enough to spread retries, no secret. */
    uint64_t z = (n->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Tries the due head of every target, in order, until none is due. */
static void deliver(struct monitor_notify *n)
{
    char why[512];
    for (size_t i = 0; i < n->ntargets; i++) {
        struct target *t = &n->targets[i];
        struct msg *m;
        while ((m = t->head) && m->due_ms <= time_mono_ms() && !atomic_load(&n->stop)) {
            int r = attempt(n, t, m, why, sizeof(why));
            if (r == STOPPED)
                return;
            m->attempts++;
            if (r == RETRY && m->attempts <= n->c->retries) {
                atomic_fetch_add(&n->retried, 1);
                m->due_ms =
                    time_mono_ms() + monitor_notify_backoff_ms(n->c, m->attempts, next_rnd(n));
                break; /* later messages wait: a resolution must not overtake its firing */
            }
            if (r == SENT) {
                atomic_fetch_add(&n->sent, 1);
                told(n, t, m, NULL);
            } else
                lose(n, t, m, why);
            t->head = m->next;
            if (!t->head)
                t->tail = NULL;
            t->n--;
            msg_free(m);
        }
    }
}

/* The next time the thread has something to do, or -1: nothing until a push. */
static int64_t next_wake(struct monitor_notify *n)
{
    int64_t w = n->nactive ? n->next_resend_ms : -1;
    for (size_t i = 0; i < n->ntargets; i++)
        if (n->targets[i].head && (w < 0 || n->targets[i].head->due_ms < w))
            w = n->targets[i].head->due_ms;
    return w;
}

static void *thread_main(void *arg)
{
    struct monitor_notify *n = arg;
    struct monitor_transition *taken = NULL;
    const struct monitor_transition **v = NULL;
    size_t cap = 0;
    for (;;) {
        size_t k = 0;
        pthread_mutex_lock(&n->lock);
        while (!atomic_load(&n->stop) && !n->n) {
            int64_t wake = next_wake(n);
            if (wake >= 0 && wake <= time_mono_ms())
                break;
            if (wake < 0) {
                pthread_cond_wait(&n->cond, &n->lock);
            } else {
                struct timespec ts = {(time_t)(wake / 1000), (long)(wake % 1000) * 1000000};
                pthread_cond_timedwait(&n->cond, &n->lock, &ts);
            }
        }
        if (atomic_load(&n->stop)) {
            pthread_mutex_unlock(&n->lock);
            break;
        }
        if (n->n > cap) {
            cap = n->n;
            taken = xrealloc(taken, cap * sizeof(*taken));
            v = xrealloc(v, cap * sizeof(*v));
        }
        for (; n->n; n->n--, k++) {
            taken[k] = n->ring[n->head];
            memset(&n->ring[n->head], 0, sizeof(*n->ring));
            n->head = (n->head + 1) % n->cap;
        }
        pthread_mutex_unlock(&n->lock);

        size_t m = 0;
        for (size_t i = 0; i < k; i++)
            if (notified(&taken[i])) {
                track(n, &taken[i]);
                v[m++] = &taken[i];
            }
        if (m)
            send_all(n, v, m, 0);
        for (size_t i = 0; i < k; i++)
            clear_transition(&taken[i]);
        resend_due(n);
        deliver(n);
    }
    free(taken);
    free(v);
    return NULL;
}

int monitor_notify_start(struct monitor_notify *n, struct sw_err *err)
{
    int e = pthread_create(&n->thread, NULL, thread_main, n);
    if (e)
        return sw_err_sys(err, e, "cannot start the notifier thread");
    n->started = 1;
    return 0;
}

void monitor_notify_free(struct monitor_notify *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->lock);
    atomic_store(&n->stop, 1);
    pthread_cond_signal(&n->cond);
    pthread_mutex_unlock(&n->lock);
    if (n->started)
        pthread_join(n->thread, NULL);
    if (n->n)
        nlog(n, "notify: lost: %zu alert change%s still queued when slipway stopped", n->n,
             n->n == 1 ? "" : "s");
    for (; n->n; n->n--, n->head = (n->head + 1) % n->cap)
        clear_transition(&n->ring[n->head]);
    for (size_t i = 0; i < n->ntargets; i++) {
        struct target *t = &n->targets[i];
        for (struct msg *m = t->head, *next; m; m = next) {
            next = m->next;
            lose(n, t, m, "slipway stopped");
            msg_free(m);
        }
        free(t->url);
        free(t->display);
    }
    for (size_t i = 0; i < n->nactive; i++)
        clear_transition(&n->active[i]);
    if (n->curl)
        curl_easy_cleanup(n->curl);
    free(n->active);
    free(n->targets);
    free(n->ring);
    pthread_cond_destroy(&n->cond);
    pthread_mutex_destroy(&n->lock);
    free(n);
}
