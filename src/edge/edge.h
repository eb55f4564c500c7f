/*
 * edge — the HTTP/1.1 server that serves each environment's live slot (and,
 * for blue-green, the idle slot on its preview address), switching releases
 * atomically while it runs.
 *
 * One worker thread per core, each with its own epoll loop and its own
 * SO_REUSEPORT socket for every address; a watcher thread polls environment
 * state in the store, loads new releases into read-only tables and publishes
 * each with one atomic pointer store. Requests in flight finish on the table
 * they started on; a table is freed once no worker holds it.
 */
#ifndef SW_EDGE_H
#define SW_EDGE_H

#include "base/base.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

struct edge_opts {
    const char *envs_dir;      /* directory of environment files (.slipway/environments) */
    const char *cache_dir;     /* local blob cache for large bodies (.slipway/cache/blobs) */
    struct store *store;       /* borrowed for the whole run; must be thread-safe */
    const char *admin;         /* "HOST:PORT" for /_slipway/ only, or NULL: on every listener */
    const char *access_log;    /* a path, "-" for stdout, or NULL (off) */
    int workers;               /* 0: one per core */
    int64_t header_timeout_ms; /* whole request head must arrive within (default 10 s) */
    int64_t idle_timeout_ms;   /* idle keep-alive connections close after (default 60 s) */
    int64_t drain_timeout_ms;  /* SIGTERM: in-flight requests get this long (default 10 s) */
    int64_t poll_ms;           /* environment state poll interval (default 50 ms) */
    int max_connections;       /* beyond this, 503 and close (default 10000) */
    size_t small_body_max;     /* bodies up to this live in memory (default 64 KiB) */
    /* Called once when every listener is bound and the first state poll is
     * done; for tests and readiness messages. May be NULL. */
    void (*on_ready)(void *arg);
    void *on_ready_arg;
};

/* Fills o with the defaults above (fields that need a value stay NULL). */
void edge_opts_init(struct edge_opts *o);

/* Runs the server until SIGTERM or SIGINT (drain, then return 0). SIGHUP
 * reloads the environment files. The calling thread handles signals; it must
 * be the only thread when edge_run is called. Errors at start-up (an address
 * in use, a bad environment file) return a negative code with err set. */
int edge_run(const struct edge_opts *o, struct sw_err *err);

#endif
