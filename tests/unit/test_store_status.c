/* Unit tests for what a store handle knows of its backend (store_status) and
 * for failing fast (store_set_fail_fast): on the fs backend, and on the s3
 * backend against a small fake service that can stop answering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store/store.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int sink_fails(void *arg, const void *data, size_t len, struct sw_err *err)
{
    (void)arg, (void)data, (void)len;
    return sw_err_set(err, SW_EIO, "the local disk broke");
}

static void test_status_fs(void **state)
{
    (void)state;
    char dir[64] = "/tmp/sw-status-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct sw_err err = {0};
    struct store *st = NULL;
    assert_int_equal(store_open(dir, &st, &err), 0);
    assert_string_equal(store_scheme(st), "file");
    store_set_fail_fast(st, 1); /* nothing to change on fs */

    struct store_status s;
    store_status(st, &s);
    assert_int_equal(s.degraded, 0);
    assert_true(s.since_ms == 0 && s.error_ms == 0 && s.failures == 0);
    assert_string_equal(s.error, "");

    char *data = NULL, etag[SHA256_HEX_LEN + 1];
    size_t len;
    assert_int_equal(store_put(st, "envs/a", "x", 1, 0, etag, &err), 0);
    /* A key the store cannot read (a symbolic link to itself): an I/O error. */
    char *loop = xasprintf("%s/envs/loop", dir);
    assert_int_equal(symlink("loop", loop), 0);
    int64_t before = time_now_ms();
    assert_int_equal(store_get(st, "envs/loop", &data, &len, NULL, &err), SW_EIO);
    store_status(st, &s);
    assert_int_equal(s.degraded, 1);
    assert_true(s.since_ms >= before && s.error_ms == s.since_ms);
    assert_true(s.failures == 1);
    assert_non_null(strstr(s.error, "envs/loop"));
    int64_t down = s.since_ms;

    /* Neither a bad key nor a sink that gives up says anything of the store. */
    assert_int_equal(store_get(st, "../x", &data, &len, NULL, &err), SW_EINVAL);
    uint64_t size;
    assert_int_equal(store_get_stream(st, "envs/a", 10, sink_fails, NULL, NULL, &size, &err),
                     SW_EIO);
    store_status(st, &s);
    assert_int_equal(s.degraded, 1);
    assert_true(s.since_ms == down && s.failures == 1);

    /* A second failure keeps the time it began. */
    assert_int_equal(store_head(st, "envs/loop", &(struct store_stat){0}, STORE_STAT_ETAG, &err),
                     SW_EIO);
    store_status(st, &s);
    assert_true(s.degraded && s.since_ms == down && s.failures == 2);

    /* Any answer is the store answering: a missing key too. */
    assert_int_equal(store_get(st, "envs/missing", &data, &len, NULL, &err), SW_ENOTFOUND);
    store_status(st, &s);
    assert_int_equal(s.degraded, 0);
    assert_true(s.since_ms >= down && s.failures == 2);
    assert_non_null(strstr(s.error, "envs/loop")); /* the last failure is kept */

    /* A sink's failure after an ok store leaves it ok; a lost compare-and-swap too. */
    assert_int_equal(store_get_stream(st, "envs/a", 10, sink_fails, NULL, NULL, &size, &err),
                     SW_EIO);
    assert_int_equal(store_put_if_match(st, "envs/a", "y", 1, "0000", NULL, &err), SW_ECONFLICT);
    store_status(st, &s);
    assert_int_equal(s.degraded, 0);
    assert_true(s.failures == 2);

    store_free(st);
    free(loop);
    char *cmd = xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

/* ---- a fake S3 ------------------------------------------------------------------ */

/* What the fake answers to a GET: nothing at all (a hung service), or 404. */
enum { FAKE_STALL, FAKE_NOTFOUND };

struct fake {
    int fd;
    int port;
    atomic_int mode, stop;
    pthread_t thread;
};

struct conn {
    struct fake *f;
    int fd;
};

static const char not_found[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The "
    "specified key does not exist.</Message></Error>";

/* One connection: a request head at a time (HEAD and GET carry no body). */
static void *conn_main(void *arg)
{
    struct conn *c = arg;
    char req[8192];
    size_t n = 0;
    while (!atomic_load(&c->f->stop)) {
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t k = recv(c->fd, req + n, sizeof(req) - 1 - n, 0);
        if (k <= 0)
            break;
        n += (size_t)k;
        req[n] = '\0';
        char *end = strstr(req, "\r\n\r\n");
        if (!end)
            continue;
        char answer[512];
        int len = 0;
        if (!strncmp(req, "HEAD ", 5))
            len = snprintf(answer, sizeof(answer), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        else if (atomic_load(&c->f->mode) == FAKE_NOTFOUND)
            len = snprintf(answer, sizeof(answer),
                           "HTTP/1.1 404 Not Found\r\nContent-Type: application/xml\r\n"
                           "Content-Length: %zu\r\n\r\n%s",
                           strlen(not_found), not_found);
        if (len > 0 && send(c->fd, answer, (size_t)len, MSG_NOSIGNAL) != len)
            break;
        /* A stalled request is left unanswered: the client gives up and closes. */
        size_t used = (size_t)(end + 4 - req);
        memmove(req, req + used, n - used);
        n -= used;
    }
    close(c->fd);
    free(c);
    return NULL;
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {f->fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(f->fd, NULL, NULL);
        if (fd < 0)
            continue;
        struct conn *c = xcalloc(1, sizeof(*c));
        c->f = f;
        c->fd = fd;
        pthread_t t;
        if (pthread_create(&t, NULL, conn_main, c) != 0) {
            close(fd);
            free(c);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

static void fake_start(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->fd, 16), 0);
    assert_int_equal(getsockname(f->fd, (struct sockaddr *)&a, &alen), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    close(f->fd);
    usleep(300 * 1000); /* its connections see the flag within 100 ms */
}

static void test_fail_fast_s3(void **state)
{
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("SLIPWAY_S3_ENDPOINT");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_S3");
    unsetenv("SLIPWAY_S3_STALL_SECONDS");
    struct fake f;
    fake_start(&f);
    char url[128];
    snprintf(url, sizeof(url), "s3://bucket/p?endpoint=http://127.0.0.1:%d", f.port);
    struct sw_err err = {0};
    struct store *st = NULL;
    assert_int_equal(store_open_existing(url, &st, &err), 0);
    assert_string_equal(store_scheme(st), "s3");
    store_set_fail_fast(st, 1);

    /* A service that takes the request and never answers: given up in about
     * 2 s (curl notices a stall on whole seconds), not retried for 30. */
    char *data = NULL;
    size_t len;
    int64_t t0 = time_mono_ms();
    assert_int_equal(store_get(st, "envs/x/state.json", &data, &len, NULL, &err), SW_EIO);
    int64_t took = time_mono_ms() - t0;
    print_message("# a hung service failed a fail-fast read after %lld ms\n", (long long)took);
    assert_true(took >= 1500 && took < 5000);
    assert_non_null(strstr(err.msg, "GET envs/x/state.json"));
    struct store_status s;
    store_status(st, &s);
    assert_int_equal(s.degraded, 1);
    assert_true(s.failures == 1);
    assert_string_equal(s.error, err.msg);

    /* It answers again: a 404 is an answer. */
    atomic_store(&f.mode, FAKE_NOTFOUND);
    assert_int_equal(store_get(st, "envs/x/state.json", &data, &len, NULL, &err), SW_ENOTFOUND);
    store_status(st, &s);
    assert_int_equal(s.degraded, 0);

    store_free(st);
    fake_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_fs),
        cmocka_unit_test(test_fail_fast_s3),
    };
    return cmocka_run_group_tests_name("store_status", tests, NULL, NULL);
}
