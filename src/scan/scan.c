/*
 * The secret scan's walk and report: which files are read, how much of each,
 * and how a rule's match becomes a finding (redacted, fingerprinted, checked
 * against the allow-list). The rules themselves are in rules.c, the
 * allow-list in ignore.c.
 *
 * The walk holds one directory descriptor per level and opens every entry
 * relative to it with O_NOFOLLOW, so a directory or file swapped for a
 * symbolic link while the scan runs is refused rather than followed out of
 * the tree; entries are visited in bytewise name order so two scans of the
 * same tree report the same lines in the same order.
 */
#include "scan/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_DEPTH = 128, MAX_NOTES = 1000, MAX_PATH = 4096 };

struct scan_report *scan_report_new(void)
{
    return xcalloc(1, sizeof(struct scan_report));
}

void scan_report_free(struct scan_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->findings[i].path);
        free(r->findings[i].redacted);
    }
    free(r->findings);
    for (size_t i = 0; i < r->nnotes; i++)
        free(r->notes[i]);
    free(r->notes);
    free(r);
}

/* Adds a note; past MAX_NOTES the last one only counts the rest. */
static void note(struct scan_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct scan_report *r, const char *fmt, ...)
{
    static const char more[] = "(further notes left out)";
    if (r->nnotes > MAX_NOTES)
        return;
    if (r->nnotes == r->notes_cap) {
        r->notes_cap = r->notes_cap ? 2 * r->notes_cap : 8;
        r->notes = xrealloc(r->notes, r->notes_cap * sizeof(*r->notes));
    }
    if (r->nnotes == MAX_NOTES) {
        r->notes[r->nnotes++] = xstrdup(more);
        return;
    }
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    r->notes[r->nnotes++] = buf_detach(&b, NULL);
}

int scan_is_binary(const void *data, size_t len)
{
    const unsigned char *s = data;
    size_t n = len < SCAN_SNIFF_BYTES ? len : SCAN_SNIFF_BYTES, bad = 0;
    if (memchr(s, '\0', n))
        return 1;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t need = c < 0x80             ? 0
                      : (c & 0xe0) == 0xc0 ? 1
                      : (c & 0xf0) == 0xe0 ? 2
                      : (c & 0xf8) == 0xf0 ? 3
                                           : 9;
        if (need == 0) {
            i++;
            continue;
        }
        if (need == 9 || c == 0xc0 || c == 0xc1 || c > 0xf4) {
            bad++, i++;
            continue;
        }
        if (i + need >= n && n < len)
            break; /* a sequence cut by the end of the window is not a fault of the file */
        size_t k = 1;
        while (k <= need && i + k < n && (s[i + k] & 0xc0) == 0x80)
            k++;
        if (k <= need) {
            bad++, i++;
            continue;
        }
        i += k;
    }
    return bad * 8 > n;
}

/* At most 4 leading characters, never more than a third of the value, and
 * only printable ASCII: enough to recognise a secret, too little to use it. */
static char *redact(const char *v, size_t n)
{
    size_t k = n >= 12 ? 4 : n / 3, i = 0;
    struct buf b = BUF_INIT;
    while (i < k && v[i] > 0x20 && v[i] < 0x7f)
        i++;
    buf_add(&b, v, i);
    buf_adds(&b, "****");
    return buf_detach(&b, NULL);
}

static void fingerprint(const char *rule, const char *path, const char *v, size_t n,
                        char out[SCAN_FINGERPRINT_LEN + 1])
{
    char hex[SHA256_HEX_LEN + 1];
    struct sha256_ctx *c = sha256_new();
    sha256_update(c, rule, strlen(rule) + 1);
    sha256_update(c, path, strlen(path) + 1);
    sha256_update(c, v, n);
    sha256_final_hex(c, hex);
    memcpy(out, hex, SCAN_FINGERPRINT_LEN);
    out[SCAN_FINGERPRINT_LEN] = '\0';
}

/* A file found by its name is reported once. Its own rule knows the file's
 * format, so it takes the place of the generic assignment rule on the same
 * value (".npmrc" and "_authToken=..."); a token or key of a known shape in
 * it is reported by that rule instead; and when the content gave nothing,
 * the file's rule reports its first value. */
static void merge_name_hit(const char *path, const char *data, size_t len, struct scan_hits *h)
{
    struct scan_hits nh = {0};
    scan_rules_name(path, data, len, &nh);
    if (nh.n) {
        const struct scan_hit *n = &nh.v[0];
        int placed = 0;
        for (size_t i = 0; i < h->n && !placed; i++)
            if (!strcmp(h->v[i].rule, "secret-assignment") && h->v[i].val < n->val + n->vlen &&
                n->val < h->v[i].val + h->v[i].vlen)
                h->v[i] = *n, placed = 1;
        if (!placed && !h->n) {
            h->v = nh.v, h->n = nh.n, h->cap = nh.cap;
            return;
        }
    }
    free(nh.v);
}

int scan_buffer(const char *path, const void *data, size_t len, const struct scan_opts *opts,
                struct scan_report *rep, struct sw_err *err)
{
    const struct scan_ignore *ig = opts ? opts->ignore : NULL;
    size_t max = opts && opts->max_file_bytes ? opts->max_file_bytes : SCAN_MAX_FILE_BYTES;
    struct scan_hits h = {0};

    (void)err;
    if (!data)
        data = "", len = 0;
    if (scan_ignore_path(ig, path, 0)) {
        rep->files_ignored++;
        return 0;
    }
    if (scan_is_binary(data, len)) {
        rep->files_skipped_binary++;
        return 0;
    }
    rep->files_scanned++;
    if (len > max) {
        char sz[32];
        size_format(max, sz, sizeof(sz));
        note(rep, "%s: only the first %s scanned", path, sz);
        len = max;
    }
    scan_rules_content(data, len, &h);
    merge_name_hit(path, data, len, &h);
    for (size_t i = 0; i < h.n; i++) {
        if (i == SCAN_MAX_FINDINGS_PER_FILE) {
            note(rep, "%s: %zu more findings not listed", path, h.n - i);
            break;
        }
        struct scan_finding f = {.line = h.v[i].line, .rule = h.v[i].rule};
        fingerprint(f.rule, path, h.v[i].val, h.v[i].vlen, f.fingerprint);
        if (scan_ignore_fingerprint(ig, f.fingerprint)) {
            rep->findings_ignored++;
            continue;
        }
        f.path = xstrdup(path);
        f.redacted = redact(h.v[i].val, h.v[i].vlen);
        if (rep->n == rep->cap) {
            rep->cap = rep->cap ? 2 * rep->cap : 16;
            rep->findings = xrealloc(rep->findings, rep->cap * sizeof(*rep->findings));
        }
        rep->findings[rep->n++] = f;
    }
    free(h.v);
    return 0;
}

/* ---- the walk ---------------------------------------------------------------------------- */

struct walk {
    struct scan_opts opts; /* .ignore set */
    struct scan_report *rep;
    char *buf; /* max_file_bytes + 1: one more tells that the file is longer */
    size_t max;
};

/* Reads up to w->max + 1 bytes of fd into w->buf. */
static int read_head(struct walk *w, int fd, const char *rel, size_t *len, struct sw_err *err)
{
    size_t got = 0;
    while (got < w->max + 1) {
        ssize_t r = read(fd, w->buf + got, w->max + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return sw_err_sys(err, errno, "%s", rel);
        if (r == 0)
            break;
        got += (size_t)r;
    }
    *len = got;
    return 0;
}

static int scan_fd(struct walk *w, int fd, const char *rel, struct sw_err *err)
{
    size_t len = 0;
    int rc = read_head(w, fd, rel, &len, err);
    if (!rc)
        rc = scan_buffer(rel, w->buf, len, &w->opts, w->rep, err);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Scans the directory open at fd (taken over) whose path is prefix ("" or "a/b/"). */
static int walk_dir(struct walk *w, int fd, struct buf *prefix, int depth, struct sw_err *err)
{
    DIR *d = fdopendir(fd);
    char **names = NULL;
    size_t n = 0, cap = 0, plen = prefix->len;
    int rc = 0;

    if (!d) {
        rc = sw_err_sys(err, errno, "%s", plen ? prefix->data : ".");
        close(fd);
        return rc;
    }
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno)
                rc = sw_err_sys(err, errno, "%s", plen ? prefix->data : ".");
            break;
        }
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            names = xrealloc(names, cap * sizeof(*names));
        }
        names[n++] = xstrdup(e->d_name);
    }
    if (rc)
        goto out;
    qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n && !rc; i++) {
        struct stat st;
        const char *name = names[i];
        prefix->len = plen;
        buf_adds(prefix, name);
        const char *rel = prefix->data;
        if (prefix->len > MAX_PATH) {
            note(w->rep, "%.200s…: path longer than %d bytes, not scanned", rel, MAX_PATH);
            continue;
        }
        if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT) /* gone since it was listed: nothing to scan */
                rc = sw_err_sys(err, errno, "%s", rel);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            /* git's own store (objects are compressed; refs and config are not the tree) */
            if (!strcmp(name, ".git"))
                continue;
            if (scan_ignore_path(w->opts.ignore, rel, 1)) {
                w->rep->files_ignored++; /* once for the whole directory, unread */
                continue;
            }
            if (depth >= MAX_DEPTH) {
                note(w->rep, "%s: deeper than %d directories, not scanned", rel, MAX_DEPTH);
                continue;
            }
            int cfd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (cfd < 0) {
                if (errno != ENOENT)
                    rc = sw_err_sys(err, errno, "%s", rel);
                continue;
            }
            buf_adds(prefix, "/");
            rc = walk_dir(w, cfd, prefix, depth + 1, err);
        } else if (S_ISREG(st.st_mode)) {
            if (scan_ignore_path(w->opts.ignore, rel, 0)) {
                w->rep->files_ignored++;
                continue;
            }
            /* O_NONBLOCK: should it have become a FIFO since fstatat, open must not hang */
            int ffd = openat(dirfd(d), name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            if (ffd < 0) {
                if (errno != ENOENT)
                    rc = sw_err_sys(err, errno, "%s", rel);
                continue;
            }
            if (fstat(ffd, &st) == 0 && S_ISREG(st.st_mode))
                rc = scan_fd(w, ffd, rel, err);
            close(ffd);
        }
        /* symbolic links, FIFOs, sockets, devices: not content of the tree */
    }
out:
    prefix->len = plen;
    if (prefix->data)
        prefix->data[plen] = '\0';
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

/* The tree's own allow-list, .slipway/scan-ignore under the root open at
 * rootfd: the tree is someone else's, so neither name may be a symbolic link
 * (out of the tree) and the file must be a regular one (not a FIFO that
 * blocks, nor a device that never ends). None there: 0 and *out NULL. */
static int load_default_ignore(int rootfd, const char *name, struct scan_ignore **out,
                               struct sw_err *err)
{
    struct stat st;
    int rc = 0, fd = -1;
    int dfd = openat(rootfd, ".slipway", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    *out = NULL;
    if (dfd < 0 && errno == ELOOP)
        return sw_err_set(err, SCAN_EIGNORE, "%s: .slipway is a symbolic link, not followed", name);
    if (dfd < 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : sw_err_sys(err, errno, "%s", name);
    fd = openat(dfd, "scan-ignore", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            rc = sw_err_set(err, SCAN_EIGNORE, "%s: a symbolic link, not followed", name);
        else if (errno != ENOENT)
            rc = sw_err_sys(err, errno, "%s", name);
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        rc = sw_err_sys(err, errno, "%s", name);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = sw_err_set(err, SCAN_EIGNORE, "%s: not a regular file", name);
        goto out;
    }
    rc = scan_ignore_read_fd(fd, name, out, err);
out:
    if (fd >= 0)
        close(fd);
    close(dfd);
    return rc;
}

int scan_tree(const char *root, const struct scan_opts *opts, struct scan_report **out,
              struct sw_err *err)
{
    struct walk w = {.rep = scan_report_new()};
    struct scan_ignore *own = NULL;
    struct buf prefix = BUF_INIT;
    struct stat st;
    char *def = NULL;
    int rc = 0, fd = -1;

    *out = w.rep;
    if (opts)
        w.opts = *opts;
    w.max = w.opts.max_file_bytes ? w.opts.max_file_bytes : SCAN_MAX_FILE_BYTES;
    w.opts.max_file_bytes = w.max;
    if (stat(root, &st) != 0) {
        rc = sw_err_sys(err, errno, "%s", root);
        goto out;
    }
    if (!w.opts.ignore && w.opts.ignore_file) {
        if ((rc = scan_ignore_load(w.opts.ignore_file, &own, err)))
            goto out;
    }
    w.buf = xmalloc(w.max + 1);
    if (S_ISDIR(st.st_mode)) {
        if ((fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
            rc = sw_err_sys(err, errno, "%s", root);
            goto out;
        }
        if (!w.opts.ignore && !own) {
            def = path_join(root, ".slipway/scan-ignore");
            if ((rc = load_default_ignore(fd, def, &own, err))) {
                close(fd);
                goto out;
            }
        }
        if (own)
            w.opts.ignore = own;
        rc = walk_dir(&w, fd, &prefix, 0, err);
    } else if (S_ISREG(st.st_mode)) {
        if (own)
            w.opts.ignore = own;
        if ((fd = open(root, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
            rc = sw_err_sys(err, errno, "%s", root);
            goto out;
        }
        rc = scan_fd(&w, fd, root, err);
        close(fd);
    } else {
        rc = sw_err_set(err, SW_EINVAL, "%s: not a file or directory", root);
    }
out:
    buf_free(&prefix);
    free(def);
    free(w.buf);
    scan_ignore_free(own);
    return rc;
}
