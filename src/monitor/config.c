/*
 * .slipway/monitor.yml: where notifications go (Alertmanagers, webhooks),
 * how hard they are tried, and the token Alertmanager must present to the
 * inbound hook. Loaded as a YAML tree with positions and checked against a
 * closed schema, like alerts.yml (rules.c), so a misspelt key is an error at
 * its FILE:LINE:COL and never a notification silently going nowhere.
 *
 * The one idea: every URL is parsed here, once, with libcurl's own URL
 * parser, so the notifier never meets a URL curl would read differently
 * from what the file says.
 */
#include "base/curl.h"
#include "monitor/monitor.h"

#include <stdlib.h>
#include <string.h>

#define MS_DAY (86400LL * 1000)

/* Small bounds: a monitor file is a page of settings. */
static const struct yaml_limits limits = {64 << 10, 2000, 8, 4096};

void monitor_config_free(struct monitor_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nalertmanager; i++)
        free(c->alertmanager[i]);
    for (size_t i = 0; i < c->nwebhooks; i++)
        free(c->webhooks[i]);
    free(c->alertmanager);
    free(c->webhooks);
    free(c->external_url);
    free(c->webhook_token_file);
    free(c->file);
    free(c);
}

static struct monitor_config *config_new(void)
{
    struct monitor_config *c = xcalloc(1, sizeof(*c));
    c->resend_ms = 60 * 1000;
    c->timeout_ms = 10 * 1000;
    c->retries = 5;
    c->backoff_ms = 1000;
    c->backoff_max_ms = 30 * 1000;
    c->queue = 1024;
    return c;
}

/* An http or https URL with a host, in visible ASCII (a space or a control
 * character in a URL is a mistake, not something to percent-encode for the
 * user), no fragment, and for a base URL no query either. Returns the URL
 * as curl reads it back (the scheme lowercased, "/" for an empty path), a
 * base one without its trailing '/', or NULL with why set. */
static char *url_check(const char *s, int base, const char **why)
{
    CURLU *u = NULL;
    char *scheme = NULL, *host = NULL, *frag = NULL, *query = NULL, *full = NULL, *out = NULL;
    size_t n = s ? strlen(s) : 0;
    *why = "expected an http:// or https:// URL";
    if (n == 0 || n > MONITOR_URL_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] >= 0x7f) {
            *why = "a URL is visible ASCII without blanks (percent-encode the rest)";
            return NULL;
        }
    if (sw_curl_load(NULL) != 0) {
        *why = "libcurl cannot be loaded (install libcurl4): URLs cannot be checked";
        return NULL;
    }
    if (!(u = curl_url()))
        return NULL;
    if (curl_url_set(u, CURLUPART_URL, s, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
        goto out;
    if (curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK) {
        *why = "a URL sent to cannot have a #fragment";
        goto out;
    }
    if (base && curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
        *why =
            "an Alertmanager URL is its base (http://host:9093, or with its --web.route-prefix), "
            "without a query: slipway adds /api/v2/alerts";
        goto out;
    }
    if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK)
        goto out;
    n = strlen(full);
    while (base && n > 0 && full[n - 1] == '/')
        n--;
    out = xstrndup(full, n);
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(frag);
    curl_free(query);
    curl_free(full);
    curl_url_cleanup(u);
    return out;
}

static int parse_urls(const struct yaml_node *v, const char *key, int base, char ***out, size_t *n,
                      struct sw_err *err)
{
    if (v->kind != YAML_NODE_SEQ || v->len > MONITOR_TARGETS_MAX)
        return yaml_err(err, v, "notify: %s: expected a list of at most %d URLs", key,
                        MONITOR_TARGETS_MAX);
    *out = xcalloc(v->len ? v->len : 1, sizeof(**out));
    for (size_t i = 0; i < v->len; i++) {
        const char *why = NULL, *s = yaml_scalar(v->items[i]);
        char *url = url_check(s, base, &why);
        if (!url)
            return yaml_err(err, v->items[i], "notify: %s: %s, got '%.200s'", key, why,
                            s ? s : "(not a scalar)");
        for (size_t j = 0; j < *n; j++)
            if (!strcmp((*out)[j], url)) {
                free(url);
                return yaml_err(err, v->items[i], "notify: %s: '%.200s' is listed twice", key, s);
            }
        (*out)[(*n)++] = url;
    }
    return 0;
}

/* A duration from min to max ms: "250ms", "30s", "1m". */
static int want_duration(const struct yaml_node *v, const char *key, int64_t min, int64_t max,
                         int64_t *ms, struct sw_err *err)
{
    const char *s = yaml_scalar(v);
    char lo[32], hi[32];
    int64_t d = 0;
    if (s && v->len <= 32 && duration_parse(s, &d) == 0 && d >= min && d <= max) {
        *ms = d;
        return 0;
    }
    duration_format(min, lo, sizeof(lo));
    duration_format(max, hi, sizeof(hi));
    return yaml_err(err, v,
                    "notify: %s: expected a duration from %s to %s, such as 30s or 1m, "
                    "got '%.60s'",
                    key, min < 1000 ? "1ms" : lo, hi, s ? s : "(not a scalar)");
}

#define NOTIFY_KEYS                                                                                \
    "alertmanager, webhooks, resend, timeout, retries, backoff, backoff_max, queue or "            \
    "external_url"

static int parse_notify(const struct yaml_node *m, struct monitor_config *c, struct sw_err *err)
{
    const struct yaml_node *backoff_node = NULL;
    int rc = 0;
    if (m->kind != YAML_NODE_MAP)
        return yaml_err(err, m,
                        "notify: expected a mapping (alertmanager: [...], webhooks: "
                        "[...], ...)");
    for (size_t i = 0; i < m->len && !rc; i++) {
        const char *key = m->pairs[i].key->str;
        const struct yaml_node *v = m->pairs[i].value;
        if (!strcmp(key, "alertmanager")) {
            rc = parse_urls(v, key, 1, &c->alertmanager, &c->nalertmanager, err);
        } else if (!strcmp(key, "webhooks")) {
            rc = parse_urls(v, key, 0, &c->webhooks, &c->nwebhooks, err);
        } else if (!strcmp(key, "resend")) {
            rc = want_duration(v, key, 100, MS_DAY, &c->resend_ms, err);
        } else if (!strcmp(key, "timeout")) {
            rc = want_duration(v, key, 1, 5 * 60 * 1000, &c->timeout_ms, err);
        } else if (!strcmp(key, "backoff")) {
            rc = want_duration(v, key, 1, 60 * 60 * 1000, &c->backoff_ms, err);
        } else if (!strcmp(key, "backoff_max")) {
            backoff_node = v;
            rc = want_duration(v, key, 1, 60 * 60 * 1000, &c->backoff_max_ms, err);
        } else if (!strcmp(key, "retries")) {
            if (yaml_int(v, 0, 20, &c->retries) < 0)
                rc = yaml_err(err, v,
                              "notify: retries: expected a whole number from 0 to 20, "
                              "got '%.60s'",
                              yaml_scalar(v) ? yaml_scalar(v) : "(not a scalar)");
        } else if (!strcmp(key, "queue")) {
            if (yaml_int(v, 1, 100000, &c->queue) < 0)
                rc = yaml_err(err, v,
                              "notify: queue: expected a whole number from 1 to 100000, "
                              "got '%.60s'",
                              yaml_scalar(v) ? yaml_scalar(v) : "(not a scalar)");
        } else if (!strcmp(key, "external_url")) {
            const char *why = NULL;
            if (!(c->external_url = url_check(yaml_scalar(v), 0, &why)))
                rc = yaml_err(err, v, "notify: external_url: %s, got '%.200s'", why,
                              yaml_scalar(v) ? yaml_scalar(v) : "(not a scalar)");
        } else {
            rc = yaml_err(err, m->pairs[i].key,
                          "notify: unknown key '%s' (expected " NOTIFY_KEYS ")", key);
        }
    }
    if (!rc && c->backoff_max_ms < c->backoff_ms)
        rc = yaml_err(err, backoff_node ? backoff_node : m,
                      "notify: backoff_max: must be at least backoff");
    return rc;
}

static int parse_tree(const struct yaml_doc *doc, const char *base_dir, struct monitor_config *c,
                      struct sw_err *err)
{
    const struct yaml_node *root = doc->root;
    int rc = 0;
    if (root->kind != YAML_NODE_MAP)
        return yaml_err(err, root,
                        "expected a mapping with the keys notify and "
                        "webhook_token_file");
    for (size_t i = 0; i < root->len && !rc; i++) {
        const char *key = root->pairs[i].key->str;
        const struct yaml_node *v = root->pairs[i].value;
        if (!strcmp(key, "notify")) {
            rc = parse_notify(v, c, err);
        } else if (!strcmp(key, "webhook_token_file")) {
            const char *s = yaml_scalar(v);
            if (!s || !*s || !text_valid(s, 4096, 0))
                rc = yaml_err(err, v,
                              "webhook_token_file: expected the path of a file holding "
                              "the token");
            else
                c->webhook_token_file = s[0] == '/' ? xstrdup(s) : path_join(base_dir, s);
        } else {
            rc = yaml_err(err, root->pairs[i].key,
                          "unknown key '%s' (expected notify or webhook_token_file)", key);
        }
    }
    return rc;
}

static int parse_doc(struct yaml_doc *doc, const char *name, const char *base_dir,
                     struct monitor_config **out, struct sw_err *err)
{
    struct monitor_config *c = config_new();
    c->file = xstrdup(name);
    int rc = parse_tree(doc, base_dir, c, err);
    yaml_doc_free(doc);
    if (rc) {
        monitor_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int monitor_config_parse(const char *data, size_t len, const char *name, const char *base_dir,
                         struct monitor_config **out, struct sw_err *err)
{
    struct yaml_doc *doc = NULL;
    *out = NULL;
    int rc = yaml_doc_parse(data, len, name, &limits, &doc, err);
    return rc ? rc : parse_doc(doc, name, base_dir, out, err);
}

int monitor_config_load(const char *path, const char *base_dir, struct monitor_config **out,
                        struct sw_err *err)
{
    struct yaml_doc *doc = NULL;
    *out = NULL;
    int rc = yaml_doc_load(path, &limits, &doc, err);
    if (rc == SW_ENOTFOUND) {
        if (err)
            *err = (struct sw_err){0};
        *out = config_new();
        return 0;
    }
    return rc ? rc : parse_doc(doc, path, base_dir, out, err);
}
