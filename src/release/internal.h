/* Private to the release module. */
#ifndef SW_RELEASE_INTERNAL_H
#define SW_RELEASE_INTERNAL_H

#include "release/release.h"

/* Serialises r as a manifest document; caller frees. NULL when a text field is
 * not UTF-8 (JSON text is UTF-8, RFC 8259 section 8.1). */
char *release_manifest_dump(const struct release *r, size_t *len);

/* Encodes in[0..len) (the body of path; its type picks Brotli's mode) with
 * coding RELEASE_GZIP or RELEASE_BR into *out (caller frees), and checks that
 * the result decodes back to in exactly. SW_EIO when the library fails. The
 * output is a pure function of the input. Thread-safe. */
int release_compress(int coding, const char *path, const void *in, size_t len, char **out,
                     size_t *outlen, struct sw_err *err);

/* 1 when enc[0..enclen) is one whole stream of coding (RELEASE_GZIP: one
 * gzip member; RELEASE_BR: one Brotli stream), nothing after it, that decodes
 * to exactly body[0..len). The output is bounded by len: a bomb costs no more
 * than the body. Thread-safe. */
int release_variant_decodes(int coding, const char *enc, size_t enclen, const void *body,
                            size_t len);

/* Variants named by the newest manifests in the store, by identity body
 * (reuse.c); or, when only is given (borrowed), by that release alone, with
 * no request: the caller's release_create_opts.keep, the release the new one
 * most resembles. Loading never fails: a store without releases, or whose
 * newest manifests cannot be read or parsed, gives a map with fewer hints or
 * none. Free with release_reuse_free. Read-only once loaded: thread-safe. */
struct release_reuse;
struct release;
void release_reuse_load(struct store *st, const struct release *only, struct release_reuse **out);
void release_reuse_free(struct release_reuse *m);
/* The newest release in the store that can be read (bounded, as the hints
 * are), or NULL; free with release_free. A listing and a read or two. */
struct release *release_newest(struct store *st);
/* 1 when m names a variant of coding for the body hex (body[0..len), already
 * hashed to hex) whose blob is in the store, is smaller than the body, hashes
 * to its name and decodes to exactly body (release_variant_decodes); then *v
 * is that variant and its blob has been touched (store_touch). 0 when m names
 * none; -1 when none it names holds (missing, damaged, forged, or a read
 * failed). Either way the caller compresses. Thread-safe. */
int release_reuse_variant(struct store *st, const struct release_reuse *m, int coding,
                          const char *hex, const void *body, size_t len, struct release_variant *v);

/* Decompresses the gzip file name (in[0..len)) into *out (caller frees), at
 * most RELEASE_GUNZIP_MAX bytes and RELEASE_GUNZIP_RATIO times len; *single is
 * 1 when it is one gzip member (what every browser decodes whole). SW_EINVAL,
 * naming the file, when it is not gzip or is over the bounds. Thread-safe. */
int release_gunzip(const char *name, const void *in, size_t len, char **out, size_t *outlen,
                   int *single, struct sw_err *err);

/* Counts the regular files under root (as release_create would walk it:
 * .git and .slipway left out, links to files counted, links to directories
 * not followed) and their sizes into p->files_total and p->bytes_total as it
 * goes, stopping early when *stop becomes non-zero; for the progress
 * display only (an estimate: it never fails, skipping what it cannot read). */
void release_count_tree(const char *root, struct release_progress *p, const atomic_int *stop);

/* Packs for one release_create (pack.c): small bodies put together into
 * pack objects ("Packs" in docs/store.md) instead of a blob each.
 * release_packer_new takes keep (borrowed, may be NULL): a body keep holds in
 * a pack is placed there, with no request. Free with release_packer_free. */
struct release_packer;
struct release_packer *release_packer_new(struct store *st, const struct release *keep);
/* Adds the packed bodies of hint (borrowed; the newest release, when there is
 * no keep) as bodies that need not be stored again, on one condition gc
 * imposes: a pack of hint's is touched (made young) before its first body is
 * taken from it, once, and a pack that cannot be is not used. */
void release_packer_hint(struct release_packer *p, const struct release *hint);
void release_packer_free(struct release_packer *p);
/* Places the body hex (data[0..len), len <= RELEASE_PACK_BODY_MAX): in keep's
 * pack, in a pack of this call already (a body two files share), or appended
 * to the pack being filled, which is stored (create-only) once it holds
 * RELEASE_PACK_TARGET bytes. *fresh: this call appended it. Thread-safe. */
int release_packer_add(struct release_packer *p, const char *hex, const void *data, size_t len,
                       int *fresh, struct sw_err *err);
/* 1 when keep holds hex in a pack (then no put and no touch is needed), or a
 * hint's pack does and was touched now or before. */
int release_packer_kept(const struct release_packer *p, const char *hex);
/* A file's bodies are all added. Over keep (a re-run, which changes a few
 * files), the first time: the pack being filled is sealed and stored on a
 * thread of its own while the walk goes on, instead of after it, where it was
 * the first of the change's writes that follow each other. Thread-safe. */
void release_packer_file_done(struct release_packer *p);
/* Seals the last pack and starts storing it on a thread of its own: its name
 * is known at once (release_packer_where), so the manifest can be built
 * meanwhile. Call once every add has returned; release_packer_wait then says
 * when every pack this call made is in the store. */
int release_packer_finish(struct release_packer *p, struct sw_err *err);
/* Waits for the stores begun on threads (the early pack, the last); 0, or
 * why one failed. */
int release_packer_wait(struct release_packer *p, struct sw_err *err);
/* Where hex is after release_packer_finish: 1 and pack (64 hex digits) and
 * *at when it is packed (by this call, or in keep's pack), 0 when it is a
 * blob of its own. */
int release_packer_where(const struct release_packer *p, const char *hex,
                         char pack[SHA256_HEX_LEN + 1], uint64_t *at);
#define RELEASE_PACK_TARGET (4u << 20)

#endif
