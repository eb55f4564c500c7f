/*
 * strategy.matrix: the YAML matrix as JSON (for the model), and its
 * expansion into legs with GitHub's rules.
 *
 * The one idea: expansion is a pure function of JSON, so the loader runs it
 * on a matrix written out in full (its faults become load errors, and the
 * 256-leg bound is checked before anything runs) and the runner runs the
 * same function once the expressions of a dynamic matrix are evaluated.
 */
#include "pipeline/internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The product may pass GitHub's bound before exclude trims it; this bounds
 * the work a hostile matrix can ask for. */
#define MAX_PRODUCT 4096

/* A plain scalar typed as YAML's core schema types it. */
static json_t *typed(const struct yaml_node *n)
{
    const char *s = n->str;
    char *end;
    int b;

    if (n->style != YAML_NODE_PLAIN)
        return json_string(s);
    if (yaml_is_null(n))
        return json_null();
    if (yaml_bool(n, &b) == 0)
        return json_boolean(b);
    if (*s && !strpbrk(s, "xXnNiI_ \t")) {
        errno = 0;
        long long i = strtoll(s, &end, 10);
        if (!*end && errno == 0)
            return json_integer(i);
        double d = strtod(s, &end);
        if (!*end && isfinite(d))
            return json_real(d);
    }
    return json_string(s);
}

json_t *wf_matrix_json(struct wf_ld *ld, const struct yaml_node *n, const struct wf_ctx *c,
                       int *has_expr, int depth)
{
    json_t *j;

    if (depth > PIPELINE_WF_MAX_DEPTH) {
        wf_error(ld, n, "the matrix is nested too deeply");
        return NULL;
    }
    if (n->kind == YAML_NODE_SCALAR) {
        if (!strstr(n->str, "${{"))
            return typed(n);
        *has_expr = 1;
        return wf_check_expr(ld, n, n->str, 0, c) ? NULL : json_string(n->str);
    }
    if (n->kind == YAML_NODE_SEQ) {
        j = json_array();
        for (size_t i = 0; i < n->len; i++) {
            json_t *v = wf_matrix_json(ld, n->items[i], c, has_expr, depth + 1);
            if (!v) {
                json_decref(j);
                return NULL;
            }
            json_array_append_new(j, v);
        }
        return j;
    }
    j = json_object();
    for (size_t i = 0; i < n->len; i++) {
        const struct yaml_node *k = n->pairs[i].key, *v = n->pairs[i].value;
        int list = strcmp(k->str, "include") == 0 || strcmp(k->str, "exclude") == 0;
        json_t *jv;
        if (depth == 0 && v->kind != YAML_NODE_SEQ &&
            !(v->kind == YAML_NODE_SCALAR && strstr(v->str, "${{"))) {
            wf_error(ld, v, "matrix: %s must be a sequence%s or an expression, not %s", k->str,
                     list ? " of mappings" : " of values", wf_kind(v));
            json_decref(j);
            return NULL;
        }
        if (!(jv = wf_matrix_json(ld, v, c, has_expr, depth + 1))) {
            json_decref(j);
            return NULL;
        }
        json_object_set_new(j, k->str, jv);
    }
    return j;
}

/* ---- expansion ---------------------------------------------------------------------------- */

static int is_list_key(const char *k)
{
    return strcmp(k, "include") == 0 || strcmp(k, "exclude") == 0;
}

/* legs times the values of dimension k. */
static int multiply(json_t **legs, const char *k, const json_t *values, struct sw_err *err)
{
    size_t n = json_array_size(*legs) * json_array_size(values), i, j;
    json_t *out, *leg, *v;

    if (!json_is_array(values) || json_array_size(values) == 0)
        return sw_err_set(err, PIPELINE_ELOAD, "matrix: '%s' must be a non-empty list of values",
                          k);
    if (n > MAX_PRODUCT)
        return sw_err_set(err, PIPELINE_ELOAD, "the matrix has more than %d combinations",
                          PIPELINE_WF_MAX_MATRIX);
    out = json_array();
    json_array_foreach(*legs, i, leg)
    {
        json_array_foreach(values, j, v)
        {
            json_t *copy = json_copy(leg);
            json_object_set(copy, k, v);
            json_array_append_new(out, copy);
        }
    }
    json_decref(*legs);
    *legs = out;
    return 0;
}

/* An include or exclude list: a sequence of mappings. */
static int entries(const json_t *m, const char *k, const json_t **out, struct sw_err *err)
{
    size_t i;
    const json_t *e;

    *out = json_object_get(m, k);
    if (!*out)
        return 0;
    if (!json_is_array(*out))
        return sw_err_set(err, PIPELINE_ELOAD, "matrix: %s must be a list of mappings", k);
    json_array_foreach(*out, i, e)
    {
        if (!json_is_object(e))
            return sw_err_set(err, PIPELINE_ELOAD, "matrix: each %s entry must be a mapping", k);
    }
    return 0;
}

/* Whether every key of part has the same value in leg (exclude matches partially). */
static int matches(const json_t *part, const json_t *leg)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)part, k, v)
    {
        if (!json_equal(json_object_get(leg, k), (json_t *)v))
            return 0;
    }
    return 1;
}

static void exclude(json_t *legs, const json_t *ex)
{
    size_t i = 0, j;
    const json_t *e;

    while (ex && i < json_array_size(legs)) {
        int drop = 0;
        json_array_foreach(ex, j, e)
        {
            drop |= matches(e, json_array_get(legs, i));
        }
        if (drop)
            json_array_remove(legs, i);
        else
            i++;
    }
}

/* An include entry fits a leg when it changes none of the leg's original
 * (dimension) values; it then adds its keys to the leg. */
static int fits(const json_t *m, const json_t *inc, const json_t *leg)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)inc, k, v)
    {
        const json_t *have = json_object_get(leg, k);
        if (!is_list_key(k) && json_object_get(m, k) && have &&
            !json_equal((json_t *)have, (json_t *)v))
            return 0;
    }
    return 1;
}

static int include(const json_t *m, json_t *legs, const json_t *inc, struct sw_err *err)
{
    size_t n_orig = json_array_size(legs), i, j;
    const json_t *e;

    json_array_foreach(inc, j, e)
    {
        int matched = 0;
        for (i = 0; i < n_orig; i++) {
            json_t *leg = json_array_get(legs, i);
            if (!fits(m, e, leg))
                continue;
            json_object_update(leg, (json_t *)e);
            matched = 1;
        }
        if (!matched && json_array_size(legs) >= PIPELINE_WF_MAX_MATRIX)
            return sw_err_set(err, PIPELINE_ELOAD, "the matrix has more than %d combinations",
                              PIPELINE_WF_MAX_MATRIX);
        if (!matched)
            json_array_append_new(legs, json_copy((json_t *)e));
    }
    return 0;
}

int pipeline_matrix_expand(const json_t *matrix, json_t **out, struct sw_err *err)
{
    json_t *legs = json_array();
    const json_t *ex, *inc, *v;
    const char *k;
    int rc = 0, dims = 0;

    *out = NULL;
    if (!json_is_object(matrix)) {
        json_decref(legs);
        return sw_err_set(err, PIPELINE_ELOAD, "a matrix must be a mapping");
    }
    json_array_append_new(legs, json_object());
    json_object_foreach((json_t *)matrix, k, v)
    {
        if (!rc && !is_list_key(k)) {
            rc = multiply(&legs, k, v, err);
            dims = 1;
        }
    }
    if (!dims)
        json_array_clear(legs);
    if (!rc && !(rc = entries(matrix, "exclude", &ex, err)) &&
        !(rc = entries(matrix, "include", &inc, err))) {
        exclude(legs, ex);
        if (inc)
            rc = include(matrix, legs, inc, err);
    }
    if (!rc && json_array_size(legs) > PIPELINE_WF_MAX_MATRIX)
        rc = sw_err_set(err, PIPELINE_ELOAD, "the matrix has %zu combinations, more than %d",
                        json_array_size(legs), PIPELINE_WF_MAX_MATRIX);
    if (rc) {
        json_decref(legs);
        return rc;
    }
    *out = legs;
    return 0;
}
