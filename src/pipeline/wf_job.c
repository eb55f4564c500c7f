/*
 * jobs: — each job and its steps read against GitHub's schema, `uses:`
 * parsed and matched against what slipway runs natively, `needs` resolved
 * and checked for cycles.
 *
 * The one idea: what slipway can run is one table (`supported` below). A
 * `uses:`, `services:` or `container:` outside it is an error naming the
 * table, unless the load asked for `unsupported: skip`; then the step or
 * job is kept, marked skipped with its reason, and a warning says so. The
 * contexts each key's expressions may name are GitHub's (workflow-v1.0.json),
 * one wf_ctx per kind of key.
 */
#include "pipeline/internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NS PIPELINE_EXPR_NO_STATUS
#define NH PIPELINE_EXPR_NO_HASHFILES

static const char *const n_givn[] = {"github", "inputs", "vars", "needs", NULL};
static const char *const n_strat[] = {"github",   "inputs", "vars", "needs",
                                      "strategy", "matrix", NULL};
static const char *const n_strat_s[] = {"github",   "inputs", "vars",    "needs",
                                        "strategy", "matrix", "secrets", NULL};
static const char *const n_defaults[] = {"github",   "inputs", "vars", "needs",
                                         "strategy", "matrix", "env",  NULL};
static const char *const n_runner[] = {"github",  "inputs", "vars", "needs",  "strategy", "matrix",
                                       "secrets", "steps",  "job",  "runner", "env",      NULL};
static const char *const n_runner_ns[] = {"github",   "inputs", "vars",  "needs",
                                          "strategy", "matrix", "steps", "job",
                                          "runner",   "env",    NULL};

static const struct wf_ctx ctx_job_if = {n_givn, NH};
static const struct wf_ctx ctx_strategy = {n_givn, NS | NH};
static const struct wf_ctx ctx_strat = {n_strat, NS | NH};
static const struct wf_ctx ctx_job_env = {n_strat_s, NS | NH};
static const struct wf_ctx ctx_defaults = {n_defaults, NS | NH};
static const struct wf_ctx ctx_outputs = {n_runner, NS | NH};
static const struct wf_ctx ctx_env_url = {n_runner_ns, NS | NH};
static const struct wf_ctx ctx_step = {n_runner, NS};
static const struct wf_ctx ctx_step_if = {n_runner_ns, 0};

/* ---- what slipway runs natively: one table ------------------------------------------- */

static const struct supported {
    const char *name; /* owner/repo of an action, or how a local one is written */
    enum pipeline_builtin builtin;
} supported[] = {
    {"actions/checkout", PIPELINE_BUILTIN_CHECKOUT},
    {"actions/upload-artifact", PIPELINE_BUILTIN_UPLOAD_ARTIFACT},
    {"actions/download-artifact", PIPELINE_BUILTIN_DOWNLOAD_ARTIFACT},
    {"./PATH (a local composite action)", PIPELINE_BUILTIN_LOCAL_ACTION},
    {"./.github/workflows/FILE.yml (a local reusable workflow, as a job)",
     PIPELINE_BUILTIN_LOCAL_WORKFLOW},
    {"slipway/deploy", PIPELINE_BUILTIN_SLIPWAY_DEPLOY},
    {"slipway/switch", PIPELINE_BUILTIN_SLIPWAY_SWITCH},
    {"slipway/rollback", PIPELINE_BUILTIN_SLIPWAY_ROLLBACK},
    {"slipway/health-check", PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK},
    {"slipway/scan", PIPELINE_BUILTIN_SLIPWAY_SCAN},
    {"slipway/watch", PIPELINE_BUILTIN_SLIPWAY_WATCH},
};
#define N_SUPPORTED (sizeof(supported) / sizeof(supported[0]))

static char supported_text[512];
static pthread_once_t supported_once = PTHREAD_ONCE_INIT;

static void build_supported(void)
{
    struct buf b = BUF_INIT;
    buf_adds(&b, "run: steps");
    for (size_t i = 0; i < N_SUPPORTED; i++)
        buf_addf(&b, ", %s", supported[i].name);
    snprintf(supported_text, sizeof(supported_text), "%s", b.data);
    buf_free(&b);
}

const char *pipeline_uses_supported(void)
{
    pthread_once(&supported_once, build_supported);
    return supported_text;
}

/* An action slipway runs itself: owner/repo as the table names it (GitHub's
 * names ignore case). */
static enum pipeline_builtin find_builtin(const char *owner, const char *repo)
{
    for (size_t i = 0; i < N_SUPPORTED; i++) {
        const char *name = supported[i].name, *slash = strchr(name, '/');
        size_t n = strlen(owner);
        if (name[0] != '.' && (size_t)(slash - name) == n && strncasecmp(name, owner, n) == 0 &&
            strcasecmp(slash + 1, repo) == 0)
            return supported[i].builtin;
    }
    return PIPELINE_BUILTIN_NONE;
}

/* Records what cannot run here: an error, or with `unsupported: skip` a
 * warning and the step or job marked skipped with the reason. */
static void unsupported(struct wf_ld *ld, const struct yaml_node *at, int *skipped, char **reason,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void unsupported(struct wf_ld *ld, const struct yaml_node *at, int *skipped, char **reason,
                        const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    if (ld->flags & PIPELINE_LOAD_SKIP_UNSUPPORTED) {
        wf_diag(ld, 1, at->line, at->col, "%s: skipped (unsupported: skip)", b.data);
        *skipped = 1;
        if (!*reason)
            *reason = buf_detach(&b, NULL);
    } else {
        wf_error(ld, at,
                 "%s; slipway runs natively: %s (load with unsupported: skip, or "
                 "--unsupported skip, to skip it)",
                 b.data, pipeline_uses_supported());
    }
    buf_free(&b);
}

/* ---- uses: ----------------------------------------------------------------------------- */

/* "./a/../../b" would leave the repository. */
static int leaves_repo(const char *path)
{
    for (const char *p = path; (p = strstr(p, "..")); p += 2)
        if ((p == path || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
            return 1;
    return 0;
}

/* owner/repo[/path][@ref] into u. 0, or -1 when malformed. */
static int split_repo(const char *s, struct pipeline_uses *u)
{
    const char *at = strchr(s, '@'), *end = at ? at : s + strlen(s);
    const char *slash = memchr(s, '/', (size_t)(end - s)), *slash2;

    if (!slash || slash == s || slash + 1 == end || (at && !at[1]))
        return -1;
    slash2 = memchr(slash + 1, '/', (size_t)(end - slash - 1));
    u->owner = xstrndup(s, (size_t)(slash - s));
    u->repo = xstrndup(slash + 1, (size_t)((slash2 ? slash2 : end) - slash - 1));
    if (slash2)
        u->path = xstrndup(slash2 + 1, (size_t)(end - slash2 - 1));
    if (at)
        u->ref = xstrdup(at + 1);
    return u->repo[0] && (!slash2 || u->path[0]) ? 0 : -1;
}

/* Parses `uses:` of a step (job 0) or a job (job 1) into u; the caller
 * decides what to do when u->builtin is NONE. 0, or -1 after an error. */
static int parse_uses(struct wf_ld *ld, const struct yaml_node *n, int job, struct pipeline_uses *u)
{
    const char *s;
    static const char form_step[] = "OWNER/REPO[/PATH]@REF, ./PATH or docker://IMAGE";
    static const char form_job[] =
        "./.github/workflows/FILE.yml or OWNER/REPO/.github/workflows/FILE.yml@REF";

    if (wf_val(ld, n, WF_TEXT, NULL, &u->raw) || !(s = u->raw.s))
        return -1;
    if (str_starts_with(s, "docker://") && !job) {
        u->kind = PIPELINE_USES_DOCKER;
        u->path = xstrdup(s + 9);
        return 0;
    }
    if (str_starts_with(s, "./")) {
        u->kind = PIPELINE_USES_LOCAL;
        u->path = xstrdup(s);
        if (leaves_repo(s)) {
            wf_error(ld, n, "uses: '%s' leaves the repository", s);
            return -1;
        }
        if (!job) {
            u->builtin = PIPELINE_BUILTIN_LOCAL_ACTION;
            return 0;
        }
        if (!str_starts_with(s, "./.github/workflows/") || strchr(s + 20, '/') ||
            !(str_ends_with(s, ".yml") || str_ends_with(s, ".yaml")) || strchr(s, '@')) {
            wf_error(ld, n, "a job's uses: must be %s, not '%s'", form_job, s);
            return -1;
        }
        u->builtin = PIPELINE_BUILTIN_LOCAL_WORKFLOW;
        return 0;
    }
    u->kind = PIPELINE_USES_REPO;
    if (split_repo(s, u) != 0 ||
        (!u->ref && (job || u->path || strcasecmp(u->owner, "slipway") != 0))) {
        wf_error(ld, n, "uses: must be %s, not '%s'", job ? form_job : form_step, s);
        return -1;
    }
    if (job && (!u->path || !str_starts_with(u->path, ".github/workflows/"))) {
        wf_error(ld, n, "a job's uses: must be %s, not '%s'", form_job, s);
        return -1;
    }
    if (!job && !u->path)
        u->builtin = find_builtin(u->owner, u->repo);
    return 0;
}

static void uses_free(struct pipeline_uses *u)
{
    wf_val_free(&u->raw);
    free(u->owner);
    free(u->repo);
    free(u->path);
    free(u->ref);
}

/* ---- steps ----------------------------------------------------------------------------- */

/* A shell GitHub knows on Linux, or a command with {0} for the script. */
int wf_shell_check(struct wf_ld *ld, const struct yaml_node *n, const char *s)
{
    static const char *const known[] = {"bash", "sh", "python", "pwsh", "powershell", "cmd", NULL};
    for (size_t i = 0; known[i]; i++)
        if (strcmp(s, known[i]) == 0)
            return 0;
    if (strstr(s, "{0}"))
        return 0;
    wf_error(ld, n,
             "shell must be bash, sh, python, pwsh, powershell, cmd or a command with {0} "
             "for the script, not '%s'",
             s);
    return -1;
}

/* pwsh, powershell and cmd load; without a Windows host such a step fails
 * at run time, or is skipped in skip mode. */
static int shell_unsupported(const char *s)
{
    return s && (strcmp(s, "pwsh") == 0 || strcmp(s, "powershell") == 0 || strcmp(s, "cmd") == 0);
}

/* The shell a run: step gets when it names none itself. */
static const char *default_shell(const struct wf_ld *ld, const struct pipeline_job *job)
{
    if (job->defaults.shell.s)
        return job->defaults.shell.expr ? NULL : job->defaults.shell.s;
    return ld->wf->defaults.shell.s;
}

void wf_step_uses(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_step *st)
{
    if (parse_uses(ld, n, 0, &st->uses) || st->uses.builtin != PIPELINE_BUILTIN_NONE)
        return;
    unsupported(ld, n, &st->skipped, &st->skip_reason, "step %zu: uses: '%s' is not supported",
                st->index + 1, st->uses.raw.s);
}

/* What a job's and a composite action's step have alike: its position, its
 * keys (keys[0] for a run: step, [1] for a uses: step, [2] when it is
 * neither or both), one of run:/uses:, id, name, if and run, whose
 * expressions see ctx (if: ctx_if). what (what_len bytes) is set to the
 * step's name in messages. -1 when the keys were refused: nothing else is
 * read. */
int wf_step_head(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_step *st,
                 const char *const *const keys[3], const struct wf_ctx *ctx,
                 const struct wf_ctx *ctx_if, char *what, size_t what_len)
{
    const struct yaml_node *run = yaml_map_get(n, "run"), *uses = yaml_map_get(n, "uses");

    st->line = n->line;
    st->col = n->col;
    snprintf(what, what_len, "step %zu", st->index + 1);
    if (wf_keys(ld, n, what, run && !uses ? keys[0] : uses && !run ? keys[1] : keys[2]))
        return -1;
    if (run && uses)
        wf_error(ld, n, "%s has both run: and uses: (a step does one or the other)", what);
    else if (!run && !uses)
        wf_error(ld, n, "%s needs run: or uses:", what);
    if (!wf_val(ld, yaml_map_get(n, "id"), WF_TEXT, NULL, &st->id) && st->id.s &&
        !wf_ident(st->id.s))
        wf_error(ld, yaml_map_get(n, "id"),
                 "step id '%s': an id starts with a letter or '_' and holds only letters, "
                 "digits, '-' and '_'",
                 st->id.s);
    wf_val(ld, yaml_map_get(n, "name"), WF_TEXT, ctx, &st->name);
    wf_val(ld, yaml_map_get(n, "if"), WF_COND, ctx_if, &st->if_);
    if (!wf_val(ld, run, WF_TEXT, ctx, &st->run) && run && run->kind == YAML_NODE_SCALAR &&
        (!st->run.s || !st->run.s[0]))
        wf_error(ld, run, "%s: run: is empty", what);
    return 0;
}

static void load_step(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_job *job,
                      struct pipeline_step *st)
{
    static const char *const k_run[] = {"id",
                                        "name",
                                        "if",
                                        "run",
                                        "shell",
                                        "env",
                                        "working-directory",
                                        "continue-on-error",
                                        "timeout-minutes",
                                        NULL};
    static const char *const k_uses[] = {
        "id", "name", "if", "uses", "with", "env", "continue-on-error", "timeout-minutes", NULL};
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
                                        "timeout-minutes",
                                        NULL};
    const struct yaml_node *run = yaml_map_get(n, "run"), *uses = yaml_map_get(n, "uses");
    const char *const *const keys[3] = {k_run, k_uses, k_any};
    char what[48];

    if (wf_step_head(ld, n, st, keys, &ctx_step, &ctx_step_if, what, sizeof(what)) < 0)
        return;
    if (!wf_val(ld, yaml_map_get(n, "shell"), WF_TEXT, NULL, &st->shell) && st->shell.s)
        wf_shell_check(ld, yaml_map_get(n, "shell"), st->shell.s);
    wf_val(ld, yaml_map_get(n, "working-directory"), WF_TEXT, &ctx_step, &st->working_directory);
    wf_val(ld, yaml_map_get(n, "continue-on-error"), WF_BOOL, &ctx_step, &st->continue_on_error);
    wf_val(ld, yaml_map_get(n, "timeout-minutes"), WF_NUMBER, &ctx_step, &st->timeout_minutes);
    wf_map(ld, yaml_map_get(n, "env"), "env", &ctx_step, 1, &st->env);
    wf_map(ld, yaml_map_get(n, "with"), "with", &ctx_step, 1, &st->with);
    if (uses && !run)
        wf_step_uses(ld, uses, st);
    /* such a step loads; the runner fails it with one line unless skipping */
    if (run && !uses && (ld->flags & PIPELINE_LOAD_SKIP_UNSUPPORTED) &&
        shell_unsupported(st->shell.s ? st->shell.s : default_shell(ld, job)))
        unsupported(ld, n, &st->skipped, &st->skip_reason,
                    "%s: shell '%s' needs Windows or PowerShell", what,
                    st->shell.s ? st->shell.s : default_shell(ld, job));
}

static void load_steps(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_job *job)
{
    if (!n)
        return;
    if (n->kind != YAML_NODE_SEQ) {
        wf_error(ld, n, "steps must be a sequence, not %s", wf_kind(n));
        return;
    }
    if (n->len > PIPELINE_WF_MAX_STEPS) {
        wf_error(ld, n, "job '%s' has %zu steps, more than %d", job->id, n->len,
                 PIPELINE_WF_MAX_STEPS);
        return;
    }
    job->steps = xcalloc(n->len + 1, sizeof(*job->steps));
    for (size_t i = 0; i < n->len; i++) {
        struct pipeline_step *st = &job->steps[job->n_steps++];
        st->index = i;
        load_step(ld, n->items[i], job, st);
        for (size_t j = 0; st->id.s && j < i; j++)
            if (job->steps[j].id.s && strcmp(job->steps[j].id.s, st->id.s) == 0)
                wf_diag(ld, 0, st->id.line, st->id.col,
                        "step id '%s' is already used by step %zu (line %zu)", st->id.s, j + 1,
                        job->steps[j].id.line);
    }
}

/* ---- jobs ------------------------------------------------------------------------------ */

static void load_runs_on(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_job *job)
{
    static const char *const k_map[] = {"group", "labels", NULL};
    const struct yaml_node *labels = n, *const * items, *one;
    long count;

    if (n->kind == YAML_NODE_MAP) {
        if (wf_keys(ld, n, "runs-on", k_map))
            return;
        wf_val(ld, yaml_map_get(n, "group"), WF_TEXT, &ctx_strat, &job->runs_on_group);
        if (!(labels = yaml_map_get(n, "labels")))
            return;
    }
    if ((count = wf_scalars(ld, labels, "runs-on", &items, &one)) < 0)
        return;
    job->runs_on = xcalloc((size_t)count + 1, sizeof(*job->runs_on));
    for (long i = 0; i < count; i++)
        if (!wf_val(ld, items[i], WF_TEXT, &ctx_strat, &job->runs_on[job->n_runs_on]))
            job->n_runs_on++;
}

static void load_environment(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_job *job)
{
    static const char *const k_env[] = {"name", "url", NULL};

    if (!n || n->kind == YAML_NODE_SCALAR) {
        wf_val(ld, n, WF_TEXT, &ctx_strat, &job->environment.name);
        return;
    }
    if (wf_keys(ld, n, "environment", k_env))
        return;
    if (!yaml_map_get(n, "name"))
        wf_error(ld, n, "environment needs a name");
    wf_val(ld, yaml_map_get(n, "name"), WF_TEXT, &ctx_strat, &job->environment.name);
    wf_val(ld, yaml_map_get(n, "url"), WF_TEXT, &ctx_env_url, &job->environment.url);
}

static void load_strategy(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_job *job)
{
    static const char *const k_strategy[] = {"matrix", "fail-fast", "max-parallel", NULL};
    struct pipeline_strategy *s = &job->strategy;
    const struct yaml_node *m;
    struct sw_err err = {0};
    json_t *legs = NULL;

    if (!n || wf_keys(ld, n, "strategy", k_strategy))
        return;
    s->present = 1;
    wf_val(ld, yaml_map_get(n, "fail-fast"), WF_BOOL, &ctx_strategy, &s->fail_fast);
    if (!s->fail_fast.s)
        s->fail_fast.b = 1;
    wf_val(ld, yaml_map_get(n, "max-parallel"), WF_NUMBER, &ctx_strategy, &s->max_parallel);
    if (!(m = yaml_map_get(n, "matrix")))
        return;
    s->matrix_line = m->line;
    s->matrix_col = m->col;
    if (m->kind == YAML_NODE_SCALAR && !strstr(m->str, "${{")) {
        wf_error(ld, m, "matrix must be a mapping or an expression, not '%s'", m->str);
        return;
    }
    s->matrix = wf_matrix_json(ld, m, &ctx_strategy, &s->matrix_expr, 0);
    if (!s->matrix || s->matrix_expr)
        return;
    /* a matrix known now is expanded now, so its faults are load errors */
    if (pipeline_matrix_expand(s->matrix, &legs, &err) != 0)
        wf_error(ld, m, "%s", err.msg);
    else if (json_array_size(legs) == 0)
        wf_error(ld, m, "the matrix has no combination (an empty matrix, or all excluded)");
    json_decref(legs);
}

/* Loads what both kinds of job have. */
static void load_common(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_job *job)
{
    /* needs: is read once all jobs are known (resolve_needs) */
    wf_val(ld, yaml_map_get(n, "name"), WF_TEXT, &ctx_strat, &job->name);
    wf_val(ld, yaml_map_get(n, "if"), WF_COND, &ctx_job_if, &job->if_);
    load_strategy(ld, yaml_map_get(n, "strategy"), job);
    wf_load_concurrency(ld, yaml_map_get(n, "concurrency"), &ctx_strat, &job->concurrency);
    wf_check_permissions(ld, yaml_map_get(n, "permissions"));
}

static void load_call_job(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_job *job)
{
    static const char *const keys[] = {"name", "uses",        "with",        "secrets",  "needs",
                                       "if",   "permissions", "concurrency", "strategy", NULL};
    const struct yaml_node *uses = yaml_map_get(n, "uses"), *secrets;

    if (wf_keys(ld, n, "a job that calls a workflow", keys))
        return;
    load_common(ld, n, job);
    if (!parse_uses(ld, uses, 1, &job->uses) && job->uses.builtin == PIPELINE_BUILTIN_NONE)
        unsupported(ld, uses, &job->skipped, &job->skip_reason,
                    "job '%s': a reusable workflow of another repository ('%s') is not supported",
                    job->id, job->uses.raw.s);
    wf_map(ld, yaml_map_get(n, "with"), "with", &ctx_strat, 0, &job->with);
    secrets = yaml_map_get(n, "secrets");
    if (secrets && secrets->kind == YAML_NODE_SCALAR && strcmp(secrets->str, "inherit") == 0)
        job->secrets_inherit = 1;
    else if (secrets && secrets->kind == YAML_NODE_SCALAR && !yaml_is_null(secrets))
        wf_error(ld, secrets, "secrets must be inherit or a mapping, not '%s'", secrets->str);
    else
        wf_map(ld, secrets, "secrets", &ctx_job_env, 0, &job->secrets);
}

static void load_step_job(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_job *job)
{
    static const char *const keys[] = {"name",
                                       "needs",
                                       "if",
                                       "runs-on",
                                       "env",
                                       "environment",
                                       "timeout-minutes",
                                       "cancel-timeout-minutes",
                                       "continue-on-error",
                                       "outputs",
                                       "defaults",
                                       "concurrency",
                                       "strategy",
                                       "permissions",
                                       "steps",
                                       "services",
                                       "container",
                                       NULL};
    const struct yaml_node *runs_on = yaml_map_get(n, "runs-on"), *x;
    struct pipeline_val ignored;

    if (wf_keys(ld, n, "a job", keys))
        return;
    load_common(ld, n, job);
    if (!runs_on)
        wf_error(ld, n, "job '%s' needs runs-on", job->id);
    else
        load_runs_on(ld, runs_on, job);
    wf_map(ld, yaml_map_get(n, "env"), "env", &ctx_job_env, 1, &job->env);
    load_environment(ld, yaml_map_get(n, "environment"), job);
    wf_val(ld, yaml_map_get(n, "timeout-minutes"), WF_NUMBER, &ctx_strat, &job->timeout_minutes);
    if (!job->timeout_minutes.s)
        job->timeout_minutes.n = 360;
    wf_val(ld, yaml_map_get(n, "cancel-timeout-minutes"), WF_NUMBER, &ctx_strat, &ignored);
    wf_val_free(&ignored);
    wf_val(ld, yaml_map_get(n, "continue-on-error"), WF_BOOL, &ctx_strat, &job->continue_on_error);
    wf_map(ld, yaml_map_get(n, "outputs"), "outputs", &ctx_outputs, 0, &job->outputs);
    wf_load_defaults(ld, yaml_map_get(n, "defaults"), &ctx_defaults, &job->defaults);
    if ((x = yaml_map_get(n, "services"))) {
        job->has_services = 1;
        unsupported(ld, yaml_map_find(n, "services")->key, &job->skipped, &job->skip_reason,
                    "job '%s': services: (containers) is not supported, no Docker here", job->id);
    }
    if ((x = yaml_map_get(n, "container"))) {
        job->has_container = 1;
        unsupported(ld, yaml_map_find(n, "container")->key, &job->skipped, &job->skip_reason,
                    "job '%s': container: is not supported, steps run on the host", job->id);
    }
    load_steps(ld, yaml_map_get(n, "steps"), job);
}

static void load_job(struct wf_ld *ld, const struct yaml_pair *p, struct pipeline_job *job)
{
    job->id = xstrdup(p->key->str);
    job->line = p->key->line;
    job->col = p->key->col;
    job->strategy.fail_fast.b = 1;
    job->timeout_minutes.n = 360;
    if (!wf_ident(job->id))
        wf_error(ld, p->key,
                 "job id '%s': an id starts with a letter or '_' and holds only letters, digits, "
                 "'-' and '_'",
                 job->id);
    if (p->value->kind != YAML_NODE_MAP)
        wf_error(ld, p->value, "job '%s' must be a mapping, not %s", job->id, wf_kind(p->value));
    else if (yaml_map_get(p->value, "uses"))
        load_call_job(ld, p->value, job);
    else
        load_step_job(ld, p->value, job);
}

/* ---- needs ------------------------------------------------------------------------------ */

static long job_index(const struct pipeline_workflow *wf, const char *id)
{
    for (size_t i = 0; i < wf->n_jobs; i++)
        if (strcmp(wf->jobs[i].id, id) == 0)
            return (long)i;
    return -1;
}

static void resolve_needs(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_job *job)
{
    const struct yaml_node *const *items, *one;
    long count = n ? wf_scalars(ld, n, "needs", &items, &one) : 0;
    struct pipeline_workflow *wf = ld->wf;

    if (count <= 0)
        return;
    job->needs = xcalloc((size_t)count, sizeof(*job->needs));
    job->needs_index = xcalloc((size_t)count, sizeof(*job->needs_index));
    for (long i = 0; i < count; i++) {
        long k = job_index(wf, items[i]->str);
        if (k < 0) {
            struct buf b = BUF_INIT;
            for (size_t j = 0; j < wf->n_jobs; j++)
                buf_addf(&b, "%s%s", j ? ", " : "", wf->jobs[j].id);
            wf_error(ld, items[i], "job '%s' needs unknown job '%s' (jobs: %s)", job->id,
                     items[i]->str, b.data);
            buf_free(&b);
            continue;
        }
        job->needs[job->n_needs] = xstrdup(items[i]->str);
        job->needs_index[job->n_needs++] = (size_t)k;
    }
}

/* Depth-first search; a job met again while on the path closes a cycle,
 * reported once with its jobs in order. Returns 1 when one was found. */
static int find_cycle(struct wf_ld *ld, const struct yaml_node *jobs, size_t i,
                      unsigned char *color, size_t *path, size_t depth)
{
    const struct pipeline_workflow *wf = ld->wf;
    const struct pipeline_job *job = &wf->jobs[i];

    color[i] = 1;
    path[depth] = i;
    for (size_t k = 0; k < job->n_needs; k++) {
        size_t j = job->needs_index[k], from = 0;
        if (color[j] == 1) {
            struct buf b = BUF_INIT;
            while (path[from] != j)
                from++;
            for (size_t d = from; d <= depth; d++)
                buf_addf(&b, "%s \u2192 ", wf->jobs[path[d]].id);
            buf_adds(&b, wf->jobs[j].id);
            const struct yaml_node *at = yaml_map_get(jobs->pairs[j].value, "needs");
            wf_error(ld, at ? at : jobs->pairs[j].key, "cyclic needs: %s", b.data);
            buf_free(&b);
            return 1;
        }
        if (color[j] == 0 && find_cycle(ld, jobs, j, color, path, depth + 1))
            return 1;
    }
    color[i] = 2;
    return 0;
}

static void check_cycles(struct wf_ld *ld, const struct yaml_node *jobs)
{
    size_t n = ld->wf->n_jobs;
    unsigned char *color = xcalloc(n + 1, 1);
    size_t *path = xcalloc(n + 1, sizeof(*path));

    for (size_t i = 0; i < n; i++) {
        if (color[i] || !find_cycle(ld, jobs, i, color, path, 0))
            continue;
        /* the jobs still on the path are done with: report each cycle once */
        for (size_t j = 0; j < n; j++)
            if (color[j] == 1)
                color[j] = 2;
    }
    free(color);
    free(path);
}

void wf_load_jobs(struct wf_ld *ld, const struct yaml_node *jobs)
{
    struct pipeline_workflow *wf = ld->wf;

    if (jobs->kind != YAML_NODE_MAP || jobs->len == 0) {
        wf_error(ld, jobs, "jobs must be a mapping of at least one job, not %s",
                 jobs->kind == YAML_NODE_MAP ? "an empty one" : wf_kind(jobs));
        return;
    }
    if (jobs->len > PIPELINE_WF_MAX_JOBS) {
        wf_error(ld, jobs, "%zu jobs, more than %d", jobs->len, PIPELINE_WF_MAX_JOBS);
        return;
    }
    wf->jobs = xcalloc(jobs->len, sizeof(*wf->jobs));
    for (size_t i = 0; i < jobs->len; i++)
        load_job(ld, &jobs->pairs[i], &wf->jobs[wf->n_jobs++]);
    for (size_t i = 0; i < jobs->len; i++)
        if (jobs->pairs[i].value->kind == YAML_NODE_MAP)
            resolve_needs(ld, yaml_map_get(jobs->pairs[i].value, "needs"), &wf->jobs[i]);
    check_cycles(ld, jobs);
}

/* ---- freeing ------------------------------------------------------------------------------ */

void wf_step_free(struct pipeline_step *st)
{
    struct pipeline_val *vals[] = {&st->id,
                                   &st->name,
                                   &st->if_,
                                   &st->run,
                                   &st->shell,
                                   &st->working_directory,
                                   &st->continue_on_error,
                                   &st->timeout_minutes};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        wf_val_free(vals[i]);
    wf_map_free(&st->env);
    wf_map_free(&st->with);
    uses_free(&st->uses);
    free(st->skip_reason);
}

void wf_job_free(struct pipeline_job *job)
{
    struct pipeline_val *vals[] = {&job->name,
                                   &job->if_,
                                   &job->runs_on_group,
                                   &job->environment.name,
                                   &job->environment.url,
                                   &job->timeout_minutes,
                                   &job->continue_on_error,
                                   &job->defaults.shell,
                                   &job->defaults.working_directory,
                                   &job->concurrency.group,
                                   &job->concurrency.cancel_in_progress,
                                   &job->strategy.fail_fast,
                                   &job->strategy.max_parallel};
    free(job->id);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        wf_val_free(vals[i]);
    for (size_t i = 0; i < job->n_needs; i++)
        free(job->needs[i]);
    free(job->needs);
    free(job->needs_index);
    for (size_t i = 0; i < job->n_runs_on; i++)
        wf_val_free(&job->runs_on[i]);
    free(job->runs_on);
    wf_map_free(&job->env);
    wf_map_free(&job->outputs);
    wf_map_free(&job->with);
    wf_map_free(&job->secrets);
    json_decref(job->strategy.matrix);
    for (size_t i = 0; i < job->n_steps; i++)
        wf_step_free(&job->steps[i]);
    free(job->steps);
    uses_free(&job->uses);
    free(job->skip_reason);
}
