/*
 * Content types and cache policies by file name. The table covers what static
 * sites and build artifacts ship; text types carry charset=utf-8 because
 * browsers otherwise guess, and a wrong guess breaks non-ASCII pages.
 */
#include "release/release.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct mime {
    const char *ext;
    const char *type;
};

/* Sorted by extension for bsearch. */
static const struct mime mimes[] = {
    {"7z", "application/x-7z-compressed"},
    {"aac", "audio/aac"},
    {"apng", "image/apng"},
    {"appcache", "text/cache-manifest; charset=utf-8"},
    {"atom", "application/atom+xml; charset=utf-8"},
    {"avi", "video/x-msvideo"},
    {"avif", "image/avif"},
    {"bin", "application/octet-stream"},
    {"bmp", "image/bmp"},
    {"br", "application/x-brotli"},
    {"bz2", "application/x-bzip2"},
    {"cjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"deb", "application/vnd.debian.binary-package"},
    {"doc", "application/msword"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"eot", "application/vnd.ms-fontobject"},
    {"epub", "application/epub+zip"},
    {"flac", "audio/flac"},
    {"geojson", "application/geo+json; charset=utf-8"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"heic", "image/heic"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/x-icon"},
    {"ics", "text/calendar; charset=utf-8"},
    {"jar", "application/java-archive"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json; charset=utf-8"},
    {"jsonld", "application/ld+json; charset=utf-8"},
    {"jxl", "image/jxl"},
    {"m3u8", "application/vnd.apple.mpegurl"},
    {"m4a", "audio/mp4"},
    {"m4v", "video/mp4"},
    {"manifest", "text/cache-manifest; charset=utf-8"},
    {"map", "application/json; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"mid", "audio/midi"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"mpeg", "video/mpeg"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"opus", "audio/opus"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"rar", "application/vnd.rar"},
    {"rss", "application/rss+xml; charset=utf-8"},
    {"rtf", "application/rtf"},
    {"sh", "text/x-shellscript; charset=utf-8"},
    {"svg", "image/svg+xml; charset=utf-8"},
    {"svgz", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"tgz", "application/gzip"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"toml", "application/toml; charset=utf-8"},
    {"ts", "video/mp2t"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"vtt", "text/vtt; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"weba", "audio/webm"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json; charset=utf-8"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xhtml", "application/xhtml+xml; charset=utf-8"},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"xml", "application/xml; charset=utf-8"},
    {"xz", "application/x-xz"},
    {"yaml", "application/yaml; charset=utf-8"},
    {"yml", "application/yaml; charset=utf-8"},
    {"zip", "application/zip"},
    {"zst", "application/zstd"},
};

static int cmp_mime(const void *k, const void *m)
{
    return strcasecmp(k, ((const struct mime *)m)->ext);
}

/* The extension of the last path component, or NULL. */
static const char *ext_of(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    return dot && dot != base ? dot + 1 : NULL;
}

const char *release_content_type(const char *path)
{
    const char *ext = ext_of(path);
    if (ext) {
        const struct mime *m =
            bsearch(ext, mimes, sizeof(mimes) / sizeof(*mimes), sizeof(*mimes), cmp_mime);
        if (m)
            return m->type;
    }
    return "application/octet-stream";
}

/* A fingerprint is a name segment, delimited by '.' or '-', that is either at
 * least 8 hex digits ("app.3f9a2c1d.js", webpack) or exactly 8 characters of
 * base64url mixing letters and digits ("index-BxYz12Ab.js", Vite/Rollup). */
static int is_fingerprint(const char *s, size_t n)
{
    size_t hex = 0, digits = 0, alpha = 0, other = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isxdigit(c))
            hex++;
        if (isdigit(c))
            digits++;
        else if (isalpha(c))
            alpha++;
        else if (c != '_')
            other++;
    }
    /* All-digit runs of 8-11 are more often dates ("photo-20240101.jpg") than hashes. */
    if (n >= 8 && hex == n && (alpha > 0 || n >= 12))
        return 1;
    return n == 8 && !other && digits > 0 && alpha > 0;
}

static int fingerprinted(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *ext = strrchr(base, '.');
    if (!ext || ext == base)
        return 0;
    /* Segments of the stem after its first character: "name.HASH" / "name-HASH". */
    const char *seg = NULL;
    for (const char *p = base + 1; p <= ext; p++) {
        if (*p == '.' || *p == '-') {
            if (seg && is_fingerprint(seg, (size_t)(p - seg)))
                return 1;
            seg = p + 1;
        }
    }
    return 0;
}

const char *release_cache_policy(const char *path)
{
    const char *type = release_content_type(path);
    if (str_starts_with(type, "text/html") || str_starts_with(type, "application/xhtml"))
        return "no-cache";
    if (fingerprinted(path))
        return "public, max-age=31536000, immutable";
    return "public, max-age=300";
}
