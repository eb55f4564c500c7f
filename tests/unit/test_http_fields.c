/*
 * Unit tests for the request header-field parsers of the http module (src/http/fields.c):
 * entity-tag lists (weak and strong comparison, "*", empty elements, malformed lists), If-Range,
 * Accept-Encoding (q-values, "*", identity;q=0, x-gzip), HTTP-dates in the three forms with
 * impossible dates and overflowing digits, the formatter against the C library's, and Range
 * (suffixes, coalescing of overlapping ranges, too many parts, huge numbers, size 0). Each
 * also against empty, NULL and huge values. Plus the request parser keeping the new fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "http/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S(lit) (lit), (sizeof(lit) - 1)
#define ETAG "\"abc\""

static int etag_match(const char *v, int weak)
{
    return http_etag_list_match(v, strlen(v), S(ETAG), weak);
}

static void test_etag_lists(void **state)
{
    /* Strong and weak comparison (RFC 9110 §8.8.3.2's table). */
    assert_int_equal(etag_match("\"abc\"", 0), 1);
    assert_int_equal(etag_match("\"abc\"", 1), 1);
    assert_int_equal(etag_match("W/\"abc\"", 0), 0);
    assert_int_equal(etag_match("W/\"abc\"", 1), 1);
    assert_int_equal(http_etag_list_match(S("\"abc\""), S("W/\"abc\""), 0), 0);
    assert_int_equal(http_etag_list_match(S("\"abc\""), S("W/\"abc\""), 1), 1);
    assert_int_equal(http_etag_list_match(S("W/\"abc\""), S("W/\"abc\""), 0), 0);
    assert_int_equal(etag_match("\"ab\"", 1), 0);
    assert_int_equal(etag_match("\"abcd\"", 1), 0);
    assert_int_equal(etag_match("\"ABC\"", 1), 0);
    assert_int_equal(etag_match("\"\"", 1), 0);
    /* "*" alone matches any current representation, weak or strong. */
    assert_int_equal(etag_match("*", 0), 1);
    assert_int_equal(etag_match("*", 1), 1);
    assert_int_equal(etag_match(" * ", 0), 1);
    assert_int_equal(etag_match("*, \"abc\"", 1), -1);
    assert_int_equal(etag_match("\"x\", *", 1), -1);
    assert_int_equal(etag_match("**", 1), -1);
    /* Lists, with OWS and empty elements. */
    assert_int_equal(etag_match("\"x\", W/\"y\" ,\"abc\"", 0), 1);
    assert_int_equal(etag_match("\"x\",\t\"abc\"", 0), 1);
    assert_int_equal(etag_match(",,\"abc\",", 0), 1);
    assert_int_equal(etag_match("\"x\", \"y\"", 1), 0);
    assert_int_equal(etag_match("\"a,b\", \"abc\"", 1), 1); /* a comma inside a tag */
    /* Malformed lists match nothing, even when they hold the tag. */
    assert_int_equal(etag_match("", 1), -1);
    assert_int_equal(etag_match(",", 1), -1);
    assert_int_equal(etag_match(" , ,", 1), -1);
    assert_int_equal(etag_match("\"abc", 1), -1);
    assert_int_equal(etag_match("abc", 1), -1);
    assert_int_equal(etag_match("\"abc\" \"x\"", 1), -1);
    assert_int_equal(etag_match("\"abc\"x", 1), -1);
    assert_int_equal(etag_match("\"abc\", bad", 1), -1);
    assert_int_equal(etag_match("bad, \"abc\"", 1), -1);
    assert_int_equal(etag_match("w/\"abc\"", 1), -1); /* %s"W/": case-sensitive */
    assert_int_equal(etag_match("W/ \"abc\"", 1), -1);
    assert_int_equal(etag_match("W/", 1), -1);
    assert_int_equal(etag_match("\"a\x01\"", 1), -1);
    assert_int_equal(etag_match("\"a\x7f\"", 1), -1);
    assert_int_equal(etag_match("\"a b\"", 1), -1);
    assert_int_equal(etag_match("\"\x80\xff\"", 1), 0); /* obs-text is allowed */
    assert_int_equal(http_etag_list_match(NULL, 0, S(ETAG), 1), -1);
    /* A value is read only up to len. */
    assert_int_equal(http_etag_list_match("\"abc\"garbage", 5, S(ETAG), 0), 1);
    assert_int_equal(http_etag_list_match("\"abc\"", 4, S(ETAG), 0), -1);
    /* A bad tag of our own matches nothing but "*". */
    assert_int_equal(http_etag_list_match(S("\"abc\""), S("abc"), 1), 0);
    assert_int_equal(http_etag_list_match(S("*"), S("abc"), 1), 1);

    /* Huge: 20,000 members, the match last; and the same with one bad member first. */
    size_t n = 20000 * 6 + 8;
    char *big = malloc(n);
    size_t len = 0;
    for (int i = 0; i < 20000; i++) {
        memcpy(big + len, "\"zz\", ", 6);
        len += 6;
    }
    memcpy(big + len, ETAG, 5);
    len += 5;
    assert_int_equal(http_etag_list_match(big, len, S(ETAG), 0), 1);
    big[0] = 'x';
    assert_int_equal(http_etag_list_match(big, len, S(ETAG), 0), -1);
    free(big);
}

static void test_if_range(void **state)
{
    const time_t lm = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */

    assert_int_equal(http_if_range_match(S("\"abc\""), S(ETAG), lm), 1);
    assert_int_equal(http_if_range_match(S("\"abd\""), S(ETAG), lm), 0);
    /* RFC 9110 §13.1.5: the strong comparison: a weak tag on either side never matches. */
    assert_int_equal(http_if_range_match(S("W/\"abc\""), S(ETAG), lm), 0);
    assert_int_equal(http_if_range_match(S("\"abc\""), S("W/\"abc\""), lm), 0);
    /* One validator, not a list; no "*". */
    assert_int_equal(http_if_range_match(S("\"abc\", \"abc\""), S(ETAG), lm), 0);
    assert_int_equal(http_if_range_match(S("*"), S(ETAG), lm), 0);
    assert_int_equal(http_if_range_match(S("\"abc"), S(ETAG), lm), 0);
    /* A date matches only when it is exactly Last-Modified, in any of the three forms. */
    assert_int_equal(http_if_range_match(S("Sun, 06 Nov 1994 08:49:37 GMT"), S(ETAG), lm), 1);
    assert_int_equal(http_if_range_match(S("Sun Nov  6 08:49:37 1994"), S(ETAG), lm), 1);
    assert_int_equal(http_if_range_match(S("Sun, 06 Nov 1994 08:49:38 GMT"), S(ETAG), lm), 0);
    assert_int_equal(http_if_range_match(S("Sun, 06 Nov 1994 08:49:36 GMT"), S(ETAG), lm), 0);
    assert_int_equal(http_if_range_match(S("yesterday"), S(ETAG), lm), 0);
    assert_int_equal(http_if_range_match(S(""), S(ETAG), lm), 0);
    assert_int_equal(http_if_range_match(NULL, 0, S(ETAG), lm), 0);
}

static int q(const char *v, const char *coding)
{
    return http_coding_accepted(v, strlen(v), coding);
}

static void test_accept_encoding(void **state)
{
    /* No field: identity only; an empty one: no coding wanted (RFC 9110 §12.5.3). */
    assert_int_equal(http_coding_accepted(NULL, 0, "gzip"), 0);
    assert_int_equal(http_coding_accepted(NULL, 0, "identity"), 1000);
    assert_int_equal(q("", "gzip"), 0);
    assert_int_equal(q("", "identity"), 1000);
    /* Names, case-insensitive; q-values in thousandths, "q" in either case. */
    assert_int_equal(q("gzip", "gzip"), 1000);
    assert_int_equal(q("GZip", "gzip"), 1000);
    assert_int_equal(q("gzip", "GZIP"), 1000);
    assert_int_equal(q("identity;q=0", "Identity"), 0);
    assert_int_equal(q("gzip, br", "br"), 1000);
    assert_int_equal(q("gzip;q=0", "gzip"), 0);
    assert_int_equal(q("gzip; q=0.5", "gzip"), 500);
    assert_int_equal(q("gzip ;Q=0.123", "gzip"), 123);
    assert_int_equal(q("gzip;q=0.05", "gzip"), 50);
    assert_int_equal(q("gzip;q=1", "gzip"), 1000);
    assert_int_equal(q("gzip;q=1.000", "gzip"), 1000);
    assert_int_equal(q("gzip;q=0.000", "gzip"), 0);
    assert_int_equal(q("gzip;q=0.", "gzip"), 0);
    assert_int_equal(q("br;q=0.001", "br"), 1);
    /* Malformed weights make the element malformed: it is ignored, not read as q=1. */
    assert_int_equal(q("gzip;q=1.001", "gzip"), 0);
    assert_int_equal(q("gzip;q=0.0001", "gzip"), 0);
    assert_int_equal(q("gzip;q=2", "gzip"), 0);
    assert_int_equal(q("gzip;q=-1", "gzip"), 0);
    assert_int_equal(q("gzip;q=.5", "gzip"), 0);
    assert_int_equal(q("gzip;q=", "gzip"), 0);
    assert_int_equal(q("gzip;q", "gzip"), 0);
    assert_int_equal(q("gzip;level=1", "gzip"), 0);
    assert_int_equal(q("gzip;q=0.5;x=1", "gzip"), 0);
    assert_int_equal(q("gzip;q=1e0", "gzip"), 0);
    assert_int_equal(q("gzip;q=0.5 x", "gzip"), 0);
    /* ...and the rest of the list still counts. */
    assert_int_equal(q("gzip deflate, br", "br"), 1000);
    assert_int_equal(q("gzip deflate, br", "gzip"), 0);
    assert_int_equal(q(";;;, br", "br"), 1000);
    assert_int_equal(q("deflate;level=1, gzip;q=0.7", "gzip"), 700);
    assert_int_equal(q("identity,\tbr", "br"), 1000);
    assert_int_equal(q(",, ,br,", "br"), 1000);
    /* Whole names only. */
    assert_int_equal(q("gzipx", "gzip"), 0);
    assert_int_equal(q("xgzip", "gzip"), 0);
    assert_int_equal(q("gz", "gzip"), 0);
    /* RFC 9110 §8.4.1.3: x-gzip is gzip. */
    assert_int_equal(q("x-gzip", "gzip"), 1000);
    assert_int_equal(q("x-gzip;q=0.3", "gzip"), 300);
    assert_int_equal(q("x-gzip", "br"), 0);
    /* The first entry naming a coding decides. */
    assert_int_equal(q("gzip;q=0, gzip", "gzip"), 0);
    assert_int_equal(q("gzip, gzip;q=0", "gzip"), 1000);
    /* "*" covers what is not listed; identity;q=0 and *;q=0 refuse identity. */
    assert_int_equal(q("*", "gzip"), 1000);
    assert_int_equal(q("*", "identity"), 1000);
    assert_int_equal(q("br;q=0, *", "br"), 0);
    assert_int_equal(q("br;q=0, *", "gzip"), 1000);
    assert_int_equal(q("*;q=0.2, gzip", "gzip"), 1000);
    assert_int_equal(q("*;q=0.2, gzip", "br"), 200);
    assert_int_equal(q("*;q=0", "identity"), 0);
    assert_int_equal(q("*;q=0", "gzip"), 0);
    assert_int_equal(q("*;q=0, identity", "identity"), 1000);
    assert_int_equal(q("identity;q=0", "identity"), 0);
    assert_int_equal(q("identity;q=0", "gzip"), 0);
    assert_int_equal(q("gzip", "identity"), 1000);
    /* Read only up to len. */
    assert_int_equal(http_coding_accepted("gzip;q=0", 4, "gzip"), 1000);

    /* Huge: 16 KiB of empty and malformed elements, then br. */
    char big[16384 + 8];
    for (size_t i = 0; i < 16384; i += 2)
        memcpy(big + i, i % 4 ? ", " : ";,", 2);
    memcpy(big + 16384, "br", 2);
    assert_int_equal(http_coding_accepted(big, 16386, "br"), 1000);
    assert_int_equal(http_coding_accepted(big, 16386, "gzip"), 0);
}

static int date(const char *v, time_t *t)
{
    return http_date_parse(v, strlen(v), t);
}

static void test_date_forms(void **state)
{
    time_t t = 0;

    /* RFC 9110 §5.6.7's example in its three forms. */
    assert_int_equal(date("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    assert_int_equal(t, 784111777);
    t = 0;
    assert_int_equal(date("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
    assert_int_equal(t, 784111777);
    t = 0;
    assert_int_equal(date("Sun Nov  6 08:49:37 1994", &t), 0);
    assert_int_equal(t, 784111777);
    t = 0;
    assert_int_equal(date("Sun Nov 06 08:49:37 1994", &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(date("Thu, 01 Jan 1970 00:00:00 GMT", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(date("Wed, 31 Dec 1969 23:59:59 GMT", &t), 0);
    assert_int_equal(t, -1);
    assert_int_equal(date("Fri, 31 Dec 1999 23:59:59 GMT", &t), 0);
    assert_int_equal(t, 946684799);
    assert_int_equal(date("Tue, 29 Feb 2000 12:00:00 GMT", &t), 0); /* 2000 is leap */
    assert_int_equal(t, 951825600);
    assert_int_equal(date("Thu, 29 Feb 2024 00:00:00 GMT", &t), 0);
    assert_int_equal(date("Fri, 31 Dec 9999 23:59:59 GMT", &t), 0);
    assert_int_equal((long long)t, HTTP_DATE_MAX);
    assert_int_equal(date("Sat, 01 Jan 0000 00:00:00 GMT", &t), 0);
    assert_int_equal((long long)t, HTTP_DATE_MIN);
    /* A leap second is a valid time-of-day: one second after :59. */
    assert_int_equal(date("Sat, 31 Dec 2016 23:59:60 GMT", &t), 0);
    assert_int_equal(t, 1483228800);
    /* The day name is a name, not checked against the date. */
    assert_int_equal(date("Mon, 06 Nov 1994 08:49:37 GMT", &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(date("Wednesday, 06-Nov-94 08:49:37 GMT", &t), 0);
}

static void test_date_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "yesterday",
        "Sun, 30 Feb 1994 08:49:37 GMT", /* no Feb 30 */
        "Sun, 29 Feb 1900 08:49:37 GMT", /* 1900 is not leap */
        "Sun, 29 Feb 2023 08:49:37 GMT",
        "Sun, 31 Apr 1994 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT", /* hour 25 */
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:37 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT", /* names are case-sensitive */
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 +00",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Xyz 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT", /* widths are exact */
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 01994 08:49:37 GMT",
        "Sun, 06 Nov 19940 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT ",
        " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun,  06 Nov 1994 08:49:37 GMT",
        "Sun 06 Nov 1994 08:49:37 GMT",
        "Sun, 06-Nov-1994 08:49:37 GMT",
        "Sun, 0x Nov 1994 08:49:37 GMT",
        "Sun, -6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:3x GMT",
        "Sun, 06 Nov 1994 08.49.37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT ",
        "Sun, 06-Nov-94 08:49:37 GMT", /* rfc850 wants the full day name */
        "Sundays, 06-Nov-94 08:49:37 GMT",
        "Sunday, 30-Feb-94 08:49:37 GMT",
        "Sunday, 06-Nov-94 25:49:37 GMT",
        "Sunday, 06-Nov-9x 08:49:37 GMT",
        "Sunday, 06 Nov 94 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 UTC",
        "Sunday,06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  0 08:49:37 1994",
        "Sun Feb 30 08:49:37 1994",
        "Sun Nov  6 25:49:37 1994",
        "Sun Nov  6 08:49:37 94  ",
        "Sun Nov  6 08:49:37 199x",
    };
    time_t t = 12345;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (date(bad[i], &t) != -1)
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(t, 12345);
    }
    assert_int_equal(http_date_parse(NULL, 0, &t), -1);
    /* An embedded NUL is a byte like any other. */
    assert_int_equal(http_date_parse("Sun, 06 Nov 1994 08:49:37 GM\0", 29, &t), -1);
    /* Read only up to len, and never beyond: a 30-byte prefix view of longer text. */
    assert_int_equal(http_date_parse("Sun, 06 Nov 1994 08:49:37 GMTxyz", 29, &t), 0);
    assert_int_equal(t, 784111777);
    /* Huge. */
    char big[65536];
    memset(big, '1', sizeof(big));
    assert_int_equal(http_date_parse(big, sizeof(big), &t), -1);
    memcpy(big, "Sunday,", 7);
    assert_int_equal(http_date_parse(big, sizeof(big), &t), -1);
}

/* RFC 9110 §5.6.7: a two-digit year more than 50 years ahead is the last century's. */
static void test_date_rfc850_century(void **state)
{
    time_t now = time(NULL), t;
    struct tm tm;
    char v[64];

    gmtime_r(&now, &tm);
    int year = tm.tm_year + 1900;
    int ahead = year + 49, past = year + 51 - 100;
    snprintf(v, sizeof(v), "Monday, 01-Jan-%02d 00:00:00 GMT", ahead % 100);
    assert_int_equal(date(v, &t), 0);
    gmtime_r(&t, &tm);
    assert_int_equal(tm.tm_year + 1900, ahead);
    snprintf(v, sizeof(v), "Monday, 01-Jan-%02d 00:00:00 GMT", past % 100);
    assert_int_equal(date(v, &t), 0);
    gmtime_r(&t, &tm);
    assert_int_equal(tm.tm_year + 1900, past);
    snprintf(v, sizeof(v), "Monday, 01-Jan-%02d 00:00:00 GMT", year % 100);
    assert_int_equal(date(v, &t), 0);
    gmtime_r(&t, &tm);
    assert_int_equal(tm.tm_year + 1900, year);
}

/* The formatter against the C library's gmtime and strftime, and back. */
static void test_date_format(void **state)
{
    char out[HTTP_DATE_LEN + 1], want[64];
    struct tm tm;
    time_t t, back;

    http_date_format(784111777, out);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    http_date_format(0, out);
    assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    http_date_format(-1, out);
    assert_string_equal(out, "Wed, 31 Dec 1969 23:59:59 GMT");
    http_date_format((time_t)HTTP_DATE_MAX + 1000, out);
    assert_string_equal(out, "Fri, 31 Dec 9999 23:59:59 GMT");
    http_date_format((time_t)HTTP_DATE_MIN - 1000, out);
    assert_string_equal(out, "Sat, 01 Jan 0000 00:00:00 GMT");
    /* A sweep over 1900..2100 in uneven steps, and the years 0000-9999 by 17 days. */
    for (int64_t s = -2208988800LL; s < 4102444800LL; s += 86400 * 3 + 3599) {
        t = (time_t)s;
        http_date_format(t, out);
        gmtime_r(&t, &tm);
        strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        if (strcmp(out, want) != 0)
            fail_msg("%lld: '%s', want '%s'", (long long)s, out, want);
        assert_int_equal(http_date_parse(out, HTTP_DATE_LEN, &back), 0);
        assert_true(back == t);
    }
    for (int64_t s = HTTP_DATE_MIN; s <= HTTP_DATE_MAX; s += 86400 * 17 + 7) {
        http_date_format((time_t)s, out);
        assert_int_equal(strlen(out), HTTP_DATE_LEN);
        assert_int_equal(http_date_parse(out, HTTP_DATE_LEN, &back), 0);
        assert_true((int64_t)back == s);
    }
}

#define MAXR 16

/* Parses v against size; returns the result and the ranges as "off+len ..." in txt. */
static int ranges(const char *v, uint64_t size, size_t max, char *txt, size_t cap)
{
    struct http_range r[64];
    size_t n = 99, o = 0;
    int rc = http_ranges_parse(v, strlen(v), size, r, max, &n);

    txt[0] = '\0';
    if (rc != 1)
        assert_int_equal(n, 0);
    for (size_t i = 0; rc == 1 && i < n; i++) {
        /* The documented invariants, whatever the input. */
        assert_true(r[i].len >= 1 && r[i].off < size && r[i].len <= size - r[i].off);
        if (i > 0)
            assert_true(r[i].off > r[i - 1].off + r[i - 1].len);
        o += (size_t)snprintf(txt + o, cap - o, "%s%llu+%llu", i ? " " : "",
                              (unsigned long long)r[i].off, (unsigned long long)r[i].len);
    }
    return rc;
}

#define RANGES(v, size, rc_want, txt_want)                                                         \
    do {                                                                                           \
        char t_[1024];                                                                             \
        int rc_ = ranges((v), (size), MAXR, t_, sizeof(t_));                                       \
        if (rc_ != (rc_want) || strcmp(t_, (txt_want)) != 0)                                       \
            fail_msg("'%s' on %llu: %d '%s', want %d '%s'", (v), (unsigned long long)(size), rc_,  \
                     t_, (rc_want), (txt_want));                                                   \
    } while (0)

static void test_ranges_single(void **state)
{
    RANGES("bytes=0-99", 1000, 1, "0+100");
    RANGES("bytes=500-599", 1000, 1, "500+100");
    RANGES("bytes=500-", 1000, 1, "500+500");
    RANGES("bytes=-100", 1000, 1, "900+100");
    RANGES("bytes=990-5000", 1000, 1, "990+10");
    RANGES("bytes=0-0", 1000, 1, "0+1");
    RANGES("bytes=999-999", 1000, 1, "999+1");
    RANGES("bytes=-5000", 1000, 1, "0+1000"); /* a suffix longer than the body: all of it */
    RANGES("bytes=-1000", 1000, 1, "0+1000");
    RANGES("bytes=0-", 1000, 1, "0+1000");
    RANGES("BYTES=0-1", 1000, 1, "0+2"); /* units are case-insensitive */
    RANGES("Bytes=0-1", 1000, 1, "0+2");
    RANGES("bytes=007-008", 1000, 1, "7+2");
    /* Unsatisfiable: 416. */
    RANGES("bytes=1000-", 1000, -1, "");
    RANGES("bytes=2000-3000", 1000, -1, "");
    RANGES("bytes=-0", 1000, -1, "");
    RANGES("bytes=1000-2000, 3000-, -0", 1000, -1, "");
    /* Huge numbers saturate instead of wrapping. */
    RANGES("bytes=99999999999999999999999999-", 1000, -1, "");
    RANGES("bytes=18446744073709551615-18446744073709551615", 1000, -1, "");
    RANGES("bytes=18446744073709551616-", 1000, -1, ""); /* 2^64 would wrap to 0 */
    RANGES("bytes=0-99999999999999999999999", 1000, 1, "0+1000");
    RANGES("bytes=-99999999999999999999999", 1000, 1, "0+1000");
    RANGES("bytes=-18446744073709551617", 1000, 1, "0+1000");
    /* The largest size there is. */
    RANGES("bytes=18446744073709551614-", UINT64_MAX, 1, "18446744073709551614+1");
    RANGES("bytes=0-", UINT64_MAX, 1, "0+18446744073709551615");
    RANGES("bytes=0-1,2-18446744073709551615", UINT64_MAX, 1, "0+18446744073709551615");
    /* A zero-length body: an int-range is unsatisfiable, a suffix means "all of it". */
    RANGES("bytes=0-", 0, -1, "");
    RANGES("bytes=0-0", 0, -1, "");
    RANGES("bytes=-5", 0, 0, "");
    RANGES("bytes=-0", 0, -1, "");
    RANGES("bytes=1-2,-1", 0, 0, "");
}

static void test_ranges_malformed(void **state)
{
    static const char *const bad[] = {
        "",          "bytes",         "bytes=",        "bytes=,",       "bytes= , ,",
        "bytes=-",   "bytes=--1",     "bytes=1--2",    "bytes=a-b",     "bytes=1-2-3",
        "bytes=5-4", "bytes=0-1;x",   "bytes=0-1 2-3", "bytes=0x10-20", "bytes=+1-2",
        "bytes=1",   "bytes=0-1,5-4", "bytes=0-1,x",   "bytes =0-1",    "bytes 0-1",
        "items=0-1", "byte=0-1",      "bytesx=0-1",    "bytes=0-\x01",  "bytes=\xff-1",
        "=0-1",
    };
    char txt[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ranges(bad[i], 1000, MAXR, txt, sizeof(txt)) != 0)
            fail_msg("'%s' is not ignored", bad[i]);
    struct http_range r[1];
    size_t n = 7;
    assert_int_equal(http_ranges_parse(NULL, 0, 1000, r, 1, &n), 0);
    assert_int_equal(n, 0);
    /* OWS and empty elements around specs are fine (RFC 9110 §5.6.1). */
    RANGES("bytes=0-1 , 4-5", 1000, 1, "0+2 4+2");
    RANGES("bytes=0-1,\t,4-5,", 1000, 1, "0+2 4+2");
    RANGES("bytes=,0-1", 1000, 1, "0+2");
}

static void test_ranges_many(void **state)
{
    char txt[4096];

    RANGES("bytes=0-1,4-5", 1000, 1, "0+2 4+2");
    RANGES("bytes=4-5,0-1", 1000, 1, "0+2 4+2"); /* sorted */
    RANGES("bytes=-100,0-9", 1000, 1, "0+10 900+100");
    RANGES("bytes=5000-,0-1", 1000, 1, "0+2"); /* the unsatisfiable one is dropped */
    RANGES("bytes=0-1,5000-", 1000, 1, "0+2");
    /* Overlapping and touching ranges are coalesced. */
    RANGES("bytes=0-10,5-20", 1000, 1, "0+21");
    RANGES("bytes=5-20,0-10", 1000, 1, "0+21");
    RANGES("bytes=0-1,2-3", 1000, 1, "0+4");
    RANGES("bytes=2-3,0-1", 1000, 1, "0+4");
    RANGES("bytes=0-1,3-4", 1000, 1, "0+2 3+2"); /* a one-byte gap stays */
    RANGES("bytes=0-,0-,0-", 1000, 1, "0+1000");
    RANGES("bytes=-500,0-999", 1000, 1, "0+1000");
    RANGES("bytes=0-1,4-5,8-9,2-7", 1000, 1, "0+10");
    RANGES("bytes=10-19,30-39,50-59,15-55", 1000, 1, "10+50");
    RANGES("bytes=10-19,30-39,50-59,20-29", 1000, 1, "10+30 50+10");
    RANGES("bytes=900-999,-50", 1000, 1, "900+100");
    RANGES("bytes=0-0,0-0,0-0,0-0", 1000, 1, "0+1");

    /* Too many parts: ignored (200), at max still served; a later syntax error is still one. */
    struct buf b = BUF_INIT;
    buf_adds(&b, "bytes=");
    for (int i = 0; i < MAXR; i++)
        buf_addf(&b, "%s%d-%d", i ? "," : "", i * 2, i * 2);
    assert_int_equal(ranges(b.data, 1000, MAXR, txt, sizeof(txt)), 1);
    assert_int_equal(ranges(b.data, 1000, MAXR - 1, txt, sizeof(txt)), 0);
    buf_adds(&b, ",999-999");
    assert_int_equal(ranges(b.data, 1000, MAXR, txt, sizeof(txt)), 0);
    /* ...unless the extra one merges with what is there. */
    buf_reset(&b);
    buf_adds(&b, "bytes=");
    for (int i = 0; i < MAXR; i++)
        buf_addf(&b, "%s%d-%d", i ? "," : "", i * 2, i * 2);
    buf_adds(&b, ",1-1");
    assert_int_equal(ranges(b.data, 1000, MAXR, txt, sizeof(txt)), 1);
    struct buf want = BUF_INIT;
    buf_adds(&want, "0+3");
    for (int i = 2; i < MAXR; i++)
        buf_addf(&want, " %d+1", i * 2);
    assert_string_equal(txt, want.data);
    buf_free(&want);
    buf_adds(&b, ",x");
    assert_int_equal(ranges(b.data, 1000, MAXR, txt, sizeof(txt)), 0);
    /* No parts allowed at all. */
    assert_int_equal(ranges("bytes=0-1", 1000, 0, txt, sizeof(txt)), 0);

    /* 4,000 one-byte ranges that touch: one range, even with room for two parts. */
    buf_reset(&b);
    buf_adds(&b, "bytes=");
    for (int i = 3999; i >= 0; i--)
        buf_addf(&b, "%d-%d%s", i, i, i ? "," : "");
    assert_int_equal(ranges(b.data, 5000, 2, txt, sizeof(txt)), 1);
    assert_string_equal(txt, "0+4000");
    /* 4,000 copies of the whole body: one range, never 4,000 times the body. */
    buf_reset(&b);
    buf_adds(&b, "bytes=0-");
    for (int i = 0; i < 4000; i++)
        buf_adds(&b, ",0-");
    assert_int_equal(ranges(b.data, 5000, 2, txt, sizeof(txt)), 1);
    assert_string_equal(txt, "0+5000");
    /* 16 KiB of separate small ranges: ignored. */
    buf_reset(&b);
    buf_adds(&b, "bytes=");
    for (int i = 0; b.len < 16384; i++)
        buf_addf(&b, "%s%d-%d", i ? "," : "", i * 3, i * 3);
    assert_int_equal(ranges(b.data, 1 << 20, MAXR, txt, sizeof(txt)), 0);
    buf_free(&b);
}

/* The parser keeps the new precondition fields, each at most once. */
static void test_request_fields(void **state)
{
    static const char req_s[] = "GET / HTTP/1.1\r\nHost: a\r\n"
                                "If-Match: \"a\", \"b\"\r\n"
                                "if-modified-since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                                "If-Unmodified-Since:  Sunday, 06-Nov-94 08:49:37 GMT \r\n"
                                "IF-RANGE: \"a\"\r\n\r\n";
    struct http_request r;

    assert_int_equal(http_parse_request(req_s, sizeof(req_s) - 1, 8192, 16384, &r),
                     sizeof(req_s) - 1);
    assert_int_equal(r.if_match_len, 8);
    assert_memory_equal(r.if_match, "\"a\", \"b\"", 8);
    assert_int_equal(r.if_modified_since_len, 29);
    assert_memory_equal(r.if_modified_since, "Sun, 06 Nov 1994 08:49:37 GMT", 29);
    assert_int_equal(r.if_unmodified_since_len, 30);
    assert_memory_equal(r.if_unmodified_since, "Sunday, 06-Nov-94 08:49:37 GMT", 30);
    assert_int_equal(r.if_range_len, 3);
    assert_memory_equal(r.if_range, "\"a\"", 3);

    static const char *const twice[] = {
        "GET / HTTP/1.1\r\nHost: a\r\nIf-Match: \"a\"\r\nIf-Match: \"b\"\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nIf-Modified-Since: x\r\nIf-Modified-Since: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nIf-Unmodified-Since: x\r\nif-unmodified-since: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nIf-Range: x\r\nIf-Range: y\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(twice) / sizeof(twice[0]); i++)
        assert_int_equal(http_parse_request(twice[i], strlen(twice[i]), 8192, 16384, &r), -400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etag_lists),       cmocka_unit_test(test_if_range),
        cmocka_unit_test(test_accept_encoding),  cmocka_unit_test(test_date_forms),
        cmocka_unit_test(test_date_invalid),     cmocka_unit_test(test_date_rfc850_century),
        cmocka_unit_test(test_date_format),      cmocka_unit_test(test_ranges_single),
        cmocka_unit_test(test_ranges_malformed), cmocka_unit_test(test_ranges_many),
        cmocka_unit_test(test_request_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
