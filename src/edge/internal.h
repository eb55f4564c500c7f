/*
 * Private to the edge module: release tables, sites, per-worker metrics and
 * the pieces the server, the watcher and the responder share.
 */
#ifndef SW_EDGE_INTERNAL_H
#define SW_EDGE_INTERNAL_H

#include "deploy/deploy.h"
#include "edge/edge.h"
#include "http/http.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define EDGE_MAX_SITES 64
#define EDGE_MAX_WORKERS HTTP_MAX_WORKERS
#define CACHELINE 64

/* ---- the local blob cache (cache.c) --------------------------------------- */

/* Large bodies as verified files named by their hash in one directory, each
 * counted by the tables that use it, deleted when none does (cache.c says
 * why that is safe). Every function is thread-safe. */
struct blob_cache;
/* A cache in dir (made when missing) bounded to max bytes, which this process
 * locks for its life: SW_EEXIST, naming the holder's pid, when another
 * process has it. Removes what a crashed process left half-written. Free with
 * blob_cache_free, which keeps the files for the next process. */
int blob_cache_new(const char *dir, uint64_t max, struct blob_cache **out, struct sw_err *err);
void blob_cache_free(struct blob_cache *c);
/* The cache's directory (borrowed). */
const char *blob_cache_dir(const struct blob_cache *c);
/* SW_ENOSPC, naming both sizes, when a release whose large bodies take need
 * bytes could never fit under the bound; else 0. */
int blob_cache_fits(const struct blob_cache *c, uint64_t need, struct sw_err *err);
/* Makes body hex of size bytes present and verified, streaming it from st
 * when needed, opens it into *fd (the caller closes it) and counts one
 * reference, which the caller drops with blob_cache_release after closing
 * *fd. TABLE_EHASH when the store's bytes do not match hex or size;
 * SW_ENOTFOUND when the store lacks it. */
int blob_cache_acquire(struct blob_cache *c, struct store *st, const char *hex, uint64_t size,
                       int *fd, struct sw_err *err);
void blob_cache_release(struct blob_cache *c, const char *hex);
/* Deletes the bodies no reference holds any more. */
void blob_cache_collect(struct blob_cache *c);
/* Collects, then deletes every other file in the directory that no
 * reference holds: bodies of releases an earlier process served. For once
 * the first loads are done. */
void blob_cache_sweep(struct blob_cache *c);
/* Bytes of the bodies the cache holds now, and its bound. */
uint64_t blob_cache_bytes(struct blob_cache *c);
uint64_t blob_cache_max(const struct blob_cache *c);

/* ---- release tables (table.c) -------------------------------------------- */

enum { REP_IDENTITY, REP_GZIP, REP_BR, REP_COUNT };

/* One representation of a path: the identity body or a precompressed variant. */
/* In-memory bodies from this size up are sent with sendfile from the table's memfd: below
 * it, one writev of headers and body costs less (bench/edge.sh, 8 and 16 KiB bodies). */
#define EDGE_SENDFILE_MIN (32 * 1024)

struct rep {
    /* "Content-Type: …\r\n[Content-Encoding: …\r\n]" then, from hdr + meta_off, what a 304
     * and a multipart 206 repeat (RFC 9110 §15.4.5): "Cache-Control: …\r\nETag: "…"\r\n
     * Last-Modified: …\r\n[Vary: Accept-Encoding\r\n]". */
    const char *hdr;
    uint32_t hdr_len;
    uint32_t meta_off;
    const char *etag; /* "\"<sha256>\"", inside hdr: not NUL-terminated */
    uint32_t etag_len;
    uint32_t type_len;
    const char *type; /* the Content-Type value, for the parts of multipart/byteranges; inside
                       * hdr: not NUL-terminated */
    int64_t mtime;    /* Last-Modified, seconds since the epoch */
    const char *body; /* in memory, or NULL when served from fd */
    uint64_t size;
    /* Large bodies: the blob in the local cache. In-memory ones: the table's block_fd, the
     * body at (body - body_block) in it, or -1. */
    int fd;
};

struct entry {
    const char *path; /* release path, no leading '/' */
    uint32_t path_len;
    uint32_t hash;
    struct rep rep[REP_COUNT];
    uint8_t has[REP_COUNT];
};

struct worker_ref {
    _Alignas(CACHELINE) atomic_long n;
};

/* A release loaded for one site: read-only once published. */
struct table {
    char *release_id;
    const struct site *owner; /* the site it is loaded for (its replaced set, its live table) */
    int site;
    int slot; /* SLOT_BLUE / SLOT_GREEN holding it, or 2 for a direct environment */
    struct entry *entries;
    size_t n;
    uint32_t *slots; /* open addressing: index+1 into entries, 0 = empty */
    size_t nslots;
    const struct entry *not_found; /* the release's 404.html */
    const struct entry *fallback;  /* spa_fallback */
    struct buf arena;              /* header strings */
    char *body_block;              /* every in-memory body, back to back */
    size_t block_len;
    int block_fd;  /* the memfd body_block maps, for sendfile; -1: body_block is malloc's */
    uint64_t page; /* the system's page size: where block_place aligns bodies */
    int *fds;      /* owned descriptors of large bodies */
    size_t nfds;
    struct blob_cache *cache;           /* where the large bodies are referenced */
    char (*cached)[SHA256_HEX_LEN + 1]; /* the body of each of fds, to release */
    uint64_t mem_bytes;
    struct worker_ref *refs; /* one counter per worker, touched only by that worker */
    int nworkers;
    int64_t retired_at;
};

/* Builds a table for release r on a site with config cfg: small bodies are
 * read into memory (copied from the tables in from, nfrom of them, any NULL,
 * where one holds the same body; the rest fetched, several at once on a
 * remote store; a packed body is always held in memory, its pack read once
 * up to the last body needed from it), larger ones made local in cache and
 * opened (one reference each, dropped by table_free). The tables in from are
 * only read. */
int table_load(struct store *st, const char *release_id, const struct env_config *cfg, int site,
               struct blob_cache *cache, size_t small_max, int nworkers,
               const struct table *const *from, size_t nfrom, struct table **out,
               struct sw_err *err);
void table_free(struct table *t);
/* Looks up a release path (no leading '/'). */
const struct entry *table_find(const struct table *t, const char *path, size_t len);

/* ---- the release a live one replaced (table.c) ------------------------------------- */

/* The paths a release served with 200: its files but its 404.html, to tell a regressed 404
 * (a path the release live before served, docs/edge.md) from any other. Paths only, no bodies
 * or headers: the paths' bytes plus 20 bytes per file, within the manifest parser's bounds.
 * Read-only once published. */
struct pathset_entry {
    uint32_t off, len, hash;
};
struct pathset {
    char *release_id;
    char *arena; /* the paths, each NUL-terminated */
    struct pathset_entry *v;
    size_t n;
    uint32_t *slots; /* open addressing, as a table's */
    size_t nslots;
};
/* Loads release_id's manifest (release_load: validated) into a path set; the caller frees it
 * with pathset_free. */
int pathset_load(struct store *st, const char *release_id, struct pathset **out,
                 struct sw_err *err);
void pathset_free(struct pathset *p);
/* 1 when the release had path (no leading '/') as a file other than its 404.html. */
int pathset_has(const struct pathset *p, const char *path, size_t len);

/* ---- sites ------------------------------------------------------------------ */

enum { LISTEN_LIVE, LISTEN_PREVIEW, LISTEN_ADMIN };

/* Why a site's release could not be loaded, in words safe for the public
 * (no release or blob ids: those are on the admin listener and stderr). */
enum load_failure {
    LOAD_OK = 0,
    LOAD_STATE,    /* the environment's state document is unreadable or invalid */
    LOAD_MANIFEST, /* the release's manifest is missing or invalid */
    LOAD_MISSING,  /* a body is missing from the store */
    LOAD_HASH,     /* a body does not match its hash (or its size) */
    LOAD_IO,       /* the store or the local cache could not be read or written */
    LOAD_SPACE,    /* its large bodies do not fit in the local cache (--cache-max, disk) */
};
const char *edge_failure_text(int why);
/* table_load's code for a body whose bytes do not match its name. */
#define TABLE_EHASH (-300)

struct site {
    char name[64];
    atomic_int active;
    atomic_int load_failure; /* enum load_failure of the newest attempt */
    _Atomic(struct table *) live;
    _Atomic(struct table *) preview;
    atomic_int live_state; /* 1: has a live release loaded, 0: none deployed, -1: error */
    atomic_int strategy;
    /* The paths of the release the live one replaced; NULL when there is none, it could not
     * be read, or the environment's errors: regressed_404 is off. Read by workers on a 404
     * of the live table only; freed like a table, once every worker has passed a quiescent
     * point (it is never held past a response's handling). */
    _Atomic(struct pathset *) replaced;
    atomic_int regressed_404; /* errors: regressed_404 of the environment file */
};

/* ---- metrics (metrics.c) ------------------------------------------------------ */

/*
 * One worker's counts for one environment and slot. The worker allocates it on
 * its first response there and publishes it with a release store; readers sum
 * every worker's. Only slots that answer cost memory: a block is 11,424 bytes,
 * so 4 workers serving 10 blue-green environments hold 0.9 MiB, and the bound
 * (64 workers x 64 environments x 3 slots) is 134 MiB, which allocating every
 * block at start would cost whatever the configuration.
 */
struct slot_stats {
    atomic_ulong requests[5]; /* by class: 1xx..5xx */
    atomic_ulong bytes;
    atomic_ulong duration_sum_us;
    atomic_ulong classic[EDGE_CLASSIC_BOUNDS + 1]; /* exact counts at Prometheus's bounds */
    atomic_ulong regressed_404; /* 404s respond marked as regressed (EDGE_TAG_REGRESSED) */
    struct hist duration_us;
};

struct worker_stats {
    _Alignas(CACHELINE) _Atomic(struct slot_stats *) slot[EDGE_MAX_SITES][EDGE_SLOTS];
};

/* What a listener is to the edge: the handler argument of each address. */
struct listener_info {
    struct edge *e;
    int site; /* -1 for the admin listener */
    int kind; /* LISTEN_LIVE / LISTEN_PREVIEW / LISTEN_ADMIN */
};

/* ---- the server state shared by all threads ------------------------------------ */

struct edge {
    struct edge_opts opts; /* a copy; strings borrowed from the caller */
    const struct edge_opts *o;
    int nworkers;
    struct http_server *http;
    /* Handler arguments, stable for the server's life so that a listener
     * kept across a reload keeps its sockets: [site][live, preview]. */
    struct listener_info li[EDGE_MAX_SITES][2];
    struct listener_info admin_li;
    struct http_handler admin_handler; /* with bodies for o->hook; fixed for the edge's life */
    struct site sites[EDGE_MAX_SITES];
    struct worker_stats *stats; /* nworkers */
    atomic_ulong switches[EDGE_MAX_SITES];
    atomic_ulong load_failures[EDGE_MAX_SITES]; /* failed attempts to load a release */
    atomic_int ready;
    struct access_log *log;
    struct watch *watch;
    struct blob_cache *cache;
    int64_t started_ms;
    pthread_mutex_t err_lock;   /* guards site_error, slot_release and live_slot */
    pthread_mutex_t extra_lock; /* guards extra_fn and extra_arg, held while extra_fn runs */
    void (*extra_fn)(struct buf *b, void *arg);
    void *extra_arg;
    char site_error[EDGE_MAX_SITES][sizeof(((struct sw_err *)0)->msg)];
    /* What each site's slots hold now and which is live (-1: none), for
     * edge_slot_stats: written by the watcher when it publishes tables. */
    char slot_release[EDGE_MAX_SITES][EDGE_SLOTS][RELEASE_ID_MAX + 1];
    int live_slot[EDGE_MAX_SITES];
    /* SLIPWAY_TEST_EDGE_DELAY (edge.c): responses to targets under a prefix are held. */
    struct test_delay *delay;
    size_t ndelay;
};

/* Writes a line to the log the caller of edge_start chose (stderr for
 * slipway serve); nothing when it chose none. Any thread. */
void edge_log(struct edge *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the Prometheus exposition of e into b. */
void metrics_render(struct edge *e, struct buf *b);
/* Writes the JSON answer of /_slipway/latency?QUERY (query: the bytes after
 * '?', untrusted) into b; returns its HTTP status (200, 400, 404). */
int metrics_latency(struct edge *e, const char *query, size_t len, struct buf *b);
/* Frees the workers' blocks; for edge_stop once the workers are joined. */
void metrics_free(struct edge *e);
/* A response's tag[1] is the slot that answered, plus this when it is a regressed 404. */
#define EDGE_TAG_REGRESSED EDGE_SLOTS
/* Counts a response of (site, slot) on worker's block; slot may carry EDGE_TAG_REGRESSED. */
void metrics_observe(struct edge *e, int worker, int site, int slot, int status, uint64_t bytes,
                     int64_t us);

/* ---- access log (log.c) ------------------------------------------------------------- */

struct access_log;
/* path: a file, "-" for stdout, or "store": batches put into st under logs/access/. */
int access_log_open(const char *path, struct store *st, int nworkers, struct access_log **out,
                    struct sw_err *err);
/* Appends one line to worker w's buffer; flushed by the log thread. */
void access_log_add(struct access_log *l, int w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void access_log_close(struct access_log *l);

/* ---- watcher (watch.c) ------------------------------------------------------------------ */

struct watch;
/* Loads every environment once (synchronously), then keeps polling on its own thread. */
int watch_start(struct edge *e, struct env_config **envs, size_t n, struct watch **out,
                struct sw_err *err);
/* Replaces the set of environments (SIGHUP). Takes ownership of envs. */
void watch_reload(struct watch *w, struct env_config **envs, size_t n);
void watch_stop(struct watch *w);
/* Index of the site named name (creating it when create), or -1. */
int edge_site_index(struct edge *e, const char *name, int create);

#endif
