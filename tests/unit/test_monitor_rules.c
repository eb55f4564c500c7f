/*
 * Unit tests for the alert rules (src/monitor/rules.c) and their states
 * (src/monitor/alert.c): the default rules, every key and its default, every
 * error with its FILE:LINE:COL, environment globs, summary templates and the
 * escaping of what goes into them, then each state transition driven with a
 * clock the test sets: for and keep_firing_for at their edges (Prometheus's
 * >= and <), min_requests ("not enough traffic" is a verdict of its own and
 * never resolves a firing alert), fingerprints as Alertmanager computes
 * them, and the deployment event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "monitor/monitor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T0 1700000000000LL /* a time in ms; 0 is refused */
#define MIN (60LL * 1000)

static struct monitor_rules *parse(const char *yaml)
{
    struct monitor_rules *r = NULL;
    struct sw_err err = {0};
    int rc = monitor_rules_parse(yaml, strlen(yaml), "a.yml", &r, &err);
    if (rc)
        print_message("# unexpected refusal: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(r);
    return r;
}

/* Parses yaml expecting a refusal whose message starts with want. */
static void parse_bad(const char *yaml, const char *want)
{
    struct monitor_rules *r = NULL;
    struct sw_err err = {0};
    int rc = monitor_rules_parse(yaml, strlen(yaml), "a.yml", &r, &err);
    if (rc != SW_EINVAL || strncmp(err.msg, want, strlen(want)) != 0)
        print_message("# wanted '%s...'\n#    got rc %d: %s\n", want, rc,
                      rc ? err.msg : "(loaded)");
    assert_int_equal(rc, SW_EINVAL);
    assert_null(r);
    assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
}

/* ---- the file --------------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    struct monitor_rules *r = monitor_rules_default();
    assert_null(r->file);
    assert_int_equal(r->n, 3);

    const struct monitor_rule *e = &r->v[0];
    assert_string_equal(e->name, "high-error-rate");
    assert_int_equal(e->nenvironments, 1);
    assert_string_equal(e->environments[0], "*");
    assert_int_equal(e->signal, MONITOR_SIGNAL_ERROR_RATIO);
    assert_int_equal(e->op, MONITOR_OP_GT);
    assert_true(e->threshold == 0.05);
    assert_int_equal(e->for_ms, MIN);
    assert_int_equal(e->keep_firing_for_ms, 0);
    assert_int_equal(e->min_requests, 100);
    assert_int_equal(e->severity, MONITOR_CRITICAL);
    assert_string_equal(e->summary, "error rate {{ $value }} on {{ $env }} ({{ $release }})");
    assert_int_equal(e->line, 2);
    assert_int_equal(e->col, 5);

    const struct monitor_rule *l = &r->v[1];
    assert_string_equal(l->name, "slow-responses");
    assert_int_equal(l->signal, MONITOR_SIGNAL_LATENCY_P95);
    assert_int_equal(l->op, MONITOR_OP_GT);
    assert_true(l->threshold == 1.0);
    assert_int_equal(l->for_ms, MIN);
    assert_int_equal(l->min_requests, 100);
    assert_int_equal(l->severity, MONITOR_WARNING);

    const struct monitor_rule *d = &r->v[2];
    assert_string_equal(d->name, "deployment-completed");
    assert_int_equal(d->signal, MONITOR_SIGNAL_DEPLOYMENT);
    assert_int_equal(d->severity, MONITOR_INFO);
    assert_string_equal(d->environments[0], "*");
    monitor_rules_free(r);

    /* The issue's rule, verbatim, is the first default. */
    const char *issue = "rules:\n"
                        "  - name: high-error-rate\n"
                        "    environments: [\"*\"]\n"
                        "    signal: error_ratio\n"
                        "    op: \">\"\n"
                        "    threshold: 0.05\n"
                        "    for: 1m\n"
                        "    min_requests: 100\n"
                        "    severity: critical\n"
                        "    summary: \"error rate {{ $value }} on {{ $env }} ({{ $release }})\"\n";
    assert_int_equal(strncmp(monitor_rules_default_yaml, issue, strlen(issue)), 0);
}

static void test_load_missing_and_present(void **state)
{
    char dir[] = "/tmp/test_monitor_rules.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = xasprintf("%s/alerts.yml", dir);
    struct monitor_rules *r = NULL;
    struct sw_err err = {0};

    /* No file: the defaults, and no error left behind. */
    assert_int_equal(monitor_rules_load(path, &r, &err), 0);
    assert_null(r->file);
    assert_int_equal(r->n, 3);
    assert_string_equal(err.msg, "");
    monitor_rules_free(r);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("rules: []\n", f);
    fclose(f);
    assert_int_equal(monitor_rules_load(path, &r, &err), 0);
    assert_string_equal(r->file, path);
    assert_int_equal(r->n, 0); /* [] is a deliberate "no rules" */
    monitor_rules_free(r);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("rules:\n  - name: x\n    signal: cpu\n    severity: info\n    op: '>'\n"
          "    threshold: 2\n",
          f);
    fclose(f);
    assert_int_equal(monitor_rules_load(path, &r, &err), SW_EINVAL);
    assert_null(r);
    char *want = xasprintf("%s:6:16: rule 'x': threshold: cpu is a ratio", path);
    assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
    free(want);

    /* A directory is not a missing file: an error, not the defaults. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_true(monitor_rules_load(path, &r, &err) < 0);
    assert_null(r);
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(rmdir(dir), 0);
    free(path);
}

static void test_every_key(void **state)
{
    struct monitor_rules *r = parse("rules:\n"
                                    "  - name: p99-9\n"
                                    "    environments: [staging, 'prod-*', \"[ab]-?\"]\n"
                                    "    signal: latency_p99\n"
                                    "    op: \"<=\"\n"
                                    "    threshold: 2.5e-1\n"
                                    "    for: 1h30m\n"
                                    "    keep_firing_for: 250ms\n"
                                    "    min_requests: 50\n"
                                    "    severity: warning\n"
                                    "    summary: '{{$value}} {{  $env   }} {{ $release }}'\n");
    assert_string_equal(r->file, "a.yml");
    assert_int_equal(r->n, 1);
    const struct monitor_rule *x = &r->v[0];
    assert_string_equal(x->name, "p99-9");
    assert_int_equal(x->nenvironments, 3);
    assert_string_equal(x->environments[1], "prod-*");
    assert_string_equal(x->environments[2], "[ab]-?");
    assert_int_equal(x->signal, MONITOR_SIGNAL_LATENCY_P99);
    assert_int_equal(x->op, MONITOR_OP_LE);
    assert_true(x->threshold == 0.25);
    assert_int_equal(x->for_ms, 90 * MIN);
    assert_int_equal(x->keep_firing_for_ms, 250);
    assert_int_equal(x->min_requests, 50);
    assert_int_equal(x->severity, MONITOR_WARNING);
    assert_string_equal(x->summary, "{{$value}} {{  $env   }} {{ $release }}");
    assert_int_equal(x->line, 2);
    assert_int_equal(x->col, 5);
    monitor_rules_free(r);

    /* Every signal, op and severity by its word; "for: 0" and defaults. */
    const char *signals[] = {"error_ratio",  "latency_p50", "latency_p95", "latency_p99",
                             "request_rate", "cpu",         "memory",      "disk_io"};
    const char *ops[] = {">", ">=", "<", "<="};
    const char *sevs[] = {"critical", "warning", "info"};
    for (int i = 0; i < 8; i++) {
        char *y = xasprintf("rules:\n  - name: r\n    signal: %s\n    op: '%s'\n    threshold: 0\n"
                            "    severity: %s\n    for: 0\n",
                            signals[i], ops[i % 4], sevs[i % 3]);
        r = parse(y);
        assert_int_equal(r->v[0].signal, i);
        assert_string_equal(monitor_signal_name(r->v[0].signal), signals[i]);
        assert_int_equal(r->v[0].op, i % 4);
        assert_string_equal(monitor_op_name(r->v[0].op), ops[i % 4]);
        assert_int_equal(r->v[0].severity, i % 3);
        assert_string_equal(monitor_severity_name(r->v[0].severity), sevs[i % 3]);
        /* the defaults of the keys not given */
        assert_int_equal(r->v[0].nenvironments, 1);
        assert_string_equal(r->v[0].environments[0], "*");
        assert_int_equal(r->v[0].for_ms, 0);
        assert_int_equal(r->v[0].keep_firing_for_ms, 0);
        assert_int_equal(r->v[0].min_requests, 0);
        assert_string_equal(r->v[0].summary, "r: {{ $value }} on {{ $env }} ({{ $release }})");
        monitor_rules_free(r);
        free(y);
    }
    assert_string_equal(monitor_signal_name(MONITOR_SIGNAL_DEPLOYMENT), "deployment");

    /* A deployment rule: keep_firing_for allowed, default summary of its own. */
    r = parse("rules:\n  - {name: deployed, signal: deployment, severity: info, "
              "keep_firing_for: 1m, environments: [production]}\n");
    assert_int_equal(r->v[0].signal, MONITOR_SIGNAL_DEPLOYMENT);
    assert_int_equal(r->v[0].keep_firing_for_ms, MIN);
    assert_string_equal(r->v[0].summary, "deployed: {{ $env }}: {{ $value }} of {{ $release }}");
    monitor_rules_free(r);

    /* Thresholds at the ends of their ranges; a big request count. */
    r = parse("rules:\n  - {name: a, signal: error_ratio, op: '>=', threshold: 1, severity: info}\n"
              "  - {name: b, signal: disk_io, op: '>', threshold: 1e9, severity: info,"
              " min_requests: 1000000000}\n"
              "  - {name: c, signal: memory, op: '<', threshold: -0, severity: info}\n");
    assert_int_equal(r->n, 3);
    assert_true(r->v[0].threshold == 1.0);
    assert_true(r->v[1].threshold == 1e9);
    assert_int_equal(r->v[1].min_requests, 1000000000);
    monitor_rules_free(r);
}

#define RULE "rules:\n  - name: r\n"
#define MEASURED                                                                                   \
    RULE "    signal: error_ratio\n    op: '>'\n    threshold: 0.1\n    severity: info\n"

static void test_errors(void **state)
{
    /* the document */
    parse_bad("rules: [\n", "a.yml:2:1: invalid YAML");
    parse_bad("", "a.yml:1:1: expected a mapping with the key 'rules'");
    parse_bad("- a\n", "a.yml:1:1: expected a mapping with the key 'rules'");
    parse_bad("rules: []\nrulez: []\n", "a.yml:2:1: unknown key 'rulez' (expected rules)");
    parse_bad("{}\n", "a.yml:1:1: missing key 'rules'");
    parse_bad("rules: 3\n", "a.yml:1:8: rules: expected a list of at most 100 rules");
    parse_bad("rules:\n  - x\n", "a.yml:2:5: rules: expected each rule to be a mapping");
    parse_bad("rules: []\nrules: []\n", "a.yml:2:1: duplicate key 'rules'");
    struct buf many = BUF_INIT;
    buf_adds(&many, "rules:\n");
    for (int i = 0; i < 101; i++)
        buf_addf(&many, "  - {name: r%d, signal: cpu, op: '>', threshold: 1, severity: info}\n", i);
    parse_bad(many.data, "a.yml:2:3: rules: expected a list of at most 100 rules");
    buf_free(&many);

    /* keys */
    parse_bad(MEASURED "    min_request: 100\n",
              "a.yml:7:5: rule 1: unknown key 'min_request' (expected name, environments, signal, "
              "op, threshold, for, keep_firing_for, min_requests, severity or summary)");
    parse_bad("rules:\n  - signal: cpu\n", "a.yml:2:5: rule 1: missing key 'name'");
    parse_bad("rules:\n  - name: High\n", "a.yml:2:11: rule 1: name: expected lowercase letters");
    parse_bad("rules:\n  - name: [a]\n",
              "a.yml:2:11: rule 1: name: expected lowercase letters, digits and '-' (at most 63), "
              "got '(not a scalar)'");
    parse_bad("rules:\n  - name: a_b\n", "a.yml:2:11: rule 1: name: expected lowercase");
    parse_bad(
        "rules:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
        "a.yml:2:11: rule 1: name: expected");
    parse_bad(MEASURED "  - {name: r, signal: cpu, op: '>', threshold: 1, severity: info}\n",
              "a.yml:7:12: rule 'r': the name is already used by the rule at 2:5");
    parse_bad(RULE "    severity: info\n", "a.yml:2:5: rule 'r': missing key 'signal'");
    parse_bad(RULE "    signal: errors\n",
              "a.yml:3:13: rule 'r': signal: expected error_ratio, latency_p50, latency_p95, "
              "latency_p99, request_rate, cpu, memory, disk_io or deployment, got 'errors'");
    parse_bad(RULE "    signal: cpu\n", "a.yml:2:5: rule 'r': missing key 'severity'");
    parse_bad(RULE "    signal: cpu\n    severity: page\n",
              "a.yml:4:15: rule 'r': severity: expected critical, warning or info, got 'page'");

    /* environments */
    parse_bad(MEASURED "    environments: staging\n",
              "a.yml:7:19: rule 'r': environments: expected a list of 1 to 64");
    parse_bad(MEASURED "    environments: []\n",
              "a.yml:7:19: rule 'r': environments: expected a list of 1 to 64");
    parse_bad(MEASURED "    environments: [staging, Prod]\n",
              "a.yml:7:29: rule 'r': environments: expected an environment name or pattern "
              "(lowercase letters, digits, '-', '_' and the wildcards * ? [ ] !, at most 128), "
              "got 'Prod'");
    parse_bad(MEASURED "    environments: ['a/b']\n",
              "a.yml:7:20: rule 'r': environments: expected");
    parse_bad(MEASURED "    environments: [a, b, a]\n",
              "a.yml:7:26: rule 'r': environments: 'a' is listed twice");

    /* op, threshold */
    parse_bad(RULE "    signal: cpu\n    severity: info\n    threshold: 1\n",
              "a.yml:2:5: rule 'r': missing key 'op' (>, >=, < or <=)");
    parse_bad(
        RULE "    signal: cpu\n    severity: info\n    op: '=='\n    threshold: 1\n",
        "a.yml:5:9: rule 'r': op: expected \">\", \">=\", \"<\" or \"<=\" (quoted), got '=='");
    parse_bad(RULE "    signal: cpu\n    severity: info\n    op: '>'\n",
              "a.yml:2:5: rule 'r': missing key 'threshold'");
    parse_bad(RULE "    signal: error_ratio\n    severity: info\n    op: '>'\n    threshold: 5\n",
              "a.yml:6:16: rule 'r': threshold: error_ratio is a ratio: expected a number from 0 "
              "to 1 (0.05 is 5 %), got '5'");
    parse_bad(RULE "    signal: latency_p95\n    severity: info\n    op: '>'\n    threshold: -1\n",
              "a.yml:6:16: rule 'r': threshold: expected a number of at least 0 (latency_p95 is "
              "in seconds), got '-1'");
    parse_bad(RULE "    signal: request_rate\n    severity: info\n    op: '>'\n    threshold: x\n",
              "a.yml:6:16: rule 'r': threshold: expected a number of at least 0 (request_rate is "
              "in requests per second), got 'x'");
    const char *bad_numbers[] = {"'0.5'", ".inf",  ".nan", "0x10", "1e",
                                 "1.2.3", "1e999", "1,5",  "+",    "."};
    for (size_t i = 0; i < sizeof(bad_numbers) / sizeof(*bad_numbers); i++) {
        char *y = xasprintf(RULE "    signal: disk_io\n    severity: info\n    op: '>'\n"
                                 "    threshold: %s\n",
                            bad_numbers[i]);
        parse_bad(y, "a.yml:6:16: rule 'r': threshold: expected a number of at least 0 (disk_io "
                     "is in bytes per second)");
        free(y);
    }

    /* durations and counts */
    const char *bad_durations[] = {"1", "10y", "-1m", "1m30", "31d", "x", "[1m]", "''"};
    for (size_t i = 0; i < sizeof(bad_durations) / sizeof(*bad_durations); i++) {
        char *y = xasprintf(MEASURED "    for: %s\n", bad_durations[i]);
        parse_bad(y, "a.yml:7:10: rule 'r': for: expected a duration such as 0, 30s, 1m or 1h30m "
                     "(at most 30d)");
        free(y);
        y = xasprintf(MEASURED "    keep_firing_for: %s\n", bad_durations[i]);
        parse_bad(y, "a.yml:7:22: rule 'r': keep_firing_for: expected a duration");
        free(y);
    }
    parse_bad(MEASURED "    min_requests: -1\n",
              "a.yml:7:19: rule 'r': min_requests: expected a whole number from 0 to 1000000000, "
              "got '-1'");
    parse_bad(MEASURED "    min_requests: 1.5\n", "a.yml:7:19: rule 'r': min_requests: expected");
    parse_bad(MEASURED "    min_requests: 1000000001\n", "a.yml:7:19: rule 'r': min_requests:");

    /* summary */
    parse_bad(MEASURED "    summary: '{{ .Value }} on {{ $env }}'\n",
              "a.yml:7:14: rule 'r': summary: unknown template '{{ .Value }}' (expected {{ "
              "$value }}, {{ $env }} or {{ $release }})");
    parse_bad(MEASURED "    summary: 'x {{ $value'\n",
              "a.yml:7:14: rule 'r': summary: unknown template '{{ $value'");
    parse_bad(MEASURED "    summary: '{{ $values }}'\n",
              "a.yml:7:14: rule 'r': summary: unknown template '{{ $values }}'");
    parse_bad(MEASURED "    summary: '{{- $value }}'\n", "a.yml:7:14: rule 'r': summary: unknown");
    parse_bad(MEASURED "    summary: \"bell \\a\"\n",
              "a.yml:7:14: rule 'r': summary: expected one line of printable text of at most 1024 "
              "bytes");
    parse_bad(MEASURED "    summary: \"two\\nlines\"\n", "a.yml:7:14: rule 'r': summary: expected");
    parse_bad(MEASURED "    summary: ''\n", "a.yml:7:14: rule 'r': summary: expected");
    parse_bad(MEASURED "    summary: [a]\n", "a.yml:7:14: rule 'r': summary: expected");
    struct buf longs = BUF_INIT;
    buf_adds(&longs, MEASURED "    summary: ");
    for (int i = 0; i < 1025; i++)
        buf_adds(&longs, "x");
    buf_adds(&longs, "\n");
    parse_bad(longs.data, "a.yml:7:14: rule 'r': summary: expected one line");
    buf_free(&longs);

    /* a deployment rule is an event: nothing to compare, nothing to wait for */
    parse_bad(RULE "    signal: deployment\n    severity: info\n    op: '>'\n",
              "a.yml:5:5: rule 'r': op: a deployment rule is an event, sent after every deploy, "
              "switch and rollback; it has no op, threshold, for or min_requests");
    parse_bad(RULE "    signal: deployment\n    severity: info\n    for: 1m\n",
              "a.yml:5:5: rule 'r': for: a deployment rule is an event");
    parse_bad(RULE "    signal: deployment\n    severity: info\n    min_requests: 3\n",
              "a.yml:5:5: rule 'r': min_requests: a deployment rule is an event");
}

/* ---- globs and templates ------------------------------------------------------------------ */

static void test_globs(void **state)
{
    struct monitor_rules *r = parse("rules:\n  - {name: a, signal: cpu, op: '>', threshold: 1, "
                                    "severity: info, environments: [staging, 'prod-*', "
                                    "'[ab]-?', '!x']}\n");
    const struct monitor_rule *x = &r->v[0];
    assert_true(monitor_rule_applies(x, "staging"));
    assert_true(monitor_rule_applies(x, "prod-eu"));
    assert_true(monitor_rule_applies(x, "prod-"));
    assert_true(monitor_rule_applies(x, "a-1"));
    assert_true(monitor_rule_applies(x, "b-z"));
    assert_true(monitor_rule_applies(x, "!x")); /* '!' is only special inside [] */
    assert_false(monitor_rule_applies(x, "staging2"));
    assert_false(monitor_rule_applies(x, "production"));
    assert_false(monitor_rule_applies(x, "c-1"));
    assert_false(monitor_rule_applies(x, "a-12"));
    assert_false(monitor_rule_applies(x, "x"));
    monitor_rules_free(r);

    r = monitor_rules_default();
    assert_true(monitor_rule_applies(&r->v[0], "anything-at-all"));
    monitor_rules_free(r);
}

static char *render(const char *tmpl, const char *value, const char *env, const char *release)
{
    struct buf b = BUF_INIT;
    monitor_summary_render(tmpl, value, env, release, &b);
    return buf_detach(&b, NULL);
}

static void test_templates(void **state)
{
    char *s =
        render("error rate {{ $value }} on {{ $env }} ({{ $release }})", "0.07", "staging", "r-1");
    assert_string_equal(s, "error rate 0.07 on staging (r-1)");
    free(s);
    s = render("{{$value}}{{  $env  }}{{ $release}}", "1", "e", NULL);
    assert_string_equal(s, "1enone");
    free(s);
    s = render("no variables", "1", "e", "r");
    assert_string_equal(s, "no variables");
    free(s);
    s = render("", "1", "e", "r");
    assert_string_equal(s, "");
    free(s);
    /* { alone and }} alone are text */
    s = render("{ $value } }} {{ $env }}", "1", "e", "r");
    assert_string_equal(s, "{ $value } }} e");
    free(s);

    /* Values from hostile places: one printable line whatever they hold. */
    s = render("[{{ $env }}] [{{ $release }}]", "1", "st\nage", "r-\x1b[31mred\r");
    assert_string_equal(s, "[st\\nage] [r-\\x1b[31mred\\r]");
    free(s);
    s = render("{{ $release }}", "1", "e", "a\\b \xff \xe2\x80\xae");
    assert_string_equal(s, "a\\\\b \\xff \\u202e");
    free(s);
    /* A value that is itself a template is not expanded again. */
    s = render("{{ $release }}", "1", "e", "{{ $env }}");
    assert_string_equal(s, "{{ $env }}");
    free(s);
    /* Cut at 256 bytes. */
    char big[1000];
    memset(big, 'r', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    s = render("<{{ $release }}>", "1", "e", big);
    assert_int_equal(strlen(s), 1 + 256 + 3 + 1);
    assert_int_equal(strncmp(s + 257, "...>", 4), 0);
    free(s);
}

/* ---- states ---------------------------------------------------------------------------- */

static struct monitor_sample sample(int sig, double v, uint64_t requests, const char *release)
{
    struct monitor_sample s;
    for (int i = 0; i < MONITOR_NSIGNALS; i++)
        s.value[i] = NAN;
    s.value[sig] = v;
    s.requests = requests;
    s.release = release;
    return s;
}

struct fixture {
    struct monitor_rules *rules;
    struct monitor_alerts *a;
    struct monitor_transitions t;
};

static void fx_open(struct fixture *f, const char *yaml)
{
    f->rules = parse(yaml);
    f->a = monitor_alerts_new(f->rules);
    f->t = (struct monitor_transitions)MONITOR_TRANSITIONS_INIT;
}

static void fx_close(struct fixture *f)
{
    monitor_transitions_reset(&f->t);
    monitor_alerts_free(f->a);
    monitor_rules_free(f->rules);
}

/* Evaluates env with value v of the first rule's signal at time t; returns
 * the number of transitions (they are in f->t, reset before). */
static size_t ev(struct fixture *f, const char *env, double v, uint64_t req, int64_t t)
{
    struct sw_err err = {0};
    struct monitor_sample s = sample(f->rules->v[0].signal, v, req, "r-1");
    monitor_transitions_reset(&f->t);
    assert_int_equal(monitor_alerts_eval(f->a, env, &s, t, &f->t, &err), 0);
    return f->t.n;
}

static const struct monitor_alert *st(struct fixture *f, const char *env)
{
    const struct monitor_alert *e = monitor_alerts_find(f->a, f->rules->v[0].name, env);
    assert_non_null(e);
    return e;
}

static void test_for_zero_fires_at_once(void **state)
{
    struct fixture f;
    fx_open(&f, "rules:\n  - {name: high-error-rate, signal: error_ratio, op: '>', threshold: "
                "0.05, severity: critical,\n     summary: 'error rate {{ $value }} on {{ $env }} "
                "({{ $release }})'}\n");
    assert_int_equal(ev(&f, "staging", 0.01, 10, T0), 0);
    assert_int_equal(st(&f, "staging")->state, MONITOR_INACTIVE);
    assert_int_equal(st(&f, "staging")->verdict, MONITOR_VERDICT_OK);

    /* One transition, straight to firing, as Prometheus does with for 0. */
    assert_int_equal(ev(&f, "staging", 0.5, 10, T0 + 1000), 1);
    const struct monitor_transition *x = &f.t.v[0];
    assert_int_equal(x->kind, MONITOR_TRANSITION_FIRING);
    assert_int_equal(x->verdict, MONITOR_VERDICT_BREACH);
    assert_int_equal(x->starts_ms, T0 + 1000);
    assert_int_equal(x->ends_ms, 0);
    assert_int_equal(x->at_ms, T0 + 1000);
    assert_true(x->value == 0.5);
    assert_int_equal(x->requests, 10);
    assert_string_equal(x->release, "r-1");
    assert_string_equal(x->summary, "error rate 0.5 on staging (r-1)");
    assert_int_equal(x->nlabels, 3);
    assert_string_equal(x->labels[0].name, "alertname");
    assert_string_equal(x->labels[0].value, "high-error-rate");
    assert_string_equal(x->labels[1].name, "env");
    assert_string_equal(x->labels[1].value, "staging");
    assert_string_equal(x->labels[2].name, "severity");
    assert_string_equal(x->labels[2].value, "critical");
    /* Alertmanager's fingerprint of those labels (FNV-1a 64, computed apart). */
    assert_string_equal(x->fingerprint, "a896b4036f39a72e");
    assert_string_equal(st(&f, "staging")->fingerprint, "a896b4036f39a72e");

    /* Firing and still breaching: nothing new, the value and summary follow. */
    assert_int_equal(ev(&f, "staging", 0.25, 10, T0 + 2000), 0);
    assert_true(st(&f, "staging")->value == 0.25);
    assert_string_equal(st(&f, "staging")->summary, "error rate 0.25 on staging (r-1)");
    assert_int_equal(st(&f, "staging")->fired_ms, T0 + 1000);

    /* The condition stops: resolved at once (no keep_firing_for), reported once. */
    assert_int_equal(ev(&f, "staging", 0.05, 10, T0 + 3000), 1);
    x = &f.t.v[0];
    assert_int_equal(x->kind, MONITOR_TRANSITION_RESOLVED);
    assert_int_equal(x->starts_ms, T0 + 1000);
    assert_int_equal(x->ends_ms, T0 + 3000);
    assert_true(x->value == 0.25); /* the alert's last value, as Prometheus keeps it */
    assert_true(x->last == 0.05);
    assert_string_equal(x->fingerprint, "a896b4036f39a72e");
    assert_int_equal(st(&f, "staging")->state, MONITOR_INACTIVE);
    assert_int_equal(st(&f, "staging")->resolved_ms, T0 + 3000);
    assert_int_equal(ev(&f, "staging", 0.0, 10, T0 + 4000), 0);
    fx_close(&f);
}

static void test_for_edges(void **state)
{
    struct fixture f;
    fx_open(&f, "rules:\n  - {name: r, signal: latency_p95, op: '>=', threshold: 1, for: 1m, "
                "severity: warning}\n");
    assert_int_equal(ev(&f, "e", 1.0, 1, T0), 1); /* >= : equal holds */
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_PENDING);
    assert_int_equal(f.t.v[0].starts_ms, T0);
    assert_int_equal(st(&f, "e")->state, MONITOR_PENDING);
    assert_int_equal(st(&f, "e")->active_ms, T0);
    /* One millisecond short of `for`: still pending. */
    assert_int_equal(ev(&f, "e", 2.0, 1, T0 + MIN - 1), 0);
    assert_int_equal(st(&f, "e")->state, MONITOR_PENDING);
    /* At exactly `for` (now - activeAt >= for): firing, startsAt now. */
    assert_int_equal(ev(&f, "e", 2.0, 1, T0 + MIN), 1);
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_FIRING);
    assert_int_equal(f.t.v[0].starts_ms, T0 + MIN);
    assert_int_equal(st(&f, "e")->active_ms, T0);
    fx_close(&f);

    /* A pending alert that stops holding is cleared, never notified, and
     * starts over: `for` counts from the new activeAt. */
    fx_open(&f, "rules:\n  - {name: r, signal: latency_p95, op: '>', threshold: 1, for: 1m, "
                "severity: warning}\n");
    assert_int_equal(ev(&f, "e", 2.0, 1, T0), 1);
    assert_int_equal(ev(&f, "e", 1.0, 1, T0 + 30000), 1); /* > : equal does not hold */
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_CLEARED);
    assert_int_equal(f.t.v[0].starts_ms, T0);
    assert_int_equal(st(&f, "e")->state, MONITOR_INACTIVE);
    assert_int_equal(ev(&f, "e", 2.0, 1, T0 + 40000), 1);
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_PENDING);
    assert_int_equal(ev(&f, "e", 2.0, 1, T0 + MIN + 1000), 0); /* 60 s after T0, not after +40 s */
    assert_int_equal(ev(&f, "e", 2.0, 1, T0 + 40000 + MIN), 1);
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_FIRING);

    /* A clock that steps back counts as no time passing. */
    assert_int_equal(ev(&f, "e", 0.5, 1, T0), 1);
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_RESOLVED);
    assert_int_equal(f.t.v[0].ends_ms, T0 + 40000 + MIN);
    assert_int_equal(st(&f, "e")->last_eval_ms, T0 + 40000 + MIN);
    fx_close(&f);
}

static void test_ops(void **state)
{
    struct {
        const char *op;
        double v;
        int holds;
    } cases[] = {{">", 1.0, 0}, {">", 1.5, 1}, {">=", 1.0, 1}, {">=", 0.5, 0},
                 {"<", 1.0, 0}, {"<", 0.5, 1}, {"<=", 1.0, 1}, {"<=", 1.5, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct fixture f;
        char *y = xasprintf("rules:\n  - {name: r, signal: request_rate, op: '%s', threshold: 1, "
                            "severity: info}\n",
                            cases[i].op);
        fx_open(&f, y);
        assert_int_equal(ev(&f, "e", cases[i].v, 1, T0), (size_t)cases[i].holds);
        assert_int_equal(st(&f, "e")->verdict,
                         cases[i].holds ? MONITOR_VERDICT_BREACH : MONITOR_VERDICT_OK);
        fx_close(&f);
        free(y);
    }
}

static void test_keep_firing_for(void **state)
{
    struct fixture f;
    fx_open(&f, "rules:\n  - {name: r, signal: error_ratio, op: '>', threshold: 0.1, "
                "keep_firing_for: 2m, severity: critical}\n");
    assert_int_equal(ev(&f, "e", 0.5, 1, T0), 1);
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_FIRING);
    /* Stops holding: keeps firing for 2 m from the first evaluation that failed. */
    assert_int_equal(ev(&f, "e", 0.0, 1, T0 + 1000), 0);
    assert_int_equal(st(&f, "e")->state, MONITOR_FIRING);
    assert_int_equal(st(&f, "e")->keep_firing_ms, T0 + 1000);
    assert_int_equal(st(&f, "e")->verdict, MONITOR_VERDICT_OK);
    assert_int_equal(ev(&f, "e", 0.0, 1, T0 + 1000 + 2 * MIN - 1), 0);
    assert_int_equal(st(&f, "e")->state, MONITOR_FIRING);
    /* now - keepFiringSince < keep_firing_for no longer: resolved. */
    assert_int_equal(ev(&f, "e", 0.0, 1, T0 + 1000 + 2 * MIN), 1);
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_RESOLVED);
    assert_int_equal(f.t.v[0].starts_ms, T0);
    assert_int_equal(f.t.v[0].ends_ms, T0 + 1000 + 2 * MIN);
    assert_int_equal(st(&f, "e")->keep_firing_ms, 0);

    /* Holding again inside the window resets the countdown. */
    int64_t t = T0 + 10 * MIN;
    assert_int_equal(ev(&f, "e", 0.5, 1, t), 1);
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_FIRING);
    assert_int_equal(f.t.v[0].starts_ms, t);
    assert_int_equal(ev(&f, "e", 0.0, 1, t + 1000), 0);
    assert_int_equal(ev(&f, "e", 0.5, 1, t + MIN), 0); /* still the same firing alert */
    assert_int_equal(st(&f, "e")->keep_firing_ms, 0);
    assert_int_equal(ev(&f, "e", 0.0, 1, t + 2 * MIN), 0);
    assert_int_equal(ev(&f, "e", 0.0, 1, t + 1000 + 2 * MIN), 0); /* 2 m from t+1s would end */
    assert_int_equal(ev(&f, "e", 0.0, 1, t + 4 * MIN - 1), 0);
    assert_int_equal(ev(&f, "e", 0.0, 1, t + 4 * MIN), 1);
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_RESOLVED);
    assert_int_equal(f.t.v[0].starts_ms, t);

    /* keep_firing_for does not hold a pending alert. */
    fx_close(&f);
    fx_open(&f, "rules:\n  - {name: r, signal: error_ratio, op: '>', threshold: 0.1, for: 1m, "
                "keep_firing_for: 2m, severity: critical}\n");
    assert_int_equal(ev(&f, "e", 0.5, 1, T0), 1);
    assert_int_equal(ev(&f, "e", 0.0, 1, T0 + 1), 1);
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_CLEARED);
    fx_close(&f);
}

static void test_min_requests(void **state)
{
    struct fixture f;
    fx_open(&f, "rules:\n  - {name: r, signal: error_ratio, op: '>', threshold: 0.05, "
                "min_requests: 100, severity: critical}\n");
    /* Below min_requests: no verdict, said once, and not "fine". */
    assert_int_equal(ev(&f, "e", 0.9, 99, T0), 1);
    const struct monitor_transition *x = &f.t.v[0];
    assert_int_equal(x->kind, MONITOR_TRANSITION_NO_VERDICT);
    assert_int_equal(x->verdict, MONITOR_VERDICT_LOW_TRAFFIC);
    assert_int_equal(x->requests, 99);
    assert_true(x->last == 0.9);
    assert_true(isnan(x->value)); /* no breach seen */
    assert_null(x->summary);
    assert_int_equal(st(&f, "e")->state, MONITOR_INACTIVE);
    assert_int_equal(st(&f, "e")->verdict, MONITOR_VERDICT_LOW_TRAFFIC);
    assert_int_equal(st(&f, "e")->last_verdict_ms, 0);
    assert_int_equal(ev(&f, "e", 0.9, 0, T0 + 1000), 0); /* the same verdict again: nothing */

    /* At min_requests exactly there is a verdict. */
    assert_int_equal(ev(&f, "e", 0.9, 100, T0 + 2000), 1);
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_FIRING);
    assert_int_equal(st(&f, "e")->last_verdict_ms, T0 + 2000);

    /* Traffic drops while firing: still firing, the verdict says why. */
    assert_int_equal(ev(&f, "e", 0.0, 3, T0 + 3000), 1);
    x = &f.t.v[0];
    assert_int_equal(x->kind, MONITOR_TRANSITION_NO_VERDICT);
    assert_int_equal(x->verdict, MONITOR_VERDICT_LOW_TRAFFIC);
    assert_int_equal(x->starts_ms, T0 + 2000);
    assert_string_equal(x->summary, "r: 0.9 on e (r-1)");
    assert_int_equal(st(&f, "e")->state, MONITOR_FIRING);
    for (int i = 1; i <= 60; i++) /* an hour of silence resolves nothing */
        assert_int_equal(ev(&f, "e", 0.0, 0, T0 + 3000 + i * MIN), 0);
    assert_int_equal(st(&f, "e")->state, MONITOR_FIRING);
    assert_int_equal(st(&f, "e")->last_verdict_ms, T0 + 2000);
    /* Enough traffic and a good ratio: resolved. */
    assert_int_equal(ev(&f, "e", 0.01, 500, T0 + 62 * MIN), 1);
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_RESOLVED);
    assert_int_equal(f.t.v[0].verdict, MONITOR_VERDICT_OK);
    fx_close(&f);

    /* A pending alert without a verdict is cleared (it was not seen to hold). */
    fx_open(&f, "rules:\n  - {name: r, signal: error_ratio, op: '>', threshold: 0.05, for: 1m, "
                "min_requests: 100, severity: critical}\n");
    assert_int_equal(ev(&f, "e", 0.9, 100, T0), 1);
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_PENDING);
    assert_int_equal(ev(&f, "e", 0.9, 10, T0 + 30000), 1);
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_CLEARED);
    assert_int_equal(f.t.v[0].verdict, MONITOR_VERDICT_LOW_TRAFFIC);
    assert_int_equal(st(&f, "e")->state, MONITOR_INACTIVE);
    assert_int_equal(ev(&f, "e", 0.9, 100, T0 + MIN), 1);
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_PENDING);
    assert_int_equal(f.t.v[0].starts_ms, T0 + MIN);
    fx_close(&f);

    /* A signal not measured: no verdict of its own kind. */
    fx_open(&f, "rules:\n  - {name: r, signal: latency_p99, op: '>', threshold: 1, "
                "severity: warning}\n");
    assert_int_equal(ev(&f, "e", NAN, 0, T0), 1);
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_NO_VERDICT);
    assert_int_equal(f.t.v[0].verdict, MONITOR_VERDICT_NO_DATA);
    assert_int_equal(ev(&f, "e", 2, 0, T0 + 1), 1); /* min_requests 0: any count judges */
    assert_int_equal(f.t.v[0].kind, MONITOR_TRANSITION_FIRING);
    assert_int_equal(ev(&f, "e", NAN, 0, T0 + 2), 1);
    assert_int_equal(f.t.v[0].verdict, MONITOR_VERDICT_NO_DATA);
    assert_int_equal(st(&f, "e")->state, MONITOR_FIRING);
    assert_true(isnan(st(&f, "e")->last));
    fx_close(&f);
}

static void test_environments_and_bounds(void **state)
{
    struct fixture f;
    struct sw_err err = {0};
    fx_open(&f, "rules:\n  - {name: a, signal: cpu, op: '>', threshold: 0.9, severity: warning, "
                "environments: ['prod-*']}\n"
                "  - {name: b, signal: memory, op: '>', threshold: 0.9, severity: info}\n"
                "  - {name: c, signal: deployment, severity: info}\n");
    struct monitor_sample s = sample(MONITOR_SIGNAL_CPU, 0.95, 0, NULL);
    s.value[MONITOR_SIGNAL_MEMORY] = 0.95;

    /* staging: only b applies; the deployment rule never has a state. */
    assert_int_equal(monitor_alerts_eval(f.a, "staging", &s, T0, &f.t, &err), 0);
    assert_int_equal(f.t.n, 1);
    assert_string_equal(f.t.v[0].rule->name, "b");
    assert_string_equal(f.t.v[0].summary, "b: 0.95 on staging (none)");
    assert_null(f.t.v[0].release);
    assert_null(monitor_alerts_find(f.a, "a", "staging"));
    assert_null(monitor_alerts_find(f.a, "c", "staging"));
    monitor_transitions_reset(&f.t);
    /* prod-eu: both, in the rules' order. */
    assert_int_equal(monitor_alerts_eval(f.a, "prod-eu", &s, T0, &f.t, &err), 0);
    assert_int_equal(f.t.n, 2);
    assert_string_equal(f.t.v[0].rule->name, "a");
    assert_string_equal(f.t.v[1].rule->name, "b");
    assert_int_equal(monitor_alerts_count(f.a), 3);
    assert_string_equal(monitor_alerts_get(f.a, 0)->env, "staging");
    assert_string_equal(monitor_alerts_get(f.a, 2)->rule->name, "b");
    assert_null(monitor_alerts_get(f.a, 3));
    /* Fingerprints differ by env and by rule. */
    assert_string_not_equal(monitor_alerts_find(f.a, "b", "staging")->fingerprint,
                            monitor_alerts_find(f.a, "b", "prod-eu")->fingerprint);
    assert_string_not_equal(monitor_alerts_find(f.a, "a", "prod-eu")->fingerprint,
                            monitor_alerts_find(f.a, "b", "prod-eu")->fingerprint);
    monitor_transitions_reset(&f.t);

    /* Refused, out unchanged: a bad environment name, a time before 1970. */
    assert_int_equal(monitor_alerts_eval(f.a, "", &s, T0, &f.t, &err), SW_EINVAL);
    assert_int_equal(monitor_alerts_eval(f.a, "a\nb", &s, T0, &f.t, &err), SW_EINVAL);
    assert_int_equal(
        monitor_alerts_eval(f.a, "0123456789012345678901234567890123456789012345678901234567890123",
                            &s, T0, &f.t, &err),
        SW_EINVAL);
    assert_int_equal(monitor_alerts_eval(f.a, "x", &s, 0, &f.t, &err), SW_EINVAL);
    assert_int_equal(f.t.n, 0);
    /* At most MONITOR_ENVS_MAX environments. */
    for (int i = 2; i < MONITOR_ENVS_MAX; i++) {
        char env[32];
        snprintf(env, sizeof(env), "env-%d", i);
        assert_int_equal(monitor_alerts_eval(f.a, env, &s, T0, &f.t, &err), 0);
    }
    monitor_transitions_reset(&f.t);
    assert_int_equal(monitor_alerts_eval(f.a, "one-more", &s, T0, &f.t, &err), SW_ENOSPC);
    assert_int_equal(f.t.n, 0);
    assert_int_equal(monitor_alerts_eval(f.a, "staging", &s, T0 + 1, &f.t, &err), 0);
    fx_close(&f);
}

static void test_deployment_event(void **state)
{
    struct monitor_rules *r = monitor_rules_default();
    struct monitor_transitions t = MONITOR_TRANSITIONS_INIT;
    monitor_rules_deployed(r, "staging", "switch", "r-1", T0, &t);
    assert_int_equal(t.n, 1);
    const struct monitor_transition *x = &t.v[0];
    assert_int_equal(x->kind, MONITOR_TRANSITION_EVENT);
    assert_string_equal(x->rule->name, "deployment-completed");
    assert_string_equal(x->summary, "staging: switch of r-1 completed");
    assert_int_equal(x->starts_ms, T0);
    assert_int_equal(x->ends_ms, T0 + MONITOR_EVENT_HOLD_MS);
    assert_true(isnan(x->value));
    assert_string_equal(x->release, "r-1");
    const char *want[][2] = {{"action", "switch"},
                             {"alertname", "deployment-completed"},
                             {"env", "staging"},
                             {"release", "r-1"},
                             {"severity", "info"}};
    assert_int_equal(x->nlabels, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(x->labels[i].name, want[i][0]);
        assert_string_equal(x->labels[i].value, want[i][1]);
    }
    assert_string_equal(x->fingerprint, "1d0fa136797c6db5");
    monitor_transitions_reset(&t);

    /* Hostile values: labels and summary stay printable; no release, no label. */
    monitor_rules_deployed(r, "staging", "roll\nback", NULL, T0, &t);
    assert_int_equal(t.v[0].nlabels, 4);
    assert_string_equal(t.v[0].labels[0].value, "roll\\nback");
    assert_string_equal(t.v[0].summary, "staging: roll\\nback of none completed");
    monitor_transitions_reset(&t);
    monitor_rules_free(r);

    /* Environments and keep_firing_for of a deployment rule. */
    r = parse("rules:\n  - {name: prod-deploys, signal: deployment, severity: warning, "
              "environments: [production], keep_firing_for: 1m}\n"
              "  - {name: x, signal: cpu, op: '>', threshold: 1, severity: info}\n");
    monitor_rules_deployed(r, "staging", "deploy", "r-2", T0, &t);
    assert_int_equal(t.n, 0);
    monitor_rules_deployed(r, "production", "deploy", "r-2", T0, &t);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.v[0].ends_ms, T0 + MIN);
    assert_string_equal(t.v[0].summary, "prod-deploys: production: deploy of r-2");
    monitor_transitions_reset(&t);
    monitor_rules_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_load_missing_and_present),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_globs),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_for_zero_fires_at_once),
        cmocka_unit_test(test_for_edges),
        cmocka_unit_test(test_ops),
        cmocka_unit_test(test_keep_firing_for),
        cmocka_unit_test(test_min_requests),
        cmocka_unit_test(test_environments_and_bounds),
        cmocka_unit_test(test_deployment_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
