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
#include "pipeline/pipeline.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Global options and the lazily opened project and store. */
struct cli {
    const char *project_opt; /* --project */
    const char *store_opt;   /* --store */
    int json, quiet;
    const char *cmd; /* the command being run, for messages; NULL before it is known */
    int concurrency; /* --concurrency of the commands that upload; 0: the store's default */
    /* --pack / --no-pack of the commands that make releases (release_create_opts.pack);
     * neither: packs on a remote store (cmd_release_create_dir). */
    int pack, no_pack;
    char *project; /* directory holding .slipway/ (resolved) */
    struct store *store;
};

/* ---- options, declared as a table (git's parse-options) --------------------- */

enum cli_opt_type {
    CLI_OPT_END,
    CLI_OPT_BOOL,     /* int *: set to 1 */
    CLI_OPT_STRING,   /* const char **: points into argv */
    CLI_OPT_INT,      /* int *: a whole number within [min, max] */
    CLI_OPT_DURATION, /* int64_t *: "90s", "1h30m" (duration_parse) in ms, at least min */
    CLI_OPT_SIZE,     /* uint64_t *: "512M", "10GiB" (size_parse) in bytes, at least min */
    CLI_OPT_HELP,     /* prints the generated help and stops with exit 0 */
    CLI_OPT_LIST,     /* struct cli_list *: every value given, in order (repeatable) */
};

/* The values of a repeatable option (CLI_OPT_LIST): they point into argv;
 * the caller frees v (free(list.v)). */
struct cli_list {
    const char **v;
    size_t n;
};

struct cli_option {
    enum cli_opt_type type;
    int short_name;        /* 'e' for -e, or 0 */
    const char *long_name; /* "env" for --env */
    void *value;           /* where the value goes; the macros check its type */
    const char *argh;      /* the value's name in --help: "ENV" */
    const char *help;      /* its line in --help; '\n' continues on the next line */
    int64_t min, max;      /* CLI_OPT_INT, _DURATION, _SIZE: the accepted range */
};

/* (1 ? (v) : (T *)0) fails to compile (pointer type mismatch) unless v is a T *. */
#define CLI_OPT_PTR_(T, v) ((void *)(1 ? (v) : (T *)0))
#define OPT_END()                                                                                  \
    {                                                                                              \
        CLI_OPT_END, 0, NULL, NULL, NULL, NULL, 0, 0                                               \
    }
#define OPT_BOOL(s, l, v, h)                                                                       \
    {                                                                                              \
        CLI_OPT_BOOL, (s), (l), CLI_OPT_PTR_(int, v), NULL, (h), 0, 0                              \
    }
#define OPT_STRING(s, l, v, a, h)                                                                  \
    {                                                                                              \
        CLI_OPT_STRING, (s), (l), CLI_OPT_PTR_(const char *, v), (a), (h), 0, 0                    \
    }
#define OPT_INT(s, l, v, a, lo, hi, h)                                                             \
    {                                                                                              \
        CLI_OPT_INT, (s), (l), CLI_OPT_PTR_(int, v), (a), (h), (lo), (hi)                          \
    }
#define OPT_DURATION(s, l, v, a, lo, h)                                                            \
    {                                                                                              \
        CLI_OPT_DURATION, (s), (l), CLI_OPT_PTR_(int64_t, v), (a), (h), (lo), INT64_MAX            \
    }
#define OPT_SIZE(s, l, v, a, lo, h)                                                                \
    {                                                                                              \
        CLI_OPT_SIZE, (s), (l), CLI_OPT_PTR_(uint64_t, v), (a), (h), (lo), INT64_MAX               \
    }
#define OPT_LIST(s, l, v, a, h)                                                                    \
    {                                                                                              \
        CLI_OPT_LIST, (s), (l), CLI_OPT_PTR_(struct cli_list, v), (a), (h), 0, 0                   \
    }
#define OPT_HELP()                                                                                 \
    {                                                                                              \
        CLI_OPT_HELP, 'h', "help", NULL, NULL, "help for slipway or for COMMAND", 0, 0             \
    }

/* What --help says about a command, around its generated option table. */
struct cli_usage {
    const char *usage;      /* one line: "slipway diff A B" */
    const char *about;      /* paragraphs before the options ('\n'-terminated), or NULL */
    const char *epilog;     /* paragraphs after them, or NULL */
    int min_args, max_args; /* operands the usage line takes; max_args -1: no limit */
    unsigned flags;
};
/* cli_usage flags */
enum {
    /* The top level ("slipway [global options] COMMAND ..."): stop at the first
     * operand, the command, and list the global options in full in --help. */
    CLI_TOP = 1 << 0,
};

/* Parses argv[1..argc) against opts and the global options (--project,
 * --store, --json, --quiet, --help; one table, so they work before and after
 * the command name): "--opt=value", "--opt value", unique abbreviations of
 * long names, "-e value", "-evalue" and bundled flags ("-qs"); "--" ends the
 * options. The operands are moved, in order, to argv[0..n) and their count n
 * is checked against u; returns n. When the command must stop instead (after
 * --help, or a usage error already reported on one line) returns CLI_EXIT(code). */
int cli_parse_options(struct cli *cli, const struct cli_usage *u, const struct cli_option *opts,
                      int argc, char **argv);
/* Maps an exit code to what cli_parse_options returns to stop, and back (it is
 * its own inverse): `if (n < 0) return CLI_EXIT(n);`. */
#define CLI_EXIT(n) (-1 - (n))
/* Writes the help generated from u and opts to f. */
void cli_print_help(struct cli *cli, const struct cli_usage *u, const struct cli_option *opts,
                    FILE *f);
/* The word of words[0..n) closest to word (a typo of it), or NULL when none is close. */
const char *cli_closest(const char *word, const char *const *words, size_t n);

/* Finds the project (--project, else the nearest ancestor with .slipway/). */
int cli_project(struct cli *cli, struct sw_err *err);
/* .slipway/cache/<prefix><16 hex digits of FNV-1a of key> in the project (which
 * cli_project found): a local cache's name. Not SHA-256, whose set-up would be
 * the first thing a deploy waits for; one a slipway before named by SHA-256's
 * first 16 hex digits is renamed to it. Caller frees. */
char *cli_cache_path(struct cli *cli, const char *prefix, const char *key);
/* Where this project keeps copies of the current store's manifests
 * (release_load_copy): cli_cache_path(cli, "manifests/", the store's URL);
 * NULL without a project, or for a store that is not remote (its manifests
 * are local files already). Caller frees. */
char *cli_manifest_copies(struct cli *cli);
/* Where changes keep the audit head as they left it (deploy_opts.head_copy):
 * cli_cache_path(cli, "head-", the store's URL); NULL for a local store or
 * without a project. Caller frees. */
char *cli_head_copy(struct cli *cli);
/* How a command uses the store: only init and commands that write may create one. */
enum cli_store_mode { CLI_STORE_READ, CLI_STORE_WRITE, CLI_STORE_WRITE_DEFERRED };
/* Opens the store: --store, else $SLIPWAY_STORE, else <project>/.slipway/data.
 * CLI_STORE_READ creates nothing: a store that does not exist is SW_ENOTFOUND,
 * "no store at PATH", so a mistyped --store is an error, not a new empty store.
 * CLI_STORE_WRITE_DEFERRED: as WRITE, but an s3 store opens on a thread of its
 * own (store_open_deferred): cli_store_ready then says how it went. */
int cli_store(struct cli *cli, enum cli_store_mode mode, struct sw_err *err);
/* Waits for a deferred open of cli->store; its failure as cli_store words it. */
int cli_store_ready(struct cli *cli, struct sw_err *err);
/* Loads <project>/.slipway/environments/<name>.yml; an unknown name lists the known ones. */
int cli_env(struct cli *cli, const char *name, struct env_config **out, struct sw_err *err);
/* All environments of the project. */
int cli_envs(struct cli *cli, struct env_config ***out, size_t *n, struct sw_err *err);

/* Every line the CLI prints goes through these. Like fprintf, except that each
 * %s and %c argument is escaped first (buf_add_escaped): names, messages, ids
 * and paths come from users and the store, and none of them may add a line,
 * rewrite one or drive the terminal. Help text and JSON are printed as they are. */
void cli_printf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "slipway: <msg>" to stderr and returns EXIT_FAIL. */
int cli_fail(const struct sw_err *err);
/* Prints one line, "slipway <cmd>: <msg>; see 'slipway <cmd> --help'", to
 * stderr and returns EXIT_USAGE. */
int cli_usage_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints human output on stdout unless --quiet. */
void cli_say(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints a JSON document on stdout and frees it. */
void cli_print_json(json_t *doc);
/* Formats a size: "1.5 MB". */
void cli_human_size(uint64_t n, char *out, size_t outlen);
void cli_free(struct cli *cli);
/* Prints what a deploy, switch or rollback did (human or JSON). */
void cli_print_change(struct cli *cli, const struct env_config *env, const char *release,
                      const struct deploy_result *r);
struct release;

/* Creates a release from dir (shared by release create and deploy DIR);
 * *id is the new id (caller frees). follow_symlinks: store what a link
 * leaving dir points to. keep_id (optional): the live release of the
 * environment deploy DIR is for (release_create_opts.keep_id); when dir holds
 * the same, *id is keep_id. Or keep_wait (optional, with keep_arg): a
 * function that gives it when it is known (release_create_opts.keep_id_wait);
 * and on_new (optional, with keep_arg): release_create_opts.on_new. When several files are refused,
 * each is printed on stderr as "slipway: PATH: why" and err becomes the summary that follows. */
int cmd_release_create_dir(struct cli *cli, const char *dir, const char *message,
                           int follow_symlinks, const char *keep_id,
                           int (*keep_wait)(void *, const char **), void (*on_new)(void *),
                           void *keep_arg, char **id, struct sw_err *err);

/* ---- the upload progress line (progress.c) ------------------------------------- */

/* What the progress line shows: files and bytes done (of the totals, once
 * counted), bytes sent to the store, time since the start. */
struct cli_progress_view {
    size_t files_done, files_total;
    uint64_t bytes_done, bytes_total;
    uint64_t sent;
    int64_t elapsed_ms;
    int counted; /* the totals are known: a bar and an ETA */
};
/* Appends the progress line for v, plain ASCII without a line break, at most
 * width - 1 columns (width <= 1: 80): "[#####---------------] 12/40 files
 * 30.0 MiB sent  5.2 MiB/s  ETA 0:17", the bar, then the ETA, then the rate
 * dropped when it does not fit. Before the totals are counted:
 * "12 files  30.0 MiB sent  5.2 MiB/s". Pure. */
void cli_progress_line(const struct cli_progress_view *v, int width, struct buf *out);
struct release_progress;
struct cli_progress;
/* Starts redrawing the progress of a release being created (rp, which it
 * resets, and cli->store's bytes sent) on stderr every 200 ms when stderr is
 * a terminal (not TERM=dumb) and neither --json nor --quiet was given; NULL,
 * drawing nothing, otherwise. Pass rp to release_create only when non-NULL
 * is returned. */
struct cli_progress *cli_progress_start(struct cli *cli, struct release_progress *rp);
/* Draws the final state, clears the line and frees p. NULL: nothing. */
void cli_progress_stop(struct cli_progress *p);

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
int cmd_audit(int argc, char **argv, struct cli *cli);
int cmd_infra(int argc, char **argv, struct cli *cli);
int cmd_serve(int argc, char **argv, struct cli *cli);
int cmd_expr(int argc, char **argv, struct cli *cli);
int cmd_workflow(int argc, char **argv, struct cli *cli);
int cmd_run(int argc, char **argv, struct cli *cli);
/* slipway approve, also `slipway run approve` (argv[0] is the command's name). */
int cmd_approve(int argc, char **argv, struct cli *cli);
/* Follows run id until it ends, printing its log lines as they come (to f),
 * and returns EXIT_OK when it succeeded, EXIT_FAIL otherwise (shared by
 * `workflow run --wait` and `run watch`). */
int cmd_run_follow(struct cli *cli, const char *id, FILE *f);
int cmd_runner(int argc, char **argv, struct cli *cli);
int cmd_scan(int argc, char **argv, struct cli *cli);
/* What a runner runs with (`runner`, `serve --runner`, `workflow run --wait`):
 * the project's .slipway/runner.yml, with the command line over it key by key. */
struct cmd_runner_settings {
    struct pipeline_runner_config file;
    const char **labels; /* NULL-terminated, or NULL: the runner's default labels */
    unsigned jobs;       /* legs run at once (at least 1) */
    int skip;            /* unsupported: skip */
    int park;            /* park runs waiting at gates (a runner serving the queue) */
};
/* Checks each --label value; EXIT_OK, or the usage error already printed. */
int cmd_runner_labels_check(struct cli *cli, const char *opt, const struct cli_list *labels);
/* Reads <project>/.slipway/runner.yml (cli_project must have run) into *out
 * and applies the options given: labels (replace the file's, and the default
 * set), jobs (0: not given), unsupported ("skip", "error", NULL: not given).
 * A bad file is SW_EINVAL with FILE:LINE:COL. Free with
 * cmd_runner_settings_free (also after an error); out->labels points into
 * labels and the file. */
int cmd_runner_settings_load(struct cli *cli, const struct cli_list *labels, int jobs,
                             const char *unsupported, struct cmd_runner_settings *out,
                             struct sw_err *err);
void cmd_runner_settings_free(struct cmd_runner_settings *s);
/* Runs a run claimed by this process to its end in workspaces under
 * $TMPDIR/slipway-runs (removed after), the repository repo, the project's
 * vars and secrets, with the settings rs, printing each log line to echo as
 * "[JOB] line" (NULL: silent). A SIGINT or SIGTERM seen by
 * cmd_signals_cancel cancels it. */
int cmd_run_execute(struct cli *cli, struct pipeline_run *claimed,
                    const struct pipeline_workflow *wf, const char *repo,
                    const struct cmd_runner_settings *rs, FILE *echo, struct sw_err *err);
/* From now on SIGINT and SIGTERM set the flag cmd_run_execute watches
 * (instead of ending the process at once). */
void cmd_signals_cancel(void);
/* Claims and runs queued runs (as `slipway runner`) until cmd_runner_stop
 * or a signal seen by cmd_signals_cancel; once: at most one. Between runs it
 * waits up to poll_ms, woken at once by a run queued in the store
 * (store_watch) or by cmd_runner_stop. Lines go to log (NULL: none). Returns EXIT_OK or EXIT_FAIL
 * (the last run's). */
int cmd_runner_loop(struct cli *cli, const char *name, const char *repo,
                    const struct cmd_runner_settings *rs, int once, int64_t poll_ms, FILE *log);
/* The default poll interval of runners (`runner --poll`, `serve --runner-poll`). */
#define CMD_RUNNER_POLL_MS 1000
int cmd_hook(int argc, char **argv, struct cli *cli);
int cmd_alerts(int argc, char **argv, struct cli *cli);
int cmd_metrics(int argc, char **argv, struct cli *cli);
int cmd_top(int argc, char **argv, struct cli *cli);
int cmd_incidents(int argc, char **argv, struct cli *cli);
/* Reads the project's MONITOR_STATUS_FILE into *st (shared by alerts and
 * top; monitor_status_clear it after 0). 0 with *live 1 when the serve that
 * wrote it still runs, else with *live 0 and the one line saying so in gone;
 * SW_ENOTFOUND without a file (err and gone say so); what the load refused
 * otherwise, naming the file. */
struct monitor_status;
int cmd_monitor_status_load(struct cli *cli, struct monitor_status *st, int *live, struct buf *gone,
                            struct sw_err *err);
/* Asks cmd_runner_loop to stop, cancelling the run it runs (any thread). */
void cmd_runner_stop(void);

/* A command made of subcommands ("slipway workflow check"): one table row each. */
struct cli_subcommand {
    const char *name;
    const char *cmd; /* "workflow check", as messages and --help name it */
    int (*fn)(int argc, char **argv, struct cli *cli);
    const char *summary;
};
/* Runs the subcommand argv[1] names from v[0..n), or answers --help (listing them) or a
 * usage error (naming the closest one). Returns the exit code. */
int cli_run_subcommand(struct cli *cli, const char *command, const char *about,
                       const struct cli_subcommand *v, size_t n, int argc, char **argv);

#endif
