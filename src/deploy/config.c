/*
 * Environment files: ".slipway/environments/<name>.yml", parsed with libyaml's
 * document API so every error can point at the file, line and column of the
 * offending node. The schema is closed: an unknown key is an error, because a
 * misspelt "keep_previos" silently ignored would be a rollback that is not
 * there when it is needed.
 */
#include "deploy/deploy.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define DEFAULT_KEEP_PREVIOUS_MS (24LL * 3600 * 1000)
#define DEFAULT_RETAIN 20

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
    free(c->name);
    free(c->file);
    free(c->listen);
    free(c->preview);
    free(c->spa_fallback);
    free(c);
}

/* Context for error messages: the file and the node being looked at. */
struct ctx {
    const char *file;
    yaml_document_t *doc;
    struct sw_err *err;
};

static int bad(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    sw_err_set(c->err, SW_EINVAL, "%s:%zu:%zu: %s", c->file, n->start_mark.line + 1,
               n->start_mark.column + 1, b.data);
    buf_free(&b);
    return SW_EINVAL;
}

static const char *scalar(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int want_string(struct ctx *c, const char *key, const yaml_node_t *v, char **out)
{
    const char *s = scalar(v);
    if (!s || !*s)
        return bad(c, v, "%s: expected a non-empty string", key);
    free(*out);
    *out = xstrdup(s);
    return 0;
}

/* host:port with a port in 1..65535; host may be "[::1]". */
static int want_addr(struct ctx *c, const char *key, const yaml_node_t *v, char **out)
{
    const char *s = scalar(v);
    const char *colon = s ? strrchr(s, ':') : NULL;
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!s || !colon || colon == s || !end || *end || end == colon + 1 || port < 1 || port > 65535)
        return bad(c, v, "%s: expected an address HOST:PORT such as 127.0.0.1:8081, got '%s'", key,
                   s ? s : "(not a scalar)");
    return want_string(c, key, v, out);
}

static int parse_cache(struct ctx *c, struct env_config *cfg, yaml_node_t *m)
{
    if (m->type != YAML_MAPPING_NODE)
        return bad(c, m, "cache: expected a mapping of path pattern to Cache-Control value");
    size_t n = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
    cfg->cache = xcalloc(n, sizeof(*cfg->cache));
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        const char *ks = scalar(k), *vs = scalar(v);
        if (!ks || !*ks)
            return bad(c, k, "cache: expected a path pattern as key");
        if (!vs || !*vs || strpbrk(vs, "\r\n"))
            return bad(c, v, "cache: '%s': expected a Cache-Control value on one line", ks);
        cfg->cache[cfg->ncache].pattern = xstrdup(ks);
        cfg->cache[cfg->ncache++].policy = xstrdup(vs);
    }
    return 0;
}

static int parse_key(struct ctx *c, struct env_config *cfg, const yaml_node_t *k, yaml_node_t *v)
{
    const char *key = scalar(k), *s = scalar(v);
    if (!strcmp(key, "strategy")) {
        if (s && !strcmp(s, "direct"))
            cfg->strategy = STRATEGY_DIRECT;
        else if (s && !strcmp(s, "blue-green"))
            cfg->strategy = STRATEGY_BLUE_GREEN;
        else
            return bad(c, v, "strategy: expected 'direct' or 'blue-green', got '%s'",
                       s ? s : "(not a scalar)");
        return 0;
    }
    if (!strcmp(key, "listen"))
        return want_addr(c, key, v, &cfg->listen);
    if (!strcmp(key, "preview"))
        return want_addr(c, key, v, &cfg->preview);
    if (!strcmp(key, "keep_previous")) {
        if (!s || duration_parse(s, &cfg->keep_previous_ms) != 0)
            return bad(c, v, "keep_previous: expected a duration such as 30m, 24h or 7d, got '%s'",
                       s ? s : "(not a scalar)");
        return 0;
    }
    if (!strcmp(key, "retain_releases")) {
        char *end = NULL;
        long n = s ? strtol(s, &end, 10) : 0;
        if (!s || !*s || *end || n < 1 || n > 100000)
            return bad(c, v, "retain_releases: expected a whole number from 1 to 100000, got '%s'",
                       s ? s : "(not a scalar)");
        cfg->retain_releases = (int)n;
        return 0;
    }
    if (!strcmp(key, "spa_fallback")) {
        if (!s || s[0] != '/')
            return bad(c, v,
                       "spa_fallback: expected a path starting with '/', such as /index.html");
        return want_string(c, key, v, &cfg->spa_fallback);
    }
    if (!strcmp(key, "cache"))
        return parse_cache(c, cfg, v);
    /* Point at the key, not its value: the key is what is wrong. */
    return bad(c, k,
               "unknown key '%s' (expected strategy, listen, preview, keep_previous, "
               "retain_releases, spa_fallback or cache)",
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
    yaml_parser_t parser;
    yaml_document_t doc;
    int have_doc = 0, have_strategy = 0;
    yaml_node_t *preview_key = NULL;
    struct ctx c = {file, &doc, err};
    if ((rc = env_name_check(cfg->name, err))) {
        sw_err_prefix(err, "%s", file);
        goto out;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = sw_err_set(err, SW_EINVAL, "%s:%zu:%zu: invalid YAML: %s", file,
                        parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                        parser.problem ? parser.problem : "syntax error");
        yaml_parser_delete(&parser);
        goto out;
    }
    have_doc = 1;
    /* A second document ("---") would be silently ignored: refuse it. */
    yaml_document_t extra;
    if (!yaml_parser_load(&parser, &extra)) {
        rc = sw_err_set(err, SW_EINVAL, "%s:%zu:%zu: invalid YAML: %s", file,
                        parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                        parser.problem ? parser.problem : "syntax error");
        yaml_parser_delete(&parser);
        goto out;
    }
    yaml_node_t *second = yaml_document_get_root_node(&extra);
    if (second)
        rc = sw_err_set(err, SW_EINVAL,
                        "%s:%zu:%zu: a second YAML document; an environment file holds one "
                        "mapping",
                        file, second->start_mark.line + 1, second->start_mark.column + 1);
    yaml_document_delete(&extra);
    yaml_parser_delete(&parser);
    if (rc)
        goto out;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        rc = sw_err_set(
            err, SW_EINVAL, "%s:%zu:%zu: expected a mapping of settings (strategy: ...)", file,
            root ? root->start_mark.line + 1 : 1, root ? root->start_mark.column + 1 : 1);
        goto out;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&doc, p->value);
        const char *key = scalar(k);
        if (!key) {
            rc = bad(&c, k, "expected a plain key");
            goto out;
        }
        /* Duplicate keys would make the file mean two things. */
        for (yaml_node_pair_t *q = root->data.mapping.pairs.start; q < p; q++) {
            const char *prev = scalar(yaml_document_get_node(&doc, q->key));
            if (prev && !strcmp(prev, key)) {
                rc = bad(&c, k, "duplicate key '%s'", key);
                goto out;
            }
        }
        if ((rc = parse_key(&c, cfg, k, v)))
            goto out;
        have_strategy |= !strcmp(key, "strategy");
        if (!strcmp(key, "preview"))
            preview_key = k;
    }
    if (!have_strategy) {
        rc = bad(&c, root, "missing key 'strategy' (expected 'direct' or 'blue-green')");
        goto out;
    }
    if (cfg->preview && cfg->strategy != STRATEGY_BLUE_GREEN) {
        rc = bad(&c, preview_key,
                 "preview: only a blue-green environment has an idle slot to preview");
        goto out;
    }
    if (cfg->preview && cfg->listen && !strcmp(cfg->preview, cfg->listen)) {
        rc = bad(&c, preview_key, "preview: must differ from listen (%s)", cfg->listen);
        goto out;
    }
out:
    if (have_doc)
        yaml_document_delete(&doc);
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
