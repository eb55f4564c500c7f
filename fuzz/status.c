/*
 * libFuzzer target for the monitor's status document (src/monitor/status.c),
 * which `slipway alerts` and `slipway top` read from the project's cache:
 * every input is such a file. Beyond the sanitizers: a refusal is SW_EINVAL
 * naming the document, with nothing kept; an accepted status keeps the ranges
 * the writer keeps (valid and unique environment names, each slot once,
 * errors within requests, ordered percentiles, ratios within 1, unique rule
 * names, a firing alert with its times), and encoding it gives a document
 * that parses to one that encodes to the same bytes.
 */
#include "fuzz.h"
#include "monitor/monitor.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define NAME "status.json"

static void check(const struct monitor_status *s)
{
    CHECK(s->nenvs <= MONITOR_STATUS_ENVS_MAX);
    CHECK(s->interval_ms >= 1 && s->pid >= 1);
    CHECK(strlen(s->host) >= 1 && strlen(s->host) <= MONITOR_STATUS_HOST_MAX);
    CHECK(isnan(s->host_cpu) || (s->host_cpu >= 0 && s->host_cpu <= 1));
    for (size_t i = 0; i < s->nenvs; i++) {
        const struct monitor_status_env *e = &s->envs[i];
        CHECK(strlen(e->name) >= 1 && strlen(e->name) <= 63);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(s->envs[j].name, e->name) != 0);
        CHECK(e->nslots <= EDGE_SLOTS);
        for (size_t k = 0; k < e->nslots; k++) {
            const struct monitor_status_slot *x = &e->slots[k];
            CHECK(edge_slot_name(x->slot) != NULL);
            for (size_t j = 0; j < k; j++)
                CHECK(e->slots[j].slot != x->slot);
            CHECK(x->errors <= x->requests);
            CHECK(isnan(x->error_ratio) || (x->error_ratio >= 0 && x->error_ratio <= 1));
            CHECK(isnan(x->p99_s) || (x->p50_s <= x->p95_s && x->p95_s <= x->p99_s));
            CHECK(x->nrecent <= MONITOR_STATUS_RECENT);
            for (size_t j = 0; j < x->nrecent; j++)
                CHECK(x->recent_errors[j] <= x->recent_requests[j]);
        }
        CHECK(e->nalerts <= MONITOR_RULES_MAX);
        for (size_t k = 0; k < e->nalerts; k++) {
            const struct monitor_status_alert *a = &e->alerts[k];
            CHECK(strlen(a->rule) >= 1);
            for (size_t j = 0; j < k; j++)
                CHECK(strcmp(e->alerts[j].rule, a->rule) != 0);
            CHECK(a->signal < MONITOR_NSIGNALS);
            CHECK(a->state != MONITOR_FIRING || a->fired_ms);
            CHECK(!a->summary || strlen(a->summary) <= MONITOR_STATUS_SUMMARY_MAX);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct monitor_status s, back;
    struct sw_err err = {0};
    int rc = monitor_status_parse((const char *)data, size, NAME, &s, &err);
    if (rc) {
        CHECK(rc == SW_EINVAL && s.nenvs == 0 && s.envs == NULL);
        CHECK(!strncmp(err.msg, NAME ": ", strlen(NAME) + 2));
        return 0;
    }
    check(&s);
    struct buf b1 = BUF_INIT, b2 = BUF_INIT;
    monitor_status_encode(&s, &b1);
    CHECK(b1.len <= MONITOR_STATUS_FILE_MAX);
    CHECK(monitor_status_parse(b1.data, b1.len, NAME, &back, &err) == 0);
    check(&back);
    monitor_status_encode(&back, &b2);
    CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
    monitor_status_clear(&back);
    monitor_status_clear(&s);
    buf_free(&b1);
    buf_free(&b2);
    return 0;
}
