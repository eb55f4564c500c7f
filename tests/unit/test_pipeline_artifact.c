/* Unit tests for artifacts (src/pipeline/artifact.c): artifact names as
 * GitHub allows them and their key encoding (one name, one key), manifests
 * (a round trip, and every hostile field refused), the search of
 * upload-artifact's `path` (globs, `**`, exclusions, implicit descendants,
 * hidden files, the least common ancestor root, a symbolic link loop, a
 * pathological pattern), and downloading from a real store (placement rules,
 * a damaged body, a link planted in the target, a foreign key). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pipeline/artifact_internal.h"
#include "release/release.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RUN "run-20261205-142233-512-9f3a1c"

struct fixture {
    char dir[64];
    struct store *st;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sw-art-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char *data = path_join(f->dir, "store");
    int rc = store_open(data, &f->st, NULL);
    free(data);
    if (rc)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_free(f->st);
    char *cmd = xasprintf("rm -rf %s", f->dir);
    int rc = system(cmd);
    free(cmd);
    free(f);
    return rc;
}

static void write_file(const char *dir, const char *rel, const char *body)
{
    char *p = path_join(dir, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    assert_int_equal(fs_mkdir_p(p, NULL), 0);
    *slash = '/';
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(body, fp);
    assert_int_equal(fclose(fp), 0);
    free(p);
}

static char *read_file(const char *dir, const char *rel)
{
    char *p = path_join(dir, rel), *data = NULL;
    size_t len;
    int rc = file_read_all(p, &data, &len, NULL);
    free(p);
    return rc == 0 ? data : NULL;
}

/* ---- names and keys ---------------------------------------------------------------------- */

static void test_names(void **state)
{
    (void)state;
    const char *good[] = {"dist",    "my artifact", "build-1.2_x", ".hidden",
                          "ünïcödé", "a.b.c",       "%41",         "x%"};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        struct sw_err err = {0};
        assert_int_equal(pipeline_artifact_name_check(good[i], &err), 0);
        char *key = pipeline_artifact_key(RUN, good[i]);
        /* every name GitHub allows is one store key component */
        assert_int_equal(store_key_check(key, &err), 0);
        free(key);
    }
    char *key = pipeline_artifact_key(RUN, ".my art");
    assert_string_equal(key, "runs/" RUN "/artifacts/%2Emy%20art/manifest.json");
    free(key);

    const char *bad[] = {"",    "a/b", "a\\b", "a:b",  "a\"b",   "a<b",      "a>b", "a|b",
                         "a*b", "a?b", "a\rb", "a\nb", "a\x01z", "\xff\xfe", ".",   ".."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct sw_err err = {0};
        assert_int_equal(pipeline_artifact_name_check(bad[i], &err), SW_EINVAL);
        assert_null(strchr(err.msg, '\n')); /* one line, the name escaped */
    }
    struct sw_err err = {0};
    assert_int_equal(pipeline_artifact_name_check("x/y", &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "Contains the following character: Forward slash /"));
    char longname[PIPELINE_ARTIFACT_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(pipeline_artifact_name_check(longname, NULL), SW_EINVAL);
    longname[PIPELINE_ARTIFACT_NAME_MAX] = '\0';
    assert_int_equal(pipeline_artifact_name_check(longname, NULL), 0);
}

/* ---- manifests ------------------------------------------------------------------------------ */

static const char B1[] = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

/* A manifest of artifact "dist" whose files entries are FILES (JSON), bytes BYTES. */
static char *doc(const char *name, const char *files, long bytes)
{
    return xasprintf("{\"format\":1,\"name\":\"%s\",\"run\":\"" RUN "\",\"job\":\"build\","
                     "\"created_at\":\"2026-12-05T14:22:33.512Z\",\"retention_days\":90,"
                     "\"bytes\":%ld,\"files\":[%s]}",
                     name, bytes, files);
}

static int parse_doc(const char *name, const char *files, long bytes, struct sw_err *err)
{
    char *d = doc(name, files, bytes);
    char *key = pipeline_artifact_key(RUN, "dist");
    struct pipeline_artifact *a = NULL;
    int rc = pipeline_artifact_parse(key, RUN, d, strlen(d), &a, err);
    pipeline_artifact_free(a);
    free(d);
    free(key);
    return rc;
}

static void test_manifest_round_trip(void **state)
{
    (void)state;
    struct pipeline_artifact a = {0};
    struct pipeline_artifact_file files[2] = {{"a.txt", 6, 0644, ""}, {"sub/b.bin", 10, 0755, ""}};
    memcpy(files[0].blob, B1, sizeof(B1));
    memcpy(files[1].blob, B1, sizeof(B1));
    a.name = "dist";
    snprintf(a.run, sizeof(a.run), RUN);
    a.job = "build";
    a.created_ms = 1700000000123;
    a.retention_days = 5;
    a.files = files;
    a.nfiles = 2;
    a.bytes = 16;
    size_t len = 0;
    char *d = pipeline_artifact_dump(&a, &len);
    assert_non_null(d);
    char *key = pipeline_artifact_key(RUN, "dist");
    struct pipeline_artifact *b = NULL;
    struct sw_err err = {0};
    assert_int_equal(pipeline_artifact_parse(key, RUN, d, len, &b, &err), 0);
    assert_string_equal(b->name, "dist");
    assert_string_equal(b->run, RUN);
    assert_string_equal(b->job, "build");
    assert_int_equal(b->created_ms, 1700000000123);
    assert_int_equal(b->retention_days, 5);
    assert_int_equal(b->nfiles, 2);
    assert_string_equal(b->files[1].path, "sub/b.bin");
    assert_int_equal(b->files[1].mode, 0755);
    assert_int_equal(b->files[1].size, 10);
    assert_string_equal(b->files[1].blob, B1);
    assert_int_equal(b->bytes, 16);
    pipeline_artifact_free(b);
    /* under another run's key, or another name's, the same document is refused */
    assert_int_equal(
        pipeline_artifact_parse(key, "run-20261205-142233-512-000000", d, len, &b, &err),
        SW_EINVAL);
    free(key);
    key = pipeline_artifact_key(RUN, "other");
    assert_int_equal(pipeline_artifact_parse(key, RUN, d, len, &b, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "is not the artifact stored under this key"));
    free(key);
    free(d);
}

static void test_manifest_hostile(void **state)
{
    (void)state;
    struct sw_err err = {0};
#define F(path, size, mode, blob)                                                                  \
    "{\"path\":\"" path "\",\"size\":" #size ",\"mode\":" #mode ",\"blob\":\"" blob "\"}"
    assert_int_equal(
        parse_doc(
            "dist",
            F("a.txt", 6, 420, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"),
            6, &err),
        0);
    assert_int_equal(parse_doc("dist", "", 0, &err), 0); /* an empty artifact is one */
    const char *paths[] = {"../x", "a/../../x", "/etc/passwd", "a//b", "./a",   "a/.", "a\\\\b",
                           "a:b",  "a*b",       "a?b",         "a|b",  "a\\nb", ""};
    for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++) {
        char *f =
            xasprintf("{\"path\":\"%s\",\"size\":6,\"mode\":420,\"blob\":\"%s\"}", paths[i], B1);
        memset(&err, 0, sizeof(err));
        assert_int_equal(parse_doc("dist", f, 6, &err), SW_EINVAL);
        assert_non_null(strstr(err.msg, "files[0]"));
        assert_null(strchr(err.msg, '\n'));
        free(f);
    }
    /* a NUL inside a path would cut it short: the document is refused whole */
    char *nul =
        xasprintf("{\"path\":\"a\\u0000/../../x\",\"size\":6,\"mode\":420,\"blob\":\"%s\"}", B1);
    assert_int_equal(parse_doc("dist", nul, 6, &err), SW_EINVAL);
    free(nul);
    const char *blobs[] = {"5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03",
                           "5891b5b5", "../../../../etc/passwd",
                           "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be0g"};
    for (size_t i = 0; i < sizeof(blobs) / sizeof(*blobs); i++) {
        char *f = xasprintf("{\"path\":\"a\",\"size\":6,\"mode\":420,\"blob\":\"%s\"}", blobs[i]);
        memset(&err, 0, sizeof(err));
        assert_int_equal(parse_doc("dist", f, 6, &err), SW_EINVAL);
        assert_non_null(strstr(err.msg, "blob is not 64 lowercase hex digits"));
        free(f);
    }
    char *two = xasprintf("{\"path\":\"b\",\"size\":1,\"mode\":420,\"blob\":\"%s\"},"
                          "{\"path\":\"a\",\"size\":1,\"mode\":420,\"blob\":\"%s\"}",
                          B1, B1);
    assert_int_equal(parse_doc("dist", two, 2, &err), SW_EINVAL); /* unsorted */
    assert_non_null(strstr(err.msg, "not sorted and unique"));
    free(two);
    two = xasprintf("{\"path\":\"a\",\"size\":1,\"mode\":420,\"blob\":\"%s\"},"
                    "{\"path\":\"a\",\"size\":1,\"mode\":420,\"blob\":\"%s\"}",
                    B1, B1);
    assert_int_equal(parse_doc("dist", two, 2, &err), SW_EINVAL); /* duplicate */
    free(two);
    char *one = xasprintf("{\"path\":\"a\",\"size\":-1,\"mode\":420,\"blob\":\"%s\"}", B1);
    assert_int_equal(parse_doc("dist", one, -1, &err), SW_EINVAL);
    free(one);
    one = xasprintf("{\"path\":\"a\",\"size\":2199023255553,\"mode\":420,\"blob\":\"%s\"}", B1);
    assert_int_equal(parse_doc("dist", one, 2199023255553, &err), SW_EINVAL); /* > 1 TiB */
    free(one);
    one = xasprintf("{\"path\":\"a\",\"size\":1,\"mode\":2541,\"blob\":\"%s\"}", B1);
    assert_int_equal(parse_doc("dist", one, 1, &err), SW_EINVAL); /* setuid bits */
    free(one);
    one = xasprintf("{\"path\":\"a\",\"size\":1,\"mode\":420,\"blob\":\"%s\"}", B1);
    assert_int_equal(parse_doc("dist", one, 2, &err), SW_EINVAL); /* bytes not the sum */
    assert_non_null(strstr(err.msg, "bytes"));
    assert_int_equal(parse_doc("di/st", one, 1, &err), SW_EINVAL);
    assert_int_equal(parse_doc("..", one, 1, &err), SW_EINVAL);
    free(one);
    one = xasprintf("{\"path\":\"a\",\"size\":1,\"blob\":\"%s\"}", B1);
    assert_int_equal(parse_doc("dist", one, 1, &err), SW_EINVAL); /* no mode */
    free(one);

    char *key = pipeline_artifact_key(RUN, "dist");
    struct pipeline_artifact *a = NULL;
    const char *docs[] = {"",
                          "[]",
                          "{\"format\":1}",
                          "not json",
                          "{\"format\":2,\"name\":\"dist\",\"run\":\"" RUN
                          "\",\"created_at\":\"2026-12-05T14:22:33.512Z\",\"retention_days\":1,"
                          "\"bytes\":0,\"files\":[]}",
                          "{\"format\":1,\"name\":\"dist\",\"run\":\"" RUN
                          "\",\"created_at\":\"2026-12-05T14:22:33.512Z\",\"retention_days\":1,"
                          "\"bytes\":0,\"files\":{}}",
                          "{\"format\":1,\"name\":\"dist\",\"run\":\"" RUN
                          "\",\"job\":\"../x\",\"created_at\":\"2026-12-05T14:22:33.512Z\","
                          "\"retention_days\":1,\"bytes\":0,\"files\":[]}",
                          "{\"format\":1,\"name\":\"dist\",\"run\":\"" RUN
                          "\",\"created_at\":\"2026-12-05T14:22:33.512Z\",\"retention_days\":91,"
                          "\"bytes\":0,\"files\":[]}"};
    for (size_t i = 0; i < sizeof(docs) / sizeof(*docs); i++) {
        memset(&err, 0, sizeof(err));
        assert_int_equal(pipeline_artifact_parse(key, RUN, docs[i], strlen(docs[i]), &a, &err),
                         SW_EINVAL);
        assert_null(a);
        assert_true(str_starts_with(err.msg, key));
    }
    /* too large to be read at all */
    assert_int_equal(
        pipeline_artifact_parse(key, RUN, "{}", PIPELINE_ARTIFACT_DOC_MAX + 1, &a, &err),
        SW_EINVAL);
    free(key);
#undef F
}

/* The seeds of fuzz/artifact.c: those named valid* are accepted (so the
 * target's round trip runs on them), every other one refused. */
static void test_fuzz_seeds(void **state)
{
    (void)state;
    const char *seeds[] = {"valid",         "valid-encoded-name", "path-dotdot",
                           "path-absolute", "blob-traversal",     "unsorted",
                           "name-slash",    "mode-setuid",        "json-error-newline"};
    for (size_t i = 0; i < sizeof(seeds) / sizeof(*seeds); i++) {
        char *path = xasprintf("fuzz/corpus/artifact/%s", seeds[i]), *data = NULL;
        size_t len = 0;
        struct sw_err err = {0};
        if (file_read_all(path, &data, &len, &err)) {
            print_message("# %s: %s (skipped: run from the repository)\n", path, err.msg);
            free(path);
            continue;
        }
        json_t *root = json_loadb(data, len, 0, NULL);
        const char *name = json_string_value(json_object_get(root, "name"));
        char *key = pipeline_artifact_key(RUN, name && !strchr(name, '/') ? name : "x");
        struct pipeline_artifact *a = NULL;
        int rc = pipeline_artifact_parse(key, RUN, data, len, &a, &err);
        if (str_starts_with(seeds[i], "valid")) {
            if (rc)
                print_message("# %s: %s\n", path, err.msg);
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, SW_EINVAL);
            assert_null(strchr(err.msg, '\n')); /* one line, whatever the document */
        }
        pipeline_artifact_free(a);
        json_decref(root);
        free(key);
        free(data);
        free(path);
    }
}

/* ---- globs, paths, the least common ancestor ------------------------------------------------ */

static void test_resolve(void **state)
{
    (void)state;
    struct {
        const char *base, *in, *want;
    } cases[] = {
        {"/ws", "a/./b/../c/", "/ws/a/c"}, {"/ws", "/abs//x/", "/abs/x"},
        {"/ws", "../../..", "/"},          {"/ws", ".", "/ws"},
        {"/ws/", "dist", "/ws/dist"},      {"/ws", "~x", "/ws/~x"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char *got = artifact_path_resolve(cases[i].base, cases[i].in);
        assert_string_equal(got, cases[i].want);
        free(got);
    }
    setenv("HOME", "/home/u", 1);
    char *got = artifact_path_resolve("/ws", "~/x");
    assert_string_equal(got, "/home/u/x");
    free(got);
}

static void test_glob_match(void **state)
{
    (void)state;
    struct {
        const char *pattern;
        int dir_only;
        const char *path;
        int want;
    } cases[] = {
        {"/ws/dist/**/*.js", 0, "/ws/dist/a.js", 1}, /* ** is zero segments too */
        {"/ws/dist/**/*.js", 0, "/ws/dist/x/y/a.js", 1},
        {"/ws/dist/**/*.js", 0, "/ws/dist/a.css", 0},
        {"/ws/dist/*.js", 0, "/ws/dist/x/a.js", 0}, /* * stays in its segment */
        {"/ws/dist", 0, "/ws/dist/x/y", 1},         /* a directory's descendants */
        {"/ws/dist", 0, "/ws/distx", 0},
        {"/ws/dist", 1, "/ws/dist/a", 1}, /* dist/: directories only */
        {"/ws/dist", 1, "/ws/dist", 0},
        {"/ws/*.txt", 0, "/ws/.a.txt", 1}, /* dot files match, as with dot: true */
        {"/ws/a?c", 0, "/ws/abc", 1},
        {"/ws/a?c", 0, "/ws/ac", 0},
        {"/ws/[ab]x", 0, "/ws/bx", 1},
        {"/ws/[ab]x", 0, "/ws/cx", 0},
        {"/**", 0, "/anything/at/all", 1},
        {"/ws/**", 0, "/ws", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
        assert_int_equal(artifact_glob_match(cases[i].pattern, cases[i].dir_only, cases[i].path),
                         cases[i].want);
    /* many ** against a deep path that does not match: quadratic, not exponential */
    struct buf p = BUF_INIT, x = BUF_INIT;
    for (int i = 0; i < 200; i++)
        buf_adds(&p, "/**");
    buf_adds(&p, "/nomatch");
    for (int i = 0; i < 300; i++)
        buf_adds(&x, "/a");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(artifact_glob_match(p.data, 0, x.data), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    buf_free(&p);
    buf_free(&x);
}

static void test_lca(void **state)
{
    (void)state;
    char *a[] = {"/ws/a/b", "/ws/a/c/d"}, *b[] = {"/a", "/b"}, *c[] = {"/ws/x"},
         *d[] = {"/ws/ab", "/ws/ac"};
    char *got = artifact_lca(a, 2);
    assert_string_equal(got, "/ws/a");
    free(got);
    got = artifact_lca(b, 2);
    assert_string_equal(got, "/");
    free(got);
    got = artifact_lca(c, 1);
    assert_string_equal(got, "/ws/x");
    free(got);
    got = artifact_lca(d, 2); /* whole segments, not characters */
    assert_string_equal(got, "/ws");
    free(got);
}

/* The stored paths of a search, joined by spaces; NULL on error. */
static char *search(const char *ws, const char *paths, int hidden, size_t max, char **root,
                    struct sw_err *err)
{
    struct artifact_search s = {0};
    if (artifact_search(ws, paths, hidden, max, &s, err) < 0)
        return NULL;
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < s.n; i++) {
        buf_adds(&b, i ? " " : "");
        buf_adds(&b, s.rel[i]);
    }
    *root = xstrdup(s.root + strlen(ws));
    artifact_search_free(&s);
    return buf_detach(&b, NULL);
}

static void test_search(void **state)
{
    struct fixture *f = *state;
    char *ws = path_join(f->dir, "ws"), *root = NULL, *got;
    struct sw_err err = {0};
    write_file(ws, "dist/a.txt", "a");
    write_file(ws, "dist/skip.txt", "s");
    write_file(ws, "dist/sub/b.js", "b");
    write_file(ws, "dist/.hid", "h");
    write_file(ws, "dist/.cfg/c", "c");
    write_file(ws, "other/c.txt", "c");
    char *loop = path_join(ws, "dist/sub/loop");
    char *distdir = path_join(ws, "dist/sub");
    assert_int_equal(symlink(distdir, loop), 0); /* a directory loop: entered once */
    free(loop);
    free(distdir);
    char *fifo = path_join(ws, "dist/fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0); /* not a regular file: never opened */
    free(fifo);

#define EXPECT(paths, hidden, want_root, want)                                                     \
    do {                                                                                           \
        got = search(ws, paths, hidden, 0, &root, &err);                                           \
        assert_non_null(got);                                                                      \
        assert_string_equal(root, want_root);                                                      \
        assert_string_equal(got, want);                                                            \
        free(got);                                                                                 \
        free(root);                                                                                \
    } while (0)
    EXPECT("dist", 0, "/dist", "a.txt skip.txt sub/b.js");
    EXPECT("dist/", 0, "/dist", "a.txt skip.txt sub/b.js");
    EXPECT("dist", 1, "/dist", ".cfg/c .hid a.txt skip.txt sub/b.js");
    EXPECT("dist/**/*.txt\n!dist/skip.txt", 0, "/dist", "a.txt");
    EXPECT("dist/**\n!dist/sub\ndist/sub/b.js", 0, "/dist", "a.txt skip.txt sub/b.js");
    EXPECT("dist/sub\nother/c.txt", 0, "", "dist/sub/b.js other/c.txt");
    EXPECT("dist/a.txt", 0, "/dist", "a.txt"); /* one file: stored without directories */
    EXPECT("dist/*.txt", 0, "/dist", "a.txt skip.txt");
    EXPECT("# a comment\n\n   dist/sub   \r\n", 0, "/dist/sub", "b.js");
    EXPECT("dist\ndist/sub", 0, "/dist", "a.txt skip.txt sub/b.js"); /* nested: one root */
    EXPECT("nope/**", 0, "/nope", "");
    EXPECT(".", 0, "", "dist/a.txt dist/skip.txt dist/sub/b.js other/c.txt");
#undef EXPECT
    assert_null(search(ws, "!dist", 0, 0, &root, &err));
    assert_non_null(strstr(err.msg, "no pattern includes anything"));
    assert_null(search(ws, "\n# only\n", 0, 0, &root, &err));
    assert_null(search(ws, "dist", 0, 2, &root, &err));
    assert_non_null(strstr(err.msg, "more than 2 files"));
    write_file(ws, "bad/a:b", "x");
    assert_null(search(ws, "bad", 0, 0, &root, &err));
    assert_non_null(strstr(err.msg, "cannot be uploaded"));
    free(ws);
}

/* ---- downloading from a store --------------------------------------------------------------- */

/* Stores body as a blob; its id in hex. */
static void put_blob(struct store *st, const char *body, char hex[SHA256_HEX_LEN + 1])
{
    char key[128];
    sha256_hex(body, strlen(body), hex);
    release_blob_key(hex, key, sizeof(key));
    assert_int_equal(store_put(st, key, body, strlen(body), 0, NULL, NULL), 0);
}

static void put_manifest(struct store *st, const char *name, const char *const *paths,
                         const char *const *bodies, size_t n)
{
    struct buf files = BUF_INIT;
    long bytes = 0;
    for (size_t i = 0; i < n; i++) {
        char hex[SHA256_HEX_LEN + 1];
        put_blob(st, bodies[i], hex);
        buf_addf(&files, "%s{\"path\":\"%s\",\"size\":%zu,\"mode\":%d,\"blob\":\"%s\"}",
                 i ? "," : "", paths[i], strlen(bodies[i]), i == 0 ? 0755 : 0644, hex);
        bytes += (long)strlen(bodies[i]);
    }
    char *d = doc(name, files.data ? files.data : "", bytes);
    char *key = pipeline_artifact_key(RUN, name);
    assert_int_equal(store_put(st, key, d, strlen(d), 0, NULL, NULL), 0);
    free(key);
    free(d);
    buf_free(&files);
}

static int download(struct fixture *f, const char *dir, const char *name, const char *pattern,
                    int merge, struct pipeline_artifact_fetched *res, struct sw_err *err)
{
    struct pipeline_artifact_fetch fe = {0};
    fe.run_id = RUN;
    fe.names = name ? &name : NULL;
    fe.nnames = name ? 1 : 0;
    fe.patterns = pattern ? &pattern : NULL;
    fe.npatterns = pattern ? 1 : 0;
    fe.merge = merge;
    char *d = path_join(f->dir, dir);
    fe.dir = d;
    int rc = pipeline_artifact_download(f->st, &fe, res, err);
    free(d);
    return rc;
}

static void test_download(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    struct pipeline_artifact_fetched res = {0};
    const char *p1[] = {"bin/tool", "readme.txt"}, *b1[] = {"#!/bin/sh\n", "hello\n"};
    const char *p2[] = {"readme.txt"}, *b2[] = {"other\n"};
    put_manifest(f->st, "dist", p1, b1, 2);
    put_manifest(f->st, ".hidden name", p2, b2, 1);

    char **names = NULL;
    size_t n = 0;
    assert_int_equal(pipeline_artifact_names(f->st, RUN, &names, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], ".hidden name"); /* decoded from %2Ehidden%20name */
    assert_string_equal(names[1], "dist");
    pipeline_artifact_names_free(names, n);

    /* one name: into dir itself */
    assert_int_equal(download(f, "one", "dist", NULL, 0, &res, &err), 0);
    assert_int_equal(res.artifacts, 1);
    assert_int_equal(res.files, 2);
    assert_int_equal(res.bytes, 16);
    char *one = path_join(f->dir, "one"), *s = read_file(one, "readme.txt");
    assert_string_equal(s, "hello\n");
    free(s);
    char *tool = path_join(one, "bin/tool");
    struct stat sb;
    assert_int_equal(stat(tool, &sb), 0);
    assert_true(sb.st_mode & 0100);
    free(tool);
    free(one);
    /* all: each into dir/NAME/ */
    assert_int_equal(download(f, "all", NULL, NULL, 0, &res, &err), 0);
    assert_int_equal(res.artifacts, 2);
    char *all = path_join(f->dir, "all");
    s = read_file(all, ".hidden name/readme.txt");
    assert_string_equal(s, "other\n");
    free(s);
    s = read_file(all, "dist/readme.txt");
    assert_string_equal(s, "hello\n");
    free(s);
    free(all);
    /* a pattern: isolated even when it matches one */
    assert_int_equal(download(f, "pat", NULL, "d*", 0, &res, &err), 0);
    assert_int_equal(res.artifacts, 1);
    char *pat = path_join(f->dir, "pat");
    s = read_file(pat, "dist/readme.txt");
    assert_string_equal(s, "hello\n");
    free(s);
    free(pat);
    /* merged: every artifact into dir, the later overwriting */
    assert_int_equal(download(f, "merged", NULL, NULL, 1, &res, &err), 0);
    char *merged = path_join(f->dir, "merged");
    s = read_file(merged, "readme.txt");
    assert_string_equal(s, "hello\n"); /* "dist" sorts after ".hidden name" */
    free(s);
    free(merged);
    /* nothing matching */
    assert_int_equal(download(f, "none", "nope", NULL, 0, &res, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "Artifact not found for name: nope"));
    assert_int_equal(download(f, "none", NULL, "zz*", 0, &res, &err), SW_ENOTFOUND);
    assert_int_equal(download(f, "none", "a/b", NULL, 0, &res, &err), SW_EINVAL);
    char *none = path_join(f->dir, "none");
    assert_int_equal(access(none, F_OK), -1);
    free(none);
}

static void test_download_hostile(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    struct pipeline_artifact_fetched res = {0};
    const char *p1[] = {"a/b.txt"}, *b1[] = {"body\n"};
    put_manifest(f->st, "dist", p1, b1, 1);

    /* a symbolic link where a directory of the artifact goes */
    char *out = path_join(f->dir, "out"), *outside = path_join(f->dir, "outside");
    assert_int_equal(fs_mkdir_p(out, NULL), 0);
    assert_int_equal(fs_mkdir_p(outside, NULL), 0);
    char *link = path_join(out, "a");
    assert_int_equal(symlink(outside, link), 0);
    assert_int_equal(download(f, "out", "dist", NULL, 0, &res, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "refusing to write through it"));
    char *escaped = path_join(outside, "b.txt");
    assert_int_equal(access(escaped, F_OK), -1);
    free(escaped);
    free(link);

    /* a damaged body: refused, and no file (not even a temporary) left */
    char hex[SHA256_HEX_LEN + 1], key[128];
    sha256_hex("body\n", 5, hex);
    release_blob_key(hex, key, sizeof(key));
    assert_int_equal(store_put(f->st, key, "BODY\n", 5, 0, NULL, NULL), 0);
    assert_int_equal(download(f, "dmg", "dist", NULL, 0, &res, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "is damaged"));
    char *dmg = path_join(f->dir, "dmg/a");
    char *cmd = xasprintf("test -z \"$(ls -A %s)\"", dmg);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(dmg);
    /* a missing body */
    assert_int_equal(store_delete(f->st, key, NULL, NULL), 0);
    assert_int_equal(download(f, "miss", "dist", NULL, 0, &res, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "missing from the store"));

    /* a key under the run's artifacts this module never writes: listing refuses */
    char *foreign = xasprintf("runs/%s/artifacts/%%41/manifest.json", RUN); /* 'A' encoded */
    assert_int_equal(store_put(f->st, foreign, "{}", 2, 0, NULL, NULL), 0);
    char **names = NULL;
    size_t n = 0;
    assert_int_equal(pipeline_artifact_names(f->st, RUN, &names, &n, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "not the key of an artifact's manifest"));
    assert_int_equal(download(f, "all", NULL, NULL, 0, &res, &err), SW_EINVAL);
    free(foreign);
    free(out);
    free(outside);
}

/* ---- garbage collection --------------------------------------------------------------------- */

static int has_blob(const struct pipeline_artifact_gc *g, const char *body)
{
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex(body, strlen(body), hex);
    for (size_t i = 0; i < g->nblobs; i++)
        if (!strcmp(g->blobs[i], hex))
            return 1;
    return 0;
}

/* What gc must keep: the blobs of every artifact within its retention, and,
 * when a manifest cannot be read, the knowledge that the list is incomplete;
 * an artifact past its retention is listed (dry run) or deleted (apply) and
 * its blobs are not kept. Other keys of a run (its record, logs) are not
 * artifacts. */
static void test_gc(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    struct pipeline_artifact_gc g;
    const char *p1[] = {"a.txt", "b.txt"}, *b1[] = {"one\n", "shared\n"};
    const char *p2[] = {"c.txt"}, *b2[] = {"shared\n"};
    put_manifest(f->st, "dist", p1, b1, 2);
    put_manifest(f->st, "more", p2, b2, 1);
    assert_int_equal(store_put(f->st, "runs/" RUN "/run.json", "{}", 2, 0, NULL, NULL), 0);
    assert_int_equal(store_put(f->st, "runs/index/" RUN, "", 0, 0, NULL, NULL), 0);
    int64_t created, day = 24LL * 3600 * 1000;
    assert_int_equal(time_parse_iso("2026-12-05T14:22:33.512Z", &created), 0);

    /* within retention (90 days, doc()'s): both kept, their blobs listed once */
    assert_int_equal(pipeline_artifact_gc(f->st, 1, created + 90 * day - 1, &g, &err), 0);
    assert_int_equal(g.kept, 2);
    assert_int_equal(g.nexpired, 0);
    assert_int_equal(g.nunreadable, 0);
    assert_int_equal(g.nblobs, 2);
    assert_true(has_blob(&g, "one\n") && has_blob(&g, "shared\n"));
    pipeline_artifact_gc_free(&g);

    /* a future created_at never expires */
    assert_int_equal(pipeline_artifact_gc(f->st, 1, created - 1000 * day, &g, &err), 0);
    assert_int_equal(g.kept, 2);
    pipeline_artifact_gc_free(&g);

    /* past it: listed, blobs not kept; a dry run deletes nothing */
    assert_int_equal(pipeline_artifact_gc(f->st, 0, created + 90 * day, &g, &err), 0);
    assert_int_equal(g.nexpired, 2);
    assert_int_equal(g.kept, 0);
    assert_int_equal(g.nblobs, 0);
    assert_string_equal(g.expired[0].name, "dist");
    assert_string_equal(g.expired[0].run, RUN);
    assert_int_equal(g.expired[0].retention_days, 90);
    assert_int_equal(g.expired[0].bytes, 11);
    assert_int_equal(g.expired[0].created_ms, created);
    pipeline_artifact_gc_free(&g);
    struct pipeline_artifact *a = NULL;
    assert_int_equal(pipeline_artifact_load(f->st, RUN, "dist", &a, &err), 0);
    pipeline_artifact_free(a);

    /* a manifest that does not validate, and a key no manifest has: kept,
     * named, and the list is incomplete; the good one is still read */
    char *bad = pipeline_artifact_key(RUN, "bad");
    assert_int_equal(store_put(f->st, bad, "{\"format\":2}", 12, 0, NULL, NULL), 0);
    const char *foreign = "runs/" RUN "/artifacts/%41/manifest.json";
    assert_int_equal(store_put(f->st, foreign, "{}", 2, 0, NULL, NULL), 0);
    assert_int_equal(pipeline_artifact_gc(f->st, 1, created + day, &g, &err), 0);
    assert_int_equal(g.nunreadable, 2);
    assert_int_equal(g.kept, 2);
    assert_non_null(strstr(g.unreadable[0], "%41/manifest.json: not the key of an artifact"));
    assert_non_null(strstr(g.unreadable[1], "bad/manifest.json: format"));
    pipeline_artifact_gc_free(&g);

    /* apply past retention: the valid ones are deleted, the unreadable kept */
    assert_int_equal(pipeline_artifact_gc(f->st, 1, created + 90 * day, &g, &err), 0);
    assert_int_equal(g.nexpired, 2);
    assert_int_equal(g.nunreadable, 2);
    pipeline_artifact_gc_free(&g);
    assert_int_equal(pipeline_artifact_load(f->st, RUN, "dist", &a, &err), SW_ENOTFOUND);
    assert_int_equal(pipeline_artifact_load(f->st, RUN, "more", &a, &err), SW_ENOTFOUND);
    struct store_stat sb;
    assert_int_equal(store_head(f->st, bad, &sb, 0, NULL), 0);
    assert_int_equal(store_head(f->st, foreign, &sb, 0, NULL), 0);
    assert_int_equal(store_head(f->st, "runs/" RUN "/run.json", &sb, 0, NULL), 0);
    free(bad);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_manifest_round_trip),
        cmocka_unit_test(test_manifest_hostile),
        cmocka_unit_test(test_fuzz_seeds),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_glob_match),
        cmocka_unit_test(test_lca),
        T(test_search),
        T(test_download),
        T(test_download_hostile),
        T(test_gc),
    };
    return cmocka_run_group_tests_name("pipeline_artifact", tests, NULL, NULL);
}
