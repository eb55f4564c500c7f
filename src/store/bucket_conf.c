/*
 * .slipway/infra.yml: what `slipway infra` makes of the store's bucket, over
 * slipway's defaults. Loaded as a YAML tree with positions (base:
 * yaml_doc_parse) so every error points at the file, line and column of the
 * offending node. The schema is closed, as the environment files' is: a
 * misspelt "noncurent_days" silently ignored would be a rule that is not there.
 */
#include "store/s3conf.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAYS_MAX 36500
#define KMS_KEY_MAX 2048
#define LOG_PREFIX_MAX 512

void store_bucket_settings_defaults(struct store_bucket_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->versioning = 1;
    s->block_public_acls = s->ignore_public_acls = 1;
    s->block_public_policy = s->restrict_public_buckets = 1;
    s->deny_insecure_transport = 1;
    s->noncurrent_days = 30;
    s->abort_multipart_days = 1;
    s->logs_days = 90;
}

void store_bucket_settings_free(struct store_bucket_settings *s)
{
    if (!s)
        return;
    free(s->kms_key_id);
    free(s->log_bucket);
    free(s->log_prefix);
    s->kms_key_id = s->log_bucket = s->log_prefix = NULL;
}

/* What a node is, for "got '...'" in messages. */
static const char *shown(const struct yaml_node *v)
{
    const char *s = yaml_scalar(v);
    if (s)
        return s;
    return v->kind == YAML_NODE_MAP ? "(a mapping)" : "(a list)";
}

static int want_bool(const char *key, const struct yaml_node *v, int *out, struct sw_err *err)
{
    if (yaml_bool(v, out) != 0)
        return yaml_err(err, v, "%s: expected true or false, got '%s'", key, shown(v));
    return 0;
}

/* A number of days, or false for no rule. */
static int want_days(const char *key, const struct yaml_node *v, int *out, struct sw_err *err)
{
    int b;
    int64_t n;
    if (yaml_bool(v, &b) == 0 && !b) {
        *out = 0;
        return 0;
    }
    if (yaml_int(v, 1, DAYS_MAX, &n) != 0)
        return yaml_err(err, v,
                        "%s: expected a number of days from 1 to %d, or false for no rule, got "
                        "'%s'",
                        key, DAYS_MAX, shown(v));
    *out = (int)n;
    return 0;
}

static int want_map(const char *key, const struct yaml_node *v, const char *keys,
                    struct sw_err *err)
{
    if (v->kind != YAML_NODE_MAP)
        return yaml_err(err, v, "%s: expected a mapping (%s), got '%s'", key, keys, shown(v));
    return 0;
}

/* Printable ASCII without spaces: a KMS key id, ARN or alias. */
static int graph_ascii(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return 0;
    return 1;
}

static int parse_encryption(const struct yaml_node *m, struct store_bucket_settings *s,
                            struct sw_err *err)
{
    static const char keys[] = "type, kms_key_id";
    int rc = want_map("encryption", m, keys, err);
    const struct yaml_node *kms = NULL;
    for (size_t i = 0; !rc && i < m->len; i++) {
        const struct yaml_node *k = m->pairs[i].key, *v = m->pairs[i].value;
        const char *t = yaml_scalar(v);
        if (!strcmp(k->str, "type")) {
            if (t && !strcmp(t, "AES256"))
                s->sse_kms = 0;
            else if (t && !strcmp(t, "aws:kms"))
                s->sse_kms = 1;
            else
                rc = yaml_err(err, v, "encryption.type: expected AES256 or aws:kms, got '%s'",
                              shown(v));
        } else if (!strcmp(k->str, "kms_key_id")) {
            if (!t || !graph_ascii(t, KMS_KEY_MAX))
                rc = yaml_err(err, v,
                              "encryption.kms_key_id: expected a KMS key id, ARN or alias/NAME "
                              "(1 to %d printable characters without spaces), got '%s'",
                              KMS_KEY_MAX, shown(v));
            else {
                free(s->kms_key_id);
                s->kms_key_id = xstrdup(t);
                kms = v;
            }
        } else {
            rc = yaml_err(err, k, "encryption: unknown key '%s' (expected %s)", k->str, keys);
        }
    }
    if (!rc && kms && !s->sse_kms)
        rc = yaml_err(err, kms, "encryption.kms_key_id: expected only with type: aws:kms");
    return rc;
}

static int parse_pab(const struct yaml_node *v, struct store_bucket_settings *s, struct sw_err *err)
{
    static const char keys[] =
        "block_public_acls, ignore_public_acls, block_public_policy, restrict_public_buckets";
    int all;
    if (v->kind == YAML_NODE_SCALAR) {
        if (yaml_bool(v, &all) != 0)
            return yaml_err(err, v,
                            "public_access_block: expected true or false (all four flags) or a "
                            "mapping (%s), got '%s'",
                            keys, shown(v));
        s->block_public_acls = s->ignore_public_acls = all;
        s->block_public_policy = s->restrict_public_buckets = all;
        return 0;
    }
    int rc = want_map("public_access_block", v, keys, err);
    for (size_t i = 0; !rc && i < v->len; i++) {
        const struct yaml_node *k = v->pairs[i].key, *x = v->pairs[i].value;
        int *flag = !strcmp(k->str, "block_public_acls")         ? &s->block_public_acls
                    : !strcmp(k->str, "ignore_public_acls")      ? &s->ignore_public_acls
                    : !strcmp(k->str, "block_public_policy")     ? &s->block_public_policy
                    : !strcmp(k->str, "restrict_public_buckets") ? &s->restrict_public_buckets
                                                                 : NULL;
        if (!flag) {
            rc = yaml_err(err, k, "public_access_block: unknown key '%s' (expected %s)", k->str,
                          keys);
        } else {
            char key[96];
            snprintf(key, sizeof(key), "public_access_block.%s", k->str);
            rc = want_bool(key, x, flag, err);
        }
    }
    return rc;
}

static int parse_lifecycle(const struct yaml_node *m, struct store_bucket_settings *s,
                           struct sw_err *err)
{
    static const char keys[] = "noncurrent_days, abort_multipart_days, logs_days";
    int rc = want_map("lifecycle", m, keys, err);
    for (size_t i = 0; !rc && i < m->len; i++) {
        const struct yaml_node *k = m->pairs[i].key, *v = m->pairs[i].value;
        int *days = !strcmp(k->str, "noncurrent_days")        ? &s->noncurrent_days
                    : !strcmp(k->str, "abort_multipart_days") ? &s->abort_multipart_days
                    : !strcmp(k->str, "logs_days")            ? &s->logs_days
                                                              : NULL;
        if (!days) {
            rc = yaml_err(err, k, "lifecycle: unknown key '%s' (expected %s)", k->str, keys);
        } else {
            char key[64];
            snprintf(key, sizeof(key), "lifecycle.%s", k->str);
            rc = want_days(key, v, days, err);
        }
    }
    return rc;
}

/* A key prefix for the logs: printable ASCII without spaces or backslashes,
 * not starting with '/', at most LOG_PREFIX_MAX bytes; "" is the whole bucket. */
static int log_prefix_ok(const char *p)
{
    size_t n = strlen(p);
    if (n > LOG_PREFIX_MAX || p[0] == '/')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e || p[i] == '\\')
            return 0;
    return 1;
}

static int parse_logging(const struct yaml_node *m, struct store_bucket_settings *s,
                         struct sw_err *err)
{
    static const char keys[] = "bucket, prefix";
    if (yaml_is_null(m))
        return 0; /* not managed */
    int rc = want_map("logging", m, keys, err);
    const struct yaml_node *bucket = NULL;
    for (size_t i = 0; !rc && i < m->len; i++) {
        const struct yaml_node *k = m->pairs[i].key, *v = m->pairs[i].value;
        const char *t = yaml_scalar(v);
        if (!strcmp(k->str, "bucket")) {
            const char *why = t ? s3conf_bucket_problem(t) : "is not a name";
            if (why)
                rc = yaml_err(err, v, "logging.bucket: expected a bucket name, got '%s' (it %s)",
                              shown(v), why);
            else {
                free(s->log_bucket);
                s->log_bucket = xstrdup(t);
                bucket = v;
            }
        } else if (!strcmp(k->str, "prefix")) {
            if (!t || v->kind != YAML_NODE_SCALAR || !log_prefix_ok(t))
                rc = yaml_err(err, v,
                              "logging.prefix: expected a key prefix such as logs/site/ "
                              "(printable ASCII without spaces or backslashes, not starting "
                              "with '/', at most %d bytes), got '%s'",
                              LOG_PREFIX_MAX, shown(v));
            else {
                free(s->log_prefix);
                s->log_prefix = xstrdup(t);
            }
        } else {
            rc = yaml_err(err, k, "logging: unknown key '%s' (expected %s)", k->str, keys);
        }
    }
    if (!rc && !bucket)
        rc = yaml_err(err, m, "logging: missing key 'bucket' (expected the logs bucket's name)");
    return rc;
}

static int parse_doc(const struct yaml_doc *doc, struct store_bucket_settings *out,
                     struct sw_err *err)
{
    static const char keys[] = "versioning, encryption, public_access_block, "
                               "deny_insecure_transport, lifecycle, logging";
    const struct yaml_node *root = doc->root;
    if (yaml_is_null(root))
        return 0; /* an empty file: the defaults */
    if (root->kind != YAML_NODE_MAP)
        return yaml_err(err, root, "expected a mapping of settings (%s)", keys);
    int rc = 0;
    for (size_t i = 0; !rc && i < root->len; i++) {
        const struct yaml_node *k = root->pairs[i].key, *v = root->pairs[i].value;
        if (!strcmp(k->str, "versioning"))
            rc = want_bool("versioning", v, &out->versioning, err);
        else if (!strcmp(k->str, "encryption"))
            rc = parse_encryption(v, out, err);
        else if (!strcmp(k->str, "public_access_block"))
            rc = parse_pab(v, out, err);
        else if (!strcmp(k->str, "deny_insecure_transport"))
            rc = want_bool("deny_insecure_transport", v, &out->deny_insecure_transport, err);
        else if (!strcmp(k->str, "lifecycle"))
            rc = parse_lifecycle(v, out, err);
        else if (!strcmp(k->str, "logging"))
            rc = parse_logging(v, out, err);
        else
            rc = yaml_err(err, k, "unknown key '%s' (expected %s)", k->str, keys);
    }
    return rc;
}

int store_bucket_settings_parse(const char *data, size_t len, const char *name,
                                struct store_bucket_settings *out, struct sw_err *err)
{
    store_bucket_settings_defaults(out);
    struct yaml_doc *doc = NULL;
    int rc = yaml_doc_parse(data, len, name, NULL, &doc, err);
    if (!rc)
        rc = parse_doc(doc, out, err);
    yaml_doc_free(doc);
    return rc;
}

int store_bucket_settings_load(const char *path, struct store_bucket_settings *out,
                               struct sw_err *err)
{
    store_bucket_settings_defaults(out);
    struct yaml_doc *doc = NULL;
    int rc = yaml_doc_load(path, NULL, &doc, err);
    if (rc == SW_ENOTFOUND)
        return 0; /* no file: the defaults */
    if (!rc)
        rc = parse_doc(doc, out, err);
    yaml_doc_free(doc);
    return rc;
}
