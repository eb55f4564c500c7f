/*
 * Unit tests for the workflow loader (src/pipeline/workflow.c, wf_*.c,
 * matrix.c): the model it fills, every kind of load error with its
 * position, skip mode, the trigger decision and matrix expansion; then the
 * real workflows of ../shared/conformance/gha-workflows (read in place, never
 * copied; skipped with a note when absent): the 25 accepted files load under
 * `unsupported: skip`, the 7 broken ones are refused at the line INDEX.md
 * names, and every trigger decision INDEX.md lists comes out as GitHub's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pipeline/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct pipeline_workflow *wf_of(const char *yaml, unsigned flags, int *rc)
{
    struct pipeline_load_opts o = {flags};
    struct pipeline_workflow *wf = NULL;
    struct sw_err err = {0};

    *rc = pipeline_workflow_parse(yaml, strlen(yaml), "w.yml", &o, &wf, &err);
    assert_non_null(wf);
    assert_int_equal(*rc == 0, wf->n_errors == 0);
    if (*rc)
        assert_string_not_equal(err.msg, "");
    return wf;
}

/* Loads yaml, which must load without error. */
static struct pipeline_workflow *ok(const char *yaml)
{
    int rc;
    struct pipeline_workflow *wf = wf_of(yaml, 0, &rc);
    for (size_t i = 0; i < wf->n_errors; i++)
        printf("# unexpected: %s\n", wf->errors[i].text);
    assert_int_equal(rc, 0);
    return wf;
}

/* 1 when wf has an error at line:col (col 0: any) whose text holds what. */
static int has_error(const struct pipeline_workflow *wf, size_t line, size_t col, const char *what)
{
    for (size_t i = 0; i < wf->n_errors; i++)
        if (wf->errors[i].line == line && (!col || wf->errors[i].col == col) &&
            strstr(wf->errors[i].text, what))
            return 1;
    for (size_t i = 0; i < wf->n_errors; i++)
        printf("# have: %s\n", wf->errors[i].text);
    return 0;
}

/* yaml must fail with an error at line:col holding what. */
static void bad(const char *yaml, size_t line, size_t col, const char *what)
{
    int rc;
    struct pipeline_workflow *wf = wf_of(yaml, 0, &rc);
    assert_int_equal(rc, PIPELINE_ELOAD);
    if (!has_error(wf, line, col, what))
        fail_msg("no error at %zu:%zu with '%s'", line, col, what);
    pipeline_workflow_free(wf);
}

#define JOB "jobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo\n"

static void test_model(void **state)
{
    struct pipeline_workflow *wf =
        ok("name: CI\n"
           "run-name: Deploy ${{ inputs.target }}\n"
           "on:\n"
           "  push:\n"
           "    branches: [main, 'releases/**']\n"
           "  workflow_dispatch:\n"
           "    inputs:\n"
           "      target: {type: choice, options: [dev, prod], default: dev}\n"
           "      dry: {type: boolean, default: true}\n"
           "      n: {type: number, default: 3}\n"
           "env:\n"
           "  A: 1\n"
           "  B:\n"
           "defaults:\n"
           "  run: {shell: bash, working-directory: src}\n"
           "concurrency: {group: 'ci-${{ github.ref }}', cancel-in-progress: true}\n"
           "permissions: read-all\n"
           "jobs:\n"
           "  build:\n"
           "    name: Build ${{ matrix.os }}\n"
           "    runs-on: [self-hosted, linux]\n"
           "    timeout-minutes: 30\n"
           "    environment: {name: staging, url: '${{ steps.d.outputs.url }}'}\n"
           "    outputs:\n"
           "      v: ${{ steps.v.outputs.v }}\n"
           "    strategy:\n"
           "      fail-fast: false\n"
           "      max-parallel: 2\n"
           "      matrix: {os: [a, b], n: [1, 2]}\n"
           "    steps:\n"
           "      - uses: actions/checkout@v4\n"
           "        with: {fetch-depth: 0}\n"
           "      - id: v\n"
           "        if: github.ref == 'refs/heads/main'\n"
           "        run: echo v=1 >> $GITHUB_OUTPUT\n"
           "        shell: sh\n"
           "        continue-on-error: true\n"
           "        timeout-minutes: 5\n"
           "  test:\n"
           "    needs: build\n"
           "    if: needs.build.outputs.v == '1'\n"
           "    uses: ./.github/workflows/test.yml\n"
           "    with: {level: 2}\n"
           "    secrets: inherit\n");
    const struct pipeline_job *b = &wf->jobs[0], *t = &wf->jobs[1];

    assert_string_equal(wf->name.s, "CI");
    assert_true(wf->run_name.expr);
    assert_true(wf->on.push.present && wf->on.push.branches && !wf->on.push.tags);
    assert_int_equal(wf->on.n_events, 2);
    assert_true(wf->on.dispatch);
    assert_int_equal(wf->on.n_dispatch_inputs, 3);
    assert_int_equal(wf->on.dispatch_inputs[0].type, PIPELINE_INPUT_CHOICE);
    assert_int_equal(wf->on.dispatch_inputs[0].n_options, 2);
    assert_int_equal(wf->on.dispatch_inputs[1].type, PIPELINE_INPUT_BOOLEAN);
    assert_int_equal(wf->on.dispatch_inputs[1].def.b, 1);
    assert_true(wf->on.dispatch_inputs[2].def.n == 3);
    assert_int_equal(wf->env.n, 2);
    assert_string_equal(pipeline_map_get(&wf->env, "A")->s, "1");
    assert_string_equal(pipeline_map_get(&wf->env, "B")->s, ""); /* B: alone */
    assert_string_equal(wf->defaults.shell.s, "bash");
    assert_true(wf->concurrency.group.expr && wf->concurrency.cancel_in_progress.b);
    assert_int_equal(wf->n_jobs, 2);
    assert_int_equal(b->line, 19);
    assert_int_equal(b->n_runs_on, 2);
    assert_string_equal(b->runs_on[1].s, "linux");
    assert_true(b->timeout_minutes.n == 30);
    assert_string_equal(b->environment.name.s, "staging");
    assert_true(b->environment.url.expr);
    assert_true(b->strategy.present && !b->strategy.fail_fast.b);
    assert_true(b->strategy.max_parallel.n == 2);
    assert_false(b->strategy.matrix_expr);
    assert_int_equal(json_array_size(json_object_get(b->strategy.matrix, "n")), 2);
    assert_true(json_is_integer(json_array_get(json_object_get(b->strategy.matrix, "n"), 0)));
    assert_int_equal(b->n_steps, 2);
    assert_int_equal(b->steps[0].uses.kind, PIPELINE_USES_REPO);
    assert_int_equal(b->steps[0].uses.builtin, PIPELINE_BUILTIN_CHECKOUT);
    assert_string_equal(b->steps[0].uses.ref, "v4");
    assert_string_equal(pipeline_map_get(&b->steps[0].with, "fetch-depth")->s, "0");
    assert_string_equal(b->steps[1].id.s, "v");
    assert_true(b->steps[1].continue_on_error.b && b->steps[1].timeout_minutes.n == 5);
    assert_int_equal(b->steps[1].line, 33);
    assert_int_equal(t->n_needs, 1);
    assert_int_equal(t->needs_index[0], 0);
    assert_int_equal(t->uses.builtin, PIPELINE_BUILTIN_LOCAL_WORKFLOW);
    assert_true(t->secrets_inherit);
    assert_ptr_equal(pipeline_workflow_job(wf, "test"), t);
    assert_true(b->timeout_minutes.n == 30 && t->timeout_minutes.n == 360);
    pipeline_workflow_free(wf);
}

static void test_on_forms(void **state)
{
    struct pipeline_workflow *wf = ok("on: push\n" JOB);
    assert_true(wf->on.push.present);
    pipeline_workflow_free(wf);
    wf = ok("on: [push, pull_request, workflow_dispatch]\n" JOB);
    assert_int_equal(wf->on.n_events, 3);
    assert_true(wf->on.push.present && wf->on.dispatch);
    pipeline_workflow_free(wf);
    wf = ok("on:\n  pull_request: {types: [opened], branches: [main], paths: ['**.c']}\n"
            "  release: {types: published}\n  create:\n  schedule: [{cron: '0 0 * * *'}]\n"
            "  workflow_call:\n    inputs: {x: {type: string, default: '${{ github.ref }}'}}\n"
            "    outputs: {o: {value: '${{ jobs.a.outputs.o }}'}}\n"
            "    secrets: {token: {required: true}, other: null}\n" JOB);
    assert_false(wf->on.push.present);
    assert_true(wf->on.call);
    assert_int_equal(wf->on.n_call_outputs, 1);
    assert_int_equal(wf->on.n_call_secrets, 2);
    assert_true(wf->on.call_secrets[0].required);
    pipeline_workflow_free(wf);

    bad("on: pushh\n" JOB, 1, 5, "unknown event 'pushh' (events: branch_protection_rule,");
    bad("on:\n  release: {types: [shipped]}\n" JOB, 2, 21,
        "unknown activity type 'shipped' of release (known: published,");
    bad("on:\n  create: {types: [x]}\n" JOB, 2, 11, "on.create takes no settings");
    bad("on:\n  pull_request: {tags: [v1]}\n" JOB, 2, 18,
        "unexpected key 'tags' in on.pull_request (allowed: types, branches, branches-ignore, "
        "paths, paths-ignore)");
    bad("on:\n  workflow_dispatch:\n    branches: [main]\n" JOB, 3, 5,
        "unexpected key 'branches' in on.workflow_dispatch (allowed: inputs)");
    bad("on: [push, push]\n" JOB, 1, 12, "listed twice");
    bad("on: schedule\n" JOB, 1, 5, "cron");
    bad(JOB, 1, 1, "needs on:");
    bad("on: push\n", 1, 1, "needs jobs:");
    bad("on:\n  workflow_call:\n    inputs: {x: {default: 1}}\n" JOB, 3, 17, "needs a type");
    bad("on:\n  workflow_dispatch:\n    inputs: {x: {type: choice, options: [a], default: "
        "b}}\n" JOB,
        3, 0, "default 'b' is not one of the options");
    bad("on:\n  workflow_dispatch:\n    inputs: {x: {type: boolean, default: yes}}\n" JOB, 3, 0,
        "expected a boolean");
    bad("on:\n  workflow_dispatch:\n    inputs: {x: {type: text}}\n" JOB, 3, 0,
        "input type must be boolean, number, string, choice or environment, not 'text'");
    bad("on:\n  workflow_dispatch:\n    inputs: {1x: {}}\n" JOB, 3, 14, "input '1x'");
}

static void test_filters(void **state)
{
    bad("on:\n  push:\n    branches: ['main', 'v[z-a]']\n" JOB, 3, 0, "branches: ");
    bad("on:\n  push:\n    branches: [a]\n    branches-ignore: [b]\n" JOB, 4, 5,
        "branches and branches-ignore cannot be used together");
    bad("on:\n  push:\n    paths: ['!x']\n" JOB, 3, 12, "paths: ");
    bad("on:\n  push:\n    tags: {a: b}\n" JOB, 3, 11,
        "tags must be a string or a sequence of strings");
    bad("on:\n  push:\n    tags: ['']\n" JOB, 3, 12, "non-empty");
    bad("on:\n  pull_request:\n    paths: ['[']\n" JOB, 3, 0, "paths: ");
}

static void test_keys_and_types(void **state)
{
    bad("on: push\nnmae: x\n" JOB, 2, 1,
        "unexpected key 'nmae' in a workflow (allowed: name, run-name, on, env, defaults, "
        "concurrency, permissions, jobs)");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    step: []\n", 5, 5,
        "unexpected key 'step' in a job (allowed: name, needs, if, runs-on,");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: x\n        with: {}\n", 7,
        9, "unexpected key 'with' in step 1 (allowed: id, name, if, run, shell,");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    timeout-minutes: soon\n", 5, 22,
        "expected a number, not 'soon'");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    continue-on-error: yes\n", 5, 24,
        "expected a boolean (true or false), not 'yes'");
    bad("on: push\njobs:\n  a:\n    steps: []\n", 4, 5, "job 'a' needs runs-on");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    steps: {run: x}\n", 5, 12,
        "steps must be a sequence, not a mapping");
    bad("on: push\njobs: {}\n", 2, 7, "at least one job");
    bad("on: push\njobs:\n  2a: {runs-on: x}\n", 3, 3, "job id '2a'");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: x\n        uses: ./y\n", 6,
        9, "has both run: and uses:");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - name: x\n", 6, 9,
        "needs run: or uses:");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - {id: s, run: x}\n"
        "      - {id: s, run: y}\n",
        7, 14, "step id 's' is already used by step 1 (line 6)");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - {run: x, shell: zsh}\n", 6, 25,
        "shell must be bash, sh, python, pwsh, powershell, cmd or a command with {0}");
    bad("on: push\npermissions: {contents: admin}\n" JOB, 2, 25, "must be read, write or none");
    bad("on: push\nconcurrency: {cancel-in-progress: true}\n" JOB, 2, 14, "needs a group");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    environment: {url: x}\n", 5, 18,
        "environment needs a name");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    if: !x\n", 5, 9, "YAML");
    /* the YAML layer's own refusals are errors like the others */
    bad("on: push\non: push\n" JOB, 2, 1, "duplicate key 'on' (first at 1:1)");
    bad("on: push\njobs: [\n", 3, 1, "invalid YAML");
}

static void test_expressions(void **state)
{
    /* job if: github, needs, vars, inputs only */
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    if: steps.x.outputs.y\n", 5, 9,
        "Unrecognized named-value: 'steps'");
    /* step if: no secrets */
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - if: secrets.t\n"
        "        run: x\n",
        6, 13, "Unrecognized named-value: 'secrets'");
    /* job outputs: no hashFiles; steps: yes */
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    outputs: {o: \"${{ hashFiles('x') }}\"}\n", 5,
        23, "hashFiles");
    /* status functions only in if: */
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: ${{ success() }}\n", 6, 18,
        "success");
    /* workflow env: no matrix */
    bad("on: push\nenv: {A: '${{ matrix.x }}'}\n" JOB, 2, 15, "'matrix'");
    /* column inside a plain, a quoted and a literal block scalar */
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo ${{ 1 + 1 }}\n", 6,
        25, "Unexpected symbol: '+'");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: 'a ${{ 1 ! 1 }}'\n", 6, 23,
        "Unexpected symbol: '!'");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: |\n          echo ok\n"
        "            x ${{ github.ref ==\n",
        8, 15, "The expression is not closed");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: |\n          echo ok\n"
        "          ${{ foo(1) }}\n",
        8, 15, "Unrecognized function: 'foo'");
    /* no expressions at all in uses: and id: */
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: ${{ x }}\n", 6, 15,
        "not allowed here");
    /* every fault reported, not only the first */
    int rc;
    struct pipeline_workflow *wf =
        wf_of("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: ${{ a + }}\n"
              "      - run: ${{ b + }}\n      - run: ${{ c + }}\n",
              0, &rc);
    assert_int_equal(wf->n_errors, 3);
    assert_true(wf->errors[0].line == 6 && wf->errors[2].line == 8);
    pipeline_workflow_free(wf);
}

static void test_needs(void **state)
{
    bad("on: push\njobs:\n  a: {runs-on: x, needs: [b]}\n", 3, 27,
        "job 'a' needs unknown job 'b' (jobs: a)");
    bad("on: push\njobs:\n  a: {runs-on: x, needs: a}\n", 3, 26, "cyclic needs: a \u2192 a");
    bad("on: push\njobs:\n  a: {runs-on: x, needs: c}\n  b: {runs-on: x, needs: a}\n"
        "  c: {runs-on: x, needs: [b]}\n  d: {runs-on: x, needs: [a, c]}\n",
        3, 26, "cyclic needs: a \u2192 c \u2192 b \u2192 a");
    struct pipeline_workflow *wf =
        ok("on: push\njobs:\n  a: {runs-on: x}\n  b: {runs-on: x, needs: a}\n"
           "  c: {runs-on: x, needs: [a, b]}\n");
    assert_int_equal(wf->jobs[2].n_needs, 2);
    assert_int_equal(wf->jobs[2].needs_index[1], 1);
    pipeline_workflow_free(wf);
}

static void test_uses(void **state)
{
    const char *yaml = "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n"
                       "      - uses: Actions/Checkout@main\n"
                       "      - uses: actions/upload-artifact@v4\n"
                       "      - uses: actions/download-artifact@v4\n"
                       "      - uses: ./ci/action\n"
                       "      - uses: slipway/deploy\n"
                       "      - uses: slipway/health-check@v1\n"
                       "      - uses: slipway/scan\n"
                       "      - uses: actions/cache/restore@v4\n"
                       "      - uses: docker://alpine:3\n"
                       "      - uses: octo/act@v1\n"
                       "      - run: x\n        shell: pwsh\n";
    struct pipeline_workflow *wf;
    int rc;

    wf = wf_of(yaml, 0, &rc);
    assert_int_equal(rc, PIPELINE_ELOAD);
    assert_int_equal(wf->n_errors, 3); /* cache/restore, docker://, octo/act; pwsh loads */
    assert_true(has_error(wf, 13, 15, "uses: 'actions/cache/restore@v4' is not supported"));
    assert_non_null(strstr(wf->errors[0].text, pipeline_uses_supported()));
    pipeline_workflow_free(wf);

    wf = wf_of(yaml, PIPELINE_LOAD_SKIP_UNSUPPORTED, &rc);
    assert_int_equal(rc, 0);
    const struct pipeline_step *s = wf->jobs[0].steps;
    assert_int_equal(s[0].uses.builtin, PIPELINE_BUILTIN_CHECKOUT);
    assert_int_equal(s[1].uses.builtin, PIPELINE_BUILTIN_UPLOAD_ARTIFACT);
    assert_int_equal(s[2].uses.builtin, PIPELINE_BUILTIN_DOWNLOAD_ARTIFACT);
    assert_int_equal(s[3].uses.kind, PIPELINE_USES_LOCAL);
    assert_int_equal(s[3].uses.builtin, PIPELINE_BUILTIN_LOCAL_ACTION);
    assert_string_equal(s[3].uses.path, "./ci/action");
    assert_int_equal(s[4].uses.builtin, PIPELINE_BUILTIN_SLIPWAY_DEPLOY);
    assert_null(s[4].uses.ref);
    assert_int_equal(s[5].uses.builtin, PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK);
    assert_int_equal(s[6].uses.builtin, PIPELINE_BUILTIN_SLIPWAY_SCAN);
    assert_string_equal(s[7].uses.path, "restore");
    assert_true(s[7].skipped && !s[6].skipped && s[7].skip_reason);
    assert_int_equal(s[8].uses.kind, PIPELINE_USES_DOCKER);
    assert_string_equal(s[8].uses.path, "alpine:3");
    assert_true(s[8].skipped && s[9].skipped && s[10].skipped);
    assert_int_equal(wf->n_warnings, 4);
    assert_non_null(strstr(wf->warnings[3].text, "w.yml:16:9: warning: step 11: shell 'pwsh'"));
    pipeline_workflow_free(wf);

    bad("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: actions/checkout\n", 6,
        15, "uses: must be OWNER/REPO[/PATH]@REF, ./PATH or docker://IMAGE");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: ./a/../../etc\n", 6, 15,
        "leaves the repository");
    bad("on: push\njobs:\n  a:\n    uses: ./ci/x.yml\n", 4, 11, "a job's uses: must be");
    bad("on: push\njobs:\n  a:\n    uses: o/r/.github/workflows/x.yml@v1\n", 4, 11,
        "another repository");
    bad("on: push\njobs:\n  a:\n    uses: ./.github/workflows/x.yml\n    runs-on: x\n", 5, 5,
        "unexpected key 'runs-on' in a job that calls a workflow");
    bad("on: push\njobs:\n  a:\n    uses: ./.github/workflows/x.yml\n    secrets: all\n", 5, 14,
        "secrets must be inherit or a mapping");
}

static void test_containers(void **state)
{
    const char *yaml = "on: push\njobs:\n  a:\n    runs-on: x\n    container: debian\n"
                       "    services: {db: {image: postgres}}\n    steps: [{run: x}]\n"
                       "  b: {runs-on: x, steps: [{run: y}]}\n";
    struct pipeline_workflow *wf;
    int rc;

    wf = wf_of(yaml, 0, &rc);
    assert_int_equal(wf->n_errors, 2);
    assert_true(has_error(wf, 5, 5, "job 'a': container: is not supported"));
    assert_true(has_error(wf, 6, 5, "job 'a': services: (containers) is not supported"));
    assert_null(strchr(wf->errors[0].text, '\n'));
    pipeline_workflow_free(wf);
    wf = wf_of(yaml, PIPELINE_LOAD_SKIP_UNSUPPORTED, &rc);
    assert_int_equal(rc, 0);
    assert_true(wf->jobs[0].skipped && wf->jobs[0].has_container && wf->jobs[0].has_services);
    assert_false(wf->jobs[1].skipped);
    assert_int_equal(wf->n_warnings, 2);
    pipeline_workflow_free(wf);
}

static json_t *expand(const char *matrix_json)
{
    json_t *m = json_loads(matrix_json, 0, NULL), *legs = NULL;
    struct sw_err err = {0};
    assert_non_null(m);
    if (pipeline_matrix_expand(m, &legs, &err) != 0)
        printf("# %s\n", err.msg);
    json_decref(m);
    return legs;
}

static void assert_legs(const char *matrix, const char *want)
{
    json_t *legs = expand(matrix), *w = json_loads(want, 0, NULL);
    assert_non_null(legs);
    if (!json_equal(legs, w)) {
        char *s = json_dumps(legs, JSON_COMPACT);
        fail_msg("got %s", s);
    }
    json_decref(legs);
    json_decref(w);
}

static void test_matrix(void **state)
{
    /* GitHub's documented include example: original values are never changed */
    assert_legs("{\"fruit\": [\"apple\", \"pear\"], \"animal\": [\"cat\", \"dog\"],"
                " \"include\": [{\"color\": \"green\"}, {\"color\": \"pink\", \"animal\": \"cat\"},"
                " {\"fruit\": \"apple\", \"shape\": \"circle\"}, {\"fruit\": \"banana\"},"
                " {\"fruit\": \"banana\", \"animal\": \"cat\"}]}",
                "[{\"fruit\": \"apple\", \"animal\": \"cat\", \"color\": \"pink\", \"shape\": "
                "\"circle\"},"
                " {\"fruit\": \"apple\", \"animal\": \"dog\", \"color\": \"green\", \"shape\": "
                "\"circle\"},"
                " {\"fruit\": \"pear\", \"animal\": \"cat\", \"color\": \"pink\"},"
                " {\"fruit\": \"pear\", \"animal\": \"dog\", \"color\": \"green\"},"
                " {\"fruit\": \"banana\"}, {\"fruit\": \"banana\", \"animal\": \"cat\"}]");
    /* exclude matches partially */
    assert_legs(
        "{\"os\": [\"a\", \"b\"], \"v\": [1, 2], \"exclude\": [{\"os\": \"a\", \"v\": 2},"
        " {\"v\": 3}]}",
        "[{\"os\": \"a\", \"v\": 1}, {\"os\": \"b\", \"v\": 1}, {\"os\": \"b\", \"v\": 2}]");
    assert_legs("{\"include\": [{\"a\": 1}, {\"b\": 2}]}", "[{\"a\": 1}, {\"b\": 2}]");
    assert_legs("{}", "[]");
    assert_null(expand("{\"os\": []}"));
    assert_null(expand("{\"os\": \"x\"}"));
    assert_null(expand("{\"os\": [1], \"include\": [1]}"));
    assert_null(expand("{\"a\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17],"
                       " \"b\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}"));
    /* 16 x 16 = 256 legs is GitHub's limit exactly */
    json_t *legs = expand("{\"a\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],"
                          " \"b\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}");
    assert_int_equal(json_array_size(legs), 256);
    json_decref(legs);

    /* at load: a matrix written out is expanded, a dynamic one kept */
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix:\n"
        "        a: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]\n"
        "        b: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]\n",
        7, 9, "more than 256");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    strategy: {matrix: {os: linux}}\n", 5, 29,
        "matrix: os must be a sequence of values or an expression");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    strategy: {matrix: {os: [a], exclude: [{os: "
        "a}]}}\n",
        5, 24, "no combination");
    bad("on: push\njobs:\n  a:\n    runs-on: x\n    strategy: {matrix: {os: ['${{ steps.x }}']}}\n",
        5, 35, "'steps'");
    struct pipeline_workflow *wf =
        ok("on: push\njobs:\n  a:\n    runs-on: ${{ matrix.os }}\n    strategy:\n"
           "      matrix:\n        os: ${{ fromJSON(needs.x.outputs.y) }}\n"
           "        include: [{os: a, v: 3.5, q: '3', n: null, t: true}]\n"
           "  x: {runs-on: x}\n");
    const json_t *inc = json_array_get(json_object_get(wf->jobs[0].strategy.matrix, "include"), 0);
    assert_true(wf->jobs[0].strategy.matrix_expr);
    assert_true(json_is_string(json_object_get(wf->jobs[0].strategy.matrix, "os")));
    assert_true(json_is_real(json_object_get(inc, "v")));
    assert_true(json_is_string(json_object_get(inc, "q")));
    assert_true(json_is_null(json_object_get(inc, "n")));
    assert_true(json_is_true(json_object_get(inc, "t")));
    assert_true(wf->jobs[0].runs_on[0].expr);
    pipeline_workflow_free(wf);
}

static int trig(const struct pipeline_workflow *wf, const char *ref, const char *path)
{
    const char *paths[1] = {path};
    return pipeline_workflow_triggered(wf, "push", ref, paths, path ? 1 : 0);
}

static void test_triggers(void **state)
{
    struct pipeline_workflow *wf;

    wf = ok("on:\n  push:\n    branches: [main]\n    paths: ['src/**']\n" JOB);
    assert_true(trig(wf, "refs/heads/main", "src/a.c"));
    assert_false(trig(wf, "refs/heads/main", "README")); /* both must match */
    assert_false(trig(wf, "refs/heads/dev", "src/a.c")); /* both must match */
    assert_false(trig(wf, "refs/tags/v1", "src/a.c"));   /* branch filters only: no tags */
    assert_false(pipeline_workflow_triggered(wf, "pull_request", "refs/heads/main", NULL, 0));
    assert_false(pipeline_workflow_triggered(wf, "workflow_dispatch", "refs/heads/main", NULL, 0));
    pipeline_workflow_free(wf);

    wf = ok("on:\n  push:\n    tags: ['v*']\n  workflow_dispatch:\n" JOB);
    assert_true(trig(wf, "refs/tags/v1", NULL));
    assert_false(trig(wf, "refs/tags/1", NULL));
    assert_false(trig(wf, "refs/heads/main", NULL)); /* tag filters only: no branches */
    assert_true(pipeline_workflow_triggered(wf, "workflow_dispatch", "refs/heads/x", NULL, 0));
    pipeline_workflow_free(wf);

    wf = ok("on:\n  push:\n    paths-ignore: ['docs/**']\n    branches-ignore: ['wip/*']\n" JOB);
    assert_true(trig(wf, "refs/heads/main", "src/a"));
    assert_false(trig(wf, "refs/heads/main", "docs/a"));
    assert_false(trig(wf, "refs/heads/wip/x", "src/a"));
    assert_true(trig(wf, "refs/heads/wip/x/y", "src/a"));
    assert_false(trig(wf, "refs/tags/v1", NULL)); /* branch filters only */
    pipeline_workflow_free(wf);

    wf = ok("on:\n  push:\n    paths: ['src/**']\n" JOB);
    assert_true(trig(wf, "refs/tags/v1", "README")); /* paths are not evaluated for tags */
    assert_true(trig(wf, "refs/heads/x", "src/y"));
    assert_false(trig(wf, "refs/heads/x", NULL));
    assert_false(trig(wf, "refs/pull/1/head", "src/y"));
    assert_false(trig(wf, "refs/heads/", "src/y"));
    pipeline_workflow_free(wf);

    wf = ok("on:\n  push:\n    branches: [main]\n    tags: ['v*']\n" JOB);
    assert_true(trig(wf, "refs/heads/main", NULL));
    assert_true(trig(wf, "refs/tags/v2", NULL));
    assert_false(trig(wf, "refs/tags/2", NULL));
    pipeline_workflow_free(wf);

    wf = ok("on: pull_request\n" JOB);
    assert_false(trig(wf, "refs/heads/main", NULL));
    pipeline_workflow_free(wf);
}

static void test_bounds(void **state)
{
    struct buf b = BUF_INIT;
    struct pipeline_workflow *wf;
    int rc;

    buf_adds(&b, "on: push\njobs:\n");
    for (int i = 0; i <= PIPELINE_WF_MAX_JOBS; i++)
        buf_addf(&b, "  j%d: {runs-on: x}\n", i);
    bad(b.data, 3, 3, "257 jobs, more than 256");
    buf_reset(&b);
    buf_adds(&b, "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n");
    for (int i = 0; i <= PIPELINE_WF_MAX_STEPS; i++)
        buf_adds(&b, "      - run: x\n");
    bad(b.data, 6, 7, "1001 steps, more than 1000");
    /* errors are bounded and counted; loading stays deterministic */
    buf_reset(&b);
    buf_adds(&b, "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n");
    for (int i = 0; i < 300; i++)
        buf_adds(&b, "      - run: ${{ ( }}\n");
    wf = wf_of(b.data, 0, &rc);
    assert_int_equal(wf->n_errors, PIPELINE_WF_MAX_ERRORS);
    assert_int_equal(wf->n_errors_dropped, 200);
    struct pipeline_workflow *again = wf_of(b.data, 0, &rc);
    for (size_t i = 0; i < wf->n_errors; i++)
        assert_string_equal(wf->errors[i].text, again->errors[i].text);
    pipeline_workflow_free(again);
    pipeline_workflow_free(wf);
    /* nesting beyond the bound is refused by the YAML layer */
    buf_reset(&b);
    buf_adds(&b, "on: push\nenv: ");
    for (int i = 0; i < 100; i++)
        buf_adds(&b, "[");
    wf = wf_of(b.data, 0, &rc);
    assert_int_equal(rc, PIPELINE_ELOAD);
    pipeline_workflow_free(wf);
    buf_free(&b);
}

/* ---- ../shared/conformance/gha-workflows ------------------------------------------------ */

static char conf_dir[4096];

static int conf_present(void)
{
    const char *dir = getenv("SLIPWAY_CONFORMANCE");
    char path[4200];
    FILE *f;

    snprintf(conf_dir, sizeof(conf_dir), "%s/gha-workflows", dir ? dir : "../shared/conformance");
    snprintf(path, sizeof(path), "%s/INDEX.md", conf_dir);
    if (!(f = fopen(path, "r"))) {
        printf("# conformance folder absent: skipped (%s)\n", conf_dir);
        return 0;
    }
    fclose(f);
    return 1;
}

static struct pipeline_workflow *conf_load(const char *file, int *rc)
{
    struct pipeline_load_opts o = {PIPELINE_LOAD_SKIP_UNSUPPORTED};
    struct pipeline_workflow *wf = NULL;
    struct sw_err err = {0};
    char path[8300];

    snprintf(path, sizeof(path), "%s/%s", conf_dir, file);
    *rc = pipeline_workflow_load(path, &o, &wf, &err);
    if (!wf)
        fail_msg("%s: %s", file, err.msg);
    return wf;
}

/* INDEX.md's A rows: every file must load under unsupported: skip. */
static const char *const accepted[] = {
    "acmesh-official__acme.sh__DNS.yml",            /* A1 */
    "acmesh-official__acme.sh__dockerhub.yml",      /* A2 */
    "acmesh-official__acme.sh__shellcheck.yml",     /* A3 */
    "ohmyzsh__ohmyzsh__installer.yml",              /* A4 */
    "ohmyzsh__ohmyzsh__main.yml",                   /* A5 */
    "openssh__openssh-portable__selfhosted.yml",    /* A6 */
    "redis__redis__ci.yml",                         /* A7 */
    "redis__redis__external.yml",                   /* A8 */
    "BurntSushi__ripgrep__release.yml",             /* A9 */
    "git__git__main.yml",                           /* A10 */
    "git__git__l10n.yml",                           /* A11 */
    "git__git__coverity.yml",                       /* A12 */
    "jqlang__jq__decnum.yml",                       /* A13 */
    "jqlang__jq__website.yml",                      /* A14 */
    "openzfs__zfs__zfs-qemu.yml",                   /* A15 */
    "openzfs__zfs__checkstyle.yaml",                /* A16 */
    "curl__curl__checksrc.yml",                     /* A17 */
    "dhimmel__dump-actions-context__contexts.yaml", /* A18 */
    "evanw__esbuild__publish.yml",                  /* A19 */
    "nektos__act__promote.yml",                     /* A20 */
    "cli__cli__deployment.yml",                     /* A21 */
    "jgm__pandoc__format-validation.yml",           /* A22 */
    "curl__curl__distcheck.yml",                    /* A23 */
    "ziglang__zig__ci.yaml",                        /* A24 */
    "go-gitea__gitea__release-tag-version.yml",     /* A25 */
};

static void test_conformance_accepted(void **state)
{
    size_t passed = 0, n = sizeof(accepted) / sizeof(accepted[0]);

    if (!conf_present())
        skip();
    for (size_t i = 0; i < n; i++) {
        int rc;
        struct pipeline_workflow *wf = conf_load(accepted[i], &rc);
        for (size_t e = 0; e < wf->n_errors; e++)
            printf("# FAIL A%zu: %s\n", i + 1, wf->errors[e].text);
        passed += rc == 0 && wf->n_jobs > 0;
        pipeline_workflow_free(wf);
    }
    printf("# gha-workflows: %zu of %zu accepted files load (unsupported: skip)\n", passed, n);
    assert_int_equal(passed, n);
}

/* INDEX.md's R rows: what must be refused, and where. */
static const struct rejected {
    const char *row, *file;
    size_t line, col; /* col 0: the line is what INDEX.md names */
    const char *what;
} rejected[] = {
    {"R1", "jgm__pandoc__ci@dddbd40.yml", 148, 12, "mapping values are not allowed"},
    {"R2", "openssh__openssh-portable__upstream@1f1d63e.yml", 45, 103,
     "mapping values are not allowed"},
    {"R3", "redis__redis__daily@0676a9f.yml", 53, 0, "inside ${{ }}"},
    {"R4", "hashicorp__vagrant__spectesting@61a04ed.yml", 95, 5,
     "duplicate key 'if' (first at 91:5)"},
    {"R5", "hashicorp__vagrant__spectesting@b6feb02.yml", 3, 5,
     "unexpected key 'branches' in on.workflow_dispatch"},
    /* R6: actionlint's expected positions, 7:24, 9:26, 11:65, 13:38 */
    {"R6", "rhysd__actionlint__expression_syntax_error.yaml", 7, 24,
     "Unexpected symbol: '\"hello\"'"},
    {"R6", "rhysd__actionlint__expression_syntax_error.yaml", 9, 26, "Unexpected symbol: '+'"},
    {"R6", "rhysd__actionlint__expression_syntax_error.yaml", 11, 65, "Unexpected symbol: 'EOF'"},
    {"R6", "rhysd__actionlint__expression_syntax_error.yaml", 13, 38, "Unexpected symbol: 'EOF'"},
    {"R7", "rhysd__actionlint__minimal_cycle_in_needs.yaml", 5, 0,
     "cyclic needs: from \u2192 to \u2192 from"},
};

static void test_conformance_rejected(void **state)
{
    size_t passed = 0, n = sizeof(rejected) / sizeof(rejected[0]);

    if (!conf_present())
        skip();
    for (size_t i = 0; i < n; i++) {
        const struct rejected *r = &rejected[i];
        int rc, found;
        struct pipeline_workflow *wf = conf_load(r->file, &rc);
        found = rc == PIPELINE_ELOAD && has_error(wf, r->line, r->col, r->what);
        if (!found)
            printf("# FAIL %s %s: no error at %zu:%zu with '%s'\n", r->row, r->file, r->line,
                   r->col, r->what);
        passed += found;
        pipeline_workflow_free(wf);
    }
    printf("# gha-workflows: %zu of %zu rejections at the right place (7 files)\n", passed, n);
    assert_int_equal(passed, n);
}

/* Every trigger decision INDEX.md lists (its row, then what it says). */
static const struct decision {
    const char *row, *file, *ref, *path; /* path NULL: no changed path given */
    int triggered;
} decisions[] = {
    {"A1", "acmesh-official__acme.sh__DNS.yml", "refs/heads/master", "dnsapi/x.sh", 1},
    {"A1", "acmesh-official__acme.sh__DNS.yml", "refs/heads/master", "dnsapi/sub/x.sh", 0},
    {"A1", "acmesh-official__acme.sh__DNS.yml", "refs/heads/master", "README.md", 0},
    {"A2", "acmesh-official__acme.sh__dockerhub.yml", "refs/heads/master", "acme.sh", 1},
    {"A2", "acmesh-official__acme.sh__dockerhub.yml", "refs/heads/feature/x", "acme.sh", 0},
    {"A2", "acmesh-official__acme.sh__dockerhub.yml", "refs/tags/3.0.7", "README.md", 1},
    {"A2", "acmesh-official__acme.sh__dockerhub.yml", "refs/tags/3.0.7", NULL, 1},
    {"A3", "acmesh-official__acme.sh__shellcheck.yml", "refs/heads/master", "deploy/x.sh", 1},
    {"A4", "ohmyzsh__ohmyzsh__installer.yml", "refs/heads/master", "tools/install.sh", 1},
    {"A4", "ohmyzsh__ohmyzsh__installer.yml", "refs/tags/v1", "README.md", 1},
    {"A4", "ohmyzsh__ohmyzsh__installer.yml", "refs/tags/anything", NULL, 1},
    {"A5", "ohmyzsh__ohmyzsh__main.yml", "refs/heads/master", "lib/git.zsh", 1},
    {"A6", "openssh__openssh-portable__selfhosted.yml", "refs/heads/master", "sshd.c", 1},
    {"A6", "openssh__openssh-portable__selfhosted.yml", "refs/heads/x", "openbsd-compat/a.c", 1},
    {"A7", "redis__redis__ci.yml", "refs/heads/unstable", "src/server.c", 1},
    {"A7", "redis__redis__ci.yml", "refs/heads/any/branch", "README.md", 1},
    {"A8", "redis__redis__external.yml", "refs/heads/unstable", "src/server.c", 1},
    {"A9", "BurntSushi__ripgrep__release.yml", "refs/heads/master", "src/main.rs", 0},
    {"A9", "BurntSushi__ripgrep__release.yml", "refs/tags/14.1.0", NULL, 1},
    {"A9", "BurntSushi__ripgrep__release.yml", "refs/tags/v14.1.0", NULL, 0},
    {"A9", "BurntSushi__ripgrep__release.yml", "refs/tags/14.1", NULL, 0},
    {"A10", "git__git__main.yml", "refs/heads/master", "git.c", 1},
    {"A11", "git__git__l10n.yml", "refs/heads/master", "po/fr.po", 1},
    {"A11", "git__git__l10n.yml", "refs/heads/l10n-fr", "po/fr.po", 1},
    {"A12", "git__git__coverity.yml", "refs/heads/main", "git.c", 1},
    {"A13", "jqlang__jq__decnum.yml", "refs/heads/master", "src/jv.c", 1},
    {"A13", "jqlang__jq__decnum.yml", "refs/heads/main", "src/jv.c", 0},
    {"A14", "jqlang__jq__website.yml", "refs/heads/master", "docs/index.md", 1},
    {"A14", "jqlang__jq__website.yml", "refs/heads/master", "src/jv.c", 0},
    {"A15", "openzfs__zfs__zfs-qemu.yml", "refs/heads/master", "module/zfs/spa.c", 1},
    {"A16", "openzfs__zfs__checkstyle.yaml", "refs/heads/master", "module/zfs/spa.c", 1},
    {"A17", "curl__curl__checksrc.yml", "refs/heads/master", "lib/url.c", 1},
    {"A17", "curl__curl__checksrc.yml", "refs/heads/bagder/ci", "lib/url.c", 1},
    {"A17", "curl__curl__checksrc.yml", "refs/heads/ci", "lib/url.c", 0},
    {"A17", "curl__curl__checksrc.yml", "refs/heads/a/b/ci", "lib/url.c", 0},
    {"A17", "curl__curl__checksrc.yml", "refs/heads/master", "appveyor.yml", 0},
    {"A18", "dhimmel__dump-actions-context__contexts.yaml", "refs/heads/main", "README.md", 1},
    {"A19", "evanw__esbuild__publish.yml", "refs/heads/main", "version.txt", 1},
    {"A19", "evanw__esbuild__publish.yml", "refs/heads/main", "CHANGELOG.md", 0},
    {"A19", "evanw__esbuild__publish.yml", "refs/heads/dev", "version.txt", 0},
    {"A20", "nektos__act__promote.yml", "refs/heads/master", "main.go", 0},
    {"A21", "cli__cli__deployment.yml", "refs/heads/trunk", "main.go", 0},
    {"A22", "jgm__pandoc__format-validation.yml", "refs/heads/main", "test/writer.jats_publishing",
     1},
    {"A22", "jgm__pandoc__format-validation.yml", "refs/heads/rc/3.2",
     "test/writer.jats_publishing", 0},
    {"A22", "jgm__pandoc__format-validation.yml", "refs/heads/main", "src/Text/Pandoc.hs", 0},
    {"A23", "curl__curl__distcheck.yml", "refs/heads/master", "lib/url.c", 1},
    {"A24", "ziglang__zig__ci.yaml", "refs/heads/master", "src/main.zig", 1},
    {"A25", "go-gitea__gitea__release-tag-version.yml", "refs/heads/main", "go.mod", 0},
    {"A25", "go-gitea__gitea__release-tag-version.yml", "refs/tags/v1.22.0", NULL, 1},
    {"A25", "go-gitea__gitea__release-tag-version.yml", "refs/tags/v1.22.0-rc1", NULL, 0},
    {"A25", "go-gitea__gitea__release-tag-version.yml", "refs/tags/v1.23.0-dev", NULL, 0},
    {"A25", "go-gitea__gitea__release-tag-version.yml", "refs/tags/v1.23.0-dev-1", NULL, 1},
    {"A25", "go-gitea__gitea__release-tag-version.yml", "refs/tags/v1.2", NULL, 1},
    {"A25", "go-gitea__gitea__release-tag-version.yml", "refs/tags/v2.0.0", NULL, 0},
};

static void test_conformance_triggers(void **state)
{
    size_t passed = 0, n = sizeof(decisions) / sizeof(decisions[0]);

    if (!conf_present())
        skip();
    for (size_t i = 0; i < n; i++) {
        const struct decision *d = &decisions[i];
        int rc, got;
        struct pipeline_workflow *wf = conf_load(d->file, &rc);
        assert_int_equal(rc, 0);
        got = trig(wf, d->ref, d->path);
        if (got != d->triggered)
            printf("# FAIL %s %s: push of %s changing %s: %s, GitHub: %s\n", d->row, d->file,
                   d->ref, d->path ? d->path : "nothing", got ? "triggered" : "not triggered",
                   d->triggered ? "triggered" : "not triggered");
        passed += got == d->triggered;
        pipeline_workflow_free(wf);
    }
    printf("# gha-workflows: %zu of %zu trigger decisions as GitHub's\n", passed, n);
    assert_int_equal(passed, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_on_forms),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_keys_and_types),
        cmocka_unit_test(test_expressions),
        cmocka_unit_test(test_needs),
        cmocka_unit_test(test_uses),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_triggers),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_conformance_accepted),
        cmocka_unit_test(test_conformance_rejected),
        cmocka_unit_test(test_conformance_triggers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
