/*
 * libFuzzer target for the environment state parser (deploy_state_parse in
 * src/deploy/state.c): every input is an envs/<env>/state.json someone else wrote into a
 * shared bucket. The environment it is read for is the one the document names (when that is
 * a valid name), so real documents pass; the same document read for another environment is
 * refused whenever it names one. Beyond the sanitizers (and ASan's leak check), an accepted
 * state must keep what every change keeps: release ids are release ids, a direct environment
 * has no slots, a blue-green one's live release is its live slot's, generations are bounded
 * and the last change is no newer than the state, text holds no control characters; and
 * writing it back with deploy_state_dump gives a document that parses again and dumps to the
 * same bytes (the dump is a fixed point). A refused document names the key and says why.
 */
#include "fuzz.h"
#include "deploy/internal.h"
#include "release/release.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A state as deploy_state_load prepares it before parsing. */
static struct env_state *fresh(const char *env)
{
    struct env_state *s = xcalloc(1, sizeof(*s));
    s->env = xstrdup(env);
    s->live_slot = SLOT_NONE;
    s->last.slot = SLOT_NONE;
    s->last.switched = -1;
    return s;
}

static int parse(const char *env, const char *data, size_t len, struct env_state **out,
                 struct sw_err *err)
{
    char *key = xasprintf("envs/%s/state.json", env);
    struct env_state *s = fresh(env);
    int rc;

    memset(err, 0, sizeof(*err));
    rc = deploy_state_parse(key, env, data, len, s, err);
    if (rc) {
        CHECK(rc == SW_EINVAL && err->code == rc);
        CHECK(strncmp(err->msg, key, strlen(key)) == 0 && err->msg[strlen(key)] == ':');
        CHECK(strlen(err->msg) > strlen(key) + 2);
        env_state_free(s); /* partial fields are the caller's to free: no leak */
        s = NULL;
    }
    free(key);
    *out = s;
    return rc;
}

static void check_release_id(const char *id)
{
    CHECK(!id || release_id_valid(id));
}

static void check_state(const struct env_state *s)
{
    CHECK(s->strategy == STRATEGY_DIRECT || s->strategy == STRATEGY_BLUE_GREEN);
    CHECK(s->generation >= 0 && s->generation <= ((int64_t)1 << 50));
    check_release_id(s->live_release);
    check_release_id(s->slot_release[0]);
    check_release_id(s->slot_release[1]);
    check_release_id(s->previous_release);
    check_release_id(s->last.from);
    check_release_id(s->last.to);
    if (s->strategy == STRATEGY_DIRECT) {
        CHECK(s->live_slot == SLOT_NONE);
        CHECK(!s->slot_release[0] && !s->slot_release[1]);
    } else if (s->live_slot == SLOT_NONE) {
        CHECK(!s->live_release);
    } else {
        CHECK(s->live_slot == SLOT_BLUE || s->live_slot == SLOT_GREEN);
        CHECK(s->live_release && s->slot_release[s->live_slot]);
        CHECK(!strcmp(s->live_release, s->slot_release[s->live_slot]));
    }
    CHECK(!s->last.action[0] || deploy_action_valid(s->last.action));
    CHECK(!s->last.actor || text_valid(s->last.actor, 256, 0));
    CHECK(!s->last.message || text_valid(s->last.message, 65536, 1));
    CHECK(s->last.slot == SLOT_NONE || s->last.slot == SLOT_BLUE || s->last.slot == SLOT_GREEN);
    CHECK(s->last.switched >= -1 && s->last.switched <= 1);
    CHECK(s->last.generation >= 0 && s->last.generation <= s->generation);
    if (s->lease.owner) {
        CHECK(text_valid(s->lease.owner, 256, 0) && s->lease.actor &&
              text_valid(s->lease.actor, 256, 0));
        CHECK(s->lease.pid >= 1 && s->lease.pid <= INT32_MAX);
        CHECK(deploy_action_valid(s->lease.action));
    } else {
        CHECK(!s->lease.actor);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    char env[64] = "dev";
    struct env_state *s, *t;
    struct sw_err err;
    char *doc, *again;
    int named = 0;

    /* Read it for the environment it names, as a reader of that environment would. */
    json_t *root = json_loadb(buf, size, 0, NULL);
    const char *name = json_string_value(json_object_get(root, "env"));
    if (name && env_name_check(name, NULL) == 0) {
        snprintf(env, sizeof(env), "%s", name);
        named = 1;
    }
    json_decref(root);

    if (parse(env, buf, size, &s, &err))
        return 0;
    check_state(s);
    CHECK(!strcmp(s->env, env));

    /* A document that names its environment is refused for any other. */
    if (named) {
        CHECK(parse(strcmp(env, "other") ? "other" : "another", buf, size, &t, &err) != 0);
        CHECK(t == NULL);
    }

    /* Written back, it reads again as the same state: dumping is a fixed point. */
    doc = deploy_state_dump(s);
    CHECK(doc != NULL);
    if (parse(env, doc, strlen(doc), &t, &err))
        fprintf(stderr, "the dump of an accepted state is refused: %s\n%s\n", err.msg, doc);
    CHECK(t != NULL);
    check_state(t);
    again = deploy_state_dump(t);
    CHECK(again != NULL);
    if (strcmp(doc, again) != 0)
        fprintf(stderr, "dump changed:\n%s\n---\n%s\n", doc, again);
    CHECK(!strcmp(doc, again));

    free(again);
    free(doc);
    env_state_free(t);
    env_state_free(s);
    return 0;
}
