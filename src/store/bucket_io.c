/*
 * `slipway infra plan|apply` against the service: the requests around the
 * pure half in bucket.c. A plan reads each bucket (a HEAD, then one GET per
 * setting) and compares. An apply is a state change in the shape of
 * deploy's change(): create what is missing, take the lease, read again
 * under it, write only the sections that differ, release.
 *
 * The lease is slipway's own, with no lock table beside the bucket: a
 * create-only object (If-None-Match: *) at STORE_BUCKET_LEASE_KEY, a key no
 * store can have (a component starting with '.'), in each bucket changed.
 * It names its holder and expires; an expired lease is taken over with a
 * PUT conditional on the ETag read (If-Match), so two processes taking over
 * the same stale lease cannot both win; the holder removes it with a DELETE
 * conditional on its own ETag, so a lease someone took over after ours
 * expired is never removed by us.
 */
#include "store/bucket.h"
#include "store/s3.h"

#include <errno.h>
#include "base/crypto.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEASE_MS (10LL * 60 * 1000)
#define LEASE_DOC_MAX 4096

/* One bucket being read or changed. */
struct side {
    struct s3 *cl;
    int logs;
    struct bucket_state want, have;
    struct s3xml_node *lifecycle; /* as read: the owner's rules go back with ours */
    json_t *policy;               /* as read: likewise its statements */
    char lease_etag[S3_ETAG_MAX]; /* "" when no lease is held */
};

static void side_free(struct side *sd)
{
    s3_free(sd->cl);
    bucket_state_free(&sd->want);
    bucket_state_free(&sd->have);
    s3xml_free(sd->lifecycle);
    json_decref(sd->policy);
    memset(sd, 0, sizeof(*sd));
}

static const char *shown(const struct side *sd)
{
    return s3_conf_shown(sd->cl);
}

/* ---- requests ------------------------------------------------------------------------------ */

/* A bucket setting's document, at most BUCKET_DOC_MAX bytes. 1 when S3
 * answers 404 with absent_code (the setting was never made). */
static int get_doc(struct side *sd, const char *query, const char *absent_code, struct buf *body,
                   struct sw_err *err)
{
    struct s3_req r = {.method = "GET",
                       .query = query,
                       .body_fd = -1,
                       .max_body = BUCKET_DOC_MAX,
                       .flags = S3_IDEMPOTENT};
    struct s3_resp resp;
    int rc = s3_request(sd->cl, &r, &resp, err);
    if (rc == SW_ENOTFOUND && absent_code && !strcmp(resp.code, absent_code))
        rc = 1;
    else if (rc == 0)
        buf_add(body, resp.body.data ? resp.body.data : "", resp.body.len);
    s3_resp_free(&resp);
    return rc;
}

/* Content-MD5 (RFC 1864): S3 requires an integrity check on the requests
 * that set lifecycle rules, a policy or a public access block, and every
 * S3-compatible service knows this one. */
static void content_md5(const char *data, size_t len, char *out, size_t outlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    unsigned char b64[64];
    sw_crypto_need();
    if (!EVP_Digest(data, len, md, &n, EVP_md5(), NULL)) {
        snprintf(out, outlen, "Content-MD5: ");
        return;
    }
    EVP_EncodeBlock(b64, md, (int)n);
    snprintf(out, outlen, "Content-MD5: %s", (const char *)b64);
}

/* PUT of a bucket setting (idempotent: the same document twice is the same
 * setting), or DELETE when body is NULL. */
static int put_doc(struct side *sd, const char *query, const char *type, const struct buf *body,
                   struct sw_err *err)
{
    char md5[96], ct[64];
    struct s3_req r = {.method = body ? "PUT" : "DELETE",
                       .query = query,
                       .body_fd = -1,
                       .max_body = 64 * 1024,
                       .flags = S3_IDEMPOTENT};
    if (body) {
        r.data = body->data ? body->data : "";
        r.len = body->len;
        content_md5(r.data, r.len, md5, sizeof(md5));
        snprintf(ct, sizeof(ct), "Content-Type: %s", type);
        r.hdr[0] = md5;
        r.hdr[1] = ct;
    }
    struct s3_resp resp;
    int rc = s3_request(sd->cl, &r, &resp, err);
    s3_resp_free(&resp);
    return rc;
}

static int head_bucket(struct side *sd, int *exists, struct sw_err *err)
{
    struct s3_req r = {.method = "HEAD", .body_fd = -1, .flags = S3_IDEMPOTENT};
    struct s3_resp resp;
    int rc = s3_request(sd->cl, &r, &resp, err);
    s3_resp_free(&resp);
    *exists = rc == 0;
    if (rc == SW_ENOTFOUND)
        return 0;
    if (rc == SW_EACCES) {
        /* A HEAD's 403 has no body: ask again in a way that gets S3's error
         * document, whose code says a wrong key or clock from a refusal. */
        struct s3_req g = {.method = "GET",
                           .query = "location=",
                           .body_fd = -1,
                           .max_body = 4096,
                           .flags = S3_IDEMPOTENT};
        struct sw_err e2 = {0};
        int g_rc = s3_request(sd->cl, &g, &resp, &e2);
        int explained = g_rc == SW_EACCES && (!strcmp(resp.code, "SignatureDoesNotMatch") ||
                                              !strcmp(resp.code, "InvalidAccessKeyId") ||
                                              !strcmp(resp.code, "RequestTimeTooSkewed"));
        s3_resp_free(&resp);
        if (explained) {
            *err = e2;
            return rc;
        }
        /* S3 says 403 to a HEAD of a bucket another account owns, too. */
        return sw_err_set(err, rc,
                          "%s: access to the bucket denied (403): it may belong to another "
                          "account, or the credentials (from %s) may not allow s3:ListBucket",
                          shown(sd),
                          s3_conf(sd->cl)->cred_source ? s3_conf(sd->cl)->cred_source : "?");
    }
    return rc;
}

static int create_bucket(struct side *sd, int *created, struct sw_err *err)
{
    struct buf body = BUF_INIT;
    bucket_xml_create(sd->want.region, &body);
    struct s3_req r = {.method = "PUT",
                       .data = body.data ? body.data : "",
                       .len = body.len,
                       .body_fd = -1,
                       .max_body = 64 * 1024,
                       .flags = S3_IDEMPOTENT};
    if (body.len)
        r.hdr[0] = "Content-Type: application/xml";
    struct s3_resp resp;
    int rc = s3_request(sd->cl, &r, &resp, err);
    *created = rc == 0;
    /* Another apply may have made it a moment ago: ours, so nothing to do. */
    if (rc == SW_ECONFLICT && !strcmp(resp.code, "BucketAlreadyOwnedByYou"))
        rc = 0;
    else if (rc == SW_ECONFLICT && !strcmp(resp.code, "BucketAlreadyExists"))
        rc = sw_err_set(err, SW_EEXIST,
                        "%s: the bucket name %s is taken by another account (bucket names are "
                        "global); choose another",
                        shown(sd), sd->want.name);
    s3_resp_free(&resp);
    buf_free(&body);
    return rc;
}

/* ---- reading a bucket ---------------------------------------------------------------------- */

static int read_side(struct side *sd, struct sw_err *err)
{
    struct bucket_state *h = &sd->have;
    struct buf b = BUF_INIT;
    bucket_state_free(h);
    s3xml_free(sd->lifecycle);
    json_decref(sd->policy);
    sd->lifecycle = NULL;
    sd->policy = NULL;
    h->name = xstrdup(sd->want.name);
    int rc = head_bucket(sd, &h->exists, err);
    if (rc || !h->exists)
        goto out;
    if ((rc = get_doc(sd, "versioning=", NULL, &b, err)) ||
        (rc = bucket_parse_versioning(b.data, b.len, h, err)))
        goto out;
    buf_reset(&b);
    rc = get_doc(sd, "encryption=", "ServerSideEncryptionConfigurationNotFoundError", &b, err);
    if (rc < 0 || (rc == 0 && (rc = bucket_parse_encryption(b.data, b.len, h, err))))
        goto out;
    buf_reset(&b);
    rc = get_doc(sd, "publicAccessBlock=", "NoSuchPublicAccessBlockConfiguration", &b, err);
    if (rc < 0 || (rc == 0 && (rc = bucket_parse_pab(b.data, b.len, h, err))))
        goto out;
    buf_reset(&b);
    rc = get_doc(sd, "policy=", "NoSuchBucketPolicy", &b, err);
    if (rc < 0 ||
        (rc == 0 && (rc = bucket_parse_policy(b.data, b.len, &sd->want, h, &sd->policy, err))))
        goto out;
    buf_reset(&b);
    rc = get_doc(sd, "lifecycle=", "NoSuchLifecycleConfiguration", &b, err);
    if (rc < 0 || (rc == 0 &&
                   (rc = bucket_parse_lifecycle(b.data, b.len, &sd->want, h, &sd->lifecycle, err))))
        goto out;
    buf_reset(&b);
    rc = 0;
    if (sd->want.log_managed && ((rc = get_doc(sd, "logging=", NULL, &b, err)) ||
                                 (rc = bucket_parse_logging(b.data, b.len, h, err))))
        goto out;
out:
    buf_free(&b);
    if (rc == SW_EINVAL) /* a document the service sent that is not one */
        sw_err_prefix(err, "%s", shown(sd));
    return rc;
}

/* ---- the lease ------------------------------------------------------------------------------ */

static const char *lease_text(json_t *h, const char *k)
{
    const char *v = json_string_value(json_object_get(h, k));
    return v && text_valid(v, 256, 0) ? v : "?";
}

/* A lease taken on this host by a process that no longer exists is stale at
 * once (a reused pid only makes us wait for the expiry, which is safe). */
static int holder_died_here(json_t *h)
{
    const char *owner = json_string_value(json_object_get(h, "owner"));
    json_int_t pid = json_integer_value(json_object_get(h, "pid"));
    return owner && !strcmp(owner, sys_host()) && pid > 0 && pid <= INT32_MAX &&
           kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static int lease_put(struct side *sd, const char *body, const char *cond, struct sw_err *err)
{
    const struct s3conf *c = s3_conf(sd->cl);
    char sse[64], kms[300];
    snprintf(sse, sizeof(sse), "x-amz-server-side-encryption: %s", c->sse ? c->sse : "AES256");
    struct s3_req r = {.method = "PUT",
                       .key = STORE_BUCKET_LEASE_KEY,
                       .data = body,
                       .len = strlen(body),
                       .body_fd = -1,
                       .max_body = 4096,
                       .flags = S3_RAW_KEY};
    size_t n = 0;
    r.hdr[n++] = cond;
    r.hdr[n++] = "Content-Type: application/json";
    r.hdr[n++] = sse;
    if (c->kms_key_id) {
        snprintf(kms, sizeof(kms), "x-amz-server-side-encryption-aws-kms-key-id: %s",
                 c->kms_key_id);
        r.hdr[n++] = kms;
    }
    struct s3_resp resp;
    int rc = s3_request(sd->cl, &r, &resp, err);
    if (rc == 0)
        snprintf(sd->lease_etag, sizeof(sd->lease_etag), "%s", resp.etag[0] ? resp.etag : "?");
    s3_resp_free(&resp);
    return rc;
}

/* The lease as it is: 1 when there is none. */
static int lease_get(struct side *sd, struct buf *body, char etag[S3_ETAG_MAX], struct sw_err *err)
{
    struct s3_req r = {.method = "GET",
                       .key = STORE_BUCKET_LEASE_KEY,
                       .body_fd = -1,
                       .max_body = LEASE_DOC_MAX,
                       .flags = S3_IDEMPOTENT | S3_RAW_KEY};
    struct s3_resp resp;
    int rc = s3_request(sd->cl, &r, &resp, err);
    if (rc == 0) {
        buf_add(body, resp.body.data ? resp.body.data : "", resp.body.len);
        snprintf(etag, S3_ETAG_MAX, "%s", resp.etag);
    }
    s3_resp_free(&resp);
    return rc == SW_ENOTFOUND ? 1 : rc;
}

static int lease_take(struct side *sd, struct sw_err *err)
{
    char now_iso[40], exp[40];
    int64_t now = time_now_ms();
    time_format_iso(now, now_iso, sizeof(now_iso));
    time_format_iso(now + LEASE_MS, exp, sizeof(exp));
    json_t *doc =
        json_pack("{s:s, s:i, s:s, s:s, s:s, s:s}", "owner", sys_host(), "pid", (int)getpid(),
                  "actor", sys_user(), "action", "infra apply", "since", now_iso, "expires", exp);
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!body)
        return sw_err_set(err, SW_EINVAL,
                          "%s: cannot record who holds the lease: the user (%s) or host name is "
                          "not UTF-8",
                          shown(sd), sys_user());
    int rc = SW_ECONFLICT;
    /* A few rounds: the holder may release, or someone else take over a
     * stale lease, between our attempts. */
    for (int attempt = 0; attempt < 4 && rc; attempt++) {
        struct buf cur = BUF_INIT;
        char etag[S3_ETAG_MAX] = "";
        rc = lease_put(sd, body, "If-None-Match: *", err);
        if (rc == S3_EMAYBE) {
            /* It may have landed: our bytes there (pid and time make them
             * ours alone) mean it did. */
            int g = lease_get(sd, &cur, etag, err);
            if (g == 0 && cur.len == strlen(body) && !memcmp(cur.data, body, cur.len)) {
                snprintf(sd->lease_etag, sizeof(sd->lease_etag), "%s", etag);
                rc = 0;
            } else {
                rc = g < 0 ? g : SW_ECONFLICT;
            }
            buf_free(&cur);
            continue;
        }
        if (rc != SW_ECONFLICT)
            break;
        int g = lease_get(sd, &cur, etag, err);
        if (g == 1) { /* released meanwhile */
            buf_free(&cur);
            rc = SW_ECONFLICT;
            continue;
        }
        if (g < 0) {
            buf_free(&cur);
            rc = g;
            break;
        }
        /* Someone else's document: read leniently, since the worst a bad
         * lease can do is be taken over. */
        json_t *h = json_loadb(cur.data ? cur.data : "", cur.len, 0, NULL);
        const char *hx = json_string_value(json_object_get(h, "expires"));
        int64_t expires = 0;
        if (!hx || time_parse_iso(hx, &expires) != 0 || holder_died_here(h))
            expires = 0;
        if (expires > time_now_ms()) {
            char left[32];
            duration_format(expires - time_now_ms(), left, sizeof(left));
            rc = sw_err_set(err, STORE_EBUCKET_LOCKED,
                            "bucket %s is locked by another '%s' (%s, pid %lld on %s, since %s); "
                            "nothing was changed. Try again when it finishes; its lease (%s) "
                            "expires at %s (in %s) if its holder has died",
                            sd->want.name, lease_text(h, "action"), lease_text(h, "actor"),
                            (long long)json_integer_value(json_object_get(h, "pid")),
                            lease_text(h, "owner"), lease_text(h, "since"), STORE_BUCKET_LEASE_KEY,
                            lease_text(h, "expires"), left);
            json_decref(h);
            buf_free(&cur);
            break;
        }
        json_decref(h);
        buf_free(&cur);
        /* Expired: take it over, only if it is still the lease just read. */
        char cond[S3_ETAG_MAX + 16];
        snprintf(cond, sizeof(cond), "If-Match: \"%s\"", etag);
        rc = lease_put(sd, body, cond, err);
        if (rc == SW_ENOTFOUND || rc == S3_EMAYBE)
            rc = SW_ECONFLICT; /* gone or unknown: look again */
        else if (rc && rc != SW_ECONFLICT)
            break;
    }
    if (rc == SW_ECONFLICT)
        rc = sw_err_set(err, STORE_EBUCKET_LOCKED,
                        "bucket %s is locked by another 'infra apply' (%s); nothing was changed",
                        sd->want.name, STORE_BUCKET_LEASE_KEY);
    free(body);
    return rc;
}

static void lease_release(struct side *sd)
{
    if (!sd->cl || !sd->lease_etag[0])
        return;
    char cond[S3_ETAG_MAX + 16];
    snprintf(cond, sizeof(cond), "If-Match: \"%s\"", sd->lease_etag);
    struct s3_req r = {.method = "DELETE",
                       .key = STORE_BUCKET_LEASE_KEY,
                       .body_fd = -1,
                       .max_body = 4096,
                       .flags = S3_IDEMPOTENT | S3_RAW_KEY};
    r.hdr[0] = cond;
    struct s3_resp resp;
    struct sw_err ignored = {0};
    /* A failure leaves a lease that expires by itself. */
    s3_request(sd->cl, &r, &resp, &ignored);
    s3_resp_free(&resp);
    sd->lease_etag[0] = '\0';
}

/* Test hook (as deploy's SLIPWAY_TEST_DEPLOY_HOLD_FILE): hold the lease until
 * this file exists (at most a minute), so a test can run a second apply while
 * the first holds it. */
static void test_hold(void)
{
    const char *f = getenv("SLIPWAY_TEST_INFRA_HOLD_FILE");
    for (int i = 0; f && *f && i < 6000 && access(f, F_OK) != 0; i++)
        usleep(10000);
}

/* ---- plan and apply -------------------------------------------------------------------------- */

/* The store's bucket and, when the settings name one, the logs bucket:
 * clients and wanted states. */
static int setup(const char *url, const struct store_bucket_settings *cfg, struct side *own,
                 struct side *logs, struct store_bucket_plan *plan, struct sw_err *err)
{
    memset(plan, 0, sizeof(*plan));
    memset(own, 0, sizeof(*own));
    memset(logs, 0, sizeof(*logs));
    if (!str_starts_with(url, "s3://"))
        return sw_err_set(err, SW_EINVAL,
                          "slipway infra provisions the bucket of an s3:// store, and '%s' is "
                          "not one",
                          url);
    int rc = s3_new(url, &own->cl, err);
    if (rc)
        return rc;
    const struct s3conf *c = s3_conf(own->cl);
    plan->store = xstrdup(shown(own));
    plan->bucket = xstrdup(c->bucket);
    /* Refused rather than applied: the statement would lock slipway out of
     * its own store wherever the service enforces it. */
    if (cfg->deny_insecure_transport && str_starts_with(c->endpoint, "http:"))
        return sw_err_set(err, SW_EINVAL,
                          "%s: the endpoint is http://, and the policy statement that denies "
                          "requests without TLS (deny_insecure_transport) would deny slipway's "
                          "own; use an https:// endpoint (AWS_CA_BUNDLE names a private CA) or "
                          "set deny_insecure_transport: false in .slipway/infra.yml",
                          plan->store);
    bucket_want(cfg, c->bucket, c->region, c->prefix, 0, NULL, NULL, &own->want);
    if (!cfg->log_bucket)
        return 0;
    if (!strcmp(cfg->log_bucket, c->bucket))
        return sw_err_set(err, SW_EINVAL,
                          "logging.bucket: %s is the store's own bucket; name another (a bucket "
                          "logging into itself logs its own log deliveries)",
                          c->bucket);
    /* The same endpoint, region, addressing and credentials: S3 delivers
     * access logs only to a bucket of the same account and region. */
    const char *q = strchr(plan->store, '?');
    char *logs_url = xasprintf("s3://%s%s", cfg->log_bucket, q ? q : "");
    rc = s3_new(logs_url, &logs->cl, err);
    free(logs_url);
    if (rc)
        return rc;
    logs->logs = 1;
    plan->logs_bucket = xstrdup(cfg->log_bucket);
    bucket_want(cfg, cfg->log_bucket, c->region, "", 1, c->bucket, own->want.log_prefix,
                &logs->want);
    return 0;
}

int store_bucket_plan(const char *url, const struct store_bucket_settings *want,
                      struct store_bucket_plan *plan, struct sw_err *err)
{
    struct side own, logs;
    int rc = setup(url, want, &own, &logs, plan, err);
    if (!rc)
        rc = read_side(&own, err);
    if (!rc && logs.cl)
        rc = read_side(&logs, err);
    if (!rc) {
        /* In the order apply makes them: the logs bucket must be ready (and
         * allow S3's log delivery) before the store's bucket logs into it. */
        unsigned rest = SEC_ALL & ~SEC_BIT(SEC_BUCKET) & ~SEC_BIT(SEC_LOGGING);
        bucket_diff(&own.want, &own.have, 0, SEC_BIT(SEC_BUCKET), plan);
        if (logs.cl)
            bucket_diff(&logs.want, &logs.have, 1, SEC_BIT(SEC_BUCKET), plan);
        bucket_diff(&own.want, &own.have, 0, rest, plan);
        if (logs.cl)
            bucket_diff(&logs.want, &logs.have, 1, rest, plan);
        bucket_diff(&own.want, &own.have, 0, SEC_BIT(SEC_LOGGING), plan);
    }
    side_free(&own);
    side_free(&logs);
    return rc;
}

static int write_section(struct side *sd, int sec, struct sw_err *err)
{
    struct buf b = BUF_INIT;
    int rc;
    switch (sec) {
    case SEC_VERSIONING:
        bucket_xml_versioning(&sd->want, &b);
        rc = put_doc(sd, "versioning=", "application/xml", &b, err);
        break;
    case SEC_ENCRYPTION:
        bucket_xml_encryption(&sd->want, &b);
        rc = put_doc(sd, "encryption=", "application/xml", &b, err);
        break;
    case SEC_PAB:
        bucket_xml_pab(&sd->want, &b);
        rc = put_doc(sd, "publicAccessBlock=", "application/xml", &b, err);
        break;
    case SEC_POLICY:
        bucket_policy_json(&sd->want, sd->policy, &b);
        rc = put_doc(sd, "policy=", "application/json", b.len ? &b : NULL, err);
        break;
    case SEC_LIFECYCLE:
        bucket_xml_lifecycle(&sd->want, sd->lifecycle, &b);
        rc = put_doc(sd, "lifecycle=", "application/xml", b.len ? &b : NULL, err);
        break;
    case SEC_LOGGING:
        bucket_xml_logging(&sd->want, &b);
        rc = put_doc(sd, "logging=", "application/xml", &b, err);
        break;
    default:
        rc = 0;
    }
    buf_free(&b);
    return rc;
}

/* Writes each section of the mask that differs, recording in done what
 * each write changed once it has been acknowledged. */
static int apply_side(struct side *sd, unsigned sections, struct store_bucket_plan *done,
                      struct sw_err *err)
{
    for (int sec = SEC_VERSIONING; sec <= SEC_LOGGING; sec++) {
        if (!(sections & SEC_BIT(sec)))
            continue;
        size_t n0 = done->n;
        if (!bucket_diff(&sd->want, &sd->have, sd->logs, SEC_BIT(sec), done))
            continue;
        int rc = write_section(sd, sec, err);
        if (rc) {
            bucket_plan_truncate(done, n0);
            return rc;
        }
    }
    return 0;
}

/* Creates the bucket when it is missing, then takes its lease. */
static int ensure_and_lease(struct side *sd, struct store_bucket_plan *done, struct sw_err *err)
{
    int exists, created = 0;
    int rc = head_bucket(sd, &exists, err);
    if (!rc && !exists) {
        rc = create_bucket(sd, &created, err);
        if (!rc && created) {
            struct bucket_state none = {.exists = 0};
            bucket_diff(&sd->want, &none, sd->logs, SEC_BIT(SEC_BUCKET), done);
        }
    }
    if (!rc)
        rc = lease_take(sd, err);
    return rc;
}

int store_bucket_apply(const char *url, const struct store_bucket_settings *want,
                       struct store_bucket_plan *done, struct sw_err *err)
{
    struct side own, logs;
    int rc = setup(url, want, &own, &logs, done, err);
    if (!rc)
        rc = ensure_and_lease(&own, done, err);
    if (!rc && logs.cl)
        rc = ensure_and_lease(&logs, done, err);
    if (!rc) {
        test_hold();
        /* Read again under the leases: what was planned may be stale. */
        rc = read_side(&own, err);
    }
    if (!rc && logs.cl)
        rc = read_side(&logs, err);
    if (!rc)
        rc = apply_side(&own, SEC_ALL & ~SEC_BIT(SEC_LOGGING), done, err);
    if (!rc && logs.cl)
        rc = apply_side(&logs, SEC_ALL, done, err);
    if (!rc)
        rc = apply_side(&own, SEC_BIT(SEC_LOGGING), done, err);
    lease_release(&logs);
    lease_release(&own);
    side_free(&own);
    side_free(&logs);
    return rc;
}
