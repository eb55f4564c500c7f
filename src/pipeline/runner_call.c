/* Scopes: the run's workflow is the first; a job that calls a local
 * reusable workflow has no leg of its own but, for each of its legs, a
 * scope of the called workflow's jobs, scheduled like the run's own. Here
 * the call is refused (a cycle, too deep, too many) or made: the called file
 * loaded at the run's commit, its inputs and secrets evaluated with the
 * caller's contexts (reusable.c checks them), and the secrets' values
 * masked in the whole run from then on. */
#include "pipeline/pipeline.h"
#include "pipeline/call_internal.h"
#include "pipeline/runner_internal.h"

#include <stdlib.h>
#include <string.h>

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
