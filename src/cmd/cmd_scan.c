/* slipway scan PATH: committed secrets in a tree, one line each, exit 1 on any. */
#include "cmd/cmd.h"
#include "scan/scan.h"

#include <stdio.h>
#include <stdlib.h>

static const struct cli_usage usage = {
    .usage = "slipway scan PATH [--ignore FILE]",
    .about = "Scans the files under PATH (or the file PATH) for committed secrets: private\n"
             "keys, AWS, GitHub, GitLab and Slack tokens, JWTs, high-entropy passwords and\n"
             "keys in assignments, .env and credential files. Prints one line per finding,\n"
             "PATH:LINE RULE REDACTED fingerprint:HEX, then a summary. Binary files are\n"
             "skipped; symbolic links and .git are not followed. The allow-list is\n"
             "PATH/.slipway/scan-ignore (path globs and fingerprint:HEX lines) unless\n"
             "--ignore names one. --json prints {\"findings\":[{\"file\", \"line\", \"rule\",\n"
             "\"redacted\", \"fingerprint\"}], \"files_scanned\", \"files_skipped_binary\",\n"
             "\"files_ignored\", \"findings_ignored\", \"notes\"}. See docs/scan.md.\n",
    .epilog = "Exit codes: 0 nothing found, 1 a finding (or an error), 2 usage error.\n",
    .min_args = 1,
    .max_args = 1,
};

/* A path as JSON text: as it is when it is UTF-8, else escaped (JSON cannot carry raw bytes). */
static json_t *path_json(const char *s)
{
    if (utf8_valid(s, 0))
        return json_string(s);
    struct buf b = BUF_INIT;
    buf_add_escaped(&b, s);
    json_t *j = json_string(b.data);
    buf_free(&b);
    return j;
}

int cmd_scan(int argc, char **argv, struct cli *cli)
{
    const char *ignore = NULL;
    const struct cli_option opts[] = {
        OPT_STRING(0, "ignore", &ignore, "FILE",
                   "the allow-list (default: PATH/.slipway/scan-ignore when it exists)"),
        OPT_END(),
    };
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    struct sw_err err = {0};
    struct scan_report *r = NULL;
    struct scan_opts so = {.ignore_file = ignore};
    int rc = scan_tree(argv[0], &so, &r, &err);
    if (rc) {
        scan_report_free(r);
        return cli_fail(&err);
    }
    for (size_t i = 0; i < r->nnotes; i++)
        cli_printf(stderr, "slipway scan: note: %s\n", r->notes[i]);
    if (cli->json) {
        json_t *arr = json_array(), *notes = json_array();
        for (size_t i = 0; i < r->n; i++) {
            const struct scan_finding *f = &r->findings[i];
            json_array_append_new(arr, json_pack("{s:o, s:I, s:s, s:s, s:s}", "file",
                                                 path_json(f->path), "line", (json_int_t)f->line,
                                                 "rule", f->rule, "redacted", f->redacted,
                                                 "fingerprint", f->fingerprint));
        }
        for (size_t i = 0; i < r->nnotes; i++)
            json_array_append_new(notes, path_json(r->notes[i]));
        cli_print_json(json_pack("{s:o, s:I, s:I, s:I, s:I, s:o}", "findings", arr, "files_scanned",
                                 (json_int_t)r->files_scanned, "files_skipped_binary",
                                 (json_int_t)r->files_skipped_binary, "files_ignored",
                                 (json_int_t)r->files_ignored, "findings_ignored",
                                 (json_int_t)r->findings_ignored, "notes", notes));
    } else {
        for (size_t i = 0; i < r->n; i++) {
            const struct scan_finding *f = &r->findings[i];
            cli_printf(stdout, "%s:%zu %s %s fingerprint:%s\n", f->path, f->line, f->rule,
                       f->redacted, f->fingerprint);
        }
        cli_say(cli,
                "%zu finding%s; %zu file%s scanned, %zu binary skipped, %zu ignored by path, "
                "%zu finding%s allowed by fingerprint\n",
                r->n, r->n == 1 ? "" : "s", r->files_scanned, r->files_scanned == 1 ? "" : "s",
                r->files_skipped_binary, r->files_ignored, r->findings_ignored,
                r->findings_ignored == 1 ? "" : "s");
    }
    rc = r->n ? EXIT_FAIL : EXIT_OK;
    scan_report_free(r);
    return rc;
}
