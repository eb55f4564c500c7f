/*
 * libFuzzer target for base's YAML loader (src/base/yaml.c): every input is a
 * configuration file or workflow someone wrote, loaded under tight limits and
 * under the defaults. Beyond the sanitizers (and ASan's leak check), it checks
 * what every schema above relies on: each node's line and column lie inside
 * the input (as libyaml counts them: lines end at LF, CR, CR LF, NEL, LS, PS;
 * columns count characters), the tree stays within every limit (nodes counted
 * with aliases expanded, depth, scalar size), scalars are C strings of their
 * length, mapping keys are unique scalars that the lookup finds, and anything
 * the tight limits accept the default limits accept as the same tree. A
 * refusal is SW_EINVAL with a message that starts with the document's name.
 */
#include "fuzz.h"
#include "base/base.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME "fuzz.yml"

struct lines {
    size_t n;      /* lines: breaks + 1 */
    size_t *chars; /* characters on each line */
};

/* Splits the input into lines as libyaml does, counting characters (UTF-8
 * lead bytes; the loader refuses invalid UTF-8). */
static void lines_of(const uint8_t *p, size_t len, struct lines *l)
{
    l->n = 1;
    l->chars = xcalloc(len + 1, sizeof(*l->chars));
    for (size_t i = 0; i < len; i++) {
        size_t brk = p[i] == '\r' && i + 1 < len && p[i + 1] == '\n'   ? 2
                     : p[i] == '\n' || p[i] == '\r'                    ? 1
                     : p[i] == 0xc2 && i + 1 < len && p[i + 1] == 0x85 ? 2
                     : p[i] == 0xe2 && i + 2 < len && p[i + 1] == 0x80 &&
                             (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)
                         ? 3
                         : 0;
        if (brk) {
            l->n++;
            i += brk - 1;
        } else if ((p[i] & 0xc0) != 0x80) {
            l->chars[l->n - 1]++;
        }
    }
}

struct walk {
    const struct lines *lines;
    const struct yaml_limits *lim;
    const char *name;
    size_t nodes; /* expanded */
};

static void check_node(struct walk *w, const struct yaml_node *n, size_t depth)
{
    CHECK(n != NULL);
    CHECK(depth <= w->lim->max_depth);
    CHECK(++w->nodes <= w->lim->max_nodes);
    CHECK(n->file == w->name);
    CHECK(n->line >= 1 && n->line <= w->lines->n);
    CHECK(n->col >= 1 && n->col <= w->lines->chars[n->line - 1] + 1);
    switch (n->kind) {
    case YAML_NODE_SCALAR:
        CHECK(n->str && strlen(n->str) == n->len);
        CHECK(n->len <= w->lim->max_scalar);
        CHECK(n->style >= YAML_NODE_PLAIN && n->style <= YAML_NODE_FOLDED);
        CHECK(yaml_scalar(n) == n->str);
        break;
    case YAML_NODE_SEQ:
        CHECK(n->len == 0 || n->items);
        for (size_t i = 0; i < n->len; i++)
            check_node(w, n->items[i], depth + 1);
        break;
    case YAML_NODE_MAP:
        CHECK(n->len == 0 || (n->pairs && n->index));
        for (size_t i = 0; i < n->len; i++) {
            const struct yaml_pair *p = &n->pairs[i];
            CHECK(p->key->kind == YAML_NODE_SCALAR);
            /* Keys are unique, so the lookup finds exactly this pair. */
            CHECK(yaml_map_find(n, p->key->str) == p);
            CHECK(yaml_map_get(n, p->key->str) == p->value);
            /* The index is sorted and holds pointers into pairs. */
            CHECK(n->index[i] >= n->pairs && n->index[i] < n->pairs + n->len);
            if (i)
                CHECK(n->index[i - 1]->key->len < n->index[i]->key->len ||
                      (n->index[i - 1]->key->len == n->index[i]->key->len &&
                       memcmp(n->index[i - 1]->key->str, n->index[i]->key->str,
                              n->index[i]->key->len) < 0));
            check_node(w, p->key, depth + 1);
            check_node(w, p->value, depth + 1);
        }
        break;
    default:
        CHECK(!"a node of no kind");
    }
}

/* The same tree: kinds, positions and text, node for node. */
static void check_same(const struct yaml_node *a, const struct yaml_node *b)
{
    CHECK(a->kind == b->kind && a->line == b->line && a->col == b->col && a->len == b->len);
    if (a->kind == YAML_NODE_SCALAR)
        CHECK(a->style == b->style && !strcmp(a->str, b->str));
    else if (a->kind == YAML_NODE_SEQ)
        for (size_t i = 0; i < a->len; i++)
            check_same(a->items[i], b->items[i]);
    else
        for (size_t i = 0; i < a->len; i++) {
            check_same(a->pairs[i].key, b->pairs[i].key);
            check_same(a->pairs[i].value, b->pairs[i].value);
        }
}

/* A refusal names the document, and a position in it when it gives one. */
static void check_refused(int rc, const struct sw_err *err, const struct yaml_doc *d,
                          const struct lines *l)
{
    size_t line, col;
    int n = 0;

    CHECK(rc == SW_EINVAL && err->code == rc);
    CHECK(d == NULL);
    CHECK(strncmp(err->msg, NAME ":", strlen(NAME) + 1) == 0);
    CHECK(strlen(err->msg) > strlen(NAME) + 2);
    if (sscanf(err->msg, NAME ":%zu:%zu: %n", &line, &col, &n) == 2 && n > 0) {
        CHECK(line >= 1 && line <= l->n);
        CHECK(col >= 1 && col <= l->chars[line - 1] + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct yaml_limits tight = {
        .max_bytes = 1 << 16, .max_nodes = 2000, .max_depth = 20, .max_scalar = 4096};
    struct yaml_doc *d = NULL, *again = NULL;
    struct sw_err err = {0};
    struct lines lines;
    int rc;

    lines_of(data, size, &lines);
    rc = yaml_doc_parse((const char *)data, size, NAME, &tight, &d, &err);
    if (rc) {
        check_refused(rc, &err, d, &lines);
        free(lines.chars);
        return 0;
    }
    CHECK(!strcmp(d->name, NAME));
    struct walk w = {&lines, &tight, d->name, 0};
    check_node(&w, d->root, 1);

    rc = yaml_doc_parse((const char *)data, size, NAME, NULL, &again, &err);
    if (rc)
        fprintf(stderr, "refused under the default limits: %s\n", err.msg);
    CHECK(rc == 0);
    check_same(d->root, again->root);

    yaml_doc_free(again);
    yaml_doc_free(d);
    free(lines.chars);
    return 0;
}
