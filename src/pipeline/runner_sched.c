/* Scheduling, on the main thread under rn->lock: a job whose needs are done
 * is expanded (its if:, its strategy, its matrix) into legs added to the
 * record, or, for a caller, into the workflows it calls (runner_call.c); a
 * job whose legs have all ended is settled (its result and outputs), a
 * scope whose jobs have, too; pending legs start on threads of their own,
 * at most opts->jobs at once and max-parallel of a job. A resumed run's
 * legs meet their entries of the record again. */
#include "pipeline/call_internal.h"
#include "pipeline/pipeline.h"
#include "pipeline/runner_internal.h"

#include <stdlib.h>
#include <string.h>

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

/* Leg i of the n of job j of sc, its record entry rec, named name, with its
 * matrix values (NULL: none): its contexts are values with its matrix, job
 * and strategy. Added to rn->legs. Under rn->lock. */
static struct leg *leg_new(struct runner *rn, struct scope *sc, size_t j, size_t rec,
                           const char *name, json_t *matrix, const json_t *values, size_t i,
                           size_t n)
{
    struct wjob *wj = &sc->jobs[j];
    struct leg *l = xcalloc(1, sizeof(*l));

    l->sc = sc;
    atomic_store(&l->masks_seen, rn->masks.n);
    l->job = j;
    l->rec = rec;
    l->name = xstrdup(name);
    l->matrix = matrix ? json_incref(matrix) : NULL;
    l->rn = rn;
    pthread_mutex_init(&l->wlock, NULL);
    l->values = json_deep_copy(values);
    json_object_set_new(l->values, "matrix", l->matrix ? json_deep_copy(l->matrix) : json_object());
    json_object_set_new(l->values, "job", json_pack("{s:s}", "status", "success"));
    /* as GitHub's runner: max-parallel is the bound, at most the legs there are */
    size_t maxpar = wj->max_parallel && wj->max_parallel < n ? wj->max_parallel : n;
    json_object_set_new(l->values, "strategy",
                        json_pack("{s:b, s:i, s:i, s:i}", "fail-fast", wj->fail_fast, "job-index",
                                  (json_int_t)i, "job-total", (json_int_t)n, "max-parallel",
                                  (json_int_t)maxpar));
    if (rn->nlegs == rn->caplegs) {
        rn->caplegs = rn->caplegs ? rn->caplegs * 2 : 16;
        rn->legs = xrealloc(rn->legs, rn->caplegs * sizeof(*rn->legs));
    }
    rn->legs[rn->nlegs++] = l;
    return l;
}

/* A leg that is over before it starts: as its record entry e ended, when
 * it had ended before the run was queued again; else with done (NONE: it
 * is not), why said in its log. Under rn->lock. */
static void leg_ended(struct runner *rn, struct leg *l, const struct pipeline_run_job *e,
                      enum pipeline_conclusion done, const char *why)
{
    struct wjob *wj = &l->sc->jobs[l->job];

    if (e && e->status == PIPELINE_JOB_COMPLETED) {
        /* it ended before the run was queued again: as it ended */
        l->state = LEG_DONE;
        l->conclusion = e->conclusion;
        l->outputs = e->outputs ? json_deep_copy(e->outputs) : json_object();
        wj->finished++;
        if (l->conclusion == PIPELINE_CONCLUSION_FAILURE && wj->fail_fast)
            wj->fail_fast_hit = 1;
        return;
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
        size_t rec = match[i] >= 0 ? (size_t)match[i] : u.rec + k++;
        struct leg *l =
            leg_new(rn, sc, j, rec, names[i], matrices ? matrices[i] : NULL, values, i, n);
        leg_ended(rn, l, match[i] >= 0 ? &rn->run->jobs[match[i]] : NULL, done, why);
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

/* Job j of sc ends without running: one leg named base_name, completed
 * with c at once; why (NULL: nothing; taken) said in its log. */
static void job_end_one(struct runner *rn, struct scope *sc, size_t j, const char *base_name,
                        const json_t *values, enum pipeline_conclusion c, char *why)
{
    char *one = scoped_name(rn, sc, base_name);
    legs_add(rn, sc, j, 1, &one, NULL, values, c, why);
    free(why);
    free(one);
}

/* The names of job j's n legs (mats: their matrix values, NULL entries
 * for none): its name evaluated with each leg's matrix when an expression,
 * else with the values in parentheses; masked and scoped. values' matrix is
 * left as the last leg's. */
static char **leg_names(struct runner *rn, struct scope *sc, size_t j, size_t n, json_t **mats,
                        json_t *values, enum pipeline_status st)
{
    const struct pipeline_job *job = &sc->wf->jobs[j];
    const char *base_name = job->name.s && !job->name.expr ? job->name.s : job->id;
    char **names = xcalloc(n, sizeof(*names));
    struct sw_err err = {0};

    for (size_t i = 0; i < n; i++) {
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
    return names;
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

    json_object_set_new(values, "needs", needs_ctx(rn, sc, j, &st));
    struct pipeline_expr_ctx ctx = {values, st, 0, PIPELINE_STATUS_NONE, NULL, 0};
    const char *cond = job->if_.s ? job->if_.s : "";
    if (pipeline_expr_condition(cond, strlen(cond), NULL, &ctx, &run_it, NULL, &err) < 0) {
        job_end_one(rn, sc, j, base_name, values, PIPELINE_CONCLUSION_FAILURE,
                    xasprintf("job %s: if: %s", job->id, err.msg));
        goto out;
    }
    if (!run_it) {
        job_end_one(rn, sc, j, base_name, values, PIPELINE_CONCLUSION_SKIPPED, NULL);
        goto out;
    }
    if (strategy_eval(job, values, &sc->jobs[j], &err) < 0) {
        job_end_one(rn, sc, j, base_name, values, PIPELINE_CONCLUSION_FAILURE,
                    xasprintf("job %s: strategy: %s", job->id, err.msg));
        goto out;
    }
    if (job->strategy.matrix) {
        if (matrix_eval(job->strategy.matrix, values, &m, &err) < 0 ||
            pipeline_matrix_expand(m, &legs, &err) < 0) {
            job_end_one(rn, sc, j, base_name, values, PIPELINE_CONCLUSION_FAILURE,
                        xasprintf("job %s: matrix: %s", job->id, err.msg));
            goto out;
        }
    }
    size_t n = legs && json_array_size(legs) ? json_array_size(legs) : 1;
    json_t **mats = xcalloc(n, sizeof(*mats));
    for (size_t i = 0; i < n; i++)
        mats[i] = legs && json_array_size(legs) ? json_array_get(legs, i) : NULL;
    char **names = leg_names(rn, sc, j, n, mats, values, st);
    if (job->uses.builtin == PIPELINE_BUILTIN_LOCAL_WORKFLOW && !job->skipped)
        scope_expand_call(rn, sc, j, n, names, mats, values);
    else
        legs_add(rn, sc, j, n, names, mats, values, PIPELINE_CONCLUSION_NONE, NULL);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(mats);
out:
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

/* Expands the jobs whose needs are done and settles the jobs and scopes
 * that have ended. In the order the scopes were made (so the record lists
 * the legs of a caller's matrix in order), and again while scopes are added
 * or settle (each pass that repeats did one or the other, both bounded): a
 * called workflow's caller settles, and the jobs after it start, without a
 * wait. */
static void scopes_advance(struct runner *rn)
{
    int changed;

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
}

/* Starts the pending legs that may start (a place among opts->jobs and
 * their job's max-parallel), each on a thread of its own; cancels those
 * that may no longer (fail-fast, a cancelled run). */
static void legs_start(struct runner *rn)
{
    size_t max = rn->o->jobs ? rn->o->jobs : 1;

    for (size_t i = 0; i < rn->nlegs; i++) {
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
}

int runner_schedule(struct runner *rn)
{
    scopes_advance(rn);
    int all = rn->scopes[0]->done;
    if (!all)
        legs_start(rn);
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
