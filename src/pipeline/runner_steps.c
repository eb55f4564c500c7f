/* The steps of a job, or of a composite action, run in order as GitHub's
 * StepsRunner runs them (jr_run_steps): each step's name and if: evaluated
 * against the status so far, what it uses run (a script, a composite action,
 * checkout, artifacts, delivery), continue-on-error applied, its outcome
 * put in the steps context and, for the job's own steps, in the record.
 * Also the pieces of a step's contexts the other step files share. */
#include "pipeline/delivery_internal.h"
#include "pipeline/artifact_internal.h"
#include "pipeline/pipeline.h"
#include "pipeline/runner_internal.h"

#include <stdlib.h>
#include <string.h>

enum pipeline_status jr_status(struct jobrun *jr)
{
    if (atomic_load(&jr->rn->cancel) || atomic_load(&jr->leg->cancel) || jr->timed_out)
        return PIPELINE_STATUS_CANCELLED;
    return jr->status;
}

void runner_env_to_json(const struct pipeline_step_vars *v, json_t *values)
{
    json_t *o = json_object();
    for (size_t i = 0; i < v->n; i++)
        if (utf8_valid(v->v[i].value, 0) && strlen(v->v[i].value) == v->v[i].value_len)
            json_object_set_new(o, v->v[i].name, json_string(v->v[i].value));
    json_object_set_new(values, "env", o);
}

void runner_vars_from_json(struct pipeline_step_vars *v, const json_t *o)
{
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)o, k, x)
    {
        if (json_is_string(x))
            pipeline_step_vars_set(v, k, strlen(k), json_string_value(x), json_string_length(x));
    }
}

/* The environment a scope's steps start from: the job's (workflow, job,
 * GITHUB_ENV) under the calling steps' env. */
void stepscope_env(const struct jobrun *jr, const struct stepscope *sc,
                   struct pipeline_step_vars *env)
{
    for (size_t i = 0; i < jr->env.n; i++)
        pipeline_step_vars_set(env, jr->env.v[i].name, strlen(jr->env.v[i].name),
                               jr->env.v[i].value, jr->env.v[i].value_len);
    for (size_t i = 0; sc && i < sc->env.n; i++)
        pipeline_step_vars_set(env, sc->env.v[i].name, strlen(sc->env.v[i].name),
                               sc->env.v[i].value, sc->env.v[i].value_len);
}

/* values' env context: what the scope's steps start from. */
void stepscope_env_json(const struct jobrun *jr, const struct stepscope *sc, json_t *values)
{
    struct pipeline_step_vars env = PIPELINE_STEP_VARS_INIT;
    stepscope_env(jr, sc, &env);
    runner_env_to_json(&env, values);
    pipeline_step_vars_free(&env);
}

/* A path inside the workspace for a relative one written in the workflow. */
char *runner_inside(const char *base, const char *rel, struct sw_err *err)
{
    if (!rel || !*rel)
        return xstrdup(base);
    if (rel[0] == '/')
        return str_starts_with(rel, base) ? xstrdup(rel) : path_join(base, rel);
    for (const char *p = rel; *p; p = strchr(p, '/') ? strchr(p, '/') + 1 : p + strlen(p))
        if (p[0] == '.' && p[1] == '.' && (p[2] == '/' || p[2] == 0)) {
            sw_err_set(err, SW_EINVAL, "'%s' leaves the workspace", rel);
            return NULL;
        }
    return path_join(base, rel);
}

static enum pipeline_conclusion concl_of(enum pipeline_step_outcome o)
{
    switch (o) {
    case PIPELINE_STEP_SUCCESS:
        return PIPELINE_CONCLUSION_SUCCESS;
    case PIPELINE_STEP_FAILURE:
        return PIPELINE_CONCLUSION_FAILURE;
    case PIPELINE_STEP_CANCELLED:
        return PIPELINE_CONCLUSION_CANCELLED;
    default:
        return PIPELINE_CONCLUSION_SKIPPED;
    }
}

/* The status names GitHub's contexts use (job.status, github.action_status). */
static const char *status_word(enum pipeline_status st)
{
    return st == PIPELINE_STATUS_FAILURE     ? "failure"
           : st == PIPELINE_STATUS_CANCELLED ? "cancelled"
                                             : "success";
}

/* The default name of a step, as GitHub forms it. */
static char *step_default_name(const struct pipeline_step *s)
{
    if (s->uses.raw.s)
        return xasprintf("Run %s", s->uses.raw.s);
    const char *r = s->run.s ? s->run.s : "";
    while (*r == '\n' || *r == ' ')
        r++;
    size_t n = strcspn(r, "\n");
    char *line = xstrndup(r, n);
    char *out = xasprintf("Run %s", line);
    free(line);
    return out;
}

static void artifact_say(void *ctx, enum pipeline_step_log_kind kind, const char *text)
{
    struct jobrun *jr = ctx;
    leg_say(jr->leg, &jr->masks, kind, "%s", text);
}

/* actions/upload-artifact and actions/download-artifact (artifact.c), with
 * the step's with: evaluated. */
static enum pipeline_step_outcome artifact(struct jobrun *jr, const struct pipeline_step *s,
                                           json_t *values, json_t *outputs)
{
    struct sw_err err = {0};
    json_t *with = json_object();
    struct artifact_step a = {jr->rn->st,      jr->rn->id,   jr->job->id,
                              jr->workspace,   jr->temp,     with,
                              &jr->rn->cancel, artifact_say, jr};
    enum pipeline_step_outcome oc = PIPELINE_STEP_FAILURE;

    if (runner_eval_map(&s->with, values, jr_status(jr), jr->workspace, with, &err) < 0)
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "%s", err.msg);
    else if (s->uses.builtin == PIPELINE_BUILTIN_UPLOAD_ARTIFACT)
        oc = artifact_upload_step(&a, outputs);
    else
        oc = artifact_download_step(&a, outputs);
    json_decref(with);
    return oc;
}

/* slipway/deploy, switch, rollback, health-check, scan and watch
 * (delivery.c), with the step's with: evaluated; environments from the
 * runner's project. A step that waits (watch) is bounded as a script is: by
 * the sooner of its timeout-minutes, an enclosing action's and the job's. */
static enum pipeline_step_outcome delivery(struct jobrun *jr, const struct stepscope *sc,
                                           const struct pipeline_step *s, json_t *values,
                                           json_t *outputs)
{
    struct runner *rn = jr->rn;
    struct sw_err err = {0};
    json_t *with = json_object();
    int timed_out = 0, job_bound = 1;
    struct delivery_step d = {rn->st,
                              rn->o->project,
                              jr->workspace,
                              rn->id,
                              rn->sha,
                              rn->ref,
                              rn->actor,
                              s->uses.raw.s,
                              with,
                              &jr->leg->cancel,
                              artifact_say,
                              jr,
                              jr->deadline_mono,
                              &timed_out};
    enum pipeline_step_outcome oc = PIPELINE_STEP_FAILURE;

    if (s->timeout_minutes.s && !s->timeout_minutes.expr && s->timeout_minutes.n > 0) {
        int64_t own = time_mono_ms() + (int64_t)(s->timeout_minutes.n * 60000.0);
        if (!d.deadline_mono || own < d.deadline_mono) {
            d.deadline_mono = own;
            job_bound = 0;
        }
    }
    if (sc->deadline_mono && (!d.deadline_mono || sc->deadline_mono < d.deadline_mono)) {
        d.deadline_mono = sc->deadline_mono;
        job_bound = 0;
    }
    if (runner_eval_map(&s->with, values, jr_status(jr), jr->workspace, with, &err) < 0)
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "with: %s", err.msg);
    else
        oc = delivery_step_run(&d, s->uses.builtin, outputs);
    if (timed_out && job_bound) { /* as runner_script.c says it of a script */
        jr->timed_out = 1;
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR,
                "The job running on runner %s has exceeded the maximum execution time",
                rn->o->runner_name ? rn->o->runner_name : "slipway");
    }
    json_decref(with);
    return oc;
}

/* Whether step s runs: not when it is skipped (unsupported here, said) or
 * its if: is false against the status st so far; a faulty if: is said and
 * fails the step (*oc). */
static int step_if(struct jobrun *jr, const struct stepscope *sc, const struct pipeline_step *s,
                   const char *clean, enum pipeline_status st, enum pipeline_step_outcome *oc,
                   struct sw_err *err)
{
    struct leg *l = jr->leg;
    int run_it = 0;

    if (s->skipped) {
        leg_say(l, &jr->masks, PIPELINE_LOG_WARNING, "skipped: %s",
                s->skip_reason ? s->skip_reason : "not supported here");
        return 0;
    }
    struct pipeline_expr_ctx ctx = {sc->values, jr_status(jr), sc->depth > 0, st, jr->workspace, 0};
    const char *cond = s->if_.s ? s->if_.s : "";
    if (pipeline_expr_condition(cond, strlen(cond), NULL, &ctx, &run_it, NULL, err) < 0) {
        leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "step %s: if: %s", clean, err->msg);
        *oc = PIPELINE_STEP_FAILURE;
        run_it = 0;
    }
    return run_it;
}

/* Runs step s of sc (named clean) by what it uses: a script, a composite
 * action, checkout, artifacts, a delivery step; its outputs into souts. */
static enum pipeline_step_outcome step_uses(struct jobrun *jr, struct stepscope *sc,
                                            const struct pipeline_step *s, const char *clean,
                                            json_t *souts)
{
    struct leg *l = jr->leg;
    json_t *values = sc->values;
    enum pipeline_step_outcome oc;

    /* a run: step writes its own header group; the others get one here */
    if (s->uses.kind != PIPELINE_USES_NONE)
        leg_say(l, &jr->masks, PIPELINE_LOG_GROUP, "%s", clean);
    if (s->uses.builtin == PIPELINE_BUILTIN_CHECKOUT)
        oc = jr_checkout(jr, s, values);
    else if (s->uses.builtin == PIPELINE_BUILTIN_LOCAL_ACTION)
        oc = jr_run_action(jr, sc, s, clean, values, souts); /* ends the group itself */
    else if (s->uses.builtin == PIPELINE_BUILTIN_UPLOAD_ARTIFACT ||
             s->uses.builtin == PIPELINE_BUILTIN_DOWNLOAD_ARTIFACT)
        oc = artifact(jr, s, values, souts);
    else if (s->uses.builtin >= PIPELINE_BUILTIN_SLIPWAY_DEPLOY &&
             s->uses.builtin <= PIPELINE_BUILTIN_SLIPWAY_WATCH)
        oc = delivery(jr, sc, s, values, souts);
    else if (s->uses.kind != PIPELINE_USES_NONE) {
        leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "%s: this runner does not run it yet",
                s->uses.raw.s);
        oc = PIPELINE_STEP_FAILURE;
    } else
        oc = jr_run_step(jr, sc, s, clean, values, souts);
    if (s->uses.kind != PIPELINE_USES_NONE && s->uses.builtin != PIPELINE_BUILTIN_LOCAL_ACTION)
        leg_say(l, &jr->masks, PIPELINE_LOG_ENDGROUP, "%s", "");
    return oc;
}

/* The step's conclusion from its outcome oc: a failure is a success with
 * continue-on-error (a literal, or an expression that gives "true"). */
static enum pipeline_conclusion step_conclusion(struct jobrun *jr, const struct pipeline_step *s,
                                                enum pipeline_step_outcome oc, json_t *values)
{
    enum pipeline_conclusion c = concl_of(oc);
    int coe = s->continue_on_error.s && !s->continue_on_error.expr && s->continue_on_error.b;

    if (s->continue_on_error.expr) {
        char *t = NULL;
        struct sw_err e2 = {0};
        if (runner_eval_text(&s->continue_on_error, values, jr_status(jr), jr->workspace, &t,
                             &e2) == 0)
            coe = strcmp(t, "true") == 0;
        free(t);
    }
    if (c == PIPELINE_CONCLUSION_FAILURE && coe)
        c = PIPELINE_CONCLUSION_SUCCESS;
    return c;
}

/* A step of the job's own ended: kept in the leg for the ticker to record. */
static void step_record(struct jobrun *jr, const char *clean, enum pipeline_step_outcome oc,
                        enum pipeline_conclusion c)
{
    struct leg *l = jr->leg;
    struct runner *rn = jr->rn;

    pthread_mutex_lock(&rn->lock);
    l->steps = xrealloc(l->steps, (l->nsteps + 1) * sizeof(*l->steps));
    l->steps[l->nsteps].name = xstrdup(clean);
    l->steps[l->nsteps].outcome = concl_of(oc);
    l->steps[l->nsteps].conclusion = c;
    l->nsteps++;
    l->steps_dirty = 1;
    pthread_mutex_unlock(&rn->lock);
}

/* Step k of sc: its name, job.status (and github.action_status inside an
 * action) as it sees them, its own log stream for a step of the job's, its
 * if:, its run, and its outcome in the status so far, the steps context
 * and the leg's steps. */
static void step_one(struct jobrun *jr, struct stepscope *sc, size_t k, struct sw_err *err)
{
    const struct pipeline_step *s = &sc->steps[k];
    json_t *values = sc->values;
    char *name = NULL;
    enum pipeline_step_outcome oc = PIPELINE_STEP_SKIPPED;
    json_t *souts = json_object();
    enum pipeline_status st =
        jr_status(jr) == PIPELINE_STATUS_CANCELLED ? PIPELINE_STATUS_CANCELLED : *sc->status;

    if (!s->name.s ||
        runner_eval_text(&s->name, values, jr_status(jr), jr->workspace, &name, err) < 0)
        name = step_default_name(s);
    char *clean = runner_masked_name(&jr->masks, name);
    /* job.status: the job's status so far, as a step sees it */
    json_object_set_new(values, "job", json_pack("{s:s}", "status", status_word(jr_status(jr))));
    if (sc->depth) {
        json_t *gh = json_object_get(values, "github");
        if (json_is_object(gh))
            json_object_set_new(gh, "action_status", json_string(status_word(st)));
    } else {
        leg_stream(jr->leg, (unsigned)(k + 1));
    }
    if (step_if(jr, sc, s, clean, st, &oc, err))
        oc = step_uses(jr, sc, s, clean, souts);
    enum pipeline_conclusion c = step_conclusion(jr, s, oc, values);
    if (c == PIPELINE_CONCLUSION_FAILURE && *sc->status == PIPELINE_STATUS_SUCCESS)
        *sc->status = PIPELINE_STATUS_FAILURE;
    if (s->id.s) {
        json_t *e = json_pack("{s:O, s:s, s:s}", "outputs", souts, "outcome",
                              pipeline_conclusion_name(concl_of(oc)), "conclusion",
                              pipeline_conclusion_name(c));
        json_object_set_new(sc->steps_ctx, s->id.s, e);
    }
    if (!sc->depth)
        step_record(jr, clean, oc, c);
    json_decref(souts);
    free(name);
    free(clean);
}

/* Runs the steps of scope sc in order, as GitHub's StepsRunner does: each
 * step's if: against the status so far (the job's, or inside an action the
 * action's), continue-on-error, the steps context. The job's own steps each
 * get a log stream and an entry in the record; an action's steps write into
 * the calling step's stream. */
void jr_run_steps(struct jobrun *jr, struct stepscope *sc)
{
    struct sw_err err = {0};

    for (size_t k = 0; k < sc->n; k++) {
        if (sc->deadline_mono && time_mono_ms() >= sc->deadline_mono)
            break; /* the action timed out: jr_run_action says so */
        step_one(jr, sc, k, &err);
    }
}
