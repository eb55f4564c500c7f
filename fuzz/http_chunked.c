/*
 * libFuzzer target for the chunked decoder (http_chunked_decode in src/http/parse.c): every
 * input is a request body in the chunked coding. Beyond the sanitizers it checks what the
 * server relies on when it decodes a body in place as its bytes arrive: the result is one of
 * the documented ones, the decoded body is never longer than what was consumed, decoding in
 * place gives the bytes decoding elsewhere gives, feeding the input one byte at a time and in
 * pieces cut where the input's first byte says give the same result at the same place, a
 * finished or failed decoder stays so, and a smaller maximum only ever turns a body that
 * ends into a 413.
 */
#include "fuzz.h"
#include "http/http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BIG (1u << 20)
#define MAX_SMALL 64

struct result {
    int rc;
    size_t used, made;
};

/* Decodes in[0..len) in pieces of at most step bytes (0: all at once) into out. In place,
 * each piece is first copied to where the body decoded so far ends, and decoded there, as
 * the server does in its read buffer. */
static struct result decode(const char *in, size_t len, uint64_t max, size_t step, char *out,
                            int in_place)
{
    struct http_chunked st;
    struct result r = {0, 0, 0};
    size_t off = 0, u, m;

    http_chunked_init(&st, max);
    do {
        size_t n = step && len - off > step ? step : len - off;
        const char *p = in + off;
        if (in_place) {
            memmove(out + r.made, p, n);
            p = out + r.made;
        }
        r.rc = http_chunked_decode(&st, p, n, out + r.made, &u, &m);
        CHECK(r.rc == 0 || r.rc == 1 || r.rc == -400 || r.rc == -413 || r.rc == -431);
        CHECK(u <= n && m <= u);
        if (r.rc == 0)
            CHECK(u == n);
        off += u;
        r.used += u;
        r.made += m;
        CHECK(st.total == r.made && st.total <= max);
    } while (r.rc == 0 && off < len);
    if (r.rc != 0) {
        /* Finished or failed: the same answer again, nothing used. */
        CHECK(http_chunked_decode(&st, "0\r\n\r\n", 5, out + r.made, &u, &m) == r.rc);
        CHECK(u == 0 && m == 0);
    }
    return r;
}

static int same(struct result a, struct result b)
{
    /* On an error, where it was found may depend on the pieces; the verdict may not. */
    return a.rc == b.rc && (a.rc < 0 || (a.used == b.used && a.made == b.made));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char *out = malloc(size + 1), *other = malloc(size + 1), *copy = malloc(size + 1);
    struct result all, r;

    CHECK(out && other && copy);
    all = decode(in, size, MAX_BIG, 0, out, 0);
    CHECK(all.made <= all.used && all.used <= size);

    /* One byte at a time, and in pieces of a size the input chooses. */
    r = decode(in, size, MAX_BIG, 1, other, 0);
    CHECK(same(all, r));
    if (all.rc >= 0)
        CHECK(memcmp(out, other, all.made) == 0);
    r = decode(in, size, MAX_BIG, size ? 1 + data[0] % 17 : 1, other, 0);
    CHECK(same(all, r));
    if (all.rc >= 0)
        CHECK(memcmp(out, other, all.made) == 0);

    /* In place, all at once and in pieces, as the server decodes its read buffer. */
    memcpy(copy, in, size);
    r = decode(copy, size, MAX_BIG, 0, copy, 0);
    CHECK(same(all, r));
    if (all.rc >= 0)
        CHECK(memcmp(out, copy, all.made) == 0);
    r = decode(in, size, MAX_BIG, size ? 1 + data[size - 1] % 64 : 1, copy, 1);
    CHECK(same(all, r));
    if (all.rc >= 0)
        CHECK(memcmp(out, copy, all.made) == 0);

    /* A smaller maximum: the same body if it fits, else 413, never anything else. */
    if (all.rc == 1) {
        r = decode(in, size, MAX_SMALL, 0, other, 0);
        if (all.made <= MAX_SMALL)
            CHECK(same(all, r) && memcmp(out, other, all.made) == 0);
        else
            CHECK(r.rc == -413);
    }
    free(out);
    free(other);
    free(copy);
    return 0;
}
