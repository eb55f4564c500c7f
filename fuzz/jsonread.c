/*
 * libFuzzer target for the tree-free JSON reader (src/base/jsonread.c), held to jansson, which
 * json_doc_parse uses for every other document: each input is taken by both or refused by both
 * (but for jansson dropping one NUL byte after a number or literal, which the reader refuses:
 * inputs with a NUL are checked one way only), and what the reader reads, rebuilt as a jansson
 * tree, equals jansson's own tree: the same keys in the same order, the same decoded strings,
 * integers and reals. A refusal says where, in one line.
 */
#include "base/base.h"
#include "fuzz.h"

#include <jansson.h>
#include <string.h>

/* The value of the given kind as a new tree, or NULL once the reader has failed. */
static json_t *rebuild(struct json_reader *r, int kind)
{
    json_t *v = NULL;
    int rc;
    switch (kind) {
    case JSON_READ_OBJECT:
        v = json_object();
        while ((rc = json_read_member(r)) == 1) {
            char *key = xstrdup(r->str.data);
            json_t *m = rebuild(r, json_read_value(r));
            /* A duplicate is refused when the object closes: the first stays till then. */
            if (m && !json_object_get(v, key))
                json_object_set_new(v, key, m);
            else
                json_decref(m);
            free(key);
            if (!m)
                break;
        }
        break;
    case JSON_READ_ARRAY:
        v = json_array();
        while ((rc = json_read_element(r)) == 1) {
            json_t *e = rebuild(r, json_read_value(r));
            if (!e)
                break;
            json_array_append_new(v, e);
        }
        break;
    case JSON_READ_STRING:
        CHECK(strlen(r->str.data) == r->str.len);
        return json_stringn(r->str.data, r->str.len);
    case JSON_READ_INT:
        return json_integer(r->num);
    case JSON_READ_REAL:
        return json_real(r->real);
    case JSON_READ_TRUE:
        return json_true();
    case JSON_READ_FALSE:
        return json_false();
    case JSON_READ_NULL:
        return json_null();
    default:
        return NULL;
    }
    if (r->why) {
        json_decref(v);
        return NULL;
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct json_reader r;
    json_read_init(&r, (const char *)data, size);
    json_t *mine = rebuild(&r, json_read_value(&r));
    int ok = mine && json_read_end(&r) == 0;
    json_t *theirs = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    int has_nul = memchr(data, '\0', size) != NULL;
    if (ok && !theirs)
        fprintf(stderr, "the reader took what jansson refuses\n");
    if (!ok && theirs && !has_nul)
        fprintf(stderr, "the reader refused what jansson takes: %s\n", r.why);
    CHECK(!ok || theirs);
    CHECK(ok || !theirs || has_nul);
    if (ok && theirs)
        CHECK(json_equal(mine, theirs));
    if (!ok) {
        struct sw_err err = {0};
        CHECK(r.why);
        CHECK(json_read_err(&r, "doc.json", &err) == SW_EINVAL);
        CHECK(!strchr(err.msg, '\n') && str_starts_with(err.msg, "doc.json: "));
    }
    json_decref(mine);
    json_decref(theirs);
    json_read_free(&r);
    return 0;
}
