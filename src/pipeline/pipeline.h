/*
 * pipeline — GitHub Actions workflows, run natively. This header is the
 * module's whole face; so far it holds two self-contained parts:
 *
 *  - expressions: the `${{ }}` language with GitHub's exact semantics (lexer,
 *    parser with GitHub's depth and length limits, evaluator, the functions,
 *    template strings and `if:` conditions);
 *  - filters: the `on.push` patterns of branches, tags and paths.
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

#endif
