/*
 * libFuzzer target for the request header-field parsers (src/http/fields.c): every input is
 * read as an If-Match / If-None-Match list, an If-Range, an Accept-Encoding, an HTTP-date and a
 * Range against several sizes. Beyond the sanitizers, it checks what the edge relies on: results
 * stay in their documented sets; a strong match is also a weak one; a valid list with our tag
 * appended matches; q-values lie in 0..1000 and coding names are case-insensitive; a parsed date
 * lies in the years 0000-9999 and formats to a date that parses back to it, and the asctime and
 * rfc850 forms of a formatted date parse to the same day and time; ranges lie within [0, size),
 * are sorted with gaps between them, total at most size, and a larger part limit gives the same
 * answer whenever a smaller one gave ranges.
 */
#include "fuzz.h"
#include "http/http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ETAG "\"0123abcd\""

static void check_etags(const char *v, size_t n)
{
    int strong = http_etag_list_match(v, n, ETAG, strlen(ETAG), 0);
    int weak = http_etag_list_match(v, n, ETAG, strlen(ETAG), 1);
    size_t i = 0;

    CHECK(strong >= -1 && strong <= 1 && weak >= -1 && weak <= 1);
    CHECK(strong != 1 || weak == 1);
    CHECK((strong < 0) == (weak < 0)); /* validity does not depend on the comparison */
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    /* A valid list (not "*") with our tag appended matches by either comparison. */
    if (weak >= 0 && !(i < n && v[i] == '*')) {
        char *more = malloc(n + strlen(ETAG) + 2);
        memcpy(more, v, n);
        memcpy(more + n, ",", 1);
        memcpy(more + n + 1, ETAG, strlen(ETAG));
        CHECK(http_etag_list_match(more, n + 1 + strlen(ETAG), ETAG, strlen(ETAG), 0) == 1);
        free(more);
    }
    int ir = http_if_range_match(v, n, ETAG, strlen(ETAG), 784111777);
    CHECK(ir == 0 || ir == 1);
    if (ir && n > 0 && v[0] == '"')
        CHECK(n == strlen(ETAG) && !memcmp(v, ETAG, n));
    /* A weak tag of our own never matches strongly. */
    CHECK(http_etag_list_match(v, n, "W/" ETAG, strlen(ETAG) + 2, 0) != 1 || strong == 1);
}

static void check_codings(const char *v, size_t n)
{
    static const char *const lower[] = {"gzip", "br", "identity", "zstd"};
    static const char *const upper[] = {"GZIP", "Br", "IDENTITY", "zStd"};
    for (size_t i = 0; i < 4; i++) {
        int q = http_coding_accepted(v, n, lower[i]);
        CHECK(q >= 0 && q <= 1000);
        CHECK(http_coding_accepted(v, n, upper[i]) == q);
    }
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" as "Sun Nov  6 08:49:37 1994" and as
 * "Sunday, 06-Nov-94 08:49:37 GMT". */
static void other_forms(const char *imf, char *asc, char *rfc850)
{
    static const char *const days[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                       "Thursday", "Friday", "Saturday"};
    const char *day = "";
    memcpy(asc, imf, 3);
    asc[3] = ' ';
    memcpy(asc + 4, imf + 8, 3);
    asc[7] = ' ';
    asc[8] = imf[5] == '0' ? ' ' : imf[5];
    asc[9] = imf[6];
    asc[10] = ' ';
    memcpy(asc + 11, imf + 17, 8);
    asc[19] = ' ';
    memcpy(asc + 20, imf + 12, 4);
    asc[24] = '\0';
    for (int i = 0; i < 7; i++)
        if (!memcmp(days[i], imf, 3))
            day = days[i];
    snprintf(rfc850, 40, "%s, %.2s-%.3s-%.2s %.8s GMT", day, imf + 5, imf + 8, imf + 14, imf + 17);
}

static void check_date_of(time_t t)
{
    char out[HTTP_DATE_LEN + 1], asc[32], rfc850[40];
    time_t back = 0, t2 = 0;

    http_date_format(t, out);
    CHECK(strlen(out) == HTTP_DATE_LEN);
    CHECK(http_date_parse(out, HTTP_DATE_LEN, &back) == 0);
    if ((int64_t)t >= HTTP_DATE_MIN && (int64_t)t <= HTTP_DATE_MAX)
        CHECK(back == t);
    other_forms(out, asc, rfc850);
    CHECK(http_date_parse(asc, strlen(asc), &t2) == 0 && t2 == back);
    /* rfc850's two-digit year is read against the clock: same day of the century. */
    if (http_date_parse(rfc850, strlen(rfc850), &t2) == 0)
        CHECK(((int64_t)t2 - (int64_t)back) % 86400 == 0);
    else
        CHECK(!memcmp(out + 5, "29 Feb", 6)); /* 29 Feb of a century that is not leap */
}

static void check_dates(const char *v, size_t n, const uint8_t *data)
{
    time_t t = 0;
    int64_t raw;
    int rc = http_date_parse(v, n, &t);

    CHECK(rc == 0 || rc == -1);
    if (rc == 0) {
        /* A leap second on the last day of 9999 is one second past it. */
        CHECK((int64_t)t >= HTTP_DATE_MIN && (int64_t)t <= HTTP_DATE_MAX + 1);
        check_date_of(t);
    }
    if (n >= 8) {
        memcpy(&raw, data, 8);
        check_date_of((time_t)(raw % (HTTP_DATE_MAX + 1)));
    }
}

static void check_ranges(const char *v, size_t n)
{
    static const uint64_t sizes[] = {0, 1, 2, 10, 1000, 1ULL << 40, UINT64_MAX};
    static const size_t maxes[] = {1, 4, 32};
    struct http_range r[3][32];
    size_t got[3];
    int rc[3];

    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint64_t size = sizes[s];
        for (size_t m = 0; m < 3; m++) {
            got[m] = 12345;
            rc[m] = http_ranges_parse(v, n, size, r[m], maxes[m], &got[m]);
            CHECK(rc[m] >= -1 && rc[m] <= 1);
            if (rc[m] != 1) {
                CHECK(got[m] == 0);
                continue;
            }
            CHECK(size > 0);
            CHECK(got[m] >= 1 && got[m] <= maxes[m]);
            uint64_t total = 0;
            for (size_t i = 0; i < got[m]; i++) {
                const struct http_range *x = &r[m][i];
                CHECK(x->len >= 1 && x->off < size && x->len <= size - x->off);
                if (i > 0)
                    CHECK(x->off > r[m][i - 1].off + r[m][i - 1].len);
                total += x->len;
            }
            CHECK(total <= size);
        }
        /* Whether a Range is honoured, unsatisfiable or invalid does not depend on max,
         * except that a smaller max may give up (0) where a larger one answers. */
        for (size_t m = 0; m + 1 < 3; m++) {
            if (rc[m] == 1)
                CHECK(rc[m + 1] == 1 && got[m + 1] == got[m] &&
                      !memcmp(r[m], r[m + 1], got[m] * sizeof(r[m][0])));
            if (rc[m] == -1)
                CHECK(rc[m + 1] == -1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *v = (const char *)data;

    check_etags(v, size);
    check_codings(v, size);
    check_dates(v, size, data);
    check_ranges(v, size);
    return 0;
}
