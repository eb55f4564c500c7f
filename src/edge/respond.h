/* Private to the edge module: turning a request into a response. */
#ifndef SW_EDGE_RESPOND_H
#define SW_EDGE_RESPOND_H

#include "edge/internal.h"

#include <sys/types.h>

struct listener_info {
    int site; /* -1 for the admin listener */
    int kind; /* LISTEN_LIVE / LISTEN_PREVIEW / LISTEN_ADMIN */
};

/* What to send: headers in *hdr, then either body[0..body_len) or body_len
 * bytes of fd from fd_off. */
struct response {
    struct buf *hdr; /* borrowed; the caller's per-connection buffer */
    struct buf own;  /* storage for generated bodies */
    int status;
    const char *body;
    uint64_t body_len;
    int fd;
    off_t fd_off;
    int close;          /* close the connection after this response */
    struct table *held; /* reference to drop when done, or NULL */
    int site, slot;
};

/* Builds the response to req arriving on listener li. */
void respond(struct edge *e, int worker, const struct listener_info *li,
             const struct http_request *req, const char *date, struct response *r);
/* A bare error response that closes the connection (parse errors, limits). */
void respond_error(struct response *r, int status, const char *date);

#endif
