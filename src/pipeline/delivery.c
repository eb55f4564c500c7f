/* The built-in delivery steps: slipway/deploy, slipway/switch,
 * slipway/rollback, slipway/health-check, slipway/scan and slipway/watch, run inside the
 * runner as actions/checkout is. They reach the store only through release,
 * deploy and scan, as the CLI does, and take environments from the server's
 * project (struct delivery_step's project), never from the checked-out
 * commit: a push must not be able to point a deploy at an environment file
 * of its own making.
 *
 * The one idea: every value of with: is hostile text (a workflow is the
 * pushed commit's), read once into struct delivery_with and refused on one
 * line when it is bad; every line logged that quotes something from outside
 * (a path, a status line, a release id from the store) is escaped first. */
#include "pipeline/delivery_internal.h"
#include "deploy/deploy.h"
#include "release/release.h"
#include "scan/scan.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- with: ---------------------------------------------------------------------------------- */

static const char *const keys_deploy[] = {"env", "path", "switch", "message", NULL};
static const char *const keys_env[] = {"env", NULL};
static const char *const keys_rollback[] = {"env", "to", "dry-run", NULL};
static const char *const keys_health[] = {"env",      "slot",    "path",     "status",
                                          "contains", "retries", "interval", NULL};
static const char *const keys_scan[] = {"path", NULL};
static const char *const keys_watch[] = {"env", "duration", "release", NULL};

static const char *const *step_keys(enum pipeline_builtin b)
{
    switch (b) {
    case PIPELINE_BUILTIN_SLIPWAY_DEPLOY:
        return keys_deploy;
    case PIPELINE_BUILTIN_SLIPWAY_SWITCH:
        return keys_env;
    case PIPELINE_BUILTIN_SLIPWAY_ROLLBACK:
        return keys_rollback;
    case PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK:
        return keys_health;
    case PIPELINE_BUILTIN_SLIPWAY_SCAN:
        return keys_scan;
    case PIPELINE_BUILTIN_SLIPWAY_WATCH:
        return keys_watch;
    default:
        return NULL;
    }
}

static int known_key(const char *const *keys, const char *k)
{
    for (size_t i = 0; keys[i]; i++)
        if (!strcmp(keys[i], k))
            return 1;
    return 0;
}

/* Escaped for one log line (caller frees). */
static char *esc(const char *s)
{
    struct buf b = BUF_INIT;
    buf_add_escaped(&b, s ? s : "");
    buf_add(&b, "", 0);
    return buf_detach(&b, NULL);
}

/* Sets err to "KEY: expected WHAT, got 'VALUE'" with the value escaped. */
static int bad_value(struct sw_err *err, const char *key, const char *what, const char *value)
{
    char *v = esc(value);
    int rc = sw_err_set(err, SW_EINVAL, "%s: expected %s, got '%s'", key, what, v);
    free(v);
    return rc;
}

/* A whole number in [lo, hi], digits only. */
static int whole(const char *s, long lo, long hi, long *out)
{
    long v = 0;
    if (!*s)
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > hi)
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* A request target we send as it is: origin-form (RFC 9112 section 3.2.1),
 * visible ASCII only, so no value can split the request line or add a
 * header. */
static int target_valid(const char *s)
{
    size_t n = strlen(s);
    if (s[0] != '/' || n > DELIVERY_URL_PATH_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

void delivery_with_free(struct delivery_with *w)
{
    free(w->env);
    free(w->path);
    free(w->message);
    free(w->to);
    free(w->contains);
    free(w->release);
    free(w->unknown);
    memset(w, 0, sizeof(*w));
}

int delivery_with_parse(enum pipeline_builtin b, const json_t *with, struct delivery_with *out,
                        struct sw_err *err)
{
    const char *const *keys = step_keys(b);
    struct buf unknown = BUF_INIT;
    const char *k;
    json_t *v;
    long n;

    memset(out, 0, sizeof(*out));
    out->status = 200;
    out->retries = 10;
    out->interval_ms = 1000;
    if (!keys)
        return sw_err_set(err, SW_EINVAL, "not a delivery step");
    json_object_foreach((json_t *)with, k, v)
    {
        const char *s = json_string_value(v);
        if (!known_key(keys, k)) {
            char *e = esc(k);
            buf_addf(&unknown, "%s'%s'", unknown.len ? ", " : "", e);
            free(e);
            continue;
        }
        if (!s || !*s) /* empty: not given, as an action's input */
            continue;
        if (!strcmp(k, "env")) {
            if (env_name_check(s, NULL) != 0)
                return bad_value(err, k,
                                 "an environment name (lowercase letters, digits, '-', '_')", s);
            out->env = xstrdup(s);
        } else if (!strcmp(k, "path")) {
            if (b == PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK && !target_valid(s))
                return bad_value(err, k, "a path starting with '/' of visible ASCII characters", s);
            out->path = xstrdup(s);
        } else if (!strcmp(k, "switch") || !strcmp(k, "dry-run")) {
            /* as @actions/core's getBooleanInput reads it (YAML 1.2 core schema) */
            int *flag = !strcmp(k, "switch") ? &out->do_switch : &out->dry_run;
            if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
                *flag = 1;
            else if (strcmp(s, "false") && strcmp(s, "False") && strcmp(s, "FALSE"))
                return bad_value(err, k, "true or false", s);
        } else if (!strcmp(k, "message")) {
            out->message = xstrdup(s);
        } else if (!strcmp(k, "to")) {
            out->to = xstrdup(s);
        } else if (!strcmp(k, "slot")) {
            if (!strcmp(s, "idle"))
                out->idle = 1;
            else if (strcmp(s, "live"))
                return bad_value(err, k, "live or idle", s);
        } else if (!strcmp(k, "status")) {
            if (whole(s, 100, 599, &n))
                return bad_value(err, k, "an HTTP status code from 100 to 599", s);
            out->status = (int)n;
        } else if (!strcmp(k, "contains")) {
            out->contains = xstrdup(s);
        } else if (!strcmp(k, "retries")) {
            if (whole(s, 1, DELIVERY_RETRIES_MAX, &n))
                return bad_value(err, k, "a whole number of attempts from 1 to 1000", s);
            out->retries = (int)n;
        } else if (!strcmp(k, "interval")) {
            int64_t ms;
            if (duration_parse(s, &ms) || ms > DELIVERY_INTERVAL_MAX_MS)
                return bad_value(err, k, "a duration such as 500ms, 2s or 1m (at most 1h)", s);
            out->interval_ms = ms;
        } else if (!strcmp(k, "duration")) {
            int64_t ms;
            if (duration_parse(s, &ms) || ms < 1000 || ms > ENV_WATCH_MAX_MS)
                return bad_value(err, k, "a duration from 1s to 7d such as 30s or 10m", s);
            out->duration_ms = ms;
        } else if (!strcmp(k, "release")) {
            out->release = xstrdup(s);
        }
    }
    if (unknown.len) {
        struct buf valid = BUF_INIT;
        for (size_t i = 0; keys[i]; i++)
            buf_addf(&valid, "%s'%s'", i ? ", " : "", keys[i]);
        out->unknown =
            xasprintf("Unexpected input(s) %s, valid inputs are [%s]", unknown.data, valid.data);
        buf_free(&valid);
    }
    buf_free(&unknown);
    if (!out->env && b != PIPELINE_BUILTIN_SLIPWAY_SCAN)
        return sw_err_set(err, SW_EINVAL, "env: required (the environment to act on)");
    if (b == PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK && !out->path)
        out->path = xstrdup("/");
    return 0;
}

/* ---- the health-check client ----------------------------------------------------------------- */

void delivery_http_response_free(struct delivery_http_response *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* The end of the line starting at p (its '\n'), or NULL when not in [p, end). */
static const char *eol(const char *p, const char *end)
{
    return memchr(p, '\n', (size_t)(end - p));
}

/* A header line "Name: value" (without its line break) whose name is name. */
static const char *header_value(const char *line, size_t len, const char *name, size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return NULL;
    const char *v = line + n + 1, *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    *vlen = (size_t)(e - v);
    return v;
}

static void keep_body(struct delivery_http_response *res, const char *p, size_t n, size_t max)
{
    size_t room = max - res->body_len;
    if (n > room) {
        n = room;
        res->truncated = 1;
    }
    memcpy(res->body + res->body_len, p, n);
    res->body_len += n;
    res->body[res->body_len] = '\0';
}

/* Decodes a chunked body (RFC 9112 section 7.1) from p: 1 when its last
 * chunk and trailers are in, 0 for more, -1 when malformed. */
static int chunked(const char *p, const char *end, size_t max, struct delivery_http_response *res)
{
    for (;;) {
        const char *nl = eol(p, end);
        if (!nl)
            return end - p > 1024 ? -1 : 0;
        uint64_t size = 0;
        const char *q = p;
        int digits = 0;
        for (; q < nl; q++, digits++) {
            int c = (unsigned char)*q, d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                break;
            if (size > (UINT64_MAX >> 4))
                return -1;
            size = size * 16 + (uint64_t)d;
        }
        if (!digits || (q < nl && *q != ';' && *q != '\r' && *q != ' ' && *q != '\t'))
            return -1;
        p = nl + 1;
        if (size == 0) { /* trailers, then an empty line */
            for (;;) {
                nl = eol(p, end);
                if (!nl)
                    return 0;
                int empty = nl == p || (nl == p + 1 && *p == '\r');
                p = nl + 1;
                if (empty)
                    return 1;
            }
        }
        if ((uint64_t)(end - p) <= size) {
            /* not all here yet: done only if what is here already fills the bound */
            if (res->body_len + (size_t)(end - p) < max)
                return 0;
            keep_body(res, p, (size_t)(end - p), max);
            res->truncated = 1;
            return 1;
        }
        keep_body(res, p, (size_t)size, max);
        p += size;
        if (*p == '\r')
            p++;
        if (p >= end)
            return 0;
        if (*p != '\n')
            return -1;
        p++;
        if (res->body_len >= max && res->truncated)
            return 1;
    }
}

int delivery_http_parse(const char *raw, size_t len, int eof, size_t max_body,
                        struct delivery_http_response *res, struct sw_err *err)
{
    const char *p = raw, *end = raw + len;

    for (;;) {
        /* the head: up to the first empty line */
        const char *head_end = NULL, *q = p;
        for (const char *nl; (nl = eol(q, end)); q = nl + 1)
            if (nl == q || (nl == q + 1 && *q == '\r')) {
                head_end = nl + 1;
                break;
            }
        if (!head_end) {
            if ((size_t)(end - p) > DELIVERY_HTTP_HEAD_MAX)
                return sw_err_set(err, SW_EINVAL, "the response head is over %d bytes",
                                  DELIVERY_HTTP_HEAD_MAX);
            if (eof)
                return sw_err_set(err, SW_EINVAL,
                                  end == p ? "the server closed the connection without a response"
                                           : "the response ended inside its head");
            return 0;
        }
        /* RFC 9112 section 4: HTTP-version SP 3DIGIT SP [reason] */
        const char *nl = eol(p, end);
        size_t sl = (size_t)(nl - p);
        if (sl && p[sl - 1] == '\r')
            sl--;
        if (sl < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' || p[8] != ' ' ||
            p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
            (sl > 12 && p[12] != ' '))
            return sw_err_set(err, SW_EINVAL, "not an HTTP/1.x response");
        res->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
        size_t keep = sl < sizeof(res->status_line) - 1 ? sl : sizeof(res->status_line) - 1;
        for (size_t i = 0; i < keep; i++) {
            unsigned char c = (unsigned char)p[i];
            res->status_line[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
        }
        res->status_line[keep] = '\0';
        /* headers */
        int is_chunked = 0, has_len = 0;
        uint64_t clen = 0;
        for (const char *h = nl + 1; h < head_end;) {
            const char *hn = eol(h, head_end);
            size_t hl = (size_t)(hn - h), vl;
            const char *v;
            if ((v = header_value(h, hl, "Transfer-Encoding", &vl)))
                is_chunked = vl >= 7 && strncasecmp(v + vl - 7, "chunked", 7) == 0;
            else if ((v = header_value(h, hl, "Content-Length", &vl))) {
                uint64_t x = 0;
                if (!vl || vl > 18)
                    return sw_err_set(err, SW_EINVAL, "a bad Content-Length");
                for (size_t i = 0; i < vl; i++) {
                    if (v[i] < '0' || v[i] > '9')
                        return sw_err_set(err, SW_EINVAL, "a bad Content-Length");
                    x = x * 10 + (uint64_t)(v[i] - '0');
                }
                if (has_len && x != clen)
                    return sw_err_set(err, SW_EINVAL, "two different Content-Length values");
                has_len = 1;
                clen = x;
            }
            h = hn + 1;
        }
        /* 1xx: an interim response, the real one follows (RFC 9110 section 15.2) */
        if (res->status < 200) {
            p = head_end;
            continue;
        }
        free(res->body);
        res->body = xmalloc(max_body + 1);
        res->body[0] = '\0';
        res->body_len = 0;
        res->truncated = 0;
        const char *b = head_end;
        size_t have = (size_t)(end - b);
        if (res->status == 204 || res->status == 304)
            return 1;
        if (is_chunked) {
            int r = chunked(b, end, max_body, res);
            if (r < 0)
                return sw_err_set(err, SW_EINVAL, "a malformed chunked body");
            if (!r && eof)
                return sw_err_set(err, SW_EINVAL, "the chunked body ended early");
            return r;
        }
        if (has_len) {
            size_t n = have < clen ? have : (size_t)clen;
            keep_body(res, b, n, max_body);
            if (clen > max_body && res->body_len >= max_body)
                return (res->truncated = 1);
            if (have >= clen)
                return 1;
            if (eof)
                return sw_err_set(err, SW_EINVAL, "the body ended after %zu of %llu bytes", have,
                                  (unsigned long long)clen);
            return 0;
        }
        keep_body(res, b, have, max_body);
        return eof || res->truncated ? 1 : 0;
    }
}

/* Splits "HOST:PORT" or "[V6]:PORT"; a wildcard host becomes the loopback
 * address of its family. 0, or -1 when malformed. */
static int split_addr(const char *addr, char *host, size_t hl, char *port, size_t pl)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1] || strlen(colon + 1) >= pl)
        return -1;
    const char *h = addr;
    size_t n = (size_t)(colon - addr);
    if (h[0] == '[') {
        if (n < 2 || h[n - 1] != ']')
            return -1;
        h++;
        n -= 2;
    }
    if (n >= hl)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    snprintf(port, pl, "%s", colon + 1);
    if (!strcmp(host, "0.0.0.0") || !*host || !strcmp(host, "*"))
        snprintf(host, hl, "127.0.0.1");
    else if (!strcmp(host, "::"))
        snprintf(host, hl, "::1");
    return 0;
}

char *delivery_addr_url(const char *addr)
{
    char host[256], port[16];
    if (split_addr(addr, host, sizeof(host), port, sizeof(port)))
        return xasprintf("http://%s", addr);
    return strchr(host, ':') ? xasprintf("http://[%s]:%s", host, port)
                             : xasprintf("http://%s:%s", host, port);
}

/* Waits for fd to be ready for events until the monotonic deadline. 0, or
 * SW_EIO naming what timed out. */
static int wait_fd(int fd, short events, int64_t deadline, const char *what, struct sw_err *err)
{
    for (;;) {
        int64_t left = deadline - time_mono_ms();
        if (left <= 0)
            return sw_err_set(err, SW_EIO, "%s: timed out", what);
        struct pollfd pfd = {.fd = fd, .events = events};
        int r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return sw_err_sys(err, errno, "%s: poll", what);
        if (r > 0)
            return 0;
    }
}

static int connect_to(const char *addr, int64_t deadline, int *out, struct sw_err *err)
{
    char host[256], port[16];
    struct addrinfo hints = {0}, *ai = NULL;
    int rc = SW_EIO, fd = -1;

    *out = -1;
    if (split_addr(addr, host, sizeof(host), port, sizeof(port)))
        return sw_err_set(err, SW_EINVAL, "'%s' is not HOST:PORT", addr);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g)
        return sw_err_set(err, SW_EIO, "%s: %s", host, gai_strerror(g));
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            rc = sw_err_sys(err, errno, "socket");
            continue;
        }
        int r = connect(fd, a->ai_addr, a->ai_addrlen);
        if (r < 0 && errno == EINPROGRESS) {
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if ((rc = wait_fd(fd, POLLOUT, deadline, "connect", err)) == 0) {
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                    soerr = errno;
                r = soerr ? -1 : 0;
                errno = soerr;
            } else {
                close(fd);
                fd = -1;
                break; /* out of time: no other address either */
            }
        }
        if (r == 0) {
            rc = 0;
            break;
        }
        rc = sw_err_sys(err, errno, "connect");
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    *out = fd;
    return fd >= 0 ? 0 : rc;
}

int delivery_http_get(const char *addr, const char *target, int64_t timeout_ms, size_t max_body,
                      struct delivery_http_response *res, struct sw_err *err)
{
    int64_t deadline = time_mono_ms() + timeout_ms;
    struct buf req = BUF_INIT, raw = BUF_INIT;
    int fd = -1, rc;

    memset(res, 0, sizeof(*res));
    if (!target_valid(target))
        return sw_err_set(err, SW_EINVAL, "not a request target");
    if ((rc = connect_to(addr, deadline, &fd, err)))
        goto out;
    /* RFC 9112 section 3.2: Host is required; close, so the body ends at EOF at the latest */
    buf_addf(&req,
             "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: slipway-health-check\r\n"
             "Accept: */*\r\nConnection: close\r\n\r\n",
             target, addr);
    for (size_t off = 0; off < req.len;) {
        ssize_t n = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if ((rc = wait_fd(fd, POLLOUT, deadline, "send", err)))
                goto out;
            continue;
        }
        if (n < 0) {
            rc = sw_err_sys(err, errno, "send");
            goto out;
        }
        off += (size_t)n;
    }
    /* The raw bytes are bounded: a head, the body we keep, and the framing
     * of a chunked body around it (generously); past that we stop reading. */
    size_t raw_max = DELIVERY_HTTP_HEAD_MAX + max_body * 2 + 4096;
    for (;;) {
        char chunk[16384];
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if ((rc = wait_fd(fd, POLLIN, deadline, "response", err)))
                goto out;
            continue;
        }
        if (n < 0) {
            rc = sw_err_sys(err, errno, "recv");
            goto out;
        }
        if (n > 0)
            buf_add(&raw, chunk, (size_t)n);
        int full = raw.len >= raw_max;
        int r = delivery_http_parse(raw.data ? raw.data : "", raw.len, n == 0 || full, max_body,
                                    res, err);
        if (r < 0) {
            rc = r;
            goto out;
        }
        if (r > 0 || n == 0 || full) {
            rc = 0;
            break;
        }
    }
out:
    if (fd >= 0)
        close(fd);
    buf_free(&req);
    buf_free(&raw);
    return rc;
}

/* ---- the steps ------------------------------------------------------------------------------- */

#define HTTP_TIMEOUT_MS 5000

static void say(const struct delivery_step *d, enum pipeline_step_log_kind kind, const char *fmt,
                ...) __attribute__((format(printf, 3, 4)));
static void say(const struct delivery_step *d, enum pipeline_step_log_kind kind, const char *fmt,
                ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    d->say(d->ctx, kind, b.data ? b.data : "");
    buf_free(&b);
}

static void set_out(json_t *outputs, const char *name, const char *value)
{
    json_object_set_new(outputs, name, json_string(value && utf8_valid(value, 0) ? value : ""));
}

/* The url output: what users reach (live), for a job's environment url and
 * the tests aimed at it; "" when the environment does not listen. */
static void set_url(json_t *outputs, const struct env_config *env)
{
    char *url = env->listen ? delivery_addr_url(env->listen) : xstrdup("");
    set_out(outputs, "url", url);
    free(url);
}

/* The environment named from the server's project, never the workspace's. */
static int load_env(const struct delivery_step *d, const char *name, struct env_config **out,
                    struct sw_err *err)
{
    *out = NULL;
    if (!d->project)
        return sw_err_set(err, SW_ENOTFOUND,
                          "this runner has no project, so no environments (start it with "
                          "--project DIR)");
    char *dir = path_join(d->project, ".slipway/environments");
    int rc = env_config_find(dir, name, out, err);
    free(dir);
    return rc;
}

/* Whether the step may change env: the run's ref passes its deploy_from,
 * and a job of the run passed its approval gate. The job that names the
 * environment is held to both before its first step (runner_gate.c); a job that
 * leaves `environment:` out is held to them here, so a pushed pipeline
 * cannot lower the server's gate by not naming it. */
static int may_change(const struct delivery_step *d, const struct env_config *env,
                      struct sw_err *err)
{
    const struct env_approval *ap = &env->approval;
    int rc = pipeline_gate_ref_check(&env->deploy_from, env->name, env->file, d->ref, err);

    if (rc < 0 || ap->required <= 0)
        return rc;
    /* the record as stored: the runner writes a gate's decision through
     * before the job's first step, and pipeline_gate_passed judges the
     * decisions by env's rules, so a forged state passes nothing */
    struct pipeline_run *r = NULL;
    struct sw_err e = {0};
    int passed = pipeline_run_load(d->st, d->run_id, &r, &e) == 0 && pipeline_gate_passed(r, env);
    pipeline_run_free(r);
    if (passed)
        return 0;
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < ap->napprovers; i++)
        buf_addf(&b, "%s%s", i ? ", " : "", ap->approvers[i]);
    rc = sw_err_set(err, PIPELINE_EGATE,
                    "environment %s needs an approval (%d of %s) that no job of run %s passed: "
                    "give the job `environment: %s`",
                    env->name, ap->required, b.data ? b.data : "none", d->run_id, env->name);
    buf_free(&b);
    return rc;
}

/* rel (NULL: the workspace itself) as a real path inside the workspace:
 * after symbolic links are resolved, so a link in the checkout cannot lead a
 * deploy or a scan out of it. Caller frees. */
static char *in_workspace(const char *ws, const char *rel, struct sw_err *err)
{
    char *joined = NULL, *real = NULL, *realws = realpath(ws, NULL);
    char *e = esc(rel ? rel : ".");

    if (!realws) {
        sw_err_sys(err, errno, "the workspace %s", ws);
        goto out;
    }
    if (rel && rel[0] == '/') {
        sw_err_set(err, SW_EINVAL, "path: '%s' must be relative to the workspace", e);
        goto out;
    }
    joined = path_join(ws, rel ? rel : ".");
    if (!(real = realpath(joined, NULL))) {
        sw_err_sys(err, errno, "path: '%s'", e);
        goto out;
    }
    size_t n = strlen(realws);
    if (strncmp(real, realws, n) != 0 || (real[n] != '\0' && real[n] != '/')) {
        sw_err_set(err, SW_EINVAL, "path: '%s' leaves the workspace", e);
        free(real);
        real = NULL;
    }
out:
    free(e);
    free(joined);
    free(realws);
    return real;
}

/* "blue slot" / "" for a slot, for sentences. */
static const char *slot_word(int slot)
{
    const char *s = deploy_slot_name(slot);
    return s ? s : "";
}

static enum pipeline_step_outcome fail(const struct delivery_step *d, const struct sw_err *err)
{
    say(d, PIPELINE_LOG_ERROR, "%s: %s", d->uses, err->msg);
    return PIPELINE_STEP_FAILURE;
}

/* The release a state holds live, escaped for the log (it came from the store). */
static char *live_of(const struct env_state *s)
{
    return s && s->live_release ? esc(s->live_release) : NULL;
}

static enum pipeline_step_outcome step_deploy(const struct delivery_step *d,
                                              const struct delivery_with *w, json_t *outputs)
{
    struct env_config *env = NULL;
    struct env_state *before = NULL;
    struct release *live = NULL;
    struct deploy_result res = {0};
    struct release_create_result cres = {0};
    struct sw_err err = {0};
    char *dir = NULL, *id = NULL, *backup = NULL, *msg = NULL;
    enum pipeline_step_outcome oc = PIPELINE_STEP_FAILURE;
    int rc;

    if ((rc = load_env(d, w->env, &env, &err)) || (rc = may_change(d, env, &err)))
        goto out;
    if (w->do_switch && env->strategy != STRATEGY_BLUE_GREEN) {
        rc = sw_err_set(&err, SW_EINVAL,
                        "switch: %s is a direct environment, where a deploy goes live at once "
                        "(there is no idle slot)",
                        env->name);
        goto out;
    }
    if (!(dir = in_workspace(d->workspace, w->path, &err))) {
        rc = err.code;
        goto out;
    }
    if ((rc = deploy_state_load(d->st, env->name, &before, &err)))
        goto out;
    /* The live release, best effort: its bodies need no request each on S3
     * (release_create_opts.keep). */
    if (before->live_release)
        release_load(d->st, before->live_release, &live, NULL);
    int given = d->sha && *d->sha;
    struct release_create_opts co = {.dir = dir,
                                     .message = w->message,
                                     .commit = given ? d->sha : NULL,
                                     .ref = given && d->ref && *d->ref ? d->ref : NULL,
                                     .run = given ? d->run_id : NULL,
                                     .keep = live,
                                     /* as deploy DIR does by default: packs on a remote store */
                                     .pack = store_is_remote(d->st)};
    rc = release_create(d->st, &co, &id, &cres, &err);
    for (size_t i = 0; rc && i < cres.nproblems; i++) {
        char *p = esc(cres.problems[i].path), *why = esc(cres.problems[i].why);
        say(d, PIPELINE_LOG_ERROR, "%s: %s", p, why);
        free(p);
        free(why);
    }
    if (rc)
        goto out;
    say(d, PIPELINE_LOG_OUTPUT, "Release %s: %zu files, %llu bytes, %zu new bodies (commit %s)", id,
        cres.files, (unsigned long long)cres.bytes, cres.new_blobs, given ? d->sha : "unknown");
    msg = w->message ? xstrdup(w->message) : xasprintf("workflow run %s", d->run_id);
    struct deploy_opts o = {.actor = d->actor && *d->actor ? d->actor : NULL,
                            .message = msg,
                            .do_switch = w->do_switch,
                            .made = 1};
    rc = deploy_release(d->st, env, id, &o, &res, &err);
    backup = live_of(before);
    if (rc == DEPLOY_ENOTHING) { /* already live: nothing to change, not a failure */
        say(d, PIPELINE_LOG_OUTPUT, "%s", err.msg);
        res.slot = env->strategy == STRATEGY_BLUE_GREEN ? before->live_slot : SLOT_NONE;
        rc = 0;
    } else if (rc) {
        goto out;
    } else if (env->strategy == STRATEGY_DIRECT) {
        say(d, PIPELINE_LOG_OUTPUT, "Deployed %s to %s (direct): it is live.", id, env->name);
        if (backup)
            say(d, PIPELINE_LOG_OUTPUT,
                "Backup: %s, live before this deploy, is kept as %s's previous release "
                "(slipway/rollback restores it).",
                backup, env->name);
    } else if (!res.switched) {
        say(d, PIPELINE_LOG_OUTPUT, "Deployed %s to the idle %s slot of %s%s%s.", id,
            slot_word(res.slot), env->name, env->preview ? ", preview on " : "",
            env->preview ? env->preview : "");
        if (backup)
            say(d, PIPELINE_LOG_OUTPUT,
                "Backup: %s, live, stays in the %s slot; after a switch slipway/rollback flips "
                "back to it.",
                backup, slot_word(before->live_slot));
    } else {
        say(d, PIPELINE_LOG_OUTPUT, "Deployed %s to the %s slot of %s: it is live.", id,
            slot_word(res.slot), env->name);
        if (backup && before->live_slot != SLOT_NONE)
            say(d, PIPELINE_LOG_OUTPUT,
                "Backup: %s, live before this deploy, stays in the %s slot (slipway/rollback "
                "flips back to it).",
                backup, slot_word(before->live_slot));
    }
    if (!backup)
        say(d, PIPELINE_LOG_OUTPUT, "Backup: none (%s had no live release).", env->name);
    set_out(outputs, "release", id);
    set_out(outputs, "slot", slot_word(res.slot));
    char *url = env->strategy == STRATEGY_BLUE_GREEN && env->preview
                    ? delivery_addr_url(env->preview)
                    : xstrdup("");
    set_out(outputs, "preview_url", url);
    free(url);
    set_url(outputs, env);
    /* the backup by its id, so a later job can roll back to exactly it */
    set_out(outputs, "backup", before->live_release);
    oc = PIPELINE_STEP_SUCCESS;
out:
    if (rc)
        oc = fail(d, &err);
    release_create_result_free(&cres);
    release_free(live);
    deploy_result_free(&res);
    env_state_free(before);
    env_config_free(env);
    free(dir);
    free(id);
    free(backup);
    free(msg);
    return oc;
}

/* rollback with dry-run: what a rollback would do, checked as far as it can
 * be without changing anything (the release exists and loads, it is not the
 * live one, there is a previous release when no `to` is given), so a
 * pipeline can refuse a bad request before it asks anyone to approve it. The
 * rollback itself checks again under the environment's lock. */
static int rollback_plan(const struct delivery_step *d, const struct env_config *env,
                         const char *to, json_t *outputs, struct sw_err *err)
{
    struct env_state *s = NULL;
    struct release *r = NULL;
    char *target = NULL, *e_target = NULL, *e_live = NULL, *e_commit = NULL;
    int rc;

    if ((rc = deploy_state_load(d->st, env->name, &s, err)))
        goto out;
    if (!to && !s->previous_release) {
        rc = sw_err_set(err, DEPLOY_ENOTHING,
                        "environment %s has no previous release to roll back to (give to:)",
                        env->name);
        goto out;
    }
    target = xstrdup(to ? to : s->previous_release);
    if ((rc = release_load(d->st, target, &r, err)))
        goto out;
    e_target = esc(target);
    if (s->live_release && !strcmp(target, s->live_release)) {
        rc = sw_err_set(err, DEPLOY_ENOTHING, "environment %s: %s is already live", env->name,
                        e_target);
        goto out;
    }
    e_live = esc(s->live_release ? s->live_release : "(nothing)");
    e_commit = esc(r->commit ? r->commit : "unknown");
    if (env->strategy == STRATEGY_BLUE_GREEN) {
        int idle = deploy_idle_slot(s);
        int held = s->slot_release[idle] && !strcmp(s->slot_release[idle], target);
        say(d, PIPELINE_LOG_OUTPUT,
            "Dry run: rolling %s back would make %s (commit %s) live in the %s slot%s; %s "
            "would stay in the other slot. Nothing changed.",
            env->name, e_target, e_commit, slot_word(idle),
            held ? ", which holds it already (an instant flip)" : ", deployed into it first",
            e_live);
        set_out(outputs, "slot", slot_word(idle));
    } else {
        say(d, PIPELINE_LOG_OUTPUT,
            "Dry run: rolling %s back would make %s (commit %s) live; %s would be kept as the "
            "previous release. Nothing changed.",
            env->name, e_target, e_commit, e_live);
        set_out(outputs, "slot", "");
    }
    set_out(outputs, "release", target);
    set_out(outputs, "commit", r->commit ? r->commit : "");
    set_url(outputs, env);
out:
    release_free(r);
    env_state_free(s);
    free(target);
    free(e_target);
    free(e_live);
    free(e_commit);
    return rc;
}

/* switch and rollback: the CLI's code paths, the environment from the project. */
static enum pipeline_step_outcome step_change(const struct delivery_step *d,
                                              enum pipeline_builtin b,
                                              const struct delivery_with *w, json_t *outputs)
{
    struct env_config *env = NULL;
    struct deploy_result res = {0};
    struct sw_err err = {0};
    char *to = NULL, *msg = xasprintf("workflow run %s", d->run_id);
    struct deploy_opts o = {.actor = d->actor && *d->actor ? d->actor : NULL, .message = msg};
    int rc = load_env(d, w->env, &env, &err);

    /* a dry run changes nothing, so it may run before the gate (rollback.yml
     * validates the release there, so a wrong one never waits for approval) */
    if (!rc && !(b == PIPELINE_BUILTIN_SLIPWAY_ROLLBACK && w->dry_run))
        rc = may_change(d, env, &err);
    if (!rc && b == PIPELINE_BUILTIN_SLIPWAY_ROLLBACK && w->to)
        rc = release_resolve(d->st, w->to, &to, &err);
    if (!rc && b == PIPELINE_BUILTIN_SLIPWAY_ROLLBACK && w->dry_run) {
        if (!(rc = rollback_plan(d, env, to, outputs, &err))) {
            env_config_free(env);
            free(to);
            free(msg);
            return PIPELINE_STEP_SUCCESS;
        }
    } else if (!rc)
        rc = b == PIPELINE_BUILTIN_SLIPWAY_SWITCH ? deploy_switch(d->st, env, &o, &res, &err)
                                                  : deploy_rollback(d->st, env, to, &o, &res, &err);
    if (rc) {
        enum pipeline_step_outcome oc = fail(d, &err);
        deploy_result_free(&res);
        env_config_free(env);
        free(to);
        free(msg);
        return oc;
    }
    char *now = esc(res.to ? res.to : "(nothing)"), *was = esc(res.from ? res.from : "(nothing)");
    const char *what = b == PIPELINE_BUILTIN_SLIPWAY_SWITCH ? "Switched" : "Rolled back";
    if (env->strategy == STRATEGY_BLUE_GREEN)
        say(d, PIPELINE_LOG_OUTPUT,
            "%s %s: the %s slot is live with %s; %s stays in the other slot.", what, env->name,
            slot_word(res.slot), now, was);
    else
        say(d, PIPELINE_LOG_OUTPUT, "%s %s: %s is live; %s is kept as the previous release.", what,
            env->name, now, was);
    set_out(outputs, "release", res.to);
    set_out(outputs, "slot", slot_word(res.slot));
    set_url(outputs, env);
    free(now);
    free(was);
    deploy_result_free(&res);
    env_config_free(env);
    free(to);
    free(msg);
    return PIPELINE_STEP_SUCCESS;
}

/* Sleeps ms, waking early (1) when the run is cancelled. */
static int nap(const struct delivery_step *d, int64_t ms)
{
    int64_t end = time_mono_ms() + ms;
    for (;;) {
        if (d->cancel && atomic_load(d->cancel))
            return 1;
        int64_t left = end - time_mono_ms();
        if (left <= 0)
            return 0;
        struct timespec ts = {0, (left > 50 ? 50 : left) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static enum pipeline_step_outcome step_health(const struct delivery_step *d,
                                              const struct delivery_with *w, json_t *outputs)
{
    struct env_config *env = NULL;
    struct sw_err err = {0};
    char *url = NULL, *want = NULL, status[16] = "";
    enum pipeline_step_outcome oc = PIPELINE_STEP_FAILURE;
    int rc = load_env(d, w->env, &env, &err);

    if (rc)
        goto out;
    const char *addr = w->idle ? env->preview : env->listen;
    if (w->idle && env->strategy != STRATEGY_BLUE_GREEN) {
        rc = sw_err_set(&err, SW_EINVAL, "slot: idle: %s is a direct environment (one slot)",
                        env->name);
        goto out;
    }
    if (!addr) {
        rc = sw_err_set(&err, SW_EINVAL, "%s has no %s address in %s", env->name,
                        w->idle ? "preview" : "listen", env->file);
        goto out;
    }
    url = delivery_addr_url(addr);
    want = w->contains ? esc(w->contains) : NULL;
    for (int i = 1; i <= w->retries; i++) {
        struct delivery_http_response r;
        struct sw_err herr = {0};
        int hrc =
            delivery_http_get(addr, w->path, HTTP_TIMEOUT_MS, DELIVERY_HTTP_BODY_MAX, &r, &herr);
        int pass = 0;
        if (hrc) {
            say(d, PIPELINE_LOG_OUTPUT, "Attempt %d/%d: GET %s%s: %s", i, w->retries, url, w->path,
                herr.msg);
        } else {
            snprintf(status, sizeof(status), "%d", r.status);
            int has = !w->contains ||
                      memmem(r.body, r.body_len, w->contains, strlen(w->contains)) != NULL;
            pass = r.status == w->status && has;
            struct buf why = BUF_INIT;
            if (r.status != w->status)
                buf_addf(&why, " (want %d)", w->status);
            else if (!has)
                buf_addf(&why, ", but the body%s does not contain '%s'",
                         r.truncated ? " (its first 1 MiB)" : "", want);
            say(d, PIPELINE_LOG_OUTPUT, "Attempt %d/%d: GET %s%s: %s%s", i, w->retries, url,
                w->path, r.status_line, why.data ? why.data : "");
            buf_free(&why);
        }
        delivery_http_response_free(&r);
        if (pass) {
            say(d, PIPELINE_LOG_OUTPUT, "%s%s is healthy: %d%s%s%s.", url, w->path, w->status,
                want ? ", body contains '" : "", want ? want : "", want ? "'" : "");
            oc = PIPELINE_STEP_SUCCESS;
            goto out;
        }
        if (i < w->retries && nap(d, w->interval_ms)) {
            oc = PIPELINE_STEP_CANCELLED;
            goto out;
        }
    }
    rc = sw_err_set(&err, SW_EIO, "%s%s did not answer %d%s%s%s after %d attempt%s", url, w->path,
                    w->status, want ? " with a body containing '" : "", want ? want : "",
                    want ? "'" : "", w->retries, w->retries == 1 ? "" : "s");
out:
    set_out(outputs, "status", status);
    if (rc)
        oc = fail(d, &err);
    env_config_free(env);
    free(url);
    free(want);
    return oc;
}

static enum pipeline_step_outcome step_scan(const struct delivery_step *d,
                                            const struct delivery_with *w, json_t *outputs)
{
    struct scan_report *r = NULL;
    struct sw_err err = {0};
    char *root = in_workspace(d->workspace, w->path, &err), num[32];
    enum pipeline_step_outcome oc = PIPELINE_STEP_FAILURE;

    if (!root)
        return fail(d, &err);
    /* NULL opts: the scanned tree's own .slipway/scan-ignore, read as
     * `slipway scan` reads it (no symbolic link followed), so a finding has
     * the fingerprint the CLI prints for it */
    if (scan_tree(root, NULL, &r, &err)) {
        oc = fail(d, &err);
        goto out;
    }
    for (size_t i = 0; i < r->nnotes; i++) {
        char *n = esc(r->notes[i]);
        say(d, PIPELINE_LOG_WARNING, "note: %s", n);
        free(n);
    }
    for (size_t i = 0; i < r->n; i++) {
        const struct scan_finding *f = &r->findings[i];
        char *p = esc(f->path), *red = esc(f->redacted);
        say(d, PIPELINE_LOG_OUTPUT, "%s:%zu %s %s fingerprint:%s", p, f->line, f->rule, red,
            f->fingerprint);
        say(d, PIPELINE_LOG_ERROR,
            "%s:%zu: a secret (%s, %s); remove it, or allow it with 'fingerprint:%s' in "
            ".slipway/scan-ignore",
            p, f->line, f->rule, red, f->fingerprint);
        free(p);
        free(red);
    }
    say(d, r->n ? PIPELINE_LOG_ERROR : PIPELINE_LOG_OUTPUT,
        "%zu finding%s; %zu file%s scanned, %zu binary skipped, %zu ignored by path, %zu "
        "finding%s allowed by fingerprint",
        r->n, r->n == 1 ? "" : "s", r->files_scanned, r->files_scanned == 1 ? "" : "s",
        r->files_skipped_binary, r->files_ignored, r->findings_ignored,
        r->findings_ignored == 1 ? "" : "s");
    oc = r->n ? PIPELINE_STEP_FAILURE : PIPELINE_STEP_SUCCESS;
out:
    snprintf(num, sizeof(num), "%zu", r ? r->n : 0);
    set_out(outputs, "findings", num);
    scan_report_free(r);
    free(root);
    return oc;
}

/* ---- slipway/watch ----------------------------------------------------------------------------
 */

/* One change to the environment: its state's last, or an event of its history. */
struct seen {
    const char *action, *from, *to, *actor, *message;
    int switched;
    int64_t generation;
    char when[40]; /* ISO 8601 */
};

/* A watch in progress: what it watches and, once it has ended, how. */
struct watch {
    const struct delivery_step *d;
    const struct env_config *env;
    char *release;    /* the release watched (owned) */
    int64_t seen_gen; /* the newest change judged */
    int monitored;    /* the monitor's window is open for it: a verdict will come */
    int ended;        /* 1: passed, -1: failed */
    int warn;         /* passed, but the log says it as a warning */
    char verdict[32];
    char *message; /* one line, escaped (owned) */
};

static int same(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

static void watch_end(struct watch *w, int how, int warn, const char *verdict, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void watch_end(struct watch *w, int how, int warn, const char *verdict, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    w->ended = how;
    w->warn = warn;
    snprintf(w->verdict, sizeof(w->verdict), "%s", verdict);
    w->message = buf_detach(&b, NULL);
}

/* The verdict word of a verdict's message, "watch of R ended: TEXT" as the
 * monitor writes it (src/monitor/watch.c); *warn when it is not a pass. */
static const char *verdict_word(const char *text, int *warn)
{
    static const struct {
        const char *prefix, *word;
        int warn;
    } words[] = {{"passed:", "passed", 0},
                 {"not enough traffic:", "not-enough-traffic", 1},
                 {"critical alerts:", "critical-alerts", 1},
                 {"no verdict:", "no-verdict", 1}};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (!strncmp(text, words[i].prefix, strlen(words[i].prefix))) {
            *warn = words[i].warn;
            return words[i].word;
        }
    *warn = 1;
    return "ended";
}

/* Judges one change newer than what was judged: the watched release rolled
 * back (fails), its verdict (passes), replaced on live (fails: its window
 * was not waited out), or any other change, which ends the monitor's window
 * (src/monitor/watch.c: a window lasts until the environment's next change)
 * so that no verdict will come. Everything quoted is escaped. */
static void watch_look(struct watch *w, const struct seen *c)
{
    char *r = esc(w->release), *to = esc(c->to ? c->to : "(nothing)"),
         *by = esc(c->actor ? c->actor : "?"), *msg = esc(c->message ? c->message : "");

    if (c->generation > w->seen_gen)
        w->seen_gen = c->generation;
    if (w->ended)
        goto out;
    if (!strcmp(c->action, "rollback") && same(c->from, w->release)) {
        watch_end(w, -1, 0, "rolled-back", "%s was rolled back on %s to %s by %s at %s: %s", r,
                  w->env->name, to, by, c->when, *msg ? msg : "(no message)");
    } else if (!strcmp(c->action, "verdict") && same(c->to, w->release)) {
        size_t n = strlen(msg);
        char *prefix = xasprintf("watch of %s ended: ", r);
        const char *text =
            !strncmp(msg, prefix, strlen(prefix)) ? msg + strlen(prefix) : (n ? msg : "");
        int warn;
        const char *word = verdict_word(text, &warn);
        watch_end(w, 1, warn, word, "%s", msg);
        free(prefix);
    } else if (c->switched == 1 && same(c->from, w->release) && !same(c->to, w->release)) {
        watch_end(w, -1, 0, "superseded",
                  "%s was replaced on %s by %s (a %s by %s at %s) before its watch ended", r,
                  w->env->name, to, c->action, by, c->when);
    } else if (w->monitored) {
        w->monitored = 0;
        say(w->d, PIPELINE_LOG_WARNING,
            "A %s by %s at %s ended the monitor's watch of %s early (a watch lasts until the "
            "environment's next change): no verdict will be recorded; the step goes on waiting "
            "for a rollback until its window ends.",
            c->action, by, c->when, r);
    }
out:
    free(r);
    free(to);
    free(by);
    free(msg);
}

static void seen_of_state(const struct env_state *s, struct seen *c)
{
    const struct env_change *l = &s->last;
    *c = (struct seen){l->action,  l->from,     l->to,         l->actor,
                       l->message, l->switched, l->generation, ""};
    time_format_iso(l->time_ms, c->when, sizeof(c->when));
}

/* Reads the state again and judges every change since the last look: from
 * the history when more than one happened (a verdict followed at once by a
 * deploy must still count as the verdict), else from the state's own last
 * change. Then what the state says whatever the history: the release
 * rejected or no longer live. 0, or a store error (the caller retries). */
static int watch_poll(struct watch *w, struct sw_err *err)
{
    struct env_state *s = NULL;
    struct deploy_event *ev = NULL;
    size_t n = 0;
    struct seen c;
    int rc = deploy_state_load(w->d->st, w->env->name, &s, err);

    if (rc)
        return rc;
    if (s->generation > w->seen_gen + 1 &&
        deploy_history(w->d->st, w->env->name, &ev, &n, err) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (ev[i].generation <= w->seen_gen || ev[i].generation > s->generation)
                continue;
            c = (struct seen){ev[i].action,  ev[i].from,     ev[i].to,         ev[i].actor,
                              ev[i].message, ev[i].switched, ev[i].generation, ""};
            snprintf(c.when, sizeof(c.when), "%s", ev[i].time ? ev[i].time : "?");
            watch_look(w, &c);
        }
        deploy_events_free(ev, n);
    }
    if (s->generation > w->seen_gen) { /* one change, or the history lacks the newest event */
        seen_of_state(s, &c);
        watch_look(w, &c);
    }
    const struct env_rejection *rj = deploy_rejection(s, w->release);
    if (!w->ended && (rj || !same(s->live_release, w->release))) {
        char *r = esc(w->release), *why = esc(rj && rj->reason ? rj->reason : ""),
             *live = esc(s->live_release ? s->live_release : "nothing");
        if (rj)
            watch_end(w, -1, 0, "rolled-back", "%s was rolled back on %s and rejected: %s", r,
                      w->env->name, why);
        else
            watch_end(w, -1, 0, "superseded", "%s is no longer live on %s (%s is)", r, w->env->name,
                      live);
        free(r);
        free(why);
        free(live);
    }
    env_state_free(s);
    return 0;
}

/* The generation of the newest change that made release live on env, from
 * the history; DEPLOY_ENOTHING when none did. */
static int went_live_gen(const struct delivery_step *d, const char *env, const char *release,
                         int64_t *gen, struct sw_err *err)
{
    struct deploy_event *ev = NULL;
    size_t n = 0;
    int rc = deploy_history(d->st, env, &ev, &n, err);

    if (rc)
        return rc;
    *gen = -1;
    for (size_t i = n; i-- > 0 && *gen < 0;)
        if (ev[i].switched == 1 && same(ev[i].to, release) && ev[i].action &&
            strcmp(ev[i].action, "verdict") != 0)
            *gen = ev[i].generation;
    deploy_events_free(ev, n);
    if (*gen < 0) {
        char *r = esc(release);
        rc = sw_err_set(err, DEPLOY_ENOTHING, "%s is not live on %s, and never was", r, env);
        free(r);
    }
    return rc;
}

/* Waits until the next look is due (1 s), a change is notified on fd, or
 * limit_mono; 1 when the run is cancelled. */
static int watch_wait(const struct delivery_step *d, int fd, int64_t until_mono)
{
    for (;;) {
        if (d->cancel && atomic_load(d->cancel))
            return 1;
        int64_t left = until_mono - time_mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, POLLIN, 0};
        int t = (int)(left > 100 ? 100 : left); /* a cancel is seen within 0.1 s */
        int n = poll(&p, fd >= 0 ? 1 : 0, t);
        if (n < 0 && errno != EINTR)
            nap(d, t); /* poll itself failing: time still passes */
        if (n > 0) {
            store_watch_drain(fd);
            return 0;
        }
    }
}

static enum pipeline_step_outcome step_watch(const struct delivery_step *d,
                                             const struct delivery_with *w, json_t *outputs)
{
    struct env_config *env = NULL;
    struct env_state *s = NULL;
    struct sw_err err = {0};
    struct watch wt = {.d = d};
    char *r = NULL;
    enum pipeline_step_outcome oc = PIPELINE_STEP_FAILURE;
    char dur[32], until[40], since[40], envdur[32];
    struct sw_err lasterr = {0};
    int fd = -1;
    int rc = load_env(d, w->env, &env, &err);

    if (rc)
        goto out;
    wt.env = env;
    int64_t duration = w->duration_ms ? w->duration_ms : env->watch.duration_ms;
    if (!duration) {
        rc = sw_err_set(&err, SW_EINVAL,
                        "environment %s has no watch (no watch: key in %s): give the step a "
                        "duration (with: duration: 10m), or the environment "
                        "watch: {duration: 10m, on_critical: rollback}",
                        env->name, env->file);
        goto out;
    }
    if ((rc = deploy_state_load(d->st, env->name, &s, &err)))
        goto out;
    if (w->release) {
        if ((rc = release_resolve(d->st, w->release, &wt.release, &err)))
            goto out;
    } else if (s->live_release) {
        wt.release = xstrdup(s->live_release);
    } else {
        rc = sw_err_set(&err, DEPLOY_ENOTHING, "nothing is live on %s: no release to watch",
                        env->name);
        goto out;
    }
    set_out(outputs, "release", wt.release);

    /* Where the watch stands now: over already, or open since when. */
    struct seen c;
    const struct env_change *l = &s->last;
    int64_t went_live = time_now_ms();
    r = esc(wt.release);
    seen_of_state(s, &c);
    wt.seen_gen = s->generation;
    if ((!strcmp(l->action, "rollback") && same(l->from, wt.release)) ||
        (!strcmp(l->action, "verdict") && same(l->to, wt.release))) {
        wt.seen_gen = s->generation - 1;
        watch_look(&wt, &c); /* its window ended before the step began */
    } else if (deploy_rejection(s, wt.release) || !same(s->live_release, wt.release)) {
        /* the step began late: judged from the change that last made it live */
        if ((rc = went_live_gen(d, env->name, wt.release, &wt.seen_gen, &err)))
            goto out;
        if ((rc = watch_poll(&wt, &err)))
            goto out;
    } else if (l->switched == 1 && (!strcmp(l->action, "deploy") || !strcmp(l->action, "switch")) &&
               same(l->to, wt.release)) {
        went_live = l->time_ms;
        wt.monitored = env->watch.duration_ms > 0;
    } else {
        say(d, PIPELINE_LOG_WARNING,
            "No watch window is open for %s on %s: its last change was a %s, not the deploy or "
            "switch that made it live; the monitor records no verdict for it, and the step "
            "watches it for a rollback from now.",
            r, env->name, l->action[0] ? l->action : "(none)");
    }
    int64_t end = went_live + duration, env_end = went_live + env->watch.duration_ms;
    /* a verdict comes at the monitor's end of the window: wait for it when
     * the step's window reaches that far, with a grace for serve to write it */
    int wait_verdict = wt.monitored && env_end <= end;
    int64_t give_up = wait_verdict && env_end + DELIVERY_WATCH_GRACE_MS > end
                          ? env_end + DELIVERY_WATCH_GRACE_MS
                          : end;
    duration_format(duration, dur, sizeof(dur));
    duration_format(env->watch.duration_ms, envdur, sizeof(envdur));
    time_format_iso(end, until, sizeof(until));
    time_format_iso(went_live, since, sizeof(since));
    if (!wt.ended) {
        if (wait_verdict)
            say(d, PIPELINE_LOG_OUTPUT,
                "Watching %s on %s for %s from %s, until %s: the step fails if it is rolled back "
                "or replaced, and passes with the verdict slipway serve records when %s's watch "
                "(%s) ends (waited for up to %llds past it).",
                r, env->name, dur, since, until, env->name, envdur,
                (long long)(DELIVERY_WATCH_GRACE_MS / 1000));
        else
            say(d, PIPELINE_LOG_OUTPUT,
                "Watching %s on %s for %s from %s, until %s: the step fails if it is rolled back "
                "or replaced%s.",
                r, env->name, dur, since, until,
                wt.monitored ? "; the monitor's own watch goes on after the step" : "");
    }
    if (!wt.ended && store_watch(d->st, "envs", &fd, &err) < 0)
        fd = -1; /* no notices: the 1 s looks still see every change */
    while (!wt.ended) {
        if (watch_wait(d, fd, time_mono_ms() + 1000)) {
            say(d, PIPELINE_LOG_ERROR, "The operation was canceled.");
            oc = PIPELINE_STEP_CANCELLED;
            goto out;
        }
        struct sw_err perr = {0};
        if (watch_poll(&wt, &perr)) {
            if (strcmp(perr.msg, lasterr.msg)) /* a failing store says so once, not per second */
                say(d, PIPELINE_LOG_WARNING, "reading %s's state: %s (trying again)", env->name,
                    perr.msg);
            lasterr = perr;
        }
        if (wt.ended)
            break;
        int64_t now = time_now_ms();
        if (now >= give_up) {
            char *e = esc(wt.release);
            if (wait_verdict)
                watch_end(&wt, 1, 1, "unrecorded",
                          "no verdict recorded for %s on %s by %s (is slipway serve running with "
                          "its monitor?); it was not rolled back",
                          e, env->name, until);
            else
                watch_end(&wt, 1, 0, "not-rolled-back",
                          "%s stayed live on %s for %s and was not rolled back", e, env->name, dur);
            free(e);
            break;
        }
        if (d->deadline_mono && time_mono_ms() >= d->deadline_mono) {
            if (d->timed_out)
                *d->timed_out = 1;
            rc = sw_err_set(&err, SW_EIO,
                            "timed out before the watch of %s ended (its window ends %s)",
                            wt.release, until);
            goto out;
        }
    }
    if (wt.ended < 0) {
        rc = sw_err_set(&err, SW_EIO, "%s", wt.message);
        goto out;
    }
    say(d, wt.warn ? PIPELINE_LOG_WARNING : PIPELINE_LOG_OUTPUT, "Verdict: %s (%s)", wt.verdict,
        wt.message);
    oc = PIPELINE_STEP_SUCCESS;
out:
    if (rc)
        oc = fail(d, &err);
    set_out(outputs, "verdict",
            wt.ended                        ? wt.verdict
            : oc == PIPELINE_STEP_CANCELLED ? "cancelled"
                                            : "");
    set_out(outputs, "message",
            wt.message                    ? wt.message
            : oc == PIPELINE_STEP_FAILURE ? err.msg
                                          : "");
    if (fd >= 0)
        close(fd);
    env_state_free(s);
    env_config_free(env);
    free(r);
    free(wt.release);
    free(wt.message);
    return oc;
}

enum pipeline_step_outcome delivery_step_run(const struct delivery_step *d, enum pipeline_builtin b,
                                             json_t *outputs)
{
    struct delivery_with w;
    struct sw_err err = {0};
    enum pipeline_step_outcome oc;

    if (delivery_with_parse(b, d->with, &w, &err)) {
        oc = fail(d, &err);
        delivery_with_free(&w);
        return oc;
    }
    if (w.unknown)
        say(d, PIPELINE_LOG_WARNING, "%s", w.unknown);
    switch (b) {
    case PIPELINE_BUILTIN_SLIPWAY_DEPLOY:
        oc = step_deploy(d, &w, outputs);
        break;
    case PIPELINE_BUILTIN_SLIPWAY_SWITCH:
    case PIPELINE_BUILTIN_SLIPWAY_ROLLBACK:
        oc = step_change(d, b, &w, outputs);
        break;
    case PIPELINE_BUILTIN_SLIPWAY_HEALTH_CHECK:
        oc = step_health(d, &w, outputs);
        break;
    case PIPELINE_BUILTIN_SLIPWAY_WATCH:
        oc = step_watch(d, &w, outputs);
        break;
    default:
        oc = step_scan(d, &w, outputs);
        break;
    }
    delivery_with_free(&w);
    return oc;
}
