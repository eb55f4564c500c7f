/*
 * Escaping text for a terminal. Names, messages and ids that reach the screen
 * come from users and from a shared store; printed raw, a newline forges a
 * line of output, a carriage return overwrites one, and an escape sequence
 * reprograms the terminal. The one idea: what is printed is a one-to-one
 * encoding of the input in which no byte the terminal acts on survives, so no
 * input can look like anything but itself.
 */
#include "base/base.h"

#include <stdio.h>
#include <string.h>

/* Decodes one UTF-8 sequence at s (RFC 3629 §3: shortest form, no surrogates,
 * at most U+10FFFF). Returns its length and the code point in *cp, or 0 when
 * the bytes are not valid UTF-8. */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
    size_t n;
    uint32_t c, min;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, c = s[0] & 0x1f, min = 0x80;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, c = s[0] & 0x0f, min = 0x800;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, c = s[0] & 0x07, min = 0x10000;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* Code points a terminal acts on or that change how the line reads: C1
 * controls (U+009B is CSI on many terminals), the line and paragraph
 * separators, and the bidirectional controls that reorder what is shown. */
static int is_unsafe(uint32_t c)
{
    return (c >= 0x80 && c <= 0x9f) || c == 0x61c || c == 0x200e || c == 0x200f ||
           (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

void buf_add_escaped(struct buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    buf_add(b, "", 0); /* "" escapes to "", not to a NULL buffer */
    while (*p) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p < 0x7f && *p != '\\')
            p++;
        buf_add(b, run, (size_t)(p - run));
        if (!*p)
            break;
        uint32_t cp;
        size_t n;
        switch (*p) {
        case '\\':
            buf_adds(b, "\\\\");
            break;
        case '\n':
            buf_adds(b, "\\n");
            break;
        case '\r':
            buf_adds(b, "\\r");
            break;
        case '\t':
            buf_adds(b, "\\t");
            break;
        default:
            if (*p >= 0x80 && (n = utf8_decode(p, &cp)) != 0) {
                if (is_unsafe(cp))
                    buf_addf(b, "\\u%04x", (unsigned)cp);
                else
                    buf_add(b, p, n);
                p += n;
                continue;
            }
            buf_addf(b, "\\x%02x", *p);
        }
        p++;
    }
}
