/*
 * The incident journal: one JSON line per thing that happened to an alert
 * (fired, notified or lost, rolled back or not, verdict, resolved), appended
 * by `slipway serve` and read by `slipway incidents`, which groups the lines
 * into incidents.
 *
 * The one idea: every line stands alone. The writer appends a whole line
 * with one write(2) on an O_APPEND descriptor, so a crash leaves at worst one
 * torn last line and writers never interleave; the file is bounded by
 * rewriting it with its newest half, atomically. The reader parses each line
 * by itself against a closed shape per event (the fields it has, no others;
 * each bounded and checked), so one bad line, hostile or torn, costs that
 * line only: it is skipped and counted. What the writer writes is cleaned to
 * that shape first, so it is always read back.
 */
#include "monitor/monitor.h"
#include "deploy/deploy.h"
#include "release/release.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VALUE_MAX 1e300 /* a rule's value: finite, as the status file keeps it */
#define SCAN_BACK 1024  /* incidents looked through for a rollback or verdict without a key */

/* The fields an event may have beside v, event, time and env. */
enum {
    F_RULE = 1 << 0,
    F_SEVERITY = 1 << 1,
    F_FINGERPRINT = 1 << 2,
    F_FIRED = 1 << 3,
    F_VALUE = 1 << 4,
    F_RELEASE = 1 << 5,
    F_TO = 1 << 6,
    F_TARGET = 1 << 7,
    F_SOURCE = 1 << 8,
    F_TEXT = 1 << 9,
};

static const struct {
    const char *name;
    unsigned has, required; /* F_*: required ones may not be null */
    const char *text;       /* what the text field is called */
} kinds[MONITOR_JOURNAL_KINDS] = {
    [MONITOR_JOURNAL_FIRED] = {"fired",
                               F_RULE | F_SEVERITY | F_FINGERPRINT | F_FIRED | F_VALUE | F_RELEASE |
                                   F_TEXT,
                               F_RULE | F_SEVERITY | F_FINGERPRINT | F_FIRED, "summary"},
    [MONITOR_JOURNAL_RESOLVED] = {"resolved",
                                  F_RULE | F_SEVERITY | F_FINGERPRINT | F_FIRED | F_VALUE |
                                      F_RELEASE | F_TEXT,
                                  F_RULE | F_SEVERITY | F_FINGERPRINT | F_FIRED, "summary"},
    [MONITOR_JOURNAL_NOTIFIED] = {"notified", F_RULE | F_FINGERPRINT | F_FIRED | F_TARGET,
                                  F_RULE | F_FINGERPRINT | F_FIRED | F_TARGET, NULL},
    [MONITOR_JOURNAL_LOST] = {"lost", F_RULE | F_FINGERPRINT | F_FIRED | F_TARGET | F_TEXT,
                              F_RULE | F_FINGERPRINT | F_FIRED | F_TARGET | F_TEXT, "why"},
    [MONITOR_JOURNAL_ROLLED_BACK] = {"rolled_back",
                                     F_RULE | F_SOURCE | F_FIRED | F_RELEASE | F_TO | F_TEXT,
                                     F_RULE | F_SOURCE | F_FIRED | F_TEXT, "reason"},
    [MONITOR_JOURNAL_ROLLBACK_SKIPPED] = {"rollback_skipped",
                                          F_RULE | F_SOURCE | F_FIRED | F_RELEASE | F_TEXT,
                                          F_RULE | F_SOURCE | F_FIRED | F_TEXT, "why"},
    [MONITOR_JOURNAL_VERDICT] = {"verdict", F_RELEASE | F_TEXT, F_TEXT, "verdict"},
};

static const char *const sources[] = {"slipway", "alertmanager"};

const char *monitor_journal_kind_name(enum monitor_journal_kind k)
{
    return (unsigned)k < MONITOR_JOURNAL_KINDS ? kinds[k].name : "?";
}

void monitor_journal_event_clear(struct monitor_journal_event *e)
{
    free(e->rule);
    free(e->release);
    free(e->to);
    free(e->target);
    free(e->source);
    free(e->text);
    memset(e, 0, sizeof(*e));
    e->severity = -1;
    e->value = NAN;
}

/* ---- writing ---------------------------------------------------------------------- */

/* s as the reader takes it: printable UTF-8 of at most max bytes. Text that
 * is not printable is escaped (one line, saying what it was); either is cut
 * at a character boundary. NULL for NULL. */
static char *clean(const char *s, size_t max)
{
    struct buf b = BUF_INIT;
    if (!s)
        return NULL;
    if (utf8_valid(s, 1))
        buf_adds(&b, s);
    else
        buf_add_escaped(&b, s);
    size_t n = b.len;
    if (n > max) {
        n = max;
        while (n && ((unsigned char)b.data[n] & 0xC0) == 0x80)
            n--;
    }
    char *r = xstrndup(b.data ? b.data : "", n);
    buf_free(&b);
    return r;
}

static json_t *jclean(const char *s, size_t max)
{
    char *c = clean(s, max);
    json_t *j = c ? json_string(c) : json_null();
    free(c);
    return j ? j : json_null();
}

static json_t *jtime(int64_t ms)
{
    char t[40];
    time_format_iso(ms, t, sizeof(t));
    return json_string(t);
}

static int source_index(const char *s)
{
    for (int i = 0; s && i < (int)(sizeof(sources) / sizeof(*sources)); i++)
        if (!strcmp(s, sources[i]))
            return i;
    return -1;
}

int monitor_journal_encode(const struct monitor_journal_event *e, struct buf *out,
                           struct sw_err *err)
{
    if ((unsigned)e->kind >= MONITOR_JOURNAL_KINDS)
        return sw_err_set(err, SW_EINVAL, "journal: not an event kind");
    unsigned has = kinds[e->kind].has;
    if (env_name_check(e->env, NULL) != 0)
        return sw_err_set(err, SW_EINVAL, "journal: not an environment name");
    if (e->at_ms <= 0 || e->at_ms > JSON_TIME_MAX_MS ||
        ((has & F_FIRED) && (e->fired_ms <= 0 || e->fired_ms > JSON_TIME_MAX_MS)))
        return sw_err_set(err, SW_EINVAL, "journal: a time out of range");
    if ((has & F_FINGERPRINT) && !hex_lower_valid(e->fingerprint, 16))
        return sw_err_set(err, SW_EINVAL, "journal: not a fingerprint");
    if ((has & F_SEVERITY) && (e->severity < MONITOR_CRITICAL || e->severity > MONITOR_INFO))
        return sw_err_set(err, SW_EINVAL, "journal: not a severity");
    if ((has & F_SOURCE) && source_index(e->source) < 0)
        return sw_err_set(err, SW_EINVAL, "journal: not a source");
    if ((has & F_RULE) && (!e->rule || !e->rule[0]))
        return sw_err_set(err, SW_EINVAL, "journal: no rule");
    if ((has & F_TARGET) && (!e->target || !e->target[0]))
        return sw_err_set(err, SW_EINVAL, "journal: no target");

    json_t *o = json_object();
    json_object_set_new(o, "v", json_integer(MONITOR_JOURNAL_VERSION));
    json_object_set_new(o, "event", json_string(kinds[e->kind].name));
    json_object_set_new(o, "time", jtime(e->at_ms));
    json_object_set_new(o, "env", json_string(e->env));
    if (has & F_RULE)
        json_object_set_new(o, "rule", jclean(e->rule, MONITOR_JOURNAL_RULE_MAX));
    if (has & F_SEVERITY)
        json_object_set_new(o, "severity",
                            json_string(monitor_severity_name((enum monitor_severity)e->severity)));
    if (has & F_FINGERPRINT)
        json_object_set_new(o, "fingerprint", json_string(e->fingerprint));
    if (has & F_FIRED)
        json_object_set_new(o, "fired", jtime(e->fired_ms));
    if (has & F_VALUE)
        json_object_set_new(o, "value",
                            isfinite(e->value) && fabs(e->value) <= VALUE_MAX ? json_real(e->value)
                                                                              : json_null());
    if (has & F_RELEASE)
        json_object_set_new(o, "release",
                            e->release && release_id_valid(e->release) ? json_string(e->release)
                                                                       : json_null());
    if (has & F_TO)
        json_object_set_new(o, "to",
                            e->to && release_id_valid(e->to) ? json_string(e->to) : json_null());
    if (has & F_TARGET)
        json_object_set_new(o, "target", jclean(e->target, MONITOR_JOURNAL_TARGET_MAX));
    if (has & F_SOURCE)
        json_object_set_new(o, "source", json_string(e->source));
    if (has & F_TEXT) {
        /* a required text is never null: an unknown one reads "" */
        int req = (kinds[e->kind].required & F_TEXT) != 0;
        json_object_set_new(o, kinds[e->kind].text,
                            jclean(e->text ? e->text
                                   : req   ? ""
                                           : NULL,
                                   MONITOR_JOURNAL_TEXT_MAX));
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) /* only when out of memory */
        abort();
    size_t n = strlen(s);
    if (n + 1 > MONITOR_JOURNAL_LINE_MAX) { /* cannot happen within the bounds above */
        free(s);
        return sw_err_set(err, SW_EINVAL, "journal: a line of %zu bytes", n);
    }
    buf_add(out, s, n);
    buf_adds(out, "\n");
    free(s);
    return 0;
}

/* ---- reading ---------------------------------------------------------------------- */

static int known_key(const char *k, unsigned has, const char *text)
{
    static const struct {
        const char *name;
        unsigned flag;
    } keys[] = {{"rule", F_RULE},   {"severity", F_SEVERITY}, {"fingerprint", F_FINGERPRINT},
                {"fired", F_FIRED}, {"value", F_VALUE},       {"release", F_RELEASE},
                {"to", F_TO},       {"target", F_TARGET},     {"source", F_SOURCE}};
    if (!strcmp(k, "v") || !strcmp(k, "event") || !strcmp(k, "time") || !strcmp(k, "env"))
        return 1;
    if (text && (has & F_TEXT) && !strcmp(k, text))
        return 1;
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
        if (!strcmp(k, keys[i].name))
            return (has & keys[i].flag) != 0;
    return 0;
}

/* A release id, or null/absent (NULL). */
static char *get_release(struct json_fields *f, json_t *o, const char *name)
{
    json_t *v = json_field(o, name);
    if (!v)
        return NULL;
    const char *s = json_string_value(v);
    if (!s || strlen(s) != json_string_length(v) || !release_id_valid(s)) {
        json_field_bad(f, name, "not a release id");
        return NULL;
    }
    return xstrdup(s);
}

int monitor_journal_parse_line(const char *line, size_t len, struct monitor_journal_event *out,
                               struct sw_err *err)
{
    json_t *o = NULL;
    struct json_fields f = JSON_FIELDS_INIT("event");
    memset(out, 0, sizeof(*out));
    out->severity = -1;
    out->value = NAN;
    if (len + 1 > MONITOR_JOURNAL_LINE_MAX)
        return sw_err_set(err, SW_EINVAL, "a line of %zu bytes, more than an event can be", len);
    int rc = json_doc_parse("JSON", line, len, &o, err);
    if (rc)
        return rc;
    if (!json_is_object(o)) {
        rc = sw_err_set(err, SW_EINVAL, "not a JSON object");
        goto out;
    }
    json_t *v = json_object_get(o, "v");
    if (!json_is_integer(v) || json_integer_value(v) != MONITOR_JOURNAL_VERSION) {
        rc = sw_err_set(err, SW_EINVAL, "not an event of version %d", MONITOR_JOURNAL_VERSION);
        goto out;
    }
    const char *word = json_string_value(json_object_get(o, "event"));
    int k = 0;
    while (word && k < MONITOR_JOURNAL_KINDS && strcmp(word, kinds[k].name) != 0)
        k++;
    if (!word || k == MONITOR_JOURNAL_KINDS) {
        rc = sw_err_set(err, SW_EINVAL, "event: not one of the events a journal has");
        goto out;
    }
    out->kind = (enum monitor_journal_kind)k;
    unsigned has = kinds[k].has, req = kinds[k].required;
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        if (!known_key(key, has, kinds[k].text)) {
            struct buf b = BUF_INIT;
            buf_add_escaped(&b, key);
            rc = sw_err_set(err, SW_EINVAL, "%s: a field a %s event does not have",
                            b.data ? b.data : "", kinds[k].name);
            buf_free(&b);
            goto out;
        }
    }
    out->at_ms = json_field_time(&f, o, "time", JSON_FIELD_REQUIRED);
    char *env = json_field_str(&f, o, "env", 63, JSON_FIELD_REQUIRED);
    if (env && env_name_check(env, NULL) != 0)
        json_field_bad(&f, "env", "not an environment name");
    else if (env)
        snprintf(out->env, sizeof(out->env), "%s", env);
    free(env);
    if (has & F_RULE) {
        out->rule = json_field_str(&f, o, "rule", MONITOR_JOURNAL_RULE_MAX,
                                   req & F_RULE ? JSON_FIELD_REQUIRED : 0);
        if (out->rule && !out->rule[0])
            json_field_bad(&f, "rule", "empty");
    }
    if (has & F_SEVERITY) {
        const char *s = json_string_value(json_field(o, "severity"));
        for (int i = MONITOR_CRITICAL; s && i <= MONITOR_INFO; i++)
            if (!strcmp(s, monitor_severity_name((enum monitor_severity)i)))
                out->severity = i;
        if (out->severity < 0)
            json_field_bad(&f, "severity", "not critical, warning or info");
    }
    if (has & F_FINGERPRINT) {
        json_t *fp = json_field(o, "fingerprint");
        const char *s = json_string_value(fp);
        if (!s || json_string_length(fp) != 16 || !hex_lower_valid(s, 16))
            json_field_bad(&f, "fingerprint", "not 16 lowercase hex digits");
        else
            memcpy(out->fingerprint, s, 17);
    }
    if (has & F_FIRED)
        out->fired_ms = json_field_time(&f, o, "fired", JSON_FIELD_REQUIRED);
    if (has & F_VALUE) {
        json_t *x = json_field(o, "value");
        if (x && (!json_is_number(x) || !isfinite(json_number_value(x)) ||
                  fabs(json_number_value(x)) > VALUE_MAX))
            json_field_bad(&f, "value", "not a finite number");
        else if (x)
            out->value = json_number_value(x);
    }
    if (has & F_RELEASE)
        out->release = get_release(&f, o, "release");
    if (has & F_TO)
        out->to = get_release(&f, o, "to");
    if (has & F_TARGET) {
        out->target =
            json_field_str(&f, o, "target", MONITOR_JOURNAL_TARGET_MAX, JSON_FIELD_REQUIRED);
        if (out->target && !out->target[0])
            json_field_bad(&f, "target", "empty");
    }
    if (has & F_SOURCE) {
        out->source = json_field_str(&f, o, "source", 16, JSON_FIELD_REQUIRED);
        if (out->source && source_index(out->source) < 0)
            json_field_bad(&f, "source", "not slipway or alertmanager");
    }
    if (has & F_TEXT)
        out->text = json_field_str(&f, o, kinds[k].text, MONITOR_JOURNAL_TEXT_MAX,
                                   req & F_TEXT ? JSON_FIELD_REQUIRED : 0);
    if (f.bad)
        rc = json_fields_err(&f, err);
out:
    json_decref(o);
    if (rc)
        monitor_journal_event_clear(out);
    return rc;
}

void monitor_journal_events_clear(struct monitor_journal_events *ev)
{
    for (size_t i = 0; i < ev->n; i++)
        monitor_journal_event_clear(&ev->v[i]);
    free(ev->v);
    memset(ev, 0, sizeof(*ev));
}

void monitor_journal_parse(const char *data, size_t len, const char *name,
                           struct monitor_journal_events *out,
                           void (*warn)(void *arg, const char *line), void *warn_arg)
{
    size_t cap = 0, lineno = 0;
    memset(out, 0, sizeof(*out));
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(data + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - data) : len;
        struct monitor_journal_event e;
        struct sw_err err = {0};
        lineno++;
        if (monitor_journal_parse_line(data + at, end - at, &e, &err) == 0) {
            if (out->n == cap)
                out->v = xrealloc(out->v, (cap = cap ? cap * 2 : 64) * sizeof(*out->v));
            out->v[out->n++] = e;
        } else {
            out->bad++;
            if (warn) {
                struct buf b = BUF_INIT;
                buf_addf(&b, "%s:%zu: ", name, lineno);
                buf_add_escaped(&b, err.msg);
                warn(warn_arg, b.data);
                buf_free(&b);
            }
        }
        at = end + 1;
    }
}

int monitor_journal_load(const char *path, struct monitor_journal_events *out,
                         void (*warn)(void *arg, const char *line), void *warn_arg,
                         struct sw_err *err)
{
    struct stat st;
    char *data = NULL;
    size_t len = 0;
    memset(out, 0, sizeof(*out));
    /* O_NOFOLLOW and a bound before reading: the cache is anyone's who can
     * write the project, and this file is read whole */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? sw_err_set(err, SW_ENOTFOUND, "%s: no incident journal", path)
                               : sw_err_sys(err, errno, "%s", path);
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return sw_err_sys(err, e, "%s", path);
    }
    close(fd);
    if (!S_ISREG(st.st_mode))
        return sw_err_set(err, SW_EINVAL, "%s: not a regular file", path);
    if (st.st_size > MONITOR_JOURNAL_READ_MAX)
        return sw_err_set(err, SW_EINVAL, "%s: %lld bytes, more than a journal can be (%u)", path,
                          (long long)st.st_size, MONITOR_JOURNAL_READ_MAX);
    int rc = file_read_all(path, &data, &len, err);
    if (rc)
        return rc;
    size_t at = 0;
    if (len >
        MONITOR_JOURNAL_READ_MAX) { /* grew meanwhile: the newest lines, from a line's start */
        at = len - MONITOR_JOURNAL_READ_MAX;
        while (at < len && data[at - 1] != '\n')
            at++;
    }
    monitor_journal_parse(data + at, len - at, path, out, warn, warn_arg);
    free(data);
    return 0;
}

/* ---- the writer ------------------------------------------------------------------- */

struct monitor_journal {
    pthread_mutex_t lock;
    char *path;
    int fd;
    size_t max;
};

static int open_append(const char *path, struct sw_err *err)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return sw_err_sys(err, errno, "%s", path);
    return fd;
}

int monitor_journal_open(const char *path, size_t max, struct monitor_journal **out,
                         struct sw_err *err)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash && slash != dir) {
        *slash = '\0';
        rc = fs_mkdir_p(dir, err);
    }
    free(dir);
    if (rc)
        return rc;
    int fd = open_append(path, err);
    if (fd < 0)
        return fd;
    struct monitor_journal *j = xcalloc(1, sizeof(*j));
    pthread_mutex_init(&j->lock, NULL);
    j->path = xstrdup(path);
    j->fd = fd;
    j->max = max ? max : MONITOR_JOURNAL_MAX;
    *out = j;
    return 0;
}

/* The file past max: rewritten with the lines of its newest half. A line
 * another writer appends between the read and the rename is lost; slipway
 * serve is the only writer of a project's cache. Called with the lock held. */
static int compact(struct monitor_journal *j, struct sw_err *err)
{
    char *data = NULL;
    size_t len = 0;
    int rc = file_read_all(j->path, &data, &len, err);
    if (rc)
        return rc;
    if (len > j->max) {
        size_t at = len - j->max / 2;
        while (at < len && data[at - 1] != '\n') /* from the start of a line */
            at++;
        rc = fs_write_atomic(j->path, data + at, len - at, err);
        if (!rc) {
            int fd = open_append(j->path, err);
            if (fd < 0) {
                rc = fd;
            } else {
                close(j->fd);
                j->fd = fd;
            }
        }
    }
    free(data);
    return rc;
}

int monitor_journal_append(struct monitor_journal *j, const struct monitor_journal_event *e,
                           struct sw_err *err)
{
    struct buf b = BUF_INIT;
    struct stat st;
    int rc = monitor_journal_encode(e, &b, err);
    if (rc)
        goto out;
    pthread_mutex_lock(&j->lock);
    int w = fd_write_all(j->fd, b.data, b.len);
    if (w)
        rc = sw_err_sys(err, -w, "%s", j->path);
    else if (fstat(j->fd, &st) < 0)
        rc = sw_err_sys(err, errno, "%s", j->path);
    else if ((size_t)st.st_size > j->max)
        rc = compact(j, err);
    pthread_mutex_unlock(&j->lock);
out:
    buf_free(&b);
    return rc;
}

void monitor_journal_close(struct monitor_journal *j)
{
    if (!j)
        return;
    close(j->fd);
    pthread_mutex_destroy(&j->lock);
    free(j->path);
    free(j);
}

/* ---- incidents -------------------------------------------------------------------- */

/* Open addressing over incident indexes (+1; 0: empty), keyed by env, a
 * second string (fingerprint or rule) and the time the alert fired. */
struct table {
    size_t *slot;
    size_t mask;
};

static uint64_t key_hash(const char *env, const char *s, int64_t ms)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = env; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *p = s; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    return (h ^ (uint64_t)ms) * 1099511628211ULL;
}

struct grouping {
    struct monitor_incident *v;
    size_t n, cap;
    struct table by_fp, by_rule;
};

static size_t *find(struct grouping *g, struct table *t, int by_fp, const char *env, const char *s,
                    int64_t ms)
{
    size_t i = key_hash(env, s, ms) & t->mask;
    while (t->slot[i]) {
        const struct monitor_incident *x = &g->v[t->slot[i] - 1];
        if (x->fired_ms == ms && !strcmp(x->env, env) &&
            !strcmp(by_fp ? x->fingerprint : x->rule, s))
            return &t->slot[i];
        i = (i + 1) & t->mask;
    }
    return &t->slot[i];
}

static struct monitor_incident *incident_new(struct grouping *g,
                                             const struct monitor_journal_event *e, const char *fp)
{
    if (g->n == g->cap)
        g->v = xrealloc(g->v, (g->cap = g->cap ? g->cap * 2 : 16) * sizeof(*g->v));
    struct monitor_incident *x = &g->v[g->n++];
    memset(x, 0, sizeof(*x));
    x->env = e->env;
    x->rule = e->rule;
    x->fingerprint = fp;
    x->fired_ms = e->fired_ms;
    x->first = e;
    size_t *s = find(g, &g->by_rule, 0, x->env, x->rule, x->fired_ms);
    if (!*s)
        *s = g->n;
    if (fp[0]) {
        s = find(g, &g->by_fp, 1, x->env, fp, x->fired_ms);
        if (!*s)
            *s = g->n;
    }
    return x;
}

/* The newest incident (of the last SCAN_BACK) that match accepts. */
static struct monitor_incident *scan_back(struct grouping *g, const struct monitor_journal_event *e,
                                          int (*match)(const struct monitor_incident *,
                                                       const struct monitor_journal_event *))
{
    for (size_t i = g->n, k = 0; i > 0 && k < SCAN_BACK; i--, k++)
        if (match(&g->v[i - 1], e))
            return &g->v[i - 1];
    return NULL;
}

static int same_rule_before(const struct monitor_incident *x, const struct monitor_journal_event *e)
{
    return !strcmp(x->env, e->env) && !strcmp(x->rule, e->rule) && x->fired_ms <= e->fired_ms;
}

static const char *incident_release(const struct monitor_incident *x)
{
    if (x->fired && x->fired->release)
        return x->fired->release;
    if (x->rollback && x->rollback->release)
        return x->rollback->release;
    return NULL;
}

static int verdict_of(const struct monitor_incident *x, const struct monitor_journal_event *e)
{
    const char *r = incident_release(x);
    return !x->verdict && !strcmp(x->env, e->env) && x->fired_ms <= e->at_ms && r && e->release &&
           !strcmp(r, e->release);
}

static int newest_first(const void *a, const void *b)
{
    const struct monitor_incident *x = a, *y = b;
    if (x->fired_ms != y->fired_ms)
        return x->fired_ms > y->fired_ms ? -1 : 1;
    return x->first < y->first ? 1 : x->first > y->first ? -1 : 0; /* later lines first */
}

void monitor_incidents_group(const struct monitor_journal_events *ev, const char *env,
                             int64_t since_ms, struct monitor_incidents *out)
{
    struct grouping g = {0};
    size_t size = 16;
    while (size < 2 * ev->n + 2)
        size *= 2;
    g.by_fp.slot = xcalloc(size, sizeof(size_t));
    g.by_rule.slot = xcalloc(size, sizeof(size_t));
    g.by_fp.mask = g.by_rule.mask = size - 1;
    for (size_t i = 0; i < ev->n; i++) {
        const struct monitor_journal_event *e = &ev->v[i];
        struct monitor_incident *x = NULL;
        if (env && strcmp(e->env, env) != 0)
            continue;
        switch (e->kind) {
        case MONITOR_JOURNAL_FIRED:
        case MONITOR_JOURNAL_RESOLVED:
        case MONITOR_JOURNAL_NOTIFIED:
        case MONITOR_JOURNAL_LOST: {
            size_t *s = find(&g, &g.by_fp, 1, e->env, e->fingerprint, e->fired_ms);
            x = *s ? &g.v[*s - 1] : incident_new(&g, e, e->fingerprint);
            if (e->kind == MONITOR_JOURNAL_FIRED && !x->fired)
                x->fired = e;
            else if (e->kind == MONITOR_JOURNAL_RESOLVED)
                x->resolved = e;
            else if (e->kind != MONITOR_JOURNAL_FIRED && x->nnotes < MONITOR_INCIDENT_NOTES_MAX)
                x->notes[x->nnotes++] = e;
            else if (e->kind != MONITOR_JOURNAL_FIRED)
                x->notes_omitted++;
            break;
        }
        case MONITOR_JOURNAL_ROLLED_BACK:
        case MONITOR_JOURNAL_ROLLBACK_SKIPPED: {
            size_t *s = find(&g, &g.by_rule, 0, e->env, e->rule, e->fired_ms);
            x = *s ? &g.v[*s - 1] : scan_back(&g, e, same_rule_before);
            if (!x)
                x = incident_new(&g, e, "");
            /* a rollback made is what the incident says, whatever came after */
            if (!x->rollback || x->rollback->kind != MONITOR_JOURNAL_ROLLED_BACK)
                x->rollback = e;
            break;
        }
        default: /* a verdict: of an incident's release, or of none */
            x = scan_back(&g, e, verdict_of);
            if (x)
                x->verdict = e;
        }
        if (x && e->at_ms > x->last_ms)
            x->last_ms = e->at_ms;
    }
    free(g.by_fp.slot);
    free(g.by_rule.slot);
    size_t k = 0;
    for (size_t i = 0; i < g.n; i++)
        if (g.v[i].last_ms >= since_ms)
            g.v[k++] = g.v[i];
    if (k)
        qsort(g.v, k, sizeof(*g.v), newest_first);
    out->v = g.v;
    out->n = k;
}
