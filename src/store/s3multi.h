/*
 * Private to the store module (its one public header is store.h): multipart
 * uploads, how the s3 backend stores a file larger than one part.
 *
 * A file is read once to hash it whole (the store's ETag, kept as the
 * object's x-amz-meta-sha256) and part by part (each part's payload hash is
 * signed, so a file that changes before its part is sent is refused by S3
 * rather than stored under the wrong name). The upload is then begun
 * (CreateMultipartUpload), its parts sent in parallel on threads, each part a
 * request of its own retried as any idempotent request, and completed with
 * the list of part ETags (CompleteMultipartUpload, If-None-Match: * for a
 * create-only key). Any failure aborts the upload (AbortMultipartUpload); an
 * upload left behind by a process killed in the middle is aborted by
 * store_cleanup (slipway gc) once older than its grace period.
 */
#ifndef SW_STORE_S3MULTI_H
#define SW_STORE_S3MULTI_H

#include "store/s3.h"

#include <stddef.h>
#include <stdint.h>

#define S3MULTI_THRESHOLD (16ULL << 20) /* files larger than this go in parts */
#define S3MULTI_PART_MIN (16ULL << 20)  /* S3's own minimum is 5 MiB, but for the last */
#define S3MULTI_PARTS_MAX 10000         /* S3's maximum number of parts */
#define S3MULTI_OBJECT_MAX (5ULL << 40) /* S3's largest object: 5 TiB */
#define S3MULTI_ID_MAX 1024             /* the longest upload id accepted */

/* The part size for an object of size bytes: S3MULTI_PART_MIN, or the
 * smallest whole number of MiB above it with which S3MULTI_PARTS_MAX parts
 * cover size (525 MiB for 5 TiB). 0 when size is over S3MULTI_OBJECT_MAX. */
uint64_t s3multi_part_size(uint64_t size);

/* A file read for a multipart upload: its size, whole SHA-256, the part size
 * and each part's SHA-256. Freed with s3multi_file_free. */
struct s3multi_file {
    int fd; /* borrowed */
    uint64_t size;
    char sha[SHA256_HEX_LEN + 1];
    uint64_t part;
    size_t nparts;
    char (*part_sha)[SHA256_HEX_LEN + 1];
};

/* Reads fd (from offset 0 to its end) once, hashing it whole and in parts of
 * s3multi_part_size(size_hint) bytes. SW_ECHANGED when it grew past what
 * S3MULTI_PARTS_MAX such parts hold or past S3MULTI_OBJECT_MAX; the read's
 * errno otherwise. */
int s3multi_hash(int fd, uint64_t size_hint, struct s3multi_file *f, struct sw_err *err);
void s3multi_file_free(struct s3multi_file *f);

/* Appends the CompleteMultipartUpload document for parts 1..n whose ETags
 * (as UploadPart answered them, without quotes) are etags[0..n), each
 * escaped with s3xml_escape. */
void s3multi_complete_doc(const char *const *etags, size_t n, struct buf *out);

/* The UploadId of an InitiateMultipartUploadResult (or ...Response) document: *id (caller
 * frees). SW_EIO when the body is not one or its id is empty, longer than
 * S3MULTI_ID_MAX or not printable ASCII without spaces. */
int s3multi_upload_id(const char *body, size_t len, char **id, struct sw_err *err);

/* What a service says a 200 answer to CompleteMultipartUpload is worth (S3
 * sends the 200 before it has finished, and an error document in its body
 * when it then fails): 0 for a CompleteMultipartUploadResult (or
 * ...Response, as moto names it), its ETag
 * (quotes removed; "" when none or too long) copied into etag; for an <Error>
 * document, its code copied into code (at least 64 bytes; "" when none) and
 * S3MULTI_ERETRY when the code says to try again (InternalError, SlowDown,
 * ServiceUnavailable), SW_ECONFLICT for PreconditionFailed, SW_EIO for the
 * rest and for anything else. Leading whitespace (S3 sends some to keep the
 * connection alive while it works) is skipped. err: one line. */
#define S3MULTI_ERETRY (-110)
int s3multi_complete_result(const char *body, size_t len, char etag[S3_ETAG_MAX], char code[64],
                            struct sw_err *err);

/* Uploads f to key (under the store's prefix) in parts. hdr: the headers
 * CreateMultipartUpload carries (metadata, encryption, content type;
 * NULL-terminated, at most S3_HDR_MAX - 1); if_none_match: send
 * If-None-Match: * with CompleteMultipartUpload, for a create-only key. Parts
 * go on up to store_concurrency(st) threads, each holding an upload slot
 * (store_xfer_begin) while it sends, and each counted in store_bytes_sent
 * once acknowledged. 0: the object is stored, s3etag its S3 ETag;
 * SW_ECONFLICT: the key existed (if_none_match); else the first failure. On
 * any failure the upload is aborted (best effort). Thread-safe. */
int s3multi_put(struct s3 *cl, struct store *st, const char *key, const struct s3multi_file *f,
                const char *const *hdr, int if_none_match, char s3etag[S3_ETAG_MAX],
                struct sw_err *err);

#endif
