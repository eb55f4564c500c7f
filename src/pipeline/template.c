/*
 * Expressions inside workflow text: template strings ("Build ${{ matrix.os }}")
 * and `if:` conditions.
 *
 * The one idea: a template is cut into literal and expression segments the way
 * GitHub's template reader cuts it — an expression runs from "${{" to the
 * first "}}" outside a single-quoted string — and then behaves as GitHub's
 * rewrite of it into format('literal{0}literal', expr): each value becomes
 * text. Only a template that is exactly one "${{ }}" keeps its value's kind.
 * A condition is an expression whose "${{ }}" may be left out; one that calls
 * no status function means `success() && (condition)`.
 */
#include "pipeline/internal.h"

#include <stdlib.h>
#include <string.h>

struct segment {
    size_t start, len; /* the literal text, or the expression inside "${{ }}" (trimmed) */
    int expr;
    size_t open; /* expressions: offset of "${{" */
};

static int is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Cuts src[from..len) into segments (offsets stay those of src). 0, or
 * PIPELINE_ESYNTAX for "${{" without "}}" or an empty "${{ }}". *segs is
 * freed by the caller. */
static int cut(const char *src, size_t from, size_t len, struct segment **segs, size_t *nsegs,
               size_t *err_at, struct sw_err *err)
{
    const char *open = "${{";
    size_t i = from, n = 0;
    struct segment *s = NULL;

    *segs = NULL;
    *nsegs = 0;
    while (i < len) {
        const char *at = memmem(src + i, len - i, open, 3);
        size_t start = at ? (size_t)(at - src) : len, j, end = 0;
        int in_string = 0;

        if (start > i) {
            s = xrealloc(s, (n + 1) * sizeof(*s));
            s[n++] = (struct segment){i, start - i, 0, 0};
        }
        if (!at)
            break;
        for (j = start + 3; j < len; j++) {
            if (src[j] == '\'')
                in_string = !in_string; /* '' (an escaped quote) toggles twice */
            else if (!in_string && src[j] == '}' && src[j - 1] == '}' && j > start + 3) {
                end = j;
                break;
            }
        }
        if (!end) {
            free(s);
            if (err_at)
                *err_at = start;
            return sw_err_set(err, PIPELINE_ESYNTAX,
                              "The expression is not closed. An unescaped ${{ sequence was "
                              "found, but the closing }} sequence was not found.");
        }
        size_t a = start + 3, b = end - 1; /* the text between "${{" and "}}" */
        while (a < b && is_space(src[a]))
            a++;
        while (b > a && is_space(src[b - 1]))
            b--;
        if (a == b) {
            free(s);
            if (err_at)
                *err_at = start;
            return sw_err_set(err, PIPELINE_ESYNTAX, "An expression was expected");
        }
        s = xrealloc(s, (n + 1) * sizeof(*s));
        s[n++] = (struct segment){a, b - a, 1, start};
        i = end + 1;
    }
    *segs = s;
    *nsegs = n;
    return 0;
}

/* Parses segment s; on error *err_at is made an offset into the template. */
static int parse_segment(const char *src, const struct segment *s,
                         const struct pipeline_expr_opts *opts, struct pipeline_expr **e,
                         size_t *err_at, struct sw_err *err)
{
    size_t at = 0;
    int rc = pipeline_expr_parse(src + s->start, s->len, opts, e, &at, err);
    if (rc && err_at)
        *err_at = s->start + at;
    return rc;
}

int pipeline_expr_template_check(const char *src, size_t len, const struct pipeline_expr_opts *opts,
                                 size_t *err_at, struct sw_err *err)
{
    struct segment *segs;
    size_t n;
    int rc = cut(src, 0, len, &segs, &n, err_at, err);

    for (size_t i = 0; i < n && !rc; i++) {
        struct pipeline_expr *e = NULL;
        if (segs[i].expr)
            rc = parse_segment(src, &segs[i], opts, &e, err_at, err);
        pipeline_expr_free(e);
    }
    free(segs);
    return rc;
}

/* Evaluates the segments; status (when not NULL) is set when one calls a
 * status function. */
static int eval_segments(const char *src, const struct segment *segs, size_t n,
                         const struct pipeline_expr_opts *opts, const struct pipeline_expr_ctx *ctx,
                         struct pipeline_value *out, size_t *err_at, struct sw_err *err)
{
    struct buf b = BUF_INIT;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n && !rc; i++) {
        struct pipeline_expr *e = NULL;
        struct pipeline_value v = PIPELINE_VALUE_INIT;

        if (!segs[i].expr) {
            buf_add(&b, src + segs[i].start, segs[i].len);
            continue;
        }
        if ((rc = parse_segment(src, &segs[i], opts, &e, err_at, err)))
            break;
        rc = pipeline_expr_eval(e, ctx, &v, err);
        pipeline_expr_free(e);
        if (rc) {
            if (err_at)
                *err_at = segs[i].open;
            break;
        }
        if (n == 1) { /* exactly one "${{ }}": its value as it is */
            *out = v;
            buf_free(&b);
            return 0;
        }
        expr_value_text(&v, &b);
        pipeline_value_clear(&v);
    }
    if (rc) {
        buf_free(&b);
        return rc;
    }
    out->kind = PIPELINE_STRING;
    out->str = buf_detach(&b, &out->len);
    return 0;
}

int pipeline_expr_template(const char *src, size_t len, const struct pipeline_expr_opts *opts,
                           const struct pipeline_expr_ctx *ctx, struct pipeline_value *out,
                           size_t *err_at, struct sw_err *err)
{
    struct segment *segs;
    size_t n;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = cut(src, 0, len, &segs, &n, err_at, err)))
        return rc;
    rc = eval_segments(src, segs, n, opts, ctx, out, err_at, err);
    free(segs);
    return rc;
}

static int job_succeeding(const struct pipeline_expr_ctx *ctx)
{
    enum pipeline_status s = ctx && ctx->in_composite ? ctx->action_status
                             : ctx                    ? ctx->job_status
                                                      : PIPELINE_STATUS_NONE;
    return s == PIPELINE_STATUS_NONE || s == PIPELINE_STATUS_SUCCESS;
}

int pipeline_expr_condition(const char *src, size_t len, const struct pipeline_expr_opts *opts,
                            const struct pipeline_expr_ctx *ctx, int *result, size_t *err_at,
                            struct sw_err *err)
{
    struct segment *segs = NULL, whole;
    struct pipeline_expr *e = NULL;
    struct pipeline_value v = PIPELINE_VALUE_INIT;
    size_t n = 0, a = 0, b = len;
    int rc, status = 0;

    *result = 0;
    while (a < b && is_space(src[a]))
        a++;
    while (b > a && is_space(src[b - 1]))
        b--;
    if (a == b) { /* no condition: success() */
        *result = job_succeeding(ctx);
        return 0;
    }
    whole = (struct segment){a, b - a, 1, a};
    if (memmem(src + a, b - a, "${{", 3)) {
        /* white space around the condition (a block scalar's last newline) is not text */
        if ((rc = cut(src, a, b, &segs, &n, err_at, err)))
            return rc;
        if (n == 1 && segs[0].expr) {
            whole = segs[0]; /* "${{ x }}" is x */
        } else {
            /* Text around "${{ }}": the condition is the resulting string
             * (GitHub's format(...)), true when not empty. */
            for (size_t i = 0; i < n && !rc; i++)
                if (segs[i].expr) {
                    rc = parse_segment(src, &segs[i], opts, &e, err_at, err);
                    if (!rc)
                        status |= pipeline_expr_has_status(e);
                    pipeline_expr_free(e);
                    e = NULL;
                }
            if (!rc && (status || job_succeeding(ctx))) {
                rc = eval_segments(src, segs, n, opts, ctx, &v, err_at, err);
                if (!rc)
                    *result = pipeline_value_truthy(&v);
            }
            pipeline_value_clear(&v);
            free(segs);
            return rc;
        }
    }
    free(segs);
    if ((rc = parse_segment(src, &whole, opts, &e, err_at, err)))
        return rc;
    if (pipeline_expr_has_status(e) || job_succeeding(ctx)) {
        rc = pipeline_expr_eval(e, ctx, &v, err);
        if (rc && err_at)
            *err_at = whole.open;
        if (!rc)
            *result = pipeline_value_truthy(&v);
    }
    pipeline_value_clear(&v);
    pipeline_expr_free(e);
    return rc;
}
