/*
 * release — immutable, content-addressed snapshots of a directory.
 *
 * A release is a manifest "releases/<id>.json" listing every file's path, the
 * SHA-256 of its body (stored once under "blobs/sha256/ab/abcdef…"), size,
 * content type and cache policy, plus where it came from. A manifest is only
 * written after every blob it names is durable, so a manifest that exists is
 * always complete.
 *
 * Release ids ("r-20261125-082506-123-9f3a1c") sort by creation time as text.
 */
#ifndef SW_RELEASE_H
#define SW_RELEASE_H

#include "base/base.h"
#include "store/store.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum {
    RELEASE_EEMPTY = -100,   /* the directory has no files */
    RELEASE_ESYMLINK = -101, /* a symbolic link is dangling, a loop, or points outside */
    RELEASE_ESPECIAL = -102, /* a device, socket or FIFO */
    RELEASE_EFILES = -103,   /* files refused for different reasons (res->problems says which) */
    /* keep_id_wait gave another id than the one the scan assumed: nothing
     * was written but bodies; call again with that keep_id (in err). */
    RELEASE_EKEEP_MOVED = -104,
};

/* Precompressed forms of a body, by Content-Encoding (RFC 9110 section 8.4):
 * the manifest key and the coding token are both release_variant_names[i]. */
enum { RELEASE_GZIP, RELEASE_BR, RELEASE_VARIANTS };
extern const char *const release_variant_names[RELEASE_VARIANTS]; /* "gzip", "br" */

/* One variant: an ordinary content-addressed blob holding the body encoded
 * with that coding. blob[0] == '\0' when the file has no such variant. A
 * variant is always smaller than the identity body (the parser refuses
 * others), so serving one never costs more than the file itself. */
struct release_variant {
    char blob[SHA256_HEX_LEN + 1];
    uint64_t size;
    /* Where the bytes are when they are not their own blob: pack[0] != '\0'
     * names a pack (release_pack_key) holding them at offset at. */
    char pack[SHA256_HEX_LEN + 1];
    uint64_t at;
};

struct release_file {
    char *path; /* relative, '/'-separated, no leading slash: "css/app.css" */
    char blob[SHA256_HEX_LEN + 1];
    uint64_t size;
    char *type;  /* "text/css; charset=utf-8" */
    char *cache; /* "public, max-age=31536000, immutable" */
    /* The file's modification time (st_mtime), served as Last-Modified; has_mtime 0 when
     * the manifest does not say (older manifests): the edge then uses the release's time. */
    int has_mtime;
    int64_t mtime; /* seconds since the epoch, 0..RELEASE_MTIME_MAX */
    /* var[RELEASE_GZIP], var[RELEASE_BR]: optional; each blob is as much a
     * body of the release as blob itself (verify, deploy and gc count it). */
    struct release_variant var[RELEASE_VARIANTS];
    /* The identity body's place, as a variant's: pack[0] == '\0' for its own blob. */
    char pack[SHA256_HEX_LEN + 1];
    uint64_t at;
};

struct release {
    char *id;
    int64_t created_ms;
    char *message; /* may be NULL */
    char *user, *host;
    char *source_dir;           /* absolute directory it was built from */
    char *commit, *ref, *tag;   /* git facts when the directory is in a repository; else NULL */
    int dirty;                  /* the working tree had changes not in commit */
    char *run;                  /* the pipeline run that made it (release_id_valid form), or NULL */
    struct release_file *files; /* sorted by path */
    size_t nfiles;
    uint64_t bytes;
    /* A manifest written over another (format 3, a "delta"): base names that
     * release, depth counts the manifests down to a full one (1 when base is
     * full; at most RELEASE_DEPTH_MAX). As parsed, files holds only what is
     * new or changed, removed what is gone, and total_files and total_bytes
     * what the whole release holds. release_load resolves it: files are then
     * the whole release's, removed is empty, and chain names base and the
     * manifests below it (nearest first), which gc keeps with it. A full
     * manifest: base NULL, depth 0, nothing removed, an empty chain. */
    char *base;
    int depth;
    char **removed; /* sorted */
    size_t nremoved;
    size_t total_files;
    uint64_t total_bytes;
    char **chain;
    size_t nchain;
};

/* How many manifests a release may be written over before one is full again:
 * a reader of the newest reads at most this many more. */
#define RELEASE_DEPTH_MAX 8

/* What release_create has done so far, for a progress display on another
 * thread (read each field with atomic_load). Files and bytes are the files
 * found in the directory and their sizes: done counts each once it is hashed
 * and its body is in the store. The totals come from a quick count of the
 * directory that runs beside the scan; until it is over (counted 0) they are
 * what it has found so far, and links and "x.gz" files can make the scan's
 * numbers differ a little from them. Once the scan is over, the totals
 * are the done counts and counted is 1. */
struct release_progress {
    atomic_size_t files_total, files_done;
    atomic_uint_least64_t bytes_total, bytes_done;
    atomic_int counted;
};

struct release_create_opts {
    const char *dir;
    const char *message;    /* optional */
    const char *stat_cache; /* optional file remembering (stat → hash) between runs */
    /* 0: one per core; on a remote store (store_is_remote) at least
     * store_concurrency, since its threads mostly wait on the network. */
    int threads;
    struct release_progress *progress; /* optional: kept up to date (reset first) */
    int follow_symlinks;               /* store what a link pointing outside dir points to */
    /* Where the files came from, when the caller knows better than the
     * directory's git (a pipeline's workspace is a detached checkout plus
     * what its steps built): with commit set, these are recorded as given,
     * no git is run, the tag is ref's name when ref is "refs/tags/NAME", and
     * dirty is false. Each is validated as the manifest parser would
     * (SW_EINVAL before anything is stored). All optional. */
    const char *commit; /* at most 64 bytes of printable text */
    const char *ref;    /* at most 1024 bytes of printable text */
    const char *run;    /* a pipeline run id: release_id_valid's form */
    /* Optional, borrowed: a release gc keeps for as long as this one is being
     * made (the live release of the environment about to be deployed to).
     * On a remote store its bodies are taken as present and kept: neither
     * put, looked up nor touched, which on S3 is a request each. And when the
     * new release would be the same as keep (the same files, bodies, types,
     * times, variants, message and source; who made it and where aside), no
     * manifest is written: *id_out is keep's id and res->same is 1. keep is
     * also the one source of variants to reuse (a hint, checked as ever),
     * instead of the newest manifests in the store. */
    const struct release *keep;
    /* Optional, instead of keep: its id. The release is read (release_load_copy,
     * with copies) only when needed: not when the stat cache records that its
     * lines are exactly that release's files, on a remote store (the usual
     * re-run of a deploy), and a tree still the same is then known to be keep
     * without reading any manifest. */
    const char *keep_id;
    /* Optional, instead of keep_id: a function that gives it (*id NULL: none),
     * and may block until it can (deploy DIR reads the live release from the
     * store meanwhile). Called when needed: on a remote store whose stat cache
     * records a release, only after the scan, which assumes keep is that
     * release; when it is another, release_create fails with
     * RELEASE_EKEEP_MOVED and is to be called again with that keep_id. */
    int (*keep_id_wait)(void *arg, const char **id);
    void *keep_id_arg;
    /* Optional: called once, with keep_id_arg, when a new release is to be
     * stored (not keep), before its manifest is written: deploy DIR takes
     * the environment's lock meanwhile (deploy_ahead_start). */
    void (*on_new)(void *arg);
    /* Optional: called at most once, with keep_id_arg, from any of the scan's
     * threads, when it first hashes a file whose body is not the one the stat
     * cache's line for its path names (or that has no line, in a cache with
     * lines): a new release is then likely, and deploy DIR begins its change
     * (lock and reads) while the scan goes on, instead of after it. on_new may
     * still follow, or nothing (a file changed back, say). */
    void (*on_change)(void *arg);
    /* Non-zero: bodies of at most RELEASE_PACK_BODY_MAX bytes that are not
     * stored yet go into packs of about RELEASE_PACK_TARGET bytes (a request
     * each, instead of one per body) rather than a blob each. A body already
     * in keep's packs stays there (without it too); without keep, a body in
     * the newest release's packs stays there once its pack is touched (pack
     * or not, on a remote store). A body only an older release holds is
     * stored again. */
    int pack;
    /* Optional: a directory that keeps a copy of the manifest written
     * (release_copy_put), for the next release_load_copy of it. */
    const char *copies;
};

/* A file release_create refuses, and why. Both strings are raw (a name is
 * whatever bytes the file system holds): escape them before printing. */
struct release_problem {
    char *path; /* the file as the caller names it: opts->dir, '/', its path in the release */
    char *why;  /* "contains a backslash, which no URL can name" */
    int code;   /* RELEASE_ESYMLINK, RELEASE_ESPECIAL or SW_EINVAL */
};
#define RELEASE_PROBLEMS_SHOWN 20

struct release_create_result {
    size_t files;
    uint64_t bytes;
    size_t new_blobs;  /* bodies written to the store by this call */
    size_t hashed;     /* files actually read (the rest came from the stat cache) */
    size_t variants;   /* compressed variants in the release (gzip and br counted apart) */
    size_t compressed; /* compressions this call ran (none for files the stat cache knew) */
    size_t reused;     /* variants taken from earlier releases instead of compressing */
    uint64_t saved;    /* sum over files of identity size minus smallest variant's size */
    int same;          /* 1: the release is opts->keep (nothing was written) */
    /* On refusal: the first RELEASE_PROBLEMS_SHOWN problems in path order, and
     * how many there were in all. Freed by release_create_result_free. */
    struct release_problem *problems;
    size_t nproblems, problems_total;
};

/* Builds a release from opts->dir, uploading only missing bodies, and writes
 * its manifest. Every compressible file (release_compressible) of at least
 * RELEASE_COMPRESS_MIN bytes and at most RELEASE_COMPRESS_MAX gets a gzip and a
 * Brotli variant, each kept only when smaller than the file; a variant the
 * newest releases in the store already hold for the same body is taken from
 * there (checked to decode to it) instead of compressing. A file shipped
 * only as "x.gz", where x would be compressible, also gives a file "x": its
 * body decompressed (bounded: RELEASE_GUNZIP_MAX and RELEASE_GUNZIP_RATIO,
 * beyond which the release is refused), with x.gz's bytes as its gzip variant.
 * *id_out (caller frees) is the new id. On failure nothing a reader can see
 * has changed (only temporaries remain, which gc removes).
 *
 * Files that can never be released (a bad symbolic link, a device, a name no
 * URL can carry) do not stop the walk: every one is found, res->problems lists
 * them, and err says "PATH: why" for one or "DIR: N files cannot be released"
 * for several, with their code (RELEASE_EFILES when their codes differ). Any
 * other failure (an I/O error, a file changing) stops at once. Call
 * release_create_result_free on res afterwards, whatever the outcome. */
int release_create(struct store *st, const struct release_create_opts *opts, char **id_out,
                   struct release_create_result *res, struct sw_err *err);
/* Frees what release_create left in res (its problems); res stays usable. */
void release_create_result_free(struct release_create_result *res);

#define RELEASE_COMPRESS_MIN 1024       /* smaller bodies gain less than a packet */
#define RELEASE_COMPRESS_MAX (8u << 20) /* larger bodies are streamed, not held whole */
#define RELEASE_GUNZIP_MAX (1ULL << 30) /* "x.gz" may decompress to at most 1 GiB */
#define RELEASE_GUNZIP_RATIO 1000       /* and to at most 1000 times its size */

/* 1 when files of this name are worth compressing: text, JSON, XML, SVG,
 * JavaScript, wasm, and fonts that are not compressed inside (ttf, otf, eot). */
int release_compressible(const char *path);

/* Bounds on what a manifest may hold; anything beyond is refused as hostile. */
#define RELEASE_FILES_MAX 1000000
#define RELEASE_PATH_MAX 1024
#define RELEASE_ID_MAX 128
#define RELEASE_MESSAGE_MAX 65536
#define RELEASE_FILE_SIZE_MAX (1LL << 40)
/* 9999-12-31T23:59:59Z: a file time becomes an HTTP-date, which has four-digit years. */
#define RELEASE_MTIME_MAX 253402300799LL

/* A release id: [A-Za-z0-9][A-Za-z0-9._-]*, at most RELEASE_ID_MAX bytes. */
int release_id_valid(const char *id);
/* A path in normal form: relative, '/'-separated, no empty, "." or ".."
 * segment, no backslash, printable UTF-8, at most RELEASE_PATH_MAX bytes. */
int release_path_valid(const char *path);

/* Parses and validates a manifest document read from key; when want_id is
 * non-NULL the id inside must equal it. Blob ids are 64 lowercase hex digits,
 * paths are valid (above), sorted and unique, sizes, times and counts bounded,
 * types and cache policies header-safe. SW_EINVAL names the key and the fault.
 * Caller frees *out with release_free. Pure: safe to call from any thread. */
int release_manifest_parse(const char *key, const char *want_id, const char *data, size_t len,
                           struct release **out, struct sw_err *err);

/* Loads a manifest, resolved (a delta is read with the manifests below it, each
 * through release_load_copy's dir when given, and checked to add up to the
 * totals it states); caller frees with release_free. SW_ENOTFOUND when absent. */
int release_load(struct store *st, const char *id, struct release **out, struct sw_err *err);
/* release_load through a local copy in dir (NULL: none): a manifest never
 * changes once written (create-only, under an id no other release has), so
 * a copy is never stale, and a deploy that reads the live release's saves a
 * GET of a document of about 650 bytes a file. The copy is parsed and checked
 * as any manifest (one that does not pass is read from the store again); one
 * read from the store is kept. A directory keeps the newest RELEASE_DEPTH_MAX + 4
 * copies: a chain of deltas fits. */
int release_load_copy(struct store *st, const char *id, const char *dir, struct release **out,
                      struct sw_err *err);
/* On: the last release release_load read (resolved) is kept in memory, one
 * for the process, by store URL and id (a manifest never changes, so it is
 * never stale), and given again to a load of it, or of a release written over
 * it. For a command about to read many releases of one store (releases, gc):
 * a chain's base is then read once, not once per release written over it.
 * Off by default: a serving edge keeps no second copy of a release. */
void release_load_memo(int on);
/* Keeps doc, the manifest of release id, in dir; best effort (a copy is never needed). */
void release_copy_put(const char *dir, const char *id, const char *doc, size_t len);
void release_free(struct release *r);

/* Every release id in the store, oldest first; free with release_ids_free. */
int release_list(struct store *st, char ***ids, size_t *n, struct sw_err *err);
void release_ids_free(char **ids, size_t n);

/* Resolves a full id or a unique prefix (or unique suffix) to a full id (caller frees). */
int release_resolve(struct store *st, const char *name, char **id, struct sw_err *err);

/* Checks that every blob of r, variants included, exists in the store with
 * its size (a packed body: its pack, long enough to hold it; each pack is
 * looked up once). SW_ENOTFOUND names the first missing; SW_EINVAL a wrong
 * size. */
int release_verify(struct store *st, const struct release *r, struct sw_err *err);

/* Deletes a manifest (gc). Blobs are deleted separately by release_blob_key. */
int release_delete(struct store *st, const char *id, struct sw_err *err);

/* "blobs/sha256/ab/abcdef…" for a hex SHA-256; writes into out (>= 96 bytes). */
void release_blob_key(const char *hex, char *out, size_t outlen);
#define RELEASE_BLOB_PREFIX "blobs/sha256/"

/* Packs: on a remote store a request costs more than the bytes of a small
 * body, so small bodies may be stored together, one object holding many,
 * each named in the manifest by the pack's SHA-256 and its offset there
 * ("packs/sha256/ab/abcdef…", immutable and content-addressed as blobs are).
 * A body is verified against its own SHA-256 when it is read, as a blob is;
 * the pack's name only locates it. Bounds: a packed body is at most
 * RELEASE_PACK_BODY_MAX bytes and ends within RELEASE_PACK_MAX. */
#define RELEASE_PACK_PREFIX "packs/sha256/"
#define RELEASE_PACK_BODY_MAX (64u << 10)
#define RELEASE_PACK_MAX (64ull << 20)
void release_pack_key(const char *hex, char *out, size_t outlen);

/* One body of a file: its identity body (kind 0) or variant kind - 1, with
 * where its bytes are. Borrowed from the file. */
struct release_body {
    const char *blob;
    uint64_t size;
    const char *pack; /* NULL: the body is its own blob */
    uint64_t at;
    int kind; /* 0: identity; 1 + RELEASE_GZIP, 1 + RELEASE_BR */
};
/* Fills out with f's bodies, identity first, and returns how many (1 to
 * RELEASE_VARIANTS + 1). */
size_t release_file_bodies(const struct release_file *f,
                           struct release_body out[RELEASE_VARIANTS + 1]);
/* The key holding b's bytes: its pack's, or its own blob's (>= 96 bytes). */
void release_body_key(const struct release_body *b, char *out, size_t outlen);

/* Added, removed and changed paths between a and b, in path order. */
struct release_change {
    char kind;        /* '+' added, '-' removed, '~' changed */
    const char *path; /* borrowed from a or b */
    uint64_t old_size, new_size;
};
int release_diff(const struct release *a, const struct release *b, struct release_change **out,
                 size_t *n);

/* The Content-Type for a path by extension; text types carry charset=utf-8.
 * Unknown: "application/octet-stream". Static storage. */
const char *release_content_type(const char *path);
/* Cache-Control for a path: fingerprinted names are immutable for a year,
 * HTML is "no-cache", everything else is revalidated after 5 minutes. */
const char *release_cache_policy(const char *path);

#endif
