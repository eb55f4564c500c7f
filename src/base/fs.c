/*
 * File-system helpers. The one idea: a file that others read is never written
 * in place. It is written to a temporary name in the same directory, fsynced,
 * renamed over the target, and then the directory is fsynced, so a crash leaves
 * either the old or the new content and never a torn file.
 */
#include "base/base.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int fd_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int file_read_all(const char *path, char **data, size_t *len, struct sw_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sw_err_sys(err, errno, "%s", path);
    struct buf b = BUF_INIT;
    int rc = 0;
    struct stat sb;
    /* Size the buffer from fstat so a file costs its size, not a power of two;
     * the loop still copes with files that grow or lie about their size. */
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0)
        buf_grow(&b, (size_t)sb.st_size + 1);
    for (;;) {
        if (b.len + 1 >= b.cap)
            buf_grow(&b, 65536);
        ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = sw_err_sys(err, errno, "%s", path);
            goto out;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
    }
    b.data[b.len] = '\0';
    *data = buf_detach(&b, len);
out:
    close(fd);
    buf_free(&b);
    return rc;
}

int fs_mkdir_p(const char *path, struct sw_err *err)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            rc = sw_err_sys(err, errno, "%s", p);
            break;
        }
        *s = c;
        if (!c)
            break;
    }
    if (!rc) {
        struct stat st;
        if (stat(path, &st) < 0)
            rc = sw_err_sys(err, errno, "%s", path);
        else if (!S_ISDIR(st.st_mode))
            rc = sw_err_set(err, SW_EINVAL, "%s: not a directory", path);
    }
    free(p);
    return rc;
}

int fs_fsync_dir(const char *path, struct sw_err *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return sw_err_sys(err, errno, "%s", path);
    int rc = 0;
    if (fsync(fd) < 0 && errno != EINVAL)
        rc = sw_err_sys(err, errno, "fsync %s", path);
    close(fd);
    return rc;
}

/* Writes data to a temp file beside path and renames it over path; with
 * sync, the file is fsynced before the rename. */
static int write_rename(const char *path, const void *data, size_t len, int sync,
                        struct sw_err *err)
{
    char *tmp = xasprintf("%s.tmp-%d-XXXXXX", path, (int)getpid());
    int rc = 0, fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = sw_err_sys(err, errno, "%s", path);
        goto out;
    }
    int e = fd_write_all(fd, data, len);
    if (!e && sync && fsync(fd) < 0)
        e = -errno;
    if (close(fd) < 0 && !e)
        e = -errno;
    if (!e && rename(tmp, path) < 0)
        e = -errno;
    if (e) {
        unlink(tmp);
        rc = sw_err_sys(err, -e, "%s", path);
    }
out:
    free(tmp);
    return rc;
}

int fs_write_atomic(const char *path, const void *data, size_t len, struct sw_err *err)
{
    int rc = write_rename(path, data, len, 1, err);
    if (rc)
        return rc;
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    rc = fs_fsync_dir(slash ? dir : ".", err);
    free(dir);
    return rc;
}

int fs_write_replace(const char *path, const void *data, size_t len, struct sw_err *err)
{
    return write_rename(path, data, len, 0, err);
}

/* How deep fs_remove_tree goes: a level holds a descriptor open. */
#define REMOVE_DEPTH_MAX 128

/* Empties the directory open as dfd (closed here). Entries are unlinked as
 * they are read; since removing entries while reading a directory may make
 * readdir skip some, a pass that removed something is followed by another. */
static int remove_under(int dfd, int depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = -errno;
        close(dfd);
        return e;
    }
    int rc = 0, removed, passes = 0;
    do {
        removed = 0;
        struct dirent *de;
        errno = 0;
        while ((de = readdir(d)) != NULL) {
            const char *n = de->d_name;
            if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2])))
                continue;
            /* a symbolic link is unlinked itself, never followed */
            int e = unlinkat(dirfd(d), n, 0) == 0 || errno == ENOENT ? 0 : -errno;
            if (e == -EISDIR || e == -EPERM) {
                int sub = depth > 0
                              ? openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                              : -1;
                e = depth <= 0 ? -ELOOP : sub < 0 ? -errno : remove_under(sub, depth - 1);
                if (!e && unlinkat(dirfd(d), n, AT_REMOVEDIR) < 0 && errno != ENOENT)
                    e = -errno;
            }
            if (e && !rc)
                rc = e;
            removed |= !e;
            errno = 0;
        }
        if (errno && !rc)
            rc = -errno;
        rewinddir(d);
        /* something keeps adding entries: give up rather than chase it */
        if (removed && !rc && ++passes == 8)
            rc = -ENOTEMPTY;
    } while (removed && !rc);
    closedir(d);
    return rc;
}

int fs_remove_tree(const char *path, struct sw_err *err)
{
    if (unlink(path) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return sw_err_sys(err, errno, "removing %s", path);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = fd < 0 ? -errno : remove_under(fd, REMOVE_DEPTH_MAX);
    if (!e && rmdir(path) < 0 && errno != ENOENT)
        e = -errno;
    return e ? sw_err_sys(err, -e, "removing %s", path) : 0;
}

char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    if (la && a[la - 1] == '/')
        return xasprintf("%s%s", a, b[0] == '/' ? b + 1 : b);
    return xasprintf("%s/%s", a, b[0] == '/' ? b + 1 : b);
}

void sys_malloc_for_batch(void)
{
#ifdef __GLIBC__
    /* One arena: the threads of a walk share the heap rather than each
     * faulting in the pages of an arena of its own. */
    mallopt(M_ARENA_MAX, 1);
    /* One region, grown 64 MiB at a time and kept: large blocks come from it
     * too (below 32 MiB), and it is advised for transparent huge pages, so a
     * first touch maps 2 MiB instead of 4 KiB where the kernel allows it
     * (transparent_hugepage "madvise" or "always"; "never" leaves it as it
     * was). */
    mallopt(M_TOP_PAD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    /* The heap grows only when its top cannot serve a request, and start-up
     * has left a top of ~130 KiB: a block larger than that makes it grow now,
     * by the pad, so the region to advise exists. (A malloc(1) here advised
     * nothing: the region came later, unadvised, a fault per 4 KiB page.) */
    char *start = sbrk(0);
    /* volatile: the compiler may drop a malloc whose block is never used. */
    char *volatile grow = malloc(1 << 20);
    /* Where malloc wrote the header of the top that followed the block: a
     * 2 MiB range with one 4 KiB page mapped already gets no huge page. */
    uintptr_t touched = grow ? (uintptr_t)grow + (1 << 20) : 0;
    free(grow);
    char *end = sbrk(0);
    const uintptr_t huge = 2u << 20;
    uintptr_t from = ((uintptr_t)start + huge - 1) & ~(huge - 1);
    if (start == (char *)-1 || end == (char *)-1 || (uintptr_t)end <= from)
        return;
    madvise((void *)from, (uintptr_t)end - from, MADV_HUGEPAGE);
    if (touched >= from)
        from = (touched & ~(huge - 1)) + huge;
    /* Below from, up to 4 MiB of the heap holds no huge page, and the first
     * blocks a command asks for (the stat cache read and parsed, ~1.2 MiB for
     * 2,000 files) landed there a fault per 4 KiB page: ~460 faults of a
     * one-page deploy. A block spanning that gap, never touched and never
     * freed (address space only), makes the next ones start at from. */
    char *top = malloc(64);
    if (top && (uintptr_t)top + 4096 < from && from - (uintptr_t)top <= 3 * huge &&
        from + huge <= (uintptr_t)end) {
        void *volatile gap = malloc(from - (uintptr_t)top - 64);
        (void)gap;
    }
    free(top);
#endif
}

int sys_ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

const char *sys_user(void)
{
    static char name[64];
    if (name[0])
        return name;
    const char *u = getenv("SLIPWAY_ACTOR");
    if (!u || !*u)
        u = getenv("USER");
    if (!u || !*u) {
        struct passwd *pw = getpwuid(getuid());
        u = pw ? pw->pw_name : "unknown";
    }
    snprintf(name, sizeof(name), "%s", u);
    return name;
}

const char *sys_host(void)
{
    static char host[256];
    if (!host[0] && gethostname(host, sizeof(host) - 1) < 0)
        snprintf(host, sizeof(host), "localhost");
    return host;
}

int sys_load_table(const char *soname, const struct sys_sym *syms, size_t n, void *out,
                   const char *install, const char *version, char *why, size_t whylen)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, whylen, "cannot load %s (%s); %s", soname, e ? e : "not found", install);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        void *p = dlsym(h, syms[i].name);
        if (!p) {
            snprintf(why, whylen, "%s has no %s (%s)", soname, syms[i].name, version);
            return -1; /* h stays open: nothing of it is used */
        }
        memcpy((char *)out + syms[i].off, &p, sizeof(p));
    }
    return 0;
}
