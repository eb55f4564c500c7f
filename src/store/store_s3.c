/*
 * The s3 backend: the store's operations as S3 requests (see s3.h for the
 * client and docs/store.md for what each operation costs).
 *
 * ETags. The store's ETag is the SHA-256 of an object's bytes on every
 * backend; S3's own ETag is an MD5 or a multipart digest. Every object slipway
 * writes carries its SHA-256 as x-amz-meta-sha256, but that header is only a
 * hint (anyone who can write the bucket can write it): what a read returns is
 * hashed as it arrives. Compare-and-swap needs S3's ETag of the version whose
 * SHA-256 the caller holds, so the backend remembers the pair for the keys it
 * read or wrote last (a state document is read, then written back) and reads
 * the object again when it does not know it.
 */
#include "store/backend.h"
#include "store/s3.h"
#include "store/s3multi.h"
#include "store/s3xml.h"
#include "store/sigv4.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define GET_MAX ((size_t)1 << 30) /* a whole object read into memory */
#define LIST_PAGE_MAX (8u << 20)
#define ETAG_CACHE 64
/* A conditional write whose fate is unknown is re-checked and re-sent at
 * most this many times. */
#define RECHECK_MAX 4

struct etag_pair {
    char *key;
    char sha[SHA256_HEX_LEN + 1];
    char s3[S3_ETAG_MAX];
};

struct s3b {
    struct store *st;
    struct s3 *cl;
    const char *shown;
    pthread_mutex_t mu;
    struct etag_pair cache[ETAG_CACHE];
    size_t next;
    atomic_int probed;        /* 0 not yet, 1 conditional writes honoured */
    pthread_mutex_t probe_mu; /* guards the probe and the fields below */
    int probing;              /* 1: probe_th runs (or ran, not joined yet) the probe */
    pthread_t probe_th;
    int probe_rc;
    struct sw_err probe_err;
};

static struct s3b *B(struct store *st)
{
    return st->impl;
}

/* ---- the ETag pairs ----------------------------------------------------------------------- */

static void pair_remember(struct s3b *b, const char *key, const char *sha, const char *s3)
{
    if (!s3 || !*s3)
        return;
    pthread_mutex_lock(&b->mu);
    struct etag_pair *p = NULL;
    for (size_t i = 0; i < ETAG_CACHE && !p; i++)
        if (b->cache[i].key && !strcmp(b->cache[i].key, key))
            p = &b->cache[i];
    if (!p) {
        p = &b->cache[b->next];
        b->next = (b->next + 1) % ETAG_CACHE;
        free(p->key);
        p->key = xstrdup(key);
    }
    snprintf(p->sha, sizeof(p->sha), "%s", sha);
    snprintf(p->s3, sizeof(p->s3), "%s", s3);
    pthread_mutex_unlock(&b->mu);
}

static int pair_lookup(struct s3b *b, const char *key, const char *sha, char s3[S3_ETAG_MAX])
{
    int found = 0;
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < ETAG_CACHE; i++)
        if (b->cache[i].key && !strcmp(b->cache[i].key, key) && !strcmp(b->cache[i].sha, sha)) {
            memcpy(s3, b->cache[i].s3, S3_ETAG_MAX);
            found = 1;
            break;
        }
    pthread_mutex_unlock(&b->mu);
    return found;
}

static int s3b_etag_token(struct store *st, const char *key, const char *sha, char *token)
{
    char s3[S3_ETAG_MAX];
    if (!pair_lookup(B(st), key, sha, s3) || strlen(s3) >= STORE_ETAG_TOKEN_MAX)
        return 0;
    memcpy(token, s3, strlen(s3) + 1);
    return 1;
}

static void s3b_etag_learn(struct store *st, const char *key, const char *sha, const char *token)
{
    if (strlen(token) < S3_ETAG_MAX)
        pair_remember(B(st), key, sha, token);
}

/* ---- reads -------------------------------------------------------------------------------- */

static int s3b_get(struct store *st, const char *key, char **data, size_t *len, char *etag,
                   struct sw_err *err)
{
    struct s3b *b = B(st);
    struct s3_resp resp;
    struct s3_req r = {
        .method = "GET", .key = key, .body_fd = -1, .max_body = GET_MAX, .flags = S3_IDEMPOTENT};
    int rc = s3_request(b->cl, &r, &resp, err);
    if (rc == 0) {
        char sha[SHA256_HEX_LEN + 1];
        sha256_hex(resp.body.data ? resp.body.data : "", resp.body.len, sha);
        pair_remember(b, key, sha, resp.etag);
        if (etag)
            memcpy(etag, sha, sizeof(sha));
        *data = buf_detach(&resp.body, len);
    }
    s3_resp_free(&resp);
    return rc;
}

static int s3b_get_if_changed(struct store *st, const char *key, const char *etag, char **data,
                              size_t *len, char *etag_out, struct sw_err *err)
{
    struct s3b *b = B(st);
    char s3[S3_ETAG_MAX], cond[S3_ETAG_MAX + 24];
    struct s3_req r = {
        .method = "GET", .key = key, .body_fd = -1, .max_body = GET_MAX, .flags = S3_IDEMPOTENT};
    if (pair_lookup(b, key, etag, s3)) {
        snprintf(cond, sizeof(cond), "If-None-Match: \"%s\"", s3);
        r.hdr[0] = cond;
    }
    struct s3_resp resp;
    int rc = s3_request(b->cl, &r, &resp, err);
    if (rc == 0 && resp.status == 304) {
        rc = STORE_EUNCHANGED;
    } else if (rc == 0) {
        char sha[SHA256_HEX_LEN + 1];
        sha256_hex(resp.body.data ? resp.body.data : "", resp.body.len, sha);
        pair_remember(b, key, sha, resp.etag);
        if (!strcmp(sha, etag)) {
            rc = STORE_EUNCHANGED; /* rewritten with the same bytes */
        } else {
            if (etag_out)
                memcpy(etag_out, sha, sizeof(sha));
            *data = buf_detach(&resp.body, len);
        }
    }
    s3_resp_free(&resp);
    return rc;
}

static int s3b_get_stream(struct store *st, const char *key, store_sink_fn sink, void *arg,
                          struct sw_err *err)
{
    struct s3_resp resp;
    struct s3_req r = {.method = "GET",
                       .key = key,
                       .body_fd = -1,
                       .sink = sink,
                       .sink_arg = arg,
                       .flags = S3_IDEMPOTENT};
    int rc = s3_request(B(st)->cl, &r, &resp, err);
    s3_resp_free(&resp);
    return rc;
}

/* HEAD: size and time. An ETag (SHA-256) is asked only of small documents
 * (a queue entry), so it is read and hashed rather than taken from metadata
 * another writer may have forged. */
static int s3b_head(struct store *st, const char *key, struct store_stat *out, unsigned flags,
                    struct sw_err *err)
{
    struct s3_resp resp;
    int rc;
    if (flags & STORE_STAT_ETAG) {
        char *data = NULL;
        size_t len = 0;
        if ((rc = s3b_get(st, key, &data, &len, out->etag, err)))
            return rc;
        free(data);
        out->size = len;
    }
    struct s3_req r = {.method = "HEAD", .key = key, .body_fd = -1, .flags = S3_IDEMPOTENT};
    rc = s3_request(B(st)->cl, &r, &resp, err);
    if (rc == 0) {
        if (!(flags & STORE_STAT_ETAG))
            out->size = resp.content_length > 0 ? (uint64_t)resp.content_length : 0;
        out->mtime_ms = resp.last_modified_ms;
    }
    s3_resp_free(&resp);
    return rc;
}

/* ---- writes ------------------------------------------------------------------------------- */

struct put {
    const void *data;
    size_t len;
    int fd;
    const char *sha;
    const char *cond; /* "If-None-Match: *", "If-Match: \"...\"" or NULL */
};

static int put_once(struct s3b *b, const char *key, const struct put *p, struct s3_resp *resp,
                    struct sw_err *err)
{
    const struct s3conf *c = s3_conf(b->cl);
    char meta[64 + SHA256_HEX_LEN], sse[64], kms[300];
    snprintf(meta, sizeof(meta), "x-amz-meta-sha256: %s", p->sha);
    snprintf(sse, sizeof(sse), "x-amz-server-side-encryption: %s", c->sse ? c->sse : "AES256");
    struct s3_req r = {.method = "PUT",
                       .key = key,
                       .data = p->data,
                       .len = p->len,
                       .body_fd = p->fd,
                       .body_sha256 = p->sha,
                       .max_body = 4096,
                       .flags = p->cond ? 0 : S3_IDEMPOTENT};
    size_t n = 0;
    r.hdr[n++] = meta;
    r.hdr[n++] = sse;
    if (c->kms_key_id) {
        snprintf(kms, sizeof(kms), "x-amz-server-side-encryption-aws-kms-key-id: %s",
                 c->kms_key_id);
        r.hdr[n++] = kms;
    }
    r.hdr[n++] = "Content-Type: application/octet-stream";
    if (p->cond)
        r.hdr[n++] = p->cond;
    return s3_request(b->cl, &r, resp, err);
}

/* What is stored under key now: its SHA-256 (read and hashed) and S3 ETag.
 * 1 when absent. */
static int current(struct s3b *b, const char *key, char sha[SHA256_HEX_LEN + 1],
                   char s3[S3_ETAG_MAX], struct sw_err *err)
{
    struct s3_resp resp;
    struct s3_req r = {
        .method = "GET", .key = key, .body_fd = -1, .max_body = GET_MAX, .flags = S3_IDEMPOTENT};
    int rc = s3_request(b->cl, &r, &resp, err);
    if (rc == 0) {
        sha256_hex(resp.body.data ? resp.body.data : "", resp.body.len, sha);
        snprintf(s3, S3_ETAG_MAX, "%s", resp.etag);
        pair_remember(b, key, sha, resp.etag);
    }
    s3_resp_free(&resp);
    return rc == SW_ENOTFOUND ? 1 : rc;
}

/* A create-only write (If-None-Match: *). Where its fate is unknown, what is
 * there is read: our own bytes mean it landed. *existed: someone else's
 * object was there. */
static int put_absent(struct s3b *b, const char *key, const struct put *p0, int *existed,
                      struct sw_err *err)
{
    struct put p = *p0;
    p.cond = "If-None-Match: *";
    *existed = 0;
    for (int i = 0;; i++) {
        struct s3_resp resp;
        int rc = put_once(b, key, &p, &resp, err);
        if (rc == 0)
            pair_remember(b, key, p.sha, resp.etag);
        s3_resp_free(&resp);
        if (rc == SW_ECONFLICT) {
            *existed = 1;
            return sw_err_set(err, SW_EEXIST, "%s: %s already exists", b->shown, key);
        }
        if (rc != S3_EMAYBE)
            return rc;
        char sha[SHA256_HEX_LEN + 1], s3[S3_ETAG_MAX];
        struct sw_err e2 = {0};
        int c = current(b, key, sha, s3, &e2);
        if (c == 0) {
            if (!strcmp(sha, p.sha))
                return 0; /* ours landed */
            *existed = 1;
            return sw_err_set(err, SW_EEXIST, "%s: %s already exists", b->shown, key);
        }
        if (c < 0 || i + 1 >= RECHECK_MAX) {
            if (c < 0 && err)
                *err = e2;
            return c < 0 ? c : SW_EIO;
        }
    }
}

static int s3b_put(struct store *st, const char *key, const void *data, size_t len, unsigned flags,
                   char *etag_out, struct sw_err *err)
{
    struct s3b *b = B(st);
    char sha[SHA256_HEX_LEN + 1];
    sha256_hex(data ? data : "", len, sha);
    struct put p = {data, len, -1, sha, NULL};
    int rc;
    if (flags & STORE_IF_ABSENT) {
        int existed;
        rc = put_absent(b, key, &p, &existed, err);
        /* As the fs backend's batch commit: a create-only batched put whose
         * key appeared meanwhile is dropped (the key is content-addressed). */
        if (rc == SW_EEXIST && existed && (flags & STORE_BATCH))
            rc = 0;
    } else {
        struct s3_resp resp;
        rc = put_once(b, key, &p, &resp, err);
        if (rc == 0)
            pair_remember(b, key, sha, resp.etag);
        s3_resp_free(&resp);
    }
    if (rc == 0 && etag_out)
        memcpy(etag_out, sha, sizeof(sha));
    return rc;
}

static int hash_fd(int fd, uint64_t *size, char sha[SHA256_HEX_LEN + 1])
{
    struct sha256_ctx *h = sha256_new();
    char buf[256 * 1024];
    uint64_t n = 0;
    for (;;) {
        ssize_t k = pread(fd, buf, sizeof(buf), (off_t)n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = errno;
            sha256_final_hex(h, sha);
            return -e;
        }
        if (k == 0)
            break;
        sha256_update(h, buf, (size_t)k);
        n += (uint64_t)k;
    }
    sha256_final_hex(h, sha);
    *size = n;
    return 0;
}

/* A file above S3MULTI_THRESHOLD, in parts (s3multi.h): the same metadata,
 * encryption and create-only rule as one PUT, If-None-Match: * going with
 * CompleteMultipartUpload. */
static int put_file_parts(struct store *st, const char *key, const char *path, int fd,
                          uint64_t size_hint, unsigned flags, char *etag_out, struct sw_err *err)
{
    struct s3b *b = B(st);
    const struct s3conf *c = s3_conf(b->cl);
    struct s3multi_file f;
    int rc = s3multi_hash(fd, size_hint, &f, err);
    if (rc)
        return sw_err_prefix(err, "%s", path);
    if (f.size <= S3MULTI_THRESHOLD) {
        rc = sw_err_set(err, SW_ECHANGED, "%s: file shrank while it was being read; try again",
                        path);
        goto out;
    }
    char meta[64 + SHA256_HEX_LEN], sse[64], kms[300], s3etag[S3_ETAG_MAX];
    const char *hdr[S3_HDR_MAX] = {0};
    size_t n = 0;
    snprintf(meta, sizeof(meta), "x-amz-meta-sha256: %s", f.sha);
    snprintf(sse, sizeof(sse), "x-amz-server-side-encryption: %s", c->sse ? c->sse : "AES256");
    hdr[n++] = meta;
    hdr[n++] = sse;
    if (c->kms_key_id) {
        snprintf(kms, sizeof(kms), "x-amz-server-side-encryption-aws-kms-key-id: %s",
                 c->kms_key_id);
        hdr[n++] = kms;
    }
    hdr[n++] = "Content-Type: application/octet-stream";
    rc = s3multi_put(b->cl, st, key, &f, hdr, (flags & STORE_IF_ABSENT) != 0, s3etag, err);
    if (rc == SW_ECONFLICT && (flags & STORE_IF_ABSENT))
        /* As put_absent: a create-only batched put whose key appeared
         * meanwhile is dropped (the key is content-addressed). */
        rc = flags & STORE_BATCH
                 ? 0
                 : sw_err_set(err, SW_EEXIST, "%s: %s already exists", b->shown, key);
    else if (rc == 0)
        pair_remember(b, key, f.sha, s3etag);
    if (rc == 0 && etag_out)
        memcpy(etag_out, f.sha, sizeof(f.sha));
out:
    s3multi_file_free(&f);
    return rc;
}

/* The file is hashed first and the hash signed as the payload's: a file that
 * changes between the two reads is refused by S3 (XAmzContentSHA256Mismatch),
 * so etag_out always names what was stored. One PUT up to
 * S3MULTI_THRESHOLD, holding an upload slot; a multipart upload above. */
static int s3b_put_file(struct store *st, const char *key, const char *path, unsigned flags,
                        char *etag_out, struct sw_err *err)
{
    struct s3b *b = B(st);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sw_err_sys(err, errno, "%s", path);
    char sha[SHA256_HEX_LEN + 1];
    uint64_t size = 0;
    struct stat sb;
    int rc, e;
    if (fstat(fd, &sb) < 0) {
        rc = sw_err_sys(err, errno, "%s", path);
        goto out;
    }
    if ((uint64_t)sb.st_size > S3MULTI_THRESHOLD) {
        rc = put_file_parts(st, key, path, fd, (uint64_t)sb.st_size, flags, etag_out, err);
        goto out;
    }
    if ((e = hash_fd(fd, &size, sha))) {
        rc = sw_err_sys(err, -e, "reading %s", path);
        goto out;
    }
    if (size > S3MULTI_THRESHOLD) {
        rc = sw_err_set(err, SW_ECHANGED, "%s: file grew while it was being read; try again", path);
        goto out;
    }
    struct put p = {NULL, (size_t)size, fd, sha, NULL};
    store_xfer_begin(st);
    if (flags & STORE_IF_ABSENT) {
        int existed;
        rc = put_absent(b, key, &p, &existed, err);
        if (rc == SW_EEXIST && existed && (flags & STORE_BATCH))
            rc = 0;
    } else {
        struct s3_resp resp;
        rc = put_once(b, key, &p, &resp, err);
        if (rc == 0)
            pair_remember(b, key, sha, resp.etag);
        s3_resp_free(&resp);
    }
    store_xfer_end(st);
    if (rc == 0)
        store_count_sent(st, size);
    if (rc == 0 && etag_out)
        memcpy(etag_out, sha, sizeof(sha));
out:
    close(fd);
    return rc;
}

/* Proves once per process that the endpoint honours conditional writes, in
 * one request to the store's probe key: a write conditional on an ETag no
 * object has (If-Match) must be refused, 412 (only an endpoint that checks the
 * condition ever refuses). If-Match is what every state write carries, the
 * environment's lease included, so it is the condition proven each time. The
 * key is kept: the store's first process finds it absent (404), writes it
 * create-only twice, and that second write must be refused too (If-None-Match,
 * which blobs, manifests and audit events carry), then proves If-Match on it.
 * The key starts with '.', outside every store key, so no listing shows it.
 * Each write carries its own bytes, so when the answer to one is lost (a reset
 * after it was sent) reading the key tells whether it landed; where nothing
 * tells, the write is sent again. */
#define PROBE_KEY ".slipway-probe/conditional-writes"
#define PROBE_NO_ETAG "If-Match: \"00000000000000000000000000000000\""

enum { PROBE_CREATE, PROBE_AGAIN, PROBE_IF_MATCH };

/* One probe write: 0 written, SW_ECONFLICT refused, SW_ENOTFOUND (If-Match on
 * no object), or a failure. */
static int probe_write(struct s3b *b, int step, struct sw_err *err)
{
    static const char *const body[] = {"probe", "probe, again", "probe, if-match"};
    static const char *const cond[] = {"If-None-Match: *", "If-None-Match: *", PROBE_NO_ETAG};
    char sha[SHA256_HEX_LEN + 1];
    sha256_hex(body[step], strlen(body[step]), sha);
    for (int tries = 0;; tries++) {
        struct put p = {body[step], strlen(body[step]), -1, sha, cond[step]};
        struct s3_resp resp;
        int rc = put_once(b, PROBE_KEY, &p, &resp, err);
        s3_resp_free(&resp);
        if (rc != S3_EMAYBE)
            return rc;
        char cur[SHA256_HEX_LEN + 1], etag[S3_ETAG_MAX];
        struct sw_err e2;
        int c = current(b, PROBE_KEY, cur, etag, &e2);
        if (c < 0) {
            if (err)
                *err = e2;
            return c;
        }
        /* Our bytes: it landed (the create: or an earlier process's did). */
        if (c == 0 && !strcmp(cur, sha))
            return 0;
        if (tries + 1 >= RECHECK_MAX)
            return SW_EIO; /* err: the last transport failure */
    }
}

static int probe_ignored(struct s3b *b, const char *how, struct sw_err *err)
{
    return sw_err_set(err, SW_EINVAL,
                      "%s: this endpoint ignores conditional writes (%s), so compare-and-swap is "
                      "impossible there; slipway refuses to write state to it",
                      b->shown, how);
}

static int probe_run(struct s3b *b, struct sw_err *err)
{
    int rc = probe_write(b, PROBE_IF_MATCH, err);
    if (rc == SW_ENOTFOUND) {
        /* The store's first process: the key made, create-only twice. */
        if ((rc = probe_write(b, PROBE_CREATE, err)) && rc != SW_ECONFLICT)
            return rc;
        rc = probe_write(b, PROBE_AGAIN, err);
        if (rc == 0)
            return probe_ignored(b, "If-None-Match: * overwrote an object", err);
        if (rc != SW_ECONFLICT)
            return rc;
        rc = probe_write(b, PROBE_IF_MATCH, err);
    }
    if (rc == SW_ECONFLICT)
        return 0; /* refused: the condition was checked */
    if (rc == 0)
        return probe_ignored(b, "a write with If-Match on an ETag no object has was not refused",
                             err);
    if (rc == SW_ENOTFOUND)
        return sw_err_set(err, SW_EIO, "%s: %s vanished while it was written; try again", b->shown,
                          PROBE_KEY);
    return rc;
}

/* The proof another process of this machine kept (store_keep_cas_proof):
 * "slipway-cas-proof 1\nurl URL\nat MS\n", for this store's URL, younger
 * than STORE_CAS_PROOF_MS (and not from the future). A file that says
 * anything else proves nothing. */
static int proof_fresh(struct s3b *b)
{
    char *data = NULL;
    size_t len;
    long long at = 0;
    int n = 0, fresh = 0;
    if (!b->st->cas_proof || file_read_all(b->st->cas_proof, &data, &len, NULL) != 0)
        return 0;
    const char *url = b->st->url;
    size_t ulen = strlen(url);
    const char *head = "slipway-cas-proof 1\nurl ";
    if (strlen(data) == len && !strncmp(data, head, strlen(head)) &&
        !strncmp(data + strlen(head), url, ulen) && data[strlen(head) + ulen] == '\n' &&
        sscanf(data + strlen(head) + ulen + 1, "at %lld\n%n", &at, &n) == 1 &&
        (size_t)(strlen(head) + ulen + 1 + (size_t)n) == len) {
        int64_t now = time_now_ms();
        fresh = at <= now + 60000 && now - at < STORE_CAS_PROOF_MS;
    }
    free(data);
    return fresh;
}

static void proof_keep(struct s3b *b)
{
    if (!b->st->cas_proof)
        return;
    char *data =
        xasprintf("slipway-cas-proof 1\nurl %s\nat %lld\n", b->st->url, (long long)time_now_ms());
    fs_write_replace(b->st->cas_proof, data, strlen(data), NULL); /* best effort */
    free(data);
}

/* Waits for a probe prepare_cas started; takes probe_mu held. */
static int probe_join(struct s3b *b, struct sw_err *err)
{
    pthread_join(b->probe_th, NULL);
    b->probing = 0;
    if (b->probe_rc && err)
        *err = b->probe_err;
    return b->probe_rc;
}

/* The probe, or a fresh proof of it; a probe passed is kept as a proof. */
static int probe_or_proof(struct s3b *b, struct sw_err *err)
{
    if (proof_fresh(b))
        return 0;
    int rc = probe_run(b, err);
    if (rc == 0)
        proof_keep(b);
    return rc;
}

static int probe(struct s3b *b, struct sw_err *err)
{
    if (atomic_load(&b->probed))
        return 0;
    pthread_mutex_lock(&b->probe_mu);
    int rc = 0;
    if (!atomic_load(&b->probed))
        rc = b->probing ? probe_join(b, err) : probe_or_proof(b, err);
    if (rc == 0)
        atomic_store(&b->probed, 1);
    pthread_mutex_unlock(&b->probe_mu);
    return rc;
}

static void *probe_main(void *arg)
{
    struct s3b *b = arg;
    b->probe_rc = probe_or_proof(b, &b->probe_err);
    return NULL;
}

/* The probe in a thread of its own, so that its request overlaps the reads of
 * the state and the audit head (a change's first requests) instead of coming
 * after them.
 * Its result is taken by the first compare-and-swap (probe). */
static void s3b_prepare_cas(struct store *st)
{
    struct s3b *b = B(st);
    if (atomic_load(&b->probed))
        return;
    pthread_mutex_lock(&b->probe_mu);
    if (!atomic_load(&b->probed) && !b->probing)
        b->probing = pthread_create(&b->probe_th, NULL, probe_main, b) == 0;
    pthread_mutex_unlock(&b->probe_mu);
}

/* S3's ETag of the version of key whose SHA-256 is sha; SW_ECONFLICT when
 * the object is no longer that version. */
static int s3_etag_of(struct s3b *b, const char *key, const char *sha, char s3[S3_ETAG_MAX],
                      struct sw_err *err)
{
    if (pair_lookup(b, key, sha, s3))
        return 0;
    char cur[SHA256_HEX_LEN + 1];
    int rc = current(b, key, cur, s3, err);
    if (rc == 1)
        return sw_err_set(err, SW_ECONFLICT, "%s: %s changed (now absent)", b->shown, key);
    if (rc)
        return rc;
    if (strcmp(cur, sha) != 0)
        return sw_err_set(err, SW_ECONFLICT, "%s: %s was changed by someone else", b->shown, key);
    return 0;
}

static int s3b_put_if_match(struct store *st, const char *key, const void *data, size_t len,
                            const char *if_match, char *etag_out, struct sw_err *err)
{
    struct s3b *b = B(st);
    int rc = probe(b, err);
    if (rc)
        return rc;
    char sha[SHA256_HEX_LEN + 1];
    sha256_hex(data ? data : "", len, sha);
    struct put p = {data, len, -1, sha, NULL};
    if (!if_match) {
        int existed;
        rc = put_absent(b, key, &p, &existed, err);
        if (rc == SW_EEXIST)
            rc = sw_err_set(err, SW_ECONFLICT, "%s: %s already exists", b->shown, key);
        goto out;
    }
    char s3[S3_ETAG_MAX], cond[S3_ETAG_MAX + 16];
    if ((rc = s3_etag_of(b, key, if_match, s3, err)))
        return rc;
    snprintf(cond, sizeof(cond), "If-Match: \"%s\"", s3);
    p.cond = cond;
    for (int i = 0;; i++) {
        struct s3_resp resp;
        rc = put_once(b, key, &p, &resp, err);
        if (rc == 0)
            pair_remember(b, key, sha, resp.etag);
        s3_resp_free(&resp);
        if (rc == SW_ENOTFOUND)
            rc = sw_err_set(err, SW_ECONFLICT, "%s: %s changed (now absent)", b->shown, key);
        if (rc != S3_EMAYBE)
            break;
        /* Did it land? Our bytes: yes. The version we expected: no, send it
         * again. Anything else: someone else won. */
        char cur[SHA256_HEX_LEN + 1], now[S3_ETAG_MAX];
        struct sw_err e2 = {0};
        int c = current(b, key, cur, now, &e2);
        if (c == 0 && !strcmp(cur, sha)) {
            rc = 0;
            break;
        }
        if (c == 0 && !strcmp(cur, if_match) && i + 1 < RECHECK_MAX)
            continue;
        if (c < 0) {
            if (err)
                *err = e2;
            rc = c;
        } else {
            rc = sw_err_set(err, SW_ECONFLICT, "%s: %s was changed by someone else", b->shown, key);
        }
        break;
    }
out:
    if (rc == 0 && etag_out)
        memcpy(etag_out, sha, sizeof(sha));
    return rc;
}

static int s3b_batch_commit(struct store *st, struct sw_err *err)
{
    /* Every acknowledged PUT is already durable on S3. */
    (void)st;
    (void)err;
    return 0;
}

static void s3b_batch_abort(struct store *st)
{
    (void)st;
}

/* CopyObject onto itself with new metadata: the one way S3 has to make an
 * object's Last-Modified now. The SHA-256 is carried over from the object's
 * own metadata only when it is well formed. */
static int s3b_touch(struct store *st, const char *key, struct sw_err *err)
{
    struct s3b *b = B(st);
    const struct s3conf *c = s3_conf(b->cl);
    struct s3_resp resp;
    char sha[SHA256_HEX_LEN + 1];
    int rc;
    /* A body's key is its SHA-256 (what release creation touches, file by
     * file): one request. Any other key: HEAD first, for its metadata. */
    const char *base = strrchr(key, '/');
    if (str_starts_with(key, "blobs/sha256/") && base &&
        hex_lower_valid(base + 1, SHA256_HEX_LEN)) {
        memcpy(sha, base + 1, sizeof(sha));
    } else {
        struct s3_req h = {.method = "HEAD", .key = key, .body_fd = -1, .flags = S3_IDEMPOTENT};
        rc = s3_request(b->cl, &h, &resp, err);
        snprintf(sha, sizeof(sha), "%s", resp.sha256);
        s3_resp_free(&resp);
        if (rc)
            return rc;
    }
    struct buf src = BUF_INIT;
    buf_adds(&src, "x-amz-copy-source: /");
    sigv4_uri_encode(&src, c->bucket, strlen(c->bucket), 0);
    buf_adds(&src, "/");
    sigv4_uri_encode(&src, c->prefix, strlen(c->prefix), 1);
    sigv4_uri_encode(&src, key, strlen(key), 1);
    char meta[64 + SHA256_HEX_LEN], sse[64];
    snprintf(meta, sizeof(meta), "x-amz-meta-sha256: %s", sha);
    snprintf(sse, sizeof(sse), "x-amz-server-side-encryption: %s", c->sse ? c->sse : "AES256");
    struct s3_req r = {
        .method = "PUT", .key = key, .body_fd = -1, .max_body = 64 * 1024, .flags = S3_IDEMPOTENT};
    size_t n = 0;
    r.hdr[n++] = src.data;
    r.hdr[n++] = "x-amz-metadata-directive: REPLACE";
    r.hdr[n++] = sse;
    if (sha[0])
        r.hdr[n++] = meta;
    rc = s3_request(b->cl, &r, &resp, err);
    s3_resp_free(&resp);
    buf_free(&src);
    return rc;
}

static int s3b_del(struct store *st, const char *key, const char *if_match, struct sw_err *err)
{
    struct s3b *b = B(st);
    struct s3_resp resp;
    char s3[S3_ETAG_MAX], cond[S3_ETAG_MAX + 16];
    struct s3_req r = {.method = "DELETE", .key = key, .body_fd = -1, .flags = S3_IDEMPOTENT};
    int rc;
    if (if_match) {
        struct sw_err e = {0}; /* err may be NULL (deploy_unlock) */
        if ((rc = s3_etag_of(b, key, if_match, s3, &e))) {
            if (rc == SW_ECONFLICT && strstr(e.msg, "now absent"))
                return sw_err_set(err, SW_ENOTFOUND, "%s: %s not found", b->shown, key);
            if (err)
                *err = e;
            return rc;
        }
        snprintf(cond, sizeof(cond), "If-Match: \"%s\"", s3);
        r.hdr[0] = cond;
        r.flags = 0;
    } else {
        /* S3 answers 204 for a missing key too; the store says SW_ENOTFOUND. */
        struct s3_req h = {.method = "HEAD", .key = key, .body_fd = -1, .flags = S3_IDEMPOTENT};
        rc = s3_request(b->cl, &h, &resp, err);
        s3_resp_free(&resp);
        if (rc)
            return rc;
    }
    rc = s3_request(b->cl, &r, &resp, err);
    s3_resp_free(&resp);
    if (rc == S3_EMAYBE) { /* a conditional delete that may have landed */
        struct s3_req h = {.method = "HEAD", .key = key, .body_fd = -1, .flags = S3_IDEMPOTENT};
        rc = s3_request(b->cl, &h, &resp, err);
        s3_resp_free(&resp);
        rc = rc == SW_ENOTFOUND ? 0 : rc == 0 ? SW_ECONFLICT : rc;
    }
    return rc;
}

/* ---- listing ------------------------------------------------------------------------------ */

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A key as ListObjectsV2 sends it with encoding-type=url ('+' is a space).
 * -1 when malformed, too long or holding a NUL. */
static int url_decode(const char *in, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        int c = (unsigned char)*p;
        if (c == '%') {
            int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
            if (lo < 0)
                return -1;
            c = hi * 16 + lo;
            p += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == 0 || n + 1 >= outlen)
            return -1;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

/* One page of ListObjectsV2 under full (the whole key prefix, the store's
 * included) after token (NULL: the first page). *doc is the parsed
 * ListBucketResult and *next the token of the page after it, NULL on the last
 * page; the caller frees both. shown names the listing in errors. */
static int list_page(struct s3b *b, const char *full, const char *token, const char *shown,
                     struct s3xml_node **doc, char **next, struct sw_err *err)
{
    struct buf q = BUF_INIT;
    if (token)
        s3_query_add(&q, "continuation-token", token);
    /* URL-encoded keys: another writer's key with a control character must
     * not make the whole page unreadable (raw, XML 1.0 cannot hold it). */
    s3_query_add(&q, "encoding-type", "url");
    s3_query_add(&q, "list-type", "2");
    s3_query_add(&q, "prefix", full);
    struct s3_req r = {.method = "GET",
                       .query = q.data,
                       .body_fd = -1,
                       .max_body = LIST_PAGE_MAX,
                       .flags = S3_IDEMPOTENT};
    struct s3_resp resp;
    *doc = NULL;
    *next = NULL;
    int rc = s3_request(b->cl, &r, &resp, err);
    buf_free(&q);
    if (rc == 0 &&
        (rc = s3xml_parse(resp.body.data ? resp.body.data : "", resp.body.len, doc, err)) == 0 &&
        strcmp((*doc)->name, "ListBucketResult") != 0)
        rc = sw_err_set(err, SW_EIO, "%s: listing %s: not a ListBucketResult", b->shown, shown);
    else if (rc == SW_EINVAL)
        sw_err_prefix(err, "%s: listing %s", b->shown, shown);
    s3_resp_free(&resp);
    if (rc) {
        s3xml_free(*doc);
        *doc = NULL;
        return rc;
    }
    const char *trunc = s3xml_text(*doc, "IsTruncated");
    const char *tok = s3xml_text(*doc, "NextContinuationToken");
    if (trunc && !strcmp(trunc, "true") && tok && *tok)
        *next = xstrdup(tok);
    return 0;
}

/* The store key a listing entry names, decoded into out, or NULL for an entry
 * that is no object, lies outside the prefix or names no store key (another
 * writer's object is not ours to show). */
static const char *entry_key(const struct s3conf *c, const struct s3xml_node *k, char *out,
                             size_t outlen)
{
    size_t plen = strlen(c->prefix);
    const char *enc = strcmp(k->name, "Contents") ? NULL : s3xml_text(k, "Key");
    if (!enc || url_decode(enc, out, outlen) < 0 || strncmp(out, c->prefix, plen) != 0 ||
        store_key_check(out + plen, NULL) != 0)
        return NULL;
    return out + plen;
}

#define NAME_MAX_S3 (STORE_KEY_MAX + S3CONF_PREFIX_MAX + 2)

static int s3b_list(struct store *st, const char *prefix, struct store_list *out,
                    struct sw_err *err)
{
    struct s3b *b = B(st);
    const struct s3conf *c = s3_conf(b->cl);
    size_t cap = 0;
    char *token = NULL, *full = xasprintf("%s%s", c->prefix, prefix);
    int rc = 0;
    for (int page = 0;; page++) {
        struct s3xml_node *doc;
        char *next;
        if ((rc = list_page(b, full, token, prefix, &doc, &next, err)))
            break;
        for (size_t i = 0; i < doc->n_kids; i++) {
            char name[NAME_MAX_S3];
            const char *key = entry_key(c, doc->kids[i], name, sizeof(name));
            if (!key)
                continue;
            if (out->n == cap) {
                cap = cap ? cap * 2 : 64;
                out->keys = xrealloc(out->keys, cap * sizeof(char *));
            }
            out->keys[out->n++] = xstrdup(key);
        }
        s3xml_free(doc);
        free(token);
        token = next;
        if (!token)
            break;
        if (page > 100000) {
            rc = sw_err_set(err, SW_EIO, "%s: listing %s never ends", b->shown, prefix);
            break;
        }
    }
    free(token);
    free(full);
    return rc;
}

/* Heads many keys (a deploy checks every body of its release). Few keys:
 * parallel HEADs. Many: a listing of their common directory answers every key
 * up to where it got, in key order, a thousand keys a request; it stops after
 * a budget of pages (a bucket may hold far more than one release needs) and
 * the keys beyond the last one listed are headed in parallel. */
#define HEAD_MANY_LIST 64

static const char *const *sort_keys;

static int cmp_idx(const void *a, const void *b)
{
    return strcmp(sort_keys[*(const size_t *)a], sort_keys[*(const size_t *)b]);
}

static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;

static int s3b_head_many(struct store *st, const char *const *keys, size_t n,
                         struct store_stat *stats, int *rcs, struct sw_err *err)
{
    if (n < HEAD_MANY_LIST)
        return store_head_threads(st, keys, n, stats, rcs, err);
    struct s3b *b = B(st);
    const struct s3conf *c = s3_conf(b->cl);
    size_t *idx = xmalloc(n * sizeof(*idx)), j = 0;
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
        memset(&stats[i], 0, sizeof(stats[i]));
    }
    pthread_mutex_lock(&sort_mu); /* qsort has no context argument in C11 */
    sort_keys = keys;
    qsort(idx, n, sizeof(*idx), cmp_idx);
    pthread_mutex_unlock(&sort_mu);
    /* The common directory of the first and last key holds them all. */
    const char *lo = keys[idx[0]], *hi = keys[idx[n - 1]];
    size_t common = 0, dir = 0;
    while (lo[common] && lo[common] == hi[common])
        if (lo[common++] == '/')
            dir = common;
    char *full = xasprintf("%s%.*s", c->prefix, (int)dir, lo);
    char *token = NULL;
    int rc = 0, pages = 0, budget = 8 + (int)(n / 250), done = 0;
    while (!rc && !done && pages < budget) {
        struct s3xml_node *doc;
        char *next;
        if ((rc = list_page(b, full, token, full, &doc, &next, err)))
            break;
        pages++;
        for (size_t i = 0; i < doc->n_kids && j < n; i++) {
            const struct s3xml_node *k = doc->kids[i];
            char name[NAME_MAX_S3];
            const char *key = entry_key(c, k, name, sizeof(name));
            const char *size = key ? s3xml_text(k, "Size") : NULL;
            const char *when = key ? s3xml_text(k, "LastModified") : NULL;
            if (!size)
                continue;
            /* Keys the listing has passed without naming are missing. */
            while (j < n && strcmp(keys[idx[j]], key) < 0)
                rcs[idx[j++]] = SW_ENOTFOUND;
            while (j < n && !strcmp(keys[idx[j]], key)) {
                char *end;
                unsigned long long v = strtoull(size, &end, 10);
                struct store_stat *sb = &stats[idx[j]];
                sb->size = *end || size[0] == '-' ? 0 : v;
                if (!when || time_parse_iso(when, &sb->mtime_ms) != 0)
                    sb->mtime_ms = 0;
                rcs[idx[j++]] = 0;
            }
        }
        s3xml_free(doc);
        free(token);
        token = next;
        if (!token || j == n)
            done = 1;
    }
    if (!rc && done) {
        while (j < n)
            rcs[idx[j++]] = SW_ENOTFOUND;
    } else if (!rc) { /* out of budget: head the rest */
        const char **rest = xmalloc((n - j) * sizeof(*rest));
        struct store_stat *rs = xcalloc(n - j, sizeof(*rs));
        int *rr = xcalloc(n - j, sizeof(*rr));
        for (size_t i = j; i < n; i++)
            rest[i - j] = keys[idx[i]];
        rc = store_head_threads(st, rest, n - j, rs, rr, err);
        for (size_t i = j; i < n; i++) {
            stats[idx[i]] = rs[i - j];
            rcs[idx[i]] = rr[i - j];
        }
        free(rest);
        free(rs);
        free(rr);
    }
    free(token);
    free(full);
    free(idx);
    return rc;
}

/* Aborts the multipart uploads under the prefix begun before the cutoff. */
static int s3b_cleanup(struct store *st, int64_t older_than_ms, size_t *removed, struct sw_err *err)
{
    struct s3b *b = B(st);
    const struct s3conf *c = s3_conf(b->cl);
    struct buf q = BUF_INIT;
    s3_query_add(&q, "prefix", c->prefix);
    buf_adds(&q, "&uploads=");
    struct s3_req r = {.method = "GET",
                       .query = q.data,
                       .body_fd = -1,
                       .max_body = LIST_PAGE_MAX,
                       .flags = S3_IDEMPOTENT};
    struct s3_resp resp;
    struct s3xml_node *doc = NULL;
    int64_t cutoff = time_now_ms() - older_than_ms;
    int rc = s3_request(b->cl, &r, &resp, err);
    buf_free(&q);
    if (rc == 0)
        rc = s3xml_parse(resp.body.data ? resp.body.data : "", resp.body.len, &doc, err);
    s3_resp_free(&resp);
    for (size_t i = 0; rc == 0 && i < doc->n_kids; i++) {
        const struct s3xml_node *u = doc->kids[i];
        const char *key = strcmp(u->name, "Upload") ? NULL : s3xml_text(u, "Key");
        const char *id = key ? s3xml_text(u, "UploadId") : NULL;
        const char *when = key ? s3xml_text(u, "Initiated") : NULL;
        int64_t t;
        if (!id || !when || time_parse_iso(when, &t) != 0 || t > cutoff ||
            strncmp(key, c->prefix, strlen(c->prefix)) != 0)
            continue;
        struct buf aq = BUF_INIT;
        s3_query_add(&aq, "uploadId", id);
        struct s3_req a = {.method = "DELETE",
                           .key = key,
                           .query = aq.data,
                           .body_fd = -1,
                           .max_body = 4096,
                           .flags = S3_IDEMPOTENT | S3_RAW_KEY};
        rc = s3_request(b->cl, &a, &resp, err);
        s3_resp_free(&resp);
        buf_free(&aq);
        if (rc == SW_ENOTFOUND) /* someone else aborted or completed it */
            rc = 0;
        else if (rc == 0)
            (*removed)++;
    }
    s3xml_free(doc);
    return rc;
}

static void s3b_free(struct store *st)
{
    struct s3b *b = B(st);
    if (!b)
        return;
    if (b->probing)
        pthread_join(b->probe_th, NULL);
    for (size_t i = 0; i < ETAG_CACHE; i++)
        free(b->cache[i].key);
    pthread_mutex_destroy(&b->mu);
    pthread_mutex_destroy(&b->probe_mu);
    s3_free(b->cl);
    free(b);
}

static void s3b_set_fail_fast(struct store *st, int on)
{
    s3_set_fail_fast(B(st)->cl, on);
}

static int s3b_check(struct store *st, struct sw_err *err);

static const struct store_ops s3_ops = {
    .scheme = "s3",
    .get = s3b_get,
    .get_if_changed = s3b_get_if_changed,
    .get_stream = s3b_get_stream,
    .put = s3b_put,
    .put_file = s3b_put_file,
    .put_if_match = s3b_put_if_match,
    .etag_token = s3b_etag_token,
    .etag_learn = s3b_etag_learn,
    .batch_commit = s3b_batch_commit,
    .batch_abort = s3b_batch_abort,
    .head = s3b_head,
    .head_many = s3b_head_many,
    .del = s3b_del,
    .list = s3b_list,
    .cleanup = s3b_cleanup,
    .touch = s3b_touch,
    .set_fail_fast = s3b_set_fail_fast,
    .prepare_cas = s3b_prepare_cas,
    .check = s3b_check,
    .free = s3b_free,
    .remote = 1,
};

/* One request that proves the bucket is there and the credentials work, so
 * a mistake is one clear line, not a failure deep in some operation. */
static int s3b_check(struct store *st, struct sw_err *err)
{
    struct s3b *b = st->impl;
    struct s3_req r = {.method = "HEAD", .body_fd = -1, .flags = S3_IDEMPOTENT};
    struct s3_resp resp;
    int rc = s3_request(b->cl, &r, &resp, err);
    if (rc == SW_ENOTFOUND)
        rc = sw_err_set(err, SW_ENOTFOUND,
                        "no store at %s: the bucket does not exist ('slipway infra apply' "
                        "creates it)",
                        b->shown);
    else if (rc == SW_EACCES) {
        /* A HEAD's answer has no body: ask again in a way that gets S3's
         * error document, to say which (SignatureDoesNotMatch, ...). */
        struct s3_req g = {.method = "GET",
                           .query = "location=",
                           .body_fd = -1,
                           .max_body = 4096,
                           .flags = S3_IDEMPOTENT};
        struct s3_resp r2;
        if (s3_request(b->cl, &g, &r2, err) == 0)
            sw_err_set(err, rc,
                       "%s: access to the bucket denied (403); check the credentials "
                       "(from %s) and the bucket's policy",
                       b->shown, s3_conf(b->cl)->cred_source ? s3_conf(b->cl)->cred_source : "?");
        s3_resp_free(&r2);
    }
    s3_resp_free(&resp);
    return rc;
}

int store_s3_open(const char *url, int create, int check_later, struct store *st,
                  struct sw_err *err)
{
    (void)create; /* a bucket is made by 'slipway infra apply', never by accident */
    struct s3b *b = xcalloc(1, sizeof(*b));
    int rc = s3_new(url, &b->cl, err);
    if (rc) {
        free(b);
        return rc;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_init(&b->probe_mu, NULL);
    b->shown = s3_conf_shown(b->cl);
    b->st = st;
    st->ops = &s3_ops;
    st->impl = b;
    if (!check_later && (rc = s3b_check(st, err))) {
        s3b_free(st);
        st->impl = NULL;
        return rc;
    }
    return 0;
}
