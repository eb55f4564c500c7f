/*
 * Text checks for input that someone else wrote: well-formed UTF-8 and
 * lowercase hex. Everything read from the store or the network passes through
 * these before it may become a header, a path, a log line or a key.
 */
#include "base/base.h"

int utf8_valid(const char *s, int printable)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p++;
        if (printable && (c < 0x20 || c == 0x7f))
            return 0;
        if (c < 0x80)
            continue;
        int n;
        unsigned cp, min;
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07, min = 0x10000;
        else
            return 0; /* a continuation byte, an overlong lead (c0, c1) or f5..ff */
        for (int i = 0; i < n; i++, p++) {
            if ((*p & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (*p & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            (printable && cp >= 0x80 && cp < 0xa0))
            return 0;
    }
    return 1;
}

int hex_lower_valid(const char *s, size_t n)
{
    size_t i = 0;
    for (; i < n && s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == n && s[n] == '\0';
}

int text_valid(const char *s, size_t max, int multiline)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++) {
        if ((*p < 0x20 && !(multiline && (*p == '\n' || *p == '\t'))) || *p == 0x7f)
            return 0;
        if (*p == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0)
            return 0; /* C1 controls, U+0080..U+009F */
    }
    return n <= max && utf8_valid(s, 0);
}
