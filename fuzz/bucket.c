/*
 * libFuzzer target for what `slipway infra` reads back from S3
 * (src/store/bucket.c): the first byte picks the answer (versioning,
 * encryption, public access block, logging, lifecycle, policy; of the
 * store's bucket or of a logs bucket), the rest is its body, from a service
 * that may be hostile. Beyond the sanitizers it checks what plan and apply
 * rely on: a refusal is SW_EINVAL on one printable line; every text kept from
 * an accepted answer is printable (it reaches a terminal through the plan);
 * the comparison of an accepted answer with slipway's settings gives changes
 * whose texts are printable; and what apply would write back (the owner's
 * rules and statements with slipway's) reads back as exactly slipway's
 * settings, the owner's rules and statements all kept.
 */
#include "fuzz.h"
#include "store/bucket.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_refusal(int rc, const struct sw_err *err)
{
    CHECK(rc == SW_EINVAL);
    CHECK(err->msg[0] && text_valid(err->msg, sizeof(err->msg), 0));
}

static int printable(const char *s)
{
    return !s || text_valid(s, 1 << 20, 0);
}

static size_t rule_count(const struct s3xml_node *doc)
{
    size_t n = 0;
    for (size_t i = 0; doc && i < doc->n_kids; i++)
        n += !strcmp(doc->kids[i]->name, "Rule");
    return n;
}

static size_t ours_count(const struct bucket_state *w, const struct s3xml_node *doc)
{
    size_t n = 0;
    for (size_t i = 0; doc && i < doc->n_kids; i++) {
        const char *id = s3xml_text(doc->kids[i], "ID");
        for (int k = 0; id && k < RULE_N; k++)
            n += !strcmp(doc->kids[i]->name, "Rule") && !strcmp(id, w->rule_ids[k]);
    }
    return n;
}

static size_t statement_count(json_t *doc)
{
    json_t *s = json_object_get(doc, "Statement");
    return json_is_array(s) ? json_array_size(s) : s ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int kind = data[0] % 6, logs = (data[0] / 6) % 2;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    struct store_bucket_settings cfg;
    store_bucket_settings_defaults(&cfg);
    cfg.log_bucket = "site-logs";
    struct bucket_state w, h = {0};
    if (logs)
        bucket_want(&cfg, "site-logs", "us-east-1", "", 1, "site", "logs/site/", &w);
    else
        bucket_want(&cfg, "site", "us-east-1", "prod/", 0, NULL, NULL, &w);
    h.name = xstrdup(w.name);
    h.exists = 1;
    struct sw_err err = {0};
    struct s3xml_node *lc = NULL;
    json_t *pol = NULL;
    int rc;
    switch (kind) {
    case 0:
        rc = bucket_parse_versioning(body, len, &h, &err);
        break;
    case 1:
        rc = bucket_parse_encryption(body, len, &h, &err);
        break;
    case 2:
        rc = bucket_parse_pab(body, len, &h, &err);
        break;
    case 3:
        rc = bucket_parse_logging(body, len, &h, &err);
        break;
    case 4:
        rc = bucket_parse_lifecycle(body, len, &w, &h, &lc, &err);
        break;
    default:
        rc = bucket_parse_policy(body, len, &w, &h, &pol, &err);
    }
    if (rc) {
        check_refusal(rc, &err);
        CHECK(!lc && !pol);
        goto out;
    }
    CHECK(printable(h.sse_other) && printable(h.kms_key_id));
    CHECK(printable(h.log_bucket) && printable(h.log_prefix));
    for (int k = 0; k < RULE_N; k++) {
        CHECK(printable(h.rules[k].id) && printable(h.rules[k].prefix));
        CHECK(!h.rules[k].id || !strcmp(h.rules[k].id, w.rule_ids[k]));
    }

    struct store_bucket_plan p = {0};
    unsigned mask = bucket_diff(&w, &h, logs, SEC_ALL, &p);
    CHECK((mask == 0) == (p.n == 0));
    CHECK(p.added + p.changed + p.removed == p.n);
    for (size_t i = 0; i < p.n; i++) {
        const struct store_bucket_change *c = &p.changes[i];
        CHECK(c->op == '+' || c->op == '~' || c->op == '-');
        CHECK(printable(c->setting) && printable(c->from) && printable(c->to));
        CHECK((c->op == '+') == !c->from && (c->op == '-') == !c->to);
    }
    store_bucket_plan_free(&p);

    /* What apply would write back reads back as slipway's settings, with
     * every rule or statement of the owner's kept. */
    struct buf out = BUF_INIT;
    struct bucket_state h2 = {0};
    h2.name = xstrdup(w.name);
    h2.exists = 1;
    if (kind == 4) {
        struct s3xml_node *lc2 = NULL;
        bucket_xml_lifecycle(&w, lc, &out);
        /* (More than S3's 1000 rules is S3's to refuse when apply sends it.) */
        if (out.len && rule_count(lc) + RULE_N <= BUCKET_RULES_MAX) {
            CHECK(bucket_parse_lifecycle(out.data, out.len, &w, &h2, &lc2, &err) == 0);
            CHECK(rule_count(lc2) - ours_count(&w, lc2) == rule_count(lc) - ours_count(&w, lc));
            CHECK(bucket_diff(&w, &h2, logs, SEC_BIT(SEC_LIFECYCLE), &p) == 0);
            s3xml_free(lc2);
        }
    } else if (kind == 5) {
        json_t *pol2 = NULL;
        bucket_policy_json(&w, pol, &out);
        CHECK(out.len);
        CHECK(bucket_parse_policy(out.data, out.len, &w, &h2, &pol2, &err) == 0);
        CHECK(h2.deny_tls == STMT_AS_WANTED && h2.log_delivery == (logs ? STMT_AS_WANTED : 0));
        CHECK(statement_count(pol2) - 1 - (size_t)logs ==
              statement_count(pol) - (size_t)(h.deny_tls != STMT_ABSENT) -
                  (size_t)(h.log_delivery != STMT_ABSENT));
        json_decref(pol2);
    }
    store_bucket_plan_free(&p);
    bucket_state_free(&h2);
    buf_free(&out);
out:
    s3xml_free(lc);
    json_decref(pol);
    bucket_state_free(&h);
    bucket_state_free(&w);
    return 0;
}
