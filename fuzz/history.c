/*
 * libFuzzer target for the monitor's history file (src/monitor/history.c),
 * which a later `slipway serve` and `slipway metrics` read back from the
 * project's cache: every input is such a file. A checksum guards it, which
 * random bytes never match, so each input is decoded twice: as it is, and
 * with its last 64 bytes replaced by the SHA-256 of the rest, so the
 * structural checks are what refuse or accept it. Beyond the sanitizers: a
 * refusal is SW_EINVAL naming the file, with no history made; an accepted
 * history keeps the ranges the writer keeps (times strictly increasing,
 * errors within requests, ordered percentiles within the histogram's range,
 * ratios within 1, valid names and slots, at most one point per step and
 * slot), encoding it gives a file that decodes to the same points and encodes
 * to the same bytes, the same file read into a smaller ring keeps its newest
 * steps, and a step can be appended to what was read.
 */
#include "fuzz.h"
#include "monitor/monitor.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NAME "fuzz.bin"

static void check_points(const struct monitor_history *h)
{
    const char *env;
    int slot;
    for (size_t i = 0; monitor_history_series(h, i, &env, &slot) == 0; i++) {
        CHECK(i < MONITOR_HISTORY_SERIES_MAX);
        CHECK(edge_slot_name(slot) != NULL);
        CHECK(strlen(env) >= 1 && strlen(env) <= 63);
        CHECK(monitor_history_has(h, env));
        for (int pick = MONITOR_PICK_LIVE; pick <= MONITOR_PICK_IDLE; pick++) {
            struct monitor_point *p = NULL;
            size_t n = monitor_history_points(h, env, pick, 0, &p);
            CHECK(n <= monitor_history_count(h));
            for (size_t k = 0; k < n; k++) {
                const struct monitor_point *x = &p[k];
                CHECK(k == 0 || x->at_ms > p[k - 1].at_ms);
                CHECK(x->at_ms >= 1 && x->at_ms <= monitor_history_newest_ms(h));
                CHECK(x->dur_ms >= 0 && x->dur_ms <= MONITOR_HISTORY_STEP_MAX_MS);
                CHECK(x->live == (pick == MONITOR_PICK_LIVE));
                CHECK(edge_slot_name(x->slot) != NULL);
                CHECK(x->s.errors <= x->s.requests);
                CHECK(x->s.p50_us <= x->s.p95_us && x->s.p95_us <= x->s.p99_us);
                CHECK(x->s.p99_us <= HIST_LIMIT);
                CHECK(x->s.requests || !x->s.p99_us);
                CHECK(!(x->host.ok & ~(unsigned)MONITOR_HOST_ALL));
                CHECK(x->host.host_cpu_ppm <= MONITOR_PPM_MAX);
                CHECK(x->host.host_mem_ppm <= MONITOR_PPM_MAX);
                CHECK(x->host.proc_cpu_milli <= MONITOR_PROC_CPU_MAX);
            }
            free(p);
        }
    }
}

static void same_points(const struct monitor_history *a, const struct monitor_history *b)
{
    const char *env;
    int slot;
    CHECK(monitor_history_count(a) == monitor_history_count(b));
    for (size_t i = 0; monitor_history_series(a, i, &env, &slot) == 0; i++)
        for (int pick = MONITOR_PICK_LIVE; pick <= MONITOR_PICK_IDLE; pick++) {
            struct monitor_point *p = NULL, *q = NULL;
            size_t n = monitor_history_points(a, env, pick, 0, &p);
            size_t m = monitor_history_points(b, env, pick, 0, &q);
            CHECK(n == m);
            CHECK(n == 0 || memcmp(p, q, n * sizeof(*p)) == 0);
            free(p);
            free(q);
        }
}

static void one(const char *data, size_t len)
{
    struct monitor_history *h = (struct monitor_history *)1;
    struct sw_err err = {0};
    int rc = monitor_history_decode(data, len, NAME, 0, MONITOR_HISTORY_STEPS, &h, &err);
    if (rc) {
        CHECK(rc == SW_EINVAL && err.code == SW_EINVAL && h == NULL);
        CHECK(!strncmp(err.msg, NAME ": ", strlen(NAME) + 2));
        return;
    }
    CHECK(h != NULL);
    CHECK(monitor_history_count(h) <= MONITOR_HISTORY_STEPS);
    check_points(h);

    /* encode, decode, encode: the same points, then the same bytes */
    struct buf b1 = BUF_INIT, b2 = BUF_INIT;
    struct monitor_history *back = NULL;
    monitor_history_encode(h, &b1);
    CHECK(b1.len <= MONITOR_HISTORY_FILE_MAX && b1.len <= len);
    CHECK(monitor_history_decode(b1.data, b1.len, NAME, monitor_history_step_ms(h),
                                 MONITOR_HISTORY_STEPS, &back, &err) == 0);
    same_points(h, back);
    monitor_history_encode(back, &b2);
    CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
    monitor_history_free(back);

    /* a smaller ring keeps the newest steps */
    struct monitor_history *small = NULL;
    CHECK(monitor_history_decode(data, len, NAME, 0, 3, &small, &err) == 0);
    CHECK(monitor_history_count(small) ==
          (monitor_history_count(h) < 3 ? monitor_history_count(h) : 3));
    CHECK(monitor_history_newest_ms(small) == monitor_history_newest_ms(h));
    check_points(small);
    monitor_history_free(small);

    /* and the history read goes on: a step, even one from a clock gone back */
    struct monitor_history_entry e = {"dev", EDGE_SLOT_DIRECT, 1, {10, 1, 5, 6, 7}};
    int64_t newest = monitor_history_newest_ms(h);
    monitor_history_append(h, 1, 10000, NULL, &e, 1);
    CHECK(monitor_history_newest_ms(h) > newest);
    check_points(h);
    buf_free(&b1);
    buf_free(&b2);
    monitor_history_free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one((const char *)data, size);
    if (size < SHA256_HEX_LEN)
        return 0;
    char *fixed = malloc(size);
    CHECK(fixed != NULL);
    memcpy(fixed, data, size);
    char sum[SHA256_HEX_LEN + 1];
    sha256_hex(fixed, size - SHA256_HEX_LEN, sum);
    memcpy(fixed + size - SHA256_HEX_LEN, sum, SHA256_HEX_LEN);
    one(fixed, size);
    free(fixed);
    return 0;
}
