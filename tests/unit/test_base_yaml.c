/* Unit tests for base's YAML documents: positions, styles, key order,
 * duplicate keys, anchors and their bound, limits, error formats, helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct yaml_doc *parse_ok(const char *text, const struct yaml_limits *lim)
{
    struct yaml_doc *d = NULL;
    struct sw_err err = {0};
    int rc = yaml_doc_parse(text, strlen(text), "f.yml", lim, &d, &err);
    if (rc)
        print_message("# unexpected refusal: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(d);
    return d;
}

/* Parses text, expecting a refusal whose message starts with want. */
static void parse_bad(const char *text, size_t len, const struct yaml_limits *lim, const char *want)
{
    struct yaml_doc *d = NULL;
    struct sw_err err = {0};
    int rc = yaml_doc_parse(text, len, "f.yml", lim, &d, &err);
    if (rc != SW_EINVAL || strncmp(err.msg, want, strlen(want)) != 0)
        print_message("# wanted '%s...', got rc %d: %s\n", want, rc, rc ? err.msg : "(loaded)");
    assert_int_equal(rc, SW_EINVAL);
    assert_null(d);
    assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
}

static void assert_at(const struct yaml_node *n, size_t line, size_t col)
{
    assert_non_null(n);
    if (n->line != line || n->col != col)
        print_message("# at %zu:%zu, wanted %zu:%zu\n", n->line, n->col, line, col);
    assert_int_equal(n->line, line);
    assert_int_equal(n->col, col);
}

static void test_yaml_tree_positions(void **state)
{
    struct yaml_doc *d = parse_ok("# a workflow\n"
                                  "name: build\n"
                                  "on: [push, tag]\n"
                                  "jobs:\n"
                                  "  test:\n"
                                  "    steps:\n"
                                  "      - run: make\n"
                                  "      -   run: |\n"
                                  "            make test\n"
                                  "z: {x: 1,  y: 'é'}\n",
                                  NULL);
    const struct yaml_node *r = d->root;
    assert_string_equal(d->name, "f.yml");
    assert_int_equal(r->kind, YAML_NODE_MAP);
    assert_at(r, 2, 1);
    assert_string_equal(r->file, "f.yml");
    /* Key order is document order. */
    assert_int_equal(r->len, 4);
    assert_string_equal(r->pairs[0].key->str, "name");
    assert_string_equal(r->pairs[1].key->str, "on");
    assert_string_equal(r->pairs[2].key->str, "jobs");
    assert_string_equal(r->pairs[3].key->str, "z");
    assert_at(r->pairs[1].key, 3, 1);
    const struct yaml_node *on = yaml_map_get(r, "on");
    assert_int_equal(on->kind, YAML_NODE_SEQ);
    assert_at(on, 3, 5);
    assert_int_equal(on->len, 2);
    assert_at(on->items[1], 3, 12);
    assert_string_equal(on->items[1]->str, "tag");
    const struct yaml_node *steps =
        yaml_map_get(yaml_map_get(yaml_map_get(r, "jobs"), "test"), "steps");
    assert_int_equal(steps->kind, YAML_NODE_SEQ);
    assert_at(steps, 7, 7);
    assert_at(steps->items[0], 7, 9);
    assert_at(steps->items[1], 8, 11);
    const struct yaml_node *run = yaml_map_get(steps->items[1], "run");
    assert_at(run, 8, 16);
    assert_int_equal(run->style, YAML_NODE_LITERAL);
    assert_string_equal(run->str, "make test\n");
    assert_int_equal(run->len, 10);
    /* Columns count characters, not bytes: 'é' is two bytes. */
    const struct yaml_node *z = yaml_map_get(r, "z");
    assert_at(yaml_map_get(z, "x"), 10, 8);
    assert_at(yaml_map_find(z, "y")->key, 10, 12);
    assert_at(yaml_map_get(z, "y"), 10, 15);
    assert_null(yaml_map_get(z, "w"));
    assert_null(yaml_map_get(run, "x")); /* not a mapping */
    yaml_doc_free(d);
}

/* Scalars stay strings and keep their style, so a schema can tell `on: yes`
 * from "yes" and true from "true". */
static void test_yaml_styles_and_helpers(void **state)
{
    struct yaml_doc *d = parse_ok("a: yes\n"
                                  "b: \"true\"\n"
                                  "c: true\n"
                                  "d: 'x'\n"
                                  "e: >\n  folded\n  text\n"
                                  "f: !!str 12\n"
                                  "g:\n"
                                  "h: ~\n"
                                  "i: 'null'\n"
                                  "j: -9223372036854775808\n"
                                  "k: 9223372036854775808\n"
                                  "l: 0x10\n"
                                  "m: FALSE\n",
                                  NULL);
    const struct yaml_node *r = d->root;
    int b = -1;
    int64_t v = 7;
    assert_int_equal(yaml_map_get(r, "a")->style, YAML_NODE_PLAIN);
    assert_string_equal(yaml_scalar(yaml_map_get(r, "a")), "yes");
    assert_int_equal(yaml_bool(yaml_map_get(r, "a"), &b), SW_EINVAL); /* YAML 1.2: not a bool */
    assert_int_equal(yaml_map_get(r, "b")->style, YAML_NODE_DOUBLE);
    assert_int_equal(yaml_bool(yaml_map_get(r, "b"), &b), SW_EINVAL); /* quoted: a string */
    assert_int_equal(b, -1);
    assert_int_equal(yaml_bool(yaml_map_get(r, "c"), &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(yaml_bool(yaml_map_get(r, "m"), &b), 0);
    assert_int_equal(b, 0);
    assert_int_equal(yaml_map_get(r, "d")->style, YAML_NODE_SINGLE);
    assert_int_equal(yaml_map_get(r, "e")->style, YAML_NODE_FOLDED);
    assert_string_equal(yaml_scalar(yaml_map_get(r, "e")), "folded text\n");
    assert_string_equal(yaml_map_get(r, "f")->tag, "tag:yaml.org,2002:str");
    assert_null(yaml_map_get(r, "a")->tag);
    assert_true(yaml_is_null(yaml_map_get(r, "g")));
    assert_true(yaml_is_null(yaml_map_get(r, "h")));
    assert_false(yaml_is_null(yaml_map_get(r, "i"))); /* quoted: the text null */
    assert_false(yaml_is_null(yaml_map_get(r, "a")));
    assert_false(yaml_is_null(NULL));
    assert_int_equal(yaml_int(yaml_map_get(r, "j"), INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MIN);
    v = 7;
    assert_int_equal(yaml_int(yaml_map_get(r, "k"), INT64_MIN, INT64_MAX, &v), SW_EINVAL);
    assert_int_equal(yaml_int(yaml_map_get(r, "l"), INT64_MIN, INT64_MAX, &v), SW_EINVAL);
    assert_int_equal(yaml_int(yaml_map_get(r, "f"), 0, 100, &v), 0); /* the text is 12 */
    assert_int_equal(v, 12);
    assert_int_equal(yaml_int(yaml_map_get(r, "f"), 0, 11, &v), SW_EINVAL);
    assert_int_equal(yaml_int(yaml_map_get(r, "d"), 0, 11, &v), SW_EINVAL);
    assert_int_equal(yaml_int(yaml_map_get(r, "g"), 0, 11, &v), SW_EINVAL); /* empty */
    assert_null(yaml_scalar(r));
    assert_null(yaml_scalar(NULL));
    yaml_doc_free(d);

    /* An empty file, or one of comments: an empty plain scalar at 1:1. */
    d = parse_ok("", NULL);
    assert_int_equal(d->root->kind, YAML_NODE_SCALAR);
    assert_at(d->root, 1, 1);
    assert_true(yaml_is_null(d->root));
    yaml_doc_free(d);
    d = parse_ok("# nothing\n\n", NULL);
    assert_true(yaml_is_null(d->root));
    yaml_doc_free(d);
    /* What libyaml finds at the end of a file without a final line break
     * (it adds one of its own) is put at the end of the last line. */
    d = parse_ok("x: 1\na:", NULL);
    assert_at(yaml_map_get(d->root, "a"), 2, 3);
    yaml_doc_free(d);
    parse_bad("a: [1", 5, NULL, "f.yml:1:6: invalid YAML: did not find expected");
}

static void test_yaml_duplicate_keys(void **state)
{
    parse_bad("a: 1\nb: 2\na: 3\n", 15, NULL, "f.yml:3:1: duplicate key 'a' (first at 1:1)");
    /* Quoting does not make another key. */
    parse_bad("a: 1\n'a': 2\n", 11, NULL, "f.yml:2:1: duplicate key 'a' (first at 1:1)");
    /* Nested and in flow style; the earliest duplicate in the document is named. */
    const char *t = "x:\n  {c: 1, b: 2, b: 3, c: 4}\n";
    parse_bad(t, strlen(t), NULL, "f.yml:2:16: duplicate key 'b' (first at 2:10)");
    /* Equal prefixes are different keys. */
    struct yaml_doc *d = parse_ok("ab: 1\na: 2\nabc: 3\n'': 4\n", NULL);
    assert_int_equal(d->root->len, 4);
    assert_string_equal(yaml_map_get(d->root, "a")->str, "2");
    assert_string_equal(yaml_map_get(d->root, "")->str, "4");
    yaml_doc_free(d);
}

/* Many keys: every one found by the bisecting lookup, in order kept. */
static void test_yaml_many_keys(void **state)
{
    struct buf b = BUF_INIT;
    for (int i = 2999; i >= 0; i--)
        buf_addf(&b, "k%d: %d\n", i, i);
    struct yaml_doc *d = parse_ok(b.data, NULL);
    assert_int_equal(d->root->len, 3000);
    assert_string_equal(d->root->pairs[0].key->str, "k2999");
    for (int i = 0; i < 3000; i++) {
        char k[16], v[16];
        snprintf(k, sizeof(k), "k%d", i);
        snprintf(v, sizeof(v), "%d", i);
        const struct yaml_pair *p = yaml_map_find(d->root, k);
        assert_non_null(p);
        assert_string_equal(p->value->str, v);
        assert_int_equal(p->key->line, (size_t)(3000 - i));
    }
    assert_null(yaml_map_get(d->root, "k3000"));
    yaml_doc_free(d);
    buf_free(&b);
}

static void test_yaml_anchors(void **state)
{
    struct yaml_doc *d = parse_ok("base: &b {os: linux, arch: [x86, arm]}\n"
                                  "one: *b\n"
                                  "two: &s word\n"
                                  "three: *s\n"
                                  "*s : key from an alias\n",
                                  NULL);
    const struct yaml_node *r = d->root;
    /* An alias is a node at its own position sharing the anchored node's children. */
    assert_int_equal(yaml_map_get(r, "one")->kind, YAML_NODE_MAP);
    assert_ptr_equal(yaml_map_get(r, "one")->pairs, yaml_map_get(r, "base")->pairs);
    assert_at(yaml_map_get(r, "base"), 1, 7);
    assert_at(yaml_map_get(r, "one"), 2, 6);
    assert_at(yaml_map_get(yaml_map_get(r, "one"), "os"), 1, 15);
    assert_at(yaml_map_get(r, "three"), 4, 8);
    assert_at(yaml_map_find(r, "word")->key, 5, 1);
    assert_string_equal(yaml_map_get(yaml_map_get(r, "one"), "os")->str, "linux");
    assert_string_equal(yaml_map_get(r, "three")->str, "word");
    assert_string_equal(yaml_map_get(r, "word")->str, "key from an alias");
    yaml_doc_free(d);

    parse_bad("a: *nope\n", 9, NULL, "f.yml:1:4: unknown anchor 'nope'");
    parse_bad("a: &x [1, *x]\n", 14, NULL, "f.yml:1:11: alias 'x' inside the node it names");
    parse_bad("a: &k [1]\n*k : 2\n", 16, NULL, "f.yml:2:1: a mapping key must be a scalar");
    /* A duplicate made through an alias is a duplicate. */
    parse_bad("a: &k x\nx: 1\n*k : 2\n", 17, NULL, "f.yml:3:1: duplicate key 'x' (first at 2:1)");
}

/* Billion laughs: ten levels of ten aliases stand for 10^10 nodes. Refused at
 * max_nodes, quickly and without expanding anything. */
static void test_yaml_alias_bomb(void **state)
{
    struct buf b = BUF_INIT;
    buf_adds(&b, "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 10; i++) {
        buf_addf(&b, "l%d: &l%d [", i, i);
        for (int j = 0; j < 10; j++)
            buf_addf(&b, "%s*l%d", j ? ", " : "", i - 1);
        buf_adds(&b, "]\n");
    }
    int64_t t0 = time_mono_ms();
    parse_bad(b.data, b.len, NULL, "f.yml:");
    struct sw_err err = {0};
    struct yaml_doc *d = NULL;
    assert_int_equal(yaml_doc_parse(b.data, b.len, "f.yml", NULL, &d, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "more than 100000 nodes"));
    assert_true(time_mono_ms() - t0 < 2000);
    /* Four levels stand for 11,111 nodes plus the mapping: within a bound of
     * 20,000, over one of 10,000. */
    char *cut = strstr(b.data, "l4:");
    *cut = '\0';
    struct yaml_limits lim = {.max_nodes = 20000};
    d = parse_ok(b.data, &lim);
    assert_int_equal(yaml_map_get(d->root, "l3")->len, 10);
    yaml_doc_free(d);
    lim.max_nodes = 10000;
    parse_bad(b.data, strlen(b.data), &lim, "f.yml:4:");
    buf_free(&b);
}

static void test_yaml_limits(void **state)
{
    /* A top-level scalar is one level; each collection adds one. */
    struct yaml_limits lim = {.max_depth = 3};
    struct yaml_doc *d = parse_ok("a: [x]\n", &lim);
    yaml_doc_free(d);
    d = parse_ok("[[x]]\n", &lim);
    yaml_doc_free(d);
    parse_bad("a: [[x]]\n", 9, &lim, "f.yml:1:6: nested deeper than 3 levels");
    parse_bad("a: [[{x: 1}]]\n", 14, &lim, "f.yml:1:6: nested deeper than 3 levels");
    /* Depth counts what an alias stands for. */
    d = parse_ok("a: &d [x]\n", &lim);
    yaml_doc_free(d);
    parse_bad("a: &d [x]\nb: [*d]\n", 18, &lim, "f.yml:2:5: nested deeper than 3 levels");
    /* The default: 64 levels, the 65th refused, at its bracket. */
    struct buf b = BUF_INIT;
    for (int i = 0; i < 64; i++)
        buf_adds(&b, "[");
    for (int i = 0; i < 64; i++)
        buf_adds(&b, "]");
    d = parse_ok(b.data, NULL);
    yaml_doc_free(d);
    buf_reset(&b);
    for (int i = 0; i < 100000; i++)
        buf_adds(&b, "[");
    parse_bad(b.data, b.len, NULL, "f.yml:1:65: nested deeper than 64 levels");

    struct yaml_limits small = {.max_nodes = 5, .max_scalar = 4, .max_bytes = 40};
    d = parse_ok("[a, b, c, d]", &small);
    yaml_doc_free(d);
    parse_bad("[a, b, c, d, e]", 15, &small, "f.yml:1:14: more than 5 nodes");
    parse_bad("[abcd, abcde]", 13, &small, "f.yml:1:8: a scalar of more than 4 bytes");
    buf_reset(&b);
    buf_adds(&b, "# ");
    for (int i = 0; i < 40; i++)
        buf_adds(&b, "x");
    parse_bad(b.data, b.len, &small, "f.yml: 42 bytes, more than the 40");
    buf_free(&b);
}

static void test_yaml_refusals(void **state)
{
    /* libyaml's problem, where, and the context it was in. */
    const char *t = "a: 1\nb: [1, 2\n";
    parse_bad(t, strlen(t), NULL,
              "f.yml:3:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow "
              "sequence at 2:4)");
    parse_bad("a: b: c\n", 8, NULL, "f.yml:1:5: invalid YAML: mapping values are not allowed");
    /* Bytes that are not UTF-8: the line and column of the byte. */
    parse_bad("a: 1\nbé: \xff\n", 11, NULL,
              "f.yml:2:5: invalid YAML: invalid leading UTF-8 octet (#xFF)");
    parse_bad("a: 1\r\nb: \x01\n", 10, NULL,
              "f.yml:2:4: invalid YAML: control characters are not allowed (#x1)");
    /* A raw NUL byte in the input, and one written as an escape. */
    parse_bad("a: 1\0", 5, NULL, "f.yml:1:5: invalid YAML: control characters");
    parse_bad("a: \"x\\0y\"\n", 10, NULL, "f.yml:1:4: a NUL character in a scalar");
    /* One document per file: a second, even an empty one, is refused. */
    parse_bad("a: 1\n---\nb: 2\n", 14, NULL, "f.yml:2:1: a second YAML document; expected one");
    parse_bad("a: 1\n...\n---\n", 13, NULL, "f.yml:3:1: a second YAML document");
    parse_bad("? [a]\n: 1\n", 10, NULL, "f.yml:1:3: a mapping key must be a scalar");
    parse_bad("{a: 1}: 2\n", 10, NULL, "f.yml:1:1: a mapping key must be a scalar");
    /* A UTF-16 byte-order mark does not switch the encoding. */
    parse_bad("\xff\xfe"
              "a\0:\0",
              6, NULL, "f.yml:1:1: invalid YAML:");
}

static void test_yaml_files(void **state)
{
    char dir[] = "/tmp/slipway-yaml-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = path_join(dir, "w.yml");
    struct yaml_doc *d = NULL;
    struct sw_err err = {0};
    assert_int_equal(yaml_doc_load(path, NULL, &d, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "w.yml"));
    assert_int_equal(fs_write_atomic(path, "a:\n  - b\n  - c: [\n", 18, NULL), 0);
    assert_int_equal(yaml_doc_load(path, NULL, &d, &err), SW_EINVAL);
    char *want = xasprintf("%s:4:1: invalid YAML: ", path);
    assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
    free(want);
    assert_int_equal(fs_write_atomic(path, "a:\n  - b\n  - c: 1\n", 18, NULL), 0);
    assert_int_equal(yaml_doc_load(path, NULL, &d, &err), 0);
    const struct yaml_node *c = yaml_map_get(yaml_map_get(d->root, "a")->items[1], "c");
    assert_string_equal(d->name, path);
    assert_at(c, 3, 8);
    /* yaml_err: FILE:LINE:COL: message. */
    assert_int_equal(yaml_err(&err, c, "expected %s", "a list"), SW_EINVAL);
    want = xasprintf("%s:3:8: expected a list", path);
    assert_string_equal(err.msg, want);
    assert_int_equal(err.code, SW_EINVAL);
    free(want);
    yaml_doc_free(d);
    yaml_doc_free(NULL);
    /* Too large: refused before it is read. */
    struct yaml_limits lim = {.max_bytes = 10};
    assert_int_equal(yaml_doc_load(path, &lim, &d, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "18 bytes, more than the 10"));
    unlink(path);
    rmdir(dir);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_tree_positions), cmocka_unit_test(test_yaml_styles_and_helpers),
        cmocka_unit_test(test_yaml_duplicate_keys), cmocka_unit_test(test_yaml_many_keys),
        cmocka_unit_test(test_yaml_anchors),        cmocka_unit_test(test_yaml_alias_bomb),
        cmocka_unit_test(test_yaml_limits),         cmocka_unit_test(test_yaml_refusals),
        cmocka_unit_test(test_yaml_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
