/*
 * libFuzzer target for the SigV4 signer (src/store/sigv4.c): arbitrary path,
 * query and header bytes, in both modes, with and without path normalization
 * and a session token. An input is a first byte of flags followed by lines:
 * the method, the path, the query, then "Name:value" header lines (a Host
 * header is added unless flag 0x20 is set). Beyond the sanitizers, it checks
 * what the s3 backend relies on: a refusal is SW_EINVAL with a "sigv4: "
 * message that never shows the secret or the token; a signed request's
 * canonical form is bounded (at most three bytes per input byte plus a
 * constant), has one line per signed header, holds only escapes and
 * unreserved bytes in its path and query, and carries no CR or LF where a
 * header goes; the path sent decodes back to the path given (S3: no
 * normalization) or, normalized, normalizes to itself; canonicalizing the
 * query again changes nothing; signing twice gives the same bytes.
 */
#include "fuzz.h"
#include "store/sigv4.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "fuzz-secret-never-shown"
#define TOKEN "fuzz-token-never-shown"

static int hexdig(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* Only unreserved bytes, '%XX' with uppercase hex, and the bytes in `also`. */
static int encoded_only(const char *s, size_t n, const char *also)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (c && strchr(also, c)))
            continue;
        if (c != '%' || n - i < 3 || !hexdig(s[i + 1]) || !hexdig(s[i + 2]))
            return 0;
        i += 2;
    }
    return 1;
}

static char *decode(const char *s, size_t n)
{
    char *d = xmalloc(n + 1), *p = d;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            char h[3] = {s[i + 1], s[i + 2], 0};
            *p++ = (char)strtol(h, NULL, 16);
            i += 2;
        } else {
            *p++ = s[i];
        }
    }
    *p = '\0';
    return d;
}

static size_t count(const char *s, size_t n, char c)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == c;
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sigv4_header h[SIGV4_HEADERS_MAX + 2];
    char *lines[SIGV4_HEADERS_MAX + 8];
    size_t nl = 0, nh = 0;
    unsigned flags;

    if (size < 1 || size > 65536)
        return 0;
    flags = data[0];
    /* Split the rest at '\n' into NUL-terminated lines (a NUL inside a line
     * just ends it early: the API takes C strings). */
    char *text = xmalloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    for (char *p = text; nl < sizeof(lines) / sizeof(*lines);) {
        lines[nl++] = p;
        char *e = strchr(p, '\n');
        if (!e)
            break;
        *e = '\0';
        p = e + 1;
    }
    const char *method = nl > 0 && lines[0][0] ? lines[0] : "GET";
    const char *path = nl > 1 ? lines[1] : "/";
    const char *query = nl > 2 ? lines[2] : NULL;
    if (!(flags & 0x20))
        h[nh++] = (struct sigv4_header){"Host", "bucket.example"};
    for (size_t i = 3; i < nl && nh < sizeof(h) / sizeof(*h); i++) {
        char *colon = strchr(lines[i], ':');
        if (!colon)
            continue;
        *colon = '\0';
        h[nh++] = (struct sigv4_header){lines[i], colon + 1};
    }

    struct sigv4_request req = {method,
                                path,
                                query,
                                h,
                                nh,
                                flags & 0x40 ? SIGV4_UNSIGNED_PAYLOAD
                                             : "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca"
                                               "495991b7852b855"};
    struct sigv4_creds cr = {"AKIDFUZZ", SECRET, flags & 0x04 ? TOKEN : NULL};
    struct sigv4_opts o = {.region = "us-east-1",
                           .service = "s3",
                           .time = 1440938160 + (int64_t)(flags & 0x80) * 86400,
                           .mode = flags & 0x01 ? SIGV4_PRESIGN : SIGV4_HEADER,
                           .normalize_path = !!(flags & 0x02),
                           .expires = 3600,
                           .token_unsigned = !!(flags & 0x08),
                           .content_sha256 = !!(flags & 0x10)};
    struct sigv4_out out = {0}, again = {0};
    struct sw_err err = {0};
    int rc = sigv4_sign(&req, &cr, &o, &out, &err);

    if (rc) {
        CHECK(rc == SW_EINVAL);
        CHECK(!strncmp(err.msg, "sigv4: ", 7));
        /* The credentials never show; input that spells them out may be
         * echoed (a header name is named in its error). */
        CHECK(memmem(data, size, SECRET, strlen(SECRET)) || !strstr(err.msg, SECRET));
        CHECK(memmem(data, size, TOKEN, strlen(TOKEN)) || !strstr(err.msg, TOKEN));
        goto out;
    }

    const struct buf *c = &out.canonical_request;
    CHECK(c->len <= 3 * size + 3 * sizeof(TOKEN) + 1024);
    CHECK(strlen(out.signature) == SIGV4_SIG_LEN && hex_lower_valid(out.signature, 64));
    CHECK(!strchr(out.authorization.data ? out.authorization.data : "", '\n'));
    for (size_t i = 0; i < out.n_add; i++)
        CHECK(!strchr(out.add[i].data, '\n') && !strchr(out.add[i].data, '\r'));

    /* METHOD, path, query, one line per header, blank, signed headers, hash. */
    const char *sh_end = memrchr(c->data, '\n', c->len);
    CHECK(sh_end && sh_end > c->data + 1);
    const char *blank = memrchr(c->data, '\n', (size_t)(sh_end - c->data));
    CHECK(blank && blank > c->data && blank[-1] == '\n');
    const char *sh = blank + 1;
    CHECK(count(c->data, (size_t)(blank - 1 - c->data), '\n') - 2 ==
          count(sh, (size_t)(sh_end - sh), ';') + 1);

    CHECK(out.path.len && out.path.data[0] == '/');
    CHECK(encoded_only(out.path.data, out.path.len, "/"));
    CHECK(!strncmp(c->data + strlen(method) + 1, out.path.data, out.path.len));
    char *plain = decode(out.path.data, out.path.len);
    if (!o.normalize_path) {
        CHECK(!strcmp(plain, path));
    } else {
        struct sigv4_request r2 = req;
        r2.path = plain;
        CHECK(sigv4_sign(&r2, &cr, &o, &again, NULL) == 0);
        CHECK(again.path.len == out.path.len &&
              !memcmp(again.path.data, out.path.data, out.path.len));
        sigv4_out_free(&again);
    }
    free(plain);

    CHECK(encoded_only(out.query.data ? out.query.data : "", out.query.len, "&="));
    if (o.mode == SIGV4_HEADER) {
        struct buf q = BUF_INIT;
        sigv4_canonical_query(&q, out.query.data);
        CHECK(q.len == out.query.len && (!q.len || !memcmp(q.data, out.query.data, q.len)));
        buf_free(&q);
    }

    CHECK(sigv4_sign(&req, &cr, &o, &again, NULL) == 0);
    CHECK(again.canonical_request.len == c->len &&
          !memcmp(again.canonical_request.data, c->data, c->len));
    CHECK(!strcmp(again.signature, out.signature));
    sigv4_out_free(&again);

out:
    sigv4_out_free(&out);
    free(text);
    return 0;
}
