/*
 * AWS Signature Version 4 (sigv4.h says what goes in and comes out).
 *
 * The one idea: the signature covers a *canonical* form of the request, and
 * every rule below exists so that the service, rebuilding that form from the
 * bytes it received, gets exactly the same text. So the signer also returns
 * the path and query to put on the request line (the canonical ones), and the
 * s3 backend never encodes a key a second, slightly different, way.
 *
 * Canonical request (AWS General Reference, "Create a canonical request"):
 *   METHOD \n CANONICAL-URI \n CANONICAL-QUERY \n CANONICAL-HEADERS \n
 *   SIGNED-HEADERS \n PAYLOAD-HASH
 * where each canonical header line ends in \n, so a blank line follows them.
 * String to sign: "AWS4-HMAC-SHA256" \n X-Amz-Date \n scope \n hex(SHA-256(creq)),
 * scope being DATE/REGION/SERVICE/aws4_request; the key is derived by chaining
 * HMAC-SHA256 over "AWS4"+secret, DATE, REGION, SERVICE, "aws4_request".
 */
#include "store/sigv4.h"

#include "base/crypto.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
#define METHOD_MAX 64
#define ACCESS_KEY_MAX 128
#define SECRET_MAX 256
#define TOKEN_MAX 8192
#define SCOPE_PART_MAX 64
#define TIME_MAX 253402300799LL /* 9999-12-31T23:59:59Z */

/* ---- encoding ---------------------------------------------------------------- */

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

void sigv4_uri_encode(struct buf *b, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    buf_grow(b, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            buf_add(b, &s[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_add(b, e, 3);
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes s[0..n) ("%2F" -> '/'; a stray '%' stays) and appends it re-encoded. */
static void reencode(struct buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && n - i >= 3 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        sigv4_uri_encode(b, &c, 1, 0);
    }
}

/* ---- the canonical query ------------------------------------------------------- */

struct qpair {
    char *text; /* "name=value", both encoded */
    size_t nlen;
};

static int qpair_cmp(const void *a, const void *b)
{
    const struct qpair *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->text, y->text, n);
    if (c)
        return c;
    if (x->nlen != y->nlen)
        return x->nlen < y->nlen ? -1 : 1;
    /* Same name: order by value (after the '='). */
    return strcmp(x->text + x->nlen + 1, y->text + y->nlen + 1);
}

/* Splits and re-encodes query into pairs (caller frees each text and the array). */
static struct qpair *query_pairs(const char *query, size_t *count)
{
    struct qpair *v = NULL;
    size_t n = 0, cap = 0;
    const char *p = query ? query : "";

    while (*p) {
        size_t len = strcspn(p, "&");
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            struct buf t = BUF_INIT;
            reencode(&t, p, klen);
            size_t nlen = t.len;
            buf_add(&t, "=", 1);
            if (eq)
                reencode(&t, eq + 1, len - klen - 1);
            if (n == cap) {
                cap = cap ? 2 * cap : 8;
                v = xrealloc(v, cap * sizeof(*v));
            }
            v[n].nlen = nlen;
            v[n].text = buf_detach(&t, NULL);
            n++;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    *count = n;
    return v;
}

static void query_pairs_free(struct qpair *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].text);
    free(v);
}

void sigv4_canonical_query(struct buf *b, const char *query)
{
    size_t n = 0;
    struct qpair *v = query_pairs(query, &n);
    if (n > 1)
        qsort(v, n, sizeof(*v), qpair_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_add(b, "&", 1);
        buf_adds(b, v[i].text);
    }
    query_pairs_free(v, n);
}

/* ---- the canonical URI ------------------------------------------------------------ */

/* RFC 3986 section 5.2.4 (remove_dot_segments) plus AWS's folding of empty
 * segments ("//" -> "/"), on the unencoded path; a trailing '/' (or a final
 * "." or "..", which name a directory) is kept unless the result is "/". */
static void normalize_path(struct buf *out, const char *path)
{
    size_t n = strlen(path), depth = 0, cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += path[i] == '/';
    const char **seg = xmalloc(cap * sizeof(*seg));
    size_t *len = xmalloc(cap * sizeof(*len));
    int dir = 0;
    const char *p = path;

    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        size_t l = strcspn(p, "/");
        dir = 0;
        if (l == 1 && p[0] == '.') {
            dir = 1;
        } else if (l == 2 && p[0] == '.' && p[1] == '.') {
            dir = 1;
            if (depth)
                depth--;
        } else {
            seg[depth] = p;
            len[depth] = l;
            depth++;
        }
        p += l;
    }
    if (n && path[n - 1] == '/')
        dir = 1;
    buf_add(out, "/", 1);
    for (size_t i = 0; i < depth; i++) {
        if (i)
            buf_add(out, "/", 1);
        buf_add(out, seg[i], len[i]);
    }
    if (dir && depth)
        buf_add(out, "/", 1);
    free(seg);
    free(len);
}

/* ---- headers ------------------------------------------------------------------------ */

struct hdr {
    char *name;  /* lowercase */
    char *value; /* trimmed, runs of blanks folded */
    size_t order;
};

static int hdr_cmp(const void *a, const void *b)
{
    const struct hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int tchar(unsigned char c)
{
    /* RFC 9110 section 5.6.2 */
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int token_valid(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= max || !tchar((unsigned char)s[n]))
            return 0;
    return n > 0;
}

/* RFC 9110 section 5.5: field values are VCHAR, obs-text, SP and HTAB; no
 * CR, LF or NUL, which could end the header and forge another. */
static int value_valid(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

static char *fold_value(const char *v)
{
    struct buf b = BUF_INIT;
    int blank = 0;
    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            blank = 1;
            continue;
        }
        if (blank)
            buf_add(&b, " ", 1);
        blank = 0;
        buf_add(&b, v, 1);
    }
    return buf_detach(&b, NULL);
}

static char *lower_dup(const char *s)
{
    char *d = xstrdup(s);
    for (char *p = d; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return d;
}

/* ---- checks --------------------------------------------------------------------------- */

/* Printable ASCII without space, limited, and without any byte of `forbid`. */
static int ascii_valid(const char *s, size_t max, const char *forbid)
{
    size_t n = 0;
    if (!s)
        return 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= max || c <= 0x20 || c >= 0x7f || strchr(forbid, c))
            return 0;
    }
    return n > 0;
}

static int scope_part_valid(const char *s)
{
    size_t n = 0;
    if (!s)
        return 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= SCOPE_PART_MAX || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                     (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return n > 0;
}

static const char *const auth_params[] = {
    "X-Amz-Algorithm",     "X-Amz-Credential", "X-Amz-Date",          "X-Amz-Expires",
    "X-Amz-SignedHeaders", "X-Amz-Signature",  "X-Amz-Security-Token"};

static int check(const struct sigv4_request *req, const struct sigv4_creds *cr,
                 const struct sigv4_opts *o, int token, struct sw_err *err)
{
    size_t total = 0, nq = 0;
    int host = 0;

    if (!req->method || !token_valid(req->method, METHOD_MAX))
        return sw_err_set(err, SW_EINVAL, "sigv4: the method is not an HTTP token");
    if (!req->path || req->path[0] != '/')
        return sw_err_set(err, SW_EINVAL, "sigv4: the path does not start with '/'");
    if (strlen(req->path) > SIGV4_PATH_MAX)
        return sw_err_set(err, SW_EINVAL, "sigv4: the path is longer than %d bytes",
                          SIGV4_PATH_MAX);
    if (req->query && strlen(req->query) > SIGV4_QUERY_MAX)
        return sw_err_set(err, SW_EINVAL, "sigv4: the query is longer than %d bytes",
                          SIGV4_QUERY_MAX);
    if (!req->payload_hash || (strcmp(req->payload_hash, SIGV4_UNSIGNED_PAYLOAD) &&
                               !hex_lower_valid(req->payload_hash, SHA256_HEX_LEN)))
        return sw_err_set(err, SW_EINVAL,
                          "sigv4: the payload hash is neither 64 lowercase hex digits nor "
                          "UNSIGNED-PAYLOAD");
    if (req->n_headers > SIGV4_HEADERS_MAX || (req->n_headers && !req->headers))
        return sw_err_set(err, SW_EINVAL, "sigv4: more than %d headers", SIGV4_HEADERS_MAX);
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct sigv4_header *h = &req->headers[i];
        if (!h->name || !token_valid(h->name, SIGV4_HEADER_BYTES_MAX))
            return sw_err_set(err, SW_EINVAL, "sigv4: header %zu: the name is not an HTTP token",
                              i + 1);
        if (!h->value || !value_valid(h->value))
            return sw_err_set(err, SW_EINVAL,
                              "sigv4: header %s: the value holds a control character", h->name);
        total += strlen(h->name) + strlen(h->value);
        if (total > SIGV4_HEADER_BYTES_MAX)
            return sw_err_set(err, SW_EINVAL, "sigv4: the headers are longer than %d bytes",
                              SIGV4_HEADER_BYTES_MAX);
        host |= !strcasecmp(h->name, "host");
        /* Headers the signer writes itself: a second copy would be signed
         * (or sent) twice, and the service would see a different request. */
        if (!strcasecmp(h->name, "authorization") || !strcasecmp(h->name, "x-amz-date") ||
            (token && !strcasecmp(h->name, "x-amz-security-token")) ||
            (o->mode == SIGV4_HEADER && o->content_sha256 &&
             !strcasecmp(h->name, "x-amz-content-sha256")))
            return sw_err_set(err, SW_EINVAL, "sigv4: header %s is the signer's to add", h->name);
    }
    if (!host)
        return sw_err_set(err, SW_EINVAL, "sigv4: no Host header (it must be signed)");

    struct qpair *q = query_pairs(req->query, &nq);
    for (size_t i = 0; i < nq; i++)
        for (size_t k = 0; k < sizeof(auth_params) / sizeof(*auth_params); k++)
            if (q[i].nlen == strlen(auth_params[k]) &&
                !strncasecmp(q[i].text, auth_params[k], q[i].nlen)) {
                query_pairs_free(q, nq);
                return sw_err_set(err, SW_EINVAL, "sigv4: query parameter %s is the signer's",
                                  auth_params[k]);
            }
    query_pairs_free(q, nq);

    /* Credentials: say which is wrong, never what it holds. */
    if (!cr || !ascii_valid(cr->access_key, ACCESS_KEY_MAX, "/,;="))
        return sw_err_set(err, SW_EINVAL,
                          "sigv4: the access key id is empty, too long or holds a character "
                          "outside printable ASCII");
    if (!cr->secret_key || !cr->secret_key[0] || strlen(cr->secret_key) > SECRET_MAX)
        return sw_err_set(err, SW_EINVAL, "sigv4: the secret access key is empty or too long");
    if (token && !ascii_valid(cr->session_token, TOKEN_MAX, ""))
        return sw_err_set(err, SW_EINVAL,
                          "sigv4: the session token is too long or holds a character outside "
                          "printable ASCII");
    if (!scope_part_valid(o->region))
        return sw_err_set(err, SW_EINVAL,
                          "sigv4: the region is empty, too long or not [A-Za-z0-9._-]");
    if (!scope_part_valid(o->service))
        return sw_err_set(err, SW_EINVAL,
                          "sigv4: the service is empty, too long or not [A-Za-z0-9._-]");
    if (o->time < 0 || o->time > TIME_MAX)
        return sw_err_set(err, SW_EINVAL, "sigv4: the time is outside the years 1970-9999");
    if (o->mode != SIGV4_HEADER && o->mode != SIGV4_PRESIGN)
        return sw_err_set(err, SW_EINVAL, "sigv4: unknown mode");
    if (o->mode == SIGV4_PRESIGN && (o->expires < 1 || o->expires > SIGV4_EXPIRES_MAX))
        return sw_err_set(err, SW_EINVAL, "sigv4: a presigned URL must expire within 1 to %d s",
                          SIGV4_EXPIRES_MAX);
    return 0;
}

/* ---- signing ---------------------------------------------------------------------------- */

static void hmac(const void *key, size_t klen, const void *data, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    sw_crypto_need();
    /* HMAC() fails only when the digest is unavailable, which sha256_new treats
     * as fatal too; out is then all zero and no service accepts the signature. */
    if (!HMAC(EVP_sha256(), key, (int)klen, data, n, out, &len))
        memset(out, 0, 32);
}

static void sign(const char *secret, const char *date, const struct sigv4_opts *o,
                 const struct buf *sts, char sig[SIGV4_SIG_LEN + 1])
{
    unsigned char k[32], secret4[4 + SECRET_MAX];
    size_t n = strlen(secret);

    memcpy(secret4, "AWS4", 4);
    memcpy(secret4 + 4, secret, n);
    hmac(secret4, 4 + n, date, strlen(date), k);
    hmac(k, 32, o->region, strlen(o->region), k);
    hmac(k, 32, o->service, strlen(o->service), k);
    hmac(k, 32, "aws4_request", 12, k);
    hmac(k, 32, sts->data, sts->len, k);
    hex_encode(k, 32, sig);
    /* The derived key is as good as the secret for this day, region and service. */
    explicit_bzero(secret4, sizeof(secret4));
    explicit_bzero(k, sizeof(k));
}

void sigv4_out_free(struct sigv4_out *out)
{
    if (!out)
        return;
    buf_free(&out->canonical_request);
    buf_free(&out->string_to_sign);
    buf_free(&out->path);
    buf_free(&out->query);
    buf_free(&out->authorization);
    for (size_t i = 0; i < SIGV4_ADD_MAX; i++)
        buf_free(&out->add[i]);
    memset(out, 0, sizeof(*out));
}

static void add_header(struct sigv4_out *out, const char *name, const char *value)
{
    buf_addf(&out->add[out->n_add++], "%s: %s", name, value);
}

int sigv4_sign(const struct sigv4_request *req, const struct sigv4_creds *cr,
               const struct sigv4_opts *o, struct sigv4_out *out, struct sw_err *err)
{
    int token = cr && cr->session_token && cr->session_token[0];
    int token_signed = token && !o->token_unsigned;
    int header_mode = o->mode == SIGV4_HEADER;
    struct hdr *h = NULL;
    size_t nh = 0;
    struct buf signed_headers = BUF_INIT, scope = BUF_INIT, query = BUF_INIT;
    char amz_date[32], date[16], sha[SHA256_HEX_LEN + 1];
    struct tm tm;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = check(req, cr, o, token, err)))
        return rc;

    time_t t = (time_t)o->time;
    if (!gmtime_r(&t, &tm))
        return sw_err_set(err, SW_EINVAL, "sigv4: the time cannot be converted");
    strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    buf_addf(&scope, "%s/%s/%s/aws4_request", date, o->region, o->service);

    /* Headers: the caller's, and in header mode the signer's own. */
    h = xcalloc(req->n_headers + 3, sizeof(*h));
    for (size_t i = 0; i < req->n_headers; i++, nh++) {
        h[nh].name = lower_dup(req->headers[i].name);
        h[nh].value = fold_value(req->headers[i].value);
        h[nh].order = nh;
    }
    if (header_mode) {
        h[nh] = (struct hdr){xstrdup("x-amz-date"), xstrdup(amz_date), nh};
        nh++;
        if (o->content_sha256) {
            h[nh] = (struct hdr){xstrdup("x-amz-content-sha256"), xstrdup(req->payload_hash), nh};
            nh++;
        }
        if (token_signed) {
            h[nh] = (struct hdr){xstrdup("x-amz-security-token"), xstrdup(cr->session_token), nh};
            nh++;
        }
    }
    /* Stable by input order, so repeated headers join in the order sent. */
    qsort(h, nh, sizeof(*h), hdr_cmp);

    struct buf canon_headers = BUF_INIT;
    for (size_t i = 0; i < nh; i++) {
        if (i && !strcmp(h[i].name, h[i - 1].name)) {
            buf_add(&canon_headers, ",", 1); /* a repeated name: one line, values joined */
        } else {
            if (i)
                buf_add(&signed_headers, ";", 1);
            buf_adds(&signed_headers, h[i].name);
            buf_adds(&canon_headers, h[i].name);
            buf_add(&canon_headers, ":", 1);
        }
        buf_adds(&canon_headers, h[i].value);
        if (i + 1 < nh && !strcmp(h[i].name, h[i + 1].name))
            continue;
        buf_add(&canon_headers, "\n", 1);
    }

    /* Path: encoded once, normalized only when asked (never for S3). */
    if (o->normalize_path) {
        struct buf norm = BUF_INIT;
        normalize_path(&norm, req->path);
        sigv4_uri_encode(&out->path, norm.data, norm.len, 1);
        buf_free(&norm);
    } else {
        sigv4_uri_encode(&out->path, req->path, strlen(req->path), 1);
    }

    /* Query: in presign mode the authentication parameters join the caller's
     * before canonicalization, so they are sorted in and signed with them. */
    if (req->query)
        buf_adds(&query, req->query);
    if (!header_mode) {
        buf_adds(&query, "&X-Amz-Algorithm=" ALGORITHM "&X-Amz-Credential=");
        sigv4_uri_encode(&query, cr->access_key, strlen(cr->access_key), 0);
        buf_add(&query, "%2F", 3);
        sigv4_uri_encode(&query, scope.data, scope.len, 0);
        buf_addf(&query, "&X-Amz-Date=%s&X-Amz-Expires=%lld&X-Amz-SignedHeaders=", amz_date,
                 (long long)o->expires);
        sigv4_uri_encode(&query, signed_headers.data, signed_headers.len, 0);
        if (token_signed) {
            buf_adds(&query, "&X-Amz-Security-Token=");
            sigv4_uri_encode(&query, cr->session_token, strlen(cr->session_token), 0);
        }
    }
    sigv4_canonical_query(&out->query, query.data ? query.data : "");

    buf_adds(&out->canonical_request, req->method);
    buf_add(&out->canonical_request, "\n", 1);
    buf_add(&out->canonical_request, out->path.data, out->path.len);
    buf_add(&out->canonical_request, "\n", 1);
    if (out->query.len)
        buf_add(&out->canonical_request, out->query.data, out->query.len);
    buf_add(&out->canonical_request, "\n", 1);
    if (canon_headers.len)
        buf_add(&out->canonical_request, canon_headers.data, canon_headers.len);
    buf_add(&out->canonical_request, "\n", 1);
    buf_add(&out->canonical_request, signed_headers.data, signed_headers.len);
    buf_add(&out->canonical_request, "\n", 1);
    buf_adds(&out->canonical_request, req->payload_hash);

    sha256_hex(out->canonical_request.data, out->canonical_request.len, sha);
    buf_addf(&out->string_to_sign, ALGORITHM "\n%s\n%s\n%s", amz_date, scope.data, sha);
    sign(cr->secret_key, date, o, &out->string_to_sign, out->signature);

    if (header_mode) {
        buf_addf(&out->authorization, ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                 cr->access_key, scope.data, signed_headers.data, out->signature);
        add_header(out, "X-Amz-Date", amz_date);
        if (o->content_sha256)
            add_header(out, "x-amz-content-sha256", req->payload_hash);
        if (token)
            add_header(out, "X-Amz-Security-Token", cr->session_token);
        add_header(out, "Authorization", out->authorization.data);
    } else {
        buf_addf(&out->query, "&X-Amz-Signature=%s", out->signature);
        if (token && !token_signed) {
            buf_adds(&out->query, "&X-Amz-Security-Token=");
            sigv4_uri_encode(&out->query, cr->session_token, strlen(cr->session_token), 0);
        }
    }

    for (size_t i = 0; i < nh; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
    buf_free(&canon_headers);
    buf_free(&signed_headers);
    buf_free(&scope);
    buf_free(&query);
    return 0;
}
