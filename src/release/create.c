/*
 * release_create: directory → blobs + manifest.
 *
 * Three passes. The walk lists regular files (following symlinks that stay
 * inside the directory) and sorts them by path. The hashing pass runs one
 * thread per core over that list; each file is read once, hashed, and its body
 * handed to the store as a batched put-if-absent only when the blob is not
 * there yet. Finally the store commits the batch (one syncfs) and only then is
 * the manifest written, so a manifest never names a body that is not durable.
 *
 * A stat cache, like git's index, maps (device, inode, size, mtime, ctime) to
 * the hash from the previous run so an unchanged file is not read again. An
 * entry is trusted only when the file's mtime is older than the moment the
 * cache was taken, minus a margin: a file changed in the same clock tick as the
 * earlier read could otherwise look unchanged ("racy git").
 */
#include "release/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SMALL_BODY (8u << 20)       /* read whole, hash and upload from memory */
#define RACY_MARGIN_NS 100000000LL /* coarse mtime clock: at most one tick behind */

struct entry {
    char *path; /* relative */
    char *real; /* absolute, symlinks resolved */
    struct stat sb;
    char blob[SHA256_HEX_LEN + 1];
    int new_blob;
    int hashed;
};

struct walk {
    const char *root; /* realpath of the directory */
    size_t rootlen;
    struct entry *v;
    size_t n, cap;
    dev_t dirs_dev[256]; /* directories on the current path, for loop detection */
    ino_t dirs_ino[256];
    int depth;
};

static int utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x20 || *p == 0x7f)
            return 0;
        int n = *p < 0x80 ? 0 : (*p >> 5) == 6 ? 1 : (*p >> 4) == 14 ? 2 : (*p >> 3) == 30 ? 3 : -1;
        if (n < 0)
            return 0;
        p++;
        for (int i = 0; i < n; i++, p++)
            if ((*p & 0xc0) != 0x80)
                return 0;
    }
    return 1;
}

static int walk_dir(struct walk *w, const char *abs, const char *rel, struct sw_err *err);

static int walk_entry(struct walk *w, const char *abs, const char *rel, struct sw_err *err)
{
    struct stat sb;
    char *real = NULL;
    int rc = 0;
    if (lstat(abs, &sb) < 0)
        return sw_err_sys(err, errno, "%s", abs);
    if (!utf8_ok(rel))
        return sw_err_set(err, SW_EINVAL, "%s: file name is not printable UTF-8", abs);
    if (S_ISLNK(sb.st_mode)) {
        real = realpath(abs, NULL);
        if (!real)
            return sw_err_set(err, RELEASE_ESYMLINK, "%s: symbolic link is dangling", abs);
        if (strncmp(real, w->root, w->rootlen) != 0 ||
            (real[w->rootlen] != '/' && real[w->rootlen] != '\0')) {
            rc = sw_err_set(err, RELEASE_ESYMLINK,
                            "%s: symbolic link points outside the directory (to %s)", abs, real);
            goto out;
        }
        if (stat(real, &sb) < 0) {
            rc = sw_err_sys(err, errno, "%s", abs);
            goto out;
        }
    } else {
        real = xstrdup(abs);
    }
    if (S_ISDIR(sb.st_mode)) {
        for (int i = 0; i < w->depth; i++)
            if (w->dirs_dev[i] == sb.st_dev && w->dirs_ino[i] == sb.st_ino) {
                rc = sw_err_set(err, RELEASE_ESYMLINK, "%s: symbolic link loop", abs);
                goto out;
            }
        if (w->depth == 256) {
            rc = sw_err_set(err, SW_EINVAL, "%s: directories nested too deeply", abs);
            goto out;
        }
        w->dirs_dev[w->depth] = sb.st_dev;
        w->dirs_ino[w->depth++] = sb.st_ino;
        rc = walk_dir(w, real, rel, err);
        w->depth--;
    } else if (S_ISREG(sb.st_mode)) {
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 256;
            w->v = xrealloc(w->v, w->cap * sizeof(*w->v));
        }
        w->v[w->n++] = (struct entry){.path = xstrdup(rel), .real = real, .sb = sb};
        real = NULL;
    } else {
        rc = sw_err_set(err, RELEASE_ESPECIAL,
                        "%s: not a regular file or directory (device, socket or FIFO)", abs);
    }
out:
    free(real);
    return rc;
}

static int walk_dir(struct walk *w, const char *abs, const char *rel, struct sw_err *err)
{
    DIR *d = opendir(abs);
    if (!d)
        return sw_err_sys(err, errno, "%s", abs);
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        /* Repository metadata is never published, wherever the directory is. */
        if (!strcmp(name, ".git") || !strcmp(name, ".slipway"))
            continue;
        char *cabs = path_join(abs, name);
        char *crel = rel[0] ? xasprintf("%s/%s", rel, name) : xstrdup(name);
        rc = walk_entry(w, cabs, crel, err);
        free(cabs);
        free(crel);
        if (rc)
            break;
    }
    closedir(d);
    return rc;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

/* ---- stat cache ---------------------------------------------------------- */

struct cached {
    char *path;
    unsigned long long dev, ino, size;
    long long mtime, ctime;
    char hex[SHA256_HEX_LEN + 1];
};

struct stat_cache {
    struct cached *v;
    size_t n;
    long long taken_ns;
};

static long long ts_ns(const struct timespec *t)
{
    return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static void cache_load(const char *file, struct stat_cache *c)
{
    memset(c, 0, sizeof(*c));
    char *data;
    size_t len;
    if (!file || file_read_all(file, &data, &len, NULL))
        return;
    char *save, *line = strtok_r(data, "\n", &save);
    if (!line || sscanf(line, "slipway-stat-cache 1 %lld", &c->taken_ns) != 1)
        goto out;
    size_t cap = 0;
    while ((line = strtok_r(NULL, "\n", &save))) {
        struct cached e;
        int off = 0;
        if (sscanf(line, "%llu %llu %llu %lld %lld %64s %n", &e.dev, &e.ino, &e.size, &e.mtime,
                   &e.ctime, e.hex, &off) != 6 || !off || strlen(e.hex) != SHA256_HEX_LEN)
            continue;
        e.path = xstrdup(line + off);
        if (c->n == cap)
            c->v = xrealloc(c->v, (cap = cap ? cap * 2 : 256) * sizeof(*c->v));
        c->v[c->n++] = e;
    }
out:
    free(data);
}

static int cmp_cached(const void *k, const void *e)
{
    return strcmp(k, ((const struct cached *)e)->path);
}

/* The cached hash of e when its stat data is unchanged and was not racy. */
static const char *cache_lookup(const struct stat_cache *c, const struct entry *e)
{
    if (!c->n)
        return NULL;
    const struct cached *x = bsearch(e->path, c->v, c->n, sizeof(*c->v), cmp_cached);
    if (!x || x->dev != (unsigned long long)e->sb.st_dev ||
        x->ino != (unsigned long long)e->sb.st_ino ||
        x->size != (unsigned long long)e->sb.st_size || x->mtime != ts_ns(&e->sb.st_mtim) ||
        x->ctime != ts_ns(&e->sb.st_ctim) || x->mtime >= c->taken_ns - RACY_MARGIN_NS)
        return NULL;
    return x->hex;
}

static void cache_save(const char *file, long long taken_ns, const struct entry *v, size_t n)
{
    if (!file)
        return;
    struct buf b = BUF_INIT;
    buf_addf(&b, "slipway-stat-cache 1 %lld\n", taken_ns);
    for (size_t i = 0; i < n; i++)
        buf_addf(&b, "%llu %llu %llu %lld %lld %s %s\n", (unsigned long long)v[i].sb.st_dev,
                 (unsigned long long)v[i].sb.st_ino, (unsigned long long)v[i].sb.st_size,
                 ts_ns(&v[i].sb.st_mtim), ts_ns(&v[i].sb.st_ctim), v[i].blob, v[i].path);
    char *dir = xstrdup(file);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        fs_mkdir_p(dir, NULL);
    }
    /* The cache is an optimisation: failing to save it only costs time. */
    fs_write_atomic(file, b.data, b.len, NULL);
    free(dir);
    buf_free(&b);
}

static void cache_free(struct stat_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].path);
    free(c->v);
}

/* ---- hashing pool ---------------------------------------------------------- */

struct pool {
    struct store *st;
    struct entry *v;
    size_t n;
    const struct stat_cache *cache;
    atomic_size_t next;
    atomic_int failed;
    pthread_mutex_t lock; /* guards err */
    struct sw_err err;
    int rc;
};

static void pool_fail(struct pool *p, int rc, const struct sw_err *e)
{
    pthread_mutex_lock(&p->lock);
    if (!p->rc) {
        p->rc = rc;
        p->err = *e;
    }
    pthread_mutex_unlock(&p->lock);
    atomic_store(&p->failed, 1);
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_size == b->st_size && ts_ns(&a->st_mtim) == ts_ns(&b->st_mtim) &&
           a->st_ino == b->st_ino;
}

static int changed(struct sw_err *err, const struct entry *e)
{
    return sw_err_set(err, SW_ECHANGED, "%s: file changed while it was being read; try again",
                      e->path);
}

/* Reads, hashes and (when the blob is new) uploads one file. */
static int hash_one(struct pool *p, struct entry *e, struct sw_err *err)
{
    char key[128];
    const char *hit = cache_lookup(p->cache, e);
    struct store_stat ss;
    if (hit) {
        memcpy(e->blob, hit, sizeof(e->blob));
        release_blob_key(e->blob, key, sizeof(key));
        if (store_head(p->st, key, &ss, 0, NULL) == 0)
            return 0;
    }
    int fd = open(e->real, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return sw_err_set(err, SW_ECHANGED, "%s: file vanished while releasing", e->path);
        return sw_err_sys(err, errno, "%s", e->real);
    }
    struct stat before, after;
    char *body = NULL;
    int rc = 0;
    if (fstat(fd, &before) < 0) {
        rc = sw_err_sys(err, errno, "%s", e->real);
        goto out;
    }
    if (!same_file(&before, &e->sb)) {
        rc = changed(err, e);
        goto out;
    }
    e->hashed = 1;
    size_t size = (size_t)before.st_size, got = 0;
    struct sha256_ctx *h = sha256_new();
    size_t chunk = size <= SMALL_BODY ? size + 1 : 1 << 20;
    body = xmalloc(chunk);
    for (;;) {
        size_t room = size <= SMALL_BODY ? chunk - got : chunk;
        ssize_t n = read(fd, size <= SMALL_BODY ? body + got : body, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = sw_err_sys(err, errno, "%s", e->real);
            break;
        }
        if (n == 0)
            break;
        sha256_update(h, size <= SMALL_BODY ? body + got : body, (size_t)n);
        got += (size_t)n;
        if (size <= SMALL_BODY && got > size)
            break; /* grew while reading */
    }
    sha256_final_hex(h, e->blob);
    if (rc)
        goto out;
    if (got != size || fstat(fd, &after) < 0 || !same_file(&before, &after)) {
        rc = changed(err, e);
        goto out;
    }
    release_blob_key(e->blob, key, sizeof(key));
    if (store_head(p->st, key, &ss, 0, NULL) == 0)
        goto out;
    if (size <= SMALL_BODY) {
        rc = store_put(p->st, key, body, size, STORE_IF_ABSENT | STORE_BATCH, NULL, err);
    } else {
        char etag[SHA256_HEX_LEN + 1];
        rc = store_put_file(p->st, key, e->real, STORE_IF_ABSENT | STORE_BATCH, etag, err);
        if (!rc && strcmp(etag, e->blob) != 0)
            rc = changed(err, e);
    }
    if (!rc)
        e->new_blob = 1;
out:
    free(body);
    close(fd);
    return rc;
}

static void *pool_worker(void *arg)
{
    struct pool *p = arg;
    struct sw_err err = {0};
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n || atomic_load(&p->failed))
            break;
        int rc = hash_one(p, &p->v[i], &err);
        if (rc) {
            pool_fail(p, rc, &err);
            break;
        }
    }
    return NULL;
}

static int hash_all(struct store *st, struct entry *v, size_t n, const struct stat_cache *cache,
                    int threads, struct sw_err *err)
{
    struct pool p = {.st = st, .v = v, .n = n, .cache = cache};
    pthread_mutex_init(&p.lock, NULL);
    if (threads <= 0)
        threads = sys_ncpu();
    if ((size_t)threads > n)
        threads = (int)n;
    pthread_t *tids = xcalloc((size_t)threads, sizeof(*tids));
    int started = 0;
    for (; started < threads; started++)
        if (pthread_create(&tids[started], NULL, pool_worker, &p) != 0)
            break;
    if (started == 0)
        pool_worker(&p);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    free(tids);
    pthread_mutex_destroy(&p.lock);
    if (p.rc && err)
        *err = p.err;
    return p.rc;
}

/* ---- provenance ---------------------------------------------------------- */

/* Runs git with args in dir; returns its first output line (caller frees) or NULL. */
static char *git_line(const char *dir, const char *const args[])
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return NULL;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    if (pid == 0) {
        const char *argv[12] = {"git", "-C", dir};
        int i = 3;
        for (; args[i - 3] && i < 11; i++)
            argv[i] = args[i - 3];
        argv[i] = NULL;
        int devnull = open("/dev/null", O_RDWR);
        dup2(fds[1], 1);
        if (devnull >= 0) {
            dup2(devnull, 2);
            dup2(devnull, 0);
        }
        execvp("git", (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char out[512];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fds[0], out + got, sizeof(out) - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == sizeof(out) - 1)
            break;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    out[got] = '\0';
    out[strcspn(out, "\n")] = '\0';
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !out[0])
        return NULL;
    return xstrdup(out);
}

static void git_facts(struct release *r)
{
    static const char *const head[] = {"rev-parse", "--verify", "-q", "HEAD", NULL};
    static const char *const ref[] = {"symbolic-ref", "-q", "HEAD", NULL};
    static const char *const tag[] = {"describe", "--tags", "--exact-match", "HEAD", NULL};
    r->commit = git_line(r->source_dir, head);
    if (!r->commit)
        return;
    r->ref = git_line(r->source_dir, ref);
    r->tag = git_line(r->source_dir, tag);
}

static char *new_id(int64_t ms)
{
    unsigned char rnd[3] = {0};
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
        unsigned v = (unsigned)getpid() ^ (unsigned)time_mono_ms();
        memcpy(rnd, &v, sizeof(rnd));
    }
    char iso[40], hex[7];
    time_format_iso(ms, iso, sizeof(iso));
    hex_encode(rnd, 3, hex);
    /* 2026-11-25T08:25:06.123Z → r-20261125-082506-123-9f3a1c */
    return xasprintf("r-%.4s%.2s%.2s-%.2s%.2s%.2s-%.3s-%s", iso, iso + 5, iso + 8, iso + 11,
                     iso + 14, iso + 17, iso + 20, hex);
}

/* ---- release_create ---------------------------------------------------------- */

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* New bodies, counted once even when several files share one. */
static size_t count_new_blobs(const struct entry *v, size_t n)
{
    const char **blobs = xcalloc(n, sizeof(*blobs));
    size_t m = 0, distinct = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].new_blob)
            blobs[m++] = v[i].blob;
    if (m)
        qsort(blobs, m, sizeof(*blobs), cmp_strp);
    for (size_t i = 0; i < m; i++)
        distinct += i == 0 || strcmp(blobs[i], blobs[i - 1]) != 0;
    free(blobs);
    return distinct;
}

int release_create(struct store *st, const struct release_create_opts *opts, char **id_out,
                   struct release_create_result *res, struct sw_err *err)
{
    struct walk w = {0};
    struct stat_cache cache = {0};
    struct release r = {0};
    char *root = NULL, *doc = NULL, *key = NULL;
    int rc = 0;
    struct timespec t0;
    clock_gettime(CLOCK_REALTIME, &t0);
    memset(res, 0, sizeof(*res));

    struct stat sb;
    if (stat(opts->dir, &sb) < 0) {
        rc = sw_err_sys(err, errno, "%s", opts->dir);
        goto out;
    }
    if (!S_ISDIR(sb.st_mode)) {
        rc = sw_err_set(err, SW_EINVAL, "%s: not a directory", opts->dir);
        goto out;
    }
    if (!(root = realpath(opts->dir, NULL))) {
        rc = sw_err_sys(err, errno, "%s", opts->dir);
        goto out;
    }
    w.root = root;
    w.rootlen = strlen(root);
    w.dirs_dev[0] = sb.st_dev;
    w.dirs_ino[0] = sb.st_ino;
    w.depth = 1;
    if ((rc = walk_dir(&w, root, "", err)))
        goto out;
    if (w.n == 0) {
        rc = sw_err_set(err, RELEASE_EEMPTY, "%s: no files; an empty directory is not a release",
                        opts->dir);
        goto out;
    }
    qsort(w.v, w.n, sizeof(*w.v), cmp_entry);

    cache_load(opts->stat_cache, &cache);
    if ((rc = hash_all(st, w.v, w.n, &cache, opts->threads, err)))
        goto out;
    if ((rc = store_batch_commit(st, err)))
        goto out;

    r.created_ms = time_now_ms();
    r.id = new_id(r.created_ms);
    r.message = opts->message ? xstrdup(opts->message) : NULL;
    r.user = xstrdup(sys_user());
    r.host = xstrdup(sys_host());
    r.source_dir = xstrdup(root);
    git_facts(&r);
    r.files = xcalloc(w.n, sizeof(*r.files));
    for (size_t i = 0; i < w.n; i++) {
        struct release_file *f = &r.files[r.nfiles++];
        f->path = w.v[i].path;
        memcpy(f->blob, w.v[i].blob, sizeof(f->blob));
        f->size = (uint64_t)w.v[i].sb.st_size;
        f->type = (char *)release_content_type(f->path);
        f->cache = (char *)release_cache_policy(f->path);
        r.bytes += f->size;
        res->hashed += (size_t)w.v[i].hashed;
    }
    res->new_blobs = count_new_blobs(w.v, w.n);
    size_t len;
    doc = release_manifest_dump(&r, &len);
    if (!doc) {
        rc = sw_err_set(err, SW_EINVAL, "cannot encode manifest (file names must be UTF-8)");
        goto out;
    }
    key = xasprintf("releases/%s.json", r.id);
    if ((rc = store_put(st, key, doc, len, STORE_IF_ABSENT, NULL, err)))
        goto out;
    cache_save(opts->stat_cache, ts_ns(&t0), w.v, w.n);
    res->files = r.nfiles;
    res->bytes = r.bytes;
    *id_out = r.id;
    r.id = NULL;
out:
    if (rc)
        store_batch_abort(st);
    for (size_t i = 0; i < w.n; i++) {
        free(w.v[i].path);
        free(w.v[i].real);
    }
    free(w.v);
    free(r.files); /* paths, types and caches were borrowed */
    free(r.id);
    free(r.message);
    free(r.user);
    free(r.host);
    free(r.source_dir);
    free(r.commit);
    free(r.ref);
    free(r.tag);
    cache_free(&cache);
    free(doc);
    free(key);
    free(root);
    return rc;
}
