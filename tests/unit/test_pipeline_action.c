/*
 * Unit tests for the action loader (src/pipeline/action.c): the model of a
 * good composite action (inputs, outputs, steps of both kinds, nested local
 * actions and built-ins), every load error at its line and column, the
 * warnings for keys GitHub ignores, skip mode, and pipeline_action_load's
 * choice of action.yml or action.yaml in a directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pipeline/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct pipeline_action *act_of(const char *yaml, unsigned flags, int *rc)
{
    struct pipeline_load_opts o = {flags};
    struct pipeline_action *a = NULL;
    struct sw_err err = {0};

    *rc = pipeline_action_parse(yaml, strlen(yaml), "a/action.yml", &o, &a, &err);
    assert_non_null(a);
    assert_int_equal(*rc == 0, a->n_errors == 0);
    if (*rc) {
        assert_int_equal(*rc, PIPELINE_ELOAD);
        assert_non_null(strstr(err.msg, "a/action.yml:"));
    }
    return a;
}

static struct pipeline_action *ok(const char *yaml)
{
    int rc;
    struct pipeline_action *a = act_of(yaml, 0, &rc);
    for (size_t i = 0; i < a->n_errors; i++)
        printf("# unexpected: %s\n", a->errors[i].text);
    assert_int_equal(rc, 0);
    return a;
}

/* 1 when diags hold one at line:col (col 0: any) whose text holds what. */
static int has(const struct pipeline_diag *d, size_t n, size_t line, size_t col, const char *what)
{
    char prefix[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(prefix, sizeof(prefix), "a/action.yml:%zu:%zu: ", d[i].line, d[i].col);
        assert_true(strncmp(d[i].text, prefix, strlen(prefix)) == 0);
        if (d[i].line == line && (!col || d[i].col == col) && strstr(d[i].text, what))
            return 1;
    }
    for (size_t i = 0; i < n; i++)
        printf("# have: %s\n", d[i].text);
    return 0;
}

/* yaml must fail with an error at line:col holding what. */
static void bad(const char *yaml, size_t line, size_t col, const char *what)
{
    int rc;
    struct pipeline_action *a = act_of(yaml, 0, &rc);
    assert_int_equal(rc, PIPELINE_ELOAD);
    if (!has(a->errors, a->n_errors, line, col, what))
        fail_msg("no error at %zu:%zu with '%s'", line, col, what);
    pipeline_action_free(a);
}

/* yaml loads, with a warning at line:col holding what. */
static void warns(const char *yaml, size_t line, size_t col, const char *what)
{
    struct pipeline_action *a = ok(yaml);
    if (!has(a->warnings, a->n_warnings, line, col, what))
        fail_msg("no warning at %zu:%zu with '%s'", line, col, what);
    pipeline_action_free(a);
}

#define RUNS "runs:\n  using: composite\n  steps:\n    - run: echo\n      shell: bash\n"

static void test_model(void **state)
{
    struct pipeline_action *a =
        ok("name: Hello\n"
           "description: says hello\n"
           "author: someone\n"
           "branding:\n"
           "  icon: sun\n"
           "  color: yellow\n"
           "inputs:\n"
           "  who:\n"
           "    description: whom\n"
           "    default: ${{ github.actor }}\n"
           "    deprecationMessage: use name\n"
           "  name:\n"
           "    required: true\n"
           "  quoted:\n"
           "    required: 'false'\n"
           "  bare:\n"
           "outputs:\n"
           "  greeting:\n"
           "    description: the text\n"
           "    value: ${{ steps.say.outputs.text }}\n"
           "runs:\n"
           "  using: composite\n"
           "  steps:\n"
           "    - id: say\n"
           "      name: Say ${{ inputs.who }}\n"
           "      if: inputs.who != ''\n"
           "      shell: bash\n"
           "      working-directory: sub\n"
           "      env:\n"
           "        X: ${{ env.Y }}\n"
           "      continue-on-error: true\n"
           "      run: echo \"text=${{ inputs.who }}\" >> \"$GITHUB_OUTPUT\"\n"
           "    - uses: ./.github/actions/inner\n"
           "      with:\n"
           "        a: ${{ steps.say.outputs.text }}\n"
           "    - uses: actions/checkout@v4\n"
           "      if: failure()\n");
    (void)state;
    assert_string_equal(a->file, "a/action.yml");
    assert_string_equal(a->name.s, "Hello");
    assert_string_equal(a->description.s, "says hello");
    assert_string_equal(a->author.s, "someone");
    assert_string_equal(a->using.s, "composite");
    assert_int_equal(a->n_inputs, 4);
    assert_string_equal(a->inputs[0].name, "who");
    assert_int_equal(a->inputs[0].line, 8);
    assert_true(a->inputs[0].def.expr);
    assert_string_equal(a->inputs[0].deprecation_message.s, "use name");
    assert_false(a->inputs[0].required.b);
    assert_true(a->inputs[1].required.b);
    assert_null(a->inputs[1].def.s);
    assert_false(a->inputs[2].required.b);
    assert_string_equal(a->inputs[3].name, "bare");
    assert_int_equal(a->n_outputs, 1);
    assert_string_equal(a->outputs[0].name, "greeting");
    assert_string_equal(a->outputs[0].value.s, "${{ steps.say.outputs.text }}");
    assert_int_equal(a->outputs[0].value.line, 20);
    assert_int_equal(a->n_steps, 3);
    assert_string_equal(a->steps[0].id.s, "say");
    assert_string_equal(a->steps[0].shell.s, "bash");
    assert_string_equal(a->steps[0].working_directory.s, "sub");
    assert_true(a->steps[0].continue_on_error.b);
    assert_string_equal(a->steps[0].env.items[0].key, "X");
    assert_int_equal(a->steps[0].uses.kind, PIPELINE_USES_NONE);
    assert_int_equal(a->steps[1].index, 1);
    assert_int_equal(a->steps[1].uses.kind, PIPELINE_USES_LOCAL);
    assert_int_equal(a->steps[1].uses.builtin, PIPELINE_BUILTIN_LOCAL_ACTION);
    assert_string_equal(a->steps[1].uses.path, "./.github/actions/inner");
    assert_string_equal(pipeline_map_get(&a->steps[1].with, "a")->s,
                        "${{ steps.say.outputs.text }}");
    assert_int_equal(a->steps[2].uses.builtin, PIPELINE_BUILTIN_CHECKOUT);
    assert_int_equal(a->steps[2].line, 36);
    assert_int_equal(a->n_warnings, 0);
    pipeline_action_free(a);

    /* the smallest action: runs alone */
    a = ok(RUNS);
    assert_null(a->name.s);
    assert_int_equal(a->n_inputs + a->n_outputs, 0);
    assert_int_equal(a->n_steps, 1);
    pipeline_action_free(a);
    pipeline_action_free(NULL);
}

static void test_errors(void **state)
{
    (void)state;
    /* the file as a whole */
    bad("runs: [\n", 2, 1, "");
    bad("- a\n- b\n", 1, 1, "an action must be a mapping, not a sequence");
    bad("name: x\n", 1, 1, "an action needs runs:");
    bad("name: [x]\n" RUNS, 1, 7, "expected a string, not a sequence");
    bad("name: x\nname: y\n" RUNS, 2, 1, "duplicate");
    bad("description: !foo x\n" RUNS, 1, 14, "is read by YAML as a tag");
    /* inputs */
    bad("inputs: [a]\n" RUNS, 1, 9, "inputs must be a mapping of input names, not a sequence");
    bad("inputs:\n  '': {}\n" RUNS, 2, 3, "an empty input name");
    bad("inputs:\n  who: {}\n  WHO: {}\n" RUNS, 3, 3,
        "input 'WHO' is already defined (line 2): names ignore case");
    bad("inputs:\n  who: text\n" RUNS, 2, 8, "input 'who' must be a mapping, not a string");
    bad("inputs:\n  who:\n    required: maybe\n" RUNS, 3, 15,
        "required must be true or false, not maybe");
    bad("inputs:\n  who:\n    default: ${{ secrets.X }}\n" RUNS, 3, 18,
        "Unrecognized named-value: 'secrets'");
    bad("inputs:\n  who:\n    default: ${{ steps.a.outputs.b }}\n" RUNS, 3, 18,
        "Unrecognized named-value: 'steps'");
    bad("inputs:\n  who:\n    description: [a]\n" RUNS, 3, 18, "expected a string");
    /* outputs */
    bad("outputs: x\n" RUNS, 1, 10, "outputs must be a mapping of output names, not a string");
    bad("outputs:\n  o:\n    description: d\n" RUNS, 3, 5,
        "output 'o' of a composite action needs value:");
    bad("outputs:\n  o: x\n" RUNS, 2, 6, "output 'o' must be a mapping with value:, not a string");
    bad("outputs:\n  o:\n    value: x\n    extra: y\n" RUNS, 4, 5,
        "unexpected key 'extra' in output 'o' (allowed: description, value)");
    bad("outputs:\n  o:\n    value: ${{ secrets.T }}\n" RUNS, 3, 16,
        "Unrecognized named-value: 'secrets'");
    bad("outputs:\n  o:\n    value: ${{ steps.a.outputs. }}\n" RUNS, 3, 0, "Unexpected");
    /* runs */
    bad("runs: composite\n", 1, 7, "runs must be a mapping, not a string");
    bad("runs:\n  steps: []\n", 2, 3, "runs needs using: (composite)");
    bad("runs:\n  using:\n  steps: []\n", 2, 9, "runs.using must be composite, not null");
    bad("runs:\n  using: ''\n  steps: []\n", 2, 10, "runs.using must be composite, not empty");
    bad("runs:\n  using: node20\n  main: index.js\n", 2, 10,
        "runs.using: 'node20' (a JavaScript action) is not supported: slipway runs composite "
        "actions (runs.using: composite) only");
    bad("runs:\n  using: docker\n  image: Dockerfile\n", 2, 10,
        "runs.using: 'docker' (a Docker container action) is not supported");
    bad("runs:\n  using: magic\n", 2, 10, "runs.using must be composite, node20 or docker, not");
    bad("runs:\n  using: composite\n", 2, 3, "a composite action needs runs.steps");
    bad("runs:\n  using: composite\n  main: x.js\n  steps: []\n", 3, 3,
        "unexpected key 'main' in runs of a composite action (allowed: using, steps)");
    bad("runs:\n  using: composite\n  steps: []\n", 3, 10,
        "a composite action needs at least one step");
    bad("runs:\n  using: composite\n  steps: x\n", 3, 10, "runs.steps must be a sequence");
    /* steps */
#define STEPS "runs:\n  using: composite\n  steps:\n"
    bad(STEPS "    - run: echo\n", 4, 7,
        "step 1: a run: step of a composite action needs shell: (bash, sh, python...)");
    bad(STEPS "    - run: echo\n      shell: fish\n", 5, 14,
        "shell must be bash, sh, python, pwsh, powershell, cmd or a command with {0}");
    bad(STEPS "    - run: echo\n      shell: bash\n      uses: ./x\n", 4, 7,
        "step 1 has both run: and uses:");
    bad(STEPS "    - name: x\n", 4, 7, "step 1 needs run: or uses:");
    bad(STEPS "    - run: ''\n      shell: bash\n", 4, 12, "step 1: run: is empty");
    bad(STEPS "    - run: echo\n      shell: bash\n      timeout-minutes: 3\n", 6, 7,
        "unexpected key 'timeout-minutes' in step 1 (allowed: id, name, if, run, shell, env, "
        "working-directory, continue-on-error)");
    bad(STEPS "    - uses: ./x\n      shell: bash\n", 5, 7,
        "unexpected key 'shell' in step 1 (allowed: id, name, if, uses, with, env, "
        "continue-on-error)");
    bad(STEPS "    - id: 1a\n      uses: ./x\n", 4, 11, "step id '1a'");
    bad(STEPS "    - id: a\n      uses: ./x\n    - id: a\n      uses: ./y\n", 6, 11,
        "step id 'a' is already used by step 1 (line 4)");
    bad(STEPS "    - run: echo ${{ secrets.T }}\n      shell: bash\n", 4, 21,
        "Unrecognized named-value: 'secrets'");
    bad(STEPS "    - run: echo ${{ needs.a }}\n      shell: bash\n", 4, 21,
        "Unrecognized named-value: 'needs'");
    bad(STEPS "    - uses: ./x\n      if: success( &&\n", 5, 0, "");
    bad(STEPS "    - uses: ./x\n      name: ${{ success() }}\n", 5, 0, "success");
    bad(STEPS "    - uses: ./x\n      continue-on-error: sometimes\n", 5, 26,
        "expected a boolean (true or false), not 'sometimes'");
    bad(STEPS "    - uses: ./x\n      env: [a]\n", 5, 12, "env must be a mapping");
    bad(STEPS "    - uses: ./x\n      with: a\n", 5, 13, "with must be a mapping");
    bad(STEPS "    - uses: actions/setup-node@v4\n", 4, 13,
        "step 1: uses: 'actions/setup-node@v4' is not supported; slipway runs natively:");
    bad(STEPS "    - uses: docker://alpine\n", 4, 13, "is not supported");
    bad(STEPS "    - uses: ./a/../../x\n", 4, 13, "uses: './a/../../x' leaves the repository");
    bad(STEPS "    - uses: owner\n", 4, 13, "uses: must be OWNER/REPO[/PATH]@REF");
    bad(STEPS "    - x\n", 4, 7, "step 1 must be a mapping, not a string");
}

static void test_warnings_and_skip(void **state)
{
    int rc;
    (void)state;
    warns("colour: red\n" RUNS, 1, 1,
          "unexpected key 'colour' in an action (ignored, as on GitHub)");
    warns("inputs:\n  who:\n    type: string\n" RUNS, 3, 5,
          "unexpected key 'type' in input 'who' (ignored, as on GitHub)");

    /* skip mode: a step slipway cannot run is a warning, the step skipped */
    struct pipeline_action *a = act_of(STEPS "    - uses: actions/setup-node@v4\n    - uses: ./x\n",
                                       PIPELINE_LOAD_SKIP_UNSUPPORTED, &rc);
    assert_int_equal(rc, 0);
    assert_true(has(a->warnings, a->n_warnings, 4, 13, "skipped (unsupported: skip)"));
    assert_true(a->steps[0].skipped);
    assert_non_null(a->steps[0].skip_reason);
    assert_false(a->steps[1].skipped);
    pipeline_action_free(a);
    /* ... but not another kind of action */
    a = act_of("runs:\n  using: node20\n", PIPELINE_LOAD_SKIP_UNSUPPORTED, &rc);
    assert_int_equal(rc, PIPELINE_ELOAD);
    pipeline_action_free(a);

    /* every error is listed, in file order, with a count in the message */
    struct sw_err err = {0};
    const char *many = "inputs: 1\noutputs: 2\nruns: 3\n";
    a = NULL;
    rc = pipeline_action_parse(many, strlen(many), "a/action.yml", NULL, &a, &err);
    assert_int_equal(rc, PIPELINE_ELOAD);
    assert_int_equal(a->n_errors, 3);
    assert_int_equal(a->errors[0].line, 1);
    assert_int_equal(a->errors[2].line, 3);
    assert_non_null(strstr(err.msg, "3 errors, the first: a/action.yml:1:9:"));
    pipeline_action_free(a);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void test_load(void **state)
{
    char dir[] = "/tmp/test_action.XXXXXX", path[256];
    struct pipeline_action *a = NULL;
    struct sw_err err = {0};
    (void)state;

    assert_non_null(mkdtemp(dir));
    /* neither file: SW_ENOTFOUND, nothing loaded */
    assert_int_equal(pipeline_action_load(dir, "x/hello", NULL, &a, &err), SW_ENOTFOUND);
    assert_null(a);
    assert_non_null(strstr(err.msg, "x/hello: no action.yml or action.yaml there"));
    /* action.yaml alone */
    snprintf(path, sizeof(path), "%s/action.yaml", dir);
    write_file(path, "name: yaml\n" RUNS);
    assert_int_equal(pipeline_action_load(dir, "x/hello", NULL, &a, &err), 0);
    assert_string_equal(a->name.s, "yaml");
    assert_string_equal(a->file, "x/hello/action.yaml");
    pipeline_action_free(a);
    /* action.yml first, and errors name it */
    snprintf(path, sizeof(path), "%s/action.yml", dir);
    write_file(path, "name: yml\nruns:\n  using: node16\n");
    assert_int_equal(pipeline_action_load(dir, "x/hello", NULL, &a, &err), PIPELINE_ELOAD);
    assert_non_null(a);
    assert_string_equal(a->errors[0].text,
                        "x/hello/action.yml:3:10: runs.using: 'node16' (a JavaScript action) is "
                        "not supported: slipway runs composite actions (runs.using: composite) "
                        "only");
    pipeline_action_free(a);
    unlink(path);
    snprintf(path, sizeof(path), "%s/action.yaml", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_warnings_and_skip),
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
