/* The ticker thread: every tick (200 ms by default) it copies a cancel to
 * every leg, extends the run's lease at a third of it, reads cancel requests
 * (of the run, and of jobs their concurrency group displaced) every second,
 * writes the steps that ended at most once a second, and flushes quiet log
 * streams. It sleeps on rn->tick_cond so that the run's end wakes it. */
#include "pipeline/pipeline.h"
#include "pipeline/runner_internal.h"

#include <errno.h>
#include <time.h>

/* Sleeps a tick, or less when the run ends; returns whether it ended. */
static int ticker_wait(struct runner *rn)
{
    int64_t ms = rn->o->tick_ms ? rn->o->tick_ms : 200;
    struct timespec ts = time_mono_deadline(ms);
    pthread_mutex_lock(&rn->tick_lock);
    while (!atomic_load(&rn->stop) &&
           pthread_cond_timedwait(&rn->tick_cond, &rn->tick_lock, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&rn->tick_lock);
    return atomic_load(&rn->stop);
}

/* Extends the run's lease; a lost claim, or a cancel request the record
 * holds, cancels the run. Under rn->lock. */
static void ticker_heartbeat(struct runner *rn)
{
    struct sw_err err = {0};
    int rc = pipeline_run_heartbeat(rn->st, rn->run, &err);
    if (rc == PIPELINE_ELOST) {
        atomic_store(&rn->lost, 1);
        atomic_store(&rn->cancel, 1);
    } else if (rc == 0 && rn->run->cancel_requested) {
        atomic_store(&rn->cancel, 1);
        if (!rn->run->cancelled_by && rn->run->reason && !rn->cancel_reason)
            rn->cancel_reason = xstrdup(rn->run->reason);
    }
}

void runner_read_cancel(struct runner *rn)
{
    struct pipeline_run *now = NULL;
    struct sw_err err = {0};

    if (pipeline_run_load(rn->st, rn->id, &now, &err) != 0)
        return;
    if (now->cancel_requested || now->status == PIPELINE_RUN_CANCELLED) {
        atomic_store(&rn->cancel, 1);
        if (now->cancelled_by && !rn->cancelled_by)
            rn->cancelled_by = xstrdup(now->cancelled_by);
        if (!now->cancelled_by && now->reason && !rn->cancel_reason)
            rn->cancel_reason = xstrdup(now->reason);
    }
    /* a job its concurrency group asked to stop */
    for (size_t i = 0; i < rn->nlegs; i++)
        if (rn->legs[i]->rec < now->njobs && now->jobs[rn->legs[i]->rec].cancel_requested)
            atomic_store(&rn->legs[i]->cancel, 1);
    pipeline_run_free(now);
}

/* Records the steps that ended since the last time, once *next_steps has
 * come (then a second later). Under rn->lock. */
static void ticker_steps(struct runner *rn, int64_t *next_steps)
{
    for (size_t i = 0; i < rn->nlegs && time_mono_ms() >= *next_steps; i++) {
        struct leg *l = rn->legs[i];
        if (l->state != LEG_RUNNING || !l->steps_dirty)
            continue;
        struct upd u = {0};
        u.op = UPD_STEPS;
        u.rec = l->rec;
        u.steps = l->steps;
        u.nsteps = l->nsteps;
        l->steps_dirty = 0;
        (void)runner_record(rn, &u);
    }
    if (time_mono_ms() >= *next_steps)
        *next_steps = time_mono_ms() + 1000;
}

/* Writes out the log lines a running leg has held long enough. Under rn->lock. */
static void ticker_flush(struct runner *rn)
{
    for (size_t i = 0; i < rn->nlegs; i++) {
        struct leg *l = rn->legs[i];
        if (l->state != LEG_RUNNING)
            continue;
        struct sw_err err = {0};
        pthread_mutex_lock(&l->wlock);
        if (l->w)
            (void)pipeline_runlog_flush_due(l->w, &err);
        pthread_mutex_unlock(&l->wlock);
    }
}

/* Extends the lease, notices cancel requests, flushes quiet logs. */
void *runner_ticker(void *arg)
{
    struct runner *rn = arg;
    int64_t every = rn->heartbeat_ms;
    int64_t next = time_mono_ms() + every, next_read = time_mono_ms() + 1000;
    int64_t next_steps = time_mono_ms() + 1000;

    /* once the run ends, the legs have recorded and flushed what they had:
     * no last round */
    while (!ticker_wait(rn)) {
        if (rn->o->cancel && atomic_load(rn->o->cancel))
            atomic_store(&rn->cancel, 1);
        pthread_mutex_lock(&rn->lock);
        if (atomic_load(&rn->cancel))
            for (size_t i = 0; i < rn->nlegs; i++)
                atomic_store(&rn->legs[i]->cancel, 1);
        if (time_mono_ms() >= next) {
            ticker_heartbeat(rn);
            next = time_mono_ms() + every;
        }
        /* a cancel request is read every second, not only at the heartbeat:
         * reading does not write, and `run cancel` should act at once */
        if (time_mono_ms() >= next_read) {
            runner_read_cancel(rn);
            next_read = time_mono_ms() + 1000;
        }
        ticker_steps(rn, &next_steps);
        ticker_flush(rn);
        pthread_cond_broadcast(&rn->cond);
        pthread_mutex_unlock(&rn->lock);
    }
    return NULL;
}
