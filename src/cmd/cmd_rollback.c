/* slipway rollback ENV [--to RELEASE]: go back, instantly where possible. */
#include "cmd/cmd.h"
#include "release/release.h"

#include <stdio.h>
#include <stdlib.h>

static const char usage[] =
    "usage: slipway rollback ENV [--to RELEASE] [--message M]\n"
    "\n"
    "Makes the previous release (or RELEASE) live again. For blue-green, when\n"
    "the idle slot still holds it (within keep_previous), this is an instant\n"
    "flip of the live slot; otherwise the release is deployed to the idle slot\n"
    "and switched to. For direct, the release is deployed.\n"
    "\n"
    "  -t, --to RELEASE   the release to go back to (id or unique prefix/suffix)\n"
    "  -m, --message M    a note kept in the history\n";

struct args {
    const char *to, *message;
};

static int opt(int c, const char *arg, void *ctx)
{
    struct args *a = ctx;
    if (c == 't')
        a->to = arg;
    else
        a->message = arg;
    return 0;
}

int cmd_rollback(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {CLI_GLOBAL_OPTIONS,
                                         {"to", required_argument, NULL, 't'},
                                         {"message", required_argument, NULL, 'm'},
                                         {0}};
    struct args a = {0};
    cli->usage = usage;
    int first = cli_getopt(cli, argc, argv, "t:m:", opts, opt, &a);
    if (first < 0)
        return -first - 1;
    if (argc - first != 1)
        return cli_usage_error(cli, "expected one environment");
    struct sw_err err = {0};
    struct env_config *env = NULL;
    struct deploy_result res = {0};
    char *to = NULL;
    struct deploy_opts o = {.message = a.message};
    int rc = cli_env(cli, argv[first], &env, &err);
    if (!rc)
        rc = cli_store(cli, &err);
    if (!rc && a.to)
        rc = release_resolve(cli->store, a.to, &to, &err);
    if (!rc && !(rc = deploy_rollback(cli->store, env, to, &o, &res, &err)))
        cli_print_change(cli, env, res.to, &res);
    deploy_result_free(&res);
    env_config_free(env);
    free(to);
    return rc ? cli_fail(&err) : EXIT_OK;
}
