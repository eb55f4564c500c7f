/*
 * From a parsed request to a response: routing to the admin endpoints or a
 * site's table, path mapping (index.html, trailing-slash redirects, 404.html,
 * the single-page-app fallback), conditional requests, ranges and
 * precompressed variants. Produces headers into a buffer and names the body
 * (memory or file descriptor); the server does the I/O.
 */
#include "edge/respond.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The lines every response has. No printf on the hot path: formatting this line and the
 * Content-Length with buf_addf took a third of a small request's instructions (callgrind,
 * bench/http-callgrind.sh). */
static void status_line(struct http_response *r, int status, const char *date)
{
    r->status = status;
    buf_adds(r->hdr, "HTTP/1.1 ");
    buf_add_u64(r->hdr, (uint64_t)status);
    buf_add(r->hdr, " ", 1);
    buf_adds(r->hdr, http_reason(status));
    buf_adds(r->hdr, "\r\nServer: slipway\r\nDate: ");
    buf_adds(r->hdr, date);
    buf_add(r->hdr, "\r\n", 2);
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
    /* A missing path is as hot as a found one (crawlers, broken links): no printf. */
    buf_adds(r->hdr, "Content-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n"
                     "Content-Length: ");
    buf_add_u64(r->hdr, len);
    buf_add(r->hdr, "\r\n", 2);
    if (extra_hdr)
        buf_adds(r->hdr, extra_hdr);
    finish_headers(r, req);
    if (!req || req->method != HTTP_HEAD) {
        buf_add(&r->own, body, len);
        r->body = r->own.data;
        r->body_len = len;
    }
}

/* Parts of a multipart/byteranges answer: more, even after coalescing, and the Range is
 * ignored (RFC 9110 §14.2). With coalescing, a response never carries more than the body's
 * bytes plus this many part headers. */
#define MAX_RANGES 32
/* Bytes a multipart answer may read from a cached file into memory (bodies held in memory
 * are copied whatever their size, which is at most the table's small-body bound). Beyond it
 * the whole body is sent: http_response has one file range, and a copy is held per
 * connection until written, so this bounds what slow clients can pin. */
#define MULTIPART_FILE_MAX (256 * 1024)

/* RFC 9110 §13.2.2: the preconditions of a GET or HEAD, in their order. Returns 0 when the
 * request goes on, else the status that answers it (412 or 304). */
static int preconditions(const struct http_request *req, const struct rep *p)
{
    time_t t;

    /* 1: If-Match, by the strong comparison ("*" matches: the file exists). A malformed
     * list matches nothing, so it fails too. 2: else If-Unmodified-Since, ignored when not
     * a valid HTTP-date (§13.1.4). */
    if (req->if_match) {
        if (http_etag_list_match(req->if_match, req->if_match_len, p->etag, p->etag_len, 0) != 1)
            return 412;
    } else if (req->if_unmodified_since &&
               http_date_parse(req->if_unmodified_since, req->if_unmodified_since_len, &t) == 0 &&
               p->mtime > t) {
        return 412;
    }
    /* 3: If-None-Match, by the weak comparison; for GET and HEAD a match is 304. 4: else
     * If-Modified-Since, ignored when not a valid date (§13.1.3): 304 unless modified since. */
    if (req->if_none_match) {
        if (http_etag_list_match(req->if_none_match, req->if_none_match_len, p->etag, p->etag_len,
                                 1) == 1)
            return 304;
    } else if (req->if_modified_since &&
               http_date_parse(req->if_modified_since, req->if_modified_since_len, &t) == 0 &&
               p->mtime <= t) {
        return 304;
    }
    return 0;
}

/* Appends len bytes of fd from off to b. -1 on a read error or a file shorter than that. */
static int read_at(int fd, struct buf *b, uint64_t off, uint64_t len)
{
    buf_grow(b, (size_t)len);
    while (len > 0) {
        ssize_t k = pread(fd, b->data + b->len, (size_t)len, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        b->len += (size_t)k;
        off += (uint64_t)k;
        len -= (uint64_t)k;
    }
    b->data[b->len] = '\0';
    return 0;
}

/*
 * RFC 9110 §14.6: several ranges as one multipart/byteranges body, built in r->own, each part
 * with its Content-Type and Content-Range. The boundary is the body's SHA-256 (the ETag's hex
 * digits): a body cannot contain a delimiter made of its own hash. Returns 0 when answered, -1
 * when the parts are too large to copy: the caller sends the whole body (§14.2).
 */
static int multipart(struct http_response *r, const struct http_request *req, const char *date,
                     const struct rep *p, const struct http_range *rg, size_t n)
{
    const char *bnd = p->etag + 1; /* table.c writes "\"<sha256>\"" */
    int blen = (int)p->etag_len - 2;
    uint64_t bytes = 0;
    struct buf *b = &r->own;

    for (size_t i = 0; i < n; i++)
        bytes += rg[i].len;
    if (!p->body && bytes > MULTIPART_FILE_MAX)
        return -1;
    buf_grow(b, (size_t)bytes + n * 256);
    for (size_t i = 0; i < n; i++) {
        buf_addf(b, "%s--%.*s\r\nContent-Type: %.*s\r\nContent-Range: bytes %llu-%llu/%llu\r\n\r\n",
                 i ? "\r\n" : "", blen, bnd, (int)p->type_len, p->type,
                 (unsigned long long)rg[i].off, (unsigned long long)(rg[i].off + rg[i].len - 1),
                 (unsigned long long)p->size);
        if (p->body) {
            buf_add(b, p->body + rg[i].off, (size_t)rg[i].len);
        } else if (read_at(p->fd, b, rg[i].off, rg[i].len) < 0) {
            buf_reset(b);
            http_respond_error(r, 500, date);
            return 0;
        }
    }
    buf_addf(b, "\r\n--%.*s--\r\n", blen, bnd);
    status_line(r, 206, date);
    buf_addf(r->hdr, "Content-Type: multipart/byteranges; boundary=%.*s\r\n", blen, bnd);
    buf_add(r->hdr, p->hdr + p->meta_off, p->hdr_len - p->meta_off);
    buf_addf(r->hdr, "Accept-Ranges: bytes\r\nContent-Length: %zu\r\n", b->len);
    finish_headers(r, req);
    r->body = b->data;
    r->body_len = b->len;
    return 0;
}

static void serve_entry(struct http_response *r, const struct http_request *req, const char *date,
                        const struct table *t, const struct entry *e, int status)
{
    int k = REP_IDENTITY;
    if (!req->range && status == 200) {
        if (e->has[REP_BR] &&
            http_coding_accepted(req->accept_encoding, req->accept_encoding_len, "br") > 0)
            k = REP_BR;
        else if (e->has[REP_GZIP] &&
                 http_coding_accepted(req->accept_encoding, req->accept_encoding_len, "gzip") > 0)
            k = REP_GZIP;
    }
    const struct rep *p = &e->rep[k];
    /* §13.2.1: preconditions apply only where the answer would be 2xx (not to 404.html). */
    int pre = status == 200 ? preconditions(req, p) : 0;
    if (pre == 412) {
        text(r, req, 412, date, NULL, "412 Precondition Failed\n");
        return;
    }
    if (pre == 304) {
        status_line(r, 304, date);
        buf_add(r->hdr, p->hdr + p->meta_off, p->hdr_len - p->meta_off);
        finish_headers(r, req);
        return;
    }
    /* §14.2: Range is defined for GET alone. §13.1.5: it is honoured only when an If-Range,
     * if sent, names this representation (strong tag, or exactly its Last-Modified), so a
     * client resuming a download across a deploy never splices two releases. */
    struct http_range rg[MAX_RANGES];
    size_t nr = 0;
    int range = 0;
    if (status == 200 && req->method == HTTP_GET && req->range &&
        (!req->if_range ||
         http_if_range_match(req->if_range, req->if_range_len, p->etag, p->etag_len, p->mtime)))
        range = http_ranges_parse(req->range, req->range_len, p->size, rg, MAX_RANGES, &nr);
    if (range < 0) {
        status_line(r, 416, date);
        buf_addf(r->hdr, "Content-Range: bytes */%llu\r\nContent-Length: 0\r\n",
                 (unsigned long long)p->size);
        finish_headers(r, req);
        return;
    }
    if (range > 0 && nr > 1) {
        if (multipart(r, req, date, p, rg, nr) == 0)
            return;
        range = 0;
    }
    if (range <= 0)
        rg[0] = (struct http_range){0, p->size}; /* the whole body */
    uint64_t off = rg[0].off, len = rg[0].len;
    status_line(r, range > 0 ? 206 : status, date);
    buf_add(r->hdr, p->hdr, p->hdr_len);
    if (range > 0)
        buf_addf(r->hdr, "Content-Range: bytes %llu-%llu/%llu\r\n", (unsigned long long)off,
                 (unsigned long long)(off + len - 1), (unsigned long long)p->size);
    buf_adds(r->hdr, "Accept-Ranges: bytes\r\nContent-Length: ");
    buf_add_u64(r->hdr, len);
    buf_add(r->hdr, "\r\n", 2);
    finish_headers(r, req);
    if (req->method == HTTP_HEAD)
        return;
    uint64_t at = p->body ? (uint64_t)(p->body - t->body_block) + off : off;
    /* A range that starts off a page (block_place) is copied: sendfile would cost more. */
    if (p->body && (p->fd < 0 || len < EDGE_SENDFILE_MIN || at % t->page != 0)) {
        r->body = p->body + off;
        r->body_len = len;
    } else {
        /* From memory, the body's place in the table's block (see block_alloc). */
        r->fd = p->fd;
        r->fd_off = (off_t)at;
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

/*
 * A 404 from t for release path key is a regressed one when t is its site's live
 * release and the release that one replaced had key as a file (docs/edge.md, "Regressed
 * 404s"): the response's slot tag says so, for edge_done to count. Only here, on the 404 path,
 * and from what serve_path holds anyway, so a found path pays nothing for it. The set is read
 * only until this returns, before the worker's next quiescent point: the watcher frees a
 * retired one only after that.
 */
static void check_regressed(struct http_response *r, const struct table *t, const char *key,
                            size_t n)
{
    const struct site *s = t->owner;
    /* The preview address's release has replaced nothing (it is not live). */
    if (atomic_load_explicit(&s->live, memory_order_acquire) != t)
        return;
    const struct pathset *p = atomic_load_explicit(&s->replaced, memory_order_acquire);
    if (p && pathset_has(p, key, n))
        r->tag[1] = t->slot + EDGE_TAG_REGRESSED;
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
        serve_entry(r, req, date, t, e, 200);
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
        serve_entry(r, req, date, t, t->fallback, 200);
        return;
    }
    check_regressed(r, t, key, n);
    if (t->not_found) {
        serve_entry(r, req, date, t, t->not_found, 404);
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

/* An admin answer built into b (copied: b stays the caller's). */
static void generated(struct http_response *r, const struct http_request *req, const char *date,
                      int status, const char *type, const struct buf *b)
{
    status_line(r, status, date);
    buf_addf(r->hdr, "Content-Type: %s\r\nCache-Control: no-store\r\nContent-Length: %zu\r\n", type,
             b->len);
    finish_headers(r, req);
    if (req->method != HTTP_HEAD) {
        buf_add(&r->own, b->data, b->len);
        r->body = r->own.data;
        r->body_len = b->len;
    }
}

/* POST /_slipway/hooks/NAME on the admin listener: the caller's hook answers
 * (edge_opts.hook). RFC 9110 §11.6.1: a 401 names the scheme it wants. */
static void hook(struct http_response *r, const struct http_request *req, const char *date,
                 struct edge *e, const char *path)
{
    struct buf b = BUF_INIT;
    int status = e->o->hook(e->o->hook_arg, path, req, &b);
    status_line(r, status, date);
    buf_addf(r->hdr,
             "Content-Type: application/json\r\nCache-Control: no-store\r\n%s"
             "Content-Length: %zu\r\n",
             status == 401 ? "WWW-Authenticate: Bearer realm=\"slipway\"\r\n" : "", b.len);
    finish_headers(r, req);
    buf_add(&r->own, b.data, b.len);
    r->body = r->own.data;
    r->body_len = b.len;
    buf_free(&b);
}

/* /_slipway/health: 200 while the process runs, and the store's status. A
 * store that cannot be reached does not make the node unhealthy (it serves
 * what it has), so the status is in the body, for operators: "store: ok",
 * or "store: degraded since TIME (for D)" and, on the admin listener only
 * (it names the bucket and endpoint), the last error, escaped: it may hold
 * the service's own text. */
static void health(struct http_response *r, const struct http_request *req, const char *date,
                   struct edge *e, int detail)
{
    struct store_status ss;
    store_status(e->o->store, &ss);
    struct buf b = BUF_INIT;
    buf_adds(&b, "ok\nstore: ");
    if (!ss.degraded) {
        buf_adds(&b, "ok\n");
    } else {
        char when[40], d[32];
        time_format_iso(ss.since_ms, when, sizeof(when));
        duration_format(time_now_ms() - ss.since_ms, d, sizeof(d));
        buf_addf(&b, "degraded since %s (for %s)\n", when, d);
        if (detail) {
            buf_adds(&b, "store error: ");
            buf_add_escaped(&b, ss.error);
            buf_adds(&b, "\n");
        }
    }
    text(r, req, 200, date, NULL, b.data);
    buf_free(&b);
}

static void admin(struct http_response *r, const struct http_request *req, const char *date,
                  struct edge *e, const char *path, int is_admin)
{
    if (!strcmp(path, "/_slipway/health")) {
        health(r, req, date, e, is_admin);
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
        generated(r, req, date, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
        buf_free(&b);
        return;
    }
    if (is_admin && e->o->hook && !strncmp(path, "/_slipway/hooks/", 16)) {
        text(r, req, 405, date, "Allow: POST\r\n", "405 Method Not Allowed\n");
        return;
    }
    if (is_admin && !strcmp(path, "/_slipway/latency")) {
        const char *q = memchr(req->target, '?', req->target_len);
        size_t qlen = q ? req->target_len - (size_t)(q + 1 - req->target) : 0;
        struct buf b = BUF_INIT;
        int status = metrics_latency(e, q ? q + 1 : "", qlen, &b);
        generated(r, req, date, status, "application/json", &b);
        buf_free(&b);
        return;
    }
    text(r, req, 404, date, NULL, "404 Not Found\n");
}

void respond(struct edge *e, int worker, const struct listener_info *li,
             const struct http_request *req, const char *date, struct http_response *r)
{
    r->tag[0] = li->site;
    if (req->method == HTTP_OTHER && li->kind == LISTEN_ADMIN && e->o->hook &&
        req->method_len == 4 && !memcmp(req->method_str, "POST", 4)) {
        char hpath[HTTP_MAX_LINE + 1];
        int hlen = http_path_normalize(req->target, req->target_len, hpath, sizeof(hpath));
        r->tag[0] = -1;
        if (hlen < 0)
            http_respond_error(r, -hlen, date);
        else if (!strncmp(hpath, "/_slipway/hooks/", 16))
            hook(r, req, date, e, hpath);
        else
            text(r, req, 405, date, "Allow: GET, HEAD\r\n", "405 Method Not Allowed\n");
        return;
    }
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
