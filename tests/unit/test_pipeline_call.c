/* Unit tests for the boundary of a reusable workflow call
 * (src/pipeline/reusable.c): input values typed as GitHub types them, with:
 * against on.workflow_call.inputs (unknown, missing, defaults), secrets
 * (inherit, a map, undeclared, required) and the outputs over the jobs
 * context. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pipeline/call_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char lib[] = "on:\n"
                          "  workflow_call:\n"
                          "    inputs:\n"
                          "      who: {type: string, required: true}\n"
                          "      n: {type: number}\n"
                          "      flag: {type: boolean, default: true}\n"
                          "      s: {type: string}\n"
                          "      d: {type: string, default: '${{ github.ref }}'}\n"
                          "    secrets:\n"
                          "      A: {required: true}\n"
                          "      B:\n"
                          "    outputs:\n"
                          "      x: {value: '${{ jobs.j.outputs.y }}-${{ jobs.j.result }}'}\n"
                          "jobs:\n"
                          "  j:\n"
                          "    runs-on: ubuntu-latest\n"
                          "    steps: [{run: 'true'}]\n";

static struct pipeline_workflow *load(const char *yaml)
{
    struct pipeline_workflow *wf = NULL;
    struct sw_err err = {0};
    int rc = pipeline_workflow_parse(yaml, strlen(yaml), "t.yml", NULL, &wf, &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    return wf;
}

/* A caller workflow whose job 'call' has the given with: and secrets: lines. */
static struct pipeline_workflow *caller(const char *with, const char *secrets)
{
    char *y = xasprintf("on: push\njobs:\n  call:\n    uses: ./.github/workflows/lib.yml\n%s%s",
                        with, secrets);
    struct pipeline_workflow *wf = load(y);
    free(y);
    return wf;
}

static json_t *ctx(void)
{
    return json_pack("{s:{s:s}, s:{s:s, s:s}, s:{s:{s:{s:s}}}}", "github", "ref", "refs/heads/main",
                     "secrets", "A", "a-value", "GITHUB_TOKEN", "tok", "needs", "prep", "outputs",
                     "v", "7");
}

static struct pipeline_input in_of(enum pipeline_input_type t)
{
    struct pipeline_input in = {0};
    in.name = "i";
    in.type = t;
    return in;
}

static struct pipeline_value str(const char *s)
{
    struct pipeline_value v = PIPELINE_VALUE_INIT;
    v.kind = PIPELINE_STRING;
    v.str = (char *)s;
    v.len = strlen(s);
    return v;
}

static void test_input_value_types(void **state)
{
    (void)state;
    struct sw_err err = {0};
    json_t *out = NULL;
    struct pipeline_input b = in_of(PIPELINE_INPUT_BOOLEAN), n = in_of(PIPELINE_INPUT_NUMBER),
                          s = in_of(PIPELINE_INPUT_STRING);
    struct pipeline_value v = PIPELINE_VALUE_INIT;

    /* a boolean takes a Boolean, and the YAML words written as is */
    v.kind = PIPELINE_BOOLEAN;
    v.boolean = 1;
    assert_int_equal(call_input_value(&b, &v, 0, &out, &err), 0);
    assert_true(json_is_true(out));
    json_decref(out);
    struct pipeline_value t = str("false");
    assert_int_equal(call_input_value(&b, &t, 1, &out, &err), 0);
    assert_true(json_is_false(out));
    json_decref(out);
    /* ... but not the text "false" an expression made (an output, github.event.inputs) */
    assert_int_equal(call_input_value(&b, &t, 0, &out, &err), PIPELINE_EEVAL);
    assert_null(out);
    assert_string_equal(err.msg,
                        "input 'i': Unexpected type of value 'false', expected type: Boolean.");
    struct pipeline_value yes = str("yes");
    assert_int_equal(call_input_value(&b, &yes, 1, &out, &err), PIPELINE_EEVAL);

    /* a number takes a Number, or a number written as is */
    v.kind = PIPELINE_NUMBER;
    v.number = 2.5;
    assert_int_equal(call_input_value(&n, &v, 0, &out, &err), 0);
    assert_true(json_is_real(out) && json_real_value(out) == 2.5);
    json_decref(out);
    struct pipeline_value num = str("-1e3");
    assert_int_equal(call_input_value(&n, &num, 1, &out, &err), 0);
    assert_true(json_real_value(out) == -1000);
    json_decref(out);
    assert_int_equal(call_input_value(&n, &num, 0, &out, &err), PIPELINE_EEVAL);
    const char *notnum[] = {"", "0x10", "inf", "nan", "1 2", "many"};
    for (size_t i = 0; i < sizeof(notnum) / sizeof(*notnum); i++) {
        struct pipeline_value x = str(notnum[i]);
        assert_int_equal(call_input_value(&n, &x, 1, &out, &err), PIPELINE_EEVAL);
    }
    v.kind = PIPELINE_BOOLEAN;
    assert_int_equal(call_input_value(&n, &v, 0, &out, &err), PIPELINE_EEVAL);
    assert_string_equal(err.msg,
                        "input 'i': Unexpected type of value 'true', expected type: Number.");

    /* a string takes any scalar as its text; null is "" */
    v.kind = PIPELINE_NUMBER;
    v.number = 3;
    assert_int_equal(call_input_value(&s, &v, 0, &out, &err), 0);
    assert_string_equal(json_string_value(out), "3");
    json_decref(out);
    v.kind = PIPELINE_NULL;
    assert_int_equal(call_input_value(&s, &v, 0, &out, &err), 0);
    assert_string_equal(json_string_value(out), "");
    json_decref(out);
    /* never an array or an object, and the message stays one bounded line */
    struct pipeline_value arr = PIPELINE_VALUE_INIT;
    arr.kind = PIPELINE_ARRAY;
    arr.json = json_array();
    assert_int_equal(call_input_value(&s, &arr, 0, &out, &err), PIPELINE_EEVAL);
    assert_string_equal(err.msg,
                        "input 'i': Unexpected type of value 'Array', expected type: String.");
    pipeline_value_clear(&arr);
    char *big = xcalloc(1, 5001);
    memset(big, 'a', 5000);
    big[10] = '\n';
    struct pipeline_value bv = str(big);
    assert_int_equal(call_input_value(&b, &bv, 0, &out, &err), PIPELINE_EEVAL);
    assert_null(strchr(err.msg, '\n'));
    assert_true(strlen(err.msg) < 300);
    free(big);
}

static void test_inputs(void **state)
{
    (void)state;
    struct pipeline_workflow *called = load(lib), *wf;
    struct sw_err err = {0};
    json_t *values = ctx(), *in = NULL;

    /* with: evaluated with the caller's contexts; the rest take defaults */
    wf = caller("    with:\n      who: w-${{ needs.prep.outputs.v }}\n"
                "      n: ${{ fromJSON(needs.prep.outputs.v) }}\n",
                "");
    assert_int_equal(call_inputs(called, &wf->jobs[0], values, &in, &err), 0);
    char *t = json_dumps(in, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(t, "{\"d\":\"refs/heads/main\",\"flag\":true,\"n\":7.0,\"s\":\"\",\"who\":"
                           "\"w-7\"}");
    free(t);
    json_decref(in);
    pipeline_workflow_free(wf);

    /* a number given as a string from an output is refused */
    wf = caller("    with:\n      who: a\n      n: ${{ needs.prep.outputs.v }}\n", "");
    assert_int_equal(call_inputs(called, &wf->jobs[0], values, &in, &err), PIPELINE_EEVAL);
    assert_null(in);
    assert_string_equal(err.msg, "input 'n': Unexpected type of value '7', expected type: Number.");
    pipeline_workflow_free(wf);

    /* a required input not given; an input not declared */
    wf = caller("    with:\n      n: 1\n", "");
    assert_int_equal(call_inputs(called, &wf->jobs[0], values, &in, &err), PIPELINE_EEVAL);
    assert_string_equal(err.msg, "Input who is required, but not provided while calling.");
    pipeline_workflow_free(wf);
    wf = caller("    with:\n      who: a\n      nope: 1\n", "");
    assert_int_equal(call_inputs(called, &wf->jobs[0], values, &in, &err), PIPELINE_EEVAL);
    assert_string_equal(err.msg, "Invalid input, nope is not defined in the referenced workflow.");
    pipeline_workflow_free(wf);

    /* literal booleans and numbers, as YAML writes them */
    wf = caller("    with:\n      who: a\n      flag: false\n      n: 1.5\n", "");
    assert_int_equal(call_inputs(called, &wf->jobs[0], values, &in, &err), 0);
    assert_true(json_is_false(json_object_get(in, "flag")));
    assert_true(json_real_value(json_object_get(in, "n")) == 1.5);
    json_decref(in);
    pipeline_workflow_free(wf);
    wf = caller("    with:\n      who: a\n      flag: TRUE\n", "");
    assert_int_equal(call_inputs(called, &wf->jobs[0], values, &in, &err), 0);
    assert_true(json_is_true(json_object_get(in, "flag")));
    json_decref(in);
    pipeline_workflow_free(wf);

    /* quoted, they are text (GitHub's reader keeps the quoting): refused for
     * a boolean or a number, taken as is by a string */
    const char *quoted[][2] = {
        {"flag: \"true\"",
         "input 'flag': Unexpected type of value 'true', expected type: Boolean."},
        {"flag: 'false'",
         "input 'flag': Unexpected type of value 'false', expected type: Boolean."},
        {"flag: |-\n        true",
         "input 'flag': Unexpected type of value 'true', expected type: Boolean."},
        {"n: '1'", "input 'n': Unexpected type of value '1', expected type: Number."},
        {"n: \"2.5\"", "input 'n': Unexpected type of value '2.5', expected type: Number."},
    };
    for (size_t i = 0; i < sizeof(quoted) / sizeof(*quoted); i++) {
        char *w = xasprintf("    with:\n      who: a\n      %s\n", quoted[i][0]);
        wf = caller(w, "");
        free(w);
        assert_true(wf->jobs[0].with.items[1].val.quoted);
        assert_int_equal(call_inputs(called, &wf->jobs[0], values, &in, &err), PIPELINE_EEVAL);
        assert_null(in);
        assert_string_equal(err.msg, quoted[i][1]);
        pipeline_workflow_free(wf);
    }
    wf = caller("    with:\n      who: \"true\"\n      s: '12'\n", "");
    assert_int_equal(call_inputs(called, &wf->jobs[0], values, &in, &err), 0);
    assert_string_equal(json_string_value(json_object_get(in, "who")), "true");
    assert_string_equal(json_string_value(json_object_get(in, "s")), "12");
    json_decref(in);
    pipeline_workflow_free(wf);

    json_decref(values);
    pipeline_workflow_free(called);
}

static void test_secrets_and_outputs(void **state)
{
    (void)state;
    struct pipeline_workflow *called = load(lib), *wf;
    struct sw_err err = {0};
    json_t *values = ctx(), *s = NULL;

    /* inherit: every secret */
    wf = caller("", "    secrets: inherit\n");
    assert_int_equal(call_secrets(called, &wf->jobs[0], values, &s, &err), 0);
    assert_string_equal(json_string_value(json_object_get(s, "A")), "a-value");
    assert_string_equal(json_string_value(json_object_get(s, "GITHUB_TOKEN")), "tok");
    json_decref(s);
    pipeline_workflow_free(wf);

    /* a map: only those named, each declared; the token always */
    wf = caller("", "    secrets:\n      A: ${{ secrets.A }}-x\n");
    assert_int_equal(call_secrets(called, &wf->jobs[0], values, &s, &err), 0);
    assert_int_equal(json_object_size(s), 2);
    assert_string_equal(json_string_value(json_object_get(s, "A")), "a-value-x");
    assert_string_equal(json_string_value(json_object_get(s, "GITHUB_TOKEN")), "tok");
    json_decref(s);
    pipeline_workflow_free(wf);
    wf = caller("", "    secrets:\n      A: a\n      C: c\n");
    assert_int_equal(call_secrets(called, &wf->jobs[0], values, &s, &err), PIPELINE_EEVAL);
    assert_string_equal(err.msg, "Invalid secret, C is not defined in the referenced workflow.");
    pipeline_workflow_free(wf);
    wf = caller("", "    secrets:\n      B: b\n");
    assert_int_equal(call_secrets(called, &wf->jobs[0], values, &s, &err), PIPELINE_EEVAL);
    assert_string_equal(err.msg, "Secret A is required, but not provided while calling.");
    assert_null(s);
    pipeline_workflow_free(wf);

    /* outputs: expressions over the jobs context */
    json_t *jv = json_pack("{s:{s:{s:s, s:{s:s}}}}", "jobs", "j", "result", "success", "outputs",
                           "y", "why");
    json_t *out = json_object();
    assert_int_equal(call_outputs(called, jv, out, &err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "x")), "why-success");
    json_decref(out);
    json_decref(jv);

    json_decref(values);
    pipeline_workflow_free(called);
}

static void test_file_and_load(void **state)
{
    (void)state;
    struct pipeline_uses u = {0};
    struct pipeline_workflow *wf = NULL;
    struct sw_err err = {0};

    u.path = "./.github/workflows/lib.yml";
    char *f = call_file(&u);
    assert_string_equal(f, ".github/workflows/lib.yml");
    assert_int_equal(call_load(NULL, "0123", f, 0, &wf, &err), SW_EINVAL);
    assert_null(wf);
    free(f);
    assert_int_equal(call_load("/nonexistent", "0123", "-x", 0, &wf, &err), SW_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_value_types),
        cmocka_unit_test(test_inputs),
        cmocka_unit_test(test_secrets_and_outputs),
        cmocka_unit_test(test_file_and_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
