/* A step's `uses: ./path`: the composite action in the workspace, loaded
 * when the step runs (the job has checked it out by then), its inputs
 * checked as GitHub does, its steps run as a nested step scope (its own
 * inputs, steps context, status and github.action_path) by jr_run_steps one
 * level deeper, and its outputs evaluated at the end. A symbolic link out
 * of the workspace, an action calling itself and too deep a nesting are
 * refused. */
#include "pipeline/pipeline.h"
#include "pipeline/runner_internal.h"

#include <stdlib.h>
#include <string.h>

/* The declared input named like key (names ignore case), or NULL. */
static const struct pipeline_action_input *action_input(const struct pipeline_action *a,
                                                        const char *key)
{
    for (size_t i = 0; i < a->n_inputs; i++)
        if (strcasecmp(a->inputs[i].name, key) == 0)
            return &a->inputs[i];
    return NULL;
}

/* The inputs context of action a called by step s: with: (evaluated in the
 * caller's contexts) over the defaults, with GitHub's warnings for unknown,
 * deprecated and missing required inputs. NULL after logging an error. */
static json_t *action_inputs(struct jobrun *jr, const struct pipeline_action *a,
                             const struct pipeline_step *s, json_t *values)
{
    json_t *with = json_object(), *in = json_object();
    struct sw_err err = {0};
    struct buf unknown = BUF_INIT;
    const char *k;
    json_t *v;

    if (runner_eval_map(&s->with, values, jr_status(jr), jr->workspace, with, &err) < 0) {
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "with: %s", err.msg);
        json_decref(with);
        json_decref(in);
        return NULL;
    }
    json_object_foreach(with, k, v)
    {
        const struct pipeline_action_input *p = action_input(a, k);
        if (!p)
            buf_addf(&unknown, "%s'%s'", unknown.len ? ", " : "", k);
        else if (p->deprecation_message.s)
            leg_say(jr->leg, &jr->masks, PIPELINE_LOG_WARNING,
                    "Input '%s' has been deprecated with message: %s", p->name,
                    p->deprecation_message.s);
        json_object_set(in, p ? p->name : k, v);
    }
    if (unknown.len) {
        struct buf valid = BUF_INIT;
        for (size_t i = 0; i < a->n_inputs; i++)
            buf_addf(&valid, "%s'%s'", i ? ", " : "", a->inputs[i].name);
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_WARNING,
                "Unexpected input(s) %s, valid inputs are [%s]", unknown.data,
                valid.data ? valid.data : "");
        buf_free(&valid);
    }
    for (size_t i = 0; i < a->n_inputs; i++) {
        const struct pipeline_action_input *p = &a->inputs[i];
        char *t = NULL;
        if (json_object_get(in, p->name))
            continue;
        if (p->required.b && !p->def.s)
            leg_say(jr->leg, &jr->masks, PIPELINE_LOG_WARNING,
                    "Input required and not supplied: %s", p->name);
        if (runner_eval_text(&p->def, values, jr_status(jr), jr->workspace, &t, &err) < 0) {
            leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "%s: input '%s': default: %s", a->file,
                    p->name, err.msg);
            free(t);
            json_decref(in);
            in = NULL;
            break;
        }
        json_object_set_new(in, p->name, json_string(utf8_valid(t, 0) ? t : ""));
        free(t);
    }
    buf_free(&unknown);
    json_decref(with);
    return in;
}

/* The chain of actions that led to sc, for a message: "./a → ./b". */
static void action_chain(const struct stepscope *sc, struct buf *b)
{
    if (!sc || !sc->uses)
        return;
    action_chain(sc->up, b);
    buf_addf(b, "%s%s", b->len ? " \u2192 " : "", sc->uses);
}

/* The directory of the action step s uses, in the workspace: *rel its path
 * as written ("x/y", without "./" and trailing slashes), *real the real path,
 * inside the workspace (symbolic links followed). -1 after saying why not;
 * the caller frees both either way. */
static int action_find(struct jobrun *jr, const struct pipeline_step *s, char **rel, char **real)
{
    struct leg *l = jr->leg;
    struct sw_err err = {0};
    const char *uses = s->uses.raw.s;
    char *dir = NULL, *realws = NULL;
    int rc = -1;

    *rel = xstrdup(s->uses.path + 2); /* "./x/y/" -> "x/y" */
    for (size_t n = strlen(*rel); n && (*rel)[n - 1] == '/'; n--)
        (*rel)[n - 1] = 0;
    if (!(dir = runner_inside(jr->workspace, *rel, &err))) {
        leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "uses: %s", err.msg);
        goto out;
    }
    realws = realpath(jr->workspace, NULL);
    *real = realpath(dir, NULL);
    if (!*real || !realws) {
        leg_say(l, &jr->masks, PIPELINE_LOG_ERROR,
                "uses: %s: no directory %s in the workspace: check the repository out first "
                "(actions/checkout) or fix the path",
                uses, **rel ? *rel : ".");
        goto out;
    }
    /* a symbolic link in the repository must not lead the runner outside it */
    if (!(str_starts_with(*real, realws) &&
          ((*real)[strlen(realws)] == '/' || (*real)[strlen(realws)] == 0))) {
        leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "uses: %s: '%s' leads outside the workspace",
                uses, *rel);
        goto out;
    }
    rc = 0;
out:
    free(dir);
    free(realws);
    return rc;
}

/* Loads the action at real (rel as written) called from scope sc, unless it
 * calls itself or nests too deep; its warnings said. NULL after saying why. */
static struct pipeline_action *action_load(struct jobrun *jr, const struct stepscope *sc,
                                           const struct pipeline_step *s, const char *rel,
                                           const char *real)
{
    struct leg *l = jr->leg;
    struct pipeline_action *a = NULL;
    struct pipeline_load_opts lo = {jr->rn->o->unsupported_skip ? PIPELINE_LOAD_SKIP_UNSUPPORTED
                                                                : 0u};
    struct sw_err err = {0};
    struct buf chain = BUF_INIT;
    const char *uses = s->uses.raw.s;
    int rc = -1;

    action_chain(sc, &chain);
    buf_addf(&chain, "%s%s", chain.len ? " \u2192 " : "", uses);
    for (const struct stepscope *up = sc; up; up = up->up)
        if (up->action_dir && strcmp(up->action_dir, real) == 0) {
            leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "uses: %s: the action calls itself (%s)",
                    uses, chain.data);
            goto out;
        }
    if (sc->depth + 1 > PIPELINE_ACTION_MAX_DEPTH) {
        leg_say(l, &jr->masks, PIPELINE_LOG_ERROR,
                "uses: %s: composite actions nest more than %d deep (%s)", uses,
                PIPELINE_ACTION_MAX_DEPTH, chain.data);
        goto out;
    }
    rc = pipeline_action_load(real, rel, &lo, &a, &err);
    if (rc == SW_ENOTFOUND) {
        leg_say(l, &jr->masks, PIPELINE_LOG_ERROR,
                "uses: %s: %s/action.yml not found (nor action.yaml): check the repository out "
                "first (actions/checkout) or fix the path",
                uses, *rel ? rel : ".");
        goto out;
    }
    for (size_t i = 0; a && i < a->n_warnings; i++)
        leg_say(l, &jr->masks, PIPELINE_LOG_WARNING, "%s", a->warnings[i].text);
    if (rc < 0) {
        if (!a || !a->n_errors)
            leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "uses: %s: %s", uses, err.msg);
        for (size_t i = 0; a && i < a->n_errors; i++)
            leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "%s", a->errors[i].text);
        if (a && a->n_errors_dropped)
            leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "%s: %zu more errors", a->file,
                    a->n_errors_dropped);
    }
out:
    buf_free(&chain);
    if (rc < 0) {
        pipeline_action_free(a);
        a = NULL;
    }
    return a;
}

/* The nested scope in that runs a's steps for step s of sc: the calling
 * steps' env (sc's, then s's own, evaluated in senv), a deadline, and the
 * action's contexts: the caller's values with its own inputs, steps and
 * github.action_path (a shallow copy: the caller's stay as they are). */
static void action_scope(struct jobrun *jr, const struct stepscope *sc,
                         const struct pipeline_step *s, const struct pipeline_action *a,
                         const char *real, json_t *inputs, const json_t *senv, json_t *values,
                         struct stepscope *in)
{
    for (size_t i = 0; i < sc->env.n; i++)
        pipeline_step_vars_set(&in->env, sc->env.v[i].name, strlen(sc->env.v[i].name),
                               sc->env.v[i].value, sc->env.v[i].value_len);
    runner_vars_from_json(&in->env, senv);
    in->steps = a->steps;
    in->n = a->n_steps;
    in->depth = sc->depth + 1;
    in->up = sc;
    in->uses = s->uses.raw.s;
    in->action_dir = real;
    /* the calling step's timeout-minutes bounds the action as a whole */
    in->deadline_mono = sc->deadline_mono;
    if (s->timeout_minutes.s && !s->timeout_minutes.expr && s->timeout_minutes.n > 0) {
        int64_t d = time_mono_ms() + (int64_t)(s->timeout_minutes.n * 60000.0);
        if (!in->deadline_mono || d < in->deadline_mono)
            in->deadline_mono = d;
    }
    in->values = json_copy(values);
    json_t *gh = json_copy(json_object_get(values, "github"));
    if (!gh)
        gh = json_object();
    json_object_set_new(gh, "action_path", json_string(real));
    json_object_set_new(in->values, "github", gh);
    json_object_set(in->values, "inputs", inputs);
    in->steps_ctx = json_object();
    json_object_set_new(in->values, "steps", in->steps_ctx);
    stepscope_env_json(jr, in, in->values);
}

/* a's outputs, evaluated at the end over the action's steps (in), into
 * outputs; a fault fails the action (*astatus). */
static void action_outputs(struct jobrun *jr, const struct pipeline_action *a,
                           const struct stepscope *in, json_t *outputs,
                           enum pipeline_status *astatus)
{
    struct sw_err err = {0};

    for (size_t i = 0; i < a->n_outputs; i++) {
        char *t = NULL;
        if (runner_eval_text(&a->outputs[i].value, in->values, jr_status(jr), jr->workspace, &t,
                             &err) < 0) {
            leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "%s: output '%s': %s", a->file,
                    a->outputs[i].name, err.msg);
            *astatus = PIPELINE_STATUS_FAILURE;
        } else if (utf8_valid(t, 0)) {
            json_object_set_new(outputs, a->outputs[i].name, json_string(t));
        }
        free(t);
    }
}

enum pipeline_step_outcome jr_run_action(struct jobrun *jr, struct stepscope *sc,
                                         const struct pipeline_step *s, const char *name,
                                         json_t *values, json_t *outputs)
{
    struct leg *l = jr->leg;
    struct pipeline_action *a = NULL;
    struct stepscope in = {0};
    enum pipeline_status astatus = PIPELINE_STATUS_SUCCESS;
    enum pipeline_step_outcome out = PIPELINE_STEP_FAILURE;
    struct sw_err err = {0};
    json_t *inputs = NULL, *senv = json_object();
    char *rel = NULL, *real = NULL;
    int grouped = 1; /* the caller opened the step's group */

    if (action_find(jr, s, &rel, &real) < 0 || !(a = action_load(jr, sc, s, rel, real)))
        goto out;
    if (!(inputs = action_inputs(jr, a, s, values)))
        goto out;
    /* the step's own env reaches the action's steps, under theirs */
    if (runner_eval_map(&s->env, values, jr_status(jr), jr->workspace, senv, &err) < 0) {
        leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "env: %s", err.msg);
        goto out;
    }
    {
        const char *k;
        json_t *v;
        if (json_object_size(inputs))
            leg_say(l, &jr->masks, PIPELINE_LOG_OUTPUT, "with:");
        json_object_foreach(inputs, k, v)
        {
            leg_say(l, &jr->masks, PIPELINE_LOG_OUTPUT, "  %s: %s", k, json_string_value(v));
        }
    }
    /* as GitHub's log: the action's steps are groups of their own */
    leg_say(l, &jr->masks, PIPELINE_LOG_ENDGROUP, "%s", "");
    grouped = 0;
    in.status = &astatus;
    action_scope(jr, sc, s, a, real, inputs, senv, values, &in);
    jr_run_steps(jr, &in);
    /* what its steps wrote to GITHUB_ENV is the caller's env context now */
    stepscope_env_json(jr, sc, values);
    if (in.deadline_mono && time_mono_ms() >= in.deadline_mono) {
        if (in.deadline_mono != sc->deadline_mono) /* its own, not a caller's */
            leg_say(l, &jr->masks, PIPELINE_LOG_ERROR,
                    "The action '%s' has timed out after %g minutes.", name, s->timeout_minutes.n);
        astatus = PIPELINE_STATUS_FAILURE;
    }
    action_outputs(jr, a, &in, outputs, &astatus);
    out = jr_status(jr) == PIPELINE_STATUS_CANCELLED ? PIPELINE_STEP_CANCELLED
          : astatus == PIPELINE_STATUS_SUCCESS       ? PIPELINE_STEP_SUCCESS
                                                     : PIPELINE_STEP_FAILURE;
out:
    if (grouped)
        leg_say(l, &jr->masks, PIPELINE_LOG_ENDGROUP, "%s", "");
    pipeline_action_free(a);
    pipeline_step_vars_free(&in.env);
    json_decref(in.values);
    json_decref(inputs);
    json_decref(senv);
    free(rel);
    free(real);
    return out;
}
