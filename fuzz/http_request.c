/*
 * libFuzzer target for the edge server's request parser (src/http/parse.c): every input is
 * parsed as a request head under generous and tight limits, and the request-target of any
 * head that parses is normalised; the whole input is also normalised as a raw target so the
 * normaliser sees bytes the parser would have refused. Beyond the sanitizers, it checks the
 * invariants the server relies on: results stay inside the input, a head parses the same on
 * its own (pipelining) and every shorter prefix of it only asks for more bytes, and a
 * normalised path is absolute, has no dot segments, no "//", no '\', no NUL and no controls.
 * Heads are also parsed as for a handler that reads bodies (http_parse_head), with the
 * framing rules checked.
 */
#include "fuzz.h"
#include "http/http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int within(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static void check_path(const char *out, int n, size_t outlen)
{
    int i;

    CHECK(n >= 1 && (size_t)n < outlen);
    CHECK(out[0] == '/');
    CHECK(strlen(out) == (size_t)n);
    CHECK(!memmem(out, (size_t)n, "/../", 4));
    CHECK(!memmem(out, (size_t)n, "/./", 3));
    CHECK(!memmem(out, (size_t)n, "//", 2));
    CHECK(!(n >= 3 && memcmp(out + n - 3, "/..", 3) == 0));
    CHECK(!(n >= 2 && memcmp(out + n - 2, "/.", 2) == 0));
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        CHECK(c != '\\' && c >= 0x20 && c != 0x7f);
    }
}

/* A path made only of bytes a target may carry raw, with no escapes or query to re-read. */
static int reparsable(const char *out, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c <= 0x20 || c >= 0x7f || c == '%' || c == '?' || c == '#')
            return 0;
    }
    return 1;
}

static void check_normalize(const char *t, size_t len)
{
    char out[512], small[12], again[512];
    int n, m;

    n = http_path_normalize(t, len, out, sizeof(out));
    CHECK(n >= 0 || n == -400);
    if (n < 0)
        return;
    check_path(out, n, sizeof(out));
    /* The output size only decides whether the result fits. */
    m = http_path_normalize(t, len, small, sizeof(small));
    if ((size_t)n < sizeof(small))
        CHECK(m == n && memcmp(small, out, (size_t)n + 1) == 0);
    else
        CHECK(m == -400);
    /* Normalising is idempotent on what can be read back without decoding. */
    if (reparsable(out, n)) {
        m = http_path_normalize(out, (size_t)n, again, sizeof(again));
        CHECK(m == n && memcmp(again, out, (size_t)n + 1) == 0);
    }
}

static void check_request(const char *buf, size_t len, size_t max_line, size_t max_head)
{
    struct http_request r, r2;
    size_t i;
    int rc;

    rc = http_parse_request(buf, len, max_line, max_head, &r);
    CHECK(rc >= 0 || rc == -400 || rc == -414 || rc == -431 || rc == -505);
    if (rc <= 0)
        return;
    CHECK((size_t)rc <= len && (size_t)rc <= max_head);
    CHECK(rc >= 4 && memcmp(buf + rc - 4, "\r\n\r\n", 4) == 0);
    CHECK(r.method == HTTP_GET || r.method == HTTP_HEAD || r.method == HTTP_OTHER);
    CHECK(r.method_len > 0 && within(r.method_str, r.method_len, buf, (size_t)rc));
    CHECK(r.target_len > 0 && r.target_len <= max_line &&
          within(r.target, r.target_len, buf, (size_t)rc));
    CHECK(r.minor == 0 || r.minor == 1);
    CHECK(r.keep_alive == 0 || r.keep_alive == 1);
    CHECK(r.minor == 0 || r.host != NULL);
    CHECK(r.nheaders <= HTTP_MAX_HEADERS);
    for (i = 0; i < r.nheaders; i++) {
        CHECK(r.headers[i].name_len > 0);
        CHECK(within(r.headers[i].name, r.headers[i].name_len, buf, (size_t)rc));
        CHECK(within(r.headers[i].value, r.headers[i].value_len, buf, (size_t)rc));
    }
    if (r.host)
        CHECK(within(r.host, r.host_len, buf, (size_t)rc));
    if (r.range)
        CHECK(within(r.range, r.range_len, buf, (size_t)rc));
    CHECK(http_find_header(&r, "transfer-encoding") < 0);
    /* The head alone parses to the same length, and any shorter prefix needs more. */
    CHECK(http_parse_request(buf, (size_t)rc, max_line, max_head, &r2) == rc);
    CHECK(http_parse_request(buf, (size_t)rc - 1, max_line, max_head, &r2) == 0);
    CHECK(http_parse_request(buf, (size_t)rc / 2, max_line, max_head, &r2) == 0);

    check_normalize(r.target, r.target_len);
}

/*
 * The same head for a handler that reads bodies: one framing at most, a length within
 * body_max, chunked only in HTTP/1.1, and a head that needs no body parsed the same with or
 * without body_max (allowing bodies changes no verdict on requests without one).
 */
static void check_head_with_body(const char *buf, size_t len, uint64_t body_max)
{
    struct http_request r, r0;
    int rc, rc0;

    rc = http_parse_head(buf, len, 8192, 65536, body_max, &r);
    CHECK(rc >= 0 || rc == -400 || rc == -413 || rc == -414 || rc == -431 || rc == -501 ||
          rc == -505);
    rc0 = http_parse_head(buf, len, 8192, 65536, 0, &r0);
    CHECK(rc0 == http_parse_request(buf, len, 8192, 65536, &r0));
    if (rc0 > 0)
        CHECK(rc == rc0 && r.content_length == 0 && !r.chunked);
    if (rc <= 0)
        return;
    CHECK(!(r.chunked && r.content_length));
    CHECK(r.content_length <= body_max);
    CHECK(!r.chunked || r.minor == 1);
    CHECK(!r.expect_continue || r.minor == 1);
    CHECK(r.body == NULL && r.body_len == 0);
    CHECK((http_find_header(&r, "transfer-encoding") >= 0) == r.chunked);
    CHECK(http_parse_head(buf, (size_t)rc - 1, 8192, 65536, body_max, &r0) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;

    check_request(buf, size, 8192, 65536);
    check_request(buf, size, 40, 200);
    check_head_with_body(buf, size, 1 << 20);
    check_head_with_body(buf, size, 10);
    check_normalize(buf, size);
    return 0;
}
