/*
 * The audit log: "events/<seq>.json", one immutable document per change, each
 * carrying the SHA-256 of the one before it, and one mutable document,
 * "events/head.json", holding the newest event itself and each environment's
 * newest recorded generation.
 *
 * The head is what makes the chain checkable at both ends: the links pin
 * every event to the one before it, the head pins the newest, so removing,
 * editing or truncating any event is detected. It is also what makes an
 * append cost the same with ten events or a hundred thousand, and one write
 * after the change: a writer reads the head, stores the event the head holds
 * as its own object (create-only, same bytes whoever writes it; off the
 * change's path, beside its other reads), then moves the head to a new one
 * holding its event, with compare-and-swap. A head written before the head
 * held its event (it named the event by hash) is continued the old way once:
 * claim the next sequence number with a create-only write, then move the head;
 * a writer that finds that number taken checks that the event found links to
 * the head, moves the head over it and tries again.
 *
 * Every document here is hostile input: parsed strictly, never half-used.
 */
#include "deploy/internal.h"
#include "release/release.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVENT_PREFIX "events/"
#define HEAD_KEY "events/head.json"
#define SEQ_MAX 999999999999LL     /* the largest sequence a 12-digit event key names */
#define GEN_MAX ((int64_t)1 << 50) /* generations, as state documents bound them */
#define SW_EAGAIN_ROUND 1          /* internal: read the head again */

static char *event_key(int64_t seq)
{
    return xasprintf(EVENT_PREFIX "%012lld.json", (long long)seq);
}

/* The sequence number an event key names, or 0 for any other key. */
static int64_t seq_of(const char *key)
{
    const char *p = key + strlen(EVENT_PREFIX);
    if (strlen(p) != 17 || strcmp(p + 12, ".json") != 0)
        return 0;
    int64_t v = 0;
    for (int i = 0; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

void deploy_event_clear(struct deploy_event *e)
{
    free(e->time);
    free(e->env);
    free(e->actor);
    free(e->action);
    free(e->from);
    free(e->to);
    free(e->message);
    free(e->slot);
    memset(e, 0, sizeof(*e));
}

void deploy_events_free(struct deploy_event *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        deploy_event_clear(&v[i]);
    free(v);
}

/* ---- parsing -------------------------------------------------------------- */

/* The time exactly as event_dump writes it. time_parse_iso alone also takes
 * blanks and line breaks (sscanf skips them before each number) and dates
 * before 1970 or past 9999 that do not format back, and history prints the
 * text as it is, so anything else could forge a line of its output. */
static int time_canonical(const char *s)
{
    int64_t ms;
    char back[40];
    if (time_parse_iso(s, &ms) != 0 || ms < 0)
        return 0;
    time_format_iso(ms, back, sizeof(back));
    return !strcmp(back, s);
}

int deploy_event_parse(const char *key, const char *data, size_t len, struct deploy_event *e,
                       char prev[SHA256_HEX_LEN + 1], struct sw_err *err)
{
    json_t *o;
    memset(e, 0, sizeof(*e));
    prev[0] = '\0';
    int rc = json_doc_parse(key, data, len, &o, err);
    if (rc)
        return rc;
    struct json_fields jf = JSON_FIELDS_INIT(key);
    const char *why = NULL;
    const char *time = json_string_value(json_object_get(o, "time"));
    const char *env = json_string_value(json_object_get(o, "env"));
    const char *action = json_string_value(json_object_get(o, "action"));
    const char *slot = json_string_value(json_field(o, "slot"));
    json_t *p = json_field(o, "prev"), *sw = json_field(o, "switched");
    if (!json_is_object(o) || !time || !env || !action) {
        why = "not an event document (needs seq, time, env, action)";
        goto out;
    }
    e->seq = json_field_int(&jf, o, "seq", 1, SEQ_MAX, JSON_FIELD_REQUIRED);
    e->generation = json_field_int(&jf, o, "generation", 1, GEN_MAX, JSON_FIELD_REQUIRED);
    if (jf.bad || (seq_of(key) && seq_of(key) != e->seq)) {
        why = "seq or generation is not a positive number matching its key";
        goto out;
    }
    if (!time_canonical(time) || env_name_check(env, NULL) != 0 || !deploy_action_valid(action)) {
        why = "time, env or action has the wrong form";
        goto out;
    }
    if (p && (!json_is_string(p) || !hex_lower_valid(json_string_value(p), SHA256_HEX_LEN))) {
        why = "prev is not 64 lowercase hex digits";
        goto out;
    }
    if ((json_field(o, "slot") && (!slot || (strcmp(slot, "blue") && strcmp(slot, "green")))) ||
        (sw && !json_is_boolean(sw))) {
        why = "slot or switched has the wrong form";
        goto out;
    }
    e->time = xstrdup(time);
    e->env = xstrdup(env);
    e->action = xstrdup(action);
    e->slot = slot ? xstrdup(slot) : NULL;
    e->switched = sw ? json_is_true(sw) : -1;
    e->from = deploy_release_field(&jf, o, "from");
    e->to = deploy_release_field(&jf, o, "to");
    e->actor = json_field_str(&jf, o, "actor", DEPLOY_ACTOR_MAX, 0);
    e->message = json_field_str(&jf, o, "message", DEPLOY_MESSAGE_MAX, JSON_FIELD_MULTILINE);
    if (jf.bad)
        why = "from, to, actor or message has the wrong form";
    else if (p)
        memcpy(prev, json_string_value(p), SHA256_HEX_LEN + 1);
out:
    json_decref(o);
    if (why) {
        deploy_event_clear(e);
        return sw_err_set(err, SW_EINVAL, "%s: %s", key, why);
    }
    return 0;
}

/* Loads event seq; hash (optional) receives the SHA-256 of the document,
 * body (optional) the document itself (caller frees). */
static int event_load_body(struct store *st, int64_t seq, struct deploy_event *e,
                           char hash[SHA256_HEX_LEN + 1], char prev[SHA256_HEX_LEN + 1],
                           char **body, struct sw_err *err)
{
    char *key = event_key(seq), *data = NULL, unused[SHA256_HEX_LEN + 1];
    size_t len;
    int rc = store_get(st, key, &data, &len, NULL, err);
    if (rc == SW_ENOTFOUND)
        rc = sw_err_set(err, SW_ENOTFOUND, "%s: missing", key);
    if (!rc)
        rc = deploy_event_parse(key, data, len, e, prev ? prev : unused, err);
    /* Hashed here, not taken from the ETag: on S3 an ETag is the service's. */
    if (!rc && hash)
        sha256_hex(data, len, hash);
    if (!rc && body) {
        *body = data;
        data = NULL;
    }
    free(data);
    free(key);
    return rc;
}

/* Loads event seq; hash (optional) receives the SHA-256 of the document. */
static int event_load(struct store *st, int64_t seq, struct deploy_event *e,
                      char hash[SHA256_HEX_LEN + 1], char prev[SHA256_HEX_LEN + 1],
                      struct sw_err *err)
{
    return event_load_body(st, seq, e, hash, prev, NULL, err);
}

/* ---- the head ------------------------------------------------------------------ */

/* A head in memory is a struct deploy_head_memo (internal.h): seq, the
 * newest event (0: none); hash, its SHA-256 ("" when seq is 0); event, the
 * newest event's document (NULL from a head that names it by hash only);
 * stored, 1 when events/<seq>.json is known to exist; envs,
 * {"env": {"seq": n, "generation": g}}; etag, "" when the document does not
 * exist; have, 1 when it may be used without reading the head again. */

static void head_clear(struct deploy_head_memo *h)
{
    json_decref(h->envs);
    free(h->event);
    memset(h, 0, sizeof(*h));
}

void deploy_head_memo_clear(struct deploy_head_memo *m)
{
    head_clear(m);
}

static int head_load(struct store *st, struct deploy_head_memo *h, int *missing,
                     struct sw_err *err);
static int head_store_newest(struct store *st, struct deploy_head_memo *h, struct sw_err *err);

static int head_copy_load(struct store *st, const char *path, struct deploy_head_memo *h);

void deploy_head_prefetch(struct store *st, const char *copy, struct deploy_head_memo *memo)
{
    int missing = 0;
    if (head_copy_load(st, copy, memo) == 0) {
        /* The held event's create-only write below is done as after a read. */
    } else if (head_load(st, memo, &missing, NULL) != 0 || missing) {
        head_clear(memo);
        return;
    }
    memo->have = 1;
    /* The change's next append stores the event the head holds before it
     * moves the head: here, beside the change's other reads, not after its
     * state write. Failing, the append tries again and reports it. */
    if (!memo->stored)
        head_store_newest(st, memo, NULL);
}

static int64_t head_env_generation(const struct deploy_head_memo *h, const char *env)
{
    return json_integer_value(json_object_get(json_object_get(h->envs, env), "generation"));
}

/* event (taken) is the document of e, the new newest event; stored: whether
 * it exists as events/<seq>.json. */
static void head_advance(struct deploy_head_memo *h, const struct deploy_event *e, char *event,
                         int stored)
{
    h->seq = e->seq;
    sha256_hex(event, strlen(event), h->hash);
    free(h->event);
    h->event = event;
    h->stored = stored;
    if (e->generation > head_env_generation(h, e->env))
        json_object_set_new(h->envs, e->env,
                            json_pack("{s:I, s:I}", "seq", (json_int_t)e->seq, "generation",
                                      (json_int_t)e->generation));
}

/* The newest event a head holds: a document of its own, checked as every
 * event is, whose sequence is the head's and which the head's entry for its
 * environment records. */
static const char *head_event_check(json_t *ev, int64_t seq, json_t *envs, struct sw_err *err)
{
    struct deploy_event e;
    char prev[SHA256_HEX_LEN + 1];
    const char *why = NULL;
    if (!json_is_string(ev) || seq == 0)
        return "event is not an event's document, or the head's seq is 0";
    if (deploy_event_parse(HEAD_KEY, json_string_value(ev), json_string_length(ev), &e, prev,
                           err) != 0)
        return NULL; /* err says it */
    json_t *v = json_object_get(envs, e.env);
    if (e.seq != seq || json_integer_value(json_object_get(v, "seq")) != seq ||
        json_integer_value(json_object_get(v, "generation")) != e.generation)
        why = "its event's seq, environment or generation is not the head's";
    deploy_event_clear(&e);
    return why;
}

int deploy_head_parse(const char *data, size_t len, int64_t *seq, char hash[SHA256_HEX_LEN + 1],
                      json_t **envs, char **event, struct sw_err *err)
{
    json_t *o;
    int rc = json_doc_parse(HEAD_KEY, data, len, &o, err);
    if (rc)
        return rc;
    struct json_fields jf = JSON_FIELDS_INIT(HEAD_KEY);
    *seq = json_field_int(&jf, o, "seq", 0, SEQ_MAX, JSON_FIELD_REQUIRED);
    const char *hx = json_string_value(json_object_get(o, "hash"));
    json_t *ev = json_object_get(o, "envs"), *newest = json_field(o, "event");
    /* A head holds its newest event, or (written before it did) names it by
     * hash: one or the other, never both. */
    if (!json_is_object(ev) ||
        (*seq > 0 && !newest && (!hx || !hex_lower_valid(hx, SHA256_HEX_LEN))) || (newest && hx))
        json_field_bad(&jf, "envs", "hash, event or envs of the wrong form");
    const char *name;
    json_t *v;
    json_object_foreach(ev, name, v)
    {
        if (jf.bad || env_name_check(name, NULL) != 0 || !json_is_object(v)) {
            json_field_bad(&jf, "envs", "an environment of the wrong form");
            break;
        }
        int64_t s = json_field_int(&jf, v, "seq", 1, SEQ_MAX, JSON_FIELD_REQUIRED);
        json_field_int(&jf, v, "generation", 1, GEN_MAX, JSON_FIELD_REQUIRED);
        if (s > *seq)
            json_field_bad(&jf, "seq", "an environment's event is newer than the head");
    }
    if (jf.bad) {
        json_decref(o);
        return sw_err_set(err, SW_EINVAL,
                          HEAD_KEY ": not an audit head (needs seq, envs and the newest event "
                                   "or its hash, each well formed)");
    }
    if (newest) {
        struct sw_err why_err = {0};
        const char *why = head_event_check(newest, *seq, ev, &why_err);
        if (why || why_err.code) {
            /* why_err names the head already: "events/head.json: ..." */
            rc = sw_err_set(err, SW_EINVAL, HEAD_KEY ": the event it holds: %s",
                            why ? why : why_err.msg + strlen(HEAD_KEY ": "));
            json_decref(o);
            return rc;
        }
        sha256_hex(json_string_value(newest), json_string_length(newest), hash);
    } else {
        snprintf(hash, SHA256_HEX_LEN + 1, "%s", *seq > 0 ? hx : "");
    }
    if (event)
        *event = newest ? xstrdup(json_string_value(newest)) : NULL;
    *envs = json_incref(ev);
    json_decref(o);
    return 0;
}

/* Reads the head. A store from before the head existed has events but no
 * head: it is built once from a listing (the only time an append lists). */
static int head_load(struct store *st, struct deploy_head_memo *h, int *missing, struct sw_err *err)
{
    char *data = NULL;
    size_t len;
    memset(h, 0, sizeof(*h));
    *missing = 0;
    int rc = store_get(st, HEAD_KEY, &data, &len, h->etag, err);
    if (!rc) {
        rc = deploy_head_parse(data, len, &h->seq, h->hash, &h->envs, &h->event, err);
        /* A head naming its event by hash was written after the event was. */
        h->stored = !h->event;
        free(data);
        return rc;
    }
    if (rc != SW_ENOTFOUND)
        return rc;
    *missing = 1;
    h->etag[0] = '\0';
    h->envs = json_object();
    /* No head and no first event: the log is empty, known without a listing (a
     * key may lack s3:ListBucket). A log whose first event was removed is
     * caught by the next append (event 2 links to no head) and by --verify. */
    char *first = event_key(1);
    struct store_stat sb;
    rc = store_head(st, first, &sb, 0, err);
    free(first);
    if (rc == SW_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    struct store_list l;
    if ((rc = store_list_all(st, EVENT_PREFIX, &l, err)))
        return rc;
    for (size_t i = 0; i < l.n && !rc; i++) {
        int64_t seq = seq_of(l.keys[i]);
        struct deploy_event e;
        char *body;
        if (!seq)
            continue;
        if (seq != h->seq + 1)
            rc = sw_err_set(err, SW_EINVAL, "%s: expected sequence %lld", l.keys[i],
                            (long long)h->seq + 1);
        else if (!(rc = event_load_body(st, seq, &e, NULL, NULL, &body, err))) {
            head_advance(h, &e, body, 1);
            deploy_event_clear(&e);
        }
    }
    store_list_free(&l);
    return rc;
}

/* The head document h stands for (caller frees), or NULL without its event. */
static char *head_dump(const struct deploy_head_memo *h)
{
    if (h->seq && !h->event)
        return NULL;
    json_t *doc = json_pack("{s:I, s:o, s:O}", "seq", (json_int_t)h->seq, "event",
                            h->seq ? json_string(h->event) : json_null(), "envs", h->envs);
    char *body = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    return body;
}

/* Writes h as the head, holding its newest event; compare-and-swap on the
 * ETag h was read with. */
static int head_save(struct store *st, struct deploy_head_memo *h, struct sw_err *err)
{
    char *body = head_dump(h);
    if (!body)
        return sw_err_set(err, SW_EINVAL, "audit log: the newest event is not at hand");
    int rc = store_put_if_match(st, HEAD_KEY, body, strlen(body), h->etag[0] ? h->etag : NULL,
                                h->etag, err);
    free(body);
    return rc;
}

/* ---- the head's local copy ---------------------------------------------------- */

/* A file of this machine's (deploy_opts.head_copy): the head as its last change
 * left it, "slipway-head-copy 1\netag ETAG\ntoken TOKEN\n" and the document
 * (TOKEN: store_etag_token's, or "-"), so that the next change starts from it
 * rather than a read. It is trusted as far as the
 * head's compare-and-swap write: an ETag the head no longer has is refused,
 * and the change reads the head. Where someone else writes the head too, that
 * refusal would cost a request at every change, so after one the copy is paused
 * ("paused-until MS") for a while and changes read the head as before. */
#define HEAD_COPY_MAGIC "slipway-head-copy 1\n"
#define HEAD_COPY_PAUSE_MS (10 * 60 * 1000)

/* The pause the copy at data holds, or 0. */
static int64_t head_copy_paused(const char *data)
{
    long long until = 0;
    if (strncmp(data, HEAD_COPY_MAGIC, strlen(HEAD_COPY_MAGIC)) ||
        sscanf(data + strlen(HEAD_COPY_MAGIC), "paused-until %lld\n", &until) != 1)
        return 0;
    return until;
}

/* The value of line "NAME VALUE\n" at *p (advanced past it), at most max - 1
 * visible ASCII characters, into out; 0 or -1. */
static int copy_line(const char **p, const char *name, char *out, size_t max)
{
    size_t n = strlen(name);
    const char *v = *p + n + 1, *nl = strchr(*p, '\n');
    if (strncmp(*p, name, n) || (*p)[n] != ' ' || !nl || nl == v || (size_t)(nl - v) >= max)
        return -1;
    for (const char *c = v; c < nl; c++)
        if (*c <= ' ' || *c >= 0x7f)
            return -1;
    memcpy(out, v, (size_t)(nl - v));
    out[nl - v] = '\0';
    *p = nl + 1;
    return 0;
}

int deploy_head_copy_parse(const char *data, size_t len, struct deploy_head_memo *h,
                           char token[STORE_ETAG_TOKEN_MAX])
{
    memset(h, 0, sizeof(*h));
    token[0] = '\0';
    const char *p = data + strlen(HEAD_COPY_MAGIC);
    int rc = -1;
    if (len > strlen(HEAD_COPY_MAGIC) && strnlen(data, len + 1) == len &&
        !strncmp(data, HEAD_COPY_MAGIC, strlen(HEAD_COPY_MAGIC)) &&
        copy_line(&p, "etag", h->etag, SHA256_HEX_LEN + 1) == 0 &&
        hex_lower_valid(h->etag, SHA256_HEX_LEN) &&
        copy_line(&p, "token", token, STORE_ETAG_TOKEN_MAX) == 0 &&
        deploy_head_parse(p, len - (size_t)(p - data), &h->seq, h->hash, &h->envs, &h->event,
                          NULL) == 0 &&
        (h->event || !h->seq))
        rc = 0;
    if (rc) {
        head_clear(h);
        token[0] = '\0';
        return rc;
    }
    h->have = 1;
    h->from_copy = 1;
    h->stored = !h->event; /* an empty log holds none */
    return 0;
}

char *deploy_head_copy_format(const struct deploy_head_memo *h, const char *token)
{
    char *doc = h->etag[0] ? head_dump(h) : NULL;
    char *data =
        doc ? xasprintf(HEAD_COPY_MAGIC "etag %s\ntoken %s\n%s", h->etag, token, doc) : NULL;
    free(doc);
    return data;
}

static int head_copy_load(struct store *st, const char *path, struct deploy_head_memo *h)
{
    char *data = NULL, token[STORE_ETAG_TOKEN_MAX];
    size_t len;
    memset(h, 0, sizeof(*h));
    if (!path || file_read_all(path, &data, &len, NULL) != 0)
        return -1;
    /* Checked as the head itself is: a cache is a file anyone with the
     * project could have written. */
    int rc = deploy_head_copy_parse(data, len, h, token);
    free(data);
    if (!rc && strcmp(token, "-") != 0)
        store_etag_learn(st, HEAD_KEY, h->etag, token);
    return rc;
}

void deploy_head_copy_save(struct store *st, const char *path, const struct deploy_head_memo *memo)
{
    if (!path)
        return;
    char *data = NULL, token[STORE_ETAG_TOKEN_MAX];
    size_t len;
    int64_t now = time_now_ms();
    if (memo->copy_refused) {
        data =
            xasprintf(HEAD_COPY_MAGIC "paused-until %lld\n", (long long)(now + HEAD_COPY_PAUSE_MS));
        fs_write_replace(path, data, strlen(data), NULL);
        free(data);
        return;
    }
    if (file_read_all(path, &data, &len, NULL) == 0 && head_copy_paused(data) > now) {
        free(data);
        return;
    }
    free(data);
    if (!store_etag_token(st, HEAD_KEY, memo->etag, token))
        snprintf(token, sizeof(token), "-");
    if (!memo->have || !(data = deploy_head_copy_format(memo, token))) {
        unlink(path); /* whatever is there is older than the head */
        return;
    }
    fs_write_replace(path, data, strlen(data), NULL);
    free(data);
}

/* Stores the event h holds as events/<seq>.json, create-only: whoever writes
 * it writes the head's bytes, so finding it there already is fine when those
 * are the bytes there; anything else there was put by someone else. */
static int head_store_newest(struct store *st, struct deploy_head_memo *h, struct sw_err *err)
{
    char *key = event_key(h->seq), *there = NULL;
    size_t len = strlen(h->event), tlen;
    int rc = store_put(st, key, h->event, len, STORE_IF_ABSENT, NULL, err);
    if (rc == SW_EEXIST && !(rc = store_get(st, key, &there, &tlen, NULL, err)) &&
        (tlen != len || memcmp(there, h->event, len) != 0))
        rc = sw_err_set(err, SW_EINVAL,
                        "audit log: %s is not the newest event " HEAD_KEY
                        " holds; run 'slipway history --verify'",
                        key);
    if (!rc)
        h->stored = 1;
    free(there);
    free(key);
    return rc;
}

/* ---- appending ------------------------------------------------------------------ */

static char *event_dump(const struct env_state *s, int64_t seq, const char *prev)
{
    const struct env_change *c = &s->last;
    char when[40];
    time_format_iso(c->time_ms, when, sizeof(when));
    json_t *doc =
        json_pack("{s:I, s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:o}", "seq",
                  (json_int_t)seq, "time", when, "env", s->env, "actor", json_str_or_null(c->actor),
                  "action", c->action, "from", json_str_or_null(c->from), "to",
                  json_str_or_null(c->to), "slot", json_str_or_null(deploy_slot_name(c->slot)),
                  "switched", c->switched < 0 ? json_null() : json_boolean(c->switched), "message",
                  json_str_or_null(c->message), "generation", (json_int_t)c->generation, "prev",
                  json_str_or_null(prev[0] ? prev : NULL));
    char *body = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    return body;
}

/* Under a head that names its newest event by hash only, the next sequence
 * number is claimed with a create-only write, and here it is taken: by a
 * writer whose head update is still to come, or one a crash stopped. When
 * that event links to the head, it is a real continuation and the head moves
 * over it; otherwise the log was tampered with and nothing more is appended
 * until someone looks. */
static int head_catch_up(struct store *st, struct deploy_head_memo *h, struct sw_err *err)
{
    struct deploy_event e;
    char prev[SHA256_HEX_LEN + 1], *body = NULL;
    int rc = event_load_body(st, h->seq + 1, &e, NULL, prev, &body, err);
    if (rc == SW_ENOTFOUND)
        return 0; /* deleted meanwhile? the next round sees */
    if (rc)
        return rc;
    if (strcmp(prev, h->hash) != 0) {
        char *key = event_key(e.seq);
        rc = sw_err_set(err, SW_EINVAL,
                        "audit log: %s does not link to the newest event the head names; "
                        "run 'slipway history --verify'",
                        key);
        free(key);
        free(body);
    } else {
        head_advance(h, &e, body, 1);
        rc = head_save(st, h, err);
        if (rc == SW_ECONFLICT)
            rc = 0; /* someone else moved it: re-read */
    }
    deploy_event_clear(&e);
    return rc;
}

/* Keeps h in memo (when given) for the next append of the same change. */
static int append_done(struct deploy_head_memo *h, struct deploy_head_memo *memo, int rc)
{
    if (memo && rc == 0) {
        *memo = *h;
        memo->have = 1;
    } else {
        head_clear(h);
    }
    return rc;
}

/* One round of an append on the head h: 0, SW_EAGAIN_ROUND (read the head
 * again) or an error. */
static int append_round(struct store *st, const struct env_state *s, struct deploy_head_memo *h,
                        int missing, struct sw_err *err)
{
    const struct env_change *c = &s->last;
    if (head_env_generation(h, s->env) >= c->generation) {
        /* Recorded already; a store from before the head gets one now. */
        int rc = missing ? head_save(st, h, err) : 0;
        if (rc == SW_ECONFLICT)
            return SW_EAGAIN_ROUND;
        /* The change to come appends after the event the head holds, which
         * must be stored first: other bytes in its place refuse the change
         * before it is made, not its event after. A store that cannot be
         * written now is tried again by the change's own append; failing
         * there, the change's event waits in its state, as any failed
         * append's does. */
        if (!rc && h->seq > 0 && !h->stored) {
            struct sw_err why = {0};
            if (head_store_newest(st, h, &why) == SW_EINVAL)
                rc = sw_err_set(err, SW_EINVAL, "%s", why.msg);
        }
        return rc;
    }
    int rc = h->seq > 0 && !h->stored ? head_store_newest(st, h, err) : 0;
    if (rc)
        return rc;
    char *body = event_dump(s, h->seq + 1, h->hash);
    if (!body)
        return sw_err_set(err, SW_EINVAL, "audit log: cannot encode the event");
    /* A head naming its event by hash only may be followed by an event a
     * writer of that kind claimed and has not yet recorded in it. */
    int claim = h->seq > 0 && !h->event;
    if (claim) {
        char *key = event_key(h->seq + 1);
        rc = store_put(st, key, body, strlen(body), STORE_IF_ABSENT, NULL, err);
        free(key);
        if (rc == SW_EEXIST) {
            free(body);
            rc = head_catch_up(st, h, err);
            return rc ? rc : SW_EAGAIN_ROUND;
        }
        if (rc) {
            free(body);
            return rc;
        }
    }
    struct deploy_event e = {.seq = h->seq + 1, .env = s->env, .generation = c->generation};
    head_advance(h, &e, body, claim);
    rc = head_save(st, h, err);
    /* Lost to a writer who moved the head (or removed it: If-Match on no
     * object): the next round sees the change recorded, or appends it after
     * that writer's event. */
    return rc == SW_ECONFLICT || rc == SW_ENOTFOUND ? SW_EAGAIN_ROUND : rc;
}

int deploy_event_append(struct store *st, const struct env_state *s, struct deploy_head_memo *memo,
                        struct sw_err *err)
{
    struct deploy_head_memo h = {0};
    if (!s->last.generation)
        return 0; /* nothing to record; memo stays as it was */
    int refused = memo ? memo->copy_refused : 0;
    if (memo && memo->have) {
        h = *memo;
        memset(memo, 0, sizeof(*memo));
    }
    for (int attempt = 0; attempt < 50; attempt++) {
        int missing = 0, rc;
        if (!h.have && (rc = head_load(st, &h, &missing, err))) {
            head_clear(&h);
            return rc;
        }
        h.have = 0; /* a round after this one reads the head again */
        rc = append_round(st, s, &h, missing, err);
        if (rc != SW_EAGAIN_ROUND) {
            rc = append_done(&h, memo, rc);
            if (memo)
                memo->copy_refused = refused;
            return rc;
        }
        refused |= h.from_copy;
        head_clear(&h);
    }
    return sw_err_set(err, SW_ECONFLICT, "audit log: could not claim a sequence number");
}

/* ---- reading and verifying ------------------------------------------------------- */

/* The head, parsed; *data (caller frees) NULL when there is none. */
struct head_doc {
    char *data;
    size_t len;
    int64_t seq;
    char hash[SHA256_HEX_LEN + 1];
    json_t *envs;
    char *event; /* NULL: a head that names its newest event by hash only */
};

static void head_doc_free(struct head_doc *d)
{
    free(d->data);
    json_decref(d->envs);
    free(d->event);
    memset(d, 0, sizeof(*d));
}

/* etag (optional) receives the head's ETag, "" when there is none. */
static int head_doc_load(struct store *st, struct head_doc *d, char etag[SHA256_HEX_LEN + 1],
                         struct sw_err *err)
{
    memset(d, 0, sizeof(*d));
    if (etag)
        etag[0] = '\0';
    int rc = store_get(st, HEAD_KEY, &d->data, &d->len, etag, err);
    if (rc == SW_ENOTFOUND)
        return 0;
    if (!rc)
        rc = deploy_head_parse(d->data, d->len, &d->seq, d->hash, &d->envs, &d->event, err);
    if (rc)
        head_doc_free(d);
    return rc;
}

/* The newest event when only the head holds it yet: the one after the last
 * of v[0..*n) (room for one more), of env when env is given. */
static int history_add_newest(struct store *st, const char *env, struct deploy_event *v, size_t *n,
                              struct sw_err *err)
{
    struct head_doc d;
    char prev[SHA256_HEX_LEN + 1];
    int rc = head_doc_load(st, &d, NULL, err);
    int64_t last = *n ? v[*n - 1].seq : 0;
    struct deploy_event e;
    if (!rc && d.event && d.seq > last &&
        !(rc = deploy_event_parse(HEAD_KEY, d.event, strlen(d.event), &e, prev, err))) {
        if (!env || !strcmp(e.env, env))
            v[(*n)++] = e;
        else
            deploy_event_clear(&e);
    }
    head_doc_free(&d);
    return rc;
}

int deploy_history(struct store *st, const char *env, struct deploy_event **out, size_t *n,
                   struct sw_err *err)
{
    struct store_list l;
    int rc = store_list_all(st, EVENT_PREFIX, &l, err);
    *out = NULL;
    *n = 0;
    if (rc)
        return rc;
    *out = xcalloc(l.n + 2, sizeof(**out));
    for (size_t i = 0; i < l.n; i++) {
        struct deploy_event e;
        int64_t seq = seq_of(l.keys[i]);
        if (!seq)
            continue;
        if ((rc = event_load(st, seq, &e, NULL, NULL, err)))
            break;
        if (env && strcmp(e.env, env) != 0) {
            deploy_event_clear(&e);
            continue;
        }
        (*out)[(*n)++] = e;
    }
    store_list_free(&l);
    if (!rc)
        rc = history_add_newest(st, env, *out, n, err);
    if (rc) {
        deploy_events_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

static int same_str(const char *a, const char *b)
{
    return a && b ? !strcmp(a, b) : a == b;
}

/* The newest event of env among v[0..n), or NULL. */
static const struct deploy_event *newest_of(const struct deploy_event *v, size_t n, const char *env)
{
    for (size_t i = n; i-- > 0;)
        if (!strcmp(v[i].env, env))
            return &v[i];
    return NULL;
}

/* Each environment's state carries its last change, which pins that
 * environment's newest event from the other side. The state may be one change
 * ahead (an append a crash left for the next change, or a change made while
 * we read), never more; an event ahead of its state, or one that differs from
 * the change the state records, was altered. */
static int verify_anchors(struct store *st, const struct deploy_event *v, size_t n,
                          struct sw_err *err)
{
    struct store_list envs;
    int rc = store_list_all(st, "envs/", &envs, err);
    for (size_t k = 0; !rc && k < envs.n; k++) {
        const char *key = envs.keys[k];
        if (!str_ends_with(key, "/state.json"))
            continue;
        char *name = xstrndup(key + 5, strlen(key) - 5 - strlen("/state.json"));
        struct env_state *s = NULL;
        if (env_name_check(name, NULL) != 0 || (rc = deploy_state_load(st, name, &s, err))) {
            free(name);
            continue;
        }
        const struct deploy_event *e = newest_of(v, n, name);
        const struct env_change *c = &s->last;
        char when[40];
        time_format_iso(c->time_ms, when, sizeof(when));
        int64_t logged = e ? e->generation : 0;
        if (logged > s->generation)
            rc = sw_err_set(err, SW_EINVAL,
                            "events/%012lld.json: altered (generation %lld, but %s is at "
                            "generation %lld)",
                            (long long)e->seq, (long long)logged, key, (long long)s->generation);
        else if (s->generation - logged > 1)
            rc = sw_err_set(err, SW_EINVAL,
                            "%s is at generation %lld but the audit log records %s only up to "
                            "generation %lld: events were removed",
                            key, (long long)s->generation, name, (long long)logged);
        else if (e && logged == c->generation &&
                 !(same_str(e->action, c->action) && same_str(e->from, c->from) &&
                   same_str(e->to, c->to) && same_str(e->actor, c->actor) &&
                   same_str(e->message, c->message) && same_str(e->time, when)))
            rc = sw_err_set(err, SW_EINVAL,
                            "events/%012lld.json: altered (differs from the last change recorded "
                            "in %s)",
                            (long long)e->seq, key);
        env_state_free(s);
        free(name);
    }
    store_list_free(&envs);
    return rc;
}

/* The head must name the newest event, or the one before it when the newest
 * was claimed by a change whose head update is still to come (or was stopped
 * by a crash); its hash and per-environment generations must agree. d->data
 * is NULL where there is no head. */
static int verify_head(const struct head_doc *d, const struct deploy_event *v, size_t n,
                       char (*hashes)[SHA256_HEX_LEN + 1], struct sw_err *err)
{
    int rc = 0;
    if (!d->data && n == 0)
        return 0;
    if (!d->data)
        return sw_err_set(err, SW_EINVAL,
                          HEAD_KEY " is missing, so the newest events cannot be checked (deleted, "
                                   "or a store from before the head: the next change writes it)");
    if (d->seq > (int64_t)n)
        rc = sw_err_set(err, SW_EINVAL,
                        HEAD_KEY " names event %lld but the log ends at %zu: events were removed",
                        (long long)d->seq, n);
    else if (d->seq + 1 < (int64_t)n)
        rc = sw_err_set(err, SW_EINVAL,
                        HEAD_KEY " names event %lld but the log goes on to %zu: events were added "
                                 "behind its back",
                        (long long)d->seq, n);
    else if (d->seq > 0 && strcmp(hashes[d->seq - 1], d->hash) != 0)
        rc = sw_err_set(err, SW_EINVAL,
                        "events/%012lld.json: altered (its hash is not the one " HEAD_KEY
                        " records)",
                        (long long)d->seq);
    const char *name;
    json_t *val;
    json_object_foreach(d->envs, name, val)
    {
        if (rc)
            break;
        const struct deploy_event *e = newest_of(v, (size_t)d->seq, name);
        int64_t g = json_integer_value(json_object_get(val, "generation"));
        if (!e || e->generation != g)
            rc = sw_err_set(err, SW_EINVAL,
                            HEAD_KEY " records %s at generation %lld, the log at %lld: altered",
                            name, (long long)g, (long long)(e ? e->generation : 0));
    }
    return rc;
}

/* Links event n (0-based) of v to the one before it; key names it. */
static int verify_link(const char *key, size_t n, const char *prev,
                       char (*hashes)[SHA256_HEX_LEN + 1], struct sw_err *err)
{
    if (n == 0 && prev[0])
        return sw_err_set(err, SW_EINVAL,
                          "%s: chain broken: the first event links to an earlier one (altered, "
                          "or events removed)",
                          key);
    if (n > 0 && strcmp(prev, hashes[n - 1]) != 0)
        return sw_err_set(err, SW_EINVAL,
                          "%s: chain broken: it does not carry the hash of "
                          "events/%012zu.json (one of the two was altered)",
                          key, n);
    return 0;
}

/* One pass of --verify: SW_EAGAIN_ROUND when the head moved while the log
 * was read (an append meanwhile: the objects listed and the head read are
 * then no one moment's), else what the log says. */
static int verify_pass(struct store *st, size_t *checked, struct sw_err *err)
{
    struct store_list l;
    struct head_doc d = {0}, before = {0};
    char etag0[SHA256_HEX_LEN + 1], etag1[SHA256_HEX_LEN + 1];
    int rc = head_doc_load(st, &before, etag0, err);
    head_doc_free(&before);
    if (rc || (rc = store_list_all(st, EVENT_PREFIX, &l, err)))
        return rc;
    struct deploy_event *v = xcalloc(l.n + 2, sizeof(*v));
    char(*hashes)[SHA256_HEX_LEN + 1] = xcalloc(l.n + 2, sizeof(*hashes));
    size_t n = 0;
    *checked = 0;
    for (size_t i = 0; i < l.n && !rc; i++) {
        int64_t seq = seq_of(l.keys[i]);
        char prev[SHA256_HEX_LEN + 1];
        if (!seq)
            continue;
        if (seq != (int64_t)n + 1) {
            rc = sw_err_set(err, SW_EINVAL, "events/%012zu.json: missing (events removed)", n + 1);
            break;
        }
        if ((rc = event_load(st, seq, &v[n], hashes[n], prev, err)))
            break;
        rc = verify_link(l.keys[i], n, prev, hashes, err);
        n++;
    }
    if (!rc)
        rc = head_doc_load(st, &d, etag1, err);
    if (!rc && strcmp(etag0, etag1) != 0)
        rc = SW_EAGAIN_ROUND;
    /* The newest event, held by the head and not yet stored on its own: it
     * continues the chain like any other. */
    if (!rc && d.event && d.seq == (int64_t)n + 1) {
        char prev[SHA256_HEX_LEN + 1];
        char *key = xasprintf(EVENT_PREFIX "%012zu.json (held in " HEAD_KEY ")", n + 1);
        if (!(rc = deploy_event_parse(HEAD_KEY, d.event, strlen(d.event), &v[n], prev, err))) {
            sha256_hex(d.event, strlen(d.event), hashes[n]);
            rc = verify_link(key, n, prev, hashes, err);
            n++;
        }
        free(key);
    }
    *checked = n;
    if (!rc)
        rc = verify_head(&d, v, n, hashes, err);
    if (!rc)
        rc = verify_anchors(st, v, n, err);
    head_doc_free(&d);
    store_list_free(&l);
    deploy_events_free(v, n);
    free(hashes);
    return rc;
}

int deploy_history_verify(struct store *st, size_t *checked, struct sw_err *err)
{
    /* A log being appended to (a serve's monitor recording verdicts) moves
     * between the listing and the head's read; read it again, a few times. */
    int rc = SW_EAGAIN_ROUND;
    for (int attempt = 0; attempt < 5 && rc == SW_EAGAIN_ROUND; attempt++)
        rc = verify_pass(st, checked, err);
    if (rc == SW_EAGAIN_ROUND)
        rc = sw_err_set(err, SW_ECONFLICT,
                        "audit log: it kept changing while it was read (5 times); run "
                        "'slipway history --verify' again");
    return rc;
}

/* ---- export ------------------------------------------------------------------------ */

/* One event into dst: sent when dst lacks it, compared when dst has it.
 * newest (optional): its document, as the head holds it, when it is the
 * head's event (which src may not hold on its own yet). */
static int export_event(struct store *src, struct store *dst, const char *key, const char *newest,
                        int have, int *sent, struct sw_err *err)
{
    char *data = NULL, *theirs = NULL;
    size_t len, tlen;
    int rc = newest ? 0 : store_get(src, key, &data, &len, NULL, err);
    *sent = 0;
    if (rc)
        return rc;
    if (newest) {
        data = xstrdup(newest);
        len = strlen(data);
    }
    if (!have) {
        rc = store_put(dst, key, data, len, STORE_IF_ABSENT, NULL, err);
        if (rc == 0)
            *sent = 1;
        else if (rc == SW_EEXIST) /* another export got there first: compare */
            have = 1, rc = 0;
    }
    if (!rc && have && !(rc = store_get(dst, key, &theirs, &tlen, NULL, err)) &&
        (tlen != len || memcmp(theirs, data, len) != 0))
        rc = sw_err_set(err, SW_ECONFLICT,
                        "%s differs between %s and %s: the destination holds another audit "
                        "chain (export to a prefix of its own)",
                        key, store_url(src), store_url(dst));
    free(theirs);
    free(data);
    return rc;
}

int deploy_audit_export(struct store *src, struct store *dst, struct audit_export *rep,
                        struct sw_err *err)
{
    char *head = NULL, *newest = NULL;
    size_t hlen;
    struct store_list have = {0};
    json_t *envs = NULL;
    char hash[SHA256_HEX_LEN + 1];
    memset(rep, 0, sizeof(*rep));
    /* The head first: it names the events to copy, so an append racing with
     * the export adds events after it and never a head naming an event the
     * copy lacks. */
    int rc = store_get(src, HEAD_KEY, &head, &hlen, NULL, err);
    if (rc == SW_ENOTFOUND)
        rc = sw_err_set(err, SW_ENOTFOUND, "%s has no audit log (no %s)", store_url(src), HEAD_KEY);
    if (rc || (rc = deploy_head_parse(head, hlen, &rep->events, hash, &envs, &newest, err)))
        goto out;
    if ((rc = store_list_all(dst, EVENT_PREFIX, &have, err)))
        goto out;
    size_t j = 0;
    for (int64_t seq = 1; seq <= rep->events && !rc; seq++) {
        char *key = event_key(seq);
        while (j < have.n && strcmp(have.keys[j], key) < 0)
            j++;
        int sent;
        rc = export_event(src, dst, key, seq == rep->events ? newest : NULL,
                          j < have.n && !strcmp(have.keys[j], key), &sent, err);
        rep->sent += (size_t)sent;
        free(key);
    }
    /* The head last, so the copy is a whole chain after every run. A copy
     * whose head is newer than the store's is not overwritten backwards. */
    char *dhead = NULL;
    size_t dlen;
    int64_t dseq = 0;
    char dhash[SHA256_HEX_LEN + 1];
    json_t *denvs = NULL;
    if (!rc && (rc = store_get(dst, HEAD_KEY, &dhead, &dlen, NULL, err)) == SW_ENOTFOUND)
        rc = 0;
    else if (!rc && deploy_head_parse(dhead, dlen, &dseq, dhash, &denvs, NULL, NULL) != 0)
        dseq = 0;
    if (!rc && dseq <= rep->events)
        rc = store_put(dst, HEAD_KEY, head, hlen, 0, NULL, err);
    json_decref(denvs);
    free(dhead);
out:
    json_decref(envs);
    store_list_free(&have);
    free(newest);
    free(head);
    return rc;
}
