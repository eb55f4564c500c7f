/*
 * base — small building blocks that know nothing about slipway: the error
 * object, growable buffers, hashing, time, durations and file-system helpers.
 *
 * Ownership: every function returning heap memory says so; the caller frees
 * it with free() unless another function is named. Allocation failure aborts
 * the process (as git's xmalloc does): a delivery tool that runs out of memory
 * cannot recover meaningfully, and checking every small allocation would hide
 * the errors that matter.
 */
#ifndef SW_BASE_H
#define SW_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* ---- time ------------------------------------------------------------------ */

int64_t time_now_ms(void);  /* wall clock, ms since the epoch */
int64_t time_mono_ms(void); /* monotonic clock, ms */
/* Formats ms since the epoch as "2026-11-25T08:25:06.123Z" into out (>= 32 bytes). */
void time_format_iso(int64_t ms, char *out, size_t outlen);
/* Parses what time_format_iso writes (fraction optional). 0 or SW_EINVAL. */
int time_parse_iso(const char *s, int64_t *ms);
/* Parses "90s", "30m", "24h", "7d", "1h30m" into milliseconds. 0 or SW_EINVAL. */
int duration_parse(const char *s, int64_t *ms);
/* Formats a duration compactly: "3d4h", "5m", "12s" into out. */
void duration_format(int64_t ms, char *out, size_t outlen);

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
/* Joins two path parts with one '/'. Caller frees. */
char *path_join(const char *a, const char *b);
/* Returns the number of online CPUs, at least 1. */
int sys_ncpu(void);
/* "user" from $USER / getpwuid, never NULL; static storage. */
const char *sys_user(void);
/* Host name, never NULL; static storage. */
const char *sys_host(void);

#endif
