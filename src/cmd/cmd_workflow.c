/* slipway workflow SUBCOMMAND: GitHub Actions workflow files. The
 * subcommands are a table; `check` validates files as the runner loads
 * them and says whether a push would trigger them. */
#include "cmd/cmd.h"
#include "pipeline/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct subcommand {
    const char *name;
    const char *cmd; /* "workflow NAME", as messages name it */
    int (*fn)(int argc, char **argv, struct cli *cli);
    const char *summary;
};

static int workflow_check(int argc, char **argv, struct cli *cli);

static const struct subcommand subcommands[] = {
    {"check", "workflow check", workflow_check, "validate workflow files as the runner loads them"},
};
#define NSUB (sizeof(subcommands) / sizeof(subcommands[0]))

/* ---- check ------------------------------------------------------------------------------ */

static const struct cli_usage check_usage = {
    .usage = "slipway workflow check FILE... [--unsupported skip] [--ref REF] [--changed PATH]...",
    .about = "Loads each workflow file as the runner does and prints every error as\n"
             "FILE:LINE:COL: message (unknown keys, wrong types, expressions that do not\n"
             "parse or name a context not available there, bad filter patterns, unknown\n"
             "or cyclic needs, duplicate keys, and what slipway cannot run: uses: it does\n"
             "not run natively, services:, container:). With --ref it also says whether a\n"
             "push of REF (refs/heads/BRANCH or refs/tags/TAG) changing the --changed\n"
             "paths would trigger each file, with GitHub's filter rules.\n"
             "--json prints {\"files\": [{\"file\", \"ok\", \"errors\": [...], \"triggered\"}]}\n"
             "(and a top-level \"triggered\" for a single file). Exit 1 on any error.\n",
    .min_args = 1,
    .max_args = -1,
};

/* A JSON string for text that may not be UTF-8 (a file name): escaped then. */
static json_t *jstr(const char *s)
{
    struct buf b = BUF_INIT;
    json_t *j;

    if (utf8_valid(s, 0))
        return json_string(s);
    buf_add_escaped(&b, s);
    j = json_string(b.data);
    buf_free(&b);
    return j;
}

struct check_opts {
    struct pipeline_load_opts load;
    const char *ref;
    struct cli_list changed;
};

/* Checks one file; appends its JSON entry to files (when not NULL) or prints
 * it. Returns 1 when the file has errors. */
static int check_one(struct cli *cli, const char *file, const struct check_opts *o, json_t *files,
                     int *triggered)
{
    struct pipeline_workflow *wf = NULL;
    struct sw_err err = {0};
    json_t *errors = json_array(), *entry;
    int rc = pipeline_workflow_load(file, &o->load, &wf, &err), bad = rc != 0;

    *triggered = 0;
    if (!wf) { /* not readable */
        json_array_append_new(errors, jstr(err.msg));
        if (!files)
            cli_printf(stderr, "%s\n", err.msg);
    }
    for (size_t i = 0; wf && i < wf->n_errors; i++) {
        json_array_append_new(errors, jstr(wf->errors[i].text));
        if (!files)
            cli_printf(stderr, "%s\n", wf->errors[i].text);
    }
    if (wf && wf->n_errors_dropped && !files)
        cli_printf(stderr, "%s: %zu more errors not shown\n", file, wf->n_errors_dropped);
    for (size_t i = 0; wf && i < wf->n_warnings && !files && !cli->quiet; i++)
        cli_printf(stderr, "%s\n", wf->warnings[i].text);
    if (!bad && o->ref)
        *triggered = pipeline_workflow_triggered(wf, "push", o->ref, o->changed.v, o->changed.n);
    if (files) {
        entry = json_pack("{s:o, s:b, s:o}", "file", jstr(file), "ok", !bad, "errors", errors);
        if (o->ref)
            json_object_set_new(entry, "triggered", json_boolean(*triggered));
        json_array_append_new(files, entry);
    } else {
        json_decref(errors);
        if (bad)
            cli_printf(stdout, "%s: %zu error%s\n", file,
                       wf ? wf->n_errors + wf->n_errors_dropped : 1,
                       wf && wf->n_errors + wf->n_errors_dropped == 1 ? "" : "s");
        else if (o->ref)
            cli_printf(stdout, "%s: ok, %s by a push of %s\n", file,
                       *triggered ? "triggered" : "not triggered", o->ref);
        else
            cli_printf(stdout, "%s: ok\n", file);
    }
    pipeline_workflow_free(wf);
    return bad;
}

static int workflow_check(int argc, char **argv, struct cli *cli)
{
    const char *unsupported = NULL;
    struct check_opts o = {{0}, NULL, {NULL, 0}};
    const struct cli_option opts[] = {
        OPT_STRING(0, "unsupported", &unsupported, "MODE",
                   "skip: keep steps and jobs slipway cannot run, skipped with a\n"
                   "warning (default: error)"),
        OPT_STRING(0, "ref", &o.ref, "REF", "say whether a push of REF triggers each file"),
        OPT_LIST(0, "changed", &o.changed, "PATH", "a path the push changed (repeatable)"),
        OPT_END(),
    };
    json_t *files = NULL;
    int failed = 0, triggered = 0;

    if ((argc = cli_parse_options(cli, &check_usage, opts, argc, argv)) < 0) {
        free(o.changed.v);
        return CLI_EXIT(argc);
    }
    if (unsupported && strcmp(unsupported, "skip") != 0 && strcmp(unsupported, "error") != 0) {
        free(o.changed.v);
        return cli_usage_error(cli, "--unsupported: expected skip or error, got '%s'", unsupported);
    }
    if (o.ref && !((str_starts_with(o.ref, "refs/heads/") && o.ref[11]) ||
                   (str_starts_with(o.ref, "refs/tags/") && o.ref[10]))) {
        free(o.changed.v);
        return cli_usage_error(cli, "--ref: expected refs/heads/BRANCH or refs/tags/TAG, got '%s'",
                               o.ref);
    }
    if (unsupported && strcmp(unsupported, "skip") == 0)
        o.load.flags |= PIPELINE_LOAD_SKIP_UNSUPPORTED;
    if (cli->json)
        files = json_array();
    for (int i = 0; i < argc; i++)
        failed |= check_one(cli, argv[i], &o, files, &triggered);
    if (files) {
        json_t *doc = json_pack("{s:o}", "files", files);
        if (argc == 1 && o.ref)
            json_object_set_new(doc, "triggered", json_boolean(triggered));
        cli_print_json(doc);
    }
    free(o.changed.v);
    return failed ? EXIT_FAIL : EXIT_OK;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

int cmd_workflow(int argc, char **argv, struct cli *cli)
{
    struct buf list = BUF_INIT;
    const char *names[NSUB];
    const struct cli_option none[] = {OPT_END()};
    struct cli_usage u = {
        .usage = "slipway workflow SUBCOMMAND [ARGS]",
        .about = "GitHub Actions workflow files, as slipway's runner reads them.\n",
        .min_args = 1,
        .max_args = -1,
    };
    int rc;

    buf_adds(&list, "Subcommands:\n");
    for (size_t i = 0; i < NSUB; i++) {
        buf_addf(&list, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
        names[i] = subcommands[i].name;
    }
    buf_adds(&list, "\n'slipway workflow SUBCOMMAND --help' shows its options.\n");
    u.epilog = list.data;
    /* only what comes before the subcommand is ours: --help, or nothing */
    if (argc < 2 || argv[1][0] == '-') {
        rc = cli_parse_options(cli, &u, none, argc < 2 ? argc : 2, argv);
        rc = rc < 0 ? CLI_EXIT(rc) : cli_usage_error(cli, "expected a subcommand");
        goto out;
    }
    for (size_t i = 0; i < NSUB; i++)
        if (strcmp(argv[1], subcommands[i].name) == 0) {
            /* messages and --help name the subcommand: "slipway workflow check: ..." */
            cli->cmd = subcommands[i].cmd;
            rc = subcommands[i].fn(argc - 1, argv + 1, cli);
            goto out;
        }
    const char *near = cli_closest(argv[1], names, NSUB);
    rc = near ? cli_usage_error(cli, "unknown subcommand '%s'; did you mean '%s'?", argv[1], near)
              : cli_usage_error(cli, "unknown subcommand '%s'", argv[1]);
out:
    buf_free(&list);
    return rc;
}
