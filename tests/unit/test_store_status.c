/* Unit tests for what a store handle knows of its backend (store_status). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_fs),
    };
    return cmocka_run_group_tests_name("store_status", tests, NULL, NULL);
}
