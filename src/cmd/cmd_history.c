/* slipway history ENV: the changes made to an environment, oldest first. */
#include "cmd/cmd.h"

#include <stdio.h>

static const struct cli_usage usage = {
    .usage = "slipway history ENV [--verify]",
    .about = "Prints every change to ENV from the audit log: sequence, time, actor,\n"
             "action (deploy, switch, rollback), from and to release, message.\n"
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
        if (cli->json)
            json_array_append_new(
                arr, json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "seq", (json_int_t)ev[i].seq,
                               "time", opt_str(ev[i].time), "actor", opt_str(ev[i].actor), "action",
                               opt_str(ev[i].action), "from", opt_str(ev[i].from), "to",
                               opt_str(ev[i].to), "message", opt_str(ev[i].message)));
        else
            cli_printf(stdout, "%4lld  %.19s  %-10s %-8s %s -> %s%s%s\n", (long long)ev[i].seq,
                       ev[i].time ? ev[i].time : "?", ev[i].actor ? ev[i].actor : "?",
                       ev[i].action ? ev[i].action : "?", ev[i].from ? ev[i].from : "(nothing)",
                       ev[i].to ? ev[i].to : "(nothing)", ev[i].message ? "  " : "",
                       ev[i].message ? ev[i].message : "");
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
