/* The job runner: a claimed run of a loaded workflow, run to its end. The
 * main thread schedules (needs as a DAG, matrices expanded into legs, job
 * `if:` evaluated when the needs are done); each leg runs on a thread of its
 * own, at most opts->jobs at once; a ticker thread extends the lease, notices
 * cancel requests and flushes quiet logs. Every change to the run record is
 * a pure update applied under compare-and-swap, made under rn->lock so the
 * record in memory is only ever touched by one thread at a time. */
#include "pipeline/pipeline.h"
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

extern char **environ;

#define NAME_MAX_BYTES 1000 /* job and step names kept in the record */
#define CLEANUP_GRACE_MS 2000

enum { LEG_PENDING, LEG_RUNNING, LEG_DONE };

struct runner;

struct leg {
    size_t job; /* index in wf->jobs */
    size_t rec; /* index in the run's jobs */
    char *name;
    json_t *matrix; /* this leg's values, or NULL (owned) */
    int state;      /* under rn->lock */
    enum pipeline_conclusion conclusion;
    json_t *outputs; /* owned; set when done */
    pthread_t thread;
    int joinable;
    struct runner *rn;
    pthread_mutex_t wlock;            /* guards w: the ticker flushes it */
    struct pipeline_runlog_writer *w; /* the stream being written, or NULL */
    json_t *values;                   /* this leg's contexts (its own copy) */
    /* The steps that ended, kept here and written by the ticker at most once
     * a second (and with the leg's end), not one compare-and-swap a step:
     * under rn->lock. */
    struct pipeline_run_step *steps;
    size_t nsteps;
    int steps_dirty;
};

struct wjob {
    int expanded, done;
    enum pipeline_conclusion result;
    json_t *outputs; /* of its legs, merged (owned) */
    size_t nlegs, finished, running;
    int fail_fast_hit;
};

struct runner {
    struct store *st;
    struct pipeline_run *run; /* under lock */
    const struct pipeline_workflow *wf;
    const struct pipeline_runner_opts *o;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_mutex_t echo_lock;
    /* The ticker sleeps on tick_cond, so that the run's end wakes it at
     * once instead of waiting out its period. */
    pthread_mutex_t tick_lock;
    pthread_cond_t tick_cond;
    struct leg **legs;
    size_t nlegs, caplegs, running;
    struct wjob *jobs;
    _Atomic int cancel, lost, stop;
    struct pipeline_runlog *log;
    json_t *base;                    /* github, vars, secrets, inputs (read-only once running) */
    struct pipeline_step_list masks; /* the secrets' values */
    const char *const *labels;
    char *run_dir;
    char *cancelled_by; /* who asked, once seen (under lock) */
    /* The run's fields the legs read, copied at the start: rn->run itself is
     * rewritten by every update, under the lock the legs do not hold. */
    char id[PIPELINE_RUN_ID_SIZE];
    char *sha, *ref, *workflow, *event, *actor;
    char *repository; /* github.repository */
    int64_t heartbeat_ms;
    char arch[16];
};

/* ---- small helpers ----------------------------------------------------------------------- */

/* A name fit for the record: control characters become spaces, bounded. */
static char *clean_name(const char *s)
{
    struct buf b = BUF_INIT;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && b.len < NAME_MAX_BYTES;
         p++)
        buf_add(&b, (*p < 0x20 || *p == 0x7f) ? " " : (const char *)p, 1);
    buf_add(&b, "", 0);
    char *out = buf_detach(&b, NULL);
    if (!utf8_valid(out, 1)) {
        free(out);
        return xstrdup("job");
    }
    return out;
}

/* clean_name of s with every mask replaced by "***": names go into the
 * record, which is not masked when read. */
static char *masked_name(const struct pipeline_step_list *masks, const char *s)
{
    struct buf b = BUF_INIT;
    pipeline_step_mask(masks, s ? s : "", s ? strlen(s) : 0, &b);
    buf_add(&b, "", 1);
    char *out = clean_name(b.data);
    buf_free(&b);
    return out;
}

/* A JSON value as GitHub shows it in a leg's name or as text. */
static void json_text(struct buf *b, const json_t *v)
{
    if (json_is_string(v))
        buf_add(b, json_string_value(v), json_string_length(v));
    else if (json_is_integer(v))
        buf_addf(b, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == (double)(long long)d && d > -1e15 && d < 1e15)
            buf_addf(b, "%lld", (long long)d);
        else
            buf_addf(b, "%.15g", d);
    } else if (json_is_true(v))
        buf_adds(b, "true");
    else if (json_is_false(v))
        buf_adds(b, "false");
    else if (json_is_object(v) || json_is_array(v)) {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        buf_adds(b, t ? t : "");
        free(t);
    }
}

char *pipeline_runner_leg_name(const char *name, const json_t *leg)
{
    struct buf b = BUF_INIT;
    const char *k;
    json_t *v;
    int first = 1;

    buf_adds(&b, name);
    if (json_is_object(leg) && json_object_size(leg) > 0) {
        buf_adds(&b, " (");
        json_object_foreach((json_t *)leg, k, v)
        {
            if (!first)
                buf_adds(&b, ", ");
            first = 0;
            json_text(&b, v);
        }
        buf_adds(&b, ")");
    }
    buf_add(&b, "", 0);
    return buf_detach(&b, NULL);
}

/* Evaluates a template (or takes the text as is) into a string (caller frees). */
static int eval_text(const struct pipeline_val *v, const json_t *values, enum pipeline_status st,
                     const char *workspace, char **out, struct sw_err *err)
{
    struct pipeline_expr_ctx ctx = {values, st, 0, PIPELINE_STATUS_NONE, workspace, 0};
    struct pipeline_value val = PIPELINE_VALUE_INIT;

    *out = NULL;
    if (!v->s) {
        *out = xstrdup("");
        return 0;
    }
    if (!v->expr) {
        *out = xstrdup(v->s);
        return 0;
    }
    int rc = pipeline_expr_template(v->s, strlen(v->s), NULL, &ctx, &val, NULL, err);
    if (rc < 0)
        return sw_err_prefix(err, "line %zu: ", v->line);
    *out = pipeline_value_to_string(&val, NULL);
    pipeline_value_clear(&val);
    return 0;
}

/* Evaluates a template into a JSON value (caller decrefs). */
static int eval_json(const char *s, const json_t *values, json_t **out, struct sw_err *err)
{
    struct pipeline_expr_ctx ctx = {values, PIPELINE_STATUS_NONE, 0, PIPELINE_STATUS_NONE, NULL, 0};
    struct pipeline_value val = PIPELINE_VALUE_INIT;
    int rc = pipeline_expr_template(s, strlen(s), NULL, &ctx, &val, NULL, err);
    if (rc < 0)
        return rc;
    *out = pipeline_value_to_json(&val);
    pipeline_value_clear(&val);
    return 0;
}

/* A mapping (env, outputs) evaluated into an object of strings, added to obj. */
static int eval_map(const struct pipeline_map *m, const json_t *values, enum pipeline_status st,
                    const char *workspace, json_t *obj, struct sw_err *err)
{
    if (m->expr.s) {
        json_t *v = NULL;
        int rc = eval_json(m->expr.s, values, &v, err);
        if (rc < 0)
            return rc;
        if (!json_is_object(v)) {
            json_decref(v);
            return sw_err_set(err, PIPELINE_EEVAL, "line %zu: expected a mapping", m->expr.line);
        }
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            struct buf b = BUF_INIT;
            json_text(&b, x);
            buf_add(&b, "", 0);
            json_object_set_new(obj, k, json_string(b.data));
            buf_free(&b);
        }
        json_decref(v);
        return 0;
    }
    for (size_t i = 0; i < m->n; i++) {
        char *s = NULL;
        int rc = eval_text(&m->items[i].val, values, st, workspace, &s, err);
        if (rc < 0)
            return rc;
        json_t *js = utf8_valid(s, 0) ? json_string(s) : json_string("");
        json_object_set_new(obj, m->items[i].key, js);
        free(s);
    }
    return 0;
}

static const char *default_labels[] = {"self-hosted", "linux", NULL, "ubuntu-latest", NULL};

/* ---- the run record ------------------------------------------------------------------------ */

enum { UPD_ADD, UPD_START, UPD_STEPS, UPD_END };
struct upd {
    int op;
    size_t rec;
    /* ADD */
    size_t n;
    const char *id;
    char *const *names;
    json_t *const *matrices;
    enum pipeline_conclusion done; /* ADD: complete them at once with this (NONE: queued) */
    /* STEPS, END: the leg's steps so far (nsteps 0 at END: left as they are) */
    const struct pipeline_run_step *steps;
    size_t nsteps;
    enum pipeline_conclusion conclusion;
    /* END */
    const json_t *outputs;
    int64_t at;
};

static int upd_apply(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    const struct upd *u = arg;

    if (u->op == UPD_ADD) {
        if (r->njobs != u->rec)
            return sw_err_set(err, SW_EINVAL, "run %s: its jobs changed under the runner", r->id);
        for (size_t i = 0; i < u->n; i++) {
            struct pipeline_run_job *j = pipeline_run_job_add(r);
            if (!j)
                return sw_err_set(err, SW_EINVAL, "run %s: more than %d jobs", r->id,
                                  PIPELINE_RUN_MAX_JOBS);
            j->id = xstrdup(u->id);
            j->name = xstrdup(u->names[i]);
            j->matrix = u->matrices && u->matrices[i] ? json_deep_copy(u->matrices[i]) : NULL;
            j->status = PIPELINE_JOB_QUEUED;
            if (u->done != PIPELINE_CONCLUSION_NONE) {
                j->status = PIPELINE_JOB_COMPLETED;
                j->conclusion = u->done;
                j->started_ms = j->ended_ms = u->at;
            }
        }
        return 0;
    }
    if (u->rec >= r->njobs)
        return sw_err_set(err, SW_EINVAL, "run %s: job %zu is gone", r->id, u->rec);
    struct pipeline_run_job *j = &r->jobs[u->rec];
    switch (u->op) {
    case UPD_START:
        j->status = PIPELINE_JOB_RUNNING;
        j->started_ms = u->at;
        break;
    case UPD_STEPS:
    case UPD_END:
        for (size_t k = 0; k < u->nsteps; k++) {
            if (k >= j->nsteps && !pipeline_run_step_add(j, u->steps[k].name))
                return sw_err_set(err, SW_EINVAL, "run %s: too many steps", r->id);
            free(j->steps[k].name);
            j->steps[k].name = xstrdup(u->steps[k].name);
            j->steps[k].outcome = u->steps[k].outcome;
            j->steps[k].conclusion = u->steps[k].conclusion;
        }
        if (u->op == UPD_STEPS)
            break;
        j->status = PIPELINE_JOB_COMPLETED;
        j->conclusion = u->conclusion;
        if (!j->started_ms)
            j->started_ms = u->at;
        j->ended_ms = u->at;
        json_decref(j->outputs);
        j->outputs = u->outputs && json_object_size(u->outputs) ? json_deep_copy(u->outputs) : NULL;
        break;
    }
    return 0;
}

/* Applies u to the record; the caller holds rn->lock. A lost claim stops the run. */
static int record(struct runner *rn, struct upd *u)
{
    struct sw_err err = {0};
    int rc = pipeline_run_update(rn->st, rn->run, upd_apply, u, &err);
    if (rc == PIPELINE_ELOST) {
        atomic_store(&rn->lost, 1);
        atomic_store(&rn->cancel, 1);
    }
    return rc;
}

/* ---- logs ------------------------------------------------------------------------------------ */

/* Writes one line (already masked) to the leg's current stream and echoes it. */
static void leg_line(struct leg *l, int64_t time_ms, enum pipeline_step_log_kind kind,
                     const char *text, size_t len)
{
    struct runner *rn = l->rn;
    char ts[40];
    struct buf b = BUF_INIT;
    struct sw_err err = {0};

    time_format_iso(time_ms, ts, sizeof(ts));
    buf_addf(&b, "%s %s", ts, pipeline_step_log_prefix(kind));
    size_t head = b.len;
    buf_add(&b, text, len);
    pthread_mutex_lock(&l->wlock);
    if (l->w) {
        buf_add(&b, "\n", 1);
        (void)pipeline_runlog_append(l->w, b.data, b.len, NULL, &err);
        b.len--;
    }
    pthread_mutex_unlock(&l->wlock);
    if (rn->o->echo) {
        pthread_mutex_lock(&rn->echo_lock);
        rn->o->echo(rn->o->echo_ctx, l->rec, l->name,
                    b.data + head - strlen(pipeline_step_log_prefix(kind)),
                    b.len - head + strlen(pipeline_step_log_prefix(kind)));
        pthread_mutex_unlock(&rn->echo_lock);
    }
    buf_free(&b);
}

/* A line of the runner's own, masked with masks. */
static void leg_say(struct leg *l, const struct pipeline_step_list *masks,
                    enum pipeline_step_log_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void leg_say(struct leg *l, const struct pipeline_step_list *masks,
                    enum pipeline_step_log_kind kind, const char *fmt, ...)
{
    struct buf raw = BUF_INIT, out = BUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    buf_vaddf(&raw, fmt, ap);
    va_end(ap);
    /* one line: a message may quote what a workflow holds */
    for (size_t i = 0; i < raw.len; i++)
        if (raw.data[i] == '\n' || raw.data[i] == '\r')
            raw.data[i] = ' ';
    pipeline_step_mask(masks, raw.data ? raw.data : "", raw.len, &out);
    leg_line(l, time_now_ms(), kind, out.data ? out.data : "", out.len);
    buf_free(&raw);
    buf_free(&out);
}

static void step_log(void *ctx, int64_t time_ms, enum pipeline_step_log_kind kind, const char *text,
                     size_t len)
{
    leg_line(ctx, time_ms, kind, text, len);
}

/* Switches the leg's stream to (rec, step); closes the one before, in the
 * background (its step is over: the next one need not wait for the store),
 * except the leg's last (step -1), written with every stream handed over
 * before the leg's end is recorded. */
static void leg_stream(struct leg *l, unsigned step)
{
    struct sw_err err = {0};
    struct pipeline_runlog_writer *w = NULL, *old;

    if (l->rec > PIPELINE_RUNLOG_MAX_JOB || step > PIPELINE_RUNLOG_MAX_STEP ||
        pipeline_runlog_open(l->rn->log, (unsigned)l->rec, step, &w, &err) < 0)
        w = NULL;
    pthread_mutex_lock(&l->wlock);
    old = l->w;
    l->w = w;
    pthread_mutex_unlock(&l->wlock);
    if (old && step != (unsigned)-1)
        pipeline_runlog_close_later(old);
    else {
        (void)pipeline_runlog_close(old, &err);
        (void)pipeline_runlog_sync(l->rn->log, &err);
    }
}

/* ---- one leg ----------------------------------------------------------------------------------
 */

struct jobrun {
    struct leg *leg;
    struct runner *rn;
    const struct pipeline_job *job;
    char *dir, *workspace, *temp;
    char tracking[64];
    struct pipeline_step_vars env; /* workflow, job, GITHUB_ENV */
    struct pipeline_step_list path, masks;
    json_t *steps; /* the steps context (borrowed from values) */
    enum pipeline_status status;
    int64_t deadline_mono;
    int timed_out;
};

static enum pipeline_status jr_status(struct jobrun *jr)
{
    if (atomic_load(&jr->rn->cancel) || jr->timed_out)
        return PIPELINE_STATUS_CANCELLED;
    return jr->status;
}

static void env_to_json(const struct pipeline_step_vars *v, json_t *values)
{
    json_t *o = json_object();
    for (size_t i = 0; i < v->n; i++)
        if (utf8_valid(v->v[i].value, 0) && strlen(v->v[i].value) == v->v[i].value_len)
            json_object_set_new(o, v->v[i].name, json_string(v->v[i].value));
    json_object_set_new(values, "env", o);
}

static void vars_from_json(struct pipeline_step_vars *v, const json_t *o)
{
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)o, k, x)
    {
        if (json_is_string(x))
            pipeline_step_vars_set(v, k, strlen(k), json_string_value(x), json_string_length(x));
    }
}

/* A path inside the workspace for a relative one written in the workflow. */
static char *inside(const char *base, const char *rel, struct sw_err *err)
{
    if (!rel || !*rel)
        return xstrdup(base);
    if (rel[0] == '/')
        return str_starts_with(rel, base) ? xstrdup(rel) : path_join(base, rel);
    for (const char *p = rel; *p; p = strchr(p, '/') ? strchr(p, '/') + 1 : p + strlen(p))
        if (p[0] == '.' && p[1] == '.' && (p[2] == '/' || p[2] == 0)) {
            sw_err_set(err, SW_EINVAL, "'%s' leaves the workspace", rel);
            return NULL;
        }
    return path_join(base, rel);
}

static void proc_log(void *ctx, int stream, const char *line, size_t len)
{
    struct jobrun *jr = ctx;
    struct buf out = BUF_INIT;
    (void)stream;
    pipeline_step_mask(&jr->masks, line, len, &out);
    leg_line(jr->leg, time_now_ms(), PIPELINE_LOG_OUTPUT, out.data ? out.data : "", out.len);
    buf_free(&out);
}

/* Runs git with args in cwd; its output goes to the log. 0 when it exited 0. */
static int git(struct jobrun *jr, const char *cwd, const char *const *argv)
{
    struct proc_opts po = {0};
    struct proc_result pr = {0};
    struct sw_err err = {0};

    po.argv = argv;
    po.cwd = cwd;
    po.flags = PROC_MERGE | PROC_NO_CAPTURE;
    po.on_line = proc_log;
    po.ctx = jr;
    po.cancel = &jr->rn->cancel;
    if (proc_run(&po, &pr, &err) < 0) {
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "%s", err.msg);
        return -1;
    }
    int ok = pr.exited && pr.exit_code == 0;
    proc_result_free(&pr);
    return ok ? 0 : -1;
}

/* actions/checkout: the run's commit (or with.ref), fetched from the
 * repository into the workspace (or with.path under it), fetch-depth deep. */
static enum pipeline_step_outcome checkout(struct jobrun *jr, const struct pipeline_step *step,
                                           const json_t *values)
{
    struct runner *rn = jr->rn;
    char *ref = NULL, *path = NULL, *depth = NULL, *dir = NULL, *url = NULL, *abs = NULL;
    struct sw_err err = {0};
    enum pipeline_step_outcome out = PIPELINE_STEP_FAILURE;
    const struct pipeline_val *v;
    long n = 1;

    if ((v = pipeline_map_get(&step->with, "ref")) &&
        eval_text(v, values, jr_status(jr), jr->workspace, &ref, &err) < 0)
        goto fail;
    if ((v = pipeline_map_get(&step->with, "path")) &&
        eval_text(v, values, jr_status(jr), jr->workspace, &path, &err) < 0)
        goto fail;
    if ((v = pipeline_map_get(&step->with, "fetch-depth")) &&
        eval_text(v, values, jr_status(jr), jr->workspace, &depth, &err) < 0)
        goto fail;
    if (depth && *depth) {
        char *end;
        errno = 0;
        n = strtol(depth, &end, 10);
        if (errno || *end || n < 0) {
            sw_err_set(&err, SW_EINVAL, "fetch-depth: expected a whole number, got '%s'", depth);
            goto fail;
        }
    }
    if (!rn->o->repo) {
        sw_err_set(&err, SW_EINVAL, "actions/checkout: this runner has no repository to check out");
        goto fail;
    }
    if (!(dir = inside(jr->workspace, path, &err)))
        goto fail;
    abs = realpath(rn->o->repo, NULL);
    if (!abs) {
        sw_err_sys(&err, errno, "actions/checkout: %s", rn->o->repo);
        goto fail;
    }
    url = xasprintf("file://%s", abs);
    if (fs_mkdir_p(dir, &err) < 0)
        goto fail;
    const char *want = ref && *ref ? ref : rn->sha;
    if (want[0] == '-' || strchr(want, '\n')) { /* never an option of git fetch */
        sw_err_set(&err, SW_EINVAL, "actions/checkout: ref '%s' is not a ref", want);
        goto fail;
    }
    char dflag[32];
    snprintf(dflag, sizeof(dflag), "--depth=%ld", n);
    leg_say(jr->leg, &jr->masks, PIPELINE_LOG_OUTPUT, "Fetching %s of %s into %s", want, abs, dir);
    const char *init[] = {"git", "init", "-q", ".", NULL};
    const char *fetch_shallow[] = {"git", "fetch", "-q", "--no-tags", dflag, url, want, NULL};
    const char *fetch_full[] = {"git", "fetch", "-q", "--no-tags", url, want, NULL};
    const char *co[] = {"git", "checkout", "-q", "--force", "--detach", "FETCH_HEAD", NULL};
    if (git(jr, dir, init) < 0 || git(jr, dir, n ? fetch_shallow : fetch_full) < 0 ||
        git(jr, dir, co) < 0) {
        sw_err_set(&err, SW_EIO, "actions/checkout: git failed (see above)");
        goto fail;
    }
    out = PIPELINE_STEP_SUCCESS;
    goto out;
fail:
    leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "%s", err.msg);
out:
    free(ref);
    free(path);
    free(depth);
    free(dir);
    free(url);
    free(abs);
    return out;
}

/* The default name of a step, as GitHub forms it. */
static char *step_default_name(const struct pipeline_step *s)
{
    if (s->uses.raw.s)
        return xasprintf("Run %s", s->uses.raw.s);
    const char *r = s->run.s ? s->run.s : "";
    while (*r == '\n' || *r == ' ')
        r++;
    size_t n = strcspn(r, "\n");
    char *line = xstrndup(r, n);
    char *out = xasprintf("Run %s", line);
    free(line);
    return out;
}

static void runner_env(struct jobrun *jr, struct pipeline_step_vars *re)
{
    struct runner *rn = jr->rn;
#define SETV(n, v) pipeline_step_vars_set(re, n, strlen(n), (v), strlen(v))
    SETV("GITHUB_ACTIONS", "true");
    SETV("GITHUB_WORKSPACE", jr->workspace);
    SETV("GITHUB_SHA", rn->sha);
    SETV("GITHUB_REF", rn->ref);
    const char *rn_name = rn->ref;
    SETV("GITHUB_REF_TYPE", str_starts_with(rn_name, "refs/tags/") ? "tag" : "branch");
    if (str_starts_with(rn_name, "refs/heads/"))
        rn_name += 11;
    else if (str_starts_with(rn_name, "refs/tags/"))
        rn_name += 10;
    SETV("GITHUB_REF_NAME", rn_name);
    SETV("GITHUB_REPOSITORY", rn->repository);
    SETV("GITHUB_RUN_ID", rn->id);
    SETV("GITHUB_RUN_NUMBER", "1");
    SETV("GITHUB_RUN_ATTEMPT", "1");
    SETV("GITHUB_JOB", jr->job->id);
    SETV("GITHUB_WORKFLOW", rn->workflow);
    SETV("GITHUB_EVENT_NAME", rn->event);
    SETV("GITHUB_ACTOR", rn->actor);
    char *ev = path_join(rn->run_dir, "event.json");
    SETV("GITHUB_EVENT_PATH", ev);
    free(ev);
    SETV("RUNNER_OS", "Linux");
    SETV("RUNNER_ARCH", rn->arch);
    SETV("RUNNER_NAME", rn->o->runner_name ? rn->o->runner_name : "slipway");
    SETV("RUNNER_TEMP", jr->temp);
    SETV("RUNNER_WORKSPACE", jr->dir);
    SETV("SLIPWAY_RUN_ID", rn->id);
#undef SETV
}

/* Runs one step; fills *outcome and the step's outputs into outputs. */
static enum pipeline_step_outcome run_step(struct jobrun *jr, const struct pipeline_step *s,
                                           const char *name, json_t *values, json_t *outputs)
{
    struct runner *rn = jr->rn;
    const struct pipeline_workflow *wf = rn->wf;
    struct pipeline_step_vars env = PIPELINE_STEP_VARS_INIT, re = PIPELINE_STEP_VARS_INIT;
    struct pipeline_step_result r = {0};
    struct pipeline_step_spec sp = {0};
    struct sw_err err = {0};
    char *script = NULL, *shell = NULL, *wd = NULL, *wdabs = NULL;
    json_t *senv = json_object();
    enum pipeline_step_outcome out = PIPELINE_STEP_FAILURE;
    const struct pipeline_val *shv = s->shell.s                  ? &s->shell
                                     : jr->job->defaults.shell.s ? &jr->job->defaults.shell
                                                                 : &wf->defaults.shell;
    const struct pipeline_val *wdv = s->working_directory.s ? &s->working_directory
                                     : jr->job->defaults.working_directory.s
                                         ? &jr->job->defaults.working_directory
                                         : &wf->defaults.working_directory;

    for (size_t i = 0; i < jr->env.n; i++)
        pipeline_step_vars_set(&env, jr->env.v[i].name, strlen(jr->env.v[i].name),
                               jr->env.v[i].value, jr->env.v[i].value_len);
    if (eval_map(&s->env, values, jr_status(jr), jr->workspace, senv, &err) < 0)
        goto fail;
    vars_from_json(&env, senv);
    env_to_json(&env, values);
    if (eval_text(&s->run, values, jr_status(jr), jr->workspace, &script, &err) < 0 ||
        eval_text(shv, values, jr_status(jr), jr->workspace, &shell, &err) < 0 ||
        eval_text(wdv, values, jr_status(jr), jr->workspace, &wd, &err) < 0)
        goto fail;
    if (!(wdabs = inside(jr->workspace, wd, &err)))
        goto fail;
    runner_env(jr, &re);
    int64_t timeout = 0;
    if (s->timeout_minutes.s && !s->timeout_minutes.expr && s->timeout_minutes.n > 0)
        timeout = (int64_t)(s->timeout_minutes.n * 60000.0);
    int64_t left = jr->deadline_mono - time_mono_ms();
    if (left < 1)
        left = 1;
    int job_bound = !timeout || left < timeout;
    if (job_bound)
        timeout = left;
    sp.name = name;
    sp.script = script;
    sp.shell = shell;
    sp.working_directory = wdabs;
    sp.temp_dir = jr->temp;
    sp.workspace = jr->workspace;
    sp.env = &env;
    sp.runner_env = &re;
    sp.path = &jr->path;
    sp.masks = &jr->masks;
    sp.tracking_id = jr->tracking;
    sp.orphans = PIPELINE_ORPHANS_JOB;
    sp.timeout_ms = timeout;
    sp.unsupported_skip = rn->o->unsupported_skip;
    sp.cancel = &rn->cancel;
    sp.log = step_log;
    sp.log_ctx = jr->leg;
    if (pipeline_step_run(&sp, &r, &err) < 0)
        goto fail;
    out = r.outcome;
    if (r.timed_out && job_bound) {
        jr->timed_out = 1;
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR,
                "The job running on runner %s has exceeded the maximum execution time",
                rn->o->runner_name ? rn->o->runner_name : "slipway");
    }
    for (size_t i = 0; i < r.outputs.n; i++)
        if (utf8_valid(r.outputs.v[i].value, 0))
            json_object_set_new(outputs, r.outputs.v[i].name, json_string(r.outputs.v[i].value));
    for (size_t i = 0; i < r.env.n; i++)
        pipeline_step_vars_set(&jr->env, r.env.v[i].name, strlen(r.env.v[i].name), r.env.v[i].value,
                               r.env.v[i].value_len);
    for (size_t i = 0; i < r.path.n; i++)
        pipeline_step_path_prepend(&jr->path, r.path.v[i]);
    for (size_t i = 0; i < r.masks.n; i++)
        pipeline_step_list_add(&jr->masks, r.masks.v[i], strlen(r.masks.v[i]));
    pipeline_step_result_free(&r);
    goto out;
fail:
    leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "%s", err.msg);
out:
    env_to_json(&jr->env, values);
    pipeline_step_vars_free(&env);
    pipeline_step_vars_free(&re);
    json_decref(senv);
    free(script);
    free(shell);
    free(wd);
    free(wdabs);
    return out;
}

static enum pipeline_conclusion concl_of(enum pipeline_step_outcome o)
{
    switch (o) {
    case PIPELINE_STEP_SUCCESS:
        return PIPELINE_CONCLUSION_SUCCESS;
    case PIPELINE_STEP_FAILURE:
        return PIPELINE_CONCLUSION_FAILURE;
    case PIPELINE_STEP_CANCELLED:
        return PIPELINE_CONCLUSION_CANCELLED;
    default:
        return PIPELINE_CONCLUSION_SKIPPED;
    }
}

/* Whether the runner's labels cover every label of runs-on; else the message. */
static int labels_match(struct jobrun *jr, const json_t *values, struct buf *asked)
{
    const struct pipeline_job *job = jr->job;
    const char *const *have = jr->rn->labels;
    int ok = 1;

    for (size_t i = 0; i < job->n_runs_on; i++) {
        json_t *v = NULL;
        struct sw_err err = {0};
        if (job->runs_on[i].expr) {
            if (eval_json(job->runs_on[i].s, values, &v, &err) < 0)
                v = json_string("");
        } else
            v = json_string(job->runs_on[i].s ? job->runs_on[i].s : "");
        json_t *arr = json_is_array(v) ? v : NULL;
        size_t n = arr ? json_array_size(arr) : 1;
        for (size_t k = 0; k < n; k++) {
            json_t *x = arr ? json_array_get(arr, k) : v;
            struct buf t = BUF_INIT;
            json_text(&t, x);
            buf_add(&t, "", 0);
            int found = 0;
            for (size_t h = 0; have[h]; h++)
                found |= strcasecmp(have[h], t.data) == 0;
            ok &= found;
            buf_addf(asked, "%s%s", asked->len ? ", " : "", t.data);
            buf_free(&t);
        }
        json_decref(v);
    }
    return ok;
}

/* Runs the leg's steps; returns its conclusion, its outputs in *outputs. */
static enum pipeline_conclusion leg_run(struct leg *l, json_t **outputs)
{
    struct runner *rn = l->rn;
    const struct pipeline_job *job = &rn->wf->jobs[l->job];
    struct jobrun jr = {0};
    struct sw_err err = {0};
    json_t *values = l->values, *jenv = json_object();
    enum pipeline_conclusion c = PIPELINE_CONCLUSION_FAILURE;
    struct buf asked = BUF_INIT;
    char num[32];

    jr.leg = l;
    jr.rn = rn;
    jr.job = job;
    jr.status = PIPELINE_STATUS_SUCCESS;
    for (size_t i = 0; i < rn->masks.n; i++)
        pipeline_step_list_add(&jr.masks, rn->masks.v[i], strlen(rn->masks.v[i]));
    *outputs = json_object();
    leg_stream(l, 0);
    leg_say(l, &jr.masks, PIPELINE_LOG_OUTPUT, "slipway runner %s: job %s (%s)",
            rn->o->runner_name ? rn->o->runner_name : "slipway", job->id, l->name);
    snprintf(num, sizeof(num), "%zu", l->rec);
    jr.dir = path_join(rn->run_dir, num);
    jr.workspace = path_join(jr.dir, "work");
    jr.temp = path_join(jr.dir, "temp");
    snprintf(jr.tracking, sizeof(jr.tracking), "%s-%zu", rn->id, l->rec);
    double minutes =
        job->timeout_minutes.s && !job->timeout_minutes.expr ? job->timeout_minutes.n : 360.0;
    jr.deadline_mono = time_mono_ms() + (int64_t)(minutes * 60000.0);
    if (fs_mkdir_p(jr.workspace, &err) < 0 || fs_mkdir_p(jr.temp, &err) < 0) {
        leg_say(l, &jr.masks, PIPELINE_LOG_ERROR, "%s", err.msg);
        goto out;
    }
    if (job->skipped) {
        leg_say(l, &jr.masks, PIPELINE_LOG_WARNING, "skipped: %s",
                job->skip_reason ? job->skip_reason : "not supported here");
        c = PIPELINE_CONCLUSION_SKIPPED;
        goto out;
    }
    if (job->uses.kind != PIPELINE_USES_NONE) {
        leg_say(l, &jr.masks, PIPELINE_LOG_ERROR,
                "job %s calls a reusable workflow, which this runner does not run yet", job->id);
        goto out;
    }
    if (!labels_match(&jr, values, &asked)) {
        struct buf have = BUF_INIT;
        for (size_t h = 0; rn->labels[h]; h++)
            buf_addf(&have, "%s%s", h ? ", " : "", rn->labels[h]);
        leg_say(l, &jr.masks, PIPELINE_LOG_ERROR,
                "no runner matches the labels of job %s: runs-on [%s]; this runner has [%s]",
                job->id, asked.data ? asked.data : "", have.data ? have.data : "");
        buf_free(&have);
        goto out;
    }
    /* env: the workflow's, then the job's, each evaluated where GitHub does */
    if (eval_map(&rn->wf->env, values, PIPELINE_STATUS_SUCCESS, NULL, jenv, &err) < 0)
        goto bad;
    vars_from_json(&jr.env, jenv);
    env_to_json(&jr.env, values);
    json_object_clear(jenv);
    if (eval_map(&job->env, values, PIPELINE_STATUS_SUCCESS, NULL, jenv, &err) < 0)
        goto bad;
    vars_from_json(&jr.env, jenv);
    env_to_json(&jr.env, values);
    jr.steps = json_object();
    json_object_set_new(values, "steps", jr.steps);
    /* runner.temp is this leg's RUNNER_TEMP */
    json_t *runner = json_object_get(values, "runner");
    if (json_is_object(runner))
        json_object_set_new(runner, "temp", json_string(jr.temp));

    for (size_t k = 0; k < job->n_steps; k++) {
        const struct pipeline_step *s = &job->steps[k];
        char *name = NULL;
        enum pipeline_step_outcome oc = PIPELINE_STEP_SKIPPED;
        json_t *souts = json_object();
        int run_it = 0;

        if (!s->name.s ||
            eval_text(&s->name, values, jr_status(&jr), jr.workspace, &name, &err) < 0)
            name = step_default_name(s);
        char *clean = masked_name(&jr.masks, name);
        /* job.status: the job's status so far, as a step sees it */
        json_object_set_new(values, "job",
                            json_pack("{s:s}", "status",
                                      jr_status(&jr) == PIPELINE_STATUS_FAILURE     ? "failure"
                                      : jr_status(&jr) == PIPELINE_STATUS_CANCELLED ? "cancelled"
                                                                                    : "success"));
        leg_stream(l, (unsigned)(k + 1));
        if (s->skipped) {
            leg_say(l, &jr.masks, PIPELINE_LOG_WARNING, "skipped: %s",
                    s->skip_reason ? s->skip_reason : "not supported here");
        } else {
            struct pipeline_expr_ctx ctx = {
                values, jr_status(&jr), 0, PIPELINE_STATUS_NONE, jr.workspace, 0};
            const char *cond = s->if_.s ? s->if_.s : "";
            if (pipeline_expr_condition(cond, strlen(cond), NULL, &ctx, &run_it, NULL, &err) < 0) {
                leg_say(l, &jr.masks, PIPELINE_LOG_ERROR, "step %s: if: %s", clean, err.msg);
                oc = PIPELINE_STEP_FAILURE;
                run_it = 0;
            }
        }
        if (run_it) {
            /* a run: step writes its own header group; the others get one here */
            if (s->uses.kind != PIPELINE_USES_NONE)
                leg_say(l, &jr.masks, PIPELINE_LOG_GROUP, "%s", clean);
            if (s->uses.builtin == PIPELINE_BUILTIN_CHECKOUT)
                oc = checkout(&jr, s, values);
            else if (s->uses.kind != PIPELINE_USES_NONE) {
                leg_say(l, &jr.masks, PIPELINE_LOG_ERROR, "%s: this runner does not run it yet",
                        s->uses.raw.s);
                oc = PIPELINE_STEP_FAILURE;
            } else
                oc = run_step(&jr, s, clean, values, souts);
            if (s->uses.kind != PIPELINE_USES_NONE)
                leg_say(l, &jr.masks, PIPELINE_LOG_ENDGROUP, "%s", "");
        }
        enum pipeline_conclusion sc = concl_of(oc);
        int coe = s->continue_on_error.s && !s->continue_on_error.expr && s->continue_on_error.b;
        if (s->continue_on_error.expr) {
            char *t = NULL;
            struct sw_err e2 = {0};
            if (eval_text(&s->continue_on_error, values, jr_status(&jr), jr.workspace, &t, &e2) ==
                0)
                coe = strcmp(t, "true") == 0;
            free(t);
        }
        if (sc == PIPELINE_CONCLUSION_FAILURE && coe)
            sc = PIPELINE_CONCLUSION_SUCCESS;
        if (sc == PIPELINE_CONCLUSION_FAILURE && jr.status == PIPELINE_STATUS_SUCCESS)
            jr.status = PIPELINE_STATUS_FAILURE;
        if (s->id.s) {
            json_t *e = json_pack("{s:O, s:s, s:s}", "outputs", souts, "outcome",
                                  pipeline_conclusion_name(concl_of(oc)), "conclusion",
                                  pipeline_conclusion_name(sc));
            json_object_set_new(jr.steps, s->id.s, e);
        }
        pthread_mutex_lock(&rn->lock);
        l->steps = xrealloc(l->steps, (l->nsteps + 1) * sizeof(*l->steps));
        l->steps[l->nsteps].name = xstrdup(clean);
        l->steps[l->nsteps].outcome = concl_of(oc);
        l->steps[l->nsteps].conclusion = sc;
        l->nsteps++;
        l->steps_dirty = 1;
        pthread_mutex_unlock(&rn->lock);
        json_decref(souts);
        free(name);
        free(clean);
    }
    leg_stream(l, 0);
    /* outputs: evaluated once the steps are done */
    if (eval_map(&job->outputs, values, jr_status(&jr), jr.workspace, *outputs, &err) < 0)
        leg_say(l, &jr.masks, PIPELINE_LOG_ERROR, "outputs: %s", err.msg);
    /* as GitHub: an output that holds a secret is dropped, never stored */
    {
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(*outputs, tmp, k, v)
        {
            struct buf m = BUF_INIT;
            pipeline_step_mask(&jr.masks, json_string_value(v), json_string_length(v), &m);
            if (m.len != json_string_length(v) ||
                (m.len && memcmp(m.data, json_string_value(v), m.len) != 0)) {
                leg_say(l, &jr.masks, PIPELINE_LOG_WARNING,
                        "Skip output '%s' since it may contain secret.", k);
                json_object_del(*outputs, k);
            }
            buf_free(&m);
        }
    }
    {
        /* the record keeps at most PIPELINE_RUN_OUTPUTS_MAX of them: past
         * that the job could not be recorded at all */
        size_t total = 0;
        const char *k;
        json_t *v;
        json_object_foreach(*outputs, k, v) total += strlen(k) + json_string_length(v);
        if (total > PIPELINE_RUN_OUTPUTS_MAX) {
            leg_say(l, &jr.masks, PIPELINE_LOG_ERROR,
                    "the job's outputs take %zu bytes, more than the %u a job may have: "
                    "none is kept",
                    total, PIPELINE_RUN_OUTPUTS_MAX);
            json_object_clear(*outputs);
            jr.status = PIPELINE_STATUS_FAILURE;
        }
    }
    c = jr.timed_out || atomic_load(&rn->cancel) ? PIPELINE_CONCLUSION_CANCELLED
        : jr.status == PIPELINE_STATUS_SUCCESS   ? PIPELINE_CONCLUSION_SUCCESS
                                                 : PIPELINE_CONCLUSION_FAILURE;
    if (jr.timed_out)
        c = PIPELINE_CONCLUSION_FAILURE;
    goto out;
bad:
    leg_say(l, &jr.masks, PIPELINE_LOG_ERROR, "%s", err.msg);
out : {
    size_t killed = 0;
    struct sw_err e2 = {0};
    if (jr.tracking[0] && pipeline_step_cleanup(jr.tracking, CLEANUP_GRACE_MS, &killed, &e2) == 0 &&
        killed)
        leg_say(l, &jr.masks, PIPELINE_LOG_OUTPUT, "Cleaning up orphan processes: %zu stopped",
                killed);
}
    leg_say(l, &jr.masks, PIPELINE_LOG_OUTPUT, "Job %s: %s", l->name, pipeline_conclusion_name(c));
    leg_stream(l, (unsigned)-1); /* closes */
    pipeline_step_vars_free(&jr.env);
    pipeline_step_list_free(&jr.path);
    pipeline_step_list_free(&jr.masks);
    buf_free(&asked);
    json_decref(jenv);
    free(jr.dir);
    free(jr.workspace);
    free(jr.temp);
    return c;
}

/* ---- scheduling --------------------------------------------------------------------------------
 */

static void *leg_thread(void *arg)
{
    struct leg *l = arg;
    struct runner *rn = l->rn;
    json_t *outputs = NULL;
    enum pipeline_conclusion c = leg_run(l, &outputs);
    struct upd u = {0};
    const struct pipeline_job *job = &rn->wf->jobs[l->job];
    struct wjob *wj = &rn->jobs[l->job];

    u.op = UPD_END;
    u.rec = l->rec;
    u.conclusion = c;
    u.outputs = outputs;
    u.at = time_now_ms();
    pthread_mutex_lock(&rn->lock);
    u.steps = l->steps;
    u.nsteps = l->nsteps;
    l->steps_dirty = 0;
    (void)record(rn, &u);
    l->conclusion = c;
    l->outputs = outputs;
    l->state = LEG_DONE;
    rn->running--;
    wj->running--;
    wj->finished++;
    if (c == PIPELINE_CONCLUSION_FAILURE &&
        (!job->strategy.fail_fast.s || job->strategy.fail_fast.expr || job->strategy.fail_fast.b))
        wj->fail_fast_hit = 1;
    pthread_cond_broadcast(&rn->cond);
    pthread_mutex_unlock(&rn->lock);
    return NULL;
}

/* The needs context of job j and the status its `if:` sees. Under rn->lock. */
static json_t *needs_ctx(struct runner *rn, size_t j, enum pipeline_status *st)
{
    const struct pipeline_job *job = &rn->wf->jobs[j];
    json_t *needs = json_object();

    *st = PIPELINE_STATUS_SUCCESS;
    for (size_t i = 0; i < job->n_needs; i++) {
        struct wjob *n = &rn->jobs[job->needs_index[i]];
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
        return eval_json(json_string_value(m), values, out, err);
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

/* Adds n legs of job j to the record and to rn->legs (values is the job's
 * context, copied per leg). done != NONE: they complete at once. */
static void legs_add(struct runner *rn, size_t j, size_t n, char **names, json_t **matrices,
                     const json_t *values, enum pipeline_conclusion done, const char *why)
{
    struct upd u = {0};
    struct wjob *wj = &rn->jobs[j];

    u.op = UPD_ADD;
    u.rec = rn->run->njobs;
    u.n = n;
    u.id = rn->wf->jobs[j].id;
    u.names = names;
    u.matrices = matrices;
    u.done = done;
    u.at = time_now_ms();
    if (record(rn, &u) < 0) {
        atomic_store(&rn->cancel, 1);
        done = PIPELINE_CONCLUSION_FAILURE;
    }
    wj->expanded = 1;
    wj->nlegs = n;
    for (size_t i = 0; i < n; i++) {
        struct leg *l = xcalloc(1, sizeof(*l));
        l->job = j;
        l->rec = u.rec + i;
        l->name = xstrdup(names[i]);
        l->matrix = matrices && matrices[i] ? json_incref(matrices[i]) : NULL;
        l->rn = rn;
        pthread_mutex_init(&l->wlock, NULL);
        l->values = json_deep_copy(values);
        json_object_set_new(l->values, "matrix",
                            l->matrix ? json_deep_copy(l->matrix) : json_object());
        json_object_set_new(l->values, "job", json_pack("{s:s}", "status", "success"));
        json_object_set_new(
            l->values, "strategy",
            json_pack("{s:b, s:i, s:i, s:i}", "fail-fast",
                      !rn->wf->jobs[j].strategy.fail_fast.s || rn->wf->jobs[j].strategy.fail_fast.b,
                      "job-index", (json_int_t)i, "job-total", (json_int_t)n, "max-parallel",
                      (json_int_t)n));
        if (rn->nlegs == rn->caplegs) {
            rn->caplegs = rn->caplegs ? rn->caplegs * 2 : 16;
            rn->legs = xrealloc(rn->legs, rn->caplegs * sizeof(*rn->legs));
        }
        rn->legs[rn->nlegs++] = l;
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
}

/* Job j's needs are done: evaluates its if:, expands its matrix, adds its legs. */
static void job_expand(struct runner *rn, size_t j)
{
    const struct pipeline_job *job = &rn->wf->jobs[j];
    enum pipeline_status st;
    json_t *values = json_deep_copy(rn->base), *legs = NULL, *m = NULL;
    struct sw_err err = {0};
    int run_it = 0;
    const char *base_name = job->name.s && !job->name.expr ? job->name.s : job->id;
    char *one = NULL;

    json_object_set_new(values, "needs", needs_ctx(rn, j, &st));
    struct pipeline_expr_ctx ctx = {values, st, 0, PIPELINE_STATUS_NONE, NULL, 0};
    const char *cond = job->if_.s ? job->if_.s : "";
    if (pipeline_expr_condition(cond, strlen(cond), NULL, &ctx, &run_it, NULL, &err) < 0) {
        char *why = xasprintf("job %s: if: %s", job->id, err.msg);
        one = clean_name(base_name);
        legs_add(rn, j, 1, &one, NULL, values, PIPELINE_CONCLUSION_FAILURE, why);
        free(why);
        goto out;
    }
    if (!run_it) {
        one = clean_name(base_name);
        legs_add(rn, j, 1, &one, NULL, values, PIPELINE_CONCLUSION_SKIPPED, NULL);
        goto out;
    }
    if (job->strategy.matrix) {
        if (matrix_eval(job->strategy.matrix, values, &m, &err) < 0 ||
            pipeline_matrix_expand(m, &legs, &err) < 0) {
            char *why = xasprintf("job %s: matrix: %s", job->id, err.msg);
            one = clean_name(base_name);
            legs_add(rn, j, 1, &one, NULL, values, PIPELINE_CONCLUSION_FAILURE, why);
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
            if (eval_text(&job->name, values, st, NULL, &nm, &err) < 0)
                nm = xstrdup(job->id);
        } else
            nm = mats[i] ? pipeline_runner_leg_name(base_name, mats[i]) : xstrdup(base_name);
        names[i] = masked_name(&rn->masks, nm);
        free(nm);
    }
    legs_add(rn, j, n, names, mats, values, PIPELINE_CONCLUSION_NONE, NULL);
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

/* When every leg of job j has ended: its result and outputs. */
static void job_settle(struct runner *rn, size_t j)
{
    struct wjob *wj = &rn->jobs[j];
    const struct pipeline_job *job = &rn->wf->jobs[j];
    int fail = 0, cancel = 0, all_skipped = 1;

    for (size_t i = 0; i < rn->nlegs; i++) {
        struct leg *l = rn->legs[i];
        if (l->job != j)
            continue;
        fail |= l->conclusion == PIPELINE_CONCLUSION_FAILURE;
        cancel |= l->conclusion == PIPELINE_CONCLUSION_CANCELLED;
        all_skipped &= l->conclusion == PIPELINE_CONCLUSION_SKIPPED;
        const char *k;
        json_t *v;
        json_object_foreach(l->outputs, k, v)
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

/* Starts what may start and settles what has ended. 1 when all is done. Under rn->lock. */
static int schedule(struct runner *rn)
{
    const struct pipeline_workflow *wf = rn->wf;
    size_t max = rn->o->jobs ? rn->o->jobs : 1;
    int all = 1;

    for (size_t j = 0; j < wf->n_jobs; j++) {
        struct wjob *wj = &rn->jobs[j];
        if (wj->done)
            continue;
        if (!wj->expanded) {
            int ready = 1;
            for (size_t i = 0; i < wf->jobs[j].n_needs; i++)
                ready &= rn->jobs[wf->jobs[j].needs_index[i]].done;
            if (ready)
                job_expand(rn, j);
        }
        if (wj->expanded && wj->finished == wj->nlegs)
            job_settle(rn, j);
        all &= wj->done;
    }
    for (size_t i = 0; i < rn->nlegs && !all; i++) {
        struct leg *l = rn->legs[i];
        struct wjob *wj = &rn->jobs[l->job];
        const struct pipeline_job *job = &wf->jobs[l->job];
        size_t maxpar = job->strategy.max_parallel.s && !job->strategy.max_parallel.expr &&
                                job->strategy.max_parallel.n >= 1
                            ? (size_t)job->strategy.max_parallel.n
                            : (size_t)-1;
        if (l->state != LEG_PENDING)
            continue;
        if (wj->fail_fast_hit || atomic_load(&rn->cancel)) {
            struct upd u = {0};
            u.op = UPD_END;
            u.rec = l->rec;
            u.conclusion = PIPELINE_CONCLUSION_CANCELLED;
            u.at = time_now_ms();
            (void)record(rn, &u);
            l->state = LEG_DONE;
            l->conclusion = PIPELINE_CONCLUSION_CANCELLED;
            wj->finished++;
            continue;
        }
        if (rn->running >= max || wj->running >= maxpar)
            continue;
        struct upd u = {0};
        u.op = UPD_START;
        u.rec = l->rec;
        u.at = time_now_ms();
        (void)record(rn, &u);
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
static void *ticker(void *arg)
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
        if (time_mono_ms() >= next) {
            struct sw_err err = {0};
            int rc = pipeline_run_heartbeat(rn->st, rn->run, &err);
            if (rc == PIPELINE_ELOST) {
                atomic_store(&rn->lost, 1);
                atomic_store(&rn->cancel, 1);
            } else if (rc == 0 && rn->run->cancel_requested)
                atomic_store(&rn->cancel, 1);
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
                }
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
            (void)record(rn, &u);
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

/* ---- contexts
 * ------------------------------------------------------------------------------------ */

/* Writes a file of the run's scratch directory, which no one reads yet and
 * which goes with the run: no fsync (no durability is owed), no rename. */
static int scratch_write(const char *path, const char *data, size_t len, struct sw_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return sw_err_sys(err, errno, "%s", path);
    int e = fd_write_all(fd, data, len);
    if (close(fd) < 0 && !e)
        e = -errno;
    return e ? sw_err_sys(err, -e, "%s", path) : 0;
}

/* A YAML mapping of names to scalars (.slipway/vars.yml, secrets.yml) into
 * obj; a missing file is no entry. */
static int yaml_kv_load(const char *path, json_t *obj, struct sw_err *err)
{
    struct yaml_doc *doc = NULL;
    int rc = yaml_doc_load(path, NULL, &doc, err);

    if (rc == SW_ENOTFOUND) {
        *err = (struct sw_err){0};
        return 0;
    }
    if (rc < 0)
        return rc;
    const struct yaml_node *root = doc->root;
    if (root->kind == YAML_NODE_MAP) {
        for (size_t i = 0; i < root->len; i++) {
            const char *k = yaml_scalar(root->pairs[i].key), *v = yaml_scalar(root->pairs[i].value);
            if (!k || !v) {
                rc = yaml_err(err, root->pairs[i].value, "expected NAME: value");
                goto out;
            }
            if (utf8_valid(v, 0))
                json_object_set_new(obj, k, json_string(v));
        }
    } else if (!yaml_is_null(root)) {
        rc = yaml_err(err, root, "expected a mapping of names to values");
        goto out;
    }
out:
    yaml_doc_free(doc);
    return rc;
}

static int secrets_load(struct runner *rn, json_t *secrets, struct sw_err *err)
{
    if (rn->o->project) {
        char *dir = path_join(rn->o->project, ".slipway");
        char *path = path_join(dir, "secrets.yml");
        struct stat sb;
        int rc = 0;
        if (stat(path, &sb) == 0 && (sb.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH)))
            rc = sw_err_set(err, SW_EACCES,
                            "%s is readable or writable by others (mode %03o): refusing its "
                            "secrets; chmod 600 it",
                            path, (unsigned)(sb.st_mode & 0777));
        else
            rc = yaml_kv_load(path, secrets, err);
        free(dir);
        free(path);
        if (rc < 0)
            return rc;
    }
    for (char **e = environ; e && *e; e++)
        if (str_starts_with(*e, "SLIPWAY_SECRET_") && strchr(*e, '=')) {
            const char *name = *e + 15, *eq = strchr(*e, '=');
            char *k = xstrndup(name, (size_t)(eq - name));
            if (*k && utf8_valid(eq + 1, 0))
                json_object_set_new(secrets, k, json_string(eq + 1));
            free(k);
        }
    /* GitHub gives every workflow one */
    if (!json_object_get(secrets, "GITHUB_TOKEN"))
        json_object_set_new(secrets, "GITHUB_TOKEN", json_string(""));
    const char *k;
    json_t *v;
    json_object_foreach(secrets, k, v)
    {
        if (json_string_length(v))
            pipeline_step_list_add(&rn->masks, json_string_value(v), json_string_length(v));
    }
    return 0;
}

/* head_commit as the push event has it, read from the repository. */
static json_t *head_commit(const char *repo, const char *sha)
{
    struct proc_opts po = {0};
    struct proc_result pr = {0};
    struct sw_err err = {0};
    json_t *c = json_pack("{s:s}", "id", sha);

    if (!repo)
        return c;
    const char *argv[] = {"git", "log", "-1", "--format=%an%x00%ae%x00%aI%x00%B", sha, "--", NULL};
    po.argv = argv;
    po.cwd = repo;
    po.max_output = 1 << 16;
    if (proc_run(&po, &pr, &err) == 0 && pr.exited && pr.exit_code == 0) {
        const char *f[4] = {0};
        const char *p = pr.out, *end = pr.out + pr.out_len;
        for (int i = 0; i < 4 && p < end; i++) {
            f[i] = p;
            p += strlen(p) + 1;
        }
        if (f[3]) {
            size_t n = strlen(f[3]);
            while (n && f[3][n - 1] == '\n')
                n--;
            char *msg = xstrndup(f[3], n);
            if (utf8_valid(f[0], 0) && utf8_valid(f[1], 0) && utf8_valid(msg, 0))
                json_object_update_new(c, json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}}",
                                                    "message", msg, "timestamp", f[2], "author",
                                                    "name", f[0], "email", f[1], "committer",
                                                    "name", f[0], "email", f[1]));
            free(msg);
        }
    }
    proc_result_free(&pr);
    return c;
}

static json_t *github_ctx(struct runner *rn)
{
    const struct pipeline_run *run = rn->run;
    const char *ref = run->ref ? run->ref : "";
    const char *ref_name = ref;
    char *abs = rn->o->repo ? realpath(rn->o->repo, NULL) : NULL;
    const char *base = abs && strrchr(abs, '/') ? strrchr(abs, '/') + 1 : "repository";
    char *repo = xasprintf("local/%s", *base ? base : "repository");
    const char *actor = run->actor ? run->actor : "";

    if (str_starts_with(ref, "refs/heads/"))
        ref_name = ref + 11;
    else if (str_starts_with(ref, "refs/tags/"))
        ref_name = ref + 10;
    json_t *hc = head_commit(abs, run->sha);
    json_t *event = json_pack(
        "{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:{s:s}}, s:O, s:[O], s:{s:s, s:s}, s:b, s:b, s:b}",
        "ref", ref, "before",
        run->before ? run->before : "0000000000000000000000000000000000000000", "after",
        run->after ? run->after : run->sha, "repository", "name", base, "full_name", repo,
        "default_branch", "main", "owner", "login", "local", "head_commit", hc, "commits", hc,
        "pusher", "name", actor, "email", "", "created", 0, "deleted", 0, "forced", 0);
    if (run->inputs && strcmp(run->event ? run->event : "", "workflow_dispatch") == 0)
        json_object_set(event, "inputs", run->inputs);
    json_t *gh =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
                  "s:s, s:s, s:s, s:s, s:o}",
                  "event_name", run->event ? run->event : "push", "ref", ref, "ref_name", ref_name,
                  "ref_type", str_starts_with(ref, "refs/tags/") ? "tag" : "branch", "sha",
                  run->sha, "repository", repo, "repository_owner", "local", "run_id", run->id,
                  "run_number", "1", "run_attempt", "1", "actor", actor, "triggering_actor", actor,
                  "workflow", run->workflow ? run->workflow : "", "server_url", "", "api_url", "",
                  "base_ref", "", "head_ref", "", "event", event);
    json_decref(hc);
    free(abs);
    rn->repository = repo;
    return gh;
}

/* The run's inputs with the workflow's defaults filled in. */
static json_t *inputs_ctx(const struct pipeline_run *run, const struct pipeline_workflow *wf)
{
    json_t *in = json_object();
    for (size_t i = 0; i < wf->on.n_dispatch_inputs; i++) {
        const struct pipeline_input *p = &wf->on.dispatch_inputs[i];
        if (!p->def.s || p->def.expr)
            continue;
        if (p->type == PIPELINE_INPUT_BOOLEAN)
            json_object_set_new(in, p->name, json_boolean(p->def.b));
        else if (p->type == PIPELINE_INPUT_NUMBER)
            json_object_set_new(in, p->name, json_real(p->def.n));
        else
            json_object_set_new(in, p->name, json_string(p->def.s));
    }
    if (json_is_object(run->inputs))
        json_object_update(in, run->inputs);
    return in;
}

/* ---- the run
 * ------------------------------------------------------------------------------------- */

int pipeline_runner_run(struct store *st, struct pipeline_run *run,
                        const struct pipeline_workflow *wf, const struct pipeline_runner_opts *o,
                        struct sw_err *err)
{
    struct runner rn = {0};
    struct utsname un;
    json_t *secrets = json_object(), *vars = json_object();
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
    rn.jobs = xcalloc(wf->n_jobs ? wf->n_jobs : 1, sizeof(*rn.jobs));
    for (size_t j = 0; j < wf->n_jobs; j++)
        rn.jobs[j].outputs = json_object();

    memcpy(rn.id, run->id, sizeof(rn.id));
    rn.sha = xstrdup(run->sha);
    rn.ref = xstrdup(run->ref ? run->ref : "");
    rn.workflow = xstrdup(run->workflow ? run->workflow : "");
    rn.event = xstrdup(run->event ? run->event : "push");
    rn.actor = xstrdup(run->actor ? run->actor : "");
    rn.heartbeat_ms = run->claim.lease_ms > 0 ? run->claim.lease_ms / 3 : 20000;
    rn.run_dir = path_join(o->work_dir, run->id);
    if ((rc = fs_mkdir_p(rn.run_dir, err)) < 0)
        goto fail;
    if ((rc = pipeline_runlog_new(st, run->id, 0, &rn.log, err)) < 0)
        goto fail;
    if ((rc = secrets_load(&rn, secrets, err)) < 0)
        goto fail;
    if (o->project) {
        char *dir = path_join(o->project, ".slipway");
        char *path = path_join(dir, "vars.yml");
        rc = yaml_kv_load(path, vars, err);
        free(dir);
        free(path);
        if (rc < 0)
            goto fail;
    }
    rn.base = json_object();
    json_t *gh = github_ctx(&rn);
    char *ev = path_join(rn.run_dir, "event.json");
    char *evtext = json_dumps(json_object_get(gh, "event"), JSON_INDENT(2));
    rc = scratch_write(ev, evtext ? evtext : "{}", evtext ? strlen(evtext) : 2, err);
    free(ev);
    free(evtext);
    json_object_set_new(rn.base, "github", gh);
    if (rc < 0)
        goto fail;
    json_object_set_new(rn.base, "vars", vars);
    json_object_set_new(rn.base, "secrets", secrets);
    vars = secrets = NULL;
    json_object_set_new(rn.base, "inputs", inputs_ctx(run, wf));
    json_object_set_new(rn.base, "runner",
                        json_pack("{s:s, s:s, s:s, s:s, s:s}", "os", "Linux", "arch", rn.arch,
                                  "name", o->runner_name ? o->runner_name : "slipway", "temp",
                                  rn.run_dir, "tool_cache", rn.run_dir));
    json_object_set_new(rn.base, "env", json_object());
    json_object_set_new(rn.base, "jobs", json_object());

    if (pthread_create(&tick, NULL, ticker, &rn) == 0)
        ticking = 1;
    pthread_mutex_lock(&rn.lock);
    while (!schedule(&rn)) {
        struct timespec ts;
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
            for (size_t j = 0; j < wf->n_jobs; j++)
                progress |= !rn.jobs[j].done;
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

    if (atomic_load(&rn.lost)) {
        rc = sw_err_set(err, PIPELINE_ELOST, "run %s: the claim was lost while it ran", run->id);
        goto out;
    }
    enum pipeline_conclusion c = PIPELINE_CONCLUSION_SUCCESS;
    for (size_t j = 0; j < wf->n_jobs; j++)
        if (rn.jobs[j].result == PIPELINE_CONCLUSION_FAILURE) {
            c = PIPELINE_CONCLUSION_FAILURE;
            if (!why)
                why = xasprintf("job %s failed", wf->jobs[j].id);
        }
    if (atomic_load(&rn.cancel)) {
        c = PIPELINE_CONCLUSION_CANCELLED;
        free(why);
        why =
            rn.cancelled_by ? xasprintf("cancelled by %s", rn.cancelled_by) : xstrdup("cancelled");
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
    for (size_t j = 0; j < wf->n_jobs; j++)
        json_decref(rn.jobs[j].outputs);
    free(rn.jobs);
    if (rn.log)
        pipeline_runlog_free(rn.log);
    pipeline_step_list_free(&rn.masks);
    json_decref(rn.base);
    json_decref(secrets);
    json_decref(vars);
    free(rn.run_dir);
    free(rn.cancelled_by);
    free(rn.sha);
    free(rn.ref);
    free(rn.workflow);
    free(rn.event);
    free(rn.actor);
    free(rn.repository);
    free(why);
    pthread_mutex_destroy(&rn.lock);
    pthread_cond_destroy(&rn.cond);
    pthread_mutex_destroy(&rn.echo_lock);
    pthread_mutex_destroy(&rn.tick_lock);
    pthread_cond_destroy(&rn.tick_cond);
    return rc;
}
