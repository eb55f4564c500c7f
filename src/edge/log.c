/*
 * The access log, kept off the request path: each worker formats its line into
 * its own buffer (under its own mutex, which only the log thread ever shares),
 * and a log thread swaps the buffers out and writes them every 200 ms. A slow
 * disk delays the log, never a response; if a buffer reaches its cap before the
 * flush, lines are dropped and counted rather than blocking a worker.
 *
 * With the store as the target ("--access-log store") the log thread gathers
 * the lines and puts them as one object every few seconds,
 * logs/access/<date>/<node>-<ms>.log, create-only. A store that cannot be
 * reached keeps the lines here, up to STORE_PENDING_MAX, and they go with the
 * next batch that gets through; what did not fit is dropped and counted, and
 * the count is written into the log itself.
 */
#include "edge/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_CAP (4u << 20)
#define STORE_PENDING_MAX ((size_t)64 << 20)
#define STORE_FLUSH_MS 5000

struct wlog {
    _Alignas(CACHELINE) pthread_mutex_t lock;
    struct buf b;
    unsigned long dropped;
};

struct access_log {
    int fd, own_fd;
    struct store *store; /* the target when not a file */
    struct buf pending;  /* lines not yet in the store */
    unsigned long lost;  /* lines dropped: pending was full */
    int64_t flush_ms, last_put_ms;
    char node[64];
    int failing;
    int n;
    struct wlog *w;
    pthread_t thread;
    atomic_int stop;
};

static void flush_all(struct access_log *l)
{
    for (int i = 0; i < l->n; i++) {
        struct buf out = BUF_INIT;
        pthread_mutex_lock(&l->w[i].lock);
        out = l->w[i].b;
        l->w[i].b = (struct buf)BUF_INIT;
        unsigned long dropped = l->w[i].dropped;
        l->w[i].dropped = 0;
        pthread_mutex_unlock(&l->w[i].lock);
        if (dropped)
            buf_addf(&out, "# %lu access log lines dropped (log writer too slow)\n", dropped);
        if (out.len && !l->store)
            fd_write_all(l->fd, out.data, out.len);
        else if (out.len && l->pending.len + out.len <= STORE_PENDING_MAX)
            buf_add(&l->pending, out.data, out.len);
        else if (out.len)
            for (size_t k = 0; k < out.len; k++)
                l->lost += out.data[k] == '\n';
        buf_free(&out);
    }
}

/* Puts what is pending as one object. force: whatever the time (closing). */
static void store_flush(struct access_log *l, int force)
{
    int64_t now = time_now_ms();
    if (!l->pending.len && !l->lost)
        return;
    if (!force && now - l->last_put_ms < l->flush_ms && l->pending.len < LOG_CAP)
        return;
    l->last_put_ms = now;
    if (l->lost) {
        buf_addf(&l->pending, "# %lu access log lines dropped (the store was unreachable)\n",
                 l->lost);
    }
    char day[32], key[160];
    time_format_iso(now, day, sizeof(day));
    day[10] = '\0';
    struct sw_err err = {0};
    int rc = SW_EEXIST;
    for (int64_t n = now; rc == SW_EEXIST && n < now + 1000; n++) {
        snprintf(key, sizeof(key), "logs/access/%s/%s-%lld.log", day, l->node, (long long)n);
        rc = store_put(l->store, key, l->pending.data, l->pending.len, STORE_IF_ABSENT, NULL, &err);
    }
    if (rc == 0) {
        buf_reset(&l->pending);
        l->lost = 0;
        if (l->failing)
            fprintf(stderr, "slipway serve: access log: the store takes lines again\n");
        l->failing = 0;
        return;
    }
    /* The count line is added again at the next attempt, with the new total. */
    if (l->lost) {
        char *nl = l->pending.len > 1 ? memrchr(l->pending.data, '\n', l->pending.len - 1) : NULL;
        l->pending.len = nl ? (size_t)(nl - l->pending.data) + 1 : 0;
        l->pending.data[l->pending.len] = '\0';
    }
    if (!l->failing) {
        struct buf e = BUF_INIT;
        buf_add_escaped(&e, err.msg);
        fprintf(stderr,
                "slipway serve: access log: %s; lines are kept here (up to %zu MiB) and "
                "sent later\n",
                e.data, STORE_PENDING_MAX >> 20);
        buf_free(&e);
    }
    l->failing = 1;
}

static void *log_thread(void *arg)
{
    struct access_log *l = arg;
    while (!atomic_load(&l->stop)) {
        usleep(200 * 1000);
        flush_all(l);
        if (l->store)
            store_flush(l, 0);
    }
    flush_all(l);
    if (l->store)
        store_flush(l, 1);
    return NULL;
}

/* This node's name in log keys: the host name, as a key component allows. */
static void node_name(char *out, size_t len)
{
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
        snprintf(host, sizeof(host), "node");
    size_t n = 0;
    for (const char *p = host; *p && n + 1 < len; p++) {
        char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
        out[n++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ? c : '-';
    }
    out[n] = '\0';
    if (!n || out[0] == '-')
        snprintf(out, len, "node");
}

int access_log_open(const char *path, struct store *st, int nworkers, struct access_log **out,
                    struct sw_err *err)
{
    struct access_log *l = xcalloc(1, sizeof(*l));
    if (!strcmp(path, "store")) {
        l->store = st;
        l->fd = -1;
        node_name(l->node, sizeof(l->node));
        /* For tests that cannot wait five seconds a batch (docs/development.md). */
        const char *f = getenv("SLIPWAY_ACCESS_LOG_FLUSH_MS");
        l->flush_ms = f && atoll(f) > 0 ? atoll(f) : STORE_FLUSH_MS;
        l->last_put_ms = time_now_ms();
    } else if (!strcmp(path, "-")) {
        l->fd = STDOUT_FILENO;
    } else {
        l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (l->fd < 0) {
            int e = errno;
            free(l);
            return sw_err_sys(err, e, "access log %s", path);
        }
        l->own_fd = 1;
    }
    l->n = nworkers;
    l->w = xcalloc_aligned((size_t)nworkers, sizeof(*l->w), CACHELINE);
    for (int i = 0; i < nworkers; i++)
        pthread_mutex_init(&l->w[i].lock, NULL);
    if (pthread_create(&l->thread, NULL, log_thread, l) != 0) {
        if (l->own_fd)
            close(l->fd);
        free(l->w);
        free(l);
        return sw_err_set(err, SW_EIO, "access log: cannot start its thread");
    }
    *out = l;
    return 0;
}

void access_log_add(struct access_log *l, int w, const char *fmt, ...)
{
    struct wlog *wl = &l->w[w];
    pthread_mutex_lock(&wl->lock);
    if (wl->b.len > LOG_CAP) {
        wl->dropped++;
    } else {
        va_list ap;
        va_start(ap, fmt);
        buf_vaddf(&wl->b, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&wl->lock);
}

void access_log_close(struct access_log *l)
{
    if (!l)
        return;
    atomic_store(&l->stop, 1);
    pthread_join(l->thread, NULL);
    for (int i = 0; i < l->n; i++) {
        buf_free(&l->w[i].b);
        pthread_mutex_destroy(&l->w[i].lock);
    }
    if (l->own_fd)
        close(l->fd);
    buf_free(&l->pending);
    free(l->w);
    free(l);
}
