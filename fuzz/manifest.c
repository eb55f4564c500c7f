/*
 * libFuzzer target for the release manifest parser (src/release/manifest.c): every input is a
 * manifest document someone else wrote into a shared bucket. Beyond the sanitizers (and ASan's
 * leak check), it checks what the edge and the CLI rely on once a manifest is accepted: the id
 * is a release id, every blob id is 64 lowercase hex digits (it becomes a cache path), every
 * path is in normal form and the paths strictly increase (lookups bisect), types and cache
 * policies are header-safe ASCII (they become response headers verbatim), text fields hold no
 * control characters, sizes add up, modification times lie in 1970..9999 (they become
 * Last-Modified dates), a gzip or br variant is a valid blob id smaller than its file (and absent
 * means an empty id, never a partial one); and that writing the release back with
 * release_manifest_dump gives a document that parses to an equal release. A refused document
 * says why, names the key, and leaves the output untouched. And it holds the parser (no JSON
 * tree: src/base/jsonread.c) to the jansson one it replaced (manifest_oracle.h): every input is
 * taken by both or refused by both, and taken to equal releases.
 */
#include "fuzz.h"
#include "manifest_oracle.h"
#include "release/internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "releases/fuzz.json"

static int same_str(const char *a, const char *b)
{
    return a && b ? !strcmp(a, b) : a == b;
}

/* Visible ASCII and spaces only: what may go into a response header. */
static int header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

static void check_release(const struct release *r)
{
    uint64_t bytes = 0;

    CHECK(r->id && release_id_valid(r->id));
    CHECK(!r->message || text_valid(r->message, RELEASE_MESSAGE_MAX, 1));
    CHECK(!r->user || utf8_valid(r->user, 1));
    CHECK(!r->host || utf8_valid(r->host, 1));
    CHECK(!r->source_dir || utf8_valid(r->source_dir, 1));
    CHECK(!r->commit || utf8_valid(r->commit, 1));
    CHECK(!r->ref || utf8_valid(r->ref, 1));
    CHECK(!r->tag || utf8_valid(r->tag, 1));
    CHECK(r->nfiles <= RELEASE_FILES_MAX);
    CHECK(r->nfiles == 0 || r->files);
    for (size_t i = 0; i < r->nfiles; i++) {
        const struct release_file *f = &r->files[i];
        CHECK(hex_lower_valid(f->blob, SHA256_HEX_LEN));
        CHECK(release_path_valid(f->path));
        CHECK(f->path[0] != '/' && !strstr(f->path, "//") && !strchr(f->path, '\\'));
        CHECK(i == 0 || strcmp(r->files[i - 1].path, f->path) < 0);
        CHECK(f->size <= (uint64_t)RELEASE_FILE_SIZE_MAX);
        CHECK(f->has_mtime == 0 || f->has_mtime == 1);
        CHECK(!f->has_mtime || (f->mtime >= 0 && f->mtime <= RELEASE_MTIME_MAX));
        CHECK(f->type[0] && header_safe(f->type));
        CHECK(f->cache[0] && header_safe(f->cache));
        for (int k = 0; k < RELEASE_VARIANTS; k++) {
            const struct release_variant *v = &f->var[k];
            if (!v->blob[0]) {
                CHECK(v->size == 0);
                continue;
            }
            CHECK(hex_lower_valid(v->blob, SHA256_HEX_LEN));
            CHECK(v->size > 0 && v->size < f->size);
        }
        /* A packed body is small and ends inside the bound the edge reads. */
        struct release_body bv[RELEASE_VARIANTS + 1];
        size_t nbv = release_file_bodies(f, bv);
        CHECK(nbv >= 1 && nbv <= RELEASE_VARIANTS + 1);
        for (size_t j = 0; j < nbv; j++) {
            if (!bv[j].pack) {
                CHECK(bv[j].at == 0);
                continue;
            }
            CHECK(hex_lower_valid(bv[j].pack, SHA256_HEX_LEN));
            CHECK(bv[j].size <= RELEASE_PACK_BODY_MAX);
            CHECK(bv[j].at + bv[j].size <= RELEASE_PACK_MAX);
        }
        bytes += f->size;
    }
    CHECK(bytes == r->bytes);
    /* Format 3, written over another release: its fields as parsed. */
    if (!r->base) {
        CHECK(r->depth == 0 && r->nremoved == 0);
        return;
    }
    CHECK(release_id_valid(r->base) && strcmp(r->base, r->id) != 0);
    CHECK(r->depth >= 1 && r->depth <= RELEASE_DEPTH_MAX);
    CHECK(r->total_files >= 1 && r->total_files <= RELEASE_FILES_MAX);
    for (size_t i = 0; i < r->nremoved; i++) {
        CHECK(release_path_valid(r->removed[i]));
        CHECK(i == 0 || strcmp(r->removed[i - 1], r->removed[i]) < 0);
        for (size_t j = 0; j < r->nfiles; j++)
            CHECK(strcmp(r->files[j].path, r->removed[i]) != 0);
    }
}

static void check_equal(const struct release *a, const struct release *b)
{
    CHECK(!strcmp(a->id, b->id));
    CHECK(a->created_ms == b->created_ms);
    CHECK(same_str(a->message, b->message));
    CHECK(same_str(a->user, b->user));
    CHECK(same_str(a->host, b->host));
    CHECK(same_str(a->source_dir, b->source_dir));
    CHECK(same_str(a->commit, b->commit));
    CHECK(same_str(a->ref, b->ref));
    CHECK(same_str(a->tag, b->tag));
    CHECK(same_str(a->run, b->run));
    /* dirty qualifies a commit: without one it is read but never written back. */
    CHECK(a->dirty == b->dirty || !a->commit);
    CHECK(a->nfiles == b->nfiles && a->bytes == b->bytes);
    CHECK(same_str(a->base, b->base) && a->depth == b->depth && a->nremoved == b->nremoved);
    CHECK(!a->base || (a->total_files == b->total_files && a->total_bytes == b->total_bytes));
    for (size_t i = 0; i < a->nremoved; i++)
        CHECK(!strcmp(a->removed[i], b->removed[i]));
    for (size_t i = 0; i < a->nfiles; i++) {
        const struct release_file *f = &a->files[i], *g = &b->files[i];
        CHECK(!strcmp(f->path, g->path) && !strcmp(f->blob, g->blob) && f->size == g->size);
        CHECK(!strcmp(f->type, g->type) && !strcmp(f->cache, g->cache));
        CHECK(f->has_mtime == g->has_mtime && (!f->has_mtime || f->mtime == g->mtime));
        CHECK(!strcmp(f->pack, g->pack) && f->at == g->at);
        for (int k = 0; k < RELEASE_VARIANTS; k++) {
            CHECK(!strcmp(f->var[k].blob, g->var[k].blob) && f->var[k].size == g->var[k].size);
            CHECK(!strcmp(f->var[k].pack, g->var[k].pack) && f->var[k].at == g->var[k].at);
        }
    }
}

/* A refusal: SW_EINVAL, the key and a reason in the message, *out untouched. */
static void check_refused(int rc, const struct sw_err *err, struct release *out,
                          struct release *before)
{
    CHECK(rc == SW_EINVAL && err->code == rc);
    CHECK(out == before);
    CHECK(strncmp(err->msg, KEY ": ", strlen(KEY) + 2) == 0);
    CHECK(strlen(err->msg) > strlen(KEY) + 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct release untouched;
    struct release *r = &untouched, *again = &untouched;
    struct sw_err err = {0};
    char *doc, *other;
    size_t len;
    int rc;

    rc = release_manifest_parse(KEY, NULL, (const char *)data, size, &r, &err);
    struct release *o = &untouched;
    struct sw_err oerr = {0};
    int orc = oracle_manifest_parse(KEY, NULL, (const char *)data, size, &o, &oerr);
    /* jansson drops one NUL byte right after a number or a literal ("8\0,"), where this
     * parser refuses the document: stricter, so documents with a NUL are left out. The
     * oracle predates format 3 (a release written over another): it refuses one, and
     * takes base, depth or removed in an older format as unknown keys, which this
     * parser refuses. */
    int newer = (rc == 0 && r->base) ||
                (rc != 0 && (strstr(err.msg, "format 3") || strstr(err.msg, ": removed")));
    if ((rc == 0) != (orc == 0) && !memchr(data, '\0', size) && !newer) {
        fprintf(stderr, "the parsers disagree: %s / jansson: %s\n", rc ? err.msg : "taken",
                orc ? oerr.msg : "taken");
        CHECK(0);
    }
    if (rc == 0 && orc != 0 && !newer) {
        release_free(r);
        return 0;
    }
    if (rc) {
        check_refused(rc, &err, r, &untouched);
        if (orc == 0)
            release_free(o);
        return 0;
    }
    check_release(r);
    if (orc == 0) {
        if (!newer)
            check_equal(r, o);
        release_free(o);
    }

    /* Asking for another id is refused; for its own, accepted. */
    other = xasprintf("%sx", r->id);
    memset(&err, 0, sizeof(err));
    rc = release_manifest_parse(KEY, other, (const char *)data, size, &again, &err);
    check_refused(rc, &err, again, &untouched);
    free(other);

    /* What slipway writes for an accepted release reads back as the same release. */
    doc = release_manifest_dump(r, &len);
    CHECK(doc != NULL);
    CHECK(strlen(doc) == len);
    rc = release_manifest_parse(KEY, r->id, doc, len, &again, &err);
    if (rc)
        fprintf(stderr, "round trip refused: %s\n%s\n", err.msg, doc);
    CHECK(rc == 0);
    check_equal(r, again);

    release_free(again);
    free(doc);
    release_free(r);
    return 0;
}
