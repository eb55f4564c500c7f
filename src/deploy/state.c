/*
 * Environment state documents and the per-environment lease.
 *
 * The lease is a field of the state document: a change writes it in with a
 * compare-and-swap on the ETag it read (which also proves that read current),
 * makes its change, and writes the result with the lease gone, again by
 * compare-and-swap; a change that makes nothing writes the state back as it
 * was. A lease carries an expiry, so a crashed holder blocks others only until
 * it runs out (at once when the holder died on this host), and taking over a
 * stale lease is the same compare-and-swap, so two processes cannot both take
 * it. The holder's own writes are conditional too: one paused past its expiry
 * fails instead of overwriting a newer state. Keeping the lease in the state
 * costs a change one request fewer than a lock object beside it (written,
 * then deleted) on a store where each is a round trip.
 */
#include "deploy/internal.h"
#include "release/release.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOCK_LEASE_MS (60 * 1000)

static char *state_key(const char *env)
{
    return xasprintf("envs/%s/state.json", env);
}

void env_state_free(struct env_state *s)
{
    if (!s)
        return;
    free(s->env);
    free(s->slot_release[0]);
    free(s->slot_release[1]);
    free(s->live_release);
    free(s->previous_release);
    env_change_clear(&s->last);
    for (size_t i = 0; i < s->nrejected; i++) {
        free(s->rejected[i].release);
        free(s->rejected[i].reason);
    }
    env_lease_clear(&s->lease);
    free(s);
}

void env_lease_clear(struct env_lease *l)
{
    free(l->owner);
    free(l->actor);
    memset(l, 0, sizeof(*l));
}

struct env_state *env_state_dup(const struct env_state *s)
{
    struct env_state *d = xmalloc(sizeof(*d));
    *d = *s;
    d->env = xstrdup(s->env);
    for (int i = 0; i < 2; i++)
        d->slot_release[i] = xstrdup_or_null(s->slot_release[i]);
    d->live_release = xstrdup_or_null(s->live_release);
    d->previous_release = xstrdup_or_null(s->previous_release);
    d->last.from = xstrdup_or_null(s->last.from);
    d->last.to = xstrdup_or_null(s->last.to);
    d->last.actor = xstrdup_or_null(s->last.actor);
    d->last.message = xstrdup_or_null(s->last.message);
    for (size_t i = 0; i < s->nrejected; i++) {
        d->rejected[i].release = xstrdup(s->rejected[i].release);
        d->rejected[i].reason = xstrdup(s->rejected[i].reason);
    }
    d->lease.owner = xstrdup_or_null(s->lease.owner);
    d->lease.actor = xstrdup_or_null(s->lease.actor);
    return d;
}

void env_change_clear(struct env_change *c)
{
    free(c->from);
    free(c->to);
    free(c->actor);
    free(c->message);
    memset(c, 0, sizeof(*c));
}

int deploy_idle_slot(const struct env_state *s)
{
    return s->live_slot == SLOT_BLUE ? SLOT_GREEN : SLOT_BLUE;
}

const struct env_rejection *deploy_rejection(const struct env_state *s, const char *release)
{
    for (size_t i = 0; release && i < s->nrejected; i++)
        if (!strcmp(s->rejected[i].release, release))
            return &s->rejected[i];
    return NULL;
}

/* The parsers below read documents any writer of a shared bucket could have
 * written: every field is checked, and one bad field refuses the document
 * (the caller keeps what it had) rather than being half-used. */

char *deploy_release_field(struct json_fields *f, json_t *o, const char *k)
{
    json_t *v = json_field(o, k);
    if (!v)
        return NULL;
    if (!json_is_string(v) || !release_id_valid(json_string_value(v))) {
        json_field_bad(f, k, "not a release id");
        return NULL;
    }
    return xstrdup(json_string_value(v));
}

/* Times are checked by json_field_time: 1970 to the end of 9999, what can be
 * written back. time_parse_iso alone takes earlier and later dates, whose
 * dump no reader accepts; a state keeps its slots' times across changes, and
 * its last change becomes an event, so one such time would be copied into
 * every later document. */

int deploy_text_ok(const char *t, int multiline)
{
    return text_valid(t, multiline ? DEPLOY_MESSAGE_MAX : DEPLOY_ACTOR_MAX, multiline);
}

int deploy_action_valid(const char *a)
{
    return !strcmp(a, "deploy") || !strcmp(a, "switch") || !strcmp(a, "rollback") ||
           !strcmp(a, "verdict");
}

static int slot_field(struct json_fields *f, json_t *o, const char *k)
{
    json_t *v = json_field(o, k);
    const char *s = json_string_value(v);
    if (!v)
        return SLOT_NONE;
    if (s && !strcmp(s, "blue"))
        return SLOT_BLUE;
    if (s && !strcmp(s, "green"))
        return SLOT_GREEN;
    json_field_bad(f, k, "not blue or green");
    return SLOT_NONE;
}

/* Generations are counters of changes: non-negative and far below 2^53. */
static int64_t gen_field(struct json_fields *f, json_t *o, const char *k)
{
    return json_field_int(f, o, k, 0, (int64_t)1 << 50, JSON_FIELD_REQUIRED);
}

static const char *last_change_parse(json_t *last, struct env_state *s)
{
    struct json_fields jf = JSON_FIELDS_INIT(NULL);
    /* Every change records itself here, so a document without it was not
     * written by slipway, and its dump (an empty action) would be refused. */
    if (!last)
        return "needs last_change";
    if (!json_is_object(last))
        return "last_change is not an object";
    const char *a = json_string_value(json_object_get(last, "action"));
    if (!a || !deploy_action_valid(a))
        return "last_change.action is not deploy, switch, rollback or verdict";
    snprintf(s->last.action, sizeof(s->last.action), "%s", a);
    s->last.from = deploy_release_field(&jf, last, "from");
    s->last.to = deploy_release_field(&jf, last, "to");
    s->last.actor = json_field_str(&jf, last, "actor", DEPLOY_ACTOR_MAX, 0);
    s->last.message =
        json_field_str(&jf, last, "message", DEPLOY_MESSAGE_MAX, JSON_FIELD_MULTILINE);
    s->last.slot = slot_field(&jf, last, "slot");
    s->last.switched = json_field_bool(&jf, last, "switched", 0);
    s->last.time_ms = json_field_time(&jf, last, "time", 0);
    s->last.generation = gen_field(&jf, last, "generation");
    if (jf.bad)
        return "last_change holds a field of the wrong form";
    if (s->last.generation > s->generation)
        return "last_change is newer than the state";
    return NULL;
}

/* "rejected": [{release, reason, time}], at most ENV_REJECTED_MAX, each
 * release once. Absent in documents written before the watch existed. */
static const char *rejected_parse(json_t *a, struct env_state *s)
{
    if (!a)
        return NULL;
    if (!json_is_array(a) || json_array_size(a) > ENV_REJECTED_MAX)
        return "rejected is not a list of at most 16 releases";
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        struct json_fields jf = JSON_FIELDS_INIT(NULL);
        if (!json_is_object(v))
            return "rejected holds an entry that is not an object";
        struct env_rejection *r = &s->rejected[s->nrejected++];
        r->release = deploy_release_field(&jf, v, "release");
        r->reason = json_field_str(&jf, v, "reason", DEPLOY_REASON_MAX, JSON_FIELD_REQUIRED);
        r->time_ms = json_field_time(&jf, v, "time", JSON_FIELD_REQUIRED);
        if (jf.bad || !r->release)
            return "rejected holds an entry of the wrong form (release, reason, time)";
        for (size_t j = 0; j + 1 < s->nrejected; j++)
            if (!strcmp(s->rejected[j].release, r->release))
                return "rejected names a release twice";
    }
    return NULL;
}

/* "lease": {owner, pid, actor, action, since, expires} while a change is in
 * progress. Its text is shown in the message of a change it keeps out, so it
 * is held to what a person could have written. */
static const char *lease_parse(json_t *o, struct env_state *s)
{
    if (!o)
        return NULL;
    if (!json_is_object(o))
        return "lease is not an object";
    struct json_fields jf = JSON_FIELDS_INIT(NULL);
    struct env_lease *l = &s->lease;
    l->owner = json_field_str(&jf, o, "owner", DEPLOY_ACTOR_MAX, JSON_FIELD_REQUIRED);
    l->actor = json_field_str(&jf, o, "actor", DEPLOY_ACTOR_MAX, JSON_FIELD_REQUIRED);
    l->pid = json_field_int(&jf, o, "pid", 1, INT32_MAX, JSON_FIELD_REQUIRED);
    l->since_ms = json_field_time(&jf, o, "since", JSON_FIELD_REQUIRED);
    l->expires_ms = json_field_time(&jf, o, "expires", JSON_FIELD_REQUIRED);
    const char *a = json_string_value(json_object_get(o, "action"));
    if (jf.bad || !l->owner || !l->actor)
        return "lease holds a field of the wrong form (owner, pid, actor, since, expires)";
    if (!a || !deploy_action_valid(a))
        return "lease.action is not deploy, switch, rollback or verdict";
    snprintf(l->action, sizeof(l->action), "%s", a);
    return NULL;
}

/* The invariants every change keeps; a document breaking one was not written
 * by slipway. */
static const char *state_check(const struct env_state *s)
{
    if (s->strategy == STRATEGY_DIRECT)
        return s->live_slot != SLOT_NONE || s->slot_release[0] || s->slot_release[1]
                   ? "a direct environment has no slots"
                   : NULL;
    if (s->live_slot == SLOT_NONE)
        return s->live_release ? "live_release is set but live_slot is not" : NULL;
    const char *in_slot = s->slot_release[s->live_slot];
    if (!s->live_release || !in_slot || strcmp(in_slot, s->live_release) != 0)
        return "live_release is not the release in the live slot";
    return NULL;
}

int deploy_state_parse(const char *key, const char *env, const char *data, size_t len,
                       struct env_state *s, struct sw_err *err)
{
    json_t *root;
    int rc = json_doc_parse(key, data, len, &root, err);
    if (rc)
        return rc;
    const char *why = NULL;
    struct json_fields jf = JSON_FIELDS_INIT(key);
    const char *strategy = json_string_value(json_object_get(root, "strategy"));
    const char *name = json_string_value(json_object_get(root, "env"));
    json_t *slots = json_field(root, "slots");
    if (!json_is_object(root) || !strategy) {
        why = "not an environment state document";
        goto out;
    }
    if (name && strcmp(name, env) != 0) {
        why = "it names another environment";
        goto out;
    }
    if (strcmp(strategy, "blue-green") && strcmp(strategy, "direct")) {
        why = "strategy is not direct or blue-green";
        goto out;
    }
    s->strategy = !strcmp(strategy, "blue-green") ? STRATEGY_BLUE_GREEN : STRATEGY_DIRECT;
    s->generation = gen_field(&jf, root, "generation");
    s->live_slot = slot_field(&jf, root, "live_slot");
    s->live_release = deploy_release_field(&jf, root, "live_release");
    if (slots && !json_is_object(slots))
        json_field_bad(&jf, "slots", "not an object");
    for (int i = 0; i < 2; i++) {
        json_t *sl = json_field(slots, deploy_slot_name(i));
        if (sl && !json_is_object(sl))
            json_field_bad(&jf, deploy_slot_name(i), "not an object");
        s->slot_release[i] = deploy_release_field(&jf, sl, "release");
        s->slot_since_ms[i] = json_field_time(&jf, sl, "since", 0);
    }
    s->previous_release = deploy_release_field(&jf, root, "previous_release");
    s->previous_since_ms = json_field_time(&jf, root, "previous_since", 0);
    s->updated_ms = json_field_time(&jf, root, "updated", 0);
    json_t *last = json_field(root, "last_change");
    if (jf.bad)
        why = "a field has the wrong form (release ids, slots, times, generation)";
    /* Generation 0 without a last change: the lease of an environment's first change. */
    if (!why && (last || s->generation))
        why = last_change_parse(last, s);
    if (!why)
        why = rejected_parse(json_field(root, "rejected"), s);
    if (!why)
        why = lease_parse(json_field(root, "lease"), s);
    if (!why)
        why = state_check(s);
out:
    json_decref(root);
    if (why)
        return sw_err_set(err, SW_EINVAL, "%s: %s", key, why);
    return 0;
}

/* known: the ETag the caller has, read only when it changed (NULL: read). */
static int state_read(struct store *st, const char *env, const char *known, struct env_state **out,
                      struct sw_err *err)
{
    char *key = state_key(env), *data = NULL;
    size_t len;
    struct env_state *s = xcalloc(1, sizeof(*s));
    s->env = xstrdup(env);
    s->live_slot = SLOT_NONE;
    s->last.slot = SLOT_NONE;
    s->last.switched = -1;
    *out = NULL;
    int rc = known ? store_get_if_changed(st, key, known, &data, &len, s->etag, err)
                   : store_get(st, key, &data, &len, s->etag, err);
    if (rc == STORE_EUNCHANGED) {
        env_state_free(s);
        s = NULL;
        rc = 0;
    } else if (rc == SW_ENOTFOUND) {
        s->etag[0] = '\0';
        rc = 0;
    } else if (!rc) {
        rc = deploy_state_parse(key, env, data, len, s, err);
    }
    free(data);
    free(key);
    if (rc)
        env_state_free(s);
    else
        *out = s;
    return rc;
}

int deploy_state_load(struct store *st, const char *env, struct env_state **out, struct sw_err *err)
{
    return state_read(st, env, NULL, out, err);
}

int deploy_state_poll(struct store *st, const char *env, const char *etag, struct env_state **out,
                      struct sw_err *err)
{
    return state_read(st, env, etag && *etag ? etag : NULL, out, err);
}

char *deploy_state_dump(const struct env_state *s)
{
    json_t *slots = json_object();
    if (s->strategy == STRATEGY_BLUE_GREEN)
        for (int i = 0; i < 2; i++)
            json_object_set_new(slots, deploy_slot_name(i),
                                json_pack("{s:o, s:o}", "release",
                                          json_str_or_null(s->slot_release[i]), "since",
                                          json_time_or_null(s->slot_since_ms[i])));
    const struct env_change *c = &s->last;
    json_t *last =
        json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I}", "action", c->action, "from",
                  json_str_or_null(c->from), "to", json_str_or_null(c->to), "slot",
                  json_str_or_null(deploy_slot_name(c->slot)), "switched",
                  c->switched < 0 ? json_null() : json_boolean(c->switched), "actor",
                  json_str_or_null(c->actor), "message", json_str_or_null(c->message), "time",
                  json_time_or_null(c->time_ms), "generation", (json_int_t)c->generation);
    json_t *root = json_pack(
        "{s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "env", s->env, "strategy",
        deploy_strategy_name(s->strategy), "generation", (json_int_t)s->generation, "live_slot",
        json_str_or_null(deploy_slot_name(s->live_slot)), "live_release",
        json_str_or_null(s->live_release), "slots", slots, "previous_release",
        json_str_or_null(s->previous_release), "previous_since",
        json_time_or_null(s->previous_since_ms), "updated", json_time_or_null(s->updated_ms));
    /* Generation 0 has made no change yet: the document holds a first change's lease. */
    if (root && s->generation && !last) {
        json_decref(root);
        root = NULL;
    } else if (root && s->generation) {
        json_object_set_new(root, "last_change", last);
        last = NULL;
    }
    json_decref(last);
    if (root && s->nrejected) {
        json_t *rej = json_array();
        for (size_t i = 0; i < s->nrejected; i++)
            json_array_append_new(rej,
                                  json_pack("{s:s, s:s, s:o}", "release", s->rejected[i].release,
                                            "reason", s->rejected[i].reason, "time",
                                            json_time_or_null(s->rejected[i].time_ms)));
        json_object_set_new(root, "rejected", rej);
    }
    const struct env_lease *l = &s->lease;
    if (root && l->owner) {
        json_t *lease =
            json_pack("{s:s, s:I, s:s, s:s, s:o, s:o}", "owner", l->owner, "pid",
                      (json_int_t)l->pid, "actor", l->actor, "action", l->action, "since",
                      json_time_or_null(l->since_ms), "expires", json_time_or_null(l->expires_ms));
        if (!lease) {
            json_decref(root);
            root = NULL;
        } else {
            json_object_set_new(root, "lease", lease);
        }
    }
    /* NULL when packing failed: never write a document that lost fields. */
    char *out = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    char *copy = out ? xstrdup(out) : NULL;
    free(out);
    return copy;
}

/* Writes s by compare-and-swap on s->etag (updated on success); notify: wake
 * the edges of this host (fs: at once; a hint only), which a lease alone
 * changes nothing for. */
static int state_write(struct store *st, struct env_state *s, int notify, struct sw_err *err)
{
    char *doc = deploy_state_dump(s);
    if (!doc)
        return sw_err_set(err, SW_EINVAL,
                          "environment %s: cannot encode state (text must be "
                          "UTF-8)",
                          s->env);
    char *key = state_key(s->env);
    char etag[SHA256_HEX_LEN + 1];
    int rc = store_put_if_match(st, key, doc, strlen(doc), s->etag[0] ? s->etag : NULL, etag, err);
    if (rc == SW_ECONFLICT)
        rc = sw_err_set(err, SW_ECONFLICT,
                        "environment %s was changed by another process meanwhile; nothing was "
                        "changed, try again",
                        s->env);
    if (!rc) {
        memcpy(s->etag, etag, sizeof(etag));
        if (notify)
            (void)store_notify(st, "envs", NULL);
    }
    free(doc);
    free(key);
    return rc;
}

int deploy_state_save(struct store *st, struct env_state *s, struct sw_err *err)
{
    return state_write(st, s, 1, err);
}

/* ---- the lease -------------------------------------------------------------- */

/* A lease past its expiry is stale; so is one taken on this host by a process
 * that no longer exists: nobody can still be in the middle of that change. (A
 * reused pid only makes us wait for the lease, which is safe.) */
int deploy_lease_stale(const struct env_lease *l)
{
    if (l->expires_ms <= time_now_ms())
        return 1;
    return !strcmp(l->owner, sys_host()) && l->pid <= INT32_MAX && kill((pid_t)l->pid, 0) < 0 &&
           errno == ESRCH;
}

static int locked_error(const struct env_state *s, struct sw_err *err)
{
    const struct env_lease *l = &s->lease;
    char since[40], expires[40], left[32];
    time_format_iso(l->since_ms, since, sizeof(since));
    time_format_iso(l->expires_ms, expires, sizeof(expires));
    duration_format(l->expires_ms - time_now_ms(), left, sizeof(left));
    /* Every field is someone else's text, checked when the state was read. */
    return sw_err_set(err, DEPLOY_ELOCKED,
                      "environment %s is locked by another change (%s by %s, pid %lld on %s, "
                      "since %s); nothing was changed. Try again when it finishes; its lease "
                      "expires at %s (in %s) if its holder has died",
                      s->env, l->action, l->actor, (long long)l->pid, l->owner, since, expires,
                      left);
}

int deploy_lock(struct store *st, const char *action, struct env_state **sp, struct env_lock *lk,
                struct sw_err *err)
{
    const char *host = sys_host(), *actor = sys_user();
    if (!deploy_text_ok(host, 0) || !deploy_text_ok(actor, 0))
        return sw_err_set(err, SW_EINVAL,
                          "environment %s: cannot record who holds the lease: the user or host "
                          "name is not printable UTF-8 of at most 256 bytes",
                          (*sp)->env);
    /* A few rounds: each lost one means another writer moved the state (took
     * the lease, or finished a change) since it was read. */
    for (int attempt = 0; attempt < 4; attempt++) {
        struct env_state *s = *sp;
        if (s->lease.owner && !deploy_lease_stale(&s->lease))
            return locked_error(s, err);
        env_lease_clear(&s->lease);
        int64_t now = time_now_ms();
        s->lease = (struct env_lease){.owner = xstrdup(host),
                                      .actor = xstrdup(actor),
                                      .pid = getpid(),
                                      .since_ms = now,
                                      .expires_ms = now + LOCK_LEASE_MS};
        snprintf(s->lease.action, sizeof(s->lease.action), "%s", action);
        int rc = state_write(st, s, 0, err);
        if (!rc) {
            lk->locked = env_state_dup(s);
            return 0;
        }
        struct env_lease mine = s->lease;
        memset(&s->lease, 0, sizeof(s->lease));
        if (rc != SW_ECONFLICT) {
            env_lease_clear(&mine);
            return rc;
        }
        struct env_state *fresh = NULL;
        rc = deploy_state_load(st, s->env, &fresh, err);
        /* Refused, yet the lease there is this one: the write landed and its
         * answer was lost (on S3, libcurl sent it again on a new connection,
         * where the condition no longer held). Host, pid and time name it. */
        int ours = !rc && fresh->lease.owner && !strcmp(fresh->lease.owner, mine.owner) &&
                   fresh->lease.pid == mine.pid && fresh->lease.since_ms == mine.since_ms;
        env_lease_clear(&mine);
        if (rc)
            return rc;
        if (!fresh->generation)
            fresh->strategy = s->strategy;
        env_state_free(s);
        *sp = fresh;
        if (ours) {
            lk->locked = env_state_dup(fresh);
            return 0;
        }
    }
    return sw_err_set(err, DEPLOY_ELOCKED,
                      "environment %s was changed by another process at each of 4 attempts to "
                      "take its lease; nothing was changed, try again",
                      (*sp)->env);
}

void deploy_lock_consumed(struct env_lock *lk)
{
    env_state_free(lk->locked);
    lk->locked = NULL;
}

void deploy_unlock(struct store *st, struct env_lock *lk)
{
    struct env_state *s = lk->locked;
    if (!s)
        return;
    /* The state as the lease found it, by compare-and-swap on the lease's
     * write: a lease someone took over after it expired is theirs. An
     * environment that had no state gets none. */
    env_lease_clear(&s->lease);
    if (!s->generation) {
        char *key = state_key(s->env);
        store_delete(st, key, s->etag, NULL);
        free(key);
    } else {
        state_write(st, s, 0, NULL);
    }
    deploy_lock_consumed(lk);
}
