/* Private to src/pipeline/: what the files of the job runner share. The
 * runner (pipeline_runner_run) is split by what each part is about:
 *
 *   runner.c           the run: set up, scheduled until done, concluded, freed
 *   runner_ctx.c       the contexts a run starts with (github, inputs, vars, secrets)
 *   runner_sched.c     scheduling: jobs ready, expanded into legs, settled
 *   runner_call.c      scopes: a job calling a reusable workflow becomes its jobs
 *   runner_ticker.c    the ticker thread: lease, cancel requests, quiet logs
 *   runner_leg.c       one leg's thread: environment, concurrency group, its end
 *   runner_gate.c      an environment's rules and its approval gate
 *   runner_job.c       a leg's job: workspace, env, its steps, outputs
 *   runner_steps.c     a list of steps in order, and what each step runs
 *   runner_script.c    one `run:` step
 *   runner_action.c    one `uses: ./path` composite action
 *   runner_checkout.c  actions/checkout with git
 *   runner_record.c    updates of the run record
 *   runner_log.c       a leg's log lines and streams
 *   runner_eval.c      expressions evaluated into text and JSON, names
 *
 * Locks: rn->lock guards the run record in memory, the scopes, the wjobs and
 * each leg's state and steps; rn->mask_lock the masks (see struct runner);
 * leg->wlock the leg's log stream; rn->echo_lock the echo callback. */
#ifndef SW_PIPELINE_RUNNER_INTERNAL_H
#define SW_PIPELINE_RUNNER_INTERNAL_H

#include "pipeline/pipeline.h"
#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>

enum { LEG_PENDING, LEG_RUNNING, LEG_DONE };

struct runner;
struct scope;

struct leg {
    struct scope *sc; /* the workflow the job is of */
    size_t job;       /* index in sc->wf->jobs */
    size_t rec;       /* index in the run's jobs */
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
    _Atomic size_t masks_seen; /* rn->masks its lines are already masked with */
    /* This leg's own cancel: the run's (copied by the ticker) or its
     * concurrency group's (cancel-in-progress). Steps watch it. */
    _Atomic int cancel;
};

struct wjob {
    int expanded, done;
    enum pipeline_conclusion result;
    json_t *outputs;                 /* of its legs, merged (owned) */
    size_t nlegs, finished, running; /* a caller's legs are the workflows it calls */
    int fail_fast_hit;
    int fail_fast;       /* strategy.fail-fast, evaluated when the job is expanded */
    size_t max_parallel; /* strategy.max-parallel, likewise; 0: no bound */
};

/* The jobs of one workflow in the run: the run's own (scopes[0]), or a
 * reusable workflow a caller job's leg expanded into (reusable.c, "Reusable
 * workflows" in docs/pipelines.md). Under rn->lock, like the wjobs. */
struct scope {
    const struct pipeline_workflow *wf;
    struct wjob *jobs;    /* one per wf->jobs */
    json_t *base;         /* github, vars, secrets, inputs, runner, env, jobs (owned) */
    char *prefix;         /* "" or "CALLER / ": its jobs' names start with it */
    char *file;           /* its file in the repository (a cycle is refused) */
    struct scope *parent; /* NULL for the run's workflow */
    size_t caller;        /* the calling job's index in parent->wf->jobs */
    unsigned depth;       /* 1 for the run's workflow */
    int done;
    enum pipeline_conclusion result;
    json_t *outputs; /* on.workflow_call.outputs, once done (owned) */
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
    struct scope **scopes; /* [0]: the run's workflow; then called ones, in order */
    size_t nscopes;
    struct pipeline_workflow **called; /* loaded called workflows (owned) */
    size_t ncalled;
    _Atomic int cancel, lost, stop;
    struct pipeline_runlog *log;
    json_t *base; /* github, vars, secrets, inputs (read-only once running) */
    /* The secrets' values, and those passed as secrets to called workflows,
     * which are known only when the call is made: appended holding both
     * rn->lock and mask_lock, read holding either; nmasks is masks.n, for
     * leg_line to see without a lock whether it has something to catch up. */
    struct pipeline_step_list masks;
    pthread_mutex_t mask_lock;
    _Atomic size_t nmasks;
    const char *const *labels; /* opts->labels, or own_labels */
    const char *own_labels[8]; /* the default ones, with arch_label */
    char arch_label[16];
    char *run_dir;
    char *cancelled_by; /* who asked, once seen (under lock) */
    /* why, when nobody asked (a newer run of its concurrency group): the
     * record's reason, kept for the run's end (under lock) */
    char *cancel_reason;
    /* The run's fields the legs read, copied at the start: rn->run itself is
     * rewritten by every update, under the lock the legs do not hold. */
    char id[PIPELINE_RUN_ID_SIZE];
    char *sha, *ref, *workflow, *event, *actor;
    char *repository; /* github.repository */
    int64_t heartbeat_ms;
    char arch[16];
    /* Resuming: the record's jobs when the run was claimed (a run recovery
     * queued again at its gates), matched to legs as they are added; taken
     * marks those matched (under lock). */
    size_t resume_n;
    unsigned char *taken;
    /* Legs waiting at a gate, undecided (under lock); parked: the run was
     * parked (pipeline_run_park), the legs stop without a word to the record. */
    size_t gated;
    _Atomic int parked;
    int park_failed;
};

/* ---- one leg's job (runner_job.c, runner_steps.c, runner_script.c, ...) ------------------- */

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

/* Where a list of steps runs (jr_run_steps): the job's own steps, or a
 * composite action's, which jr_run_action runs by calling jr_run_steps again one
 * level deeper. A nested scope has its own contexts (inputs, a private
 * steps context, github.action_path), its own status (what success() and
 * failure() see inside it) and the calling steps' env under each step's
 * own; its steps write into the calling step's log stream and are not
 * records of the job. */
struct stepscope {
    const struct pipeline_step *steps;
    size_t n;
    json_t *values;                /* the contexts the steps see (the caller's) */
    json_t *steps_ctx;             /* values' steps (borrowed) */
    enum pipeline_status *status;  /* &jobrun.status, or the action's so far */
    unsigned depth;                /* 0: the job's steps; n: n actions deep */
    const struct stepscope *up;    /* the calling scope (NULL: the job) */
    const char *uses;              /* depth > 0: the uses: that called it, as written */
    const char *action_dir;        /* depth > 0: the action's directory (GITHUB_ACTION_PATH) */
    struct pipeline_step_vars env; /* the calling steps' env, evaluated */
    int64_t deadline_mono; /* timeout-minutes of the calling steps (monotonic ms); 0: none */
};

/* ---- the run record (runner_record.c) ------------------------------------------------------ */

enum { UPD_ADD, UPD_START, UPD_STEPS, UPD_END, UPD_WAIT, UPD_GATE, UPD_GATE_END };
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
    /* START: the environment (name NULL: none); END: its url again (NULL: as
     * it was). WAIT: why the job waits (its concurrency group) */
    const char *env_name, *env_url, *reason;
    /* GATE: the requirement (decisions ignored); GATE_END: how it was decided */
    const struct pipeline_gate *gate;
    enum pipeline_gate_state gate_state;
};

/* Applies u to the record; the caller holds rn->lock. A lost claim stops the run. */
int runner_record(struct runner *rn, struct upd *u);

/* ---- evaluation and names (runner_eval.c) ---------------------------------------------------- */

/* s as a name fit for the record (control characters as spaces, bounded,
 * "job" when not UTF-8) with every mask replaced by "***": names go into
 * the record, which is not masked when read. Caller frees. */
char *runner_masked_name(const struct pipeline_step_list *masks, const char *s);
/* A JSON value as GitHub shows it in a leg's name or as text. */
void runner_json_text(struct buf *b, const json_t *v);
/* Evaluates a template (or takes the text as is) into a string (caller frees). */
int runner_eval_text(const struct pipeline_val *v, const json_t *values, enum pipeline_status st,
                     const char *workspace, char **out, struct sw_err *err);
/* Evaluates a template into a JSON value (caller decrefs). */
int runner_eval_json(const char *s, const json_t *values, json_t **out, struct sw_err *err);
/* A mapping (env, outputs) evaluated into an object of strings, added to obj. */
int runner_eval_map(const struct pipeline_map *m, const json_t *values, enum pipeline_status st,
                    const char *workspace, json_t *obj, struct sw_err *err);

/* ---- logs (runner_log.c) ------------------------------------------------------------------- */

/* Writes one line (already masked) to the leg's current stream and echoes it. */
void leg_line(struct leg *l, int64_t time_ms, enum pipeline_step_log_kind kind, const char *text,
              size_t len);
/* A line of the runner's own, masked with masks. */
void leg_say(struct leg *l, const struct pipeline_step_list *masks,
             enum pipeline_step_log_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Switches the leg's stream to (rec, step); closes the one before, in the
 * background, except the leg's last (step -1), closed and synced at once. */
void leg_stream(struct leg *l, unsigned step);
/* Says one line in the leg's own stream (before or after leg_run). */
void leg_note(struct leg *l, enum pipeline_step_log_kind kind, const char *text);

/* ---- contexts (runner_ctx.c) ----------------------------------------------------------------- */

/* rn->base: github (and the event file the steps read), vars, secrets (whose
 * values become rn->masks), inputs, runner, env and jobs. */
int runner_contexts(struct runner *rn, struct sw_err *err);

/* ---- scheduling (runner_sched.c, runner_call.c, runner_ticker.c) --------------------------- */

/* Starts what may start and settles what has ended. 1 when all is done. Under rn->lock. */
int runner_schedule(struct runner *rn);
/* Whether a leg has yet to start. Under rn->lock. */
int legs_pending(const struct runner *rn);
/* Adds n legs of job j of sc to the record and to rn->legs (values is the
 * job's context, copied per leg). done != NONE: they complete at once, with
 * why (NULL: nothing) said in their logs. Under rn->lock. */
void legs_add(struct runner *rn, struct scope *sc, size_t j, size_t n, char **names,
              json_t **matrices, const json_t *values, enum pipeline_conclusion done,
              const char *why);
/* A new scope of wf's jobs; base, prefix and file are taken over. */
struct scope *scope_add(struct runner *rn, const struct pipeline_workflow *wf, json_t *base,
                        char *prefix, char *file, struct scope *parent, size_t caller);
void scope_free(struct scope *sc);
/* Job j of sc calls a reusable workflow: each of its n legs (names, mats)
 * becomes a scope of the called workflow's jobs. Under rn->lock. */
void scope_expand_call(struct runner *rn, struct scope *sc, size_t j, size_t n, char **names,
                       json_t **mats, json_t *values);
/* The ticker thread (arg: the runner): until rn->stop. */
void *runner_ticker(void *arg);
/* Reads the record for cancel requests: of the run (who asked, or why), and
 * of a job its concurrency group asked to stop. Under rn->lock. */
void runner_read_cancel(struct runner *rn);

/* ---- a leg (runner_leg.c, runner_gate.c, runner_job.c) ------------------------------------- */

/* The thread of a leg (arg): waits for its environment's rules and its
 * concurrency group, runs its job, records its end. */
void *leg_thread(void *arg);
/* The rules of environment env for the leg: its ref, then its approval
 * gate. NONE: the leg may start; else how it ends, with *why. *parked: the
 * run was parked while the leg waited (it stops without a word). */
enum pipeline_conclusion leg_rules(struct leg *l, const char *env, char **why, int *parked);
/* Runs the leg's steps; returns its conclusion, its outputs in *outputs. */
enum pipeline_conclusion leg_run(struct leg *l, json_t **outputs);

/* ---- steps (runner_steps.c, runner_script.c, runner_action.c, runner_checkout.c) ------------ */

/* The status the job's steps see: cancelled once the run or the leg is, or
 * the job timed out. */
enum pipeline_status jr_status(struct jobrun *jr);
/* values' env: the variables of v (those that are text). */
void runner_env_to_json(const struct pipeline_step_vars *v, json_t *values);
/* Sets every string of object o in v. */
void runner_vars_from_json(struct pipeline_step_vars *v, const json_t *o);
/* The environment a scope's steps start from: the job's (workflow, job,
 * GITHUB_ENV) under the calling steps' env. */
void stepscope_env(const struct jobrun *jr, const struct stepscope *sc,
                   struct pipeline_step_vars *env);
/* values' env context: what the scope's steps start from. */
void stepscope_env_json(const struct jobrun *jr, const struct stepscope *sc, json_t *values);
/* A path inside the workspace for a relative one written in the workflow
 * (caller frees); NULL with err when it leaves the workspace. */
char *runner_inside(const char *base, const char *rel, struct sw_err *err);
/* Runs the steps of scope sc in order. */
void jr_run_steps(struct jobrun *jr, struct stepscope *sc);
/* One run: step of scope sc; fills the step's outputs into outputs. */
enum pipeline_step_outcome jr_run_step(struct jobrun *jr, const struct stepscope *sc,
                                       const struct pipeline_step *s, const char *name,
                                       json_t *values, json_t *outputs);
/* A step's `uses: ./path`: the composite action, run as a nested scope. */
enum pipeline_step_outcome jr_run_action(struct jobrun *jr, struct stepscope *sc,
                                         const struct pipeline_step *s, const char *name,
                                         json_t *values, json_t *outputs);
/* actions/checkout into the workspace. */
enum pipeline_step_outcome jr_checkout(struct jobrun *jr, const struct pipeline_step *step,
                                       const json_t *values);

#endif
