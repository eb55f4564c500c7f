/*
 * Private to the store module (its one public header is store.h): the S3
 * client under the s3 backend and `infra`. One request per call, signed with
 * SigV4, sent with libcurl, retried where that is safe, and its failure turned
 * into one line that names the request and S3's own error code.
 *
 * Connections: each call borrows an easy handle from a pool and every handle
 * shares one connection cache (a curl share object), so sequential calls reuse
 * a kept-alive connection and parallel calls from several threads (release
 * creation uploads from a thread per core) each get their own.
 *
 * Thread safety: an s3 client may be used from several threads at once.
 */
#ifndef SW_STORE_S3_H
#define SW_STORE_S3_H

#include "store/s3conf.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

struct s3;

/* Parses the store URL (s3conf_parse with the process's environment) and
 * sets up the client; asks the service nothing. Caller frees with s3_free. */
int s3_new(const char *url, struct s3 **out, struct sw_err *err);
void s3_free(struct s3 *s);
/* Fail fast (store_set_fail_fast): no attempt started 2 s after the first, a
 * connection within 1 s, a stall of 2 s; off: 30 s, 5 s and 10 s (or
 * SLIPWAY_S3_STALL_SECONDS). Not thread-safe: before requests are sent. */
void s3_set_fail_fast(struct s3 *s, int on);
/* Borrowed; valid until s3_free. */
const struct s3conf *s3_conf(const struct s3 *s);
/* The store URL without secrets, for messages. Borrowed. */
const char *s3_conf_shown(const struct s3 *s);

/* A request may have reached the service and been applied, and repeating it
 * blindly is not safe (a conditional write after a reset or a 500): the
 * caller must look at what is there now before it tries again. */
#define S3_EMAYBE (-102)

enum {
    /* Repeating the request has the same effect as sending it once (reads,
     * unconditional puts and deletes): retried on every transient fault.
     * Without it only faults that prove the request was not applied (no
     * connection, 503) are retried, and the others return S3_EMAYBE. */
    S3_IDEMPOTENT = 1 << 0,
    /* The key is the whole object key, not under the store's prefix. */
    S3_RAW_KEY = 1 << 1,
};

#define S3_HDR_MAX 8
#define S3_ETAG_MAX 128

struct s3_req {
    const char *method;
    const char *key;   /* unencoded object key under the prefix; NULL: the bucket itself */
    const char *query; /* as sent, already encoded; NULL: none */
    /* Extra "Name: value" lines, all signed; NULL-terminated or full. */
    const char *hdr[S3_HDR_MAX];
    /* The body: data/len in memory, or len bytes of the file body_fd from
     * offset body_off (>= 0; read with pread, so a retry reads it again). */
    const void *data;
    size_t len;
    int body_fd;       /* -1 for none: set it, 0 is a descriptor */
    uint64_t body_off; /* where the body starts in body_fd (a part of a multipart upload) */
    /* Lowercase hex SHA-256 of the body; NULL: computed here (memory bodies). */
    const char *body_sha256;
    /* Where a 2xx body goes; NULL: into resp->body, at most max_body bytes. */
    store_sink_fn sink;
    void *sink_arg;
    size_t max_body;
    unsigned flags;
};

struct s3_resp {
    long status;
    struct buf body;        /* the buffered body: a 2xx without a sink, or S3's error document */
    char etag[S3_ETAG_MAX]; /* the ETag header, without quotes; "" when none */
    char sha256[SHA256_HEX_LEN + 1]; /* x-amz-meta-sha256 when it is 64 lowercase hex digits */
    int64_t last_modified_ms;        /* 0 when none */
    int64_t content_length;          /* -1 when none */
    char code[64];                   /* S3's error code (NoSuchKey, ...), "" on success */
    int attempts;
};

/* Sends r. 0 when the answer is 2xx (or 304); otherwise a negative code with
 * resp->status and resp->code set and err one line:
 *   SW_ENOTFOUND  404 (NoSuchKey, or no body: a HEAD)
 *   SW_ECONFLICT  412 PreconditionFailed, 409 ConditionalRequestConflict
 *   SW_EACCES     403 (AccessDenied, SignatureDoesNotMatch,
 *                 InvalidAccessKeyId, RequestTimeTooSkewed with the skew)
 *   SW_EIO        5xx and transport failures once retries are spent, and
 *                 every other status
 *   S3_EMAYBE     see above
 *   the sink's own code when the sink stopped the read.
 * resp is zeroed here and freed with s3_resp_free, on success and failure. */
int s3_request(struct s3 *s, const struct s3_req *r, struct s3_resp *resp, struct sw_err *err);
void s3_resp_free(struct s3_resp *resp);

/* The retry schedule: exponential backoff with full jitter (a uniformly random
 * wait between 0 and min(cap, base * 2^attempt)), for the tests. */
int64_t s3_backoff_ms(int attempt, uint64_t rnd);
/* Appends the wire query value: s percent-encoded ('/' too, as SigV4 wants). */
void s3_query_add(struct buf *b, const char *name, const char *value);

#endif
