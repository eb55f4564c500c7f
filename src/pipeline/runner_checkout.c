/* actions/checkout: the run's commit (or with.ref) from the runner's
 * repository into the job's workspace. The run's own commit into a fresh
 * directory borrows the repository's objects instead of fetching them
 * (checkout_shared); anything else is a git init, fetch and checkout. git's
 * output goes to the step's log, masked. */
#include "pipeline/pipeline.h"
#include "pipeline/runner_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void proc_log(void *ctx, int stream, const char *line, size_t len)
{
    struct jobrun *jr = ctx;
    struct buf out = BUF_INIT;
    (void)stream;
    pipeline_step_mask(&jr->masks, line, len, &out);
    leg_line(jr->leg, time_now_ms(), PIPELINE_LOG_OUTPUT, out.data ? out.data : "", out.len);
    buf_free(&out);
}

/* Runs git with args in cwd; its output goes to the log. 0 when it exited 0. */
static int git(struct jobrun *jr, const char *cwd, const char *const *argv)
{
    struct proc_opts po = {0};
    struct proc_result pr = {0};
    struct sw_err err = {0};

    po.argv = argv;
    po.cwd = cwd;
    po.flags = PROC_MERGE | PROC_NO_CAPTURE;
    po.on_line = proc_log;
    po.ctx = jr;
    po.cancel = &jr->leg->cancel;
    if (proc_run(&po, &pr, &err) < 0) {
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "%s", err.msg);
        return -1;
    }
    int ok = pr.exited && pr.exit_code == 0;
    proc_result_free(&pr);
    return ok ? 0 : -1;
}

/* The objects directory of the repository at abs (bare: abs/objects; a
 * working tree: abs/.git/objects), or NULL when it is neither (a .git file of
 * a linked worktree, say) or its path could not be one line of a git
 * alternates file. Caller frees. */
static char *repo_objects(const char *abs)
{
    struct stat sb;
    char *head = path_join(abs, "HEAD"), *dot = path_join(abs, ".git");
    char *objects = NULL;
    /* .git first: a working tree may hold a file named HEAD */
    if (lstat(dot, &sb) == 0 && S_ISDIR(sb.st_mode))
        objects = path_join(dot, "objects");
    else if (stat(head, &sb) == 0 && S_ISREG(sb.st_mode))
        objects = path_join(abs, "objects");
    free(head);
    free(dot);
    if (objects && (stat(objects, &sb) < 0 || !S_ISDIR(sb.st_mode) || strchr(objects, '\n'))) {
        free(objects);
        objects = NULL;
    }
    return objects;
}

/* Writes text to a new file path (a git metadata file of the workspace: no
 * durability is owed, so no fsync). */
static int write_new(const char *path, const char *text, struct sw_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return sw_err_sys(err, errno, "%s", path);
    int e = fd_write_all(fd, text, strlen(text));
    if (close(fd) < 0 && !e)
        e = -errno;
    return e ? sw_err_sys(err, -e, "%s", path) : 0;
}

/* The run's own commit into a new repository at dir, without a fetch: the
 * repository's objects are borrowed (an alternates file, as `git clone
 * --shared` writes) and depth 1 is made as a fetch --depth=1 makes it, by
 * listing the commit in .git/shallow. A fetch would spawn half a dozen
 * processes (upload-pack, pack-objects, index-pack, a connectivity check,
 * maintenance) to copy objects the runner can read where they are. */
static int checkout_shared(struct jobrun *jr, const char *dir, const char *objects, const char *sha,
                           long depth, struct sw_err *err)
{
    const char *init[] = {"git", "init", "-q", ".", NULL};
    const char *co[] = {"git", "checkout", "-q", "--force", "--detach", sha, NULL};
    char *alt = path_join(dir, ".git/objects/info/alternates");
    char *shallow = path_join(dir, ".git/shallow");
    char *line = xasprintf("%s\n", objects), *sline = xasprintf("%s\n", sha);
    int rc = 0;
    if (git(jr, dir, init) < 0) {
        rc = sw_err_set(err, SW_EIO, "actions/checkout: git failed (see above)");
        goto out;
    }
    char *info = path_join(dir, ".git/objects/info");
    rc = fs_mkdir_p(info, err);
    free(info);
    if (rc || (rc = write_new(alt, line, err)) ||
        (depth == 1 && (rc = write_new(shallow, sline, err))))
        goto out;
    if (git(jr, dir, co) < 0)
        rc = sw_err_set(err, SW_EIO, "actions/checkout: git failed (see above)");
out:
    free(alt);
    free(shallow);
    free(line);
    free(sline);
    return rc;
}

/* The step's with: ref, path and fetch-depth (*n, 1 when not given),
 * evaluated. */
static int checkout_with(struct jobrun *jr, const struct pipeline_step *step, const json_t *values,
                         char **ref, char **path, long *n, struct sw_err *err)
{
    const struct pipeline_val *v;
    char *depth = NULL;
    int rc = -1;

    if ((v = pipeline_map_get(&step->with, "ref")) &&
        runner_eval_text(v, values, jr_status(jr), jr->workspace, ref, err) < 0)
        goto out;
    if ((v = pipeline_map_get(&step->with, "path")) &&
        runner_eval_text(v, values, jr_status(jr), jr->workspace, path, err) < 0)
        goto out;
    if ((v = pipeline_map_get(&step->with, "fetch-depth")) &&
        runner_eval_text(v, values, jr_status(jr), jr->workspace, &depth, err) < 0)
        goto out;
    if (depth && *depth) {
        char *end;
        errno = 0;
        *n = strtol(depth, &end, 10);
        if (errno || *end || *n < 0) {
            sw_err_set(err, SW_EINVAL, "fetch-depth: expected a whole number, got '%s'", depth);
            goto out;
        }
    }
    rc = 0;
out:
    free(depth);
    return rc;
}

/* want (a ref or commit) fetched from url into a repository made at dir,
 * n deep (0: whole), and checked out. */
static int checkout_fetch(struct jobrun *jr, const char *dir, const char *url, const char *want,
                          long n, struct sw_err *err)
{
    char dflag[32];
    snprintf(dflag, sizeof(dflag), "--depth=%ld", n);
    const char *init[] = {"git", "init", "-q", ".", NULL};
    const char *fetch_shallow[] = {"git", "fetch", "-q", "--no-tags", dflag, url, want, NULL};
    const char *fetch_full[] = {"git", "fetch", "-q", "--no-tags", url, want, NULL};
    const char *co[] = {"git", "checkout", "-q", "--force", "--detach", "FETCH_HEAD", NULL};
    if (git(jr, dir, init) < 0 || git(jr, dir, n ? fetch_shallow : fetch_full) < 0 ||
        git(jr, dir, co) < 0)
        return sw_err_set(err, SW_EIO, "actions/checkout: git failed (see above)");
    return 0;
}

/* actions/checkout: the run's commit (or with.ref), fetched from the
 * repository into the workspace (or with.path under it), fetch-depth deep. */
enum pipeline_step_outcome jr_checkout(struct jobrun *jr, const struct pipeline_step *step,
                                       const json_t *values)
{
    struct runner *rn = jr->rn;
    char *ref = NULL, *path = NULL, *dir = NULL, *url = NULL, *abs = NULL;
    char *objects = NULL;
    struct sw_err err = {0};
    enum pipeline_step_outcome out = PIPELINE_STEP_FAILURE;
    long n = 1;

    if (checkout_with(jr, step, values, &ref, &path, &n, &err) < 0)
        goto fail;
    if (!rn->o->repo) {
        sw_err_set(&err, SW_EINVAL, "actions/checkout: this runner has no repository to check out");
        goto fail;
    }
    if (!(dir = runner_inside(jr->workspace, path, &err)))
        goto fail;
    abs = realpath(rn->o->repo, NULL);
    if (!abs) {
        sw_err_sys(&err, errno, "actions/checkout: %s", rn->o->repo);
        goto fail;
    }
    url = xasprintf("file://%s", abs);
    if (fs_mkdir_p(dir, &err) < 0)
        goto fail;
    const char *want = ref && *ref ? ref : rn->sha;
    if (want[0] == '-' || strchr(want, '\n')) { /* never an option of git fetch */
        sw_err_set(&err, SW_EINVAL, "actions/checkout: ref '%s' is not a ref", want);
        goto fail;
    }
    leg_say(jr->leg, &jr->masks, PIPELINE_LOG_OUTPUT, "Fetching %s of %s into %s", want, abs, dir);
    /* The run's own commit, whole or one deep, into a directory that is not a
     * repository yet: no fetch. A ref to resolve, another depth or a second
     * checkout into the same directory fetch as before. */
    char *dotgit = path_join(dir, ".git");
    struct stat sb;
    int fresh = lstat(dotgit, &sb) < 0 && errno == ENOENT;
    free(dotgit);
    int own = !(ref && *ref); /* want is the run's commit, a full hash */
    objects = fresh && own && strlen(want) == 40 && (n == 0 || n == 1) ? repo_objects(abs) : NULL;
    if (objects ? checkout_shared(jr, dir, objects, want, n, &err) < 0
                : checkout_fetch(jr, dir, url, want, n, &err) < 0)
        goto fail;
    out = PIPELINE_STEP_SUCCESS;
    goto out;
fail:
    leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "%s", err.msg);
out:
    free(ref);
    free(path);
    free(dir);
    free(url);
    free(abs);
    free(objects);
    return out;
}
