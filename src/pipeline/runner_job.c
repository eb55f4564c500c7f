/* A leg's job, once it may start: its directory (workspace and temp), its
 * runs-on labels matched against the runner's, the workflow's and job's env,
 * its steps (jr_run_steps), its outputs (those holding a secret dropped, as
 * on GitHub), its conclusion, and the processes its steps left behind
 * stopped. */
#include "pipeline/pipeline.h"
#include "pipeline/runner_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLEANUP_GRACE_MS 2000

/* Whether the runner's labels cover every label of runs-on; else the message. */
static int labels_match(struct jobrun *jr, const json_t *values, struct buf *asked)
{
    const struct pipeline_job *job = jr->job;
    const char *const *have = jr->rn->labels;
    int ok = 1;

    for (size_t i = 0; i < job->n_runs_on; i++) {
        json_t *v = NULL;
        struct sw_err err = {0};
        if (job->runs_on[i].expr) {
            if (runner_eval_json(job->runs_on[i].s, values, &v, &err) < 0)
                v = json_string("");
        } else
            v = json_string(job->runs_on[i].s ? job->runs_on[i].s : "");
        json_t *arr = json_is_array(v) ? v : NULL;
        size_t n = arr ? json_array_size(arr) : 1;
        for (size_t k = 0; k < n; k++) {
            json_t *x = arr ? json_array_get(arr, k) : v;
            struct buf t = BUF_INIT;
            runner_json_text(&t, x);
            buf_add(&t, "", 0);
            int found = 0;
            for (size_t h = 0; have[h]; h++)
                found |= strcasecmp(have[h], t.data) == 0;
            ok &= found;
            buf_addf(asked, "%s%s", asked->len ? ", " : "", t.data);
            buf_free(&t);
        }
        json_decref(v);
    }
    return ok;
}

/* 1 when the runner's labels cover runs-on; else 0 after saying so. */
static int labels_check(struct jobrun *jr, const json_t *values)
{
    struct runner *rn = jr->rn;
    struct buf asked = BUF_INIT;
    int ok = labels_match(jr, values, &asked);

    if (!ok) {
        struct buf have = BUF_INIT;
        for (size_t h = 0; rn->labels[h]; h++)
            buf_addf(&have, "%s%s", h ? ", " : "", rn->labels[h]);
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR,
                "no runner matches the labels of job %s: runs-on [%s]; this runner has [%s]",
                jr->job->id, asked.data ? asked.data : "", have.data ? have.data : "");
        buf_free(&have);
    }
    buf_free(&asked);
    return ok;
}

/* The job's run for leg l: the run's masks so far (the leg's lines are
 * masked with them from now on), the job's status. */
static void jobrun_init(struct jobrun *jr, struct leg *l)
{
    struct runner *rn = l->rn;

    jr->leg = l;
    jr->rn = rn;
    jr->job = &l->sc->wf->jobs[l->job];
    jr->status = PIPELINE_STATUS_SUCCESS;
    pthread_mutex_lock(&rn->mask_lock);
    for (size_t i = 0; i < rn->masks.n; i++)
        pipeline_step_list_add(&jr->masks, rn->masks.v[i], strlen(rn->masks.v[i]));
    atomic_store(&l->masks_seen, rn->masks.n);
    pthread_mutex_unlock(&rn->mask_lock);
}

/* The leg's directories (RUN_DIR/REC/work and temp), the id its processes
 * are tracked by, and its deadline (timeout-minutes, 360 by default). */
static void jobrun_paths(struct jobrun *jr)
{
    const struct pipeline_job *job = jr->job;
    char num[32];

    snprintf(num, sizeof(num), "%zu", jr->leg->rec);
    jr->dir = path_join(jr->rn->run_dir, num);
    jr->workspace = path_join(jr->dir, "work");
    jr->temp = path_join(jr->dir, "temp");
    snprintf(jr->tracking, sizeof(jr->tracking), "%s-%zu", jr->rn->id, jr->leg->rec);
    double minutes =
        job->timeout_minutes.s && !job->timeout_minutes.expr ? job->timeout_minutes.n : 360.0;
    jr->deadline_mono = time_mono_ms() + (int64_t)(minutes * 60000.0);
}

/* The contexts the job's steps start with: env (the workflow's, then the
 * job's, each evaluated where GitHub does), an empty steps context and
 * runner.temp. */
static int jobrun_env(struct jobrun *jr, json_t *values, struct sw_err *err)
{
    json_t *jenv = json_object();
    int rc;

    if ((rc = runner_eval_map(&jr->leg->sc->wf->env, values, PIPELINE_STATUS_SUCCESS, NULL, jenv,
                              err)) < 0)
        goto out;
    runner_vars_from_json(&jr->env, jenv);
    runner_env_to_json(&jr->env, values);
    json_object_clear(jenv);
    if ((rc = runner_eval_map(&jr->job->env, values, PIPELINE_STATUS_SUCCESS, NULL, jenv, err)) < 0)
        goto out;
    runner_vars_from_json(&jr->env, jenv);
    runner_env_to_json(&jr->env, values);
    jr->steps = json_object();
    json_object_set_new(values, "steps", jr->steps);
    /* runner.temp is this leg's RUNNER_TEMP */
    json_t *runner = json_object_get(values, "runner");
    if (json_is_object(runner))
        json_object_set_new(runner, "temp", json_string(jr->temp));
out:
    json_decref(jenv);
    return rc;
}

/* The job's outputs, evaluated once the steps are done, into outputs. */
static void jobrun_outputs(struct jobrun *jr, json_t *values, json_t *outputs)
{
    struct leg *l = jr->leg;
    struct sw_err err = {0};

    if (runner_eval_map(&jr->job->outputs, values, jr_status(jr), jr->workspace, outputs, &err) < 0)
        leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "outputs: %s", err.msg);
    /* as GitHub: an output that holds a secret is dropped, never stored */
    {
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(outputs, tmp, k, v)
        {
            struct buf m = BUF_INIT;
            pipeline_step_mask(&jr->masks, json_string_value(v), json_string_length(v), &m);
            if (m.len != json_string_length(v) ||
                (m.len && memcmp(m.data, json_string_value(v), m.len) != 0)) {
                leg_say(l, &jr->masks, PIPELINE_LOG_WARNING,
                        "Skip output '%s' since it may contain secret.", k);
                json_object_del(outputs, k);
            }
            buf_free(&m);
        }
    }
    {
        /* the record keeps at most PIPELINE_RUN_OUTPUTS_MAX of them: past
         * that the job could not be recorded at all */
        size_t total = 0;
        const char *k;
        json_t *v;
        json_object_foreach(outputs, k, v) total += strlen(k) + json_string_length(v);
        if (total > PIPELINE_RUN_OUTPUTS_MAX) {
            leg_say(l, &jr->masks, PIPELINE_LOG_ERROR,
                    "the job's outputs take %zu bytes, more than the %u a job may have: "
                    "none is kept",
                    total, PIPELINE_RUN_OUTPUTS_MAX);
            json_object_clear(outputs);
            jr->status = PIPELINE_STATUS_FAILURE;
        }
    }
}

/* Stops what the job's steps left running (tracked by jr->tracking). */
static void jobrun_cleanup(struct jobrun *jr)
{
    size_t killed = 0;
    struct sw_err err = {0};

    if (jr->tracking[0] &&
        pipeline_step_cleanup(jr->tracking, CLEANUP_GRACE_MS, &killed, &err) == 0 && killed)
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_OUTPUT,
                "Cleaning up orphan processes: %zu stopped", killed);
}

enum pipeline_conclusion leg_run(struct leg *l, json_t **outputs)
{
    struct runner *rn = l->rn;
    struct jobrun jr = {0};
    struct sw_err err = {0};
    json_t *values = l->values;
    enum pipeline_conclusion c = PIPELINE_CONCLUSION_FAILURE;

    jobrun_init(&jr, l);
    const struct pipeline_job *job = jr.job;
    *outputs = json_object();
    leg_stream(l, 0);
    leg_say(l, &jr.masks, PIPELINE_LOG_OUTPUT, "slipway runner %s: job %s (%s)",
            rn->o->runner_name ? rn->o->runner_name : "slipway", job->id, l->name);
    jobrun_paths(&jr);
    if (fs_mkdir_p(jr.workspace, &err) < 0 || fs_mkdir_p(jr.temp, &err) < 0) {
        leg_say(l, &jr.masks, PIPELINE_LOG_ERROR, "%s", err.msg);
        goto out;
    }
    if (job->skipped) {
        leg_say(l, &jr.masks, PIPELINE_LOG_WARNING, "skipped: %s",
                job->skip_reason ? job->skip_reason : "not supported here");
        c = PIPELINE_CONCLUSION_SKIPPED;
        goto out;
    }
    if (!labels_check(&jr, values))
        goto out;
    if (jobrun_env(&jr, values, &err) < 0) {
        leg_say(l, &jr.masks, PIPELINE_LOG_ERROR, "%s", err.msg);
        goto out;
    }
    {
        struct stepscope top = {0};
        top.steps = job->steps;
        top.n = job->n_steps;
        top.values = values;
        top.steps_ctx = jr.steps;
        top.status = &jr.status;
        jr_run_steps(&jr, &top);
    }
    leg_stream(l, 0);
    jobrun_outputs(&jr, values, *outputs);
    c = jr.timed_out || atomic_load(&rn->cancel) || atomic_load(&l->cancel)
            ? PIPELINE_CONCLUSION_CANCELLED
        : jr.status == PIPELINE_STATUS_SUCCESS ? PIPELINE_CONCLUSION_SUCCESS
                                               : PIPELINE_CONCLUSION_FAILURE;
    if (jr.timed_out)
        c = PIPELINE_CONCLUSION_FAILURE;
out:
    jobrun_cleanup(&jr);
    leg_say(l, &jr.masks, PIPELINE_LOG_OUTPUT, "Job %s: %s", l->name, pipeline_conclusion_name(c));
    leg_stream(l, (unsigned)-1); /* closes */
    pipeline_step_vars_free(&jr.env);
    pipeline_step_list_free(&jr.path);
    pipeline_step_list_free(&jr.masks);
    free(jr.dir);
    free(jr.workspace);
    free(jr.temp);
    return c;
}
