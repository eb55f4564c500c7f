/*
 * base — small building blocks that know nothing about slipway: the error
 * object, growable buffers, hashing, time, durations, file-system helpers,
 * YAML documents with positions, child processes, sortable ids, reading
 * JSON documents field by field and log-linear histograms.
 *
 * Ownership: every function returning heap memory says so; the caller frees
 * it with free() unless another function is named. Allocation failure aborts
 * the process (as git's xmalloc does): a delivery tool that runs out of memory
 * cannot recover meaningfully, and checking every small allocation would hide
 * the errors that matter.
 */
#ifndef SW_BASE_H
#define SW_BASE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* ---- errors ---------------------------------------------------------- */

/* Generic codes shared by every module; modules may add their own below -100. */
enum {
    SW_OK = 0,
    SW_EIO = -1,       /* an operating-system or transport failure */
    SW_ENOTFOUND = -2, /* the thing named does not exist */
    SW_EEXIST = -3,    /* it exists and must not */
    SW_ECONFLICT = -4, /* a compare-and-swap or lock lost to someone else */
    SW_EINVAL = -5,    /* bad input: syntax, value, name */
    SW_ENOSPC = -6,    /* no space left */
    SW_EACCES = -7,    /* permission denied / read-only */
    SW_ECHANGED = -8,  /* input changed while it was being read */
};

/* Human detail of the last failure: "releases/r-1.json: unexpected end of JSON". */
struct sw_err {
    int code;
    char msg[1024];
};

/* Sets err (when non-NULL) and returns code, so callers can `return sw_err_set(...)`. */
int sw_err_set(struct sw_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like sw_err_set with ": strerror(errno_value)" appended; maps errno to a code. */
int sw_err_sys(struct sw_err *err, int errno_value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "prefix: " to an error already set. Returns err->code. */
int sw_err_prefix(struct sw_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Maps an errno value to an SW_E* code. */
int sw_errno_code(int errno_value);

/* ---- memory ------------------------------------------------------------ */

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
/* Zeroed memory aligned to align (a power of two), for structs declared
 * _Alignas(cache line): calloc only guarantees 16 bytes. Free with free(). */
void *xcalloc_aligned(size_t n, size_t size, size_t align);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrdup_or_null(const char *s); /* NULL for NULL */
char *xstrndup(const char *s, size_t n);
/* Returns a malloc'd formatted string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- growable buffer ---------------------------------------------------- */

/* A NUL-terminated growable byte buffer. BUF_INIT is a valid empty buffer. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
};
#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_adds(struct buf *b, const char *s);
void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vaddf(struct buf *b, const char *fmt, va_list ap);
/* Appends v in decimal: buf_addf(b, "%llu", v) without printf's cost, for hot paths. */
void buf_add_u64(struct buf *b, uint64_t v);
void buf_reset(struct buf *b);
/* Returns the data (never NULL; caller frees) and leaves b empty. */
char *buf_detach(struct buf *b, size_t *len);
void buf_free(struct buf *b);

/* ---- strings ------------------------------------------------------------ */

int str_starts_with(const char *s, const char *prefix);
int str_ends_with(const char *s, const char *suffix);
/* Writes 2*len hex digits and a NUL into out. */
void hex_encode(const unsigned char *in, size_t len, char *out);
/* 1 when s is exactly n lowercase hex digits (then its NUL), else 0. */
int hex_lower_valid(const char *s, size_t n);
/* 1 when s is well-formed UTF-8 (RFC 3629 section 4: no overlong forms, no
 * surrogates, nothing above U+10FFFF); with printable, also free of control
 * characters (C0, DEL, C1). */
int utf8_valid(const char *s, int printable);
/* 1 when s is text a person could have meant: valid UTF-8 of at most max bytes
 * without control characters, except line breaks and tabs when multiline. */
int text_valid(const char *s, size_t max, int multiline);
/* Appends s for printing on a terminal: control characters become escapes
 * ("\n", "\r", "\t", "\x1b"), a backslash becomes "\\", bytes that are not
 * UTF-8 become "\xNN", and C1 controls, line separators and bidirectional
 * controls become "\uNNNN"; everything else is copied. The result is one
 * line and says unambiguously what s was. */
void buf_add_escaped(struct buf *b, const char *s);

/* ---- hashing ------------------------------------------------------------- */

#define SHA256_HEX_LEN 64
struct sha256_ctx;
/* Incremental SHA-256; sha256_new never fails (aborts on OOM). */
struct sha256_ctx *sha256_new(void);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
/* Writes 64 hex digits + NUL into hex and frees c. */
void sha256_final_hex(struct sha256_ctx *c, char hex[SHA256_HEX_LEN + 1]);
void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]);
/* FNV-1a, 64 bits: for hash tables and local names, never against an adversary
 * who wants a collision. No set-up: the first SHA-256 of a process costs
 * OpenSSL's (3-4 ms here). */
uint64_t hash_fnv1a(const void *data, size_t len);

/* ---- time ------------------------------------------------------------------ */

int64_t time_now_ms(void);  /* wall clock, ms since the epoch */
int64_t time_mono_ms(void); /* monotonic clock, ms */
/* Formats ms since the epoch as "2026-11-25T08:25:06.123Z" into out (>= 32 bytes). */
void time_format_iso(int64_t ms, char *out, size_t outlen);
/* Parses what time_format_iso writes (fraction optional). 0 or SW_EINVAL. */
int time_parse_iso(const char *s, int64_t *ms);
/* Parses "90s", "30m", "24h", "7d", "1h30m" into milliseconds. 0 or SW_EINVAL
 * (also for a total above DURATION_MAX_MS, however many parts add up to it). */
#define DURATION_MAX_MS (100LL * 365 * 86400 * 1000)
int duration_parse(const char *s, int64_t *ms);
/* Formats a duration compactly: "3d4h", "5m", "12s" into out. */
void duration_format(int64_t ms, char *out, size_t outlen);
/* Initialises c so that its timed waits count on the monotonic clock (a step
 * of the wall clock moves no deadline); with time_mono_deadline, ms from now. */
void cond_init_monotonic(pthread_cond_t *c);
struct timespec time_mono_deadline(int64_t ms);

/* ---- sizes ------------------------------------------------------------------ */

/* Parses a size: digits, optionally followed by a unit K, M, G, T, P or E
 * (any case, optionally with "B" or "iB"), each a power of 1024: "10G",
 * "512MiB", "64k", "1048576", "100B". No sign, fraction or space; a value
 * beyond 2^64-1 is SW_EINVAL. 0 or SW_EINVAL (*bytes unchanged). */
int size_parse(const char *s, uint64_t *bytes);
/* Formats a size for people: "10 GiB", "1.5 MiB", "512 bytes", into out. */
void size_format(uint64_t bytes, char *out, size_t outlen);

/* ---- files ------------------------------------------------------------------ */

/* write(2) all of len bytes, retrying on EINTR and short writes. 0 or -errno. */
int fd_write_all(int fd, const void *data, size_t len);
/* Reads a whole file into *data (NUL-terminated, caller frees). */
int file_read_all(const char *path, char **data, size_t *len, struct sw_err *err);
/* mkdir -p with mode 0755. */
int fs_mkdir_p(const char *path, struct sw_err *err);
/* fsync the directory at path (makes a rename or unlink in it durable). */
int fs_fsync_dir(const char *path, struct sw_err *err);
/* Writes data to path atomically: temp file beside it, fsync, rename, fsync dir. */
int fs_write_atomic(const char *path, const void *data, size_t len, struct sw_err *err);
/* Replaces path with data (temp file beside it, rename) without fsync: for
 * caches, whose reader must refuse what a crash may leave (the old file, the
 * new one, an empty or a torn one). */
int fs_write_replace(const char *path, const void *data, size_t len, struct sw_err *err);
/* rm -rf path, in this process: a symbolic link is removed, never followed;
 * a missing path is 0. Deeper than 128 levels, or where a directory cannot
 * be read, it stops with an error (what it could remove is gone): the caller
 * may fall back on rm(1). */
int fs_remove_tree(const char *path, struct sw_err *err);
/* Joins two path parts with one '/'. Caller frees. */
char *path_join(const char *a, const char *b);
/* Returns the number of online CPUs, at least 1. */
int sys_ncpu(void);
/* Tunes malloc for a command that runs and exits (not a server): one arena,
 * a heap grown in large steps and kept, advised for transparent huge pages.
 * Page faults were a quarter of a no-change deploy's time on a VM where each
 * costs about 10 us; this halves their number. Call once, first. No-op
 * without glibc. */
void sys_malloc_for_batch(void);
/* A library loaded when first needed (libcurl, libcrypto: see curl.h and
 * crypto.h): opens soname and fills the table of function pointers at out,
 * each syms[i].name at byte offset syms[i].off. 0, or -1 with why[] saying
 * what is missing: "cannot load SONAME (...); INSTALL" or "SONAME has no
 * NAME (VERSION)". The library stays loaded; on failure nothing of it is
 * used. */
struct sys_sym {
    const char *name;
    size_t off;
};
int sys_load_table(const char *soname, const struct sys_sym *syms, size_t n, void *out,
                   const char *install, const char *version, char *why, size_t whylen);
/* "user" from $USER / getpwuid, never NULL; static storage. */
const char *sys_user(void);
/* Host name, never NULL; static storage. */
const char *sys_host(void);

/* ---- YAML documents -------------------------------------------------------------- */

/* A YAML document loaded (with libyaml) into a small tree in which every node
 * keeps its position, so every complaint about a configuration file can name
 * FILE:LINE:COL. Scalars keep how they were written (a plain `yes` and a
 * quoted "yes" are different things to a schema) and stay strings: typing is
 * the schema's job (yaml_bool, yaml_int). Mappings keep their key order.
 *
 * Loading refuses, each with FILE:LINE:COL: syntax errors, a second document,
 * a key that is not a scalar, a duplicate key (naming both positions), a
 * scalar holding a NUL, and anything over the limits. Anchors and aliases are
 * resolved by sharing: an alias is a node at the alias's position with the
 * anchored node's text or children (the same nodes, not copies), and it
 * counts as all the nodes it stands for, so a "billion laughs" document is
 * refused at max_nodes instead of growing. An unknown anchor, and an alias
 * inside the node it names, are refused. Merge keys ("<<") are not
 * interpreted: "<<" is an ordinary key. The tree is immutable and may be read
 * from several threads. */

enum yaml_node_kind { YAML_NODE_SCALAR = 1, YAML_NODE_SEQ, YAML_NODE_MAP };
enum yaml_node_style {
    YAML_NODE_PLAIN,  /* foo, true, 8081 (and collections) */
    YAML_NODE_SINGLE, /* 'foo' */
    YAML_NODE_DOUBLE, /* "foo" */
    YAML_NODE_LITERAL,
    YAML_NODE_FOLDED
};

struct yaml_pair;
struct yaml_node {
    enum yaml_node_kind kind;
    enum yaml_node_style style; /* scalars; YAML_NODE_PLAIN for collections */
    size_t line, col;           /* 1-based, in characters, of the node (its anchor or tag) */
    const char *file;           /* the document's name, for messages */
    const char *tag;            /* an explicit tag ("tag:yaml.org,2002:str" for !!str), or NULL */
    const char *str;            /* scalars: the value, NUL-terminated, no NUL inside */
    size_t len;                 /* scalars: strlen(str); sequences: items; mappings: pairs */
    const struct yaml_node *const *items; /* sequences */
    const struct yaml_pair *pairs;        /* mappings, in document order; keys are scalars */
    const struct yaml_pair *const *index; /* mappings: pairs sorted by key (private) */
};
struct yaml_pair {
    const struct yaml_node *key, *value;
};

/* Zero (or a NULL limits pointer) means the default, given after each field. */
struct yaml_limits {
    size_t max_bytes;  /* input size: 4 MiB */
    size_t max_nodes;  /* nodes, each alias counting as the nodes it stands for: 100000 */
    size_t max_depth;  /* nesting, a top-level scalar being 1: 64 */
    size_t max_scalar; /* bytes of one scalar: 1 MiB */
};

struct yaml_doc {
    const char *name;             /* as given to the loader */
    const struct yaml_node *root; /* never NULL: an empty file is an empty plain scalar at 1:1 */
};

/* Parses data (len bytes, UTF-8) named name in messages into *out (free with
 * yaml_doc_free). SW_EINVAL with "NAME:LINE:COL: what" on any refusal; a
 * syntax error reads "NAME:LINE:COL: invalid YAML: <problem> (<context> at
 * L:C)". Thread-safe. */
int yaml_doc_parse(const char *data, size_t len, const char *name, const struct yaml_limits *lim,
                   struct yaml_doc **out, struct sw_err *err);
/* Reads and parses the file at path (named path in messages). */
int yaml_doc_load(const char *path, const struct yaml_limits *lim, struct yaml_doc **out,
                  struct sw_err *err);
void yaml_doc_free(struct yaml_doc *doc);

/* Formats "FILE:LINE:COL: message" (node's position) into err; returns SW_EINVAL. */
int yaml_err(struct sw_err *err, const struct yaml_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The value of key in mapping map, or NULL (also when map is not a mapping). O(log n). */
const struct yaml_node *yaml_map_get(const struct yaml_node *map, const char *key);
/* The pair of key in map (for the key's own position), or NULL. */
const struct yaml_pair *yaml_map_find(const struct yaml_node *map, const char *key);
/* The text of a scalar, NULL for anything else (and for NULL). */
const char *yaml_scalar(const struct yaml_node *n);
/* 1 for a plain "", "~", "null", "Null" or "NULL" (YAML 1.2 core schema), else 0. */
int yaml_is_null(const struct yaml_node *n);
/* A plain true/True/TRUE/false/False/FALSE (YAML 1.2: not yes/no/on/off).
 * 0, or SW_EINVAL with *b untouched. */
int yaml_bool(const struct yaml_node *n, int *b);
/* A plain decimal integer ("-12", "+3", "0") within min..max. 0 or SW_EINVAL. */
int yaml_int(const struct yaml_node *n, int64_t min, int64_t max, int64_t *v);

/* ---- processes ------------------------------------------------------------------ */

/* Runs a program to completion with its output captured, as a build step or
 * `git` is run: no shell unless argv names one; stdin from /dev/null or a
 * buffer; stdout and stderr read together with poll (a child filling one pipe
 * never deadlocks on the other), kept in memory up to a bound and/or handed
 * to a callback line by line as they arrive. The child runs in a process
 * group of its own with default signal dispositions, an empty signal mask and
 * no descriptor but 0, 1 and 2; on timeout (or cancel) the whole group gets
 * SIGTERM and, kill_grace_ms later, SIGKILL, so what it started stops too
 * (unless it left the group: setsid, setpgid). Once the child has exited,
 * output still held open by processes it left behind is read for drain_ms more;
 * those processes keep running. The child is always reaped before proc_run
 * returns. Thread-safe: several threads may run processes at once, provided
 * nothing calls setenv meanwhile (an inherited environment is read then) and
 * nothing reaps other processes' children (waitpid(-1), SIGCHLD ignored). */

enum { PROC_STDOUT = 1, PROC_STDERR = 2 };

enum {
    PROC_MERGE = 1,       /* stderr into stdout: one stream, in the order written */
    PROC_INHERIT_ENV = 2, /* env adds to (and, "NAME" alone, removes from) this process's */
    PROC_NO_CAPTURE = 4,  /* keep no output in memory (on_line still sees it) */
};

/* Lines longer than this reach on_line in pieces of this size. */
#define PROC_LINE_MAX 65536

/* One line of output, without its '\n' (a '\r' before it is kept), NUL-
 * terminated, valid during the call only; a last line without '\n' comes at
 * the end. Called on the thread running proc_run. */
typedef void proc_line_fn(void *ctx, int stream, const char *line, size_t len);

struct proc_opts {
    const char *const *argv; /* NULL-terminated; argv[0] a path or a name found in our PATH */
    const char *cwd;         /* NULL: ours */
    const char *const *env;  /* NULL-terminated "NAME=value" entries; NULL: ours unchanged */
    unsigned flags;          /* PROC_* above */
    const char *input;       /* stdin; NULL: /dev/null */
    size_t input_len;
    size_t max_output;         /* bytes kept per stream: 1 MiB when 0; more sets *_truncated */
    int64_t timeout_ms;        /* 0: none */
    int64_t kill_grace_ms;     /* SIGTERM to SIGKILL: 5 s when 0 */
    int64_t drain_ms;          /* reading after exit: 1 s when 0 */
    const _Atomic int *cancel; /* optional: set non-zero (from any thread) to stop the child */
    proc_line_fn *on_line;     /* optional */
    void *ctx;
};

struct proc_result {
    int exited;      /* 1: it exited, with exit_code; 0: a signal ended it */
    int exit_code;   /* 0..255 */
    int signal;      /* the signal that ended it, or 0 */
    int timed_out;   /* the timeout fired (the signal is then SIGTERM or SIGKILL, usually) */
    int cancelled;   /* *cancel became non-zero */
    char *out, *err; /* captured, NUL-terminated, never NULL; err is "" with PROC_MERGE */
    size_t out_len, err_len;
    int out_truncated, err_truncated;
    int64_t duration_ms;
};

/* Runs o->argv to completion and fills *r (free with proc_result_free), even
 * when the program failed, timed out or was killed: 0 then. An error (r
 * untouched) only when it could not be started: SW_ENOTFOUND for a missing
 * program or cwd, SW_EACCES, SW_EINVAL, SW_EIO, naming the program. */
int proc_run(const struct proc_opts *o, struct proc_result *r, struct sw_err *err);
void proc_result_free(struct proc_result *r);

/* ---- sortable ids ------------------------------------------------------------------ */

/* The length of an id with a prefix of n bytes (without the NUL). */
#define ID_LEN(n) ((n) + 27)

/* Writes "PREFIX-YYYYMMDD-HHMMSS-mmm-xxxxxx" into buf: the UTC time to the
 * millisecond and 24 random bits (getrandom) in hex, e.g.
 * "r-20261125-082506-123-9f3a1c". Ids made by one process strictly increase,
 * as text, in the order made, even within one millisecond or when the clock
 * steps back: the time then stays at the last id's and the suffix counts up
 * from where it was. Ids of different processes sort by time, in any order
 * within a millisecond. SW_EINVAL when buf cannot hold ID_LEN(strlen(prefix))
 * + 1 bytes. Thread-safe. */
int id_new(const char *prefix, char *buf, size_t len);
/* The same with the time given (ms since the epoch) instead of read from the clock. */
int id_new_at(const char *prefix, int64_t now_ms, char *buf, size_t len);

/* ---- log-linear histogram (hist.c) ------------------------------------------------ */

/*
 * Counts of non-negative integers (slipway records durations in microseconds)
 * in HdrHistogram's layout: values below HIST_SUB each have a bucket of their
 * own; above, each power of two [2^m, 2^(m+1)) is split into HIST_SUB equal
 * buckets. A bucket is thus at most 1/64 of its lowest value wide, and the
 * value reported for it (its midpoint) is within 1/128 (0.78 %) of every value
 * it holds. Values up to HIST_LIMIT - 1 (2^27 - 1 µs: 134 s) are bucketed;
 * larger ones share one overflow bucket. 1409 counters: 11,272 bytes.
 *
 * Thread safety: counters are relaxed atomics. One thread records into a
 * histogram of its own (hist_record: one atomic add, no lock) while any thread
 * reads it; readers merge the per-thread histograms into a copy of their own.
 * A histogram read while it is written is not a snapshot of one instant, but
 * every counter only grows. Zeroed memory is an empty histogram.
 */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_RANGE_BITS 27
#define HIST_LIMIT ((uint64_t)1 << HIST_RANGE_BITS) /* the lowest value that overflows */
#define HIST_OVERFLOW ((HIST_RANGE_BITS - HIST_SUB_BITS + 1) * HIST_SUB) /* its index: 1408 */
#define HIST_BUCKETS (HIST_OVERFLOW + 1)

struct hist {
    _Atomic uint64_t n[HIST_BUCKETS];
};

/* The bucket of v. Below HIST_SUB the index is v; above, v's highest set bit m
 * (a count of leading zeros) picks the power of two and the HIST_SUB_BITS bits
 * below it the sub-bucket: index = (m - HIST_SUB_BITS) * HIST_SUB + (v >> (m -
 * HIST_SUB_BITS)), which continues the linear part without a gap. No loop,
 * no float: it runs on every request. */
static inline size_t hist_index(uint64_t v)
{
    unsigned shift = (unsigned)(63 - __builtin_clzll(v | HIST_SUB)) - HIST_SUB_BITS;
    size_t i = ((size_t)shift << HIST_SUB_BITS) + (size_t)(v >> shift);
    /* Every v >= HIST_LIMIT lands at or past the overflow index: clamp (a cmov). */
    return i < HIST_OVERFLOW ? i : HIST_OVERFLOW;
}

/* Counts v in h: one relaxed atomic add. For the thread that owns h. */
static inline void hist_record(struct hist *h, uint64_t v)
{
    atomic_fetch_add_explicit(&h->n[hist_index(v)], 1, memory_order_relaxed);
}

/* The lowest and the highest value of bucket i (< HIST_BUCKETS); the overflow
 * bucket spans HIST_LIMIT to UINT64_MAX. */
uint64_t hist_bucket_low(size_t i);
uint64_t hist_bucket_high(size_t i);
/* Adds every counter of src to dst (a reader's copy: dst must not be
 * recorded into by another thread meanwhile). */
void hist_merge(struct hist *dst, const struct hist *src);
/* dst = a - b, bucket by bucket: what was recorded between a reading b and a
 * later reading a of the same counters (a window). A bucket where b exceeds a
 * (readings of different histograms, or in the wrong order) counts 0, never a
 * huge wrapped number. dst may be a or b; like hist_merge, dst must not be
 * recorded into meanwhile. */
void hist_sub(struct hist *dst, const struct hist *a, const struct hist *b);
/* How many values h holds. */
uint64_t hist_count(const struct hist *h);
/*
 * The q-quantile (0 <= q <= 1; outside, clamped) by the nearest-rank rule: the
 * r-th smallest value, r = ceil(q * count) and at least 1, so 0.5 of 1..100 is
 * 50 and 0.99 is 99. The value reported is the midpoint of the bucket that
 * holds it, low + (high - low) / 2 rounded down: the exact value below
 * HIST_SUB, within 0.78 % above; HIST_LIMIT when it is in the overflow bucket
 * (the true value is at least that). 0 for an empty histogram.
 */
uint64_t hist_quantile(const struct hist *h, double q);
/* How many values are <= bound: exact when bound + 1 is the low end of a
 * bucket (every bound below HIST_SUB is); otherwise the bucket holding bound
 * is not counted, so the answer is short by at most that bucket's count.
 * Callers that need exact counts at fixed bounds keep their own counters. */
uint64_t hist_count_le(const struct hist *h, uint64_t bound);

/* ---- JSON documents (jansson) ------------------------------------------------------ */

/* Reading a document someone else wrote, field by field, so that one bad
 * field refuses the whole document and never half of it is used. Each getter
 * reads field name of object o (o NULL or not an object: the field is absent;
 * a JSON null counts as absent too) and returns its value, or the empty value
 * (NULL, 0, -1) when it is absent or bad. A field present but of the wrong
 * form, or absent with JSON_FIELD_REQUIRED, is counted in f, the first with
 * its name and what was wrong. The caller checks f->bad once, after reading
 * them all, and says what the document is not (or calls json_fields_err). */
struct json_t; /* jansson's json_t */

struct json_fields {
    const char *doc; /* the document's name in messages, e.g. "envs/dev/state.json"; borrowed */
    int bad;         /* bad fields seen */
    char field[64];  /* the first bad field's name */
    const char *why; /* what was wrong with it (static text) */
};
#define JSON_FIELDS_INIT(doc)                                                                      \
    {                                                                                              \
        (doc), 0, "", NULL                                                                         \
    }

enum {
    JSON_FIELD_REQUIRED = 1,  /* absent (or null) is bad too */
    JSON_FIELD_MULTILINE = 2, /* strings: line breaks and tabs allowed */
};

/* The last millisecond of 9999: the latest time time_format_iso writes back. */
#define JSON_TIME_MAX_MS 253402300799999LL

/* Parses data as one JSON document, refusing duplicate keys; SW_EINVAL with
 * "NAME: <what> at line L column C". Caller json_decref()s the result. */
int json_doc_parse(const char *name, const char *data, size_t len, struct json_t **out,
                   struct sw_err *err);
/* Field name of o when present and not null, else NULL (borrowed). */
struct json_t *json_field(struct json_t *o, const char *name);
/* A string that text_valid(max, multiline) accepts: printable UTF-8 of at most
 * max bytes. Caller frees. */
char *json_field_str(struct json_fields *f, struct json_t *o, const char *name, size_t max,
                     unsigned flags);
/* An integer (not a real) from min to max. */
int64_t json_field_int(struct json_fields *f, struct json_t *o, const char *name, int64_t min,
                       int64_t max, unsigned flags);
/* true or false: 1 or 0; -1 when absent or bad. */
int json_field_bool(struct json_fields *f, struct json_t *o, const char *name, unsigned flags);
/* A time as time_format_iso writes it, from 1970 to the end of 9999 (what
 * can be written back), in ms since the epoch. */
int64_t json_field_time(struct json_fields *f, struct json_t *o, const char *name, unsigned flags);
/* Records a bad field found by the caller's own check (an id, an enum). */
void json_field_bad(struct json_fields *f, const char *name, const char *why);
/* SW_EINVAL with "DOC: FIELD: why" for the first bad field. */
int json_fields_err(const struct json_fields *f, struct sw_err *err);
/*
 * Reading JSON without a tree (jsonread.c): the caller walks the document and keeps what it
 * wants, for documents large enough that jansson's tree costs (release manifests). It accepts
 * exactly what json_doc_parse accepts. The walk:
 *
 *     json_read_init(&r, data, len);
 *     if (json_read_value(&r) == JSON_READ_OBJECT)
 *         while ((rc = json_read_member(&r)) == 1)    // key in r.str
 *             kind = json_read_value(&r) ...           // scalars: r.str, r.num, r.real
 *                                                      // or json_read_skip(&r, kind)
 *     ... json_read_end(&r); on any JSON_READ_ERROR: json_read_err(&r, name, err)
 *
 * A container's members (json_read_member) or elements (json_read_element) must be read to
 * its end (0) before its parent goes on. After the first error every call fails. Free with
 * json_read_free.
 */
enum {
    JSON_READ_ERROR = -1,
    JSON_READ_OBJECT = 1, /* its opening brace read: go on with json_read_member */
    JSON_READ_ARRAY,      /* its opening bracket read: go on with json_read_element */
    JSON_READ_STRING,     /* decoded, NUL-terminated, in r->str (valid UTF-8, no NUL) */
    JSON_READ_INT,        /* in r->num */
    JSON_READ_REAL,       /* in r->real */
    JSON_READ_TRUE,
    JSON_READ_FALSE,
    JSON_READ_NULL,
};
struct json_read_open {
    int object, first;
    size_t keys; /* where this object's key hashes start in keys */
};
struct json_reader {
    const char *start, *p, *end;
    int started, depth;
    struct buf str; /* the last string or key */
    long long num;
    double real;
    struct buf keys; /* uint64_t hashes of the keys of the open objects */
    struct json_read_open *open;
    size_t nopen, capopen;
    const char *why; /* the first error (static text), and where */
    const char *at;
};
void json_read_init(struct json_reader *r, const char *data, size_t len);
void json_read_free(struct json_reader *r);
/* The next value: its kind (JSON_READ_*), or JSON_READ_ERROR. */
int json_read_value(struct json_reader *r);
/* The next member of the innermost open object: 1 with its key in r->str (read its value
 * next), 0 at the end of the object (closed), JSON_READ_ERROR. */
int json_read_member(struct json_reader *r);
/* The next element of the innermost open array: 1 (read it next), 0 at its end, error. */
int json_read_element(struct json_reader *r);
/* Reads past the rest of a value json_read_value returned as kind: 0 or JSON_READ_ERROR. */
int json_read_skip(struct json_reader *r, int kind);
/* 0 when only whitespace is left. */
int json_read_end(struct json_reader *r);
/* SW_EINVAL with "NAME: <what> at line L column C" for the reader's error. */
int json_read_err(const struct json_reader *r, const char *name, struct sw_err *err);

/* Writing: a string, or null for NULL; a time_format_iso string, or null for 0. New references. */
struct json_t *json_str_or_null(const char *s);
struct json_t *json_time_or_null(int64_t ms);

#endif
