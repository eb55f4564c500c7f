/*
 * The upload progress line of release create and deploy DIR: one line on
 * stderr, redrawn in place five times a second while a release is made, and
 * cleared at the end, so what the command prints afterwards reads as it does
 * without it. Only on a terminal: with stderr a file or a pipe, --json or
 * --quiet, nothing at all is drawn.
 *
 * What the line says is a pure function of a few counters
 * (cli_progress_line: state in, text out, unit-tested); the thread here only
 * reads the counters (struct release_progress, store_bytes_sent), draws and
 * sleeps.
 */
#include "cmd/cmd.h"
#include "release/release.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 20
#define REDRAW_MS 200

/* "0:17", "12:05", "1:02:03"; more than 99 hours is not worth a number. */
static void add_duration(struct buf *b, int64_t ms)
{
    int64_t s = (ms + 999) / 1000;
    if (s > 99 * 3600 + 59 * 60 + 59)
        buf_adds(b, ">99h");
    else if (s >= 3600)
        buf_addf(b, "%d:%02d:%02d", (int)(s / 3600), (int)(s / 60 % 60), (int)(s % 60));
    else
        buf_addf(b, "%d:%02d", (int)(s / 60), (int)(s % 60));
}

void cli_progress_line(const struct cli_progress_view *v, int width, struct buf *out)
{
    if (width <= 1)
        width = 80;
    size_t files_total = v->files_total < v->files_done ? v->files_done : v->files_total;
    uint64_t bytes_total = v->bytes_total < v->bytes_done ? v->bytes_done : v->bytes_total;
    /* How far: by bytes, or by files when every file is empty. */
    double frac = bytes_total   ? (double)v->bytes_done / (double)bytes_total
                  : files_total ? (double)v->files_done / (double)files_total
                  : v->counted  ? 1.0
                                : 0.0;
    char sent[32], rate[32];
    cli_human_size(v->sent, sent, sizeof(sent));
    uint64_t per_s =
        v->elapsed_ms > 0 ? (uint64_t)((double)v->sent * 1000.0 / (double)v->elapsed_ms) : 0;
    cli_human_size(per_s, rate, sizeof(rate));

    struct buf bar = BUF_INIT, files = BUF_INIT, eta = BUF_INIT, line = BUF_INIT;
    if (v->counted) {
        int filled = (int)(frac * BAR_WIDTH + 1e-9);
        buf_adds(&bar, "[");
        for (int i = 0; i < BAR_WIDTH; i++)
            buf_adds(&bar, i < filled ? "#" : "-");
        buf_adds(&bar, "] ");
        buf_addf(&files, "%zu/%zu files", v->files_done, files_total);
        buf_adds(&eta, "  ETA ");
        if (frac >= 1.0)
            add_duration(&eta, 0);
        else if (frac <= 0.0 || v->elapsed_ms <= 0)
            buf_adds(&eta, "--:--");
        else
            add_duration(&eta, (int64_t)((double)v->elapsed_ms * (1.0 - frac) / frac));
    } else {
        /* The total is still being counted: no bar, no ETA, no guess. */
        buf_addf(&files, "%zu files", v->files_done);
    }
    /* The widest form that fits, leaving the last column free so that the
     * terminal never wraps the line (a wrapped line cannot be redrawn with
     * a carriage return). */
    for (int form = 0; form < 4; form++) {
        buf_reset(&line);
        if (form == 0)
            buf_add(&line, bar.data ? bar.data : "", bar.len);
        buf_add(&line, files.data, files.len);
        buf_addf(&line, "  %s sent", sent);
        if (form <= 2)
            buf_addf(&line, "  %s/s", rate);
        if (form <= 1)
            buf_add(&line, eta.data ? eta.data : "", eta.len);
        if (line.len < (size_t)width)
            break;
    }
    if (line.len >= (size_t)width)
        line.len = (size_t)width - 1;
    buf_add(out, line.data, line.len);
    buf_free(&bar);
    buf_free(&files);
    buf_free(&eta);
    buf_free(&line);
}

/* ---- drawing ------------------------------------------------------------------------------- */

struct cli_progress {
    struct store *st;
    struct release_progress *rp;
    uint64_t sent0;
    int64_t start_ms;
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

static void put_all(const char *s, size_t n)
{
    while (n) {
        ssize_t k = write(STDERR_FILENO, s, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return; /* a display that cannot be drawn is no failure */
        s += k;
        n -= (size_t)k;
    }
}

static void draw(struct cli_progress *p)
{
    struct cli_progress_view v = {
        .files_done = atomic_load(&p->rp->files_done),
        .files_total = atomic_load(&p->rp->files_total),
        .bytes_done = atomic_load(&p->rp->bytes_done),
        .bytes_total = atomic_load(&p->rp->bytes_total),
        .counted = atomic_load(&p->rp->counted),
        .sent = store_bytes_sent(p->st) - p->sent0,
        .elapsed_ms = time_mono_ms() - p->start_ms,
    };
    struct winsize ws;
    int width = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80;
    struct buf b = BUF_INIT;
    buf_adds(&b, "\r");
    cli_progress_line(&v, width, &b);
    buf_adds(&b, "\033[K"); /* the rest of a longer line drawn before */
    put_all(b.data, b.len);
    buf_free(&b);
}

static void *progress_main(void *arg)
{
    struct cli_progress *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        pthread_mutex_unlock(&p->mu);
        draw(p);
        pthread_mutex_lock(&p->mu);
        struct timespec until = time_mono_deadline(REDRAW_MS);
        while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct cli_progress *cli_progress_start(struct cli *cli, struct release_progress *rp)
{
    const char *term = getenv("TERM");
    if (cli->json || cli->quiet || !cli->store || !isatty(STDERR_FILENO) ||
        (term && !strcmp(term, "dumb")))
        return NULL;
    struct cli_progress *p = xcalloc(1, sizeof(*p));
    p->st = cli->store;
    p->rp = rp;
    p->sent0 = store_bytes_sent(cli->store);
    p->start_ms = time_mono_ms();
    /* Read from the first frame on, before release_create resets them. */
    atomic_store(&rp->files_total, 0);
    atomic_store(&rp->files_done, 0);
    atomic_store(&rp->bytes_total, 0);
    atomic_store(&rp->bytes_done, 0);
    atomic_store(&rp->counted, 0);
    pthread_mutex_init(&p->mu, NULL);
    cond_init_monotonic(&p->cv);
    if (pthread_create(&p->tid, NULL, progress_main, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL; /* no display: the command runs the same */
    }
    return p;
}

void cli_progress_stop(struct cli_progress *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->tid, NULL);
    draw(p); /* the end state, then the line is cleared */
    put_all("\r\033[K", 4);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
