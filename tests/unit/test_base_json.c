/* Unit tests for base's JSON field readers: absent, null and present fields,
 * the wrong type, bounds, text checks, times, the first bad field and its
 * message, and the writing helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/base.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *doc(const char *text)
{
    json_t *o = NULL;
    struct sw_err err = {0};
    int rc = json_doc_parse("d.json", text, strlen(text), &o, &err);
    if (rc)
        print_message("# %s\n", err.msg);
    assert_int_equal(rc, 0);
    return o;
}

static void test_json_doc_parse(void **state)
{
    json_t *o = NULL;
    struct sw_err err = {0};
    const char *t = "{\"a\": 1,\n \"b\": }";
    assert_int_equal(json_doc_parse("envs/x.json", t, strlen(t), &o, &err), SW_EINVAL);
    assert_null(o);
    assert_true(str_starts_with(err.msg, "envs/x.json: "));
    assert_non_null(strstr(err.msg, "at line 2 column"));
    /* The same key twice would make a document mean two things. */
    t = "{\"a\": 1, \"a\": 2}";
    assert_int_equal(json_doc_parse("d.json", t, strlen(t), &o, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "duplicate"));
    /* jansson quotes the bad token raw: the message stays one line (found by
     * fuzz/artifact) and a terminal escape stays text */
    t = "{\"a\": \"x\\\n\x1b[31m\"}"; /* an invalid escape: a backslash, LF */
    assert_int_equal(json_doc_parse("d.json", t, strlen(t), &o, &err), SW_EINVAL);
    assert_null(strchr(err.msg, '\n'));
    assert_null(strchr(err.msg, '\x1b'));
    assert_true(str_starts_with(err.msg, "d.json: "));
    o = doc("[1]"); /* any value: the caller checks it is an object */
    assert_true(json_is_array(o));
    json_decref(o);
}

static void test_json_fields_strings(void **state)
{
    json_t *o = doc("{\"s\": \"caf\\u00e9\", \"n\": null, \"i\": 3, \"nl\": \"a\\nb\","
                    " \"esc\": \"\\u001b[31m\", \"c1\": \"\\u0085\", \"long\": \"abcdef\"}");
    struct json_fields f = JSON_FIELDS_INIT("d.json");
    char *s = json_field_str(&f, o, "s", 10, 0);
    assert_string_equal(s, "café");
    free(s);
    /* Absent and null are the same, and not bad unless required. */
    assert_null(json_field_str(&f, o, "absent", 10, 0));
    assert_null(json_field_str(&f, o, "n", 10, 0));
    assert_null(json_field(o, "n"));
    assert_non_null(json_field(o, "s"));
    assert_null(json_field(NULL, "s"));
    assert_null(json_field(json_object_get(o, "i"), "s")); /* not an object: absent */
    assert_null(json_field_str(&f, NULL, "s", 10, JSON_FIELD_MULTILINE));
    assert_int_equal(f.bad, 0);
    s = json_field_str(&f, o, "nl", 10, JSON_FIELD_MULTILINE);
    assert_string_equal(s, "a\nb");
    free(s);
    assert_int_equal(f.bad, 0);
    /* Each of these is bad; the first is the one named. */
    assert_null(json_field_str(&f, o, "i", 10, 0));
    assert_int_equal(f.bad, 1);
    assert_string_equal(f.field, "i");
    assert_string_equal(f.why, "not a string");
    assert_null(json_field_str(&f, o, "nl", 10, 0)); /* a line break in a one-line field */
    assert_null(json_field_str(&f, o, "esc", 10, JSON_FIELD_MULTILINE));
    assert_null(json_field_str(&f, o, "c1", 10, JSON_FIELD_MULTILINE));
    assert_null(json_field_str(&f, o, "long", 5, 0));
    assert_null(json_field_str(&f, o, "n", 10, JSON_FIELD_REQUIRED));
    assert_int_equal(f.bad, 6);
    assert_string_equal(f.field, "i");
    struct sw_err err = {0};
    assert_int_equal(json_fields_err(&f, &err), SW_EINVAL);
    assert_string_equal(err.msg, "d.json: i: not a string");
    s = json_field_str(&f, o, "long", 6, 0); /* exactly the bound */
    assert_string_equal(s, "abcdef");
    free(s);
    json_decref(o);

    struct json_fields g = JSON_FIELDS_INIT("d.json");
    o = doc("{}");
    assert_null(json_field_str(&g, o, "actor", 10, JSON_FIELD_REQUIRED));
    assert_int_equal(json_fields_err(&g, &err), SW_EINVAL);
    assert_string_equal(err.msg, "d.json: actor: missing");
    json_field_bad(&g, "other", "ignored: not the first");
    assert_int_equal(g.bad, 2);
    assert_string_equal(g.field, "actor");
    json_decref(o);
}

static void test_json_fields_numbers(void **state)
{
    json_t *o = doc("{\"i\": 7, \"neg\": -1, \"big\": 9007199254740993, \"r\": 7.0, \"s\": \"7\","
                    " \"t\": true, \"f\": false, \"n\": null}");
    struct json_fields f = JSON_FIELDS_INIT("d.json");
    assert_int_equal(json_field_int(&f, o, "i", 0, 7, JSON_FIELD_REQUIRED), 7);
    assert_int_equal(json_field_int(&f, o, "neg", -1, 0, 0), -1);
    assert_true(json_field_int(&f, o, "big", 0, INT64_MAX, 0) == 9007199254740993LL);
    assert_int_equal(json_field_int(&f, o, "absent", 1, 2, 0), 0);
    assert_int_equal(json_field_bool(&f, o, "t", 0), 1);
    assert_int_equal(json_field_bool(&f, o, "f", JSON_FIELD_REQUIRED), 0);
    assert_int_equal(json_field_bool(&f, o, "n", 0), -1);
    assert_int_equal(json_field_bool(&f, o, "absent", 0), -1);
    assert_int_equal(f.bad, 0);
    assert_int_equal(json_field_int(&f, o, "i", 0, 6, 0), 0);
    assert_string_equal(f.why, "out of range");
    assert_int_equal(json_field_int(&f, o, "r", 0, 10, 0), 0); /* a real is not an integer */
    assert_int_equal(json_field_int(&f, o, "s", 0, 10, 0), 0);
    assert_int_equal(json_field_int(&f, o, "n", 0, 10, JSON_FIELD_REQUIRED), 0);
    assert_int_equal(json_field_bool(&f, o, "i", 0), -1);
    assert_int_equal(json_field_bool(&f, o, "absent", JSON_FIELD_REQUIRED), -1);
    assert_int_equal(f.bad, 6);
    assert_string_equal(f.field, "i");
    json_decref(o);
}

static void test_json_fields_times(void **state)
{
    json_t *o = doc("{\"t\": \"2026-11-25T08:25:06.123Z\", \"epoch\": \"1970-01-01T00:00:00Z\","
                    " \"last\": \"9999-12-31T23:59:59.999Z\", \"early\": \"1969-12-31T23:59:59Z\","
                    " \"late\": \"10000-01-01T00:00:00Z\", \"junk\": \"yesterday\", \"num\": 5}");
    struct json_fields f = JSON_FIELDS_INIT("d.json");
    int64_t ms;
    assert_int_equal(time_parse_iso("2026-11-25T08:25:06.123Z", &ms), 0);
    assert_true(json_field_time(&f, o, "t", JSON_FIELD_REQUIRED) == ms);
    assert_int_equal(json_field_time(&f, o, "epoch", 0), 0);
    assert_true(json_field_time(&f, o, "last", 0) == JSON_TIME_MAX_MS);
    assert_int_equal(json_field_time(&f, o, "absent", 0), 0);
    assert_int_equal(f.bad, 0);
    /* Only what time_format_iso can write back. */
    assert_int_equal(json_field_time(&f, o, "early", 0), 0);
    assert_int_equal(json_field_time(&f, o, "late", 0), 0);
    assert_int_equal(json_field_time(&f, o, "junk", 0), 0);
    assert_int_equal(json_field_time(&f, o, "num", 0), 0);
    assert_int_equal(json_field_time(&f, o, "absent", JSON_FIELD_REQUIRED), 0);
    assert_int_equal(f.bad, 5);
    assert_string_equal(f.field, "early");
    json_decref(o);
}

static void test_json_writing(void **state)
{
    json_t *o =
        json_pack("{s:o, s:o, s:o, s:o}", "a", json_str_or_null("x"), "b", json_str_or_null(NULL),
                  "t", json_time_or_null(1000), "z", json_time_or_null(0));
    assert_non_null(o);
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text,
                        "{\"a\":\"x\",\"b\":null,\"t\":\"1970-01-01T00:00:01.000Z\",\"z\":null}");
    free(text);
    /* What is written reads back. */
    struct json_fields f = JSON_FIELDS_INIT("d.json");
    assert_int_equal(json_field_time(&f, o, "t", JSON_FIELD_REQUIRED), 1000);
    assert_int_equal(f.bad, 0);
    json_decref(o);
}

/* Walks a whole document with the tree-free reader: 1 when it is taken. */
static int reader_takes(const char *text, size_t len, struct sw_err *err)
{
    struct json_reader r;
    json_read_init(&r, text, len);
    int ok = json_read_skip(&r, json_read_value(&r)) == 0 && json_read_end(&r) == 0;
    if (!ok)
        json_read_err(&r, "d.json", err);
    json_read_free(&r);
    return ok;
}

/* The reader takes exactly what json_doc_parse (jansson) takes, case by case. */
static void test_json_read_agrees(void **state)
{
    static const char *const docs[] = {
        "{}",
        "[]",
        " {\"a\" : [1, -0, 2.5e3, 1E-2, true, false, null] } ",
        "{\"a\":{}}",
        "[\"\\u00e9\\ud83d\\ude00\\n\\/\\b\\f\\r\\t\\\"\\\\\"]",
        "[\"\xc3\xa9\xe2\x82\xac\"]",
        /* refused */
        "",
        " ",
        "1",
        "\"s\"",
        "null",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "{,}",
        "[01]",
        "[1.]",
        "[.5]",
        "[1e]",
        "[-]",
        "[+1]",
        "[tru]",
        "[truex]",
        "[\"\\u0000\"]",
        "[\"\\ud800\"]",
        "[\"\\udc00\"]",
        "[\"\\ud800\\u0041\"]",
        "[\"\\x\"]",
        "[\"\\u12\"]",
        "[\"a\nb\"]",
        "[\"\xed\xa0\x80\"]",
        "[\"\xc0\xaf\"]",
        "[\"\xff\"]",
        "{\"a\":1,\"a\":2}",
        "{\"a\":{\"b\":1,\"b\":1}}",
        "[9223372036854775808]",
        "[-9223372036854775809]",
        "[1e400]",
        "{} {}",
        "{}x",
        "[1 2]",
        "{\"a\" 1}",
        "{1:2}",
        "[\"unterminated]",
        /* taken */
        "[9223372036854775807]",
        "[-9223372036854775808]",
        "[1e-400]",
        "{\"a\":1,\"b\":{\"a\":2}}",
        "[{\"k\":1},{\"k\":1}]",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(*docs); i++) {
        struct sw_err err = {0};
        json_t *t = json_loadb(docs[i], strlen(docs[i]), JSON_REJECT_DUPLICATES, NULL);
        int mine = reader_takes(docs[i], strlen(docs[i]), &err);
        if (mine != (t != NULL))
            print_message("# %s: reader %d, jansson %d (%s)\n", docs[i], mine, t != NULL, err.msg);
        assert_int_equal(mine, t != NULL);
        if (!mine) /* where, in one line */
            assert_true(str_starts_with(err.msg, "d.json: ") &&
                        strstr(err.msg, " at line 1 column ") && !strchr(err.msg, '\n'));
        json_decref(t);
    }
}

/* 2048 values nested is jansson's bound, a scalar inside counting as one more. */
static void test_json_read_depth(void **state)
{
    struct buf b = BUF_INIT;
    for (int depth = 2047; depth <= 2049; depth++) {
        buf_reset(&b);
        for (int i = 0; i < depth; i++)
            buf_adds(&b, "[");
        buf_adds(&b, "1");
        for (int i = 0; i < depth; i++)
            buf_adds(&b, "]");
        struct sw_err err = {0};
        json_t *t = json_loadb(b.data, b.len, 0, NULL);
        assert_int_equal(reader_takes(b.data, b.len, &err), t != NULL);
        assert_int_equal(t != NULL, depth < 2048);
        json_decref(t);
    }
    buf_free(&b);
}

/* Where: the line and column of the first error. */
static void test_json_read_where(void **state)
{
    struct sw_err err = {0};
    const char *t = "{\"a\": 1,\n \"b\": }";
    assert_false(reader_takes(t, strlen(t), &err));
    assert_string_equal(err.msg, "d.json: invalid token at line 2 column 7");
    t = "{\"a\": 1, \"a\": 2}";
    assert_false(reader_takes(t, strlen(t), &err));
    assert_non_null(strstr(err.msg, "duplicate object key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_doc_parse),      cmocka_unit_test(test_json_fields_strings),
        cmocka_unit_test(test_json_fields_numbers), cmocka_unit_test(test_json_fields_times),
        cmocka_unit_test(test_json_writing),        cmocka_unit_test(test_json_read_agrees),
        cmocka_unit_test(test_json_read_depth),     cmocka_unit_test(test_json_read_where),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
