/* slipway run SUBCOMMAND: the runs of workflows in the store (as `gh run`):
 * list, view, watch, cancel and download. The subcommands are a table. */
#include "cmd/cmd.h"
#include "pipeline/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int run_list(int argc, char **argv, struct cli *cli);
static int run_view(int argc, char **argv, struct cli *cli);
static int run_watch(int argc, char **argv, struct cli *cli);
static int run_cancel(int argc, char **argv, struct cli *cli);
static int run_download(int argc, char **argv, struct cli *cli);

static const struct cli_subcommand subcommands[] = {
    {"list", "run list", run_list, "list runs, newest first"},
    {"view", "run view", run_view, "show a run, its jobs and steps, or its log"},
    {"watch", "run watch", run_watch, "follow a run until it ends"},
    {"cancel", "run cancel", run_cancel, "cancel a queued or running run"},
    {"approve", "run approve", cmd_approve, "approve or reject a job waiting at a gate"},
    {"download", "run download", run_download, "download the artifacts of a run"},
};
#define NSUB (sizeof(subcommands) / sizeof(subcommands[0]))

/* Loads run id (checked first: it becomes a key). */
static int load(struct cli *cli, const char *id, struct pipeline_run **out, struct sw_err *err)
{
    int rc;
    if (!pipeline_run_id_valid(id))
        return sw_err_set(err, SW_EINVAL, "'%s' is not a run id (run-YYYYMMDD-HHMMSS-mmm-xxxxxx)",
                          id);
    if ((rc = cli_store(cli, CLI_STORE_READ, err)) < 0)
        return rc;
    return pipeline_run_load(cli->store, id, out, err);
}

/* ---- list ------------------------------------------------------------------------------------ */

static const struct cli_usage list_usage = {
    .usage = "slipway run list [--workflow W] [--limit N]",
    .about = "Lists runs newest first: id, status, workflow, ref, created.\n"
             "--json prints {\"runs\": [{\"id\", \"workflow\", \"ref\", \"sha\", \"status\",\n"
             "\"created_at\"}]}.\n",
    .min_args = 0,
    .max_args = 0,
};

static int run_list(int argc, char **argv, struct cli *cli)
{
    const char *workflow = NULL;
    int limit = 20;
    const struct cli_option opts[] = {
        OPT_STRING(0, "workflow", &workflow, "W", "only runs of W (a name or file)"),
        OPT_INT('L', "limit", &limit, "N", 1, 1000, "at most N runs (default 20)"),
        OPT_END(),
    };
    struct pipeline_run_filter f = {0};
    struct pipeline_run_list l = {0};
    struct sw_err err = {0};

    if ((argc = cli_parse_options(cli, &list_usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    f.workflow = workflow;
    f.limit = (size_t)limit;
    if (cli_store(cli, CLI_STORE_READ, &err) < 0 || pipeline_run_list(cli->store, &f, &l, &err) < 0)
        return cli_fail(&err);
    if (cli->json) {
        json_t *runs = json_array();
        for (size_t i = 0; i < l.n; i++)
            json_array_append_new(runs, pipeline_run_json(l.runs[i], 0));
        cli_print_json(json_pack("{s:o}", "runs", runs));
    } else {
        for (size_t i = 0; i < l.n; i++) {
            char ts[40];
            time_format_iso(l.runs[i]->created_ms, ts, sizeof(ts));
            cli_printf(stdout, "%s  %-9s  %s  %s  %s\n", l.runs[i]->id,
                       pipeline_run_status_name(l.runs[i]->status),
                       l.runs[i]->workflow ? l.runs[i]->workflow : "",
                       l.runs[i]->ref ? l.runs[i]->ref : "", ts);
        }
        if (!l.n)
            cli_say(cli, "no runs\n");
    }
    pipeline_run_list_free(&l);
    return EXIT_OK;
}

/* ---- logs
 * ---------------------------------------------------------------------------------------- */

struct stream {
    unsigned job, step;
    uint64_t next;
    struct buf rest; /* a line not complete yet */
};

/* Prints what is new in the streams of run r; *s and *n grow as streams appear. */
static int print_new(struct cli *cli, const struct pipeline_run *r, struct stream **s, size_t *n,
                     const char *job_filter, int tabbed, FILE *f, struct sw_err *err)
{
    struct pipeline_runlog_stream *list = NULL;
    size_t nl = 0;
    int rc = pipeline_runlog_streams(cli->store, r->id, &list, &nl, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < nl; i++) {
        size_t k;
        for (k = 0; k < *n; k++)
            if ((*s)[k].job == list[i].job && (*s)[k].step == list[i].step)
                break;
        if (k == *n) {
            *s = xrealloc(*s, (*n + 1) * sizeof(**s));
            memset(&(*s)[k], 0, sizeof(**s));
            (*s)[k].job = list[i].job;
            (*s)[k].step = list[i].step;
            (*n)++;
        }
        struct stream *st = &(*s)[k];
        const struct pipeline_run_job *j = st->job < r->njobs ? &r->jobs[st->job] : NULL;
        const char *jname = j ? j->name : "?";
        const char *sname = j && st->step && st->step <= j->nsteps ? j->steps[st->step - 1].name
                            : st->step                             ? "step"
                                                                   : "Set up job";
        if (job_filter && (!j || (strcmp(j->id, job_filter) && strcmp(j->name, job_filter))))
            continue;
        if ((rc = pipeline_runlog_read(cli->store, r->id, st->job, st->step, &st->next, 0,
                                       &st->rest, err)) < 0)
            break;
        size_t start = 0;
        for (size_t p = 0; p < st->rest.len; p++) {
            if (st->rest.data[p] != '\n')
                continue;
            char *line = xstrndup(st->rest.data + start, p - start);
            if (tabbed)
                cli_printf(f, "%s\t%s\t%s\n", jname, sname, line);
            else {
                const char *text = strchr(line, ' ') ? strchr(line, ' ') + 1 : line;
                cli_printf(f, "[%s] %s\n", jname, text);
            }
            free(line);
            start = p + 1;
        }
        memmove(st->rest.data, st->rest.data + start, st->rest.len - start);
        st->rest.len -= start;
    }
    free(list);
    return rc;
}

static void streams_free(struct stream *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf_free(&s[i].rest);
    free(s);
}

int cmd_run_follow(struct cli *cli, const char *id, FILE *f)
{
    struct stream *s = NULL;
    size_t n = 0;
    struct sw_err err = {0};
    struct pipeline_run *r = NULL;
    int rc;

    for (;;) {
        pipeline_run_free(r);
        r = NULL;
        if ((rc = load(cli, id, &r, &err)) < 0)
            break;
        int ended = pipeline_run_status_ended(r->status);
        if ((rc = print_new(cli, r, &s, &n, NULL, 0, f, &err)) < 0 || ended)
            break;
        fflush(f);
        struct timespec ts = {0, 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    streams_free(s, n);
    if (rc < 0) {
        pipeline_run_free(r);
        return cli_fail(&err);
    }
    cli_printf(f, "run %s %s\n", r->id, pipeline_run_status_name(r->status));
    rc = r->status == PIPELINE_RUN_SUCCEEDED ? EXIT_OK : EXIT_FAIL;
    pipeline_run_free(r);
    return rc;
}

/* ---- view --------------------------------------------------------------------------------------
 */

static const struct cli_usage view_usage = {
    .usage = "slipway run view RUN [--log] [--job J]",
    .about =
        "Shows run RUN: its status and conclusion, each job (one per matrix leg)\n"
        "with its steps. --log prints the run's log instead, a line per log line as\n"
        "JOB<TAB>STEP<TAB>TIME LINE; --job J keeps the job J (an id or a name).\n"
        "--json prints {\"id\", \"workflow\", \"status\", \"conclusion\", \"jobs\": [{\"id\",\n"
        "\"name\", \"matrix\", \"status\", \"conclusion\", \"started_at\", \"ended_at\",\n"
        "\"outputs\", \"steps\": [{\"name\", \"outcome\", \"conclusion\"}]}]}.\n",
    .min_args = 1,
    .max_args = 1,
};

/* A job's gate, under its line: what it waits (or waited) for and every decision. */
static void gate_print(const struct pipeline_run *r, const struct pipeline_run_job *j)
{
    const struct pipeline_gate *g = j->gate;
    struct buf who = BUF_INIT;
    char since[40], until[40];
    size_t n = 0;
    for (size_t i = 0; i < g->napprovers; i++)
        buf_addf(&who, "%s%s", i ? ", " : "", g->approvers[i]);
    time_format_iso(g->waiting_since_ms, since, sizeof(since));
    time_format_iso(g->waiting_since_ms + g->timeout_ms, until, sizeof(until));
    (void)pipeline_gate_decide(g, r->actor, time_now_ms(), NULL, &n);
    if (g->state == PIPELINE_GATE_WAITING && j->status == PIPELINE_JOB_WAITING)
        cli_printf(stdout,
                   "    gate: waiting for %d approval%s from %s for environment %s since %s "
                   "(%zu so far; times out at %s)\n",
                   g->required, g->required == 1 ? "" : "s", who.data ? who.data : "",
                   g->environment, since, n, until);
    else
        cli_printf(
            stdout, "    gate: environment %s %s (%d approval%s needed from %s; waited since %s)\n",
            g->environment,
            g->state == PIPELINE_GATE_WAITING ? "not decided" : pipeline_gate_state_name(g->state),
            g->required, g->required == 1 ? "" : "s", who.data ? who.data : "", since);
    for (size_t i = 0; i < g->ndecisions; i++) {
        const struct pipeline_gate_decision *d = &g->decisions[i];
        char at[40];
        time_format_iso(d->at_ms, at, sizeof(at));
        cli_printf(stdout, "    %s by %s%s%s%s at %s%s%s\n", d->reject ? "rejected" : "approved",
                   d->by, d->os_user && strcmp(d->os_user, d->by) ? " (recorded by " : "",
                   d->os_user && strcmp(d->os_user, d->by) ? d->os_user : "",
                   d->os_user && strcmp(d->os_user, d->by) ? ")" : "", at, d->comment ? ": " : "",
                   d->comment ? d->comment : "");
    }
    buf_free(&who);
}

static int run_view(int argc, char **argv, struct cli *cli)
{
    int log = 0;
    const char *job = NULL;
    const struct cli_option opts[] = {
        OPT_BOOL(0, "log", &log, "print the run's log"),
        OPT_STRING(0, "job", &job, "J", "only the job J (an id or a name)"),
        OPT_END(),
    };
    struct pipeline_run *r = NULL;
    struct sw_err err = {0};
    int rc = EXIT_OK;

    if ((argc = cli_parse_options(cli, &view_usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    if (load(cli, argv[0], &r, &err) < 0)
        return cli_fail(&err);
    if (log) {
        struct stream *s = NULL;
        size_t n = 0;
        if (print_new(cli, r, &s, &n, job, 1, stdout, &err) < 0)
            rc = cli_fail(&err);
        streams_free(s, n);
    } else if (cli->json) {
        json_t *doc = pipeline_run_json(r, 1);
        if (job) {
            json_t *jobs = json_object_get(doc, "jobs"), *keep = json_array(), *j;
            size_t i;
            json_array_foreach(jobs, i, j)
            {
                if (strcmp(json_string_value(json_object_get(j, "id")), job) == 0 ||
                    strcmp(json_string_value(json_object_get(j, "name")), job) == 0)
                    json_array_append(keep, j);
            }
            json_object_set_new(doc, "jobs", keep);
        }
        cli_print_json(doc);
    } else {
        const char *c = pipeline_conclusion_name(r->conclusion);
        cli_printf(stdout, "%s  %s  %s%s%s\n", r->id, r->workflow ? r->workflow : "",
                   pipeline_run_status_name(r->status), r->reason ? ": " : "",
                   r->reason ? r->reason : "");
        if (r->display_title)
            cli_printf(stdout, "  %s\n", r->display_title);
        (void)c;
        for (size_t i = 0; i < r->njobs; i++) {
            const struct pipeline_run_job *j = &r->jobs[i];
            if (job && strcmp(j->id, job) && strcmp(j->name, job))
                continue;
            const char *jc = pipeline_conclusion_name(j->conclusion);
            cli_printf(stdout, "  %s  %s%s%s\n", j->name,
                       jc ? jc : pipeline_job_status_name(j->status), j->reason ? ": " : "",
                       j->reason ? j->reason : "");
            if (j->gate)
                gate_print(r, j);
            for (size_t k = 0; k < j->nsteps; k++) {
                const char *sc = pipeline_conclusion_name(j->steps[k].conclusion);
                cli_printf(stdout, "    %s  %s\n", j->steps[k].name, sc ? sc : "");
            }
        }
    }
    pipeline_run_free(r);
    return rc;
}

/* ---- watch -------------------------------------------------------------------------------------
 */

static const struct cli_usage watch_usage = {
    .usage = "slipway run watch RUN",
    .about = "Follows run RUN, printing its log as it grows, until it ends; exits 0\n"
             "when it succeeded, 1 when it failed or was cancelled.\n",
    .min_args = 1,
    .max_args = 1,
};

static int run_watch(int argc, char **argv, struct cli *cli)
{
    const struct cli_option opts[] = {OPT_END()};
    if ((argc = cli_parse_options(cli, &watch_usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    if (!pipeline_run_id_valid(argv[0]))
        return cli_usage_error(cli, "'%s' is not a run id", argv[0]);
    return cmd_run_follow(cli, argv[0], stdout);
}

/* ---- cancel ------------------------------------------------------------------------------------
 */

static const struct cli_usage cancel_usage = {
    .usage = "slipway run cancel RUN",
    .about = "Cancels run RUN: a queued run at once; a running one is asked to stop,\n"
             "which its runner does at its next heartbeat (its steps get SIGTERM, then\n"
             "SIGKILL 10 s later). Exit 1 when the run has ended already.\n",
    .min_args = 1,
    .max_args = 1,
};

static int run_cancel(int argc, char **argv, struct cli *cli)
{
    const struct cli_option opts[] = {OPT_END()};
    struct sw_err err = {0};
    struct pipeline_run *r = NULL;

    if ((argc = cli_parse_options(cli, &cancel_usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    if (!pipeline_run_id_valid(argv[0]))
        return cli_usage_error(cli, "'%s' is not a run id", argv[0]);
    if (cli_store(cli, CLI_STORE_WRITE, &err) < 0 ||
        pipeline_run_cancel(cli->store, argv[0], NULL, &r, &err) < 0)
        return cli_fail(&err);
    if (cli->json)
        cli_print_json(pipeline_run_json(r, 1));
    else
        cli_printf(stdout, "run %s: %s\n", r->id,
                   r->status == PIPELINE_RUN_CANCELLED ? "cancelled" : "cancel requested");
    pipeline_run_free(r);
    return EXIT_OK;
}

/* ---- download ----------------------------------------------------------------------------------
 */

static const struct cli_usage download_usage = {
    .usage = "slipway run download RUN [-n NAME]... [-p PATTERN]... [-D DIR]",
    .about = "Downloads the artifacts run RUN uploaded (actions/upload-artifact) into DIR\n"
             "(default the current directory), as 'gh run download' and download-artifact\n"
             "place them: with exactly one -n NAME and no -p, its files go into DIR itself;\n"
             "otherwise each artifact goes into DIR/NAME/. Without -n and -p, every artifact\n"
             "of the run. Every manifest is checked before anything is written, every file\n"
             "against its hash, and nothing is written outside DIR (a symbolic link found\n"
             "there is never followed). Exit 1 when a name is not an artifact of the run.\n"
             "--json prints {\"artifacts\": [{\"name\", \"path\", \"files\", \"bytes\"}]}.\n",
    .min_args = 1,
    .max_args = 1,
};

struct dl_ctx {
    struct cli *cli;
    json_t *list;
};

static void downloaded(void *ctx, const struct pipeline_artifact *a, const char *where)
{
    struct dl_ctx *d = ctx;
    if (d->list)
        json_array_append_new(d->list, json_pack("{s:s, s:s, s:I, s:I}", "name", a->name, "path",
                                                 where, "files", (json_int_t)a->nfiles, "bytes",
                                                 (json_int_t)a->bytes));
    else
        cli_say(d->cli, "downloaded %s (%zu file%s, %llu bytes) into %s\n", a->name, a->nfiles,
                a->nfiles == 1 ? "" : "s", (unsigned long long)a->bytes, where);
}

static int run_download(int argc, char **argv, struct cli *cli)
{
    struct cli_list names = {0}, patterns = {0};
    const char *dir = ".";
    const struct cli_option opts[] = {
        OPT_LIST('n', "name", &names, "NAME", "the artifact NAME (repeatable)"),
        OPT_LIST('p', "pattern", &patterns, "PATTERN",
                 "the artifacts whose names match PATTERN: *, ?, [...] (repeatable)"),
        OPT_STRING('D', "dir", &dir, "DIR", "where to put them (default .)"),
        OPT_END(),
    };
    struct pipeline_artifact_fetch f = {0};
    struct pipeline_artifact_fetched res = {0};
    struct dl_ctx d = {cli, NULL};
    struct sw_err err = {0};
    int rc = EXIT_OK;

    if ((argc = cli_parse_options(cli, &download_usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    if (!pipeline_run_id_valid(argv[0])) {
        rc = cli_usage_error(cli, "'%s' is not a run id", argv[0]);
        goto out;
    }
    if (!*dir) {
        rc = cli_usage_error(cli, "-D: an empty directory name");
        goto out;
    }
    f.run_id = argv[0];
    f.names = names.v;
    f.nnames = names.n;
    f.patterns = patterns.v;
    f.npatterns = patterns.n;
    f.dir = dir;
    f.on_artifact = downloaded;
    f.ctx = &d;
    if (cli->json)
        d.list = json_array();
    struct pipeline_run *r = NULL;
    if (load(cli, argv[0], &r, &err) < 0) { /* an unknown run is said as such */
        rc = cli_fail(&err);
        goto out;
    }
    pipeline_run_free(r);
    if (pipeline_artifact_download(cli->store, &f, &res, &err) < 0) {
        rc = cli_fail(&err);
        goto out;
    }
    if (!res.artifacts) {
        /* as gh: nothing to download is an error, not an empty success */
        sw_err_set(&err, SW_ENOTFOUND, "run %s has no artifacts", argv[0]);
        rc = cli_fail(&err);
        goto out;
    }
    if (d.list) {
        cli_print_json(json_pack("{s:O}", "artifacts", d.list));
    }
out:
    json_decref(d.list);
    free(names.v);
    free(patterns.v);
    return rc;
}

/* ---- dispatch ----------------------------------------------------------------------------------
 */

int cmd_run(int argc, char **argv, struct cli *cli)
{
    return cli_run_subcommand(cli, "run",
                              "The runs of workflows in the store (see 'slipway workflow run').\n",
                              subcommands, NSUB, argc, argv);
}
