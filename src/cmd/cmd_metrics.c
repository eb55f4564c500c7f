/* slipway metrics ENV: what the monitor of `slipway serve` recorded for an
 * environment, a step per 10 seconds, read from the history file serve keeps
 * under the project (src/monitor/history.c reads it as hostile input). */
#include "cmd/cmd.h"
#include "monitor/monitor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_usage usage = {
    .usage = "slipway metrics ENV [--since D] [--slot live|idle]",
    .about =
        "Prints what 'slipway serve' recorded for ENV, one step per 10 seconds over\n"
        "the last D (default 1h; serve keeps 24h): requests per second, the share of\n"
        "errors (5xx), the response times p50, p95 and p99 of the step's requests,\n"
        "and the host's CPU busy and memory in use. The live slot is followed across\n"
        "switches; --slot idle follows a blue-green environment's other slot.\n"
        "The history is .slipway/cache/monitor/history.bin, which serve rewrites\n"
        "every minute and when it stops: a running serve's last minute may be missing.\n"
        "--json prints {\"env\", \"slot\", \"since\", \"step_ms\", \"points\": [{\"time\",\n"
        "\"at_ms\", \"duration_ms\", \"slot\", \"live\", \"requests\", \"errors\", \"req_per_s\",\n"
        "\"error_ratio\", \"p50_us\", \"p95_us\", \"p99_us\", \"cpu\", \"memory\",\n"
        "\"disk_io_bytes_per_s\", \"process_cpu\", \"process_rss_bytes\"}]} (null: not\n"
        "measured: no requests, or /proc hid it).\n",
    .min_args = 1,
    .max_args = 1,
};

/* "2026-11-25T08:25:06Z": a step's time to the second. */
static void when(int64_t ms, char *out, size_t len)
{
    char iso[40];
    time_format_iso(ms, iso, sizeof(iso));
    snprintf(out, len, "%.19sZ", iso);
}

/* A response time for a column: "0.4ms", "12.5ms", "1.25s". */
static void dur(uint32_t us, char *out, size_t len)
{
    if (us < 1000000)
        snprintf(out, len, "%.1fms", us / 1000.0);
    else
        snprintf(out, len, "%.2fs", us / 1e6);
}

static json_t *opt_real(int ok, double v)
{
    return ok ? json_real(v) : json_null();
}

static json_t *opt_int(int ok, uint64_t v)
{
    return ok ? json_integer((json_int_t)v) : json_null();
}

static json_t *point_json(const struct monitor_point *p)
{
    char t[40];
    const struct monitor_host_figures *h = &p->host;
    int req = p->s.requests > 0;
    time_format_iso(p->at_ms, t, sizeof(t));
    return json_pack(
        "{s:s, s:I, s:I, s:s, s:b, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
        "time", t, "at_ms", (json_int_t)p->at_ms, "duration_ms", (json_int_t)p->dur_ms, "slot",
        edge_slot_name(p->slot), "live", p->live, "requests", (json_int_t)p->s.requests, "errors",
        (json_int_t)p->s.errors, "req_per_s",
        opt_real(p->dur_ms > 0, p->s.requests * 1000.0 / (double)(p->dur_ms ? p->dur_ms : 1)),
        "error_ratio", opt_real(req, req ? (double)p->s.errors / p->s.requests : 0), "p50_us",
        opt_int(req, p->s.p50_us), "p95_us", opt_int(req, p->s.p95_us), "p99_us",
        opt_int(req, p->s.p99_us), "cpu", opt_real(h->ok & MONITOR_HOST_CPU, h->host_cpu_ppm / 1e6),
        "memory", opt_real(h->ok & MONITOR_HOST_MEM, h->host_mem_ppm / 1e6), "disk_io_bytes_per_s",
        opt_int(h->ok & MONITOR_HOST_DISK, h->disk_io_bps), "process_cpu",
        opt_real(h->ok & MONITOR_PROC_CPU, h->proc_cpu_milli / 1e3), "process_rss_bytes",
        opt_int(h->ok & MONITOR_PROC_RSS, h->proc_rss_bytes));
}

static void point_print(const struct monitor_point *p, int bg)
{
    char t[32], rate[24] = "-", errs[16] = "-", q[3][16] = {"-", "-", "-"}, cpu[8] = "-",
                mem[8] = "-";
    when(p->at_ms, t, sizeof(t));
    if (p->dur_ms > 0)
        snprintf(rate, sizeof(rate), "%.1f", p->s.requests * 1000.0 / (double)p->dur_ms);
    if (p->s.requests) {
        snprintf(errs, sizeof(errs), "%.2f%%", 100.0 * p->s.errors / p->s.requests);
        dur(p->s.p50_us, q[0], sizeof(q[0]));
        dur(p->s.p95_us, q[1], sizeof(q[1]));
        dur(p->s.p99_us, q[2], sizeof(q[2]));
    }
    if (p->host.ok & MONITOR_HOST_CPU)
        snprintf(cpu, sizeof(cpu), "%.0f%%", p->host.host_cpu_ppm / 1e4);
    if (p->host.ok & MONITOR_HOST_MEM)
        snprintf(mem, sizeof(mem), "%.0f%%", p->host.host_mem_ppm / 1e4);
    if (bg)
        cli_printf(stdout, "%-20s  %-5s  %9s  %7s  %8s  %8s  %8s  %4s  %4s\n", t,
                   edge_slot_name(p->slot), rate, errs, q[0], q[1], q[2], cpu, mem);
    else
        cli_printf(stdout, "%-20s  %9s  %7s  %8s  %8s  %8s  %4s  %4s\n", t, rate, errs, q[0], q[1],
                   q[2], cpu, mem);
}

int cmd_metrics(int argc, char **argv, struct cli *cli)
{
    int64_t since_ms = 3600 * 1000;
    const char *slot = "live";
    const struct cli_option opts[] = {
        OPT_DURATION(0, "since", &since_ms, "D", 1,
                     "how far back, such as 10m, 1h or 24h (default 1h)"),
        OPT_STRING(0, "slot", &slot, "SLOT",
                   "live (default): the slot serving ENV at each step; idle: the other one"),
        OPT_END(),
    };
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    if (strcmp(slot, "live") != 0 && strcmp(slot, "idle") != 0)
        return cli_usage_error(cli, "--slot: expected live or idle, got '%s'", slot);
    enum monitor_pick pick = !strcmp(slot, "live") ? MONITOR_PICK_LIVE : MONITOR_PICK_IDLE;

    struct sw_err err = {0};
    struct env_config *env = NULL;
    struct monitor_history *h = NULL;
    struct monitor_point *pts = NULL;
    char *path = NULL;
    int rc = cli_env(cli, argv[0], &env, &err);
    if (rc)
        return cli_fail(&err);
    int bg = env->strategy == STRATEGY_BLUE_GREEN;
    if (pick == MONITOR_PICK_IDLE && !bg) {
        sw_err_set(&err, SW_EINVAL, "%s is a direct environment: it has no idle slot", env->name);
        goto fail;
    }
    path = path_join(cli->project, MONITOR_HISTORY_FILE);
    rc = monitor_history_load(path, 0, MONITOR_HISTORY_STEPS, &h, &err);
    if (rc == SW_ENOTFOUND) {
        sw_err_set(&err, SW_ENOTFOUND,
                   "no monitoring history yet: %s does not exist ('slipway serve' writes it "
                   "every minute)",
                   path);
        goto fail;
    }
    if (rc)
        goto fail;
    if (!monitor_history_has(h, env->name)) {
        sw_err_set(&err, SW_ENOTFOUND,
                   "no monitoring history for %s yet ('slipway serve' records a step every 10s "
                   "and writes them every minute)",
                   env->name);
        goto fail;
    }
    int64_t now = time_now_ms(), since = since_ms >= now ? 0 : now - since_ms;
    size_t n = monitor_history_points(h, env->name, pick, since, &pts);
    if (cli->json) {
        char t[40];
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, point_json(&pts[i]));
        time_format_iso(since, t, sizeof(t));
        cli_print_json(json_pack("{s:s, s:s, s:s, s:I, s:o}", "env", env->name, "slot", slot,
                                 "since", t, "step_ms", (json_int_t)monitor_history_step_ms(h),
                                 "points", arr));
    } else if (!n) {
        char t[32], newest[32];
        when(since, t, sizeof(t));
        when(monitor_history_newest_ms(h), newest, sizeof(newest));
        cli_say(cli, "no steps of %s's %s slot since %s (the newest step is from %s)\n", env->name,
                slot, t, newest);
    } else if (!cli->quiet) {
        if (bg)
            cli_printf(stdout, "%-20s  %-5s  %9s  %7s  %8s  %8s  %8s  %4s  %4s\n", "TIME", "SLOT",
                       "REQ/S", "ERRORS", "P50", "P95", "P99", "CPU", "MEM");
        else
            cli_printf(stdout, "%-20s  %9s  %7s  %8s  %8s  %8s  %4s  %4s\n", "TIME", "REQ/S",
                       "ERRORS", "P50", "P95", "P99", "CPU", "MEM");
        for (size_t i = 0; i < n; i++)
            point_print(&pts[i], bg);
    }
    free(pts);
    monitor_history_free(h);
    env_config_free(env);
    free(path);
    return EXIT_OK;
fail:
    monitor_history_free(h);
    env_config_free(env);
    free(path);
    return cli_fail(&err);
}
