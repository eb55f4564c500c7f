/*
 * Private to the store module (its one public header is store.h): AWS
 * Signature Version 4, the signer the s3 backend puts on every request.
 *
 * A pure function of its inputs: no clock, no environment, no I/O, no global
 * state, so it is thread-safe and the conformance suite can pin every byte.
 * It builds the canonical request, the string to sign and the signature
 * (HMAC-SHA256 through OpenSSL) and then either the Authorization header
 * (SIGV4_HEADER) or the presigned query string (SIGV4_PRESIGN).
 *
 * The path is the request path *unencoded* (an S3 key as it is, after the
 * bucket), starting with '/'; the signer encodes it once, which is S3's rule
 * (S3 neither double-encodes nor normalizes: "a//b/../c" is a different key
 * from "a/c"), and hands back that encoded path for the request line, so what
 * is signed is what is sent. The query is taken as it is on the wire (percent-
 * escapes or raw bytes): each name and value is decoded and re-encoded
 * strictly, so both spellings sign alike.
 *
 * The secret key never reaches an error message, and the derived key is wiped
 * from the stack after use.
 */
#ifndef SW_STORE_SIGV4_H
#define SW_STORE_SIGV4_H

#include "base/base.h"

#include <stddef.h>
#include <stdint.h>

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_SIG_LEN 64
/* Bounds on the inputs, so the canonical request stays bounded (at most 3x
 * its inputs plus a constant: a byte encodes to at most "%XX"). */
#define SIGV4_PATH_MAX 16384
#define SIGV4_QUERY_MAX 16384
#define SIGV4_HEADERS_MAX 64
#define SIGV4_HEADER_BYTES_MAX 65536 /* names and values together */
#define SIGV4_EXPIRES_MAX 604800     /* 7 days: the longest a presigned URL may live */

/* One request header, borrowed for the call. Names are matched case-
 * insensitively; several with one name are joined with ',' in the order
 * given. A value may hold spaces and tabs (trimmed, runs folded to one
 * space) but no other control character: CR or LF would forge a header. */
struct sigv4_header {
    const char *name;
    const char *value;
};

/* What is signed; every pointer borrowed for the call. */
struct sigv4_request {
    const char *method; /* "GET", "PUT", ...: an RFC 9110 token */
    const char *path;   /* unencoded, starting with '/' */
    const char *query;  /* without '?', as sent; NULL or "" for none */
    const struct sigv4_header *headers;
    size_t n_headers; /* must include Host */
    /* Lowercase hex SHA-256 of the body, or SIGV4_UNSIGNED_PAYLOAD. */
    const char *payload_hash;
};

/* Borrowed for the call. The session token is optional (NULL or ""). */
struct sigv4_creds {
    const char *access_key;
    const char *secret_key;
    const char *session_token;
};

enum sigv4_mode {
    SIGV4_HEADER,  /* Authorization header plus X-Amz-Date (and friends) */
    SIGV4_PRESIGN, /* everything in the query: a URL anyone may use until it expires */
};

struct sigv4_opts {
    const char *region;  /* "us-east-1" */
    const char *service; /* "s3" */
    int64_t time;        /* seconds since the epoch (UTC), years 1970-9999 */
    enum sigv4_mode mode;
    int normalize_path; /* remove "." and ".." segments and empty ones (never for S3) */
    int64_t expires;    /* SIGV4_PRESIGN: seconds, 1..SIGV4_EXPIRES_MAX */
    int token_unsigned; /* add the session token after signing, outside the signature
                         * (what some STS-style services want); default: signed */
    int content_sha256; /* SIGV4_HEADER: send and sign x-amz-content-sha256 (S3 needs it) */
};

/* The headers a signed request must carry beside the caller's ones. */
#define SIGV4_ADD_MAX 4

/* Everything the signer produced; owned by the struct, freed with
 * sigv4_out_free (also after a failure; a zeroed struct is empty). */
struct sigv4_out {
    struct buf canonical_request;
    struct buf string_to_sign;
    char signature[SIGV4_SIG_LEN + 1]; /* lowercase hex */
    /* The path for the request line: the canonical URI (encoded once). */
    struct buf path;
    /* The query for the request line (without '?'): the canonical query, and
     * in SIGV4_PRESIGN mode the X-Amz-* parameters and the signature. */
    struct buf query;
    /* SIGV4_HEADER: the Authorization header's value. */
    struct buf authorization;
    /* Headers to add to the request, as "Name: value" lines without CRLF (as
     * curl_slist_append takes them): X-Amz-Date, x-amz-content-sha256,
     * X-Amz-Security-Token, Authorization, in that order, those that apply. */
    struct buf add[SIGV4_ADD_MAX];
    size_t n_add;
};

/* Signs req into *out (which must be zeroed or freed). 0, or SW_EINVAL naming
 * the field that is wrong (never its value when it is a credential). */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_creds *cr,
               const struct sigv4_opts *o, struct sigv4_out *out, struct sw_err *err);
void sigv4_out_free(struct sigv4_out *out);

/* The building blocks, for the s3 backend (which builds keys and queries
 * with them) and the tests. */

/* Appends s[0..n) with every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~)
 * as "%XX" (uppercase hex), and '/' kept as it is when keep_slash. */
void sigv4_uri_encode(struct buf *b, const char *s, size_t n, int keep_slash);
/* Appends the canonical query string of a query as sent: pairs split at '&'
 * (empty ones dropped) and at the first '=' (none: an empty value), each part
 * percent-decoded ('+' is a plus: S3 does not read it as a space; a '%' not
 * followed by two hex digits is itself) and re-encoded, then sorted by name
 * and, for equal names, by value. */
void sigv4_canonical_query(struct buf *b, const char *query);

#endif
