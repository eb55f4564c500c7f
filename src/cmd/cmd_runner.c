/* slipway runner: claims queued runs from the store and runs them, one at a
 * time, each with up to --jobs jobs at once; and the execution of a claimed
 * run shared with `workflow run --wait`. */
#include "cmd/cmd.h"
#include "pipeline/pipeline.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static _Atomic int stop_requested;
/* An eventfd cmd_runner_stop writes, so that a runner waiting for runs (in
 * poll, up to its poll interval) stops at once; made once, never closed, so
 * a stop from another thread never writes to a descriptor reused meanwhile. */
static _Atomic int stop_fd = -1;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_requested, 1);
}

void cmd_signals_cancel(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* no SA_RESTART: a sleeping runner wakes up to stop */
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGTERM, &sa, NULL);
}

/* Prints a runner's log line as "[job] line". */
static void echo_line(void *ctx, size_t job, const char *name, const char *line, size_t len)
{
    FILE *f = ctx;
    char *copy = xstrndup(line, len);
    cli_printf(f, "[%s] %s\n", name, copy);
    fflush(f);
    free(copy);
}

int cmd_runner_labels_check(struct cli *cli, const char *opt, const struct cli_list *labels)
{
    for (size_t i = 0; labels && i < labels->n; i++)
        if (!pipeline_runner_label_valid(labels->v[i]))
            return cli_usage_error(cli,
                                   "%s: expected a label (1 to 100 printable characters, no "
                                   "blank or comma), got '%s'",
                                   opt, labels->v[i]);
    return EXIT_OK;
}

int cmd_runner_settings_load(struct cli *cli, const struct cli_list *labels, int jobs,
                             const char *unsupported, struct cmd_runner_settings *out,
                             struct sw_err *err)
{
    char *path = path_join(cli->project, ".slipway/runner.yml");
    int rc = pipeline_runner_config_load(path, &out->file, err);

    free(path);
    out->labels = NULL;
    out->jobs = 1;
    out->skip = 0;
    if (rc < 0)
        return rc;
    /* the command line over the file, key by key */
    if (labels && labels->n) {
        out->labels = xcalloc(labels->n + 1, sizeof(*out->labels));
        memcpy(out->labels, labels->v, labels->n * sizeof(*out->labels));
    } else if (out->file.labels) {
        size_t n = 0;
        while (out->file.labels[n])
            n++;
        out->labels = xcalloc(n + 1, sizeof(*out->labels));
        memcpy(out->labels, out->file.labels, n * sizeof(*out->labels));
    }
    out->jobs = jobs > 0 ? (unsigned)jobs : out->file.jobs > 0 ? (unsigned)out->file.jobs : 1;
    out->skip = unsupported ? strcmp(unsupported, "skip") == 0 : out->file.unsupported == 1;
    return 0;
}

void cmd_runner_settings_free(struct cmd_runner_settings *s)
{
    free(s->labels);
    s->labels = NULL;
    pipeline_runner_config_free(&s->file);
}

int cmd_run_execute(struct cli *cli, struct pipeline_run *claimed,
                    const struct pipeline_workflow *wf, const char *repo,
                    const struct cmd_runner_settings *rs, FILE *echo, struct sw_err *err)
{
    const char *tmp = getenv("TMPDIR");
    char *work = path_join(tmp && *tmp ? tmp : "/tmp", "slipway-runs");
    struct pipeline_runner_opts ro = {0};
    int rc;

    if ((rc = fs_mkdir_p(work, err)) < 0) {
        struct sw_err e2 = {0};
        (void)pipeline_run_finish(cli->store, claimed, PIPELINE_CONCLUSION_FAILURE, err->msg, &e2);
        free(work);
        return rc;
    }
    ro.repo = repo;
    ro.project = cli->project;
    ro.work_dir = work;
    ro.jobs = rs->jobs;
    ro.unsupported_skip = rs->skip;
    ro.park = rs->park;
    ro.labels = rs->labels;
    ro.cancel = &stop_requested;
    ro.echo = echo ? echo_line : NULL;
    ro.echo_ctx = echo;
    rc = pipeline_runner_run(cli->store, claimed, wf, &ro, err);
    /* the run's workspaces are its own: gone once it ended (in this process:
     * an exec of rm(1) costs a run more than the removal; rm(1) still
     * removes what fs_remove_tree could not, a tree too deep for it) */
    char *rundir = path_join(work, claimed->id);
    struct sw_err e2 = {0};
    if (fs_remove_tree(rundir, &e2) < 0) {
        const char *rm[] = {"rm", "-rf", "--", rundir, NULL};
        struct proc_opts po = {.argv = rm};
        struct proc_result pr = {0};
        if (proc_run(&po, &pr, &e2) == 0)
            proc_result_free(&pr);
    }
    free(rundir);
    free(work);
    return rc;
}

/* ---- slipway runner ----------------------------------------------------------------------------
 */

static const struct cli_usage usage = {
    .usage = "slipway runner [--name ID] [--jobs N] [--label L]... [--once] [--repo DIR] "
             "[--poll D] [--unsupported skip]",
    .about = "Claims queued runs from the store by compare-and-swap, so several runners\n"
             "on one store never run a run twice, and runs each to its end: its workflow\n"
             "file as it is at the run's commit in the git repository around the project\n"
             "(or --repo DIR; a run a post-receive hook queued, from the repository pushed\n"
             "to, when .slipway/repositories lists it). Runs whose runner stopped are\n"
             "marked failed on the way. It looks for runs every --poll interval, and at\n"
             "once when a run is queued in an fs store on this host.\n"
             "With --once it runs at most one run and exits (0 when it succeeded or none\n"
             "was queued); otherwise it waits for runs until SIGINT or SIGTERM, which\n"
             "cancels the run it is running.\n"
             "\n"
             "Settings not given on the command line come from .slipway/runner.yml\n"
             "(labels, unsupported, jobs); --label replaces the file's labels and the\n"
             "default set (self-hosted, linux, the architecture, ubuntu-latest).\n"
             "The delivery steps (slipway/deploy, switch, rollback, health-check) act on\n"
             "the environments of this project, never on those of the commit they run.\n",
    .min_args = 0,
    .max_args = 0,
};

/* The workflow file of run r at its commit. */
static int workflow_at(const char *repo, const struct pipeline_run *r, int skip,
                       struct pipeline_workflow **wf, struct sw_err *err)
{
    char *spec = xasprintf("%s:%s", r->sha, r->workflow_file ? r->workflow_file : "");
    const char *argv[] = {"git", "-C", repo, "show", spec, NULL};
    struct proc_opts po = {.argv = argv, .max_output = PIPELINE_WF_MAX_BYTES + 1};
    struct proc_result pr = {0};
    struct pipeline_load_opts lo = {skip ? PIPELINE_LOAD_SKIP_UNSUPPORTED : 0};
    int rc = proc_run(&po, &pr, err);

    if (rc == 0 && !(pr.exited && pr.exit_code == 0))
        rc = sw_err_set(err, SW_ENOTFOUND, "%s is not in %s at %s", r->workflow_file, repo, r->sha);
    else if (rc == 0 && pr.out_truncated)
        rc = sw_err_set(err, SW_EINVAL, "%s: larger than %d bytes", r->workflow_file,
                        PIPELINE_WF_MAX_BYTES);
    else if (rc == 0)
        rc = pipeline_workflow_parse(pr.out, pr.out_len, r->workflow_file, &lo, wf, err);
    proc_result_free(&pr);
    free(spec);
    return rc;
}

int cmd_runner(int argc, char **argv, struct cli *cli)
{
    const char *name = NULL, *repo_opt = NULL, *unsupported = NULL;
    struct cli_list labels = {NULL, 0};
    int jobs = 0, once = 0, rc;
    int64_t poll_ms = CMD_RUNNER_POLL_MS;
    const struct cli_option opts[] = {
        OPT_STRING(0, "name", &name, "ID", "this runner's id (default: runner-PID)"),
        OPT_INT(0, "jobs", &jobs, "N", 1, 64, "jobs run at once (default: runner.yml's, else 1)"),
        OPT_LIST(0, "label", &labels, "L",
                 "a label runs-on is matched against (repeatable; replaces the default set)"),
        OPT_BOOL(0, "once", &once, "run at most one run, then exit"),
        OPT_STRING(0, "repo", &repo_opt, "DIR", "the git repository (default: around the project)"),
        OPT_DURATION(0, "poll", &poll_ms, "D", 1,
                     "look for queued runs every D (default 1s; a run queued in\n"
                     "an fs store wakes the runner at once)"),
        OPT_STRING(0, "unsupported", &unsupported, "MODE",
                   "skip: skip steps and jobs slipway cannot run (default: error)"),
        OPT_END(),
    };
    struct sw_err err = {0};
    struct cmd_runner_settings rs = {0};
    char idbuf[40];

    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0) {
        free(labels.v);
        return CLI_EXIT(argc);
    }
    if (unsupported && strcmp(unsupported, "skip") != 0 && strcmp(unsupported, "error") != 0)
        rc = cli_usage_error(cli, "--unsupported: expected skip or error, got '%s'", unsupported);
    else
        rc = cmd_runner_labels_check(cli, "--label", &labels);
    if (rc != EXIT_OK) {
        free(labels.v);
        return rc;
    }
    if (!name) {
        snprintf(idbuf, sizeof(idbuf), "runner-%ld", (long)getpid());
        name = idbuf;
    }
    if (!pipeline_runner_id_valid(name)) {
        free(labels.v);
        return cli_usage_error(cli, "--name: expected [A-Za-z0-9][A-Za-z0-9._-]{0,63}, got '%s'",
                               name);
    }
    if (cli_project(cli, &err) < 0 ||
        cmd_runner_settings_load(cli, &labels, jobs, unsupported, &rs, &err) < 0 ||
        cli_store(cli, CLI_STORE_WRITE, &err) < 0) {
        cmd_runner_settings_free(&rs);
        free(labels.v);
        return cli_fail(&err);
    }
    const char *repo = repo_opt ? repo_opt : cli->project;
    cmd_signals_cancel();
    rc = cmd_runner_loop(cli, name, repo, &rs, once, poll_ms, cli->quiet ? NULL : stderr);
    cmd_runner_settings_free(&rs);
    free(labels.v);
    return rc;
}

void cmd_runner_stop(void)
{
    atomic_store(&stop_requested, 1);
    int fd = atomic_load(&stop_fd);
    uint64_t one = 1;
    if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
        /* full (stopped already) or gone: the flag is set either way */
    }
}

/* Waits up to ms for runs: until the store says one was queued (watch, -1:
 * none), a stop, or a signal (EINTR). */
static void runner_wait(int watch, int64_t ms)
{
    struct pollfd p[2] = {{watch, POLLIN, 0}, {atomic_load(&stop_fd), POLLIN, 0}};
    int n = poll(p, 2, ms > INT_MAX ? INT_MAX : (int)ms);
    if (n > 0 && (p[0].revents & POLLIN))
        store_watch_drain(watch);
}

/* The repository run r is run from: the runner's own, or the one the run
 * names (a hook's) when it is the runner's own or the project lists it. NULL
 * (err set) otherwise: a run record is anyone's text, and running another
 * repository's pipelines would hand them this project's secrets. */
static const char *run_repo(struct cli *cli, const char *own, const struct pipeline_run *r,
                            struct sw_err *err)
{
    if (!r->repository)
        return own;
    char *real = realpath(own, NULL);
    int same = real && !strcmp(real, r->repository);
    free(real);
    if (same || pipeline_repos_listed(cli->project, r->repository))
        return r->repository;
    sw_err_set(err, SW_EACCES,
               "the run's repository %s is not this runner's, nor listed in %s/.slipway/"
               "repositories ('slipway hook install' lists it)",
               r->repository, cli->project);
    return NULL;
}

int cmd_runner_loop(struct cli *cli, const char *name, const char *repo,
                    const struct cmd_runner_settings *rs, int once, int64_t poll_ms, FILE *log)
{
    struct sw_err err = {0};
    int rc, last = EXIT_OK, watch = -1;

    if (atomic_load(&stop_fd) < 0) {
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), none = -1;
        if (fd >= 0 && !atomic_compare_exchange_strong(&stop_fd, &none, fd))
            close(fd);
    }
    /* a hint: without it (other stores, inotify refused) the poll interval applies */
    if (!once && store_watch(cli->store, "runs", &watch, &err) < 0 && log)
        cli_printf(log, "slipway runner %s: %s; looking for runs every %lld ms\n", name, err.msg,
                   (long long)poll_ms);
    /* a run waiting for a person is parked, not held: the runner goes on
     * with the queue, and any runner resumes it once a gate is decided */
    struct cmd_runner_settings parking = *rs;
    parking.park = 1;
    rs = &parking;

    if (log) {
        struct buf b = BUF_INIT;
        for (size_t i = 0; rs->labels && rs->labels[i]; i++)
            buf_addf(&b, "%s%s", i ? ", " : "", rs->labels[i]);
        cli_printf(log, "slipway runner %s: waiting for runs (labels: %s)\n", name,
                   b.data ? b.data : "the default set");
        buf_free(&b);
    }
    while (!atomic_load(&stop_requested)) {
        struct pipeline_run *r = NULL;
        struct pipeline_workflow *wf = NULL;
        err = (struct sw_err){0};
        rc = pipeline_run_claim_next(cli->store, name, 0, &r, &err);
        if (rc == SW_ENOTFOUND) {
            if (once)
                break;
            runner_wait(watch, poll_ms); /* EINTR: the loop looks at the flag */
            continue;
        }
        if (rc < 0) {
            if (log)
                cli_printf(log, "slipway runner %s: %s\n", name, err.msg);
            last = EXIT_FAIL;
            if (once)
                break;
            runner_wait(-1, poll_ms < 1000 ? poll_ms : 1000);
            continue;
        }
        if (log)
            cli_printf(log, "slipway runner %s: running %s (%s)\n", name, r->id,
                       r->workflow ? r->workflow : "");
        /* a copy: the record, and the path in it, is replaced as the run goes */
        const char *named = run_repo(cli, repo, r, &err);
        char *from = named ? xstrdup(named) : NULL;
        rc = from ? workflow_at(from, r, rs->skip, &wf, &err) : err.code;
        if (rc < 0) {
            struct sw_err e2 = {0};
            (void)pipeline_run_finish(cli->store, r, PIPELINE_CONCLUSION_FAILURE, err.msg, &e2);
        } else
            rc = cmd_run_execute(cli, r, wf, from, rs, log, &err);
        if (rc == PIPELINE_EPARKED) {
            if (log)
                cli_printf(log, "slipway runner %s: %s waits at its gates (parked)\n", name, r->id);
        } else if (rc < 0 && rc != PIPELINE_ELOAD)
            cli_printf(stderr, "slipway runner %s: %s: %s\n", name, r->id, err.msg);
        else if (log)
            cli_printf(log, "slipway runner %s: %s %s\n", name, r->id,
                       pipeline_run_status_name(r->status));
        /* parked at its gates is not a failure: it waits for people */
        last = r->status == PIPELINE_RUN_SUCCEEDED || rc == PIPELINE_EPARKED ? EXIT_OK : EXIT_FAIL;
        pipeline_workflow_free(wf);
        pipeline_run_free(r);
        free(from);
        if (once)
            break;
    }
    if (watch >= 0)
        close(watch);
    return last;
}
