/* slipway hook SUBCOMMAND: the git push trigger. `install` puts a
 * post-receive hook into a bare repository that runs `hook post-receive`,
 * which queues a run per pipeline the push triggers (and runs nothing, so
 * the push returns at once). A hook cannot fail a push that has happened:
 * every fault is one line on stderr, which git shows the pusher as
 * "remote: ...". */
#include "cmd/cmd.h"
#include "pipeline/pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int hook_install(int argc, char **argv, struct cli *cli);
static int hook_uninstall(int argc, char **argv, struct cli *cli);
static int hook_post_receive(int argc, char **argv, struct cli *cli);

static const struct cli_subcommand subcommands[] = {
    {"install", "hook install", hook_install,
     "install the post-receive hook that queues pipelines on push"},
    {"uninstall", "hook uninstall", hook_uninstall, "remove slipway's post-receive hook"},
    {"post-receive", "hook post-receive", hook_post_receive,
     "what the hook runs: queue the pipelines a push triggers"},
};
#define NSUB (sizeof(subcommands) / sizeof(subcommands[0]))

/* The first line of `git -C dir ARGS`, or NULL. */
static char *git_line(const char *dir, const char *const *args)
{
    const char *argv[10] = {"git", "-C", dir};
    size_t n = 3;
    for (size_t i = 0; args[i] && n < 9; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    struct proc_opts po = {.argv = argv, .max_output = 1 << 16};
    struct proc_result pr = {0};
    struct sw_err err = {0};
    char *line = NULL;
    if (proc_run(&po, &pr, &err) == 0 && pr.exited && pr.exit_code == 0)
        line = xstrndup(pr.out, strcspn(pr.out, "\n"));
    proc_result_free(&pr);
    return line;
}

/* REPO as an absolute path, checked to be a bare repository. */
static int bare_repo(const char *repo, char **abs, struct sw_err *err)
{
    const char *args[] = {"rev-parse", "--is-bare-repository", NULL};
    char *real = realpath(repo, NULL), *bare = NULL;
    int rc = 0;

    *abs = NULL;
    if (!real)
        return sw_err_sys(err, errno, "%s", repo);
    bare = git_line(real, args);
    if (!bare)
        rc = sw_err_set(err, SW_EINVAL, "%s is not a git repository", repo);
    else if (strcmp(bare, "true") != 0)
        rc = sw_err_set(err, SW_EINVAL,
                        "%s is not a bare repository (a push hook belongs in the repository "
                        "pushed to: git init --bare)",
                        repo);
    else if (!pipeline_run_repository_valid(real))
        rc = sw_err_set(err, SW_EINVAL, "%s: a path of printable characters is needed", real);
    free(bare);
    if (rc < 0)
        free(real);
    else
        *abs = real;
    return rc;
}

/* ---- install, uninstall ------------------------------------------------------------------- */

static const struct cli_usage install_usage = {
    .usage = "slipway hook install REPO --project DIR [--force]",
    .about = "Writes REPO/hooks/post-receive (mode 755, atomically) into the bare git\n"
             "repository REPO: a script that runs this slipway binary as `slipway hook\n"
             "post-receive --project DIR` on every push, and lists REPO in\n"
             "DIR/.slipway/repositories so that the project's runners run the runs it\n"
             "queues from REPO. A hook slipway did not write is not replaced without\n"
             "--force. See docs/pipelines.md, \"Triggers: git push\".\n",
    .min_args = 1,
    .max_args = 1,
};

static int hook_install(int argc, char **argv, struct cli *cli)
{
    int force = 0;
    const struct cli_option opts[] = {
        OPT_BOOL(0, "force", &force, "replace a post-receive hook slipway did not write"),
        OPT_END(),
    };
    struct sw_err err = {0};
    char *repo = NULL, *bin = NULL, *script = NULL, *path = NULL;
    int rc;

    if ((argc = cli_parse_options(cli, &install_usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    if (!cli->project_opt)
        return cli_usage_error(cli, "--project DIR is required: the project whose pipelines the "
                                    "hook queues");
    if ((rc = cli_project(cli, &err)) < 0 || (rc = bare_repo(argv[0], &repo, &err)) < 0)
        goto out;
    if (!(bin = realpath("/proc/self/exe", NULL))) {
        rc = sw_err_sys(&err, errno, "/proc/self/exe");
        goto out;
    }
    if ((rc = pipeline_hook_script(bin, cli->project, &script, &err)) < 0)
        goto out;
    path = path_join(repo, "hooks/post-receive");
    if ((rc = pipeline_hook_install(path, script, force, &err)) < 0)
        goto out;
    if ((rc = pipeline_repos_update(cli->project, repo, 1, &err)) < 0)
        goto out;
    if (cli->json)
        cli_print_json(
            json_pack("{s:s, s:s, s:s}", "hook", path, "project", cli->project, "slipway", bin));
    else
        cli_say(cli, "installed %s (project %s)\n", path, cli->project);
out:
    free(repo);
    free(bin);
    free(script);
    free(path);
    return rc < 0 ? cli_fail(&err) : EXIT_OK;
}

static const struct cli_usage uninstall_usage = {
    .usage = "slipway hook uninstall REPO [--project DIR]",
    .about = "Removes the post-receive hook slipway wrote into REPO (a hook someone else\n"
             "wrote is left as it is: exit 1), and REPO from the project's\n"
             ".slipway/repositories when there is a project.\n",
    .min_args = 1,
    .max_args = 1,
};

static int hook_uninstall(int argc, char **argv, struct cli *cli)
{
    const struct cli_option opts[] = {OPT_END()};
    struct sw_err err = {0};
    char *repo = NULL, *path = NULL;
    int rc;

    if ((argc = cli_parse_options(cli, &uninstall_usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    if ((rc = bare_repo(argv[0], &repo, &err)) < 0)
        goto out;
    path = path_join(repo, "hooks/post-receive");
    if ((rc = pipeline_hook_uninstall(path, &err)) < 0)
        goto out;
    /* the project is optional here: the hook is gone either way */
    struct sw_err perr = {0};
    if (cli_project(cli, &perr) == 0 &&
        (rc = pipeline_repos_update(cli->project, repo, 0, &err)) < 0)
        goto out;
    cli_say(cli, "removed %s\n", path);
out:
    free(repo);
    free(path);
    return rc < 0 ? cli_fail(&err) : EXIT_OK;
}

/* ---- post-receive -----------------------------------------------------------------------------
 */

#define MAX_REFS 1000

static const struct cli_usage post_receive_usage = {
    .usage = "slipway hook post-receive --project DIR",
    .about = "What the hook installed by `slipway hook install` runs, inside git: reads\n"
             "git's `OLD NEW REF` lines on stdin and, for each pushed branch or tag,\n"
             "queues one run (event push) for each .slipway/pipelines/*.yml of the pushed\n"
             "commit whose on.push filters match, printing `slipway: queued run ID for\n"
             "PIPELINE on REF` to stderr. It runs nothing, so the push returns at once.\n"
             "The repository is $GIT_DIR (else the current directory); the pusher is\n"
             "$GL_USER, $GL_USERNAME or $REMOTE_USER when set, else this user.\n",
    .min_args = 0,
    .max_args = 0,
};

struct pr_state {
    size_t queued, errors;
};

static void on_note(void *ctx, enum pipeline_push_note kind, const char *ref, const char *file,
                    const char *text, const struct pipeline_run *run)
{
    struct pr_state *s = ctx;
    (void)file;
    if (kind == PIPELINE_PUSH_QUEUED && run)
        cli_printf(stderr, "slipway: queued run %s for %s on %s\n", run->id,
                   run->workflow ? run->workflow : "", ref);
    else if (kind == PIPELINE_PUSH_ERROR) {
        s->errors++;
        cli_printf(stderr, "slipway: %s\n", text);
    }
}

/* Who pushed: what a git server that authenticates says, else this user. */
static const char *pusher(void)
{
    const char *vars[] = {"GL_USER", "GL_USERNAME", "REMOTE_USER"};
    for (size_t i = 0; i < 3; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v && text_valid(v, 256, 0))
            return v;
    }
    return sys_user();
}

/* Reads stdin to its end without keeping more than a line: git writes every
 * line before it waits for the hook. Each line goes to fn; a longer one than
 * PIPELINE_PUSH_LINE_MAX is passed cut, with too_long set. */
static void read_lines(void (*fn)(void *, const char *, size_t, int), void *arg)
{
    char *line = xmalloc(PIPELINE_PUSH_LINE_MAX + 1);
    size_t n = 0;
    int too_long = 0;
    char b[4096];
    for (;;) {
        ssize_t got = read(STDIN_FILENO, b, sizeof(b));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        for (ssize_t i = 0; i < got; i++) {
            if (b[i] == '\n') {
                fn(arg, line, n, too_long);
                n = 0;
                too_long = 0;
            } else if (n < PIPELINE_PUSH_LINE_MAX)
                line[n++] = b[i];
            else
                too_long = 1;
        }
    }
    if (n || too_long)
        fn(arg, line, n, too_long);
    free(line);
}

struct receive {
    struct cli *cli;
    const struct pipeline_push_opts *o;
    struct pr_state st;
    size_t refs;
    char *first_ref; /* for the "nothing queued" line */
    int failed;      /* nothing can be queued (store, project): only drain stdin */
};

static void one_line(void *arg, const char *line, size_t len, int too_long)
{
    struct receive *rv = arg;
    struct pipeline_push_update u;
    struct sw_err err = {0};
    size_t queued = 0;

    if (rv->failed)
        return;
    if (++rv->refs > MAX_REFS) {
        if (rv->refs == MAX_REFS + 1)
            cli_printf(stderr, "slipway: more than %d refs pushed; the rest queue nothing\n",
                       MAX_REFS);
        return;
    }
    if (too_long) {
        cli_printf(stderr, "slipway: a line of more than %d bytes from git; ignored\n",
                   PIPELINE_PUSH_LINE_MAX);
        rv->st.errors++;
        return;
    }
    if (pipeline_push_line_parse(line, len, &u, &err) < 0) {
        cli_printf(stderr, "slipway: a line from git that is not 'OLD NEW REF': %s; ignored\n",
                   err.msg);
        rv->st.errors++;
        return;
    }
    if (!rv->first_ref)
        rv->first_ref = xstrdup(u.ref);
    if (pipeline_push_queue(rv->cli->store, rv->o, &u, &queued, &err) < 0) {
        cli_printf(stderr, "slipway: %s: %s; nothing queued for it\n", u.ref, err.msg);
        rv->st.errors++;
    }
    rv->st.queued += queued;
}

static int hook_post_receive(int argc, char **argv, struct cli *cli)
{
    const struct cli_option opts[] = {OPT_END()};
    struct sw_err err = {0};
    struct cmd_runner_settings rs = {0};
    struct pipeline_load_opts lo = {0};
    struct pipeline_push_opts po = {0};
    struct receive rv = {cli, &po, {0, 0}, 0, NULL, 0};
    char *repo = NULL;
    const char *gd = getenv("GIT_DIR");
    json_t *vars = NULL;

    if ((argc = cli_parse_options(cli, &post_receive_usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    vars = json_object();
    /* each fault below still reads git's lines to their end (a hook that
     * stops reading would only make git complain), then says why, once */
    if (!cli->project_opt) {
        sw_err_set(&err, SW_EINVAL, "no --project: nothing queued");
        rv.failed = 1;
    } else if (cli_project(cli, &err) < 0) {
        sw_err_set(&err, SW_ENOTFOUND, "project %s: %s; nothing queued", cli->project_opt,
                   access(cli->project_opt, F_OK) < 0 ? "not found" : "not a slipway project");
        rv.failed = 1;
    } else if (!(repo = realpath(gd && *gd ? gd : ".", NULL)) ||
               !pipeline_run_repository_valid(repo)) {
        sw_err_set(&err, SW_EINVAL, "the repository (%s) cannot be named; nothing queued",
                   gd && *gd ? gd : ".");
        rv.failed = 1;
    } else if (cli_store(cli, CLI_STORE_WRITE, &err) < 0) {
        sw_err_prefix(&err, "project %s: ", cli->project);
        rv.failed = 1;
    } else if (pipeline_vars_load(cli->project, vars, &err) < 0) {
        /* run-name and concurrency see vars when the run is queued, as with
         * workflow run: without them a run would be misnamed or misgrouped */
        sw_err_prefix(&err, "project %s: nothing queued: ", cli->project);
        rv.failed = 1;
    }
    if (!rv.failed) {
        /* pipelines load as the project's runners will run them */
        struct sw_err cerr = {0};
        if (cmd_runner_settings_load(cli, NULL, 0, NULL, &rs, &cerr) < 0)
            cli_printf(stderr, "slipway: %s (pipelines load with the defaults)\n", cerr.msg);
        else if (rs.skip)
            lo.flags |= PIPELINE_LOAD_SKIP_UNSUPPORTED;
    }
    po.repo = repo;
    po.load = &lo;
    po.pusher_name = pusher();
    po.vars = vars;
    po.note = on_note;
    po.ctx = &rv.st;
    read_lines(one_line, &rv);
    int rc = EXIT_OK;
    if (rv.failed)
        rc = cli_fail(&err);
    else if (rv.st.queued == 0 && rv.first_ref)
        cli_printf(stderr, "slipway: nothing queued: no pipeline in .slipway/pipelines/ %s %s%s\n",
                   rv.st.errors ? "could be queued for" : "matches a push of", rv.first_ref,
                   rv.refs > 1 ? " (nor of the other refs pushed)" : "");
    if (rv.st.errors)
        rc = EXIT_FAIL;
    cmd_runner_settings_free(&rs);
    free(rv.first_ref);
    free(repo);
    json_decref(vars);
    return rc;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

int cmd_hook(int argc, char **argv, struct cli *cli)
{
    return cli_run_subcommand(cli, "hook",
                              "The git push trigger: a post-receive hook that queues pipelines.\n",
                              subcommands, NSUB, argc, argv);
}
