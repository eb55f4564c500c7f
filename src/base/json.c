/*
 * Reading JSON documents field by field, over jansson. The documents slipway
 * reads back (manifests, state, events, and every later kind) may have been
 * written by anyone with access to a shared bucket, so each field is checked
 * for type, range and printable text as it is read, and the first bad one is
 * remembered with its name: the document is then refused whole, never used
 * in part. One null convention for all of them: null is absent.
 */
#include "base/base.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

int json_doc_parse(const char *name, const char *data, size_t len, json_t **out, struct sw_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        /* jansson quotes the token it stopped at ("near '...'"), raw bytes of
         * a hostile document, newlines and escapes included: one line only */
        struct buf b = BUF_INIT;
        buf_add_escaped(&b, je.text);
        int rc = sw_err_set(err, SW_EINVAL, "%s: %s at line %d column %d", name,
                            b.data ? b.data : "", je.line, je.column);
        buf_free(&b);
        return rc;
    }
    *out = root;
    return 0;
}

json_t *json_field(json_t *o, const char *name)
{
    json_t *v = json_is_object(o) ? json_object_get(o, name) : NULL;
    return v && !json_is_null(v) ? v : NULL;
}

void json_field_bad(struct json_fields *f, const char *name, const char *why)
{
    if (!f->bad++) {
        snprintf(f->field, sizeof(f->field), "%s", name);
        f->why = why;
    }
}

int json_fields_err(const struct json_fields *f, struct sw_err *err)
{
    return sw_err_set(err, SW_EINVAL, "%s: %s: %s", f->doc ? f->doc : "(document)", f->field,
                      f->why ? f->why : "wrong form");
}

/* The field, or NULL; an absent required one is counted. */
static json_t *get(struct json_fields *f, json_t *o, const char *name, unsigned flags)
{
    json_t *v = json_field(o, name);
    if (!v && (flags & JSON_FIELD_REQUIRED))
        json_field_bad(f, name, "missing");
    return v;
}

char *json_field_str(struct json_fields *f, json_t *o, const char *name, size_t max, unsigned flags)
{
    json_t *v = get(f, o, name, flags);
    if (!v)
        return NULL;
    const char *s = json_string_value(v);
    /* json_string_value stops at a NUL (\u0000) inside: the length is checked too. */
    if (!s || strlen(s) != json_string_length(v) ||
        !text_valid(s, max, (flags & JSON_FIELD_MULTILINE) != 0)) {
        json_field_bad(f, name,
                       !s ? "not a string" : "not printable UTF-8 text, or longer than allowed");
        return NULL;
    }
    return xstrdup(s);
}

int64_t json_field_int(struct json_fields *f, json_t *o, const char *name, int64_t min, int64_t max,
                       unsigned flags)
{
    json_t *v = get(f, o, name, flags);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        json_field_bad(f, name, json_is_integer(v) ? "out of range" : "not an integer");
        return 0;
    }
    return (int64_t)json_integer_value(v);
}

int json_field_bool(struct json_fields *f, json_t *o, const char *name, unsigned flags)
{
    json_t *v = get(f, o, name, flags);
    if (!v)
        return -1;
    if (!json_is_boolean(v)) {
        json_field_bad(f, name, "not true or false");
        return -1;
    }
    return json_is_true(v);
}

int64_t json_field_time(struct json_fields *f, json_t *o, const char *name, unsigned flags)
{
    json_t *v = get(f, o, name, flags);
    int64_t ms = 0;
    if (!v)
        return 0;
    /* time_parse_iso also takes times before 1970 and after 9999, which
     * time_format_iso cannot write back: a document keeping one would be
     * copied into every later one that no reader accepts. */
    if (!json_is_string(v) || time_parse_iso(json_string_value(v), &ms) != 0 || ms < 0 ||
        ms > JSON_TIME_MAX_MS) {
        json_field_bad(f, name, "not a time from 1970 to 9999 such as 2026-11-25T08:25:06.123Z");
        return 0;
    }
    return ms;
}

json_t *json_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *json_time_or_null(int64_t ms)
{
    if (!ms)
        return json_null();
    char iso[40];
    time_format_iso(ms, iso, sizeof(iso));
    return json_string(iso);
}
