/*
 * fields.c — parsers of the request header fields a static server acts on: entity-tag lists
 * (If-Match, If-None-Match), Accept-Encoding, HTTP-dates (If-Modified-Since,
 * If-Unmodified-Since, If-Range) and Range.
 *
 * The one idea: each is a pure function of one field value and what the server knows of the
 * representation (its entity tag, time, size), scanned once from left to right. Nothing is
 * allocated, nothing is remembered, and a value outside the grammar is reported as such rather
 * than half-read: what a malformed field then means (ignore it, or fail the precondition) is
 * the caller's rule, stated where it is applied. Field values are hostile, so every number is
 * bounded and every result lies inside what the caller gave.
 */
#include "http/http.h"

#include <string.h>
#include <time.h>

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 9110 §5.6.2: tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit((char)c))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* ASCII case-insensitive comparison of s[0..n) with a lower-case literal. */
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

/* ASCII case-insensitive equality of s[0..n) and the string t, both of any case. */
static int ieq_any(const char *s, size_t n, const char *t)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char a = (unsigned char)s[i], b = (unsigned char)t[i];
        if (b == '\0')
            return 0;
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (unsigned char)(b - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return t[n] == '\0';
}

static size_t skip_ows(const char *s, size_t n, size_t i)
{
    while (i < n && is_ows(s[i]))
        i++;
    return i;
}

/* ---- entity tags ----------------------------------------------------------------------- */

/* RFC 9110 §8.8.3: etagc = %x21 / %x23-7E / obs-text. */
static int is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

/*
 * RFC 9110 §8.8.3: entity-tag = [ weak ] opaque-tag, weak = %s"W/" (case-sensitive),
 * opaque-tag = DQUOTE *etagc DQUOTE. Reads one at s[*i..n): *weak, and the opaque-tag with
 * its quotes in *op and *olen; *i moves past it. 0, or -1 when there is no entity-tag there.
 */
static int entity_tag(const char *s, size_t n, size_t *i, int *weak, const char **op, size_t *olen)
{
    size_t j = *i, start;

    *weak = 0;
    if (n - j >= 2 && s[j] == 'W' && s[j + 1] == '/') {
        *weak = 1;
        j += 2;
    }
    if (j >= n || s[j] != '"')
        return -1;
    start = j++;
    while (j < n && s[j] != '"') {
        if (!is_etagc((unsigned char)s[j]))
            return -1;
        j++;
    }
    if (j >= n)
        return -1;
    j++;
    *op = s + start;
    *olen = j - start;
    *i = j;
    return 0;
}

int http_etag_list_match(const char *value, size_t len, const char *etag, size_t etag_len, int weak)
{
    const char *mine, *op;
    size_t k = 0, mine_len, olen, i, members = 0;
    int mine_weak, w, found = 0;

    if (!value)
        return -1;
    i = skip_ows(value, len, 0);
    /* "*" stands alone (If-Match = "*" / #entity-tag): the caller has a representation. */
    if (i < len && value[i] == '*')
        return skip_ows(value, len, i + 1) == len ? 1 : -1;
    /* Our own tag must be one too; a caller's bad one matches nothing (but still "*"). */
    if (!etag || entity_tag(etag, etag_len, &k, &mine_weak, &mine, &mine_len) < 0 || k != etag_len)
        mine = NULL;
    /* RFC 9110 §5.6.1: 1#entity-tag, elements split by OWS "," OWS; a recipient accepts and
     * ignores empty elements. The whole list is read even after a match, so that a malformed
     * list never matches, whatever precedes the fault. */
    while (i < len) {
        i = skip_ows(value, len, i);
        if (i < len && value[i] == ',') {
            i++;
            continue;
        }
        if (i == len)
            break;
        if (entity_tag(value, len, &i, &w, &op, &olen) < 0)
            return -1;
        members++;
        /* RFC 9110 §8.8.3.2: the strong comparison needs both tags strong; the weak one
         * compares the opaque-tags alone. */
        if (mine && olen == mine_len && !memcmp(op, mine, olen) && (weak || (!w && !mine_weak)))
            found = 1;
        i = skip_ows(value, len, i);
        if (i < len && value[i] != ',')
            return -1;
    }
    return members ? found : -1;
}

int http_if_range_match(const char *value, size_t len, const char *etag, size_t etag_len,
                        time_t last_modified)
{
    const char *mine, *op;
    size_t i = 0, k = 0, mine_len, olen;
    int mine_weak, w;
    time_t t;

    if (!value)
        return 0;
    /* RFC 9110 §13.1.5: If-Range = entity-tag / HTTP-date. A date starts with a day name, so
     * a value starting with a quote or "W/" can only be an entity-tag. */
    if (len > 0 && (value[0] == '"' || (len > 1 && value[0] == 'W' && value[1] == '/'))) {
        if (entity_tag(value, len, &i, &w, &op, &olen) < 0 || i != len)
            return 0;
        if (!etag || entity_tag(etag, etag_len, &k, &mine_weak, &mine, &mine_len) < 0 ||
            k != etag_len)
            return 0;
        /* Item 1: true only by the strong comparison (a weak tag never matches). */
        return !w && !mine_weak && olen == mine_len && !memcmp(op, mine, olen);
    }
    /* Item 2: a date is true only when it is exactly the Last-Modified time. */
    return http_date_parse(value, len, &t) == 0 && t == last_modified;
}

/* ---- Accept-Encoding ------------------------------------------------------------------- */

/* RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), as
 * thousandths; -1 when s[0..n) is not one. */
static int qvalue(const char *s, size_t n)
{
    int v, scale = 100;
    size_t i;

    if (n == 0 || (s[0] != '0' && s[0] != '1'))
        return -1;
    v = (s[0] - '0') * 1000;
    if (n == 1)
        return v;
    if (s[1] != '.' || n > 5)
        return -1;
    for (i = 2; i < n; i++, scale /= 10) {
        if (!is_digit(s[i]))
            return -1;
        v += (s[i] - '0') * scale;
    }
    return v > 1000 ? -1 : v;
}

/*
 * Reads one element of Accept-Encoding at s[*i..n) — codings [ weight ], with weight =
 * OWS ";" OWS "q=" qvalue (RFC 9110 §12.5.3, §12.4.2) — into *name, *nlen and *q, and moves
 * *i to its ',' or the end. 1: an element; 0: an empty one; -1: a malformed one (skipped).
 */
static int coding_element(const char *s, size_t n, size_t *i, const char **name, size_t *nlen,
                          int *q)
{
    size_t j = skip_ows(s, n, *i), start, qs;
    int rc = 1;

    start = j;
    while (j < n && is_tchar((unsigned char)s[j]))
        j++;
    *name = s + start;
    *nlen = j - start;
    *q = 1000;
    j = skip_ows(s, n, j);
    if (*nlen == 0)
        rc = j < n && s[j] != ',' ? -1 : 0;
    else if (j < n && s[j] == ';') {
        j = skip_ows(s, n, j + 1);
        if (n - j < 2 || (s[j] != 'q' && s[j] != 'Q') || s[j + 1] != '=') {
            rc = -1;
        } else {
            j += 2;
            qs = j;
            while (j < n && !is_ows(s[j]) && s[j] != ',')
                j++;
            *q = qvalue(s + qs, j - qs);
            j = skip_ows(s, n, j);
            if (*q < 0)
                rc = -1;
        }
    }
    if (rc >= 0 && j < n && s[j] != ',')
        rc = -1;
    /* A malformed element is skipped to the next ','; the grammar has no quoted strings. */
    while (j < n && s[j] != ',')
        j++;
    *i = j;
    return rc;
}

int http_coding_accepted(const char *value, size_t len, const char *coding)
{
    const char *name;
    size_t i = 0, nlen;
    int q, exact = -1, star = -1, rc;
    int identity = ieq_any(coding, strlen(coding), "identity");
    int gzip = ieq_any(coding, strlen(coding), "gzip");

    /* No field: RFC 9110 §12.5.3 lets a server send any coding, but a client that asked for
     * none may not decode one, and no server does that: identity only. */
    if (!value)
        return identity ? 1000 : 0;
    while (i < len) {
        rc = coding_element(value, len, &i, &name, &nlen, &q);
        if (i < len)
            i++; /* the ',' */
        if (rc <= 0)
            continue;
        /* The first entry naming the coding decides; §8.4.1.3: "x-gzip" is "gzip". */
        if (ieq_any(name, nlen, coding) || (gzip && ieq(name, nlen, "x-gzip"))) {
            if (exact < 0)
                exact = q;
        } else if (nlen == 1 && name[0] == '*' && star < 0) {
            star = q;
        }
    }
    if (exact >= 0)
        return exact;
    /* "*" matches any coding not listed; identity is acceptable unless "identity;q=0" or
     * "*;q=0" excludes it. An empty field wants no coding at all: identity only. */
    if (star >= 0)
        return star;
    return identity ? 1000 : 0;
}

/* ---- HTTP-date ------------------------------------------------------------------------- */

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const wdays_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                          "Thursday", "Friday", "Saturday"};

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's
 * days_from_civil): exact for every year here, no time zone, no locale. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dm[m - 1];
}

/* n digits at s as a number, or -1. */
static int digits(const char *s, int n)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int month_of(const char *s)
{
    int i;

    for (i = 0; i < 12; i++)
        if (!memcmp(s, months[i], 3))
            return i + 1;
    return -1;
}

static int short_day(const char *s)
{
    int i;

    for (i = 0; i < 7; i++)
        if (!memcmp(s, wdays[i], 3))
            return 1;
    return 0;
}

/* RFC 9110 §5.6.7: time-of-day = hour ":" minute ":" second, 00:00:00 to 23:59:60. */
static int time_of_day(const char *s, int *hms)
{
    int h = digits(s, 2), m = digits(s + 3, 2), sec = digits(s + 6, 2);

    if (s[2] != ':' || s[5] != ':' || h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 60)
        return -1;
    *hms = h * 3600 + m * 60 + sec;
    return 0;
}

/*
 * RFC 9110 §5.6.7: a recipient of the two-digit rfc850 year MUST read a year that appears to
 * be more than 50 years in the future as the most recent past year with the same two digits.
 */
static int64_t rfc850_year(int yy)
{
    int64_t now_y, y;
    int m, d;
    time_t now = time(NULL);

    civil_from_days((int64_t)now / 86400, &now_y, &m, &d);
    y = now_y - now_y % 100 + yy;
    if (y > now_y + 50)
        y -= 100;
    else if (y <= now_y - 50)
        y += 100;
    return y;
}

int http_date_parse(const char *s, size_t n, time_t *out)
{
    int64_t year;
    int mon, day, hms, y4;
    size_t c;

    if (!s)
        return -1;
    if (n == 29 && s[3] == ',') {
        /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
        if (!short_day(s) || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
            s[25] != ' ' || memcmp(s + 26, "GMT", 3) != 0)
            return -1;
        day = digits(s + 5, 2);
        mon = month_of(s + 8);
        y4 = digits(s + 12, 4);
        if (time_of_day(s + 17, &hms) < 0)
            return -1;
        year = y4;
    } else if (n == 24 && s[3] == ' ') {
        /* asctime-date: "Sun Nov  6 08:49:37 1994", the day as 2DIGIT or SP DIGIT */
        if (!short_day(s) || s[7] != ' ' || s[10] != ' ' || s[19] != ' ')
            return -1;
        mon = month_of(s + 4);
        day = s[8] == ' ' ? digits(s + 9, 1) : digits(s + 8, 2);
        if (time_of_day(s + 11, &hms) < 0)
            return -1;
        y4 = digits(s + 20, 4);
        year = y4;
    } else {
        /* rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT", the day name in full */
        for (c = 0; c < n && c < 10 && s[c] != ','; c++)
            ;
        if (c >= n || s[c] != ',' || n - c != 24)
            return -1;
        for (day = 0; day < 7; day++)
            if (strlen(wdays_long[day]) == c && !memcmp(s, wdays_long[day], c))
                break;
        s += c + 1;
        if (day == 7 || s[0] != ' ' || s[3] != '-' || s[7] != '-' || s[10] != ' ' || s[19] != ' ' ||
            memcmp(s + 20, "GMT", 3) != 0)
            return -1;
        day = digits(s + 1, 2);
        mon = month_of(s + 4);
        y4 = digits(s + 8, 2);
        if (time_of_day(s + 11, &hms) < 0 || y4 < 0)
            return -1;
        year = rfc850_year(y4);
    }
    /* The day name is not checked against the date: it says nothing the date does not. */
    if (mon < 0 || y4 < 0 || day < 1 || day > days_in_month(year, mon))
        return -1;
    *out = (time_t)(days_from_civil(year, mon, day) * 86400 + hms);
    return 0;
}

void http_date_format(time_t t, char out[HTTP_DATE_LEN + 1])
{
    int64_t s = (int64_t)t, days, y;
    int m, d, wd, sod;

    if (s < HTTP_DATE_MIN)
        s = HTTP_DATE_MIN;
    if (s > HTTP_DATE_MAX)
        s = HTTP_DATE_MAX;
    days = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
    sod = (int)(s - days * 86400);
    civil_from_days(days, &y, &m, &d);
    /* 1970-01-01 was a Thursday. */
    wd = (int)(((days + 4) % 7 + 7) % 7);
    memcpy(out, wdays[wd], 3);
    out[3] = ',';
    out[4] = ' ';
    out[5] = (char)('0' + d / 10);
    out[6] = (char)('0' + d % 10);
    out[7] = ' ';
    memcpy(out + 8, months[m - 1], 3);
    out[11] = ' ';
    out[12] = (char)('0' + y / 1000);
    out[13] = (char)('0' + y / 100 % 10);
    out[14] = (char)('0' + y / 10 % 10);
    out[15] = (char)('0' + y % 10);
    out[16] = ' ';
    out[17] = (char)('0' + sod / 36000);
    out[18] = (char)('0' + sod / 3600 % 10);
    out[19] = ':';
    out[20] = (char)('0' + sod % 3600 / 600);
    out[21] = (char)('0' + sod % 3600 / 60 % 10);
    out[22] = ':';
    out[23] = (char)('0' + sod % 60 / 10);
    out[24] = (char)('0' + sod % 10);
    memcpy(out + 25, " GMT", 5); /* with the NUL */
}

/* ---- Range ------------------------------------------------------------------------------ */

/*
 * Adds the bytes a..b (inclusive) to out[0..*n), which stays sorted with no two ranges
 * overlapping or touching: the new range swallows every one it overlaps or abuts. -1 when it
 * would need part max+1. O(max).
 */
static int range_add(struct http_range *out, size_t max, size_t *n, uint64_t a, uint64_t b)
{
    size_t i = 0, j;

    /* b < size <= UINT64_MAX, so b + 1 cannot wrap; off + len <= size likewise. */
    while (i < *n && out[i].off + out[i].len < a)
        i++;
    for (j = i; j < *n && out[j].off <= b + 1; j++) {
        if (out[j].off < a)
            a = out[j].off;
        if (out[j].off + out[j].len - 1 > b)
            b = out[j].off + out[j].len - 1;
    }
    if (i == j) {
        if (*n >= max)
            return -1;
        memmove(out + i + 1, out + i, (*n - i) * sizeof(*out));
        (*n)++;
    } else {
        memmove(out + i + 1, out + j, (*n - j) * sizeof(*out));
        *n -= j - i - 1;
    }
    out[i].off = a;
    out[i].len = b - a + 1;
    return 0;
}

/* Decimal digits at s[*i..n), saturating at UINT64_MAX: a longer number is as unsatisfiable
 * as UINT64_MAX, and no digit count can overflow. 1 when there was at least one digit. */
static int number(const char *s, size_t n, size_t *i, uint64_t *v)
{
    size_t start = *i;
    uint64_t d;

    *v = 0;
    for (; *i < n && is_digit(s[*i]); (*i)++) {
        d = (uint64_t)(s[*i] - '0');
        *v = *v > (UINT64_MAX - d) / 10 ? UINT64_MAX : *v * 10 + d;
    }
    return *i > start;
}

int http_ranges_parse(const char *value, size_t len, uint64_t size, struct http_range *out,
                      size_t max, size_t *n)
{
    size_t i = 6, specs = 0;
    uint64_t first, last, a, b;
    int has_first, has_last, suffix = 0, too_many = 0;

    *n = 0;
    /* RFC 9110 §14.1: range units are compared case-insensitively; we know only bytes. */
    if (!value || len < 6 || !ieq(value, 6, "bytes="))
        return 0;
    /* §14.1.1: range-set = 1#range-spec; each int-range "first-last" or "first-", each
     * suffix-range "-length". Any invalid spec makes the whole field invalid, and §14.2 lets
     * the server ignore it: 0. */
    while (i < len) {
        i = skip_ows(value, len, i);
        if (i < len && value[i] == ',') {
            i++;
            continue;
        }
        if (i == len)
            break;
        has_first = number(value, len, &i, &first);
        if (i >= len || value[i] != '-')
            goto ignore;
        i++;
        has_last = number(value, len, &i, &last);
        if ((!has_first && !has_last) || (has_first && has_last && last < first))
            goto ignore;
        i = skip_ows(value, len, i);
        if (i < len && value[i] != ',')
            goto ignore;
        specs++;
        if (too_many)
            continue; /* still reading, so a later syntax error is reported alike */
        if (!has_first) {
            /* §14.1.1: a suffix-range is satisfiable when its length is non-zero; one
             * longer than the representation means all of it. */
            if (last == 0)
                continue;
            if (size == 0) {
                suffix = 1;
                continue;
            }
            a = last >= size ? 0 : size - last;
            b = size - 1;
        } else {
            /* An int-range is satisfiable when first-pos is below the length; a last-pos
             * beyond it is cut to the end. */
            if (first >= size)
                continue;
            a = first;
            b = has_last && last < size ? last : size - 1;
        }
        /* §14.2: overlapping ranges, or many small ones, may be ignored or coalesced as
         * signs of a broken client or an attack; we coalesce (§15.3.7.2 allows it in any
         * order), and a set still needing more than max parts is ignored. */
        if (range_add(out, max, n, a, b) < 0)
            too_many = 1;
    }
    if (specs == 0 || too_many)
        goto ignore;
    if (*n)
        return 1;
    /* Nothing satisfiable: 416; but of a zero-length representation a non-zero suffix is
     * "satisfiable" with no bytes, which only a whole (empty) 200 can say. */
    return suffix ? 0 : -1;
ignore:
    *n = 0;
    return 0;
}
