/* slipway infra plan [--detailed-exitcode] | slipway infra apply: the bucket
 * of an s3:// store (and its logs bucket) compared with the settings of
 * .slipway/infra.yml over slipway's defaults, and made so. The store module
 * does the work (store_bucket_plan, store_bucket_apply); this prints it. */
#include "cmd/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int infra_plan(int argc, char **argv, struct cli *cli);
static int infra_apply(int argc, char **argv, struct cli *cli);

static const struct cli_subcommand subcommands[] = {
    {"plan", "infra plan", infra_plan, "compare the store's bucket with the desired settings"},
    {"apply", "infra apply", infra_apply, "make the store's bucket match the desired settings"},
};
#define NSUB (sizeof(subcommands) / sizeof(subcommands[0]))

/* The store's URL (--store, else $SLIPWAY_STORE: the project's own store is
 * a directory) and the settings (.slipway/infra.yml of the project, when
 * there is one, over the defaults). */
static int load(struct cli *cli, const char **url, struct store_bucket_settings *want,
                struct sw_err *err)
{
    store_bucket_settings_defaults(want);
    *url = cli->store_opt && *cli->store_opt ? cli->store_opt : getenv("SLIPWAY_STORE");
    if (!*url || !**url)
        return sw_err_set(err, SW_EINVAL,
                          "slipway infra needs an s3:// store: pass --store "
                          "s3://BUCKET[/PREFIX] or set SLIPWAY_STORE (the project's own store "
                          "is a directory)");
    if (!str_starts_with(*url, "s3://"))
        return sw_err_set(err, SW_EINVAL,
                          "slipway infra provisions the bucket of an s3:// store, and '%s' is "
                          "not one (only S3 has a bucket to provision)",
                          *url);
    /* Without a project, and none named, the defaults apply. */
    int rc = cli_project(cli, err);
    if (rc == SW_ENOTFOUND && !cli->project_opt)
        return 0;
    if (rc)
        return rc;
    char *path = path_join(cli->project, ".slipway/infra.yml");
    rc = store_bucket_settings_load(path, want, err);
    free(path);
    return rc;
}

static const char *op_name(char op)
{
    return op == '+' ? "add" : op == '~' ? "change" : "remove";
}

static void print_changes(struct cli *cli, const struct store_bucket_plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        const struct store_bucket_change *c = &p->changes[i];
        struct buf what = BUF_INIT;
        if (c->logs)
            buf_adds(&what, strcmp(c->setting, "bucket") ? "logs bucket " : "logs ");
        buf_adds(&what, c->setting);
        if (c->op == '~')
            cli_say(cli, "%c %s: %s -> %s\n", c->op, what.data, c->from, c->to);
        else
            cli_say(cli, "%c %s: %s\n", c->op, what.data, c->op == '+' ? c->to : c->from);
        buf_free(&what);
    }
}

static json_t *plan_json(const struct store_bucket_plan *p, const struct sw_err *err)
{
    json_t *changes = json_array();
    for (size_t i = 0; i < p->n; i++) {
        const struct store_bucket_change *c = &p->changes[i];
        json_array_append_new(
            changes, json_pack("{s:s, s:b, s:s, s:s, s:o, s:o}", "bucket", c->bucket, "logs_bucket",
                               c->logs, "action", op_name(c->op), "setting", c->setting, "from",
                               json_str_or_null(c->from), "to", json_str_or_null(c->to)));
    }
    json_t *doc =
        json_pack("{s:o, s:o, s:o, s:o, s:I, s:I, s:I}", "store", json_str_or_null(p->store),
                  "bucket", json_str_or_null(p->bucket), "logs_bucket",
                  json_str_or_null(p->logs_bucket), "changes", changes, "add", (json_int_t)p->added,
                  "change", (json_int_t)p->changed, "remove", (json_int_t)p->removed);
    if (err)
        json_object_set_new(doc, "error", json_string(err->msg));
    return doc;
}

static const char *matches(const struct store_bucket_plan *p)
{
    return p->logs_bucket ? "The buckets match the desired settings."
                          : "The bucket matches the desired settings.";
}

/* ---- plan ------------------------------------------------------------------------------------ */

static const struct cli_usage plan_usage = {
    .usage = "slipway infra plan [--detailed-exitcode]",
    .about =
        "Reads the bucket of the s3:// store (--store or $SLIPWAY_STORE) and, when\n"
        "logging names one, the logs bucket, and prints each difference from the\n"
        "desired settings, one line each: '+' to add (or create), '~' to change, '-'\n"
        "to remove, then a summary. Nothing is changed. The settings are slipway's\n"
        "defaults (versioning on, AES256, the public access block's four flags, a\n"
        "policy statement denying requests without TLS, lifecycle rules) with the\n"
        "project's .slipway/infra.yml over them; see docs/store.md, \"Provisioning\n"
        "the bucket\". --json prints {\"store\", \"bucket\", \"logs_bucket\",\n"
        "\"changes\": [{\"bucket\", \"logs_bucket\", \"action\", \"setting\", \"from\", \"to\"}],\n"
        "\"add\", \"change\", \"remove\"}.\n",
    .epilog = "Exit status: 0 (with --detailed-exitcode: 0 no changes, 2 changes), 1 failure.\n",
    .max_args = 0,
};

static int infra_plan(int argc, char **argv, struct cli *cli)
{
    int detailed = 0;
    const struct cli_option opts[] = {
        OPT_BOOL(0, "detailed-exitcode", &detailed,
                 "exit 2 when there are changes, 0 when there are none (as terraform plan)"),
        OPT_END(),
    };
    if ((argc = cli_parse_options(cli, &plan_usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    struct sw_err err = {0};
    struct store_bucket_settings want;
    struct store_bucket_plan plan = {0};
    const char *url = NULL;
    int rc = load(cli, &url, &want, &err);
    if (!rc)
        rc = store_bucket_plan(url, &want, &plan, &err);
    store_bucket_settings_free(&want);
    if (rc) {
        store_bucket_plan_free(&plan);
        return cli_fail(&err);
    }
    if (cli->json) {
        cli_print_json(plan_json(&plan, NULL));
    } else if (!plan.n) {
        cli_say(cli, "No changes. %s\n", matches(&plan));
    } else {
        print_changes(cli, &plan);
        cli_say(cli, "Plan: %zu to add, %zu to change, %zu to remove.\n", plan.added, plan.changed,
                plan.removed);
    }
    int changes = plan.n > 0;
    store_bucket_plan_free(&plan);
    return detailed && changes ? 2 : EXIT_OK;
}

/* ---- apply ----------------------------------------------------------------------------------- */

static const struct cli_usage apply_usage = {
    .usage = "slipway infra apply",
    .about = "Makes the bucket of the s3:// store (and the logs bucket, when logging names\n"
             "one) match the desired settings, as 'slipway infra plan' shows them: creates\n"
             "a bucket that does not exist, then writes only the settings that differ,\n"
             "keeping the owner's other lifecycle rules and policy statements. Prints each\n"
             "change made, or that there was nothing to do. It holds slipway's lease on\n"
             "each bucket meanwhile (the object .slipway/locks/infra, removed at the end,\n"
             "expiring after 10 minutes), so a second apply at the same time fails naming\n"
             "the holder. --json prints what plan --json prints, for the changes made.\n",
    .max_args = 0,
};

static int infra_apply(int argc, char **argv, struct cli *cli)
{
    const struct cli_option opts[] = {
        OPT_END(),
    };
    if ((argc = cli_parse_options(cli, &apply_usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    struct sw_err err = {0};
    struct store_bucket_settings want;
    struct store_bucket_plan done = {0};
    const char *url = NULL;
    int rc = load(cli, &url, &want, &err);
    if (!rc)
        rc = store_bucket_apply(url, &want, &done, &err);
    store_bucket_settings_free(&want);
    if (cli->json && (rc == 0 || done.store)) {
        cli_print_json(plan_json(&done, rc ? &err : NULL));
    } else if (!cli->json) {
        /* What was done before a failure is said too: it is done. */
        print_changes(cli, &done);
        if (!rc && !done.n)
            cli_say(cli, "Nothing to do. %s\n", matches(&done));
        else if (!rc)
            cli_say(cli, "Applied: %zu added, %zu changed, %zu removed.\n", done.added,
                    done.changed, done.removed);
    }
    store_bucket_plan_free(&done);
    return rc ? cli_fail(&err) : EXIT_OK;
}

int cmd_infra(int argc, char **argv, struct cli *cli)
{
    return cli_run_subcommand(cli, "infra",
                              "The bucket of an s3:// store: provisioned and checked for drift.\n",
                              subcommands, NSUB, argc, argv);
}
