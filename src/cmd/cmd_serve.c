/* slipway serve: the edge server over the project's environments. */
#include "cmd/cmd.h"
#include "edge/edge.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: slipway serve [--admin ADDR] [--access-log PATH] [--workers N]\n"
    "                     [--header-timeout D] [--idle-timeout D] [--max-connections N]\n"
    "                     [--poll D]\n"
    "\n"
    "Serves every environment in .slipway/environments/: the live slot on its\n"
    "'listen' address and, for blue-green, the idle slot on its 'preview' address.\n"
    "Deploys, switches and rollbacks made by any slipway process are picked up\n"
    "within one poll interval, without dropping a request.\n"
    "\n"
    "/_slipway/health and /_slipway/ready (for load balancers) answer on every\n"
    "listener; /_slipway/metrics (Prometheus text format), and ready with the\n"
    "reason an environment failed, only on the --admin address. An address\n"
    "another process holds is refused (exit 1), never shared.\n"
    "\n"
    "  --admin ADDR          the operators' address (HOST:PORT) for /_slipway/; none by default\n"
    "  --access-log PATH     one line per request to PATH ('-' for stdout); off by default\n"
    "  --workers N           worker threads (default: one per core)\n"
    "  --header-timeout D    a request head must arrive within D (default 10s)\n"
    "  --idle-timeout D      idle keep-alive connections close after D (default 60s)\n"
    "  --max-connections N   beyond N open connections answer 503 (default 10000)\n"
    "  --poll D              how often environment state is checked (default 50ms)\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop accepting and finish in-flight requests (up to\n"
    "10s) then exit 0; SIGHUP reloads the environment files.\n";

struct args {
    struct edge_opts o;
    int bad;
    const char *badopt;
};

static int duration_opt(const char *arg, int64_t *ms)
{
    return duration_parse(arg, ms) == 0 && *ms > 0 ? 0 : -1;
}

static int opt(int c, const char *arg, void *ctx)
{
    struct args *a = ctx;
    char *end = NULL;
    long n;
    switch (c) {
    case 'A':
        a->o.admin = arg;
        return 0;
    case 'L':
        a->o.access_log = arg;
        return 0;
    case 'W':
        n = strtol(arg, &end, 10);
        a->o.workers = (int)n;
        return *end || n < 1 || n > 64 ? (a->badopt = "--workers: expected 1..64", -1) : 0;
    case 'C':
        n = strtol(arg, &end, 10);
        a->o.max_connections = (int)n;
        return *end || n < 1 ? (a->badopt = "--max-connections: expected a positive number", -1)
                             : 0;
    case 'H':
        return duration_opt(arg, &a->o.header_timeout_ms) ? (a->badopt = "--header-timeout: "
                                                                         "expected a duration",
                                                             -1)
                                                          : 0;
    case 'I':
        return duration_opt(arg, &a->o.idle_timeout_ms)
                   ? (a->badopt = "--idle-timeout: expected a duration", -1)
                   : 0;
    case 'P':
        return duration_opt(arg, &a->o.poll_ms) ? (a->badopt = "--poll: expected a duration", -1)
                                                : 0;
    }
    return -1;
}

static void log_line(void *arg, const char *line)
{
    (void)arg;
    struct buf b = BUF_INIT;
    buf_adds(&b, "slipway serve: ");
    buf_adds(&b, line);
    buf_adds(&b, "\n");
    /* One write per line: lines from the edge's threads never interleave. */
    ssize_t ignored = write(STDERR_FILENO, b.data, b.len);
    (void)ignored;
    buf_free(&b);
}

/* Runs the edge until SIGTERM or SIGINT; SIGHUP reloads. This thread handles
 * the signals: they are blocked before the edge starts its threads, which
 * inherit the mask. */
static int serve(struct cli *cli, const struct edge_opts *o, struct sw_err *err)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct edge *e = NULL;
    int rc = edge_start(o, &e, err);
    if (rc)
        return rc;
    if (!cli->quiet)
        fprintf(stderr, "slipway serve: ready (project %s, store %s)\n", cli->project,
                store_url(cli->store));
    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig == SIGHUP) {
            struct sw_err rerr = {0};
            size_t n = 0;
            if (edge_reload(e, &n, &rerr))
                fprintf(stderr,
                        "slipway serve: reload failed, keeping the running configuration: %s\n",
                        rerr.msg);
            else
                fprintf(stderr, "slipway serve: reloaded %zu environments\n", n);
        } else if (sig == SIGTERM || sig == SIGINT) {
            break;
        }
    }
    edge_stop(e);
    return 0;
}

int cmd_serve(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {CLI_GLOBAL_OPTIONS,
                                         {"admin", required_argument, NULL, 'A'},
                                         {"access-log", required_argument, NULL, 'L'},
                                         {"workers", required_argument, NULL, 'W'},
                                         {"max-connections", required_argument, NULL, 'C'},
                                         {"header-timeout", required_argument, NULL, 'H'},
                                         {"idle-timeout", required_argument, NULL, 'I'},
                                         {"poll", required_argument, NULL, 'P'},
                                         {0}};
    struct args a = {0};
    edge_opts_init(&a.o);
    cli->usage = usage;
    int first = cli_getopt(cli, argc, argv, "", opts, opt, &a);
    if (first < 0) {
        if (a.badopt)
            return cli_usage_error(cli, "%s", a.badopt);
        return -first - 1;
    }
    if (first != argc)
        return cli_usage_error(cli, "unexpected argument '%s'", argv[first]);
    struct sw_err err = {0};
    int rc = cli_project(cli, &err);
    if (!rc)
        rc = cli_store(cli, &err);
    if (rc)
        return cli_fail(&err);
    char *envs = path_join(cli->project, ".slipway/environments");
    char *cache = path_join(cli->project, ".slipway/cache/blobs");
    a.o.envs_dir = envs;
    a.o.cache_dir = cache;
    a.o.store = cli->store;
    a.o.log = log_line;
    rc = serve(cli, &a.o, &err);
    free(envs);
    free(cache);
    return rc ? cli_fail(&err) : EXIT_OK;
}
