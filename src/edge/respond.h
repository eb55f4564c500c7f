/* Private to the edge module: turning a request into a response. */
#ifndef SW_EDGE_RESPOND_H
#define SW_EDGE_RESPOND_H

#include "edge/internal.h"

/* The static handler: builds the response to req arriving on listener li.
 * res->tag[0] becomes the site counted (-1: none), tag[1] the slot, and
 * res->hold the table referenced for the body (dropped by edge's done). */
void respond(struct edge *e, int worker, const struct listener_info *li,
             const struct http_request *req, const char *date, struct http_response *r);

#endif
