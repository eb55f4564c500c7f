/* Unit tests for the monitor's status document (src/monitor/status.c) and
 * the sampler that writes it: a round trip keeps every field (NaN as null)
 * and encodes to the same bytes; values out of range, a long summary and a
 * release that is not one are written so that they are read back; hostile
 * documents (each one change away from a good one) are refused with the
 * document's name; whether the writer still runs (age, pid); and a sampler
 * driven by hand writes the file every interval, with each slot's window and
 * per-interval counts and each rule's state, removing a dead serve's
 * temporary file first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "monitor/monitor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[64];

static char *tmp_path(const char *name)
{
    return path_join(tmpdir, name);
}

static void write_file(const char *path, const char *data, size_t len)
{
    struct sw_err err = {0};
    assert_int_equal(fs_write_atomic(path, data, len, &err), 0);
}

/* A status of two environments: web (blue-green, green live, a firing rule
 * and an inactive one never evaluated) and dev (direct, no requests). */
static void sample_status(struct monitor_status *s)
{
    memset(s, 0, sizeof(*s));
    s->written_ms = 1700000000123LL;
    s->interval_ms = 1000;
    s->window_ms = 60000;
    s->pid = 4242;
    snprintf(s->host, sizeof(s->host), "node-1");
    s->proc_cpu = 0.25;
    s->proc_rss = 52428800;
    s->host_cpu = 0.5;
    s->host_mem = NAN;
    s->nenvs = 2;
    s->envs = xcalloc(2, sizeof(*s->envs));
    struct monitor_status_env *w = &s->envs[0], *d = &s->envs[1];
    snprintf(w->name, sizeof(w->name), "web");
    w->nslots = 2;
    struct monitor_status_slot *b = &w->slots[0], *g = &w->slots[1];
    b->slot = EDGE_SLOT_BLUE;
    snprintf(b->release, sizeof(b->release), "r-blue");
    b->req_per_s = 0;
    b->error_ratio = b->p50_s = b->p95_s = b->p99_s = NAN;
    g->slot = EDGE_SLOT_GREEN;
    g->live = 1;
    snprintf(g->release, sizeof(g->release), "r-green.2");
    g->requests = 600;
    g->errors = 60;
    g->req_per_s = 10;
    g->error_ratio = 0.1;
    g->p50_s = 0.0005;
    g->p95_s = 0.002;
    g->p99_s = 0.25;
    g->nrecent = MONITOR_STATUS_RECENT;
    for (size_t i = 0; i < g->nrecent; i++) {
        g->recent_requests[i] = 10;
        g->recent_errors[i] = i % 6 ? 0 : 6;
    }
    w->nalerts = 2;
    w->alerts = xcalloc(2, sizeof(*w->alerts));
    struct monitor_status_alert *a = &w->alerts[0], *q = &w->alerts[1];
    snprintf(a->rule, sizeof(a->rule), "high-error-rate");
    a->severity = MONITOR_CRITICAL;
    a->signal = MONITOR_SIGNAL_ERROR_RATIO;
    a->op = MONITOR_OP_GT;
    a->threshold = 0.05;
    a->for_ms = 60000;
    a->min_requests = 100;
    a->state = MONITOR_FIRING;
    a->verdict = MONITOR_VERDICT_BREACH;
    a->value = 0.1;
    a->last = 0.1;
    a->requests = 600;
    a->active_ms = 1700000000000LL - 61000;
    a->fired_ms = 1700000000000LL - 1000;
    a->eval_ms = 1700000000000LL;
    snprintf(a->release, sizeof(a->release), "r-green.2");
    a->summary = xstrdup("error rate 0.1 on web (r-green.2) \xc3\xa9t\xc3\xa9");
    snprintf(q->rule, sizeof(q->rule), "slow-responses");
    q->severity = MONITOR_WARNING;
    q->signal = MONITOR_SIGNAL_LATENCY_P95;
    q->op = MONITOR_OP_GE;
    q->threshold = 1;
    q->min_requests = 100;
    q->value = q->last = NAN;
    snprintf(d->name, sizeof(d->name), "dev");
    d->nslots = 1;
    d->slots[0].slot = EDGE_SLOT_DIRECT;
    d->slots[0].live = 1;
    d->slots[0].req_per_s = d->slots[0].error_ratio = NAN;
    d->slots[0].p50_s = d->slots[0].p95_s = d->slots[0].p99_s = NAN;
}

/* NaN equals NaN here. */
static void same_real(double a, double b)
{
    if (isnan(a) || isnan(b))
        assert_true(isnan(a) && isnan(b));
    else
        assert_true(a == b);
}

static void test_round_trip(void **state)
{
    struct monitor_status s, back;
    struct sw_err err = {0};
    struct buf b1 = BUF_INIT, b2 = BUF_INIT;
    sample_status(&s);
    monitor_status_encode(&s, &b1);
    assert_int_equal(b1.data[b1.len - 1], '\n');
    assert_null(memchr(b1.data, '\n', b1.len - 1)); /* one line */
    assert_int_equal(monitor_status_parse(b1.data, b1.len, "st.json", &back, &err), 0);
    assert_int_equal(back.written_ms, s.written_ms);
    assert_int_equal(back.interval_ms, 1000);
    assert_int_equal(back.window_ms, 60000);
    assert_int_equal(back.pid, 4242);
    assert_string_equal(back.host, "node-1");
    same_real(back.proc_cpu, 0.25);
    same_real(back.proc_rss, 52428800);
    same_real(back.host_cpu, 0.5);
    same_real(back.host_mem, NAN);
    assert_int_equal(back.nenvs, 2);
    for (size_t i = 0; i < 2; i++) {
        const struct monitor_status_env *e = &s.envs[i], *f = &back.envs[i];
        assert_string_equal(f->name, e->name);
        assert_int_equal(f->nslots, e->nslots);
        for (size_t k = 0; k < e->nslots; k++) {
            const struct monitor_status_slot *x = &e->slots[k], *y = &f->slots[k];
            assert_int_equal(y->slot, x->slot);
            assert_int_equal(y->live, x->live);
            assert_string_equal(y->release, x->release);
            assert_int_equal(y->requests, x->requests);
            assert_int_equal(y->errors, x->errors);
            same_real(y->req_per_s, x->req_per_s);
            same_real(y->error_ratio, x->error_ratio);
            same_real(y->p50_s, x->p50_s);
            same_real(y->p95_s, x->p95_s);
            same_real(y->p99_s, x->p99_s);
            assert_int_equal(y->nrecent, x->nrecent);
            assert_memory_equal(y->recent_requests, x->recent_requests,
                                x->nrecent * sizeof(uint64_t));
            assert_memory_equal(y->recent_errors, x->recent_errors, x->nrecent * sizeof(uint64_t));
        }
        assert_int_equal(f->nalerts, e->nalerts);
        for (size_t k = 0; k < e->nalerts; k++) {
            const struct monitor_status_alert *a = &e->alerts[k], *c = &f->alerts[k];
            assert_string_equal(c->rule, a->rule);
            assert_int_equal(c->severity, a->severity);
            assert_int_equal(c->signal, a->signal);
            assert_int_equal(c->op, a->op);
            same_real(c->threshold, a->threshold);
            assert_int_equal(c->for_ms, a->for_ms);
            assert_int_equal(c->min_requests, a->min_requests);
            assert_int_equal(c->state, a->state);
            assert_int_equal(c->verdict, a->verdict);
            same_real(c->value, a->value);
            same_real(c->last, a->last);
            assert_int_equal(c->requests, a->requests);
            assert_int_equal(c->active_ms, a->active_ms);
            assert_int_equal(c->fired_ms, a->fired_ms);
            assert_int_equal(c->resolved_ms, a->resolved_ms);
            assert_int_equal(c->eval_ms, a->eval_ms);
            assert_string_equal(c->release, a->release);
            if (a->summary)
                assert_string_equal(c->summary, a->summary);
            else
                assert_null(c->summary);
        }
    }
    monitor_status_encode(&back, &b2);
    assert_int_equal(b1.len, b2.len);
    assert_memory_equal(b1.data, b2.data, b1.len);
    monitor_status_clear(&back);
    monitor_status_clear(&s);
    buf_free(&b1);
    buf_free(&b2);
}

/* What the writer is handed out of range is written so that it is read back. */
static void test_encode_clamps(void **state)
{
    struct monitor_status s, back;
    struct sw_err err = {0};
    struct buf b = BUF_INIT;
    sample_status(&s);
    struct monitor_status_slot *g = &s.envs[0].slots[1];
    struct monitor_status_alert *a = &s.envs[0].alerts[0];
    g->error_ratio = 1.5;
    g->errors = 700; /* more than requests */
    g->p99_s = 1e9;
    g->recent_errors[3] = 99; /* more than that interval's requests */
    snprintf(g->release, sizeof(g->release), "../etc");
    free(a->summary);
    /* 2000 bytes of two-byte characters and a control character: escaped, cut
     * at a character boundary within MONITOR_STATUS_SUMMARY_MAX */
    struct buf sum = BUF_INIT;
    buf_adds(&sum, "\x1b");
    for (int i = 0; i < 1000; i++)
        buf_adds(&sum, "\xc3\xa9");
    a->summary = xstrdup(sum.data);
    s.host_mem = 7;
    s.proc_cpu = INFINITY;
    s.host[0] = '\0';
    s.interval_ms = 0;
    monitor_status_encode(&s, &b);
    assert_int_equal(monitor_status_parse(b.data, b.len, "st.json", &back, &err), 0);
    const struct monitor_status_slot *y = &back.envs[0].slots[1];
    same_real(y->error_ratio, 1);
    assert_int_equal(y->errors, y->requests);
    assert_true(y->p99_s <= (double)HIST_LIMIT / 1e6);
    assert_int_equal(y->recent_errors[3], y->recent_requests[3]);
    assert_string_equal(y->release, "");
    const char *cut = back.envs[0].alerts[0].summary;
    assert_true(strlen(cut) <= MONITOR_STATUS_SUMMARY_MAX && strlen(cut) > 900);
    assert_true(str_starts_with(cut, "\\x1b\xc3\xa9"));
    assert_true(utf8_valid(cut, 1));
    same_real(back.host_mem, 1);
    same_real(back.proc_cpu, NAN);
    assert_string_equal(back.host, "localhost");
    assert_int_equal(back.interval_ms, 1);
    monitor_status_clear(&back);
    monitor_status_clear(&s);
    buf_free(&sum);
    buf_free(&b);
}

/* The good document with the first from replaced by to: refused, naming the
 * document, and what is wrong contains why. */
static void refused(const char *good, const char *from, const char *to, const char *why)
{
    struct buf b = BUF_INIT;
    const char *at = strstr(good, from);
    struct monitor_status st;
    struct sw_err err = {0};
    if (!at)
        fail_msg("'%s' not in the document", from);
    buf_add(&b, good, (size_t)(at - good));
    buf_adds(&b, to);
    buf_adds(&b, at + strlen(from));
    int rc = monitor_status_parse(b.data, b.len, "st.json", &st, &err);
    if (rc != SW_EINVAL || !str_starts_with(err.msg, "st.json: ") || !strstr(err.msg, why))
        fail_msg("%s -> %s: rc %d, '%s' (wanted '%s')", from, to, rc, err.msg, why);
    assert_int_equal(st.nenvs, 0);
    assert_null(st.envs);
    buf_free(&b);
}

static void test_parse_refuses(void **state)
{
    struct monitor_status s;
    struct buf b = BUF_INIT;
    sample_status(&s);
    monitor_status_encode(&s, &b);
    const char *g = b.data;
    refused(g, "\"version\":1", "\"version\":2", "version 2, not 1");
    refused(g, "\"version\":1,", "", "version: missing");
    refused(g, "\"interval_ms\":1000", "\"interval_ms\":0", "interval_ms: out of range");
    refused(g, "\"pid\":4242", "\"pid\":-1", "pid: out of range");
    refused(g, "\"pid\":4242", "\"pid\":4242.5", "pid: not an integer");
    refused(g, "\"host\":\"node-1\"", "\"host\":\"a\\nb\"", "host: not printable");
    refused(g, "\"written\":\"", "\"written\":\"x", "written: not a time");
    refused(g, "\"name\":\"web\"", "\"name\":\"../web\"", "name: not an environment name");
    refused(g, "\"name\":\"web\"", "\"name\":\"w\\u0000b\"", "\\u0000 is not allowed");
    refused(g, "\"name\":\"web\"", "\"name\":\"dev\"", "name: an environment twice");
    refused(g, "\"slot\":\"blue\"", "\"slot\":\"green\"", "slot: a slot twice");
    refused(g, "\"slot\":\"blue\"", "\"slot\":\"purple\"", "slot: not one of the words");
    refused(g, "\"errors\":60", "\"errors\":601", "errors: more than requests");
    refused(g, "\"requests\":600", "\"requests\":-1", "requests: out of range");
    refused(g, "\"error_ratio\":", "\"error_ratio\":1.5,\"z\":", "error_ratio: out of range");
    refused(g, "\"error_ratio\":", "\"error_ratio\":\"0.1\",\"z\":", "error_ratio: not a number");
    refused(g, "\"p50_s\":", "\"p50_s\":0.003,\"z\":", "p50_s: percentiles not all given, or not");
    refused(g, "\"p50_s\":0.", "\"z\":0.", "percentiles not all given");
    refused(g, "\"release\":\"r-blue\"", "\"release\":\"r/blue\"", "release: not a release id");
    refused(g, "\"recent_requests\":[10,", "\"recent_requests\":[10,10,",
            "recent_requests: too many entries");
    refused(g, "\"recent_errors\":[6,", "\"recent_errors\":[",
            "recent_errors: not as long as recent_requests");
    refused(g, "\"recent_errors\":[6,", "\"recent_errors\":[11,", "more errors than requests");
    refused(g, "\"recent_errors\":[6,", "\"recent_errors\":[-1,", "more errors than requests");
    refused(g, "\"recent_requests\":[10,", "\"recent_requests\":[\"10\",", "not whole numbers");
    refused(g, "\"slots\":[", "\"slots\":{\"a\":1},\"x\":[", "slots: not a list");
    refused(g, "\"rule\":\"high-error-rate\"", "\"rule\":\"High\"", "rule: not a rule name");
    refused(g, "\"rule\":\"slow-responses\"", "\"rule\":\"high-error-rate\"", "rule: a rule twice");
    refused(g, "\"state\":\"firing\"", "\"state\":\"burning\"", "state: not one of the words");
    refused(g, "\"fired\":\"", "\"fired\":null,\"x\":\"", "state: pending or firing without");
    refused(g, "\"verdict\":\"breach\"", "\"verdict\":\"fine\"", "verdict: not one of the words");
    refused(g, "\"signal\":\"error_ratio\"", "\"signal\":\"deployment\"", "signal: not one of");
    refused(g, "\"threshold\":", "\"threshold\":-1,\"z\":", "threshold: out of range");
    refused(g, "\"for_ms\":60000", "\"for_ms\":1e3", "for_ms: not an integer");
    refused(g, "\"summary\":\"error", "\"summary\":\"\\u001b[2Jerror", "summary: not printable");
    refused(g, "\"cpu\":", "\"cpu\":1e400,\"z\":", "at line 1");
    refused(g, "\"environments\":[", "\"environments\":[1,", "environments: not objects");
    refused(g, "{\"version\"", "[1], {\"version\"", "end of file expected");
    refused(g, "\"pid\":4242", "\"pid\":4242,\"pid\":1", "duplicate");

    /* more environments than a status holds */
    struct buf many = BUF_INIT;
    buf_adds(&many, "{\"version\":1,\"written\":\"2026-01-01T00:00:00Z\",\"interval_ms\":1000,"
                    "\"window_ms\":60000,\"pid\":1,\"host\":\"h\",\"environments\":[");
    for (int i = 0; i <= MONITOR_STATUS_ENVS_MAX; i++)
        buf_addf(&many, "%s{\"name\":\"e%d\",\"slots\":[],\"alerts\":[]}", i ? "," : "", i);
    buf_adds(&many, "]}");
    struct monitor_status st;
    struct sw_err err = {0};
    assert_int_equal(monitor_status_parse(many.data, many.len, "st.json", &st, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "environments: too many entries"));
    /* ... and exactly as many is fine */
    char *last = strstr(many.data, ",{\"name\":\"e64\"");
    assert_non_null(last);
    snprintf(last, 3, "]}");
    assert_int_equal(monitor_status_parse(many.data, strlen(many.data), "st.json", &st, &err), 0);
    assert_int_equal(st.nenvs, MONITOR_STATUS_ENVS_MAX);
    monitor_status_clear(&st);
    /* larger than a status may be, before anything is parsed */
    assert_int_equal(monitor_status_parse(g, MONITOR_STATUS_FILE_MAX + 1, "st.json", &st, &err),
                     SW_EINVAL);
    assert_non_null(strstr(err.msg, "more than a status can hold"));
    /* not JSON; JSON but not an object */
    assert_int_equal(monitor_status_parse("[1]", 3, "st.json", &st, &err), SW_EINVAL);
    assert_string_equal(err.msg, "st.json: not a JSON object");
    assert_int_equal(monitor_status_parse("{\"vers", 6, "st.json", &st, &err), SW_EINVAL);
    assert_true(str_starts_with(err.msg, "st.json: "));
    buf_free(&many);
    monitor_status_clear(&s);
    buf_free(&b);
}

static void test_live(void **state)
{
    struct monitor_status s = {0};
    s.written_ms = 1000000;
    s.interval_ms = 1000;
    s.pid = getpid();
    snprintf(s.host, sizeof(s.host), "%s", sys_host());
    assert_true(monitor_status_live(&s, 1000000 + 4000));
    assert_false(monitor_status_live(&s, 1000000 + 5001)); /* 5 intervals */
    s.interval_ms = 10;
    assert_true(monitor_status_live(&s, 1000000 + MONITOR_STATUS_STALE_MIN_MS));
    assert_false(monitor_status_live(&s, 1000000 + MONITOR_STATUS_STALE_MIN_MS + 1));
    /* a process that has exited: gone at once */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(0);
    assert_int_equal(waitpid(child, NULL, 0), child);
    s.pid = child;
    assert_false(monitor_status_live(&s, 1000000));
    /* on another host the pid cannot be asked: the age says */
    snprintf(s.host, sizeof(s.host), "elsewhere-%s", sys_host());
    assert_true(monitor_status_live(&s, 1000000));
}

/* ---- a sampler driven by hand writes it ------------------------------------------------- */

struct fake {
    struct edge_slot_stats st[EDGE_SLOTS];
};

static int fake_stats(void *arg, const char *env, int slot, struct edge_slot_stats *out,
                      struct sw_err *err)
{
    struct fake *f = arg;
    if (strcmp(env, "dev") != 0 || slot != EDGE_SLOT_DIRECT)
        return SW_ENOTFOUND;
    memcpy(out, &f->st[slot], sizeof(*out));
    return 0;
}

static void test_sampler_writes(void **state)
{
    struct fake *f = calloc(1, sizeof(*f));
    struct sw_err err = {0};
    char *envs = tmp_path("envs"), *alerts = tmp_path("alerts.yml");
    char *status = tmp_path("cache/monitor/status.json");
    assert_int_equal(mkdir(envs, 0700), 0);
    char *dev = path_join(envs, "dev.yml");
    write_file(dev, "strategy: direct\nlisten: 127.0.0.1:3\n", 37);
    const char *rules = "rules:\n"
                        "  - name: errors\n"
                        "    signal: error_ratio\n"
                        "    op: \">\"\n"
                        "    threshold: 0.05\n"
                        "    min_requests: 10\n"
                        "    severity: critical\n"
                        "  - name: deployed\n"
                        "    signal: deployment\n"
                        "    severity: info\n";
    write_file(alerts, rules, strlen(rules));
    snprintf(f->st[EDGE_SLOT_DIRECT].release, sizeof(f->st[0].release), "r-1");

    /* a dead serve's temporary file, and one of a live process: only the first goes */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(0);
    assert_int_equal(waitpid(child, NULL, 0), child);
    char *cache = tmp_path("cache/monitor");
    assert_int_equal(fs_mkdir_p(cache, &err), 0);
    char *dead = xasprintf("%s.tmp-%d", status, (int)child);
    char *alive = xasprintf("%s.tmp-%d", status, (int)getppid());
    write_file(dead, "half", 4);
    write_file(alive, "half", 4);

    struct monitor_sampler_opts o;
    struct monitor_sampler *s = NULL;
    monitor_sampler_opts_init(&o);
    o.slot_stats = fake_stats;
    o.stats_arg = f;
    o.envs_dir = envs;
    o.alerts_file = alerts;
    o.status_file = status;
    o.manual = 1;
    o.interval_ms = 1000;
    assert_int_equal(monitor_sampler_start(&o, &s, &err), 0);
    struct stat st;
    assert_int_equal(stat(status, &st), -1); /* manual: nothing before the first tick */

    /* 5 intervals of 2 good requests, then one of 8 with 4 errors */
    int64_t mono = 5000, wall = 1700000000000LL;
    for (int t = 0; t < 7; t++, mono += 1000, wall += 1000) {
        struct edge_slot_stats *x = &f->st[EDGE_SLOT_DIRECT];
        if (t && t < 6) {
            x->requests[1] += 2;
            hist_record(&x->duration_us, 1000);
            hist_record(&x->duration_us, 1000);
        } else if (t == 6) {
            x->requests[1] += 4;
            x->requests[4] += 4;
            for (int i = 0; i < 8; i++)
                hist_record(&x->duration_us, 2000);
        }
        monitor_sampler_tick(s, mono, wall);
    }
    assert_int_equal(stat(dead, &st), -1);
    assert_int_equal(stat(alive, &st), 0);
    struct monitor_status got;
    assert_int_equal(monitor_status_load(status, &got, &err), 0);
    assert_int_equal(got.written_ms, wall - 1000);
    assert_int_equal(got.interval_ms, 1000);
    assert_int_equal(got.window_ms, 60000);
    assert_int_equal(got.pid, getpid());
    assert_true(monitor_status_live(&got, wall - 1000));
    assert_int_equal(got.nenvs, 1);
    const struct monitor_status_env *e = &got.envs[0];
    assert_string_equal(e->name, "dev");
    assert_int_equal(e->nslots, 1);
    const struct monitor_status_slot *x = &e->slots[0];
    assert_int_equal(x->slot, EDGE_SLOT_DIRECT);
    assert_true(x->live);
    assert_string_equal(x->release, "r-1");
    assert_int_equal(x->requests, 18);
    assert_int_equal(x->errors, 4);
    assert_true(fabs(x->req_per_s - 3) < 1e-9); /* 18 in 6 s */
    assert_true(fabs(x->error_ratio - 4.0 / 18) < 1e-9);
    assert_true(x->p50_s > 0.0009 && x->p99_s < 0.0021 && x->p50_s <= x->p99_s);
    /* per interval, oldest first: from the zero base to the first reading
     * (nothing yet), then each of the six that followed */
    assert_int_equal(x->nrecent, 7);
    uint64_t want_req[] = {0, 2, 2, 2, 2, 2, 8}, want_err[] = {0, 0, 0, 0, 0, 0, 4};
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(x->recent_requests[i], want_req[i]);
        assert_int_equal(x->recent_errors[i], want_err[i]);
    }
    /* the measured rule only, firing (for 0) at the last interval */
    assert_int_equal(e->nalerts, 1);
    const struct monitor_status_alert *a = &e->alerts[0];
    assert_string_equal(a->rule, "errors");
    assert_int_equal(a->state, MONITOR_FIRING);
    assert_int_equal(a->verdict, MONITOR_VERDICT_BREACH);
    assert_int_equal(a->requests, 18);
    assert_int_equal(a->min_requests, 10);
    assert_int_equal(a->fired_ms, wall - 1000);
    assert_string_equal(a->release, "r-1");
    assert_non_null(a->summary);
    monitor_status_clear(&got);
    monitor_sampler_stop(s);

    /* an unwritable place: said once on the log, the sampler goes on */
    unlink(alive);
    free(alive);
    monitor_sampler_opts_init(&o);
    o.slot_stats = fake_stats;
    o.stats_arg = f;
    o.envs_dir = envs;
    o.status_file = "/proc/nonexistent/status.json";
    o.manual = 1;
    assert_int_equal(monitor_sampler_start(&o, &s, &err), 0);
    monitor_sampler_tick(s, mono, wall);
    monitor_sampler_tick(s, mono + 1000, wall + 1000);
    monitor_sampler_stop(s);

    unlink(status);
    unlink(dev);
    unlink(alerts);
    rmdir(envs);
    free(dead);
    free(cache);
    free(dev);
    free(envs);
    free(alerts);
    free(status);
    free(f);
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/sw-status-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    return fs_remove_tree(tmpdir, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_encode_clamps),
        cmocka_unit_test(test_parse_refuses),  cmocka_unit_test(test_live),
        cmocka_unit_test(test_sampler_writes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
