/*
 * Request metrics. Each worker counts into its own cache-line-aligned block
 * with relaxed atomics (plain adds on x86, no contention); a scrape sums the
 * blocks. Nothing on the request path is shared between workers.
 */
#include "edge/internal.h"

#include <stdio.h>
#include <string.h>

const double edge_lat_bounds[LAT_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                             0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};

#define ADD(field, v) atomic_fetch_add_explicit(&(field), (v), memory_order_relaxed)
#define GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

void metrics_observe(struct edge *e, int worker, int site, int slot, int status, uint64_t bytes,
                     int64_t us)
{
    if (site < 0 || site >= EDGE_MAX_SITES)
        return;
    struct site_stats *s = &e->stats[worker].site[site];
    int cls = status / 100 - 1;
    if (cls < 0 || cls > 4)
        cls = 4;
    ADD(s->requests[slot < 0 || slot > 2 ? 2 : slot][cls], 1);
    ADD(s->bytes, bytes);
    double sec = (double)us / 1e6;
    int b = 0;
    while (b < LAT_BUCKETS && sec > edge_lat_bounds[b])
        b++;
    ADD(s->lat_bucket[b], 1);
    ADD(s->lat_count, 1);
    ADD(s->lat_sum_us, (unsigned long)us);
}

static const char *const slot_label[3] = {"blue", "green", "direct"};

static void site_sum(struct edge *e, int site, struct site_stats *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (int w = 0; w < e->nworkers; w++) {
        struct site_stats *s = &e->stats[w].site[site];
        for (int a = 0; a < 3; a++)
            for (int c = 0; c < 5; c++)
                ADD(sum->requests[a][c], GET(s->requests[a][c]));
        ADD(sum->bytes, GET(s->bytes));
        for (int b = 0; b <= LAT_BUCKETS; b++)
            ADD(sum->lat_bucket[b], GET(s->lat_bucket[b]));
        ADD(sum->lat_count, GET(s->lat_count));
        ADD(sum->lat_sum_us, GET(s->lat_sum_us));
    }
}

void metrics_render(struct edge *e, struct buf *b)
{
    struct site_stats sums[EDGE_MAX_SITES];
    int used[EDGE_MAX_SITES];
    /* One zero 2xx row per environment even before traffic, so rate() and
     * alert rules have a series to work on: "direct", or "blue" for blue-green. */
    int baseline[EDGE_MAX_SITES];
    pthread_mutex_lock(&e->err_lock);
    for (int i = 0; i < EDGE_MAX_SITES; i++) {
        baseline[i] = atomic_load(&e->sites[i].strategy) == STRATEGY_BLUE_GREEN ? 0 : 2;
        used[i] = e->sites[i].name[0] != '\0';
        if (used[i])
            site_sum(e, i, &sums[i]);
    }
    pthread_mutex_unlock(&e->err_lock);
    buf_adds(b, "# HELP slipway_requests_total Requests answered, by environment, slot and "
                "status class.\n# TYPE slipway_requests_total counter\n");
    for (int i = 0; i < EDGE_MAX_SITES; i++)
        for (int a = 0; used[i] && a < 3; a++)
            for (int c = 0; c < 5; c++)
                if (GET(sums[i].requests[a][c]) || (c == 1 && a == baseline[i]))
                    buf_addf(b,
                             "slipway_requests_total{env=\"%s\",slot=\"%s\",class=\"%dxx\"} %lu\n",
                             e->sites[i].name, slot_label[a], c + 1, GET(sums[i].requests[a][c]));
    buf_adds(b, "# HELP slipway_request_duration_seconds Time from a complete request head to "
                "the last byte handed to the kernel.\n"
                "# TYPE slipway_request_duration_seconds histogram\n");
    for (int i = 0; i < EDGE_MAX_SITES; i++) {
        if (!used[i])
            continue;
        unsigned long cum = 0;
        for (int k = 0; k <= LAT_BUCKETS; k++) {
            cum += GET(sums[i].lat_bucket[k]);
            if (k < LAT_BUCKETS)
                buf_addf(b, "slipway_request_duration_seconds_bucket{env=\"%s\",le=\"%g\"} %lu\n",
                         e->sites[i].name, edge_lat_bounds[k], cum);
            else
                buf_addf(b, "slipway_request_duration_seconds_bucket{env=\"%s\",le=\"+Inf\"} %lu\n",
                         e->sites[i].name, cum);
        }
        buf_addf(b, "slipway_request_duration_seconds_sum{env=\"%s\"} %.6f\n", e->sites[i].name,
                 (double)GET(sums[i].lat_sum_us) / 1e6);
        buf_addf(b, "slipway_request_duration_seconds_count{env=\"%s\"} %lu\n", e->sites[i].name,
                 GET(sums[i].lat_count));
    }
    buf_adds(b, "# HELP slipway_response_bytes_total Response bytes sent (headers and bodies).\n"
                "# TYPE slipway_response_bytes_total counter\n");
    for (int i = 0; i < EDGE_MAX_SITES; i++)
        if (used[i])
            buf_addf(b, "slipway_response_bytes_total{env=\"%s\"} %lu\n", e->sites[i].name,
                     GET(sums[i].bytes));
    buf_adds(b, "# HELP slipway_switches_total Live releases made active by this process.\n"
                "# TYPE slipway_switches_total counter\n");
    for (int i = 0; i < EDGE_MAX_SITES; i++)
        if (used[i])
            buf_addf(b, "slipway_switches_total{env=\"%s\"} %lu\n", e->sites[i].name,
                     GET(e->switches[i]));
    buf_adds(b, "# HELP slipway_release_load_failures_total Failed attempts to load an "
                "environment's release (it keeps serving the one it has).\n"
                "# TYPE slipway_release_load_failures_total counter\n");
    for (int i = 0; i < EDGE_MAX_SITES; i++)
        if (used[i])
            buf_addf(b, "slipway_release_load_failures_total{env=\"%s\"} %lu\n", e->sites[i].name,
                     GET(e->load_failures[i]));
    buf_adds(b, "# HELP slipway_release_load_ok Whether the newest attempt to load each "
                "environment's release succeeded (0 while it fails).\n"
                "# TYPE slipway_release_load_ok gauge\n");
    for (int i = 0; i < EDGE_MAX_SITES; i++)
        if (used[i] && atomic_load(&e->sites[i].active))
            buf_addf(b, "slipway_release_load_ok{env=\"%s\"} %d\n", e->sites[i].name,
                     atomic_load(&e->sites[i].load_failure) == LOAD_OK);
    buf_adds(b, "# HELP slipway_release_info The release each listener serves.\n"
                "# TYPE slipway_release_info gauge\n");
    for (int i = 0; i < EDGE_MAX_SITES; i++) {
        if (!used[i] || !atomic_load(&e->sites[i].active))
            continue;
        struct table *lt = atomic_load(&e->sites[i].live);
        struct table *pt = atomic_load(&e->sites[i].preview);
        if (lt)
            buf_addf(b, "slipway_release_info{env=\"%s\",listener=\"live\",release=\"%s\"} 1\n",
                     e->sites[i].name, lt->release_id);
        if (pt)
            buf_addf(b, "slipway_release_info{env=\"%s\",listener=\"preview\",release=\"%s\"} 1\n",
                     e->sites[i].name, pt->release_id);
    }
    struct http_stats hs;
    http_server_stats(e->http, &hs);
    buf_addf(b,
             "# HELP slipway_open_connections Client connections open now.\n"
             "# TYPE slipway_open_connections gauge\nslipway_open_connections %ld\n"
             "# HELP slipway_connections_accepted_total Connections accepted.\n"
             "# TYPE slipway_connections_accepted_total counter\n"
             "slipway_connections_accepted_total %lu\n"
             "# HELP slipway_connections_rejected_total Connections refused with 503 over the "
             "connection limit.\n"
             "# TYPE slipway_connections_rejected_total counter\n"
             "slipway_connections_rejected_total %lu\n"
             "# HELP slipway_timeouts_total Connections closed by the header or idle timeout.\n"
             "# TYPE slipway_timeouts_total counter\nslipway_timeouts_total %lu\n"
             "# HELP slipway_start_time_seconds When this process started.\n"
             "# TYPE slipway_start_time_seconds gauge\nslipway_start_time_seconds %.3f\n",
             hs.open, hs.accepted, hs.rejected, hs.timeouts, (double)e->started_ms / 1000);
    buf_addf(b,
             "# HELP slipway_cache_bytes Bodies held in the local cache of large bodies.\n"
             "# TYPE slipway_cache_bytes gauge\nslipway_cache_bytes %llu\n"
             "# HELP slipway_cache_max_bytes The bound of the local cache (--cache-max).\n"
             "# TYPE slipway_cache_max_bytes gauge\nslipway_cache_max_bytes %llu\n",
             (unsigned long long)blob_cache_bytes(e->cache),
             (unsigned long long)blob_cache_max(e->cache));
    /* What the caller registered (slipway serve: the process and host figures). */
    pthread_mutex_lock(&e->extra_lock);
    if (e->extra_fn)
        e->extra_fn(b, e->extra_arg);
    pthread_mutex_unlock(&e->extra_lock);
}
