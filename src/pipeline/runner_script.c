/* One `run:` step: its script, shell and working directory evaluated (the
 * step's, else the job's defaults, else the workflow's; never into an
 * action), its env over the scope's, the runner's GITHUB_* and RUNNER_*
 * variables, and a timeout that is the sooner of its own, the job's and an
 * enclosing action's; run by pipeline_step_run (step.c), whose GITHUB_ENV,
 * GITHUB_PATH and masks then hold for the job's next steps. */
#include "pipeline/pipeline.h"
#include "pipeline/runner_internal.h"

#include <stdlib.h>
#include <string.h>

/* A line of the step's output (pipeline_step_run's callback), already
 * masked: into the leg's stream. */
static void step_log(void *ctx, int64_t time_ms, enum pipeline_step_log_kind kind, const char *text,
                     size_t len)
{
    leg_line(ctx, time_ms, kind, text, len);
}

/* GitHub's default variables (GITHUB_*, RUNNER_*) for a step of sc. */
static void runner_env(struct jobrun *jr, const struct stepscope *sc, struct pipeline_step_vars *re)
{
    struct runner *rn = jr->rn;
#define SETV(n, v) pipeline_step_vars_set(re, n, strlen(n), (v), strlen(v))
    SETV("GITHUB_ACTIONS", "true");
    SETV("GITHUB_WORKSPACE", jr->workspace);
    SETV("GITHUB_SHA", rn->sha);
    SETV("GITHUB_REF", rn->ref);
    const char *rn_name = rn->ref;
    SETV("GITHUB_REF_TYPE", str_starts_with(rn_name, "refs/tags/") ? "tag" : "branch");
    if (str_starts_with(rn_name, "refs/heads/"))
        rn_name += 11;
    else if (str_starts_with(rn_name, "refs/tags/"))
        rn_name += 10;
    SETV("GITHUB_REF_NAME", rn_name);
    SETV("GITHUB_REPOSITORY", rn->repository);
    SETV("GITHUB_RUN_ID", rn->id);
    SETV("GITHUB_RUN_NUMBER", "1");
    SETV("GITHUB_RUN_ATTEMPT", "1");
    SETV("GITHUB_JOB", jr->job->id);
    SETV("GITHUB_WORKFLOW", rn->workflow);
    SETV("GITHUB_EVENT_NAME", rn->event);
    SETV("GITHUB_ACTOR", rn->actor);
    char *ev = path_join(rn->run_dir, "event.json");
    SETV("GITHUB_EVENT_PATH", ev);
    free(ev);
    SETV("RUNNER_OS", "Linux");
    SETV("RUNNER_ARCH", rn->arch);
    SETV("RUNNER_NAME", rn->o->runner_name ? rn->o->runner_name : "slipway");
    SETV("RUNNER_TEMP", jr->temp);
    SETV("RUNNER_WORKSPACE", jr->dir);
    SETV("SLIPWAY_RUN_ID", rn->id);
    if (sc && sc->action_dir)
        SETV("GITHUB_ACTION_PATH", sc->action_dir);
#undef SETV
}

/* The step's timeout: the sooner of its timeout-minutes, the job's deadline
 * and an enclosing action's (its step's timeout-minutes). *job_bound: the
 * job's deadline is the one that bounds it (a timeout then ends the job). */
static int64_t step_timeout(const struct jobrun *jr, const struct stepscope *sc,
                            const struct pipeline_step *s, int *job_bound)
{
    int64_t timeout = 0;
    if (s->timeout_minutes.s && !s->timeout_minutes.expr && s->timeout_minutes.n > 0)
        timeout = (int64_t)(s->timeout_minutes.n * 60000.0);
    int64_t left = jr->deadline_mono - time_mono_ms();
    if (left < 1)
        left = 1;
    *job_bound = !timeout || left < timeout;
    if (*job_bound)
        timeout = left;
    if (sc->deadline_mono) { /* inside an action whose step has timeout-minutes */
        int64_t sl = sc->deadline_mono - time_mono_ms();
        if (sl < timeout) {
            timeout = sl < 1 ? 1 : sl;
            *job_bound = 0;
        }
    }
    return timeout;
}

/* What the step leaves: its outputs into outputs; what it wrote to
 * GITHUB_ENV, GITHUB_PATH and add-mask, for the job's next steps. */
static void step_result_take(struct jobrun *jr, const struct pipeline_step_result *r,
                             json_t *outputs)
{
    for (size_t i = 0; i < r->outputs.n; i++)
        if (utf8_valid(r->outputs.v[i].value, 0))
            json_object_set_new(outputs, r->outputs.v[i].name, json_string(r->outputs.v[i].value));
    for (size_t i = 0; i < r->env.n; i++)
        pipeline_step_vars_set(&jr->env, r->env.v[i].name, strlen(r->env.v[i].name),
                               r->env.v[i].value, r->env.v[i].value_len);
    for (size_t i = 0; i < r->path.n; i++)
        pipeline_step_path_prepend(&jr->path, r->path.v[i]);
    for (size_t i = 0; i < r->masks.n; i++)
        pipeline_step_list_add(&jr->masks, r->masks.v[i], strlen(r->masks.v[i]));
}

/* Runs one run: step of scope sc; fills the step's outputs into outputs. */
enum pipeline_step_outcome jr_run_step(struct jobrun *jr, const struct stepscope *sc,
                                       const struct pipeline_step *s, const char *name,
                                       json_t *values, json_t *outputs)
{
    struct runner *rn = jr->rn;
    const struct pipeline_workflow *wf = jr->leg->sc->wf;
    struct pipeline_step_vars env = PIPELINE_STEP_VARS_INIT, re = PIPELINE_STEP_VARS_INIT;
    struct pipeline_step_result r = {0};
    struct pipeline_step_spec sp = {0};
    struct sw_err err = {0};
    char *script = NULL, *shell = NULL, *wd = NULL, *wdabs = NULL;
    json_t *senv = json_object();
    enum pipeline_step_outcome out = PIPELINE_STEP_FAILURE;
    const struct pipeline_val *shv = s->shell.s                  ? &s->shell
                                     : jr->job->defaults.shell.s ? &jr->job->defaults.shell
                                                                 : &wf->defaults.shell;
    const struct pipeline_val *wdv = s->working_directory.s ? &s->working_directory
                                     : jr->job->defaults.working_directory.s
                                         ? &jr->job->defaults.working_directory
                                         : &wf->defaults.working_directory;
    int job_bound;

    if (sc->depth) { /* defaults.run does not reach into an action */
        shv = &s->shell;
        wdv = &s->working_directory;
    }
    stepscope_env(jr, sc, &env);
    if (runner_eval_map(&s->env, values, jr_status(jr), jr->workspace, senv, &err) < 0)
        goto fail;
    runner_vars_from_json(&env, senv);
    runner_env_to_json(&env, values);
    if (runner_eval_text(&s->run, values, jr_status(jr), jr->workspace, &script, &err) < 0 ||
        runner_eval_text(shv, values, jr_status(jr), jr->workspace, &shell, &err) < 0 ||
        runner_eval_text(wdv, values, jr_status(jr), jr->workspace, &wd, &err) < 0)
        goto fail;
    if (!(wdabs = runner_inside(jr->workspace, wd, &err)))
        goto fail;
    runner_env(jr, sc, &re);
    sp.name = name;
    sp.script = script;
    sp.shell = shell;
    sp.working_directory = wdabs;
    sp.temp_dir = jr->temp;
    sp.workspace = jr->workspace;
    sp.env = &env;
    sp.runner_env = &re;
    sp.path = &jr->path;
    sp.masks = &jr->masks;
    sp.tracking_id = jr->tracking;
    sp.orphans = PIPELINE_ORPHANS_JOB;
    sp.timeout_ms = step_timeout(jr, sc, s, &job_bound);
    sp.unsupported_skip = rn->o->unsupported_skip;
    sp.cancel = &jr->leg->cancel;
    sp.log = step_log;
    sp.log_ctx = jr->leg;
    if (pipeline_step_run(&sp, &r, &err) < 0)
        goto fail;
    out = r.outcome;
    if (r.timed_out && job_bound) {
        jr->timed_out = 1;
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR,
                "The job running on runner %s has exceeded the maximum execution time",
                rn->o->runner_name ? rn->o->runner_name : "slipway");
    }
    step_result_take(jr, &r, outputs);
    pipeline_step_result_free(&r);
    goto out;
fail:
    leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "%s", err.msg);
out:
    stepscope_env_json(jr, sc, values);
    pipeline_step_vars_free(&env);
    pipeline_step_vars_free(&re);
    json_decref(senv);
    free(script);
    free(shell);
    free(wd);
    free(wdabs);
    return out;
}
