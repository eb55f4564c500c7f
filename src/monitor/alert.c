/*
 * Alert states: each measured rule, per environment, moves through
 * Prometheus's states on the samples the caller evaluates, with the caller's
 * clock, so a test drives it to the millisecond. The transitions follow
 * Prometheus's AlertingRule.Eval (rules/alerting.go) step for step:
 *
 *   condition holds   inactive -> pending (activeAt = now); pending -> firing
 *                     once now - activeAt >= for, in the same evaluation when
 *                     for is 0; a firing alert stays firing and forgets any
 *                     keep_firing_for countdown.
 *   condition fails   pending -> inactive (never notified); firing -> resolved
 *                     (inactive, endsAt = now) unless keep_firing_for is set
 *                     and now - (when it first failed) < keep_firing_for.
 *
 * One addition, because slipway judges a release by its own traffic: a rule
 * with fewer requests in the window than its min_requests (or whose signal
 * was not measured) has no verdict. Its pending alert is cleared, since the
 * condition was not seen to hold for `for`, but a firing alert stays firing
 * untouched: a release that drove its users away is not thereby fixed, and
 * "not enough traffic" must never read as "resolved". The PromQL twin in
 * contrib/prometheus cannot say this (an `and` on the request count makes
 * the series vanish, which Prometheus resolves); docs/monitor.md says so.
 */
#include "monitor/monitor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_VALUE_MAX 256

struct env_alerts {
    char *env;
    struct monitor_alert **by_rule; /* one per rule; NULL where the rule does not apply */
};

struct monitor_alerts {
    const struct monitor_rules *rules;
    struct env_alerts *envs;
    size_t nenvs, capenvs;
    struct monitor_alert **all; /* in the order created */
    size_t nall, capall;
};

/* ---- transitions ----------------------------------------------------------------- */

void monitor_transitions_reset(struct monitor_transitions *t)
{
    for (size_t i = 0; i < t->n; i++) {
        struct monitor_transition *x = &t->v[i];
        for (size_t j = 0; j < x->nlabels; j++) {
            free(x->labels[j].name);
            free(x->labels[j].value);
        }
        free(x->summary);
        free(x->release);
    }
    free(t->v);
    *t = (struct monitor_transitions)MONITOR_TRANSITIONS_INIT;
}

static struct monitor_transition *push(struct monitor_transitions *t)
{
    if (t->n == t->cap)
        t->v = xrealloc(t->v, (t->cap = t->cap ? t->cap * 2 : 8) * sizeof(*t->v));
    struct monitor_transition *x = &t->v[t->n++];
    memset(x, 0, sizeof(*x));
    return x;
}

/* A label value as Alertmanager may be sent it: printable UTF-8, bounded;
 * anything else (a release id read from a hostile store) escaped. */
static char *label_value(const char *s)
{
    if (text_valid(s, LABEL_VALUE_MAX, 0))
        return xstrdup(s);
    struct buf b = BUF_INIT;
    char *cut = xstrndup(s, LABEL_VALUE_MAX);
    buf_add_escaped(&b, cut);
    free(cut);
    return buf_detach(&b, NULL);
}

static void add_label(struct monitor_transition *x, const char *name, const char *value)
{
    x->labels[x->nlabels].name = xstrdup(name);
    x->labels[x->nlabels++].value = label_value(value);
}

/* Alertmanager's fingerprint of a label set (prometheus/common model's
 * labelSetToFingerprint): FNV-1a 64 over the labels sorted by name, each
 * name and value followed by the byte 0xff, which UTF-8 never holds. So the
 * fingerprint slipway records is the one Alertmanager shows and sends back
 * in its webhooks. */
static void fingerprint(const struct monitor_label *l, size_t n, char out[17])
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        const char *parts[2] = {l[i].name, l[i].value};
        for (int p = 0; p < 2; p++) {
            for (const unsigned char *c = (const unsigned char *)parts[p]; *c; c++)
                h = (h ^ *c) * 1099511628211ULL;
            h = (h ^ 0xff) * 1099511628211ULL;
        }
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

void monitor_labels_fingerprint(const struct monitor_label *l, size_t n, char out[17])
{
    fingerprint(l, n, out);
}

/* ---- states ---------------------------------------------------------------------- */

struct monitor_alerts *monitor_alerts_new(const struct monitor_rules *rules)
{
    struct monitor_alerts *a = xcalloc(1, sizeof(*a));
    a->rules = rules;
    return a;
}

void monitor_alerts_free(struct monitor_alerts *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nall; i++) {
        free(a->all[i]->env);
        free(a->all[i]->release);
        free(a->all[i]->summary);
        free(a->all[i]);
    }
    for (size_t i = 0; i < a->nenvs; i++) {
        free(a->envs[i].env);
        free(a->envs[i].by_rule);
    }
    free(a->envs);
    free(a->all);
    free(a);
}

size_t monitor_alerts_count(const struct monitor_alerts *a)
{
    return a->nall;
}

const struct monitor_alert *monitor_alerts_get(const struct monitor_alerts *a, size_t i)
{
    return i < a->nall ? a->all[i] : NULL;
}

const struct monitor_alert *monitor_alerts_find(const struct monitor_alerts *a, const char *name,
                                                const char *env)
{
    for (size_t i = 0; i < a->nall; i++)
        if (!strcmp(a->all[i]->rule->name, name) && !strcmp(a->all[i]->env, env))
            return a->all[i];
    return NULL;
}

/* The labels of a measured rule's alert, sorted by name. */
static void alert_labels(const struct monitor_alert *e, struct monitor_transition *x)
{
    add_label(x, "alertname", e->rule->name);
    add_label(x, "env", e->env);
    add_label(x, "severity", monitor_severity_name(e->rule->severity));
}

static struct env_alerts *env_get(struct monitor_alerts *a, const char *env, struct sw_err *err)
{
    for (size_t i = 0; i < a->nenvs; i++)
        if (!strcmp(a->envs[i].env, env))
            return &a->envs[i];
    if (a->nenvs >= MONITOR_ENVS_MAX) {
        sw_err_set(err, SW_ENOSPC, "alert states: more than %d environments", MONITOR_ENVS_MAX);
        return NULL;
    }
    if (a->nenvs == a->capenvs)
        a->envs =
            xrealloc(a->envs, (a->capenvs = a->capenvs ? a->capenvs * 2 : 8) * sizeof(*a->envs));
    struct env_alerts *ea = &a->envs[a->nenvs++];
    ea->env = xstrdup(env);
    ea->by_rule = xcalloc(a->rules->n ? a->rules->n : 1, sizeof(*ea->by_rule));
    for (size_t r = 0; r < a->rules->n; r++) {
        const struct monitor_rule *rule = &a->rules->v[r];
        if (rule->signal == MONITOR_SIGNAL_DEPLOYMENT || !monitor_rule_applies(rule, env))
            continue;
        struct monitor_alert *e = xcalloc(1, sizeof(*e));
        e->rule = rule;
        e->env = xstrdup(env);
        e->value = e->last = NAN;
        struct monitor_transition lx = {0};
        alert_labels(e, &lx);
        fingerprint(lx.labels, lx.nlabels, e->fingerprint);
        for (size_t j = 0; j < lx.nlabels; j++) {
            free(lx.labels[j].name);
            free(lx.labels[j].value);
        }
        if (a->nall == a->capall)
            a->all =
                xrealloc(a->all, (a->capall = a->capall ? a->capall * 2 : 16) * sizeof(*a->all));
        a->all[a->nall++] = e;
        ea->by_rule[r] = e;
    }
    return ea;
}

static int holds(double v, enum monitor_op op, double t)
{
    switch (op) {
    case MONITOR_OP_GT:
        return v > t;
    case MONITOR_OP_GE:
        return v >= t;
    case MONITOR_OP_LT:
        return v < t;
    case MONITOR_OP_LE:
        return v <= t;
    }
    return 0;
}

static void emit(const struct monitor_alert *e, enum monitor_transition_kind kind,
                 struct monitor_transitions *out)
{
    struct monitor_transition *x = push(out);
    x->kind = kind;
    x->rule = e->rule;
    x->verdict = e->verdict;
    alert_labels(e, x);
    x->summary = e->summary ? xstrdup(e->summary) : NULL;
    x->value = e->value;
    x->last = e->last;
    x->requests = e->requests;
    x->release = e->release ? xstrdup(e->release) : NULL;
    x->at_ms = e->last_eval_ms;
    switch (kind) {
    case MONITOR_TRANSITION_PENDING:
    case MONITOR_TRANSITION_CLEARED:
        x->starts_ms = e->active_ms;
        break;
    case MONITOR_TRANSITION_RESOLVED:
        x->ends_ms = e->resolved_ms;
        /* fall through */
    default:
        x->starts_ms =
            e->state == MONITOR_FIRING || kind == MONITOR_TRANSITION_RESOLVED ? e->fired_ms : 0;
    }
    memcpy(x->fingerprint, e->fingerprint, sizeof(x->fingerprint));
}

/* Remembers the breach: its value, the release it happened on, the summary
 * rendered with both (Prometheus re-renders annotations on every evaluation
 * the condition holds, and keeps the last ones after). */
static void breach(struct monitor_alert *e, double v, const char *release)
{
    char num[64];
    struct buf b = BUF_INIT;
    e->value = v;
    free(e->release);
    e->release = release ? xstrdup(release) : NULL;
    snprintf(num, sizeof(num), "%g", v);
    monitor_summary_render(e->rule->summary, num, e->env, release, &b);
    free(e->summary);
    e->summary = buf_detach(&b, NULL);
}

static void step(struct monitor_alert *e, const struct monitor_sample *s, int64_t now,
                 struct monitor_transitions *out)
{
    const struct monitor_rule *r = e->rule;
    double v = s->value[r->signal];
    enum monitor_verdict was = e->verdict;
    int kind = -1;

    if (now < e->last_eval_ms) /* a clock stepped back: no time passed */
        now = e->last_eval_ms;
    e->last_eval_ms = now;
    e->last = v;
    e->requests = s->requests;
    e->verdict = isnan(v)                                  ? MONITOR_VERDICT_NO_DATA
                 : s->requests < (uint64_t)r->min_requests ? MONITOR_VERDICT_LOW_TRAFFIC
                 : holds(v, r->op, r->threshold)           ? MONITOR_VERDICT_BREACH
                                                           : MONITOR_VERDICT_OK;
    switch (e->verdict) {
    case MONITOR_VERDICT_BREACH:
        e->last_verdict_ms = now;
        e->keep_firing_ms = 0;
        breach(e, v, s->release);
        if (e->state == MONITOR_INACTIVE) {
            e->state = MONITOR_PENDING;
            e->active_ms = now;
            kind = MONITOR_TRANSITION_PENDING;
        }
        if (e->state == MONITOR_PENDING && now - e->active_ms >= r->for_ms) {
            e->state = MONITOR_FIRING;
            e->fired_ms = now;
            kind = MONITOR_TRANSITION_FIRING;
        }
        break;
    case MONITOR_VERDICT_OK:
        e->last_verdict_ms = now;
        if (e->state == MONITOR_PENDING) {
            e->state = MONITOR_INACTIVE;
            kind = MONITOR_TRANSITION_CLEARED;
        } else if (e->state == MONITOR_FIRING) {
            if (!e->keep_firing_ms)
                e->keep_firing_ms = now;
            if (r->keep_firing_for_ms > 0 && now - e->keep_firing_ms < r->keep_firing_for_ms)
                break;
            e->state = MONITOR_INACTIVE;
            e->resolved_ms = now;
            e->keep_firing_ms = 0;
            kind = MONITOR_TRANSITION_RESOLVED;
        }
        break;
    default: /* no verdict */
        if (e->state == MONITOR_PENDING) {
            e->state = MONITOR_INACTIVE;
            kind = MONITOR_TRANSITION_CLEARED;
        } else if (e->verdict != was) {
            kind = MONITOR_TRANSITION_NO_VERDICT;
        }
    }
    if (kind >= 0)
        emit(e, (enum monitor_transition_kind)kind, out);
}

int monitor_alerts_eval(struct monitor_alerts *a, const char *env, const struct monitor_sample *s,
                        int64_t now_ms, struct monitor_transitions *out, struct sw_err *err)
{
    if (!env || !*env || !text_valid(env, 63, 0))
        return sw_err_set(err, SW_EINVAL, "alert states: invalid environment name");
    if (now_ms <= 0)
        return sw_err_set(err, SW_EINVAL, "alert states: a time before 1970");
    struct env_alerts *ea = env_get(a, env, err);
    if (!ea)
        return SW_ENOSPC;
    for (size_t r = 0; r < a->rules->n; r++)
        if (ea->by_rule[r])
            step(ea->by_rule[r], s, now_ms, out);
    return 0;
}

/* ---- deployment events --------------------------------------------------------------- */

void monitor_rules_deployed(const struct monitor_rules *r, const char *env, const char *action,
                            const char *release, int64_t now_ms, struct monitor_transitions *out)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct monitor_rule *rule = &r->v[i];
        if (rule->signal != MONITOR_SIGNAL_DEPLOYMENT || !monitor_rule_applies(rule, env))
            continue;
        struct monitor_transition *x = push(out);
        struct buf b = BUF_INIT;
        x->kind = MONITOR_TRANSITION_EVENT;
        x->rule = rule;
        /* Sorted by name; release and action make each deploy an alert of
         * its own, not a repeat Alertmanager would fold into the last one. */
        add_label(x, "action", action);
        add_label(x, "alertname", rule->name);
        add_label(x, "env", env);
        if (release)
            add_label(x, "release", release);
        add_label(x, "severity", monitor_severity_name(rule->severity));
        monitor_summary_render(rule->summary, action, env, release, &b);
        x->summary = buf_detach(&b, NULL);
        x->value = x->last = NAN;
        x->release = release ? xstrdup(release) : NULL;
        x->at_ms = x->starts_ms = now_ms;
        x->ends_ms =
            now_ms + (rule->keep_firing_for_ms ? rule->keep_firing_for_ms : MONITOR_EVENT_HOLD_MS);
        fingerprint(x->labels, x->nlabels, x->fingerprint);
    }
}
