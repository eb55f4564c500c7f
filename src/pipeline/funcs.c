/*
 * The functions of the expression language, as GitHub defines them: the
 * string functions fold case and turn their arguments into text first,
 * format() reads GitHub's "{N}" syntax with "{{" and "}}" escapes, toJSON()
 * pretty-prints with two spaces, and the status functions read the job's (or
 * the composite action's) status from the context the caller gave.
 *
 * The one idea: format() and case() evaluate their arguments only when they
 * need them, as GitHub's runner does, so an argument that is never used can
 * never make them fail; every other function evaluates all its arguments,
 * left to right, first.
 */
#include "pipeline/internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int eval_args(struct expr_eval *ev, const struct expr_node *n, struct pipeline_value *args)
{
    for (size_t i = 0; i < n->nargs; i++) {
        int rc = expr_eval_node(ev, n->args[i], &args[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static void set_bool(struct pipeline_value *out, int b)
{
    out->kind = PIPELINE_BOOLEAN;
    out->boolean = b != 0;
}

static void set_string(struct pipeline_value *out, struct buf *b)
{
    out->kind = PIPELINE_STRING;
    out->str = buf_detach(b, &out->len);
}

/* startsWith, endsWith and the string form of contains: both primitive. */
static int string_test(enum expr_fn fn, const struct pipeline_value *l,
                       const struct pipeline_value *r)
{
    struct buf ls = BUF_INIT, rs = BUF_INIT, t = BUF_INIT;
    int result = 0;

    if (!expr_value_is_primitive(l) || !expr_value_is_primitive(r))
        return 0;
    expr_value_text(l, &t);
    expr_fold(&ls, t.data ? t.data : "", t.len);
    buf_reset(&t);
    expr_value_text(r, &t);
    expr_fold(&rs, t.data ? t.data : "", t.len);
    if (rs.len == 0)
        result = 1;
    else if (rs.len <= ls.len && fn == F_STARTSWITH)
        result = memcmp(ls.data, rs.data, rs.len) == 0;
    else if (rs.len <= ls.len && fn == F_ENDSWITH)
        result = memcmp(ls.data + ls.len - rs.len, rs.data, rs.len) == 0;
    else if (fn == F_CONTAINS && ls.len)
        result = memmem(ls.data, ls.len, rs.data, rs.len) != NULL;
    buf_free(&ls);
    buf_free(&rs);
    buf_free(&t);
    return result;
}

static int contains(const struct pipeline_value *search, const struct pipeline_value *item)
{
    size_t i;
    json_t *el;

    if (expr_value_is_primitive(search))
        return string_test(F_CONTAINS, search, item);
    if (search->kind != PIPELINE_ARRAY)
        return 0;
    json_array_foreach(search->json, i, el)
    {
        struct pipeline_value v;
        int eq;
        expr_value_from_json(el, &v);
        eq = expr_equals(item, &v);
        pipeline_value_clear(&v);
        if (eq)
            return 1;
    }
    return 0;
}

static int join(struct expr_eval *ev, const struct pipeline_value *args, size_t nargs,
                struct pipeline_value *out)
{
    struct buf b = BUF_INIT, sep = BUF_INIT;
    size_t i;
    json_t *el;

    if (expr_value_is_primitive(&args[0])) {
        expr_value_text(&args[0], &b);
    } else if (args[0].kind == PIPELINE_ARRAY) {
        if (nargs > 1 && expr_value_is_primitive(&args[1]))
            expr_value_text(&args[1], &sep);
        else
            buf_adds(&sep, ",");
        json_array_foreach(args[0].json, i, el)
        {
            struct pipeline_value v;
            if (i)
                buf_add(&b, sep.data, sep.len);
            expr_value_from_json(el, &v);
            expr_value_text(&v, &b);
            pipeline_value_clear(&v);
            if (b.len > ev->max_mem / 2) /* stop early; expr_charge reports it below */
                break;
        }
    }
    buf_free(&sep);
    if (expr_charge(ev, b.len)) {
        buf_free(&b);
        return PIPELINE_EEVAL;
    }
    set_string(out, &b);
    return 0;
}

/* ---- toJSON --------------------------------------------------------------------------- */

static void indent(struct buf *b, int depth)
{
    buf_adds(b, "\n");
    for (int i = 0; i < depth; i++)
        buf_adds(b, "  ");
}

/* JSON.stringify(value, null, "  "). Fails (-1) once the text is larger than
 * the evaluation may still build. */
static int pretty(struct expr_eval *ev, const json_t *j, int depth, struct buf *b)
{
    size_t i, klen;
    const char *k;
    json_t *v;
    struct pipeline_value pv;

    if (b->len > (ev->max_mem - ev->mem) / 2)
        return -1;
    switch (json_typeof(j)) {
    case JSON_ARRAY:
        if (json_array_size(j) == 0) {
            buf_adds(b, "[]");
            return 0;
        }
        buf_adds(b, "[");
        json_array_foreach((json_t *)j, i, v)
        {
            if (i)
                buf_adds(b, ",");
            indent(b, depth + 1);
            if (pretty(ev, v, depth + 1, b))
                return -1;
        }
        indent(b, depth);
        buf_adds(b, "]");
        return 0;
    case JSON_OBJECT:
        if (json_object_size(j) == 0) {
            buf_adds(b, "{}");
            return 0;
        }
        buf_adds(b, "{");
        i = 0;
        json_object_keylen_foreach((json_t *)j, k, klen, v)
        {
            if (i++)
                buf_adds(b, ",");
            indent(b, depth + 1);
            expr_json_string(b, k, klen);
            buf_adds(b, ": ");
            if (pretty(ev, v, depth + 1, b))
                return -1;
        }
        indent(b, depth);
        buf_adds(b, "}");
        return 0;
    default:
        expr_value_from_json(j, &pv);
        if (pv.kind == PIPELINE_NUMBER)
            expr_json_number(pv.number, b);
        else if (pv.kind == PIPELINE_STRING)
            expr_json_string(b, pv.str, pv.len);
        else if (pv.kind == PIPELINE_BOOLEAN)
            buf_adds(b, pv.boolean ? "true" : "false");
        else
            buf_adds(b, "null");
        pipeline_value_clear(&pv);
        return 0;
    }
}

static int to_json(struct expr_eval *ev, const struct pipeline_value *v, struct pipeline_value *out)
{
    struct buf b = BUF_INIT;

    switch (v->kind) {
    case PIPELINE_ARRAY:
    case PIPELINE_OBJECT:
        if (pretty(ev, v->json, 0, &b)) {
            buf_free(&b);
            return expr_charge(ev, SIZE_MAX / 4);
        }
        break;
    case PIPELINE_NUMBER:
        expr_json_number(v->number, &b);
        break;
    case PIPELINE_STRING:
        expr_json_string(&b, v->str, v->len);
        break;
    case PIPELINE_BOOLEAN:
        buf_adds(&b, v->boolean ? "true" : "false");
        break;
    default:
        buf_adds(&b, "null");
    }
    if (expr_charge(ev, b.len)) {
        buf_free(&b);
        return PIPELINE_EEVAL;
    }
    set_string(out, &b);
    return 0;
}

char *pipeline_value_to_json_text(const struct pipeline_value *v, size_t *len)
{
    struct expr_eval unbounded = {NULL, 0, SIZE_MAX, NULL};
    struct pipeline_value out = PIPELINE_VALUE_INIT;

    to_json(&unbounded, v, &out); /* cannot fail without a budget */
    if (len)
        *len = out.len;
    return out.str;
}

static int from_json(struct expr_eval *ev, const struct pipeline_value *v,
                     struct pipeline_value *out)
{
    struct buf b = BUF_INIT;
    json_error_t jerr;
    json_t *j;
    size_t i = 0, k;

    expr_value_text(v, &b);
    while (i < b.len && (k = expr_space_len((const unsigned char *)b.data + i, b.len - i)) > 0)
        i += k;
    if (i == b.len) {
        buf_free(&b);
        return sw_err_set(ev->err, PIPELINE_EEVAL, "Error parsing fromJson: empty input");
    }
    if (expr_charge(ev, b.len)) {
        buf_free(&b);
        return PIPELINE_EEVAL;
    }
    j = pipeline_json_load(b.data, b.len, &jerr);
    buf_free(&b);
    if (!j)
        return sw_err_set(ev->err, PIPELINE_EEVAL,
                          "Error parsing fromJson: %s (line %d, column %d)", jerr.text, jerr.line,
                          jerr.column);
    expr_value_from_json(j, out);
    json_decref(j);
    return 0;
}

/* ---- format ------------------------------------------------------------------------------ */

struct format_args {
    struct expr_eval *ev;
    const struct expr_node *n;
    struct pipeline_value *values; /* values[i] is argument i + 1, once evaluated */
    char *done;
};

/* "{N}" or "{N:specifiers}" at fmt[lb]: the index (0..255, as GitHub reads
 * it into a byte) and the position of the closing brace. 0 when malformed. */
static int read_placeholder(const char *fmt, size_t len, size_t lb, unsigned *index, size_t *rb,
                            struct buf *specifiers)
{
    size_t i = lb + 1, digits = 0;
    unsigned v = 0;

    while (i < len && fmt[i] >= '0' && fmt[i] <= '9') {
        v = v * 10 + (unsigned)(fmt[i] - '0');
        if (v > 255)
            return 0;
        i++, digits++;
    }
    if (digits == 0 || i >= len)
        return 0;
    *index = v;
    if (fmt[i] == '}') {
        *rb = i;
        return 1;
    }
    if (fmt[i] != ':')
        return 0;
    for (i++; i < len; i++) {
        if (fmt[i] != '}') {
            buf_add(specifiers, &fmt[i], 1);
        } else if (i + 1 < len && fmt[i + 1] == '}') {
            buf_add(specifiers, "}", 1);
            i++;
        } else {
            *rb = i;
            return 1;
        }
    }
    return 0;
}

static int format_arg(struct format_args *fa, unsigned index, const char *specifiers,
                      struct buf *out)
{
    struct pipeline_value *v = &fa->values[index];
    int rc;

    if (!fa->done[index]) {
        if ((rc = expr_eval_node(fa->ev, fa->n->args[index + 1], v)))
            return rc;
        fa->done[index] = 1;
    }
    if (*specifiers) /* GitHub only knows specifiers for dates, which expressions never make */
        return sw_err_set(fa->ev->err, PIPELINE_EEVAL,
                          "The format specifiers '%s' are not valid for objects of type '%s'",
                          specifiers, pipeline_kind_name(v->kind));
    size_t before = out->len;
    expr_value_text(v, out);
    return expr_charge(fa->ev, out->len - before);
}

static int format(struct expr_eval *ev, const struct expr_node *n, struct pipeline_value *out)
{
    struct pipeline_value fv = PIPELINE_VALUE_INIT;
    struct format_args fa = {ev, n, NULL, NULL};
    struct buf fmt = BUF_INIT, b = BUF_INIT, spec = BUF_INIT;
    size_t i = 0, nvalues = n->nargs - 1;
    int rc;

    if ((rc = expr_eval_node(ev, n->args[0], &fv)))
        return rc;
    expr_value_text(&fv, &fmt);
    pipeline_value_clear(&fv);
    fa.values = xcalloc(nvalues + 1, sizeof(*fa.values));
    fa.done = xcalloc(nvalues + 1, 1);
    buf_adds(&b, ""); /* never NULL, even when empty */
    while (i < fmt.len && !rc) {
        const char *s = fmt.data;
        const char *lb = memchr(s + i, '{', fmt.len - i), *rb = memchr(s + i, '}', fmt.len - i);
        size_t l = lb ? (size_t)(lb - s) : SIZE_MAX, r = rb ? (size_t)(rb - s) : SIZE_MAX;
        unsigned index;
        size_t close;

        if (lb && (!rb || r > l)) {
            if (l + 1 < fmt.len && s[l + 1] == '{') { /* "{{" is "{" */
                buf_add(&b, s + i, l - i + 1);
                rc = expr_charge(ev, l - i + 1);
                i = l + 2;
                continue;
            }
            buf_reset(&spec);
            buf_adds(&spec, "");
            if (rb && r > l + 1 && read_placeholder(s, fmt.len, l, &index, &close, &spec)) {
                if (index >= nvalues) {
                    rc = sw_err_set(ev->err, PIPELINE_EEVAL,
                                    "The following format string references more arguments "
                                    "than were supplied: %s",
                                    s);
                    break;
                }
                buf_add(&b, s + i, l - i);
                if (!(rc = expr_charge(ev, l - i)))
                    rc = format_arg(&fa, index, spec.data, &b);
                i = close + 1;
                continue;
            }
            rc = sw_err_set(ev->err, PIPELINE_EEVAL, "The following format string is invalid: %s",
                            s);
        } else if (rb) {
            if (r + 1 < fmt.len && s[r + 1] == '}') { /* "}}" is "}" */
                buf_add(&b, s + i, r - i + 1);
                rc = expr_charge(ev, r - i + 1);
                i = r + 2;
                continue;
            }
            rc = sw_err_set(ev->err, PIPELINE_EEVAL, "The following format string is invalid: %s",
                            s);
        } else {
            buf_add(&b, s + i, fmt.len - i);
            rc = expr_charge(ev, fmt.len - i);
            break;
        }
    }
    for (i = 0; i < nvalues; i++)
        pipeline_value_clear(&fa.values[i]);
    free(fa.values);
    free(fa.done);
    buf_free(&fmt);
    buf_free(&spec);
    if (rc) {
        buf_free(&b);
        return rc;
    }
    set_string(out, &b);
    return 0;
}

/* ---- case, hashFiles, status ---------------------------------------------------------------- */

static int case_fn(struct expr_eval *ev, const struct expr_node *n, struct pipeline_value *out)
{
    size_t i;
    int rc;

    for (i = 0; i + 1 < n->nargs; i += 2) {
        struct pipeline_value pred = PIPELINE_VALUE_INIT;
        if ((rc = expr_eval_node(ev, n->args[i], &pred)))
            return rc;
        if (pred.kind != PIPELINE_BOOLEAN) {
            pipeline_value_clear(&pred);
            return sw_err_set(ev->err, PIPELINE_EEVAL,
                              "case predicate must evaluate to a boolean value");
        }
        if (pred.boolean)
            return expr_eval_node(ev, n->args[i + 1], out);
    }
    return expr_eval_node(ev, n->args[n->nargs - 1], out);
}

static int hash_files(struct expr_eval *ev, const struct pipeline_value *args, size_t nargs,
                      struct pipeline_value *out)
{
    char **patterns = xcalloc(nargs + 1, sizeof(*patterns));
    size_t n = 0, i = 0;
    int follow = 0, rc;
    char *hex = NULL;

    for (i = 0; i < nargs; i++) {
        char *s = pipeline_value_to_string(&args[i], NULL);
        if (i == 0 && strncmp(s, "--", 2) == 0) {
            /* an option, as GitHub's first argument may be */
            if (strcasecmp(s, "--follow-symbolic-links") != 0) {
                rc = sw_err_set(ev->err, PIPELINE_EEVAL,
                                "Invalid glob option %s, available option: "
                                "'--follow-symbolic-links'.",
                                s);
                free(s);
                goto out;
            }
            follow = 1;
            free(s);
            continue;
        }
        patterns[n++] = s;
    }
    rc = expr_hash_files(ev, patterns, n, follow, &hex);
    if (!rc) {
        out->kind = PIPELINE_STRING;
        out->str = hex;
        out->len = strlen(hex);
    }
out:
    for (i = 0; i < n; i++)
        free(patterns[i]);
    free(patterns);
    return rc;
}

static int is_success(enum pipeline_status s)
{
    return s == PIPELINE_STATUS_NONE || s == PIPELINE_STATUS_SUCCESS;
}

int pipeline_status_parse(const char *s, enum pipeline_status *out)
{
    static const char *const names[] = {"success", "failure", "cancelled", "skipped"};
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
        if (strcasecmp(s, names[i]) == 0) {
            *out = (enum pipeline_status)(PIPELINE_STATUS_SUCCESS + i);
            return 0;
        }
    return SW_EINVAL;
}

int expr_call(struct expr_eval *ev, const struct expr_node *n, struct pipeline_value *out)
{
    const struct pipeline_expr_ctx *ctx = ev->ctx;
    struct pipeline_value *args;
    int rc = 0;

    switch (n->fn) {
    case F_FORMAT:
        return format(ev, n, out);
    case F_CASE:
        return case_fn(ev, n, out);
    case F_ALWAYS:
        set_bool(out, 1);
        return 0;
    case F_CANCELLED:
        set_bool(out, ctx->job_status == PIPELINE_STATUS_CANCELLED);
        return 0;
    case F_SUCCESS:
        set_bool(out, is_success(ctx->in_composite ? ctx->action_status : ctx->job_status));
        return 0;
    case F_FAILURE:
        set_bool(out, (ctx->in_composite ? ctx->action_status : ctx->job_status) ==
                          PIPELINE_STATUS_FAILURE);
        return 0;
    default:
        break;
    }
    args = xcalloc(n->nargs + 1, sizeof(*args));
    if ((rc = eval_args(ev, n, args)))
        goto out;
    switch (n->fn) {
    case F_CONTAINS:
        set_bool(out, contains(&args[0], &args[1]));
        break;
    case F_STARTSWITH:
    case F_ENDSWITH:
        set_bool(out, string_test(n->fn, &args[0], &args[1]));
        break;
    case F_JOIN:
        rc = join(ev, args, n->nargs, out);
        break;
    case F_TOJSON:
        rc = to_json(ev, &args[0], out);
        break;
    case F_FROMJSON:
        rc = from_json(ev, &args[0], out);
        break;
    case F_HASHFILES:
        rc = hash_files(ev, args, n->nargs, out);
        break;
    default:
        break;
    }
out:
    for (size_t i = 0; i < n->nargs; i++)
        pipeline_value_clear(&args[i]);
    free(args);
    return rc;
}
