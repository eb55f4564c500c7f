/* slipway rollback ENV [--to RELEASE]: go back, instantly where possible. */
#include "cmd/cmd.h"
#include "release/release.h"

#include <stdio.h>
#include <stdlib.h>

static const struct cli_usage usage = {
    .usage = "slipway rollback ENV [--to RELEASE] [--message M]",
    .about = "Makes the previous release (or RELEASE) live again. For blue-green, when\n"
             "the idle slot still holds it (within keep_previous), this is an instant\n"
             "flip of the live slot; otherwise the release is deployed to the idle slot\n"
             "and switched to. For direct, the release is deployed.\n",
    .min_args = 1,
    .max_args = 1,
};

int cmd_rollback(int argc, char **argv, struct cli *cli)
{
    const char *to_opt = NULL, *message = NULL;
    int force = 0;
    const struct cli_option opts[] = {
        OPT_STRING('t', "to", &to_opt, "RELEASE",
                   "the release to go back to (id or unique prefix/suffix)"),
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
    char *to = NULL;
    struct deploy_opts o = {.force = force, .message = message};
    int rc = cli_env(cli, argv[0], &env, &err);
    if (!rc)
        rc = cli_store(cli, CLI_STORE_WRITE, &err);
    if (!rc && to_opt)
        rc = release_resolve(cli->store, to_opt, &to, &err);
    char *copy = rc ? NULL : cli_head_copy(cli);
    o.head_copy = copy;
    if (!rc && !(rc = deploy_rollback(cli->store, env, to, &o, &res, &err)))
        cli_print_change(cli, env, res.to, &res);
    deploy_result_free(&res);
    env_config_free(env);
    free(copy);
    free(to);
    return rc ? cli_fail(&err) : EXIT_OK;
}
