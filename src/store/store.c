/*
 * The generic half of the store: URL parsing, key validation, paging and the
 * handle's status. Each backend sees only valid keys, so no backend can be
 * tricked into touching a path or object outside its root; and every
 * operation's outcome passes through here, so whether the store answers is
 * known without any backend saying so.
 */
#include "store/backend.h"
#include "store/s3conf.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int store_key_check(const char *key, struct sw_err *err)
{
    size_t len = strlen(key);
    if (len == 0)
        return sw_err_set(err, SW_EINVAL, "empty store key");
    if (len > STORE_KEY_MAX)
        return sw_err_set(err, SW_EINVAL, "store key longer than %d bytes", STORE_KEY_MAX);
    if (key[0] == '/')
        return sw_err_set(err, SW_EINVAL, "store key '%s' is absolute", key);
    const char *comp = key;
    for (const char *p = key;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '/' || c == '\0') {
            size_t n = (size_t)(p - comp);
            if (n == 0)
                return sw_err_set(err, SW_EINVAL, "store key '%s' has an empty component", key);
            if (comp[0] == '.')
                return sw_err_set(err, SW_EINVAL,
                                  "store key '%s': a component may not start with '.'", key);
            if (!c)
                break;
            comp = p + 1;
            continue;
        }
        if (c < 0x21 || c > 0x7e || c == '\\')
            return sw_err_set(err, SW_EINVAL, "store key '%s': byte 0x%02x not allowed", key, c);
    }
    return 0;
}

/* The backend's open of st (its URL already checked by open_url). */
static int open_backend(struct store *st, int create, struct sw_err *err)
{
    const char *url = st->url;
    if (str_starts_with(url, "file://"))
        return store_fs_open(url + 7, create, st, err);
    if (str_starts_with(url, "s3://"))
        return store_s3_open(url, create, st->check_later, st, err);
    return store_fs_open(url, create, st, err);
}

static struct store *store_new(const char *url)
{
    struct store *st = xcalloc(1, sizeof(*st));
    st->url = xstrdup(url);
    pthread_mutex_init(&st->xfer_mu, NULL);
    pthread_cond_init(&st->xfer_cv, NULL);
    st->xfer_max = STORE_CONCURRENCY_DEFAULT;
    atomic_init(&st->sent, 0);
    pthread_mutex_init(&st->status_mu, NULL);
    pthread_mutex_init(&st->open_mu, NULL);
    atomic_init(&st->opening, 0);
    st->remote = str_starts_with(url, "s3://");
    return st;
}

static void store_delete_struct(struct store *st)
{
    pthread_cond_destroy(&st->xfer_cv);
    pthread_mutex_destroy(&st->xfer_mu);
    pthread_mutex_destroy(&st->status_mu);
    pthread_mutex_destroy(&st->open_mu);
    free(st->url);
    free(st->cas_proof);
    free(st);
}

static int url_check(const char *url, struct sw_err *err)
{
    if (str_starts_with(url, "file://") && url[7] != '/')
        return sw_err_set(err, SW_EINVAL, "store URL '%s': file:// needs an absolute path", url);
    if (!str_starts_with(url, "file://") && !str_starts_with(url, "s3://") && strstr(url, "://"))
        return sw_err_set(err, SW_EINVAL,
                          "store URL '%s': unsupported scheme (expected s3://, file:// or a path)",
                          url);
    return 0;
}

static int open_url(const char *url, int create, struct store **out, struct sw_err *err)
{
    int rc = url_check(url, err);
    if (rc)
        return rc;
    struct store *st = store_new(url);
    if ((rc = open_backend(st, create, err))) {
        store_delete_struct(st);
        return rc;
    }
    *out = st;
    return 0;
}

int store_open(const char *url, struct store **out, struct sw_err *err)
{
    return open_url(url, 1, out, err);
}

int store_open_existing(const char *url, struct store **out, struct sw_err *err)
{
    return open_url(url, 0, out, err);
}

static void *opener_main(void *arg)
{
    struct store *st = arg;
    st->open_rc = open_backend(st, st->open_create, &st->open_err);
    return NULL;
}

static const char *conf_getenv(const char *name)
{
    return getenv(name);
}

int store_open_deferred(const char *url, int create, struct store **out, struct sw_err *err)
{
    int rc = url_check(url, err);
    if (rc)
        return rc;
    if (!str_starts_with(url, "s3://"))
        return open_url(url, create, out, err);
    /* What the opener would refuse without a request (the URL's settings, no
     * credentials) is refused now: deploy DIR walks and hashes the tree while
     * the store opens, and only then heard why it could not. */
    struct s3conf conf = {0};
    if ((rc = s3conf_parse(url, conf_getenv, &conf, err)))
        return rc;
    s3conf_free(&conf);
    struct store *st = store_new(url);
    st->open_create = create;
    /* The bucket's HEAD is one round trip before the first operation's: the
     * first operation proves the bucket as well, and its failure is worded as
     * the HEAD's would have been (check_store). */
    st->check_later = 1;
    atomic_store(&st->opening, 1);
    if (pthread_create(&st->opener, NULL, opener_main, st) != 0) {
        atomic_store(&st->opening, 0);
        if ((rc = open_backend(st, create, err))) {
            store_delete_struct(st);
            return rc;
        }
    }
    *out = st;
    return 0;
}

/* Waits for a deferred open; its failure, every time it is asked. */
static int ready(const struct store *cst, struct sw_err *err)
{
    struct store *st = (struct store *)cst;
    if (atomic_load(&st->opening)) {
        pthread_mutex_lock(&st->open_mu);
        if (atomic_load(&st->opening)) {
            pthread_join(st->opener, NULL);
            atomic_store(&st->opening, 0);
        }
        pthread_mutex_unlock(&st->open_mu);
    }
    if (st->open_rc && err)
        *err = st->open_err;
    if (st->open_rc)
        return st->open_rc;
    int v = atomic_load(&st->verdict);
    if (v && err)
        *err = st->verdict_err;
    return v;
}

int store_ready(struct store *st, struct sw_err *err)
{
    return ready(st, err);
}

#define READY()                                                                                    \
    do {                                                                                           \
        int ready_ = ready(st, err);                                                               \
        if (ready_)                                                                                \
            return ready_;                                                                         \
    } while (0)

void store_free(struct store *st)
{
    if (!st)
        return;
    ready(st, NULL);      /* joins a deferred open */
    if (st->open_rc == 0) /* opened, even if its check failed later */
        st->ops->free(st);
    store_delete_struct(st);
}

const char *store_url(const struct store *st)
{
    return st->url;
}

const char *store_scheme(const struct store *st)
{
    return st->remote ? "s3" : "file";
}

void store_set_fail_fast(struct store *st, int on)
{
    if (ready(st, NULL) == 0 && st->ops->set_fail_fast)
        st->ops->set_fail_fast(st, on);
}

void store_prepare_cas(struct store *st)
{
    if (ready(st, NULL) == 0 && st->ops->prepare_cas)
        st->ops->prepare_cas(st);
}

void store_keep_cas_proof(struct store *st, const char *path)
{
    free(st->cas_proof);
    st->cas_proof = xstrdup_or_null(path);
}

int store_etag_token(struct store *st, const char *key, const char *etag,
                     char token[STORE_ETAG_TOKEN_MAX])
{
    token[0] = '\0';
    return ready(st, NULL) == 0 && st->ops->etag_token && key && etag &&
           st->ops->etag_token(st, key, etag, token);
}

void store_etag_learn(struct store *st, const char *key, const char *etag, const char *token)
{
    if (!key || !etag || !hex_lower_valid(etag, SHA256_HEX_LEN) || !token || !*token ||
        strlen(token) >= STORE_ETAG_TOKEN_MAX)
        return;
    for (const char *c = token; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              *c == '-'))
            return;
    if (ready(st, NULL) == 0 && st->ops->etag_learn)
        st->ops->etag_learn(st, key, etag, token);
}

void store_status(struct store *st, struct store_status *out)
{
    pthread_mutex_lock(&st->status_mu);
    *out = st->status;
    pthread_mutex_unlock(&st->status_mu);
}

/* A store opened with check_later whose operation failed as a missing or
 * refused store might (S3: NoSuchBucket is an I/O error, a bad signature a
 * refusal): its check, once. A failed check is the store's verdict from now
 * on, and the operation's error; a passing one leaves the operation's. */
static int check_store(struct store *st, int rc, struct sw_err *err)
{
    if (!st->check_later || !st->ops->check || (rc != SW_EIO && rc != SW_EACCES))
        return rc;
    pthread_mutex_lock(&st->open_mu);
    if (!st->checked) {
        st->checked = 1;
        struct sw_err e = {0};
        int c = st->ops->check(st, &e);
        if (c) {
            st->verdict_err = e;
            atomic_store(&st->verdict, c);
        }
    }
    pthread_mutex_unlock(&st->open_mu);
    int v = atomic_load(&st->verdict);
    if (v && err)
        *err = st->verdict_err;
    return v ? v : rc;
}

/* Notes what an operation's result says of the store and returns rc. Codes
 * that are neither (a bad key, a document that does not parse) change
 * nothing. */
static int track(struct store *st, int rc, struct sw_err *err)
{
    rc = check_store(st, rc, err);
    int down = rc == SW_EIO || rc == SW_EACCES || rc == SW_ENOSPC;
    int answered = rc == 0 || rc == SW_ENOTFOUND || rc == SW_EEXIST || rc == SW_ECONFLICT ||
                   rc == STORE_EUNCHANGED || rc == STORE_ETOOBIG;
    if (!down && !answered)
        return rc;
    pthread_mutex_lock(&st->status_mu);
    struct store_status *s = &st->status;
    if (down) {
        int64_t now = time_now_ms();
        if (!s->degraded)
            s->since_ms = now;
        s->degraded = 1;
        s->error_ms = now;
        s->failures++;
        snprintf(s->error, sizeof(s->error), "%s", err && err->msg[0] ? err->msg : "failed");
    } else if (s->degraded) {
        s->degraded = 0;
        s->since_ms = time_now_ms();
    }
    pthread_mutex_unlock(&st->status_mu);
    return rc;
}

/* Every operation on a key: the key checked, then a deferred open waited for. */
#define CHECK_KEY(key)                                                                             \
    do {                                                                                           \
        int rc_ = store_key_check(key, err);                                                       \
        if (rc_)                                                                                   \
            return rc_;                                                                            \
        READY();                                                                                   \
    } while (0)

int store_get(struct store *st, const char *key, char **data, size_t *len,
              char etag[SHA256_HEX_LEN + 1], struct sw_err *err)
{
    CHECK_KEY(key);
    return track(st, st->ops->get(st, key, data, len, etag, err), err);
}

int store_get_if_changed(struct store *st, const char *key, const char etag[SHA256_HEX_LEN + 1],
                         char **data, size_t *len, char etag_out[SHA256_HEX_LEN + 1],
                         struct sw_err *err)
{
    CHECK_KEY(key);
    if (st->ops->get_if_changed)
        return track(st, st->ops->get_if_changed(st, key, etag, data, len, etag_out, err), err);
    char now[SHA256_HEX_LEN + 1];
    int rc = track(st, st->ops->get(st, key, data, len, now, err), err);
    if (rc)
        return rc;
    if (!strcmp(now, etag)) {
        free(*data);
        *data = NULL;
        return STORE_EUNCHANGED;
    }
    if (etag_out)
        memcpy(etag_out, now, sizeof(now));
    return 0;
}

/* What the generic layer wraps around a caller's sink: every backend gets
 * the same bound and the same ETag, computed from the bytes delivered. */
struct stream {
    struct store *st;
    const char *key;
    store_sink_fn sink;
    void *arg;
    uint64_t max, n;
    struct sha256_ctx *h;
    int sink_failed; /* the caller's sink stopped the read: no fault of the store */
};

static int stream_piece(void *arg, const void *data, size_t len, struct sw_err *err)
{
    struct stream *s = arg;
    if (len > s->max - s->n)
        return sw_err_set(err, STORE_ETOOBIG, "store %s: %s is larger than %llu bytes", s->st->url,
                          s->key, (unsigned long long)s->max);
    s->n += len;
    sha256_update(s->h, data, len);
    int rc = len ? s->sink(s->arg, data, len, err) : 0;
    s->sink_failed = rc != 0;
    return rc;
}

int store_get_stream(struct store *st, const char *key, uint64_t max, store_sink_fn sink, void *arg,
                     char etag[SHA256_HEX_LEN + 1], uint64_t *size, struct sw_err *err)
{
    CHECK_KEY(key);
    struct stream s = {st, key, sink, arg, max, 0, sha256_new(), 0};
    int rc = st->ops->get_stream(st, key, stream_piece, &s, err);
    if (!s.sink_failed)
        rc = track(st, rc, err);
    char hex[SHA256_HEX_LEN + 1];
    sha256_final_hex(s.h, hex);
    if (rc)
        return rc;
    if (etag)
        memcpy(etag, hex, sizeof(hex));
    *size = s.n;
    return 0;
}

int store_put(struct store *st, const char *key, const void *data, size_t len, unsigned flags,
              char etag_out[SHA256_HEX_LEN + 1], struct sw_err *err)
{
    CHECK_KEY(key);
    /* One body, one request: a slot for its whole length (store_put_file's
     * backend takes its own, one per part of a large file). */
    if (st->remote)
        store_xfer_begin(st);
    int rc = st->ops->put(st, key, data, len, flags, etag_out, err);
    if (st->remote)
        store_xfer_end(st);
    if (rc == 0)
        store_count_sent(st, len);
    return track(st, rc, err);
}

int store_put_file(struct store *st, const char *key, const char *path, unsigned flags,
                   char etag_out[SHA256_HEX_LEN + 1], struct sw_err *err)
{
    CHECK_KEY(key);
    int rc = st->ops->put_file(st, key, path, flags, etag_out, err);
    return rc ? check_store(st, rc, err) : track(st, rc, err);
}

int store_put_if_match(struct store *st, const char *key, const void *data, size_t len,
                       const char *if_match, char etag_out[SHA256_HEX_LEN + 1], struct sw_err *err)
{
    CHECK_KEY(key);
    return track(st, st->ops->put_if_match(st, key, data, len, if_match, etag_out, err), err);
}

int store_batch_commit(struct store *st, struct sw_err *err)
{
    READY();
    return track(st, st->ops->batch_commit(st, err), err);
}

void store_batch_abort(struct store *st)
{
    if (ready(st, NULL) == 0)
        st->ops->batch_abort(st);
}

int store_head(struct store *st, const char *key, struct store_stat *out, unsigned flags,
               struct sw_err *err)
{
    CHECK_KEY(key);
    memset(out, 0, sizeof(*out));
    return track(st, st->ops->head(st, key, out, flags, err), err);
}

struct many {
    struct store *st;
    const char *const *keys;
    size_t n;
    struct store_stat *stats;
    int *rcs;
    atomic_size_t next;
    pthread_mutex_t lock;
    int rc; /* the first failure other than SW_ENOTFOUND */
    struct sw_err err;
};

static void *many_worker(void *arg)
{
    struct many *m = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&m->next, 1);
        if (i >= m->n)
            break;
        struct sw_err e = {0};
        memset(&m->stats[i], 0, sizeof(m->stats[i]));
        int rc = m->st->ops->head(m->st, m->keys[i], &m->stats[i], 0, &e);
        m->rcs[i] = rc;
        if (rc && rc != SW_ENOTFOUND) {
            pthread_mutex_lock(&m->lock);
            if (!m->rc) {
                m->rc = rc;
                m->err = e;
            }
            pthread_mutex_unlock(&m->lock);
        }
    }
    return NULL;
}

int store_head_many(struct store *st, const char *const *keys, size_t n, struct store_stat *stats,
                    int *rcs, struct sw_err *err)
{
    for (size_t i = 0; i < n; i++)
        CHECK_KEY(keys[i]);
    int rc = st->ops->head_many ? st->ops->head_many(st, keys, n, stats, rcs, err)
                                : store_head_threads(st, keys, n, stats, rcs, err);
    return check_store(st, rc, err);
}

int store_head_threads(struct store *st, const char *const *keys, size_t n,
                       struct store_stat *stats, int *rcs, struct sw_err *err)
{
    struct many m = {.st = st, .keys = keys, .n = n, .stats = stats, .rcs = rcs};
    pthread_mutex_init(&m.lock, NULL);
    size_t threads = st->remote ? (size_t)store_concurrency(st) : 1;
    if (threads > n)
        threads = n;
    pthread_t tid[64];
    size_t started = 0;
    if (threads > 64)
        threads = 64;
    /* This thread is one of the workers; a thread that cannot start only
     * makes the check slower. */
    for (; started + 1 < threads; started++)
        if (pthread_create(&tid[started], NULL, many_worker, &m) != 0)
            break;
    many_worker(&m);
    for (size_t i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    pthread_mutex_destroy(&m.lock);
    if (m.rc && err)
        *err = m.err;
    return m.rc;
}

int store_touch(struct store *st, const char *key, struct sw_err *err)
{
    CHECK_KEY(key);
    return track(st, st->ops->touch(st, key, err), err);
}

int store_delete(struct store *st, const char *key, const char *if_match, struct sw_err *err)
{
    CHECK_KEY(key);
    return track(st, st->ops->del(st, key, if_match, err), err);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_list_all(struct store *st, const char *prefix, struct store_list *out, struct sw_err *err)
{
    memset(out, 0, sizeof(*out));
    READY();
    int rc = track(st, st->ops->list(st, prefix, out, err), err);
    if (rc) {
        store_list_free(out);
        return rc;
    }
    if (out->n)
        qsort(out->keys, out->n, sizeof(char *), cmp_str);
    return 0;
}

int store_list(struct store *st, const char *prefix, const char *start_after, size_t max,
               struct store_list *out, struct sw_err *err)
{
    int rc = store_list_all(st, prefix, out, err);
    if (rc)
        return rc;
    size_t first = 0;
    if (start_after)
        while (first < out->n && strcmp(out->keys[first], start_after) <= 0)
            first++;
    size_t n = out->n - first;
    if (max && n > max) {
        n = max;
        out->truncated = 1;
    }
    for (size_t i = 0; i < first; i++)
        free(out->keys[i]);
    for (size_t i = first + n; i < out->n; i++)
        free(out->keys[i]);
    if (n)
        memmove(out->keys, out->keys + first, n * sizeof(char *));
    out->n = n;
    return 0;
}

void store_list_free(struct store_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->keys[i]);
    free(l->keys);
    memset(l, 0, sizeof(*l));
}

int store_cleanup(struct store *st, int64_t older_than_ms, size_t *removed, struct sw_err *err)
{
    *removed = 0;
    READY();
    return track(st, st->ops->cleanup(st, older_than_ms, removed, err), err);
}

static int topic_check(const char *topic, struct sw_err *err)
{
    size_t n = 0;
    for (; topic[n]; n++)
        if (topic[n] < 'a' || topic[n] > 'z')
            break;
    if (n == 0 || n > 32 || topic[n])
        return sw_err_set(err, SW_EINVAL, "store notice topic: expected [a-z]{1,32}");
    return 0;
}

int store_notify(struct store *st, const char *topic, struct sw_err *err)
{
    int rc = topic_check(topic, err);
    if (!rc)
        rc = ready(st, err);
    if (rc || !st->ops->notify)
        return rc;
    return st->ops->notify(st, topic, err);
}

int store_watch(struct store *st, const char *topic, int *fd, struct sw_err *err)
{
    int rc = topic_check(topic, err);
    *fd = -1;
    if (!rc)
        rc = ready(st, err);
    if (rc || !st->ops->watch)
        return rc;
    return st->ops->watch(st, topic, fd, err);
}

void store_watch_drain(int fd)
{
    char b[4096];
    /* non-blocking: stops at EAGAIN; EINTR reads again */
    while (fd >= 0) {
        ssize_t n = read(fd, b, sizeof(b));
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        break;
    }
}

/* ---- transfers ------------------------------------------------------------------------------ */

int store_is_remote(const struct store *st)
{
    return st->remote;
}

void store_set_concurrency(struct store *st, int n)
{
    if (n < 1)
        n = 1;
    if (n > STORE_CONCURRENCY_MAX)
        n = STORE_CONCURRENCY_MAX;
    pthread_mutex_lock(&st->xfer_mu);
    st->xfer_max = n;
    pthread_cond_broadcast(&st->xfer_cv); /* a larger limit lets waiters go */
    pthread_mutex_unlock(&st->xfer_mu);
}

int store_concurrency(const struct store *st)
{
    struct store *m = (struct store *)st; /* the lock only, never the value */
    pthread_mutex_lock(&m->xfer_mu);
    int n = m->xfer_max;
    pthread_mutex_unlock(&m->xfer_mu);
    return n;
}

void store_xfer_begin(struct store *st)
{
    pthread_mutex_lock(&st->xfer_mu);
    while (st->xfer_busy >= st->xfer_max)
        pthread_cond_wait(&st->xfer_cv, &st->xfer_mu);
    st->xfer_busy++;
    pthread_mutex_unlock(&st->xfer_mu);
}

void store_xfer_end(struct store *st)
{
    pthread_mutex_lock(&st->xfer_mu);
    st->xfer_busy--;
    pthread_cond_signal(&st->xfer_cv);
    pthread_mutex_unlock(&st->xfer_mu);
}

void store_count_sent(struct store *st, uint64_t n)
{
    atomic_fetch_add(&st->sent, n);
}

uint64_t store_bytes_sent(const struct store *st)
{
    return atomic_load(&((struct store *)st)->sent);
}
