/*
 * libFuzzer target for the S3 XML reader (src/store/s3xml.c): every input is
 * a response body from a server that may be hostile. Beyond the sanitizers
 * (and ASan's leak check), it checks what the s3 backend relies on: an
 * accepted tree stays within the nesting and element bounds, its names are
 * non-empty XML names and its texts UTF-8 C strings, and it is never larger
 * than the input (no reference expands); writing the tree back out with
 * s3xml_escape and reading that again gives the same tree (escaping and
 * decoding are inverses, text included); lookups find each element's first
 * child of a name. A refusal is SW_EINVAL with "line L, column C: expected
 * ..." on one printable line, L and C a position inside the input.
 */
#include "fuzz.h"
#include "store/s3xml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct walk {
    size_t nodes, bytes;
};

static int name_ok(const char *s)
{
    if (!*s)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int start = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_' ||
                    *p == ':' || *p >= 0x80;
        int more = (*p >= '0' && *p <= '9') || *p == '-' || *p == '.';
        if (!start && (p == (const unsigned char *)s || !more))
            return 0;
    }
    return 1;
}

static void check_tree(struct walk *w, const struct s3xml_node *n, size_t depth)
{
    CHECK(n && n->name && n->text);
    CHECK(depth <= S3XML_DEPTH_MAX);
    CHECK(++w->nodes <= S3XML_NODES_MAX);
    CHECK(name_ok(n->name));
    CHECK(utf8_valid(n->name, 0) && utf8_valid(n->text, 0));
    w->bytes += strlen(n->name) + strlen(n->text);
    CHECK(n->n_kids == 0 || n->kids);
    for (size_t i = 0; i < n->n_kids; i++) {
        const struct s3xml_node *k = n->kids[i];
        const struct s3xml_node *first = s3xml_child(n, k->name);
        CHECK(first != NULL);
        /* The first of its name: nothing earlier has it. */
        for (size_t j = 0; j < n->n_kids && n->kids[j] != first; j++)
            CHECK(strcmp(n->kids[j]->name, k->name) != 0);
        CHECK(s3xml_text(n, k->name) == first->text);
        check_tree(w, k, depth + 1);
    }
}

/* Writes n as a document: its text first, then its children (the text is
 * the concatenation of everything directly inside, so this is the same tree). */
static void write_tree(struct buf *b, const struct s3xml_node *n)
{
    buf_addf(b, "<%s>", n->name);
    s3xml_escape(b, n->text);
    for (size_t i = 0; i < n->n_kids; i++)
        write_tree(b, n->kids[i]);
    buf_addf(b, "</%s>", n->name);
}

static void check_same(const struct s3xml_node *a, const struct s3xml_node *b)
{
    CHECK(strcmp(a->name, b->name) == 0);
    CHECK(strcmp(a->text, b->text) == 0);
    CHECK(a->n_kids == b->n_kids);
    for (size_t i = 0; i < a->n_kids; i++)
        check_same(a->kids[i], b->kids[i]);
}

/* Lines end at LF, CR LF and a lone CR; columns count UTF-8 lead bytes. A
 * refusal's position is a character of the input or just past one. */
static void check_refused(const uint8_t *p, size_t len, const struct sw_err *err)
{
    size_t line, col, lines = 1, chars = 0;
    int used = 0;

    CHECK(err->code == SW_EINVAL);
    CHECK(sscanf(err->msg, "line %zu, column %zu: %n", &line, &col, &used) == 2 && used > 0);
    CHECK(strncmp(err->msg + used, "expected ", 9) == 0);
    CHECK(text_valid(err->msg, sizeof(err->msg), 0));
    CHECK(line >= 1 && col >= 1);
    for (size_t i = 0; i < len && lines <= line; i++) {
        if (p[i] == '\n' || (p[i] == '\r' && (i + 1 >= len || p[i + 1] != '\n'))) {
            if (lines == line)
                break;
            lines++;
        } else if (lines == line && (p[i] & 0xc0) != 0x80) {
            chars++;
        }
    }
    CHECK(line <= lines);
    CHECK(col <= chars + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct s3xml_node *root = NULL, *again = NULL;
    struct sw_err err = {0};
    struct walk w = {0, 0};
    struct buf b = BUF_INIT;

    if (size > 1 << 20)
        return 0;
    int rc = s3xml_parse((const char *)data, size, &root, &err);
    if (rc != 0) {
        CHECK(root == NULL);
        check_refused(data, size, &err);
        return 0;
    }
    check_tree(&w, root, 1);
    CHECK(w.bytes <= size);

    write_tree(&b, root);
    rc = s3xml_parse(b.data, b.len, &again, &err);
    if (rc != 0)
        fprintf(stderr, "written back: %s\nrefused: %s\n", b.data, err.msg);
    CHECK(rc == 0);
    check_same(root, again);
    s3xml_free(again);
    buf_free(&b);
    s3xml_free(root);
    return 0;
}
