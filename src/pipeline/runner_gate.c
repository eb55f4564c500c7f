/* An environment's rules for a leg about to start, read from the runner's
 * own project (never the commit's: a push cannot lower its own gate): the
 * refs it may deploy from, then its approval gate. A leg at a gate gives up
 * its place among the legs run at once, polls the record for decisions,
 * judges them by the environment's rules, and, if the whole run only waits,
 * lets the run be parked (pipeline_run_park) and stops without a word. */
#include "deploy/deploy.h"
#include "pipeline/pipeline.h"
#include "pipeline/runner_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The environment file of env in the runner's own project (never the
 * commit's: a push cannot lower its own gate). *out NULL: no file, no rules. */
static int env_rules_load(struct runner *rn, const char *env, struct env_config **out,
                          struct sw_err *err)
{
    static const char *const ext[] = {".yml", ".yaml"};
    struct sw_err e = {0};

    *out = NULL;
    /* a name that cannot be a file name has no file (GitHub makes such
     * environments on the fly, without rules) */
    if (!rn->o->project || env_name_check(env, &e) < 0)
        return 0;
    for (size_t i = 0; i < 2; i++) {
        char *rel = xasprintf(".slipway/environments/%s%s", env, ext[i]);
        char *path = path_join(rn->o->project, rel);
        int rc = env_config_load(path, out, err);
        free(rel);
        free(path);
        if (rc == SW_ENOTFOUND) {
            *err = (struct sw_err){0};
            continue;
        }
        return rc;
    }
    return 0;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The leg begins to wait at gate want: the record says so (its waiting
 * since, when resumed, is the one recorded first), and the leg gives up its
 * place among the legs run at once. */
static int gate_arrive(struct leg *l, struct pipeline_gate *want)
{
    struct runner *rn = l->rn;
    struct wjob *wj = &l->sc->jobs[l->job];
    struct upd u = {0};

    u.op = UPD_GATE;
    u.rec = l->rec;
    u.gate = want;
    u.at = time_now_ms();
    pthread_mutex_lock(&rn->lock);
    int rc = runner_record(rn, &u);
    if (rc == 0 && l->rec < rn->run->njobs && rn->run->jobs[l->rec].gate)
        want->waiting_since_ms = rn->run->jobs[l->rec].gate->waiting_since_ms;
    /* waiting takes no place among the legs run at once */
    rn->running--;
    wj->running--;
    pthread_cond_broadcast(&rn->cond);
    pthread_mutex_unlock(&rn->lock);
    return rc;
}

/* Polls the record for the gate's decisions (each said once, as it comes),
 * judged by want (this runner's rules), until the gate is decided, the run
 * cancelled or the run parked (then WAITING). *now holds the decisions
 * *decider points into (caller frees); *counted: the leg counts among
 * rn->gated. */
static enum pipeline_gate_state gate_wait(struct leg *l, struct pipeline_gate *want,
                                          struct pipeline_run **now,
                                          const struct pipeline_gate_decision **decider,
                                          size_t *napproved, int *counted)
{
    struct runner *rn = l->rn;
    enum pipeline_gate_state st = PIPELINE_GATE_WAITING;
    size_t logged = 0;

    for (;;) {
        struct sw_err err = {0};
        if (atomic_load(&rn->parked))
            break;
        if (atomic_load(&rn->cancel) || atomic_load(&l->cancel))
            break;
        pipeline_run_free(*now);
        *now = NULL;
        if (pipeline_run_load(rn->st, rn->id, now, &err) == 0 && l->rec < (*now)->njobs &&
            (*now)->jobs[l->rec].gate) {
            /* the decisions the record holds, judged by this runner's rules */
            const struct pipeline_gate *g = (*now)->jobs[l->rec].gate;
            want->decisions = g->decisions;
            want->ndecisions = g->ndecisions;
            for (; logged < g->ndecisions; logged++) {
                const struct pipeline_gate_decision *d = &g->decisions[logged];
                leg_say(l, &rn->masks, PIPELINE_LOG_OUTPUT, "%s by %s%s%s%s%s%s",
                        d->reject ? "rejected" : "approved", d->by,
                        d->os_user && strcmp(d->os_user, d->by) ? " (recorded by " : "",
                        d->os_user && strcmp(d->os_user, d->by) ? d->os_user : "",
                        d->os_user && strcmp(d->os_user, d->by) ? ")" : "", d->comment ? ": " : "",
                        d->comment ? d->comment : "");
            }
        } else {
            want->decisions = NULL;
            want->ndecisions = 0;
        }
        st = pipeline_gate_decide(want, rn->actor, time_now_ms(), decider, napproved);
        if (st != PIPELINE_GATE_WAITING)
            break;
        if (!*counted) {
            /* undecided once read: from now on the run may be parked (not
             * before, or a resumed run whose gate is decided would be
             * parked again at once) */
            pthread_mutex_lock(&rn->lock);
            rn->gated++;
            *counted = 1;
            pthread_mutex_unlock(&rn->lock);
        }
        for (int i = 0; i < 5 && !atomic_load(&rn->cancel) && !atomic_load(&l->cancel); i++)
            sleep_ms(100);
    }
    return st;
}

/* What the gate's end says: approved in the log; else why the leg ends. */
static void gate_verdict(struct leg *l, const struct env_config *cfg,
                         const struct pipeline_gate *want, enum pipeline_gate_state st,
                         const struct pipeline_gate_decision *decider, size_t napproved, char **why)
{
    const struct env_approval *ap = &cfg->approval;
    char iso[40], dur[32];

    duration_format(want->timeout_ms, dur, sizeof(dur));
    if (st == PIPELINE_GATE_APPROVED)
        leg_say(l, &l->rn->masks, PIPELINE_LOG_OUTPUT, "environment %s approved (%zu of %d)",
                cfg->name, napproved, ap->required);
    else if (st == PIPELINE_GATE_REJECTED)
        *why = xasprintf("rejected by %s for environment %s%s%s", decider ? decider->by : "?",
                         cfg->name, decider && decider->comment ? ": " : "",
                         decider && decider->comment ? decider->comment : "");
    else if (st == PIPELINE_GATE_TIMED_OUT) {
        time_format_iso(want->waiting_since_ms, iso, sizeof(iso));
        *why = xasprintf("the approval for environment %s timed out after %s (%zu of %d "
                         "approvals since %s)",
                         cfg->name, dur, napproved, ap->required, iso);
    } else
        *why = xasprintf("cancelled while waiting for approval for environment %s", cfg->name);
}

/* The leg takes its place among the legs run at once again: approved, it
 * waits for one like any leg. */
static void gate_retake(struct leg *l, enum pipeline_gate_state st)
{
    struct runner *rn = l->rn;
    struct wjob *wj = &l->sc->jobs[l->job];
    size_t max = rn->o->jobs ? rn->o->jobs : 1;

    pthread_mutex_lock(&rn->lock);
    /* approved: its steps wait for a place like any leg */
    while (st == PIPELINE_GATE_APPROVED && rn->running >= max && !atomic_load(&rn->cancel) &&
           !atomic_load(&l->cancel))
        pthread_cond_wait(&rn->cond, &rn->lock);
    rn->running++;
    wj->running++;
    pthread_mutex_unlock(&rn->lock);
}

/* Waits at the approval gate of environment cfg before the leg's first step.
 * NONE when it passed; else FAILURE (rejected, timed out) or CANCELLED, with
 * *why. A leg waiting holds no place among the run's `jobs` at once. */
static enum pipeline_conclusion leg_gate(struct leg *l, const struct env_config *cfg, char **why,
                                         int *parked)
{
    struct runner *rn = l->rn;
    const struct env_approval *ap = &cfg->approval;
    struct pipeline_gate want = {0};
    enum pipeline_gate_state st = PIPELINE_GATE_WAITING;
    const struct pipeline_gate_decision *decider = NULL;
    size_t napproved = 0;
    int counted = 0;
    struct pipeline_run *now = NULL;
    char iso[40];

    want.environment = cfg->name;
    want.required = ap->required;
    want.approvers = ap->approvers;
    want.napprovers = ap->napprovers;
    want.allow_self_approval = ap->allow_self_approval;
    want.timeout_ms = ap->timeout_ms;
    if (gate_arrive(l, &want) < 0) {
        *why = xasprintf("environment %s: cannot record the gate", cfg->name);
        st = PIPELINE_GATE_REJECTED;
        goto retake;
    }
    struct buf who = BUF_INIT;
    for (size_t i = 0; i < ap->napprovers; i++)
        buf_addf(&who, "%s%s", i ? ", " : "", ap->approvers[i]);
    time_format_iso(want.waiting_since_ms + want.timeout_ms, iso, sizeof(iso));
    leg_stream(l, 0);
    leg_say(l, &rn->masks, PIPELINE_LOG_OUTPUT,
            "waiting for %d approval%s from %s for environment %s (times out at %s)", ap->required,
            ap->required == 1 ? "" : "s", who.data, cfg->name, iso);
    buf_free(&who);
    st = gate_wait(l, &want, &now, &decider, &napproved, &counted);
    /* leaving the gate: unless the run was parked meanwhile (then the next
     * runner decides again, from the record, where nothing is lost) */
    pthread_mutex_lock(&rn->lock);
    *parked = atomic_load(&rn->parked);
    if (!*parked && counted)
        rn->gated--;
    pthread_mutex_unlock(&rn->lock);
    if (*parked) {
        leg_stream(l, (unsigned)-1);
        pipeline_run_free(now);
        return PIPELINE_CONCLUSION_NONE;
    }
    gate_verdict(l, cfg, &want, st, decider, napproved, why);
    leg_stream(l, (unsigned)-1);
    if (st != PIPELINE_GATE_WAITING) {
        struct upd u = {0};
        u.op = UPD_GATE_END;
        u.rec = l->rec;
        u.gate_state = st;
        u.at = time_now_ms();
        pthread_mutex_lock(&rn->lock);
        (void)runner_record(rn, &u);
        pthread_mutex_unlock(&rn->lock);
    }
retake:
    pipeline_run_free(now);
    gate_retake(l, st);
    if (st == PIPELINE_GATE_APPROVED)
        return PIPELINE_CONCLUSION_NONE;
    return st == PIPELINE_GATE_WAITING ? PIPELINE_CONCLUSION_CANCELLED
                                       : PIPELINE_CONCLUSION_FAILURE;
}

/* The rules of environment env for this leg: its ref must be one deploy_from
 * allows (else it fails before it waits), then its approval gate. NONE: the
 * leg may start. */
enum pipeline_conclusion leg_rules(struct leg *l, const char *env, char **why, int *parked)
{
    struct runner *rn = l->rn;
    struct env_config *cfg = NULL;
    struct sw_err err = {0};
    enum pipeline_conclusion c = PIPELINE_CONCLUSION_NONE;

    if (env_rules_load(rn, env, &cfg, &err) < 0) {
        *why = xasprintf("environment %s: %s", env, err.msg);
        return PIPELINE_CONCLUSION_FAILURE;
    }
    if (!cfg)
        return c;
    if (pipeline_gate_ref_check(&cfg->deploy_from, cfg->name, cfg->file, rn->ref, &err) < 0) {
        *why = xstrdup(err.msg);
        c = PIPELINE_CONCLUSION_FAILURE;
    } else if (cfg->approval.required > 0)
        c = leg_gate(l, cfg, why, parked);
    env_config_free(cfg);
    return c;
}
