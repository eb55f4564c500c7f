/* slipway workflow SUBCOMMAND: GitHub Actions workflow files. The
 * subcommands are a table; `check` validates files as the runner loads
 * them and says whether a push would trigger them. */
#include "cmd/cmd.h"
#include "pipeline/pipeline.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int workflow_check(int argc, char **argv, struct cli *cli);
static int workflow_run(int argc, char **argv, struct cli *cli);

static const struct cli_subcommand subcommands[] = {
    {"check", "workflow check", workflow_check, "validate workflow files as the runner loads them"},
    {"run", "workflow run", workflow_run, "queue a run of a workflow (and run it with --wait)"},
};
#define NSUB (sizeof(subcommands) / sizeof(subcommands[0]))

/* ---- check ------------------------------------------------------------------------------ */

static const struct cli_usage check_usage = {
    .usage = "slipway workflow check FILE... [--unsupported skip] [--ref REF] [--changed PATH]...",
    .about = "Loads each workflow file as the runner does and prints every error as\n"
             "FILE:LINE:COL: message (unknown keys, wrong types, expressions that do not\n"
             "parse or name a context not available there, bad filter patterns, unknown\n"
             "or cyclic needs, duplicate keys, and what slipway cannot run: uses: it does\n"
             "not run natively, services:, container:). With --ref it also says whether a\n"
             "push of REF (refs/heads/BRANCH or refs/tags/TAG) changing the --changed\n"
             "paths would trigger each file, with GitHub's filter rules.\n"
             "--json prints {\"files\": [{\"file\", \"ok\", \"errors\": [...], \"triggered\"}]}\n"
             "(and a top-level \"triggered\" for a single file). Exit 1 on any error.\n",
    .min_args = 1,
    .max_args = -1,
};

/* A JSON string for text that may not be UTF-8 (a file name): escaped then. */
static json_t *jstr(const char *s)
{
    struct buf b = BUF_INIT;
    json_t *j;

    if (utf8_valid(s, 0))
        return json_string(s);
    buf_add_escaped(&b, s);
    j = json_string(b.data);
    buf_free(&b);
    return j;
}

struct check_opts {
    struct pipeline_load_opts load;
    const char *ref;
    struct cli_list changed;
};

/* Checks one file; appends its JSON entry to files (when not NULL) or prints
 * it. Returns 1 when the file has errors. */
static int check_one(struct cli *cli, const char *file, const struct check_opts *o, json_t *files,
                     int *triggered)
{
    struct pipeline_workflow *wf = NULL;
    struct sw_err err = {0};
    json_t *errors = json_array(), *entry;
    int rc = pipeline_workflow_load(file, &o->load, &wf, &err), bad = rc != 0;

    *triggered = 0;
    if (wf && pipeline_workflow_check_calls(wf, file, &o->load) > 0)
        bad = 1;
    if (!wf) { /* not readable */
        json_array_append_new(errors, jstr(err.msg));
        if (!files)
            cli_printf(stderr, "%s\n", err.msg);
    }
    for (size_t i = 0; wf && i < wf->n_errors; i++) {
        json_array_append_new(errors, jstr(wf->errors[i].text));
        if (!files)
            cli_printf(stderr, "%s\n", wf->errors[i].text);
    }
    if (wf && wf->n_errors_dropped && !files)
        cli_printf(stderr, "%s: %zu more errors not shown\n", file, wf->n_errors_dropped);
    for (size_t i = 0; wf && i < wf->n_warnings && !files && !cli->quiet; i++)
        cli_printf(stderr, "%s\n", wf->warnings[i].text);
    if (!bad && o->ref)
        *triggered = pipeline_workflow_triggered(wf, "push", o->ref, o->changed.v, o->changed.n);
    if (files) {
        entry = json_pack("{s:o, s:b, s:o}", "file", jstr(file), "ok", !bad, "errors", errors);
        if (o->ref)
            json_object_set_new(entry, "triggered", json_boolean(*triggered));
        json_array_append_new(files, entry);
    } else {
        json_decref(errors);
        if (bad)
            cli_printf(stdout, "%s: %zu error%s\n", file,
                       wf ? wf->n_errors + wf->n_errors_dropped : 1,
                       wf && wf->n_errors + wf->n_errors_dropped == 1 ? "" : "s");
        else if (o->ref)
            cli_printf(stdout, "%s: ok, %s by a push of %s\n", file,
                       *triggered ? "triggered" : "not triggered", o->ref);
        else
            cli_printf(stdout, "%s: ok\n", file);
    }
    pipeline_workflow_free(wf);
    return bad;
}

static int workflow_check(int argc, char **argv, struct cli *cli)
{
    const char *unsupported = NULL;
    struct check_opts o = {{0}, NULL, {NULL, 0}};
    const struct cli_option opts[] = {
        OPT_STRING(0, "unsupported", &unsupported, "MODE",
                   "skip: keep steps and jobs slipway cannot run, skipped with a\n"
                   "warning (default: error)"),
        OPT_STRING(0, "ref", &o.ref, "REF", "say whether a push of REF triggers each file"),
        OPT_LIST(0, "changed", &o.changed, "PATH", "a path the push changed (repeatable)"),
        OPT_END(),
    };
    json_t *files = NULL;
    int failed = 0, triggered = 0;

    if ((argc = cli_parse_options(cli, &check_usage, opts, argc, argv)) < 0) {
        free(o.changed.v);
        return CLI_EXIT(argc);
    }
    if (unsupported && strcmp(unsupported, "skip") != 0 && strcmp(unsupported, "error") != 0) {
        free(o.changed.v);
        return cli_usage_error(cli, "--unsupported: expected skip or error, got '%s'", unsupported);
    }
    if (o.ref && !((str_starts_with(o.ref, "refs/heads/") && o.ref[11]) ||
                   (str_starts_with(o.ref, "refs/tags/") && o.ref[10]))) {
        free(o.changed.v);
        return cli_usage_error(cli, "--ref: expected refs/heads/BRANCH or refs/tags/TAG, got '%s'",
                               o.ref);
    }
    if (unsupported && strcmp(unsupported, "skip") == 0)
        o.load.flags |= PIPELINE_LOAD_SKIP_UNSUPPORTED;
    if (cli->json)
        files = json_array();
    for (int i = 0; i < argc; i++)
        failed |= check_one(cli, argv[i], &o, files, &triggered);
    if (files) {
        json_t *doc = json_pack("{s:o}", "files", files);
        if (argc == 1 && o.ref)
            json_object_set_new(doc, "triggered", json_boolean(triggered));
        cli_print_json(doc);
    }
    free(o.changed.v);
    return failed ? EXIT_FAIL : EXIT_OK;
}

/* ---- run ------------------------------------------------------------------------------------ */

static const struct cli_usage run_usage = {
    .usage =
        "slipway workflow run WORKFLOW [--ref REF] [--sha SHA] [-f KEY=VALUE]... [--repo DIR]\n"
        "                            [--wait] [--jobs N] [--label L]... [--unsupported skip]",
    .about = "Queues a run of WORKFLOW, a workflow's name or file name under\n"
             ".github/workflows/ (then .slipway/pipelines/) of the repository, or the\n"
             "path of any workflow file,\n"
             "against the git repository around the project (or --repo DIR) at --sha,\n"
             "else at --ref, else at HEAD, and prints the run's id (--json: {\"id\": ...}).\n"
             "With -f, or when the workflow has workflow_dispatch and no push trigger,\n"
             "the run is a workflow_dispatch (with those inputs), else a push of REF; a\n"
             "workflow with neither trigger is refused.\n"
             "With --wait it also claims the run, as a runner does, and runs it in this\n"
             "process (or follows the runner that claimed it first), printing the log as\n"
             "it goes; the exit status is then 0 only when the run succeeded. Settings\n"
             "not given come from .slipway/runner.yml (labels, unsupported, jobs).\n",
    .min_args = 1,
    .max_args = 1,
};

/* Runs git in repo and returns its first line of output (caller frees), or NULL. */
static char *git_line(const char *repo, const char *const *args)
{
    const char *argv[12] = {"git", "-C", repo};
    size_t n = 3;
    for (; args[n - 3] && n < 11; n++)
        argv[n] = args[n - 3];
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

/* Runs git in repo and fills out[0..n-1] with the n lines it printed (caller
 * frees them): 0, or -1 (nothing kept) when it failed or printed other than
 * n lines. */
static int git_lines(const char *repo, const char *const *args, char **out, size_t n)
{
    const char *argv[12] = {"git", "-C", repo};
    size_t k = 3;
    for (; args[k - 3] && k < 11; k++)
        argv[k] = args[k - 3];
    argv[k] = NULL;
    struct proc_opts po = {.argv = argv, .max_output = 1 << 16};
    struct proc_result pr = {0};
    struct sw_err err = {0};
    size_t got = 0;
    if (proc_run(&po, &pr, &err) == 0 && pr.exited && pr.exit_code == 0) {
        for (const char *p = pr.out; p && *p && got <= n; got++) {
            size_t len = strcspn(p, "\n");
            if (got < n)
                out[got] = xstrndup(p, len);
            p += len + (p[len] == '\n');
        }
    }
    proc_result_free(&pr);
    if (got == n)
        return 0;
    for (size_t i = 0; i < got && i < n; i++) {
        free(out[i]);
        out[i] = NULL;
    }
    return -1;
}

/* Where workflow run looks for a workflow by name, in order: GitHub's
 * directory, then the pipelines a push triggers (docs/pipelines.md). */
static const char *const workflow_dirs[] = {".github/workflows", ".slipway/pipelines"};

/* The workflow file named by what: a path, else a file name (with or without
 * .yml or .yaml), else a `name:`, under each of workflow_dirs of repo. */
static char *workflow_find(const char *repo, const char *what, struct sw_err *err)
{
    struct stat sb;
    char *path = NULL;
    const char *ext[] = {"", ".yml", ".yaml"};

    if (stat(what, &sb) == 0 && S_ISREG(sb.st_mode))
        return xstrdup(what);
    for (size_t k = 0; k < 2 && !path && !strchr(what, '/'); k++) {
        char *dir = path_join(repo, workflow_dirs[k]);
        for (size_t i = 0; i < 3 && !path; i++) {
            char *name = xasprintf("%s%s", what, ext[i]);
            path = path_join(dir, name);
            free(name);
            if (!(stat(path, &sb) == 0 && S_ISREG(sb.st_mode))) {
                free(path);
                path = NULL;
            }
        }
        free(dir);
    }
    for (size_t k = 0; k < 2 && !path; k++) {
        char *dir = path_join(repo, workflow_dirs[k]);
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && !path && (e = readdir(d))) {
            if (!str_ends_with(e->d_name, ".yml") && !str_ends_with(e->d_name, ".yaml"))
                continue;
            char *p = path_join(dir, e->d_name);
            struct pipeline_workflow *wf = NULL;
            struct sw_err e2 = {0};
            (void)pipeline_workflow_load(p, NULL, &wf, &e2);
            if (wf && wf->name.s && strcmp(wf->name.s, what) == 0)
                path = p;
            else
                free(p);
            pipeline_workflow_free(wf);
        }
        if (d)
            closedir(d);
        free(dir);
    }
    if (!path)
        sw_err_set(err, SW_ENOTFOUND,
                   "no workflow '%s': not a file, nor a workflow's file or name under %s/%s/ or "
                   "%s/%s/",
                   what, repo, workflow_dirs[0], repo, workflow_dirs[1]);
    return path;
}

/* inputs from -f KEY=VALUE, typed as the workflow declares them. */
static int inputs_parse(const struct pipeline_workflow *wf, const struct cli_list *f, json_t **out,
                        struct sw_err *err)
{
    json_t *in = json_object();
    for (size_t i = 0; i < f->n; i++) {
        const char *eq = strchr(f->v[i], '=');
        if (!eq || eq == f->v[i]) {
            json_decref(in);
            return sw_err_set(err, SW_EINVAL, "-f: expected KEY=VALUE, got '%s'", f->v[i]);
        }
        char *k = xstrndup(f->v[i], (size_t)(eq - f->v[i]));
        const struct pipeline_input *def = NULL;
        for (size_t j = 0; j < wf->on.n_dispatch_inputs; j++)
            if (strcmp(wf->on.dispatch_inputs[j].name, k) == 0)
                def = &wf->on.dispatch_inputs[j];
        if (!def || !utf8_valid(eq + 1, 0)) {
            sw_err_set(err, SW_EINVAL, "-f %s: the workflow has no such workflow_dispatch input",
                       k);
            free(k);
            json_decref(in);
            return SW_EINVAL;
        }
        json_t *v;
        if (def->type == PIPELINE_INPUT_BOOLEAN) {
            if (strcmp(eq + 1, "true") && strcmp(eq + 1, "false")) {
                sw_err_set(err, SW_EINVAL, "-f %s: expected true or false", k);
                free(k);
                json_decref(in);
                return SW_EINVAL;
            }
            v = json_boolean(strcmp(eq + 1, "true") == 0);
        } else if (def->type == PIPELINE_INPUT_NUMBER) {
            char *end;
            double d = strtod(eq + 1, &end);
            if (!eq[1] || *end) {
                sw_err_set(err, SW_EINVAL, "-f %s: expected a number", k);
                free(k);
                json_decref(in);
                return SW_EINVAL;
            }
            v = json_real(d);
        } else if (def->type == PIPELINE_INPUT_CHOICE) {
            size_t o = 0;
            while (o < def->n_options && strcmp(def->options[o], eq + 1) != 0)
                o++;
            if (o == def->n_options) {
                sw_err_set(err, SW_EINVAL,
                           "-f %s: Provided value '%s' for input '%s' not in the list of allowed "
                           "values",
                           k, eq + 1, k);
                free(k);
                json_decref(in);
                return SW_EINVAL;
            }
            v = json_string(eq + 1);
        } else
            v = json_string(eq + 1);
        json_object_set_new(in, k, v);
        free(k);
    }
    /* as GitHub's dispatch: an input not given takes its default, and a
     * required one without a default must be given */
    for (size_t j = 0; j < wf->on.n_dispatch_inputs; j++) {
        const struct pipeline_input *p = &wf->on.dispatch_inputs[j];
        if (json_object_get(in, p->name))
            continue;
        if (p->def.s && !p->def.expr) {
            if (p->type == PIPELINE_INPUT_BOOLEAN)
                json_object_set_new(in, p->name, json_boolean(p->def.b));
            else if (p->type == PIPELINE_INPUT_NUMBER)
                json_object_set_new(in, p->name, json_real(p->def.n));
            else
                json_object_set_new(in, p->name, json_string(p->def.s));
        } else if (p->required) {
            json_decref(in);
            return sw_err_set(err, SW_EINVAL,
                              "Required input '%s' not provided (give it with -f %s=VALUE)",
                              p->name, p->name);
        }
    }
    *out = in;
    return 0;
}

static int workflow_run(int argc, char **argv, struct cli *cli)
{
    const char *ref = NULL, *sha = NULL, *repo_opt = NULL, *unsupported = NULL;
    struct cli_list inputs = {NULL, 0}, labels = {NULL, 0};
    int wait = 0, jobs = 0;
    const struct cli_option opts[] = {
        OPT_STRING(0, "ref", &ref, "REF", "the ref the run is for (default: the branch at HEAD)"),
        OPT_STRING(0, "sha", &sha, "SHA", "the commit to run (default: REF's, else HEAD)"),
        OPT_LIST('f', "field", &inputs, "KEY=VALUE", "a workflow_dispatch input (repeatable)"),
        OPT_STRING(0, "repo", &repo_opt, "DIR",
                   "the git repository (default: around the project); the run\n"
                   "records it, and the project's runners run it from there when\n"
                   ".slipway/repositories lists it"),
        OPT_BOOL(0, "wait", &wait, "run it here (or follow it) until it ends"),
        OPT_INT(0, "jobs", &jobs, "N", 1, 64,
                "with --wait: jobs run at once (default: runner.yml's, else 1)"),
        OPT_LIST(0, "label", &labels, "L",
                 "with --wait: a label runs-on is matched against (repeatable;\n"
                 "replaces runner.yml's labels and the default set)"),
        OPT_STRING(0, "unsupported", &unsupported, "MODE",
                   "skip: skip steps and jobs slipway cannot run (default: error)"),
        OPT_END(),
    };
    struct sw_err err = {0};
    struct pipeline_workflow *wf = NULL;
    struct pipeline_run spec = {0}, *run = NULL;
    struct pipeline_load_opts lo = {0};
    struct cmd_runner_settings rs = {0};
    json_t *vars = NULL;
    char *repo = NULL, *file = NULL, *top = NULL, *ref_s = NULL, *sha_s = NULL, *work = NULL;
    char *fast[3] = {NULL, NULL, NULL}; /* git's answers: top (owned by top), sha, branch */
    int rc;

    if ((argc = cli_parse_options(cli, &run_usage, opts, argc, argv)) < 0) {
        free(inputs.v);
        free(labels.v);
        return CLI_EXIT(argc);
    }
    rc = EXIT_OK;
    if (unsupported && strcmp(unsupported, "skip") != 0 && strcmp(unsupported, "error") != 0)
        rc = cli_usage_error(cli, "--unsupported: expected skip or error, got '%s'", unsupported);
    else if (labels.n && !wait)
        rc = cli_usage_error(cli, "--label needs --wait (a runner's own labels decide otherwise)");
    else
        rc = cmd_runner_labels_check(cli, "--label", &labels);
    if (rc != EXIT_OK) {
        free(inputs.v);
        free(labels.v);
        return rc;
    }
    if (ref && !((str_starts_with(ref, "refs/heads/") && ref[11]) ||
                 (str_starts_with(ref, "refs/tags/") && ref[10]))) {
        free(inputs.v);
        free(labels.v);
        return cli_usage_error(cli, "--ref: expected refs/heads/BRANCH or refs/tags/TAG, got '%s'",
                               ref);
    }
    if (sha && !((strlen(sha) == 40 || strlen(sha) == 64) && hex_lower_valid(sha, strlen(sha)))) {
        free(inputs.v);
        free(labels.v);
        return cli_usage_error(cli, "--sha: expected 40 or 64 lowercase hex digits, got '%s'", sha);
    }
    if ((rc = cli_project(cli, &err)) < 0)
        goto fail;
    /* runner.yml's unsupported: also decides how the workflow is checked
     * before it is queued (the project's runners will run it that way) */
    if ((rc = cmd_runner_settings_load(cli, &labels, jobs, unsupported, &rs, &err)) < 0)
        goto fail;
    if (rs.skip)
        lo.flags |= PIPELINE_LOAD_SKIP_UNSUPPORTED;
    repo = xstrdup(repo_opt ? repo_opt : cli->project);
    /* One git for the top level, the commit and the branch: a process is a
     * run's biggest fixed cost. When it fails (no commit yet...), the
     * questions are asked one by one, for the right error. */
    {
        char *what = xasprintf("%s^{commit}", ref ? ref : "HEAD");
        const char *one[] = {"rev-parse", "--show-toplevel", what, "--symbolic-full-name", "HEAD",
                             NULL};
        if (git_lines(repo, one, fast, 3) == 0)
            top = fast[0];
        free(what);
    }
    const char *toplevel[] = {"rev-parse", "--show-toplevel", NULL};
    if (!top && !(top = git_line(repo, toplevel))) {
        rc = sw_err_set(&err, SW_EINVAL, "%s is not in a git repository; give --repo DIR", repo);
        goto fail;
    }
    if (!(file = workflow_find(top, argv[0], &err))) {
        rc = err.code;
        goto fail;
    }
    rc = pipeline_workflow_load(file, &lo, &wf, &err);
    if (rc < 0) {
        for (size_t i = 0; wf && i + 1 < wf->n_errors; i++)
            cli_printf(stderr, "%s\n", wf->errors[i + 1].text);
        goto fail;
    }
    if (ref)
        ref_s = xstrdup(ref);
    else if (fast[2] && strcmp(fast[2], "HEAD") != 0)
        ref_s = xstrdup(fast[2]); /* --symbolic-full-name: "HEAD" when detached */
    else {
        const char *sym[] = {"symbolic-ref", "-q", "HEAD", NULL};
        ref_s = fast[2] ? NULL : git_line(top, sym);
        if (!ref_s)
            ref_s = xstrdup("refs/heads/main");
    }
    if (sha)
        sha_s = xstrdup(sha);
    else if (fast[1])
        sha_s = xstrdup(fast[1]);
    else {
        char *what = xasprintf("%s^{commit}", ref ? ref : "HEAD");
        const char *rp[] = {"rev-parse", "--verify", "-q", what, NULL};
        sha_s = git_line(top, rp);
        free(what);
        if (!sha_s) {
            rc = sw_err_set(&err, SW_ENOTFOUND, "%s: no commit for %s", top, ref ? ref : "HEAD");
            goto fail;
        }
    }
    /* the event: a dispatch with -f, or when the workflow takes no push; a
     * workflow that takes neither is never run here (pull_request, schedule,
     * workflow_call...: slipway has no such events) */
    if (inputs.n && !wf->on.dispatch) {
        rc = sw_err_set(&err, SW_EINVAL,
                        "-f: %s has no workflow_dispatch trigger, so it takes no inputs", file);
        goto fail;
    }
    int dispatch = inputs.n || (!wf->on.push.present && wf->on.dispatch);
    if (!dispatch && !wf->on.push.present) {
        struct buf ev = {0};
        for (size_t i = 0; i < wf->on.n_events; i++)
            buf_addf(&ev, "%s%s", i ? ", " : "", wf->on.events[i]);
        rc = sw_err_set(&err, SW_EINVAL,
                        "%s is triggered by neither push nor workflow_dispatch (on: %s): slipway "
                        "never runs it",
                        file, ev.data ? ev.data : "");
        buf_free(&ev);
        goto fail;
    }
    if (dispatch && (rc = inputs_parse(wf, &inputs, &spec.inputs, &err)) < 0)
        goto fail;
    /* the record names the file relative to the repository when it is inside */
    char *abs = realpath(file, NULL);
    const char *rel = abs && str_starts_with(abs, top) && abs[strlen(top)] == '/'
                          ? abs + strlen(top) + 1
                          : (strrchr(file, '/') ? strrchr(file, '/') + 1 : file);
    spec.workflow_file = xstrdup(rel);
    free(abs);
    spec.event = xstrdup(dispatch ? "workflow_dispatch" : "push");
    spec.ref = ref_s;
    spec.sha = sha_s;
    spec.actor = xstrdup(sys_user());
    /* --repo is recorded in the run, as a push hook records the repository
     * pushed to: a runner elsewhere (serve's, whose own repository is the one
     * around its project) then runs it from there when its project lists it,
     * and refuses it otherwise, instead of running it from the wrong one */
    if (repo_opt) {
        spec.repository = realpath(top, NULL);
        if (spec.repository && !pipeline_run_repository_valid(spec.repository)) {
            free(spec.repository);
            spec.repository = NULL;
        }
    }
    vars = json_object();
    if ((rc = pipeline_vars_load(cli->project, vars, &err)) < 0)
        goto fail;
    if ((rc = pipeline_run_prepare(wf, &spec, strrchr(top, '/') ? strrchr(top, '/') + 1 : top, vars,
                                   &err)) < 0)
        goto fail;
    if ((rc = cli_store(cli, CLI_STORE_WRITE, &err)) < 0)
        goto fail;
    if ((rc = pipeline_run_create(cli->store, &spec, &run, &err)) < 0)
        goto fail;
    if (cli->json && !wait)
        cli_print_json(json_pack("{s:s}", "id", run->id));
    else
        cli_printf(stdout, "%s\n", run->id);
    fflush(stdout);
    if (!wait) {
        rc = 0;
        goto out;
    }
    /* --wait: claim it as a runner would, or follow whoever did */
    char runner_id[40];
    snprintf(runner_id, sizeof(runner_id), "cli-%ld", (long)getpid());
    struct pipeline_run *claimed = NULL;
    for (;;) {
        rc = pipeline_run_claim(cli->store, run->id, runner_id, 0, &claimed, &err);
        if (rc != PIPELINE_EWAITING)
            break;
        struct timespec ts = {0, 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
        err = (struct sw_err){0};
    }
    if (rc == PIPELINE_ECLAIMED) {
        rc = cmd_run_follow(cli, run->id, stdout);
        goto out_code;
    }
    if (rc < 0)
        goto fail;
    cmd_signals_cancel();
    rc = cmd_run_execute(cli, claimed, wf, top, &rs, cli->json ? stderr : stdout, &err);
    if (rc < 0) {
        pipeline_run_free(claimed);
        goto fail;
    }
    if (cli->json)
        cli_print_json(pipeline_run_json(claimed, 1));
    else
        cli_printf(stdout, "run %s %s\n", claimed->id, pipeline_run_status_name(claimed->status));
    rc = claimed->status == PIPELINE_RUN_SUCCEEDED ? EXIT_OK : EXIT_FAIL;
    pipeline_run_free(claimed);
    goto out_code;
fail:
    rc = cli_fail(&err);
    goto out_code;
out:
    rc = EXIT_OK;
out_code:
    free(inputs.v);
    free(labels.v);
    cmd_runner_settings_free(&rs);
    free(repo);
    free(top);
    free(fast[1]);
    free(fast[2]);
    free(file);
    free(work);
    pipeline_workflow_free(wf);
    pipeline_run_free(run);
    free(ref_s);
    free(sha_s);
    free(spec.workflow);
    free(spec.workflow_file);
    free(spec.event);
    free(spec.actor);
    free(spec.repository);
    free(spec.group);
    free(spec.display_title);
    json_decref(spec.inputs);
    json_decref(vars);
    return rc;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

int cmd_workflow(int argc, char **argv, struct cli *cli)
{
    return cli_run_subcommand(cli, "workflow",
                              "GitHub Actions workflow files, as slipway's runner reads them.\n",
                              subcommands, NSUB, argc, argv);
}
