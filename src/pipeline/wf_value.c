/*
 * The workflow loader's reading of single values: each scalar of the YAML
 * tree becomes a struct pipeline_val (text, position, parsed boolean or
 * number), with its `${{ }}` checked against the contexts GitHub allows at
 * that key, and every fault recorded, not only the first.
 *
 * The one idea: a fault inside a value (the offending token of an
 * expression) is reported at its own column. The tree only knows where a
 * scalar starts, so the text of the file is consulted: where the value's
 * bytes are the file's bytes (a plain or quoted scalar on one line, a line of
 * a literal block), the offset inside the value is an offset in the file;
 * anywhere else (escapes, folding) the scalar's own position is given.
 */
#include "pipeline/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void wf_diag(struct wf_ld *ld, int warning, size_t line, size_t col, const char *fmt, ...)
{
    struct pipeline_workflow *wf = ld->wf;
    struct pipeline_diag **list = warning ? &wf->warnings : &wf->errors;
    size_t *n = warning ? &wf->n_warnings : &wf->n_errors;
    struct buf b = BUF_INIT;
    va_list ap;

    if (*n >= PIPELINE_WF_MAX_ERRORS) {
        if (!warning)
            wf->n_errors_dropped++;
        return;
    }
    buf_addf(&b, "%s:%zu:%zu: %s", wf->file, line, col, warning ? "warning: " : "");
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    *list = xrealloc(*list, (*n + 1) * sizeof(**list));
    (*list)[*n] = (struct pipeline_diag){line, col, buf_detach(&b, NULL)};
    (*n)++;
}

const char *wf_kind(const struct yaml_node *n)
{
    if (!n)
        return "nothing";
    if (n->kind == YAML_NODE_MAP)
        return "a mapping";
    if (n->kind == YAML_NODE_SEQ)
        return "a sequence";
    return yaml_is_null(n) ? "null" : "a string";
}

static void add_list(struct buf *b, const char *const *words)
{
    for (size_t i = 0; words[i]; i++)
        buf_addf(b, "%s%s", i ? ", " : "", words[i]);
}

int wf_keys(struct wf_ld *ld, const struct yaml_node *n, const char *what,
            const char *const *allowed)
{
    if (n->kind != YAML_NODE_MAP) {
        wf_error(ld, n, "%s must be a mapping, not %s", what, wf_kind(n));
        return -1;
    }
    for (size_t i = 0; i < n->len; i++) {
        const struct yaml_node *k = n->pairs[i].key;
        size_t j = 0;
        while (allowed[j] && strcmp(allowed[j], k->str) != 0)
            j++;
        if (!allowed[j]) {
            struct buf b = BUF_INIT;
            add_list(&b, allowed);
            wf_error(ld, k, "unexpected key '%s' in %s (allowed: %s)", k->str, what, b.data);
            buf_free(&b);
        }
    }
    return 0;
}

/* Characters in s[0..n) (UTF-8 lead bytes). */
static size_t chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

size_t wf_break(const char *d, size_t len, size_t i)
{
    const unsigned char *p = (const unsigned char *)d;
    if (p[i] == '\r')
        return i + 1 < len && p[i + 1] == '\n' ? 2 : 1;
    if (p[i] == '\n')
        return 1;
    if (p[i] == 0xc2 && i + 1 < len && p[i + 1] == 0x85)
        return 2;
    if (p[i] == 0xe2 && i + 2 < len && p[i + 1] == 0x80 && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9))
        return 3;
    return 0;
}

/* The byte offset in the file of line:col (col in characters), or len when
 * outside the text. */
static size_t file_offset(const struct wf_ld *ld, size_t line, size_t col)
{
    size_t at;
    if (line < 1 || line > ld->n_lines)
        return ld->len;
    at = ld->lines[line - 1];
    for (size_t c = 1; c < col && at < ld->len && !wf_break(ld->data, ld->len, at); c++)
        do
            at++;
        while (at < ld->len && ((unsigned char)ld->data[at] & 0xc0) == 0x80);
    return at;
}

/* 1 when the file holds s[0..n) at byte offset at. */
static int file_has(const struct wf_ld *ld, size_t at, const char *s, size_t n)
{
    return at <= ld->len && n <= ld->len - at && memcmp(ld->data + at, s, n) == 0;
}

/* Where byte `at` of scalar n's value is in the file (see the top). */
static void value_pos(const struct wf_ld *ld, const struct yaml_node *n, size_t at, size_t *line,
                      size_t *col)
{
    const char *v = n->str, *ls;
    size_t k = 0, start;

    *line = n->line;
    *col = n->col;
    if (n->style == YAML_NODE_PLAIN || n->style == YAML_NODE_SINGLE ||
        n->style == YAML_NODE_DOUBLE) {
        size_t q = n->style != YAML_NODE_PLAIN;
        if (memchr(v, '\n', at) || !file_has(ld, file_offset(ld, n->line, n->col) + q, v, at))
            return;
        *col = n->col + q + chars(v, at);
        return;
    }
    if (n->style != YAML_NODE_LITERAL)
        return;
    /* a literal block: value line k is file line n->line + 1 + k, the same
     * bytes after the block's indentation */
    ls = v;
    for (const char *p = v; p < v + at; p++)
        if (*p == '\n') {
            k++;
            ls = p + 1;
        }
    if (n->line + 1 + k > ld->n_lines)
        return;
    start = ld->lines[n->line + k];
    const char *le = strchr(ls, '\n');
    size_t vlen = le ? (size_t)(le - ls) : strlen(ls), end = start, text;
    while (end < ld->len && !wf_break(ld->data, ld->len, end))
        end++;
    if (end - start < vlen)
        return;
    text = end - vlen;
    for (size_t i = start; i < text; i++)
        if (ld->data[i] != ' ')
            return;
    if (!file_has(ld, text, ls, vlen))
        return;
    *line = n->line + 1 + k;
    *col = text - start + 1 + chars(ls, (size_t)(v + at - ls));
}

int wf_check_expr(struct wf_ld *ld, const struct yaml_node *n, const char *s, int condition,
                  const struct wf_ctx *c)
{
    struct pipeline_expr_opts o = {c ? c->names : NULL, c ? c->flags : 0};
    struct pipeline_expr *e = NULL;
    struct sw_err err = {0};
    size_t len = strlen(s), at = 0, a = 0, b = len, line, col;
    int has = memmem(s, len, "${{", 3) != NULL, rc;

    if (!has && !condition)
        return 0;
    if (!c || !c->names) {
        wf_error(ld, n, "an expression is not allowed here");
        return -1;
    }
    if (has) {
        rc = pipeline_expr_template_check(s, len, &o, &at, &err);
    } else {
        /* an if: without ${{ }} is one expression (white space around it is not) */
        while (a < b && strchr(" \t\r\n", s[a]))
            a++;
        while (b > a && strchr(" \t\r\n", s[b - 1]))
            b--;
        rc = pipeline_expr_parse(s + a, b - a, &o, &e, &at, &err);
        at += a;
        pipeline_expr_free(e);
    }
    if (!rc)
        return 0;
    /* a fault is never white space: an unexpected end is where "}}" is */
    while (at < len && strchr(" \t", s[at]))
        at++;
    value_pos(ld, n, at, &line, &col);
    wf_diag(ld, 0, line, col, "%s", err.msg);
    return -1;
}

/* A number as YAML's core schema writes one (decimal, optional sign,
 * fraction, exponent; .inf and .nan are not numbers of a workflow). */
static int parse_number(const char *s, double *out)
{
    char *end;
    if (!*s || strchr(" \t\n", *s) || strpbrk(s, "xXnNiI"))
        return -1;
    *out = strtod(s, &end);
    return *end || !isfinite(*out) ? -1 : 0;
}

int wf_val(struct wf_ld *ld, const struct yaml_node *n, enum wf_type t, const struct wf_ctx *c,
           struct pipeline_val *out)
{
    static const char *const expect[] = {"a string", "a boolean (true or false)", "a number",
                                         "a condition"};

    memset(out, 0, sizeof(*out));
    if (!n || yaml_is_null(n))
        return 0;
    if (n->kind != YAML_NODE_SCALAR) {
        wf_error(ld, n, "expected %s, not %s", expect[t], wf_kind(n));
        return -1;
    }
    out->line = n->line;
    out->col = n->col;
    out->expr = strstr(n->str, "${{") != NULL;
    out->quoted = n->style != YAML_NODE_PLAIN;
    if (wf_check_expr(ld, n, n->str, t == WF_COND, c))
        return -1;
    if (t == WF_BOOL && !out->expr && yaml_bool(n, &out->b) != 0) {
        wf_error(ld, n, "expected %s, not '%s'", expect[t], n->str);
        return -1;
    }
    if (t == WF_NUMBER && !out->expr &&
        (n->style != YAML_NODE_PLAIN || parse_number(n->str, &out->n) != 0)) {
        wf_error(ld, n, "expected %s, not '%s'", expect[t], n->str);
        return -1;
    }
    out->s = xstrdup(n->str);
    return 0;
}

int wf_map(struct wf_ld *ld, const struct yaml_node *n, const char *what, const struct wf_ctx *c,
           int allow_expr, struct pipeline_map *out)
{
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (!n || yaml_is_null(n))
        return 0;
    if (n->kind == YAML_NODE_SCALAR && allow_expr && strstr(n->str, "${{"))
        return wf_val(ld, n, WF_TEXT, c, &out->expr);
    if (n->kind != YAML_NODE_MAP) {
        wf_error(ld, n, "%s must be a mapping, not %s", what, wf_kind(n));
        return -1;
    }
    if (n->len > PIPELINE_WF_MAX_LIST) {
        wf_error(ld, n, "%s has more than %d entries", what, PIPELINE_WF_MAX_LIST);
        return -1;
    }
    out->items = xcalloc(n->len + 1, sizeof(*out->items));
    for (size_t i = 0; i < n->len; i++) {
        const struct yaml_node *k = n->pairs[i].key, *v = n->pairs[i].value;
        struct pipeline_kv *kv = &out->items[out->n];
        if (!k->str[0]) {
            wf_error(ld, k, "an empty name in %s", what);
            rc = -1;
            continue;
        }
        if (wf_val(ld, v, WF_TEXT, c, &kv->val)) {
            rc = -1;
            continue;
        }
        if (!kv->val.s) { /* KEY: alone is the empty string */
            kv->val.s = xstrdup("");
            kv->val.line = v->line;
            kv->val.col = v->col;
        }
        kv->key = xstrdup(k->str);
        kv->line = k->line;
        kv->col = k->col;
        out->n++;
    }
    return rc;
}

long wf_scalars(struct wf_ld *ld, const struct yaml_node *n, const char *what,
                const struct yaml_node *const **items, const struct yaml_node **one)
{
    long rc;

    *one = n;
    *items = one;
    if (n->kind == YAML_NODE_SCALAR && !yaml_is_null(n) && n->str[0])
        return 1;
    if (n->kind != YAML_NODE_SEQ) {
        wf_error(ld, n, "%s must be a string or a sequence of strings, not %s", what,
                 n->kind == YAML_NODE_SCALAR && !yaml_is_null(n) ? "an empty string" : wf_kind(n));
        return -1;
    }
    if (n->len > PIPELINE_WF_MAX_LIST) {
        wf_error(ld, n, "%s has more than %d entries", what, PIPELINE_WF_MAX_LIST);
        return -1;
    }
    rc = (long)n->len;
    for (size_t i = 0; i < n->len; i++) {
        const struct yaml_node *it = n->items[i];
        if (it->kind != YAML_NODE_SCALAR || yaml_is_null(it) || !it->str[0]) {
            wf_error(ld, it, "%s: each entry must be a non-empty string, not %s", what,
                     it->kind == YAML_NODE_SCALAR ? "an empty one" : wf_kind(it));
            rc = -1;
        }
    }
    *items = n->items;
    return rc;
}

int wf_ident(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

void wf_val_free(struct pipeline_val *v)
{
    free(v->s);
    v->s = NULL;
}

void wf_map_free(struct pipeline_map *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->items[i].key);
        wf_val_free(&m->items[i].val);
    }
    free(m->items);
    wf_val_free(&m->expr);
    memset(m, 0, sizeof(*m));
}

const struct pipeline_val *pipeline_map_get(const struct pipeline_map *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->items[i].key, key) == 0)
            return &m->items[i].val;
    return NULL;
}
