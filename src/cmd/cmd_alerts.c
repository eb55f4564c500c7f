/* slipway alerts [ENV...]: the state of each alert rule per environment, as
 * the monitor of a running `slipway serve` last judged it, read from the
 * status file it rewrites every interval (src/monitor/status.c reads it as
 * hostile input). slipway alerts SUBCOMMAND: the subcommands are a table;
 * `check` loads a rules file as `slipway serve` will and prints its rules,
 * every default applied, or its error at FILE:LINE:COL, so a user sees what
 * the monitor will do before it does it. */
#include "cmd/cmd.h"
#include "monitor/monitor.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---- slipway alerts [ENV...]: the states ------------------------------------------- */

static const struct cli_usage show_usage = {
    .usage = "slipway alerts [ENV...]",
    .about =
        "Prints the state of each alert rule for each environment (or the ENVs named),\n"
        "as the monitor of the running 'slipway serve' judged it at its last interval:\n"
        "rule, severity, state (inactive, pending, firing), verdict (ok, breach, not\n"
        "enough traffic (N < min_requests M), no data, or not evaluated: no live slot\n"
        "yet), the signal's value over the window and how long the state has held.\n"
        "serve rewrites .slipway/cache/monitor/status.json every interval. When it is\n"
        "missing, older than 5 intervals (at least 3s), or its process is gone, this\n"
        "says 'slipway serve is not running for this project (last status at T)' on\n"
        "stderr, still prints the last states it has, and exits 1. A file that is not\n"
        "a valid status is refused with one line naming it (exit 1). To name an\n"
        "environment called check, put -- before it.\n"
        "--json prints {\"running\", \"status_file\", \"written\", \"pid\", \"host\",\n"
        "\"interval_ms\", \"window_ms\", \"environments\": [{\"env\", \"live_slot\",\n"
        "\"release\", \"requests\", \"alerts\": [{\"rule\", \"severity\", \"signal\", \"op\",\n"
        "\"threshold\", \"for_ms\", \"min_requests\", \"state\", \"verdict\",\n"
        "\"verdict_text\", \"value\", \"last\", \"requests\", \"since\", \"active\", \"fired\",\n"
        "\"resolved\", \"release\", \"summary\"}]}]} (null: not measured, or never).\n",
    .epilog = "Subcommands:\n"
              "  check    load alert rules and print them, or their errors\n"
              "\n'slipway alerts check --help' shows its options. See docs/monitor.md.\n",
    .min_args = 0,
    .max_args = -1,
};

int cmd_monitor_status_load(struct cli *cli, struct monitor_status *st, int *live, struct buf *gone,
                            struct sw_err *err)
{
    char when[40];
    *live = 0;
    int rc = cli_project(cli, err);
    if (rc)
        return rc;
    char *path = path_join(cli->project, MONITOR_STATUS_FILE);
    rc = monitor_status_load(path, st, err);
    if (rc == SW_ENOTFOUND) {
        buf_addf(gone,
                 "slipway serve is not running for this project (no status yet: %s does "
                 "not exist)",
                 path);
        sw_err_set(err, SW_ENOTFOUND, "%s", gone->data);
    } else if (!rc) {
        *live = monitor_status_live(st, time_now_ms());
        if (!*live) {
            time_format_iso(st->written_ms, when, sizeof(when));
            buf_addf(gone, "slipway serve is not running for this project (last status at %s)",
                     when);
        }
    }
    free(path);
    return rc;
}

/* A signal's value for a column: "3.10%", "12.5ms", "40.0/s", "1.2 MiB/s". */
static void value_text(enum monitor_signal sig, double v, char *out, size_t len)
{
    if (isnan(v)) {
        snprintf(out, len, "-");
        return;
    }
    switch (sig) {
    case MONITOR_SIGNAL_ERROR_RATIO:
    case MONITOR_SIGNAL_CPU:
    case MONITOR_SIGNAL_MEMORY:
        snprintf(out, len, "%.2f%%", v * 100);
        break;
    case MONITOR_SIGNAL_LATENCY_P50:
    case MONITOR_SIGNAL_LATENCY_P95:
    case MONITOR_SIGNAL_LATENCY_P99:
        if (v < 1)
            snprintf(out, len, "%.1fms", v * 1000);
        else
            snprintf(out, len, "%.2fs", v);
        break;
    case MONITOR_SIGNAL_REQUEST_RATE:
        snprintf(out, len, "%.1f/s", v);
        break;
    default: {
        char sz[20];
        cli_human_size(v < 0 ? 0 : v > 1.8e19 ? UINT64_MAX : (uint64_t)v, sz, sizeof(sz));
        snprintf(out, len, "%s/s", sz);
    }
    }
}

static void verdict_text(const struct monitor_status_alert *a, struct buf *out)
{
    switch (a->verdict) {
    case MONITOR_VERDICT_OK:
        buf_adds(out, "ok");
        break;
    case MONITOR_VERDICT_BREACH:
        buf_adds(out, "breach");
        break;
    case MONITOR_VERDICT_LOW_TRAFFIC:
        buf_addf(out, "not enough traffic (%llu < min_requests %lld)",
                 (unsigned long long)a->requests, (long long)a->min_requests);
        break;
    case MONITOR_VERDICT_NO_DATA:
        buf_adds(out, "no data");
        break;
    default:
        buf_adds(out, "not evaluated");
    }
}

/* When the state began: firing since it fired, pending since it became
 * active, inactive since its last resolution (0: as long as known). */
static int64_t since_ms(const struct monitor_status_alert *a)
{
    return a->state == MONITOR_FIRING    ? a->fired_ms
           : a->state == MONITOR_PENDING ? a->active_ms
                                         : a->resolved_ms;
}

static const struct monitor_status_slot *live_slot(const struct monitor_status_env *e)
{
    for (size_t k = 0; k < e->nslots; k++)
        if (e->slots[k].live)
            return &e->slots[k];
    return NULL;
}

static json_t *jreal(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *status_alert_json(const struct monitor_status_alert *a)
{
    struct buf vt = BUF_INIT;
    verdict_text(a, &vt);
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:s, s:s, s:s, s:o, s:o, s:I, s:o, s:o, s:o, s:o, "
        "s:o, s:o}",
        "rule", a->rule, "severity", monitor_severity_name(a->severity), "signal",
        monitor_signal_name(a->signal), "op", monitor_op_name(a->op), "threshold",
        jreal(a->threshold), "for_ms", (json_int_t)a->for_ms, "min_requests",
        (json_int_t)a->min_requests, "state", monitor_state_name(a->state), "verdict",
        monitor_verdict_name(a->verdict), "verdict_text", vt.data, "value", jreal(a->value), "last",
        jreal(a->last), "requests", (json_int_t)a->requests, "since",
        json_time_or_null(since_ms(a)), "active", json_time_or_null(a->active_ms), "fired",
        json_time_or_null(a->fired_ms), "resolved", json_time_or_null(a->resolved_ms), "release",
        json_str_or_null(a->release[0] ? a->release : NULL), "summary",
        json_str_or_null(a->summary));
    buf_free(&vt);
    return j;
}

static json_t *status_env_json(const struct monitor_status_env *e)
{
    const struct monitor_status_slot *live = live_slot(e);
    json_t *alerts = json_array();
    for (size_t i = 0; i < e->nalerts; i++)
        json_array_append_new(alerts, status_alert_json(&e->alerts[i]));
    return json_pack("{s:s, s:o, s:o, s:o, s:o}", "env", e->name, "live_slot",
                     json_str_or_null(live ? edge_slot_name(live->slot) : NULL), "release",
                     json_str_or_null(live && live->release[0] ? live->release : NULL), "requests",
                     live ? json_integer((json_int_t)live->requests) : json_null(), "alerts",
                     alerts);
}

static void status_env_print(const struct monitor_status *st, const struct monitor_status_env *e,
                             int64_t now)
{
    const struct monitor_status_slot *live = live_slot(e);
    char win[32];
    duration_format(st->window_ms, win, sizeof(win));
    if (live)
        cli_printf(stdout, "%s: live slot %s, release %s, %llu requests in the last %s\n", e->name,
                   edge_slot_name(live->slot), live->release[0] ? live->release : "none",
                   (unsigned long long)live->requests, win);
    else
        cli_printf(stdout, "%s: no live slot served yet\n", e->name);
    if (!e->nalerts) {
        cli_printf(stdout, "  no alert rule applies to %s\n\n", e->name);
        return;
    }
    cli_printf(stdout, "  %-24s %-8s %-8s %-44s %10s  %s\n", "RULE", "SEVERITY", "STATE", "VERDICT",
               "VALUE", "SINCE");
    for (size_t i = 0; i < e->nalerts; i++) {
        const struct monitor_status_alert *a = &e->alerts[i];
        struct buf vt = BUF_INIT;
        char val[48], since[48] = "-";
        verdict_text(a, &vt);
        value_text(a->signal, a->last, val, sizeof(val));
        int64_t t = since_ms(a);
        if (t) {
            char d[32];
            duration_format(now > t ? now - t : 0, d, sizeof(d));
            snprintf(since, sizeof(since), "%s ago", d);
        }
        cli_printf(stdout, "  %-24s %-8s %-8s %-44s %10s  %s\n", a->rule,
                   monitor_severity_name(a->severity), monitor_state_name(a->state), vt.data, val,
                   since);
        buf_free(&vt);
    }
    cli_printf(stdout, "\n");
}

static int alerts_show(int argc, char **argv, struct cli *cli)
{
    const struct cli_option opts[] = {OPT_END()};
    struct monitor_status st = {0};
    struct sw_err err = {0};
    struct buf gone = BUF_INIT;
    int live = 0, rc = EXIT_OK;
    const struct monitor_status_env **pick = NULL;
    size_t npick = 0;

    if ((argc = cli_parse_options(cli, &show_usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    for (int i = 0; i < argc; i++)
        if (env_name_check(argv[i], &err) != 0)
            return cli_usage_error(cli, "%s", err.msg);
    int lrc = cmd_monitor_status_load(cli, &st, &live, &gone, &err);
    if (lrc) {
        if (lrc == SW_ENOTFOUND && cli->json)
            cli_print_json(json_pack("{s:b, s:s, s:o}", "running", 0, "error", err.msg,
                                     "environments", json_array()));
        buf_free(&gone);
        return cli_fail(&err);
    }
    /* every environment, or the ones named, in the order named */
    pick = xcalloc(st.nenvs + (size_t)argc + 1, sizeof(*pick));
    for (size_t i = 0; !argc && i < st.nenvs; i++)
        pick[npick++] = &st.envs[i];
    for (int i = 0; i < argc; i++) {
        size_t k = 0;
        while (k < st.nenvs && strcmp(st.envs[k].name, argv[i]) != 0)
            k++;
        if (k == st.nenvs) {
            struct buf known = BUF_INIT;
            for (size_t j = 0; j < st.nenvs; j++)
                buf_addf(&known, "%s%s", j ? ", " : "", st.envs[j].name);
            sw_err_set(&err, SW_ENOTFOUND, "%s: not monitored by slipway serve (it monitors: %s)",
                       argv[i], known.len ? known.data : "none");
            buf_free(&known);
            rc = cli_fail(&err);
            goto out;
        }
        pick[npick++] = &st.envs[k];
    }
    if (cli->json) {
        char *path = path_join(cli->project, MONITOR_STATUS_FILE);
        json_t *envs = json_array();
        for (size_t i = 0; i < npick; i++)
            json_array_append_new(envs, status_env_json(pick[i]));
        cli_print_json(json_pack("{s:b, s:s, s:o, s:I, s:s, s:I, s:I, s:o}", "running", live,
                                 "status_file", path, "written", json_time_or_null(st.written_ms),
                                 "pid", (json_int_t)st.pid, "host", st.host, "interval_ms",
                                 (json_int_t)st.interval_ms, "window_ms", (json_int_t)st.window_ms,
                                 "environments", envs));
        free(path);
    } else if (!cli->quiet) {
        int64_t now = live ? time_now_ms() : st.written_ms;
        if (!npick)
            cli_printf(stdout, "slipway serve monitors no environment\n");
        for (size_t i = 0; i < npick; i++)
            status_env_print(&st, pick[i], now);
    }
    if (!live) {
        fflush(stdout);
        cli_printf(stderr, "slipway: %s\n", gone.data);
        rc = EXIT_FAIL;
    }
out:
    free(pick);
    buf_free(&gone);
    monitor_status_clear(&st);
    return rc;
}

/* "chek": a mistyped subcommand rather than an environment, unless the
 * project has an environment of that name. */
static int mistyped(struct cli *cli, const char *word)
{
    const char *names[NSUB];
    for (size_t i = 0; i < NSUB; i++)
        names[i] = subcommands[i].name;
    if (word[0] == '-' || !cli_closest(word, names, NSUB))
        return 0;
    struct sw_err err = {0};
    if (cli_project(cli, &err))
        return 1;
    char *dir = path_join(cli->project, ".slipway/environments");
    struct env_config *c = NULL;
    int known = env_config_find(dir, word, &c, NULL) == 0;
    env_config_free(c);
    free(dir);
    return !known;
}

int cmd_alerts(int argc, char **argv, struct cli *cli)
{
    if (argc >= 2 && mistyped(cli, argv[1])) /* says "did you mean 'check'?" */
        return cli_run_subcommand(cli, "alerts",
                                  "Alert rules (.slipway/alerts.yml) and their states.\n",
                                  subcommands, NSUB, argc, argv);
    /* `slipway alerts check ...` is the subcommand; anything else is the states */
    for (size_t i = 0; argc >= 2 && i < NSUB; i++)
        if (!strcmp(argv[1], subcommands[i].name))
            return cli_run_subcommand(cli, "alerts",
                                      "Alert rules (.slipway/alerts.yml) and their states.\n",
                                      subcommands, NSUB, argc, argv);
    return alerts_show(argc, argv, cli);
}
