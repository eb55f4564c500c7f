/*
 * libFuzzer target for the audit log's two documents (src/deploy/history.c): an event
 * "events/<seq>.json" (deploy_event_parse) and the head "events/head.json"
 * (deploy_head_parse). The first byte of the input chooses: odd ('e') an event, even ('h')
 * the head; the rest is the document, as someone else wrote it into a shared bucket.
 *
 * Beyond the sanitizers (and ASan's leak check): an accepted event has a bounded positive
 * seq and generation, a valid time, environment, action and slot, release ids that are
 * release ids, a link that is empty or 64 lowercase hex digits, and no control character in
 * any text field except line breaks and tabs in the message (history prints them; anything
 * else could forge a line of someone's terminal); read under its own key it is accepted, under
 * another sequence's key refused. A refused event leaves the event cleared and the link empty.
 * An accepted head names a bounded seq with a hash exactly when seq > 0 and per-environment
 * entries no newer than it; the event it holds, if any, is an accepted event of the head's
 * seq, its environment's entry at that seq and generation, and hashes to the head's hash;
 * written back as head_save does, it reads the same. Every refusal names the key and says why.
 *
 * First byte % 4 == 2 (e.g. 'b'): the head's local copy in a project's cache
 * (deploy_head_copy_parse). An accepted copy has a SHA-256 as its ETag, a token of visible
 * ASCII, and a head that holds its event (or is empty); formatted again with its token it
 * reads the same and formats to the same bytes. A refused one leaves nothing behind.
 */
#include "fuzz.h"
#include "deploy/internal.h"
#include "release/release.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEQ_MAX 999999999999LL     /* the largest sequence a 12-digit event key names */
#define GEN_MAX ((int64_t)1 << 50) /* generations: as in state documents */
#define HEAD_KEY "events/head.json"

static void check_refused(int rc, const struct sw_err *err, const char *key)
{
    CHECK(rc == SW_EINVAL && err->code == rc);
    CHECK(strncmp(err->msg, key, strlen(key)) == 0 && err->msg[strlen(key)] == ':');
    CHECK(strlen(err->msg) > strlen(key) + 2);
}

/* One line of text: UTF-8 with no C0, DEL or C1 control character. */
static void check_line(const char *s)
{
    CHECK(!s || utf8_valid(s, 1));
}

static void check_event(const struct deploy_event *e, const char *prev)
{
    int64_t ms;

    CHECK(e->seq >= 1 && e->seq <= SEQ_MAX);
    CHECK(e->generation >= 1 && e->generation <= GEN_MAX);
    CHECK(e->time && e->env && e->action);
    CHECK(time_parse_iso(e->time, &ms) == 0 && ms >= 0);
    CHECK(env_name_check(e->env, NULL) == 0);
    CHECK(deploy_action_valid(e->action));
    CHECK(!e->slot || !strcmp(e->slot, "blue") || !strcmp(e->slot, "green"));
    CHECK(e->switched >= -1 && e->switched <= 1);
    CHECK(!e->from || release_id_valid(e->from));
    CHECK(!e->to || release_id_valid(e->to));
    check_line(e->time);
    check_line(e->env);
    check_line(e->actor);
    check_line(e->action);
    check_line(e->from);
    check_line(e->to);
    check_line(e->slot);
    CHECK(!e->actor || strlen(e->actor) <= 256);
    CHECK(!e->message || text_valid(e->message, 65536, 1));
    CHECK(!prev[0] || hex_lower_valid(prev, SHA256_HEX_LEN));
}

static void check_cleared(const struct deploy_event *e, const char *prev)
{
    static const struct deploy_event zero;
    CHECK(!memcmp(e, &zero, sizeof(zero)));
    CHECK(prev[0] == '\0');
}

static void fuzz_event(const char *buf, size_t len)
{
    static const char key[] = "events/fuzz.json";
    struct deploy_event e;
    struct sw_err err = {0};
    char prev[SHA256_HEX_LEN + 1] = "x", prev2[SHA256_HEX_LEN + 1] = "x";
    int rc;

    memset(&e, 0x5a, sizeof(e)); /* the parser must not trust what it is given */
    rc = deploy_event_parse(key, buf, len, &e, prev, &err);
    if (rc) {
        check_refused(rc, &err, key);
        check_cleared(&e, prev);
        return;
    }
    check_event(&e, prev);

    /* Under its own key it reads the same; under another sequence's, it is refused. */
    struct deploy_event f;
    int64_t seq2 = e.seq > 1 ? e.seq - 1 : e.seq + 1;
    char *own = xasprintf("events/%012lld.json", (long long)e.seq);
    char *other = xasprintf("events/%012lld.json", (long long)seq2);
    CHECK(deploy_event_parse(own, buf, len, &f, prev2, &err) == 0);
    CHECK(f.seq == e.seq && f.generation == e.generation && !strcmp(prev, prev2));
    deploy_event_clear(&f);
    memset(&err, 0, sizeof(err));
    rc = deploy_event_parse(other, buf, len, &f, prev2, &err);
    check_refused(rc, &err, other);
    check_cleared(&f, prev2);
    free(other);
    free(own);

    deploy_event_clear(&e);
    check_cleared(&e, "");
}

static void check_head(int64_t seq, const char *hash, json_t *envs)
{
    const char *name;
    json_t *v;

    CHECK(seq >= 0 && seq <= SEQ_MAX);
    CHECK(seq > 0 ? hex_lower_valid(hash, SHA256_HEX_LEN) : hash[0] == '\0');
    CHECK(json_is_object(envs));
    json_object_foreach(envs, name, v)
    {
        CHECK(env_name_check(name, NULL) == 0);
        CHECK(json_is_object(v));
        json_t *s = json_object_get(v, "seq"), *g = json_object_get(v, "generation");
        CHECK(json_is_integer(s) && json_integer_value(s) >= 1 && json_integer_value(s) <= seq);
        CHECK(json_is_integer(g) && json_integer_value(g) >= 1 && json_integer_value(g) <= GEN_MAX);
    }
}

/* The event a head holds: an event of the head's seq, which its environment's entry records,
 * hashing to the head's hash. */
static void check_held(const char *event, int64_t seq, const char *hash, json_t *envs)
{
    struct deploy_event e;
    char prev[SHA256_HEX_LEN + 1], h[SHA256_HEX_LEN + 1];
    struct sw_err err = {0};
    CHECK(seq > 0);
    CHECK(deploy_event_parse(HEAD_KEY, event, strlen(event), &e, prev, &err) == 0);
    CHECK(e.seq == seq);
    json_t *v = json_object_get(envs, e.env);
    CHECK(json_integer_value(json_object_get(v, "seq")) == seq);
    CHECK(json_integer_value(json_object_get(v, "generation")) == e.generation);
    sha256_hex(event, strlen(event), h);
    CHECK(!strcmp(h, hash));
    deploy_event_clear(&e);
}

static void fuzz_head(const char *buf, size_t len)
{
    static json_t untouched;
    json_t *envs = &untouched, *envs2 = &untouched;
    int64_t seq = -7, seq2;
    char hash[SHA256_HEX_LEN + 1], hash2[SHA256_HEX_LEN + 1];
    char *event = (char *)&untouched, *event2 = NULL;
    struct sw_err err = {0};
    int rc;

    rc = deploy_head_parse(buf, len, &seq, hash, &envs, &event, &err);
    if (rc) {
        check_refused(rc, &err, HEAD_KEY);
        CHECK(envs == &untouched && event == (char *)&untouched);
        return;
    }
    check_head(seq, hash, envs);
    if (event)
        check_held(event, seq, hash, envs);

    /* Written back as head_save writes it (holding the event, when it has one), it reads the
     * same. */
    json_t *held = event ? json_string(event) : seq ? json_string(hash) : json_null();
    json_t *doc = json_pack("{s:I, s:o, s:O}", "seq", (json_int_t)seq, event ? "event" : "hash",
                            held, "envs", envs);
    CHECK(doc != NULL);
    char *body = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK(body != NULL);
    rc = deploy_head_parse(body, strlen(body), &seq2, hash2, &envs2, &event2, &err);
    if (rc)
        fprintf(stderr, "the rewritten head is refused: %s\n%s\n", err.msg, body);
    CHECK(rc == 0);
    CHECK(seq2 == seq && !strcmp(hash2, hash) && json_equal(envs2, envs));
    CHECK(event ? event2 && !strcmp(event, event2) : !event2);

    free(body);
    free(event);
    free(event2);
    json_decref(doc);
    json_decref(envs2);
    json_decref(envs);
}

static void fuzz_copy(const char *buf, size_t len)
{
    char *doc = malloc(len + 1), token[STORE_ETAG_TOKEN_MAX], t2[STORE_ETAG_TOKEN_MAX];
    CHECK(doc);
    memcpy(doc, buf, len);
    doc[len] = '\0';
    struct deploy_head_memo h, h2;
    if (deploy_head_copy_parse(doc, len, &h, token) != 0) {
        CHECK(!h.have && !h.envs && !h.event && !token[0]);
        free(doc);
        return;
    }
    CHECK(h.have && h.from_copy && strlen(h.etag) == SHA256_HEX_LEN);
    CHECK(hex_lower_valid(h.etag, SHA256_HEX_LEN));
    CHECK(token[0] && strlen(token) < STORE_ETAG_TOKEN_MAX);
    for (const char *c = token; *c; c++)
        CHECK(*c > ' ' && *c < 0x7f);
    CHECK(h.seq >= 0 && h.seq <= SEQ_MAX && (h.event || h.seq == 0));
    CHECK(h.stored == !h.event);
    char *again = deploy_head_copy_format(&h, token);
    CHECK(again);
    CHECK(deploy_head_copy_parse(again, strlen(again), &h2, t2) == 0);
    CHECK(h2.seq == h.seq && !strcmp(h2.hash, h.hash) && !strcmp(h2.etag, h.etag));
    CHECK(!strcmp(t2, token));
    CHECK((!h.event && !h2.event) || (h.event && h2.event && !strcmp(h.event, h2.event)));
    char *third = deploy_head_copy_format(&h2, t2);
    CHECK(third && !strcmp(again, third));
    free(third);
    free(again);
    deploy_head_memo_clear(&h2);
    deploy_head_memo_clear(&h);
    free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        fuzz_event((const char *)data + 1, size - 1);
    else if (data[0] % 4 == 2)
        fuzz_copy((const char *)data + 1, size - 1);
    else
        fuzz_head((const char *)data + 1, size - 1);
    return 0;
}
