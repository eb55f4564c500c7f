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
        json_array_foreach(got, i, v)
        {
            if (!same(v, json_array_get(want, i)))
                return 0;
        }
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
        json_object_foreach((json_t *)context, k, v)
        {
            if (nnames < 255)
                names[nnames++] = k;
        }
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

/* ---- the language beyond the suite --------------------------------------------------- */

static void test_numbers(void **state)
{
    /* .NET's G15 when a number becomes text */
    assert_string_equal(run("format('{0}', 1e15)", NULL), "String:1E+15");
    assert_string_equal(run("format('{0}', 123456789012345)", NULL), "String:123456789012345");
    assert_string_equal(run("format('{0}', 0.0001)", NULL), "String:0.0001");
    assert_string_equal(run("format('{0}', 0.00001)", NULL), "String:1E-05");
    assert_string_equal(run("format('{0}', -1.5e300)", NULL), "String:-1.5E+300");
    assert_string_equal(run("format('{0}', 1/0)", NULL),
                        "error: Unexpected symbol: '1/0'. Located at position 15 within "
                        "expression: format('{0}', 1/0)");
    assert_string_equal(run("fromJSON('12345678901234567890')", NULL),
                        "Number:1.23456789012346E+19");
    /* JavaScript's shortest form inside toJSON */
    assert_string_equal(run("toJSON(0.1)", NULL), "String:0.1");
    assert_string_equal(run("toJSON(1e21)", NULL), "String:1e+21");
    assert_string_equal(run("toJSON(1e-7)", NULL), "String:1e-7");
    assert_string_equal(run("toJSON(123e-20)", NULL), "String:1.23e-18");
    assert_string_equal(run("toJSON(NaN)", NULL), "String:null");
    assert_string_equal(run("toJSON(fromJSON('[1.5, -0, 100]'))", NULL),
                        "String:[\n  1.5,\n  0,\n  100\n]");
    /* JavaScript's Number() for strings */
    assert_string_equal(run("'0b101' == 5", NULL), "Boolean:true");
    assert_string_equal(run("' 1e3 ' == 1000", NULL), "Boolean:true");
    assert_string_equal(run("'1e' == 1", NULL), "Boolean:false");
    assert_string_equal(run("'-0x10' == -16", NULL), "Boolean:false");
    assert_string_equal(run("'\t12\n' == 12", NULL), "Boolean:true");
    assert_string_equal(run("0x10 == 16 && 0o10 == 8 && 1.e1 == 10", NULL), "Boolean:true");
}

static void test_strings(void **state)
{
    /* case folding beyond ASCII, but never ı to I */
    assert_string_equal(run("'straße' == 'STRASSE'", NULL), "Boolean:false");
    assert_string_equal(run("'ǅ' == 'Ǆ' && 'ǆ' == 'ǅ'", NULL), "Boolean:true");
    assert_string_equal(run("contains('ÉCOLE', 'école')", NULL), "Boolean:true");
    assert_string_equal(run("'b' > 'A' && 'B' > 'a' && 'é' > 'z'", NULL), "Boolean:true");
    /* quotes, NULs, and bytes that are not UTF-8 pass through */
    assert_string_equal(run("'it''s ''quoted'''", NULL), "String:it's 'quoted'");
    assert_string_equal(run("toJSON(s)", "{\"s\": \"a\\u0000b\\u001f\\u007f\"}"),
                        "String:\"a\\u0000b\\u001f\x7f\"");
    assert_string_equal(run("s == 'A'", "{\"s\": \"a\"}"), "Boolean:true");
    assert_string_equal(run("'\xff' == '\xff' && '\xff' != '\xfe' && '\xc3' != '\xc3\xa9'", NULL),
                        "Boolean:true");
    assert_string_equal(run("toJSON('\xff')", NULL), "String:\"\xef\xbf\xbd\"");
    /* format() specifiers are refused, as on GitHub for anything but dates */
    assert_string_equal(run("format('{0:yyyy}', 1)", NULL),
                        "error: The format specifiers 'yyyy' are not valid for objects of type "
                        "'Number'");
    assert_string_equal(run("format('{256}')", NULL),
                        "error: The following format string is invalid: {256}");
    /* unused arguments of format() and case() are never evaluated */
    assert_string_equal(run("format('x', fromJSON(''))", NULL), "String:x");
    assert_string_equal(run("case(true, 1, fromJSON(''))", NULL), "Number:1");
    assert_string_equal(run("case(false, fromJSON(''), 2)", NULL), "Number:2");
}

static void test_containers(void **state)
{
    const char *ctx = "{\"a\": {\"B\": [1, {\"c\": 2}], \"b\": 9}, \"o\": {}}";

    /* identity equality: the same object, not an equal one */
    assert_string_equal(run("a == a && a.B == A.B && o != fromJSON('{}')", ctx), "Boolean:true");
    assert_string_equal(run("fromJSON('[]') == fromJSON('[]')", NULL), "Boolean:false");
    /* an exact spelling first, else the first key in document order that matches */
    assert_string_equal(run("a.b", ctx), "Number:9");
    assert_string_equal(run("toJSON(a.B)", ctx), "String:[\n  1,\n  {\n    \"c\": 2\n  }\n]");
    assert_string_equal(run("a.B[1].C", ctx), "Number:2");
    assert_string_equal(run("a.*[1].c", ctx), "Array:Array");
    assert_string_equal(run("toJSON(a.*[1].c)", ctx), "String:[\n  2\n]");
    assert_string_equal(run("a.B[2147483648] == null && a.B[1e300] == null", ctx), "Boolean:true");
    assert_string_equal(run("toJSON(o)", ctx), "String:{}");
    assert_string_equal(run("join(a.B.*, '+')", ctx), "String:1+Object");
    /* && and || return the deciding operand */
    assert_string_equal(run("o || 1", ctx), "Object:Object");
    assert_string_equal(run("'' || null", ctx), "Null:");
}

static void test_names_and_functions(void **state)
{
    const char *names[] = {"GitHub", "env", NULL};
    struct pipeline_expr_opts opts = {names, 0};
    struct pipeline_expr *e = NULL;
    struct sw_err err = {0};
    size_t at = 99;
    enum pipeline_status st;

    assert_int_equal(pipeline_expr_parse("github.ref && ENV.x", 19, &opts, &e, &at, &err), 0);
    pipeline_expr_free(e);
    assert_int_equal(pipeline_expr_parse("github.ref && vars.x", 20, &opts, &e, &at, &err),
                     PIPELINE_ESYNTAX);
    assert_null(e);
    assert_int_equal(at, 14);
    assert_string_equal(err.msg, "Unrecognized named-value: 'vars'. Located at position 15 "
                                 "within expression: github.ref && vars.x");
    /* status functions and hashFiles can be refused where GitHub has none */
    opts.flags = PIPELINE_EXPR_NO_STATUS | PIPELINE_EXPR_NO_HASHFILES;
    assert_int_equal(pipeline_expr_parse("success()", 9, &opts, &e, &at, &err), PIPELINE_ESYNTAX);
    assert_non_null(strstr(err.msg, "Unrecognized function: 'success'"));
    assert_int_equal(pipeline_expr_parse("hashFiles('x')", 14, &opts, &e, &at, &err),
                     PIPELINE_ESYNTAX);
    assert_int_equal(pipeline_expr_parse("toJSON(env)", 11, &opts, &e, &at, &err), 0);
    assert_false(pipeline_expr_has_status(e));
    pipeline_expr_free(e);
    assert_int_equal(pipeline_expr_parse("ALWAYS() || x", 13, NULL, &e, &at, &err), 0);
    assert_true(pipeline_expr_has_status(e));
    pipeline_expr_free(e);
    /* keywords are case-sensitive, as on GitHub: True is a name */
    assert_string_equal(run("True", "{\"true\": 5}"), "Number:5");
    /* positions count characters; err_at counts bytes */
    assert_int_equal(pipeline_expr_parse("'\xc3\xa9' 2", 6, NULL, &e, &at, &err), PIPELINE_ESYNTAX);
    assert_int_equal(at, 5);
    assert_non_null(strstr(err.msg, "Located at position 5 "));
    /* a NUL, or a very long token, never cuts the position out of the message */
    assert_int_equal(pipeline_expr_parse("'a\0b' == x\0", 11, NULL, &e, &at, &err),
                     PIPELINE_ESYNTAX);
    assert_string_equal(err.msg, "Unexpected symbol: 'x\\0'. Located at position 10 within "
                                 "expression: 'a\\0b' == x\\0");
    char word[3001];
    memset(word, 'w', 3000);
    word[0] = '@';
    word[3000] = '\0';
    assert_int_equal(pipeline_expr_parse(word, 3000, NULL, &e, &at, &err), PIPELINE_ESYNTAX);
    assert_non_null(strstr(err.msg, "wwww...'. Located at position 1 within expression: @ww"));
    /* statuses */
    assert_int_equal(pipeline_status_parse("Cancelled", &st), 0);
    assert_int_equal(st, PIPELINE_STATUS_CANCELLED);
    assert_int_equal(pipeline_status_parse("done", &st), SW_EINVAL);
    struct pipeline_expr_ctx c = {.job_status = PIPELINE_STATUS_FAILURE};
    assert_string_equal(run_ctx("failure() && !success() && !cancelled() && always()", NULL, &c),
                        "Boolean:true");
    c.in_composite = 1; /* inside a composite action its own status counts */
    assert_string_equal(run_ctx("success()", NULL, &c), "Boolean:true");
    c.action_status = PIPELINE_STATUS_SKIPPED;
    assert_string_equal(run_ctx("success() || failure()", NULL, &c), "Boolean:false");
}

/* Hostile shapes: every bound holds and nothing recurses without limit. */
static void test_limits(void **state)
{
    struct pipeline_expr *e = NULL;
    struct pipeline_value v = PIPELINE_VALUE_INIT;
    struct sw_err err = {0};
    struct buf b = BUF_INIT;
    size_t at;

    /* length */
    for (int i = 0; i < 21001; i++)
        buf_adds(&b, " ");
    assert_int_equal(pipeline_expr_parse(b.data, b.len, NULL, &e, &at, &err), PIPELINE_ESYNTAX);
    assert_string_equal(err.msg, "Exceeded max expression length 21000");
    assert_int_equal(pipeline_expr_parse(b.data, b.len - 1, NULL, &e, &at, &err), 0);
    pipeline_expr_free(e);
    /* nesting: parentheses, !, calls, and index steps stop at 50 */
    const char *shapes[] = {"(", "!", "toJSON(", "a["};
    for (size_t s = 0; s < 4; s++) {
        buf_reset(&b);
        for (int i = 0; i < 7000 / (int)strlen(shapes[s]); i++)
            buf_adds(&b, shapes[s]);
        buf_adds(&b, "1");
        assert_int_equal(pipeline_expr_parse(b.data, b.len, NULL, &e, &at, &err), PIPELINE_ESYNTAX);
        assert_non_null(strstr(err.msg, "Exceeded max expression depth 50"));
        assert_true(at <= b.len);
    }
    /* long flat chains are fine: they are not nested */
    const char *ops[] = {" == ", " || ", " && ", " < "};
    for (size_t s = 0; s < 4; s++) {
        buf_reset(&b);
        buf_adds(&b, "1");
        for (int i = 0; i < 4000; i++) {
            buf_adds(&b, ops[s]);
            buf_adds(&b, "1");
        }
        assert_int_equal(pipeline_expr_parse(b.data, b.len, NULL, &e, &at, &err), 0);
        assert_int_equal(pipeline_expr_eval(e, NULL, &v, &err), 0);
        pipeline_value_clear(&v);
        pipeline_expr_free(e);
    }
    /* memory: strings built past the budget fail the evaluation */
    buf_reset(&b);
    buf_adds(&b, "format('");
    for (int i = 0; i < 250; i++)
        buf_adds(&b, "{0}");
    buf_adds(&b, "', format('");
    for (int i = 0; i < 250; i++)
        buf_adds(&b, "{0}");
    buf_adds(&b, "', 'abcdefghijklmnopqrstuvwxyz'))");
    assert_int_equal(pipeline_expr_parse(b.data, b.len, NULL, &e, &at, &err), 0);
    assert_int_equal(pipeline_expr_eval(e, NULL, &v, &err), PIPELINE_EEVAL);
    assert_string_equal(err.msg, "The maximum allowed memory size was exceeded");
    assert_int_equal(v.kind, PIPELINE_NULL);
    /* ... and a larger budget lets it through */
    struct pipeline_expr_ctx big = {.max_memory = 16 * 1024 * 1024};
    assert_int_equal(pipeline_expr_eval(e, &big, &v, &err), 0);
    assert_int_equal(v.len, 250 * 250 * 26);
    pipeline_value_clear(&v);
    pipeline_expr_free(e);
    /* filters over a wide document are counted too */
    struct pipeline_expr_ctx small = {.max_memory = 200};
    assert_string_equal(
        run_ctx("toJSON(x.*.*.*)", "{\"x\": [[[1,2,3,4,5,6,7,8],[1,2,3,4,5,6,7,8]]]}", &small),
        "error: The maximum allowed memory size was exceeded");
    buf_free(&b);
}

static void test_json_round_trip(void **state)
{
    const char *doc = "{\"s\": \"caf\\u00e9 \\\"q\\\" \\\\ \\n\", \"n\": [0.1, -2, 1e+300, 3.5e-9],"
                      " \"t\": true, \"z\": null, \"e\": {}, \"a\": []}";
    char ctx[512];
    struct pipeline_value v = {.kind = PIPELINE_NUMBER, .number = NAN};
    json_t *j;

    snprintf(ctx, sizeof(ctx), "{\"x\": %s}", doc);
    assert_string_equal(run("toJSON(fromJSON(toJSON(x))) == toJSON(x)", ctx), "Boolean:true");
    assert_string_equal(run("fromJSON(toJSON(x)).n[2] == 1e300", ctx), "Boolean:true");
    assert_string_equal(run("fromJSON('  ')", NULL), "error: Error parsing fromJson: empty input");
    assert_non_null(strstr(run("fromJSON('{')", NULL), "error: Error parsing fromJson: "));
    /* a value converted for the caller: NaN is not JSON */
    j = pipeline_value_to_json(&v);
    assert_true(json_is_null(j));
    json_decref(j);
    v.number = 3;
    j = pipeline_value_to_json(&v);
    assert_true(json_is_integer(j));
    json_decref(j);
}

static void test_template(void **state)
{
    const char *doc = "{\"matrix\": {\"os\": \"linux\", \"n\": [1]}}";
    json_t *values = pipeline_json_load(doc, strlen(doc), NULL);
    struct pipeline_expr_ctx ctx = {.values = values};
    struct pipeline_value v = PIPELINE_VALUE_INIT;
    struct sw_err err = {0};
    size_t at = 0;
    const char *t;

    t = "Build ${{ matrix.os }} #${{ 1 + 1 }}";
    assert_int_equal(pipeline_expr_template(t, strlen(t), NULL, &ctx, &v, &at, &err),
                     PIPELINE_ESYNTAX);
    assert_int_equal(at, 30); /* the '+' (not a number), inside the template */
    t = "Build ${{ matrix.os }} on ${{ matrix.n }} x${{ 2 }}y ${{ '}}' }}";
    assert_int_equal(pipeline_expr_template(t, strlen(t), NULL, &ctx, &v, &at, &err), 0);
    assert_int_equal(v.kind, PIPELINE_STRING);
    assert_string_equal(v.str, "Build linux on Array x2y }}");
    pipeline_value_clear(&v);
    /* exactly one expression keeps its kind; anything around it makes text */
    t = "${{ matrix.n }}";
    assert_int_equal(pipeline_expr_template(t, strlen(t), NULL, &ctx, &v, &at, &err), 0);
    assert_int_equal(v.kind, PIPELINE_ARRAY);
    pipeline_value_clear(&v);
    t = " ${{ 3 }}";
    assert_int_equal(pipeline_expr_template(t, strlen(t), NULL, &ctx, &v, &at, &err), 0);
    assert_int_equal(v.kind, PIPELINE_STRING);
    assert_string_equal(v.str, " 3");
    pipeline_value_clear(&v);
    t = "no expression {{ here }}";
    assert_int_equal(pipeline_expr_template(t, strlen(t), NULL, &ctx, &v, &at, &err), 0);
    assert_string_equal(v.str, t);
    pipeline_value_clear(&v);
    /* faults and where they are */
    t = "ok ${{ matrix.os ";
    assert_int_equal(pipeline_expr_template(t, strlen(t), NULL, &ctx, &v, &at, &err),
                     PIPELINE_ESYNTAX);
    assert_int_equal(at, 3);
    assert_non_null(strstr(err.msg, "The expression is not closed"));
    t = "a ${{ }} b";
    assert_int_equal(pipeline_expr_template_check(t, strlen(t), NULL, &at, &err), PIPELINE_ESYNTAX);
    assert_string_equal(err.msg, "An expression was expected");
    t = "x ${{ fromJSON('{') }}";
    assert_int_equal(pipeline_expr_template_check(t, strlen(t), NULL, &at, &err), 0);
    assert_int_equal(pipeline_expr_template(t, strlen(t), NULL, &ctx, &v, &at, &err),
                     PIPELINE_EEVAL);
    assert_int_equal(at, 2);
    assert_int_equal(v.kind, PIPELINE_NULL);
    json_decref(values);
}

static int cond(const char *src, enum pipeline_status job)
{
    struct pipeline_expr_ctx ctx = {.job_status = job};
    struct sw_err err = {0};
    size_t at = 0;
    int result = -1;
    int rc = pipeline_expr_condition(src, strlen(src), NULL, &ctx, &result, &at, &err);
    return rc ? rc : result;
}

static void test_condition(void **state)
{
    enum pipeline_status ok = PIPELINE_STATUS_SUCCESS, failed = PIPELINE_STATUS_FAILURE;

    assert_int_equal(cond("", ok), 1);
    assert_int_equal(cond("  ", failed), 0);
    assert_int_equal(cond("true", ok), 1);
    /* no status function: success() && (...) */
    assert_int_equal(cond("true", failed), 0);
    assert_int_equal(cond("${{ true }}", failed), 0);
    assert_int_equal(cond("failure()", failed), 1);
    assert_int_equal(cond("${{ always() }}", failed), 1);
    assert_int_equal(cond(" ${{ failure() && 1 == 1 }} ", failed), 1);
    assert_int_equal(cond("${{ failure() && false }}\n", failed), 0); /* "if: |" */
    assert_int_equal(cond("cancelled()", failed), 0);
    assert_int_equal(cond("0", ok), 0);
    assert_int_equal(cond("'false'", ok), 1);
    /* text around ${{ }} makes a string, true when not empty (a known GitHub trap) */
    assert_int_equal(cond("${{ false }} && true", ok), 1);
    assert_int_equal(cond("${{ false }} && true", failed), 0);
    /* the condition is not evaluated when success() already decided */
    assert_int_equal(cond("fromJSON('')", failed), 0);
    assert_int_equal(cond("fromJSON('')", ok), PIPELINE_EEVAL);
    assert_int_equal(cond("1 ==", ok), PIPELINE_ESYNTAX);
}

/* ---- hashFiles --------------------------------------------------------------------------- */

static void put(const char *dir, const char *name, const char *body)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(body, f);
    fclose(f);
}

/* GitHub's digest of the given bodies, in order: sha256 of their raw sha256s. */
static void digest(const char *const *bodies, size_t n, char out[65])
{
    struct sha256_ctx *c = sha256_new();
    for (size_t i = 0; i < n; i++) {
        char hex[65];
        unsigned char raw[32];
        sha256_hex(bodies[i], strlen(bodies[i]), hex);
        for (int k = 0; k < 32; k++) {
            unsigned x;
            assert_int_equal(sscanf(hex + 2 * k, "%2x", &x), 1);
            raw[k] = (unsigned char)x;
        }
        sha256_update(c, raw, 32);
    }
    sha256_final_hex(c, out);
}

static char *hash(const char *ws, const char *expr)
{
    struct pipeline_expr_ctx ctx = {.workspace = ws};
    return xstrdup(run_ctx(expr, NULL, &ctx));
}

static void expect_hash(const char *ws, const char *expr, const char *want)
{
    char *got = hash(ws, expr);
    assert_string_equal(got, want);
    free(got);
}

static void test_hash_files(void **state)
{
    char tmpl[] = "/tmp/sw-hash-XXXXXX", ws[600], want[65], p[700];
    char *root = mkdtemp(tmpl), *a, *b;

    assert_non_null(root);
    snprintf(ws, sizeof(ws), "%s/ws", root);
    assert_int_equal(mkdir(ws, 0755), 0);
    put(root, "secret.txt", "outside");
    put(ws, "b.txt", "B");
    put(ws, "a.txt", "A");
    put(ws, ".hidden.txt", "H");
    snprintf(p, sizeof(p), "%s/src", ws);
    assert_int_equal(mkdir(p, 0755), 0);
    put(p, "z.txt", "Z");
    put(p, "m.c", "M");
    snprintf(p, sizeof(p), "%s/src/fifo.txt", ws);
    assert_int_equal(mkfifo(p, 0644), 0);
    snprintf(p, sizeof(p), "%s/link.txt", ws);
    assert_int_equal(symlink("../secret.txt", p), 0);
    snprintf(p, sizeof(p), "%s/inlink.txt", ws);
    assert_int_equal(symlink("a.txt", p), 0);
    snprintf(p, sizeof(p), "%s/out", ws);
    assert_int_equal(symlink("..", p), 0);
    snprintf(p, sizeof(p), "%s/empty", ws); /* a directory with nothing to sort */
    assert_int_equal(mkdir(p, 0755), 0);

    /* depth first, names in byte order: .hidden.txt a.txt b.txt inlink.txt src/z.txt;
     * the fifo is never opened, the link out of the workspace never read */
    const char *all[] = {"H", "A", "B", "A", "Z"};
    digest(all, 5, want);
    snprintf(p, sizeof(p), "String:%s", want);
    expect_hash(ws, "hashFiles('**/*.txt')", p);
    expect_hash(ws, "hashFiles('--follow-symbolic-links', '**/*.txt')", p);
    /* several patterns, comments, negation (the last one wins) and a second root */
    const char *some[] = {"A", "B", "M"};
    digest(some, 3, want);
    snprintf(p, sizeof(p), "String:%s", want);
    expect_hash(ws,
                "hashFiles('*.txt\n# comment\n!.hidden.txt\n!inlink.txt', 'src/*.c', "
                "'!link.txt')",
                p);
    /* a directory names everything below it */
    const char *src[] = {"M", "Z"};
    digest(src, 2, want);
    snprintf(p, sizeof(p), "String:%s", want);
    expect_hash(ws, "hashFiles('src')", p);
    expect_hash(ws, "hashFiles('../ws/src/*')", p); /* up and back in: still inside */
    expect_hash(ws, "hashFiles('./src/../src/')", p);
    /* nothing matched, or only what is outside the workspace: "" */
    expect_hash(ws, "hashFiles('*.none')", "String:");
    expect_hash(ws, "hashFiles('../*.txt', '/etc/passwd', 'out/*.txt', '/**/secret.txt')",
                "String:");
    expect_hash(ws, "hashFiles('link.txt')", "String:");
    snprintf(p, sizeof(p), "%s/~", ws); /* "~/" is the home directory, not this one */
    assert_int_equal(mkdir(p, 0755), 0);
    put(p, "a.txt", "A");
    expect_hash(ws, "hashFiles('~/a.txt', '~')", "String:");
    expect_hash(ws, "hashFiles('--follow-symbolic-links', 'out/**')", "String:");
    /* options, and no workspace */
    a = hash(ws, "hashFiles('--follow-symbolic-links', 'src/m.c')");
    b = hash(ws, "hashFiles('src/m.c')");
    assert_string_equal(a, b);
    free(a);
    free(b);
    a = hash(ws, "hashFiles('--bogus', 'x')");
    assert_non_null(strstr(a, "error: Invalid glob option"));
    free(a);
    expect_hash(NULL, "hashFiles('x')", "error: hashFiles() needs a workspace");

    snprintf(p, sizeof(p), "rm -rf '%s'", root);
    assert_int_equal(system(p), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conformance),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_names_and_functions),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_template),
        cmocka_unit_test(test_condition),
        cmocka_unit_test(test_hash_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
