/* Unit tests for the incident journal (src/monitor/journal.c): every event
 * kind round-trips and encodes to the same bytes; what the writer is given
 * that the reader would refuse (control characters, bytes that are not
 * UTF-8, a long text, a release that is not an id) is cleaned so it is read
 * back; hostile lines (each one change away from a good one) are refused; a
 * file's bad lines are skipped, counted and named by line number; events are
 * grouped into incidents (by env, fingerprint and fired time; a rollback by
 * env, rule and fired time; a verdict by its release), newest first, and
 * filtered by env and time; the writer appends whole lines from many
 * threads and keeps the file bounded by its newest half. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "monitor/monitor.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T0 1764950400000LL /* 2025-12-05T16:00:00Z */
#define FP "0123456789abcdef"

static char tmpdir[64];

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/sw-journal-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    struct sw_err err = {0};
    fs_remove_tree(tmpdir, &err);
    return 0;
}

/* An event of kind k with every field its kind has. Strings are borrowed
 * literals: never clear it. */
static struct monitor_journal_event ev(enum monitor_journal_kind k, const char *env, int64_t fired,
                                       int64_t at)
{
    struct monitor_journal_event e = {0};
    e.kind = k;
    e.at_ms = at;
    snprintf(e.env, sizeof(e.env), "%s", env);
    e.severity = -1;
    e.value = NAN;
    if (k != MONITOR_JOURNAL_VERDICT) {
        e.rule = (char *)"high-error-rate";
        e.fired_ms = fired;
    }
    switch (k) {
    case MONITOR_JOURNAL_FIRED:
    case MONITOR_JOURNAL_RESOLVED:
        e.severity = MONITOR_CRITICAL;
        memcpy(e.fingerprint, FP, 17);
        e.value = 0.125;
        e.release = (char *)"r-2";
        e.text = (char *)"error rate 0.125 on web (r-2)";
        break;
    case MONITOR_JOURNAL_NOTIFIED:
    case MONITOR_JOURNAL_LOST:
        memcpy(e.fingerprint, FP, 17);
        e.target = (char *)"webhook 1 http://127.0.0.1:9000";
        if (k == MONITOR_JOURNAL_LOST)
            e.text = (char *)"HTTP 500: nope";
        break;
    case MONITOR_JOURNAL_ROLLED_BACK:
        e.source = (char *)"slipway";
        e.release = (char *)"r-2";
        e.to = (char *)"r-1";
        e.text = (char *)"high-error-rate (critical, from slipway): error_ratio 0.125 > 0.05";
        break;
    case MONITOR_JOURNAL_ROLLBACK_SKIPPED:
        e.source = (char *)"alertmanager";
        e.release = (char *)"r-2";
        e.text = (char *)"web has no watch";
        break;
    default:
        e.release = (char *)"r-2";
        e.text = (char *)"passed: r-2 was watched for 10m and no critical alert fired";
    }
    return e;
}

static void encode_ok(const struct monitor_journal_event *e, struct buf *out)
{
    struct sw_err err = {0};
    assert_int_equal(monitor_journal_encode(e, out, &err), 0);
}

static void parse_ok(const struct buf *b, struct monitor_journal_event *out)
{
    struct sw_err err = {0};
    assert_true(b->len > 0 && b->data[b->len - 1] == '\n');
    assert_null(memchr(b->data, '\n', b->len - 1)); /* one line */
    int rc = monitor_journal_parse_line(b->data, b->len - 1, out, &err);
    if (rc)
        fail_msg("%s: %s", b->data, err.msg);
}

static void assert_str_or_null(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void test_round_trip(void **state)
{
    for (int k = 0; k < MONITOR_JOURNAL_KINDS; k++) {
        struct monitor_journal_event e = ev(k, "web", T0, T0 + 1500), back;
        struct buf b1 = BUF_INIT, b2 = BUF_INIT;
        encode_ok(&e, &b1);
        parse_ok(&b1, &back);
        assert_int_equal(back.kind, k);
        assert_string_equal(monitor_journal_kind_name(back.kind), monitor_journal_kind_name(k));
        assert_true(back.at_ms == T0 + 1500);
        assert_string_equal(back.env, "web");
        assert_str_or_null(back.rule, e.rule);
        assert_int_equal(back.severity, e.severity);
        assert_string_equal(back.fingerprint, e.fingerprint);
        assert_true(back.fired_ms == e.fired_ms);
        assert_true(isnan(e.value) ? isnan(back.value) : back.value == e.value);
        assert_str_or_null(back.release, e.release);
        assert_str_or_null(back.to, e.to);
        assert_str_or_null(back.target, e.target);
        assert_str_or_null(back.source, e.source);
        assert_str_or_null(back.text, e.text);
        encode_ok(&back, &b2);
        assert_string_equal(b1.data, b2.data);
        monitor_journal_event_clear(&back);
        buf_free(&b1);
        buf_free(&b2);
    }
    /* the shape docs/monitor.md shows */
    struct monitor_journal_event e = ev(MONITOR_JOURNAL_NOTIFIED, "web", T0, T0 + 250);
    struct buf b = BUF_INIT;
    encode_ok(&e, &b);
    assert_string_equal(b.data,
                        "{\"v\":1,\"event\":\"notified\",\"time\":\"2025-12-05T16:00:00.250Z\","
                        "\"env\":\"web\",\"rule\":\"high-error-rate\",\"fingerprint\":"
                        "\"" FP "\",\"fired\":\"2025-12-05T16:00:00.000Z\",\"target\":"
                        "\"webhook 1 http://127.0.0.1:9000\"}\n");
    buf_free(&b);
}

static void test_encode_cleans(void **state)
{
    struct monitor_journal_event e = ev(MONITOR_JOURNAL_ROLLBACK_SKIPPED, "web", T0, T0), back;
    char big[3000];
    /* a text past its bound, its cut inside a two-byte character */
    memset(big, 'a', sizeof(big));
    memcpy(big + MONITOR_JOURNAL_TEXT_MAX - 1, "\xc3\xa9", 2);
    big[sizeof(big) - 1] = '\0';
    e.text = big;
    e.rule = (char *)"bad\x1b[31m\xff rule"; /* a terminal escape and a byte not UTF-8 */
    e.release = (char *)"../../etc/passwd";  /* not a release id: left out */
    struct buf b = BUF_INIT;
    encode_ok(&e, &b);
    parse_ok(&b, &back);
    assert_string_equal(back.rule, "bad\\x1b[31m\\xff rule");
    assert_null(back.release);
    assert_int_equal(strlen(back.text), MONITOR_JOURNAL_TEXT_MAX - 1);
    monitor_journal_event_clear(&back);
    buf_free(&b);

    /* a rule (an alertname from Alertmanager) past 63 bytes is cut */
    e = ev(MONITOR_JOURNAL_ROLLED_BACK, "web", T0, T0);
    e.rule = big;
    e.to = NULL;
    encode_ok(&e, &b);
    parse_ok(&b, &back);
    assert_int_equal(strlen(back.rule), MONITOR_JOURNAL_RULE_MAX);
    assert_null(back.to);
    monitor_journal_event_clear(&back);
    buf_free(&b);

    /* what cannot be read back at all is refused, nothing written */
    struct sw_err err = {0};
    e = ev(MONITOR_JOURNAL_FIRED, "Web/..", T0, T0);
    assert_int_equal(monitor_journal_encode(&e, &b, &err), SW_EINVAL);
    e = ev(MONITOR_JOURNAL_FIRED, "web", T0, T0);
    memcpy(e.fingerprint, "XYZ", 4);
    assert_int_equal(monitor_journal_encode(&e, &b, &err), SW_EINVAL);
    e = ev(MONITOR_JOURNAL_NOTIFIED, "web", 0, T0);
    assert_int_equal(monitor_journal_encode(&e, &b, &err), SW_EINVAL);
    e = ev(MONITOR_JOURNAL_ROLLED_BACK, "web", T0, T0);
    e.source = (char *)"someone";
    assert_int_equal(monitor_journal_encode(&e, &b, &err), SW_EINVAL);
    assert_int_equal(b.len, 0);
}

static void test_parse_refuses(void **state)
{
    static const char good[] =
        "{\"v\":1,\"event\":\"fired\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\","
        "\"rule\":\"r\",\"severity\":\"critical\",\"fingerprint\":\"" FP "\","
        "\"fired\":\"2025-12-05T16:00:00.000Z\",\"value\":0.5,\"release\":null,\"summary\":null}";
    static const char *const bad[] = {
        "",
        "null",
        "[1]",
        "{\"v\":1,\"event\":\"fired\"", /* torn */
        "{\"v\":2,\"event\":\"verdict\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\","
        "\"verdict\":\"x\"}",
        "{\"v\":1,\"event\":\"exploded\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\"}",
        /* a field of another event, and an unknown one */
        "{\"v\":1,\"event\":\"verdict\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\","
        "\"verdict\":\"x\",\"to\":\"r-1\"}",
        "{\"v\":1,\"event\":\"verdict\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\","
        "\"verdict\":\"x\",\"extra\":1}",
        /* a required one missing, or null */
        "{\"v\":1,\"event\":\"verdict\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\"}",
        "{\"v\":1,\"event\":\"verdict\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\","
        "\"verdict\":null}",
        /* twice */
        "{\"v\":1,\"event\":\"verdict\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\","
        "\"verdict\":\"x\",\"verdict\":\"y\"}",
        /* values out of their forms */
        "{\"v\":1,\"event\":\"verdict\",\"time\":\"yesterday\",\"env\":\"web\",\"verdict\":\"x\"}",
        "{\"v\":1,\"event\":\"verdict\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"../x\","
        "\"verdict\":\"x\"}",
        "{\"v\":1,\"event\":\"verdict\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\","
        "\"verdict\":\"two\\nlines\"}",
        "{\"v\":1,\"event\":\"verdict\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\","
        "\"verdict\":\"nul\\u0000inside\"}",
        "{\"v\":1,\"event\":\"verdict\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\","
        "\"verdict\":\"x\",\"release\":\"../../x\"}",
        "{\"v\":1,\"event\":\"notified\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\","
        "\"rule\":\"r\",\"fingerprint\":\"0123456789ABCDEF\",\"fired\":\"2025-12-05T16:00:00."
        "000Z\","
        "\"target\":\"t\"}",
        "{\"v\":1,\"event\":\"notified\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\","
        "\"rule\":\"r\",\"fingerprint\":\"" FP "\",\"fired\":\"2025-12-05T16:00:00.000Z\","
        "\"target\":\"\"}",
        "{\"v\":1,\"event\":\"rolled_back\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\","
        "\"rule\":\"r\",\"source\":\"me\",\"fired\":\"2025-12-05T16:00:00.000Z\",\"reason\":\"x\"}",
        "{\"v\":1,\"event\":\"fired\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\","
        "\"rule\":\"r\",\"severity\":\"page\",\"fingerprint\":\"" FP "\","
        "\"fired\":\"2025-12-05T16:00:00.000Z\"}",
        "{\"v\":1,\"event\":\"fired\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\","
        "\"rule\":\"r\",\"severity\":\"critical\",\"fingerprint\":\"" FP "\","
        "\"fired\":\"2025-12-05T16:00:00.000Z\",\"value\":\"0.5\"}",
        "{\"v\":1,\"event\":\"fired\",\"time\":\"2025-12-05T16:00:00.000Z\",\"env\":\"web\","
        "\"rule\":\"\",\"severity\":\"critical\",\"fingerprint\":\"" FP "\","
        "\"fired\":\"2025-12-05T16:00:00.000Z\"}",
    };
    struct monitor_journal_event e;
    struct sw_err err = {0};
    assert_int_equal(monitor_journal_parse_line(good, strlen(good), &e, &err), 0);
    assert_true(e.value == 0.5 && !e.release && !e.text);
    monitor_journal_event_clear(&e);
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        int rc = monitor_journal_parse_line(bad[i], strlen(bad[i]), &e, &err);
        if (rc != SW_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_null(e.rule);
        assert_null(e.text);
    }
    /* a line past the bound is refused before it is parsed */
    size_t n = MONITOR_JOURNAL_LINE_MAX + 10;
    char *huge = xcalloc(1, n + 1);
    memset(huge, ' ', n);
    memcpy(huge, good, strlen(good));
    assert_int_equal(monitor_journal_parse_line(huge, n, &e, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "bytes"));
    free(huge);
}

static struct buf warned = BUF_INIT;
static void warn(void *arg, const char *line)
{
    buf_addf(&warned, "%s\n", line);
}

static void test_parse_file(void **state)
{
    struct buf f = BUF_INIT;
    struct monitor_journal_event a = ev(MONITOR_JOURNAL_FIRED, "web", T0, T0);
    struct monitor_journal_event b = ev(MONITOR_JOURNAL_RESOLVED, "web", T0, T0 + 60000);
    encode_ok(&a, &f);
    buf_adds(&f, "{\"v\":1,\"event\":\"fired\",\x1b[2J}\n"); /* line 2: hostile */
    buf_adds(&f, "\n");                                      /* line 3: empty */
    encode_ok(&b, &f);
    buf_adds(&f, "{\"v\":1,\"event\":\"verd"); /* line 5: torn by a crash */
    struct monitor_journal_events out;
    buf_free(&warned);
    monitor_journal_parse(f.data, f.len, "inc.jsonl", &out, warn, NULL);
    assert_int_equal(out.n, 2);
    assert_int_equal(out.bad, 3);
    assert_int_equal(out.v[0].kind, MONITOR_JOURNAL_FIRED);
    assert_int_equal(out.v[1].kind, MONITOR_JOURNAL_RESOLVED);
    assert_non_null(strstr(warned.data, "inc.jsonl:2: "));
    assert_non_null(strstr(warned.data, "inc.jsonl:3: "));
    assert_non_null(strstr(warned.data, "inc.jsonl:5: "));
    assert_null(strstr(warned.data, "\x1b")); /* the warning is escaped */
    monitor_journal_events_clear(&out);
    /* a newline at the end is no line of its own; nothing at all is nothing */
    buf_free(&f);
    encode_ok(&a, &f);
    monitor_journal_parse(f.data, f.len, "x", &out, NULL, NULL);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.bad, 0);
    monitor_journal_events_clear(&out);
    monitor_journal_parse("", 0, "x", &out, NULL, NULL);
    assert_int_equal(out.n + out.bad, 0);
    buf_free(&f);
    buf_free(&warned);
}

/* Events as a file holds them: parsed from their lines, in order. */
static void events_of(const struct monitor_journal_event *v, size_t n,
                      struct monitor_journal_events *out)
{
    struct buf f = BUF_INIT;
    for (size_t i = 0; i < n; i++)
        encode_ok(&v[i], &f);
    monitor_journal_parse(f.data, f.len, "x", out, NULL, NULL);
    assert_int_equal(out->n, n);
    buf_free(&f);
}

static void test_group(void **state)
{
    const int64_t T1 = T0 + 3600000; /* a second incident of the same rule, an hour later */
    struct monitor_journal_event v[16];
    size_t n = 0;
    v[n++] = ev(MONITOR_JOURNAL_FIRED, "web", T0, T0);
    v[n++] = ev(MONITOR_JOURNAL_NOTIFIED, "web", T0, T0 + 100);
    v[n++] = ev(MONITOR_JOURNAL_LOST, "web", T0, T0 + 5000);
    v[n] = ev(MONITOR_JOURNAL_LOST, "web", T0, T0 + 5000);
    v[n++].target = (char *)"alertmanager http://127.0.0.1:9093";
    v[n++] = ev(MONITOR_JOURNAL_ROLLED_BACK, "web", T0, T0 + 800);
    /* another node found it done: a rollback made stays what the incident says */
    v[n++] = ev(MONITOR_JOURNAL_ROLLBACK_SKIPPED, "web", T0, T0 + 900);
    v[n++] = ev(MONITOR_JOURNAL_FIRED, "dev", T0 + 10, T0 + 10); /* another env */
    v[n++] = ev(MONITOR_JOURNAL_RESOLVED, "web", T0, T0 + 60000);
    v[n++] = ev(MONITOR_JOURNAL_FIRED, "web", T1, T1);
    v[n++] = ev(MONITOR_JOURNAL_VERDICT, "web", 0, T1 + 600000);
    /* Alertmanager's critical alert: no line of ours fired it */
    v[n] = ev(MONITOR_JOURNAL_ROLLBACK_SKIPPED, "web", T1 + 5000, T1 + 5001);
    v[n++].rule = (char *)"SlipwayHighErrorRate";
    struct monitor_journal_events e;
    struct monitor_incidents inc;
    events_of(v, n, &e);

    monitor_incidents_group(&e, NULL, 0, &inc);
    assert_int_equal(inc.n, 4);
    /* newest first: Alertmanager's, the second web one, dev, the first web one */
    assert_string_equal(inc.v[0].rule, "SlipwayHighErrorRate");
    assert_string_equal(inc.v[0].fingerprint, "");
    assert_null(inc.v[0].fired);
    assert_non_null(inc.v[0].rollback);
    assert_true(inc.v[1].fired_ms == T1 && inc.v[1].fired && !inc.v[1].resolved);
    assert_non_null(inc.v[1].verdict); /* of r-2, the release it fired on */
    assert_int_equal(inc.v[1].nnotes, 0);
    assert_string_equal(inc.v[2].env, "dev");
    const struct monitor_incident *x = &inc.v[3];
    assert_string_equal(x->env, "web");
    assert_string_equal(x->fingerprint, FP);
    assert_true(x->fired_ms == T0);
    assert_non_null(x->fired);
    assert_non_null(x->resolved);
    assert_true(x->resolved->at_ms == T0 + 60000);
    assert_int_equal(x->rollback->kind, MONITOR_JOURNAL_ROLLED_BACK);
    assert_string_equal(x->rollback->to, "r-1");
    assert_int_equal(x->nnotes, 3);
    assert_int_equal(x->notes[0]->kind, MONITOR_JOURNAL_NOTIFIED);
    assert_int_equal(x->notes[2]->kind, MONITOR_JOURNAL_LOST);
    assert_null(x->verdict);
    assert_true(x->last_ms == T0 + 60000);
    free(inc.v);

    /* one env; and since: only incidents with an event after it */
    monitor_incidents_group(&e, "dev", 0, &inc);
    assert_int_equal(inc.n, 1);
    assert_string_equal(inc.v[0].env, "dev");
    free(inc.v);
    monitor_incidents_group(&e, "web", T0 + 60000, &inc);
    assert_int_equal(inc.n, 3);
    free(inc.v);
    monitor_incidents_group(&e, "web", T1 + 1, &inc);
    assert_int_equal(inc.n, 2);
    free(inc.v);
    monitor_incidents_group(&e, "none", 0, &inc);
    assert_int_equal(inc.n, 0);
    free(inc.v);
    monitor_journal_events_clear(&e);

    /* an incident whose fired line went with the older half: from its others */
    n = 0;
    v[n++] = ev(MONITOR_JOURNAL_NOTIFIED, "web", T0, T0 + 100);
    v[n++] = ev(MONITOR_JOURNAL_ROLLED_BACK, "web", T0, T0 + 800);
    v[n++] = ev(MONITOR_JOURNAL_RESOLVED, "web", T0, T0 + 60000);
    events_of(v, n, &e);
    monitor_incidents_group(&e, NULL, 0, &inc);
    assert_int_equal(inc.n, 1);
    assert_null(inc.v[0].fired);
    assert_true(inc.v[0].nnotes == 1 && inc.v[0].rollback && inc.v[0].resolved);
    free(inc.v);
    monitor_journal_events_clear(&e);

    /* deliveries past the bound are counted */
    struct monitor_journal_event many[MONITOR_INCIDENT_NOTES_MAX + 5];
    for (size_t i = 0; i < sizeof(many) / sizeof(*many); i++)
        many[i] = ev(MONITOR_JOURNAL_NOTIFIED, "web", T0, T0 + (int64_t)i);
    events_of(many, sizeof(many) / sizeof(*many), &e);
    monitor_incidents_group(&e, NULL, 0, &inc);
    assert_int_equal(inc.n, 1);
    assert_int_equal(inc.v[0].nnotes, MONITOR_INCIDENT_NOTES_MAX);
    assert_int_equal(inc.v[0].notes_omitted, 5);
    free(inc.v);
    monitor_journal_events_clear(&e);
}

struct appender {
    struct monitor_journal *j;
    int id, n;
};

static void *append_main(void *arg)
{
    struct appender *a = arg;
    for (int i = 0; i < a->n; i++) {
        struct monitor_journal_event e = ev(MONITOR_JOURNAL_LOST, "web", T0, T0 + i + 1);
        char why[64];
        snprintf(why, sizeof(why), "writer %d line %d", a->id, i);
        e.text = why;
        struct sw_err err = {0};
        if (monitor_journal_append(a->j, &e, &err) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_writer(void **state)
{
    char *path = path_join(tmpdir, "a/b/incidents.jsonl"); /* its directories are made */
    struct monitor_journal *j = NULL;
    struct sw_err err = {0};
    assert_int_equal(monitor_journal_open(path, 0, &j, &err), 0);
    pthread_t th[4];
    struct appender ap[4];
    for (int i = 0; i < 4; i++) {
        ap[i] = (struct appender){j, i, 250};
        assert_int_equal(pthread_create(&th[i], NULL, append_main, &ap[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    monitor_journal_close(j);
    struct monitor_journal_events e;
    assert_int_equal(monitor_journal_load(path, &e, NULL, NULL, &err), 0);
    assert_int_equal(e.n, 1000); /* every line whole */
    assert_int_equal(e.bad, 0);
    monitor_journal_events_clear(&e);

    /* bounded: past max the newest half is kept, from a line's start */
    const size_t max = 16384;
    assert_int_equal(monitor_journal_open(path, max, &j, &err), 0);
    struct appender one = {j, 9, 400};
    assert_null(append_main(&one));
    monitor_journal_close(j);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true((size_t)st.st_size <= max);
    assert_int_equal(monitor_journal_load(path, &e, NULL, NULL, &err), 0);
    assert_int_equal(e.bad, 0);
    assert_true(e.n > 10);
    assert_string_equal(e.v[e.n - 1].text, "writer 9 line 399"); /* the newest kept */
    for (size_t i = 1; i < e.n; i++) /* in order, nothing of the other writers left */
        assert_true(e.v[i].at_ms == e.v[i - 1].at_ms + 1);
    monitor_journal_events_clear(&e);

    /* none: SW_ENOTFOUND; not a regular file, or too large: refused */
    char *none = path_join(tmpdir, "none.jsonl");
    assert_int_equal(monitor_journal_load(none, &e, NULL, NULL, &err), SW_ENOTFOUND);
    assert_int_equal(monitor_journal_load(tmpdir, &e, NULL, NULL, &err), SW_EINVAL);
    assert_int_equal(truncate(path, MONITOR_JOURNAL_READ_MAX + 1), 0);
    assert_int_equal(monitor_journal_load(path, &e, NULL, NULL, &err), SW_EINVAL);
    free(none);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_encode_cleans),
        cmocka_unit_test(test_parse_refuses), cmocka_unit_test(test_parse_file),
        cmocka_unit_test(test_group),         cmocka_unit_test(test_writer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
