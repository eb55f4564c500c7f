/*
 * Evaluating a parsed expression, with GitHub's semantics for every kind.
 *
 * The one idea: values are primitives held inline or references to JSON
 * containers, never copies of containers. Object and array equality is
 * identity (`a == a` is true, `fromJSON('{}') == fromJSON('{}')` is not),
 * which holds exactly because a container is only ever referenced. Every
 * comparison first coerces its operands as GitHub does (after JavaScript's
 * abstract equality: a number against a string compares numbers; null and
 * booleans become numbers; containers are never coerced), strings compare
 * ignoring case, and NaN is unequal and unordered to everything.
 *
 * Strings built while evaluating are counted against a budget, so a hostile
 * expression (format('{0}{0}{0}...', toJSON(github)) nested) fails with
 * GitHub's "maximum allowed memory size" error instead of exhausting memory.
 */
#include "pipeline/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void pipeline_value_clear(struct pipeline_value *v)
{
    free(v->str);
    json_decref(v->json);
    memset(v, 0, sizeof(*v));
}

const char *pipeline_kind_name(enum pipeline_kind k)
{
    static const char *const names[] = {"Null", "Boolean", "Number", "String", "Array", "Object"};
    return (unsigned)k < sizeof(names) / sizeof(*names) ? names[k] : "Unknown";
}

int expr_value_is_primitive(const struct pipeline_value *v)
{
    return v->kind != PIPELINE_ARRAY && v->kind != PIPELINE_OBJECT;
}

void expr_value_text(const struct pipeline_value *v, struct buf *b)
{
    switch (v->kind) {
    case PIPELINE_NULL:
        break;
    case PIPELINE_BOOLEAN:
        buf_adds(b, v->boolean ? "true" : "false");
        break;
    case PIPELINE_NUMBER:
        expr_format_number(v->number, b);
        break;
    case PIPELINE_STRING:
        buf_add(b, v->str, v->len);
        break;
    case PIPELINE_ARRAY:
    case PIPELINE_OBJECT:
        buf_adds(b, pipeline_kind_name(v->kind));
        break;
    }
}

char *pipeline_value_to_string(const struct pipeline_value *v, size_t *len)
{
    struct buf b = BUF_INIT;
    expr_value_text(v, &b);
    return buf_detach(&b, len);
}

double expr_value_number(const struct pipeline_value *v)
{
    switch (v->kind) {
    case PIPELINE_NULL:
        return 0;
    case PIPELINE_BOOLEAN:
        return v->boolean;
    case PIPELINE_NUMBER:
        return v->number;
    case PIPELINE_STRING:
        return expr_parse_number(v->str, v->len);
    default:
        return NAN;
    }
}

int pipeline_value_truthy(const struct pipeline_value *v)
{
    switch (v->kind) {
    case PIPELINE_NULL:
        return 0;
    case PIPELINE_BOOLEAN:
        return v->boolean;
    case PIPELINE_NUMBER:
        return v->number != 0 && !isnan(v->number);
    case PIPELINE_STRING:
        return v->len > 0;
    default:
        return 1;
    }
}

/* A JSON string of s; bytes that are not UTF-8 (JSON text must be) become U+FFFD. */
static json_t *json_string_utf8(const char *s, size_t len)
{
    struct buf b = BUF_INIT;
    json_t *j;
    size_t i = 0;
    uint32_t cp;

    while (i < len) {
        size_t k = expr_utf8_next((const unsigned char *)s + i, len - i, &cp);
        if (cp >= 0xdc80 && cp <= 0xdcff)
            buf_adds(&b, "\xef\xbf\xbd");
        else
            buf_add(&b, s + i, k);
        i += k;
    }
    j = json_stringn_nocheck(b.data ? b.data : "", b.len);
    buf_free(&b);
    return j;
}

static json_t *json_number_of(double d)
{
    if (!isfinite(d))
        return json_null();
    /* whole numbers as integers, so they print as 3, not 3.0 */
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
        return json_integer((json_int_t)d);
    return json_real(d);
}

/* A copy of j for the caller: numbers as json_number_of writes them. */
static json_t *json_export(const json_t *j)
{
    json_t *out, *v;
    const char *k;
    size_t i, klen;

    switch (json_typeof(j)) {
    case JSON_ARRAY:
        out = json_array();
        json_array_foreach((json_t *)j, i, v)
        {
            json_array_append_new(out, json_export(v));
        }
        return out;
    case JSON_OBJECT:
        out = json_object();
        json_object_keylen_foreach((json_t *)j, k, klen, v)
        {
            json_object_setn_new_nocheck(out, k, klen, json_export(v));
        }
        return out;
    case JSON_REAL:
        return json_number_of(json_real_value(j));
    default:
        return json_copy((json_t *)j);
    }
}

json_t *pipeline_value_to_json(const struct pipeline_value *v)
{
    switch (v->kind) {
    case PIPELINE_BOOLEAN:
        return json_boolean(v->boolean);
    case PIPELINE_NUMBER:
        return json_number_of(v->number);
    case PIPELINE_STRING:
        return json_string_utf8(v->str, v->len);
    case PIPELINE_ARRAY:
    case PIPELINE_OBJECT:
        return json_export(v->json);
    default:
        return json_null();
    }
}

json_t *pipeline_json_load(const char *s, size_t len, json_error_t *jerr)
{
    return json_loadb(s, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, jerr);
}

void expr_value_from_json(const json_t *j, struct pipeline_value *out)
{
    memset(out, 0, sizeof(*out));
    switch (json_typeof(j)) {
    case JSON_TRUE:
    case JSON_FALSE:
        out->kind = PIPELINE_BOOLEAN;
        out->boolean = json_is_true(j);
        break;
    case JSON_INTEGER:
        out->kind = PIPELINE_NUMBER;
        out->number = (double)json_integer_value(j);
        break;
    case JSON_REAL:
        out->kind = PIPELINE_NUMBER;
        out->number = json_real_value(j);
        break;
    case JSON_STRING:
        out->kind = PIPELINE_STRING;
        out->len = json_string_length(j);
        out->str = xmalloc(out->len + 1);
        memcpy(out->str, json_string_value(j), out->len);
        out->str[out->len] = '\0';
        break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        out->kind = json_is_array(j) ? PIPELINE_ARRAY : PIPELINE_OBJECT;
        /* jansson's reference count is atomic, so shared contexts stay safe */
        out->json = json_incref((json_t *)j);
        break;
    default:
        break;
    }
}

int expr_charge(struct expr_eval *ev, size_t len)
{
    /* GitHub's MemoryCounter: two bytes a character plus a string's overhead */
    size_t cost = len > (SIZE_MAX - 26) / 2 ? SIZE_MAX : len * 2 + 26;
    if (cost > ev->max_mem - ev->mem) {
        ev->mem = ev->max_mem;
        return sw_err_set(ev->err, PIPELINE_EEVAL, "The maximum allowed memory size was exceeded");
    }
    ev->mem += cost;
    return 0;
}

/* ---- comparison ------------------------------------------------------------------------- */

/* A borrowed view of a value, coerced for comparison. */
struct cmp {
    enum pipeline_kind kind;
    double number;
    int boolean;
    const char *str;
    size_t len;
    const json_t *json;
};

static struct cmp view(const struct pipeline_value *v)
{
    struct cmp c = {v->kind, v->number, v->boolean, v->str, v->len, v->json};
    return c;
}

static void to_number(struct cmp *c)
{
    double d = c->kind == PIPELINE_NULL      ? 0
               : c->kind == PIPELINE_BOOLEAN ? c->boolean
               : c->kind == PIPELINE_STRING  ? expr_parse_number(c->str, c->len)
               : c->kind == PIPELINE_NUMBER  ? c->number
                                             : NAN;
    c->kind = PIPELINE_NUMBER;
    c->number = d;
}

/* GitHub's coercion of two operands (JavaScript's abstract equality, except
 * that arrays and objects are never turned into primitives). */
static void coerce(struct cmp *l, struct cmp *r)
{
    for (;;) {
        if (l->kind == r->kind)
            return;
        if (l->kind == PIPELINE_NUMBER && r->kind == PIPELINE_STRING) {
            to_number(r);
            return;
        }
        if (l->kind == PIPELINE_STRING && r->kind == PIPELINE_NUMBER) {
            to_number(l);
            return;
        }
        if (l->kind == PIPELINE_NULL || l->kind == PIPELINE_BOOLEAN) {
            to_number(l);
            continue;
        }
        if (r->kind == PIPELINE_NULL || r->kind == PIPELINE_BOOLEAN) {
            to_number(r);
            continue;
        }
        return;
    }
}

/* Strings compare by their upper-cased characters' code points. */
static int compare_fold(const struct cmp *l, const struct cmp *r)
{
    struct buf a = BUF_INIT, b = BUF_INIT;
    int c;

    expr_fold(&a, l->str, l->len);
    expr_fold(&b, r->str, r->len);
    c = memcmp(a.data ? a.data : "", b.data ? b.data : "", a.len < b.len ? a.len : b.len);
    if (c == 0)
        c = a.len < b.len ? -1 : a.len > b.len;
    buf_free(&a);
    buf_free(&b);
    return c;
}

int expr_equals(const struct pipeline_value *a, const struct pipeline_value *b)
{
    struct cmp l = view(a), r = view(b);

    coerce(&l, &r);
    if (l.kind != r.kind)
        return 0;
    switch (l.kind) {
    case PIPELINE_NULL:
        return 1;
    case PIPELINE_NUMBER:
        return l.number == r.number; /* false when either is NaN */
    case PIPELINE_STRING:
        return expr_eq_fold(l.str, l.len, r.str, r.len);
    case PIPELINE_BOOLEAN:
        return l.boolean == r.boolean;
    default:
        return l.json == r.json;
    }
}

/* a > b (greater) or a < b; false whenever the two are not ordered. */
static int ordered(const struct pipeline_value *a, const struct pipeline_value *b, int greater)
{
    struct cmp l = view(a), r = view(b);

    coerce(&l, &r);
    if (l.kind != r.kind)
        return 0;
    if (!greater) {
        struct cmp t = l;
        l = r;
        r = t;
    }
    switch (l.kind) {
    case PIPELINE_NUMBER:
        return l.number > r.number;
    case PIPELINE_STRING:
        return compare_fold(&l, &r) > 0;
    case PIPELINE_BOOLEAN:
        return l.boolean && !r.boolean;
    default:
        return 0;
    }
}

static int compare(enum expr_op op, const struct pipeline_value *a, const struct pipeline_value *b)
{
    switch (op) {
    case OP_EQ:
        return expr_equals(a, b);
    case OP_NE:
        return !expr_equals(a, b);
    case OP_GT:
        return ordered(a, b, 1);
    case OP_GE:
        return expr_equals(a, b) || ordered(a, b, 1);
    case OP_LT:
        return ordered(a, b, 0);
    case OP_LE:
        return expr_equals(a, b) || ordered(a, b, 0);
    }
    return 0;
}

/* ---- property and index access ------------------------------------------------------------ */

/* The value of key in obj, matched ignoring case. The exact spelling is tried
 * first (the usual case, and it makes lookups cheap); otherwise the first key
 * in document order that is equal ignoring case. */
static const json_t *object_get(const json_t *obj, const char *key, size_t len)
{
    const char *k;
    size_t klen;
    json_t *v;

    if (!memchr(key, '\0', len)) {
        v = json_object_getn(obj, key, len);
        if (v)
            return v;
    }
    json_object_keylen_foreach((json_t *)obj, k, klen, v)
    {
        if (expr_eq_fold(k, klen, key, len))
            return v;
    }
    return NULL;
}

/* GitHub's index: an integer index when the value is a number >= 0 (floored),
 * a string key when it is a primitive. */
struct index {
    int star;
    int has_int;
    size_t integer;
    int has_str;
    char *str;
    size_t len;
};

static void index_init(struct index *ix, const struct pipeline_value *v)
{
    memset(ix, 0, sizeof(*ix));
    if (!v) {
        ix->star = 1;
        return;
    }
    if (expr_value_is_primitive(v)) {
        ix->has_str = 1;
        ix->str = pipeline_value_to_string(v, &ix->len);
    }
    double d = expr_value_number(v);
    if (!isnan(d) && d >= 0 && d <= 2147483647.0) { /* .NET's Int32 bound */
        ix->has_int = 1;
        ix->integer = (size_t)floor(d);
    }
}

static int filtered_add(struct expr_eval *ev, json_t *arr, json_t *item)
{
    /* a reference, counted as GitHub counts one (a pointer) */
    if (ev->mem + 8 > ev->max_mem)
        return expr_charge(ev, SIZE_MAX / 4);
    ev->mem += 8;
    json_array_append(arr, item);
    return 0;
}

/* Applies ix to each element of a filtered array, flattening one level. */
static int index_filtered(struct expr_eval *ev, const json_t *fa, const struct index *ix,
                          json_t *result)
{
    size_t i, j;
    json_t *item, *v;
    const char *k;

    json_array_foreach((json_t *)fa, i, item)
    {
        if (json_is_object(item)) {
            if (ix->star) {
                json_object_foreach(item, k, v)
                {
                    if (filtered_add(ev, result, v))
                        return -1;
                }
            } else if (ix->has_str) {
                const json_t *found = object_get(item, ix->str, ix->len);
                if (found && filtered_add(ev, result, (json_t *)found))
                    return -1;
            }
        } else if (json_is_array(item)) {
            if (ix->star) {
                json_array_foreach(item, j, v)
                {
                    if (filtered_add(ev, result, v))
                        return -1;
                }
            } else if (ix->has_int && ix->integer < json_array_size(item)) {
                if (filtered_add(ev, result, json_array_get(item, ix->integer)))
                    return -1;
            }
        }
    }
    return 0;
}

static int eval_index(struct expr_eval *ev, const struct expr_node *n, struct pipeline_value *out)
{
    struct pipeline_value obj = PIPELINE_VALUE_INIT, idx = PIPELINE_VALUE_INIT;
    struct index ix;
    int rc;

    if ((rc = expr_eval_node(ev, n->args[0], &obj)))
        return rc;
    if (n->args[1] && (rc = expr_eval_node(ev, n->args[1], &idx))) {
        pipeline_value_clear(&obj);
        return rc;
    }
    index_init(&ix, n->args[1] ? &idx : NULL);
    if (ix.star || (obj.kind == PIPELINE_ARRAY && obj.filtered)) {
        json_t *result = json_array();
        size_t i;
        const char *k;
        json_t *v;

        if (ev->mem + 24 > ev->max_mem)
            rc = expr_charge(ev, SIZE_MAX / 4);
        else
            ev->mem += 24;
        if (rc) {
        } else if (obj.kind == PIPELINE_ARRAY && obj.filtered) {
            rc = index_filtered(ev, obj.json, &ix, result);
        } else if (obj.kind == PIPELINE_ARRAY) {
            json_array_foreach(obj.json, i, v)
            {
                if ((rc = filtered_add(ev, result, v)))
                    break;
            }
        } else if (obj.kind == PIPELINE_OBJECT) {
            json_object_foreach(obj.json, k, v)
            {
                if ((rc = filtered_add(ev, result, v)))
                    break;
            }
        }
        if (rc) {
            json_decref(result);
        } else {
            out->kind = PIPELINE_ARRAY;
            out->json = result;
            out->filtered = 1;
        }
    } else if (obj.kind == PIPELINE_ARRAY) {
        if (ix.has_int && ix.integer < json_array_size(obj.json))
            expr_value_from_json(json_array_get(obj.json, ix.integer), out);
    } else if (obj.kind == PIPELINE_OBJECT && ix.has_str) {
        const json_t *found = object_get(obj.json, ix.str, ix.len);
        if (found)
            expr_value_from_json(found, out);
    }
    free(ix.str);
    pipeline_value_clear(&obj);
    pipeline_value_clear(&idx);
    return rc;
}

/* ---- nodes ------------------------------------------------------------------------------ */

static void copy_literal(const struct pipeline_value *lit, struct pipeline_value *out)
{
    *out = *lit;
    if (lit->kind == PIPELINE_STRING) {
        out->str = xmalloc(lit->len + 1);
        memcpy(out->str, lit->str, lit->len + 1);
    }
}

int expr_eval_node(struct expr_eval *ev, const struct expr_node *n, struct pipeline_value *out)
{
    struct pipeline_value a = PIPELINE_VALUE_INIT, b = PIPELINE_VALUE_INIT;
    const json_t *found;
    int rc = 0, truth;

    memset(out, 0, sizeof(*out));
    switch (n->type) {
    case N_LITERAL:
        copy_literal(&n->lit, out);
        return 0;
    case N_NAME:
        found = ev->ctx->values && json_is_object(ev->ctx->values)
                    ? object_get(ev->ctx->values, n->name, n->name_len)
                    : NULL;
        if (found)
            expr_value_from_json(found, out);
        return 0;
    case N_INDEX:
        return eval_index(ev, n, out);
    case N_NOT:
        if ((rc = expr_eval_node(ev, n->args[0], &a)))
            return rc;
        truth = pipeline_value_truthy(&a);
        pipeline_value_clear(&a);
        out->kind = PIPELINE_BOOLEAN;
        out->boolean = !truth;
        return 0;
    case N_COMPARE:
        if ((rc = expr_eval_node(ev, n->args[0], &a)))
            return rc;
        for (size_t i = 1; i < n->nargs; i++) {
            if ((rc = expr_eval_node(ev, n->args[i], &b))) {
                pipeline_value_clear(&a);
                return rc;
            }
            truth = compare((enum expr_op)n->ops[i - 1], &a, &b);
            pipeline_value_clear(&a);
            pipeline_value_clear(&b);
            a.kind = PIPELINE_BOOLEAN;
            a.boolean = truth;
        }
        *out = a;
        return 0;
    case N_AND:
    case N_OR:
        /* the value of the operand that decided, as GitHub returns it */
        for (size_t i = 0; i < n->nargs; i++) {
            pipeline_value_clear(out);
            if ((rc = expr_eval_node(ev, n->args[i], out)))
                return rc;
            truth = pipeline_value_truthy(out);
            if (n->type == N_AND ? !truth : truth)
                break;
        }
        return 0;
    case N_CALL:
        return expr_call(ev, n, out);
    }
    return 0;
}

int pipeline_expr_eval(const struct pipeline_expr *e, const struct pipeline_expr_ctx *ctx,
                       struct pipeline_value *out, struct sw_err *err)
{
    static const struct pipeline_expr_ctx none = {0};
    struct expr_eval ev = {ctx ? ctx : &none, 0, 0, err};
    int rc;

    ev.max_mem = ev.ctx->max_memory ? ev.ctx->max_memory : PIPELINE_EXPR_MAX_MEMORY;
    memset(out, 0, sizeof(*out));
    if (!e->root)
        return 0;
    rc = expr_eval_node(&ev, e->root, out);
    if (rc)
        pipeline_value_clear(out);
    return rc;
}
