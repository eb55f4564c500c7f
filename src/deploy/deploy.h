/*
 * deploy — environments, their slots, and every change to them: deploy,
 * switch, rollback, history and garbage collection.
 *
 * Each environment has one state document "envs/<env>/state.json", changed
 * only by compare-and-swap on its ETag, with a generation number that grows by
 * one per change. A change holds the environment's lease, which the document
 * itself carries: it writes the lease in (a compare-and-swap that also proves
 * the state it read current), then the change with the lease gone; a deploy
 * of a directory whose upload is short makes its one write by compare-and-swap
 * on the state it read, with no lease (deploy_ahead_start). This module is the only writer of
 * environment state. Every change also appends an event to the hash-chained audit log
 * "events/<seq>.json"; the state carries its own last change, so an event lost to a crash between
 * the two writes is appended by the next change (nothing is lost).
 */
#ifndef SW_DEPLOY_H
#define SW_DEPLOY_H

#include "base/base.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

enum {
    DEPLOY_ELOCKED = -200,   /* another change holds the environment's lease */
    DEPLOY_ESTRATEGY = -201, /* the operation needs another strategy */
    DEPLOY_ENOTHING = -202,  /* nothing to switch to / roll back to */
    DEPLOY_ESTALE = -203,    /* the state is not the generation the caller judged */
    DEPLOY_EREJECTED = -204, /* the release was rejected here; it needs force */
};

enum deploy_strategy { STRATEGY_DIRECT, STRATEGY_BLUE_GREEN };
enum slot { SLOT_NONE = -1, SLOT_BLUE = 0, SLOT_GREEN = 1 };

const char *deploy_strategy_name(enum deploy_strategy s); /* "direct" / "blue-green" */
const char *deploy_slot_name(int slot);                   /* "blue" / "green" / NULL */

/* ---- environment files (.slipway/environments/<name>.yml) ------------------ */

struct env_cache_rule {
    char *pattern; /* fnmatch(3) pattern on the release path, e.g. "*.woff2" */
    char *policy;  /* Cache-Control value */
};

/* A pattern of deploy_from as written, with its position (deploy knows no
 * pattern language: pipeline compiles and checks it, naming the position). */
struct env_ref_pattern {
    char *pattern;
    size_t line, col;
};

/* approval: the gate a pipeline job of this environment waits at before its
 * first step (docs/environments.md, "Approval and deploy rules"). */
struct env_approval {
    int required;     /* approvals needed, from distinct approvers; 0: no gate */
    char **approvers; /* unique names, at least `required` of them */
    size_t napprovers;
    int64_t timeout_ms;      /* counted from when the job began to wait */
    int allow_self_approval; /* whoever triggered the run may approve it */
};

/* deploy_from: the refs a pipeline job may deploy to this environment from. */
struct env_deploy_from {
    int present;                      /* 0: any ref */
    struct env_ref_pattern *branches; /* GitHub filter patterns on the branch name */
    struct env_ref_pattern *tags;     /* ... on the tag name */
    size_t nbranches, ntags;          /* 0: no branch (no tag) may deploy */
};

/* errors: what the edge counts as an error of this environment besides every 5xx, which
 * always counts (docs/environments.md, "What counts as an error"). */
struct env_errors {
    /* A 404 for a path the release live before this one served with 200 (a file the
     * release lost) is counted as a regressed 404. Default on. */
    int regressed_404;
};

/* watch: after a deploy or switch changes live traffic, the release that went
 * live is watched this long; a critical alert for the environment inside the
 * window rolls it back (ENV_WATCH_ROLLBACK) or is only notified
 * (docs/environments.md, "Watch and automatic rollback"). */
enum env_watch_action { ENV_WATCH_ROLLBACK, ENV_WATCH_NOTIFY };
#define ENV_WATCH_MAX_MS (7LL * 24 * 3600 * 1000) /* a week */
struct env_watch {
    int64_t duration_ms; /* 0: no watch (the key is absent) */
    enum env_watch_action on_critical;
};

struct env_config {
    char *name;
    char *file; /* the path it was loaded from */
    enum deploy_strategy strategy;
    char *listen;  /* "127.0.0.1:8081" or NULL */
    char *preview; /* blue-green only; NULL when absent */
    int64_t keep_previous_ms;
    int retain_releases;
    char *spa_fallback; /* "/index.html" or NULL */
    struct env_cache_rule *cache;
    size_t ncache;
    struct env_approval approval;
    struct env_deploy_from deploy_from;
    struct env_errors errors;
    struct env_watch watch;
};

/* Bounds of the gate keys. */
#define ENV_APPROVERS_MAX 100
#define ENV_APPROVER_NAME_MAX 256
#define ENV_PATTERNS_MAX 100
#define ENV_APPROVAL_TIMEOUT_MAX_MS (30LL * 24 * 3600 * 1000) /* 30 days, GitHub's bound */

/* 1 when name may be an approver's name: 1 to ENV_APPROVER_NAME_MAX bytes of
 * printable UTF-8 without blanks or commas. */
int env_approver_name_valid(const char *name);

/* Loads and validates one environment file. Errors name the file, line and
 * column, the key and what was expected; unknown keys are errors. Caller frees
 * with env_config_free. */
int env_config_load(const char *file, struct env_config **out, struct sw_err *err);
void env_config_free(struct env_config *c);
/* Loads every YAML file (".yml", ".yaml") in dir, sorted by name. Free with env_configs_free. */
int env_configs_load_dir(const char *dir, struct env_config ***out, size_t *n, struct sw_err *err);
void env_configs_free(struct env_config **v, size_t n);
/* Loads environment name from dir (a project's .slipway/environments):
 * <name>.yml, else <name>.yaml. An unknown name is SW_ENOTFOUND on one line
 * listing the environments dir has ("unknown environment 'x' (no FILE;
 * known: dev, staging)"); a bad name is SW_EINVAL. Shared by the CLI and the
 * pipeline's delivery steps. Caller frees with env_config_free. */
int env_config_find(const char *dir, const char *name, struct env_config **out, struct sw_err *err);
/* Checks an environment name: [a-z0-9][a-z0-9_-]{0,62}. */
int env_name_check(const char *name, struct sw_err *err);

/* ---- state ------------------------------------------------------------------ */

struct env_change {
    char action[16]; /* "deploy", "switch", "rollback", "verdict" */
    char *from, *to; /* release ids or NULL */
    char *actor, *message;
    int slot;     /* the slot written or made live; SLOT_NONE for direct */
    int switched; /* live traffic changed; -1 when not recorded */
    int64_t time_ms;
    int64_t generation;
};

/* A release an automatic rollback took off an environment: deploying it
 * there again (or switching or rolling back to it) needs deploy_opts.force,
 * which also takes it off the list. The newest ENV_REJECTED_MAX are kept. */
#define ENV_REJECTED_MAX 16
struct env_rejection {
    char *release;
    char *reason; /* the rule, its value, who judged: one line of text */
    int64_t time_ms;
};

/* The lease of the change in progress, in the state document: who holds
 * it and until when. A lease past its expiry, or held by a process that no
 * longer exists on this host, is taken over. */
struct env_lease {
    char *owner; /* host name; NULL: nobody holds the environment */
    char *actor;
    char action[16]; /* as env_change.action */
    int64_t pid;
    int64_t since_ms, expires_ms;
};

struct env_state {
    char *env;
    enum deploy_strategy strategy;
    int64_t generation; /* 0: never deployed */
    int live_slot;      /* SLOT_BLUE / SLOT_GREEN; SLOT_NONE for direct or empty */
    char *slot_release[2];
    int64_t slot_since_ms[2];
    char *live_release; /* what serves traffic, NULL when nothing */
    char *previous_release;
    int64_t previous_since_ms; /* when it stopped being live */
    int64_t updated_ms;
    struct env_change last;
    struct env_rejection rejected[ENV_REJECTED_MAX]; /* oldest first */
    size_t nrejected;
    struct env_lease lease;
    char etag[SHA256_HEX_LEN + 1]; /* "" when the document does not exist yet */
};

/* Reads an environment's state; a never-deployed environment yields an empty
 * state (generation 0). Caller frees with env_state_free. */
int deploy_state_load(struct store *st, const char *env, struct env_state **out,
                      struct sw_err *err);
/* Like deploy_state_load for a follower that has the state whose ETag is
 * etag: *out is NULL (and 0 returned) when the document is unchanged, which on
 * S3 costs a 304 without a body. An empty etag reads. */
int deploy_state_poll(struct store *st, const char *env, const char *etag, struct env_state **out,
                      struct sw_err *err);
void env_state_free(struct env_state *s);
/* A copy of s, its own strings. Caller frees with env_state_free. */
struct env_state *env_state_dup(const struct env_state *s);
/* Parses and validates the state document of environment env read from key
 * into s (zeroed by the caller, s->env set): strategy, slots, release ids,
 * times and generations checked, and the invariants every change keeps. A
 * document that fails is SW_EINVAL naming key and the fault; s may then hold
 * partial fields for env_state_free. Pure: any thread. */
int deploy_state_parse(const char *key, const char *env, const char *data, size_t len,
                       struct env_state *s, struct sw_err *err);
/* The idle slot of a blue-green state (the one not live), SLOT_BLUE when empty. */
int deploy_idle_slot(const struct env_state *s);
/* The rejection of release in s, or NULL. */
const struct env_rejection *deploy_rejection(const struct env_state *s, const char *release);

/* ---- changes ------------------------------------------------------------------ */

struct deploy_opts {
    const char *actor;   /* who; NULL: the current user */
    const char *message; /* optional */
    int do_switch;       /* blue-green: make the deployed slot live at once */
    /* Non-zero: change only while the state is still this generation (what
     * the caller judged), else DEPLOY_ESTALE and nothing changes. The watch's
     * rollback uses it so that of several nodes judging the same release only
     * one rolls back, and none undoes a person's newer change. */
    int64_t if_generation;
    /* rollback: the release taken off live is rejected with this reason. */
    const char *reject;
    /* A rejected release may be deployed, switched or rolled back to (and
     * leaves the list); without force that is DEPLOY_EREJECTED. */
    int force;
    /* deploy_release: the caller made the release with release_create in this
     * process, which proves every body is in the store, so its manifest is not
     * read and its bodies are not checked again. */
    int made;
    /* Optional: a local file where this machine keeps the audit head as its
     * last change left it (the CLI: in the project's .slipway/cache/, per
     * store). A change starts from it instead of reading the head, when no one
     * else has moved the head since (the head's compare-and-swap write says
     * so: refused, the head is read, and the copy is not used for a while). */
    const char *head_copy;
    /* Optional: this change begun ahead (deploy_ahead_start, for the same
     * environment and action): its lease and reads are taken over, its
     * failure (DEPLOY_ELOCKED, ...) is the change's. The caller frees it. */
    struct deploy_ahead *ahead;
};

/* A change's first requests (the state, the audit head, the lease) started
 * on a thread of its own, before the caller knows what it will change: deploy
 * DIR reads while the new release's manifest uploads. Whatever no change took
 * over is released by deploy_ahead_free (a lease given back).
 *
 * known (optional): the state as the caller read it before (deploy DIR reads
 * it first, for the live release), called on a's thread and returning a copy a
 * keeps (env_state_dup), or NULL. The change then reads no state: the lease's
 * compare-and-swap write proves the copy current, and when another change came
 * between the caller's read and it, the state is read again and the lease
 * taken on that. known_arg must outlive a (deploy_ahead_free joins).
 *
 * lease_after_ms: 0 takes the lease as soon as the state is read. Otherwise a
 * change that takes a over within that time takes no lease at all: its one
 * write is the compare-and-swap on the state read, and when that is refused
 * (another change came meanwhile) or the read refuses the change, the change
 * is made again on the state as it is then, under the lease. A caller still
 * busy after that time (a large upload) gets the lease then, so others see
 * the change in progress. A lease someone else holds is refused at once. */
struct deploy_ahead;
typedef struct env_state *(*deploy_known_fn)(void *known_arg);
struct deploy_ahead_opts {
    deploy_known_fn known;
    void *known_arg;
    int lease_after_ms;
    const char *head_copy; /* as deploy_opts.head_copy */
};
/* o may be NULL (no known, the lease at once, no copy). */
struct deploy_ahead *deploy_ahead_start(struct store *st, const struct env_config *env,
                                        const char *action, const struct deploy_ahead_opts *o);
/* deploy DIR: a change whose upload is over within this takes no lease. */
#define DEPLOY_LEASE_AFTER_MS 1000
/* Waits for a's requests (and, with lease_after_ms, that long): 0 when it
 * holds the lease, else why not (err). */
int deploy_ahead_wait(struct deploy_ahead *a, struct sw_err *err);
void deploy_ahead_free(struct deploy_ahead *a);

/* What a change did, for the CLI to print. Free with deploy_result_free. */
struct deploy_result {
    char action[16];
    char *from, *to; /* live release before and after */
    int slot;        /* the slot written or made live; SLOT_NONE for direct */
    int switched;    /* live traffic changed */
    int64_t generation;
};
void deploy_result_free(struct deploy_result *r);

/* Deploys a release (which must exist and be complete) to an environment.
 * Direct: it becomes live. Blue-green: it goes to the idle slot and becomes
 * live only with opts->do_switch. Fails with DEPLOY_ELOCKED or SW_ECONFLICT
 * when another change is in progress, changing nothing. */
int deploy_release(struct store *st, const struct env_config *env, const char *release_id,
                   const struct deploy_opts *opts, struct deploy_result *res, struct sw_err *err);
/* Blue-green: makes the idle slot live. */
int deploy_switch(struct store *st, const struct env_config *env, const struct deploy_opts *opts,
                  struct deploy_result *res, struct sw_err *err);
/* Goes back to to_release, or (NULL) to the previous release: an instant flip
 * when the idle slot still holds it within keep_previous, else a deploy. */
int deploy_rollback(struct store *st, const struct env_config *env, const char *to_release,
                    const struct deploy_opts *opts, struct deploy_result *res, struct sw_err *err);

/* Records how the watch of the live release ended (opts->message says it:
 * "passed", "not enough traffic ..."): a change of action "verdict" that
 * moves nothing, made only while the state is opts->if_generation (the
 * deploy or switch whose window ended; required), so it is written once
 * whatever the number of nodes. */
int deploy_verdict(struct store *st, const struct env_config *env, const struct deploy_opts *opts,
                   struct deploy_result *res, struct sw_err *err);

/* ---- history ---------------------------------------------------------------------- */

struct deploy_event {
    int64_t seq;
    char *time, *env, *actor, *action, *from, *to, *message;
    char *slot;   /* blue-green: the slot the change wrote or made live; else NULL */
    int switched; /* live traffic changed: 1 / 0; -1 when not recorded (older events) */
    int64_t generation;
};
/* Parses and validates one audit event document read from key (hostile
 * input: every field checked). prev receives the link it carries ("" for
 * none). On success free e's fields with deploy_event_clear; on failure e is
 * cleared already. SW_EINVAL names key and the fault. Pure: any thread. */
int deploy_event_parse(const char *key, const char *data, size_t len, struct deploy_event *e,
                       char prev[SHA256_HEX_LEN + 1], struct sw_err *err);
void deploy_event_clear(struct deploy_event *e);
/* Events of one environment (env non-NULL) or all, oldest first. Free with
 * deploy_events_free. */
int deploy_history(struct store *st, const char *env, struct deploy_event **out, size_t *n,
                   struct sw_err *err);
void deploy_events_free(struct deploy_event *v, size_t n);
/* Verifies the hash chain of the audit log, and each environment's newest event
 * against its state document; SW_EINVAL names the first broken link. */
int deploy_history_verify(struct store *st, size_t *checked, struct sw_err *err);

/* What deploy_audit_export did. */
struct audit_export {
    int64_t events; /* the events the chain holds (the store's head) */
    size_t sent;    /* how many of them dst did not have yet */
};
/* Copies the audit log (every event the head names, then the head) from src
 * to dst, e.g. a logs bucket the store's writers cannot reach, so that a
 * later `history --verify` on dst proves what happened even if src is
 * altered. Incremental: an event dst has is compared, not sent again; one
 * that differs is SW_ECONFLICT (dst holds another chain). The head is
 * written last, so dst holds a whole chain after every run. */
int deploy_audit_export(struct store *src, struct store *dst, struct audit_export *rep,
                        struct sw_err *err);

/* ---- garbage collection -------------------------------------------------------------- */

struct gc_report {
    char **releases; /* release ids deleted (or that would be) */
    size_t nreleases;
    size_t blobs;       /* blobs deleted (or that would be) */
    uint64_t bytes;     /* their size */
    size_t kept;        /* releases kept */
    size_t temporaries; /* leftovers of interrupted writes removed */
    /* Manifests that could not be read, each "releases/<id>.json: why". They
     * are kept, and while there is one no blob is deleted: what it names is
     * unknown. */
    char **unreadable;
    size_t nunreadable;
};
/* Blobs that documents deploy does not read reference (a workflow run's
 * artifacts: pipeline gathers them, deploy never reads pipeline documents).
 * Everything is borrowed for the deploy_gc call only; the caller owns it. */
struct gc_roots {
    const char *const *blobs; /* hex ids, kept as a kept release's bodies are */
    size_t nblobs;
    /* Non-zero when the caller could not read or validate every document that
     * may reference blobs: what those name is unknown, so no blob is deleted
     * (releases are still collected). */
    int incomplete;
};
/* Plans (apply=0) or performs garbage collection over every environment in
 * envs. Kept: releases a slot holds, the previous release within
 * keep_previous, the newest retain_releases deployed per environment, and
 * anything younger than grace_ms (a release being created right now). Blobs no
 * kept release references, and none of roots (optional) names, are deleted. The
 * caller gathers roots before the call: a document written after that has
 * bodies younger than grace_ms. Free the report with gc_report_free. */
int deploy_gc(struct store *st, struct env_config *const *envs, size_t nenvs,
              const struct gc_roots *roots, int apply, int64_t grace_ms, struct gc_report *rep,
              struct sw_err *err);
void gc_report_free(struct gc_report *r);

#endif
