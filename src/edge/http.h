/*
 * http — the edge server's HTTP/1.1 request-head parser and request-target
 * normaliser. Private to src/edge/; the module's face is edge.h.
 *
 * Both functions read untrusted bytes. They never allocate, never write
 * outside the memory they are given, do work linear in their input and keep
 * no state, so they are safe to call from any number of threads at once.
 */
#ifndef SW_EDGE_HTTP_H
#define SW_EDGE_HTTP_H

#include <stddef.h>

/* HTTP_OTHER: a syntactically valid token method we don't serve (the caller answers 405). */
enum http_method { HTTP_GET = 1, HTTP_HEAD, HTTP_OTHER };

#define HTTP_MAX_HEADERS 64

/* One header field line; name and value point into the parsed buffer, value has OWS trimmed. */
struct http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* A parsed request head. Every pointer points into the buffer given to http_parse_request
 * and is valid only as long as that buffer is unchanged. */
struct http_request {
    enum http_method method;
    const char *method_str;
    size_t method_len;
    const char *target; /* raw request-target as sent */
    size_t target_len;
    int minor; /* 0 or 1 (HTTP/1.0, HTTP/1.1) */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    /* RFC 9112 §9.3: HTTP/1.1 persists unless a "close" connection option is sent;
     * HTTP/1.0 persists only with "keep-alive" (and no "close"). */
    int keep_alive;
    /* Headers the server uses, NULL/0 when absent. Each may occur at most once (a second
     * line is refused with -400), so the one pointer is the whole field value.
     * host: the Host field value; for an absolute-form target ("http://a.b/x") it is the
     * target's authority instead, since RFC 9112 §3.2.2 makes the server ignore Host then. */
    const char *host;
    size_t host_len;
    const char *if_none_match;
    size_t if_none_match_len;
    const char *range;
    size_t range_len;
    const char *accept_encoding;
    size_t accept_encoding_len;
};

/*
 * Parses one request head from buf[0..len). Returns the number of bytes of the head (through
 * the final CRLF CRLF, including any empty lines skipped before the request line) when it is
 * complete, 0 when more bytes are needed, or a negative HTTP status when the request must be
 * refused and the connection closed:
 *   -400 malformed or ambiguous (including any Transfer-Encoding, and any Content-Length but a
 *        single "0": requests never have bodies here), -414 request line longer than max_line,
 *   -431 head longer than max_head or more than HTTP_MAX_HEADERS fields,
 *   -505 a well-formed HTTP version other than 1.0 and 1.1.
 *   (-501 is reserved; the parser does not currently return it.)
 * A negative result may be returned before the head is complete, as soon as it is certain.
 * Stateless: after 0, call again with the same bytes plus more; each call is O(min(len,
 * max_head)). On return <= 0 the contents of *req are unspecified.
 * A client sending one byte at a time would make re-parsing quadratic; a 0 can only turn into
 * a head length when the new bytes hold a '\n', so a caller may re-parse only then or when
 * len >= max_head (an error is then reported later, never missed).
 */
int http_parse_request(const char *buf, size_t len, size_t max_line, size_t max_head,
                       struct http_request *req);

/*
 * Decodes and normalises the path of a request-target into out (NUL-terminated, starts with
 * '/'). The query ("?...") is dropped; an absolute-form http(s) target has its scheme and
 * authority stripped. Percent-decoding is done exactly once: "%252e" yields the bytes "%2e".
 * "." and empty segments are removed, ".." pops a segment, a trailing slash is kept.
 * Returns the length of out, or -400 for anything that is not a plain path: another form of
 * target, a bad or encoded '/' or '\' escape, any '\', '#', NUL or control byte (raw or
 * encoded), a ".." (in any encoding) that would climb above the root, or a result that does
 * not fit in outlen-1 bytes. Decoded bytes >= 0x80 are kept as they are.
 */
int http_path_normalize(const char *target, size_t len, char *out, size_t outlen);

/* Returns the index in req->headers of the first field named name (ASCII case-insensitive),
 * or -1. */
int http_find_header(const struct http_request *req, const char *name);

#endif
