/*
 * http — an HTTP/1.1 server core that knows nothing of slipway: listening
 * sockets, one epoll worker thread per core, connections with keep-alive and
 * pipelining, the strict request parser, request bodies for handlers that
 * want them, response writing (headers and a body from memory, from a file with
 * sendfile, or streamed), timeouts, a connection limit and a graceful drain. Each listener has a
 * handler; the edge's static-file handler is one, the control API will be another.
 *
 * The parser, the chunked decoder and the normaliser read untrusted bytes. They
 * never allocate, never write outside the memory they are given, do work linear
 * in their input and keep no state of their own (the decoder's is the caller's),
 * so they are safe to call from any number of threads at once. docs/http.md
 * describes the module.
 */
#ifndef SW_HTTP_H
#define SW_HTTP_H

#include "base/base.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* HTTP_OTHER: a syntactically valid token method we don't serve (the caller answers 405). */
enum http_method { HTTP_GET = 1, HTTP_HEAD, HTTP_OTHER };

#define HTTP_MAX_HEADERS 64
/* The server's limits: a request line up to HTTP_MAX_LINE bytes (414 beyond),
 * a head up to HTTP_MAX_HEAD (431 beyond). */
#define HTTP_MAX_LINE 8192
#define HTTP_MAX_HEAD 16384

/* One header field line; name and value point into the parsed buffer, value has OWS trimmed. */
struct http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* A parsed request head. Every pointer points into the buffer given to http_parse_request
 * and is valid only as long as that buffer is unchanged. */
struct http_request {
    enum http_method method;
    const char *method_str;
    size_t method_len;
    const char *target; /* raw request-target as sent */
    size_t target_len;
    int minor; /* 0 or 1 (HTTP/1.0, HTTP/1.1) */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    /* RFC 9112 §9.3: HTTP/1.1 persists unless a "close" connection option is sent;
     * HTTP/1.0 persists only with "keep-alive" (and no "close"). */
    int keep_alive;
    /* Headers the server uses, NULL/0 when absent. Each may occur at most once (a second
     * line is refused with -400), so the one pointer is the whole field value.
     * host: the Host field value; for an absolute-form target ("http://a.b/x") it is the
     * target's authority instead, since RFC 9112 §3.2.2 makes the server ignore Host then. */
    const char *host;
    size_t host_len;
    const char *if_none_match;
    size_t if_none_match_len;
    const char *range;
    size_t range_len;
    const char *accept_encoding;
    size_t accept_encoding_len;
    /* The other preconditions (RFC 9110 §13.1), read by the http_*_match and http_date_parse
     * functions below. */
    const char *if_match;
    size_t if_match_len;
    const char *if_modified_since;
    size_t if_modified_since_len;
    const char *if_unmodified_since;
    size_t if_unmodified_since_len;
    const char *if_range;
    size_t if_range_len;
    /* The body's framing (RFC 9112 §6.3), set by http_parse_head for a handler that accepts
     * bodies; always 0 from http_parse_request. At most one of them is set. */
    int chunked;             /* Transfer-Encoding: chunked */
    uint64_t content_length; /* Content-Length, 0 when absent */
    int expect_continue;     /* "Expect: 100-continue" in an HTTP/1.1 request (RFC 9110 §10.1.1) */
    /* The whole request body, decoded, as the server hands it to handle(): body_len bytes
     * (at most the handler's body_max), valid only during that call; NULL when there is none. */
    const char *body;
    size_t body_len;
};

/*
 * Parses one request head from buf[0..len). Returns the number of bytes of the head (through
 * the final CRLF CRLF, including any empty lines skipped before the request line) when it is
 * complete, 0 when more bytes are needed, or a negative HTTP status when the request must be
 * refused and the connection closed:
 *   -400 malformed or ambiguous (including any Transfer-Encoding, and any Content-Length but a
 *        single "0": requests never have bodies here), -414 request line longer than max_line,
 *   -431 head longer than max_head or more than HTTP_MAX_HEADERS fields,
 *   -505 a well-formed HTTP version other than 1.0 and 1.1.
 * A negative result may be returned before the head is complete, as soon as it is certain.
 * Stateless: after 0, call again with the same bytes plus more; each call is O(min(len,
 * max_head)). On return <= 0 the contents of *req are unspecified.
 * A client sending one byte at a time would make re-parsing quadratic; a 0 can only turn into
 * a head length when the new bytes hold a '\n', so a caller may re-parse only then or when
 * len >= max_head (an error is then reported later, never missed).
 * The same as http_parse_head with body_max 0.
 */
int http_parse_request(const char *buf, size_t len, size_t max_line, size_t max_head,
                       struct http_request *req);

/*
 * http_parse_request for a handler that accepts request bodies of up to body_max bytes (0: none,
 * exactly http_parse_request). The head may then announce a body, and req->content_length or
 * req->chunked says how it is framed; the body itself follows the head and is not read here.
 * Framing stays strict (RFC 9112 §6.1-6.3), since a body read differently by two peers is
 * request smuggling: -400 for Transfer-Encoding together with Content-Length, in an HTTP/1.0
 * request, or on two lines; for Content-Length that is not one plain decimal number (lists,
 * duplicates, signs, leading zeros); -501 for a well-formed Transfer-Encoding other than
 * exactly "chunked"; -413 (Content Too Large) for a Content-Length above body_max, decided
 * once the head is complete so that a later malformed line still gets its 400.
 */
int http_parse_head(const char *buf, size_t len, size_t max_line, size_t max_head,
                    uint64_t body_max, struct http_request *req);

/*
 * A resumable decoder of the chunked transfer coding (RFC 9112 §7.1) for request bodies. It
 * keeps its place in *st between calls, so a body can be decoded as its bytes arrive, each
 * byte looked at once. Chunk extensions are checked and ignored; trailer fields are checked
 * and discarded. Pure: no allocation, no I/O; one decoder per body, any number of threads.
 */
#define HTTP_MAX_CHUNK_LINE 1024       /* a chunk-size line, extensions and CRLF (400 beyond) */
#define HTTP_MAX_TRAILER HTTP_MAX_HEAD /* all trailer field lines (431 beyond) */
struct http_chunked {
    uint64_t max;   /* the most body bytes accepted (413 beyond) */
    uint64_t total; /* body bytes decoded so far */
    uint64_t left;  /* data bytes still to come in the current chunk, or its size so far */
    size_t line;    /* bytes of the current chunk-size line, or of the trailer section */
    int state;
};
void http_chunked_init(struct http_chunked *st, uint64_t max);
/*
 * Decodes in[0..len) and writes the body bytes it carries to out, which may be in itself or
 * any address before it (the writing never overtakes the reading, so a buffer can be decoded
 * in place). Sets *used to the input bytes consumed and *made to the body bytes written.
 * Returns 1 when the body ended: in[*used..len) belongs to the next message; 0 when all of
 * in was consumed and more is needed; -400 for bad syntax (a bare CR or LF, a non-hex size,
 * a size line over HTTP_MAX_CHUNK_LINE, data not followed by CRLF, a malformed extension or
 * trailer), -413 as soon as a chunk-size takes the body past max, -431 for trailers over
 * HTTP_MAX_TRAILER. After 1 or a negative result, every later call returns the same with
 * nothing used. Feeding the bytes in any pieces gives the same results as all at once.
 */
int http_chunked_decode(struct http_chunked *st, const char *in, size_t len, char *out,
                        size_t *used, size_t *made);

/*
 * Decodes and normalises the path of a request-target into out (NUL-terminated, starts with
 * '/'). The query ("?...") is dropped; an absolute-form http(s) target has its scheme and
 * authority stripped. Percent-decoding is done exactly once: "%252e" yields the bytes "%2e".
 * "." and empty segments are removed, ".." pops a segment, a trailing slash is kept.
 * Returns the length of out, or -400 for anything that is not a plain path: another form of
 * target, a bad or encoded '/' or '\' escape, any '\', '#', NUL or control byte (raw or
 * encoded), a ".." (in any encoding) that would climb above the root, or a result that does
 * not fit in outlen-1 bytes. Decoded bytes >= 0x80 are kept as they are.
 */
int http_path_normalize(const char *target, size_t len, char *out, size_t outlen);

/* Returns the index in req->headers of the first field named name (ASCII case-insensitive),
 * or -1. */
int http_find_header(const struct http_request *req, const char *name);

/* ---- request header fields (fields.c) --------------------------------------------
 * Pure functions of one field value (value[0..len), as the parser keeps it: OWS trimmed)
 * and what the server knows of the representation. They never allocate, read nothing
 * beyond value[len), do work linear in len and keep no state: safe from any thread. */

/*
 * If-Match / If-None-Match (RFC 9110 §13.1.1, §13.1.2): "*" or a list of entity-tags, against
 * etag, the representation's entity-tag as sent in ETag: "abc" with its quotes, or W/"abc".
 * weak selects the weak comparison (If-None-Match), else the strong one (If-Match: a weak tag
 * on either side never matches), RFC 9110 §8.8.3.2. "*" matches, since the caller has a
 * representation. Returns 1 when a member matches, 0 when none does, -1 when value is NULL or
 * not such a list (it then matches nothing).
 */
int http_etag_list_match(const char *value, size_t len, const char *etag, size_t etag_len,
                         int weak);

/*
 * If-Range (RFC 9110 §13.1.5): 1 when a Range may be served: value is an entity-tag equal to
 * etag by the strong comparison, or an HTTP-date equal to last_modified exactly. 0 otherwise
 * (a weak tag, another date, anything malformed, a NULL value): then the whole body is sent.
 */
int http_if_range_match(const char *value, size_t len, const char *etag, size_t etag_len,
                        time_t last_modified);

/*
 * Accept-Encoding (RFC 9110 §12.5.3): the qvalue, in thousandths (0..1000), that value gives
 * the content coding named coding ("gzip", "br", "identity"); 0 means not acceptable. The
 * first entry naming it decides, else "*", else identity is acceptable (1000) and any other
 * coding not; "identity;q=0" or "*;q=0" refuse identity; "x-gzip" is "gzip" (§8.4.1.3);
 * malformed entries are ignored. value NULL (no field): identity only.
 */
int http_coding_accepted(const char *value, size_t len, const char *coding);

/*
 * HTTP-date (RFC 9110 §5.6.7): IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") and the two
 * obsolete forms a recipient MUST accept, rfc850-date ("Sunday, 06-Nov-94 08:49:37 GMT"; a
 * two-digit year more than 50 years ahead of the clock is the previous century's) and
 * asctime-date ("Sun Nov  6 08:49:37 1994"). Exact form, case and width; the date must exist
 * (no Feb 30, hour 24); the day name is not checked against the date. 0 and *t as seconds
 * since the epoch, or -1.
 */
int http_date_parse(const char *value, size_t len, time_t *t);

/* Writes t as an IMF-fixdate and a NUL into out; t is clamped to the years 0000-9999. */
#define HTTP_DATE_LEN 29
#define HTTP_DATE_MIN (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define HTTP_DATE_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */
void http_date_format(time_t t, char out[HTTP_DATE_LEN + 1]);

/* A satisfiable byte range: off + len <= the representation's size, len >= 1. */
struct http_range {
    uint64_t off;
    uint64_t len;
};

/*
 * Range (RFC 9110 §14.1.1, §14.2) against a representation of size bytes. Returns
 *   1: out[0..*n) holds the satisfiable ranges, 1 <= *n <= max, sorted, coalesced so that no
 *      two overlap or touch (§15.3.7.2 allows it): their total never exceeds size;
 *   0: ignore the field and send the whole body (§14.2): not "bytes=", any invalid
 *      range-spec, more than max parts even after coalescing, or a zero-length body;
 *  -1: well-formed but nothing satisfiable: 416 (§15.5.17).
 * Numbers of any length are read (saturating): a huge first-pos is merely unsatisfiable.
 * O(len * max).
 */
int http_ranges_parse(const char *value, size_t len, uint64_t size, struct http_range *out,
                      size_t max, size_t *n);

/* ---- responses and handlers ------------------------------------------------ */

/* What to send: headers in *hdr (status line through the empty line), then
 * either body[0..body_len) or body_len bytes of fd from fd_off, or a body
 * produced over time by stream(). A handler fills it; the server does the I/O. */
struct http_response {
    struct buf *hdr; /* borrowed: the connection's header buffer, empty on entry */
    struct buf own;  /* storage a handler may use for generated bodies */
    int status;
    const char *body; /* must stay valid until done() is called */
    uint64_t body_len;
    int fd; /* -1: none; must stay open until done() */
    off_t fd_off;
    int close; /* close the connection after this response (set on entry when it must) */
    /* The handler's own, given back to done(); the server never reads them. */
    void *hold;
    int tag[2];
    /* A streamed body (see "streamed responses" below): set stream and leave body and fd
     * unset. stream_arg is handed to every call; wake, when set, lets another thread resume a
     * stream that returned HTTP_STREAM_WAIT (the server takes its own reference). */
    int (*stream)(void *arg, char *out, size_t room, size_t *len);
    void *stream_arg;
    struct http_stream *wake;
};

/* What done() is told about an exchange. */
struct http_exchange {
    const char *method; /* as sent (truncated to 7 bytes), "-" when the head was refused */
    const char *target; /* as sent (truncated to 255 bytes), "-" likewise */
    uint64_t bytes;     /* headers and body written */
    int64_t us;         /* from the head's arrival to the last byte written */
    int completed;      /* 0: the connection failed before the response was written */
};

struct http_handler {
    /* Builds the response to a parsed request; called on worker thread
     * `worker` (0..workers-1). date is the current IMF-fixdate. res->close is
     * already set when the connection will close anyway. Must not block. */
    void (*handle)(void *arg, int worker, const struct http_request *req, const char *date,
                   struct http_response *res);
    /* Called once per response, written or abandoned, on the same worker:
     * account for it and release what handle() held. Also called for the
     * error responses the server makes itself (a refused head: 400, 413,
     * 414, 431, 501, 505; a refused or late body: 400, 408, 413, 431), with
     * hold NULL and tag[] as tag_default. May be NULL. */
    void (*done)(void *arg, int worker, const struct http_exchange *x, struct http_response *res);
    int tag_default[2]; /* tag[] given to responses the server builds itself */
    /* Request bodies: 0 refuses every request that announces one (400), as a static
     * handler wants; otherwise the most body bytes a request may carry (413 beyond), and
     * handle() is called once the whole body has arrived, in req->body. While it reads a
     * body, a connection's buffer holds the head, at most body_max bytes and one read. */
    uint64_t body_max;
};

/*
 * Streamed responses. A handler that sets res->stream writes the status line and its own
 * header fields into res->hdr, ending with the empty line, but no Content-Length,
 * Transfer-Encoding or Connection field: the server adds "Transfer-Encoding: chunked" for an
 * HTTP/1.1 request (RFC 9112 §7.1) and sends each piece as one chunk, or ends the body by
 * closing the connection for HTTP/1.0 (§6.3 item 8), and adds "Connection: close" when it
 * will close. No body is sent for HEAD.
 *
 * The server calls stream(stream_arg, out, room, &len) on the worker thread whenever the
 * socket has taken everything produced so far (so at most one piece of room bytes is ever
 * buffered: a slow reader slows the producer down). It writes up to room bytes into out,
 * sets *len, and returns:
 *   HTTP_STREAM_MORE  out[0..len) is sent; call again when the socket has room;
 *   HTTP_STREAM_WAIT  out[0..len) is sent; nothing more now: call again after
 *                     http_stream_wake(res->wake) (without a wake handle, an error);
 *   HTTP_STREAM_DONE  out[0..len) is the end of the body;
 *   HTTP_STREAM_ERROR the body cannot be finished: the connection is closed, so the client
 *                     sees a body without its last chunk, never a complete-looking one.
 * MORE with *len 0 counts as WAIT. stream() must not block. It is called only between
 * handle() and done(); it shares stream_arg with the producing thread, so locking between the
 * two is the handler's. A stream waiting for a wake is not subject to the idle timeout; it
 * ends when the client closes, on HTTP_STREAM_DONE/ERROR, or when the server stops.
 */
enum { HTTP_STREAM_ERROR = -1, HTTP_STREAM_MORE = 0, HTTP_STREAM_WAIT = 1, HTTP_STREAM_DONE = 2 };

/* A wake handle: lets any thread tell a waiting stream that there is more. Reference counted:
 * http_stream_new gives the caller one reference, the server takes another while a response
 * uses it, and the last http_stream_free releases it. Give it to one response at a time. */
struct http_stream;
/* Creates a wake handle in *out (an eventfd); fails (a code from errno, e.g. out of file
 * descriptors) when none can be made. */
int http_stream_new(struct http_stream **out, struct sw_err *err);
/* Wakes the stream that uses s, if it waits: its stream() is called again soon on its worker.
 * Thread-safe and async-signal-safe (one write to an eventfd). A wake while the stream is not
 * waiting (or before it starts) is dropped: nothing is lost, since stream() looks for data
 * each time it is called and the producer's data is behind the handler's own lock. */
void http_stream_wake(struct http_stream *s);
/* Drops the caller's reference; after it the caller must not use s. Thread-safe. */
void http_stream_free(struct http_stream *s);

/* Fills res with a short text/plain error response that closes the
 * connection ("400 Bad Request\n"). */
void http_respond_error(struct http_response *res, int status, const char *date);
/* The reason phrase of a status code ("Not Found"). Static storage. */
const char *http_reason(int status);

/* ---- the server ------------------------------------------------------------------ */

/* How new connections are shared between workers. */
enum http_balance {
    /* Grouped by the CPU that received them: one client thread's (or one NIC
     * queue's) connections share a worker. A skew that leaves a worker
     * saturated while cores sit idle hands new connections to the hash for a
     * while. Used where the process may run on at least as many CPUs as it
     * has workers; otherwise the hash. */
    HTTP_BALANCE_CPU,
    HTTP_BALANCE_HASH, /* the kernel's hash of the connection's addresses */
};

struct http_opts {
    int workers;               /* threads; 0: one per core */
    enum http_balance balance; /* default HTTP_BALANCE_CPU */
    int64_t header_timeout_ms; /* a request head must arrive within (default 10 s) */
    int64_t idle_timeout_ms;   /* idle keep-alive connections close after (default 60 s) */
    int64_t drain_timeout_ms;  /* http_server_stop gives in-flight requests this long (10 s) */
    int max_connections;       /* beyond this, 503 and close (default 10000) */
    int64_t body_timeout_ms;   /* a request body must arrive within (default 30 s), or 408 */
};
void http_opts_init(struct http_opts *o);

/* One address to listen on and who answers it. */
struct http_listener {
    const char *addr;  /* "HOST:PORT", "[v6]:PORT" */
    const char *owner; /* for messages: the file or option that asked for it */
    const struct http_handler *handler;
    void *arg; /* handed to the handler; must outlive the listener */
};

#define HTTP_MAX_WORKERS 64

struct http_server;

/* Creates a server with no listeners and no threads yet. Free with
 * http_server_free after http_server_stop. */
int http_server_new(const struct http_opts *o, struct http_server **out, struct sw_err *err);
/* The number of worker threads (fixed at creation). */
int http_server_workers(const struct http_server *s);
/* Makes v[0..n) the set of listeners: an address kept with the same handler
 * and arg keeps its sockets (and connections); new ones are bound, one
 * SO_REUSEPORT socket per worker, after a probe that fails with SW_EEXIST
 * naming the address and its owner when any other process holds it. On any
 * error nothing changes. May be called before and after http_server_start,
 * from one thread at a time. */
int http_server_listen(struct http_server *s, const struct http_listener *v, size_t n,
                       struct sw_err *err);
/* Starts the worker threads. */
int http_server_start(struct http_server *s, struct sw_err *err);
/* Stops accepting, lets in-flight requests finish within drain_timeout_ms,
 * closes everything and joins the workers. Idempotent. */
void http_server_stop(struct http_server *s);
void http_server_free(struct http_server *s);

/* Connection counters, summed over workers. */
struct http_stats {
    long open;
    unsigned long accepted, rejected, timeouts;
    int by_cpu;              /* 1 while new connections are grouped by CPU */
    unsigned long unsteered; /* times a skew handed new connections to the hash */
};
void http_server_stats(struct http_server *s, struct http_stats *out);
/* Connections worker accepted so far (0 past the last worker). Lock-free. */
unsigned long http_server_worker_accepted(struct http_server *s, int worker);

/* Quiescence, for data published to workers through an atomic pointer (as
 * RCU does): take a snapshot after unpublishing, and once
 * http_server_quiesced says every worker has since gone back to its event
 * loop (or sat idle in it), none can still be about to use the old data.
 * epochs has HTTP_MAX_WORKERS entries. Thread-safe, lock-free. */
void http_server_snapshot(struct http_server *s, unsigned long *epochs);
int http_server_quiesced(struct http_server *s, const unsigned long *epochs);

#endif
