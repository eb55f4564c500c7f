/* The job runner: a claimed run of a loaded workflow, run to its end. The
 * main thread schedules (needs as a DAG, matrices expanded into legs, job
 * `if:` evaluated when the needs are done); each leg runs on a thread of its
 * own, at most opts->jobs at once; a ticker thread extends the lease, notices
 * cancel requests and flushes quiet logs. Every change to the run record is
 * a pure update applied under compare-and-swap, made under rn->lock so the
 * record in memory is only ever touched by one thread at a time. A job that
 * calls a reusable workflow has no leg: when it is ready it becomes a scope of
 * the called workflow's jobs, scheduled like the run's own (reusable.c
 * checks what crosses the call). */
#include "deploy/deploy.h"
#include "pipeline/artifact_internal.h"
#include "pipeline/call_internal.h"
#include "pipeline/delivery_internal.h"
#include "pipeline/pipeline.h"
#include "pipeline/runner_internal.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static const char *default_labels[] = {"self-hosted", "linux", NULL, "ubuntu-latest", NULL};

/* ---- scheduling --------------------------------------------------------------------------------
 */

/* A job's `environment:` (name, url) or `concurrency:` value as text, with
 * the leg's contexts. */
static int leg_text(struct leg *l, const struct pipeline_val *v, char **out, struct sw_err *err)
{
    int rc = runner_eval_text(v, l->values, PIPELINE_STATUS_SUCCESS, NULL, out, err);
    if (rc == 0 && !text_valid(*out, 1024, 0)) {
        rc = sw_err_set(err, PIPELINE_EEVAL, "line %zu: '%s' is not a line of at most 1024 bytes",
                        v->line, *out);
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* GitHub's job concurrency: waits while the leg is pending in its group.
 * Returns NONE when it may start, else how it ends (why says so). */
static enum pipeline_conclusion leg_admit(struct leg *l, const char *group, int cip, char **why)
{
    struct runner *rn = l->rn;
    int said = 0;

    for (;;) {
        enum pipeline_job_admit st = PIPELINE_JOB_WAIT;
        struct sw_err err = {0};
        char *reason = NULL;
        if (atomic_load(&rn->cancel))
            return PIPELINE_CONCLUSION_CANCELLED;
        if (pipeline_job_group_enter(rn->st, rn->id, l->rec, group, cip, &st, &reason, &err) < 0) {
            *why = xasprintf("concurrency group %s: %s", group, err.msg);
            return PIPELINE_CONCLUSION_FAILURE;
        }
        if (st == PIPELINE_JOB_GO) {
            free(reason);
            return PIPELINE_CONCLUSION_NONE;
        }
        if (st == PIPELINE_JOB_STOP || atomic_load(&l->cancel)) {
            /* displaced: the group says so (or the record, which the ticker
             * copied into l->cancel, when the displacing write never came) */
            *why = reason ? reason : xstrdup("cancelled");
            return PIPELINE_CONCLUSION_CANCELLED;
        }
        if (!said && reason) {
            /* once: the record and the log say why it waits */
            struct upd u = {0};
            u.op = UPD_WAIT;
            u.rec = l->rec;
            u.reason = reason;
            pthread_mutex_lock(&rn->lock);
            (void)runner_record(rn, &u);
            pthread_mutex_unlock(&rn->lock);
            leg_note(l, PIPELINE_LOG_OUTPUT, reason);
            said = 1;
        }
        free(reason);
        /* poll the group every second; a cancel is seen within 200 ms */
        for (int i = 0; i < 5 && !atomic_load(&rn->cancel) && !atomic_load(&l->cancel); i++) {
            struct timespec ts = {0, 200 * 1000 * 1000};
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        }
    }
}

/* ---- gates ---------------------------------------------------------------------------------- */

/* The environment file of env in the runner's own project (never the
 * commit's: a push cannot lower its own gate). *out NULL: no file, no rules. */
static int env_rules_load(struct runner *rn, const char *env, struct env_config **out,
                          struct sw_err *err)
{
    static const char *const ext[] = {".yml", ".yaml"};
    struct sw_err e = {0};

    *out = NULL;
    /* a name that cannot be a file name has no file (GitHub makes such
     * environments on the fly, without rules) */
    if (!rn->o->project || env_name_check(env, &e) < 0)
        return 0;
    for (size_t i = 0; i < 2; i++) {
        char *rel = xasprintf(".slipway/environments/%s%s", env, ext[i]);
        char *path = path_join(rn->o->project, rel);
        int rc = env_config_load(path, out, err);
        free(rel);
        free(path);
        if (rc == SW_ENOTFOUND) {
            *err = (struct sw_err){0};
            continue;
        }
        return rc;
    }
    return 0;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Waits at the approval gate of environment cfg before the leg's first step.
 * NONE when it passed; else FAILURE (rejected, timed out) or CANCELLED, with
 * *why. A leg waiting holds no place among the run's `jobs` at once. */
static enum pipeline_conclusion leg_gate(struct leg *l, const struct env_config *cfg, char **why,
                                         int *parked)
{
    struct runner *rn = l->rn;
    struct wjob *wj = &l->sc->jobs[l->job];
    const struct env_approval *ap = &cfg->approval;
    struct pipeline_gate want = {0};
    struct upd u = {0};
    struct sw_err err = {0};
    enum pipeline_gate_state st = PIPELINE_GATE_WAITING;
    const struct pipeline_gate_decision *decider = NULL;
    size_t max = rn->o->jobs ? rn->o->jobs : 1, logged = 0, napproved = 0;
    int counted = 0;
    struct pipeline_run *now = NULL;
    char iso[40], dur[32];

    want.environment = cfg->name;
    want.required = ap->required;
    want.approvers = ap->approvers;
    want.napprovers = ap->napprovers;
    want.allow_self_approval = ap->allow_self_approval;
    want.timeout_ms = ap->timeout_ms;
    u.op = UPD_GATE;
    u.rec = l->rec;
    u.gate = &want;
    u.at = time_now_ms();
    pthread_mutex_lock(&rn->lock);
    int rc = runner_record(rn, &u);
    if (rc == 0 && l->rec < rn->run->njobs && rn->run->jobs[l->rec].gate)
        want.waiting_since_ms = rn->run->jobs[l->rec].gate->waiting_since_ms;
    /* waiting takes no place among the legs run at once */
    rn->running--;
    wj->running--;
    pthread_cond_broadcast(&rn->cond);
    pthread_mutex_unlock(&rn->lock);
    if (rc < 0) {
        *why = xasprintf("environment %s: cannot record the gate", cfg->name);
        st = PIPELINE_GATE_REJECTED;
        goto retake;
    }
    struct buf who = BUF_INIT;
    for (size_t i = 0; i < ap->napprovers; i++)
        buf_addf(&who, "%s%s", i ? ", " : "", ap->approvers[i]);
    time_format_iso(want.waiting_since_ms + want.timeout_ms, iso, sizeof(iso));
    leg_stream(l, 0);
    leg_say(l, &rn->masks, PIPELINE_LOG_OUTPUT,
            "waiting for %d approval%s from %s for environment %s (times out at %s)", ap->required,
            ap->required == 1 ? "" : "s", who.data, cfg->name, iso);
    buf_free(&who);
    for (;;) {
        if (atomic_load(&rn->parked))
            break;
        if (atomic_load(&rn->cancel) || atomic_load(&l->cancel))
            break;
        pipeline_run_free(now);
        now = NULL;
        err = (struct sw_err){0};
        if (pipeline_run_load(rn->st, rn->id, &now, &err) == 0 && l->rec < now->njobs &&
            now->jobs[l->rec].gate) {
            /* the decisions the record holds, judged by this runner's rules */
            const struct pipeline_gate *g = now->jobs[l->rec].gate;
            want.decisions = g->decisions;
            want.ndecisions = g->ndecisions;
            for (; logged < g->ndecisions; logged++) {
                const struct pipeline_gate_decision *d = &g->decisions[logged];
                leg_say(l, &rn->masks, PIPELINE_LOG_OUTPUT, "%s by %s%s%s%s%s%s",
                        d->reject ? "rejected" : "approved", d->by,
                        d->os_user && strcmp(d->os_user, d->by) ? " (recorded by " : "",
                        d->os_user && strcmp(d->os_user, d->by) ? d->os_user : "",
                        d->os_user && strcmp(d->os_user, d->by) ? ")" : "", d->comment ? ": " : "",
                        d->comment ? d->comment : "");
            }
        } else {
            want.decisions = NULL;
            want.ndecisions = 0;
        }
        st = pipeline_gate_decide(&want, rn->actor, time_now_ms(), &decider, &napproved);
        if (st != PIPELINE_GATE_WAITING)
            break;
        if (!counted) {
            /* undecided once read: from now on the run may be parked (not
             * before, or a resumed run whose gate is decided would be
             * parked again at once) */
            pthread_mutex_lock(&rn->lock);
            rn->gated++;
            counted = 1;
            pthread_mutex_unlock(&rn->lock);
        }
        for (int i = 0; i < 5 && !atomic_load(&rn->cancel) && !atomic_load(&l->cancel); i++)
            sleep_ms(100);
    }
    /* leaving the gate: unless the run was parked meanwhile (then the next
     * runner decides again, from the record, where nothing is lost) */
    pthread_mutex_lock(&rn->lock);
    *parked = atomic_load(&rn->parked);
    if (!*parked && counted)
        rn->gated--;
    pthread_mutex_unlock(&rn->lock);
    if (*parked) {
        leg_stream(l, (unsigned)-1);
        pipeline_run_free(now);
        return PIPELINE_CONCLUSION_NONE;
    }
    duration_format(want.timeout_ms, dur, sizeof(dur));
    if (st == PIPELINE_GATE_APPROVED)
        leg_say(l, &rn->masks, PIPELINE_LOG_OUTPUT, "environment %s approved (%zu of %d)",
                cfg->name, napproved, ap->required);
    else if (st == PIPELINE_GATE_REJECTED)
        *why = xasprintf("rejected by %s for environment %s%s%s", decider ? decider->by : "?",
                         cfg->name, decider && decider->comment ? ": " : "",
                         decider && decider->comment ? decider->comment : "");
    else if (st == PIPELINE_GATE_TIMED_OUT) {
        time_format_iso(want.waiting_since_ms, iso, sizeof(iso));
        *why = xasprintf("the approval for environment %s timed out after %s (%zu of %d "
                         "approvals since %s)",
                         cfg->name, dur, napproved, ap->required, iso);
    } else
        *why = xasprintf("cancelled while waiting for approval for environment %s", cfg->name);
    leg_stream(l, (unsigned)-1);
    if (st != PIPELINE_GATE_WAITING) {
        memset(&u, 0, sizeof(u));
        u.op = UPD_GATE_END;
        u.rec = l->rec;
        u.gate_state = st;
        u.at = time_now_ms();
        pthread_mutex_lock(&rn->lock);
        (void)runner_record(rn, &u);
        pthread_mutex_unlock(&rn->lock);
    }
retake:
    pipeline_run_free(now);
    pthread_mutex_lock(&rn->lock);
    /* approved: its steps wait for a place like any leg */
    while (st == PIPELINE_GATE_APPROVED && rn->running >= max && !atomic_load(&rn->cancel) &&
           !atomic_load(&l->cancel))
        pthread_cond_wait(&rn->cond, &rn->lock);
    rn->running++;
    wj->running++;
    pthread_mutex_unlock(&rn->lock);
    if (st == PIPELINE_GATE_APPROVED)
        return PIPELINE_CONCLUSION_NONE;
    return st == PIPELINE_GATE_WAITING ? PIPELINE_CONCLUSION_CANCELLED
                                       : PIPELINE_CONCLUSION_FAILURE;
}

/* The rules of environment env for this leg: its ref must be one deploy_from
 * allows (else it fails before it waits), then its approval gate. NONE: the
 * leg may start. */
enum pipeline_conclusion leg_rules(struct leg *l, const char *env, char **why, int *parked)
{
    struct runner *rn = l->rn;
    struct env_config *cfg = NULL;
    struct sw_err err = {0};
    enum pipeline_conclusion c = PIPELINE_CONCLUSION_NONE;

    if (env_rules_load(rn, env, &cfg, &err) < 0) {
        *why = xasprintf("environment %s: %s", env, err.msg);
        return PIPELINE_CONCLUSION_FAILURE;
    }
    if (!cfg)
        return c;
    if (pipeline_gate_ref_check(&cfg->deploy_from, cfg->name, cfg->file, rn->ref, &err) < 0) {
        *why = xstrdup(err.msg);
        c = PIPELINE_CONCLUSION_FAILURE;
    } else if (cfg->approval.required > 0)
        c = leg_gate(l, cfg, why, parked);
    env_config_free(cfg);
    return c;
}

void *leg_thread(void *arg)
{
    struct leg *l = arg;
    struct runner *rn = l->rn;
    json_t *outputs = NULL;
    enum pipeline_conclusion c = PIPELINE_CONCLUSION_NONE;
    struct upd u = {0};
    const struct pipeline_job *job = &l->sc->wf->jobs[l->job];
    struct wjob *wj = &l->sc->jobs[l->job];
    char *env_name = NULL, *env_url = NULL, *group = NULL, *why = NULL, *end_url = NULL;
    struct sw_err err = {0};
    int cip = 0;

    /* environment and concurrency are evaluated when the job starts, with
     * its matrix and needs, as GitHub does */
    if (job->environment.name.s && !job->skipped) {
        if (leg_text(l, &job->environment.name, &env_name, &err) < 0 ||
            (job->environment.url.s && leg_text(l, &job->environment.url, &env_url, &err) < 0)) {
            why = xasprintf("job %s: environment: %s", job->id, err.msg);
            c = PIPELINE_CONCLUSION_FAILURE;
        } else if (!*env_name) {
            /* GitHub: an empty name is no environment */
            free(env_name);
            free(env_url);
            env_name = env_url = NULL;
        }
    }
    /* an environment's rules come before its concurrency group: a job
     * waiting for a person holds no place in its group meanwhile */
    if (c == PIPELINE_CONCLUSION_NONE && env_name) {
        int parked = 0;
        c = leg_rules(l, env_name, &why, &parked);
        if (parked) {
            /* the run is parked: this leg stops here, the record as it is */
            free(env_name);
            free(env_url);
            free(why);
            return NULL;
        }
    }
    if (c == PIPELINE_CONCLUSION_NONE && job->concurrency.group.s && !job->skipped) {
        const struct pipeline_val *cv = &job->concurrency.cancel_in_progress;
        char *t = NULL;
        if (leg_text(l, &job->concurrency.group, &group, &err) < 0 ||
            (cv->s && cv->expr && leg_text(l, cv, &t, &err) < 0)) {
            why = xasprintf("job %s: concurrency: %s", job->id, err.msg);
            c = PIPELINE_CONCLUSION_FAILURE;
        } else if (!*group) {
            free(group);
            group = NULL;
        }
        cip = cv->s && (cv->expr ? t && strcmp(t, "true") == 0 : cv->b);
        free(t);
        if (group && c == PIPELINE_CONCLUSION_NONE)
            c = leg_admit(l, group, cip, &why);
    }
    if (why)
        leg_note(l, c == PIPELINE_CONCLUSION_FAILURE ? PIPELINE_LOG_ERROR : PIPELINE_LOG_WARNING,
                 why);
    u.op = UPD_START;
    u.rec = l->rec;
    u.at = time_now_ms();
    u.env_name = env_name;
    u.env_url = env_url;
    pthread_mutex_lock(&rn->lock);
    (void)runner_record(rn, &u);
    pthread_mutex_unlock(&rn->lock);
    int ran = c == PIPELINE_CONCLUSION_NONE;
    if (ran) {
        c = leg_run(l, &outputs);
        /* environment.url may name the steps' outputs: GitHub evaluates it
         * after the steps */
        struct sw_err e2 = {0};
        if (env_name && job->environment.url.expr &&
            leg_text(l, &job->environment.url, &end_url, &e2) == 0 && env_url &&
            !strcmp(end_url, env_url)) {
            free(end_url);
            end_url = NULL;
        }
    } else
        outputs = json_object();
    if (group)
        pipeline_job_group_leave(rn->st, rn->id, l->rec, group);

    memset(&u, 0, sizeof(u));
    u.op = UPD_END;
    u.rec = l->rec;
    u.conclusion = c;
    u.outputs = outputs;
    u.at = time_now_ms();
    u.env_url = end_url;
    u.reason = ran ? NULL : why;
    pthread_mutex_lock(&rn->lock);
    u.steps = l->steps;
    u.nsteps = l->nsteps;
    l->steps_dirty = 0;
    (void)runner_record(rn, &u);
    l->conclusion = c;
    l->outputs = outputs;
    l->state = LEG_DONE;
    rn->running--;
    wj->running--;
    wj->finished++;
    if (c == PIPELINE_CONCLUSION_FAILURE && wj->fail_fast)
        wj->fail_fast_hit = 1;
    pthread_cond_broadcast(&rn->cond);
    pthread_mutex_unlock(&rn->lock);
    free(env_name);
    free(env_url);
    free(end_url);
    free(group);
    free(why);
    return NULL;
}

/* The needs context of job j and the status its `if:` sees. Under rn->lock. */
static json_t *needs_ctx(struct runner *rn, struct scope *sc, size_t j, enum pipeline_status *st)
{
    const struct pipeline_job *job = &sc->wf->jobs[j];
    json_t *needs = json_object();

    *st = PIPELINE_STATUS_SUCCESS;
    for (size_t i = 0; i < job->n_needs; i++) {
        struct wjob *n = &sc->jobs[job->needs_index[i]];
        json_object_set_new(needs, job->needs[i],
                            json_pack("{s:s, s:O}", "result", pipeline_conclusion_name(n->result),
                                      "outputs", n->outputs));
        if (n->result == PIPELINE_CONCLUSION_FAILURE || n->result == PIPELINE_CONCLUSION_CANCELLED)
            *st = PIPELINE_STATUS_FAILURE;
        else if (n->result == PIPELINE_CONCLUSION_SKIPPED && *st == PIPELINE_STATUS_SUCCESS)
            *st = PIPELINE_STATUS_SKIPPED;
    }
    if (atomic_load(&rn->cancel))
        *st = PIPELINE_STATUS_CANCELLED;
    return needs;
}

/* Evaluates every string of the matrix that holds `${{ }}`. */
static int matrix_eval(json_t *m, const json_t *values, json_t **out, struct sw_err *err)
{
    if (json_is_string(m) && strstr(json_string_value(m), "${{"))
        return runner_eval_json(json_string_value(m), values, out, err);
    if (json_is_array(m)) {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(m); i++) {
            json_t *x = NULL;
            if (matrix_eval(json_array_get(m, i), values, &x, err) < 0) {
                json_decref(a);
                return err->code < 0 ? err->code : PIPELINE_EEVAL;
            }
            json_array_append_new(a, x);
        }
        *out = a;
        return 0;
    }
    if (json_is_object(m)) {
        json_t *o = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(m, k, v)
        {
            json_t *x = NULL;
            if (matrix_eval(v, values, &x, err) < 0) {
                json_decref(o);
                return err->code < 0 ? err->code : PIPELINE_EEVAL;
            }
            json_object_set_new(o, k, x);
        }
        *out = o;
        return 0;
    }
    *out = json_incref(m);
    return 0;
}

/* strategy.fail-fast and strategy.max-parallel of job into wj, evaluated
 * with the job's values (github, inputs, vars, needs) when written with
 * `${{ }}`: a boolean, and a number of at least 1 (or its text, as vars give). */
static int strategy_eval(const struct pipeline_job *job, const json_t *values, struct wjob *wj,
                         struct sw_err *err)
{
    const struct pipeline_val *ff = &job->strategy.fail_fast, *mp = &job->strategy.max_parallel;
    json_t *v = NULL;
    int rc = 0;

    wj->fail_fast = 1;
    wj->max_parallel = 0;
    if (ff->s && !ff->expr)
        wj->fail_fast = ff->b;
    else if (ff->s) {
        if ((rc = runner_eval_json(ff->s, values, &v, err)) < 0)
            return rc;
        if (!json_is_boolean(v))
            rc = sw_err_set(err, PIPELINE_EEVAL, "fail-fast: expected a boolean");
        wj->fail_fast = json_is_true(v);
        json_decref(v);
        v = NULL;
        if (rc < 0)
            return rc;
    }
    if (mp->s && !mp->expr)
        wj->max_parallel = mp->n >= 1 ? (size_t)mp->n : 1;
    else if (mp->s) {
        double d = 0;
        char *end = NULL;
        if ((rc = runner_eval_json(mp->s, values, &v, err)) < 0)
            return rc;
        if (json_is_number(v))
            d = json_number_value(v);
        else if (json_is_string(v) && *json_string_value(v)) {
            d = strtod(json_string_value(v), &end);
            if (*end)
                d = 0;
        }
        json_decref(v);
        if (!(d >= 1))
            return sw_err_set(err, PIPELINE_EEVAL, "max-parallel: expected a number of at least 1");
        wj->max_parallel = d > 65536 ? 65536 : (size_t)d;
    }
    return 0;
}

/* Resuming: the record entry a leg (job id, name, matrix values) had before
 * the run was queued again, not matched yet; -1 when none. Scheduling is a
 * function of the jobs' results, which the entries restore, so each leg meets
 * its entry again. Under rn->lock. */
static long rec_match(struct runner *rn, const char *id, const char *name, const json_t *matrix)
{
    for (size_t i = 0; i < rn->resume_n && i < rn->run->njobs; i++) {
        const struct pipeline_run_job *e = &rn->run->jobs[i];
        if (rn->taken[i] || strcmp(e->id, id) || strcmp(e->name, name))
            continue;
        if (!(e->matrix ? matrix && json_equal(e->matrix, matrix) : !matrix))
            continue;
        rn->taken[i] = 1;
        return (long)i;
    }
    return -1;
}

/* Adds n legs of job j of sc to the record and to rn->legs (values is the
 * job's context, copied per leg). done != NONE: they complete at once. A
 * resumed run's legs take their entries back, those that had completed with
 * their conclusion and outputs. */
void legs_add(struct runner *rn, struct scope *sc, size_t j, size_t n, char **names,
              json_t **matrices, const json_t *values, enum pipeline_conclusion done,
              const char *why)
{
    struct upd u = {0};
    struct wjob *wj = &sc->jobs[j];
    const struct pipeline_job *job = &sc->wf->jobs[j];
    long *match = xcalloc(n ? n : 1, sizeof(*match));
    char **new_names = xcalloc(n ? n : 1, sizeof(*new_names));
    json_t **new_mats = xcalloc(n ? n : 1, sizeof(*new_mats));
    size_t nnew = 0;

    for (size_t i = 0; i < n; i++) {
        json_t *m = matrices ? matrices[i] : NULL;
        match[i] = rn->resume_n ? rec_match(rn, job->id, names[i], m) : -1;
        if (match[i] < 0) {
            new_names[nnew] = names[i];
            new_mats[nnew++] = m;
        }
    }
    u.op = UPD_ADD;
    u.rec = rn->run->njobs;
    u.n = nnew;
    u.id = job->id;
    u.names = new_names;
    u.matrices = new_mats;
    u.done = done;
    u.at = time_now_ms();
    if (nnew && runner_record(rn, &u) < 0) {
        atomic_store(&rn->cancel, 1);
        done = PIPELINE_CONCLUSION_FAILURE;
    }
    wj->expanded = 1;
    wj->nlegs += n;
    for (size_t i = 0, k = 0; i < n; i++) {
        struct leg *l = xcalloc(1, sizeof(*l));
        l->sc = sc;
        atomic_store(&l->masks_seen, rn->masks.n);
        l->job = j;
        l->rec = match[i] >= 0 ? (size_t)match[i] : u.rec + k++;
        l->name = xstrdup(names[i]);
        l->matrix = matrices && matrices[i] ? json_incref(matrices[i]) : NULL;
        l->rn = rn;
        pthread_mutex_init(&l->wlock, NULL);
        l->values = json_deep_copy(values);
        json_object_set_new(l->values, "matrix",
                            l->matrix ? json_deep_copy(l->matrix) : json_object());
        json_object_set_new(l->values, "job", json_pack("{s:s}", "status", "success"));
        /* as GitHub's runner: max-parallel is the bound, at most the legs there are */
        size_t maxpar = wj->max_parallel && wj->max_parallel < n ? wj->max_parallel : n;
        json_object_set_new(l->values, "strategy",
                            json_pack("{s:b, s:i, s:i, s:i}", "fail-fast", wj->fail_fast,
                                      "job-index", (json_int_t)i, "job-total", (json_int_t)n,
                                      "max-parallel", (json_int_t)maxpar));
        if (rn->nlegs == rn->caplegs) {
            rn->caplegs = rn->caplegs ? rn->caplegs * 2 : 16;
            rn->legs = xrealloc(rn->legs, rn->caplegs * sizeof(*rn->legs));
        }
        rn->legs[rn->nlegs++] = l;
        const struct pipeline_run_job *e = match[i] >= 0 ? &rn->run->jobs[match[i]] : NULL;
        if (e && e->status == PIPELINE_JOB_COMPLETED) {
            /* it ended before the run was queued again: as it ended */
            l->state = LEG_DONE;
            l->conclusion = e->conclusion;
            l->outputs = e->outputs ? json_deep_copy(e->outputs) : json_object();
            wj->finished++;
            if (l->conclusion == PIPELINE_CONCLUSION_FAILURE && wj->fail_fast)
                wj->fail_fast_hit = 1;
            continue;
        }
        if (e && done != PIPELINE_CONCLUSION_NONE) {
            struct upd end = {0};
            end.op = UPD_END;
            end.rec = l->rec;
            end.conclusion = done;
            end.at = time_now_ms();
            (void)runner_record(rn, &end);
        }
        if (done != PIPELINE_CONCLUSION_NONE) {
            l->state = LEG_DONE;
            l->conclusion = done;
            wj->finished++;
            if (why) {
                leg_stream(l, 0);
                leg_say(l, &rn->masks, PIPELINE_LOG_ERROR, "%s", why);
                leg_stream(l, (unsigned)-1);
            }
        }
    }
    free(match);
    free(new_names);
    free(new_mats);
}

/* The name of a job of sc as GitHub forms it ("CALLER / NAME" in a called
 * workflow), masked, for the record. Caller frees. */
static char *scoped_name(struct runner *rn, const struct scope *sc, const char *name)
{
    char *full = xasprintf("%s%s", sc->prefix, name);
    char *out = runner_masked_name(&rn->masks, full);
    free(full);
    return out;
}

/* A new scope of wf's jobs; base, prefix and file are taken over. */
struct scope *scope_add(struct runner *rn, const struct pipeline_workflow *wf, json_t *base,
                        char *prefix, char *file, struct scope *parent, size_t caller)
{
    struct scope *sc = xcalloc(1, sizeof(*sc));

    sc->wf = wf;
    sc->base = base;
    sc->prefix = prefix;
    sc->file = file;
    sc->parent = parent;
    sc->caller = caller;
    sc->depth = parent ? parent->depth + 1 : 1;
    sc->jobs = xcalloc(wf->n_jobs ? wf->n_jobs : 1, sizeof(*sc->jobs));
    for (size_t j = 0; j < wf->n_jobs; j++)
        sc->jobs[j].outputs = json_object();
    sc->outputs = json_object();
    rn->scopes = xrealloc(rn->scopes, (rn->nscopes + 1) * sizeof(*rn->scopes));
    rn->scopes[rn->nscopes++] = sc;
    return sc;
}

void scope_free(struct scope *sc)
{
    for (size_t j = 0; j < sc->wf->n_jobs; j++)
        json_decref(sc->jobs[j].outputs);
    free(sc->jobs);
    if (sc->parent) /* the run's own is rn->base */
        json_decref(sc->base);
    json_decref(sc->outputs);
    free(sc->prefix);
    free(sc->file);
    free(sc);
}

/* Why job j of sc cannot call file: a cycle or too deep a nesting (GitHub
 * refuses both before anything runs). 0, or PIPELINE_ELOAD with the reason. */
static int call_refused(struct runner *rn, const struct scope *sc, const char *file,
                        struct sw_err *err)
{
    for (const struct scope *p = sc; p; p = p->parent) {
        if (strcmp(p->file, file) != 0)
            continue;
        struct buf chain = BUF_INIT;
        for (const struct scope *q = sc; q; q = q->parent) {
            char *t = xasprintf("%s -> %s", q->file, chain.len ? chain.data : file);
            buf_reset(&chain);
            buf_adds(&chain, t);
            buf_add(&chain, "", 0);
            chain.len--;
            free(t);
        }
        sw_err_set(err, PIPELINE_ELOAD, "%s calls itself (%s)", file, chain.data);
        buf_free(&chain);
        return PIPELINE_ELOAD;
    }
    if (sc->depth >= CALL_MAX_DEPTH)
        return sw_err_set(err, PIPELINE_ELOAD,
                          "calling %s nests more than %d levels of workflows (the caller and %d "
                          "levels of reusable workflows, as on GitHub)",
                          file, CALL_MAX_DEPTH, CALL_MAX_DEPTH - 1);
    if (rn->nscopes > CALL_MAX_CALLS)
        return sw_err_set(err, PIPELINE_ELOAD, "the run calls more than %d reusable workflows",
                          CALL_MAX_CALLS);
    return 0;
}

/* One value to mask, once, as a secret is masked: trimmed, whole and line
 * by line. Under rn->lock. */
static void mask_add(struct runner *rn, const char *v, size_t len)
{
    while (len && strchr(" \t\r\n", v[0])) {
        v++;
        len--;
    }
    while (len && strchr(" \t\r\n", v[len - 1]))
        len--;
    if (!len || memchr(v, 0, len))
        return;
    for (size_t i = 0; i < rn->masks.n; i++)
        if (strlen(rn->masks.v[i]) == len && memcmp(rn->masks.v[i], v, len) == 0)
            return;
    pthread_mutex_lock(&rn->mask_lock);
    pipeline_step_list_add(&rn->masks, v, len);
    atomic_store(&rn->nmasks, rn->masks.n);
    pthread_mutex_unlock(&rn->mask_lock);
    const char *nl = memchr(v, '\n', len), *cr = memchr(v, '\r', len);
    if (nl || cr) {
        const char *end = v + len;
        for (const char *p = v; p < end;) {
            const char *q = p;
            while (q < end && *q != '\n' && *q != '\r')
                q++;
            mask_add(rn, p, (size_t)(q - p));
            p = q + 1;
        }
    }
}

/* Every value secrets (a called workflow's secrets context) holds is masked
 * from now on in every log line of the run, also those of legs already
 * running: a value the caller computed (`${{ format('{0}x', secrets.A) }}`,
 * a literal) is a secret of the called workflow. Under rn->lock. */
static void masks_add(struct runner *rn, const json_t *secrets)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)secrets, k, v)
    {
        if (json_is_string(v))
            mask_add(rn, json_string_value(v), json_string_length(v));
    }
}

/* Job j of sc calls a reusable workflow: each of its n legs (names, mats)
 * becomes a scope of the called workflow's jobs, named "LEG / ...", whose
 * inputs and secrets are evaluated with the caller's contexts (values: needs,
 * matrix); a leg whose call cannot be made is one failed entry with the
 * reason on one line. */
void scope_expand_call(struct runner *rn, struct scope *sc, size_t j, size_t n, char **names,
                       json_t **mats, json_t *values)
{
    const struct pipeline_job *job = &sc->wf->jobs[j];
    struct pipeline_workflow *called = NULL;
    struct sw_err err = {0};
    char *file = call_file(&job->uses);
    int rc = call_refused(rn, sc, file, &err);

    if (rc == 0)
        rc = call_load(rn->o->repo, rn->sha, file,
                       rn->o->unsupported_skip ? PIPELINE_LOAD_SKIP_UNSUPPORTED : 0, &called, &err);
    if (rc == 0) {
        rn->called = xrealloc(rn->called, (rn->ncalled + 1) * sizeof(*rn->called));
        rn->called[rn->ncalled++] = called;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *inputs = NULL, *secrets = NULL;
        struct sw_err e2 = err;
        if (rc == 0) {
            json_object_set_new(values, "matrix",
                                mats[i] ? json_deep_copy(mats[i]) : json_object());
            e2 = (struct sw_err){0};
            if (call_inputs(called, job, values, &inputs, &e2) == 0)
                (void)call_secrets(called, job, values, &secrets, &e2);
        }
        if (!secrets) {
            char *why = xasprintf("job %s: %s", job->id, e2.msg);
            legs_add(rn, sc, j, 1, &names[i], &mats[i], values, PIPELINE_CONCLUSION_FAILURE, why);
            free(why);
            json_decref(inputs);
            continue;
        }
        masks_add(rn, secrets);
        /* the called workflow sees the caller's github (its event) and vars,
         * and only the inputs and secrets passed to it */
        json_t *base = json_deep_copy(rn->base);
        json_object_set_new(base, "inputs", inputs);
        json_object_set_new(base, "secrets", secrets);
        (void)scope_add(rn, called, base, xasprintf("%s / ", names[i]), xstrdup(file), sc, j);
        sc->jobs[j].expanded = 1;
        sc->jobs[j].nlegs++;
    }
    free(file);
}

/* Job j's needs are done: evaluates its if:, expands its matrix, adds its
 * legs (or, for a caller, the workflows it calls). */
static void job_expand(struct runner *rn, struct scope *sc, size_t j)
{
    const struct pipeline_job *job = &sc->wf->jobs[j];
    enum pipeline_status st;
    json_t *values = json_deep_copy(sc->base), *legs = NULL, *m = NULL;
    struct sw_err err = {0};
    int run_it = 0;
    const char *base_name = job->name.s && !job->name.expr ? job->name.s : job->id;
    char *one = NULL;

    json_object_set_new(values, "needs", needs_ctx(rn, sc, j, &st));
    struct pipeline_expr_ctx ctx = {values, st, 0, PIPELINE_STATUS_NONE, NULL, 0};
    const char *cond = job->if_.s ? job->if_.s : "";
    if (pipeline_expr_condition(cond, strlen(cond), NULL, &ctx, &run_it, NULL, &err) < 0) {
        char *why = xasprintf("job %s: if: %s", job->id, err.msg);
        one = scoped_name(rn, sc, base_name);
        legs_add(rn, sc, j, 1, &one, NULL, values, PIPELINE_CONCLUSION_FAILURE, why);
        free(why);
        goto out;
    }
    if (!run_it) {
        one = scoped_name(rn, sc, base_name);
        legs_add(rn, sc, j, 1, &one, NULL, values, PIPELINE_CONCLUSION_SKIPPED, NULL);
        goto out;
    }
    if (strategy_eval(job, values, &sc->jobs[j], &err) < 0) {
        char *why = xasprintf("job %s: strategy: %s", job->id, err.msg);
        one = scoped_name(rn, sc, base_name);
        legs_add(rn, sc, j, 1, &one, NULL, values, PIPELINE_CONCLUSION_FAILURE, why);
        free(why);
        goto out;
    }
    if (job->strategy.matrix) {
        if (matrix_eval(job->strategy.matrix, values, &m, &err) < 0 ||
            pipeline_matrix_expand(m, &legs, &err) < 0) {
            char *why = xasprintf("job %s: matrix: %s", job->id, err.msg);
            one = scoped_name(rn, sc, base_name);
            legs_add(rn, sc, j, 1, &one, NULL, values, PIPELINE_CONCLUSION_FAILURE, why);
            free(why);
            goto out;
        }
    }
    size_t n = legs && json_array_size(legs) ? json_array_size(legs) : 1;
    char **names = xcalloc(n, sizeof(*names));
    json_t **mats = xcalloc(n, sizeof(*mats));
    for (size_t i = 0; i < n; i++) {
        mats[i] = legs && json_array_size(legs) ? json_array_get(legs, i) : NULL;
        char *nm = NULL;
        if (job->name.s && job->name.expr) {
            json_object_set_new(values, "matrix",
                                mats[i] ? json_deep_copy(mats[i]) : json_object());
            if (runner_eval_text(&job->name, values, st, NULL, &nm, &err) < 0)
                nm = xstrdup(job->id);
        } else
            nm = mats[i] ? pipeline_runner_leg_name(base_name, mats[i]) : xstrdup(base_name);
        names[i] = scoped_name(rn, sc, nm);
        free(nm);
    }
    if (job->uses.builtin == PIPELINE_BUILTIN_LOCAL_WORKFLOW && !job->skipped)
        scope_expand_call(rn, sc, j, n, names, mats, values);
    else
        legs_add(rn, sc, j, n, names, mats, values, PIPELINE_CONCLUSION_NONE, NULL);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(mats);
out:
    free(one);
    json_decref(m);
    json_decref(legs);
    json_decref(values);
}

/* When every leg of job j of sc has ended (for a caller, every workflow it
 * called): its result and outputs. */
static void job_settle(struct runner *rn, struct scope *sc, size_t j)
{
    struct wjob *wj = &sc->jobs[j];
    const struct pipeline_job *job = &sc->wf->jobs[j];
    int fail = 0, cancel = 0, all_skipped = 1;

    for (size_t i = 0; i < rn->nlegs + rn->nscopes; i++) {
        enum pipeline_conclusion c;
        const json_t *outputs;
        if (i < rn->nlegs) {
            const struct leg *l = rn->legs[i];
            if (l->sc != sc || l->job != j)
                continue;
            c = l->conclusion;
            outputs = l->outputs;
        } else {
            const struct scope *called = rn->scopes[i - rn->nlegs];
            if (called->parent != sc || called->caller != j)
                continue;
            c = called->result;
            outputs = called->outputs;
        }
        fail |= c == PIPELINE_CONCLUSION_FAILURE;
        cancel |= c == PIPELINE_CONCLUSION_CANCELLED;
        all_skipped &= c == PIPELINE_CONCLUSION_SKIPPED;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)outputs, k, v)
        {
            if (json_string_length(v))
                json_object_set(wj->outputs, k, v);
        }
    }
    int coe = job->continue_on_error.s && !job->continue_on_error.expr && job->continue_on_error.b;
    wj->result = fail && !coe  ? PIPELINE_CONCLUSION_FAILURE
                 : cancel      ? PIPELINE_CONCLUSION_CANCELLED
                 : all_skipped ? PIPELINE_CONCLUSION_SKIPPED
                               : PIPELINE_CONCLUSION_SUCCESS;
    wj->done = 1;
}

/* Every job of sc is done: its result and, for a called workflow, its
 * outputs (on.workflow_call.outputs over the jobs context), handed to the
 * caller's job. */
static void scope_settle(struct runner *rn, struct scope *sc)
{
    int fail = 0, cancel = 0, all_skipped = sc->wf->n_jobs > 0;
    json_t *jobs = json_object();

    for (size_t j = 0; j < sc->wf->n_jobs; j++) {
        const struct wjob *wj = &sc->jobs[j];
        fail |= wj->result == PIPELINE_CONCLUSION_FAILURE;
        cancel |= wj->result == PIPELINE_CONCLUSION_CANCELLED;
        all_skipped &= wj->result == PIPELINE_CONCLUSION_SKIPPED;
        json_object_set_new(jobs, sc->wf->jobs[j].id,
                            json_pack("{s:s, s:O}", "result", pipeline_conclusion_name(wj->result),
                                      "outputs", wj->outputs));
    }
    sc->result = fail          ? PIPELINE_CONCLUSION_FAILURE
                 : cancel      ? PIPELINE_CONCLUSION_CANCELLED
                 : all_skipped ? PIPELINE_CONCLUSION_SKIPPED
                               : PIPELINE_CONCLUSION_SUCCESS;
    if (sc->parent) {
        json_t *values = json_deep_copy(sc->base);
        struct sw_err err = {0};
        json_object_set_new(values, "jobs", jobs);
        jobs = NULL;
        if (call_outputs(sc->wf, values, sc->outputs, &err) < 0) {
            sc->result = PIPELINE_CONCLUSION_FAILURE;
            /* said in the log of the called workflow's first job */
            for (size_t i = 0; i < rn->nlegs; i++)
                if (rn->legs[i]->sc == sc) {
                    leg_stream(rn->legs[i], 0);
                    leg_say(rn->legs[i], &rn->masks, PIPELINE_LOG_ERROR, "%s: %s", sc->file,
                            err.msg);
                    leg_stream(rn->legs[i], (unsigned)-1);
                    break;
                }
        }
        json_decref(values);
        sc->parent->jobs[sc->caller].finished++;
    }
    json_decref(jobs);
    sc->done = 1;
}

/* Starts what may start and settles what has ended. 1 when all is done. Under rn->lock. */
int runner_schedule(struct runner *rn)
{
    size_t max = rn->o->jobs ? rn->o->jobs : 1;
    int changed;

    /* In the order the scopes were made (so the record lists the legs of a
     * caller's matrix in order), and again while scopes are added or settle
     * (each pass that repeats did one or the other, both bounded): a called
     * workflow's caller settles, and the jobs after it start, without a wait. */
    do {
        size_t before = rn->nscopes;
        changed = 0;
        for (size_t s = 0; s < rn->nscopes; s++) {
            struct scope *sc = rn->scopes[s];
            const struct pipeline_workflow *wf = sc->wf;
            int all = 1;
            if (sc->done)
                continue;
            for (size_t j = 0; j < wf->n_jobs; j++) {
                struct wjob *wj = &sc->jobs[j];
                if (wj->done)
                    continue;
                if (!wj->expanded) {
                    int ready = 1;
                    for (size_t i = 0; i < wf->jobs[j].n_needs; i++)
                        ready &= sc->jobs[wf->jobs[j].needs_index[i]].done;
                    if (ready)
                        job_expand(rn, sc, j);
                }
                if (wj->expanded && wj->finished == wj->nlegs)
                    job_settle(rn, sc, j);
                all &= wj->done;
            }
            if (all) {
                scope_settle(rn, sc);
                changed = 1;
            }
        }
        changed |= rn->nscopes != before;
    } while (changed && !rn->scopes[0]->done);
    int all = rn->scopes[0]->done;
    for (size_t i = 0; i < rn->nlegs && !all; i++) {
        struct leg *l = rn->legs[i];
        struct wjob *wj = &l->sc->jobs[l->job];
        size_t maxpar = wj->max_parallel ? wj->max_parallel : (size_t)-1;
        if (l->state != LEG_PENDING)
            continue;
        if (wj->fail_fast_hit || atomic_load(&rn->cancel)) {
            struct upd u = {0};
            u.op = UPD_END;
            u.rec = l->rec;
            u.conclusion = PIPELINE_CONCLUSION_CANCELLED;
            u.at = time_now_ms();
            (void)runner_record(rn, &u);
            l->state = LEG_DONE;
            l->conclusion = PIPELINE_CONCLUSION_CANCELLED;
            wj->finished++;
            continue;
        }
        if (rn->running >= max || wj->running >= maxpar)
            continue;
        /* the record says running once the leg has its concurrency group
         * (leg_thread): until then it is queued */
        l->state = LEG_RUNNING;
        if (pthread_create(&l->thread, NULL, leg_thread, l) != 0) {
            l->state = LEG_DONE;
            l->conclusion = PIPELINE_CONCLUSION_FAILURE;
            wj->finished++;
            continue;
        }
        l->joinable = 1;
        rn->running++;
        wj->running++;
    }
    return all;
}

/* Whether a leg has yet to start. Under rn->lock. */
int legs_pending(const struct runner *rn)
{
    for (size_t i = 0; i < rn->nlegs; i++)
        if (rn->legs[i]->state == LEG_PENDING)
            return 1;
    return 0;
}

/* Sleeps a tick, or less when the run ends; returns whether it ended. */
static int ticker_wait(struct runner *rn)
{
    int64_t ms = rn->o->tick_ms ? rn->o->tick_ms : 200;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&rn->tick_lock);
    while (!atomic_load(&rn->stop) &&
           pthread_cond_timedwait(&rn->tick_cond, &rn->tick_lock, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&rn->tick_lock);
    return atomic_load(&rn->stop);
}

/* Extends the lease, notices cancel requests, flushes quiet logs. */
void *runner_ticker(void *arg)
{
    struct runner *rn = arg;
    int64_t every = rn->heartbeat_ms;
    int64_t next = time_mono_ms() + every, next_read = time_mono_ms() + 1000;
    int64_t next_steps = time_mono_ms() + 1000;

    /* once the run ends, the legs have recorded and flushed what they had:
     * no last round */
    while (!ticker_wait(rn)) {
        if (rn->o->cancel && atomic_load(rn->o->cancel))
            atomic_store(&rn->cancel, 1);
        pthread_mutex_lock(&rn->lock);
        if (atomic_load(&rn->cancel))
            for (size_t i = 0; i < rn->nlegs; i++)
                atomic_store(&rn->legs[i]->cancel, 1);
        if (time_mono_ms() >= next) {
            struct sw_err err = {0};
            int rc = pipeline_run_heartbeat(rn->st, rn->run, &err);
            if (rc == PIPELINE_ELOST) {
                atomic_store(&rn->lost, 1);
                atomic_store(&rn->cancel, 1);
            } else if (rc == 0 && rn->run->cancel_requested) {
                atomic_store(&rn->cancel, 1);
                if (!rn->run->cancelled_by && rn->run->reason && !rn->cancel_reason)
                    rn->cancel_reason = xstrdup(rn->run->reason);
            }
            next = time_mono_ms() + every;
        }
        /* a cancel request is read every second, not only at the heartbeat:
         * reading does not write, and `run cancel` should act at once */
        if (time_mono_ms() >= next_read) {
            struct pipeline_run *now = NULL;
            struct sw_err err = {0};
            if (pipeline_run_load(rn->st, rn->id, &now, &err) == 0) {
                if (now->cancel_requested || now->status == PIPELINE_RUN_CANCELLED) {
                    atomic_store(&rn->cancel, 1);
                    if (now->cancelled_by && !rn->cancelled_by)
                        rn->cancelled_by = xstrdup(now->cancelled_by);
                    if (!now->cancelled_by && now->reason && !rn->cancel_reason)
                        rn->cancel_reason = xstrdup(now->reason);
                }
                /* a job its concurrency group asked to stop */
                for (size_t i = 0; i < rn->nlegs; i++)
                    if (rn->legs[i]->rec < now->njobs &&
                        now->jobs[rn->legs[i]->rec].cancel_requested)
                        atomic_store(&rn->legs[i]->cancel, 1);
                pipeline_run_free(now);
            }
            next_read = time_mono_ms() + 1000;
        }
        for (size_t i = 0; i < rn->nlegs && time_mono_ms() >= next_steps; i++) {
            struct leg *l = rn->legs[i];
            if (l->state != LEG_RUNNING || !l->steps_dirty)
                continue;
            struct upd u = {0};
            u.op = UPD_STEPS;
            u.rec = l->rec;
            u.steps = l->steps;
            u.nsteps = l->nsteps;
            l->steps_dirty = 0;
            (void)runner_record(rn, &u);
        }
        if (time_mono_ms() >= next_steps)
            next_steps = time_mono_ms() + 1000;
        for (size_t i = 0; i < rn->nlegs; i++) {
            struct leg *l = rn->legs[i];
            if (l->state != LEG_RUNNING)
                continue;
            struct sw_err err = {0};
            pthread_mutex_lock(&l->wlock);
            if (l->w)
                (void)pipeline_runlog_flush_due(l->w, &err);
            pthread_mutex_unlock(&l->wlock);
        }
        pthread_cond_broadcast(&rn->cond);
        pthread_mutex_unlock(&rn->lock);
    }
    return NULL;
}

/* ---- the run
 * ------------------------------------------------------------------------------------- */

int pipeline_runner_run(struct store *st, struct pipeline_run *run,
                        const struct pipeline_workflow *wf, const struct pipeline_runner_opts *o,
                        struct sw_err *err)
{
    struct runner rn = {0};
    struct utsname un;
    const char *labels[8];
    pthread_t tick;
    int rc = 0, ticking = 0;
    char *why = NULL;

    rn.st = st;
    rn.run = run;
    rn.wf = wf;
    rn.o = o;
    pthread_mutex_init(&rn.lock, NULL);
    pthread_cond_init(&rn.cond, NULL);
    pthread_mutex_init(&rn.echo_lock, NULL);
    pthread_mutex_init(&rn.mask_lock, NULL);
    pthread_mutex_init(&rn.tick_lock, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&rn.tick_cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    snprintf(rn.arch, sizeof(rn.arch), "X64");
    if (uname(&un) == 0 && (strcmp(un.machine, "aarch64") == 0 || strcmp(un.machine, "arm64") == 0))
        snprintf(rn.arch, sizeof(rn.arch), "ARM64");
    else if (uname(&un) == 0 && strcmp(un.machine, "x86_64") != 0)
        snprintf(rn.arch, sizeof(rn.arch), "%.15s", un.machine);
    memcpy(labels, default_labels, sizeof(default_labels));
    char archlabel[16];
    for (size_t i = 0; i < sizeof(archlabel) && (i == 0 || archlabel[i - 1]); i++)
        archlabel[i] =
            (char)((rn.arch[i] >= 'A' && rn.arch[i] <= 'Z') ? rn.arch[i] + 32 : rn.arch[i]);
    archlabel[sizeof(archlabel) - 1] = 0;
    labels[2] = archlabel;
    rn.labels = o->labels ? o->labels : labels;
    (void)scope_add(&rn, wf, NULL, xstrdup(""),
                    xstrdup(run->workflow_file ? run->workflow_file : ""), NULL, 0);

    memcpy(rn.id, run->id, sizeof(rn.id));
    rn.sha = xstrdup(run->sha);
    rn.ref = xstrdup(run->ref ? run->ref : "");
    rn.workflow = xstrdup(run->workflow ? run->workflow : "");
    rn.event = xstrdup(run->event ? run->event : "push");
    rn.actor = xstrdup(run->actor ? run->actor : "");
    rn.heartbeat_ms = run->claim.lease_ms > 0 ? run->claim.lease_ms / 3 : 20000;
    /* a run queued again at its gates (queue.c, apply_recover) resumes */
    rn.resume_n = run->njobs;
    rn.taken = xcalloc(run->njobs ? run->njobs : 1, 1);
    rn.run_dir = path_join(o->work_dir, run->id);
    if ((rc = fs_mkdir_p(rn.run_dir, err)) < 0)
        goto fail;
    if ((rc = pipeline_runlog_new(st, run->id, 0, &rn.log, err)) < 0)
        goto fail;
    if ((rc = runner_contexts(&rn, err)) < 0)
        goto fail;
    rn.scopes[0]->base = rn.base;

    if (pthread_create(&tick, NULL, runner_ticker, &rn) == 0)
        ticking = 1;
    pthread_mutex_lock(&rn.lock);
    while (!runner_schedule(&rn)) {
        struct timespec ts;
        if (o->park && rn.gated && rn.running == 0 && !rn.park_failed && !atomic_load(&rn.cancel) &&
            !legs_pending(&rn)) {
            /* every job that has begun waits at a gate: nothing for this
             * runner to do until a person decides, so release the run */
            struct sw_err perr = {0};
            if (pipeline_run_park(st, rn.run, &perr) == 0) {
                atomic_store(&rn.parked, 1);
                break;
            }
            rn.park_failed = 1;
            if (perr.code == PIPELINE_ELOST) {
                atomic_store(&rn.lost, 1);
                atomic_store(&rn.cancel, 1);
            }
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (rn.running == 0) {
            /* nothing runs and nothing more may start: cannot happen with
             * acyclic needs, but never spin */
            int progress = 0;
            for (size_t i = 0; i < rn.nlegs; i++)
                progress |= rn.legs[i]->state == LEG_PENDING;
            progress |= !rn.scopes[0]->done;
            if (!progress)
                break;
        }
        pthread_cond_timedwait(&rn.cond, &rn.lock, &ts);
    }
    pthread_mutex_unlock(&rn.lock);
    pthread_mutex_lock(&rn.tick_lock);
    atomic_store(&rn.stop, 1);
    pthread_cond_signal(&rn.tick_cond);
    pthread_mutex_unlock(&rn.tick_lock);
    if (ticking)
        pthread_join(tick, NULL);
    for (size_t i = 0; i < rn.nlegs; i++)
        if (rn.legs[i]->joinable)
            pthread_join(rn.legs[i]->thread, NULL);

    if (atomic_load(&rn.parked)) {
        rc = sw_err_set(err, PIPELINE_EPARKED, "run %s waits at its gates (parked)", run->id);
        goto out;
    }
    if (atomic_load(&rn.lost)) {
        rc = sw_err_set(err, PIPELINE_ELOST, "run %s: the claim was lost while it ran", run->id);
        goto out;
    }
    enum pipeline_conclusion c = PIPELINE_CONCLUSION_SUCCESS;
    for (size_t j = 0; j < wf->n_jobs; j++)
        if (rn.scopes[0]->jobs[j].result == PIPELINE_CONCLUSION_FAILURE) {
            c = PIPELINE_CONCLUSION_FAILURE;
            if (!why)
                why = xasprintf("job %s failed", wf->jobs[j].id);
        }
    /* a job its concurrency group cancelled cancels the run, as on GitHub */
    for (size_t j = 0; j < wf->n_jobs && c == PIPELINE_CONCLUSION_SUCCESS; j++)
        if (rn.scopes[0]->jobs[j].result == PIPELINE_CONCLUSION_CANCELLED) {
            c = PIPELINE_CONCLUSION_CANCELLED;
            why = xasprintf("job %s was cancelled", wf->jobs[j].id);
        }
    if (atomic_load(&rn.cancel)) {
        c = PIPELINE_CONCLUSION_CANCELLED;
        free(why);
        why = rn.cancelled_by    ? xasprintf("cancelled by %s", rn.cancelled_by)
              : rn.cancel_reason ? xstrdup(rn.cancel_reason)
                                 : xstrdup("cancelled");
    }
    rc = pipeline_run_finish(st, run, c, why, err);
    goto out;
fail:
    if (rc != PIPELINE_ELOST) {
        struct sw_err e2 = {0};
        (void)pipeline_run_finish(st, run, PIPELINE_CONCLUSION_FAILURE, err->msg, &e2);
    }
out:
    for (size_t i = 0; i < rn.nlegs; i++) {
        struct leg *l = rn.legs[i];
        pthread_mutex_destroy(&l->wlock);
        free(l->name);
        json_decref(l->matrix);
        json_decref(l->outputs);
        json_decref(l->values);
        for (size_t k = 0; k < l->nsteps; k++)
            free(l->steps[k].name);
        free(l->steps);
        free(l);
    }
    free(rn.legs);
    for (size_t s = 0; s < rn.nscopes; s++)
        scope_free(rn.scopes[s]);
    free(rn.scopes);
    for (size_t i = 0; i < rn.ncalled; i++)
        pipeline_workflow_free(rn.called[i]);
    free(rn.called);
    if (rn.log)
        pipeline_runlog_free(rn.log);
    pipeline_step_list_free(&rn.masks);
    json_decref(rn.base);
    free(rn.run_dir);
    free(rn.cancelled_by);
    free(rn.cancel_reason);
    free(rn.sha);
    free(rn.ref);
    free(rn.workflow);
    free(rn.event);
    free(rn.actor);
    free(rn.repository);
    free(rn.taken);
    free(why);
    pthread_mutex_destroy(&rn.lock);
    pthread_cond_destroy(&rn.cond);
    pthread_mutex_destroy(&rn.echo_lock);
    pthread_mutex_destroy(&rn.mask_lock);
    pthread_mutex_destroy(&rn.tick_lock);
    pthread_cond_destroy(&rn.tick_cond);
    return rc;
}
