/*
 * Packs: the small bodies of one release_create stored together, a pack
 * object of about RELEASE_PACK_TARGET bytes each, instead of a blob each (on
 * S3 a request costs more than the bytes of a small body). See "Packs" in
 * docs/store.md for how they are read, checked and collected.
 *
 * One table maps every body this call placed, every body keep holds in a
 * pack, and every body the newest release holds in one (a hint: its pack is
 * touched before it is used, as a reused blob is), to its pack and offset.
 * The pack being filled is one buffer, handed off whole to the thread whose
 * body filled it, which stores it outside the lock while the others go on
 * appending to the next. A pack's name is the SHA-256 of its bytes, known
 * once it is sealed.
 */
#include "release/internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_KEEP = -1, SLOT_HINT = -2 };

struct slot {
    char hex[SHA256_HEX_LEN + 1]; /* the body; "" for an empty slot */
    int no;                       /* this call's pack number, SLOT_KEEP or SLOT_HINT */
    const char *kept;             /* keep's or the hint's pack (borrowed) */
    int hp;                       /* SLOT_HINT: its pack in hps */
    uint64_t at;
};

/* A pack of the hint's: touched at most once, when its first body is wanted. */
struct hint_pack {
    const char *hex; /* borrowed from the hint */
    int state;       /* 0 not yet, 1 touched, -1 cannot be (gone): not used */
};

struct release_packer {
    struct store *st;
    pthread_mutex_t mu; /* guards everything below */
    struct slot *slots; /* open addressing, a power of two of them */
    size_t nslots, used;
    struct buf cur; /* the pack being filled: number cur_no */
    int cur_no;
    char (*names)[SHA256_HEX_LEN + 1]; /* of this call's packs, by number, once stored */
    int npacks, capnames;
    struct hint_pack *hps;
    size_t nhps;
    /* The last pack, stored on a thread of its own (release_packer_finish). */
    pthread_t last_th;
    int last_running, last_rc;
    struct buf last;
    struct sw_err last_err;
    /* The early pack (release_packer_file_done), over keep only: at most one. */
    int eager, early_no;
    pthread_t early_th;
    int early_running, early_rc;
    struct buf early;
    struct sw_err early_err;
};

static size_t slot_hash(const char *hex)
{
    size_t h = 0;
    for (int i = 0; i < 16; i++)
        h = h << 4 | (size_t)(hex[i] <= '9' ? hex[i] - '0' : hex[i] - 'a' + 10);
    return h;
}

static struct slot *slot_find(const struct release_packer *p, const char *hex)
{
    size_t mask = p->nslots - 1;
    for (size_t i = slot_hash(hex) & mask;; i = (i + 1) & mask) {
        struct slot *s = &p->slots[i];
        if (!s->hex[0] || !strcmp(s->hex, hex))
            return s;
    }
}

/* Room for more entries with the table at most half full. Sized once for a
 * release's bodies rather than doubled four times on the way, each doubling
 * rehashing everything into fresh pages: building keep's index of 5,332
 * bodies took 11 ms of a 120 ms deploy that changed nothing, 6 to 9 now. */
static void slots_reserve(struct release_packer *p, size_t more)
{
    size_t want = p->nslots;
    while ((p->used + more) * 2 > want)
        want *= 2;
    if (want == p->nslots)
        return;
    struct slot *old = p->slots;
    size_t n = p->nslots;
    p->nslots = want;
    p->slots = xcalloc(p->nslots, sizeof(*p->slots));
    for (size_t i = 0; i < n; i++)
        if (old[i].hex[0])
            *slot_find(p, old[i].hex) = old[i];
    free(old);
}

/* Inserts hex (absent) at its place; grows the table past half full. */
static void slot_add(struct release_packer *p, const char *hex, int no, const char *kept,
                     uint64_t at)
{
    slots_reserve(p, 1);
    struct slot *s = slot_find(p, hex);
    p->used += !s->hex[0];
    memcpy(s->hex, hex, sizeof(s->hex));
    s->no = no;
    s->kept = kept;
    s->at = at;
}

/* 1 when slot s names a pack that may be used: keep's, a touched hint's, or
 * this call's. Takes the lock held; may touch a hint's pack (a request). */
static int slot_usable(struct release_packer *p, struct slot *s)
{
    if (s->no != SLOT_HINT)
        return 1;
    struct hint_pack *h = &p->hps[s->hp];
    if (h->state == 0) {
        char key[128];
        release_pack_key(h->hex, key, sizeof(key));
        h->state = store_touch(p->st, key, NULL) == 0 ? 1 : -1;
    }
    return h->state == 1;
}

/* The packed bodies r names, at most: what its entries in the table can number. */
static size_t packed_bodies(const struct release *r)
{
    size_t n = 0;
    for (size_t i = 0; r && i < r->nfiles; i++) {
        n += r->files[i].pack[0] != '\0';
        for (int k = 0; k < RELEASE_VARIANTS; k++)
            n += r->files[i].var[k].pack[0] != '\0';
    }
    return n;
}

struct release_packer *release_packer_new(struct store *st, const struct release *keep)
{
    struct release_packer *p = xcalloc(1, sizeof(*p));
    p->st = st;
    pthread_mutex_init(&p->mu, NULL);
    p->npacks = 1; /* number 0: the first pack being filled */
    p->capnames = 16;
    p->names = xcalloc((size_t)p->capnames, sizeof(*p->names));
    size_t packed = packed_bodies(keep);
    p->nslots = 1024;
    while (packed * 2 > p->nslots)
        p->nslots *= 2;
    p->slots = xcalloc(p->nslots, sizeof(*p->slots));
    p->eager = keep != NULL;
    for (size_t i = 0; keep && i < keep->nfiles; i++) {
        struct release_body bv[RELEASE_VARIANTS + 1];
        size_t nbv = release_file_bodies(&keep->files[i], bv);
        for (size_t j = 0; j < nbv; j++)
            if (bv[j].pack && !slot_find(p, bv[j].blob)->hex[0])
                slot_add(p, bv[j].blob, SLOT_KEEP, bv[j].pack, bv[j].at);
    }
    return p;
}

/* A hint is a manifest anyone with write access could have made: a body in
 * a pack beyond the first this many is not taken from it, so that the search
 * below stays short whatever the manifest names (a pack is ~4 MiB: 1,024 of
 * them are a release of about 4 GiB of small bodies). */
#define HINT_PACKS_MAX 1024

void release_packer_hint(struct release_packer *p, const struct release *hint)
{
    slots_reserve(p, packed_bodies(hint));
    for (size_t i = 0; hint && i < hint->nfiles; i++) {
        struct release_body bv[RELEASE_VARIANTS + 1];
        size_t nbv = release_file_bodies(&hint->files[i], bv);
        for (size_t j = 0; j < nbv; j++) {
            if (!bv[j].pack || slot_find(p, bv[j].blob)->hex[0])
                continue;
            size_t k = 0;
            while (k < p->nhps && strcmp(p->hps[k].hex, bv[j].pack))
                k++;
            if (k == p->nhps && p->nhps == HINT_PACKS_MAX)
                continue;
            if (k == p->nhps) {
                p->hps = xrealloc(p->hps, (p->nhps + 1) * sizeof(*p->hps));
                p->hps[p->nhps++] = (struct hint_pack){bv[j].pack, 0};
            }
            slot_add(p, bv[j].blob, SLOT_HINT, bv[j].pack, bv[j].at);
            slot_find(p, bv[j].blob)->hp = (int)k;
        }
    }
}

void release_packer_free(struct release_packer *p)
{
    if (!p)
        return;
    release_packer_wait(p, NULL);
    pthread_mutex_destroy(&p->mu);
    free(p->slots);
    buf_free(&p->cur);
    free(p->names);
    free(p->hps);
    free(p);
}

/* Stores the pack b holds (freed here) under its name, hex. Found there
 * already (the same bodies in the same order, made before): touched, so a
 * concurrent gc sees it young, as a reused blob is. */
static int pack_put(struct release_packer *p, const char *hex, struct buf *b, struct sw_err *err)
{
    char key[128];
    release_pack_key(hex, key, sizeof(key));
    int rc = store_put(p->st, key, b->data, b->len, STORE_IF_ABSENT, NULL, err);
    if (rc == SW_EEXIST && (rc = store_touch(p->st, key, NULL)) != 0)
        rc = store_put(p->st, key, b->data, b->len, 0, NULL, err);
    buf_free(b);
    return rc ? sw_err_prefix(err, "storing a pack of small bodies") : 0;
}

/* Stores pack number no (its bytes in b, freed here) and names it. */
static int pack_store(struct release_packer *p, int no, struct buf *b, struct sw_err *err)
{
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex(b->data, b->len, hex);
    int rc = pack_put(p, hex, b, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&p->mu);
    memcpy(p->names[no], hex, sizeof(p->names[no]));
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int release_packer_add(struct release_packer *p, const char *hex, const void *data, size_t len,
                       int *fresh, struct sw_err *err)
{
    struct buf full = BUF_INIT;
    int full_no = -1;
    *fresh = 0;
    pthread_mutex_lock(&p->mu);
    struct slot *s = slot_find(p, hex);
    /* (A hint's body whose pack is gone is placed anew.) */
    if (s->hex[0] && slot_usable(p, s)) {
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    slot_add(p, hex, p->cur_no, NULL, p->cur.len);
    buf_add(&p->cur, data, len);
    if (p->cur.len >= RELEASE_PACK_TARGET) {
        full = p->cur;
        full_no = p->cur_no;
        p->cur = (struct buf)BUF_INIT;
        if (p->npacks == p->capnames)
            p->names = xrealloc(p->names, (size_t)(p->capnames *= 2) * sizeof(*p->names));
        memset(p->names[p->npacks], 0, sizeof(p->names[p->npacks]));
        p->cur_no = p->npacks++;
    }
    pthread_mutex_unlock(&p->mu);
    *fresh = 1;
    return full_no < 0 ? 0 : pack_store(p, full_no, &full, err);
}

int release_packer_kept(const struct release_packer *p, const char *hex)
{
    struct release_packer *m = (struct release_packer *)p;
    pthread_mutex_lock(&m->mu);
    struct slot *s = slot_find(m, hex);
    int kept = s->hex[0] && (s->no == SLOT_KEEP || s->no == SLOT_HINT) && slot_usable(m, s);
    pthread_mutex_unlock(&m->mu);
    return kept;
}

/* Takes the pack being filled out as number cur_no, named now, and opens the
 * next. Takes the lock held. */
static struct buf seal_locked(struct release_packer *p, int *no)
{
    struct buf b = p->cur;
    *no = p->cur_no;
    p->cur = (struct buf)BUF_INIT;
    sha256_hex(b.data, b.len, p->names[*no]);
    if (p->npacks == p->capnames)
        p->names = xrealloc(p->names, (size_t)(p->capnames *= 2) * sizeof(*p->names));
    memset(p->names[p->npacks], 0, sizeof(p->names[p->npacks]));
    p->cur_no = p->npacks++;
    return b;
}

static void *early_main(void *arg)
{
    struct release_packer *p = arg;
    p->early_rc = pack_put(p, p->names[p->early_no], &p->early, &p->early_err);
    return NULL;
}

void release_packer_file_done(struct release_packer *p)
{
    pthread_mutex_lock(&p->mu);
    if (p->eager && p->cur.len) {
        /* Once: the files a re-run changes after the first go together. */
        p->eager = 0;
        p->early = seal_locked(p, &p->early_no);
        p->early_running = pthread_create(&p->early_th, NULL, early_main, p) == 0;
        if (!p->early_running)
            early_main(p);
    }
    pthread_mutex_unlock(&p->mu);
}

static void *last_main(void *arg)
{
    struct release_packer *p = arg;
    p->last_rc = pack_put(p, p->names[p->cur_no], &p->last, &p->last_err);
    return NULL;
}

int release_packer_finish(struct release_packer *p, struct sw_err *err)
{
    if (!p->cur.len)
        return 0;
    p->last = p->cur;
    p->cur = (struct buf)BUF_INIT;
    sha256_hex(p->last.data, p->last.len, p->names[p->cur_no]);
    p->last_running = pthread_create(&p->last_th, NULL, last_main, p) == 0;
    return p->last_running ? 0 : pack_put(p, p->names[p->cur_no], &p->last, err);
}

int release_packer_wait(struct release_packer *p, struct sw_err *err)
{
    if (p->early_running) {
        pthread_join(p->early_th, NULL);
        p->early_running = 0;
    }
    if (p->last_running) {
        pthread_join(p->last_th, NULL);
        p->last_running = 0;
    }
    int rc = p->early_rc ? p->early_rc : p->last_rc;
    if (rc && err)
        *err = p->early_rc ? p->early_err : p->last_err;
    return rc;
}

int release_packer_where(const struct release_packer *p, const char *hex,
                         char pack[SHA256_HEX_LEN + 1], uint64_t *at)
{
    const struct slot *s = slot_find(p, hex);
    if (!s->hex[0] || (s->no == SLOT_HINT && p->hps[s->hp].state != 1))
        return 0;
    memcpy(pack, s->no < 0 ? s->kept : p->names[s->no], SHA256_HEX_LEN + 1);
    *at = s->at;
    return 1;
}
