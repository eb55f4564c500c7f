/* Unit tests for the store interface: keys, atomic puts, conditional writes,
 * batches, listing, cleanup, and CAS across processes. On the fs backend, and
 * on s3 when SLIPWAY_TEST_S3 names a bucket (store_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store/backend.h" /* store_xfer_begin: the slots remote backends take */
#include "store/store.h"
#include "store_fixture.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char *url; /* the store: dir itself on fs */
    struct store *st;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sw-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    struct sw_err err = {0};
    f->url = sf_store_url(f->dir, NULL);
    if (store_open(f->url, &f->st, &err)) {
        print_message("# %s\n", err.msg);
        return -1;
    }
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
    free(f->url);
    free(f);
    return rc;
}

static void test_key_check(void **state)
{
    const char *bad[] = {"",          "/etc/passwd", "a/../b", "..",     "a//b", "a/", "./a",
                         "a/.hidden", "a\\b",        "sp ace", "tab\tx", "\x7f", "é",  ".tmp.1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct sw_err err = {0};
        assert_int_equal(store_key_check(bad[i], &err), SW_EINVAL);
        assert_true(err.msg[0] != '\0');
    }
    char *longkey = xmalloc(STORE_KEY_MAX + 2);
    memset(longkey, 'a', STORE_KEY_MAX + 1);
    longkey[STORE_KEY_MAX + 1] = '\0';
    assert_int_equal(store_key_check(longkey, NULL), SW_EINVAL);
    longkey[STORE_KEY_MAX] = '\0';
    assert_int_equal(store_key_check(longkey, NULL), 0);
    free(longkey);
    assert_int_equal(store_key_check("envs/dev/state.json", NULL), 0);
    assert_int_equal(store_key_check("blobs/sha256/ab/abcdef", NULL), 0);
}

static void test_put_get_head_delete(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    char etag[65], etag2[65];
    assert_int_equal(store_put(f->st, "a/b/c.json", "{}", 2, 0, etag, &err), 0);
    char *data;
    size_t len;
    assert_int_equal(store_get(f->st, "a/b/c.json", &data, &len, etag2, &err), 0);
    assert_int_equal(len, 2);
    assert_string_equal(data, "{}");
    assert_string_equal(etag, etag2);
    free(data);
    struct store_stat sb;
    assert_int_equal(store_head(f->st, "a/b/c.json", &sb, STORE_STAT_ETAG, &err), 0);
    assert_int_equal(sb.size, 2);
    assert_string_equal(sb.etag, etag);
    /* a directory is not an object */
    assert_int_equal(store_head(f->st, "a/b", &sb, 0, &err), SW_ENOTFOUND);
    assert_int_equal(store_get(f->st, "a/missing", &data, &len, NULL, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "a/missing"));
    /* put-if-absent */
    assert_int_equal(store_put(f->st, "a/b/c.json", "x", 1, STORE_IF_ABSENT, NULL, &err),
                     SW_EEXIST);
    assert_int_equal(store_get(f->st, "a/b/c.json", &data, &len, NULL, &err), 0);
    assert_string_equal(data, "{}");
    free(data);
    /* conditional delete */
    assert_int_equal(store_delete(f->st, "a/b/c.json", "00", &err), SW_ECONFLICT);
    assert_int_equal(store_delete(f->st, "a/b/c.json", etag, &err), 0);
    assert_int_equal(store_delete(f->st, "a/b/c.json", NULL, &err), SW_ENOTFOUND);
    /* a bad key never reaches the file system */
    assert_int_equal(store_put(f->st, "../escape", "x", 1, 0, NULL, &err), SW_EINVAL);
    char *outside = xasprintf("%s/../escape", f->dir);
    assert_int_not_equal(access(outside, F_OK), 0);
    free(outside);
}

/* A sink that keeps what it receives and the largest piece, and can fail. */
struct collect {
    struct buf b;
    size_t calls, largest, fail_after;
};

static int collect(void *arg, const void *data, size_t len, struct sw_err *err)
{
    struct collect *c = arg;
    if (c->fail_after && c->calls == c->fail_after)
        return sw_err_set(err, -42, "the sink gave up");
    c->calls++;
    c->largest = len > c->largest ? len : c->largest;
    buf_add(&c->b, data, len);
    return 0;
}

static void test_get_stream(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    /* Larger than any buffer the backend may use: it must arrive in pieces. */
    size_t n = 3 * 1024 * 1024 + 17;
    char *big = xmalloc(n), etag[65], got[65];
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 2654435761u >> 13);
    assert_int_equal(store_put(f->st, "blobs/big", big, n, 0, etag, &err), 0);
    struct collect c = {BUF_INIT, 0, 0, 0};
    uint64_t size = 0;
    assert_int_equal(store_get_stream(f->st, "blobs/big", n, collect, &c, got, &size, &err), 0);
    assert_true(size == n);
    assert_int_equal(c.b.len, n);
    assert_memory_equal(c.b.data, big, n);
    assert_string_equal(got, etag);
    assert_true(c.calls > 1);
    assert_true(c.largest <= 256 * 1024);
    buf_free(&c.b);

    /* One byte over the bound: stopped, and the sink never saw more than max. */
    struct collect d = {BUF_INIT, 0, 0, 0};
    assert_int_equal(store_get_stream(f->st, "blobs/big", n - 1, collect, &d, got, &size, &err),
                     STORE_ETOOBIG);
    assert_true(d.b.len <= n - 1);
    assert_non_null(strstr(err.msg, "blobs/big"));
    buf_free(&d.b);

    /* The sink's own error comes back as it is. */
    struct collect e = {BUF_INIT, 0, 0, 2};
    assert_int_equal(store_get_stream(f->st, "blobs/big", n, collect, &e, NULL, &size, &err), -42);
    assert_string_equal(err.msg, "the sink gave up");
    buf_free(&e.b);

    /* Empty objects, missing keys, directories and bad keys. */
    assert_int_equal(store_put(f->st, "blobs/empty", "", 0, 0, etag, &err), 0);
    struct collect g = {BUF_INIT, 0, 0, 0};
    assert_int_equal(store_get_stream(f->st, "blobs/empty", 0, collect, &g, got, &size, &err), 0);
    assert_true(size == 0);
    assert_string_equal(got, etag);
    assert_int_equal(g.b.len, 0);
    assert_int_equal(store_get_stream(f->st, "blobs/missing", n, collect, &g, NULL, &size, &err),
                     SW_ENOTFOUND);
    assert_int_equal(store_get_stream(f->st, "blobs", n, collect, &g, NULL, &size, &err),
                     SW_ENOTFOUND);
    assert_int_equal(store_get_stream(f->st, "../x", n, collect, &g, NULL, &size, &err), SW_EINVAL);
    buf_free(&g.b);
    free(big);
}

static void test_put_if_match(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    char e1[65], e2[65];
    assert_int_equal(store_put_if_match(f->st, "s.json", "1", 1, NULL, e1, &err), 0);
    assert_int_equal(store_put_if_match(f->st, "s.json", "2", 1, NULL, NULL, &err), SW_ECONFLICT);
    assert_int_equal(store_put_if_match(f->st, "s.json", "2", 1, e1, e2, &err), 0);
    /* the stale ETag loses */
    assert_int_equal(store_put_if_match(f->st, "s.json", "3", 1, e1, NULL, &err), SW_ECONFLICT);
    assert_non_null(strstr(err.msg, "changed"));
    char *data;
    size_t len;
    assert_int_equal(store_get(f->st, "s.json", &data, &len, NULL, &err), 0);
    assert_string_equal(data, "2");
    free(data);
    assert_int_equal(store_put_if_match(f->st, "gone.json", "x", 1, e2, NULL, &err), SW_ECONFLICT);
}

static void test_list_paging(void **state)
{
    struct fixture *f = *state;
    char key[64];
    for (int i = 0; i < 25; i++) {
        snprintf(key, sizeof(key), "events/%012d.json", i);
        assert_int_equal(store_put(f->st, key, "e", 1, 0, NULL, NULL), 0);
    }
    assert_int_equal(store_put(f->st, "eventsX", "e", 1, 0, NULL, NULL), 0);
    assert_int_equal(store_put(f->st, "other/x", "e", 1, 0, NULL, NULL), 0);
    struct store_list l;
    const char *after = NULL;
    char last[64] = "";
    int total = 0, pages = 0;
    do {
        assert_int_equal(store_list(f->st, "events/", after, 10, &l, NULL), 0);
        for (size_t i = 0; i < l.n; i++) {
            assert_true(strcmp(l.keys[i], last) > 0);
            snprintf(last, sizeof(last), "%s", l.keys[i]);
            total++;
        }
        after = last;
        pages++;
        int more = l.truncated;
        store_list_free(&l);
        if (!more)
            break;
    } while (1);
    assert_int_equal(total, 25);
    assert_int_equal(pages, 3);
    assert_int_equal(store_list_all(f->st, "events", &l, NULL), 0);
    assert_int_equal(l.n, 26); /* events/… and eventsX */
    store_list_free(&l);
    assert_int_equal(store_list_all(f->st, "events/00000000001", &l, NULL), 0);
    assert_int_equal(l.n, 10);
    store_list_free(&l);
    assert_int_equal(store_list_all(f->st, "nothing/", &l, NULL), 0);
    assert_int_equal(l.n, 0);
    store_list_free(&l);
}

/* A batched create-only put over an existing key keeps the first (keys of
 * batches are content-addressed), and the commit makes the others readable. */
static void test_batch_if_absent(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    assert_int_equal(store_put(f->st, "blobs/x", "old", 3, 0, NULL, &err), 0);
    assert_int_equal(
        store_put(f->st, "blobs/x", "new", 3, STORE_BATCH | STORE_IF_ABSENT, NULL, &err), 0);
    assert_int_equal(store_put(f->st, "blobs/y", "y", 1, STORE_BATCH | STORE_IF_ABSENT, NULL, &err),
                     0);
    assert_int_equal(store_batch_commit(f->st, &err), 0);
    struct store_stat sb;
    assert_int_equal(store_head(f->st, "blobs/y", &sb, 0, &err), 0);
    char *data;
    size_t len;
    assert_int_equal(store_get(f->st, "blobs/x", &data, &len, NULL, &err), 0);
    assert_string_equal(data, "old"); /* if-absent kept the first */
    free(data);
}

static void test_batch_invisible(void **state)
{
    SF_FS_ONLY("a batch (one syncfs for many files) is the fs backend's; on S3 every "
               "acknowledged PUT is durable and visible at once");
    struct fixture *f = *state;
    struct sw_err err = {0};
    assert_int_equal(store_put(f->st, "blobs/y", "y", 1, STORE_BATCH | STORE_IF_ABSENT, NULL, &err),
                     0);
    struct store_stat sb;
    /* invisible until the commit */
    assert_int_equal(store_head(f->st, "blobs/y", &sb, 0, &err), SW_ENOTFOUND);
    assert_int_equal(store_batch_commit(f->st, &err), 0);
    assert_int_equal(store_head(f->st, "blobs/y", &sb, 0, &err), 0);
    /* an aborted batch leaves nothing behind, not even temporaries */
    assert_int_equal(store_put(f->st, "blobs/z", "z", 1, STORE_BATCH, NULL, &err), 0);
    store_batch_abort(f->st);
    assert_int_equal(store_head(f->st, "blobs/z", &sb, 0, &err), SW_ENOTFOUND);
    size_t removed = 99;
    assert_int_equal(store_cleanup(f->st, 0, &removed, &err), 0);
    assert_int_equal(removed, 0);
}

static void test_cleanup_temporaries(void **state)
{
    SF_FS_ONLY("temporary files of interrupted writes (S3 has incomplete multipart uploads, "
               "which no store operation leaves behind to test with)");
    struct fixture *f = *state;
    char *tmp = xasprintf("%s/blobs/.tmp.1.2.3", f->dir);
    char *d = xasprintf("%s/blobs", f->dir);
    fs_mkdir_p(d, NULL);
    FILE *fp = fopen(tmp, "w");
    assert_non_null(fp);
    fclose(fp);
    size_t removed = 0;
    assert_int_equal(store_cleanup(f->st, 3600 * 1000, &removed, NULL), 0);
    assert_int_equal(removed, 0); /* too young */
    assert_int_equal(store_cleanup(f->st, 0, &removed, NULL), 0);
    assert_int_equal(removed, 1);
    assert_int_not_equal(access(tmp, F_OK), 0);
    free(tmp);
    free(d);
}

/* 8 processes × 200 read-increment-CAS loops on one counter must end at 1600:
 * a lost update would show as a smaller number, a write applied twice as a
 * larger one. A process that loses a race waits a random while before it
 * reads again, as a real client would (full jitter, up to 2^k times what the
 * lost read and write took, k the races lost in a row, at most 4): the races
 * stay (their number is printed), but a store that answers one request at a
 * time (moto) is not flooded with writes bound to lose. */
static void test_cas_across_processes(void **state)
{
    struct fixture *f = *state;
    enum { PROCS = 8, ITERS = 200 };
    assert_int_equal(store_put(f->st, "counter", "0", 1, 0, NULL, NULL), 0);
    long *lost =
        mmap(NULL, PROCS * sizeof(long), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(lost != MAP_FAILED);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            struct store *st;
            struct sw_err err = {0};
            unsigned seed = (unsigned)getpid(), row = 0;
            if (store_open(f->url, &st, &err)) {
                fprintf(stderr, "# process %d: %s\n", p, err.msg);
                _exit(3);
            }
            for (int i = 0; i < ITERS;) {
                char *data, etag[65], next[32];
                size_t len;
                int64_t t0 = time_now_ms();
                if (store_get(st, "counter", &data, &len, etag, &err)) {
                    fprintf(stderr, "# process %d: %s\n", p, err.msg);
                    _exit(4);
                }
                int n = snprintf(next, sizeof(next), "%ld", atol(data) + 1);
                free(data);
                int rc = store_put_if_match(st, "counter", next, (size_t)n, etag, NULL, &err);
                if (rc == 0) {
                    i++;
                    row = 0;
                } else if (rc == SW_ECONFLICT) {
                    lost[p]++;
                    row += row < 4;
                    unsigned took = (unsigned)(time_now_ms() - t0) * 1000u + 500u;
                    usleep((useconds_t)(rand_r(&seed) % (took << row)));
                } else {
                    fprintf(stderr, "# process %d: %s\n", p, err.msg);
                    _exit(5);
                }
            }
            store_free(st);
            _exit(0);
        }
    }
    long races = 0;
    for (int p = 0; p < PROCS; p++) {
        int status;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        races += lost[p];
    }
    munmap(lost, PROCS * sizeof(long));
    char *data;
    size_t len;
    assert_int_equal(store_get(f->st, "counter", &data, &len, NULL, NULL), 0);
    print_message("# counter after %d x %d CAS increments: %s (%ld compare-and-swaps lost a race "
                  "and were retried)\n",
                  PROCS, ITERS, data, races);
    assert_int_equal(atol(data), PROCS * ITERS);
    assert_true(races > 0); /* the processes did race */
    free(data);
}

static void test_open_errors(void **state)
{
    struct store *st;
    struct sw_err err = {0};
    assert_int_equal(store_open("s3x://bucket", &st, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "unsupported scheme"));
    assert_int_equal(store_open("file://relative", &st, &err), SW_EINVAL);
    assert_int_not_equal(store_open("/dev/null/sub", &st, &err), 0);
    assert_non_null(strstr(err.msg, "/dev/null"));

    /* A deferred open refuses at once what needs no request: no credentials
     * (deploy DIR would otherwise walk the tree before hearing it). */
    const char *keep[] = {"AWS_ACCESS_KEY_ID",
                          "AWS_SECRET_ACCESS_KEY",
                          "AWS_SESSION_TOKEN",
                          "AWS_SHARED_CREDENTIALS_FILE",
                          "AWS_CONFIG_FILE",
                          "AWS_PROFILE",
                          "HOME"};
    char *saved[sizeof(keep) / sizeof(*keep)];
    for (size_t i = 0; i < sizeof(keep) / sizeof(*keep); i++) {
        saved[i] = getenv(keep[i]) ? xstrdup(getenv(keep[i])) : NULL;
        unsetenv(keep[i]);
    }
    setenv("HOME", "/nonexistent", 1);
    st = NULL;
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_open_deferred("s3://bucket/p?endpoint=http://127.0.0.1:9&region=us-"
                                         "east-1&path_style=true",
                                         0, &st, &err),
                     SW_EINVAL);
    assert_null(st);
    assert_non_null(strstr(err.msg, "no AWS credentials"));
    for (size_t i = 0; i < sizeof(keep) / sizeof(*keep); i++) {
        if (saved[i])
            setenv(keep[i], saved[i], 1);
        else
            unsetenv(keep[i]);
        free(saved[i]);
    }
}

/* A reader's open creates nothing: a missing store is SW_ENOTFOUND naming it. */
static void test_open_existing(void **state)
{
    SF_FS_ONLY("directories and file:// URLs (test_open_existing_s3 is its s3 side)");
    struct fixture *f = *state;
    struct store *st = NULL;
    struct sw_err err = {0};
    char *missing = xasprintf("%s/typo/store", f->dir);
    assert_int_equal(store_open_existing(missing, &st, &err), SW_ENOTFOUND);
    assert_int_equal(err.code, SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no store at"));
    assert_non_null(strstr(err.msg, "typo/store"));
    assert_int_not_equal(access(missing, F_OK), 0); /* nothing created, not even typo/ */
    char *url = xasprintf("file://%s", missing);
    assert_int_equal(store_open_existing(url, &st, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, url));
    /* an existing store opens and reads */
    assert_int_equal(store_put(f->st, "a/b", "x", 1, 0, NULL, NULL), 0);
    assert_int_equal(store_open_existing(f->dir, &st, &err), 0);
    struct store_stat sb;
    assert_int_equal(store_head(st, "a/b", &sb, 0, NULL), 0);
    assert_int_equal(sb.size, 1);
    store_free(st);
    /* a file is not a store */
    char *file = xasprintf("%s/a/b", f->dir);
    assert_int_not_equal(store_open_existing(file, &st, &err), 0);
    assert_null(strstr(err.msg, "no store at"));
    assert_non_null(strstr(err.msg, "a/b"));
    /* the writer's open still creates it */
    assert_int_equal(store_open(missing, &st, &err), 0);
    store_free(st);
    assert_int_equal(access(missing, F_OK), 0);
    free(file), free(url), free(missing);
}

/* On s3 a reader's open of a bucket that does not exist is SW_ENOTFOUND naming
 * it (nothing is created: buckets are made by 'slipway infra apply'), and an
 * existing store, opened again, reads what the first handle wrote. */
static void test_open_existing_s3(void **state)
{
    SF_S3_ONLY("buckets");
    struct fixture *f = *state;
    struct store *st = NULL;
    struct sw_err err = {0};
    const char *q = strchr(f->url, '?');
    char *missing = xasprintf("s3://no-such-bucket-here/x%s", q ? q : "");
    assert_int_equal(store_open_existing(missing, &st, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no store at"));
    assert_non_null(strstr(err.msg, "no-such-bucket-here"));
    assert_int_equal(store_open(missing, &st, &err), SW_ENOTFOUND);
    assert_int_equal(store_put(f->st, "a/b", "x", 1, 0, NULL, NULL), 0);
    assert_int_equal(store_open_existing(f->url, &st, &err), 0);
    struct store_stat sb;
    assert_int_equal(store_head(st, "a/b", &sb, 0, NULL), 0);
    assert_int_equal(sb.size, 1);
    store_free(st);
    free(missing);
}

/* store_notify makes a store_watch descriptor readable, also one opened by
 * another handle (another process does the same through the file system);
 * a bad topic is refused, and notices stay outside the keys. */
static void test_notify_watch(void **state)
{
    SF_FS_ONLY("notices are inotify on the store's directory; the s3 backend has none");
    struct fixture *f = *state;
    struct sw_err err = {0};
    struct store *other = NULL;
    struct store_list l = {0};
    int fd = -1;

    assert_int_equal(store_watch(f->st, "runs", &fd, &err), 0);
    assert_true(fd >= 0);
    struct pollfd p = {fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 0), 0); /* nothing yet */
    assert_int_equal(store_open(f->dir, &other, &err), 0);
    assert_int_equal(store_notify(other, "runs", &err), 0);
    assert_int_equal(poll(&p, 1, 2000), 1);
    store_watch_drain(fd);
    p.revents = 0;
    assert_int_equal(poll(&p, 1, 0), 0); /* drained */
    assert_int_equal(store_notify(other, "runs", &err), 0);
    assert_int_equal(poll(&p, 1, 2000), 1);
    close(fd);
    assert_int_equal(store_notify(other, "Runs", &err), SW_EINVAL);
    assert_int_equal(store_notify(other, "../x", &err), SW_EINVAL);
    assert_int_equal(store_notify(other, "", &err), SW_EINVAL);
    assert_int_equal(store_watch(other, "a/b", &fd, &err), SW_EINVAL);
    assert_int_equal(fd, -1);
    assert_int_equal(store_list_all(other, "", &l, &err), 0);
    for (size_t i = 0; i < l.n; i++)
        assert_null(strstr(l.keys[i], "notify"));
    store_list_free(&l);
    store_free(other);
}

/* Transfers: fs is local and s3 remote, the limit is clamped, and the bytes
 * written are counted for a progress display, on both. */
static void test_transfers(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    assert_int_equal(store_is_remote(f->st), sf_s3() != NULL);
    assert_int_equal(store_concurrency(f->st), STORE_CONCURRENCY_DEFAULT);
    store_set_concurrency(f->st, 0);
    assert_int_equal(store_concurrency(f->st), 1);
    store_set_concurrency(f->st, 100000);
    assert_int_equal(store_concurrency(f->st), STORE_CONCURRENCY_MAX);
    store_set_concurrency(f->st, 3);
    assert_int_equal(store_concurrency(f->st), 3);

    assert_int_equal(store_bytes_sent(f->st), 0);
    assert_int_equal(store_put(f->st, "a/x", "12345", 5, 0, NULL, &err), 0);
    assert_int_equal(store_bytes_sent(f->st), 5);
    char *path = xasprintf("%s/../sw-store-file-%d", f->dir, (int)getpid());
    assert_int_equal(fs_write_atomic(path, "0123456789", 10, &err), 0);
    assert_int_equal(store_put_file(f->st, "a/y", path, 0, NULL, &err), 0);
    assert_int_equal(store_bytes_sent(f->st), 15);
    /* A failed write counts nothing. */
    assert_int_equal(store_put(f->st, "a/x", "zz", 2, STORE_IF_ABSENT, NULL, &err), SW_EEXIST);
    assert_int_equal(store_put_file(f->st, "a/z", "/nonexistent/file", 0, NULL, &err),
                     SW_ENOTFOUND);
    assert_int_equal(store_bytes_sent(f->st), 15);
    unlink(path);
    free(path);
}

struct slot_probe {
    struct store *st;
    atomic_int busy, most;
};

static void *slot_user(void *arg)
{
    struct slot_probe *p = arg;
    for (int i = 0; i < 20; i++) {
        store_xfer_begin(p->st);
        int now = atomic_fetch_add(&p->busy, 1) + 1;
        int most = atomic_load(&p->most);
        while (now > most && !atomic_compare_exchange_weak(&p->most, &most, now))
            ;
        usleep(500);
        atomic_fetch_sub(&p->busy, 1);
        store_xfer_end(p->st);
    }
    return NULL;
}

/* 8 threads × 20 transfers through 3 slots: never more than 3 at once, and
 * the slots are used (3 at once was seen). Raising the limit mid-way lets
 * waiters go. */
static void test_transfer_slots(void **state)
{
    struct fixture *f = *state;
    struct slot_probe p = {.st = f->st};
    atomic_init(&p.busy, 0);
    atomic_init(&p.most, 0);
    store_set_concurrency(f->st, 3);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, slot_user, &p), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&p.most), 3);
    assert_int_equal(atomic_load(&p.busy), 0);

    store_set_concurrency(f->st, 1);
    store_xfer_begin(f->st); /* the one slot, held */
    atomic_store(&p.most, 0);
    pthread_t w;
    assert_int_equal(pthread_create(&w, NULL, slot_user, &p), 0);
    usleep(20000);
    assert_int_equal(atomic_load(&p.most), 0); /* waiting */
    store_set_concurrency(f->st, 2);
    pthread_join(w, NULL);
    assert_int_equal(atomic_load(&p.most), 1);
    store_xfer_end(f->st);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_check),
        T(test_put_get_head_delete),
        T(test_notify_watch),
        T(test_get_stream),
        T(test_put_if_match),
        T(test_list_paging),
        T(test_batch_if_absent),
        T(test_batch_invisible),
        T(test_cleanup_temporaries),
        T(test_cas_across_processes),
        cmocka_unit_test(test_open_errors),
        T(test_open_existing),
        T(test_transfers),
        T(test_transfer_slots),
        T(test_open_existing_s3),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
