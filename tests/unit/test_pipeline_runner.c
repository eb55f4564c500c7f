/* Unit tests for the job runner (src/pipeline/runner.c) on an fs store, no
 * repository: matrix legs' names, job if: and skipped needs, status functions
 * after a failure, continue-on-error, outputs through needs, a dynamic matrix,
 * runs-on against the labels, defaults and env layering, timeouts, the record
 * and the run's conclusion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pipeline/pipeline.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char *work;
    struct store *st;
    struct buf log;   /* every echoed line, "[JOB] line\n" */
    unsigned tick_ms; /* the runner's tick; 0: its default */
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sw-runner-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char *data = path_join(f->dir, "data");
    f->work = path_join(f->dir, "work");
    if (mkdir(data, 0700) || mkdir(f->work, 0700) || store_open(data, &f->st, NULL))
        return -1;
    free(data);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_free(f->st);
    char *cmd = xasprintf("rm -rf %s", f->dir);
    int rc = system(cmd);
    free(cmd);
    free(f->work);
    buf_free(&f->log);
    free(f);
    return rc;
}

static void echo(void *ctx, size_t job, const char *name, const char *line, size_t len)
{
    struct fixture *f = ctx;
    buf_addf(&f->log, "[%s] ", name);
    buf_add(&f->log, line, len);
    buf_add(&f->log, "\n", 1);
}

/* A new run of workflow "wf" on a push to main by alice, claimed by "test-runner"; *created
 * gets the record as created. Both are the caller's to free. */
static struct pipeline_run *claim_new(struct fixture *f, struct pipeline_run **created)
{
    struct pipeline_run spec = {0}, *claimed = NULL;
    struct sw_err err = {0};

    spec.workflow = "wf";
    spec.workflow_file = ".github/workflows/wf.yml";
    spec.event = "push";
    spec.ref = "refs/heads/main";
    spec.sha = "0123456789abcdef0123456789abcdef01234567";
    spec.actor = "alice";
    assert_int_equal(pipeline_run_create(f->st, &spec, created, &err), 0);
    assert_int_equal(pipeline_run_claim(f->st, (*created)->id, "test-runner", 0, &claimed, &err),
                     0);
    return claimed;
}

/* Runs the workflow text to its end with jobs legs at once (tick_ms 0: the
 * default tick); returns the record as written. */
static struct pipeline_run *run_wf_with(struct fixture *f, const char *yaml,
                                        const char *const *labels, int jobs, int64_t tick_ms)
{
    struct pipeline_workflow *wf = NULL;
    struct pipeline_run *created = NULL, *claimed = NULL;
    struct sw_err err = {0};
    struct pipeline_runner_opts o = {0};

    assert_int_equal(pipeline_workflow_parse(yaml, strlen(yaml), "wf.yml", NULL, &wf, &err), 0);
    claimed = claim_new(f, &created);
    o.work_dir = f->work;
    o.labels = labels;
    o.jobs = jobs;
    o.echo = echo;
    o.echo_ctx = f;
    o.tick_ms = tick_ms;
    buf_reset(&f->log);
    assert_int_equal(pipeline_runner_run(f->st, claimed, wf, &o, &err), 0);
    buf_add(&f->log, "", 1);
    pipeline_run_free(created);
    pipeline_workflow_free(wf);
    return claimed;
}

/* Two legs at once, the fixture's tick. */
static struct pipeline_run *run_wf(struct fixture *f, const char *yaml, const char *const *labels)
{
    return run_wf_with(f, yaml, labels, 2, f->tick_ms);
}

/* run_wf with three legs at once (and the default tick). */
static struct pipeline_run *run_wf3(struct fixture *f, const char *yaml)
{
    return run_wf_with(f, yaml, NULL, 3, 0);
}

static const struct pipeline_run_job *job_named(const struct pipeline_run *r, const char *name)
{
    for (size_t i = 0; i < r->njobs; i++)
        if (strcmp(r->jobs[i].name, name) == 0)
            return &r->jobs[i];
    fail_msg("no job named %s", name);
    return NULL;
}

static void test_leg_name(void **state)
{
    (void)state;
    json_t *leg = json_pack("{s:i, s:s, s:b, s:f}", "n", 1, "os", "a", "x", 1, "v", 1.5);
    char *s = pipeline_runner_leg_name("test", leg);
    assert_string_equal(s, "test (1, a, true, 1.5)");
    free(s);
    json_decref(leg);
    leg = json_object();
    s = pipeline_runner_leg_name("build", leg);
    assert_string_equal(s, "build");
    free(s);
    json_decref(leg);
}

static void test_dag_outputs_matrix_if(void **state)
{
    struct fixture *f = *state;
    struct pipeline_run *r =
        run_wf(f,
               "on: push\n"
               "env: {A: wf, B: wf}\n"
               "defaults: {run: {shell: sh}}\n"
               "jobs:\n"
               "  setup:\n"
               "    runs-on: ubuntu-latest\n"
               "    env: {B: job}\n"
               "    outputs:\n"
               "      legs: ${{ steps.s.outputs.legs }}\n"
               "    steps:\n"
               "      - id: s\n"
               "        env: {C: step}\n"
               "        run: |\n"
               "          echo \"layers=$A $B $C\"\n"
               "          test \"${{ runner.temp }}\" = \"$RUNNER_TEMP\" && echo temp-ok\n"
               "          echo 'legs=[1, 2]' >> \"$GITHUB_OUTPUT\"\n"
               "  test:\n"
               "    needs: setup\n"
               "    runs-on: [self-hosted, linux]\n"
               "    strategy:\n"
               "      matrix:\n"
               "        n: ${{ fromJSON(needs.setup.outputs.legs) }}\n"
               "        include: [{n: 2, extra: x}]\n"
               "    steps:\n"
               "      - run: echo \"leg ${{ matrix.n }} ${{ matrix.extra }}\"\n"
               "  never:\n"
               "    needs: setup\n"
               "    if: github.ref == 'refs/heads/other'\n"
               "    runs-on: ubuntu-latest\n"
               "    steps: [{run: 'true'}]\n"
               "  after-never:\n"
               "    needs: never\n"
               "    runs-on: ubuntu-latest\n"
               "    steps: [{run: 'true'}]\n"
               "  always:\n"
               "    needs: never\n"
               "    if: always()\n"
               "    runs-on: ubuntu-latest\n"
               "    steps: [{run: 'echo \"never was ${{ needs.never.result }}\"'}]\n",
               NULL);
    assert_int_equal(r->status, PIPELINE_RUN_SUCCEEDED);
    assert_non_null(strstr(f->log.data, "[setup] layers=wf job step\n"));
    assert_non_null(strstr(f->log.data, "[setup] temp-ok\n"));
    assert_non_null(strstr(f->log.data, "[test (1)] leg 1 \n"));
    assert_non_null(strstr(f->log.data, "[test (2, x)] leg 2 x\n"));
    assert_non_null(strstr(f->log.data, "[always] never was skipped\n"));
    assert_int_equal(r->njobs, 6);
    assert_string_equal(json_string_value(json_object_get(job_named(r, "setup")->outputs, "legs")),
                        "[1, 2]");
    assert_int_equal(job_named(r, "test (1)")->conclusion, PIPELINE_CONCLUSION_SUCCESS);
    assert_int_equal(json_integer_value(json_object_get(job_named(r, "test (2, x)")->matrix, "n")),
                     2);
    assert_int_equal(job_named(r, "never")->conclusion, PIPELINE_CONCLUSION_SKIPPED);
    /* a need that was skipped skips its dependents (implicit success()) */
    assert_int_equal(job_named(r, "after-never")->conclusion, PIPELINE_CONCLUSION_SKIPPED);
    assert_int_equal(job_named(r, "always")->conclusion, PIPELINE_CONCLUSION_SUCCESS);
    pipeline_run_free(r);
}

static void test_failure_and_status_functions(void **state)
{
    struct fixture *f = *state;
    struct pipeline_run *r = run_wf(f,
                                    "on: push\n"
                                    "jobs:\n"
                                    "  a:\n"
                                    "    runs-on: ubuntu-latest\n"
                                    "    steps:\n"
                                    "      - id: soft\n"
                                    "        run: exit 2\n"
                                    "        continue-on-error: true\n"
                                    "      - run: echo \"soft ${{ steps.soft.outcome }} "
                                    "${{ steps.soft.conclusion }}\"\n"
                                    "      - run: exit 1\n"
                                    "      - run: echo skipped-after-failure\n"
                                    "      - if: failure()\n"
                                    "        run: echo on-failure\n"
                                    "      - if: always()\n"
                                    "        run: echo \"always ${{ job.status }}\"\n"
                                    "  b:\n"
                                    "    needs: a\n"
                                    "    runs-on: ubuntu-latest\n"
                                    "    steps: [{run: 'echo b ran'}]\n"
                                    "  c:\n"
                                    "    needs: a\n"
                                    "    if: failure()\n"
                                    "    runs-on: ubuntu-latest\n"
                                    "    steps: [{run: 'echo c ran'}]\n",
                                    NULL);
    assert_int_equal(r->status, PIPELINE_RUN_FAILED);
    const struct pipeline_run_job *a = job_named(r, "a");
    assert_int_equal(a->conclusion, PIPELINE_CONCLUSION_FAILURE);
    assert_int_equal(a->nsteps, 6);
    assert_int_equal(a->steps[0].outcome, PIPELINE_CONCLUSION_FAILURE);
    assert_int_equal(a->steps[0].conclusion, PIPELINE_CONCLUSION_SUCCESS);
    assert_int_equal(a->steps[2].conclusion, PIPELINE_CONCLUSION_FAILURE);
    assert_int_equal(a->steps[3].conclusion, PIPELINE_CONCLUSION_SKIPPED);
    assert_int_equal(a->steps[4].conclusion, PIPELINE_CONCLUSION_SUCCESS);
    assert_int_equal(a->steps[5].conclusion, PIPELINE_CONCLUSION_SUCCESS);
    assert_non_null(strstr(f->log.data, "[a] soft failure success\n"));
    assert_null(strstr(f->log.data, "skipped-after-failure\n"));
    assert_non_null(strstr(f->log.data, "[a] on-failure\n"));
    assert_non_null(strstr(f->log.data, "[a] always failure\n"));
    assert_int_equal(job_named(r, "b")->conclusion, PIPELINE_CONCLUSION_SKIPPED);
    assert_int_equal(job_named(r, "c")->conclusion, PIPELINE_CONCLUSION_SUCCESS);
    assert_non_null(strstr(f->log.data, "[c] c ran\n"));
    pipeline_run_free(r);
}

static void test_labels_and_fail_fast(void **state)
{
    struct fixture *f = *state;
    const char *labels[] = {"self-hosted", "gpu", NULL};
    struct pipeline_run *r = run_wf(f,
                                    "on: push\n"
                                    "jobs:\n"
                                    "  ok:\n"
                                    "    runs-on: [self-hosted, GPU]\n"
                                    "    steps: [{run: 'true'}]\n"
                                    "  no:\n"
                                    "    runs-on: ubuntu-latest\n"
                                    "    steps: [{run: 'echo should not run'}]\n",
                                    labels);
    assert_int_equal(r->status, PIPELINE_RUN_FAILED);
    assert_int_equal(job_named(r, "ok")->conclusion, PIPELINE_CONCLUSION_SUCCESS);
    assert_int_equal(job_named(r, "no")->conclusion, PIPELINE_CONCLUSION_FAILURE);
    assert_int_equal(job_named(r, "no")->nsteps, 0);
    assert_non_null(strstr(f->log.data, "no runner matches the labels of job no: runs-on "
                                        "[ubuntu-latest]; this runner has [self-hosted, gpu]"));
    assert_null(strstr(f->log.data, "should not run\n"));
    pipeline_run_free(r);

    /* fail-fast: once a leg fails, the legs not started are cancelled */
    r = run_wf(f,
               "on: push\n"
               "jobs:\n"
               "  m:\n"
               "    runs-on: ubuntu-latest\n"
               "    strategy:\n"
               "      max-parallel: 1\n"
               "      matrix: {n: [1, 2, 3]}\n"
               "    steps: [{run: 'exit ${{ matrix.n }}'}]\n",
               NULL);
    assert_int_equal(r->status, PIPELINE_RUN_FAILED);
    assert_int_equal(job_named(r, "m (1)")->conclusion, PIPELINE_CONCLUSION_FAILURE);
    assert_int_equal(job_named(r, "m (2)")->conclusion, PIPELINE_CONCLUSION_CANCELLED);
    assert_int_equal(job_named(r, "m (3)")->conclusion, PIPELINE_CONCLUSION_CANCELLED);
    pipeline_run_free(r);
}

static void test_timeout_and_logs(void **state)
{
    struct fixture *f = *state;
    struct pipeline_run *r = run_wf(f,
                                    "on: push\n"
                                    "jobs:\n"
                                    "  t:\n"
                                    "    runs-on: ubuntu-latest\n"
                                    "    timeout-minutes: 0.02\n"
                                    "    steps:\n"
                                    "      - run: echo first\n"
                                    "      - run: sleep 30\n",
                                    NULL);
    assert_int_equal(r->status, PIPELINE_RUN_FAILED);
    const struct pipeline_run_job *t = job_named(r, "t");
    assert_int_equal(t->conclusion, PIPELINE_CONCLUSION_FAILURE);
    assert_int_equal(t->steps[1].outcome, PIPELINE_CONCLUSION_FAILURE);
    assert_non_null(strstr(f->log.data, "exceeded the maximum execution time"));
    /* the stored log of step 1 holds its line, time-stamped */
    struct buf out = BUF_INIT;
    struct sw_err err = {0};
    uint64_t next = 0;
    assert_int_equal(pipeline_runlog_read(f->st, r->id, 0, 1, &next, 0, &out, &err), 0);
    buf_add(&out, "", 1);
    assert_non_null(strstr(out.data, "Z first\n"));
    buf_free(&out);
    pipeline_run_free(r);
}

static void test_secrets_never_stored(void **state)
{
    struct fixture *f = *state;
    setenv("SLIPWAY_SECRET_TOK", "hunter2-secret", 1);
    struct pipeline_run *r = run_wf(f,
                                    "on: push\n"
                                    "jobs:\n"
                                    "  s:\n"
                                    "    runs-on: ubuntu-latest\n"
                                    "    outputs:\n"
                                    "      leaky: ${{ steps.a.outputs.v }}\n"
                                    "      fine: ${{ steps.a.outputs.w }}\n"
                                    "    steps:\n"
                                    "      - id: a\n"
                                    "        name: use ${{ secrets.TOK }}\n"
                                    "        env: {T: '${{ secrets.TOK }}'}\n"
                                    "        run: |\n"
                                    "          echo \"v=$T\" >> \"$GITHUB_OUTPUT\"\n"
                                    "          echo \"w=plain\" >> \"$GITHUB_OUTPUT\"\n"
                                    "          echo \"token $T\"\n",
                                    NULL);
    unsetenv("SLIPWAY_SECRET_TOK");
    assert_int_equal(r->status, PIPELINE_RUN_SUCCEEDED);
    const struct pipeline_run_job *j = job_named(r, "s");
    assert_string_equal(j->steps[0].name, "use ***");
    assert_null(json_object_get(j->outputs, "leaky"));
    assert_string_equal(json_string_value(json_object_get(j->outputs, "fine")), "plain");
    assert_non_null(strstr(f->log.data, "[s] token ***\n"));
    assert_non_null(strstr(f->log.data, "Skip output 'leaky' since it may contain secret."));
    assert_null(strstr(f->log.data, "hunter2"));
    char *doc = pipeline_run_dump(r);
    assert_null(strstr(doc, "hunter2"));
    free(doc);
    pipeline_run_free(r);
}

static void test_outputs_bounded(void **state)
{
    struct fixture *f = *state;
    struct pipeline_run *r =
        run_wf(f,
               "on: push\n"
               "jobs:\n"
               "  big:\n"
               "    runs-on: ubuntu-latest\n"
               "    outputs:\n"
               "      a: ${{ steps.s.outputs.a }}\n"
               "      b: ${{ steps.t.outputs.b }}\n"
               "    steps:\n"
               "      - id: s\n"
               "        run: printf 'a=%0700000d\\n' 0 >> \"$GITHUB_OUTPUT\"\n"
               "      - id: t\n"
               "        run: printf 'b=%0700000d\\n' 0 >> \"$GITHUB_OUTPUT\"\n",
               NULL);
    /* past the record's bound: the job fails, recorded, without its outputs */
    assert_int_equal(r->status, PIPELINE_RUN_FAILED);
    const struct pipeline_run_job *j = job_named(r, "big");
    assert_int_equal(j->status, PIPELINE_JOB_COMPLETED);
    assert_int_equal(j->conclusion, PIPELINE_CONCLUSION_FAILURE);
    assert_int_equal(json_object_size(j->outputs), 0);
    assert_non_null(strstr(f->log.data, "more than the 1048576 a job may have"));
    pipeline_run_free(r);
}

/* The run's end does not wait for the ticker's next tick: with a tick of a
 * minute, a run of two quick steps still ends at once, its log and its steps
 * recorded (by the leg's end, not by the ticker). */
static void test_end_does_not_wait_for_tick(void **state)
{
    struct fixture *f = *state;
    f->tick_ms = 60000;
    int64_t t0 = time_mono_ms();
    struct pipeline_run *r =
        run_wf(f,
               "on: push\n"
               "jobs:\n"
               "  q:\n"
               "    runs-on: ubuntu-latest\n"
               "    steps:\n"
               "      - run: echo one\n"
               "      - run: echo two; tr -d ' \\n' < \"$GITHUB_EVENT_PATH\"\n",
               NULL);
    int64_t took = time_mono_ms() - t0;
    assert_true(took < 30000);
    assert_int_equal(r->status, PIPELINE_RUN_SUCCEEDED);
    const struct pipeline_run_job *q = job_named(r, "q");
    assert_int_equal(q->nsteps, 2);
    assert_int_equal(q->steps[1].conclusion, PIPELINE_CONCLUSION_SUCCESS);
    struct buf out = BUF_INIT;
    struct sw_err err = {0};
    uint64_t next = 0;
    assert_int_equal(pipeline_runlog_read(f->st, r->id, 0, 2, &next, 0, &out, &err), 0);
    buf_add(&out, "", 1);
    assert_non_null(strstr(out.data, "Z two\n"));
    /* GITHUB_EVENT_PATH holds the push's payload */
    assert_non_null(strstr(out.data, "\"ref\":\"refs/heads/main\""));
    buf_free(&out);
    pipeline_run_free(r);
}

/* strategy: the context holds the evaluated fail-fast and max-parallel
 * (at most the legs there are), and both may be expressions */
static void test_strategy(void **state)
{
    struct fixture *f = *state;
    struct pipeline_run *r =
        run_wf(f,
               "on: push\n"
               "jobs:\n"
               "  m:\n"
               "    runs-on: ubuntu-latest\n"
               "    strategy:\n"
               "      max-parallel: ${{ github.ref == 'refs/heads/main' && 1 || 3 }}\n"
               "      fail-fast: ${{ github.ref != 'refs/heads/main' }}\n"
               "      matrix: {n: [1, 2, 3]}\n"
               "    steps:\n"
               "      - run: echo \"s=${{ strategy.fail-fast }},${{ strategy.job-index }},"
               "${{ strategy.job-total }},${{ strategy.max-parallel }}\"\n"
               "      - run: 'exit ${{ matrix.n == 1 && 1 || 0 }}'\n"
               "  w:\n"
               "    runs-on: ubuntu-latest\n"
               "    strategy:\n"
               "      max-parallel: 8\n"
               "      matrix: {n: [1, 2]}\n"
               "    steps: [{run: 'echo \"s=${{ toJSON(strategy) }}\" | tr -d \" \\n\"; echo'}]\n"
               "  bad:\n"
               "    runs-on: ubuntu-latest\n"
               "    strategy: {max-parallel: '${{ 0 }}', matrix: {n: [1]}}\n"
               "    steps: [{run: 'true'}]\n",
               NULL);
    /* fail-fast false: the legs after the failed one still run, one at a time */
    assert_int_equal(job_named(r, "m (1)")->conclusion, PIPELINE_CONCLUSION_FAILURE);
    assert_int_equal(job_named(r, "m (2)")->conclusion, PIPELINE_CONCLUSION_SUCCESS);
    assert_int_equal(job_named(r, "m (3)")->conclusion, PIPELINE_CONCLUSION_SUCCESS);
    assert_non_null(strstr(f->log.data, "[m (1)] s=false,0,3,1\n"));
    assert_non_null(strstr(f->log.data, "[m (3)] s=false,2,3,1\n"));
    assert_non_null(strstr(f->log.data, "[w (2)] s={fail-fast:true,job-index:1,job-total:2,"
                                        "max-parallel:2}\n"));
    assert_int_equal(job_named(r, "bad")->conclusion, PIPELINE_CONCLUSION_FAILURE);
    assert_non_null(strstr(f->log.data, "max-parallel: expected a number of at least 1"));
    pipeline_run_free(r);
}

/* environment: its name (and url) evaluated when the job starts, with its
 * matrix; the url again after the steps, which it may name; recorded in the
 * job's entry. A job without one has none. */
static void test_environment(void **state)
{
    struct fixture *f = *state;
    struct pipeline_run *r =
        run_wf(f,
               "on: push\n"
               "jobs:\n"
               "  deploy:\n"
               "    runs-on: ubuntu-latest\n"
               "    strategy: {matrix: {stage: [staging, prod]}}\n"
               "    environment:\n"
               "      name: ${{ matrix.stage }}-${{ github.ref_name }}\n"
               "      url: https://${{ matrix.stage }}.example.com/${{ steps.d.outputs.path }}\n"
               "    steps:\n"
               "      - id: d\n"
               "        run: echo 'path=v1/index.html' >> \"$GITHUB_OUTPUT\"\n"
               "  plain:\n"
               "    runs-on: ubuntu-latest\n"
               "    environment: review\n"
               "    steps: [{run: 'true'}]\n"
               "  none:\n"
               "    runs-on: ubuntu-latest\n"
               "    steps: [{run: 'true'}]\n"
               "  bad:\n"
               "    runs-on: ubuntu-latest\n"
               "    environment: ${{ fromJSON('{') }}\n"
               "    steps: [{run: 'echo never'}]\n",
               NULL);
    const struct pipeline_run_job *j = job_named(r, "deploy (staging)");
    assert_string_equal(j->environment_name, "staging-main");
    assert_string_equal(j->environment_url, "https://staging.example.com/v1/index.html");
    j = job_named(r, "deploy (prod)");
    assert_string_equal(j->environment_name, "prod-main");
    assert_string_equal(j->environment_url, "https://prod.example.com/v1/index.html");
    j = job_named(r, "plain");
    assert_string_equal(j->environment_name, "review");
    assert_null(j->environment_url);
    assert_null(job_named(r, "none")->environment_name);
    /* an environment that does not evaluate fails the job before any step */
    j = job_named(r, "bad");
    assert_int_equal(j->conclusion, PIPELINE_CONCLUSION_FAILURE);
    assert_int_equal(j->nsteps, 0);
    assert_non_null(strstr(f->log.data, "[bad] ##[error]job bad: environment:"));
    assert_null(strstr(f->log.data, "never\n"));
    json_t *v = pipeline_run_json(r, 1);
    json_t *env = json_object_get(json_array_get(json_object_get(v, "jobs"), 0), "environment");
    assert_string_equal(json_string_value(json_object_get(env, "name")), "staging-main");
    json_decref(v);
    pipeline_run_free(r);
}

/* Job concurrency inside one run: legs of one group never overlap (the
 * second waits, queued, while the first runs); of three legs arriving at
 * once, one runs, one waits, and the third displaces the waiting one, which
 * is cancelled with GitHub's reason, and the run ends cancelled. */
static void test_job_concurrency(void **state)
{
    struct fixture *f = *state;
    struct pipeline_run *r = run_wf(f,
                                    "on: push\n"
                                    "jobs:\n"
                                    "  d:\n"
                                    "    runs-on: ubuntu-latest\n"
                                    "    strategy: {matrix: {n: [1, 2]}}\n"
                                    "    concurrency: deploy-${{ github.ref }}\n"
                                    "    steps:\n"
                                    "      - run: sleep 1.5; echo leg ${{ matrix.n }} done\n",
                                    NULL);
    assert_int_equal(r->status, PIPELINE_RUN_SUCCEEDED);
    const struct pipeline_run_job *a = job_named(r, "d (1)"), *b = job_named(r, "d (2)");
    assert_int_equal(a->conclusion, PIPELINE_CONCLUSION_SUCCESS);
    assert_int_equal(b->conclusion, PIPELINE_CONCLUSION_SUCCESS);
    /* one after the other, although two jobs may run at once */
    assert_true(a->ended_ms <= b->started_ms || b->ended_ms <= a->started_ms);
    assert_non_null(strstr(f->log.data, "waiting for job "));
    assert_non_null(strstr(f->log.data, "in concurrency group deploy-refs/heads/main"));
    pipeline_run_free(r);

    /* without a group the same legs overlap: the check above can fail */
    r = run_wf(f,
               "on: push\n"
               "jobs:\n"
               "  d:\n"
               "    runs-on: ubuntu-latest\n"
               "    strategy: {matrix: {n: [1, 2]}}\n"
               "    steps:\n"
               "      - run: sleep 1.5\n",
               NULL);
    a = job_named(r, "d (1)"), b = job_named(r, "d (2)");
    assert_false(a->ended_ms <= b->started_ms || b->ended_ms <= a->started_ms);
    pipeline_run_free(r);
}

static void test_job_concurrency_displaced(void **state)
{
    struct fixture *f = *state;
    /* three legs, three jobs at once: one holds, one waits, the third
     * displaces the one waiting */
    struct pipeline_run *r = run_wf3(f, "on: push\n"
                                        "jobs:\n"
                                        "  d:\n"
                                        "    runs-on: ubuntu-latest\n"
                                        "    strategy: {fail-fast: false, matrix: {n: [1, 2, 3]}}\n"
                                        "    concurrency: {group: one, cancel-in-progress: false}\n"
                                        "    steps:\n"
                                        "      - run: sleep 2\n");
    size_t ok = 0, cancelled = 0;
    for (size_t i = 0; i < r->njobs; i++) {
        ok += r->jobs[i].conclusion == PIPELINE_CONCLUSION_SUCCESS;
        if (r->jobs[i].conclusion == PIPELINE_CONCLUSION_CANCELLED) {
            cancelled++;
            assert_int_equal(r->jobs[i].nsteps, 0);
            assert_string_equal(r->jobs[i].reason,
                                "Canceling since a higher priority waiting request for 'one' "
                                "exists");
        }
    }
    assert_int_equal(ok, 2);
    assert_int_equal(cancelled, 1);
    assert_int_equal(r->status, PIPELINE_RUN_CANCELLED);
    assert_non_null(strstr(f->log.data, "##[warning]Canceling since a higher priority"));
    pipeline_run_free(r);

    /* cancel-in-progress: the running job is stopped, its step cancelled;
     * `second` joins only once `first`'s step runs (through `gate`) */
    r = run_wf3(f,
                "on: push\n"
                "jobs:\n"
                "  first:\n"
                "    runs-on: ubuntu-latest\n"
                "    concurrency: {group: two, cancel-in-progress: true}\n"
                "    steps:\n"
                "      - run: touch \"$RUNNER_TEMP/../../started\"; sleep 30\n"
                "      - run: echo first went on\n"
                "  gate:\n"
                "    runs-on: ubuntu-latest\n"
                "    steps:\n"
                "      - run: |\n"
                "          for i in $(seq 200); do [ -e \"$RUNNER_TEMP/../../started\" ] && break; "
                "sleep 0.1; done\n"
                "  second:\n"
                "    needs: gate\n"
                "    runs-on: ubuntu-latest\n"
                "    concurrency: {group: two, cancel-in-progress: '${{ true }}'}\n"
                "    steps:\n"
                "      - run: echo second ran\n");
    const struct pipeline_run_job *a = job_named(r, "first"), *b = job_named(r, "second");
    assert_int_equal(a->conclusion, PIPELINE_CONCLUSION_CANCELLED);
    assert_int_equal(a->nsteps, 2);
    assert_int_equal(a->steps[0].outcome, PIPELINE_CONCLUSION_CANCELLED);
    assert_non_null(strstr(a->reason, "higher priority waiting request for 'two'"));
    assert_int_equal(b->conclusion, PIPELINE_CONCLUSION_SUCCESS);
    assert_true(b->started_ms >= a->ended_ms);
    assert_true(a->ended_ms - a->started_ms < 20000);
    assert_non_null(strstr(f->log.data, "[second] second ran\n"));
    assert_null(strstr(f->log.data, "first went on"));
    assert_int_equal(r->status, PIPELINE_RUN_CANCELLED);
    pipeline_run_free(r);
}

/* Writes text to DIR/name and loads it as a runner configuration. */
static int conf_load(struct fixture *f, const char *text, struct pipeline_runner_config *c,
                     struct sw_err *err)
{
    char *path = path_join(f->dir, "runner.yml");
    assert_int_equal(fs_write_atomic(path, text, strlen(text), err), 0);
    int rc = pipeline_runner_config_load(path, c, err);
    free(path);
    return rc;
}

/* Sets a claimed run waiting at its gates, as a runner does when its jobs wait. */
static int set_waiting(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    r->status = PIPELINE_RUN_WAITING;
    return 0;
}

/* A cancel asked of a waiting run before its runner parks it is acted on, not
 * parked: a parked run with a cancel request is claimed again at once, so
 * parking it went round and round (tests/e2e/270 once saw it for 30 s). */
static void test_park_refuses_a_cancel(void **state)
{
    struct fixture *f = *state;
    struct pipeline_run *created = NULL, *claimed = NULL, *out = NULL;
    struct sw_err err = {0};

    claimed = claim_new(f, &created);
    assert_int_equal(pipeline_run_update(f->st, claimed, set_waiting, NULL, &err), 0);
    assert_int_equal(pipeline_run_cancel(f->st, created->id, "bob", &out, &err), 0);
    assert_true(out->cancel_requested);
    assert_int_equal(pipeline_run_park(f->st, claimed, &err), PIPELINE_ECANCEL);
    assert_non_null(strstr(err.msg, "a cancel was asked"));
    /* Still claimed by this runner, so the runner can end it cancelled. */
    assert_int_equal(pipeline_run_finish(f->st, claimed, PIPELINE_CONCLUSION_CANCELLED, NULL, &err),
                     0);
    assert_int_equal(claimed->status, PIPELINE_RUN_CANCELLED);
    pipeline_run_free(out);
    pipeline_run_free(created);
    pipeline_run_free(claimed);
}

static void test_runner_config(void **state)
{
    struct fixture *f = *state;
    struct pipeline_runner_config c;
    struct sw_err err = {0};
    char *missing = path_join(f->dir, "none.yml");

    /* a missing file sets nothing */
    assert_int_equal(pipeline_runner_config_load(missing, &c, &err), 0);
    assert_null(c.labels);
    assert_int_equal(c.unsupported, -1);
    assert_int_equal(c.jobs, 0);
    free(missing);
    /* an empty one neither */
    assert_int_equal(conf_load(f, "", &c, &err), 0);
    assert_null(c.labels);
    pipeline_runner_config_free(&c);

    assert_int_equal(
        conf_load(f, "labels: [self-hosted, gpu, linux-x64]\nunsupported: skip\njobs: 4\n", &c,
                  &err),
        0);
    assert_non_null(c.labels);
    assert_string_equal(c.labels[0], "self-hosted");
    assert_string_equal(c.labels[2], "linux-x64");
    assert_null(c.labels[3]);
    assert_int_equal(c.unsupported, 1);
    assert_int_equal(c.jobs, 4);
    pipeline_runner_config_free(&c);
    assert_int_equal(conf_load(f, "unsupported: error\n", &c, &err), 0);
    assert_int_equal(c.unsupported, 0);
    pipeline_runner_config_free(&c);

    /* every fault names file, line and column */
    struct {
        const char *text, *want;
    } bad[] = {
        {"labels: [a]\nlabel: [b]\n", "runner.yml:2:1: unknown key 'label' (expected labels, "
                                      "unsupported or jobs)"},
        {"labels: gpu\n", "runner.yml:1:9: labels: expected a list of labels"},
        {"labels: []\n", "runner.yml:1:9: labels: expected at least one label"},
        {"labels:\n  - ok\n  - 'two words'\n", "runner.yml:3:5: labels: expected a label"},
        {"labels: [a, 'x,y']\n", "runner.yml:1:13: labels: expected a label"},
        {"labels: [a, [b]]\n", "runner.yml:1:13: labels: expected a label"},
        {"unsupported: maybe\n", "runner.yml:1:14: unsupported: expected skip or error"},
        {"jobs: 0\n", "runner.yml:1:7: jobs: expected a whole number from 1 to 64, got '0'"},
        {"jobs: 65\n", "runner.yml:1:7: jobs: expected a whole number from 1 to 64"},
        {"jobs: two\n", "runner.yml:1:7: jobs: expected a whole number"},
        {"- labels\n", "runner.yml:1:1: expected a mapping of settings"},
        {"jobs: 1\njobs: 2\n", "runner.yml:2:1: duplicate key"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err = (struct sw_err){0};
        assert_int_equal(conf_load(f, bad[i].text, &c, &err), SW_EINVAL);
        if (!strstr(err.msg, bad[i].want))
            fail_msg("%s: got '%s', want '%s'", bad[i].text, err.msg, bad[i].want);
        assert_null(c.labels);
        pipeline_runner_config_free(&c);
    }
    assert_true(pipeline_runner_label_valid("ubuntu-22.04"));
    assert_false(pipeline_runner_label_valid(""));
    assert_false(pipeline_runner_label_valid("a\tb"));
    assert_false(pipeline_runner_label_valid("a\x1b[31m"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leg_name),
        cmocka_unit_test_setup_teardown(test_dag_outputs_matrix_if, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_and_status_functions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels_and_fail_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_never_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outputs_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runner_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_concurrency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_concurrency_displaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strategy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_does_not_wait_for_tick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_park_refuses_a_cancel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
