/*
 * The `on.push` filters: GitHub's patterns for branches, tags and paths.
 *
 *     *      any characters except '/'         **     any characters
 *     **\/   nothing, or anything ending in '/' (so "**\/a" also matches "a")
 *     ?  +   the preceding character or class zero or one time / one or more times
 *     [a-z0-9_]  one character listed (letters, digits, the ASCII between Z and a)
 *     \c     c itself                          !  (first)  excludes what matched before
 *
 * The one idea: a pattern compiles to a list of atoms, each with a count
 * (once, optional, one or more, any), and a name is matched by moving the set
 * of reachable positions in the name across the atoms one at a time. That is
 * linear in pattern times name whatever the pattern, so a hostile
 * "*a*a*a*a*...b" cannot make matching slow, and nothing recurses. Of a list
 * of patterns the last one that matches decides.
 */
#include "pipeline/internal.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_PATTERN = 4096 };

enum atom_kind {
    A_CHAR,    /* one byte, or one of a class */
    A_SEGMENT, /* '*': any run of bytes other than '/' */
    A_ANY,     /* '**': any run of bytes */
    A_DIRS,    /* '**' '/': empty, or at least one byte then '/' */
};

struct atom {
    enum atom_kind kind;
    char count;            /* A_CHAR: 0 once, '?' optional, '+' one or more */
    unsigned char set[32]; /* A_CHAR: the bytes it matches, as bits */
};

struct pattern {
    int negate;
    struct atom *atoms;
    size_t n;
};

struct pipeline_filter {
    struct pattern *p;
    size_t n;
};

static void set_bit(unsigned char *set, unsigned char c)
{
    set[c >> 3] |= (unsigned char)(1u << (c & 7));
}

static int has_bit(const unsigned char *set, unsigned char c)
{
    return set[c >> 3] >> (c & 7) & 1;
}

static int class_char(unsigned char c)
{
    return (c >= 'A' && c <= 'z') || (c >= '0' && c <= '9');
}

static struct atom *add_atom(struct pattern *p, enum atom_kind kind)
{
    p->atoms = xrealloc(p->atoms, (p->n + 1) * sizeof(*p->atoms));
    memset(&p->atoms[p->n], 0, sizeof(p->atoms[p->n]));
    p->atoms[p->n].kind = kind;
    return &p->atoms[p->n++];
}

/* Compiles s (after any leading '!'); on error returns the offending offset
 * in s and sets *why. */
static int compile(struct pattern *p, const char *s, size_t len, size_t *err_at, const char **why)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        struct atom *a, *prev = p->n ? &p->atoms[p->n - 1] : NULL;

        if (c == '*') {
            if (i + 1 < len && s[i + 1] == '*') {
                int dirs = i + 2 < len && s[i + 2] == '/';
                add_atom(p, dirs ? A_DIRS : A_ANY);
                i += dirs ? 3 : 2;
            } else {
                add_atom(p, A_SEGMENT);
                i++;
            }
        } else if ((c == '?' || c == '+') && i > 0) {
            /* a quantifier of what precedes: at the very start it is a character */
            if (prev && prev->kind == A_CHAR && !prev->count) {
                prev->count = (char)c;
            } else if (c == '+') {
                *err_at = i;
                *why = "'+' cannot follow '*', '**' or another '?' or '+'";
                return -1;
            } /* a '?' there adds nothing: "*?" is "*" */
            i++;
        } else if (c == '[') {
            size_t start = i++;
            a = add_atom(p, A_CHAR);
            if (i < len && s[i] == ']') {
                *err_at = i;
                *why = "empty brackets '[]'";
                return -1;
            }
            while (i < len && s[i] != ']') {
                unsigned char lo = (unsigned char)s[i];
                if (!class_char(lo)) {
                    *err_at = i;
                    *why = lo == '-' ? "a range needs a character on each side of '-'"
                                     : "brackets may only hold a-z, A-Z, 0-9 and ranges of them";
                    return -1;
                }
                if (i + 2 < len && s[i + 1] == '-' && s[i + 2] != ']') {
                    unsigned char hi = (unsigned char)s[i + 2];
                    int letters = lo >= 'A' && lo <= 'z' && hi >= 'A' && hi <= 'z';
                    int digits = lo >= '0' && lo <= '9' && hi >= '0' && hi <= '9';
                    if (!(letters || digits) || lo > hi) {
                        *err_at = i;
                        *why = "ranges may only be within a-z, A-Z or 0-9, lowest first";
                        return -1;
                    }
                    for (unsigned x = lo; x <= hi; x++)
                        set_bit(a->set, (unsigned char)x);
                    i += 3;
                } else {
                    set_bit(a->set, lo);
                    i++;
                }
            }
            if (i >= len) {
                *err_at = start;
                *why = "missing ']' after '['";
                return -1;
            }
            i++;
        } else if (c == '\\') {
            if (i + 1 >= len) {
                *err_at = i;
                *why = "missing character after '\\'";
                return -1;
            }
            set_bit(add_atom(p, A_CHAR)->set, (unsigned char)s[i + 1]);
            i += 2;
        } else {
            set_bit(add_atom(p, A_CHAR)->set, c);
            i++;
        }
    }
    return 0;
}

/* Compiles one pattern into *pt; on error sets err (naming the pattern and the
 * column) and *err_at. */
static int compile_pattern(const char *s, struct pattern *pt, size_t *err_at, struct sw_err *err)
{
    size_t len = strlen(s), at = 0, skip = 0;
    const char *why = NULL;

    if (len > MAX_PATTERN) {
        *err_at = MAX_PATTERN;
        return sw_err_set(err, PIPELINE_ESYNTAX,
                          "bad filter pattern (%zu bytes): longer than %d bytes", len, MAX_PATTERN);
    }
    if (s[0] == '!') /* only as the first character */
        pt->negate = 1, skip = 1;
    if (compile(pt, s + skip, len - skip, &at, &why) < 0) {
        *err_at = at + skip;
        return sw_err_set(err, PIPELINE_ESYNTAX, "bad filter pattern '%s': %s (column %zu)", s, why,
                          at + skip + 1);
    }
    return 0;
}

int pipeline_filter_check(const char *pattern, size_t *err_at, struct sw_err *err)
{
    struct pattern pt = {0};
    size_t at = 0;
    int rc = compile_pattern(pattern, &pt, &at, err);

    free(pt.atoms);
    if (rc && err_at)
        *err_at = at;
    return rc;
}

int pipeline_filter_new(const char *const *patterns, size_t n, struct pipeline_filter **out,
                        struct sw_err *err)
{
    struct pipeline_filter *f = xcalloc(1, sizeof(*f));
    int positive = n == 0;

    *out = NULL;
    f->p = xcalloc(n + 1, sizeof(*f->p));
    for (size_t i = 0; i < n; i++) {
        size_t at;
        f->n = i + 1;
        if (compile_pattern(patterns[i], &f->p[i], &at, err) != 0) {
            pipeline_filter_free(f);
            return PIPELINE_ESYNTAX;
        }
        positive |= !f->p[i].negate;
    }
    if (!positive) {
        pipeline_filter_free(f);
        return sw_err_set(err, PIPELINE_ESYNTAX,
                          "bad filter: every pattern starts with '!'; at least one pattern "
                          "without '!' is needed (or use the -ignore filter)");
    }
    *out = f;
    return 0;
}

void pipeline_filter_free(struct pipeline_filter *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->p[i].atoms);
    free(f->p);
    free(f);
}

/* Moves the set of reachable positions (cur, over 0..len) across one atom. */
static void step(const struct atom *a, const unsigned char *s, size_t len, const char *cur,
                 char *next)
{
    size_t p;
    int seen;

    memset(next, 0, len + 1);
    switch (a->kind) {
    case A_CHAR:
        for (p = 0; p <= len; p++) {
            if (a->count == '?' && cur[p])
                next[p] = 1;
            /* '+' may repeat: a position reached by this atom may go on with it */
            int from = cur[p] || (a->count == '+' && next[p] && p > 0);
            if (p < len && from && has_bit(a->set, s[p]))
                next[p + 1] = 1;
        }
        break;
    case A_SEGMENT:
        for (p = 0; p <= len; p++)
            next[p] = cur[p] || (p > 0 && next[p - 1] && s[p - 1] != '/');
        break;
    case A_ANY:
        for (p = 0; p <= len; p++)
            next[p] = cur[p] || (p > 0 && next[p - 1]);
        break;
    case A_DIRS:
        /* empty, or from a reached position q, at least one byte and then '/' at p - 1 */
        seen = 0;
        for (p = 0; p <= len; p++) {
            if (p >= 2 && cur[p - 2])
                seen = 1;
            next[p] = cur[p] || (seen && s[p - 1] == '/');
        }
        break;
    }
}

static int pattern_match(const struct pattern *pt, const char *s, size_t len, char *a, char *b)
{
    memset(a, 0, len + 1);
    a[0] = 1;
    for (size_t i = 0; i < pt->n; i++) {
        char *t;
        step(&pt->atoms[i], (const unsigned char *)s, len, a, b);
        t = a, a = b, b = t;
    }
    return a[len];
}

int pipeline_filter_match(const struct pipeline_filter *f, const char *s)
{
    size_t len = strlen(s);
    char *a = xmalloc(len + 1), *b = xmalloc(len + 1);
    int result = 0;

    /* The last matching pattern decides, so look from the end. */
    for (size_t i = f->n; i-- > 0;) {
        if (pattern_match(&f->p[i], s, len, a, b)) {
            result = !f->p[i].negate;
            break;
        }
    }
    free(a);
    free(b);
    return result;
}

int pipeline_filter_ref(const struct pipeline_filter *f, int ignore, const char *name)
{
    int m = pipeline_filter_match(f, name);
    return ignore ? !m : m;
}

int pipeline_filter_paths(const struct pipeline_filter *f, int ignore, const char *const *paths,
                          size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (pipeline_filter_match(f, paths[i]) != ignore)
            return 1;
    return 0;
}
