/* slipway incidents [--since D] [ENV]: the history of alerts that fired, read
 * from the incident journal `slipway serve` appends to (src/monitor/journal.c
 * reads it line by line as hostile input and groups it): for each incident,
 * newest first, when it fired and at what value, who was notified, whether
 * the release was rolled back (to what, how long after firing) or why not,
 * and when it resolved. */
#include "cmd/cmd.h"
#include "monitor/monitor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WARN_MAX 10 /* bad lines named one by one; the rest are counted */

static const struct cli_usage usage = {
    .usage = "slipway incidents [--since D] [ENV]",
    .about = "Prints the alerts that fired (of ENV, or of every environment), newest first,\n"
             "from the journal 'slipway serve' keeps in .slipway/cache/monitor/incidents.jsonl:\n"
             "when each fired and at what value, who was notified (or that a notification was\n"
             "lost), whether the release was rolled back (to which release, how long after\n"
             "firing) or why not, the watch's verdict, and when it resolved (or 'firing').\n"
             "A line of the journal that is not valid is skipped with a warning naming it.\n"
             "--json prints {\"file\", \"skipped_lines\", \"incidents\": [...]}; see\n"
             "docs/monitor.md, \"Incidents\".\n",
    .min_args = 0,
    .max_args = 1,
};

struct warnings {
    size_t n;
};

static void warn(void *arg, const char *line)
{
    struct warnings *w = arg;
    if (w->n++ < WARN_MAX)
        cli_printf(stderr, "slipway: warning: %s: skipped\n", line);
}

static json_t *jtime(int64_t ms)
{
    return json_time_or_null(ms);
}

static json_t *jreal(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *incident_json(const struct monitor_incident *x)
{
    const struct monitor_journal_event *f = x->fired, *r = x->resolved, *b = x->rollback;
    const struct monitor_journal_event *sev = f ? f : r;
    json_t *notes = json_array();
    for (size_t i = 0; i < x->nnotes; i++) {
        const struct monitor_journal_event *n = x->notes[i];
        json_array_append_new(
            notes, json_pack("{s:s, s:o, s:b, s:o}", "target", n->target, "time", jtime(n->at_ms),
                             "delivered", n->kind == MONITOR_JOURNAL_NOTIFIED, "why",
                             json_str_or_null(n->kind == MONITOR_JOURNAL_LOST ? n->text : NULL)));
    }
    json_t *rb = json_null();
    if (b) {
        int done = b->kind == MONITOR_JOURNAL_ROLLED_BACK;
        rb = json_pack("{s:b, s:o, s:o, s:o, s:I, s:s, s:o, s:o}", "rolled_back", done, "release",
                       json_str_or_null(b->release), "to", json_str_or_null(b->to), "time",
                       jtime(b->at_ms), "after_ms", (json_int_t)(b->at_ms - x->fired_ms), "source",
                       b->source, "reason", json_str_or_null(done ? b->text : NULL), "why",
                       json_str_or_null(done ? NULL : b->text));
    }
    json_t *res = r ? json_pack("{s:o, s:o}", "time", jtime(r->at_ms), "value", jreal(r->value))
                    : json_null();
    json_t *verdict =
        x->verdict ? json_pack("{s:o, s:o, s:s}", "time", jtime(x->verdict->at_ms), "release",
                               json_str_or_null(x->verdict->release), "verdict", x->verdict->text)
                   : json_null();
    return json_pack(
        "{s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:o}", "env", x->env, "rule",
        x->rule, "severity",
        json_str_or_null(sev ? monitor_severity_name((enum monitor_severity)sev->severity) : NULL),
        "fingerprint", json_str_or_null(x->fingerprint[0] ? x->fingerprint : NULL), "state",
        r ? "resolved" : "firing", "fired", jtime(x->fired_ms), "value", jreal(f ? f->value : NAN),
        "release",
        json_str_or_null(f   ? f->release
                         : b ? b->release
                             : NULL),
        "summary", json_str_or_null(f ? f->text : NULL), "notifications_omitted",
        (json_int_t)x->notes_omitted, "notified", notes, "rollback", rb, "resolved", res, "verdict",
        verdict);
}

/* How long after firing: "439ms" under a second, else "3s", "2m5s". */
static void after(int64_t ms, char *out, size_t len)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000)
        snprintf(out, len, "%lldms", (long long)ms);
    else
        duration_format(ms, out, len);
}

/* "18:02:03" within a day of now, else "2026-12-05 18:02:03". */
static void when(int64_t ms, int64_t now, char *out, size_t len)
{
    char iso[40];
    time_format_iso(ms, iso, sizeof(iso));
    iso[10] = ' ';
    iso[19] = '\0';
    snprintf(out, len, "%s", now - ms < 86400000 && ms <= now ? iso + 11 : iso);
}

static void incident_print(const struct monitor_incident *x, int64_t now)
{
    const struct monitor_journal_event *f = x->fired, *r = x->resolved, *b = x->rollback;
    const struct monitor_journal_event *sev = f ? f : r;
    char t[40], d[32];
    when(x->fired_ms, now, t, sizeof(t));
    cli_printf(stdout, "%s  %s  %s  fired %s", x->env, x->rule,
               sev ? monitor_severity_name((enum monitor_severity)sev->severity) : "critical?", t);
    if (f && !isnan(f->value))
        cli_printf(stdout, " at %g", f->value);
    if (f && f->release)
        cli_printf(stdout, " on %s", f->release);
    cli_printf(stdout, "\n");
    if (f && f->text)
        cli_printf(stdout, "  summary:     %s\n", f->text);
    for (size_t i = 0; i < x->nnotes; i++) {
        const struct monitor_journal_event *n = x->notes[i];
        when(n->at_ms, now, t, sizeof(t));
        after(n->at_ms - x->fired_ms, d, sizeof(d));
        cli_printf(stdout, "  %-12s %s at %s (%s after firing)%s%s\n",
                   n->kind == MONITOR_JOURNAL_NOTIFIED ? "notified:" : "lost:", n->target, t, d,
                   n->kind == MONITOR_JOURNAL_LOST ? ": " : "",
                   n->kind == MONITOR_JOURNAL_LOST ? n->text : "");
    }
    if (x->notes_omitted)
        cli_printf(stdout, "  notified:    and %zu more\n", x->notes_omitted);
    if (!x->nnotes)
        cli_printf(stdout, "  notified:    nobody (no delivery recorded)\n");
    if (b && b->kind == MONITOR_JOURNAL_ROLLED_BACK) {
        when(b->at_ms, now, t, sizeof(t));
        after(b->at_ms - x->fired_ms, d, sizeof(d));
        cli_printf(stdout, "  rolled back: %s -> %s at %s, %s after firing\n",
                   b->release ? b->release : "?", b->to ? b->to : "(nothing)", t, d);
        cli_printf(stdout, "               %s\n", b->text);
    } else if (b) {
        cli_printf(stdout, "  rolled back: no: %s\n", b->text);
    } else {
        cli_printf(stdout, "  rolled back: no (the watch recorded nothing)\n");
    }
    if (x->verdict)
        cli_printf(stdout, "  verdict:     %s\n", x->verdict->text);
    if (r) {
        when(r->at_ms, now, t, sizeof(t));
        after(r->at_ms - x->fired_ms, d, sizeof(d));
        cli_printf(stdout, "  resolved:    %s (%s after firing)", t, d);
        if (!isnan(r->value))
            cli_printf(stdout, " at %g", r->value);
        cli_printf(stdout, "\n");
    } else {
        cli_printf(stdout, "  resolved:    no: firing\n");
    }
}

int cmd_incidents(int argc, char **argv, struct cli *cli)
{
    int64_t since_ms = 0;
    const struct cli_option opts[] = {
        OPT_DURATION(0, "since", &since_ms, "D", 1,
                     "only incidents with an event in the last D, such as 1h or 7d (default: all)"),
        OPT_END(),
    };
    struct sw_err err = {0};
    struct monitor_journal_events ev = {0};
    struct monitor_incidents inc = {0};
    struct warnings w = {0};
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    if (argc && env_name_check(argv[0], &err) != 0)
        return cli_usage_error(cli, "%s", err.msg);
    int rc = cli_project(cli, &err);
    if (rc)
        return cli_fail(&err);
    char *path = path_join(cli->project, MONITOR_INCIDENTS_FILE);
    rc = monitor_journal_load(path, &ev, warn, &w, &err);
    if (rc && rc != SW_ENOTFOUND) {
        free(path);
        return cli_fail(&err);
    }
    if (w.n > WARN_MAX)
        cli_printf(stderr, "slipway: warning: %s: %zu more bad lines skipped\n", path,
                   w.n - WARN_MAX);
    int64_t now = time_now_ms();
    monitor_incidents_group(&ev, argc ? argv[0] : NULL,
                            since_ms && since_ms < now ? now - since_ms : 0, &inc);
    if (cli->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < inc.n; i++)
            json_array_append_new(arr, incident_json(&inc.v[i]));
        struct buf shown = BUF_INIT; /* a project path that is not UTF-8 is shown escaped */
        if (utf8_valid(path, 0))
            buf_adds(&shown, path);
        else
            buf_add_escaped(&shown, path);
        cli_print_json(json_pack("{s:s, s:I, s:o}", "file", shown.data, "skipped_lines",
                                 (json_int_t)ev.bad, "incidents", arr));
        buf_free(&shown);
    } else if (!inc.n) {
        cli_say(cli, "no incidents\n");
    } else if (!cli->quiet) {
        for (size_t i = 0; i < inc.n; i++) {
            if (i)
                cli_printf(stdout, "\n");
            incident_print(&inc.v[i], now);
        }
    }
    free(inc.v);
    monitor_journal_events_clear(&ev);
    free(path);
    return EXIT_OK;
}
