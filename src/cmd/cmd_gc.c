/* slipway gc [--apply] [--grace DURATION] */
#include "cmd/cmd.h"

#include <stdio.h>

static const char usage[] =
    "usage: slipway gc [--apply] [--grace DURATION]\n"
    "\n"
    "Finds releases and file bodies nothing needs any more. Without --apply it\n"
    "only prints what it would delete. Never deleted: a release a slot holds,\n"
    "the previous release within keep_previous, the newest retain_releases\n"
    "releases deployed to each environment, and anything younger than the grace\n"
    "period (a release being created right now). Bodies no kept release\n"
    "references are deleted, and so are leftovers of interrupted writes.\n"
    "\n"
    "  --apply            delete for real\n"
    "  --grace DURATION   minimum age of what may be deleted (default 1h; 0s for all)\n";

struct args {
    int apply;
    const char *grace;
};

static int opt(int c, const char *arg, void *ctx)
{
    struct args *a = ctx;
    if (c == 'a')
        a->apply = 1;
    else
        a->grace = arg;
    return 0;
}

int cmd_gc(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {CLI_GLOBAL_OPTIONS,
                                         {"apply", no_argument, NULL, 'a'},
                                         {"grace", required_argument, NULL, 'g'},
                                         {0}};
    struct args a = {0, "1h"};
    cli->usage = usage;
    int first = cli_getopt(cli, argc, argv, "", opts, opt, &a);
    if (first < 0)
        return -first - 1;
    if (first != argc)
        return cli_usage_error(cli, "unexpected argument '%s'", argv[first]);
    int64_t grace;
    if (duration_parse(a.grace, &grace) != 0)
        return cli_usage_error(cli, "--grace: expected a duration such as 0s, 30m or 1h, got '%s'",
                               a.grace);
    struct sw_err err = {0};
    struct env_config **envs = NULL;
    size_t n = 0;
    struct gc_report rep;
    int rc = cli_envs(cli, &envs, &n, &err);
    if (!rc)
        rc = cli_store(cli, &err);
    if (!rc)
        rc = deploy_gc(cli->store, envs, n, a.apply, grace, &rep, &err);
    env_configs_free(envs, n);
    if (rc)
        return cli_fail(&err);
    char size[32];
    cli_human_size(rep.bytes, size, sizeof(size));
    if (cli->json) {
        json_t *ids = json_array();
        for (size_t i = 0; i < rep.nreleases; i++)
            json_array_append_new(ids, json_string(rep.releases[i]));
        cli_print_json(json_pack("{s:b, s:o, s:I, s:I, s:I, s:I}", "applied", a.apply, "releases",
                                 ids, "blobs", (json_int_t)rep.blobs, "bytes",
                                 (json_int_t)rep.bytes, "kept", (json_int_t)rep.kept, "temporaries",
                                 (json_int_t)rep.temporaries));
    } else {
        for (size_t i = 0; i < rep.nreleases; i++)
            cli_say(cli, "%s release %s\n", a.apply ? "deleted" : "would delete", rep.releases[i]);
        cli_say(cli, "%s %zu releases and %zu bodies (%s); kept %zu releases%s\n",
                a.apply ? "deleted" : "would delete", rep.nreleases, rep.blobs, size, rep.kept,
                a.apply ? "" : " (run with --apply to delete)");
    }
    /* Reported, not fatal: gc did what it could account for. */
    for (size_t i = 0; i < rep.nunreadable; i++)
        fprintf(stderr, "slipway: %s (kept; no body deleted while a manifest is unreadable)\n",
                rep.unreadable[i]);
    int bad = rep.nunreadable > 0;
    gc_report_free(&rep);
    return bad ? EXIT_FAIL : EXIT_OK;
}
