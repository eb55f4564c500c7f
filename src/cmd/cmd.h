/*
 * cmd — the command-line interface: one file per command, each defining
 * `int cmd_<name>(int argc, char **argv, struct cli *cli)`, dispatched from the
 * table in src/main.c. Commands parse arguments, call modules and print; they
 * hold no business logic. Only this layer prints or picks exit codes:
 * 0 success, 1 failure, 2 usage error.
 */
#ifndef SW_CMD_H
#define SW_CMD_H

#include "base/base.h"
#include "deploy/deploy.h"
#include "store/store.h"

#include <getopt.h>
#include <jansson.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Global options and the lazily opened project and store. */
struct cli {
    const char *project_opt; /* --project */
    const char *store_opt;   /* --store */
    int json, quiet;
    const char *cmd;   /* the command being run, for messages */
    const char *usage; /* its help text */
    char *project;     /* directory holding .slipway/ (resolved) */
    struct store *store;
};

/* Long options every command accepts, before or after its name. */
#define CLI_GLOBAL_OPTIONS                                                                         \
    {"project", required_argument, NULL, 0x100}, {"store", required_argument, NULL, 0x101},        \
        {"json", no_argument, NULL, 0x102}, {"quiet", no_argument, NULL, 'q'},                     \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

/* Parses argv with getopt_long: command options go to handle(), global ones to
 * cli. Returns the index of the first operand (>= 1), or, when the command must
 * stop (after --help, or a usage error already reported), -1 - exit code. */
typedef int (*cli_opt_fn)(int opt, const char *arg, void *ctx);
int cli_getopt(struct cli *cli, int argc, char **argv, const char *shortopts,
               const struct option *longopts, cli_opt_fn handle, void *ctx);

/* A cli_opt_fn for a command whose one option is a string: stores arg in
 * *(const char **)ctx. */
int cli_opt_string(int opt, const char *arg, void *ctx);

/* Finds the project (--project, else the nearest ancestor with .slipway/). */
int cli_project(struct cli *cli, struct sw_err *err);
/* Opens the store: --store, else $SLIPWAY_STORE, else <project>/.slipway/data. */
int cli_store(struct cli *cli, struct sw_err *err);
/* Loads <project>/.slipway/environments/<name>.yml; an unknown name lists the known ones. */
int cli_env(struct cli *cli, const char *name, struct env_config **out, struct sw_err *err);
/* All environments of the project. */
int cli_envs(struct cli *cli, struct env_config ***out, size_t *n, struct sw_err *err);

/* Prints "slipway: <msg>" to stderr and returns EXIT_FAIL. */
int cli_fail(const struct sw_err *err);
/* Prints "slipway <cmd>: <msg>" and a hint to stderr; returns EXIT_USAGE. */
int cli_usage_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints human output unless --quiet. */
void cli_say(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints a JSON document on stdout and frees it. */
void cli_print_json(json_t *doc);
/* Formats a size: "1.5 MB". */
void cli_human_size(uint64_t n, char *out, size_t outlen);
void cli_free(struct cli *cli);
/* Prints what a deploy, switch or rollback did (human or JSON). */
void cli_print_change(struct cli *cli, const struct env_config *env, const char *release,
                      const struct deploy_result *r);
/* Creates a release from dir (shared by release create and deploy DIR);
 * *id is the new id (caller frees). */
int cmd_release_create_dir(struct cli *cli, const char *dir, const char *message, char **id,
                           struct sw_err *err);

int cmd_init(int argc, char **argv, struct cli *cli);
int cmd_release(int argc, char **argv, struct cli *cli);
int cmd_releases(int argc, char **argv, struct cli *cli);
int cmd_diff(int argc, char **argv, struct cli *cli);
int cmd_deploy(int argc, char **argv, struct cli *cli);
int cmd_switch(int argc, char **argv, struct cli *cli);
int cmd_rollback(int argc, char **argv, struct cli *cli);
int cmd_status(int argc, char **argv, struct cli *cli);
int cmd_history(int argc, char **argv, struct cli *cli);
int cmd_gc(int argc, char **argv, struct cli *cli);
int cmd_serve(int argc, char **argv, struct cli *cli);

#endif
