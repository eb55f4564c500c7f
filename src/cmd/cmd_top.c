/* slipway top: what every environment serves, live, like top(1). It redraws
 * the status `slipway serve`'s monitor rewrites every interval
 * (MONITOR_STATUS_FILE, read as hostile input by src/monitor/status.c): per
 * environment and slot the request rate, error share, p95 and p99 over the
 * alert window and a sparkline of the requests of each of its last intervals.
 * On a terminal it takes the alternate screen and gives it back on exit and
 * on SIGINT, SIGTERM or SIGHUP; anywhere else (or with --once) it prints one
 * frame. Every string from the file is printed through cli_printf, escaped. */
#include "cmd/cmd.h"
#include "monitor/monitor.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static const struct cli_usage usage = {
    .usage = "slipway top [--once] [--interval D]",
    .about = "Shows what the running 'slipway serve' serves, redrawn every second: a line\n"
             "per environment and slot with the request rate, the share of errors, p95\n"
             "and p99 over the alert window (1m), the alerts firing or pending, the release,\n"
             "and a sparkline of the requests of each interval of that window; above them\n"
             "serve's CPU and memory and the host's. It reads\n"
             ".slipway/cache/monitor/status.json, which serve rewrites every interval; when\n"
             "serve is not running it says so and waits for it. Ctrl-C quits.\n"
             "--once, or an output that is not a terminal, prints one frame and exits: 0,\n"
             "or 1 when serve is not running or the status cannot be read.\n",
    .min_args = 0,
    .max_args = 0,
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* The block elements of a sparkline, lowest first (UTF-8). */
static const char *const bars[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                   "\u2585", "\u2586", "\u2587", "\u2588"};

/* The newest width counts of x as a sparkline scaled to their largest: a
 * blank for an interval without requests, else one of eight heights. */
static void sparkline(const struct monitor_status_slot *x, size_t width, struct buf *out)
{
    size_t n = x->nrecent < width ? x->nrecent : width, from = x->nrecent - n;
    uint64_t max = 0;
    for (size_t i = from; i < x->nrecent; i++)
        if (x->recent_requests[i] > max)
            max = x->recent_requests[i];
    for (size_t i = from; i < x->nrecent; i++) {
        uint64_t v = x->recent_requests[i];
        if (!v) {
            buf_adds(out, " ");
            continue;
        }
        size_t h = (size_t)((double)v * 7 / (double)max + 0.5);
        buf_adds(out, bars[h > 7 ? 7 : h]);
    }
}

static void seconds_text(double s, char *out, size_t len)
{
    if (isnan(s))
        snprintf(out, len, "-");
    else if (s < 1)
        snprintf(out, len, "%.1fms", s * 1000);
    else
        snprintf(out, len, "%.2fs", s);
}

static int term_columns(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 0;
}

/* The alerts of e firing and pending, as "1 firing, 2 pending", or "-". */
static void alerts_text(const struct monitor_status_env *e, char *out, size_t len)
{
    size_t firing = 0, pending = 0;
    for (size_t i = 0; i < e->nalerts; i++) {
        firing += e->alerts[i].state == MONITOR_FIRING;
        pending += e->alerts[i].state == MONITOR_PENDING;
    }
    if (firing && pending)
        snprintf(out, len, "%zu firing, %zu pending", firing, pending);
    else if (firing || pending)
        snprintf(out, len, "%zu %s", firing ? firing : pending, firing ? "firing" : "pending");
    else
        snprintf(out, len, "-");
}

#define ROW_FMT "%-16s %-7s %9s %7s %9s %9s  %-18s %-24s "

static void frame(const struct monitor_status *st, int live, const char *gone, int cols)
{
    char t[40], iv[32], win[32], cpu[16] = "-", rss[32] = "-", hcpu[16] = "-", hmem[16] = "-";
    time_format_iso(st->written_ms, t, sizeof(t));
    duration_format(st->interval_ms, iv, sizeof(iv));
    if (st->interval_ms < 1000)
        snprintf(iv, sizeof(iv), "%lldms", (long long)st->interval_ms);
    duration_format(st->window_ms, win, sizeof(win));
    if (live)
        cli_printf(stdout, "slipway top: serve pid %lld on %s, status of %.19sZ, every %s\n",
                   (long long)st->pid, st->host, t, iv);
    else
        cli_printf(stdout, "slipway top: %s\n", gone);
    if (!isnan(st->proc_cpu))
        snprintf(cpu, sizeof(cpu), "%.1f%%", st->proc_cpu * 100);
    if (!isnan(st->proc_rss))
        cli_human_size((uint64_t)st->proc_rss, rss, sizeof(rss));
    if (!isnan(st->host_cpu))
        snprintf(hcpu, sizeof(hcpu), "%.0f%%", st->host_cpu * 100);
    if (!isnan(st->host_mem))
        snprintf(hmem, sizeof(hmem), "%.0f%%", st->host_mem * 100);
    cli_printf(stdout, "serve: CPU %s of a core, RSS %s   host: CPU %s, memory %s in use\n\n", cpu,
               rss, hcpu, hmem);
    /* the fixed columns' width (ROW_FMT), then what is left for the sparkline */
    size_t fixed = 16 + 1 + 7 + 1 + 9 + 1 + 7 + 1 + 9 + 1 + 9 + 2 + 18 + 1 + 24 + 1;
    size_t width = cols <= 0                   ? MONITOR_STATUS_RECENT
                   : (size_t)cols > fixed + 10 ? (size_t)cols - fixed
                                               : 10;
    if (width > MONITOR_STATUS_RECENT)
        width = MONITOR_STATUS_RECENT;
    char spark_head[96];
    snprintf(spark_head, sizeof(spark_head), "REQUESTS/%s, LAST %s", iv, win);
    cli_printf(stdout, ROW_FMT "%s\n", "ENV", "SLOT", "REQ/S", "ERRORS", "P95", "P99", "ALERTS",
               "RELEASE", spark_head);
    if (!st->nenvs)
        cli_printf(stdout, "(serve monitors no environment)\n");
    for (size_t i = 0; i < st->nenvs; i++) {
        const struct monitor_status_env *e = &st->envs[i];
        char al[64];
        alerts_text(e, al, sizeof(al));
        if (!e->nslots)
            cli_printf(stdout, ROW_FMT "\n", e->name, "-", "-", "-", "-", "-", al, "(not served)");
        for (size_t k = 0; k < e->nslots; k++) {
            const struct monitor_status_slot *x = &e->slots[k];
            char slot[16], rate[24] = "-", errs[16] = "-", p95[16], p99[16];
            struct buf spark = BUF_INIT;
            snprintf(slot, sizeof(slot), "%s%s", edge_slot_name(x->slot), x->live ? "*" : "");
            if (!isnan(x->req_per_s))
                snprintf(rate, sizeof(rate), "%.1f", x->req_per_s);
            if (!isnan(x->error_ratio))
                snprintf(errs, sizeof(errs), "%.2f%%", x->error_ratio * 100);
            seconds_text(x->p95_s, p95, sizeof(p95));
            seconds_text(x->p99_s, p99, sizeof(p99));
            sparkline(x, width, &spark);
            cli_printf(stdout, ROW_FMT, k ? "" : e->name, slot, rate, errs, p95, p99,
                       x->live ? al : "", x->release[0] ? x->release : "none");
            /* made here of fixed block characters: nothing to escape */
            fputs(spark.data ? spark.data : "", stdout);
            fputc('\n', stdout);
            buf_free(&spark);
        }
    }
    cli_printf(stdout, "\n* the live slot; rates, errors and percentiles over the last %s\n", win);
}

/* Waits ms, or less when a signal came. */
static void pause_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    if (!stop_flag)
        (void)nanosleep(&ts, NULL); /* EINTR: a signal, seen by the loop */
}

int cmd_top(int argc, char **argv, struct cli *cli)
{
    int once = 0, rc = EXIT_OK;
    int64_t interval_ms = 1000;
    const struct cli_option opts[] = {
        OPT_BOOL(0, "once", &once, "print one frame and exit"),
        OPT_DURATION(0, "interval", &interval_ms, "D", 100, "redraw every D (default 1s)"),
        OPT_END(),
    };
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    struct sw_err err = {0};
    if (cli_project(cli, &err) != 0)
        return cli_fail(&err);
    int tty = isatty(STDOUT_FILENO);
    if (!tty)
        once = 1;
    if (!once) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal; /* no SA_RESTART: the pause ends at once */
        sigemptyset(&sa.sa_mask);
        (void)sigaction(SIGINT, &sa, NULL);
        (void)sigaction(SIGTERM, &sa, NULL);
        (void)sigaction(SIGHUP, &sa, NULL);
        /* a frame goes out in one write: no flicker line by line */
        setvbuf(stdout, NULL, _IOFBF, 1 << 16);
        fputs("\x1b[?1049h\x1b[?25l", stdout); /* the alternate screen, no cursor */
    }
    while (!stop_flag) {
        struct monitor_status st = {0};
        struct buf gone = BUF_INIT;
        int live = 0;
        err = (struct sw_err){0};
        int lrc = cmd_monitor_status_load(cli, &st, &live, &gone, &err);
        if (!once)
            fputs("\x1b[H\x1b[2J", stdout); /* home, clear */
        if (lrc) {
            if (once) {
                buf_free(&gone);
                rc = cli_fail(&err);
                break;
            }
            cli_printf(stdout, "slipway top: %s\n(waiting; Ctrl-C quits)\n", err.msg);
        } else {
            frame(&st, live, gone.data ? gone.data : "", tty ? term_columns() : 0);
            if (!live && once) {
                fflush(stdout);
                cli_printf(stderr, "slipway: %s\n", gone.data);
                rc = EXIT_FAIL;
            }
        }
        fflush(stdout);
        monitor_status_clear(&st);
        buf_free(&gone);
        if (once)
            break;
        pause_ms(interval_ms);
    }
    if (!once) {
        fputs("\x1b[?25h\x1b[?1049l", stdout); /* the cursor and the screen back */
        fflush(stdout);
    }
    return rc;
}
