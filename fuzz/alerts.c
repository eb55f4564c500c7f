/*
 * libFuzzer target for the alert rules parser and states (src/monitor/rules.c,
 * alert.c): every input is an alerts.yml someone wrote. Beyond the
 * sanitizers it checks what evaluation and notification rely on: a refusal
 * is SW_EINVAL with "fuzz.yml:LINE:COL: " (every check of the schema points
 * at a node) and no rule set; an accepted set holds at most
 * MONITOR_RULES_MAX rules with unique valid names, at least one environment
 * pattern each, finite thresholds within their signal's range, bounded
 * durations, and summaries that render to one printable line even with
 * hostile values. The states are then driven with values taken from the
 * input's last bytes, checking that a firing alert has a startsAt, a resolved
 * one an endsAt after it, and that no evaluation reports more than one
 * transition per rule.
 */
#include "fuzz.h"
#include "monitor/monitor.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define NAME "fuzz.yml"

static void check_rule(const struct monitor_rules *set, size_t i)
{
    const struct monitor_rule *r = &set->v[i];
    size_t n = strlen(r->name);
    CHECK(n >= 1 && n <= 63 && strspn(r->name, "abcdefghijklmnopqrstuvwxyz0123456789-") == n);
    for (size_t j = 0; j < i; j++)
        CHECK(strcmp(set->v[j].name, r->name) != 0);
    CHECK(r->nenvironments >= 1 && r->nenvironments <= MONITOR_RULE_ENVS_MAX);
    for (size_t j = 0; j < r->nenvironments; j++)
        CHECK(r->environments[j][0] != '\0');
    CHECK(r->signal >= 0 && r->signal <= MONITOR_SIGNAL_DEPLOYMENT);
    CHECK(r->severity >= MONITOR_CRITICAL && r->severity <= MONITOR_INFO);
    CHECK(isfinite(r->threshold) && r->threshold >= 0);
    if (r->signal == MONITOR_SIGNAL_ERROR_RATIO || r->signal == MONITOR_SIGNAL_CPU ||
        r->signal == MONITOR_SIGNAL_MEMORY)
        CHECK(r->threshold <= 1);
    CHECK(r->for_ms >= 0 && r->for_ms <= MONITOR_DURATION_MAX_MS);
    CHECK(r->keep_firing_for_ms >= 0 && r->keep_firing_for_ms <= MONITOR_DURATION_MAX_MS);
    CHECK(r->min_requests >= 0);
    CHECK(r->line >= 1 && r->col >= 1);
    if (r->signal == MONITOR_SIGNAL_DEPLOYMENT)
        CHECK(r->for_ms == 0 && r->min_requests == 0);

    /* Hostile values cannot break the summary out of one printable line. */
    struct buf b = BUF_INIT;
    monitor_summary_render(r->summary, "1\n2", "e\x1b[2J", "r\r\n\xff", &b);
    CHECK(b.data && text_valid(b.data, (size_t)-1, 0));
    buf_free(&b);
}

static void drive(const struct monitor_rules *set, const uint8_t *data, size_t size)
{
    struct monitor_alerts *a = monitor_alerts_new(set);
    struct monitor_transitions t = MONITOR_TRANSITIONS_INIT;
    struct sw_err err = {0};
    int64_t now = 1700000000000LL;
    const char *envs[] = {"staging", "prod-eu", "dev"};
    size_t steps = size < 32 ? size : 32;

    for (size_t i = 0; i < steps; i++) {
        uint8_t x = data[size - 1 - i];
        struct monitor_sample s;
        for (int k = 0; k < MONITOR_NSIGNALS; k++)
            s.value[k] = (x & 0x80) ? NAN : (double)(x & 0x0f) / 8.0;
        s.requests = (uint64_t)(x & 0x70) * 2;
        s.release = (x & 1) ? "r-1" : NULL;
        now += (int64_t)(x % 7) * 15000;
        size_t before = t.n;
        CHECK(monitor_alerts_eval(a, envs[x % 3], &s, now, &t, &err) == 0);
        CHECK(t.n - before <= set->n);
        for (size_t j = before; j < t.n; j++) {
            const struct monitor_transition *y = &t.v[j];
            CHECK(y->rule->signal != MONITOR_SIGNAL_DEPLOYMENT);
            CHECK(strlen(y->fingerprint) == 16);
            CHECK(y->nlabels == 3);
            if (y->kind == MONITOR_TRANSITION_FIRING)
                CHECK(y->starts_ms == now && y->ends_ms == 0);
            if (y->kind == MONITOR_TRANSITION_RESOLVED)
                CHECK(y->starts_ms > 0 && y->ends_ms >= y->starts_ms);
            if (y->summary)
                CHECK(text_valid(y->summary, (size_t)-1, 0));
        }
        for (size_t j = 0; j < monitor_alerts_count(a); j++) {
            const struct monitor_alert *e = monitor_alerts_get(a, j);
            if (e->state == MONITOR_FIRING)
                CHECK(e->fired_ms > 0 && e->fired_ms >= e->active_ms && e->value == e->value);
            if (e->state == MONITOR_PENDING && e->last_eval_ms == now)
                CHECK(e->active_ms > 0 && now - e->active_ms < e->rule->for_ms);
        }
    }
    monitor_rules_deployed(set, "staging", "deploy", "r-2", now, &t);
    monitor_transitions_reset(&t);
    monitor_alerts_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct monitor_rules *set = NULL;
    struct sw_err err = {0};
    int rc = monitor_rules_parse((const char *)data, size, NAME, &set, &err);
    if (rc) {
        size_t line, col;
        int n = 0;
        CHECK(rc == SW_EINVAL && err.code == rc && set == NULL);
        if (sscanf(err.msg, NAME ":%zu:%zu: %n", &line, &col, &n) == 2 && n > 0)
            CHECK(line >= 1 && col >= 1 && err.msg[n] != '\0');
        else /* the one refusal without a position: the whole file is too big */
            CHECK(size > (256 << 10) && strncmp(err.msg, NAME ": ", strlen(NAME) + 2) == 0);
        return 0;
    }
    CHECK(set && set->n <= MONITOR_RULES_MAX && !strcmp(set->file, NAME));
    for (size_t i = 0; i < set->n; i++)
        check_rule(set, i);
    drive(set, data, size);
    monitor_rules_free(set);
    return 0;
}
