/*
 * on: — the events of a workflow, checked against GitHub's schema for each
 * event (actions/languageservices, workflow-v1.0.json, "on-strict"): the
 * keys each event takes and the activity types it knows. Only push,
 * workflow_dispatch and workflow_call mean something to slipway; every other
 * event is accepted when well-formed and never triggers a run.
 */
#include "pipeline/internal.h"

#include <stdlib.h>
#include <string.h>

/* Activity types, as GitHub lists them per event. */
static const char *const t_bpr[] = {"created", "edited", "deleted", NULL};
static const char *const t_check_run[] = {"completed", "created", "rerequested", "requested_action",
                                          NULL};
static const char *const t_check_suite[] = {"completed", NULL};
static const char *const t_discussion[] = {
    "created",   "edited", "deleted",  "transferred",      "pinned",   "unpinned",   "labeled",
    "unlabeled", "locked", "unlocked", "category_changed", "answered", "unanswered", NULL};
static const char *const t_issues[] = {
    "opened", "edited",   "deleted",    "transferred",  "pinned",  "unpinned",
    "closed", "reopened", "assigned",   "unassigned",   "labeled", "unlabeled",
    "locked", "unlocked", "milestoned", "demilestoned", NULL};
static const char *const t_merge_group[] = {"checks_requested", NULL};
static const char *const t_milestone[] = {"created", "closed", "opened", "edited", "deleted", NULL};
static const char *const t_project[] = {"created", "closed", "reopened", "edited", "deleted", NULL};
static const char *const t_project_card[] = {"created", "moved",   "converted",
                                             "edited",  "deleted", NULL};
static const char *const t_project_column[] = {"created", "updated", "moved", "deleted", NULL};
static const char *const t_pr[] = {"assigned",
                                   "unassigned",
                                   "labeled",
                                   "unlabeled",
                                   "opened",
                                   "edited",
                                   "closed",
                                   "reopened",
                                   "synchronize",
                                   "converted_to_draft",
                                   "ready_for_review",
                                   "locked",
                                   "unlocked",
                                   "review_requested",
                                   "review_request_removed",
                                   "auto_merge_enabled",
                                   "auto_merge_disabled",
                                   "enqueued",
                                   "dequeued",
                                   "milestoned",
                                   "demilestoned",
                                   NULL};
static const char *const t_review[] = {"submitted", "edited", "dismissed", NULL};
static const char *const t_package[] = {"published", "updated", NULL};
static const char *const t_release[] = {"published", "unpublished", "created",  "edited",
                                        "deleted",   "prereleased", "released", NULL};
static const char *const t_watch[] = {"started", NULL};
static const char *const t_workflow_run[] = {"requested", "completed", "in_progress", NULL};
static const char *const t_any[] = {NULL}; /* repository_dispatch: any type name */

static const char *const k_types[] = {"types", NULL};
static const char *const k_types_branches[] = {"types", "branches", "branches-ignore", NULL};
static const char *const k_pr[] = {"types", "branches",     "branches-ignore",
                                   "paths", "paths-ignore", NULL};
static const char *const k_workflow_run[] = {"types", "workflows", "branches", "branches-ignore",
                                             NULL};
static const char *const k_push[] = {"branches", "branches-ignore", "tags", "tags-ignore",
                                     "paths",    "paths-ignore",    NULL};
static const char *const k_dispatch[] = {"inputs", NULL};
static const char *const k_call[] = {"inputs", "outputs", "secrets", NULL};
static const char *const k_none[] = {NULL};

enum ev_special { EV_PLAIN, EV_PUSH, EV_DISPATCH, EV_CALL, EV_SCHEDULE };

/* One table: every event GitHub knows, the keys it takes (k_none: only
 * null) and its activity types (NULL: it has none). */
static const struct event {
    const char *name;
    const char *const *keys;
    const char *const *types;
    enum ev_special special;
} events[] = {
    {"branch_protection_rule", k_types, t_bpr, EV_PLAIN},
    {"check_run", k_types, t_check_run, EV_PLAIN},
    {"check_suite", k_types, t_check_suite, EV_PLAIN},
    {"create", k_none, NULL, EV_PLAIN},
    {"delete", k_none, NULL, EV_PLAIN},
    {"deployment", k_none, NULL, EV_PLAIN},
    {"deployment_status", k_none, NULL, EV_PLAIN},
    {"discussion", k_types, t_discussion, EV_PLAIN},
    {"discussion_comment", k_types, t_bpr, EV_PLAIN},
    {"fork", k_none, NULL, EV_PLAIN},
    {"gollum", k_none, NULL, EV_PLAIN},
    {"issue_comment", k_types, t_bpr, EV_PLAIN},
    {"issues", k_types, t_issues, EV_PLAIN},
    {"label", k_types, t_bpr, EV_PLAIN},
    {"merge_group", k_types_branches, t_merge_group, EV_PLAIN},
    {"milestone", k_types, t_milestone, EV_PLAIN},
    {"page_build", k_none, NULL, EV_PLAIN},
    {"project", k_types, t_project, EV_PLAIN},
    {"project_card", k_types, t_project_card, EV_PLAIN},
    {"project_column", k_types, t_project_column, EV_PLAIN},
    {"public", k_none, NULL, EV_PLAIN},
    {"pull_request", k_pr, t_pr, EV_PLAIN},
    {"pull_request_comment", k_types, t_bpr, EV_PLAIN},
    {"pull_request_review", k_types, t_review, EV_PLAIN},
    {"pull_request_review_comment", k_types, t_bpr, EV_PLAIN},
    {"pull_request_target", k_pr, t_pr, EV_PLAIN},
    {"push", k_push, NULL, EV_PUSH},
    {"registry_package", k_types, t_package, EV_PLAIN},
    {"release", k_types, t_release, EV_PLAIN},
    {"repository_dispatch", k_types, t_any, EV_PLAIN},
    {"schedule", k_none, NULL, EV_SCHEDULE},
    {"status", k_none, NULL, EV_PLAIN},
    {"watch", k_types, t_watch, EV_PLAIN},
    {"workflow_call", k_call, NULL, EV_CALL},
    {"workflow_dispatch", k_dispatch, NULL, EV_DISPATCH},
    {"workflow_run", k_workflow_run, t_workflow_run, EV_PLAIN},
};
#define N_EVENTS (sizeof(events) / sizeof(events[0]))

static const char *const n_giv[] = {"github", "inputs", "vars", NULL};
static const char *const n_givj[] = {"github", "inputs", "vars", "jobs", NULL};
static const struct wf_ctx ctx_giv = {n_giv, PIPELINE_EXPR_NO_STATUS | PIPELINE_EXPR_NO_HASHFILES};
static const struct wf_ctx ctx_givj = {n_givj,
                                       PIPELINE_EXPR_NO_STATUS | PIPELINE_EXPR_NO_HASHFILES};

static const struct event *find_event(const char *name)
{
    for (size_t i = 0; i < N_EVENTS; i++)
        if (strcmp(events[i].name, name) == 0)
            return &events[i];
    return NULL;
}

static const struct event *known_event(struct wf_ld *ld, const struct yaml_node *k)
{
    const struct event *e = k->kind == YAML_NODE_SCALAR ? find_event(k->str) : NULL;

    if (!e) {
        struct buf b = BUF_INIT;
        for (size_t i = 0; i < N_EVENTS; i++)
            buf_addf(&b, "%s%s", i ? ", " : "", events[i].name);
        if (k->kind == YAML_NODE_SCALAR)
            wf_error(ld, k, "unknown event '%s' (events: %s)", k->str, b.data);
        else
            wf_error(ld, k, "an event must be named by a string, not %s", wf_kind(k));
        buf_free(&b);
    }
    return e;
}

static void add_event(struct wf_ld *ld, const struct yaml_node *k)
{
    struct pipeline_on *on = &ld->wf->on;
    for (size_t i = 0; i < on->n_events; i++)
        if (strcmp(on->events[i], k->str) == 0) {
            wf_error(ld, k, "event '%s' is listed twice", k->str);
            return;
        }
    on->events = xrealloc(on->events, (on->n_events + 1) * sizeof(*on->events));
    on->events[on->n_events++] = xstrdup(k->str);
}

static void check_types(struct wf_ld *ld, const struct event *e, const struct yaml_node *n)
{
    const struct yaml_node *const *items, *one;
    long count = wf_scalars(ld, n, "types", &items, &one);

    for (long i = 0; i < count && e->types != t_any; i++) {
        size_t j = 0;
        while (e->types[j] && strcmp(e->types[j], items[i]->str) != 0)
            j++;
        if (!e->types[j]) {
            struct buf b = BUF_INIT;
            for (j = 0; e->types[j]; j++)
                buf_addf(&b, "%s%s", j ? ", " : "", e->types[j]);
            wf_error(ld, items[i], "unknown activity type '%s' of %s (known: %s)", items[i]->str,
                     e->name, b.data);
            buf_free(&b);
        }
    }
}

/* One filter list of on.<event>: every pattern checked where it is written. */
static struct pipeline_filter *load_filter(struct wf_ld *ld, const struct yaml_node *map,
                                           const char *key)
{
    const struct yaml_node *n = yaml_map_get(map, key), *const * items, *one;
    struct pipeline_filter *f = NULL;
    struct sw_err err = {0};
    long count;
    int bad = 0;

    if (!n)
        return NULL;
    if ((count = wf_scalars(ld, n, key, &items, &one)) < 0)
        return NULL;
    const char **pats = xcalloc((size_t)count + 1, sizeof(*pats));
    for (long i = 0; i < count; i++) {
        size_t at = 0;
        pats[i] = items[i]->str;
        if (pipeline_filter_check(pats[i], &at, &err) != 0) {
            wf_diag(ld, 0, items[i]->line, items[i]->col, "%s: %s", key, err.msg);
            bad = 1;
        }
    }
    if (!bad && pipeline_filter_new(pats, (size_t)count, &f, &err) != 0)
        wf_error(ld, n, "%s: %s", key, err.msg);
    free(pats);
    return f;
}

static void both(struct wf_ld *ld, const struct yaml_node *map, const char *a, const char *b)
{
    const struct yaml_pair *p = yaml_map_find(map, b);
    if (p && yaml_map_get(map, a))
        wf_error(ld, p->key, "%s and %s cannot be used together on one event", a, b);
}

static void load_push(struct wf_ld *ld, const struct yaml_node *n)
{
    struct pipeline_push *p = &ld->wf->on.push;

    p->present = 1;
    if (yaml_is_null(n) || wf_keys(ld, n, "on.push", k_push))
        return;
    both(ld, n, "branches", "branches-ignore");
    both(ld, n, "tags", "tags-ignore");
    both(ld, n, "paths", "paths-ignore");
    p->branches = load_filter(ld, n, "branches");
    p->branches_ignore = load_filter(ld, n, "branches-ignore");
    p->tags = load_filter(ld, n, "tags");
    p->tags_ignore = load_filter(ld, n, "tags-ignore");
    p->paths = load_filter(ld, n, "paths");
    p->paths_ignore = load_filter(ld, n, "paths-ignore");
}

static const char *const input_types[] = {"string", "boolean",     "number",
                                          "choice", "environment", NULL};

/* A default: typed by the input's type unless it is an expression. */
static void input_default(struct wf_ld *ld, const struct yaml_node *n, struct pipeline_input *in,
                          const struct wf_ctx *c)
{
    enum wf_type t = in->type == PIPELINE_INPUT_BOOLEAN  ? WF_BOOL
                     : in->type == PIPELINE_INPUT_NUMBER ? WF_NUMBER
                                                         : WF_TEXT;
    if (wf_val(ld, n, t, c, &in->def) || !in->def.s || in->type != PIPELINE_INPUT_CHOICE)
        return;
    for (size_t i = 0; i < in->n_options; i++)
        if (strcmp(in->options[i], in->def.s) == 0)
            return;
    if (in->n_options)
        wf_error(ld, n, "default '%s' is not one of the options", in->def.s);
}

static void load_input(struct wf_ld *ld, const struct yaml_pair *p, int call,
                       struct pipeline_input *in)
{
    static const char *const k_dispatch_in[] = {"description", "type",    "required",
                                                "default",     "options", NULL};
    static const char *const k_call_in[] = {"description", "type", "required", "default", NULL};
    const struct yaml_node *n = p->value, *t;
    struct pipeline_val v;

    in->name = xstrdup(p->key->str);
    in->line = p->key->line;
    in->col = p->key->col;
    if (!wf_ident(in->name))
        wf_error(ld, p->key,
                 "input '%s': a name starts with a letter or '_' and holds only letters, "
                 "digits, '-' and '_'",
                 in->name);
    if (wf_keys(ld, n, "an input", call ? k_call_in : k_dispatch_in))
        return;
    t = yaml_map_get(n, "type");
    if (!t && call)
        wf_error(ld, n, "input '%s' needs a type (boolean, number or string)", in->name);
    if (t) {
        const char *s = yaml_scalar(t);
        size_t i = 0;
        while (s && input_types[i] && strcmp(input_types[i], s) != 0)
            i++;
        if (!s || !input_types[i] || (call && i > PIPELINE_INPUT_NUMBER))
            wf_error(ld, t, "input type must be %s, not %s%s%s",
                     call ? "boolean, number or string"
                          : "boolean, number, string, choice or environment",
                     s ? "'" : "", s ? s : wf_kind(t), s ? "'" : "");
        else
            in->type = (enum pipeline_input_type)i;
    }
    if (!wf_val(ld, yaml_map_get(n, "required"), WF_BOOL, NULL, &v))
        in->required = v.s && v.b;
    wf_val_free(&v);
    wf_val(ld, yaml_map_get(n, "description"), WF_TEXT, NULL, &in->description);
    const struct yaml_node *opts = yaml_map_get(n, "options"), *const * items, *one;
    long count = opts ? wf_scalars(ld, opts, "options", &items, &one) : 0;
    if (in->type == PIPELINE_INPUT_CHOICE && !opts)
        wf_error(ld, n, "input '%s' of type choice needs options", in->name);
    for (long i = 0; i < count; i++) {
        in->options = xrealloc(in->options, (in->n_options + 1) * sizeof(*in->options));
        in->options[in->n_options++] = xstrdup(items[i]->str);
    }
    input_default(ld, yaml_map_get(n, "default"), in, call ? &ctx_giv : NULL);
}

static void load_inputs(struct wf_ld *ld, const struct yaml_node *n, int call,
                        struct pipeline_input **out, size_t *n_out)
{
    if (!n || yaml_is_null(n))
        return;
    if (n->kind != YAML_NODE_MAP) {
        wf_error(ld, n, "inputs must be a mapping, not %s", wf_kind(n));
        return;
    }
    if (n->len > PIPELINE_WF_MAX_LIST) {
        wf_error(ld, n, "more than %d inputs", PIPELINE_WF_MAX_LIST);
        return;
    }
    *out = xcalloc(n->len + 1, sizeof(**out));
    for (size_t i = 0; i < n->len; i++)
        load_input(ld, &n->pairs[i], call, &(*out)[(*n_out)++]);
}

/* A mapping of names (outputs:, secrets:), or nothing. */
static int names_map(struct wf_ld *ld, const struct yaml_node *n, const char *what)
{
    if (!n || yaml_is_null(n))
        return 0;
    if (n->kind != YAML_NODE_MAP) {
        wf_error(ld, n, "%s must be a mapping, not %s", what, wf_kind(n));
        return 0;
    }
    return n->len < PIPELINE_WF_MAX_LIST ? (int)n->len : PIPELINE_WF_MAX_LIST;
}

static void load_call_outputs(struct wf_ld *ld, const struct yaml_node *outs)
{
    static const char *const k_out[] = {"description", "value", NULL};
    struct pipeline_on *on = &ld->wf->on;
    int n = names_map(ld, outs, "outputs");

    on->call_outputs = n ? xcalloc((size_t)n, sizeof(*on->call_outputs)) : NULL;
    for (int i = 0; i < n; i++) {
        const struct yaml_pair *p = &outs->pairs[i];
        struct pipeline_call_output *o = &on->call_outputs[on->n_call_outputs++];
        o->name = xstrdup(p->key->str);
        o->line = p->key->line;
        o->col = p->key->col;
        if (wf_keys(ld, p->value, "an output", k_out))
            continue;
        if (!yaml_map_get(p->value, "value"))
            wf_error(ld, p->value, "output '%s' needs a value", o->name);
        wf_val(ld, yaml_map_get(p->value, "value"), WF_TEXT, &ctx_givj, &o->value);
        wf_val(ld, yaml_map_get(p->value, "description"), WF_TEXT, NULL, &o->description);
    }
}

static void load_call_secrets(struct wf_ld *ld, const struct yaml_node *secrets)
{
    static const char *const k_secret[] = {"description", "required", NULL};
    struct pipeline_on *on = &ld->wf->on;
    int n = names_map(ld, secrets, "secrets");

    on->call_secrets = n ? xcalloc((size_t)n, sizeof(*on->call_secrets)) : NULL;
    for (int i = 0; i < n; i++) {
        const struct yaml_pair *p = &secrets->pairs[i];
        struct pipeline_call_secret *s = &on->call_secrets[on->n_call_secrets++];
        struct pipeline_val v;
        s->name = xstrdup(p->key->str);
        s->line = p->key->line;
        s->col = p->key->col;
        if (yaml_is_null(p->value) || wf_keys(ld, p->value, "a secret", k_secret))
            continue;
        if (!wf_val(ld, yaml_map_get(p->value, "required"), WF_BOOL, NULL, &v))
            s->required = v.s && v.b;
        wf_val_free(&v);
    }
}

static void load_call(struct wf_ld *ld, const struct yaml_node *n)
{
    struct pipeline_on *on = &ld->wf->on;

    on->call = 1;
    if (yaml_is_null(n) || wf_keys(ld, n, "on.workflow_call", k_call))
        return;
    load_inputs(ld, yaml_map_get(n, "inputs"), 1, &on->call_inputs, &on->n_call_inputs);
    load_call_outputs(ld, yaml_map_get(n, "outputs"));
    load_call_secrets(ld, yaml_map_get(n, "secrets"));
}

static void load_schedule(struct wf_ld *ld, const struct yaml_node *n)
{
    static const char *const k_cron[] = {"cron", NULL};

    if (n->kind != YAML_NODE_SEQ) {
        wf_error(ld, n, "schedule must be a sequence of {cron: ...}, not %s", wf_kind(n));
        return;
    }
    for (size_t i = 0; i < n->len; i++) {
        const struct yaml_node *c;
        if (wf_keys(ld, n->items[i], "a schedule", k_cron))
            continue;
        c = yaml_map_get(n->items[i], "cron");
        if (!c || !yaml_scalar(c) || !c->str[0])
            wf_error(ld, c ? c : n->items[i], "a schedule needs a cron string");
    }
}

/* One event of the mapping form. */
static void load_event(struct wf_ld *ld, const struct yaml_node *k, const struct yaml_node *v)
{
    const struct event *e = known_event(ld, k);
    char what[64];

    if (!e)
        return;
    add_event(ld, k);
    snprintf(what, sizeof(what), "on.%s", e->name);
    switch (e->special) {
    case EV_PUSH:
        load_push(ld, v);
        return;
    case EV_DISPATCH:
        ld->wf->on.dispatch = 1;
        if (!yaml_is_null(v) && !wf_keys(ld, v, what, k_dispatch))
            load_inputs(ld, yaml_map_get(v, "inputs"), 0, &ld->wf->on.dispatch_inputs,
                        &ld->wf->on.n_dispatch_inputs);
        return;
    case EV_CALL:
        load_call(ld, v);
        return;
    case EV_SCHEDULE:
        load_schedule(ld, v);
        return;
    case EV_PLAIN:
        break;
    }
    if (yaml_is_null(v))
        return;
    if (e->keys == k_none) {
        wf_error(ld, v, "%s takes no settings (write '%s:' alone)", what, e->name);
        return;
    }
    if (wf_keys(ld, v, what, e->keys))
        return;
    both(ld, v, "branches", "branches-ignore");
    both(ld, v, "paths", "paths-ignore");
    for (size_t i = 0; i < v->len; i++) {
        const struct yaml_node *key = v->pairs[i].key, *val = v->pairs[i].value;
        const struct yaml_node *const *items, *one;
        if (strcmp(key->str, "types") == 0)
            check_types(ld, e, val);
        else if (strcmp(key->str, "workflows") == 0)
            wf_scalars(ld, val, "workflows", &items, &one);
        else if (str_starts_with(key->str, "branches") || str_starts_with(key->str, "paths"))
            pipeline_filter_free(load_filter(ld, v, key->str));
    }
}

/* A bare event name (on: push, on: [push, pull_request]). */
static void load_event_name(struct wf_ld *ld, const struct yaml_node *n)
{
    const struct event *e;

    if (n->kind != YAML_NODE_SCALAR || !(e = known_event(ld, n)))
        return;
    add_event(ld, n);
    if (e->special == EV_PUSH)
        ld->wf->on.push.present = 1;
    else if (e->special == EV_DISPATCH)
        ld->wf->on.dispatch = 1;
    else if (e->special == EV_CALL)
        ld->wf->on.call = 1;
    else if (e->special == EV_SCHEDULE)
        wf_error(ld, n, "schedule needs its cron lines (schedule: [{cron: ...}])");
}

void wf_load_on(struct wf_ld *ld, const struct yaml_node *on)
{
    ld->wf->on.line = on->line;
    ld->wf->on.col = on->col;
    if (on->kind == YAML_NODE_SCALAR && !yaml_is_null(on)) {
        load_event_name(ld, on);
    } else if (on->kind == YAML_NODE_SEQ) {
        for (size_t i = 0; i < on->len && i < N_EVENTS * 2; i++)
            load_event_name(ld, on->items[i]);
    } else if (on->kind == YAML_NODE_MAP) {
        for (size_t i = 0; i < on->len; i++)
            load_event(ld, on->pairs[i].key, on->pairs[i].value);
    } else {
        wf_error(ld, on, "on: must name at least one event");
    }
}

static void inputs_free(struct pipeline_input *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(in[i].name);
        wf_val_free(&in[i].description);
        wf_val_free(&in[i].def);
        for (size_t j = 0; j < in[i].n_options; j++)
            free(in[i].options[j]);
        free(in[i].options);
    }
    free(in);
}

void wf_on_free(struct pipeline_on *on)
{
    for (size_t i = 0; i < on->n_events; i++)
        free(on->events[i]);
    free(on->events);
    pipeline_filter_free(on->push.branches);
    pipeline_filter_free(on->push.branches_ignore);
    pipeline_filter_free(on->push.tags);
    pipeline_filter_free(on->push.tags_ignore);
    pipeline_filter_free(on->push.paths);
    pipeline_filter_free(on->push.paths_ignore);
    inputs_free(on->dispatch_inputs, on->n_dispatch_inputs);
    inputs_free(on->call_inputs, on->n_call_inputs);
    for (size_t i = 0; i < on->n_call_outputs; i++) {
        free(on->call_outputs[i].name);
        wf_val_free(&on->call_outputs[i].description);
        wf_val_free(&on->call_outputs[i].value);
    }
    free(on->call_outputs);
    for (size_t i = 0; i < on->n_call_secrets; i++)
        free(on->call_secrets[i].name);
    free(on->call_secrets);
}
