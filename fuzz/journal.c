/*
 * libFuzzer target for the incident journal (src/monitor/journal.c), which
 * `slipway incidents` reads from the project's cache: every input is such a
 * file. Beyond the sanitizers: a line is accepted or refused alone (parsing
 * the whole input gives, for each line, what parsing that line gives); a
 * refused line leaves nothing behind and its message is one printable line;
 * an accepted event keeps the bounds the writer keeps, and encoding it gives
 * one line that parses to an event that encodes to the same bytes; grouping
 * puts every incident of the events once, newest first.
 */
#include "fuzz.h"
#include "monitor/monitor.h"
#include "release/release.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static void check_event(const struct monitor_journal_event *e)
{
    CHECK((unsigned)e->kind < MONITOR_JOURNAL_KINDS);
    CHECK(e->at_ms > 0 && strlen(e->env) >= 1 && strlen(e->env) <= 63);
    CHECK(!e->rule || (strlen(e->rule) >= 1 && strlen(e->rule) <= MONITOR_JOURNAL_RULE_MAX));
    CHECK(!e->text || strlen(e->text) <= MONITOR_JOURNAL_TEXT_MAX);
    CHECK(!e->target || strlen(e->target) <= MONITOR_JOURNAL_TARGET_MAX);
    CHECK(!e->release || release_id_valid(e->release));
    CHECK(!e->to || release_id_valid(e->to));
    CHECK(isnan(e->value) || isfinite(e->value));
    CHECK(e->fingerprint[0] == '\0' || hex_lower_valid(e->fingerprint, 16));
    CHECK(e->kind == MONITOR_JOURNAL_VERDICT ? !e->rule : e->rule && e->fired_ms > 0);
}

static void round_trip(const struct monitor_journal_event *e)
{
    struct buf b1 = BUF_INIT, b2 = BUF_INIT;
    struct monitor_journal_event back;
    struct sw_err err = {0};
    CHECK(monitor_journal_encode(e, &b1, &err) == 0);
    CHECK(b1.len >= 2 && b1.len <= MONITOR_JOURNAL_LINE_MAX && b1.data[b1.len - 1] == '\n');
    CHECK(memchr(b1.data, '\n', b1.len - 1) == NULL);
    CHECK(monitor_journal_parse_line(b1.data, b1.len - 1, &back, &err) == 0);
    check_event(&back);
    CHECK(monitor_journal_encode(&back, &b2, &err) == 0);
    CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
    monitor_journal_event_clear(&back);
    buf_free(&b1);
    buf_free(&b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct monitor_journal_events ev;
    const char *d = (const char *)data;
    monitor_journal_parse(d, size, "incidents.jsonl", &ev, NULL, NULL);
    /* line by line: the same events, the same refusals */
    size_t n = 0, bad = 0;
    for (size_t at = 0; at < size;) {
        const char *nl = memchr(d + at, '\n', size - at);
        size_t end = nl ? (size_t)(nl - d) : size;
        struct monitor_journal_event e;
        struct sw_err err = {0};
        if (monitor_journal_parse_line(d + at, end - at, &e, &err) == 0) {
            CHECK(n < ev.n && e.kind == ev.v[n].kind && e.at_ms == ev.v[n].at_ms);
            check_event(&e);
            round_trip(&e);
            monitor_journal_event_clear(&e);
            n++;
        } else {
            CHECK(e.rule == NULL && e.text == NULL && e.release == NULL);
            CHECK(err.msg[0] && strchr(err.msg, '\n') == NULL);
            bad++;
        }
        at = end + 1;
    }
    CHECK(n == ev.n && bad == ev.bad);
    struct monitor_incidents inc;
    monitor_incidents_group(&ev, NULL, 0, &inc);
    CHECK(inc.n <= ev.n);
    for (size_t i = 0; i < inc.n; i++) {
        const struct monitor_incident *x = &inc.v[i];
        CHECK(x->env && x->rule && x->first);
        CHECK(i == 0 || inc.v[i - 1].fired_ms >= x->fired_ms);
        CHECK(x->nnotes <= MONITOR_INCIDENT_NOTES_MAX);
        CHECK(!x->fired || x->fired->kind == MONITOR_JOURNAL_FIRED);
        CHECK(!x->resolved || x->resolved->kind == MONITOR_JOURNAL_RESOLVED);
    }
    free(inc.v);
    monitor_journal_events_clear(&ev);
    return 0;
}
