/*
 * Manifests: the JSON form of a release, and the read-side operations on it
 * (load, list, resolve, verify, diff, delete). A manifest is hostile input (a
 * shared bucket has many writers): every field is checked before it may become
 * a path, a header or a line of output, and one that fails is reported with
 * the key and what is wrong, never half-used.
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

void release_pack_key(const char *hex, char *out, size_t outlen)
{
    snprintf(out, outlen, RELEASE_PACK_PREFIX "%.2s/%s", hex, hex);
}

size_t release_file_bodies(const struct release_file *f,
                           struct release_body out[RELEASE_VARIANTS + 1])
{
    size_t n = 0;
    out[n++] = (struct release_body){f->blob, f->size, f->pack[0] ? f->pack : NULL, f->at, 0};
    for (int k = 0; k < RELEASE_VARIANTS; k++) {
        const struct release_variant *v = &f->var[k];
        if (v->blob[0])
            out[n++] =
                (struct release_body){v->blob, v->size, v->pack[0] ? v->pack : NULL, v->at, k + 1};
    }
    return n;
}

void release_body_key(const struct release_body *b, char *out, size_t outlen)
{
    if (b->pack)
        release_pack_key(b->pack, out, outlen);
    else
        release_blob_key(b->blob, out, outlen);
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
    free(r->run);
    free(r);
}

int release_id_valid(const char *id)
{
    size_t n = 0;
    if (!((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= 'A' && id[0] <= 'Z') ||
          (id[0] >= '0' && id[0] <= '9')))
        return 0;
    for (; id[n]; n++) {
        char c = id[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return n <= RELEASE_ID_MAX;
}

int release_path_valid(const char *path)
{
    size_t n = strlen(path);
    if (n == 0 || n > RELEASE_PATH_MAX || !utf8_valid(path, 1) || strchr(path, '\\'))
        return 0;
    /* Every segment non-empty and neither "." nor "..": then the path is in
     * the normal form the edge's request normaliser produces, so the two can
     * be compared byte for byte, and it can never climb out of a directory. */
    for (const char *seg = path;;) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return 0;
        if (!end)
            return 1;
        seg = end + 1;
    }
}

/* A header-safe value: visible ASCII and spaces (RFC 9110 section 5.5, minus
 * obs-text), bounded. Content types and cache policies become response
 * headers verbatim, so a CR or LF here would let a manifest forge headers. */
static int header_value_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e)
            return 0;
    return n > 0 && n <= 256;
}

/* The optional place of a body of size bytes in a pack: "pack" (64 lowercase
 * hex digits) and "at" (its offset), both or neither. The edge reads the
 * slice [at, at + size) of the pack into memory: bounded, so a hostile
 * manifest cannot make it read past RELEASE_PACK_MAX or hold large bodies. */
static const char *pack_parse(json_t *o, uint64_t size, char pack[SHA256_HEX_LEN + 1], uint64_t *at)
{
    json_t *p = json_object_get(o, "pack"), *a = json_object_get(o, "at");
    pack[0] = '\0';
    *at = 0;
    if (!p && !a)
        return NULL;
    if (!json_is_string(p) || !json_is_integer(a))
        return "a packed body needs pack and at";
    if (!hex_lower_valid(json_string_value(p), SHA256_HEX_LEN))
        return "pack is not 64 lowercase hex digits";
    if (size > RELEASE_PACK_BODY_MAX)
        return "a packed body is larger than 64 KiB";
    if (json_integer_value(a) < 0 || (uint64_t)json_integer_value(a) > RELEASE_PACK_MAX - size)
        return "at is out of range";
    memcpy(pack, json_string_value(p), SHA256_HEX_LEN + 1);
    *at = (uint64_t)json_integer_value(a);
    return NULL;
}

/* The optional variant k of a file of size bytes: {"blob": HEX, "size": N}
 * under the key "gzip" or "br". It becomes a cache path and a body served in
 * place of the file, so it is held to the file's own rules, and must be
 * smaller than the file: a hostile manifest cannot make the edge send more
 * than the file itself to a client that asked for compression. */
static const char *variant_parse(json_t *f, int k, uint64_t size, struct release_variant *out)
{
    json_t *v = json_object_get(f, release_variant_names[k]);
    if (!v)
        return NULL;
    const char *blob = json_string_value(json_object_get(v, "blob"));
    json_t *vsize = json_object_get(v, "size");
    if (!json_is_object(v) || !blob || !json_is_integer(vsize))
        return "a variant (gzip, br) needs blob and size";
    if (!hex_lower_valid(blob, SHA256_HEX_LEN))
        return "a variant's blob is not 64 lowercase hex digits";
    if (json_integer_value(vsize) <= 0 || (uint64_t)json_integer_value(vsize) >= size)
        return "a variant's size is not between 1 and the file's size";
    const char *why = pack_parse(v, (uint64_t)json_integer_value(vsize), out->pack, &out->at);
    if (why)
        return why;
    memcpy(out->blob, blob, SHA256_HEX_LEN + 1);
    out->size = (uint64_t)json_integer_value(vsize);
    return NULL;
}

/* Checks one files[] entry and fills rf; NULL or what is wrong with it. */
static const char *file_parse(json_t *f, struct release_file *rf)
{
    const char *why;
    const char *path = json_string_value(json_object_get(f, "path"));
    const char *blob = json_string_value(json_object_get(f, "blob"));
    const char *type = json_string_value(json_object_get(f, "type"));
    const char *cache = json_string_value(json_object_get(f, "cache"));
    json_t *size = json_object_get(f, "size");
    json_t *mtime = json_object_get(f, "mtime");
    if (!json_is_object(f) || !path || !blob || !type || !cache || !json_is_integer(size))
        return "needs path, blob, size, type and cache";
    if (!release_path_valid(path))
        return "path is not a normal relative path of printable UTF-8";
    if (!hex_lower_valid(blob, SHA256_HEX_LEN))
        return "blob is not 64 lowercase hex digits";
    if (json_integer_value(size) < 0 || json_integer_value(size) > RELEASE_FILE_SIZE_MAX)
        return "size is out of range";
    if (!header_value_ok(type) || !header_value_ok(cache))
        return "type or cache is not a printable ASCII header value";
    /* Optional (manifests before it lack it); it becomes a Last-Modified date, which has
     * four-digit years. */
    if (mtime && !json_is_null(mtime) &&
        (!json_is_integer(mtime) || json_integer_value(mtime) < 0 ||
         json_integer_value(mtime) > RELEASE_MTIME_MAX))
        return "mtime is not whole seconds from 1970 to 9999";
    rf->has_mtime = mtime && !json_is_null(mtime);
    rf->mtime = rf->has_mtime ? (int64_t)json_integer_value(mtime) : 0;
    for (int k = 0; k < RELEASE_VARIANTS; k++)
        if ((why = variant_parse(f, k, (uint64_t)json_integer_value(size), &rf->var[k])))
            return why;
    if ((why = pack_parse(f, (uint64_t)json_integer_value(size), rf->pack, &rf->at)))
        return why;
    rf->path = xstrdup(path);
    memcpy(rf->blob, blob, SHA256_HEX_LEN + 1);
    rf->size = (uint64_t)json_integer_value(size);
    rf->type = xstrdup(type);
    rf->cache = xstrdup(cache);
    return NULL;
}

int release_manifest_parse(const char *key, const char *want_id, const char *data, size_t len,
                           struct release **out, struct sw_err *err)
{
    json_t *root;
    int rc = json_doc_parse(key, data, len, &root, err);
    if (rc)
        return rc;
    struct release *r = xcalloc(1, sizeof(*r));
    struct json_fields jf = JSON_FIELDS_INIT(key);
    json_t *files = json_object_get(root, "files");
    json_t *format = json_object_get(root, "format");
    const char *id = json_string_value(json_object_get(root, "id"));
    /* A time release_manifest_dump can write back (1970 to 9999). */
    r->created_ms = json_field_time(&jf, root, "created", JSON_FIELD_REQUIRED);
    if (!json_is_object(root) || !id || jf.bad || !json_is_array(files)) {
        rc = sw_err_set(err, SW_EINVAL, "%s: not a slipway manifest (needs id, created, files)",
                        key);
        goto out;
    }
    /* Format 2 may name packed bodies; slipway before packs refuses it with
     * this line rather than looking for their blobs and finding none. */
    if (format && (!json_is_integer(format) || json_integer_value(format) < 1 ||
                   json_integer_value(format) > 2)) {
        rc = sw_err_set(err, SW_EINVAL, "%s: unsupported manifest format (expected 1 or 2)", key);
        goto out;
    }
    if (!release_id_valid(id) || (want_id && strcmp(id, want_id) != 0)) {
        rc = sw_err_set(err, SW_EINVAL, "%s: the id inside is not this release's id", key);
        goto out;
    }
    if (json_array_size(files) > RELEASE_FILES_MAX) {
        rc = sw_err_set(err, SW_EINVAL, "%s: more than %d files", key, RELEASE_FILES_MAX);
        goto out;
    }
    r->id = xstrdup(id);
    r->message = json_field_str(&jf, root, "message", RELEASE_MESSAGE_MAX, JSON_FIELD_MULTILINE);
    json_t *src = json_object_get(root, "source");
    if (src && !json_is_object(src))
        json_field_bad(&jf, "source", "not an object");
    r->user = json_field_str(&jf, src, "user", 256, 0);
    r->host = json_field_str(&jf, src, "host", 256, 0);
    r->source_dir = json_field_str(&jf, src, "dir", 4096, 0);
    r->commit = json_field_str(&jf, src, "commit", 64, 0);
    r->ref = json_field_str(&jf, src, "ref", 1024, 0);
    r->tag = json_field_str(&jf, src, "tag", 1024, 0);
    /* Unlike the others, a null dirty is refused: slipway writes true or false. */
    json_t *dirty = json_object_get(src, "dirty");
    if (dirty && !json_is_boolean(dirty))
        json_field_bad(&jf, "dirty", "not true or false");
    r->dirty = json_is_true(dirty);
    /* The run id is a name others look up (runs/<id>/): the same strict form as a release id. */
    r->run = json_field_str(&jf, src, "run", RELEASE_ID_MAX, 0);
    if (r->run && !release_id_valid(r->run))
        json_field_bad(&jf, "run", "not a run id");
    if (jf.bad) {
        rc = sw_err_set(err, SW_EINVAL,
                        "%s: message or source holds a value that is not printable UTF-8 or is "
                        "too long",
                        key);
        goto out;
    }
    r->files = xcalloc(json_array_size(files) + 1, sizeof(*r->files));
    for (size_t i = 0; i < json_array_size(files); i++) {
        struct release_file *rf = &r->files[r->nfiles];
        const char *why = file_parse(json_array_get(files, i), rf);
        if (why) {
            rc = sw_err_set(err, SW_EINVAL, "%s: files[%zu]: %s", key, i, why);
            goto out;
        }
        r->nfiles++;
        /* Sorted and unique: lookups bisect, and one path must mean one body. */
        if (i > 0 && strcmp(r->files[i - 1].path, rf->path) >= 0) {
            rc = sw_err_set(err, SW_EINVAL, "%s: files[%zu]: paths are not sorted and unique", key,
                            i);
            goto out;
        }
        r->bytes += rf->size; /* cannot overflow: both factors are bounded */
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
    if (!release_id_valid(id))
        return sw_err_set(err, SW_EINVAL, "'%s' is not a release id", id);
    char *key = manifest_key(id), *data = NULL;
    size_t len;
    int rc = store_get(st, key, &data, &len, NULL, err);
    if (rc == SW_ENOTFOUND)
        rc = sw_err_set(err, SW_ENOTFOUND, "release %s not found", id);
    if (!rc)
        rc = release_manifest_parse(key, id, data, len, out, err);
    free(data);
    free(key);
    return rc;
}

/* Appends s as a JSON string (RFC 8259 section 7); 0 when s is not UTF-8. */
static int put_str(struct buf *b, const char *s)
{
    if (!utf8_valid(s, 0))
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

/* ,"pack":"HEX","at":N for a packed body; nothing for one in its own blob. */
static int put_pack(struct buf *b, const char *pack, uint64_t at)
{
    if (!pack[0])
        return 1;
    if (!hex_lower_valid(pack, SHA256_HEX_LEN))
        return 0;
    buf_addf(b, ",\"pack\":\"%s\",\"at\":", pack);
    put_u64(b, at);
    return 1;
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
    int packed = 0;
    for (size_t i = 0; i < r->nfiles && !packed; i++) {
        struct release_body bv[RELEASE_VARIANTS + 1];
        size_t nbv = release_file_bodies(&r->files[i], bv);
        for (size_t j = 0; j < nbv; j++)
            packed |= bv[j].pack != NULL;
    }
    buf_adds(&b, packed ? "{\"format\":2,\"id\":" : "{\"format\":1,\"id\":");
    int ok = r->id && put_str(&b, r->id);
    buf_addf(&b, ",\"created\":\"%s\",\"source\":{", created);
    /* Every field optional, as the parser has them: a manifest written
     * elsewhere without a source directory reads back as it was. */
    size_t first = b.len;
    ok = ok && put_opt(&b, "dir", r->source_dir) && put_opt(&b, "user", r->user) &&
         put_opt(&b, "host", r->host) && put_opt(&b, "commit", r->commit) &&
         put_opt(&b, "ref", r->ref) && put_opt(&b, "tag", r->tag) && put_opt(&b, "run", r->run);
    if (b.len > first) { /* no comma before the first member */
        memmove(b.data + first, b.data + first + 1, b.len - first);
        b.len--;
    }
    if (r->commit)
        buf_adds(&b, r->dirty ? ",\"dirty\":true" : ",\"dirty\":false");
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
        if (f->has_mtime && f->mtime >= 0) {
            buf_adds(&b, ",\"mtime\":");
            put_u64(&b, (uint64_t)f->mtime);
        }
        buf_adds(&b, ",\"type\":");
        ok = ok && put_str(&b, f->type);
        buf_adds(&b, ",\"cache\":");
        ok = ok && put_str(&b, f->cache);
        for (int k = 0; k < RELEASE_VARIANTS; k++)
            if (f->var[k].blob[0]) {
                buf_addf(&b, ",\"%s\":{\"blob\":", release_variant_names[k]);
                ok = ok && put_str(&b, f->var[k].blob);
                buf_adds(&b, ",\"size\":");
                put_u64(&b, f->var[k].size);
                ok = ok && put_pack(&b, f->var[k].pack, f->var[k].at);
                buf_add(&b, "}", 1);
            }
        ok = ok && put_pack(&b, f->pack, f->at);
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
        char *id = xstrndup(k, strlen(k) - 5);
        if (!release_id_valid(id)) { /* someone else's object: not ours to list */
            free(id);
            continue;
        }
        (*ids)[(*n)++] = id;
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
    /* A whole id wins over every prefix and suffix: one HEAD of its manifest, no
     * listing (thousands of releases on S3, and a key may lack s3:ListBucket). */
    if (release_id_valid(name)) {
        char *key = xasprintf("releases/%s.json", name);
        struct store_stat sb;
        int found = store_head(st, key, &sb, 0, err);
        free(key);
        if (found == 0) {
            *id = xstrdup(name);
            return 0;
        }
        if (found != SW_ENOTFOUND)
            return found;
    }
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

static int cmp_key128(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int release_verify(struct store *st, const struct release *r, struct sw_err *err)
{
    static const char *const what[RELEASE_VARIANTS + 1] = {"", "gzip ", "br "};
    /* Every body of every file: its identity, then its variants. Packed
     * bodies share their pack's key: each distinct key is looked up once. */
    size_t cap = r->nfiles * (RELEASE_VARIANTS + 1) + 1, n = 0, nk = 0;
    char(*keys)[128] = xcalloc(cap, sizeof(*keys));
    const char **kp = xcalloc(cap, sizeof(*kp));
    struct vbody {
        const struct release_file *f;
        struct release_body b;
    } *bodies = xcalloc(cap, sizeof(*bodies));
    for (size_t i = 0; i < r->nfiles; i++) {
        struct release_body bv[RELEASE_VARIANTS + 1];
        size_t nbv = release_file_bodies(&r->files[i], bv);
        for (size_t j = 0; j < nbv; j++, n++) {
            bodies[n] = (struct vbody){&r->files[i], bv[j]};
            release_body_key(&bv[j], keys[n], sizeof(keys[n]));
            kp[n] = keys[n];
        }
    }
    qsort(kp, n, sizeof(*kp), cmp_key128);
    for (size_t i = 0; i < n; i++)
        if (nk == 0 || strcmp(kp[nk - 1], kp[i]) != 0)
            kp[nk++] = kp[i];
    struct store_stat *sb = xcalloc(nk + 1, sizeof(*sb));
    int *rcs = xcalloc(nk + 1, sizeof(*rcs));
    int rc = store_head_many(st, kp, nk, sb, rcs, err);
    for (size_t i = 0; !rc && i < n; i++) {
        const struct vbody *v = &bodies[i];
        const char *k = keys[i];
        size_t at = (size_t)((const char **)bsearch(&k, kp, nk, sizeof(*kp), cmp_key128) - kp);
        uint64_t have = sb[at].size;
        if (rcs[at] == SW_ENOTFOUND)
            rc =
                sw_err_set(err, SW_ENOTFOUND, "release %s is incomplete: %sbody of %s (%s) missing",
                           r->id, what[v->b.kind], v->f->path, keys[i]);
        else if (rcs[at])
            rc = sw_err_set(err, rcs[at], "release %s: %sbody of %s (%s) cannot be looked up",
                            r->id, what[v->b.kind], v->f->path, keys[i]);
        else if (!v->b.pack && have != v->b.size)
            rc =
                sw_err_set(err, SW_EINVAL, "release %s: %sbody of %s has %llu bytes, expected %llu",
                           r->id, what[v->b.kind], v->f->path, (unsigned long long)have,
                           (unsigned long long)v->b.size);
        else if (v->b.pack && have < v->b.at + v->b.size)
            rc = sw_err_set(
                err, SW_EINVAL, "release %s: %sbody of %s ends at byte %llu of %s, which has %llu",
                r->id, what[v->b.kind], v->f->path, (unsigned long long)(v->b.at + v->b.size),
                keys[i], (unsigned long long)have);
    }
    free(sb);
    free(rcs);
    free(bodies);
    free(kp);
    free(keys);
    return rc;
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
