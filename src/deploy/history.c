/*
 * The audit log: "events/<seq>.json", one immutable document per change, each
 * carrying the SHA-256 of the one before it, so removing or editing an event
 * breaks the chain visibly. Sequence numbers are claimed with put-if-absent; a
 * writer that loses the race to another environment's event simply takes the
 * next number.
 */
#include "deploy/internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_PREFIX "events/"

static int64_t seq_of(const char *key)
{
    return strtoll(key + strlen(EVENT_PREFIX), NULL, 10);
}

static void event_clear(struct deploy_event *e)
{
    free(e->time);
    free(e->env);
    free(e->actor);
    free(e->action);
    free(e->from);
    free(e->to);
    free(e->message);
}

void deploy_events_free(struct deploy_event *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        event_clear(&v[i]);
    free(v);
}

static char *jdup(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? xstrdup(s) : NULL;
}

/* Loads event key; *doc_hash (optional) receives the SHA-256 of the document
 * and *prev the chain link it carries (caller frees). */
static int event_load(struct store *st, const char *key, struct deploy_event *e, char *doc_hash,
                      char **prev, struct sw_err *err)
{
    char *data = NULL;
    size_t len;
    int rc = store_get(st, key, &data, &len, doc_hash, err);
    if (rc)
        return rc;
    json_t *o = json_loadb(data, len, 0, NULL);
    free(data);
    if (!o || !json_is_integer(json_object_get(o, "seq")))
        return json_decref(o), sw_err_set(err, SW_EINVAL, "%s: not an event document", key);
    memset(e, 0, sizeof(*e));
    e->seq = json_integer_value(json_object_get(o, "seq"));
    e->generation = json_integer_value(json_object_get(o, "generation"));
    e->time = jdup(o, "time");
    e->env = jdup(o, "env");
    e->actor = jdup(o, "actor");
    e->action = jdup(o, "action");
    e->from = jdup(o, "from");
    e->to = jdup(o, "to");
    e->message = jdup(o, "message");
    if (prev)
        *prev = jdup(o, "prev");
    json_decref(o);
    return 0;
}

static json_t *jstr_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

int deploy_event_append(struct store *st, const struct env_state *s, struct sw_err *err)
{
    const struct env_change *c = &s->last;
    if (!c->generation)
        return 0;
    int rc = 0;
    for (int attempt = 0; attempt < 50; attempt++) {
        struct store_list l;
        if ((rc = store_list_all(st, EVENT_PREFIX, &l, err)))
            return rc;
        int64_t last_seq = l.n ? seq_of(l.keys[l.n - 1]) : 0;
        char prev_hash[SHA256_HEX_LEN + 1] = "";
        /* Already recorded? Look back for this environment's newest event. */
        int recorded = 0;
        for (size_t i = l.n; i-- > 0;) {
            struct deploy_event e;
            char h[SHA256_HEX_LEN + 1];
            if ((rc = event_load(st, l.keys[i], &e, h, NULL, err)))
                break;
            if (i == l.n - 1)
                memcpy(prev_hash, h, sizeof(h));
            int mine = e.env && !strcmp(e.env, s->env);
            recorded = mine && e.generation >= c->generation;
            event_clear(&e);
            if (mine)
                break;
        }
        store_list_free(&l);
        if (rc || recorded)
            return rc;
        char when[40], *key = xasprintf(EVENT_PREFIX "%012lld.json", (long long)last_seq + 1);
        time_format_iso(c->time_ms, when, sizeof(when));
        json_t *doc = json_pack("{s:I, s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:I, s:o}", "seq",
                                (json_int_t)(last_seq + 1), "time", when, "env", s->env, "actor",
                                jstr_or_null(c->actor), "action", c->action, "from",
                                jstr_or_null(c->from), "to", jstr_or_null(c->to), "message",
                                jstr_or_null(c->message), "generation", (json_int_t)c->generation,
                                "prev", jstr_or_null(prev_hash[0] ? prev_hash : NULL));
        char *body = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(doc);
        rc = store_put(st, key, body, strlen(body), STORE_IF_ABSENT, NULL, err);
        free(body);
        free(key);
        if (rc != SW_EEXIST)
            return rc;
    }
    return sw_err_set(err, SW_ECONFLICT, "audit log: could not claim a sequence number");
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
    *out = xcalloc(l.n, sizeof(**out));
    for (size_t i = 0; i < l.n; i++) {
        struct deploy_event e;
        if ((rc = event_load(st, l.keys[i], &e, NULL, NULL, err)))
            break;
        if (env && (!e.env || strcmp(e.env, env) != 0)) {
            event_clear(&e);
            continue;
        }
        (*out)[(*n)++] = e;
    }
    store_list_free(&l);
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

/* The chain pins every event but the newest, which nothing links to yet. Each
 * environment's state carries its last change, which pins that environment's
 * newest event. The state may be ahead (an append a crash left for the next
 * change, or a change made while we read); an event ahead of its state, or one
 * that differs from it, was altered. l is the listing the chain was checked on. */
static int verify_anchors(struct store *st, const struct store_list *l, struct sw_err *err)
{
    struct store_list envs;
    int rc = store_list_all(st, "envs/", &envs, err);
    for (size_t k = 0; !rc && k < envs.n; k++) {
        const char *key = envs.keys[k];
        if (!str_ends_with(key, "/state.json"))
            continue;
        char *name = xstrndup(key + 5, strlen(key) - 5 - strlen("/state.json"));
        struct env_state *s = NULL;
        char when[40] = "";
        if (!(rc = deploy_state_load(st, name, &s, err)))
            time_format_iso(s->last.time_ms, when, sizeof(when));
        for (size_t i = l->n; !rc && i-- > 0;) {
            struct deploy_event e;
            if ((rc = event_load(st, l->keys[i], &e, NULL, NULL, err)))
                break;
            int mine = same_str(e.env, name);
            const struct env_change *c = &s->last;
            if (mine && e.generation > s->generation)
                rc = sw_err_set(err, SW_EINVAL,
                                "%s: altered (generation %lld, but %s is at generation %lld)",
                                l->keys[i], (long long)e.generation, key, (long long)s->generation);
            else if (mine && e.generation == c->generation &&
                     !(same_str(e.action, c->action) && same_str(e.from, c->from) &&
                       same_str(e.to, c->to) && same_str(e.actor, c->actor) &&
                       same_str(e.message, c->message) && same_str(e.time, when)))
                rc = sw_err_set(err, SW_EINVAL,
                                "%s: altered (differs from the last change recorded in %s)",
                                l->keys[i], key);
            event_clear(&e);
            if (mine)
                break;
        }
        env_state_free(s);
        free(name);
    }
    store_list_free(&envs);
    return rc;
}

int deploy_history_verify(struct store *st, size_t *checked, struct sw_err *err)
{
    struct store_list l;
    int rc = store_list_all(st, EVENT_PREFIX, &l, err);
    if (rc)
        return rc;
    char prev_hash[SHA256_HEX_LEN + 1] = "";
    *checked = 0;
    for (size_t i = 0; i < l.n && !rc; i++) {
        struct deploy_event e;
        char h[SHA256_HEX_LEN + 1], *prev = NULL;
        if ((rc = event_load(st, l.keys[i], &e, h, &prev, err)))
            break;
        if (e.seq != (int64_t)i + 1)
            rc = sw_err_set(err, SW_EINVAL, "%s: expected sequence %zu, found %lld", l.keys[i],
                            i + 1, (long long)e.seq);
        else if (i == 0 && prev)
            rc = sw_err_set(err, SW_EINVAL,
                            "%s: chain broken: the first event links to an "
                            "earlier one (altered, or events removed)",
                            l.keys[i]);
        else if (i > 0 && !same_str(prev, prev_hash))
            rc = sw_err_set(err, SW_EINVAL,
                            "%s: chain broken: it does not carry the hash of %s (one of the two "
                            "was altered)",
                            l.keys[i], l.keys[i - 1]);
        memcpy(prev_hash, h, sizeof(h));
        free(prev);
        event_clear(&e);
        (*checked)++;
    }
    if (!rc)
        rc = verify_anchors(st, &l, err);
    store_list_free(&l);
    return rc;
}
