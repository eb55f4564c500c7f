/* One leg's thread: a job's run for one matrix combination. Before its
 * steps, its environment (name, url) and concurrency group are evaluated
 * with its contexts, the environment's rules (runner_gate.c) and then the
 * group admit it; its steps run (leg_run); its end is recorded and the
 * scheduler woken. The record says running once the leg may start. */
#include "pipeline/pipeline.h"
#include "pipeline/runner_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A job's `environment:` (name, url) or `concurrency:` value as text, with
 * the leg's contexts. */
static int leg_text(struct leg *l, const struct pipeline_val *v, char **out, struct sw_err *err)
{
    int rc = runner_eval_text(v, l->values, PIPELINE_STATUS_SUCCESS, NULL, out, err);
    if (rc == 0 && !text_valid(*out, 1024, 0)) {
        rc = sw_err_set(err, PIPELINE_EEVAL, "line %zu: '%s' is not a line of at most 1024 bytes",
                        v->line, *out);
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* GitHub's job concurrency: waits while the leg is pending in its group.
 * Returns NONE when it may start, else how it ends (why says so). */
static enum pipeline_conclusion leg_admit(struct leg *l, const char *group, int cip, char **why)
{
    struct runner *rn = l->rn;
    int said = 0;

    for (;;) {
        enum pipeline_job_admit st = PIPELINE_JOB_WAIT;
        struct sw_err err = {0};
        char *reason = NULL;
        if (atomic_load(&rn->cancel))
            return PIPELINE_CONCLUSION_CANCELLED;
        if (pipeline_job_group_enter(rn->st, rn->id, l->rec, group, cip, &st, &reason, &err) < 0) {
            *why = xasprintf("concurrency group %s: %s", group, err.msg);
            return PIPELINE_CONCLUSION_FAILURE;
        }
        if (st == PIPELINE_JOB_GO) {
            free(reason);
            return PIPELINE_CONCLUSION_NONE;
        }
        if (st == PIPELINE_JOB_STOP || atomic_load(&l->cancel)) {
            /* displaced: the group says so (or the record, which the ticker
             * copied into l->cancel, when the displacing write never came) */
            *why = reason ? reason : xstrdup("cancelled");
            return PIPELINE_CONCLUSION_CANCELLED;
        }
        if (!said && reason) {
            /* once: the record and the log say why it waits */
            struct upd u = {0};
            u.op = UPD_WAIT;
            u.rec = l->rec;
            u.reason = reason;
            pthread_mutex_lock(&rn->lock);
            (void)runner_record(rn, &u);
            pthread_mutex_unlock(&rn->lock);
            leg_note(l, PIPELINE_LOG_OUTPUT, reason);
            said = 1;
        }
        free(reason);
        /* poll the group every second; a cancel is seen within 200 ms */
        for (int i = 0; i < 5 && !atomic_load(&rn->cancel) && !atomic_load(&l->cancel); i++) {
            struct timespec ts = {0, 200 * 1000 * 1000};
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        }
    }
}

/* The job's environment (name, url), evaluated when the leg starts, with its
 * matrix and needs, as GitHub does; an empty name is none. NONE, or
 * FAILURE with *why. */
static enum pipeline_conclusion leg_environment(struct leg *l, const struct pipeline_job *job,
                                                char **env_name, char **env_url, char **why)
{
    struct sw_err err = {0};

    if (!job->environment.name.s || job->skipped)
        return PIPELINE_CONCLUSION_NONE;
    if (leg_text(l, &job->environment.name, env_name, &err) < 0 ||
        (job->environment.url.s && leg_text(l, &job->environment.url, env_url, &err) < 0)) {
        *why = xasprintf("job %s: environment: %s", job->id, err.msg);
        return PIPELINE_CONCLUSION_FAILURE;
    }
    if (!**env_name) {
        /* GitHub: an empty name is no environment */
        free(*env_name);
        free(*env_url);
        *env_name = *env_url = NULL;
    }
    return PIPELINE_CONCLUSION_NONE;
}

/* The job's concurrency group (*group, NULL when none), evaluated like its
 * environment, and the leg's admission to it (leg_admit). NONE when the leg
 * may start; else how it ends, with *why. */
static enum pipeline_conclusion leg_concurrency(struct leg *l, const struct pipeline_job *job,
                                                char **group, char **why)
{
    const struct pipeline_val *cv = &job->concurrency.cancel_in_progress;
    enum pipeline_conclusion c = PIPELINE_CONCLUSION_NONE;
    struct sw_err err = {0};
    char *t = NULL;

    if (!job->concurrency.group.s || job->skipped)
        return c;
    if (leg_text(l, &job->concurrency.group, group, &err) < 0 ||
        (cv->s && cv->expr && leg_text(l, cv, &t, &err) < 0)) {
        *why = xasprintf("job %s: concurrency: %s", job->id, err.msg);
        c = PIPELINE_CONCLUSION_FAILURE;
    } else if (!**group) {
        free(*group);
        *group = NULL;
    }
    int cip = cv->s && (cv->expr ? t && strcmp(t, "true") == 0 : cv->b);
    free(t);
    if (*group && c == PIPELINE_CONCLUSION_NONE)
        c = leg_admit(l, *group, cip, why);
    return c;
}

/* The leg has ended with c: the record (its steps, outputs, the
 * environment's url when it changed, why it did not run), the leg's and
 * its job's counts, and the scheduler woken. */
static void leg_end(struct leg *l, enum pipeline_conclusion c, json_t *outputs, const char *end_url,
                    const char *reason)
{
    struct runner *rn = l->rn;
    struct wjob *wj = &l->sc->jobs[l->job];
    struct upd u = {0};

    u.op = UPD_END;
    u.rec = l->rec;
    u.conclusion = c;
    u.outputs = outputs;
    u.at = time_now_ms();
    u.env_url = end_url;
    u.reason = reason;
    pthread_mutex_lock(&rn->lock);
    u.steps = l->steps;
    u.nsteps = l->nsteps;
    l->steps_dirty = 0;
    (void)runner_record(rn, &u);
    l->conclusion = c;
    l->outputs = outputs;
    l->state = LEG_DONE;
    rn->running--;
    wj->running--;
    wj->finished++;
    if (c == PIPELINE_CONCLUSION_FAILURE && wj->fail_fast)
        wj->fail_fast_hit = 1;
    pthread_cond_broadcast(&rn->cond);
    pthread_mutex_unlock(&rn->lock);
}

void *leg_thread(void *arg)
{
    struct leg *l = arg;
    struct runner *rn = l->rn;
    json_t *outputs = NULL;
    enum pipeline_conclusion c;
    struct upd u = {0};
    const struct pipeline_job *job = &l->sc->wf->jobs[l->job];
    char *env_name = NULL, *env_url = NULL, *group = NULL, *why = NULL, *end_url = NULL;

    c = leg_environment(l, job, &env_name, &env_url, &why);
    /* an environment's rules come before its concurrency group: a job
     * waiting for a person holds no place in its group meanwhile */
    if (c == PIPELINE_CONCLUSION_NONE && env_name) {
        int parked = 0;
        c = leg_rules(l, env_name, &why, &parked);
        if (parked) {
            /* the run is parked: this leg stops here, the record as it is */
            free(env_name);
            free(env_url);
            free(why);
            return NULL;
        }
    }
    if (c == PIPELINE_CONCLUSION_NONE)
        c = leg_concurrency(l, job, &group, &why);
    if (why)
        leg_note(l, c == PIPELINE_CONCLUSION_FAILURE ? PIPELINE_LOG_ERROR : PIPELINE_LOG_WARNING,
                 why);
    u.op = UPD_START;
    u.rec = l->rec;
    u.at = time_now_ms();
    u.env_name = env_name;
    u.env_url = env_url;
    pthread_mutex_lock(&rn->lock);
    (void)runner_record(rn, &u);
    pthread_mutex_unlock(&rn->lock);
    int ran = c == PIPELINE_CONCLUSION_NONE;
    if (ran) {
        c = leg_run(l, &outputs);
        /* environment.url may name the steps' outputs: GitHub evaluates it
         * after the steps */
        struct sw_err e2 = {0};
        if (env_name && job->environment.url.expr &&
            leg_text(l, &job->environment.url, &end_url, &e2) == 0 && env_url &&
            !strcmp(end_url, env_url)) {
            free(end_url);
            end_url = NULL;
        }
    } else
        outputs = json_object();
    if (group)
        pipeline_job_group_leave(rn->st, rn->id, l->rec, group);
    leg_end(l, c, outputs, end_url, ran ? NULL : why);
    free(env_name);
    free(env_url);
    free(end_url);
    free(group);
    free(why);
    return NULL;
}
