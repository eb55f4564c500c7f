/* slipway init [DIR]: scaffold .slipway/ with dev (direct) and staging (blue-green). */
#include "cmd/cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct cli_usage usage = {
    .usage = "slipway init [DIR]",
    .about = "Creates DIR/.slipway/ (DIR defaults to the current directory):\n"
             "  environments/dev.yml      strategy: direct, listen 127.0.0.1:8081\n"
             "  environments/staging.yml  strategy: blue-green, listen 127.0.0.1:8082,\n"
             "                            preview 127.0.0.1:9082\n"
             "  pipelines/                workflow files (see docs/pipelines.md)\n"
             "  data/                     the embedded store (or the one --store names)\n"
             "  .gitignore                keeps data/ and cache/ out of git\n"
             "Existing files are left alone, so running it twice is harmless.\n",
    .max_args = 1,
};

static const char dev_yml[] = "# The dev environment: every deploy goes live at once.\n"
                              "strategy: direct\n"
                              "listen: 127.0.0.1:8081\n"
                              "keep_previous: 24h\n"
                              "retain_releases: 20\n";

static const char staging_yml[] =
    "# The staging environment: deploys go to the idle slot, served on preview;\n"
    "# 'slipway switch staging' makes it live, 'slipway rollback staging' flips back.\n"
    "strategy: blue-green\n"
    "listen: 127.0.0.1:8082\n"
    "preview: 127.0.0.1:9082\n"
    "keep_previous: 24h\n"
    "retain_releases: 20\n";

/* The project's files are the user's, made as git init makes its own: 0777
 * for directories and 0666 for files, less the umask. (A temporary file, as
 * fs_write_atomic makes, is 0600 whatever the umask says.) Nothing is
 * chmod'ed afterwards, so nothing ends up more open than the umask allows. */
static int make_dir(const char *path, struct sw_err *err)
{
    if (mkdir(path, 0777) < 0 && errno != EEXIST)
        return sw_err_sys(err, errno, "%s", path);
    return 0;
}

/* Creates dir/name holding body unless it exists. It is written under a
 * temporary name and linked into place, so it appears whole or not at all,
 * and link(2), unlike rename(2), never replaces a file made meanwhile. */
static int write_new(const char *dir, const char *name, const char *body, int *created,
                     struct sw_err *err)
{
    char *path = path_join(dir, name);
    char *tmp = xasprintf("%s.tmp-%d", path, (int)getpid());
    int rc = 0, e = 0, fd = -1;
    if (access(path, F_OK) == 0)
        goto out;
    unlink(tmp); /* a leftover of a killed init with our pid */
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666)) < 0) {
        rc = sw_err_sys(err, errno, "%s", path);
        goto out;
    }
    e = fd_write_all(fd, body, strlen(body));
    if (!e && fsync(fd) < 0)
        e = -errno;
    if (close(fd) < 0 && !e)
        e = -errno;
    if (!e && link(tmp, path) < 0)
        e = errno == EEXIST ? 0 : -errno; /* made meanwhile: left alone */
    else if (!e)
        *created += 1;
    unlink(tmp);
    if (e)
        rc = sw_err_sys(err, -e, "%s", path);
    else
        rc = fs_fsync_dir(dir, err);
out:
    free(tmp);
    free(path);
    return rc;
}

int cmd_init(int argc, char **argv, struct cli *cli)
{
    const struct cli_option opts[] = {OPT_END()};
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    const char *dir = argc ? argv[0] : ".";
    struct sw_err err = {0};
    char *root = path_join(dir, ".slipway");
    char *envs = path_join(root, "environments");
    char *pipes = path_join(root, "pipelines");
    char *data = path_join(root, "data");
    int had_data = access(data, F_OK) == 0;
    int created = 0, rc;
    if ((rc = fs_mkdir_p(dir, &err)) || (rc = make_dir(root, &err)) ||
        (rc = make_dir(envs, &err)) || (rc = make_dir(pipes, &err)) ||
        (rc = write_new(envs, "dev.yml", dev_yml, &created, &err)) ||
        (rc = write_new(envs, "staging.yml", staging_yml, &created, &err)) ||
        (rc = write_new(root, ".gitignore", "data/\ncache/\n", &created, &err)) ||
        (rc = write_new(pipes, ".keep", "", &created, &err)))
        goto out;
    /* The store too (--store, $SLIPWAY_STORE or .slipway/data): commands that
     * only read never create one, so a new project must have it. */
    if (!(cli->project = realpath(dir, NULL))) {
        rc = sw_err_sys(&err, errno, "%s", dir);
        goto out;
    }
    if ((rc = cli_store(cli, CLI_STORE_WRITE, &err)))
        goto out;
    created += !had_data && access(data, F_OK) == 0;
    if (cli->json)
        cli_print_json(json_pack("{s:s, s:b}", "project", cli->project, "created", created > 0));
    else if (created)
        cli_say(cli, "initialised %s (environments: dev, staging)\n", root);
    else
        cli_say(cli, "%s already initialised; nothing changed\n", root);
out:
    free(data);
    free(pipes);
    free(envs);
    free(root);
    return rc ? cli_fail(&err) : EXIT_OK;
}
