/*
 * parse.c — the strict HTTP/1.1 request-head parser of the http module, and the
 * request-target normaliser that turns what a client sent into a release path.
 *
 * The one idea: the parser keeps no state between calls. Each call scans the
 * buffer from the start, line by line, and stops at the first byte that can
 * decide the outcome: a byte that may never appear (refuse now), the end of the
 * data (need more), or the empty line (done). Every scan is bounded by
 * max_head, so a call costs O(min(len, max_head)) and the caller may simply
 * call again with more bytes. Nothing is allocated; results point into the
 * caller's buffer.
 *
 * Strictness is the defence against request smuggling: anything two HTTP
 * implementations could read differently (bare CR or LF, obs-fold, whitespace
 * before a colon, both framings, an odd Transfer-Encoding or Content-Length) is
 * refused and the connection closed, rather than guessed at. A handler that
 * reads no bodies gets every request that announces one refused too.
 *
 * The chunked decoder at the end is the one piece with state, and that state is
 * the caller's: a small struct that says where in the chunk grammar the last
 * byte left off, so a body is decoded once, as it arrives, in place.
 */
#include "http/http.h"

#include <limits.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

/* scan_line results besides the negative HTTP statuses. */
enum { LINE_MORE = 0, LINE_OK = 1, LINE_LONG = 2 };

/* What the header loop remembers between field lines of one head. */
struct seen {
    uint64_t body_max;
    int content_length;
    int transfer_encoding;
    int te_chunked; /* the Transfer-Encoding value was exactly "chunked" */
    int host;
    int opt_close;
    int opt_keep_alive;
};

/* RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 * "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. A table (GNU range designators, which gcc
 * and clang take): it is asked of every byte of every method and field name. */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1,         ['&'] = 1,         ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,         ['^'] = 1,         ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

static int is_tchar(unsigned char c)
{
    return tchar[c];
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* ASCII case-insensitive comparison of s[0..n) with a lower-case literal; IEQ compares
 * lengths first, so the names a field is not cost one comparison each. */
#define IEQ(s, n, lit) ((n) == sizeof(lit) - 1 && ieq((s), (n), (lit)))
static int ieq(const char *s, size_t n, const char *lower)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (lower[i] == '\0')
            return 0;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)lower[i])
            return 0;
    }
    return lower[n] == '\0';
}

/*
 * RFC 3986 §3.2.2-3.2.3 characters of host [":" port]: unreserved, pct-encoded, sub-delims,
 * ':' and the IP-literal brackets. Anything else ('@' userinfo, '/', spaces) is refused, so a
 * Host value can be logged and used for routing without escaping.
 */
static int is_host(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        if (c == 0 || !strchr("-._~%!$&'()*+,;=:[]", c))
            return 0;
    }
    return n == 0 || s[0] != ':';
}

/*
 * Splits an absolute-form http(s) target (RFC 9112 §3.2.2) into its authority
 * t[*auth_off..+*auth_len) and the offset *rest of what follows it. Returns 0, or -1 when t is
 * not such a target. RFC 9110 §4.2.1 forbids an empty host, §4.2.4 userinfo.
 */
static int split_absolute(const char *t, size_t n, size_t *auth_off, size_t *auth_len, size_t *rest)
{
    size_t s, i;

    if (n >= 7 && ieq(t, 7, "http://"))
        s = 7;
    else if (n >= 8 && ieq(t, 8, "https://"))
        s = 8;
    else
        return -1;
    for (i = s; i < n && t[i] != '/' && t[i] != '?' && t[i] != '#'; i++)
        ;
    if (i == s || !is_host(t + s, i - s))
        return -1;
    *auth_off = s;
    *auth_len = i - s;
    *rest = i;
    return 0;
}

/*
 * Finds the CRLF ending the line that starts at buf[start], looking no further than lim and
 * accepting at most max bytes before it. Sets *eol to the CR (or to where the scan stopped).
 * Bytes are checked as they go by, so garbage is refused before its line is complete:
 * the request line is visible ASCII and SP only (RFC 9112 §3, §3.2), a field line may also
 * hold HTAB and obs-text (RFC 9110 §5.5). NUL, DEL and other controls never pass, and RFC
 * 9112 §2.2 leaves us free to refuse a bare CR or LF, which we do: a peer treating either as
 * a line end would see different header lines than we do.
 */
/* Bytes that may stand inside a line: [0] of the request line (visible ASCII and SP),
 * [1] of a field line (also HTAB and obs-text). CR is in neither, so the scan below stops
 * at every line end and at every byte it must refuse. (Range designators are a GNU C
 * extension that gcc and clang both take.) */
static const unsigned char line_ok[2][256] = {
    {[0x20 ... 0x7e] = 1},
    {['\t'] = 1, [0x20 ... 0x7e] = 1, [0x80 ... 0xff] = 1},
};

static int scan_line(const char *buf, size_t start, size_t lim, size_t max, int request_line,
                     size_t *eol)
{
    const unsigned char *ok = line_ok[request_line ? 0 : 1];
    size_t end = max < lim - start ? start + max + 1 : lim, i = start;
    while (i < end && ok[(unsigned char)buf[i]])
        i++;
    if (i < end) {
        if (buf[i] != '\r')
            return -400;
        *eol = i;
        if (i + 1 == lim)
            return LINE_MORE;
        return buf[i + 1] == '\n' ? LINE_OK : -400;
    }
    *eol = i;
    return i - start > max ? LINE_LONG : LINE_MORE;
}

/* RFC 9112 §2.3, §2.6: HTTP-version is case-sensitive "HTTP/" DIGIT "." DIGIT. */
static int parse_version(const char *v, size_t n, struct http_request *req)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return -400;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return -505;
    req->minor = v[7] - '0';
    return 0;
}

/* RFC 9112 §3: request-line = method SP request-target SP HTTP-version, single spaces. */
static int parse_request_line(const char *line, size_t n, struct http_request *req)
{
    size_t i = 0, t;

    while (i < n && is_tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i == n || line[i] != ' ')
        return -400;
    req->method_str = line;
    req->method_len = i;
    /* RFC 9110 §9.1: methods are case-sensitive; "get" is some other method. */
    if (i == 3 && memcmp(line, "GET", 3) == 0)
        req->method = HTTP_GET;
    else if (i == 4 && memcmp(line, "HEAD", 4) == 0)
        req->method = HTTP_HEAD;
    else
        req->method = HTTP_OTHER;

    t = ++i;
    while (i < n && line[i] != ' ')
        i++;
    if (i == t || i == n)
        return -400;
    req->target = line + t;
    req->target_len = i - t;
    return parse_version(line + i + 1, n - i - 1, req);
}

/*
 * Connection = #connection-option (RFC 9110 §7.6.1): tokens separated by OWS "," OWS; empty
 * list elements are allowed (§5.6.1). Anything else is refused rather than half-understood.
 */
static int parse_connection(const char *v, size_t n, struct seen *st)
{
    size_t i = 0, s;

    while (i < n) {
        while (i < n && is_ows(v[i]))
            i++;
        s = i;
        while (i < n && is_tchar((unsigned char)v[i]))
            i++;
        if (ieq(v + s, i - s, "close"))
            st->opt_close = 1;
        else if (ieq(v + s, i - s, "keep-alive"))
            st->opt_keep_alive = 1;
        while (i < n && is_ows(v[i]))
            i++;
        if (i < n && v[i] != ',')
            return -400;
        i++;
    }
    return 0;
}

/*
 * Content-Length = 1*DIGIT (RFC 9110 §8.6). A list ("5, 5"), a sign, or leading zeros would
 * be read differently by different peers, so only the plain form passes. A value too large to
 * hold saturates: it is refused as too large, not as malformed.
 */
static int parse_length(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    size_t i;

    if (n == 0 || (n > 1 && v[0] == '0'))
        return -400;
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -400;
        x = x > (UINT64_MAX - 9) / 10 ? UINT64_MAX : x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

/*
 * Transfer-Encoding = #transfer-coding (RFC 9112 §6.1). Only exactly "chunked" is decoded;
 * another list of codings is well-formed but not implemented (-501, §6.1: a server that
 * does not understand a coding responds 501); anything else, parameters included, is -400.
 */
static int parse_te(const char *v, size_t n, struct seen *st)
{
    size_t i = 0, s;

    if (ieq(v, n, "chunked")) {
        st->te_chunked = 1;
        return 0;
    }
    if (n == 0)
        return -400;
    while (i < n) {
        s = i;
        while (i < n && is_tchar((unsigned char)v[i]))
            i++;
        if (i == s)
            return -400;
        while (i < n && is_ows(v[i]))
            i++;
        if (i < n && v[i] != ',')
            return -400;
        if (i < n) {
            i++;
            while (i < n && is_ows(v[i]))
                i++;
            if (i == n)
                return -400;
        }
    }
    return 0;
}

/* Records a field the server uses; a second line of it is refused (see http.h). */
static int keep_once(const struct http_header *h, const char **p, size_t *n)
{
    if (*p)
        return -400;
    *p = h->value;
    *n = h->value_len;
    return 0;
}

/* Applies the fields that change how the request is framed or served. */
static int interpret(const struct http_header *h, struct http_request *req, struct seen *st)
{
    const char *name = h->name;
    size_t n = h->name_len;

    /*
     * RFC 9112 §6.1-6.3: a body is framed by Transfer-Encoding or Content-Length. Without
     * body_max we read no bodies, so a framed body's bytes would be parsed as the next
     * request: that is request smuggling (CL.TE, TE.CL, TE.TE). Any Transfer-Encoding,
     * whatever its value, and any Content-Length but one "0" is refused, and the connection
     * closed (§6.3 item 5 for invalid lengths, including duplicates and lists). With
     * body_max, one framing of one exact form is accepted: a message with both is refused
     * (§6.1: "ought to be handled as an error", we do not guess which one a proxy used),
     * and HTTP/1.0 never had Transfer-Encoding (§6.1, a 1.0 intermediary may not know it).
     */
    if (IEQ(name, n, "transfer-encoding")) {
        if (!st->body_max || st->transfer_encoding || st->content_length || req->minor == 0)
            return -400;
        st->transfer_encoding = 1;
        return parse_te(h->value, h->value_len, st);
    }
    if (IEQ(name, n, "content-length")) {
        if (st->content_length || st->transfer_encoding)
            return -400;
        st->content_length = 1;
        if (!st->body_max)
            return h->value_len == 1 && h->value[0] == '0' ? 0 : -400;
        return parse_length(h->value, h->value_len, &req->content_length);
    }
    /* RFC 9110 §10.1.1: only "100-continue" is defined, and a 1.0 request's is ignored.
     * It only matters where a body is read. */
    if (st->body_max && IEQ(name, n, "expect")) {
        if (req->minor == 1 && IEQ(h->value, h->value_len, "100-continue"))
            req->expect_continue = 1;
        return 0;
    }
    /* RFC 9112 §3.2: one Host, with a valid value, or 400. */
    if (IEQ(name, n, "host")) {
        if (st->host || !is_host(h->value, h->value_len))
            return -400;
        st->host = 1;
        req->host = h->value;
        req->host_len = h->value_len;
        return 0;
    }
    if (IEQ(name, n, "connection"))
        return parse_connection(h->value, h->value_len, st);
    if (IEQ(name, n, "if-none-match"))
        return keep_once(h, &req->if_none_match, &req->if_none_match_len);
    if (IEQ(name, n, "range"))
        return keep_once(h, &req->range, &req->range_len);
    if (IEQ(name, n, "accept-encoding"))
        return keep_once(h, &req->accept_encoding, &req->accept_encoding_len);
    if (IEQ(name, n, "if-match"))
        return keep_once(h, &req->if_match, &req->if_match_len);
    if (IEQ(name, n, "if-modified-since"))
        return keep_once(h, &req->if_modified_since, &req->if_modified_since_len);
    if (IEQ(name, n, "if-unmodified-since"))
        return keep_once(h, &req->if_unmodified_since, &req->if_unmodified_since_len);
    if (IEQ(name, n, "if-range"))
        return keep_once(h, &req->if_range, &req->if_range_len);
    return 0;
}

/* RFC 9112 §5: field-line = field-name ":" OWS field-value OWS. */
static int parse_field(const char *line, size_t n, struct http_request *req, struct seen *st)
{
    struct http_header *h;
    size_t i = 0, v, e;

    while (i < n && is_tchar((unsigned char)line[i]))
        i++;
    /* §5.1: whitespace between name and colon MUST be refused with 400. */
    if (i == 0 || i == n || line[i] != ':')
        return -400;
    v = i + 1;
    while (v < n && is_ows(line[v]))
        v++;
    e = n;
    while (e > v && is_ows(line[e - 1]))
        e--;
    if (req->nheaders == HTTP_MAX_HEADERS)
        return -431;
    h = &req->headers[req->nheaders++];
    h->name = line;
    h->name_len = i;
    h->value = line + v;
    h->value_len = e - v;
    return interpret(h, req, st);
}

/* Running out of bytes means "need more" until max_head bytes have come without the end. */
static int need_more(size_t len, size_t max_head)
{
    return len >= max_head ? -431 : 0;
}

int http_parse_request(const char *buf, size_t len, size_t max_line, size_t max_head,
                       struct http_request *req)
{
    return http_parse_head(buf, len, max_line, max_head, 0, req);
}

int http_parse_head(const char *buf, size_t len, size_t max_line, size_t max_head,
                    uint64_t body_max, struct http_request *req)
{
    struct seen st = {0};
    size_t lim, pos = 0, eol, a, alen, rest;
    int rc;

    /* Everything but the 64 field slots (2 KiB, read only below nheaders): clearing them
     * cost a tenth of a small request's instructions. */
    memset(req, 0, offsetof(struct http_request, headers));
    memset(&req->nheaders, 0, sizeof(*req) - offsetof(struct http_request, nheaders));
    st.body_max = body_max;
    /* The result is an int; a head never exceeds max_head. */
    if (max_head > INT_MAX)
        max_head = INT_MAX;
    lim = len < max_head ? len : max_head;

    /* RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line
     * (clients have sent one after a POST body). We skip any number; they count in max_head
     * and in the returned length, so the caller consumes them. */
    while (pos + 1 < lim && buf[pos] == '\r' && buf[pos + 1] == '\n')
        pos += 2;

    rc = scan_line(buf, pos, lim, max_line, 1, &eol);
    if (rc == LINE_LONG)
        return -414;
    if (rc == LINE_MORE)
        return need_more(len, max_head);
    if (rc < 0)
        return rc;
    rc = parse_request_line(buf + pos, eol - pos, req);
    if (rc < 0)
        return rc;
    /* RFC 9112 §3.2: GET and HEAD take origin-form or absolute-form; other methods are
     * answered 405 by the caller whatever their target. */
    if (req->method != HTTP_OTHER && req->target[0] != '/' &&
        split_absolute(req->target, req->target_len, &a, &alen, &rest) < 0)
        return -400;

    for (;;) {
        pos = eol + 2;
        /* RFC 9112 §5.2 (obs-fold) and §2.2 (whitespace before the first field): a line
         * starting with SP or HTAB is refused, as soon as its first byte arrives. */
        if (pos < lim && is_ows(buf[pos]))
            return -400;
        rc = scan_line(buf, pos, lim, SIZE_MAX, 0, &eol);
        if (rc == LINE_MORE)
            return need_more(len, max_head);
        if (rc < 0)
            return rc;
        if (eol == pos)
            break;
        rc = parse_field(buf + pos, eol - pos, req, &st);
        if (rc < 0)
            return rc;
    }

    if (req->minor == 1 && !st.host)
        return -400;
    /* Decided only now, so that a malformed line anywhere in the head is a 400 first. */
    if (st.transfer_encoding && !st.te_chunked)
        return -501;
    req->chunked = st.te_chunked;
    /* RFC 9110 §15.5.14: refused before any of the body is read. */
    if (req->content_length > body_max)
        return -413;
    /* RFC 9112 §3.2.2: with an absolute-form target the server MUST ignore Host. */
    if (req->target[0] != '/' &&
        split_absolute(req->target, req->target_len, &a, &alen, &rest) == 0) {
        req->host = req->target + a;
        req->host_len = alen;
    }
    /* RFC 9112 §9.3: "close" always wins; 1.1 persists by default, 1.0 only on request. */
    if (st.opt_close)
        req->keep_alive = 0;
    else
        req->keep_alive = req->minor == 1 || st.opt_keep_alive;
    return (int)(eol + 2);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes the byte of a path segment at s[i] into *out. Returns the raw bytes used (1 or 3),
 * or -1 for a byte no path may hold. An encoded '/' or '\' would let one segment act as two
 * on the file system, so both are refused, as are NUL and controls in either form. A raw
 * byte must be visible ASCII (RFC 3986 §2: others must be percent-encoded) and not '\' or
 * '#' (a fragment is never part of a request-target, RFC 9112 §3.2).
 */
static int seg_byte(const char *s, size_t n, size_t i, unsigned char *out)
{
    unsigned char c = (unsigned char)s[i];
    int hi, lo;

    if (c == '%') {
        if (n - i < 3 || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
            return -1;
        c = (unsigned char)(hi << 4 | lo);
        if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f)
            return -1;
        *out = c;
        return 3;
    }
    if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '#')
        return -1;
    *out = c;
    return 1;
}

/*
 * Validates segment s[0..n) and returns its decoded length, or -1. *dots is 1 or 2 when the
 * segment decodes to "." or "..": dot segments are recognised after decoding, so "%2e%2e"
 * and ".%2E" are "..", while "%252e" decodes once to the three bytes "%2e" and is a name.
 */
static long seg_scan(const char *s, size_t n, int *dots)
{
    unsigned char c, first[2] = {0, 0};
    size_t i = 0;
    long dlen = 0;
    int k;

    while (i < n) {
        if ((k = seg_byte(s, n, i, &c)) < 0)
            return -1;
        if (dlen < 2)
            first[dlen] = c;
        dlen++;
        i += (size_t)k;
    }
    *dots = 0;
    if (dlen == 1 && first[0] == '.')
        *dots = 1;
    else if (dlen == 2 && first[0] == '.' && first[1] == '.')
        *dots = 2;
    return dlen;
}

int http_path_normalize(const char *target, size_t len, char *out, size_t outlen)
{
    size_t i = 0, end, s, o = 0, a, alen, j, over = 0;
    int dots, dir = 0, k;
    unsigned char c;
    long dlen;

    if (outlen > INT_MAX)
        outlen = INT_MAX;
    if (len == 0 || outlen < 2)
        return -400;
    if (target[0] != '/' && split_absolute(target, len, &a, &alen, &i) < 0)
        return -400;
    for (end = i; end < len && target[end] != '?'; end++)
        ;
    /* Only absolute-form can get here without a '/': "http://h" and "http://h?q" have an
     * empty path, which RFC 9110 §4.2.3 makes equal to "/"; "http://h#f" is refused. */
    if (i < end && target[i] != '/')
        return -400;

    /*
     * out[0..o) is the stack of kept segments, "" (the root) or "/seg/.../seg"; the root's '/'
     * and a trailing slash are added at the end. Each byte is written once and popped at most
     * once. A segment that does not fit is not refused yet, since a later ".." may pop it:
     * `over` counts the segments stacked above what out holds, and the path is too long only
     * if any are left at the end.
     */
    while (i < end) {
        s = ++i; /* past the '/' */
        while (i < end && target[i] != '/')
            i++;
        if ((dlen = seg_scan(target + s, i - s, &dots)) < 0)
            return -400;
        /* A segment that names no entry leaves a directory path: "/a/." is "/a/". */
        dir = dlen == 0 || dots;
        if (dlen == 0 || dots == 1)
            continue;
        if (dots == 2) {
            if (over > 0) {
                over--;
                continue;
            }
            if (o == 0)
                return -400; /* climbing above the root */
            do
                o--;
            while (out[o] != '/');
            continue;
        }
        if (over > 0 || o + 1 + (size_t)dlen > outlen - 1) {
            over++;
            continue;
        }
        out[o++] = '/';
        for (j = s; j < i; j += (size_t)k) {
            k = seg_byte(target, i, j, &c);
            out[o++] = (char)c;
        }
    }
    if (over > 0)
        return -400;
    if (o == 0 || dir) {
        if (o + 1 > outlen - 1)
            return -400;
        out[o++] = '/';
    }
    out[o] = '\0';
    return (int)o;
}

int http_find_header(const struct http_request *req, const char *name)
{
    size_t i, n = strlen(name);

    for (i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        size_t j;
        if (h->name_len != n)
            continue;
        for (j = 0; j < n; j++) {
            unsigned char x = (unsigned char)h->name[j], y = (unsigned char)name[j];
            if (x >= 'A' && x <= 'Z')
                x = (unsigned char)(x - 'A' + 'a');
            if (y >= 'A' && y <= 'Z')
                y = (unsigned char)(y - 'A' + 'a');
            if (x != y)
                break;
        }
        if (j == n)
            return (int)i;
    }
    return -1;
}

/* ---- the chunked transfer coding (RFC 9112 §7.1) ------------------------------------------ */

/*
 * Where the decoder is in the grammar:
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ext-val = token / quoted
 *   trailer-section = *( field-line CRLF )
 * Each state names the next byte it expects; a byte no state expects is -400, so a bare CR or
 * LF, a space after the size with no ';' after it, or a field line folded over two lines is
 * refused instead of being read one way here and another way by a proxy in front.
 */
enum {
    CH_SIZE0,   /* the first hex digit of a chunk-size */
    CH_SIZE,    /* more hex digits, or what follows them */
    CH_BWS,     /* whitespace after the size or a value: only ';' may follow */
    CH_NAME0,   /* after ';': BWS, then an extension name */
    CH_NAME,    /* in a name: more of it, '=', ';', BWS or CR */
    CH_NAME_WS, /* whitespace after a name: '=' or ';' */
    CH_VAL0,    /* after '=': BWS, then a token or a quoted-string */
    CH_VAL,     /* in a token value */
    CH_QUOTED,  /* in a quoted-string */
    CH_QESC,    /* after a backslash in a quoted-string */
    CH_QEND,    /* after the closing quote */
    CH_LF,      /* the LF ending the size line */
    CH_DATA,    /* chunk data: `left` bytes to go */
    CH_DATA_CR, /* the CRLF after the data */
    CH_DATA_LF,
    CH_TRAILER0, /* the start of a trailer field line, or the final CR */
    CH_TNAME,    /* a trailer field name up to ':' */
    CH_TVALUE,   /* a trailer field value up to CR */
    CH_TLF,      /* the LF ending a trailer line */
    CH_END_LF,   /* the LF ending the body */
    CH_DONE,
    CH_FAILED /* later calls give the same error; the status is kept in `left` */
};

void http_chunked_init(struct http_chunked *st, uint64_t max)
{
    memset(st, 0, sizeof(*st));
    st->max = max;
    st->state = CH_SIZE0;
}

/* RFC 9110 §5.5 field-vchar, SP and HTAB: the bytes a field value may hold. */
static int is_field_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* RFC 9110 §5.6.4: qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text. */
static int is_qdtext(unsigned char c)
{
    return is_field_byte(c) && c != '"' && c != '\\';
}

/* What may follow a chunk-size or an extension value: ';', BWS or the CR ending the line. */
static int after_value(unsigned char c)
{
    if (c == ';')
        return CH_NAME0;
    if (is_ows((char)c))
        return CH_BWS;
    if (c == '\r')
        return CH_LF;
    return -1;
}

static int fail(struct http_chunked *st, int status)
{
    st->state = CH_FAILED;
    st->left = (uint64_t)-status;
    return status;
}

int http_chunked_decode(struct http_chunked *st, const char *in, size_t len, char *out,
                        size_t *used, size_t *made)
{
    size_t i = 0, o = 0, k;
    int next, d, rc = 0;

    *used = 0;
    *made = 0;
    if (st->state == CH_DONE)
        return 1;
    if (st->state == CH_FAILED)
        return -(int)st->left;
    while (i < len) {
        unsigned char c = (unsigned char)in[i];

        if (st->state == CH_DATA) {
            /* The one state that takes more than a byte: as much of the chunk as is here. */
            k = len - i < st->left ? len - i : (size_t)st->left;
            memmove(out + o, in + i, k);
            i += k;
            o += k;
            st->left -= k;
            st->total += k;
            if (st->left == 0)
                st->state = CH_DATA_CR;
            continue;
        }
        i++;
        /* Bounds, counted per byte so that no line or section grows without limit. */
        if (st->state <= CH_LF && ++st->line > HTTP_MAX_CHUNK_LINE) {
            rc = fail(st, -400);
            goto out;
        }
        if (st->state >= CH_TRAILER0 && st->state <= CH_END_LF && ++st->line > HTTP_MAX_TRAILER) {
            rc = fail(st, -431);
            goto out;
        }

        next = -1;
        switch (st->state) {
        case CH_SIZE0:
        case CH_SIZE:
            if ((d = hexval((char)c)) >= 0) {
                /* RFC 9112 §7.1: a recipient MUST anticipate sizes too large for its
                 * integers; a size past max is 413 as soon as its digits say so. */
                if (st->left > (UINT64_MAX >> 4)) {
                    rc = fail(st, -413);
                    goto out;
                }
                st->left = st->left << 4 | (uint64_t)d;
                if (st->left > st->max - st->total) {
                    rc = fail(st, -413);
                    goto out;
                }
                next = CH_SIZE;
            } else if (st->state == CH_SIZE) {
                next = after_value(c);
            }
            break;
        case CH_BWS:
            next = c == ';' ? CH_NAME0 : is_ows((char)c) ? CH_BWS : -1;
            break;
        case CH_NAME0:
            next = is_ows((char)c) ? CH_NAME0 : is_tchar(c) ? CH_NAME : -1;
            break;
        case CH_NAME:
            if (is_tchar(c))
                next = CH_NAME;
            else if (c == '=')
                next = CH_VAL0;
            else
                next = after_value(c) == CH_BWS ? CH_NAME_WS : after_value(c);
            break;
        case CH_NAME_WS:
            next = c == '=' ? CH_VAL0 : c == ';' ? CH_NAME0 : is_ows((char)c) ? CH_NAME_WS : -1;
            break;
        case CH_VAL0:
            next = is_ows((char)c) ? CH_VAL0 : c == '"' ? CH_QUOTED : is_tchar(c) ? CH_VAL : -1;
            break;
        case CH_VAL:
            next = is_tchar(c) ? CH_VAL : after_value(c);
            break;
        case CH_QUOTED:
            next = c == '"' ? CH_QEND : c == '\\' ? CH_QESC : is_qdtext(c) ? CH_QUOTED : -1;
            break;
        case CH_QESC: /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
            next = is_field_byte(c) ? CH_QUOTED : -1;
            break;
        case CH_QEND:
            next = after_value(c);
            break;
        case CH_LF:
            if (c == '\n') {
                next = st->left ? CH_DATA : CH_TRAILER0;
                st->line = 0;
            }
            break;
        case CH_DATA_CR:
            next = c == '\r' ? CH_DATA_LF : -1;
            break;
        case CH_DATA_LF:
            next = c == '\n' ? CH_SIZE0 : -1;
            break;
        case CH_TRAILER0:
            /* RFC 9112 §7.1.2: trailers are field lines; whitespace first would be obs-fold
             * or whitespace before a name (§5.2, §2.2): refused, as in the head. */
            next = c == '\r' ? CH_END_LF : is_tchar(c) ? CH_TNAME : -1;
            break;
        case CH_TNAME:
            next = is_tchar(c) ? CH_TNAME : c == ':' ? CH_TVALUE : -1;
            break;
        case CH_TVALUE:
            next = c == '\r' ? CH_TLF : is_field_byte(c) ? CH_TVALUE : -1;
            break;
        case CH_TLF:
            next = c == '\n' ? CH_TRAILER0 : -1;
            break;
        case CH_END_LF:
            if (c == '\n') {
                st->state = CH_DONE;
                rc = 1;
                goto out;
            }
            break;
        }
        if (next < 0) {
            rc = fail(st, -400);
            goto out;
        }
        st->state = next;
    }
out:
    *used = i;
    *made = o;
    return rc;
}
