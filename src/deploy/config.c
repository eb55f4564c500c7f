/*
 * Environment files: ".slipway/environments/<name>.yml", loaded as a YAML
 * tree with positions (base: yaml_doc_parse) so every error can point at the
 * file, line and column of the offending node. The schema is closed: an unknown key is an error,
 * because a misspelt "keep_previos" silently ignored would be a rollback that is not there when it
 * is needed.
 */
#include "deploy/deploy.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_KEEP_PREVIOUS_MS (24LL * 3600 * 1000)
#define DEFAULT_RETAIN 20
#define DEFAULT_APPROVAL_TIMEOUT_MS (24LL * 3600 * 1000)

const char *deploy_strategy_name(enum deploy_strategy s)
{
    return s == STRATEGY_BLUE_GREEN ? "blue-green" : "direct";
}

const char *deploy_slot_name(int slot)
{
    return slot == SLOT_BLUE ? "blue" : slot == SLOT_GREEN ? "green" : NULL;
}

int env_name_check(const char *name, struct sw_err *err)
{
    size_t n = strlen(name);
    int ok =
        n >= 1 && n <= 63 && (islower((unsigned char)name[0]) || isdigit((unsigned char)name[0]));
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        ok = islower(c) || isdigit(c) || c == '-' || c == '_';
    }
    if (!ok)
        return sw_err_set(err, SW_EINVAL,
                          "invalid environment name '%s' (expected lowercase letters, digits, "
                          "'-' or '_', starting with a letter or digit, at most 63)",
                          name);
    return 0;
}

void env_config_free(struct env_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ncache; i++) {
        free(c->cache[i].pattern);
        free(c->cache[i].policy);
    }
    free(c->cache);
    for (size_t i = 0; i < c->approval.napprovers; i++)
        free(c->approval.approvers[i]);
    free(c->approval.approvers);
    for (size_t i = 0; i < c->deploy_from.nbranches; i++)
        free(c->deploy_from.branches[i].pattern);
    free(c->deploy_from.branches);
    for (size_t i = 0; i < c->deploy_from.ntags; i++)
        free(c->deploy_from.tags[i].pattern);
    free(c->deploy_from.tags);
    free(c->name);
    free(c->file);
    free(c->listen);
    free(c->preview);
    free(c->spa_fallback);
    free(c);
}

static int want_string(const char *key, const struct yaml_node *v, char **out, struct sw_err *err)
{
    const char *s = yaml_scalar(v);
    if (!s || !*s)
        return yaml_err(err, v, "%s: expected a non-empty string", key);
    free(*out);
    *out = xstrdup(s);
    return 0;
}

/* host:port with a port in 1..65535; host may be "[::1]". */
static int want_addr(const char *key, const struct yaml_node *v, char **out, struct sw_err *err)
{
    const char *s = yaml_scalar(v);
    const char *colon = s ? strrchr(s, ':') : NULL;
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!s || !colon || colon == s || !end || *end || end == colon + 1 || port < 1 || port > 65535)
        return yaml_err(err, v,
                        "%s: expected an address HOST:PORT such as 127.0.0.1:8081, got '%s'", key,
                        s ? s : "(not a scalar)");
    return want_string(key, v, out, err);
}

static int parse_cache(struct env_config *cfg, const struct yaml_node *m, struct sw_err *err)
{
    if (m->kind != YAML_NODE_MAP)
        return yaml_err(err, m, "cache: expected a mapping of path pattern to Cache-Control value");
    cfg->cache = xcalloc(m->len, sizeof(*cfg->cache));
    for (size_t i = 0; i < m->len; i++) {
        const struct yaml_node *k = m->pairs[i].key, *v = m->pairs[i].value;
        const char *ks = k->str, *vs = yaml_scalar(v);
        if (!*ks)
            return yaml_err(err, k, "cache: expected a path pattern as key");
        if (!vs || !*vs || strpbrk(vs, "\r\n"))
            return yaml_err(err, v, "cache: '%s': expected a Cache-Control value on one line", ks);
        cfg->cache[cfg->ncache].pattern = xstrdup(ks);
        cfg->cache[cfg->ncache++].policy = xstrdup(vs);
    }
    return 0;
}

int env_approver_name_valid(const char *name)
{
    if (!name || !*name || !text_valid(name, ENV_APPROVER_NAME_MAX, 0))
        return 0;
    return !strpbrk(name, " ,\t");
}

/* approval: {required, approvers, timeout, allow_self_approval}. */
static int parse_approval(struct env_config *cfg, const struct yaml_node *m, struct sw_err *err)
{
    struct env_approval *a = &cfg->approval;
    const struct yaml_node *required = NULL, *approvers_key = NULL;
    int64_t n = 1;

    if (m->kind != YAML_NODE_MAP)
        return yaml_err(err, m,
                        "approval: expected a mapping (required, approvers, timeout, "
                        "allow_self_approval)");
    a->timeout_ms = DEFAULT_APPROVAL_TIMEOUT_MS;
    for (size_t i = 0; i < m->len; i++) {
        const struct yaml_node *k = m->pairs[i].key, *v = m->pairs[i].value;
        const char *s = yaml_scalar(v);
        if (!strcmp(k->str, "required")) {
            if (yaml_int(v, 1, ENV_APPROVERS_MAX, &n) != 0)
                return yaml_err(err, v,
                                "approval.required: expected a whole number from 1 to %d, got "
                                "'%s'",
                                ENV_APPROVERS_MAX, s ? s : "(not a scalar)");
            required = v;
        } else if (!strcmp(k->str, "approvers")) {
            if (v->kind != YAML_NODE_SEQ || v->len == 0 || v->len > ENV_APPROVERS_MAX)
                return yaml_err(err, v,
                                "approval.approvers: expected a list of 1 to %d names, such as "
                                "[alice, bob]",
                                ENV_APPROVERS_MAX);
            a->approvers = xcalloc(v->len, sizeof(*a->approvers));
            for (size_t j = 0; j < v->len; j++) {
                const char *name = yaml_scalar(v->items[j]);
                if (!env_approver_name_valid(name))
                    return yaml_err(err, v->items[j],
                                    "approval.approvers: expected a name (printable, without "
                                    "blanks or commas), got '%s'",
                                    name ? name : "(not a scalar)");
                for (size_t k2 = 0; k2 < a->napprovers; k2++)
                    if (!strcmp(a->approvers[k2], name))
                        return yaml_err(err, v->items[j],
                                        "approval.approvers: '%s' is listed twice", name);
                a->approvers[a->napprovers++] = xstrdup(name);
            }
            approvers_key = k;
        } else if (!strcmp(k->str, "timeout")) {
            if (!s || duration_parse(s, &a->timeout_ms) != 0 || a->timeout_ms < 1 ||
                a->timeout_ms > ENV_APPROVAL_TIMEOUT_MAX_MS)
                return yaml_err(err, v,
                                "approval.timeout: expected a duration from 1s to 30d such as "
                                "30m or 24h, got '%s'",
                                s ? s : "(not a scalar)");
        } else if (!strcmp(k->str, "allow_self_approval")) {
            if (yaml_bool(v, &a->allow_self_approval) != 0)
                return yaml_err(err, v,
                                "approval.allow_self_approval: expected true or false, got '%s'",
                                s ? s : "(not a scalar)");
        } else {
            return yaml_err(err, k,
                            "approval: unknown key '%s' (expected required, approvers, timeout or "
                            "allow_self_approval)",
                            k->str);
        }
    }
    if (!approvers_key)
        return yaml_err(err, m, "approval: missing key 'approvers' (expected a list of names)");
    if ((size_t)n > a->napprovers)
        return yaml_err(err, required,
                        "approval.required: %lld approvals needed but only %zu approvers listed "
                        "(expected at most %zu)",
                        (long long)n, a->napprovers, a->napprovers);
    a->required = (int)n;
    return 0;
}

/* One list of deploy_from (branches or tags). */
static int parse_patterns(const char *key, const struct yaml_node *v, struct env_ref_pattern **out,
                          size_t *n, struct sw_err *err)
{
    if (v->kind != YAML_NODE_SEQ || v->len > ENV_PATTERNS_MAX)
        return yaml_err(err, v,
                        "deploy_from.%s: expected a list of at most %d patterns, such as %s", key,
                        ENV_PATTERNS_MAX, !strcmp(key, "tags") ? "['v*.*.*']" : "[main]");
    *out = xcalloc(v->len ? v->len : 1, sizeof(**out));
    for (size_t i = 0; i < v->len; i++) {
        const char *p = yaml_scalar(v->items[i]);
        if (!p || !*p || !text_valid(p, 1024, 0))
            return yaml_err(err, v->items[i],
                            "deploy_from.%s: expected a pattern (a non-empty line), got '%s'", key,
                            p ? p : "(not a scalar)");
        (*out)[*n].pattern = xstrdup(p);
        (*out)[*n].line = v->items[i]->line;
        (*out)[(*n)++].col = v->items[i]->col;
    }
    return 0;
}

/* deploy_from: {branches, tags}. */
static int parse_deploy_from(struct env_config *cfg, const struct yaml_node *m, struct sw_err *err)
{
    struct env_deploy_from *d = &cfg->deploy_from;
    if (m->kind != YAML_NODE_MAP || m->len == 0)
        return yaml_err(err, m,
                        "deploy_from: expected a mapping of branches and/or tags to lists of "
                        "patterns");
    for (size_t i = 0; i < m->len; i++) {
        const struct yaml_node *k = m->pairs[i].key, *v = m->pairs[i].value;
        int rc;
        if (!strcmp(k->str, "branches"))
            rc = parse_patterns("branches", v, &d->branches, &d->nbranches, err);
        else if (!strcmp(k->str, "tags"))
            rc = parse_patterns("tags", v, &d->tags, &d->ntags, err);
        else
            rc = yaml_err(err, k, "deploy_from: unknown key '%s' (expected branches or tags)",
                          k->str);
        if (rc)
            return rc;
    }
    d->present = 1;
    return 0;
}

/* errors: {regressed_404}. 5xx always count: a key that would turn them off is refused by
 * name rather than as unknown, so the reader learns why. */
static int parse_errors(struct env_config *cfg, const struct yaml_node *m, struct sw_err *err)
{
    if (m->kind != YAML_NODE_MAP)
        return yaml_err(err, m, "errors: expected a mapping such as {regressed_404: true}");
    for (size_t i = 0; i < m->len; i++) {
        const struct yaml_node *k = m->pairs[i].key, *v = m->pairs[i].value;
        const char *s = yaml_scalar(v);
        if (!strcmp(k->str, "regressed_404")) {
            if (yaml_bool(v, &cfg->errors.regressed_404) != 0)
                return yaml_err(err, v, "errors.regressed_404: expected true or false, got '%s'",
                                s ? s : "(not a scalar)");
        } else if (!strcmp(k->str, "5xx")) {
            return yaml_err(err, k,
                            "errors: 5xx responses always count as errors and cannot be turned "
                            "off (expected regressed_404)");
        } else {
            return yaml_err(err, k, "errors: unknown key '%s' (expected regressed_404)", k->str);
        }
    }
    return 0;
}

/* watch: {duration: 10m, on_critical: rollback|notify}. duration is required:
 * a watch of no stated length would be a guess about the reader's traffic. */
static int parse_watch(struct env_config *cfg, const struct yaml_node *m, struct sw_err *err)
{
    if (m->kind != YAML_NODE_MAP)
        return yaml_err(err, m,
                        "watch: expected a mapping such as {duration: 10m, on_critical: rollback}");
    struct env_watch *w = &cfg->watch;
    w->on_critical = ENV_WATCH_ROLLBACK;
    for (size_t i = 0; i < m->len; i++) {
        const struct yaml_node *k = m->pairs[i].key, *v = m->pairs[i].value;
        const char *s = yaml_scalar(v);
        if (!strcmp(k->str, "duration")) {
            if (!s || duration_parse(s, &w->duration_ms) != 0 || w->duration_ms < 1000 ||
                w->duration_ms > ENV_WATCH_MAX_MS)
                return yaml_err(err, v,
                                "watch.duration: expected a duration from 1s to 7d such as "
                                "10m, got '%s'",
                                s ? s : "(not a scalar)");
        } else if (!strcmp(k->str, "on_critical")) {
            if (s && !strcmp(s, "rollback"))
                w->on_critical = ENV_WATCH_ROLLBACK;
            else if (s && !strcmp(s, "notify"))
                w->on_critical = ENV_WATCH_NOTIFY;
            else
                return yaml_err(err, v, "watch.on_critical: expected rollback or notify, got '%s'",
                                s ? s : "(not a scalar)");
        } else {
            return yaml_err(err, k, "watch: unknown key '%s' (expected duration or on_critical)",
                            k->str);
        }
    }
    if (!w->duration_ms)
        return yaml_err(err, m, "watch: missing key 'duration' (expected a duration such as 10m)");
    return 0;
}

static int parse_key(struct env_config *cfg, const struct yaml_node *k, const struct yaml_node *v,
                     struct sw_err *err)
{
    const char *key = k->str, *s = yaml_scalar(v);
    if (!strcmp(key, "strategy")) {
        if (s && !strcmp(s, "direct"))
            cfg->strategy = STRATEGY_DIRECT;
        else if (s && !strcmp(s, "blue-green"))
            cfg->strategy = STRATEGY_BLUE_GREEN;
        else
            return yaml_err(err, v, "strategy: expected 'direct' or 'blue-green', got '%s'",
                            s ? s : "(not a scalar)");
        return 0;
    }
    if (!strcmp(key, "listen"))
        return want_addr(key, v, &cfg->listen, err);
    if (!strcmp(key, "preview"))
        return want_addr(key, v, &cfg->preview, err);
    if (!strcmp(key, "keep_previous")) {
        if (!s || duration_parse(s, &cfg->keep_previous_ms) != 0)
            return yaml_err(err, v,
                            "keep_previous: expected a duration such as 30m, 24h or 7d, got '%s'",
                            s ? s : "(not a scalar)");
        return 0;
    }
    if (!strcmp(key, "retain_releases")) {
        char *end = NULL;
        long n = s ? strtol(s, &end, 10) : 0;
        if (!s || !*s || *end || n < 1 || n > 100000)
            return yaml_err(err, v,
                            "retain_releases: expected a whole number from 1 to 100000, got '%s'",
                            s ? s : "(not a scalar)");
        cfg->retain_releases = (int)n;
        return 0;
    }
    if (!strcmp(key, "spa_fallback")) {
        if (!s || s[0] != '/')
            return yaml_err(err, v,
                            "spa_fallback: expected a path starting with '/', such as /index.html");
        return want_string(key, v, &cfg->spa_fallback, err);
    }
    if (!strcmp(key, "cache"))
        return parse_cache(cfg, v, err);
    if (!strcmp(key, "approval"))
        return parse_approval(cfg, v, err);
    if (!strcmp(key, "deploy_from"))
        return parse_deploy_from(cfg, v, err);
    if (!strcmp(key, "errors"))
        return parse_errors(cfg, v, err);
    if (!strcmp(key, "watch"))
        return parse_watch(cfg, v, err);
    /* Point at the key, not its value: the key is what is wrong. */
    return yaml_err(err, k,
                    "unknown key '%s' (expected strategy, listen, preview, keep_previous, "
                    "retain_releases, spa_fallback, cache, approval, deploy_from, errors "
                    "or watch)",
                    key);
}

/* "/x/y/staging.yml" → "staging" (malloc'd). */
static char *name_from_file(const char *file)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t n = strlen(base);
    if (str_ends_with(base, ".yml"))
        n -= 4;
    else if (str_ends_with(base, ".yaml"))
        n -= 5;
    return xstrndup(base, n);
}

int env_config_load(const char *file, struct env_config **out, struct sw_err *err)
{
    char *data = NULL;
    size_t len;
    int rc = file_read_all(file, &data, &len, err);
    if (rc)
        return rc;
    struct env_config *cfg = xcalloc(1, sizeof(*cfg));
    cfg->file = xstrdup(file);
    cfg->name = name_from_file(file);
    cfg->strategy = STRATEGY_DIRECT;
    cfg->keep_previous_ms = DEFAULT_KEEP_PREVIOUS_MS;
    cfg->retain_releases = DEFAULT_RETAIN;
    cfg->errors.regressed_404 = 1;
    struct yaml_doc *doc = NULL;
    const struct yaml_node *preview_key = NULL;
    if ((rc = env_name_check(cfg->name, err))) {
        sw_err_prefix(err, "%s", file);
        goto out;
    }
    /* Syntax, a second document ("---", which would otherwise be ignored)
     * and duplicate keys (which would make the file mean two things) are
     * refused by the loader, each at its line and column. */
    if ((rc = yaml_doc_parse(data, len, file, NULL, &doc, err)))
        goto out;
    const struct yaml_node *root = doc->root;
    if (root->kind != YAML_NODE_MAP) {
        rc = yaml_err(err, root, "expected a mapping of settings (strategy: ...)");
        goto out;
    }
    for (size_t i = 0; i < root->len; i++) {
        const struct yaml_node *k = root->pairs[i].key;
        if ((rc = parse_key(cfg, k, root->pairs[i].value, err)))
            goto out;
        if (!strcmp(k->str, "preview"))
            preview_key = k;
    }
    if (!yaml_map_get(root, "strategy")) {
        rc = yaml_err(err, root, "missing key 'strategy' (expected 'direct' or 'blue-green')");
        goto out;
    }
    if (cfg->preview && cfg->strategy != STRATEGY_BLUE_GREEN) {
        rc = yaml_err(err, preview_key,
                      "preview: only a blue-green environment has an idle slot to preview");
        goto out;
    }
    if (cfg->preview && cfg->listen && !strcmp(cfg->preview, cfg->listen)) {
        rc = yaml_err(err, preview_key, "preview: must differ from listen (%s)", cfg->listen);
        goto out;
    }
out:
    yaml_doc_free(doc);
    free(data);
    if (rc)
        env_config_free(cfg);
    else
        *out = cfg;
    return rc;
}

static int cmp_cfg(const void *a, const void *b)
{
    return strcmp((*(struct env_config *const *)a)->name, (*(struct env_config *const *)b)->name);
}

int env_configs_load_dir(const char *dir, struct env_config ***out, size_t *n, struct sw_err *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return sw_err_sys(err, errno, "%s", dir);
    int rc = 0;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' ||
            !(str_ends_with(de->d_name, ".yml") || str_ends_with(de->d_name, ".yaml")))
            continue;
        char *file = path_join(dir, de->d_name);
        struct env_config *cfg;
        rc = env_config_load(file, &cfg, err);
        free(file);
        if (rc)
            break;
        if (*n == cap)
            *out = xrealloc(*out, (cap = cap ? cap * 2 : 8) * sizeof(**out));
        (*out)[(*n)++] = cfg;
    }
    closedir(d);
    if (rc) {
        env_configs_free(*out, *n);
        *out = NULL;
        *n = 0;
        return rc;
    }
    if (*n)
        qsort(*out, *n, sizeof(**out), cmp_cfg);
    return 0;
}

void env_configs_free(struct env_config **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        env_config_free(v[i]);
    free(v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names of dir's environment files, sorted, for "known: ..." (a file
 * that does not load still names an environment the user meant to have). */
static void known_names(const char *dir, struct buf *out)
{
    DIR *d = opendir(dir);
    char **v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        size_t ext = str_ends_with(de->d_name, ".yml")    ? 4
                     : str_ends_with(de->d_name, ".yaml") ? 5
                                                          : 0;
        if (de->d_name[0] == '.' || !ext)
            continue;
        char *name = xstrndup(de->d_name, len - ext);
        if (env_name_check(name, NULL) != 0) {
            free(name);
            continue;
        }
        if (n == cap)
            v = xrealloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));
        v[n++] = name;
    }
    if (d)
        closedir(d);
    if (n)
        qsort(v, n, sizeof(*v), cmp_str);
    for (size_t i = 0; i < n; i++) /* x.yml and x.yaml name one environment */
        if (!i || strcmp(v[i], v[i - 1]) != 0)
            buf_addf(out, "%s%s", out->len ? ", " : "", v[i]);
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int env_config_find(const char *dir, const char *name, struct env_config **out, struct sw_err *err)
{
    *out = NULL;
    int rc = env_name_check(name, err);
    if (rc)
        return rc;
    char *file = xasprintf("%s/%s.yml", dir, name);
    if (access(file, F_OK) != 0) {
        char *alt = xasprintf("%s/%s.yaml", dir, name);
        if (access(alt, F_OK) == 0) {
            free(file);
            file = alt;
        } else {
            free(alt);
        }
    }
    if (access(file, F_OK) != 0) {
        struct buf names = BUF_INIT;
        known_names(dir, &names);
        rc = sw_err_set(err, SW_ENOTFOUND, "unknown environment '%s' (no %s; known: %s)", name,
                        file, names.len ? names.data : "none");
        buf_free(&names);
    } else {
        rc = env_config_load(file, out, err);
    }
    free(file);
    return rc;
}
