/*
 * edge — the static-file handler that serves each environment's live slot
 * (and, for blue-green, the idle slot on its preview address), switching
 * releases atomically while it runs, on the http module's server.
 *
 * A watcher thread polls environment state in the store, loads new releases
 * into read-only tables and publishes each with one atomic pointer store.
 * Requests in flight finish on the table they started on; a table is freed
 * once no worker holds it. The caller owns the process: its signals, its
 * other services, its logging.
 */
#ifndef SW_EDGE_H
#define SW_EDGE_H

#include "base/base.h"
#include "http/http.h"
#include "release/release.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

struct edge_opts {
    const char *envs_dir;   /* directory of environment files (.slipway/environments) */
    const char *cache_dir;  /* local blob cache for large bodies (.slipway/cache/blobs) */
    struct store *store;    /* borrowed for the whole run; must be thread-safe */
    const char *admin;      /* "HOST:PORT" for metrics and details, or NULL: none */
    const char *access_log; /* a path, "-" for stdout, or NULL (off) */
    struct http_opts http;  /* workers, timeouts, drain, connection limit (http_opts_init) */
    int64_t poll_ms;        /* environment state poll interval (default 50 ms) */
    size_t small_body_max;  /* bodies up to this live in memory (default 64 KiB) */
    uint64_t cache_max;     /* bound of the local blob cache in bytes (default 10 GiB) */
    /* Where the edge's own lines go (a release that failed to load, its
     * recovery): one line without a newline per call, from any thread.
     * NULL: nowhere. */
    void (*log)(void *arg, const char *line);
    void *log_arg;
    /* POST /_slipway/hooks/NAME on the admin listener (and nowhere else): hook
     * gets the normalised path and the request, with its body (at most
     * hook_body_max bytes; 413 beyond), puts a JSON answer in out and returns
     * its status; a 401 gets "WWW-Authenticate: Bearer". NULL: no hooks (404),
     * and the admin listener takes no request bodies. Runs on a worker thread,
     * several at once: it must be thread-safe and must not block. */
    int (*hook)(void *arg, const char *path, const struct http_request *req, struct buf *out);
    void *hook_arg;
    uint64_t hook_body_max; /* default 1 MiB */
    /* Called on the watcher thread when an environment's state reaches a new
     * generation (a deploy, switch or rollback by any process), with what its
     * last change did: action "deploy", "switch" or "rollback", the release it
     * made live or wrote to a slot (NULL: none), when (ms since the epoch).
     * Not for what the watcher finds at start or on an environment new to a
     * reload. Two changes between two polls are one call, for the newer. Must
     * not block. NULL: none. */
    void (*on_change)(void *arg, const char *env, const char *action, const char *release,
                      int64_t at_ms);
    void *on_change_arg;
};

/* Fills o with the defaults above (fields that need a value stay NULL). */
void edge_opts_init(struct edge_opts *o);

struct edge;

/* Loads the environment files, binds every address (SW_EEXIST naming the
 * address and file when another process holds one), loads every live and
 * preview release once and starts serving; returns when requests are being
 * answered. o's strings and store must outlive the edge. Stop and free with
 * edge_stop. The caller should block the signals it handles before calling:
 * the edge's threads inherit its mask. */
int edge_start(const struct edge_opts *o, struct edge **out, struct sw_err *err);
/* Re-reads the environment files: new environments are served, removed ones
 * stop, changed addresses move, without dropping connections on unchanged
 * listeners. On error (a bad file, an address another process holds)
 * nothing changes. *nenvs: how many environments are now served. */
int edge_reload(struct edge *e, size_t *nenvs, struct sw_err *err);
/* Registers fn to append more Prometheus exposition text (families of its
 * own, complete with HELP and TYPE) at the end of every /_slipway/metrics
 * answer: how modules above the edge (monitor) add their figures without the
 * edge knowing them. fn runs on a worker thread serving the admin listener,
 * never for a public one, one call at a time (under a lock of the edge); it
 * must not block for long nor call this function (it would wait on itself).
 * NULL fn removes it; once this returns, the previous fn is neither running
 * nor called again, so its arg may be freed. Thread-safe. */
void edge_set_metrics_extra(struct edge *e, void (*fn)(struct buf *b, void *arg), void *arg);
/* Stops accepting, finishes in-flight requests within drain_timeout_ms, and
 * frees everything. NULL is a no-op. */
void edge_stop(struct edge *e);

/* ---- what each environment's slots have served -------------------------------------- */

/* The slots requests are counted by: a blue-green environment's two, or a direct one's. */
enum { EDGE_SLOT_BLUE, EDGE_SLOT_GREEN, EDGE_SLOT_DIRECT, EDGE_SLOTS };
/* "blue", "green", "direct"; NULL for any other number. */
const char *edge_slot_name(int slot);

/* Prometheus's classic buckets of the duration histogram, in µs: 0.005 s to 10 s. */
#define EDGE_CLASSIC_BOUNDS 11
extern const uint64_t edge_classic_us[EDGE_CLASSIC_BOUNDS];

/* A duration is the time from a request head's arrival to the last byte of its
 * response handed to the kernel, in µs. */
struct edge_slot_stats {
    uint64_t requests[5]; /* by status class: [0] 1xx ... [4] 5xx (and any other status) */
    uint64_t bytes;       /* response bytes written, headers and bodies */
    uint64_t duration_sum_us;
    /* Durations by classic bucket, not cumulative: [k] counts those in
     * (edge_classic_us[k-1], edge_classic_us[k]], the last those above 10 s. */
    uint64_t classic[EDGE_CLASSIC_BOUNDS + 1];
    struct hist duration_us; /* every duration (base.h: hist_quantile and friends) */
    /* 404s of the live address for a path the release live before this one served with 200
     * (a file the release lost; docs/edge.md "Regressed 404s"), also counted in requests[3]. */
    uint64_t regressed_404;
    /* 1: the environment counts regressed 404s as errors (errors: regressed_404, the
     * default), so its errors are requests[4] + regressed_404; 0: only requests[4] (and
     * regressed_404 stays as it was: none are counted while off). */
    int regressed_404_on;
    int live;                         /* 1: the slot serves the environment's live address now */
    char release[RELEASE_ID_MAX + 1]; /* the release the slot holds now; "" when none */
};

/*
 * Copies what slot (EDGE_SLOT_*) of environment env has served since the edge
 * started, summed over the workers, into *out (the caller's: 11.5 KiB, on the
 * heap or a thread's stack). SW_ENOTFOUND when the edge has never served an
 * environment of that name, SW_EINVAL for another slot. Thread-safe, from any
 * thread while the edge runs, and never slows a request: the workers' counters
 * are read while they count, so the fields are not one instant's, but each
 * only grows. A slot's requests are counted under the slot that served them,
 * whatever release it held then: release says what it holds now.
 */
int edge_slot_stats(struct edge *e, const char *env, int slot, struct edge_slot_stats *out,
                    struct sw_err *err);

#endif
