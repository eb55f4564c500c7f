/* Unit tests for releases (on the fs store, and on s3 when SLIPWAY_TEST_S3
 * names a bucket: store_fixture.h): content types and cache policies,
 * release_create over real temporary directories (dedup, symbolic links,
 * special files, empty directories, odd names), manifests read back field by
 * field, listing, resolving, verifying, diffing, the stat cache, and the
 * hashing pool giving the same manifest on one thread and on eight, and the
 * gzip and Brotli variants (made, decoded independently, cached, derived from
 * a lone x.gz, refused when hostile), and a release kept (the live one deploy
 * DIR passes: the same tree stores nothing, and on S3 its bodies cost no
 * request). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "release/internal.h"
#include "store_fixture.h"

#include <brotli/decode.h>
#include <zlib.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define IMMUTABLE "public, max-age=31536000, immutable"
#define REVALIDATE "public, max-age=300"

struct fixture {
    char dir[64];
    char *site;  /* the directory released */
    char *data;  /* the store's URL: a directory, or an s3:// prefix */
    char *cache; /* a stat cache file */
    struct store *st;
    struct release_create_result kept; /* the last create's problems, freed by the next */
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sw-release-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    f->site = path_join(f->dir, "site");
    f->data = sf_store_url(f->dir, "data");
    f->cache = path_join(f->dir, "cache/stat");
    if (mkdir(f->site, 0755) < 0)
        return -1;
    struct sw_err err = {0};
    if (store_open(f->data, &f->st, &err))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_free(f->st);
    release_create_result_free(&f->kept);
    char *cmd = xasprintf("chmod -R u+rwx %s; rm -rf %s", f->dir, f->dir);
    int rc = system(cmd);
    free(cmd);
    free(f->site);
    free(f->data);
    free(f->cache);
    free(f);
    return rc;
}

/* ---- helpers --------------------------------------------------------------- */

/* Writes dir/rel with len bytes of data, creating parent directories. */
static void write_file(const char *dir, const char *rel, const void *data, size_t len)
{
    char *path = path_join(dir, rel);
    char *parent = xstrdup(path);
    *strrchr(parent, '/') = '\0';
    assert_int_equal(fs_mkdir_p(parent, NULL), 0);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(fd_write_all(fd, data, len), 0);
    assert_int_equal(close(fd), 0);
    free(parent);
    free(path);
}

static void write_str(const char *dir, const char *rel, const char *s)
{
    write_file(dir, rel, s, strlen(s));
}

/* Sets the mtime of dir/rel to now + delta_s (negative: in the past). */
static void set_mtime(const char *dir, const char *rel, long delta_s)
{
    char *path = path_join(dir, rel);
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec += delta_s;
    ts[1] = ts[0];
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    free(path);
}

static size_t count_keys(struct store *st, const char *prefix)
{
    struct store_list l;
    assert_int_equal(store_list_all(st, prefix, &l, NULL), 0);
    size_t n = l.n;
    store_list_free(&l);
    return n;
}

/* res->problems stays readable until the next create (the fixture frees it). */
static int create_opts(struct fixture *f, const struct release_create_opts *o, char **id,
                       struct release_create_result *res, struct sw_err *err)
{
    memset(err, 0, sizeof(*err));
    int rc = release_create(f->st, o, id, res, err);
    release_create_result_free(&f->kept);
    f->kept = *res;
    return rc;
}

static int create(struct fixture *f, const char *stat_cache, int threads, char **id,
                  struct release_create_result *res, struct sw_err *err)
{
    struct release_create_opts o = {.dir = f->site, .stat_cache = stat_cache, .threads = threads};
    return create_opts(f, &o, id, res, err);
}

/* release_create with o; must succeed. Returns the id (caller frees). */
static char *create_opts_ok(struct fixture *f, const struct release_create_opts *o,
                            struct release_create_result *res)
{
    struct sw_err err;
    char *id = NULL;
    int rc = create_opts(f, o, &id, res, &err);
    if (rc)
        print_message("# release_create: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return id;
}

/* Creates a release of f->site that must succeed; returns the loaded manifest. */
static struct release *create_ok(struct fixture *f, const char *stat_cache, int threads,
                                 struct release_create_result *res)
{
    struct sw_err err;
    struct release_create_result ignored;
    struct release_create_opts o = {.dir = f->site, .stat_cache = stat_cache, .threads = threads};
    char *id = create_opts_ok(f, &o, res ? res : &ignored);
    struct release *r = NULL;
    assert_int_equal(release_load(f->st, id, &r, &err), 0);
    assert_string_equal(r->id, id);
    free(id);
    return r;
}

static const struct release_file *find_file(const struct release *r, const char *path)
{
    for (size_t i = 0; i < r->nfiles; i++)
        if (!strcmp(r->files[i].path, path))
            return &r->files[i];
    return NULL;
}

/* A failed create must leave nothing a reader can see: no manifest, and on fs
 * no body either (the unfinished batch is discarded). On S3 a batched PUT is
 * visible once acknowledged (there is no batch to discard), so the bodies read
 * before the refusal stay, unreferenced, until gc collects them: counted and
 * shown here, so the difference is seen rather than passed over. */
static void assert_store_untouched(struct fixture *f)
{
    assert_int_equal(count_keys(f->st, "releases/"), 0);
    size_t bodies = count_keys(f->st, RELEASE_BLOB_PREFIX);
    if (sf_s3() && bodies)
        print_message("# s3: %zu bodies read before the refusal stay until gc\n", bodies);
    else
        assert_int_equal(bodies, 0);
}

/* Deterministic pseudo-random bytes (xorshift), so sizes and bodies vary. */
static void fill(unsigned char *p, size_t n, unsigned seed)
{
    unsigned x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

/* ---- content types and cache policies ------------------------------------------ */

static void test_content_type(void **state)
{
    static const char *const cases[][2] = {
        {"index.html", "text/html; charset=utf-8"},
        {"about/index.htm", "text/html; charset=utf-8"},
        {"css/app.css", "text/css; charset=utf-8"},
        {"js/app.js", "text/javascript; charset=utf-8"},
        {"js/mod.mjs", "text/javascript; charset=utf-8"},
        {"data.json", "application/json; charset=utf-8"},
        {"js/app.js.map", "application/json; charset=utf-8"},
        {"feed.xml", "application/xml; charset=utf-8"},
        {"robots.txt", "text/plain; charset=utf-8"},
        {"export.csv", "text/csv; charset=utf-8"},
        {"img/logo.svg", "image/svg+xml; charset=utf-8"},
        {"img/logo.png", "image/png"},
        {"img/photo.jpg", "image/jpeg"},
        {"img/photo.jpeg", "image/jpeg"},
        {"img/anim.gif", "image/gif"},
        {"img/pic.webp", "image/webp"},
        {"img/pic.avif", "image/avif"},
        {"favicon.ico", "image/x-icon"},
        {"fonts/a.woff2", "font/woff2"},
        {"fonts/a.woff", "font/woff"},
        {"fonts/a.ttf", "font/ttf"},
        {"app.wasm", "application/wasm"},
        {"doc.pdf", "application/pdf"},
        {"media/clip.mp4", "video/mp4"},
        {"media/clip.webm", "video/webm"},
        {"media/song.mp3", "audio/mpeg"},
        {"dist/pkg.zip", "application/zip"},
        {"dist/pkg.tar.gz", "application/gzip"},
        {"site.webmanifest", "application/manifest+json; charset=utf-8"},
        /* uppercase and mixed-case extensions */
        {"INDEX.HTML", "text/html; charset=utf-8"},
        {"img/Photo.JPG", "image/jpeg"},
        {"Style.Css", "text/css; charset=utf-8"},
        /* unknown, none, dotfiles, dots in directories, trailing dot */
        {"file.xyz123", "application/octet-stream"},
        {"LICENSE", "application/octet-stream"},
        {"bin/run", "application/octet-stream"},
        {".htaccess", "application/octet-stream"},
        {"conf/.env", "application/octet-stream"},
        {"v1.2/README", "application/octet-stream"},
        {"file.", "application/octet-stream"},
        {".eslintrc.json", "application/json; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const char *got = release_content_type(cases[i][0]);
        if (strcmp(got, cases[i][1]) != 0)
            print_message("# %s: got '%s', expected '%s'\n", cases[i][0], got, cases[i][1]);
        assert_string_equal(got, cases[i][1]);
    }
    /* Binary types never claim a charset; every text/ type does. */
    assert_null(strstr(release_content_type("a.png"), "charset"));
    assert_null(strstr(release_content_type("a.woff2"), "charset"));
    assert_non_null(strstr(release_content_type("a.md"), "charset=utf-8"));
}

static void test_cache_policy(void **state)
{
    static const char *const cases[][2] = {
        {"index.html", "no-cache"},
        {"docs/INDEX.HTML", "no-cache"},
        {"page.xhtml", "no-cache"},
        {"app.3f9a2c1d.html", "no-cache"}, /* HTML is never immutable: its URL is stable */
        {"app.3f9a2c1d.js", IMMUTABLE},
        {"assets/index-BxYz12Ab.js", IMMUTABLE},
        {"main.0123456789ab.css", IMMUTABLE},
        {"static/js/2.8e5f1a3b.chunk.js", IMMUTABLE},
        {"chunk-5GY4LHWQ.js", IMMUTABLE},
        {"photo-20240101.jpg", REVALIDATE},
        {"jquery-3.6.0.min.js", REVALIDATE},
        {"logo.png", REVALIDATE},
        {"my-function.js", REVALIDATE},
        {"release-v1.2.3.tar.gz", REVALIDATE},
        {"LICENSE", REVALIDATE},
        {".htaccess", REVALIDATE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const char *got = release_cache_policy(cases[i][0]);
        if (strcmp(got, cases[i][1]) != 0)
            print_message("# %s: got '%s', expected '%s'\n", cases[i][0], got, cases[i][1]);
        assert_string_equal(got, cases[i][1]);
    }
}

/* ---- release_create ------------------------------------------------------------ */

static void test_create_files_and_dedup(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "index.html", "<h1>hello</h1>\n");
    write_str(f->site, "css/app.css", "body{}\n");
    write_str(f->site, "a/b/c/deep.txt", "same body\n");
    write_str(f->site, "copy.txt", "same body\n");
    write_str(f->site, ".well-known/security.txt", "Contact: x\n");
    write_str(f->site, "empty.txt", "");
    write_str(f->site, ".git/HEAD", "ref: refs/heads/main\n");
    write_str(f->site, "sub/.slipway/data/x", "never published\n");
    char *emptydir = path_join(f->site, "emptydir");
    assert_int_equal(mkdir(emptydir, 0755), 0);
    free(emptydir);

    struct release_create_result res;
    struct release *r = create_ok(f, NULL, 0, &res);
    assert_int_equal(res.files, 6);
    assert_int_equal(r->nfiles, 6);
    assert_int_equal(res.bytes, 15 + 7 + 10 + 10 + 11 + 0);
    assert_int_equal(r->bytes, res.bytes);
    assert_int_equal(res.hashed, 6);
    /* five distinct bodies: the two "same body" files share one blob */
    assert_int_equal(res.new_blobs, 5);
    assert_int_equal(count_keys(f->st, RELEASE_BLOB_PREFIX), 5);

    /* sorted by path, .git and .slipway left out, dotfiles kept */
    const char *want[] = {".well-known/security.txt",
                          "a/b/c/deep.txt",
                          "copy.txt",
                          "css/app.css",
                          "empty.txt",
                          "index.html"};
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(r->files[i].path, want[i]);
    assert_string_equal(find_file(r, "a/b/c/deep.txt")->blob, find_file(r, "copy.txt")->blob);
    /* sha256("") and a body checked independently of slipway's hashing code */
    assert_string_equal(find_file(r, "empty.txt")->blob,
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(find_file(r, "empty.txt")->size, 0);
    assert_string_equal(find_file(r, "index.html")->type, "text/html; charset=utf-8");
    assert_string_equal(find_file(r, "index.html")->cache, "no-cache");

    /* every blob holds exactly its body */
    for (size_t i = 0; i < r->nfiles; i++) {
        char key[128], hex[SHA256_HEX_LEN + 1], *data;
        size_t len;
        release_blob_key(r->files[i].blob, key, sizeof(key));
        assert_true(str_starts_with(key, RELEASE_BLOB_PREFIX));
        assert_int_equal(store_get(f->st, key, &data, &len, NULL, NULL), 0);
        assert_int_equal(len, r->files[i].size);
        sha256_hex(data, len, hex);
        assert_string_equal(hex, r->files[i].blob);
        free(data);
    }

    /* the same directory again: a new release, no new bodies */
    struct release *r2 = create_ok(f, NULL, 0, &res);
    assert_string_not_equal(r2->id, r->id);
    assert_int_equal(res.new_blobs, 0);
    assert_int_equal(res.files, 6);
    assert_int_equal(count_keys(f->st, "releases/"), 2);
    assert_int_equal(count_keys(f->st, RELEASE_BLOB_PREFIX), 5);
    /* one changed body: exactly one new blob */
    write_str(f->site, "css/app.css", "body{color:red}\n");
    struct release *r3 = create_ok(f, NULL, 0, &res);
    assert_int_equal(res.new_blobs, 1);
    assert_int_equal(count_keys(f->st, RELEASE_BLOB_PREFIX), 6);
    release_free(r);
    release_free(r2);
    release_free(r3);
}

static void test_create_symlinks_inside(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "a.txt", "target\n");
    write_str(f->site, "sub/b.txt", "in sub\n");
    char *p1 = path_join(f->site, "alias.txt");
    char *p2 = path_join(f->site, "sublink");
    char *p3 = path_join(f->site, "sub/up.txt");
    assert_int_equal(symlink("a.txt", p1), 0);
    assert_int_equal(symlink("sub", p2), 0);
    assert_int_equal(symlink("../a.txt", p3), 0);
    struct release_create_result res;
    struct release *r = create_ok(f, NULL, 0, &res);
    /* a.txt, alias.txt, sub/b.txt, sub/up.txt, sublink/b.txt, sublink/up.txt */
    assert_int_equal(r->nfiles, 6);
    assert_int_equal(res.new_blobs, 2);
    assert_non_null(find_file(r, "alias.txt"));
    assert_non_null(find_file(r, "sublink/b.txt"));
    assert_string_equal(find_file(r, "alias.txt")->blob, find_file(r, "a.txt")->blob);
    assert_string_equal(find_file(r, "sub/up.txt")->blob, find_file(r, "a.txt")->blob);
    assert_string_equal(find_file(r, "sublink/b.txt")->blob, find_file(r, "sub/b.txt")->blob);
    release_free(r);
    free(p1);
    free(p2);
    free(p3);
}

static void test_create_symlink_outside(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "a.txt", "x\n");
    write_str(f->dir, "secret.txt", "outside\n");
    char *link = path_join(f->site, "sub/out.txt");
    char *sub = path_join(f->site, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(symlink("../../secret.txt", link), 0);
    char *id = NULL;
    struct release_create_result res;
    struct sw_err err;
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), RELEASE_ESYMLINK);
    assert_null(id);
    assert_non_null(strstr(err.msg, "sub/out.txt"));
    assert_non_null(strstr(err.msg, "outside"));
    assert_store_untouched(f);

    /* a sibling whose name merely starts with the directory's name is outside too */
    unlink(link);
    char *sibling = xasprintf("%s-evil", f->site);
    write_str(sibling, "x.txt", "sibling\n");
    char *target = xasprintf("%s/x.txt", sibling);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), RELEASE_ESYMLINK);
    assert_non_null(strstr(err.msg, "sub/out.txt"));
    assert_store_untouched(f);
    free(sibling);
    free(target);
    free(link);
    free(sub);
}

static void test_create_symlink_loops(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "a.txt", "x\n");
    char *sub = path_join(f->site, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    /* a link to an ancestor would make the walk endless */
    char *up = path_join(f->site, "sub/up");
    assert_int_equal(symlink("..", up), 0);
    char *id = NULL;
    struct release_create_result res;
    struct sw_err err;
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), RELEASE_ESYMLINK);
    assert_non_null(strstr(err.msg, "sub/up"));
    assert_store_untouched(f);
    unlink(up);

    /* links pointing at each other never resolve */
    char *l1 = path_join(f->site, "l1"), *l2 = path_join(f->site, "l2");
    assert_int_equal(symlink("l2", l1), 0);
    assert_int_equal(symlink("l1", l2), 0);
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), RELEASE_ESYMLINK);
    /* both are named, not only the one the walk met first */
    assert_non_null(strstr(err.msg, "2 files cannot be released"));
    assert_int_equal(res.problems_total, 2);
    assert_non_null(strstr(res.problems[0].path, "/l1"));
    assert_string_equal(res.problems[0].why,
                        "symbolic link to l2 never resolves: the links form a loop");
    assert_non_null(strstr(res.problems[1].path, "/l2"));
    assert_store_untouched(f);
    unlink(l1);
    unlink(l2);

    /* a dangling link names itself */
    assert_int_equal(symlink("missing.txt", l1), 0);
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), RELEASE_ESYMLINK);
    assert_non_null(strstr(err.msg, "/l1"));
    assert_store_untouched(f);
    free(sub);
    free(up);
    free(l1);
    free(l2);
}

/* Links relative to f->site: ln -s target site/rel. */
static void link_at(struct fixture *f, const char *target, const char *rel)
{
    char *p = path_join(f->site, rel);
    assert_int_equal(symlink(target, p), 0);
    free(p);
}

/* Every bad link is reported in one run, not only the first one met: the
 * first RELEASE_PROBLEMS_SHOWN by path, each naming the link and what it
 * says, the same on one thread and on eight, and nothing stored. */
static void test_create_bad_links_all_reported(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "a.txt", "x\n");
    write_str(f->dir, "outside.txt", "secret\n");
    for (int i = 0; i < 25; i++) {
        char rel[32];
        snprintf(rel, sizeof(rel), "out/l%02d.txt", i);
        if (i == 0) {
            char *d = path_join(f->site, "out");
            assert_int_equal(mkdir(d, 0755), 0);
            free(d);
        }
        link_at(f, "../../outside.txt", rel);
    }
    link_at(f, "nowhere.txt", "dangling.txt");
    link_at(f, "..", "out/up");
    char *id = NULL;
    struct release_create_result res;
    struct sw_err err;
    for (int threads = 1; threads <= 8; threads += 7) {
        assert_int_equal(create(f, NULL, threads, &id, &res, &err), RELEASE_ESYMLINK);
        assert_null(id);
        assert_int_equal(res.problems_total, 27);
        assert_int_equal(res.nproblems, RELEASE_PROBLEMS_SHOWN);
        assert_non_null(strstr(err.msg, "27 files cannot be released"));
        /* path order: dangling.txt, out/l00.txt … out/l18.txt */
        char *want = path_join(f->site, "dangling.txt");
        assert_string_equal(res.problems[0].path, want);
        free(want);
        assert_string_equal(res.problems[0].why,
                            "symbolic link to nowhere.txt is dangling: nothing is there");
        for (size_t i = 1; i < res.nproblems; i++) {
            assert_true(strcmp(res.problems[i - 1].path, res.problems[i].path) < 0);
            assert_int_equal(res.problems[i].code, RELEASE_ESYMLINK);
            assert_non_null(strstr(res.problems[i].why, "symbolic link to ../../outside.txt points "
                                                        "outside the directory (to /"));
            assert_non_null(strstr(res.problems[i].why, "--follow-symlinks"));
        }
        char rel[32];
        snprintf(rel, sizeof(rel), "out/l%02d.txt", RELEASE_PROBLEMS_SHOWN - 2);
        want = path_join(f->site, rel);
        assert_string_equal(res.problems[RELEASE_PROBLEMS_SHOWN - 1].path, want);
        free(want);
        assert_store_untouched(f);
    }

    /* With only the loop left, it is found and named: err is the one problem. */
    for (int i = 0; i < 25; i++) {
        char rel[32];
        snprintf(rel, sizeof(rel), "out/l%02d.txt", i);
        char *p = path_join(f->site, rel);
        unlink(p);
        free(p);
    }
    char *p = path_join(f->site, "dangling.txt");
    unlink(p);
    free(p);
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), RELEASE_ESYMLINK);
    assert_int_equal(res.problems_total, 1);
    char *want = xasprintf("%s/out/up: symbolic link to .. is a loop", f->site);
    assert_non_null(strstr(err.msg, want));
    free(want);
    assert_store_untouched(f);
}

/* --follow-symlinks: a link leaving the directory is released as what it
 * points to, under the link's name: a file, or a directory and everything
 * under it; links inside a followed directory are followed too, and a loop
 * or a dangling link is still refused. */
static void test_create_follow_symlinks(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "a.txt", "inside\n");
    write_str(f->dir, "shared/logo.svg", "<svg/>\n");
    write_str(f->dir, "shared/fonts/inter.woff2", "font bytes\n");
    write_str(f->dir, "shared/fonts/deeper/x.txt", "deep\n");
    write_str(f->dir, "single.txt", "one file\n");
    link_at(f, "../single.txt", "single.txt");
    link_at(f, "../shared", "assets");
    /* inside the followed directory: a link back into the site, and one further out */
    char *back = path_join(f->dir, "shared/fonts/a-again.txt");
    assert_int_equal(symlink("../../site/a.txt", back), 0);
    char *further = path_join(f->dir, "shared/single-too.txt");
    assert_int_equal(symlink("../single.txt", further), 0);

    /* without the flag: refused, both links named */
    char *id = NULL;
    struct release_create_result res;
    struct sw_err err;
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), RELEASE_ESYMLINK);
    assert_int_equal(res.problems_total, 2);
    assert_non_null(strstr(res.problems[0].path, "/assets"));
    assert_non_null(strstr(res.problems[1].path, "/single.txt"));
    assert_store_untouched(f);

    struct release_create_opts o = {.dir = f->site, .follow_symlinks = 1};
    for (int threads = 1; threads <= 8; threads += 7) {
        o.threads = threads;
        id = NULL;
        int rc = create_opts(f, &o, &id, &res, &err);
        if (rc)
            print_message("# %s\n", err.msg);
        assert_int_equal(rc, 0);
        struct release *r = NULL;
        assert_int_equal(release_load(f->st, id, &r, &err), 0);
        static const char *const paths[] = {"a.txt",
                                            "assets/fonts/a-again.txt",
                                            "assets/fonts/deeper/x.txt",
                                            "assets/fonts/inter.woff2",
                                            "assets/logo.svg",
                                            "assets/single-too.txt",
                                            "single.txt"};
        assert_int_equal(r->nfiles, sizeof(paths) / sizeof(*paths));
        for (size_t i = 0; i < r->nfiles; i++)
            assert_string_equal(r->files[i].path, paths[i]);
        char hex[SHA256_HEX_LEN + 1];
        sha256_hex("one file\n", 9, hex);
        assert_string_equal(find_file(r, "single.txt")->blob, hex);
        assert_int_equal(find_file(r, "single.txt")->size, 9);
        assert_string_equal(find_file(r, "assets/single-too.txt")->blob, hex);
        sha256_hex("deep\n", 5, hex);
        assert_string_equal(find_file(r, "assets/fonts/deeper/x.txt")->blob, hex);
        assert_string_equal(find_file(r, "assets/fonts/a-again.txt")->blob,
                            find_file(r, "a.txt")->blob);
        /* the body itself is in the store */
        char key[128];
        release_blob_key(find_file(r, "assets/logo.svg")->blob, key, sizeof(key));
        char *data = NULL;
        size_t len = 0;
        assert_int_equal(store_get(f->st, key, &data, &len, NULL, &err), 0);
        assert_int_equal(len, 7);
        assert_memory_equal(data, "<svg/>\n", 7);
        free(data);
        release_free(r);
        free(id);
    }

    /* a loop through the followed directory is refused, naming the link */
    size_t releases = count_keys(f->st, "releases/");
    char *loop = path_join(f->dir, "shared/fonts/deeper/loop");
    assert_int_equal(symlink("../..", loop), 0);
    id = NULL;
    assert_int_equal(create_opts(f, &o, &id, &res, &err), RELEASE_ESYMLINK);
    assert_int_equal(res.problems_total, 1);
    char *want =
        xasprintf("%s/assets/fonts/deeper/loop: symbolic link to ../.. is a loop", f->site);
    assert_non_null(strstr(err.msg, want));
    free(want);
    unlink(loop);
    /* a followed directory that leads back to the site itself is a loop too */
    char *site_again = path_join(f->dir, "shared/site-again");
    assert_int_equal(symlink("../site", site_again), 0);
    assert_int_equal(create_opts(f, &o, &id, &res, &err), RELEASE_ESYMLINK);
    assert_non_null(strstr(err.msg, "/assets/site-again: symbolic link to ../site is a loop"));
    unlink(site_again);
    /* a dangling link is refused with the flag as without it */
    link_at(f, "../gone.txt", "gone.txt");
    assert_int_equal(create_opts(f, &o, &id, &res, &err), RELEASE_ESYMLINK);
    assert_non_null(strstr(err.msg, "/gone.txt: symbolic link to ../gone.txt is dangling"));
    assert_null(id);
    assert_int_equal(count_keys(f->st, "releases/"), releases);
    free(back);
    free(further);
    free(loop);
    free(site_again);
}

/* A name no request could reach, or no manifest could hold, is refused before
 * anything is stored; every such file is listed with its reason, and a
 * directory refused is reported once, not with everything under it. Names
 * that only need percent-encoding ('?', '#', '%', spaces) are released. */
static void test_create_refused_names(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "ok.txt", "fine\n");
    write_str(f->site, "what?#50%.txt", "encoded in a URL, but servable\n");
    write_str(f->site, "a\\b.txt", "1\n");
    write_str(f->site, "tab\there.txt", "2\n");
    write_str(f->site, "del\x7f.txt", "3\n");
    write_str(f->site, "c1\xc2\x85.txt", "4\n");     /* U+0085, a C1 control */
    write_str(f->site, "latin1-caf\xe9.txt", "5\n"); /* not UTF-8 */
    write_str(f->site, "both\\\x01.txt", "6\n");
    write_str(f->site, "dir\\x/one.txt", "7\n");
    write_str(f->site, "dir\\x/two.txt", "8\n");
    write_str(f->site, "_slipway/health", "9\n");
    write_str(f->site, "deep/_slipway/ok.txt", "a nested _slipway is an ordinary path\n");
    char *id = NULL;
    struct release_create_result res;
    struct sw_err err;
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), SW_EINVAL);
    assert_null(id);
    assert_store_untouched(f);
    assert_non_null(strstr(err.msg, "8 files cannot be released"));
    struct {
        const char *rel, *why;
    } want[] = {
        {"_slipway", "the edge keeps /_slipway/ for its own endpoints, so nothing under it can "
                     "be served"},
        {"a\\b.txt", "contains a backslash, which no URL can name"},
        {"both\\\x01.txt", "contains a control character, which a release cannot hold; contains a "
                           "backslash, which no URL can name"},
        {"c1\xc2\x85.txt", "contains a control character, which a release cannot hold"},
        {"del\x7f.txt", "contains a control character, which a release cannot hold"},
        {"dir\\x", "contains a backslash, which no URL can name"},
        {"latin1-caf\xe9.txt", "not valid UTF-8, which a release cannot hold"},
        {"tab\there.txt", "contains a control character, which a release cannot hold"},
    };
    assert_int_equal(res.problems_total, 8);
    assert_int_equal(res.nproblems, 8);
    for (size_t i = 0; i < 8; i++) {
        char *path = path_join(f->site, want[i].rel);
        assert_string_equal(res.problems[i].path, path);
        assert_string_equal(res.problems[i].why, want[i].why);
        assert_int_equal(res.problems[i].code, SW_EINVAL);
        free(path);
    }

    /* a bad name and a bad link: both listed, under the code for a mix */
    link_at(f, "nowhere", "dangling");
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), RELEASE_EFILES);
    assert_int_equal(res.problems_total, 9);
    assert_store_untouched(f);

    /* the directory as the caller named it, with a trailing slash */
    char *slashed = xasprintf("%s/", f->site);
    struct release_create_opts o = {.dir = slashed};
    assert_int_equal(create_opts(f, &o, &id, &res, &err), RELEASE_EFILES);
    char *first = path_join(f->site, "_slipway");
    assert_string_equal(res.problems[0].path, first);
    free(first);
    free(slashed);

    /* once they are gone, the odd but servable names are released */
    char *cmd = xasprintf("cd '%s' && rm -rf _slipway a?b.txt both* c1* del* dir* latin1* tab* "
                          "dangling",
                          f->site);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    struct release *r = create_ok(f, NULL, 0, NULL);
    assert_int_equal(r->nfiles, 3);
    assert_non_null(find_file(r, "what?#50%.txt"));
    assert_non_null(find_file(r, "deep/_slipway/ok.txt"));
    release_free(r);
}

static void test_create_special_files(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "a.txt", "x\n");
    char *fifo = path_join(f->site, "dir/pipe");
    char *dir = path_join(f->site, "dir");
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    char *id = NULL;
    struct release_create_result res;
    struct sw_err err;
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), RELEASE_ESPECIAL);
    assert_non_null(strstr(err.msg, "dir/pipe"));
    assert_store_untouched(f);
    unlink(fifo);

    /* a socket */
    char *sock = path_join(f->site, "dir/s.sock");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(sock) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), RELEASE_ESPECIAL);
    assert_non_null(strstr(err.msg, "s.sock"));
    close(fd);
    unlink(sock);
    /* a link to a FIFO the walk itself skips (under .git/) is refused the same way */
    char *hidden = path_join(f->site, ".git/pipe");
    char *gitdir = path_join(f->site, ".git");
    assert_int_equal(mkdir(gitdir, 0755), 0);
    assert_int_equal(mkfifo(hidden, 0644), 0);
    char *link = path_join(f->site, "link");
    assert_int_equal(symlink(".git/pipe", link), 0);
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), RELEASE_ESPECIAL);
    assert_non_null(strstr(err.msg, "/link"));
    assert_store_untouched(f);
    free(hidden);
    free(gitdir);
    free(fifo);
    free(dir);
    free(sock);
    free(link);
}

static void test_create_empty_and_missing(void **state)
{
    struct fixture *f = *state;
    char *id = NULL;
    struct release_create_result res;
    struct sw_err err;
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), RELEASE_EEMPTY);
    assert_non_null(strstr(err.msg, f->site));
    /* only empty directories and repository metadata: still empty */
    char *d = path_join(f->site, "a/b/c");
    assert_int_equal(fs_mkdir_p(d, NULL), 0);
    write_str(f->site, ".git/config", "[core]\n");
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), RELEASE_EEMPTY);
    assert_store_untouched(f);

    struct release_create_opts o = {.dir = "/nonexistent/sw-site"};
    assert_int_equal(release_create(f->st, &o, &id, &res, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/sw-site"));
    /* a file is not a directory */
    write_str(f->dir, "plain.txt", "x");
    char *plain = path_join(f->dir, "plain.txt");
    o.dir = plain;
    assert_int_equal(release_create(f->st, &o, &id, &res, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "plain.txt"));
    assert_null(id);
    assert_store_untouched(f);
    free(plain);
    free(d);
}

/* File names become manifest paths and URLs: a name the manifest cannot carry
 * must be refused, never silently dropped from the release. */
static void test_create_odd_names(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "a.txt", "x\n");
    write_str(f->site, "with space.txt", "s\n");
    write_str(f->site, "caf\xc3\xa9/men\xc3\xbc.html", "u\n");
    struct release *r = create_ok(f, NULL, 0, NULL);
    assert_int_equal(r->nfiles, 3);
    assert_non_null(find_file(r, "with space.txt"));
    assert_non_null(find_file(r, "caf\xc3\xa9/men\xc3\xbc.html"));
    release_free(r);

    char *id = NULL;
    struct release_create_result res;
    struct sw_err err;
    write_str(f->site, "new\nline.txt", "n\n");
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "new\nline.txt: contains a control character"));
    char *p = path_join(f->site, "new\nline.txt");
    unlink(p);
    free(p);
    /* no request can name a backslash: refused, naming the file */
    write_str(f->site, "win\\dows.txt", "w\n");
    assert_int_equal(create(f, NULL, 0, &id, &res, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "win\\dows.txt: contains a backslash, which no URL can name"));
    p = path_join(f->site, "win\\dows.txt");
    unlink(p);
    free(p);

    /* a message that is not UTF-8 is refused before anything is stored */
    struct release_create_opts o = {.dir = f->site, .message = "caf\xe9"};
    size_t blobs = count_keys(f->st, RELEASE_BLOB_PREFIX);
    write_str(f->site, "fresh.txt", "a body not stored yet\n");
    assert_int_equal(release_create(f->st, &o, &id, &res, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "message"));
    assert_int_equal(count_keys(f->st, RELEASE_BLOB_PREFIX), blobs);
    p = path_join(f->site, "fresh.txt");
    unlink(p);
    free(p);

    /* Bytes that pass a loose UTF-8 check but are not UTF-8 (an overlong NUL,
     * a UTF-16 surrogate, a code point above U+10FFFF). */
    static const char *const bad[] = {"over\xc0\x80long.txt", "sur\xed\xa0\x80rogate.txt",
                                      "big\xf4\x90\x80\x80.txt", "lone\xff.txt"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        write_str(f->site, bad[i], "b\n");
        id = NULL;
        int rc = create(f, NULL, 0, &id, &res, &err);
        if (rc == 0) {
            /* accepted: then it must be in the manifest, and the count must agree */
            assert_int_equal(release_load(f->st, id, &r, &err), 0);
            if (r->nfiles != res.files)
                print_message("# name %zu: %zu files created, manifest lists %zu\n", i, res.files,
                              r->nfiles);
            assert_int_equal(r->nfiles, res.files);
            assert_int_equal(r->nfiles, 4);
            release_free(r);
            free(id);
        } else {
            assert_int_equal(rc, SW_EINVAL);
            assert_non_null(strstr(err.msg, "UTF-8"));
        }
        p = path_join(f->site, bad[i]);
        unlink(p);
        free(p);
    }
}

/* ---- manifests ------------------------------------------------------------------ */

static char *run_line(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[256] = "";
    if (!fgets(line, sizeof(line), p))
        line[0] = '\0';
    pclose(p);
    line[strcspn(line, "\n")] = '\0';
    return xstrdup(line);
}

static void test_manifest_round_trip(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "index.html", "<p>hi</p>\n");
    write_str(f->site, "hello.txt", "hello\n");
    write_str(f->site, "js/app.3f9a2c1d.js", "console.log(1)\n");
    write_str(f->site, "we\"ird name.txt", "q\n"); /* JSON must escape these */
    char *cmd = xasprintf("cd %s && git init -q -b main && git add -A && "
                          "git -c user.name=t -c user.email=t@example.com commit -qm init && "
                          "git tag v1.0",
                          f->site);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    cmd = xasprintf("git -C %s rev-parse HEAD", f->site);
    char *head = run_line(cmd);
    free(cmd);
    assert_int_equal(strlen(head), 40);

    const char *message = "first \"release\" ✓\n\ttab \\ backslash";
    /* Control characters other than line breaks and tabs could forge a line
     * of someone's terminal: refused before anything is stored. */
    {
        struct release_create_opts bad = {.dir = f->site, .message = "a\x1b[2Jb"};
        struct release_create_result bres;
        struct sw_err berr = {0};
        char *bid = NULL;
        assert_int_equal(release_create(f->st, &bad, &bid, &bres, &berr), SW_EINVAL);
        assert_null(bid);
        assert_non_null(strstr(berr.msg, "control characters"));
    }
    struct release_create_opts o = {.dir = f->site, .message = message};
    struct release_create_result res;
    struct sw_err err = {0};
    char *id = NULL;
    int64_t before = time_now_ms();
    assert_int_equal(release_create(f->st, &o, &id, &res, &err), 0);
    int64_t after = time_now_ms();
    struct release *r;
    assert_int_equal(release_load(f->st, id, &r, &err), 0);
    assert_string_equal(r->id, id);
    assert_true(r->created_ms >= before && r->created_ms <= after);
    assert_string_equal(r->message, message);
    assert_string_equal(r->user, sys_user());
    assert_string_equal(r->host, sys_host());
    char *real = realpath(f->site, NULL);
    assert_string_equal(r->source_dir, real);
    assert_string_equal(r->commit, head);
    assert_string_equal(r->ref, "refs/heads/main");
    assert_string_equal(r->tag, "v1.0");
    assert_int_equal(r->nfiles, 4);
    assert_int_equal(r->bytes, 10 + 6 + 15 + 2);
    assert_non_null(find_file(r, "we\"ird name.txt"));
    const struct release_file *h = find_file(r, "hello.txt");
    assert_non_null(h);
    assert_string_equal(h->blob,
                        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
    assert_int_equal(h->size, 6);
    assert_string_equal(h->type, "text/plain; charset=utf-8");
    assert_string_equal(h->cache, REVALIDATE);
    assert_string_equal(find_file(r, "js/app.3f9a2c1d.js")->cache, IMMUTABLE);
    assert_string_equal(find_file(r, "js/app.3f9a2c1d.js")->type, "text/javascript; charset=utf-8");
    assert_null(find_file(r, ".git/HEAD"));
    /* the id encodes the creation time: r-YYYYMMDD-HHMMSS-mmm-xxxxxx */
    char iso[40];
    time_format_iso(r->created_ms, iso, sizeof(iso));
    char *want = xasprintf("r-%.4s%.2s%.2s-%.2s%.2s%.2s-%.3s-", iso, iso + 5, iso + 8, iso + 11,
                           iso + 14, iso + 17, iso + 20);
    assert_true(str_starts_with(id, want));
    assert_int_equal(strlen(id), strlen(want) + 6);
    free(want);
    release_free(r);
    free(id);

    /* outside a repository: no git facts, no message */
    char *plain = path_join(f->dir, "plain");
    write_str(plain, "x.txt", "x\n");
    o = (struct release_create_opts){.dir = plain};
    assert_int_equal(release_create(f->st, &o, &id, &res, &err), 0);
    assert_int_equal(release_load(f->st, id, &r, &err), 0);
    assert_null(r->message);
    assert_null(r->commit);
    assert_null(r->ref);
    assert_null(r->tag);
    release_free(r);
    free(id);

    /* missing and malformed manifests */
    assert_int_equal(release_load(f->st, "r-19990101-000000-000-000000", &r, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "r-19990101-000000-000-000000"));
    assert_int_equal(store_put(f->st, "releases/r-broken.json", "{\"id\": 1", 8, 0, NULL, NULL), 0);
    assert_int_equal(release_load(f->st, "r-broken", &r, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "releases/r-broken.json"));
    assert_non_null(strstr(err.msg, "line 1"));
    const char *partial =
        "{\"id\":\"r-p\",\"created\":\"2026-01-01T00:00:00Z\",\"files\":[{\"path\":"
        "\"a\",\"blob\":\"00\",\"size\":1,\"type\":\"t\",\"cache\":\"c\"}]}";
    assert_int_equal(store_put(f->st, "releases/r-p.json", partial, strlen(partial), 0, NULL, NULL),
                     0);
    assert_int_equal(release_load(f->st, "r-p", &r, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "files[0]"));
    free(plain);
    free(real);
    free(head);
}

/* A pipeline's release: the commit, ref and run it names are recorded as
 * given (no git is asked), the tag follows from a tag ref, and a run field
 * that is not an id is refused both when creating and when reading back. */
static void test_manifest_given_source(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "index.html", "<p>hi</p>\n");
    const char *sha = "0123456789abcdef0123456789abcdef01234567";
    struct release_create_opts o = {
        .dir = f->site, .commit = sha, .ref = "refs/tags/v1.2.3", .run = "run-20260101-x"};
    struct release_create_result res;
    struct sw_err err = {0};
    char *id = NULL;
    assert_int_equal(release_create(f->st, &o, &id, &res, &err), 0);
    struct release *r;
    assert_int_equal(release_load(f->st, id, &r, &err), 0);
    assert_string_equal(r->commit, sha);
    assert_string_equal(r->ref, "refs/tags/v1.2.3");
    assert_string_equal(r->tag, "v1.2.3");
    assert_string_equal(r->run, "run-20260101-x");
    assert_int_equal(r->dirty, 0);
    release_free(r);
    free(id);

    o.ref = "refs/heads/main";
    o.run = NULL;
    assert_int_equal(release_create(f->st, &o, &id, &res, &err), 0);
    assert_int_equal(release_load(f->st, id, &r, &err), 0);
    assert_null(r->tag);
    assert_null(r->run);
    release_free(r);
    free(id);

    /* refused before anything is stored */
    const struct release_create_opts bad[] = {
        {.dir = f->site, .commit = sha, .run = "../runs/x"},
        {.dir = f->site, .commit = sha, .ref = "a\nb"},
        {.dir = f->site, .commit = ""},
        {.dir = f->site, .run = "run-1"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        id = NULL;
        assert_int_equal(release_create(f->st, &bad[i], &id, &res, &err), SW_EINVAL);
        assert_null(id);
        assert_non_null(strstr(err.msg, "source"));
    }

    /* read back as hostile input */
    static const char head[] =
        "{\"format\":1,\"id\":\"r-run\",\"created\":\"2026-01-01T00:00:00Z\","
        "\"source\":{\"commit\":\"abc\",\"run\":";
    const char *runs[] = {"\"../x\"", "\"a\\nb\"", "7", "\"run-ok\""};
    for (size_t i = 0; i < 4; i++) {
        char *doc = xasprintf("%s%s},\"files\":[]}", head, runs[i]);
        int rc = release_manifest_parse("releases/r-run.json", "r-run", doc, strlen(doc), &r, &err);
        if (i < 3) {
            assert_int_equal(rc, SW_EINVAL);
            assert_non_null(strstr(err.msg, "releases/r-run.json"));
        } else {
            assert_int_equal(rc, 0);
            assert_string_equal(r->run, "run-ok");
            release_free(r);
        }
        free(doc);
    }
}

/* The manifest parser against hostile documents: each mutation of a good
 * manifest must be refused with the reason, never half-used. */
#define BHEX "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
static void test_manifest_parse_hostile(void **state)
{
    static const char good_head[] =
        "{\"format\":1,\"id\":\"r-1\",\"created\":\"2026-01-01T00:00:00Z\","
        "\"source\":{\"dir\":\"/s\"},\"files\":[";
    static const char blob[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    struct {
        const char *files; /* the files array's contents */
        const char *why;   /* NULL: accepted */
    } cases[] = {
        {"{\"path\":\"a.txt\",\"blob\":\"%s\",\"size\":1,\"type\":\"text/"
         "plain\",\"cache\":\"no-cache\"}",
         NULL},
        {"{\"path\":\"../a\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\"}", "path"},
        {"{\"path\":\"a/../b\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\"}", "path"},
        {"{\"path\":\"\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\"}", "path"},
        {"{\"path\":\"a\\u0000b\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\"}",
         "NUL"},
        {"{\"path\":\"a\\u001bb\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\"}",
         "path"},
        {"{\"path\":\"a\",\"blob\":\"../%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\"}", "blob"},
        {"{\"path\":\"a\",\"blob\":\"%.63s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\"}", "blob"},
        {"{\"path\":\"a\",\"blob\":\"%.63sG\",\"size\":1,\"type\":\"t\",\"cache\":\"c\"}", "blob"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1.5,\"type\":\"t\",\"cache\":\"c\"}", "needs"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":2000000000000,\"type\":\"t\",\"cache\":\"c\"}",
         "size"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\\r\\nX: y\",\"cache\":\"c\"}",
         "header"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"type\":\"\",\"cache\":\"c\"}", "header"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\"},"
         "{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\"}",
         "sorted"},
        {"{\"path\":\"b\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\"},"
         "{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\"}",
         "sorted"},
        {"7", "needs"},
        /* mtime: optional, whole seconds from 1970 to 9999 */
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"mtime\":784111777,\"type\":\"t\","
         "\"cache\":\"c\"}",
         NULL},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"mtime\":0,\"type\":\"t\",\"cache\":\"c\"}",
         NULL},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"mtime\":null,\"type\":\"t\","
         "\"cache\":\"c\"}",
         NULL},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"mtime\":253402300799,\"type\":\"t\","
         "\"cache\":\"c\"}",
         NULL},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"mtime\":253402300800,\"type\":\"t\","
         "\"cache\":\"c\"}",
         "mtime"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"mtime\":-1,\"type\":\"t\",\"cache\":\"c\"}",
         "mtime"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"mtime\":9223372036854775807,\"type\":"
         "\"t\",\"cache\":\"c\"}",
         "mtime"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"mtime\":1.5,\"type\":\"t\",\"cache\":\"c\"}",
         "mtime"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"mtime\":\"1\",\"type\":\"t\",\"cache\":"
         "\"c\"}",
         "mtime"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"mtime\":true,\"type\":\"t\",\"cache\":"
         "\"c\"}",
         "mtime"},
        /* variants: a cache path and a body sent in place of the file */
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":100,\"type\":\"t\",\"cache\":\"c\","
         "\"gzip\":{\"blob\":\"%s\",\"size\":99,\"level\":9},\"br\":null}",
         "variant"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":100,\"type\":\"t\",\"cache\":\"c\","
         "\"gzip\":\"%s\"}",
         "variant"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":100,\"type\":\"t\",\"cache\":\"c\","
         "\"br\":{\"blob\":\"../../%.58s\",\"size\":9}}",
         "variant's blob"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":100,\"type\":\"t\",\"cache\":\"c\","
         "\"br\":{\"blob\":\"%.63sA\",\"size\":9}}",
         "variant's blob"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":100,\"type\":\"t\",\"cache\":\"c\","
         "\"br\":{\"blob\":\"%s\",\"size\":100}}",
         "variant's size"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":100,\"type\":\"t\",\"cache\":\"c\","
         "\"gzip\":{\"blob\":\"%s\",\"size\":0}}",
         "variant's size"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":100,\"type\":\"t\",\"cache\":\"c\","
         "\"gzip\":{\"blob\":\"%s\",\"size\":-5}}",
         "variant's size"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":0,\"type\":\"t\",\"cache\":\"c\","
         "\"gzip\":{\"blob\":\"%s\",\"size\":1}}",
         "variant's size"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":100,\"type\":\"t\",\"cache\":\"c\","
         "\"gzip\":{\"blob\":\"%s\",\"size\":\"9\"}}",
         "variant"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":100,\"type\":\"t\",\"cache\":\"c\","
         "\"gzip\":{\"size\":9%.0s}}",
         "variant"},
        /* packs: a slice [at, at + size) of an object the edge reads into memory */
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\","
         "\"pack\":\"%s\",\"at\":67108863}",
         NULL},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":100,\"type\":\"t\",\"cache\":\"c\","
         "\"br\":{\"blob\":\"%s\",\"size\":9,\"pack\":\"" BHEX "\",\"at\":0}}",
         NULL},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\","
         "\"pack\":\"%s\"}",
         "pack and at"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\","
         "\"at\":0%.0s}",
         "pack and at"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\","
         "\"pack\":\"%s\",\"at\":\"0\"}",
         "pack and at"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\","
         "\"pack\":\"../../%.58s\",\"at\":0}",
         "pack is not"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\","
         "\"pack\":\"%.63sA\",\"at\":0}",
         "pack is not"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\","
         "\"pack\":\"%s\",\"at\":-1}",
         "at is out of range"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":1,\"type\":\"t\",\"cache\":\"c\","
         "\"pack\":\"%s\",\"at\":67108864}",
         "at is out of range"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":65537,\"type\":\"t\",\"cache\":\"c\","
         "\"pack\":\"%s\",\"at\":0}",
         "larger than 64 KiB"},
        {"{\"path\":\"a\",\"blob\":\"%s\",\"size\":100,\"type\":\"t\",\"cache\":\"c\","
         "\"gzip\":{\"blob\":\"%s\",\"size\":9,\"pack\":\"" BHEX "\",\"at\":9223372036854775807}}",
         "out of range"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *files = xasprintf(cases[i].files, blob, blob);
        char *doc = xasprintf("%s%s]}", good_head, files);
        struct release *r = NULL;
        struct sw_err err = {0};
        int rc = release_manifest_parse("releases/r-1.json", "r-1", doc, strlen(doc), &r, &err);
        if (!cases[i].why) {
            assert_int_equal(rc, 0);
            assert_int_equal(r->nfiles, 1);
        } else {
            if (rc == 0)
                fail_msg("case %zu accepted: %s", i, doc);
            assert_int_equal(rc, SW_EINVAL);
            assert_null(r);
            if (!strstr(err.msg, cases[i].why))
                fail_msg("case %zu: '%s' does not say '%s'", i, err.msg, cases[i].why);
        }
        release_free(r);
        free(doc);
        free(files);
    }
    /* a good variant is read, an unknown key inside it ignored, as elsewhere */
    struct release *r = NULL;
    struct sw_err err = {0};
    char *doc = xasprintf("%s{\"path\":\"a\",\"blob\":\"%s\",\"size\":100,\"type\":\"t\","
                          "\"cache\":\"c\",\"br\":{\"blob\":\"%s\",\"size\":99,\"q\":11}}]}",
                          good_head, blob, blob);
    assert_int_equal(release_manifest_parse("k", "r-1", doc, strlen(doc), &r, &err), 0);
    assert_string_equal(r->files[0].var[RELEASE_BR].blob, blob);
    assert_int_equal(r->files[0].var[RELEASE_BR].size, 99);
    assert_int_equal(r->files[0].var[RELEASE_GZIP].blob[0], '\0');
    release_free(r);
    r = NULL;
    free(doc);
    /* the id inside must be the one asked for, and well formed */
    const char *other = "{\"id\":\"r-2\",\"created\":\"2026-01-01T00:00:00Z\",\"files\":[]}";
    assert_int_equal(release_manifest_parse("k", "r-1", other, strlen(other), &r, &err), SW_EINVAL);
    const char *slash = "{\"id\":\"../x\",\"created\":\"2026-01-01T00:00:00Z\",\"files\":[]}";
    assert_int_equal(release_manifest_parse("k", NULL, slash, strlen(slash), &r, &err), SW_EINVAL);
    assert_false(release_id_valid(""));
    assert_false(release_id_valid(".hidden"));
    assert_false(release_id_valid("a/b"));
    assert_true(release_id_valid("r-20261125-082506-123-9f3a1c"));
    assert_true(release_path_valid(".well-known/x"));
    assert_false(release_path_valid("a\\b"));
}

static void test_list_and_resolve(void **state)
{
    struct fixture *f = *state;
    char **ids;
    size_t n;
    struct sw_err err = {0};
    assert_int_equal(release_list(f->st, &ids, &n, &err), 0);
    assert_int_equal(n, 0);
    release_ids_free(ids, n);

    char *made[4];
    for (int i = 0; i < 4; i++) {
        char body[16];
        snprintf(body, sizeof(body), "v%d\n", i);
        write_str(f->site, "v.txt", body);
        struct release *r = create_ok(f, NULL, 0, NULL);
        made[i] = xstrdup(r->id);
        release_free(r);
    }
    /* keys that are not manifests are not releases */
    assert_int_equal(store_put(f->st, "releases/notes.txt", "x", 1, 0, NULL, NULL), 0);
    assert_int_equal(store_put(f->st, "releases/old/r-x.json", "x", 1, 0, NULL, NULL), 0);
    assert_int_equal(release_list(f->st, &ids, &n, &err), 0);
    assert_int_equal(n, 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(ids[i], made[i]); /* oldest first = creation order */
    release_ids_free(ids, n);

    char *id = NULL;
    assert_int_equal(release_resolve(f->st, made[2], &id, &err), 0);
    assert_string_equal(id, made[2]);
    free(id);
    /* a unique prefix: everything but the last character */
    char *prefix = xstrndup(made[1], strlen(made[1]) - 1);
    assert_int_equal(release_resolve(f->st, prefix, &id, &err), 0);
    assert_string_equal(id, made[1]);
    free(id);
    free(prefix);
    /* a unique suffix: the random part */
    const char *suffix = strrchr(made[3], '-') + 1;
    assert_int_equal(release_resolve(f->st, suffix, &id, &err), 0);
    assert_string_equal(id, made[3]);
    free(id);
    id = NULL;
    assert_int_equal(release_resolve(f->st, "r-", &id, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "ambiguous"));
    assert_null(id);
    assert_int_equal(release_resolve(f->st, "r-19990101", &id, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "r-19990101"));
    assert_int_equal(release_resolve(f->st, "", &id, &err), SW_EINVAL);
    assert_null(id);
    for (int i = 0; i < 4; i++)
        free(made[i]);
}

static void test_verify(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "a.txt", "aaa\n");
    write_str(f->site, "css/b.css", "bbb\n");
    struct release *r = create_ok(f, NULL, 0, NULL);
    struct sw_err err = {0};
    assert_int_equal(release_verify(f->st, r, &err), 0);

    const struct release_file *b = find_file(r, "css/b.css");
    char key[128];
    release_blob_key(b->blob, key, sizeof(key));
    sf_delete(f->st, key);
    assert_int_equal(release_verify(f->st, r, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "css/b.css"));
    assert_non_null(strstr(err.msg, r->id));

    /* a truncated body is caught by its size */
    sf_put_str(f->st, key, "bb");
    assert_int_equal(release_verify(f->st, r, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "css/b.css"));
    release_free(r);
}

/* Moves every body of r into one pack (after a few bytes of padding, so no
 * body starts at 0): the loose blobs are deleted and r's manifest is written
 * again naming the pack. Returns the pack's key (caller frees). */
static char *pack_release(struct fixture *f, struct release *r)
{
    struct buf pack = BUF_INIT;
    char hex[SHA256_HEX_LEN + 1], key[128];
    buf_adds(&pack, "pad");
    for (size_t i = 0; i < r->nfiles; i++) {
        struct release_file *rf = &r->files[i];
        for (int k = 0; k <= RELEASE_VARIANTS; k++) {
            char *blob = k ? rf->var[k - 1].blob : rf->blob;
            char *in = k ? rf->var[k - 1].pack : rf->pack;
            uint64_t *at = k ? &rf->var[k - 1].at : &rf->at;
            if (!blob[0])
                continue;
            char *data = NULL;
            size_t len;
            struct sw_err err = {0};
            release_blob_key(blob, key, sizeof(key));
            if (store_get(f->st, key, &data, &len, NULL, &err) == SW_ENOTFOUND)
                continue; /* a body two files share: moved already */
            *at = pack.len;
            buf_add(&pack, data, len);
            free(data);
            sf_delete(f->st, key);
            snprintf(in, SHA256_HEX_LEN + 1, "%s", "pending");
        }
    }
    sha256_hex(pack.data, pack.len, hex);
    /* Bodies two files share point at the one copy. */
    for (size_t i = 0; i < r->nfiles; i++)
        for (size_t j = 0; j < r->nfiles; j++)
            if (!strcmp(r->files[i].blob, r->files[j].blob) && !strcmp(r->files[j].pack, "pending"))
                r->files[i].at = r->files[j].at;
    for (size_t i = 0; i < r->nfiles; i++) {
        snprintf(r->files[i].pack, sizeof(r->files[i].pack), "%s", hex);
        for (int k = 0; k < RELEASE_VARIANTS; k++)
            if (r->files[i].var[k].blob[0])
                snprintf(r->files[i].var[k].pack, sizeof(r->files[i].var[k].pack), "%s", hex);
    }
    release_pack_key(hex, key, sizeof(key));
    sf_put(f->st, key, pack.data, pack.len);
    buf_free(&pack);
    size_t len;
    char *doc = release_manifest_dump(r, &len), *mkey = xasprintf("releases/%s.json", r->id);
    assert_non_null(doc);
    sf_put(f->st, mkey, doc, len);
    free(mkey);
    free(doc);
    return xstrdup(key);
}

/* Packed bodies: written as format 2 and read back as they were; verify looks
 * each pack up once and checks it is long enough for every body in it. */
static void test_packs(void **state)
{
    struct fixture *f = *state;
    char big[4000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    write_str(f->site, "a.txt", "aaa\n");
    write_str(f->site, "b.txt", "aaa\n"); /* the same body */
    write_str(f->site, "css/c.css", big); /* with variants */
    struct release *r = create_ok(f, NULL, 0, NULL);
    assert_non_null(find_file(r, "css/c.css")->var[RELEASE_GZIP].blob[0] ? r : NULL);
    char *pkey = pack_release(f, r);
    struct sw_err err = {0};
    struct release *back = NULL;
    char *mkey = xasprintf("releases/%s.json", r->id), *doc = NULL;
    size_t len;
    assert_int_equal(store_get(f->st, mkey, &doc, &len, NULL, &err), 0);
    assert_non_null(strstr(doc, "\"format\":2"));
    assert_int_equal(release_load(f->st, r->id, &back, &err), 0);
    for (size_t i = 0; i < r->nfiles; i++) {
        assert_string_equal(back->files[i].pack, r->files[i].pack);
        assert_int_equal(back->files[i].at, r->files[i].at);
        for (int k = 0; k < RELEASE_VARIANTS; k++) {
            assert_string_equal(back->files[i].var[k].pack, r->files[i].var[k].pack);
            assert_int_equal(back->files[i].var[k].at, r->files[i].var[k].at);
        }
    }
    assert_int_equal(find_file(back, "a.txt")->at, 3);
    assert_int_equal(find_file(back, "b.txt")->at, 3);
    assert_int_equal(release_verify(f->st, back, &err), 0);

    /* a pack too short for its last body */
    char *data = NULL;
    size_t plen;
    assert_int_equal(store_get(f->st, pkey, &data, &plen, NULL, &err), 0);
    sf_put(f->st, pkey, data, plen - 1);
    assert_int_equal(release_verify(f->st, back, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "ends at byte"));
    assert_non_null(strstr(err.msg, pkey));
    /* and gone */
    sf_delete(f->st, pkey);
    assert_int_equal(release_verify(f->st, back, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, pkey));
    /* A release without packs is still format 1. */
    write_str(f->site, "d.txt", "d\n");
    struct release *plain = create_ok(f, NULL, 0, NULL);
    free(doc);
    free(mkey);
    mkey = xasprintf("releases/%s.json", plain->id);
    assert_int_equal(store_get(f->st, mkey, &doc, &len, NULL, &err), 0);
    assert_non_null(strstr(doc, "\"format\":1"));
    release_free(plain);
    free(data);
    free(doc);
    free(mkey);
    free(pkey);
    release_free(back);
    release_free(r);
}

static void test_diff(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "a.txt", "same\n");
    write_str(f->site, "b.txt", "old\n");
    write_str(f->site, "c.txt", "removed\n");
    struct release *ra = create_ok(f, NULL, 0, NULL);
    write_str(f->site, "b.txt", "changed!\n");
    char *c = path_join(f->site, "c.txt");
    unlink(c);
    free(c);
    write_str(f->site, "d/e.txt", "added\n");
    struct release *rb = create_ok(f, NULL, 0, NULL);

    struct release_change *ch;
    size_t n;
    assert_int_equal(release_diff(ra, rb, &ch, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ch[0].kind, '~');
    assert_string_equal(ch[0].path, "b.txt");
    assert_int_equal(ch[0].old_size, 4);
    assert_int_equal(ch[0].new_size, 9);
    assert_int_equal(ch[1].kind, '-');
    assert_string_equal(ch[1].path, "c.txt");
    assert_int_equal(ch[1].old_size, 8);
    assert_int_equal(ch[2].kind, '+');
    assert_string_equal(ch[2].path, "d/e.txt");
    assert_int_equal(ch[2].new_size, 6);
    free(ch);
    /* the other way round mirrors it */
    assert_int_equal(release_diff(rb, ra, &ch, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ch[1].kind, '+');
    assert_int_equal(ch[2].kind, '-');
    free(ch);
    /* unchanged: nothing */
    assert_int_equal(release_diff(ra, ra, &ch, &n), 0);
    assert_int_equal(n, 0);
    free(ch);
    /* against an empty release: everything added */
    struct release empty = {0};
    assert_int_equal(release_diff(&empty, rb, &ch, &n), 0);
    assert_int_equal(n, rb->nfiles);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ch[i].kind, '+');
    free(ch);
    release_free(ra);
    release_free(rb);
}

/* ---- stat cache ------------------------------------------------------------------- */

static void test_stat_cache(void **state)
{
    struct fixture *f = *state;
    enum { N = 20 };
    char name[32], body[64];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "d%d/f%02d.txt", i % 3, i);
        snprintf(body, sizeof(body), "body %d\n", i);
        write_str(f->site, name, body);
        set_mtime(f->site, name, -60); /* older than any racy window */
    }
    struct release_create_result res;
    struct release *r1 = create_ok(f, f->cache, 0, &res);
    assert_int_equal(res.hashed, N);
    assert_int_equal(access(f->cache, F_OK), 0);

    /* nothing changed: nothing read */
    struct release *r2 = create_ok(f, f->cache, 0, &res);
    assert_int_equal(res.hashed, 0);
    assert_int_equal(res.new_blobs, 0);
    assert_int_equal(r2->nfiles, N);
    for (size_t i = 0; i < N; i++)
        assert_string_equal(r2->files[i].blob, r1->files[i].blob);

    /* one file modified: exactly that one is read */
    write_str(f->site, "d1/f04.txt", "modified body\n");
    set_mtime(f->site, "d1/f04.txt", -30);
    struct release *r3 = create_ok(f, f->cache, 0, &res);
    assert_int_equal(res.hashed, 1);
    assert_int_equal(res.new_blobs, 1);
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex("modified body\n", 14, hex);
    assert_string_equal(find_file(r3, "d1/f04.txt")->blob, hex);

    /* Same size, mtime put back with utimensat, different content: only the
     * ctime tells, and it must. */
    char *path = path_join(f->site, "d2/f05.txt");
    struct stat before;
    assert_int_equal(stat(path, &before), 0);
    write_str(f->site, "d2/f05.txt", "BODY 5\n");
    struct timespec ts[2] = {before.st_atim, before.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    struct stat after;
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
    assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    struct release *r4 = create_ok(f, f->cache, 0, &res);
    assert_int_equal(res.hashed, 1);
    sha256_hex("BODY 5\n", 7, hex);
    assert_string_equal(find_file(r4, "d2/f05.txt")->blob, hex);

    /* a file whose mtime is not safely in the past is always read ("racy git") */
    set_mtime(f->site, "d0/f00.txt", 10);
    struct release *r5 = create_ok(f, f->cache, 0, &res);
    struct release *r6 = create_ok(f, f->cache, 0, &res);
    assert_int_equal(res.hashed, 1);

    /* a cached hash whose blob left the store is read and stored again */
    char key[128];
    release_blob_key(find_file(r6, "d1/f07.txt")->blob, key, sizeof(key));
    sf_delete(f->st, key);
    struct release *r7 = create_ok(f, f->cache, 0, &res);
    assert_int_equal(res.hashed, 2); /* d1/f07.txt and the racy d0/f00.txt */
    assert_int_equal(res.new_blobs, 1);
    assert_int_equal(release_verify(f->st, r7, NULL), 0);

    /* a corrupt cache costs time, not correctness */
    write_str(f->dir, "cache/stat", "garbage\nmore garbage\n");
    struct release *r8 = create_ok(f, f->cache, 0, &res);
    assert_int_equal(res.hashed, N);
    for (size_t i = 0; i < N; i++)
        assert_string_equal(r8->files[i].blob, r7->files[i].blob);

    free(path);
    release_free(r1);
    release_free(r2);
    release_free(r3);
    release_free(r4);
    release_free(r5);
    release_free(r6);
    release_free(r7);
    release_free(r8);
}

/* Names the cache must carry exactly: spaces anywhere, UTF-8. */
static void test_stat_cache_names(void **state)
{
    struct fixture *f = *state;
    const char *names[] = {" lead.txt", "trail .txt", "a  b/c d.txt", "caf\xc3\xa9.txt"};
    for (size_t i = 0; i < 4; i++) {
        write_str(f->site, names[i], names[i]);
        set_mtime(f->site, names[i], -60);
    }
    struct release_create_result res;
    struct release *r1 = create_ok(f, f->cache, 0, &res);
    assert_int_equal(res.hashed, 4);
    struct release *r2 = create_ok(f, f->cache, 0, &res);
    assert_int_equal(res.hashed, 0);
    for (size_t i = 0; i < 4; i++)
        assert_non_null(find_file(r2, names[i]));
    release_free(r1);
    release_free(r2);
}

/* ---- the hashing pool ----------------------------------------------------------- */

static void test_threads_same_manifest(void **state)
{
    struct fixture *f = *state;
    enum { N = 300 };
    size_t maxlen = 9u << 20; /* one body above the in-memory limit (8 MiB) */
    unsigned char *buf = xmalloc(maxlen);
    char name[64];
    for (int i = 0; i < N; i++) {
        /* files 250.. repeat the bodies of files 0.., so 250 distinct bodies */
        int j = i % 250;
        size_t len = j == 7 ? maxlen : (size_t)(j * 397 % 50000);
        fill(buf, len, (unsigned)j);
        /* One in eight is text (js, as is the big one, 7): each gets a gzip and a Brotli
         * try, of random bytes no variant is kept for, and that dominates the test's
         * time; fonts and images are stored as they are. */
        snprintf(name, sizeof(name), "dir%d/sub%d/file-%03d.%s", i % 7, i % 3, i,
                 i % 8 == 7 ? "js"
                 : i % 2    ? "woff2"
                            : "png");
        write_file(f->site, name, buf, len);
    }
    free(buf);
    struct release_create_result r1res, r8res;
    struct release *r1 = create_ok(f, NULL, 1, &r1res);
    struct release *r8 = create_ok(f, NULL, 8, &r8res);
    assert_int_equal(r1->nfiles, N);
    assert_int_equal(r8->nfiles, N);
    assert_int_equal(r1->bytes, r8->bytes);
    assert_int_equal(r1res.new_blobs, 250);
    assert_int_equal(r8res.new_blobs, 0);
    for (size_t i = 0; i < N; i++) {
        assert_string_equal(r1->files[i].path, r8->files[i].path);
        assert_string_equal(r1->files[i].blob, r8->files[i].blob);
        assert_int_equal(r1->files[i].size, r8->files[i].size);
        assert_string_equal(r1->files[i].type, r8->files[i].type);
        assert_string_equal(r1->files[i].cache, r8->files[i].cache);
    }
    /* the large body went through the streaming path: check it byte for byte */
    const struct release_file *big = find_file(r8, "dir0/sub1/file-007.js");
    assert_non_null(big);
    assert_int_equal(big->size, maxlen);
    char key[128], hex[SHA256_HEX_LEN + 1], *data;
    size_t len;
    release_blob_key(big->blob, key, sizeof(key));
    assert_int_equal(store_get(f->st, key, &data, &len, NULL, NULL), 0);
    assert_int_equal(len, maxlen);
    sha256_hex(data, len, hex);
    assert_string_equal(hex, big->blob);
    free(data);
    /* a fresh store on eight threads writes the same bodies as one thread did */
    struct store *st2;
    char *data2 = sf_store_url(f->dir, "data2");
    assert_int_equal(store_open(data2, &st2, NULL), 0);
    struct release_create_opts o = {.dir = f->site, .threads = 8};
    struct sw_err err = {0};
    char *id;
    assert_int_equal(release_create(st2, &o, &id, &r8res, &err), 0);
    assert_int_equal(r8res.new_blobs, 250);
    assert_int_equal(count_keys(st2, RELEASE_BLOB_PREFIX), 250);
    free(id);
    store_free(st2);
    free(data2);
    release_free(r1);
    release_free(r8);
}

/* A body reused by a new release is made young again, with and without the
 * stat cache: a gc running meanwhile must not see it as old and unreferenced. */
static void test_reused_bodies_touched(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "a.txt", "reused body\n");
    char *cache = path_join(f->dir, "cache/touch");
    for (int round = 0; round < 2; round++) {
        struct release *r1 = create_ok(f, round ? cache : NULL, 0, NULL);
        char key[128];
        release_blob_key(find_file(r1, "a.txt")->blob, key, sizeof(key));
        sf_age(f->st, f->data, key);
        int64_t before = sf_mtime_ms(f->st, key);
        struct release *r2 = create_ok(f, round ? cache : NULL, 0, NULL);
        int64_t after = sf_mtime_ms(f->st, key);
        assert_true(after > before);
        assert_true(after > time_now_ms() - 60 * 1000);
        release_free(r1);
        release_free(r2);
    }
    struct sw_err err = {0};
    assert_int_equal(store_touch(f->st, "blobs/sha256/00/missing", &err), SW_ENOTFOUND);
    assert_int_equal(store_touch(f->st, "../escape", &err), SW_EINVAL);
    free(cache);
}

/* release create records each file's modification time; a time no HTTP-date can carry is
 * left out; the manifest written reads back the same, and one without mtime stays valid. */
static void test_create_mtime(void **state)
{
    struct fixture *f = *state;
    /* A file system stores what it can (ext4 stops at 2446): what counts is what stat says. */
    static const struct {
        const char *name;
        time_t t;
    } cases[] = {
        {"a.txt", 784111777},      {"b.txt", 0},      {"c.txt", 253402300799LL},
        {"d.txt", 253402300800LL}, {"e.txt", -86400},
    };
    time_t stored[5];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_str(f->site, cases[i].name, "x\n");
        char *path = path_join(f->site, cases[i].name);
        struct timespec ts[2] = {{cases[i].t, 0}, {cases[i].t, 0}};
        struct stat sb;
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
        assert_int_equal(stat(path, &sb), 0);
        stored[i] = sb.st_mtime;
        free(path);
    }
    assert_int_equal(stored[0], 784111777);
    assert_int_equal(stored[1], 0);
    assert_int_equal(stored[4], -86400);
    /* Twice: the second run takes the bodies from the stat cache, the times still from stat. */
    for (int run = 0; run < 2; run++) {
        struct release *r = create_ok(f, f->cache, 1, NULL);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            const struct release_file *rf = find_file(r, cases[i].name);
            assert_non_null(rf);
            int kept = stored[i] >= 0 && stored[i] <= RELEASE_MTIME_MAX;
            assert_int_equal(rf->has_mtime, kept);
            if (kept)
                assert_int_equal(rf->mtime, stored[i]);
        }
        char *key = xasprintf("releases/%s.json", r->id), *doc = NULL;
        size_t len;
        assert_int_equal(store_get(f->st, key, &doc, &len, NULL, NULL), 0);
        assert_non_null(strstr(doc, "\"mtime\":784111777"));
        assert_non_null(strstr(doc, "\"mtime\":0,"));
        assert_null(strstr(doc, "\"mtime\":-"));
        assert_null(strstr(doc, "\"mtime\":253402300800"));
        free(doc);
        free(key);
        release_free(r);
    }
    /* A manifest without mtime (written before it existed) loads, with has_mtime 0. */
    static const char old[] =
        "{\"format\":1,\"id\":\"r-old\",\"created\":\"2026-01-01T00:00:00Z\","
        "\"files\":[{\"path\":\"a\",\"blob\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"size\":1,\"type\":\"t\","
        "\"cache\":\"c\"}]}";
    struct release *r = NULL;
    struct sw_err err = {0};
    assert_int_equal(release_manifest_parse("k", "r-old", old, sizeof(old) - 1, &r, &err), 0);
    assert_int_equal(r->files[0].has_mtime, 0);
    release_free(r);
}

/* ---- compressed variants ----------------------------------------------------- */

static void test_compressible(void **state)
{
    const char *yes[] = {"a.html", "a.css", "a.js",        "a.mjs", "a.json",
                         "a.map",  "a.svg", "a.xml",       "a.txt", "a.wasm",
                         "a.ttf",  "a.otf", "a.eot",       "a.ico", "a.webmanifest",
                         "a.rss",  "A.CSS", "d/feed.atom", "a.md",  "a.csv"};
    const char *no[] = {"a.png", "a.jpg", "a.woff", "a.woff2", "a.gz",  "a.br",   "a.svgz",
                        "a.zip", "a.mp4", "a.pdf",  "README",  "a.bin", "a.webp", "a.zst"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
        if (!release_compressible(yes[i]))
            fail_msg("%s is not compressible", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
        if (release_compressible(no[i]))
            fail_msg("%s is compressible", no[i]);
}

/* A text body of n bytes that compresses well but not absurdly: CSS rules
 * with changing numbers. */
static char *css_text(size_t n, unsigned seed)
{
    struct buf b = BUF_INIT;
    for (unsigned i = 0; b.len < n; i++)
        buf_addf(&b, ".c%u{margin:%upx;color:#%06x}\n", i, (i * seed) % 97,
                 (i * 2654435761u) & 0xffffff);
    b.data[n] = '\0';
    b.len = n;
    return buf_detach(&b, NULL);
}

/* The bytes of the blob hex; caller frees. */
static char *blob_bytes(struct fixture *f, const char *hex, size_t *len)
{
    char key[128], *data = NULL;
    release_blob_key(hex, key, sizeof(key));
    assert_int_equal(store_get(f->st, key, &data, len, NULL, NULL), 0);
    return data;
}

/* Decodes variant k of file rf independently of slipway's own check (zlib's
 * gzip reader, brotli's one-shot decoder) and compares it with want. */
static void assert_variant_decodes(struct fixture *f, const struct release_file *rf, int k,
                                   const char *want, size_t wantlen)
{
    size_t len;
    char *enc = blob_bytes(f, rf->var[k].blob, &len);
    assert_int_equal(len, rf->var[k].size);
    assert_true(len < rf->size);
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex(enc, len, hex);
    assert_string_equal(hex, rf->var[k].blob);
    char *dec = xmalloc(wantlen + 16);
    size_t got = wantlen + 16;
    if (k == RELEASE_GZIP) {
        z_stream z = {0};
        assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
        z.next_in = (Bytef *)enc;
        z.avail_in = (uInt)len;
        z.next_out = (Bytef *)dec;
        z.avail_out = (uInt)got;
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        got = z.total_out;
        inflateEnd(&z);
    } else {
        assert_int_equal(BrotliDecoderDecompress(len, (const uint8_t *)enc, &got, (uint8_t *)dec),
                         BROTLI_DECODER_RESULT_SUCCESS);
    }
    assert_int_equal(got, wantlen);
    assert_memory_equal(dec, want, wantlen);
    free(dec);
    free(enc);
}

static int has_variant(const struct release_file *rf, int k)
{
    return rf->var[k].blob[0] != '\0';
}

static void test_variants_made(void **state)
{
    struct fixture *f = *state;
    char *css = css_text(4000, 7), *js = css_text(1024, 11), *html = css_text(20000, 13);
    char *small = css_text(1023, 17), *png = css_text(4000, 19), *ttf = css_text(4000, 37);
    unsigned char noise[3000];
    fill(noise, sizeof(noise), 5);
    write_str(f->site, "css/site.css", css);
    write_str(f->site, "js/app.js", js); /* exactly 1 KiB: compressed */
    write_str(f->site, "index.html", html);
    write_str(f->site, "small.css", small);                   /* one byte short of 1 KiB: not */
    write_str(f->site, "img/logo.png", png);                  /* compressible bytes, but a png */
    write_file(f->site, "js/noise.js", noise, sizeof(noise)); /* both variants larger */
    write_str(f->site, "fonts/a.ttf", ttf);
    write_str(f->site, "fonts/a.woff2", css); /* compressed inside already */

    struct release_create_result res;
    struct release *r = create_ok(f, NULL, 0, &res);
    const char *with[] = {"css/site.css", "js/app.js", "index.html", "fonts/a.ttf"};
    const char *body[] = {css, js, html, ttf};
    uint64_t saved = 0;
    for (size_t i = 0; i < 4; i++) {
        const struct release_file *rf = find_file(r, with[i]);
        assert_non_null(rf);
        for (int k = 0; k < RELEASE_VARIANTS; k++) {
            if (!has_variant(rf, k))
                fail_msg("%s has no %s variant", with[i], release_variant_names[k]);
            assert_variant_decodes(f, rf, k, body[i], strlen(body[i]));
        }
        /* Brotli beats gzip on text */
        assert_true(rf->var[RELEASE_BR].size < rf->var[RELEASE_GZIP].size);
        saved += rf->size - rf->var[RELEASE_BR].size;
    }
    const char *without[] = {"small.css", "img/logo.png", "js/noise.js", "fonts/a.woff2"};
    for (size_t i = 0; i < 4; i++)
        for (int k = 0; k < RELEASE_VARIANTS; k++)
            if (has_variant(find_file(r, without[i]), k))
                fail_msg("%s has a %s variant", without[i], release_variant_names[k]);
    assert_int_equal(res.variants, 8);
    assert_int_equal(res.compressed, 10); /* noise.js was tried, and both dropped */
    assert_int_equal(res.reused, 0);
    assert_int_equal(res.saved, saved);
    /* 8 files, the woff2 sharing the css's body, and 8 variants */
    assert_int_equal(res.new_blobs, 7 + 8);
    assert_int_equal(count_keys(f->st, RELEASE_BLOB_PREFIX), 7 + 8);

    /* a variant is a body of the release: verify misses it, and its size */
    struct sw_err err = {0};
    assert_int_equal(release_verify(f->st, r, &err), 0);
    char key[128];
    release_blob_key(find_file(r, "index.html")->var[RELEASE_BR].blob, key, sizeof(key));
    size_t len;
    char *saved_br = blob_bytes(f, find_file(r, "index.html")->var[RELEASE_BR].blob, &len);
    sf_delete(f->st, key);
    assert_int_equal(release_verify(f->st, r, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "br body of index.html"));
    sf_put(f->st, key, saved_br, len - 1);
    assert_int_equal(release_verify(f->st, r, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "br body of index.html"));

    /* the same directory again (no stat cache): the variants of r are
     * reused, except the truncated one, which is made again and written over
     * the damaged blob; noise.js has none to reuse, so is tried again */
    struct release *r2 = create_ok(f, NULL, 0, &res);
    assert_int_equal(res.new_blobs, 1);
    assert_int_equal(res.compressed, 2 + 1);
    assert_int_equal(res.reused, 7);
    assert_int_equal(release_verify(f->st, r, &err), 0);
    /* each variant is a pure function of the body: the same blobs again */
    for (size_t i = 0; i < r->nfiles; i++)
        assert_memory_equal(r2->files[i].var, r->files[i].var, sizeof(r->files[i].var));
    release_free(r2);
    sf_delete(f->st, key);
    r2 = create_ok(f, NULL, 0, &res);
    assert_int_equal(res.new_blobs, 1);
    assert_int_equal(res.compressed, 2 + 1);
    assert_int_equal(release_verify(f->st, r2, &err), 0);

    free(saved_br);
    release_free(r2);
    release_free(r);
    free(css);
    free(js);
    free(html);
    free(small);
    free(png);
    free(ttf);
}

/* An unchanged file is not compressed again: the stat cache carries its
 * variants; one whose variant left the store is read and compressed again. */
static void test_variants_stat_cache(void **state)
{
    struct fixture *f = *state;
    char *a = css_text(5000, 3), *b = css_text(6000, 5);
    write_str(f->site, "a.css", a);
    write_str(f->site, "b.js", b);
    write_str(f->site, "c.txt", "too small\n");
    set_mtime(f->site, "a.css", -60);
    set_mtime(f->site, "b.js", -60);
    set_mtime(f->site, "c.txt", -60);
    struct release_create_result res;
    struct release *r1 = create_ok(f, f->cache, 0, &res);
    assert_int_equal(res.compressed, 4);
    assert_int_equal(res.variants, 4);

    struct release *r2 = create_ok(f, f->cache, 0, &res);
    assert_int_equal(res.hashed, 0);
    assert_int_equal(res.compressed, 0);
    assert_int_equal(res.variants, 4);
    assert_int_equal(res.new_blobs, 0);
    for (size_t i = 0; i < r1->nfiles; i++)
        assert_memory_equal(r2->files[i].var, r1->files[i].var, sizeof(r1->files[i].var));

    char key[128];
    release_blob_key(find_file(r2, "b.js")->var[RELEASE_GZIP].blob, key, sizeof(key));
    sf_delete(f->st, key);
    struct release *r3 = create_ok(f, f->cache, 0, &res);
    assert_int_equal(res.hashed, 1);
    assert_int_equal(res.compressed, 1); /* read again; gzip made again */
    assert_int_equal(res.reused, 1);     /* br was still there, named by r2 */
    assert_int_equal(res.new_blobs, 1);
    assert_int_equal(release_verify(f->st, r3, NULL), 0);
    assert_string_equal(find_file(r3, "b.js")->var[RELEASE_GZIP].blob,
                        find_file(r1, "b.js")->var[RELEASE_GZIP].blob);

    /* a version 1 cache (no variants) is not trusted: everything is read again */
    write_str(f->dir, "cache/stat", "slipway-stat-cache 1 0\n");
    struct release *r4 = create_ok(f, f->cache, 0, &res);
    assert_int_equal(res.hashed, 3);
    assert_int_equal(res.variants, 4);
    assert_int_equal(res.compressed, 0); /* read again, but every variant reused */
    assert_int_equal(res.reused, 4);

    release_free(r1);
    release_free(r2);
    release_free(r3);
    release_free(r4);
    free(a);
    free(b);
}

/* gzip -9 of body, as a file would be shipped. */
static char *gzip_of(const char *body, size_t len, size_t *outlen)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)len);
    char *out = xmalloc(cap);
    z.next_in = (Bytef *)body;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *outlen = z.total_out;
    deflateEnd(&z);
    return out;
}

/* A file shipped only as x.gz is served as x too. */
static void test_variants_gz_only(void **state)
{
    struct fixture *f = *state;
    char *text = css_text(30000, 23), *other = css_text(3000, 29);
    size_t gzlen, olen;
    char *gz = gzip_of(text, strlen(text), &gzlen);
    char *ogz = gzip_of(other, strlen(other), &olen);
    write_file(f->site, "data/feed.xml.gz", gz, gzlen);
    /* x beside x.gz: x is the file, x.gz another file, nothing derived */
    write_str(f->site, "both.css", other);
    write_file(f->site, "both.css.gz", ogz, olen);
    /* not a compressible type: a download stays a download */
    write_file(f->site, "dist/tool.tar.gz", gz, gzlen);
    /* two members: x is both decoded, but its gzip variant is made anew */
    char *two = xmalloc(2 * olen);
    memcpy(two, ogz, olen);
    memcpy(two + olen, ogz, olen);
    write_file(f->site, "twice.txt.gz", two, 2 * olen);
    const char *names[] = {"data/feed.xml.gz", "both.css", "both.css.gz", "dist/tool.tar.gz",
                           "twice.txt.gz"};
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
        set_mtime(f->site, names[i], -60);

    struct release_create_result res;
    struct release *r = create_ok(f, f->cache, 0, &res);
    const struct release_file *x = find_file(r, "data/feed.xml");
    const struct release_file *xgz = find_file(r, "data/feed.xml.gz");
    assert_non_null(x);
    assert_non_null(xgz);
    assert_int_equal(x->size, strlen(text));
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex(text, strlen(text), hex);
    assert_string_equal(x->blob, hex);
    assert_string_equal(x->type, "application/xml; charset=utf-8");
    /* the gzip variant is x.gz's own bytes, as shipped */
    assert_string_equal(x->var[RELEASE_GZIP].blob, xgz->blob);
    assert_int_equal(x->var[RELEASE_GZIP].size, gzlen);
    assert_variant_decodes(f, x, RELEASE_BR, text, strlen(text));
    assert_string_equal(xgz->type, "application/gzip");
    assert_false(has_variant(xgz, RELEASE_GZIP) || has_variant(xgz, RELEASE_BR));

    const struct release_file *both = find_file(r, "both.css");
    assert_int_equal(both->size, strlen(other));
    assert_variant_decodes(f, both, RELEASE_GZIP, other, strlen(other));
    assert_non_null(find_file(r, "both.css.gz"));
    assert_null(find_file(r, "dist/tool.tar"));
    assert_non_null(find_file(r, "dist/tool.tar.gz"));

    const struct release_file *tw = find_file(r, "twice.txt");
    assert_non_null(tw);
    assert_int_equal(tw->size, 2 * strlen(other));
    assert_string_not_equal(tw->var[RELEASE_GZIP].blob, find_file(r, "twice.txt.gz")->blob);
    char *twice = xasprintf("%s%s", other, other);
    assert_variant_decodes(f, tw, RELEASE_GZIP, twice, strlen(twice));
    free(twice);
    assert_int_equal(release_verify(f->st, r, NULL), 0);

    /* the stat cache knows x too: nothing read or compressed again */
    struct release *r2 = create_ok(f, f->cache, 0, &res);
    assert_int_equal(res.compressed, 0);
    assert_string_equal(find_file(r2, "data/feed.xml")->blob, x->blob);
    assert_memory_equal(find_file(r2, "data/feed.xml")->var, x->var, sizeof(x->var));
    release_free(r2);
    release_free(r);

    /* what cannot be decompressed is refused, naming the file */
    struct {
        const char *name;
        const void *data;
        size_t len;
        const char *why;
    } bad[] = {
        {"broken.js.gz", "not gzip at all, just text", 26, "not a valid gzip file"},
        {"cut.js.gz", gz, gzlen / 2, "cut short"},
        {"tail.js.gz", NULL, 0, "data after the end"},
        {"bomb.json.gz", NULL, 0, "gzip bomb"},
    };
    char *tail = xmalloc(gzlen + 3);
    memcpy(tail, gz, gzlen);
    memcpy(tail + gzlen, "xyz", 3);
    bad[2].data = tail;
    bad[2].len = gzlen + 3;
    /* 16 MiB of zeros deflate to about 16 KiB: a ratio over 1000 */
    size_t zlen = 16u << 20, blen;
    char *zeros = xcalloc(1, zlen);
    char *bomb = gzip_of(zeros, zlen, &blen);
    free(zeros);
    assert_true(blen * RELEASE_GUNZIP_RATIO < zlen);
    bad[3].data = bomb;
    bad[3].len = blen;
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        write_file(f->site, bad[i].name, bad[i].data, bad[i].len);
        char *id = NULL;
        struct sw_err err;
        int rc = create(f, NULL, 0, &id, &res, &err);
        if (rc != SW_EINVAL)
            fail_msg("%s: %d %s", bad[i].name, rc, err.msg);
        assert_null(id);
        if (!strstr(err.msg, bad[i].name) || !strstr(err.msg, bad[i].why))
            fail_msg("%s: '%s' does not say '%s'", bad[i].name, err.msg, bad[i].why);
        /* shipped with x beside it, the same file is just a file */
        char *plain = xstrndup(bad[i].name, strlen(bad[i].name) - 3);
        write_str(f->site, plain, "x\n");
        release_free(create_ok(f, NULL, 0, NULL));
        char *p = path_join(f->site, bad[i].name);
        unlink(p);
        free(p);
        p = path_join(f->site, plain);
        unlink(p);
        free(p);
        free(plain);
    }
    free(bomb);
    free(tail);
    free(two);
    free(gz);
    free(ogz);
    free(text);
    free(other);
}

/* ---- variants reused from earlier releases -------------------------------------- */

/* A release of dir made as a fresh checkout would make it: another store
 * handle (another process) on the same store, and no stat cache. */
static struct release *create_fresh(struct fixture *f, const char *dir,
                                    struct release_create_result *res)
{
    struct store *st = NULL;
    struct sw_err err = {0};
    assert_int_equal(store_open(f->data, &st, &err), 0);
    struct release_create_opts o = {.dir = dir};
    char *id = NULL;
    int rc = release_create(st, &o, &id, res, &err);
    if (rc)
        print_message("# release_create: %s\n", err.msg);
    assert_int_equal(rc, 0);
    release_create_result_free(res);
    struct release *r = NULL;
    assert_int_equal(release_load(st, id, &r, &err), 0);
    free(id);
    store_free(st);
    return r;
}

/* Every variant of r decodes to the file it stands for, read from dir. */
static void assert_release_variants(struct fixture *f, const struct release *r, const char *dir)
{
    for (size_t i = 0; i < r->nfiles; i++)
        for (int k = 0; k < RELEASE_VARIANTS; k++) {
            if (!has_variant(&r->files[i], k))
                continue;
            char *path = path_join(dir, r->files[i].path), *body;
            size_t len;
            assert_int_equal(file_read_all(path, &body, &len, NULL), 0);
            assert_variant_decodes(f, &r->files[i], k, body, len);
            free(body);
            free(path);
        }
}

static char *copy_site(struct fixture *f, const char *name)
{
    char *to = path_join(f->dir, name);
    char *cmd = xasprintf("cp -R %s %s", f->site, to);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    return to;
}

/* A fresh checkout of an unchanged tree compresses nothing: every variant
 * comes from the last release, checked; one changed file is compressed. */
static void test_variants_reused(void **state)
{
    struct fixture *f = *state;
    enum { N = 6 };
    char *text[N], name[32];
    for (int i = 0; i < N; i++) {
        text[i] = css_text(1500 + 3000 * (size_t)i, 41 + (unsigned)i);
        snprintf(name, sizeof(name), "d%d/s%d.css", i % 2, i);
        write_str(f->site, name, text[i]);
    }
    write_str(f->site, "small.txt", "under a KiB\n");
    struct release_create_result res;
    struct release *r1 = create_ok(f, f->cache, 0, &res);
    assert_int_equal(res.compressed, 2 * N);
    assert_int_equal(res.reused, 0);
    assert_int_equal(res.variants, 2 * N);

    char *ci = copy_site(f, "ci");
    struct release *r2 = create_fresh(f, ci, &res);
    assert_int_equal(res.hashed, N + 1); /* every file read: no stat cache */
    assert_int_equal(res.compressed, 0);
    assert_int_equal(res.reused, 2 * N);
    assert_int_equal(res.variants, 2 * N);
    assert_int_equal(res.new_blobs, 0);
    assert_int_equal(r2->nfiles, r1->nfiles);
    for (size_t i = 0; i < r1->nfiles; i++)
        assert_memory_equal(r2->files[i].var, r1->files[i].var, sizeof(r1->files[i].var));
    assert_release_variants(f, r2, ci);
    assert_int_equal(release_verify(f->st, r2, NULL), 0);

    /* one file changed: its two variants are made, the rest reused */
    char *changed = css_text(7000, 99);
    write_str(ci, "d1/s3.css", changed);
    struct release *r3 = create_fresh(f, ci, &res);
    assert_int_equal(res.compressed, 2);
    assert_int_equal(res.reused, 2 * N - 2);
    assert_int_equal(res.new_blobs, 3); /* the body and its two variants */
    assert_release_variants(f, r3, ci);

    free(changed);
    free(ci);
    release_free(r1);
    release_free(r2);
    release_free(r3);
    for (int i = 0; i < N; i++)
        free(text[i]);
}

/* Writes r, with id, as a manifest in the store: as anyone with write access
 * to a shared bucket could. */
static void put_manifest(struct fixture *f, struct release *r, const char *id)
{
    free(r->id);
    r->id = xstrdup(id);
    size_t len;
    char *doc = release_manifest_dump(r, &len);
    assert_non_null(doc);
    char *key = xasprintf("releases/%s.json", id);
    assert_int_equal(store_put(f->st, key, doc, len, 0, NULL, NULL), 0);
    free(key);
    free(doc);
}

/* Stores data as a blob under its own hash, filling hex. */
static void put_blob(struct fixture *f, const void *data, size_t len, char *hex)
{
    char key[128];
    sha256_hex(data, len, hex);
    release_blob_key(hex, key, sizeof(key));
    assert_int_equal(store_put(f->st, key, data, len, 0, NULL, NULL), 0);
}

/* What the manifests name is a hint, never trusted: a blob damaged in the
 * store, a forged manifest naming another file's variants, or variants with
 * bytes after the stream are not reused, and the release made instead is
 * right. */
static void test_variants_reuse_hostile(void **state)
{
    struct fixture *f = *state;
    char *a = css_text(9000, 51), *b = css_text(4000, 53);
    write_str(f->site, "a.css", a);
    write_str(f->site, "b.css", b);
    struct release_create_result res;
    struct release *r1 = create_ok(f, NULL, 0, &res);
    const struct release_file *fa = find_file(r1, "a.css"), *fb = find_file(r1, "b.css");
    char agz[SHA256_HEX_LEN + 1];
    memcpy(agz, fa->var[RELEASE_GZIP].blob, sizeof(agz));

    /* a.css's gzip blob damaged in place: the same name, the same size, but
     * b.css's gzip bytes (valid gzip of another body) padded */
    size_t blen, alen = fa->var[RELEASE_GZIP].size;
    char *bgz = blob_bytes(f, fb->var[RELEASE_GZIP].blob, &blen);
    assert_true(blen < alen);
    char *forged = xcalloc(1, alen);
    memcpy(forged, bgz, blen);
    char key[128];
    release_blob_key(agz, key, sizeof(key));
    sf_put(f->st, key, forged, alen);
    char *ci = copy_site(f, "ci");
    struct release *r2 = create_fresh(f, ci, &res);
    assert_int_equal(res.compressed, 1);
    assert_int_equal(res.reused, 3);
    /* the same name, made again, and the damaged blob written over */
    assert_string_equal(find_file(r2, "a.css")->var[RELEASE_GZIP].blob, agz);
    assert_release_variants(f, r2, ci);
    release_free(r2);

    /* a forged manifest names, for a.css, b.css's br variant (a sound blob,
     * smaller than a.css) and a gzip blob that decodes to a.css but has a
     * byte after the stream; the honest manifests are gone, so nothing else
     * is named */
    struct release *forged_r = NULL;
    assert_int_equal(release_load(f->st, r1->id, &forged_r, NULL), 0);
    struct release_file *xa = (struct release_file *)find_file(forged_r, "a.css");
    const struct release_file *xb = find_file(forged_r, "b.css");
    size_t glen;
    char *tail = gzip_of(a, strlen(a), &glen);
    tail = xrealloc(tail, glen + 1);
    tail[glen] = '\0';
    put_blob(f, tail, glen + 1, xa->var[RELEASE_GZIP].blob);
    xa->var[RELEASE_GZIP].size = glen + 1;
    xa->var[RELEASE_BR] = xb->var[RELEASE_BR];
    char **ids;
    size_t nids;
    assert_int_equal(release_list(f->st, &ids, &nids, NULL), 0);
    for (size_t i = 0; i < nids; i++)
        assert_int_equal(release_delete(f->st, ids[i], NULL), 0);
    release_ids_free(ids, nids);
    put_manifest(f, forged_r, "r-99990101-000000-000-forged");
    struct release *r3 = create_fresh(f, ci, &res);
    assert_int_equal(res.compressed, 2); /* a.css's two */
    assert_int_equal(res.reused, 2);     /* b.css's two, which the forged manifest got right */
    assert_memory_equal(find_file(r3, "a.css")->var, fa->var, sizeof(fa->var));
    assert_release_variants(f, r3, ci);
    assert_int_equal(release_verify(f->st, r3, NULL), 0);
    release_free(r3);

    free(tail);
    release_free(forged_r);
    free(ci);
    free(forged);
    free(bgz);
    release_free(r1);
    free(a);
    free(b);
}

/* What a reused variant must be: one whole stream of its coding that decodes
 * to exactly the body, with nothing after it. */
static void test_variant_decodes(void **state)
{
    (void)state;
    /* 128 KiB and one byte: one byte past two whole pieces of the decoder's output */
    const size_t sizes[] = {5000, 2 * 65536 + 1};
    for (size_t t = 0; t < 2; t++) {
        char *body = css_text(sizes[t], 71);
        size_t len = strlen(body);
        for (int k = 0; k < RELEASE_VARIANTS; k++) {
            char *enc;
            size_t n;
            assert_int_equal(release_compress(k, "a.css", body, len, &enc, &n, NULL), 0);
            assert_true(release_variant_decodes(k, enc, n, body, len));
            assert_false(release_variant_decodes(k, enc, n - 1, body, len)); /* cut short */
            assert_false(release_variant_decodes(k, enc, n, body, len - 1)); /* decodes to more */
            assert_false(release_variant_decodes(!k, enc, n, body, len));    /* the other coding */
            char *changed = xstrdup(body);
            changed[len / 2] ^= 1;
            assert_false(release_variant_decodes(k, enc, n, changed, len));
            free(changed);
            char *more = xmalloc(2 * n);
            memcpy(more, enc, n);
            more[n] = '\0';
            assert_false(release_variant_decodes(k, more, n + 1, body, len)); /* a byte after */
            memcpy(more + n, enc, n);
            assert_false(release_variant_decodes(k, more, 2 * n, body, len)); /* two streams */
            free(more);
            free(enc);
        }
        free(body);
    }
}

/* Manifests that cannot be read cost reuse, never the release: a corrupt
 * newest one is skipped, and more of them than are tried leave nothing to
 * reuse, so everything is compressed as before. */
static void test_variants_reuse_corrupt_manifest(void **state)
{
    struct fixture *f = *state;
    char *a = css_text(6000, 61), *b = css_text(2500, 67);
    write_str(f->site, "a.css", a);
    write_str(f->site, "b.js", b);
    struct release_create_result res;
    struct release *r1 = create_ok(f, NULL, 0, &res);
    assert_int_equal(res.compressed, 4);
    const char *junk[] = {"{\"id\": ", "not json at all", "{\"id\":\"r-99999999-x\",\"files\":7}",
                          ""};
    char id[64], key[96];
    for (size_t i = 0; i < 4; i++) {
        snprintf(key, sizeof(key), "releases/r-99999999-%03zu.json", i);
        assert_int_equal(store_put(f->st, key, junk[i], strlen(junk[i]), 0, NULL, NULL), 0);
    }
    struct release *r2 = create_fresh(f, f->site, &res);
    assert_int_equal(res.compressed, 0);
    assert_int_equal(res.reused, 4);
    for (size_t i = 0; i < r1->nfiles; i++)
        assert_memory_equal(r2->files[i].var, r1->files[i].var, sizeof(r1->files[i].var));
    release_free(r2);

    /* a wall of newer corrupt manifests: past the few tried, nothing reused */
    for (size_t i = 4; i < 40; i++) {
        snprintf(id, sizeof(id), "r-99999999-%03zu", i);
        snprintf(key, sizeof(key), "releases/%s.json", id);
        assert_int_equal(store_put(f->st, key, "{", 1, 0, NULL, NULL), 0);
    }
    r2 = create_fresh(f, f->site, &res);
    assert_int_equal(res.compressed, 4);
    assert_int_equal(res.reused, 0);
    assert_int_equal(res.new_blobs, 0);
    assert_release_variants(f, r2, f->site);
    release_free(r2);
    release_free(r1);
    free(a);
    free(b);
}

/* Variants survive the manifest's round trip; old manifests have none. */
static void test_variants_manifest(void **state)
{
    struct fixture *f = *state;
    char *css = css_text(3000, 31);
    write_str(f->site, "a.css", css);
    write_str(f->site, "b.txt", "small\n");
    struct release *r = create_ok(f, NULL, 0, NULL);
    size_t len;
    char *doc = release_manifest_dump(r, &len);
    struct release *back = NULL;
    struct sw_err err = {0};
    assert_int_equal(release_manifest_parse("k", r->id, doc, len, &back, &err), 0);
    assert_int_equal(back->nfiles, 2);
    for (size_t i = 0; i < 2; i++)
        assert_memory_equal(back->files[i].var, r->files[i].var, sizeof(r->files[i].var));
    assert_true(has_variant(&back->files[0], RELEASE_GZIP) &&
                has_variant(&back->files[0], RELEASE_BR));
    assert_false(has_variant(&back->files[1], RELEASE_GZIP) ||
                 has_variant(&back->files[1], RELEASE_BR));
    /* the keys a reader of the manifest sees */
    assert_non_null(strstr(doc, "\"gzip\":{\"blob\":\""));
    assert_non_null(strstr(doc, "\"br\":{\"blob\":\""));
    release_free(back);
    free(doc);
    release_free(r);
    free(css);
}

/* The count beside the scan: regular files and their sizes, nested, a link
 * to a file counted, a link to a directory not followed, .git and .slipway
 * left out; stopped at once when asked. */
static void test_count_tree(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "a.txt", "12345");
    write_str(f->site, "d/e/b.bin", "1234567890");
    write_str(f->site, ".git/config", "not counted");
    write_str(f->site, "x/.slipway/y", "not counted");
    char *link = path_join(f->site, "l.txt"), *dlink = path_join(f->site, "dl");
    assert_int_equal(symlink("a.txt", link), 0);
    assert_int_equal(symlink("d", dlink), 0);
    struct release_progress p;
    memset(&p, 0, sizeof(p));
    atomic_int stop;
    atomic_init(&stop, 0);
    release_count_tree(f->site, &p, &stop);
    assert_int_equal(atomic_load(&p.files_total), 3);
    assert_int_equal(atomic_load(&p.bytes_total), 20);
    memset(&p, 0, sizeof(p));
    atomic_store(&stop, 1);
    release_count_tree(f->site, &p, &stop);
    assert_int_equal(atomic_load(&p.files_total), 0);
    /* a directory that does not exist counts nothing, and is no error */
    atomic_store(&stop, 0);
    release_count_tree("/nonexistent/dir", &p, &stop);
    assert_int_equal(atomic_load(&p.files_total), 0);
    free(link);
    free(dlink);
}

/* release_create's progress: after it, every file is done and the totals are
 * the release's own counts (an x made from x.gz is no file of the directory's,
 * so not counted), whatever the progress held before. */
static void test_create_progress(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "index.html", "<h1>hi</h1>\n");
    write_str(f->site, "css/app.css", "body{color:red}\n");
    write_file(f->site, "img/big.bin", "0123456789", 10);
    /* old enough for the stat cache to trust (not racy) */
    set_mtime(f->site, "index.html", -10);
    set_mtime(f->site, "css/app.css", -10);
    set_mtime(f->site, "img/big.bin", -10);
    struct release_progress p;
    memset(&p, 0, sizeof(p));
    atomic_store(&p.files_done, 99); /* reset by release_create */
    struct release_create_opts o = {.dir = f->site, .progress = &p};
    struct release_create_result res;
    struct sw_err err;
    char *id = NULL;
    assert_int_equal(create_opts(f, &o, &id, &res, &err), 0);
    assert_int_equal(atomic_load(&p.files_done), 3);
    assert_int_equal(atomic_load(&p.files_total), 3);
    assert_int_equal(atomic_load(&p.bytes_done), res.bytes);
    assert_int_equal(atomic_load(&p.bytes_total), res.bytes);
    assert_int_equal(atomic_load(&p.counted), 1);
    free(id);
    /* the stat cache's files count as done too */
    o.stat_cache = f->cache;
    assert_int_equal(create_opts(f, &o, &id, &res, &err), 0);
    free(id);
    assert_int_equal(create_opts(f, &o, &id, &res, &err), 0);
    assert_int_equal(res.hashed, 0);
    assert_int_equal(atomic_load(&p.files_done), 3);
    free(id);
}

/* ---- keeping the live release ------------------------------------------------- */

static size_t count_releases(struct fixture *f)
{
    char **ids = NULL;
    size_t n = 0;
    assert_int_equal(release_list(f->st, &ids, &n, NULL), 0);
    release_ids_free(ids, n);
    return n;
}

/* release_create of f->site with keep; must succeed. Returns the id (caller frees). */
static char *create_keep(struct fixture *f, const struct release *keep, const char *message,
                         const char *stat_cache, struct release_create_result *res)
{
    struct release_create_opts o = {
        .dir = f->site, .message = message, .stat_cache = stat_cache, .keep = keep};
    return create_opts_ok(f, &o, res);
}

static struct release *load_ok(struct fixture *f, const char *id)
{
    struct release *r = NULL;
    struct sw_err err = {0};
    assert_int_equal(release_load(f->st, id, &r, &err), 0);
    return r;
}

/* The tree as it is now, made with *keep: a new release (a manifest more),
 * which the same tree then keeps (its id again, nothing written). *keep
 * becomes it. */
static void keep_differs(struct fixture *f, struct release **keep, const char *message,
                         const char *what)
{
    struct release_create_result res;
    size_t before = count_releases(f);
    char *id = create_keep(f, *keep, message, NULL, &res);
    if (!strcmp(id, (*keep)->id) || res.same)
        fail_msg("%s: release_create kept %s (same %d)", what, (*keep)->id, res.same);
    assert_int_equal(count_releases(f), before + 1);
    struct release *r = load_ok(f, id);
    free(id);
    id = create_keep(f, r, message, NULL, &res);
    assert_string_equal(id, r->id);
    assert_int_equal(res.same, 1);
    assert_int_equal(count_releases(f), before + 1);
    free(id);
    release_free(*keep);
    *keep = r;
}

/* release_create of f->site with opts.pack; must succeed. Returns the loaded release. */
static struct release *create_packed(struct fixture *f, const struct release *keep, int pack,
                                     const char *stat_cache, struct release_create_result *res)
{
    struct release_create_opts o = {
        .dir = f->site, .stat_cache = stat_cache, .keep = keep, .pack = pack};
    char *id = create_opts_ok(f, &o, res);
    struct release *r = load_ok(f, id);
    free(id);
    return r;
}

/* How many of r's bodies are packed, and in how many distinct packs. */
static size_t packed_bodies(const struct release *r, size_t *npacks)
{
    char seen[64][SHA256_HEX_LEN + 1];
    size_t n = 0;
    *npacks = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        struct release_body bv[RELEASE_VARIANTS + 1];
        size_t nbv = release_file_bodies(&r->files[i], bv);
        for (size_t j = 0; j < nbv; j++) {
            if (!bv[j].pack)
                continue;
            n++;
            size_t k = 0;
            while (k < *npacks && strcmp(seen[k], bv[j].pack))
                k++;
            if (k == *npacks && *npacks < 64)
                memcpy(seen[(*npacks)++], bv[j].pack, SHA256_HEX_LEN + 1);
        }
    }
    return n;
}

/* release_create_opts.pack: the small bodies go into one pack (a body two
 * files share once), the large one stays a blob; release_verify passes and no
 * small body is a blob of its own. Without keep, an unchanged tree names the
 * newest release's pack (a hint). With keep: an unchanged tree is keep; one
 * changed page makes a pack of its new bodies alone, the rest named in keep's
 * pack; without pack a keep's packed bodies stay where they are. */
static void test_create_pack(void **state)
{
    struct fixture *f = *state;
    unsigned char png[100000];
    fill(png, sizeof(png), 23);
    char *css = css_text(6000, 7);
    write_str(f->site, "index.html", "<h1>home</h1>\n");
    write_str(f->site, "same.html", "<h1>home</h1>\n");
    write_str(f->site, "css/site.css", css);
    write_file(f->site, "img/big.png", png, sizeof(png));
    struct release_create_result res;
    struct sw_err err = {0};
    struct release *r1 = create_packed(f, NULL, 1, f->cache, &res);
    size_t npacks, n = packed_bodies(r1, &npacks);
    assert_int_equal(n, 5); /* index, same (one body), css and its two variants; not the png */
    assert_int_equal(npacks, 1);
    assert_int_equal(res.new_blobs, 4 + 1);
    assert_int_equal(find_file(r1, "img/big.png")->pack[0], '\0');
    assert_string_equal(find_file(r1, "index.html")->pack, find_file(r1, "same.html")->pack);
    assert_int_equal(find_file(r1, "index.html")->at, find_file(r1, "same.html")->at);
    assert_int_equal(release_verify(f->st, r1, &err), 0);
    assert_int_equal(count_keys(f->st, RELEASE_PACK_PREFIX), 1);
    assert_int_equal(count_keys(f->st, RELEASE_BLOB_PREFIX), 1); /* the png alone */

    /* the same tree without keep (release create on its own): a new release, but its
     * small bodies are named in the newest release's pack, not stored again */
    struct release *again = create_packed(f, NULL, 1, f->cache, &res);
    assert_string_not_equal(again->id, r1->id);
    assert_int_equal(res.new_blobs, 0);
    assert_string_equal(find_file(again, "css/site.css")->pack,
                        find_file(r1, "css/site.css")->pack);
    assert_int_equal(count_keys(f->st, RELEASE_PACK_PREFIX), 1);
    assert_int_equal(release_verify(f->st, again, &err), 0);
    release_free(again);

    /* the same tree with keep: keep itself, nothing stored */
    struct release *same = create_packed(f, r1, 1, f->cache, &res);
    assert_string_equal(same->id, r1->id);
    assert_int_equal(res.new_blobs, 0);
    release_free(same);

    /* one page changed: a pack of its body alone; the rest where r1 has them */
    write_str(f->site, "index.html", "<h1>home, changed</h1>\n");
    struct release *r2 = create_packed(f, r1, 1, f->cache, &res);
    assert_int_equal(res.new_blobs, 1);
    assert_int_equal(count_keys(f->st, RELEASE_PACK_PREFIX), 2);
    assert_string_not_equal(find_file(r2, "index.html")->pack, find_file(r1, "index.html")->pack);
    assert_string_equal(find_file(r2, "same.html")->pack, find_file(r1, "same.html")->pack);
    const struct release_file *c1 = find_file(r1, "css/site.css"),
                              *c2 = find_file(r2, "css/site.css");
    assert_string_equal(c2->pack, c1->pack);
    assert_int_equal(c2->at, c1->at);
    for (int k = 0; k < RELEASE_VARIANTS; k++) {
        assert_string_equal(c2->var[k].pack, c1->var[k].pack);
        assert_int_equal(c2->var[k].at, c1->var[k].at);
    }
    assert_int_equal(release_verify(f->st, r2, &err), 0);

    /* without pack, and without a stat cache: keep's packed bodies stay there */
    write_str(f->site, "same.html", "<h1>same, changed</h1>\n");
    struct release *r3 = create_packed(f, r2, 0, NULL, &res);
    assert_int_equal(res.new_blobs, 1); /* same.html's new body, as a blob */
    assert_int_equal(find_file(r3, "same.html")->pack[0], '\0');
    assert_string_equal(find_file(r3, "css/site.css")->pack, c2->pack);
    assert_int_equal(count_keys(f->st, RELEASE_PACK_PREFIX), 2);
    assert_int_equal(release_verify(f->st, r3, &err), 0);
    release_free(r3);

    /* files changed over keep (same.html since r2, index.html and the css
     * now): the first file's bodies go in a pack of their own as soon as they
     * are made, while the walk goes on; the rest in the last pack. Every body
     * is where the manifest says. One thread, so that no other file's body
     * joins the first's before it goes. */
    char *css2 = css_text(6000, 8);
    write_str(f->site, "index.html", "<h1>home, changed again</h1>\n");
    write_str(f->site, "css/site.css", css2);
    struct release_create_opts o = {
        .dir = f->site, .stat_cache = f->cache, .keep = r2, .pack = 1, .threads = 1};
    char *id4 = create_opts_ok(f, &o, &res);
    struct release *r4 = load_ok(f, id4);
    free(id4);
    assert_int_equal(res.new_blobs, 5); /* index, same; css and its two variants */
    assert_int_equal(count_keys(f->st, RELEASE_PACK_PREFIX), 4);
    assert_string_not_equal(find_file(r4, "index.html")->pack, find_file(r2, "index.html")->pack);
    assert_string_not_equal(find_file(r4, "css/site.css")->pack, c1->pack);
    assert_int_equal(release_verify(f->st, r4, &err), 0);
    release_free(r4);
    free(css2);
    release_free(r2);
    release_free(r1);
    free(css);
}

/* release_create_opts.keep (the live release deploy DIR passes): a tree that
 * is keep makes no release (keep's id, res.same, no manifest), with no stat
 * cache, a fresh one or a filled one; a changed message, body or mtime, a new
 * file, or a keep whose files differ only in a variant make a new one. On S3
 * keep's bodies are neither put nor touched: one aged keeps its time, one
 * removed behind slipway's back is not put again, and no body byte is sent. */
static void test_create_keep(void **state)
{
    struct fixture *f = *state;
    unsigned char png[3000];
    fill(png, sizeof(png), 17);
    char *css = css_text(6000, 5);
    write_str(f->site, "index.html", "<h1>home</h1>\n");
    write_str(f->site, "css/site.css", css);
    write_file(f->site, "img/logo.png", png, sizeof(png));
    struct release_create_result res;
    char *id = create_keep(f, NULL, "first", f->cache, &res);
    assert_int_equal(res.same, 0);
    struct release *keep = load_ok(f, id);
    free(id);
    const struct release_file *cf = find_file(keep, "css/site.css");
    assert_true(has_variant(cf, RELEASE_GZIP) && has_variant(cf, RELEASE_BR));
    assert_int_equal(count_releases(f), 1);

    /* the same tree: keep's id and nothing stored, whatever the stat cache knows */
    char *fresh = path_join(f->dir, "cache/fresh");
    const char *caches[] = {NULL, fresh, fresh, f->cache};
    for (size_t i = 0; i < sizeof(caches) / sizeof(*caches); i++) {
        id = create_keep(f, keep, "first", caches[i], &res);
        assert_string_equal(id, keep->id);
        assert_int_equal(res.same, 1);
        assert_int_equal(res.files, 3);
        assert_int_equal(res.new_blobs, 0);
        assert_int_equal(count_releases(f), 1);
        free(id);
    }

    /* each difference alone makes a new release */
    keep_differs(f, &keep, "second", "a changed message");
    const struct release_file *old = find_file(keep, "index.html");
    char blob[SHA256_HEX_LEN + 1];
    int64_t mtime = old->mtime;
    memcpy(blob, old->blob, sizeof(blob));
    write_str(f->site, "index.html", "<h1>HOME</h1>\n"); /* the same size and time */
    char *path = path_join(f->site, "index.html");
    struct timespec ts[2] = {{(time_t)mtime, 0}, {(time_t)mtime, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    free(path);
    keep_differs(f, &keep, "second", "a changed body");
    assert_int_equal(find_file(keep, "index.html")->mtime, mtime);
    assert_string_not_equal(find_file(keep, "index.html")->blob, blob);
    memcpy(blob, find_file(keep, "index.html")->blob, sizeof(blob));
    set_mtime(f->site, "index.html", -100);
    keep_differs(f, &keep, "second", "a touched mtime");
    assert_string_equal(find_file(keep, "index.html")->blob, blob);
    assert_true(find_file(keep, "index.html")->mtime != mtime);
    write_str(f->site, "about.txt", "a new page\n");
    keep_differs(f, &keep, "second", "a new file");
    assert_int_equal(keep->nfiles, 4);

    /* a keep whose files differ only in a variant (its blob, or its size) */
    size_t n = count_releases(f);
    for (int k = 0; k < RELEASE_VARIANTS; k++)
        for (int what = 0; what < 2; what++) {
            struct release *forged = load_ok(f, keep->id);
            struct release_file *v = (struct release_file *)find_file(forged, "css/site.css");
            if (what)
                v->var[k].size++;
            else
                memcpy(v->var[k].blob, find_file(forged, "index.html")->blob, sizeof(blob));
            id = create_keep(f, forged, "second", NULL, &res);
            if (!strcmp(id, keep->id) || res.same)
                fail_msg("a keep with another %s %s was kept", release_variant_names[k],
                         what ? "size" : "blob");
            assert_int_equal(count_releases(f), ++n);
            free(id);
            release_free(forged);
        }

    if (!sf_s3()) {
        print_message("# fs: keep's bodies are touched there as any (a system call each); that "
                      "none is put or touched is checked on s3\n");
    } else {
        /* One body aged (no touch may make it young), one removed behind
         * slipway's back (taken as present, so not put again). */
        char pkey[128], ckey[128];
        release_blob_key(find_file(keep, "img/logo.png")->blob, pkey, sizeof(pkey));
        release_blob_key(find_file(keep, "css/site.css")->blob, ckey, sizeof(ckey));
        sf_age(f->st, f->data, pkey);
        int64_t aged = sf_mtime_ms(f->st, pkey);
        sf_delete(f->st, ckey);
        struct store_stat sb;
        for (int i = 0; i < 2; i++) {
            uint64_t sent = store_bytes_sent(f->st);
            id = create_keep(f, keep, "second", i ? f->cache : NULL, &res);
            assert_string_equal(id, keep->id);
            assert_int_equal(res.same, 1);
            assert_int_equal(store_bytes_sent(f->st) - sent, 0);
            assert_int_equal(sf_mtime_ms(f->st, pkey), aged);
            assert_int_equal(store_head(f->st, ckey, &sb, 0, NULL), SW_ENOTFOUND);
            free(id);
        }
        /* a new file: only its body and the manifest are sent */
        static const char news[] = "only this is new\n";
        write_str(f->site, "news.txt", news);
        uint64_t sent = store_bytes_sent(f->st);
        id = create_keep(f, keep, "second", f->cache, &res);
        assert_int_equal(res.same, 0);
        assert_int_equal(res.new_blobs, 1);
        char *key = xasprintf("releases/%s.json", id), *doc = NULL;
        size_t len;
        assert_int_equal(store_get(f->st, key, &doc, &len, NULL, NULL), 0);
        print_message("# s3: %llu bytes sent for a new file of %zu and a manifest of %zu\n",
                      (unsigned long long)(store_bytes_sent(f->st) - sent), sizeof(news) - 1, len);
        assert_int_equal(store_bytes_sent(f->st) - sent, sizeof(news) - 1 + len);
        assert_int_equal(sf_mtime_ms(f->st, pkey), aged);
        assert_int_equal(store_head(f->st, ckey, &sb, 0, NULL), SW_ENOTFOUND);
        free(doc);
        free(key);
        free(id);
    }
    release_free(keep);
    free(fresh);
    free(css);
}

/* release_create of f->site with keep_id and pack; must succeed. Returns the id. */
static char *create_keep_id(struct fixture *f, const char *keep_id, const char *message,
                            struct release_create_result *res)
{
    struct release_create_opts o = {
        .dir = f->site, .message = message, .stat_cache = f->cache, .keep_id = keep_id, .pack = 1};
    return create_opts_ok(f, &o, res);
}

/* release_create_opts.keep_id: keep named by id, read only when needed. On
 * both backends the same tree is keep and a changed one a new release whose
 * other bodies are where keep has them. On s3, where a stat cache that records
 * keep (the release it made, or found the same) speaks for keep, no manifest
 * is needed: with keep's manifest gone from the store the same tree is still
 * keep, and one page changed still a new release with every other body at
 * keep's pack and offset, which release_verify passes. A changed message is a
 * new release; a stat cache with a damaged line, or cut short at a line's end
 * (with that file gone from the tree), speaks for no release (keep's
 * manifest, gone, is then read: a new release). */
static void test_create_keep_id(void **state)
{
    struct fixture *f = *state;
    char *css = css_text(6000, 9);
    write_str(f->site, "index.html", "<h1>home</h1>\n");
    write_str(f->site, "about.html", "<h1>about</h1>\n");
    write_str(f->site, "css/site.css", css);
    const char *names[] = {"index.html", "about.html", "css/site.css"};
    for (size_t i = 0; i < 3; i++)
        set_mtime(f->site, names[i], -100);
    struct release_create_result res;
    char *k1 = create_keep_id(f, NULL, "m", &res);
    struct release *r1 = load_ok(f, k1);
    char *id = create_keep_id(f, k1, "m", &res);
    assert_string_equal(id, k1);
    assert_int_equal(res.same, 1);
    assert_int_equal(res.hashed, 0);
    free(id);
    size_t n = count_releases(f);
    char mkey[128];
    snprintf(mkey, sizeof(mkey), "releases/%s.json", k1);
    if (sf_s3()) {
        char *doc = NULL;
        size_t len;
        assert_int_equal(store_get(f->st, mkey, &doc, &len, NULL, NULL), 0);
        sf_delete(f->st, mkey);
        id = create_keep_id(f, k1, "m", &res);
        assert_string_equal(id, k1); /* no manifest read: the stat cache said it */
        assert_int_equal(res.same, 1);
        assert_int_equal(count_releases(f), n - 1);
        free(id);
        assert_int_equal(store_put(f->st, mkey, doc, len, 0, NULL, NULL), 0);
        free(doc);
    }
    /* one page changed: the rest where r1 has it */
    write_str(f->site, "about.html", "<h1>about us</h1>\n");
    set_mtime(f->site, "about.html", -50);
    if (sf_s3())
        sf_delete(f->st, mkey);
    char *k2 = create_keep_id(f, k1, "m", &res);
    assert_int_equal(res.same, 0);
    assert_int_equal(res.hashed, 1);
    struct release *r2 = load_ok(f, k2);
    struct sw_err err = {0};
    assert_int_equal(release_verify(f->st, r2, &err), 0);
    for (size_t i = 0; i < 3; i++) {
        if (!strcmp(names[i], "about.html"))
            continue;
        const struct release_file *a = find_file(r1, names[i]), *b = find_file(r2, names[i]);
        assert_string_equal(a->blob, b->blob);
        assert_string_equal(a->pack, b->pack);
        assert_int_equal(a->at, b->at);
        for (int k = 0; k < RELEASE_VARIANTS; k++) {
            assert_string_equal(a->var[k].blob, b->var[k].blob);
            assert_string_equal(a->var[k].pack, b->var[k].pack);
            assert_int_equal(a->var[k].at, b->var[k].at);
        }
    }
    assert_string_not_equal(find_file(r2, "about.html")->blob, find_file(r1, "about.html")->blob);
    /* the same again: k2, read from nothing but the cache on s3 */
    id = create_keep_id(f, k2, "m", &res);
    assert_string_equal(id, k2);
    assert_int_equal(res.same, 1);
    free(id);
    /* another message: a new release */
    id = create_keep_id(f, k2, "another", &res);
    assert_int_equal(res.same, 0);
    assert_string_not_equal(id, k2);
    free(id);
    /* a damaged line: the cache speaks for no release (s3: k2's manifest, gone,
     * leaves no keep: a new release) */
    char *k3 = create_keep_id(f, k2, "m", &res); /* the cache now records k3 */
    char *data = NULL;
    size_t len;
    assert_int_equal(file_read_all(f->cache, &data, &len, NULL), 0);
    char *line = strstr(data, "index.html\n");
    assert_non_null(line);
    while (line > data && line[-1] != '\n')
        line--;
    line[0] = 'x';
    assert_int_equal(fs_write_atomic(f->cache, data, len, NULL), 0);
    free(data);
    snprintf(mkey, sizeof(mkey), "releases/%s.json", k3);
    if (sf_s3()) {
        sf_delete(f->st, mkey);
        id = create_keep_id(f, k3, "m", &res);
        assert_int_equal(res.same, 0);
        assert_string_not_equal(id, k3);
    } else {
        id = create_keep_id(f, k3, "m", &res);
        assert_string_equal(id, k3);
        assert_int_equal(res.same, 1);
    }
    /* The cache now records id. One a crash cut at a line's end (it is not
     * fsynced), with that line's file gone from the tree too, must not pass
     * for id: the tree is id less a file (s3: id's manifest gone). */
    assert_int_equal(file_read_all(f->cache, &data, &len, NULL), 0);
    line = strstr(data, "index.html\n");
    assert_non_null(line);
    while (line > data && line[-1] != '\n')
        line--;
    assert_int_equal(fs_write_atomic(f->cache, data, (size_t)(line - data), NULL), 0);
    free(data);
    char *gone = path_join(f->site, "index.html");
    assert_int_equal(unlink(gone), 0);
    free(gone);
    snprintf(mkey, sizeof(mkey), "releases/%s.json", id);
    if (sf_s3())
        sf_delete(f->st, mkey);
    char *k5 = create_keep_id(f, id, "m", &res);
    assert_int_equal(res.same, 0);
    assert_string_not_equal(k5, id);
    free(k5);
    free(id);
    free(k3);
    release_free(r2);
    release_free(r1);
    free(k2);
    free(k1);
    free(css);
}

/* Puts doc as release id's manifest (a test writes what a hostile writer could). */
static void put_doc(struct fixture *f, const char *id, const char *doc)
{
    char key[160];
    snprintf(key, sizeof(key), "releases/%s.json", id);
    assert_int_equal(store_put(f->st, key, doc, strlen(doc), 0, NULL, NULL), 0);
}

/* The message of release_load(id)'s failure (asserted to fail with rc). */
static void load_fails(struct fixture *f, const char *id, int rc, const char *part)
{
    struct release *r = NULL;
    struct sw_err err = {0};
    assert_int_equal(release_load(f->st, id, &r, &err), rc);
    assert_null(r);
    if (!strstr(err.msg, part))
        fail_msg("%s: '%s' does not say '%s'", id, err.msg, part);
}

/* Manifest format 3, a release written over another: resolved by release_load
 * (the base's files, less what it removes, with its own in their place),
 * written back by the dumper as read, and refused when it does not add up or
 * its fields are off: a base that is itself, depths out of range or not one
 * more than the base's, a path both removed and changed or not in the base,
 * totals that differ, a missing base, base fields in format 2. */
static void test_manifest_delta(void **state)
{
    struct fixture *f = *state;
    const char *names[] = {"a.txt", "b.txt", "c/d.txt", "e.txt"};
    for (size_t i = 0; i < 4; i++)
        write_str(f->site, names[i], names[i]);
    struct release *b = create_ok(f, NULL, 1, NULL);
    assert_int_equal(b->depth, 0);
    assert_null(b->base);
    assert_int_equal(b->nchain, 0);
    /* d1 over b: b.txt changed (another body), c/d.txt removed, z.txt new */
    struct release_file files[2] = {b->files[1], b->files[3]};
    files[0].cache = "no-store";
    memset(files[0].blob, 'a', SHA256_HEX_LEN);
    files[0].size = 3;
    files[1].path = "z.txt";
    char *removed[] = {"c/d.txt"};
    struct release d = *b;
    d.id = "r-delta-1";
    d.files = files;
    d.nfiles = 2;
    d.removed = removed;
    d.nremoved = 1;
    d.base = b->id;
    d.depth = 1;
    d.total_files = 4;
    d.total_bytes = b->bytes - b->files[1].size + 3 - b->files[2].size + b->files[3].size;
    d.chain = NULL;
    d.nchain = 0;
    size_t len;
    char *doc = release_manifest_dump(&d, &len);
    assert_non_null(strstr(doc, "\"format\":3,"));
    put_doc(f, d.id, doc);
    struct release *r = load_ok(f, d.id);
    assert_int_equal(r->nfiles, 4);
    assert_int_equal(r->depth, 1);
    assert_string_equal(r->base, b->id);
    assert_int_equal(r->nchain, 1);
    assert_string_equal(r->chain[0], b->id);
    assert_int_equal(r->nremoved, 0);
    assert_int_equal(r->bytes, d.total_bytes);
    const char *want[] = {"a.txt", "b.txt", "e.txt", "z.txt"};
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(r->files[i].path, want[i]);
    assert_string_equal(r->files[0].blob, b->files[0].blob);
    assert_string_equal(r->files[1].cache, "no-store");
    assert_string_equal(r->files[3].blob, b->files[3].blob);
    release_free(r);
    /* as parsed: the delta itself, which the dumper writes back byte for byte */
    struct release *raw = NULL;
    assert_int_equal(release_manifest_parse("k", NULL, doc, len, &raw, NULL), 0);
    assert_int_equal(raw->nfiles, 2);
    assert_int_equal(raw->nremoved, 1);
    assert_int_equal(raw->total_files, 4);
    size_t len2;
    char *doc2 = release_manifest_dump(raw, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(doc2, doc, len);
    free(doc2);
    release_free(raw);
    free(doc);
    /* d2 over d1 (a chain of two) */
    d.id = "r-delta-2";
    d.base = "r-delta-1";
    d.depth = 2;
    d.nfiles = 0;
    d.nremoved = 0;
    doc = release_manifest_dump(&d, &len);
    put_doc(f, d.id, doc);
    free(doc);
    r = load_ok(f, "r-delta-2");
    assert_int_equal(r->nfiles, 4);
    assert_int_equal(r->nchain, 2);
    assert_string_equal(r->chain[0], "r-delta-1");
    assert_string_equal(r->chain[1], b->id);
    release_free(r);
    /* refused as parsed or as resolved */
    struct {
        const char *id, *base;
        int depth, nfiles, nremoved;
        long long bytes_off;
        size_t total;
        int rc;
        const char *why;
    } bad[] = {
        {"r-x1", "r-x1", 1, 2, 1, 0, 4, SW_EINVAL, "base is not another release's id"},
        {"r-x2", NULL, 9, 2, 1, 0, 4, SW_EINVAL, "depth is not from 1 to 8"},
        {"r-x3", NULL, 2, 2, 1, 0, 4, SW_EINVAL, "each is one more than its base's"},
        {"r-x4", NULL, 1, 2, 1, 1, 4, SW_EINVAL, "not the 4 of"},
        {"r-x5", NULL, 1, 2, 1, 0, 5, SW_EINVAL, "holds 4 files"},
        {"r-x6", "r-nothere", 1, 2, 1, 0, 4, SW_ENOTFOUND, "is written over r-nothere"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        d.id = (char *)bad[i].id;
        d.base = bad[i].base ? (char *)bad[i].base : b->id;
        d.depth = bad[i].depth;
        d.nfiles = (size_t)bad[i].nfiles;
        d.nremoved = (size_t)bad[i].nremoved;
        d.total_files = bad[i].total;
        d.total_bytes = b->bytes - b->files[1].size + 3 - b->files[2].size + b->files[3].size +
                        (uint64_t)bad[i].bytes_off;
        doc = release_manifest_dump(&d, &len);
        put_doc(f, d.id, doc);
        free(doc);
        load_fails(f, bad[i].id, bad[i].rc, bad[i].why);
    }
    /* a removed path the base does not hold; one both removed and changed */
    char *gone[] = {"c/x.txt"}, *both[] = {"z.txt"};
    d.id = "r-x7";
    d.base = b->id;
    d.depth = 1;
    d.total_files = 5;
    d.total_bytes = 0;
    d.removed = gone;
    doc = release_manifest_dump(&d, &len);
    put_doc(f, d.id, doc);
    free(doc);
    load_fails(f, "r-x7", SW_EINVAL, "removed[0] is not a file of");
    d.id = "r-x8";
    d.removed = both;
    doc = release_manifest_dump(&d, &len);
    put_doc(f, d.id, doc);
    free(doc);
    load_fails(f, "r-x8", SW_EINVAL, "removed[0] is also among the files");
    /* base fields outside format 3; removed out of order */
    put_doc(f, "r-x9",
            "{\"format\":2,\"id\":\"r-x9\",\"created\":\"2026-01-01T00:00:00Z\","
            "\"base\":\"r-x1\",\"files\":[]}");
    load_fails(f, "r-x9", SW_EINVAL, "belong to format 3 only");
    put_doc(f, "r-x10",
            "{\"format\":3,\"id\":\"r-x10\",\"created\":\"2026-01-01T00:00:00Z\","
            "\"base\":\"r-x1\",\"depth\":1,\"files_count\":1,\"bytes\":0,\"files\":[],"
            "\"removed\":[\"b\",\"a\"]}");
    load_fails(f, "r-x10", SW_EINVAL, "removed[1]: paths are not sorted and unique");
    release_free(b);
}

/* release_load_memo: on, the last release read is given again, to a load of
 * it and as the base of one written over it, without the store (its base's
 * manifest deleted, both still load); off, the store is read again. */
static void test_load_memo(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "a.txt", "a");
    write_str(f->site, "b.txt", "b");
    struct release *b = create_ok(f, NULL, 1, NULL);
    struct release d = *b;
    d.id = "r-memo-1";
    d.nfiles = 0;
    d.nremoved = 0;
    d.base = b->id;
    d.depth = 1;
    d.total_files = b->nfiles;
    d.total_bytes = b->bytes;
    size_t len;
    char *doc = release_manifest_dump(&d, &len);
    put_doc(f, d.id, doc);
    free(doc);
    d.id = "r-memo-2";
    d.base = "r-memo-1";
    d.depth = 2;
    doc = release_manifest_dump(&d, &len);
    put_doc(f, d.id, doc);
    free(doc);
    release_load_memo(1);
    struct release *r = load_ok(f, "r-memo-1");
    release_free(r);
    char key[160];
    snprintf(key, sizeof(key), "releases/%s.json", b->id);
    sf_delete(f->st, key);
    r = load_ok(f, "r-memo-1"); /* from the memo */
    assert_int_equal(r->nfiles, 2);
    release_free(r);
    r = load_ok(f, "r-memo-2"); /* its base from the memo */
    assert_int_equal(r->nfiles, 2);
    assert_int_equal(r->nchain, 2);
    release_free(r);
    release_load_memo(0);
    load_fails(f, "r-memo-2", SW_ENOTFOUND, "is written over r-memo-1");
    release_free(b);
}

/* release_create over the live release on s3 (the stat cache speaks for it):
 * a change of a file or two is a manifest of just those (format 3), which
 * release_load reads as the whole tree; a chain grows to RELEASE_DEPTH_MAX,
 * then a whole manifest again; a removed file is named as removed; more than
 * a quarter of the files changed (3 of 11) is a whole manifest. On fs, where
 * no manifest crosses a network: always whole. */
static void test_create_delta(void **state)
{
    struct fixture *f = *state;
    char name[256];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof(name), "p%d.html", i);
        write_str(f->site, name, name);
        set_mtime(f->site, name, -100);
    }
    struct release_create_result res;
    char *prev = create_keep_id(f, NULL, "m", &res);
    for (int round = 1; round <= RELEASE_DEPTH_MAX + 2; round++) {
        char body[64];
        snprintf(body, sizeof(body), "p0, round %d", round);
        write_str(f->site, "p0.html", body);
        set_mtime(f->site, "p0.html", -50 + round);
        if (round == RELEASE_DEPTH_MAX + 2) { /* a removal, in the new chain */
            snprintf(name, sizeof(name), "%s/p11.html", f->site);
            assert_int_equal(unlink(name), 0);
        }
        char *id = create_keep_id(f, prev, "m", &res);
        assert_int_equal(res.same, 0);
        char key[160], *doc = NULL;
        size_t len;
        snprintf(key, sizeof(key), "releases/%s.json", id);
        assert_int_equal(store_get(f->st, key, &doc, &len, NULL, NULL), 0);
        struct release *r = load_ok(f, id);
        int want_depth = !sf_s3() ? 0 : round <= RELEASE_DEPTH_MAX ? round : round - 9;
        assert_int_equal(r->depth, want_depth);
        assert_int_equal(r->nchain, (size_t)want_depth);
        assert_int_equal(strstr(doc, "\"format\":3,") != NULL, want_depth > 0);
        if (want_depth)
            assert_non_null(strstr(doc, "\"files_count\":"));
        assert_int_equal(r->nfiles, round == RELEASE_DEPTH_MAX + 2 ? 11 : 12);
        assert_string_equal(r->files[0].path, "p0.html");
        char hex[SHA256_HEX_LEN + 1];
        sha256_hex(body, strlen(body), hex);
        assert_string_equal(r->files[0].blob, hex);
        assert_int_equal(release_verify(f->st, r, NULL), 0);
        if (want_depth && round == RELEASE_DEPTH_MAX + 2)
            assert_non_null(strstr(doc, "\"removed\":[\"p11.html\"]"));
        release_free(r);
        free(doc);
        free(prev);
        prev = id;
    }
    /* three of eleven changed: a whole manifest */
    for (int i = 1; i < 4; i++) {
        snprintf(name, sizeof(name), "p%d.html", i);
        write_str(f->site, name, "changed");
    }
    char *id = create_keep_id(f, prev, "m", &res);
    struct release *r = load_ok(f, id);
    assert_int_equal(r->depth, 0);
    release_free(r);
    free(id);
    free(prev);
}

static int wait_gives(void *arg, const char **id)
{
    *id = arg;
    return 0;
}

/* release_create_opts.keep_id_wait. On s3 with a stat cache that records a
 * release, the scan assumes keep is that one and asks after it: told another
 * (someone else deployed meanwhile), release_create fails with
 * RELEASE_EKEEP_MOVED, that id in err, and nothing but bodies written; again
 * with that keep_id it is a release as usual. Told the one it assumed, the
 * same tree is it. On fs the id is asked first, and the tree made with it. */
static void test_create_keep_id_wait(void **state)
{
    struct fixture *f = *state;
    write_str(f->site, "index.html", "<h1>home</h1>\n");
    set_mtime(f->site, "index.html", -100);
    struct release_create_result res;
    char *k1 = create_keep_id(f, NULL, "m", &res);
    write_str(f->site, "about.html", "<h1>about</h1>\n");
    set_mtime(f->site, "about.html", -100);
    char *k2 = create_keep_id(f, k1, "m", &res); /* the cache records k2 */
    size_t n = count_releases(f);
    struct release_create_opts o = {.dir = f->site,
                                    .message = "m",
                                    .stat_cache = f->cache,
                                    .keep_id_wait = wait_gives,
                                    .keep_id_arg = k1,
                                    .pack = 1};
    char *id = NULL;
    struct sw_err err = {0};
    int rc = create_opts(f, &o, &id, &res, &err);
    if (sf_s3()) {
        assert_int_equal(rc, RELEASE_EKEEP_MOVED);
        assert_string_equal(err.msg, k1);
        assert_int_equal(count_releases(f), n);
        o.keep_id = k1;
        o.keep_id_wait = NULL;
        id = create_opts_ok(f, &o, &res);
    } else {
        assert_int_equal(rc, 0);
    }
    /* the tree is k2's files, not k1's: a new release (k1 was "live") */
    assert_string_not_equal(id, k1);
    assert_string_not_equal(id, k2);
    assert_int_equal(res.same, 0);
    assert_int_equal(count_releases(f), n + 1);
    struct release *r = load_ok(f, id);
    assert_int_equal(r->nfiles, 2);
    assert_int_equal(release_verify(f->st, r, &err), 0);
    release_free(r);
    /* told the one the cache records: the same tree is it */
    o.keep_id = NULL;
    o.keep_id_wait = wait_gives;
    o.keep_id_arg = id;
    char *again = create_opts_ok(f, &o, &res);
    assert_string_equal(again, id);
    assert_int_equal(res.same, 1);
    free(again);
    free(id);
    free(k2);
    free(k1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_reused_bodies_touched),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_cache_policy),
        T(test_create_files_and_dedup),
        T(test_create_symlinks_inside),
        T(test_create_symlink_outside),
        T(test_create_symlink_loops),
        T(test_create_bad_links_all_reported),
        T(test_create_follow_symlinks),
        T(test_create_refused_names),
        T(test_create_special_files),
        T(test_create_empty_and_missing),
        T(test_create_odd_names),
        T(test_manifest_round_trip),
        T(test_manifest_given_source),
        T(test_manifest_parse_hostile),
        T(test_create_mtime),
        T(test_list_and_resolve),
        T(test_verify),
        T(test_packs),
        T(test_create_pack),
        T(test_diff),
        T(test_stat_cache),
        T(test_stat_cache_names),
        T(test_threads_same_manifest),
        T(test_count_tree),
        T(test_create_progress),
        cmocka_unit_test(test_compressible),
        T(test_variants_made),
        T(test_variants_stat_cache),
        T(test_variants_gz_only),
        T(test_variants_manifest),
        cmocka_unit_test(test_variant_decodes),
        T(test_variants_reused),
        T(test_variants_reuse_hostile),
        T(test_variants_reuse_corrupt_manifest),
        T(test_create_keep),
        T(test_create_keep_id),
        T(test_create_keep_id_wait),
        T(test_manifest_delta),
        T(test_create_delta),
        T(test_load_memo),
    };
    return cmocka_run_group_tests_name("release", tests, NULL, NULL);
}
