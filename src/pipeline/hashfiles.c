/*
 * hashFiles(): the SHA-256 of the files under the workspace that match glob
 * patterns, computed as GitHub's runner computes it (its hashFiles script on
 * @actions/glob): the patterns are lines, '#' starts a comment, a leading
 * '!' excludes, a pattern also matches everything below what it names
 * ("src" hashes every file under src/), `*`, `?` and `[...]` match within a
 * path segment and dot files, `**` any number of segments. Directories are
 * walked depth first with their entries in byte order; each matching regular
 * file's SHA-256 is fed, as 32 raw bytes, into one outer SHA-256 whose hex
 * digest is the result; no matching file gives "".
 *
 * The one idea: the patterns come from a workflow someone else wrote, so the
 * walk never leaves the workspace. Patterns are resolved lexically against
 * it and the search starts inside it; a symbolic link is hashed or followed
 * only when its target, resolved, is inside the workspace too (GitHub only
 * ignores such files after reading them); only regular files are opened, and
 * never a FIFO or a device; the walk is bounded in depth and entries.
 */
#include "pipeline/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    MAX_SEGMENTS = 256,    /* segments of a pattern or a walked path */
    MAX_ENTRIES = 1000000, /* directory entries one call may visit */
    MAX_PATTERNS = 1024,   /* pattern lines, implicit ones included */
};

struct glob {
    int negate;
    int dir_only; /* written with a trailing '/' */
    char **segs;  /* absolute, normalised */
    size_t nsegs;
};

struct walk {
    struct expr_eval *ev;
    struct glob *globs;
    size_t nglobs;
    int follow;
    char *root;     /* the workspace, resolved */
    size_t entries; /* visited so far */
    struct sha256_ctx *outer;
    int matched;
    int rc;
};

static void glob_free(struct glob *g)
{
    for (size_t i = 0; i < g->nsegs; i++)
        free(g->segs[i]);
    free(g->segs);
}

static int is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Splits an absolute or relative path into normalised segments under base:
 * "." and empty segments go, ".." removes the previous one (lexically, as
 * path.resolve does). Returns the count, or -1 when there are too many. */
static int split_path(const char *base, const char *path, char ***segs)
{
    char **out = NULL;
    int n = 0;
    const char *parts[2] = {path[0] == '/' ? "" : base, path};

    for (int k = 0; k < 2; k++) {
        const char *p = parts[k];
        while (*p) {
            size_t len = strcspn(p, "/");
            if (len == 1 && p[0] == '.') {
            } else if (len == 2 && p[0] == '.' && p[1] == '.') {
                if (n > 0)
                    free(out[--n]);
            } else if (len > 0) {
                if (n >= MAX_SEGMENTS) {
                    while (n > 0)
                        free(out[--n]);
                    free(out);
                    return -1;
                }
                out = xrealloc(out, (size_t)(n + 1) * sizeof(*out));
                out[n++] = xstrndup(p, len);
            }
            p += len;
            if (*p == '/')
                p++;
        }
    }
    *segs = out;
    return n;
}

static int has_magic(const char *seg)
{
    return strpbrk(seg, "*?[\\") != NULL;
}

/* ---- matching one segment: * ? [...] \x ----------------------------------------------------- */

/* Matches a class at p (just after '['); *end is set past the ']'. Returns
 * -1 when there is no closing ']' (then '[' is an ordinary character). */
static int match_class(const char *p, char c, const char **end)
{
    int negate = 0, hit = 0;
    const char *q = p;

    if (*q == '!' || *q == '^')
        negate = 1, q++;
    for (int first = 1; *q && (*q != ']' || first); first = 0) {
        char lo = *q == '\\' && q[1] ? *++q : *q, hi = lo;
        q++;
        if (q[0] == '-' && q[1] && q[1] != ']') {
            hi = q[1] == '\\' && q[2] ? q[2] : q[1];
            q += q[1] == '\\' && q[2] ? 3 : 2;
        }
        if ((unsigned char)c >= (unsigned char)lo && (unsigned char)c <= (unsigned char)hi)
            hit = 1;
    }
    if (*q != ']')
        return -1;
    *end = q + 1;
    return hit != negate;
}

/* Glob match of one segment; iterative with one backtrack point per '*', so
 * linear in practice and never exponential. */
static int seg_match(const char *p, const char *s)
{
    const char *star_p = NULL, *star_s = NULL;

    for (;;) {
        const char *next = NULL;
        int ok;

        if (*p == '*') {
            while (*p == '*')
                p++;
            star_p = p;
            star_s = s;
            continue;
        }
        if (!*s) {
            if (!*p)
                return 1;
            goto backtrack;
        }
        if (*p == '?') {
            next = p + 1;
            ok = 1;
        } else if (*p == '[' && (ok = match_class(p + 1, *s, &next)) >= 0) {
        } else if (*p == '\\' && p[1]) {
            ok = p[1] == *s;
            next = p + 2;
        } else {
            ok = *p && *p == *s;
            next = p + 1;
        }
        if (ok) {
            p = next;
            s++;
            continue;
        }
    backtrack:
        if (!star_p || !*star_s)
            return 0;
        p = star_p;
        s = ++star_s;
    }
}

/* Which pattern positions can be reached after matching path[0..n): a set
 * over 0..nsegs, closed over "**" matching no segment. full: the pattern is
 * used up; partial: something is still reachable (a descendant might match). */
static void glob_match(const struct glob *g, char *const *path, size_t n, int *full, int *partial)
{
    unsigned char cur[MAX_SEGMENTS + 1], next[MAX_SEGMENTS + 1];
    size_t ns = g->nsegs;

    memset(cur, 0, ns + 1);
    cur[0] = 1;
    for (size_t i = 0;; i++) {
        int any = 0;
        for (size_t j = 0; j < ns; j++) /* "**" also matches nothing */
            if (cur[j] && strcmp(g->segs[j], "**") == 0)
                cur[j + 1] = 1;
        for (size_t j = 0; j <= ns; j++)
            any |= cur[j];
        if (i == n || !any) {
            *full = cur[ns];
            *partial = any;
            return;
        }
        memset(next, 0, ns + 1);
        for (size_t j = 0; j < ns; j++) {
            if (!cur[j])
                continue;
            if (strcmp(g->segs[j], "**") == 0)
                next[j] = 1;
            else if (seg_match(g->segs[j], path[i]))
                next[j + 1] = 1;
        }
        memcpy(cur, next, ns + 1);
    }
}

/* The file kind of @actions/glob's MatchKind: later patterns win. */
static void match_all(const struct walk *w, char *const *path, size_t n, int *file, int *partial)
{
    *file = 0;
    *partial = 0;
    for (size_t i = 0; i < w->nglobs; i++) {
        int full, part;
        glob_match(&w->globs[i], path, n, &full, &part);
        if (w->globs[i].negate) {
            if (full && !w->globs[i].dir_only)
                *file = 0;
        } else {
            if (full && !w->globs[i].dir_only)
                *file = 1;
            *partial |= part;
        }
    }
}

/* ---- the walk ---------------------------------------------------------------------------------
 */

static char *join_segs(char *const *segs, size_t n)
{
    struct buf b = BUF_INIT;
    if (n == 0)
        buf_adds(&b, "/");
    for (size_t i = 0; i < n; i++)
        buf_addf(&b, "/%s", segs[i]);
    return buf_detach(&b, NULL);
}

/* resolved is inside the workspace (or is it) */
static int inside(const struct walk *w, const char *resolved)
{
    size_t n = strlen(w->root);
    if (strcmp(w->root, "/") == 0)
        return 1;
    return strncmp(resolved, w->root, n) == 0 && (resolved[n] == '\0' || resolved[n] == '/');
}

static int hash_file(struct walk *w, const char *path)
{
    struct sha256_ctx *c;
    char hex[SHA256_HEX_LEN + 1];
    unsigned char raw[32], chunk[65536];
    struct stat st;
    int fd;

    do
        fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return sw_err_sys(w->ev->err, errno, "hashFiles: %s", path);
    /* what was checked before opening may have been swapped since */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 0;
    }
    c = sha256_new();
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            sha256_final_hex(c, hex);
            close(fd);
            return sw_err_sys(w->ev->err, e, "hashFiles: %s", path);
        }
        if (r == 0)
            break;
        sha256_update(c, chunk, (size_t)r);
    }
    close(fd);
    sha256_final_hex(c, hex);
    for (size_t i = 0; i < 32; i++) {
        unsigned hi = (unsigned)(hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10);
        unsigned lo =
            (unsigned)(hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' : hex[2 * i + 1] - 'a' + 10);
        raw[i] = (unsigned char)(hi << 4 | lo);
    }
    sha256_update(w->outer, raw, sizeof(raw));
    w->matched = 1;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Visits path[0..n) (its segments; the item itself) and what is below it. */
static int visit(struct walk *w, char **path, size_t n, int depth)
{
    int file, partial, rc = 0;
    struct stat st;
    char *p, *resolved = NULL;

    if (++w->entries > MAX_ENTRIES)
        return sw_err_set(w->ev->err, PIPELINE_EEVAL,
                          "hashFiles: more than %d files and directories to look at", MAX_ENTRIES);
    match_all(w, path, n, &file, &partial);
    if (!file && !partial)
        return 0;
    p = join_segs(path, n);
    if (lstat(p, &st) != 0)
        goto out; /* gone since it was listed */
    if (depth == 0) {
        /* a search root: no link on the way to it may lead out of the workspace */
        char *r = realpath(p, NULL);
        int ok = r && inside(w, r);
        free(r);
        if (!ok)
            goto out;
    }
    if (S_ISLNK(st.st_mode)) {
        resolved = realpath(p, NULL);
        if (!resolved || !inside(w, resolved) || stat(resolved, &st) != 0)
            goto out;
        if (S_ISDIR(st.st_mode) && !w->follow)
            goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d;
        struct dirent *de;
        char **names = NULL;
        size_t count = 0;

        if (n >= MAX_SEGMENTS || depth >= 64)
            goto out;
        if (resolved) {
            /* a followed link: not into one of its own ancestors (a cycle) */
            char *here = realpath(p, NULL);
            size_t rn = here ? strlen(here) : 0;
            int cycle = 0;
            for (size_t k = 1; here && k < n && !cycle; k++) {
                char *anc = join_segs(path, k), *ra = realpath(anc, NULL);
                cycle = ra && strncmp(here, ra, strlen(ra)) == 0 &&
                        (strlen(ra) == rn || here[strlen(ra)] == '/');
                free(anc);
                free(ra);
            }
            free(here);
            if (cycle)
                goto out;
        }
        if (!(d = opendir(p)))
            goto out;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            if ((count & (count - 1)) == 0) /* doubling: directories can be large */
                names = xrealloc(names, (count ? 2 * count : 1) * sizeof(*names));
            names[count++] = xstrdup(de->d_name);
            if (count > MAX_ENTRIES)
                break;
        }
        closedir(d);
        if (count) /* an empty directory has no array to sort */
            qsort(names, count, sizeof(*names), cmp_names);
        for (size_t i = 0; i < count; i++) {
            path[n] = names[i];
            if (!rc)
                rc = visit(w, path, n + 1, depth + 1);
            free(names[i]);
        }
        path[n] = NULL;
        free(names);
    } else if (file && S_ISREG(st.st_mode)) {
        rc = hash_file(w, resolved ? resolved : p);
    }
out:
    free(resolved);
    free(p);
    return rc;
}

static int add_glob(struct walk *w, const char *line)
{
    struct glob g = {0};
    const char *s = line;
    size_t len;
    char *text;
    int n;

    while (*s == '!') {
        g.negate = !g.negate;
        s++;
        while (is_space(*s))
            s++;
    }
    len = strlen(s);
    /* empty, or "~" (the home directory, as @actions/glob reads it): nothing here */
    if (len == 0 || (s[0] == '~' && (s[1] == '\0' || s[1] == '/')))
        return 0;
    g.dir_only = s[len - 1] == '/';
    text = xstrdup(s);
    n = split_path(w->root, text, &g.segs);
    free(text);
    if (n < 0 || w->nglobs + 2 > MAX_PATTERNS) {
        glob_free(&g);
        return sw_err_set(w->ev->err, PIPELINE_EEVAL, "hashFiles: pattern too long or too many");
    }
    g.nsegs = (size_t)n;
    w->globs = xrealloc(w->globs, (w->nglobs + 2) * sizeof(*w->globs));
    w->globs[w->nglobs++] = g;
    /* and, implicitly, everything below what it names */
    if (g.nsegs < MAX_SEGMENTS &&
        (g.dir_only || g.nsegs == 0 || strcmp(g.segs[g.nsegs - 1], "**"))) {
        struct glob d = {g.negate, 0, xcalloc(g.nsegs + 1, sizeof(char *)), g.nsegs + 1};
        for (size_t i = 0; i < g.nsegs; i++)
            d.segs[i] = xstrdup(g.segs[i]);
        d.segs[g.nsegs] = xstrdup("**");
        w->globs[w->nglobs++] = d;
    }
    return 0;
}

int expr_hash_files(struct expr_eval *ev, char **patterns, size_t n, int follow, char **hex)
{
    struct walk w = {ev, NULL, 0, follow, NULL, 0, NULL, 0, 0};
    char **root_segs = NULL, **roots = NULL, *path[MAX_SEGMENTS + 1];
    size_t nroots = 0;
    int nroot = 0, rc = 0;
    char digest[SHA256_HEX_LEN + 1];

    *hex = NULL;
    if (!ev->ctx->workspace)
        return sw_err_set(ev->err, PIPELINE_EEVAL, "hashFiles() needs a workspace");
    if (!(w.root = realpath(ev->ctx->workspace, NULL)))
        return sw_err_sys(ev->err, errno, "hashFiles: workspace %s", ev->ctx->workspace);
    for (size_t i = 0; i < n && !rc; i++) {
        char *copy = xstrdup(patterns[i]), *line = copy, *nl;
        do {
            nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            while (is_space(*line))
                line++;
            size_t len = strlen(line);
            while (len > 0 && is_space(line[len - 1]))
                line[--len] = '\0';
            if (len && line[0] != '#')
                rc = add_glob(&w, line);
            line = nl + 1;
        } while (nl && !rc);
        free(copy);
    }
    nroot = rc ? -1 : split_path("/", w.root, &root_segs);
    if (nroot < 0 && !rc)
        rc = sw_err_set(ev->err, PIPELINE_EEVAL, "hashFiles: workspace path too deep");
    w.outer = sha256_new();
    /* The search roots: the literal start of each including pattern, inside
     * the workspace (a pattern above it searches from the workspace, one
     * elsewhere nowhere); a root below another root is not walked twice. */
    roots = xcalloc(w.nglobs + 1, sizeof(*roots));
    for (size_t i = 0; i < w.nglobs && !rc; i++) {
        const struct glob *g = &w.globs[i];
        size_t lit = 0, k;

        if (g->negate)
            continue;
        while (lit < g->nsegs && !has_magic(g->segs[lit]))
            lit++;
        for (k = 0; k < lit && k < (size_t)nroot; k++)
            if (strcmp(g->segs[k], root_segs[k]) != 0)
                break;
        if (k < lit && k < (size_t)nroot)
            continue;
        roots[nroots++] = lit <= (size_t)nroot ? xstrdup(w.root) : join_segs(g->segs, lit);
    }
    for (size_t i = 0; i < nroots && !rc; i++) {
        int skip = 0;
        for (size_t j = 0; j < nroots && !skip; j++) {
            size_t lj = strlen(roots[j]);
            if (j < i && strcmp(roots[j], roots[i]) == 0)
                skip = 1; /* walked already */
            else if (strcmp(roots[j], "/") == 0)
                skip = strcmp(roots[i], "/") != 0;
            else
                skip = strncmp(roots[j], roots[i], lj) == 0 && roots[i][lj] == '/';
        }
        if (skip)
            continue;
        char **segs = NULL;
        int ns = split_path("/", roots[i], &segs);
        for (int k = 0; k < ns; k++)
            path[k] = segs[k];
        path[ns < 0 ? 0 : ns] = NULL;
        if (ns >= 0)
            rc = visit(&w, path, (size_t)ns, 0);
        for (int k = 0; k < ns; k++)
            free(segs[k]);
        free(segs);
    }
    sha256_final_hex(w.outer, digest);
    if (!rc)
        *hex = xstrdup(w.matched ? digest : "");
    for (size_t i = 0; i < w.nglobs; i++)
        glob_free(&w.globs[i]);
    free(w.globs);
    for (size_t i = 0; i < nroots; i++)
        free(roots[i]);
    free(roots);
    for (int i = 0; i < nroot; i++)
        free(root_segs[i]);
    free(root_segs);
    free(w.root);
    return rc;
}
