/*
 * Multipart uploads for the s3 backend (see s3multi.h).
 *
 * The one idea: an upload is invisible until it is completed, and completing
 * is the only step whose fate can be unknown. Parts are plain idempotent
 * requests, sent again as often as s3_request's retries allow; a Complete
 * that may have landed is sent again, and an answer saying the upload is gone
 * or the key now exists is settled by looking at the key (our SHA-256 and
 * size there: it landed). Everything else that fails aborts the upload, so a
 * failure leaves nothing behind but, at worst, an upload gc aborts later.
 */
#include "store/s3multi.h"
#include "store/backend.h"
#include "store/s3xml.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* A Complete whose fate is unknown, or that S3 said to try again, is sent at
 * most this many times. */
#define COMPLETE_TRIES 5
#define ANSWER_MAX (64 * 1024)

uint64_t s3multi_part_size(uint64_t size)
{
    const uint64_t mib = 1ULL << 20;
    if (size > S3MULTI_OBJECT_MAX)
        return 0;
    uint64_t p = (size + S3MULTI_PARTS_MAX - 1) / S3MULTI_PARTS_MAX;
    p = (p + mib - 1) / mib * mib;
    return p < S3MULTI_PART_MIN ? S3MULTI_PART_MIN : p;
}

/* ---- reading the file ---------------------------------------------------------------------- */

void s3multi_file_free(struct s3multi_file *f)
{
    free(f->part_sha);
    f->part_sha = NULL;
    f->nparts = 0;
}

int s3multi_hash(int fd, uint64_t size_hint, struct s3multi_file *f, struct sw_err *err)
{
    memset(f, 0, sizeof(*f));
    f->fd = fd;
    f->part = s3multi_part_size(size_hint);
    if (!f->part)
        return sw_err_set(err, SW_EINVAL, "larger than 5 TiB, S3's largest object");
    size_t cap = (size_t)((size_hint + f->part - 1) / f->part);
    if (cap < 1)
        cap = 1;
    if (cap > S3MULTI_PARTS_MAX)
        cap = S3MULTI_PARTS_MAX;
    f->part_sha = xcalloc(cap, sizeof(*f->part_sha));
    enum { CHUNK = 256 * 1024 };
    char *buf = xmalloc(CHUNK);
    struct sha256_ctx *whole = sha256_new(), *piece = NULL;
    char ignored[SHA256_HEX_LEN + 1];
    uint64_t off = 0;
    int rc = 0;
    for (;;) {
        /* A read never straddles two parts, so each part's hash ends where
         * the part does. */
        uint64_t in_part = off % f->part, want = f->part - in_part;
        if (want > CHUNK)
            want = CHUNK;
        ssize_t n = pread(fd, buf, (size_t)want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = sw_err_sys(err, errno, "reading");
            break;
        }
        if (n == 0)
            break;
        if (in_part == 0) {
            if (f->nparts == S3MULTI_PARTS_MAX || off + (uint64_t)n > S3MULTI_OBJECT_MAX) {
                rc = sw_err_set(err, SW_ECHANGED, "grew while it was being read; try again");
                break;
            }
            if (f->nparts == cap) {
                cap = cap * 2 > S3MULTI_PARTS_MAX ? S3MULTI_PARTS_MAX : cap * 2;
                f->part_sha = xrealloc(f->part_sha, cap * sizeof(*f->part_sha));
            }
            piece = sha256_new();
        }
        sha256_update(whole, buf, (size_t)n);
        sha256_update(piece, buf, (size_t)n);
        off += (uint64_t)n;
        if (off % f->part == 0) {
            sha256_final_hex(piece, f->part_sha[f->nparts++]);
            piece = NULL;
        }
    }
    if (piece) {
        if (rc)
            sha256_final_hex(piece, ignored);
        else
            sha256_final_hex(piece, f->part_sha[f->nparts++]);
    }
    sha256_final_hex(whole, f->sha);
    free(buf);
    f->size = off;
    if (rc)
        s3multi_file_free(f);
    return rc;
}

/* ---- the documents ------------------------------------------------------------------------- */

void s3multi_complete_doc(const char *const *etags, size_t n, struct buf *out)
{
    struct buf quoted = BUF_INIT;
    buf_adds(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload "
                  "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (size_t i = 0; i < n; i++) {
        buf_reset(&quoted);
        buf_addf(&quoted, "\"%s\"", etags[i]);
        buf_addf(out, "<Part><PartNumber>%zu</PartNumber><ETag>", i + 1);
        s3xml_escape(out, quoted.data);
        buf_adds(out, "</ETag></Part>");
    }
    buf_adds(out, "</CompleteMultipartUpload>\n");
    buf_free(&quoted);
}

static int id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > S3MULTI_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (id[i] < 0x21 || id[i] > 0x7e)
            return 0;
    return 1;
}

int s3multi_upload_id(const char *body, size_t len, char **id, struct sw_err *err)
{
    struct s3xml_node *doc = NULL;
    struct sw_err e = {0};
    *id = NULL;
    if (s3xml_parse(body ? body : "", len, &doc, &e) != 0)
        return sw_err_set(err, SW_EIO, "not an InitiateMultipartUploadResult: %s", e.msg);
    int rc = 0;
    const char *v = s3xml_text(doc, "UploadId");
    if (strcmp(doc->name, "InitiateMultipartUploadResult") != 0 &&
        strcmp(doc->name, "InitiateMultipartUploadResponse") != 0)
        rc = sw_err_set(err, SW_EIO, "not an InitiateMultipartUploadResult");
    else if (!v || !id_valid(v))
        rc = sw_err_set(err, SW_EIO,
                        "the upload id is missing, longer than %d bytes or not printable",
                        S3MULTI_ID_MAX);
    else
        *id = xstrdup(v);
    s3xml_free(doc);
    return rc;
}

int s3multi_complete_result(const char *body, size_t len, char etag[S3_ETAG_MAX], char code[64],
                            struct sw_err *err)
{
    etag[0] = code[0] = '\0';
    /* S3 sends whitespace while it works, to keep the connection open. */
    while (len && body && (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n'))
        body++, len--;
    if (!len)
        return sw_err_set(err, SW_EIO, "an empty answer to CompleteMultipartUpload");
    struct s3xml_node *doc = NULL;
    struct sw_err e = {0};
    if (s3xml_parse(body, len, &doc, &e) != 0)
        return sw_err_set(err, SW_EIO, "CompleteMultipartUpload answered: %s", e.msg);
    int rc;
    /* AWS's root is ...Result; moto's ...Response (botocore reads either). */
    if (!strcmp(doc->name, "CompleteMultipartUploadResult") ||
        !strcmp(doc->name, "CompleteMultipartUploadResponse")) {
        const char *t = s3xml_text(doc, "ETag");
        size_t n = t ? strlen(t) : 0;
        if (n >= 2 && t[0] == '"' && t[n - 1] == '"')
            t++, n -= 2;
        if (t && n < S3_ETAG_MAX) {
            memcpy(etag, t, n);
            etag[n] = '\0';
        }
        rc = 0;
    } else if (!strcmp(doc->name, "Error")) {
        const char *c = s3xml_text(doc, "Code"), *m = s3xml_text(doc, "Message");
        struct buf shown = BUF_INIT, msg = BUF_INIT;
        char cut[201];
        if (c && strlen(c) < 64 &&
            strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789") == strlen(c))
            snprintf(code, 64, "%s", c);
        buf_add_escaped(&shown, code[0] ? code : "(no code)");
        if (m && *m) {
            snprintf(cut, sizeof(cut), "%s", m);
            buf_add_escaped(&msg, cut);
        }
        rc = !strcmp(code, "InternalError") || !strcmp(code, "SlowDown") ||
                     !strcmp(code, "ServiceUnavailable")
                 ? S3MULTI_ERETRY
             : !strcmp(code, "PreconditionFailed") ? SW_ECONFLICT
                                                   : SW_EIO;
        sw_err_set(err, rc == S3MULTI_ERETRY ? SW_EIO : rc,
                   "CompleteMultipartUpload answered 200 with an error: %s%s%s", shown.data,
                   msg.len ? ": " : "", msg.len ? msg.data : "");
        buf_free(&shown);
        buf_free(&msg);
    } else {
        rc = sw_err_set(err, SW_EIO,
                        "CompleteMultipartUpload answered neither a result nor an "
                        "error");
    }
    s3xml_free(doc);
    return rc;
}

/* ---- the upload ---------------------------------------------------------------------------- */

struct upload {
    struct s3 *cl;
    struct store *st;
    const char *key;
    const char *shown;
    const struct s3multi_file *f;
    const char *id;
    char (*etags)[S3_ETAG_MAX];
    pthread_mutex_t mu; /* guards next, failed, rc, err */
    size_t next;
    int failed;
    int rc;
    struct sw_err err;
};

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static uint64_t random_u64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
        v = (uint64_t)time_mono_ms() * 6364136223846793005ULL;
    return v;
}

static void id_query(struct buf *q, const char *id)
{
    s3_query_add(q, "uploadId", id);
}

/* UploadPart of part i (0-based): its bytes straight from the file, its own
 * SHA-256 signed, retried by s3_request (a part sent twice is the same part). */
static int part_send(struct upload *u, size_t i, struct sw_err *err)
{
    const struct s3multi_file *f = u->f;
    uint64_t off = (uint64_t)i * f->part;
    uint64_t len = f->size - off < f->part ? f->size - off : f->part;
    char num[24];
    snprintf(num, sizeof(num), "%zu", i + 1);
    struct buf q = BUF_INIT;
    s3_query_add(&q, "partNumber", num);
    s3_query_add(&q, "uploadId", u->id);
    struct s3_req r = {.method = "PUT",
                       .key = u->key,
                       .query = q.data,
                       .body_fd = f->fd,
                       .body_off = off,
                       .len = (size_t)len,
                       .body_sha256 = f->part_sha[i],
                       .max_body = 4096,
                       .flags = S3_IDEMPOTENT};
    struct s3_resp resp;
    store_xfer_begin(u->st);
    int rc = s3_request(u->cl, &r, &resp, err);
    store_xfer_end(u->st);
    if (rc == 0 && !resp.etag[0])
        rc = sw_err_set(err, SW_EIO, "%s: PUT %s part %zu: the answer has no ETag", u->shown,
                        u->key, i + 1);
    if (rc == 0) {
        memcpy(u->etags[i], resp.etag, S3_ETAG_MAX);
        store_count_sent(u->st, len);
    } else {
        sw_err_prefix(err, "part %zu of %zu", i + 1, f->nparts);
    }
    s3_resp_free(&resp);
    buf_free(&q);
    return rc;
}

static void *part_worker(void *arg)
{
    struct upload *u = arg;
    for (;;) {
        pthread_mutex_lock(&u->mu);
        if (u->failed || u->next >= u->f->nparts) {
            pthread_mutex_unlock(&u->mu);
            break;
        }
        size_t i = u->next++;
        pthread_mutex_unlock(&u->mu);
        struct sw_err e = {0};
        int rc = part_send(u, i, &e);
        if (rc) {
            pthread_mutex_lock(&u->mu);
            if (!u->failed) {
                u->failed = 1;
                u->rc = rc;
                u->err = e;
            }
            pthread_mutex_unlock(&u->mu);
            break;
        }
    }
    return NULL;
}

/* Sends every part on up to store_concurrency threads, this one included. */
static int parts_send(struct upload *u, struct sw_err *err)
{
    size_t want = (size_t)store_concurrency(u->st);
    if (want > u->f->nparts)
        want = u->f->nparts;
    pthread_t *tids = xcalloc(want ? want : 1, sizeof(*tids));
    size_t started = 1; /* worker 0 is this thread */
    for (; started < want; started++)
        if (pthread_create(&tids[started], NULL, part_worker, u) != 0)
            break; /* fewer threads: slower, not wrong */
    part_worker(u);
    for (size_t i = 1; i < started; i++)
        pthread_join(tids[i], NULL);
    free(tids);
    if (u->failed)
        *err = u->err;
    return u->failed ? u->rc : 0;
}

static int create(struct upload *u, const char *const *hdr, char **id, struct sw_err *err)
{
    /* Idempotent in effect: a Create sent twice leaves one upload nobody
     * completes, invisible, which gc aborts. */
    struct s3_req r = {.method = "POST",
                       .key = u->key,
                       .query = "uploads=",
                       .body_fd = -1,
                       .max_body = ANSWER_MAX,
                       .flags = S3_IDEMPOTENT};
    for (size_t i = 0; hdr && hdr[i] && i < S3_HDR_MAX - 1; i++)
        r.hdr[i] = hdr[i];
    struct s3_resp resp;
    int rc = s3_request(u->cl, &r, &resp, err);
    if (rc == 0 && (rc = s3multi_upload_id(resp.body.data, resp.body.len, id, err)))
        sw_err_prefix(err, "%s: POST %s?uploads", u->shown, u->key);
    s3_resp_free(&resp);
    return rc;
}

static void abort_upload(struct upload *u)
{
    struct buf q = BUF_INIT;
    id_query(&q, u->id);
    struct s3_req r = {.method = "DELETE",
                       .key = u->key,
                       .query = q.data,
                       .body_fd = -1,
                       .max_body = 4096,
                       .flags = S3_IDEMPOTENT};
    struct s3_resp resp;
    struct sw_err ignored;
    /* Best effort: one that fails stays an incomplete upload, which gc aborts. */
    (void)s3_request(u->cl, &r, &resp, &ignored);
    s3_resp_free(&resp);
    buf_free(&q);
}

/* After a Complete that may have landed: is our object there? 0 (s3etag
 * set) when the key holds an object of our size whose SHA-256 metadata is
 * ours; SW_ECONFLICT when it holds another; SW_EIO when there is none. */
static int landed(struct upload *u, char s3etag[S3_ETAG_MAX], struct sw_err *err)
{
    struct s3_req h = {.method = "HEAD", .key = u->key, .body_fd = -1, .flags = S3_IDEMPOTENT};
    struct s3_resp resp;
    int rc = s3_request(u->cl, &h, &resp, err);
    if (rc == 0 && !strcmp(resp.sha256, u->f->sha) && resp.content_length >= 0 &&
        (uint64_t)resp.content_length == u->f->size)
        memcpy(s3etag, resp.etag, S3_ETAG_MAX);
    else if (rc == 0)
        rc = sw_err_set(err, SW_ECONFLICT, "%s: %s already exists", u->shown, u->key);
    else if (rc == SW_ENOTFOUND)
        rc = sw_err_set(err, SW_EIO,
                        "%s: %s: the multipart upload vanished before it was completed "
                        "(aborted by someone else?)",
                        u->shown, u->key);
    s3_resp_free(&resp);
    return rc;
}

static int complete(struct upload *u, int if_none_match, char s3etag[S3_ETAG_MAX],
                    struct sw_err *err)
{
    const struct s3multi_file *f = u->f;
    const char **etags = xcalloc(f->nparts, sizeof(*etags));
    for (size_t i = 0; i < f->nparts; i++)
        etags[i] = u->etags[i];
    struct buf doc = BUF_INIT, q = BUF_INIT;
    s3multi_complete_doc(etags, f->nparts, &doc);
    free(etags);
    id_query(&q, u->id);
    struct s3_req r = {.method = "POST",
                       .key = u->key,
                       .query = q.data,
                       .data = doc.data,
                       .len = doc.len,
                       .body_fd = -1,
                       .max_body = ANSWER_MAX,
                       .flags = 0};
    r.hdr[0] = "Content-Type: application/xml";
    if (if_none_match)
        r.hdr[1] = "If-None-Match: *";
    int rc = SW_EIO, maybe = 0;
    for (int attempt = 0; attempt < COMPLETE_TRIES; attempt++) {
        if (attempt)
            sleep_ms(s3_backoff_ms(attempt, random_u64()));
        struct s3_resp resp;
        char code[64];
        rc = s3_request(u->cl, &r, &resp, err);
        if (rc == 0) {
            rc = s3multi_complete_result(resp.body.data, resp.body.len, s3etag, code, err);
            if (rc && rc != S3MULTI_ERETRY)
                sw_err_prefix(err, "%s: POST %s?uploadId", u->shown, u->key);
        } else if (rc == SW_ECONFLICT && !strcmp(resp.code, "ConditionalRequestConflict")) {
            rc = S3MULTI_ERETRY; /* a concurrent write to the key: S3 says try again */
        }
        s3_resp_free(&resp);
        if (rc == S3_EMAYBE) {
            maybe = 1;
            continue;
        }
        if (rc == S3MULTI_ERETRY) {
            rc = SW_EIO; /* if no try is left */
            continue;
        }
        /* An earlier try may have completed it: the upload is then gone
         * (404 NoSuchUpload) or the key exists (412, with If-None-Match). */
        if (maybe && (rc == SW_ENOTFOUND || rc == SW_ECONFLICT))
            rc = landed(u, s3etag, err);
        break;
    }
    if (rc == S3_EMAYBE) /* every try's fate unknown: look */
        rc = landed(u, s3etag, err);
    buf_free(&doc);
    buf_free(&q);
    return rc;
}

int s3multi_put(struct s3 *cl, struct store *st, const char *key, const struct s3multi_file *f,
                const char *const *hdr, int if_none_match, char s3etag[S3_ETAG_MAX],
                struct sw_err *err)
{
    struct upload u = {.cl = cl, .st = st, .key = key, .shown = s3_conf_shown(cl), .f = f};
    char *id = NULL;
    s3etag[0] = '\0';
    if (!f->nparts)
        return sw_err_set(err, SW_EINVAL, "%s: %s: no parts to upload", u.shown, key);
    int rc = create(&u, hdr, &id, err);
    if (rc)
        return rc;
    u.id = id;
    u.etags = xcalloc(f->nparts, sizeof(*u.etags));
    pthread_mutex_init(&u.mu, NULL);
    rc = parts_send(&u, err);
    if (!rc)
        rc = complete(&u, if_none_match, s3etag, err);
    if (rc)
        abort_upload(&u);
    pthread_mutex_destroy(&u.mu);
    free(u.etags);
    free(id);
    return rc;
}
