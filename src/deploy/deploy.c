/*
 * Deploy, switch and rollback: the environment state machine.
 *
 * Every change runs the same transaction (change()): read the state, write the
 * lease into it, record any audit event a crash left unwritten, apply the
 * change to the in-memory state, write it with compare-and-swap (the lease
 * gone), append the event. A deploy DIR whose upload was short skips the
 * lease: the write's compare-and-swap alone proves its read, and a refusal
 * makes the change again, leased. The apply step is a pure function of the state, so
 * the operations differ only in it.
 *
 * Blue-green: a deploy writes the idle slot; a switch makes it live and the
 * old live release becomes "previous". While the idle slot still holds the
 * previous release, rollback is the same instant flip back.
 */
#include "deploy/internal.h"
#include "release/release.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void deploy_result_free(struct deploy_result *r)
{
    if (!r)
        return;
    free(r->from);
    free(r->to);
    memset(r, 0, sizeof(*r));
}

static void set_str(char **dst, const char *s)
{
    char *copy = xstrdup_or_null(s);
    free(*dst);
    *dst = copy;
}

static int str_eq(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

/* Makes the idle slot live; the old live release becomes previous. */
static void flip(struct env_state *s, int64_t now)
{
    int idle = deploy_idle_slot(s);
    if (s->live_release && !str_eq(s->live_release, s->slot_release[idle])) {
        set_str(&s->previous_release, s->live_release);
        s->previous_since_ms = now;
    }
    s->live_slot = idle;
    set_str(&s->live_release, s->slot_release[idle]);
}

/* The environment file may have changed strategy since the last change. */
static void convert_strategy(struct env_state *s, enum deploy_strategy want)
{
    if (s->strategy == want)
        return;
    if (want == STRATEGY_BLUE_GREEN) {
        if (s->live_release) {
            set_str(&s->slot_release[SLOT_BLUE], s->live_release);
            s->slot_since_ms[SLOT_BLUE] = s->updated_ms;
            s->live_slot = SLOT_BLUE;
        }
    } else {
        for (int i = 0; i < 2; i++) {
            free(s->slot_release[i]);
            s->slot_release[i] = NULL;
            s->slot_since_ms[i] = 0;
        }
        s->live_slot = SLOT_NONE;
    }
    s->strategy = want;
}

struct op {
    const char *action;
    const char *release; /* deploy / rollback target */
    int do_switch;
    const struct env_config *env;
};

static int apply_deploy(struct env_state *s, const struct op *op, struct deploy_result *res,
                        struct sw_err *err)
{
    if (str_eq(op->release, s->live_release))
        return sw_err_set(err, DEPLOY_ENOTHING, "release %s is already live on %s; nothing changed",
                          op->release, s->env);
    int64_t now = time_now_ms();
    if (s->strategy == STRATEGY_DIRECT) {
        if (s->live_release && !str_eq(s->live_release, op->release)) {
            set_str(&s->previous_release, s->live_release);
            s->previous_since_ms = now;
        }
        set_str(&s->live_release, op->release);
        res->switched = 1;
        return 0;
    }
    int idle = deploy_idle_slot(s);
    set_str(&s->slot_release[idle], op->release);
    s->slot_since_ms[idle] = now;
    res->slot = idle;
    /* The very first deploy has nothing live to protect: it goes live at once. */
    if (op->do_switch || !s->live_release) {
        flip(s, now);
        res->switched = 1;
    }
    return 0;
}

static int apply_switch(struct env_state *s, const struct op *op, struct deploy_result *res,
                        struct sw_err *err)
{
    if (s->strategy != STRATEGY_BLUE_GREEN)
        return sw_err_set(err, DEPLOY_ESTRATEGY,
                          "environment %s uses the direct strategy; there is no idle slot to "
                          "switch to (deploy a release instead)",
                          s->env);
    int idle = deploy_idle_slot(s);
    if (!s->slot_release[idle])
        return sw_err_set(err, DEPLOY_ENOTHING,
                          "environment %s: the idle slot (%s) holds no release; deploy one first",
                          s->env, deploy_slot_name(idle));
    flip(s, time_now_ms());
    res->slot = s->live_slot;
    res->switched = 1;
    return 0;
}

static int rollback_to(struct env_state *s, const struct op *op, const char *target,
                       struct deploy_result *res, struct sw_err *err);

static int apply_rollback(struct env_state *s, const struct op *op, struct deploy_result *res,
                          struct sw_err *err)
{
    if (!op->release && !s->previous_release)
        return sw_err_set(err, DEPLOY_ENOTHING,
                          "environment %s has no previous release to roll back to (use --to "
                          "RELEASE)",
                          s->env);
    /* A copy: the state fields it may come from are rewritten below. */
    char *target = xstrdup(op->release ? op->release : s->previous_release);
    int rc = rollback_to(s, op, target, res, err);
    free(target);
    return rc;
}

static int rollback_to(struct env_state *s, const struct op *op, const char *target,
                       struct deploy_result *res, struct sw_err *err)
{
    if (str_eq(target, s->live_release))
        return sw_err_set(err, DEPLOY_ENOTHING, "environment %s: %s is already live", s->env,
                          target);
    int64_t now = time_now_ms();
    if (s->strategy == STRATEGY_BLUE_GREEN) {
        int idle = deploy_idle_slot(s);
        int kept = str_eq(s->slot_release[idle], target) &&
                   (op->release || now - s->previous_since_ms <= op->env->keep_previous_ms);
        if (!kept) {
            set_str(&s->slot_release[idle], target);
            s->slot_since_ms[idle] = now;
        }
        flip(s, now);
        res->slot = s->live_slot;
        res->switched = 1;
        return 0;
    }
    if (s->live_release) {
        set_str(&s->previous_release, s->live_release);
        s->previous_since_ms = now;
    }
    set_str(&s->live_release, target);
    res->switched = 1;
    return 0;
}

/* The release a change made live (or, a deploy to the idle slot, wrote
 * there) must not be one an automatic rollback rejected, unless forced. */
static int rejection_check(struct env_state *s, const struct op *op,
                           const struct deploy_result *res, const struct deploy_opts *opts,
                           struct sw_err *err)
{
    if (!strcmp(op->action, "verdict"))
        return 0;
    const char *id = res->switched ? s->live_release : op->release;
    const struct env_rejection *r = deploy_rejection(s, id);
    if (!r)
        return 0;
    if (!opts || !opts->force) {
        char when[40];
        time_format_iso(r->time_ms, when, sizeof(when));
        return sw_err_set(err, DEPLOY_EREJECTED,
                          "release %s was rejected on %s at %s (%s); nothing was changed. To "
                          "%s it anyway, add --force",
                          id, s->env, when, r->reason, op->action);
    }
    size_t i = (size_t)(r - s->rejected);
    free(s->rejected[i].release);
    free(s->rejected[i].reason);
    memmove(&s->rejected[i], &s->rejected[i + 1], (s->nrejected - i - 1) * sizeof(*r));
    s->nrejected--;
    return 0;
}

/* Records release as rejected: a rejection of the same release is replaced,
 * and the oldest goes when the list is full. */
static void reject_add(struct env_state *s, const char *release, const char *reason)
{
    const struct env_rejection *old = deploy_rejection(s, release);
    size_t i = old ? (size_t)(old - s->rejected) : 0;
    if (old || s->nrejected == ENV_REJECTED_MAX) {
        free(s->rejected[i].release);
        free(s->rejected[i].reason);
        memmove(&s->rejected[i], &s->rejected[i + 1],
                (s->nrejected - i - 1) * sizeof(s->rejected[0]));
        s->nrejected--;
    }
    struct env_rejection *r = &s->rejected[s->nrejected++];
    r->release = xstrdup(release);
    r->reason = xstrdup(reason);
    r->time_ms = time_now_ms();
}

/* A verdict changes no slot: it records in the state (so that of several
 * nodes exactly one records it, by if_generation) and in the audit chain how
 * a watched release ended its window. */
static int apply_verdict(struct env_state *s, const struct op *op, struct deploy_result *res,
                         struct sw_err *err)
{
    (void)op;
    if (!s->live_release)
        return sw_err_set(err, DEPLOY_ENOTHING, "environment %s has no live release to judge",
                          s->env);
    res->slot = s->live_slot;
    res->switched = 0;
    return 0;
}

typedef int (*apply_fn)(struct env_state *, const struct op *, struct deploy_result *,
                        struct sw_err *);

/* Test hook (like git's GIT_TEST_*): hold the lease this long before writing,
 * so tests can make two changes overlap deterministically. */
static void test_delay(void)
{
    const char *d = getenv("SLIPWAY_TEST_DEPLOY_DELAY_MS");
    if (d && *d)
        usleep((useconds_t)atoi(d) * 1000);
    /* Or until the test creates this file (at most a minute): a hold that does not
     * depend on how fast a loaded machine runs the test's side of the overlap. The
     * change first creates FILE.held, so the test knows it has read the state and
     * holds the lease, on any store (an S3 read leaves no trace a test can watch). */
    const char *f = getenv("SLIPWAY_TEST_DEPLOY_HOLD_FILE");
    if (!f || !*f)
        return;
    char *held = xasprintf("%s.held", f);
    int fd = open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
        close(fd);
    free(held);
    for (int i = 0; i < 6000 && access(f, F_OK) != 0; i++)
        usleep(10000);
}

/* Whether test_delay will hold the change: such a change holds the lease, as
 * the tests that use it expect, whatever its upload's length. */
static int test_holds(void)
{
    const char *d = getenv("SLIPWAY_TEST_DEPLOY_DELAY_MS"),
               *f = getenv("SLIPWAY_TEST_DEPLOY_HOLD_FILE");
    return (d && *d) || (f && *f);
}

/* The audit head read in a thread beside the state: on a remote store each is
 * a round trip, and the change needs both before it can write. */
struct head_fetch {
    struct store *st;
    const char *copy;
    struct deploy_head_memo memo;
    pthread_t th;
    int running, done;
};

static void *head_fetch_main(void *arg)
{
    struct head_fetch *f = arg;
    deploy_head_prefetch(f->st, f->copy, &f->memo);
    return NULL;
}

static void head_fetch_start(struct head_fetch *f, struct store *st, const char *copy)
{
    f->st = st;
    f->copy = copy;
    f->running = store_is_remote(st) && pthread_create(&f->th, NULL, head_fetch_main, f) == 0;
    /* A local head costs no round trip: read with the change's appends,
     * unless a copy was asked for (the same path on every store). */
    if (!f->running && copy) {
        head_fetch_main(f);
        f->done = 1;
    }
}

/* Joins the fetch (if one runs) and hands its head to memo. */
static void head_fetch_join(struct head_fetch *f, struct deploy_head_memo *memo)
{
    if (f->running)
        pthread_join(f->th, NULL);
    else if (!f->done)
        return;
    f->running = f->done = 0;
    *memo = f->memo;
}

/* Reads the state (or takes known's copy of it) and the audit head: a
 * change's first requests, which need nothing of what it will change. */
static int change_reads(struct store *st, const char *env, enum deploy_strategy strategy,
                        deploy_known_fn known, void *known_arg, const char *head_copy,
                        struct env_state **s, struct deploy_head_memo *memo, struct sw_err *err)
{
    /* Proving the store's compare-and-swap (S3: a request) overlaps the reads. */
    store_prepare_cas(st);
    struct head_fetch hf = {0};
    head_fetch_start(&hf, st, head_copy);
    *s = known ? known(known_arg) : NULL;
    if (*s && strcmp((*s)->env, env) != 0) {
        env_state_free(*s);
        *s = NULL;
    }
    int rc = *s ? 0 : deploy_state_load(st, env, s, err);
    if (!rc && !(*s)->generation)
        (*s)->strategy = strategy;
    head_fetch_join(&hf, memo);
    return rc;
}

/* The reads, then the lease: its compare-and-swap write proves a copy current. */
static int change_begin(struct store *st, const char *env, enum deploy_strategy strategy,
                        const char *action, const char *head_copy, struct env_lock *lk,
                        struct env_state **s, struct deploy_head_memo *memo, struct sw_err *err)
{
    int rc = change_reads(st, env, strategy, NULL, NULL, head_copy, s, memo, err);
    return rc ? rc : deploy_lock(st, action, s, lk, err);
}

struct deploy_ahead {
    struct store *st;
    char *env, *action;
    enum deploy_strategy strategy;
    deploy_known_fn known;
    void *known_arg;
    int lease_after_ms;
    char *head_copy;
    pthread_t th;
    int running;
    /* taken: a change took a over, or it is freed (under mu; cond wakes the
     * thread waiting to take the lease). */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int taken;
    int rc;
    struct sw_err err;
    struct env_lock lk;
    struct env_state *s;
    struct deploy_head_memo memo;
};

/* Whether a change takes a over within its lease_after_ms. */
static int ahead_taken_in_time(struct deploy_ahead *a)
{
    struct timespec until = time_mono_deadline(a->lease_after_ms);
    pthread_mutex_lock(&a->mu);
    while (!a->taken && pthread_cond_timedwait(&a->cond, &a->mu, &until) != ETIMEDOUT)
        ;
    int taken = a->taken;
    pthread_mutex_unlock(&a->mu);
    return taken;
}

static void *ahead_main(void *arg)
{
    struct deploy_ahead *a = arg;
    a->rc = change_reads(a->st, a->env, a->strategy, a->known, a->known_arg, a->head_copy, &a->s,
                         &a->memo, &a->err);
    if (a->rc)
        return NULL;
    /* A lease someone holds is that change's refusal now, not after the wait. */
    int held = a->s->lease.owner && !deploy_lease_stale(&a->s->lease);
    if (a->lease_after_ms && !held && !test_holds() && ahead_taken_in_time(a))
        return NULL; /* the change is one compare-and-swap on this read */
    a->rc = deploy_lock(a->st, a->action, &a->s, &a->lk, &a->err);
    return NULL;
}

struct deploy_ahead *deploy_ahead_start(struct store *st, const struct env_config *env,
                                        const char *action, const struct deploy_ahead_opts *o)
{
    struct deploy_ahead *a = xcalloc(1, sizeof(*a));
    a->st = st;
    a->env = xstrdup(env->name);
    a->strategy = env->strategy;
    a->action = xstrdup(action);
    if (o) {
        a->known = o->known;
        a->known_arg = o->known_arg;
        a->lease_after_ms = o->lease_after_ms > 0 ? o->lease_after_ms : 0;
        a->head_copy = xstrdup_or_null(o->head_copy);
    }
    pthread_mutex_init(&a->mu, NULL);
    cond_init_monotonic(&a->cond);
    a->running = pthread_create(&a->th, NULL, ahead_main, a) == 0;
    if (!a->running) {
        a->lease_after_ms = 0; /* no thread to wait on: the lease at once */
        ahead_main(a);
    }
    return a;
}

/* take: the caller takes a over (or frees it), so a lease not yet taken is
 * not taken. */
static void ahead_join(struct deploy_ahead *a, int take)
{
    if (take) {
        pthread_mutex_lock(&a->mu);
        a->taken = 1;
        pthread_cond_signal(&a->cond);
        pthread_mutex_unlock(&a->mu);
    }
    if (a->running)
        pthread_join(a->th, NULL);
    a->running = 0;
}

int deploy_ahead_wait(struct deploy_ahead *a, struct sw_err *err)
{
    ahead_join(a, 0);
    if (a->rc && err)
        *err = a->err;
    return a->rc;
}

/* Hands a's lease, state and head to a change of env and action (moved: a
 * keeps none); its result. */
static int ahead_take(struct deploy_ahead *a, const char *env, const char *action,
                      struct env_lock *lk, struct env_state **s, struct deploy_head_memo *memo,
                      struct sw_err *err)
{
    ahead_join(a, 1);
    if (strcmp(a->env, env) || strcmp(a->action, action))
        return sw_err_set(err, SW_EINVAL, "a change begun for %s (%s) taken for %s (%s)", a->env,
                          a->action, env, action);
    *lk = a->lk;
    *s = a->s;
    *memo = a->memo;
    memset(&a->lk, 0, sizeof(a->lk));
    memset(&a->memo, 0, sizeof(a->memo));
    a->s = NULL;
    if (a->rc && err)
        *err = a->err;
    return a->rc;
}

void deploy_ahead_free(struct deploy_ahead *a)
{
    if (!a)
        return;
    ahead_join(a, 1);
    deploy_unlock(a->st, &a->lk);
    env_state_free(a->s);
    deploy_head_memo_clear(&a->memo);
    free(a->env);
    free(a->action);
    free(a->head_copy);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cond);
    free(a);
}

/* Makes op's change of s, which holds the lease, and writes it without the
 * lease (0: written, the lease with it), then appends its event. */
static int change_make(struct store *st, const struct op *op, apply_fn apply,
                       const struct deploy_opts *opts, const char *actor, struct env_state *s,
                       struct deploy_head_memo *memo, struct deploy_result *res, struct sw_err *err)
{
    const struct env_config *env = op->env;
    if (opts && opts->if_generation && s->generation != opts->if_generation) {
        return sw_err_set(err, DEPLOY_ESTALE,
                          "environment %s changed since generation %lld was judged (now %lld, "
                          "%s by %s); nothing was changed",
                          env->name, (long long)opts->if_generation, (long long)s->generation,
                          s->last.action[0] ? s->last.action : "?",
                          s->last.actor ? s->last.actor : "?");
    }
    if (s->generation == 0)
        s->strategy = env->strategy;
    /* A crash between the state write and the event append of the last change
     * left the audit log one event short: write it now. */
    int rc = deploy_event_append(st, s, memo, err);
    if (rc)
        return rc;
    convert_strategy(s, env->strategy);
    char *old_live = xstrdup_or_null(s->live_release);
    if ((rc = apply(s, op, res, err)) || (rc = rejection_check(s, op, res, opts, err))) {
        free(old_live);
        return rc;
    }
    if (opts && opts->reject && old_live)
        reject_add(s, old_live, opts->reject);
    test_delay();
    int64_t now = time_now_ms();
    s->generation++;
    s->updated_ms = now;
    env_change_clear(&s->last);
    snprintf(s->last.action, sizeof(s->last.action), "%s", op->action);
    s->last.from = old_live;
    s->last.to = xstrdup_or_null(s->live_release);
    if (!res->switched && op->release) /* a deploy to the idle slot: what the slot now holds */
        set_str(&s->last.to, op->release);
    s->last.actor = xstrdup(actor);
    s->last.message = xstrdup_or_null(opts ? opts->message : NULL);
    s->last.slot = s->strategy == STRATEGY_BLUE_GREEN ? res->slot : SLOT_NONE;
    s->last.switched = res->switched;
    s->last.time_ms = now;
    s->last.generation = s->generation;
    env_lease_clear(&s->lease);
    if ((rc = deploy_state_save(st, s, err)))
        return rc;
    res->from = xstrdup_or_null(s->last.from);
    res->to = xstrdup_or_null(s->live_release);
    res->generation = s->generation;
    /* The change is made; a failed append is repaired by the next change. */
    deploy_event_append(st, s, memo, NULL);
    return 0;
}

/* A change refused on what the state says (not a failure to read or write it). */
static int judged(int rc)
{
    return rc == DEPLOY_ESTRATEGY || rc == DEPLOY_ENOTHING || rc == DEPLOY_ESTALE ||
           rc == DEPLOY_EREJECTED;
}

static void result_start(struct deploy_result *res, const struct op *op)
{
    memset(res, 0, sizeof(*res));
    res->slot = SLOT_NONE;
    snprintf(res->action, sizeof(res->action), "%s", op->action);
}

static int change(struct store *st, const struct op *op, apply_fn apply,
                  const struct deploy_opts *opts, struct deploy_result *res, struct sw_err *err)
{
    const struct env_config *env = op->env;
    struct env_lock lk = {0};
    struct env_state *s = NULL;
    struct deploy_head_memo memo = {0};
    result_start(res, op);
    /* Checked before anything changes: the state and the audit log must be
     * documents every reader accepts, and text that could forge a line of
     * someone's output is refused here rather than escaped everywhere. */
    const char *actor = opts && opts->actor ? opts->actor : sys_user();
    if (!deploy_text_ok(actor, 0))
        return sw_err_set(err, SW_EINVAL,
                          "the actor name must be printable UTF-8 of at most 256 bytes");
    if (opts && opts->message && !deploy_text_ok(opts->message, 1))
        return sw_err_set(err, SW_EINVAL,
                          "the message must be UTF-8 text without control characters (line "
                          "breaks and tabs are fine), at most 64 KiB");
    if (opts && opts->reject && !text_valid(opts->reject, DEPLOY_REASON_MAX, 0))
        return sw_err_set(err, SW_EINVAL,
                          "the rejection reason must be one line of UTF-8 text, at most 1 KiB");
    const char *copy = opts ? opts->head_copy : NULL;
    int rc =
        opts && opts->ahead
            ? ahead_take(opts->ahead, env->name, op->action, &lk, &s, &memo, err)
            : change_begin(st, env->name, env->strategy, op->action, copy, &lk, &s, &memo, err);
    if (rc)
        goto out;
    int leased = lk.locked != NULL;
    rc = change_make(st, op, apply, opts, actor, s, &memo, res, err);
    if (!leased && (rc == SW_ECONFLICT || judged(rc))) {
        /* Made without the lease on a read another change may have moved: its
         * write was refused, or the read was judged, so the change is made
         * again on the state as it is now, under the lease. */
        env_state_free(s);
        s = NULL;
        deploy_result_free(res);
        result_start(res, op);
        int refused = memo.copy_refused;
        deploy_head_memo_clear(&memo);
        rc = change_begin(st, env->name, env->strategy, op->action, NULL, &lk, &s, &memo, err);
        memo.copy_refused |= refused;
        if (!rc)
            rc = change_make(st, op, apply, opts, actor, s, &memo, res, err);
    }
    if (!rc)
        deploy_lock_consumed(&lk);
    /* The head as this change left it, for the next; or, when the copy was
     * behind the head, its pause. */
    if (!rc || memo.copy_refused)
        deploy_head_copy_save(st, copy, &memo);
out:
    deploy_head_memo_clear(&memo);
    env_state_free(s);
    deploy_unlock(st, &lk);
    return rc;
}

/* A release may be deployed only when its manifest and every body exist. */
static int check_release(struct store *st, const char *id, struct sw_err *err)
{
    struct release *r = NULL;
    int rc = release_load(st, id, &r, err);
    if (!rc)
        rc = release_verify(st, r, err);
    release_free(r);
    return rc;
}

int deploy_release(struct store *st, const struct env_config *env, const char *release_id,
                   const struct deploy_opts *opts, struct deploy_result *res, struct sw_err *err)
{
    int rc = opts && opts->made ? 0 : check_release(st, release_id, err);
    if (rc)
        return rc;
    struct op op = {"deploy", release_id, opts && opts->do_switch, env};
    return change(st, &op, apply_deploy, opts, res, err);
}

int deploy_switch(struct store *st, const struct env_config *env, const struct deploy_opts *opts,
                  struct deploy_result *res, struct sw_err *err)
{
    struct op op = {"switch", NULL, 1, env};
    return change(st, &op, apply_switch, opts, res, err);
}

int deploy_rollback(struct store *st, const struct env_config *env, const char *to_release,
                    const struct deploy_opts *opts, struct deploy_result *res, struct sw_err *err)
{
    if (to_release) {
        int rc = check_release(st, to_release, err);
        if (rc)
            return rc;
    } else {
        /* Check the previous release before the lease; apply re-reads the state. */
        struct env_state *s = NULL;
        int rc = deploy_state_load(st, env->name, &s, err);
        if (!rc && s->previous_release)
            rc = check_release(st, s->previous_release, err);
        env_state_free(s);
        if (rc)
            return rc;
    }
    struct op op = {"rollback", to_release, 1, env};
    return change(st, &op, apply_rollback, opts, res, err);
}

int deploy_verdict(struct store *st, const struct env_config *env, const struct deploy_opts *opts,
                   struct deploy_result *res, struct sw_err *err)
{
    if (!opts || !opts->message || !opts->if_generation)
        return sw_err_set(err, SW_EINVAL, "a verdict needs a message and the generation judged");
    struct op op = {"verdict", NULL, 0, env};
    return change(st, &op, apply_verdict, opts, res, err);
}
