/*
 * Unit tests for the HTTP/1.1 request parser and path normaliser: valid heads, keep-alive
 * rules, pipelining, every prefix of a valid head, each strictness rule, request smuggling
 * variants, the size bounds, traversal in every encoding; the body framing rules for a handler
 * that reads bodies and the chunked decoder (every case also fed byte by byte and in place);
 * and the llhttp request conformance cases from ../shared/conformance/ when that folder
 * exists, parsed as the edge parses them and through a body-reading configuration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "http/http.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE 8192
#define MAX_HEAD 16384

/* Parses a string literal, embedded NULs included. */
#define PARSE(lit, req) http_parse_request((lit), sizeof(lit) - 1, MAX_LINE, MAX_HEAD, (req))
#define EXPECT(lit, rc)                                                                            \
    do {                                                                                           \
        struct http_request r_;                                                                    \
        int got_ = PARSE(lit, &r_);                                                                \
        if (got_ != (rc))                                                                          \
            print_error("%s:%d: got %d, want %d\n", __FILE__, __LINE__, got_, (int)(rc));          \
        assert_int_equal(got_, (rc));                                                              \
    } while (0)
/* The whole literal is one complete head. */
#define EXPECT_OK(lit) EXPECT(lit, (int)sizeof(lit) - 1)

static int span_eq(const char *p, size_t n, const char *s)
{
    return p && strlen(s) == n && memcmp(p, s, n) == 0;
}

static void test_get_basic(void **state)
{
    static const char req_s[] = "GET /index.html?x=1 HTTP/1.1\r\n"
                                "Host: example.com:8080\r\n"
                                "Accept-Encoding:  gzip, br \t\r\n"
                                "If-None-Match: \"abc\"\r\n"
                                "Range: bytes=0-10\r\n"
                                "X-Empty:\r\n"
                                "X-Inner: a  b\r\n"
                                "\r\n";
    struct http_request r;

    assert_int_equal(PARSE(req_s, &r), sizeof(req_s) - 1);
    assert_int_equal(r.method, HTTP_GET);
    assert_true(span_eq(r.method_str, r.method_len, "GET"));
    assert_true(span_eq(r.target, r.target_len, "/index.html?x=1"));
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.keep_alive, 1);
    assert_int_equal(r.nheaders, 6);
    assert_true(span_eq(r.host, r.host_len, "example.com:8080"));
    assert_true(span_eq(r.accept_encoding, r.accept_encoding_len, "gzip, br"));
    assert_true(span_eq(r.if_none_match, r.if_none_match_len, "\"abc\""));
    assert_true(span_eq(r.range, r.range_len, "bytes=0-10"));
    assert_true(span_eq(r.headers[4].name, r.headers[4].name_len, "X-Empty"));
    assert_int_equal(r.headers[4].value_len, 0);
    assert_true(span_eq(r.headers[5].value, r.headers[5].value_len, "a  b"));
    /* Pointers are into the caller's buffer, not copies. */
    assert_ptr_equal(r.method_str, req_s);
    assert_ptr_equal(r.target, req_s + 4);

    assert_int_equal(http_find_header(&r, "accept-encoding"), 1);
    assert_int_equal(http_find_header(&r, "X-EMPTY"), 4);
    assert_int_equal(http_find_header(&r, "X-Empt"), -1);
    assert_int_equal(http_find_header(&r, "Cookie"), -1);
}

static void test_methods(void **state)
{
    struct http_request r;

    assert_true(PARSE("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
    assert_int_equal(r.method, HTTP_HEAD);
    assert_true(span_eq(r.host, r.host_len, "a"));
    assert_null(r.range);
    assert_null(r.if_none_match);
    assert_null(r.accept_encoding);

    /* RFC 9110 §9.1: methods are case-sensitive; unknown tokens are OTHER (answered 405). */
    assert_true(PARSE("get / HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
    assert_int_equal(r.method, HTTP_OTHER);
    assert_true(PARSE("POST / HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
    assert_int_equal(r.method, HTTP_OTHER);
    assert_true(PARSE("GETS / HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
    assert_int_equal(r.method, HTTP_OTHER);
    assert_true(PARSE("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
    assert_int_equal(r.method, HTTP_OTHER);
    assert_true(PARSE("CONNECT a.b:443 HTTP/1.1\r\nHost: a.b:443\r\n\r\n", &r) > 0);
    assert_int_equal(r.method, HTTP_OTHER);
    assert_true(PARSE("M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
    assert_int_equal(r.method, HTTP_OTHER);

    /* GET and HEAD need origin-form or absolute-form (RFC 9112 §3.2). */
    EXPECT("GET * HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET a.b:443 HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("HEAD index.html HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET http:///b HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET http://u@a/b HTTP/1.1\r\nHost: a\r\n\r\n", -400);

    /* Absolute-form: the target's authority replaces Host (RFC 9112 §3.2.2). */
    assert_true(PARSE("GET http://example.com/x HTTP/1.1\r\nHost: other\r\n\r\n", &r) > 0);
    assert_int_equal(r.method, HTTP_GET);
    assert_true(span_eq(r.host, r.host_len, "example.com"));
    assert_true(PARSE("GET HTTPS://Example.com:8443?q HTTP/1.1\r\nHost: x\r\n\r\n", &r) > 0);
    assert_true(span_eq(r.host, r.host_len, "Example.com:8443"));
}

static void test_keep_alive(void **state)
{
    struct http_request r;

    assert_true(PARSE("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
    assert_int_equal(r.keep_alive, 1);
    assert_true(PARSE("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r) > 0);
    assert_int_equal(r.keep_alive, 0);
    assert_true(PARSE("GET / HTTP/1.1\r\nHost: a\r\nconnection: Keep-Alive, CLOSE\r\n\r\n", &r) >
                0);
    assert_int_equal(r.keep_alive, 0);
    assert_true(PARSE("GET / HTTP/1.1\r\nHost: a\r\nConnection: ,, close ,\r\n\r\n", &r) > 0);
    assert_int_equal(r.keep_alive, 0);
    assert_true(PARSE("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", &r) > 0);
    assert_int_equal(r.keep_alive, 1);
    assert_true(PARSE("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n"
                      "Connection: close\r\n\r\n",
                      &r) > 0);
    assert_int_equal(r.keep_alive, 0);

    assert_true(PARSE("GET / HTTP/1.0\r\n\r\n", &r) > 0);
    assert_int_equal(r.minor, 0);
    assert_int_equal(r.keep_alive, 0);
    assert_null(r.host);
    assert_true(PARSE("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r) > 0);
    assert_int_equal(r.keep_alive, 1);
    assert_true(PARSE("GET / HTTP/1.0\r\nConnection: foo,\tKEEP-ALIVE\r\n\r\n", &r) > 0);
    assert_int_equal(r.keep_alive, 1);
    assert_true(PARSE("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", &r) >
                0);
    assert_int_equal(r.keep_alive, 0);
    assert_true(PARSE("GET / HTTP/1.0\r\nConnection: keep-alive-ish\r\n\r\n", &r) > 0);
    assert_int_equal(r.keep_alive, 0);

    /* Connection is a list of tokens; anything else is refused, not half-read. */
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nConnection: close keep-alive\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nConnection: close;x\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nConnection: \"close\"\r\n\r\n", -400);
}

static void test_pipelined(void **state)
{
    static const char in[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                             "HEAD /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                             "GET /c HTTP/1.1\r\nHo";
    const char *want[] = {"/a", "/b"};
    struct http_request r;
    size_t off = 0;
    int i, rc;

    for (i = 0; i < 2; i++) {
        rc = http_parse_request(in + off, sizeof(in) - 1 - off, MAX_LINE, MAX_HEAD, &r);
        assert_true(rc > 0);
        assert_true(span_eq(r.target, r.target_len, want[i]));
        assert_int_equal(r.keep_alive, i == 0);
        off += (size_t)rc;
    }
    assert_int_equal(r.method, HTTP_HEAD);
    assert_memory_equal(in + off, "GET /c", 6);
    assert_int_equal(http_parse_request(in + off, sizeof(in) - 1 - off, MAX_LINE, MAX_HEAD, &r), 0);
}

static void test_every_prefix_needs_more(void **state)
{
    static const char *const heads[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\n\r\nHEAD /x/y?z HTTP/1.0\r\n\r\n",
        "GET http://h/p HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 0\r\n"
        "Range: bytes=1-\r\nX:\r\nY: \t v \t\r\n\r\n",
        "DELETE /thing HTTP/1.1\r\nHost: [::1]:80\r\nIf-None-Match: W/\"x\"\r\n\r\n",
    };
    struct http_request r;
    size_t i, n, full;

    for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        full = strlen(heads[i]);
        assert_int_equal(http_parse_request(heads[i], full, MAX_LINE, MAX_HEAD, &r), (int)full);
        for (n = 0; n < full; n++)
            assert_int_equal(http_parse_request(heads[i], n, MAX_LINE, MAX_HEAD, &r), 0);
        /* Exactly full bytes of limits is enough. */
        assert_int_equal(http_parse_request(heads[i], full, full, full, &r), (int)full);
    }
}

static void test_leading_empty_lines(void **state)
{
    static const char in[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    struct http_request r;

    /* RFC 9112 §2.2: skipped, and counted in the head so the caller consumes them. */
    assert_int_equal(PARSE(in, &r), sizeof(in) - 1);
    assert_ptr_equal(r.method_str, in + 4);
    EXPECT("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("\r\n", 0);
    EXPECT("\r", 0);
}

static void test_line_endings_and_nul(void **state)
{
    /* Bare LF and bare CR (RFC 9112 §2.2), wherever they are. */
    EXPECT("GET / HTTP/1.1\nHost: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\n\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\n\r\r", -400);
    EXPECT("GET / HTTP/1.1\rHost: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nX: a\rb\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nX: a\r\rHost: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\n\rX", -400);
    EXPECT("GET /a\nb HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    /* NUL anywhere, even before the line is complete. */
    EXPECT("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\0\r\n\r\n", -400);
    EXPECT("G\0", -400);
    EXPECT("GET / HTTP/1.1\r\nX: \0", -400);
}

static void test_request_line(void **state)
{
    EXPECT("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", -400);
    EXPECT("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT(" / HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("GE@T / HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET /\r\n\r\n", -400); /* HTTP/0.9 */
    EXPECT("GET / \r\n\r\n", -400);
    EXPECT("GET / http/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET / HTTPS/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/11\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.a\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET / ICE/1.0\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/2.0\r\nHost: a\r\n\r\n", -505);
    EXPECT("GET / HTTP/1.2\r\nHost: a\r\n\r\n", -505);
    EXPECT("GET / HTTP/0.9\r\nHost: a\r\n\r\n", -505);
    EXPECT("GET / HTTP/9.9\r\n\r\n", -505);
    /* Request-target: no space, CTL, DEL or bytes >= 0x80. */
    EXPECT("GET /foo bar HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET /\xce\xb4 HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET /\t HTTP/1.1\r\nHost: a\r\n\r\n", -400);
    /* Refused as soon as the bad byte arrives. */
    EXPECT("GET /\xff", -400);
}

static void test_fields(void **state)
{
    struct http_request r;

    /* RFC 9112 §5.1: no whitespace before the colon. */
    EXPECT("GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nX Y: z\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nFoo\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nFo@: x\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nF\xc3\xb6o: x\r\n\r\n", -400);
    /* RFC 9112 §5.2 obs-fold and §2.2 whitespace before the first field. */
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\n Host: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\n Host", -400);
    /* Field values: no CTL but HTAB (RFC 9110 §5.5); obs-text passes. */
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nX: hello\x0cworld\r\n\r\n", -400);
    EXPECT_OK("GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n");
    assert_true(PARSE("GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", &r) > 0);
    assert_true(span_eq(r.headers[1].value, r.headers[1].value_len, "caf\xc3\xa9"));
}

static void test_host_rules(void **state)
{
    struct http_request r;

    /* RFC 9112 §3.2: HTTP/1.1 needs exactly one valid Host. */
    EXPECT("GET / HTTP/1.1\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nX: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a,b\r\n\r\n",
           (int)sizeof("GET / HTTP/1.1\r\nHost: a,b\r\n\r\n") - 1);
    EXPECT("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", -400);
    /* An absolute-form target does not excuse a missing Host. */
    EXPECT("GET http://a/ HTTP/1.1\r\n\r\n", -400);
    EXPECT_OK("GET / HTTP/1.0\r\n\r\n");
    EXPECT_OK("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    /* An empty Host is valid when the target has no authority (RFC 9112 §3.2). */
    assert_true(PARSE("GET / HTTP/1.1\r\nHost:\r\n\r\n", &r) > 0);
    assert_non_null(r.host);
    assert_int_equal(r.host_len, 0);
}

static void test_smuggling(void **state)
{
    /* CL.TE and TE.CL: both framings present. */
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n"
           "\r\n0\r\n\r\nG",
           -400);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n"
           "\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
           -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n"
           "\r\n",
           -400);
    /* TE.TE: obfuscated Transfer-Encoding, each refused. */
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: identity\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-encoding: x\r\n"
           "\r\n",
           -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\x0b: chunked\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nX: y\nTransfer-Encoding: chunked\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nX: y\rTransfer-Encoding: chunked\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400);
    /* Content-Length: only one exact "0" is acceptable. */
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\ncontent-length: 5\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +0\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -0\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 0\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 00\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x0\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0 0\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", -400);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000000000\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 0\r\n\r\n", -400);
    EXPECT_OK("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    EXPECT_OK("GET / HTTP/1.1\r\nHost: a\r\nContent-Length:  0 \r\n\r\n");
    /* Refused once the field line is complete, before the head is. */
    EXPECT("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nContent-Length: 1\r\n", -400);
}

static void test_singleton_fields(void **state)
{
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1\r\nRange: bytes=2-3\r\n\r\n", -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"a\"\r\nif-none-match: \"b\"\r\n\r\n",
           -400);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\nAccept-Encoding: br\r\n\r\n",
           -400);
    EXPECT_OK("GET / HTTP/1.1\r\nHost: a\r\nAccept: a\r\nAccept: b\r\n\r\n");
}

static void test_limits(void **state)
{
    char buf[2048];
    struct http_request r;
    size_t n;
    int i;

    /* Request line of exactly max_line bytes passes; one more is -414. */
    n = (size_t)snprintf(buf, sizeof(buf), "GET /%s HTTP/1.1\r\nHost: a\r\n\r\n", "abcdefghij");
    assert_int_equal(http_parse_request(buf, n, 24, 1024, &r), (int)n); /* line is 24 bytes */
    assert_int_equal(http_parse_request(buf, n, 23, 1024, &r), -414);
    /* Incomplete: -414 as soon as max_line bytes came without a CR, 0 before that. */
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "GET /", 5);
    assert_int_equal(http_parse_request(buf, 100, 100, 1024, &r), 0);
    assert_int_equal(http_parse_request(buf, 101, 100, 1024, &r), -414);
    assert_int_equal(http_parse_request(buf, sizeof(buf), 100, 1024, &r), -414);
    buf[100] = '\r';
    assert_int_equal(http_parse_request(buf, 101, 100, 1024, &r), 0);
    assert_int_equal(http_parse_request(buf, 102, 100, 1024, &r), -400); /* 'a' after CR */

    /* The head: exactly max_head passes, without its end at max_head bytes is -431. */
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX: %0400d\r\n\r\n", 0);
    assert_int_equal(http_parse_request(buf, n, 100, n, &r), (int)n);
    assert_int_equal(http_parse_request(buf, n, 100, n - 1, &r), -431);
    assert_int_equal(http_parse_request(buf, n - 1, 100, n - 1, &r), -431);
    assert_int_equal(http_parse_request(buf, n - 2, 100, n - 1, &r), 0);
    assert_int_equal(http_parse_request(buf, 200, 100, 64, &r), -431);
    assert_int_equal(http_parse_request(buf, 0, 100, 0, &r), -431);
    /* Endless empty lines before the request line are bounded by max_head too. */
    for (i = 0; i < 512; i++)
        memcpy(buf + 2 * i, "\r\n", 2);
    assert_int_equal(http_parse_request(buf, 1024, 100, 1000, &r), -431);
    assert_int_equal(http_parse_request(buf, 1024, 100, 2000, &r), 0);

    /* HTTP_MAX_HEADERS fields pass, one more is -431. */
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (i = 1; i < HTTP_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X%d: v\r\n", i);
    memcpy(buf + n, "\r\n", 2);
    assert_int_equal(http_parse_request(buf, n + 2, MAX_LINE, MAX_HEAD, &r), (int)n + 2);
    assert_int_equal(r.nheaders, HTTP_MAX_HEADERS);
    memcpy(buf + n, "Y: v\r\n\r\n", 8);
    assert_int_equal(http_parse_request(buf, n + 8, MAX_LINE, MAX_HEAD, &r), -431);
}

struct path_case {
    const char *in;
    const char *want; /* NULL: -400 */
};

static void test_path_normalize(void **state)
{
    static const struct path_case cases[] = {
        {"/", "/"},
        {"/index.html", "/index.html"},
        {"//a/./b", "/a/b"},
        {"/a/b/../c", "/a/c"},
        {"/docs/", "/docs/"},
        {"/docs", "/docs"},
        {"/a/b/..", "/a/"},
        {"/a/.", "/a/"},
        {"/a/./", "/a/"},
        {"/a/..", "/"},
        {"/a//b//", "/a/b/"},
        {"/./././", "/"},
        {"/a?x=1", "/a"},
        {"/?x=/../..", "/"},
        {"/a/?", "/a/"},
        {"/a%20b", "/a b"},
        {"/%7euser/%7E", "/~user/~"},
        {"/caf%C3%A9", "/caf\xc3\xa9"},
        {"/%3f%23", "/?#"},
        {"/%2e", "/"},
        {"/a/%2E", "/a/"},
        {"/a/%2e%2e/b", "/b"},
        {"/a/.%2E/b", "/b"},
        {"/a/%2e./b", "/b"},
        {"/a/b/%2e%2e", "/a/"},
        {"/...", "/..."},
        {"/a/%2e%2e%2e", "/a/..."},
        {"/a/..;/b", "/a/..;/b"},
        {"/.well-known/x", "/.well-known/x"},
        /* Decoded exactly once: "%252e%252e" is the name "%2e%2e", never "..". */
        {"/%252e%252e/x", "/%2e%2e/x"},
        {"/a/%252e%252e", "/a/%2e%2e"},
        {"/%252e%252e%252f", "/%2e%2e%2f"},
        {"/%25", "/%"},
        {"http://example.com/x/../y?q", "/y"},
        {"HTTPS://example.com", "/"},
        {"http://example.com?q", "/"},
        {"http://[::1]:80/a/", "/a/"},
        /* Traversal above the root, in every encoding. */
        {"/..", NULL},
        {"/../", NULL},
        {"/../etc/passwd", NULL},
        {"/%2e%2e/", NULL},
        {"/%2E%2E/", NULL},
        {"/.%2e/", NULL},
        {"/%2e./", NULL},
        {"/a/../../b", NULL},
        {"/a/./../..", NULL},
        {"/a/b/../../../c", NULL},
        {"http://h/../x", NULL},
        /* Encoded separators and backslashes. */
        {"/%2E%2E%2f", NULL},
        {"/a%2Fb", NULL},
        {"/a%2fb", NULL},
        {"/..%5c", NULL},
        {"/..%5C..%5Cetc", NULL},
        {"/a\\b", NULL},
        {"/..\\", NULL},
        /* NUL and controls, raw or encoded. */
        {"/a%00b", NULL},
        {"/a%00", NULL},
        {"/a%0d%0aSet-Cookie:x", NULL},
        {"/a%09", NULL},
        {"/a%7f", NULL},
        {"/a b", NULL},
        {"/a\x01", NULL},
        {"/\x80", NULL},
        {"/a\x7f", NULL},
        /* Bad escapes. */
        {"/a%zz", NULL},
        {"/a%4", NULL},
        {"/a%", NULL},
        {"/a%%41", NULL},
        {"/a%g0", NULL},
        /* Not a plain path. */
        {"a/b", NULL},
        {"*", NULL},
        {"example.com:443", NULL},
        {"ftp://h/x", NULL},
        {"http:///x", NULL},
        {"http://u@h/x", NULL},
        {"http://h#f", NULL},
        {"/a#frag", NULL},
        {"", NULL},
    };
    char out[256];
    size_t i;
    int rc;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct path_case *c = &cases[i];
        rc = http_path_normalize(c->in, strlen(c->in), out, sizeof(out));
        if (c->want == NULL) {
            if (rc != -400)
                print_error("%s: got %d \"%s\", want -400\n", c->in, rc, rc >= 0 ? out : "");
            assert_int_equal(rc, -400);
            continue;
        }
        if (rc < 0 || strcmp(out, c->want) != 0)
            print_error("%s: got %d \"%s\", want \"%s\"\n", c->in, rc, rc >= 0 ? out : "", c->want);
        assert_int_equal(rc, strlen(c->want));
        assert_string_equal(out, c->want);
    }
    /* A raw NUL inside the target. */
    assert_int_equal(http_path_normalize("/a\0b", 4, out, sizeof(out)), -400);
    /* The length given is honoured: the bytes past it are not read. */
    assert_int_equal(http_path_normalize("/ab/../x", 3, out, sizeof(out)), 3);
    assert_string_equal(out, "/ab");
}

static void test_path_out_bounds(void **state)
{
    char out[8];

    memset(out, 'X', sizeof(out));
    assert_int_equal(http_path_normalize("/abc", 4, out, 5), 4);
    assert_string_equal(out, "/abc");
    assert_int_equal(http_path_normalize("/abc", 4, out, 4), -400);
    assert_int_equal(http_path_normalize("/a/", 3, out, 4), 3);
    assert_int_equal(http_path_normalize("/a/", 3, out, 3), -400);
    assert_int_equal(http_path_normalize("/", 1, out, 2), 1);
    assert_int_equal(http_path_normalize("/", 1, out, 1), -400);
    assert_int_equal(http_path_normalize("/", 1, out, 0), -400);
    /* Removed segments need no room: the result is what must fit. */
    assert_int_equal(http_path_normalize("/abc/./../abc/.", 15, out, 6), 5);
    assert_string_equal(out, "/abc/");
    /* Nor do segments a later ".." pops, however long. */
    assert_int_equal(http_path_normalize("/aaaaaaaaaaaa/bbbbbbbbbbbb/../../b", 34, out, 3), 2);
    assert_string_equal(out, "/b");
    assert_int_equal(http_path_normalize("/abcdefghij/../b/cdefghijk", 26, out, 8), -400);
    assert_int_equal(http_path_normalize("/abcdefghij/../../b", 19, out, 8), -400);
    assert_int_equal(http_path_normalize("/%41%42%43", 10, out, 5), 4);
    assert_string_equal(out, "/ABC");
    assert_int_equal(http_path_normalize("/ab/cd", 6, out, 6), -400);
    assert_int_equal(http_path_normalize("/ab/cd", 6, out, 7), 6);
}

/* ---- request bodies: framing in the head ------------------------------------- */

#define BODY_MAX 1000
#define PARSE_B(lit, req)                                                                          \
    http_parse_head((lit), sizeof(lit) - 1, MAX_LINE, MAX_HEAD, BODY_MAX, (req))
#define EXPECT_B(lit, rc)                                                                          \
    do {                                                                                           \
        struct http_request r_;                                                                    \
        int got_ = PARSE_B(lit, &r_);                                                              \
        if (got_ != (rc))                                                                          \
            print_error("%s:%d: got %d, want %d\n", __FILE__, __LINE__, got_, (int)(rc));          \
        assert_int_equal(got_, (rc));                                                              \
    } while (0)

static void test_body_framing(void **state)
{
    static const char cl[] = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nbody...";
    static const char te[] =
        "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\n";
    struct http_request r;
    size_t n;

    /* The head ends where the body starts; the body is not the parser's. */
    assert_int_equal(PARSE_B(cl, &r), sizeof(cl) - 1 - 7);
    assert_int_equal(r.content_length, 1000);
    assert_int_equal(r.chunked, 0);
    assert_int_equal(r.expect_continue, 0);
    assert_null(r.body);
    assert_int_equal(PARSE_B(te, &r), sizeof(te) - 1 - 3);
    assert_int_equal(r.chunked, 1);
    assert_int_equal(r.content_length, 0);
    /* Every prefix of a head with a body only asks for more. */
    for (n = 0; n < sizeof(cl) - 1 - 7; n++)
        assert_int_equal(http_parse_head(cl, n, MAX_LINE, MAX_HEAD, BODY_MAX, &r), 0);
    /* Without body_max, the same heads are refused as ever (smuggling defence). */
    assert_int_equal(PARSE(cl, &r), -400);
    assert_int_equal(PARSE(te, &r), -400);
    assert_int_equal(http_parse_head(cl, sizeof(cl) - 1, MAX_LINE, MAX_HEAD, 0, &r), -400);

    assert_true(PARSE_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &r) > 0);
    assert_int_equal(r.content_length, 0);
    assert_true(PARSE_B("POST / HTTP/1.0\r\nContent-Length: 7\r\n\r\n", &r) > 0);
    assert_int_equal(r.content_length, 7);
    assert_true(PARSE_B("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
    assert_int_equal(r.content_length + (uint64_t)r.chunked, 0);

    /* RFC 9110 §15.5.14: a declared length over body_max is 413, at the end of the head. */
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n", -413);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", -413);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n", 0);
    /* ... but a malformed line after it still makes it a 400. */
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\nX : y\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", -400); /* no Host */

    /* Expect: 100-continue (RFC 9110 §10.1.1), ignored for HTTP/1.0 and without bodies. */
    assert_true(
        PARSE_B("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n",
                &r) > 0);
    assert_int_equal(r.expect_continue, 1);
    assert_true(
        PARSE_B("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", &r) > 0);
    assert_int_equal(r.expect_continue, 0);
    assert_true(PARSE_B("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continued\r\n\r\n", &r) > 0);
    assert_int_equal(r.expect_continue, 0);
    assert_true(PARSE("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", &r) > 0);
    assert_int_equal(r.expect_continue, 0);
}

static void test_body_smuggling(void **state)
{
    /* RFC 9112 §6.1, §6.3: both framings, in either order, on a body-reading handler. */
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n"
             "\r\n0\r\n\r\nG",
             -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n"
             "\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
             -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n",
             -400);
    /* Transfer-Encoding in HTTP/1.0, or on two lines (even both "chunked"). */
    EXPECT_B("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
             "Transfer-Encoding: chunked\r\n\r\n",
             -400);
    /* A coding list other than exactly "chunked": 501 when well-formed, else 400. */
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -501);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", -501);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", -501);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", -501);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0b"
             "chunked\r\n\r\n",
             -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n", -400);
    /* The 501 waits for the end of the head, so a later smuggling line is still 400. */
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nContent-Length: 1\r\n\r\n",
             -400);
    /* Content-Length: one plain decimal number, on one line. */
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 05\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", -400);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n", 0);
    EXPECT_B("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n", -400);
}

/* ---- the chunked decoder -------------------------------------------------------------- */

/* Decodes in[0..len) with max, all at once, then one byte at a time and in place, and checks
 * the three agree. Returns the result; *out gets the body (NUL-terminated), *used the bytes
 * of the chunked body. */
static int chunked(const char *in, size_t len, uint64_t max, char *out, size_t outlen, size_t *used)
{
    struct http_chunked st, st1;
    size_t u, m, i, total_u = 0, total_m = 0, u1, m1;
    char *copy = malloc(len + 1);
    char *slow = malloc(len + 1);
    int rc, rc1 = 0;

    assert_non_null(copy);
    assert_non_null(slow);
    assert_true(outlen > len);
    http_chunked_init(&st, max);
    rc = http_chunked_decode(&st, in, len, out, &u, &m);
    assert_true(u <= len && m <= u);
    if (rc == 0)
        assert_int_equal(u, len);
    out[m] = '\0';
    *used = u;

    /* Byte by byte: the same result, the same body, at the same place. */
    http_chunked_init(&st1, max);
    for (i = 0; i < len; i++) {
        rc1 = http_chunked_decode(&st1, in + i, 1, slow + total_m, &u1, &m1);
        total_u += u1;
        total_m += m1;
        if (rc1 != 0)
            break;
    }
    assert_int_equal(rc1, rc);
    if (rc == 1) {
        assert_int_equal(total_u, u);
        assert_int_equal(total_m, m);
        assert_memory_equal(slow, out, m);
        assert_int_equal(st1.total, m);
    }
    /* In place. */
    memcpy(copy, in, len);
    http_chunked_init(&st1, max);
    assert_int_equal(http_chunked_decode(&st1, copy, len, copy, &u1, &m1), rc);
    if (rc >= 0) {
        assert_int_equal(u1, u);
        assert_int_equal(m1, m);
        assert_memory_equal(copy, out, m);
    }
    /* Sticky: a finished or failed decoder says the same again, using nothing. */
    if (rc != 0) {
        assert_int_equal(http_chunked_decode(&st, "0\r\n\r\n", 5, out + m + 1, &u1, &m1), rc);
        assert_int_equal(u1, 0);
        assert_int_equal(m1, 0);
    }
    free(copy);
    free(slow);
    return rc;
}

#define CHUNKED_OK(lit, body)                                                                      \
    do {                                                                                           \
        char o_[512];                                                                              \
        size_t u_;                                                                                 \
        int rc_ = chunked((lit), sizeof(lit) - 1, 1 << 20, o_, sizeof(o_), &u_);                   \
        if (rc_ != 1)                                                                              \
            print_error("%s:%d: got %d\n", __FILE__, __LINE__, rc_);                               \
        assert_int_equal(rc_, 1);                                                                  \
        assert_string_equal(o_, (body));                                                           \
        assert_int_equal(u_, sizeof(lit) - 1);                                                     \
    } while (0)
#define CHUNKED_RC(lit, max, want)                                                                 \
    do {                                                                                           \
        char o_[4096];                                                                             \
        size_t u_;                                                                                 \
        int rc_ = chunked((lit), sizeof(lit) - 1, (max), o_, sizeof(o_), &u_);                     \
        if (rc_ != (want))                                                                         \
            print_error("%s:%d: got %d, want %d\n", __FILE__, __LINE__, rc_, (int)(want));         \
        assert_int_equal(rc_, (want));                                                             \
    } while (0)

static void test_chunked_valid(void **state)
{
    char out[128];
    size_t used;

    CHUNKED_OK("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world");
    CHUNKED_OK("0\r\n\r\n", "");
    CHUNKED_OK("000\r\n\r\n", "");
    CHUNKED_OK("A\r\n0123456789\r\n0\r\n\r\n", "0123456789");
    CHUNKED_OK("00a\r\n0123456789\r\n0\r\n\r\n", "0123456789");
    /* Data is opaque: CR, LF, NUL and "0\r\n\r\n" inside a chunk are body bytes. */
    CHUNKED_OK("5\r\n0\r\n\r\n\r\n0\r\n\r\n", "0\r\n\r\n");
    /* Extensions (RFC 9112 §7.1.1), with BWS around ';' and '=', are ignored. */
    CHUNKED_OK("5;name\r\nhello\r\n0\r\n\r\n", "hello");
    CHUNKED_OK("5;a=b;c=\"q \\\"x\\\\ ;\";d\r\nhello\r\n0;last=yes\r\n\r\n", "hello");
    CHUNKED_OK("5 ;a\r\nhello\r\n0\r\n\r\n", "hello");
    CHUNKED_OK("5\t; a = b ;c\r\nhello\r\n0\r\n\r\n", "hello");
    CHUNKED_OK("5;a=\"\"\r\nhello\r\n0\r\n\r\n", "hello");
    /* Trailers are read and dropped. */
    CHUNKED_OK("5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\nZ: a\tb \r\n\r\n", "hello");

    /* What follows the body is left for the next message. */
    static const char two[] = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    assert_int_equal(chunked(two, sizeof(two) - 1, 100, out, sizeof(out), &used), 1);
    assert_int_equal(used, sizeof(two) - 1 - 16);
    assert_string_equal(out, "abc");

    /* Incomplete input of every length only asks for more. */
    static const char full[] = "5;x=\"y\"\r\nhello\r\n1\r\n!\r\n0\r\nT: v\r\n\r\n";
    struct http_chunked st;
    size_t n, u, m;
    for (n = 0; n < sizeof(full) - 1; n++) {
        http_chunked_init(&st, 100);
        assert_int_equal(http_chunked_decode(&st, full, n, out, &u, &m), 0);
        assert_int_equal(u, n);
    }
}

static void test_chunked_invalid(void **state)
{
    /* The size: hex digits only, at least one, nothing before them. */
    CHUNKED_RC("\r\n", 100, -400);
    CHUNKED_RC("x\r\n", 100, -400);
    CHUNKED_RC(" 5\r\nhello\r\n0\r\n\r\n", 100, -400);
    CHUNKED_RC("-5\r\n", 100, -400);
    CHUNKED_RC("+5\r\n", 100, -400);
    CHUNKED_RC("0x5\r\n", 100, -400);
    CHUNKED_RC("5g\r\n", 100, -400);
    /* Bare LF or CR anywhere a line ends (the classic chunk smuggling gaps). */
    CHUNKED_RC("5\nhello\r\n0\r\n\r\n", 100, -400);
    CHUNKED_RC("5\rhello\r\n0\r\n\r\n", 100, -400);
    CHUNKED_RC("5\r\nhello\n0\r\n\r\n", 100, -400);
    CHUNKED_RC("5\r\nhello\r0\r\n\r\n", 100, -400);
    CHUNKED_RC("5\r\nhelloX\r\n0\r\n\r\n", 100, -400);
    CHUNKED_RC("5\r\nhello\r\n0\n\r\n", 100, -400);
    CHUNKED_RC("5\r\nhello\r\n0\r\n\n", 100, -400);
    CHUNKED_RC("5\r\nhello\r\n0\r\n\r\r", 100, -400);
    CHUNKED_RC("5;a\nb\r\nhello\r\n0\r\n\r\n", 100, -400);
    CHUNKED_RC("5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n", 100, -400);
    /* Extensions: whitespace with no ';', empty names, empty or bad values. */
    CHUNKED_RC("5 \r\nhello\r\n0\r\n\r\n", 100, -400);
    CHUNKED_RC("5;\r\nhello\r\n0\r\n\r\n", 100, -400);
    CHUNKED_RC("5;=x\r\nhello\r\n0\r\n\r\n", 100, -400);
    CHUNKED_RC("5;a=\r\nhello\r\n0\r\n\r\n", 100, -400);
    CHUNKED_RC("5;a=b c\r\nhello\r\n0\r\n\r\n", 100, -400);
    CHUNKED_RC("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n", 100, -400);
    CHUNKED_RC("5;a b\r\nhello\r\n0\r\n\r\n", 100, -400);
    CHUNKED_RC("5;a@b\r\nhello\r\n0\r\n\r\n", 100, -400);
    CHUNKED_RC("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", 100, -400);
    CHUNKED_RC("5;a\0\r\nhello\r\n0\r\n\r\n", 100, -400);
    /* Trailers are field lines: no obs-fold, no space before ':', no controls. */
    CHUNKED_RC("0\r\nX: a\r\n b\r\n\r\n", 100, -400);
    CHUNKED_RC("0\r\n X: a\r\n\r\n", 100, -400);
    CHUNKED_RC("0\r\nX : a\r\n\r\n", 100, -400);
    CHUNKED_RC("0\r\nX\r\n\r\n", 100, -400);
    CHUNKED_RC("0\r\nX: a\x7f\r\n\r\n", 100, -400);
    CHUNKED_RC("0\r\nX: a\nY: b\r\n\r\n", 100, -400);
    CHUNKED_RC("0\r\n\r\nX", 100, 1); /* after the end: the next message's business */
}

static void test_chunked_limits(void **state)
{
    char big[4096];
    size_t n;

    /* max bounds the sum of the chunk sizes, decided on the size line, before the data. */
    CHUNKED_RC("a\r\n0123456789\r\n0\r\n\r\n", 10, 1);
    CHUNKED_RC("a\r\n0123456789\r\n0\r\n\r\n", 9, -413);
    CHUNKED_RC("a\r\n", 9, -413);
    CHUNKED_RC("5\r\nhello\r\n6\r\n", 10, -413);
    CHUNKED_RC("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 10, 1);
    CHUNKED_RC("0\r\n\r\n", 0, 1);
    CHUNKED_RC("1\r\n", 0, -413);
    /* Sizes past any integer are too large, not wrapped. */
    CHUNKED_RC("10000000000000001\r\n", UINT64_MAX, -413);
    CHUNKED_RC("ffffffffffffffff\r\n", UINT64_MAX - 1, -413);
    CHUNKED_RC("fffffffffffffffff\r\n", UINT64_MAX, -413);
    /* Leading zeros do not overflow, but the line (CRLF included) is bounded. */
    memset(big, '0', sizeof(big));
    n = HTTP_MAX_CHUNK_LINE - 3;
    memcpy(big + n, "5\r\nhello\r\n0\r\n\r\n", 16);
    {
        char out[4096 + 1];
        size_t used;
        assert_int_equal(chunked(big, n + 16, 100, out, sizeof(out), &used), 1);
        assert_string_equal(out, "hello");
        memset(big, '0', sizeof(big));
        n = HTTP_MAX_CHUNK_LINE - 2;
        memcpy(big + n, "5\r\nhello\r\n0\r\n\r\n", 16);
        assert_int_equal(chunked(big, n + 16, 100, out, sizeof(out), &used), -400);
        /* Extensions count in the line too. */
        memcpy(big, "5", 1);
        for (n = 1; n + 2 < HTTP_MAX_CHUNK_LINE + 10; n += 2)
            memcpy(big + n, ";a", 2);
        memcpy(big + n, "\r\n", 2);
        assert_int_equal(chunked(big, n + 2, 100, out, sizeof(out), &used), -400);
    }
    /* Trailers are bounded as a whole. */
    {
        size_t len = 3 + HTTP_MAX_TRAILER + 64, i = 3;
        char *t = malloc(len + 1), *out = malloc(len + 1);
        size_t used;
        assert_non_null(t);
        assert_non_null(out);
        memcpy(t, "0\r\n", 3);
        while (i + 12 < len) {
            memcpy(t + i, "X: 12345678\r\n", 13);
            i += 13;
        }
        memcpy(t + i, "\r\n", 2);
        assert_int_equal(chunked(t, i + 2, 100, out, len + 1, &used), -431);
        free(t);
        free(out);
    }
}

/* ---- conformance: llhttp's request cases ------------------------------------ */

static unsigned char *b64_decode(const char *in, size_t *outlen)
{
    size_t n = strlen(in), pad = 0;
    unsigned char *out = malloc(n / 4 * 3 + 4);
    int rc;

    assert_non_null(out);
    rc = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    assert_true(rc >= 0);
    /* EVP_DecodeBlock counts the zero bytes that stand for padding. */
    while (n > 0 && in[n - 1] == '=' && pad < 2) {
        pad++;
        n--;
    }
    *outlen = (size_t)rc - pad;
    return out;
}

/*
 * What a server with a body-reading handler does with raw: one message after another (head,
 * then its Content-Length or chunked body, decoded in place) until a refusal, a need for more
 * bytes, or a message after which the connection closes. Returns the number of complete
 * messages; *last is the refusal (negative), 0 (need more) or 1 (closed after a message).
 */
static int serve_with_bodies(unsigned char *raw, size_t n, uint64_t body_max, int *last)
{
    char *buf = (char *)raw;
    size_t off = 0, u, m;
    int msgs = 0, rc;

    for (;;) {
        struct http_request r;
        struct http_chunked st;

        rc = http_parse_head(buf + off, n - off, MAX_LINE, MAX_HEAD, body_max, &r);
        if (rc <= 0) {
            *last = rc;
            return msgs;
        }
        assert_false(r.chunked && r.content_length);
        assert_true(r.content_length <= body_max);
        off += (size_t)rc;
        if (r.chunked) {
            http_chunked_init(&st, body_max);
            rc = http_chunked_decode(&st, buf + off, n - off, buf + off, &u, &m);
            if (rc <= 0) {
                *last = rc;
                return msgs;
            }
            assert_true(m <= u && m <= body_max);
            off += u;
        } else if (r.content_length > n - off) {
            *last = 0;
            return msgs;
        } else {
            off += (size_t)r.content_length;
        }
        msgs++;
        if (!r.keep_alive || off == n) {
            *last = r.keep_alive ? 0 : 1;
            return msgs;
        }
    }
}

static void test_conformance(void **state)
{
    const char *dir = getenv("SLIPWAY_CONFORMANCE");
    char path[4096];
    json_error_t jerr;
    json_t *rows, *row;
    size_t idx, n, k;
    int ok_accepted = 0, ok_refused = 0, ok_more = 0, ok_other = 0;
    int err_checked = 0, err_refused = 0, err_more = 0, err_other = 0, failures = 0;
    int b_err = 0, b_err_held = 0, b_err_method = 0, b_ok = 0, b_ok_same = 0, b_ok_fewer = 0;

    snprintf(path, sizeof(path), "%s/http1-requests.json", dir ? dir : "../shared/conformance");
    rows = json_load_file(path, 0, &jerr);
    if (!rows) {
        printf("# conformance folder absent: skipped (%s)\n", path);
        skip();
    }
    assert_true(json_is_array(rows));
    json_array_foreach(rows, idx, row)
    {
        const char *name = json_string_value(json_object_get(row, "name"));
        const char *expect = json_string_value(json_object_get(row, "expect"));
        const char *b64 = json_string_value(json_object_get(row, "raw_b64"));
        int strict = json_is_true(json_object_get(row, "strict"));
        json_int_t complete = json_integer_value(json_object_get(row, "complete_msgs"));
        int mid = json_is_true(json_object_get(row, "ends_mid_message"));
        struct http_request r;
        unsigned char *raw;
        char out[4096];
        int rc;

        assert_non_null(name);
        assert_non_null(expect);
        assert_non_null(b64);
        raw = b64_decode(b64, &n);
        /* Every row, lenient ones too, and every prefix of it: no crash, sane results. */
        for (k = 0; k <= n; k++) {
            rc = http_parse_request((const char *)raw, k, MAX_LINE, MAX_HEAD, &r);
            assert_true(rc <= (int)k);
        }
        rc = http_parse_request((const char *)raw, n, MAX_LINE, MAX_HEAD, &r);
        if (rc > 0)
            (void)http_path_normalize(r.target, r.target_len, out, sizeof(out));

        if (strict && strcmp(expect, "error") == 0 && complete == 0 && !mid) {
            /* A malformed request must never be served: refused, still waiting, or a
             * method the server answers 405. */
            err_checked++;
            if (rc < 0)
                err_refused++;
            else if (rc == 0)
                err_more++;
            else if (r.method == HTTP_OTHER)
                err_other++;
            else {
                print_error("conformance: \"%s\" (%s) parsed as a servable request\n", name,
                            json_string_value(json_object_get(row, "file")));
                failures++;
            }
        } else if (strict && strcmp(expect, "ok") == 0) {
            if (rc < 0)
                ok_refused++;
            else if (rc == 0)
                ok_more++;
            else if (r.method == HTTP_OTHER)
                ok_other++;
            else
                ok_accepted++;
        }

        /* Again for a handler that reads bodies: a message llhttp found broken must never
         * be completed, so no row completes more messages than llhttp did before its error;
         * for the rows llhttp accepts, count where this server is stricter. */
        if (strict) {
            int last, msgs = serve_with_bodies(raw, n, 1 << 20, &last);
            if (strcmp(expect, "error") == 0) {
                b_err++;
                const char *why = json_string_value(json_object_get(row, "error"));
                if (msgs <= complete)
                    b_err_held++;
                else if (why && strncmp(why, "Invalid method", 14) == 0)
                    b_err_method++; /* a method a handler answers 405 or 501 */
                else {
                    print_error("conformance (bodies): \"%s\" (%s): %d messages, llhttp %d\n", name,
                                json_string_value(json_object_get(row, "file")), msgs,
                                (int)complete);
                    failures++;
                }
            } else {
                b_ok++;
                if (msgs == complete)
                    b_ok_same++;
                else if (msgs < complete)
                    b_ok_fewer++;
                else {
                    print_error("conformance (bodies): \"%s\": %d messages, llhttp %d\n", name,
                                msgs, (int)complete);
                    failures++;
                }
            }
        }
        free(raw);
    }
    printf("# conformance, handler reading bodies: strict error rows %d: no message completed "
           "past llhttp's error %d, completed with a method the handler refuses %d, "
           "completed wrongly %d\n",
           b_err, b_err_held, b_err_method, b_err - b_err_held - b_err_method);
    printf("# conformance, handler reading bodies: strict ok rows %d: the same messages %d, "
           "fewer (refused: stricter) %d\n",
           b_ok, b_ok_same, b_ok_fewer);
    printf("# conformance: %zu rows; strict error rows checked %d: refused %d, need-more %d, "
           "non-GET/HEAD %d, served %d\n",
           json_array_size(rows), err_checked, err_refused, err_more, err_other, failures);
    printf("# conformance: strict ok rows: accepted as GET/HEAD %d, accepted as other method "
           "(405) %d, refused %d, need-more %d\n",
           ok_accepted, ok_other, ok_refused, ok_more);
    json_decref(rows);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_basic),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_every_prefix_needs_more),
        cmocka_unit_test(test_leading_empty_lines),
        cmocka_unit_test(test_line_endings_and_nul),
        cmocka_unit_test(test_request_line),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_host_rules),
        cmocka_unit_test(test_smuggling),
        cmocka_unit_test(test_singleton_fields),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_path_normalize),
        cmocka_unit_test(test_path_out_bounds),
        cmocka_unit_test(test_body_framing),
        cmocka_unit_test(test_body_smuggling),
        cmocka_unit_test(test_chunked_valid),
        cmocka_unit_test(test_chunked_invalid),
        cmocka_unit_test(test_chunked_limits),
        cmocka_unit_test(test_conformance),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
