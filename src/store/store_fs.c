/*
 * The fs backend: a directory where key "a/b/c" is the file "<root>/a/b/c".
 *
 * The one idea: nothing is written in place. A put writes ".tmp.*" beside the
 * target, fsyncs it and renames it into place (for put-if-absent with
 * RENAME_NOREPLACE), then fsyncs the directory, and its parent when it had to
 * be created (every ancestor when more was); readers see the old or the new
 * object, never a torn one. Keys cannot start a component with '.', so
 * temporaries never collide with keys and never show in listings.
 *
 * Compare-and-swap takes an exclusive flock on "<root>/.cas.lock" for the read,
 * compare and rename; flock is per open file description, so it excludes other
 * processes and other threads of this one alike.
 *
 * Batched puts (release uploads) skip the per-file fsync: store_batch_commit
 * calls syncfs once, then renames every temporary into place (on one thread per
 * core), then syncfs again — git's "batch" fsync method. A batch of a few
 * objects is synced object by object instead. A crash before the commit leaves
 * only temporaries, which store_cleanup removes.
 */
#include "store/backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct pending {
    char *tmp;
    char *final;
    char *key;
    int if_absent;
    int made_dirs; /* its directory may be new: its ancestors need a sync too (MADE_*) */
};

/* What a put made of its directory, so what its sync covers: nothing new
 * (the directory), the directory itself by our own mkdir, whose parent
 * existed (the directory and its parent), or more: several levels, or one a
 * concurrent put made and may not have synced yet (every directory up to the
 * root). */
enum { MADE_NONE, MADE_ONE, MADE_SOME };

struct fs {
    char *root;
    int rootfd;
    pthread_mutex_t lock; /* guards pending */
    struct pending *pending;
    size_t npending, cappending;
};

static atomic_uint tmp_counter;

static struct fs *FS(struct store *st)
{
    return st->impl;
}

static char *key_path(struct fs *fs, const char *key)
{
    return path_join(fs->root, key);
}

/* The part of a path made by key_path that is relative to the root. */
static const char *rel_path(const struct fs *fs, const char *path)
{
    size_t n = strlen(fs->root);
    return path + n + (fs->root[n - 1] != '/');
}

static int dir_of(const char *path, char *out, size_t outlen)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n + 1 > outlen)
        return -1;
    memcpy(out, path, n);
    out[n] = '\0';
    return 0;
}

static int map_err(struct store *st, struct sw_err *err, int e, const char *what, const char *key)
{
    if (e == ENOSPC || e == EDQUOT)
        return sw_err_set(err, SW_ENOSPC, "store %s: no space left on device while %s %s", st->url,
                          what, key);
    if (e == EACCES || e == EPERM || e == EROFS)
        return sw_err_set(err, SW_EACCES, "store %s: not writable (%s) while %s %s", st->url,
                          strerror(e), what, key);
    return sw_err_sys(err, e, "store %s: %s %s", st->url, what, key);
}

/* Creates a unique temporary file beside final, making parent directories as
 * needed. Returns the fd and the malloc'd temp path in *tmp, or -errno.
 * *made_dirs (MADE_*) says what was missing: whoever created a directory (this
 * call or a concurrent one) has not necessarily made its entry durable yet. */
static int tmp_create(const char *final, char **tmp, int *made_dirs)
{
    char dir[STORE_KEY_MAX + 4096];
    if (dir_of(final, dir, sizeof(dir)) < 0)
        return -ENAMETOOLONG;
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned n = atomic_fetch_add(&tmp_counter, 1);
        char *p = xasprintf("%s/.tmp.%d.%u.%lx", dir, (int)getpid(), n,
                            (unsigned long)time_mono_ms() ^ (unsigned long)random());
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            *tmp = p;
            return fd;
        }
        int e = errno;
        free(p);
        if (e == ENOENT) {
            /* Usually only the last level is missing (blobs/sha256/ab, a log
             * stream's): one mkdir, not one per component of the store's
             * absolute path, and one more directory to sync, not all. */
            int made = MADE_SOME;
            if (mkdir(dir, 0755) == 0)
                made = MADE_ONE;
            else if (errno != EEXIST && fs_mkdir_p(dir, NULL) < 0)
                return errno ? -errno : -EIO;
            if (*made_dirs < made)
                *made_dirs = made;
            continue;
        }
        if (e != EEXIST)
            return -e;
    }
    return -EEXIST;
}

/* Writes a temp file with data (or copied from src_fd when >= 0), hashing it
 * when etag is wanted: a caller that already knows the hash of data (release
 * uploads, keyed by it) should not pay for a second SHA-256 of every body. On
 * success *tmp holds the temp path. */
static int tmp_write(const char *final, const void *data, size_t len, int src_fd, int sync,
                     char **tmp, int *made_dirs, char etag[SHA256_HEX_LEN + 1])
{
    int fd = tmp_create(final, tmp, made_dirs);
    if (fd < 0)
        return fd;
    struct sha256_ctx *h = etag ? sha256_new() : NULL;
    int e = 0;
    if (src_fd < 0) {
        if (h)
            sha256_update(h, data, len);
        e = fd_write_all(fd, data, len);
    } else {
        static const size_t chunk = 256 * 1024;
        char *b = xmalloc(chunk);
        for (;;) {
            ssize_t n = read(src_fd, b, chunk);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                e = -errno;
                break;
            }
            if (n == 0)
                break;
            if (h)
                sha256_update(h, b, (size_t)n);
            if ((e = fd_write_all(fd, b, (size_t)n)) < 0)
                break;
        }
        free(b);
    }
    if (h)
        sha256_final_hex(h, etag);
    if (!e && sync && fsync(fd) < 0)
        e = -errno;
    if (close(fd) < 0 && !e)
        e = -errno;
    if (e) {
        unlink(*tmp);
        free(*tmp);
        *tmp = NULL;
    }
    return e;
}

/* Moves a finished temp file into place. if_absent must fail atomically with
 * EEXIST when another writer got there first: renameat2(RENAME_NOREPLACE) does
 * that in one directory operation; where the file system lacks it, link(2) and
 * unlink(2) of the temporary do the same in two. */
static int tmp_publish(struct fs *fs, const char *tmp_abs, const char *final_abs, int if_absent)
{
    /* Relative to the root's fd: the store's own path is not walked twice. */
    const char *tmp = rel_path(fs, tmp_abs), *final = rel_path(fs, final_abs);
    int e = 0, dfd = fs->rootfd;
    if (if_absent) {
        if (renameat2(dfd, tmp, dfd, final, RENAME_NOREPLACE) == 0)
            return 0;
        if (errno != EINVAL && errno != ENOSYS) {
            e = -errno;
            unlinkat(dfd, tmp, 0);
            return e;
        }
        if (linkat(dfd, tmp, dfd, final, 0) < 0)
            e = -errno;
        unlinkat(dfd, tmp, 0);
    } else if (renameat(dfd, tmp, dfd, final) < 0) {
        e = -errno;
        unlinkat(dfd, tmp, 0);
    }
    return e;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int e = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return e;
}

/* Makes the entry of final durable: fsync of its directory, and when that
 * directory is new, of its parent (POSIX makes a new directory's own entry
 * durable only with its parent), or of every directory above it up to the
 * store's root when more may be new (MADE_SOME). */
static int sync_parent(struct fs *fs, const char *final, int made_dirs)
{
    char dir[STORE_KEY_MAX + 4096];
    if (dir_of(final, dir, sizeof(dir)) < 0)
        return -ENAMETOOLONG;
    size_t rootlen = strlen(fs->root);
    int above = made_dirs; /* directories above this one still to sync (MADE_SOME: all) */
    for (;;) {
        int e = sync_dir(dir);
        if (e || !above || strlen(dir) <= rootlen)
            return e;
        if (above == MADE_ONE)
            above = MADE_NONE;
        char *slash = strrchr(dir, '/');
        slash[slash == dir] = '\0'; /* "/blobs" → "/" */
    }
}

static int put_common(struct store *st, const char *key, const void *data, size_t len, int src_fd,
                      unsigned flags, char *etag_out, struct sw_err *err)
{
    struct fs *fs = FS(st);
    char *final = key_path(fs, key), *tmp = NULL;
    int batch = (flags & STORE_BATCH) != 0, made_dirs = 0;
    int rc = 0, e = tmp_write(final, data, len, src_fd, !batch, &tmp, &made_dirs, etag_out);
    if (e) {
        rc = map_err(st, err, -e, "writing", key);
        goto out;
    }
    if (batch) {
        pthread_mutex_lock(&fs->lock);
        if (fs->npending == fs->cappending) {
            fs->cappending = fs->cappending ? fs->cappending * 2 : 64;
            fs->pending = xrealloc(fs->pending, fs->cappending * sizeof(*fs->pending));
        }
        fs->pending[fs->npending++] =
            (struct pending){tmp, final, xstrdup(key), (flags & STORE_IF_ABSENT) != 0, made_dirs};
        pthread_mutex_unlock(&fs->lock);
        return 0;
    }
    e = tmp_publish(fs, tmp, final, flags & STORE_IF_ABSENT);
    if (e == -EEXIST) {
        rc = sw_err_set(err, SW_EEXIST, "store %s: %s exists", st->url, key);
        goto out;
    }
    if (!e)
        e = sync_parent(fs, final, made_dirs);
    if (e)
        rc = map_err(st, err, -e, "writing", key);
out:
    free(tmp);
    free(final);
    return rc;
}

static int fs_put(struct store *st, const char *key, const void *data, size_t len, unsigned flags,
                  char *etag_out, struct sw_err *err)
{
    return put_common(st, key, data, len, -1, flags, etag_out, err);
}

static int fs_put_file(struct store *st, const char *key, const char *path, unsigned flags,
                       char *etag_out, struct sw_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sw_err_sys(err, errno, "%s", path);
    int rc = put_common(st, key, NULL, 0, fd, flags, etag_out, err);
    struct stat sb;
    if (rc == 0 && fstat(fd, &sb) == 0)
        store_count_sent(st, (uint64_t)sb.st_size);
    close(fd);
    return rc;
}

static int fs_get(struct store *st, const char *key, char **data, size_t *len, char *etag,
                  struct sw_err *err)
{
    char *path = key_path(FS(st), key);
    int rc = file_read_all(path, data, len, NULL);
    if (rc == SW_ENOTFOUND)
        rc = sw_err_set(err, SW_ENOTFOUND, "store %s: %s not found", st->url, key);
    else if (rc)
        rc = map_err(st, err, errno, "reading", key);
    else if (etag)
        sha256_hex(*data, *len, etag);
    free(path);
    return rc;
}

/* Reads through a bounded buffer: a body of any size costs 256 KiB here. */
static int fs_get_stream(struct store *st, const char *key, store_sink_fn sink, void *arg,
                         struct sw_err *err)
{
    enum { CHUNK = 256 * 1024 };
    int fd = openat(FS(st)->rootfd, key, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return sw_err_set(err, SW_ENOTFOUND, "store %s: %s not found", st->url, key);
        return map_err(st, err, errno, "reading", key);
    }
    char *b = NULL;
    int rc = 0;
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        rc = map_err(st, err, errno, "reading", key);
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = sw_err_set(err, SW_ENOTFOUND, "store %s: %s not found", st->url, key);
        goto out;
    }
    /* Read once, front to back: let the kernel read ahead further. */
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    b = xmalloc(CHUNK);
    for (;;) {
        ssize_t n = read(fd, b, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = map_err(st, err, errno, "reading", key);
            break;
        }
        if (n == 0 || (rc = sink(arg, b, (size_t)n, err)))
            break;
    }
out:
    free(b);
    close(fd);
    return rc;
}

static int hash_file(const char *path, char *etag)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct sha256_ctx *h = sha256_new();
    char *b = xmalloc(256 * 1024);
    int e = 0;
    for (;;) {
        ssize_t n = read(fd, b, 256 * 1024);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            e = n < 0 ? -errno : 0;
            break;
        }
        sha256_update(h, b, (size_t)n);
    }
    sha256_final_hex(h, etag);
    free(b);
    close(fd);
    return e;
}

static int fs_head(struct store *st, const char *key, struct store_stat *out, unsigned flags,
                   struct sw_err *err)
{
    char *path = key_path(FS(st), key);
    struct stat sb;
    int rc = 0;
    /* Relative to the root's fd: a release in which nothing changed is mostly
     * one head per file, and the store's own path need not be walked each time. */
    if (fstatat(FS(st)->rootfd, key, &sb, 0) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            rc = sw_err_set(err, SW_ENOTFOUND, "store %s: %s not found", st->url, key);
        else
            rc = map_err(st, err, errno, "reading", key);
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = sw_err_set(err, SW_ENOTFOUND, "store %s: %s not found", st->url, key);
        goto out;
    }
    out->size = (uint64_t)sb.st_size;
    out->mtime_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
    if (flags & STORE_STAT_ETAG) {
        int e = hash_file(path, out->etag);
        if (e)
            rc = map_err(st, err, -e, "reading", key);
    }
out:
    free(path);
    return rc;
}

static int fs_touch(struct store *st, const char *key, struct sw_err *err)
{
    /* One system call, the same cost as the head it replaces. */
    if (utimensat(FS(st)->rootfd, key, NULL, 0) == 0)
        return 0;
    if (errno == ENOENT || errno == ENOTDIR)
        return sw_err_set(err, SW_ENOTFOUND, "store %s: %s not found", st->url, key);
    return map_err(st, err, errno, "touching", key);
}

/* Holds the store-wide CAS lock; returns the lock fd or -errno. */
static int cas_lock(struct fs *fs)
{
    int fd = openat(fs->rootfd, ".cas.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            int e = -errno;
            close(fd);
            return e;
        }
    }
    return fd;
}

static void cas_unlock(int fd)
{
    flock(fd, LOCK_UN);
    close(fd);
}

/* Checks the current ETag of path against if_match (NULL: must be absent). */
static int precondition(struct store *st, const char *key, const char *path, const char *if_match,
                        struct sw_err *err)
{
    char cur[SHA256_HEX_LEN + 1];
    int e = hash_file(path, cur);
    if (e == -ENOENT) {
        if (if_match)
            return sw_err_set(err, SW_ECONFLICT, "store %s: %s changed (now absent)", st->url, key);
        return 0;
    }
    if (e)
        return map_err(st, err, -e, "reading", key);
    if (!if_match)
        return sw_err_set(err, SW_ECONFLICT, "store %s: %s already exists", st->url, key);
    if (strcmp(cur, if_match) != 0)
        return sw_err_set(err, SW_ECONFLICT, "store %s: %s was changed by someone else", st->url,
                          key);
    return 0;
}

static int fs_put_if_match(struct store *st, const char *key, const void *data, size_t len,
                           const char *if_match, char *etag_out, struct sw_err *err)
{
    struct fs *fs = FS(st);
    char *final = key_path(fs, key), *tmp = NULL;
    int rc, lk = cas_lock(fs);
    if (lk < 0) {
        rc = map_err(st, err, -lk, "locking for", key);
        goto out;
    }
    if ((rc = precondition(st, key, final, if_match, err)))
        goto unlock;
    int made_dirs = 0, e = tmp_write(final, data, len, -1, 1, &tmp, &made_dirs, etag_out);
    if (!e)
        e = tmp_publish(fs, tmp, final, 0);
    if (!e)
        e = sync_parent(fs, final, made_dirs);
    if (e)
        rc = map_err(st, err, -e, "writing", key);
unlock:
    cas_unlock(lk);
out:
    free(tmp);
    free(final);
    return rc;
}

static int fs_del(struct store *st, const char *key, const char *if_match, struct sw_err *err)
{
    struct fs *fs = FS(st);
    char *path = key_path(fs, key);
    int rc = 0, lk = -1;
    if (if_match) {
        if ((lk = cas_lock(fs)) < 0) {
            rc = map_err(st, err, -lk, "locking for", key);
            goto out;
        }
        if ((rc = precondition(st, key, path, if_match, err)))
            goto out;
    }
    if (unlink(path) < 0) {
        if (errno == ENOENT)
            rc = sw_err_set(err, SW_ENOTFOUND, "store %s: %s not found", st->url, key);
        else
            rc = map_err(st, err, errno, "deleting", key);
        goto out;
    }
    int e = sync_parent(fs, path, 0);
    if (e)
        rc = map_err(st, err, -e, "deleting", key);
out:
    if (lk >= 0)
        cas_unlock(lk);
    free(path);
    return rc;
}

/* Below this many objects a batch is made durable object by object: syncfs
 * also waits for every other writer's dirty data on the file system, which on
 * a busy machine costs more than a few fsyncs (a release with one changed
 * file should not pay for someone else's build). */
#define SMALL_BATCH 32

/* fsyncs the temporaries of a small batch, by path (their fds are closed). */
static int sync_small(struct fs *fs, const char **failed)
{
    for (size_t i = 0; i < fs->npending; i++) {
        struct pending *p = &fs->pending[i];
        int fd = p->tmp ? open(p->tmp, O_RDONLY | O_CLOEXEC) : -1;
        int e = !p->tmp ? 0 : fd < 0 ? -errno : fsync(fd) < 0 ? -errno : 0;
        if (fd >= 0)
            close(fd);
        if (e) {
            *failed = p->key;
            return e;
        }
    }
    return 0;
}

/* After the renames of a small batch: each directory once (ancestors too when
 * one may be new). Directories repeat, so earlier duplicates are skipped. */
static int sync_small_dirs(struct fs *fs, const char **failed)
{
    for (size_t i = 0; i < fs->npending; i++) {
        struct pending *p = &fs->pending[i];
        char d1[STORE_KEY_MAX + 4096], d2[STORE_KEY_MAX + 4096];
        int seen = 0;
        dir_of(p->final, d1, sizeof(d1));
        for (size_t j = 0; j < i && !seen; j++) {
            dir_of(fs->pending[j].final, d2, sizeof(d2));
            seen = !strcmp(d1, d2) && fs->pending[j].made_dirs >= p->made_dirs;
        }
        int e = seen ? 0 : sync_parent(fs, p->final, p->made_dirs);
        if (e) {
            *failed = p->key;
            return e;
        }
    }
    return 0;
}

/* Publishing is one rename per object, some microseconds each: a tenth of a
 * second for a cold release of 10,000 files on one thread, so a large batch
 * is published by one thread per core, each over a slice of it. */
struct publisher {
    struct fs *fs;
    struct pending *v;
    size_t n;
    int e; /* the first failure in the slice, and its key */
    const char *key;
};

static void *publish_slice(void *arg)
{
    struct publisher *pb = arg;
    for (size_t i = 0; i < pb->n; i++) {
        struct pending *p = &pb->v[i];
        int e = p->tmp ? tmp_publish(pb->fs, p->tmp, p->final, p->if_absent) : 0;
        free(p->tmp);
        p->tmp = NULL;
        if (e && !(e == -EEXIST && p->if_absent) && !pb->e) {
            pb->e = e;
            pb->key = p->key;
        }
    }
    return NULL;
}

static int publish_all(struct fs *fs, const char **failed)
{
    enum { PER_THREAD_MIN = 512, MAX_THREADS = 64 };
    size_t want = fs->npending / PER_THREAD_MIN, n = (size_t)sys_ncpu();
    n = n < want ? n : want ? want : 1;
    n = n < MAX_THREADS ? n : MAX_THREADS;
    struct publisher pb[MAX_THREADS] = {{0}};
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    size_t per = (fs->npending + n - 1) / n;
    for (size_t t = 0; t < n; t++) {
        size_t from = t * per < fs->npending ? t * per : fs->npending;
        size_t to = from + per < fs->npending ? from + per : fs->npending;
        pb[t] = (struct publisher){fs, fs->pending + from, to - from, 0, NULL};
        /* Slice 0 runs here; a thread that cannot start leaves its slice to us. */
        started[t] = t > 0 && pthread_create(&tid[t], NULL, publish_slice, &pb[t]) == 0;
    }
    for (size_t t = 0; t < n; t++)
        if (!started[t])
            publish_slice(&pb[t]);
    for (size_t t = 0; t < n; t++)
        if (started[t])
            pthread_join(tid[t], NULL);
    for (size_t t = 0; t < n; t++)
        if (pb[t].e) {
            *failed = pb[t].key;
            return pb[t].e;
        }
    return 0;
}

static int fs_batch_commit(struct store *st, struct sw_err *err)
{
    struct fs *fs = FS(st);
    int rc = 0, small;
    const char *failed = "batch";
    pthread_mutex_lock(&fs->lock);
    if (fs->npending == 0)
        goto out;
    /* First every body durable, then the names: a crash in between leaves
     * only temporaries, never a name for a body that is not on disk. */
    small = fs->npending <= SMALL_BATCH;
    int e = small ? sync_small(fs, &failed) : syncfs(fs->rootfd) < 0 ? -errno : 0;
    if (e) {
        rc = map_err(st, err, -e, "syncing", failed);
        goto out;
    }
    if ((e = publish_all(fs, &failed))) {
        rc = map_err(st, err, -e, "writing", failed);
        goto out;
    }
    e = small ? sync_small_dirs(fs, &failed) : syncfs(fs->rootfd) < 0 ? -errno : 0;
    if (e)
        rc = map_err(st, err, -e, "syncing", failed);
out:
    pthread_mutex_unlock(&fs->lock);
    store_batch_abort(st);
    return rc;
}

static void fs_batch_abort(struct store *st)
{
    struct fs *fs = FS(st);
    pthread_mutex_lock(&fs->lock);
    for (size_t i = 0; i < fs->npending; i++) {
        if (fs->pending[i].tmp) {
            unlink(fs->pending[i].tmp);
            free(fs->pending[i].tmp);
        }
        free(fs->pending[i].final);
        free(fs->pending[i].key);
    }
    fs->npending = 0;
    pthread_mutex_unlock(&fs->lock);
}

static void list_push(struct store_list *l, size_t *cap, char *key)
{
    if (l->n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        l->keys = xrealloc(l->keys, *cap * sizeof(char *));
    }
    l->keys[l->n++] = key;
}

/* Walks <root>/<rel> collecting keys starting with prefix. */
static int walk(struct store *st, const char *rel, const char *prefix, struct store_list *l,
                size_t *cap, struct sw_err *err)
{
    char *dirpath = rel[0] ? key_path(FS(st), rel) : xstrdup(FS(st)->root);
    DIR *d = opendir(dirpath);
    int rc = 0;
    if (!d) {
        if (errno != ENOENT && errno != ENOTDIR)
            rc = map_err(st, err, errno, "listing", rel[0] ? rel : "/");
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *key = rel[0] ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
        size_t kl = strlen(key), pl = strlen(prefix);
        /* Descend only where the prefix can still match. */
        int related = strncmp(key, prefix, kl < pl ? kl : pl) == 0;
        int isdir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
            struct stat sb;
            char *p = key_path(FS(st), key);
            isdir = stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
            free(p);
        }
        if (related && isdir) {
            rc = walk(st, key, prefix, l, cap, err);
            free(key);
            if (rc)
                break;
        } else if (related && kl >= pl) {
            list_push(l, cap, key);
        } else {
            free(key);
        }
    }
    closedir(d);
out:
    free(dirpath);
    return rc;
}

static int fs_list(struct store *st, const char *prefix, struct store_list *out, struct sw_err *err)
{
    char start[STORE_KEY_MAX + 1];
    if (dir_of(prefix, start, sizeof(start)) < 0)
        return sw_err_set(err, SW_EINVAL, "list prefix too long");
    size_t cap = 0;
    return walk(st, start, prefix, out, &cap, err);
}

static int clean_dir(const char *dir, int64_t cutoff_ms, size_t *removed)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *p = path_join(dir, de->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0) {
            int64_t mt = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
            if (S_ISDIR(sb.st_mode) && de->d_name[0] != '.')
                clean_dir(p, cutoff_ms, removed);
            else if (str_starts_with(de->d_name, ".tmp.") && mt <= cutoff_ms && unlink(p) == 0)
                (*removed)++;
        }
        free(p);
    }
    closedir(d);
    return 0;
}

static int fs_cleanup(struct store *st, int64_t older_than_ms, size_t *removed, struct sw_err *err)
{
    clean_dir(FS(st)->root, time_now_ms() - older_than_ms, removed);
    return 0;
}

/* Notices (store_notify): rewriting "<root>/.notify/<topic>" closes a file
 * opened for writing, which inotify reports to every watcher of the
 * directory (IN_CLOSE_WRITE), in this process or any other. */
static int notify_dir(struct fs *fs, struct sw_err *err)
{
    if (mkdirat(fs->rootfd, ".notify", 0777) < 0 && errno != EEXIST)
        return sw_err_sys(err, errno, "store %s: .notify", fs->root);
    return 0;
}

static int fs_notify(struct store *st, const char *topic, struct sw_err *err)
{
    struct fs *fs = FS(st);
    int rc = notify_dir(fs, err);
    if (rc)
        return rc;
    char *name = xasprintf(".notify/%s", topic);
    /* never through a link, never blocking on a FIFO someone put there */
    int fd = openat(fs->rootfd, name,
                    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0666);
    if (fd < 0)
        rc = sw_err_sys(err, errno, "store %s: %s", fs->root, name);
    else
        close(fd);
    free(name);
    return rc;
}

static int fs_watch(struct store *st, const char *topic, int *out, struct sw_err *err)
{
    struct fs *fs = FS(st);
    (void)topic; /* one directory for every topic: a notice is a hint either way */
    int rc = notify_dir(fs, err);
    if (rc)
        return rc;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return sw_err_sys(err, errno, "inotify_init1");
    char *dir = path_join(fs->root, ".notify");
    if (inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
        rc = sw_err_sys(err, errno, "inotify_add_watch %s", dir);
        close(fd);
    } else
        *out = fd;
    free(dir);
    return rc;
}

static void fs_free(struct store *st)
{
    struct fs *fs = FS(st);
    if (!fs)
        return;
    fs_batch_abort(st);
    free(fs->pending);
    pthread_mutex_destroy(&fs->lock);
    if (fs->rootfd >= 0)
        close(fs->rootfd);
    free(fs->root);
    free(fs);
}

static const struct store_ops fs_ops = {
    .scheme = "file",
    .get = fs_get,
    .get_stream = fs_get_stream,
    .put = fs_put,
    .put_file = fs_put_file,
    .put_if_match = fs_put_if_match,
    .batch_commit = fs_batch_commit,
    .batch_abort = fs_batch_abort,
    .head = fs_head,
    .touch = fs_touch,
    .del = fs_del,
    .list = fs_list,
    .cleanup = fs_cleanup,
    .notify = fs_notify,
    .watch = fs_watch,
    .free = fs_free,
};

int store_fs_open(const char *root, int create, struct store *st, struct sw_err *err)
{
    if (!root[0])
        return sw_err_set(err, SW_EINVAL, "empty store path");
    int rc = create ? fs_mkdir_p(root, err) : 0;
    if (rc)
        return sw_err_prefix(err, "store %s", st->url);
    struct fs *fs = xcalloc(1, sizeof(*fs));
    fs->root = xstrdup(root);
    size_t n = strlen(fs->root);
    while (n > 1 && fs->root[n - 1] == '/')
        fs->root[--n] = '\0';
    fs->rootfd = open(fs->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fs->rootfd < 0) {
        rc = errno == ENOENT && !create ? sw_err_set(err, SW_ENOTFOUND, "no store at %s", st->url)
                                        : sw_err_sys(err, errno, "store %s", st->url);
        free(fs->root);
        free(fs);
        return rc;
    }
    pthread_mutex_init(&fs->lock, NULL);
    st->impl = fs;
    st->ops = &fs_ops;
    return 0;
}
