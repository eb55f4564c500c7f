/*
 * The post-receive hook slipway installs into a repository, and the list of
 * repositories a project's runners trust.
 *
 * The one idea: the hook is a two-line shell script that only execs slipway,
 * so what a push does is slipway's code, versioned with it, and the script
 * says who wrote it (a marker line), so that installing never overwrites a
 * hook someone else wrote and uninstalling never removes one.
 */
#include "pipeline/pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARKER "# slipway post-receive hook: written by 'slipway hook install'"

/* s in single quotes for sh: a quote inside becomes '\'' */
static void sh_quote(struct buf *b, const char *s)
{
    buf_adds(b, "'");
    for (; *s; s++) {
        if (*s == '\'')
            buf_adds(b, "'\\''");
        else
            buf_add(b, s, 1);
    }
    buf_adds(b, "'");
}

int pipeline_hook_script(const char *bin, const char *project, char **out, struct sw_err *err)
{
    struct buf b = BUF_INIT;
    if (!pipeline_run_repository_valid(bin) || !pipeline_run_repository_valid(project))
        return sw_err_set(err, SW_EINVAL,
                          "the hook names slipway and the project by absolute paths of printable "
                          "characters");
    buf_adds(&b, "#!/bin/sh\n" MARKER "\n");
    buf_adds(&b, "# ('slipway hook uninstall' removes it). It queues the pipelines a push\n"
                 "# triggers and returns at once; it never fails a push.\n");
    buf_adds(&b, "exec ");
    sh_quote(&b, bin);
    buf_adds(&b, " hook post-receive --project ");
    sh_quote(&b, project);
    buf_adds(&b, "\n");
    *out = buf_detach(&b, NULL);
    return 0;
}

int pipeline_hook_ours(const char *text, size_t len)
{
    /* the marker is the second line, as the script above writes it */
    const char *nl = memchr(text, '\n', len);
    size_t m = strlen(MARKER);
    if (!nl || !str_starts_with(text, "#!"))
        return 0;
    nl++;
    return (size_t)(text + len - nl) > m && !memcmp(nl, MARKER, m) && nl[m] == '\n';
}

/* ---- the project's repositories ------------------------------------------------------------- */

#define REPOS_FILE ".slipway/repositories"
#define REPOS_MAX (1u << 20)

/* The file's text, or NULL (missing, unreadable, too large). */
static char *repos_read(const char *project, size_t *len, struct sw_err *err)
{
    char *path = path_join(project, REPOS_FILE), *data = NULL;
    int rc = file_read_all(path, &data, len, err);
    free(path);
    if (rc < 0)
        return NULL;
    if (*len > REPOS_MAX) {
        free(data);
        sw_err_set(err, SW_EINVAL, "%s: larger than 1 MiB", REPOS_FILE);
        return NULL;
    }
    return data;
}

/* Calls fn for each listed path (a line without its comment and blanks). */
static int repos_each(const char *data, size_t len, int (*fn)(void *, const char *, size_t),
                      void *arg)
{
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end, *s = p;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        const char *t = e;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r'))
            t--;
        if (t > s && *s != '#' && fn(arg, s, (size_t)(t - s)))
            return 1;
        p = e + 1;
    }
    return 0;
}

static int same(void *arg, const char *s, size_t n)
{
    const char *repo = arg;
    return strlen(repo) == n && !memcmp(repo, s, n);
}

int pipeline_repos_listed(const char *project, const char *repo)
{
    size_t len = 0;
    struct sw_err err = {0};
    char *data = repos_read(project, &len, &err);
    int found =
        data && pipeline_run_repository_valid(repo) && repos_each(data, len, same, (void *)repo);
    free(data);
    return found;
}

int pipeline_repos_update(const char *project, const char *repo, int add, struct sw_err *err)
{
    size_t len = 0;
    struct sw_err rerr = {0};
    char *data, *path;
    struct buf b = BUF_INIT;
    int rc = 0;

    if (!pipeline_run_repository_valid(repo))
        return sw_err_set(err, SW_EINVAL, "a repository is an absolute path in normal form");
    data = repos_read(project, &len, &rerr);
    if (!data && rerr.code != SW_ENOTFOUND)
        return sw_err_set(err, rerr.code ? rerr.code : SW_EIO, "%s", rerr.msg);
    int listed = data && repos_each(data, len, same, (void *)repo);
    if (add == listed) {
        free(data);
        return 0;
    }
    if (!data)
        buf_adds(&b, "# Repositories whose runs this project's runners run (one absolute path a\n"
                     "# line): 'slipway hook install' adds, 'slipway hook uninstall' removes.\n");
    /* every line but repo's kept as it is */
    for (const char *p = data, *end = data ? data + len : NULL; p && p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end, *s = p, *t = e;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r'))
            t--;
        if (add || !(t > s && *s != '#' && same((void *)repo, s, (size_t)(t - s)))) {
            buf_add(&b, p, (size_t)(e - p));
            buf_adds(&b, "\n");
        }
        p = e + 1;
    }
    if (add)
        buf_addf(&b, "%s\n", repo);
    path = path_join(project, REPOS_FILE);
    rc = fs_write_atomic(path, b.data ? b.data : "", b.len, err);
    free(path);
    free(data);
    buf_free(&b);
    return rc;
}

/* ---- installing ---------------------------------------------------------------------------- */

/* The hook at path: 1 ours, 0 none, -1 someone else's (or not readable). */
static int hook_state(const char *path)
{
    char *data = NULL;
    size_t len = 0;
    struct sw_err err = {0};
    struct stat sb;
    if (lstat(path, &sb) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISREG(sb.st_mode) || sb.st_size > 65536 || file_read_all(path, &data, &len, &err) < 0)
        return -1;
    int ours = pipeline_hook_ours(data, len);
    free(data);
    return ours ? 1 : -1;
}

int pipeline_hook_install(const char *path, const char *script, int force, struct sw_err *err)
{
    char *tmp = NULL, *dir = NULL;
    int rc = 0, fd = -1;

    if (!force && hook_state(path) < 0)
        return sw_err_set(err, SW_EEXIST,
                          "%s exists and slipway did not write it; --force replaces it", path);
    dir = xstrdup(path);
    if (strrchr(dir, '/'))
        *strrchr(dir, '/') = '\0';
    if ((rc = fs_mkdir_p(dir, err)) < 0)
        goto out;
    tmp = xasprintf("%s.tmp-%d-XXXXXX", path, (int)getpid());
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        rc = sw_err_sys(err, errno, "%s", path);
        free(tmp);
        tmp = NULL;
        goto out;
    }
    /* executable before it is in place: git never sees a hook it cannot run */
    int e = fd_write_all(fd, script, strlen(script));
    if (!e && fchmod(fd, 0755) < 0)
        e = -errno;
    if (!e && fsync(fd) < 0)
        e = -errno;
    if (close(fd) < 0 && !e)
        e = -errno;
    if (!e && rename(tmp, path) < 0)
        e = -errno;
    if (e) {
        unlink(tmp);
        rc = sw_err_sys(err, -e, "%s", path);
        goto out;
    }
    rc = fs_fsync_dir(dir, err);
out:
    free(tmp);
    free(dir);
    return rc;
}

int pipeline_hook_uninstall(const char *path, struct sw_err *err)
{
    int st = hook_state(path);
    if (st == 0)
        return sw_err_set(err, SW_ENOTFOUND, "%s: no hook to remove", path);
    if (st < 0)
        return sw_err_set(err, SW_EEXIST, "%s: slipway did not write it; left as it is", path);
    if (unlink(path) < 0)
        return sw_err_sys(err, errno, "%s", path);
    return 0;
}
