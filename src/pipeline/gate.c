/*
 * Gates: the rules an environment sets for the pipeline jobs that name it
 * (`environment:`): which refs may deploy there at all (deploy_from) and
 * whose approval a job waits for before its first step (approval).
 *
 * The one idea: every decision here is a pure function of a record entry and
 * a requirement, so the runner (which decides when a gate passes), `slipway
 * approve` (which appends a decision by compare-and-swap, queue.c) and the
 * tests all apply the same rules, and a decision the CLI should have refused
 * (a forged record, a stale check) still does not count: the runner decides
 * with the requirement read from its own environment file, never the one a
 * record carries.
 */
#include "deploy/deploy.h"
#include "pipeline/internal.h"
#include "pipeline/run_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {"waiting", "approved", "rejected", "timed_out"};

const char *pipeline_gate_state_name(enum pipeline_gate_state s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(*state_names) ? state_names[s] : "?";
}

void pipeline_gate_free(struct pipeline_gate *g)
{
    if (!g)
        return;
    free(g->environment);
    for (size_t i = 0; i < g->napprovers; i++)
        free(g->approvers[i]);
    free(g->approvers);
    for (size_t i = 0; i < g->ndecisions; i++) {
        free(g->decisions[i].by);
        free(g->decisions[i].os_user);
        free(g->decisions[i].comment);
    }
    free(g->decisions);
    free(g);
}

struct pipeline_gate *pipeline_gate_dup(const struct pipeline_gate *g)
{
    if (!g)
        return NULL;
    struct pipeline_gate *c = xcalloc(1, sizeof(*c));
    *c = *g;
    c->environment = xstrdup_or_null(g->environment);
    c->approvers = xcalloc(g->napprovers ? g->napprovers : 1, sizeof(*c->approvers));
    for (size_t i = 0; i < g->napprovers; i++)
        c->approvers[i] = xstrdup(g->approvers[i]);
    c->decisions = xcalloc(g->ndecisions ? g->ndecisions : 1, sizeof(*c->decisions));
    for (size_t i = 0; i < g->ndecisions; i++) {
        c->decisions[i] = g->decisions[i];
        c->decisions[i].by = xstrdup_or_null(g->decisions[i].by);
        c->decisions[i].os_user = xstrdup_or_null(g->decisions[i].os_user);
        c->decisions[i].comment = xstrdup_or_null(g->decisions[i].comment);
    }
    return c;
}

static int is_approver(const struct pipeline_gate *g, const char *name)
{
    for (size_t i = 0; name && i < g->napprovers; i++)
        if (!strcmp(g->approvers[i], name))
            return 1;
    return 0;
}

/* Whether name is the run's actor, who may not approve without allow_self_approval. */
static int is_self(const struct pipeline_gate *g, const char *actor, const char *name)
{
    return !g->allow_self_approval && actor && *actor && name && !strcmp(actor, name);
}

/* Whether decision d counts at all: made before the deadline, by an
 * approver, recorded by an approver (--as), neither of them the actor unless
 * allowed. */
static int counts(const struct pipeline_gate *g, const char *actor, int64_t deadline,
                  const struct pipeline_gate_decision *d)
{
    if (d->at_ms >= deadline || !is_approver(g, d->by))
        return 0;
    if (d->os_user && strcmp(d->os_user, d->by) && !is_approver(g, d->os_user))
        return 0;
    return !is_self(g, actor, d->by) && !is_self(g, actor, d->os_user);
}

enum pipeline_gate_state pipeline_gate_decide(const struct pipeline_gate *g, const char *actor,
                                              int64_t now_ms,
                                              const struct pipeline_gate_decision **decider,
                                              size_t *approvals)
{
    int64_t deadline = g->waiting_since_ms + g->timeout_ms;
    size_t n = 0;
    enum pipeline_gate_state st = PIPELINE_GATE_WAITING;

    if (decider)
        *decider = NULL;
    for (size_t i = 0; i < g->ndecisions && st == PIPELINE_GATE_WAITING; i++) {
        const struct pipeline_gate_decision *d = &g->decisions[i];
        int again = 0;
        if (!counts(g, actor, deadline, d))
            continue;
        /* one decision per approver: the first that counts */
        for (size_t k = 0; k < i && !again; k++)
            again =
                !strcmp(g->decisions[k].by, d->by) && counts(g, actor, deadline, &g->decisions[k]);
        if (again)
            continue;
        if (d->reject)
            st = PIPELINE_GATE_REJECTED;
        else if ((int)++n >= g->required)
            st = PIPELINE_GATE_APPROVED;
        if (st != PIPELINE_GATE_WAITING && decider)
            *decider = d;
    }
    if (st == PIPELINE_GATE_WAITING && g->required <= 0)
        st = PIPELINE_GATE_APPROVED;
    if (st == PIPELINE_GATE_WAITING && now_ms >= deadline)
        st = PIPELINE_GATE_TIMED_OUT;
    if (approvals)
        *approvals = n;
    return st;
}

/* "main, v1" or "none" */
static void patterns_text(struct buf *b, const struct env_ref_pattern *p, size_t n)
{
    if (!n)
        buf_adds(b, "none");
    for (size_t i = 0; i < n; i++)
        buf_addf(b, "%s%s", i ? ", " : "", p[i].pattern);
}

int pipeline_gate_ref_check(const struct env_deploy_from *d, const char *env, const char *file,
                            const char *ref, struct sw_err *err)
{
    const struct env_ref_pattern *p;
    const char *name, *kind;
    size_t n;
    int rc = 0;

    if (!d || !d->present)
        return 0;
    ref = ref ? ref : "";
    if (str_starts_with(ref, "refs/heads/")) {
        name = ref + 11;
        kind = "branches";
        p = d->branches;
        n = d->nbranches;
    } else if (str_starts_with(ref, "refs/tags/")) {
        name = ref + 10;
        kind = "tags";
        p = d->tags;
        n = d->ntags;
    } else {
        name = NULL;
        kind = NULL;
        p = NULL;
        n = 0;
    }
    /* every pattern is checked, also those of the other kind: a typo in the
     * tags must not wait for the first tag to be noticed */
    for (int pass = 0; pass < 2; pass++) {
        const struct env_ref_pattern *q = pass ? d->tags : d->branches;
        size_t nq = pass ? d->ntags : d->nbranches;
        for (size_t i = 0; i < nq; i++) {
            struct sw_err e = {0};
            size_t at = 0;
            if (pipeline_filter_check(q[i].pattern, &at, &e) < 0)
                return sw_err_set(err, SW_EINVAL, "%s:%zu:%zu: deploy_from.%s: %s", file, q[i].line,
                                  q[i].col, pass ? "tags" : "branches", e.msg);
        }
    }
    int allowed = 0;
    if (name && n) {
        const char **v = xcalloc(n, sizeof(*v));
        struct pipeline_filter *f = NULL;
        struct sw_err e = {0};
        for (size_t i = 0; i < n; i++)
            v[i] = p[i].pattern;
        rc = pipeline_filter_new(v, n, &f, &e);
        free(v);
        if (rc < 0)
            return sw_err_set(err, SW_EINVAL, "%s:%zu:%zu: deploy_from.%s: %s", file, p[0].line,
                              p[0].col, kind, e.msg);
        allowed = pipeline_filter_match(f, name);
        pipeline_filter_free(f);
    }
    if (allowed)
        return 0;
    struct buf b = BUF_INIT;
    buf_adds(&b, "branches: ");
    patterns_text(&b, d->branches, d->nbranches);
    buf_adds(&b, "; tags: ");
    patterns_text(&b, d->tags, d->ntags);
    rc = sw_err_set(err, PIPELINE_EGATE,
                    "ref %s may not deploy to environment %s (deploy_from %s%s)", *ref ? ref : "''",
                    env, b.data, name ? "" : "; only branches and tags may deploy");
    buf_free(&b);
    return rc;
}

int pipeline_gate_passed(const struct pipeline_run *r, const struct env_config *cfg)
{
    const struct env_approval *ap = &cfg->approval;

    for (size_t i = 0; i < r->njobs; i++) {
        const struct pipeline_gate *g = r->jobs[i].gate;
        if (!g || g->state != PIPELINE_GATE_APPROVED || !g->environment ||
            strcmp(g->environment, cfg->name))
            continue;
        struct pipeline_gate want = {.environment = cfg->name,
                                     .required = ap->required,
                                     .approvers = ap->approvers,
                                     .napprovers = ap->napprovers,
                                     .allow_self_approval = ap->allow_self_approval,
                                     .timeout_ms = ap->timeout_ms,
                                     .waiting_since_ms = g->waiting_since_ms,
                                     .decisions = g->decisions,
                                     .ndecisions = g->ndecisions};
        /* at waiting_since: only the decisions can pass it, never the clock */
        if (pipeline_gate_decide(&want, r->actor, g->waiting_since_ms, NULL, NULL) ==
            PIPELINE_GATE_APPROVED)
            return 1;
    }
    return 0;
}

static int job_is(const struct pipeline_run_job *j, const char *want)
{
    return (j->id && !strcmp(j->id, want)) || (j->name && !strcmp(j->name, want));
}

static int gate_waits(const struct pipeline_run_job *j)
{
    return j->status == PIPELINE_JOB_WAITING && j->gate && j->gate->state == PIPELINE_GATE_WAITING;
}

/* "deploy (staging), deploy-eu (production)" */
static void waiting_list(struct buf *b, const struct pipeline_run *r, const char *want)
{
    size_t k = 0;
    for (size_t i = 0; i < r->njobs; i++)
        if (gate_waits(&r->jobs[i]) && (!want || job_is(&r->jobs[i], want)))
            buf_addf(b, "%s%s (%s)", k++ ? ", " : "", r->jobs[i].name,
                     r->jobs[i].gate->environment ? r->jobs[i].gate->environment : "?");
}

int pipeline_gate_approve_check(const struct pipeline_run *r, const struct pipeline_approve *q,
                                size_t *job, struct sw_err *err)
{
    size_t found = 0, at = 0, named = 0;
    const char *verb = q->reject ? "reject" : "approve";

    if (pipeline_run_status_ended(r->status))
        return sw_err_set(err, PIPELINE_EENDED, "run %s has ended (%s): nothing waits to %s", r->id,
                          pipeline_run_status_name(r->status), verb);
    for (size_t i = 0; i < r->njobs; i++) {
        const struct pipeline_run_job *j = &r->jobs[i];
        if (q->job && !job_is(j, q->job))
            continue;
        named++;
        if (gate_waits(j)) {
            if (!found)
                at = i;
            found++;
        }
    }
    if (q->job && !named)
        return sw_err_set(err, PIPELINE_EGATE, "run %s has no job %s", r->id, q->job);
    if (!found && q->job) {
        const struct pipeline_run_job *j = NULL;
        for (size_t i = 0; i < r->njobs && !j; i++)
            if (job_is(&r->jobs[i], q->job))
                j = &r->jobs[i];
        return sw_err_set(err, PIPELINE_EGATE,
                          "job %s of run %s is not waiting at a gate (it is %s)", q->job, r->id,
                          j->status == PIPELINE_JOB_COMPLETED &&
                                  pipeline_conclusion_name(j->conclusion)
                              ? pipeline_conclusion_name(j->conclusion)
                              : pipeline_job_status_name(j->status));
    }
    if (!found)
        return sw_err_set(err, PIPELINE_EGATE, "run %s is not waiting at a gate (it is %s)", r->id,
                          pipeline_run_status_name(r->status));
    if (found > 1) {
        struct buf b = BUF_INIT;
        waiting_list(&b, r, q->job);
        int rc = sw_err_set(err, PIPELINE_EGATE,
                            "%zu jobs of run %s wait at gates: %s; say which with --job NAME",
                            found, r->id, b.data);
        buf_free(&b);
        return rc;
    }
    const struct pipeline_run_job *j = &r->jobs[at];
    const struct pipeline_gate *g = j->gate;
    const char *who = q->as ? q->as : q->os_user;
    const char *env = g->environment ? g->environment : "?";
    if (!who || !*who || !text_valid(who, RUN_ACTOR_MAX, 0))
        return sw_err_set(err, PIPELINE_EGATE,
                          "the approver's name must be a line of at most %d bytes", RUN_ACTOR_MAX);
    if (q->as && !is_approver(g, q->os_user))
        return sw_err_set(err, PIPELINE_EGATE,
                          "--as %s: you (%s) are not an approver of environment %s, so you may not "
                          "%s in another's name",
                          q->as, q->os_user ? q->os_user : "?", env, verb);
    if (!is_approver(g, who)) {
        struct buf b = BUF_INIT;
        for (size_t i = 0; i < g->napprovers; i++)
            buf_addf(&b, "%s%s", i ? ", " : "", g->approvers[i]);
        int rc = sw_err_set(err, PIPELINE_EGATE,
                            "%s is not an approver of environment %s (approvers: %s)", who, env,
                            b.data ? b.data : "none");
        buf_free(&b);
        return rc;
    }
    if (is_self(g, r->actor, who) || is_self(g, r->actor, q->os_user))
        return sw_err_set(err, PIPELINE_EGATE,
                          "%s triggered run %s and may not %s it: environment %s does not allow "
                          "self-approval",
                          r->actor, r->id, verb, env);
    for (size_t i = 0; i < g->ndecisions; i++)
        if (!strcmp(g->decisions[i].by, who))
            return sw_err_set(err, PIPELINE_EGATE, "%s has already %s job %s of run %s", who,
                              g->decisions[i].reject ? "rejected" : "approved", j->name, r->id);
    if (g->ndecisions >= PIPELINE_GATE_DECISIONS_MAX)
        return sw_err_set(err, PIPELINE_EGATE, "the gate of job %s holds %d decisions already",
                          j->name, PIPELINE_GATE_DECISIONS_MAX);
    if (q->at_ms >= g->waiting_since_ms + g->timeout_ms) {
        char iso[40];
        time_format_iso(g->waiting_since_ms + g->timeout_ms, iso, sizeof(iso));
        return sw_err_set(err, PIPELINE_EGATE, "the gate of job %s timed out at %s", j->name, iso);
    }
    if (q->comment && !text_valid(q->comment, RUN_REASON_MAX, 0))
        return sw_err_set(err, PIPELINE_EGATE,
                          "--comment: expected one line of printable text of at most %d bytes",
                          RUN_REASON_MAX);
    if (job)
        *job = at;
    return 0;
}
