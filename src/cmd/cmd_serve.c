/* slipway serve: the edge server over the project's environments. */
#include "cmd/cmd.h"
#include "edge/edge.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_usage usage = {
    .usage = "slipway serve [--admin ADDR] [--access-log PATH] [--workers N] [options]",
    .about = "Serves every environment in .slipway/environments/: the live slot on its\n"
             "'listen' address and, for blue-green, the idle slot on its 'preview' address.\n"
             "Deploys, switches and rollbacks made by any slipway process are picked up\n"
             "within one poll interval, without dropping a request.\n"
             "\n"
             "Control endpoints /_slipway/health, /_slipway/ready and /_slipway/metrics\n"
             "(Prometheus text format) answer on every listener, or only on --admin.\n",
    .epilog = "Signals: SIGTERM/SIGINT stop accepting and finish in-flight requests (up to\n"
              "10s) then exit 0; SIGHUP reloads the environment files.\n",
    .max_args = 0,
};

static void ready(void *arg)
{
    struct cli *cli = arg;
    if (!cli->quiet)
        cli_printf(stderr, "slipway serve: ready (project %s, store %s)\n", cli->project,
                   store_url(cli->store));
}

int cmd_serve(int argc, char **argv, struct cli *cli)
{
    struct edge_opts o;
    edge_opts_init(&o);
    const struct cli_option opts[] = {
        OPT_STRING(0, "admin", &o.admin, "ADDR", "serve /_slipway/ only on ADDR (HOST:PORT)"),
        OPT_STRING(0, "access-log", &o.access_log, "PATH",
                   "one line per request to PATH ('-' for stdout); off by default"),
        OPT_INT(0, "workers", &o.workers, "N", 1, 64, "worker threads (default: one per core)"),
        OPT_DURATION(0, "header-timeout", &o.header_timeout_ms, "D", 1,
                     "a request head must arrive within D (default 10s)"),
        OPT_DURATION(0, "idle-timeout", &o.idle_timeout_ms, "D", 1,
                     "idle keep-alive connections close after D (default 60s)"),
        OPT_INT(0, "max-connections", &o.max_connections, "N", 1, INT_MAX,
                "beyond N open connections answer 503 (default 10000)"),
        OPT_DURATION(0, "poll", &o.poll_ms, "D", 1,
                     "how often environment state is checked (default 50ms)"),
        OPT_END(),
    };
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    struct sw_err err = {0};
    int rc = cli_project(cli, &err);
    if (!rc)
        rc = cli_store(cli, CLI_STORE_READ, &err);
    if (rc)
        return cli_fail(&err);
    char *envs = path_join(cli->project, ".slipway/environments");
    char *cache = path_join(cli->project, ".slipway/cache/blobs");
    o.envs_dir = envs;
    o.cache_dir = cache;
    o.store = cli->store;
    o.on_ready = ready;
    o.on_ready_arg = cli;
    rc = edge_run(&o, &err);
    free(envs);
    free(cache);
    return rc ? cli_fail(&err) : EXIT_OK;
}
