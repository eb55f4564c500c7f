/*
 * From a parsed request to a response: routing to the admin endpoints or a
 * site's table, path mapping (index.html, trailing-slash redirects, 404.html,
 * the single-page-app fallback), conditional requests, ranges and
 * precompressed variants. Produces headers into a buffer and names the body
 * (memory or file descriptor); the server does the I/O.
 */
#include "edge/respond.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void status_line(struct http_response *r, int status, const char *date)
{
    r->status = status;
    buf_addf(r->hdr, "HTTP/1.1 %d %s\r\nServer: slipway\r\nDate: %s\r\n", status,
             http_reason(status), date);
}

static void finish_headers(struct http_response *r, const struct http_request *req)
{
    if (r->close)
        buf_adds(r->hdr, "Connection: close\r\n");
    else if (req && req->minor == 0)
        buf_adds(r->hdr, "Connection: keep-alive\r\n");
    buf_adds(r->hdr, "\r\n");
}

/* A short text response owned by the response (errors, redirects, admin). */
static void text(struct http_response *r, const struct http_request *req, int status,
                 const char *date, const char *extra_hdr, const char *body)
{
    status_line(r, status, date);
    size_t len = strlen(body);
    buf_addf(r->hdr,
             "Content-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n"
             "Content-Length: %zu\r\n%s",
             len, extra_hdr ? extra_hdr : "");
    finish_headers(r, req);
    if (!req || req->method != HTTP_HEAD) {
        buf_add(&r->own, body, len);
        r->body = r->own.data;
        r->body_len = len;
    }
}

/* If-None-Match: "*" or a list of entity tags, weak or strong (RFC 9110 §13.1.2
 * uses the weak comparison). */
static int etag_matches(const struct http_request *req, const struct rep *p)
{
    const char *s = req->if_none_match;
    if (!s)
        return 0;
    const char *end = s + req->if_none_match_len;
    const char *want = p->etag;
    size_t wlen = p->etag_len;
    while (s < end) {
        while (s < end && (*s == ' ' || *s == '\t' || *s == ','))
            s++;
        if (s < end && *s == '*')
            return 1;
        if (end - s >= 2 && s[0] == 'W' && s[1] == '/')
            s += 2;
        const char *tok = s;
        if (s < end && *s == '"') {
            s++;
            while (s < end && *s != '"')
                s++;
            if (s < end)
                s++;
        } else {
            while (s < end && *s != ',')
                s++;
        }
        if ((size_t)(s - tok) == wlen && !memcmp(tok, want, wlen))
            return 1;
    }
    return 0;
}

/* Does Accept-Encoding allow coding (present with q > 0)? */
static int accepts(const struct http_request *req, const char *coding)
{
    const char *s = req->accept_encoding, *end = s ? s + req->accept_encoding_len : NULL;
    size_t cl = strlen(coding);
    while (s && s < end) {
        while (s < end && (*s == ' ' || *s == '\t' || *s == ','))
            s++;
        const char *tok = s;
        while (s < end && *s != ',' && *s != ';' && *s != ' ' && *s != '\t')
            s++;
        int match = (size_t)(s - tok) == cl && !strncasecmp(tok, coding, cl);
        double q = 1;
        while (s < end && *s != ',') {
            /* weight = OWS ";" OWS "q=" qvalue, with "q" in either case
             * (RFC 9110 §12.4.2); s > tok here, so s[-1] is in the value. */
            if ((*s == 'q' || *s == 'Q') && s + 1 < end && s[1] == '=' &&
                (s[-1] == ';' || s[-1] == ' ' || s[-1] == '\t'))
                q = strtod(s + 2, NULL);
            s++;
        }
        if (match)
            return q > 0;
    }
    return 0;
}

/* Parses a single "bytes=a-b" range against size. 1: satisfiable range in
 * *off and *len; 0: ignore the header (absent, multiple or malformed: RFC 9110
 * §14.2 lets a server ignore it); -1: unsatisfiable (416). */
static int parse_range(const struct http_request *req, uint64_t size, uint64_t *off, uint64_t *len)
{
    const char *s = req->range;
    size_t n = req->range_len;
    if (!s || n < 7 || strncmp(s, "bytes=", 6) != 0 || memchr(s, ',', n))
        return 0;
    char tmp[64];
    if (n - 6 >= sizeof(tmp))
        return 0;
    memcpy(tmp, s + 6, n - 6);
    tmp[n - 6] = '\0';
    char *dash = strchr(tmp, '-');
    if (!dash)
        return 0;
    *dash = '\0';
    const char *a = tmp, *b = dash + 1;
    for (const char *p = a; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    for (const char *p = b; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    if (!*a && !*b)
        return 0;
    if (strlen(a) > 18 || strlen(b) > 18)
        return 0;
    if (!*a) { /* suffix: the last b bytes */
        uint64_t last = strtoull(b, NULL, 10);
        if (last == 0 || size == 0)
            return -1;
        if (last > size)
            last = size;
        *off = size - last;
        *len = last;
        return 1;
    }
    uint64_t first = strtoull(a, NULL, 10);
    uint64_t lastb = *b ? strtoull(b, NULL, 10) : size - 1;
    if (*b && lastb < first)
        return 0;
    if (first >= size)
        return -1;
    if (lastb >= size)
        lastb = size - 1;
    *off = first;
    *len = lastb - first + 1;
    return 1;
}

/* RFC 9110 §13.1.5: a Range is honoured only when an If-Range, if sent, names
 * the current representation by a strong entity tag; otherwise the whole body
 * is sent, so a client resuming a download across a deploy never splices two
 * releases. A date never matches: no Last-Modified is sent to compare it with. */
static int if_range_holds(const struct http_request *req, const struct rep *p)
{
    int i = http_find_header(req, "if-range");
    if (i < 0)
        return 1;
    const struct http_header *h = &req->headers[i];
    return h->value_len == p->etag_len && !memcmp(h->value, p->etag, p->etag_len);
}

static void serve_entry(struct http_response *r, const struct http_request *req, const char *date,
                        const struct entry *e, int status)
{
    int k = REP_IDENTITY;
    if (!req->range && status == 200) {
        if (e->has[REP_BR] && accepts(req, "br"))
            k = REP_BR;
        else if (e->has[REP_GZIP] && accepts(req, "gzip"))
            k = REP_GZIP;
    }
    const struct rep *p = &e->rep[k];
    if (status == 200 && etag_matches(req, p)) {
        status_line(r, 304, date);
        buf_add(r->hdr, p->hdr, p->hdr_len);
        finish_headers(r, req);
        return;
    }
    uint64_t off = 0, len = p->size;
    int range = status == 200 && if_range_holds(req, p) ? parse_range(req, p->size, &off, &len) : 0;
    if (range < 0) {
        status_line(r, 416, date);
        buf_addf(r->hdr, "Content-Range: bytes */%llu\r\nContent-Length: 0\r\n",
                 (unsigned long long)p->size);
        finish_headers(r, req);
        return;
    }
    status_line(r, range > 0 ? 206 : status, date);
    buf_add(r->hdr, p->hdr, p->hdr_len);
    if (range > 0)
        buf_addf(r->hdr, "Content-Range: bytes %llu-%llu/%llu\r\n", (unsigned long long)off,
                 (unsigned long long)(off + len - 1), (unsigned long long)p->size);
    buf_addf(r->hdr, "Accept-Ranges: bytes\r\nContent-Length: %llu\r\n", (unsigned long long)len);
    finish_headers(r, req);
    if (req->method == HTTP_HEAD)
        return;
    if (p->body) {
        r->body = p->body + off;
        r->body_len = len;
    } else {
        r->fd = p->fd;
        r->fd_off = (off_t)off;
        r->body_len = len;
    }
}

/* Appends a decoded path as a URI path: bytes that are not pchar or '/' (RFC
 * 3986 §3.3) are percent-encoded again, so a directory named "a?b" or "50%"
 * redirects to itself and not to a query or a bad escape. */
static void add_uri_path(struct buf *b, const char *path, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            (c != 0 && strchr("/-._~!$&'()*+,;=:@", c)))
            buf_add(b, &path[i], 1);
        else
            buf_addf(b, "%%%c%c", hex[c >> 4], hex[c & 15]);
    }
}

/* Maps a normalised path onto the table. */
static void serve_path(struct http_response *r, const struct http_request *req, const char *date,
                       const struct table *t, const char *path, size_t plen)
{
    char key[HTTP_MAX_LINE + 16];
    const char *p = path + 1; /* drop the leading '/' */
    size_t n = plen - 1;
    if (n + 11 >= sizeof(key)) {
        http_respond_error(r, 414, date);
        return;
    }
    memcpy(key, p, n);
    if (n == 0 || key[n - 1] == '/') {
        memcpy(key + n, "index.html", 10);
        n += 10;
    }
    key[n] = '\0';
    const struct entry *e = table_find(t, key, n);
    if (e) {
        serve_entry(r, req, date, e, 200);
        return;
    }
    /* "/docs" where "docs/index.html" exists: redirect so relative links work. */
    if (key[n - 1] != '/' && n + 11 < sizeof(key)) {
        memcpy(key + n, "/index.html", 11);
        if (table_find(t, key, n + 11)) {
            const char *q = memchr(req->target, '?', req->target_len);
            struct buf loc = BUF_INIT;
            buf_adds(&loc, "Location: ");
            add_uri_path(&loc, path, plen);
            buf_addf(&loc, "/%.*s\r\n", q ? (int)(req->target + req->target_len - q) : 0,
                     q ? q : "");
            text(r, req, 301, date, loc.data, "moved\n");
            buf_free(&loc);
            return;
        }
    }
    if (t->fallback) {
        serve_entry(r, req, date, t->fallback, 200);
        return;
    }
    if (t->not_found) {
        serve_entry(r, req, date, t->not_found, 404);
        return;
    }
    text(r, req, 404, date, NULL, "404 Not Found\n");
}

/* /_slipway/ready. The admin listener says what every environment is doing
 * and why one failed (release and blob ids included); a public listener, which
 * a load balancer polls, says only whether this server is ready. */
static void ready(struct http_response *r, const struct http_request *req, const char *date,
                  struct edge *e, int detail)
{
    struct buf b = BUF_INIT;
    int ok = atomic_load(&e->ready);
    pthread_mutex_lock(&e->err_lock);
    for (int i = 0; i < EDGE_MAX_SITES; i++) {
        struct site *s = &e->sites[i];
        if (!s->name[0] || !atomic_load(&s->active))
            continue;
        int st = atomic_load(&s->live_state);
        if (st < 0)
            ok = 0;
        if (detail)
            buf_addf(&b, "%s: %s%s%s\n", s->name,
                     st > 0    ? "serving"
                     : st == 0 ? "no release deployed"
                               : "error",
                     e->site_error[i][0] ? ": " : "", e->site_error[i]);
    }
    pthread_mutex_unlock(&e->err_lock);
    buf_adds(&b, ok ? "ready\n" : "not ready\n");
    text(r, req, ok ? 200 : 503, date, NULL, b.data);
    buf_free(&b);
}

static void admin(struct http_response *r, const struct http_request *req, const char *date,
                  struct edge *e, const char *path, int is_admin)
{
    if (!strcmp(path, "/_slipway/health")) {
        text(r, req, 200, date, NULL, "ok\n");
        return;
    }
    if (!strcmp(path, "/_slipway/ready")) {
        ready(r, req, date, e, is_admin);
        return;
    }
    /* Everything else (metrics, and what later issues add) is for operators:
     * only on the admin listener, which exists only with --admin. */
    if (is_admin && !strcmp(path, "/_slipway/metrics")) {
        struct buf b = BUF_INIT;
        metrics_render(e, &b);
        status_line(r, 200, date);
        buf_addf(r->hdr,
                 "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                 "Cache-Control: no-store\r\nContent-Length: %zu\r\n",
                 b.len);
        finish_headers(r, req);
        if (req->method != HTTP_HEAD) {
            buf_add(&r->own, b.data, b.len);
            r->body = r->own.data;
            r->body_len = b.len;
        }
        buf_free(&b);
        return;
    }
    text(r, req, 404, date, NULL, "404 Not Found\n");
}

void respond(struct edge *e, int worker, const struct listener_info *li,
             const struct http_request *req, const char *date, struct http_response *r)
{
    r->tag[0] = li->site;
    if (req->method == HTTP_OTHER) {
        /* RFC 9110 §15.5.6: 405 carries Allow. */
        text(r, req, 405, date, "Allow: GET, HEAD\r\n", "405 Method Not Allowed\n");
        return;
    }
    /* As long as the longest request line can carry: a long path that the
     * parser let through is a path, found or not, never a 400. */
    char path[HTTP_MAX_LINE + 1];
    int plen = http_path_normalize(req->target, req->target_len, path, sizeof(path));
    if (plen < 0) {
        http_respond_error(r, -plen, date);
        return;
    }
    if (li->kind == LISTEN_ADMIN || !strncmp(path, "/_slipway/", 10)) {
        r->tag[0] = -1;
        admin(r, req, date, e, path, li->kind == LISTEN_ADMIN);
        return;
    }
    struct site *s = &e->sites[li->site];
    struct table *t = atomic_load_explicit(li->kind == LISTEN_PREVIEW ? &s->preview : &s->live,
                                           memory_order_acquire);
    if (!t) {
        char msg[256];
        int why = atomic_load(&s->load_failure);
        if (why)
            snprintf(msg, sizeof(msg), "slipway: %s cannot serve: %s; nothing older is loaded\n",
                     s->name, edge_failure_text(why));
        else
            snprintf(msg, sizeof(msg),
                     li->kind == LISTEN_PREVIEW
                         ? "slipway: the idle slot of %s holds no release yet\n"
                         : "slipway: %s has no live release yet; deploy one with 'slipway "
                           "deploy DIR --env %s'\n",
                     s->name, s->name);
        text(r, req, 503, date, "Retry-After: 5\r\n", msg);
        return;
    }
    /* Held until the response is written: the watcher frees a retired table
     * only when every worker's count for it is zero. */
    atomic_fetch_add_explicit(&t->refs[worker].n, 1, memory_order_relaxed);
    r->hold = t;
    r->tag[1] = t->slot;
    serve_path(r, req, date, t, path, (size_t)plen);
}
