/* The runner's changes to the run record. Each is a struct upd, which says
 * what changed, applied by a pure function (upd_apply) under
 * compare-and-swap (pipeline_run_update), and made under rn->lock so the
 * record in memory is only ever touched by one thread at a time. */
#include "pipeline/pipeline.h"
#include "pipeline/runner_internal.h"

#include <stdlib.h>
#include <string.h>

static void run_str_set(char **dst, const char *s)
{
    char *copy = s ? xstrdup(s) : NULL;
    free(*dst);
    *dst = copy;
}

/* The run waits while every job that has begun waits at a gate (and one does). */
static void run_status_set(struct pipeline_run *r)
{
    int running = 0, waiting = 0;
    for (size_t i = 0; i < r->njobs; i++) {
        running |= r->jobs[i].status == PIPELINE_JOB_RUNNING;
        waiting |= r->jobs[i].status == PIPELINE_JOB_WAITING;
    }
    r->status = waiting && !running ? PIPELINE_RUN_WAITING : PIPELINE_RUN_RUNNING;
}

/* The job begins to wait at u->gate: a new gate, or (resuming) the one it
 * waited at already, its start and decisions kept. */
static void gate_enter(struct pipeline_run_job *j, const struct upd *u)
{
    struct pipeline_gate *old = j->gate, *g = pipeline_gate_dup(u->gate);
    int keep = old && old->state == PIPELINE_GATE_WAITING && old->environment &&
               !strcmp(old->environment, g->environment);

    for (size_t i = 0; i < g->ndecisions; i++) {
        free(g->decisions[i].by);
        free(g->decisions[i].os_user);
        free(g->decisions[i].comment);
    }
    free(g->decisions);
    g->decisions = NULL;
    g->ndecisions = 0;
    g->waiting_since_ms = u->at;
    if (keep) {
        g->waiting_since_ms = old->waiting_since_ms;
        g->decisions = old->decisions;
        g->ndecisions = old->ndecisions;
        old->decisions = NULL;
        old->ndecisions = 0;
    }
    g->state = PIPELINE_GATE_WAITING;
    g->decided_ms = 0;
    pipeline_gate_free(old);
    j->gate = g;
    j->status = PIPELINE_JOB_WAITING;
}

/* UPD_ADD: u->n new jobs, queued (or completed at once with u->done), at
 * the end of the record, where the runner expects them (u->rec). */
static int upd_add(struct pipeline_run *r, const struct upd *u, struct sw_err *err)
{
    if (r->njobs != u->rec)
        return sw_err_set(err, SW_EINVAL, "run %s: its jobs changed under the runner", r->id);
    for (size_t i = 0; i < u->n; i++) {
        struct pipeline_run_job *j = pipeline_run_job_add(r);
        if (!j)
            return sw_err_set(err, SW_EINVAL, "run %s: more than %d jobs", r->id,
                              PIPELINE_RUN_MAX_JOBS);
        j->id = xstrdup(u->id);
        j->name = xstrdup(u->names[i]);
        j->matrix = u->matrices && u->matrices[i] ? json_deep_copy(u->matrices[i]) : NULL;
        j->status = PIPELINE_JOB_QUEUED;
        if (u->done != PIPELINE_CONCLUSION_NONE) {
            j->status = PIPELINE_JOB_COMPLETED;
            j->conclusion = u->done;
            j->started_ms = j->ended_ms = u->at;
        }
    }
    return 0;
}

/* UPD_STEPS and UPD_END: the job's steps so far; at the end, its
 * conclusion, outputs, the environment's url and why it did not run. */
static int upd_end(struct pipeline_run *r, struct pipeline_run_job *j, const struct upd *u,
                   struct sw_err *err)
{
    for (size_t k = 0; k < u->nsteps; k++) {
        if (k >= j->nsteps && !pipeline_run_step_add(j, u->steps[k].name))
            return sw_err_set(err, SW_EINVAL, "run %s: too many steps", r->id);
        free(j->steps[k].name);
        j->steps[k].name = xstrdup(u->steps[k].name);
        j->steps[k].outcome = u->steps[k].outcome;
        j->steps[k].conclusion = u->steps[k].conclusion;
    }
    if (u->op == UPD_STEPS)
        return 0;
    if (u->env_url && j->environment_name)
        run_str_set(&j->environment_url, u->env_url);
    if (u->reason)
        run_str_set(&j->reason, u->reason);
    j->status = PIPELINE_JOB_COMPLETED;
    j->conclusion = u->conclusion;
    if (!j->started_ms)
        j->started_ms = u->at;
    j->ended_ms = u->at;
    json_decref(j->outputs);
    j->outputs = u->outputs && json_object_size(u->outputs) ? json_deep_copy(u->outputs) : NULL;
    return 0;
}

static int upd_apply_job(struct pipeline_run *r, const struct upd *u, struct sw_err *err)
{
    if (u->op == UPD_ADD)
        return upd_add(r, u, err);
    if (u->rec >= r->njobs)
        return sw_err_set(err, SW_EINVAL, "run %s: job %zu is gone", r->id, u->rec);
    struct pipeline_run_job *j = &r->jobs[u->rec];
    switch (u->op) {
    case UPD_START:
        j->status = PIPELINE_JOB_RUNNING;
        j->started_ms = u->at;
        run_str_set(&j->environment_name, u->env_name);
        run_str_set(&j->environment_url, u->env_name ? u->env_url : NULL);
        /* it no longer waits; a reason a cancel request left stays */
        if (!j->cancel_requested)
            run_str_set(&j->reason, NULL);
        break;
    case UPD_GATE:
        gate_enter(j, u);
        break;
    case UPD_GATE_END:
        if (j->gate) {
            j->gate->state = u->gate_state;
            j->gate->decided_ms = u->at;
        }
        break;
    case UPD_WAIT:
        /* a cancel request's reason (a newer job displaced this one) wins */
        if (!j->cancel_requested)
            run_str_set(&j->reason, u->reason);
        break;
    case UPD_STEPS:
    case UPD_END:
        return upd_end(r, j, u, err);
    }
    return 0;
}

static int upd_apply(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    int rc = upd_apply_job(r, arg, err);
    if (rc == 0)
        run_status_set(r);
    return rc;
}

/* Applies u to the record; the caller holds rn->lock. A lost claim stops the run. */
int runner_record(struct runner *rn, struct upd *u)
{
    struct sw_err err = {0};
    int rc = pipeline_run_update(rn->st, rn->run, upd_apply, u, &err);
    if (rc == PIPELINE_ELOST) {
        atomic_store(&rn->lost, 1);
        atomic_store(&rn->cancel, 1);
    }
    return rc;
}
