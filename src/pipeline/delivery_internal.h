/* Private to src/pipeline/: the built-in delivery steps (delivery.c) —
 * slipway/deploy, switch, rollback, health-check, scan and watch — as the runner
 * calls them, and the pieces the unit tests check on their own: reading
 * `with:` and the small HTTP client of health-check. */
#ifndef SW_PIPELINE_DELIVERY_INTERNAL_H
#define SW_PIPELINE_DELIVERY_INTERNAL_H

#include "pipeline/pipeline.h"

#include <stdatomic.h>

/* ---- with: ---------------------------------------------------------------------------------- */

#define DELIVERY_RETRIES_MAX 1000
#define DELIVERY_INTERVAL_MAX_MS (3600LL * 1000)
#define DELIVERY_URL_PATH_MAX 2048
/* watch: how long after a window's end the step waits for the verdict that
 * `slipway serve` records (its watch looks every second; the rest is slack
 * for a loaded machine and a store shared over a network). */
#define DELIVERY_WATCH_GRACE_MS (30LL * 1000)

/* A step's with:, read and checked. Strings are owned (delivery_with_free). */
struct delivery_with {
    char *env;           /* deploy, switch, rollback, health-check, watch: required */
    char *path;          /* deploy, scan: relative to the workspace (NULL: the workspace);
                          * health-check: the request target, "/" by default */
    char *message;       /* deploy: kept in the history (NULL: none given) */
    char *to;            /* rollback: a release id or unique prefix/suffix (NULL: previous) */
    int do_switch;       /* deploy: switch (default 0) */
    int dry_run;         /* rollback: check and say what it would do, change nothing (default 0) */
    int idle;            /* health-check: slot idle (default live) */
    int status;          /* health-check: the status wanted, 100..599 (default 200) */
    char *contains;      /* health-check: a substring the body must hold (NULL: none) */
    int retries;         /* health-check: attempts in all, 1..DELIVERY_RETRIES_MAX (default 10) */
    int64_t interval_ms; /* health-check: between attempts, 0..1h (default 1s) */
    int64_t duration_ms; /* watch: the window, 1s..7d (0: the environment's watch.duration) */
    char *release;       /* watch: a release id or unique prefix/suffix (NULL: the live one) */
    /* Keys the step does not know, as GitHub warns about them: "Unexpected
     * input(s) 'x', valid inputs are ['env', ...]"; NULL when none. */
    char *unknown;
};

/* Reads with (an object of strings: the step's with:, evaluated) for the
 * delivery step b. An empty value is as if it were not given. A missing env,
 * or a bad switch, slot, status, retries, interval or path, is SW_EINVAL with
 * one line naming the key, what it takes and what it got. Free out with
 * delivery_with_free, also after an error. */
int delivery_with_parse(enum pipeline_builtin b, const json_t *with, struct delivery_with *out,
                        struct sw_err *err);
void delivery_with_free(struct delivery_with *w);

/* ---- the health-check client ----------------------------------------------------------------- */

#define DELIVERY_HTTP_HEAD_MAX (64 * 1024)       /* bytes of a response's head */
#define DELIVERY_HTTP_BODY_MAX ((size_t)1 << 20) /* bytes of a body kept and looked at */

struct delivery_http_response {
    int status;            /* 0 until a status line was read */
    char status_line[256]; /* "HTTP/1.1 200 OK", control characters as '?' */
    char *body;            /* NUL-terminated after body_len bytes (which may hold NULs) */
    size_t body_len;
    int truncated; /* the body went on beyond what was kept */
};
void delivery_http_response_free(struct delivery_http_response *r);

/* Decodes the response in raw[0..len) (eof: the peer closed after it) into
 * res, keeping at most max_body bytes of the body (the rest is read past and
 * counted as truncated): Content-Length, chunked (RFC 9112 section 7.1) or
 * close-delimited bodies; 1xx interim responses are skipped. 1 when the
 * response is complete (or max_body is reached), 0 when more bytes are
 * needed, SW_EINVAL (err says why) when it is not HTTP/1.x. Pure. */
int delivery_http_parse(const char *raw, size_t len, int eof, size_t max_body,
                        struct delivery_http_response *res, struct sw_err *err);

/* One GET of target (a path starting with '/') from addr ("HOST:PORT",
 * "[v6]:PORT"; a wildcard host is reached on loopback), as HTTP/1.1 with
 * Connection: close, no redirect followed, all within timeout_ms; body kept
 * to max_body bytes. Errors (SW_EIO, also for a timeout; SW_EINVAL for what
 * is not HTTP) say what failed in one line ("connect: Connection refused",
 * "response: timed out"). Free res with
 * delivery_http_response_free whatever the outcome. Blocking; thread-safe. */
int delivery_http_get(const char *addr, const char *target, int64_t timeout_ms, size_t max_body,
                      struct delivery_http_response *res, struct sw_err *err);

/* "http://HOST:PORT" for a listener address, with a wildcard host made the
 * loopback one (what a client can reach). Caller frees. */
char *delivery_addr_url(const char *addr);

/* ---- the steps ------------------------------------------------------------------------------- */

/* A line for the step's log (one line, not masked yet; already escaped where
 * it quotes what came from outside). */
typedef void delivery_say_fn(void *ctx, enum pipeline_step_log_kind kind, const char *text);

/* One delivery step. Borrowed. */
struct delivery_step {
    struct store *st;
    /* The server's project: environments are <project>/.slipway/environments,
     * never the checked-out commit's. NULL: none (every step needing an
     * environment fails saying so). */
    const char *project;
    const char *workspace; /* github.workspace (absolute) */
    const char *run_id, *sha, *ref, *actor;
    const char *uses; /* as written ("slipway/deploy@v1"), for messages */
    const json_t *with;
    const _Atomic int *cancel; /* health-check and watch stop waiting when non-zero */
    delivery_say_fn *say;
    void *ctx;
    /* When a waiting step (watch) must give up: the sooner of its
     * timeout-minutes and its job's (time_mono_ms); 0: never. On reaching it
     * the step fails and sets *timed_out (NULL: not told). */
    int64_t deadline_mono;
    int *timed_out;
};

/* Runs step b (one of PIPELINE_BUILTIN_SLIPWAY_*), its outputs into outputs
 * (strings). docs/pipelines.md, "Delivery steps". */
enum pipeline_step_outcome delivery_step_run(const struct delivery_step *d, enum pipeline_builtin b,
                                             json_t *outputs);

#endif
