/*
 * A JSON reader that builds no tree: the caller walks the document value by
 * value and keeps what it wants. jansson builds a hash table per object and a
 * node per value, which made parsing a 2,000-file release manifest most of a
 * deploy that changes nothing (and of every edge load, gc and `releases`).
 *
 * It accepts exactly what json_doc_parse (jansson with JSON_REJECT_DUPLICATES)
 * accepts, so a document means the same to both (fuzz/manifest.c checks the
 * manifest parser built on it against the jansson one, input by input), except
 * that jansson skips one NUL byte right after a number or literal ("8\0,"),
 * which this reader refuses:
 * RFC 8259 with an object or array at the top and nothing but whitespace
 * after it; strings of valid UTF-8 with no control characters, no \u0000 and
 * no unpaired surrogate escape; integers that fit in 64 bits, reals that do
 * not overflow a double; at most 2048 values nested (a scalar inside counting
 * as one more, as jansson counts); no key twice in one object.
 *
 * Duplicate keys are found by 64-bit hashes sorted when the object closes, so
 * an object of n keys costs n log n, not n squared. Two different keys with
 * the same hash make a document refused that jansson would take: a writer who
 * crafts them gains nothing it could not have by writing a bad document.
 */
#include "base/base.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define JSON_READ_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

void json_read_init(struct json_reader *r, const char *data, size_t len)
{
    memset(r, 0, sizeof(*r));
    r->start = r->p = data;
    r->end = data + len;
}

void json_read_free(struct json_reader *r)
{
    buf_free(&r->str);
    buf_free(&r->keys);
    free(r->open);
    r->open = NULL;
}

static int fail(struct json_reader *r, const char *why)
{
    if (!r->why) {
        r->why = why;
        r->at = r->p;
    }
    return JSON_READ_ERROR;
}

static void skip_ws(struct json_reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d > 15)
            return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

static void put_utf8(struct buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80)
        u[0] = (char)cp, n = 1;
    else if (cp < 0x800)
        u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3f)),
        u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    else
        u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3f)),
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    buf_add(b, u, n);
}

/* One escape after the backslash at r->p; appends what it stands for. */
static int escape(struct json_reader *r)
{
    if (r->end - r->p < 2)
        return fail(r, "premature end of input");
    char c = r->p[1], one = 0;
    switch (c) {
    case '"':
    case '\\':
    case '/':
        one = c;
        break;
    case 'b':
        one = '\b';
        break;
    case 'f':
        one = '\f';
        break;
    case 'n':
        one = '\n';
        break;
    case 'r':
        one = '\r';
        break;
    case 't':
        one = '\t';
        break;
    }
    if (one) {
        buf_add(&r->str, &one, 1);
        r->p += 2;
        return 0;
    }
    if (c != 'u')
        return fail(r, "invalid escape");
    unsigned cp, lo;
    if (r->end - r->p < 6 || hex4(r->p + 2, &cp))
        return fail(r, "invalid \\u escape");
    if (cp == 0)
        return fail(r, "\\u0000 (a NUL character) is not allowed");
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return fail(r, "invalid Unicode escape (a lone low surrogate)");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (r->end - r->p < 12 || r->p[6] != '\\' || r->p[7] != 'u' || hex4(r->p + 8, &lo) ||
            lo < 0xdc00 || lo > 0xdfff)
            return fail(r, "invalid Unicode escape (a lone high surrogate)");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        r->p += 6;
    }
    put_utf8(&r->str, cp);
    r->p += 6;
    return 0;
}

/* The string at r->p (its opening quote) into r->str, decoded. */
static int string(struct json_reader *r)
{
    buf_reset(&r->str);
    buf_grow(&r->str, 0);
    r->p++;
    for (;;) {
        const char *s = r->p;
        while (r->p < r->end && *r->p != '"' && *r->p != '\\' && (unsigned char)*r->p >= 0x20)
            r->p++;
        buf_add(&r->str, s, (size_t)(r->p - s));
        if (r->p >= r->end)
            return fail(r, "premature end of input in a string");
        if (*r->p == '"')
            break;
        if (*r->p != '\\')
            return fail(r, "control character in a string");
        if (escape(r))
            return JSON_READ_ERROR;
    }
    r->p++;
    /* Escapes were decoded to valid UTF-8 and \u0000 refused, so this checks the raw bytes. */
    if (!utf8_valid(r->str.data, 0))
        return fail(r, "a string is not valid UTF-8");
    return JSON_READ_STRING;
}

static int digits(struct json_reader *r)
{
    const char *s = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
        r->p++;
    return r->p > s;
}

static int number(struct json_reader *r)
{
    const char *s = r->p;
    if (*r->p == '-')
        r->p++;
    if (r->p < r->end && *r->p == '0') {
        r->p++;
        if (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            return fail(r, "invalid number (a leading zero)");
    } else if (!digits(r)) {
        return fail(r, "invalid token");
    }
    int real = 0;
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (!digits(r))
            return fail(r, "invalid number");
        real = 1;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (!digits(r))
            return fail(r, "invalid number");
        real = 1;
    }
    /* strtoll and strtod need a terminated copy: the input may end right after the number. */
    char tmp[64];
    size_t n = (size_t)(r->p - s);
    if (n >= sizeof(tmp)) {
        if (!real)
            return fail(r, "too big integer");
        /* A real this long is still a real: parse it from the heap. */
        char *big = xstrndup(s, n);
        errno = 0;
        double d = strtod(big, NULL);
        free(big);
        if (errno == ERANGE && isinf(d))
            return fail(r, "real number overflow");
        r->real = d;
        return JSON_READ_REAL;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    if (!real) {
        long long v = strtoll(tmp, NULL, 10);
        if (errno == ERANGE)
            return fail(r, "too big integer");
        r->num = v;
        return JSON_READ_INT;
    }
    double d = strtod(tmp, NULL);
    if (errno == ERANGE && isinf(d))
        return fail(r, "real number overflow");
    r->real = d;
    return JSON_READ_REAL;
}

static int literal(struct json_reader *r, const char *word, int kind)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return fail(r, "invalid token");
    r->p += n;
    return kind;
}

/* Opens a container at depth r->depth: its state, and where its keys start. */
static void open_container(struct json_reader *r, int is_object)
{
    if (r->nopen == r->capopen) {
        r->capopen = r->capopen ? r->capopen * 2 : 16;
        r->open = xrealloc(r->open, r->capopen * sizeof(*r->open));
    }
    r->open[r->nopen++] = (struct json_read_open){
        .object = is_object, .first = 1, .keys = r->keys.len / sizeof(uint64_t)};
}

int json_read_value(struct json_reader *r)
{
    if (r->why)
        return JSON_READ_ERROR;
    skip_ws(r);
    if (r->p >= r->end)
        return fail(r, "premature end of input");
    if (r->depth + 1 > JSON_READ_MAX_DEPTH)
        return fail(r, "maximum parsing depth reached");
    if (!r->started) {
        r->started = 1;
        if (*r->p != '{' && *r->p != '[')
            return fail(r, "'[' or '{' expected");
    }
    switch (*r->p) {
    case '{':
    case '[':
        r->depth++;
        open_container(r, *r->p == '{');
        return *r->p++ == '{' ? JSON_READ_OBJECT : JSON_READ_ARRAY;
    case '"':
        return string(r);
    case 't':
        return literal(r, "true", JSON_READ_TRUE);
    case 'f':
        return literal(r, "false", JSON_READ_FALSE);
    case 'n':
        return literal(r, "null", JSON_READ_NULL);
    default:
        return number(r);
    }
}

/* FNV-1a, 64 bits: keys are compared by it (see the top of the file). */
static uint64_t key_hash(const char *s, size_t n)
{
    return hash_fnv1a(s, n);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Closes the innermost container at its closing bracket (r->p). */
static int close_container(struct json_reader *r)
{
    struct json_read_open *o = &r->open[r->nopen - 1];
    if (o->object) {
        uint64_t *k = (uint64_t *)r->keys.data + o->keys;
        size_t n = r->keys.len / sizeof(uint64_t) - o->keys;
        if (n > 1) {
            qsort(k, n, sizeof(*k), cmp_u64);
            for (size_t i = 1; i < n; i++)
                if (k[i] == k[i - 1])
                    return fail(r, "duplicate object key");
        }
        r->keys.len = o->keys * sizeof(uint64_t);
    }
    r->nopen--;
    r->depth--;
    r->p++;
    return 0;
}

/* Before the next member or element: a comma unless it is the first, or the closing bracket. */
static int next(struct json_reader *r, char close)
{
    if (r->why)
        return JSON_READ_ERROR;
    if (!r->nopen || r->open[r->nopen - 1].object != (close == '}'))
        return fail(r, "no such container is open");
    struct json_read_open *o = &r->open[r->nopen - 1];
    skip_ws(r);
    if (r->p >= r->end)
        return fail(r, "premature end of input");
    if (*r->p == close && o->first)
        return close_container(r) ? JSON_READ_ERROR : 0;
    if (!o->first) {
        if (*r->p == close)
            return close_container(r) ? JSON_READ_ERROR : 0;
        if (*r->p != ',')
            return fail(r, close == '}' ? "',' or '}' expected" : "',' or ']' expected");
        r->p++;
        skip_ws(r);
    }
    o->first = 0;
    return 1;
}

int json_read_member(struct json_reader *r)
{
    int rc = next(r, '}');
    if (rc != 1)
        return rc;
    if (r->p >= r->end || *r->p != '"')
        return fail(r, "string or '}' expected");
    if (string(r) < 0)
        return JSON_READ_ERROR;
    uint64_t h = key_hash(r->str.data, r->str.len);
    buf_add(&r->keys, &h, sizeof(h));
    skip_ws(r);
    if (r->p >= r->end || *r->p != ':')
        return fail(r, "':' expected");
    r->p++;
    return 1;
}

int json_read_element(struct json_reader *r)
{
    return next(r, ']');
}

int json_read_skip(struct json_reader *r, int kind)
{
    if (kind != JSON_READ_OBJECT && kind != JSON_READ_ARRAY)
        return kind < 0 ? JSON_READ_ERROR : 0; /* a scalar: read already */
    int rc;
    while ((rc = kind == JSON_READ_OBJECT ? json_read_member(r) : json_read_element(r)) == 1)
        if (json_read_skip(r, json_read_value(r)) < 0)
            return JSON_READ_ERROR;
    return rc;
}

int json_read_end(struct json_reader *r)
{
    if (r->why)
        return JSON_READ_ERROR;
    skip_ws(r);
    if (r->p != r->end)
        return fail(r, "end of file expected");
    return 0;
}

int json_read_err(const struct json_reader *r, const char *name, struct sw_err *err)
{
    const char *at = r->at ? r->at : r->p;
    int line = 1;
    const char *bol = r->start;
    for (const char *q = r->start; q < at; q++)
        if (*q == '\n')
            line++, bol = q + 1;
    return sw_err_set(err, SW_EINVAL, "%s: %s at line %d column %d", name,
                      r->why ? r->why : "invalid JSON", line, (int)(at - bol) + 1);
}
