/* slipway approve RUN (also `slipway run approve`): records an approval or a
 * rejection at the gate a job of RUN waits at. Who decides is the OS user
 * running the command (getpwuid, never an environment variable a caller sets
 * at will); --as records the decision for another approver, allowed only to
 * an OS user who is an approver of that environment itself. */
#include "cmd/cmd.h"
#include "pipeline/pipeline.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cli_usage usage = {
    .usage = "slipway approve RUN [--job JOB] [--reject] [--comment TEXT] [--as NAME]",
    .about = "Approves (or with --reject rejects) the job of run RUN that waits at the\n"
             "approval gate of its environment (the environment file's `approval`). The\n"
             "decision is recorded in the run, with who (the OS user), when and the\n"
             "comment; the runner lets the job start once `required` approvers have\n"
             "approved, and fails it on the first rejection. Whoever triggered the run\n"
             "cannot approve it unless the environment sets allow_self_approval.\n"
             "--as NAME records the decision for approver NAME; only an OS user who is\n"
             "an approver of the environment may use it. Exit 1, with one line saying\n"
             "why, for an unknown run, a run with no job waiting, several jobs waiting\n"
             "and no --job, someone not an approver, and a second decision by one person.\n"
             "--json prints {\"run\", \"job\", \"environment\", \"decision\", \"by\",\n"
             "\"os_user\", \"at\", \"comment\", \"approvals\", \"required\", \"state\"}.\n",
    .min_args = 1,
    .max_args = 1,
};

/* The name of the OS user running this process. */
static int os_user(char *out, size_t n, struct sw_err *err)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    int e;
    while ((e = getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res)) == EINTR)
        ;
    if (e || !res)
        return sw_err_set(err, SW_EINVAL, "cannot tell who you are: uid %ld has no user name%s%s",
                          (long)getuid(), e ? ": " : "", e ? strerror(e) : "");
    if ((size_t)snprintf(out, n, "%s", res->pw_name) >= n)
        return sw_err_set(err, SW_EINVAL, "your user name is longer than %zu bytes", n - 1);
    return 0;
}

int cmd_approve(int argc, char **argv, struct cli *cli)
{
    const char *job = NULL, *comment = NULL, *as = NULL;
    int reject = 0;
    const struct cli_option opts[] = {
        OPT_STRING(0, "job", &job, "JOB",
                   "the job (an id or a name) to decide for, when several wait"),
        OPT_BOOL(0, "reject", &reject, "reject: the job fails and nothing after it runs"),
        OPT_STRING(0, "comment", &comment, "TEXT", "a comment recorded with the decision"),
        OPT_STRING(0, "as", &as, "NAME",
                   "record it for approver NAME (you must be an approver yourself)"),
        OPT_END(),
    };
    struct pipeline_approve q = {0};
    struct pipeline_run *r = NULL;
    struct sw_err err = {0};
    char me[256];
    size_t at = 0;

    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    if (!pipeline_run_id_valid(argv[0]))
        return cli_usage_error(cli, "'%s' is not a run id (run-YYYYMMDD-HHMMSS-mmm-xxxxxx)",
                               argv[0]);
    if (as && !*as)
        return cli_usage_error(cli, "--as: an empty name");
    if (os_user(me, sizeof(me), &err) < 0 || cli_store(cli, CLI_STORE_WRITE, &err) < 0)
        return cli_fail(&err);
    q.run_id = argv[0];
    q.job = job;
    q.os_user = me;
    q.as = as;
    q.reject = reject;
    q.comment = comment;
    if (pipeline_run_approve(cli->store, &q, &r, &at, &err) < 0)
        return cli_fail(&err);
    const struct pipeline_run_job *j = &r->jobs[at];
    const struct pipeline_gate *g = j->gate;
    const struct pipeline_gate_decision *d = &g->decisions[g->ndecisions - 1];
    size_t n = 0;
    enum pipeline_gate_state st = pipeline_gate_decide(g, r->actor, time_now_ms(), NULL, &n);
    if (cli->json) {
        cli_print_json(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:i, s:s}", "run",
                                 r->id, "job", j->name, "environment", g->environment, "decision",
                                 d->reject ? "rejected" : "approved", "by", d->by, "os_user", me,
                                 "at", json_time_or_null(d->at_ms), "comment",
                                 json_str_or_null(d->comment), "approvals", (json_int_t)n,
                                 "required", g->required, "state", pipeline_gate_state_name(st)));
    } else if (d->reject) {
        cli_printf(stdout, "rejected job %s of run %s for environment %s\n", j->name, r->id,
                   g->environment);
    } else {
        cli_printf(stdout, "approved job %s of run %s for environment %s (%zu of %d approval%s)\n",
                   j->name, r->id, g->environment, n, g->required, g->required == 1 ? "" : "s");
    }
    pipeline_run_free(r);
    return EXIT_OK;
}
