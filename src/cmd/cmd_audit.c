/* slipway audit export --to URL: copy the audit log to another store (a logs bucket). */
#include "cmd/cmd.h"
#include "deploy/deploy.h"

#include <stdio.h>
#include <string.h>

static const struct cli_usage usage = {
    .usage = "slipway audit export --to URL",
    .about = "Copies the store's audit log (every event of its hash chain, then its head)\n"
             "to the store at URL, typically a prefix of a separate logs bucket\n"
             "(s3://LOGS-BUCKET/audit) that the deploying machines may write but not\n"
             "rewrite. Incremental: events already there are compared, not sent again;\n"
             "one that differs is an error (URL holds another chain). The copy is checked\n"
             "afterwards as 'slipway history ENV --verify --store URL' checks it. --json\n"
             "prints {\"events\", \"sent\", \"checked\"}.\n",
    .min_args = 1,
    .max_args = 1,
};

int cmd_audit(int argc, char **argv, struct cli *cli)
{
    const char *to = NULL;
    const struct cli_option opts[] = {
        OPT_STRING(0, "to", &to, "URL", "the store to copy the audit log to"),
        OPT_END(),
    };
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    if (strcmp(argv[0], "export") != 0)
        return cli_usage_error(cli, "unknown subcommand '%s' (expected: export)", argv[0]);
    if (!to || !*to)
        return cli_usage_error(cli, "--to URL is required (the store to copy the audit log to)");
    struct sw_err err = {0};
    struct store *dst = NULL;
    struct audit_export rep;
    size_t checked = 0;
    int rc = cli_store(cli, CLI_STORE_READ, &err);
    if (!rc && (rc = store_open(to, &dst, &err)))
        sw_err_prefix(&err, "--to");
    if (!rc && !strcmp(store_url(dst), store_url(cli->store)))
        rc = sw_err_set(&err, SW_EINVAL, "--to names the store itself");
    if (!rc)
        rc = deploy_audit_export(cli->store, dst, &rep, &err);
    if (!rc && (rc = deploy_history_verify(dst, &checked, &err)))
        sw_err_prefix(&err, "the copy at %s does not verify", to);
    store_free(dst);
    if (rc)
        return cli_fail(&err);
    if (cli->json)
        cli_print_json(json_pack("{s:I, s:I, s:I}", "events", (json_int_t)rep.events, "sent",
                                 (json_int_t)rep.sent, "checked", (json_int_t)checked));
    else if (!cli->quiet)
        cli_printf(stdout, "audit log exported to %s: %lld events, %zu new; the copy verifies\n",
                   to, (long long)rep.events, rep.sent);
    return EXIT_OK;
}
