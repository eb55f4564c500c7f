/*
 * release_create: directory → blobs + manifest.
 *
 * One pass over the directory, then one commit. The scan runs one thread per
 * core: the threads share a stack of directories to list, follow symbolic
 * links that stay inside the directory (and, when asked, those that leave
 * it), and hash each regular file as they find it; each file is read once, and
 * its body is handed to the store as a batched put-if-absent only when the
 * blob is not there yet. The files are then sorted by path, the store commits
 * the batch (syncfs), and only then is the manifest written, so a manifest
 * never names a body that is not durable.
 *
 * A file that can never be released (a bad link, a device, a name no URL can
 * carry) does not stop the walk: the walk goes on to find every such file, so
 * one run reports them all, but reads no more bodies, and the batch is then
 * discarded.
 *
 * A stat cache, like git's index, maps (device, inode, size, mtime, ctime) to
 * the hash from the previous run so an unchanged file is not read again. An
 * entry is trusted only when the file's mtime is older than the moment the
 * cache was taken, minus a margin: a file changed in the same clock tick as the
 * earlier read could otherwise look unchanged ("racy git").
 *
 * Compression runs on the same threads, right after a body is hashed and while
 * it is still in memory (compress.c); the stat cache remembers the variants
 * too, as they are a pure function of the body, so an unchanged file is not
 * compressed again; where there is no stat cache (a fresh checkout), the
 * variants the newest releases hold for the same bodies are checked and
 * reused (reuse.c). A file found only as "x.gz" is checked for when it is
 * found: its directory is open, so whether "x" exists is one fstatat.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SMALL_BODY (8u << 20)      /* read whole, hash and upload from memory */
#define RACY_MARGIN_NS 100000000LL /* coarse mtime clock: at most one tick behind */

struct entry {
    char *path; /* relative */
    char *real; /* absolute, symlinks resolved */
    struct stat sb;
    char blob[SHA256_HEX_LEN + 1];
    uint64_t size; /* of the body: sb.st_size, except for x decompressed from x.gz */
    struct release_variant var[RELEASE_VARIANTS];
    int new_blob;
    int hashed;
    int new_var[RELEASE_VARIANTS]; /* this call wrote the variant's blob */
    int compressed;                /* variants made (not taken from the stat cache) */
    int reused;                    /* variants taken from an earlier release (reuse.c) */
    int from_gz; /* "x" made from the file "x.gz" (real, sb): see derive_from_gz */
};

/* Where a release keeps a body: in a pack (its index in the stat cache's
 * pack table) at an offset, or a blob of its own (WHERE_BLOB). */
#define WHERE_BLOB (-1)
#define BODIES (1 + RELEASE_VARIANTS) /* the body, then its variants */

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
    unsigned long long body; /* the body's size: the stat size, or x's for x.gz */
    struct release_variant var[RELEASE_VARIANTS];
    /* Where the release made names each body (the body, then its variants):
     * a pack's index in the cache's table, or WHERE_BLOB. Only with made. */
    int where[BODIES];
    unsigned long long at[BODIES];
};

struct stat_cache {
    struct cached *v;
    size_t n;
    long long taken_ns;
    /* Version 3: the release whose files the lines are, exactly (in path
     * order, with their bodies where it keeps them), and the digest of what
     * else it said (facts_digest); "" when unknown (an older cache, or lines
     * no release was made of). The pack table names the packs of "where". */
    char made[64];
    char digest[SHA256_HEX_LEN + 1];
    /* Version 4 adds made's depth (release.depth) and a digest of its files'
     * paths, types and caching (types_digest): a manifest may be written over
     * made, naming only what changed, when the rules still give every
     * unchanged file the type and caching made gave it. -1 and "": unknown. */
    int depth;
    char types[SHA256_HEX_LEN + 1];
    char (*packs)[SHA256_HEX_LEN + 1];
    size_t npacks;
    /* Bodies that need neither a put nor a touch (known_load), sorted. */
    char (*known)[96];
    size_t nknown;
    /* Bodies the same listing found missing, sorted: not touched (a request
     * that would fail), read and put. */
    char (*absent)[96];
    size_t nabsent;
};

/* Saturating: a file can carry any time (touch -d 2500-01-01), and ns since the epoch
 * overflow past 2262. The bound leaves room for the margins added to it; a saturated time
 * is in the future, so such a file is always read again. */
#define TS_SEC_MAX (LLONG_MAX / 1000000000LL - 4)
static long long ts_ns(const struct timespec *t)
{
    long long s = t->tv_sec;
    if (s > TS_SEC_MAX)
        s = TS_SEC_MAX;
    if (s < -TS_SEC_MAX)
        s = -TS_SEC_MAX;
    return s * 1000000000LL + t->tv_nsec;
}

/* Read a decimal number and the one space after it from *p. Hand-written
 * rather than sscanf, which was a tenth of a release in which nothing changed. */
static int take_num(char **p, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(*p, &end, 10);
    if (end == *p || *end != ' ' || errno)
        return 0;
    *out = v;
    *p = end + 1;
    return 1;
}

static int take_unum(char **p, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(*p, &end, 10);
    if (end == *p || *end != ' ' || errno || **p == '-')
        return 0;
    *out = v;
    *p = end + 1;
    return 1;
}

/* A variant in a cache line: "-" for none, else "sha256:size ". */
static int take_variant(char **p, struct release_variant *v)
{
    memset(v, 0, sizeof(*v));
    if ((*p)[0] == '-' && (*p)[1] == ' ') {
        *p += 2;
        return 1;
    }
    unsigned long long size;
    if (strspn(*p, "0123456789abcdef") != SHA256_HEX_LEN || (*p)[SHA256_HEX_LEN] != ':')
        return 0;
    char *q = *p + SHA256_HEX_LEN + 1;
    if (!take_unum(&q, &size) || size == 0)
        return 0;
    memcpy(v->blob, *p, SHA256_HEX_LEN);
    v->size = size;
    *p = q;
    return 1;
}

/* A body's place in a version 3 line: "-" for a blob of its own (or no
 * variant), else "PACK@OFFSET" with PACK an index in the pack table. */
static int take_where(char **p, const struct stat_cache *c, int *where, unsigned long long *at)
{
    *where = WHERE_BLOB;
    *at = 0;
    if ((*p)[0] == '-' && (*p)[1] == ' ') {
        *p += 2;
        return 1;
    }
    char *end;
    errno = 0;
    unsigned long long no = strtoull(*p, &end, 10);
    if (end == *p || *end != '@' || errno || **p == '-' || no >= c->npacks)
        return 0;
    *p = end + 1;
    if (**p == '-' || !take_unum(p, at))
        return 0;
    *where = (int)no;
    return 1;
}

/* The header of a version 3 cache: "slipway-stat-cache 3 TAKEN MADE DIGEST
 * NPACKS" (MADE and DIGEST "-" when unknown), then NPACKS lines of a pack's
 * name; version 4 adds "DEPTH TYPES" after NPACKS. Anything off and the cache
 * is read as knowing no release. (The cache is not fsynced, but one a crash
 * cut at a line's end cannot pass for a release of fewer files: the digest
 * covers every file's type and caching.) */
static char *take_header(char *line, int version, struct stat_cache *c)
{
    char made[64], digest[SHA256_HEX_LEN + 2], types[SHA256_HEX_LEN + 2] = "-";
    unsigned long np;
    int used = 0, depth = -1;
    if (version == 3 ? sscanf(line, "slipway-stat-cache 3 %lld %63s %65s %lu%n", &c->taken_ns, made,
                              digest, &np, &used) != 4
                     : sscanf(line, "slipway-stat-cache 4 %lld %63s %65s %lu %d %65s%n",
                              &c->taken_ns, made, digest, &np, &depth, types, &used) != 6)
        return NULL;
    if (line[used] != '\n' || np > (1u << 20))
        return NULL;
    char *p = line + used + 1;
    c->packs = xcalloc(np ? np : 1, sizeof(*c->packs));
    for (; c->npacks < np; c->npacks++, p += SHA256_HEX_LEN + 1) {
        if (strspn(p, "0123456789abcdef") != SHA256_HEX_LEN || p[SHA256_HEX_LEN] != '\n')
            return NULL;
        memcpy(c->packs[c->npacks], p, SHA256_HEX_LEN);
    }
    if (release_id_valid(made) && hex_lower_valid(digest, SHA256_HEX_LEN)) {
        memcpy(c->made, made, sizeof(c->made));
        memcpy(c->digest, digest, sizeof(c->digest));
        if (depth >= 0 && depth <= RELEASE_DEPTH_MAX && hex_lower_valid(types, SHA256_HEX_LEN)) {
            c->depth = depth;
            memcpy(c->types, types, sizeof(c->types));
        }
    }
    return p;
}

/* Lines: "dev ino size mtime_ns ctime_ns sha256 body gzip br path"; body is
 * the body's size, gzip and br are variants (take_variant), and the path is
 * the rest of the line, spaces included. Version 3 adds, before the path,
 * where the release made keeps each body (take_where). A line that does not
 * parse is skipped: the cache only saves time, so a damaged one costs a
 * re-read, never a wrong hash; but then the lines are no longer the release
 * made, which is forgotten. Version 1 caches had no variants: they are read
 * as empty. */
static void cache_load(const char *file, struct stat_cache *c)
{
    memset(c, 0, sizeof(*c));
    c->depth = -1;
    char *data;
    size_t len;
    if (!file || file_read_all(file, &data, &len, NULL))
        return;
    char *line = data, *nl = strchr(line, '\n');
    int v3 = 0;
    if (nl && (!strncmp(line, "slipway-stat-cache 3 ", 21) ||
               !strncmp(line, "slipway-stat-cache 4 ", 21))) {
        v3 = 1;
        if (!(nl = take_header(line, line[19] - '0', c))) {
            c->made[0] = '\0';
            goto out;
        }
        nl--; /* the lines start after it */
    } else if (!nl || sscanf(line, "slipway-stat-cache 2 %lld", &c->taken_ns) != 1) {
        goto out;
    }
    /* Sized once, by its lines: grown by doubling, the array was copied into
     * fresh pages (a page fault each) a few times for 2,000 lines. */
    size_t cap = 0;
    for (const char *q = nl + 1; (q = memchr(q, '\n', len - (size_t)(q - data))); q++)
        cap++;
    c->v = xmalloc((cap ? cap : 1) * sizeof(*c->v));
    for (line = nl + 1; *line; line = nl + 1) {
        if (!(nl = strchr(line, '\n'))) {
            c->made[0] = '\0';
            break; /* a last line without its newline was cut short */
        }
        *nl = '\0';
        struct cached e;
        char *p = line;
        int ok = take_unum(&p, &e.dev) && take_unum(&p, &e.ino) && take_unum(&p, &e.size) &&
                 take_num(&p, &e.mtime) && take_num(&p, &e.ctime) &&
                 strspn(p, "0123456789abcdef") == SHA256_HEX_LEN && p[SHA256_HEX_LEN] == ' ';
        if (ok) {
            memcpy(e.hex, p, SHA256_HEX_LEN);
            e.hex[SHA256_HEX_LEN] = '\0';
            p += SHA256_HEX_LEN + 1;
            ok = take_unum(&p, &e.body) && take_variant(&p, &e.var[RELEASE_GZIP]) &&
                 take_variant(&p, &e.var[RELEASE_BR]);
        }
        for (int k = 0; k < BODIES; k++) {
            e.where[k] = WHERE_BLOB;
            e.at[k] = 0;
            if (ok && v3)
                ok = take_where(&p, c, &e.where[k], &e.at[k]);
        }
        /* In path order, each once: what a release's files are. */
        if (ok && *p && c->n && strcmp(c->v[c->n - 1].path, p) >= 0)
            c->made[0] = '\0';
        if (!ok || !*p) {
            c->made[0] = '\0';
            continue;
        }
        e.path = xstrdup(p);
        c->v[c->n++] = e; /* n < cap: a line per newline */
    }
out:
    free(data);
}

static int cmp_cached(const void *k, const void *e)
{
    return strcmp(k, ((const struct cached *)e)->path);
}

/* The cached line of e when its stat data is unchanged and was not racy. */
static const struct cached *cache_lookup(const struct stat_cache *c, const struct entry *e)
{
    if (!c->n)
        return NULL;
    const struct cached *x = bsearch(e->path, c->v, c->n, sizeof(*c->v), cmp_cached);
    if (!x || x->dev != (unsigned long long)e->sb.st_dev ||
        x->ino != (unsigned long long)e->sb.st_ino ||
        x->size != (unsigned long long)e->sb.st_size || x->mtime != ts_ns(&e->sb.st_mtim) ||
        x->ctime != ts_ns(&e->sb.st_ctim) || x->mtime >= c->taken_ns - RACY_MARGIN_NS)
        return NULL;
    return x;
}

static void put_num(struct buf *b, long long v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%lld ", v);
    buf_add(b, num, (size_t)n);
}

static void put_unum(struct buf *b, unsigned long long v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%llu ", v);
    buf_add(b, num, (size_t)n);
}

static int cmp_strp(const void *a, const void *b);

/* The pack names r's files use, sorted and each once (borrowed from r). */
static const char **packs_of(const struct release *r, size_t *np)
{
    const char **v = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        const struct release_file *f = &r->files[i];
        for (int k = 0; k < BODIES; k++) {
            const char *pk = k ? f->var[k - 1].pack : f->pack;
            /* Most bodies sit in the pack of the one before. */
            if (!pk[0] || (n && !strcmp(v[n - 1], pk)))
                continue;
            if (n == cap)
                v = xrealloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
            v[n++] = pk;
        }
    }
    if (n)
        qsort(v, n, sizeof(*v), cmp_strp);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (!w || strcmp(v[w - 1], v[i]))
            v[w++] = v[i];
    *np = w;
    return v;
}

static void put_where(struct buf *b, const char **packs, size_t np, const char *pack, uint64_t at)
{
    if (!pack[0]) {
        buf_adds(b, "- ");
        return;
    }
    const char **hit = bsearch(&pack, packs, np, sizeof(*packs), cmp_strp);
    buf_addf(b, "%zu@%llu ", (size_t)(hit - packs), (unsigned long long)at);
}

static void types_digest(const struct release *r, char out[SHA256_HEX_LEN + 1]);

/* Saves v's lines. With made (a release stored or found the same, whose
 * files are v in order: r->files[i] is v[i]'s), version 3 records it, its
 * digest and where it keeps every body, so that the next release of an
 * unchanged tree needs no manifest at all (fast mode in release_create). */
static void cache_save(const char *file, long long taken_ns, const struct entry *v, size_t n,
                       const struct release *r, const char *made, const char *digest, int depth)
{
    if (!file)
        return;
    struct buf b = BUF_INIT;
    buf_grow(&b, 64 + n * 340);
    size_t np = 0;
    const char **packs = made ? packs_of(r, &np) : NULL;
    char types[SHA256_HEX_LEN + 1] = "-";
    if (made)
        types_digest(r, types);
    buf_addf(&b, "slipway-stat-cache 4 %lld %s %s %zu %d %s\n", taken_ns, made ? made : "-",
             made ? digest : "-", np, made ? depth : -1, types);
    for (size_t i = 0; i < np; i++)
        buf_addf(&b, "%s\n", packs[i]);
    for (size_t i = 0; i < n; i++) {
        put_unum(&b, (unsigned long long)v[i].sb.st_dev);
        put_unum(&b, (unsigned long long)v[i].sb.st_ino);
        put_unum(&b, (unsigned long long)v[i].sb.st_size);
        put_num(&b, ts_ns(&v[i].sb.st_mtim));
        put_num(&b, ts_ns(&v[i].sb.st_ctim));
        buf_add(&b, v[i].blob, SHA256_HEX_LEN);
        buf_add(&b, " ", 1);
        put_unum(&b, (unsigned long long)v[i].size);
        for (int k = 0; k < RELEASE_VARIANTS; k++) {
            if (!v[i].var[k].blob[0]) {
                buf_adds(&b, "- ");
                continue;
            }
            buf_add(&b, v[i].var[k].blob, SHA256_HEX_LEN);
            buf_add(&b, ":", 1);
            put_unum(&b, (unsigned long long)v[i].var[k].size);
        }
        for (int k = 0; k < BODIES; k++) {
            const struct release_file *f = made ? &r->files[i] : NULL;
            if (!f)
                buf_adds(&b, "- ");
            else
                put_where(&b, packs, np, k ? f->var[k - 1].pack : f->pack,
                          k ? f->var[k - 1].at : f->at);
        }
        buf_adds(&b, v[i].path);
        buf_add(&b, "\n", 1);
    }
    free(packs);
    char *dir = xstrdup(file);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        fs_mkdir_p(dir, NULL);
    }
    /* The cache is an optimisation: failing to save it only costs time. Not
     * fsynced (two fsyncs were 2 to 4 ms of a deploy): what a crash may leave
     * is refused by cache_load, or is a cache of real stat data and hashes. */
    fs_write_replace(file, b.data, b.len, NULL);
    free(dir);
    buf_free(&b);
}

/* 1 when saving v would write the cache as it is (its time aside): every
 * entry came from its line (none read) and no line is left over. The time
 * would only widen what is trusted, so such a save is skipped: it rewrote
 * about 260 bytes a file (and fsynced them) on every release of an
 * unchanged tree. */
static int cache_unchanged(const struct stat_cache *c, const struct entry *v, size_t n)
{
    if (n != c->n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].hashed)
            return 0;
    return 1;
}

static void cache_free(struct stat_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].path);
    free(c->v);
    free(c->known);
    free(c->absent);
    free(c->packs);
}

static int str_same(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

/* 1 when a and b serve the same bytes the same way and say the same about
 * where they came from: who made each, where and when aside. */
static int release_same(const struct release *a, const struct release *b)
{
    if (a->nfiles != b->nfiles || a->bytes != b->bytes || a->dirty != b->dirty ||
        !str_same(a->message, b->message) || !str_same(a->commit, b->commit) ||
        !str_same(a->ref, b->ref) || !str_same(a->tag, b->tag) || !str_same(a->run, b->run))
        return 0;
    for (size_t i = 0; i < a->nfiles; i++) {
        const struct release_file *x = &a->files[i], *y = &b->files[i];
        if (strcmp(x->path, y->path) || strcmp(x->blob, y->blob) || x->size != y->size ||
            !str_same(x->type, y->type) || !str_same(x->cache, y->cache) ||
            x->has_mtime != y->has_mtime || (x->has_mtime && x->mtime != y->mtime))
            return 0;
        for (int k = 0; k < RELEASE_VARIANTS; k++)
            if (strcmp(x->var[k].blob, y->var[k].blob) || x->var[k].size != y->var[k].size)
                return 0;
    }
    return 1;
}

/* What a release says besides its files' paths, bodies, sizes and times: its
 * message, its source, and the type and caching each file is served with
 * (this binary's tables), hashed with the store it is in. The stat cache
 * keeps it beside made: a release with made's lines and this digest is made
 * (release_same), and a cache written for one store says nothing of another
 * (whose state could name the same id without holding that release). */
static void facts_digest(struct store *st, const struct release *r, char out[SHA256_HEX_LEN + 1])
{
    struct sha256_ctx *h = sha256_new();
    sha256_update(h, store_url(st), strlen(store_url(st)) + 1);
    const char *facts[] = {r->message, r->commit, r->ref, r->tag, r->run};
    for (size_t i = 0; i < sizeof(facts) / sizeof(*facts); i++) {
        sha256_update(h, facts[i] ? "+" : "-", 1);
        if (facts[i])
            sha256_update(h, facts[i], strlen(facts[i]) + 1);
    }
    sha256_update(h, r->dirty ? "d" : "c", 1);
    for (size_t i = 0; i < r->nfiles; i++) {
        const char *t = r->files[i].type ? r->files[i].type : "";
        const char *c = r->files[i].cache ? r->files[i].cache : "";
        sha256_update(h, t, strlen(t) + 1);
        sha256_update(h, c, strlen(c) + 1);
    }
    sha256_final_hex(h, out);
}

/* Line x of made is f as release_same compares files (path, body, variants,
 * time): 1, 0, or -1 when its time is beyond what a line holds exactly. */
static int line_same(const struct cached *x, const struct release_file *f)
{
    if (strcmp(f->path, x->path) || strcmp(f->blob, x->hex) || f->size != x->body)
        return 0;
    for (int k = 0; k < RELEASE_VARIANTS; k++)
        if (strcmp(f->var[k].blob, x->var[k].blob) || f->var[k].size != x->var[k].size)
            return 0;
    /* The line holds the time in ns, saturated (ts_ns) far ahead. */
    if (x->mtime >= TS_SEC_MAX * 1000000000LL || x->mtime <= -TS_SEC_MAX * 1000000000LL)
        return -1;
    int has = x->mtime >= 0 && x->mtime / 1000000000LL <= RELEASE_MTIME_MAX;
    return f->has_mtime == has && (!has || f->mtime == x->mtime / 1000000000LL);
}

/* release_same(r, made) where the stat cache c records made: 1 same, 0 not,
 * -1 cannot tell from the lines (a time beyond what they hold exactly). */
static int cache_same(const struct stat_cache *c, const struct release *r, const char *digest)
{
    if (r->nfiles != c->n || strcmp(digest, c->digest))
        return 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        int same = line_same(&c->v[i], &r->files[i]);
        if (same <= 0)
            return same;
    }
    return 1;
}

/* ---- a release written over another (manifest format 3) --------------------------- */

static void types_add(struct sha256_ctx *h, const char *path, const char *type, const char *cache)
{
    type = type ? type : "";
    cache = cache ? cache : "";
    sha256_update(h, path, strlen(path) + 1);
    sha256_update(h, type, strlen(type) + 1);
    sha256_update(h, cache, strlen(cache) + 1);
}

/* What the rules made of r's file names: each path with its type and caching. */
static void types_digest(const struct release *r, char out[SHA256_HEX_LEN + 1])
{
    struct sha256_ctx *h = sha256_new();
    for (size_t i = 0; i < r->nfiles; i++)
        types_add(h, r->files[i].path, r->files[i].type, r->files[i].cache);
    sha256_final_hex(h, out);
}

/* 1 when this binary's rules give made's files the types and caching made
 * recorded: a file the new release leaves as it was may then be left out of
 * its manifest, to be read from made's. r (sorted, as the lines) has what
 * the rules say of the paths it shares with them; the others are asked. */
static int lines_types_same(const struct stat_cache *c, const struct release *r)
{
    if (!c->types[0])
        return 0;
    struct sha256_ctx *h = sha256_new();
    for (size_t i = 0, j = 0; i < c->n; i++) {
        const char *p = c->v[i].path;
        while (j < r->nfiles && strcmp(r->files[j].path, p) < 0)
            j++;
        if (j < r->nfiles && !strcmp(r->files[j].path, p))
            types_add(h, p, r->files[j].type, r->files[j].cache);
        else
            types_add(h, p, release_content_type(p), release_cache_policy(p));
    }
    char now[SHA256_HEX_LEN + 1];
    sha256_final_hex(h, now);
    return !strcmp(now, c->types);
}

static int place_same(const char *pack, uint64_t at, const struct stat_cache *c, int where,
                      unsigned long long wat)
{
    if (where == WHERE_BLOB)
        return !pack[0];
    return pack[0] && !strcmp(pack, c->packs[where]) && at == wat;
}

/* Line x of made is exactly f, where each body is kept included. */
static int line_is(const struct stat_cache *c, const struct cached *x, const struct release_file *f)
{
    if (line_same(x, f) != 1 || !place_same(f->pack, f->at, c, x->where[0], x->at[0]))
        return 0;
    for (int k = 0; k < RELEASE_VARIANTS; k++)
        if (!place_same(f->var[k].pack, f->var[k].at, c, x->where[k + 1], x->at[k + 1]))
            return 0;
    return 1;
}

/* a is exactly b: every field a manifest holds. */
static int file_is(const struct release_file *a, const struct release_file *b)
{
    if (strcmp(a->path, b->path) || strcmp(a->blob, b->blob) || a->size != b->size ||
        !str_same(a->type, b->type) || !str_same(a->cache, b->cache) ||
        a->has_mtime != b->has_mtime || a->mtime != b->mtime || strcmp(a->pack, b->pack) ||
        a->at != b->at)
        return 0;
    for (int k = 0; k < RELEASE_VARIANTS; k++) {
        const struct release_variant *x = &a->var[k], *y = &b->var[k];
        if (strcmp(x->blob, y->blob) || x->size != y->size || strcmp(x->pack, y->pack) ||
            x->at != y->at)
            return 0;
    }
    return 1;
}

/* r written over its base: keep when given (loaded), else the release the
 * stat cache's lines are (c->made). Fills d with r's facts, the files that
 * are new or not exactly the base's, and the paths the base has and r has
 * not; d borrows every string (free only d->files and d->removed). 0, and d
 * untouched, when a whole manifest is the better one: the base's chain is as
 * deep as allowed, the rules changed since the lines were written, or more
 * than a quarter of the files changed (a delta saves little then, and its
 * readers read two manifests). */
static int delta_build(const struct release *r, const struct release *keep,
                       const struct stat_cache *c, struct release *d)
{
    size_t nb = keep ? keep->nfiles : c->n;
    int depth = keep ? keep->depth : c->depth;
    if (depth < 0 || depth >= RELEASE_DEPTH_MAX || (!keep && !lines_types_same(c, r)))
        return 0;
    struct release_file *files = xcalloc(r->nfiles + 1, sizeof(*files));
    char **removed = xcalloc(nb + 1, sizeof(char *));
    size_t nf = 0, nr = 0, i = 0, j = 0;
    while (i < r->nfiles || j < nb) {
        const char *bp = j < nb ? (keep ? keep->files[j].path : c->v[j].path) : NULL;
        int cmp = i == r->nfiles ? 1 : !bp ? -1 : strcmp(r->files[i].path, bp);
        if (cmp > 0) {
            removed[nr++] = (char *)bp;
            j++;
            continue;
        }
        const struct release_file *f = &r->files[i++];
        int same = cmp == 0 && (keep ? file_is(&keep->files[j], f) : line_is(c, &c->v[j], f));
        j += cmp == 0;
        if (!same)
            files[nf++] = *f;
    }
    if ((nf + nr) * 4 > r->nfiles) {
        free(files);
        free(removed);
        return 0;
    }
    *d = *r;
    d->files = files;
    d->nfiles = nf;
    d->removed = removed;
    d->nremoved = nr;
    d->base = (char *)(keep ? keep->id : c->made);
    d->depth = depth + 1;
    d->total_files = r->nfiles;
    d->total_bytes = r->bytes;
    d->chain = NULL;
    d->nchain = 0;
    return 1;
}

/* ---- the scan's shared state ------------------------------------------------------ */

/* A directory waiting to be listed. chain holds its (device, inode) and those
 * of the directories above it: a directory met again on its own chain is a
 * loop through a symbolic link. */
struct devino {
    dev_t dev;
    ino_t ino;
};

struct job {
    char *abs; /* its path, symlinks resolved */
    char *rel; /* its path in the release, "" for the root */
    int link;  /* reached through a symbolic link: open it following links */
    size_t depth;
    struct devino *chain; /* depth entries, the last one itself */
};

/* The threads share a stack of directories to list. Each lists one, pushes the
 * directories it finds and hashes the files it finds at once, so the walk and
 * the hashing overlap: a release in which nothing changed is mostly the walk,
 * and a cold one no longer waits for the walk before reading the first body. */
struct scan {
    struct store *st;
    const struct stat_cache *cache;
    struct release_progress *progress; /* optional */
    /* Loaded by the first thread about to compress, so that a release the
     * stat cache covers reads no manifest. */
    pthread_mutex_t reuse_lock;
    atomic_int reuse_loaded;
    struct release_reuse *reuse;
    const struct release *keep; /* opts->keep: the one source of reuse hints when given */
    /* The stat cache's lines are keep's files (opts->keep_id, not loaded):
     * their bodies are keep's, taken as present and kept, as known_load
     * would have, and no variant is reused (no manifest is read). */
    int fast;
    /* opts->on_change, and whether it was called. */
    void (*on_change)(void *);
    void *on_change_arg;
    atomic_int change_seen;
    /* Where keep's packed bodies are, and with opts->pack where this call's
     * small bodies go (pack.c). */
    struct release_packer *packer;
    int pack;
    const char *root; /* realpath of the directory */
    size_t rootlen;
    const char *shown; /* the directory as the caller named it, for naming files */
    size_t shownlen;
    int follow;           /* follow links that leave the directory */
    atomic_int refused;   /* a file was refused: no release will be made */
    atomic_size_t nfiles; /* regular files met, to bound a walk that links multiply */
    pthread_mutex_t lock; /* guards jobs, busy, rc, err and the problems */
    pthread_cond_t cond;  /* a job was pushed, or the scan ended */
    struct job *jobs;     /* a stack: depth first keeps it short */
    size_t njobs, capjobs;
    int busy; /* directories being listed now */
    atomic_int failed;
    int rc;
    struct sw_err err;
    /* The files refused: the first RELEASE_PROBLEMS_SHOWN in path order (kept
     * sorted, so the report does not depend on which thread found what),
     * how many in all, and their code (RELEASE_EFILES when they differ). */
    struct release_problem problems[RELEASE_PROBLEMS_SHOWN];
    size_t nproblems, problems_total;
    int problem_code;
};

/* One thread's share: the files it found, hashed. */
struct worker {
    struct scan *s;
    struct entry *v;
    size_t n, cap;
};

/* ---- hashing one file ---------------------------------------------------- */

/* The file opened for hashing is the one the walk saw: a name replaced since
 * (by another file, or by a link to something outside) shows as another inode. */
static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_size == b->st_size && ts_ns(&a->st_mtim) == ts_ns(&b->st_mtim) &&
           a->st_ino == b->st_ino && a->st_dev == b->st_dev;
}

static int changed(struct sw_err *err, const struct entry *e)
{
    return sw_err_set(err, SW_ECHANGED, "%s: file changed while it was being read; try again",
                      e->path);
}

/* A file modified within a clock tick or so of the moment its read began can
 * change again without its mtime moving (the kernel stamps mtime from a
 * coarse clock at the start of a write, and a write may still be copying
 * while we read), so equal stat data before and after a read proves nothing
 * for it. Measured from the start of the read, not its end: a long read of
 * a file written just before it is as suspect as a short one. */
static int racy(const struct stat *sb, int64_t read_start_ns)
{
    return ts_ns(&sb->st_mtim) + RACY_MARGIN_NS > read_start_ns;
}

/* Reads the file again and checks it still hashes to hex: a write that was in
 * flight during the first read shows as a different hash. */
static int rehash_matches(int fd, size_t size, const char *hex)
{
    char buf[65536], again[SHA256_HEX_LEN + 1];
    struct sha256_ctx *h = sha256_new();
    size_t off = 0;
    while (off < size) {
        ssize_t n = pread(fd, buf, sizeof(buf), (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        sha256_update(h, buf, (size_t)n);
        off += (size_t)n;
    }
    sha256_final_hex(h, again);
    return off == size && !strcmp(again, hex);
}

/* A racy file (modified within the last clock tick) may still be in the
 * middle of a write whose mtime was stamped when it began: reading it twice
 * at once can see the same torn bytes twice, if the writer is descheduled
 * meanwhile. So wait until the tick is over, then check that nothing was
 * stamped since (a writer that went on touched mtime or ctime) and that the
 * bytes still hash the same. 1: the body is settled. */
static int settled(int fd, const struct stat *seen, size_t size, const char *hex)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t wait = ts_ns(&seen->st_mtim) + RACY_MARGIN_NS - ts_ns(&now);
    /* An mtime in the future (a skewed clock, a touch -d) says nothing about
     * writes in flight and must not stall the release: rehash only. */
    if (wait > RACY_MARGIN_NS)
        return rehash_matches(fd, size, hex);
    if (wait > 0) {
        struct timespec ts = {wait / 1000000000, wait % 1000000000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    struct stat again;
    return fstat(fd, &again) == 0 && same_file(seen, &again) &&
           ts_ns(&again.st_ctim) == ts_ns(&seen->st_ctim) && rehash_matches(fd, size, hex);
}

/* Stores a body unless the store has it; *fresh: this call wrote it. A body
 * already stored is touched rather than only looked up: a gc running
 * meanwhile must see it young, not old and unreferenced. */
static int body_keep(struct scan *p, const char *hex);
static int known_has(const struct stat_cache *c, const char *key);

static int put_body(struct scan *p, const char *hex, const void *data, size_t len, int *fresh,
                    struct sw_err *err)
{
    char key[128];
    release_blob_key(hex, key, sizeof(key));
    *fresh = 0;
    /* In one of keep's packs (or a hint's): the manifest names it there
     * (release_packer_where). */
    if (release_packer_kept(p->packer, hex))
        return 0;
    if (p->pack && len <= RELEASE_PACK_BODY_MAX) {
        if (known_has(p->cache, key))
            return 0;
        return release_packer_add(p->packer, hex, data, len, fresh, err);
    }
    if (store_is_remote(p->st)) {
        /* A touch is a request of its own there: a create-only put is one
         * request for a new body, and only a body found there (412) is then
         * touched; one deleted in between is put again. A known body
         * (known_load) is neither. */
        if (known_has(p->cache, key))
            return 0;
        int rc = store_put(p->st, key, data, len, STORE_IF_ABSENT, NULL, err);
        if (rc == SW_EEXIST && body_keep(p, hex) != 0)
            rc = store_put(p->st, key, data, len, 0, NULL, err);
        else if (rc == SW_EEXIST)
            return 0;
        *fresh = rc == 0;
        return rc;
    }
    if (store_touch(p->st, key, NULL) == 0)
        return 0;
    int rc = store_put(p->st, key, data, len, STORE_IF_ABSENT | STORE_BATCH, NULL, err);
    *fresh = rc == 0;
    return rc;
}

/* A body modified this recently stays out of a concurrent gc's reach (its
 * default grace is an hour) for the rest of this release's creation: a quarter
 * of the grace, so a gc run with --grace shorter than this plus the longest
 * release creation could delete a body being reused (docs/store.md). */
#define FRESH_MS (15 * 60 * 1000LL)

static int cmp_key(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int known_has(const struct stat_cache *c, const char *key)
{
    return c->nknown && bsearch(key, c->known, c->nknown, sizeof(*c->known), cmp_key) != NULL;
}

static void known_add_key(struct stat_cache *c, size_t *cap, const char *key)
{
    if (c->nknown == *cap)
        c->known = xrealloc(c->known, (*cap = *cap ? *cap * 2 : 1024) * sizeof(*c->known));
    snprintf(c->known[c->nknown++], sizeof(*c->known), "%s", key);
}

static void known_add(struct stat_cache *c, size_t *cap, const char *hex)
{
    char key[96];
    if (!hex[0] || !hex_lower_valid(hex, SHA256_HEX_LEN))
        return;
    release_blob_key(hex, key, sizeof(key));
    known_add_key(c, cap, key);
}

/* On a remote store, the bodies that need neither a put nor a touch (each a
 * request there): every body of keep (a release gc keeps meanwhile, see
 * release_create_opts; its packed ones are the packer's, release_packer_kept),
 * and of the others the stat cache names, those one
 * store_head_many (a listing, a thousand keys a request) finds present and
 * young. Without it an unchanged release of 2,000 files costs 2,000 requests
 * and more. A failed listing only leaves those bodies out (each is touched as
 * before). */
static void known_load(struct store *st, const struct release *keep,
                       const struct release_packer *packer, struct stat_cache *c)
{
    if (!store_is_remote(st))
        return;
    size_t cap = 0;
    /* Only bodies keep holds as blobs of their own: its packed ones are the
     * packer's (release_packer_kept), named in keep's packs. */
    for (size_t i = 0; keep && i < keep->nfiles; i++) {
        struct release_body bv[RELEASE_VARIANTS + 1];
        size_t nbv = release_file_bodies(&keep->files[i], bv);
        for (size_t j = 0; j < nbv; j++)
            if (!bv[j].pack)
                known_add(c, &cap, bv[j].blob);
    }
    if (c->nknown)
        qsort(c->known, c->nknown, sizeof(*c->known), cmp_key);
    size_t nkeep = c->nknown, n = 0;
    char(*keys)[96] = xcalloc(c->n * (RELEASE_VARIANTS + 1) + 1, sizeof(*keys));
    for (size_t i = 0; i < c->n; i++)
        for (int k = 0; k <= RELEASE_VARIANTS; k++) {
            const char *hex = k ? c->v[i].var[k - 1].blob : c->v[i].hex;
            /* keep's packed bodies need no lookup either (release_packer_kept). */
            if (!hex[0] || !hex_lower_valid(hex, SHA256_HEX_LEN) ||
                release_packer_kept(packer, hex))
                continue;
            release_blob_key(hex, keys[n], sizeof(keys[n]));
            if (!known_has(c, keys[n]))
                n++;
        }
    /* A few bodies are cheaper touched one by one than listed. */
    if (n >= 64) {
        const char **kp = xcalloc(n, sizeof(*kp));
        struct store_stat *sb = xcalloc(n, sizeof(*sb));
        int *rcs = xcalloc(n, sizeof(*rcs));
        for (size_t i = 0; i < n; i++)
            kp[i] = keys[i];
        if (store_head_many(st, kp, n, sb, rcs, NULL) == 0) {
            int64_t now = time_now_ms();
            size_t acap = 0;
            for (size_t i = 0; i < n; i++) {
                if (rcs[i] == 0 && sb[i].mtime_ms > now - FRESH_MS && sb[i].mtime_ms < now + 60000)
                    known_add_key(c, &cap, keys[i]);
                if (rcs[i] != SW_ENOTFOUND)
                    continue;
                if (c->nabsent == acap) {
                    acap = acap ? acap * 2 : 256;
                    c->absent = xrealloc(c->absent, acap * sizeof(*c->absent));
                }
                snprintf(c->absent[c->nabsent++], sizeof(*c->absent), "%s", keys[i]);
            }
            if (c->nabsent)
                qsort(c->absent, c->nabsent, sizeof(*c->absent), cmp_key);
        }
        free(rcs);
        free(sb);
        free(kp);
    }
    free(keys);
    if (c->nknown > nkeep)
        qsort(c->known, c->nknown, sizeof(*c->known), cmp_key);
}

/* Makes the body hex safe from a concurrent gc: touched, unless known or in
 * one of keep's packs (which gc keeps with keep). */
static int body_keep(struct scan *p, const char *hex)
{
    char key[128];
    release_blob_key(hex, key, sizeof(key));
    if (known_has(p->cache, key) || release_packer_kept(p->packer, hex))
        return 0;
    if (p->cache->nabsent &&
        bsearch(key, p->cache->absent, p->cache->nabsent, sizeof(*p->cache->absent), cmp_key))
        return SW_ENOTFOUND;
    return store_touch(p->st, key, NULL);
}

/* Takes e's hash, size and variants from the stat cache when its line holds
 * and every body it names is still in the store (each touched, as put_body
 * does). 1: e is done without reading it. */
/* A file just hashed: when its body is not the one the stat cache's line of
 * its path names (or it has no line in a cache that has lines), the new
 * release is likely not the old one, and opts->on_change is told, once. A
 * file only touched (or racy, read again every time) tells nothing. */
static void change_note(struct scan *p, const struct entry *e)
{
    if (!p->on_change || !p->cache->n || atomic_load(&p->change_seen))
        return;
    const struct cached *x =
        bsearch(e->path, p->cache->v, p->cache->n, sizeof(*p->cache->v), cmp_cached);
    if (x && !strcmp(x->hex, e->blob))
        return;
    if (!atomic_exchange(&p->change_seen, 1))
        p->on_change(p->on_change_arg);
}

static int cache_use(struct scan *p, struct entry *e)
{
    const struct cached *x = cache_lookup(p->cache, e);
    /* What the manifest parser would refuse is not taken from a damaged line. */
    if (!x || (!e->from_gz && x->body != x->size) || x->body > RELEASE_FILE_SIZE_MAX)
        return 0;
    for (int k = 0; k < RELEASE_VARIANTS; k++)
        if (x->var[k].blob[0] && x->var[k].size >= x->body)
            return 0;
    if (!p->fast && body_keep(p, x->hex) != 0)
        return 0;
    for (int k = 0; k < RELEASE_VARIANTS && !p->fast; k++)
        if (x->var[k].blob[0] && body_keep(p, x->var[k].blob) != 0)
            return 0;
    memcpy(e->blob, x->hex, sizeof(e->blob));
    e->size = x->body;
    memcpy(e->var, x->var, sizeof(e->var));
    return 1;
}

static const struct release_reuse *reuse_map(struct scan *p)
{
    if (p->fast)
        return NULL;
    if (!atomic_load(&p->reuse_loaded)) {
        pthread_mutex_lock(&p->reuse_lock);
        if (!atomic_load(&p->reuse_loaded)) {
            release_reuse_load(p->st, p->keep, &p->reuse);
            atomic_store(&p->reuse_loaded, 1);
        }
        pthread_mutex_unlock(&p->reuse_lock);
    }
    return p->reuse;
}

/* Makes and stores the variants of e's body (in memory) that it does not
 * have yet, keeping each only when it is smaller than the body; one an
 * earlier release already holds, checked to decode to this body, is taken
 * instead of compressing (reuse.c). */
static int make_variants(struct scan *p, struct entry *e, const char *body, size_t size,
                         struct sw_err *err)
{
    if (size < RELEASE_COMPRESS_MIN || size > RELEASE_COMPRESS_MAX ||
        !release_compressible(e->path))
        return 0;
    for (int k = 0; k < RELEASE_VARIANTS; k++) {
        if (e->var[k].blob[0])
            continue;
        int reuse = release_reuse_variant(p->st, reuse_map(p), k, e->blob, body, size, &e->var[k]);
        if (reuse > 0) {
            e->reused++;
            continue;
        }
        char *out;
        size_t len;
        int rc = release_compress(k, e->path, body, size, &out, &len, err);
        if (rc)
            return rc;
        e->compressed++;
        if (len < size) {
            sha256_hex(out, len, e->var[k].blob);
            e->var[k].size = len;
            /* A variant named for this body that did not hold may be the
             * very blob just made, damaged in the store: put_body would
             * trust it for being there, so it is written again. */
            if (reuse < 0) {
                char key[128];
                release_blob_key(e->var[k].blob, key, sizeof(key));
                rc = store_put(p->st, key, out, len, STORE_BATCH, NULL, err);
                e->new_var[k] = rc == 0;
            } else {
                rc = put_body(p, e->var[k].blob, out, len, &e->new_var[k], err);
            }
        }
        free(out);
        if (rc)
            return rc;
    }
    return 0;
}

/* Fast mode: a file read again (its stat data changed, or was racy) whose
 * body is still the one keep has at its path is keep's, with keep's variants:
 * neither stored nor compressed again. 1 when e is done. */
static int keep_line(struct scan *p, struct entry *e)
{
    if (!p->fast || !p->cache->n)
        return 0;
    const struct cached *x =
        bsearch(e->path, p->cache->v, p->cache->n, sizeof(*p->cache->v), cmp_cached);
    if (!x || strcmp(x->hex, e->blob) || x->body != e->size)
        return 0;
    memcpy(e->var, x->var, sizeof(e->var));
    return 1;
}

/* Reads, hashes and (when the blob is new) uploads one file, and its variants. */
static int hash_one(struct scan *p, struct entry *e, struct sw_err *err)
{
    char key[128];
    e->size = (uint64_t)e->sb.st_size;
    if (cache_use(p, e))
        return 0;
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
    struct timespec t0;
    clock_gettime(CLOCK_REALTIME, &t0);
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
    /* Large bodies too: store_put_file's second read right after this one can
     * see the same torn bytes while a writer is descheduled mid-write (040 saw
     * it on a loaded machine), so a racy file of any size waits out its tick. */
    if (got != size || fstat(fd, &after) < 0 || !same_file(&before, &after) ||
        (racy(&after, ts_ns(&t0)) && !settled(fd, &after, size, e->blob))) {
        rc = changed(err, e);
        goto out;
    }
    change_note(p, e);
    if (keep_line(p, e))
        goto out;
    if (size <= SMALL_BODY) {
        if ((rc = put_body(p, e->blob, body, size, &e->new_blob, err)))
            goto out;
        /* The body just hashed, still in memory: compressed from exactly the
         * bytes the manifest names. */
        rc = make_variants(p, e, body, size, err);
        if (!rc && p->pack)
            release_packer_file_done(p->packer);
        goto out;
    }
    release_blob_key(e->blob, key, sizeof(key));
    if (store_touch(p->st, key, NULL) == 0)
        goto out;
    char etag[SHA256_HEX_LEN + 1];
    rc = store_put_file(p->st, key, e->real, STORE_IF_ABSENT | STORE_BATCH, etag, err);
    if (!rc && strcmp(etag, e->blob) != 0)
        rc = changed(err, e);
    if (!rc)
        e->new_blob = 1;
out:
    free(body);
    close(fd);
    return rc;
}

/* ---- "x.gz" without "x" ------------------------------------------------------ */

/* Makes e ("x", whose real and sb are those of the file x.gz, hashed as gz_blob)
 * from x.gz: its body is x.gz decompressed (bounded: release_gunzip), and its
 * gzip variant is x.gz's own bytes, as shipped, when every browser decodes
 * them whole (one gzip member) and they are smaller; brotli is made as for any
 * other file. x.gz stays in the release as a file of its own. */
static int derive_from_gz(struct scan *p, struct entry *e, const char *gz_path, const char *gz_blob,
                          struct sw_err *err)
{
    if (cache_use(p, e))
        return 0;
    char *gz = NULL, *body = NULL, hex[SHA256_HEX_LEN + 1];
    size_t gzlen, len;
    int single = 0, rc;
    if ((uint64_t)e->sb.st_size > RELEASE_GUNZIP_MAX)
        return sw_err_set(err, SW_EINVAL,
                          "%s: over 1 GiB; slipway serves it as %s too (there is no %s), "
                          "which it cannot decompress: ship %s beside it",
                          gz_path, e->path, e->path, e->path);
    if ((rc = file_read_all(e->real, &gz, &gzlen, err)))
        goto out;
    sha256_hex(gz, gzlen, hex);
    if (strcmp(hex, gz_blob) != 0) {
        rc = sw_err_set(err, SW_ECHANGED, "%s: file changed while it was being read; try again",
                        gz_path);
        goto out;
    }
    if ((rc = release_gunzip(gz_path, gz, gzlen, &body, &len, &single, err)))
        goto out;
    e->hashed = 1;
    e->size = len;
    sha256_hex(body, len, e->blob);
    if ((rc = put_body(p, e->blob, body, len, &e->new_blob, err)))
        goto out;
    if (single && gzlen < len) {
        memcpy(e->var[RELEASE_GZIP].blob, gz_blob, sizeof(e->var[RELEASE_GZIP].blob));
        e->var[RELEASE_GZIP].size = gzlen;
    }
    rc = make_variants(p, e, body, len, err);
out:
    free(gz);
    free(body);
    return rc;
}

static struct entry *add_entry(struct worker *wk)
{
    if (wk->n == wk->cap) {
        wk->cap = wk->cap ? wk->cap * 2 : 256;
        wk->v = xrealloc(wk->v, wk->cap * sizeof(*wk->v));
    }
    return &wk->v[wk->n++];
}

/* After the file wk->v[i] (named name in the directory open as dfd) was
 * hashed: when it is "x.gz", x would be compressible, and there is no x beside
 * it, adds x (derive_from_gz). */
static int add_from_gz(struct worker *wk, int dfd, const char *name, size_t i, struct sw_err *err)
{
    size_t n = strlen(name);
    if (n <= 3 || strcmp(name + n - 3, ".gz") != 0)
        return 0;
    char *base = xstrndup(name, n - 3);
    char *path = xstrndup(wk->v[i].path, strlen(wk->v[i].path) - 3);
    struct stat sb;
    int rc = 0;
    /* Anything by that name, even a directory or a link, is x: left alone. */
    if (!release_path_valid(path) || !release_compressible(path) || !strcmp(base, ".git") ||
        !strcmp(base, ".slipway") || fstatat(dfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0 ||
        errno != ENOENT) {
        free(path);
        goto out;
    }
    struct entry *e = add_entry(wk), *gz = &wk->v[i]; /* after the realloc */
    *e = (struct entry){.path = path, .real = xstrdup(gz->real), .sb = gz->sb, .from_gz = 1};
    rc = derive_from_gz(wk->s, e, gz->path, gz->blob, err);
out:
    free(base);
    return rc;
}

/* ---- the scan: walking and hashing on one pool ---------------------------------------- */

static void job_free(struct job *j)
{
    free(j->abs);
    free(j->rel);
    free(j->chain);
}

static void push_job(struct scan *s, struct job j)
{
    pthread_mutex_lock(&s->lock);
    if (s->njobs == s->capjobs) {
        s->capjobs = s->capjobs ? s->capjobs * 2 : 64;
        s->jobs = xrealloc(s->jobs, s->capjobs * sizeof(*s->jobs));
    }
    s->jobs[s->njobs++] = j;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* ---- files that cannot be released --------------------------------------------------- */

/* Records that rel cannot be released and why. The walk goes on, so that one
 * run reports every such file, but reads no more bodies: no release will be
 * made. Returns 0. */
static int refuse(struct scan *s, const char *rel, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(struct scan *s, const char *rel, int code, const char *fmt, ...)
{
    atomic_store(&s->refused, 1);
    struct buf path = BUF_INIT;
    buf_add(&path, s->shown, s->shownlen);
    if (!(s->shownlen == 1 && s->shown[0] == '/'))
        buf_add(&path, "/", 1);
    buf_adds(&path, rel);
    pthread_mutex_lock(&s->lock);
    s->problem_code = !s->problems_total++ || s->problem_code == code ? code : RELEASE_EFILES;
    size_t n = s->nproblems, at = n;
    while (at > 0 && strcmp(path.data, s->problems[at - 1].path) < 0)
        at--;
    if (at < RELEASE_PROBLEMS_SHOWN) {
        if (n == RELEASE_PROBLEMS_SHOWN) { /* the last one shown is pushed out */
            n--;
            free(s->problems[n].path);
            free(s->problems[n].why);
        }
        memmove(&s->problems[at + 1], &s->problems[at], (n - at) * sizeof(*s->problems));
        struct buf why = BUF_INIT;
        va_list ap;
        va_start(ap, fmt);
        buf_vaddf(&why, fmt, ap);
        va_end(ap);
        s->problems[at] =
            (struct release_problem){buf_detach(&path, NULL), buf_detach(&why, NULL), code};
        s->nproblems = n + 1;
    }
    pthread_mutex_unlock(&s->lock);
    buf_free(&path);
    return 0;
}

/* Why a file or directory name can never be part of a release, appended to
 * why ("" when it can). The edge's request normaliser (http_path_normalize)
 * refuses a backslash and every control byte, raw or percent-encoded, so no
 * request can name a file holding one; a manifest holds only printable UTF-8
 * (release_path_valid), so a release naming anything else could never be
 * loaded. Every other byte ('?', '#', '%', a space) is reachable encoded. */
static void name_problems(const char *name, struct buf *why)
{
    int c0 = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        c0 |= *p < 0x20 || *p == 0x7f;
    int utf8 = utf8_valid(name, 0);
    const char *reasons[3];
    size_t n = 0;
    if (!utf8)
        reasons[n++] = "not valid UTF-8, which a release cannot hold";
    if (c0 || (utf8 && !utf8_valid(name, 1))) /* C0, DEL, or C1 (U+0080..U+009F) */
        reasons[n++] = "contains a control character, which a release cannot hold";
    if (strchr(name, '\\'))
        reasons[n++] = "contains a backslash, which no URL can name";
    for (size_t i = 0; i < n; i++)
        buf_addf(why, "%s%s", i ? "; " : "", reasons[i]);
}

/* What a symbolic link says (its text, not where it leads), for messages. */
static char *link_text(int dfd, const char *name)
{
    char text[PATH_MAX];
    ssize_t n = readlinkat(dfd, name, text, sizeof(text) - 1);
    if (n < 0)
        return xstrdup("(unreadable)");
    text[n] = '\0';
    return xstrdup(text);
}

static int inside(const struct scan *s, const char *real)
{
    return !strncmp(real, s->root, s->rootlen) &&
           (real[s->rootlen] == '/' || real[s->rootlen] == '\0');
}

/* One directory entry: name inside the directory open as dfd (one path
 * component to look up, not the whole absolute path), abs its path for
 * messages and for opening it later, rel its path in the release. */
static int scan_entry(struct worker *wk, const struct job *parent, int dfd, const char *name,
                      const char *abs, const char *rel, struct sw_err *err)
{
    struct scan *s = wk->s;
    struct stat sb;
    char *real = NULL, *to = NULL;
    int rc = 0, link = 0;
    if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
        return sw_err_sys(err, errno, "%s", abs);
    /* The name alone: the rest of rel was checked when its directory was met,
     * and a directory refused is not entered, so each bad name shows once. */
    struct buf why = BUF_INIT;
    name_problems(name, &why);
    if (strlen(rel) > RELEASE_PATH_MAX)
        buf_addf(&why, "%spath in the release is longer than %d bytes", why.len ? "; " : "",
                 RELEASE_PATH_MAX);
    if (why.len) {
        rc = refuse(s, rel, SW_EINVAL, "%s", why.data);
        buf_free(&why);
        return rc;
    }
    if (S_ISLNK(sb.st_mode)) {
        link = 1;
        to = link_text(dfd, name);
        real = realpath(abs, NULL);
        if (!real && errno == ELOOP) {
            rc = refuse(s, rel, RELEASE_ESYMLINK,
                        "symbolic link to %s never resolves: the links form a loop", to);
            goto out;
        }
        if (!real && (errno == ENOENT || errno == ENOTDIR)) {
            rc = refuse(s, rel, RELEASE_ESYMLINK,
                        "symbolic link to %s is dangling: nothing is there", to);
            goto out;
        }
        if (!real) {
            rc = sw_err_sys(err, errno, "%s", abs);
            goto out;
        }
        /* Inside the directory, a link is followed: its target is released
         * under the link's name too. Outside, only when asked. */
        if (!s->follow && !inside(s, real)) {
            int same = !strcmp(to, real);
            rc = refuse(s, rel, RELEASE_ESYMLINK,
                        "symbolic link to %s points outside the directory%s%s%s; "
                        "--follow-symlinks stores what it points to",
                        to, same ? "" : " (to ", same ? "" : real, same ? "" : ")");
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
        /* A directory on its own chain of parents would make the walk endless;
         * only a link can lead there, this one or one above. */
        for (size_t i = 0; i < parent->depth; i++)
            if (parent->chain[i].dev == sb.st_dev && parent->chain[i].ino == sb.st_ino) {
                if (link)
                    rc = refuse(s, rel, RELEASE_ESYMLINK,
                                "symbolic link to %s is a loop: it leads back to a directory "
                                "that contains it",
                                to);
                else
                    rc = refuse(s, rel, RELEASE_ESYMLINK,
                                "a loop: a symbolic link above it leads back to this directory");
                goto out;
            }
        /* The edge answers every path under /_slipway/ itself (health,
         * readiness, metrics), so no file there could be served. */
        if (parent->depth == 1 && !strcmp(name, "_slipway")) {
            rc = refuse(s, rel, SW_EINVAL,
                        "the edge keeps /_slipway/ for its own endpoints, so nothing under it "
                        "can be served");
            goto out;
        }
        if (parent->depth == 256) {
            rc = sw_err_set(err, SW_EINVAL, "%s: directories nested too deeply", abs);
            goto out;
        }
        struct job j = {real, xstrdup(rel), link, parent->depth + 1, NULL};
        j.chain = xmalloc(j.depth * sizeof(*j.chain));
        memcpy(j.chain, parent->chain, parent->depth * sizeof(*j.chain));
        j.chain[parent->depth] = (struct devino){sb.st_dev, sb.st_ino};
        push_job(s, j);
        free(to);
        return 0;
    }
    if (S_ISREG(sb.st_mode)) {
        /* Links can make a small tree list the same files many times over. */
        if (atomic_fetch_add(&s->nfiles, 1) >= RELEASE_FILES_MAX) {
            rc = sw_err_set(err, SW_EINVAL,
                            "%s: more than %d files; a release holds at most that many", s->shown,
                            RELEASE_FILES_MAX);
            goto out;
        }
        /* No release will be made: read no more bodies, only look for more
         * files to refuse. */
        if (atomic_load(&s->refused))
            goto out;
        struct entry *e = add_entry(wk);
        *e = (struct entry){.path = xstrdup(rel), .real = real, .sb = sb};
        free(to);
        if ((rc = hash_one(s, e, err)))
            return rc;
        if (s->progress) {
            atomic_fetch_add(&s->progress->files_done, 1);
            atomic_fetch_add(&s->progress->bytes_done, e->size);
        }
        return add_from_gz(wk, dfd, name, wk->n - 1, err);
    }
    if (link)
        rc = refuse(s, rel, RELEASE_ESPECIAL,
                    "symbolic link to %s leads to something that is not a regular file or "
                    "directory (device, socket or FIFO)",
                    to);
    else
        rc = refuse(s, rel, RELEASE_ESPECIAL,
                    "not a regular file or directory (device, socket or FIFO)");
out:
    free(real);
    free(to);
    return rc;
}

/* "dir/name", or name when dir is "". Not xasprintf: two per file, and
 * formatting them was a few percent of a release in which nothing changed. */
static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = xmalloc(a + b + 2);
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + (a > 0), name, b + 1);
    return p;
}

/* Lists one directory, hashing its files and queueing its directories. */
static int scan_dir(struct worker *wk, const struct job *j, struct sw_err *err)
{
    /* O_NOFOLLOW: a directory swapped for a link since it was looked at must
     * not lead the walk outside; the inode check catches any other swap. */
    int fd = open(j->abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (j->link ? 0 : O_NOFOLLOW));
    if (fd < 0)
        return sw_err_sys(err, errno, "%s", j->abs);
    struct stat sb;
    const struct devino *self = &j->chain[j->depth - 1];
    if (fstat(fd, &sb) < 0 || sb.st_dev != self->dev || sb.st_ino != self->ino) {
        close(fd);
        return sw_err_set(err, SW_ECHANGED, "%s: directory changed while releasing; try again",
                          j->abs);
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return sw_err_sys(err, e, "%s", j->abs);
    }
    int rc = 0;
    struct dirent *de;
    errno = 0;
    while (!atomic_load(&wk->s->failed) && (de = readdir(d))) {
        const char *name = de->d_name;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        /* Repository metadata is never published, wherever the directory is. */
        if (!strcmp(name, ".git") || !strcmp(name, ".slipway"))
            continue;
        char *abs = join(j->abs, name);
        char *rel = join(j->rel, name);
        rc = scan_entry(wk, j, dirfd(d), name, abs, rel, err);
        free(abs);
        free(rel);
        if (rc)
            break;
        errno = 0;
    }
    /* readdir returns NULL on errors too: a half-listed directory would be a
     * release silently missing files. */
    if (!rc && errno)
        rc = sw_err_sys(err, errno, "%s", j->abs);
    closedir(d);
    return rc;
}

static void *scan_worker(void *arg)
{
    struct worker *wk = arg;
    struct scan *s = wk->s;
    struct sw_err err = {0};
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (!s->njobs && s->busy && !atomic_load(&s->failed))
            pthread_cond_wait(&s->cond, &s->lock);
        if (!s->njobs || atomic_load(&s->failed)) {
            pthread_mutex_unlock(&s->lock);
            break;
        }
        struct job j = s->jobs[--s->njobs];
        s->busy++;
        pthread_mutex_unlock(&s->lock);
        int rc = scan_dir(wk, &j, &err);
        job_free(&j);
        pthread_mutex_lock(&s->lock);
        s->busy--;
        if (rc && !s->rc) {
            s->rc = rc;
            s->err = err;
            atomic_store(&s->failed, 1);
        }
        /* Waiters leave when the work is done or has failed. */
        if (rc || (!s->busy && !s->njobs))
            pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

/* Walks root (whose stat is sb) on threads, hashing every file. On success
 * *v holds the entries, unsorted. Files refused go to res->problems. */
static int scan_all(struct store *st, const struct release_create_opts *opts, const char *root,
                    const struct stat *sb, const struct stat_cache *cache,
                    const struct release *keep, int fast, struct release_packer *packer,
                    struct entry **v, size_t *n, struct release_create_result *res,
                    struct sw_err *err)
{
    struct scan s = {.st = st,
                     .packer = packer,
                     .pack = opts->pack,
                     .cache = cache,
                     .progress = opts->progress,
                     .root = root,
                     .rootlen = strlen(root),
                     .shown = opts->dir,
                     .shownlen = strlen(opts->dir),
                     .follow = opts->follow_symlinks,
                     .keep = keep,
                     .fast = fast,
                     .on_change = opts->on_change,
                     .on_change_arg = opts->keep_id_arg};
    while (s.shownlen > 1 && s.shown[s.shownlen - 1] == '/') /* "dist/" names "dist/a" */
        s.shownlen--;
    int threads = opts->threads;
    pthread_mutex_init(&s.lock, NULL);
    pthread_mutex_init(&s.reuse_lock, NULL);
    pthread_cond_init(&s.cond, NULL);
    struct job j = {xstrdup(root), xstrdup(""), 0, 1, xmalloc(sizeof(struct devino))};
    j.chain[0] = (struct devino){sb->st_dev, sb->st_ino};
    push_job(&s, j);
    /* On a remote store a thread spends most of its time waiting for the
     * service, so as many as may upload at once (the store's concurrency);
     * the store's upload slots, not the thread count, bound the transfers.
     * Not when packing with a stat cache: most files are then its lines, and
     * what changed goes into packs (a PUT every few MiB), so a thread per
     * core does the walk, 4 to 5 ms sooner than 16 on 2,000 files here. */
    if (threads <= 0) {
        threads = sys_ncpu();
        if (store_is_remote(st) && threads < store_concurrency(st) && !(opts->pack && cache->n))
            threads = store_concurrency(st);
    }
    struct worker *wk = xcalloc((size_t)threads, sizeof(*wk));
    pthread_t *tids = xcalloc((size_t)threads, sizeof(*tids));
    int started = 1; /* worker 0 is this thread */
    for (int i = 0; i < threads; i++)
        wk[i].s = &s;
    for (; started < threads; started++)
        if (pthread_create(&tids[started], NULL, scan_worker, &wk[started]) != 0)
            break;
    scan_worker(&wk[0]);
    for (int i = 1; i < started; i++)
        pthread_join(tids[i], NULL);
    size_t total = 0;
    for (int i = 0; i < started; i++)
        total += wk[i].n;
    *v = xcalloc(total ? total : 1, sizeof(**v));
    *n = 0;
    for (int i = 0; i < started; i++) {
        if (wk[i].n)
            memcpy(*v + *n, wk[i].v, wk[i].n * sizeof(**v));
        *n += wk[i].n;
        free(wk[i].v);
    }
    for (size_t i = 0; i < s.njobs; i++) /* left over after a failure */
        job_free(&s.jobs[i]);
    free(s.jobs);
    free(wk);
    free(tids);
    pthread_cond_destroy(&s.cond);
    pthread_mutex_destroy(&s.lock);
    pthread_mutex_destroy(&s.reuse_lock);
    release_reuse_free(s.reuse);
    if (s.rc) {
        if (err)
            *err = s.err;
        for (size_t i = 0; i < s.nproblems; i++) {
            free(s.problems[i].path);
            free(s.problems[i].why);
        }
        return s.rc;
    }
    if (!s.problems_total)
        return 0;
    res->problems = xcalloc(s.nproblems, sizeof(*res->problems));
    memcpy(res->problems, s.problems, s.nproblems * sizeof(*res->problems));
    res->nproblems = s.nproblems;
    res->problems_total = s.problems_total;
    if (s.problems_total == 1)
        return sw_err_set(err, s.problem_code, "%s: %s", s.problems[0].path, s.problems[0].why);
    return sw_err_set(err, s.problem_code, "%.*s: %zu files cannot be released", (int)s.shownlen,
                      s.shown, s.problems_total);
}

/* ---- provenance ---------------------------------------------------------- */

/* Runs git with args in dir; returns its first output line (caller frees) or NULL.
 * posix_spawn (proc_run), not fork: this process may hold a large heap and
 * threads, and a fork copied its page tables and then paid a copy-on-write
 * fault for every page it touched after (10 ms of a 120 ms deploy that
 * changed nothing). Output past the first bytes is read and dropped, so a
 * talkative git (status of a large dirty tree) is never killed by SIGPIPE. */
static char *git_line(const char *dir, const char *const args[])
{
    const char *argv[12] = {"git", "-C", dir};
    int i = 3;
    for (; args[i - 3] && i < 11; i++)
        argv[i] = args[i - 3];
    argv[i] = NULL;
    struct proc_opts o = {.argv = argv, .max_output = 512};
    struct proc_result pr;
    struct sw_err err = {0};
    if (proc_run(&o, &pr, &err) != 0)
        return NULL;
    char *line = NULL;
    pr.out[strcspn(pr.out, "\n")] = '\0';
    if (pr.exited && pr.exit_code == 0 && pr.out[0])
        line = xstrdup(pr.out);
    proc_result_free(&pr);
    return line;
}

/* 0 when no git could see a work tree at dir: no .git (a directory, or the
 * file of a worktree or submodule) in dir or any directory above it, and no
 * GIT_DIR naming one elsewhere. Running git only to hear that costs 7 to 11
 * ms of a deploy (spawning it and its start-up); a false 1 only costs that. */
static int maybe_git(const char *dir)
{
    if (getenv("GIT_DIR") || getenv("GIT_WORK_TREE"))
        return 1;
    struct buf b = BUF_INIT;
    buf_adds(&b, dir);
    int found = 0;
    for (;;) {
        size_t len = b.len;
        struct stat sb;
        buf_adds(&b, len > 1 ? "/.git" : ".git");
        found = lstat(b.data, &sb) == 0;
        b.len = len;
        b.data[len] = '\0';
        char *slash = strrchr(b.data, '/');
        if (found || !slash || len <= 1)
            break;
        b.len = slash == b.data ? 1 : (size_t)(slash - b.data);
        b.data[b.len] = '\0';
    }
    buf_free(&b);
    return found;
}

static void git_facts(struct release *r)
{
    static const char *const head[] = {"rev-parse", "--verify", "-q", "HEAD", NULL};
    if (!maybe_git(r->source_dir))
        return;
    static const char *const ref[] = {"symbolic-ref", "-q", "HEAD", NULL};
    static const char *const tag[] = {"describe", "--tags", "--exact-match", "HEAD", NULL};
    r->commit = git_line(r->source_dir, head);
    if (!r->commit)
        return;
    r->ref = git_line(r->source_dir, ref);
    r->tag = git_line(r->source_dir, tag);
    /* Anything git status reports under the directory means the files
     * released are not exactly those of the commit recorded. */
    static const char *const status[] = {"status", "--porcelain", "--untracked-files=normal",
                                         "--",     ".",           NULL};
    char *first = git_line(r->source_dir, status);
    r->dirty = first != NULL;
    free(first);
    /* What the manifest parser would refuse is left out, not written. */
    char **facts[] = {&r->commit, &r->ref, &r->tag};
    for (size_t i = 0; i < 3; i++)
        if (*facts[i] && !text_valid(*facts[i], i ? 1024 : 64, 0)) {
            free(*facts[i]);
            *facts[i] = NULL;
        }
}

/* The caller's facts (validated by release_create): a pipeline knows the
 * commit it checked out and the ref it runs for, which a detached checkout's
 * git cannot say; what its steps built is what it means to release, so the
 * tree is not called dirty. */
static void given_facts(const struct release_create_opts *o, struct release *r)
{
    r->commit = xstrdup(o->commit);
    r->ref = o->ref && *o->ref ? xstrdup(o->ref) : NULL;
    if (r->ref && str_starts_with(r->ref, "refs/tags/") && r->ref[10])
        r->tag = xstrdup(r->ref + 10);
    r->run = o->run ? xstrdup(o->run) : NULL;
}

/* ---- release_create ---------------------------------------------------------- */

struct counter {
    const char *root;
    struct release_progress *p;
    atomic_int stop;
    pthread_t tid;
    int started;
};

static void *count_main(void *arg)
{
    struct counter *c = arg;
    release_count_tree(c->root, c->p, &c->stop);
    atomic_store(&c->p->counted, 1);
    return NULL;
}

static void progress_start(struct counter *c, const char *root, struct release_progress *p)
{
    c->root = root;
    c->p = p;
    c->started = 0;
    atomic_init(&c->stop, 0);
    if (!p)
        return;
    atomic_store(&p->files_total, 0);
    atomic_store(&p->files_done, 0);
    atomic_store(&p->bytes_total, 0);
    atomic_store(&p->bytes_done, 0);
    atomic_store(&p->counted, 0);
    /* No thread, no total: the display shows counts without one. */
    c->started = pthread_create(&c->tid, NULL, count_main, c) == 0;
}

/* The scan is over: its counts are the totals. */
static void progress_end(struct counter *c)
{
    if (!c->p)
        return;
    atomic_store(&c->stop, 1);
    if (c->started)
        pthread_join(c->tid, NULL);
    c->started = 0;
    atomic_store(&c->p->files_total, atomic_load(&c->p->files_done));
    atomic_store(&c->p->bytes_total, atomic_load(&c->p->bytes_done));
    atomic_store(&c->p->counted, 1);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct manifest_put {
    struct store *st;
    const char *key, *doc;
    size_t len;
    int rc;
    struct sw_err err;
};

static void *manifest_put_main(void *arg)
{
    struct manifest_put *m = arg;
    m->rc = store_put(m->st, m->key, m->doc, m->len, STORE_IF_ABSENT, NULL, &m->err);
    return NULL;
}

/* Where f's bodies are: where the packer put them (or found them in keep's
 * or a hint's packs), else, with c (fast mode: its lines are keep's files),
 * where keep has them when f's line names the same body, else a blob of its
 * own. */
static void place_bodies(const struct release_packer *packer, const struct stat_cache *c,
                         struct release_file *f)
{
    const struct cached *x =
        c && c->n ? bsearch(f->path, c->v, c->n, sizeof(*c->v), cmp_cached) : NULL;
    for (int k = 0; k < BODIES; k++) {
        struct release_variant *var = k ? &f->var[k - 1] : NULL;
        const char *blob = k ? var->blob : f->blob;
        char *pack = k ? var->pack : f->pack;
        uint64_t *at = k ? &var->at : &f->at;
        pack[0] = '\0';
        *at = 0;
        if (!blob[0] || release_packer_where(packer, blob, pack, at))
            continue;
        if (x && !strcmp(blob, k ? x->var[k - 1].blob : x->hex) && x->where[k] != WHERE_BLOB) {
            memcpy(pack, c->packs[x->where[k]], SHA256_HEX_LEN + 1);
            *at = x->at[k];
        }
    }
}

/* New bodies (variants included), counted once even when several files share one. */
static size_t count_new_blobs(const struct entry *v, size_t n)
{
    const char **blobs = xcalloc(n * (1 + RELEASE_VARIANTS) + 1, sizeof(*blobs));
    size_t m = 0, distinct = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].new_blob)
            blobs[m++] = v[i].blob;
        for (int k = 0; k < RELEASE_VARIANTS; k++)
            if (v[i].new_var[k])
                blobs[m++] = v[i].var[k].blob;
    }
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
    struct entry *v = NULL;
    size_t n = 0;
    struct stat_cache cache = {0};
    struct release r = {0};
    char *root = NULL, *doc = NULL, *key = NULL;
    struct counter counter = {0};
    struct release_packer *packer = NULL;
    struct release *hint = NULL, *loaded = NULL;
    const struct release *keep = opts->keep;
    int rc = 0, fast = 0;
    char digest[SHA256_HEX_LEN + 1];
    struct timespec t0;
    clock_gettime(CLOCK_REALTIME, &t0);
    memset(res, 0, sizeof(*res));

    /* Checked first: a message the manifest cannot carry must fail before any
     * body is stored. */
    if (opts->message && !text_valid(opts->message, RELEASE_MESSAGE_MAX, 1)) {
        rc = sw_err_set(err, SW_EINVAL,
                        "the release message must be UTF-8 text without control characters "
                        "(line breaks and tabs are fine), at most %d bytes",
                        RELEASE_MESSAGE_MAX);
        goto out;
    }
    if ((opts->commit && (!*opts->commit || !text_valid(opts->commit, 64, 0))) ||
        (opts->ref && !text_valid(opts->ref, 1024, 0)) ||
        (opts->run && !release_id_valid(opts->run)) ||
        ((opts->ref || opts->run) && !opts->commit)) {
        rc = sw_err_set(err, SW_EINVAL,
                        "the release's source must be a commit (printable, at most 64 bytes), "
                        "with optionally a ref (printable, at most 1024 bytes) and a run id");
        goto out;
    }
    if (!text_valid(sys_user(), 256, 0) || !text_valid(sys_host(), 256, 0)) {
        rc = sw_err_set(err, SW_EINVAL, "the user or host name is not printable UTF-8");
        goto out;
    }
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
    /* Before the scan: the threads look every file up in it as they find it. */
    cache_load(opts->stat_cache, &cache);
    /* keep by id: when the stat cache's lines are that release's files (on a
     * remote store, where its manifest is 13 ms of a 60 ms deploy that
     * changes nothing), they say all the scan needs of it; else it is read. */
    const char *keep_id = opts->keep_id;
    /* keep_id still to come: a scan that assumes the release the cache
     * records (the usual re-run) overlaps its wait. */
    int assumed = !keep && !keep_id && opts->keep_id_wait && store_is_remote(st) && cache.made[0];
    if (assumed)
        keep_id = cache.made;
    else if (!keep && !keep_id && opts->keep_id_wait)
        opts->keep_id_wait(opts->keep_id_arg, &keep_id);
    if (!keep && keep_id) {
        fast = store_is_remote(st) && cache.made[0] && !strcmp(cache.made, keep_id);
        if (!fast && release_load_copy(st, keep_id, opts->copies, &loaded, NULL) == 0)
            keep = loaded;
    }
    packer = release_packer_new(st, keep);
    /* Without keep (release create on its own, a first deploy), the newest
     * release's packed bodies are not stored again either: a release of an
     * unchanged tree would otherwise be a new copy of every small body. */
    if (!keep && !fast && (opts->pack || store_is_remote(st)) && (hint = release_newest(st)))
        release_packer_hint(packer, hint);
    if (!fast)
        known_load(st, keep, packer, &cache);
    progress_start(&counter, root, opts->progress);
    rc = scan_all(st, opts, root, &sb, &cache, keep, fast, packer, &v, &n, res, err);
    progress_end(&counter);
    if (assumed) {
        const char *real = NULL;
        opts->keep_id_wait(opts->keep_id_arg, &real);
        if (!rc && (!real || strcmp(real, keep_id))) {
            rc = sw_err_set(err, RELEASE_EKEEP_MOVED, "%s", real ? real : "");
            goto out;
        }
    }
    /* The last pack is stored before the manifest is written, as every body is. */
    if (rc || (rc = release_packer_finish(packer, err)))
        goto out;
    if (n == 0) {
        rc = sw_err_set(err, RELEASE_EEMPTY, "%s: no files; an empty directory is not a release",
                        opts->dir);
        goto out;
    }
    qsort(v, n, sizeof(*v), cmp_entry);
    /* Only "x" made from "x.gz" can meet a real x: one created meanwhile. */
    for (size_t i = 1; i < n; i++)
        if (!strcmp(v[i - 1].path, v[i].path)) {
            rc =
                sw_err_set(err, SW_ECHANGED, "%s: appeared beside %s.gz while releasing; try again",
                           v[i].path, v[i].path);
            goto out;
        }
    if ((rc = store_batch_commit(st, err)))
        goto out;

    r.created_ms = time_now_ms();
    char id[ID_LEN(1) + 1];
    id_new_at("r", r.created_ms, id, sizeof(id)); /* cannot fail: id holds it */
    r.id = xstrdup(id);
    r.message = opts->message ? xstrdup(opts->message) : NULL;
    r.user = xstrdup(sys_user());
    r.host = xstrdup(sys_host());
    r.source_dir = xstrdup(root);
    if (!text_valid(root, 4096, 0)) {
        rc = sw_err_set(err, SW_EINVAL, "%s: the directory's path is not printable UTF-8", root);
        goto out;
    }
    if (opts->commit)
        given_facts(opts, &r);
    else
        git_facts(&r);
    r.files = xcalloc(n, sizeof(*r.files));
    for (size_t i = 0; i < n; i++) {
        struct release_file *f = &r.files[r.nfiles++];
        f->path = v[i].path;
        memcpy(f->blob, v[i].blob, sizeof(f->blob));
        f->size = v[i].size;
        /* Last-Modified; a time no HTTP-date can carry is left out (the edge then uses the
         * release's creation time). */
        if (v[i].sb.st_mtime >= 0 && v[i].sb.st_mtime <= RELEASE_MTIME_MAX) {
            f->has_mtime = 1;
            f->mtime = (int64_t)v[i].sb.st_mtime;
        }
        f->type = (char *)release_content_type(f->path);
        f->cache = (char *)release_cache_policy(f->path);
        memcpy(f->var, v[i].var, sizeof(f->var));
        place_bodies(packer, fast ? &cache : NULL, f);
        r.bytes += f->size;
        res->hashed += (size_t)v[i].hashed;
        res->compressed += (size_t)v[i].compressed;
        res->reused += (size_t)v[i].reused;
        uint64_t best = f->size;
        for (int k = 0; k < RELEASE_VARIANTS; k++)
            if (f->var[k].blob[0]) {
                res->variants++;
                if (f->var[k].size < best)
                    best = f->var[k].size;
            }
        res->saved += f->size - best;
    }
    res->new_blobs = count_new_blobs(v, n);
    facts_digest(st, &r, digest);
    int same = fast ? cache_same(&cache, &r, digest) : keep && release_same(&r, keep);
    if (same < 0 && release_load_copy(st, keep_id, opts->copies, &loaded, NULL) == 0)
        same = release_same(&r, loaded);
    if (same > 0) {
        const char *kid = keep ? keep->id : keep_id;
        /* Kept as it is when it says all this already. */
        if (!cache_unchanged(&cache, v, n) || strcmp(cache.made, kid) ||
            strcmp(cache.digest, digest))
            cache_save(opts->stat_cache, ts_ns(&t0), v, n, &r, kid, digest,
                       fast     ? cache.depth
                       : keep   ? keep->depth
                       : loaded ? loaded->depth
                                : -1);
        res->files = r.nfiles;
        res->bytes = r.bytes;
        res->same = 1;
        *id_out = xstrdup(kid);
        goto out;
    }
    if (opts->on_new)
        opts->on_new(opts->keep_id_arg);
    /* Where manifests cross a network, one that changes a few files of the
     * live release names only those (a 1.2 MB manifest of 2,000 files was a
     * third of a one-file deploy to S3); its readers read the base too. */
    struct release d;
    int delta =
        store_is_remote(st) && (fast || keep) && delta_build(&r, fast ? NULL : keep, &cache, &d);
    int depth = delta ? d.depth : 0;
    size_t len;
    doc = release_manifest_dump(delta ? &d : &r, &len);
    if (delta) {
        free(d.files);
        free(d.removed);
    }
    if (!doc) {
        rc = sw_err_set(err, SW_EINVAL, "cannot encode the manifest: a name is not UTF-8");
        goto out;
    }
    key = xasprintf("releases/%s.json", r.id);
    /* Every body first (the last pack was being stored meanwhile). */
    if ((rc = release_packer_wait(packer, err)))
        goto out;
    /* On a remote store the manifest's PUT runs while the copy and the stat
     * cache are written. Both only ever name r to a reader that found r's id
     * in the store's state: should the PUT fail, nothing ever does. */
    struct manifest_put mp = {st, key, doc, len, 0, {0}};
    pthread_t mth;
    int threaded = store_is_remote(st) && pthread_create(&mth, NULL, manifest_put_main, &mp) == 0;
    if (!threaded)
        manifest_put_main(&mp);
    if (!threaded && (rc = mp.rc)) {
        if (err)
            *err = mp.err;
        goto out;
    }
    release_copy_put(opts->copies, r.id, doc, len);
    /* Lines all unchanged: still the files of the release they name, so
     * only for a deploy (keep_id, whose next run wants them to name r) is
     * the cache written again. */
    if (!cache_unchanged(&cache, v, n) || keep_id)
        cache_save(opts->stat_cache, ts_ns(&t0), v, n, &r, r.id, digest, depth);
    if (threaded) {
        pthread_join(mth, NULL);
        if ((rc = mp.rc)) {
            if (err)
                *err = mp.err;
            goto out;
        }
    }
    res->files = r.nfiles;
    res->bytes = r.bytes;
    *id_out = r.id;
    r.id = NULL;
out:
    if (rc)
        store_batch_abort(st);
    for (size_t i = 0; i < n; i++) {
        free(v[i].path);
        free(v[i].real);
    }
    free(v);
    free(r.files); /* paths, types and caches were borrowed */
    free(r.id);
    free(r.message);
    free(r.user);
    free(r.host);
    free(r.source_dir);
    free(r.commit);
    free(r.ref);
    free(r.tag);
    free(r.run);
    cache_free(&cache);
    release_packer_free(packer);
    release_free(hint); /* after the packer, which borrows from it */
    release_free(loaded);
    free(doc);
    free(key);
    free(root);
    return rc;
}

void release_create_result_free(struct release_create_result *res)
{
    for (size_t i = 0; i < res->nproblems; i++) {
        free(res->problems[i].path);
        free(res->problems[i].why);
    }
    free(res->problems);
    res->problems = NULL;
    res->nproblems = res->problems_total = 0;
}
