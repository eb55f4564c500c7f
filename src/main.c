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
    {"gc", cmd_gc, "delete releases and bodies nothing needs any more"},
    {"serve", cmd_serve, "serve every environment's live and preview slots"},
};

static const char usage[] =
    "usage: slipway [--project DIR] [--store URL] [--json] [--quiet] COMMAND [ARGS]\n"
    "\n"
    "Global options (accepted before or after COMMAND):\n"
    "  --project DIR  the project (default: nearest directory upward with .slipway/)\n"
    "  --store URL    the store: file:///abs/path or a path (default: $SLIPWAY_STORE,\n"
    "                 else <project>/.slipway/data)\n"
    "  --json         machine-readable output (see docs/cli.md)\n"
    "  --quiet, -q    print only what scripts need\n"
    "  --help, -h     help for slipway or for COMMAND\n"
    "\n"
    "Commands:\n";

static void print_usage(FILE *f)
{
    fputs(usage, f);
    for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\nExit codes: 0 success, 1 failure, 2 usage error.\n", f);
}

int main(int argc, char **argv)
{
    struct cli cli = {0};
    int i = 1;
    /* Global options before the command name. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json"))
            cli.json = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q"))
            cli.quiet = 1;
        else if ((!strcmp(a, "--project") || !strcmp(a, "--store")) && i + 1 < argc)
            *(a[2] == 'p' ? &cli.project_opt : &cli.store_opt) = argv[++i];
        else if (!strncmp(a, "--project=", 10))
            cli.project_opt = a + 10;
        else if (!strncmp(a, "--store=", 8))
            cli.store_opt = a + 8;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_usage(stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--version")) {
            printf("slipway %s\n", SLIPWAY_VERSION);
            return EXIT_OK;
        } else {
            fprintf(stderr, "slipway: unknown option '%s'\n\n", a);
            print_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (i == argc) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[i];
    if (!strcmp(name, "help")) {
        if (i + 1 == argc) {
            print_usage(stdout);
            return EXIT_OK;
        }
        /* "slipway help deploy" is "slipway deploy --help" */
        static char help_flag[] = "--help";
        argv[i] = argv[i + 1];
        argv[i + 1] = help_flag;
        name = argv[i];
    }
    if (!strcmp(name, "version")) {
        printf("slipway %s\n", SLIPWAY_VERSION);
        return EXIT_OK;
    }
    for (size_t c = 0; c < sizeof(commands) / sizeof(*commands); c++) {
        if (strcmp(commands[c].name, name) != 0)
            continue;
        cli.cmd = name;
        int rc = commands[c].fn(argc - i, argv + i, &cli);
        cli_free(&cli);
        if (fflush(stdout) != 0 && rc == EXIT_OK) {
            perror("slipway: stdout");
            rc = EXIT_FAIL;
        }
        return rc;
    }
    fprintf(stderr, "slipway: unknown command '%s'\n\n", name);
    print_usage(stderr);
    return EXIT_USAGE;
}
