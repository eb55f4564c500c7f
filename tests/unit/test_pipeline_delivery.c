/* Unit tests for the delivery steps' pieces (src/pipeline/delivery.c):
 * reading with: (defaults, every value, every bad value refused on one line
 * with the value escaped, unknown keys as GitHub's warning), the HTTP
 * response decoder (lengths, chunks, interim responses, truncation, hostile
 * heads) and the health-check client against a tiny server in this test
 * (the request it sends, a redirect not followed, a server that never
 * answers, a body beyond the bound, a closed port). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pipeline/delivery_internal.h"
#include "deploy/deploy.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- with: ---------------------------------------------------------------------------------- */

static json_t *with_of(const char *const *kv)
{
    json_t *o = json_object();
    for (size_t i = 0; kv[i]; i += 2)
        json_object_set_new(o, kv[i], json_string(kv[i + 1]));
    return o;
}

static void test_with_defaults(void **state)
{
    (void)state;
    const char *kv[] = {"env", "staging", NULL};
    json_t *with = with_of(kv);
    struct delivery_with w;
    struct sw_err err = {0};
    assert_int_equal(delivery_with_parse(PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, with, &w, &err), 0);
    assert_string_equal(w.env, "staging");
    assert_string_equal(w.path, "/");
    assert_int_equal(w.idle, 0);
    assert_int_equal(w.status, 200);
    assert_int_equal(w.retries, 10);
    assert_int_equal(w.interval_ms, 1000);
    assert_null(w.contains);
    assert_null(w.unknown);
    delivery_with_free(&w);

    assert_int_equal(delivery_with_parse(PIPELINE_BUILTIN_SLIPWAY_DEPLOY, with, &w, &err), 0);
    assert_null(w.path); /* the workspace */
    assert_int_equal(w.do_switch, 0);
    assert_null(w.message);
    delivery_with_free(&w);
    json_decref(with);

    /* scan needs no environment; the others do, and an empty value is not one */
    json_t *empty = json_object();
    assert_int_equal(delivery_with_parse(PIPELINE_BUILTIN_SLIPWAY_SCAN, empty, &w, &err), 0);
    delivery_with_free(&w);
    json_object_set_new(empty, "env", json_string(""));
    enum pipeline_builtin need[] = {
        PIPELINE_BUILTIN_SLIPWAY_DEPLOY, PIPELINE_BUILTIN_SLIPWAY_SWITCH,
        PIPELINE_BUILTIN_SLIPWAY_ROLLBACK, PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(delivery_with_parse(need[i], empty, &w, &err), SW_EINVAL);
        assert_string_equal(err.msg, "env: required (the environment to act on)");
        delivery_with_free(&w);
    }
    assert_int_equal(delivery_with_parse(PIPELINE_BUILTIN_CHECKOUT, empty, &w, &err), SW_EINVAL);
    delivery_with_free(&w);
    json_decref(empty);
}

static void test_with_values(void **state)
{
    (void)state;
    const char *kv[] = {"env",         "dev",    "slot",     "idle",     "path",
                        "/health?x=1", "status", "204",      "contains", "ok \"y",
                        "retries",     "1000",   "interval", "1h",       NULL};
    json_t *with = with_of(kv);
    struct delivery_with w;
    struct sw_err err = {0};
    assert_int_equal(delivery_with_parse(PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, with, &w, &err), 0);
    assert_int_equal(w.idle, 1);
    assert_string_equal(w.path, "/health?x=1");
    assert_int_equal(w.status, 204);
    assert_string_equal(w.contains, "ok \"y");
    assert_int_equal(w.retries, 1000);
    assert_int_equal(w.interval_ms, 3600 * 1000);
    delivery_with_free(&w);
    json_decref(with);

    const char *sw[][2] = {{"true", "1"},  {"True", "1"},  {"TRUE", "1"},
                           {"false", "0"}, {"False", "0"}, {"FALSE", "0"}};
    for (size_t i = 0; i < 6; i++) {
        const char *d[] = {"env",   "staging", "switch", sw[i][0], "path",
                           "site/", "message", "a note", NULL};
        with = with_of(d);
        assert_int_equal(delivery_with_parse(PIPELINE_BUILTIN_SLIPWAY_DEPLOY, with, &w, &err), 0);
        assert_int_equal(w.do_switch, sw[i][1][0] - '0');
        assert_string_equal(w.path, "site/");
        assert_string_equal(w.message, "a note");
        delivery_with_free(&w);
        json_decref(with);
    }
    const char *r[] = {"env", "staging", "to", "r-2026", "interval", "250ms", NULL};
    with = with_of(r);
    assert_int_equal(delivery_with_parse(PIPELINE_BUILTIN_SLIPWAY_ROLLBACK, with, &w, &err), 0);
    assert_string_equal(w.to, "r-2026");
    /* interval is not rollback's: a warning, not a value */
    assert_string_equal(
        w.unknown, "Unexpected input(s) 'interval', valid inputs are ['env', 'to', 'dry-run']");
    assert_int_equal(w.dry_run, 0);
    delivery_with_free(&w);
    json_decref(with);
    const char *dr[] = {"env", "staging", "dry-run", "True", NULL};
    with = with_of(dr);
    assert_int_equal(delivery_with_parse(PIPELINE_BUILTIN_SLIPWAY_ROLLBACK, with, &w, &err), 0);
    assert_int_equal(w.dry_run, 1);
    delivery_with_free(&w);
    json_decref(with);
}

static void test_with_bad(void **state)
{
    (void)state;
    static const struct {
        enum pipeline_builtin b;
        const char *key, *value, *want;
    } cases[] = {
        {PIPELINE_BUILTIN_SLIPWAY_DEPLOY, "switch", "yes",
         "switch: expected true or false, got 'yes'"},
        {PIPELINE_BUILTIN_SLIPWAY_DEPLOY, "switch", "1", "switch: expected true or false"},
        {PIPELINE_BUILTIN_SLIPWAY_ROLLBACK, "dry-run", "maybe",
         "dry-run: expected true or false, got 'maybe'"},
        {PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, "retries", "0",
         "retries: expected a whole number of attempts from 1 to 1000, got '0'"},
        {PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, "retries", "1001", "retries: expected"},
        {PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, "retries", "-3", "retries: expected"},
        {PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, "retries", "99999999999999999999", "retries:"},
        {PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, "retries", "3x", "retries: expected"},
        {PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, "interval", "1", "interval: expected a duration"},
        {PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, "interval", "2h", "(at most 1h), got '2h'"},
        {PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, "interval", "soon", "interval: expected"},
        {PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, "status", "99", "status: expected an HTTP status"},
        {PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, "status", "600", "status: expected"},
        {PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, "status", "200 ", "status: expected"},
        {PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, "slot", "blue", "slot: expected live or idle"},
        {PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, "path", "health", "path: expected a path"},
        /* a header could be added through the request line: refused, shown escaped */
        {PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, "path", "/ HTTP/1.1\r\nX: y",
         "got '/ HTTP/1.1\\r\\nX: y'"},
        {PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK, "path", "/a b", "path: expected"},
        {PIPELINE_BUILTIN_SLIPWAY_WATCH, "duration", "500ms",
         "duration: expected a duration from 1s to 7d such as 30s or 10m, got '500ms'"},
        {PIPELINE_BUILTIN_SLIPWAY_WATCH, "duration", "8d", "got '8d'"},
        {PIPELINE_BUILTIN_SLIPWAY_WATCH, "duration", "soon", "duration: expected"},
        {PIPELINE_BUILTIN_SLIPWAY_SWITCH, "env", "../prod", "env: expected an environment name"},
        {PIPELINE_BUILTIN_SLIPWAY_SWITCH, "env", "Prod\x1b[2J", "got 'Prod\\x1b[2J'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *with = json_object();
        if (strcmp(cases[i].key, "env") != 0)
            json_object_set_new(with, "env", json_string("staging"));
        json_object_set_new(with, cases[i].key, json_string(cases[i].value));
        struct delivery_with w;
        struct sw_err err = {0};
        assert_int_equal(delivery_with_parse(cases[i].b, with, &w, &err), SW_EINVAL);
        if (!strstr(err.msg, cases[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].want);
        assert_null(strchr(err.msg, '\n'));
        assert_null(strchr(err.msg, '\r'));
        delivery_with_free(&w);
        json_decref(with);
    }
}

static void test_with_unknown(void **state)
{
    (void)state;
    const char *kv[] = {"env", "staging", "colour", "blue", "x\ny", "1", NULL};
    json_t *with = with_of(kv);
    struct delivery_with w;
    struct sw_err err = {0};
    assert_int_equal(delivery_with_parse(PIPELINE_BUILTIN_SLIPWAY_DEPLOY, with, &w, &err), 0);
    assert_string_equal(w.unknown, "Unexpected input(s) 'colour', 'x\\ny', valid inputs are "
                                   "['env', 'path', 'switch', 'message']");
    delivery_with_free(&w);
    json_decref(with);
}

/* ---- the response decoder ---------------------------------------------------------------------
 */

static int parse(const char *raw, int eof, size_t max, struct delivery_http_response *r,
                 struct sw_err *err)
{
    memset(r, 0, sizeof(*r));
    return delivery_http_parse(raw, strlen(raw), eof, max, r, err);
}

static void test_http_parse(void **state)
{
    (void)state;
    struct delivery_http_response r;
    struct sw_err err = {0};

    const char *cl = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal(parse(cl, 0, 1024, &r, &err), 1);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.status_line, "HTTP/1.1 200 OK");
    assert_int_equal(r.body_len, 5);
    assert_string_equal(r.body, "hello");
    delivery_http_response_free(&r);
    /* every shorter prefix only asks for more */
    for (size_t n = 0; n < strlen(cl); n++) {
        memset(&r, 0, sizeof(r));
        assert_int_equal(delivery_http_parse(cl, n, 0, 1024, &r, &err), 0);
        delivery_http_response_free(&r);
    }
    /* ... and is an error when the peer closed there */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", 1, 1024, &r, &err),
                     SW_EINVAL);
    assert_non_null(strstr(err.msg, "after 3 of 5 bytes"));
    delivery_http_response_free(&r);
    assert_int_equal(parse("", 1, 1024, &r, &err), SW_EINVAL);
    assert_string_equal(err.msg, "the server closed the connection without a response");
    delivery_http_response_free(&r);

    /* chunked, with an extension, a trailer, and bare LF line ends */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
                           "0\r\nX-Trailer: 1\r\n\r\n",
                           0, 1024, &r, &err),
                     1);
    assert_string_equal(r.body, "Wikipedia in\r\n\r\nchunks.");
    delivery_http_response_free(&r);
    assert_int_equal(parse("HTTP/1.0 404 Not Found\ntransfer-encoding: CHUNKED\n\n3\nabc\n0\n\n", 0,
                           1024, &r, &err),
                     1);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "abc");
    delivery_http_response_free(&r);
    assert_int_equal(
        parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", 0, 1024, &r, &err),
        0);
    delivery_http_response_free(&r);
    /* a chunk larger than the bound (or than memory): kept to the bound, never read past */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "ffffffffffffffff\r\nabcdef",
                           0, 4, &r, &err),
                     1);
    assert_string_equal(r.body, "abcd");
    assert_int_equal(r.truncated, 1);
    delivery_http_response_free(&r);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "ffffffffffffffff\r\nab",
                           0, 4, &r, &err),
                     0);
    delivery_http_response_free(&r);
    assert_int_equal(
        parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, 1024, &r, &err),
        SW_EINVAL);
    delivery_http_response_free(&r);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "ffffffffffffffffff\r\n",
                           0, 1024, &r, &err),
                     SW_EINVAL);
    delivery_http_response_free(&r);

    /* close-delimited: complete at EOF only */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\n\r\nabc", 0, 1024, &r, &err), 0);
    delivery_http_response_free(&r);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\n\r\nabc", 1, 1024, &r, &err), 1);
    assert_string_equal(r.body, "abc");
    delivery_http_response_free(&r);

    /* an interim response is skipped; 204 has no body */
    assert_int_equal(
        parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 0, 1024, &r, &err),
        1);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body_len, 0);
    delivery_http_response_free(&r);

    /* a body beyond the bound: kept to it, complete, truncated */
    assert_int_equal(
        parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", 0, 4, &r, &err), 1);
    assert_int_equal(r.body_len, 4);
    assert_int_equal(r.truncated, 1);
    assert_string_equal(r.body, "0123");
    delivery_http_response_free(&r);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234", 0, 4, &r, &err),
                     1);
    assert_int_equal(r.truncated, 1);
    delivery_http_response_free(&r);

    /* hostile heads */
    const char *bad[] = {
        "SSH-2.0-OpenSSH\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 700 Odd\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], 0, 1024, &r, &err) != SW_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        delivery_http_response_free(&r);
    }
    /* control characters never reach the log through the status line */
    assert_int_equal(
        parse("HTTP/1.1 200 O\x1b[2JK\r\nContent-Length: 0\r\n\r\n", 0, 1024, &r, &err), 1);
    assert_string_equal(r.status_line, "HTTP/1.1 200 O?[2JK");
    delivery_http_response_free(&r);
    /* an endless head */
    size_t n = DELIVERY_HTTP_HEAD_MAX + 100;
    char *big = xmalloc(n + 1);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', n - 20);
    big[n] = '\0';
    assert_int_equal(parse(big, 0, 1024, &r, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "head is over"));
    delivery_http_response_free(&r);
    free(big);
}

static void test_addr_url(void **state)
{
    (void)state;
    static const char *cases[][2] = {
        {"127.0.0.1:8081", "http://127.0.0.1:8081"},
        {"0.0.0.0:80", "http://127.0.0.1:80"},
        {"[::]:81", "http://[::1]:81"},
        {"[::1]:82", "http://[::1]:82"},
        {"example.org:83", "http://example.org:83"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *u = delivery_addr_url(cases[i][0]);
        assert_string_equal(u, cases[i][1]);
        free(u);
    }
}

/* ---- the client against a tiny server -----------------------------------------------------------
 */

enum { SRV_OK, SRV_REDIRECT, SRV_SILENT, SRV_HUGE };

struct server {
    int fd, port;
    int mode;
    char request[4096]; /* what the client sent */
    pthread_t thread;
};

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Serves one connection as s->mode says. */
static void *serve_one(void *arg)
{
    struct server *s = arg;
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    size_t got = 0;
    while (got < sizeof(s->request) - 1 && !strstr(s->request, "\r\n\r\n")) {
        ssize_t n = recv(c, s->request + got, sizeof(s->request) - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        s->request[got] = '\0';
    }
    if (s->mode == SRV_OK) {
        const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello, world";
        send_all(c, resp, strlen(resp));
    } else if (s->mode == SRV_REDIRECT) {
        char resp[256];
        snprintf(resp, sizeof(resp),
                 "HTTP/1.1 301 Moved Permanently\r\nLocation: http://127.0.0.1:%d/elsewhere\r\n"
                 "Content-Length: 0\r\n\r\n",
                 s->port);
        send_all(c, resp, strlen(resp));
    } else if (s->mode == SRV_SILENT) {
        char sink[64];
        (void)recv(c, sink, sizeof(sink), 0); /* until the client gives up and closes */
    } else {
        /* 3 MiB announced and sent: the client keeps 1 MiB and stops */
        const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 3145728\r\n\r\n";
        send_all(c, head, strlen(head));
        char *body = xmalloc((size_t)3 << 20);
        memset(body, 'x', (size_t)3 << 20);
        send_all(c, body, (size_t)3 << 20);
        free(body);
    }
    close(c);
    return NULL;
}

static void server_start(struct server *s, int mode)
{
    memset(s, 0, sizeof(*s));
    s->mode = mode;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 4), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve_one, s), 0);
}

static void server_stop(struct server *s)
{
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static void test_http_get(void **state)
{
    (void)state;
    struct server s;
    struct delivery_http_response r;
    struct sw_err err = {0};
    char addr[64];

    server_start(&s, SRV_OK);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", s.port);
    assert_int_equal(delivery_http_get(addr, "/x?y=1", 5000, 1024, &r, &err), 0);
    server_stop(&s);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello, world");
    assert_true(strncmp(s.request, "GET /x?y=1 HTTP/1.1\r\n", 21) == 0);
    char host[80];
    snprintf(host, sizeof(host), "\r\nHost: %s\r\n", addr);
    assert_non_null(strstr(s.request, host));
    assert_non_null(strstr(s.request, "\r\nConnection: close\r\n"));
    delivery_http_response_free(&r);

    /* a wildcard address is reached on loopback */
    server_start(&s, SRV_OK);
    snprintf(addr, sizeof(addr), "0.0.0.0:%d", s.port);
    assert_int_equal(delivery_http_get(addr, "/", 5000, 1024, &r, &err), 0);
    server_stop(&s);
    assert_int_equal(r.status, 200);
    delivery_http_response_free(&r);

    /* a redirect is an answer, not followed */
    server_start(&s, SRV_REDIRECT);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", s.port);
    assert_int_equal(delivery_http_get(addr, "/", 5000, 1024, &r, &err), 0);
    server_stop(&s);
    assert_int_equal(r.status, 301);
    assert_string_equal(r.status_line, "HTTP/1.1 301 Moved Permanently");
    delivery_http_response_free(&r);

    /* a server that never answers: the timeout, not a hang */
    server_start(&s, SRV_SILENT);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", s.port);
    int64_t t0 = time_mono_ms();
    assert_int_equal(delivery_http_get(addr, "/", 300, 1024, &r, &err), SW_EIO);
    int64_t took = time_mono_ms() - t0;
    server_stop(&s);
    assert_string_equal(err.msg, "response: timed out");
    assert_true(took >= 250 && took < 3000);
    delivery_http_response_free(&r);

    /* a body beyond the bound: kept to it */
    server_start(&s, SRV_HUGE);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", s.port);
    assert_int_equal(delivery_http_get(addr, "/", 10000, DELIVERY_HTTP_BODY_MAX, &r, &err), 0);
    server_stop(&s);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, DELIVERY_HTTP_BODY_MAX);
    assert_int_equal(r.truncated, 1);
    delivery_http_response_free(&r);

    /* a closed port */
    server_start(&s, SRV_OK);
    int port = s.port;
    shutdown(s.fd, SHUT_RDWR); /* the thread's accept fails and it ends */
    pthread_join(s.thread, NULL);
    close(s.fd);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    assert_int_equal(delivery_http_get(addr, "/", 2000, 1024, &r, &err), SW_EIO);
    assert_string_equal(err.msg, "connect: Connection refused");
    delivery_http_response_free(&r);

    assert_int_equal(delivery_http_get("nonsense", "/", 2000, 1024, &r, &err), SW_EINVAL);
    delivery_http_response_free(&r);
    assert_int_equal(delivery_http_get(addr, "no-slash", 2000, 1024, &r, &err), SW_EINVAL);
    delivery_http_response_free(&r);
}

/* ---- the steps on a real store -----------------------------------------------------------------
 */

struct said {
    struct buf lines;
};

static void collect(void *ctx, enum pipeline_step_log_kind kind, const char *text)
{
    struct said *s = ctx;
    (void)kind;
    buf_addf(&s->lines, "%s\n", text);
}

static void put(const char *dir, const char *rel, const char *text)
{
    char *p = path_join(dir, rel);
    struct sw_err err = {0};
    assert_int_equal(fs_write_atomic(p, text, strlen(text), &err), 0);
    free(p);
}

/* Runs step b with with kv in project/workspace; the outputs (caller frees). */
static json_t *step(struct store *st, const char *project, const char *ws, enum pipeline_builtin b,
                    const char *const *kv, enum pipeline_step_outcome want, struct said *said)
{
    json_t *with = with_of(kv), *out = json_object();
    struct delivery_step d = {.st = st,
                              .project = project,
                              .workspace = ws,
                              .run_id = "run-20260101-000000-000-abcdef",
                              .sha = "0123456789abcdef0123456789abcdef01234567",
                              .ref = "refs/tags/v1.0.0",
                              .actor = "tester",
                              .uses = "slipway/step@v1",
                              .with = with,
                              .say = collect,
                              .ctx = said};
    said->lines.len = 0;
    assert_int_equal(delivery_step_run(&d, b, out), want);
    buf_add(&said->lines, "", 1);
    json_decref(with);
    return out;
}

static const char *str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    assert_non_null(v);
    return v;
}

/* slipway/deploy's url and backup outputs, and slipway/rollback's dry-run:
 * checked, said, nothing changed; a bad target refused before anyone would
 * be asked to approve it. */
static void test_steps_outputs(void **state)
{
    (void)state;
    char dir[] = "/tmp/sw-delivery-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *project = path_join(dir, "p"), *envs = path_join(dir, "p/.slipway/environments");
    char *data = path_join(dir, "p/.slipway/data"), *ws = path_join(dir, "ws");
    char *site = path_join(dir, "ws/site");
    struct sw_err err = {0};
    struct store *st = NULL;
    struct said said = {BUF_INIT};
    assert_int_equal(fs_mkdir_p(envs, &err), 0);
    assert_int_equal(fs_mkdir_p(site, &err), 0);
    put(envs, "staging.yml",
        "strategy: blue-green\nlisten: 0.0.0.0:8082\npreview: 127.0.0.1:9082\n");
    put(envs, "dev.yml", "strategy: direct\n");
    assert_int_equal(store_open(data, &st, &err), 0);

    /* the first deploy: nothing live before it, so no backup */
    put(site, "index.html", "one\n");
    const char *dep[] = {"env", "staging", "path", "site", NULL};
    json_t *o =
        step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_DEPLOY, dep, PIPELINE_STEP_SUCCESS, &said);
    char *r1 = xstrdup(str(o, "release"));
    assert_string_equal(str(o, "backup"), "");
    assert_string_equal(str(o, "url"), "http://127.0.0.1:8082"); /* a wildcard host: loopback */
    json_decref(o);
    put(site, "index.html", "two\n");
    o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_DEPLOY, dep, PIPELINE_STEP_SUCCESS, &said);
    char *r2 = xstrdup(str(o, "release"));
    assert_string_equal(str(o, "backup"), r1); /* live when it began, still live */
    assert_string_equal(str(o, "slot"), "green");
    json_decref(o);
    const char *dev[] = {"env", "dev", "path", "site", NULL};
    o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_DEPLOY, dev, PIPELINE_STEP_SUCCESS, &said);
    assert_string_equal(str(o, "url"), ""); /* dev has no listen: not served */
    json_decref(o);
    const char *swi[] = {"env", "staging", NULL};
    o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_SWITCH, swi, PIPELINE_STEP_SUCCESS, &said);
    assert_string_equal(str(o, "url"), "http://127.0.0.1:8082");
    json_decref(o);

    /* dry-run: the previous release, found in the idle slot; nothing changes */
    struct env_state *before = NULL, *after = NULL;
    assert_int_equal(deploy_state_load(st, "staging", &before, &err), 0);
    const char *plan[] = {"env", "staging", "dry-run", "true", NULL};
    o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_ROLLBACK, plan, PIPELINE_STEP_SUCCESS,
             &said);
    assert_string_equal(str(o, "release"), r1);
    assert_string_equal(str(o, "commit"), "0123456789abcdef0123456789abcdef01234567");
    assert_string_equal(str(o, "slot"), "blue");
    assert_string_equal(str(o, "url"), "http://127.0.0.1:8082");
    if (!strstr(said.lines.data, "which holds it already (an instant flip)") ||
        !strstr(said.lines.data, "Nothing changed."))
        fail_msg("dry-run said: %s", said.lines.data);
    json_decref(o);
    assert_int_equal(deploy_state_load(st, "staging", &after, &err), 0);
    assert_int_equal(after->generation, before->generation);
    assert_string_equal(after->live_release, r2);
    env_state_free(after);

    /* to: by a unique suffix, resolved to the full id */
    const char *bysuffix[] = {"env", "staging", "to", r1 + strlen(r1) - 6, "dry-run", "true", NULL};
    o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_ROLLBACK, bysuffix, PIPELINE_STEP_SUCCESS,
             &said);
    assert_string_equal(str(o, "release"), r1);
    json_decref(o);
    const char *live[] = {"env", "staging", "to", r2, "dry-run", "true", NULL};
    o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_ROLLBACK, live, PIPELINE_STEP_FAILURE,
             &said);
    if (!strstr(said.lines.data, "is already live"))
        fail_msg("a rollback to the live release: %s", said.lines.data);
    json_decref(o);
    const char *none[] = {"env", "staging", "to", "r-nosuch", "dry-run", "true", NULL};
    o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_ROLLBACK, none, PIPELINE_STEP_FAILURE,
             &said);
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);
    const char *fresh[] = {"env", "dev", "dry-run", "true", NULL};
    o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_ROLLBACK, fresh, PIPELINE_STEP_FAILURE,
             &said);
    if (!strstr(said.lines.data, "environment dev has no previous release to roll back to"))
        fail_msg("no previous release: %s", said.lines.data);
    json_decref(o);
    assert_int_equal(deploy_state_load(st, "staging", &after, &err), 0);
    assert_int_equal(after->generation, before->generation);
    env_state_free(after);
    env_state_free(before);

    buf_free(&said.lines);
    store_free(st);
    assert_int_equal(fs_remove_tree(dir, &err), 0);
    free(r1);
    free(r2);
    free(project);
    free(envs);
    free(data);
    free(ws);
    free(site);
}

/* ---- slipway/watch -----------------------------------------------------------------------------
 */

struct watch_run {
    struct store *st;
    const char *project, *ws;
    const char *const *kv;
    _Atomic int cancel;
    int64_t deadline_mono;
    int timed_out;
    struct said said;
    json_t *out;
    enum pipeline_step_outcome oc;
    pthread_t thread;
};

static void *watch_thread(void *arg)
{
    struct watch_run *r = arg;
    json_t *with = with_of(r->kv);
    struct delivery_step d = {.st = r->st,
                              .project = r->project,
                              .workspace = r->ws,
                              .run_id = "run-20260101-000000-000-abcdef",
                              .actor = "tester",
                              .uses = "slipway/watch@v1",
                              .with = with,
                              .cancel = &r->cancel,
                              .say = collect,
                              .ctx = &r->said,
                              .deadline_mono = r->deadline_mono,
                              .timed_out = &r->timed_out};
    r->out = json_object();
    r->oc = delivery_step_run(&d, PIPELINE_BUILTIN_SLIPWAY_WATCH, r->out);
    buf_add(&r->said.lines, "", 1);
    json_decref(with);
    return NULL;
}

static void watch_start(struct watch_run *r)
{
    assert_int_equal(pthread_create(&r->thread, NULL, watch_thread, r), 0);
}

static void watch_join(struct watch_run *r, enum pipeline_step_outcome want, const char *verdict,
                       const char *said)
{
    pthread_join(r->thread, NULL);
    if (r->oc != want || strcmp(str(r->out, "verdict"), verdict) ||
        !strstr(r->said.lines.data, said))
        fail_msg("outcome %d (want %d), verdict '%s' (want '%s'); said (want '%s'):\n%s", r->oc,
                 want, str(r->out, "verdict"), verdict, said, r->said.lines.data);
    json_decref(r->out);
    buf_free(&r->said.lines);
}

static void ms_sleep(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The watch on a real store, the monitor played by the test: a verdict
 * followed at once by a newer deploy still counts as the verdict (read from
 * the history); a release rolled back or replaced fails; an environment
 * without a watch takes a duration and then says only that the release was
 * not rolled back; a cancel and a deadline end the wait. */
static void test_watch(void **state)
{
    (void)state;
    char dir[] = "/tmp/sw-watch-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *project = path_join(dir, "p"), *envs = path_join(dir, "p/.slipway/environments");
    char *data = path_join(dir, "p/.slipway/data"), *ws = path_join(dir, "ws");
    char *site = path_join(dir, "ws/site");
    struct sw_err err = {0};
    struct store *st = NULL;
    struct said said = {BUF_INIT};
    struct env_config *w = NULL;
    struct env_state *s = NULL;
    struct deploy_result res = {0};
    assert_int_equal(fs_mkdir_p(envs, &err), 0);
    assert_int_equal(fs_mkdir_p(site, &err), 0);
    put(envs, "w.yml", "strategy: direct\nwatch: {duration: 1m}\n");
    put(envs, "nw.yml", "strategy: direct\n");
    assert_int_equal(store_open(data, &st, &err), 0);
    assert_int_equal(env_config_find(envs, "w", &w, &err), 0);

    const char *dep_w[] = {"env", "w", "path", "site", NULL};
    const char *dep_nw[] = {"env", "nw", "path", "site", NULL};
    char text[32];
    json_t *o;
    for (int i = 0; i < 2; i++) { /* A then B on w: B's window is open */
        snprintf(text, sizeof(text), "w%d\n", i);
        put(site, "index.html", text);
        o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_DEPLOY, dep_w, PIPELINE_STEP_SUCCESS,
                 &said);
        json_decref(o);
    }

    /* no watch and no duration: refused, naming what to give */
    put(site, "index.html", "nw\n");
    o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_DEPLOY, dep_nw, PIPELINE_STEP_SUCCESS,
             &said);
    json_decref(o);
    const char *nw[] = {"env", "nw", NULL};
    o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_WATCH, nw, PIPELINE_STEP_FAILURE, &said);
    if (!strstr(said.lines.data, "environment nw has no watch (no watch: key in") ||
        !strstr(said.lines.data, "give the step a duration"))
        fail_msg("no watch: %s", said.lines.data);
    json_decref(o);
    /* with a duration: waited out, and only "not rolled back" (no monitor watches nw) */
    const char *nw1[] = {"env", "nw", "duration", "1s", NULL};
    int64_t t0 = time_mono_ms();
    o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_WATCH, nw1, PIPELINE_STEP_SUCCESS, &said);
    assert_string_equal(str(o, "verdict"), "not-rolled-back");
    assert_true(time_mono_ms() - t0 < 5000);
    json_decref(o);

    /* a verdict, then at once a newer deploy: the step passes with the verdict,
     * whether it saw the two changes come (from the history, or as they came)
     * or began after both */
    const char *kv_w[] = {"env", "w", NULL};
    struct watch_run r = {.st = st, .project = project, .ws = ws, .kv = kv_w};
    assert_int_equal(deploy_state_load(st, "w", &s, &err), 0);
    char *b = xstrdup(s->live_release);
    watch_start(&r);
    ms_sleep(300);
    char *msg = xasprintf("watch of %s ended: passed: %s was watched for 1m and no critical "
                          "alert fired",
                          b, b);
    struct deploy_opts vo = {
        .actor = "slipway-monitor@test", .message = msg, .if_generation = s->generation};
    assert_int_equal(deploy_verdict(st, w, &vo, &res, &err), 0);
    deploy_result_free(&res);
    put(site, "index.html", "c\n");
    o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_DEPLOY, dep_w, PIPELINE_STEP_SUCCESS, &said);
    char *c = xstrdup(str(o, "release"));
    json_decref(o);
    watch_join(&r, PIPELINE_STEP_SUCCESS, "passed", "Verdict: passed (watch of");
    const char *kv_b[] = {"env", "w", "release", b, NULL};
    r = (struct watch_run){.st = st, .project = project, .ws = ws, .kv = kv_b};
    watch_start(&r);
    watch_join(&r, PIPELINE_STEP_SUCCESS, "passed", "Verdict: passed (watch of");
    const char *kv_never[] = {"env", "nw", "release", b, "duration", "1s", NULL};
    r = (struct watch_run){.st = st, .project = project, .ws = ws, .kv = kv_never};
    watch_start(&r);
    watch_join(&r, PIPELINE_STEP_FAILURE, "", "is not live on nw, and never was");
    env_state_free(s);
    free(msg);

    /* rolled back by the monitor (rejected) before the step began: fails at once */
    assert_int_equal(deploy_state_load(st, "w", &s, &err), 0);
    struct deploy_opts ro = {.actor = "slipway-monitor@test",
                             .message = "automatic rollback: high-error-rate (critical)",
                             .if_generation = s->generation,
                             .reject = "high-error-rate (critical)"};
    assert_int_equal(deploy_rollback(st, w, NULL, &ro, &res, &err), 0);
    deploy_result_free(&res);
    env_state_free(s);
    const char *kv_c[] = {"env", "w", "release", c, NULL};
    r = (struct watch_run){.st = st, .project = project, .ws = ws, .kv = kv_c};
    watch_start(&r);
    watch_join(&r, PIPELINE_STEP_FAILURE, "rolled-back",
               "by slipway-monitor@test at 20"); /* its time, then the message */
    r = (struct watch_run){.st = st, .project = project, .ws = ws, .kv = kv_c};
    watch_start(&r);
    watch_join(&r, PIPELINE_STEP_FAILURE, "rolled-back",
               ": automatic rollback: high-error-rate (critical)");

    /* replaced by a newer deploy during the window: fails */
    put(site, "index.html", "d\n");
    o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_DEPLOY, dep_w, PIPELINE_STEP_SUCCESS, &said);
    json_decref(o);
    r = (struct watch_run){.st = st, .project = project, .ws = ws, .kv = kv_w};
    watch_start(&r);
    ms_sleep(300);
    put(site, "index.html", "e\n");
    o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_DEPLOY, dep_w, PIPELINE_STEP_SUCCESS, &said);
    json_decref(o);
    watch_join(&r, PIPELINE_STEP_FAILURE, "superseded", "(a deploy by tester at ");

    /* cancelled, and out of time: the wait ends */
    r = (struct watch_run){.st = st, .project = project, .ws = ws, .kv = kv_w};
    watch_start(&r);
    ms_sleep(300);
    atomic_store(&r.cancel, 1);
    watch_join(&r, PIPELINE_STEP_CANCELLED, "cancelled", "Watching r-");
    r = (struct watch_run){
        .st = st, .project = project, .ws = ws, .kv = kv_w, .deadline_mono = time_mono_ms() + 500};
    watch_start(&r);
    watch_join(&r, PIPELINE_STEP_FAILURE, "", "timed out before the watch of");
    assert_int_equal(r.timed_out, 1);

    /* nothing live */
    put(envs, "empty.yml", "strategy: direct\nwatch: {duration: 1m}\n");
    const char *kv_e[] = {"env", "empty", NULL};
    o = step(st, project, ws, PIPELINE_BUILTIN_SLIPWAY_WATCH, kv_e, PIPELINE_STEP_FAILURE, &said);
    if (!strstr(said.lines.data, "nothing is live on empty: no release to watch"))
        fail_msg("nothing live: %s", said.lines.data);
    json_decref(o);

    buf_free(&said.lines);
    env_config_free(w);
    store_free(st);
    assert_int_equal(fs_remove_tree(dir, &err), 0);
    free(b);
    free(c);
    free(project);
    free(envs);
    free(data);
    free(ws);
    free(site);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_with_defaults), cmocka_unit_test(test_with_values),
        cmocka_unit_test(test_with_bad),      cmocka_unit_test(test_with_unknown),
        cmocka_unit_test(test_http_parse),    cmocka_unit_test(test_addr_url),
        cmocka_unit_test(test_http_get),      cmocka_unit_test(test_steps_outputs),
        cmocka_unit_test(test_watch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
