/* Unit tests for the pure half of `slipway infra` (src/store/bucket.c and
 * bucket_conf.c): .slipway/infra.yml with each refusal at its line and
 * column; each bucket setting's answer read strictly (the forms AWS and moto
 * send, and malformed ones); comparisons by meaning (rules in another order,
 * policy statements written in IAM's other spellings, the owner's rules and
 * statements neither drift nor lost); and every document slipway sends read
 * back through the same parsers as what it meant. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store/bucket.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static void want_default(struct bucket_state *w, const char *name)
{
    struct store_bucket_settings cfg;
    store_bucket_settings_defaults(&cfg);
    bucket_want(&cfg, name, "us-east-1", "", 0, NULL, NULL, w);
}

/* The plan's lines as "OP SETTING: FROM -> TO", one per line. */
static char *lines(const struct store_bucket_plan *p)
{
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < p->n; i++) {
        const struct store_bucket_change *c = &p->changes[i];
        buf_addf(&b, "%c %s: %s -> %s\n", c->op, c->setting, c->from ? c->from : "-",
                 c->to ? c->to : "-");
    }
    return buf_detach(&b, NULL);
}

static void expect_plan(const struct store_bucket_plan *p, const char *want)
{
    char *got = lines(p);
    if (strcmp(got, want) != 0)
        fail_msg("plan:\n%s\nexpected:\n%s", got, want);
    free(got);
}

/* A bucket read back as slipway would have left it. */
static void have_as_wanted(const struct bucket_state *w, struct bucket_state *h)
{
    memset(h, 0, sizeof(*h));
    h->name = xstrdup(w->name);
    h->exists = 1;
    h->versioning = w->versioning;
    h->sse = w->sse;
    h->kms_key_id = w->kms_key_id ? xstrdup(w->kms_key_id) : NULL;
    memcpy(h->pab, w->pab, sizeof(h->pab));
    h->deny_tls = w->deny_tls ? STMT_AS_WANTED : STMT_ABSENT;
    h->log_delivery = w->log_delivery ? STMT_AS_WANTED : STMT_ABSENT;
    for (int k = 0; k < RULE_N; k++)
        if (w->rules[k].id) {
            h->rules[k] = w->rules[k];
            h->rules[k].id = xstrdup(w->rules[k].id);
            h->rules[k].prefix = xstrdup(w->rules[k].prefix);
        }
    h->log_bucket = w->log_bucket ? xstrdup(w->log_bucket) : NULL;
    h->log_prefix = w->log_prefix ? xstrdup(w->log_prefix) : NULL;
}

static int parse_cfg(const char *yaml, struct store_bucket_settings *s, struct sw_err *err)
{
    return store_bucket_settings_parse(yaml, strlen(yaml), "infra.yml", s, err);
}

static void cfg_bad(const char *yaml, const char *msg)
{
    struct store_bucket_settings s;
    struct sw_err err = {0};
    assert_int_equal(parse_cfg(yaml, &s, &err), SW_EINVAL);
    if (strcmp(err.msg, msg) != 0)
        fail_msg("document:\n%s\nexpected: %s\n     got: %s", yaml, msg, err.msg);
    store_bucket_settings_free(&s);
}

/* ---- infra.yml ------------------------------------------------------------------------------ */

static void test_settings_defaults(void **state)
{
    struct store_bucket_settings s;
    struct sw_err err = {0};
    /* An empty file, a comment only, and no file at all are the defaults. */
    assert_int_equal(parse_cfg("", &s, &err), 0);
    assert_int_equal(s.versioning, 1);
    assert_int_equal(s.sse_kms, 0);
    assert_null(s.kms_key_id);
    assert_true(s.block_public_acls && s.ignore_public_acls && s.block_public_policy &&
                s.restrict_public_buckets);
    assert_int_equal(s.deny_insecure_transport, 1);
    assert_int_equal(s.noncurrent_days, 30);
    assert_int_equal(s.abort_multipart_days, 1);
    assert_int_equal(s.logs_days, 90);
    assert_null(s.log_bucket);
    store_bucket_settings_free(&s);
    assert_int_equal(parse_cfg("# nothing\n", &s, &err), 0);
    assert_int_equal(s.noncurrent_days, 30);
    store_bucket_settings_free(&s);
    assert_int_equal(store_bucket_settings_load("/nonexistent/infra.yml", &s, &err), 0);
    assert_int_equal(s.logs_days, 90);
    store_bucket_settings_free(&s);
}

static void test_settings_override(void **state)
{
    struct store_bucket_settings s;
    struct sw_err err = {0};
    assert_int_equal(parse_cfg("versioning: false\n"
                               "encryption:\n"
                               "  type: aws:kms\n"
                               "  kms_key_id: alias/slipway\n"
                               "public_access_block:\n"
                               "  block_public_policy: false\n"
                               "deny_insecure_transport: false\n"
                               "lifecycle:\n"
                               "  noncurrent_days: 7\n"
                               "  abort_multipart_days: false\n"
                               "  logs_days: 365\n"
                               "logging:\n"
                               "  bucket: site-logs\n"
                               "  prefix: access/\n",
                               &s, &err),
                     0);
    assert_int_equal(s.versioning, 0);
    assert_int_equal(s.sse_kms, 1);
    assert_string_equal(s.kms_key_id, "alias/slipway");
    assert_int_equal(s.block_public_acls, 1);
    assert_int_equal(s.block_public_policy, 0);
    assert_int_equal(s.deny_insecure_transport, 0);
    assert_int_equal(s.noncurrent_days, 7);
    assert_int_equal(s.abort_multipart_days, 0);
    assert_int_equal(s.logs_days, 365);
    assert_string_equal(s.log_bucket, "site-logs");
    assert_string_equal(s.log_prefix, "access/");
    store_bucket_settings_free(&s);
    /* All four flags at once; logging: null is "not managed". */
    assert_int_equal(parse_cfg("public_access_block: false\nlogging: null\n", &s, &err), 0);
    assert_false(s.block_public_acls || s.ignore_public_acls || s.block_public_policy ||
                 s.restrict_public_buckets);
    assert_null(s.log_bucket);
    store_bucket_settings_free(&s);
}

static void test_settings_errors(void **state)
{
    cfg_bad("versionning: true\n",
            "infra.yml:1:1: unknown key 'versionning' (expected versioning, encryption, "
            "public_access_block, deny_insecure_transport, lifecycle, logging)");
    cfg_bad("- versioning\n",
            "infra.yml:1:1: expected a mapping of settings (versioning, encryption, "
            "public_access_block, deny_insecure_transport, lifecycle, logging)");
    /* YAML 1.2: yes is a string, not a boolean. */
    cfg_bad("versioning: yes\n", "infra.yml:1:13: versioning: expected true or false, got 'yes'");
    cfg_bad("deny_insecure_transport: \"true\"\n",
            "infra.yml:1:26: deny_insecure_transport: expected true or false, got 'true'");
    cfg_bad("encryption: AES256\n",
            "infra.yml:1:13: encryption: expected a mapping (type, kms_key_id), got 'AES256'");
    cfg_bad("encryption:\n  type: aes256\n",
            "infra.yml:2:9: encryption.type: expected AES256 or aws:kms, got 'aes256'");
    cfg_bad("encryption:\n  type: AES256\n  kms_key_id: alias/x\n",
            "infra.yml:3:15: encryption.kms_key_id: expected only with type: aws:kms");
    cfg_bad("encryption:\n  type: aws:kms\n  kms_key_id: my key\n",
            "infra.yml:3:15: encryption.kms_key_id: expected a KMS key id, ARN or alias/NAME (1 "
            "to 2048 printable characters without spaces), got 'my key'");
    cfg_bad("encryption:\n  algorithm: AES256\n",
            "infra.yml:2:3: encryption: unknown key 'algorithm' (expected type, kms_key_id)");
    cfg_bad("public_access_block:\n  block_public_acl: true\n",
            "infra.yml:2:3: public_access_block: unknown key 'block_public_acl' (expected "
            "block_public_acls, ignore_public_acls, block_public_policy, "
            "restrict_public_buckets)");
    cfg_bad("public_access_block:\n  ignore_public_acls: 1\n",
            "infra.yml:2:23: public_access_block.ignore_public_acls: expected true or false, "
            "got '1'");
    cfg_bad("public_access_block: all\n",
            "infra.yml:1:22: public_access_block: expected true or false (all four flags) or "
            "a mapping (block_public_acls, ignore_public_acls, block_public_policy, "
            "restrict_public_buckets), got 'all'");
    cfg_bad("lifecycle:\n  noncurrent_days: 0\n",
            "infra.yml:2:20: lifecycle.noncurrent_days: expected a number of days from 1 to "
            "36500, or false for no rule, got '0'");
    cfg_bad("lifecycle:\n  logs_days: 36501\n",
            "infra.yml:2:14: lifecycle.logs_days: expected a number of days from 1 to 36500, "
            "or false for no rule, got '36501'");
    cfg_bad("lifecycle:\n  abort_multipart_days: true\n",
            "infra.yml:2:25: lifecycle.abort_multipart_days: expected a number of days from 1 "
            "to 36500, or false for no rule, got 'true'");
    cfg_bad("lifecycle:\n  noncurrent: 30\n",
            "infra.yml:2:3: lifecycle: unknown key 'noncurrent' (expected noncurrent_days, "
            "abort_multipart_days, logs_days)");
    cfg_bad("logging:\n  prefix: logs/\n",
            "infra.yml:2:3: logging: missing key 'bucket' (expected the logs bucket's name)");
    cfg_bad("logging:\n  bucket: Site_Logs\n",
            "infra.yml:2:11: logging.bucket: expected a bucket name, got 'Site_Logs' (it may "
            "hold only lowercase letters, digits, '.' and '-')");
    cfg_bad("logging:\n  bucket: site-logs\n  prefix: /abs/\n",
            "infra.yml:3:11: logging.prefix: expected a key prefix such as logs/site/ "
            "(printable ASCII without spaces or backslashes, not starting with '/', at most "
            "512 bytes), got '/abs/'");
    cfg_bad("logging: site-logs\n",
            "infra.yml:1:10: logging: expected a mapping (bucket, prefix), got 'site-logs'");
    /* The YAML loader's own refusals keep their position too. */
    cfg_bad("versioning: true\nversioning: false\n",
            "infra.yml:2:1: duplicate key 'versioning' (first at 1:1)");
}

/* ---- reading answers ---------------------------------------------------------------------------
 */

#define NS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

static void test_parse_versioning(void **state)
{
    struct bucket_state h = {0};
    struct sw_err err = {0};
    const char *enabled = "<VersioningConfiguration " NS "><Status>Enabled</Status>"
                          "</VersioningConfiguration>";
    assert_int_equal(bucket_parse_versioning(enabled, strlen(enabled), &h, &err), 0);
    assert_int_equal(h.versioning, VERSIONING_ENABLED);
    const char *never = "<?xml version=\"1.0\"?><VersioningConfiguration " NS "/>";
    assert_int_equal(bucket_parse_versioning(never, strlen(never), &h, &err), 0);
    assert_int_equal(h.versioning, VERSIONING_NEVER);
    /* moto's root element */
    const char *moto = "<GetBucketVersioningResponse " NS "><Status>Suspended</Status>"
                       "</GetBucketVersioningResponse>";
    assert_int_equal(bucket_parse_versioning(moto, strlen(moto), &h, &err), 0);
    assert_int_equal(h.versioning, VERSIONING_SUSPENDED);
    const char *bad = "<VersioningConfiguration><Status>enabled</Status></VersioningConfiguration>";
    assert_int_equal(bucket_parse_versioning(bad, strlen(bad), &h, &err), SW_EINVAL);
    assert_string_equal(err.msg, "GetBucketVersioning: Status: expected Enabled or Suspended");
    const char *other = "<Error><Code>x</Code></Error>";
    assert_int_equal(bucket_parse_versioning(other, strlen(other), &h, &err), SW_EINVAL);
    assert_string_equal(err.msg,
                        "GetBucketVersioning: expected a VersioningConfiguration document, got "
                        "<Error>");
    const char *broken = "<VersioningConfiguration><Status>Enabled</Status>";
    assert_int_equal(bucket_parse_versioning(broken, strlen(broken), &h, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "GetBucketVersioning: line 1"));
    bucket_state_free(&h);
}

static void test_parse_encryption(void **state)
{
    struct bucket_state h = {0};
    struct sw_err err = {0};
    const char *aes = "<ServerSideEncryptionConfiguration " NS "><Rule>"
                      "<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm>"
                      "</ApplyServerSideEncryptionByDefault><BucketKeyEnabled>false"
                      "</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>";
    assert_int_equal(bucket_parse_encryption(aes, strlen(aes), &h, &err), 0);
    assert_int_equal(h.sse, SSE_AES256);
    assert_null(h.kms_key_id);
    const char *kms = "<ServerSideEncryptionConfiguration><Rule>"
                      "<ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm>"
                      "<KMSMasterKeyID>arn:aws:kms:us-east-1:1:key/k</KMSMasterKeyID>"
                      "</ApplyServerSideEncryptionByDefault></Rule>"
                      "</ServerSideEncryptionConfiguration>";
    assert_int_equal(bucket_parse_encryption(kms, strlen(kms), &h, &err), 0);
    assert_int_equal(h.sse, SSE_KMS);
    assert_string_equal(h.kms_key_id, "arn:aws:kms:us-east-1:1:key/k");
    const char *dsse = "<ServerSideEncryptionConfiguration><Rule>"
                       "<ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms:dsse"
                       "</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>"
                       "</ServerSideEncryptionConfiguration>";
    assert_int_equal(bucket_parse_encryption(dsse, strlen(dsse), &h, &err), 0);
    assert_int_equal(h.sse, SSE_OTHER);
    assert_string_equal(h.sse_other, "aws:kms:dsse");
    assert_null(h.kms_key_id);
    /* A control character in what would reach a message is refused. */
    const char *forged = "<ServerSideEncryptionConfiguration><Rule>"
                         "<ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms"
                         "</SSEAlgorithm><KMSMasterKeyID>k&#10;+ bucket: fake</KMSMasterKeyID>"
                         "</ApplyServerSideEncryptionByDefault></Rule>"
                         "</ServerSideEncryptionConfiguration>";
    assert_int_equal(bucket_parse_encryption(forged, strlen(forged), &h, &err), SW_EINVAL);
    assert_string_equal(err.msg, "GetBucketEncryption: KMSMasterKeyID: expected printable text "
                                 "of at most 1024 bytes");
    const char *noalg = "<ServerSideEncryptionConfiguration><Rule>"
                        "<ApplyServerSideEncryptionByDefault/></Rule>"
                        "</ServerSideEncryptionConfiguration>";
    assert_int_equal(bucket_parse_encryption(noalg, strlen(noalg), &h, &err), SW_EINVAL);
    bucket_state_free(&h);
}

static void test_parse_pab_logging(void **state)
{
    struct bucket_state h = {0};
    struct sw_err err = {0};
    const char *pab = "<PublicAccessBlockConfiguration " NS "><BlockPublicAcls>true"
                      "</BlockPublicAcls><IgnorePublicAcls>false</IgnorePublicAcls>"
                      "<RestrictPublicBuckets>true</RestrictPublicBuckets>"
                      "</PublicAccessBlockConfiguration>";
    assert_int_equal(bucket_parse_pab(pab, strlen(pab), &h, &err), 0);
    assert_int_equal(h.pab[PAB_BLOCK_ACLS], 1);
    assert_int_equal(h.pab[PAB_IGNORE_ACLS], 0);
    assert_int_equal(h.pab[PAB_BLOCK_POLICY], 0); /* absent: off */
    assert_int_equal(h.pab[PAB_RESTRICT], 1);
    const char *bad = "<PublicAccessBlockConfiguration><BlockPublicAcls>TRUE</BlockPublicAcls>"
                      "</PublicAccessBlockConfiguration>";
    assert_int_equal(bucket_parse_pab(bad, strlen(bad), &h, &err), SW_EINVAL);
    assert_string_equal(err.msg, "GetPublicAccessBlock: BlockPublicAcls: expected true or false");

    const char *on = "<BucketLoggingStatus xmlns=\"http://doc.s3.amazonaws.com/2006-03-01\">"
                     "<LoggingEnabled><TargetBucket>site-logs</TargetBucket><TargetPrefix>logs/"
                     "site/</TargetPrefix></LoggingEnabled></BucketLoggingStatus>";
    assert_int_equal(bucket_parse_logging(on, strlen(on), &h, &err), 0);
    assert_string_equal(h.log_bucket, "site-logs");
    assert_string_equal(h.log_prefix, "logs/site/");
    const char *off = "<BucketLoggingStatus " NS "/>";
    assert_int_equal(bucket_parse_logging(off, strlen(off), &h, &err), 0);
    assert_null(h.log_bucket);
    const char *nobucket = "<BucketLoggingStatus><LoggingEnabled><TargetPrefix>x</TargetPrefix>"
                           "</LoggingEnabled></BucketLoggingStatus>";
    assert_int_equal(bucket_parse_logging(nobucket, strlen(nobucket), &h, &err), SW_EINVAL);
    assert_string_equal(err.msg, "GetBucketLogging: TargetBucket: expected a bucket name");
    bucket_state_free(&h);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void test_lifecycle_by_meaning(void **state)
{
    struct bucket_state w, h = {0};
    struct sw_err err = {0};
    struct s3xml_node *doc = NULL;
    struct store_bucket_plan p = {0};
    want_default(&w, "site");
    assert_string_equal(w.rule_ids[RULE_LOGS], "slipway-expire-logs");
    /* slipway's rules in another order, each filter spelled differently (no
     * filter but the old rule-level Prefix, an empty Filter, a Filter with an
     * empty Prefix), actions before the ID, and the owner's own rule between. */
    const char *xml = "<LifecycleConfiguration " NS ">"
                      "<Rule><Expiration><Days>90</Days></Expiration><ID>slipway-expire-logs</ID>"
                      "<Prefix>logs/</Prefix><Status>Enabled</Status></Rule>"
                      "<Rule><ID>owner&#1;odd</ID><Status>Disabled</Status></Rule>"
                      "<Rule><ID>owner-archive</ID><Filter><Prefix>archive/</Prefix></Filter>"
                      "<Status>Enabled</Status><Transition><Days>30</Days><StorageClass>GLACIER"
                      "</StorageClass></Transition></Rule>"
                      "<Rule><ID>slipway-abort-multipart</ID><Filter/><Status>Enabled</Status>"
                      "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1"
                      "</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>"
                      "<Rule><ID>slipway-noncurrent-versions</ID><Filter><Prefix/></Filter>"
                      "<Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>30"
                      "</NoncurrentDays></NoncurrentVersionExpiration></Rule>"
                      "</LifecycleConfiguration>";
    assert_int_equal(bucket_parse_lifecycle(xml, strlen(xml), &w, &h, &doc, &err), 0);
    assert_int_equal(bucket_diff(&w, &h, 0, SEC_BIT(SEC_LIFECYCLE), &p), 0);
    assert_int_equal(p.n, 0);
    /* Written back: the owner's rule as it was, slipway's after it. */
    struct buf out = BUF_INIT;
    bucket_xml_lifecycle(&w, doc, &out);
    assert_non_null(strstr(out.data, "<Rule><ID>owner-archive</ID><Filter><Prefix>archive/"
                                     "</Prefix></Filter><Status>Enabled</Status><Transition>"
                                     "<Days>30</Days><StorageClass>GLACIER</StorageClass>"
                                     "</Transition></Rule>"));
    assert_true(strstr(out.data, "owner-archive") < strstr(out.data, "slipway-"));
    /* An owner's ID slipway could not print goes back as it came. */
    assert_non_null(strstr(out.data, "<ID>owner&#1;odd</ID>"));
    /* ... and that reads back as the same meaning. */
    struct bucket_state h2 = {0};
    struct s3xml_node *doc2 = NULL;
    assert_int_equal(bucket_parse_lifecycle(out.data, out.len, &w, &h2, &doc2, &err), 0);
    assert_int_equal(bucket_diff(&w, &h2, 0, SEC_ALL & SEC_BIT(SEC_LIFECYCLE), &p), 0);
    assert_int_equal(doc2->n_kids, 5);
    s3xml_free(doc2);
    bucket_state_free(&h2);
    buf_free(&out);
    s3xml_free(doc);
    bucket_state_free(&h);
    bucket_state_free(&w);
    store_bucket_plan_free(&p);
}

static void test_lifecycle_drift(void **state)
{
    struct bucket_state w, h = {0};
    struct sw_err err = {0};
    struct s3xml_node *doc = NULL;
    struct store_bucket_plan p = {0};
    want_default(&w, "site");
    /* Each of slipway's rules changed in another way: another day count,
     * disabled, and a transition added to the third. */
    const char *xml = "<LifecycleConfiguration>"
                      "<Rule><ID>slipway-noncurrent-versions</ID><Filter/><Status>Enabled"
                      "</Status><NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays>"
                      "</NoncurrentVersionExpiration></Rule>"
                      "<Rule><ID>slipway-abort-multipart</ID><Filter/><Status>Disabled</Status>"
                      "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1"
                      "</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>"
                      "<Rule><ID>slipway-expire-logs</ID><Filter><And><Prefix>logs/</Prefix>"
                      "<ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></And></Filter><Status>"
                      "Enabled</Status><Expiration><Days>90</Days></Expiration></Rule>"
                      "</LifecycleConfiguration>";
    assert_int_equal(bucket_parse_lifecycle(xml, strlen(xml), &w, &h, &doc, &err), 0);
    assert_int_equal(bucket_diff(&w, &h, 0, SEC_BIT(SEC_LIFECYCLE), &p), SEC_BIT(SEC_LIFECYCLE));
    expect_plan(&p, "~ lifecycle rule slipway-noncurrent-versions: noncurrent versions expire "
                    "after 7 days -> noncurrent versions expire after 30 days\n"
                    "~ lifecycle rule slipway-abort-multipart: incomplete multipart uploads "
                    "abort after 1 day (disabled) -> incomplete multipart uploads abort after 1 "
                    "day\n"
                    "~ lifecycle rule slipway-expire-logs: objects expire after 90 days, under "
                    "logs/, with a filter on more than the prefix -> objects expire after 90 "
                    "days, under logs/\n");
    assert_int_equal(p.changed, 3);
    s3xml_free(doc);
    bucket_state_free(&h);
    store_bucket_plan_free(&p);

    /* A rule slipway no longer wants is removed, the owner's kept; none left:
     * nothing to send (the configuration is deleted). */
    struct store_bucket_settings cfg;
    store_bucket_settings_defaults(&cfg);
    cfg.noncurrent_days = cfg.abort_multipart_days = cfg.logs_days = 0;
    struct bucket_state w0;
    bucket_want(&cfg, "site", "us-east-1", "", 0, NULL, NULL, &w0);
    const char *one = "<LifecycleConfiguration><Rule><ID>slipway-abort-multipart</ID><Filter/>"
                      "<Status>Enabled</Status><AbortIncompleteMultipartUpload>"
                      "<DaysAfterInitiation>1</DaysAfterInitiation>"
                      "</AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>";
    h = (struct bucket_state){0};
    assert_int_equal(bucket_parse_lifecycle(one, strlen(one), &w0, &h, &doc, &err), 0);
    assert_int_equal(bucket_diff(&w0, &h, 0, SEC_BIT(SEC_LIFECYCLE), &p), SEC_BIT(SEC_LIFECYCLE));
    expect_plan(&p, "- lifecycle rule slipway-abort-multipart: incomplete multipart uploads "
                    "abort after 1 day -> -\n");
    struct buf out = BUF_INIT;
    bucket_xml_lifecycle(&w0, doc, &out);
    assert_int_equal(out.len, 0);
    buf_free(&out);
    s3xml_free(doc);
    bucket_state_free(&h);
    bucket_state_free(&w0);
    bucket_state_free(&w);
    store_bucket_plan_free(&p);
}

static void test_lifecycle_hostile(void **state)
{
    struct bucket_state w, h = {0};
    struct sw_err err = {0};
    struct s3xml_node *doc = NULL;
    want_default(&w, "site");
    const char *twice = "<LifecycleConfiguration>"
                        "<Rule><ID>slipway-abort-multipart</ID><Status>Enabled</Status></Rule>"
                        "<Rule><ID>slipway-abort-multipart</ID><Status>Enabled</Status></Rule>"
                        "</LifecycleConfiguration>";
    assert_int_equal(bucket_parse_lifecycle(twice, strlen(twice), &w, &h, &doc, &err), SW_EINVAL);
    assert_string_equal(err.msg, "GetBucketLifecycleConfiguration: two rules with the ID "
                                 "slipway-abort-multipart");
    assert_null(doc);
    const char *status = "<LifecycleConfiguration><Rule><ID>slipway-abort-multipart</ID>"
                         "<Status>On</Status></Rule></LifecycleConfiguration>";
    assert_int_equal(bucket_parse_lifecycle(status, strlen(status), &w, &h, &doc, &err), SW_EINVAL);
    assert_string_equal(err.msg, "GetBucketLifecycleConfiguration: rule "
                                 "slipway-abort-multipart: Status: expected Enabled or Disabled");
    /* A day count that is no number is "there, not a day count": drift, not a crash. */
    const char *days = "<LifecycleConfiguration><Rule><ID>slipway-abort-multipart</ID><Filter/>"
                       "<Status>Enabled</Status><AbortIncompleteMultipartUpload>"
                       "<DaysAfterInitiation>99999999999</DaysAfterInitiation>"
                       "</AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>";
    assert_int_equal(bucket_parse_lifecycle(days, strlen(days), &w, &h, &doc, &err), 0);
    assert_int_equal(h.rules[RULE_ABORT].abort_days, -1);
    s3xml_free(doc);
    /* Bounded: at most 1000 rules. */
    struct buf many = BUF_INIT;
    buf_adds(&many, "<LifecycleConfiguration>");
    for (int i = 0; i < BUCKET_RULES_MAX + 1; i++)
        buf_addf(&many, "<Rule><ID>r%d</ID><Status>Enabled</Status></Rule>", i);
    buf_adds(&many, "</LifecycleConfiguration>");
    assert_int_equal(bucket_parse_lifecycle(many.data, many.len, &w, &h, &doc, &err), SW_EINVAL);
    assert_string_equal(err.msg, "GetBucketLifecycleConfiguration: more than 1000 rules");
    buf_free(&many);
    bucket_state_free(&h);
    bucket_state_free(&w);
}

/* ---- the policy ---------------------------------------------------------------------------- */

static int deny_of(const char *policy, const struct bucket_state *w, struct sw_err *err)
{
    struct bucket_state h = {0};
    json_t *doc = NULL;
    int rc = bucket_parse_policy(policy, strlen(policy), w, &h, &doc, err);
    int deny = h.deny_tls;
    json_decref(doc);
    bucket_state_free(&h);
    return rc ? rc * 100 : deny;
}

static void test_policy_by_meaning(void **state)
{
    struct bucket_state w;
    struct sw_err err = {0};
    want_default(&w, "site");
    /* The spellings IAM takes as one: a bare "*" principal, the action in a
     * list and in capitals, the resources in the other order, the condition
     * value a JSON false and its key in other case. */
    assert_int_equal(
        deny_of(
            "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"Owner\",\"Effect\":"
            "\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::1:root\"},\"Action\":\"s3:*\","
            "\"Resource\":\"*\"},{\"Sid\":\"SlipwayDenyInsecureTransport\",\"Effect\":\"Deny\","
            "\"Principal\":\"*\",\"Action\":[\"S3:*\"],\"Resource\":[\"arn:aws:s3:::site/*\","
            "\"arn:aws:s3:::site\"],\"Condition\":{\"Bool\":{\"aws:securetransport\":false}}}]}",
            &w, &err),
        STMT_AS_WANTED);
    /* One statement, not in an array; {"AWS": ["*"]} */
    assert_int_equal(
        deny_of("{\"Statement\":{\"Sid\":\"SlipwayDenyInsecureTransport\",\"Effect\":\"Deny\","
                "\"Principal\":{\"AWS\":[\"*\"]},\"Action\":\"s3:*\",\"Resource\":["
                "\"arn:aws:s3:::site\",\"arn:aws:s3:::site/*\"],\"Condition\":{\"Bool\":{"
                "\"aws:SecureTransport\":[\"false\"]}}}}",
                &w, &err),
        STMT_AS_WANTED);
    /* What changes the meaning: NotAction, one resource only, another bucket,
     * an Allow, another condition. */
    const char *other[] = {
        "{\"Statement\":[{\"Sid\":\"SlipwayDenyInsecureTransport\",\"Effect\":\"Deny\","
        "\"Principal\":\"*\",\"NotAction\":\"s3:GetObject\",\"Action\":\"s3:*\",\"Resource\":["
        "\"arn:aws:s3:::site\",\"arn:aws:s3:::site/*\"],\"Condition\":{\"Bool\":{"
        "\"aws:SecureTransport\":\"false\"}}}]}",
        "{\"Statement\":[{\"Sid\":\"SlipwayDenyInsecureTransport\",\"Effect\":\"Deny\","
        "\"Principal\":\"*\",\"Action\":\"s3:*\",\"Resource\":\"arn:aws:s3:::site/*\","
        "\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}}]}",
        "{\"Statement\":[{\"Sid\":\"SlipwayDenyInsecureTransport\",\"Effect\":\"Deny\","
        "\"Principal\":\"*\",\"Action\":\"s3:*\",\"Resource\":[\"arn:aws:s3:::other\","
        "\"arn:aws:s3:::other/*\"],\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}}]}",
        "{\"Statement\":[{\"Sid\":\"SlipwayDenyInsecureTransport\",\"Effect\":\"Allow\","
        "\"Principal\":\"*\",\"Action\":\"s3:*\",\"Resource\":[\"arn:aws:s3:::site\","
        "\"arn:aws:s3:::site/*\"],\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}}]}",
        "{\"Statement\":[{\"Sid\":\"SlipwayDenyInsecureTransport\",\"Effect\":\"Deny\","
        "\"Principal\":\"*\",\"Action\":\"s3:*\",\"Resource\":[\"arn:aws:s3:::site\","
        "\"arn:aws:s3:::site/*\"],\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"true\"}}}]}",
    };
    for (size_t i = 0; i < sizeof(other) / sizeof(*other); i++)
        assert_int_equal(deny_of(other[i], &w, &err), STMT_OTHER);
    assert_int_equal(deny_of("{\"Statement\":[]}", &w, &err), STMT_ABSENT);
    /* Hostile documents are refused whole. */
    assert_int_equal(deny_of("{\"Statement\":[],\"Statement\":[]}", &w, &err), SW_EINVAL * 100);
    assert_non_null(strstr(err.msg, "GetBucketPolicy"));
    assert_int_equal(deny_of("[]", &w, &err), SW_EINVAL * 100);
    assert_string_equal(err.msg, "GetBucketPolicy: expected a JSON object");
    assert_int_equal(deny_of("{\"Statement\":[1]}", &w, &err), SW_EINVAL * 100);
    assert_string_equal(err.msg, "GetBucketPolicy: Statement[0]: expected an object");
    assert_int_equal(deny_of("{\"Statement\":[{\"Sid\":\"SlipwayDenyInsecureTransport\"},{\"Sid\":"
                             "\"SlipwayDenyInsecureTransport\"}]}",
                             &w, &err),
                     SW_EINVAL * 100);
    assert_string_equal(
        err.msg, "GetBucketPolicy: two statements with the Sid SlipwayDenyInsecureTransport");
    bucket_state_free(&w);
}

static void test_policy_written(void **state)
{
    struct bucket_state w, h = {0}, h2 = {0};
    struct sw_err err = {0};
    json_t *doc = NULL, *doc2 = NULL;
    struct store_bucket_settings cfg;
    store_bucket_settings_defaults(&cfg);
    /* The logs bucket of "site": the deny and the log delivery statements. */
    bucket_want(&cfg, "site-logs", "eu-west-1", "", 1, "site", "logs/site/", &w);
    const char *owner = "{\"Version\":\"2012-10-17\",\"Id\":\"mine\",\"Statement\":[{\"Sid\":"
                        "\"Owner\",\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::1:"
                        "root\"},\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::"
                        "site-logs/*\"},{\"Sid\":\"SlipwayDenyInsecureTransport\",\"Effect\":"
                        "\"Deny\",\"Principal\":\"*\",\"Action\":\"s3:*\",\"Resource\":\"*\"}]}";
    assert_int_equal(bucket_parse_policy(owner, strlen(owner), &w, &h, &doc, &err), 0);
    assert_int_equal(h.deny_tls, STMT_OTHER);
    assert_int_equal(h.log_delivery, STMT_ABSENT);
    struct store_bucket_plan p = {0};
    assert_int_equal(bucket_diff(&w, &h, 1, SEC_BIT(SEC_POLICY), &p), SEC_BIT(SEC_POLICY));
    expect_plan(&p, "~ policy statement SlipwayDenyInsecureTransport: a statement with this Sid "
                    "that says something else -> deny every request made without TLS "
                    "(aws:SecureTransport false)\n"
                    "+ policy statement SlipwayAccessLogsfbae041b02c4: - -> allow S3 server "
                    "access logs from site under logs/site/\n");
    assert_int_equal(p.changes[0].logs, 1);
    store_bucket_plan_free(&p);
    struct buf out = BUF_INIT;
    bucket_policy_json(&w, doc, &out);
    /* The owner's statement and Id kept; slipway's replaced, read back as meant. */
    assert_non_null(strstr(out.data, "\"Id\":\"mine\""));
    assert_non_null(strstr(out.data, "\"Sid\":\"Owner\""));
    assert_null(strstr(out.data, "\"Resource\":\"*\""));
    assert_int_equal(bucket_parse_policy(out.data, out.len, &w, &h2, &doc2, &err), 0);
    assert_int_equal(h2.deny_tls, STMT_AS_WANTED);
    assert_int_equal(h2.log_delivery, STMT_AS_WANTED);
    assert_non_null(strstr(out.data, "\"Resource\":\"arn:aws:s3:::site-logs/logs/site/*\""));
    assert_non_null(strstr(out.data, "\"aws:SourceArn\":\"arn:aws:s3:::site\""));
    buf_free(&out);
    /* Nothing of slipway's wanted and nothing of the owner's: no policy at all. */
    cfg.deny_insecure_transport = 0;
    struct bucket_state w0;
    bucket_want(&cfg, "site", "us-east-1", "", 0, NULL, NULL, &w0);
    const char *ours = "{\"Statement\":[{\"Sid\":\"SlipwayDenyInsecureTransport\"}]}";
    json_decref(doc);
    bucket_state_free(&h);
    assert_int_equal(bucket_parse_policy(ours, strlen(ours), &w0, &h, &doc, &err), 0);
    bucket_policy_json(&w0, doc, &out);
    assert_int_equal(out.len, 0);
    assert_int_equal(bucket_diff(&w0, &h, 0, SEC_BIT(SEC_POLICY), &p), SEC_BIT(SEC_POLICY));
    expect_plan(&p, "- policy statement SlipwayDenyInsecureTransport: a statement with this Sid "
                    "that says something else -> -\n");
    store_bucket_plan_free(&p);
    buf_free(&out);
    json_decref(doc);
    json_decref(doc2);
    bucket_state_free(&h);
    bucket_state_free(&h2);
    bucket_state_free(&w);
    bucket_state_free(&w0);
}

/* ---- documents sent, read back --------------------------------------------------------------- */

static void test_documents_round_trip(void **state)
{
    struct bucket_state w, h = {0};
    struct sw_err err = {0};
    struct store_bucket_settings cfg;
    store_bucket_settings_defaults(&cfg);
    cfg.sse_kms = 1;
    cfg.kms_key_id = xstrdup("alias/a&b<c>");
    cfg.log_bucket = xstrdup("site-logs");
    bucket_want(&cfg, "site", "eu-west-1", "prod/", 0, NULL, NULL, &w);
    assert_string_equal(w.log_prefix, "logs/site/");
    /* The logs rule of a store under a prefix covers that prefix's logs/. */
    assert_string_equal(w.rules[RULE_LOGS].prefix, "prod/logs/");
    assert_true(str_starts_with(w.rule_ids[RULE_LOGS], "slipway-expire-logs-"));
    assert_int_equal(strlen(w.rule_ids[RULE_LOGS]), strlen("slipway-expire-logs-") + 12);
    struct buf b = BUF_INIT;
    bucket_xml_versioning(&w, &b);
    assert_int_equal(bucket_parse_versioning(b.data, b.len, &h, &err), 0);
    buf_reset(&b);
    bucket_xml_encryption(&w, &b);
    assert_non_null(strstr(b.data, "<KMSMasterKeyID>alias/a&amp;b&lt;c&gt;</KMSMasterKeyID>"));
    assert_non_null(strstr(b.data, "<BucketKeyEnabled>true</BucketKeyEnabled>"));
    assert_int_equal(bucket_parse_encryption(b.data, b.len, &h, &err), 0);
    buf_reset(&b);
    bucket_xml_pab(&w, &b);
    assert_int_equal(bucket_parse_pab(b.data, b.len, &h, &err), 0);
    buf_reset(&b);
    bucket_xml_logging(&w, &b);
    assert_int_equal(bucket_parse_logging(b.data, b.len, &h, &err), 0);
    buf_reset(&b);
    struct s3xml_node *doc = NULL;
    bucket_xml_lifecycle(&w, NULL, &b);
    assert_int_equal(bucket_parse_lifecycle(b.data, b.len, &w, &h, &doc, &err), 0);
    s3xml_free(doc);
    buf_reset(&b);
    json_t *pol = NULL;
    bucket_policy_json(&w, NULL, &b);
    assert_int_equal(bucket_parse_policy(b.data, b.len, &w, &h, &pol, &err), 0);
    json_decref(pol);
    h.exists = 1;
    struct store_bucket_plan p = {0};
    assert_int_equal(bucket_diff(&w, &h, 0, SEC_ALL, &p), 0);
    assert_int_equal(p.n, 0);
    buf_reset(&b);
    bucket_xml_create("eu-west-1", &b);
    assert_non_null(strstr(b.data, "<LocationConstraint>eu-west-1</LocationConstraint>"));
    buf_reset(&b);
    bucket_xml_create("us-east-1", &b);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    bucket_state_free(&h);
    bucket_state_free(&w);
    store_bucket_settings_free(&cfg);
    assert_string_equal(bucket_partition("cn-north-1"), "aws-cn");
    assert_string_equal(bucket_partition("us-gov-west-1"), "aws-us-gov");
    assert_string_equal(bucket_partition("eu-west-1"), "aws");
}

/* ---- the comparison
 * ------------------------------------------------------------------------------ */

static void test_diff(void **state)
{
    struct bucket_state w, h;
    struct store_bucket_plan p = {0};
    want_default(&w, "site");
    /* A bucket that does not exist: created, then every setting. */
    struct bucket_state none = {0};
    assert_int_equal(bucket_diff(&w, &none, 0, SEC_ALL, &p), SEC_ALL & ~SEC_BIT(SEC_LOGGING));
    assert_string_equal(p.changes[0].setting, "bucket");
    assert_string_equal(p.changes[0].to, "create site in us-east-1");
    assert_int_equal(p.changes[0].op, '+');
    assert_int_equal(p.added, 6);
    assert_int_equal(p.changed, 5);
    store_bucket_plan_free(&p);
    /* The drift of the issue: versioning suspended and one public access flag
     * cleared show as exactly those two. */
    have_as_wanted(&w, &h);
    assert_int_equal(bucket_diff(&w, &h, 0, SEC_ALL, &p), 0);
    h.versioning = VERSIONING_SUSPENDED;
    h.pab[PAB_IGNORE_ACLS] = 0;
    assert_int_equal(bucket_diff(&w, &h, 0, SEC_ALL, &p),
                     SEC_BIT(SEC_VERSIONING) | SEC_BIT(SEC_PAB));
    expect_plan(&p, "~ versioning: Suspended -> Enabled\n"
                    "~ public access block IgnorePublicAcls: false -> true\n");
    store_bucket_plan_free(&p);
    bucket_state_free(&h);
    /* Suspended wanted: a bucket never versioned is no drift (versioning
     * cannot be turned off, only suspended). */
    w.versioning = VERSIONING_SUSPENDED;
    have_as_wanted(&w, &h);
    h.versioning = VERSIONING_NEVER;
    assert_int_equal(bucket_diff(&w, &h, 0, SEC_ALL, &p), 0);
    /* Encryption: the KMS key counts; another algorithm is drift. */
    w.sse = SSE_KMS;
    w.kms_key_id = xstrdup("alias/new");
    h.sse = SSE_KMS;
    h.kms_key_id = xstrdup("alias/old");
    assert_int_equal(bucket_diff(&w, &h, 0, SEC_BIT(SEC_ENCRYPTION), &p), SEC_BIT(SEC_ENCRYPTION));
    expect_plan(&p, "~ encryption: aws:kms with key alias/old -> aws:kms with key alias/new\n");
    store_bucket_plan_free(&p);
    /* Logging, managed only when a logs bucket is named. */
    assert_int_equal(bucket_diff(&w, &h, 0, SEC_BIT(SEC_LOGGING), &p), 0);
    w.log_managed = 1;
    w.log_bucket = xstrdup("site-logs");
    w.log_prefix = xstrdup("logs/site/");
    assert_int_equal(bucket_diff(&w, &h, 0, SEC_BIT(SEC_LOGGING), &p), SEC_BIT(SEC_LOGGING));
    h.log_bucket = xstrdup("other");
    h.log_prefix = xstrdup("");
    assert_int_equal(bucket_diff(&w, &h, 0, SEC_BIT(SEC_LOGGING), &p), SEC_BIT(SEC_LOGGING));
    expect_plan(&p, "+ logging: - -> to s3://site-logs/logs/site/\n"
                    "~ logging: to s3://other/ -> to s3://site-logs/logs/site/\n");
    assert_int_equal(p.added, 1);
    assert_int_equal(p.changed, 1);
    bucket_plan_truncate(&p, 1);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.changed, 0);
    store_bucket_plan_free(&p);
    bucket_state_free(&h);
    bucket_state_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings_defaults),
        cmocka_unit_test(test_settings_override),
        cmocka_unit_test(test_settings_errors),
        cmocka_unit_test(test_parse_versioning),
        cmocka_unit_test(test_parse_encryption),
        cmocka_unit_test(test_parse_pab_logging),
        cmocka_unit_test(test_lifecycle_by_meaning),
        cmocka_unit_test(test_lifecycle_drift),
        cmocka_unit_test(test_lifecycle_hostile),
        cmocka_unit_test(test_policy_by_meaning),
        cmocka_unit_test(test_policy_written),
        cmocka_unit_test(test_documents_round_trip),
        cmocka_unit_test(test_diff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
