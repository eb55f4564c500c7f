/* Unit tests for base's child processes: output, exit status, both pipes
 * full at once, stdin, environment, cwd, timeouts that stop the whole process
 * group, cancel, lines across reads, descriptor hygiene and several threads
 * at once. Built from base alone, so tests/e2e/005-proc-tsan.sh can build it
 * under ThreadSanitizer too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/base.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SH(...) ((const char *const[]){"/bin/sh", "-c", __VA_ARGS__, NULL})

static struct proc_result run(const struct proc_opts *o)
{
    struct proc_result r;
    struct sw_err err = {0};
    int rc = proc_run(o, &r, &err);
    if (rc)
        print_message("# proc_run: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return r;
}

static void test_proc_echo_and_status(void **state)
{
    struct proc_opts o = {.argv = (const char *const[]){"echo", "hello", "world", NULL}};
    struct proc_result r = run(&o);
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.signal, 0);
    assert_string_equal(r.out, "hello world\n");
    assert_int_equal(r.out_len, 12);
    assert_string_equal(r.err, "");
    assert_false(r.timed_out || r.out_truncated || r.err_truncated);
    proc_result_free(&r);

    /* No shell unless argv names one: the argument is one word. */
    o.argv = (const char *const[]){"echo", "$HOME; echo x", NULL};
    r = run(&o);
    assert_string_equal(r.out, "$HOME; echo x\n");
    proc_result_free(&r);

    o.argv = SH("echo out; echo err >&2; exit 3");
    r = run(&o);
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 3);
    assert_string_equal(r.out, "out\n");
    assert_string_equal(r.err, "err\n");
    proc_result_free(&r);

    o.argv = SH("kill -USR1 $$; sleep 5");
    r = run(&o);
    assert_false(r.exited);
    assert_int_equal(r.signal, SIGUSR1);
    proc_result_free(&r);

    /* Merged: one stream in the order written. */
    o.argv = SH("echo 1; echo 2 >&2; echo 3");
    o.flags = PROC_MERGE;
    r = run(&o);
    assert_string_equal(r.out, "1\n2\n3\n");
    assert_string_equal(r.err, "");
    proc_result_free(&r);
}

static void test_proc_start_errors(void **state)
{
    struct proc_result r;
    struct sw_err err = {0};
    struct proc_opts o = {.argv = (const char *const[]){"/nonexistent/prog", NULL}};
    assert_int_equal(proc_run(&o, &r, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/prog"));
    assert_null(r.out);
    o.argv = (const char *const[]){"slipway-no-such-program-anywhere", NULL};
    assert_int_equal(proc_run(&o, &r, &err), SW_ENOTFOUND);
    char file[] = "/tmp/slipway-proc-XXXXXX";
    int fd = mkstemp(file); /* mode 0600: not executable */
    assert_true(fd >= 0);
    close(fd);
    o.argv = (const char *const[]){file, NULL};
    assert_int_equal(proc_run(&o, &r, &err), SW_EACCES);
    assert_non_null(strstr(err.msg, file));
    unlink(file);
    o.argv = (const char *const[]){"true", NULL};
    o.cwd = "/nonexistent/dir";
    assert_int_equal(proc_run(&o, &r, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/dir"));
    o.argv = (const char *const[]){NULL};
    assert_int_equal(proc_run(&o, &r, &err), SW_EINVAL);
}

static int all(const char *s, size_t n, char c)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != c)
            return 0;
    return 1;
}

/* 3 MB on stderr first, then 3 MB on stdout: a reader that waited for one
 * pipe while the child blocked on the other would never return. */
static void test_proc_large_output(void **state)
{
    struct proc_opts o = {.argv = SH("head -c 3000000 /dev/zero | tr '\\0' e >&2;"
                                     "head -c 3000000 /dev/zero | tr '\\0' o; echo done >&2"),
                          .max_output = 4 << 20,
                          .timeout_ms = 60000};
    struct proc_result r = run(&o);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.out_len, 3000000);
    assert_int_equal(r.err_len, 3000005);
    assert_true(all(r.out, r.out_len, 'o'));
    assert_true(all(r.err, 3000000, 'e'));
    assert_string_equal(r.err + 3000000, "done\n");
    assert_false(r.out_truncated || r.err_truncated || r.timed_out);
    proc_result_free(&r);

    /* Bounded: the rest is read and dropped, so the child is not blocked or
     * killed by a closed pipe, and the truncation is said. */
    o.max_output = 1000;
    r = run(&o);
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.out_len, 1000);
    assert_int_equal(r.err_len, 1000);
    assert_true(r.out_truncated && r.err_truncated);
    assert_true(all(r.out, 1000, 'o'));
    proc_result_free(&r);
}

static void test_proc_stdin(void **state)
{
    size_t n = 2 << 20;
    char *in = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        in[i] = (char)('a' + i % 26);
    /* 2 MiB through cat: feeding and draining must interleave. */
    struct proc_opts o = {
        .argv = (const char *const[]){"cat", NULL}, .input = in, .input_len = n, .max_output = n};
    struct proc_result r = run(&o);
    assert_int_equal(r.out_len, n);
    assert_memory_equal(r.out, in, n);
    proc_result_free(&r);
    /* A child that never reads its stdin: no SIGPIPE here, no hang. */
    o.argv = SH("exec 0<&-; echo closed");
    r = run(&o);
    assert_true(r.exited);
    assert_string_equal(r.out, "closed\n");
    proc_result_free(&r);
    /* Without input, stdin is /dev/null. */
    o.argv = (const char *const[]){"cat", NULL};
    o.input = NULL;
    r = run(&o);
    assert_int_equal(r.out_len, 0);
    proc_result_free(&r);
    /* An empty input is an immediate end of file. */
    o.input = "";
    o.input_len = 0;
    r = run(&o);
    assert_int_equal(r.exit_code, 0);
    proc_result_free(&r);
    free(in);
}

static void test_proc_env_and_cwd(void **state)
{
    setenv("SLIPWAY_TEST_KEEP", "kept", 1);
    setenv("SLIPWAY_TEST_DROP", "dropped", 1);
    /* An explicit list is the whole environment. */
    struct proc_opts o = {
        .argv = (const char *const[]){"/usr/bin/env", NULL},
        .env = (const char *const[]){"FOO=bar", "A=", "SLIPWAY_TEST_KEEP", NULL},
    };
    struct proc_result r = run(&o);
    assert_string_equal(r.out, "FOO=bar\nA=\n");
    proc_result_free(&r);
    /* Inherited, with overrides, additions and a removal. */
    o.argv = SH("echo \"$FOO:$SLIPWAY_TEST_KEEP:${SLIPWAY_TEST_DROP-gone}:$HOME\"");
    o.env = (const char *const[]){"FOO=baz", "HOME=/h", "SLIPWAY_TEST_DROP", NULL};
    o.flags = PROC_INHERIT_ENV;
    r = run(&o);
    assert_string_equal(r.out, "baz:kept:gone:/h\n");
    proc_result_free(&r);
    unsetenv("SLIPWAY_TEST_KEEP");
    unsetenv("SLIPWAY_TEST_DROP");

    char dir[] = "/tmp/slipway-proc-XXXXXX", real[PATH_MAX];
    assert_non_null(mkdtemp(dir));
    assert_non_null(realpath(dir, real));
    struct proc_opts c = {.argv = (const char *const[]){"pwd", "-P", NULL}, .cwd = dir};
    r = run(&c);
    char *want = xasprintf("%s\n", real);
    assert_string_equal(r.out, want);
    free(want);
    proc_result_free(&r);
    /* A relative program path is found from the new directory. */
    char *script = path_join(dir, "run.sh");
    assert_int_equal(fs_write_atomic(script, "#!/bin/sh\necho ran in \"$(pwd -P)\"\n", 35, NULL),
                     0);
    assert_int_equal(chmod(script, 0755), 0);
    c.argv = (const char *const[]){"./run.sh", NULL};
    r = run(&c);
    want = xasprintf("ran in %s\n", real);
    assert_string_equal(r.out, want);
    free(want);
    proc_result_free(&r);
    unlink(script);
    free(script);
    rmdir(dir);
}

/* 1 when pid is gone (or a zombie no one has reaped yet: it runs no more). */
static int gone(long pid)
{
    char path[64], stat[256] = "";
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    size_t n = fread(stat, 1, sizeof(stat) - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *close_paren = strrchr(stat, ')');
    return close_paren && close_paren[1] == ' ' && (close_paren[2] == 'Z' || close_paren[2] == 'X');
}

static int gone_within(long pid, int ms)
{
    for (int i = 0; i < ms / 10; i++, usleep(10000))
        if (gone(pid))
            return 1;
    return gone(pid);
}

/* The timeout stops the child and what it started: the whole process group. */
static void test_proc_timeout_kills_group(void **state)
{
    struct proc_opts o = {.argv = SH("sleep 100 & echo $!; wait"), .timeout_ms = 300};
    struct proc_result r = run(&o);
    assert_true(r.timed_out);
    assert_false(r.exited);
    assert_int_equal(r.signal, SIGTERM);
    assert_true(r.duration_ms >= 300 && r.duration_ms < 5000);
    long grandchild = strtol(r.out, NULL, 10);
    assert_true(grandchild > 1);
    assert_true(gone_within(grandchild, 2000));
    proc_result_free(&r);

    /* SIGTERM ignored (and so by sleep, which inherits it): SIGKILL after the grace. */
    o.argv = SH("trap '' TERM; sleep 100 & echo $!; wait; wait");
    o.kill_grace_ms = 300;
    r = run(&o);
    assert_true(r.timed_out);
    assert_int_equal(r.signal, SIGKILL);
    assert_true(r.duration_ms >= 600 && r.duration_ms < 5000);
    grandchild = strtol(r.out, NULL, 10);
    assert_true(gone_within(grandchild, 2000));
    proc_result_free(&r);
}

/* A background process left holding stdout does not hold proc_run. */
static void test_proc_leftover_holds_pipe(void **state)
{
    struct proc_opts o = {.argv = SH("sleep 30 & echo $!"), .drain_ms = 200};
    struct proc_result r = run(&o);
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 0);
    assert_true(r.duration_ms < 5000);
    long left = strtol(r.out, NULL, 10);
    assert_true(left > 1);
    assert_false(gone(left)); /* left running, as documented */
    kill((pid_t)left, SIGKILL);
    proc_result_free(&r);
}

static void *cancel_later(void *arg)
{
    usleep(200000);
    *(_Atomic int *)arg = 1;
    return NULL;
}

static void test_proc_cancel(void **state)
{
    _Atomic int cancel = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_later, (void *)&cancel), 0);
    struct proc_opts o = {.argv = (const char *const[]){"sleep", "100", NULL}, .cancel = &cancel};
    struct proc_result r = run(&o);
    pthread_join(t, NULL);
    assert_true(r.cancelled);
    assert_false(r.timed_out);
    assert_int_equal(r.signal, SIGTERM);
    assert_true(r.duration_ms < 5000);
    proc_result_free(&r);
}

struct lines {
    struct buf all; /* "stream:line|" for each */
    int calls;
};

static void on_line(void *ctx, int stream, const char *line, size_t len)
{
    struct lines *l = ctx;
    assert_int_equal(strlen(line), len);
    buf_addf(&l->all, "%d:%s|", stream, line);
    l->calls++;
}

static void test_proc_lines(void **state)
{
    struct lines l = {BUF_INIT, 0};
    /* Lines split across reads are joined; a last line without '\n' comes at the end. */
    struct proc_opts o = {
        .argv = SH("printf ab; sleep 0.1; printf 'c\\nd'; sleep 0.1; printf 'e\\n\\nf\\r\\n';"
                   "printf 'x\\n' >&2; sleep 0.1; printf g"),
        .on_line = on_line,
        .ctx = &l};
    struct proc_result r = run(&o);
    assert_string_equal(l.all.data, "1:abc|1:de|1:|1:f\r|2:x|1:g|");
    assert_string_equal(r.out, "abc\nde\n\nf\r\ng");
    proc_result_free(&r);

    /* A long line comes in pieces of PROC_LINE_MAX; NO_CAPTURE keeps nothing. */
    buf_reset(&l.all);
    l.calls = 0;
    o.argv = SH("head -c 150000 /dev/zero | tr '\\0' x; echo; echo end");
    o.flags = PROC_NO_CAPTURE;
    r = run(&o);
    assert_int_equal(r.out_len, 0);
    assert_string_equal(r.out, "");
    assert_int_equal(l.calls, 4);
    assert_int_equal(l.all.len, 2 * (2 + PROC_LINE_MAX + 1) + (2 + 150000 - 2 * PROC_LINE_MAX + 1) +
                                    (2 + 3 + 1));
    assert_true(str_ends_with(l.all.data, "x|1:end|"));
    proc_result_free(&r);
    buf_free(&l.all);
}

/* With SIGCHLD ignored the kernel reaps the child itself: proc_run says it
 * cannot know how the program ended, instead of waiting forever or making up
 * an exit status. */
static void test_proc_sigchld_ignored(void **state)
{
    struct proc_result r;
    struct sw_err err = {0};
    struct proc_opts o = {.argv = SH("echo hi; exit 3"), .timeout_ms = 10000};
    signal(SIGCHLD, SIG_IGN);
    int rc = proc_run(&o, &r, &err);
    signal(SIGCHLD, SIG_DFL);
    assert_int_equal(rc, SW_EIO);
    assert_non_null(strstr(err.msg, "cannot learn how it ended"));
    assert_null(r.out);
}

/* Lines of ls /proc/self/fd: 0, 1, 2 and ls's own directory, nothing else. */
static void assert_no_leak(const char *out)
{
    int n = 0;
    for (const char *p = out; *p; p++)
        n += *p == '\n';
    if (n != 4)
        print_message("# descriptors in the child:\n%s", out);
    assert_int_equal(n, 4);
}

/* Descriptors this process opened without O_CLOEXEC stay here. */
static void test_proc_no_fd_leak(void **state)
{
    int leaky = dup(2), leaky2 = open("/dev/null", O_RDONLY);
    assert_true(leaky > 2 && leaky2 > 2);
    struct proc_opts o = {.argv = (const char *const[]){"ls", "/proc/self/fd", NULL}};
    struct proc_result r = run(&o);
    assert_no_leak(r.out);
    proc_result_free(&r);
    close(leaky);
    close(leaky2);
}

static void *runner(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < 15; i++) {
        char word[32];
        snprintf(word, sizeof(word), "%ld-%d", id, i);
        struct proc_opts o = {.argv = SH("echo $0; ls /proc/self/fd >&2", word)};
        struct proc_result r;
        if (proc_run(&o, &r, NULL) != 0)
            return (void *)1;
        char *want = xasprintf("%s\n", word);
        int n = 0;
        for (const char *p = r.err; *p; p++)
            n += *p == '\n';
        int ok = !strcmp(r.out, want) && n == 4 && r.exited && r.exit_code == 0;
        free(want);
        proc_result_free(&r);
        if (!ok)
            return (void *)1;
    }
    return NULL;
}

/* Four threads at once: each gets its own output, and no thread's pipes leak
 * into another's child. */
static void test_proc_threads(void **state)
{
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, runner, (void *)i), 0);
    int failed = 0;
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(t[i], &res);
        failed += res != NULL;
    }
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proc_echo_and_status),
        cmocka_unit_test(test_proc_start_errors),
        cmocka_unit_test(test_proc_large_output),
        cmocka_unit_test(test_proc_stdin),
        cmocka_unit_test(test_proc_env_and_cwd),
        cmocka_unit_test(test_proc_timeout_kills_group),
        cmocka_unit_test(test_proc_leftover_holds_pipe),
        cmocka_unit_test(test_proc_cancel),
        cmocka_unit_test(test_proc_lines),
        cmocka_unit_test(test_proc_sigchld_ignored),
        cmocka_unit_test(test_proc_no_fd_leak),
        cmocka_unit_test(test_proc_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
