/* slipway switch ENV: make the idle slot of a blue-green environment live. */
#include "cmd/cmd.h"

#include <stdio.h>

static const char usage[] =
    "usage: slipway switch ENV [--message M]\n"
    "\n"
    "Makes the idle slot of blue-green environment ENV live; the release that\n"
    "was live stays in the other slot for instant rollback (keep_previous).\n"
    "\n"
    "  -m, --message M    a note kept in the history\n";

int cmd_switch(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {
        CLI_GLOBAL_OPTIONS, {"message", required_argument, NULL, 'm'}, {0}};
    const char *message = NULL;
    cli->usage = usage;
    int first = cli_getopt(cli, argc, argv, "m:", opts, cli_opt_string, &message);
    if (first < 0)
        return -first - 1;
    if (argc - first != 1)
        return cli_usage_error(cli, "expected one environment");
    struct sw_err err = {0};
    struct env_config *env = NULL;
    struct deploy_result res = {0};
    struct deploy_opts o = {.message = message};
    int rc = cli_env(cli, argv[first], &env, &err);
    if (!rc && !(rc = cli_store(cli, &err)) &&
        !(rc = deploy_switch(cli->store, env, &o, &res, &err)))
        cli_print_change(cli, env, NULL, &res);
    deploy_result_free(&res);
    env_config_free(env);
    return rc ? cli_fail(&err) : EXIT_OK;
}
