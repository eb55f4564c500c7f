/*
 * Local actions: an action.yml (or action.yaml) loaded into a validated
 * model, for the runner to run a step's `uses: ./path` (runner_action.c).
 *
 * The one idea: an action file is read exactly as a workflow file is — the
 * same YAML limits, the same scalar and mapping readers (wf_value.c), the
 * same step `uses:` and `shell:` checks (wf_job.c) and the same
 * "FILE:LINE:COL: message" diagnostics, every fault listed, not only the
 * first. The diagnostics are collected in a scratch workflow (the sink
 * wf_diag writes to) and handed over to the action at the end. The schema
 * is GitHub's action schema (actions/runner's action_yaml.json): the root
 * and an input take loose keys (warned about here, ignored as GitHub
 * does); a composite step is a run: step with a required shell, or a uses:
 * step; expressions may name github, inputs, strategy, matrix, steps, job,
 * runner and env (never secrets: an action gets those as inputs).
 */
#include "pipeline/internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NS PIPELINE_EXPR_NO_STATUS

static const char *const n_steps[] = {"github", "inputs", "strategy", "matrix", "steps",
                                      "job",    "runner", "env",      NULL};
static const char *const n_default[] = {"github", "strategy", "matrix", "job", "runner", NULL};

static const struct wf_ctx ctx_steps = {n_steps, NS};
static const struct wf_ctx ctx_if = {n_steps, 0};
static const struct wf_ctx ctx_default = {n_default, NS};

/* Keys GitHub reads at the root of an action; others are loose (ignored). */
static const char *const k_root[] = {"name",   "description", "author", "branding",
                                     "inputs", "outputs",     "runs",   NULL};

/* A mapping with loose keys: the known ones are read by the caller, every
 * other is a warning (GitHub ignores it; a typo would go unnoticed). */
static int loose_keys(struct wf_ld *ld, const struct yaml_node *n, const char *what,
                      const char *const *known)
{
    if (n->kind != YAML_NODE_MAP) {
        wf_error(ld, n, "%s must be a mapping, not %s", what, wf_kind(n));
        return -1;
    }
    for (size_t i = 0; i < n->len; i++) {
        const struct yaml_node *k = n->pairs[i].key;
        size_t j = 0;
        while (known[j] && strcmp(known[j], k->str) != 0)
            j++;
        if (!known[j])
            wf_diag(ld, 1, k->line, k->col, "unexpected key '%s' in %s (ignored, as on GitHub)",
                    k->str, what);
    }
    return 0;
}

static void load_inputs(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_action *a)
{
    static const char *const k_input[] = {"description", "required", "default",
                                          "deprecationMessage", NULL};

    if (!n || yaml_is_null(n))
        return;
    if (n->kind != YAML_NODE_MAP) {
        wf_error(ld, n, "inputs must be a mapping of input names, not %s", wf_kind(n));
        return;
    }
    if (n->len > PIPELINE_WF_MAX_LIST) {
        wf_error(ld, n, "inputs has more than %d entries", PIPELINE_WF_MAX_LIST);
        return;
    }
    a->inputs = xcalloc(n->len + 1, sizeof(*a->inputs));
    for (size_t i = 0; i < n->len; i++) {
        const struct yaml_node *k = n->pairs[i].key, *v = n->pairs[i].value, *req;
        struct pipeline_action_input *in = &a->inputs[a->n_inputs];
        char what[160];

        if (!k->str[0]) {
            wf_error(ld, k, "an empty input name");
            continue;
        }
        in->name = xstrdup(k->str);
        in->line = k->line;
        in->col = k->col;
        a->n_inputs++;
        for (size_t j = 0; j < i; j++)
            if (a->inputs[j].name && strcasecmp(a->inputs[j].name, in->name) == 0)
                wf_error(ld, k, "input '%s' is already defined (line %zu): names ignore case",
                         in->name, a->inputs[j].line);
        if (yaml_is_null(v))
            continue;
        snprintf(what, sizeof(what), "input '%.100s'", in->name);
        if (loose_keys(ld, v, what, k_input))
            continue;
        wf_val(ld, yaml_map_get(v, "description"), WF_TEXT, NULL, &in->description);
        wf_val(ld, yaml_map_get(v, "deprecationMessage"), WF_TEXT, NULL, &in->deprecation_message);
        wf_val(ld, yaml_map_get(v, "default"), WF_TEXT, &ctx_default, &in->def);
        /* GitHub does not enforce required: either; a quoted "true" is common */
        req = yaml_map_get(v, "required");
        if (req && !yaml_is_null(req)) {
            if (req->kind == YAML_NODE_SCALAR &&
                (strcasecmp(req->str, "true") == 0 || strcasecmp(req->str, "false") == 0)) {
                wf_val(ld, req, WF_TEXT, NULL, &in->required);
                in->required.b = strcasecmp(req->str, "true") == 0;
            } else {
                wf_error(ld, req, "required must be true or false, not %s",
                         req->kind == YAML_NODE_SCALAR ? req->str : wf_kind(req));
            }
        }
    }
}

static void load_outputs(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_action *a)
{
    static const char *const k_output[] = {"description", "value", NULL};

    if (!n || yaml_is_null(n))
        return;
    if (n->kind != YAML_NODE_MAP) {
        wf_error(ld, n, "outputs must be a mapping of output names, not %s", wf_kind(n));
        return;
    }
    if (n->len > PIPELINE_WF_MAX_LIST) {
        wf_error(ld, n, "outputs has more than %d entries", PIPELINE_WF_MAX_LIST);
        return;
    }
    a->outputs = xcalloc(n->len + 1, sizeof(*a->outputs));
    for (size_t i = 0; i < n->len; i++) {
        const struct yaml_node *k = n->pairs[i].key, *v = n->pairs[i].value;
        struct pipeline_call_output *o = &a->outputs[a->n_outputs];
        char what[160];

        if (!k->str[0]) {
            wf_error(ld, k, "an empty output name");
            continue;
        }
        o->name = xstrdup(k->str);
        o->line = k->line;
        o->col = k->col;
        a->n_outputs++;
        snprintf(what, sizeof(what), "output '%.100s'", o->name);
        if (yaml_is_null(v) || v->kind != YAML_NODE_MAP) {
            wf_error(ld, v, "%s must be a mapping with value:, not %s", what, wf_kind(v));
            continue;
        }
        if (wf_keys(ld, v, what, k_output))
            continue;
        wf_val(ld, yaml_map_get(v, "description"), WF_TEXT, NULL, &o->description);
        if (!yaml_map_get(v, "value"))
            wf_error(ld, v, "%s of a composite action needs value:", what);
        else
            wf_val(ld, yaml_map_get(v, "value"), WF_TEXT, &ctx_steps, &o->value);
    }
}

static void load_step(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_step *st)
{
    static const char *const k_run[] = {
        "id", "name", "if", "run", "shell", "env", "working-directory", "continue-on-error", NULL};
    static const char *const k_uses[] = {
        "id", "name", "if", "uses", "with", "env", "continue-on-error", NULL};
    static const char *const k_any[] = {"id",
                                        "name",
                                        "if",
                                        "run",
                                        "uses",
                                        "with",
                                        "shell",
                                        "env",
                                        "working-directory",
                                        "continue-on-error",
                                        NULL};
    const struct yaml_node *run = yaml_map_get(n, "run"), *uses = yaml_map_get(n, "uses");
    const struct yaml_node *shell = yaml_map_get(n, "shell");
    const char *const *const keys[3] = {k_run, k_uses, k_any};
    char what[48];

    if (wf_step_head(ld, n, st, keys, &ctx_steps, &ctx_if, what, sizeof(what)) < 0)
        return;
    /* no defaults.run in an action: each run: step says its shell */
    if (run && !uses && (!shell || yaml_is_null(shell)))
        wf_error(ld, n, "%s: a run: step of a composite action needs shell: (bash, sh, python...)",
                 what);
    if (!wf_val(ld, shell, WF_TEXT, NULL, &st->shell) && st->shell.s)
        wf_shell_check(ld, shell, st->shell.s);
    wf_val(ld, yaml_map_get(n, "working-directory"), WF_TEXT, &ctx_steps, &st->working_directory);
    wf_val(ld, yaml_map_get(n, "continue-on-error"), WF_BOOL, &ctx_steps, &st->continue_on_error);
    wf_map(ld, yaml_map_get(n, "env"), "env", &ctx_steps, 1, &st->env);
    wf_map(ld, yaml_map_get(n, "with"), "with", &ctx_steps, 1, &st->with);
    if (uses && !run)
        wf_step_uses(ld, uses, st);
}

static void load_steps(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_action *a)
{
    if (n->kind != YAML_NODE_SEQ) {
        wf_error(ld, n, "runs.steps must be a sequence, not %s", wf_kind(n));
        return;
    }
    if (n->len == 0) {
        wf_error(ld, n, "a composite action needs at least one step");
        return;
    }
    if (n->len > PIPELINE_WF_MAX_STEPS) {
        wf_error(ld, n, "the action has %zu steps, more than %d", n->len, PIPELINE_WF_MAX_STEPS);
        return;
    }
    a->steps = xcalloc(n->len + 1, sizeof(*a->steps));
    for (size_t i = 0; i < n->len; i++) {
        struct pipeline_step *st = &a->steps[a->n_steps++];
        st->index = i;
        load_step(ld, n->items[i], st);
        for (size_t j = 0; st->id.s && j < i; j++)
            if (a->steps[j].id.s && strcmp(a->steps[j].id.s, st->id.s) == 0)
                wf_diag(ld, 0, st->id.line, st->id.col,
                        "step id '%s' is already used by step %zu (line %zu)", st->id.s, j + 1,
                        a->steps[j].id.line);
    }
}

static void load_runs(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_action *a)
{
    static const char *const k_composite[] = {"using", "steps", NULL};
    const struct yaml_node *using = yaml_map_get(n, "using");
    const char *u;

    if (n->kind != YAML_NODE_MAP) {
        wf_error(ld, n, "runs must be a mapping, not %s", wf_kind(n));
        return;
    }
    if (!using) {
        wf_error(ld, n, "runs needs using: (composite)");
        return;
    }
    if (wf_val(ld, using, WF_TEXT, NULL, &a->using))
        return;
    if (!(u = a->using.s) || !*u) {
        wf_error(ld, using, "runs.using must be composite, not %s", u ? "empty" : "null");
        return;
    }
    if (strcmp(u, "composite") != 0) {
        int node = strncasecmp(u, "node", 4) == 0, docker = strcasecmp(u, "docker") == 0;
        if (node || docker)
            wf_error(ld, using,
                     "runs.using: '%s' (a %s action) is not supported: slipway runs composite "
                     "actions (runs.using: composite) only",
                     u, node ? "JavaScript" : "Docker container");
        else
            wf_error(ld, using,
                     "runs.using must be composite, node20 or docker, not '%s' (slipway runs "
                     "composite actions only)",
                     u);
        return;
    }
    if (wf_keys(ld, n, "runs of a composite action", k_composite))
        return;
    if (!yaml_map_get(n, "steps"))
        wf_error(ld, n, "a composite action needs runs.steps");
    else
        load_steps(ld, yaml_map_get(n, "steps"), a);
}

static void load_root(struct wf_ld *ld, const struct yaml_node *root, struct pipeline_action *a)
{
    const struct yaml_node *runs;

    if (loose_keys(ld, root, "an action", k_root))
        return;
    wf_check_tags(ld, root, 0);
    wf_val(ld, yaml_map_get(root, "name"), WF_TEXT, NULL, &a->name);
    wf_val(ld, yaml_map_get(root, "description"), WF_TEXT, NULL, &a->description);
    wf_val(ld, yaml_map_get(root, "author"), WF_TEXT, NULL, &a->author);
    load_inputs(ld, yaml_map_get(root, "inputs"), a);
    load_outputs(ld, yaml_map_get(root, "outputs"), a);
    if (!(runs = yaml_map_get(root, "runs")))
        wf_error(ld, root, "an action needs runs: (using: composite and its steps)");
    else
        load_runs(ld, runs, a);
}

int pipeline_action_parse(const char *data, size_t len, const char *name,
                          const struct pipeline_load_opts *opts, struct pipeline_action **out,
                          struct sw_err *err)
{
    const struct yaml_limits lim = {PIPELINE_WF_MAX_BYTES, 100000, PIPELINE_WF_MAX_DEPTH,
                                    256 * 1024};
    struct pipeline_action *a = xcalloc(1, sizeof(*a));
    struct pipeline_workflow *sink = xcalloc(1, sizeof(*sink));
    struct wf_ld ld = {sink, data, len, NULL, 0, opts ? opts->flags : 0};
    struct yaml_doc *doc = NULL;
    struct sw_err yerr = {0};

    a->file = xstrdup(name);
    sink->file = a->file;
    *out = a;
    if (yaml_doc_parse(data, len, name, &lim, &doc, &yerr) != 0) {
        wf_yaml_failed(&ld, name, &yerr);
    } else {
        wf_index_lines(&ld);
        load_root(&ld, doc->root, a);
    }
    yaml_doc_free(doc);
    free(ld.lines);
    wf_sort_diags(sink->errors, sink->n_errors);
    wf_sort_diags(sink->warnings, sink->n_warnings);
    a->errors = sink->errors;
    a->n_errors = sink->n_errors;
    a->n_errors_dropped = sink->n_errors_dropped;
    a->warnings = sink->warnings;
    a->n_warnings = sink->n_warnings;
    free(sink);
    if (!a->n_errors)
        return 0;
    sw_err_set(err, PIPELINE_ELOAD, "%s", a->errors[0].text);
    if (a->n_errors + a->n_errors_dropped > 1)
        sw_err_prefix(err, "%zu errors, the first", a->n_errors + a->n_errors_dropped);
    return PIPELINE_ELOAD;
}

int pipeline_action_load(const char *dir, const char *name, const struct pipeline_load_opts *opts,
                         struct pipeline_action **out, struct sw_err *err)
{
    static const char *const files[] = {"action.yml", "action.yaml"};
    int rc = SW_ENOTFOUND;

    *out = NULL;
    for (size_t i = 0; i < 2; i++) {
        char *path = path_join(dir, files[i]);
        char *shown = *name ? path_join(name, files[i]) : xstrdup(files[i]);
        char *data = NULL;
        size_t len = 0;
        struct sw_err e = {0};
        rc = file_read_all(path, &data, &len, &e);
        if (rc == 0)
            rc = pipeline_action_parse(data, len, shown, opts, out, err);
        else if (rc != SW_ENOTFOUND)
            sw_err_set(err, rc, "%s: %s", shown, e.msg);
        free(data);
        free(path);
        free(shown);
        if (rc != SW_ENOTFOUND)
            return rc;
    }
    return sw_err_set(err, SW_ENOTFOUND, "%s: no action.yml or action.yaml there",
                      *name ? name : ".");
}

void pipeline_action_free(struct pipeline_action *a)
{
    if (!a)
        return;
    free(a->file);
    wf_val_free(&a->name);
    wf_val_free(&a->description);
    wf_val_free(&a->author);
    wf_val_free(&a->using);
    for (size_t i = 0; i < a->n_inputs; i++) {
        struct pipeline_action_input *in = &a->inputs[i];
        free(in->name);
        wf_val_free(&in->description);
        wf_val_free(&in->required);
        wf_val_free(&in->def);
        wf_val_free(&in->deprecation_message);
    }
    free(a->inputs);
    for (size_t i = 0; i < a->n_outputs; i++) {
        free(a->outputs[i].name);
        wf_val_free(&a->outputs[i].description);
        wf_val_free(&a->outputs[i].value);
    }
    free(a->outputs);
    for (size_t i = 0; i < a->n_steps; i++)
        wf_step_free(&a->steps[i]);
    free(a->steps);
    for (size_t i = 0; i < a->n_errors; i++)
        free(a->errors[i].text);
    free(a->errors);
    for (size_t i = 0; i < a->n_warnings; i++)
        free(a->warnings[i].text);
    free(a->warnings);
    free(a);
}
