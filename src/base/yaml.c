/*
 * YAML documents with positions. libyaml's event parser is driven here and
 * its events are built into a small immutable tree in which every node keeps
 * its line and column, so a schema above (environment files, workflows) can
 * point at the offending character of any file it refuses.
 *
 * The one idea: the loader, not libyaml's document API, owns every bound.
 * It counts nodes as they arrive, an alias counting as all the nodes it
 * stands for (so expansion is measured, never performed), measures nesting
 * with aliases included, and stops at the first event over a limit; memory
 * therefore stays proportional to the input, whatever the input is.
 */
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define DEFAULT_MAX_BYTES ((size_t)4 << 20)
#define DEFAULT_MAX_NODES ((size_t)100000)
#define DEFAULT_MAX_DEPTH ((size_t)64)
#define DEFAULT_MAX_SCALAR ((size_t)1 << 20)

/* A node as the loader builds it; the public part comes first. */
struct lnode {
    struct yaml_node pub;
    size_t weight; /* nodes it stands for: itself and all below, aliases expanded */
    size_t height; /* levels, 1 for a scalar */
    int complete;  /* 0 while a collection is still open (an alias to it is a cycle) */
    char *own_str; /* what pub points to, owned */
    char *own_tag;
    const struct yaml_node **own_items;
    struct yaml_pair *own_pairs;
    const struct yaml_pair **own_index;
};

struct doc {
    struct yaml_doc pub;
    char *name;
    struct lnode **all; /* every node, for freeing */
    size_t nall, capall;
};

/* An open collection. Mappings collect key, value, key, value... */
struct frame {
    struct lnode *n;
    size_t start_count; /* the loader's node count before this node */
    size_t height;      /* the tallest child so far */
    const struct yaml_node **items;
    size_t len, cap;
};

struct anchor {
    char *name;
    struct lnode *n;
};

struct loader {
    struct doc *doc;
    struct yaml_limits lim;
    struct sw_err *err;
    struct frame *stack;
    size_t depth, capdepth;
    size_t count; /* nodes so far, aliases expanded */
    int docs;
    struct anchor *anchors; /* open addressing, capacity a power of two */
    size_t nanchors, capanchors;
    size_t end_line, end_col; /* the position just after the last character */
};

int yaml_err(struct sw_err *err, const struct yaml_node *n, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    sw_err_set(err, SW_EINVAL, "%s:%zu:%zu: %s", n->file, n->line, n->col, b.data);
    buf_free(&b);
    return SW_EINVAL;
}

/* ---- lookups --------------------------------------------------------------------- */

const char *yaml_scalar(const struct yaml_node *n)
{
    return n && n->kind == YAML_NODE_SCALAR ? n->str : NULL;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return alen < blen ? -1 : 1;
    return memcmp(a, b, alen);
}

const struct yaml_pair *yaml_map_find(const struct yaml_node *map, const char *key)
{
    if (!map || map->kind != YAML_NODE_MAP)
        return NULL;
    size_t lo = 0, hi = map->len, klen = strlen(key);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct yaml_node *k = map->index[mid]->key;
        int c = key_cmp(k->str, k->len, key, klen);
        if (c == 0)
            return map->index[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const struct yaml_node *yaml_map_get(const struct yaml_node *map, const char *key)
{
    const struct yaml_pair *p = yaml_map_find(map, key);
    return p ? p->value : NULL;
}

int yaml_is_null(const struct yaml_node *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    if (!n || n->kind != YAML_NODE_SCALAR || n->style != YAML_NODE_PLAIN)
        return 0;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(*nulls); i++)
        if (!strcmp(n->str, nulls[i]))
            return 1;
    return 0;
}

int yaml_bool(const struct yaml_node *n, int *b)
{
    static const char *const words[] = {"false", "False", "FALSE", "true", "True", "TRUE"};
    if (!n || n->kind != YAML_NODE_SCALAR || n->style != YAML_NODE_PLAIN)
        return SW_EINVAL;
    for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++)
        if (!strcmp(n->str, words[i])) {
            *b = i >= 3;
            return 0;
        }
    return SW_EINVAL;
}

int yaml_int(const struct yaml_node *n, int64_t min, int64_t max, int64_t *v)
{
    if (!n || n->kind != YAML_NODE_SCALAR || n->style != YAML_NODE_PLAIN)
        return SW_EINVAL;
    const char *p = n->str;
    int neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    if (!*p)
        return SW_EINVAL;
    /* Accumulated as a negative number: its range includes INT64_MIN. */
    int64_t acc = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return SW_EINVAL;
        int d = *p - '0';
        if (acc < (INT64_MIN + d) / 10)
            return SW_EINVAL;
        acc = acc * 10 - d;
    }
    if (!neg && acc == INT64_MIN)
        return SW_EINVAL;
    int64_t val = neg ? acc : -acc;
    if (val < min || val > max)
        return SW_EINVAL;
    *v = val;
    return 0;
}

/* libyaml reports reader errors (bad UTF-8, control characters) as a byte
 * offset; this finds its line and column as the scanner counts them: a line
 * ends at LF, CR, CR LF, NEL, LS or PS, and columns count characters. */
static void offset_position(const char *data, size_t len, size_t off, size_t *line, size_t *col)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (p[i] == '\r' && i + 1 < off && p[i + 1] == '\n')
            continue; /* counted at the LF */
        if (p[i] == '\n' || p[i] == '\r' || (p[i] == 0xc2 && i + 1 < len && p[i + 1] == 0x85) ||
            (p[i] == 0xe2 && i + 2 < len && p[i + 1] == 0x80 && (p[i + 2] | 1) == 0xa9)) {
            l++, c = 1;
            i += p[i] == 0xc2 ? 1 : p[i] == 0xe2 ? 2 : 0;
        } else if ((p[i] & 0xc0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* libyaml ends the input with a line break of its own, so what it finds at
 * the end of a file that lacks one is one line further down; it is put back
 * at the end of the last line, so every position lies inside the input. */
static void mark_pos(const struct loader *ld, yaml_mark_t m, size_t *line, size_t *col)
{
    *line = m.line + 1;
    *col = m.column + 1;
    if (*line > ld->end_line || (*line == ld->end_line && *col > ld->end_col)) {
        *line = ld->end_line;
        *col = ld->end_col;
    }
}

/* ---- the tree -------------------------------------------------------------------- */

static void lnode_free(struct lnode *n)
{
    free(n->own_str);
    free(n->own_tag);
    free(n->own_items);
    free(n->own_pairs);
    free(n->own_index);
    free(n);
}

void yaml_doc_free(struct yaml_doc *pub)
{
    if (!pub)
        return;
    struct doc *d = (struct doc *)pub;
    for (size_t i = 0; i < d->nall; i++)
        lnode_free(d->all[i]);
    free(d->all);
    free(d->name);
    free(d);
}

static struct lnode *node_new(struct loader *ld, enum yaml_node_kind kind, yaml_mark_t mark,
                              const yaml_char_t *tag)
{
    struct lnode *n = xcalloc(1, sizeof(*n));
    struct doc *d = ld->doc;
    if (d->nall == d->capall)
        d->all = xrealloc(d->all, (d->capall = d->capall ? d->capall * 2 : 64) * sizeof(*d->all));
    d->all[d->nall++] = n;
    n->pub.kind = kind;
    mark_pos(ld, mark, &n->pub.line, &n->pub.col);
    n->pub.file = d->name;
    if (tag)
        n->pub.tag = n->own_tag = xstrdup((const char *)tag);
    n->weight = n->height = 1;
    return n;
}

/* ---- anchors: a small hash table (names are the document's, so hostile) --------- */

static size_t name_hash(const char *s)
{
    return (size_t)hash_fnv1a(s, strlen(s));
}

static struct anchor *anchor_slot(struct anchor *tab, size_t cap, const char *name)
{
    for (size_t i = name_hash(name) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (!tab[i].name || !strcmp(tab[i].name, name))
            return &tab[i];
}

/* A later anchor of the same name replaces the earlier (YAML 1.2 section 7.1). */
static void anchor_set(struct loader *ld, const yaml_char_t *name, struct lnode *n)
{
    if (!name)
        return;
    if ((ld->nanchors + 1) * 2 > ld->capanchors) {
        size_t cap = ld->capanchors ? ld->capanchors * 2 : 16;
        struct anchor *tab = xcalloc(cap, sizeof(*tab));
        for (size_t i = 0; i < ld->capanchors; i++)
            if (ld->anchors[i].name)
                *anchor_slot(tab, cap, ld->anchors[i].name) = ld->anchors[i];
        free(ld->anchors);
        ld->anchors = tab;
        ld->capanchors = cap;
    }
    struct anchor *a = anchor_slot(ld->anchors, ld->capanchors, (const char *)name);
    if (!a->name) {
        a->name = xstrdup((const char *)name);
        ld->nanchors++;
    }
    a->n = n;
}

static struct lnode *anchor_get(struct loader *ld, const yaml_char_t *name)
{
    if (!ld->capanchors)
        return NULL;
    return anchor_slot(ld->anchors, ld->capanchors, (const char *)name)->n;
}

/* ---- building --------------------------------------------------------------------- */

static int over_nodes(struct loader *ld, const struct yaml_node *at)
{
    return yaml_err(ld->err, at, "more than %zu nodes (an alias counts as the nodes it repeats)",
                    ld->lim.max_nodes);
}

static int over_depth(struct loader *ld, const struct yaml_node *at)
{
    return yaml_err(ld->err, at, "nested deeper than %zu levels", ld->lim.max_depth);
}

/* Adds a finished node (or an alias's target) to the open collection, or
 * makes it the root. */
static int attach(struct loader *ld, struct lnode *n)
{
    if (!ld->depth) {
        ld->doc->pub.root = &n->pub;
        return 0;
    }
    struct frame *f = &ld->stack[ld->depth - 1];
    if (f->n->pub.kind == YAML_NODE_MAP && f->len % 2 == 0 && n->pub.kind != YAML_NODE_SCALAR)
        return yaml_err(ld->err, &n->pub, "a mapping key must be a scalar");
    if (f->len == f->cap)
        f->items = xrealloc(f->items, (f->cap = f->cap ? f->cap * 2 : 8) * sizeof(*f->items));
    f->items[f->len++] = &n->pub;
    if (n->height > f->height)
        f->height = n->height;
    return 0;
}

static int cmp_pair(const void *a, const void *b)
{
    const struct yaml_pair *p = *(const struct yaml_pair *const *)a;
    const struct yaml_pair *q = *(const struct yaml_pair *const *)b;
    int c = key_cmp(p->key->str, p->key->len, q->key->str, q->key->len);
    /* Ties in document order (the pairs are one array), so that the first of
     * equal keys comes first and the duplicate reported is the earliest. */
    return c ? c : (p < q ? -1 : p > q);
}

/* Turns the collected key, value... into pairs and a sorted index, refusing
 * the earliest duplicate key. */
static int map_finish(struct loader *ld, struct lnode *m, struct frame *f)
{
    size_t n = f->len / 2;
    struct yaml_pair *pairs = xcalloc(n, sizeof(*pairs));
    const struct yaml_pair **index = xcalloc(n, sizeof(*index));
    for (size_t i = 0; i < n; i++) {
        pairs[i].key = f->items[2 * i];
        pairs[i].value = f->items[2 * i + 1];
        index[i] = &pairs[i];
    }
    m->own_pairs = pairs;
    m->own_index = index;
    m->pub.pairs = pairs;
    m->pub.index = index;
    m->pub.len = n;
    if (n > 1)
        qsort(index, n, sizeof(*index), cmp_pair);
    const struct yaml_pair *dup = NULL, *first = NULL, *group = n ? index[0] : NULL;
    for (size_t i = 1; i < n; i++) {
        const struct yaml_node *a = index[i - 1]->key, *b = index[i]->key;
        if (key_cmp(a->str, a->len, b->str, b->len) != 0) {
            group = index[i];
            continue;
        }
        if (!dup || index[i] < dup)
            dup = index[i], first = group;
    }
    if (dup)
        return yaml_err(ld->err, dup->key, "duplicate key '%s' (first at %zu:%zu)", dup->key->str,
                        first->key->line, first->key->col);
    return 0;
}

static int on_scalar(struct loader *ld, const yaml_event_t *ev)
{
    static const enum yaml_node_style styles[] = {
        [YAML_PLAIN_SCALAR_STYLE] = YAML_NODE_PLAIN,
        [YAML_SINGLE_QUOTED_SCALAR_STYLE] = YAML_NODE_SINGLE,
        [YAML_DOUBLE_QUOTED_SCALAR_STYLE] = YAML_NODE_DOUBLE,
        [YAML_LITERAL_SCALAR_STYLE] = YAML_NODE_LITERAL,
        [YAML_FOLDED_SCALAR_STYLE] = YAML_NODE_FOLDED,
    };
    struct lnode *n = node_new(ld, YAML_NODE_SCALAR, ev->start_mark, ev->data.scalar.tag);
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    unsigned st = (unsigned)ev->data.scalar.style;
    n->pub.style = st < sizeof(styles) / sizeof(*styles) ? styles[st] : YAML_NODE_PLAIN;
    if (++ld->count > ld->lim.max_nodes)
        return over_nodes(ld, &n->pub);
    if (ld->depth + 1 > ld->lim.max_depth)
        return over_depth(ld, &n->pub);
    if (len > ld->lim.max_scalar)
        return yaml_err(ld->err, &n->pub, "a scalar of more than %zu bytes", ld->lim.max_scalar);
    /* "\0" in a double-quoted scalar: every reader of the tree uses C strings,
     * and a value cut short at the NUL would be checked as something else. */
    if (memchr(v, '\0', len))
        return yaml_err(ld->err, &n->pub, "a NUL character in a scalar");
    n->pub.str = n->own_str = xstrndup(v, len);
    n->pub.len = len;
    n->complete = 1;
    anchor_set(ld, ev->data.scalar.anchor, n);
    return attach(ld, n);
}

static int on_start(struct loader *ld, const yaml_event_t *ev, enum yaml_node_kind kind)
{
    const yaml_char_t *tag =
        kind == YAML_NODE_SEQ ? ev->data.sequence_start.tag : ev->data.mapping_start.tag;
    const yaml_char_t *anchor =
        kind == YAML_NODE_SEQ ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
    struct lnode *n = node_new(ld, kind, ev->start_mark, tag);
    size_t before = ld->count;
    if (++ld->count > ld->lim.max_nodes)
        return over_nodes(ld, &n->pub);
    if (ld->depth + 1 > ld->lim.max_depth)
        return over_depth(ld, &n->pub);
    if (ld->depth == ld->capdepth)
        ld->stack = xrealloc(ld->stack, (ld->capdepth = ld->capdepth ? ld->capdepth * 2 : 8) *
                                            sizeof(*ld->stack));
    ld->stack[ld->depth++] = (struct frame){n, before, 0, NULL, 0, 0};
    anchor_set(ld, anchor, n); /* incomplete until its end: see on_alias */
    return 0;
}

static int on_end(struct loader *ld)
{
    struct frame f = ld->stack[--ld->depth];
    struct lnode *n = f.n;
    int rc = 0;
    n->weight = ld->count - f.start_count;
    n->height = f.height + 1;
    n->complete = 1;
    if (n->pub.kind == YAML_NODE_SEQ) {
        n->own_items = f.items;
        n->pub.items = f.items;
        n->pub.len = f.len;
        f.items = NULL;
    } else {
        rc = map_finish(ld, n, &f);
    }
    free(f.items);
    return rc ? rc : attach(ld, n);
}

static int on_alias(struct loader *ld, const yaml_event_t *ev)
{
    struct lnode *t = anchor_get(ld, ev->data.alias.anchor);
    struct yaml_node at = {.file = ld->doc->name};
    mark_pos(ld, ev->start_mark, &at.line, &at.col);
    if (!t)
        return yaml_err(ld->err, &at, "unknown anchor '%s'", (const char *)ev->data.alias.anchor);
    if (!t->complete)
        return yaml_err(ld->err, &at, "alias '%s' inside the node it names",
                        (const char *)ev->data.alias.anchor);
    if (t->weight > ld->lim.max_nodes - ld->count)
        return over_nodes(ld, &at);
    ld->count += t->weight;
    if (ld->depth + t->height > ld->lim.max_depth)
        return over_depth(ld, &at);
    /* A node of its own, so that what is said about it points at the alias,
     * sharing (never copying) the anchored node's text and children: an alias
     * costs one node of memory whatever it stands for. */
    struct lnode *a = node_new(ld, t->pub.kind, ev->start_mark, NULL);
    struct yaml_node pos = a->pub;
    a->pub = t->pub;
    a->pub.line = pos.line;
    a->pub.col = pos.col;
    a->weight = t->weight;
    a->height = t->height;
    a->complete = 1;
    return attach(ld, a);
}

static int syntax_err(struct loader *ld, const yaml_parser_t *p, const char *data, size_t len)
{
    size_t line, col;
    if (p->error == YAML_READER_ERROR) {
        offset_position(data, len, p->problem_offset, &line, &col);
        if (p->problem_value >= 0)
            return sw_err_set(ld->err, SW_EINVAL, "%s:%zu:%zu: invalid YAML: %s (#x%X)",
                              ld->doc->name, line, col, p->problem ? p->problem : "unreadable",
                              (unsigned)p->problem_value);
        return sw_err_set(ld->err, SW_EINVAL, "%s:%zu:%zu: invalid YAML: %s", ld->doc->name, line,
                          col, p->problem ? p->problem : "unreadable");
    }
    size_t cline, ccol;
    mark_pos(ld, p->problem_mark, &line, &col);
    mark_pos(ld, p->context_mark, &cline, &ccol);
    const char *problem = p->error == YAML_MEMORY_ERROR ? "out of memory"
                          : p->problem                  ? p->problem
                                                        : "syntax error";
    if (p->context)
        return sw_err_set(ld->err, SW_EINVAL, "%s:%zu:%zu: invalid YAML: %s (%s at %zu:%zu)",
                          ld->doc->name, line, col, problem, p->context, cline, ccol);
    return sw_err_set(ld->err, SW_EINVAL, "%s:%zu:%zu: invalid YAML: %s", ld->doc->name, line, col,
                      problem);
}

static int on_event(struct loader *ld, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (ld->docs++) {
            struct yaml_node at = {.file = ld->doc->name};
            mark_pos(ld, ev->start_mark, &at.line, &at.col);
            return yaml_err(ld->err, &at, "a second YAML document; expected one");
        }
        return 0;
    case YAML_SCALAR_EVENT:
        return on_scalar(ld, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(ld, ev, YAML_NODE_SEQ);
    case YAML_MAPPING_START_EVENT:
        return on_start(ld, ev, YAML_NODE_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(ld);
    case YAML_ALIAS_EVENT:
        return on_alias(ld, ev);
    default: /* stream start and end, document end */
        return 0;
    }
}

static size_t or_default(size_t v, size_t def)
{
    return v ? v : def;
}

int yaml_doc_parse(const char *data, size_t len, const char *name, const struct yaml_limits *lim,
                   struct yaml_doc **out, struct sw_err *err)
{
    struct loader ld = {0};
    struct doc *d = xcalloc(1, sizeof(*d));
    d->name = xstrdup(name);
    d->pub.name = d->name;
    ld.doc = d;
    ld.err = err;
    ld.lim.max_bytes = or_default(lim ? lim->max_bytes : 0, DEFAULT_MAX_BYTES);
    ld.lim.max_nodes = or_default(lim ? lim->max_nodes : 0, DEFAULT_MAX_NODES);
    ld.lim.max_depth = or_default(lim ? lim->max_depth : 0, DEFAULT_MAX_DEPTH);
    ld.lim.max_scalar = or_default(lim ? lim->max_scalar : 0, DEFAULT_MAX_SCALAR);
    int rc = 0;
    if (len > ld.lim.max_bytes) {
        rc = sw_err_set(err, SW_EINVAL, "%s: %zu bytes, more than the %zu a YAML document may have",
                        name, len, ld.lim.max_bytes);
        goto out;
    }
    offset_position(data, len, len, &ld.end_line, &ld.end_col);
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        abort(); /* only fails to allocate: as xmalloc does */
    /* UTF-8 only: libyaml would otherwise take a BOM as a sign of UTF-16, and
     * its marks would count UTF-16 units. */
    yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    for (int end = 0; !rc && !end;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = syntax_err(&ld, &p, data, len);
            break;
        }
        rc = on_event(&ld, &ev);
        end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (!rc && !d->pub.root) { /* no document at all: an empty file */
        struct lnode *n = node_new(&ld, YAML_NODE_SCALAR, (yaml_mark_t){0, 0, 0}, NULL);
        n->pub.str = n->own_str = xstrdup("");
        n->complete = 1;
        d->pub.root = &n->pub;
    }
out:
    for (size_t i = 0; i < ld.depth; i++)
        free(ld.stack[i].items);
    free(ld.stack);
    for (size_t i = 0; i < ld.capanchors; i++)
        free(ld.anchors[i].name);
    free(ld.anchors);
    if (rc)
        yaml_doc_free(&d->pub);
    else
        *out = &d->pub;
    return rc;
}

int yaml_doc_load(const char *path, const struct yaml_limits *lim, struct yaml_doc **out,
                  struct sw_err *err)
{
    size_t max = or_default(lim ? lim->max_bytes : 0, DEFAULT_MAX_BYTES);
    struct stat sb;
    /* Refused before it is read: a configuration file of gigabytes is a
     * mistake, not something to hold in memory. yaml_doc_parse checks again
     * what was really read. */
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > max)
        return sw_err_set(err, SW_EINVAL,
                          "%s: %llu bytes, more than the %zu a YAML document may "
                          "have",
                          path, (unsigned long long)sb.st_size, max);
    char *data = NULL;
    size_t len;
    int rc = file_read_all(path, &data, &len, err);
    if (!rc)
        rc = yaml_doc_parse(data, len, path, lim, out, err);
    free(data);
    return rc;
}
