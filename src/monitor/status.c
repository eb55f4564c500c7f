/*
 * The status document: what the monitor of `slipway serve` saw at its last
 * interval, written for `slipway alerts` and `slipway top`, which run in
 * other processes and cannot see the sampler's memory.
 *
 * The one idea: the writer and the reader agree on a closed shape. The writer
 * clamps every value into the range the reader accepts (a summary is cut, a
 * release id that is not one is left out), so whatever serve writes is read
 * back; the reader accepts nothing else, because anyone who can write the
 * project's cache could put a file there: every count and size is bounded
 * before anything is allocated for it, every name checked (env_name_check,
 * the rules' own alphabet, release_id_valid), every number checked for its
 * type and range, and a duplicate environment, slot or rule refuses the file.
 */
#include "monitor/monitor.h"
#include "deploy/deploy.h"
#include "release/release.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RATE_MAX 1e12       /* requests per second */
#define COUNT_MAX INT64_MAX /* what a JSON integer holds here */
#define VALUE_MAX 1e300     /* a rule's value or threshold: finite */
#define PROC_CPU_MAX 4096.0
#define RSS_MAX 1.8e19
#define INTERVAL_MAX (MONITOR_HISTORY_STEP_MAX_MS / MONITOR_HISTORY_TICKS)

static const char *const state_names[] = {
    [MONITOR_INACTIVE] = "inactive", [MONITOR_PENDING] = "pending", [MONITOR_FIRING] = "firing"};
static const char *const verdict_names[] = {
    [MONITOR_VERDICT_NONE] = "none",       [MONITOR_VERDICT_OK] = "ok",
    [MONITOR_VERDICT_BREACH] = "breach",   [MONITOR_VERDICT_LOW_TRAFFIC] = "not_enough_traffic",
    [MONITOR_VERDICT_NO_DATA] = "no_data",
};

const char *monitor_state_name(enum monitor_state s)
{
    return (unsigned)s < 3 ? state_names[s] : "?";
}

const char *monitor_verdict_name(enum monitor_verdict v)
{
    return (unsigned)v < 5 ? verdict_names[v] : "?";
}

void monitor_status_clear(struct monitor_status *s)
{
    for (size_t i = 0; i < s->nenvs; i++) {
        for (size_t k = 0; k < s->envs[i].nalerts; k++)
            free(s->envs[i].alerts[k].summary);
        free(s->envs[i].alerts);
    }
    free(s->envs);
    memset(s, 0, sizeof(*s));
}

/* ---- writing ----------------------------------------------------------------------- */

/* x within lo..hi, or null for NaN (and for what is not finite). */
static json_t *real(double x, double lo, double hi)
{
    if (!isfinite(x))
        return json_null();
    return json_real(x < lo ? lo : x > hi ? hi : x);
}

static json_t *count(uint64_t v)
{
    return json_integer((json_int_t)(v > (uint64_t)COUNT_MAX ? (uint64_t)COUNT_MAX : v));
}

static json_t *release_json(const char *r)
{
    return r[0] && release_id_valid(r) ? json_string(r) : json_null();
}

/* s as one printable line (escaped when it is not one already), cut to at
 * most max bytes at a character boundary; NULL: null. */
static json_t *text_cut(const char *s, size_t max)
{
    if (!s)
        return json_null();
    struct buf b = BUF_INIT;
    if (text_valid(s, SIZE_MAX, 0))
        buf_adds(&b, s);
    else
        buf_add_escaped(&b, s);
    size_t n = b.len;
    /* s[n] is the first byte left out: it must begin a character */
    while (n > max || (n && n < b.len && ((unsigned char)b.data[n] & 0xc0) == 0x80))
        n--;
    json_t *j = json_stringn(b.data ? b.data : "", n);
    buf_free(&b);
    return j;
}

static json_t *slot_json(const struct monitor_status_slot *x)
{
    json_t *req = json_array(), *err = json_array();
    size_t n = x->nrecent < MONITOR_STATUS_RECENT ? x->nrecent : MONITOR_STATUS_RECENT;
    for (size_t i = 0; i < n; i++) {
        uint64_t e = x->recent_errors[i] < x->recent_requests[i] ? x->recent_errors[i]
                                                                 : x->recent_requests[i];
        json_array_append_new(req, count(x->recent_requests[i]));
        json_array_append_new(err, count(e));
    }
    double hl = (double)HIST_LIMIT / 1e6;
    double p50 = x->p50_s, p95 = x->p95_s < p50 ? p50 : x->p95_s,
           p99 = x->p99_s < p95 ? p95 : x->p99_s;
    return json_pack("{s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "slot",
                     edge_slot_name(x->slot) ? edge_slot_name(x->slot) : "direct", "live",
                     x->live != 0, "release", release_json(x->release), "requests",
                     count(x->requests), "errors",
                     count(x->errors < x->requests ? x->errors : x->requests), "req_per_s",
                     real(x->req_per_s, 0, RATE_MAX), "error_ratio", real(x->error_ratio, 0, 1),
                     "p50_s", real(p50, 0, hl), "p95_s", real(p95, 0, hl), "p99_s",
                     real(p99, 0, hl), "recent_requests", req, "recent_errors", err);
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static json_t *alert_json(const struct monitor_status_alert *a)
{
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
        "s:o}",
        "rule", a->rule, "severity", monitor_severity_name(a->severity), "signal",
        monitor_signal_name(a->signal), "op", monitor_op_name(a->op), "threshold",
        real(a->threshold, 0, VALUE_MAX), "for_ms",
        (json_int_t)clamp64(a->for_ms, 0, MONITOR_DURATION_MAX_MS), "min_requests",
        (json_int_t)clamp64(a->min_requests, 0, 1000000000), "state", monitor_state_name(a->state),
        "verdict", monitor_verdict_name(a->verdict), "value", real(a->value, -VALUE_MAX, VALUE_MAX),
        "last", real(a->last, -VALUE_MAX, VALUE_MAX), "requests", count(a->requests), "active",
        json_time_or_null(clamp64(a->active_ms, 0, JSON_TIME_MAX_MS)), "fired",
        json_time_or_null(clamp64(a->fired_ms, 0, JSON_TIME_MAX_MS)), "resolved",
        json_time_or_null(clamp64(a->resolved_ms, 0, JSON_TIME_MAX_MS)), "evaluated",
        json_time_or_null(clamp64(a->eval_ms, 0, JSON_TIME_MAX_MS)), "release",
        release_json(a->release), "summary", text_cut(a->summary, MONITOR_STATUS_SUMMARY_MAX));
}

void monitor_status_encode(const struct monitor_status *s, struct buf *out)
{
    json_t *envs = json_array();
    size_t ne = s->nenvs < MONITOR_STATUS_ENVS_MAX ? s->nenvs : MONITOR_STATUS_ENVS_MAX;
    for (size_t i = 0; i < ne; i++) {
        const struct monitor_status_env *e = &s->envs[i];
        json_t *slots = json_array(), *alerts = json_array();
        for (size_t k = 0; k < e->nslots && k < EDGE_SLOTS; k++)
            json_array_append_new(slots, slot_json(&e->slots[k]));
        for (size_t k = 0; k < e->nalerts && k < MONITOR_RULES_MAX; k++)
            json_array_append_new(alerts, alert_json(&e->alerts[k]));
        json_array_append_new(
            envs, json_pack("{s:s, s:o, s:o}", "name", e->name, "slots", slots, "alerts", alerts));
    }
    json_t *proc = json_pack("{s:o, s:o, s:o, s:o}", "cpu", real(s->proc_cpu, 0, PROC_CPU_MAX),
                             "rss_bytes", real(s->proc_rss, 0, RSS_MAX), "host_cpu",
                             real(s->host_cpu, 0, 1), "host_memory", real(s->host_mem, 0, 1));
    json_t *doc =
        json_pack("{s:i, s:o, s:I, s:I, s:I, s:o, s:o, s:o}", "version", MONITOR_STATUS_VERSION,
                  "written", json_time_or_null(clamp64(s->written_ms, 1, JSON_TIME_MAX_MS)),
                  "interval_ms", (json_int_t)clamp64(s->interval_ms, 1, INTERVAL_MAX), "window_ms",
                  (json_int_t)clamp64(s->window_ms, 0, MONITOR_DURATION_MAX_MS), "pid",
                  (json_int_t)clamp64(s->pid, 1, INT32_MAX), "host",
                  text_cut(s->host[0] ? s->host : "localhost", MONITOR_STATUS_HOST_MAX), "process",
                  proc, "environments", envs);
    /* NULL only when a string is not UTF-8, which none of them can be: then
     * an empty document, which no reader takes for a status */
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    buf_adds(out, text ? text : "{}");
    buf_adds(out, "\n");
    free(text);
    json_decref(doc);
}

/* ---- reading ------------------------------------------------------------------------ */

/* One field at a time, as base's json_field_* do, for what they do not read:
 * reals that may be null, enum words, fixed-size strings. */

static double get_real(struct json_fields *f, json_t *o, const char *name, double lo, double hi,
                       int required)
{
    json_t *v = json_field(o, name);
    if (!v) {
        if (required)
            json_field_bad(f, name, "missing");
        return NAN;
    }
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    if (!isfinite(x) || x < lo || x > hi) {
        json_field_bad(f, name, json_is_number(v) ? "out of range" : "not a number");
        return NAN;
    }
    return x;
}

static int get_word(struct json_fields *f, json_t *o, const char *name, const char *(*word)(int),
                    int n)
{
    json_t *v = json_field(o, name);
    const char *s = json_string_value(v);
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, word(i)))
            return i;
    json_field_bad(f, name, v ? "not one of the words it may be" : "missing");
    return 0;
}

static const char *w_severity(int i)
{
    return monitor_severity_name((enum monitor_severity)i);
}
static const char *w_signal(int i)
{
    return monitor_signal_name((enum monitor_signal)i);
}
static const char *w_op(int i)
{
    return monitor_op_name((enum monitor_op)i);
}
static const char *w_state(int i)
{
    return monitor_state_name((enum monitor_state)i);
}
static const char *w_verdict(int i)
{
    return monitor_verdict_name((enum monitor_verdict)i);
}
static const char *w_slot(int i)
{
    return edge_slot_name(i);
}

/* A release id or null into out[RELEASE_ID_MAX + 1]. */
static void get_release(struct json_fields *f, json_t *o, const char *name, char *out)
{
    out[0] = '\0';
    json_t *v = json_field(o, name);
    if (!v)
        return;
    const char *s = json_string_value(v);
    if (!s || strlen(s) != json_string_length(v) || !release_id_valid(s)) {
        json_field_bad(f, name, "not a release id");
        return;
    }
    snprintf(out, RELEASE_ID_MAX + 1, "%s", s);
}

static int rule_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/* An array of at most max elements (absent: empty), or NULL counted bad. */
static json_t *get_array(struct json_fields *f, json_t *o, const char *name, size_t max)
{
    json_t *v = json_field(o, name);
    if (v && (!json_is_array(v) || json_array_size(v) > max)) {
        json_field_bad(f, name, json_is_array(v) ? "too many entries" : "not a list");
        return NULL;
    }
    if (!v)
        json_field_bad(f, name, "missing");
    return v;
}

static void parse_slot(struct json_fields *f, json_t *o, struct monitor_status_slot *x)
{
    double hl = (double)HIST_LIMIT / 1e6;
    x->slot = get_word(f, o, "slot", w_slot, EDGE_SLOTS);
    x->live = json_field_bool(f, o, "live", JSON_FIELD_REQUIRED) == 1;
    get_release(f, o, "release", x->release);
    x->requests = (uint64_t)json_field_int(f, o, "requests", 0, COUNT_MAX, JSON_FIELD_REQUIRED);
    x->errors = (uint64_t)json_field_int(f, o, "errors", 0, COUNT_MAX, JSON_FIELD_REQUIRED);
    if (x->errors > x->requests)
        json_field_bad(f, "errors", "more than requests");
    x->req_per_s = get_real(f, o, "req_per_s", 0, RATE_MAX, 0);
    x->error_ratio = get_real(f, o, "error_ratio", 0, 1, 0);
    x->p50_s = get_real(f, o, "p50_s", 0, hl, 0);
    x->p95_s = get_real(f, o, "p95_s", 0, hl, 0);
    x->p99_s = get_real(f, o, "p99_s", 0, hl, 0);
    if (isnan(x->p50_s) != isnan(x->p99_s) || isnan(x->p95_s) != isnan(x->p99_s) ||
        x->p50_s > x->p95_s || x->p95_s > x->p99_s)
        json_field_bad(f, "p50_s", "percentiles not all given, or not ordered");
    json_t *req = get_array(f, o, "recent_requests", MONITOR_STATUS_RECENT);
    json_t *err = get_array(f, o, "recent_errors", MONITOR_STATUS_RECENT);
    if (!req || !err)
        return;
    if (json_array_size(req) != json_array_size(err)) {
        json_field_bad(f, "recent_errors", "not as long as recent_requests");
        return;
    }
    x->nrecent = json_array_size(req);
    for (size_t i = 0; i < x->nrecent; i++) {
        json_t *r = json_array_get(req, i), *e = json_array_get(err, i);
        if (!json_is_integer(r) || !json_is_integer(e) || json_integer_value(e) < 0 ||
            json_integer_value(e) > json_integer_value(r)) {
            json_field_bad(f, "recent_requests", "not whole numbers, or more errors than requests");
            return;
        }
        x->recent_requests[i] = (uint64_t)json_integer_value(r);
        x->recent_errors[i] = (uint64_t)json_integer_value(e);
    }
}

static void parse_alert(struct json_fields *f, json_t *o, struct monitor_status_alert *a)
{
    const char *name = json_string_value(json_field(o, "rule"));
    if (!name || strlen(name) != json_string_length(json_field(o, "rule")) || !rule_name_ok(name))
        json_field_bad(f, "rule", "not a rule name ([a-z0-9-], 1 to 63)");
    else
        snprintf(a->rule, sizeof(a->rule), "%s", name);
    a->severity = get_word(f, o, "severity", w_severity, 3);
    a->signal = get_word(f, o, "signal", w_signal, MONITOR_NSIGNALS);
    a->op = get_word(f, o, "op", w_op, 4);
    a->threshold = get_real(f, o, "threshold", 0, VALUE_MAX, 1);
    a->for_ms = json_field_int(f, o, "for_ms", 0, MONITOR_DURATION_MAX_MS, JSON_FIELD_REQUIRED);
    a->min_requests = json_field_int(f, o, "min_requests", 0, 1000000000, JSON_FIELD_REQUIRED);
    a->state = get_word(f, o, "state", w_state, 3);
    a->verdict = get_word(f, o, "verdict", w_verdict, 5);
    a->value = get_real(f, o, "value", -VALUE_MAX, VALUE_MAX, 0);
    a->last = get_real(f, o, "last", -VALUE_MAX, VALUE_MAX, 0);
    a->requests = (uint64_t)json_field_int(f, o, "requests", 0, COUNT_MAX, JSON_FIELD_REQUIRED);
    a->active_ms = json_field_time(f, o, "active", 0);
    a->fired_ms = json_field_time(f, o, "fired", 0);
    a->resolved_ms = json_field_time(f, o, "resolved", 0);
    a->eval_ms = json_field_time(f, o, "evaluated", 0);
    get_release(f, o, "release", a->release);
    a->summary = json_field_str(f, o, "summary", MONITOR_STATUS_SUMMARY_MAX, 0);
    /* what the states imply (alert.c): a pending or firing alert has an active
     * time, a firing one a firing time */
    if ((a->state != MONITOR_INACTIVE && !a->active_ms) ||
        (a->state == MONITOR_FIRING && !a->fired_ms))
        json_field_bad(f, "state", "pending or firing without its times");
}

static void parse_env(struct json_fields *f, json_t *o, struct monitor_status_env *e)
{
    struct sw_err nerr = {0};
    const char *name = json_string_value(json_field(o, "name"));
    if (!name || strlen(name) != json_string_length(json_field(o, "name")) ||
        env_name_check(name, &nerr) != 0)
        json_field_bad(f, "name", "not an environment name");
    else
        snprintf(e->name, sizeof(e->name), "%s", name);
    json_t *slots = get_array(f, o, "slots", EDGE_SLOTS);
    json_t *alerts = get_array(f, o, "alerts", MONITOR_RULES_MAX);
    if (f->bad)
        return;
    for (size_t i = 0; i < json_array_size(slots) && !f->bad; i++) {
        struct monitor_status_slot *x = &e->slots[e->nslots++];
        json_t *so = json_array_get(slots, i);
        if (!json_is_object(so))
            json_field_bad(f, "slots", "not objects");
        parse_slot(f, so, x);
        for (size_t k = 0; k + 1 < e->nslots && !f->bad; k++)
            if (e->slots[k].slot == x->slot)
                json_field_bad(f, "slot", "a slot twice");
    }
    if (f->bad)
        return;
    e->alerts = xcalloc(json_array_size(alerts) ? json_array_size(alerts) : 1, sizeof(*e->alerts));
    for (size_t i = 0; i < json_array_size(alerts) && !f->bad; i++) {
        struct monitor_status_alert *a = &e->alerts[e->nalerts++];
        json_t *ao = json_array_get(alerts, i);
        if (!json_is_object(ao))
            json_field_bad(f, "alerts", "not objects");
        parse_alert(f, ao, a);
        for (size_t k = 0; k + 1 < e->nalerts && !f->bad; k++)
            if (!strcmp(e->alerts[k].rule, a->rule))
                json_field_bad(f, "rule", "a rule twice");
    }
}

int monitor_status_parse(const char *data, size_t len, const char *name, struct monitor_status *out,
                         struct sw_err *err)
{
    json_t *doc = NULL;
    struct json_fields f = JSON_FIELDS_INIT(name);
    memset(out, 0, sizeof(*out));
    if (len > MONITOR_STATUS_FILE_MAX)
        return sw_err_set(err, SW_EINVAL, "%s: %zu bytes, more than a status can hold", name, len);
    int rc = json_doc_parse(name, data, len, &doc, err);
    if (rc)
        return rc;
    if (!json_is_object(doc)) {
        rc = sw_err_set(err, SW_EINVAL, "%s: not a JSON object", name);
        goto out;
    }
    if (json_field_int(&f, doc, "version", 1, INT32_MAX, JSON_FIELD_REQUIRED) !=
            MONITOR_STATUS_VERSION &&
        !f.bad) {
        rc = sw_err_set(err, SW_EINVAL, "%s: version %lld, not %d (written by another slipway)",
                        name, (long long)json_integer_value(json_field(doc, "version")),
                        MONITOR_STATUS_VERSION);
        goto out;
    }
    out->written_ms = json_field_time(&f, doc, "written", JSON_FIELD_REQUIRED);
    out->interval_ms = json_field_int(&f, doc, "interval_ms", 1, INTERVAL_MAX, JSON_FIELD_REQUIRED);
    out->window_ms =
        json_field_int(&f, doc, "window_ms", 0, MONITOR_DURATION_MAX_MS, JSON_FIELD_REQUIRED);
    out->pid = json_field_int(&f, doc, "pid", 1, INT32_MAX, JSON_FIELD_REQUIRED);
    char *host = json_field_str(&f, doc, "host", MONITOR_STATUS_HOST_MAX, JSON_FIELD_REQUIRED);
    if (host)
        snprintf(out->host, sizeof(out->host), "%s", host);
    free(host);
    json_t *proc = json_field(doc, "process");
    if (proc && !json_is_object(proc))
        json_field_bad(&f, "process", "not an object");
    out->proc_cpu = get_real(&f, proc, "cpu", 0, PROC_CPU_MAX, 0);
    out->proc_rss = get_real(&f, proc, "rss_bytes", 0, RSS_MAX, 0);
    out->host_cpu = get_real(&f, proc, "host_cpu", 0, 1, 0);
    out->host_mem = get_real(&f, proc, "host_memory", 0, 1, 0);
    json_t *envs = get_array(&f, doc, "environments", MONITOR_STATUS_ENVS_MAX);
    if (!f.bad && json_array_size(envs)) {
        out->envs = xcalloc(json_array_size(envs), sizeof(*out->envs));
        for (size_t i = 0; i < json_array_size(envs) && !f.bad; i++) {
            struct monitor_status_env *e = &out->envs[out->nenvs++];
            json_t *eo = json_array_get(envs, i);
            if (!json_is_object(eo))
                json_field_bad(&f, "environments", "not objects");
            parse_env(&f, eo, e);
            for (size_t k = 0; k + 1 < out->nenvs && !f.bad; k++)
                if (!strcmp(out->envs[k].name, e->name))
                    json_field_bad(&f, "name", "an environment twice");
        }
    }
    if (f.bad)
        rc = json_fields_err(&f, err);
out:
    json_decref(doc);
    if (rc)
        monitor_status_clear(out);
    return rc;
}

/* ---- the file -------------------------------------------------------------------------- */

int monitor_status_save(const struct monitor_status *s, const char *path, struct sw_err *err)
{
    struct buf b = BUF_INIT;
    monitor_status_encode(s, &b);
    char *tmp = xasprintf("%s.tmp-%d", path, (int)getpid());
    int rc = 0, e = 0;
    /* O_NOFOLLOW, O_TRUNC: a link or a half file of an earlier attempt is not followed or kept */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = sw_err_sys(err, errno, "%s", tmp);
        goto out;
    }
    e = fd_write_all(fd, b.data, b.len);
    if (close(fd) < 0 && !e)
        e = -errno;
    /* No fsync: the file is rewritten every interval, and after a crash its
     * age says serve is gone whatever it holds. rename(2) alone keeps each
     * reader's view whole, which is all it is for. */
    if (!e && rename(tmp, path) < 0)
        e = -errno;
    if (e) {
        unlink(tmp);
        rc = sw_err_sys(err, -e, "%s", path);
    }
out:
    free(tmp);
    buf_free(&b);
    return rc;
}

int monitor_status_load(const char *path, struct monitor_status *out, struct sw_err *err)
{
    struct stat st;
    struct buf b = BUF_INIT;
    int rc = 0;
    memset(out, 0, sizeof(*out));
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
    /* Read up to one byte past the limit, whatever fstat said: the file may grow. */
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = sw_err_sys(err, errno, "%s", path);
            goto out;
        }
        if (n == 0)
            break;
        buf_add(&b, chunk, (size_t)n);
        if (b.len > MONITOR_STATUS_FILE_MAX) {
            rc = sw_err_set(err, SW_EINVAL, "%s: more than %u bytes, more than a status can hold",
                            path, MONITOR_STATUS_FILE_MAX);
            goto out;
        }
    }
    rc = monitor_status_parse(b.data ? b.data : "", b.len, path, out, err);
out:
    close(fd);
    buf_free(&b);
    return rc;
}

int monitor_status_live(const struct monitor_status *s, int64_t now_ms)
{
    int64_t stale = s->interval_ms * 5;
    if (stale < MONITOR_STATUS_STALE_MIN_MS)
        stale = MONITOR_STATUS_STALE_MIN_MS;
    if (now_ms - s->written_ms > stale)
        return 0;
    /* Another host's process cannot be asked: its age alone says. */
    if (strcmp(s->host, sys_host()) != 0)
        return 1;
    return kill((pid_t)s->pid, 0) == 0 || errno == EPERM;
}
