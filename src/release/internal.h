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

/* Decompresses the gzip file name (in[0..len)) into *out (caller frees), at
 * most RELEASE_GUNZIP_MAX bytes and RELEASE_GUNZIP_RATIO times len; *single is
 * 1 when it is one gzip member (what every browser decodes whole). SW_EINVAL,
 * naming the file, when it is not gzip or is over the bounds. Thread-safe. */
int release_gunzip(const char *name, const void *in, size_t len, char **out, size_t *outlen,
                   int *single, struct sw_err *err);

#endif
