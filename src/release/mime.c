/*
 * Content types and cache policies by file name. The table covers what static
 * sites and build artifacts ship; text types carry charset=utf-8 because
 * browsers otherwise guess, and a wrong guess breaks non-ASCII pages.
 */
#include "release/release.h"

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

/* ---- fingerprints ---------------------------------------------------------
 * A file may be cached for a year only if its name changes whenever its body
 * does. Bundlers put a digest of the body in the name, and people put versions,
 * dates, sizes and camel-case words with digits there ("jquery-3.7.1",
 * "photo-20240101", "Inter-Bold2023"), so each shape below is exactly what a
 * bundler emits and must also look like a digest. A name the rules miss is only
 * revalidated, never stale; an environment can still list its own patterns. */

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_lower(int c)
{
    return c >= 'a' && c <= 'z';
}

static int is_upper(int c)
{
    return c >= 'A' && c <= 'Z';
}

/* webpack [contenthash] (20 hex digits, 16 with xxhash64, [contenthash:8] in
 * Create React App), Parcel (8), Hugo's fingerprint (64 for SHA-256), Next.js
 * (16), gulp-rev (10): at least 8 lower-case hex digits with a letter and a
 * digit, so no date or timestamp. Below 12 digits, letters and digits must
 * also alternate at least twice, which a hex word and a number ("cafe2024",
 * "abcd1234", "2024face") do not; 91% of random 8-digit digests do. */
static int hex_digest(const char *s, size_t n)
{
    if (n < 8)
        return 0;
    size_t digits = 0, changes = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return 0;
        digits += (size_t)is_digit(s[i]);
        if (i > 0 && is_digit(s[i]) != is_digit(s[i - 1]))
            changes++;
    }
    return n < 12 ? changes >= 2 : digits > 0 && digits < n;
}

/* "550e8400-e29b-41d4-a716-446655440000" up to end or a '.'/'-': a UUID names
 * a thing, an avatar say, whose body may change; its hex is not a digest. */
static int uuid_at(const char *s, const char *end)
{
    if (end - s < 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        int c = (unsigned char)s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!is_digit(c) && !((c | 0x20) >= 'a' && (c | 0x20) <= 'f')) {
            return 0;
        }
    }
    return s + 36 == end || s[36] == '.' || s[36] == '-';
}

/* Rollup and Vite ([name]-[hash], 8 characters of base64url: A-Z a-z 0-9 - _)
 * and esbuild ([name]-[hash], 8 of base32: A-Z 2-7). Names fill the same 8
 * places ("Q3Report", "Profile1", "v1beta12", "IMG12345", "Q3REPORT"), so the
 * characters must also read as noise, not words: a digit; never three
 * lower-case letters in a row, which every word of a name brings; and either a
 * lone lower-case letter, not the first, between a non-lower-case character and
 * a capital ("BxK", "3fK": camel case starts each word with its capital, so it
 * does that only with two-letter words) or four consonants in a row ("LHWQ",
 * unpronounceable). base64url also needs both cases, base32 has one. This
 * accepts about 38% of random base64url and 30% of random base32 hashes; the
 * rest are revalidated. */
static int short_digest(const char *s)
{
    int digit = 0, upper = 0, lower = 0, base32 = 1, flip = 0, consonants4 = 0;
    int lower_run = 0, consonant_run = 0;
    for (int i = 0; i < 8; i++) {
        int c = (unsigned char)s[i];
        if (!is_upper(c) && !(c >= '2' && c <= '7'))
            base32 = 0;
        if (is_digit(c) || c == '-' || c == '_') {
            digit |= is_digit(c);
            lower_run = consonant_run = 0;
            continue;
        }
        if (is_lower(c)) {
            lower = 1;
            if (++lower_run == 3)
                return 0;
        } else if (is_upper(c)) {
            upper = 1;
            if (i >= 2 && lower_run == 1)
                flip = 1;
            lower_run = 0;
        } else {
            return 0;
        }
        consonant_run = strchr("aeiouAEIOU", c) ? 0 : consonant_run + 1;
        if (consonant_run == 4)
            consonants4 = 1;
    }
    return digit && (flip || consonants4) && (base32 || (upper && lower));
}

static int fingerprinted(const char *path)
{
    /* Next.js names everything under _next/static/ by content or build id and
     * serves it immutable itself; a basePath puts it below a directory. */
    if (str_starts_with(path, "_next/static/") || strstr(path, "/_next/static/"))
        return 1;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *ext = strrchr(base, '.');
    if (!ext || ext == base || ext[1] == '\0')
        return 0;
    /* Hex digests are whole '.'/'-' separated segments of the stem: "main.3f2a9c1b.chunk.js". */
    for (const char *p = base; p < ext;) {
        if (uuid_at(p, ext)) {
            p += 36;
            if (p < ext)
                p++; /* the '-' or '.' after it */
            continue;
        }
        const char *q = p;
        while (q < ext && *q != '.' && *q != '-')
            q++;
        if (hex_digest(p, (size_t)(q - p)))
            return 1;
        p = q + 1;
    }
    /* Short digests are the 8 characters between a '-' after the name and a
     * '.': "index-BxK3f9a2.js", "index-BxK3f9a2.js.map". */
    for (size_t i = 10; i <= (size_t)(ext - base); i++)
        if (base[i] == '.' && base[i - 9] == '-' && short_digest(base + i - 8))
            return 1;
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
