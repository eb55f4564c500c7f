/* Private to src/pipeline/: the expression tree and the text helpers the
 * lexer, the evaluator and the functions share. */
#ifndef SW_PIPELINE_INTERNAL_H
#define SW_PIPELINE_INTERNAL_H

#include "pipeline/pipeline.h"

#include <stdint.h>

/* ---- text (text.c, upper.c) ------------------------------------------------------ */

/* The simple uppercase mapping of one code point (upper.c, generated). */
uint32_t expr_upper(uint32_t cp);
/* Decodes the UTF-8 character at s (n > 0 bytes available) into *cp and
 * returns its length. A byte that does not start a well-formed character
 * decodes, with length 1, to U+DC00 + byte (Python's "surrogateescape":
 * well-formed UTF-8 never decodes to a surrogate), so every input makes
 * progress and such bytes compare equal only to themselves. */
size_t expr_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);
/* Length of the white-space character at s (.NET's Char.IsWhiteSpace), or 0. */
size_t expr_space_len(const unsigned char *s, size_t n);
/* Number of characters in s[0..n) (the unit of the positions in messages). */
size_t expr_char_count(const char *s, size_t n);
/* Appends s upper-cased character by character (GitHub's OrdinalIgnoreCase). */
void expr_fold(struct buf *b, const char *s, size_t len);
/* 1 when a and b are equal ignoring case as GitHub compares them. */
int expr_eq_fold(const char *a, size_t alen, const char *b, size_t blen);
/* JavaScript's Number(s): trims white space, "" is 0, decimal with optional
 * sign and exponent, 0x / 0o / 0b integers, "Infinity"; else NaN. */
double expr_parse_number(const char *s, size_t len);
/* GitHub's number to text (.NET "G15"; -0 is "0"). */
void expr_format_number(double d, struct buf *b);
/* JSON text of a number as JavaScript writes it (shortest digits that read
 * back the same); NaN and infinities are written as null. */
void expr_json_number(double d, struct buf *b);
/* Appends s as a JSON string literal (quotes, escapes; bytes that are not
 * UTF-8 become U+FFFD so the output is always valid JSON). */
void expr_json_string(struct buf *b, const char *s, size_t len);

/* ---- the tree (parse.c) --------------------------------------------------------------- */

enum expr_node_type {
    N_LITERAL,
    N_NAME,  /* a named value (context) */
    N_INDEX, /* args[0][args[1]]; args[1] NULL for '*' */
    N_NOT,
    N_COMPARE, /* args[0] ops[0] args[1] ops[1] args[2] ..., left to right */
    N_AND,     /* args joined by &&, left to right */
    N_OR,
    N_CALL,
};

enum expr_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

enum expr_fn {
    F_CONTAINS,
    F_STARTSWITH,
    F_ENDSWITH,
    F_FORMAT,
    F_JOIN,
    F_TOJSON,
    F_FROMJSON,
    F_HASHFILES,
    F_CASE,
    F_SUCCESS,
    F_FAILURE,
    F_ALWAYS,
    F_CANCELLED,
};

struct expr_node {
    enum expr_node_type type;
    size_t pos;                /* byte offset of the node's first token */
    struct pipeline_value lit; /* N_LITERAL (never an array or object) */
    char *name;                /* N_NAME, as written */
    size_t name_len;
    enum expr_fn fn; /* N_CALL */
    struct expr_node **args;
    size_t nargs;
    unsigned char *ops; /* N_COMPARE: nargs - 1 operators */
};

struct pipeline_expr {
    struct expr_node *root; /* NULL: the empty expression */
    int has_status;
};

/* ---- evaluation (eval.c, funcs.c) ------------------------------------------------------ */

struct expr_eval {
    const struct pipeline_expr_ctx *ctx;
    size_t mem, max_mem;
    struct sw_err *err;
};

/* Counts a string of len bytes built during the evaluation; fails when the
 * evaluation has built more than it may. */
int expr_charge(struct expr_eval *ev, size_t len);
int expr_eval_node(struct expr_eval *ev, const struct expr_node *n, struct pipeline_value *out);
/* A value for a JSON element (a borrowed json_t; containers are referenced). */
void expr_value_from_json(const json_t *j, struct pipeline_value *out);
/* v's text (see pipeline_value_to_string), appended to b. */
void expr_value_text(const struct pipeline_value *v, struct buf *b);
/* JavaScript's Number() of v: null 0, booleans 1 and 0, strings parsed,
 * arrays and objects NaN. */
double expr_value_number(const struct pipeline_value *v);
int expr_value_is_primitive(const struct pipeline_value *v);
/* Loose equality after GitHub's coercions. */
int expr_equals(const struct pipeline_value *a, const struct pipeline_value *b);
/* The function call n (N_CALL). */
int expr_call(struct expr_eval *ev, const struct expr_node *n, struct pipeline_value *out);
/* hashFiles(patterns...) (hashfiles.c): the hex digest, or "" when nothing
 * matched. */
int expr_hash_files(struct expr_eval *ev, char **patterns, size_t n, int follow, char **hex);

/* ---- the workflow loader (workflow.c, wf_on.c, wf_job.c, wf_value.c, matrix.c; action.c) --- */

/* Where expressions may appear and what they may name: GitHub's contexts for
 * one key of the schema. names NULL: no expression is allowed there. */
struct wf_ctx {
    const char *const *names;
    unsigned flags; /* pipeline_expr_opts flags */
};

/* The state of one load: the workflow being filled, the text (to place a
 * fault inside a value), the options. */
struct wf_ld {
    struct pipeline_workflow *wf;
    const char *data;
    size_t len;
    size_t *lines; /* byte offset of each line's start; lines[0] is line 1 */
    size_t n_lines;
    unsigned flags; /* PIPELINE_LOAD_* */
};

/* The length of the line break at data[i] as libyaml counts breaks (LF, CR,
 * CR LF, NEL, LS, PS), or 0. */
size_t wf_break(const char *data, size_t len, size_t i);

/* How a scalar is read (wf_val). */
enum wf_type {
    WF_TEXT,   /* any scalar, as text */
    WF_BOOL,   /* true or false, or an expression */
    WF_NUMBER, /* a number, or an expression */
    WF_COND,   /* an if: condition (an expression with or without ${{ }}) */
};

/* Records an error (or a warning) at line:col as "FILE:LINE:COL: message". */
void wf_diag(struct wf_ld *ld, int warning, size_t line, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define wf_error(ld, n, ...) wf_diag((ld), 0, (n)->line, (n)->col, __VA_ARGS__)
/* GitHub's name for the kind of node n: "a string", "a sequence", "a mapping". */
const char *wf_kind(const struct yaml_node *n);
/* Checks that n (not NULL) is a mapping whose keys are all in allowed (NULL-terminated);
 * reports each other key, listing the allowed ones. 0 when n is a mapping
 * (even with unknown keys), -1 after reporting that it is not. what names n
 * in messages ("a step"). */
int wf_keys(struct wf_ld *ld, const struct yaml_node *n, const char *what,
            const char *const *allowed);
/* Reads scalar n (NULL: absent, out cleared) into out as t, checking its
 * expressions against c (NULL: none allowed). A plain null is absent. 0, or
 * -1 after reporting the fault. */
int wf_val(struct wf_ld *ld, const struct yaml_node *n, enum wf_type t, const struct wf_ctx *c,
           struct pipeline_val *out);
/* Reads a mapping of names to scalars (env, with, outputs); allow_expr lets
 * the whole mapping be one expression. */
int wf_map(struct wf_ld *ld, const struct yaml_node *n, const char *what, const struct wf_ctx *c,
           int allow_expr, struct pipeline_map *out);
/* n (not NULL) as a list of non-empty scalars (a scalar is a list of one): the count,
 * with *items pointing into the tree (or at *one); -1 after an error. */
long wf_scalars(struct wf_ld *ld, const struct yaml_node *n, const char *what,
                const struct yaml_node *const **items, const struct yaml_node **one);
/* Checks the expressions of scalar text s at node n (at its position). */
int wf_check_expr(struct wf_ld *ld, const struct yaml_node *n, const char *s, int condition,
                  const struct wf_ctx *c);
/* 1 when s is an identifier as GitHub wants for job, step and input ids:
 * a letter or '_', then letters, digits, '-' or '_'. */
int wf_ident(const char *s);
void wf_val_free(struct pipeline_val *v);
void wf_map_free(struct pipeline_map *m);

/* The loader's framing (workflow.c), shared with the action loader (action.c):
 * the line index of ld->data, a YAML fault as one diagnostic, tags YAML read
 * where an expression was meant, diagnostics in file order. */
void wf_index_lines(struct wf_ld *ld);
void wf_yaml_failed(struct wf_ld *ld, const char *name, const struct sw_err *err);
void wf_check_tags(struct wf_ld *ld, const struct yaml_node *n, int depth);
void wf_sort_diags(struct pipeline_diag *d, size_t n);
/* Steps (wf_job.c), shared with the action loader: a step's uses: parsed and
 * matched against the built-ins (unsupported: an error, or skipped in skip
 * mode), a shell: checked, a step freed. */
void wf_step_uses(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_step *st);
int wf_step_head(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_step *st,
                 const char *const *const keys[3], const struct wf_ctx *ctx,
                 const struct wf_ctx *ctx_if, char *what, size_t what_len);
int wf_shell_check(struct wf_ld *ld, const struct yaml_node *n, const char *s);
void wf_step_free(struct pipeline_step *st);
/* defaults:, concurrency:, permissions: of the workflow or a job (workflow.c) */
void wf_load_defaults(struct wf_ld *ld, const struct yaml_node *n, const struct wf_ctx *c,
                      struct pipeline_defaults *d);
void wf_load_concurrency(struct wf_ld *ld, const struct yaml_node *n, const struct wf_ctx *c,
                         struct pipeline_concurrency *cc);
void wf_check_permissions(struct wf_ld *ld, const struct yaml_node *n);
/* on: (wf_on.c) */
void wf_load_on(struct wf_ld *ld, const struct yaml_node *on);
void wf_on_free(struct pipeline_on *on);
/* jobs: (wf_job.c) */
void wf_load_jobs(struct wf_ld *ld, const struct yaml_node *jobs);
void wf_job_free(struct pipeline_job *job);
/* strategy.matrix as JSON (matrix.c): YAML scalars typed, expressions checked. */
json_t *wf_matrix_json(struct wf_ld *ld, const struct yaml_node *n, const struct wf_ctx *c,
                       int *has_expr, int depth);

#endif
