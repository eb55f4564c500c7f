/* The job runner: a claimed run of a loaded workflow, run to its end. The
 * main thread schedules (needs as a DAG, matrices expanded into legs, job
 * `if:` evaluated when the needs are done); each leg runs on a thread of its
 * own, at most opts->jobs at once; a ticker thread extends the lease, notices
 * cancel requests and flushes quiet logs. Every change to the run record is
 * a pure update applied under compare-and-swap, made under rn->lock so the
 * record in memory is only ever touched by one thread at a time. A job that
 * calls a reusable workflow has no leg: when it is ready it becomes a scope of
 * the called workflow's jobs, scheduled like the run's own (reusable.c
 * checks what crosses the call). runner_internal.h says which file holds
 * which part; this one sets the run up, waits for its end and concludes it. */
#include "pipeline/pipeline.h"
#include "pipeline/runner_internal.h"
#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

static const char *default_labels[] = {"self-hosted", "linux", NULL, "ubuntu-latest", NULL};

/* The runner's locks, its labels and the run's fields the legs read,
 * before anything runs; the run's own workflow is scopes[0]. */
static void runner_init(struct runner *rn, struct store *st, struct pipeline_run *run,
                        const struct pipeline_workflow *wf, const struct pipeline_runner_opts *o)
{
    struct utsname un;

    rn->st = st;
    rn->run = run;
    rn->wf = wf;
    rn->o = o;
    pthread_mutex_init(&rn->lock, NULL);
    pthread_cond_init(&rn->cond, NULL);
    pthread_mutex_init(&rn->echo_lock, NULL);
    pthread_mutex_init(&rn->mask_lock, NULL);
    pthread_mutex_init(&rn->tick_lock, NULL);
    cond_init_monotonic(&rn->tick_cond);
    snprintf(rn->arch, sizeof(rn->arch), "X64");
    if (uname(&un) == 0 && (strcmp(un.machine, "aarch64") == 0 || strcmp(un.machine, "arm64") == 0))
        snprintf(rn->arch, sizeof(rn->arch), "ARM64");
    else if (uname(&un) == 0 && strcmp(un.machine, "x86_64") != 0)
        snprintf(rn->arch, sizeof(rn->arch), "%.15s", un.machine);
    memcpy(rn->own_labels, default_labels, sizeof(default_labels));
    char *archlabel = rn->arch_label;
    for (size_t i = 0; i < sizeof(rn->arch_label) && (i == 0 || archlabel[i - 1]); i++)
        archlabel[i] =
            (char)((rn->arch[i] >= 'A' && rn->arch[i] <= 'Z') ? rn->arch[i] + 32 : rn->arch[i]);
    archlabel[sizeof(rn->arch_label) - 1] = 0;
    rn->own_labels[2] = archlabel;
    rn->labels = o->labels ? o->labels : rn->own_labels;
    (void)scope_add(rn, wf, NULL, xstrdup(""),
                    xstrdup(run->workflow_file ? run->workflow_file : ""), NULL, 0);

    memcpy(rn->id, run->id, sizeof(rn->id));
    rn->sha = xstrdup(run->sha);
    rn->ref = xstrdup(run->ref ? run->ref : "");
    rn->workflow = xstrdup(run->workflow ? run->workflow : "");
    rn->event = xstrdup(run->event ? run->event : "push");
    rn->actor = xstrdup(run->actor ? run->actor : "");
    rn->heartbeat_ms = run->claim.lease_ms > 0 ? run->claim.lease_ms / 3 : 20000;
    /* a run queued again at its gates (queue.c, apply_recover) resumes */
    rn->resume_n = run->njobs;
    rn->taken = xcalloc(run->njobs ? run->njobs : 1, 1);
    rn->run_dir = path_join(o->work_dir, run->id);
}

/* Every job that has begun waits at a gate: nothing for this runner to do
 * until a person decides, so release the run. 1 when it was parked. Under
 * rn->lock. */
static int runner_park(struct runner *rn)
{
    struct sw_err perr = {0};
    if (pipeline_run_park(rn->st, rn->run, &perr) == 0) {
        atomic_store(&rn->parked, 1);
        return 1;
    }
    rn->park_failed = 1;
    if (perr.code == PIPELINE_ELOST) {
        atomic_store(&rn->lost, 1);
        atomic_store(&rn->cancel, 1);
    } else if (perr.code == PIPELINE_ECANCEL) {
        /* Asked before the ticker's next read (a parked run with a cancel
         * request is claimed to be cancelled, and its gate parks it again
         * within that second): act on it now, saying who asked. */
        runner_read_cancel(rn);
    }
    return 0;
}

/* Schedules until every job is done, the run is parked, or nothing can
 * progress; woken when a leg ends, and at least every 200 ms. */
static void runner_loop(struct runner *rn)
{
    pthread_mutex_lock(&rn->lock);
    while (!runner_schedule(rn)) {
        struct timespec ts;
        if (rn->o->park && rn->gated && rn->running == 0 && !rn->park_failed &&
            !atomic_load(&rn->cancel) && !legs_pending(rn) && runner_park(rn))
            break;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (rn->running == 0) {
            /* nothing runs and nothing more may start: cannot happen with
             * acyclic needs, but never spin */
            int progress = 0;
            for (size_t i = 0; i < rn->nlegs; i++)
                progress |= rn->legs[i]->state == LEG_PENDING;
            progress |= !rn->scopes[0]->done;
            if (!progress)
                break;
        }
        pthread_cond_timedwait(&rn->cond, &rn->lock, &ts);
    }
    pthread_mutex_unlock(&rn->lock);
}

/* Stops the ticker (tick NULL: it never started) and waits for it and for
 * every leg's thread. */
static void runner_join(struct runner *rn, const pthread_t *tick)
{
    pthread_mutex_lock(&rn->tick_lock);
    atomic_store(&rn->stop, 1);
    pthread_cond_signal(&rn->tick_cond);
    pthread_mutex_unlock(&rn->tick_lock);
    if (tick)
        pthread_join(*tick, NULL);
    for (size_t i = 0; i < rn->nlegs; i++)
        if (rn->legs[i]->joinable)
            pthread_join(rn->legs[i]->thread, NULL);
}

/* How the run ended, from its own workflow's jobs, and why (*why, caller
 * frees; NULL for a success). */
static enum pipeline_conclusion runner_conclusion(struct runner *rn, char **why)
{
    const struct pipeline_workflow *wf = rn->wf;
    enum pipeline_conclusion c = PIPELINE_CONCLUSION_SUCCESS;

    for (size_t j = 0; j < wf->n_jobs; j++)
        if (rn->scopes[0]->jobs[j].result == PIPELINE_CONCLUSION_FAILURE) {
            c = PIPELINE_CONCLUSION_FAILURE;
            if (!*why)
                *why = xasprintf("job %s failed", wf->jobs[j].id);
        }
    /* a job its concurrency group cancelled cancels the run, as on GitHub */
    for (size_t j = 0; j < wf->n_jobs && c == PIPELINE_CONCLUSION_SUCCESS; j++)
        if (rn->scopes[0]->jobs[j].result == PIPELINE_CONCLUSION_CANCELLED) {
            c = PIPELINE_CONCLUSION_CANCELLED;
            *why = xasprintf("job %s was cancelled", wf->jobs[j].id);
        }
    if (atomic_load(&rn->cancel)) {
        c = PIPELINE_CONCLUSION_CANCELLED;
        free(*why);
        *why = rn->cancelled_by    ? xasprintf("cancelled by %s", rn->cancelled_by)
               : rn->cancel_reason ? xstrdup(rn->cancel_reason)
                                   : xstrdup("cancelled");
    }
    return c;
}

/* Frees what the runner holds, once every thread has been joined. */
static void runner_free(struct runner *rn)
{
    for (size_t i = 0; i < rn->nlegs; i++) {
        struct leg *l = rn->legs[i];
        pthread_mutex_destroy(&l->wlock);
        free(l->name);
        json_decref(l->matrix);
        json_decref(l->outputs);
        json_decref(l->values);
        for (size_t k = 0; k < l->nsteps; k++)
            free(l->steps[k].name);
        free(l->steps);
        free(l);
    }
    free(rn->legs);
    for (size_t s = 0; s < rn->nscopes; s++)
        scope_free(rn->scopes[s]);
    free(rn->scopes);
    for (size_t i = 0; i < rn->ncalled; i++)
        pipeline_workflow_free(rn->called[i]);
    free(rn->called);
    if (rn->log)
        pipeline_runlog_free(rn->log);
    pipeline_step_list_free(&rn->masks);
    json_decref(rn->base);
    free(rn->run_dir);
    free(rn->cancelled_by);
    free(rn->cancel_reason);
    free(rn->sha);
    free(rn->ref);
    free(rn->workflow);
    free(rn->event);
    free(rn->actor);
    free(rn->repository);
    free(rn->taken);
    pthread_mutex_destroy(&rn->lock);
    pthread_cond_destroy(&rn->cond);
    pthread_mutex_destroy(&rn->echo_lock);
    pthread_mutex_destroy(&rn->mask_lock);
    pthread_mutex_destroy(&rn->tick_lock);
    pthread_cond_destroy(&rn->tick_cond);
}

int pipeline_runner_run(struct store *st, struct pipeline_run *run,
                        const struct pipeline_workflow *wf, const struct pipeline_runner_opts *o,
                        struct sw_err *err)
{
    struct runner rn = {0};
    pthread_t tick;
    int rc = 0, ticking = 0;
    char *why = NULL;

    runner_init(&rn, st, run, wf, o);
    if ((rc = fs_mkdir_p(rn.run_dir, err)) < 0)
        goto fail;
    if ((rc = pipeline_runlog_new(st, run->id, 0, &rn.log, err)) < 0)
        goto fail;
    if ((rc = runner_contexts(&rn, err)) < 0)
        goto fail;
    rn.scopes[0]->base = rn.base;

    if (pthread_create(&tick, NULL, runner_ticker, &rn) == 0)
        ticking = 1;
    runner_loop(&rn);
    runner_join(&rn, ticking ? &tick : NULL);

    if (atomic_load(&rn.parked)) {
        rc = sw_err_set(err, PIPELINE_EPARKED, "run %s waits at its gates (parked)", run->id);
        goto out;
    }
    if (atomic_load(&rn.lost)) {
        rc = sw_err_set(err, PIPELINE_ELOST, "run %s: the claim was lost while it ran", run->id);
        goto out;
    }
    enum pipeline_conclusion c = runner_conclusion(&rn, &why);
    rc = pipeline_run_finish(st, run, c, why, err);
    goto out;
fail:
    if (rc != PIPELINE_ELOST) {
        struct sw_err e2 = {0};
        (void)pipeline_run_finish(st, run, PIPELINE_CONCLUSION_FAILURE, err->msg, &e2);
    }
out:
    runner_free(&rn);
    free(why);
    return rc;
}
