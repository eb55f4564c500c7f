/*
 * Artifacts: the files a job hands to the later jobs of its run, and to people
 * (`slipway run download`), as actions/upload-artifact and
 * actions/download-artifact do on GitHub.
 *
 * The one idea: an artifact is a small release. Its file bodies are blobs of
 * the store's one content-addressed space (release.h's blob keys, so a body
 * both deployed and uploaded is stored once), put before the manifest that
 * names them; the manifest (runs/<run>/artifacts/<name>/manifest.json) is
 * written create-only, last, so a manifest that exists is complete and two
 * uploads of one name cannot both win. Reading goes the other way, and treats
 * everything as hostile: the manifest is validated whole before a byte is
 * written, every body is hashed on its way to disk, and files are created
 * through directory descriptors opened without following links, so no
 * manifest can make a download write outside the directory it was given.
 * gc (pipeline_artifact_gc) reads the manifests for deploy's gc, which may
 * not: past retention they go, else their blobs are roots, and one it cannot
 * read means no blob may go.
 */
#include "pipeline/artifact_internal.h"
#include "release/release.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SMALL_BODY (8u << 20) /* bodies up to this are stored from memory */
#define MAX_DEPTH 256         /* directories below a search path */
#define MAX_PATTERNS 1000     /* lines of `path` */
#define TOTAL_MAX (1ULL << 50)

/* ---- names and keys ---------------------------------------------------------------------- */

static char *esc(const char *s)
{
    struct buf b = BUF_INIT;
    buf_add_escaped(&b, s);
    return buf_detach(&b, NULL);
}

int pipeline_artifact_name_check(const char *name, struct sw_err *err)
{
    static const char forbidden[] = "\":<>|*?\\/\r\n";
    size_t n = strlen(name);
    int rc = 0;
    char *e = esc(name);

    if (n == 0)
        rc = sw_err_set(err, SW_EINVAL, "The artifact name is empty");
    else if (strpbrk(name, forbidden)) {
        char c = *strpbrk(name, forbidden);
        rc = sw_err_set(err, SW_EINVAL,
                        "The artifact name is not valid: %s. Contains the following character: %s "
                        "(invalid characters include: \" : < > | * ? \\ / CR LF)",
                        e,
                        c == '\r'   ? "Carriage return \\r"
                        : c == '\n' ? "Line feed \\n"
                        : c == '"'  ? "Double quote \""
                        : c == ':'  ? "Colon :"
                        : c == '<'  ? "Less than <"
                        : c == '>'  ? "Greater than >"
                        : c == '|'  ? "Vertical bar |"
                        : c == '*'  ? "Asterisk *"
                        : c == '?'  ? "Question mark ?"
                        : c == '\\' ? "Backslash \\"
                                    : "Forward slash /");
    } else if (n > PIPELINE_ARTIFACT_NAME_MAX)
        rc = sw_err_set(err, SW_EINVAL, "The artifact name is longer than %d bytes: %s",
                        PIPELINE_ARTIFACT_NAME_MAX, e);
    else if (!utf8_valid(name, 1))
        rc = sw_err_set(err, SW_EINVAL, "The artifact name is not printable UTF-8: %s", e);
    else if (!strcmp(name, ".") || !strcmp(name, ".."))
        rc = sw_err_set(err, SW_EINVAL, "The artifact name may not be '%s'", name);
    free(e);
    return rc;
}

static int plain_byte(unsigned char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || (c == '.' && !first);
}

/* The key component of name: the store allows printable ASCII only, and no
 * component starting with '.', where GitHub allows any character but a few. */
static void name_component(struct buf *b, const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (plain_byte(*p, p == (const unsigned char *)name))
            buf_add(b, p, 1);
        else
            buf_addf(b, "%%%02X", *p);
    }
}

char *pipeline_artifact_key(const char *run_id, const char *name)
{
    struct buf b = BUF_INIT;
    buf_addf(&b, "runs/%s/artifacts/", run_id);
    name_component(&b, name);
    buf_adds(&b, "/manifest.json");
    return buf_detach(&b, NULL);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The name a key component encodes, or NULL when it is not one
 * name_component writes (the canonical form only: one name, one key). */
static char *name_decode(const char *comp, size_t len)
{
    struct buf b = BUF_INIT, again = BUF_INIT;
    char *out = NULL;
    for (size_t i = 0; i < len; i++) {
        if (comp[i] == '%') {
            int hi = i + 2 < len ? hexval(comp[i + 1]) : -1,
                lo = hi >= 0 ? hexval(comp[i + 2]) : -1;
            if (lo < 0 || hi * 16 + lo == 0)
                goto out;
            char c = (char)(hi * 16 + lo);
            buf_add(&b, &c, 1);
            i += 2;
        } else
            buf_add(&b, comp + i, 1);
    }
    if (!b.len || pipeline_artifact_name_check(b.data, NULL) != 0)
        goto out;
    name_component(&again, b.data);
    if (again.len == len && memcmp(again.data, comp, len) == 0)
        out = buf_detach(&b, NULL);
out:
    buf_free(&b);
    buf_free(&again);
    return out;
}

/* ---- manifests ------------------------------------------------------------------------------ */

void pipeline_artifact_free(struct pipeline_artifact *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nfiles; i++)
        free(a->files[i].path);
    free(a->files);
    free(a->name);
    free(a->job);
    free(a);
}

int artifact_path_check(const char *rel, struct sw_err *err)
{
    static const char forbidden[] = "\":<>|*?\r\n";
    char *e = esc(rel);
    int rc = 0;
    if (strpbrk(rel, forbidden))
        rc = sw_err_set(err, SW_EINVAL,
                        "the path %s holds a character GitHub does not allow in artifact "
                        "paths (\" : < > | * ? CR LF)",
                        e);
    else if (!release_path_valid(rel))
        rc = sw_err_set(err, SW_EINVAL,
                        "the path %s is not a relative path in normal form (no '..', '.', "
                        "empty segment, backslash or leading '/'; printable UTF-8, at most %d "
                        "bytes)",
                        e, RELEASE_PATH_MAX);
    free(e);
    return rc;
}

static int job_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 100 ||
        !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!plain_byte((unsigned char)s[i], 1))
            return 0;
    return 1;
}

int pipeline_artifact_parse(const char *key, const char *run_id, const char *data, size_t len,
                            struct pipeline_artifact **out, struct sw_err *err)
{
    json_t *doc = NULL;
    struct json_fields f = JSON_FIELDS_INIT(key);
    struct pipeline_artifact *a = xcalloc(1, sizeof(*a));
    char *want = NULL, *e = NULL;
    int rc;

    if (len > PIPELINE_ARTIFACT_DOC_MAX) {
        rc = sw_err_set(err, SW_EINVAL, "%s: larger than %u bytes", key, PIPELINE_ARTIFACT_DOC_MAX);
        goto out;
    }
    if ((rc = json_doc_parse(key, data, len, &doc, err)) < 0)
        goto out;
    if (!json_is_object(doc)) {
        rc = sw_err_set(err, SW_EINVAL, "%s: not a JSON object", key);
        goto out;
    }
    if (json_field_int(&f, doc, "format", 1, 1, JSON_FIELD_REQUIRED) != 1)
        json_field_bad(&f, "format", "is not 1");
    const char *name = json_string_value(json_object_get(doc, "name"));
    const char *run = json_string_value(json_object_get(doc, "run"));
    a->job = json_field_str(&f, doc, "job", 100, 0);
    a->created_ms = json_field_time(&f, doc, "created_at", JSON_FIELD_REQUIRED);
    a->retention_days = (int)json_field_int(&f, doc, "retention_days", 1,
                                            PIPELINE_ARTIFACT_RETENTION_MAX, JSON_FIELD_REQUIRED);
    int64_t bytes = json_field_int(&f, doc, "bytes", 0, (int64_t)TOTAL_MAX, JSON_FIELD_REQUIRED);
    if (f.bad) {
        rc = json_fields_err(&f, err);
        goto out;
    }
    if (!name || (rc = pipeline_artifact_name_check(name, err)) < 0) {
        rc = name ? sw_err_prefix(err, "%s: name: ", key)
                  : sw_err_set(err, SW_EINVAL, "%s: name: missing or not a string", key);
        goto out;
    }
    if (!run || !run_id || !pipeline_run_id_valid(run_id) || strcmp(run, run_id) != 0) {
        rc = sw_err_set(err, SW_EINVAL, "%s: run: not the run it is stored under", key);
        goto out;
    }
    want = pipeline_artifact_key(run_id, name);
    if (strcmp(want, key) != 0) {
        e = esc(name);
        rc = sw_err_set(err, SW_EINVAL, "%s: name: %s is not the artifact stored under this key",
                        key, e);
        goto out;
    }
    if (a->job && !job_id_ok(a->job)) {
        rc = sw_err_set(err, SW_EINVAL, "%s: job: not a job id", key);
        goto out;
    }
    a->name = xstrdup(name);
    snprintf(a->run, sizeof(a->run), "%s", run_id);
    json_t *files = json_object_get(doc, "files");
    if (!json_is_array(files) || json_array_size(files) > PIPELINE_ARTIFACT_FILES_MAX) {
        rc = sw_err_set(err, SW_EINVAL, "%s: files: not a list of at most %d files", key,
                        PIPELINE_ARTIFACT_FILES_MAX);
        goto out;
    }
    a->files = xcalloc(json_array_size(files) + 1, sizeof(*a->files));
    uint64_t total = 0;
    for (size_t i = 0; i < json_array_size(files); i++) {
        json_t *x = json_array_get(files, i);
        const char *path = json_string_value(json_object_get(x, "path"));
        const char *blob = json_string_value(json_object_get(x, "blob"));
        json_t *size = json_object_get(x, "size"), *mode = json_object_get(x, "mode");
        struct sw_err perr = {0};
        if (!json_is_object(x) || !path || !blob || !json_is_integer(size) ||
            !json_is_integer(mode)) {
            rc = sw_err_set(err, SW_EINVAL, "%s: files[%zu]: needs path, size, mode and blob", key,
                            i);
            goto out;
        }
        if (artifact_path_check(path, &perr) < 0) {
            rc = sw_err_set(err, SW_EINVAL, "%s: files[%zu]: %s", key, i, perr.msg);
            goto out;
        }
        if (i > 0 && strcmp(a->files[i - 1].path, path) >= 0) {
            rc = sw_err_set(err, SW_EINVAL, "%s: files[%zu]: paths are not sorted and unique", key,
                            i);
            goto out;
        }
        if (!hex_lower_valid(blob, SHA256_HEX_LEN)) {
            rc = sw_err_set(err, SW_EINVAL, "%s: files[%zu]: blob is not 64 lowercase hex digits",
                            key, i);
            goto out;
        }
        if (json_integer_value(size) < 0 || json_integer_value(size) > RELEASE_FILE_SIZE_MAX ||
            json_integer_value(mode) < 0 || json_integer_value(mode) > 0777) {
            rc = sw_err_set(err, SW_EINVAL, "%s: files[%zu]: size or mode out of bounds", key, i);
            goto out;
        }
        struct pipeline_artifact_file *af = &a->files[a->nfiles++];
        af->path = xstrdup(path);
        af->size = (uint64_t)json_integer_value(size);
        af->mode = (unsigned)json_integer_value(mode);
        memcpy(af->blob, blob, SHA256_HEX_LEN + 1);
        total += af->size;
        if (total > TOTAL_MAX) {
            rc = sw_err_set(err, SW_EINVAL, "%s: files: too many bytes in all", key);
            goto out;
        }
    }
    if ((uint64_t)bytes != total) {
        rc = sw_err_set(err, SW_EINVAL, "%s: bytes: not the sum of the files' sizes", key);
        goto out;
    }
    a->bytes = total;
    *out = a;
    a = NULL;
    rc = 0;
out:
    pipeline_artifact_free(a);
    json_decref(doc);
    free(want);
    free(e);
    return rc;
}

char *pipeline_artifact_dump(const struct pipeline_artifact *a, size_t *len)
{
    char ts[40];
    json_t *files = json_array();
    for (size_t i = 0; i < a->nfiles; i++) {
        const struct pipeline_artifact_file *f = &a->files[i];
        json_t *p = json_string(f->path);
        if (!p) {
            json_decref(files);
            return NULL;
        }
        json_array_append_new(files, json_pack("{s:o, s:I, s:i, s:s}", "path", p, "size",
                                               (json_int_t)f->size, "mode", (int)f->mode, "blob",
                                               f->blob));
    }
    time_format_iso(a->created_ms, ts, sizeof(ts));
    json_t *doc =
        json_pack("{s:i, s:s?, s:s, s:s?, s:s, s:i, s:I, s:o}", "format", 1, "name", a->name, "run",
                  a->run, "job", a->job, "created_at", ts, "retention_days", a->retention_days,
                  "bytes", (json_int_t)a->bytes, "files", files);
    if (!doc || !json_object_get(doc, "name"))
        goto fail;
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (s && len)
        *len = strlen(s);
    return s;
fail:
    json_decref(doc);
    return NULL;
}

/* ---- reading from the store ---------------------------------------------------------------- */

static int collect(void *arg, const void *data, size_t len, struct sw_err *err)
{
    (void)err;
    buf_add(arg, data, len);
    return 0;
}

int pipeline_artifact_load(struct store *st, const char *run_id, const char *name,
                           struct pipeline_artifact **out, struct sw_err *err)
{
    struct buf b = BUF_INIT;
    char etag[SHA256_HEX_LEN + 1];
    uint64_t size = 0;
    char *key = NULL;
    int rc;

    if (!pipeline_run_id_valid(run_id))
        return sw_err_set(err, SW_EINVAL, "'%s' is not a run id", run_id);
    if ((rc = pipeline_artifact_name_check(name, err)) < 0)
        return rc;
    key = pipeline_artifact_key(run_id, name);
    rc = store_get_stream(st, key, PIPELINE_ARTIFACT_DOC_MAX, collect, &b, etag, &size, err);
    if (rc == STORE_ETOOBIG)
        rc = sw_err_set(err, SW_EINVAL, "%s: larger than %u bytes", key, PIPELINE_ARTIFACT_DOC_MAX);
    else if (rc == SW_ENOTFOUND) {
        char *e = esc(name);
        rc = sw_err_set(err, SW_ENOTFOUND, "Artifact not found for name: %s (run %s)", e, run_id);
        free(e);
    }
    if (rc == 0 &&
        (rc = pipeline_artifact_parse(key, run_id, b.data ? b.data : "", b.len, out, err)) == 0)
        memcpy((*out)->id, etag, sizeof(etag));
    buf_free(&b);
    free(key);
    return rc;
}

void pipeline_artifact_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int pipeline_artifact_names(struct store *st, const char *run_id, char ***names, size_t *n,
                            struct sw_err *err)
{
    struct store_list l = {0};
    char *prefix = NULL, *after = NULL;
    char **v = NULL;
    size_t nv = 0;
    int rc;

    *names = NULL;
    *n = 0;
    if (!pipeline_run_id_valid(run_id))
        return sw_err_set(err, SW_EINVAL, "'%s' is not a run id", run_id);
    prefix = xasprintf("runs/%s/artifacts/", run_id);
    for (;;) {
        if ((rc = store_list(st, prefix, after, 1000, &l, err)) < 0)
            goto out;
        for (size_t i = 0; i < l.n; i++) {
            const char *rest = l.keys[i] + strlen(prefix);
            const char *slash = strchr(rest, '/');
            char *name = slash && strcmp(slash, "/manifest.json") == 0
                             ? name_decode(rest, (size_t)(slash - rest))
                             : NULL;
            if (!name) {
                char *e = esc(l.keys[i]);
                rc = sw_err_set(err, SW_EINVAL, "%s: not the key of an artifact's manifest", e);
                free(e);
                goto out;
            }
            if (nv == PIPELINE_ARTIFACT_MAX) {
                free(name);
                rc = sw_err_set(err, SW_EINVAL, "run %s has more than %d artifacts", run_id,
                                PIPELINE_ARTIFACT_MAX);
                goto out;
            }
            v = xrealloc(v, (nv + 1) * sizeof(*v));
            v[nv++] = name;
        }
        if (!l.truncated || !l.n)
            break;
        free(after);
        after = xstrdup(l.keys[l.n - 1]);
        store_list_free(&l);
        memset(&l, 0, sizeof(l));
    }
    if (nv)
        qsort(v, nv, sizeof(*v), cmp_str);
    *names = v;
    *n = nv;
    v = NULL;
    nv = 0;
    rc = 0;
out:
    store_list_free(&l);
    pipeline_artifact_names_free(v, nv);
    free(prefix);
    free(after);
    return rc;
}

/* ---- writing files below a directory ------------------------------------------------------ */

/* Opens (making it when missing) the directory rel below dirfd, one segment
 * at a time and never through a symbolic link: a link planted in the target
 * (by a hostile manifest's earlier file, or by anyone) cannot lead outside.
 * *fd is the directory (dirfd itself, dup'd, for ""). */
static int open_below(int dirfd, const char *shown, const char *rel, size_t rel_len, int *fd,
                      struct sw_err *err)
{
    int cur = dup(dirfd);
    if (cur < 0)
        return sw_err_sys(err, errno, "%s", shown);
    size_t i = 0;
    while (i < rel_len) {
        size_t j = i;
        while (j < rel_len && rel[j] != '/')
            j++;
        char *seg = xstrndup(rel + i, j - i);
        if (mkdirat(cur, seg, 0755) < 0 && errno != EEXIST) {
            int e = errno;
            free(seg);
            close(cur);
            return sw_err_sys(err, e, "%s/%.*s", shown, (int)j, rel);
        }
        int next = openat(cur, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        free(seg);
        close(cur);
        if (next < 0) {
            if (e == ELOOP || e == ENOTDIR)
                return sw_err_set(err, SW_EINVAL,
                                  "%s/%.*s: not a directory (or a symbolic link): refusing to "
                                  "write through it",
                                  shown, (int)j, rel);
            return sw_err_sys(err, e, "%s/%.*s", shown, (int)j, rel);
        }
        cur = next;
        i = j + 1;
    }
    *fd = cur;
    return 0;
}

struct fsink {
    int fd;
    const _Atomic int *cancel;
};

static int write_piece(void *arg, const void *data, size_t len, struct sw_err *err)
{
    struct fsink *s = arg;
    if (s->cancel && atomic_load(s->cancel))
        return sw_err_set(err, SW_EIO, "cancelled");
    int rc = fd_write_all(s->fd, data, len);
    return rc < 0 ? sw_err_sys(err, -rc, "write") : 0;
}

/* Writes file f of a below dirfd (shown as shown): into a temporary name in
 * its directory, checked against its blob, then renamed over the path (which
 * replaces a link there rather than following it). */
static int extract_file(struct store *st, int dirfd, const char *shown,
                        const struct pipeline_artifact *a, const struct pipeline_artifact_file *f,
                        const _Atomic int *cancel, struct sw_err *err)
{
    static _Atomic unsigned counter;
    const char *slash = strrchr(f->path, '/');
    const char *base = slash ? slash + 1 : f->path;
    char tmp[64], key[128], etag[SHA256_HEX_LEN + 1];
    uint64_t got = 0;
    int dfd = -1, fd = -1, rc;

    if ((rc = open_below(dirfd, shown, f->path, slash ? (size_t)(slash - f->path) : 0, &dfd, err)) <
        0)
        return rc;
    snprintf(tmp, sizeof(tmp), ".slipway-download-%ld-%u", (long)getpid(),
             atomic_fetch_add(&counter, 1));
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                (f->mode & 0100) ? 0755 : 0644);
    if (fd < 0) {
        rc = sw_err_sys(err, errno, "%s/%s", shown, f->path);
        tmp[0] = '\0'; /* not ours: never unlinked */
        goto out;
    }
    release_blob_key(f->blob, key, sizeof(key));
    struct fsink s = {fd, cancel};
    rc = store_get_stream(st, key, f->size, write_piece, &s, etag, &got, err);
    if (rc == STORE_ETOOBIG || (rc == 0 && got != f->size))
        rc = sw_err_set(err, SW_EINVAL, "artifact %s: %s: blob %s is not %llu bytes long", a->name,
                        f->path, f->blob, (unsigned long long)f->size);
    else if (rc == 0 && strcmp(etag, f->blob) != 0)
        rc =
            sw_err_set(err, SW_EINVAL, "artifact %s: %s: blob %s is damaged (its bytes hash to %s)",
                       a->name, f->path, f->blob, etag);
    else if (rc == SW_ENOTFOUND)
        rc = sw_err_set(err, SW_ENOTFOUND, "artifact %s: %s: blob %s is missing from the store",
                        a->name, f->path, f->blob);
    if (rc < 0)
        goto out;
    int c = close(fd);
    fd = -1;
    if (c < 0 && errno != EINTR) {
        rc = sw_err_sys(err, errno, "%s/%s", shown, f->path);
        goto out;
    }
    if (renameat(dfd, tmp, dfd, base) < 0) {
        rc = sw_err_sys(err, errno, "%s/%s", shown, f->path);
        goto out;
    }
    tmp[0] = '\0';
out:
    if (fd >= 0)
        close(fd);
    if (rc < 0 && tmp[0] && dfd >= 0)
        (void)unlinkat(dfd, tmp, 0);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

static int selected(const char *name, const struct pipeline_artifact_fetch *f)
{
    for (size_t i = 0; i < f->nnames; i++)
        if (!strcmp(f->names[i], name))
            return 1;
    for (size_t i = 0; i < f->npatterns; i++)
        if (fnmatch(f->patterns[i], name, 0) == 0)
            return 1;
    return !f->nnames && !f->npatterns;
}

int pipeline_artifact_download(struct store *st, const struct pipeline_artifact_fetch *f,
                               struct pipeline_artifact_fetched *res, struct sw_err *err)
{
    struct pipeline_artifact **arts = NULL;
    size_t narts = 0;
    char **names = NULL;
    size_t nnames = 0;
    int rootfd = -1, rc;
    struct pipeline_artifact_fetched dummy;

    if (!res)
        res = &dummy;
    memset(res, 0, sizeof(*res));
    for (size_t i = 0; i < f->nnames; i++)
        if ((rc = pipeline_artifact_name_check(f->names[i], err)) < 0)
            return rc;
    /* Named artifacts are read by their keys; the run's listing only when
     * patterns or "all" need it, so a name needs nothing else to be sane. */
    if (f->npatterns || !f->nnames) {
        if ((rc = pipeline_artifact_names(st, f->run_id, &names, &nnames, err)) < 0)
            goto out;
    } else if (!pipeline_run_id_valid(f->run_id)) {
        rc = sw_err_set(err, SW_EINVAL, "'%s' is not a run id", f->run_id);
        goto out;
    }
    arts = xcalloc(f->nnames + nnames + 1, sizeof(*arts));
    for (size_t i = 0; i < f->nnames; i++) {
        int seen = 0;
        for (size_t k = 0; k < i; k++)
            seen |= !strcmp(f->names[k], f->names[i]);
        if (!seen && (rc = pipeline_artifact_load(st, f->run_id, f->names[i], &arts[narts++], err)))
            goto out;
    }
    for (size_t i = 0; i < nnames; i++) {
        int seen = 0;
        for (size_t k = 0; k < f->nnames; k++)
            seen |= !strcmp(f->names[k], names[i]);
        if (!seen && selected(names[i], f) &&
            (rc = pipeline_artifact_load(st, f->run_id, names[i], &arts[narts++], err)))
            goto out;
    }
    if (!narts && (f->nnames || f->npatterns)) {
        rc = sw_err_set(err, SW_ENOTFOUND,
                        "no artifact of run %s matches the names or patterns given", f->run_id);
        goto out;
    }
    if (!narts) {
        rc = 0;
        goto out;
    }
    if ((rc = fs_mkdir_p(f->dir, err)) < 0)
        goto out;
    rootfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        rc = sw_err_sys(err, errno, "%s", f->dir);
        goto out;
    }
    int isolate = !f->merge && !(f->nnames == 1 && f->npatterns == 0);
    for (size_t i = 0; i < narts; i++) {
        const struct pipeline_artifact *a = arts[i];
        int dfd = -1;
        char *shown = isolate ? path_join(f->dir, a->name) : xstrdup(f->dir);
        rc = isolate ? open_below(rootfd, f->dir, a->name, strlen(a->name), &dfd, err)
                     : open_below(rootfd, f->dir, "", 0, &dfd, err);
        if (rc == 0 && f->on_artifact)
            f->on_artifact(f->ctx, a, shown);
        for (size_t k = 0; rc == 0 && k < a->nfiles; k++)
            rc = extract_file(st, dfd, shown, a, &a->files[k], f->cancel, err);
        if (dfd >= 0)
            close(dfd);
        free(shown);
        if (rc < 0)
            goto out;
        res->artifacts++;
        res->files += a->nfiles;
        res->bytes += a->bytes;
    }
    rc = 0;
out:
    if (rootfd >= 0)
        close(rootfd);
    for (size_t i = 0; arts && i < f->nnames + nnames; i++)
        pipeline_artifact_free(arts[i]);
    free(arts);
    pipeline_artifact_names_free(names, nnames);
    return rc;
}

/* ---- the search for upload-artifact's `path` --------------------------------------------- */

char *artifact_path_resolve(const char *base, const char *path)
{
    struct buf in = BUF_INIT, out = BUF_INIT;
    const char *home = getenv("HOME");

    if (path[0] == '~' && (path[1] == '/' || path[1] == '\0') && home && home[0] == '/') {
        buf_adds(&in, home);
        buf_adds(&in, "/");
        buf_adds(&in, path + 1);
    } else if (path[0] != '/') {
        if (base[0] != '/') {
            char *cwd = getcwd(NULL, 0);
            buf_adds(&in, cwd ? cwd : "");
            buf_adds(&in, "/");
            free(cwd);
        }
        buf_adds(&in, base);
        buf_adds(&in, "/");
        buf_adds(&in, path);
    } else
        buf_adds(&in, path);
    /* lexically, as path.resolve does: ".." removes the segment before it */
    for (const char *p = in.data; *p;) {
        while (*p == '/')
            p++;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.')) {
            /* nothing */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (out.len && out.data[out.len - 1] != '/')
                out.len--;
            if (out.len)
                out.len--;
            if (out.data)
                out.data[out.len] = '\0';
        } else {
            buf_add(&out, "/", 1);
            buf_add(&out, p, n);
        }
        p += n;
    }
    if (!out.len)
        buf_add(&out, "/", 1);
    buf_free(&in);
    return buf_detach(&out, NULL);
}

/* Splits an absolute normalised path into its segments (pointers into *copy). */
static size_t split(const char *path, char **copy, char ***segs)
{
    size_t n = 0;
    *copy = xstrdup(path);
    *segs = xcalloc(strlen(path) + 1, sizeof(char *));
    for (char *p = *copy; *p;) {
        while (*p == '/')
            *p++ = '\0';
        if (!*p)
            break;
        (*segs)[n++] = p;
        while (*p && *p != '/')
            p++;
    }
    return n;
}

static int is_glob_segment(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

int artifact_glob_match(const char *pattern, int dir_only, const char *path)
{
    char *pc, *xc, **ps, **xs;
    size_t np = split(pattern, &pc, &ps), nx = split(path, &xc, &xs);
    /* dp[i][j]: the first i segments of the pattern match the first j of the
     * path; `**` takes zero or more segments. Quadratic at worst, never
     * exponential whatever the pattern. */
    unsigned char *dp = xcalloc((np + 1) * (nx + 1), 1);
#define DP(i, j) dp[(i) * (nx + 1) + (j)]
    DP(0, 0) = 1;
    for (size_t i = 1; i <= np; i++) {
        int globstar = strcmp(ps[i - 1], "**") == 0;
        for (size_t j = 0; j <= nx; j++) {
            if (globstar)
                DP(i, j) = DP(i - 1, j) || (j > 0 && DP(i, j - 1));
            else
                DP(i, j) = j > 0 && DP(i - 1, j - 1) && fnmatch(ps[i - 1], xs[j - 1], 0) == 0;
        }
    }
    /* the path itself, or (implicit descendants) one of its directories */
    int m = 0;
    for (size_t j = 0; j <= nx && !m; j++)
        m = DP(np, j) && (j < nx || !dir_only);
#undef DP
    free(dp);
    free(pc);
    free(ps);
    free(xc);
    free(xs);
    return m;
}

char *artifact_lca(char *const *paths, size_t n)
{
    if (!n)
        return xstrdup("/");
    char *c0, **s0;
    size_t common = split(paths[0], &c0, &s0);
    for (size_t i = 1; i < n; i++) {
        char *ci, **si;
        size_t ni = split(paths[i], &ci, &si), k = 0;
        while (k < common && k < ni && strcmp(s0[k], si[k]) == 0)
            k++;
        common = k;
        free(ci);
        free(si);
    }
    struct buf b = BUF_INIT;
    for (size_t k = 0; k < common; k++) {
        buf_add(&b, "/", 1);
        buf_adds(&b, s0[k]);
    }
    if (!b.len)
        buf_add(&b, "/", 1);
    free(c0);
    free(s0);
    return buf_detach(&b, NULL);
}

struct pattern {
    char *abs;
    int negate, dir_only;
};

struct walk {
    char **files;
    size_t n, cap, max;
    int hidden;
    struct {
        dev_t dev;
        ino_t ino;
    } stack[MAX_DEPTH + 1];
    size_t depth;
    struct sw_err *err;
};

static int add_file(struct walk *w, const char *path)
{
    if (w->n == w->max)
        return sw_err_set(w->err, SW_EINVAL, "more than %zu files match the path", w->max);
    if (w->n == w->cap)
        w->files = xrealloc(w->files, (w->cap = w->cap ? w->cap * 2 : 64) * sizeof(char *));
    w->files[w->n++] = xstrdup(path);
    return 0;
}

/* Adds the regular files at and below path (following links; a directory that
 * is its own ancestor is not entered twice). */
static int walk(struct walk *w, const char *path, int top)
{
    struct stat sb;
    if (stat(path, &sb) < 0)
        return 0; /* missing, or a broken link: nothing, as @actions/glob omits it */
    if (S_ISREG(sb.st_mode))
        return add_file(w, path);
    if (!S_ISDIR(sb.st_mode))
        return 0;
    for (size_t i = 0; i < w->depth; i++)
        if (w->stack[i].dev == sb.st_dev && w->stack[i].ino == sb.st_ino)
            return 0;
    if (w->depth == MAX_DEPTH)
        return sw_err_set(w->err, SW_EINVAL, "%s: directories nested deeper than %d", path,
                          MAX_DEPTH);
    DIR *d = opendir(path);
    if (!d)
        return top ? sw_err_sys(w->err, errno, "%s", path) : 0;
    w->stack[w->depth].dev = sb.st_dev;
    w->stack[w->depth].ino = sb.st_ino;
    w->depth++;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                rc = sw_err_sys(w->err, errno, "%s", path);
            break;
        }
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (!w->hidden && de->d_name[0] == '.')
            continue;
        char *child = path_join(path, de->d_name);
        rc = walk(w, child, 0);
        free(child);
        if (rc < 0)
            break;
    }
    w->depth--;
    closedir(d);
    return rc;
}

void artifact_search_free(struct artifact_search *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->files[i]);
        free(s->rel[i]);
    }
    for (size_t i = 0; i < s->nsearch; i++)
        free(s->search_paths[i]);
    free(s->files);
    free(s->rel);
    free(s->search_paths);
    free(s->root);
    memset(s, 0, sizeof(*s));
}

/* The literal directories before a pattern's first glob segment. */
static char *search_path(const char *abs)
{
    char *c, **segs;
    size_t n = split(abs, &c, &segs);
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < n && !is_glob_segment(segs[i]); i++) {
        buf_add(&b, "/", 1);
        buf_adds(&b, segs[i]);
    }
    if (!b.len)
        buf_add(&b, "/", 1);
    free(c);
    free(segs);
    return buf_detach(&b, NULL);
}

static int under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (!strcmp(dir, "/"))
        return 1;
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static int cmp_len(const void *a, const void *b)
{
    size_t x = strlen(*(char *const *)a), y = strlen(*(char *const *)b);
    return x < y ? -1 : x > y ? 1 : strcmp(*(char *const *)a, *(char *const *)b);
}

struct relpair {
    char *abs, *rel;
};
static int cmp_rel(const void *a, const void *b)
{
    return strcmp(((const struct relpair *)a)->rel, ((const struct relpair *)b)->rel);
}

int artifact_search(const char *workspace, const char *paths_text, int include_hidden,
                    size_t max_files, struct artifact_search *out, struct sw_err *err)
{
    struct pattern *pats = NULL;
    size_t npats = 0;
    char **cands = NULL;
    size_t ncands = 0;
    struct walk *w = xcalloc(1, sizeof(*w));
    struct relpair *pairs = NULL;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    for (const char *p = paths_text; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char *line = xstrndup(p, n);
        p += n + (e ? 1 : 0);
        char *s = line, *t = line + strlen(line);
        while (*s == ' ' || *s == '\t' || *s == '\r')
            s++;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r'))
            *--t = '\0';
        if (!*s || *s == '#') {
            free(line);
            continue;
        }
        if (npats == MAX_PATTERNS) {
            free(line);
            rc = sw_err_set(err, SW_EINVAL, "path: more than %d patterns", MAX_PATTERNS);
            goto out;
        }
        pats = xrealloc(pats, (npats + 1) * sizeof(*pats));
        struct pattern *pt = &pats[npats++];
        pt->negate = 0;
        while (*s == '!') {
            pt->negate = !pt->negate;
            s++;
        }
        pt->dir_only = t > s && t[-1] == '/';
        pt->abs = artifact_path_resolve(workspace, s);
        free(line);
    }
    for (size_t i = 0; i < npats; i++)
        if (!pats[i].negate) {
            cands = xrealloc(cands, (ncands + 1) * sizeof(*cands));
            cands[ncands++] = search_path(pats[i].abs);
        }
    if (!ncands) {
        rc = sw_err_set(err, SW_EINVAL, "path: no pattern includes anything");
        goto out;
    }
    /* only the top-most search paths: one below another adds nothing */
    qsort(cands, ncands, sizeof(*cands), cmp_len);
    out->search_paths = xcalloc(ncands, sizeof(char *));
    for (size_t i = 0; i < ncands; i++) {
        int covered = 0;
        for (size_t k = 0; k < out->nsearch && !covered; k++)
            covered = under(cands[i], out->search_paths[k]);
        if (!covered)
            out->search_paths[out->nsearch++] = xstrdup(cands[i]);
    }
    w->max = max_files ? max_files : PIPELINE_ARTIFACT_FILES_MAX;
    w->hidden = include_hidden;
    w->err = err;
    for (size_t i = 0; i < out->nsearch; i++)
        if ((rc = walk(w, out->search_paths[i], 1)) < 0)
            goto out;
    /* keep what the last matching pattern includes */
    size_t kept = 0;
    for (size_t i = 0; i < w->n; i++) {
        int in = 0;
        for (size_t k = 0; k < npats; k++)
            if (artifact_glob_match(pats[k].abs, pats[k].dir_only, w->files[i]))
                in = !pats[k].negate;
        if (in)
            w->files[kept++] = w->files[i];
        else
            free(w->files[i]);
    }
    w->n = kept;
    if (out->nsearch > 1)
        out->root = artifact_lca(out->search_paths, out->nsearch);
    else if (w->n == 1 && strcmp(out->search_paths[0], w->files[0]) == 0) {
        /* one file named as such: stored without its directories */
        out->root = xstrdup(w->files[0]);
        char *slash = strrchr(out->root, '/');
        slash[slash == out->root ? 1 : 0] = '\0';
    } else
        out->root = xstrdup(out->search_paths[0]);
    pairs = xcalloc(w->n + 1, sizeof(*pairs));
    size_t rootlen = strcmp(out->root, "/") ? strlen(out->root) : 0;
    for (size_t i = 0; i < w->n; i++) {
        pairs[i].abs = w->files[i];
        pairs[i].rel = xstrdup(w->files[i] + rootlen + 1);
        w->files[i] = NULL;
    }
    size_t np = w->n;
    w->n = 0;
    if (np)
        qsort(pairs, np, sizeof(*pairs), cmp_rel);
    out->files = xcalloc(np + 1, sizeof(char *));
    out->rel = xcalloc(np + 1, sizeof(char *));
    for (size_t i = 0; i < np; i++) {
        if (out->n && !strcmp(out->rel[out->n - 1], pairs[i].rel)) {
            free(pairs[i].abs);
            free(pairs[i].rel);
            continue;
        }
        out->files[out->n] = pairs[i].abs;
        out->rel[out->n++] = pairs[i].rel;
    }
    for (size_t i = 0; i < out->n && rc == 0; i++) {
        struct sw_err perr = {0};
        if (artifact_path_check(out->rel[i], &perr) < 0) {
            char *e = esc(out->files[i]);
            rc = sw_err_set(err, SW_EINVAL, "%s: cannot be uploaded: %s", e, perr.msg);
            free(e);
        }
    }
out:
    for (size_t i = 0; i < npats; i++)
        free(pats[i].abs);
    free(pats);
    for (size_t i = 0; i < ncands; i++)
        free(cands[i]);
    free(cands);
    for (size_t i = 0; i < w->n; i++)
        free(w->files[i]);
    free(w->files);
    free(w);
    free(pairs);
    if (rc < 0)
        artifact_search_free(out);
    return rc;
}

/* ---- upload ------------------------------------------------------------------------------------
 */

static void say(const struct artifact_step *a, enum pipeline_step_log_kind kind, const char *fmt,
                ...) __attribute__((format(printf, 3, 4)));
static void say(const struct artifact_step *a, enum pipeline_step_log_kind kind, const char *fmt,
                ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    if (a->say)
        a->say(a->ctx, kind, b.data ? b.data : "");
    buf_free(&b);
}

static const char *with_str(const struct artifact_step *a, const char *key)
{
    const char *s = json_string_value(json_object_get(a->with, key));
    return s ? s : "";
}

/* A boolean input as @actions/core's getBooleanInput reads it. -1 when it is
 * neither (GitHub's YAML 1.2 core schema booleans). */
static int with_bool(const struct artifact_step *a, const char *key, int def)
{
    const char *s = with_str(a, key);
    if (!*s)
        return def;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return 1;
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return 0;
    return -1;
}

static int read_some(int fd, char *buf, size_t len, size_t *got)
{
    *got = 0;
    while (*got < len) {
        ssize_t n = read(fd, buf + *got, len - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return 0;
}

/* Stores the body of path as a blob: hex, size and mode of what was stored.
 * The body is hashed from a copy nobody else writes (memory, or a file in
 * temp_dir for large ones), never re-read from path after hashing: a file
 * changing meanwhile cannot put bytes under another body's name. */
static int put_body(struct store *st, const char *path, const char *temp_dir,
                    char hex[SHA256_HEX_LEN + 1], uint64_t *size, unsigned *mode,
                    struct sw_err *err)
{
    char key[128], etag[SHA256_HEX_LEN + 1], *tmp = NULL;
    char *mem = xmalloc(SMALL_BODY + 1);
    int fd = -1, tfd = -1, rc = 0;
    size_t got = 0;
    struct stat sb;
    struct sha256_ctx *h = sha256_new();

    /* O_NONBLOCK: a FIFO put where a file was found must not hang the job */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &sb) < 0) {
        rc = sw_err_sys(err, errno, "%s", path);
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = sw_err_set(err, SW_EINVAL, "%s: no longer a regular file", path);
        goto out;
    }
    *mode = (sb.st_mode & 0100) ? 0755 : 0644;
    if ((rc = read_some(fd, mem, SMALL_BODY + 1, &got)) < 0) {
        rc = sw_err_sys(err, -rc, "%s", path);
        goto out;
    }
    sha256_update(h, mem, got);
    *size = got;
    if (got > SMALL_BODY) {
        tmp = path_join(temp_dir, "slipway-upload-XXXXXX");
        tfd = mkostemp(tmp, O_CLOEXEC);
        if (tfd < 0) {
            rc = sw_err_sys(err, errno, "%s", tmp);
            free(tmp);
            tmp = NULL;
            goto out;
        }
        for (;;) {
            int wr = fd_write_all(tfd, mem, got);
            if (wr < 0) {
                rc = sw_err_sys(err, -wr, "%s", tmp);
                goto out;
            }
            if ((rc = read_some(fd, mem, SMALL_BODY, &got)) < 0) {
                rc = sw_err_sys(err, -rc, "%s", path);
                goto out;
            }
            if (!got)
                break;
            sha256_update(h, mem, got);
            *size += got;
        }
    }
    sha256_final_hex(h, hex);
    h = NULL;
    release_blob_key(hex, key, sizeof(key));
    /* present already: touched, so a gc running now sees it young (as release does) */
    if (store_touch(st, key, NULL) == 0)
        goto out;
    if (!tmp)
        rc = store_put(st, key, mem, *size, STORE_IF_ABSENT, etag, err);
    else
        rc = store_put_file(st, key, tmp, STORE_IF_ABSENT, etag, err);
    if (rc == SW_EEXIST)
        rc = 0;
    else if (rc == 0 && strcmp(etag, hex) != 0)
        rc = sw_err_set(err, SW_EIO, "%s: the store holds other bytes than were hashed", path);
out:
    if (h) {
        char ignore[SHA256_HEX_LEN + 1];
        sha256_final_hex(h, ignore);
    }
    if (fd >= 0)
        close(fd);
    if (tfd >= 0)
        close(tfd);
    if (tmp) {
        (void)unlink(tmp);
        free(tmp);
    }
    free(mem);
    return rc;
}

enum pipeline_step_outcome artifact_upload_step(const struct artifact_step *a, json_t *outputs)
{
    const char *name = with_str(a, "name"), *paths = with_str(a, "path");
    const char *nofiles = with_str(a, "if-no-files-found"), *ret = with_str(a, "retention-days");
    struct artifact_search s = {0};
    struct pipeline_artifact art = {0};
    struct sw_err err = {0};
    char *doc = NULL, *key = NULL;
    size_t len = 0;
    char etag[SHA256_HEX_LEN + 1];
    int hidden = with_bool(a, "include-hidden-files", 0), overwrite = with_bool(a, "overwrite", 0);
    enum pipeline_step_outcome oc = PIPELINE_STEP_FAILURE;

    if (!*name)
        name = "artifact";
    if (!*nofiles)
        nofiles = "warn";
    if (pipeline_artifact_name_check(name, &err) < 0)
        goto fail;
    if (strcmp(nofiles, "warn") && strcmp(nofiles, "error") && strcmp(nofiles, "ignore")) {
        sw_err_set(&err, SW_EINVAL,
                   "Unrecognized if-no-files-found input. Provided: %s. Available options: warn, "
                   "error, ignore",
                   nofiles);
        goto fail;
    }
    if (hidden < 0 || overwrite < 0) {
        sw_err_set(&err, SW_EINVAL,
                   "Input does not meet YAML 1.2 \"Core Schema\" specification: %s",
                   hidden < 0 ? "include-hidden-files" : "overwrite");
        goto fail;
    }
    art.retention_days = PIPELINE_ARTIFACT_RETENTION_MAX;
    if (*ret) {
        char *end;
        errno = 0;
        long d = strtol(ret, &end, 10);
        if (errno || *end || d < 0) {
            sw_err_set(&err, SW_EINVAL, "retention-days: expected a whole number, got '%s'", ret);
            goto fail;
        }
        if (d > PIPELINE_ARTIFACT_RETENTION_MAX)
            say(a, PIPELINE_LOG_WARNING,
                "Retention days cannot be greater than the maximum allowed retention set "
                "within the repository. Using %d instead.",
                PIPELINE_ARTIFACT_RETENTION_MAX);
        else if (d > 0)
            art.retention_days = (int)d;
    }
    if (!*paths) {
        sw_err_set(&err, SW_EINVAL, "Input required and not supplied: path");
        goto fail;
    }
    if (artifact_search(a->workspace, paths, hidden, 0, &s, &err) < 0)
        goto fail;
    if (!s.n) {
        char *e = esc(paths);
        if (!strcmp(nofiles, "error")) {
            sw_err_set(&err, SW_ENOTFOUND,
                       "No files were found with the provided path: %s. No artifacts will be "
                       "uploaded.",
                       e);
            free(e);
            goto fail;
        }
        say(a, !strcmp(nofiles, "warn") ? PIPELINE_LOG_WARNING : PIPELINE_LOG_OUTPUT,
            "No files were found with the provided path: %s. No artifacts will be uploaded.", e);
        free(e);
        oc = PIPELINE_STEP_SUCCESS;
        goto out;
    }
    say(a, PIPELINE_LOG_OUTPUT, "With the provided path, there will be %zu file%s uploaded", s.n,
        s.n == 1 ? "" : "s");
    say(a, PIPELINE_LOG_OUTPUT, "Root directory of the artifact: %s", s.root);
    art.name = (char *)name;
    art.job = a->job && job_id_ok(a->job) ? (char *)a->job : NULL;
    snprintf(art.run, sizeof(art.run), "%s", a->run_id);
    art.created_ms = time_now_ms();
    art.files = xcalloc(s.n, sizeof(*art.files));
    for (size_t i = 0; i < s.n; i++) {
        struct pipeline_artifact_file *f = &art.files[i];
        if (a->cancel && atomic_load(a->cancel)) {
            sw_err_set(&err, SW_EIO, "cancelled");
            goto fail;
        }
        if (put_body(a->st, s.files[i], a->temp_dir, f->blob, &f->size, &f->mode, &err) < 0)
            goto fail;
        f->path = s.rel[i];
        art.nfiles++;
        art.bytes += f->size;
    }
    if (!(doc = pipeline_artifact_dump(&art, &len))) {
        sw_err_set(&err, SW_EINVAL, "the artifact's manifest cannot be written (not UTF-8)");
        goto fail;
    }
    key = pipeline_artifact_key(a->run_id, name);
    int prc = store_put(a->st, key, doc, len, overwrite == 1 ? 0 : STORE_IF_ABSENT, etag, &err);
    if (prc == SW_EEXIST) {
        char *e = esc(name);
        sw_err_set(&err, SW_EEXIST,
                   "Failed to CreateArtifact: an artifact with this name already exists on the "
                   "workflow run: %s (set overwrite: true to replace it)",
                   e);
        free(e);
        goto fail;
    }
    if (prc < 0)
        goto fail;
    say(a, PIPELINE_LOG_OUTPUT,
        "Artifact %s has been successfully uploaded! Final size is %llu bytes. Artifact ID is %s",
        name, (unsigned long long)art.bytes, etag);
    json_object_set_new(outputs, "artifact-id", json_string(etag));
    json_object_set_new(outputs, "artifact-url", json_string(""));
    oc = PIPELINE_STEP_SUCCESS;
    goto out;
fail:
    say(a, PIPELINE_LOG_ERROR, "%s", err.msg);
out:
    free(art.files); /* paths and names are borrowed from s and with: */
    artifact_search_free(&s);
    free(doc);
    free(key);
    return oc;
}

/* ---- download ---------------------------------------------------------------------------------
 */

static void fetched(void *ctx, const struct pipeline_artifact *art, const char *where)
{
    const struct artifact_step *a = ctx;
    say(a, PIPELINE_LOG_OUTPUT, "Artifact %s (%zu file%s, %llu bytes) downloaded to %s", art->name,
        art->nfiles, art->nfiles == 1 ? "" : "s", (unsigned long long)art->bytes, where);
}

enum pipeline_step_outcome artifact_download_step(const struct artifact_step *a, json_t *outputs)
{
    const char *name = with_str(a, "name"), *path = with_str(a, "path");
    const char *pattern = with_str(a, "pattern"), *run = with_str(a, "run-id");
    struct pipeline_artifact_fetch f = {0};
    struct pipeline_artifact_fetched res = {0};
    struct sw_err err = {0};
    int merge = with_bool(a, "merge-multiple", 0);
    char *dir = artifact_path_resolve(a->workspace, *path ? path : ".");
    enum pipeline_step_outcome oc = PIPELINE_STEP_FAILURE;

    if (merge < 0) {
        sw_err_set(&err, SW_EINVAL,
                   "Input does not meet YAML 1.2 \"Core Schema\" specification: merge-multiple");
        goto fail;
    }
    if (*with_str(a, "artifact-ids")) {
        /* never silently widened to "every artifact", which no name means */
        sw_err_set(&err, SW_EINVAL,
                   "artifact-ids is not supported here: select by name or pattern");
        goto fail;
    }
    if (*run && !pipeline_run_id_valid(run)) {
        sw_err_set(&err, SW_EINVAL, "run-id: '%s' is not a run id", run);
        goto fail;
    }
    f.run_id = *run ? run : a->run_id;
    if (*name) {
        /* as download-artifact: a name wins over a pattern */
        if (*pattern)
            say(a, PIPELINE_LOG_OUTPUT, "name and pattern given: downloading by name");
        f.names = &name;
        f.nnames = 1;
    } else if (*pattern) {
        f.patterns = &pattern;
        f.npatterns = 1;
    }
    f.merge = merge;
    f.dir = dir;
    f.cancel = a->cancel;
    f.on_artifact = fetched;
    f.ctx = (void *)a;
    if (pipeline_artifact_download(a->st, &f, &res, &err) < 0) {
        sw_err_prefix(&err, "Unable to download artifact(s): ");
        goto fail;
    }
    if (!res.artifacts)
        say(a, PIPELINE_LOG_OUTPUT, "No artifacts found in run %s", f.run_id);
    say(a, PIPELINE_LOG_OUTPUT, "Total of %zu artifact(s) downloaded", res.artifacts);
    json_object_set_new(outputs, "download-path", json_string(dir));
    oc = PIPELINE_STEP_SUCCESS;
    goto out;
fail:
    say(a, PIPELINE_LOG_ERROR, "%s", err.msg);
out:
    free(dir);
    return oc;
}

/* ---- garbage collection ------------------------------------------------------------------- */

static void add_str(char ***v, size_t *n, size_t *cap, char *s)
{
    if (*n == *cap)
        *v = xrealloc(*v, (*cap = *cap ? *cap * 2 : 64) * sizeof(char *));
    (*v)[(*n)++] = s;
}

static void unreadable(struct pipeline_artifact_gc *g, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void unreadable(struct pipeline_artifact_gc *g, size_t *cap, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    add_str(&g->unreadable, &g->nunreadable, cap, buf_detach(&b, NULL));
}

static void keep_blobs(struct pipeline_artifact_gc *g, size_t *cap,
                       const struct pipeline_artifact *a)
{
    for (size_t i = 0; i < a->nfiles; i++)
        add_str(&g->blobs, &g->nblobs, cap, xstrdup(a->files[i].blob));
    g->kept++;
}

void pipeline_artifact_gc_free(struct pipeline_artifact_gc *g)
{
    for (size_t i = 0; i < g->nexpired; i++)
        free(g->expired[i].name);
    free(g->expired);
    for (size_t i = 0; i < g->nblobs; i++)
        free(g->blobs[i]);
    free(g->blobs);
    for (size_t i = 0; i < g->nunreadable; i++)
        free(g->unreadable[i]);
    free(g->unreadable);
    memset(g, 0, sizeof(*g));
}

/* One key under runs/: ignored unless it is below some run's artifacts/;
 * then it must be a manifest this module writes, which is read and judged.
 * What cannot be read or validated is kept and named (its bodies unknown);
 * only a failure of the store itself is an error. */
static int gc_one(struct store *st, const char *key, int apply, int64_t now_ms,
                  struct pipeline_artifact_gc *g, size_t caps[3], struct sw_err *err)
{
    const char *run = key + strlen("runs/"), *slash = strchr(run, '/');
    if (!slash || strncmp(slash, "/artifacts/", strlen("/artifacts/")) != 0)
        return 0; /* run.json, logs, markers, groups */
    const char *comp = slash + strlen("/artifacts/"), *end = strchr(comp, '/');
    char *run_id = xstrndup(run, (size_t)(slash - run));
    char *name =
        end && !strcmp(end, "/manifest.json") ? name_decode(comp, (size_t)(end - comp)) : NULL;
    struct pipeline_artifact *a = NULL;
    struct sw_err lerr = {0};
    int rc = 0;

    if (!pipeline_run_id_valid(run_id) || !name) {
        char *e = esc(key);
        unreadable(g, &caps[2], "%s: not the key of an artifact's manifest", e);
        free(e);
        goto out;
    }
    rc = pipeline_artifact_load(st, run_id, name, &a, &lerr);
    if (rc == SW_ENOTFOUND) {
        rc = 0; /* deleted meanwhile: its bodies are no longer its own */
        goto out;
    }
    if (rc == SW_EINVAL) {
        rc = 0;
        unreadable(g, &caps[2], "%s", lerr.msg);
        goto out;
    }
    if (rc < 0) {
        rc = sw_err_set(err, rc, "%s", lerr.msg);
        goto out;
    }
    /* created_at in the future (a skewed clock, a forged document) never expires */
    if (now_ms - a->created_ms < (int64_t)a->retention_days * 24 * 3600 * 1000) {
        keep_blobs(g, &caps[1], a);
        goto out;
    }
    if (apply) {
        /* only the document judged: one replaced meanwhile (overwrite: true)
         * is a new artifact, kept with its bodies until the next gc */
        rc = store_delete(st, key, a->id, &lerr);
        if (rc == SW_ECONFLICT) {
            pipeline_artifact_free(a);
            a = NULL;
            rc = pipeline_artifact_load(st, run_id, name, &a, &lerr);
            if (rc == 0)
                keep_blobs(g, &caps[1], a);
            else if (rc == SW_EINVAL)
                unreadable(g, &caps[2], "%s", lerr.msg);
            if (rc == SW_ENOTFOUND || rc == SW_EINVAL)
                rc = 0;
            else if (rc < 0)
                rc = sw_err_set(err, rc, "%s", lerr.msg);
            goto out;
        }
        if (rc == SW_ENOTFOUND) {
            rc = 0; /* another gc was first */
            goto out;
        }
        if (rc < 0) {
            rc = sw_err_set(err, rc, "%s", lerr.msg);
            goto out;
        }
    }
    if (g->nexpired == caps[0])
        g->expired =
            xrealloc(g->expired, (caps[0] = caps[0] ? caps[0] * 2 : 16) * sizeof(*g->expired));
    struct pipeline_artifact_expired *x = &g->expired[g->nexpired++];
    memcpy(x->run, a->run, sizeof(x->run));
    x->name = name;
    name = NULL;
    x->created_ms = a->created_ms;
    x->retention_days = a->retention_days;
    x->bytes = a->bytes;
out:
    pipeline_artifact_free(a);
    free(run_id);
    free(name);
    return rc;
}

int pipeline_artifact_gc(struct store *st, int apply, int64_t now_ms,
                         struct pipeline_artifact_gc *g, struct sw_err *err)
{
    struct store_list l = {0};
    char *after = NULL;
    size_t caps[3] = {0, 0, 0}; /* expired, blobs, unreadable */
    int rc;

    memset(g, 0, sizeof(*g));
    /* Every key under runs/ is listed, not the runs' index: a manifest under a
     * run that is not indexed (a half-created run, a copied bucket) still
     * names bodies. Only artifact keys are kept in memory, page by page. */
    for (;;) {
        if ((rc = store_list(st, "runs/", after, 1000, &l, err)) < 0)
            goto out;
        for (size_t i = 0; i < l.n; i++)
            if ((rc = gc_one(st, l.keys[i], apply, now_ms, g, caps, err)) < 0)
                goto out;
        if (!l.truncated || !l.n)
            break;
        free(after);
        after = xstrdup(l.keys[l.n - 1]);
        store_list_free(&l);
        memset(&l, 0, sizeof(l));
    }
    if (g->nblobs) {
        qsort(g->blobs, g->nblobs, sizeof(char *), cmp_str);
        size_t k = 1;
        for (size_t i = 1; i < g->nblobs; i++) {
            if (strcmp(g->blobs[i], g->blobs[k - 1]) != 0)
                g->blobs[k++] = g->blobs[i];
            else
                free(g->blobs[i]);
        }
        g->nblobs = k;
    }
    rc = 0;
out:
    store_list_free(&l);
    free(after);
    if (rc < 0)
        pipeline_artifact_gc_free(g);
    return rc;
}
