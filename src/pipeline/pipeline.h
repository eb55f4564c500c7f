/*
 * pipeline — GitHub Actions workflows, run natively. This header is the
 * module's whole face:
 *
 *  - expressions: the `${{ }}` language with GitHub's exact semantics (lexer,
 *    parser with GitHub's depth and length limits, evaluator, the functions,
 *    template strings and `if:` conditions);
 *  - filters: the `on.push` patterns of branches, tags and paths;
 *  - workflows: a workflow file loaded into a validated model (the loader),
 *    whether a push triggers it, and matrix expansion.
 *
 * Workflow files are written by others: every limit below holds whatever the
 * input, and nothing here touches the file system except hashFiles(), which
 * reads only regular files inside the workspace it is given.
 *
 * Thread safety: a parsed expression or a compiled filter is immutable and may
 * be evaluated or matched from several threads at once; values are not shared.
 */
#ifndef SW_PIPELINE_H
#define SW_PIPELINE_H

#include "base/base.h"

#include <jansson.h>
#include <stddef.h>

/* Error codes of this module (beside the SW_E* ones). */
enum {
    PIPELINE_ESYNTAX = -101, /* an expression or a pattern does not parse */
    PIPELINE_EEVAL = -102,   /* an expression failed while evaluating */
    PIPELINE_ELOAD = -103,   /* a workflow has errors (listed in the workflow) */
};

/* ---- values ----------------------------------------------------------------- */

enum pipeline_kind {
    PIPELINE_NULL,
    PIPELINE_BOOLEAN,
    PIPELINE_NUMBER,
    PIPELINE_STRING,
    PIPELINE_ARRAY,
    PIPELINE_OBJECT,
};

/* One value of the expression language. Primitives are held inline (numbers
 * are doubles and may be NaN or infinite, which JSON cannot hold); arrays and
 * objects are jansson values the struct holds one reference to. A value owns
 * what it points to: release it with pipeline_value_clear. */
struct pipeline_value {
    enum pipeline_kind kind;
    int boolean;   /* PIPELINE_BOOLEAN: 0 or 1 */
    double number; /* PIPELINE_NUMBER */
    char *str;     /* PIPELINE_STRING: NUL-terminated, may hold NULs (see len) */
    size_t len;
    json_t *json; /* PIPELINE_ARRAY, PIPELINE_OBJECT */
    /* PIPELINE_ARRAY made by a '*' filter (a.*.b): indexing it applies the
     * index to each element, as GitHub does. */
    int filtered;
};
#define PIPELINE_VALUE_INIT                                                                        \
    {                                                                                              \
        PIPELINE_NULL, 0, 0, NULL, 0, NULL, 0                                                      \
    }

/* Frees what v holds and makes it null. Safe on a cleared value. */
void pipeline_value_clear(struct pipeline_value *v);
/* GitHub's name of a kind: "Null", "Boolean", "Number", "String", "Array", "Object". */
const char *pipeline_kind_name(enum pipeline_kind k);
/* v as GitHub turns it into text (format(), join(), string interpolation):
 * null is "", numbers as .NET's G15 ("1.5", "1E+15", "NaN"), arrays "Array",
 * objects "Object". Returns a NUL-terminated string the caller frees. */
char *pipeline_value_to_string(const struct pipeline_value *v, size_t *len);
/* GitHub's truthiness: false, null, 0, NaN and "" are false. */
int pipeline_value_truthy(const struct pipeline_value *v);
/* A new JSON value for v (caller decrefs): arrays and objects are copied,
 * whole numbers become integers, NaN and infinities (not JSON) null, and
 * bytes of a string that are not UTF-8 U+FFFD. */
json_t *pipeline_value_to_json(const struct pipeline_value *v);
/* v as JSON text, as toJSON() writes it: two-space indent, numbers in
 * JavaScript's shortest form, NaN and infinities null, bytes that are not
 * UTF-8 U+FFFD. Returns a NUL-terminated string the caller frees. */
char *pipeline_value_to_json_text(const struct pipeline_value *v, size_t *len);
/* Loads a JSON document as expression data: integers as doubles (as GitHub
 * reads them), strings with NUL allowed, any top-level value. Caller decrefs.
 * Used for contexts and by fromJSON(). */
json_t *pipeline_json_load(const char *s, size_t len, json_error_t *jerr);

/* ---- expressions ------------------------------------------------------------------ */

/* GitHub's bounds: longer expressions are refused, and nesting deeper than
 * MAX_DEPTH (parentheses, '!', index and property steps, function calls)
 * does not parse. */
enum {
    PIPELINE_EXPR_MAX_LENGTH = 21000,
    PIPELINE_EXPR_MAX_DEPTH = 50,
    /* Strings an evaluation may build, counted as GitHub does (two bytes a
     * character, plus 26 a string): past it the evaluation fails. */
    PIPELINE_EXPR_MAX_MEMORY = 1024 * 1024,
};

struct pipeline_expr;

/* What an expression may use. A NULL options pointer allows every name and
 * every function. */
struct pipeline_expr_opts {
    /* The named values (contexts: "github", "env", ...) the expression may
     * name, matched case-insensitively, in a NULL-terminated list; any other
     * name is a syntax error, as on GitHub. NULL allows every name. */
    const char *const *names;
    unsigned flags;
};
/* pipeline_expr_opts flags */
enum {
    PIPELINE_EXPR_NO_STATUS = 1 << 0,    /* success() failure() always() cancelled() refused */
    PIPELINE_EXPR_NO_HASHFILES = 1 << 1, /* hashFiles() refused */
};

/* Parses src[0..len). An empty (or blank) expression parses and evaluates to
 * null. On a syntax error returns PIPELINE_ESYNTAX with GitHub's message and
 * position ("Unexpected symbol: 'b@r'. Located at position 5 within
 * expression: foo.b@r"; positions count characters from 1), and, when err_at
 * is not NULL, the byte offset of the offending token in *err_at (<= len).
 * *out is freed with pipeline_expr_free. */
int pipeline_expr_parse(const char *src, size_t len, const struct pipeline_expr_opts *opts,
                        struct pipeline_expr **out, size_t *err_at, struct sw_err *err);
void pipeline_expr_free(struct pipeline_expr *e);
/* 1 when the expression calls success(), failure(), always() or cancelled()
 * (an `if:` without one gets an implicit success() &&). */
int pipeline_expr_has_status(const struct pipeline_expr *e);

/* A job's or a composite action's status, as the status functions see it. */
enum pipeline_status {
    PIPELINE_STATUS_NONE, /* not known yet: counts as success */
    PIPELINE_STATUS_SUCCESS,
    PIPELINE_STATUS_FAILURE,
    PIPELINE_STATUS_CANCELLED,
    PIPELINE_STATUS_SKIPPED,
};
/* "success", "failure", "cancelled", "skipped" (any case). 0 or SW_EINVAL. */
int pipeline_status_parse(const char *s, enum pipeline_status *out);

/* Everything an evaluation reads besides the expression. Borrowed. */
struct pipeline_expr_ctx {
    /* An object: named value -> its data (e.g. {"github": {...}, "env": {...}}).
     * Names are matched case-insensitively. NULL: no named values. */
    const json_t *values;
    enum pipeline_status job_status;
    /* Inside a composite action's steps, success() and failure() look at the
     * action's status so far instead of the job's (cancelled() still at the
     * job's), as GitHub's runner does. */
    int in_composite;
    enum pipeline_status action_status;
    /* hashFiles() hashes files under this directory only; NULL: hashFiles()
     * fails. */
    const char *workspace;
    size_t max_memory; /* 0: PIPELINE_EXPR_MAX_MEMORY */
};

/* Evaluates e. On success *out holds the result (clear it); on failure
 * returns PIPELINE_EEVAL (or another code) with GitHub's message, e.g. "The
 * following format string is invalid: {0", and *out is null. */
int pipeline_expr_eval(const struct pipeline_expr *e, const struct pipeline_expr_ctx *ctx,
                       struct pipeline_value *out, struct sw_err *err);

/* A string holding `${{ }}` segments (run:, name:, with: values). A string
 * that is exactly one segment, with nothing around it, evaluates to that
 * expression's value, of any kind; otherwise the literal parts and each
 * segment's value as text are joined into a string, as GitHub does (an
 * expression runs from "${{" to the first "}}" outside a quoted string). Errors
 * as pipeline_expr_parse and pipeline_expr_eval; *err_at is the byte offset
 * of the fault in src ("${{" not closed, the offending token, or the start
 * of the expression that failed to evaluate). */
int pipeline_expr_template(const char *src, size_t len, const struct pipeline_expr_opts *opts,
                           const struct pipeline_expr_ctx *ctx, struct pipeline_value *out,
                           size_t *err_at, struct sw_err *err);
/* Checks that every segment of a template parses, without evaluating it. */
int pipeline_expr_template_check(const char *src, size_t len, const struct pipeline_expr_opts *opts,
                                 size_t *err_at, struct sw_err *err);
/* An `if:` condition, written with or without `${{ }}`: blank means
 * success(), and a condition that calls no status function is evaluated as
 * `success() && (condition)`. *result is 1 when the step or job runs. */
int pipeline_expr_condition(const char *src, size_t len, const struct pipeline_expr_opts *opts,
                            const struct pipeline_expr_ctx *ctx, int *result, size_t *err_at,
                            struct sw_err *err);

/* ---- filters ------------------------------------------------------------------------ */

/* The patterns of one `branches`, `branches-ignore`, `tags`, `tags-ignore`,
 * `paths` or `paths-ignore` list, compiled. Pattern language (GitHub's):
 * `*` any characters but '/', `**` any characters, `?` the preceding
 * character or class zero or one time, `+` one or more times, `[abc]`,
 * `[a-z0-9]` one character listed, `\` makes the next character literal, and
 * a leading `!` makes the pattern exclude what earlier ones included. A name
 * matches the list when the last pattern that matches it does not start
 * with `!`. */
struct pipeline_filter;

/* Compiles patterns[0..n). A bad pattern (unclosed '[', a range outside a-z,
 * A-Z, 0-9, a trailing '\', a doubled quantifier, only '!' patterns) is
 * PIPELINE_ESYNTAX naming the pattern and the column. Free with
 * pipeline_filter_free. */
int pipeline_filter_new(const char *const *patterns, size_t n, struct pipeline_filter **out,
                        struct sw_err *err);
void pipeline_filter_free(struct pipeline_filter *f);
/* Checks one pattern alone, as pipeline_filter_new would; on error *err_at
 * (when not NULL) is the byte offset of the fault in pattern. For loaders that
 * report each pattern where it is written. */
int pipeline_filter_check(const char *pattern, size_t *err_at, struct sw_err *err);
/* 1 when the last pattern matching s is an including one, else 0. */
int pipeline_filter_match(const struct pipeline_filter *f, const char *s);
/* Whether a push of the branch or tag name (without refs/heads/ or
 * refs/tags/) passes the list: an include list (branches, tags) passes what
 * it matches, an ignore list (branches-ignore, tags-ignore) what it does not. */
int pipeline_filter_ref(const struct pipeline_filter *f, int ignore, const char *name);
/* Whether a push changing paths[0..n) passes a paths list: an include list
 * passes when at least one path matches, an ignore list when at least one
 * path is not ignored. No path passes neither. */
int pipeline_filter_paths(const struct pipeline_filter *f, int ignore, const char *const *paths,
                          size_t n);

/* ---- workflows ---------------------------------------------------------------------- */

/* A workflow file (GitHub Actions syntax) loaded into a validated model. The
 * loader checks everything it can before anything runs: the keys at every
 * level (GitHub's schema, unknown keys listing the allowed ones), the type of
 * every value, every `${{ }}` against the contexts GitHub allows at that key,
 * every filter pattern, `needs` (unknown jobs, cycles), and what slipway can
 * run natively (`uses:`, `services:`, `container:`; see pipeline_uses_kind).
 * Every error is kept as "FILE:LINE:COL: message", up to
 * PIPELINE_WF_MAX_ERRORS of them, not only the first.
 *
 * Ownership: a workflow owns everything it points to (strings, filters, JSON
 * values) and is freed as a whole by pipeline_workflow_free; nothing in it
 * points into the YAML document or the file's text. A loaded workflow is
 * immutable and may be read from several threads at once. */

/* Bounds on hostile input (GitHub's where it has one). */
enum {
    PIPELINE_WF_MAX_JOBS = 256,
    PIPELINE_WF_MAX_STEPS = 1000,    /* per job */
    PIPELINE_WF_MAX_MATRIX = 256,    /* legs of one matrix, as GitHub */
    PIPELINE_WF_MAX_ERRORS = 100,    /* kept; the rest are counted */
    PIPELINE_WF_MAX_BYTES = 1 << 20, /* a workflow file */
    PIPELINE_WF_MAX_DEPTH = 32,      /* YAML nesting */
    PIPELINE_WF_MAX_LIST = 1000,     /* items of one list or map (labels, env, filters, ...) */
};

/* One scalar of the file, with where it was written. Text-valued keys keep
 * the text; boolean and number keys also keep the parsed value when the text
 * is not an expression. A key that was absent has s == NULL (and b, n at
 * their defaults as documented on the field). */
struct pipeline_val {
    char *s;          /* the text as YAML reads it; NULL when absent */
    size_t line, col; /* position of the value in the file (1-based) */
    int expr;         /* 1: s holds `${{ }}`, evaluated at run time (a template) */
    int quoted;       /* 1: written quoted or as a block ('1', "true", |): text, as GitHub
                       * reads it, never a boolean or a number */
    int b;            /* booleans when !expr: 0 or 1 */
    double n;         /* numbers when !expr */
};

/* A mapping of names to scalars (env, with, outputs, secrets), in file order;
 * a null value (`KEY:` alone) is the empty string.
 * GitHub lets some of them be one expression instead (`env: ${{ fromJSON(x) }}`):
 * then expr.s holds it and n is 0. */
struct pipeline_kv {
    char *key;
    size_t line, col; /* of the key */
    struct pipeline_val val;
};
struct pipeline_map {
    struct pipeline_kv *items;
    size_t n;
    struct pipeline_val expr; /* expr.s != NULL: the whole mapping is this expression */
};
/* The value of key in m (exact match), or NULL. */
const struct pipeline_val *pipeline_map_get(const struct pipeline_map *m, const char *key);

/* `uses:` of a step or a job, parsed. */
enum pipeline_uses_kind {
    PIPELINE_USES_NONE,   /* no uses: (a run: step, or a job with steps) */
    PIPELINE_USES_LOCAL,  /* ./path: a composite action (steps) or a reusable workflow (jobs) */
    PIPELINE_USES_REPO,   /* owner/repo[/path]@ref */
    PIPELINE_USES_DOCKER, /* docker://image */
};
/* What runs a `uses:` natively; PIPELINE_BUILTIN_NONE: slipway cannot run it
 * (a load error, or a skipped step or job under PIPELINE_LOAD_SKIP_UNSUPPORTED). */
enum pipeline_builtin {
    PIPELINE_BUILTIN_NONE,
    PIPELINE_BUILTIN_CHECKOUT,          /* actions/checkout@any */
    PIPELINE_BUILTIN_UPLOAD_ARTIFACT,   /* actions/upload-artifact@any */
    PIPELINE_BUILTIN_DOWNLOAD_ARTIFACT, /* actions/download-artifact@any */
    PIPELINE_BUILTIN_LOCAL_ACTION,      /* step uses: ./path (action.yml, runs.using: composite) */
    PIPELINE_BUILTIN_LOCAL_WORKFLOW,    /* job uses: ./.github/workflows/x.yml */
    PIPELINE_BUILTIN_SLIPWAY_DEPLOY,    /* slipway/deploy[@ref] */
    PIPELINE_BUILTIN_SLIPWAY_SWITCH,
    PIPELINE_BUILTIN_SLIPWAY_ROLLBACK,
    PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK,
    PIPELINE_BUILTIN_SLIPWAY_SCAN,
    PIPELINE_BUILTIN_SLIPWAY_WATCH, /* the last delivery step (runner_steps.c's range) */
};
struct pipeline_uses {
    enum pipeline_uses_kind kind;
    enum pipeline_builtin builtin;
    struct pipeline_val raw; /* as written (raw.s NULL: no uses:) */
    char *owner, *repo;      /* PIPELINE_USES_REPO; NULL otherwise */
    char *path;              /* REPO: the part after owner/repo/ (or NULL); LOCAL: as written
                                ("./x"); DOCKER: the image */
    char *ref;               /* REPO: after '@' (NULL for a slipway/ built-in written without) */
};
/* One line listing what slipway runs natively, for messages and --help:
 * "run: steps, actions/checkout, ..., slipway/scan". Static storage. */
const char *pipeline_uses_supported(void);

/* defaults.run of the workflow or of a job. */
struct pipeline_defaults {
    struct pipeline_val shell, working_directory;
};

/* concurrency: a string is the group; cancel_in_progress.s NULL means false. */
struct pipeline_concurrency {
    struct pipeline_val group, cancel_in_progress;
};

/* strategy: of a job. */
struct pipeline_strategy {
    int present;
    /* The matrix as JSON, NULL when there is none: an object whose keys are
     * the dimensions (arrays) and "include"/"exclude" (arrays of objects), with
     * YAML's plain scalars typed (null, true/false, numbers) and everything
     * else a string; or, for `matrix: ${{ ... }}`, that string. Strings holding
     * `${{ }}` anywhere inside (a dimension, include, a value) are evaluated
     * by the runner (github, needs, vars, inputs) before the matrix is
     * expanded with pipeline_matrix_expand. Owned (one reference). */
    json_t *matrix;
    size_t matrix_line, matrix_col;
    int matrix_expr;                  /* 1: some string in the matrix holds `${{ }}` */
    struct pipeline_val fail_fast;    /* b: default 1 */
    struct pipeline_val max_parallel; /* n: default 0 (no limit) */
};

/* environment: of a job (a name, or {name, url}). */
struct pipeline_environment {
    struct pipeline_val name, url;
};

enum pipeline_input_type {
    PIPELINE_INPUT_STRING, /* also when no type: is given (workflow_dispatch) */
    PIPELINE_INPUT_BOOLEAN,
    PIPELINE_INPUT_NUMBER,
    PIPELINE_INPUT_CHOICE,
    PIPELINE_INPUT_ENVIRONMENT,
};
/* An input of workflow_dispatch or workflow_call. */
struct pipeline_input {
    char *name;
    size_t line, col;
    enum pipeline_input_type type;
    int required;
    struct pipeline_val description;
    struct pipeline_val def; /* default:, typed by type (b, n) when not an expression */
    char **options;          /* choice: the allowed values */
    size_t n_options;
};
/* workflow_call: outputs (value: an expression over jobs) and secrets. */
struct pipeline_call_output {
    char *name;
    size_t line, col;
    struct pipeline_val description, value;
};
struct pipeline_call_secret {
    char *name;
    size_t line, col;
    int required;
};

/* on.push: each filter NULL when absent. A push with no filter list at all
 * triggers on every branch and tag. */
struct pipeline_push {
    int present;
    struct pipeline_filter *branches, *branches_ignore, *tags, *tags_ignore, *paths, *paths_ignore;
};

/* on: every event listed; only push and workflow_dispatch (and workflow_call,
 * from another workflow) start runs in slipway, the others are checked
 * against GitHub's schema and kept for information. */
struct pipeline_on {
    char **events; /* every event name, in file order */
    size_t n_events;
    size_t line, col; /* of on: */
    struct pipeline_push push;
    int dispatch; /* workflow_dispatch present */
    struct pipeline_input *dispatch_inputs;
    size_t n_dispatch_inputs;
    int call; /* workflow_call present */
    struct pipeline_input *call_inputs;
    size_t n_call_inputs;
    struct pipeline_call_output *call_outputs;
    size_t n_call_outputs;
    struct pipeline_call_secret *call_secrets;
    size_t n_call_secrets;
};

/* One step of a job. A step is a run: step (run.s != NULL) or a uses: step
 * (uses.kind != PIPELINE_USES_NONE), never both. */
struct pipeline_step {
    size_t index;     /* 0-based, in the job */
    size_t line, col; /* of the step's mapping */
    struct pipeline_val id, name, if_, run, shell, working_directory;
    struct pipeline_val continue_on_error; /* b: default 0 */
    struct pipeline_val timeout_minutes;   /* n: default 0 (the job's) */
    struct pipeline_map env, with;
    struct pipeline_uses uses;
    /* 1: loaded under PIPELINE_LOAD_SKIP_UNSUPPORTED and not runnable here
     * (an unsupported uses:, or a pwsh/powershell/cmd shell); the runner
     * skips it with skip_reason and its outputs are empty. */
    int skipped;
    char *skip_reason;
};

/* One job. A job runs steps, or calls a reusable workflow (uses.kind !=
 * PIPELINE_USES_NONE: then with, secrets, secrets_inherit apply and steps,
 * runs_on, env... are empty). */
struct pipeline_job {
    char *id;
    size_t line, col; /* of the job's id */
    struct pipeline_val name, if_;
    char **needs;        /* job ids, each a job of this workflow (checked) */
    size_t *needs_index; /* the same jobs as indexes into pipeline_workflow.jobs */
    size_t n_needs;
    /* runs-on: labels, each text or an expression; a single string is one
     * label; `runs-on: ${{ x }}` is one label with expr set (its value may be
     * a string or an array). group: of the {group, labels} form, or NULL. */
    struct pipeline_val *runs_on;
    size_t n_runs_on;
    struct pipeline_val runs_on_group;
    struct pipeline_map env;
    struct pipeline_environment environment;
    struct pipeline_val timeout_minutes;   /* n: default 360 */
    struct pipeline_val continue_on_error; /* b: default 0 */
    struct pipeline_map outputs;
    struct pipeline_defaults defaults;
    struct pipeline_concurrency concurrency;
    struct pipeline_strategy strategy;
    struct pipeline_step *steps;
    size_t n_steps;
    struct pipeline_uses uses; /* a reusable workflow */
    struct pipeline_map with, secrets;
    int secrets_inherit;
    /* services: / container: were given (kept only under skip mode) */
    int has_services, has_container;
    /* 1: loaded under PIPELINE_LOAD_SKIP_UNSUPPORTED with services:,
     * container: or an unsupported reusable workflow; the runner skips the
     * whole job with skip_reason and its outputs are empty. */
    int skipped;
    char *skip_reason;
};

/* A diagnostic: text is "FILE:LINE:COL: message" (one line, may hold any
 * byte of the file: escape it before printing). */
struct pipeline_diag {
    size_t line, col;
    char *text;
};

struct pipeline_workflow {
    char *file; /* the name given to the loader */
    struct pipeline_val name, run_name;
    struct pipeline_on on;
    struct pipeline_map env;
    struct pipeline_defaults defaults;
    struct pipeline_concurrency concurrency;
    struct pipeline_job *jobs; /* in file order */
    size_t n_jobs;
    struct pipeline_diag *errors; /* every error found (at most PIPELINE_WF_MAX_ERRORS) */
    size_t n_errors;
    size_t n_errors_dropped;        /* errors past the bound, counted only */
    struct pipeline_diag *warnings; /* skipped steps and jobs, deprecated forms */
    size_t n_warnings;
};

/* pipeline_load_opts flags */
enum {
    /* `unsupported: skip`: an unsupported uses:, services: or container: is
     * a warning and the step or job is marked skipped, instead of an error. */
    PIPELINE_LOAD_SKIP_UNSUPPORTED = 1 << 0,
};
struct pipeline_load_opts {
    unsigned flags;
};

/* Loads the workflow in data[0..len) named name (in messages). *out is set
 * whenever the text could be read, even with errors, so that every error
 * can be listed from (*out)->errors. Returns 0 when there is no error;
 * PIPELINE_ELOAD when (*out)->n_errors > 0, with err holding the first error
 * and how many more there are. Free *out with pipeline_workflow_free (also
 * on error). opts may be NULL. Thread-safe. */
int pipeline_workflow_parse(const char *data, size_t len, const char *name,
                            const struct pipeline_load_opts *opts, struct pipeline_workflow **out,
                            struct sw_err *err);
/* The same for the file at path (named path). SW_ENOTFOUND, SW_EIO... with
 * *out NULL when the file cannot be read. */
int pipeline_workflow_load(const char *path, const struct pipeline_load_opts *opts,
                           struct pipeline_workflow **out, struct sw_err *err);
void pipeline_workflow_free(struct pipeline_workflow *wf);

/* Checks, without running anything, the calls wf (loaded from the file at
 * path) makes of local reusable workflows, as the runner makes them: for a
 * job with `uses: ./.github/workflows/X.yml`, X.yml is read from the
 * repository around path (the nearest directory upward holding .git or
 * .github) and loaded with opts. A file that does not load or has no
 * on.workflow_call, a `with:` entry it does not declare, a literal of the
 * wrong type, a required input not given, a secret it does not declare and a
 * required one not passed are added to wf->errors with the runner's words, at
 * the caller's line; a file that is not there is a warning (it may be there at
 * the commit a run will have). Returns the number of errors added. */
size_t pipeline_workflow_check_calls(struct pipeline_workflow *wf, const char *path,
                                     const struct pipeline_load_opts *opts);

/* The job with that id, or NULL. */
const struct pipeline_job *pipeline_workflow_job(const struct pipeline_workflow *wf,
                                                 const char *id);

/* Whether event triggers wf, with GitHub's rules. event "push": ref is
 * "refs/heads/BRANCH" or "refs/tags/TAG", paths[0..n) the paths the push
 * changed. A branch push passes when it passes the branch filter (branches or
 * branches-ignore; none: every branch, unless only tag filters are given)
 * and the path filter (paths or paths-ignore; none: any paths); a tag push
 * when it passes the tag filter (none: every tag, unless only branch filters
 * are given), whatever the paths. "workflow_dispatch": when the workflow
 * has it. Every other event: 0 (accepted in files, never run here). */
int pipeline_workflow_triggered(const struct pipeline_workflow *wf, const char *event,
                                const char *ref, const char *const *paths, size_t n);

/* Expands an evaluated matrix (an object as in pipeline_strategy.matrix, with
 * no `${{ }}` left) into its legs, with GitHub's rules: the product of the
 * dimensions in key order, minus each combination an exclude entry matches
 * (partially), then each include entry added to every leg whose original
 * values it does not change, or as a leg of its own when it fits none.
 * *legs is a new array of objects (caller decrefs). PIPELINE_ELOAD with the
 * reason when the matrix is malformed (a dimension that is not a non-empty
 * array, an include that is not a list of objects) or has more than
 * PIPELINE_WF_MAX_MATRIX legs. An empty matrix (no dimension, no include)
 * has no legs. */
int pipeline_matrix_expand(const json_t *matrix, json_t **legs, struct sw_err *err);

/* ---- composite actions ------------------------------------------------------------------- */

/* A local action (`uses: ./path` of a step): path/action.yml (or action.yaml)
 * loaded with the workflow loader's YAML tree, checks and error style
 * (action.c): `name`, `description`, `author`, `branding`, `inputs`,
 * `outputs` and `runs`, against GitHub's action schema. Only composite
 * actions (`runs.using: composite`) run here; an action of another kind
 * (node20, docker...) is a load error naming runs.using's position, so the
 * step that uses it fails with that one line. Steps are struct pipeline_step
 * as a job's: a run: step must name its shell, and a uses: step may call the
 * built-ins or another local action. Ownership and thread safety as for a
 * workflow. */

enum {
    PIPELINE_ACTION_MAX_DEPTH = 10, /* composite actions inside each other, as GitHub */
};

/* One input of an action: with: of the calling step, else its default. */
struct pipeline_action_input {
    char *name;
    size_t line, col;
    struct pipeline_val description;
    struct pipeline_val required; /* b: default 0 (GitHub does not enforce it either) */
    struct pipeline_val def;      /* default:, a template over github, strategy, matrix, job,
                                     runner (hashFiles() too) */
    struct pipeline_val deprecation_message;
};

struct pipeline_action {
    char *file; /* the name given to the loader */
    struct pipeline_val name, description, author;
    struct pipeline_val using;            /* runs.using as written */
    struct pipeline_action_input *inputs; /* in file order */
    size_t n_inputs;
    struct pipeline_call_output *outputs; /* value: a template over the action's steps */
    size_t n_outputs;
    struct pipeline_step *steps; /* runs.steps (index: 0-based in the action) */
    size_t n_steps;
    struct pipeline_diag *errors; /* as a workflow's: "FILE:LINE:COL: message", file order */
    size_t n_errors;
    size_t n_errors_dropped;
    struct pipeline_diag *warnings;
    size_t n_warnings;
};

/* Loads the action in data[0..len) named name (in messages), as
 * pipeline_workflow_parse does: *out is set whenever the text could be read,
 * 0 when it has no error, PIPELINE_ELOAD (err: the first error and how many)
 * otherwise. opts->flags PIPELINE_LOAD_SKIP_UNSUPPORTED marks steps slipway
 * cannot run skipped instead of failing the load. Free *out with
 * pipeline_action_free (also on error). Thread-safe. */
int pipeline_action_parse(const char *data, size_t len, const char *name,
                          const struct pipeline_load_opts *opts, struct pipeline_action **out,
                          struct sw_err *err);
/* Loads dir/action.yml, else dir/action.yaml; messages name the file as
 * name/action.yml (name: how the workflow wrote the directory, without
 * "./"). SW_ENOTFOUND with *out NULL when dir holds neither. */
int pipeline_action_load(const char *dir, const char *name, const struct pipeline_load_opts *opts,
                         struct pipeline_action **out, struct sw_err *err);
void pipeline_action_free(struct pipeline_action *a);

/* ---- runs ---------------------------------------------------------------------------- */

/* Runs and the queue (run.c, queue.c, runlog.c). One run of a workflow is one
 * document in the store, runs/<run-id>/run.json, changed only by compare-and-
 * swap on its ETag, each change a pure function of the record just read (as
 * deploy's change()), with a generation that grows by one per write; a lost
 * compare-and-swap reads again and reapplies, so no update is ever lost.
 *
 * A queued run is claimed by exactly one runner: the claim is the compare-
 * and-swap from queued to running that records the runner, its host and pid,
 * and a lease the runner extends (heartbeat). A run whose lease has expired,
 * or whose holder is a process of this host that no longer exists, is marked
 * failed with the reason by whoever notices (pipeline_runs_recover, and every
 * claim scan): it is never run a second time and never left running.
 *
 * Every run document is read as hostile input (a shared bucket has many
 * writers): sizes are bounded, statuses enumerated, ids, names and times
 * checked; no field becomes a key except through the checks below (a run id, a
 * job and step number, the hash of a concurrency group).
 *
 * Keys (docs/pipelines.md, "Runs and the queue"):
 *   runs/<run-id>/run.json              the record
 *   runs/<run-id>/logs/<JJJJ>-<SSSS>/<CCCCCCCC>   log chunks (job, step, chunk numbers)
 *   runs/<run-id>/artifacts/<name>/manifest.json   an artifact (artifact.c, below)
 *   runs/index/<run-id>                 one empty marker per run: listing without reading logs
 *   runs/active/<run-id>                marker while the run has not ended: what runners scan
 *   runs/groups/<sha256>.json           one document per concurrency group
 *
 * Thread safety: the operations below may be called from several threads and
 * processes at once on one store (that is their point); a struct pipeline_run
 * is a private copy owned by its caller. */

struct store; /* store/store.h */

/* Error codes of the run operations (beside the SW_E* ones). */
enum {
    PIPELINE_ECLAIMED = -130, /* not queued: claimed by another runner, cancelled or ended */
    PIPELINE_ELOST = -131,    /* the caller's claim is gone (recovered after its lease, ...) */
    PIPELINE_EENDED = -132,   /* the run has ended already */
    PIPELINE_EWAITING = -133, /* the run waits for another run of its concurrency group */
    PIPELINE_EGATE = -134,    /* a gate refused: a ref outside deploy_from, an approval refused */
    PIPELINE_EPARKED = -135,  /* the run waits at its gates, parked: no runner holds it */
    PIPELINE_ECANCEL = -136,  /* a cancel was asked: the caller must act on it, not park */
};

enum pipeline_run_status {
    PIPELINE_RUN_QUEUED,
    PIPELINE_RUN_RUNNING,
    PIPELINE_RUN_WAITING, /* running, stopped at a gate */
    PIPELINE_RUN_SUCCEEDED,
    PIPELINE_RUN_FAILED,
    PIPELINE_RUN_CANCELLED,
};
/* GitHub's conclusions of a run, a job and a step (outcome and conclusion). */
enum pipeline_conclusion {
    PIPELINE_CONCLUSION_NONE, /* not concluded yet: null */
    PIPELINE_CONCLUSION_SUCCESS,
    PIPELINE_CONCLUSION_FAILURE,
    PIPELINE_CONCLUSION_CANCELLED,
    PIPELINE_CONCLUSION_SKIPPED,
};
enum pipeline_job_status {
    PIPELINE_JOB_QUEUED,
    PIPELINE_JOB_RUNNING,
    PIPELINE_JOB_WAITING,
    PIPELINE_JOB_COMPLETED, /* its conclusion says how */
};

/* "queued", "running", "waiting", "succeeded", "failed", "cancelled". */
const char *pipeline_run_status_name(enum pipeline_run_status s);
/* 1 for succeeded, failed and cancelled. */
int pipeline_run_status_ended(enum pipeline_run_status s);
/* "success", "failure", "cancelled", "skipped"; NULL for NONE. */
const char *pipeline_conclusion_name(enum pipeline_conclusion c);
/* "queued", "running", "waiting", "completed". */
const char *pipeline_job_status_name(enum pipeline_job_status s);

/* Run ids are made by id_new("run"): "run-20261205-142233-512-9f3a1c". */
#define PIPELINE_RUN_ID_SIZE (ID_LEN(3) + 1)
/* 1 when id has exactly that form (it becomes a key). */
int pipeline_run_id_valid(const char *id);
/* A runner id: [A-Za-z0-9][A-Za-z0-9._-]{0,63}. */
int pipeline_runner_id_valid(const char *id);
/* 1 when path may be a run's repository: absolute, in normal form (no empty,
 * "." or ".." component, no trailing '/'), printable UTF-8 without control
 * characters, at most PIPELINE_RUN_REPOSITORY_MAX bytes. */
int pipeline_run_repository_valid(const char *path);
#define PIPELINE_RUN_REPOSITORY_MAX 4096
/* Commits a push event lists, as GitHub's event payloads cap them. */
#define PIPELINE_PUSH_MAX_COMMITS 20

/* Bounds of a run document; a document beyond one is refused. */
#define PIPELINE_RUN_DOC_MAX (16u << 20)    /* bytes of run.json */
#define PIPELINE_RUN_MAX_JOBS 1024          /* entries of jobs (matrix legs count one each) */
#define PIPELINE_RUN_MAX_STEPS 1000         /* steps of one job */
#define PIPELINE_RUN_OUTPUTS_MAX (1u << 20) /* bytes of one job's outputs, names included */
#define PIPELINE_RUN_LEASE_MS (60 * 1000)   /* default claim lease; heartbeat at a third of it */

struct pipeline_run_step {
    char *name;
    enum pipeline_conclusion outcome, conclusion;
};

/* ---- gates (gate.c; docs/pipelines.md, "Gates") ------------------------------------- */

/* A job whose `environment:` names an environment with `approval` waits
 * before its first step until `required` distinct approvers approve (one
 * rejection fails it, and so does its timeout). The gate's requirement as the
 * runner read it from its own environment file, its start and every decision
 * are kept in the job's record entry; `slipway approve` appends decisions by
 * compare-and-swap and the runner decides with pipeline_gate_decide. */
struct pipeline_run;
struct store;

enum pipeline_gate_state {
    PIPELINE_GATE_WAITING,
    PIPELINE_GATE_APPROVED,
    PIPELINE_GATE_REJECTED,
    PIPELINE_GATE_TIMED_OUT,
};
/* "waiting", "approved", "rejected", "timed_out". */
const char *pipeline_gate_state_name(enum pipeline_gate_state s);

#define PIPELINE_GATE_DECISIONS_MAX 100 /* approvals and rejections kept per gate */
#define PIPELINE_GATE_APPROVERS_MAX 100

/* One approval or rejection. */
struct pipeline_gate_decision {
    char *by;      /* the approver it counts for */
    char *os_user; /* the OS user who recorded it (differs from by with --as) */
    int reject;
    char *comment; /* a line, or NULL */
    int64_t at_ms;
};

struct pipeline_gate {
    char *environment;
    int required;
    char **approvers;
    size_t napprovers;
    int allow_self_approval;
    int64_t timeout_ms;
    int64_t waiting_since_ms;
    enum pipeline_gate_state state;           /* as the runner decided it */
    int64_t decided_ms;                       /* 0 while waiting */
    struct pipeline_gate_decision *decisions; /* in the order they were recorded */
    size_t ndecisions;
};
void pipeline_gate_free(struct pipeline_gate *g);
/* A deep copy (caller frees with pipeline_gate_free). */
struct pipeline_gate *pipeline_gate_dup(const struct pipeline_gate *g);

/* What the decisions of g amount to at now_ms, for a run triggered by actor,
 * with g's requirement: decisions by someone not an approver, by the actor
 * (unless allow_self_approval) or repeating an approver already counted are
 * ignored; in recorded order, a rejection fails the gate and the `required`th
 * distinct approval passes it; a decision made after waiting_since +
 * timeout_ms does not count, and past it the gate has timed out. *decider
 * (optional) is the decision that decided (NULL for a timeout or while
 * waiting); *approvals (optional) counts the approvals that count. Pure. */
enum pipeline_gate_state pipeline_gate_decide(const struct pipeline_gate *g, const char *actor,
                                              int64_t now_ms,
                                              const struct pipeline_gate_decision **decider,
                                              size_t *approvals);

struct env_deploy_from; /* deploy/deploy.h */
/* Whether a job of run ref (refs/heads/B or refs/tags/T) may deploy to an
 * environment with these deploy_from rules (NULL or not present: any ref):
 * a branch when a branches pattern passes it, a tag when a tags pattern
 * does (GitHub filter patterns, see pipeline_filter_new); any other ref
 * never. 0, or PIPELINE_EGATE with one line naming the ref, the environment
 * and the patterns (a bad pattern: SW_EINVAL naming file:line:col). */
int pipeline_gate_ref_check(const struct env_deploy_from *d, const char *env, const char *file,
                            const char *ref, struct sw_err *err);

struct env_config; /* deploy/deploy.h */
/* Whether a job of run r passed the approval gate of environment cfg: its
 * gate for cfg->name was decided approved and its decisions, judged by
 * cfg's own approval rules (never the requirement the record carries), do
 * approve it. What lets a later job of the run (one with no `environment:`,
 * an `if: failure()` rollback) act on cfg. Pure. */
int pipeline_gate_passed(const struct pipeline_run *r, const struct env_config *cfg);

/* A decision `slipway approve` records. */
struct pipeline_approve {
    const char *run_id;
    const char *job;     /* a job id or name; NULL: the only job waiting */
    const char *os_user; /* who runs the command (getpwuid) */
    const char *as;      /* record the decision for this approver; NULL: os_user */
    int reject;
    const char *comment; /* optional; one line */
    int64_t at_ms;
};
/* Checks decision q against run r (pure): the job it names waits at a gate
 * that is not decided; the approver (q->as, else q->os_user) is one of the
 * gate's approvers, and with q->as the OS user is one too; the approver has
 * not decided already; neither is the run's actor unless allow_self_approval.
 * 0 and *job the job's index, else PIPELINE_EGATE with one line (several jobs
 * waiting and no q->job: the line lists them). */
int pipeline_gate_approve_check(const struct pipeline_run *r, const struct pipeline_approve *q,
                                size_t *job, struct sw_err *err);
/* Records q in the job's gate by compare-and-swap (checked again on every
 * attempt). SW_ENOTFOUND for an unknown run, PIPELINE_EGATE as above,
 * PIPELINE_EENDED when the run has ended. *out (optional): the record as
 * written; *job (optional): the job's index. Thread-safe. */
int pipeline_run_approve(struct store *st, const struct pipeline_approve *q,
                         struct pipeline_run **out, size_t *job, struct sw_err *err);

/* One job of a run, or one leg of a matrix job (same id, its own name such
 * as "test (1, a)" and matrix values): the shape `run view --json` prints. */
struct pipeline_run_job {
    char *id;       /* the job's key in the workflow: [A-Za-z_][A-Za-z0-9_-]{0,99} */
    char *name;     /* as GitHub forms it */
    json_t *matrix; /* this leg's matrix values (an object), or NULL */
    enum pipeline_job_status status;
    enum pipeline_conclusion conclusion; /* NONE until COMPLETED */
    int64_t started_ms, ended_ms;        /* 0: not yet */
    json_t *outputs;                     /* object of strings, or NULL */
    struct pipeline_run_step *steps;
    size_t nsteps;
    /* `environment:` as evaluated when the job started (its url again when it
     * ended, as GitHub evaluates it after the steps); NULL: none */
    char *environment_name, *environment_url;
    /* The job's concurrency group asked it to stop (cancel-in-progress, or a
     * newer pending job displaced it); the runner holding the run sees it. */
    int cancel_requested;
    char *reason; /* why it waits or was cancelled, or NULL */
    /* The approval gate it waits or waited at (see gates above); NULL: none. */
    struct pipeline_gate *gate;
};

struct pipeline_run_claim {
    char *runner;       /* NULL: never claimed */
    char *host;         /* sys_host() of the claimer */
    int64_t pid;        /* its process */
    int64_t since_ms;   /* when it claimed */
    int64_t lease_ms;   /* lease length it extends by */
    int64_t expires_ms; /* lease expiry */
};

/* A run record. Strings and json values are owned by the record: free with
 * pipeline_run_free. Text a person or a host supplied (names, ref, actor,
 * reason) is printable UTF-8 without control characters; data values
 * (inputs, matrix values, outputs) are any UTF-8 without NUL and must be
 * printed escaped. */
struct pipeline_run {
    char id[PIPELINE_RUN_ID_SIZE];
    int64_t generation;   /* 1 when created, +1 per write */
    char *workflow;       /* its `name`, else its file name without .yml */
    char *display_title;  /* its `run-name` as evaluated when queued, or NULL */
    char *workflow_file;  /* path in the repository, e.g. ".github/workflows/ci.yml" */
    char *event;          /* "push", "workflow_dispatch", ... */
    char *ref;            /* "refs/heads/main" */
    char *sha;            /* 40 (or 64) lowercase hex digits */
    char *before, *after; /* push: the ref before and after (hex), else NULL */
    char *actor;          /* who pushed or dispatched */
    /* The git repository holding sha, when it is not the runner's own (a run a
     * post-receive hook queued: the bare repository pushed to; one `workflow
     * run --repo DIR` queued: DIR's top level): an absolute path in normal
     * form (pipeline_run_repository_valid); NULL otherwise. */
    char *repository;
    /* push: what the hook knew of the push beyond ref, before and after, as
     * GitHub's push event has it: {"pusher": {"name", "email"}, "head_commit",
     * "commits" (at most PIPELINE_PUSH_MAX_COMMITS), "created", "forced"};
     * every key optional. The runner lays it over github.event. Or NULL. */
    json_t *push;
    json_t *inputs; /* workflow_dispatch inputs (object), or NULL */
    enum pipeline_run_status status;
    enum pipeline_conclusion conclusion; /* NONE until the run ended */
    char *reason;                        /* why it waits, failed or was cancelled; or NULL */
    int64_t created_ms, started_ms, ended_ms;
    struct pipeline_run_claim claim;
    char *group;                            /* concurrency group, or NULL */
    int cancel_in_progress;                 /* of that group */
    char waiting_for[PIPELINE_RUN_ID_SIZE]; /* queued behind this run of its group; "" */
    int cancel_requested;                   /* the runner polls it (heartbeat) */
    char *cancelled_by;
    struct pipeline_run_job *jobs;
    size_t njobs;
    char etag[SHA256_HEX_LEN + 1]; /* of the document it was read from */
};

void pipeline_run_free(struct pipeline_run *r);
/* Appends an empty job (status queued) to r and returns it; r->jobs may move.
 * NULL when r already has PIPELINE_RUN_MAX_JOBS. */
struct pipeline_run_job *pipeline_run_job_add(struct pipeline_run *r);
/* Appends a step named name (copied) to j; NULL at PIPELINE_RUN_MAX_STEPS. */
struct pipeline_run_step *pipeline_run_step_add(struct pipeline_run_job *j, const char *name);

/* Parses and validates run.json read from key (runs/<id>/run.json: the id
 * inside must be the key's). *out is freed with pipeline_run_free; on failure
 * it is untouched and SW_EINVAL names key and the first fault. Pure: any
 * thread. */
int pipeline_run_parse(const char *key, const char *data, size_t len, struct pipeline_run **out,
                       struct sw_err *err);
/* The document for r (caller frees), or NULL when r holds a value that cannot
 * be encoded (a string that is not UTF-8). */
char *pipeline_run_dump(const struct pipeline_run *r);
/* r as `run view --json` prints it (view 1: id, workflow, status,
 * conclusion, jobs, and the run's ref, sha, event, times and reason) or as
 * one entry of `run list --json` (view 0: id, workflow, ref, sha, status,
 * created_at). A new reference. */
json_t *pipeline_run_json(const struct pipeline_run *r, int view);

/* Reads runs/<id>/run.json. SW_ENOTFOUND for an unknown run. */
int pipeline_run_load(struct store *st, const char *id, struct pipeline_run **out,
                      struct sw_err *err);

/* Queues a new run described by spec: workflow, workflow_file, event, ref,
 * sha, before, after, actor, inputs, group, cancel_in_progress and jobs are
 * taken from it (copied); the id, status, times and claim are set here. With
 * a concurrency group, GitHub's rule is applied at once: the group's pending
 * run is cancelled, and with cancel_in_progress its running one is asked to
 * cancel; the new run then holds the group or waits (queued, waiting_for
 * set). *out is the record as written. */
int pipeline_run_create(struct store *st, const struct pipeline_run *spec,
                        struct pipeline_run **out, struct sw_err *err);

/* Claims run id for runner_id (a valid runner id) with a lease of lease_ms
 * (0: PIPELINE_RUN_LEASE_MS): queued -> running by compare-and-swap, so of
 * several claimers exactly one wins. PIPELINE_ECLAIMED when the run is not
 * queued (err says who has it or how it ended), PIPELINE_EWAITING when it
 * waits for its group. On success *out is the claimed record: keep it for
 * heartbeat, update and finish. */
int pipeline_run_claim(struct store *st, const char *id, const char *runner_id, int64_t lease_ms,
                       struct pipeline_run **out, struct sw_err *err);
/* Claims the oldest claimable queued run, recovering stale runs on the way
 * (see pipeline_runs_recover). SW_ENOTFOUND when none is claimable. */
int pipeline_run_claim_next(struct store *st, const char *runner_id, int64_t lease_ms,
                            struct pipeline_run **out, struct sw_err *err);
/* Extends the lease of r (claimed by the caller) and refreshes r, so that
 * r->cancel_requested shows a cancel asked meanwhile. PIPELINE_ELOST when the
 * claim is no longer ours (the run was recovered): stop running it. */
int pipeline_run_heartbeat(struct store *st, struct pipeline_run *r, struct sw_err *err);

/* A change to a run: edits r in memory and returns 0, or a negative code
 * (err set) to change nothing. It may be called more than once (once per
 * compare-and-swap attempt, each time on a fresh copy) and must be pure. */
typedef int (*pipeline_run_fn)(struct pipeline_run *r, void *arg, struct sw_err *err);
/* Applies fn to run r (claimed by the caller) under compare-and-swap; on
 * success r is replaced by what was written. fn may change jobs, reason and
 * status between running and waiting; not the id, the claim, the times, a
 * cancel request or an ended status (pipeline_run_finish ends a run), which
 * is SW_EINVAL. PIPELINE_ELOST when the claim is gone. */
int pipeline_run_update(struct store *st, struct pipeline_run *r, pipeline_run_fn fn, void *arg,
                        struct sw_err *err);
/* Parks run r (claimed by the caller, status waiting: every job that has
 * begun waits at a gate): its claim is released and it stays waiting, with a
 * reason, until a gate would be decided (an approval or rejection recorded,
 * or a timeout passed); then any runner may claim it again and resumes it
 * from its record. PIPELINE_ELOST when the claim is gone; PIPELINE_ECANCEL
 * when the record holds a cancel request (a parked run with one is claimed
 * at once, to be cancelled, so parking it would only go round again);
 * either way r is left as it was. */
int pipeline_run_park(struct store *st, struct pipeline_run *r, struct sw_err *err);
/* 1 when run r is parked at its gates and one of them would now be decided
 * (pipeline_gate_decide on the gate as recorded): a runner may claim it. */
int pipeline_run_parked_ready(const struct pipeline_run *r, int64_t now_ms);

/* Ends run r (claimed by the caller) with conclusion SUCCESS (succeeded),
 * FAILURE (failed) or CANCELLED (cancelled), reason optional; releases its
 * concurrency group (the pending run, if any, may then be claimed).
 * PIPELINE_ELOST when the claim is gone. r is replaced by what was written. */
int pipeline_run_finish(struct store *st, struct pipeline_run *r, enum pipeline_conclusion c,
                        const char *reason, struct sw_err *err);
/* Cancels run id on behalf of actor (NULL: the current user): a queued run
 * is cancelled at once; a running or waiting one gets cancel_requested, which
 * its runner sees at its next heartbeat. PIPELINE_EENDED when it has ended.
 * *out (optional) receives the record as written. */
int pipeline_run_cancel(struct store *st, const char *id, const char *actor,
                        struct pipeline_run **out, struct sw_err *err);
/* Marks failed every running or waiting run whose lease expired or whose
 * holder is a process of this host that no longer exists, with the reason
 * "runner <id> on <host> stopped while the run was running (...)" (cancelled
 * instead when a cancel had been requested), and finishes the bookkeeping of
 * runs a crash left half-ended. *recovered (optional) counts the runs marked. */
int pipeline_runs_recover(struct store *st, size_t *recovered, struct sw_err *err);

/* Job-level concurrency (jobs.<id>.concurrency). Jobs share the group names
 * of runs and GitHub's rule: at most one running and one pending member per
 * group; a newer job displaces the pending one, and with cancel-in-progress
 * asks the running one to stop (cancel_requested in its record, which its
 * runner sees); a job's reason says what happened. */
enum pipeline_job_admit {
    PIPELINE_JOB_GO,   /* it holds the group: start it */
    PIPELINE_JOB_WAIT, /* it is pending: call again later */
    PIPELINE_JOB_STOP, /* displaced or cancelled (or its own run holds the group): end it
                          cancelled with *why */
};
/* Joins (the first time) or checks (later) the place of job index job of run
 * run_id (claimed by the caller, the job not started) in group. *why (caller
 * frees, may be NULL) says why it waits or stops. Call until GO or STOP,
 * then pipeline_job_group_leave when the job ends. */
int pipeline_job_group_enter(struct store *st, const char *run_id, size_t job, const char *group,
                             int cancel_in_progress, enum pipeline_job_admit *state, char **why,
                             struct sw_err *err);
/* Leaves the group (the job ended, or stopped waiting): the pending member
 * takes its place. Best effort: a member that ended is dropped by the next
 * reader anyway. */
void pipeline_job_group_leave(struct store *st, const char *run_id, size_t job, const char *group);

struct pipeline_run_filter {
    const char *workflow; /* a workflow name, file path or file name without .yml; NULL: all */
    size_t limit;         /* at most this many runs; 0: 20 */
};
struct pipeline_run_list {
    struct pipeline_run **runs; /* newest first */
    size_t n;
    size_t unreadable; /* run documents refused (skipped) */
    int truncated;     /* more runs may match */
};
/* Lists runs newest first, reading run.json of the newest runs only (never
 * their logs). Free with pipeline_run_list_free. */
int pipeline_run_list(struct store *st, const struct pipeline_run_filter *f,
                      struct pipeline_run_list *out, struct sw_err *err);
void pipeline_run_list_free(struct pipeline_run_list *l);

/* ---- triggers ------------------------------------------------------------------------------ */

/* What queues runs (trigger.c, hook.c; docs/pipelines.md, "Triggers: git
 * push"). */

/* Fills in spec->workflow (the workflow's `name:`, else its file name without
 * .yml), spec->display_title (its `run-name:`, one line of at most 1024
 * bytes, control characters made spaces; NULL without one) and, when wf has
 * `concurrency:`, spec->group and spec->cancel_in_progress, evaluated as
 * GitHub does when a run is queued (github with workflow, ref, sha,
 * event_name, repository "local/REPO_NAME", actor; inputs; vars, the vars
 * context, NULL: empty, e.g. from pipeline_vars_load). spec->workflow_file,
 * event, ref, sha and actor must be set; spec->inputs only for a dispatch.
 * What it replaces is freed; the caller frees what it sets (also on failure:
 * then nothing but workflow is set). */
int pipeline_run_prepare(const struct pipeline_workflow *wf, struct pipeline_run *spec,
                         const char *repo_name, const json_t *vars, struct sw_err *err);

/* Bounds of a push (from whoever pushed). */
#define PIPELINE_PUSH_LINE_MAX 2048     /* bytes of one line git gives a hook */
#define PIPELINE_PUSH_REF_MAX 1024      /* bytes of a ref name */
#define PIPELINE_PUSH_MAX_PATHS 300     /* changed paths matched, as GitHub's diff limit */
#define PIPELINE_PUSH_MAX_PIPELINES 100 /* pipeline files read from one commit */

/* One line of a post-receive hook's stdin: "OLD NEW REF". */
struct pipeline_push_update {
    char before[65], after[65]; /* lowercase hex, both 40 or both 64 digits */
    char ref[PIPELINE_PUSH_REF_MAX + 1];
};
/* Parses line[0..len) (without its '\n') into *u. SW_EINVAL, saying why (any
 * text of the line escaped), for: not three fields separated by single
 * spaces, hashes that are not both 40 or both 64 lowercase hex digits, a ref
 * not under refs/, longer than PIPELINE_PUSH_REF_MAX, not printable UTF-8,
 * or breaking git's ref name rules (control characters, space, ~ ^ : ? * [ \,
 * "..", "@{", "//", a component starting with '.', ".lock"); a line longer
 * than PIPELINE_PUSH_LINE_MAX or holding a NUL. Pure. */
int pipeline_push_line_parse(const char *line, size_t len, struct pipeline_push_update *u,
                             struct sw_err *err);
/* 1 when hex is all zeros: git's "no commit" (a created ref's OLD, a deleted one's NEW). */
int pipeline_push_zero(const char *hex);

/* What pipeline_push_queue tells its caller, as it goes. */
enum pipeline_push_note {
    PIPELINE_PUSH_QUEUED,    /* a run was queued: run is its record, text its id */
    PIPELINE_PUSH_UNMATCHED, /* file's on.push does not match the push */
    PIPELINE_PUSH_SKIPPED,   /* the ref queues nothing: text says why (deleted, not a branch...) */
    PIPELINE_PUSH_ERROR,     /* file does not load (one note per "FILE:LINE:COL: message"), or
                                could not be queued, or git failed: text says why */
};
/* ref and text (any bytes of the repository: escape them), file (NULL when
 * the note is about the ref) and run are valid during the call only. */
typedef void pipeline_push_note_fn(void *ctx, enum pipeline_push_note kind, const char *ref,
                                   const char *file, const char *text,
                                   const struct pipeline_run *run);

struct pipeline_push_opts {
    const char *repo; /* the repository pushed to (bare or not): an absolute path in normal form */
    const struct pipeline_load_opts *load; /* how pipelines load (may be NULL) */
    const char *pusher_name;               /* the run's actor and the event's pusher.name */
    const char *pusher_email; /* pusher.email; NULL: the committer's of the pushed commit */
    const json_t *vars;       /* the vars context of run-name and concurrency (pipeline_vars_load);
                                 NULL: empty */
    pipeline_push_note_fn *note; /* optional */
    void *ctx;
};

/* The push trigger, for one ref a push updated. A deleted ref (NEW all zeros)
 * and a ref that is neither refs/heads/ nor refs/tags/ queue nothing. NEW is
 * peeled to its commit (an annotated tag to the commit it tags): the run's
 * sha. The pipelines are the regular files .slipway/pipelines/ *.yml and
 * *.yaml of that commit (not of any other), each loaded with o->load; one
 * that does not load is noted error by error and queues nothing, the others
 * go on. Each whose on.push matches (pipeline_workflow_triggered) queues one
 * run: event push, the ref, sha, before and after, actor the pusher,
 * repository o->repo, and push (pipeline_run.push) with the pusher, head_commit
 * and the commits of the push (at most PIPELINE_PUSH_MAX_COMMITS). Paths
 * filters see the paths that changed (at most PIPELINE_PUSH_MAX_PATHS, as
 * GitHub): OLD..NEW for a branch that existed; for a new branch, from the
 * merge base of the repository's default branch (its HEAD) when that branch
 * exists, is another branch and shares history with NEW, else every file of
 * NEW. Tags ignore paths filters, as on GitHub. *queued counts the runs
 * queued. Errors (SW_ENOTFOUND: NEW is not a commit here; git failing to
 * list the pipelines) concern the whole ref; a pipeline's own faults are
 * notes. Nothing here runs a job. */
int pipeline_push_queue(struct store *st, const struct pipeline_push_opts *o,
                        const struct pipeline_push_update *u, size_t *queued, struct sw_err *err);

/* The post-receive hook (hook.c): a shell script that execs
 * `BIN hook post-receive --project PROJECT`, both paths quoted for sh, with a
 * marker line that says slipway wrote it. bin and project must be absolute
 * and free of control characters (SW_EINVAL otherwise). *out: caller frees. */
int pipeline_hook_script(const char *bin, const char *project, char **out, struct sw_err *err);
/* 1 when text[0..len) is a hook pipeline_hook_script wrote (its marker line). */
int pipeline_hook_ours(const char *text, size_t len);
/* Writes script to path (REPO/hooks/post-receive), mode 755, atomically (a
 * temporary beside it, renamed). A file there slipway did not write is
 * SW_EEXIST unless force. */
int pipeline_hook_install(const char *path, const char *script, int force, struct sw_err *err);
/* Removes the hook at path: SW_ENOTFOUND when there is none, SW_EEXIST (and
 * nothing removed) when slipway did not write it. */
int pipeline_hook_uninstall(const char *path, struct sw_err *err);

/* The repositories a project's runners may run runs from besides their own:
 * PROJECT/.slipway/repositories, one absolute path a line ('#' starts a
 * comment). `hook install` adds the repository it installs into, `hook
 * uninstall` removes it: a run's repository (pipeline_run.repository) is a
 * field of the store, which any writer of a shared bucket may forge, so a
 * runner runs from it only when the project lists it. */
/* 1 when repo (in normal form) is listed. A missing or unreadable file lists nothing. */
int pipeline_repos_listed(const char *project, const char *repo);
/* Adds (add 1) or removes (add 0) repo, rewriting the file atomically. */
int pipeline_repos_update(const char *project, const char *repo, int add, struct sw_err *err);

/* ---- artifacts ------------------------------------------------------------------------ */

/* The files a job hands to later jobs of its run, and to people (`slipway run
 * download`), as actions/upload-artifact and actions/download-artifact do on
 * GitHub (artifact.c; docs/pipelines.md, "Artifacts"). An artifact is stored
 * as a release is: each file body a blob of the store's one content-addressed
 * space (blobs/sha256/..., through release.h), and one manifest listing path,
 * size, mode and blob:
 *
 *   runs/<run-id>/artifacts/<name>/manifest.json
 *
 * where <name> is the artifact's name with every byte but [A-Za-z0-9_-] (and
 * '.' not first) written %XX, so that any name GitHub allows is one key
 * component. The manifest is written create-only (last, after its blobs), so
 * two uploads of one name in a run cannot both succeed unless `overwrite`.
 *
 * A manifest is hostile input: the name inside must be the one its key
 * encodes, the run the one it is under, paths in normal form (release_path_valid,
 * and none of GitHub's forbidden characters), sorted and unique, sizes, counts
 * and modes bounded, blobs 64 lowercase hex digits; a body whose bytes do not
 * hash to its blob is refused when read. Extracting writes only below the
 * directory given, never through a symbolic link found there. */

#define PIPELINE_ARTIFACT_NAME_MAX 256        /* bytes of a name */
#define PIPELINE_ARTIFACT_FILES_MAX 100000    /* files of one artifact */
#define PIPELINE_ARTIFACT_DOC_MAX (32u << 20) /* bytes of a manifest */
#define PIPELINE_ARTIFACT_MAX 1000            /* artifacts of one run */
#define PIPELINE_ARTIFACT_RETENTION_MAX 90    /* days, GitHub's default and bound */

struct pipeline_artifact_file {
    char *path; /* relative, in normal form: "dist/app.js" */
    uint64_t size;
    unsigned mode; /* permission bits as uploaded (0644 or 0755); at most 0777 read */
    char blob[SHA256_HEX_LEN + 1];
};

/* One artifact, as its manifest says. Free with pipeline_artifact_free. */
struct pipeline_artifact {
    char *name;
    char run[PIPELINE_RUN_ID_SIZE];
    char *job; /* id of the job that uploaded it, or NULL */
    int64_t created_ms;
    int retention_days; /* 1..PIPELINE_ARTIFACT_RETENTION_MAX: gc deletes it after */
    struct pipeline_artifact_file *files; /* sorted by path, unique */
    size_t nfiles;
    uint64_t bytes;              /* sum of the sizes */
    char id[SHA256_HEX_LEN + 1]; /* the manifest's ETag: upload-artifact's artifact-id */
};
void pipeline_artifact_free(struct pipeline_artifact *a);

/* 0 when name is an artifact name as GitHub allows it (non-empty, none of
 * " : < > | * ? \ / CR LF), printable UTF-8 of at most
 * PIPELINE_ARTIFACT_NAME_MAX bytes, and neither "." nor ".." (it becomes a
 * directory); else SW_EINVAL saying why, the name escaped. */
int pipeline_artifact_name_check(const char *name, struct sw_err *err);
/* The manifest's key for name in run (caller frees); name must be valid. */
char *pipeline_artifact_key(const char *run_id, const char *name);

/* Parses and validates a manifest read from key, which must be the key of
 * its name in run_id. SW_EINVAL names key and the first fault. Free *out with
 * pipeline_artifact_free. Pure: any thread. */
int pipeline_artifact_parse(const char *key, const char *run_id, const char *data, size_t len,
                            struct pipeline_artifact **out, struct sw_err *err);
/* The manifest document for a (caller frees); NULL when a string is not UTF-8. */
char *pipeline_artifact_dump(const struct pipeline_artifact *a, size_t *len);

/* Reads artifact name of run run_id (both checked first). SW_ENOTFOUND when
 * there is none. */
int pipeline_artifact_load(struct store *st, const char *run_id, const char *name,
                           struct pipeline_artifact **out, struct sw_err *err);
/* The names of the artifacts of run run_id, sorted (decoded from their keys;
 * the manifests are not read). SW_EINVAL when a key under the run's artifacts
 * is not one this module writes, or there are more than PIPELINE_ARTIFACT_MAX.
 * Free with pipeline_artifact_names_free. */
int pipeline_artifact_names(struct store *st, const char *run_id, char ***names, size_t *n,
                            struct sw_err *err);
void pipeline_artifact_names_free(char **names, size_t n);

/* Called once per artifact as it is extracted: where is the directory its
 * files go into. */
typedef void pipeline_artifact_fetch_fn(void *ctx, const struct pipeline_artifact *a,
                                        const char *where);

/* What to download, and where: download-artifact's and `gh run download`'s
 * rules. The artifacts named, plus those whose names match a pattern (glob:
 * `*`, `?`, `[...]`), or every artifact of the run when neither is given.
 * Exactly one name and no pattern: its files go into dir itself; otherwise
 * each artifact goes into dir/<name>/, unless merge puts them all into dir. */
struct pipeline_artifact_fetch {
    const char *run_id;
    const char *const *names;
    size_t nnames;
    const char *const *patterns;
    size_t npatterns;
    int merge;                               /* merge-multiple */
    const char *dir;                         /* made when missing */
    const _Atomic int *cancel;               /* optional */
    pipeline_artifact_fetch_fn *on_artifact; /* optional */
    void *ctx;
};
struct pipeline_artifact_fetched {
    size_t artifacts, files;
    uint64_t bytes;
};

/* Downloads the artifacts f selects. Every manifest is read and validated
 * before anything is written, so a hostile one refuses the whole download
 * (SW_EINVAL naming its key and fault) with nothing written. SW_ENOTFOUND
 * when a name is not an artifact of the run, or names or patterns select
 * none; no artifact at all with neither is 0 with res->artifacts 0. Files are
 * written to a temporary name and renamed, every directory opened without
 * following symbolic links, so nothing is ever written outside dir; a body
 * that does not hash to its blob, or has another size, is SW_EINVAL. res
 * (optional) counts what was written. Thread-safe. */
int pipeline_artifact_download(struct store *st, const struct pipeline_artifact_fetch *f,
                               struct pipeline_artifact_fetched *res, struct sw_err *err);

/* What `slipway gc` must know of artifacts, which deploy's gc cannot read
 * (cmd_gc.c hands blobs to deploy_gc as its roots). */
struct pipeline_artifact_expired {
    char run[PIPELINE_RUN_ID_SIZE];
    char *name;
    int64_t created_ms;
    int retention_days;
    uint64_t bytes;
};
struct pipeline_artifact_gc {
    /* artifacts past their retention: their manifests deleted (apply) or that would be */
    struct pipeline_artifact_expired *expired;
    size_t nexpired;
    char **blobs; /* sorted, unique: the bodies every other artifact names */
    size_t nblobs;
    size_t kept; /* artifacts kept */
    /* What could not be read or validated under runs/<run>/artifacts/, each
     * "KEY: why" (escaped): kept, and its bodies unknown, so the caller must
     * delete no blob while there is one. */
    char **unreadable;
    size_t nunreadable;
};
/* Reads every artifact manifest of every run (every key under runs/, so a run
 * missing from the index is not missed). An artifact whose created_at plus
 * retention_days is at or before now_ms has expired: with apply its manifest
 * is deleted (only if it is still the document read: one replaced meanwhile is
 * kept), its blobs are not listed, and they become garbage for deploy_gc;
 * every other artifact's blobs are listed. A hostile manifest can only keep
 * more, or (a forged created_at) have itself deleted: one that does not
 * validate goes into unreadable and is never deleted. Errors
 * are the store's (listing, reading, deleting); *g is then empty. Free *g with
 * pipeline_artifact_gc_free. */
int pipeline_artifact_gc(struct store *st, int apply, int64_t now_ms,
                         struct pipeline_artifact_gc *g, struct sw_err *err);
void pipeline_artifact_gc_free(struct pipeline_artifact_gc *g);

/* ---- run logs ------------------------------------------------------------------------- */

/* A run's logs are append-only streams, one per (job, step): job is the index
 * in the run's jobs, step 0 the job's own lines (set-up, runner messages) and
 * step n its n-th step. A stream is stored as numbered chunk objects written
 * create-only, so an append never rewrites a growing object (on S3 an object
 * cannot grow); a chunk is written when PIPELINE_RUNLOG_CHUNK_MAX bytes are
 * buffered, or when the oldest buffered byte is PIPELINE_RUNLOG_FLUSH_MS old.
 * Reading concatenates the chunks in order and can resume where it stopped, so
 * a reader follows a growing log. The logs of one run together are bounded:
 * past the limit a stream gets one line saying so and further output is
 * dropped. */
#define PIPELINE_RUNLOG_CHUNK_MAX (64u << 10)
#define PIPELINE_RUNLOG_FLUSH_MS 1000
#define PIPELINE_RUNLOG_MAX (64ull << 20) /* default limit per run */
#define PIPELINE_RUNLOG_MAX_JOB 9999
#define PIPELINE_RUNLOG_MAX_STEP 9999

/* The logs of one run being written: the shared budget. Thread-safe: the
 * writers of one run may live on different threads. */
struct pipeline_runlog;
/* max_bytes 0: PIPELINE_RUNLOG_MAX. st is borrowed for the object's life. */
int pipeline_runlog_new(struct store *st, const char *run_id, uint64_t max_bytes,
                        struct pipeline_runlog **out, struct sw_err *err);
/* Frees it, after writing what pipeline_runlog_close_later was handed; every
 * writer must be closed (or handed over) first. */
void pipeline_runlog_free(struct pipeline_runlog *l);

/* A writer of one stream; one thread at a time. Opening a stream that has
 * chunks already goes on after them (and after the output of a writer of it
 * handed to pipeline_runlog_close_later, taken back when not written yet). */
struct pipeline_runlog_writer;
int pipeline_runlog_open(struct pipeline_runlog *l, unsigned job, unsigned step,
                         struct pipeline_runlog_writer **out, struct sw_err *err);
/* Appends bytes (any: the caller has masked secrets and stamped lines). Writes
 * a chunk when one is due. Past the run's limit the bytes are dropped (0 is
 * still returned) and *truncated (optional) is set. */
int pipeline_runlog_append(struct pipeline_runlog_writer *w, const void *data, size_t len,
                           int *truncated, struct sw_err *err);
/* Writes what is buffered now (also call it on a timer: a quiet step's last
 * line must not wait for the next one). */
int pipeline_runlog_flush(struct pipeline_runlog_writer *w, struct sw_err *err);
/* Writes what is buffered if its oldest byte is PIPELINE_RUNLOG_FLUSH_MS old
 * (call it on a timer: a quiet step's last line must not wait for the next
 * one, nor cost a chunk every tick). */
int pipeline_runlog_flush_due(struct pipeline_runlog_writer *w, struct sw_err *err);
/* Flushes and frees the writer (freed even when the flush fails). */
int pipeline_runlog_close(struct pipeline_runlog_writer *w, struct sw_err *err);
/* Closes w in the background: the log's own thread writes what it holds and
 * frees it, so the caller does not wait for the store (a job's next step
 * starts while the last one's output is made durable). Bounded: past 1 MiB
 * or 256 writers waiting, w is closed here. Failures are kept for
 * pipeline_runlog_sync. w must not be used after. */
void pipeline_runlog_close_later(struct pipeline_runlog_writer *w);
/* Waits until every writer handed to pipeline_runlog_close_later is written;
 * returns the first failure among them since the last sync (the output that
 * failed is lost, as with pipeline_runlog_close). Call it before recording
 * that what they logged has ended. Thread-safe. */
int pipeline_runlog_sync(struct pipeline_runlog *l, struct sw_err *err);

/* Reads stream (job, step) of a run from chunk *next on, appending to out,
 * until a chunk does not exist yet or out has grown by max bytes or more (0:
 * no bound; whole chunks only); *next is advanced past what was read, so a
 * reader calls again later to follow the stream. A chunk longer than
 * PIPELINE_RUNLOG_CHUNK_MAX is refused (SW_EINVAL). */
int pipeline_runlog_read(struct store *st, const char *run_id, unsigned job, unsigned step,
                         uint64_t *next, size_t max, struct buf *out, struct sw_err *err);

struct pipeline_runlog_stream {
    unsigned job, step;
};
/* The streams a run has, ordered by job then step (caller frees *out). */
int pipeline_runlog_streams(struct store *st, const char *run_id,
                            struct pipeline_runlog_stream **out, size_t *n, struct sw_err *err);

/* ---- steps ---------------------------------------------------------------------------- */

/* Running one `run:` step as GitHub's runner does (docs/pipelines.md, "Steps"):
 * the script is written to a file in the runner's temp directory and run by
 * the step's shell in a process group of its own, with an environment that
 * holds only what the caller lists (nothing of this process's leaks in), stdin
 * from /dev/null. Its output (stdout and stderr merged, in the order written)
 * is read line by line: workflow commands (`::add-mask::`, `::error …::`,
 * `::group::`, `::stop-commands::`, the old `::set-output`, …) are honoured as
 * the runner honours them, every other line goes to the caller's log sink with
 * a timestamp, masked. Fresh GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH,
 * GITHUB_STATE and GITHUB_STEP_SUMMARY files are made for the step and read
 * back when it ends. Everything a step sends back is bounded: the log (capped,
 * the rest discarded while the step runs on), the lines, the files, the
 * annotations, the outputs and the masks.
 *
 * The step knows nothing of workflows: expressions are evaluated and the
 * environment composed by the caller. Nothing here is global; several steps
 * may run at once from different threads. */

/* An ordered list of NAME=value pairs (an environment, outputs). Setting a
 * name already there replaces its value in place. Values may hold any byte
 * (value_len); names are NUL-terminated. */
struct pipeline_step_var {
    char *name;
    char *value; /* NUL-terminated, value_len bytes */
    size_t value_len;
};
struct pipeline_step_vars {
    struct pipeline_step_var *v;
    size_t n, cap;
};
#define PIPELINE_STEP_VARS_INIT                                                                    \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }
/* Copies name (name_len bytes) and value (len bytes) in; a name holding a
 * NUL byte is ignored. */
void pipeline_step_vars_set(struct pipeline_step_vars *l, const char *name, size_t name_len,
                            const char *value, size_t len);
/* The entry named exactly name, or NULL. */
const struct pipeline_step_var *pipeline_step_vars_get(const struct pipeline_step_vars *l,
                                                       const char *name);
void pipeline_step_vars_free(struct pipeline_step_vars *l);

/* A list of strings (GITHUB_PATH directories, mask values). */
struct pipeline_step_list {
    char **v;
    size_t n, cap;
};
#define PIPELINE_STEP_LIST_INIT                                                                    \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }
void pipeline_step_list_add(struct pipeline_step_list *l, const char *s, size_t len);
void pipeline_step_list_free(struct pipeline_step_list *l);
/* Adds a GITHUB_PATH directory to a job's list as the runner does: an equal
 * entry is removed and dir appended; PATH then gets the list newest first. */
void pipeline_step_path_prepend(struct pipeline_step_list *job, const char *dir);

/* What a log line is. The text handed to the sink is the line alone; a run
 * log written as GitHub's raw logs are prefixes it with
 * pipeline_step_log_prefix(kind). */
enum pipeline_step_log_kind {
    PIPELINE_LOG_OUTPUT,   /* a line the step printed (or slipway's header) */
    PIPELINE_LOG_GROUP,    /* ::group::TITLE: a foldable section starts, text is its title */
    PIPELINE_LOG_ENDGROUP, /* it ends; text is empty */
    PIPELINE_LOG_DEBUG,    /* ::debug:: (only when the spec asks for debug) */
    PIPELINE_LOG_NOTICE,
    PIPELINE_LOG_WARNING,
    PIPELINE_LOG_ERROR,
};
/* "", "##[group]", "##[endgroup]", "##[debug]", "##[notice]", "##[warning]", "##[error]". */
const char *pipeline_step_log_prefix(enum pipeline_step_log_kind kind);

/* One log line, masked, without its line break (it may hold any byte but
 * '\n' and '\r'), valid during the call only; time_ms is when it was read
 * (ms since the epoch). Called on the thread running the step, in order. */
typedef void pipeline_step_log_fn(void *ctx, int64_t time_ms, enum pipeline_step_log_kind kind,
                                  const char *text, size_t len);

/* What happens to processes a step leaves running (`server &`). */
enum pipeline_step_orphans {
    /* As on GitHub: they keep running (a later step may use them) until the
     * job ends and the caller calls pipeline_step_cleanup(tracking_id). */
    PIPELINE_ORPHANS_JOB,
    /* They are killed as soon as the step ends (tracking_id may be NULL). */
    PIPELINE_ORPHANS_STEP,
};

/* Defaults of the bounds below (a zero field means its default). */
enum {
    PIPELINE_STEP_LOG_MAX = 64 << 20,    /* log bytes a step may write; the rest is discarded */
    PIPELINE_STEP_FILE_MAX = 1 << 20,    /* bytes of GITHUB_OUTPUT, _ENV, _PATH or _STATE */
    PIPELINE_STEP_SUMMARY_MAX = 1 << 20, /* GITHUB_STEP_SUMMARY: larger is refused, as on GitHub */
    PIPELINE_STEP_GRACE_MS = 10000,      /* SIGTERM to SIGKILL */
    PIPELINE_STEP_ANNOTATIONS_MAX = 100, /* of each level kept (all are counted), as on GitHub */
    PIPELINE_STEP_MESSAGE_MAX = 4096,    /* bytes of an annotation's message, as on GitHub */
};

/* One step, every value final (expressions evaluated). Borrowed. */
struct pipeline_step_spec {
    const char *name;   /* for messages ("The action 'NAME' has timed out …") */
    const char *script; /* the run: text */
    /* The step's shell: NULL or "" is GitHub's default (`bash -e {0}`, or
     * `sh -e {0}` without bash); "bash" (`bash --noprofile --norc -e -o
     * pipefail {0}`), "sh" (`sh -e {0}`), "python" (`python {0}`), or a
     * command with a template "CMD ARGS…{0}…". "pwsh", "powershell" and "cmd"
     * are refused (or skipped, see unsupported_skip). */
    const char *shell;
    const char *working_directory; /* must exist */
    const char *temp_dir;          /* RUNNER_TEMP: the script and the files are made here */
    const char *workspace;         /* github.workspace: ::error file= is made relative to it */
    /* The environment, in layers (later wins): PATH and HOME of this process,
     * CI=true, then env (the workflow's, the job's, GITHUB_ENV's and the
     * step's `env`, composed by the caller; shown in the log's header), then
     * runner_env (GITHUB_*, RUNNER_*, SLIPWAY_* set by slipway), then the
     * step's own GITHUB_OUTPUT … files. SLIPWAY_SECRET_* names are never
     * passed, whichever layer holds them. */
    const struct pipeline_step_vars *env;
    const struct pipeline_step_vars *runner_env;
    /* The job's GITHUB_PATH directories (pipeline_step_path_prepend's order):
     * PATH becomes them, newest first, then PATH of the layers above. */
    const struct pipeline_step_list *path;
    /* Values to mask (the run's secrets, earlier steps' ::add-mask::): each is
     * trimmed and masked whole and line by line, whatever its length. */
    const struct pipeline_step_list *masks;
    /* RUNNER_TRACKING_ID given to the step, by which pipeline_step_cleanup
     * finds what it left running; NULL: none. */
    const char *tracking_id;
    enum pipeline_step_orphans orphans;
    int64_t timeout_ms;        /* 0: none */
    int64_t kill_grace_ms;     /* 0: PIPELINE_STEP_GRACE_MS */
    uint64_t max_log;          /* 0: PIPELINE_STEP_LOG_MAX */
    size_t max_file;           /* 0: PIPELINE_STEP_FILE_MAX */
    int unsupported_skip;      /* pwsh, powershell, cmd: skip the step with a warning */
    int debug;                 /* ACTIONS_STEP_DEBUG: show ::debug:: and echo commands */
    const _Atomic int *cancel; /* optional: set non-zero (any thread) to cancel */
    pipeline_step_log_fn *log; /* optional */
    void *log_ctx;
};

enum pipeline_step_outcome {
    PIPELINE_STEP_SUCCESS,
    PIPELINE_STEP_FAILURE,
    PIPELINE_STEP_CANCELLED,
    PIPELINE_STEP_SKIPPED,
};
/* "success", "failure", "cancelled", "skipped". */
const char *pipeline_step_outcome_name(enum pipeline_step_outcome o);

enum pipeline_step_level { PIPELINE_NOTICE, PIPELINE_WARNING, PIPELINE_ERROR };

/* ::error / ::warning / ::notice, and the runner's own errors and warnings.
 * Every text is masked; the properties are as written (after GitHub's checks
 * of lines and columns), NULL when absent. */
struct pipeline_step_annotation {
    enum pipeline_step_level level;
    char *message; /* at most PIPELINE_STEP_MESSAGE_MAX bytes */
    char *title, *file, *line, *end_line, *col, *end_column;
};

struct pipeline_step_result {
    enum pipeline_step_outcome outcome;
    int exited, exit_code, signal; /* how the shell ended (exited 0 and signal 0 if never run) */
    int timed_out, cancelled;
    struct pipeline_step_vars outputs; /* GITHUB_OUTPUT, then ::set-output, in order */
    struct pipeline_step_vars env;     /* GITHUB_ENV (and an allowed ::set-env) */
    struct pipeline_step_list path;    /* GITHUB_PATH lines in order: pass each to _path_prepend */
    struct pipeline_step_list masks;   /* ::add-mask:: values: mask them in later steps too */
    char *summary;                     /* GITHUB_STEP_SUMMARY, masked; NULL when empty */
    size_t summary_len;
    struct pipeline_step_annotation *annotations; /* in order; at most _ANNOTATIONS_MAX a level */
    size_t nannotations;
    size_t errors, warnings, notices; /* all of them, also those not kept */
    uint64_t bytes_logged;            /* bytes handed to the log sink */
    int log_capped;                   /* max_log was reached */
    int64_t duration_ms;
};

/* Runs the step to its end and fills *r (free with pipeline_step_result_free)
 * even when the step failed, timed out, was cancelled or could not start: 0
 * then, with r->outcome saying how it went. A negative code (r empty) only
 * when the spec is unusable (SW_EINVAL) or the runner's own files cannot be
 * made (SW_EIO). Thread-safe as proc_run is. */
int pipeline_step_run(const struct pipeline_step_spec *spec, struct pipeline_step_result *r,
                      struct sw_err *err);
void pipeline_step_result_free(struct pipeline_step_result *r);

/* The job-end cleanup: kills every process of this user whose environment
 * holds RUNNER_TRACKING_ID=tracking_id (what the job's steps left running,
 * also those that left their process group), as GitHub's runner does when a
 * job ends: SIGTERM, then SIGKILL after grace_ms (0: at once) to those still
 * there, until none is left. *killed (optional) counts them. */
int pipeline_step_cleanup(const char *tracking_id, int64_t grace_ms, size_t *killed,
                          struct sw_err *err);

/* ---- workflow commands and file commands (the parsers pipeline_step_run uses) ---- */

/* One workflow command line, as the runner's ActionCommand parses it: either
 * `::NAME PROP=V,PROP=V::DATA` (leading white space allowed) or the older
 * `…##[NAME PROP=V;PROP=V]DATA` anywhere in the line. NAME must be one of
 * GitHub's commands (any case) or, when not NULL, the stop token; properties
 * without a name or a value are dropped, a repeated one (any case) replaces;
 * data and property values are unescaped (%25 %0D %0A, and in properties %3A
 * %2C; in the older form %3B %5D too). */
struct pipeline_step_command {
    const char *name;                /* GitHub's spelling (static), or the stop token given */
    int is_stop_token;               /* NAME was the stop token */
    struct pipeline_step_vars props; /* names as written */
    char *data;                      /* NUL-terminated, data_len bytes */
    size_t data_len;
};
/* 1 and *c filled (free with pipeline_step_command_free) when line[0..len)
 * is a command, else 0. Never fails otherwise; the output never grows beyond
 * the input. Pure. */
int pipeline_step_command_parse(const char *line, size_t len, const char *stop_token,
                                struct pipeline_step_command *c);
void pipeline_step_command_free(struct pipeline_step_command *c);
/* The property name (any case), or NULL. */
const char *pipeline_step_command_prop(const struct pipeline_step_command *c, const char *name);

/* One NAME=VALUE or NAME<<DELIMITER … DELIMITER entry of a GITHUB_OUTPUT,
 * GITHUB_ENV or GITHUB_STATE file; delim is NULL for the first form. Pointers
 * into the text given, valid during the call. */
typedef void pipeline_step_pair_fn(void *ctx, const char *name, size_t name_len, const char *value,
                                   size_t value_len, const char *delim, size_t delim_len);
/* Parses such a file as the runner does: lines end at '\n'; empty lines are
 * skipped; a line is NAME=VALUE when its first '=' comes before its first
 * "<<", else NAME<<DELIMITER, and the value is every line up to the first
 * line that is exactly DELIMITER (without their last line break). Each pair
 * is handed to fn as it is read, so those before a fault are kept, as GitHub
 * applies them. SW_EINVAL with GitHub's message on a fault: "Invalid format
 * 'LINE'", "… Name must not be empty and delimiter must not be empty",
 * "Invalid value. Matching delimiter not found 'D'", "Invalid value. EOF marker
 * missing new line.", and (where GitHub's check is a no-op) "Invalid format
 * '=x'. Name must not be empty". Pure; linear in len. */
int pipeline_step_file_parse(const char *text, size_t len, pipeline_step_pair_fn *fn, void *ctx,
                             struct sw_err *err);

/* Appends text[0..len) to out with every occurrence of every mask replaced
 * by "***" as GitHub's masker does: occurrences may overlap or touch, and each
 * run of them becomes one "***". Empty masks are ignored. */
void pipeline_step_mask(const struct pipeline_step_list *masks, const char *text, size_t len,
                        struct buf *out);

/* ---- runner ------------------------------------------------------------------------- */

/* Running a claimed run of a loaded workflow (runner*.c; docs/pipelines.md,
 * "Running workflows"): jobs as a DAG of their needs, at most `jobs` legs at
 * once, each matrix leg a job of its own in its own workspace; `if:`,
 * continue-on-error, timeouts, env layering, outputs and the contexts as
 * GitHub's runner evaluates them. Statuses, conclusions, outputs and steps go
 * into the run record (pipeline_run_update), every line into the run's log,
 * masked and time-stamped; the lease is extended while the run runs and a
 * cancel request (pipeline_run_cancel) stops it. */

/* One log line as it is written (the run's log has it too): job is the index
 * of the leg in the run's jobs, job_name its name, line without '\n'. Called
 * from the legs' threads, one call at a time. */
typedef void pipeline_runner_echo_fn(void *ctx, size_t job, const char *job_name, const char *line,
                                     size_t len);

struct pipeline_runner_opts {
    const char *repo; /* the git repository actions/checkout reads (a local path) */
    /* The server's project: holds .slipway/vars.yml, .slipway/secrets.yml and
     * .slipway/environments/, which the delivery steps (slipway/deploy...) act on (never
     * the checked-out commit's); NULL: none. */
    const char *project;
    const char *work_dir;          /* job workspaces are made under it (must exist) */
    const char *const *labels;     /* NULL-terminated runner labels; NULL: self-hosted, linux,
                                      the architecture (x64, arm64...), ubuntu-latest */
    const char *runner_name;       /* RUNNER_NAME; NULL: "slipway" */
    unsigned jobs;                 /* legs run at once; 0: 1 */
    int unsupported_skip;          /* steps slipway cannot run are skipped with a warning */
    const _Atomic int *cancel;     /* optional: set non-zero to cancel the run */
    pipeline_runner_echo_fn *echo; /* optional */
    void *echo_ctx;
    unsigned tick_ms; /* the ticker's period (lease, cancel, quiet logs); 0: 200 */
    /* When every job that has begun waits at a gate, park the run
     * (pipeline_run_park) and return PIPELINE_EPARKED instead of holding it:
     * a runner that serves a queue does, `workflow run --wait` does not. */
    int park;
};

/* The vars context of a project: .slipway/vars.yml of project, a mapping of
 * names to values, added to vars as strings (a missing file adds nothing). */
int pipeline_vars_load(const char *project, json_t *vars, struct sw_err *err);

/* Runs run (claimed by the caller, status running) of wf to its end and ends
 * it with pipeline_run_finish; run is replaced by the record as written.
 * Returns 0 when the run was run (whatever its conclusion: see
 * run->conclusion), PIPELINE_ELOST when the claim was lost, or another code
 * when the run could not start (the run is then marked failed with the reason
 * when possible). Secrets: .slipway/secrets.yml (refused when readable by
 * others) and SLIPWAY_SECRET_NAME variables of this process. */
int pipeline_runner_run(struct store *st, struct pipeline_run *run,
                        const struct pipeline_workflow *wf, const struct pipeline_runner_opts *o,
                        struct sw_err *err);
/* The name GitHub gives a matrix leg: "NAME (v1, v2)" from the leg's values in
 * order (caller frees). */
char *pipeline_runner_leg_name(const char *name, const json_t *leg);

/* The runner's configuration file, .slipway/runner.yml (runconf.c;
 * docs/pipelines.md, "Runner configuration"), a mapping of:
 *   labels: [self-hosted, linux, gpu]   replaces the default labels
 *   unsupported: skip | error
 *   jobs: N                             1 to 64
 * Every field has a "not given" value so that a command line can override the
 * file key by key. */
struct pipeline_runner_config {
    char **labels;   /* NULL-terminated; NULL when not given */
    int unsupported; /* -1 not given, 0 error, 1 skip */
    int jobs;        /* 0 when not given */
};
/* Loads path into *out (free with pipeline_runner_config_free, also after an
 * error). A missing file is an empty configuration (0); an unknown key, a
 * value of the wrong type or a bad label is SW_EINVAL with "FILE:LINE:COL:
 * message". */
int pipeline_runner_config_load(const char *path, struct pipeline_runner_config *out,
                                struct sw_err *err);
void pipeline_runner_config_free(struct pipeline_runner_config *c);
/* 1 when label may be a runner label: 1 to 100 bytes of printable UTF-8
 * without blanks or commas. Labels are compared ignoring ASCII case. */
int pipeline_runner_label_valid(const char *label);

#endif
