/* slipway gc [--apply] [--grace DURATION] */
#include "cmd/cmd.h"

#include <stdio.h>

static const struct cli_usage usage = {
    .usage = "slipway gc [--apply] [--grace DURATION]",
    .about = "Finds releases and file bodies nothing needs any more. Without --apply it\n"
             "only prints what it would delete. Never deleted: a release a slot holds,\n"
             "the previous release within keep_previous, the newest retain_releases\n"
             "releases deployed to each environment, and anything younger than the grace\n"
             "period (a release being created right now). Bodies no kept release\n"
             "references are deleted, and so are leftovers of interrupted writes.\n",
    .max_args = 0,
};

int cmd_gc(int argc, char **argv, struct cli *cli)
{
    int apply = 0;
    int64_t grace = 3600 * 1000;
    const struct cli_option opts[] = {
        OPT_BOOL(0, "apply", &apply, "delete for real"),
        OPT_DURATION(0, "grace", &grace, "DURATION", 0,
                     "minimum age of what may be deleted (default 1h; 0s for all)"),
        OPT_END(),
    };
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    struct sw_err err = {0};
    struct env_config **envs = NULL;
    size_t n = 0;
    struct gc_report rep;
    int rc = cli_envs(cli, &envs, &n, &err);
    if (!rc)
        rc = cli_store(cli, apply ? CLI_STORE_WRITE : CLI_STORE_READ, &err);
    if (!rc)
        rc = deploy_gc(cli->store, envs, n, apply, grace, &rep, &err);
    env_configs_free(envs, n);
    if (rc)
        return cli_fail(&err);
    char size[32];
    cli_human_size(rep.bytes, size, sizeof(size));
    if (cli->json) {
        json_t *ids = json_array();
        for (size_t i = 0; i < rep.nreleases; i++)
            json_array_append_new(ids, json_string(rep.releases[i]));
        cli_print_json(json_pack("{s:b, s:o, s:I, s:I, s:I, s:I}", "applied", apply, "releases",
                                 ids, "blobs", (json_int_t)rep.blobs, "bytes",
                                 (json_int_t)rep.bytes, "kept", (json_int_t)rep.kept, "temporaries",
                                 (json_int_t)rep.temporaries));
    } else {
        for (size_t i = 0; i < rep.nreleases; i++)
            cli_say(cli, "%s release %s\n", apply ? "deleted" : "would delete", rep.releases[i]);
        cli_say(cli, "%s %zu releases and %zu bodies (%s); kept %zu releases%s\n",
                apply ? "deleted" : "would delete", rep.nreleases, rep.blobs, size, rep.kept,
                apply ? "" : " (run with --apply to delete)");
    }
    /* Reported, not fatal: gc did what it could account for. */
    for (size_t i = 0; i < rep.nunreadable; i++)
        cli_printf(stderr, "slipway: %s (kept; no body deleted while a manifest is unreadable)\n",
                   rep.unreadable[i]);
    int bad = rep.nunreadable > 0;
    gc_report_free(&rep);
    return bad ? EXIT_FAIL : EXIT_OK;
}
