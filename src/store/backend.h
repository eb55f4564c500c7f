/*
 * Private to the store module: the operations each backend implements. The
 * generic layer (store.c) has already validated keys and arguments.
 */
#ifndef SW_STORE_BACKEND_H
#define SW_STORE_BACKEND_H

#include "store/store.h"

#include <pthread.h>

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
    void (*free)(struct store *);
};

struct store {
    const struct store_ops *ops;
    char *url;
    void *impl;
    pthread_mutex_t status_mu; /* guards status: operations end on any thread */
    struct store_status status;
};

/* create: make the directory when it is missing (else SW_ENOTFOUND). */
int store_fs_open(const char *root, int create, struct store *st, struct sw_err *err);
/* "s3://BUCKET[/PREFIX][?...]" (see s3conf.h). The bucket must exist
 * (SW_ENOTFOUND otherwise): create is ignored, no bucket is made by accident. */
int store_s3_open(const char *url, int create, struct store *st, struct sw_err *err);

#endif
