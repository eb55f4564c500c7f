/*
 * Unit tests for notifications (src/monitor/config.c, notify.c, hook.c):
 * .slipway/monitor.yml with every key and every error at FILE:LINE:COL; the
 * exact JSON sent to Alertmanager and to webhooks; the backoff schedule; the
 * notifier against a small HTTP server of the test's own (delivery, retries,
 * giving up, a refusal not retried, re-sending firing alerts, the queue
 * dropping its oldest); Alertmanager's webhook parsed (a body captured from
 * Alertmanager 0.25 itself) and refused; the inbound hook's token, its
 * idempotence and its answers; and pushes, deliveries and hook calls from
 * several threads at once (tests/e2e/345-notify-tsan.sh runs this file under
 * ThreadSanitizer).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "monitor/monitor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define T0 1700000000000LL /* 2023-11-14T22:13:20.000Z */
#define MIN (60LL * 1000)

static char tmpdir[] = "/tmp/test_monitor_notify.XXXXXX";

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Polls cond for up to 10 s. */
#define WAIT_FOR(cond)                                                                             \
    do {                                                                                           \
        int waited_ = 0;                                                                           \
        while (!(cond) && waited_ < 10000) {                                                       \
            sleep_ms(5);                                                                           \
            waited_ += 5;                                                                          \
        }                                                                                          \
        assert_true(cond);                                                                         \
    } while (0)

static struct monitor_config *config(const char *yaml)
{
    struct monitor_config *c = NULL;
    struct sw_err err = {0};
    int rc = monitor_config_parse(yaml, strlen(yaml), "m.yml", tmpdir, &c, &err);
    if (rc)
        print_message("# unexpected refusal: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return c;
}

static void config_bad(const char *yaml, const char *want)
{
    struct monitor_config *c = NULL;
    struct sw_err err = {0};
    int rc = monitor_config_parse(yaml, strlen(yaml), "m.yml", tmpdir, &c, &err);
    if (rc != SW_EINVAL || strncmp(err.msg, want, strlen(want)) != 0)
        print_message("# wanted '%s...'\n#    got rc %d: %s\n", want, rc,
                      rc ? err.msg : "(loaded)");
    assert_int_equal(rc, SW_EINVAL);
    assert_null(c);
    assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
}

/* ---- a receiver -------------------------------------------------------------------------- */

/* An HTTP/1.1 server on a loopback port answering each POST with the next
 * status of its script (the last one repeats), recording what came. */
#define FAKE_MAX 4096
struct fake {
    int fd, port;
    pthread_t thread;
    atomic_int stop;
    atomic_int hold; /* 1: accept nothing (connections wait in the backlog) */
    pthread_mutex_t lock;
    int status[8];
    size_t nstatus;
    char *path[FAKE_MAX], *body[FAKE_MAX];
    size_t n;
};

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {f->fd, POLLIN, 0};
        if (atomic_load(&f->hold)) {
            usleep(5000);
            continue;
        }
        if (poll(&p, 1, 20) <= 0)
            continue;
        int c = accept(f->fd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[65536];
        size_t len = 0;
        char *end = NULL;
        ssize_t r;
        while (len < sizeof(buf) - 1 && (r = read(c, buf + len, sizeof(buf) - 1 - len)) > 0) {
            len += (size_t)r;
            buf[len] = '\0';
            if ((end = strstr(buf, "\r\n\r\n"))) {
                const char *cl = strcasestr(buf, "Content-Length:");
                size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0;
                if (len - (size_t)(end + 4 - buf) >= want)
                    break;
            }
        }
        if (end) {
            char path[256] = "";
            sscanf(buf, "POST %255s", path);
            pthread_mutex_lock(&f->lock);
            size_t i = f->n < f->nstatus ? f->n : f->nstatus - 1;
            int st = f->status[i];
            if (f->n < FAKE_MAX) {
                f->path[f->n] = xstrdup(path);
                f->body[f->n++] = xstrdup(end + 4);
            }
            pthread_mutex_unlock(&f->lock);
            char out[256];
            int w = snprintf(
                out, sizeof(out),
                "HTTP/1.1 %d X\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope\n", st);
            if (write(c, out, (size_t)w) < 0) {
                /* the client went away: nothing to do */
            }
        }
        close(c);
    }
    return NULL;
}

static struct fake *fake_start(const int *status, size_t n)
{
    struct fake *f = xcalloc(1, sizeof(*f));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    memcpy(f->status, status, n * sizeof(*status));
    f->nstatus = n;
    pthread_mutex_init(&f->lock, NULL);
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->fd >= 0);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->fd, 64), 0);
    assert_int_equal(getsockname(f->fd, (struct sockaddr *)&a, &alen), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
    return f;
}

static size_t fake_count(struct fake *f)
{
    pthread_mutex_lock(&f->lock);
    size_t n = f->n;
    pthread_mutex_unlock(&f->lock);
    return n;
}

/* The body of request i, copied (the caller frees). */
static char *fake_body(struct fake *f, size_t i)
{
    pthread_mutex_lock(&f->lock);
    char *b = i < f->n ? xstrdup(f->body[i]) : NULL;
    pthread_mutex_unlock(&f->lock);
    return b;
}

static void fake_stop(struct fake *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    close(f->fd);
    for (size_t i = 0; i < f->n; i++) {
        free(f->path[i]);
        free(f->body[i]);
    }
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* A port nothing listens on (bound then closed: the kernel does not hand it
 * out again at once). */
static int dead_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* The notifier's log lines, from its thread. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct buf log_text = BUF_INIT;
static void log_line(void *arg, const char *line)
{
    pthread_mutex_lock(&log_lock);
    buf_addf(&log_text, "%s\n", line);
    pthread_mutex_unlock(&log_lock);
}
static int log_has(const char *s)
{
    pthread_mutex_lock(&log_lock);
    int yes = log_text.data && strstr(log_text.data, s);
    pthread_mutex_unlock(&log_lock);
    return yes;
}
static void log_reset(void)
{
    pthread_mutex_lock(&log_lock);
    buf_free(&log_text);
    pthread_mutex_unlock(&log_lock);
}

static struct monitor_notify_stats stats_of(struct monitor_notify *n)
{
    struct monitor_notify_stats s;
    monitor_notify_stats(n, &s);
    return s;
}

/* ---- transitions ---------------------------------------------------------------------------- */

static const char rules_yaml[] =
    "rules:\n"
    "  - name: high-error-rate\n"
    "    signal: error_ratio\n"
    "    op: \">\"\n"
    "    threshold: 0.05\n"
    "    severity: critical\n"
    "    summary: \"error rate {{ $value }} on {{ $env }} ({{ $release }})\"\n";

/* high-error-rate on web fires at T0 (0.08 on r-1) and resolves at T0 + 1m:
 * t->v[0] FIRING, t->v[1] RESOLVED, from the real state machine. */
static struct monitor_rules *fire_and_resolve(struct monitor_transitions *t)
{
    struct monitor_rules *r = NULL;
    struct sw_err err = {0};
    assert_int_equal(monitor_rules_parse(rules_yaml, strlen(rules_yaml), "a.yml", &r, &err), 0);
    struct monitor_alerts *a = monitor_alerts_new(r);
    struct monitor_sample s;
    for (int i = 0; i < MONITOR_NSIGNALS; i++)
        s.value[i] = NAN;
    s.requests = 200;
    s.release = "r-1";
    s.value[MONITOR_SIGNAL_ERROR_RATIO] = 0.08;
    assert_int_equal(monitor_alerts_eval(a, "web", &s, T0, t, &err), 0);
    s.value[MONITOR_SIGNAL_ERROR_RATIO] = 0.01;
    assert_int_equal(monitor_alerts_eval(a, "web", &s, T0 + MIN, t, &err), 0);
    assert_int_equal(t->n, 2);
    assert_int_equal(t->v[0].kind, MONITOR_TRANSITION_FIRING);
    assert_int_equal(t->v[1].kind, MONITOR_TRANSITION_RESOLVED);
    monitor_alerts_free(a);
    return r;
}

/* A firing alert named name on web, made by hand. */
static struct monitor_transition firing(const char *name)
{
    struct monitor_transition t = {0};
    t.kind = MONITOR_TRANSITION_FIRING;
    t.labels[0] = (struct monitor_label){(char *)"alertname", (char *)name};
    t.labels[1] = (struct monitor_label){(char *)"env", (char *)"web"};
    t.labels[2] = (struct monitor_label){(char *)"severity", (char *)"critical"};
    t.nlabels = 3;
    t.summary = (char *)name;
    t.value = t.last = 0.5;
    t.starts_ms = t.at_ms = T0;
    monitor_labels_fingerprint(t.labels, t.nlabels, t.fingerprint);
    return t;
}

/* ---- monitor.yml ------------------------------------------------------------------------------
 */

static void test_config_keys(void **state)
{
    struct monitor_config *c =
        config("notify:\n"
               "  alertmanager: [\"http://127.0.0.1:9093/\", \"HTTPS://AM.example.com/prefix\"]\n"
               "  webhooks:\n"
               "    - https://hooks.example.com/services/T0/B0/secret?x=1\n"
               "  resend: 30s\n"
               "  timeout: 2s\n"
               "  retries: 3\n"
               "  backoff: 250ms\n"
               "  backoff_max: 4s\n"
               "  queue: 16\n"
               "  external_url: http://slipway.example:9090\n"
               "webhook_token_file: secrets/am.token\n");
    assert_string_equal(c->file, "m.yml");
    assert_int_equal(c->nalertmanager, 2);
    assert_string_equal(c->alertmanager[0], "http://127.0.0.1:9093"); /* no trailing '/' */
    assert_string_equal(c->alertmanager[1], "https://AM.example.com/prefix");
    assert_int_equal(c->nwebhooks, 1);
    assert_string_equal(c->webhooks[0], "https://hooks.example.com/services/T0/B0/secret?x=1");
    assert_int_equal(c->resend_ms, 30000);
    assert_int_equal(c->timeout_ms, 2000);
    assert_int_equal(c->retries, 3);
    assert_int_equal(c->backoff_ms, 250);
    assert_int_equal(c->backoff_max_ms, 4000);
    assert_int_equal(c->queue, 16);
    assert_string_equal(c->external_url, "http://slipway.example:9090/");
    char *tok = xasprintf("%s/secrets/am.token", tmpdir); /* relative: to the project */
    assert_string_equal(c->webhook_token_file, tok);
    free(tok);
    monitor_config_free(c);

    /* The defaults; an absolute token path stays as it is. */
    c = config("notify: {}\nwebhook_token_file: /etc/slipway/token\n");
    assert_int_equal(c->nalertmanager + c->nwebhooks, 0);
    assert_int_equal(c->resend_ms, MIN);
    assert_int_equal(c->timeout_ms, 10000);
    assert_int_equal(c->retries, 5);
    assert_int_equal(c->backoff_ms, 1000);
    assert_int_equal(c->backoff_max_ms, 30000);
    assert_int_equal(c->queue, 1024);
    assert_null(c->external_url);
    assert_string_equal(c->webhook_token_file, "/etc/slipway/token");
    monitor_config_free(c);

    /* No file: nothing configured, no error left behind. */
    struct sw_err err = {0};
    char *path = xasprintf("%s/none.yml", tmpdir);
    assert_int_equal(monitor_config_load(path, tmpdir, &c, &err), 0);
    assert_null(c->file);
    assert_null(c->webhook_token_file);
    assert_int_equal(c->nalertmanager + c->nwebhooks, 0);
    assert_string_equal(err.msg, "");
    monitor_config_free(c);
    free(path);
}

static void test_config_errors(void **state)
{
    config_bad("", "m.yml:1:1: expected a mapping");
    config_bad("notify:\n  alertmanagers: []\n",
               "m.yml:2:3: notify: unknown key 'alertmanagers' (expected alertmanager,");
    config_bad("notfy: {}\n", "m.yml:1:1: unknown key 'notfy' (expected notify or");
    config_bad("notify:\n  alertmanager: [ftp://x]\n",
               "m.yml:2:18: notify: alertmanager: expected an http:// or https:// URL, got "
               "'ftp://x'");
    config_bad("notify:\n  alertmanager: [\"http://\"]\n",
               "m.yml:2:18: notify: alertmanager: expected an http:// or https:// URL");
    config_bad("notify:\n  alertmanager: http://x\n",
               "m.yml:2:17: notify: alertmanager: expected a list of at most 16 URLs");
    config_bad("notify:\n  alertmanager: [\"http://x:9093/?a=b\"]\n",
               "m.yml:2:18: notify: alertmanager: an Alertmanager URL is its base");
    config_bad("notify:\n  webhooks: [\"http://x/#top\"]\n",
               "m.yml:2:14: notify: webhooks: a URL sent to cannot have a #fragment");
    config_bad("notify:\n  webhooks: [\"http://x/a b\"]\n",
               "m.yml:2:14: notify: webhooks: a URL is visible ASCII without blanks");
    config_bad("notify:\n  webhooks: [\"http://x/\", \"HTTP://x\"]\n",
               "m.yml:2:27: notify: webhooks: 'HTTP://x' is listed twice"); /* as curl reads it */
    config_bad("notify:\n  retries: 21\n",
               "m.yml:2:12: notify: retries: expected a whole number from 0 to 20");
    config_bad("notify:\n  queue: 0\n",
               "m.yml:2:10: notify: queue: expected a whole number from 1 to 100000");
    config_bad("notify:\n  resend: 10ms\n",
               "m.yml:2:11: notify: resend: expected a duration from 1ms to");
    config_bad("notify:\n  timeout: forever\n", "m.yml:2:12: notify: timeout: expected a duration");
    config_bad("notify:\n  backoff: 2s\n  backoff_max: 1s\n",
               "m.yml:3:16: notify: backoff_max: must be at least backoff");
    config_bad("notify: [x]\n", "m.yml:1:9: notify: expected a mapping");
    config_bad("webhook_token_file: \"\"\n", "m.yml:1:21: webhook_token_file: expected the path");
}

/* ---- the JSON ----------------------------------------------------------------------------------
 */

static void test_alertmanager_json(void **state)
{
    struct monitor_transitions t = MONITOR_TRANSITIONS_INIT;
    struct monitor_rules *r = fire_and_resolve(&t);
    struct buf b = BUF_INIT;
    const struct monitor_transition *v[3] = {&t.v[0]};

    /* Firing: endsAt is 4 re-send intervals after the send. */
    monitor_am_alerts_json(v, 1, T0 + 1000, MIN, "http://slipway.example:9090/", &b);
    assert_string_equal(b.data,
                        "[{\"labels\":{\"alertname\":\"high-error-rate\",\"env\":\"web\","
                        "\"severity\":\"critical\"},\"annotations\":{\"summary\":\"error rate "
                        "0.08 on web (r-1)\",\"value\":\"0.08\",\"release\":\"r-1\"},"
                        "\"startsAt\":\"2023-11-14T22:13:20.000Z\",\"endsAt\":\"2023-11-14T22:"
                        "17:21.000Z\",\"generatorURL\":\"http://slipway.example:9090/\"}]");
    buf_free(&b);

    /* Resolved: endsAt is the resolution; no generatorURL without one. */
    v[0] = &t.v[1];
    monitor_am_alerts_json(v, 1, T0 + 2 * MIN, MIN, NULL, &b);
    assert_string_equal(b.data,
                        "[{\"labels\":{\"alertname\":\"high-error-rate\",\"env\":\"web\","
                        "\"severity\":\"critical\"},\"annotations\":{\"summary\":\"error rate "
                        "0.08 on web (r-1)\",\"value\":\"0.08\",\"release\":\"r-1\"},"
                        "\"startsAt\":\"2023-11-14T22:13:20.000Z\",\"endsAt\":\"2023-11-14T22:"
                        "14:20.000Z\"}]");
    buf_free(&b);

    /* The deployment event: its own endsAt (5 minutes), its release a label. */
    struct monitor_rules *d = monitor_rules_default();
    struct monitor_transitions e = MONITOR_TRANSITIONS_INIT;
    monitor_rules_deployed(d, "web", "switch", "r-2", T0, &e);
    assert_int_equal(e.n, 1);
    v[0] = &e.v[0];
    monitor_am_alerts_json(v, 1, T0 + 1000, MIN, NULL, &b);
    assert_string_equal(b.data,
                        "[{\"labels\":{\"action\":\"switch\",\"alertname\":\"deployment-"
                        "completed\",\"env\":\"web\",\"release\":\"r-2\",\"severity\":\"info\"},"
                        "\"annotations\":{\"summary\":\"web: switch of r-2 completed\"},"
                        "\"startsAt\":\"2023-11-14T22:13:20.000Z\",\"endsAt\":\"2023-11-14T22:"
                        "18:20.000Z\"}]");
    buf_free(&b);

    /* Pending, cleared and no-verdict transitions are not notified. */
    struct monitor_transition p = t.v[0];
    p.kind = MONITOR_TRANSITION_PENDING;
    v[0] = &p;
    monitor_am_alerts_json(v, 1, T0, MIN, NULL, &b);
    assert_string_equal(b.data, "[]");
    buf_free(&b);

    monitor_transitions_reset(&e);
    monitor_rules_free(d);
    monitor_transitions_reset(&t);
    monitor_rules_free(r);
}

static void test_webhook_json(void **state)
{
    struct monitor_transitions t = MONITOR_TRANSITIONS_INIT;
    struct monitor_rules *r = fire_and_resolve(&t);
    struct monitor_rules *d = monitor_rules_default();
    struct monitor_transitions e = MONITOR_TRANSITIONS_INIT;
    struct buf b = BUF_INIT;
    monitor_rules_deployed(d, "web", "deploy", "r-2", T0 + 5000, &e);

    /* Alertmanager's own fingerprint of {alertname="high-error-rate", env="web",
     * severity="critical"}, as Alertmanager 0.25 reported it for the same labels. */
    assert_string_equal(t.v[0].fingerprint, "05b983a5392481d3");

    const struct monitor_transition *v[2] = {&t.v[0], &e.v[0]};
    monitor_webhook_json(v, 2, "http://slipway.example:9090/", &b);
    char *want = xasprintf(
        "{\"receiver\":\"slipway\",\"status\":\"firing\",\"alerts\":["
        "{\"status\":\"firing\",\"labels\":{\"alertname\":\"high-error-rate\",\"env\":\"web\","
        "\"severity\":\"critical\"},\"annotations\":{\"summary\":\"error rate 0.08 on web "
        "(r-1)\",\"value\":\"0.08\",\"release\":\"r-1\"},\"startsAt\":\"2023-11-14T22:13:20.000Z\","
        "\"endsAt\":\"0001-01-01T00:00:00Z\",\"generatorURL\":\"http://slipway.example:9090/\","
        "\"fingerprint\":\"05b983a5392481d3\"},"
        "{\"status\":\"firing\",\"labels\":{\"action\":\"deploy\",\"alertname\":\"deployment-"
        "completed\",\"env\":\"web\",\"release\":\"r-2\",\"severity\":\"info\"},\"annotations\":{"
        "\"summary\":\"web: deploy of r-2 completed\"},\"startsAt\":\"2023-11-14T22:13:25.000Z\","
        "\"endsAt\":\"2023-11-14T22:18:25.000Z\",\"generatorURL\":\"http://slipway.example:9090/\","
        "\"fingerprint\":\"%s\"}],\"groupLabels\":{},\"commonLabels\":{\"env\":\"web\"},"
        "\"commonAnnotations\":{},\"externalURL\":\"http://slipway.example:9090/\",\"version\":"
        "\"4\",\"groupKey\":\"{}:{}\",\"truncatedAlerts\":0}",
        e.v[0].fingerprint);
    assert_string_equal(b.data, want);
    free(want);
    buf_free(&b);

    /* Only resolved alerts: the group is resolved; all labels in common. */
    v[0] = &t.v[1];
    monitor_webhook_json(v, 1, NULL, &b);
    assert_string_equal(
        b.data,
        "{\"receiver\":\"slipway\",\"status\":\"resolved\",\"alerts\":["
        "{\"status\":\"resolved\",\"labels\":{\"alertname\":\"high-error-rate\",\"env\":\"web\","
        "\"severity\":\"critical\"},\"annotations\":{\"summary\":\"error rate 0.08 on web "
        "(r-1)\",\"value\":\"0.08\",\"release\":\"r-1\"},\"startsAt\":\"2023-11-14T22:13:20.000Z\","
        "\"endsAt\":\"2023-11-14T22:14:20.000Z\",\"generatorURL\":\"\","
        "\"fingerprint\":\"05b983a5392481d3\"}],\"groupLabels\":{},\"commonLabels\":{"
        "\"alertname\":\"high-error-rate\",\"env\":\"web\",\"severity\":\"critical\"},"
        "\"commonAnnotations\":{\"summary\":\"error rate 0.08 on web (r-1)\",\"value\":\"0.08\","
        "\"release\":\"r-1\"},\"externalURL\":\"\",\"version\":\"4\",\"groupKey\":\"{}:{}\","
        "\"truncatedAlerts\":0}");
    buf_free(&b);

    /* A pushed transition whose text is not UTF-8 is escaped, not dropped. */
    struct monitor_transition x = firing("bad\xff");
    v[0] = &x;
    monitor_am_alerts_json(v, 1, T0, MIN, NULL, &b);
    assert_non_null(strstr(b.data, "\"alertname\":\"bad\\\\xff\""));
    buf_free(&b);

    monitor_transitions_reset(&e);
    monitor_rules_free(d);
    monitor_transitions_reset(&t);
    monitor_rules_free(r);
}

static void test_backoff(void **state)
{
    struct monitor_config *c = config("notify: {backoff: 1s, backoff_max: 30s}\n");
    /* Doubling from 1 s, between half of it and all of it. */
    const int64_t d[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
    for (int retry = 1; retry <= 7; retry++) {
        int64_t full = d[retry - 1];
        assert_int_equal(monitor_notify_backoff_ms(c, retry, 0), full - full / 2);
        assert_int_equal(monitor_notify_backoff_ms(c, retry, (uint64_t)full / 2), full);
        assert_int_equal(monitor_notify_backoff_ms(c, retry, UINT64_MAX),
                         full - full / 2 + (int64_t)(UINT64_MAX % (uint64_t)(full / 2 + 1)));
        for (uint64_t rnd = 0; rnd < 5000; rnd += 7) {
            int64_t w = monitor_notify_backoff_ms(c, retry, rnd);
            assert_true(w >= full / 2 && w <= full);
        }
    }
    assert_int_equal(monitor_notify_backoff_ms(c, 20, 0), 15000); /* capped, no overflow */
    assert_int_equal(monitor_notify_backoff_ms(c, 1, 123), 500 + 123);
    monitor_config_free(c);

    /* An odd wait: 1 ms is 1 ms (never 0: a retry is not a busy loop). */
    c = config("notify: {backoff: 1ms, backoff_max: 3ms}\n");
    assert_int_equal(monitor_notify_backoff_ms(c, 1, 0), 1);
    assert_int_equal(monitor_notify_backoff_ms(c, 1, 99), 1);
    assert_int_equal(monitor_notify_backoff_ms(c, 2, 0), 1);
    assert_int_equal(monitor_notify_backoff_ms(c, 3, 0), 2);
    assert_int_equal(monitor_notify_backoff_ms(c, 3, 1), 3);
    monitor_config_free(c);
}

/* ---- the notifier -------------------------------------------------------------------------------
 */

static struct monitor_config *config_for(const char *fmt, ...)
{
    va_list ap;
    struct buf b = BUF_INIT;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    struct monitor_config *c = config(b.data);
    buf_free(&b);
    return c;
}

static void test_queue_overflow(void **state)
{
    const int ok[] = {200};
    struct fake *f = fake_start(ok, 1);
    struct monitor_config *c = config_for("notify:\n  alertmanager: [http://127.0.0.1:%d]\n"
                                          "  queue: 4\n",
                                          f->port);
    struct monitor_notify *n = monitor_notify_new(c, log_line, NULL);
    char name[6][16];
    for (int i = 0; i < 6; i++) {
        snprintf(name[i], sizeof(name[i]), "a-%d", i);
        struct monitor_transition t = firing(name[i]);
        monitor_notify_push(n, &t); /* copied: t is gone after this loop */
    }
    struct monitor_notify_stats s = stats_of(n);
    assert_int_equal(s.pushed, 6);
    assert_int_equal(s.dropped, 2);
    assert_int_equal(s.queued, 4);

    /* The newest four arrive, in one message, in order; the oldest two never do. */
    struct sw_err err = {0};
    assert_int_equal(monitor_notify_start(n, &err), 0);
    WAIT_FOR(stats_of(n).sent == 1);
    char *body = fake_body(f, 0);
    assert_non_null(body);
    assert_null(strstr(body, "a-0"));
    assert_null(strstr(body, "a-1"));
    const char *p2 = strstr(body, "\"a-2\""), *p5 = strstr(body, "\"a-5\"");
    assert_non_null(p2);
    assert_non_null(p5);
    assert_true(p2 < strstr(body, "\"a-3\"") && strstr(body, "\"a-4\"") < p5);
    assert_string_equal(f->path[0], "/api/v2/alerts");
    free(body);
    s = stats_of(n);
    assert_int_equal(s.queued, 0);
    assert_int_equal(s.firing, 4);
    monitor_notify_push(NULL, NULL); /* a NULL notifier is a no-op */
    monitor_notify_free(n);
    monitor_config_free(c);
    fake_stop(f);
}

static void test_retries_then_sent(void **state)
{
    const int script[] = {503, 429, 200};
    struct fake *f = fake_start(script, 3);
    struct monitor_config *c = config_for("notify:\n  webhooks: [http://127.0.0.1:%d/hook?k=s]\n"
                                          "  retries: 3\n  backoff: 10ms\n  backoff_max: 40ms\n",
                                          f->port);
    struct monitor_notify *n = monitor_notify_new(c, log_line, NULL);
    struct sw_err err = {0};
    assert_int_equal(monitor_notify_start(n, &err), 0);
    struct monitor_transition t = firing("x");
    monitor_notify_push(n, &t);
    WAIT_FOR(stats_of(n).sent == 1);
    struct monitor_notify_stats s = stats_of(n);
    assert_int_equal(s.retried, 2);
    assert_int_equal(s.lost, 0);
    assert_int_equal(s.resends, 0); /* webhooks hear each change once */
    assert_int_equal(fake_count(f), 3);
    char *a = fake_body(f, 0), *b = fake_body(f, 2);
    assert_string_equal(a, b); /* a retry sends the same message */
    assert_non_null(strstr(a, "\"version\":\"4\""));
    assert_string_equal(f->path[0], "/hook?k=s");
    free(a);
    free(b);
    monitor_notify_free(n);
    monitor_config_free(c);
    fake_stop(f);
}

static void test_lost_after_retries(void **state)
{
    const int fail[] = {500}, refuse[] = {400};
    struct fake *f = fake_start(fail, 1), *g = fake_start(refuse, 1);
    int dead = dead_port();
    struct monitor_config *c =
        config_for("notify:\n  alertmanager: [http://127.0.0.1:%d, http://127.0.0.1:%d]\n"
                   "  webhooks: [http://127.0.0.1:%d/secret-path]\n"
                   "  retries: 2\n  backoff: 10ms\n  backoff_max: 20ms\n  timeout: 2s\n",
                   f->port, dead, g->port);
    log_reset();
    struct monitor_notify *n = monitor_notify_new(c, log_line, NULL);
    struct sw_err err = {0};
    assert_int_equal(monitor_notify_start(n, &err), 0);
    struct monitor_transition t = firing("lost-one");
    /* Push never waits for the receivers: with f answering nothing, a push that
     * waited would wait out its 2 s timeout; the bound leaves a loaded machine 1 s. */
    atomic_store(&f->hold, 1);
    int64_t t0 = time_mono_ms();
    monitor_notify_push(n, &t);
    assert_true(time_mono_ms() - t0 < 1000);
    atomic_store(&f->hold, 0);
    WAIT_FOR(stats_of(n).lost == 3);
    char *want = xasprintf("notify: lost: alertmanager http://127.0.0.1:%d (1 alert: lost-one "
                           "env=web firing) after 3 attempts: HTTP 500: nope",
                           f->port);
    assert_true(log_has(want));
    free(want);
    want = xasprintf("notify: lost: alertmanager http://127.0.0.1:%d (1 alert: lost-one env=web "
                     "firing) after 3 attempts: ",
                     dead);
    assert_true(log_has(want));
    free(want);
    /* A refusal is not retried; the log names the origin, never the path. */
    want = xasprintf("notify: lost: webhook 1 http://127.0.0.1:%d (1 alert: lost-one env=web "
                     "firing) after 1 attempt: HTTP 400: nope",
                     g->port);
    assert_true(log_has(want));
    free(want);
    assert_false(log_has("secret-path"));
    assert_int_equal(fake_count(f), 3);
    assert_int_equal(fake_count(g), 1);
    assert_int_equal(stats_of(n).retried, 4);
    monitor_notify_free(n);
    monitor_config_free(c);
    fake_stop(f);
    fake_stop(g);
}

static void test_resend_while_firing(void **state)
{
    const int ok[] = {200};
    struct fake *f = fake_start(ok, 1);
    struct monitor_config *c = config_for("notify:\n  alertmanager: [http://127.0.0.1:%d]\n"
                                          "  resend: 100ms\n",
                                          f->port);
    struct monitor_notify *n = monitor_notify_new(c, log_line, NULL);
    struct sw_err err = {0};
    struct monitor_transitions t = MONITOR_TRANSITIONS_INIT;
    struct monitor_rules *r = fire_and_resolve(&t);
    assert_int_equal(monitor_notify_start(n, &err), 0);
    monitor_notify_push(n, &t.v[0]);
    WAIT_FOR(stats_of(n).resends >= 3);
    assert_int_equal(stats_of(n).firing, 1);
    /* Each re-send is the firing alert again, endsAt moved on. */
    char *first = fake_body(f, 0), *again = fake_body(f, 2);
    assert_non_null(strstr(again, "\"alertname\":\"high-error-rate\""));
    assert_non_null(strstr(again, "\"startsAt\":\"2023-11-14T22:13:20.000Z\""));
    assert_string_not_equal(first, again);
    free(first);
    free(again);

    /* Resolved: sent once with its endsAt, and never re-sent. */
    monitor_notify_push(n, &t.v[1]);
    WAIT_FOR(stats_of(n).firing == 0);
    sleep_ms(50);
    size_t count = fake_count(f);
    uint64_t resends = stats_of(n).resends;
    char *last = fake_body(f, count - 1);
    assert_non_null(strstr(last, "\"endsAt\":\"2023-11-14T22:14:20.000Z\""));
    free(last);
    sleep_ms(350);
    assert_int_equal(stats_of(n).resends, resends);
    assert_int_equal(fake_count(f), count);
    monitor_notify_free(n);
    monitor_transitions_reset(&t);
    monitor_rules_free(r);
    monitor_config_free(c);
    fake_stop(f);
}

/* on_delivery: told once per target of a firing alert's first message,
 * delivered or lost (and why), with the alert's env, rule, fingerprint and
 * startsAt; never of a re-send, a resolution or an event. */
struct told {
    pthread_mutex_t lock;
    struct buf text;
    int n;
};
static void on_delivery(void *arg, const struct monitor_notify_delivery *d)
{
    struct told *t = arg;
    pthread_mutex_lock(&t->lock);
    buf_addf(&t->text, "%s %s %s %s %s %lld %s\n", d->delivered ? "delivered" : "lost", d->target,
             d->env, d->rule, d->fingerprint, (long long)d->starts_ms, d->why ? d->why : "-");
    t->n++;
    pthread_mutex_unlock(&t->lock);
}
static int told_count(struct told *t)
{
    pthread_mutex_lock(&t->lock);
    int n = t->n;
    pthread_mutex_unlock(&t->lock);
    return n;
}

static void test_delivery_told(void **state)
{
    const int ok[] = {200}, refuse[] = {400};
    struct fake *f = fake_start(ok, 1), *g = fake_start(refuse, 1);
    struct monitor_config *c =
        config_for("notify:\n  alertmanager: [http://127.0.0.1:%d]\n"
                   "  webhooks: [http://127.0.0.1:%d/secret-path?k=v]\n  resend: 100ms\n",
                   f->port, g->port);
    struct monitor_notify *n = monitor_notify_new(c, log_line, NULL);
    struct told t = {PTHREAD_MUTEX_INITIALIZER, BUF_INIT, 0};
    struct sw_err err = {0};
    struct monitor_transitions tr = MONITOR_TRANSITIONS_INIT;
    struct monitor_rules *r = fire_and_resolve(&tr);
    monitor_notify_on_delivery(n, on_delivery, &t);
    assert_int_equal(monitor_notify_start(n, &err), 0);
    monitor_notify_push(n, &tr.v[0]);
    WAIT_FOR(told_count(&t) == 2 && stats_of(n).resends >= 2);
    monitor_notify_push(n, &tr.v[1]);                          /* resolved: sent, not told */
    monitor_notify_deployed(n, r, "web", "deploy", "r-2", T0); /* no deployment rule: nothing */
    WAIT_FOR(stats_of(n).firing == 0 && stats_of(n).sent >= 4);
    assert_int_equal(told_count(&t), 2);
    char *want = xasprintf("delivered alertmanager http://127.0.0.1:%d web high-error-rate %s "
                           "%lld -\n",
                           f->port, tr.v[0].fingerprint, (long long)T0);
    assert_non_null(strstr(t.text.data, want));
    free(want);
    want = xasprintf("lost webhook 1 http://127.0.0.1:%d web high-error-rate %s %lld HTTP 400: "
                     "nope\n",
                     g->port, tr.v[0].fingerprint, (long long)T0);
    assert_non_null(strstr(t.text.data, want));
    free(want);
    assert_null(strstr(t.text.data, "secret-path"));
    monitor_notify_free(n);
    assert_int_equal(told_count(&t), 2);
    buf_free(&t.text);
    monitor_transitions_reset(&tr);
    monitor_rules_free(r);
    monitor_config_free(c);
    fake_stop(f);
    fake_stop(g);
}

static void test_deployed_to_both(void **state)
{
    const int ok[] = {200};
    struct fake *am = fake_start(ok, 1), *wh = fake_start(ok, 1);
    struct monitor_config *c = config_for("notify:\n  alertmanager: [http://127.0.0.1:%d]\n"
                                          "  webhooks: [http://127.0.0.1:%d/in]\n",
                                          am->port, wh->port);
    struct monitor_notify *n = monitor_notify_new(c, log_line, NULL);
    struct monitor_rules *d = monitor_rules_default();
    struct sw_err err = {0};
    assert_int_equal(monitor_notify_start(n, &err), 0);
    monitor_notify_deployed(n, d, "web", "rollback", "r-7", T0);
    monitor_notify_deployed(NULL, d, "web", "rollback", "r-7", T0); /* no notifier: nothing */
    WAIT_FOR(fake_count(am) == 1 && fake_count(wh) == 1);
    char *a = fake_body(am, 0), *w = fake_body(wh, 0);
    assert_true(a[0] == '[');
    assert_non_null(strstr(a, "\"action\":\"rollback\""));
    assert_non_null(strstr(a, "\"summary\":\"web: rollback of r-7 completed\""));
    assert_true(w[0] == '{');
    assert_non_null(strstr(w, "\"version\":\"4\""));
    assert_non_null(strstr(w, "\"release\":\"r-7\""));
    free(a);
    free(w);
    WAIT_FOR(stats_of(n).sent == 2);
    assert_int_equal(stats_of(n).firing, 0); /* an event is not re-sent: it has its end */
    monitor_notify_free(n);
    monitor_rules_free(d);
    monitor_config_free(c);
    fake_stop(am);
    fake_stop(wh);
}

/* ---- Alertmanager's webhook -------------------------------------------------------------------
 */

/* Sent by Alertmanager 0.25 (Debian's prometheus-alertmanager) to a webhook
 * receiver, byte for byte. */
static const char am_body[] =
    "{\"receiver\":\"slipway\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":"
    "{\"alertname\":\"high-error-rate\",\"env\":\"web\",\"instance\":\"edge-1:9090\",\"severity\":"
    "\"critical\"},\"annotations\":{\"summary\":\"error rate 0.09 on web\",\"value\":\"0.09\"},"
    "\"startsAt\":\"2026-12-05T16:35:01.149389655Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
    "\"generatorURL\":\"http://prom.example/graph\",\"fingerprint\":\"67f7d3d023e2bd4d\"},"
    "{\"status\":\"firing\",\"labels\":{\"alertname\":\"slow-responses\",\"env\":\"web\","
    "\"severity\":\"warning\"},\"annotations\":{\"summary\":\"slow\"},\"startsAt\":\"2026-12-05T16:"
    "35:01.149389655Z\",\"endsAt\":\"0001-01-01T00:00:00Z\",\"generatorURL\":\"\",\"fingerprint\":"
    "\"da72cbd3762a49b0\"}],\"groupLabels\":{},\"commonLabels\":{\"env\":\"web\"},"
    "\"commonAnnotations\":{},\"externalURL\":\"http://am.example:9093\",\"version\":\"4\","
    "\"groupKey\":\"{}:{}\",\"truncatedAlerts\":0}";

static void test_webhook_parse(void **state)
{
    struct monitor_am_webhook *w = NULL;
    struct sw_err err = {0};
    assert_int_equal(monitor_am_webhook_parse(am_body, strlen(am_body), &w, &err), 0);
    assert_int_equal(w->firing, 1);
    assert_int_equal(w->nalerts, 2);
    const struct monitor_am_alert *a = &w->alerts[0];
    assert_int_equal(a->firing, 1);
    assert_int_equal(a->nlabels, 4);
    assert_string_equal(a->labels[2].name, "instance"); /* sorted by name */
    assert_string_equal(monitor_am_label(a, "env"), "web");
    assert_string_equal(monitor_am_label(a, "severity"), "critical");
    assert_null(monitor_am_label(a, "job"));
    assert_string_equal(a->fingerprint, "67f7d3d023e2bd4d");
    assert_int_equal(a->starts_ms, 1796488501149LL); /* the nanoseconds cut to ms */
    assert_string_equal(a->value, "0.09");
    /* Alertmanager's fingerprint is what slipway computes from the labels. */
    char fp[17];
    monitor_labels_fingerprint(a->labels, a->nlabels, fp);
    assert_string_equal(fp, "67f7d3d023e2bd4d");
    assert_null(w->alerts[1].value);
    assert_string_equal(w->alerts[1].fingerprint, "da72cbd3762a49b0");
    monitor_am_webhook_free(w);

    /* Without a fingerprint (an older sender) it is computed, labels sorted first. */
    const char *nofp = "{\"version\":\"4\",\"status\":\"resolved\",\"alerts\":[{\"status\":"
                       "\"resolved\",\"labels\":{\"severity\":\"critical\",\"instance\":\"edge-1:"
                       "9090\",\"env\":\"web\",\"alertname\":\"high-error-rate\"}}]}";
    assert_int_equal(monitor_am_webhook_parse(nofp, strlen(nofp), &w, &err), 0);
    assert_int_equal(w->firing, 0);
    assert_string_equal(w->alerts[0].fingerprint, "67f7d3d023e2bd4d");
    assert_int_equal(w->alerts[0].starts_ms, 0);
    monitor_am_webhook_free(w);

    const struct {
        const char *body, *want;
    } bad[] = {
        {"", "webhook: "},
        {"{\"version\":\"4\",", "webhook: "},
        {"[]", "webhook: expected a JSON object"},
        {"{\"status\":\"firing\",\"alerts\":[]}", "webhook: version: expected \"4\""},
        {"{\"version\":4,\"status\":\"firing\",\"alerts\":[]}", "webhook: version"},
        {"{\"version\":\"4\",\"status\":\"on\",\"alerts\":[]}", "webhook: status"},
        {"{\"version\":\"4\",\"status\":\"firing\"}", "webhook: alerts: expected an array"},
        {"{\"version\":\"4\",\"status\":\"firing\",\"status\":\"firing\",\"alerts\":[]}",
         "webhook: duplicate object key"},
        {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[1]}",
         "alerts[0]: expected an object"},
        {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"labels\":{}}]}",
         "alerts[0].status"},
        {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\"}]}",
         "alerts[0].labels: expected an object"},
        {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":"
         "{\"env\":1}}]}",
         "alerts[0].labels: expected names"},
        {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":"
         "{\"env\":\"a\\u0000b\"}}]}",
         "\\u0000 is not allowed"},
        {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":"
         "{\"env\":\"a\\nb\"}}]}",
         "alerts[0].labels: expected names"},
        {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":"
         "{\"\":\"x\"}}]}",
         "alerts[0].labels: expected names"},
        {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":"
         "{},\"fingerprint\":\"XYZ\"}]}",
         "alerts[0].fingerprint: expected 16 lowercase hex digits"},
        {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":"
         "{},\"annotations\":[]}]}",
         "alerts[0].annotations: expected an object"},
        {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":"
         "{},\"annotations\":{\"value\":0.5}}]}",
         "alerts[0].annotations.value: expected a string"},
        {"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":"
         "{},\"startsAt\":5}]}",
         "alerts[0].startsAt: expected a time"},
    };
    /* RFC 3339 as Alertmanager's webhook (ns), its API (ms) and others write it. */
    const struct {
        const char *text;
        int64_t ms;
    } times[] = {
        {"2026-12-05T16:35:01.149389655Z", 1796488501149LL},
        {"2026-12-05T16:35:01.149Z", 1796488501149LL},
        {"2026-12-05t16:35:01.1z", 1796488501100LL},
        {"2026-12-05T16:35:01Z", 1796488501000LL},
        {"2026-12-05T17:35:01+01:00", 1796488501000LL},
        {"2026-12-05T15:05:01-01:30", 1796488501000LL},
        {"1970-01-01T00:00:00Z", 0},
        {"2000-02-29T00:00:00Z", 951782400000LL},
    };
    for (size_t i = 0; i < sizeof(times) / sizeof(*times); i++) {
        char *b = xasprintf("{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":"
                            "\"firing\",\"labels\":{},\"startsAt\":\"%s\"}]}",
                            times[i].text);
        assert_int_equal(monitor_am_webhook_parse(b, strlen(b), &w, &err), 0);
        assert_int_equal(w->alerts[0].starts_ms, times[i].ms);
        monitor_am_webhook_free(w);
        free(b);
    }
    const char *bad_times[] = {"",
                               "2026-12-05",
                               "2026-12-05 16:35:01Z",
                               "2026-13-05T16:35:01Z",
                               "2026-12-32T16:35:01Z",
                               "2026-12-05T24:00:00Z",
                               "2026-12-05T16:35:01",
                               "2026-12-05T16:35:01.Z",
                               "2026-12-05T16:35:01+0100",
                               "2026-12-05T16:35:01Zx",
                               "1969-12-31T23:59:59Z",
                               "1970-01-01T00:30:00+01:00"};
    for (size_t i = 0; i < sizeof(bad_times) / sizeof(*bad_times); i++) {
        char *b = xasprintf("{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":"
                            "\"firing\",\"labels\":{},\"startsAt\":\"%s\"}]}",
                            bad_times[i]);
        w = (struct monitor_am_webhook *)1;
        assert_int_equal(monitor_am_webhook_parse(b, strlen(b), &w, &err), SW_EINVAL);
        assert_null(w);
        assert_non_null(strstr(err.msg, "alerts[0].startsAt: expected a time (RFC 3339)"));
        free(b);
    }

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        w = (struct monitor_am_webhook *)1;
        int rc = monitor_am_webhook_parse(bad[i].body, strlen(bad[i].body), &w, &err);
        if (rc != SW_EINVAL || !strstr(err.msg, bad[i].want))
            print_message("# case %zu: wanted '%s', got rc %d: %s\n", i, bad[i].want, rc, err.msg);
        assert_int_equal(rc, SW_EINVAL);
        assert_null(w);
        assert_non_null(strstr(err.msg, bad[i].want));
    }

    /* Bounds: alerts, labels, the whole body. */
    struct buf b = BUF_INIT;
    buf_adds(&b, "{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[");
    for (int i = 0; i <= MONITOR_AM_ALERTS_MAX; i++)
        buf_addf(&b, "%s{\"status\":\"firing\",\"labels\":{}}", i ? "," : "");
    buf_adds(&b, "]}");
    assert_int_equal(monitor_am_webhook_parse(b.data, b.len, &w, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "at most 1000 alerts"));
    buf_reset(&b);
    buf_adds(&b, "{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\","
                 "\"labels\":{");
    for (int i = 0; i <= MONITOR_AM_LABELS_MAX; i++)
        buf_addf(&b, "%s\"l%d\":\"v\"", i ? "," : "", i);
    buf_adds(&b, "}}]}");
    assert_int_equal(monitor_am_webhook_parse(b.data, b.len, &w, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "at most 64 labels"));
    buf_free(&b);
    char *huge = xcalloc(MONITOR_HOOK_BODY_MAX + 2, 1);
    memset(huge, ' ', MONITOR_HOOK_BODY_MAX + 1);
    assert_int_equal(monitor_am_webhook_parse(huge, MONITOR_HOOK_BODY_MAX + 1, &w, &err),
                     SW_EINVAL);
    assert_non_null(strstr(err.msg, "more than 1048576 bytes"));
    free(huge);
}

/* ---- the hook -----------------------------------------------------------------------------------
 */

#define TOKEN "0123456789abcdef0123456789abcdef"

/* The callback runs on the threads calling the hook: its record is locked. */
static atomic_int calls;
static char last_call[512];
static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER;
static void on_critical(void *arg, const char *env, const char *alertname, const char *fingerprint,
                        const char *value)
{
    pthread_mutex_lock(&call_lock);
    snprintf(last_call, sizeof(last_call), "%s %s %s %s", env, alertname, fingerprint,
             value ? value : "(none)");
    pthread_mutex_unlock(&call_lock);
    atomic_fetch_add(&calls, 1);
}

static void write_file(const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(path);
}

static struct monitor_hook *hook_with(const char *token)
{
    write_file("token", token);
    struct monitor_config *c = config("webhook_token_file: token\n");
    struct monitor_hook *h = NULL;
    struct sw_err err = {0};
    int rc = monitor_hook_new(c, on_critical, NULL, &h, &err);
    if (rc)
        print_message("# %s\n", err.msg);
    assert_int_equal(rc, 0);
    monitor_config_free(c);
    return h;
}

static int post(struct monitor_hook *h, const char *authz, const char *body, struct buf *out)
{
    buf_reset(out);
    return monitor_hook_handle(h, authz, authz ? strlen(authz) : 0, body, strlen(body), out);
}

/* One alert as Alertmanager sends it, firing since starts seconds after
 * 2026-12-05T00:00:00Z. */
static char *one(const char *status, const char *env, const char *severity, int starts)
{
    return xasprintf("{\"version\":\"4\",\"status\":\"%s\",\"alerts\":[{\"status\":\"%s\","
                     "\"labels\":{\"alertname\":\"high-error-rate\",\"env\":\"%s\",\"severity\":"
                     "\"%s\"},\"annotations\":{\"value\":\"0.2\"},\"startsAt\":\"2026-12-05T"
                     "%02d:%02d:%02d.123456789Z\"}]}",
                     status, status, env, severity, starts / 3600 % 24, starts / 60 % 60,
                     starts % 60);
}

static void test_hook_token(void **state)
{
    struct monitor_hook *h = hook_with(TOKEN "\n"); /* a trailing newline is no part of it */
    struct buf out = BUF_INIT;
    atomic_store(&calls, 0);
    assert_int_equal(post(h, NULL, am_body, &out), 401);
    assert_string_equal(
        out.data, "{\"error\":\"a bearer token is required (monitor.webhook_token_file)\"}\n");
    assert_int_equal(post(h, "Bearer wrong-token-wrong-token-wrong", am_body, &out), 401);
    assert_int_equal(post(h, "Bearer " TOKEN "x", am_body, &out), 401);
    assert_int_equal(post(h,
                          "Bearer "
                          "0123456789abcdef",
                          am_body, &out),
                     401); /* a prefix */
    assert_int_equal(post(h, "Basic " TOKEN, am_body, &out), 401);
    assert_int_equal(post(h, "Bearer", am_body, &out), 401);
    assert_int_equal(post(h, "Bearer ", am_body, &out), 401);
    assert_int_equal(post(h, "Bearer" TOKEN, am_body, &out), 401);
    assert_int_equal(post(h, TOKEN, am_body, &out), 401);
    /* A 401 parses nothing and remembers nothing: a malformed body is still 401. */
    assert_int_equal(post(h, NULL, "{", &out), 401);
    assert_int_equal(atomic_load(&calls), 0);

    /* The scheme is case-insensitive (RFC 9110 §11.1); spaces before the token. */
    assert_int_equal(post(h, "bearer   " TOKEN, am_body, &out), 200);
    assert_string_equal(out.data, "{\"critical\":1,\"duplicate\":0,\"ignored\":1}\n");
    assert_int_equal(atomic_load(&calls), 1);
    assert_string_equal(last_call, "web high-error-rate 67f7d3d023e2bd4d 0.09");
    buf_reset(&out);
    assert_int_equal(monitor_hook_handle(h, "Bearer " TOKEN, strlen(TOKEN) + 7, NULL, 0, &out),
                     400); /* no body at all */
    assert_int_equal(post(h, "Bearer " TOKEN, "{\"version\":\"4\"", &out), 400);
    assert_non_null(strstr(out.data, "{\"error\":\"webhook: "));
    monitor_hook_free(h);

    /* Tokens that are not: too short, blanks inside, no file. */
    const char *bad[] = {"short\n", "0123456789abcdef 0123456789abcdef", ""};
    for (size_t i = 0; i < 3; i++) {
        write_file("token", bad[i]);
        struct monitor_config *c = config("webhook_token_file: token\n");
        struct sw_err err = {0};
        assert_int_equal(monitor_hook_new(c, on_critical, NULL, &h, &err), SW_EINVAL);
        assert_null(h);
        assert_non_null(strstr(err.msg, "expected a token of 16 to 1024 visible ASCII"));
        monitor_config_free(c);
    }
    struct monitor_config *c = config("webhook_token_file: missing-token\n");
    struct sw_err err = {0};
    assert_int_equal(monitor_hook_new(c, on_critical, NULL, &h, &err), SW_ENOTFOUND);
    monitor_config_free(c);
    c = config("notify: {}\n");
    assert_int_equal(monitor_hook_new(c, on_critical, NULL, &h, &err), SW_EINVAL);
    monitor_config_free(c);
    buf_free(&out);
}

static void test_hook_idempotent(void **state)
{
    struct monitor_hook *h = hook_with(TOKEN);
    struct buf out = BUF_INIT;
    const char *auth = "Bearer " TOKEN;
    char *fire = one("firing", "staging", "critical", 100);
    char *fire2 = one("firing", "staging", "critical", 200);
    char *resolve = one("resolved", "staging", "critical", 100);
    atomic_store(&calls, 0);

    /* Alertmanager re-sends a firing group: it triggers once. */
    assert_int_equal(post(h, auth, fire, &out), 200);
    assert_string_equal(out.data, "{\"critical\":1,\"duplicate\":0,\"ignored\":0}\n");
    assert_int_equal(post(h, auth, fire, &out), 200);
    assert_string_equal(out.data, "{\"critical\":0,\"duplicate\":1,\"ignored\":0}\n");
    assert_int_equal(atomic_load(&calls), 1);
    struct monitor_label l[3] = {{(char *)"alertname", (char *)"high-error-rate"},
                                 {(char *)"env", (char *)"staging"},
                                 {(char *)"severity", (char *)"critical"}};
    char fp[17], *want = NULL;
    monitor_labels_fingerprint(l, 3, fp); /* computed: the webhook names none */
    want = xasprintf("staging high-error-rate %s 0.2", fp);
    assert_string_equal(last_call, want);
    free(want);

    /* The same instant written as Alertmanager's API writes it (ms): the same. */
    char *ms = xstrdup(fire);
    char *frac = strstr(ms, ".123456789Z");
    memmove(frac + 4, frac + 10, strlen(frac + 10) + 1); /* ".123Z" */
    assert_int_equal(post(h, auth, ms, &out), 200);
    assert_string_equal(out.data, "{\"critical\":0,\"duplicate\":1,\"ignored\":0}\n");
    free(ms);

    /* Resolved, then firing again: a new incident, which triggers again. */
    assert_int_equal(post(h, auth, resolve, &out), 200);
    assert_string_equal(out.data, "{\"critical\":0,\"duplicate\":0,\"ignored\":1}\n");
    assert_int_equal(post(h, auth, fire, &out), 200);
    assert_int_equal(atomic_load(&calls), 2);
    /* Firing since another time without a resolution seen: also new. */
    assert_int_equal(post(h, auth, fire2, &out), 200);
    assert_int_equal(atomic_load(&calls), 3);
    assert_int_equal(post(h, auth, fire2, &out), 200);
    assert_int_equal(atomic_load(&calls), 3);

    /* Not critical, no env, an env that is no environment name: ignored. */
    char *warn = one("firing", "staging", "warning", 1);
    char *noenv = xstrdup("{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":"
                          "\"firing\",\"labels\":{\"alertname\":\"a\",\"severity\":"
                          "\"critical\"}}]}");
    char *badenv = one("firing", "../etc", "critical", 1);
    assert_int_equal(post(h, auth, warn, &out), 200);
    assert_int_equal(post(h, auth, noenv, &out), 200);
    assert_int_equal(post(h, auth, badenv, &out), 200);
    assert_string_equal(out.data, "{\"critical\":0,\"duplicate\":0,\"ignored\":1}\n");
    assert_int_equal(atomic_load(&calls), 3);

    /* The same alert twice in one webhook triggers once. */
    char *twice =
        xstrdup("{\"version\":\"4\",\"status\":\"firing\",\"alerts\":["
                "{\"status\":\"firing\",\"labels\":{\"env\":\"dev\",\"severity\":\"critical\"}},"
                "{\"status\":\"firing\",\"labels\":{\"env\":\"dev\",\"severity\":\"critical\"}}]}");
    assert_int_equal(post(h, auth, twice, &out), 200);
    assert_string_equal(out.data, "{\"critical\":1,\"duplicate\":1,\"ignored\":0}\n");
    assert_int_equal(atomic_load(&calls), 4);
    assert_non_null(strstr(last_call, "dev  ")); /* no alertname: empty; fingerprint computed */
    assert_non_null(strstr(last_call, "(none)"));

    /* Memory is bounded: the oldest are forgotten first. */
    for (int i = 0; i < MONITOR_HOOK_SEEN_MAX + 1; i++) {
        char *b = one("firing", "bulk", "critical", i);
        assert_int_equal(post(h, auth, b, &out), 200);
        free(b);
    }
    char *b0 = one("firing", "bulk", "critical", 0);
    int before = atomic_load(&calls);
    assert_int_equal(post(h, auth, b0, &out), 200);
    assert_int_equal(atomic_load(&calls), before + 1);
    free(b0);

    free(twice);
    free(warn);
    free(noenv);
    free(badenv);
    free(fire);
    free(fire2);
    free(resolve);
    buf_free(&out);
    monitor_hook_free(h);
}

/* ---- threads --------------------------------------------------------------------------------- */

struct shared {
    struct monitor_notify *n;
    struct monitor_hook *h;
    int id;
};

static void *pusher(void *arg)
{
    struct shared *s = arg;
    char name[32];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "t%d-%d", s->id, i % 7);
        struct monitor_transition t = firing(name);
        if (i % 3 == 2)
            t.kind = MONITOR_TRANSITION_RESOLVED, t.ends_ms = T0 + 1;
        monitor_notify_push(s->n, &t);
    }
    return NULL;
}

static void *hooker(void *arg)
{
    struct shared *s = arg;
    struct buf out = BUF_INIT;
    for (int i = 0; i < 200; i++) {
        char *b = one(i % 5 ? "firing" : "resolved", "race", "critical", i % 50);
        assert_int_equal(post(s->h, "Bearer " TOKEN, b, &out), 200);
        free(b);
    }
    buf_free(&out);
    return NULL;
}

static void test_threads(void **state)
{
    const int ok[] = {200};
    struct fake *f = fake_start(ok, 1);
    struct monitor_config *c = config_for("notify:\n  alertmanager: [http://127.0.0.1:%d]\n"
                                          "  webhooks: [http://127.0.0.1:%d/w]\n"
                                          "  resend: 100ms\n  queue: 64\n",
                                          f->port, f->port);
    struct monitor_notify *n = monitor_notify_new(c, log_line, NULL);
    struct monitor_hook *h = hook_with(TOKEN);
    struct sw_err err = {0};
    assert_int_equal(monitor_notify_start(n, &err), 0);
    pthread_t th[6];
    struct shared sh[6];
    for (int i = 0; i < 6; i++) {
        sh[i] = (struct shared){n, h, i};
        assert_int_equal(pthread_create(&th[i], NULL, i < 4 ? pusher : hooker, &sh[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        struct monitor_notify_stats s;
        monitor_notify_stats(n, &s); /* read while they run */
        pthread_join(th[i], NULL);
    }
    struct monitor_notify_stats s = stats_of(n);
    assert_int_equal(s.pushed, 2000);
    assert_true(s.dropped < 2000);
    WAIT_FOR(stats_of(n).queued == 0 && stats_of(n).sent >= 2);
    monitor_notify_free(n); /* stops mid-work: whatever is left is logged, nothing leaks */
    monitor_hook_free(h);
    monitor_config_free(c);
    fake_stop(f);
}

static int setup(void **state)
{
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    struct sw_err err = {0};
    buf_free(&log_text);
    return fs_remove_tree(tmpdir, &err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_keys),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_alertmanager_json),
        cmocka_unit_test(test_webhook_json),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_queue_overflow),
        cmocka_unit_test(test_retries_then_sent),
        cmocka_unit_test(test_lost_after_retries),
        cmocka_unit_test(test_resend_while_firing),
        cmocka_unit_test(test_delivery_told),
        cmocka_unit_test(test_deployed_to_both),
        cmocka_unit_test(test_webhook_parse),
        cmocka_unit_test(test_hook_token),
        cmocka_unit_test(test_hook_idempotent),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
