/* Unit tests for the monitor's sampler and history (src/monitor/sampler.c,
 * history.c): window arithmetic on rings of cumulative readings (requests,
 * errors, a window's own percentiles, host CPU, disk and process figures),
 * the history ring (wrapping, the live slot across a switch, series places,
 * a clock stepping back), its file (round trip; every truncation, a flipped
 * byte, and hostile files with a valid checksum refused one by one), and a
 * sampler driven by hand with fake counters: alert transitions, the hook,
 * steps that add up exactly, reload, and restart from the saved file, with a
 * corrupt one kept aside and replaced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "monitor/sampler_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- window arithmetic ------------------------------------------------------------- */

static void snap_fill(struct snap *p, int64_t ms, uint64_t req, uint64_t err)
{
    p->mono_ms = ms;
    p->requests = req;
    p->errors = err;
}

static void test_window_ring(void **state)
{
    struct window w;
    window_init(&w, 4);
    assert_null(window_back(&w, 0));
    for (int i = 1; i <= 6; i++) {
        struct snap *p = window_push(&w);
        snap_fill(p, i * 1000, (uint64_t)i * 10, 0);
    }
    /* 4 kept: readings 3..6 */
    assert_int_equal(w.n, 4);
    assert_int_equal(window_back(&w, 0)->requests, 60);
    assert_int_equal(window_back(&w, 3)->requests, 30);
    /* further back than kept: the oldest */
    assert_int_equal(window_back(&w, 100)->requests, 30);
    window_free(&w);
}

static void test_window_delta(void **state)
{
    struct window w;
    struct window_delta d;
    struct hist *scratch = calloc(1, sizeof(*scratch));
    assert_non_null(scratch);
    window_init(&w, 61);

    /* one reading: no window at all */
    struct snap *p = window_push(&w);
    snap_fill(p, 1000, 1000, 5);
    for (int i = 0; i < 1000; i++)
        hist_record(&p->h, 100); /* a fast past: 100 µs */
    window_delta(&w, 60, scratch, &d);
    assert_int_equal(d.ms, 0);
    assert_int_equal(d.requests, 0);
    assert_int_equal(d.p99_us, 0);

    /* 60 more readings, one a second; in the last 10, 100 slow requests (50 ms), 10 errors */
    struct hist cum;
    memcpy(&cum, &p->h, sizeof(cum));
    uint64_t req = 1000, err = 5;
    for (int i = 1; i <= 60; i++) {
        if (i > 50) {
            for (int k = 0; k < 10; k++)
                hist_record(&cum, 50000);
            req += 10;
            err += 1;
        } else {
            for (int k = 0; k < 10; k++)
                hist_record(&cum, 200);
            req += 10;
        }
        p = window_push(&w);
        snap_fill(p, 1000 + i * 1000, req, err);
        memcpy(&p->h, &cum, sizeof(cum));
    }
    /* the whole window: 600 requests over 60 s */
    window_delta(&w, 60, scratch, &d);
    assert_int_equal(d.ms, 60000);
    assert_int_equal(d.requests, 600);
    assert_int_equal(d.errors, 10);
    assert_int_equal(d.durations, 600);
    /* p50 of the window: 200 µs (the past 100 µs ones are not in it) */
    assert_true(d.p50_us >= 198 && d.p50_us <= 202);
    /* p95 and p99: the slow sixth */
    assert_true(d.p95_us >= 49600 && d.p95_us <= 50400);
    /* the last 10 s: only the slow ones */
    window_delta(&w, 10, scratch, &d);
    assert_int_equal(d.ms, 10000);
    assert_int_equal(d.requests, 100);
    assert_int_equal(d.errors, 10);
    assert_true(d.p50_us >= 49600 && d.p50_us <= 50400);
    assert_int_equal(hist_count(scratch), 100);

    /* the sample of a window: ratios, seconds, NaN for what was not measured */
    struct host_delta hd = {10000, 0.25, 0.5, 1e6, 0.1, 1e8};
    struct monitor_sample s;
    window_delta(&w, 10, scratch, &d);
    window_sample(&d, &hd, "r-1", &s);
    assert_int_equal(s.requests, d.requests);
    assert_true(s.value[MONITOR_SIGNAL_ERROR_RATIO] == (double)d.errors / (double)d.requests);
    assert_true(fabs(s.value[MONITOR_SIGNAL_LATENCY_P50] - d.p50_us / 1e6) < 1e-12);
    assert_true(fabs(s.value[MONITOR_SIGNAL_REQUEST_RATE] - d.requests * 1000.0 / d.ms) < 1e-9);
    assert_true(s.value[MONITOR_SIGNAL_CPU] == 0.25);
    assert_true(s.value[MONITOR_SIGNAL_DISK_IO] == 1e6);
    assert_string_equal(s.release, "r-1");
    struct window_delta none = {0};
    window_sample(&none, &hd, "", &s);
    assert_true(isnan(s.value[MONITOR_SIGNAL_ERROR_RATIO]));
    assert_true(isnan(s.value[MONITOR_SIGNAL_LATENCY_P99]));
    assert_true(isnan(s.value[MONITOR_SIGNAL_REQUEST_RATE]));
    assert_null(s.release);

    /* counters that go back (not one instant's reading) count 0, never wrap */
    p = window_push(&w);
    snap_fill(p, 62000, req - 5, err + 100);
    memset(&p->h, 0, sizeof(p->h));
    window_delta(&w, 1, scratch, &d);
    assert_int_equal(d.requests, 0);
    assert_int_equal(d.errors, 0); /* errors never exceed requests */
    assert_int_equal(d.durations, 0);

    /* history figures: saturated, ordered */
    struct monitor_slot_figures f;
    struct window_delta big = {10000, 1ULL << 40, 1ULL << 33, 1ULL << 40, 10, 20, 30};
    window_figures(&big, &f);
    assert_int_equal(f.requests, UINT32_MAX);
    assert_int_equal(f.errors, UINT32_MAX);
    assert_int_equal(f.p99_us, 30);
    window_free(&w);
    free(scratch);
}

static void test_host_delta(void **state)
{
    struct host_window w;
    struct host_delta d;
    host_window_init(&w, 61);
    host_window_delta(&w, 60, &d);
    assert_true(isnan(d.cpu) && isnan(d.memory) && isnan(d.rss));

    struct host_snap *a = host_window_push(&w);
    memset(a, 0, sizeof(*a));
    a->mono_ms = 0;
    a->ok = MONITOR_SRC_ALL;
    a->cpu.ticks[MONITOR_CPU_USER] = 1000;
    a->cpu.ticks[MONITOR_CPU_IDLE] = 3000;
    a->disk_bytes = 1 << 20;
    a->proc_ticks = 100;
    a->clk_tck = 100;
    a->mem_total = 1000;
    a->mem_available = 750;
    a->has_available = 1;
    a->rss_bytes = 4096;
    /* one reading: the figures of a moment, no rates */
    host_window_delta(&w, 60, &d);
    assert_int_equal(d.ms, 0);
    assert_true(d.memory == 0.25);
    assert_true(d.rss == 4096);
    assert_true(isnan(d.cpu) && isnan(d.disk_bps) && isnan(d.proc_cpu));

    struct host_snap *b = host_window_push(&w);
    *b = w.v[0];
    b->mono_ms = 10000;
    b->cpu.ticks[MONITOR_CPU_USER] += 300; /* 300 busy of 1000 ticks */
    b->cpu.ticks[MONITOR_CPU_IDLE] += 700;
    b->disk_bytes += 10 << 20; /* 10 MiB in 10 s */
    b->proc_ticks += 50;       /* 0.5 s of CPU in 10 s */
    host_window_delta(&w, 60, &d);
    assert_int_equal(d.ms, 10000);
    assert_true(fabs(d.cpu - 0.3) < 1e-12);
    assert_true(fabs(d.disk_bps - (1 << 20)) < 1e-6);
    assert_true(fabs(d.proc_cpu - 0.05) < 1e-12);

    struct monitor_host_figures f;
    host_figures(&d, &f);
    assert_int_equal(f.ok, MONITOR_HOST_ALL);
    assert_int_equal(f.host_cpu_ppm, 300000);
    assert_int_equal(f.host_mem_ppm, 250000);
    assert_int_equal(f.disk_io_bps, 1 << 20);
    assert_int_equal(f.proc_cpu_milli, 50);
    assert_int_equal(f.proc_rss_bytes, 4096);

    /* a source missing in either reading: not measured; a device gone: not negative */
    struct host_snap *c = host_window_push(&w);
    *c = *b;
    c->mono_ms = 20000;
    c->ok &= ~(unsigned)(MONITOR_SRC_STAT | MONITOR_SRC_MEMINFO);
    c->disk_bytes = 5;
    host_window_delta(&w, 1, &d);
    assert_true(isnan(d.cpu) && isnan(d.memory));
    assert_true(d.disk_bps == 0);
    host_figures(&d, &f);
    assert_int_equal(f.ok & (MONITOR_HOST_CPU | MONITOR_HOST_MEM), 0);
    assert_int_equal(f.host_cpu_ppm, 0);
    host_window_free(&w);
}

/* ---- the history ring -------------------------------------------------------------- */

static struct monitor_history_entry entry(const char *env, int slot, int live, uint32_t req)
{
    struct monitor_history_entry e = {env, slot, live, {req, req / 10, 0, 0, 0}};
    if (req) {
        e.s.p50_us = 100;
        e.s.p95_us = 200;
        e.s.p99_us = 300;
    }
    return e;
}

static void test_history_ring(void **state)
{
    assert_null(monitor_history_new(0, 1000));
    assert_null(monitor_history_new(MONITOR_HISTORY_STEPS + 1, 1000));
    assert_null(monitor_history_new(4, 0));
    struct monitor_history *h = monitor_history_new(16, 10000);
    struct monitor_host_figures host = {MONITOR_HOST_CPU, 500000, 0, 0, 0, 0};
    struct monitor_point *p = NULL;
    assert_int_equal(monitor_history_count(h), 0);
    assert_int_equal(monitor_history_points(h, "web", MONITOR_PICK_LIVE, 0, &p), 0);
    assert_null(p);
    assert_false(monitor_history_has(h, "web"));

    /* 20 steps of a blue-green environment: blue live for 12, then green */
    for (int i = 1; i <= 20; i++) {
        struct monitor_history_entry e[2] = {entry("web", EDGE_SLOT_BLUE, i <= 12, (uint32_t)i),
                                             entry("web", EDGE_SLOT_GREEN, i > 12, 1000)};
        assert_int_equal(monitor_history_append(h, 1000000 + i * 10000, 10000, &host, e, 2), 0);
    }
    /* 16 kept: steps 5..20 */
    assert_int_equal(monitor_history_count(h), 16);
    assert_int_equal(monitor_history_newest_ms(h), 1200000);
    size_t n = monitor_history_points(h, "web", MONITOR_PICK_LIVE, 0, &p);
    assert_int_equal(n, 16);
    assert_int_equal(p[0].at_ms, 1050000);
    assert_int_equal(p[0].slot, EDGE_SLOT_BLUE);
    assert_int_equal(p[0].s.requests, 5);
    assert_int_equal(p[7].slot, EDGE_SLOT_BLUE); /* step 12 */
    assert_int_equal(p[8].slot, EDGE_SLOT_GREEN);
    assert_int_equal(p[8].s.requests, 1000);
    assert_int_equal(p[8].s.errors, 100);
    assert_int_equal(p[8].host.host_cpu_ppm, 500000);
    assert_true(p[8].live);
    free(p);
    /* the idle slot is the other one at each step */
    n = monitor_history_points(h, "web", MONITOR_PICK_IDLE, 1130000, &p);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(p[i].slot, EDGE_SLOT_BLUE);
        assert_false(p[i].live);
    }
    free(p);

    /* a clock stepping back never makes time go back in the history */
    struct monitor_history_entry e1 = entry("web", EDGE_SLOT_BLUE, 1, 1);
    monitor_history_append(h, 5, 10000, &host, &e1, 1);
    assert_int_equal(monitor_history_newest_ms(h), 1200001);

    /* a bad name or slot is left out and counted */
    struct monitor_history_entry bad[3] = {entry("Web", EDGE_SLOT_BLUE, 1, 1),
                                           entry("web", 7, 1, 1), entry("web/../x", 0, 1, 1)};
    assert_int_equal(monitor_history_append(h, 1300000, 10000, &host, bad, 3), 3);
    monitor_history_free(h);
}

static void test_history_series_places(void **state)
{
    struct monitor_history *h = monitor_history_new(4, 1000);
    char name[MONITOR_HISTORY_SERIES_MAX + 1][16];
    struct monitor_history_entry e[MONITOR_HISTORY_SERIES_MAX + 1];
    for (int i = 0; i <= MONITOR_HISTORY_SERIES_MAX; i++) {
        snprintf(name[i], sizeof(name[i]), "env%d", i);
        e[i] = entry(name[i], EDGE_SLOT_DIRECT, 1, 1);
    }
    /* one more than the bound: left out */
    assert_int_equal(monitor_history_append(h, 1000, 1000, NULL, e, MONITOR_HISTORY_SERIES_MAX + 1),
                     1);
    assert_false(monitor_history_has(h, name[MONITOR_HISTORY_SERIES_MAX]));
    /* once the series have aged out of every kept step, a new one takes a place */
    struct monitor_history_entry only = entry("newcomer", EDGE_SLOT_DIRECT, 1, 7);
    assert_int_equal(monitor_history_append(h, 2000, 1000, NULL, &only, 1), 1);
    for (int t = 3; t <= 5; t++)
        monitor_history_append(h, t * 1000, 1000, NULL, NULL, 0);
    assert_false(monitor_history_has(h, "env0"));
    assert_int_equal(monitor_history_append(h, 6000, 1000, NULL, &only, 1), 0);
    struct monitor_point *p;
    assert_int_equal(monitor_history_points(h, "newcomer", MONITOR_PICK_LIVE, 0, &p), 1);
    assert_int_equal(p[0].s.requests, 7);
    assert_int_equal(p[0].host.ok, 0);
    free(p);
    monitor_history_free(h);
}

/* ---- the file ---------------------------------------------------------------------- */

static struct monitor_history *sample_history(void)
{
    struct monitor_history *h = monitor_history_new(MONITOR_HISTORY_STEPS, 10000);
    for (int i = 1; i <= 30; i++) {
        struct monitor_host_figures host = {
            MONITOR_HOST_ALL, (uint32_t)i * 1000, 400000, (uint64_t)i << 20, 120, 50u << 20};
        struct monitor_history_entry e[3] = {entry("web", EDGE_SLOT_BLUE, i % 7 != 0, 100),
                                             entry("web", EDGE_SLOT_GREEN, i % 7 == 0, 0),
                                             entry("dev", EDGE_SLOT_DIRECT, 1, (uint32_t)i)};
        monitor_history_append(h, 1700000000000LL + i * 10000, 10000, &host, e, i > 20 ? 2 : 3);
    }
    return h;
}

static void points_equal(struct monitor_history *a, struct monitor_history *b, const char *env,
                         enum monitor_pick pick)
{
    struct monitor_point *p, *q;
    size_t n = monitor_history_points(a, env, pick, 0, &p);
    size_t m = monitor_history_points(b, env, pick, 0, &q);
    assert_int_equal(n, m);
    assert_true(n > 0);
    assert_memory_equal(p, q, n * sizeof(*p));
    free(p);
    free(q);
}

static void test_history_file_round_trip(void **state)
{
    struct monitor_history *h = sample_history(), *back = NULL;
    struct buf b = BUF_INIT;
    struct sw_err err = {0};
    monitor_history_encode(h, &b);
    /* 32 + 30 steps * 41 + 3 series * (1 + 3 + 1 + 30 * 21) + 64 */
    assert_int_equal(b.len, 32 + 30 * 41 + 3 * (5 + 30 * 21) + 64);
    assert_true(b.len <= MONITOR_HISTORY_FILE_MAX);
    assert_int_equal(
        monitor_history_decode(b.data, b.len, "h", 10000, MONITOR_HISTORY_STEPS, &back, &err), 0);
    assert_int_equal(monitor_history_count(back), 30);
    points_equal(h, back, "web", MONITOR_PICK_LIVE);
    points_equal(h, back, "web", MONITOR_PICK_IDLE);
    points_equal(h, back, "dev", MONITOR_PICK_LIVE);
    /* encoding what was decoded gives the same bytes */
    struct buf b2 = BUF_INIT;
    monitor_history_encode(back, &b2);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);
    monitor_history_free(back);
    /* read into a smaller ring: the newest steps */
    assert_int_equal(monitor_history_decode(b.data, b.len, "h", 0, 8, &back, &err), 0);
    assert_int_equal(monitor_history_count(back), 8);
    assert_int_equal(monitor_history_newest_ms(back), monitor_history_newest_ms(h));
    struct monitor_point *p;
    assert_int_equal(monitor_history_points(back, "dev", MONITOR_PICK_LIVE, 0, &p), 0);
    assert_false(monitor_history_has(back, "dev")); /* dev stopped at step 20 */
    monitor_history_free(back);
    /* another step is refused, and says which */
    assert_int_equal(
        monitor_history_decode(b.data, b.len, "h", 1000, MONITOR_HISTORY_STEPS, &back, &err),
        SW_EINVAL);
    assert_non_null(strstr(err.msg, "h: recorded with steps of 10000 ms, not 1000 ms"));
    assert_null(back);
    /* an empty history is a valid file too */
    struct monitor_history *empty = monitor_history_new(5, 10000);
    buf_reset(&b2);
    monitor_history_encode(empty, &b2);
    assert_int_equal(b2.len, 32 + 64);
    assert_int_equal(monitor_history_decode(b2.data, b2.len, "e", 0, 5, &back, &err), 0);
    assert_int_equal(monitor_history_count(back), 0);
    monitor_history_free(back);
    monitor_history_free(empty);
    buf_free(&b2);
    buf_free(&b);
    monitor_history_free(h);
}

static void test_history_file_truncated_and_damaged(void **state)
{
    struct monitor_history *h = sample_history(), *back = NULL;
    struct buf b = BUF_INIT;
    struct sw_err err = {0};
    monitor_history_encode(h, &b);
    /* every prefix is refused: a torn write never loads as a shorter history */
    for (size_t len = 0; len < b.len; len++) {
        assert_int_equal(
            monitor_history_decode(b.data, len, "h", 0, MONITOR_HISTORY_STEPS, &back, &err),
            SW_EINVAL);
        assert_null(back);
    }
    /* a byte more is refused */
    char *longer = malloc(b.len + 1);
    memcpy(longer, b.data, b.len);
    longer[b.len] = 0;
    assert_int_equal(
        monitor_history_decode(longer, b.len + 1, "h", 0, MONITOR_HISTORY_STEPS, &back, &err),
        SW_EINVAL);
    free(longer);
    /* any byte flipped is refused (most by the checksum) */
    for (size_t i = 0; i < b.len; i += 7) {
        b.data[i] ^= 0x20;
        assert_int_equal(
            monitor_history_decode(b.data, b.len, "h", 0, MONITOR_HISTORY_STEPS, &back, &err),
            SW_EINVAL);
        b.data[i] ^= 0x20;
    }
    b.data[200] ^= 1;
    monitor_history_decode(b.data, b.len, "h", 0, MONITOR_HISTORY_STEPS, &back, &err);
    assert_string_equal(err.msg, "h: checksum mismatch (a torn or damaged write)");
    assert_int_equal(monitor_history_decode("nonsense", 8, "h", 0, 4, &back, &err), SW_EINVAL);
    assert_string_equal(err.msg, "h: not a slipway monitor history");
    buf_free(&b);
    monitor_history_free(h);
}

/* A file of one step and one series, with the checksum made right, so only the
 * structural checks can refuse it. */
struct hostile {
    unsigned char d[32 + 41 + 5 + 21 + 64];
    size_t len;
};

static void le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void hostile_init(struct hostile *f)
{
    unsigned char *p = f->d;
    memset(f->d, 0, sizeof(f->d));
    memcpy(p, "SLIPWAYH", 8);
    le(p + 8, 1, 4);
    le(p + 12, 1, 4);     /* steps */
    le(p + 16, 1, 4);     /* series */
    le(p + 24, 10000, 8); /* step_ms */
    p += 32;              /* the step */
    le(p, 1700000000000LL, 8);
    le(p + 8, 10000, 4);
    p += 41; /* the series "dev", direct */
    p[0] = 3;
    memcpy(p + 1, "dev", 3);
    p[4] = EDGE_SLOT_DIRECT;
    p += 5;           /* its point */
    p[0] = 3;         /* present, live */
    le(p + 1, 10, 4); /* requests */
    le(p + 5, 1, 4);  /* errors */
    le(p + 9, 100, 4);
    le(p + 13, 200, 4);
    le(p + 17, 300, 4);
    f->len = sizeof(f->d);
}

static int hostile_decode(struct hostile *f, struct sw_err *err)
{
    char sum[SHA256_HEX_LEN + 1];
    struct monitor_history *h = NULL;
    sha256_hex(f->d, f->len - 64, sum);
    memcpy(f->d + f->len - 64, sum, 64);
    int rc = monitor_history_decode((const char *)f->d, f->len, "x", 0, 16, &h, err);
    if (rc == 0)
        assert_non_null(h);
    else
        assert_null(h);
    monitor_history_free(h);
    return rc;
}

static void test_history_file_hostile(void **state)
{
    struct hostile f;
    struct sw_err err = {0};
    hostile_init(&f);
    assert_int_equal(hostile_decode(&f, &err), 0);

    static const struct {
        size_t off;
        uint64_t v;
        int n;
        const char *why;
    } cases[] = {
        {8, 2, 4, "version 2; this slipway reads version 1"},
        {12, MONITOR_HISTORY_STEPS + 1, 4, "its header is out of range"},
        {16, MONITOR_HISTORY_SERIES_MAX + 1, 4, "its header is out of range"},
        {20, 1, 4, "its header is out of range"},
        {24, 0, 8, "its step is out of range"},
        {12, 2, 4, "truncated"},
        {16, 0, 4, "longer than its counts say"},
        {32, 0, 8, "a step's time is not after 1970"},
        {32, (uint64_t)-5, 8, "a step's time is not after 1970"},
        {40, MONITOR_HISTORY_STEP_MAX_MS + 1, 4, "a step lasts more than a day"},
        {44, 0x40, 1, "a step names host figures this version does not know"},
        {45, 5, 4, "a host figure marked missing has a value"},
        {73, 0, 1, "a series name is out of range"},
        {73, 64, 1, "a series name is out of range"},
        {74, 'D', 1, "a series is not named like an environment"},
        {75, 0, 1, "a series is not named like an environment"},
        {77, 3, 1, "a series names no slot"},
        {78, 4, 1, "a point has unknown flags"},
        {78, 2, 1, "a point is live but absent"},
        {78, 0, 1, "an absent point has values"},
        {83, 11, 4, "a point has more errors than requests"},
        {87, 201, 4, "a point's percentiles are out of order or range"},
        {95, HIST_LIMIT + 1, 4, "a point's percentiles are out of order or range"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hostile_init(&f);
        le(f.d + cases[i].off, cases[i].v, cases[i].n);
        assert_int_equal(hostile_decode(&f, &err), SW_EINVAL);
        char want[200];
        snprintf(want, sizeof(want), "x: %s", cases[i].why);
        if (strcmp(err.msg, want) != 0)
            fail_msg("case %zu: got '%s', want '%s'", i, err.msg, want);
    }
    /* ok bit set for a figure: fine; a ratio above 1 is not */
    hostile_init(&f);
    f.d[44] = MONITOR_HOST_CPU;
    le(f.d + 45, MONITOR_PPM_MAX + 1, 4);
    assert_int_equal(hostile_decode(&f, &err), SW_EINVAL);
    assert_string_equal(err.msg, "x: a host ratio is above 1");
    /* no requests, yet percentiles */
    hostile_init(&f);
    le(f.d + 79, 0, 4);
    le(f.d + 83, 0, 4);
    assert_int_equal(hostile_decode(&f, &err), SW_EINVAL);
    assert_string_equal(err.msg, "x: a point without requests has percentiles");

    /* two series of one name and slot; steps out of time order */
    struct monitor_history *h = monitor_history_new(4, 10000);
    struct monitor_history_entry e[2] = {entry("dev", EDGE_SLOT_DIRECT, 1, 1),
                                         entry("web", EDGE_SLOT_DIRECT, 1, 1)};
    monitor_history_append(h, 1000, 10000, NULL, e, 2);
    monitor_history_append(h, 2000, 10000, NULL, e, 2);
    struct buf b = BUF_INIT;
    monitor_history_encode(h, &b);
    char sum[SHA256_HEX_LEN + 1];
    size_t series2 = 32 + 2 * 41 + 5 + 2 * 21;
    memcpy(b.data + series2 + 1, "dev", 3);
    sha256_hex(b.data, b.len - 64, sum);
    memcpy(b.data + b.len - 64, sum, 64);
    struct monitor_history *back = NULL;
    assert_int_equal(monitor_history_decode(b.data, b.len, "y", 0, 4, &back, &err), SW_EINVAL);
    assert_string_equal(err.msg, "y: a series is there twice");
    buf_reset(&b);
    monitor_history_encode(h, &b);
    le((unsigned char *)b.data + 32 + 41, 1000, 8); /* the second step at the first's time */
    sha256_hex(b.data, b.len - 64, sum);
    memcpy(b.data + b.len - 64, sum, 64);
    assert_int_equal(monitor_history_decode(b.data, b.len, "y", 0, 4, &back, &err), SW_EINVAL);
    assert_string_equal(err.msg, "y: its steps are not in time order");
    buf_free(&b);
    monitor_history_free(h);
}

static char tmpdir[64];

static char *tmp_path(const char *name)
{
    return path_join(tmpdir, name);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void test_history_load(void **state)
{
    struct sw_err err = {0};
    struct monitor_history *h = sample_history(), *back = NULL;
    char *file = tmp_path("h.bin");
    assert_int_equal(monitor_history_load(file, 0, 16, &back, &err), SW_ENOTFOUND);
    assert_int_equal(monitor_history_save(h, file, &err), 0);
    assert_int_equal(monitor_history_load(file, 10000, MONITOR_HISTORY_STEPS, &back, &err), 0);
    points_equal(h, back, "web", MONITOR_PICK_LIVE);
    monitor_history_free(back);
    /* truncated on disk */
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(truncate(file, st.st_size - 100), 0);
    assert_int_equal(monitor_history_load(file, 0, 16, &back, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "h.bin: "));
    /* larger than any history: refused before it is read */
    assert_int_equal(truncate(file, (off_t)MONITOR_HISTORY_FILE_MAX + 1), 0);
    assert_int_equal(monitor_history_load(file, 0, 16, &back, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "more than a history can hold"));
    /* not a regular file: a directory, a FIFO (which must not hang the reader) */
    char *dir = tmp_path("adir"), *fifo = tmp_path("afifo");
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(monitor_history_load(dir, 0, 16, &back, &err), SW_EINVAL);
    assert_int_equal(monitor_history_load(fifo, 0, 16, &back, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file"));
    unlink(fifo);
    rmdir(dir);
    unlink(file);
    free(dir);
    free(fifo);
    free(file);
    monitor_history_free(h);
}

/* ---- a sampler driven by hand ------------------------------------------------------- */

/* The counters a fake edge has served: per environment (0 web, blue-green; 1
 * dev, direct) and slot. */
struct fake {
    struct edge_slot_stats st[2][EDGE_SLOTS];
    int served[2];
};

static int fake_index(const char *env)
{
    return !strcmp(env, "web") ? 0 : !strcmp(env, "dev") ? 1 : -1;
}

static int fake_stats(void *arg, const char *env, int slot, struct edge_slot_stats *out,
                      struct sw_err *err)
{
    struct fake *f = arg;
    int i = fake_index(env);
    if (i < 0 || !f->served[i])
        return SW_ENOTFOUND;
    memcpy(out, &f->st[i][slot], sizeof(*out));
    return 0;
}

/* n requests of status to env's slot, each lasting us. */
static void serve_n(struct fake *f, int env, int slot, int n, int status, uint64_t us)
{
    struct edge_slot_stats *s = &f->st[env][slot];
    s->requests[status / 100 - 1] += (uint64_t)n;
    for (int i = 0; i < n; i++)
        hist_record(&s->duration_us, us);
}

struct seen {
    struct buf log;
    int firing, resolved, hooked;
    char env[64];
};

static void seen_log(void *arg, const char *line)
{
    struct seen *s = arg;
    buf_addf(&s->log, "%s\n", line);
}

static void seen_hook(void *arg, const char *env, const struct monitor_transition *t)
{
    struct seen *s = arg;
    s->hooked++;
    snprintf(s->env, sizeof(s->env), "%s", env);
    assert_non_null(t->rule);
    if (t->kind == MONITOR_TRANSITION_FIRING)
        s->firing++;
    if (t->kind == MONITOR_TRANSITION_RESOLVED)
        s->resolved++;
}

static void envs_write(const char *dir, int with_dev)
{
    char *web = path_join(dir, "web.yml"), *dev = path_join(dir, "dev.yml");
    const char *w = "strategy: blue-green\nlisten: 127.0.0.1:1\npreview: 127.0.0.1:2\n";
    const char *d = "strategy: direct\nlisten: 127.0.0.1:3\n";
    write_file(web, w, strlen(w));
    if (with_dev)
        write_file(dev, d, strlen(d));
    else
        unlink(dev);
    free(web);
    free(dev);
}

static const char rules_yml[] = "rules:\n"
                                "  - name: errors\n"
                                "    signal: error_ratio\n"
                                "    op: \">\"\n"
                                "    threshold: 0.05\n"
                                "    min_requests: 10\n"
                                "    severity: critical\n";

static void opts_for(struct monitor_sampler_opts *o, struct fake *f, struct seen *seen,
                     const char *envs, const char *alerts, const char *history)
{
    monitor_sampler_opts_init(o);
    o->slot_stats = fake_stats;
    o->stats_arg = f;
    o->envs_dir = envs;
    o->alerts_file = alerts;
    o->history_file = history;
    o->manual = 1;
    o->log = seen_log;
    o->log_arg = seen;
    o->on_transition = seen_hook;
    o->hook_arg = seen;
}

static void test_sampler_by_hand(void **state)
{
    struct fake *f = calloc(1, sizeof(*f));
    struct seen seen = {BUF_INIT, 0, 0, 0, ""};
    struct sw_err err = {0};
    char *envs = tmp_path("envs"), *alerts = tmp_path("alerts.yml");
    char *history = tmp_path("cache/monitor/history.bin");
    assert_int_equal(mkdir(envs, 0700), 0);
    envs_write(envs, 0);
    write_file(alerts, rules_yml, strlen(rules_yml));
    f->served[0] = f->served[1] = 1;
    f->st[0][EDGE_SLOT_BLUE].live = 1;
    snprintf(f->st[0][EDGE_SLOT_BLUE].release, sizeof(f->st[0][0].release), "r-blue");

    struct monitor_sampler_opts o;
    struct monitor_sampler *s = NULL;
    opts_for(&o, f, &seen, envs, alerts, history);
    o.interval_ms = 1000;
    assert_int_equal(monitor_sampler_start(&o, &s, &err), 0);
    struct stat st;
    assert_int_equal(stat(tmpdir, &st), 0);

    /* 11 intervals: 100 fast requests a second to the live blue slot, none failing */
    int64_t mono = 5000, wall = 1700000000000LL;
    uint64_t total_blue = 0;
    for (int t = 0; t < 11; t++, mono += 1000, wall += 1000) {
        if (t) {
            serve_n(f, 0, EDGE_SLOT_BLUE, 100, 200, 500);
            total_blue += 100;
        }
        monitor_sampler_tick(s, mono, wall);
    }
    struct monitor_sample sm;
    char rel[RELEASE_ID_MAX + 1];
    assert_int_equal(monitor_sampler_signals(s, "web", &sm, rel, &err), 0);
    assert_int_equal(sm.requests, 1000);
    assert_true(fabs(sm.value[MONITOR_SIGNAL_REQUEST_RATE] - 100) < 1e-9);
    assert_true(sm.value[MONITOR_SIGNAL_ERROR_RATIO] == 0);
    assert_true(fabs(sm.value[MONITOR_SIGNAL_LATENCY_P99] - 0.0005) < 0.0005 / 64);
    assert_string_equal(rel, "r-blue");
    assert_string_equal(sm.release, "r-blue");
    assert_int_equal(monitor_sampler_signals(s, "nope", &sm, rel, &err), SW_ENOTFOUND);
    /* a step of history: 10 intervals, 1000 requests */
    struct monitor_point *p;
    assert_int_equal(monitor_sampler_points(s, "web", MONITOR_PICK_LIVE, 0, &p), 1);
    assert_int_equal(p[0].s.requests, 1000);
    assert_int_equal(p[0].dur_ms, 10000);
    assert_int_equal(p[0].slot, EDGE_SLOT_BLUE);
    assert_true(p[0].host.ok & MONITOR_PROC_RSS); /* this process's, from /proc */
    free(p);

    /* a switch to green, whose release fails a fifth of its requests: the live
     * window is green's own from the first interval, and the rule fires at once */
    f->st[0][EDGE_SLOT_BLUE].live = 0;
    f->st[0][EDGE_SLOT_GREEN].live = 1;
    snprintf(f->st[0][EDGE_SLOT_GREEN].release, sizeof(f->st[0][0].release), "r-green");
    serve_n(f, 0, EDGE_SLOT_GREEN, 40, 200, 800);
    serve_n(f, 0, EDGE_SLOT_GREEN, 10, 503, 800);
    monitor_sampler_tick(s, mono, wall);
    mono += 1000, wall += 1000;
    assert_int_equal(seen.firing, 1);
    assert_string_equal(seen.env, "web");
    assert_non_null(strstr(seen.log.data, "monitor: errors on web: firing (error_ratio 0.2 > "
                                          "0.05 over 50 requests in the last 1m; release "
                                          "r-green)"));
    struct monitor_transitions tr = MONITOR_TRANSITIONS_INIT;
    monitor_sampler_transitions(s, &tr);
    assert_true(tr.n >= 1);
    assert_int_equal(tr.v[tr.n - 1].kind, MONITOR_TRANSITION_FIRING);
    assert_null(tr.v[tr.n - 1].rule);
    assert_string_equal(tr.v[tr.n - 1].release, "r-green");
    monitor_transitions_reset(&tr);

    /* 70 good intervals later the bad ones have left the window: resolved */
    for (int t = 0; t < 70; t++, mono += 1000, wall += 1000) {
        serve_n(f, 0, EDGE_SLOT_GREEN, 20, 200, 800);
        monitor_sampler_tick(s, mono, wall);
    }
    assert_int_equal(seen.resolved, 1);
    assert_non_null(strstr(seen.log.data, "monitor: errors on web: resolved"));

    /* the steps add up exactly to what was served, blue and green alike */
    uint64_t sum = 0;
    size_t n = monitor_sampler_points(s, "web", MONITOR_PICK_LIVE, 0, &p);
    assert_true(n >= 7);
    for (size_t i = 0; i < n; i++)
        sum += p[i].s.requests;
    free(p);
    n = monitor_sampler_points(s, "web", MONITOR_PICK_IDLE, 0, &p);
    for (size_t i = 0; i < n; i++)
        sum += p[i].s.requests;
    free(p);
    /* up to the last step, at reading 81 (steps end at readings 11, 21, ..., 81):
     * green's 20 a reading from reading 13 to 81, not reading 82's */
    assert_int_equal(sum, total_blue + 50 + 69 * 20);

    /* reload: dev appears; and with a changed rules file, the states start over */
    envs_write(envs, 1);
    write_file(alerts, "rules: []\n", 10);
    monitor_sampler_reload(s);
    serve_n(f, 1, EDGE_SLOT_DIRECT, 5, 200, 100);
    monitor_sampler_tick(s, mono, wall);
    mono += 1000, wall += 1000;
    assert_non_null(strstr(seen.log.data, "alert rules reloaded"));
    assert_int_equal(monitor_sampler_signals(s, "dev", &sm, rel, &err), 0);
    assert_null(sm.release); /* nothing deployed */
    /* dev is new to this process, so new to the edge: the requests it served
     * before its first reading are in its window */
    assert_int_equal(sm.requests, 5);
    /* a bad rules file keeps the running rules and says so */
    write_file(alerts, "rules: [", 8);
    monitor_sampler_reload(s);
    monitor_sampler_tick(s, mono, wall);
    mono += 1000, wall += 1000;
    assert_non_null(strstr(seen.log.data, "alert rules not reloaded, keeping the running ones: "));
    /* dev removed: not sampled any more, its history stays */
    for (int t = 0; t < 10; t++, mono += 1000, wall += 1000)
        monitor_sampler_tick(s, mono, wall);
    envs_write(envs, 0);
    monitor_sampler_reload(s);
    monitor_sampler_tick(s, mono, wall);
    mono += 1000, wall += 1000;
    assert_int_equal(monitor_sampler_signals(s, "dev", &sm, rel, &err), SW_ENOTFOUND);
    n = monitor_sampler_points(s, "dev", MONITOR_PICK_LIVE, 0, &p);
    assert_true(n >= 1);
    free(p);
    n = monitor_sampler_points(s, "web", MONITOR_PICK_LIVE, 0, &p);
    free(p);
    monitor_sampler_stop(s); /* saves */

    /* a restart reads the file back */
    write_file(alerts, rules_yml, strlen(rules_yml));
    assert_int_equal(stat(history, &st), 0);
    buf_reset(&seen.log);
    assert_int_equal(monitor_sampler_start(&o, &s, &err), 0);
    assert_non_null(strstr(seen.log.data, "history: "));
    size_t n2 = monitor_sampler_points(s, "web", MONITOR_PICK_LIVE, 0, &p);
    assert_int_equal(n2, n);
    free(p);
    monitor_sampler_stop(s);

    /* a temporary file left by a serve killed while it saved is removed at start */
    char *tmp = xasprintf("%s.tmp-4242-AbCdEf", history);
    write_file(tmp, "half", 4);
    assert_int_equal(monitor_sampler_start(&o, &s, &err), 0);
    assert_int_equal(stat(tmp, &st), -1);
    assert_non_null(strstr(seen.log.data, "tmp-4242-AbCdEf, left by a serve stopped while it"));
    monitor_sampler_stop(s);
    free(tmp);

    /* a corrupt file is said, kept aside and replaced by a valid one at once */
    write_file(history, "SLIPWAYHgarbage", 15);
    buf_reset(&seen.log);
    assert_int_equal(monitor_sampler_start(&o, &s, &err), 0);
    assert_non_null(strstr(seen.log.data, "history unusable, kept as "));
    assert_non_null(strstr(seen.log.data, "history.bin.corrupt and replaced by a new one: "));
    assert_int_equal(monitor_sampler_points(s, "web", MONITOR_PICK_LIVE, 0, &p), 0);
    struct monitor_history *h = NULL;
    assert_int_equal(monitor_history_load(history, 10000, 16, &h, &err), 0);
    monitor_history_free(h);
    char *aside = xasprintf("%s.corrupt", history);
    assert_int_equal(stat(aside, &st), 0);
    assert_int_equal(st.st_size, 15);
    monitor_sampler_stop(s);

    /* a bad alerts file stops the start, naming its line */
    write_file(alerts, "rules:\n  - name: x\n    nope: 1\n", 31);
    assert_int_equal(monitor_sampler_start(&o, &s, &err), SW_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err.msg, "alerts.yml:3:"));

    unlink(aside);
    unlink(history);
    unlink(alerts);
    envs_write(envs, 0);
    char *web = path_join(envs, "web.yml");
    unlink(web);
    rmdir(envs);
    free(web);
    free(aside);
    free(envs);
    free(alerts);
    free(history);
    buf_free(&seen.log);
    free(f);
}

/* The thread itself: starts, samples at its interval, stops at once. */
static void test_sampler_thread(void **state)
{
    struct fake *f = calloc(1, sizeof(*f));
    struct seen seen = {BUF_INIT, 0, 0, 0, ""};
    struct sw_err err = {0};
    char *envs = tmp_path("envs2");
    assert_int_equal(mkdir(envs, 0700), 0);
    envs_write(envs, 1);
    f->served[1] = 1;
    struct monitor_sampler_opts o;
    struct monitor_sampler *s = NULL;
    opts_for(&o, f, &seen, envs, NULL, NULL);
    o.manual = 0;
    o.interval_ms = 10;
    assert_int_equal(monitor_sampler_start(&o, &s, &err), 0);
    struct monitor_point *p = NULL;
    int64_t end = time_mono_ms() + 10000;
    size_t n = 0;
    while ((n = monitor_sampler_points(s, "dev", MONITOR_PICK_LIVE, 0, &p)) < 3 &&
           time_mono_ms() < end) {
        free(p);
        usleep(5000);
    }
    free(p);
    assert_true(n >= 3);
    int64_t t0 = time_mono_ms();
    monitor_sampler_stop(s);
    assert_true(time_mono_ms() - t0 < 1000);
    char *web = path_join(envs, "web.yml"), *dev = path_join(envs, "dev.yml");
    unlink(web);
    unlink(dev);
    rmdir(envs);
    free(web);
    free(dev);
    free(envs);
    buf_free(&seen.log);
    free(f);
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/sw-sampler-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    return fs_remove_tree(tmpdir, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_ring),
        cmocka_unit_test(test_window_delta),
        cmocka_unit_test(test_host_delta),
        cmocka_unit_test(test_history_ring),
        cmocka_unit_test(test_history_series_places),
        cmocka_unit_test(test_history_file_round_trip),
        cmocka_unit_test(test_history_file_truncated_and_damaged),
        cmocka_unit_test(test_history_file_hostile),
        cmocka_unit_test(test_history_load),
        cmocka_unit_test(test_sampler_by_hand),
        cmocka_unit_test(test_sampler_thread),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
