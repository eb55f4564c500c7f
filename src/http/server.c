/*
 * The HTTP server core: listening sockets, worker event loops, connections.
 *
 * One worker thread per core, each with its own epoll instance and its own
 * SO_REUSEPORT socket for every address, so the kernel spreads connections
 * and no two workers share a queue, a lock or a counter on the request path.
 *
 * A connection reads into a buffer bounded by the maximum head size, parses
 * one request at a time (pipelined requests wait in the buffer), hands it to
 * its listener's handler and writes the response completely — headers and an
 * in-memory body with one writev, or headers then sendfile for a file —
 * before it looks at the next. While a response is blocked on a full socket,
 * the connection waits only for EPOLLOUT, so unread pipelined input stays in
 * the kernel.
 *
 * Listener sets are replaced by the thread that owns the server (a SIGHUP
 * reload, say) and handed to each worker through its wake-up eventfd; a
 * worker adopts them between two turns of its loop.
 *
 * Request bodies and streamed responses are for handlers that ask for them,
 * and their state lives off the static path: a connection carries a pointer
 * to a body being read (the read buffer then grows to hold head and body, and
 * a chunked body is decoded in place) and one to a stream being written (one
 * fixed buffer per stream, refilled only when the socket took the last piece,
 * and an eventfd of its own that other threads write to wake it). Both are
 * NULL, and cost one test each, for every request the edge serves.
 */
#include "http/http.h"
#include "http/balance.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE HTTP_MAX_LINE
#define MAX_HEAD HTTP_MAX_HEAD
#define TAG_LISTENER 1
#define TAG_CONN 2
#define TAG_WAKE 3
#define TAG_STREAM 4
#define CACHELINE 64
/* A streamed response's buffer: room for one piece, with space before it for
 * the chunk-size line and after it for the CRLF and the last chunk. */
/* Lingering close: after an error response the server stops writing and reads
 * off what the client is still sending, for at most LINGER_MS and LINGER_MAX
 * bytes, before it closes (as nginx's lingering_close does). */
#define LINGER_MS 2000
#define LINGER_MAX (1 << 20)
#define STREAM_ROOM 16384
#define STREAM_PRE 16
#define STREAM_POST 8

/* ---- listening sockets ------------------------------------------------------ */

struct binding {
    char *addr;
    const struct http_handler *h;
    void *arg;
    uint64_t body_max;         /* h->body_max, kept where sizes cannot overflow */
    int fds[HTTP_MAX_WORKERS]; /* worker w owns fds[w] */
};

struct bindset {
    struct binding **v;
    size_t n;
};

static int parse_addr(const char *addr, struct addrinfo **res, struct sw_err *err)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof(host))
        return sw_err_set(err, SW_EINVAL, "address '%s': expected HOST:PORT", addr);
    size_t hl = (size_t)(colon - addr);
    memcpy(host, addr, hl);
    host[hl] = '\0';
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    int g = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, res);
    if (g != 0)
        return sw_err_set(err, SW_EINVAL, "address '%s': %s", addr, gai_strerror(g));
    return 0;
}

static int listen_one(const struct addrinfo *ai, const char *addr, struct sw_err *err)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sw_err_sys(err, errno, "listen %s", addr);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
        int e = errno;
        close(fd);
        return sw_err_sys(err, e, "listen %s", addr);
    }
    return fd;
}

/* SO_REUSEPORT lets any process of the same user bind an address already
 * bound with it, and the kernel then spreads connections between them: two
 * servers of different projects would silently share one address. A probe
 * bound without SO_REUSEPORT fails while anyone else holds the address, as
 * nginx's does; only then do the workers bind their shared sockets. */
static int probe_free(const struct addrinfo *ai, const char *addr, const char *owner,
                      struct sw_err *err)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sw_err_sys(err, errno, "listen %s", addr);
    int one = 1, rc = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        rc = errno == EADDRINUSE
                 ? sw_err_set(err, SW_EEXIST,
                              "address %s (%s) is in use by another process; stop it or choose "
                              "another address",
                              addr, owner)
                 : sw_err_sys(err, errno, "listen %s (%s)", addr, owner);
    close(fd);
    return rc;
}

static struct binding *binding_new(const struct http_listener *l, int nworkers, int probe,
                                   struct sw_err *err)
{
    struct addrinfo *ai = NULL;
    if (parse_addr(l->addr, &ai, err))
        return NULL;
    if (probe && probe_free(ai, l->addr, l->owner ? l->owner : "?", err)) {
        freeaddrinfo(ai);
        return NULL;
    }
    struct binding *b = xcalloc(1, sizeof(*b));
    b->addr = xstrdup(l->addr);
    b->h = l->handler;
    b->arg = l->arg;
    b->body_max = l->handler->body_max < SIZE_MAX / 4 ? l->handler->body_max : SIZE_MAX / 4;
    for (int i = 0; i < HTTP_MAX_WORKERS; i++)
        b->fds[i] = -1;
    for (int i = 0; i < nworkers; i++) {
        b->fds[i] = listen_one(ai, l->addr, err);
        if (b->fds[i] < 0) {
            for (int j = 0; j < i; j++)
                close(b->fds[j]);
            free(b->addr);
            free(b);
            b = NULL;
            break;
        }
    }
    freeaddrinfo(ai);
    return b;
}

/* ---- workers -------------------------------------------------------------------- */

struct lsn {
    int tag;
    struct binding *b;
    int fd;
};

/* A request body being read: the head is rbuf[0..head_len), the body (decoded
 * so far) follows it, then bytes not yet decoded. */
struct body_rd {
    size_t head_len;
    size_t cap;    /* the most rbuf may grow to for this body */
    int chunked;   /* else Content-Length: want bytes */
    uint64_t want; /* Content-Length */
    struct http_chunked dec;
    size_t cont_sent;    /* bytes of "100 Continue" sent, when one is owed */
    int cont;            /* a 100 Continue is owed and not completely sent */
    int64_t deadline_ms; /* body timeout */
    int expired;         /* past it: answer 408 */
};

/* A wake handle (see http.h): refs counts the creator's and the server's. */
struct http_stream {
    int tag;
    int efd;
    atomic_int refs;
    struct conn *c; /* the connection streaming with it; worker only */
};

/* A streamed response being written: buf[off..len) is still to send. */
struct stream_out {
    struct http_stream *hs; /* the server's reference to res->wake, or NULL */
    size_t off, len;
    int chunked; /* HTTP/1.1: each piece is a chunk; else close-delimited */
    int done;    /* the producer said DONE (or HEAD): nothing after buf */
    int wait;    /* the producer said WAIT: once buf is sent, no EPOLLOUT until woken */
    uint64_t sent;
    char buf[STREAM_PRE + STREAM_ROOM + STREAM_POST];
};

struct conn {
    int tag;
    int fd;
    struct binding *b;
    char *rbuf;
    size_t rlen, rcap;
    struct buf hdr;
    size_t hdr_off;
    struct http_response res;
    uint64_t body_off;
    int busy; /* a response is being written */
    int64_t head_start_ms, last_ms, req_start_us;
    struct body_rd *body;  /* a request body is being read (handlers with body_max) */
    struct stream_out *st; /* the response is streamed */
    /* Lingering: the response is sent and the write side shut; reading off the rest of
     * what the client sent until it closes, lingered bytes pass LINGER_MAX or the
     * deadline passes. */
    int lingering;
    int64_t linger_until_ms;
    size_t lingered;
    char method[8];
    char target[256];
    struct conn *prev, *next;
};

struct worker {
    _Alignas(CACHELINE) struct http_server *s;
    int id;
    int ep;
    int wake; /* eventfd: new bindings or drain */
    struct lsn wake_obj;
    pthread_t thread;
    pthread_mutex_t lock; /* guards next */
    struct bindset *next;
    struct lsn *lsns; /* listeners this worker polls */
    size_t nlsns;
    struct conn *conns;
    long nconns;
    /* Wake handles no longer used by a stream, released after the current batch of
     * events, which may still hold an event pointing at one of them. */
    struct http_stream **dead;
    size_t ndead, dcap;
    char date[40];
    time_t date_sec;
    int listening;
    /* Written by this worker only; read (relaxed) by http_server_stats. */
    atomic_long open_conns;
    atomic_ulong accepted;
    atomic_ulong rejected; /* over the connection limit */
    atomic_ulong timeouts;
    /* Quiescence: bumped every loop turn; idle while blocked in epoll_wait. */
    _Alignas(CACHELINE) atomic_ulong epoch;
    atomic_int idle;
    /* For the balance: microseconds spent in epoll_wait so far, and since when
     * the worker has been waiting now (0: it is not). */
    atomic_llong idle_us, idle_since_us;
};

struct http_server {
    struct http_opts o;
    int nworkers;
    struct worker *w;
    struct bindset cur;   /* what workers have been told */
    struct binding **all; /* every binding ever made, freed at the end */
    size_t nall;
    atomic_int draining;
    atomic_long conns; /* open connections, all workers */
    int started, stopped;
    struct balance bal;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void update_date(struct worker *w)
{
    time_t t = time(NULL);
    if (t == w->date_sec)
        return;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(w->date, sizeof(w->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    w->date_sec = t;
}

static void set_events(struct worker *w, struct conn *c, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* ---- wake handles and streamed responses -------------------------------------- */

int http_stream_new(struct http_stream **out, struct sw_err *err)
{
    struct http_stream *s = xcalloc(1, sizeof(*s));
    s->tag = TAG_STREAM;
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        int e = errno;
        free(s);
        return sw_err_sys(err, e, "eventfd for a streamed response");
    }
    atomic_init(&s->refs, 1);
    *out = s;
    return 0;
}

void http_stream_wake(struct http_stream *s)
{
    uint64_t one = 1;
    /* Non-blocking, and the counter cannot overflow in practice; any error only means
     * the stream is woken already. */
    while (write(s->efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

void http_stream_free(struct http_stream *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        close(s->efd);
        free(s);
    }
}

static void release_dead(struct worker *w)
{
    for (size_t i = 0; i < w->ndead; i++)
        http_stream_free(w->dead[i]);
    w->ndead = 0;
}

/* Sets up the stream a handler asked for. The server owns the framing fields
 * (http.h), so they are added here, before the empty line that ends the head. */
static int stream_start(struct worker *w, struct conn *c, const struct http_request *req)
{
    struct http_response *r = &c->res;
    struct buf *h = &c->hdr;
    if (h->len < 4 || memcmp(h->data + h->len - 4, "\r\n\r\n", 4) != 0)
        return -1;
    struct stream_out *st = xmalloc(sizeof(*st));
    memset(st, 0, offsetof(struct stream_out, buf));
    if (r->wake) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = r->wake};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, r->wake->efd, &ev) < 0) {
            free(st);
            return -1;
        }
        atomic_fetch_add(&r->wake->refs, 1);
        r->wake->c = c;
        st->hs = r->wake;
    }
    st->chunked = req->minor == 1;
    st->done = req->method == HTTP_HEAD;
    /* RFC 9112 §6.3 item 8: without chunked, only the close ends the body. */
    if (!st->chunked)
        r->close = 1;
    h->len -= 2;
    h->data[h->len] = '\0';
    if (st->chunked)
        buf_adds(h, "Transfer-Encoding: chunked\r\n");
    if (r->close)
        buf_adds(h, "Connection: close\r\n");
    buf_adds(h, "\r\n");
    c->st = st;
    return 0;
}

static void stream_end(struct worker *w, struct conn *c)
{
    struct http_stream *hs = c->st->hs;
    if (hs) {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, hs->efd, NULL);
        hs->c = NULL;
        if (w->ndead == w->dcap) {
            w->dcap = w->dcap ? 2 * w->dcap : 16;
            w->dead = xrealloc(w->dead, w->dcap * sizeof(*w->dead));
        }
        w->dead[w->ndead++] = hs;
    }
    free(c->st);
    c->st = NULL;
}

/* Asks the producer for the next piece and frames it. 0: buf holds what to
 * send next (or the producer waits), -1: the stream failed. */
static int stream_produce(struct conn *c)
{
    struct stream_out *st = c->st;
    struct http_response *r = &c->res;
    size_t n = 0;
    int rc = r->stream(r->stream_arg, st->buf + STREAM_PRE, STREAM_ROOM, &n);
    if (rc == HTTP_STREAM_MORE && n == 0)
        rc = HTTP_STREAM_WAIT;
    if ((rc != HTTP_STREAM_MORE && rc != HTTP_STREAM_WAIT && rc != HTTP_STREAM_DONE) ||
        n > STREAM_ROOM || (rc == HTTP_STREAM_WAIT && !st->hs))
        return -1;
    st->off = STREAM_PRE;
    st->len = STREAM_PRE + n;
    if (st->chunked && n > 0) {
        /* RFC 9112 §7.1: chunk-size in hex, CRLF, the data, CRLF. */
        char line[STREAM_PRE];
        int k = snprintf(line, sizeof(line), "%zx\r\n", n);
        st->off -= (size_t)k;
        memcpy(st->buf + st->off, line, (size_t)k);
        memcpy(st->buf + st->len, "\r\n", 2);
        st->len += 2;
    }
    if (rc == HTTP_STREAM_DONE) {
        st->done = 1;
        if (st->chunked) { /* last-chunk and an empty trailer section */
            memcpy(st->buf + st->len, "0\r\n\r\n", 5);
            st->len += 5;
        }
    }
    st->wait = rc == HTTP_STREAM_WAIT;
    return 0;
}

/* A wake handle's eventfd fired: resume its stream if it is waiting. The
 * connection is only re-armed for EPOLLOUT here, never written or closed, so
 * no later event of this batch can find it freed. */
static void stream_woken(struct worker *w, struct http_stream *hs)
{
    uint64_t v;
    ssize_t ignored = read(hs->efd, &v, sizeof(v));
    (void)ignored;
    struct conn *c = hs->c;
    if (!c || !c->st || !c->st->wait)
        return;
    c->st->wait = 0;
    if (c->st->off == c->st->len)
        set_events(w, c, EPOLLOUT);
}

static void exchange_done(struct worker *w, struct conn *c, int completed)
{
    struct http_response *r = &c->res;
    struct http_exchange x = {c->method, c->target, c->hdr.len + r->body_len,
                              now_us() - c->req_start_us, completed};
    if (c->st) {
        x.bytes += c->st->sent;
        stream_end(w, c);
    }
    if (c->b->h->done)
        c->b->h->done(c->b->arg, w->id, &x, r);
    r->hold = NULL;
    c->busy = 0;
}

static void conn_close(struct worker *w, struct conn *c)
{
    if (c->busy)
        exchange_done(w, c, 0);
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    buf_free(&c->hdr);
    buf_free(&c->res.own);
    free(c->body);
    free(c->rbuf);
    free(c);
    w->nconns--;
    atomic_fetch_sub(&w->s->conns, 1);
    atomic_fetch_sub_explicit(&w->open_conns, 1, memory_order_relaxed);
}

/* Writes as much of the response as the socket takes. 1: done, 0: blocked,
 * 2: a stream waits for its producer, -1: error. */
static int conn_flush(struct worker *w, struct conn *c)
{
    struct http_response *r = &c->res;
    for (;;) {
        if (c->hdr_off < c->hdr.len) {
            struct iovec iov[2] = {{c->hdr.data + c->hdr_off, c->hdr.len - c->hdr_off}};
            int n = 1;
            if (r->body && c->body_off < r->body_len) {
                iov[1] = (struct iovec){(char *)r->body + c->body_off, r->body_len - c->body_off};
                n = 2;
            }
            struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
            ssize_t k = sendmsg(c->fd, &mh, MSG_NOSIGNAL | (r->fd >= 0 ? MSG_MORE : 0));
            if (k < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -1;
            size_t hk = (size_t)k < c->hdr.len - c->hdr_off ? (size_t)k : c->hdr.len - c->hdr_off;
            c->hdr_off += hk;
            c->body_off += (size_t)k - hk;
            continue;
        }
        if (r->body && c->body_off < r->body_len) {
            ssize_t k = send(c->fd, r->body + c->body_off, r->body_len - c->body_off, MSG_NOSIGNAL);
            if (k < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -1;
            c->body_off += (size_t)k;
            continue;
        }
        if (r->fd >= 0 && c->body_off < r->body_len) {
            off_t off = r->fd_off + (off_t)c->body_off;
            ssize_t k = sendfile(c->fd, r->fd, &off, r->body_len - c->body_off);
            if (k < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -1;
            if (k == 0)
                return -1; /* the cached blob shrank: never send a short body silently */
            c->body_off += (size_t)k;
            continue;
        }
        if (c->st) {
            struct stream_out *st = c->st;
            if (st->off < st->len) {
                ssize_t k = send(c->fd, st->buf + st->off, st->len - st->off, MSG_NOSIGNAL);
                if (k < 0)
                    return errno == EAGAIN || errno == EINTR ? 0 : -1;
                st->off += (size_t)k;
                st->sent += (size_t)k;
                continue;
            }
            if (st->done)
                return 1;
            if (st->wait)
                return 2;
            if (stream_produce(c) < 0)
                return -1;
            continue;
        }
        return 1;
    }
}

static void start_response(struct worker *w, struct conn *c)
{
    buf_reset(&c->hdr);
    buf_reset(&c->res.own);
    /* A handler may have built a large body there (a multipart/byteranges answer): a
     * keep-alive connection does not go on holding that much memory. */
    if (c->res.own.cap > 64 * 1024)
        buf_free(&c->res.own);
    struct buf own = c->res.own;
    const int *tag = c->b->h->tag_default;
    c->res = (struct http_response){.hdr = &c->hdr, .own = own, .fd = -1, .tag = {tag[0], tag[1]}};
    c->hdr_off = 0;
    c->body_off = 0;
    c->busy = 1;
}

static void note_request(struct conn *c, const struct http_request *req)
{
    size_t ml = req->method_len < sizeof(c->method) - 1 ? req->method_len : sizeof(c->method) - 1;
    memcpy(c->method, req->method_str, ml);
    c->method[ml] = '\0';
    size_t tl = req->target_len < sizeof(c->target) - 1 ? req->target_len : sizeof(c->target) - 1;
    memcpy(c->target, req->target, tl);
    c->target[tl] = '\0';
}

/* Closes c once the response is out. Closing a socket that still holds unread
 * bytes makes the kernel send a reset (RFC 9293 §3.6: a close with data
 * pending aborts), which can destroy the response before the client reads it:
 * the 413 for a body sent without waiting for 100-continue, a 400 for a bad
 * request followed by more. So after an error the write side is shut (the
 * client sees the end of the response) and the rest is read off, bounded,
 * before the close (RFC 9112 §9.6). */
static void conn_finish(struct worker *w, struct conn *c, int status)
{
    if (status < 400 || atomic_load(&w->s->draining) || shutdown(c->fd, SHUT_WR) < 0) {
        conn_close(w, c);
        return;
    }
    c->lingering = 1;
    c->linger_until_ms = time_mono_ms() + LINGER_MS;
    c->rlen = 0;
    set_events(w, c, EPOLLIN | EPOLLRDHUP);
}

/* Reads and drops what a lingering connection's client still sends; closes it at the
 * end of the stream, on an error or past LINGER_MAX bytes. */
static void conn_linger(struct worker *w, struct conn *c)
{
    char sink[16384];
    for (;;) {
        ssize_t k = read(c->fd, sink, sizeof(sink));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return;
        if (k <= 0 || (c->lingered += (size_t)k) > LINGER_MAX) {
            conn_close(w, c);
            return;
        }
    }
}

/* Finishes the current response if it can; returns -1 when c was closed (or is
 * lingering before its close: either way the caller must not use it). */
static int conn_send(struct worker *w, struct conn *c)
{
    int st = conn_flush(w, c);
    if (st < 0) {
        conn_close(w, c);
        return -1;
    }
    if (st == 0) {
        set_events(w, c, EPOLLOUT);
        return 0;
    }
    if (st == 2) {
        /* Nothing to write until a wake: watch only for the client going away. */
        set_events(w, c, EPOLLRDHUP);
        return 0;
    }
    int close_after = c->res.close, status = c->res.status;
    exchange_done(w, c, 1);
    if (close_after) {
        conn_finish(w, c, status);
        return -1;
    }
    return 0;
}

/* ---- request bodies ----------------------------------------------------------- */

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* Sends what is left of an owed 100 Continue. 0: sent, or waiting for EPOLLOUT
 * (b->cont still set); -1: c was closed. */
static int send_continue(struct worker *w, struct conn *c)
{
    struct body_rd *b = c->body;
    while (b->cont_sent < sizeof(continue_line) - 1) {
        ssize_t k = send(c->fd, continue_line + b->cont_sent,
                         sizeof(continue_line) - 1 - b->cont_sent, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN) {
            set_events(w, c, EPOLLOUT);
            return 0;
        }
        if (k < 0) {
            conn_close(w, c);
            return -1;
        }
        b->cont_sent += (size_t)k;
    }
    b->cont = 0;
    return 0;
}

/* A head that announces a body: read the body before calling the handler.
 * Returns -1 when c was closed. */
static int body_begin(struct worker *w, struct conn *c, const struct http_request *req,
                      size_t head_len)
{
    struct body_rd *b = xcalloc(1, sizeof(*b));
    b->head_len = head_len;
    b->chunked = req->chunked;
    b->want = req->content_length;
    if (b->chunked) {
        http_chunked_init(&b->dec, c->b->body_max);
        /* The body is decoded in place, so the buffer holds the head, at most
         * body_max bytes of body and one read of what follows. */
        b->cap = head_len + (size_t)c->b->body_max + MAX_HEAD;
    } else {
        b->cap = head_len + (size_t)b->want;
    }
    b->deadline_ms = time_mono_ms() + w->s->o.body_timeout_ms;
    /* RFC 9110 §10.1.1: the client waits for 100 before it sends the body; a
     * body already arriving needs none. */
    b->cont = req->expect_continue && c->rlen == head_len;
    c->body = b;
    note_request(c, req);
    return b->cont ? send_continue(w, c) : 0;
}

/* Takes in what arrived of the body. 1: complete, with *req re-parsed from
 * the head (its pointers moved with the buffer) and the body in req->body,
 * and *used the bytes of both; 0: more needed; or a negative status. */
static int body_step(struct conn *c, struct http_request *req, size_t *used)
{
    struct body_rd *b = c->body;
    size_t blen;
    if (b->expired)
        return -408; /* RFC 9110 §15.5.9 */
    if (b->cont)
        return 0; /* the 100 goes out whole before any final response */
    if (b->chunked) {
        /* Undecoded bytes start where the decoded body ends: every earlier call
         * consumed all it was given. */
        size_t at = b->head_len + (size_t)b->dec.total, u, m;
        char *p = c->rbuf + at;
        int rc = http_chunked_decode(&b->dec, p, c->rlen - at, p, &u, &m);
        if (rc < 0)
            return rc;
        memmove(p + m, p + u, c->rlen - at - u);
        c->rlen -= u - m;
        if (rc == 0)
            return 0;
        blen = (size_t)b->dec.total;
    } else {
        if (c->rlen - b->head_len < b->want)
            return 0;
        blen = (size_t)b->want;
    }
    if (http_parse_head(c->rbuf, b->head_len, MAX_LINE, MAX_HEAD, c->b->body_max, req) !=
        (int)b->head_len)
        return -500; /* the same bytes parsed a moment ago: cannot happen */
    req->body = c->rbuf + b->head_len;
    req->body_len = blen;
    *used = b->head_len + blen;
    return 1;
}

/* The body is done with: give back the memory it needed. */
static void body_end(struct conn *c)
{
    free(c->body);
    c->body = NULL;
    if (c->rcap > MAX_HEAD && c->rlen <= MAX_HEAD) {
        c->rbuf = xrealloc(c->rbuf, MAX_HEAD);
        c->rcap = MAX_HEAD;
    }
}

/* Parses and answers every complete request in the buffer, one at a time. */
static int conn_process(struct worker *w, struct conn *c)
{
    while (!c->busy && c->rlen > 0) {
        struct http_request req;
        size_t used = 0;
        int n;
        if (c->body) {
            n = body_step(c, &req, &used);
            if (n == 0)
                return 0;
        } else {
            n = http_parse_head(c->rbuf, c->rlen, MAX_LINE, MAX_HEAD, c->b->body_max, &req);
            if (n == 0 && c->rlen < MAX_HEAD)
                return 0;
            c->req_start_us = now_us();
            if (n > 0 && (req.chunked | (req.content_length != 0))) {
                if (body_begin(w, c, &req, (size_t)n) < 0)
                    return -1;
                continue;
            }
            used = (size_t)n;
        }
        start_response(w, c);
        update_date(w);
        if (n <= 0) {
            if (!c->body) {
                snprintf(c->method, sizeof(c->method), "-");
                snprintf(c->target, sizeof(c->target), "-");
            }
            http_respond_error(&c->res, n == 0 ? 431 : -n, w->date);
            c->rlen = 0;
        } else {
            note_request(c, &req);
            c->res.close = !req.keep_alive || atomic_load(&w->s->draining);
            c->b->h->handle(c->b->arg, w->id, &req, w->date, &c->res);
            if (c->res.stream && stream_start(w, c, &req) < 0) {
                buf_reset(&c->hdr);
                buf_reset(&c->res.own);
                http_respond_error(&c->res, 500, w->date);
            }
            memmove(c->rbuf, c->rbuf + used, c->rlen - used);
            c->rlen -= used;
        }
        if (c->body)
            body_end(c);
        c->head_start_ms = c->rlen ? time_mono_ms() : 0;
        if (conn_send(w, c) < 0)
            return -1;
    }
    return 0;
}

static void conn_readable(struct worker *w, struct conn *c)
{
    for (;;) {
        if (c->busy)
            return;
        if (c->rlen == c->rcap) {
            size_t lim = c->body ? c->body->cap : MAX_HEAD;
            if (c->rcap >= lim) {
                if (conn_process(w, c) < 0)
                    return;
                if (c->rlen == c->rcap)
                    return;
                continue;
            }
            c->rcap = c->rcap ? c->rcap * 2 : 4096;
            if (c->rcap > lim)
                c->rcap = lim;
            c->rbuf = xrealloc(c->rbuf, c->rcap);
        }
        size_t room = c->rcap - c->rlen;
        ssize_t k = read(c->fd, c->rbuf + c->rlen, room);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return;
        if (k <= 0) {
            conn_close(w, c);
            return;
        }
        int64_t now = time_mono_ms();
        if (c->rlen == 0)
            c->head_start_ms = now;
        c->last_ms = now;
        size_t old = c->rlen;
        c->rlen += (size_t)k;
        /* A short read took all the socket had. The epoll set is
         * level-triggered, so wait for it to report more instead of paying
         * for one more read that fails with EAGAIN: a third of the system
         * calls of a small keep-alive request. */
        int drained = (size_t)k < room;
        /* Re-parse only when a line may have ended: keeps byte-at-a-time
         * clients linear instead of quadratic. (A body is decoded as it comes.) */
        if (!c->body && !memchr(c->rbuf + old, '\n', (size_t)k) && c->rlen < MAX_HEAD) {
            if (drained)
                return;
            continue;
        }
        if (conn_process(w, c) < 0 || drained)
            return;
    }
}

static void conn_writable(struct worker *w, struct conn *c)
{
    c->last_ms = time_mono_ms();
    if (c->body) {
        /* While a body is read, the one thing written is a 100 Continue. */
        if (send_continue(w, c) < 0 || c->body->cont)
            return;
        set_events(w, c, EPOLLIN | EPOLLRDHUP);
        if (conn_process(w, c) < 0)
            return;
        conn_readable(w, c);
        return;
    }
    if (conn_send(w, c) < 0 || c->busy)
        return;
    set_events(w, c, EPOLLIN | EPOLLRDHUP);
    if (c->rlen && conn_process(w, c) < 0)
        return;
    conn_readable(w, c);
}

static void accept_all(struct worker *w, struct lsn *l)
{
    struct http_server *s = w->s;
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN, or EMFILE: retried on the next readiness */
        }
        atomic_fetch_add_explicit(&w->accepted, 1, memory_order_relaxed);
        if (atomic_fetch_add(&s->conns, 1) >= s->o.max_connections) {
            atomic_fetch_sub(&s->conns, 1);
            atomic_fetch_add_explicit(&w->rejected, 1, memory_order_relaxed);
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nServer: slipway\r\n"
                                       "Content-Length: 0\r\nRetry-After: 1\r\n"
                                       "Connection: close\r\n\r\n";
            ssize_t ignored = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)ignored;
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = xcalloc(1, sizeof(*c));
        c->tag = TAG_CONN;
        c->fd = fd;
        c->b = l->b;
        c->last_ms = time_mono_ms();
        c->res.fd = -1;
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
        w->nconns++;
        atomic_fetch_add_explicit(&w->open_conns, 1, memory_order_relaxed);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            conn_close(w, c);
    }
}

/* Adopts a new set of bindings: drops listeners no longer wanted, adds new ones. */
static void take_bindings(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    struct bindset *bs = w->next;
    w->next = NULL;
    pthread_mutex_unlock(&w->lock);
    if (!bs)
        return;
    struct lsn *nl = xcalloc(bs->n ? bs->n : 1, sizeof(*nl));
    size_t nn = 0;
    for (size_t i = 0; i < w->nlsns; i++) {
        int kept = 0;
        for (size_t j = 0; j < bs->n && !kept; j++)
            kept = bs->v[j] == w->lsns[i].b;
        if (!kept) {
            epoll_ctl(w->ep, EPOLL_CTL_DEL, w->lsns[i].fd, NULL);
            close(w->lsns[i].fd);
        }
    }
    for (size_t j = 0; j < bs->n; j++) {
        struct lsn *old = NULL;
        for (size_t i = 0; i < w->nlsns && !old; i++)
            if (w->lsns[i].b == bs->v[j])
                old = &w->lsns[i];
        nl[nn] = old ? *old : (struct lsn){TAG_LISTENER, bs->v[j], bs->v[j]->fds[w->id]};
        /* A new group chooses as the others do (until then, by hash). */
        if (!old && w->id == 0 && atomic_load(&w->s->bal.usable))
            balance_attach(&w->s->bal, nl[nn].fd, atomic_load(&w->s->bal.steering));
        nn++;
    }
    free(w->lsns);
    w->lsns = nl;
    w->nlsns = nn;
    /* Re-register every listener: the epoll data points into the new array. */
    for (size_t i = 0; i < nn; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->lsns[i]};
        if (epoll_ctl(w->ep, EPOLL_CTL_MOD, w->lsns[i].fd, &ev) < 0)
            epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lsns[i].fd, &ev);
    }
    free(bs->v);
    free(bs);
}

static void stop_listening(struct worker *w)
{
    for (size_t i = 0; i < w->nlsns; i++) {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, w->lsns[i].fd, NULL);
        close(w->lsns[i].fd);
    }
    w->nlsns = 0;
    w->listening = 0;
}

/* Closes connections past their header or idle deadline. */
static void sweep(struct worker *w, int draining)
{
    const struct http_opts *o = &w->s->o;
    int64_t now = time_mono_ms();
    struct conn *next;
    for (struct conn *c = w->conns; c; c = next) {
        next = c->next;
        if (c->lingering) {
            if (draining || now > c->linger_until_ms)
                conn_close(w, c);
            continue;
        }
        /* A stream waiting for its producer lasts as long as the handler wants. */
        int waiting = c->st && c->st->wait && c->st->off == c->st->len;
        int expired = c->body               ? now > c->body->deadline_ms
                      : waiting             ? 0
                      : c->rlen && !c->busy ? now - c->head_start_ms > o->header_timeout_ms
                                            : now - c->last_ms > o->idle_timeout_ms;
        if (expired)
            atomic_fetch_add_explicit(&w->timeouts, 1, memory_order_relaxed);
        if (expired && c->body && !(c->body->cont && c->body->cont_sent)) {
            c->body->expired = 1;
            conn_process(w, c);
        } else if (expired || (draining && ((!c->busy && !c->rlen) || waiting)))
            conn_close(w, c);
    }
}

/* Worker 0, about once a second: hands every worker's idle time to the
 * balance and, when its choice changes, attaches it to every group (worker
 * 0's socket of a group stands for the group). */
static void balance_check(struct worker *w)
{
    struct http_server *s = w->s;
    int64_t idle[HTTP_MAX_WORKERS], now = now_us();
    for (int i = 0; i < s->nworkers; i++) {
        /* Read in this order, a wait ending in between is counted next time, not twice. */
        idle[i] = atomic_load_explicit(&s->w[i].idle_us, memory_order_relaxed);
        int64_t since = atomic_load_explicit(&s->w[i].idle_since_us, memory_order_relaxed);
        if (since && since < now)
            idle[i] += now - since;
    }
    if (balance_tick(&s->bal, idle, now))
        for (size_t i = 0; i < w->nlsns; i++)
            balance_attach(&s->bal, w->lsns[i].fd, atomic_load(&s->bal.steering));
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct http_server *s = w->s;
    struct epoll_event evs[256];
    int64_t last_sweep = time_mono_ms(), drain_deadline = 0;
    w->listening = 1;
    for (;;) {
        atomic_fetch_add(&w->epoch, 1);
        int draining = atomic_load(&s->draining);
        if (draining) {
            if (w->listening) {
                stop_listening(w);
                drain_deadline = time_mono_ms() + s->o.drain_timeout_ms;
            }
            sweep(w, 1);
            if (!w->conns || time_mono_ms() > drain_deadline)
                break;
        }
        int64_t wait_us = now_us();
        atomic_store_explicit(&w->idle_since_us, wait_us, memory_order_relaxed);
        atomic_store(&w->idle, 1);
        int n = epoll_wait(w->ep, evs, 256, draining ? 50 : 1000);
        atomic_store(&w->idle, 0);
        wait_us = now_us() - wait_us;
        atomic_store_explicit(&w->idle_since_us, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&w->idle_us, wait_us, memory_order_relaxed);
        for (int i = 0; i < n; i++) {
            int tag = *(int *)evs[i].data.ptr;
            if (tag == TAG_WAKE) {
                uint64_t v;
                ssize_t ignored = read(w->wake, &v, sizeof(v));
                (void)ignored;
                take_bindings(w);
            } else if (tag == TAG_LISTENER) {
                if (!atomic_load(&s->draining))
                    accept_all(w, evs[i].data.ptr);
            } else if (tag == TAG_STREAM) {
                stream_woken(w, evs[i].data.ptr);
            } else {
                struct conn *c = evs[i].data.ptr;
                if (c->lingering)
                    conn_linger(w, c);
                else if (evs[i].events & EPOLLOUT)
                    conn_writable(w, c);
                else if (c->busy && (evs[i].events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
                    conn_close(w, c);
                else if (!c->busy)
                    conn_readable(w, c);
            }
        }
        if (w->ndead)
            release_dead(w);
        int64_t now = time_mono_ms();
        if (now - last_sweep >= 1000) {
            sweep(w, 0);
            last_sweep = now;
            if (w->id == 0)
                balance_check(w);
        }
    }
    while (w->conns)
        conn_close(w, w->conns);
    release_dead(w);
    stop_listening(w);
    return NULL;
}

/* ---- errors the server answers itself ------------------------------------------ */

const char *http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 416:
        return "Range Not Satisfiable";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

void http_respond_error(struct http_response *r, int status, const char *date)
{
    char body[128];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, http_reason(status));
    r->close = 1;
    r->status = status;
    buf_addf(r->hdr,
             "HTTP/1.1 %d %s\r\nServer: slipway\r\nDate: %s\r\n"
             "Content-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n"
             "Content-Length: %d\r\nConnection: close\r\n\r\n",
             status, http_reason(status), date, n);
    buf_add(&r->own, body, (size_t)n);
    r->body = r->own.data;
    r->body_len = (uint64_t)n;
}

/* ---- the server's life ---------------------------------------------------------------- */

void http_opts_init(struct http_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->header_timeout_ms = 10000;
    o->idle_timeout_ms = 60000;
    o->drain_timeout_ms = 10000;
    o->max_connections = 10000;
    o->body_timeout_ms = 30000;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int http_server_new(const struct http_opts *o, struct http_server **out, struct sw_err *err)
{
    struct http_server *s = xcalloc(1, sizeof(*s));
    s->o = *o;
    s->nworkers = o->workers > 0 ? o->workers : sys_ncpu();
    if (s->nworkers > HTTP_MAX_WORKERS)
        s->nworkers = HTTP_MAX_WORKERS;
    balance_init(&s->bal, s->nworkers, o->balance);
    raise_fd_limit();
    /* A peer that closes early must be an EPIPE on one connection, not a
     * signal that ends the process. */
    signal(SIGPIPE, SIG_IGN);
    s->w = xcalloc_aligned((size_t)s->nworkers, sizeof(*s->w), CACHELINE);
    for (int i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->w[i];
        w->s = s;
        w->id = i;
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        pthread_mutex_init(&w->lock, NULL);
        w->wake_obj.tag = TAG_WAKE;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->wake_obj};
        if (w->ep < 0 || w->wake < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wake, &ev) < 0) {
            int rc = sw_err_sys(err, errno, "epoll");
            http_server_free(s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

int http_server_workers(const struct http_server *s)
{
    return s->nworkers;
}

static void wake(struct worker *w)
{
    uint64_t one = 1;
    ssize_t ignored = write(w->wake, &one, sizeof(one));
    (void)ignored;
}

static void send_bindings(struct http_server *s, const struct bindset *bs)
{
    for (int i = 0; i < s->nworkers; i++) {
        struct bindset *copy = xcalloc(1, sizeof(*copy));
        copy->v = xcalloc(bs->n ? bs->n : 1, sizeof(*copy->v));
        memcpy(copy->v, bs->v, bs->n * sizeof(*bs->v));
        copy->n = bs->n;
        pthread_mutex_lock(&s->w[i].lock);
        if (s->w[i].next) {
            free(s->w[i].next->v);
            free(s->w[i].next);
        }
        s->w[i].next = copy;
        pthread_mutex_unlock(&s->w[i].lock);
        wake(&s->w[i]);
    }
    free(s->cur.v);
    s->cur.n = bs->n;
    s->cur.v = xcalloc(bs->n ? bs->n : 1, sizeof(*bs->v));
    memcpy(s->cur.v, bs->v, bs->n * sizeof(*bs->v));
}

/* Closes and frees the bindings made since s->all held keep of them. */
static void drop_bindings_from(struct http_server *s, size_t keep)
{
    for (size_t i = keep; i < s->nall; i++) {
        for (int k = 0; k < s->nworkers; k++)
            if (s->all[i]->fds[k] >= 0)
                close(s->all[i]->fds[k]);
        free(s->all[i]->addr);
        free(s->all[i]);
    }
    s->nall = keep;
}

int http_server_listen(struct http_server *s, const struct http_listener *v, size_t n,
                       struct sw_err *err)
{
    struct bindset bs = {xcalloc(n + 1, sizeof(*bs.v)), 0};
    size_t had = s->nall;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        for (size_t j = 0; j < bs.n && !rc; j++)
            if (!strcmp(bs.v[j]->addr, v[i].addr))
                rc = sw_err_set(err, SW_EINVAL, "address %s is used twice (%s)", v[i].addr,
                                v[i].owner ? v[i].owner : "?");
        if (rc)
            break;
        struct binding *b = NULL;
        int ours = 0;
        for (size_t j = 0; j < s->cur.n && !b; j++) {
            struct binding *c = s->cur.v[j];
            ours |= !strcmp(c->addr, v[i].addr);
            if (!strcmp(c->addr, v[i].addr) && c->h == v[i].handler && c->arg == v[i].arg)
                b = c;
        }
        /* An address this server holds already (moved to another handler by
         * a reload) is ours to bind again; any other must be free of every
         * other process. */
        if (!b) {
            b = binding_new(&v[i], s->nworkers, !ours, err);
            if (!b) {
                rc = err ? err->code : SW_EIO;
                break;
            }
            s->all = xrealloc(s->all, (s->nall + 1) * sizeof(*s->all));
            s->all[s->nall++] = b;
        }
        bs.v[bs.n++] = b;
    }
    if (rc)
        drop_bindings_from(s, had);
    else
        send_bindings(s, &bs);
    free(bs.v);
    return rc;
}

int http_server_start(struct http_server *s, struct sw_err *err)
{
    for (; s->started < s->nworkers; s->started++)
        if (pthread_create(&s->w[s->started].thread, NULL, worker_main, &s->w[s->started]) != 0)
            return sw_err_set(err, SW_EIO, "cannot start worker threads");
    return 0;
}

void http_server_stop(struct http_server *s)
{
    if (!s || s->stopped)
        return;
    s->stopped = 1;
    atomic_store(&s->draining, 1);
    for (int i = 0; i < s->started; i++)
        wake(&s->w[i]);
    for (int i = 0; i < s->started; i++)
        pthread_join(s->w[i].thread, NULL);
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    http_server_stop(s);
    for (int i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->w[i];
        if (w->next) {
            free(w->next->v);
            free(w->next);
        }
        free(w->lsns);
        free(w->dead);
        if (w->ep > 0)
            close(w->ep);
        if (w->wake > 0)
            close(w->wake);
        pthread_mutex_destroy(&w->lock);
    }
    /* Sockets of workers that never started (or bindings never handed out):
     * a started worker closed its own. */
    for (size_t i = 0; i < s->nall; i++) {
        for (int k = s->started; k < s->nworkers; k++)
            if (s->all[i]->fds[k] >= 0)
                close(s->all[i]->fds[k]);
        free(s->all[i]->addr);
        free(s->all[i]);
    }
    free(s->all);
    free(s->cur.v);
    free(s->w);
    free(s);
}

void http_server_stats(struct http_server *s, struct http_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < s->nworkers; i++) {
        out->open += atomic_load_explicit(&s->w[i].open_conns, memory_order_relaxed);
        out->accepted += atomic_load_explicit(&s->w[i].accepted, memory_order_relaxed);
        out->rejected += atomic_load_explicit(&s->w[i].rejected, memory_order_relaxed);
        out->timeouts += atomic_load_explicit(&s->w[i].timeouts, memory_order_relaxed);
    }
    if (out->open < 0)
        out->open = 0;
    out->by_cpu = atomic_load(&s->bal.usable) && atomic_load(&s->bal.steering);
    out->unsteered = atomic_load(&s->bal.unsteered);
}

unsigned long http_server_worker_accepted(struct http_server *s, int worker)
{
    if (worker < 0 || worker >= s->nworkers)
        return 0;
    return atomic_load_explicit(&s->w[worker].accepted, memory_order_relaxed);
}

void http_server_snapshot(struct http_server *s, unsigned long *epochs)
{
    for (int i = 0; i < s->nworkers; i++)
        epochs[i] = atomic_load(&s->w[i].epoch);
}

int http_server_quiesced(struct http_server *s, const unsigned long *epochs)
{
    for (int i = 0; i < s->nworkers; i++)
        if (!atomic_load(&s->w[i].idle) && atomic_load(&s->w[i].epoch) == epochs[i])
            return 0;
    return 1;
}
