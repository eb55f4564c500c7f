/*
 * The pure half of `slipway infra` (see bucket.h): a bucket's settings as
 * slipway wants them, S3's answers read into the same form, the documents
 * sent to change them, and the comparison between the two.
 *
 * The one idea: compare meanings, never texts. Each answer is parsed into
 * fields (a lifecycle rule into its status, prefix and day counts; a policy
 * statement judged field by field, "*" and {"AWS": "*"} being one
 * principal), so a configuration written by another tool, in another order
 * or with other whitespace, is no drift; and slipway looks only at the rules
 * and statements it names, so the owner's own are neither drift nor lost
 * when slipway writes its own back.
 *
 * Every answer is hostile input: parsed strictly (s3xml, and jansson with
 * duplicate keys refused), bounded (BUCKET_* in bucket.h), and any text kept
 * from it is checked to be printable before it can reach a message.
 */
#include "store/bucket.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"
#define LOG_SERVICE "logging.s3.amazonaws.com"

const char *const bucket_pab_names[PAB_N] = {"BlockPublicAcls", "IgnorePublicAcls",
                                             "BlockPublicPolicy", "RestrictPublicBuckets"};

static void rule_free(struct bucket_rule *r)
{
    free(r->id);
    free(r->prefix);
    memset(r, 0, sizeof(*r));
}

void bucket_state_free(struct bucket_state *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->region);
    free(s->partition);
    free(s->sse_other);
    free(s->kms_key_id);
    free(s->log_source);
    free(s->log_source_prefix);
    for (int k = 0; k < RULE_N; k++) {
        rule_free(&s->rules[k]);
        free(s->rule_ids[k]);
    }
    free(s->log_bucket);
    free(s->log_prefix);
    memset(s, 0, sizeof(*s));
}

const char *bucket_partition(const char *region)
{
    if (str_starts_with(region, "cn-"))
        return "aws-cn";
    if (str_starts_with(region, "us-gov-"))
        return "aws-us-gov";
    return "aws";
}

/* The first 12 hex digits of s's SHA-256: a short, stable name part. */
static void hash12(const char *s, struct buf *out)
{
    char h[SHA256_HEX_LEN + 1];
    sha256_hex(s, strlen(s), h);
    buf_add(out, h, 12);
}

char *bucket_log_prefix(const struct store_bucket_settings *cfg, const char *bucket)
{
    return cfg->log_prefix ? xstrdup(cfg->log_prefix) : xasprintf("logs/%s/", bucket);
}

void bucket_rule_id(int kind, const char *prefix, struct buf *out)
{
    switch (kind) {
    case RULE_NONCURRENT:
        buf_adds(out, "slipway-noncurrent-versions");
        break;
    case RULE_ABORT:
        buf_adds(out, "slipway-abort-multipart");
        break;
    default:
        /* One rule per prefix, so stores under several prefixes of one bucket
         * (and several buckets logging into one) each keep their own. */
        buf_adds(out, "slipway-expire-logs");
        if (strcmp(prefix, "logs/") != 0) {
            buf_adds(out, "-");
            hash12(prefix, out);
        }
    }
}

void bucket_log_sid(const char *source, struct buf *out)
{
    buf_adds(out, "SlipwayAccessLogs");
    hash12(source, out);
}

static void want_rule(struct bucket_state *w, int kind, const char *prefix, int days)
{
    struct buf id = BUF_INIT;
    bucket_rule_id(kind, prefix, &id);
    w->rule_ids[kind] = buf_detach(&id, NULL);
    if (days <= 0)
        return;
    struct bucket_rule *r = &w->rules[kind];
    r->id = xstrdup(w->rule_ids[kind]);
    r->enabled = 1;
    r->prefix = xstrdup(prefix);
    if (kind == RULE_NONCURRENT)
        r->noncurrent_days = days;
    else if (kind == RULE_ABORT)
        r->abort_days = days;
    else
        r->expiration_days = days;
}

void bucket_want(const struct store_bucket_settings *cfg, const char *name, const char *region,
                 const char *store_prefix, int logs, const char *source, const char *source_prefix,
                 struct bucket_state *out)
{
    memset(out, 0, sizeof(*out));
    out->name = xstrdup(name);
    out->region = xstrdup(region);
    out->partition = xstrdup(bucket_partition(region));
    out->exists = 1;
    out->versioning = cfg->versioning ? VERSIONING_ENABLED : VERSIONING_SUSPENDED;
    /* S3 delivers access logs only into a bucket whose default encryption
     * is SSE-S3: the logs bucket is AES256 whatever the store's is. */
    if (logs || !cfg->sse_kms) {
        out->sse = SSE_AES256;
    } else {
        out->sse = SSE_KMS;
        out->kms_key_id = cfg->kms_key_id ? xstrdup(cfg->kms_key_id) : NULL;
    }
    out->pab[PAB_BLOCK_ACLS] = cfg->block_public_acls;
    out->pab[PAB_IGNORE_ACLS] = cfg->ignore_public_acls;
    out->pab[PAB_BLOCK_POLICY] = cfg->block_public_policy;
    out->pab[PAB_RESTRICT] = cfg->restrict_public_buckets;
    out->deny_tls = cfg->deny_insecure_transport ? 1 : 0;
    if (logs) {
        out->log_delivery = 1;
        out->log_source = source ? xstrdup(source) : NULL;
        out->log_source_prefix = source_prefix ? xstrdup(source_prefix) : NULL;
    }
    want_rule(out, RULE_NONCURRENT, "", cfg->noncurrent_days);
    want_rule(out, RULE_ABORT, "", cfg->abort_multipart_days);
    char *lp = logs && source_prefix ? xstrdup(source_prefix) : xasprintf("%slogs/", store_prefix);
    want_rule(out, RULE_LOGS, lp, cfg->logs_days);
    free(lp);
    if (!logs && cfg->log_bucket) {
        out->log_managed = 1;
        out->log_bucket = xstrdup(cfg->log_bucket);
        out->log_prefix = bucket_log_prefix(cfg, name);
    }
}

/* ---- reading S3's answers ---------------------------------------------------------------- */

/* Parses body and checks its root element is root (or alias: what moto
 * answers instead). */
static int doc_open(const char *what, const char *body, size_t len, const char *root,
                    const char *alias, struct s3xml_node **doc, struct sw_err *err)
{
    *doc = NULL;
    int rc = s3xml_parse(body ? body : "", len, doc, err);
    if (rc)
        return sw_err_prefix(err, "%s", what);
    if (strcmp((*doc)->name, root) != 0 && (!alias || strcmp((*doc)->name, alias) != 0)) {
        rc = sw_err_set(err, SW_EINVAL, "%s: expected a %s document, got <%.64s>", what, root,
                        text_valid((*doc)->name, 64, 0) ? (*doc)->name : "?");
        s3xml_free(*doc);
        *doc = NULL;
    }
    return rc;
}

static int text_ok(const char *s, size_t max)
{
    return text_valid(s, max, 0);
}

static const char *str_or(const char *s, const char *dflt)
{
    return s ? s : dflt;
}

int bucket_parse_versioning(const char *body, size_t len, struct bucket_state *have,
                            struct sw_err *err)
{
    static const char what[] = "GetBucketVersioning";
    struct s3xml_node *doc;
    /* moto names the root GetBucketVersioningResponse; AWS, MinIO and the
     * API reference VersioningConfiguration. */
    int rc = doc_open(what, body, len, "VersioningConfiguration", "GetBucketVersioningResponse",
                      &doc, err);
    if (rc)
        return rc;
    const char *st = s3xml_text(doc, "Status");
    if (!st)
        have->versioning = VERSIONING_NEVER;
    else if (!strcmp(st, "Enabled"))
        have->versioning = VERSIONING_ENABLED;
    else if (!strcmp(st, "Suspended"))
        have->versioning = VERSIONING_SUSPENDED;
    else
        rc = sw_err_set(err, SW_EINVAL, "%s: Status: expected Enabled or Suspended", what);
    s3xml_free(doc);
    return rc;
}

int bucket_parse_encryption(const char *body, size_t len, struct bucket_state *have,
                            struct sw_err *err)
{
    static const char what[] = "GetBucketEncryption";
    struct s3xml_node *doc;
    int rc = doc_open(what, body, len, "ServerSideEncryptionConfiguration", NULL, &doc, err);
    if (rc)
        return rc;
    const struct s3xml_node *rule = s3xml_child(doc, "Rule");
    const struct s3xml_node *d =
        rule ? s3xml_child(rule, "ApplyServerSideEncryptionByDefault") : NULL;
    const char *alg = d ? s3xml_text(d, "SSEAlgorithm") : NULL;
    const char *kms = d ? s3xml_text(d, "KMSMasterKeyID") : NULL;
    free(have->sse_other);
    free(have->kms_key_id);
    have->sse_other = have->kms_key_id = NULL;
    have->sse = SSE_NONE;
    if (d && !alg) {
        rc = sw_err_set(err, SW_EINVAL, "%s: a default without an SSEAlgorithm", what);
    } else if (alg && !strcmp(alg, "AES256")) {
        have->sse = SSE_AES256;
    } else if (alg && !strcmp(alg, "aws:kms")) {
        have->sse = SSE_KMS;
    } else if (alg && text_ok(alg, 64) && *alg) {
        have->sse = SSE_OTHER; /* aws:kms:dsse, or what a compatible service invents */
        have->sse_other = xstrdup(alg);
    } else if (alg) {
        rc = sw_err_set(err, SW_EINVAL, "%s: SSEAlgorithm: expected printable text", what);
    }
    if (!rc && kms && *kms) {
        if (!text_ok(kms, BUCKET_TEXT_MAX))
            rc = sw_err_set(err, SW_EINVAL,
                            "%s: KMSMasterKeyID: expected printable text of at most %d bytes", what,
                            BUCKET_TEXT_MAX);
        else
            have->kms_key_id = xstrdup(kms);
    }
    s3xml_free(doc);
    return rc;
}

static int parse_bool(const char *t, int *out)
{
    if (!t)
        *out = 0;
    else if (!strcmp(t, "true"))
        *out = 1;
    else if (!strcmp(t, "false"))
        *out = 0;
    else
        return -1;
    return 0;
}

int bucket_parse_pab(const char *body, size_t len, struct bucket_state *have, struct sw_err *err)
{
    static const char what[] = "GetPublicAccessBlock";
    struct s3xml_node *doc;
    int rc = doc_open(what, body, len, "PublicAccessBlockConfiguration", NULL, &doc, err);
    for (int i = 0; !rc && i < PAB_N; i++)
        if (parse_bool(s3xml_text(doc, bucket_pab_names[i]), &have->pab[i]) < 0)
            rc = sw_err_set(err, SW_EINVAL, "%s: %s: expected true or false", what,
                            bucket_pab_names[i]);
    s3xml_free(doc);
    return rc;
}

int bucket_parse_logging(const char *body, size_t len, struct bucket_state *have,
                         struct sw_err *err)
{
    static const char what[] = "GetBucketLogging";
    struct s3xml_node *doc;
    int rc = doc_open(what, body, len, "BucketLoggingStatus", NULL, &doc, err);
    if (rc)
        return rc;
    free(have->log_bucket);
    free(have->log_prefix);
    have->log_bucket = have->log_prefix = NULL;
    const struct s3xml_node *le = s3xml_child(doc, "LoggingEnabled");
    if (le) {
        const char *b = s3xml_text(le, "TargetBucket");
        const char *p = s3xml_text(le, "TargetPrefix");
        if (!b || !*b || !text_ok(b, 255))
            rc = sw_err_set(err, SW_EINVAL, "%s: TargetBucket: expected a bucket name", what);
        else if (p && !text_ok(p, BUCKET_TEXT_MAX))
            rc = sw_err_set(err, SW_EINVAL,
                            "%s: TargetPrefix: expected printable text of at most %d bytes", what,
                            BUCKET_TEXT_MAX);
        else {
            have->log_bucket = xstrdup(b);
            have->log_prefix = xstrdup(p ? p : "");
        }
    }
    s3xml_free(doc);
    return rc;
}

/* A whole number of days, 1 to 2^31-1; -1 when malformed. */
static int days_of(const char *t)
{
    if (!t || !*t || strlen(t) > 10)
        return -1;
    long long v = 0;
    for (const char *p = t; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v >= 1 && v <= 2147483647 ? (int)v : -1;
}

/* The one day count an action element holds in its child named field; any
 * other child makes the action something else (other). */
static int action_days(const struct s3xml_node *a, const char *field, int *other)
{
    int days = -1;
    for (size_t i = 0; i < a->n_kids; i++) {
        if (!strcmp(a->kids[i]->name, field) && days == -1)
            days = days_of(a->kids[i]->text);
        else
            *other = 1;
    }
    return days;
}

static int rule_parse(const char *what, const struct s3xml_node *n, const char *id,
                      struct bucket_rule *r, struct sw_err *err)
{
    rule_free(r);
    r->id = xstrdup(id);
    r->prefix = xstrdup("");
    const char *st = s3xml_text(n, "Status");
    if (!st || (strcmp(st, "Enabled") && strcmp(st, "Disabled")))
        return sw_err_set(err, SW_EINVAL, "%s: rule %s: Status: expected Enabled or Disabled", what,
                          id);
    r->enabled = !strcmp(st, "Enabled");
    int prefixes = 0;
    const char *prefix = NULL;
    for (size_t i = 0; i < n->n_kids; i++) {
        const struct s3xml_node *k = n->kids[i];
        int *slot = NULL;
        const char *field = NULL;
        if (!strcmp(k->name, "ID") || !strcmp(k->name, "Status")) {
            continue;
        } else if (!strcmp(k->name, "Prefix")) { /* the rule's own, before Filter existed */
            prefix = k->text;
            prefixes++;
        } else if (!strcmp(k->name, "Filter")) {
            /* A prefix, or an And of conditions that may hold one. */
            const struct s3xml_node *f = k;
            if (k->n_kids == 1 && !strcmp(k->kids[0]->name, "And"))
                f = k->kids[0];
            for (size_t j = 0; j < f->n_kids; j++) {
                if (!strcmp(f->kids[j]->name, "Prefix")) {
                    prefix = f->kids[j]->text;
                    prefixes++;
                } else {
                    r->filtered = 1; /* tags, object sizes */
                }
            }
        } else if (!strcmp(k->name, "Expiration")) {
            slot = &r->expiration_days, field = "Days";
        } else if (!strcmp(k->name, "NoncurrentVersionExpiration")) {
            slot = &r->noncurrent_days, field = "NoncurrentDays";
        } else if (!strcmp(k->name, "AbortIncompleteMultipartUpload")) {
            slot = &r->abort_days, field = "DaysAfterInitiation";
        } else {
            r->other = 1; /* transitions and whatever else a rule may hold */
        }
        if (slot && *slot)
            r->other = 1; /* the same action twice */
        else if (slot)
            *slot = action_days(k, field, &r->other);
    }
    if (prefixes > 1)
        r->filtered = 1;
    if (prefix) {
        if (!text_ok(prefix, BUCKET_TEXT_MAX))
            return sw_err_set(err, SW_EINVAL,
                              "%s: rule %s: Prefix: expected printable text of at most %d bytes",
                              what, id, BUCKET_TEXT_MAX);
        free(r->prefix);
        r->prefix = xstrdup(prefix);
    }
    return 0;
}

int bucket_parse_lifecycle(const char *body, size_t len, const struct bucket_state *want,
                           struct bucket_state *have, struct s3xml_node **out, struct sw_err *err)
{
    static const char what[] = "GetBucketLifecycleConfiguration";
    struct s3xml_node *doc;
    *out = NULL;
    int rc = doc_open(what, body, len, "LifecycleConfiguration", NULL, &doc, err);
    if (rc)
        return rc;
    if (doc->n_kids > BUCKET_RULES_MAX)
        rc = sw_err_set(err, SW_EINVAL, "%s: more than %d rules", what, BUCKET_RULES_MAX);
    int seen[RULE_N] = {0};
    for (size_t i = 0; !rc && i < doc->n_kids; i++) {
        const struct s3xml_node *n = doc->kids[i];
        if (strcmp(n->name, "Rule") != 0)
            continue;
        /* The owner's IDs are neither read nor shown, only compared with
         * slipway's (printable ASCII) and written back escaped. */
        const char *id = s3xml_text(n, "ID");
        for (int k = 0; id && k < RULE_N; k++) {
            if (!want->rule_ids[k] || strcmp(id, want->rule_ids[k]) != 0)
                continue;
            if (seen[k]++)
                rc = sw_err_set(err, SW_EINVAL, "%s: two rules with the ID %s", what, id);
            else
                rc = rule_parse(what, n, id, &have->rules[k], err);
        }
    }
    if (rc)
        s3xml_free(doc);
    else
        *out = doc;
    return rc;
}

/* ---- policy statements, by meaning ------------------------------------------------------- */

/* json is a string, or an array of strings, holding exactly the set want[0..n)
 * (repeats allowed). nocase: compared without case (IAM action names). */
static int strs_are(json_t *json, const char *const *want, size_t n, int nocase)
{
    int (*cmp)(const char *, const char *) = nocase ? strcasecmp : strcmp;
    size_t len = json_is_array(json) ? json_array_size(json) : 1;
    if (!json || (!json_is_string(json) && !json_is_array(json)) || len == 0)
        return 0;
    int found[8] = {0};
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_is_array(json) ? json_array_get(json, i) : json;
        const char *s = json_string_value(e);
        size_t k = 0;
        while (s && k < n && cmp(s, want[k]) != 0)
            k++;
        if (!s || k == n)
            return 0;
        found[k] = 1;
    }
    for (size_t k = 0; k < n; k++)
        if (!found[k])
            return 0;
    return 1;
}

/* An object with exactly one member, whose name is name (nocase: IAM's
 * condition keys are not case-sensitive); its value, else NULL. */
static json_t *only_member(json_t *o, const char *name, int nocase)
{
    if (!json_is_object(o) || json_object_size(o) != 1)
        return NULL;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (nocase ? !strcasecmp(k, name) : !strcmp(k, name))
            return v;
    }
    return NULL;
}

/* The statement has no member but those listed (NotAction, NotPrincipal,
 * NotResource would turn its meaning around). */
static int only_members(json_t *st)
{
    static const char *const known[] = {"Sid",    "Effect",   "Principal",
                                        "Action", "Resource", "Condition"};
    const char *k;
    json_t *v;
    json_object_foreach(st, k, v)
    {
        size_t i = 0;
        while (i < sizeof(known) / sizeof(*known) && strcmp(k, known[i]) != 0)
            i++;
        if (i == sizeof(known) / sizeof(*known))
            return 0;
    }
    return 1;
}

static int deny_tls_is(json_t *st, const struct bucket_state *want)
{
    char *arn = xasprintf("arn:%s:s3:::%s", want->partition, want->name);
    char *objs = xasprintf("%s/*", arn);
    const char *res[] = {arn, objs}, *act[] = {"s3:*"}, *star[] = {"*"};
    json_t *p = json_object_get(st, "Principal");
    json_t *aws = only_member(p, "AWS", 0);
    json_t *cond = only_member(only_member(json_object_get(st, "Condition"), "Bool", 0),
                               "aws:SecureTransport", 1);
    json_t *cv = json_is_array(cond) && json_array_size(cond) == 1 ? json_array_get(cond, 0) : cond;
    int ok =
        only_members(st) &&
        !strcmp(str_or(json_string_value(json_object_get(st, "Effect")), ""), "Deny") &&
        (strs_are(p, star, 1, 0) || strs_are(aws, star, 1, 0)) &&
        strs_are(json_object_get(st, "Action"), act, 1, 1) &&
        strs_are(json_object_get(st, "Resource"), res, 2, 0) &&
        (json_is_false(cv) || (json_is_string(cv) && !strcasecmp(json_string_value(cv), "false")));
    free(arn);
    free(objs);
    return ok;
}

static int log_delivery_is(json_t *st, const struct bucket_state *want)
{
    char *res =
        xasprintf("arn:%s:s3:::%s/%s*", want->partition, want->name, want->log_source_prefix);
    char *src = xasprintf("arn:%s:s3:::%s", want->partition, want->log_source);
    const char *r1[] = {res}, *s1[] = {src}, *act[] = {"s3:PutObject"}, *svc[] = {LOG_SERVICE};
    json_t *cond = json_object_get(st, "Condition");
    json_t *like = only_member(cond, "ArnLike", 0);
    if (!like)
        like = only_member(cond, "ArnEquals", 0);
    int ok = only_members(st) &&
             !strcmp(str_or(json_string_value(json_object_get(st, "Effect")), ""), "Allow") &&
             strs_are(only_member(json_object_get(st, "Principal"), "Service", 0), svc, 1, 0) &&
             strs_are(json_object_get(st, "Action"), act, 1, 1) &&
             strs_are(json_object_get(st, "Resource"), r1, 1, 0) &&
             strs_are(only_member(like, "aws:SourceArn", 1), s1, 1, 0);
    free(res);
    free(src);
    return ok;
}

int bucket_parse_policy(const char *body, size_t len, const struct bucket_state *want,
                        struct bucket_state *have, json_t **out, struct sw_err *err)
{
    static const char what[] = "GetBucketPolicy";
    json_t *doc = NULL;
    *out = NULL;
    int rc = json_doc_parse(what, body ? body : "", len, &doc, err);
    if (rc)
        return rc;
    json_t *sts = json_object_get(doc, "Statement");
    struct buf log_sid = BUF_INIT;
    if (want->log_delivery)
        bucket_log_sid(want->log_source, &log_sid);
    have->deny_tls = have->log_delivery = STMT_ABSENT;
    if (!json_is_object(doc))
        rc = sw_err_set(err, SW_EINVAL, "%s: expected a JSON object", what);
    else if (sts && !json_is_array(sts) && !json_is_object(sts))
        rc = sw_err_set(err, SW_EINVAL, "%s: Statement: expected an array or an object", what);
    else if (json_is_array(sts) && json_array_size(sts) > BUCKET_STATEMENTS_MAX)
        rc = sw_err_set(err, SW_EINVAL, "%s: more than %d statements", what, BUCKET_STATEMENTS_MAX);
    size_t n = !sts ? 0 : json_is_array(sts) ? json_array_size(sts) : 1;
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *st = json_is_array(sts) ? json_array_get(sts, i) : sts;
        if (!json_is_object(st)) {
            rc = sw_err_set(err, SW_EINVAL, "%s: Statement[%zu]: expected an object", what, i);
            break;
        }
        const char *sid = json_string_value(json_object_get(st, "Sid"));
        int *slot = !sid                                        ? NULL
                    : !strcmp(sid, BUCKET_DENY_SID)             ? &have->deny_tls
                    : log_sid.len && !strcmp(sid, log_sid.data) ? &have->log_delivery
                                                                : NULL;
        if (!slot)
            continue;
        if (*slot != STMT_ABSENT) {
            rc = sw_err_set(err, SW_EINVAL, "%s: two statements with the Sid %s", what, sid);
            break;
        }
        int as_wanted = slot == &have->deny_tls ? deny_tls_is(st, want) : log_delivery_is(st, want);
        *slot = as_wanted ? STMT_AS_WANTED : STMT_OTHER;
    }
    buf_free(&log_sid);
    if (rc)
        json_decref(doc);
    else
        *out = doc;
    return rc;
}

/* ---- building what is sent --------------------------------------------------------------- */

static void tag(struct buf *out, const char *name, const char *text)
{
    buf_addf(out, "<%s>", name);
    s3xml_escape(out, text);
    buf_addf(out, "</%s>", name);
}

void bucket_xml_versioning(const struct bucket_state *want, struct buf *out)
{
    buf_adds(out, "<VersioningConfiguration xmlns=\"" S3_NS "\">");
    tag(out, "Status", want->versioning == VERSIONING_ENABLED ? "Enabled" : "Suspended");
    buf_adds(out, "</VersioningConfiguration>");
}

void bucket_xml_encryption(const struct bucket_state *want, struct buf *out)
{
    int kms = want->sse == SSE_KMS;
    buf_adds(out, "<ServerSideEncryptionConfiguration xmlns=\"" S3_NS "\"><Rule>"
                  "<ApplyServerSideEncryptionByDefault>");
    tag(out, "SSEAlgorithm", kms ? "aws:kms" : "AES256");
    if (kms && want->kms_key_id)
        tag(out, "KMSMasterKeyID", want->kms_key_id);
    buf_adds(out, "</ApplyServerSideEncryptionByDefault>");
    /* With KMS, an S3 Bucket Key: one KMS request per bucket key instead of
     * one per object (cost and KMS's request quota). */
    if (kms)
        tag(out, "BucketKeyEnabled", "true");
    buf_adds(out, "</Rule></ServerSideEncryptionConfiguration>");
}

void bucket_xml_pab(const struct bucket_state *want, struct buf *out)
{
    buf_adds(out, "<PublicAccessBlockConfiguration xmlns=\"" S3_NS "\">");
    for (int i = 0; i < PAB_N; i++)
        tag(out, bucket_pab_names[i], want->pab[i] ? "true" : "false");
    buf_adds(out, "</PublicAccessBlockConfiguration>");
}

void bucket_xml_logging(const struct bucket_state *want, struct buf *out)
{
    buf_adds(out, "<BucketLoggingStatus xmlns=\"" S3_NS "\">");
    if (want->log_bucket) {
        buf_adds(out, "<LoggingEnabled>");
        tag(out, "TargetBucket", want->log_bucket);
        tag(out, "TargetPrefix", want->log_prefix ? want->log_prefix : "");
        buf_adds(out, "</LoggingEnabled>");
    }
    buf_adds(out, "</BucketLoggingStatus>");
}

void bucket_xml_create(const char *region, struct buf *out)
{
    /* us-east-1 is the one region S3 refuses to be named in a LocationConstraint. */
    if (!strcmp(region, "us-east-1"))
        return;
    buf_adds(out, "<CreateBucketConfiguration xmlns=\"" S3_NS "\">");
    tag(out, "LocationConstraint", region);
    buf_adds(out, "</CreateBucketConfiguration>");
}

/* An element read back, written again: the owner's rules go back as they
 * came (S3's lifecycle elements carry no attributes, and mixed content is
 * only whitespace between elements). */
static void xml_write(const struct s3xml_node *n, struct buf *out)
{
    buf_addf(out, "<%s>", n->name);
    if (n->n_kids)
        for (size_t i = 0; i < n->n_kids; i++)
            xml_write(n->kids[i], out);
    else
        s3xml_escape(out, n->text);
    buf_addf(out, "</%s>", n->name);
}

static int is_ours(const struct bucket_state *want, const char *id)
{
    for (int k = 0; id && k < RULE_N; k++)
        if (want->rule_ids[k] && !strcmp(id, want->rule_ids[k]))
            return 1;
    return 0;
}

void bucket_xml_lifecycle(const struct bucket_state *want, const struct s3xml_node *have_doc,
                          struct buf *out)
{
    struct buf rules = BUF_INIT;
    for (size_t i = 0; have_doc && i < have_doc->n_kids; i++) {
        const struct s3xml_node *n = have_doc->kids[i];
        if (!strcmp(n->name, "Rule") && !is_ours(want, s3xml_text(n, "ID")))
            xml_write(n, &rules);
    }
    for (int k = 0; k < RULE_N; k++) {
        const struct bucket_rule *r = &want->rules[k];
        char days[16];
        if (!r->id)
            continue;
        buf_adds(&rules, "<Rule>");
        tag(&rules, "ID", r->id);
        buf_adds(&rules, "<Filter>");
        tag(&rules, "Prefix", r->prefix);
        buf_adds(&rules, "</Filter>");
        tag(&rules, "Status", "Enabled");
        if (r->noncurrent_days > 0) {
            snprintf(days, sizeof(days), "%d", r->noncurrent_days);
            buf_adds(&rules, "<NoncurrentVersionExpiration>");
            tag(&rules, "NoncurrentDays", days);
            buf_adds(&rules, "</NoncurrentVersionExpiration>");
        }
        if (r->abort_days > 0) {
            snprintf(days, sizeof(days), "%d", r->abort_days);
            buf_adds(&rules, "<AbortIncompleteMultipartUpload>");
            tag(&rules, "DaysAfterInitiation", days);
            buf_adds(&rules, "</AbortIncompleteMultipartUpload>");
        }
        if (r->expiration_days > 0) {
            snprintf(days, sizeof(days), "%d", r->expiration_days);
            buf_adds(&rules, "<Expiration>");
            tag(&rules, "Days", days);
            buf_adds(&rules, "</Expiration>");
        }
        buf_adds(&rules, "</Rule>");
    }
    if (rules.len) {
        buf_adds(out, "<LifecycleConfiguration xmlns=\"" S3_NS "\">");
        buf_add(out, rules.data, rules.len);
        buf_adds(out, "</LifecycleConfiguration>");
    }
    buf_free(&rules);
}

static json_t *deny_tls_statement(const struct bucket_state *w)
{
    char *arn = xasprintf("arn:%s:s3:::%s", w->partition, w->name);
    char *objs = xasprintf("%s/*", arn);
    /* {"AWS": "*"} is "*" to IAM; written so because moto (5.2) fails with a
     * 500 on a later PutBucketLogging into a bucket whose policy has a
     * principal that is a bare string. Either form reads back as slipway's. */
    json_t *st =
        json_pack("{s:s, s:s, s:{s:s}, s:s, s:[s, s], s:{s:{s:s}}}", "Sid", BUCKET_DENY_SID,
                  "Effect", "Deny", "Principal", "AWS", "*", "Action", "s3:*", "Resource", arn,
                  objs, "Condition", "Bool", "aws:SecureTransport", "false");
    free(arn);
    free(objs);
    return st;
}

/* What S3's log delivery needs in the logs bucket: permission to put
 * objects under the prefix, only on behalf of the source bucket (the
 * aws:SourceArn condition keeps other buckets' logging out). */
static json_t *log_delivery_statement(const struct bucket_state *w)
{
    struct buf sid = BUF_INIT;
    bucket_log_sid(w->log_source, &sid);
    char *res = xasprintf("arn:%s:s3:::%s/%s*", w->partition, w->name, w->log_source_prefix);
    char *src = xasprintf("arn:%s:s3:::%s", w->partition, w->log_source);
    json_t *st = json_pack("{s:s, s:s, s:{s:s}, s:s, s:s, s:{s:{s:s}}}", "Sid", sid.data, "Effect",
                           "Allow", "Principal", "Service", LOG_SERVICE, "Action", "s3:PutObject",
                           "Resource", res, "Condition", "ArnLike", "aws:SourceArn", src);
    free(res);
    free(src);
    buf_free(&sid);
    return st;
}

void bucket_policy_json(const struct bucket_state *want, json_t *have_doc, struct buf *out)
{
    struct buf log_sid = BUF_INIT;
    if (want->log_delivery)
        bucket_log_sid(want->log_source, &log_sid);
    json_t *doc = json_is_object(have_doc) ? json_deep_copy(have_doc) : json_object();
    json_t *old = json_object_get(doc, "Statement"), *sts = json_array();
    size_t n = json_is_array(old) ? json_array_size(old) : old ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        json_t *st = json_is_array(old) ? json_array_get(old, i) : old;
        const char *sid = json_string_value(json_object_get(st, "Sid"));
        if (sid && (!strcmp(sid, BUCKET_DENY_SID) || (log_sid.len && !strcmp(sid, log_sid.data))))
            continue;
        json_array_append(sts, st);
    }
    if (want->deny_tls == 1)
        json_array_append_new(sts, deny_tls_statement(want));
    if (want->log_delivery == 1)
        json_array_append_new(sts, log_delivery_statement(want));
    if (json_array_size(sts)) {
        if (!json_object_get(doc, "Version"))
            json_object_set_new(doc, "Version", json_string("2012-10-17"));
        json_object_set_new(doc, "Statement", sts);
        char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s)
            buf_adds(out, s);
        free(s);
    } else {
        json_decref(sts);
    }
    json_decref(doc);
    buf_free(&log_sid);
}

/* ---- comparing --------------------------------------------------------------------------- */

static void plan_add(struct store_bucket_plan *p, const struct bucket_state *b, int logs, char op,
                     char *setting, char *from, char *to)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->changes = xrealloc(p->changes, p->cap * sizeof(*p->changes));
    }
    p->changes[p->n++] =
        (struct store_bucket_change){xstrdup(b->name), logs, op, setting, from, to};
    if (op == '+')
        p->added++;
    else if (op == '~')
        p->changed++;
    else
        p->removed++;
}

void bucket_plan_truncate(struct store_bucket_plan *p, size_t n)
{
    while (p->n > n) {
        struct store_bucket_change *c = &p->changes[--p->n];
        if (c->op == '+')
            p->added--;
        else if (c->op == '~')
            p->changed--;
        else
            p->removed--;
        free(c->bucket);
        free(c->setting);
        free(c->from);
        free(c->to);
    }
}

void store_bucket_plan_free(struct store_bucket_plan *plan)
{
    if (!plan)
        return;
    bucket_plan_truncate(plan, 0);
    free(plan->changes);
    free(plan->store);
    free(plan->bucket);
    free(plan->logs_bucket);
    memset(plan, 0, sizeof(*plan));
}

static const char *versioning_name(enum bucket_versioning v)
{
    return v == VERSIONING_ENABLED     ? "Enabled"
           : v == VERSIONING_SUSPENDED ? "Suspended"
                                       : "(never enabled)";
}

static char *sse_text(const struct bucket_state *s)
{
    switch (s->sse) {
    case SSE_AES256:
        return xstrdup("AES256");
    case SSE_KMS:
        return s->kms_key_id ? xasprintf("aws:kms with key %s", s->kms_key_id)
                             : xstrdup("aws:kms with the account's aws/s3 key");
    case SSE_OTHER:
        return xstrdup(s->sse_other ? s->sse_other : "?");
    default:
        return NULL;
    }
}

static int str_eq(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static int rule_eq(const struct bucket_rule *a, const struct bucket_rule *b)
{
    if (!a->id || !b->id)
        return !a->id && !b->id;
    return a->enabled == b->enabled && a->filtered == b->filtered && str_eq(a->prefix, b->prefix) &&
           a->expiration_days == b->expiration_days && a->noncurrent_days == b->noncurrent_days &&
           a->abort_days == b->abort_days && a->other == b->other;
}

static void days_text(struct buf *b, const char *what, int days)
{
    if (b->len)
        buf_adds(b, "; ");
    if (days > 0)
        buf_addf(b, "%s after %d day%s", what, days, days == 1 ? "" : "s");
    else
        buf_addf(b, "%s (not after a number of days)", what);
}

static char *rule_text(const struct bucket_rule *r)
{
    struct buf b = BUF_INIT;
    int whole = !r->prefix || !*r->prefix;
    if (r->noncurrent_days)
        days_text(&b, "noncurrent versions expire", r->noncurrent_days);
    if (r->abort_days)
        days_text(&b, "incomplete multipart uploads abort", r->abort_days);
    if (r->expiration_days)
        days_text(&b, "objects expire", r->expiration_days);
    if (!b.len)
        buf_adds(&b, "no action slipway knows");
    if (!whole)
        buf_addf(&b, ", under %s", r->prefix);
    if (r->filtered)
        buf_adds(&b, ", with a filter on more than the prefix");
    if (r->other)
        buf_adds(&b, ", with other actions");
    if (!r->enabled)
        buf_adds(&b, " (disabled)");
    return buf_detach(&b, NULL);
}

static char *deny_tls_text(const struct bucket_state *w)
{
    (void)w;
    return xstrdup("deny every request made without TLS (aws:SecureTransport false)");
}

static char *log_delivery_text(const struct bucket_state *w)
{
    return xasprintf("allow S3 server access logs from %s under %s", w->log_source,
                     w->log_source_prefix);
}

static void stmt_diff(struct store_bucket_plan *p, const struct bucket_state *w, int logs,
                      const char *sid, int want, int have,
                      char *(*text)(const struct bucket_state *))
{
    if (want == 1 && have == STMT_AS_WANTED)
        return;
    if (want != 1 && have == STMT_ABSENT)
        return;
    char *setting = xasprintf("policy statement %s", sid);
    static const char other[] = "a statement with this Sid that says something else";
    if (want != 1)
        plan_add(p, w, logs, '-', setting, have == STMT_AS_WANTED ? text(w) : xstrdup(other), NULL);
    else if (have == STMT_ABSENT)
        plan_add(p, w, logs, '+', setting, NULL, text(w));
    else
        plan_add(p, w, logs, '~', setting, xstrdup(other), text(w));
}

unsigned bucket_diff(const struct bucket_state *w, const struct bucket_state *h, int logs,
                     unsigned sections, struct store_bucket_plan *p)
{
    unsigned mask = 0;
    size_t n0;
    if ((sections & SEC_BIT(SEC_BUCKET)) && !h->exists) {
        plan_add(p, w, logs, '+', xstrdup("bucket"), NULL,
                 xasprintf("create %s in %s", w->name, w->region ? w->region : "?"));
        mask |= SEC_BIT(SEC_BUCKET);
    }
    if ((sections & SEC_BIT(SEC_VERSIONING)) &&
        (w->versioning == VERSIONING_ENABLED) != (h->versioning == VERSIONING_ENABLED)) {
        plan_add(p, w, logs, '~', xstrdup("versioning"), xstrdup(versioning_name(h->versioning)),
                 xstrdup(versioning_name(w->versioning)));
        mask |= SEC_BIT(SEC_VERSIONING);
    }
    if ((sections & SEC_BIT(SEC_ENCRYPTION)) &&
        (w->sse != h->sse || (w->sse == SSE_KMS && !str_eq(w->kms_key_id, h->kms_key_id)))) {
        char *from = sse_text(h);
        plan_add(p, w, logs, from ? '~' : '+', xstrdup("encryption"), from, sse_text(w));
        mask |= SEC_BIT(SEC_ENCRYPTION);
    }
    for (int i = 0; (sections & SEC_BIT(SEC_PAB)) && i < PAB_N; i++) {
        if (!w->pab[i] == !h->pab[i])
            continue;
        plan_add(p, w, logs, '~', xasprintf("public access block %s", bucket_pab_names[i]),
                 xstrdup(h->pab[i] ? "true" : "false"), xstrdup(w->pab[i] ? "true" : "false"));
        mask |= SEC_BIT(SEC_PAB);
    }
    if (sections & SEC_BIT(SEC_POLICY)) {
        n0 = p->n;
        stmt_diff(p, w, logs, BUCKET_DENY_SID, w->deny_tls, h->deny_tls, deny_tls_text);
        if (w->log_delivery) {
            struct buf sid = BUF_INIT;
            bucket_log_sid(w->log_source, &sid);
            stmt_diff(p, w, logs, sid.data, w->log_delivery, h->log_delivery, log_delivery_text);
            buf_free(&sid);
        }
        if (p->n > n0)
            mask |= SEC_BIT(SEC_POLICY);
    }
    for (int k = 0; (sections & SEC_BIT(SEC_LIFECYCLE)) && k < RULE_N; k++) {
        const struct bucket_rule *wr = &w->rules[k], *hr = &h->rules[k];
        if (rule_eq(wr, hr))
            continue;
        char *setting = xasprintf("lifecycle rule %s", wr->id ? wr->id : hr->id);
        if (!hr->id)
            plan_add(p, w, logs, '+', setting, NULL, rule_text(wr));
        else if (!wr->id)
            plan_add(p, w, logs, '-', setting, rule_text(hr), NULL);
        else
            plan_add(p, w, logs, '~', setting, rule_text(hr), rule_text(wr));
        mask |= SEC_BIT(SEC_LIFECYCLE);
    }
    if ((sections & SEC_BIT(SEC_LOGGING)) && w->log_managed &&
        !(str_eq(w->log_bucket, h->log_bucket) &&
          str_eq(w->log_prefix ? w->log_prefix : "", h->log_prefix ? h->log_prefix : ""))) {
        char *from = h->log_bucket ? xasprintf("to s3://%s/%s", h->log_bucket,
                                               h->log_prefix ? h->log_prefix : "")
                                   : NULL;
        plan_add(p, w, logs, from ? '~' : '+', xstrdup("logging"), from,
                 xasprintf("to s3://%s/%s", w->log_bucket, w->log_prefix ? w->log_prefix : ""));
        mask |= SEC_BIT(SEC_LOGGING);
    }
    return mask;
}
