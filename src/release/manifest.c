/*
 * Manifests: the JSON form of a release, and the read-side operations on it
 * (load, list, resolve, verify, diff, delete). Manifests are immutable, so a
 * manifest that parses is trusted as a whole; one that does not is reported
 * with the key and jansson's line and column.
 */
#include "release/internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void release_blob_key(const char *hex, char *out, size_t outlen)
{
    snprintf(out, outlen, RELEASE_BLOB_PREFIX "%.2s/%s", hex, hex);
}

static char *manifest_key(const char *id)
{
    return xasprintf("releases/%s.json", id);
}

void release_free(struct release *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nfiles; i++) {
        free(r->files[i].path);
        free(r->files[i].type);
        free(r->files[i].cache);
    }
    free(r->files);
    free(r->id);
    free(r->message);
    free(r->user);
    free(r->host);
    free(r->source_dir);
    free(r->commit);
    free(r->ref);
    free(r->tag);
    free(r);
}

static char *dup_opt(json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    return s ? xstrdup(s) : NULL;
}

/* Parses a manifest document; on error err names key and position. */
static int manifest_parse(const char *key, const char *data, size_t len, struct release **out,
                          struct sw_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(data, len, 0, &je);
    if (!root)
        return sw_err_set(err, SW_EINVAL, "%s: %s at line %d column %d", key, je.text, je.line,
                          je.column);
    struct release *r = xcalloc(1, sizeof(*r));
    int rc = 0;
    json_t *files = json_object_get(root, "files");
    const char *id = json_string_value(json_object_get(root, "id"));
    const char *created = json_string_value(json_object_get(root, "created"));
    if (!id || !created || !json_is_array(files) || time_parse_iso(created, &r->created_ms) != 0) {
        rc = sw_err_set(err, SW_EINVAL, "%s: not a slipway manifest (needs id, created, files)",
                        key);
        goto out;
    }
    r->id = xstrdup(id);
    r->message = dup_opt(root, "message");
    json_t *src = json_object_get(root, "source");
    r->user = dup_opt(src, "user");
    r->host = dup_opt(src, "host");
    r->source_dir = dup_opt(src, "dir");
    r->commit = dup_opt(src, "commit");
    r->ref = dup_opt(src, "ref");
    r->tag = dup_opt(src, "tag");
    r->files = xcalloc(json_array_size(files), sizeof(*r->files));
    for (size_t i = 0; i < json_array_size(files); i++) {
        json_t *f = json_array_get(files, i);
        const char *path = json_string_value(json_object_get(f, "path"));
        const char *blob = json_string_value(json_object_get(f, "blob"));
        const char *type = json_string_value(json_object_get(f, "type"));
        const char *cache = json_string_value(json_object_get(f, "cache"));
        json_t *size = json_object_get(f, "size");
        if (!path || !blob || strlen(blob) != SHA256_HEX_LEN || !type || !cache ||
            !json_is_integer(size) || json_integer_value(size) < 0) {
            rc = sw_err_set(err, SW_EINVAL, "%s: files[%zu] is incomplete", key, i);
            goto out;
        }
        struct release_file *rf = &r->files[r->nfiles++];
        rf->path = xstrdup(path);
        memcpy(rf->blob, blob, SHA256_HEX_LEN + 1);
        rf->size = (uint64_t)json_integer_value(size);
        rf->type = xstrdup(type);
        rf->cache = xstrdup(cache);
        r->bytes += rf->size;
    }
out:
    json_decref(root);
    if (rc)
        release_free(r);
    else
        *out = r;
    return rc;
}

int release_load(struct store *st, const char *id, struct release **out, struct sw_err *err)
{
    char *key = manifest_key(id), *data = NULL;
    size_t len;
    int rc = store_get(st, key, &data, &len, NULL, err);
    if (rc == SW_ENOTFOUND)
        rc = sw_err_set(err, SW_ENOTFOUND, "release %s not found", id);
    if (!rc)
        rc = manifest_parse(key, data, len, out, err);
    free(data);
    free(key);
    return rc;
}

/* Here rather than in create.c: the manifest writer below is its other user. */
int release_utf8_ok(const char *s, int printable)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p++;
        if (printable && (c < 0x20 || c == 0x7f))
            return 0;
        if (c < 0x80)
            continue;
        int n;
        unsigned cp, min;
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07, min = 0x10000;
        else
            return 0; /* a continuation byte, an overlong lead (c0, c1) or f5..ff */
        for (int i = 0; i < n; i++, p++) {
            if ((*p & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (*p & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            (printable && cp >= 0x80 && cp < 0xa0))
            return 0;
    }
    return 1;
}

/* Appends s as a JSON string (RFC 8259 section 7); 0 when s is not UTF-8. */
static int put_str(struct buf *b, const char *s)
{
    if (!release_utf8_ok(s, 0))
        return 0;
    buf_add(b, "\"", 1);
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_add(b, run, (size_t)(p - run));
        if (c == '"' || c == '\\')
            buf_add(b, (const char[]){'\\', (char)c}, 2);
        else if (c == '\n')
            buf_adds(b, "\\n");
        else if (c == '\t')
            buf_adds(b, "\\t");
        else
            buf_addf(b, "\\u%04x", c);
        run = p + 1;
    }
    buf_adds(b, run);
    buf_add(b, "\"", 1);
    return 1;
}

/* ,"name":"s" when s is non-NULL; 0 when s is not UTF-8. */
static int put_opt(struct buf *b, const char *name, const char *s)
{
    if (!s)
        return 1;
    buf_addf(b, ",\"%s\":", name);
    return put_str(b, s);
}

static void put_u64(struct buf *b, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    buf_add(b, num, (size_t)n);
}

/* Written directly rather than through jansson: a manifest of 10,000 files is
 * 50,000 small JSON values, and building them as a tree first was a fifth of
 * the time of a release in which nothing changed. release_load (jansson) reads
 * it back; the unit tests hold the two to each other. */
char *release_manifest_dump(const struct release *r, size_t *len)
{
    char created[40];
    time_format_iso(r->created_ms, created, sizeof(created));
    struct buf b = BUF_INIT;
    buf_grow(&b, 256 + r->nfiles * 192);
    buf_adds(&b, "{\"format\":1,\"id\":");
    int ok = r->id && r->source_dir && put_str(&b, r->id);
    buf_addf(&b, ",\"created\":\"%s\",\"source\":{\"dir\":", created);
    ok = ok && put_str(&b, r->source_dir) && put_opt(&b, "user", r->user) &&
         put_opt(&b, "host", r->host) && put_opt(&b, "commit", r->commit) &&
         put_opt(&b, "ref", r->ref) && put_opt(&b, "tag", r->tag);
    buf_adds(&b, "},\"files_count\":");
    put_u64(&b, r->nfiles);
    buf_adds(&b, ",\"bytes\":");
    put_u64(&b, r->bytes);
    buf_adds(&b, ",\"files\":[");
    for (size_t i = 0; ok && i < r->nfiles; i++) {
        const struct release_file *f = &r->files[i];
        buf_adds(&b, i ? ",{\"path\":" : "{\"path\":");
        ok = put_str(&b, f->path);
        buf_adds(&b, ",\"blob\":");
        ok = ok && put_str(&b, f->blob);
        buf_adds(&b, ",\"size\":");
        put_u64(&b, f->size);
        buf_adds(&b, ",\"type\":");
        ok = ok && put_str(&b, f->type);
        buf_adds(&b, ",\"cache\":");
        ok = ok && put_str(&b, f->cache);
        buf_add(&b, "}", 1);
    }
    buf_add(&b, "]", 1);
    ok = ok && put_opt(&b, "message", r->message);
    buf_add(&b, "}", 1);
    if (!ok) {
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b, len);
}

int release_list(struct store *st, char ***ids, size_t *n, struct sw_err *err)
{
    struct store_list l;
    int rc = store_list_all(st, "releases/", &l, err);
    if (rc)
        return rc;
    *ids = xcalloc(l.n, sizeof(char *));
    *n = 0;
    for (size_t i = 0; i < l.n; i++) {
        const char *k = l.keys[i] + strlen("releases/");
        if (!str_ends_with(k, ".json") || strchr(k, '/'))
            continue;
        (*ids)[(*n)++] = xstrndup(k, strlen(k) - 5);
    }
    store_list_free(&l);
    return 0;
}

void release_ids_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

int release_resolve(struct store *st, const char *name, char **id, struct sw_err *err)
{
    if (!name[0])
        return sw_err_set(err, SW_EINVAL, "empty release name");
    char **ids;
    size_t n, hits = 0, hit = 0;
    int rc = release_list(st, &ids, &n, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(ids[i], name)) {
            hits = 1, hit = i;
            break;
        }
        if (str_starts_with(ids[i], name) || str_ends_with(ids[i], name))
            hits++, hit = i;
    }
    if (hits == 1)
        *id = xstrdup(ids[hit]);
    else if (hits == 0)
        rc = sw_err_set(err, SW_ENOTFOUND, "release %s not found", name);
    else
        rc = sw_err_set(err, SW_EINVAL, "release name %s is ambiguous (%zu releases match)", name,
                        hits);
    release_ids_free(ids, n);
    return rc;
}

int release_verify(struct store *st, const struct release *r, struct sw_err *err)
{
    char key[128];
    for (size_t i = 0; i < r->nfiles; i++) {
        /* Duplicate bodies are adjacent only by chance; a head is cheap either way. */
        struct store_stat sb;
        release_blob_key(r->files[i].blob, key, sizeof(key));
        int rc = store_head(st, key, &sb, 0, err);
        if (rc == SW_ENOTFOUND)
            return sw_err_set(err, SW_ENOTFOUND,
                              "release %s is incomplete: body of %s (%s) missing", r->id,
                              r->files[i].path, key);
        if (rc)
            return rc;
        if (sb.size != r->files[i].size)
            return sw_err_set(err, SW_EINVAL,
                              "release %s: body of %s has %llu bytes, expected %llu", r->id,
                              r->files[i].path, (unsigned long long)sb.size,
                              (unsigned long long)r->files[i].size);
    }
    return 0;
}

int release_delete(struct store *st, const char *id, struct sw_err *err)
{
    char *key = manifest_key(id);
    int rc = store_delete(st, key, NULL, err);
    free(key);
    return rc;
}

int release_diff(const struct release *a, const struct release *b, struct release_change **out,
                 size_t *n)
{
    size_t i = 0, j = 0, cap = 16;
    *out = xmalloc(cap * sizeof(**out));
    *n = 0;
    while (i < a->nfiles || j < b->nfiles) {
        int c = i == a->nfiles   ? 1
                : j == b->nfiles ? -1
                                 : strcmp(a->files[i].path, b->files[j].path);
        struct release_change ch = {0};
        if (c < 0) {
            ch = (struct release_change){'-', a->files[i].path, a->files[i].size, 0};
            i++;
        } else if (c > 0) {
            ch = (struct release_change){'+', b->files[j].path, 0, b->files[j].size};
            j++;
        } else {
            int same = !strcmp(a->files[i].blob, b->files[j].blob) &&
                       !strcmp(a->files[i].type, b->files[j].type) &&
                       !strcmp(a->files[i].cache, b->files[j].cache);
            ch = (struct release_change){'~', b->files[j].path, a->files[i].size, b->files[j].size};
            i++, j++;
            if (same)
                continue;
        }
        if (*n == cap)
            *out = xrealloc(*out, (cap *= 2) * sizeof(**out));
        (*out)[(*n)++] = ch;
    }
    return 0;
}
