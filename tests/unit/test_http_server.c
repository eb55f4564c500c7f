/*
 * The http server over real sockets: http_server on 127.0.0.1 (ports reserved with
 * tests/e2e/port.py, as the e2e tests do) with a test handler that reads bodies (body_max
 * 1024) and one that reads none, as the edge. Clients are plain sockets with bounded waits.
 * Covered: Content-Length and chunked bodies, 413 declared and 413 while a chunked body
 * arrives, 100-continue, the smuggling combinations, a late body (408), pipelining after a
 * body, streamed responses (chunked framing checked byte by byte, pieces produced over time
 * by another thread and woken with http_stream_wake, HTTP/1.0 close-delimited, HEAD, a
 * producer error, backpressure from a client that stops reading, a client that leaves).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BODY_MAX 1024
#define WAIT_MS 5000

static int port_body, port_plain;
static struct http_server *srv;

static atomic_int handled, done_calls, done_incomplete, last_status;
static atomic_ullong big_made;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the test handler ------------------------------------------------------------ */

/* A stream fed by a thread of its own: `left` pieces, one every delay_ms, each followed by
 * a wake. The server takes them with feed_stream on its worker. */
struct feed {
    pthread_mutex_t mu;
    char pending[512];
    size_t len;
    int left, finished, delay_ms;
    atomic_int stop;
    pthread_t th;
    struct http_stream *wake;
};

static void *feed_main(void *arg)
{
    struct feed *f = arg;
    for (int i = 0;; i++) {
        /* Sleep in small steps, so done() never waits long to join. */
        for (int t = 0; t < f->delay_ms && !atomic_load(&f->stop); t += 5)
            sleep_ms(5);
        if (atomic_load(&f->stop))
            return NULL;
        pthread_mutex_lock(&f->mu);
        int n = snprintf(f->pending + f->len, sizeof(f->pending) - f->len, "piece %d\n", i);
        f->len += (size_t)n;
        f->finished = --f->left == 0;
        int last = f->finished;
        pthread_mutex_unlock(&f->mu);
        http_stream_wake(f->wake);
        if (last)
            return NULL;
    }
}

static int feed_stream(void *arg, char *out, size_t room, size_t *len)
{
    struct feed *f = arg;
    pthread_mutex_lock(&f->mu);
    size_t k = f->len < room ? f->len : room;
    memcpy(out, f->pending, k);
    memmove(f->pending, f->pending + k, f->len - k);
    f->len -= k;
    int rc = f->finished && f->len == 0 ? HTTP_STREAM_DONE : HTTP_STREAM_WAIT;
    pthread_mutex_unlock(&f->mu);
    *len = k;
    return rc;
}

/* A large body made as fast as the socket takes it: never a WAIT. */
struct big {
    uint64_t total, made;
};

static int big_stream(void *arg, char *out, size_t room, size_t *len)
{
    struct big *b = arg;
    size_t k = b->total - b->made < room ? (size_t)(b->total - b->made) : room;
    memset(out, 'x', k);
    b->made += k;
    atomic_store(&big_made, b->made);
    *len = k;
    return b->made == b->total ? HTTP_STREAM_DONE : HTTP_STREAM_MORE;
}

/* One piece, then a failure. */
static int fail_stream(void *arg, char *out, size_t room, size_t *len)
{
    int *calls = arg;
    if ((*calls)++ > 0)
        return HTTP_STREAM_ERROR;
    memcpy(out, "partial", 7);
    *len = 7;
    return HTTP_STREAM_MORE;
}

struct hold {
    struct feed *f;
    struct big b;
    int calls;
};

static int target_is(const struct http_request *req, const char *path)
{
    size_t n = strlen(path);
    return req->target_len >= n && memcmp(req->target, path, n) == 0 &&
           (req->target_len == n || req->target[n] == '?');
}

static long query_int(const struct http_request *req, const char *key)
{
    char t[256];
    size_t n = req->target_len < sizeof(t) - 1 ? req->target_len : sizeof(t) - 1;
    memcpy(t, req->target, n);
    t[n] = '\0';
    const char *p = strstr(t, key);
    return p ? strtol(p + strlen(key), NULL, 10) : 0;
}

static void simple(struct http_response *res, int status, const char *body, size_t len)
{
    res->status = status;
    buf_addf(res->hdr, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s\r\n", status,
             http_reason(status), len, res->close ? "Connection: close\r\n" : "");
    buf_add(&res->own, body, len);
    res->body = res->own.data;
    res->body_len = len;
}

static void test_handle(void *arg, int worker, const struct http_request *req, const char *date,
                        struct http_response *res)
{
    atomic_fetch_add(&handled, 1);
    if (target_is(req, "/echo")) {
        simple(res, 200, req->body ? req->body : "", req->body_len);
        return;
    }
    if (target_is(req, "/hello")) {
        simple(res, 200, "hello\n", 6);
        return;
    }
    struct hold *h = xcalloc(1, sizeof(*h));
    res->hold = h;
    res->status = 200;
    buf_adds(res->hdr, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
    if (target_is(req, "/stream")) {
        struct feed *f = xcalloc(1, sizeof(*f));
        pthread_mutex_init(&f->mu, NULL);
        f->left = (int)query_int(req, "n=");
        f->delay_ms = (int)query_int(req, "delay=");
        assert_int_equal(http_stream_new(&f->wake, NULL), 0);
        h->f = f;
        res->stream = feed_stream;
        res->stream_arg = f;
        res->wake = f->wake;
        assert_int_equal(pthread_create(&f->th, NULL, feed_main, f), 0);
    } else if (target_is(req, "/big")) {
        h->b.total = (uint64_t)query_int(req, "n=");
        res->stream = big_stream;
        res->stream_arg = &h->b;
    } else if (target_is(req, "/fail")) {
        res->stream = fail_stream;
        res->stream_arg = &h->calls;
    } else {
        buf_reset(res->hdr);
        simple(res, 404, "", 0);
    }
}

static void test_done(void *arg, int worker, const struct http_exchange *x,
                      struct http_response *res)
{
    struct hold *h = res->hold;
    if (h && h->f) {
        atomic_store(&h->f->stop, 1);
        pthread_join(h->f->th, NULL);
        http_stream_free(h->f->wake);
        pthread_mutex_destroy(&h->f->mu);
        free(h->f);
    }
    free(h);
    atomic_store(&last_status, res->status);
    if (!x->completed)
        atomic_fetch_add(&done_incomplete, 1);
    atomic_fetch_add(&done_calls, 1);
}

static const struct http_handler body_handler = {
    .handle = test_handle, .done = test_done, .body_max = BODY_MAX};
static const struct http_handler plain_handler = {.handle = test_handle, .done = test_done};

/* ---- a client with bounded waits ------------------------------------------------------ */

struct client {
    int fd;
    size_t len;
    char buf[1 << 16];
};

struct resp {
    int status;
    char head[4096];
    char body[8192];
    size_t body_len;
    int chunks;                /* chunked: data chunks seen */
    int complete;              /* the body ended as its framing says */
    int64_t first_ms, last_ms; /* when the first and the last body bytes arrived */
};

static struct client *cl_open(int port)
{
    struct client *c = xcalloc(1, sizeof(*c));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c->fd >= 0);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return c;
}

static void cl_close(struct client *c)
{
    close(c->fd);
    free(c);
}

static void cl_send(struct client *c, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);
        assert_true(k > 0);
        s += k;
        n -= (size_t)k;
    }
}
#define SEND(c, lit) cl_send((c), (lit), sizeof(lit) - 1)

/* Reads more into the buffer, waiting at most WAIT_MS (a longer wait fails the test).
 * Returns the bytes read, 0 at the end of the stream (a reset counts as the end). */
static size_t cl_more(struct client *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, WAIT_MS), 1);
    assert_true(c->len < sizeof(c->buf));
    ssize_t k = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (k < 0 && errno == ECONNRESET)
        return 0;
    assert_true(k >= 0);
    c->len += (size_t)k;
    return (size_t)k;
}

static void cl_take(struct client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* The end of the line starting at c->buf[0], reading until it is there. 0 at EOF. */
static char *cl_line(struct client *c)
{
    char *e;
    while (!(e = memmem(c->buf, c->len, "\r\n", 2)))
        if (cl_more(c) == 0)
            return NULL;
    return e;
}

static int cl_need(struct client *c, size_t n)
{
    while (c->len < n)
        if (cl_more(c) == 0)
            return 0;
    return 1;
}

static void body_add(struct resp *r, const char *p, size_t n)
{
    assert_true(r->body_len + n <= sizeof(r->body));
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    if (!r->first_ms && n)
        r->first_ms = mono_ms();
    r->last_ms = mono_ms();
}

/* Reads one response. The body is framed as the head says: Content-Length, chunked (each
 * chunk-size line and CRLF checked exactly as the server must write them), or the close. A
 * 1xx or the answer to HEAD has none. */
static void cl_response(struct client *c, struct resp *r, int head_request)
{
    char *e;
    memset(r, 0, sizeof(*r));
    while (!(e = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        assert_true(cl_more(c) > 0);
    size_t hl = (size_t)(e - c->buf) + 4;
    assert_true(hl < sizeof(r->head));
    memcpy(r->head, c->buf, hl);
    r->head[hl] = '\0';
    cl_take(c, hl);
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
    const char *cl = strcasestr(r->head, "\r\nContent-Length: ");
    int chunked = strcasestr(r->head, "\r\nTransfer-Encoding: chunked\r\n") != NULL;
    if (r->status < 200 || head_request) {
        r->complete = 1;
        return;
    }
    if (cl) {
        size_t n = strtoul(cl + 18, NULL, 10);
        r->complete = cl_need(c, n);
        assert_true(r->complete);
        body_add(r, c->buf, n);
        cl_take(c, n);
        return;
    }
    if (!chunked) { /* close-delimited */
        while (cl_more(c) > 0)
            ;
        body_add(r, c->buf, c->len);
        cl_take(c, c->len);
        r->complete = 1;
        return;
    }
    for (;;) {
        if (!(e = cl_line(c)))
            return; /* closed without the last chunk */
        char *end;
        unsigned long n = strtoul(c->buf, &end, 16);
        assert_ptr_equal(end, e); /* hex digits and CRLF, nothing else */
        assert_true(end > c->buf);
        cl_take(c, (size_t)(e - c->buf) + 2);
        if (!cl_need(c, n + 2))
            return;
        assert_memory_equal(c->buf + n, "\r\n", 2);
        if (n == 0) { /* last-chunk, no trailers */
            cl_take(c, 2);
            r->complete = 1;
            return;
        }
        body_add(r, c->buf, n);
        r->chunks++;
        cl_take(c, n + 2);
    }
}

/* The server closes the connection now, with nothing more sent. */
static void cl_expect_closed(struct client *c)
{
    assert_int_equal(cl_more(c), 0);
    assert_int_equal(c->len, 0);
}

static int wait_for(atomic_int *v, int want)
{
    int64_t end = mono_ms() + WAIT_MS;
    while (atomic_load(v) < want && mono_ms() < end)
        sleep_ms(10);
    return atomic_load(v) >= want;
}

/* ---- the server ------------------------------------------------------------------------ */

static int reserve_port(void)
{
    char cmd[128];
    int port = 0;
    snprintf(cmd, sizeof(cmd), "python3 tests/e2e/port.py %d", (int)getpid());
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    if (fscanf(p, "%d", &port) != 1)
        port = 0;
    pclose(p);
    return port;
}

static int setup(void **state)
{
    struct http_opts o;
    struct sw_err err = {0};
    char a1[64], a2[64];

    port_body = reserve_port();
    port_plain = reserve_port();
    if (!port_body || !port_plain) {
        fprintf(stderr, "cannot reserve ports with tests/e2e/port.py\n");
        return -1;
    }
    snprintf(a1, sizeof(a1), "127.0.0.1:%d", port_body);
    snprintf(a2, sizeof(a2), "127.0.0.1:%d", port_plain);
    struct http_listener ls[] = {{a1, "test", &body_handler, NULL},
                                 {a2, "test", &plain_handler, NULL}};
    http_opts_init(&o);
    o.workers = 2;
    o.body_timeout_ms = 300;
    if (http_server_new(&o, &srv, &err) || http_server_listen(srv, ls, 2, &err) ||
        http_server_start(srv, &err)) {
        fprintf(stderr, "server: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    http_server_stop(srv);
    http_server_free(srv);
    return 0;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_content_length_body(void **state)
{
    struct client *c = cl_open(port_body);
    struct resp r;
    char big[BODY_MAX + 200];
    int n0 = atomic_load(&handled);

    SEND(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 11);
    assert_memory_equal(r.body, "hello world", 11);
    /* In pieces, with pauses: the handler still runs once, with all of it. */
    SEND(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n");
    sleep_ms(50);
    SEND(c, "hello");
    sleep_ms(50);
    SEND(c, " world");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, "hello world", 11);
    /* Exactly body_max. */
    int n = snprintf(big, sizeof(big),
                     "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", BODY_MAX);
    memset(big + n, 'b', BODY_MAX);
    cl_send(c, big, (size_t)n + BODY_MAX);
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, BODY_MAX);
    assert_int_equal(r.body[BODY_MAX - 1], 'b');
    assert_int_equal(atomic_load(&handled) - n0, 3);
    cl_close(c);
}

static void test_chunked_body(void **state)
{
    struct client *c = cl_open(port_body);
    struct resp r;

    SEND(c, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    sleep_ms(30);
    SEND(c, "lo\r\n6;note=\"a;b\"\r\n wor");
    sleep_ms(30);
    SEND(c, "ld\r\n0\r\nX-Trailer: dropped\r\n\r\n");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 11);
    assert_memory_equal(r.body, "hello world", 11);
    /* An empty chunked body. */
    SEND(c, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    cl_close(c);
}

static void test_too_large(void **state)
{
    struct client *c;
    struct resp r;
    char chunk[BODY_MAX + 16];
    int n0;

    /* Declared too large: 413 before any of the body is sent, and close. */
    n0 = atomic_load(&handled);
    c = cl_open(port_body);
    SEND(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1025\r\n\r\n");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 413);
    cl_expect_closed(c);
    cl_close(c);
    /* With Expect: 100-continue the answer is the 413, never a 100. */
    c = cl_open(port_body);
    SEND(c, "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
            "Content-Length: 999999999999\r\n\r\n");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 413);
    cl_expect_closed(c);
    cl_close(c);
    /* Chunked: 413 as soon as a chunk-size takes the body past body_max. */
    c = cl_open(port_body);
    SEND(c, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    int n = snprintf(chunk, sizeof(chunk), "%x\r\n", BODY_MAX - 4);
    memset(chunk + n, 'c', BODY_MAX - 4);
    memcpy(chunk + n + BODY_MAX - 4, "\r\n", 2);
    cl_send(c, chunk, (size_t)n + BODY_MAX - 2);
    SEND(c, "5\r\n");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 413);
    cl_expect_closed(c);
    cl_close(c);
    assert_int_equal(atomic_load(&handled), n0);
}

/* A client that sends its body without waiting (curl does, without Expect) still reads
 * the 413: the server reads off what follows before it closes, instead of closing on
 * unread bytes, which would reset the connection and destroy the response. The same
 * for a 400 followed by more bytes on the plain listener. */
static void test_lingering_close(void **state)
{
    static char body[96 * 1024];
    struct resp r;
    memset(body, 'b', sizeof(body));
    for (int round = 0; round < 2; round++) {
        struct client *c = cl_open(round ? port_plain : port_body);
        if (round)
            SEND(c, "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n");
        else
            SEND(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 98304\r\n\r\n");
        cl_send(c, body, sizeof(body));
        cl_response(c, &r, 0);
        assert_int_equal(r.status, round ? 400 : 413);
        /* Then the end of the stream, never a reset: a reset would have discarded the
         * response had it still been in the server's send queue. And the client may go
         * on sending while the server reads off. */
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, WAIT_MS), 1);
        errno = 0;
        assert_int_equal(recv(c->fd, c->buf, sizeof(c->buf), 0), 0);
        cl_send(c, body, 4096);
        shutdown(c->fd, SHUT_WR);
        cl_close(c);
    }
}

static void test_continue(void **state)
{
    struct client *c = cl_open(port_body);
    struct resp r;

    SEND(c, "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 100);
    assert_string_equal(r.head, "HTTP/1.1 100 Continue\r\n\r\n");
    SEND(c, "hello");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, "hello", 5);
    /* The body sent along with the head needs no 100 (RFC 9110 §10.1.1). */
    SEND(c,
         "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, "hi", 2);
    /* Chunked too. */
    SEND(c, "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
            "Transfer-Encoding: chunked\r\n\r\n");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 100);
    SEND(c, "3\r\nabc\r\n0\r\n\r\n");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, "abc", 3);
    cl_close(c);
    /* HTTP/1.0: the expectation is ignored. */
    c = cl_open(port_body);
    SEND(c, "POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    sleep_ms(100);
    SEND(c, "ok");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, "ok", 2);
    cl_close(c);
}

struct refusal {
    int port;
    const char *req;
    int status;
};

static void test_smuggling(void **state)
{
    static const struct refusal cases[] = {
        /* CL.TE and TE.CL: the smuggled GET must never be answered. */
        {0,
         "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n"
         "\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n",
         400},
        {0,
         "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n"
         "\r\n8\r\nSMUGGLED\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n",
         400},
        {0,
         "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nGET /hello HTTP/1.1\r\n",
         501},
        {0,
         "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: identity\r\n\r\n0\r\n\r\n",
         400},
        {0, "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {0, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc",
         400},
        {0, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", 400},
        /* Bad chunk syntax: a bare LF, a size with trailing junk, data without its CRLF. */
        {0,
         "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
         400},
        {0, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\nabc\r\n",
         400},
        {0,
         "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcGET /hello "
         "HTTP/1.1\r\n\r\n",
         400},
        /* A handler without body_max (as the edge) refuses any body, as before. */
        {1, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 400},
        {1, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
    };
    int n0 = atomic_load(&handled);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct client *c = cl_open(cases[i].port ? port_plain : port_body);
        struct resp r;
        cl_send(c, cases[i].req, strlen(cases[i].req));
        cl_response(c, &r, 0);
        if (r.status != cases[i].status)
            print_error("case %zu: status %d, want %d\n", i, r.status, cases[i].status);
        assert_int_equal(r.status, cases[i].status);
        assert_non_null(strstr(r.head, "\r\nConnection: close\r\n"));
        cl_expect_closed(c);
        cl_close(c);
    }
    assert_int_equal(atomic_load(&handled), n0);
}

static void test_pipelined_after_body(void **state)
{
    struct client *c = cl_open(port_body);
    struct resp r;

    SEND(c,
         "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
         "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n"
         "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
         "POST /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 2\r\n\r\nfg");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 3);
    assert_memory_equal(r.body, "abc", 3);
    cl_response(c, &r, 0);
    assert_int_equal(r.body_len, 2);
    assert_memory_equal(r.body, "de", 2);
    cl_response(c, &r, 0);
    assert_memory_equal(r.body, "hello\n", 6);
    cl_response(c, &r, 0);
    assert_int_equal(r.body_len, 2);
    assert_memory_equal(r.body, "fg", 2);
    cl_expect_closed(c);
    cl_close(c);
}

static void test_body_timeout(void **state)
{
    struct client *c = cl_open(port_body);
    struct resp r;
    int n0 = atomic_load(&handled);

    SEND(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    cl_response(c, &r, 0); /* body_timeout_ms is 300; the sweep runs every second */
    assert_int_equal(r.status, 408);
    cl_expect_closed(c);
    cl_close(c);
    assert_int_equal(atomic_load(&handled), n0);
}

static void test_stream(void **state)
{
    struct client *c = cl_open(port_body);
    struct resp r;
    char want[128];
    int n = 0;

    for (int i = 0; i < 5; i++)
        n += snprintf(want + n, sizeof(want) - (size_t)n, "piece %d\n", i);
    SEND(c, "GET /stream?n=5&delay=100 HTTP/1.1\r\nHost: a\r\n\r\n");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "\r\nTransfer-Encoding: chunked\r\n"));
    assert_null(strstr(r.head, "Connection"));
    assert_true(r.complete);
    assert_int_equal(r.body_len, (size_t)n);
    assert_memory_equal(r.body, want, (size_t)n);
    /* Sent as it was produced, not gathered first: pieces 100 ms apart arrive apart. */
    assert_true(r.chunks >= 2);
    assert_true(r.last_ms - r.first_ms >= 200);
    /* The connection goes on after a streamed response. */
    SEND(c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    cl_response(c, &r, 0);
    assert_memory_equal(r.body, "hello\n", 6);
    /* HEAD: the same head, no body, and the connection still usable. */
    SEND(c, "HEAD /stream?n=3&delay=10 HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: "
            "a\r\n\r\n");
    cl_response(c, &r, 1);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "\r\nTransfer-Encoding: chunked\r\n"));
    cl_response(c, &r, 0);
    assert_memory_equal(r.body, "hello\n", 6);
    cl_close(c);

    /* HTTP/1.0 has no chunked: the close ends the body (RFC 9112 §6.3). */
    c = cl_open(port_body);
    SEND(c, "GET /stream?n=3&delay=20 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.head, "Transfer-Encoding"));
    assert_non_null(strstr(r.head, "\r\nConnection: close\r\n"));
    assert_string_equal(r.body, "piece 0\npiece 1\npiece 2\n");
    cl_close(c);
}

static void test_stream_error(void **state)
{
    struct client *c = cl_open(port_body);
    struct resp r;
    int d0 = atomic_load(&done_incomplete);

    SEND(c, "GET /fail HTTP/1.1\r\nHost: a\r\n\r\n");
    cl_response(c, &r, 0);
    assert_int_equal(r.status, 200);
    /* The piece made before the failure, then the close: no last chunk, so the client
     * knows the body is cut short. */
    assert_false(r.complete);
    assert_int_equal(r.body_len, 7);
    cl_close(c);
    assert_true(wait_for(&done_incomplete, d0 + 1));
}

static void test_stream_backpressure(void **state)
{
    struct client *c = cl_open(port_body);
    const uint64_t total = 64u << 20;
    size_t got = 0;
    int d0 = atomic_load(&done_incomplete);
    char *e;

    SEND(c, "GET /big?n=67108864 HTTP/1.1\r\nHost: a\r\n\r\n");
    while (!(e = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        assert_true(cl_more(c) > 0);
    cl_take(c, (size_t)(e - c->buf) + 4);
    while (got < 256 * 1024) {
        got += c->len;
        c->len = 0;
        assert_true(cl_more(c) > 0);
    }
    /* The client stops reading: the producer must stop once the socket buffers are full,
     * not run on into memory. */
    sleep_ms(500);
    uint64_t made = atomic_load(&big_made);
    print_message("# backpressure: client read %zu bytes, producer made %llu of %llu\n", got,
                  (unsigned long long)made, (unsigned long long)total);
    assert_true(made < got + (24u << 20));
    assert_true(made < total);
    cl_close(c);
    assert_true(wait_for(&done_incomplete, d0 + 1));
}

static void test_stream_client_leaves(void **state)
{
    struct client *c = cl_open(port_body);
    int d0 = atomic_load(&done_incomplete);
    char *e;

    /* A stream waiting for its producer (a piece every 10 s) notices the client leave. */
    SEND(c, "GET /stream?n=10&delay=10000 HTTP/1.1\r\nHost: a\r\n\r\n");
    while (!(e = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        assert_true(cl_more(c) > 0);
    cl_close(c);
    assert_true(wait_for(&done_incomplete, d0 + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_body),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_lingering_close),
        cmocka_unit_test(test_continue),
        cmocka_unit_test(test_smuggling),
        cmocka_unit_test(test_pipelined_after_body),
        cmocka_unit_test(test_body_timeout),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_stream_error),
        cmocka_unit_test(test_stream_backpressure),
        cmocka_unit_test(test_stream_client_leaves),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
