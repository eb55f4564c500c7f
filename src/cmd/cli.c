/*
 * Shared plumbing of the commands: option parsing with the global options
 * mixed in (so they work before or after the command name), finding the
 * project, opening the store, and the few output helpers.
 */
#include "cmd/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_getopt(struct cli *cli, int argc, char **argv, const char *shortopts,
               const struct option *longopts, cli_opt_fn handle, void *ctx)
{
    struct buf so = BUF_INIT;
    buf_addf(&so, ":%sqh", shortopts ? shortopts : "");
    optind = 1;
    opterr = 0;
    int c, rc = 0;
    while ((c = getopt_long(argc, argv, so.data, longopts, NULL)) != -1) {
        switch (c) {
        case 0x100:
            cli->project_opt = optarg;
            break;
        case 0x101:
            cli->store_opt = optarg;
            break;
        case 0x102:
            cli->json = 1;
            break;
        case 'q':
            cli->quiet = 1;
            break;
        case 'h':
            fputs(cli->usage, stdout);
            rc = -1 - EXIT_OK;
            goto out;
        case ':':
            rc = -1 - cli_usage_error(cli, "option '%s' needs a value", argv[optind - 1]);
            goto out;
        case '?':
            rc = -1 - cli_usage_error(cli, "unknown option '%s'", argv[optind - 1]);
            goto out;
        default:
            if (!handle || handle(c, optarg, ctx) != 0) {
                rc = -1 - EXIT_USAGE;
                goto out;
            }
        }
    }
    rc = optind;
out:
    buf_free(&so);
    return rc;
}

int cli_opt_string(int opt, const char *arg, void *ctx)
{
    *(const char **)ctx = arg;
    return 0;
}

int cli_usage_error(struct cli *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "slipway %s: ", cli->cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'slipway %s --help')\n", cli->cmd);
    return EXIT_USAGE;
}

int cli_fail(const struct sw_err *err)
{
    fprintf(stderr, "slipway: %s\n", err->msg[0] ? err->msg : "failed");
    return EXIT_FAIL;
}

void cli_say(struct cli *cli, const char *fmt, ...)
{
    if (cli->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
}

void cli_print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) {
        puts(s);
        free(s);
    }
    json_decref(doc);
}

void cli_human_size(uint64_t n, char *out, size_t outlen)
{
    if (n < 1024)
        snprintf(out, outlen, "%llu B", (unsigned long long)n);
    else if (n < 1024 * 1024)
        snprintf(out, outlen, "%.1f KiB", n / 1024.0);
    else if (n < 1024ULL * 1024 * 1024)
        snprintf(out, outlen, "%.1f MiB", n / (1024.0 * 1024));
    else
        snprintf(out, outlen, "%.2f GiB", n / (1024.0 * 1024 * 1024));
}

static int is_project(const char *dir)
{
    char *p = path_join(dir, ".slipway");
    struct stat sb;
    int ok = stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
    free(p);
    return ok;
}

int cli_project(struct cli *cli, struct sw_err *err)
{
    if (cli->project)
        return 0;
    if (cli->project_opt) {
        char *real = realpath(cli->project_opt, NULL);
        if (!real)
            return sw_err_sys(err, errno, "--project %s", cli->project_opt);
        if (!is_project(real)) {
            free(real);
            return sw_err_set(err, SW_ENOTFOUND,
                              "%s is not a slipway project (no .slipway/ folder); run 'slipway "
                              "init %s'",
                              cli->project_opt, cli->project_opt);
        }
        cli->project = real;
        return 0;
    }
    char *dir = getcwd(NULL, 0);
    if (!dir)
        return sw_err_sys(err, errno, "getcwd");
    for (;;) {
        if (is_project(dir)) {
            cli->project = dir;
            return 0;
        }
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) {
            if (slash && dir[1] && (dir[1] = '\0', is_project(dir))) {
                cli->project = dir;
                return 0;
            }
            break;
        }
        *slash = '\0';
    }
    free(dir);
    return sw_err_set(err, SW_ENOTFOUND,
                      "not in a slipway project (no .slipway/ here or in any parent); run "
                      "'slipway init' or pass --project DIR");
}

int cli_store(struct cli *cli, struct sw_err *err)
{
    if (cli->store)
        return 0;
    const char *url = cli->store_opt;
    if (!url || !*url)
        url = getenv("SLIPWAY_STORE");
    int rc;
    if (url && *url) {
        rc = store_open(url, &cli->store, err);
    } else {
        if ((rc = cli_project(cli, err)))
            return rc;
        char *path = path_join(cli->project, ".slipway/data");
        rc = store_open(path, &cli->store, err);
        free(path);
    }
    return rc;
}

static char *envs_dir(struct cli *cli)
{
    return path_join(cli->project, ".slipway/environments");
}

int cli_envs(struct cli *cli, struct env_config ***out, size_t *n, struct sw_err *err)
{
    int rc = cli_project(cli, err);
    if (rc)
        return rc;
    char *dir = envs_dir(cli);
    rc = env_configs_load_dir(dir, out, n, err);
    free(dir);
    return rc;
}

int cli_env(struct cli *cli, const char *name, struct env_config **out, struct sw_err *err)
{
    int rc = env_name_check(name, err);
    if (rc || (rc = cli_project(cli, err)))
        return rc;
    char *dir = envs_dir(cli);
    char *file = xasprintf("%s/%s.yml", dir, name);
    if (access(file, F_OK) != 0) {
        char *alt = xasprintf("%s/%s.yaml", dir, name);
        if (access(alt, F_OK) == 0) {
            free(file);
            file = alt;
        } else {
            free(alt);
        }
    }
    if (access(file, F_OK) != 0) {
        struct env_config **all = NULL;
        size_t n = 0;
        struct buf names = BUF_INIT;
        if (env_configs_load_dir(dir, &all, &n, NULL) == 0)
            for (size_t i = 0; i < n; i++)
                buf_addf(&names, "%s%s", i ? ", " : "", all[i]->name);
        env_configs_free(all, n);
        rc = sw_err_set(err, SW_ENOTFOUND, "unknown environment '%s' (no %s; known: %s)", name,
                        file, names.len ? names.data : "none");
        buf_free(&names);
    } else {
        rc = env_config_load(file, out, err);
    }
    free(file);
    free(dir);
    return rc;
}

void cli_free(struct cli *cli)
{
    store_free(cli->store);
    free(cli->project);
}

void cli_print_change(struct cli *cli, const struct env_config *env, const char *release,
                      const struct deploy_result *r)
{
    const char *slot = deploy_slot_name(r->slot);
    if (cli->json) {
        cli_print_json(json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:I}", "env", env->name,
                                 "action", r->action, "release",
                                 release ? json_string(release) : json_null(), "from",
                                 r->from ? json_string(r->from) : json_null(), "to",
                                 r->to ? json_string(r->to) : json_null(), "slot",
                                 slot ? json_string(slot) : json_null(), "switched", r->switched,
                                 "generation", (json_int_t)r->generation));
        return;
    }
    const char *from = r->from ? r->from : "(nothing)";
    if (!r->switched) {
        cli_say(cli,
                "%s: %s deployed to the idle %s slot%s%s; live is still %s.\n"
                "Run 'slipway switch %s' to make it live.\n",
                env->name, release, slot, env->preview ? ", preview on " : "",
                env->preview ? env->preview : "", from, env->name);
        return;
    }
    const char *verb = !strcmp(r->action, "rollback") ? "rolled back"
                       : !strcmp(r->action, "switch") ? "switched"
                                                      : "deployed";
    if (slot)
        cli_say(cli, "%s: %s %s -> %s (live slot: %s)\n", env->name, verb, from, r->to, slot);
    else
        cli_say(cli, "%s: %s %s -> %s\n", env->name, verb, from, r->to);
}
