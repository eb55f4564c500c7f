/* A leg's log: the lines of its steps and of the runner itself, masked,
 * written to the leg's current stream (one per step, the leg's own before
 * and after them) and echoed. A secret passed to a called workflow after a
 * leg started is caught up here, line by line, from rn->masks. */
#include "pipeline/pipeline.h"
#include "pipeline/runner_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Writes one line (already masked) to the leg's current stream and echoes it. */
void leg_line(struct leg *l, int64_t time_ms, enum pipeline_step_log_kind kind, const char *text,
              size_t len)
{
    struct runner *rn = l->rn;
    char ts[40];
    struct buf b = BUF_INIT;
    struct sw_err err = {0};

    time_format_iso(time_ms, ts, sizeof(ts));
    buf_addf(&b, "%s %s", ts, pipeline_step_log_prefix(kind));
    size_t head = b.len;
    if (atomic_load(&rn->nmasks) > atomic_load(&l->masks_seen)) {
        /* a secret passed to a called workflow after this leg started */
        pthread_mutex_lock(&rn->mask_lock);
        size_t seen = atomic_load(&l->masks_seen);
        struct pipeline_step_list late = {rn->masks.v + seen, rn->masks.n - seen, 0};
        pipeline_step_mask(&late, text, len, &b);
        pthread_mutex_unlock(&rn->mask_lock);
    } else
        buf_add(&b, text, len);
    pthread_mutex_lock(&l->wlock);
    if (l->w) {
        buf_add(&b, "\n", 1);
        (void)pipeline_runlog_append(l->w, b.data, b.len, NULL, &err);
        b.len--;
    }
    pthread_mutex_unlock(&l->wlock);
    if (rn->o->echo) {
        pthread_mutex_lock(&rn->echo_lock);
        rn->o->echo(rn->o->echo_ctx, l->rec, l->name,
                    b.data + head - strlen(pipeline_step_log_prefix(kind)),
                    b.len - head + strlen(pipeline_step_log_prefix(kind)));
        pthread_mutex_unlock(&rn->echo_lock);
    }
    buf_free(&b);
}

/* A line of the runner's own, masked with masks. */
void leg_say(struct leg *l, const struct pipeline_step_list *masks,
             enum pipeline_step_log_kind kind, const char *fmt, ...)
{
    struct buf raw = BUF_INIT, out = BUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    buf_vaddf(&raw, fmt, ap);
    va_end(ap);
    /* one line: a message may quote what a workflow holds */
    for (size_t i = 0; i < raw.len; i++)
        if (raw.data[i] == '\n' || raw.data[i] == '\r')
            raw.data[i] = ' ';
    pipeline_step_mask(masks, raw.data ? raw.data : "", raw.len, &out);
    leg_line(l, time_now_ms(), kind, out.data ? out.data : "", out.len);
    buf_free(&raw);
    buf_free(&out);
}

/* Switches the leg's stream to (rec, step); closes the one before, in the
 * background (its step is over: the next one need not wait for the store),
 * except the leg's last (step -1), written with every stream handed over
 * before the leg's end is recorded. */
void leg_stream(struct leg *l, unsigned step)
{
    struct sw_err err = {0};
    struct pipeline_runlog_writer *w = NULL, *old;

    if (l->rec > PIPELINE_RUNLOG_MAX_JOB || step > PIPELINE_RUNLOG_MAX_STEP ||
        pipeline_runlog_open(l->rn->log, (unsigned)l->rec, step, &w, &err) < 0)
        w = NULL;
    pthread_mutex_lock(&l->wlock);
    old = l->w;
    l->w = w;
    pthread_mutex_unlock(&l->wlock);
    if (old && step != (unsigned)-1)
        pipeline_runlog_close_later(old);
    else {
        (void)pipeline_runlog_close(old, &err);
        (void)pipeline_runlog_sync(l->rn->log, &err);
    }
}

/* Says one line in the leg's own stream (before or after leg_run). */
void leg_note(struct leg *l, enum pipeline_step_log_kind kind, const char *text)
{
    leg_stream(l, 0);
    leg_say(l, &l->rn->masks, kind, "%s", text);
    leg_stream(l, (unsigned)-1);
}
