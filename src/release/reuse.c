/*
 * Reusing the variants of earlier releases. A variant is a pure function of
 * the identity body, and most bodies of a release are those of the last one,
 * so a release made where no stat cache exists (a fresh CI checkout) takes
 * them from the newest manifests in the store instead of compressing again:
 * decoding is tens of times cheaper than gzip -9 and Brotli 10.
 *
 * A manifest is hostile input (a shared bucket has many writers), so what one
 * names is only a hint: a variant is reused only after its blob is read
 * (bounded by the size the manifest gives, itself below the body's), hashes to
 * its name, and decodes, as one whole stream, to exactly the body just read,
 * whose SHA-256 is the identity id. Anything else, and any failure on the
 * way, makes the caller compress as if there were no hint.
 */
#include "release/internal.h"

#include <stdlib.h>
#include <string.h>

/* Manifests read, newest first by id; and ids tried, so that a few corrupt or
 * oversized newest manifests cannot cost more than this many reads. */
#define REUSE_MANIFESTS 3
#define REUSE_TRIES 8
/* A larger manifest (over about 150,000 files) is skipped: it only costs compression. */
#define REUSE_MANIFEST_MAX (64u << 20)

/* One variant one manifest names for a body. A body may have several (from
 * different manifests, one of them perhaps forged): each is tried in turn,
 * newest first, so that one bad manifest does not hide the good ones. */
struct hint {
    char hex[SHA256_HEX_LEN + 1]; /* the identity body */
    int coding;
    int rank; /* 0 for the newest manifest read */
    struct release_variant var;
};

struct release_reuse {
    struct hint *v; /* sorted by hex, coding and rank; no two alike */
    size_t n;
    int kept; /* the hints are one release's that gc keeps meanwhile (release_create_opts.keep) */
};

static int collect(void *arg, const void *data, size_t len, struct sw_err *err)
{
    (void)err;
    buf_add(arg, data, len);
    return 0;
}

/* release_load, with the read bounded: a manifest of any size is no reason
 * for a release to run out of memory. NULL when it cannot be used. */
static struct release *load_bounded(struct store *st, const char *id)
{
    char *key = xasprintf("releases/%s.json", id);
    struct buf b = BUF_INIT;
    struct release *r = NULL;
    uint64_t size;
    if (store_get_stream(st, key, REUSE_MANIFEST_MAX, collect, &b, NULL, &size, NULL) == 0 &&
        release_manifest_parse(key, id, b.data ? b.data : "", b.len, &r, NULL) != 0)
        r = NULL;
    buf_free(&b);
    free(key);
    return r;
}

struct release *release_newest(struct store *st)
{
    char **ids = NULL;
    size_t nids = 0;
    struct release *r = NULL;
    if (release_list(st, &ids, &nids, NULL) != 0)
        return NULL;
    for (size_t i = nids, tried = 0; i-- > 0 && !r && tried < REUSE_TRIES; tried++)
        r = load_bounded(st, ids[i]);
    release_ids_free(ids, nids);
    return r;
}

static int cmp_hint(const void *a, const void *b)
{
    const struct hint *x = a, *y = b;
    int c = strcmp(x->hex, y->hex);
    if (!c)
        c = x->coding - y->coding;
    return c ? c : x->rank - y->rank;
}

/* For bsearch: equal to any hint of the same body and coding. */
static int cmp_key(const void *key, const void *e)
{
    const struct hint *x = key, *y = e;
    int c = strcmp(x->hex, y->hex);
    return c ? c : x->coding - y->coding;
}

static void add_hints(struct release_reuse *m, size_t *cap, const struct release *r, int rank)
{
    for (size_t j = 0; j < r->nfiles; j++)
        for (int k = 0; k < RELEASE_VARIANTS; k++) {
            const struct release_file *f = &r->files[j];
            /* A packed variant is no hint: checking it would read its pack.
             * Compressed again, it is found in keep's pack by the packer
             * (release_packer_kept) when keep holds it, and costs no put. */
            if (!f->var[k].blob[0] || f->var[k].pack[0])
                continue;
            if (m->n == *cap)
                m->v = xrealloc(m->v, (*cap = *cap ? *cap * 2 : 256) * sizeof(*m->v));
            struct hint *h = &m->v[m->n++];
            memcpy(h->hex, f->blob, sizeof(h->hex));
            h->coding = k;
            h->rank = rank;
            h->var = f->var[k];
        }
}

void release_reuse_load(struct store *st, const struct release *only, struct release_reuse **out)
{
    struct release_reuse *m = xcalloc(1, sizeof(*m));
    char **ids = NULL;
    size_t nids = 0, cap = 0;
    *out = m;
    if (only) {
        add_hints(m, &cap, only, 0);
        m->kept = 1;
    } else if (release_list(st, &ids, &nids, NULL) != 0)
        return;
    int used = 0, tried = 0;
    for (size_t i = nids; i-- > 0 && used < REUSE_MANIFESTS && tried < REUSE_TRIES; tried++) {
        struct release *r = load_bounded(st, ids[i]);
        if (!r)
            continue;
        add_hints(m, &cap, r, used++);
        release_free(r);
    }
    release_ids_free(ids, nids);
    if (!m->n)
        return;
    qsort(m->v, m->n, sizeof(*m->v), cmp_hint);
    /* One hint per manifest for a body and coding, so a forged manifest
     * naming a body a million times costs one check, not a million; and the
     * same variant named by several manifests is checked once. */
    size_t w = 0;
    for (size_t i = 0; i < m->n; i++) {
        const struct hint *h = &m->v[i];
        int dup = 0;
        for (size_t j = w; j > 0 && !dup && !cmp_key(h, &m->v[j - 1]); j--)
            dup = m->v[j - 1].rank == h->rank || !strcmp(m->v[j - 1].var.blob, h->var.blob);
        if (!dup)
            m->v[w++] = *h;
    }
    m->n = w;
}

void release_reuse_free(struct release_reuse *m)
{
    if (!m)
        return;
    free(m->v);
    free(m);
}

/* 1 when c, named for a body of len bytes, is in the store and decodes to it. */
static int check(struct store *st, int kept, int coding, const struct release_variant *c,
                 const void *body, size_t len)
{
    /* The parser keeps sizes below the file's, but the file there may be
     * another one claiming this body's id. */
    if (c->size == 0 || c->size >= len)
        return 0;
    char key[128], etag[SHA256_HEX_LEN + 1];
    release_blob_key(c->blob, key, sizeof(key));
    /* Touched first, as put_body does for a body it finds: young again, so a
     * concurrent gc's grace period keeps it until the manifest names it.
     * Not a body of a kept release on a remote store, where a touch is a
     * request of its own (known_load in create.c): gc keeps it anyway. */
    if (!(kept && store_is_remote(st)) && store_touch(st, key, NULL) != 0)
        return 0;
    struct buf b = BUF_INIT;
    buf_grow(&b, (size_t)c->size + 1);
    uint64_t got = 0;
    int ok = store_get_stream(st, key, c->size, collect, &b, etag, &got, NULL) == 0 &&
             got == c->size && !strcmp(etag, c->blob) &&
             release_variant_decodes(coding, b.data, b.len, body, len);
    buf_free(&b);
    return ok;
}

int release_reuse_variant(struct store *st, const struct release_reuse *m, int coding,
                          const char *hex, const void *body, size_t len, struct release_variant *v)
{
    if (!m || !m->n)
        return 0;
    struct hint key = {.coding = coding};
    memcpy(key.hex, hex, sizeof(key.hex));
    const struct hint *h = bsearch(&key, m->v, m->n, sizeof(*m->v), cmp_key);
    if (!h)
        return 0;
    while (h > m->v && !cmp_key(&key, h - 1))
        h--;
    for (; h < m->v + m->n && !cmp_key(&key, h); h++)
        if (check(st, m->kept, coding, &h->var, body, len)) {
            *v = h->var;
            return 1;
        }
    return -1;
}
