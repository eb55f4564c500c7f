/*
 * The release manifest parser as it was before src/base/jsonread.c: jansson builds the tree and
 * each field is read from it. Kept out of slipway as the oracle fuzz/manifest.c and
 * tests/unit/test_release.c compare the tree-free parser with, input by input: both must take
 * and refuse the same documents, and take them to equal releases.
 */
#ifndef SLIPWAY_FUZZ_MANIFEST_ORACLE_H
#define SLIPWAY_FUZZ_MANIFEST_ORACLE_H

#include "release/internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* A header-safe value: visible ASCII and spaces (RFC 9110 section 5.5, minus
 * obs-text), bounded. Content types and cache policies become response
 * headers verbatim, so a CR or LF here would let a manifest forge headers. */
static int oracle_header_value_ok(const char *s)
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
static const char *oracle_pack_parse(json_t *o, uint64_t size, char pack[SHA256_HEX_LEN + 1], uint64_t *at)
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
static const char *oracle_variant_parse(json_t *f, int k, uint64_t size, struct release_variant *out)
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
    const char *why = oracle_pack_parse(v, (uint64_t)json_integer_value(vsize), out->pack, &out->at);
    if (why)
        return why;
    memcpy(out->blob, blob, SHA256_HEX_LEN + 1);
    out->size = (uint64_t)json_integer_value(vsize);
    return NULL;
}

/* Checks one files[] entry and fills rf; NULL or what is wrong with it. */
static const char *oracle_file_parse(json_t *f, struct release_file *rf)
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
    if (!oracle_header_value_ok(type) || !oracle_header_value_ok(cache))
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
        if ((why = oracle_variant_parse(f, k, (uint64_t)json_integer_value(size), &rf->var[k])))
            return why;
    if ((why = oracle_pack_parse(f, (uint64_t)json_integer_value(size), rf->pack, &rf->at)))
        return why;
    rf->path = xstrdup(path);
    memcpy(rf->blob, blob, SHA256_HEX_LEN + 1);
    rf->size = (uint64_t)json_integer_value(size);
    rf->type = xstrdup(type);
    rf->cache = xstrdup(cache);
    return NULL;
}

static int oracle_manifest_parse(const char *key, const char *want_id, const char *data, size_t len,
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
        const char *why = oracle_file_parse(json_array_get(files, i), rf);
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

#endif
