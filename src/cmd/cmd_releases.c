/* slipway releases: list releases, newest last. */
#include "cmd/cmd.h"
#include "release/release.h"

#include <stdio.h>
#include <stdlib.h>

static const struct cli_usage usage = {
    .usage = "slipway releases",
    .about = "Lists every release in the store, oldest first: id, creation time, files,\n"
             "size, git commit (short) and message. --json prints\n"
             "{\"releases\":[{\"id\", \"created\", \"files\", \"bytes\", \"commit\", \"ref\", "
             "\"tag\", \"dirty\", \"run\", \"message\"}]}.\n",
    .max_args = 0,
};

static json_t *opt_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

int cmd_releases(int argc, char **argv, struct cli *cli)
{
    const struct cli_option opts[] = {OPT_END()};
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    struct sw_err err = {0};
    char **ids = NULL;
    size_t n = 0;
    int rc = cli_store(cli, CLI_STORE_READ, &err);
    if (rc || (rc = release_list(cli->store, &ids, &n, &err)))
        return cli_fail(&err);
    json_t *arr = json_array();
    int unreadable = 0;
    release_load_memo(1); /* a chain's base read once, not once a release over it */
    for (size_t i = 0; i < n && !rc; i++) {
        struct release *r;
        /* One bad manifest is reported, and the others are still listed. */
        if ((rc = release_load(cli->store, ids[i], &r, &err)) == SW_EINVAL) {
            cli_printf(stderr, "slipway: %s\n", err.msg);
            unreadable++;
            rc = 0;
            continue;
        }
        if (rc)
            break;
        char when[40], size[32];
        time_format_iso(r->created_ms, when, sizeof(when));
        if (cli->json) {
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:b, s:o, s:o}", "id", r->id,
                               "created", when, "files", (json_int_t)r->nfiles, "bytes",
                               (json_int_t)r->bytes, "commit", opt_str(r->commit), "ref",
                               opt_str(r->ref), "tag", opt_str(r->tag), "dirty", r->dirty, "run",
                               opt_str(r->run), "message", opt_str(r->message)));
        } else {
            cli_human_size(r->bytes, size, sizeof(size));
            /* Escaped, so a message of several lines stays on its row. */
            cli_printf(stdout, "%s  %.19s  %6zu files  %10s  %-8.8s%s  %-12s  %s\n", r->id, when,
                       r->nfiles, size, r->commit ? r->commit : "-", r->dirty ? "+" : " ",
                       r->tag ? r->tag : "-", r->message ? r->message : "");
        }
        release_free(r);
    }
    release_ids_free(ids, n);
    release_load_memo(0);
    if (rc) {
        json_decref(arr);
        return cli_fail(&err);
    }
    if (cli->json)
        cli_print_json(json_pack("{s:o}", "releases", arr));
    else {
        json_decref(arr);
        if (!n)
            cli_say(cli, "no releases yet (create one with 'slipway release create DIR')\n");
    }
    return unreadable ? EXIT_FAIL : EXIT_OK;
}
