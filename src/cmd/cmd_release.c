/* slipway release create DIR [--message M] [--follow-symlinks] [--[no-]pack] [--concurrency N]:
 * hash, store, print the new id. */
#include "cmd/cmd.h"
#include "release/release.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_usage usage = {
    .usage = "slipway release create DIR [--message M] [--follow-symlinks] [--[no-]pack] "
             "[--concurrency N]",
    .about = "Builds an immutable release from the files under DIR: each body is hashed\n"
             "(one thread per core) and stored once; the manifest records path, size,\n"
             "content type, cache policy and where it came from (git commit and ref when\n"
             "DIR is in a repository). Text files of 1 KiB or more also get gzip and\n"
             "Brotli variants, kept where smaller, so the edge never compresses. Prints\n"
             "the release id on stdout; with --json, {\"id\", \"files\", \"bytes\",\n"
             "\"new_blobs\", \"variants\", \"compressed\", \"reused\", \"saved_bytes\"}.\n",
    .epilog = "A symbolic link inside DIR is followed: what it points to is released under\n"
              "its name too. One pointing outside DIR is an error unless --follow-symlinks\n"
              "is given; a dangling link, a loop, a device, socket or FIFO, a name no URL\n"
              "can carry (a backslash, a control character, not UTF-8) and an empty DIR\n"
              "are errors. Every such file is listed (the first 20 by name), and nothing\n"
              "is stored. .git/ and .slipway/ are never included.\n"
              "\n"
              "On a terminal, a line on stderr shows the progress (files done of the total,\n"
              "bytes sent, rate, ETA) and is cleared at the end; nothing is drawn when\n"
              "stderr is not a terminal, nor with --json or --quiet.\n",
    .min_args = 1,
    .max_args = 2,
};

/* The stat cache lives in the project (never in a shared store): it describes
 * this machine's files. Without a project there is no cache. */
static char *stat_cache_path(struct cli *cli, const char *dir)
{
    if (cli_project(cli, NULL) != 0)
        return NULL;
    char *real = realpath(dir, NULL);
    if (!real)
        return NULL;
    char *path = cli_cache_path(cli, "stat-", real);
    free(real);
    return path;
}

/* Several files refused: one line for each of the first ones (escaped, so a
 * name cannot forge a line), then err becomes the summary the caller prints. */
static void print_problems(const char *dir, const struct release_create_result *res, int rc,
                           struct sw_err *err)
{
    for (size_t i = 0; i < res->nproblems; i++)
        cli_printf(stderr, "slipway: %s: %s\n", res->problems[i].path, res->problems[i].why);
    if (res->problems_total > res->nproblems)
        sw_err_set(err, rc,
                   "%s: %zu files cannot be released: the %zu above and %zu more; nothing was "
                   "stored",
                   dir, res->problems_total, res->nproblems, res->problems_total - res->nproblems);
    else
        sw_err_set(err, rc, "%s: %zu files cannot be released (above); nothing was stored", dir,
                   res->problems_total);
}

int cmd_release_create_dir(struct cli *cli, const char *dir, const char *message,
                           int follow_symlinks, const char *keep_id,
                           int (*keep_wait)(void *, const char **), void (*on_new)(void *),
                           void *keep_arg, char **id, struct sw_err *err)
{
    int rc = cli_store(cli, CLI_STORE_WRITE, err);
    if (rc)
        return rc;
    if (cli->concurrency)
        store_set_concurrency(cli->store, cli->concurrency);
    char *cache = stat_cache_path(cli, dir), *copies = cli_manifest_copies(cli);
    struct release_progress rp;
    struct cli_progress *bar = cli_progress_start(cli, &rp);
    struct release_create_opts o = {.dir = dir,
                                    .message = message,
                                    .stat_cache = cache,
                                    .follow_symlinks = follow_symlinks,
                                    .progress = bar ? &rp : NULL,
                                    .keep_id = keep_id,
                                    .keep_id_wait = keep_wait,
                                    .keep_id_arg = keep_arg,
                                    .on_new = on_new,
                                    /* one hook for both: what is likely and what is sure */
                                    .on_change = on_new,
                                    .copies = copies,
                                    .pack = !cli->no_pack &&
                                            (cli->pack || store_is_remote(cli->store))};
    struct release_create_result res;
    rc = release_create(cli->store, &o, id, &res, err);
    char moved[RELEASE_ID_MAX + 1];
    if (rc == RELEASE_EKEEP_MOVED) {
        /* Another release went live than the scan assumed: again, with it. */
        snprintf(moved, sizeof(moved), "%.*s", (int)sizeof(moved) - 1, err->msg);
        o.keep_id = moved[0] ? moved : NULL;
        o.keep_id_wait = NULL;
        release_create_result_free(&res);
        rc = release_create(cli->store, &o, id, &res, err);
    }
    cli_progress_stop(bar);
    free(cache);
    free(copies);
    if (rc && res.problems_total > 1)
        print_problems(dir, &res, rc, err);
    release_create_result_free(&res);
    if (rc)
        return rc;
    if (cli->json && !strcmp(cli->cmd, "release")) {
        cli_print_json(json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "id", *id, "files",
                                 (json_int_t)res.files, "bytes", (json_int_t)res.bytes, "new_blobs",
                                 (json_int_t)res.new_blobs, "variants", (json_int_t)res.variants,
                                 "compressed", (json_int_t)res.compressed, "reused",
                                 (json_int_t)res.reused, "saved_bytes", (json_int_t)res.saved));
    } else if (res.same && !cli->quiet && !cli->json) {
        cli_printf(stderr, "release %s: the same %zu files as before (nothing to store)\n", *id,
                   res.files);
    } else if (!cli->quiet && !cli->json) {
        char size[32], saved[32];
        cli_human_size(res.bytes, size, sizeof(size));
        cli_human_size(res.saved, saved, sizeof(saved));
        cli_printf(stderr,
                   "release %s: %zu files, %s, %zu new bodies (%zu files read); "
                   "%zu compressed variants (%zu made now, %zu reused), %s less to send\n",
                   *id, res.files, size, res.new_blobs, res.hashed, res.variants, res.compressed,
                   res.reused, saved);
    }
    return 0;
}

int cmd_release(int argc, char **argv, struct cli *cli)
{
    const char *message = NULL;
    int follow = 0;
    const struct cli_option opts[] = {
        OPT_STRING('m', "message", &message, "M", "a note kept with the release"),
        OPT_BOOL(0, "follow-symlinks", &follow,
                 "store what a symbolic link pointing outside DIR points to\n"
                 "(a file, or a directory and everything under it)"),
        OPT_BOOL(0, "pack", &cli->pack,
                 "store bodies of 64 KiB or less together, a few MiB an object (docs/store.md;\n"
                 "the default on a remote (s3) store)"),
        OPT_BOOL(0, "no-pack", &cli->no_pack, "a blob of its own for every body"),
        OPT_INT(0, "concurrency", &cli->concurrency, "N", 1, STORE_CONCURRENCY_MAX,
                "uploads at once to a remote (s3) store, counting each part\n"
                "of a large file (default 16)"),
        OPT_END(),
    };
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    if (strcmp(argv[0], "create") != 0)
        return cli_usage_error(cli, "unknown subcommand '%s' (expected: create)", argv[0]);
    if (argc != 2)
        return cli_usage_error(cli, "expected one directory: slipway release create DIR");
    if (cli->pack && cli->no_pack)
        return cli_usage_error(cli, "--pack and --no-pack together");
    struct sw_err err = {0};
    char *id = NULL;
    int rc =
        cmd_release_create_dir(cli, argv[1], message, follow, NULL, NULL, NULL, NULL, &id, &err);
    if (rc)
        return cli_fail(&err);
    if (!cli->json)
        cli_printf(stdout, "%s\n", id);
    free(id);
    return EXIT_OK;
}
