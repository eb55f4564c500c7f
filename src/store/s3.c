/*
 * The S3 client: sign, send, retry, explain. See s3.h.
 */
#include "base/crypto.h"
#include "base/curl.h"
#include "store/s3.h"
#include "store/s3xml.h"
#include "store/sigv4.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX 64
/* Retries: at most this many attempts, none started after MAX_TIME_MS. */
#define MAX_ATTEMPTS 6
#define MAX_TIME_MS 30000
#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 5000
/* An error document is small; anything longer is not one. */
#define ERROR_BODY_MAX (64 * 1024)
/* No byte for this long is a stall: the request fails (and may be retried). */
#define STALL_S_DEFAULT 10L
#define CONNECT_MS_DEFAULT 5000L
/* s3_set_fail_fast: a follower's next poll is its retry (store.h). */
#define FAST_TIME_MS 2000
#define FAST_CONNECT_MS 1000L
#define FAST_STALL_S 2L

struct s3 {
    struct s3conf c;
    char *shown; /* s3conf_describe: the URL without secrets, for messages */
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    pthread_mutex_t pool_mu;
    CURL *pool[POOL_MAX];
    size_t npool;
    long stall_s, stall_s_patient;
    long connect_ms;
    int64_t max_time_ms; /* no attempt starts later than this after the first */
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
    (void)h;
    (void)access;
    struct s3 *s = arg;
    pthread_mutex_lock(&s->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
    (void)h;
    struct s3 *s = arg;
    pthread_mutex_unlock(&s->share_mu[data]);
}

static const char *env_get(const char *name)
{
    return getenv(name);
}

int s3_new(const char *url, struct s3 **out, struct sw_err *err)
{
    /* libcrypto first, on its own (libcurl's load would bring it too): a
     * walk that hashes meanwhile then waits for that much, not for the whole
     * of libcurl under the loader's lock. */
    int rc = sw_crypto_load(err);
    if (!rc)
        rc = sw_curl_load(err);
    if (rc)
        return rc;
    struct s3 *s = xcalloc(1, sizeof(*s));
    rc = s3conf_parse(url, env_get, &s->c, err);
    if (rc) {
        free(s);
        return rc;
    }
    s->shown = s3conf_describe(&s->c);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s->share_mu[i], NULL);
    pthread_mutex_init(&s->pool_mu, NULL);
    s->share = curl_share_init();
    if (s->share) {
        curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, share_lock);
        curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
        curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
        curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
        curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    }
    /* For tests that stall a connection on purpose, so they need not wait
     * the default out; documented in docs/store.md. */
    const char *stall = getenv("SLIPWAY_S3_STALL_SECONDS");
    s->stall_s = stall && atol(stall) > 0 && atol(stall) < 3600 ? atol(stall) : STALL_S_DEFAULT;
    s->stall_s_patient = s->stall_s;
    s->connect_ms = CONNECT_MS_DEFAULT;
    s->max_time_ms = MAX_TIME_MS;
    *out = s;
    return 0;
}

void s3_free(struct s3 *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->npool; i++)
        curl_easy_cleanup(s->pool[i]);
    if (s->share)
        curl_share_cleanup(s->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s->share_mu[i]);
    pthread_mutex_destroy(&s->pool_mu);
    s3conf_free(&s->c);
    free(s->shown);
    free(s);
}

void s3_set_fail_fast(struct s3 *s, int on)
{
    s->max_time_ms = on ? FAST_TIME_MS : MAX_TIME_MS;
    s->connect_ms = on ? FAST_CONNECT_MS : CONNECT_MS_DEFAULT;
    s->stall_s = on && s->stall_s_patient > FAST_STALL_S ? FAST_STALL_S : s->stall_s_patient;
}

const struct s3conf *s3_conf(const struct s3 *s)
{
    return &s->c;
}

const char *s3_conf_shown(const struct s3 *s)
{
    return s->shown;
}

static CURL *handle_take(struct s3 *s)
{
    CURL *h = NULL;
    pthread_mutex_lock(&s->pool_mu);
    if (s->npool)
        h = s->pool[--s->npool];
    pthread_mutex_unlock(&s->pool_mu);
    if (h)
        curl_easy_reset(h); /* keeps its connections */
    else
        h = curl_easy_init();
    return h;
}

static void handle_give(struct s3 *s, CURL *h)
{
    pthread_mutex_lock(&s->pool_mu);
    if (s->npool < POOL_MAX) {
        s->pool[s->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&s->pool_mu);
    if (h)
        curl_easy_cleanup(h);
}

void s3_resp_free(struct s3_resp *resp)
{
    buf_free(&resp->body);
}

int64_t s3_backoff_ms(int attempt, uint64_t rnd)
{
    int64_t d = BACKOFF_BASE_MS;
    for (int i = 0; i < attempt && d < BACKOFF_CAP_MS; i++)
        d *= 2;
    if (d > BACKOFF_CAP_MS)
        d = BACKOFF_CAP_MS;
    return (int64_t)(rnd % (uint64_t)(d + 1));
}

void s3_query_add(struct buf *b, const char *name, const char *value)
{
    if (b->len)
        buf_adds(b, "&");
    sigv4_uri_encode(b, name, strlen(name), 0);
    buf_adds(b, "=");
    sigv4_uri_encode(b, value, strlen(value), 0);
}

/* ---- one attempt ------------------------------------------------------------------------- */

struct xfer {
    struct s3 *s;
    const struct s3_req *r;
    struct s3_resp *resp;
    CURL *h;
    size_t up_off;
    int up_failed;   /* the body's file could not be read */
    uint64_t sunk;   /* bytes the sink has accepted, over every attempt */
    uint64_t resume; /* where this attempt's body starts (a Range retry) */
    int sink_rc;
    struct sw_err sink_err;
    int too_big;
    int restarted; /* a retry sent the body from the start: the sink cannot take it */
    /* The blank line that ends the final response's header section arrived. A
     * connection closed (not reset) inside the head is no error to libcurl, which
     * then reports the status line and whatever headers came: a HEAD without its
     * Content-Length, a PUT without its ETag. Such an answer is a cut transfer. */
    int head_done;
};

static void header_value(const char *p, size_t len, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    if (len <= n + 1 || strncasecmp(p, name, n) != 0 || p[n] != ':')
        return;
    p += n + 1;
    len -= n + 1;
    while (len && (*p == ' ' || *p == '\t'))
        p++, len--;
    while (len && (p[len - 1] == '\r' || p[len - 1] == '\n' || p[len - 1] == ' '))
        len--;
    if (len >= 2 && p[0] == '"' && p[len - 1] == '"')
        p++, len -= 2;
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, p, len);
    out[len] = '\0';
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * nmemb;
    struct s3_resp *resp = x->resp;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new response (after a 100) */
        x->head_done = 0;
        resp->etag[0] = resp->sha256[0] = '\0';
        resp->last_modified_ms = 0;
        resp->content_length = -1;
        return len;
    }
    if ((len == 2 && p[0] == '\r' && p[1] == '\n') || (len == 1 && p[0] == '\n')) {
        long code = 0;
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
        x->head_done = code >= 200; /* a 1xx is followed by the real answer */
        return len;
    }
    char v[S3_ETAG_MAX];
    v[0] = '\0';
    header_value(p, len, "etag", resp->etag, sizeof(resp->etag));
    header_value(p, len, "x-amz-meta-sha256", v, sizeof(v));
    if (v[0] && hex_lower_valid(v, SHA256_HEX_LEN))
        memcpy(resp->sha256, v, SHA256_HEX_LEN + 1);
    v[0] = '\0';
    header_value(p, len, "last-modified", v, sizeof(v));
    if (v[0]) {
        time_t t = curl_getdate(v, NULL);
        resp->last_modified_ms = t > 0 ? (int64_t)t * 1000 : 0;
    }
    v[0] = '\0';
    header_value(p, len, "content-length", v, sizeof(v));
    if (v[0]) {
        char *end;
        long long n = strtoll(v, &end, 10);
        resp->content_length = *end || n < 0 ? -1 : n;
    }
    return len;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * nmemb;
    long code = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300 && x->r->sink) {
        if (x->resume && code != 206) {
            x->restarted = 1;
            return 0;
        }
        int rc = x->r->sink(x->r->sink_arg, p, len, &x->sink_err);
        if (rc) {
            x->sink_rc = rc;
            return 0;
        }
        x->sunk += len;
        return len;
    }
    size_t max = code >= 200 && code < 300 ? x->r->max_body : ERROR_BODY_MAX;
    if (len > max - x->resp->body.len) {
        x->too_big = 1;
        return 0;
    }
    buf_add(&x->resp->body, p, len);
    return len;
}

static size_t on_read(char *out, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    size_t want = size * nmemb, left = x->r->len - x->up_off;
    if (want > left)
        want = left;
    if (!want)
        return 0;
    if (x->r->body_fd < 0) {
        memcpy(out, (const char *)x->r->data + x->up_off, want);
    } else {
        ssize_t n;
        do
            n = pread(x->r->body_fd, out, want, (off_t)(x->r->body_off + x->up_off));
        while (n < 0 && errno == EINTR);
        if (n <= 0) { /* an error, or the file shrank under us */
            x->up_failed = n < 0 ? errno : EIO;
            return CURL_READFUNC_ABORT;
        }
        want = (size_t)n;
    }
    x->up_off += want;
    return want;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
    struct xfer *x = arg;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->r->len)
        return CURL_SEEKFUNC_CANTSEEK;
    x->up_off = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/* "Name: value" → the two halves, for the signer. */
static int split_header(const char *line, char *name, size_t namelen, const char **value)
{
    const char *colon = strchr(line, ':');
    if (!colon || (size_t)(colon - line) >= namelen)
        return -1;
    memcpy(name, line, (size_t)(colon - line));
    name[colon - line] = '\0';
    *value = colon + 1;
    while (**value == ' ')
        (*value)++;
    return 0;
}

static void path_of(const struct s3 *s, const struct s3_req *r, struct buf *path)
{
    buf_adds(path, "/");
    if (s->c.path_style) {
        buf_adds(path, s->c.bucket);
        if (r->key)
            buf_adds(path, "/");
    }
    if (r->key) {
        if (!(r->flags & S3_RAW_KEY))
            buf_adds(path, s->c.prefix);
        buf_adds(path, r->key);
    }
}

/* Sets up h for one attempt. Returns 0 or SW_EINVAL (the signer refused). */
static int attempt_setup(struct xfer *x, struct curl_slist **hl, struct sw_err *err)
{
    struct s3 *s = x->s;
    const struct s3_req *r = x->r;
    CURL *h = x->h;
    struct buf path = BUF_INIT, url = BUF_INIT;
    struct sigv4_out so = {0};
    struct sigv4_header hv[S3_HDR_MAX + 3];
    char names[S3_HDR_MAX + 2][64];
    char range[64];
    size_t nh = 0;
    int rc;
    hv[nh++] = (struct sigv4_header){"host", s->c.host};
    for (size_t i = 0; i < S3_HDR_MAX && r->hdr[i]; i++) {
        if (split_header(r->hdr[i], names[nh], sizeof(names[nh]), &hv[nh].value) < 0) {
            rc = sw_err_set(err, SW_EINVAL, "s3: malformed request header");
            goto out;
        }
        hv[nh].name = names[nh];
        nh++;
    }
    if (x->resume) { /* the rest of an object a reset cut short, and only if unchanged */
        snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)x->resume);
        hv[nh++] = (struct sigv4_header){"range", range};
    }
    char sha[SHA256_HEX_LEN + 1];
    const char *payload = r->body_sha256;
    if (!payload) {
        sha256_hex(r->body_fd < 0 && r->data ? r->data : "", r->body_fd < 0 ? r->len : 0, sha);
        payload = sha;
    }
    path_of(s, r, &path);
    struct sigv4_request sr = {r->method, path.data, r->query, hv, nh, payload};
    struct sigv4_creds cr = {s->c.access_key, s->c.secret_key, s->c.session_token};
    struct sigv4_opts o = {.region = s->c.region,
                           .service = "s3",
                           .time = (int64_t)time(NULL),
                           .mode = SIGV4_HEADER,
                           .content_sha256 = 1};
    if ((rc = sigv4_sign(&sr, &cr, &o, &so, err)))
        goto out;
    buf_adds(&url, str_starts_with(s->c.endpoint, "https:") ? "https://" : "http://");
    buf_adds(&url, s->c.host);
    buf_add(&url, so.path.data, so.path.len);
    if (so.query.len) {
        buf_adds(&url, "?");
        buf_add(&url, so.query.data, so.query.len);
    }
    for (size_t i = 1; i < nh; i++) {
        char *line = xasprintf("%s: %s", hv[i].name, hv[i].value);
        *hl = curl_slist_append(*hl, line);
        free(line);
    }
    for (size_t i = 0; i < so.n_add; i++)
        *hl = curl_slist_append(*hl, so.add[i].data);
    *hl = curl_slist_append(*hl, "Expect:"); /* no 100-continue round trip */
    *hl = curl_slist_append(*hl, "Accept:");

    curl_easy_setopt(h, CURLOPT_URL, url.data);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hl);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (s->share)
        curl_easy_setopt(h, CURLOPT_SHARE, s->share);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (s->c.ca_bundle) /* s3conf: $AWS_CA_BUNDLE or the profile's ca_bundle */
        curl_easy_setopt(h, CURLOPT_CAINFO, s->c.ca_bundle);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, s->connect_ms);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, s->stall_s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    if (!strcmp(r->method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(r->method, "GET")) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (!strcmp(r->method, "PUT") || !strcmp(r->method, "POST")) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, x);
        /* libcurl sends a request again by itself, on a new connection, when a
         * reused one closes before a whole header line came back, if it can rewind
         * the body. The first may have been applied, so a conditional write must
         * not be repeated blindly (its repeat would fail with 412 and a write that
         * landed look like a conflict): without a seek function libcurl fails it
         * instead (CURLE_SEND_FAIL_REWIND), and the caller re-checks. */
        if (r->flags & S3_IDEMPOTENT) {
            curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
            curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
        }
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->len);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    }
    rc = 0;
out:
    sigv4_out_free(&so);
    buf_free(&path);
    buf_free(&url);
    return rc;
}

/* ---- explaining a failure ---------------------------------------------------------------- */

static const char *code_of_status(long status)
{
    switch (status) {
    case 403:
        return "Forbidden";
    case 404:
        return "NotFound";
    case 409:
        return "Conflict";
    case 412:
        return "PreconditionFailed";
    case 500:
        return "InternalError";
    case 503:
        return "ServiceUnavailable";
    default:
        return "";
    }
}

/* Fills resp->code from S3's error document (or the status), and msg with
 * the document's Message, escaped: it is the service's text, not ours. */
static void error_parse(struct s3_resp *resp, struct buf *msg, struct buf *extra)
{
    struct s3xml_node *doc = NULL;
    struct sw_err ignored = {0};
    const char *code = NULL;
    if (resp->body.len && s3xml_parse(resp->body.data, resp->body.len, &doc, &ignored) == 0 &&
        !strcmp(doc->name, "Error")) {
        code = s3xml_text(doc, "Code");
        const char *m = s3xml_text(doc, "Message");
        if (m && *m) {
            char cut[201];
            snprintf(cut, sizeof(cut), "%s", m);
            buf_add_escaped(msg, cut);
        }
        const char *req_time = s3xml_text(doc, "RequestTime");
        const char *srv_time = s3xml_text(doc, "ServerTime");
        if (req_time && srv_time) {
            time_t a = curl_getdate(srv_time, NULL), now = time(NULL);
            if (a > 0)
                buf_addf(extra, " (this machine's clock is %lld s %s the service's)",
                         (long long)(now > a ? now - a : a - now), now > a ? "ahead of" : "behind");
        }
    }
    if (code && *code && strlen(code) < sizeof(resp->code)) {
        size_t i = 0;
        for (; code[i]; i++)
            if (!((code[i] >= 'A' && code[i] <= 'Z') || (code[i] >= 'a' && code[i] <= 'z') ||
                  (code[i] >= '0' && code[i] <= '9')))
                break;
        if (!code[i])
            snprintf(resp->code, sizeof(resp->code), "%s", code);
    }
    if (!resp->code[0])
        snprintf(resp->code, sizeof(resp->code), "%s", code_of_status(resp->status));
    s3xml_free(doc);
}

static int status_error(struct s3 *s, const struct s3_req *r, struct s3_resp *resp,
                        struct sw_err *err)
{
    struct buf msg = BUF_INIT, extra = BUF_INIT;
    error_parse(resp, &msg, &extra);
    int code = SW_EIO;
    switch (resp->status) {
    case 404:
        code = SW_ENOTFOUND;
        break;
    case 409:
    case 412:
        code = SW_ECONFLICT;
        break;
    case 401:
    case 403:
        code = SW_EACCES;
        break;
    }
    if (!strcmp(resp->code, "NoSuchBucket"))
        code = SW_EIO; /* not "that key is missing": the whole store is */
    if (!strcmp(resp->code, "SignatureDoesNotMatch") || !strcmp(resp->code, "InvalidAccessKeyId"))
        buf_addf(&extra, " (credentials from %s)", s->c.cred_source ? s->c.cred_source : "?");
    struct buf key = BUF_INIT;
    buf_add_escaped(&key, r->key ? r->key : "(bucket)");
    sw_err_set(err, code, "%s: %s %s: %ld %s%s%s%s", s->shown, r->method, key.data, resp->status,
               resp->code, msg.len ? ": " : "", msg.len ? msg.data : "",
               extra.len ? extra.data : "");
    buf_free(&key);
    buf_free(&msg);
    buf_free(&extra);
    return code;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static uint64_t random_u64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
        v = (uint64_t)time_mono_ms() * 6364136223846793005ULL;
    return v;
}

/* The transport failed: may the request have been applied? Not when no
 * connection was made, nor when nothing was sent. */
static int transport_maybe_applied(CURLcode c)
{
    return !(c == CURLE_COULDNT_CONNECT || c == CURLE_COULDNT_RESOLVE_HOST ||
             c == CURLE_COULDNT_RESOLVE_PROXY);
}

int s3_request(struct s3 *s, const struct s3_req *r, struct s3_resp *resp, struct sw_err *err)
{
    /* Callers that ignore a failure pass no err (deploy_unlock's delete, the
     * best-effort event append after a change): the message is built anyway. */
    struct sw_err ignored;
    if (!err)
        err = &ignored;
    memset(resp, 0, sizeof(*resp));
    resp->content_length = -1;
    struct xfer x = {.s = s, .r = r, .resp = resp};
    int64_t start = time_mono_ms();
    char ifmatch[S3_ETAG_MAX + 16] = "";
    int rc = SW_EIO;
    for (int attempt = 0;; attempt++) {
        struct curl_slist *hl = NULL;
        x.h = handle_take(s);
        if (!x.h)
            return sw_err_set(err, SW_EIO, "%s: cannot set up a request (curl)", s->shown);
        x.up_off = 0;
        x.up_failed = 0;
        x.too_big = 0;
        x.restarted = 0;
        x.head_done = 0;
        x.resume = x.sunk;
        buf_reset(&resp->body);
        resp->status = 0;
        resp->code[0] = '\0';
        resp->attempts = attempt + 1;
        struct s3_req rr = *r;
        if (x.resume) {
            /* Only the rest of the same object: If-Match on the ETag the first
             * answer carried, so a replaced object fails rather than splices. */
            size_t n = 0;
            while (n < S3_HDR_MAX - 1 && rr.hdr[n])
                n++;
            snprintf(ifmatch, sizeof(ifmatch), "If-Match: \"%s\"", resp->etag);
            rr.hdr[n] = ifmatch;
        }
        x.r = &rr;
        rc = attempt_setup(&x, &hl, err);
        CURLcode c = rc ? CURLE_OK : curl_easy_perform(x.h);
        if (!rc)
            curl_easy_getinfo(x.h, CURLINFO_RESPONSE_CODE, &resp->status);
        char cerr[CURL_ERROR_SIZE];
        snprintf(cerr, sizeof(cerr), "%s", curl_easy_strerror(c));
        if (!rc && c == CURLE_OK && !x.head_done) {
            /* The request was sent and an answer begun: it may have been applied. */
            c = CURLE_PARTIAL_FILE;
            snprintf(cerr, sizeof(cerr), "the connection closed inside the response's header");
        }
        curl_slist_free_all(hl);
        handle_give(s, x.h);
        x.r = r;
        if (rc)
            return rc;
        int retry = 0, maybe = 0;
        if (x.sink_rc) {
            *err = x.sink_err;
            return x.sink_rc;
        }
        if (x.up_failed)
            return sw_err_sys(err, x.up_failed, "%s: PUT %s: reading the body", s->shown,
                              r->key ? r->key : "");
        if (x.too_big)
            return sw_err_set(err, SW_EIO, "%s: %s %s: answer larger than expected", s->shown,
                              r->method, r->key ? r->key : "(bucket)");
        if (x.restarted)
            return sw_err_set(err, SW_EIO, "%s: GET %s: the service restarted the body", s->shown,
                              r->key ? r->key : "");
        if (c != CURLE_OK) {
            retry = (r->flags & S3_IDEMPOTENT) || !transport_maybe_applied(c);
            maybe = !retry;
            sw_err_set(err, SW_EIO, "%s: %s %s: %s", s->shown, r->method,
                       r->key ? r->key : "(bucket)", cerr);
        } else if ((resp->status >= 200 && resp->status < 300) || resp->status == 304) {
            return 0;
        } else {
            rc = status_error(s, r, resp, err);
            /* 503 (SlowDown too) is a refusal: nothing was applied */
            if (resp->status == 503)
                retry = 1;
            else if (resp->status >= 500 || resp->status == 408)
                retry = (r->flags & S3_IDEMPOTENT) != 0, maybe = !retry;
            else if (!strcmp(resp->code, "RequestTimeout") || !strcmp(resp->code, "SlowDown"))
                retry = 1;
            if (!retry && !maybe)
                return rc;
        }
        int64_t wait = s3_backoff_ms(attempt, random_u64());
        if (!retry || attempt + 1 >= MAX_ATTEMPTS ||
            time_mono_ms() - start + wait > s->max_time_ms) {
            if (maybe)
                return S3_EMAYBE;
            size_t l = strlen(err->msg);
            if (attempt && !strstr(err->msg, "attempts)"))
                snprintf(err->msg + l, sizeof(err->msg) - l, " (after %d attempts)", attempt + 1);
            return err->code ? err->code : SW_EIO;
        }
        sleep_ms(wait);
    }
}
