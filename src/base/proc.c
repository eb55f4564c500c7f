/*
 * Child processes: posix_spawn, then one poll loop that feeds stdin, drains
 * stdout and stderr, watches a pidfd for the child's exit and the clock for
 * the timeout, until the child has exited and its pipes are closed.
 *
 * The one idea: the child is left a zombie (waitid with WNOWAIT) until the
 * loop ends. While it is unreaped its pid cannot be reused, so signalling its
 * process group is safe at any point of the loop, including after it exited
 * while what it started still holds the pipes; it is reaped once, at the end.
 * Nothing here is global: no SIGCHLD handler, no shared table, so any number
 * of threads may run processes at once.
 */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_MAX_OUTPUT ((size_t)1 << 20)
#define DEFAULT_GRACE_MS 5000
#define DEFAULT_DRAIN_MS 1000
#define READ_CHUNK 65536
#define SLICE_MS 50 /* how often to look without a pidfd, or at *cancel */

struct stream {
    int fd, id;
    struct buf keep;
    size_t max;
    int truncated, capture;
    struct buf line; /* the unfinished line */
};

void proc_result_free(struct proc_result *r)
{
    if (!r)
        return;
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* ---- environment ------------------------------------------------------------ */

static size_t name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* 1 when an entry of env names the same variable as entry. */
static int overridden(const char *const *env, const char *entry)
{
    size_t n = name_len(entry);
    for (; *env; env++)
        if (name_len(*env) == n && !strncmp(*env, entry, n))
            return 1;
    return 0;
}

/* The child's environment: the list itself, or ours with it applied. The
 * array is ours to free; the strings are borrowed. */
static char **build_env(const struct proc_opts *o)
{
    size_t n = 0, m = 0;
    if (!o->env)
        return NULL;
    int inherit = o->flags & PROC_INHERIT_ENV;
    for (char **e = inherit ? environ : NULL; e && *e; e++)
        n++;
    for (const char *const *e = o->env; *e; e++)
        n++;
    char **out = xcalloc(n + 1, sizeof(*out));
    for (char **e = inherit ? environ : NULL; e && *e; e++)
        if (!overridden(o->env, *e))
            out[m++] = *e;
    for (const char *const *e = o->env; *e; e++)
        if (strchr(*e, '=')) /* "NAME" alone only removes NAME */
            out[m++] = (char *)*e;
    out[m] = NULL;
    return out;
}

/* ---- output ---------------------------------------------------------------- */

static void deliver(const struct proc_opts *o, struct stream *s, char *line, size_t len)
{
    line[len] = '\0';
    o->on_line(o->ctx, s->id, line, len);
}

/* Splits data (writable, one spare byte past len) into lines for on_line. */
static void split_lines(const struct proc_opts *o, struct stream *s, char *data, size_t len)
{
    while (len) {
        char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (s->line.len + take >= PROC_LINE_MAX) { /* a piece of a long line */
            size_t part = PROC_LINE_MAX - s->line.len;
            buf_add(&s->line, data, part);
            deliver(o, s, s->line.data, s->line.len);
            buf_reset(&s->line);
            data += part, len -= part;
            continue;
        }
        if (!nl) {
            buf_add(&s->line, data, len);
            return;
        }
        if (s->line.len) {
            buf_add(&s->line, data, take);
            deliver(o, s, s->line.data, s->line.len);
            buf_reset(&s->line);
        } else {
            deliver(o, s, data, take); /* in place: the '\n' becomes the NUL */
        }
        data += take + 1, len -= take + 1;
    }
}

/* Reads what is there; at end of file flushes the last line and closes. */
static int drain(const struct proc_opts *o, struct stream *s, char *chunk)
{
    for (int round = 0; round < 16 && s->fd >= 0; round++) {
        ssize_t n = read(s->fd, chunk, READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0) { /* end of file, or an error that ends this stream alike */
            if (o->on_line && s->line.len)
                deliver(o, s, s->line.data, s->line.len);
            buf_reset(&s->line);
            close(s->fd);
            s->fd = -1;
            return 0;
        }
        if (s->capture) {
            size_t room = s->max - s->keep.len, take = (size_t)n < room ? (size_t)n : room;
            buf_add(&s->keep, chunk, take);
            s->truncated |= take < (size_t)n;
        }
        if (o->on_line)
            split_lines(o, s, chunk, (size_t)n);
    }
    return 0;
}

/* ---- input ------------------------------------------------------------------- */

/* write(2) that never raises SIGPIPE: a child that stops reading its stdin
 * is its business, not a reason for this process to die. SIGPIPE for a pipe
 * write goes to the writing thread, so it is blocked here for this thread only
 * and a pending one consumed before the mask is restored. */
static ssize_t write_nosig(int fd, const void *p, size_t n)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t w = write(fd, p, n);
    int e = errno;
    if (w < 0 && e == EPIPE && !sigismember(&old, SIGPIPE)) {
        static const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return w;
}

/* ---- the child ------------------------------------------------------------------ */

/* The whole group, and the child itself in case it left the group. */
static void stop(pid_t pid, int sig)
{
    kill(-pid, sig);
    kill(pid, sig);
}

static int64_t min_wait(int64_t wait, int64_t now, int64_t at)
{
    if (at < 0)
        return wait;
    int64_t d = at > now ? at - now : 0;
    return wait < 0 || d < wait ? d : wait;
}

static int spawn(const struct proc_opts *o, int in_fd, int out_fd, int err_fd, pid_t *pid,
                 struct sw_err *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    int rc = 0, e;
    char **envp = build_env(o);
    if ((e = posix_spawn_file_actions_init(&fa)))
        return sw_err_sys(err, e, "%s", o->argv[0]);
    if ((e = posix_spawnattr_init(&at))) {
        posix_spawn_file_actions_destroy(&fa);
        return sw_err_sys(err, e, "%s", o->argv[0]);
    }
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    /* Its own process group, so a timeout stops what it started too; signals
     * as a fresh program expects them, whatever this thread blocks or this
     * process ignores (SIGPIPE, say). */
    e = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                          POSIX_SPAWN_SETSIGDEF);
    if (!e)
        e = posix_spawnattr_setpgroup(&at, 0);
    if (!e)
        e = posix_spawnattr_setsigmask(&at, &none);
    if (!e)
        e = posix_spawnattr_setsigdefault(&at, &all);
    if (!e)
        e = in_fd >= 0 ? posix_spawn_file_actions_adddup2(&fa, in_fd, 0)
                       : posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!e)
        e = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    if (!e)
        e = posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    if (!e && o->cwd)
        e = posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
    /* Every descriptor above 2 closed, not only ours: another thread's, or a
     * library's opened without O_CLOEXEC, must not leak into the child. */
    if (!e)
        e = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (!e)
        e = posix_spawnp(pid, o->argv[0], &fa, &at, (char *const *)o->argv, envp ? envp : environ);
    if (e)
        rc = sw_err_sys(err, e, "%s", o->argv[0]);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    return rc;
}

static int pipe_pair(int p[2], struct sw_err *err)
{
    if (pipe2(p, O_CLOEXEC) < 0)
        return sw_err_sys(err, errno, "pipe");
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int proc_run(const struct proc_opts *o, struct proc_result *r, struct sw_err *err)
{
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, inp[2] = {-1, -1}, pidfd = -1, rc = 0;
    int merge = o->flags & PROC_MERGE, capture = !(o->flags & PROC_NO_CAPTURE);
    size_t max = o->max_output ? o->max_output : DEFAULT_MAX_OUTPUT;
    struct stream s[2] = {{-1, PROC_STDOUT, BUF_INIT, max, 0, capture, BUF_INIT},
                          {-1, PROC_STDERR, BUF_INIT, max, 0, capture, BUF_INIT}};
    char *chunk = NULL;
    pid_t pid = -1;
    memset(r, 0, sizeof(*r));
    if (!o->argv || !o->argv[0] || !o->argv[0][0])
        return sw_err_set(err, SW_EINVAL, "no program to run");
    struct stat sb;
    /* posix_spawn says ENOENT alike for a missing directory and a missing
     * program: the directory is checked first so the message names it. */
    if (o->cwd && stat(o->cwd, &sb) < 0)
        return sw_err_sys(err, errno, "%s: cannot run in %s", o->argv[0], o->cwd);
    int64_t start = time_mono_ms();
    if ((rc = pipe_pair(outp, err)) || (!merge && (rc = pipe_pair(errp, err))) ||
        (o->input && (rc = pipe_pair(inp, err))))
        goto out;
    rc = spawn(o, inp[0], outp[1], merge ? outp[1] : errp[1], &pid, err);
    close_fd(&outp[1]);
    close_fd(&errp[1]);
    close_fd(&inp[0]);
    if (rc) {
        pid = -1;
        goto out;
    }
    s[0].fd = outp[0], outp[0] = -1;
    s[1].fd = errp[0], errp[0] = -1;
    for (int i = 0; i < 2; i++)
        if (s[i].fd >= 0)
            fcntl(s[i].fd, F_SETFL, O_NONBLOCK);
    if (inp[1] >= 0)
        fcntl(inp[1], F_SETFL, O_NONBLOCK);
    /* Without a pidfd (kernels before 5.3) the loop looks every SLICE_MS. */
    pidfd = pidfd_open(pid, 0);
    chunk = xmalloc(READ_CHUNK + 1);

    size_t fed = 0;
    int exited = 0, term_sent = 0;
    int64_t deadline = o->timeout_ms > 0 ? start + o->timeout_ms : -1;
    int64_t kill_at = -1, drain_until = -1;
    int64_t grace = o->kill_grace_ms > 0 ? o->kill_grace_ms : DEFAULT_GRACE_MS;
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    for (;;) {
        int64_t now = time_mono_ms();
        int cancelled = o->cancel && *o->cancel;
        if (!exited && !term_sent && ((deadline >= 0 && now >= deadline) || cancelled)) {
            r->timed_out = !cancelled;
            r->cancelled = cancelled;
            stop(pid, SIGTERM);
            term_sent = 1;
            kill_at = now + grace;
        }
        if (kill_at >= 0 && now >= kill_at) {
            stop(pid, SIGKILL);
            kill_at = -1;
        }
        if (exited && (s[0].fd < 0 && s[1].fd < 0))
            break;
        if (exited && now >= drain_until)
            break; /* what it left running holds the pipes: stop reading */

        struct pollfd pf[4];
        int np = 0, at_in = -1, at_pid = -1, at_s[2] = {-1, -1};
        for (int i = 0; i < 2; i++)
            if (s[i].fd >= 0)
                at_s[i] = np, pf[np++] = (struct pollfd){s[i].fd, POLLIN, 0};
        if (inp[1] >= 0)
            at_in = np, pf[np++] = (struct pollfd){inp[1], POLLOUT, 0};
        if (!exited && pidfd >= 0)
            at_pid = np, pf[np++] = (struct pollfd){pidfd, POLLIN, 0};
        int64_t wait = -1;
        if (!term_sent)
            wait = min_wait(wait, now, deadline);
        wait = min_wait(wait, now, kill_at);
        if (exited)
            wait = min_wait(wait, now, drain_until);
        if ((!exited && pidfd < 0) || (o->cancel && !term_sent))
            wait = min_wait(wait, now, now + SLICE_MS);
        int n = poll(pf, (nfds_t)np, wait < 0 ? -1 : (int)(wait > 60000 ? 60000 : wait));
        if (n < 0 && errno != EINTR) {
            rc = sw_err_sys(err, errno, "%s: poll", o->argv[0]);
            break;
        }
        if (n <= 0 && (exited || pidfd >= 0))
            continue;
        for (int i = 0; i < 2; i++)
            if (at_s[i] >= 0 && pf[at_s[i]].revents)
                drain(o, &s[i], chunk);
        if (at_in >= 0 && pf[at_in].revents) {
            ssize_t w =
                fed < o->input_len ? write_nosig(inp[1], o->input + fed, o->input_len - fed) : 0;
            if (w > 0)
                fed += (size_t)w;
            /* Done, or the child closed its stdin (EPIPE): either way no more. */
            if (fed == o->input_len || (w < 0 && errno != EAGAIN && errno != EINTR))
                close_fd(&inp[1]);
        }
        if (!exited && (at_pid < 0 || pf[at_pid].revents)) {
            memset(&si, 0, sizeof(si));
            /* WNOWAIT: learn of the exit but keep the zombie (see the top). */
            int w = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
            /* ECHILD: someone else reaped it (SIGCHLD ignored, waitpid(-1)):
             * it has exited all the same; the wait below reports the loss. */
            if ((w == 0 && si.si_pid == pid) || (w < 0 && errno != EINTR)) {
                exited = 1;
                drain_until = time_mono_ms() + (o->drain_ms > 0 ? o->drain_ms : DEFAULT_DRAIN_MS);
                close_fd(&inp[1]);
            }
        }
    }
    if (rc) /* the loop failed: the child must not outlive this call unseen */
        stop(pid, SIGKILL);
out:
    if (pid > 0) {
        int status = 0;
        pid_t w;
        while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
            ;
        if (w < 0 && !rc)
            rc = sw_err_sys(err, errno, "%s: cannot learn how it ended", o->argv[0]);
        r->exited = WIFEXITED(status);
        r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
        r->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    r->duration_ms = time_mono_ms() - start;
    close_fd(&pidfd);
    close_fd(&outp[0]);
    close_fd(&outp[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    close_fd(&inp[0]);
    close_fd(&inp[1]);
    for (int i = 0; i < 2; i++) {
        close_fd(&s[i].fd);
        buf_free(&s[i].line);
    }
    free(chunk);
    if (rc) {
        buf_free(&s[0].keep);
        buf_free(&s[1].keep);
        memset(r, 0, sizeof(*r));
        return rc;
    }
    r->out = buf_detach(&s[0].keep, &r->out_len);
    r->err = buf_detach(&s[1].keep, &r->err_len);
    r->out_truncated = s[0].truncated;
    r->err_truncated = s[1].truncated;
    return 0;
}
