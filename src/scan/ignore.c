/*
 * The allow-list of the secret scan (.slipway/scan-ignore): path globs and
 * fingerprints. A glob is compiled into a short list of tokens and matched as
 * a small NFA over "/" + path, one pass over the path with a set of active
 * states, so a pattern like "*a*a*a*b" costs tokens x characters and never
 * backtracks. The same pass tells whether the glob matches a directory above
 * the path (each time it reaches a '/'), which is how "tests/data" covers
 * every file under it.
 */
#include "scan/scan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum tok_kind {
    T_LIT,  /* one byte */
    T_ANY,  /* '?': one byte but '/' */
    T_STAR, /* '*': any run without '/' */
    /* A "**" segment becomes the pair T_SLASHSTAR, T_GLOB (with the '/' before it): */
    T_SLASHSTAR, /* the '/': either nothing (skipping the T_GLOB after it) or '/' */
    T_GLOB,      /* the stars: any run, '/' included */
};

struct tok {
    enum tok_kind kind;
    unsigned char c;
};

struct glob {
    struct tok *t;
    size_t n;
    int dir_only; /* written with a trailing '/' */
};

struct scan_ignore {
    struct glob *globs;
    size_t nglobs;
    char (*fps)[SCAN_FINGERPRINT_LEN + 1];
    size_t nfps;
};

enum { MAX_PATTERN = 1024, MAX_FILE = 1 << 20 };

void scan_ignore_free(struct scan_ignore *ig)
{
    if (!ig)
        return;
    for (size_t i = 0; i < ig->nglobs; i++)
        free(ig->globs[i].t);
    free(ig->globs);
    free(ig->fps);
    free(ig);
}

/* Compiles pattern p (n bytes, already trimmed) into g; a static reason on error. */
static const char *compile(const char *p, size_t n, struct glob *g)
{
    if (n > MAX_PATTERN)
        return "pattern longer than 1024 bytes";
    if (p[0] == '!')
        return "'!' (re-including) is not supported; name what to ignore";
    while (n && p[0] == '/')
        p++, n--;
    g->dir_only = 0;
    while (n && p[n - 1] == '/' && !(n >= 2 && p[n - 2] == '\\'))
        n--, g->dir_only = 1;
    if (!n)
        return "empty pattern";
    /* No '/' (unescaped) in it: the name at any depth, as gitignore reads it. */
    int has_slash = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\')
            i++;
        else if (p[i] == '/')
            has_slash = 1;
    }
    /* "/" + ("**" "/" unless has_slash) + p, as one string to tokenize */
    struct buf s = BUF_INIT;
    buf_adds(&s, has_slash ? "/" : "/**/");
    buf_add(&s, p, n);
    const char *why = NULL;
    g->t = xcalloc(2 * s.len + 1, sizeof(*g->t));
    g->n = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.data[i];
        if (c < 0x20 || c == 0x7f) {
            why = "control character in pattern";
            break;
        }
        if (c == '\\') {
            if (i + 1 == s.len) {
                why = "a trailing '\\' escapes nothing";
                break;
            }
            g->t[g->n++] = (struct tok){T_LIT, (unsigned char)s.data[++i]};
        } else if (c == '/' && i + 2 < s.len + 0 && s.data[i + 1] == '*' && s.data[i + 2] == '*' &&
                   (i + 3 == s.len || s.data[i + 3] == '/')) {
            g->t[g->n++] = (struct tok){T_SLASHSTAR, 0};
            g->t[g->n++] = (struct tok){T_GLOB, 0};
            i += 2;
        } else if (c == '*' && i + 1 < s.len && s.data[i + 1] == '*') {
            why = "'**' must be a whole path segment (a/**/b, **/x, dir/**)";
            break;
        } else if (c == '/' && i + 1 < s.len && s.data[i + 1] == '/') {
            why = "empty path segment ('//')";
            break;
        } else if (c == '/' && i + 2 < s.len + 1 && s.data[i + 1] == '.' &&
                   (i + 2 == s.len || s.data[i + 2] == '/' ||
                    (s.data[i + 2] == '.' && (i + 3 == s.len || s.data[i + 3] == '/')))) {
            why = "'.' and '..' segments never match a scanned path";
            break;
        } else if (c == '*') {
            g->t[g->n++] = (struct tok){T_STAR, 0};
        } else if (c == '?') {
            g->t[g->n++] = (struct tok){T_ANY, 0};
        } else {
            g->t[g->n++] = (struct tok){T_LIT, c};
        }
    }
    buf_free(&s);
    if (why) {
        free(g->t);
        g->t = NULL;
    }
    return why;
}

/* Follows the moves that consume nothing; they only go forward, so one pass. */
static void closure(const struct glob *g, unsigned char *act)
{
    for (size_t i = 0; i < g->n; i++) {
        if (!act[i])
            continue;
        if (g->t[i].kind == T_STAR || g->t[i].kind == T_GLOB)
            act[i + 1] = 1;
        else if (g->t[i].kind == T_SLASHSTAR)
            act[i + 2] = 1;
    }
}

/* 1 when g matches "/" + path, or "/" + a directory above it. */
static int glob_covers(const struct glob *g, const char *path, int is_dir)
{
    size_t n = g->n, len = strlen(path);
    unsigned char *act = xcalloc(n + 1, 2), *next = act + n + 1;
    int hit = 0, alive = 1;

    act[0] = 1;
    closure(g, act);
    for (size_t k = 0; k <= len && alive; k++) {
        /* k: bytes of "/" + path consumed minus one; before each '/' of path
         * the prefix consumed is a directory above it */
        unsigned char c = k == 0 ? '/' : (unsigned char)path[k - 1];
        if (k > 0 && c == '/' && act[n]) {
            hit = 1;
            break;
        }
        memset(next, 0, n + 1);
        alive = 0;
        for (size_t i = 0; i < n; i++) {
            if (!act[i])
                continue;
            const struct tok *t = &g->t[i];
            size_t to = SIZE_MAX;
            switch (t->kind) {
            case T_LIT:
                to = c == t->c ? i + 1 : SIZE_MAX;
                break;
            case T_ANY:
                to = c != '/' ? i + 1 : SIZE_MAX;
                break;
            case T_STAR:
                to = c != '/' ? i : SIZE_MAX;
                break;
            case T_GLOB:
                to = i;
                break;
            case T_SLASHSTAR:
                to = c == '/' ? i + 1 : SIZE_MAX;
                break;
            }
            if (to != SIZE_MAX)
                next[to] = 1, alive = 1;
        }
        closure(g, next);
        memcpy(act, next, n + 1);
    }
    if (!hit && alive && act[n] && (!g->dir_only || is_dir))
        hit = 1;
    free(act);
    return hit;
}

int scan_ignore_path(const struct scan_ignore *ig, const char *path, int is_dir)
{
    if (!ig)
        return 0;
    for (size_t i = 0; i < ig->nglobs; i++)
        if (glob_covers(&ig->globs[i], path, is_dir))
            return 1;
    return 0;
}

int scan_ignore_fingerprint(const struct scan_ignore *ig, const char *fp)
{
    if (!ig)
        return 0;
    for (size_t i = 0; i < ig->nfps; i++)
        if (!strcmp(ig->fps[i], fp))
            return 1;
    return 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

int scan_ignore_parse(const char *name, const char *data, size_t len, struct scan_ignore **out,
                      struct sw_err *err)
{
    struct scan_ignore *ig = xcalloc(1, sizeof(*ig));
    size_t lineno = 0, gcap = 0, fcap = 0;
    int rc = 0;

    *out = NULL;
    if (len > MAX_FILE) {
        rc = sw_err_set(err, SCAN_EIGNORE, "%s: larger than 1 MiB", name);
        goto out;
    }
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len, b = pos, e = end;
        lineno++;
        pos = end + 1;
        if (memchr(data + b, '\0', e - b)) {
            rc = sw_err_set(err, SCAN_EIGNORE, "%s:%zu: NUL byte", name, lineno);
            goto out;
        }
        while (b < e && is_blank(data[b]))
            b++;
        while (e > b && is_blank(data[e - 1]))
            e--;
        if (b == e || data[b] == '#')
            continue;
        const char *p = data + b;
        size_t n = e - b;
        static const char fpre[] = "fingerprint:";
        if (n >= sizeof(fpre) - 1 && !strncmp(p, fpre, sizeof(fpre) - 1)) {
            const char *h = p + sizeof(fpre) - 1;
            size_t hn = n - (sizeof(fpre) - 1);
            while (hn && is_blank(*h))
                h++, hn--;
            char fp[SCAN_FINGERPRINT_LEN + 1];
            int ok = hn == SCAN_FINGERPRINT_LEN;
            for (size_t i = 0; ok && i < hn; i++) {
                char c = h[i];
                if (c >= 'A' && c <= 'F')
                    c = (char)(c - 'A' + 'a');
                ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                fp[i] = c;
            }
            if (!ok) {
                rc = sw_err_set(err, SCAN_EIGNORE,
                                "%s:%zu: a fingerprint is 16 hex digits (as 'slipway scan' "
                                "prints it)",
                                name, lineno);
                goto out;
            }
            fp[SCAN_FINGERPRINT_LEN] = '\0';
            if (ig->nfps == fcap) {
                fcap = fcap ? 2 * fcap : 8;
                ig->fps = xrealloc(ig->fps, fcap * sizeof(*ig->fps));
            }
            memcpy(ig->fps[ig->nfps++], fp, sizeof(fp));
            continue;
        }
        struct glob g;
        const char *why = compile(p, n, &g);
        if (why) {
            rc = sw_err_set(err, SCAN_EIGNORE, "%s:%zu: %s", name, lineno, why);
            goto out;
        }
        if (ig->nglobs == gcap) {
            gcap = gcap ? 2 * gcap : 8;
            ig->globs = xrealloc(ig->globs, gcap * sizeof(*ig->globs));
        }
        ig->globs[ig->nglobs++] = g;
    }
out:
    if (rc)
        scan_ignore_free(ig);
    else
        *out = ig;
    return rc;
}

int scan_ignore_read_fd(int fd, const char *name, struct scan_ignore **out, struct sw_err *err)
{
    struct buf b = BUF_INIT;
    int rc = 0;
    *out = NULL;
    /* one byte more than allowed tells a file that is too large, without reading all of it */
    buf_grow(&b, MAX_FILE + 2);
    while (b.len <= MAX_FILE) {
        ssize_t r = read(fd, b.data + b.len, MAX_FILE + 1 - b.len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = sw_err_sys(err, errno, "%s", name);
            goto out;
        }
        if (r == 0)
            break;
        b.len += (size_t)r;
    }
    rc = scan_ignore_parse(name, b.data, b.len, out, err);
out:
    buf_free(&b);
    return rc;
}

int scan_ignore_load(const char *path, struct scan_ignore **out, struct sw_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sw_err_sys(err, errno, "%s", path);
    int rc = scan_ignore_read_fd(fd, path, out, err);
    close(fd);
    return rc;
}
