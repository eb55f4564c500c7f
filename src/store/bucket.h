/*
 * Private to the store module (its one public header is store.h): the pure
 * half of `slipway infra`, so it can be tested without a service. What a
 * bucket's settings are (struct bucket_state, for what is wanted and for
 * what was read back alike), the parsers of S3's answers, the builders of
 * the request documents and the comparison that turns two states into the
 * list of changes a plan prints. bucket.c adds the requests around them.
 *
 * slipway owns only what it names: its lifecycle rules are known by their
 * IDs (slipway-...), its policy statements by their Sids (Slipway...). Every
 * other rule and statement is the bucket owner's, kept as it is and never
 * counted as drift.
 */
#ifndef SW_STORE_BUCKET_H
#define SW_STORE_BUCKET_H

#include "store/s3xml.h"
#include "store/store.h"

#include <jansson.h>

/* Bounds on what is read back: a lifecycle configuration holds at most 1000
 * rules and a bucket policy at most 20 KB on AWS; an answer longer than
 * BUCKET_DOC_MAX is refused before it is parsed. */
#define BUCKET_DOC_MAX (1024 * 1024)
#define BUCKET_RULES_MAX 1000
#define BUCKET_STATEMENTS_MAX 1000
#define BUCKET_TEXT_MAX 1024 /* a key id, a target prefix, a rule's ID and prefix */

enum bucket_versioning { VERSIONING_NEVER, VERSIONING_ENABLED, VERSIONING_SUSPENDED };
enum bucket_sse { SSE_NONE, SSE_AES256, SSE_KMS, SSE_OTHER };
enum { PAB_BLOCK_ACLS, PAB_IGNORE_ACLS, PAB_BLOCK_POLICY, PAB_RESTRICT, PAB_N };
/* slipway's lifecycle rules, in the order they are written and shown */
enum { RULE_NONCURRENT, RULE_ABORT, RULE_LOGS, RULE_N };
/* a policy statement slipway manages, as read back */
enum { STMT_ABSENT = 0, STMT_AS_WANTED = 1, STMT_OTHER = -1 };

/* The S3 names of the public access block's four flags, in PAB_* order. */
extern const char *const bucket_pab_names[PAB_N];

/* One lifecycle rule, by meaning. Wanted rules have one action and a plain
 * prefix filter; a rule read back is parsed into the same fields, so the two
 * compare equal exactly when they do the same thing, however written
 * (<Filter/>, <Filter><Prefix/></Filter> and no filter are one thing). */
struct bucket_rule {
    char *id;     /* NULL: no such rule */
    int enabled;  /* Status Enabled */
    char *prefix; /* the filter's prefix; "" the whole bucket */
    int filtered; /* the filter says more than a prefix (tags, sizes, And) */
    int expiration_days, noncurrent_days, abort_days; /* 0: none; -1 there, not a day count */
    int other; /* other actions (transitions, dates, delete markers, version counts) */
};

/* A bucket's settings: what slipway wants, or what was read back. */
struct bucket_state {
    char *name;
    char *region;    /* wanted: where it is created */
    char *partition; /* "aws", "aws-cn", "aws-us-gov": ARNs are made with it */
    int exists;
    enum bucket_versioning versioning;
    enum bucket_sse sse;
    char *sse_other; /* SSE_OTHER: the algorithm named, for messages */
    char *kms_key_id;
    int pab[PAB_N];
    /* slipway's statements: wanted 0/1; read back STMT_* */
    int deny_tls;
    int log_delivery;
    char *log_source;        /* the bucket whose server access logs this one receives */
    char *log_source_prefix; /* ...under this prefix */
    struct bucket_rule rules[RULE_N];
    char *rule_ids[RULE_N]; /* wanted: the IDs slipway owns, even of rules it does not want */
    /* server access logging; wanted: managed only when log_managed */
    int log_managed;
    char *log_bucket, *log_prefix; /* read back: NULL bucket when off */
};

void bucket_state_free(struct bucket_state *s);

/* The partition of a region: aws-cn for cn-*, aws-us-gov for us-gov-*, else aws. */
const char *bucket_partition(const char *region);
/* What slipway wants of a bucket named name in region, from the settings.
 * logs: it is the logs bucket receiving source's access logs under
 * source_prefix (AES256 then, the only default encryption S3's log delivery
 * writes into; no logging of its own; the logs rule covers source_prefix).
 * store_prefix: the store's key prefix ("" or "a/b/"), under which the
 * logs/ rule of the main bucket applies. */
void bucket_want(const struct store_bucket_settings *cfg, const char *name, const char *region,
                 const char *store_prefix, int logs, const char *source, const char *source_prefix,
                 struct bucket_state *out);
/* Where the store's server access logs go in the logs bucket: the setting,
 * else "logs/BUCKET/". Caller frees. */
char *bucket_log_prefix(const struct store_bucket_settings *cfg, const char *bucket);
/* The ID slipway gives rule RULE_* of want (the logs rule's depends on its prefix). */
void bucket_rule_id(int kind, const char *prefix, struct buf *out);
/* The Sid of the statement letting S3 deliver source's access logs. */
void bucket_log_sid(const char *source, struct buf *out);
#define BUCKET_DENY_SID "SlipwayDenyInsecureTransport"

/* ---- reading S3's answers (each strict; SW_EINVAL "what: why") ---------------------------- */

int bucket_parse_versioning(const char *body, size_t len, struct bucket_state *have,
                            struct sw_err *err);
int bucket_parse_encryption(const char *body, size_t len, struct bucket_state *have,
                            struct sw_err *err);
int bucket_parse_pab(const char *body, size_t len, struct bucket_state *have, struct sw_err *err);
int bucket_parse_logging(const char *body, size_t len, struct bucket_state *have,
                         struct sw_err *err);
/* Finds want's rules in the configuration by their IDs; *doc keeps the tree
 * for writing the owner's rules back (caller frees with s3xml_free). */
int bucket_parse_lifecycle(const char *body, size_t len, const struct bucket_state *want,
                           struct bucket_state *have, struct s3xml_node **doc, struct sw_err *err);
/* Finds want's statements in the policy by their Sids and judges each by
 * meaning (STMT_AS_WANTED or STMT_OTHER); *doc keeps the policy for writing
 * the owner's statements back (caller json_decrefs). */
int bucket_parse_policy(const char *body, size_t len, const struct bucket_state *want,
                        struct bucket_state *have, json_t **doc, struct sw_err *err);

/* ---- building what is sent --------------------------------------------------------------- */

void bucket_xml_versioning(const struct bucket_state *want, struct buf *out);
void bucket_xml_encryption(const struct bucket_state *want, struct buf *out);
void bucket_xml_pab(const struct bucket_state *want, struct buf *out);
void bucket_xml_logging(const struct bucket_state *want, struct buf *out);
void bucket_xml_create(const char *region, struct buf *out); /* "" for us-east-1 */
/* The lifecycle configuration: the owner's rules of have_doc (may be NULL)
 * as they were, then want's. 0 with out empty when no rule is left (the
 * configuration is then deleted). */
void bucket_xml_lifecycle(const struct bucket_state *want, const struct s3xml_node *have_doc,
                          struct buf *out);
/* The policy: the owner's statements of have_doc (may be NULL), then want's.
 * Empty out when no statement is left. */
void bucket_policy_json(const struct bucket_state *want, json_t *have_doc, struct buf *out);

/* ---- comparing ----------------------------------------------------------------------------- */

/* What a change touches: one request each when applied. */
enum bucket_section {
    SEC_BUCKET,
    SEC_VERSIONING,
    SEC_ENCRYPTION,
    SEC_PAB,
    SEC_POLICY,
    SEC_LIFECYCLE,
    SEC_LOGGING,
};

#define SEC_ALL 0x7fu
#define SEC_BIT(s) (1u << (s))

/* Appends to plan the differences of have from want in the sections of the
 * mask (SEC_BIT(SEC_*) | ...), in the order they are applied (logs: want is
 * the logs bucket), and returns the mask of the sections that differ. Pure. */
unsigned bucket_diff(const struct bucket_state *want, const struct bucket_state *have, int logs,
                     unsigned sections, struct store_bucket_plan *plan);
/* Drops the changes of plan from index n on (a write that failed). */
void bucket_plan_truncate(struct store_bucket_plan *plan, size_t n);

#endif
