/*
 * Private to the store module: the operations each backend implements. The
 * generic layer (store.c) has already validated keys and arguments.
 */
#ifndef SW_STORE_BACKEND_H
#define SW_STORE_BACKEND_H

#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>

struct store_ops {
    const char *scheme;
    int (*get)(struct store *, const char *, char **, size_t *, char *, struct sw_err *);
    /* Optional (NULL: a get compared afterwards): store_get_if_changed. */
    int (*get_if_changed)(struct store *, const char *, const char *, char **, size_t *, char *,
                          struct sw_err *);
    /* Passes the object's bytes to the sink in order; the generic layer
     * counts, bounds and hashes them. */
    int (*get_stream)(struct store *, const char *, store_sink_fn, void *, struct sw_err *);
    int (*put)(struct store *, const char *, const void *, size_t, unsigned, char *,
               struct sw_err *);
    int (*put_file)(struct store *, const char *, const char *, unsigned, char *, struct sw_err *);
    int (*put_if_match)(struct store *, const char *, const void *, size_t, const char *, char *,
                        struct sw_err *);
    int (*batch_commit)(struct store *, struct sw_err *);
    void (*batch_abort)(struct store *);
    int (*head)(struct store *, const char *, struct store_stat *, unsigned, struct sw_err *);
    /* Optional (NULL: heads, parallel threads): store_head_many of valid keys. */
    int (*head_many)(struct store *, const char *const *, size_t, struct store_stat *, int *,
                     struct sw_err *);
    int (*del)(struct store *, const char *, const char *, struct sw_err *);
    /* Every key starting with prefix, unsorted; the generic layer sorts and pages. */
    int (*list)(struct store *, const char *, struct store_list *, struct sw_err *);
    int (*cleanup)(struct store *, int64_t, size_t *, struct sw_err *);
    int (*touch)(struct store *, const char *, struct sw_err *);
    /* Optional (NULL: no notices): store_notify and store_watch of a valid topic. */
    int (*notify)(struct store *, const char *, struct sw_err *);
    int (*watch)(struct store *, const char *, int *, struct sw_err *);
    /* Optional (NULL: nothing to change): store_set_fail_fast. */
    void (*set_fail_fast)(struct store *, int);
    /* Optional (NULL: nothing to prepare): store_prepare_cas. */
    void (*prepare_cas)(struct store *);
    /* Optional (NULL: none needed): store_etag_token and store_etag_learn,
     * the token checked already. */
    int (*etag_token)(struct store *, const char *, const char *, char *);
    void (*etag_learn)(struct store *, const char *, const char *, const char *);
    /* Optional: proves the store is there and may be used (S3: a HEAD of the
     * bucket), worded as an open's failure; a store opened with check_later
     * runs it when an operation first fails as a missing or refused store. */
    int (*check)(struct store *, struct sw_err *);
    void (*free)(struct store *);
    /* Reached over a network: store_is_remote, and store_put takes an upload slot. */
    int remote;
};

struct store {
    const struct store_ops *ops;
    char *url;
    void *impl;
    char *cas_proof; /* store_keep_cas_proof's file, or NULL */
    /* Upload slots (store_xfer_begin): at most xfer_max taken at once. */
    pthread_mutex_t xfer_mu;
    pthread_cond_t xfer_cv;
    int xfer_max, xfer_busy;
    atomic_uint_least64_t sent; /* store_bytes_sent */
    pthread_mutex_t status_mu;  /* guards status: operations end on any thread */
    struct store_status status;
    int remote; /* ops->remote, known from the URL before a deferred open is done */
    /* store_open_deferred: the backend's open runs on opener until an
     * operation needs it (store.c, ready()); its result is kept. */
    atomic_int opening;
    pthread_mutex_t open_mu;
    pthread_t opener;
    int open_create;
    int open_rc;
    struct sw_err open_err;
    /* Opened without ops->check (check_later): the first failure that may be
     * the store's own runs it once; one that fails becomes the store's
     * verdict, which every operation after returns, as a failed open's. */
    int check_later;
    int checked; /* under open_mu */
    atomic_int verdict;
    struct sw_err verdict_err; /* written before verdict is set */
};

/* store_head_many by heads on parallel threads (a remote store's concurrency
 * at a time, at most 64; fs: in turn), for
 * a backend's head_many to fall back on. Keys are valid. */
int store_head_threads(struct store *st, const char *const *keys, size_t n,
                       struct store_stat *stats, int *rcs, struct sw_err *err);
/* Takes one of the store's upload slots (store_concurrency of them), waiting
 * while all are taken; store_xfer_end gives it back. A remote backend holds
 * one for each request that carries an object's body or a part of it, and
 * never while it waits for another (a multipart upload's caller holds none
 * while its parts go), so slots cannot deadlock. Thread-safe. */
void store_xfer_begin(struct store *st);
void store_xfer_end(struct store *st);
/* Adds n to store_bytes_sent: the backend calls it for each body or part
 * the service (or the disk) acknowledged, except store_put's, which the
 * generic layer counts. */
void store_count_sent(struct store *st, uint64_t n);

/* create: make the directory when it is missing (else SW_ENOTFOUND). */
int store_fs_open(const char *root, int create, struct store *st, struct sw_err *err);
/* "s3://BUCKET[/PREFIX][?...]" (see s3conf.h). The bucket must exist
 * (SW_ENOTFOUND otherwise): create is ignored, no bucket is made by accident. */
/* check_later: without the bucket's HEAD (ops->check runs it when needed). */
int store_s3_open(const char *url, int create, int check_later, struct store *st,
                  struct sw_err *err);

#endif
