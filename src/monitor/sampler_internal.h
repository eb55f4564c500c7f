/*
 * The sampler's window arithmetic (sampler.c), private to the monitor and
 * its unit tests: rings of cumulative readings, and the signals of a window
 * as the difference of two of them.
 */
#ifndef SW_MONITOR_SAMPLER_INTERNAL_H
#define SW_MONITOR_SAMPLER_INTERNAL_H

#include "monitor/monitor.h"

/* One reading of a slot's counters, all since the edge started. */
struct snap {
    int64_t mono_ms;
    uint64_t requests, errors;
    struct hist h; /* durations, µs */
};

/* The last cap readings of one slot, oldest dropped first. */
struct window {
    size_t cap, n, head; /* reading i (0 the oldest) at (head + i) % cap */
    struct snap *v;
};
/* cap readings (at least 2); free with window_free. */
void window_init(struct window *w, size_t cap);
void window_free(struct window *w);
/* The place of a new reading (the oldest one's when full), for the caller to fill. */
struct snap *window_push(struct window *w);
/* back readings before the newest (0: the newest); the oldest kept when
 * there are not so many. NULL when empty. */
const struct snap *window_back(const struct window *w, size_t back);

/* What happened between two readings. */
struct window_delta {
    int64_t ms; /* between them; 0 with a single reading */
    uint64_t requests, errors;
    uint64_t durations;              /* in the histogram: requests, read a moment apart */
    uint64_t p50_us, p95_us, p99_us; /* of the window's durations; 0 without any */
};
/* The newest reading less the one back readings before it (or the oldest).
 * scratch holds the window's histogram after the call. Counters that went
 * back (they cannot, but a reading is not one instant) count 0. */
void window_delta(const struct window *w, size_t back, struct hist *scratch,
                  struct window_delta *out);

/* One reading of /proc, kept small. */
struct host_snap {
    int64_t mono_ms;
    unsigned ok; /* MONITOR_SRC_* read */
    struct monitor_cpu cpu;
    uint64_t disk_bytes; /* read + written, every device counted */
    uint64_t proc_ticks; /* utime + stime */
    long clk_tck;
    uint64_t rss_bytes;
    uint64_t mem_total, mem_available;
    int has_available;
};
void host_snap_from(struct host_snap *s, const struct monitor_proc_reading *r, int64_t mono_ms);

struct host_window {
    size_t cap, n, head;
    struct host_snap *v;
};
void host_window_init(struct host_window *w, size_t cap);
void host_window_free(struct host_window *w);
struct host_snap *host_window_push(struct host_window *w);

/* The host over a window: NaN for what could not be measured. */
struct host_delta {
    int64_t ms;
    double cpu;      /* busy share of all cores, 0..1 */
    double memory;   /* in use at the newest reading, 0..1 */
    double disk_bps; /* bytes read + written per second */
    double proc_cpu; /* serve's CPU seconds per second */
    double rss;      /* serve's resident bytes at the newest reading */
};
void host_window_delta(const struct host_window *w, size_t back, struct host_delta *out);

/* The alert sample of a window (value[] in each signal's unit, NaN when not
 * measured; release borrowed). */
void window_sample(const struct window_delta *d, const struct host_delta *h, const char *release,
                   struct monitor_sample *out);
/* The history's integers of a window. */
void window_figures(const struct window_delta *d, struct monitor_slot_figures *out);
void host_figures(const struct host_delta *h, struct monitor_host_figures *out);

#endif
