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
    if (!id || !created || !json_is_array(files) ||
        time_parse_iso(created, &r->created_ms) != 0) {
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
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f) {
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

char *release_manifest_dump(const struct release *r, size_t *len)
{
    char created[40];
    time_format_iso(r->created_ms, created, sizeof(created));
    json_t *files = json_array();
    for (size_t i = 0; i < r->nfiles; i++) {
        const struct release_file *f = &r->files[i];
        json_array_append_new(files, json_pack("{s:s, s:s, s:I, s:s, s:s}", "path", f->path,
                                               "blob", f->blob, "size", (json_int_t)f->size,
                                               "type", f->type, "cache", f->cache));
    }
    json_t *src = json_pack("{s:s, s:s, s:s}", "dir", r->source_dir, "user", r->user, "host",
                            r->host);
    if (r->commit)
        json_object_set_new(src, "commit", json_string(r->commit));
    if (r->ref)
        json_object_set_new(src, "ref", json_string(r->ref));
    if (r->tag)
        json_object_set_new(src, "tag", json_string(r->tag));
    json_t *root = json_pack("{s:i, s:s, s:s, s:o, s:I, s:I, s:o}", "format", 1, "id", r->id,
                             "created", created, "source", src, "files_count",
                             (json_int_t)r->nfiles, "bytes", (json_int_t)r->bytes, "files", files);
    if (r->message)
        json_object_set_new(root, "message", json_string(r->message));
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s)
        return NULL;
    if (len)
        *len = strlen(s);
    char *copy = xstrdup(s);
    free(s);
    return copy;
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
        rc = sw_err_set(err, SW_EINVAL, "release name %s is ambiguous (%zu releases match)",
                        name, hits);
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
            return sw_err_set(err, SW_ENOTFOUND, "release %s is incomplete: body of %s (%s) missing",
                              r->id, r->files[i].path, key);
        if (rc)
            return rc;
        if (sb.size != r->files[i].size)
            return sw_err_set(err, SW_EINVAL, "release %s: body of %s has %llu bytes, expected %llu",
                              r->id, r->files[i].path, (unsigned long long)sb.size,
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
            ch = (struct release_change){'~', b->files[j].path, a->files[i].size,
                                         b->files[j].size};
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
