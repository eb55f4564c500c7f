/*
 * The local blob cache: large bodies (over small_body_max) as files named by
 * their SHA-256 in one directory (--cache-dir, by default the project's
 * .slipway/cache/blobs), so release tables can
 * send them with sendfile. A body is streamed from the store through a
 * 256 KiB buffer into a temporary file, hashed on the way, and renamed to its
 * name only when its hash and size match: the edge never holds a large body
 * in memory, and never publishes a byte it has not verified.
 *
 * The one idea: every file is either referenced or about to go. Each table
 * that uses a body holds one reference (and its own descriptor); when the
 * last table using it is freed, the body is deleted by the next
 * blob_cache_collect. A reference is dropped only after the table closed its
 * descriptor, and a table is freed only after the last response that sends
 * from it ended, so deleting a body whose count is zero frees its disk space
 * at once: no descriptor keeps the inode alive, and the bytes it counted are
 * really gone.
 *
 * Trust: a file is trusted only once this process has verified it — while
 * fetching it, or by hashing it again the first time a table wants a file an
 * earlier process left. So the cache needs no fsync (a crash that tears a
 * file, or leaves it empty, costs a fetch, never a wrong byte) and renames
 * are the only ordering it relies on. Temporaries of a crashed process, and
 * bodies no loaded release uses, are removed at start-up (blob_cache_new,
 * blob_cache_sweep after the first loads).
 *
 * --cache-max bounds what the cache holds: a release whose large bodies
 * alone exceed it is refused before anything is fetched. Bodies in use
 * cannot be deleted, so while a switch replaces a release both are on disk;
 * blob_cache_bytes tells the caller when loaded releases need more than the
 * bound.
 *
 * One process per directory: blob_cache_new takes an exclusive flock on
 * "<dir>/.lock" for the cache's life, since start-up removes every file no
 * loaded release uses — another live process's bodies included. Several
 * nodes on one host (a fleet following one bucket) each need their own
 * --cache-dir; a second one on the same directory is refused at start.
 *
 * Thread safety: every function may be called from any thread (a mutex guards
 * the map); in the edge only the watcher calls them, while loading and
 * freeing tables.
 */
#include "edge/internal.h"
#include "release/release.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (256 * 1024)
#define LOCK_NAME ".lock"

struct cached {
    char hex[SHA256_HEX_LEN + 1];
    uint64_t size;
    long refs;
    struct cached *next; /* hash chain */
};

struct blob_cache {
    char *dir;
    int lock_fd; /* "<dir>/.lock", flocked while the cache lives */
    uint64_t max;
    pthread_mutex_t lock;
    struct cached **buckets;
    size_t nbuckets, n;
    size_t idle;            /* entries with no reference, for collect */
    _Atomic uint64_t bytes; /* sizes of every entry: what the directory holds */
};

static atomic_uint tmp_seq;

static size_t bucket_of(const struct blob_cache *c, const char *hex)
{
    /* The name is a SHA-256: its first digits are already uniform. */
    uint64_t h = 0;
    for (int i = 0; i < 16; i++)
        h = h << 4 | (uint64_t)(hex[i] <= '9' ? hex[i] - '0' : hex[i] - 'a' + 10);
    return (size_t)(h & (c->nbuckets - 1));
}

static struct cached *lookup(const struct blob_cache *c, const char *hex)
{
    for (struct cached *e = c->buckets[bucket_of(c, hex)]; e; e = e->next)
        if (!strcmp(e->hex, hex))
            return e;
    return NULL;
}

static void insert(struct blob_cache *c, struct cached *e)
{
    if (c->n + 1 > c->nbuckets) {
        size_t old = c->nbuckets;
        struct cached **ob = c->buckets;
        c->nbuckets *= 2;
        c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
        for (size_t i = 0; i < old; i++)
            for (struct cached *x = ob[i], *nx; x; x = nx) {
                nx = x->next;
                size_t b = bucket_of(c, x->hex);
                x->next = c->buckets[b];
                c->buckets[b] = x;
            }
        free(ob);
    }
    size_t b = bucket_of(c, e->hex);
    e->next = c->buckets[b];
    c->buckets[b] = e;
    c->n++;
    atomic_fetch_add(&c->bytes, e->size);
}

const char *blob_cache_dir(const struct blob_cache *c)
{
    return c->dir;
}

/* A name the cache writes: 64 lowercase hex digits. Anything else in the
 * directory is a temporary or a stranger. */
static int is_body_name(const char *name)
{
    return hex_lower_valid(name, SHA256_HEX_LEN);
}

/* Removes the files of the directory that are not bodies (keep_bodies) or
 * not referenced bodies (!keep_bodies). Called with the lock held. */
static void clean(struct blob_cache *c, int keep_bodies)
{
    DIR *d = opendir(c->dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !strcmp(de->d_name, LOCK_NAME))
            continue;
        if (is_body_name(de->d_name) && (keep_bodies || lookup(c, de->d_name)))
            continue;
        /* A failure leaves the file for the next start; nothing depends on it. */
        (void)unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

/* Takes the directory for this process: the lock, and this process's pid in
 * it so that a refusal can name the holder. */
static int lock_dir(const char *dir, int *out, struct sw_err *err)
{
    int rc = fs_mkdir_p(dir, err);
    if (rc)
        return sw_err_prefix(err, "local cache");
    char *path = path_join(dir, LOCK_NAME);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = sw_err_sys(err, errno, "local cache %s", path);
        goto out;
    }
    int r;
    while ((r = flock(fd, LOCK_EX | LOCK_NB)) < 0 && errno == EINTR)
        ;
    if (r < 0 && errno == EWOULDBLOCK) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strspn(pid, "0123456789")] = '\0'; /* the holder's text: digits only */
        rc = sw_err_set(err, SW_EEXIST,
                        "local cache %s is in use by another process%s%s%s (each slipway serve "
                        "needs its own --cache-dir)",
                        dir, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
    } else if (r < 0) {
        rc = sw_err_sys(err, errno, "local cache %s: lock", path);
    } else {
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) < 0 || fd_write_all(fd, pid, (size_t)n) != 0) {
            /* the pid is for messages only: without it a refusal names no holder */
        }
        *out = fd;
        fd = -1;
    }
    if (fd >= 0)
        close(fd);
out:
    free(path);
    return rc;
}

int blob_cache_new(const char *dir, uint64_t max, struct blob_cache **out, struct sw_err *err)
{
    int fd = -1;
    int rc = lock_dir(dir, &fd, err);
    if (rc)
        return rc;
    struct blob_cache *c = xcalloc(1, sizeof(*c));
    c->dir = xstrdup(dir);
    c->lock_fd = fd;
    c->max = max;
    c->nbuckets = 64;
    c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
    pthread_mutex_init(&c->lock, NULL);
    /* Temporaries of a process that died while fetching: nobody else writes
     * here (the lock). */
    clean(c, 1);
    *out = c;
    return 0;
}

void blob_cache_free(struct blob_cache *c)
{
    if (!c)
        return;
    close(c->lock_fd); /* the lock goes with it; the file stays for the next process */
    /* Files stay: the next process verifies and reuses them. */
    for (size_t i = 0; i < c->nbuckets; i++)
        for (struct cached *e = c->buckets[i], *nx; e; e = nx) {
            nx = e->next;
            free(e);
        }
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c->dir);
    free(c);
}

uint64_t blob_cache_max(const struct blob_cache *c)
{
    return c->max;
}

uint64_t blob_cache_bytes(struct blob_cache *c)
{
    return atomic_load(&c->bytes);
}

int blob_cache_fits(const struct blob_cache *c, uint64_t need, struct sw_err *err)
{
    if (need <= c->max)
        return 0;
    char a[32], b[32];
    size_format(need, a, sizeof(a));
    size_format(c->max, b, sizeof(b));
    return sw_err_set(err, SW_ENOSPC,
                      "its large bodies need %s (%llu bytes) in the local cache, more than "
                      "--cache-max %s (%llu bytes)",
                      a, (unsigned long long)need, b, (unsigned long long)c->max);
}

/* Hashes an open file through a bounded buffer: 0 when it is hex, else
 * TABLE_EHASH, or -errno when it cannot be read. */
static int verify_fd(int fd, const char *hex)
{
    struct sha256_ctx *h = sha256_new();
    char *b = xmalloc(CHUNK), got[SHA256_HEX_LEN + 1];
    int e = 0;
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(fd, b, CHUNK, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            e = n < 0 ? -errno : 0;
            break;
        }
        sha256_update(h, b, (size_t)n);
        off += n;
    }
    sha256_final_hex(h, got);
    free(b);
    return e ? e : strcmp(got, hex) ? TABLE_EHASH : 0;
}

/* Opens a file an earlier process left, when it is this body, whole. */
static int open_verified(const char *path, const char *hex, uint64_t size, int *fd,
                         struct sw_err *err)
{
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return errno == ENOENT ? SW_ENOTFOUND : sw_err_sys(err, errno, "%s", path);
    struct stat sb;
    if (fstat(f, &sb) < 0) {
        int rc = sw_err_sys(err, errno, "%s", path);
        close(f);
        return rc;
    }
    int e = S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == size ? verify_fd(f, hex) : TABLE_EHASH;
    if (e) {
        close(f);
        /* Torn by a crash, or changed: fetched again. */
        if (e == TABLE_EHASH)
            return unlink(path) == 0 || errno == ENOENT ? SW_ENOTFOUND
                                                        : sw_err_sys(err, errno, "%s", path);
        return sw_err_sys(err, -e, "%s", path);
    }
    *fd = f;
    return 0;
}

struct writer {
    int fd;
    const char *path;
};

static int write_piece(void *arg, const void *data, size_t len, struct sw_err *err)
{
    struct writer *w = arg;
    int e = fd_write_all(w->fd, data, len);
    return e ? sw_err_sys(err, -e, "local cache %s", w->path) : 0;
}

/* Streams body hex from the store into path through a temporary file,
 * renamed into place only once its hash and size are right. */
static int fetch(struct blob_cache *c, struct store *st, const char *hex, uint64_t size,
                 const char *path, struct sw_err *err)
{
    char key[128], etag[SHA256_HEX_LEN + 1];
    release_blob_key(hex, key, sizeof(key));
    int rc = fs_mkdir_p(c->dir, err);
    if (rc)
        return rc;
    char *tmp = xasprintf("%s/.tmp.%d.%u", c->dir, (int)getpid(), atomic_fetch_add(&tmp_seq, 1));
    /* O_TRUNC, not O_EXCL: a name left by a dead process of the same pid is
     * garbage; two live writers never share a name (pid, counter). */
    struct writer w = {open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), tmp};
    if (w.fd < 0) {
        rc = sw_err_sys(err, errno, "local cache %s", tmp);
        goto out;
    }
    uint64_t got = 0;
    rc = store_get_stream(st, key, size, write_piece, &w, etag, &got, err);
    if (rc == STORE_ETOOBIG || (!rc && (got != size || strcmp(etag, hex) != 0)))
        rc = sw_err_set(err, TABLE_EHASH, "%s does not match its hash or size", key);
    if (close(w.fd) < 0 && !rc)
        rc = sw_err_sys(err, errno, "local cache %s", tmp);
    /* No fsync: a file is verified again by the next process before it is
     * trusted (see the top of this file). */
    if (!rc && rename(tmp, path) < 0)
        rc = sw_err_sys(err, errno, "local cache %s", path);
    if (rc)
        unlink(tmp);
out:
    free(tmp);
    return rc;
}

int blob_cache_acquire(struct blob_cache *c, struct store *st, const char *hex, uint64_t size,
                       int *fd, struct sw_err *err)
{
    /* release_load validated it; checked again because it becomes a path. */
    if (!hex_lower_valid(hex, SHA256_HEX_LEN))
        return sw_err_set(err, SW_EINVAL, "blob id is not 64 lowercase hex digits");
    pthread_mutex_lock(&c->lock);
    char *path = path_join(c->dir, hex);
    int rc = 0;
    *fd = -1;
    struct cached *e = lookup(c, hex);
    if (e && e->size != size) {
        /* Verified at its own size: this manifest lies about it. */
        rc = sw_err_set(err, TABLE_EHASH, "its size is %llu bytes, not %llu",
                        (unsigned long long)e->size, (unsigned long long)size);
        goto out;
    }
    if (e) {
        *fd = open(path, O_RDONLY | O_CLOEXEC);
        /* Deleted behind our back (an operator cleaning up): fetched again. */
        if (*fd < 0 && errno == ENOENT && !(rc = fetch(c, st, hex, size, path, err)))
            *fd = open(path, O_RDONLY | O_CLOEXEC);
    } else {
        rc = open_verified(path, hex, size, fd, err);
        if (rc == SW_ENOTFOUND && !(rc = fetch(c, st, hex, size, path, err)))
            *fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (!rc && *fd < 0)
        rc = sw_err_sys(err, errno, "local cache %s", path);
    if (rc)
        goto out;
    if (!e) {
        e = xcalloc(1, sizeof(*e));
        memcpy(e->hex, hex, sizeof(e->hex));
        e->size = size;
        insert(c, e);
    } else if (e->refs == 0) {
        c->idle--;
    }
    e->refs++;
out:
    pthread_mutex_unlock(&c->lock);
    free(path);
    return rc;
}

void blob_cache_release(struct blob_cache *c, const char *hex)
{
    pthread_mutex_lock(&c->lock);
    struct cached *e = lookup(c, hex);
    if (e && e->refs > 0 && --e->refs == 0)
        c->idle++;
    pthread_mutex_unlock(&c->lock);
}

void blob_cache_collect(struct blob_cache *c)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; c->idle && i < c->nbuckets; i++)
        for (struct cached **pp = &c->buckets[i], *e; (e = *pp);) {
            if (e->refs) {
                pp = &e->next;
                continue;
            }
            char *path = path_join(c->dir, e->hex);
            /* Gone already is as good; any other failure leaves a file the
             * next start-up sweeps, not a wrong count. */
            (void)unlink(path);
            free(path);
            atomic_fetch_sub(&c->bytes, e->size);
            *pp = e->next;
            free(e);
            c->n--;
            c->idle--;
        }
    pthread_mutex_unlock(&c->lock);
}

void blob_cache_sweep(struct blob_cache *c)
{
    blob_cache_collect(c);
    pthread_mutex_lock(&c->lock);
    clean(c, 0);
    pthread_mutex_unlock(&c->lock);
}
