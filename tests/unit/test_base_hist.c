/* Unit tests for base's log-linear histogram: that buckets tile the range
 * with the promised width, that quantiles match the exact nearest-rank ones
 * within 1/128 on random and adversarial distributions, the overflow bucket,
 * counting at a bound, merging, windows (hist_sub), and a reader racing a recorder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/base.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void) /* xorshift64*: deterministic, so a failure repeats */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static double unit(void) /* [0, 1) */
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A value in [2^m, 2^(m+1)) for m uniform in 0..bits-1: log-uniform, to the
 * power of two (the tests use no libm). */
static uint64_t log_uniform(unsigned bits)
{
    unsigned m = (unsigned)(rnd() % bits);
    return ((uint64_t)1 << m) + rnd() % ((uint64_t)1 << m);
}

static double dabs(double x)
{
    return x < 0 ? -x : x;
}

/* The exact nearest-rank quantile of sorted v[0..n): v[ceil(q n) - 1]. */
static uint64_t exact(const uint64_t *v, size_t n, double q)
{
    double x = q * (double)n;
    size_t r = (size_t)x;
    if ((double)r < x)
        r++;
    if (r < 1)
        r = 1;
    if (r > n)
        r = n;
    return v[r - 1];
}

static const double qs[] = {0,   0.001, 0.01, 0.1,   0.25,   0.5, 0.75,
                            0.9, 0.95,  0.99, 0.999, 0.9999, 1};

/* Records v[0..n) into a fresh histogram and checks every quantile of qs
 * against the exact one: equal below HIST_SUB, within 1/128 above, HIST_LIMIT
 * for an overflowing value. Sorts v. Returns the worst relative error seen. */
static double check_quantiles(uint64_t *v, size_t n, const char *what)
{
    struct hist *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    for (size_t i = 0; i < n; i++)
        hist_record(h, v[i]);
    assert_int_equal(hist_count(h), n);
    qsort(v, n, sizeof(*v), cmp_u64);
    double worst = 0;
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        uint64_t want = exact(v, n, qs[k]), got = hist_quantile(h, qs[k]);
        if (want >= HIST_LIMIT) {
            assert_int_equal(got, HIST_LIMIT);
            continue;
        }
        if (want < HIST_SUB) {
            if (got != want)
                fail_msg("%s: q %g: %llu, exact %llu", what, qs[k], (unsigned long long)got,
                         (unsigned long long)want);
            continue;
        }
        double err = dabs((double)got - (double)want) / (double)want;
        if (err > 1.0 / 128)
            fail_msg("%s: q %g: %llu, exact %llu (%.3f %%)", what, qs[k], (unsigned long long)got,
                     (unsigned long long)want, err * 100);
        if (err > worst)
            worst = err;
    }
    free(h);
    return worst;
}

static void test_hist_buckets_tile_the_range(void **state)
{
    assert_int_equal(HIST_OVERFLOW, 1408);
    assert_int_equal(sizeof(struct hist), 1409 * 8);
    assert_int_equal(hist_bucket_low(0), 0);
    for (size_t i = 0; i < HIST_OVERFLOW; i++) {
        uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);
        assert_true(lo <= hi);
        assert_int_equal(hist_index(lo), i);
        assert_int_equal(hist_index(hi), i);
        if (lo > 0)
            assert_int_equal(hist_index(lo - 1), i - 1);
        assert_int_equal(hist_bucket_low(i + 1), hi + 1); /* no gap, no overlap */
        /* The width promise: 1 below HIST_SUB, at most lo / HIST_SUB above. */
        uint64_t width = hi - lo + 1;
        if (lo < HIST_SUB)
            assert_int_equal(width, 1);
        else
            assert_true(width * HIST_SUB <= lo);
    }
    assert_int_equal(hist_bucket_high(HIST_OVERFLOW - 1), HIST_LIMIT - 1);
    assert_int_equal(hist_bucket_low(HIST_OVERFLOW), HIST_LIMIT);
    assert_int_equal(hist_bucket_high(HIST_OVERFLOW), UINT64_MAX);
    /* 100 s, the range the edge needs, is inside. */
    assert_true(hist_index(100 * 1000 * 1000) < HIST_OVERFLOW);
}

static void test_hist_index_edges(void **state)
{
    assert_int_equal(hist_index(0), 0);
    assert_int_equal(hist_index(1), 1);
    assert_int_equal(hist_index(63), 63);
    assert_int_equal(hist_index(64), 64);
    assert_int_equal(hist_index(127), 127);
    assert_int_equal(hist_index(128), 128);
    assert_int_equal(hist_index(129), 128);
    assert_int_equal(hist_index(130), 129);
    assert_int_equal(hist_index(HIST_LIMIT - 1), HIST_OVERFLOW - 1);
    assert_int_equal(hist_index(HIST_LIMIT), HIST_OVERFLOW);
    assert_int_equal(hist_index(HIST_LIMIT * 2), HIST_OVERFLOW);
    assert_int_equal(hist_index(UINT64_MAX), HIST_OVERFLOW);
    for (unsigned b = 27; b < 64; b++)
        assert_int_equal(hist_index((uint64_t)1 << b), HIST_OVERFLOW);
    /* Every value up to 2^21 and a million random ones: inside its bucket, and
     * the index never decreases as the value grows. */
    size_t prev = 0;
    for (uint64_t v = 0; v < (1u << 21); v++) {
        size_t i = hist_index(v);
        assert_true(i == prev || i == prev + 1);
        assert_true(hist_bucket_low(i) <= v && v <= hist_bucket_high(i));
        prev = i;
    }
    for (int k = 0; k < 1000000; k++) {
        uint64_t v = rnd() >> (rnd() % 64);
        size_t i = hist_index(v);
        assert_true(i <= HIST_OVERFLOW);
        assert_true(hist_bucket_low(i) <= v && v <= hist_bucket_high(i));
    }
}

#define N 200000

static void test_hist_quantiles_random(void **state)
{
    uint64_t *v = malloc(N * sizeof(*v));
    assert_non_null(v);
    double worst = 0, w;
#define WORST(x) (w = (x), worst = w > worst ? w : worst)
    /* Uniform over 0..10 ms. */
    for (size_t i = 0; i < N; i++)
        v[i] = rnd() % 10000;
    WORST(check_quantiles(v, N, "uniform"));
    /* Log-uniform over 1 µs..134 s: every power of two gets values. */
    for (size_t i = 0; i < N; i++)
        v[i] = log_uniform(HIST_RANGE_BITS);
    WORST(check_quantiles(v, N, "log-uniform"));
    /* Pareto: 500 µs / u, a server's long tail, 0.4 % of it past the overflow limit. */
    for (size_t i = 0; i < N; i++)
        v[i] = (uint64_t)(500.0 / (1.0 - unit()));
    WORST(check_quantiles(v, N, "pareto"));
    /* Bimodal: 90 % fast around 200 µs, 10 % slow around 300 ms. */
    for (size_t i = 0; i < N; i++)
        v[i] = rnd() % 10 ? 150 + rnd() % 100 : 250000 + rnd() % 100000;
    WORST(check_quantiles(v, N, "bimodal"));
    /* Small sizes, where a rank error would show. */
    for (size_t n = 1; n <= 200; n++) {
        for (size_t i = 0; i < n; i++)
            v[i] = rnd() % 1000000;
        WORST(check_quantiles(v, n, "small n"));
    }
    print_message("# worst relative error on random data: %.3f %%\n", worst * 100);
    free(v);
}

static void test_hist_quantiles_adversarial(void **state)
{
    uint64_t *v = malloc(N * sizeof(*v));
    assert_non_null(v);
    /* Every value at the low or the high end of its bucket: the midpoint's worst case. */
    for (size_t i = 0; i < N; i++) {
        size_t b = rnd() % HIST_OVERFLOW;
        v[i] = rnd() & 1 ? hist_bucket_low(b) : hist_bucket_high(b);
    }
    check_quantiles(v, N, "bucket ends");
    /* The low end of the widest-relative bucket of each power of two, alone. */
    for (unsigned m = HIST_SUB_BITS; m < HIST_RANGE_BITS; m++) {
        for (size_t i = 0; i < 100; i++)
            v[i] = (uint64_t)1 << m;
        check_quantiles(v, 100, "one power of two");
        for (size_t i = 0; i < 100; i++)
            v[i] = ((uint64_t)1 << (m + 1)) - 1;
        check_quantiles(v, 100, "one power of two minus one");
    }
    /* All equal. */
    for (size_t i = 0; i < N; i++)
        v[i] = 4321;
    check_quantiles(v, N, "constant");
    /* Two far-apart values, half and half: the median is the lower one (rank n/2). */
    for (size_t i = 0; i < N; i++)
        v[i] = i % 2 ? 10 : 1000000;
    check_quantiles(v, N, "two values");
    /* Strictly sorted and reversed input (order must not matter). */
    for (size_t i = 0; i < N; i++)
        v[i] = N - i;
    check_quantiles(v, N, "descending");
    /* 0, and values just under the limit. */
    for (size_t i = 0; i < N; i++)
        v[i] = i % 3 == 0 ? 0 : HIST_LIMIT - 1 - rnd() % 1000;
    check_quantiles(v, N, "zero and the top");
    free(v);
}

static void test_hist_rank_rule(void **state)
{
    struct hist *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    assert_int_equal(hist_quantile(h, 0.5), 0); /* empty */
    for (uint64_t v = 1; v <= 50; v++)
        hist_record(h, v);
    assert_int_equal(hist_quantile(h, 0.5), 25);
    assert_int_equal(hist_quantile(h, 0.99), 50); /* ceil(49.5) */
    assert_int_equal(hist_quantile(h, 0.98), 49);
    assert_int_equal(hist_quantile(h, 0), 1);
    assert_int_equal(hist_quantile(h, 1), 50);
    assert_int_equal(hist_quantile(h, -3), 1); /* clamped */
    assert_int_equal(hist_quantile(h, 7), 50);
    assert_int_equal(hist_quantile(h, __builtin_nan("")), 1);
    /* The reported value of a wider bucket is its midpoint, rounded down: 1001 is in
     * [1000, 1007] (512..1023 in 64 buckets of 8). */
    memset(h, 0, sizeof(*h));
    hist_record(h, 1001);
    assert_int_equal(hist_bucket_low(hist_index(1001)), 1000);
    assert_int_equal(hist_bucket_high(hist_index(1001)), 1007);
    assert_int_equal(hist_quantile(h, 0.5), 1003);
    free(h);
}

static void test_hist_overflow(void **state)
{
    struct hist *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    for (int i = 0; i < 98; i++)
        hist_record(h, 1000);
    hist_record(h, HIST_LIMIT);
    hist_record(h, UINT64_MAX);
    assert_int_equal(hist_count(h), 100);
    assert_int_equal(atomic_load(&h->n[HIST_OVERFLOW]), 2);
    assert_int_equal(hist_quantile(h, 0.98), 1003);
    assert_int_equal(hist_quantile(h, 0.99), HIST_LIMIT); /* at least that */
    assert_int_equal(hist_quantile(h, 1), HIST_LIMIT);
    assert_int_equal(hist_count_le(h, HIST_LIMIT - 1), 98);
    assert_int_equal(hist_count_le(h, UINT64_MAX), 100);
    free(h);
}

static void test_hist_count_le(void **state)
{
    struct hist *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    uint64_t *v = malloc(N * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < N; i++) {
        v[i] = log_uniform(24);
        hist_record(h, v[i]);
    }
    qsort(v, N, sizeof(*v), cmp_u64);
    /* Exact at every bucket's high end and every bound below HIST_SUB. */
    for (size_t b = 0; b < HIST_OVERFLOW; b += 7) {
        uint64_t bound = hist_bucket_high(b), want = 0;
        while (want < N && v[want] <= bound)
            want++;
        assert_int_equal(hist_count_le(h, bound), want);
    }
    /* Inside a bucket: short by at most that bucket's count, never over. */
    uint64_t bounds[] = {5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};
    for (size_t k = 0; k < sizeof(bounds) / sizeof(bounds[0]); k++) {
        uint64_t want = 0;
        while (want < N && v[want] <= bounds[k])
            want++;
        uint64_t got = hist_count_le(h, bounds[k]);
        assert_true(got <= want);
        assert_true(want - got <= atomic_load(&h->n[hist_index(bounds[k])]));
    }
    assert_int_equal(hist_count_le(h, 0), v[0] == 0 ? 1 : 0);
    free(v);
    free(h);
}

static void test_hist_merge(void **state)
{
    struct hist *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    struct hist *all = calloc(1, sizeof(*all)), *sum = calloc(1, sizeof(*sum));
    assert_true(a && b && all && sum);
    for (int i = 0; i < N; i++) {
        /* Two workers with different traffic: a fast, b slow. */
        uint64_t x = rnd() % 2000, y = 100000 + rnd() % 900000;
        hist_record(a, x);
        hist_record(b, y);
        hist_record(all, x);
        hist_record(all, y);
    }
    hist_merge(sum, a);
    hist_merge(sum, b);
    assert_memory_equal(sum, all, sizeof(*sum));
    assert_int_equal(hist_count(sum), 2 * N);
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++)
        assert_int_equal(hist_quantile(sum, qs[k]), hist_quantile(all, qs[k]));
    /* Merging an empty histogram changes nothing; merging into itself is not allowed. */
    struct hist *empty = calloc(1, sizeof(*empty));
    assert_non_null(empty);
    hist_merge(sum, empty);
    assert_memory_equal(sum, all, sizeof(*sum));
    free(empty);
    free(a);
    free(b);
    free(all);
    free(sum);
}

/* A window: the difference of two readings of one histogram is exactly the
 * histogram of the values recorded between them, so its quantiles are the
 * window's own, not the whole run's. */
static void test_hist_sub_window(void **state)
{
    struct hist *live = calloc(1, sizeof(*live)), *before = calloc(1, sizeof(*before));
    struct hist *after = calloc(1, sizeof(*after)), *win = calloc(1, sizeof(*win));
    struct hist *only = calloc(1, sizeof(*only));
    assert_true(live && before && after && win && only);
    /* a long fast past, then a slow window */
    for (int i = 0; i < N; i++)
        hist_record(live, 100 + rnd() % 900);
    hist_merge(before, live);
    for (int i = 0; i < N / 10; i++) {
        uint64_t v = 200000 + rnd() % 800000;
        hist_record(live, v);
        hist_record(only, v);
    }
    hist_merge(after, live);
    hist_sub(win, after, before);
    assert_memory_equal(win, only, sizeof(*win));
    assert_int_equal(hist_count(win), N / 10);
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++)
        assert_int_equal(hist_quantile(win, qs[k]), hist_quantile(only, qs[k]));
    /* the whole run's p50 is fast, the window's slow */
    assert_true(hist_quantile(after, 0.5) < 1000);
    assert_true(hist_quantile(win, 0.5) >= 200000);
    /* in place: dst may be an operand */
    hist_sub(after, after, before);
    assert_memory_equal(after, only, sizeof(*after));
    /* the wrong order (or another histogram) clamps each bucket at 0: no wrap */
    hist_sub(win, before, live);
    assert_int_equal(hist_count(win), 0);
    assert_int_equal(hist_quantile(win, 0.99), 0);
    /* a - a is empty; a - empty is a */
    hist_sub(win, live, live);
    assert_int_equal(hist_count(win), 0);
    memset(before, 0, sizeof(*before));
    hist_sub(win, live, before);
    assert_memory_equal(win, live, sizeof(*win));
    free(live);
    free(before);
    free(after);
    free(win);
    free(only);
}

/* One thread records, another reads the same histogram as a scrape would. */
#define RACE_N 2000000
static void *recorder(void *arg)
{
    struct hist *h = arg;
    for (uint64_t i = 0; i < RACE_N; i++)
        hist_record(h, (i * 2654435761u) % 5000000);
    return NULL;
}

static void test_hist_reader_races_recorder(void **state)
{
    struct hist *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, recorder, h), 0);
    uint64_t last = 0;
    for (int k = 0; k < 200; k++) {
        struct hist *copy = calloc(1, sizeof(*copy));
        assert_non_null(copy);
        hist_merge(copy, h);
        uint64_t n = hist_count(copy);
        assert_true(n >= last); /* counters only grow */
        last = n;
        assert_true(hist_quantile(copy, 0.99) <= HIST_LIMIT);
        free(copy);
    }
    pthread_join(t, NULL);
    assert_int_equal(hist_count(h), RACE_N);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_buckets_tile_the_range),
        cmocka_unit_test(test_hist_index_edges),
        cmocka_unit_test(test_hist_quantiles_random),
        cmocka_unit_test(test_hist_quantiles_adversarial),
        cmocka_unit_test(test_hist_rank_rule),
        cmocka_unit_test(test_hist_overflow),
        cmocka_unit_test(test_hist_count_le),
        cmocka_unit_test(test_hist_merge),
        cmocka_unit_test(test_hist_sub_window),
        cmocka_unit_test(test_hist_reader_races_recorder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
