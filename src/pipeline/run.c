/*
 * The run record: runs/<run-id>/run.json, its parser, its writer and the
 * JSON views the CLI prints.
 *
 * The one idea: a run document is someone else's text. Any writer of a shared
 * bucket may have put it there, and the runner, the CLI and the dashboard all
 * act on it, so it is read field by field with a bound on everything (size,
 * counts, lengths, depth), statuses from a closed list and the invariants
 * every writer keeps (a running run has a claim, an ended one a matching
 * conclusion); one bad field refuses the document whole. What slipway writes
 * is checked by the same parser before it is written (queue.c), so a record
 * that readers would refuse never reaches the store, and the writer below is
 * a fixed point of the parser: what it writes for an accepted record reads
 * back the same.
 */
#include "pipeline/run_internal.h"
#include "release/release.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {"queued",    "running", "waiting",
                                           "succeeded", "failed",  "cancelled"};
static const char *const conclusion_names[] = {NULL, "success", "failure", "cancelled", "skipped"};
static const char *const job_status_names[] = {"queued", "running", "waiting", "completed"};

#define COUNT(a) (sizeof(a) / sizeof(*(a)))

const char *pipeline_run_status_name(enum pipeline_run_status s)
{
    return (unsigned)s < COUNT(status_names) ? status_names[s] : "?";
}

int pipeline_run_status_ended(enum pipeline_run_status s)
{
    return s == PIPELINE_RUN_SUCCEEDED || s == PIPELINE_RUN_FAILED || s == PIPELINE_RUN_CANCELLED;
}

const char *pipeline_conclusion_name(enum pipeline_conclusion c)
{
    return (unsigned)c < COUNT(conclusion_names) ? conclusion_names[c] : NULL;
}

const char *pipeline_job_status_name(enum pipeline_job_status s)
{
    return (unsigned)s < COUNT(job_status_names) ? job_status_names[s] : "?";
}

/* ---- checks of single values -------------------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int pipeline_run_id_valid(const char *id)
{
    /* run-YYYYMMDD-HHMMSS-mmm-xxxxxx, exactly as id_new writes it: the id
     * becomes a key, so nothing looser is worth accepting. */
    static const char shape[] = "run-DDDDDDDD-DDDDDD-DDD-XXXXXX";
    if (!id || strlen(id) != sizeof(shape) - 1)
        return 0;
    for (size_t i = 0; shape[i]; i++) {
        char c = id[i];
        if (shape[i] == 'D'   ? !is_digit(c)
            : shape[i] == 'X' ? !(is_digit(c) || (c >= 'a' && c <= 'f'))
                              : c != shape[i])
            return 0;
    }
    return 1;
}

int pipeline_runner_id_valid(const char *id)
{
    size_t n = 0;
    if (!id || !is_alnum(id[0]))
        return 0;
    for (; id[n]; n++)
        if (!is_alnum(id[n]) && id[n] != '.' && id[n] != '_' && id[n] != '-')
            return 0;
    return n <= 64;
}

/* A GitHub identifier (job ids, input and output names): a letter or '_',
 * then letters, digits, '_' and '-'; at most max bytes. */
int run_name_valid(const char *s, size_t max)
{
    size_t n = 0;
    if (!s || !(s[0] == '_' || (is_alnum(s[0]) && !is_digit(s[0]))))
        return 0;
    for (; s[n]; n++)
        if (!is_alnum(s[n]) && s[n] != '_' && s[n] != '-')
            return 0;
    return n <= max;
}

static int event_valid(const char *s)
{
    size_t n = 0;
    if (!(s[0] >= 'a' && s[0] <= 'z'))
        return 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || is_digit(s[n]) || s[n] == '_'))
            return 0;
    return n <= 64;
}

static int hex_sha_valid(const char *s)
{
    return hex_lower_valid(s, 40) || hex_lower_valid(s, 64);
}

/* A data value (an input, a matrix value, an output): any JSON up to depth
 * levels of nesting and *budget bytes of strings and elements, strings being
 * UTF-8 without NUL (jansson refuses invalid UTF-8 and \u0000 already; the
 * length check keeps that true whatever the flags). Data is printed escaped
 * by whoever prints it, so line breaks and control characters are allowed. */
static int data_valid(json_t *v, int depth, size_t *budget)
{
    size_t cost = 1;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        cost = json_string_length(v) + 1;
        if (strlen(s) != json_string_length(v) || !utf8_valid(s, 0))
            return 0;
    } else if (json_is_array(v) || json_is_object(v)) {
        if (depth <= 0)
            return 0;
    }
    if (cost > *budget)
        return 0;
    *budget -= cost;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) if (!data_valid(e, depth - 1, budget)) return 0;
    } else if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e)
        {
            size_t kl = strlen(k) + 1;
            if (kl > *budget || !utf8_valid(k, 0))
                return 0;
            *budget -= kl;
            if (!data_valid(e, depth - 1, budget))
                return 0;
        }
    }
    return 1;
}

#define INPUTS_MAX 100
#define INPUT_VALUE_MAX (64u << 10)
#define MATRIX_MAX (64u << 10)
#define OUTPUTS_MAX_KEYS 1000
#define NAME_MAX_LEN 100

/* The dispatch inputs: {name: string | boolean | number}. */
static int inputs_valid(json_t *o)
{
    const char *k;
    json_t *v;
    if (!json_is_object(o) || json_object_size(o) > INPUTS_MAX)
        return 0;
    json_object_foreach(o, k, v)
    {
        size_t budget = INPUT_VALUE_MAX;
        if (!run_name_valid(k, NAME_MAX_LEN) ||
            !(json_is_string(v) || json_is_boolean(v) || json_is_number(v)) ||
            !data_valid(v, 0, &budget))
            return 0;
    }
    return 1;
}

/* A leg's matrix values: {key: any data}, bounded together. */
static int matrix_valid(json_t *o)
{
    const char *k;
    json_t *v;
    size_t budget = MATRIX_MAX;
    if (!json_is_object(o))
        return 0;
    json_object_foreach(o, k, v) if (!text_valid(k, 256, 0) || !*k) return 0;
    return data_valid(o, 8, &budget);
}

/* A job's outputs: {name: string}, PIPELINE_RUN_OUTPUTS_MAX bytes together. */
static int outputs_valid(json_t *o)
{
    const char *k;
    json_t *v;
    size_t budget = PIPELINE_RUN_OUTPUTS_MAX;
    if (!json_is_object(o) || json_object_size(o) > OUTPUTS_MAX_KEYS)
        return 0;
    json_object_foreach(o, k,
                        v) if (!run_name_valid(k, NAME_MAX_LEN) || !json_is_string(v)) return 0;
    return data_valid(o, 1, &budget);
}

#define PUSH_MAX (256u << 10)

/* The push event's extra fields (pipeline_run.push): known keys of the
 * right types, data bounded together. */
static int push_valid(json_t *o)
{
    const char *k;
    json_t *v;
    size_t budget = PUSH_MAX;
    if (!json_is_object(o))
        return 0;
    json_object_foreach(o, k, v)
    {
        if (!strcmp(k, "pusher")) {
            const char *pk;
            json_t *pv;
            if (!json_is_object(v))
                return 0;
            json_object_foreach(v, pk, pv) if ((strcmp(pk, "name") && strcmp(pk, "email")) ||
                                               !json_is_string(pv)) return 0;
        } else if (!strcmp(k, "commits")) {
            size_t i;
            json_t *c;
            if (!json_is_array(v) || json_array_size(v) > PIPELINE_PUSH_MAX_COMMITS)
                return 0;
            json_array_foreach(v, i, c) if (!json_is_object(c)) return 0;
        } else if (!strcmp(k, "head_commit")) {
            if (!json_is_object(v) && !json_is_null(v))
                return 0;
        } else if (!strcmp(k, "created") || !strcmp(k, "forced")) {
            if (!json_is_boolean(v))
                return 0;
        } else
            return 0;
    }
    return data_valid(o, 4, &budget);
}

int pipeline_run_repository_valid(const char *path)
{
    if (!path || path[0] != '/' || !text_valid(path, PIPELINE_RUN_REPOSITORY_MAX, 0))
        return 0;
    if (!path[1])
        return 1; /* "/" */
    for (const char *c = path + 1;;) {
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return 0; /* also a trailing '/' */
        if (!c[n])
            return 1;
        c += n + 1;
    }
}

/* ---- the record in memory ------------------------------------------------------------- */

static void job_clear(struct pipeline_run_job *j)
{
    free(j->id);
    free(j->name);
    json_decref(j->matrix);
    json_decref(j->outputs);
    for (size_t i = 0; i < j->nsteps; i++)
        free(j->steps[i].name);
    free(j->steps);
    free(j->environment_name);
    free(j->environment_url);
    free(j->reason);
    pipeline_gate_free(j->gate);
    memset(j, 0, sizeof(*j));
}

void run_claim_clear(struct pipeline_run_claim *c)
{
    free(c->runner);
    free(c->host);
    memset(c, 0, sizeof(*c));
}

void pipeline_run_free(struct pipeline_run *r)
{
    if (!r)
        return;
    free(r->workflow);
    free(r->workflow_file);
    free(r->event);
    free(r->ref);
    free(r->sha);
    free(r->before);
    free(r->after);
    free(r->actor);
    free(r->repository);
    json_decref(r->push);
    free(r->display_title);
    json_decref(r->inputs);
    free(r->reason);
    run_claim_clear(&r->claim);
    free(r->group);
    free(r->cancelled_by);
    for (size_t i = 0; i < r->njobs; i++)
        job_clear(&r->jobs[i]);
    free(r->jobs);
    free(r);
}

struct pipeline_run_job *pipeline_run_job_add(struct pipeline_run *r)
{
    if (r->njobs >= PIPELINE_RUN_MAX_JOBS)
        return NULL;
    r->jobs = xrealloc(r->jobs, (r->njobs + 1) * sizeof(*r->jobs));
    struct pipeline_run_job *j = &r->jobs[r->njobs++];
    memset(j, 0, sizeof(*j));
    return j;
}

struct pipeline_run_step *pipeline_run_step_add(struct pipeline_run_job *j, const char *name)
{
    if (j->nsteps >= PIPELINE_RUN_MAX_STEPS)
        return NULL;
    j->steps = xrealloc(j->steps, (j->nsteps + 1) * sizeof(*j->steps));
    struct pipeline_run_step *s = &j->steps[j->nsteps++];
    memset(s, 0, sizeof(*s));
    s->name = xstrdup(name ? name : "");
    return s;
}

void run_set_str(char **dst, const char *s)
{
    char *copy = s ? xstrdup(s) : NULL;
    free(*dst);
    *dst = copy;
}

/* ---- parsing ---------------------------------------------------------------------------- */

/* An enumerated string field: the index of its name in names, absent_value
 * when absent; a name outside the list is counted in f. */
static int enum_field(struct json_fields *f, json_t *o, const char *k, const char *const *names,
                      size_t n, int absent_value, unsigned flags)
{
    json_t *v = json_field(o, k);
    const char *s = json_string_value(v);
    if (!v) {
        if (flags & JSON_FIELD_REQUIRED)
            json_field_bad(f, k, "missing");
        return absent_value;
    }
    for (size_t i = 0; s && i < n; i++)
        if (names[i] && !strcmp(s, names[i]))
            return (int)i;
    json_field_bad(f, k, "not one of the allowed values");
    return absent_value;
}

static int conclusion_field(struct json_fields *f, json_t *o, const char *k)
{
    return enum_field(f, o, k, conclusion_names, COUNT(conclusion_names), PIPELINE_CONCLUSION_NONE,
                      0);
}

/* An optional string field that must pass ok() besides being a line. */
static char *checked_str(struct json_fields *f, json_t *o, const char *k, size_t max,
                         int (*ok)(const char *), const char *why)
{
    char *s = json_field_str(f, o, k, max, 0);
    if (s && ok && !ok(s)) {
        json_field_bad(f, k, why);
        free(s);
        return NULL;
    }
    return s;
}

/* A data field that must pass ok(): a new reference, or NULL. */
static json_t *data_field(struct json_fields *f, json_t *o, const char *k, int (*ok)(json_t *),
                          const char *why)
{
    json_t *v = json_field(o, k);
    if (!v)
        return NULL;
    if (!ok(v)) {
        json_field_bad(f, k, why);
        return NULL;
    }
    return json_incref(v);
}

static int line_nonempty(const char *s)
{
    return s[0] != '\0';
}

static int64_t gen_max(void)
{
    return (int64_t)1 << 50;
}

static void claim_parse(struct json_fields *f, json_t *c, struct pipeline_run_claim *out)
{
    if (!json_is_object(c)) {
        json_field_bad(f, "claimed_by", "not an object");
        return;
    }
    out->runner = checked_str(f, c, "runner", 64, pipeline_runner_id_valid, "not a runner id");
    if (!out->runner)
        json_field_bad(f, "runner", "missing");
    out->host = checked_str(f, c, "host", 255, line_nonempty, "empty");
    if (!out->host)
        json_field_bad(f, "host", "missing");
    out->pid = json_field_int(f, c, "pid", 1, INT32_MAX, JSON_FIELD_REQUIRED);
    out->since_ms = json_field_time(f, c, "since", JSON_FIELD_REQUIRED);
    out->lease_ms = json_field_int(f, c, "lease_ms", 1, RUN_LEASE_MAX_MS, JSON_FIELD_REQUIRED);
    out->expires_ms = json_field_time(f, c, "expires", JSON_FIELD_REQUIRED);
}

static void step_parse(struct json_fields *f, json_t *s, struct pipeline_run_step *out)
{
    if (!json_is_object(s)) {
        json_field_bad(f, "steps", "an entry is not an object");
        return;
    }
    out->name = json_field_str(f, s, "name", RUN_TEXT_MAX, JSON_FIELD_REQUIRED);
    out->outcome = conclusion_field(f, s, "outcome");
    out->conclusion = conclusion_field(f, s, "conclusion");
}

static int approver_name(const char *s)
{
    return s[0] && !strpbrk(s, " ,\t");
}

static const char *const gate_state_names[] = {"waiting", "approved", "rejected", "timed_out"};

/* A job's gate: what the runner required and every decision recorded. */
static struct pipeline_gate *gate_parse(struct json_fields *f, json_t *o)
{
    if (!json_is_object(o)) {
        json_field_bad(f, "gate", "not an object");
        return NULL;
    }
    struct pipeline_gate *g = xcalloc(1, sizeof(*g));
    g->environment = checked_str(f, o, "environment", RUN_TEXT_MAX, line_nonempty, "empty");
    if (!g->environment)
        json_field_bad(f, "environment", "missing");
    g->required =
        (int)json_field_int(f, o, "required", 1, PIPELINE_GATE_APPROVERS_MAX, JSON_FIELD_REQUIRED);
    g->allow_self_approval = json_field_bool(f, o, "allow_self_approval", 0) == 1;
    g->timeout_ms =
        json_field_int(f, o, "timeout_ms", 1, RUN_GATE_TIMEOUT_MAX_MS, JSON_FIELD_REQUIRED);
    g->waiting_since_ms = json_field_time(f, o, "waiting_since", JSON_FIELD_REQUIRED);
    g->state = enum_field(f, o, "state", gate_state_names, COUNT(gate_state_names),
                          PIPELINE_GATE_WAITING, JSON_FIELD_REQUIRED);
    g->decided_ms = json_field_time(f, o, "decided_at", 0);
    if ((g->state == PIPELINE_GATE_WAITING) != (g->decided_ms == 0))
        json_field_bad(f, "decided_at", "set when and only when the gate is decided");
    json_t *a = json_field(o, "approvers");
    if (!json_is_array(a) || json_array_size(a) == 0 ||
        json_array_size(a) > PIPELINE_GATE_APPROVERS_MAX) {
        json_field_bad(f, "approvers", "not a list of 1 to 100 names");
        return g;
    }
    g->approvers = xcalloc(json_array_size(a), sizeof(*g->approvers));
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s || !text_valid(s, RUN_ACTOR_MAX, 0) || !approver_name(s)) {
            json_field_bad(f, "approvers", "an entry is not a name");
            return g;
        }
        g->approvers[g->napprovers++] = xstrdup(s);
    }
    json_t *d = json_field(o, "decisions");
    if (d && (!json_is_array(d) || json_array_size(d) > PIPELINE_GATE_DECISIONS_MAX)) {
        json_field_bad(f, "decisions", "not a list of at most 100 decisions");
        return g;
    }
    size_t n = json_array_size(d);
    g->decisions = n ? xcalloc(n, sizeof(*g->decisions)) : NULL;
    for (size_t i = 0; i < n && !f->bad; i++) {
        json_t *x = json_array_get(d, i);
        struct pipeline_gate_decision *e = &g->decisions[g->ndecisions++];
        if (!json_is_object(x)) {
            json_field_bad(f, "decisions", "an entry is not an object");
            break;
        }
        e->by = checked_str(f, x, "by", RUN_ACTOR_MAX, approver_name, "not a name");
        if (!e->by)
            json_field_bad(f, "by", "missing");
        e->os_user = json_field_str(f, x, "os_user", RUN_ACTOR_MAX, 0);
        static const char *const decisions[] = {"approved", "rejected"};
        e->reject = enum_field(f, x, "decision", decisions, 2, 0, JSON_FIELD_REQUIRED);
        e->at_ms = json_field_time(f, x, "at", JSON_FIELD_REQUIRED);
        e->comment = json_field_str(f, x, "comment", RUN_REASON_MAX, 0);
    }
    return g;
}

static void job_parse(struct json_fields *f, json_t *j, struct pipeline_run_job *out)
{
    if (!json_is_object(j)) {
        json_field_bad(f, "jobs", "an entry is not an object");
        return;
    }
    out->id = json_field_str(f, j, "id", NAME_MAX_LEN, JSON_FIELD_REQUIRED);
    if (out->id && !run_name_valid(out->id, NAME_MAX_LEN))
        json_field_bad(f, "id", "not a job id");
    out->name = json_field_str(f, j, "name", RUN_TEXT_MAX, JSON_FIELD_REQUIRED);
    out->matrix =
        data_field(f, j, "matrix", matrix_valid, "not matrix values (an object, bounded)");
    out->status = enum_field(f, j, "status", job_status_names, COUNT(job_status_names),
                             PIPELINE_JOB_QUEUED, JSON_FIELD_REQUIRED);
    out->conclusion = conclusion_field(f, j, "conclusion");
    out->started_ms = json_field_time(f, j, "started_at", 0);
    out->ended_ms = json_field_time(f, j, "ended_at", 0);
    out->outputs =
        data_field(f, j, "outputs", outputs_valid, "not outputs (names to strings, at most 1 MiB)");
    if ((out->status == PIPELINE_JOB_COMPLETED) != (out->conclusion != PIPELINE_CONCLUSION_NONE))
        json_field_bad(f, "conclusion", "set when and only when the job is completed");
    json_t *env = json_field(j, "environment");
    if (env && !json_is_null(env)) {
        if (!json_is_object(env)) {
            json_field_bad(f, "environment", "not an object {name, url}");
        } else {
            out->environment_name =
                checked_str(f, env, "name", RUN_TEXT_MAX, line_nonempty, "empty");
            if (!out->environment_name)
                json_field_bad(f, "environment", "without a name");
            out->environment_url = json_field_str(f, env, "url", RUN_REASON_MAX, 0);
        }
    }
    out->cancel_requested = json_field_bool(f, j, "cancel_requested", 0) == 1;
    out->reason = json_field_str(f, j, "reason", RUN_REASON_MAX, 0);
    json_t *gate = json_field(j, "gate");
    if (gate)
        out->gate = gate_parse(f, gate);
    if (out->status == PIPELINE_JOB_WAITING && !out->gate)
        json_field_bad(f, "status", "a job waits only at a gate");
    json_t *steps = json_field(j, "steps");
    if (steps && (!json_is_array(steps) || json_array_size(steps) > PIPELINE_RUN_MAX_STEPS)) {
        json_field_bad(f, "steps", "not an array of at most 1000 steps");
        return;
    }
    size_t n = json_array_size(steps);
    out->steps = n ? xcalloc(n, sizeof(*out->steps)) : NULL;
    for (size_t i = 0; i < n && !f->bad; i++) {
        step_parse(f, json_array_get(steps, i), &out->steps[i]);
        out->nsteps = i + 1;
    }
}

/* The invariants every writer keeps; a document breaking one was not written
 * by slipway. */
static const char *run_check(const struct pipeline_run *r)
{
    int ended = pipeline_run_status_ended(r->status);
    static const enum pipeline_conclusion want[] = {
        [PIPELINE_RUN_SUCCEEDED] = PIPELINE_CONCLUSION_SUCCESS,
        [PIPELINE_RUN_FAILED] = PIPELINE_CONCLUSION_FAILURE,
        [PIPELINE_RUN_CANCELLED] = PIPELINE_CONCLUSION_CANCELLED,
    };
    if (ended) {
        if (r->conclusion != want[r->status])
            return "the conclusion does not match the status";
        if (!r->ended_ms)
            return "an ended run needs ended_at";
    } else {
        if (r->conclusion != PIPELINE_CONCLUSION_NONE || r->ended_ms)
            return "a run that has not ended has a conclusion or ended_at";
    }
    if (r->status == PIPELINE_RUN_QUEUED && r->claim.runner)
        return "a queued run is claimed";
    if (r->status == PIPELINE_RUN_RUNNING && (!r->claim.runner || !r->started_ms))
        return "a running run needs claimed_by and started_at";
    /* waiting without a claim: parked at its gates (queue.c) */
    if (r->status == PIPELINE_RUN_WAITING && !r->started_ms)
        return "a waiting run needs started_at";
    if (r->waiting_for[0] && (r->status != PIPELINE_RUN_QUEUED || !r->group))
        return "waiting_for is set on a run that is not queued in a concurrency group";
    if (r->waiting_for[0] && !strcmp(r->waiting_for, r->id))
        return "the run waits for itself";
    return NULL;
}

int pipeline_run_parse(const char *key, const char *data, size_t len, struct pipeline_run **out,
                       struct sw_err *err)
{
    json_t *root = NULL;
    const char *why = NULL;
    struct pipeline_run *r = xcalloc(1, sizeof(*r));
    struct json_fields jf = JSON_FIELDS_INIT(key);
    int rc;
    if (len > PIPELINE_RUN_DOC_MAX) {
        rc = sw_err_set(err, SW_EINVAL, "%s: larger than %u MiB", key, PIPELINE_RUN_DOC_MAX >> 20);
        goto out;
    }
    if ((rc = json_doc_parse(key, data, len, &root, err)))
        goto out;
    if (!json_is_object(root)) {
        why = "not a run document";
        goto check;
    }
    json_t *fmt = json_field(root, "format");
    if (fmt && !(json_is_integer(fmt) && json_integer_value(fmt) == 1)) {
        why = "format is not 1";
        goto check;
    }
    const char *id = json_string_value(json_object_get(root, "id"));
    if (!id || !pipeline_run_id_valid(id)) {
        why = "id is not a run id";
        goto check;
    }
    /* The key names the run: a document copied under another run's key is
     * not that run. */
    char want[STORE_KEY_MAX + 1];
    snprintf(want, sizeof(want), "runs/%s/run.json", id);
    if (str_starts_with(key, "runs/") && strcmp(key, want) != 0) {
        why = "the id inside is not the id of its key";
        goto check;
    }
    memcpy(r->id, id, PIPELINE_RUN_ID_SIZE);
    r->generation = json_field_int(&jf, root, "generation", 1, gen_max(), JSON_FIELD_REQUIRED);
    r->workflow = json_field_str(&jf, root, "workflow", RUN_TEXT_MAX, JSON_FIELD_REQUIRED);
    r->display_title = json_field_str(&jf, root, "display_title", RUN_TEXT_MAX, 0);
    r->workflow_file = checked_str(&jf, root, "workflow_file", RELEASE_PATH_MAX, release_path_valid,
                                   "not a relative path in the repository");
    r->event = checked_str(&jf, root, "event", 64, event_valid, "not an event name");
    if (!r->event)
        json_field_bad(&jf, "event", "missing");
    r->ref = json_field_str(&jf, root, "ref", RUN_TEXT_MAX, 0);
    r->sha = checked_str(&jf, root, "sha", 64, hex_sha_valid, "not a commit hash");
    r->before = checked_str(&jf, root, "before", 64, hex_sha_valid, "not a commit hash");
    r->after = checked_str(&jf, root, "after", 64, hex_sha_valid, "not a commit hash");
    r->actor = json_field_str(&jf, root, "actor", RUN_ACTOR_MAX, 0);
    r->repository =
        checked_str(&jf, root, "repository", PIPELINE_RUN_REPOSITORY_MAX,
                    pipeline_run_repository_valid, "not an absolute path in normal form");
    r->push = data_field(&jf, root, "push", push_valid,
                         "not a push's pusher, commits (at most 20), head_commit, created and "
                         "forced, at most 256 KiB");
    r->inputs = data_field(&jf, root, "inputs", inputs_valid,
                           "not inputs (at most 100 names to strings, booleans or numbers)");
    r->status = enum_field(&jf, root, "status", status_names, COUNT(status_names),
                           PIPELINE_RUN_QUEUED, JSON_FIELD_REQUIRED);
    r->conclusion = conclusion_field(&jf, root, "conclusion");
    if (r->conclusion == PIPELINE_CONCLUSION_SKIPPED)
        json_field_bad(&jf, "conclusion", "a run is not skipped");
    r->reason = json_field_str(&jf, root, "reason", RUN_REASON_MAX, 0);
    r->created_ms = json_field_time(&jf, root, "created_at", JSON_FIELD_REQUIRED);
    r->started_ms = json_field_time(&jf, root, "started_at", 0);
    r->ended_ms = json_field_time(&jf, root, "ended_at", 0);
    json_t *claim = json_field(root, "claimed_by");
    if (claim)
        claim_parse(&jf, claim, &r->claim);
    json_t *conc = json_field(root, "concurrency");
    if (conc && !json_is_object(conc))
        json_field_bad(&jf, "concurrency", "not an object");
    if (conc) {
        r->group = checked_str(&jf, conc, "group", RUN_TEXT_MAX, line_nonempty, "empty");
        if (!r->group)
            json_field_bad(&jf, "group", "missing");
        r->cancel_in_progress = json_field_bool(&jf, conc, "cancel_in_progress", 0) == 1;
    }
    char *wf = checked_str(&jf, root, "waiting_for", 64, pipeline_run_id_valid, "not a run id");
    if (wf)
        memcpy(r->waiting_for, wf, PIPELINE_RUN_ID_SIZE);
    free(wf);
    r->cancel_requested = json_field_bool(&jf, root, "cancel_requested", 0) == 1;
    r->cancelled_by = json_field_str(&jf, root, "cancelled_by", RUN_ACTOR_MAX, 0);
    json_t *jobs = json_field(root, "jobs");
    if (!jobs || !json_is_array(jobs) || json_array_size(jobs) > PIPELINE_RUN_MAX_JOBS) {
        json_field_bad(&jf, "jobs", "not an array of at most 1024 jobs");
    } else if (json_array_size(jobs)) {
        size_t n = json_array_size(jobs);
        r->jobs = xcalloc(n, sizeof(*r->jobs));
        for (size_t i = 0; i < n && !jf.bad; i++) {
            job_parse(&jf, json_array_get(jobs, i), &r->jobs[i]);
            r->njobs = i + 1;
        }
    }
    if (!jf.bad)
        why = run_check(r);
check:
    if (jf.bad)
        rc = json_fields_err(&jf, err);
    else if (why)
        rc = sw_err_set(err, SW_EINVAL, "%s: %s", key, why);
out:
    json_decref(root);
    if (rc) {
        pipeline_run_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- writing ------------------------------------------------------------------------------ */

static json_t *conclusion_json(enum pipeline_conclusion c)
{
    return json_str_or_null(pipeline_conclusion_name(c));
}

static json_t *data_or(json_t *v, json_t *dflt)
{
    if (!v)
        return dflt;
    json_decref(dflt);
    return json_deep_copy(v);
}

static json_t *gate_json(const struct pipeline_gate *g)
{
    json_t *approvers = json_array(), *decisions = json_array();
    for (size_t i = 0; i < g->napprovers; i++)
        json_array_append_new(approvers, json_string(g->approvers[i]));
    for (size_t i = 0; i < g->ndecisions; i++) {
        const struct pipeline_gate_decision *d = &g->decisions[i];
        json_array_append_new(decisions, json_pack("{s:s?, s:o, s:s, s:o, s:o}", "by", d->by,
                                                   "os_user", json_str_or_null(d->os_user),
                                                   "decision", d->reject ? "rejected" : "approved",
                                                   "at", json_time_or_null(d->at_ms), "comment",
                                                   json_str_or_null(d->comment)));
    }
    return json_pack("{s:s?, s:i, s:o, s:b, s:I, s:o, s:o, s:s, s:o, s:o}", "environment",
                     g->environment, "required", g->required, "approvers", approvers,
                     "allow_self_approval", g->allow_self_approval, "timeout_ms",
                     (json_int_t)g->timeout_ms, "waiting_since",
                     json_time_or_null(g->waiting_since_ms), "expires_at",
                     json_time_or_null(g->waiting_since_ms + g->timeout_ms), "state",
                     pipeline_gate_state_name(g->state), "decided_at",
                     json_time_or_null(g->decided_ms), "decisions", decisions);
}

static json_t *job_json(const struct pipeline_run_job *j)
{
    json_t *steps = json_array();
    for (size_t i = 0; i < j->nsteps; i++)
        json_array_append_new(steps,
                              json_pack("{s:s?, s:o, s:o}", "name", j->steps[i].name, "outcome",
                                        conclusion_json(j->steps[i].outcome), "conclusion",
                                        conclusion_json(j->steps[i].conclusion)));
    json_t *env = j->environment_name ? json_pack("{s:s, s:o}", "name", j->environment_name, "url",
                                                  json_str_or_null(j->environment_url))
                                      : json_null();
    json_t *o = json_pack(
        "{s:s?, s:s?, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "id", j->id, "name", j->name,
        "matrix", data_or(j->matrix, json_null()), "status", pipeline_job_status_name(j->status),
        "conclusion", conclusion_json(j->conclusion), "started_at",
        json_time_or_null(j->started_ms), "ended_at", json_time_or_null(j->ended_ms), "outputs",
        data_or(j->outputs, json_object()), "environment", env, "steps", steps);
    /* the concurrency fields only when set: most jobs have none */
    if (o && j->reason && json_object_set_new(o, "reason", json_string(j->reason))) {
        json_decref(o);
        return NULL;
    }
    if (o && j->cancel_requested)
        json_object_set_new(o, "cancel_requested", json_true());
    if (o && j->gate) {
        json_t *g = gate_json(j->gate);
        if (!g || json_object_set_new(o, "gate", g)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *jobs_json(const struct pipeline_run *r)
{
    json_t *a = json_array();
    for (size_t i = 0; i < r->njobs; i++) {
        json_t *j = job_json(&r->jobs[i]);
        if (!j || json_array_append_new(a, j)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Packs o with an "o" that may be NULL (an encoding failure below): json_pack
 * then fails as a whole, which is what the callers want. */
char *pipeline_run_dump(const struct pipeline_run *r)
{
    const struct pipeline_run_claim *c = &r->claim;
    json_t *claim =
        c->runner ? json_pack("{s:s, s:s?, s:I, s:o, s:I, s:o}", "runner", c->runner, "host",
                              c->host, "pid", (json_int_t)c->pid, "since",
                              json_time_or_null(c->since_ms), "lease_ms", (json_int_t)c->lease_ms,
                              "expires", json_time_or_null(c->expires_ms))
                  : json_null();
    json_t *conc = r->group ? json_pack("{s:s, s:b}", "group", r->group, "cancel_in_progress",
                                        r->cancel_in_progress)
                            : json_null();
    json_t *root = json_object();
    int bad = !claim || !conc || !root;
    bad |= json_object_set_new(root, "format", json_integer(1));
    bad |= json_object_set_new(root, "id", json_string(r->id));
    bad |= json_object_set_new(root, "generation", json_integer(r->generation));
    bad |= json_object_set_new(root, "workflow", json_str_or_null(r->workflow));
    bad |= json_object_set_new(root, "display_title", json_str_or_null(r->display_title));
    bad |= json_object_set_new(root, "workflow_file", json_str_or_null(r->workflow_file));
    bad |= json_object_set_new(root, "event", json_str_or_null(r->event));
    bad |= json_object_set_new(root, "ref", json_str_or_null(r->ref));
    bad |= json_object_set_new(root, "sha", json_str_or_null(r->sha));
    bad |= json_object_set_new(root, "before", json_str_or_null(r->before));
    bad |= json_object_set_new(root, "after", json_str_or_null(r->after));
    bad |= json_object_set_new(root, "actor", json_str_or_null(r->actor));
    /* absent rather than null when unset: records of runs queued otherwise
     * keep their shape */
    if (r->repository)
        bad |= json_object_set_new(root, "repository", json_string(r->repository));
    if (r->push)
        bad |= json_object_set_new(root, "push", json_deep_copy(r->push));
    bad |= json_object_set_new(root, "inputs", data_or(r->inputs, json_null()));
    bad |= json_object_set_new(root, "status", json_string(pipeline_run_status_name(r->status)));
    bad |= json_object_set_new(root, "conclusion", conclusion_json(r->conclusion));
    bad |= json_object_set_new(root, "reason", json_str_or_null(r->reason));
    bad |= json_object_set_new(root, "created_at", json_time_or_null(r->created_ms));
    bad |= json_object_set_new(root, "started_at", json_time_or_null(r->started_ms));
    bad |= json_object_set_new(root, "ended_at", json_time_or_null(r->ended_ms));
    bad |= json_object_set_new(root, "claimed_by", claim);
    bad |= json_object_set_new(root, "concurrency", conc);
    bad |= json_object_set_new(root, "waiting_for",
                               json_str_or_null(r->waiting_for[0] ? r->waiting_for : NULL));
    bad |= json_object_set_new(root, "cancel_requested", json_boolean(r->cancel_requested));
    bad |= json_object_set_new(root, "cancelled_by", json_str_or_null(r->cancelled_by));
    bad |= json_object_set_new(root, "jobs", jobs_json(r));
    /* NULL when anything failed to encode: never write a record that lost
     * fields. */
    char *s = bad ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    char *copy = s ? xstrdup(s) : NULL;
    free(s);
    return copy;
}

json_t *pipeline_run_json(const struct pipeline_run *r, int view)
{
    const char *status = pipeline_run_status_name(r->status);
    if (!view)
        return json_pack("{s:s, s:s?, s:s?, s:s?, s:s, s:o}", "id", r->id, "workflow", r->workflow,
                         "ref", r->ref, "sha", r->sha, "status", status, "created_at",
                         json_time_or_null(r->created_ms));
    json_t *o = json_pack(
        "{s:s, s:s?, s:s?, s:s?, s:s, s:o, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, "
        "s:o, s:o, s:o, s:s?, s:o}",
        "id", r->id, "workflow", r->workflow, "workflow_file", r->workflow_file, "display_title",
        r->display_title, "status", status, "conclusion", conclusion_json(r->conclusion), "event",
        r->event, "ref", r->ref, "sha", r->sha, "before", r->before, "after", r->after, "actor",
        r->actor, "created_at", json_time_or_null(r->created_ms), "started_at",
        json_time_or_null(r->started_ms), "ended_at", json_time_or_null(r->ended_ms), "reason",
        r->reason, "jobs", jobs_json(r));
    if (o && r->repository)
        json_object_set_new(o, "repository", json_string(r->repository));
    if (o && r->push)
        json_object_set_new(o, "push", json_deep_copy(r->push));
    return o;
}
