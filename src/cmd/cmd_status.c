/* slipway status [ENV]: every environment, its slots, releases and age. */
#include "cmd/cmd.h"

#include <stdio.h>
#include <string.h>

static const struct cli_usage usage = {
    .usage = "slipway status [ENV]",
    .about = "Shows each environment (or only ENV): strategy, live slot and release,\n"
             "what each slot holds, the previous release and how long ago it changed.\n"
             "--json prints {\"environments\":[{\"name\", \"strategy\", \"live_release\",\n"
             "\"live_slot\", \"slots\":{\"blue\":{\"release\"},\"green\":{\"release\"}},\n"
             "\"previous_release\", \"generation\", \"updated\", \"lease\"}]} (slots is {} for\n"
             "direct; lease is null unless a change is in progress: {\"action\", \"actor\",\n"
             "\"owner\", \"pid\", \"since\", \"expires\"}).\n",
    .max_args = 1,
};

static json_t *opt_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *env_json(const struct env_config *c, const struct env_state *s)
{
    json_t *slots = json_object();
    if (c->strategy == STRATEGY_BLUE_GREEN)
        for (int i = 0; i < 2; i++)
            json_object_set_new(slots, deploy_slot_name(i),
                                json_pack("{s:o}", "release", opt_str(s->slot_release[i])));
    char when[40] = "", since[40], expires[40];
    if (s->updated_ms)
        time_format_iso(s->updated_ms, when, sizeof(when));
    const struct env_lease *l = &s->lease;
    json_t *lease = json_null();
    if (l->owner) {
        time_format_iso(l->since_ms, since, sizeof(since));
        time_format_iso(l->expires_ms, expires, sizeof(expires));
        lease = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "action", l->action, "actor", l->actor,
                          "owner", l->owner, "pid", (json_int_t)l->pid, "since", since, "expires",
                          expires);
    }
    return json_pack(
        "{s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:o, s:o}", "name", c->name, "strategy",
        deploy_strategy_name(c->strategy), "live_release", opt_str(s->live_release), "live_slot",
        opt_str(c->strategy == STRATEGY_BLUE_GREEN ? deploy_slot_name(s->live_slot) : NULL),
        "slots", slots, "previous_release", opt_str(s->previous_release), "generation",
        (json_int_t)s->generation, "updated", opt_str(when[0] ? when : NULL), "lease", lease);
}

static void env_human(const struct env_config *c, const struct env_state *s)
{
    char age[32] = "never";
    if (s->updated_ms) {
        duration_format(time_now_ms() - s->updated_ms, age, sizeof(age));
        strncat(age, " ago", sizeof(age) - strlen(age) - 1);
    }
    cli_printf(stdout, "%s (%s)  changed %s, generation %lld\n", c->name,
               deploy_strategy_name(c->strategy), age, (long long)s->generation);
    cli_printf(stdout, "  live      %s%s%s%s\n",
               s->live_release ? s->live_release : "(nothing deployed)",
               s->live_slot != SLOT_NONE && c->strategy == STRATEGY_BLUE_GREEN ? " on " : "",
               c->strategy == STRATEGY_BLUE_GREEN && s->live_slot != SLOT_NONE
                   ? deploy_slot_name(s->live_slot)
                   : "",
               c->listen ? "" : "");
    if (c->strategy == STRATEGY_BLUE_GREEN)
        for (int i = 0; i < 2; i++)
            cli_printf(stdout, "  %-9s %s%s\n", deploy_slot_name(i),
                       s->slot_release[i] ? s->slot_release[i] : "(empty)",
                       i == s->live_slot    ? "  [live]"
                       : s->slot_release[i] ? "  [idle]"
                                            : "");
    if (s->previous_release) {
        char prev[32];
        duration_format(time_now_ms() - s->previous_since_ms, prev, sizeof(prev));
        cli_printf(stdout, "  previous  %s (replaced %s ago)\n", s->previous_release, prev);
    }
    /* The lease's text was checked when the state was read. */
    const struct env_lease *l = &s->lease;
    if (l->owner) {
        char ago[32], left[32];
        int64_t now = time_now_ms(), to_end = l->expires_ms - now;
        duration_format(now - l->since_ms, ago, sizeof(ago));
        duration_format(to_end > 0 ? to_end : -to_end, left, sizeof(left));
        cli_printf(stdout, "  changing  %s by %s, pid %lld on %s, since %s ago (lease %s %s%s)\n",
                   l->action, l->actor, (long long)l->pid, l->owner, ago,
                   to_end > 0 ? "ends in" : "ended", left, to_end > 0 ? "" : " ago");
    }
}

int cmd_status(int argc, char **argv, struct cli *cli)
{
    const struct cli_option opts[] = {OPT_END()};
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    struct sw_err err = {0};
    struct env_config **envs = NULL;
    size_t n = 0;
    int rc;
    if (argc) {
        envs = xcalloc(1, sizeof(*envs));
        rc = cli_env(cli, argv[0], &envs[0], &err);
        n = rc ? 0 : 1;
    } else {
        rc = cli_envs(cli, &envs, &n, &err);
    }
    if (!rc)
        rc = cli_store(cli, CLI_STORE_READ, &err);
    json_t *arr = json_array();
    for (size_t i = 0; i < n && !rc; i++) {
        struct env_state *s;
        if ((rc = deploy_state_load(cli->store, envs[i]->name, &s, &err)))
            break;
        if (cli->json)
            json_array_append_new(arr, env_json(envs[i], s));
        else
            env_human(envs[i], s);
        env_state_free(s);
    }
    env_configs_free(envs, n);
    if (rc) {
        json_decref(arr);
        return cli_fail(&err);
    }
    if (cli->json)
        cli_print_json(json_pack("{s:o}", "environments", arr));
    else
        json_decref(arr);
    return EXIT_OK;
}
