/*
 * store — objects by key. Everything slipway keeps (blobs, manifests,
 * environment state, locks, audit events) lives behind this interface, so the
 * embedded directory and an S3-compatible bucket are interchangeable.
 *
 * Keys are relative, '/'-separated names of printable ASCII: no empty, "." or
 * ".." component, no component starting with '.', at most STORE_KEY_MAX bytes.
 * A bad key is SW_EINVAL, never a path outside the store.
 *
 * ETags are the lowercase hex SHA-256 of an object's content on every backend,
 * which makes compare-and-swap portable. Errors are the SW_E* codes of base.h;
 * SW_ENOTFOUND for a missing key, SW_ECONFLICT for a failed precondition.
 *
 * Thread safety: one struct store may be used from several threads at once
 * (release hashing uploads blobs in parallel).
 */
#ifndef SW_STORE_H
#define SW_STORE_H

#include "base/base.h"

#include <stddef.h>
#include <stdint.h>

#define STORE_KEY_MAX 1024

struct store;

struct store_stat {
    uint64_t size;
    int64_t mtime_ms;
    char etag[SHA256_HEX_LEN + 1]; /* filled only when STORE_STAT_ETAG was asked */
};

/* store_put flags */
enum {
    STORE_IF_ABSENT = 1 << 0, /* fail with SW_EEXIST when the key exists */
    STORE_BATCH = 1 << 1,     /* durable and visible only after store_batch_commit() */
};
/* store_head flags */
enum { STORE_STAT_ETAG = 1 << 0 };

/* Opens a store from a URL: "file:///abs/path" or a plain path (created when
 * missing). The caller frees with store_free(). */
int store_open(const char *url, struct store **out, struct sw_err *err);
/* Like store_open, but creates nothing: a store that does not exist is
 * SW_ENOTFOUND ("no store at URL"). For readers, so that a mistyped URL is an
 * error rather than a new, empty store. */
int store_open_existing(const char *url, struct store **out, struct sw_err *err);
/* As store_open (create) or store_open_existing, but an s3:// store's open
 * (loading libcurl, the HEAD that proves the bucket) runs on a thread of its
 * own while the caller goes on: every operation waits for it, and fails as
 * the open did (store_ready says how). A caller with local work to do first
 * (deploy DIR walks its tree) saves that time. What needs no request (the
 * URL's settings, the credentials) is checked before it returns: refused then,
 * *out is untouched. Other stores open at once. */
int store_open_deferred(const char *url, int create, struct store **out, struct sw_err *err);
/* Waits for a deferred open: 0, or its failure (every time it is asked). */
int store_ready(struct store *st, struct sw_err *err);
void store_free(struct store *st);
/* The URL the store was opened with, for messages. Borrowed. */
const char *store_url(const struct store *st);
/* The backend's scheme: "file" or "s3". Borrowed, static. */
const char *store_scheme(const struct store *st);

/* How long one operation keeps trying. By default a network backend retries
 * transient faults for up to 30 s per request, which suits a command: it
 * finishes rather than fail on a hiccup. A follower that polls wants the
 * opposite, since its next poll is the retry and a poll stuck on a dead store
 * holds up everything it follows: with fail_fast on, an s3 request gives up
 * after about 2 s (a connection within 1 s, a stall of 2 s without a byte, no
 * attempt started 2 s after the first), so a dead store costs one such
 * timeout. Quick refusals (503, a refused connection) are still retried
 * within those 2 s. No effect on the fs backend. Call it before st is shared
 * with other threads. */
void store_set_fail_fast(struct store *st, int on);

/* What a handle has seen of its backend. It turns degraded when an operation
 * fails because the store could not be reached or refused it (SW_EIO,
 * SW_EACCES, SW_ENOSPC; not a missing key, a lost compare-and-swap or a sink
 * of store_get_stream that stopped the read), and ok again with the next
 * operation the store answered, found or not. store_put_file's failures are
 * not counted (its local file's errors look the same). */
struct store_status {
    int degraded;
    int64_t since_ms;  /* wall clock: when it turned degraded, or ok (0: open, never degraded) */
    int64_t error_ms;  /* when the last failure happened (0: none yet) */
    uint64_t failures; /* operations that failed so since the store was opened */
    char error[1024];  /* the last failure's message, kept once ok again ("": none) */
};
/* Copies the handle's status into *out. Thread-safe. */
void store_status(struct store *st, struct store_status *out);

/* Validates a key (see above). 0 or SW_EINVAL with the reason in err. */
int store_key_check(const char *key, struct sw_err *err);

/* Reads an object: *data (NUL-terminated, caller frees), *len; etag when non-NULL. */
int store_get(struct store *st, const char *key, char **data, size_t *len,
              char etag[SHA256_HEX_LEN + 1], struct sw_err *err);
/* What store_get_if_changed returns when the object still has the ETag given. */
#define STORE_EUNCHANGED (-103)
/* A conditional read, for followers that poll a document: like store_get,
 * but when key's ETag is still etag nothing is read and the call returns
 * STORE_EUNCHANGED. On S3 that is a GET with If-None-Match answered 304
 * without a body; on fs the file is read and compared. */
int store_get_if_changed(struct store *st, const char *key, const char etag[SHA256_HEX_LEN + 1],
                         char **data, size_t *len, char etag_out[SHA256_HEX_LEN + 1],
                         struct sw_err *err);
/* Receives an object's bytes in order, in pieces of any size: the fs backend
 * reads 256 KiB at a time, a network backend passes on what each transfer
 * callback (libcurl's CURLOPT_WRITEFUNCTION) delivers. Returns 0 to go on, or
 * a negative code with err set to stop the read: store_get_stream then
 * returns that code as it is. */
typedef int (*store_sink_fn)(void *arg, const void *data, size_t len, struct sw_err *err);
/* An object longer than the max a streamed read allows. */
#define STORE_ETOOBIG (-101)
/* Reads an object without ever holding it whole: its bytes go to sink as
 * they arrive, hashed on the way. When the object turns out longer than max
 * bytes the read stops with STORE_ETOOBIG before the sink sees more than max
 * bytes, so a forged object cannot fill a disk. On success *size is its length
 * and etag (optional) its ETag, both of the bytes the sink received. On any
 * failure the sink may already have received part of the object: a caller
 * writing a file discards it. */
int store_get_stream(struct store *st, const char *key, uint64_t max, store_sink_fn sink, void *arg,
                     char etag[SHA256_HEX_LEN + 1], uint64_t *size, struct sw_err *err);
/* Writes an object atomically. etag_out (optional) receives the new ETag. */
int store_put(struct store *st, const char *key, const void *data, size_t len, unsigned flags,
              char etag_out[SHA256_HEX_LEN + 1], struct sw_err *err);
/* Copies a local file into the store, hashing it on the way. etag_out receives
 * the SHA-256 of what was stored, so a caller can check it against what it
 * hashed earlier (the file may have changed in between). */
int store_put_file(struct store *st, const char *key, const char *path, unsigned flags,
                   char etag_out[SHA256_HEX_LEN + 1], struct sw_err *err);
/* Compare-and-swap: writes only when the current ETag equals if_match, or when
 * if_match is NULL and the key is absent. SW_ECONFLICT otherwise. Correct
 * across processes and, on S3, across machines. */
int store_put_if_match(struct store *st, const char *key, const void *data, size_t len,
                       const char *if_match, char etag_out[SHA256_HEX_LEN + 1], struct sw_err *err);
/* Says a compare-and-swap is coming: what the backend must do before the
 * first (S3: prove that the endpoint honours conditional writes, a request)
 * starts now, beside the caller's next requests, instead of in front of that
 * write. Only a hint: store_put_if_match does it anyway when it was not. */
void store_prepare_cas(struct store *st);
/* Where this machine keeps, for the next processes, that the store's endpoint
 * was seen honouring conditional writes (S3: the probe's refusals; other
 * backends keep nothing). A proof younger than STORE_CAS_PROOF_MS spares a
 * later process the probe's request, as a long-running process is spared it
 * after its first: the endpoint is taken to be the same software for that
 * long. Call before the first operation; path is copied. */
#define STORE_CAS_PROOF_MS (10 * 60 * 1000)
void store_keep_cas_proof(struct store *st, const char *path);
/* ETags across processes. A remote backend maps the service's own ETag to the
 * store's (the SHA-256) for the keys it read or wrote, and reads a key first
 * to write it If-Match an ETag it has not seen. store_etag_token gives the
 * service's word for key at etag, when this handle knows it (1; else 0, and
 * always 0 on fs, which needs none), for a cache of the caller's to keep;
 * store_etag_learn gives it to a later handle, whose store_put_if_match of
 * key at etag then reads nothing first. The service still checks the
 * condition: a token the object no longer has is refused (SW_ECONFLICT).
 * A token is 1 to STORE_ETAG_TOKEN_MAX - 1 letters, digits or '-' (anything
 * else is not learnt: it goes into a request header). */
#define STORE_ETAG_TOKEN_MAX 128
int store_etag_token(struct store *st, const char *key, const char *etag,
                     char token[STORE_ETAG_TOKEN_MAX]);
void store_etag_learn(struct store *st, const char *key, const char *etag, const char *token);
/* Makes every STORE_BATCH put of this handle durable and visible (one syncfs
 * instead of an fsync per object, as git's batch fsync mode). A batched put
 * whose key appeared meanwhile is dropped silently when it was STORE_IF_ABSENT. */
int store_batch_commit(struct store *st, struct sw_err *err);
/* Discards pending batched puts. */
void store_batch_abort(struct store *st);

int store_head(struct store *st, const char *key, struct store_stat *out, unsigned flags,
               struct sw_err *err);
/* Heads n keys: stats[i] and rcs[i] (0, SW_ENOTFOUND, ...) for each key. A
 * network backend sends the requests in parallel, a few at a time (one round
 * trip each would make a release of thousands of files take seconds to
 * check); fs stats them in turn. Returns 0 when every head was answered (rcs
 * says what each found), else the first failure that is not SW_ENOTFOUND. */
int store_head_many(struct store *st, const char *const *keys, size_t n, struct store_stat *stats,
                    int *rcs, struct sw_err *err);
/* Makes an existing object young again (its modification time becomes now),
 * so gc's grace period protects it: release creation touches every body it
 * reuses, which a concurrent gc would otherwise see as old and unreferenced.
 * SW_ENOTFOUND when the key does not exist. */
int store_touch(struct store *st, const char *key, struct sw_err *err);
/* Deletes a key; with if_match non-NULL only when its ETag matches. Deleting a
 * missing key is SW_ENOTFOUND. */
int store_delete(struct store *st, const char *key, const char *if_match, struct sw_err *err);

/* One page of a listing: keys in byte order, each starting with prefix and
 * greater than start_after (NULL: from the start). */
struct store_list {
    char **keys;
    size_t n;
    int truncated; /* more keys follow; call again with start_after = last key */
};
int store_list(struct store *st, const char *prefix, const char *start_after, size_t max,
               struct store_list *out, struct sw_err *err);
/* Lists every key under prefix (all pages). */
int store_list_all(struct store *st, const char *prefix, struct store_list *out,
                   struct sw_err *err);
void store_list_free(struct store_list *l);

/* ---- transfers ---------------------------------------------------------------------------- */

#define STORE_CONCURRENCY_DEFAULT 16
#define STORE_CONCURRENCY_MAX 256

/* 1 when the store is reached over a network (s3): its transfers wait on
 * round trips rather than on the CPU or the disk, so running more of them at
 * once than there are cores pays. 0 for fs. */
int store_is_remote(const struct store *st);
/* How many uploads run at once through st at most, counting whole objects
 * and the parts of a multipart upload alike: 1..STORE_CONCURRENCY_MAX,
 * default STORE_CONCURRENCY_DEFAULT; n is clamped to that range. A local
 * store ignores the limit (its writers are the caller's threads). Thread-safe;
 * uploads already waiting see the new limit. */
void store_set_concurrency(struct store *st, int n);
int store_concurrency(const struct store *st);
/* Bytes of object bodies written through st so far (store_put, store_put_file,
 * and each part of a multipart upload as the service acknowledges it), for a
 * progress display: thread-safe, read from any thread. */
uint64_t store_bytes_sent(const struct store *st);

/* Removes leftovers of interrupted writes older than older_than_ms (temporary
 * files; on S3, incomplete multipart uploads). *removed counts them. */
int store_cleanup(struct store *st, int64_t older_than_ms, size_t *removed, struct sw_err *err);

/* Change notices between the processes sharing a store on one host, so that a
 * waiting reader (a runner waiting for queued runs) wakes at once instead of
 * at its next poll. A hint, never a guarantee: a watcher still polls, for
 * notices lost and for backends without notices. topic is [a-z]{1,32}.
 *
 * store_notify tells every watcher of topic that something changed: on the
 * fs backend it rewrites the file "<root>/.notify/<topic>" (outside the keys:
 * no key component starts with '.'); elsewhere it does nothing (0). */
int store_notify(struct store *st, const char *topic, struct sw_err *err);
/* A descriptor (caller closes) that becomes readable (poll POLLIN) when
 * store_notify(topic) is called by any process: an inotify descriptor on the
 * fs backend. *fd is -1 (and 0 returned) when the backend has no notices.
 * Call store_watch_drain after it was readable. */
int store_watch(struct store *st, const char *topic, int *fd, struct sw_err *err);
/* Reads what is pending on a store_watch descriptor, without blocking. */
void store_watch_drain(int fd);

/* ---- the bucket of an s3:// store: `slipway infra` (bucket.c) ------------------------------- */

/* What a bucket should be: slipway's defaults, overridden by .slipway/infra.yml
 * (docs/store.md, "Provisioning the bucket"). */
struct store_bucket_settings {
    int versioning;        /* 1: Enabled (default); 0: Suspended */
    int sse_kms;           /* 0: AES256 (default); 1: aws:kms */
    char *kms_key_id;      /* with sse_kms; NULL: the account's aws/s3 key */
    int block_public_acls; /* the public access block's four flags: 1 by default */
    int ignore_public_acls;
    int block_public_policy;
    int restrict_public_buckets;
    int deny_insecure_transport; /* 1: a policy statement denying requests without TLS */
    int noncurrent_days;         /* noncurrent versions expire after N days (30); 0: no rule */
    int abort_multipart_days;    /* incomplete multipart uploads abort after N days (1) */
    int logs_days;               /* logs/ expires after N days (90) */
    char *log_bucket;            /* server access logging to this bucket; NULL: not managed */
    char *log_prefix;            /* under this prefix; NULL: "logs/BUCKET/" */
};

/* The defaults (every field above; nothing to free). */
void store_bucket_settings_defaults(struct store_bucket_settings *s);
/* The defaults, then what the YAML document data (named name in messages)
 * says. SW_EINVAL with "NAME:LINE:COL: key: expected ..." for any unknown key
 * or bad value. Free with store_bucket_settings_free, also after an error. */
int store_bucket_settings_parse(const char *data, size_t len, const char *name,
                                struct store_bucket_settings *out, struct sw_err *err);
/* The same from the file at path; a file that does not exist gives the defaults. */
int store_bucket_settings_load(const char *path, struct store_bucket_settings *out,
                               struct sw_err *err);
void store_bucket_settings_free(struct store_bucket_settings *s);

/* One difference between a bucket and its settings. Every text is printable
 * for a person as it is only after escaping: from and to hold what the
 * service answered. */
struct store_bucket_change {
    char *bucket;  /* the bucket it is about */
    int logs;      /* 1: the logs bucket, 0: the store's own */
    char op;       /* '+' add (or create), '~' change, '-' remove */
    char *setting; /* "bucket", "versioning", "encryption", "public access block BlockPublicAcls",
                      "policy statement SID", "lifecycle rule ID", "logging" */
    char *from;    /* as it is; NULL for an add */
    char *to;      /* as it should be; NULL for a remove */
};

struct store_bucket_plan {
    char *store;       /* the store URL without secrets */
    char *bucket;      /* the store's bucket */
    char *logs_bucket; /* NULL when logging is not managed */
    struct store_bucket_change *changes;
    size_t n, cap;
    size_t added, changed, removed;
};

/* The lease `apply` holds, as the error naming its holder says: a
 * create-only object, outside every store key. */
#define STORE_BUCKET_LEASE_KEY ".slipway/locks/infra"
/* Another apply holds the lease (err names it). */
#define STORE_EBUCKET_LOCKED (-120)

/* Compares the bucket of the s3:// store url (and the logs bucket want
 * names) with want, changing nothing: *plan (free with
 * store_bucket_plan_free, also after an error) lists each difference, in the
 * order apply makes them. A bucket that does not exist is one change
 * ("create") followed by every setting. SW_EINVAL for a URL that is not
 * s3:// or a bad setting (logging into the bucket itself); the store's errors
 * for the service's answers (each read back strictly). */
int store_bucket_plan(const char *url, const struct store_bucket_settings *want,
                      struct store_bucket_plan *plan, struct sw_err *err);
/* Makes the buckets so: creates what is missing (with a LocationConstraint
 * outside us-east-1), takes slipway's lease on each bucket (a create-only
 * object at STORE_BUCKET_LEASE_KEY with an expiry; an expired lease, or one
 * whose holder died on this host, is taken over), reads them again under the
 * lease and writes only the settings that differ, the owner's other
 * lifecycle rules and policy statements kept. *done lists what was changed
 * (empty: nothing to do). STORE_EBUCKET_LOCKED when another apply holds a
 * lease; on any failure *done lists what was changed before it. */
int store_bucket_apply(const char *url, const struct store_bucket_settings *want,
                       struct store_bucket_plan *done, struct sw_err *err);
void store_bucket_plan_free(struct store_bucket_plan *plan);

#endif
