/*
 * slipway — continuous delivery for static sites and build artifacts.
 * The entry point only finds the command; everything else is in src/cmd/.
 */
#include "cmd/cmd.h"

#include <stdio.h>
#include <string.h>

#define SLIPWAY_VERSION "0.1.0"

struct command {
    const char *name;
    int (*fn)(int, char **, struct cli *);
    const char *summary;
};

static const struct command commands[] = {
    {"init", cmd_init, "scaffold .slipway/ in a project"},
    {"release", cmd_release, "create a release from a directory"},
    {"releases", cmd_releases, "list releases"},
    {"diff", cmd_diff, "compare two releases"},
    {"deploy", cmd_deploy, "deploy a directory or release to an environment"},
    {"switch", cmd_switch, "make the idle slot of a blue-green environment live"},
    {"rollback", cmd_rollback, "go back to the previous (or a given) release"},
    {"status", cmd_status, "show environments, slots and releases"},
    {"history", cmd_history, "show the changes made to an environment"},
    {"audit", cmd_audit, "copy the audit log to another store (a logs bucket)"},
    {"gc", cmd_gc, "delete releases and bodies nothing needs any more"},
    {"infra", cmd_infra, "provision an s3:// store's bucket and check it for drift"},
    {"serve", cmd_serve, "serve every environment's live and preview slots"},
    {"expr", cmd_expr, "evaluate a GitHub Actions expression as the runner would"},
    {"workflow", cmd_workflow, "check workflow files as the runner loads them, run them"},
    {"run", cmd_run, "list, view and cancel workflow runs"},
    {"approve", cmd_approve, "approve or reject a run's job waiting at its environment's gate"},
    {"runner", cmd_runner, "run queued workflow runs from the store"},
    {"scan", cmd_scan, "find committed secrets in a tree"},
    {"hook", cmd_hook, "install the git push hook that queues pipelines"},
    {"alerts", cmd_alerts, "show each alert rule's state per environment; check alerts.yml"},
    {"metrics", cmd_metrics, "show an environment's request rate, errors and latency history"},
    {"top", cmd_top, "watch every environment's traffic, errors and latency live"},
    {"incidents", cmd_incidents, "show the alerts that fired: notified, rolled back, resolved"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(*commands))

static int run(struct cli *cli, int argc, char **argv)
{
    int version = 0;
    const struct cli_option opts[] = {
        OPT_BOOL(0, "version", &version, "print the version"),
        OPT_END(),
    };
    struct buf list = BUF_INIT;
    buf_adds(&list, "Commands:\n");
    for (size_t c = 0; c < NCOMMANDS; c++)
        buf_addf(&list, "  %-10s %s\n", commands[c].name, commands[c].summary);
    buf_adds(&list,
             "\n'slipway COMMAND --help' (or 'slipway help COMMAND') shows a command's options.\n"
             "Exit codes: 0 success, 1 failure, 2 usage error.\n");
    const struct cli_usage u = {
        .usage = "slipway [--project DIR] [--store URL] [--json] [--quiet] COMMAND [ARGS]",
        .epilog = list.data,
        .max_args = -1,
        .flags = CLI_TOP,
    };
    int rc = EXIT_OK, n = cli_parse_options(cli, &u, opts, argc, argv);
    if (n < 0) {
        rc = CLI_EXIT(n);
        goto out;
    }
    if (version || (n && !strcmp(argv[0], "version"))) {
        cli_printf(stdout, "slipway %s\n", SLIPWAY_VERSION);
        goto out;
    }
    if (n == 0 || (n == 1 && !strcmp(argv[0], "help"))) {
        cli_print_help(cli, &u, opts, n ? stdout : stderr);
        rc = n ? EXIT_OK : EXIT_USAGE;
        goto out;
    }
    if (!strcmp(argv[0], "help")) {
        /* "slipway help deploy" is "slipway deploy --help" */
        static char help_flag[] = "--help";
        argv[0] = argv[1];
        argv[1] = help_flag;
    }
    const char *names[NCOMMANDS];
    for (size_t c = 0; c < NCOMMANDS; c++) {
        names[c] = commands[c].name;
        if (!strcmp(commands[c].name, argv[0])) {
            cli->cmd = commands[c].name;
            /* The commands that read and build whole manifests and stat caches, run and exit
             * (not serve, runner or top, which stay up and hold their memory). */
            if (!strcmp(argv[0], "release") || !strcmp(argv[0], "deploy") || !strcmp(argv[0], "gc"))
                sys_malloc_for_batch();
            rc = commands[c].fn(n, argv, cli);
            goto out;
        }
    }
    const char *near = cli_closest(argv[0], names, NCOMMANDS);
    if (near)
        cli_printf(stderr,
                   "slipway: '%s' is not a command; did you mean '%s'? See 'slipway --help'.\n",
                   argv[0], near);
    else
        cli_printf(stderr, "slipway: '%s' is not a command; see 'slipway --help'\n", argv[0]);
    rc = EXIT_USAGE;
out:
    buf_free(&list);
    return rc;
}

int main(int argc, char **argv)
{
    struct cli cli = {0};
    int rc = run(&cli, argc, argv);
    cli_free(&cli);
    if (fflush(stdout) != 0 && rc == EXIT_OK) {
        perror("slipway: stdout");
        rc = EXIT_FAIL;
    }
    return rc;
}
