/* slipway deploy (DIR | RELEASE) --env ENV [--switch] [--message M] */
#include "cmd/cmd.h"
#include "release/release.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: slipway deploy (DIR | RELEASE) --env ENV [--switch] [--message M]\n"
    "\n"
    "Deploys to environment ENV. A DIR is first made into a release (as\n"
    "'slipway release create'); a RELEASE is an id or a unique prefix/suffix.\n"
    "direct: the release goes live at once.\n"
    "blue-green: the release goes into the idle slot (served on the preview\n"
    "address) and goes live with --switch or a later 'slipway switch ENV'.\n"
    "The first deploy to an empty blue-green environment goes live at once.\n"
    "\n"
    "  -e, --env ENV      the environment (.slipway/environments/ENV.yml)\n"
    "  -s, --switch       blue-green: make it live in the same change\n"
    "  -m, --message M    a note kept in the history\n"
    "\n"
    "Two changes to one environment never interleave: the second fails with\n"
    "'locked' and changes nothing.\n";

struct args {
    const char *env, *message;
    int do_switch;
};

static int opt(int c, const char *arg, void *ctx)
{
    struct args *a = ctx;
    if (c == 'e')
        a->env = arg;
    else if (c == 'm')
        a->message = arg;
    else if (c == 's')
        a->do_switch = 1;
    return 0;
}

int cmd_deploy(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {CLI_GLOBAL_OPTIONS,
                                         {"env", required_argument, NULL, 'e'},
                                         {"message", required_argument, NULL, 'm'},
                                         {"switch", no_argument, NULL, 's'},
                                         {0}};
    struct args a = {0};
    cli->usage = usage;
    int first = cli_getopt(cli, argc, argv, "e:m:s", opts, opt, &a);
    if (first < 0)
        return -first - 1;
    if (argc - first != 1)
        return cli_usage_error(cli, "expected one directory or release");
    if (!a.env)
        return cli_usage_error(cli, "missing --env ENV");
    struct sw_err err = {0};
    struct env_config *env = NULL;
    struct deploy_result res = {0};
    char *id = NULL;
    const char *what = argv[first];
    struct stat sb;
    int rc = cli_env(cli, a.env, &env, &err);
    if (rc || (rc = cli_store(cli, &err)))
        goto out;
    if (stat(what, &sb) == 0 && S_ISDIR(sb.st_mode))
        rc = cmd_release_create_dir(cli, what, a.message, &id, &err);
    else if (strchr(what, '/'))
        rc = sw_err_set(&err, SW_ENOTFOUND, "%s: no such directory", what);
    else
        rc = release_resolve(cli->store, what, &id, &err);
    if (rc)
        goto out;
    struct deploy_opts o = {.message = a.message, .do_switch = a.do_switch};
    if ((rc = deploy_release(cli->store, env, id, &o, &res, &err)))
        goto out;
    cli_print_change(cli, env, id, &res);
out:
    deploy_result_free(&res);
    env_config_free(env);
    free(id);
    return rc ? cli_fail(&err) : EXIT_OK;
}
