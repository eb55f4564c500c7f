/*
 * The inbound hook: Alertmanager's webhook, so that a rule Prometheus
 * evaluates can trigger what slipway's own critical alerts trigger.
 *
 * The one idea: nothing about a request is looked at before its bearer token
 * matches, and nothing is remembered or called before the whole body has
 * parsed. So a missing or wrong token changes nothing, and neither does a
 * body that is half valid. Alertmanager re-sends a firing group every
 * repeat_interval and on every change of the group, so the same alert comes
 * many times: it triggers once per fingerprint and startsAt (one incident).
 */
#include "deploy/deploy.h"
#include "monitor/monitor.h"

#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LABEL_NAME_MAX 256
#define LABEL_VALUE_MAX 4096
#define VALUE_MAX 256
#define STARTS_AT_MAX 64
#define TOKEN_MIN 16
#define TOKEN_MAX 1024

/* ---- parsing ----------------------------------------------------------------------- */

void monitor_am_webhook_free(struct monitor_am_webhook *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->nalerts; i++) {
        struct monitor_am_alert *a = &w->alerts[i];
        for (size_t j = 0; j < a->nlabels; j++) {
            free(a->labels[j].name);
            free(a->labels[j].value);
        }
        free(a->labels);
        free(a->value);
    }
    free(w->alerts);
    free(w);
}

const char *monitor_am_label(const struct monitor_am_alert *a, const char *name)
{
    for (size_t i = 0; i < a->nlabels; i++)
        if (!strcmp(a->labels[i].name, name))
            return a->labels[i].value;
    return NULL;
}

/* "firing" 1, "resolved" 0, anything else -1. */
static int status_of(json_t *v)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    return !s ? -1 : !strcmp(s, "firing") ? 1 : !strcmp(s, "resolved") ? 0 : -1;
}

/* A string member within max bytes of printable UTF-8 (no NUL inside:
 * jansson allows \u0000, which a C string cannot keep). */
static const char *text_of(json_t *v, size_t max)
{
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    const char *s = json_string_value(v);
    return text_valid(s, max, 0) ? s : NULL;
}

/* n digits at s as a number, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* RFC 3339 §5.6 date-time ("2026-12-05T16:35:01.149389655Z", "...+02:00")
 * in ms since the epoch, the fraction cut to ms; -1 when it is not one. */
static int64_t rfc3339_ms(const char *s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = digits(s, 4), mo = -1, d = -1, h = -1, mi = -1, sec = -1, ms = 0, off = 0;
    const char *p = s + 4;
    if (y < 1970 || p[0] != '-' || (mo = digits(p + 1, 2)) < 1 || mo > 12 || p[3] != '-' ||
        (d = digits(p + 4, 2)) < 1 || d > mdays[mo - 1] || (p[6] != 'T' && p[6] != 't') ||
        (h = digits(p + 7, 2)) < 0 || h > 23 || p[9] != ':' || (mi = digits(p + 10, 2)) < 0 ||
        mi > 59 || p[12] != ':' || (sec = digits(p + 13, 2)) < 0 || sec > 60)
        return -1;
    p += 15;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                ms = ms * 10 + (*p - '0');
        if (n == 0)
            return -1;
        for (; n < 3; n++)
            ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh = digits(p + 1, 2), om = p[3] == ':' ? digits(p + 4, 2) : -1;
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        off = (*p == '-' ? -1 : 1) * (oh * 60 + om);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    /* Days from the civil date (Howard Hinnant's days_from_civil). */
    int yy = mo <= 2 ? y - 1 : y;
    int64_t era = yy / 400, yoe = yy - era * 400;
    int64_t doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1;
    int64_t days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    return ((days * 86400 + h * 3600 + mi * 60 + sec) - (int64_t)off * 60) * 1000 + ms;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct monitor_label *)a)->name, ((const struct monitor_label *)b)->name);
}

static int parse_alert(json_t *o, size_t i, struct monitor_am_alert *a, struct sw_err *err)
{
    json_t *labels = json_object_get(o, "labels"), *ann = json_object_get(o, "annotations");
    json_t *fp = json_object_get(o, "fingerprint"), *starts = json_object_get(o, "startsAt");
    const char *key;
    json_t *val;
    if (!json_is_object(o))
        return sw_err_set(err, SW_EINVAL, "alerts[%zu]: expected an object", i);
    if ((a->firing = status_of(json_object_get(o, "status"))) < 0)
        return sw_err_set(err, SW_EINVAL,
                          "alerts[%zu].status: expected \"firing\" or "
                          "\"resolved\"",
                          i);
    if (!json_is_object(labels) || json_object_size(labels) > MONITOR_AM_LABELS_MAX)
        return sw_err_set(err, SW_EINVAL,
                          "alerts[%zu].labels: expected an object of at most %d "
                          "labels",
                          i, MONITOR_AM_LABELS_MAX);
    a->labels = xcalloc(json_object_size(labels) + 1, sizeof(*a->labels));
    json_object_foreach(labels, key, val)
    {
        const char *v = text_of(val, LABEL_VALUE_MAX);
        if (!*key || !text_valid(key, LABEL_NAME_MAX, 0) || !v)
            return sw_err_set(err, SW_EINVAL,
                              "alerts[%zu].labels: expected names of 1 to %d and string values "
                              "of at most %d bytes of printable UTF-8",
                              i, LABEL_NAME_MAX, LABEL_VALUE_MAX);
        a->labels[a->nlabels].name = xstrdup(key);
        a->labels[a->nlabels++].value = xstrdup(v);
    }
    /* Alertmanager sorts by name before hashing; so does the fallback below. */
    qsort(a->labels, a->nlabels, sizeof(*a->labels), by_name);
    if (ann && !json_is_object(ann))
        return sw_err_set(err, SW_EINVAL, "alerts[%zu].annotations: expected an object", i);
    val = ann ? json_object_get(ann, "value") : NULL;
    if (val && !json_is_null(val)) {
        const char *v = text_of(val, VALUE_MAX);
        if (!v)
            return sw_err_set(err, SW_EINVAL,
                              "alerts[%zu].annotations.value: expected a string of at most %d "
                              "bytes of printable UTF-8",
                              i, VALUE_MAX);
        a->value = xstrdup(v);
    }
    if (fp && !json_is_null(fp)) {
        const char *s = text_of(fp, 16);
        if (!s || strlen(s) != 16 || !hex_lower_valid(s, 16))
            return sw_err_set(err, SW_EINVAL,
                              "alerts[%zu].fingerprint: expected 16 lowercase "
                              "hex digits",
                              i);
        memcpy(a->fingerprint, s, 17);
    } else {
        monitor_labels_fingerprint(a->labels, a->nlabels, a->fingerprint);
    }
    if (starts && !json_is_null(starts)) {
        const char *s = text_of(starts, STARTS_AT_MAX);
        if (!s || (a->starts_ms = rfc3339_ms(s)) < 0)
            return sw_err_set(err, SW_EINVAL,
                              "alerts[%zu].startsAt: expected a time (RFC 3339) from 1970 on", i);
    }
    return 0;
}

int monitor_am_webhook_parse(const char *body, size_t len, struct monitor_am_webhook **out,
                             struct sw_err *err)
{
    json_t *root = NULL, *alerts, *version;
    struct monitor_am_webhook *w = xcalloc(1, sizeof(*w));
    int rc;
    *out = NULL;
    if (len > MONITOR_HOOK_BODY_MAX) {
        rc = sw_err_set(err, SW_EINVAL, "webhook: more than %d bytes", MONITOR_HOOK_BODY_MAX);
        goto out;
    }
    if ((rc = json_doc_parse("webhook", body, len, &root, err)))
        goto out;
    rc = SW_EINVAL;
    version = json_object_get(root, "version");
    if (!json_is_object(root)) {
        sw_err_set(err, rc, "webhook: expected a JSON object (Alertmanager's webhook)");
        goto out;
    }
    if (!json_is_string(version) || strcmp(json_string_value(version), "4") != 0) {
        sw_err_set(err, rc, "webhook: version: expected \"4\" (Alertmanager's webhook format)");
        goto out;
    }
    if ((w->firing = status_of(json_object_get(root, "status"))) < 0) {
        sw_err_set(err, rc, "webhook: status: expected \"firing\" or \"resolved\"");
        goto out;
    }
    alerts = json_object_get(root, "alerts");
    if (!json_is_array(alerts) || json_array_size(alerts) > MONITOR_AM_ALERTS_MAX) {
        sw_err_set(err, rc, "webhook: alerts: expected an array of at most %d alerts",
                   MONITOR_AM_ALERTS_MAX);
        goto out;
    }
    w->alerts = xcalloc(json_array_size(alerts) + 1, sizeof(*w->alerts));
    for (size_t i = 0; i < json_array_size(alerts); i++) {
        /* Counted first: a half-parsed alert is freed with the others. */
        w->nalerts++;
        if (parse_alert(json_array_get(alerts, i), i, &w->alerts[i], err))
            goto out;
    }
    rc = 0;
    *out = w;
    w = NULL;
out:
    json_decref(root);
    monitor_am_webhook_free(w);
    return rc;
}

/* ---- the hook ---------------------------------------------------------------------- */

struct seen {
    char fingerprint[17];
    int64_t starts_ms;
};

struct monitor_hook {
    char token_hash[SHA256_HEX_LEN + 1];
    monitor_critical_fn *on_critical;
    void *arg;
    pthread_mutex_t lock; /* guards seen */
    struct seen *seen;    /* a ring: the oldest is forgotten first */
    size_t nseen, first;
};

int monitor_hook_new(const struct monitor_config *c, monitor_critical_fn *on_critical, void *arg,
                     struct monitor_hook **out, struct sw_err *err)
{
    char *data = NULL;
    size_t len = 0;
    int rc;
    *out = NULL;
    if (!c->webhook_token_file)
        return sw_err_set(err, SW_EINVAL, "%s: no webhook_token_file: the hook is off",
                          c->file ? c->file : "monitor.yml");
    if ((rc = file_read_all(c->webhook_token_file, &data, &len, err)))
        return rc;
    while (len && isspace((unsigned char)data[len - 1]))
        len--;
    int ok = len >= TOKEN_MIN && len <= TOKEN_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = data[i] > ' ' && data[i] < 0x7f;
    if (!ok) {
        free(data);
        return sw_err_set(err, SW_EINVAL,
                          "%s: expected a token of %d to %d visible ASCII characters (such as "
                          "the output of 'openssl rand -hex 32')",
                          c->webhook_token_file, TOKEN_MIN, TOKEN_MAX);
    }
    struct monitor_hook *h = xcalloc(1, sizeof(*h));
    /* Only the hash is kept and compared: equal lengths, and the secret
     * itself never sits in memory a crash dump would show beside requests. */
    sha256_hex(data, len, h->token_hash);
    explicit_bzero(data, len);
    free(data);
    h->on_critical = on_critical;
    h->arg = arg;
    pthread_mutex_init(&h->lock, NULL);
    h->seen = xcalloc(MONITOR_HOOK_SEEN_MAX, sizeof(*h->seen));
    *out = h;
    return 0;
}

void monitor_hook_free(struct monitor_hook *h)
{
    if (!h)
        return;
    free(h->seen);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* RFC 9110 §11.6.2, §11.4: "Bearer" (the scheme is case-insensitive, §11.1),
 * one or more spaces, the token. 1 when it is h's token. */
static int authorized(const struct monitor_hook *h, const char *authz, size_t len)
{
    char hex[SHA256_HEX_LEN + 1];
    size_t i = 6;
    if (!authz || len < 7 || strncasecmp(authz, "Bearer", 6) != 0 || authz[6] != ' ')
        return 0;
    while (i < len && authz[i] == ' ')
        i++;
    if (i == len)
        return 0;
    sha256_hex(authz + i, len - i, hex);
    /* The hashes are compared in constant time: how far a guess matched must
     * not show in how long the refusal took. */
    unsigned char diff = 0;
    for (size_t k = 0; k < SHA256_HEX_LEN; k++)
        diff |= (unsigned char)(hex[k] ^ h->token_hash[k]);
    return diff == 0;
}

static size_t seen_find(const struct monitor_hook *h, const char *fp, int64_t starts, int any)
{
    for (size_t k = 0; k < h->nseen; k++) {
        size_t i = (h->first + k) % MONITOR_HOOK_SEEN_MAX;
        if (!strcmp(h->seen[i].fingerprint, fp) && (any || h->seen[i].starts_ms == starts))
            return i;
    }
    return (size_t)-1;
}

static void seen_add(struct monitor_hook *h, const char *fp, int64_t starts)
{
    if (h->nseen == MONITOR_HOOK_SEEN_MAX) {
        h->first = (h->first + 1) % MONITOR_HOOK_SEEN_MAX;
        h->nseen--;
    }
    size_t i = (h->first + h->nseen++) % MONITOR_HOOK_SEEN_MAX;
    memcpy(h->seen[i].fingerprint, fp, 17);
    h->seen[i].starts_ms = starts;
}

/* Forgets every incident of fp: it resolved, so its next firing is news. */
static void seen_forget(struct monitor_hook *h, const char *fp)
{
    size_t i;
    while ((i = seen_find(h, fp, 0, 1)) != (size_t)-1)
        h->seen[i].fingerprint[0] = '\0'; /* a hole matching nothing; aged out in turn */
}

static void json_error(struct buf *out, const char *msg)
{
    json_t *o = json_object();
    struct buf b = BUF_INIT;
    buf_add_escaped(&b, msg);
    json_object_set_new(o, "error", json_string(b.data ? b.data : ""));
    char *s = json_dumps(o, JSON_COMPACT);
    buf_adds(out, s ? s : "{}");
    buf_adds(out, "\n");
    free(s);
    json_decref(o);
    buf_free(&b);
}

int monitor_hook_handle(struct monitor_hook *h, const char *authz, size_t authz_len,
                        const char *body, size_t len, struct buf *out)
{
    struct monitor_am_webhook *w = NULL;
    struct sw_err err = {0};
    size_t critical = 0, duplicate = 0, ignored = 0;
    if (!body) /* a POST without a body */
        body = "", len = 0;
    if (!authorized(h, authz, authz_len)) {
        json_error(out, "a bearer token is required (monitor.webhook_token_file)");
        return 401;
    }
    if (monitor_am_webhook_parse(body, len, &w, &err)) {
        json_error(out, err.msg);
        return 400;
    }
    /* Which alerts are new is decided under the lock, all at once; the calls
     * are made after it, so a slow callback never holds other requests. */
    unsigned char *call = xcalloc(w->nalerts + 1, 1);
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < w->nalerts; i++) {
        const struct monitor_am_alert *a = &w->alerts[i];
        const char *env = monitor_am_label(a, "env"), *sev = monitor_am_label(a, "severity");
        if (!a->firing) {
            seen_forget(h, a->fingerprint);
            ignored++;
        } else if (!sev || strcmp(sev, "critical") != 0 || !env || env_name_check(env, NULL)) {
            ignored++;
        } else if (seen_find(h, a->fingerprint, a->starts_ms, 0) != (size_t)-1) {
            duplicate++;
        } else {
            seen_add(h, a->fingerprint, a->starts_ms);
            call[i] = 1;
            critical++;
        }
    }
    pthread_mutex_unlock(&h->lock);
    for (size_t i = 0; i < w->nalerts; i++)
        if (call[i] && h->on_critical) {
            const struct monitor_am_alert *a = &w->alerts[i];
            const char *name = monitor_am_label(a, "alertname");
            h->on_critical(h->arg, monitor_am_label(a, "env"), name ? name : "", a->fingerprint,
                           a->value);
        }
    buf_addf(out, "{\"critical\":%zu,\"duplicate\":%zu,\"ignored\":%zu}\n", critical, duplicate,
             ignored);
    free(call);
    monitor_am_webhook_free(w);
    return 200;
}
