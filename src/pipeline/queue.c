/*
 * The run queue: creating, claiming, heartbeating, updating, finishing,
 * cancelling, recovering and listing runs, and concurrency groups.
 *
 * The one idea: every change to a run is a compare-and-swap on its run.json
 * (run_change: read, apply a pure function, write If-Match the ETag read;
 * on conflict read again), so two writers never lose each other's update and
 * of two claimers of one queued run exactly one wins. Nothing here holds a
 * lock: a process that dies leaves at most a run whose lease runs out, which
 * the next scan marks failed with the reason; it is never run again.
 *
 * Beside the records, small markers make the two scans cheap: runs/index/<id>
 * (every run, for listing without walking each run's logs) and
 * runs/active/<id> (runs that have not ended, for runners). Both are written
 * create-only before run.json, so a run that exists always has them; a marker
 * without its run (a creation cut short) is skipped and, once old, removed.
 * A run that has ended has its marker removed and its group released by
 * whoever sees it first (after_end: idempotent), so a crash between the end
 * and that bookkeeping is repaired by the next scan.
 *
 * Concurrency groups (GitHub's rule: at most one running and one pending run
 * per group; a newer run cancels the pending one, and with cancel-in-progress
 * the running one too) are decided on one document per group,
 * runs/groups/<sha256 of the group name, case-folded>.json, naming its holder
 * (the run allowed to run) and its pending run, changed by compare-and-swap.
 * Why a document and not a listing under a lease lock: a decision is then one
 * atomic write that names both runs, holds across processes and S3 alike, and
 * costs a constant number of operations whatever the number of runs, while a
 * lock would need a listing of the group's runs and leave a dead holder
 * blocking the group until its lease expired. Only the holder may be claimed;
 * a run displaced from the group is cancelled before the document that
 * displaces it is written (its fate is sealed by the newer run's arrival), and
 * members that have ended are dropped by whoever reads the document next.
 */
#include "pipeline/internal.h"
#include "pipeline/run_internal.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CAS_ROUNDS 100
#define GROUP_DOC_MAX (16u << 10)
#define LIST_SCAN_MAX 10000
#define LIST_LIMIT_MAX 1000
/* A marker whose run.json never appeared: its creation stopped between the
 * two writes. Kept this long so that a creation in progress is not undone. */
#define ORPHAN_MARKER_MS (10 * 60 * 1000)

/* fn results besides 0 (write) and negative codes: nothing to write. */
#define RUN_KEEP 1

typedef int (*change_fn)(struct pipeline_run *r, void *arg, struct sw_err *err);

static char *run_key(const char *id)
{
    return xasprintf("runs/%s/run.json", id);
}

static int bad_run_id(const char *id, struct sw_err *err)
{
    struct buf b = BUF_INIT;
    buf_add_escaped(&b, id ? id : "");
    int rc = sw_err_set(err, SW_EINVAL,
                        "not a run id: \"%s\" (run ids look like run-20261205-142233-512-9f3a1c)",
                        b.data ? b.data : "");
    buf_free(&b);
    return rc;
}

/* ---- reading ----------------------------------------------------------------------------- */

static int sink_buf(void *arg, const void *data, size_t len, struct sw_err *err)
{
    buf_add(arg, data, len);
    return 0;
}

int run_get_bounded(struct store *st, const char *key, size_t max, char **data, size_t *len,
                    char etag[SHA256_HEX_LEN + 1], struct sw_err *err)
{
    struct buf b = BUF_INIT;
    uint64_t size = 0;
    int rc = store_get_stream(st, key, max, sink_buf, &b, etag, &size, err);
    if (rc == STORE_ETOOBIG)
        rc = sw_err_set(err, SW_EINVAL, "%s: larger than %zu bytes", key, max);
    if (rc) {
        buf_free(&b);
        return rc;
    }
    *data = buf_detach(&b, len);
    return 0;
}

int pipeline_run_load(struct store *st, const char *id, struct pipeline_run **out,
                      struct sw_err *err)
{
    if (!pipeline_run_id_valid(id))
        return bad_run_id(id, err);
    char *key = run_key(id), *data = NULL, etag[SHA256_HEX_LEN + 1];
    size_t len = 0;
    int rc = run_get_bounded(st, key, PIPELINE_RUN_DOC_MAX, &data, &len, etag, err);
    if (rc == SW_ENOTFOUND)
        rc = sw_err_set(err, SW_ENOTFOUND, "no run %s", id);
    if (!rc && !(rc = pipeline_run_parse(key, data, len, out, err)))
        memcpy((*out)->etag, etag, sizeof(etag));
    free(data);
    free(key);
    return rc;
}

/* ---- writing ----------------------------------------------------------------------------- */

/* The document r would be written as, checked by the parser every reader
 * uses: a record readers would refuse is never written. */
static char *run_encode(const struct pipeline_run *r, struct sw_err *err)
{
    char *doc = pipeline_run_dump(r);
    if (!doc) {
        sw_err_set(err, SW_EINVAL, "run %s: cannot encode the record (text must be UTF-8)", r->id);
        return NULL;
    }
    char *key = run_key(r->id);
    struct pipeline_run *check = NULL;
    int rc = pipeline_run_parse(key, doc, strlen(doc), &check, err);
    pipeline_run_free(check);
    free(key);
    if (rc) {
        sw_err_prefix(err, "refusing to write run %s", r->id);
        free(doc);
        return NULL;
    }
    return doc;
}

/* Writes r by compare-and-swap on r->etag, or create-only when create. */
static int run_save(struct store *st, struct pipeline_run *r, int create, struct sw_err *err)
{
    char *doc = run_encode(r, err);
    if (!doc)
        return SW_EINVAL;
    char *key = run_key(r->id), etag[SHA256_HEX_LEN + 1];
    int rc = store_put_if_match(st, key, doc, strlen(doc), create ? NULL : r->etag, etag, err);
    if (!rc)
        memcpy(r->etag, etag, sizeof(etag));
    free(key);
    free(doc);
    return rc;
}

/* A short random pause after a lost compare-and-swap, so that the losers of
 * one round do not collide again in lockstep. */
static void backoff(int round)
{
    static _Thread_local unsigned seed;
    if (!seed)
        seed = (unsigned)time_mono_ms() ^ (unsigned)(uintptr_t)&seed ^ (unsigned)getpid();
    int span = 1 << (round < 6 ? round : 6); /* up to 64 steps of 50 us */
    usleep((useconds_t)(rand_r(&seed) % span) * 50);
}

/* Reads run id, applies fn and writes the result by compare-and-swap, again
 * from a fresh read when another writer got in between. *out (optional)
 * receives the record as written (or as read, when fn kept it). */
static int run_change(struct store *st, const char *id, change_fn fn, void *arg,
                      struct pipeline_run **out, struct sw_err *err)
{
    for (int round = 0; round < CAS_ROUNDS; round++) {
        struct pipeline_run *r = NULL;
        int rc = pipeline_run_load(st, id, &r, err);
        if (rc)
            return rc;
        int64_t generation = r->generation;
        rc = fn(r, arg, err);
        if (rc == 0) {
            r->generation = generation + 1;
            rc = run_save(st, r, 0, err);
            if (rc == SW_ECONFLICT) {
                pipeline_run_free(r);
                backoff(round);
                continue;
            }
        } else if (rc == RUN_KEEP) {
            rc = 0;
        }
        if (rc || !out)
            pipeline_run_free(r);
        else
            *out = r;
        return rc;
    }
    return sw_err_set(err, SW_ECONFLICT,
                      "run %s was changed by others %d times in a row while this change was "
                      "being made; nothing was changed",
                      id, CAS_ROUNDS);
}

/* Moves src's contents into *dst (the caller's copy) and frees the rest. */
static void run_replace(struct pipeline_run *dst, struct pipeline_run *src)
{
    struct pipeline_run tmp = *dst;
    *dst = *src;
    *src = tmp;
    pipeline_run_free(src);
}

static int not_queued(const struct pipeline_run *r, struct sw_err *err)
{
    if (pipeline_run_status_ended(r->status))
        return sw_err_set(err, PIPELINE_ECLAIMED, "run %s has ended (%s)", r->id,
                          pipeline_run_status_name(r->status));
    return sw_err_set(err, PIPELINE_ECLAIMED, "run %s is %s: claimed by runner %s on %s", r->id,
                      pipeline_run_status_name(r->status), r->claim.runner ? r->claim.runner : "?",
                      r->claim.host ? r->claim.host : "?");
}

/* ---- claims and their holders ------------------------------------------------------------ */

static int claim_is(const struct pipeline_run_claim *a, const struct pipeline_run_claim *b)
{
    return a->runner && b->runner && !strcmp(a->runner, b->runner) && a->host && b->host &&
           !strcmp(a->host, b->host) && a->pid == b->pid && a->since_ms == b->since_ms;
}

static int lost(const struct pipeline_run *cur, const struct pipeline_run_claim *mine,
                struct sw_err *err)
{
    return sw_err_set(err, PIPELINE_ELOST,
                      "run %s is no longer claimed by runner %s (it is %s%s%s)", cur->id,
                      mine->runner ? mine->runner : "?", pipeline_run_status_name(cur->status),
                      cur->reason ? ": " : "", cur->reason ? cur->reason : "");
}

/* Whether the holder of a running run is gone: a process of this host that
 * no longer exists (at once: nobody can still be running it), or a lease
 * that has expired. A reused pid only makes us wait for the lease, which is
 * safe. why receives the detail. */
static int holder_gone(const struct pipeline_run *r, int64_t now, char *why, size_t n)
{
    if ((r->status != PIPELINE_RUN_RUNNING && r->status != PIPELINE_RUN_WAITING) ||
        !r->claim.runner)
        return 0;
    if (r->claim.host && !strcmp(r->claim.host, sys_host()) && r->claim.pid > 0 &&
        kill((pid_t)r->claim.pid, 0) < 0 && errno == ESRCH) {
        snprintf(why, n, "process %lld is gone", (long long)r->claim.pid);
        return 1;
    }
    if (r->claim.expires_ms < now) {
        char iso[40];
        time_format_iso(r->claim.expires_ms, iso, sizeof(iso));
        snprintf(why, n, "its lease expired at %s", iso);
        return 1;
    }
    return 0;
}

/* ---- parked runs ---------------------------------------------------------------------------- */

/* A run waiting at its gates that no runner holds (pipeline_run_park). */
static int is_parked(const struct pipeline_run *r)
{
    return r->status == PIPELINE_RUN_WAITING && !r->claim.runner;
}

int pipeline_run_parked_ready(const struct pipeline_run *r, int64_t now_ms)
{
    if (!is_parked(r))
        return 0;
    /* a cancel asked meanwhile is acted on by whoever claims it */
    if (r->cancel_requested)
        return 1;
    for (size_t i = 0; i < r->njobs; i++) {
        const struct pipeline_run_job *j = &r->jobs[i];
        if (j->status == PIPELINE_JOB_WAITING && j->gate &&
            pipeline_gate_decide(j->gate, r->actor, now_ms, NULL, NULL) != PIPELINE_GATE_WAITING)
            return 1;
    }
    return 0;
}

/* ---- concurrency groups ------------------------------------------------------------------ */

/* A member of a group is a run ("run-…") or one job of a run ("run-…/N": the
 * job at index N of the run's jobs), so that runs and jobs share one space of
 * group names, as on GitHub. */
#define MEMBER_SIZE (PIPELINE_RUN_ID_SIZE + 8)

struct group {
    char *name;
    char key[96];
    char holder[MEMBER_SIZE], pending[MEMBER_SIZE];
    int64_t generation;
    char etag[SHA256_HEX_LEN + 1];
    int exists;
};

/* Whether s names a member: a run id, or a run id, '/' and a job index. The
 * run id is copied to run (optional) and the index to *job (-1 for a run). */
static int member_parse(const char *s, char run[PIPELINE_RUN_ID_SIZE], long *job)
{
    const char *slash = strchr(s, '/');
    char id[PIPELINE_RUN_ID_SIZE];
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    long k = -1;

    if (n >= sizeof(id))
        return 0;
    memcpy(id, s, n);
    id[n] = '\0';
    if (!pipeline_run_id_valid(id))
        return 0;
    if (slash) {
        const char *p = slash + 1;
        k = 0;
        if (!*p || strlen(p) > 4 || (p[0] == '0' && p[1]))
            return 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return 0;
            k = k * 10 + (*p - '0');
        }
        if (k >= PIPELINE_RUN_MAX_JOBS)
            return 0;
    }
    if (run)
        memcpy(run, id, sizeof(id));
    if (job)
        *job = k;
    return 1;
}

static int member_is_job(const char *m)
{
    return strchr(m, '/') != NULL;
}

/* "run X" or "job N of run X", for reasons. */
static char *member_describe(const char *m)
{
    char run[PIPELINE_RUN_ID_SIZE];
    long job = -1;
    if (!member_parse(m, run, &job))
        return xstrdup(m);
    return job < 0 ? xasprintf("run %s", run) : xasprintf("job %ld of run %s", job, run);
}

/* Members are ordered by arrival; between two runs, whose arrival may race,
 * by their ids (creation time). A job arrives when it is about to start, so
 * it is never "older" than what is in the group already. */
static int member_older(const char *a, const char *b)
{
    return !member_is_job(a) && !member_is_job(b) && strcmp(a, b) < 0;
}

/* GitHub: "The concurrency group name is case insensitive": the key is the
 * hash of the name folded as expressions compare strings (expr_fold), and a
 * name of any text never becomes a path. */
static void group_key(const char *name, char *key, size_t n)
{
    struct buf b = BUF_INIT;
    char hex[SHA256_HEX_LEN + 1];
    expr_fold(&b, name, strlen(name));
    sha256_hex(b.data ? b.data : "", b.len, hex);
    buf_free(&b);
    snprintf(key, n, "runs/groups/%s.json", hex);
}

static void group_clear(struct group *g)
{
    free(g->name);
    memset(g, 0, sizeof(*g));
}

/* A group document is hostile input like a run's. One that cannot be read is
 * treated as empty and overwritten (If-Match its ETag): a forged document can
 * only do what its forger could do by writing runs directly. */
static int group_parse(const char *key, const char *data, size_t len, struct group *g)
{
    json_t *root = NULL;
    if (json_doc_parse(key, data, len, &root, NULL))
        return SW_EINVAL;
    struct json_fields jf = JSON_FIELDS_INIT(key);
    char *name = json_field_str(&jf, root, "group", RUN_TEXT_MAX, JSON_FIELD_REQUIRED);
    char *holder = json_field_str(&jf, root, "holder", 64, 0);
    char *pending = json_field_str(&jf, root, "pending", 64, 0);
    int64_t gen = json_field_int(&jf, root, "generation", 1, (int64_t)1 << 50, JSON_FIELD_REQUIRED);
    char want[96];
    int ok = !jf.bad && json_is_object(root) && name &&
             (!holder || member_parse(holder, NULL, NULL)) &&
             (!pending || member_parse(pending, NULL, NULL));
    if (ok) {
        group_key(name, want, sizeof(want));
        ok = !strcmp(want, key);
    }
    if (ok) {
        g->name = name;
        name = NULL;
        snprintf(g->holder, sizeof(g->holder), "%s", holder ? holder : "");
        snprintf(g->pending, sizeof(g->pending), "%s", pending ? pending : "");
        g->generation = gen;
    }
    free(name);
    free(holder);
    free(pending);
    json_decref(root);
    return ok ? 0 : SW_EINVAL;
}

static int group_load(struct store *st, const char *name, struct group *g, struct sw_err *err)
{
    char *data = NULL;
    size_t len = 0;
    memset(g, 0, sizeof(*g));
    group_key(name, g->key, sizeof(g->key));
    int rc = run_get_bounded(st, g->key, GROUP_DOC_MAX, &data, &len, g->etag, err);
    if (rc == SW_ENOTFOUND) {
        g->etag[0] = '\0';
        rc = 0;
    } else if (rc == SW_EINVAL) {
        /* Too big to be ours: overwritten like any unreadable one, If-Match
         * its ETag (the store hashes it without our holding it). */
        struct store_stat sb;
        rc = store_head(st, g->key, &sb, STORE_STAT_ETAG, err);
        if (rc == SW_ENOTFOUND) {
            g->etag[0] = '\0';
            rc = 0;
        } else if (!rc) {
            memcpy(g->etag, sb.etag, sizeof(g->etag));
            g->exists = 1;
        }
    } else if (!rc) {
        g->exists = 1;
        if (group_parse(g->key, data, len, g)) {
            group_clear(g);
            group_key(name, g->key, sizeof(g->key));
            sha256_hex(data, len, g->etag);
            g->exists = 1;
        }
    }
    free(data);
    if (!rc && !g->name)
        g->name = xstrdup(name);
    return rc;
}

static int group_save(struct store *st, struct group *g, struct sw_err *err)
{
    g->generation++;
    json_t *doc = json_pack("{s:s, s:o, s:o, s:I}", "group", g->name, "holder",
                            json_str_or_null(g->holder[0] ? g->holder : NULL), "pending",
                            json_str_or_null(g->pending[0] ? g->pending : NULL), "generation",
                            (json_int_t)g->generation);
    char *s = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (!s)
        return sw_err_set(err, SW_EINVAL, "concurrency group %s: cannot encode", g->key);
    int rc = store_put_if_match(st, g->key, s, strlen(s), g->exists ? g->etag : NULL, g->etag, err);
    if (rc == SW_EEXIST)
        rc = SW_ECONFLICT;
    free(s);
    if (!rc)
        g->exists = 1;
    return rc;
}

/* Whether member m still counts in its group: its run exists and has not
 * ended (and, for a job, the job is in the run and not completed). A run that
 * is missing or refused cannot hold a group (else one bad document would
 * block it for ever). */
static int member_active(struct store *st, const char *m, int *active, struct sw_err *err)
{
    struct pipeline_run *r = NULL;
    char id[PIPELINE_RUN_ID_SIZE];
    long job = -1;
    *active = 0;
    if (!member_parse(m, id, &job))
        return 0;
    int rc = pipeline_run_load(st, id, &r, err);
    if (rc == SW_ENOTFOUND || rc == SW_EINVAL)
        return 0;
    if (rc)
        return rc;
    *active = !pipeline_run_status_ended(r->status);
    if (job >= 0)
        *active &= (size_t)job < r->njobs && r->jobs[job].status != PIPELINE_JOB_COMPLETED;
    pipeline_run_free(r);
    return 0;
}

/* Drops members that have ended and promotes the pending run when the holder
 * is gone. *changed says whether g must be written; *promoted names the run
 * promoted ("" when none). */
static int group_resolve(struct store *st, struct group *g, int *changed,
                         char promoted[MEMBER_SIZE], struct sw_err *err)
{
    int active, rc;
    *changed = 0;
    promoted[0] = '\0';
    if (g->holder[0]) {
        if ((rc = member_active(st, g->holder, &active, err)))
            return rc;
        if (!active) {
            g->holder[0] = '\0';
            *changed = 1;
        }
    }
    if (g->pending[0]) {
        if ((rc = member_active(st, g->pending, &active, err)))
            return rc;
        if (!active) {
            g->pending[0] = '\0';
            *changed = 1;
        }
    }
    if (!g->holder[0] && g->pending[0]) {
        memcpy(g->holder, g->pending, MEMBER_SIZE);
        memcpy(promoted, g->pending, MEMBER_SIZE);
        g->pending[0] = '\0';
        *changed = 1;
    }
    return 0;
}

static int apply_unwait(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    if (r->status != PIPELINE_RUN_QUEUED || !r->waiting_for[0])
        return RUN_KEEP;
    r->waiting_for[0] = '\0';
    run_set_str(&r->reason, NULL);
    return 0;
}

/* A run promoted to holder no longer waits: say so in its record (the claim
 * would clear it too; this keeps `run list` truthful meanwhile). */
static void promoted_unwait(struct store *st, const char *promoted)
{
    /* a job's runner polls the group itself */
    if (promoted[0] && !member_is_job(promoted))
        run_change(st, promoted, apply_unwait, NULL, NULL, NULL);
}

static void after_end(struct store *st, const struct pipeline_run *r);

struct cancel_arg {
    const char *actor;  /* cancelled_by */
    const char *reason; /* reason for the record */
    int only_queued;    /* leave a claimed run alone */
    int ended;          /* out: the run is cancelled now (or had ended) */
    int requested;      /* out: a cancel was requested of a claimed run */
};

static int apply_cancel(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    struct cancel_arg *a = arg;
    a->ended = a->requested = 0;
    if (pipeline_run_status_ended(r->status)) {
        a->ended = 1;
        return a->only_queued ? RUN_KEEP
                              : sw_err_set(err, PIPELINE_EENDED, "run %s has ended already (%s)",
                                           r->id, pipeline_run_status_name(r->status));
    }
    if (r->status == PIPELINE_RUN_QUEUED || is_parked(r)) {
        /* nobody runs it: it ends now, and so do its jobs (those waiting
         * at a gate cancelled, those not begun skipped) */
        int64_t now = time_now_ms();
        for (size_t i = 0; i < r->njobs; i++) {
            struct pipeline_run_job *j = &r->jobs[i];
            if (j->status == PIPELINE_JOB_COMPLETED)
                continue;
            j->conclusion = j->status == PIPELINE_JOB_QUEUED ? PIPELINE_CONCLUSION_SKIPPED
                                                             : PIPELINE_CONCLUSION_CANCELLED;
            j->status = PIPELINE_JOB_COMPLETED;
            j->ended_ms = now;
        }
        r->status = PIPELINE_RUN_CANCELLED;
        r->conclusion = PIPELINE_CONCLUSION_CANCELLED;
        r->ended_ms = now;
        r->waiting_for[0] = '\0';
        r->cancel_requested = 1;
        run_set_str(&r->cancelled_by, a->actor);
        run_set_str(&r->reason, a->reason);
        a->ended = 1;
        return 0;
    }
    if (a->only_queued)
        return RUN_KEEP;
    a->requested = 1;
    if (r->cancel_requested)
        return RUN_KEEP;
    r->cancel_requested = 1;
    run_set_str(&r->cancelled_by, a->actor);
    if (a->reason)
        run_set_str(&r->reason, a->reason);
    return 0;
}

struct job_cancel_arg {
    long job;
    const char *reason;
    int only_queued; /* leave a job that started alone */
    int ended;       /* out: the job has ended (or is gone) */
};

/* Asks a job of a run to stop: its runner (which holds the run's claim) sees
 * the request and ends the job cancelled. A job that has not started is
 * ended by its runner at once. */
static int apply_job_cancel(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    struct job_cancel_arg *a = arg;
    a->ended = 0;
    if (pipeline_run_status_ended(r->status) || (size_t)a->job >= r->njobs ||
        r->jobs[a->job].status == PIPELINE_JOB_COMPLETED) {
        a->ended = 1;
        return RUN_KEEP;
    }
    struct pipeline_run_job *j = &r->jobs[a->job];
    if ((a->only_queued && j->status != PIPELINE_JOB_QUEUED) || j->cancel_requested)
        return RUN_KEEP;
    j->cancel_requested = 1;
    run_set_str(&j->reason, a->reason);
    return 0;
}

/* Cancels member id for the group's sake (only_queued: only if nobody claimed
 * the run, or the job has not started). *ended (optional) says whether it has
 * ended now: a job never has, its runner ends it. */
static int cancel_for_group(struct store *st, const char *id, const char *reason, int only_queued,
                            int *ended, struct sw_err *err)
{
    char run[PIPELINE_RUN_ID_SIZE];
    long job = -1;
    if (!member_parse(id, run, &job)) {
        if (ended)
            *ended = 1;
        return 0;
    }
    if (job >= 0) {
        struct job_cancel_arg ja = {job, reason, only_queued, 0};
        int jrc = run_change(st, run, apply_job_cancel, &ja, NULL, err);
        if (jrc == SW_ENOTFOUND || jrc == SW_EINVAL) {
            ja.ended = 1;
            jrc = 0;
        }
        if (ended)
            *ended = ja.ended;
        return jrc;
    }
    struct cancel_arg a = {NULL, reason, only_queued, 0, 0};
    struct pipeline_run *r = NULL;
    int rc = run_change(st, id, apply_cancel, &a, &r, err);
    if (rc == SW_ENOTFOUND || rc == SW_EINVAL) {
        a.ended = 1; /* gone or refused: it holds nothing (member_active agrees) */
        rc = 0;
    }
    if (!rc && r && a.ended)
        after_end(st, r);
    pipeline_run_free(r);
    if (ended)
        *ended = a.ended;
    return rc;
}

enum join_result { JOIN_HOLDER, JOIN_PENDING, JOIN_SUPERSEDED, JOIN_DEADLOCK };

/* Puts member id into its group by GitHub's rule. *res says what it became;
 * other names the member it waits for (PENDING) or that superseded it. A job
 * whose own run holds the group would wait for itself: JOIN_DEADLOCK. */
static int group_join(struct store *st, const char *id, const char *name, int cip, int *res,
                      char other[MEMBER_SIZE], struct sw_err *err)
{
    char why[RUN_TEXT_MAX + 200], own[PIPELINE_RUN_ID_SIZE];
    long own_job = -1;
    if (!member_parse(id, own, &own_job))
        return sw_err_set(err, SW_EINVAL, "not a member of a concurrency group: %s", id);
    if (own_job >= 0)
        /* GitHub's words for a job that loses its place */
        snprintf(why, sizeof(why),
                 "Canceling since a higher priority waiting request for '%s' exists", name);
    else
        snprintf(why, sizeof(why), "superseded by run %s in concurrency group %s", id, name);
    for (int round = 0; round < CAS_ROUNDS; round++) {
        struct group g;
        char promoted[MEMBER_SIZE];
        int changed, rc = group_load(st, name, &g, err);
        if (!rc)
            rc = group_resolve(st, &g, &changed, promoted, err);
        if (rc) {
            group_clear(&g);
            return rc;
        }
        other[0] = '\0';
        int decided = 0;
        if (own_job >= 0 && !strcmp(g.holder, own)) {
            /* its own run holds the group: it would wait for ever */
            *res = JOIN_DEADLOCK;
            memcpy(other, g.holder, MEMBER_SIZE);
            group_clear(&g);
            return 0;
        }
        if (!strcmp(g.holder, id) || !strcmp(g.pending, id)) {
            /* In already (a second join after a crash): only write back what
             * resolving changed. */
            *res = !strcmp(g.holder, id) ? JOIN_HOLDER : JOIN_PENDING;
            if (*res == JOIN_PENDING)
                memcpy(other, g.holder, MEMBER_SIZE);
            decided = 1;
        } else if ((g.pending[0] && member_older(id, g.pending)) ||
                   (cip && g.holder[0] && member_older(id, g.holder))) {
            /* A newer run joined first (a concurrent creation overtook this
             * one, or this join comes late, after a crash). An older run
             * never displaces a newer one: only the newest pending run is
             * kept, and with cancel-in-progress the newest run wins. (Older
             * than the holder without cancel-in-progress, it simply waits.) */
            *res = JOIN_SUPERSEDED;
            memcpy(other, g.pending[0] && member_older(id, g.pending) ? g.pending : g.holder,
                   MEMBER_SIZE);
            group_clear(&g);
            return 0;
        }
        if (!decided && !g.holder[0]) {
            snprintf(g.holder, sizeof(g.holder), "%s", id);
            *res = JOIN_HOLDER;
            changed = 1;
        } else if (!decided) {
            /* The displaced runs are cancelled before the document naming
             * their successor is written: whatever happens to this write,
             * the arrival of a newer run has sealed their fate. The pending
             * one only while nobody has claimed it (if it was promoted
             * meanwhile, the document changed and this write will fail). */
            int ended = 0;
            if (g.pending[0] && (rc = cancel_for_group(st, g.pending, why, 1, NULL, err)))
                goto fail;
            g.pending[0] = '\0';
            if (cip && (rc = cancel_for_group(st, g.holder, why, 0, &ended, err)))
                goto fail;
            if (ended) {
                /* It was queued and is cancelled: the group is free now. */
                snprintf(g.holder, sizeof(g.holder), "%s", id);
                *res = JOIN_HOLDER;
            } else {
                memcpy(other, g.holder, MEMBER_SIZE);
                snprintf(g.pending, sizeof(g.pending), "%s", id);
                *res = JOIN_PENDING;
            }
            changed = 1;
        }
        if (changed && (rc = group_save(st, &g, err))) {
            if (rc == SW_ECONFLICT) {
                group_clear(&g);
                backoff(round);
                continue;
            }
            goto fail;
        }
        group_clear(&g);
        if (changed)
            promoted_unwait(st, promoted);
        return 0;
    fail:
        group_clear(&g);
        return rc;
    }
    return sw_err_set(err, SW_ECONFLICT,
                      "concurrency group %s changed %d times in a row while run %s was joining it",
                      name, CAS_ROUNDS, id);
}

struct wait_arg {
    const char *holder;
    const char *group;
};

static int apply_wait(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    struct wait_arg *a = arg;
    if (r->status != PIPELINE_RUN_QUEUED)
        return RUN_KEEP;
    if (!a->holder) {
        if (!r->waiting_for[0] && !r->reason)
            return RUN_KEEP;
        r->waiting_for[0] = '\0';
        run_set_str(&r->reason, NULL);
        return 0;
    }
    /* waiting_for names a run: the holder's, when the holder is a job */
    char run[PIPELINE_RUN_ID_SIZE];
    if (!member_parse(a->holder, run, NULL))
        return RUN_KEEP;
    char *who = member_describe(a->holder);
    char *why = xasprintf("waiting for %s in concurrency group %s", who, a->group);
    free(who);
    if (!strcmp(r->waiting_for, run) && r->reason && !strcmp(r->reason, why)) {
        free(why);
        return RUN_KEEP;
    }
    snprintf(r->waiting_for, sizeof(r->waiting_for), "%s", run);
    run_set_str(&r->reason, why);
    free(why);
    return 0;
}

/* Joins run r's group and records the outcome in its record. */
static int group_enter(struct store *st, const struct pipeline_run *r, struct sw_err *err)
{
    int res = JOIN_HOLDER;
    char other[MEMBER_SIZE];
    int rc = group_join(st, r->id, r->group, r->cancel_in_progress, &res, other, err);
    if (rc)
        return rc;
    if (res == JOIN_SUPERSEDED) {
        char *who = member_describe(other);
        char *why = xasprintf("superseded by %s in concurrency group %s", who, r->group);
        free(who);
        rc = cancel_for_group(st, r->id, why, 1, NULL, err);
        free(why);
        return rc;
    }
    struct wait_arg a = {res == JOIN_PENDING ? other : NULL, r->group};
    return run_change(st, r->id, apply_wait, &a, NULL, err);
}

/* Leaves the group: the holder's place goes to the pending run. */
static void group_release(struct store *st, const char *name, const char *id)
{
    for (int round = 0; round < CAS_ROUNDS; round++) {
        struct group g;
        char promoted[MEMBER_SIZE] = "";
        if (group_load(st, name, &g, NULL))
            return;
        if (!strcmp(g.holder, id)) {
            memcpy(g.holder, g.pending, MEMBER_SIZE);
            memcpy(promoted, g.pending, MEMBER_SIZE);
            g.pending[0] = '\0';
        } else if (!strcmp(g.pending, id)) {
            g.pending[0] = '\0';
        } else {
            group_clear(&g);
            return;
        }
        int rc = group_save(st, &g, NULL);
        group_clear(&g);
        if (rc == SW_ECONFLICT) {
            backoff(round);
            continue;
        }
        if (!rc)
            promoted_unwait(st, promoted);
        return;
    }
}

/* Whether run r (queued, in a group) may be claimed now: 0 when it holds the
 * group, PIPELINE_EWAITING when it waits, PIPELINE_ECLAIMED when it was
 * superseded (and is cancelled now), SW_ECONFLICT to read r again. */
static int group_admit(struct store *st, const struct pipeline_run *r, struct sw_err *err)
{
    struct group g;
    char promoted[MEMBER_SIZE];
    int changed, rc = group_load(st, r->group, &g, err);
    if (!rc)
        rc = group_resolve(st, &g, &changed, promoted, err);
    if (rc)
        goto out;
    if (!strcmp(g.holder, r->id)) {
        if (changed && !(rc = group_save(st, &g, err)))
            promoted_unwait(st, promoted);
    } else if (!strcmp(g.pending, r->id)) {
        char *who = member_describe(g.holder);
        rc = sw_err_set(err, PIPELINE_EWAITING, "run %s is waiting for %s in concurrency group %s",
                        r->id, who, r->group);
        free(who);
    } else {
        /* Not in its group: its creation stopped before joining, or the
         * group document was lost. Join now, then read the run again. */
        group_clear(&g);
        if ((rc = group_enter(st, r, err)))
            return rc;
        return SW_ECONFLICT;
    }
out:
    group_clear(&g);
    return rc;
}

/* ---- jobs in concurrency groups ------------------------------------------------------------ */

int pipeline_job_group_enter(struct store *st, const char *run_id, size_t job, const char *group,
                             int cancel_in_progress, enum pipeline_job_admit *state, char **why,
                             struct sw_err *err)
{
    char member[MEMBER_SIZE];
    *state = PIPELINE_JOB_WAIT;
    *why = NULL;
    if (!pipeline_run_id_valid(run_id) || job >= PIPELINE_RUN_MAX_JOBS)
        return sw_err_set(err, SW_EINVAL, "not a job of a run: %s/%zu", run_id, job);
    if (!group || !*group || !text_valid(group, RUN_TEXT_MAX, 0))
        return sw_err_set(err, SW_EINVAL, "not a concurrency group name");
    snprintf(member, sizeof(member), "%s/%zu", run_id, job);
    for (int round = 0; round < CAS_ROUNDS; round++) {
        struct group g;
        char promoted[MEMBER_SIZE];
        int changed, rc = group_load(st, group, &g, err);
        if (!rc)
            rc = group_resolve(st, &g, &changed, promoted, err);
        if (rc) {
            group_clear(&g);
            return rc;
        }
        int in = !strcmp(g.holder, member) ? 1 : !strcmp(g.pending, member) ? 2 : 0;
        if (in) {
            char *holder = member_describe(g.holder);
            if (changed && (rc = group_save(st, &g, err))) {
                group_clear(&g);
                free(holder);
                if (rc == SW_ECONFLICT) {
                    backoff(round);
                    continue;
                }
                return rc;
            }
            if (changed)
                promoted_unwait(st, promoted);
            *state = in == 1 ? PIPELINE_JOB_GO : PIPELINE_JOB_WAIT;
            if (in == 2)
                *why = xasprintf("waiting for %s in concurrency group %s", holder, group);
            free(holder);
            group_clear(&g);
            return 0;
        }
        group_clear(&g);
        /* Not in the group. A member displaced by a newer one has its cancel
         * request written before the document that displaces it, so reading
         * the record after the document tells a displaced job from one that
         * has not joined yet (or whose document was lost). */
        struct pipeline_run *r = NULL;
        if ((rc = pipeline_run_load(st, run_id, &r, err)))
            return rc;
        if (job < r->njobs && r->jobs[job].cancel_requested) {
            *state = PIPELINE_JOB_STOP;
            *why = xstrdup(r->jobs[job].reason ? r->jobs[job].reason : "cancelled");
            pipeline_run_free(r);
            return 0;
        }
        pipeline_run_free(r);
        int res = JOIN_HOLDER;
        char other[MEMBER_SIZE];
        if ((rc = group_join(st, member, group, cancel_in_progress, &res, other, err)))
            return rc;
        if (res == JOIN_HOLDER) {
            *state = PIPELINE_JOB_GO;
        } else if (res == JOIN_PENDING) {
            char *holder = member_describe(other);
            *why = xasprintf("waiting for %s in concurrency group %s", holder, group);
            free(holder);
        } else if (res == JOIN_SUPERSEDED) {
            *state = PIPELINE_JOB_STOP;
            *why = xasprintf("Canceling since a higher priority waiting request for '%s' exists",
                             group);
        } else {
            *state = PIPELINE_JOB_STOP;
            *why = xasprintf("Canceling since a deadlock for concurrency group '%s' was detected "
                             "between 'top level workflow' and 'job %zu'",
                             group, job);
        }
        return 0;
    }
    return sw_err_set(err, SW_ECONFLICT,
                      "concurrency group %s changed %d times in a row while job %s was joining it",
                      group, CAS_ROUNDS, member);
}

void pipeline_job_group_leave(struct store *st, const char *run_id, size_t job, const char *group)
{
    char member[MEMBER_SIZE];
    if (!pipeline_run_id_valid(run_id) || !group || !*group)
        return;
    snprintf(member, sizeof(member), "%s/%zu", run_id, job);
    group_release(st, group, member);
}

/* ---- the bookkeeping after a run ended ---------------------------------------------------- */

static char *active_key(const char *id)
{
    return xasprintf("runs/active/%s", id);
}

/* Releases the group and drops the active marker of an ended run. Idempotent,
 * and done again by any scan that finds an ended run still marked active. */
static void after_end(struct store *st, const struct pipeline_run *r)
{
    if (r->group)
        group_release(st, r->group, r->id);
    char *key = active_key(r->id);
    store_delete(st, key, NULL, NULL);
    free(key);
    /* the group's pending run may be claimable now */
    if (r->group)
        (void)store_notify(st, "runs", NULL);
}

/* ---- create ------------------------------------------------------------------------------- */

static json_t *copy_json(json_t *v)
{
    return v ? json_deep_copy(v) : NULL;
}

static void copy_jobs(struct pipeline_run *r, const struct pipeline_run *spec)
{
    for (size_t i = 0; i < spec->njobs && i < PIPELINE_RUN_MAX_JOBS; i++) {
        const struct pipeline_run_job *s = &spec->jobs[i];
        struct pipeline_run_job *j = pipeline_run_job_add(r);
        j->id = s->id ? xstrdup(s->id) : NULL;
        j->name = s->name ? xstrdup(s->name) : NULL;
        j->matrix = copy_json(s->matrix);
        j->status = s->status;
        j->conclusion = s->conclusion;
        j->started_ms = s->started_ms;
        j->ended_ms = s->ended_ms;
        j->outputs = copy_json(s->outputs);
        run_set_str(&j->environment_name, s->environment_name);
        run_set_str(&j->environment_url, s->environment_url);
        run_set_str(&j->reason, s->reason);
        j->cancel_requested = s->cancel_requested;
        j->gate = pipeline_gate_dup(s->gate);
        for (size_t k = 0; k < s->nsteps; k++) {
            struct pipeline_run_step *st = pipeline_run_step_add(j, s->steps[k].name);
            if (!st)
                break;
            st->outcome = s->steps[k].outcome;
            st->conclusion = s->steps[k].conclusion;
        }
    }
}

static struct pipeline_run *run_from_spec(const struct pipeline_run *spec)
{
    struct pipeline_run *r = xcalloc(1, sizeof(*r));
    run_set_str(&r->workflow, spec->workflow);
    run_set_str(&r->display_title, spec->display_title);
    run_set_str(&r->workflow_file, spec->workflow_file);
    run_set_str(&r->event, spec->event);
    run_set_str(&r->ref, spec->ref);
    run_set_str(&r->sha, spec->sha);
    run_set_str(&r->before, spec->before);
    run_set_str(&r->after, spec->after);
    run_set_str(&r->actor, spec->actor ? spec->actor : sys_user());
    run_set_str(&r->repository, spec->repository);
    r->push = copy_json(spec->push);
    r->inputs = copy_json(spec->inputs);
    run_set_str(&r->group, spec->group);
    r->cancel_in_progress = spec->group && spec->cancel_in_progress;
    copy_jobs(r, spec);
    r->status = PIPELINE_RUN_QUEUED;
    r->generation = 1;
    return r;
}

int pipeline_run_create(struct store *st, const struct pipeline_run *spec,
                        struct pipeline_run **out, struct sw_err *err)
{
    struct pipeline_run *r = run_from_spec(spec);
    char *doc = NULL, *key = NULL;
    int rc;
    if (spec->njobs > PIPELINE_RUN_MAX_JOBS) {
        rc = sw_err_set(err, SW_EINVAL, "a run has at most %d jobs", PIPELINE_RUN_MAX_JOBS);
        goto out;
    }
    if (id_new("run", r->id, sizeof(r->id))) {
        rc = sw_err_set(err, SW_EINVAL, "cannot make a run id");
        goto out;
    }
    r->created_ms = time_now_ms();
    if (r->group) {
        char *why = xasprintf("joining concurrency group %s", r->group);
        run_set_str(&r->reason, why);
        free(why);
    }
    /* Checked before anything is written, so a refused run leaves nothing. */
    if (!(doc = run_encode(r, err))) {
        rc = SW_EINVAL;
        goto out;
    }
    /* Markers first: a run.json without them would be invisible to runners
     * (never run) and to listings; markers without a run are skipped. */
    key = xasprintf("runs/index/%s", r->id);
    if ((rc = store_put(st, key, "", 0, STORE_IF_ABSENT, NULL, err)))
        goto out;
    free(key);
    key = active_key(r->id);
    if ((rc = store_put(st, key, "", 0, STORE_IF_ABSENT, NULL, err)))
        goto out;
    if ((rc = run_save(st, r, 1, err)))
        goto out;
    /* The run is queued now. Should joining its group fail (the store is
     * unreachable), the claim joins it later: nothing is lost by going on. */
    if (r->group)
        group_enter(st, r, NULL);
    /* wakes the runners waiting on this store (fs: at once; a hint only) */
    (void)store_notify(st, "runs", NULL);
    if (out) {
        char id[PIPELINE_RUN_ID_SIZE];
        memcpy(id, r->id, sizeof(id));
        pipeline_run_free(r);
        r = NULL;
        rc = pipeline_run_load(st, id, out, err);
    }
out:
    free(key);
    free(doc);
    pipeline_run_free(r);
    return rc;
}

/* ---- claim -------------------------------------------------------------------------------- */

static int recover_one(struct store *st, const char *id, int *done, struct sw_err *err);

static int claim_one(struct store *st, const char *id, const char *runner, int64_t lease_ms,
                     struct pipeline_run **out, struct sw_err *err)
{
    for (int round = 0; round < CAS_ROUNDS; round++) {
        struct pipeline_run *r = NULL;
        int rc = pipeline_run_load(st, id, &r, err);
        if (rc)
            return rc;
        if (pipeline_run_status_ended(r->status)) {
            after_end(st, r);
            rc = not_queued(r, err);
        } else if (is_parked(r) && !pipeline_run_parked_ready(r, time_now_ms())) {
            rc = sw_err_set(err, PIPELINE_EWAITING,
                            "run %s waits at its gates (parked): no gate is decided yet", r->id);
        } else if (r->status != PIPELINE_RUN_QUEUED && !is_parked(r)) {
            char why[128];
            if (holder_gone(r, time_now_ms(), why, sizeof(why)))
                recover_one(st, id, NULL, NULL);
            rc = not_queued(r, err);
        } else if (r->group && r->status == PIPELINE_RUN_QUEUED &&
                   (rc = group_admit(st, r, err)) == SW_ECONFLICT) {
            pipeline_run_free(r);
            continue;
        }
        if (rc) {
            pipeline_run_free(r);
            return rc;
        }
        int64_t now = time_now_ms();
        r->status = PIPELINE_RUN_RUNNING;
        /* a run resumed at its gates (apply_recover) started long ago */
        if (!r->started_ms)
            r->started_ms = now;
        r->waiting_for[0] = '\0';
        run_set_str(&r->reason, NULL);
        run_claim_clear(&r->claim);
        r->claim.runner = xstrdup(runner);
        r->claim.host = xstrdup(sys_host());
        r->claim.pid = getpid();
        r->claim.since_ms = now;
        r->claim.lease_ms = lease_ms;
        r->claim.expires_ms = now + lease_ms;
        r->generation++;
        rc = run_save(st, r, 0, err);
        if (rc == SW_ECONFLICT) {
            pipeline_run_free(r);
            backoff(round);
            continue;
        }
        if (rc)
            pipeline_run_free(r);
        else
            *out = r;
        return rc;
    }
    return sw_err_set(err, SW_ECONFLICT, "run %s: changed %d times in a row while claiming it", id,
                      CAS_ROUNDS);
}

static int claim_args(const char *runner, int64_t *lease_ms, struct sw_err *err)
{
    if (!pipeline_runner_id_valid(runner))
        return sw_err_set(err, SW_EINVAL,
                          "a runner id is 1 to 64 letters, digits, '.', '_' or '-', starting with "
                          "a letter or digit");
    if (*lease_ms == 0)
        *lease_ms = PIPELINE_RUN_LEASE_MS;
    if (*lease_ms < 1 || *lease_ms > RUN_LEASE_MAX_MS)
        return sw_err_set(err, SW_EINVAL, "a claim's lease is from 1 ms to 24 hours");
    if (!text_valid(sys_host(), 255, 0) || !sys_host()[0])
        return sw_err_set(err, SW_EINVAL,
                          "this host's name is not printable UTF-8 of at most 255 bytes");
    return 0;
}

int pipeline_run_claim(struct store *st, const char *id, const char *runner_id, int64_t lease_ms,
                       struct pipeline_run **out, struct sw_err *err)
{
    int rc = claim_args(runner_id, &lease_ms, err);
    if (rc)
        return rc;
    if (!pipeline_run_id_valid(id))
        return bad_run_id(id, err);
    return claim_one(st, id, runner_id, lease_ms, out, err);
}

/* ---- scans -------------------------------------------------------------------------------- */

/* Visits every run marked active, oldest first: finishes the bookkeeping of
 * ended runs, recovers runs whose holder is gone, drops markers of runs that
 * were never written; with runner set, claims the first queued run it can. */
static int scan(struct store *st, const char *runner, int64_t lease_ms, struct pipeline_run **out,
                size_t *recovered, struct sw_err *err)
{
    struct store_list l = {0};
    int rc = store_list_all(st, "runs/active/", &l, err);
    if (rc)
        return rc;
    rc = SW_ENOTFOUND;
    for (size_t i = 0; i < l.n; i++) {
        const char *id = l.keys[i] + strlen("runs/active/");
        struct pipeline_run *r = NULL;
        struct sw_err e = {0};
        if (!pipeline_run_id_valid(id))
            continue;
        int lrc = pipeline_run_load(st, id, &r, &e);
        if (lrc == SW_ENOTFOUND) {
            struct store_stat sb;
            if (!store_head(st, l.keys[i], &sb, 0, NULL) &&
                time_now_ms() - sb.mtime_ms > ORPHAN_MARKER_MS)
                store_delete(st, l.keys[i], NULL, NULL);
            continue;
        }
        if (lrc == SW_EINVAL)
            continue; /* refused: nothing of it is acted on */
        if (lrc) {
            rc = lrc;
            if (err)
                *err = e;
            break;
        }
        char why[128];
        int done = 0;
        if (pipeline_run_status_ended(r->status)) {
            after_end(st, r);
        } else if (holder_gone(r, time_now_ms(), why, sizeof(why))) {
            if (!recover_one(st, id, &done, &e) && done && recovered)
                (*recovered)++;
        } else if (runner && (r->status == PIPELINE_RUN_QUEUED ||
                              pipeline_run_parked_ready(r, time_now_ms()))) {
            int crc = claim_one(st, id, runner, lease_ms, out, &e);
            if (!crc) {
                pipeline_run_free(r);
                rc = 0;
                break;
            }
            if (crc != PIPELINE_ECLAIMED && crc != PIPELINE_EWAITING && crc != SW_ENOTFOUND &&
                crc != SW_EINVAL) {
                pipeline_run_free(r);
                rc = crc;
                if (err)
                    *err = e;
                break;
            }
        }
        pipeline_run_free(r);
    }
    store_list_free(&l);
    if (rc == SW_ENOTFOUND && runner)
        rc = sw_err_set(err, SW_ENOTFOUND, "no queued run to claim");
    else if (rc == SW_ENOTFOUND)
        rc = 0;
    return rc;
}

int pipeline_run_claim_next(struct store *st, const char *runner_id, int64_t lease_ms,
                            struct pipeline_run **out, struct sw_err *err)
{
    int rc = claim_args(runner_id, &lease_ms, err);
    if (rc)
        return rc;
    return scan(st, runner_id, lease_ms, out, NULL, err);
}

int pipeline_runs_recover(struct store *st, size_t *recovered, struct sw_err *err)
{
    size_t n = 0;
    int rc = scan(st, NULL, 0, NULL, &n, err);
    if (recovered)
        *recovered = n;
    return rc;
}

/* ---- the holder's operations --------------------------------------------------------------- */

struct owner_arg {
    const struct pipeline_run_claim *mine;
    pipeline_run_fn fn;
    void *arg;
    enum pipeline_conclusion conclusion;
    const char *reason;
};

static int owned(struct pipeline_run *r, const struct owner_arg *a, struct sw_err *err)
{
    if (!claim_is(&r->claim, a->mine) || pipeline_run_status_ended(r->status) ||
        r->status == PIPELINE_RUN_QUEUED)
        return lost(r, a->mine, err);
    return 0;
}

static int apply_heartbeat(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    const struct owner_arg *a = arg;
    int rc = owned(r, a, err);
    if (rc)
        return rc;
    r->claim.expires_ms = time_now_ms() + r->claim.lease_ms;
    return 0;
}

int pipeline_run_heartbeat(struct store *st, struct pipeline_run *r, struct sw_err *err)
{
    struct owner_arg a = {&r->claim, NULL, NULL, 0, NULL};
    struct pipeline_run *now = NULL;
    int rc = run_change(st, r->id, apply_heartbeat, &a, &now, err);
    if (!rc)
        run_replace(r, now);
    return rc;
}

static int apply_update(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    const struct owner_arg *a = arg;
    int rc = owned(r, a, err);
    if (rc)
        return rc;
    char id[PIPELINE_RUN_ID_SIZE];
    struct pipeline_run_claim c = r->claim;
    int64_t created = r->created_ms, started = r->started_ms;
    int cancel = r->cancel_requested;
    /* the jobs asked to stop by their concurrency group: a change may not
     * forget it (its runner has not seen it yet, perhaps) */
    size_t njobs = r->njobs;
    unsigned char *jc = xcalloc(njobs ? njobs : 1, 1);
    for (size_t i = 0; i < njobs; i++)
        jc[i] = (unsigned char)r->jobs[i].cancel_requested;
    memcpy(id, r->id, sizeof(id));
    c.runner = xstrdup(c.runner);
    c.host = xstrdup(c.host);
    rc = a->fn(r, a->arg, err);
    if (rc > 0)
        rc = sw_err_set(err, SW_EINVAL, "run %s: the change returned %d", id, rc);
    for (size_t i = 0; !rc && i < njobs; i++)
        if (jc[i] && (i >= r->njobs || !r->jobs[i].cancel_requested))
            rc = sw_err_set(err, SW_EINVAL,
                            "run %s: a change may not drop job %zu's cancel request", id, i);
    free(jc);
    if (!rc &&
        (strcmp(id, r->id) || !claim_is(&c, &r->claim) || r->claim.expires_ms != c.expires_ms ||
         r->claim.lease_ms != c.lease_ms || created != r->created_ms || started != r->started_ms ||
         (cancel && !r->cancel_requested)))
        rc = sw_err_set(err, SW_EINVAL,
                        "run %s: a change may not touch the id, the claim, the times or a "
                        "cancel request",
                        id);
    if (!rc && r->status != PIPELINE_RUN_RUNNING && r->status != PIPELINE_RUN_WAITING)
        rc = sw_err_set(err, SW_EINVAL,
                        "run %s: a change keeps the run running or waiting (it ends by "
                        "pipeline_run_finish)",
                        id);
    run_claim_clear(&c);
    return rc;
}

int pipeline_run_update(struct store *st, struct pipeline_run *r, pipeline_run_fn fn, void *arg,
                        struct sw_err *err)
{
    struct owner_arg a = {&r->claim, fn, arg, 0, NULL};
    struct pipeline_run *now = NULL;
    int rc = run_change(st, r->id, apply_update, &a, &now, err);
    if (!rc)
        run_replace(r, now);
    return rc;
}

static int apply_finish(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    const struct owner_arg *a = arg;
    int rc = owned(r, a, err);
    if (rc)
        return rc;
    r->status = a->conclusion == PIPELINE_CONCLUSION_SUCCESS   ? PIPELINE_RUN_SUCCEEDED
                : a->conclusion == PIPELINE_CONCLUSION_FAILURE ? PIPELINE_RUN_FAILED
                                                               : PIPELINE_RUN_CANCELLED;
    r->conclusion = a->conclusion;
    r->ended_ms = time_now_ms();
    if (a->reason)
        run_set_str(&r->reason, a->reason);
    return 0;
}

static int apply_park(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    const struct owner_arg *a = arg;
    int rc = owned(r, a, err);
    if (rc)
        return rc;
    if (r->status != PIPELINE_RUN_WAITING)
        return sw_err_set(err, SW_EINVAL, "run %s is %s, not waiting at its gates: not parked",
                          r->id, pipeline_run_status_name(r->status));
    for (size_t i = 0; i < r->njobs; i++)
        if (r->jobs[i].status == PIPELINE_JOB_RUNNING)
            return sw_err_set(err, SW_EINVAL, "run %s: job %s runs: not parked", r->id,
                              r->jobs[i].name);
    if (r->cancel_requested)
        return sw_err_set(err, PIPELINE_ECANCEL, "run %s: a cancel was asked: not parked", r->id);
    run_claim_clear(&r->claim);
    run_set_str(&r->reason, "waiting at its gates, parked: any runner resumes it once a gate is "
                            "decided");
    return 0;
}

int pipeline_run_park(struct store *st, struct pipeline_run *r, struct sw_err *err)
{
    struct owner_arg a = {&r->claim, NULL, NULL, 0, NULL};
    struct pipeline_run *now = NULL;
    int rc = run_change(st, r->id, apply_park, &a, &now, err);
    if (!rc)
        run_replace(r, now);
    return rc;
}

int pipeline_run_finish(struct store *st, struct pipeline_run *r, enum pipeline_conclusion c,
                        const char *reason, struct sw_err *err)
{
    if (c != PIPELINE_CONCLUSION_SUCCESS && c != PIPELINE_CONCLUSION_FAILURE &&
        c != PIPELINE_CONCLUSION_CANCELLED)
        return sw_err_set(err, SW_EINVAL, "a run ends in success, failure or cancelled");
    struct owner_arg a = {&r->claim, NULL, NULL, c, reason};
    struct pipeline_run *now = NULL;
    int rc = run_change(st, r->id, apply_finish, &a, &now, err);
    if (rc)
        return rc;
    after_end(st, now);
    run_replace(r, now);
    return 0;
}

/* ---- cancel and recovery ----------------------------------------------------------------------
 */

int pipeline_run_cancel(struct store *st, const char *id, const char *actor,
                        struct pipeline_run **out, struct sw_err *err)
{
    if (!pipeline_run_id_valid(id))
        return bad_run_id(id, err);
    const char *who = actor ? actor : sys_user();
    if (!text_valid(who, RUN_ACTOR_MAX, 0))
        return sw_err_set(err, SW_EINVAL,
                          "the actor name must be printable UTF-8 of at most 256 bytes");
    char *why = xasprintf("cancelled by %s", who);
    struct cancel_arg a = {who, why, 0, 0, 0};
    struct pipeline_run *r = NULL;
    int rc = run_change(st, id, apply_cancel, &a, &r, err);
    free(why);
    if (rc)
        return rc;
    if (pipeline_run_status_ended(r->status))
        after_end(st, r);
    if (out)
        *out = r;
    else
        pipeline_run_free(r);
    return 0;
}

struct recover_arg {
    int done;
};

/* A run its runner left at its gates only: status waiting (the runner says
 * so while nothing else runs), no job running, at least one waiting. */
static int resumable(const struct pipeline_run *r)
{
    int waiting = 0;
    if (r->status != PIPELINE_RUN_WAITING)
        return 0;
    for (size_t i = 0; i < r->njobs; i++) {
        if (r->jobs[i].status == PIPELINE_JOB_RUNNING)
            return 0;
        waiting |= r->jobs[i].status == PIPELINE_JOB_WAITING && r->jobs[i].gate;
    }
    return waiting;
}

static int apply_recover(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    struct recover_arg *a = arg;
    char why[128];
    int64_t now = time_now_ms();
    a->done = 0;
    /* Checked again on the fresh copy: a heartbeat may have come meanwhile. */
    if (!holder_gone(r, now, why, sizeof(why)))
        return RUN_KEEP;
    int cancel = r->cancel_requested;
    if (!cancel && resumable(r)) {
        /* Nothing of it was running: every job that had begun waits at a
         * gate, whose start and decisions are in the record. Parked as its
         * runner would have parked it, the next runner to claim it (once a
         * gate would be decided) takes the finished jobs' results from the
         * record and waits at the same gates (runner_sched.c, legs_add). */
        char *again = xasprintf("waiting at its gates, parked: runner %s on %s stopped while the "
                                "run waited (%s)",
                                r->claim.runner, r->claim.host, why);
        run_claim_clear(&r->claim);
        run_set_str(&r->reason, again);
        free(again);
        a->done = 1;
        return 0;
    }
    char *reason = xasprintf("runner %s on %s stopped while the run was running (%s)",
                             r->claim.runner, r->claim.host, why);
    r->status = cancel ? PIPELINE_RUN_CANCELLED : PIPELINE_RUN_FAILED;
    r->conclusion = cancel ? PIPELINE_CONCLUSION_CANCELLED : PIPELINE_CONCLUSION_FAILURE;
    r->ended_ms = now;
    run_set_str(&r->reason, reason);
    free(reason);
    /* Its jobs stop with it: those that were running failed with it, those
     * that had not started never will. */
    for (size_t i = 0; i < r->njobs; i++) {
        struct pipeline_run_job *j = &r->jobs[i];
        if (j->status == PIPELINE_JOB_COMPLETED)
            continue;
        j->conclusion = j->status == PIPELINE_JOB_QUEUED ? PIPELINE_CONCLUSION_SKIPPED
                        : cancel                         ? PIPELINE_CONCLUSION_CANCELLED
                                                         : PIPELINE_CONCLUSION_FAILURE;
        j->status = PIPELINE_JOB_COMPLETED;
        j->ended_ms = now;
    }
    a->done = 1;
    return 0;
}

/* ---- approvals ------------------------------------------------------------------------------ */

struct approve_arg {
    const struct pipeline_approve *q;
    size_t job;
};

static int apply_approve(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    struct approve_arg *a = arg;
    int rc = pipeline_gate_approve_check(r, a->q, &a->job, err);
    if (rc)
        return rc;
    struct pipeline_gate *g = r->jobs[a->job].gate;
    g->decisions = xrealloc(g->decisions, (g->ndecisions + 1) * sizeof(*g->decisions));
    struct pipeline_gate_decision *d = &g->decisions[g->ndecisions++];
    memset(d, 0, sizeof(*d));
    d->by = xstrdup(a->q->as ? a->q->as : a->q->os_user);
    d->os_user = a->q->os_user ? xstrdup(a->q->os_user) : NULL;
    d->reject = a->q->reject;
    d->comment = a->q->comment && *a->q->comment ? xstrdup(a->q->comment) : NULL;
    d->at_ms = a->q->at_ms;
    return 0;
}

int pipeline_run_approve(struct store *st, const struct pipeline_approve *q,
                         struct pipeline_run **out, size_t *job, struct sw_err *err)
{
    if (!pipeline_run_id_valid(q->run_id))
        return bad_run_id(q->run_id, err);
    struct pipeline_approve when = *q;
    if (!when.at_ms)
        when.at_ms = time_now_ms();
    struct approve_arg a = {&when, 0};
    int rc = run_change(st, q->run_id, apply_approve, &a, out, err);
    if (!rc && job)
        *job = a.job;
    return rc;
}

static int recover_one(struct store *st, const char *id, int *done, struct sw_err *err)
{
    struct recover_arg a = {0};
    struct pipeline_run *r = NULL;
    int rc = run_change(st, id, apply_recover, &a, &r, err);
    if (!rc && pipeline_run_status_ended(r->status))
        after_end(st, r);
    pipeline_run_free(r);
    if (done)
        *done = !rc && a.done;
    return rc;
}

/* ---- list --------------------------------------------------------------------------------- */

static int workflow_matches(const struct pipeline_run *r, const char *w)
{
    if (r->workflow && !strcmp(r->workflow, w))
        return 1;
    if (!r->workflow_file)
        return 0;
    if (!strcmp(r->workflow_file, w))
        return 1;
    const char *base = strrchr(r->workflow_file, '/');
    base = base ? base + 1 : r->workflow_file;
    if (!strcmp(base, w))
        return 1;
    size_t n = strlen(w);
    return !strncmp(base, w, n) && (!strcmp(base + n, ".yml") || !strcmp(base + n, ".yaml"));
}

int pipeline_run_list(struct store *st, const struct pipeline_run_filter *f,
                      struct pipeline_run_list *out, struct sw_err *err)
{
    struct store_list l = {0};
    size_t limit = f && f->limit ? f->limit : 20, scanned = 0;
    if (limit > LIST_LIMIT_MAX)
        limit = LIST_LIMIT_MAX;
    memset(out, 0, sizeof(*out));
    int rc = store_list_all(st, "runs/index/", &l, err);
    if (rc)
        return rc;
    out->runs = xcalloc(limit, sizeof(*out->runs));
    /* Ids sort by creation time: the newest are at the end. */
    for (size_t i = l.n; i-- > 0;) {
        const char *id = l.keys[i] + strlen("runs/index/");
        struct pipeline_run *r = NULL;
        if (!pipeline_run_id_valid(id))
            continue;
        if (out->n == limit || scanned == LIST_SCAN_MAX) {
            out->truncated = 1;
            break;
        }
        scanned++;
        rc = pipeline_run_load(st, id, &r, err);
        if (rc == SW_ENOTFOUND) {
            rc = 0; /* a creation cut short */
            continue;
        }
        if (rc == SW_EINVAL) {
            out->unreadable++;
            rc = 0;
            continue;
        }
        if (rc)
            break;
        if (f && f->workflow && !workflow_matches(r, f->workflow))
            pipeline_run_free(r);
        else
            out->runs[out->n++] = r;
    }
    store_list_free(&l);
    if (rc)
        pipeline_run_list_free(out);
    return rc;
}

void pipeline_run_list_free(struct pipeline_run_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        pipeline_run_free(l->runs[i]);
    free(l->runs);
    memset(l, 0, sizeof(*l));
}
