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

#define CLEANUP_GRACE_MS 2000

static const char *default_labels[] = {"self-hosted", "linux", NULL, "ubuntu-latest", NULL};

static void step_log(void *ctx, int64_t time_ms, enum pipeline_step_log_kind kind, const char *text,
                     size_t len)
{
    leg_line(ctx, time_ms, kind, text, len);
}

/* ---- one leg ----------------------------------------------------------------------------------
 */

enum pipeline_status jr_status(struct jobrun *jr)
{
    if (atomic_load(&jr->rn->cancel) || atomic_load(&jr->leg->cancel) || jr->timed_out)
        return PIPELINE_STATUS_CANCELLED;
    return jr->status;
}

void runner_env_to_json(const struct pipeline_step_vars *v, json_t *values)
{
    json_t *o = json_object();
    for (size_t i = 0; i < v->n; i++)
        if (utf8_valid(v->v[i].value, 0) && strlen(v->v[i].value) == v->v[i].value_len)
            json_object_set_new(o, v->v[i].name, json_string(v->v[i].value));
    json_object_set_new(values, "env", o);
}

void runner_vars_from_json(struct pipeline_step_vars *v, const json_t *o)
{
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)o, k, x)
    {
        if (json_is_string(x))
            pipeline_step_vars_set(v, k, strlen(k), json_string_value(x), json_string_length(x));
    }
}

/* The environment a scope's steps start from: the job's (workflow, job,
 * GITHUB_ENV) under the calling steps' env. */
void stepscope_env(const struct jobrun *jr, const struct stepscope *sc,
                   struct pipeline_step_vars *env)
{
    for (size_t i = 0; i < jr->env.n; i++)
        pipeline_step_vars_set(env, jr->env.v[i].name, strlen(jr->env.v[i].name),
                               jr->env.v[i].value, jr->env.v[i].value_len);
    for (size_t i = 0; sc && i < sc->env.n; i++)
        pipeline_step_vars_set(env, sc->env.v[i].name, strlen(sc->env.v[i].name),
                               sc->env.v[i].value, sc->env.v[i].value_len);
}

/* values' env context: what the scope's steps start from. */
void stepscope_env_json(const struct jobrun *jr, const struct stepscope *sc, json_t *values)
{
    struct pipeline_step_vars env = PIPELINE_STEP_VARS_INIT;
    stepscope_env(jr, sc, &env);
    runner_env_to_json(&env, values);
    pipeline_step_vars_free(&env);
}

/* A path inside the workspace for a relative one written in the workflow. */
char *runner_inside(const char *base, const char *rel, struct sw_err *err)
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
    po.cancel = &jr->leg->cancel;
    if (proc_run(&po, &pr, &err) < 0) {
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "%s", err.msg);
        return -1;
    }
    int ok = pr.exited && pr.exit_code == 0;
    proc_result_free(&pr);
    return ok ? 0 : -1;
}

/* The objects directory of the repository at abs (bare: abs/objects; a
 * working tree: abs/.git/objects), or NULL when it is neither (a .git file of
 * a linked worktree, say) or its path could not be one line of a git
 * alternates file. Caller frees. */
static char *repo_objects(const char *abs)
{
    struct stat sb;
    char *head = path_join(abs, "HEAD"), *dot = path_join(abs, ".git");
    char *objects = NULL;
    /* .git first: a working tree may hold a file named HEAD */
    if (lstat(dot, &sb) == 0 && S_ISDIR(sb.st_mode))
        objects = path_join(dot, "objects");
    else if (stat(head, &sb) == 0 && S_ISREG(sb.st_mode))
        objects = path_join(abs, "objects");
    free(head);
    free(dot);
    if (objects && (stat(objects, &sb) < 0 || !S_ISDIR(sb.st_mode) || strchr(objects, '\n'))) {
        free(objects);
        objects = NULL;
    }
    return objects;
}

/* Writes text to a new file path (a git metadata file of the workspace: no
 * durability is owed, so no fsync). */
static int write_new(const char *path, const char *text, struct sw_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return sw_err_sys(err, errno, "%s", path);
    int e = fd_write_all(fd, text, strlen(text));
    if (close(fd) < 0 && !e)
        e = -errno;
    return e ? sw_err_sys(err, -e, "%s", path) : 0;
}

/* The run's own commit into a new repository at dir, without a fetch: the
 * repository's objects are borrowed (an alternates file, as `git clone
 * --shared` writes) and depth 1 is made as a fetch --depth=1 makes it, by
 * listing the commit in .git/shallow. A fetch would spawn half a dozen
 * processes (upload-pack, pack-objects, index-pack, a connectivity check,
 * maintenance) to copy objects the runner can read where they are. */
static int checkout_shared(struct jobrun *jr, const char *dir, const char *objects, const char *sha,
                           long depth, struct sw_err *err)
{
    const char *init[] = {"git", "init", "-q", ".", NULL};
    const char *co[] = {"git", "checkout", "-q", "--force", "--detach", sha, NULL};
    char *alt = path_join(dir, ".git/objects/info/alternates");
    char *shallow = path_join(dir, ".git/shallow");
    char *line = xasprintf("%s\n", objects), *sline = xasprintf("%s\n", sha);
    int rc = 0;
    if (git(jr, dir, init) < 0) {
        rc = sw_err_set(err, SW_EIO, "actions/checkout: git failed (see above)");
        goto out;
    }
    char *info = path_join(dir, ".git/objects/info");
    rc = fs_mkdir_p(info, err);
    free(info);
    if (rc || (rc = write_new(alt, line, err)) ||
        (depth == 1 && (rc = write_new(shallow, sline, err))))
        goto out;
    if (git(jr, dir, co) < 0)
        rc = sw_err_set(err, SW_EIO, "actions/checkout: git failed (see above)");
out:
    free(alt);
    free(shallow);
    free(line);
    free(sline);
    return rc;
}

/* actions/checkout: the run's commit (or with.ref), fetched from the
 * repository into the workspace (or with.path under it), fetch-depth deep. */
enum pipeline_step_outcome jr_checkout(struct jobrun *jr, const struct pipeline_step *step,
                                       const json_t *values)
{
    struct runner *rn = jr->rn;
    char *ref = NULL, *path = NULL, *depth = NULL, *dir = NULL, *url = NULL, *abs = NULL;
    char *objects = NULL;
    struct sw_err err = {0};
    enum pipeline_step_outcome out = PIPELINE_STEP_FAILURE;
    const struct pipeline_val *v;
    long n = 1;

    if ((v = pipeline_map_get(&step->with, "ref")) &&
        runner_eval_text(v, values, jr_status(jr), jr->workspace, &ref, &err) < 0)
        goto fail;
    if ((v = pipeline_map_get(&step->with, "path")) &&
        runner_eval_text(v, values, jr_status(jr), jr->workspace, &path, &err) < 0)
        goto fail;
    if ((v = pipeline_map_get(&step->with, "fetch-depth")) &&
        runner_eval_text(v, values, jr_status(jr), jr->workspace, &depth, &err) < 0)
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
    if (!(dir = runner_inside(jr->workspace, path, &err)))
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
    /* The run's own commit, whole or one deep, into a directory that is not a
     * repository yet: no fetch. A ref to resolve, another depth or a second
     * checkout into the same directory fetch as before. */
    char *dotgit = path_join(dir, ".git");
    struct stat sb;
    int fresh = lstat(dotgit, &sb) < 0 && errno == ENOENT;
    free(dotgit);
    int own = !(ref && *ref); /* want is the run's commit, a full hash */
    objects = fresh && own && strlen(want) == 40 && (n == 0 || n == 1) ? repo_objects(abs) : NULL;
    if (objects) {
        if (checkout_shared(jr, dir, objects, want, n, &err) < 0)
            goto fail;
        out = PIPELINE_STEP_SUCCESS;
        goto out;
    }
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
    free(objects);
    return out;
}

static void artifact_say(void *ctx, enum pipeline_step_log_kind kind, const char *text)
{
    struct jobrun *jr = ctx;
    leg_say(jr->leg, &jr->masks, kind, "%s", text);
}

/* actions/upload-artifact and actions/download-artifact (artifact.c), with
 * the step's with: evaluated. */
static enum pipeline_step_outcome artifact(struct jobrun *jr, const struct pipeline_step *s,
                                           json_t *values, json_t *outputs)
{
    struct sw_err err = {0};
    json_t *with = json_object();
    struct artifact_step a = {jr->rn->st,      jr->rn->id,   jr->job->id,
                              jr->workspace,   jr->temp,     with,
                              &jr->rn->cancel, artifact_say, jr};
    enum pipeline_step_outcome oc = PIPELINE_STEP_FAILURE;

    if (runner_eval_map(&s->with, values, jr_status(jr), jr->workspace, with, &err) < 0)
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "%s", err.msg);
    else if (s->uses.builtin == PIPELINE_BUILTIN_UPLOAD_ARTIFACT)
        oc = artifact_upload_step(&a, outputs);
    else
        oc = artifact_download_step(&a, outputs);
    json_decref(with);
    return oc;
}

/* slipway/deploy, switch, rollback, health-check and scan (delivery.c), with
 * the step's with: evaluated; environments from the runner's project. */
static enum pipeline_step_outcome delivery(struct jobrun *jr, const struct pipeline_step *s,
                                           json_t *values, json_t *outputs)
{
    struct runner *rn = jr->rn;
    struct sw_err err = {0};
    json_t *with = json_object();
    struct delivery_step d = {rn->st,  rn->o->project,   jr->workspace, rn->id,
                              rn->sha, rn->ref,          rn->actor,     s->uses.raw.s,
                              with,    &jr->leg->cancel, artifact_say,  jr};
    enum pipeline_step_outcome oc = PIPELINE_STEP_FAILURE;

    if (runner_eval_map(&s->with, values, jr_status(jr), jr->workspace, with, &err) < 0)
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "with: %s", err.msg);
    else
        oc = delivery_step_run(&d, s->uses.builtin, outputs);
    json_decref(with);
    return oc;
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

static void runner_env(struct jobrun *jr, const struct stepscope *sc, struct pipeline_step_vars *re)
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
    if (sc && sc->action_dir)
        SETV("GITHUB_ACTION_PATH", sc->action_dir);
#undef SETV
}

/* Runs one run: step of scope sc; fills the step's outputs into outputs. */
enum pipeline_step_outcome jr_run_step(struct jobrun *jr, const struct stepscope *sc,
                                       const struct pipeline_step *s, const char *name,
                                       json_t *values, json_t *outputs)
{
    struct runner *rn = jr->rn;
    const struct pipeline_workflow *wf = jr->leg->sc->wf;
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

    if (sc->depth) { /* defaults.run does not reach into an action */
        shv = &s->shell;
        wdv = &s->working_directory;
    }
    stepscope_env(jr, sc, &env);
    if (runner_eval_map(&s->env, values, jr_status(jr), jr->workspace, senv, &err) < 0)
        goto fail;
    runner_vars_from_json(&env, senv);
    runner_env_to_json(&env, values);
    if (runner_eval_text(&s->run, values, jr_status(jr), jr->workspace, &script, &err) < 0 ||
        runner_eval_text(shv, values, jr_status(jr), jr->workspace, &shell, &err) < 0 ||
        runner_eval_text(wdv, values, jr_status(jr), jr->workspace, &wd, &err) < 0)
        goto fail;
    if (!(wdabs = runner_inside(jr->workspace, wd, &err)))
        goto fail;
    runner_env(jr, sc, &re);
    int64_t timeout = 0;
    if (s->timeout_minutes.s && !s->timeout_minutes.expr && s->timeout_minutes.n > 0)
        timeout = (int64_t)(s->timeout_minutes.n * 60000.0);
    int64_t left = jr->deadline_mono - time_mono_ms();
    if (left < 1)
        left = 1;
    int job_bound = !timeout || left < timeout;
    if (job_bound)
        timeout = left;
    if (sc->deadline_mono) { /* inside an action whose step has timeout-minutes */
        int64_t sl = sc->deadline_mono - time_mono_ms();
        if (sl < timeout) {
            timeout = sl < 1 ? 1 : sl;
            job_bound = 0;
        }
    }
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
    sp.cancel = &jr->leg->cancel;
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
    stepscope_env_json(jr, sc, values);
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
            if (runner_eval_json(job->runs_on[i].s, values, &v, &err) < 0)
                v = json_string("");
        } else
            v = json_string(job->runs_on[i].s ? job->runs_on[i].s : "");
        json_t *arr = json_is_array(v) ? v : NULL;
        size_t n = arr ? json_array_size(arr) : 1;
        for (size_t k = 0; k < n; k++) {
            json_t *x = arr ? json_array_get(arr, k) : v;
            struct buf t = BUF_INIT;
            runner_json_text(&t, x);
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

/* The status names GitHub's contexts use (job.status, github.action_status). */
static const char *status_word(enum pipeline_status st)
{
    return st == PIPELINE_STATUS_FAILURE     ? "failure"
           : st == PIPELINE_STATUS_CANCELLED ? "cancelled"
                                             : "success";
}

/* The declared input named like key (names ignore case), or NULL. */
static const struct pipeline_action_input *action_input(const struct pipeline_action *a,
                                                        const char *key)
{
    for (size_t i = 0; i < a->n_inputs; i++)
        if (strcasecmp(a->inputs[i].name, key) == 0)
            return &a->inputs[i];
    return NULL;
}

/* The inputs context of action a called by step s: with: (evaluated in the
 * caller's contexts) over the defaults, with GitHub's warnings for unknown,
 * deprecated and missing required inputs. NULL after logging an error. */
static json_t *action_inputs(struct jobrun *jr, const struct pipeline_action *a,
                             const struct pipeline_step *s, json_t *values)
{
    json_t *with = json_object(), *in = json_object();
    struct sw_err err = {0};
    struct buf unknown = BUF_INIT;
    const char *k;
    json_t *v;

    if (runner_eval_map(&s->with, values, jr_status(jr), jr->workspace, with, &err) < 0) {
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "with: %s", err.msg);
        json_decref(with);
        json_decref(in);
        return NULL;
    }
    json_object_foreach(with, k, v)
    {
        const struct pipeline_action_input *p = action_input(a, k);
        if (!p)
            buf_addf(&unknown, "%s'%s'", unknown.len ? ", " : "", k);
        else if (p->deprecation_message.s)
            leg_say(jr->leg, &jr->masks, PIPELINE_LOG_WARNING,
                    "Input '%s' has been deprecated with message: %s", p->name,
                    p->deprecation_message.s);
        json_object_set(in, p ? p->name : k, v);
    }
    if (unknown.len) {
        struct buf valid = BUF_INIT;
        for (size_t i = 0; i < a->n_inputs; i++)
            buf_addf(&valid, "%s'%s'", i ? ", " : "", a->inputs[i].name);
        leg_say(jr->leg, &jr->masks, PIPELINE_LOG_WARNING,
                "Unexpected input(s) %s, valid inputs are [%s]", unknown.data,
                valid.data ? valid.data : "");
        buf_free(&valid);
    }
    for (size_t i = 0; i < a->n_inputs; i++) {
        const struct pipeline_action_input *p = &a->inputs[i];
        char *t = NULL;
        if (json_object_get(in, p->name))
            continue;
        if (p->required.b && !p->def.s)
            leg_say(jr->leg, &jr->masks, PIPELINE_LOG_WARNING,
                    "Input required and not supplied: %s", p->name);
        if (runner_eval_text(&p->def, values, jr_status(jr), jr->workspace, &t, &err) < 0) {
            leg_say(jr->leg, &jr->masks, PIPELINE_LOG_ERROR, "%s: input '%s': default: %s", a->file,
                    p->name, err.msg);
            free(t);
            json_decref(in);
            in = NULL;
            break;
        }
        json_object_set_new(in, p->name, json_string(utf8_valid(t, 0) ? t : ""));
        free(t);
    }
    buf_free(&unknown);
    json_decref(with);
    return in;
}

/* The chain of actions that led to sc, for a message: "./a → ./b". */
static void action_chain(const struct stepscope *sc, struct buf *b)
{
    if (!sc || !sc->uses)
        return;
    action_chain(sc->up, b);
    buf_addf(b, "%s%s", b->len ? " \u2192 " : "", sc->uses);
}

/* A step's `uses: ./path`: the composite action at path in the workspace,
 * loaded now (the job has checked it out), run as a nested scope; its
 * outputs become the step's. */
enum pipeline_step_outcome jr_run_action(struct jobrun *jr, struct stepscope *sc,
                                         const struct pipeline_step *s, const char *name,
                                         json_t *values, json_t *outputs)
{
    struct leg *l = jr->leg;
    struct pipeline_action *a = NULL;
    struct pipeline_load_opts lo = {jr->rn->o->unsupported_skip ? PIPELINE_LOAD_SKIP_UNSUPPORTED
                                                                : 0u};
    struct stepscope in = {0};
    enum pipeline_status astatus = PIPELINE_STATUS_SUCCESS;
    enum pipeline_step_outcome out = PIPELINE_STEP_FAILURE;
    struct sw_err err = {0};
    struct buf chain = BUF_INIT;
    json_t *inputs = NULL, *senv = json_object(), *gh = NULL;
    char *rel = NULL, *dir = NULL, *real = NULL, *realws = NULL;
    const char *uses = s->uses.raw.s;
    int grouped = 1; /* the caller opened the step's group */

    rel = xstrdup(s->uses.path + 2); /* "./x/y/" -> "x/y" */
    for (size_t n = strlen(rel); n && rel[n - 1] == '/'; n--)
        rel[n - 1] = 0;
    if (!(dir = runner_inside(jr->workspace, rel, &err))) {
        leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "uses: %s", err.msg);
        goto out;
    }
    realws = realpath(jr->workspace, NULL);
    real = realpath(dir, NULL);
    if (!real || !realws) {
        leg_say(l, &jr->masks, PIPELINE_LOG_ERROR,
                "uses: %s: no directory %s in the workspace: check the repository out first "
                "(actions/checkout) or fix the path",
                uses, *rel ? rel : ".");
        goto out;
    }
    /* a symbolic link in the repository must not lead the runner outside it */
    if (!(str_starts_with(real, realws) &&
          (real[strlen(realws)] == '/' || real[strlen(realws)] == 0))) {
        leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "uses: %s: '%s' leads outside the workspace",
                uses, rel);
        goto out;
    }
    action_chain(sc, &chain);
    buf_addf(&chain, "%s%s", chain.len ? " \u2192 " : "", uses);
    for (const struct stepscope *up = sc; up; up = up->up)
        if (up->action_dir && strcmp(up->action_dir, real) == 0) {
            leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "uses: %s: the action calls itself (%s)",
                    uses, chain.data);
            goto out;
        }
    if (sc->depth + 1 > PIPELINE_ACTION_MAX_DEPTH) {
        leg_say(l, &jr->masks, PIPELINE_LOG_ERROR,
                "uses: %s: composite actions nest more than %d deep (%s)", uses,
                PIPELINE_ACTION_MAX_DEPTH, chain.data);
        goto out;
    }
    int rc = pipeline_action_load(real, rel, &lo, &a, &err);
    if (rc == SW_ENOTFOUND) {
        leg_say(l, &jr->masks, PIPELINE_LOG_ERROR,
                "uses: %s: %s/action.yml not found (nor action.yaml): check the repository out "
                "first (actions/checkout) or fix the path",
                uses, *rel ? rel : ".");
        goto out;
    }
    for (size_t i = 0; a && i < a->n_warnings; i++)
        leg_say(l, &jr->masks, PIPELINE_LOG_WARNING, "%s", a->warnings[i].text);
    if (rc < 0) {
        if (!a || !a->n_errors)
            leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "uses: %s: %s", uses, err.msg);
        for (size_t i = 0; a && i < a->n_errors; i++)
            leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "%s", a->errors[i].text);
        if (a && a->n_errors_dropped)
            leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "%s: %zu more errors", a->file,
                    a->n_errors_dropped);
        goto out;
    }
    if (!(inputs = action_inputs(jr, a, s, values)))
        goto out;
    /* the step's own env reaches the action's steps, under theirs */
    if (runner_eval_map(&s->env, values, jr_status(jr), jr->workspace, senv, &err) < 0) {
        leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "env: %s", err.msg);
        goto out;
    }
    for (size_t i = 0; i < sc->env.n; i++)
        pipeline_step_vars_set(&in.env, sc->env.v[i].name, strlen(sc->env.v[i].name),
                               sc->env.v[i].value, sc->env.v[i].value_len);
    runner_vars_from_json(&in.env, senv);
    {
        const char *k;
        json_t *v;
        if (json_object_size(inputs))
            leg_say(l, &jr->masks, PIPELINE_LOG_OUTPUT, "with:");
        json_object_foreach(inputs, k, v)
        {
            leg_say(l, &jr->masks, PIPELINE_LOG_OUTPUT, "  %s: %s", k, json_string_value(v));
        }
    }
    /* as GitHub's log: the action's steps are groups of their own */
    leg_say(l, &jr->masks, PIPELINE_LOG_ENDGROUP, "%s", "");
    grouped = 0;
    in.steps = a->steps;
    in.n = a->n_steps;
    in.status = &astatus;
    in.depth = sc->depth + 1;
    in.up = sc;
    in.uses = uses;
    in.action_dir = real;
    /* the calling step's timeout-minutes bounds the action as a whole */
    in.deadline_mono = sc->deadline_mono;
    if (s->timeout_minutes.s && !s->timeout_minutes.expr && s->timeout_minutes.n > 0) {
        int64_t d = time_mono_ms() + (int64_t)(s->timeout_minutes.n * 60000.0);
        if (!in.deadline_mono || d < in.deadline_mono)
            in.deadline_mono = d;
    }
    /* the action's contexts: the caller's, with its own inputs, steps and
     * github.action_path (a shallow copy: the caller's stay as they are) */
    in.values = json_copy(values);
    gh = json_copy(json_object_get(values, "github"));
    if (!gh)
        gh = json_object();
    json_object_set_new(gh, "action_path", json_string(real));
    json_object_set_new(in.values, "github", gh);
    json_object_set(in.values, "inputs", inputs);
    in.steps_ctx = json_object();
    json_object_set_new(in.values, "steps", in.steps_ctx);
    stepscope_env_json(jr, &in, in.values);
    jr_run_steps(jr, &in);
    /* what its steps wrote to GITHUB_ENV is the caller's env context now */
    stepscope_env_json(jr, sc, values);
    if (in.deadline_mono && time_mono_ms() >= in.deadline_mono) {
        if (in.deadline_mono != sc->deadline_mono) /* its own, not a caller's */
            leg_say(l, &jr->masks, PIPELINE_LOG_ERROR,
                    "The action '%s' has timed out after %g minutes.", name, s->timeout_minutes.n);
        astatus = PIPELINE_STATUS_FAILURE;
    }
    /* outputs: evaluated at the end, over the action's steps */
    for (size_t i = 0; i < a->n_outputs; i++) {
        char *t = NULL;
        if (runner_eval_text(&a->outputs[i].value, in.values, jr_status(jr), jr->workspace, &t,
                             &err) < 0) {
            leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "%s: output '%s': %s", a->file,
                    a->outputs[i].name, err.msg);
            astatus = PIPELINE_STATUS_FAILURE;
        } else if (utf8_valid(t, 0)) {
            json_object_set_new(outputs, a->outputs[i].name, json_string(t));
        }
        free(t);
    }
    out = jr_status(jr) == PIPELINE_STATUS_CANCELLED ? PIPELINE_STEP_CANCELLED
          : astatus == PIPELINE_STATUS_SUCCESS       ? PIPELINE_STEP_SUCCESS
                                                     : PIPELINE_STEP_FAILURE;
out:
    if (grouped)
        leg_say(l, &jr->masks, PIPELINE_LOG_ENDGROUP, "%s", "");
    pipeline_action_free(a);
    pipeline_step_vars_free(&in.env);
    json_decref(in.values);
    json_decref(inputs);
    json_decref(senv);
    buf_free(&chain);
    free(rel);
    free(dir);
    free(real);
    free(realws);
    return out;
}

/* Runs the steps of scope sc in order, as GitHub's StepsRunner does: each
 * step's if: against the status so far (the job's, or inside an action the
 * action's), continue-on-error, the steps context. The job's own steps each
 * get a log stream and an entry in the record; an action's steps write into
 * the calling step's stream. */
void jr_run_steps(struct jobrun *jr, struct stepscope *sc)
{
    struct leg *l = jr->leg;
    struct runner *rn = jr->rn;
    json_t *values = sc->values;
    struct sw_err err = {0};

    for (size_t k = 0; k < sc->n; k++) {
        const struct pipeline_step *s = &sc->steps[k];
        if (sc->deadline_mono && time_mono_ms() >= sc->deadline_mono)
            break; /* the action timed out: jr_run_action says so */
        char *name = NULL;
        enum pipeline_step_outcome oc = PIPELINE_STEP_SKIPPED;
        json_t *souts = json_object();
        int run_it = 0;
        enum pipeline_status st =
            jr_status(jr) == PIPELINE_STATUS_CANCELLED ? PIPELINE_STATUS_CANCELLED : *sc->status;

        if (!s->name.s ||
            runner_eval_text(&s->name, values, jr_status(jr), jr->workspace, &name, &err) < 0)
            name = step_default_name(s);
        char *clean = runner_masked_name(&jr->masks, name);
        /* job.status: the job's status so far, as a step sees it */
        json_object_set_new(values, "job",
                            json_pack("{s:s}", "status", status_word(jr_status(jr))));
        if (sc->depth) {
            json_t *gh = json_object_get(values, "github");
            if (json_is_object(gh))
                json_object_set_new(gh, "action_status", json_string(status_word(st)));
        } else {
            leg_stream(l, (unsigned)(k + 1));
        }
        if (s->skipped) {
            leg_say(l, &jr->masks, PIPELINE_LOG_WARNING, "skipped: %s",
                    s->skip_reason ? s->skip_reason : "not supported here");
        } else {
            struct pipeline_expr_ctx ctx = {values, jr_status(jr), sc->depth > 0,
                                            st,     jr->workspace, 0};
            const char *cond = s->if_.s ? s->if_.s : "";
            if (pipeline_expr_condition(cond, strlen(cond), NULL, &ctx, &run_it, NULL, &err) < 0) {
                leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "step %s: if: %s", clean, err.msg);
                oc = PIPELINE_STEP_FAILURE;
                run_it = 0;
            }
        }
        if (run_it) {
            /* a run: step writes its own header group; the others get one here */
            if (s->uses.kind != PIPELINE_USES_NONE)
                leg_say(l, &jr->masks, PIPELINE_LOG_GROUP, "%s", clean);
            if (s->uses.builtin == PIPELINE_BUILTIN_CHECKOUT)
                oc = jr_checkout(jr, s, values);
            else if (s->uses.builtin == PIPELINE_BUILTIN_LOCAL_ACTION)
                oc = jr_run_action(jr, sc, s, clean, values, souts); /* ends the group itself */
            else if (s->uses.builtin == PIPELINE_BUILTIN_UPLOAD_ARTIFACT ||
                     s->uses.builtin == PIPELINE_BUILTIN_DOWNLOAD_ARTIFACT)
                oc = artifact(jr, s, values, souts);
            else if (s->uses.builtin >= PIPELINE_BUILTIN_SLIPWAY_DEPLOY &&
                     s->uses.builtin <= PIPELINE_BUILTIN_SLIPWAY_SCAN)
                oc = delivery(jr, s, values, souts);
            else if (s->uses.kind != PIPELINE_USES_NONE) {
                leg_say(l, &jr->masks, PIPELINE_LOG_ERROR, "%s: this runner does not run it yet",
                        s->uses.raw.s);
                oc = PIPELINE_STEP_FAILURE;
            } else
                oc = jr_run_step(jr, sc, s, clean, values, souts);
            if (s->uses.kind != PIPELINE_USES_NONE &&
                s->uses.builtin != PIPELINE_BUILTIN_LOCAL_ACTION)
                leg_say(l, &jr->masks, PIPELINE_LOG_ENDGROUP, "%s", "");
        }
        enum pipeline_conclusion sc_ = concl_of(oc);
        int coe = s->continue_on_error.s && !s->continue_on_error.expr && s->continue_on_error.b;
        if (s->continue_on_error.expr) {
            char *t = NULL;
            struct sw_err e2 = {0};
            if (runner_eval_text(&s->continue_on_error, values, jr_status(jr), jr->workspace, &t,
                                 &e2) == 0)
                coe = strcmp(t, "true") == 0;
            free(t);
        }
        if (sc_ == PIPELINE_CONCLUSION_FAILURE && coe)
            sc_ = PIPELINE_CONCLUSION_SUCCESS;
        if (sc_ == PIPELINE_CONCLUSION_FAILURE && *sc->status == PIPELINE_STATUS_SUCCESS)
            *sc->status = PIPELINE_STATUS_FAILURE;
        if (s->id.s) {
            json_t *e = json_pack("{s:O, s:s, s:s}", "outputs", souts, "outcome",
                                  pipeline_conclusion_name(concl_of(oc)), "conclusion",
                                  pipeline_conclusion_name(sc_));
            json_object_set_new(sc->steps_ctx, s->id.s, e);
        }
        if (!sc->depth) {
            pthread_mutex_lock(&rn->lock);
            l->steps = xrealloc(l->steps, (l->nsteps + 1) * sizeof(*l->steps));
            l->steps[l->nsteps].name = xstrdup(clean);
            l->steps[l->nsteps].outcome = concl_of(oc);
            l->steps[l->nsteps].conclusion = sc_;
            l->nsteps++;
            l->steps_dirty = 1;
            pthread_mutex_unlock(&rn->lock);
        }
        json_decref(souts);
        free(name);
        free(clean);
    }
}

/* Runs the leg's steps; returns its conclusion, its outputs in *outputs. */
enum pipeline_conclusion leg_run(struct leg *l, json_t **outputs)
{
    struct runner *rn = l->rn;
    const struct pipeline_job *job = &l->sc->wf->jobs[l->job];
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
    pthread_mutex_lock(&rn->mask_lock);
    for (size_t i = 0; i < rn->masks.n; i++)
        pipeline_step_list_add(&jr.masks, rn->masks.v[i], strlen(rn->masks.v[i]));
    atomic_store(&l->masks_seen, rn->masks.n);
    pthread_mutex_unlock(&rn->mask_lock);
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
    if (runner_eval_map(&l->sc->wf->env, values, PIPELINE_STATUS_SUCCESS, NULL, jenv, &err) < 0)
        goto bad;
    runner_vars_from_json(&jr.env, jenv);
    runner_env_to_json(&jr.env, values);
    json_object_clear(jenv);
    if (runner_eval_map(&job->env, values, PIPELINE_STATUS_SUCCESS, NULL, jenv, &err) < 0)
        goto bad;
    runner_vars_from_json(&jr.env, jenv);
    runner_env_to_json(&jr.env, values);
    jr.steps = json_object();
    json_object_set_new(values, "steps", jr.steps);
    /* runner.temp is this leg's RUNNER_TEMP */
    json_t *runner = json_object_get(values, "runner");
    if (json_is_object(runner))
        json_object_set_new(runner, "temp", json_string(jr.temp));

    {
        struct stepscope top = {0};
        top.steps = job->steps;
        top.n = job->n_steps;
        top.values = values;
        top.steps_ctx = jr.steps;
        top.status = &jr.status;
        jr_run_steps(&jr, &top);
    }
    leg_stream(l, 0);
    /* outputs: evaluated once the steps are done */
    if (runner_eval_map(&job->outputs, values, jr_status(&jr), jr.workspace, *outputs, &err) < 0)
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
    c = jr.timed_out || atomic_load(&rn->cancel) || atomic_load(&l->cancel)
            ? PIPELINE_CONCLUSION_CANCELLED
        : jr.status == PIPELINE_STATUS_SUCCESS ? PIPELINE_CONCLUSION_SUCCESS
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
