/*
 * Run logs: append-only streams stored as numbered chunks.
 *
 * The one idea: an object store cannot append (an S3 object is written
 * whole), so a growing log is a series of objects
 * runs/<run-id>/logs/<job>-<step>/<chunk>, each written once, create-only,
 * and never rewritten. A writer buffers output and writes a chunk when 64 KiB
 * are buffered or the oldest buffered byte is a second old, so a live reader
 * sees output within about a second and a chatty step costs one write per
 * 64 KiB. A reader concatenates chunks 0, 1, 2, ... and stops at the first
 * that does not exist yet; it keeps the number it stopped at and resumes
 * there, which is all following a growing log takes.
 *
 * The logs of one run share a budget (struct pipeline_runlog): past it each
 * stream gets one line saying so and the rest of its output is dropped, so a
 * step printing without end costs bounded storage, and a writer holds at
 * most a bounded buffer whatever the step prints or the store does.
 *
 * A stream that ends (a step's) can be handed to the log's own thread to be
 * written (pipeline_runlog_close_later): a durable put is a few fsyncs, and a
 * job of quick steps should not wait for them between its steps. What is
 * handed over is bounded too; past the bound the caller writes it itself.
 */
#include "pipeline/run_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNKS_MAX 99999999ull
/* What a writer keeps while the store refuses its writes: past it, the
 * oldest output is dropped (the writer says so once it can write again). */
#define PENDING_MAX (16 * PIPELINE_RUNLOG_CHUNK_MAX)
/* What the closing queue holds at most: beyond, a writer is closed by its
 * caller, as if there were no queue. */
#define QUEUE_BYTES_MAX (16 * PIPELINE_RUNLOG_CHUNK_MAX)
#define QUEUE_WRITERS_MAX 256

struct pipeline_runlog {
    struct store *st;
    char id[PIPELINE_RUN_ID_SIZE];
    uint64_t max;
    _Atomic uint64_t used;
    /* The closing queue: writers handed over, written in order by thread. */
    pthread_mutex_t qlock;
    pthread_cond_t qwork; /* a writer was queued, or stop was set */
    pthread_cond_t qidle; /* the thread is done with a writer */
    struct pipeline_runlog_writer *qhead, *qtail;
    size_t qbytes, qcount;
    int busy;                     /* the thread is writing a writer of stream busy_job-busy_step */
    unsigned busy_job, busy_step; /* (it owns that writer: never read it here) */
    int started, stop;
    pthread_t thread;
    struct sw_err qerr; /* the first failure since the last sync (code 0: none) */
};

struct pipeline_runlog_writer {
    struct pipeline_runlog *log;
    unsigned job, step;
    uint64_t next; /* the number of the next chunk to write */
    struct buf pending;
    int64_t oldest_ms; /* monotonic time of the oldest byte in pending; 0: empty */
    int capped;        /* the run's budget is spent: the notice is written */
    uint64_t dropped;  /* bytes dropped because the store refused writes */
    struct pipeline_runlog_writer *qnext; /* in the closing queue */
};

static char *chunk_key(const char *id, unsigned job, unsigned step, uint64_t n)
{
    return xasprintf("runs/%s/logs/%04u-%04u/%08llu", id, job, step, (unsigned long long)n);
}

static int stream_args(const char *id, unsigned job, unsigned step, struct sw_err *err)
{
    if (!pipeline_run_id_valid(id))
        return sw_err_set(err, SW_EINVAL, "not a run id");
    if (job > PIPELINE_RUNLOG_MAX_JOB || step > PIPELINE_RUNLOG_MAX_STEP)
        return sw_err_set(err, SW_EINVAL, "log stream %u-%u: job and step are at most %d", job,
                          step, PIPELINE_RUNLOG_MAX_JOB);
    return 0;
}

int pipeline_runlog_new(struct store *st, const char *run_id, uint64_t max_bytes,
                        struct pipeline_runlog **out, struct sw_err *err)
{
    if (!pipeline_run_id_valid(run_id))
        return sw_err_set(err, SW_EINVAL, "not a run id");
    struct pipeline_runlog *l = xcalloc(1, sizeof(*l));
    l->st = st;
    memcpy(l->id, run_id, sizeof(l->id));
    l->max = max_bytes ? max_bytes : PIPELINE_RUNLOG_MAX;
    atomic_init(&l->used, 0);
    pthread_mutex_init(&l->qlock, NULL);
    pthread_cond_init(&l->qwork, NULL);
    pthread_cond_init(&l->qidle, NULL);
    *out = l;
    return 0;
}

void pipeline_runlog_free(struct pipeline_runlog *l)
{
    if (!l)
        return;
    if (l->started) {
        /* the thread writes what is queued before it stops */
        pthread_mutex_lock(&l->qlock);
        l->stop = 1;
        pthread_cond_signal(&l->qwork);
        pthread_mutex_unlock(&l->qlock);
        pthread_join(l->thread, NULL);
    }
    pthread_mutex_destroy(&l->qlock);
    pthread_cond_destroy(&l->qwork);
    pthread_cond_destroy(&l->qidle);
    free(l);
}

static int chunk_exists(struct store *st, const char *id, unsigned job, unsigned step, uint64_t n,
                        int *exists, struct sw_err *err)
{
    char *key = chunk_key(id, job, step, n);
    struct store_stat sb;
    int rc = store_head(st, key, &sb, 0, err);
    free(key);
    *exists = rc == 0;
    return rc == SW_ENOTFOUND ? 0 : rc;
}

/* The number of chunks a stream has: chunks are written in order and never
 * deleted one by one, so they are 0..n-1; found with O(log n) probes. */
static int chunk_count(struct store *st, const char *id, unsigned job, unsigned step,
                       uint64_t *count, struct sw_err *err)
{
    uint64_t lo = 0, hi = 1; /* chunk lo-1 exists (or lo is 0); find the first missing */
    int exists, rc;
    for (;;) {
        if ((rc = chunk_exists(st, id, job, step, hi - 1, &exists, err)))
            return rc;
        if (!exists)
            break;
        lo = hi;
        if (hi > CHUNKS_MAX / 2) {
            hi = CHUNKS_MAX + 1;
            break;
        }
        hi *= 2;
    }
    /* chunks < lo exist; chunk hi-1 is missing: the first missing is in [lo, hi-1]. */
    uint64_t a = lo, b = hi - 1;
    while (a < b) {
        uint64_t mid = a + (b - a) / 2;
        if ((rc = chunk_exists(st, id, job, step, mid, &exists, err)))
            return rc;
        if (exists)
            a = mid + 1;
        else
            b = mid;
    }
    *count = a;
    return 0;
}

/* Takes back from the closing queue a writer of stream (job, step) not
 * written yet, or waits until the thread is done with the one it writes:
 * a stream has one writer at a time. Returns the writer taken back, or NULL. */
static struct pipeline_runlog_writer *queue_take(struct pipeline_runlog *l, unsigned job,
                                                 unsigned step)
{
    struct pipeline_runlog_writer *w = NULL, *prev = NULL;
    pthread_mutex_lock(&l->qlock);
    for (w = l->qhead; w && !(w->job == job && w->step == step); w = w->qnext)
        prev = w;
    if (w) {
        *(prev ? &prev->qnext : &l->qhead) = w->qnext;
        if (l->qtail == w)
            l->qtail = prev;
        w->qnext = NULL;
        l->qbytes -= w->pending.len;
        l->qcount--;
    }
    while (!w && l->busy && l->busy_job == job && l->busy_step == step)
        pthread_cond_wait(&l->qidle, &l->qlock);
    pthread_mutex_unlock(&l->qlock);
    return w;
}

int pipeline_runlog_open(struct pipeline_runlog *l, unsigned job, unsigned step,
                         struct pipeline_runlog_writer **out, struct sw_err *err)
{
    uint64_t next = 0;
    int rc = stream_args(l->id, job, step, err);
    if (rc)
        return rc;
    /* handed over and not written yet: it goes on, its output still buffered */
    if ((*out = queue_take(l, job, step)))
        return 0;
    rc = chunk_count(l->st, l->id, job, step, &next, err);
    if (rc)
        return rc;
    struct pipeline_runlog_writer *w = xcalloc(1, sizeof(*w));
    w->log = l;
    w->job = job;
    w->step = step;
    w->next = next;
    *out = w;
    return 0;
}

/* Writes up to one chunk from the front of pending. */
static int write_chunk(struct pipeline_runlog_writer *w, struct sw_err *err)
{
    size_t n =
        w->pending.len < PIPELINE_RUNLOG_CHUNK_MAX ? w->pending.len : PIPELINE_RUNLOG_CHUNK_MAX;
    if (w->next > CHUNKS_MAX)
        return sw_err_set(err, SW_ENOSPC, "run %s: log %u-%u has %llu chunks, the most a log has",
                          w->log->id, w->job, w->step, CHUNKS_MAX + 1);
    char *key = chunk_key(w->log->id, w->job, w->step, w->next);
    int rc = store_put(w->log->st, key, w->pending.data, n, STORE_IF_ABSENT, NULL, err);
    if (rc == SW_EEXIST)
        rc = sw_err_set(err, SW_EEXIST,
                        "%s exists already: another process is writing this log (nothing of it "
                        "was overwritten)",
                        key);
    free(key);
    if (rc)
        return rc;
    w->next++;
    memmove(w->pending.data, w->pending.data + n, w->pending.len - n);
    w->pending.len -= n;
    w->pending.data[w->pending.len] = '\0';
    if (!w->pending.len)
        w->oldest_ms = 0;
    return 0;
}

static void add_pending(struct pipeline_runlog_writer *w, const void *data, size_t len)
{
    if (!len)
        return;
    if (!w->oldest_ms)
        w->oldest_ms = time_mono_ms();
    buf_add(&w->pending, data, len);
}

/* Keeps the writer's memory bounded while writes fail: the oldest output
 * beyond PENDING_MAX goes (counted, and said in the log later). */
static void bound_pending(struct pipeline_runlog_writer *w)
{
    if (w->pending.len <= PENDING_MAX)
        return;
    size_t drop = w->pending.len - PENDING_MAX;
    memmove(w->pending.data, w->pending.data + drop, PENDING_MAX);
    w->pending.len = PENDING_MAX;
    w->pending.data[w->pending.len] = '\0';
    w->dropped += drop;
}

static int write_due(struct pipeline_runlog_writer *w, int all, struct sw_err *err)
{
    if (w->dropped) {
        /* Said before what follows, so the gap shows where it was. */
        char note[160];
        int n = snprintf(note, sizeof(note),
                         "[slipway] %llu bytes of this log were lost: the store refused writes\n",
                         (unsigned long long)w->dropped);
        struct buf b = BUF_INIT;
        buf_add(&b, note, (size_t)n);
        buf_add(&b, w->pending.data, w->pending.len);
        buf_free(&w->pending);
        w->pending = b;
        w->dropped = 0;
    }
    while (w->pending.len >= PIPELINE_RUNLOG_CHUNK_MAX || (all && w->pending.len)) {
        int rc = write_chunk(w, err);
        if (rc) {
            bound_pending(w);
            return rc;
        }
    }
    return 0;
}

int pipeline_runlog_append(struct pipeline_runlog_writer *w, const void *data, size_t len,
                           int *truncated, struct sw_err *err)
{
    struct pipeline_runlog *l = w->log;
    size_t keep = len;
    if (truncated)
        *truncated = w->capped;
    if (w->capped || !len)
        goto write;
    /* Reserve the bytes in the run's budget; what does not fit is dropped.
     * The counter may overshoot the limit (others reserve at once): it is
     * only compared against it. */
    uint64_t before = atomic_fetch_add(&l->used, (uint64_t)len);
    if (before >= l->max)
        keep = 0;
    else if (before + len > l->max)
        keep = (size_t)(l->max - before);
    add_pending(w, data, keep);
    if (keep < len) {
        char note[200];
        char size[32];
        size_format(l->max, size, sizeof(size));
        int n = snprintf(note, sizeof(note),
                         "%s[slipway] the logs of this run reached their limit of %s: later "
                         "output is not kept\n",
                         w->pending.len && w->pending.data[w->pending.len - 1] != '\n' ? "\n" : "",
                         size);
        add_pending(w, note, (size_t)n);
        w->capped = 1;
        if (truncated)
            *truncated = 1;
    }
write:;
    int all = w->oldest_ms && time_mono_ms() - w->oldest_ms >= PIPELINE_RUNLOG_FLUSH_MS;
    return write_due(w, all, err);
}

int pipeline_runlog_flush(struct pipeline_runlog_writer *w, struct sw_err *err)
{
    return write_due(w, 1, err);
}

int pipeline_runlog_flush_due(struct pipeline_runlog_writer *w, struct sw_err *err)
{
    return pipeline_runlog_append(w, NULL, 0, NULL, err);
}

int pipeline_runlog_close(struct pipeline_runlog_writer *w, struct sw_err *err)
{
    if (!w)
        return 0;
    int rc = pipeline_runlog_flush(w, err);
    buf_free(&w->pending);
    free(w);
    return rc;
}

/* Keeps the first failure for pipeline_runlog_sync; under qlock. */
static void queue_failed(struct pipeline_runlog *l, const struct sw_err *e)
{
    if (!l->qerr.code)
        l->qerr = *e;
}

static void *queue_thread(void *arg)
{
    struct pipeline_runlog *l = arg;
    pthread_mutex_lock(&l->qlock);
    for (;;) {
        while (!l->qhead && !l->stop)
            pthread_cond_wait(&l->qwork, &l->qlock);
        struct pipeline_runlog_writer *w = l->qhead;
        if (!w)
            break; /* stopping, and nothing is left */
        l->qhead = w->qnext;
        if (!l->qhead)
            l->qtail = NULL;
        l->qbytes -= w->pending.len;
        l->qcount--;
        l->busy = 1;
        l->busy_job = w->job;
        l->busy_step = w->step;
        pthread_mutex_unlock(&l->qlock);
        struct sw_err e = {0};
        int rc = pipeline_runlog_close(w, &e);
        pthread_mutex_lock(&l->qlock);
        if (rc)
            queue_failed(l, &e);
        l->busy = 0;
        pthread_cond_broadcast(&l->qidle);
    }
    pthread_mutex_unlock(&l->qlock);
    return NULL;
}

void pipeline_runlog_close_later(struct pipeline_runlog_writer *w)
{
    if (!w)
        return;
    struct pipeline_runlog *l = w->log;
    struct sw_err e = {0};
    if (!w->pending.len && !w->dropped) {
        (void)pipeline_runlog_close(w, &e); /* nothing to write */
        return;
    }
    pthread_mutex_lock(&l->qlock);
    if (!l->started && pthread_create(&l->thread, NULL, queue_thread, l) == 0)
        l->started = 1;
    if (!l->started || l->qbytes + w->pending.len > QUEUE_BYTES_MAX ||
        l->qcount >= QUEUE_WRITERS_MAX) {
        pthread_mutex_unlock(&l->qlock);
        if (pipeline_runlog_close(w, &e) < 0) {
            pthread_mutex_lock(&l->qlock);
            queue_failed(l, &e);
            pthread_mutex_unlock(&l->qlock);
        }
        return;
    }
    w->qnext = NULL;
    *(l->qtail ? &l->qtail->qnext : &l->qhead) = w;
    l->qtail = w;
    l->qbytes += w->pending.len;
    l->qcount++;
    pthread_cond_signal(&l->qwork);
    pthread_mutex_unlock(&l->qlock);
}

int pipeline_runlog_sync(struct pipeline_runlog *l, struct sw_err *err)
{
    pthread_mutex_lock(&l->qlock);
    while (l->qhead || l->busy)
        pthread_cond_wait(&l->qidle, &l->qlock);
    struct sw_err e = l->qerr;
    l->qerr = (struct sw_err){0};
    pthread_mutex_unlock(&l->qlock);
    if (!e.code)
        return 0;
    return sw_err_set(err, e.code, "%s", e.msg);
}

/* ---- reading -------------------------------------------------------------------------------- */

static int sink_buf(void *arg, const void *data, size_t len, struct sw_err *err)
{
    buf_add(arg, data, len);
    return 0;
}

int pipeline_runlog_read(struct store *st, const char *run_id, unsigned job, unsigned step,
                         uint64_t *next, size_t max, struct buf *out, struct sw_err *err)
{
    int rc = stream_args(run_id, job, step, err);
    size_t start = out->len;
    while (!rc && (!max || out->len - start < max) && *next <= CHUNKS_MAX) {
        size_t before = out->len;
        uint64_t size = 0;
        char *key = chunk_key(run_id, job, step, *next);
        rc = store_get_stream(st, key, PIPELINE_RUNLOG_CHUNK_MAX, sink_buf, out, NULL, &size, err);
        if (rc) {
            /* Whatever of this chunk arrived is not kept: a reader resumes
             * at whole chunks. */
            out->len = before;
            if (out->data)
                out->data[before] = '\0';
        }
        if (rc == SW_ENOTFOUND) {
            free(key);
            return 0; /* not written yet: the end, for now */
        }
        if (rc == STORE_ETOOBIG)
            rc = sw_err_set(err, SW_EINVAL, "%s: a log chunk larger than %u bytes", key,
                            PIPELINE_RUNLOG_CHUNK_MAX);
        free(key);
        if (!rc)
            (*next)++;
    }
    return rc;
}

/* "JJJJ-SSSS/CCCCCCCC": the part of a chunk key after runs/<id>/logs/. */
static int parse_stream(const char *s, unsigned *job, unsigned *step)
{
    unsigned v[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 4; i++, s++) {
            if (*s < '0' || *s > '9')
                return 0;
            v[k] = v[k] * 10 + (unsigned)(*s - '0');
        }
        if (*s++ != (k ? '/' : '-'))
            return 0;
    }
    for (int i = 0; i < 8; i++, s++)
        if (*s < '0' || *s > '9')
            return 0;
    if (*s)
        return 0;
    *job = v[0];
    *step = v[1];
    return 1;
}

int pipeline_runlog_streams(struct store *st, const char *run_id,
                            struct pipeline_runlog_stream **out, size_t *n, struct sw_err *err)
{
    if (!pipeline_run_id_valid(run_id))
        return sw_err_set(err, SW_EINVAL, "not a run id");
    char *prefix = xasprintf("runs/%s/logs/", run_id);
    struct store_list l = {0};
    int rc = store_list_all(st, prefix, &l, err);
    struct pipeline_runlog_stream *v = NULL;
    size_t count = 0;
    /* Keys come sorted, and the numbers are zero-padded: chunks of one
     * stream are adjacent and streams in job, step order. */
    for (size_t i = 0; !rc && i < l.n; i++) {
        unsigned job, step;
        if (!parse_stream(l.keys[i] + strlen(prefix), &job, &step))
            continue; /* not a chunk: someone else's key, ignored */
        if (count && v[count - 1].job == job && v[count - 1].step == step)
            continue;
        v = xrealloc(v, (count + 1) * sizeof(*v));
        v[count].job = job;
        v[count].step = step;
        count++;
    }
    store_list_free(&l);
    free(prefix);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *n = count;
    return 0;
}
