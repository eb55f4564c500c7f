/* slipway gc [--apply] [--grace DURATION] */
#include "cmd/cmd.h"
#include "release/release.h"
#include "pipeline/pipeline.h"

#include <stdio.h>

static const struct cli_usage usage = {
    .usage = "slipway gc [--apply] [--grace DURATION]",
    .about = "Finds releases, artifacts and file bodies nothing needs any more. Without\n"
             "--apply it only prints what it would delete. Never deleted: a release a slot\n"
             "holds, the previous release within keep_previous, the newest retain_releases\n"
             "releases deployed to each environment, a workflow artifact within its\n"
             "retention-days (default 90), and anything younger than the grace period (a\n"
             "release or artifact being created right now). Artifacts past their retention\n"
             "are deleted; bodies no kept release or artifact references are deleted, and so\n"
             "are leftovers of interrupted writes.\n",
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
    struct pipeline_artifact_gc art = {0};
    int rc = cli_envs(cli, &envs, &n, &err);
    if (!rc)
        rc = cli_store(cli, apply ? CLI_STORE_WRITE : CLI_STORE_READ, &err);
    /* Artifacts first: their expired manifests go before any body, and the
     * bodies the others name are gathered before deploy_gc lists the blobs (a
     * body put after that is younger than the grace period). */
    if (!rc)
        rc = pipeline_artifact_gc(cli->store, apply, time_now_ms(), &art, &err);
    if (!rc) {
        struct gc_roots roots = {
            .blobs = (const char *const *)art.blobs,
            .nblobs = art.nblobs,
            .incomplete = art.nunreadable > 0,
        };
        /* Every manifest is read: a chain's base once, not once a release over it. */
        release_load_memo(1);
        rc = deploy_gc(cli->store, envs, n, &roots, apply, grace, &rep, &err);
        release_load_memo(0);
        if (rc)
            pipeline_artifact_gc_free(&art);
    }
    env_configs_free(envs, n);
    if (rc)
        return cli_fail(&err);
    char size[32];
    cli_human_size(rep.bytes, size, sizeof(size));
    const char *verb = apply ? "deleted" : "would delete";
    if (cli->json) {
        json_t *ids = json_array(), *arts = json_array();
        for (size_t i = 0; i < rep.nreleases; i++)
            json_array_append_new(ids, json_string(rep.releases[i]));
        for (size_t i = 0; i < art.nexpired; i++) {
            const struct pipeline_artifact_expired *x = &art.expired[i];
            json_array_append_new(
                arts, json_pack("{s:s, s:s, s:o, s:i, s:I}", "run", x->run, "name", x->name,
                                "created_at", json_time_or_null(x->created_ms), "retention_days",
                                x->retention_days, "bytes", (json_int_t)x->bytes));
        }
        cli_print_json(json_pack("{s:b, s:o, s:o, s:I, s:I, s:I, s:I, s:I}", "applied", apply,
                                 "releases", ids, "artifacts", arts, "blobs", (json_int_t)rep.blobs,
                                 "bytes", (json_int_t)rep.bytes, "kept", (json_int_t)rep.kept,
                                 "artifacts_kept", (json_int_t)art.kept, "temporaries",
                                 (json_int_t)rep.temporaries));
    } else {
        for (size_t i = 0; i < rep.nreleases; i++)
            cli_say(cli, "%s release %s\n", verb, rep.releases[i]);
        for (size_t i = 0; i < art.nexpired; i++)
            cli_say(cli, "%s artifact %s of run %s (past its retention of %d days)\n", verb,
                    art.expired[i].name, art.expired[i].run, art.expired[i].retention_days);
        cli_say(cli,
                "%s %zu releases, %zu artifacts and %zu bodies (%s); kept %zu releases and %zu "
                "artifacts%s\n",
                verb, rep.nreleases, art.nexpired, rep.blobs, size, rep.kept, art.kept,
                apply ? "" : " (run with --apply to delete)");
    }
    /* Reported, not fatal: gc did what it could account for. */
    for (size_t i = 0; i < rep.nunreadable; i++)
        cli_printf(stderr, "slipway: %s (kept; no body deleted while a manifest is unreadable)\n",
                   rep.unreadable[i]);
    for (size_t i = 0; i < art.nunreadable; i++)
        cli_printf(stderr, "slipway: %s (kept; no body deleted while a manifest is unreadable)\n",
                   art.unreadable[i]);
    int bad = rep.nunreadable > 0 || art.nunreadable > 0;
    gc_report_free(&rep);
    pipeline_artifact_gc_free(&art);
    return bad ? EXIT_FAIL : EXIT_OK;
}
