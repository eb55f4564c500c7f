/*
 * Alert rules: .slipway/alerts.yml, loaded as a YAML tree with positions
 * (base: yaml_doc_parse) and checked against a closed schema, so every error
 * names FILE:LINE:COL and nothing is silently ignored: a misspelt
 * "min_request" that fell back to 0 would be an alert firing on three
 * requests, a misspelt "for" one that never waits. Without a file the seed's
 * three rules apply; they are YAML text below, parsed by the same code, so
 * the defaults cannot say what a file could not.
 *
 * The one idea: a rule is checked whole when it is loaded (its template too),
 * so evaluating and rendering it later cannot fail.
 */
#include "monitor/monitor.h"

#include <ctype.h>
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 63
#define PATTERN_MAX_LEN 128
#define MIN_REQUESTS_MAX 1000000000
#define VALUE_MAX 256 /* bytes of one value put into a summary */

/* The seed's rules (error rate > 5 % critical, response time > 1 s warning,
 * deployment completed info). The first is the text verbatim. The
 * latency rule watches p95: "response time" of a page is what most requests
 * see, and p95 says a twentieth of them waited over a second, where p99
 * fires on a handful of slow requests and p50 misses a slow tail. Both
 * measured rules need 100 requests in the window before they judge. */
const char monitor_rules_default_yaml[] =
    "rules:\n"
    "  - name: high-error-rate\n"
    "    environments: [\"*\"]\n"
    "    signal: error_ratio\n"
    "    op: \">\"\n"
    "    threshold: 0.05\n"
    "    for: 1m\n"
    "    min_requests: 100\n"
    "    severity: critical\n"
    "    summary: \"error rate {{ $value }} on {{ $env }} ({{ $release }})\"\n"
    "  - name: slow-responses\n"
    "    environments: [\"*\"]\n"
    "    signal: latency_p95\n"
    "    op: \">\"\n"
    "    threshold: 1\n"
    "    for: 1m\n"
    "    min_requests: 100\n"
    "    severity: warning\n"
    "    summary: \"response time p95 {{ $value }} s on {{ $env }} ({{ $release }})\"\n"
    "  - name: deployment-completed\n"
    "    environments: [\"*\"]\n"
    "    signal: deployment\n"
    "    severity: info\n"
    "    summary: \"{{ $env }}: {{ $value }} of {{ $release }} completed\"\n";

static const char *const signal_names[] = {
    [MONITOR_SIGNAL_ERROR_RATIO] = "error_ratio",
    [MONITOR_SIGNAL_LATENCY_P50] = "latency_p50",
    [MONITOR_SIGNAL_LATENCY_P95] = "latency_p95",
    [MONITOR_SIGNAL_LATENCY_P99] = "latency_p99",
    [MONITOR_SIGNAL_REQUEST_RATE] = "request_rate",
    [MONITOR_SIGNAL_CPU] = "cpu",
    [MONITOR_SIGNAL_MEMORY] = "memory",
    [MONITOR_SIGNAL_DISK_IO] = "disk_io",
    [MONITOR_SIGNAL_DEPLOYMENT] = "deployment",
};
#define NSIGNAL_NAMES (sizeof(signal_names) / sizeof(*signal_names))
static const char *const op_names[] = {
    [MONITOR_OP_GT] = ">", [MONITOR_OP_GE] = ">=", [MONITOR_OP_LT] = "<", [MONITOR_OP_LE] = "<="};
static const char *const severity_names[] = {
    [MONITOR_CRITICAL] = "critical", [MONITOR_WARNING] = "warning", [MONITOR_INFO] = "info"};

/* The template variables, in the order monitor_summary_render takes them. */
static const char *const vars[] = {"$value", "$env", "$release"};

const char *monitor_signal_name(enum monitor_signal s)
{
    return (unsigned)s < NSIGNAL_NAMES ? signal_names[s] : "?";
}

const char *monitor_op_name(enum monitor_op op)
{
    return (unsigned)op < 4 ? op_names[op] : "?";
}

const char *monitor_severity_name(enum monitor_severity s)
{
    return (unsigned)s < 3 ? severity_names[s] : "?";
}

static int lookup(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (!strcmp(s, names[i]))
            return (int)i;
    return -1;
}

/* p points at "{{": the variable of "{{ $name }}" (blanks optional) and *end
 * just past it, or -1 when it is anything else. Go's templates, which
 * Prometheus uses, would run any action here; three fixed names are all a
 * summary needs, and refusing the rest keeps "{{ .Labels }}" from being
 * printed as it stands on a pager. */
static int template_var(const char *p, const char **end)
{
    p += 2;
    while (*p == ' ')
        p++;
    for (size_t i = 0; i < sizeof(vars) / sizeof(*vars); i++) {
        size_t n = strlen(vars[i]);
        if (strncmp(p, vars[i], n) != 0)
            continue;
        const char *q = p + n;
        while (*q == ' ')
            q++;
        if (q[0] == '}' && q[1] == '}') {
            *end = q + 2;
            return (int)i;
        }
    }
    return -1;
}

static void add_value(struct buf *out, const char *v)
{
    size_t n = strnlen(v, VALUE_MAX);
    char *cut = xstrndup(v, n);
    buf_add_escaped(out, cut);
    if (v[n])
        buf_adds(out, "...");
    free(cut);
}

void monitor_summary_render(const char *tmpl, const char *value, const char *env,
                            const char *release, struct buf *out)
{
    const char *val[3] = {value ? value : "", env ? env : "", release ? release : "none"};
    const char *p = tmpl, *open, *end;
    while ((open = strstr(p, "{{"))) {
        buf_add(out, p, (size_t)(open - p));
        int v = template_var(open, &end);
        if (v < 0) { /* not from a checked rule: keep it visible, not interpreted */
            buf_add(out, "{{", 2);
            p = open + 2;
            continue;
        }
        add_value(out, val[v]);
        p = end;
    }
    buf_adds(out, p);
    if (!out->data)
        buf_add(out, "", 0);
}

int monitor_rule_applies(const struct monitor_rule *r, const char *env)
{
    for (size_t i = 0; i < r->nenvironments; i++)
        if (fnmatch(r->environments[i], env, 0) == 0)
            return 1;
    return 0;
}

static void rule_clear(struct monitor_rule *r)
{
    for (size_t i = 0; i < r->nenvironments; i++)
        free(r->environments[i]);
    free(r->environments);
    free(r->name);
    free(r->summary);
}

void monitor_rules_free(struct monitor_rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        rule_clear(&r->v[i]);
    free(r->v);
    free(r->file);
    free(r);
}

/* ---- the schema ------------------------------------------------------------------ */

static const char *text_of(const struct yaml_node *v)
{
    const char *s = yaml_scalar(v);
    return s ? s : "(not a scalar)";
}

static int name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > NAME_MAX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return 0;
    return 1;
}

/* Environment names are lowercase letters, digits, '-' and '_'
 * (env_name_check); a pattern adds fnmatch's * ? [ ] and !. */
static int pattern_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > PATTERN_MAX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
              strchr("-_*?[]!", s[i])))
            return 0;
    return 1;
}

/* A number as YAML 1.2's core schema writes one, finite: "0.05", "1", "2e3",
 * "-1.5"; not ".inf", not "0x10", not quoted. */
static int want_number(const struct yaml_node *v, double *out)
{
    const char *s = yaml_scalar(v), *p = s;
    int digits = 0;
    if (!s || v->style != YAML_NODE_PLAIN)
        return -1;
    if (*p == '+' || *p == '-')
        p++;
    for (; isdigit((unsigned char)*p); p++)
        digits++;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            digits++;
    if (!digits)
        return -1;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p)
        return -1;
    char *end = NULL;
    double d = strtod(s, &end);
    if (end != p || !isfinite(d))
        return -1;
    *out = d;
    return 0;
}

/* "30s", "1m", "1h30m", "250ms" (duration_parse), or "0". */
static int want_duration(const struct yaml_node *v, int64_t *ms)
{
    const char *s = yaml_scalar(v);
    int64_t d = 0;
    if (!s || v->len > 32)
        return -1;
    if (strcmp(s, "0") != 0 && duration_parse(s, &d) != 0)
        return -1;
    if (d < 0 || d > MONITOR_DURATION_MAX_MS)
        return -1;
    *ms = d;
    return 0;
}

/* Checks a summary template: printable, one line, bounded, and every "{{"
 * one of the three variables. */
static int check_summary(const char *rule, const struct yaml_node *v, struct sw_err *err)
{
    const char *s = yaml_scalar(v), *p, *open, *end;
    if (!s || !*s || !text_valid(s, MONITOR_SUMMARY_MAX, 0))
        return yaml_err(err, v,
                        "rule '%s': summary: expected one line of printable text of at most %d "
                        "bytes",
                        rule, MONITOR_SUMMARY_MAX);
    for (p = s; (open = strstr(p, "{{")); p = end)
        if (template_var(open, &end) < 0) {
            const char *close = strstr(open + 2, "}}");
            int n = close ? (int)(close + 2 - open) : (int)strlen(open);
            return yaml_err(err, v,
                            "rule '%s': summary: unknown template '%.*s%s' (expected {{ $value "
                            "}}, {{ $env }} or {{ $release }})",
                            rule, n > 60 ? 60 : n, open, n > 60 ? "..." : "");
        }
    return 0;
}

static int parse_environments(const char *rule, struct monitor_rule *r, const struct yaml_node *v,
                              struct sw_err *err)
{
    if (v->kind != YAML_NODE_SEQ || v->len < 1 || v->len > MONITOR_RULE_ENVS_MAX)
        return yaml_err(err, v,
                        "rule '%s': environments: expected a list of 1 to %d environment names "
                        "or patterns, such as [\"*\"] or [staging, \"prod-*\"]",
                        rule, MONITOR_RULE_ENVS_MAX);
    r->environments = xcalloc(v->len, sizeof(*r->environments));
    for (size_t i = 0; i < v->len; i++) {
        const char *p = yaml_scalar(v->items[i]);
        if (!pattern_valid(p))
            return yaml_err(err, v->items[i],
                            "rule '%s': environments: expected an environment name or pattern "
                            "(lowercase letters, digits, '-', '_' and the wildcards * ? [ ] !, "
                            "at most %d), got '%s'",
                            rule, PATTERN_MAX_LEN, text_of(v->items[i]));
        for (size_t j = 0; j < r->nenvironments; j++)
            if (!strcmp(r->environments[j], p))
                return yaml_err(err, v->items[i], "rule '%s': environments: '%s' is listed twice",
                                rule, p);
        r->environments[r->nenvironments++] = xstrdup(p);
    }
    return 0;
}

#define RULE_KEYS                                                                                  \
    "name, environments, signal, op, threshold, for, keep_firing_for, min_requests, severity or "  \
    "summary"

/* The keys of one rule, found before their values are read, so that checks
 * across keys (threshold against signal) point at the right node. */
struct rule_keys {
    const struct yaml_pair *name, *environments, *signal, *op, *threshold, *for_, *keep,
        *min_requests, *severity, *summary;
};

static int parse_rule(struct monitor_rule *r, const struct yaml_node *m, size_t index,
                      struct sw_err *err)
{
    struct rule_keys k = {0};
    const struct yaml_pair **slot;
    int rc;

    if (m->kind != YAML_NODE_MAP)
        return yaml_err(err, m,
                        "rules: expected each rule to be a mapping (name: ..., signal: ...)");
    r->line = m->line;
    r->col = m->col;
    for (size_t i = 0; i < m->len; i++) {
        const char *key = m->pairs[i].key->str;
        slot = !strcmp(key, "name")              ? &k.name
               : !strcmp(key, "environments")    ? &k.environments
               : !strcmp(key, "signal")          ? &k.signal
               : !strcmp(key, "op")              ? &k.op
               : !strcmp(key, "threshold")       ? &k.threshold
               : !strcmp(key, "for")             ? &k.for_
               : !strcmp(key, "keep_firing_for") ? &k.keep
               : !strcmp(key, "min_requests")    ? &k.min_requests
               : !strcmp(key, "severity")        ? &k.severity
               : !strcmp(key, "summary")         ? &k.summary
                                                 : NULL;
        if (!slot) /* point at the key: it is what is wrong */
            return yaml_err(err, m->pairs[i].key,
                            "rule %zu: unknown key '%s' (expected " RULE_KEYS ")", index + 1, key);
        *slot = &m->pairs[i];
    }
    if (!k.name)
        return yaml_err(err, m, "rule %zu: missing key 'name'", index + 1);
    if (!name_valid(yaml_scalar(k.name->value)))
        return yaml_err(err, k.name->value,
                        "rule %zu: name: expected lowercase letters, digits and '-' (at most %d), "
                        "got '%s'",
                        index + 1, NAME_MAX_LEN, text_of(k.name->value));
    r->name = xstrdup(k.name->value->str);
    const char *name = r->name;

    if (!k.signal)
        return yaml_err(err, m, "rule '%s': missing key 'signal'", name);
    int sig = lookup(yaml_scalar(k.signal->value), signal_names, NSIGNAL_NAMES);
    if (sig < 0)
        return yaml_err(err, k.signal->value,
                        "rule '%s': signal: expected error_ratio, latency_p50, latency_p95, "
                        "latency_p99, request_rate, cpu, memory, disk_io or deployment, got '%s'",
                        name, text_of(k.signal->value));
    r->signal = (enum monitor_signal)sig;

    if (!k.severity)
        return yaml_err(err, m, "rule '%s': missing key 'severity'", name);
    int sev = lookup(yaml_scalar(k.severity->value), severity_names, 3);
    if (sev < 0)
        return yaml_err(err, k.severity->value,
                        "rule '%s': severity: expected critical, warning or info, got '%s'", name,
                        text_of(k.severity->value));
    r->severity = (enum monitor_severity)sev;

    if (k.environments) {
        if ((rc = parse_environments(name, r, k.environments->value, err)))
            return rc;
    } else {
        r->environments = xcalloc(1, sizeof(*r->environments));
        r->environments[r->nenvironments++] = xstrdup("*");
    }

    if (k.keep && want_duration(k.keep->value, &r->keep_firing_for_ms) < 0)
        return yaml_err(err, k.keep->value,
                        "rule '%s': keep_firing_for: expected a duration such as 0, 30s, 5m or "
                        "1h30m (at most 30d), got '%s'",
                        name, text_of(k.keep->value));

    if (k.summary) {
        if ((rc = check_summary(name, k.summary->value, err)))
            return rc;
        r->summary = xstrdup(k.summary->value->str);
    } else {
        r->summary = r->signal == MONITOR_SIGNAL_DEPLOYMENT
                         ? xasprintf("%s: {{ $env }}: {{ $value }} of {{ $release }}", name)
                         : xasprintf("%s: {{ $value }} on {{ $env }} ({{ $release }})", name);
    }

    if (r->signal == MONITOR_SIGNAL_DEPLOYMENT) {
        /* An event has nothing to compare and nothing to wait for. */
        const struct yaml_pair *extra = k.op          ? k.op
                                        : k.threshold ? k.threshold
                                        : k.for_      ? k.for_
                                                      : k.min_requests;
        if (extra)
            return yaml_err(err, extra->key,
                            "rule '%s': %s: a deployment rule is an event, sent after every "
                            "deploy, switch and rollback; it has no op, threshold, for or "
                            "min_requests",
                            name, extra->key->str);
        return 0;
    }

    if (!k.op)
        return yaml_err(err, m, "rule '%s': missing key 'op' (>, >=, < or <=)", name);
    int op = lookup(yaml_scalar(k.op->value), op_names, 4);
    if (op < 0)
        return yaml_err(err, k.op->value,
                        "rule '%s': op: expected \">\", \">=\", \"<\" or \"<=\" (quoted), got '%s'",
                        name, text_of(k.op->value));
    r->op = (enum monitor_op)op;

    if (!k.threshold)
        return yaml_err(err, m, "rule '%s': missing key 'threshold'", name);
    int ratio = r->signal == MONITOR_SIGNAL_ERROR_RATIO || r->signal == MONITOR_SIGNAL_CPU ||
                r->signal == MONITOR_SIGNAL_MEMORY;
    if (want_number(k.threshold->value, &r->threshold) < 0 || r->threshold < 0 ||
        (ratio && r->threshold > 1))
        return yaml_err(err, k.threshold->value,
                        ratio ? "rule '%s': threshold: %s is a ratio: expected a number from 0 "
                                "to 1 (0.05 is 5 %%), got '%s'"
                              : "rule '%s': threshold: expected a number of at least 0 (%s is "
                                "in %s), got '%s'",
                        name, signal_names[r->signal],
                        ratio                                      ? text_of(k.threshold->value)
                        : r->signal <= MONITOR_SIGNAL_LATENCY_P99  ? "seconds"
                        : r->signal == MONITOR_SIGNAL_REQUEST_RATE ? "requests per second"
                                                                   : "bytes per second",
                        text_of(k.threshold->value));

    if (k.for_ && want_duration(k.for_->value, &r->for_ms) < 0)
        return yaml_err(err, k.for_->value,
                        "rule '%s': for: expected a duration such as 0, 30s, 1m or 1h30m (at "
                        "most 30d), got '%s'",
                        name, text_of(k.for_->value));

    if (k.min_requests &&
        yaml_int(k.min_requests->value, 0, MIN_REQUESTS_MAX, &r->min_requests) < 0)
        return yaml_err(err, k.min_requests->value,
                        "rule '%s': min_requests: expected a whole number from 0 to %d, got '%s'",
                        name, MIN_REQUESTS_MAX, text_of(k.min_requests->value));
    return 0;
}

static int parse_tree(const struct yaml_doc *doc, struct monitor_rules *out, struct sw_err *err)
{
    const struct yaml_node *root = doc->root, *rules;
    if (root->kind != YAML_NODE_MAP)
        return yaml_err(err, root, "expected a mapping with the key 'rules' (a list of rules)");
    for (size_t i = 0; i < root->len; i++)
        if (strcmp(root->pairs[i].key->str, "rules") != 0)
            return yaml_err(err, root->pairs[i].key, "unknown key '%s' (expected rules)",
                            root->pairs[i].key->str);
    rules = yaml_map_get(root, "rules");
    if (!rules)
        return yaml_err(err, root, "missing key 'rules' (a list of rules; [] for none)");
    if (rules->kind != YAML_NODE_SEQ || rules->len > MONITOR_RULES_MAX)
        return yaml_err(err, rules, "rules: expected a list of at most %d rules ([] for none)",
                        MONITOR_RULES_MAX);
    out->v = xcalloc(rules->len ? rules->len : 1, sizeof(*out->v));
    for (size_t i = 0; i < rules->len; i++) {
        struct monitor_rule *r = &out->v[out->n++];
        int rc = parse_rule(r, rules->items[i], i, err);
        if (rc)
            return rc;
        for (size_t j = 0; j + 1 < out->n; j++)
            if (!strcmp(out->v[j].name, r->name))
                return yaml_err(err, yaml_map_get(rules->items[i], "name"),
                                "rule '%s': the name is already used by the rule at %zu:%zu",
                                r->name, out->v[j].line, out->v[j].col);
    }
    return 0;
}

/* Small bounds: an alerts file is a page of rules, and the fuzzer feeds it. */
static const struct yaml_limits limits = {256 << 10, 20000, 16, 4096};

static int parse_doc(struct yaml_doc *doc, const char *name, struct monitor_rules **out,
                     struct sw_err *err)
{
    struct monitor_rules *r = xcalloc(1, sizeof(*r));
    r->file = xstrdup(name);
    int rc = parse_tree(doc, r, err);
    yaml_doc_free(doc);
    if (rc) {
        monitor_rules_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int monitor_rules_parse(const char *data, size_t len, const char *name, struct monitor_rules **out,
                        struct sw_err *err)
{
    struct yaml_doc *doc = NULL;
    *out = NULL;
    int rc = yaml_doc_parse(data, len, name, &limits, &doc, err);
    return rc ? rc : parse_doc(doc, name, out, err);
}

int monitor_rules_load(const char *path, struct monitor_rules **out, struct sw_err *err)
{
    struct yaml_doc *doc = NULL;
    *out = NULL;
    int rc = yaml_doc_load(path, &limits, &doc, err);
    if (rc == SW_ENOTFOUND) {
        if (err)
            *err = (struct sw_err){0};
        *out = monitor_rules_default();
        return 0;
    }
    return rc ? rc : parse_doc(doc, path, out, err);
}

struct monitor_rules *monitor_rules_default(void)
{
    struct monitor_rules *r = NULL;
    struct sw_err err = {0};
    /* A test parses them; failing here is a bug in the text above. */
    if (monitor_rules_parse(monitor_rules_default_yaml, strlen(monitor_rules_default_yaml),
                            "(default rules)", &r, &err) != 0)
        abort();
    free(r->file);
    r->file = NULL;
    return r;
}
