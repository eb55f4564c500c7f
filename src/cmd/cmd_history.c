/* slipway history ENV: the changes made to an environment, oldest first. */
#include "cmd/cmd.h"

#include <stdio.h>

static const struct cli_usage usage = {
    .usage = "slipway history ENV [--verify]",
    .about = "Prints every change to ENV from the audit log: sequence, time, actor,\n"
             "action (deploy, switch, rollback, verdict), from and to release, message.\n"
             "--json prints {\"events\":[{\"seq\", \"time\", \"actor\", \"action\", \"from\",\n"
             "\"to\", \"message\"}]}.\n",
    .min_args = 1,
    .max_args = 1,
};

static json_t *opt_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

int cmd_history(int argc, char **argv, struct cli *cli)
{
    int verify = 0;
    const struct cli_option opts[] = {
        OPT_BOOL(0, "verify", &verify, "also check the audit log's hash chain (every environment)"),
        OPT_END(),
    };
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    struct sw_err err = {0};
    struct env_config *env = NULL;
    struct deploy_event *ev = NULL;
    size_t n = 0, checked = 0;
    int rc = cli_env(cli, argv[0], &env, &err);
    if (!rc)
        rc = cli_store(cli, CLI_STORE_READ, &err);
    if (!rc && verify)
        rc = deploy_history_verify(cli->store, &checked, &err);
    if (!rc)
        rc = deploy_history(cli->store, env->name, &ev, &n, &err);
    env_config_free(env);
    if (rc)
        return cli_fail(&err);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct deploy_event *e = &ev[i];
        if (cli->json) {
            json_array_append_new(
                arr,
                json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "seq",
                          (json_int_t)e->seq, "time", opt_str(e->time), "actor", opt_str(e->actor),
                          "action", opt_str(e->action), "from", opt_str(e->from), "to",
                          opt_str(e->to), "slot", opt_str(e->slot), "switched",
                          e->switched < 0 ? json_null() : json_boolean(e->switched), "message",
                          opt_str(e->message)));
            continue;
        }
        /* Blue-green: which slot the change went to, and whether live
         * traffic moved (a deploy to the idle slot does not). */
        char where[48] = "";
        if (e->slot)
            snprintf(where, sizeof(where), "  [%s, %s]", e->slot,
                     e->switched > 0    ? "live"
                     : e->switched == 0 ? "idle, live unchanged"
                                        : "?");
        cli_printf(stdout, "%4lld  %.19s  %-10s %-8s %s -> %s%s%s%s\n", (long long)e->seq,
                   e->time ? e->time : "?", e->actor ? e->actor : "?", e->action ? e->action : "?",
                   e->from ? e->from : "(nothing)", e->to ? e->to : "(nothing)", where,
                   e->message ? "  " : "", e->message ? e->message : "");
    }
    deploy_events_free(ev, n);
    if (cli->json) {
        json_t *doc = json_pack("{s:o}", "events", arr);
        if (verify)
            json_object_set_new(doc, "verified", json_integer((json_int_t)checked));
        cli_print_json(doc);
    } else {
        json_decref(arr);
        if (!n)
            cli_say(cli, "no changes recorded for %s yet\n", argv[0]);
        if (verify)
            cli_say(cli, "audit chain intact (%zu events checked)\n", checked);
    }
    return EXIT_OK;
}
