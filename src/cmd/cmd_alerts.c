/* slipway alerts SUBCOMMAND: the alert rules of .slipway/alerts.yml. The
 * subcommands are a table; `check` loads a rules file as `slipway serve`
 * will and prints its rules, every default applied, or its error at
 * FILE:LINE:COL, so a user sees what the monitor will do before it does it. */
#include "cmd/cmd.h"
#include "monitor/monitor.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int alerts_check(int argc, char **argv, struct cli *cli);

static const struct cli_subcommand subcommands[] = {
    {"check", "alerts check", alerts_check, "load alert rules and print them, or their errors"},
};
#define NSUB (sizeof(subcommands) / sizeof(subcommands[0]))

static const struct cli_usage check_usage = {
    .usage = "slipway alerts check [FILE]",
    .about = "Loads FILE (default: the project's .slipway/alerts.yml) as 'slipway serve'\n"
             "does and prints each rule with every default applied: name, severity,\n"
             "condition, for, keep_firing_for, min_requests, environments and summary.\n"
             "Without the project's file it prints the default rules. An error is\n"
             "printed as FILE:LINE:COL: message on stderr, with exit status 1.\n"
             "--json prints {\"file\", \"default\", \"ok\", \"rules\": [...]} or\n"
             "{\"file\", \"ok\": false, \"errors\": [...]}. See docs/monitor.md.\n",
    .min_args = 0,
    .max_args = 1,
};

/* A duration exactly, the way the file writes it: "0", "250ms", "1m30s", "1h30m", "2d". */
static void duration_exact(int64_t ms, char *out, size_t len)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    size_t n = 0;
    out[0] = '\0';
    if (ms <= 0) {
        snprintf(out, len, "0");
        return;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(*units) && n < len; i++)
        if (ms >= units[i].ms) {
            int w =
                snprintf(out + n, len - n, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            if (w < 0 || (size_t)w >= len - n)
                break;
            n += (size_t)w;
            ms %= units[i].ms;
        }
}

/* A JSON string for text that may not be UTF-8 (a path from the command
 * line): escaped then. */
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

static json_t *rule_json(const struct monitor_rule *r)
{
    json_t *envs = json_array();
    int event = r->signal == MONITOR_SIGNAL_DEPLOYMENT;
    for (size_t i = 0; i < r->nenvironments; i++)
        json_array_append_new(envs, json_string(r->environments[i]));
    return json_pack("{s:s, s:o, s:s, s:o, s:o, s:I, s:I, s:I, s:s, s:s, s:I, s:I}", "name",
                     r->name, "environments", envs, "signal", monitor_signal_name(r->signal), "op",
                     event ? json_null() : json_string(monitor_op_name(r->op)), "threshold",
                     event ? json_null() : json_real(r->threshold), "for_ms", (json_int_t)r->for_ms,
                     "keep_firing_for_ms", (json_int_t)r->keep_firing_for_ms, "min_requests",
                     (json_int_t)r->min_requests, "severity", monitor_severity_name(r->severity),
                     "summary", r->summary, "line", (json_int_t)r->line, "col", (json_int_t)r->col);
}

static void rule_print(struct cli *cli, const struct monitor_rule *r)
{
    struct buf cond = BUF_INIT, envs = BUF_INIT;
    char d[64];

    if (r->signal == MONITOR_SIGNAL_DEPLOYMENT) {
        buf_adds(&cond, "after every deploy, switch and rollback");
        if (r->keep_firing_for_ms) {
            duration_exact(r->keep_firing_for_ms, d, sizeof(d));
            buf_addf(&cond, ", shown %s", d);
        }
    } else {
        duration_exact(r->for_ms, d, sizeof(d));
        buf_addf(&cond, "%s %s %g for %s", monitor_signal_name(r->signal), monitor_op_name(r->op),
                 r->threshold, d);
        if (r->keep_firing_for_ms) {
            duration_exact(r->keep_firing_for_ms, d, sizeof(d));
            buf_addf(&cond, ", keep firing %s", d);
        }
        if (r->min_requests)
            buf_addf(&cond, ", at least %lld requests", (long long)r->min_requests);
    }
    for (size_t i = 0; i < r->nenvironments; i++)
        buf_addf(&envs, "%s%s", i ? " " : "", r->environments[i]);
    cli_say(cli, "%-24s %-8s %s; environments: %s\n", r->name, monitor_severity_name(r->severity),
            cond.data, envs.data);
    cli_say(cli, "%-24s summary: %s\n", "", r->summary);
    buf_free(&cond);
    buf_free(&envs);
}

static int alerts_check(int argc, char **argv, struct cli *cli)
{
    const struct cli_option opts[] = {OPT_END()};
    struct monitor_rules *rules = NULL;
    struct sw_err err = {0};
    char *path = NULL;
    int rc;

    if ((argc = cli_parse_options(cli, &check_usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    if (argc == 1) {
        struct stat sb;
        /* A file named is a file meant: missing is an error, not the defaults. */
        if (stat(argv[0], &sb) != 0) {
            sw_err_sys(&err, errno, "%s", argv[0]);
            return cli_fail(&err);
        }
        path = xstrdup(argv[0]);
    } else {
        if (cli_project(cli, &err) != 0)
            return cli_fail(&err);
        path = path_join(cli->project, ".slipway/alerts.yml");
    }
    rc = monitor_rules_load(path, &rules, &err);
    if (rc) {
        if (cli->json)
            cli_print_json(json_pack("{s:o, s:b, s:[o]}", "file", jstr(path), "ok", 0, "errors",
                                     jstr(err.msg)));
        else
            cli_printf(stderr, "%s\n", err.msg);
        free(path);
        return EXIT_FAIL;
    }
    if (cli->json) {
        json_t *list = json_array();
        for (size_t i = 0; i < rules->n; i++)
            json_array_append_new(list, rule_json(&rules->v[i]));
        cli_print_json(json_pack("{s:o, s:b, s:b, s:o}", "file", jstr(path), "default",
                                 !rules->file, "ok", 1, "rules", list));
    } else {
        if (rules->file)
            cli_say(cli, "%s: %zu rule%s\n", path, rules->n, rules->n == 1 ? "" : "s");
        else
            cli_say(cli, "%s: no such file; the %zu default rules apply\n", path, rules->n);
        for (size_t i = 0; i < rules->n; i++)
            rule_print(cli, &rules->v[i]);
    }
    monitor_rules_free(rules);
    free(path);
    return EXIT_OK;
}

int cmd_alerts(int argc, char **argv, struct cli *cli)
{
    return cli_run_subcommand(cli, "alerts",
                              "Alert rules (.slipway/alerts.yml) and their states.\n", subcommands,
                              NSUB, argc, argv);
}
