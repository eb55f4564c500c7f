/*
 * Text as GitHub's expression engine sees it: characters (UTF-8 here, UTF-16
 * there; the difference only shows in positions past astral characters),
 * case folding for its "OrdinalIgnoreCase" comparisons, JavaScript's
 * Number() for strings, and the two ways a number becomes text: .NET's "G15"
 * when a value is turned into a string (format, join, interpolation) and
 * JavaScript's shortest form inside toJSON.
 *
 * The one idea: every function here takes (pointer, length) and accepts any
 * bytes. Bytes that are not UTF-8 pass through unchanged (decoded to
 * U+DC00 + byte), so a hostile string can never make a loop stall or a
 * comparison read past its end.
 */
#include "pipeline/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t expr_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    size_t len;
    uint32_t v;
    unsigned lo = 0x80, hi = 0xbf; /* the range of the second byte */

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, v = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, v = c & 0x0f, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, v = c & 0x07, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        goto bad;
    if (n < len || s[1] < lo || s[1] > hi)
        goto bad;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            goto bad;
        v = v << 6 | (s[i] & 0x3f);
    }
    *cp = v;
    return len;
bad:
    *cp = 0xdc00 + c;
    return 1;
}

static void put_utf8(struct buf *b, uint32_t cp)
{
    unsigned char o[4];
    size_t n;

    if (cp >= 0xdc80 && cp <= 0xdcff) { /* an escaped byte goes back as it came */
        o[0] = (unsigned char)(cp - 0xdc00);
        n = 1;
    } else if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        o[0] = (unsigned char)(0xf0 | cp >> 18);
        o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    buf_add(b, o, n);
}

size_t expr_space_len(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len;

    if (n == 0)
        return 0;
    if (s[0] < 0x80)
        return s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r');
    len = expr_utf8_next(s, n, &cp);
    /* Char.IsWhiteSpace: the Zs, Zl and Zp categories, plus U+0085. */
    if (cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
        cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000)
        return len;
    return 0;
}

size_t expr_char_count(const char *s, size_t n)
{
    size_t i = 0, count = 0;
    uint32_t cp;

    while (i < n) {
        i += expr_utf8_next((const unsigned char *)s + i, n - i, &cp);
        count++;
    }
    return count;
}

void expr_fold(struct buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    uint32_t cp;

    buf_grow(b, len);
    while (i < len) {
        if (p[i] < 0x80) { /* the common case, one byte at a time */
            char c = (char)(p[i] >= 'a' && p[i] <= 'z' ? p[i] - 32 : p[i]);
            buf_add(b, &c, 1);
            i++;
            continue;
        }
        i += expr_utf8_next(p + i, len - i, &cp);
        put_utf8(b, expr_upper(cp));
    }
}

int expr_eq_fold(const char *a, size_t alen, const char *b, size_t blen)
{
    const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
    size_t i = 0, j = 0;
    uint32_t ca, cb;

    while (i < alen && j < blen) {
        if (p[i] < 0x80 && q[j] < 0x80) {
            unsigned x = p[i] >= 'a' && p[i] <= 'z' ? p[i] - 32u : p[i];
            unsigned y = q[j] >= 'a' && q[j] <= 'z' ? q[j] - 32u : q[j];
            if (x != y)
                return 0;
            i++, j++;
            continue;
        }
        i += expr_utf8_next(p + i, alen - i, &ca);
        j += expr_utf8_next(q + j, blen - j, &cb);
        if (expr_upper(ca) != expr_upper(cb))
            return 0;
    }
    return i == alen && j == blen;
}

/* ---- numbers ----------------------------------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int digit_value(char c, int base)
{
    int v = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'z' ? c - 'a' + 10
            : c >= 'A' && c <= 'Z' ? c - 'A' + 10
                                   : 99;
    return v < base ? v : -1;
}

/* StrWhiteSpaceChar of ECMA-262: white space, line terminators and U+FEFF. */
static size_t js_space_len(const unsigned char *s, size_t n)
{
    if (n >= 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf)
        return 3;
    return expr_space_len(s, n);
}

double expr_parse_number(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t k, i = 0, n = len;
    double v = 0;
    int base = 0;

    while (i < n && (k = js_space_len(u + i, n - i)) > 0)
        i += k;
    /* trailing white space, found walking forward (UTF-8 cannot be read backward safely) */
    size_t end = i;
    for (size_t j = i; j < n;) {
        if ((k = js_space_len(u + j, n - j)) > 0) {
            j += k;
        } else {
            uint32_t cp;
            j += expr_utf8_next(u + j, n - j, &cp);
            end = j;
        }
    }
    n = end;
    s += i;
    len = n > i ? n - i : 0;
    if (len == 0)
        return 0; /* Number("") and Number("  ") are 0 */

    /* NonDecimalIntegerLiteral: no sign, at least one digit */
    if (len > 2 && s[0] == '0') {
        char p = s[1];
        base = p == 'x' || p == 'X' ? 16 : p == 'o' || p == 'O' ? 8 : p == 'b' || p == 'B' ? 2 : 0;
    }
    if (base) {
        for (i = 2; i < len; i++) {
            int d = digit_value(s[i], base);
            if (d < 0)
                return NAN;
            v = v * base + d;
        }
        return v;
    }

    /* StrDecimalLiteral: [+-] (Infinity | digits [. [digits]] | . digits) [e [+-] digits] */
    i = 0;
    if (s[0] == '+' || s[0] == '-')
        i++;
    if (len - i == 8 && memcmp(s + i, "Infinity", 8) == 0)
        return s[0] == '-' ? -INFINITY : INFINITY;
    size_t int_digits = 0, frac_digits = 0;
    while (i < len && is_digit(s[i]))
        i++, int_digits++;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && is_digit(s[i]))
            i++, frac_digits++;
    }
    if (int_digits + frac_digits == 0)
        return NAN;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp_digits = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        while (i < len && is_digit(s[i]))
            i++, exp_digits++;
        if (exp_digits == 0)
            return NAN;
    }
    if (i != len)
        return NAN;
    /* The text is now known to be plain decimal, which strtod reads with correct
     * rounding (the process never changes LC_NUMERIC from "C"). */
    char small[64], *copy = len < sizeof(small) ? small : xmalloc(len + 1);
    memcpy(copy, s, len);
    copy[len] = '\0';
    v = strtod(copy, NULL);
    if (copy != small)
        free(copy);
    return v;
}

/* d as 'precision' significant digits: digits[] (no trailing zeros, at least one)
 * and the decimal exponent of the first digit. d is finite and not zero. */
static size_t sig_digits(double d, int precision, char digits[24], int *exp10)
{
    char tmp[48];
    size_t n = 0;

    snprintf(tmp, sizeof(tmp), "%.*e", precision - 1, fabs(d));
    for (const char *p = tmp; *p && *p != 'e'; p++)
        if (is_digit(*p))
            digits[n++] = *p;
    *exp10 = atoi(strchr(tmp, 'e') + 1);
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    return n;
}

void expr_format_number(double d, struct buf *b)
{
    char digits[24];
    int e;
    size_t n;

    if (isnan(d)) {
        buf_adds(b, "NaN");
        return;
    }
    if (isinf(d)) {
        buf_adds(b, d < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (d == 0) { /* and -0, which GitHub prints as "0" */
        buf_adds(b, "0");
        return;
    }
    n = sig_digits(d, 15, digits, &e);
    if (d < 0)
        buf_adds(b, "-");
    if (e > -5 && e < 15) { /* .NET's "G": fixed point when -5 < exponent < precision */
        if (e >= 0) {
            for (int i = 0; i <= e; i++)
                buf_add(b, (size_t)i < n ? &digits[i] : "0", 1);
            if ((size_t)e + 1 < n) {
                buf_adds(b, ".");
                buf_adds(b, digits + e + 1);
            }
        } else {
            buf_adds(b, "0.");
            for (int i = 0; i < -e - 1; i++)
                buf_adds(b, "0");
            buf_adds(b, digits);
        }
        return;
    }
    buf_add(b, digits, 1);
    if (n > 1) {
        buf_adds(b, ".");
        buf_adds(b, digits + 1);
    }
    buf_addf(b, "E%c%02d", e < 0 ? '-' : '+', abs(e));
}

void expr_json_number(double d, struct buf *b)
{
    char digits[24];
    int e, k, p;

    if (!isfinite(d)) {
        buf_adds(b, "null");
        return;
    }
    if (d == 0) {
        buf_adds(b, "0");
        return;
    }
    /* the fewest digits that read back as d (Number::toString of ECMA-262) */
    for (p = 1; p < 17; p++) {
        char tmp[48];
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    k = (int)sig_digits(d, p, digits, &e);
    int nexp = e + 1; /* ECMA-262's n: the value is 0.digits * 10^n */
    if (d < 0)
        buf_adds(b, "-");
    if (k <= nexp && nexp <= 21) {
        buf_adds(b, digits);
        for (int i = 0; i < nexp - k; i++)
            buf_adds(b, "0");
    } else if (0 < nexp && nexp <= 21) {
        buf_add(b, digits, (size_t)nexp);
        buf_adds(b, ".");
        buf_adds(b, digits + nexp);
    } else if (-6 < nexp && nexp <= 0) {
        buf_adds(b, "0.");
        for (int i = 0; i < -nexp; i++)
            buf_adds(b, "0");
        buf_adds(b, digits);
    } else {
        buf_add(b, digits, 1);
        if (k > 1) {
            buf_adds(b, ".");
            buf_adds(b, digits + 1);
        }
        buf_addf(b, "e%c%d", nexp - 1 < 0 ? '-' : '+', abs(nexp - 1));
    }
}

void expr_json_string(struct buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;
    uint32_t cp;

    buf_adds(b, "\"");
    while (i < len) {
        unsigned char c = p[i];
        const char *esc = NULL;
        char u[8];
        size_t k = 1;

        if (c >= 0x80) {
            k = expr_utf8_next(p + i, len - i, &cp);
            if (cp >= 0xdc80 && cp <= 0xdcff)
                esc = "\xef\xbf\xbd"; /* not UTF-8: U+FFFD keeps the output valid */
        } else if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c == '\b') {
            esc = "\\b";
        } else if (c == '\f') {
            esc = "\\f";
        } else if (c == '\n') {
            esc = "\\n";
        } else if (c == '\r') {
            esc = "\\r";
        } else if (c == '\t') {
            esc = "\\t";
        } else if (c < 0x20) {
            snprintf(u, sizeof(u), "\\u%04x", c);
            esc = u;
        }
        if (esc) {
            buf_add(b, s + i - run, run);
            run = 0;
            buf_adds(b, esc);
        } else {
            run += k;
        }
        i += k;
    }
    buf_add(b, s + i - run, run);
    buf_adds(b, "\"");
}
