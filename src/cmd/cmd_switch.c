/* slipway switch ENV: make the idle slot of a blue-green environment live. */
#include "cmd/cmd.h"

#include <stdio.h>

static const struct cli_usage usage = {
    .usage = "slipway switch ENV [--message M]",
    .about = "Makes the idle slot of blue-green environment ENV live; the release that\n"
             "was live stays in the other slot for instant rollback (keep_previous).\n",
    .min_args = 1,
    .max_args = 1,
};

int cmd_switch(int argc, char **argv, struct cli *cli)
{
    const char *message = NULL;
    int force = 0;
    const struct cli_option opts[] = {
        OPT_STRING('m', "message", &message, "M", "a note kept in the history"),
        OPT_BOOL(0, "force", &force,
                 "even a release an automatic rollback rejected on this environment"),
        OPT_END(),
    };
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    struct sw_err err = {0};
    struct env_config *env = NULL;
    struct deploy_result res = {0};
    struct deploy_opts o = {.force = force, .message = message};
    int rc = cli_env(cli, argv[0], &env, &err);
    if (!rc)
        rc = cli_store(cli, CLI_STORE_WRITE, &err);
    char *copy = rc ? NULL : cli_head_copy(cli);
    o.head_copy = copy;
    if (!rc && !(rc = deploy_switch(cli->store, env, &o, &res, &err)))
        cli_print_change(cli, env, NULL, &res);
    deploy_result_free(&res);
    env_config_free(env);
    free(copy);
    return rc ? cli_fail(&err) : EXIT_OK;
}
