/*
 * The rules of the secret scan, written by hand over hostile bytes. The idea
 * that keeps them linear: a candidate token is only tried where the byte
 * before it cannot belong to the same token (its left boundary), and every
 * variable-length part a candidate reads is either a run that no other
 * candidate can start inside, or capped at a few hundred bytes. So each byte
 * is read a bounded number of times whatever the line looks like ("eyJeyJ…",
 * "token=token=…", a 4 MiB line of "AKIA").
 *
 * Each rule's id is stable (allow-list fingerprints are made from it) and
 * documented in docs/scan.md with what it matches and why.
 */
#include "scan/internal.h"

#include <stdlib.h>
#include <string.h>

/* Values the assignment rule looks at: at least this long, at most that, and
 * at least this many bits of Shannon entropy per character. */
enum { ASSIGN_MIN_LEN = 10, ASSIGN_MAX_LEN = 512 };
#define ASSIGN_MIN_ENTROPY 3.0
/* A nearby AWS secret: within this many lines of the key id. */
enum { AWS_WINDOW = 5 };
/* Lines after "-----BEGIN … PRIVATE KEY-----" looked at for key material. */
enum { KEY_LOOKAHEAD = 8 };

static int is_upper(int c)
{
    return c >= 'A' && c <= 'Z';
}
static int is_lower(int c)
{
    return c >= 'a' && c <= 'z';
}
static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}
static int is_alnum(int c)
{
    return is_upper(c) || is_lower(c) || is_digit(c);
}
static int is_word(int c)
{
    return is_alnum(c) || c == '_';
}
static int is_b64url(int c)
{
    return is_word(c) || c == '-';
}
static int is_b64(int c)
{
    return is_alnum(c) || c == '+' || c == '/';
}
static int lower(int c)
{
    return is_upper(c) ? c - 'A' + 'a' : c;
}

/* 1 when s[0..n) contains the ASCII word w (case-insensitive). */
static int has_ci(const char *s, size_t n, const char *w)
{
    size_t wn = strlen(w);
    for (size_t i = 0; i + wn <= n; i++) {
        size_t k = 0;
        while (k < wn && lower((unsigned char)s[i + k]) == w[k])
            k++;
        if (k == wn)
            return 1;
    }
    return 0;
}

/* The first needle (nl bytes) in s[0..n), or NULL. Not memmem: sanitizers
 * check memmem's whole haystack on every call, which makes a loop over the
 * occurrences in one line quadratic in the test and fuzz builds. */
static const char *find(const char *s, size_t n, const char *needle, size_t nl)
{
    for (const char *p = s, *end = s + n; (size_t)(end - p) >= nl;) {
        const char *c = memchr(p, needle[0], (size_t)(end - p) - nl + 1);
        if (!c)
            return NULL;
        if (!memcmp(c, needle, nl))
            return c;
        p = c + 1;
    }
    return NULL;
}

static void hit_add(struct scan_hits *h, const char *rule, size_t line, size_t col, const char *v,
                    size_t n)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 16;
        h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
    }
    h->v[h->n++] = (struct scan_hit){rule, line, col, v, n};
}

/* log2(x) for x >= 1 without libm: x = m * 2^e with m in [1, 2), and
 * ln(m) = 2 atanh((m - 1) / (m + 1)), whose series converges fast there. */
static double lg2(double x)
{
    int e = 0;
    while (x >= 2)
        x /= 2, e++;
    double y = (x - 1) / (x + 1), y2 = y * y, term = y, sum = 0;
    for (int k = 1; k < 40; k += 2) {
        sum += term / k;
        term *= y2;
    }
    return e + 2 * sum / 0.69314718055994530942;
}

double scan_entropy(const char *s, size_t n)
{
    size_t count[256] = {0};
    double e = 0;
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++)
        count[(unsigned char)s[i]]++;
    for (size_t i = 0; i < 256; i++)
        if (count[i]) {
            double p = (double)count[i] / (double)n;
            e += p * lg2((double)n / (double)count[i]);
        }
    return e;
}

/* Words that make a value a stand-in rather than a secret (checked case-insensitively). */
static int placeholder(const char *v, size_t n)
{
    static const char *const words[] = {
        "changeme", "change_me", "change-me", "example", "xxxx",   "placeholder", "your",
        "dummy",    "redacted",  "sample",    "fake",    "insert", "replace",     "secret",
        "password", "passwd",    "token",     "****",    "....",   "<",           ">",
    };
    if (n && (v[0] == '$' || v[0] == '%' || v[0] == '{' || v[0] == '<'))
        return 1; /* ${VAR}, $VAR, %VAR%, {{ template }}, <your key> */
    for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++)
        if (has_ci(v, n, words[i]))
            return 1;
    return 0;
}

/* ---- tokens with a known shape --------------------------------------------------------- */

/* "AKIA"/"ASIA" + 16 of [A-Z2-7] (base32), ending there: its length, or 0. */
static size_t aws_id(const char *s, size_t n)
{
    if (n < 20 || (memcmp(s, "AKIA", 4) && memcmp(s, "ASIA", 4)))
        return 0;
    for (size_t i = 4; i < 20; i++)
        if (!is_upper(s[i]) && !(s[i] >= '2' && s[i] <= '7'))
            return 0;
    if (n > 20 && is_alnum((unsigned char)s[20]))
        return 0;
    return 20;
}

/* A GitHub token: "gh[pousr]_" + 36 alphanumerics, or "github_pat_" + 82 of [A-Za-z0-9_]. */
static size_t github(const char *s, size_t n)
{
    size_t body, len;
    int (*ok)(int);
    if (n >= 4 && s[0] == 'g' && s[1] == 'h' && strchr("pousr", s[2]) && s[2] && s[3] == '_')
        body = 4, len = 40, ok = is_alnum;
    else if (n >= 11 && !memcmp(s, "github_pat_", 11))
        body = 11, len = 93, ok = is_word;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = body; i < len; i++)
        if (!ok((unsigned char)s[i]))
            return 0;
    if (n > len && is_word((unsigned char)s[len]))
        return 0;
    return len;
}

/* The run of chars satisfying ok from s (at most max + 1 read). */
static size_t run(const char *s, size_t n, int (*ok)(int), size_t max)
{
    size_t i = 0;
    while (i < n && i <= max && ok((unsigned char)s[i]))
        i++;
    return i;
}

/* A GitLab personal access token: "glpat-" + at least 20 of [A-Za-z0-9_-]. */
static size_t gitlab(const char *s, size_t n)
{
    if (n < 6 || memcmp(s, "glpat-", 6))
        return 0;
    size_t r = run(s + 6, n - 6, is_b64url, 255);
    return r >= 20 && r <= 255 ? 6 + r : 0;
}

static int is_slack_char(int c)
{
    return is_alnum(c) || c == '-';
}

/* A Slack token: "xox[baprs]-" + at least 10 of [A-Za-z0-9-], digits among them. */
static size_t slack(const char *s, size_t n)
{
    if (n < 5 || memcmp(s, "xox", 3) || !strchr("baprs", s[3]) || !s[3] || s[4] != '-')
        return 0;
    size_t r = run(s + 5, n - 5, is_slack_char, 255);
    if (r < 10 || r > 255)
        return 0;
    for (size_t i = 5; i < 5 + r; i++)
        if (is_digit((unsigned char)s[i]))
            return 5 + r;
    return 0;
}

static int b64_val(int c)
{
    if (is_upper(c))
        return c - 'A';
    if (is_lower(c))
        return c - 'a' + 26;
    if (is_digit(c))
        return c - '0' + 52;
    if (c == '-' || c == '+')
        return 62;
    if (c == '_' || c == '/')
        return 63;
    return -1;
}

/* 1 when the base64url text s[0..n) decodes to a JSON object naming "alg". */
static int jwt_header(const char *s, size_t n)
{
    unsigned char out[1536];
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    if (n > 2048)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)s[i]);
        if (v < 0)
            return 0;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    size_t b = 0, e = o;
    while (b < e && (out[b] == ' ' || out[b] == '\t' || out[b] == '\r' || out[b] == '\n'))
        b++;
    while (e > b &&
           (out[e - 1] == ' ' || out[e - 1] == '\t' || out[e - 1] == '\r' || out[e - 1] == '\n'))
        e--;
    return e - b >= 2 && out[b] == '{' && out[e - 1] == '}' &&
           find((const char *)out + b, e - b, "\"alg\"", 5) != NULL;
}

/* A JWT: "eyJ" header '.' payload '.' signature (may be empty), base64url
 * parts, the header decoding to JSON with "alg". Reads at most three runs. */
static size_t jwt(const char *s, size_t n)
{
    if (n < 3 || memcmp(s, "eyJ", 3))
        return 0;
    size_t h = run(s, n, is_b64url, SIZE_MAX - 1);
    if (h < 10 || h >= n || s[h] != '.')
        return 0;
    size_t p = run(s + h + 1, n - h - 1, is_b64url, SIZE_MAX - 1);
    size_t at = h + 1 + p;
    if (p < 2 || at >= n || s[at] != '.')
        return 0;
    size_t g = run(s + at + 1, n - at - 1, is_b64url, SIZE_MAX - 1);
    size_t end = at + 1 + g;
    if (end < n && s[end] == '.')
        return 0; /* a fourth part: not a JWS compact serialisation */
    return jwt_header(s, h) ? end : 0;
}

/* ---- private key blocks ------------------------------------------------------------------ */

/* After "-----BEGIN ": "(RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY( BLOCK)?-----".
 * Returns the bytes it spans, or 0. */
static size_t key_header(const char *s, size_t n)
{
    static const char *const kinds[] = {"RSA ", "EC ", "DSA ", "OPENSSH ", "PGP ", "ENCRYPTED "};
    size_t i = 0;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(*kinds); k++) {
        size_t kl = strlen(kinds[k]);
        if (n >= kl && !memcmp(s, kinds[k], kl)) {
            i = kl;
            break;
        }
    }
    if (n - i < 11 || memcmp(s + i, "PRIVATE KEY", 11))
        return 0;
    i += 11;
    if (n - i >= 6 && !memcmp(s + i, " BLOCK", 6))
        i += 6;
    if (n - i < 5 || memcmp(s + i, "-----", 5))
        return 0;
    return i + 5;
}

/* Key material at s: at least 16 base64 characters (what follows a header). */
static size_t key_material(const char *s, size_t n)
{
    size_t r = run(s, n, is_b64, 64);
    return r >= 16 ? (r > 64 ? 64 : r) : 0;
}

/* The first line of key material after a BEGIN header that ended at s[0]
 * (the rest of its line is s[0..n), the text after that line rest[0..rn)):
 * on the same line (a key written into a string with "\n" escapes) or on one
 * of the next KEY_LOOKAHEAD lines, skipping blank ones and "Name: value"
 * headers (Proc-Type, DEK-Info, Version, Comment). */
static const char *key_body(const char *s, size_t n, const char *rest, size_t rn, size_t *len)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '"' || s[i] == '\'' ||
                     (s[i] == '\\' && i + 1 < n && (s[i + 1] == 'n' || s[i + 1] == 'r'))))
        i += s[i] == '\\' ? 2 : 1;
    if ((*len = key_material(s + i, n - i)))
        return s + i;
    size_t pos = 0;
    for (int k = 0; k < KEY_LOOKAHEAD && pos < rn; k++) {
        const char *nl = memchr(rest + pos, '\n', rn - pos);
        size_t end = nl ? (size_t)(nl - rest) : rn, b = pos;
        while (b < end && (rest[b] == ' ' || rest[b] == '\t' || rest[b] == '"'))
            b++;
        if (b < end && rest[b] != '\r') {
            size_t l = key_material(rest + b, end - b);
            if (l && (b + l >= end || rest[b + l] != ':')) {
                *len = l;
                return rest + b;
            }
            if (!memchr(rest + b, ':', end - b > 64 ? 64 : end - b))
                return NULL; /* neither material nor a header: not a key block */
        }
        pos = end + 1;
    }
    return NULL;
}

/* ---- assignments of secrets -------------------------------------------------------------- */

static int is_key_char(int c)
{
    return is_word(c) || c == '-' || c == '.';
}

/* Characters a secret value may hold; not quotes, whitespace, brackets,
 * separators of code or query strings. */
static int is_value_char(int c)
{
    return c > 0x20 && c < 0x7f && !strchr("\"'`\\()[]{}<>;,&", c);
}

/* 1 when the key (its last 64 bytes) names a secret: password, passwd,
 * secret, token, api_key/apikey or private_key, in any case and with any '_',
 * '-' and '.', but not a key about one (its file, path, URL, name, length...). */
static int secret_key(const char *k, size_t n)
{
    static const char *const words[] = {"password", "passwd", "secret",
                                        "token",    "apikey", "privatekey"};
    static const char *const about[] = {
        "file",  "path",    "dir",    "url",    "uri",      "name",   "env",
        "var",   "type",    "len",    "length", "size",     "count",  "format",
        "field", "header",  "prefix", "suffix", "endpoint", "expiry", "expires",
        "ttl",   "timeout", "id",     "ref",    "hash",     "sha256", "digest",
    };
    char norm[64];
    size_t m = 0;
    if (n > 64)
        k += n - 64, n = 64;
    for (size_t i = 0; i < n; i++)
        if (k[i] != '_' && k[i] != '-' && k[i] != '.')
            norm[m++] = (char)lower((unsigned char)k[i]);
    int found = 0;
    for (size_t w = 0; w < sizeof(words) / sizeof(*words) && !found; w++)
        found = has_ci(norm, m, words[w]);
    if (!found)
        return 0;
    for (size_t a = 0; a < sizeof(about) / sizeof(*about); a++) {
        size_t al = strlen(about[a]);
        if (m >= al && !memcmp(norm + m - al, about[a], al))
            return 0;
    }
    return 1;
}

/* 1 when v looks like a generated secret rather than a word, a name or a
 * reference: long enough, varied enough, not a placeholder. */
static int secret_value(const char *v, size_t n, int quoted)
{
    int up = 0, low = 0, dig = 0, sym = 0, other_sym = 0, dots = 0;
    if (n < ASSIGN_MIN_LEN || n > ASSIGN_MAX_LEN || placeholder(v, n))
        return 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)v[i];
        if (!is_value_char(c))
            return 0;
        up |= is_upper(c), low |= is_lower(c), dig |= is_digit(c);
        if (!is_alnum(c)) {
            sym = 1;
            other_sym |= c != '-' && c != '_' && c != '.';
            dots += c == '.';
        }
    }
    if (up + low + dig + sym < 2)
        return 0;
    /* words, kebab-case, CONSTANTS, dotted.references: no digit, no other sign */
    if (!dig && !other_sym && !(up && low))
        return 0;
    /* unquoted identifiers and member paths are code (token = self.tokenValue) */
    if (!quoted && !dig && !other_sym && (dots || is_word((unsigned char)v[0])))
        return 0;
    return scan_entropy(v, n) >= ASSIGN_MIN_ENTROPY;
}

/* 1 when [v, v+n) overlaps a hit already recorded since index from. */
static int overlaps(const struct scan_hits *h, size_t from, const char *v, size_t n)
{
    for (size_t i = from; i < h->n; i++)
        if (h->v[i].val < v + n && v < h->v[i].val + h->v[i].vlen)
            return 1;
    return 0;
}

/* key = value, key: value, "key": "value", KEY=value, key := value, key => value. */
static void assignments(const char *s, size_t n, size_t line, struct scan_hits *h, size_t from)
{
    size_t i = 0;
    while (i < n) {
        if (!is_key_char((unsigned char)s[i])) {
            i++;
            continue;
        }
        size_t kb = i;
        while (i < n && is_key_char((unsigned char)s[i]))
            i++;
        size_t ke = i, j = i;
        char q = kb > 0 && (s[kb - 1] == '"' || s[kb - 1] == '\'') ? s[kb - 1] : 0;
        if (q && j < n && s[j] == q)
            j++;
        while (j < n && (s[j] == ' ' || s[j] == '\t'))
            j++;
        if (j >= n)
            break;
        if (s[j] == ':' && j + 1 < n && s[j + 1] == '=')
            j += 2;
        else if (s[j] == '=' && j + 1 < n && s[j + 1] == '>')
            j += 2;
        else if (s[j] == '=' && !(j + 1 < n && s[j + 1] == '='))
            j += 1;
        else if (s[j] == ':' && !(j + 1 < n && s[j + 1] == ':'))
            j += 1;
        else
            continue;
        if (!secret_key(s + kb, ke - kb))
            continue;
        while (j < n && (s[j] == ' ' || s[j] == '\t'))
            j++;
        size_t vb = j, ve;
        int quoted = 0;
        if (j < n && (s[j] == '"' || s[j] == '\'' || s[j] == '`')) {
            char vq = s[j];
            vb = ++j;
            while (j < n && j - vb <= ASSIGN_MAX_LEN && s[j] != vq)
                j++;
            if (j >= n || s[j] != vq)
                continue;
            ve = j;
            quoted = 1;
        } else {
            while (j < n && j - vb <= ASSIGN_MAX_LEN && s[j] != ' ' && s[j] != '\t')
                j++;
            ve = j;
            if (ve > vb && (s[ve - 1] == ';' || s[ve - 1] == ','))
                ve--;
        }
        if (secret_value(s + vb, ve - vb, quoted) && !overlaps(h, from, s + vb, ve - vb))
            hit_add(h, "secret-assignment", line, vb, s + vb, ve - vb);
    }
}

/* ---- the content pass -------------------------------------------------------------------- */

struct aws_cand {
    size_t line, col;
    const char *val;
};

struct state {
    struct scan_hits *h;
    struct aws_cand *ids;
    size_t nids, ids_cap;
    size_t *secret_lines; /* lines holding a 40-character base64 value, increasing */
    size_t nsecret, secret_cap;
};

/* A standalone run of exactly 40 base64 characters with upper case, lower case and digits. */
static int aws_secret_on(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (!is_b64((unsigned char)s[i])) {
            i++;
            continue;
        }
        size_t b = i;
        int up = 0, low = 0, dig = 0;
        while (i < n && is_b64((unsigned char)s[i])) {
            up |= is_upper(s[i]), low |= is_lower(s[i]), dig |= is_digit(s[i]);
            i++;
        }
        if (i - b == 40 && up && low && dig && !(i < n && s[i] == '='))
            return 1;
    }
    return 0;
}

static void line_rules(struct state *st, const char *s, size_t n, size_t line, const char *rest,
                       size_t rn)
{
    struct scan_hits *h = st->h;
    size_t from = h->n;

    /* private key blocks */
    for (const char *p = s; (p = find(p, n - (size_t)(p - s), "-----BEGIN ", 11));) {
        size_t at = (size_t)(p - s) + 11, hl = key_header(s + at, n - at), bl = 0;
        if (hl) {
            const char *body = key_body(s + at + hl, n - at - hl, rest, rn, &bl);
            if (body)
                hit_add(h, "private-key", line, (size_t)(p - s), body, bl);
        }
        p = s + at;
    }
    /* Slack incoming webhooks */
    for (const char *p = s; (p = find(p, n - (size_t)(p - s), "hooks.slack.com/services/", 25));) {
        size_t at = (size_t)(p - s) + 25;
        size_t r = run(s + at, n - at, is_b64, 255);
        if (r >= 20 && r <= 255 && !placeholder(s + at, r))
            hit_add(h, "slack-webhook", line, at, s + at, r);
        p = s + at;
    }
    /* tokens, each tried only at its left boundary */
    for (size_t i = 0; i < n; i++) {
        int prev = i ? (unsigned char)s[i - 1] : ' ';
        size_t m = 0;
        const char *rule = NULL;
        switch (s[i]) {
        case 'A':
            if (!is_alnum(prev) && aws_id(s + i, n - i) && !placeholder(s + i, 20)) {
                if (st->nids == st->ids_cap) {
                    st->ids_cap = st->ids_cap ? 2 * st->ids_cap : 8;
                    st->ids = xrealloc(st->ids, st->ids_cap * sizeof(*st->ids));
                }
                st->ids[st->nids++] = (struct aws_cand){line, i, s + i};
                i += 19;
            }
            continue;
        case 'g':
            if (!is_word(prev) && (m = github(s + i, n - i)))
                rule = "github-token";
            else if (!is_b64url(prev) && (m = gitlab(s + i, n - i)))
                rule = "gitlab-token";
            break;
        case 'x':
            if (!is_b64url(prev) && (m = slack(s + i, n - i)))
                rule = "slack-token";
            break;
        case 'e':
            if (!is_b64url(prev) && (m = jwt(s + i, n - i)))
                rule = "jwt";
            break;
        default:
            continue;
        }
        if (rule && !placeholder(s + i, m)) {
            hit_add(h, rule, line, i, s + i, m);
            i += m - 1;
        }
    }
    if (aws_secret_on(s, n)) {
        if (st->nsecret == st->secret_cap) {
            st->secret_cap = st->secret_cap ? 2 * st->secret_cap : 8;
            st->secret_lines = xrealloc(st->secret_lines, st->secret_cap * sizeof(size_t));
        }
        st->secret_lines[st->nsecret++] = line;
    }
    assignments(s, n, line, h, from);
}

static int hit_cmp(const void *a, const void *b)
{
    const struct scan_hit *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return strcmp(x->rule, y->rule);
}

void scan_rules_content(const char *text, size_t len, struct scan_hits *h)
{
    struct state st = {.h = h};
    size_t first = h->n, line = 0;

    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, e = end;
        if (e > pos && text[e - 1] == '\r')
            e--;
        line++;
        size_t next = nl ? end + 1 : len;
        line_rules(&st, text + pos, e - pos, line, text + next, len - next);
        pos = next;
    }
    /* AWS key ids count only with a secret nearby; both lists are in line order */
    size_t k = 0;
    for (size_t i = 0; i < st.nids; i++) {
        size_t l = st.ids[i].line, lo = l > AWS_WINDOW ? l - AWS_WINDOW : 0;
        while (k < st.nsecret && st.secret_lines[k] < lo)
            k++;
        if (k < st.nsecret && st.secret_lines[k] <= l + AWS_WINDOW)
            hit_add(h, "aws-access-key", l, st.ids[i].col, st.ids[i].val, 20);
    }
    free(st.ids);
    free(st.secret_lines);
    if (h->n > first)
        qsort(h->v + first, h->n - first, sizeof(*h->v), hit_cmp);
}

/* ---- files by name ----------------------------------------------------------------------- */

/* Calls fn on each line (without "\r\n") until it returns non-zero. */
static void each_line(const char *text, size_t len,
                      int (*fn)(void *ctx, const char *s, size_t n, size_t line), void *ctx)
{
    size_t line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, e = end;
        if (e > pos && text[e - 1] == '\r')
            e--;
        if (fn(ctx, text + pos, e - pos, ++line))
            return;
        pos = nl ? end + 1 : len;
    }
}

struct name_ctx {
    const char *rule;
    int kind;
    struct scan_hits *h;
};

enum { N_ENV, N_CREDENTIALS, N_NPMRC, N_NETRC, N_SSH };

static void trim(const char **s, size_t *n)
{
    while (*n && ((*s)[0] == ' ' || (*s)[0] == '\t'))
        (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

static void unquote(const char **s, size_t *n)
{
    if (*n >= 2 && ((*s)[0] == '"' || (*s)[0] == '\'') && (*s)[*n - 1] == (*s)[0])
        (*s)++, *n -= 2;
}

static int name_line(void *vctx, const char *s, size_t n, size_t line)
{
    struct name_ctx *c = vctx;
    const char *v = NULL;
    size_t vn = 0;
    trim(&s, &n);
    if (!n || s[0] == '#' || s[0] == ';')
        return 0;
    switch (c->kind) {
    case N_ENV:
    case N_CREDENTIALS:
    case N_NPMRC: {
        if (c->kind == N_ENV && n > 7 && !memcmp(s, "export ", 7))
            s += 7, n -= 7;
        const char *eq = memchr(s, '=', n);
        if (!eq && c->kind == N_CREDENTIALS)
            eq = memchr(s, ':', n);
        if (!eq || eq == s)
            return 0;
        const char *k = s;
        size_t kn = (size_t)(eq - s);
        trim(&k, &kn);
        if (c->kind == N_NPMRC && !(kn >= 10 && !memcmp(k + kn - 10, "_authToken", 10)) &&
            !(kn >= 5 && !memcmp(k + kn - 5, "_auth", 5)) &&
            !(kn >= 9 && !memcmp(k + kn - 9, "_password", 9)))
            return 0;
        v = eq + 1;
        vn = (size_t)(s + n - v);
        trim(&v, &vn);
        unquote(&v, &vn);
        if (!vn || v[0] == '$' || v[0] == '<' || v[0] == '{')
            return 0;
        break;
    }
    case N_NETRC:
        /* "machine m login l password p", tokens over any lines; the value after "password" */
        for (size_t i = 0; i < n;) {
            while (i < n && (s[i] == ' ' || s[i] == '\t'))
                i++;
            size_t b = i;
            while (i < n && s[i] != ' ' && s[i] != '\t')
                i++;
            if (i - b == 8 && !memcmp(s + b, "password", 8)) {
                while (i < n && (s[i] == ' ' || s[i] == '\t'))
                    i++;
                size_t vb = i;
                while (i < n && s[i] != ' ' && s[i] != '\t')
                    i++;
                if (i > vb) {
                    v = s + vb, vn = i - vb;
                    break;
                }
            }
        }
        if (!v)
            return 0;
        break;
    case N_SSH:
        if (n >= 5 && !memcmp(s, "-----", 5))
            return 0;
        if (memchr(s, ':', n) && !key_material(s, n))
            return 0; /* Proc-Type: and DEK-Info: headers */
        v = s, vn = n > 64 ? 64 : n;
        break;
    }
    hit_add(c->h, c->rule, line, (size_t)(v - s), v, vn);
    return 1;
}

void scan_rules_name(const char *path, const char *text, size_t len, struct scan_hits *h)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    struct name_ctx c = {.h = h};
    static const char *const ssh[] = {"id_rsa",     "id_dsa",      "id_ecdsa",
                                      "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"};

    if (!strcmp(base, ".env") ||
        (str_starts_with(base, ".env.") && !str_ends_with(base, ".example") &&
         !str_ends_with(base, ".sample") && !str_ends_with(base, ".template") &&
         !str_ends_with(base, ".dist")))
        c.kind = N_ENV, c.rule = "env-file";
    else if (!strcmp(base, "credentials"))
        c.kind = N_CREDENTIALS, c.rule = "credentials-file";
    else if (!strcmp(base, ".npmrc"))
        c.kind = N_NPMRC, c.rule = "npmrc-token";
    else if (!strcmp(base, ".netrc") || !strcmp(base, "_netrc"))
        c.kind = N_NETRC, c.rule = "netrc-file";
    else
        for (size_t i = 0; i < sizeof(ssh) / sizeof(*ssh); i++)
            if (!strcmp(base, ssh[i]))
                c.kind = N_SSH, c.rule = "ssh-key-file";
    if (c.rule)
        each_line(text, len, name_line, &c);
}
