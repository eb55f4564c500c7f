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

#endif
