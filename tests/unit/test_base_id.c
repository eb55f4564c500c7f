/* Unit tests for base's sortable ids: the format, strict order within a
 * process (many at once, within one millisecond, across a clock stepped back,
 * from several threads), and buffers too small. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/base.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PREFIX-YYYYMMDD-HHMMSS-mmm-xxxxxx, digits and lowercase hex where they belong. */
static int well_formed(const char *id, const char *prefix)
{
    size_t p = strlen(prefix);
    if (strlen(id) != ID_LEN(p) || strncmp(id, prefix, p) != 0)
        return 0;
    const char *shape = "-dddddddd-dddddd-ddd-xxxxxx";
    for (size_t i = 0; shape[i]; i++) {
        char c = id[p + i];
        if (shape[i] == '-'   ? c != '-'
            : shape[i] == 'd' ? !isdigit((unsigned char)c)
                              : !(isdigit((unsigned char)c) || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

static void test_id_format(void **state)
{
    char id[64];
    int64_t ms;
    assert_int_equal(time_parse_iso("2026-11-25T08:25:06.123Z", &ms), 0);
    /* Later than any id made so far in this process, so the time is kept. */
    assert_int_equal(id_new_at("r", ms, id, sizeof(id)), 0);
    assert_true(well_formed(id, "r"));
    assert_int_equal(strncmp(id, "r-20261125-082506-123-", 22), 0);
    assert_int_equal(id_new("run", id, sizeof(id)), 0);
    assert_true(well_formed(id, "run"));
    /* Exactly big enough, and one byte short. */
    char small[ID_LEN(3) + 1];
    assert_int_equal(id_new("evt", small, sizeof(small)), 0);
    assert_true(well_formed(small, "evt"));
    assert_int_equal(id_new("evt", small, sizeof(small) - 1), SW_EINVAL);
    /* Release ids are ids: release_create uses id_new_at("r", ...). */
    assert_int_equal(ID_LEN(1), 28);
}

/* 10,000 ids in a row strictly increase as text. */
static void test_id_order(void **state)
{
    char prev[64] = "", id[64];
    int fails = 0;
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(id_new("r", id, sizeof(id)), 0);
        fails += strcmp(prev, id) >= 0 || !well_formed(id, "r");
        memcpy(prev, id, sizeof(id));
    }
    assert_int_equal(fails, 0);
}

/* One millisecond for 5,000 ids, then a clock stepped back an hour: the
 * order holds, and the time written never goes back. */
static void test_id_same_ms_and_clock_back(void **state)
{
    char prev[64], id[64];
    int64_t t = time_now_ms() + 10 * 1000; /* ahead of every id made so far */
    assert_int_equal(id_new_at("r", t, prev, sizeof(prev)), 0);
    char stamp[32];
    memcpy(stamp, prev, 22);
    stamp[22] = '\0';
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(id_new_at("r", t, id, sizeof(id)), 0);
        assert_true(strcmp(prev, id) < 0);
        assert_int_equal(strncmp(id, stamp, 22), 0);
        memcpy(prev, id, sizeof(id));
    }
    assert_int_equal(id_new_at("r", t - 3600 * 1000, id, sizeof(id)), 0);
    assert_true(strcmp(prev, id) < 0);
    assert_int_equal(strncmp(id, stamp, 22), 0);
    memcpy(prev, id, sizeof(id));
    assert_int_equal(id_new_at("r", t + 1, id, sizeof(id)), 0); /* the clock moves on */
    assert_true(strcmp(prev, id) < 0);
    assert_true(strncmp(id, stamp, 22) > 0);
}

#define PER_THREAD 2000

static void *make_ids(void *arg)
{
    char(*out)[32] = arg;
    for (int i = 0; i < PER_THREAD; i++)
        if (id_new("r", out[i], sizeof(out[i])) != 0 || (i && strcmp(out[i - 1], out[i]) >= 0))
            return (void *)1;
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Four threads at once: each sees its own ids increase, and none is made twice. */
static void test_id_threads(void **state)
{
    char(*ids)[32] = xcalloc(4 * PER_THREAD, 32);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, make_ids, ids + i * PER_THREAD), 0);
    int failed = 0;
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(t[i], &res);
        failed += res != NULL;
    }
    assert_int_equal(failed, 0);
    qsort(ids, 4 * PER_THREAD, 32, cmp_id);
    for (int i = 1; i < 4 * PER_THREAD; i++)
        assert_true(strcmp(ids[i - 1], ids[i]) < 0);
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_format),
        cmocka_unit_test(test_id_order),
        cmocka_unit_test(test_id_same_ms_and_clock_back),
        cmocka_unit_test(test_id_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
