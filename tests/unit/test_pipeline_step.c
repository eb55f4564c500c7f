/* Unit tests for running one `run:` step (src/pipeline/step.c, stepcmd.c),
 * against real processes: file commands (outputs single and multi-line, a
 * delimiter in the value, GITHUB_ENV and GITHUB_PATH carried to the next
 * step, NODE_OPTIONS), an environment that holds nothing of this process's,
 * masking (secrets, multi-line ones, ::add-mask::, a secret split across
 * reads and across the pieces of an overlong line), every workflow command,
 * stop-commands, the old set-output, set-env refused, the log cap with
 * bounded memory under 100 MB of output, timeouts that stop a grandchild,
 * processes left running (cleaned at job end, or at step end), cancel, the
 * shells (default, bash, sh, python, a template, pwsh refused), and the
 * parsers themselves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pipeline/pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------------- */

struct logbook {
    struct buf text; /* "PREFIXtext\n" per line, when keep */
    size_t lines, caps;
    uint64_t bytes;
    int keep;
};

static void collect(void *ctx, int64_t t, enum pipeline_step_log_kind kind, const char *text,
                    size_t len)
{
    struct logbook *lb = ctx;
    assert_true(t > 0);
    assert_null(memchr(text, '\n', len));
    assert_null(memchr(text, '\r', len));
    lb->lines++;
    lb->bytes += len + 1;
    if (len > 20 && strstr(text, "this step's log reached"))
        lb->caps++;
    if (lb->keep) {
        buf_adds(&lb->text, pipeline_step_log_prefix(kind));
        buf_add(&lb->text, text, len);
        buf_add(&lb->text, "\n", 1);
    }
}

struct fixture {
    char dir[64];  /* the test's own directory */
    char work[96]; /* working directory */
    char temp[96]; /* RUNNER_TEMP */
    struct logbook log;
    struct pipeline_step_spec spec;
    struct pipeline_step_result r;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/slipway-step-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->work, sizeof(f->work), "%s/work", f->dir);
    snprintf(f->temp, sizeof(f->temp), "%s/temp", f->dir);
    mkdir(f->work, 0755);
    mkdir(f->temp, 0755);
    f->log.keep = 1;
    f->spec.name = "test";
    f->spec.working_directory = f->work;
    f->spec.temp_dir = f->temp;
    f->spec.workspace = f->work;
    f->spec.kill_grace_ms = 300;
    f->spec.log = collect;
    f->spec.log_ctx = &f->log;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[160];
    pipeline_step_result_free(&f->r);
    buf_free(&f->log.text);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Runs script with the fixture's spec (result in f->r, log in f->log). */
static void run(struct fixture *f, const char *script)
{
    struct sw_err err = {0};
    pipeline_step_result_free(&f->r);
    buf_reset(&f->log.text);
    f->log.lines = f->log.caps = 0;
    f->log.bytes = 0;
    f->spec.script = script;
    int rc = pipeline_step_run(&f->spec, &f->r, &err);
    if (rc)
        print_message("# pipeline_step_run: %s\n", err.msg);
    assert_int_equal(rc, 0);
    /* No step leaves its files behind. */
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s/_runner_file_commands' 2>/dev/null)\"",
             f->temp);
    assert_int_equal(system(cmd), 0);
}

static const char *log_text(struct fixture *f)
{
    return f->log.text.data ? f->log.text.data : "";
}

static void assert_logged(struct fixture *f, const char *s)
{
    if (!strstr(log_text(f), s))
        print_message("# log:\n%s# lacks: %s\n", log_text(f), s);
    assert_non_null(strstr(log_text(f), s));
}

/* The log after GitHub's header (which shows the script as written, and so
 * whatever the script says before ::add-mask:: runs, as on GitHub). */
static const char *body(struct fixture *f)
{
    const char *b = strstr(log_text(f), "##[endgroup]\n");
    return b ? b + strlen("##[endgroup]\n") : log_text(f);
}

static void assert_not_logged(struct fixture *f, const char *s)
{
    if (strstr(body(f), s))
        print_message("# log:\n%s# has: %s\n", log_text(f), s);
    assert_null(strstr(body(f), s));
}

static const char *output(struct fixture *f, const char *name)
{
    const struct pipeline_step_var *v = pipeline_step_vars_get(&f->r.outputs, name);
    return v ? v->value : NULL;
}

/* The first annotation of a level whose message contains s. */
static const struct pipeline_step_annotation *
annotation(struct fixture *f, enum pipeline_step_level level, const char *s)
{
    for (size_t i = 0; i < f->r.nannotations; i++)
        if (f->r.annotations[i].level == level && strstr(f->r.annotations[i].message, s))
            return &f->r.annotations[i];
    return NULL;
}

static void vars_put(struct pipeline_step_vars *v, const char *name, const char *value)
{
    pipeline_step_vars_set(v, name, strlen(name), value, strlen(value));
}

static int alive(pid_t pid)
{
    char path[64], state = 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    /* "PID (comm) S ...": a zombie (Z) has ended. */
    int n = fscanf(fp, "%*d (%*[^)]) %c", &state);
    fclose(fp);
    return n == 1 && state != 'Z';
}

/* Waits up to ms for pid to end. */
static int gone_within(pid_t pid, int ms)
{
    for (int i = 0; i < ms / 20; i++) {
        if (!alive(pid))
            return 1;
        usleep(20000);
    }
    return !alive(pid);
}

static pid_t read_pid(struct fixture *f, const char *name)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", f->work, name);
    FILE *fp = fopen(path, "r");
    int pid = 0;
    if (fp) {
        if (fscanf(fp, "%d", &pid) != 1)
            pid = 0;
        fclose(fp);
    }
    assert_true(pid > 0);
    return (pid_t)pid;
}

/* ---- file commands ------------------------------------------------------------------------- */

static void test_step_outputs(void **state)
{
    struct fixture *f = *state;
    run(f, "echo 'one=1' >> \"$GITHUB_OUTPUT\"\n"
           "echo 'eq=a=b=c' >> \"$GITHUB_OUTPUT\"\n"
           "echo 'empty=' >> \"$GITHUB_OUTPUT\"\n"
           "{ echo 'multi<<EOF'; echo 'line 1'; echo 'line 2'; echo 'EOF'; } >> "
           "\"$GITHUB_OUTPUT\"\n"
           "printf 'last<<END\\nno newline after the delimiter\\nEND' >> \"$GITHUB_OUTPUT\"\n");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_string_equal(output(f, "one"), "1");
    assert_string_equal(output(f, "eq"), "a=b=c");
    assert_string_equal(output(f, "empty"), "");
    assert_string_equal(output(f, "multi"), "line 1\nline 2");
    assert_string_equal(output(f, "last"), "no newline after the delimiter");
    assert_int_equal(f->r.outputs.n, 5);
    assert_int_equal(f->r.errors, 0);
}

static void test_step_output_delimiter(void **state)
{
    struct fixture *f = *state;
    /* The delimiter inside the value ends it: what follows is a line of its
     * own, and not a valid one. The pair before the fault is kept. */
    run(f, "printf 'x<<EOF\\nbefore\\nEOF\\nafter\\nEOF\\n' >> \"$GITHUB_OUTPUT\"\n");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_FAILURE);
    assert_int_equal(f->r.exit_code, 0);
    assert_string_equal(output(f, "x"), "before");
    assert_non_null(
        annotation(f, PIPELINE_ERROR, "Unable to process file command 'output' successfully."));
    assert_non_null(annotation(f, PIPELINE_ERROR, "Invalid format 'after'"));

    run(f, "printf 'y<<END\\nabc\\n' >> \"$GITHUB_OUTPUT\"\n");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_FAILURE);
    assert_non_null(
        annotation(f, PIPELINE_ERROR, "Invalid value. Matching delimiter not found 'END'"));
    run(f, "printf 'y<<END\\nabc' >> \"$GITHUB_OUTPUT\"\n");
    assert_non_null(annotation(f, PIPELINE_ERROR, "Invalid value. EOF marker missing new line."));
    run(f, "echo 'nothing here' >> \"$GITHUB_ENV\"\n");
    assert_non_null(
        annotation(f, PIPELINE_ERROR, "Unable to process file command 'env' successfully."));
    assert_non_null(annotation(f, PIPELINE_ERROR, "Invalid format 'nothing here'"));
    run(f, "echo '<<EOF' >> \"$GITHUB_OUTPUT\"\n");
    assert_non_null(
        annotation(f, PIPELINE_ERROR, "Name must not be empty and delimiter must not be empty"));
}

static void test_step_env_and_path_carry(void **state)
{
    struct fixture *f = *state;
    struct pipeline_step_vars env = PIPELINE_STEP_VARS_INIT;
    struct pipeline_step_list path = PIPELINE_STEP_LIST_INIT;

    run(f, "echo 'FOO=from step one' >> \"$GITHUB_ENV\"\n"
           "{ echo 'LINES<<X'; echo a; echo b; echo X; } >> \"$GITHUB_ENV\"\n"
           "echo 'NODE_OPTIONS=--require evil.js' >> \"$GITHUB_ENV\"\n"
           "echo 'SLIPWAY_SECRET_Z=z' >> \"$GITHUB_ENV\"\n"
           "mkdir -p bin1 bin2\n"
           "printf '#!/bin/sh\\necho tool one\\n' > bin1/tool; chmod +x bin1/tool\n"
           "printf '#!/bin/sh\\necho tool two\\n' > bin2/tool; chmod +x bin2/tool\n"
           "echo \"$PWD/bin1\" >> \"$GITHUB_PATH\"\n"
           "echo \"$PWD/bin2\" >> \"$GITHUB_PATH\"\n");
    /* NODE_OPTIONS is refused as GitHub refuses it: an error, not a failure. */
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_non_null(
        annotation(f, PIPELINE_ERROR,
                   "Can't store NODE_OPTIONS output parameter using '$GITHUB_ENV' command."));
    assert_null(pipeline_step_vars_get(&f->r.env, "NODE_OPTIONS"));
    assert_null(pipeline_step_vars_get(&f->r.env, "SLIPWAY_SECRET_Z"));
    assert_string_equal(pipeline_step_vars_get(&f->r.env, "FOO")->value, "from step one");
    assert_string_equal(pipeline_step_vars_get(&f->r.env, "LINES")->value, "a\nb");
    assert_int_equal(f->r.path.n, 2);

    /* The caller passes them on, as a job does. */
    for (size_t i = 0; i < f->r.env.n; i++)
        pipeline_step_vars_set(&env, f->r.env.v[i].name, strlen(f->r.env.v[i].name),
                               f->r.env.v[i].value, f->r.env.v[i].value_len);
    for (size_t i = 0; i < f->r.path.n; i++)
        pipeline_step_path_prepend(&path, f->r.path.v[i]);
    f->spec.env = &env;
    f->spec.path = &path;
    run(f, "echo \"FOO=$FOO\"; echo \"LINES=$LINES\" | tr '\\n' ' '; echo; tool\n"
           "echo \"PATH=$PATH\"\n");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_logged(f, "\nFOO=from step one\n");
    assert_logged(f, "\nLINES=a b \n");
    assert_logged(f, "\ntool two\n"); /* the last added comes first */
    char want[256];
    snprintf(want, sizeof(want), "\nPATH=%s/bin2:%s/bin1:", f->work, f->work);
    assert_logged(f, want);
    /* GitHub's header shows the step's env. */
    assert_logged(f, "\nenv:\n  FOO: from step one\n");

    /* Adding one again moves it to the front. */
    pipeline_step_path_prepend(&path, path.v[0]);
    run(f, "tool");
    assert_logged(f, "\ntool one\n");
    f->spec.env = NULL;
    f->spec.path = NULL;
    pipeline_step_vars_free(&env);
    pipeline_step_list_free(&path);
}

static void test_step_env_isolation(void **state)
{
    struct fixture *f = *state;
    struct pipeline_step_vars env = PIPELINE_STEP_VARS_INIT, runner = PIPELINE_STEP_VARS_INIT;

    setenv("SLIPWAY_SECRET_X", "leaked-secret", 1);
    setenv("FOO_FROM_CALLER", "leaked-value", 1);
    vars_put(&env, "WORKFLOW_VAR", "w");
    vars_put(&env, "SLIPWAY_SECRET_Y", "also-leaked");
    vars_put(&env, "GITHUB_SHA", "user-cannot-override");
    vars_put(&env, "CI", "overridden");
    vars_put(&runner, "GITHUB_SHA", "abc123");
    vars_put(&runner, "SLIPWAY_RUN_ID", "run-1");
    f->spec.env = &env;
    f->spec.runner_env = &runner;
    run(f, "env | sort");
    unsetenv("SLIPWAY_SECRET_X");
    unsetenv("FOO_FROM_CALLER");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_not_logged(f, "leaked");
    assert_not_logged(f, "\nSLIPWAY_SECRET_");
    assert_logged(f, "\nWORKFLOW_VAR=w\n");
    assert_logged(f, "\nGITHUB_SHA=abc123\n");
    assert_logged(f, "\nSLIPWAY_RUN_ID=run-1\n");
    assert_logged(f, "\nCI=overridden\n"); /* GitHub lets a workflow override CI */
    assert_logged(f, "\nGITHUB_OUTPUT=");
    assert_logged(f, "\nGITHUB_ENV=");
    assert_logged(f, "\nGITHUB_PATH=");
    assert_logged(f, "\nGITHUB_STEP_SUMMARY=");
    assert_logged(f, "\nGITHUB_STATE=");
    char want[160];
    snprintf(want, sizeof(want), "\nRUNNER_TEMP=%s\n", f->temp);
    assert_logged(f, want);
    snprintf(want, sizeof(want), "\nHOME=%s\n", getenv("HOME"));
    assert_logged(f, want);
    assert_logged(f, "##[warning]slipway never passes SLIPWAY_SECRET_* variables to steps: "
                     "SLIPWAY_SECRET_Y is not passed");
    /* Only those: the names the step sees are exactly these. */
    run(f, "env | cut -d= -f1 | sort | tr '\\n' ' '");
    assert_logged(f, "\nCI GITHUB_ENV GITHUB_OUTPUT GITHUB_PATH GITHUB_SHA GITHUB_STATE "
                     "GITHUB_STEP_SUMMARY HOME PATH PWD RUNNER_TEMP SHLVL SLIPWAY_RUN_ID "
                     "WORKFLOW_VAR _ \n");
    /* stdin is /dev/null: cat ends at once. */
    run(f, "cat; echo \"read: $?\"");
    assert_logged(f, "\nread: 0\n");
    f->spec.env = f->spec.runner_env = NULL;
    pipeline_step_vars_free(&env);
    pipeline_step_vars_free(&runner);
}

static void test_step_summary(void **state)
{
    struct fixture *f = *state;
    struct pipeline_step_list masks = PIPELINE_STEP_LIST_INIT;
    pipeline_step_list_add(&masks, "s3cr3t", 6);
    f->spec.masks = &masks;
    run(f, "echo '# Report' >> \"$GITHUB_STEP_SUMMARY\"\n"
           "printf 'token s3cr3t here\\r\\nlast' >> \"$GITHUB_STEP_SUMMARY\"\n");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_string_equal(f->r.summary, "# Report\ntoken *** here\nlast\n");
    /* Over 1 MiB: refused as GitHub refuses it, and the step still succeeds. */
    run(f, "head -c 1048577 /dev/zero | tr '\\0' x >> \"$GITHUB_STEP_SUMMARY\"");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_null(f->r.summary);
    assert_non_null(annotation(f, PIPELINE_ERROR,
                               "$GITHUB_STEP_SUMMARY upload aborted, supports content up to a "
                               "size of 1024k, got 1024k."));
    /* A byte order mark is not part of the text, as .NET reads it. */
    run(f, "printf '\\357\\273\\277/opt/bom\\n' >> \"$GITHUB_PATH\"\n"
           "printf '\\357\\273\\277' >> \"$GITHUB_STEP_SUMMARY\"\n");
    assert_int_equal(f->r.path.n, 1);
    assert_string_equal(f->r.path.v[0], "/opt/bom");
    assert_null(f->r.summary);
    /* Nor does a summary that is no file. */
    run(f, "rm \"$GITHUB_STEP_SUMMARY\"; mkfifo \"$GITHUB_STEP_SUMMARY\"");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_non_null(annotation(f, PIPELINE_ERROR,
                               "Failed to create step summary using "
                               "'GITHUB_STEP_SUMMARY': "));
    f->spec.masks = NULL;
    pipeline_step_list_free(&masks);
}

static void test_step_file_bounds(void **state)
{
    struct fixture *f = *state;
    f->spec.max_file = 4096;
    run(f, "head -c 5000 /dev/zero | tr '\\0' x | sed 's/^/big=/' >> \"$GITHUB_OUTPUT\"");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_FAILURE);
    assert_null(output(f, "big"));
    assert_non_null(annotation(f, PIPELINE_ERROR, "more than the 4 KiB slipway reads"));
    /* A FIFO in place of the file is refused, not waited on. */
    run(f, "rm \"$GITHUB_ENV\"; mkfifo \"$GITHUB_ENV\"");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_FAILURE);
    assert_non_null(annotation(f, PIPELINE_ERROR, "is not a regular file"));
    /* A file the step removed is nothing to read. */
    run(f, "rm \"$GITHUB_OUTPUT\"");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    f->spec.max_file = 0;
}

/* ---- masking
 * --------------------------------------------------------------------------------------- */

static void test_step_masking(void **state)
{
    struct fixture *f = *state;
    struct pipeline_step_list masks = PIPELINE_STEP_LIST_INIT;
    const char *ml = "  -----BEGIN KEY-----\nline-two-of-key\r\n-----END KEY-----  ";
    pipeline_step_list_add(&masks, "hunter2", 7);
    pipeline_step_list_add(&masks, ml, strlen(ml));
    f->spec.masks = &masks;
    run(f, "echo 'password: hunter2!'\n"
           "echo 'x hunter2hunter2 y'\n"
           "echo '-----BEGIN KEY-----'; echo 'line-two-of-key'; echo '-----END KEY-----'\n"
           "echo \"::add-mask::dyn-secret\"\n"
           "echo 'x dyn-secret y'\n"
           "echo '::add-mask::first line%0A  second line  '\n"
           "echo 'a second line b'\n"
           "echo '::add-mask::   '\n"
           "echo '::error title=hunter2::leaked hunter2 in a message'\n"
           "echo 'dyn-secret' >&2\n");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_logged(f, "\npassword: ***!\n");
    assert_logged(f, "\nx *** y\n"); /* touching occurrences are one run */
    assert_logged(f, "\n***\n***\n***\n");
    assert_logged(f, "\nx *** y\n");
    assert_logged(f, "\na *** b\n");
    assert_logged(f, "##[error]leaked *** in a message\n");
    assert_logged(f, "##[warning]Can't add secret mask for empty string in ##[add-mask] command.");
    assert_not_logged(f, "hunter2");
    assert_not_logged(f, "dyn-secret");
    assert_not_logged(f, "second line");
    assert_not_logged(f, "::add-mask::"); /* add-mask is not echoed */
    const struct pipeline_step_annotation *a = annotation(f, PIPELINE_ERROR, "leaked");
    assert_string_equal(a->title, "***");
    /* The masks added are returned for the steps after. */
    int found = 0;
    for (size_t i = 0; i < f->r.masks.n; i++)
        found += !strcmp(f->r.masks.v[i], "dyn-secret") || !strcmp(f->r.masks.v[i], "second line");
    assert_int_equal(found, 2);
    f->spec.masks = NULL;
    pipeline_step_list_free(&masks);
}

/* Removes runs of '*' and checks what is left. */
static void assert_masked_as(const char *log, const char *want)
{
    struct buf b = BUF_INIT;
    for (const char *p = log; *p; p++)
        if (*p != '\n' && (*p != '*' || b.len == 0 || b.data[b.len - 1] != '*'))
            buf_add(&b, p, 1);
    if (strcmp(b.data ? b.data : "", want))
        print_message("# got %zu bytes, want %zu\n", b.len, strlen(want));
    assert_string_equal(b.data ? b.data : "", want);
    buf_free(&b);
}

static void test_step_mask_across_reads(void **state)
{
    struct fixture *f = *state;
    struct pipeline_step_list masks = PIPELINE_STEP_LIST_INIT;
    pipeline_step_list_add(&masks, "secret-value-0123", 17);
    f->spec.masks = &masks;
    /* Split across two writes (two reads of the pipe), and across the 64 KiB
     * pieces proc_run hands over. */
    run(f, "printf 'before secr'; sleep 0.2; printf 'et-value-0123 after\\n'\n"
           "head -c 65530 /dev/zero | tr '\\0' a; printf 'secret-value-0123b\\n'\n");
    assert_logged(f, "\nbefore *** after\n");
    struct buf want = BUF_INIT;
    for (int i = 0; i < 65530; i++)
        buf_add(&want, "a", 1);
    buf_adds(&want, "***b\n");
    assert_logged(f, want.data);
    assert_not_logged(f, "secr");

    /* A line past 1 MiB is written in pieces as its 64 KiB parts come: the
     * first at 17 parts (1114112 bytes), cut 16 bytes (the longest secret
     * less one) before the end. One secret straddles that cut, one the end
     * of the 17th part: no piece shows either in part. */
    run(f, "for n in 1114091 1114107; do head -c $n /dev/zero | tr '\\0' a;"
           "  printf 'secret-value-0123'; head -c 100 /dev/zero | tr '\\0' b; echo; done\n");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_true(f->log.lines >= 8); /* the header, and two pieces at least a line */
    buf_reset(&want);
    for (int n = 1114091; n <= 1114107; n += 16) {
        for (int i = 0; i < n; i++)
            buf_add(&want, "a", 1);
        buf_adds(&want, "*");
        for (int i = 0; i < 100; i++)
            buf_add(&want, "b", 1);
    }
    assert_masked_as(body(f), want.data);
    buf_free(&want);
    f->spec.masks = NULL;
    pipeline_step_list_free(&masks);
}

/* ---- workflow commands
 * ------------------------------------------------------------------------------ */

static void test_step_annotations(void **state)
{
    struct fixture *f = *state;
    char script[512];
    snprintf(script, sizeof(script),
             "echo '::error file=%s/src/a.c,line=3,col=5,endColumn=9,title=Bad "
             "thing::went wrong'\n"
             "echo '  ::warning::careful'\n"
             "echo '::NOTICE title=a%%3Ab%%2Cc::x%%0Ay%%25'\n"
             "echo '::warning line=4,endLine=3,col=1::lines backwards'\n"
             "echo '::warning endLine=7::only an end line'\n"
             "echo 'some text ##[warning]old form'\n"
             "echo '::unknown::not a command'\n"
             "echo '::debug::hidden unless debug'\n",
             f->work);
    run(f, script);
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS); /* annotations fail nothing */
    assert_int_equal(f->r.errors, 1);
    assert_int_equal(f->r.warnings, 4);
    assert_int_equal(f->r.notices, 1);
    const struct pipeline_step_annotation *a = annotation(f, PIPELINE_ERROR, "went wrong");
    assert_string_equal(a->file, "src/a.c"); /* relative to the workspace */
    assert_string_equal(a->line, "3");
    assert_string_equal(a->col, "5");
    assert_string_equal(a->end_column, "9");
    assert_string_equal(a->title, "Bad thing");
    assert_null(a->end_line);
    assert_logged(f, "##[error]went wrong\n");
    assert_not_logged(f, "::error"); /* not echoed */
    a = annotation(f, PIPELINE_NOTICE, "x\ny%");
    assert_string_equal(a->title, "a:b,c");
    assert_logged(f, "##[notice]x\n##[notice]y%\n");
    a = annotation(f, PIPELINE_WARNING, "lines backwards");
    assert_null(a->line);
    assert_null(a->end_line);
    assert_null(a->col); /* columns need line == endLine */
    a = annotation(f, PIPELINE_WARNING, "only an end line");
    assert_string_equal(a->line, "7");
    assert_string_equal(a->end_line, "7");
    assert_non_null(annotation(f, PIPELINE_WARNING, "old form"));
    assert_non_null(annotation(f, PIPELINE_WARNING, "careful"));
    assert_logged(f, "\n::unknown::not a command\n");
    assert_not_logged(f, "hidden unless debug");

    f->spec.debug = 1;
    run(f, "echo '::debug::shown with debug'\necho '::group::Title'\necho inside\n"
           "echo '::endgroup::'\n");
    assert_logged(f, "##[debug]shown with debug\n");
    /* With step debug, commands are echoed as GitHub does. */
    assert_logged(f, "\n::group::Title\n##[group]Title\ninside\n::endgroup::\n##[endgroup]\n");
    f->spec.debug = 0;
    run(f, "echo '::group::Build'\necho inside\necho '::endgroup::'\n");
    assert_logged(f, "\n##[group]Build\ninside\n##[endgroup]\n");

    /* Bounded: 100 kept a level, all counted. */
    run(f, "for i in $(seq 150); do echo \"::warning::w$i\"; done");
    assert_int_equal(f->r.warnings, 150);
    assert_int_equal(f->r.nannotations, PIPELINE_STEP_ANNOTATIONS_MAX);
    run(f, "printf '::error::'; head -c 10000 /dev/zero | tr '\\0' e; echo");
    assert_int_equal(strlen(f->r.annotations[0].message), PIPELINE_STEP_MESSAGE_MAX);
}

static void test_step_stop_commands(void **state)
{
    struct fixture *f = *state;
    run(f, "echo '::stop-commands::pause-token-123'\n"
           "echo '::error::not an error'\n"
           "echo '::set-output name=a::1'\n"
           "echo '::pause-token-123::'\n"
           "echo '::error::an error'\n");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_int_equal(f->r.errors, 1);
    assert_null(output(f, "a"));
    /* The lines in between are output; the token (over 6 characters) is masked. */
    assert_logged(f, "\n::stop-commands::***\n::error::not an error\n::set-output name=a::1\n"
                     "::***::\n##[error]an error\n");
    /* A token that is a command's name is refused, and commands go on. */
    run(f, "echo '::stop-commands::warning'\necho '::warning::still a command'\n");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_FAILURE);
    assert_non_null(annotation(f, PIPELINE_ERROR,
                               "You cannot use a endToken that is an empty "
                               "string, the string 'pause-logging', or "
                               "another workflow command."));
    assert_non_null(annotation(f, PIPELINE_WARNING, "still a command"));
}

static void test_step_set_output_deprecated(void **state)
{
    struct fixture *f = *state;
    run(f, "echo '::set-output name=answer::4%0A2'\n");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_string_equal(output(f, "answer"), "4\n2");
    assert_non_null(annotation(
        f, PIPELINE_WARNING, "The `set-output` command is deprecated and will be disabled soon."));
    assert_not_logged(f, "::set-output");
    run(f, "echo '::set-output::no name'\n");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_FAILURE);
    assert_non_null(annotation(f, PIPELINE_ERROR,
                               "Unable to process command '::set-output::no "
                               "name' successfully."));
    assert_non_null(annotation(f, PIPELINE_ERROR,
                               "Required field 'name' is missing in ##[set-output] command."));
    /* save-state warns alike and keeps nothing; problem matchers are ignored. */
    run(f, "echo '::save-state name=s::v'\necho '::add-matcher::.github/m.json'\n");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_non_null(annotation(
        f, PIPELINE_WARNING, "The `save-state` command is deprecated and will be disabled soon."));
    assert_int_equal(f->r.outputs.n, 0);
    assert_not_logged(f, "add-matcher");
    /* ::echo::on echoes the commands that are not secret. */
    run(f, "echo '::echo::on'\necho '::set-output name=x::y'\necho '::echo::maybe'\n");
    assert_logged(f, "\n::set-output name=x::y\n");
    assert_non_null(annotation(f, PIPELINE_ERROR,
                               "Invalid echo command value. Possible values "
                               "can be: 'on', 'off'. Current value is: "
                               "'maybe'."));
}

static void test_step_set_env_refused(void **state)
{
    struct fixture *f = *state;
    run(f, "echo '::set-env name=A::b'\necho '::add-path::/opt/x'\n");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_FAILURE);
    assert_int_equal(f->r.env.n, 0);
    assert_int_equal(f->r.path.n, 0);
    assert_non_null(annotation(f, PIPELINE_ERROR,
                               "Unable to process command '::set-env name=A::b' successfully."));
    assert_non_null(annotation(f, PIPELINE_ERROR, "The `set-env` command is disabled."));
    assert_non_null(annotation(f, PIPELINE_ERROR, "The `add-path` command is disabled."));
    /* The opt-in GitHub honours. */
    struct pipeline_step_vars env = PIPELINE_STEP_VARS_INIT;
    vars_put(&env, "ACTIONS_ALLOW_UNSECURE_COMMANDS", "true");
    f->spec.env = &env;
    run(f, "echo '::set-env name=A::b'\necho '::add-path::/opt/x'\n"
           "echo '::set-env name=node_options::x'\n");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_string_equal(pipeline_step_vars_get(&f->r.env, "A")->value, "b");
    assert_string_equal(f->r.path.v[0], "/opt/x");
    assert_non_null(annotation(f, PIPELINE_ERROR,
                               "Can't update NODE_OPTIONS environment variable using ::set-env::"));
    f->spec.env = NULL;
    pipeline_step_vars_free(&env);
}

/* ---- output, time and processes
 * ------------------------------------------------------------------- */

static long status_kb(const char *field)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (fp && fgets(line, sizeof(line), fp))
        if (!strncmp(line, field, n) && line[n] == ':')
            kb = strtol(line + n + 1, NULL, 10);
    if (fp)
        fclose(fp);
    return kb;
}

static void test_step_output_cap(void **state)
{
    struct fixture *f = *state;
    /* Reset the peak RSS, so VmHWM says what this step took. */
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "5", 1), 1);
    close(fd);
    long base = status_kb("VmRSS");
    f->log.keep = 0;
    run(f, "yes \"$(printf '%099d' 0)\" | head -c 100000000; echo 'tail=1' >> \"$GITHUB_OUTPUT\"");
    long peak = status_kb("VmHWM");
    print_message("# 100 MB step: VmRSS before %ld kB, VmHWM after %ld kB, logged %llu bytes\n",
                  base, peak, (unsigned long long)f->r.bytes_logged);
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_true(f->r.log_capped);
    assert_int_equal(f->log.caps, 1);
    assert_true(f->r.bytes_logged <= (uint64_t)PIPELINE_STEP_LOG_MAX + 4096);
    assert_true(f->r.bytes_logged >= (uint64_t)PIPELINE_STEP_LOG_MAX - 4096);
    assert_true(f->log.bytes == f->r.bytes_logged);
    /* What came after the cap was still read to the end. */
    assert_string_equal(output(f, "tail"), "1");
    assert_true(peak - base < 48 * 1024);

    /* A smaller cap, and the closing lines still get through. */
    f->spec.max_log = 1000;
    run(f, "seq 1000; exit 4");
    assert_true(f->r.log_capped);
    assert_int_equal(f->log.caps, 1);
    assert_true(f->log.bytes < 1200);
    assert_int_equal(f->r.outcome, PIPELINE_STEP_FAILURE);
    assert_non_null(annotation(f, PIPELINE_ERROR, "Process completed with exit code 4."));
    f->spec.max_log = 0;
    f->log.keep = 1;
}

static void test_step_timeout(void **state)
{
    struct fixture *f = *state;
    f->spec.timeout_ms = 500;
    int64_t t0 = time_mono_ms();
    run(f, "(trap '' TERM; sleep 300; echo late) & echo $! > grandchild\n"
           "sleep 300\n");
    int64_t took = time_mono_ms() - t0;
    pid_t gc = read_pid(f, "grandchild");
    assert_true(f->r.timed_out);
    assert_int_equal(f->r.outcome, PIPELINE_STEP_FAILURE);
    assert_non_null(
        annotation(f, PIPELINE_ERROR, "The action 'test' has timed out after 0.00833333 minutes."));
    /* SIGTERM, then SIGKILL for the grandchild that ignores it. */
    assert_true(gone_within(gc, 3000));
    assert_true(took < 5000);
    assert_not_logged(f, "late");
    f->spec.timeout_ms = 0;
}

static void *cancel_later(void *arg)
{
    usleep(300000);
    *(_Atomic int *)arg = 1;
    return NULL;
}

static void test_step_cancel(void **state)
{
    struct fixture *f = *state;
    _Atomic int cancel = 0;
    pthread_t t;
    f->spec.cancel = &cancel;
    assert_int_equal(pthread_create(&t, NULL, cancel_later, (void *)&cancel), 0);
    int64_t t0 = time_mono_ms();
    run(f, "sleep 30");
    pthread_join(t, NULL);
    assert_true(time_mono_ms() - t0 < 5000);
    assert_true(f->r.cancelled);
    assert_int_equal(f->r.outcome, PIPELINE_STEP_CANCELLED);
    assert_non_null(annotation(f, PIPELINE_ERROR, "The operation was canceled."));
    f->spec.cancel = NULL;
}

static void test_step_orphans(void **state)
{
    struct fixture *f = *state;
    char tracking[ID_LEN(6) + 1];
    size_t killed = 0;
    struct sw_err err = {0};

    /* As on GitHub: what a step leaves running lives on (a later step may
     * use it) until the job ends; setsid does not hide it from the cleanup. */
    assert_int_equal(id_new("github", tracking, sizeof(tracking)), 0);
    f->spec.tracking_id = tracking;
    run(f, "sleep 300 >/dev/null 2>&1 & echo $! > bg\n"
           "setsid sleep 300 >/dev/null 2>&1 & echo $! > bg2\n");
    pid_t bg = read_pid(f, "bg"), bg2 = read_pid(f, "bg2");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_true(alive(bg));
    assert_true(alive(bg2));
    run(f, "echo next step");
    assert_true(alive(bg));
    assert_int_equal(pipeline_step_cleanup(tracking, 2000, &killed, &err), 0);
    assert_int_equal(killed, 2);
    assert_true(gone_within(bg, 2000));
    assert_true(gone_within(bg2, 2000));
    assert_int_equal(pipeline_step_cleanup(tracking, 2000, &killed, &err), 0);
    assert_int_equal(killed, 0);

    /* PIPELINE_ORPHANS_STEP: gone when the step ends, even one that kept the
     * step's output open (the step still ends, after a short drain). */
    f->spec.tracking_id = NULL;
    f->spec.orphans = PIPELINE_ORPHANS_STEP;
    int64_t t0 = time_mono_ms();
    run(f, "sleep 300 & echo $! > bg3\necho started\n");
    pid_t bg3 = read_pid(f, "bg3");
    assert_true(time_mono_ms() - t0 < 10000);
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_true(gone_within(bg3, 1000));
    f->spec.orphans = PIPELINE_ORPHANS_JOB;
}

/* ---- shells
 * --------------------------------------------------------------------------------------- */

static void test_step_shells(void **state)
{
    struct fixture *f = *state;
    /* Unspecified: bash -e {0}, no pipefail (GitHub's documented default). */
    run(f, "false | true; echo still here; pwd");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_logged(f, "\nstill here\n");
    assert_logged(f, "-e {0}\n");
    char want[160];
    snprintf(want, sizeof(want), "\n%s\n", f->work);
    assert_logged(f, want);
    assert_logged(f, "##[group]Run false | true; echo still here; pwd\n");

    f->spec.shell = "bash";
    run(f, "false | true; echo not reached");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_FAILURE);
    assert_not_logged(f, "not reached");
    assert_logged(f, "--noprofile --norc -e -o pipefail {0}\n");
    assert_non_null(annotation(f, PIPELINE_ERROR, "Process completed with exit code 1."));

    f->spec.shell = "sh";
    run(f, "false; echo not reached");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_FAILURE);
    assert_not_logged(f, "not reached");

    f->spec.shell = "python";
    run(f, "import os, sys\nprint('py', os.environ['CI'], sys.argv[0].endswith('.py'))\n");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_logged(f, "\npy true True\n");

    f->spec.shell = "bash --noprofile --norc {0} \"two words\" x\\\"y";
    run(f, "echo \"1=$1 2=$2\"");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SUCCESS);
    assert_logged(f, "\n1=two words 2=x\"y\n");
    f->spec.shell = "sh -c \"echo templated; . {0}\"";
    run(f, "echo sourced");
    assert_logged(f, "\ntemplated\nsourced\n");

    f->spec.shell = "bash -e";
    run(f, "echo x");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_FAILURE);
    assert_non_null(annotation(f, PIPELINE_ERROR,
                               "Invalid shell option. Shell must be a valid "
                               "built-in (bash, sh, cmd, powershell, pwsh) or "
                               "a format string containing '{0}'"));
    f->spec.shell = "no-such-shell-here {0}";
    run(f, "echo x");
    assert_non_null(annotation(f, PIPELINE_ERROR, "no-such-shell-here: command not found"));

    /* pwsh fails at once with one line, or is skipped. */
    f->spec.shell = "pwsh";
    run(f, "Write-Host hi");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_FAILURE);
    assert_int_equal(f->log.lines, 1);
    assert_logged(f, "##[error]The shell 'pwsh' is not supported");
    f->spec.unsupported_skip = 1;
    f->spec.shell = "cmd";
    run(f, "echo hi");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_SKIPPED);
    assert_int_equal(f->log.lines, 1);
    assert_non_null(annotation(f, PIPELINE_WARNING, "Skipped: the shell 'cmd' is not supported"));
    f->spec.unsupported_skip = 0;
    f->spec.shell = NULL;

    /* Exit codes, signals and a working directory that is not there. */
    run(f, "exit 3");
    assert_int_equal(f->r.exit_code, 3);
    assert_non_null(annotation(f, PIPELINE_ERROR, "Process completed with exit code 3."));
    run(f, "kill -9 $$");
    assert_int_equal(f->r.signal, SIGKILL);
    assert_non_null(annotation(f, PIPELINE_ERROR, "Process completed with exit code 137."));
    f->spec.working_directory = "/nonexistent/dir";
    run(f, "true");
    assert_int_equal(f->r.outcome, PIPELINE_STEP_FAILURE);
    assert_int_equal(f->r.nannotations, 1);
    f->spec.working_directory = f->work;
}

/* ---- the parsers
 * ------------------------------------------------------------------------------------ */

static int parse(const char *line, const char *stop, struct pipeline_step_command *c)
{
    return pipeline_step_command_parse(line, strlen(line), stop, c);
}

static void test_step_command_parser(void **state)
{
    struct pipeline_step_command c;
    assert_int_equal(parse("::warning file=a.c,line=1::msg", NULL, &c), 1);
    assert_string_equal(c.name, "warning");
    assert_string_equal(pipeline_step_command_prop(&c, "FILE"), "a.c");
    assert_string_equal(c.data, "msg");
    pipeline_step_command_free(&c);
    /* .NET's Split quirks: leading '='s of a value dropped, empty ones gone,
     * a repeated key (any case) replaces, blank around the list trimmed. */
    assert_int_equal(parse(" \t::Error  a==b ,=c,d=,e=f=g,A=z ::x::y", NULL, &c), 1);
    assert_string_equal(c.name, "error");
    assert_string_equal(pipeline_step_command_prop(&c, "a"), "z");
    assert_null(pipeline_step_command_prop(&c, "d"));
    assert_string_equal(pipeline_step_command_prop(&c, "e"), "f=g");
    assert_int_equal(c.props.n, 2);
    assert_string_equal(c.data, "x::y");
    pipeline_step_command_free(&c);
    /* Unescaping is Replace after Replace, in GitHub's order. */
    assert_int_equal(parse("::notice t=%3A%2C%25%0A::%250A%0D%3A", NULL, &c), 1);
    assert_string_equal(pipeline_step_command_prop(&c, "t"), ":,%\n");
    assert_string_equal(c.data, "%0A\r%3A");
    pipeline_step_command_free(&c);
    assert_int_equal(parse("x ##[set-output name=a%3Bb;x=1]v%5D%3B", NULL, &c), 1);
    assert_string_equal(pipeline_step_command_prop(&c, "name"), "a;b");
    assert_string_equal(c.data, "v];");
    pipeline_step_command_free(&c);
    assert_int_equal(parse("::tok::", "TOK", &c), 1);
    assert_true(c.is_stop_token);
    pipeline_step_command_free(&c);
    assert_int_equal(parse("::tok::", NULL, &c), 0);
    assert_int_equal(parse("x ::error::y", NULL, &c), 0);
    assert_int_equal(parse("::error", NULL, &c), 0);
    assert_int_equal(parse(":: error::y", NULL, &c), 0);
    assert_int_equal(parse("##[error", NULL, &c), 0);
    assert_int_equal(parse("plain text", NULL, &c), 0);
}

struct pairs {
    struct buf b;
};

static void on_pair(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen,
                    const char *delim, size_t dlen)
{
    struct pairs *p = ctx;
    buf_add(&p->b, name, nlen);
    buf_add(&p->b, delim ? "<<" : "=", delim ? 2 : 1);
    buf_add(&p->b, value, vlen);
    buf_add(&p->b, "|", 1);
}

static int fparse(const char *text, struct pairs *p, struct sw_err *err)
{
    buf_reset(&p->b);
    buf_add(&p->b, "", 0);
    return pipeline_step_file_parse(text, strlen(text), on_pair, p, err);
}

static void test_step_file_parser(void **state)
{
    struct pairs p = {BUF_INIT};
    struct sw_err err = {0};
    assert_int_equal(fparse("\xef\xbb\xbf"
                            "a=1\n\nb<<E\nx\r\n\nE\nc=<<d\nd<<=\nv\n=\n",
                            &p, &err),
                     0);
    assert_string_equal(p.b.data, "a=1|b<<x\r\n|c=<<d|d<<v|");
    assert_int_equal(fparse("e<<E\nE", &p, &err), 0);
    assert_string_equal(p.b.data, "e<<|");
    assert_int_equal(fparse("ok=1\n=x\n", &p, &err), SW_EINVAL);
    assert_string_equal(p.b.data, "ok=1|");
    assert_string_equal(err.msg, "Invalid format '=x'. Name must not be empty");
    assert_int_equal(fparse("n<<\n", &p, &err), SW_EINVAL);
    assert_string_equal(err.msg, "Invalid format 'n<<'. Name must not be empty and delimiter "
                                 "must not be empty");
    assert_int_equal(fparse("n<<E\nE \n", &p, &err), SW_EINVAL);
    assert_string_equal(err.msg, "Invalid value. Matching delimiter not found 'E'");
    buf_free(&p.b);
}

static void test_step_mask_function(void **state)
{
    struct pipeline_step_list m = PIPELINE_STEP_LIST_INIT;
    struct buf out = BUF_INIT;
    pipeline_step_list_add(&m, "abc", 3);
    pipeline_step_list_add(&m, "bcd", 3);
    pipeline_step_list_add(&m, "", 0);
    pipeline_step_mask(&m, "xabcdy abcabc zab", 17, &out);
    assert_string_equal(out.data, "x***y *** zab");
    buf_free(&out);
    pipeline_step_list_free(&m);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_step_outputs),
        T(test_step_output_delimiter),
        T(test_step_env_and_path_carry),
        T(test_step_env_isolation),
        T(test_step_summary),
        T(test_step_file_bounds),
        T(test_step_masking),
        T(test_step_mask_across_reads),
        T(test_step_annotations),
        T(test_step_stop_commands),
        T(test_step_set_output_deprecated),
        T(test_step_set_env_refused),
        T(test_step_output_cap),
        T(test_step_timeout),
        T(test_step_cancel),
        T(test_step_orphans),
        T(test_step_shells),
        cmocka_unit_test(test_step_command_parser),
        cmocka_unit_test(test_step_file_parser),
        cmocka_unit_test(test_step_mask_function),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
