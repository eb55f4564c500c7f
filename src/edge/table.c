/*
 * Release tables: a release turned into what a worker needs to answer a
 * request without computing anything — an open-addressed hash from path to
 * entry, each entry with its response headers already formatted, its body in
 * memory (small) or an open file descriptor for sendfile (large), and its
 * precompressed variants: the gzip and br bodies the manifest names beside
 * each file (release create made them), one rep each, with its own ETag,
 * Content-Encoding and Vary. A file "x.gz" in the release is only ever the
 * file x.gz; it is x's gzip variant when the manifest says so.
 *
 * A table is built entirely before it is published and never changed after,
 * so workers read it without locks. A path set is the same index over a
 * release's paths alone: what the edge keeps of the release a live one
 * replaced, to recognise a 404 for a path that release served.
 */
#include "edge/internal.h"
#include "release/release.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* The open-addressed index shared by tables and path sets: a power of two at least twice the
 * entries (so a probe ends at an empty slot soon), each slot an index + 1, 0 when empty. */
static size_t slots_for(size_t n)
{
    size_t k = 16;
    while (k < n * 2)
        k *= 2;
    return k;
}

static void slot_put(uint32_t *slots, size_t nslots, uint32_t hash, size_t i)
{
    size_t j = hash & (nslots - 1);
    while (slots[j])
        j = (j + 1) & (nslots - 1);
    slots[j] = (uint32_t)i + 1;
}

const struct entry *table_find(const struct table *t, const char *path, size_t len)
{
    uint32_t h = fnv1a(path, len);
    size_t mask = t->nslots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t v = t->slots[i];
        if (!v)
            return NULL;
        const struct entry *e = &t->entries[v - 1];
        if (e->hash == h && e->path_len == len && !memcmp(e->path, path, len))
            return e;
    }
}

void table_free(struct table *t)
{
    if (!t)
        return;
    /* Closed before released: a body the cache deletes is then really gone. */
    for (size_t i = 0; i < t->nfds; i++) {
        close(t->fds[i]);
        blob_cache_release(t->cache, t->cached[i]);
    }
    free(t->fds);
    free(t->cached);
    if (t->block_fd >= 0) {
        munmap(t->body_block, t->block_len);
        close(t->block_fd);
    } else {
        free(t->body_block);
    }
    for (size_t i = 0; i < t->n; i++)
        free((char *)t->entries[i].path);
    free(t->entries);
    free(t->slots);
    buf_free(&t->arena);
    free(t->refs);
    free(t->release_id);
    free(t);
}

/* A loaded body, shared by every rep with the same blob. */
struct body {
    const char *hex;
    const char *path; /* one file with this body, for messages */
    uint64_t size;
    char *mem;
    int fd;
    const char *pack; /* its pack (NULL: its own blob), and where it is there */
    uint64_t at;
};

/* In memory: small bodies, and every packed one (at most
 * RELEASE_PACK_BODY_MAX: read with its pack, never streamed on its own). */
static int body_in_memory(const struct body *b, size_t small_max)
{
    return b->size <= small_max || b->pack;
}

/* Names what is wrong with a body in terms an operator can act on. */
static int body_error(struct sw_err *err, int rc, const struct body *b, const char *key)
{
    if (rc == SW_ENOTFOUND)
        return sw_err_set(err, SW_ENOTFOUND, "body of %s (%s) is missing from the store", b->path,
                          key);
    if (rc == TABLE_EHASH)
        return sw_err_set(err, TABLE_EHASH,
                          "body of %s (%s) does not match its hash or size; the store holds "
                          "damaged or forged bytes",
                          b->path, key);
    return sw_err_prefix(err, "body of %s", b->path);
}

static int cmp_body(const void *a, const void *b)
{
    return strcmp(((const struct body *)a)->hex, ((const struct body *)b)->hex);
}

/* Makes a large body local (streamed, verified) and opens it; t holds the
 * descriptor and one reference in the cache until table_free. */
static int fetch_large(struct store *st, struct table *t, struct body *b, struct sw_err *err)
{
    char key[128];
    release_blob_key(b->hex, key, sizeof(key));
    int rc = blob_cache_acquire(t->cache, st, b->hex, b->size, &b->fd, err);
    if (rc)
        return body_error(err, rc, b, key);
    memcpy(t->cached[t->nfds], b->hex, SHA256_HEX_LEN + 1);
    t->fds[t->nfds++] = b->fd;
    return 0;
}

static struct body *find_body(struct body *v, size_t n, const char *hex)
{
    struct body k = {.hex = hex};
    return bsearch(&k, v, n, sizeof(*v), cmp_body);
}

static const char *cache_policy(const struct env_config *cfg, const struct release_file *f)
{
    for (size_t i = 0; cfg && i < cfg->ncache; i++)
        if (fnmatch(cfg->cache[i].pattern, f->path, 0) == 0)
            return cfg->cache[i].policy;
    return f->cache;
}

/* Where a rep's strings start in the arena; turned into pointers once it stops growing. The
 * ETag and the type are read from inside the header block, never stored twice: with three
 * representations a file that saves 280 bytes, 2.7 MiB of a 10,000-file release. */
struct rep_off {
    size_t hdr, meta, etag, type;
};

/* Formats a rep's headers into the arena. Last-Modified is formatted here, once per release,
 * never per request. */
static void rep_headers(struct buf *arena, struct rep_off *o, const char *type, const char *cache,
                        const char *hex, const char *encoding, int vary, time_t mtime)
{
    static const char ct[] = "Content-Type: ", et[] = "ETag: ";
    char date[HTTP_DATE_LEN + 1];
    http_date_format(mtime, date);
    o->hdr = arena->len;
    o->type = o->hdr + sizeof(ct) - 1;
    buf_addf(arena, "%s%s\r\n", ct, type);
    if (encoding)
        buf_addf(arena, "Content-Encoding: %s\r\n", encoding);
    o->meta = arena->len;
    buf_addf(arena, "Cache-Control: %s\r\n", cache);
    o->etag = arena->len + sizeof(et) - 1;
    buf_addf(arena, "%s\"%s\"\r\nLast-Modified: %s\r\n", et, hex, date);
    if (vary)
        buf_adds(arena, "Vary: Accept-Encoding\r\n");
    buf_add(arena, "", 1);
}

/* RFC 9110 §8.8.2.1: the file's time, or the release's when the manifest has none, and never
 * later than now (a Last-Modified in the future MUST be replaced by the message's date; the
 * time the table is loaded is earlier than any response from it). */
static time_t last_modified(const struct release *r, const struct release_file *f, time_t now)
{
    time_t t = f->has_mtime ? (time_t)f->mtime : (time_t)(r->created_ms / 1000);
    return t < now ? t : now;
}

/* ---- small bodies: from the tables loaded already, else from the store ------------ */

/* A body in memory in a table loaded before, found by its name. */
struct held {
    const char *hex; /* into the rep's ETag, "\"<hex>\"" */
    const char *mem;
    uint64_t size;
};

static int cmp_held(const void *a, const void *b)
{
    return memcmp(((const struct held *)a)->hex, ((const struct held *)b)->hex, SHA256_HEX_LEN);
}

/* Every in-memory body of the tables in from, sorted by name; *n of them. */
static struct held *held_index(const struct table *const *from, size_t nfrom, size_t *n)
{
    size_t cap = 0;
    *n = 0;
    for (size_t i = 0; i < nfrom; i++)
        if (from[i])
            cap += from[i]->n * REP_COUNT;
    struct held *v = xcalloc(cap + 1, sizeof(*v));
    for (size_t i = 0; i < nfrom; i++)
        for (size_t j = 0; from[i] && j < from[i]->n; j++)
            for (int k = 0; k < REP_COUNT; k++) {
                const struct rep *p = &from[i]->entries[j].rep[k];
                if (from[i]->entries[j].has[k] && p->body && p->etag_len == SHA256_HEX_LEN + 2)
                    v[(*n)++] = (struct held){p->etag + 1, p->body, p->size};
            }
    qsort(v, *n, sizeof(*v), cmp_held);
    return v;
}

/* Fetches bodies from the store, several at once on a remote store (a request
 * each), each checked against its name and size before it is kept. */
struct fetch {
    struct store *st;
    struct body **todo; /* packed bodies sorted by pack, each pack's together */
    size_t *jobs;       /* where each job starts in todo: a loose body, or a pack's bodies */
    size_t n;           /* jobs */
    atomic_size_t next;
    atomic_int failed;
    pthread_mutex_t lock; /* guards rc and err */
    int rc;
    struct sw_err err;
};

static int fetch_one(struct store *st, struct body *b, struct sw_err *err)
{
    char key[128], etag[SHA256_HEX_LEN + 1], *data = NULL;
    size_t len;
    release_blob_key(b->hex, key, sizeof(key));
    int rc = store_get(st, key, &data, &len, etag, err);
    if (rc)
        return body_error(err, rc, b, key);
    if (strcmp(etag, b->hex) != 0 || len != b->size)
        rc = body_error(err, TABLE_EHASH, b, key);
    else
        memcpy(b->mem, data, len);
    free(data);
    return rc;
}

/* Collects a pack's bytes up to need, then stops the read (PACK_ENOUGH). */
struct upto {
    struct buf b;
    uint64_t need;
};
#define PACK_ENOUGH (-301)

static int collect_upto(void *arg, const void *data, size_t len, struct sw_err *err)
{
    (void)err;
    struct upto *u = arg;
    uint64_t room = u->need - u->b.len;
    buf_add(&u->b, data, len < room ? len : (size_t)room);
    return u->b.len >= u->need ? PACK_ENOUGH : 0;
}

/* Reads the pack of the n bodies v (all in it) once, up to the end of the
 * last of them (a release names at most 64 MiB of a pack, and a node holds no
 * more of it than the bodies need), and takes each body's slice, checked
 * against its name and size as a blob is. A pack is made for one release, so
 * a fresh node needs most of what each holds. */
static int fetch_pack(struct store *st, struct body **v, size_t n, struct sw_err *err)
{
    char key[128], hex[SHA256_HEX_LEN + 1];
    struct upto u = {BUF_INIT, 0};
    uint64_t len = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i]->at + v[i]->size > u.need)
            u.need = v[i]->at + v[i]->size;
    release_pack_key(v[0]->pack, key, sizeof(key));
    int rc =
        u.need ? store_get_stream(st, key, RELEASE_PACK_MAX, collect_upto, &u, NULL, &len, err) : 0;
    if (rc && rc != PACK_ENOUGH) {
        /* Longer than any pack slipway writes: not one of ours. */
        rc = body_error(err, rc == STORE_ETOOBIG ? TABLE_EHASH : rc, v[0], key);
        goto out;
    }
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i]->at + v[i]->size <= u.b.len)
            sha256_hex(u.b.data + v[i]->at, (size_t)v[i]->size, hex);
        if (v[i]->at + v[i]->size > u.b.len || strcmp(hex, v[i]->hex) != 0) {
            rc = body_error(err, TABLE_EHASH, v[i], key);
            goto out;
        }
        memcpy(v[i]->mem, u.b.data + v[i]->at, (size_t)v[i]->size);
    }
out:
    buf_free(&u.b);
    return rc;
}

static void *fetch_thread(void *arg)
{
    struct fetch *f = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&f->next, 1);
        if (i >= f->n || atomic_load(&f->failed))
            break;
        struct sw_err e = {0};
        struct body **v = f->todo + f->jobs[i];
        size_t nv = f->jobs[i + 1] - f->jobs[i];
        int rc = v[0]->pack ? fetch_pack(f->st, v, nv, &e) : fetch_one(f->st, v[0], &e);
        if (rc) {
            pthread_mutex_lock(&f->lock);
            if (!f->rc) {
                f->rc = rc;
                f->err = e;
            }
            pthread_mutex_unlock(&f->lock);
            atomic_store(&f->failed, 1);
        }
    }
    return NULL;
}

#define FETCH_THREADS_MAX 16

/* Fills the memory of every small body (b->mem set by the caller): copied from
 * a table loaded before when one holds it (a new release of a site shares
 * most bodies with the one it replaces, and on S3 each would be a request),
 * else fetched. */
static int cmp_todo(const void *a, const void *b)
{
    const struct body *x = *(struct body *const *)a, *y = *(struct body *const *)b;
    if (!x->pack || !y->pack)
        return (x->pack != NULL) - (y->pack != NULL);
    return strcmp(x->pack, y->pack);
}

/* Where a body of size bytes goes in the block of in-memory bodies when the
 * block's end is at off: one sent with sendfile (EDGE_SENDFILE_MIN and up)
 * starts on a page, since one that straddles a page more needs one more
 * fragment per socket buffer, and a 64 KiB body then no longer fits one
 * (measured: 29,000 requests a second unaligned, 78,000 aligned). */
static uint64_t block_place(uint64_t off, uint64_t size, uint64_t page)
{
    if (size < EDGE_SENDFILE_MIN || page == 0 || page > EDGE_SENDFILE_MIN)
        return off;
    return (off + page - 1) / page * page;
}

/* The block of in-memory bodies, in a memfd where one can be made: bodies
 * from EDGE_SENDFILE_MIN up are then sent with sendfile from its pages, which
 * copies nothing in the server, and a local client's copy reads pages its
 * core already holds instead of socket buffers another core just wrote
 * (bench/edge.sh's 64 KiB row: 66,000 -> 78,000 requests a second). */
static void block_alloc(struct table *t, size_t len)
{
    t->block_len = len;
    t->block_fd = len ? memfd_create("slipway-bodies", MFD_CLOEXEC) : -1;
    if (t->block_fd >= 0) {
        void *m = MAP_FAILED;
        if (ftruncate(t->block_fd, (off_t)len) == 0)
            m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, t->block_fd, 0);
        if (m != MAP_FAILED) {
            t->body_block = m;
            return;
        }
        close(t->block_fd);
        t->block_fd = -1;
    }
    t->body_block = xmalloc(len);
}

/* Fills the memory of every in-memory body (b->mem set by the caller):
 * copied from a table loaded before when one holds it (a new release of a
 * site shares most bodies with the one it replaces, and on S3 each would be
 * a request), else fetched: a request per loose body, one per pack. */
static int load_small(struct store *st, struct body *bodies, size_t nb, size_t small_max,
                      const struct table *const *from, size_t nfrom, struct sw_err *err)
{
    size_t nheld, n = 0, nj = 0;
    struct held *held = held_index(from, nfrom, &nheld);
    struct body **todo = xcalloc(nb + 1, sizeof(*todo));
    for (size_t i = 0; i < nb; i++) {
        struct body *b = &bodies[i];
        if (!body_in_memory(b, small_max))
            continue;
        struct held k = {.hex = b->hex}, *h = NULL;
        if (nheld)
            h = bsearch(&k, held, nheld, sizeof(*held), cmp_held);
        if (h && h->size == b->size)
            memcpy(b->mem, h->mem, b->size);
        else
            todo[n++] = b;
    }
    free(held);
    qsort(todo, n, sizeof(*todo), cmp_todo);
    size_t *jobs = xcalloc(n + 1, sizeof(*jobs));
    for (size_t i = 0; i < n; i++)
        if (!todo[i]->pack || i == 0 || !todo[i - 1]->pack ||
            strcmp(todo[i - 1]->pack, todo[i]->pack))
            jobs[nj++] = i;
    jobs[nj] = n;
    struct fetch f = {.st = st, .todo = todo, .jobs = jobs, .n = nj};
    pthread_mutex_init(&f.lock, NULL);
    size_t nthreads = store_is_remote(st) ? (size_t)store_concurrency(st) : 1;
    if (nthreads > FETCH_THREADS_MAX)
        nthreads = FETCH_THREADS_MAX;
    if (nthreads > nj / 4 + 1)
        nthreads = nj / 4 + 1;
    pthread_t th[FETCH_THREADS_MAX];
    size_t started = 0;
    for (size_t i = 1; i < nthreads; i++)
        if (pthread_create(&th[started], NULL, fetch_thread, &f) == 0)
            started++;
    fetch_thread(&f); /* this thread too: with no other, it fetches them all */
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&f.lock);
    free(todo);
    free(jobs);
    if (f.rc && err)
        *err = f.err;
    return f.rc;
}

int table_load(struct store *st, const char *release_id, const struct env_config *cfg, int site,
               struct blob_cache *cache, size_t small_max, int nworkers,
               const struct table *const *from, size_t nfrom, struct table **out,
               struct sw_err *err)
{
    struct release *r = NULL;
    struct body *bodies = NULL;
    size_t nb = 0;
    /* From a remote store, manifests are kept beside the bodies (manifests/,
     * which the cache's cleaning leaves alone): a release written over the
     * one loaded before reads its base from there, not the store again. */
    char *copies =
        store_is_remote(st) && cache ? path_join(blob_cache_dir(cache), "manifests") : NULL;
    int rc = release_load_copy(st, release_id, copies, &r, err);
    free(copies);
    if (rc)
        return rc;
    struct table *t = xcalloc(1, sizeof(*t));
    t->block_fd = -1;
    long page = sysconf(_SC_PAGESIZE);
    t->page = page > 0 ? (uint64_t)page : 4096;
    t->release_id = xstrdup(release_id);
    t->site = site;
    t->nworkers = nworkers;
    t->refs = xcalloc_aligned((size_t)nworkers, sizeof(*t->refs), CACHELINE);

    /* Distinct bodies, variants included, each loaded once. The parser made
     * every variant smaller than its file, so they at most double the bytes. */
    size_t nall = 0;
    bodies = xcalloc(r->nfiles * (1 + RELEASE_VARIANTS) + 1, sizeof(*bodies));
    for (size_t i = 0; i < r->nfiles; i++) {
        struct release_body bv[RELEASE_VARIANTS + 1];
        size_t nbv = release_file_bodies(&r->files[i], bv);
        for (size_t j = 0; j < nbv; j++)
            bodies[nall++] = (struct body){.hex = bv[j].blob,
                                           .path = r->files[i].path,
                                           .size = bv[j].size,
                                           .fd = -1,
                                           .pack = bv[j].pack,
                                           .at = bv[j].at};
    }
    qsort(bodies, nall, sizeof(*bodies), cmp_body);
    for (size_t i = 0; i < nall; i++)
        if (nb == 0 || strcmp(bodies[nb - 1].hex, bodies[i].hex) != 0)
            bodies[nb++] = bodies[i];
    /* Small bodies go into one block of exactly their total size: a buffer per
     * body would cost whole pages each and double the memory of a site of many
     * small files. */
    uint64_t block = 0, large = 0;
    for (size_t i = 0; i < nb; i++) {
        if (body_in_memory(&bodies[i], small_max))
            block = block_place(block, bodies[i].size, t->page) + bodies[i].size;
        else
            large += bodies[i].size;
    }
    /* Before anything is fetched: a release that can never fit is refused. */
    if ((rc = blob_cache_fits(cache, large, err)))
        goto out;
    block_alloc(t, (size_t)block);
    t->fds = xcalloc(nb, sizeof(int));
    t->cached = xcalloc(nb, sizeof(*t->cached));
    t->cache = cache;
    for (size_t i = 0; i < nb; i++)
        if (body_in_memory(&bodies[i], small_max)) {
            t->mem_bytes = block_place(t->mem_bytes, bodies[i].size, t->page);
            bodies[i].mem = t->body_block + t->mem_bytes;
            t->mem_bytes += bodies[i].size;
        }
    if ((rc = load_small(st, bodies, nb, small_max, from, nfrom, err)))
        goto out;
    for (size_t i = 0; i < nb; i++)
        if (!body_in_memory(&bodies[i], small_max) && (rc = fetch_large(st, t, &bodies[i], err)))
            goto out;

    /* Entries with headers; arena offsets are turned into pointers at the end
     * because the arena may move while it grows. */
    t->n = r->nfiles;
    t->entries = xcalloc(t->n, sizeof(*t->entries));
    struct rep_off(*off)[REP_COUNT] = xcalloc(t->n, sizeof(*off));
    time_t now = time(NULL);
    /* rep k is the manifest's variant k - 1: the two orders must agree. */
    _Static_assert(REP_GZIP == RELEASE_GZIP + 1 && REP_BR == RELEASE_BR + 1, "rep order");
    for (size_t i = 0; i < t->n; i++) {
        const struct release_file *f = &r->files[i];
        struct entry *e = &t->entries[i];
        e->path = xstrdup(f->path);
        e->path_len = (uint32_t)strlen(f->path);
        e->hash = fnv1a(e->path, e->path_len);
        const char *hex[REP_COUNT] = {f->blob};
        /* Every rep of a file with variants says Vary: Accept-Encoding, the
         * identity one too: a shared cache must not hand the identity body it
         * stored for one client to another that accepts br, nor the reverse
         * (RFC 9110 section 12.5.5). */
        int vary = 0;
        for (int k = 1; k < REP_COUNT; k++) {
            hex[k] = f->var[k - 1].blob[0] ? f->var[k - 1].blob : NULL;
            vary |= hex[k] != NULL;
        }
        const char *policy = cache_policy(cfg, f);
        for (int k = 0; k < REP_COUNT; k++) {
            if (!hex[k])
                continue;
            struct body *b = find_body(bodies, nb, hex[k]);
            e->has[k] = 1;
            e->rep[k].body = b->mem;
            e->rep[k].fd = b->mem ? t->block_fd : b->fd;
            e->rep[k].size = b->size;
            /* Every representation of a file was made from the same file: its time. */
            e->rep[k].mtime = last_modified(r, f, now);
            rep_headers(&t->arena, &off[i][k], f->type, policy, hex[k],
                        k ? release_variant_names[k - 1] : NULL, vary, (time_t)e->rep[k].mtime);
        }
    }
    for (size_t i = 0; i < t->n; i++)
        for (int k = 0; k < REP_COUNT; k++)
            if (t->entries[i].has[k]) {
                struct rep *p = &t->entries[i].rep[k];
                p->hdr = t->arena.data + off[i][k].hdr;
                p->hdr_len = (uint32_t)strlen(p->hdr);
                p->meta_off = (uint32_t)(off[i][k].meta - off[i][k].hdr);
                p->etag = t->arena.data + off[i][k].etag;
                p->etag_len = SHA256_HEX_LEN + 2;
                p->type = t->arena.data + off[i][k].type;
                p->type_len = (uint32_t)strcspn(p->type, "\r");
            }
    free(off);

    t->nslots = slots_for(t->n);
    t->slots = xcalloc(t->nslots, sizeof(*t->slots));
    for (size_t i = 0; i < t->n; i++)
        slot_put(t->slots, t->nslots, t->entries[i].hash, i);
    t->not_found = table_find(t, "404.html", 8);
    if (cfg && cfg->spa_fallback)
        t->fallback = table_find(t, cfg->spa_fallback + 1, strlen(cfg->spa_fallback + 1));
out:
    if (rc)
        sw_err_prefix(err, "release %s", release_id);
    free(bodies); /* its memory and fds belong to t now */
    release_free(r);
    if (rc)
        table_free(t);
    else
        *out = t;
    return rc;
}

/* ---- path sets ------------------------------------------------------------------------ */

/* The manifest parser bounds what a set can hold, and so its offsets. */
_Static_assert((uint64_t)RELEASE_FILES_MAX *(RELEASE_PATH_MAX + 1) < UINT32_MAX,
               "path set offsets are 32-bit");

int pathset_load(struct store *st, const char *release_id, struct pathset **out, struct sw_err *err)
{
    struct release *r = NULL;
    int rc = release_load(st, release_id, &r, err);
    if (rc) {
        sw_err_prefix(err, "release %s", release_id);
        return rc;
    }
    struct pathset *p = xcalloc(1, sizeof(*p));
    p->release_id = xstrdup(release_id);
    size_t bytes = 0;
    for (size_t i = 0; i < r->nfiles; i++)
        bytes += strlen(r->files[i].path) + 1;
    p->arena = xmalloc(bytes + 1);
    p->v = xcalloc(r->nfiles + 1, sizeof(*p->v));
    size_t at = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        const char *path = r->files[i].path;
        size_t len = strlen(path);
        /* Served with 404 whenever another path is missing: not a page of its own. */
        if (!strcmp(path, "404.html"))
            continue;
        memcpy(p->arena + at, path, len + 1);
        p->v[p->n++] = (struct pathset_entry){(uint32_t)at, (uint32_t)len, fnv1a(path, len)};
        at += len + 1;
    }
    p->nslots = slots_for(p->n);
    p->slots = xcalloc(p->nslots, sizeof(*p->slots));
    for (size_t i = 0; i < p->n; i++)
        slot_put(p->slots, p->nslots, p->v[i].hash, i);
    release_free(r);
    *out = p;
    return 0;
}

void pathset_free(struct pathset *p)
{
    if (!p)
        return;
    free(p->release_id);
    free(p->arena);
    free(p->v);
    free(p->slots);
    free(p);
}

int pathset_has(const struct pathset *p, const char *path, size_t len)
{
    uint32_t h = fnv1a(path, len);
    size_t mask = p->nslots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t v = p->slots[i];
        if (!v)
            return 0;
        const struct pathset_entry *e = &p->v[v - 1];
        if (e->hash == h && e->len == len && !memcmp(p->arena + e->off, path, len))
            return 1;
    }
}
