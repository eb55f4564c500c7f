/*
 * The s3 backend's configuration (s3conf.h says what goes in and comes out).
 *
 * The one idea: every setting has an ordered list of places it may come from
 * (the URL, environment variables, the profile's section of a shared file, a
 * default), the first place that says something wins, and the value is
 * validated together with the name of that place, so a bad value is reported
 * where the user can fix it. The two shared files are parsed whole first (an
 * INI dialect as botocore reads it: repeated sections and keys are errors,
 * key names are case-insensitive, nothing after a value is a comment), then
 * looked up.
 *
 * Secrets: the values of the files are held only in allocations that are
 * wiped before they are freed (never in a buffer that grows, whose old copy
 * realloc would leave behind), and no message built here ever includes a
 * value read from a credentials key or an unparsable line.
 */
#include "store/s3conf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define URL_MAX 4096
#define ENDPOINT_MAX 1024
#define REGION_MAX 64
#define KMS_MAX 2048
#define PROFILE_MAX 128
/* The same bounds as the signer's (sigv4.c), so a value accepted here is signable. */
#define ACCESS_KEY_MAX 128
#define SECRET_MAX 256
#define TOKEN_MAX 8192
#define DEFAULT_REGION "us-east-1"
#define SHOW_MAX 80 /* bytes of a bad value an error shows */

/* ---- small helpers ----------------------------------------------------------------- */

/* A bad value made safe to print: printable ASCII kept, the rest "\xNN", cut at
 * SHOW_MAX bytes. Only for values that are never secrets. */
struct shown {
    char s[SHOW_MAX * 4 + 8];
};

static const char *show(struct shown *sh, const char *v)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i;
    for (i = 0; i < SHOW_MAX && v[i]; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            sh->s[o++] = (char)c;
        } else {
            sh->s[o++] = '\\';
            sh->s[o++] = 'x';
            sh->s[o++] = hex[c >> 4];
            sh->s[o++] = hex[c & 15];
        }
    }
    if (v[i]) {
        memcpy(sh->s + o, "...", 3);
        o += 3;
    }
    sh->s[o] = '\0';
    return sh->s;
}

static void free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static const char *env_default(const char *name)
{
    return getenv(name);
}

/* An environment variable, NULL when unset or empty ("AWS_REGION= cmd" unsets it). */
static const char *env(s3conf_getenv_fn fn, const char *name)
{
    const char *v = fn(name);
    return v && v[0] ? v : NULL;
}

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* 1 when s is 1..max bytes of printable ASCII without a space (0x21-0x7e) and
 * none of the bytes in extra. */
static int graph_valid(const char *s, size_t max, const char *extra)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c < 0x21 || c > 0x7e || strchr(extra, c) || n >= max)
            return 0;
    }
    return n > 0;
}

/* ---- the URL -------------------------------------------------------------------------- */

struct url {
    char *bucket, *prefix; /* prefix with its trailing '/', or "" */
    char *endpoint, *region, *sse, *kms;
    int path_style; /* -1: not said */
};

static void url_free(struct url *u)
{
    free(u->bucket);
    free(u->prefix);
    free(u->endpoint);
    free(u->region);
    free(u->sse);
    free(u->kms);
}

/* NULL when b is a bucket name that works in a host name, else what is wrong
 * (AWS's bucket naming rules; each dot-separated label must also be a DNS
 * label, which the virtual-hosted style needs). */
static const char *bucket_problem(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return "must be 3 to 63 characters long";
    for (size_t i = 0; i < n; i++)
        if (!is_lower_alnum(b[i]) && b[i] != '.' && b[i] != '-')
            return "may hold only lowercase letters, digits, '.' and '-'";
    if (!is_lower_alnum(b[0]) || !is_lower_alnum(b[n - 1]))
        return "must start and end with a letter or digit";
    if (strstr(b, ".."))
        return "may not hold \"..\"";
    if (strstr(b, ".-") || strstr(b, "-."))
        return "may not have '-' next to '.' (each dot-separated part is a DNS label)";
    /* Formatted as an IPv4 address: four dot-separated runs of digits. */
    int labels = 1, digits_only = 1;
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '.')
            labels++;
        else if (!is_digit(b[i]))
            digits_only = 0;
    }
    if (digits_only && labels == 4)
        return "may not be an IP address";
    return NULL;
}

const char *s3conf_bucket_problem(const char *bucket)
{
    return bucket_problem(bucket);
}

/* NULL when p (without its trailing '/') is a valid prefix, else what is wrong. */
static const char *prefix_problem(const char *p)
{
    if (strlen(p) > S3CONF_PREFIX_MAX)
        return "is too long";
    const char *comp = p;
    for (const char *q = p;; q++) {
        unsigned char c = (unsigned char)*q;
        if (c == '/' || c == '\0') {
            size_t n = (size_t)(q - comp);
            if (n == 0)
                return "has an empty component";
            if ((n == 1 && comp[0] == '.') || (n == 2 && comp[0] == '.' && comp[1] == '.'))
                return "has a \".\" or \"..\" component";
            if (!c)
                return NULL;
            comp = q + 1;
        } else if (c < 0x21 || c > 0x7e || c == '\\') {
            return "may hold only printable ASCII without spaces or backslashes";
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into a new string. '+' stays a plus (as S3 reads
 * queries). -1 for a '%' without two hex digits, -2 for a decoded byte outside
 * printable ASCII or a space (no parameter may hold one). */
static int pct_decode(const char *s, size_t n, char **out)
{
    char *d = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (n - i < 3 || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
                free(d);
                return -1;
            }
            c = (unsigned char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (c < 0x21 || c > 0x7e) {
            free(d);
            return -2;
        }
        d[o++] = (char)c;
    }
    d[o] = '\0';
    *out = d;
    return 0;
}

static int url_query(const char *q, struct url *u, struct sw_err *err)
{
    static const char *const names[] = {"endpoint", "region", "path_style", "sse", "kms_key_id"};
    struct shown sh;
    while (*q) {
        size_t len = strcspn(q, "&");
        if (len == 0) { /* "a=1&&b=2", a trailing '&': nothing there */
            q++;
            continue;
        }
        const char *eq = memchr(q, '=', len);
        size_t nlen = eq ? (size_t)(eq - q) : len;
        char *name = xstrndup(q, nlen);
        int k = -1;
        for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
            if (!strcmp(name, names[i]))
                k = (int)i;
        char *val = NULL;
        int rc = 0;
        if (k < 0) {
            rc = sw_err_set(err, SW_EINVAL,
                            "store URL: unknown parameter '%s' (expected endpoint, region, "
                            "path_style, sse or kms_key_id)",
                            show(&sh, name));
        } else if (!eq || len == nlen + 1) {
            rc = sw_err_set(err, SW_EINVAL, "store URL: parameter %s has no value", name);
        } else {
            int d = pct_decode(eq + 1, len - nlen - 1, &val);
            if (d == -1)
                rc = sw_err_set(err, SW_EINVAL,
                                "store URL: parameter %s: '%%' not followed by two hex digits",
                                name);
            else if (d)
                rc =
                    sw_err_set(err, SW_EINVAL,
                               "store URL: parameter %s: a space, control or non-ASCII byte", name);
        }
        char **slot = NULL;
        if (!rc) {
            switch (k) {
            case 0:
                slot = &u->endpoint;
                break;
            case 1:
                slot = &u->region;
                break;
            case 3:
                slot = &u->sse;
                break;
            case 4:
                slot = &u->kms;
                break;
            default:
                break;
            }
            if ((slot && *slot) || (k == 2 && u->path_style >= 0)) {
                rc = sw_err_set(err, SW_EINVAL, "store URL: parameter %s given twice", name);
            } else if (k == 2) {
                if (!strcmp(val, "true"))
                    u->path_style = 1;
                else if (!strcmp(val, "false"))
                    u->path_style = 0;
                else
                    rc = sw_err_set(err, SW_EINVAL,
                                    "store URL: path_style='%s': expected true or false",
                                    show(&sh, val));
            } else if (k == 3 && strcmp(val, "AES256") && strcmp(val, "aws:kms")) {
                rc = sw_err_set(err, SW_EINVAL, "store URL: sse='%s': expected AES256 or aws:kms",
                                show(&sh, val));
            } else if (k == 4 && strlen(val) > KMS_MAX) {
                rc = sw_err_set(err, SW_EINVAL, "store URL: kms_key_id is longer than %d bytes",
                                KMS_MAX);
            }
            if (!rc && slot) {
                *slot = val;
                val = NULL;
            }
        }
        free(name);
        free(val);
        if (rc)
            return rc;
        q += len;
    }
    if (u->kms && (!u->sse || strcmp(u->sse, "aws:kms")))
        return sw_err_set(err, SW_EINVAL, "store URL: kms_key_id needs sse=aws:kms");
    return 0;
}

static int url_parse(const char *url, struct url *u, struct sw_err *err)
{
    struct shown sh;
    if (strlen(url) > URL_MAX)
        return sw_err_set(err, SW_EINVAL, "store URL longer than %d bytes", URL_MAX);
    if (strncmp(url, "s3://", 5))
        return sw_err_set(err, SW_EINVAL, "store URL '%s': expected s3://BUCKET[/PREFIX]",
                          show(&sh, url));
    const char *rest = url + 5;
    size_t plen = strcspn(rest, "?");
    size_t blen = strcspn(rest, "/?");
    /* "s3://KEY:SECRET@bucket": nothing may be shown, the secret may hold a
     * '/', so the '@' is looked for in the prefix too (which thus has none). */
    if (memchr(rest, '@', plen))
        return sw_err_set(err, SW_EINVAL,
                          "store URL: credentials in the URL are not supported (set "
                          "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or use a profile)");
    u->bucket = xstrndup(rest, blen);
    const char *why = bucket_problem(u->bucket);
    if (why)
        return sw_err_set(err, SW_EINVAL, "store URL: bucket '%s' %s", show(&sh, u->bucket), why);
    if (blen < plen && plen > blen + 1) {
        size_t n = plen - blen - 1;
        const char *p = rest + blen + 1;
        if (p[n - 1] == '/') /* "s3://b/site/" is "s3://b/site" */
            n--;
        char *prefix = xstrndup(p, n);
        why = prefix_problem(prefix);
        if (why) {
            int rc =
                sw_err_set(err, SW_EINVAL, "store URL: prefix '%s' %s", show(&sh, prefix), why);
            free(prefix);
            return rc;
        }
        u->prefix = xasprintf("%s/", prefix);
        free(prefix);
    } else {
        u->prefix = xstrdup("");
    }
    u->path_style = -1;
    return rest[plen] == '?' ? url_query(rest + plen + 1, u, err) : 0;
}

/* ---- the shared files ---------------------------------------------------------------- */

struct ini_kv {
    char *key; /* lowercased; a nested setting is "parent.key" */
    char *val; /* wiped when freed: it may be a secret */
    int line;
};

struct ini_sec {
    char *name; /* "default", "dev", "profile dev" (one space after "profile") */
    int line;
    struct ini_kv *kv;
    size_t n, cap;
};

struct ini {
    char *path;  /* NULL: no file configured (no HOME) */
    int present; /* the file exists and was parsed */
    struct ini_sec *sec;
    size_t n, cap;
};

static void ini_free(struct ini *f)
{
    for (size_t i = 0; i < f->n; i++) {
        for (size_t k = 0; k < f->sec[i].n; k++) {
            free(f->sec[i].kv[k].key);
            free_secret(f->sec[i].kv[k].val);
        }
        free(f->sec[i].kv);
        free(f->sec[i].name);
    }
    free(f->sec);
    free(f->path);
    memset(f, 0, sizeof(*f));
}

static const struct ini_sec *ini_section(const struct ini *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->sec[i].name, name))
            return &f->sec[i];
    return NULL;
}

static const struct ini_kv *ini_get(const struct ini_sec *s, const char *key)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (!strcmp(s->kv[i].key, key))
            return &s->kv[i];
    return NULL;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
           c == '-' || c == '.';
}

/* Key names an error may show: a repeated unknown "key" could be a pasted secret. */
static const char *known_key(const char *k)
{
    static const char *const known[] = {"aws_access_key_id",
                                        "aws_secret_access_key",
                                        "aws_session_token",
                                        "region",
                                        "endpoint_url",
                                        "role_arn",
                                        "source_profile",
                                        "credential_process",
                                        "sso_session",
                                        "sso_start_url",
                                        "output",
                                        "ca_bundle",
                                        "s3"};
    for (size_t i = 0; i < sizeof(known) / sizeof(*known); i++)
        if (!strcmp(k, known[i]))
            return known[i];
    return NULL;
}

/* Trims blanks from both ends of [*s, *e). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_blank(**s))
        (*s)++;
    while (*e > *s && is_blank((*e)[-1]))
        (*e)--;
}

static int ini_add_kv(struct ini *f, struct ini_sec *sec, const char *parent, const char *k,
                      size_t klen, const char *v, size_t vlen, int line, struct sw_err *err)
{
    char *key = parent ? xasprintf("%s.%.*s", parent, (int)klen, k) : xstrndup(k, klen);
    for (char *p = key; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    const struct ini_kv *old = ini_get(sec, key);
    if (old) {
        const char *name = known_key(key);
        int rc =
            sw_err_set(err, SW_EINVAL, "%s:%d: %s%s repeated in [%s] (first at line %d)", f->path,
                       line, name ? "key " : "a key", name ? name : "", sec->name, old->line);
        free(key);
        return rc;
    }
    if (sec->n == sec->cap) {
        sec->cap = sec->cap ? 2 * sec->cap : 8;
        sec->kv = xrealloc(sec->kv, sec->cap * sizeof(*sec->kv));
    }
    sec->kv[sec->n].key = key;
    sec->kv[sec->n].val = xstrndup(v, vlen);
    sec->kv[sec->n].line = line;
    sec->n++;
    return 0;
}

/* Parses a whole file. No message may quote a line: in a credentials file any
 * line may be (part of) a secret. */
static int ini_parse(struct ini *f, const char *data, size_t len, struct sw_err *err)
{
    const char *p = data, *end = data + len;
    struct ini_sec *sec = NULL;
    const char *parent = NULL; /* the key of a "key =" that nested lines may follow */
    int line = 0;
    static const char expected[] = "expected '[section]', 'key = value' or a comment";

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *s = p, *e = nl ? nl : end;
        p = nl ? nl + 1 : end;
        line++;
        if (e > s && e[-1] == '\r')
            e--;
        for (const char *q = s; q < e; q++)
            if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f)
                return sw_err_set(err, SW_EINVAL, "%s:%d: control character in the line", f->path,
                                  line);
        int indented = s < e && is_blank(*s);
        trim(&s, &e);
        if (s == e || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            /* "[name]", then optionally a comment. */
            const char *close = memchr(s, ']', (size_t)(e - s));
            const char *after = close ? close + 1 : e;
            while (after < e && is_blank(*after))
                after++;
            if (!close || (after < e && *after != '#' && *after != ';'))
                return sw_err_set(err, SW_EINVAL, "%s:%d: %s", f->path, line, expected);
            const char *ns = s + 1, *ne = close;
            trim(&ns, &ne);
            if (ns == ne)
                return sw_err_set(err, SW_EINVAL, "%s:%d: empty section name", f->path, line);
            struct buf name = BUF_INIT;
            /* "[profile   dev]" is the profile "dev", as botocore splits it. */
            if ((size_t)(ne - ns) > 8 && !strncmp(ns, "profile", 7) && is_blank(ns[7])) {
                const char *r = ns + 7;
                while (is_blank(*r))
                    r++;
                buf_adds(&name, "profile ");
                buf_add(&name, r, (size_t)(ne - r));
            } else {
                buf_add(&name, ns, (size_t)(ne - ns));
            }
            char *nm = buf_detach(&name, NULL);
            struct shown sh;
            const struct ini_sec *old = ini_section(f, nm);
            if (old) {
                int rc =
                    sw_err_set(err, SW_EINVAL, "%s:%d: section [%s] repeated (first at line %d)",
                               f->path, line, show(&sh, nm), old->line);
                free(nm);
                return rc;
            }
            if (f->n == f->cap) {
                f->cap = f->cap ? 2 * f->cap : 8;
                f->sec = xrealloc(f->sec, f->cap * sizeof(*f->sec));
            }
            sec = &f->sec[f->n++];
            memset(sec, 0, sizeof(*sec));
            sec->name = nm;
            sec->line = line;
            parent = NULL;
            continue;
        }
        /* key = value (':' too, as configparser takes it); the first of the two ends the key. */
        const char *d = s;
        while (d < e && *d != '=' && *d != ':')
            d++;
        const char *ks = s, *ke = d;
        trim(&ks, &ke);
        int key_ok = d < e && ks < ke;
        for (const char *q = ks; key_ok && q < ke; q++)
            key_ok = key_char(*q);
        if (!key_ok)
            return sw_err_set(err, SW_EINVAL, "%s:%d: %s", f->path, line, expected);
        if (!sec)
            return sw_err_set(err, SW_EINVAL, "%s:%d: expected a [section] before the first key",
                              f->path, line);
        const char *vs = d + 1, *ve = e;
        trim(&vs, &ve);
        int rc;
        if (indented) {
            /* A nested setting ("s3 =" then "  addressing_style = path"). */
            if (!parent)
                return sw_err_set(err, SW_EINVAL,
                                  "%s:%d: expected 'key = value' at the start of the line (an "
                                  "indented line only follows a 'key =' without a value)",
                                  f->path, line);
            rc =
                ini_add_kv(f, sec, parent, ks, (size_t)(ke - ks), vs, (size_t)(ve - vs), line, err);
        } else {
            rc = ini_add_kv(f, sec, NULL, ks, (size_t)(ke - ks), vs, (size_t)(ve - vs), line, err);
            parent = vs == ve ? sec->kv[sec->n - 1].key : NULL;
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* Reads and parses f->path; a missing file (or no path) is an empty one. */
static int ini_load(struct ini *f, struct sw_err *err)
{
    if (!f->path)
        return 0;
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return sw_err_sys(err, errno, "%s", f->path);
    }
    int rc = 0;
    char *data = NULL;
    size_t len = 0;
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        rc = sw_err_sys(err, errno, "%s", f->path);
        goto out;
    }
    /* A FIFO or a device could block or never end. */
    if (!S_ISREG(sb.st_mode)) {
        rc = sw_err_set(err, SW_EINVAL, "%s: not a regular file", f->path);
        goto out;
    }
    if (sb.st_size > S3CONF_FILE_MAX) {
        rc = sw_err_set(err, SW_EINVAL, "%s: larger than %d bytes", f->path, S3CONF_FILE_MAX);
        goto out;
    }
    /* One allocation, never grown: a realloc would leave a copy of the secrets behind. */
    data = xmalloc(S3CONF_FILE_MAX + 2);
    for (;;) {
        ssize_t n = read(fd, data + len, S3CONF_FILE_MAX + 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = sw_err_sys(err, errno, "%s", f->path);
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > S3CONF_FILE_MAX) { /* it grew since fstat */
            rc = sw_err_set(err, SW_EINVAL, "%s: larger than %d bytes", f->path, S3CONF_FILE_MAX);
            goto out;
        }
    }
    data[len] = '\0';
    rc = ini_parse(f, data, len, err);
    if (!rc)
        f->present = 1;
out:
    if (data) {
        explicit_bzero(data, len);
        free(data);
    }
    close(fd);
    return rc;
}

/* $VAR (a leading "~/" is $HOME's), else $HOME/.aws/NAME, else NULL. */
static char *file_path(s3conf_getenv_fn fn, const char *var, const char *name)
{
    const char *v = env(fn, var), *home = env(fn, "HOME");
    if (v && home && !strncmp(v, "~/", 2))
        return xasprintf("%s/%s", home, v + 2);
    if (v)
        return xstrdup(v);
    return home ? xasprintf("%s/.aws/%s", home, name) : NULL;
}

/* ---- the endpoint ---------------------------------------------------------------------- */

struct endpoint {
    int https;
    char *host;  /* lowercase; "[::1]" with its brackets */
    char *port;  /* NULL for the scheme's default */
    int literal; /* an IP address: no virtual-hosted style */
};

static void endpoint_free(struct endpoint *ep)
{
    free(ep->host);
    free(ep->port);
}

/* Parses scheme://host[:port][/] (from names where the value came from). */
static int endpoint_parse(const char *v, const char *from, struct endpoint *ep, struct sw_err *err)
{
    struct shown sh;
    const char *rest;
    if (strlen(v) > ENDPOINT_MAX)
        return sw_err_set(err, SW_EINVAL, "endpoint (from %s) is longer than %d bytes", from,
                          ENDPOINT_MAX);
    if (!strncasecmp(v, "https://", 8)) {
        ep->https = 1;
        rest = v + 8;
    } else if (!strncasecmp(v, "http://", 7)) {
        rest = v + 7;
    } else {
        return sw_err_set(err, SW_EINVAL, "endpoint '%s' (from %s): expected http:// or https://",
                          show(&sh, v), from);
    }
    size_t alen = strcspn(rest, "/?#");
    /* "http://user:password@host": not shown, it may hold a password (which
     * may itself hold a '/', so the '@' is looked for everywhere). */
    if (strchr(rest, '@'))
        return sw_err_set(err, SW_EINVAL,
                          "endpoint (from %s): user information (user@) is not supported", from);
    if (rest[alen] && strcmp(rest + alen, "/"))
        return sw_err_set(err, SW_EINVAL,
                          "endpoint '%s' (from %s): expected scheme://host[:port] without a path "
                          "or query",
                          show(&sh, v), from);
    const char *h = rest, *hend, *port = NULL;
    if (*h == '[') {
        hend = memchr(h, ']', alen);
        if (!hend || hend == h + 1)
            return sw_err_set(err, SW_EINVAL, "endpoint '%s' (from %s): bad IPv6 address",
                              show(&sh, v), from);
        for (const char *q = h + 1; q < hend; q++)
            if (hexval(*q) < 0 && *q != ':' && *q != '.')
                return sw_err_set(err, SW_EINVAL, "endpoint '%s' (from %s): bad IPv6 address",
                                  show(&sh, v), from);
        hend++;
        ep->literal = 1;
    } else {
        hend = memchr(h, ':', alen);
        if (!hend)
            hend = h + alen;
        int ok = hend > h && *h != '.' && *h != '-' && hend[-1] != '.' && hend[-1] != '-',
            digits_only = 1;
        for (const char *q = h; ok && q < hend; q++) {
            ok = is_alnum(*q) || *q == '-' || (*q == '.' && q[1] != '.');
            if (!is_digit(*q) && *q != '.')
                digits_only = 0;
        }
        if (!ok)
            return sw_err_set(err, SW_EINVAL, "endpoint '%s' (from %s): bad host name",
                              show(&sh, v), from);
        ep->literal = digits_only;
    }
    if (hend < rest + alen) {
        if (*hend != ':')
            return sw_err_set(err, SW_EINVAL, "endpoint '%s' (from %s): bad host name",
                              show(&sh, v), from);
        port = hend + 1;
        size_t plen = (size_t)(rest + alen - port);
        long pv = 0;
        for (size_t i = 0; i < plen && pv <= 65535; i++)
            pv = is_digit(port[i]) ? pv * 10 + (port[i] - '0') : 100000;
        if (plen == 0 || pv < 1 || pv > 65535)
            return sw_err_set(err, SW_EINVAL, "endpoint '%s' (from %s): bad port", show(&sh, v),
                              from);
        /* The scheme's own port is left out, as curl leaves it out of Host. */
        if (pv != (ep->https ? 443 : 80))
            ep->port = xasprintf("%ld", pv);
    }
    ep->host = xstrndup(h, (size_t)(hend - h));
    for (char *q = ep->host; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    return 0;
}

/* ---- credentials ---------------------------------------------------------------------- */

/* Credentials from one section: *found stays 0 when it has neither key. */
static int creds_section(const struct ini *f, const struct ini_sec *sec, const char *profile,
                         struct s3conf *c, int *found, struct sw_err *err)
{
    const struct ini_kv *ak = ini_get(sec, "aws_access_key_id"),
                        *sk = ini_get(sec, "aws_secret_access_key"),
                        *tok = ini_get(sec, "aws_session_token");
    if (!ak && !sk)
        return 0;
    if (!ak || !sk)
        return sw_err_set(err, SW_EINVAL, "%s:%d: [%s] has %s but no %s", f->path,
                          (ak ? ak : sk)->line, sec->name,
                          ak ? "aws_access_key_id" : "aws_secret_access_key",
                          ak ? "aws_secret_access_key" : "aws_access_key_id");
    if (!graph_valid(ak->val, ACCESS_KEY_MAX, "/,;="))
        return sw_err_set(err, SW_EINVAL,
                          "%s:%d: aws_access_key_id: expected 1 to %d printable ASCII characters "
                          "without spaces, '/', ',', ';' or '='",
                          f->path, ak->line, ACCESS_KEY_MAX);
    if (!graph_valid(sk->val, SECRET_MAX, ""))
        return sw_err_set(err, SW_EINVAL,
                          "%s:%d: aws_secret_access_key: expected 1 to %d printable ASCII "
                          "characters without spaces",
                          f->path, sk->line, SECRET_MAX);
    if (tok && tok->val[0] && !graph_valid(tok->val, TOKEN_MAX, ""))
        return sw_err_set(err, SW_EINVAL,
                          "%s:%d: aws_session_token: expected at most %d printable ASCII "
                          "characters without spaces",
                          f->path, tok->line, TOKEN_MAX);
    c->access_key = xstrdup(ak->val);
    c->secret_key = xstrdup(sk->val);
    c->session_token = tok && tok->val[0] ? xstrdup(tok->val) : NULL;
    c->cred_source = xasprintf("%s [profile %s]", f->path, profile);
    *found = 1;
    return 0;
}

static int creds_env(s3conf_getenv_fn fn, struct s3conf *c, int *found, struct sw_err *err)
{
    const char *ak = env(fn, "AWS_ACCESS_KEY_ID"), *sk = env(fn, "AWS_SECRET_ACCESS_KEY"),
               *tok = env(fn, "AWS_SESSION_TOKEN");
    if (!ak && !sk)
        return 0;
    if (!sk)
        return sw_err_set(err, SW_EINVAL,
                          "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both");
    if (!ak)
        return sw_err_set(err, SW_EINVAL,
                          "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: set both");
    if (!graph_valid(ak, ACCESS_KEY_MAX, "/,;="))
        return sw_err_set(err, SW_EINVAL,
                          "AWS_ACCESS_KEY_ID: expected 1 to %d printable ASCII characters "
                          "without spaces, '/', ',', ';' or '='",
                          ACCESS_KEY_MAX);
    if (!graph_valid(sk, SECRET_MAX, ""))
        return sw_err_set(err, SW_EINVAL,
                          "AWS_SECRET_ACCESS_KEY: expected 1 to %d printable ASCII characters "
                          "without spaces",
                          SECRET_MAX);
    if (tok && !graph_valid(tok, TOKEN_MAX, ""))
        return sw_err_set(err, SW_EINVAL,
                          "AWS_SESSION_TOKEN: expected at most %d printable ASCII characters "
                          "without spaces",
                          TOKEN_MAX);
    c->access_key = xstrdup(ak);
    c->secret_key = xstrdup(sk);
    c->session_token = tok ? xstrdup(tok) : NULL;
    c->cred_source = xstrdup("environment");
    *found = 1;
    return 0;
}

/* The ways a profile can name credentials that slipway does not fetch itself. */
static const struct ini_kv *unsupported_source(const struct ini_sec *sec)
{
    static const char *const keys[] = {"credential_process", "role_arn", "sso_session",
                                       "sso_start_url", "web_identity_token_file"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
        const struct ini_kv *kv = ini_get(sec, keys[i]);
        if (kv)
            return kv;
    }
    return NULL;
}

static int creds_none(const struct ini *cred, const struct ini *conf, const struct ini_sec *csec,
                      const char *profile, struct sw_err *err)
{
    struct buf m = BUF_INIT;
    buf_adds(&m, "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or put "
                 "aws_access_key_id and aws_secret_access_key in ");
    if (cred->path)
        buf_addf(&m, "[%s] of %s%s", profile, cred->path, cred->present ? "" : " (missing)");
    else
        buf_adds(&m, "a credentials file (HOME and AWS_SHARED_CREDENTIALS_FILE are not set)");
    const struct ini_kv *kv = unsupported_source(csec);
    if (kv)
        buf_addf(&m,
                 "; %s:%d: %s is not supported by slipway (export what it gives, e.g. with "
                 "`aws configure export-credentials --format env`)",
                 conf->path, kv->line, kv->key);
    int rc = sw_err_set(err, SW_EINVAL, "%s", m.data);
    buf_free(&m);
    return rc;
}

/* ---- putting it together ------------------------------------------------------------- */

/* NULL when r is a region name, else what is wrong. */
static const char *region_problem(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > REGION_MAX)
        return "expected 1 to 64 characters";
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(r[i]) && r[i] != '-' && r[i] != '_')
            return "expected letters, digits, '-' and '_'";
    return NULL;
}

static void fill_addressing(struct s3conf *c, const struct endpoint *ep)
{
    const char *scheme = ep->https ? "https" : "http";
    const char *colon = ep->port ? ":" : "", *port = ep->port ? ep->port : "";
    c->endpoint = xasprintf("%s://%s%s%s", scheme, ep->host, colon, port);
    if (c->path_style) {
        c->host = xasprintf("%s%s%s", ep->host, colon, port);
        c->base_url = xasprintf("%s/%s", c->endpoint, c->bucket);
    } else {
        c->host = xasprintf("%s.%s%s%s", c->bucket, ep->host, colon, port);
        c->base_url = xasprintf("%s://%s", scheme, c->host);
    }
}

int s3conf_parse(const char *url, s3conf_getenv_fn getenv_fn, struct s3conf *out,
                 struct sw_err *err)
{
    struct url u = {0};
    struct ini cred = {0}, conf = {0};
    struct endpoint ep = {0};
    struct s3conf c = {0};
    struct shown sh;
    char *from = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!getenv_fn)
        getenv_fn = env_default;
    rc = url_parse(url, &u, err);
    if (rc)
        goto out;
    c.bucket = u.bucket;
    c.prefix = u.prefix;
    u.bucket = u.prefix = NULL;

    /* The profile and its sections. */
    const char *profile = env(getenv_fn, "AWS_PROFILE");
    int named = profile != NULL;
    if (!profile)
        profile = "default";
    if (!graph_valid(profile, PROFILE_MAX, "[]")) {
        rc = sw_err_set(err, SW_EINVAL,
                        "AWS_PROFILE '%s': expected 1 to %d printable ASCII characters without "
                        "spaces or brackets",
                        show(&sh, profile), PROFILE_MAX);
        goto out;
    }
    cred.path = file_path(getenv_fn, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
    conf.path = file_path(getenv_fn, "AWS_CONFIG_FILE", "config");
    rc = ini_load(&cred, err);
    if (!rc)
        rc = ini_load(&conf, err);
    if (rc)
        goto out;
    const struct ini_sec *rsec = ini_section(&cred, profile), *csec;
    char *conf_name = xasprintf("profile %s", profile);
    /* botocore takes [profile default] as well as [default]. */
    csec = strcmp(profile, "default") ? NULL : ini_section(&conf, "default");
    if (!csec)
        csec = ini_section(&conf, conf_name);
    if (named && !rsec && !csec && strcmp(profile, "default")) {
        rc = sw_err_set(err, SW_EINVAL,
                        "profile '%s' (from AWS_PROFILE) is in neither %s ([%s]%s) nor %s ([%s]%s)",
                        profile, cred.path ? cred.path : "the credentials file", profile,
                        cred.present ? "" : ", missing", conf.path ? conf.path : "the config file",
                        conf_name, conf.present ? "" : ", missing");
        free(conf_name);
        goto out;
    }
    free(conf_name);

    /* The region: the default endpoint is made of it, so it comes first. */
    const struct ini_kv *kv;
    const char *v;
    if (u.region) {
        v = u.region;
        from = xstrdup("the URL");
    } else if ((v = env(getenv_fn, "AWS_REGION"))) {
        from = xstrdup("AWS_REGION");
    } else if ((v = env(getenv_fn, "AWS_DEFAULT_REGION"))) {
        from = xstrdup("AWS_DEFAULT_REGION");
    } else if ((kv = ini_get(csec, "region"))) {
        v = kv->val;
        from = xasprintf("%s:%d", conf.path, kv->line);
    } else {
        v = DEFAULT_REGION;
        from = xstrdup("the default");
    }
    const char *why = region_problem(v);
    if (why) {
        rc = sw_err_set(err, SW_EINVAL, "region '%s' (from %s): %s", show(&sh, v), from, why);
        goto out;
    }
    c.region = xstrdup(v);
    free(from);
    from = NULL;

    /* The endpoint. */
    int given = 1;
    if (u.endpoint) {
        v = u.endpoint;
        from = xstrdup("the URL");
    } else if ((v = env(getenv_fn, "SLIPWAY_S3_ENDPOINT"))) {
        from = xstrdup("SLIPWAY_S3_ENDPOINT");
    } else if ((v = env(getenv_fn, "AWS_ENDPOINT_URL_S3"))) {
        from = xstrdup("AWS_ENDPOINT_URL_S3");
    } else if ((v = env(getenv_fn, "AWS_ENDPOINT_URL"))) {
        from = xstrdup("AWS_ENDPOINT_URL");
    } else if ((kv = ini_get(csec, "endpoint_url"))) {
        v = kv->val;
        from = xasprintf("%s:%d", conf.path, kv->line);
    } else {
        given = 0;
        v = NULL;
    }
    if (given) {
        rc = endpoint_parse(v, from, &ep, err);
        if (rc)
            goto out;
    } else {
        /* AWS's own: the region becomes part of a host name. */
        for (const char *q = c.region; *q; q++)
            if (!is_lower_alnum(*q) && *q != '-') {
                rc = sw_err_set(err, SW_EINVAL,
                                "region '%s' cannot be part of an AWS host name: give the "
                                "endpoint (?endpoint= or AWS_ENDPOINT_URL)",
                                c.region);
                goto out;
            }
        ep.https = 1;
        ep.host = xasprintf("s3.%s.amazonaws.com", c.region);
    }

    /* Path style or virtual-hosted. A dotted bucket cannot be a virtual host
     * under TLS: the service's certificate (*.s3.REGION.amazonaws.com) covers
     * one label only, so such a name goes in the path, as the AWS CLI does. */
    if (u.path_style >= 0)
        c.path_style = u.path_style;
    else
        c.path_style = given;
    if (ep.https && strchr(c.bucket, '.'))
        c.path_style = 1;
    if (!c.path_style && ep.literal) {
        rc = sw_err_set(err, SW_EINVAL,
                        "path_style=false (from the URL) needs an endpoint with a host name, "
                        "but the endpoint (from %s) is an IP address",
                        from);
        goto out;
    }
    fill_addressing(&c, &ep);

    /* The CAs to trust over https, where the AWS CLI finds them. */
    free(from);
    from = NULL;
    if ((v = env(getenv_fn, "AWS_CA_BUNDLE"))) {
        from = xstrdup("AWS_CA_BUNDLE");
    } else if ((kv = ini_get(csec, "ca_bundle"))) {
        v = kv->val;
        from = xasprintf("%s:%d", conf.path, kv->line);
    }
    if (v) {
        struct stat sb;
        if (stat(v, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            rc = sw_err_set(err, SW_EINVAL, "ca_bundle '%s' (from %s): not a file", show(&sh, v),
                            from);
            goto out;
        }
        c.ca_bundle = xstrdup(v);
        free(from);
        from = NULL;
    }

    /* Encryption at rest. */
    c.sse = xstrdup(u.sse ? u.sse : "AES256");
    if (u.kms) {
        c.kms_key_id = u.kms;
        u.kms = NULL;
    }

    /* Credentials: the environment, the credentials file, the config file. */
    int found = 0;
    rc = creds_env(getenv_fn, &c, &found, err);
    if (!rc && !found && rsec)
        rc = creds_section(&cred, rsec, profile, &c, &found, err);
    if (!rc && !found && csec)
        rc = creds_section(&conf, csec, profile, &c, &found, err);
    if (!rc && !found)
        rc = creds_none(&cred, &conf, csec, profile, err);
    if (rc)
        goto out;

    *out = c;
    memset(&c, 0, sizeof(c));
out:
    free(from);
    endpoint_free(&ep);
    ini_free(&cred);
    ini_free(&conf);
    url_free(&u);
    s3conf_free(&c);
    return rc;
}

void s3conf_free(struct s3conf *c)
{
    if (!c)
        return;
    free(c->bucket);
    free(c->prefix);
    free(c->endpoint);
    free(c->host);
    free(c->base_url);
    free(c->region);
    free(c->sse);
    free(c->kms_key_id);
    free_secret(c->access_key);
    free_secret(c->secret_key);
    free_secret(c->session_token);
    free(c->cred_source);
    free(c->ca_bundle);
    memset(c, 0, sizeof(*c));
}

/* Appends a query value so that parsing it again gives it back: the bytes the
 * query syntax gives a meaning to are escaped, the rest is kept readable. */
static void add_value(struct buf *b, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (c < 0x21 || c > 0x7e || strchr("%&=#?", c)) {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_add(b, e, 3);
        } else {
            buf_add(b, v, 1);
        }
    }
}

char *s3conf_describe(const struct s3conf *c)
{
    struct buf b = BUF_INIT;
    size_t plen = c->prefix ? strlen(c->prefix) : 0;
    buf_addf(&b, "s3://%s", c->bucket ? c->bucket : "");
    if (plen > 1)
        buf_addf(&b, "/%.*s", (int)(plen - 1), c->prefix);
    buf_adds(&b, "?endpoint=");
    add_value(&b, c->endpoint ? c->endpoint : "");
    buf_adds(&b, "&region=");
    add_value(&b, c->region ? c->region : "");
    buf_adds(&b, c->path_style ? "&path_style=true" : "&path_style=false");
    if (c->sse && strcmp(c->sse, "AES256")) {
        buf_adds(&b, "&sse=");
        add_value(&b, c->sse);
    }
    if (c->kms_key_id) {
        buf_adds(&b, "&kms_key_id=");
        add_value(&b, c->kms_key_id);
    }
    return buf_detach(&b, NULL);
}
