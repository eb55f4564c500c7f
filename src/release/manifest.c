/*
 * Manifests: the JSON form of a release, and the read-side operations on it
 * (load, list, resolve, verify, diff, delete). A manifest is hostile input (a
 * shared bucket has many writers): every field is checked before it may become
 * a path, a header or a line of output, and one that fails is reported with
 * the key and what is wrong, never half-used.
 */
#include "release/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    free(r->base);
    for (size_t i = 0; i < r->nremoved; i++)
        free(r->removed[i]);
    free(r->removed);
    for (size_t i = 0; i < r->nchain; i++)
        free(r->chain[i]);
    free(r->chain);
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

/*
 * Reading is done without a JSON tree (src/base/jsonread.c): a file's members may come in any
 * order, so each is kept as read (its kind, an integer, or a string in the scratch buffer) and
 * checked once the file's object has closed, by the same rules as every field always had.
 * fuzz/manifest.c holds this parser to the jansson one it replaced, input by input.
 */
struct field {
    int kind; /* JSON_READ_*, 0 when absent */
    long long num;
    size_t off; /* strings: in the scratch buffer */
};

struct body_fields {
    int kind; /* of the variant's value itself; 0 when absent */
    struct field blob, size, pack, at;
};

struct file_fields {
    struct body_fields self; /* its kind is the element's */
    struct field path, type, cache, mtime;
    struct body_fields var[RELEASE_VARIANTS];
};

/* Reads a member's value into f: scalars kept, containers read past. */
static int read_field(struct json_reader *jr, struct buf *scratch, struct field *f)
{
    f->kind = json_read_value(jr);
    if (f->kind == JSON_READ_STRING) {
        f->off = scratch->len;
        buf_add(scratch, jr->str.data, jr->str.len + 1);
    } else if (f->kind == JSON_READ_INT) {
        f->num = jr->num;
    }
    return json_read_skip(jr, f->kind);
}

static const char *str_of(const struct buf *scratch, const struct field *f)
{
    return f->kind == JSON_READ_STRING ? scratch->data + f->off : NULL;
}

/* Members of a body's object (a file, or a variant): the body's own fields, the rest read past.
 * In a file, "gzip" and "br" are variants, read by read_variant. */
static int read_body_member(struct json_reader *jr, struct buf *scratch, struct body_fields *b,
                            struct file_fields *file)
{
    const char *k = jr->str.data;
    struct field *f = !strcmp(k, "blob")   ? &b->blob
                      : !strcmp(k, "size") ? &b->size
                      : !strcmp(k, "pack") ? &b->pack
                      : !strcmp(k, "at")   ? &b->at
                                           : NULL;
    if (file && !f) {
        f = !strcmp(k, "path")    ? &file->path
            : !strcmp(k, "type")  ? &file->type
            : !strcmp(k, "cache") ? &file->cache
            : !strcmp(k, "mtime") ? &file->mtime
                                  : NULL;
        for (int v = 0; !f && v < RELEASE_VARIANTS; v++)
            if (!strcmp(k, release_variant_names[v])) {
                struct body_fields *var = &file->var[v];
                int rc;
                var->kind = json_read_value(jr);
                if (var->kind != JSON_READ_OBJECT)
                    return json_read_skip(jr, var->kind);
                while ((rc = json_read_member(jr)) == 1)
                    if (read_body_member(jr, scratch, var, NULL))
                        return JSON_READ_ERROR;
                return rc;
            }
    }
    if (f)
        return read_field(jr, scratch, f);
    int kind = json_read_value(jr);
    return json_read_skip(jr, kind);
}

/* The optional place of a body of size bytes in a pack: "pack" (64 lowercase
 * hex digits) and "at" (its offset), both or neither. The edge reads the
 * slice [at, at + size) of the pack into memory: bounded, so a hostile
 * manifest cannot make it read past RELEASE_PACK_MAX or hold large bodies. */
static const char *pack_check(const struct buf *scratch, const struct body_fields *b, uint64_t size,
                              char pack[SHA256_HEX_LEN + 1], uint64_t *at)
{
    pack[0] = '\0';
    *at = 0;
    if (!b->pack.kind && !b->at.kind)
        return NULL;
    const char *p = str_of(scratch, &b->pack);
    if (!p || b->at.kind != JSON_READ_INT)
        return "a packed body needs pack and at";
    if (!hex_lower_valid(p, SHA256_HEX_LEN))
        return "pack is not 64 lowercase hex digits";
    if (size > RELEASE_PACK_BODY_MAX)
        return "a packed body is larger than 64 KiB";
    if (b->at.num < 0 || (uint64_t)b->at.num > RELEASE_PACK_MAX - size)
        return "at is out of range";
    memcpy(pack, p, SHA256_HEX_LEN + 1);
    *at = (uint64_t)b->at.num;
    return NULL;
}

/* The optional variant of a file of size bytes: {"blob": HEX, "size": N}
 * under the key "gzip" or "br". It becomes a cache path and a body served in
 * place of the file, so it is held to the file's own rules, and must be
 * smaller than the file: a hostile manifest cannot make the edge send more
 * than the file itself to a client that asked for compression. */
static const char *variant_check(const struct buf *scratch, const struct body_fields *v,
                                 uint64_t size, struct release_variant *out)
{
    if (!v->kind)
        return NULL;
    const char *blob = str_of(scratch, &v->blob);
    if (v->kind != JSON_READ_OBJECT || !blob || v->size.kind != JSON_READ_INT)
        return "a variant (gzip, br) needs blob and size";
    if (!hex_lower_valid(blob, SHA256_HEX_LEN))
        return "a variant's blob is not 64 lowercase hex digits";
    if (v->size.num <= 0 || (uint64_t)v->size.num >= size)
        return "a variant's size is not between 1 and the file's size";
    const char *why = pack_check(scratch, v, (uint64_t)v->size.num, out->pack, &out->at);
    if (why)
        return why;
    memcpy(out->blob, blob, SHA256_HEX_LEN + 1);
    out->size = (uint64_t)v->size.num;
    return NULL;
}

/* Checks one files[] entry as read and fills rf; NULL or what is wrong with it. */
static const char *file_check(const struct buf *scratch, const struct file_fields *ff,
                              struct release_file *rf)
{
    const char *why;
    const char *path = str_of(scratch, &ff->path), *blob = str_of(scratch, &ff->self.blob);
    const char *type = str_of(scratch, &ff->type), *cache = str_of(scratch, &ff->cache);
    long long size = ff->self.size.num;
    if (ff->self.kind != JSON_READ_OBJECT || !path || !blob || !type || !cache ||
        ff->self.size.kind != JSON_READ_INT)
        return "needs path, blob, size, type and cache";
    if (!release_path_valid(path))
        return "path is not a normal relative path of printable UTF-8";
    if (!hex_lower_valid(blob, SHA256_HEX_LEN))
        return "blob is not 64 lowercase hex digits";
    if (size < 0 || size > RELEASE_FILE_SIZE_MAX)
        return "size is out of range";
    if (!header_value_ok(type) || !header_value_ok(cache))
        return "type or cache is not a printable ASCII header value";
    /* Optional (manifests before it lack it); it becomes a Last-Modified date, which has
     * four-digit years. */
    rf->has_mtime = ff->mtime.kind && ff->mtime.kind != JSON_READ_NULL;
    if (rf->has_mtime &&
        (ff->mtime.kind != JSON_READ_INT || ff->mtime.num < 0 || ff->mtime.num > RELEASE_MTIME_MAX))
        return "mtime is not whole seconds from 1970 to 9999";
    rf->mtime = rf->has_mtime ? (int64_t)ff->mtime.num : 0;
    for (int k = 0; k < RELEASE_VARIANTS; k++)
        if ((why = variant_check(scratch, &ff->var[k], (uint64_t)size, &rf->var[k])))
            return why;
    if ((why = pack_check(scratch, &ff->self, (uint64_t)size, rf->pack, &rf->at)))
        return why;
    rf->path = xstrdup(path);
    memcpy(rf->blob, blob, SHA256_HEX_LEN + 1);
    rf->size = (uint64_t)size;
    rf->type = xstrdup(type);
    rf->cache = xstrdup(cache);
    return NULL;
}

/* What a manifest's top level and its "source" hold besides the files. */
struct head_fields {
    struct field id, format, created, message, source;
    struct field user, host, dir, commit, ref, tag, run, dirty;
    struct field base, depth, files_count, bytes;
    int removed_kind;
};

/* A string field as json_field_str reads it: null is absent, anything but text of at most max
 * bytes is bad. Caller frees. */
static char *text_field(struct json_fields *jf, const struct buf *scratch, const struct field *f,
                        const char *name, size_t max, int multiline)
{
    if (!f->kind || f->kind == JSON_READ_NULL)
        return NULL;
    const char *s = str_of(scratch, f);
    if (!s || !text_valid(s, max, multiline)) {
        json_field_bad(jf, name,
                       !s ? "not a string" : "not printable UTF-8 text, or longer than allowed");
        return NULL;
    }
    return xstrdup(s);
}

static int read_source(struct json_reader *jr, struct buf *scratch, struct head_fields *h)
{
    h->source.kind = json_read_value(jr);
    if (h->source.kind != JSON_READ_OBJECT)
        return json_read_skip(jr, h->source.kind);
    int rc;
    while ((rc = json_read_member(jr)) == 1) {
        const char *k = jr->str.data;
        struct field *f = !strcmp(k, "user")     ? &h->user
                          : !strcmp(k, "host")   ? &h->host
                          : !strcmp(k, "dir")    ? &h->dir
                          : !strcmp(k, "commit") ? &h->commit
                          : !strcmp(k, "ref")    ? &h->ref
                          : !strcmp(k, "tag")    ? &h->tag
                          : !strcmp(k, "run")    ? &h->run
                          : !strcmp(k, "dirty")  ? &h->dirty
                                                 : NULL;
        struct field skip;
        if (read_field(jr, scratch, f ? f : &skip))
            return JSON_READ_ERROR;
    }
    return rc;
}

/* The files array, each element checked once it has closed. */
static int read_files(struct json_reader *jr, struct buf *scratch, const char *key,
                      struct release *r, size_t *cap, struct sw_err *err)
{
    int rc;
    while ((rc = json_read_element(jr)) == 1) {
        size_t i = r->nfiles;
        if (i >= RELEASE_FILES_MAX)
            return sw_err_set(err, SW_EINVAL, "%s: more than %d files", key, RELEASE_FILES_MAX);
        struct file_fields ff = {0};
        size_t mark = scratch->len;
        ff.self.kind = json_read_value(jr);
        if (ff.self.kind == JSON_READ_OBJECT) {
            while ((rc = json_read_member(jr)) == 1)
                if (read_body_member(jr, scratch, &ff.self, &ff))
                    break;
        } else {
            rc = json_read_skip(jr, ff.self.kind);
        }
        if (rc < 0)
            return JSON_READ_ERROR;
        if (i == *cap) {
            *cap = *cap ? *cap * 2 : 256;
            r->files = xrealloc(r->files, (*cap + 1) * sizeof(*r->files));
        }
        struct release_file *rf = &r->files[i];
        memset(rf, 0, sizeof(*rf));
        const char *why = file_check(scratch, &ff, rf);
        if (why)
            return sw_err_set(err, SW_EINVAL, "%s: files[%zu]: %s", key, i, why);
        r->nfiles++;
        /* Sorted and unique: lookups bisect, and one path must mean one body. */
        if (i > 0 && strcmp(r->files[i - 1].path, rf->path) >= 0)
            return sw_err_set(err, SW_EINVAL, "%s: files[%zu]: paths are not sorted and unique",
                              key, i);
        r->bytes += rf->size; /* cannot overflow: both factors are bounded */
        scratch->len = mark;
    }
    return rc;
}

/* A delta's "removed": paths in normal form, sorted and unique, at most as many as a
 * release may hold. */
static int read_removed(struct json_reader *jr, const char *key, struct release *r,
                        struct sw_err *err)
{
    int rc;
    size_t cap = 0;
    while ((rc = json_read_element(jr)) == 1) {
        int kind = json_read_value(jr);
        size_t i = r->nremoved;
        if (kind != JSON_READ_STRING || !release_path_valid(jr->str.data))
            return sw_err_set(err, SW_EINVAL, "%s: removed[%zu]: not a path in normal form", key,
                              i);
        if (i >= RELEASE_FILES_MAX)
            return sw_err_set(err, SW_EINVAL, "%s: removes more than %d files", key,
                              RELEASE_FILES_MAX);
        if (i > 0 && strcmp(r->removed[i - 1], jr->str.data) >= 0)
            return sw_err_set(err, SW_EINVAL, "%s: removed[%zu]: paths are not sorted and unique",
                              key, i);
        if (i == cap)
            r->removed = xrealloc(r->removed, (cap = cap ? cap * 2 : 16) * sizeof(char *));
        r->removed[r->nremoved++] = xstrdup(jr->str.data);
    }
    return rc;
}

/* Reads the whole document: the head's fields into h, the files into r. JSON_READ_ERROR for
 * a syntax error (the reader says what), another negative code with err set. */
static int read_manifest(struct json_reader *jr, struct buf *scratch, const char *key,
                         struct head_fields *h, int *files_kind, struct release *r,
                         struct sw_err *err)
{
    size_t cap = 0;
    int rc, kind = json_read_value(jr);
    if (kind != JSON_READ_OBJECT) {
        if (json_read_skip(jr, kind) || json_read_end(jr))
            return JSON_READ_ERROR;
        return sw_err_set(err, SW_EINVAL, "%s: not a slipway manifest (needs id, created, files)",
                          key);
    }
    while ((rc = json_read_member(jr)) == 1) {
        const char *k = jr->str.data;
        if (!strcmp(k, "files")) {
            *files_kind = json_read_value(jr);
            rc = *files_kind == JSON_READ_ARRAY ? read_files(jr, scratch, key, r, &cap, err)
                                                : json_read_skip(jr, *files_kind);
        } else if (!strcmp(k, "source")) {
            rc = read_source(jr, scratch, h);
        } else if (!strcmp(k, "removed")) {
            h->removed_kind = json_read_value(jr);
            rc = h->removed_kind == JSON_READ_ARRAY ? read_removed(jr, key, r, err)
                                                    : json_read_skip(jr, h->removed_kind);
        } else {
            struct field skip = {0};
            struct field *f = !strcmp(k, "id")            ? &h->id
                              : !strcmp(k, "format")      ? &h->format
                              : !strcmp(k, "created")     ? &h->created
                              : !strcmp(k, "message")     ? &h->message
                              : !strcmp(k, "base")        ? &h->base
                              : !strcmp(k, "depth")       ? &h->depth
                              : !strcmp(k, "files_count") ? &h->files_count
                              : !strcmp(k, "bytes")       ? &h->bytes
                                                          : &skip;
            rc = read_field(jr, scratch, f);
        }
        if (rc < 0)
            return rc;
    }
    if (rc < 0 || json_read_end(jr))
        return JSON_READ_ERROR;
    return 0;
}

/* Format 3's fields: the release it is written over (another id), its depth, the whole
 * release's totals and what it removes, none of which another format may hold. */
static int delta_check(const struct buf *scratch, const char *key, const struct head_fields *h,
                       struct release *r, struct sw_err *err)
{
    int delta = h->format.kind == JSON_READ_INT && h->format.num == 3;
    if (!delta) {
        if (h->base.kind || h->depth.kind || h->removed_kind)
            return sw_err_set(err, SW_EINVAL, "%s: base, depth and removed belong to format 3 only",
                              key);
        return 0;
    }
    const char *base = str_of(scratch, &h->base);
    if (!base || !release_id_valid(base) || !strcmp(base, r->id))
        return sw_err_set(err, SW_EINVAL, "%s: base is not another release's id", key);
    if (h->depth.kind != JSON_READ_INT || h->depth.num < 1 || h->depth.num > RELEASE_DEPTH_MAX)
        return sw_err_set(err, SW_EINVAL, "%s: depth is not from 1 to %d", key, RELEASE_DEPTH_MAX);
    if (h->files_count.kind != JSON_READ_INT || h->files_count.num < 1 ||
        h->files_count.num > RELEASE_FILES_MAX || h->bytes.kind != JSON_READ_INT ||
        h->bytes.num < 0)
        return sw_err_set(err, SW_EINVAL, "%s: files_count or bytes is missing or out of range",
                          key);
    if (h->removed_kind != JSON_READ_ARRAY)
        return sw_err_set(err, SW_EINVAL, "%s: removed is not an array of paths", key);
    /* One path, one fate: changed or removed, not both. */
    for (size_t i = 0, j = 0; i < r->nremoved && j < r->nfiles;) {
        int c = strcmp(r->removed[i], r->files[j].path);
        if (c == 0)
            return sw_err_set(err, SW_EINVAL, "%s: removed[%zu] is also among the files", key, i);
        c < 0 ? i++ : j++;
    }
    r->base = xstrdup(base);
    r->depth = (int)h->depth.num;
    r->total_files = (size_t)h->files_count.num;
    r->total_bytes = (uint64_t)h->bytes.num;
    return 0;
}

/* The head's fields, checked as json_field_* always checked them. */
static int head_check(const struct buf *scratch, const char *key, const char *want_id,
                      const struct head_fields *h, int files_kind, struct release *r,
                      struct sw_err *err)
{
    struct json_fields jf = JSON_FIELDS_INIT(key);
    const char *id = str_of(scratch, &h->id);
    const char *created = str_of(scratch, &h->created);
    int64_t ms = 0;
    /* A time release_manifest_dump can write back (1970 to 9999). */
    if (!h->created.kind || h->created.kind == JSON_READ_NULL)
        json_field_bad(&jf, "created", "missing");
    else if (!created || time_parse_iso(created, &ms) != 0 || ms < 0 || ms > JSON_TIME_MAX_MS)
        json_field_bad(&jf, "created", "not a time from 1970 to 9999");
    r->created_ms = jf.bad ? 0 : ms;
    if (!id || jf.bad || files_kind != JSON_READ_ARRAY)
        return sw_err_set(err, SW_EINVAL, "%s: not a slipway manifest (needs id, created, files)",
                          key);
    /* Format 2 may name packed bodies, format 3 be written over another
     * release; slipway before either refuses it with this line rather than
     * looking for blobs it cannot find or serving part of a release. */
    if (h->format.kind &&
        (h->format.kind != JSON_READ_INT || h->format.num < 1 || h->format.num > 3))
        return sw_err_set(err, SW_EINVAL, "%s: unsupported manifest format (expected 1, 2 or 3)",
                          key);
    if (!release_id_valid(id) || (want_id && strcmp(id, want_id) != 0))
        return sw_err_set(err, SW_EINVAL, "%s: the id inside is not this release's id", key);
    r->id = xstrdup(id);
    int rc = delta_check(scratch, key, h, r, err);
    if (rc)
        return rc;
    r->message = text_field(&jf, scratch, &h->message, "message", RELEASE_MESSAGE_MAX, 1);
    if (h->source.kind && h->source.kind != JSON_READ_OBJECT)
        json_field_bad(&jf, "source", "not an object");
    r->user = text_field(&jf, scratch, &h->user, "user", 256, 0);
    r->host = text_field(&jf, scratch, &h->host, "host", 256, 0);
    r->source_dir = text_field(&jf, scratch, &h->dir, "dir", 4096, 0);
    r->commit = text_field(&jf, scratch, &h->commit, "commit", 64, 0);
    r->ref = text_field(&jf, scratch, &h->ref, "ref", 1024, 0);
    r->tag = text_field(&jf, scratch, &h->tag, "tag", 1024, 0);
    /* Unlike the others, a null dirty is refused: slipway writes true or false. */
    if (h->dirty.kind && h->dirty.kind != JSON_READ_TRUE && h->dirty.kind != JSON_READ_FALSE)
        json_field_bad(&jf, "dirty", "not true or false");
    r->dirty = h->dirty.kind == JSON_READ_TRUE;
    /* The run id is a name others look up (runs/<id>/): the same strict form as a release id. */
    r->run = text_field(&jf, scratch, &h->run, "run", RELEASE_ID_MAX, 0);
    if (r->run && !release_id_valid(r->run))
        json_field_bad(&jf, "run", "not a run id");
    if (jf.bad)
        return sw_err_set(err, SW_EINVAL,
                          "%s: message or source holds a value that is not printable UTF-8 or "
                          "is too long",
                          key);
    return 0;
}

int release_manifest_parse(const char *key, const char *want_id, const char *data, size_t len,
                           struct release **out, struct sw_err *err)
{
    struct json_reader jr;
    struct buf scratch = BUF_INIT;
    struct head_fields h = {0};
    int files_kind = 0;
    struct release *r = xcalloc(1, sizeof(*r));
    json_read_init(&jr, data, len);
    int rc = read_manifest(&jr, &scratch, key, &h, &files_kind, r, err);
    if (rc && jr.why) /* the document is not JSON: the reader says where */
        rc = json_read_err(&jr, key, err);
    if (!rc)
        rc = head_check(&scratch, key, want_id, &h, files_kind, r, err);
    if (!r->files)
        r->files = xcalloc(1, sizeof(*r->files));
    else /* one zeroed entry past the last, as the array has always had */
        memset(&r->files[r->nfiles], 0, sizeof(*r->files));
    json_read_free(&jr);
    buf_free(&scratch);
    if (rc)
        release_free(r);
    else
        *out = r;
    return rc;
}

int release_load(struct store *st, const char *id, struct release **out, struct sw_err *err)
{
    return release_load_copy(st, id, NULL, out, err);
}

/* ---- the local copy of manifests ------------------------------------------------ */

/* Copies kept in a directory, at most this many (the newest by time written). */
#define MANIFEST_COPIES_MAX (RELEASE_DEPTH_MAX + 4) /* a chain of deltas and its full base fit */

static char *copy_path(const char *dir, const char *id)
{
    return xasprintf("%s/%s.json", dir, id);
}

/* Removes all but the newest MANIFEST_COPIES_MAX copies. */
static void copies_prune(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct copy {
        char name[RELEASE_ID_MAX + 8];
        struct timespec t;
    } *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat sb;
        size_t len = strlen(de->d_name);
        if (len < 6 || len >= sizeof(v->name) || strcmp(de->d_name + len - 5, ".json") != 0 ||
            fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (n == cap)
            v = xrealloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
        memcpy(v[n].name, de->d_name, len + 1); /* len < sizeof(name): checked above */
        v[n++].t = sb.st_mtim;
    }
    /* A few entries: the oldest found by a pass each. */
    while (n > MANIFEST_COPIES_MAX) {
        size_t old = 0;
        for (size_t i = 1; i < n; i++)
            if (v[i].t.tv_sec < v[old].t.tv_sec ||
                (v[i].t.tv_sec == v[old].t.tv_sec && v[i].t.tv_nsec < v[old].t.tv_nsec))
                old = i;
        unlinkat(dirfd(d), v[old].name, 0);
        v[old] = v[--n];
    }
    free(v);
    closedir(d);
}

void release_copy_put(const char *dir, const char *id, const char *doc, size_t len)
{
    if (!dir || !release_id_valid(id) || fs_mkdir_p(dir, NULL) != 0)
        return;
    /* Not fsynced: a copy a crash tore fails to parse (or names another id) and is read
     * from the store again. */
    char *path = copy_path(dir, id);
    if (fs_write_replace(path, doc, len, NULL) == 0)
        copies_prune(dir);
    free(path);
}

/* One manifest as written (a delta unresolved), through the copy in dir. */
static int load_one(struct store *st, const char *id, const char *dir, struct release **out,
                    struct sw_err *err)
{
    if (dir && release_id_valid(id)) {
        char *path = copy_path(dir, id), *data = NULL;
        size_t len;
        int rc = file_read_all(path, &data, &len, NULL);
        free(path);
        /* Checked as any manifest: a copy that does not parse, or names another id, is
         * read from the store again. */
        if (rc == 0 && release_manifest_parse(id, id, data, len, out, NULL) == 0) {
            free(data);
            return 0;
        }
        free(data);
    }
    if (!release_id_valid(id))
        return sw_err_set(err, SW_EINVAL, "'%s' is not a release id", id);
    char *key = manifest_key(id), *data = NULL;
    size_t len;
    int rc = store_get(st, key, &data, &len, NULL, err);
    if (rc == SW_ENOTFOUND)
        rc = sw_err_set(err, SW_ENOTFOUND, "release %s not found", id);
    if (!rc)
        rc = release_manifest_parse(key, id, data, len, out, err);
    if (!rc)
        release_copy_put(dir, id, data, len);
    free(data);
    free(key);
    return rc;
}

/* Moves f's strings to the file returned; f keeps none. */
static struct release_file take_file(struct release_file *f)
{
    struct release_file t = *f;
    f->path = f->type = f->cache = NULL;
    return t;
}

/* r's files over its base b's: b's, less what r removes, with r's in place of
 * b's of the same path and r's new ones, in path order. Everything moves to r.
 * r must add up to the totals it states. */
static int delta_merge(struct release *r, struct release *b, struct sw_err *err)
{
    size_t n = 0, i = 0, j = 0, k = 0;
    uint64_t bytes = 0;
    struct release_file *v = xcalloc(b->nfiles + r->nfiles + 1, sizeof(*v));
    int rc = 0;
    while (i < b->nfiles || j < r->nfiles) {
        int c = i == b->nfiles   ? 1
                : j == r->nfiles ? -1
                                 : strcmp(b->files[i].path, r->files[j].path);
        if (c >= 0) { /* r's own: new, or in place of b's */
            i += c == 0;
            v[n] = take_file(&r->files[j++]);
        } else {
            const char *p = b->files[i].path;
            if (k < r->nremoved && strcmp(r->removed[k], p) < 0)
                goto not_in_base; /* sorted: it is nowhere in b */
            if (k < r->nremoved && !strcmp(r->removed[k], p)) {
                k++, i++;
                continue;
            }
            v[n] = take_file(&b->files[i++]);
        }
        bytes += v[n++].size;
    }
    if (k < r->nremoved)
        goto not_in_base;
    if (n != r->total_files || bytes != r->total_bytes) {
        rc = sw_err_set(err, SW_EINVAL,
                        "release %s: over %s it holds %zu files of %llu bytes, not the %zu of "
                        "%llu it states",
                        r->id, b->id, n, (unsigned long long)bytes, r->total_files,
                        (unsigned long long)r->total_bytes);
        goto out;
    }
    for (size_t x = 0; x < r->nfiles; x++) /* all moved; only the array is left */
        free(r->files[x].path);
    free(r->files);
    r->files = v;
    r->nfiles = n;
    r->bytes = bytes;
    v = NULL;
    for (size_t x = 0; x < r->nremoved; x++)
        free(r->removed[x]);
    free(r->removed);
    r->removed = NULL;
    r->nremoved = 0;
    /* Its chain: b, then b's. */
    r->chain = xcalloc(b->nchain + 1, sizeof(char *));
    r->chain[r->nchain++] = xstrdup(b->id);
    for (size_t x = 0; x < b->nchain; x++)
        r->chain[r->nchain++] = xstrdup(b->chain[x]);
    goto out;
not_in_base:
    rc = sw_err_set(err, SW_EINVAL, "release %s: removed[%zu] is not a file of %s, its base", r->id,
                    k, b->id);
out:
    if (v) { /* moved strings go back to be freed with their release */
        for (size_t x = 0; x < n; x++) {
            free(v[x].path);
            free(v[x].type);
            free(v[x].cache);
        }
        free(v);
    }
    return rc;
}

static char **strs_dup(char *const *v, size_t n)
{
    char **d = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        d[i] = xstrdup(v[i]);
    return d;
}

/* A deep copy of a resolved release (nothing removed). */
static struct release *release_dup(const struct release *r)
{
    struct release *d = xcalloc(1, sizeof(*d));
    *d = *r;
    d->id = xstrdup(r->id);
    d->message = xstrdup_or_null(r->message);
    d->user = xstrdup_or_null(r->user);
    d->host = xstrdup_or_null(r->host);
    d->source_dir = xstrdup_or_null(r->source_dir);
    d->commit = xstrdup_or_null(r->commit);
    d->ref = xstrdup_or_null(r->ref);
    d->tag = xstrdup_or_null(r->tag);
    d->run = xstrdup_or_null(r->run);
    d->base = xstrdup_or_null(r->base);
    d->removed = NULL;
    d->nremoved = 0;
    d->chain = strs_dup(r->chain, r->nchain);
    d->files = xcalloc(r->nfiles + 1, sizeof(*d->files));
    for (size_t i = 0; i < r->nfiles; i++) {
        d->files[i] = r->files[i];
        d->files[i].path = xstrdup(r->files[i].path);
        d->files[i].type = xstrdup(r->files[i].type);
        d->files[i].cache = xstrdup(r->files[i].cache);
    }
    return d;
}

/* release_load_memo's one release. */
static pthread_mutex_t memo_mu = PTHREAD_MUTEX_INITIALIZER;
static int memo_on;
static char *memo_url;
static struct release *memo_r;

void release_load_memo(int on)
{
    pthread_mutex_lock(&memo_mu);
    memo_on = on;
    if (!on) {
        release_free(memo_r);
        free(memo_url);
        memo_r = NULL;
        memo_url = NULL;
    }
    pthread_mutex_unlock(&memo_mu);
}

static struct release *memo_get(struct store *st, const char *id)
{
    struct release *r = NULL;
    pthread_mutex_lock(&memo_mu);
    if (memo_on && memo_r && !strcmp(memo_url, store_url(st)) && !strcmp(memo_r->id, id))
        r = release_dup(memo_r);
    pthread_mutex_unlock(&memo_mu);
    return r;
}

static void memo_put(struct store *st, const struct release *r)
{
    pthread_mutex_lock(&memo_mu);
    if (memo_on) {
        release_free(memo_r);
        free(memo_url);
        memo_r = release_dup(r);
        memo_url = xstrdup(store_url(st));
    }
    pthread_mutex_unlock(&memo_mu);
}

int release_load_copy(struct store *st, const char *id, const char *dir, struct release **out,
                      struct sw_err *err)
{
    struct release *r = memo_get(st, id), *b = NULL;
    if (r) {
        *out = r;
        return 0;
    }
    int rc = load_one(st, id, dir, &r, err);
    if (rc || !r->base)
        goto out;
    /* Depth falls by one a manifest: a chain ends, within RELEASE_DEPTH_MAX reads. */
    struct sw_err berr = {0};
    rc = release_load_copy(st, r->base, dir, &b, &berr);
    if (rc)
        rc = sw_err_set(err, rc, "release %s is written over %s: %s", r->id, r->base, berr.msg);
    else if (b->depth != r->depth - 1)
        rc = sw_err_set(err, SW_EINVAL,
                        "release %s: depth %d, over %s of depth %d (each is one more than its "
                        "base's)",
                        r->id, r->depth, b->id, b->depth);
    else
        rc = delta_merge(r, b, err);
out:
    release_free(b);
    if (rc) {
        release_free(r);
        r = NULL;
    } else {
        memo_put(st, r);
    }
    *out = r;
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

/* By hand, as the rest: snprintf's format parsing was a tenth of a dump. */
static void put_u64(struct buf *b, uint64_t v)
{
    char num[24], *p = num + sizeof(num);
    do
        *--p = (char)('0' + v % 10);
    while ((v /= 10));
    buf_add(b, p, (size_t)(num + sizeof(num) - p));
}

/* ,"pack":"HEX","at":N for a packed body; nothing for one in its own blob. */
static int put_pack(struct buf *b, const char *pack, uint64_t at)
{
    if (!pack[0])
        return 1;
    if (!hex_lower_valid(pack, SHA256_HEX_LEN))
        return 0;
    buf_adds(b, ",\"pack\":\"");
    buf_add(b, pack, SHA256_HEX_LEN);
    buf_adds(b, "\",\"at\":");
    put_u64(b, at);
    return 1;
}

/* Enough for the whole document as slipway writes it (names escaped are
 * rare): grown once, not copied as it grows (2 ms of a 1.2 MB manifest). */
static size_t dump_estimate(const struct release *r)
{
    size_t n = 1024;
    for (size_t i = 0; i < r->nremoved; i++)
        n += strlen(r->removed[i]) + 4;
    for (size_t i = 0; i < r->nfiles; i++) {
        const struct release_file *f = &r->files[i];
        struct release_body bv[RELEASE_VARIANTS + 1];
        /* Per body: its blob, size, pack and offset with their names. */
        n += 96 + strlen(f->path) + (f->type ? strlen(f->type) : 0) +
             (f->cache ? strlen(f->cache) : 0) + release_file_bodies(f, bv) * 200;
    }
    return n;
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
    buf_grow(&b, dump_estimate(r));
    int packed = 0;
    for (size_t i = 0; i < r->nfiles && !packed; i++) {
        struct release_body bv[RELEASE_VARIANTS + 1];
        size_t nbv = release_file_bodies(&r->files[i], bv);
        for (size_t j = 0; j < nbv; j++)
            packed |= bv[j].pack != NULL;
    }
    buf_adds(&b, r->base  ? "{\"format\":3,\"id\":"
                 : packed ? "{\"format\":2,\"id\":"
                          : "{\"format\":1,\"id\":");
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
    buf_add(&b, "}", 1);
    if (r->base) {
        buf_adds(&b, ",\"base\":");
        ok = ok && put_str(&b, r->base);
        buf_adds(&b, ",\"depth\":");
        put_u64(&b, (uint64_t)r->depth);
    }
    buf_adds(&b, ",\"files_count\":");
    put_u64(&b, r->base ? r->total_files : r->nfiles);
    buf_adds(&b, ",\"bytes\":");
    put_u64(&b, r->base ? r->total_bytes : r->bytes);
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
                buf_adds(&b, ",\"");
                buf_adds(&b, release_variant_names[k]);
                buf_adds(&b, "\":{\"blob\":");
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
    if (r->base) {
        buf_adds(&b, ",\"removed\":[");
        for (size_t i = 0; ok && i < r->nremoved; i++) {
            if (i)
                buf_add(&b, ",", 1);
            ok = put_str(&b, r->removed[i]);
        }
        buf_add(&b, "]", 1);
    }
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
