/*
 * The access log, kept off the request path: each worker formats its line into
 * its own buffer (under its own mutex, which only the log thread ever shares),
 * and a log thread swaps the buffers out and writes them every 200 ms. A slow
 * disk delays the log, never a response; if a buffer reaches its cap before the
 * flush, lines are dropped and counted rather than blocking a worker.
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

struct wlog {
    _Alignas(CACHELINE) pthread_mutex_t lock;
    struct buf b;
    unsigned long dropped;
};

struct access_log {
    int fd, own_fd;
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
        if (out.len)
            fd_write_all(l->fd, out.data, out.len);
        buf_free(&out);
    }
}

static void *log_thread(void *arg)
{
    struct access_log *l = arg;
    while (!atomic_load(&l->stop)) {
        usleep(200 * 1000);
        flush_all(l);
    }
    flush_all(l);
    return NULL;
}

int access_log_open(const char *path, int nworkers, struct access_log **out, struct sw_err *err)
{
    struct access_log *l = xcalloc(1, sizeof(*l));
    if (!strcmp(path, "-")) {
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
    free(l->w);
    free(l);
}
