/*
 * Precompressed variants: what release_create stores beside a text body so
 * that the edge never compresses at request time. A variant is made once, at
 * release time (gzip level 6, Brotli quality BROTLI_QUALITY: the settings
 * past which bytes cost more CPU than they save), and is checked to decode back to the exact
 * identity bytes before it is kept: a wrong variant would be served to every
 * client that accepts its coding, for as long as the release is live.
 *
 * Also the reverse: a file shipped only as "x.gz" is decompressed here, with
 * a bound on the output, so that the release can serve "x" to clients that do
 * not accept gzip.
 */
#include "release/internal.h"

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Quality 6, not 10: on the Python 3.11 HTML docs (1,045 text files, 66 MB) 10 makes the Brotli
 * bodies 11 % smaller (9.52 against 10.67 MB) for 9 times the release's CPU (25 s against 2.7 s
 * with gzip; 6 is at the knee: 5 saves 8 % of its CPU for 1 % more bytes, 8 doubles it for 1.5 %
 * fewer). Every body that is new to the store is compressed before its deploy can go live, on a
 * fresh CI checkout too, so the release time is what a team waits for at each deploy; the bytes
 * are a few percent of a page load. See docs/releases.md. */
#define BROTLI_QUALITY 6

const char *const release_variant_names[RELEASE_VARIANTS] = {"gzip", "br"};

int release_compressible(const char *path)
{
    const char *type = release_content_type(path);
    size_t plen = strlen(path);
    /* .svgz is SVG already gzipped: same type, nothing left to gain. */
    if (plen >= 5 && !strcmp(path + plen - 5, ".svgz"))
        return 0;
    if (!strncmp(type, "text/", 5))
        return 1;
    /* Structured text, and binary formats that are not compressed inside
     * (woff and woff2 are; ttf, otf and eot are not). */
    static const char *const types[] = {
        "application/javascript",
        "application/json",
        "application/ld+json",
        "application/geo+json",
        "application/manifest+json",
        "application/xml",
        "application/xhtml+xml",
        "application/atom+xml",
        "application/rss+xml",
        "application/yaml",
        "application/toml",
        "application/rtf",
        "application/wasm",
        "application/vnd.apple.mpegurl",
        "application/vnd.ms-fontobject",
        "image/svg+xml",
        "image/x-icon",
        "image/bmp",
        "font/ttf",
        "font/otf",
    };
    size_t tlen = strcspn(type, ";");
    for (size_t i = 0; i < sizeof(types) / sizeof(*types); i++)
        if (strlen(types[i]) == tlen && !strncmp(type, types[i], tlen))
            return 1;
    return 0;
}

/* gzip (RFC 1952) at level 6, zlib's default: level 9 doubles the CPU for 1 % fewer bytes on
 * the same docs, and gzip is only for the clients that do not take Brotli. zlib writes a zero mtime
 * and a fixed OS byte, so the same body always gives the same bytes, hence the same blob. */
static int gzip_once(const void *in, size_t len, char **out, size_t *outlen)
{
    z_stream z = {0};
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t cap = deflateBound(&z, (uLong)len);
    char *buf = xmalloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)buf;
    z.avail_out = (uInt)cap;
    int zrc = deflate(&z, Z_FINISH);
    *outlen = z.total_out;
    deflateEnd(&z);
    if (zrc != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

/* Decoded output is compared with the body a piece at a time, as it comes:
 * no buffer the size of the body, and a variant that decodes to something
 * else (or to more, however much more) stops at its first wrong byte. */
#define CHECK_PIECE 65536

/* One whole gzip member and nothing after it (what a browser decodes) whose
 * output is exactly want. */
static int gunzip_equals(const char *enc, size_t enclen, const void *want, size_t len)
{
    z_stream z = {0};
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return 0;
    unsigned char *piece = xmalloc(CHECK_PIECE);
    const unsigned char *w = want;
    size_t done = 0;
    int zrc = Z_OK;
    z.next_in = (Bytef *)enc;
    z.avail_in = (uInt)enclen;
    while (zrc == Z_OK) {
        z.next_out = piece;
        z.avail_out = CHECK_PIECE;
        zrc = inflate(&z, Z_NO_FLUSH); /* Z_BUF_ERROR once the input ends early */
        size_t n = CHECK_PIECE - z.avail_out;
        if (n > len - done || memcmp(piece, w + done, n) != 0) {
            zrc = Z_DATA_ERROR;
            break;
        }
        done += n;
    }
    int ok = zrc == Z_STREAM_END && done == len && z.avail_in == 0;
    inflateEnd(&z);
    free(piece);
    return ok;
}

/* What a 16-bit window holds: (1 << 16) - 16 bytes (RFC 7932 9.1). */
#define BROTLI_SMALL_WINDOW_MAX ((1u << 16) - 16)

static int brotli_once(const char *path, const void *in, size_t len, char **out, size_t *outlen)
{
    const char *type = release_content_type(path);
    BrotliEncoderMode mode =
        !strncmp(type, "font/", 5) || !strcmp(type, "application/vnd.ms-fontobject")
            ? BROTLI_MODE_FONT
        : !strncmp(type, "text/", 5) || strstr(type, "charset=") ? BROTLI_MODE_TEXT
                                                                 : BROTLI_MODE_GENERIC;
    size_t cap = BrotliEncoderMaxCompressedSize(len);
    if (!cap)
        return -1;
    /* A body that fits a 16-bit window gets one: for windows of 16 bits or
     * less Brotli picks a hasher with small tables, where the default 22-bit
     * window sets up megabytes of them, a page fault every 4 KiB. That is
     * what a re-run that compresses one page pays: in a fresh process, pages
     * of 11 and 50 KiB took 1.7 and 3.5 ms instead of 6.9 and 9.2 (a whole
     * first release gains little: its later files reuse the pages). The
     * output is no larger (0.1 % smaller over 400 of bench/s3.sh's files);
     * above 64 KiB the window made no difference worth a rule. */
    int lgwin = len <= BROTLI_SMALL_WINDOW_MAX ? 16 : BROTLI_DEFAULT_WINDOW;
    char *buf = xmalloc(cap);
    *outlen = cap;
    if (!BrotliEncoderCompress(BROTLI_QUALITY, lgwin, mode, len, in, outlen, (uint8_t *)buf)) {
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

/* One whole Brotli stream and nothing after it whose output is exactly want. */
static int unbrotli_equals(const char *enc, size_t enclen, const void *want, size_t len)
{
    BrotliDecoderState *s = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    if (!s)
        return 0;
    uint8_t *piece = xmalloc(CHECK_PIECE);
    const uint8_t *in = (const uint8_t *)enc, *w = want;
    size_t avail_in = enclen, done = 0;
    BrotliDecoderResult r;
    do {
        uint8_t *outp = piece;
        size_t avail_out = CHECK_PIECE;
        r = BrotliDecoderDecompressStream(s, &avail_in, &in, &avail_out, &outp, NULL);
        size_t n = CHECK_PIECE - avail_out;
        if (n > len - done || memcmp(piece, w + done, n) != 0) {
            r = BROTLI_DECODER_RESULT_ERROR;
            break;
        }
        done += n;
    } while (r == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT);
    int ok = r == BROTLI_DECODER_RESULT_SUCCESS && avail_in == 0 && done == len;
    BrotliDecoderDestroyInstance(s);
    free(piece);
    return ok;
}

int release_variant_decodes(int coding, const char *enc, size_t enclen, const void *body,
                            size_t len)
{
    if (enclen > UINT32_MAX)
        return 0; /* zlib counts in uInt; variants are of bodies up to 8 MiB */
    return coding == RELEASE_GZIP ? gunzip_equals(enc, enclen, body, len)
                                  : unbrotli_equals(enc, enclen, body, len);
}

int release_compress(int coding, const char *path, const void *in, size_t len, char **out,
                     size_t *outlen, struct sw_err *err)
{
    int rc = coding == RELEASE_GZIP ? gzip_once(in, len, out, outlen)
                                    : brotli_once(path, in, len, out, outlen);
    if (rc)
        return sw_err_set(err, SW_EIO, "%s: %s compression failed", path,
                          release_variant_names[coding]);
    if (!release_variant_decodes(coding, *out, *outlen, in, len)) {
        free(*out);
        *out = NULL;
        return sw_err_set(err, SW_EIO, "%s: the %s variant does not decode to the file", path,
                          release_variant_names[coding]);
    }
    return 0;
}

int release_gunzip(const char *name, const void *in, size_t len, char **out, size_t *outlen,
                   int *single, struct sw_err *err)
{
    /* A gzip bomb (a few KiB that inflate to gigabytes) must not take the
     * machine's memory: the output is bounded both absolutely and by ratio
     * (deflate cannot exceed about 1032:1, and real text is nearer 10:1). */
    uint64_t max = (uint64_t)len * RELEASE_GUNZIP_RATIO;
    if (max > RELEASE_GUNZIP_MAX)
        max = RELEASE_GUNZIP_MAX;
    z_stream z = {0};
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return sw_err_set(err, SW_EIO, "%s: cannot start zlib", name);
    struct buf b = BUF_INIT;
    int rc = 0, members = 0;
    const unsigned char *p = in, *end = p + len;
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
    for (;;) {
        buf_grow(&b, 65536);
        z.next_out = (Bytef *)b.data + b.len;
        z.avail_out = (uInt)(b.cap - b.len - 1); /* the last byte keeps buf's NUL */
        size_t before = z.avail_out;
        int zrc = inflate(&z, Z_NO_FLUSH);
        b.len += before - z.avail_out;
        b.data[b.len] = '\0';
        if (b.len > max) {
            rc = sw_err_set(err, SW_EINVAL,
                            "%s: decompresses to more than %llu bytes (over %d times its size, "
                            "or over 1 GiB): refused as a gzip bomb; ship the uncompressed file "
                            "beside it, or remove it",
                            name, (unsigned long long)max, RELEASE_GUNZIP_RATIO);
            goto out;
        }
        if (zrc == Z_STREAM_END) {
            members++;
            const unsigned char *next = z.next_in;
            if (next == end)
                break;
            /* Concatenated members are one valid gzip file (RFC 1952 §2.2);
             * anything else after the end is not. */
            if (end - next < 2 || next[0] != 0x1f || next[1] != 0x8b) {
                rc = sw_err_set(err, SW_EINVAL, "%s: data after the end of the gzip stream", name);
                goto out;
            }
            inflateReset(&z);
            continue;
        }
        if (zrc == Z_BUF_ERROR && z.avail_in == 0 && z.next_in == end) {
            rc = sw_err_set(err, SW_EINVAL, "%s: the gzip stream is cut short", name);
            goto out;
        }
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            rc = sw_err_set(err, SW_EINVAL, "%s: not a valid gzip file (%s)", name,
                            z.msg ? z.msg : "corrupt data");
            goto out;
        }
        if (z.avail_in == 0 && z.next_in < end)
            z.avail_in = (uInt)((size_t)(end - z.next_in) > UINT32_MAX ? UINT32_MAX
                                                                       : (size_t)(end - z.next_in));
    }
    *single = members == 1;
    *out = buf_detach(&b, outlen);
out:
    inflateEnd(&z);
    buf_free(&b);
    return rc;
}
