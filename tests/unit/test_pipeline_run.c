/* Unit tests for pipeline runs on the fs store: the run record (round trip,
 * the `run view` / `run list` shapes, hostile documents), the queue (claim
 * races between threads and processes, heartbeat, leases, recovery of dead
 * holders, cancel, updates without lost writes, listing), concurrency groups
 * by GitHub's rule, and run logs (chunks, following, the per-run limit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pipeline/pipeline.h"
#include "store/store.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    struct store *st;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sw-runs-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    if (store_open(f->dir, &f->st, NULL))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_free(f->st);
    char *cmd = xasprintf("rm -rf %s", f->dir);
    int rc = system(cmd);
    free(cmd);
    free(f);
    return rc;
}

/* ---- helpers ------------------------------------------------------------------------ */

static const char SHA[] = "0123456789abcdef0123456789abcdef01234567";

/* A spec as the trigger would make it; group NULL for none. */
static struct pipeline_run *spec(const char *workflow, const char *group, int cip)
{
    struct pipeline_run *s = xcalloc(1, sizeof(*s));
    s->workflow = xstrdup(workflow);
    s->workflow_file = xasprintf(".github/workflows/%s.yml", workflow);
    s->event = xstrdup("push");
    s->ref = xstrdup("refs/heads/main");
    s->sha = xstrdup(SHA);
    s->actor = xstrdup("alice");
    s->group = group ? xstrdup(group) : NULL;
    s->cancel_in_progress = cip;
    return s;
}

/* Creates a run and returns its id (caller frees). */
static char *create(struct fixture *f, const char *workflow, const char *group, int cip)
{
    struct pipeline_run *s = spec(workflow, group, cip), *r = NULL;
    struct sw_err err = {0};
    int rc = pipeline_run_create(f->st, s, &r, &err);
    if (rc)
        print_message("# create: %s\n", err.msg);
    assert_int_equal(rc, 0);
    char *id = xstrdup(r->id);
    pipeline_run_free(s);
    pipeline_run_free(r);
    return id;
}

static struct pipeline_run *load(struct fixture *f, const char *id)
{
    struct pipeline_run *r = NULL;
    struct sw_err err = {0};
    int rc = pipeline_run_load(f->st, id, &r, &err);
    if (rc)
        print_message("# load: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return r;
}

static enum pipeline_run_status status_of(struct fixture *f, const char *id)
{
    struct pipeline_run *r = load(f, id);
    enum pipeline_run_status s = r->status;
    pipeline_run_free(r);
    return s;
}

static struct pipeline_run *claim(struct fixture *f, const char *id, const char *runner)
{
    struct pipeline_run *r = NULL;
    struct sw_err err = {0};
    int rc = pipeline_run_claim(f->st, id, runner, 0, &r, &err);
    if (rc)
        print_message("# claim: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return r;
}

static int exists(struct fixture *f, const char *key)
{
    struct store_stat sb;
    return store_head(f->st, key, &sb, 0, NULL) == 0;
}

static void put(struct fixture *f, const char *key, const char *s)
{
    assert_int_equal(store_put(f->st, key, s, strlen(s), 0, NULL, NULL), 0);
}

/* ---- the record ----------------------------------------------------------------------- */

/* Everything a trigger sets survives create and load; the dump is a fixed
 * point of the parser; the views have exactly the shapes the CLI prints. */
static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    struct pipeline_run *s = spec("ci", "deploy-main", 1), *r = NULL;
    struct sw_err err = {0};
    s->event = (free(s->event), xstrdup("workflow_dispatch"));
    s->before = xstrdup("0000000000000000000000000000000000000000");
    s->after = xstrdup(SHA);
    s->display_title = xstrdup("Deploy staging by alice");
    s->inputs = json_pack("{s:s, s:b, s:i}", "target", "staging\nline two", "dry", 1, "n", 3);
    struct pipeline_run_job *j = pipeline_run_job_add(s);
    j->id = xstrdup("test");
    j->name = xstrdup("test (1, a)");
    j->matrix = json_pack("{s:i, s:s, s:{s:[i,i]}}", "n", 1, "os", "a", "deep", "x", 1, 2);
    j->outputs = json_pack("{s:s}", "version", "1.4.0");
    pipeline_run_step_add(j, "Run make test")->outcome = PIPELINE_CONCLUSION_FAILURE;
    j->steps[0].conclusion = PIPELINE_CONCLUSION_SUCCESS;
    j->environment_name = xstrdup("staging");
    j->environment_url = xstrdup("https://staging.example.com/a?b=1");
    j = pipeline_run_job_add(s);
    j->id = xstrdup("build");
    j->name = xstrdup("build");
    j->cancel_requested = 1;
    j->reason = xstrdup("Canceling since a higher priority waiting request for 'g' exists");
    assert_int_equal(pipeline_run_create(f->st, s, &r, &err), 0);
    assert_true(pipeline_run_id_valid(r->id));
    assert_true(str_starts_with(r->id, "run-"));
    assert_int_equal(r->status, PIPELINE_RUN_QUEUED);
    assert_int_equal(r->conclusion, PIPELINE_CONCLUSION_NONE);
    assert_true(r->created_ms > 0);
    assert_true(r->generation >= 1);
    assert_null(r->claim.runner);

    struct pipeline_run *l = load(f, r->id);
    assert_string_equal(l->workflow, "ci");
    assert_string_equal(l->workflow_file, ".github/workflows/ci.yml");
    assert_string_equal(l->event, "workflow_dispatch");
    assert_string_equal(l->ref, "refs/heads/main");
    assert_string_equal(l->sha, SHA);
    assert_string_equal(l->before, "0000000000000000000000000000000000000000");
    assert_string_equal(l->actor, "alice");
    assert_string_equal(l->display_title, "Deploy staging by alice");
    assert_true(json_equal(l->inputs, s->inputs));
    assert_string_equal(l->group, "deploy-main");
    assert_int_equal(l->cancel_in_progress, 1);
    assert_int_equal(l->njobs, 2);
    assert_string_equal(l->jobs[0].name, "test (1, a)");
    assert_true(json_equal(l->jobs[0].matrix, s->jobs[0].matrix));
    assert_true(json_equal(l->jobs[0].outputs, s->jobs[0].outputs));
    assert_int_equal(l->jobs[0].nsteps, 1);
    assert_int_equal(l->jobs[0].steps[0].outcome, PIPELINE_CONCLUSION_FAILURE);
    assert_int_equal(l->jobs[0].steps[0].conclusion, PIPELINE_CONCLUSION_SUCCESS);
    assert_null(l->jobs[1].matrix);
    assert_string_equal(l->jobs[0].environment_name, "staging");
    assert_string_equal(l->jobs[0].environment_url, "https://staging.example.com/a?b=1");
    assert_int_equal(l->jobs[0].cancel_requested, 0);
    assert_null(l->jobs[0].reason);
    assert_null(l->jobs[1].environment_name);
    assert_int_equal(l->jobs[1].cancel_requested, 1);
    assert_string_equal(l->jobs[1].reason,
                        "Canceling since a higher priority waiting request for 'g' exists");
    assert_string_equal(l->etag, r->etag);

    /* the dump reads back as the same record */
    char *doc = pipeline_run_dump(l);
    char *key = xasprintf("runs/%s/run.json", l->id);
    struct pipeline_run *again = NULL;
    assert_int_equal(pipeline_run_parse(key, doc, strlen(doc), &again, &err), 0);
    char *doc2 = pipeline_run_dump(again);
    assert_string_equal(doc, doc2);

    /* `run view --json`: one entry per matrix leg, each with these keys */
    json_t *v = pipeline_run_json(l, 1);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "id")), l->id);
    assert_string_equal(json_string_value(json_object_get(v, "workflow")), "ci");
    assert_string_equal(json_string_value(json_object_get(v, "display_title")),
                        "Deploy staging by alice");
    assert_string_equal(json_string_value(json_object_get(v, "status")), "queued");
    assert_true(json_is_null(json_object_get(v, "conclusion")));
    json_t *job = json_array_get(json_object_get(v, "jobs"), 0);
    const char *keys[] = {"id",         "name",     "matrix",  "status",      "conclusion",
                          "started_at", "ended_at", "outputs", "environment", "steps"};
    assert_int_equal(json_object_size(job), sizeof(keys) / sizeof(*keys));
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
        assert_non_null(json_object_get(job, keys[i]));
    assert_string_equal(json_string_value(json_object_get(job, "status")), "queued");
    json_t *step = json_array_get(json_object_get(job, "steps"), 0);
    assert_int_equal(json_object_size(step), 3);
    assert_string_equal(json_string_value(json_object_get(step, "outcome")), "failure");
    assert_true(
        json_is_object(json_object_get(json_array_get(json_object_get(v, "jobs"), 1), "outputs")));
    /* the job's environment: {name, url}, or null */
    json_t *env = json_object_get(job, "environment");
    assert_string_equal(json_string_value(json_object_get(env, "name")), "staging");
    assert_string_equal(json_string_value(json_object_get(env, "url")),
                        "https://staging.example.com/a?b=1");
    json_t *job1 = json_array_get(json_object_get(v, "jobs"), 1);
    assert_true(json_is_null(json_object_get(job1, "environment")));
    /* the concurrency fields only when set */
    assert_null(json_object_get(job, "reason"));
    assert_null(json_object_get(job, "cancel_requested"));
    assert_true(json_is_true(json_object_get(job1, "cancel_requested")));
    json_decref(v);
    /* `run list --json` entry */
    v = pipeline_run_json(l, 0);
    const char *lkeys[] = {"id", "workflow", "ref", "sha", "status", "created_at"};
    assert_int_equal(json_object_size(v), 6);
    for (size_t i = 0; i < 6; i++)
        assert_non_null(json_object_get(v, lkeys[i]));
    json_decref(v);

    /* markers and keys */
    char *ikey = xasprintf("runs/index/%s", l->id), *akey = xasprintf("runs/active/%s", l->id);
    assert_true(exists(f, ikey));
    assert_true(exists(f, akey));
    free(ikey), free(akey), free(key), free(doc), free(doc2);
    pipeline_run_free(again);
    pipeline_run_free(l);
    pipeline_run_free(r);
    pipeline_run_free(s);
}

/* A spec that would make a document readers refuse is refused before
 * anything is written. */
static void test_create_refuses(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    struct pipeline_run *s = spec("ci", NULL, 0), *r = NULL;
    free(s->ref);
    s->ref = xstrdup("refs/heads/\x1b[31mred");
    assert_int_equal(pipeline_run_create(f->st, s, &r, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "ref"));
    free(s->ref);
    s->ref = xstrdup("refs/heads/main");
    free(s->workflow_file);
    s->workflow_file = xstrdup("../../etc/passwd");
    assert_int_equal(pipeline_run_create(f->st, s, &r, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "workflow_file"));
    struct store_list l = {0};
    assert_int_equal(store_list_all(f->st, "runs/", &l, NULL), 0);
    assert_int_equal(l.n, 0);
    store_list_free(&l);
    pipeline_run_free(s);
}

/* The table of hostile documents: each one field (or one invariant) wrong in
 * an otherwise valid record, and every one refused, naming the key. */
struct bad {
    const char *path; /* "a", "a.b", "jobs.0.c", "jobs.0.steps.0.d" */
    const char *json; /* the value to put there; NULL: delete it */
    const char *status;
};

static json_t *walk(json_t *root, const char *path, char *last, size_t n)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *cur = root;
    char *save = NULL, *tok = strtok_r(buf, ".", &save), *next;
    while ((next = strtok_r(NULL, ".", &save))) {
        cur =
            json_is_array(cur) ? json_array_get(cur, (size_t)atoi(tok)) : json_object_get(cur, tok);
        tok = next;
    }
    snprintf(last, n, "%s", tok);
    return cur;
}

static void test_hostile_documents(void **state)
{
    struct fixture *f = *state;
    char big[2100];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *longname = xasprintf("\"%s\"", big);
    char *deep = xasprintf("{\"k\":%s1%s}", "[[[[[[[[[[[[[[[[[[[[", "]]]]]]]]]]]]]]]]]]]]");
    struct buf many = BUF_INIT, jobs = BUF_INIT, steps = BUF_INIT, huge = BUF_INIT;
    buf_adds(&many, "{");
    for (int i = 0; i < 101; i++)
        buf_addf(&many, "%s\"i%d\":\"v\"", i ? "," : "", i);
    buf_adds(&many, "}");
    buf_adds(&jobs, "[");
    for (int i = 0; i < 1025; i++)
        buf_addf(&jobs, "%s{\"id\":\"a\",\"name\":\"a\",\"status\":\"queued\"}", i ? "," : "");
    buf_adds(&jobs, "]");
    buf_adds(&steps, "[");
    for (int i = 0; i < 1001; i++)
        buf_addf(&steps, "%s{\"name\":\"s\"}", i ? "," : "");
    buf_adds(&steps, "]");
    buf_adds(&huge, "{\"a\":\"");
    for (int i = 0; i < 1100; i++)
        buf_adds(&huge, "0123456789012345678901234567890123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789012345678901234567890123456789"
                        "0123");
    buf_adds(&huge, "\"}");
    const char *claim =
        "{\"runner\":\"r1\",\"host\":\"h\",\"pid\":12,\"since\":\"2026-01-01T00:00:00Z\","
        "\"lease_ms\":60000,\"expires\":\"2026-01-01T00:01:00Z\"}";
    const struct bad table[] = {
        {"id", "\"../../etc\"", NULL},
        {"id", "\"run-1\"", NULL},
        {"id", "\"run-20261205-142233-512-9F3A1C\"", NULL},
        {"id", "\"run-20261205-142233-512-9f3a1c\"", NULL}, /* valid, but not its key's */
        {"id", "5", NULL},
        {"id", NULL, NULL},
        {"format", "2", NULL},
        {"generation", "0", NULL},
        {"generation", "-1", NULL},
        {"generation", "2251799813685249", NULL},
        {"generation", "\"1\"", NULL},
        {"generation", "1.5", NULL},
        {"generation", NULL, NULL},
        {"status", "\"done\"", NULL},
        {"status", "5", NULL},
        {"status", NULL, NULL},
        {"conclusion", "\"success\"", NULL},        /* while queued */
        {"conclusion", "\"skipped\"", "succeeded"}, /* a run is never skipped */
        {"conclusion", "\"failure\"", "succeeded"}, /* does not match */
        {"ended_at", NULL, "failed"},
        {"created_at", "\"yesterday\"", NULL},
        {"created_at", "\"1969-12-31T23:59:59Z\"", NULL},
        {"created_at", "\"10000-01-01T00:00:00Z\"", NULL},
        {"created_at", NULL, NULL},
        {"started_at", "17", NULL},
        {"workflow", NULL, NULL},
        {"workflow", "\"a\\nb\"", NULL},
        {"workflow", "\"\\u001b[31mred\"", NULL},
        {"workflow", "\"\\u0085next\"", NULL},
        {"workflow", longname, NULL},
        {"display_title", "\"a\\nb\"", NULL},
        {"display_title", "\"\\u001b[31mred\"", NULL},
        {"display_title", longname, NULL},
        {"display_title", "5", NULL},
        {"workflow_file", "\"../../etc/passwd\"", NULL},
        {"workflow_file", "\"/etc/passwd\"", NULL},
        {"workflow_file", "\"a//b.yml\"", NULL},
        {"event", "\"Push\"", NULL},
        {"event", "\"a b\"", NULL},
        {"event", "\"\"", NULL},
        {"event", NULL, NULL},
        {"sha", "\"XYZ\"", NULL},
        {"sha", "\"0123456789ABCDEF0123456789ABCDEF01234567\"", NULL},
        {"sha", "\"0123456789abcdef0123456789abcdef0123456\"", NULL},
        {"before", "\"../x\"", NULL},
        {"ref", "\"refs/heads/\\u0007\"", NULL},
        {"actor", "\"al\\rice\"", NULL},
        {"reason", "\"one\\ntwo\"", NULL},
        {"inputs", "[]", NULL},
        {"inputs", many.data, NULL},
        {"inputs", "{\"1bad\":\"v\"}", NULL},
        {"inputs", "{\"a\":{}}", NULL},
        {"inputs", "{\"a b\":\"v\"}", NULL},
        {"claimed_by", claim, NULL}, /* a queued run is not claimed */
        {"claimed_by", NULL, "running"},
        {"claimed_by", "\"r1\"", "running"},
        {"claimed_by.runner", "\"../x\"", "running"},
        {"claimed_by.runner", NULL, "running"},
        {"claimed_by.host", NULL, "running"},
        {"claimed_by.host", "\"h\\n\"", "running"},
        {"claimed_by.pid", "0", "running"},
        {"claimed_by.pid", "4294967296", "running"},
        {"claimed_by.lease_ms", "0", "running"},
        {"claimed_by.expires", "\"soon\"", "running"},
        {"started_at", NULL, "running"},
        {"concurrency", "\"g\"", NULL},
        {"concurrency.group", "\"\"", NULL},
        {"concurrency.group", NULL, NULL},
        {"concurrency.cancel_in_progress", "\"yes\"", NULL},
        {"waiting_for", "\"nope\"", NULL},
        {"waiting_for", "\"run-20261205-142233-512-9f3a1c\"", "running"},
        {"cancel_requested", "1", NULL},
        {"jobs", NULL, NULL},
        {"jobs", "{}", NULL},
        {"jobs", jobs.data, NULL},
        {"jobs.0", "7", NULL},
        {"jobs.0.id", "\"a b\"", NULL},
        {"jobs.0.id", "\"../x\"", NULL},
        {"jobs.0.id", NULL, NULL},
        {"jobs.0.name", NULL, NULL},
        {"jobs.0.status", "\"done\"", NULL},
        {"jobs.0.status", "\"completed\"", NULL},   /* without a conclusion */
        {"jobs.0.conclusion", "\"success\"", NULL}, /* while queued */
        {"jobs.0.matrix", "\"linux\"", NULL},
        {"jobs.0.environment", "\"staging\"", NULL},
        {"jobs.0.environment", "{\"url\":\"https://x\"}", NULL},
        {"jobs.0.environment", "{\"name\":\"\"}", NULL},
        {"jobs.0.environment", "{\"name\":\"a\\nb\"}", NULL},
        {"jobs.0.environment", "{\"name\":\"a\",\"url\":7}", NULL},
        {"jobs.0.cancel_requested", "\"yes\"", NULL},
        {"jobs.0.reason", "\"two\\nlines\"", NULL},
        {"jobs.0.matrix", deep, NULL},
        {"jobs.0.outputs", "{\"v\":1}", NULL},
        {"jobs.0.outputs", "{\"bad name\":\"v\"}", NULL},
        {"jobs.0.outputs", huge.data, NULL},
        {"jobs.0.steps", "{}", NULL},
        {"jobs.0.steps", steps.data, NULL},
        {"jobs.0.steps.0.name", NULL, NULL},
        {"jobs.0.steps.0.outcome", "\"ok\"", NULL},
        {"jobs.0.started_at", "\"x\"", NULL},
    };
    struct pipeline_run *s = spec("ci", "g", 0), *r = NULL;
    struct pipeline_run_job *j = pipeline_run_job_add(s);
    j->id = xstrdup("build");
    j->name = xstrdup("build");
    pipeline_run_step_add(j, "checkout");
    struct sw_err err = {0};
    assert_int_equal(pipeline_run_create(f->st, s, &r, &err), 0);
    char *key = xasprintf("runs/%s/run.json", r->id);
    char *good = pipeline_run_dump(r);
    for (size_t i = 0; i < sizeof(table) / sizeof(*table); i++) {
        json_t *root = json_loads(good, 0, NULL);
        assert_non_null(root);
        if (table[i].status) {
            /* a base record of that status, valid as it is */
            json_object_set_new(root, "status", json_string(table[i].status));
            if (!strcmp(table[i].status, "running")) {
                json_object_set_new(root, "claimed_by", json_loads(claim, 0, NULL));
                json_object_set_new(root, "started_at", json_string("2026-01-01T00:00:00Z"));
                json_object_set_new(root, "waiting_for", json_null());
            } else {
                json_object_set_new(root, "ended_at", json_string("2026-01-01T00:00:00Z"));
                json_object_set_new(root, "waiting_for", json_null());
                json_object_set_new(
                    root, "conclusion",
                    json_string(!strcmp(table[i].status, "succeeded") ? "success" : "failure"));
            }
            char *base = json_dumps(root, JSON_COMPACT);
            struct pipeline_run *ok = NULL;
            if (pipeline_run_parse(key, base, strlen(base), &ok, &err))
                print_message("# base %s refused: %s\n", table[i].status, err.msg);
            assert_non_null(ok);
            pipeline_run_free(ok);
            free(base);
        }
        char last[64];
        json_t *parent = walk(root, table[i].path, last, sizeof(last));
        assert_non_null(parent);
        if (!table[i].json)
            json_object_del(parent, last);
        else if (json_is_array(parent))
            json_array_set_new(parent, (size_t)atoi(last),
                               json_loads(table[i].json, JSON_DECODE_ANY, NULL));
        else
            json_object_set_new(parent, last, json_loads(table[i].json, JSON_DECODE_ANY, NULL));
        char *doc = json_dumps(root, JSON_COMPACT);
        struct pipeline_run *bad = NULL;
        memset(&err, 0, sizeof(err));
        int rc = pipeline_run_parse(key, doc, strlen(doc), &bad, &err);
        if (rc != SW_EINVAL)
            print_message("# accepted: %s = %.60s\n", table[i].path,
                          table[i].json ? table[i].json : "(deleted)");
        assert_int_equal(rc, SW_EINVAL);
        assert_null(bad);
        assert_true(str_starts_with(err.msg, key));
        free(doc);
        json_decref(root);
    }
    /* and whole documents */
    const char *docs[] = {"", "[]", "null", "{", "{\"id\":1,\"id\":2}", "\"run\""};
    for (size_t i = 0; i < sizeof(docs) / sizeof(*docs); i++) {
        struct pipeline_run *bad = NULL;
        assert_int_equal(pipeline_run_parse(key, docs[i], strlen(docs[i]), &bad, &err), SW_EINVAL);
        assert_null(bad);
    }
    /* a duplicate key inside a valid document */
    char *dup = xasprintf("{\"status\":\"running\",%s", good + 1);
    struct pipeline_run *bad = NULL;
    assert_int_equal(pipeline_run_parse(key, dup, strlen(dup), &bad, &err), SW_EINVAL);
    free(dup);
    /* a document larger than the bound is refused before it is parsed, and
     * when stored, before it is read whole */
    size_t n = PIPELINE_RUN_DOC_MAX + 1;
    char *fat = xmalloc(n + 1);
    memset(fat, ' ', n);
    memcpy(fat, good, strlen(good));
    fat[n] = '\0';
    assert_int_equal(pipeline_run_parse(key, fat, n, &bad, &err), SW_EINVAL);
    assert_int_equal(store_put(f->st, key, fat, n, 0, NULL, NULL), 0);
    assert_int_equal(pipeline_run_load(f->st, r->id, &bad, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "larger than"));
    free(fat);
    /* ids that are not run ids never become keys */
    assert_int_equal(pipeline_run_load(f->st, "../../etc/passwd", &bad, &err), SW_EINVAL);
    assert_int_equal(pipeline_run_load(f->st, "run-20261205-142233-512-9f3a1c/../x", &bad, &err),
                     SW_EINVAL);
    free(good), free(key), free(longname), free(deep);
    buf_free(&many), buf_free(&jobs), buf_free(&steps), buf_free(&huge);
    pipeline_run_free(r);
    pipeline_run_free(s);
}

/* The seeds of fuzz/run.c that are meant to be valid are accepted (so the
 * corpus keeps up with the format). */
static void test_fuzz_seeds_valid(void **state)
{
    const char *seeds[] = {"fuzz/corpus/run/valid-queued", "fuzz/corpus/run/valid-running",
                           "fuzz/corpus/run/valid-ended"};
    for (size_t i = 0; i < sizeof(seeds) / sizeof(*seeds); i++) {
        char *data = NULL;
        size_t len = 0;
        struct sw_err err = {0};
        if (file_read_all(seeds[i], &data, &len, &err)) {
            print_message("# %s: %s (skipped: run from the repository)\n", seeds[i], err.msg);
            continue;
        }
        struct pipeline_run *r = NULL;
        json_t *root = json_loadb(data, len, 0, NULL);
        char *key = xasprintf("runs/%s/run.json", json_string_value(json_object_get(root, "id")));
        if (pipeline_run_parse(key, data, len, &r, &err))
            print_message("# %s: %s\n", seeds[i], err.msg);
        assert_non_null(r);
        pipeline_run_free(r);
        json_decref(root);
        free(key);
        free(data);
    }
}

/* ---- claims ---------------------------------------------------------------------------- */

enum { THREADS = 8, ROUNDS = 200 };

struct racer {
    struct fixture *f;
    pthread_barrier_t *start, *done;
    char (*id)[PIPELINE_RUN_ID_SIZE];
    int n;
    int wins, losses, other;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    char runner[32];
    snprintf(runner, sizeof(runner), "runner-%d", r->n);
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_wait(r->start);
        struct pipeline_run *got = NULL;
        struct sw_err err = {0};
        int rc = pipeline_run_claim(r->f->st, *r->id, runner, 0, &got, &err);
        if (rc == 0 && got && !strcmp(got->claim.runner, runner))
            r->wins++;
        else if (rc == PIPELINE_ECLAIMED && strstr(err.msg, "claimed by runner runner-"))
            r->losses++;
        else
            r->other++;
        pipeline_run_free(got);
        pthread_barrier_wait(r->done);
    }
    return NULL;
}

/* 8 threads race for each of 200 runs: exactly one claim wins each time, the
 * others are told who has it, and the record names the winner. */
static void test_claim_race_threads(void **state)
{
    struct fixture *f = *state;
    pthread_barrier_t start, done;
    char id[PIPELINE_RUN_ID_SIZE];
    struct racer rs[THREADS];
    pthread_t t[THREADS];
    pthread_barrier_init(&start, NULL, THREADS + 1);
    pthread_barrier_init(&done, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++) {
        rs[i] = (struct racer){f, &start, &done, &id, i, 0, 0, 0};
        assert_int_equal(pthread_create(&t[i], NULL, race, &rs[i]), 0);
    }
    int before[THREADS] = {0}, bad_rounds = 0;
    for (int round = 0; round < ROUNDS; round++) {
        char *nid = create(f, "ci", NULL, 0);
        memcpy(id, nid, sizeof(id));
        free(nid);
        pthread_barrier_wait(&start);
        pthread_barrier_wait(&done);
        int wins = 0;
        for (int i = 0; i < THREADS; i++) {
            wins += rs[i].wins - before[i];
            before[i] = rs[i].wins;
        }
        struct pipeline_run *r = load(f, id);
        if (wins != 1 || r->status != PIPELINE_RUN_RUNNING || r->generation != 2)
            bad_rounds++;
        pipeline_run_free(r);
    }
    int wins = 0, losses = 0, other = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        wins += rs[i].wins, losses += rs[i].losses, other += rs[i].other;
    }
    print_message("# %d threads x %d runs: %d claims won, %d lost, %d other\n", THREADS, ROUNDS,
                  wins, losses, other);
    assert_int_equal(bad_rounds, 0);
    assert_int_equal(wins, ROUNDS);
    assert_int_equal(losses, ROUNDS * (THREADS - 1));
    assert_int_equal(other, 0);
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&done);
}

/* 4 processes, each with its own store handle, take runs from the queue with
 * claim_next until it is empty: every run is claimed exactly once. */
static void test_claim_next_processes(void **state)
{
    struct fixture *f = *state;
    enum { PROCS = 4, RUNS = 40 };
    char *ids[RUNS];
    for (int i = 0; i < RUNS; i++)
        ids[i] = create(f, "ci", NULL, 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            struct store *st;
            char runner[32];
            snprintf(runner, sizeof(runner), "proc-%d", p);
            close(fds[0]);
            if (store_open(f->dir, &st, NULL))
                _exit(3);
            for (;;) {
                struct pipeline_run *r = NULL;
                struct sw_err err = {0};
                int rc = pipeline_run_claim_next(st, runner, 0, &r, &err);
                if (rc == SW_ENOTFOUND)
                    break;
                if (rc)
                    _exit(4);
                if (strcmp(r->claim.runner, runner) ||
                    write(fds[1], r->id, sizeof(r->id)) != (ssize_t)sizeof(r->id))
                    _exit(5);
                if (pipeline_run_finish(st, r, PIPELINE_CONCLUSION_SUCCESS, NULL, &err))
                    _exit(6);
                pipeline_run_free(r);
            }
            store_free(st);
            _exit(0);
        }
    }
    close(fds[1]);
    int seen[RUNS] = {0}, total = 0;
    char buf[PIPELINE_RUN_ID_SIZE];
    while (read(fds[0], buf, sizeof(buf)) == (ssize_t)sizeof(buf)) {
        total++;
        for (int i = 0; i < RUNS; i++)
            if (!strcmp(buf, ids[i]))
                seen[i]++;
    }
    close(fds[0]);
    for (int p = 0; p < PROCS; p++) {
        int status;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(total, RUNS);
    for (int i = 0; i < RUNS; i++) {
        assert_int_equal(seen[i], 1);
        assert_int_equal(status_of(f, ids[i]), PIPELINE_RUN_SUCCEEDED);
        char *akey = xasprintf("runs/active/%s", ids[i]);
        assert_false(exists(f, akey)); /* ended: no longer scanned */
        free(akey);
        free(ids[i]);
    }
}

/* A heartbeat keeps a lease alive; a lease that runs out makes the run
 * failed with the reason; the old holder then finds its claim lost, and
 * nobody can claim the run again. */
static void test_lease_expiry(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    size_t n = 9;
    char *id = create(f, "ci", NULL, 0);
    struct pipeline_run *r = NULL;
    assert_int_equal(pipeline_run_claim(f->st, id, "r1", 300, &r, &err), 0);
    assert_int_equal(r->claim.lease_ms, 300);
    assert_true(r->claim.expires_ms >= r->claim.since_ms + 300);
    for (int i = 0; i < 4; i++) { /* 600 ms in all: beyond one lease */
        usleep(150 * 1000);
        assert_int_equal(pipeline_run_heartbeat(f->st, r, &err), 0);
    }
    assert_int_equal(pipeline_runs_recover(f->st, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(status_of(f, id), PIPELINE_RUN_RUNNING);
    /* now let it run out */
    usleep(400 * 1000);
    assert_int_equal(pipeline_runs_recover(f->st, &n, &err), 0);
    assert_int_equal(n, 1);
    struct pipeline_run *l = load(f, id);
    assert_int_equal(l->status, PIPELINE_RUN_FAILED);
    assert_int_equal(l->conclusion, PIPELINE_CONCLUSION_FAILURE);
    assert_true(l->ended_ms > 0);
    char *want = xasprintf("runner r1 on %s stopped while the run was running", sys_host());
    assert_non_null(strstr(l->reason, want));
    assert_non_null(strstr(l->reason, "lease expired"));
    pipeline_run_free(l);
    assert_int_equal(pipeline_run_heartbeat(f->st, r, &err), PIPELINE_ELOST);
    assert_int_equal(pipeline_run_finish(f->st, r, PIPELINE_CONCLUSION_SUCCESS, NULL, &err),
                     PIPELINE_ELOST);
    struct pipeline_run *again = NULL;
    assert_int_equal(pipeline_run_claim(f->st, id, "r2", 0, &again, &err), PIPELINE_ECLAIMED);
    assert_int_equal(pipeline_run_claim_next(f->st, "r2", 0, &again, &err), SW_ENOTFOUND);
    assert_int_equal(status_of(f, id), PIPELINE_RUN_FAILED);
    assert_int_equal(pipeline_runs_recover(f->st, &n, &err), 0);
    assert_int_equal(n, 0); /* recovered once */
    free(want);
    free(id);
    pipeline_run_free(r);
}

/* A child process claims a run (with a long lease) and dies without a word:
 * its run is failed at once with the reason, its running job failed and the
 * job that had not started skipped. */
static void test_dead_holder(void **state)
{
    struct fixture *f = *state;
    struct pipeline_run *s = spec("ci", NULL, 0), *r = NULL;
    struct sw_err err = {0};
    pipeline_run_job_add(s)->id = xstrdup("build");
    s->jobs[0].name = xstrdup("build");
    pipeline_run_job_add(s)->id = xstrdup("deploy");
    s->jobs[1].name = xstrdup("deploy");
    assert_int_equal(pipeline_run_create(f->st, s, &r, &err), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct store *st;
        struct pipeline_run *c = NULL;
        if (store_open(f->dir, &st, NULL) ||
            pipeline_run_claim(st, r->id, "child", 60000, &c, NULL))
            _exit(3);
        c->jobs[0].status = PIPELINE_JOB_RUNNING;
        c->jobs[0].started_ms = time_now_ms();
        /* updated by hand (as a runner's update would) */
        char *doc = pipeline_run_dump(c), *key = xasprintf("runs/%s/run.json", c->id);
        if (store_put_if_match(st, key, doc, strlen(doc), c->etag, NULL, NULL))
            _exit(4);
        _exit(0); /* no finish, no release */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(status_of(f, r->id), PIPELINE_RUN_RUNNING);
    size_t n = 0;
    assert_int_equal(pipeline_runs_recover(f->st, &n, &err), 0);
    assert_int_equal(n, 1);
    struct pipeline_run *l = load(f, r->id);
    assert_int_equal(l->status, PIPELINE_RUN_FAILED);
    char *want =
        xasprintf("runner child on %s stopped while the run was running (process %d is gone)",
                  sys_host(), (int)pid);
    assert_string_equal(l->reason, want);
    assert_int_equal(l->jobs[0].status, PIPELINE_JOB_COMPLETED);
    assert_int_equal(l->jobs[0].conclusion, PIPELINE_CONCLUSION_FAILURE);
    assert_int_equal(l->jobs[1].conclusion, PIPELINE_CONCLUSION_SKIPPED);
    char *akey = xasprintf("runs/active/%s", r->id);
    assert_false(exists(f, akey));
    free(akey);
    free(want);
    pipeline_run_free(l);
    pipeline_run_free(r);
    pipeline_run_free(s);
}

/* A live holder of this host is not recovered, whatever its runner id. */
static void test_live_holder_kept(void **state)
{
    struct fixture *f = *state;
    char *id = create(f, "ci", NULL, 0);
    struct pipeline_run *r = claim(f, id, "me");
    size_t n = 7;
    assert_int_equal(pipeline_runs_recover(f->st, &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_int_equal(status_of(f, id), PIPELINE_RUN_RUNNING);
    free(id);
    pipeline_run_free(r);
}

/* ---- updates ------------------------------------------------------------------------------ */

static int add_one(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    struct pipeline_run_job *j = &r->jobs[*(int *)arg];
    const char *v = json_string_value(json_object_get(j->outputs, "n"));
    char next[32];
    snprintf(next, sizeof(next), "%d", (v ? atoi(v) : 0) + 1);
    if (!j->outputs)
        j->outputs = json_object();
    json_object_set_new(j->outputs, "n", json_string(next));
    return 0;
}

struct updater {
    struct fixture *f;
    struct pipeline_run *r; /* a private copy of the claimed run */
    int job, rc;
};

static void *update_loop(void *arg)
{
    struct updater *u = arg;
    for (int i = 0; i < 25 && !u->rc; i++) {
        struct sw_err err = {0};
        u->rc = pipeline_run_update(u->f->st, u->r, add_one, &u->job, &err);
        if (u->rc)
            fprintf(stderr, "update: %s\n", err.msg);
    }
    return NULL;
}

static int end_it(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    r->status = PIPELINE_RUN_SUCCEEDED;
    return 0;
}

static int steal(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    free(r->claim.runner);
    r->claim.runner = xstrdup("thief");
    return 0;
}

static int refuse(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    return sw_err_set(err, SW_EINVAL, "no");
}

static int uncancel(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    r->cancel_requested = 0;
    return 0;
}

static int to_waiting(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    r->status = PIPELINE_RUN_WAITING;
    r->jobs[0].status = PIPELINE_JOB_WAITING;
    /* a job waits only at a gate */
    struct pipeline_gate *g = xcalloc(1, sizeof(*g));
    g->environment = xstrdup("staging");
    g->required = 1;
    g->approvers = xcalloc(1, sizeof(*g->approvers));
    g->approvers[g->napprovers++] = xstrdup("alice");
    g->timeout_ms = 60000;
    g->waiting_since_ms = time_now_ms();
    pipeline_gate_free(r->jobs[0].gate);
    r->jobs[0].gate = g;
    return 0;
}

/* 8 threads update one run 25 times each, half on job 0 and half on job 1,
 * every update a read-modify-write of a counter: nothing is lost (100 and
 * 100), and the generation counts every write. Changes that would end the
 * run or touch the claim are refused. */
static void test_update_no_lost_writes(void **state)
{
    struct fixture *f = *state;
    struct pipeline_run *s = spec("ci", NULL, 0), *r = NULL;
    struct sw_err err = {0};
    for (int i = 0; i < 2; i++) {
        struct pipeline_run_job *j = pipeline_run_job_add(s);
        j->id = xstrdup(i ? "b" : "a");
        j->name = xstrdup(j->id);
    }
    assert_int_equal(pipeline_run_create(f->st, s, &r, &err), 0);
    struct pipeline_run *mine = claim(f, r->id, "r1");
    int64_t gen0 = mine->generation;
    struct updater u[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        struct pipeline_run *copy = load(f, r->id); /* the same claim, its own copy */
        u[i] = (struct updater){f, copy, i % 2, 0};
        assert_int_equal(pthread_create(&t[i], NULL, update_loop, &u[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(u[i].rc, 0);
        pipeline_run_free(u[i].r);
    }
    struct pipeline_run *l = load(f, r->id);
    assert_string_equal(json_string_value(json_object_get(l->jobs[0].outputs, "n")), "100");
    assert_string_equal(json_string_value(json_object_get(l->jobs[1].outputs, "n")), "100");
    assert_int_equal(l->generation, gen0 + 200);
    pipeline_run_free(l);

    assert_int_equal(pipeline_run_update(f->st, mine, end_it, NULL, &err), SW_EINVAL);
    assert_int_equal(pipeline_run_update(f->st, mine, steal, NULL, &err), SW_EINVAL);
    assert_int_equal(pipeline_run_update(f->st, mine, refuse, NULL, &err), SW_EINVAL);
    assert_string_equal(err.msg, "no");
    assert_int_equal(pipeline_run_update(f->st, mine, to_waiting, NULL, &err), 0);
    assert_int_equal(mine->status, PIPELINE_RUN_WAITING);
    assert_int_equal(mine->generation, gen0 + 201);
    /* a cancel asked meanwhile is kept by the updates, and cannot be undone */
    assert_int_equal(pipeline_run_cancel(f->st, r->id, "bob", NULL, &err), 0);
    assert_int_equal(pipeline_run_update(f->st, mine, add_one, &(int){0}, &err), 0);
    assert_int_equal(mine->cancel_requested, 1);
    assert_int_equal(pipeline_run_update(f->st, mine, uncancel, NULL, &err), SW_EINVAL);
    /* another runner's copy of the claim is not the claim */
    struct pipeline_run *other = load(f, r->id);
    free(other->claim.runner);
    other->claim.runner = xstrdup("r2");
    assert_int_equal(pipeline_run_update(f->st, other, add_one, &(int){0}, &err), PIPELINE_ELOST);
    assert_int_equal(pipeline_run_finish(f->st, mine, PIPELINE_CONCLUSION_SKIPPED, NULL, &err),
                     SW_EINVAL);
    assert_int_equal(pipeline_run_finish(f->st, mine, PIPELINE_CONCLUSION_SUCCESS, "done", &err),
                     0);
    assert_int_equal(mine->status, PIPELINE_RUN_SUCCEEDED);
    assert_string_equal(mine->reason, "done");
    assert_int_equal(pipeline_run_update(f->st, mine, add_one, &(int){0}, &err), PIPELINE_ELOST);
    pipeline_run_free(other);
    pipeline_run_free(mine);
    pipeline_run_free(r);
    pipeline_run_free(s);
}

/* ---- cancel ------------------------------------------------------------------------------- */

static void test_cancel(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    /* queued: cancelled at once, and no runner will see it again */
    char *q = create(f, "ci", NULL, 0);
    struct pipeline_run *r = NULL;
    assert_int_equal(pipeline_run_cancel(f->st, q, "bob", &r, &err), 0);
    assert_int_equal(r->status, PIPELINE_RUN_CANCELLED);
    assert_int_equal(r->conclusion, PIPELINE_CONCLUSION_CANCELLED);
    assert_string_equal(r->reason, "cancelled by bob");
    assert_string_equal(r->cancelled_by, "bob");
    assert_true(r->ended_ms > 0);
    pipeline_run_free(r);
    char *akey = xasprintf("runs/active/%s", q);
    assert_false(exists(f, akey));
    free(akey);
    assert_int_equal(pipeline_run_claim(f->st, q, "r1", 0, &r, &err), PIPELINE_ECLAIMED);
    assert_int_equal(pipeline_run_cancel(f->st, q, "bob", NULL, &err), PIPELINE_EENDED);

    /* running: a request its runner sees at the next heartbeat */
    char *id = create(f, "ci", NULL, 0);
    struct pipeline_run *mine = claim(f, id, "r1");
    assert_int_equal(mine->cancel_requested, 0);
    assert_int_equal(pipeline_run_cancel(f->st, id, "carol", NULL, &err), 0);
    assert_int_equal(status_of(f, id), PIPELINE_RUN_RUNNING);
    assert_int_equal(pipeline_run_cancel(f->st, id, "dave", NULL, &err), 0); /* once is enough */
    assert_int_equal(pipeline_run_heartbeat(f->st, mine, &err), 0);
    assert_int_equal(mine->cancel_requested, 1);
    assert_string_equal(mine->cancelled_by, "carol");
    assert_int_equal(pipeline_run_finish(f->st, mine, PIPELINE_CONCLUSION_CANCELLED, NULL, &err),
                     0);
    assert_int_equal(status_of(f, id), PIPELINE_RUN_CANCELLED);
    assert_int_equal(pipeline_run_cancel(f->st, id, NULL, NULL, &err), PIPELINE_EENDED);
    assert_int_equal(pipeline_run_cancel(f->st, "nope", NULL, NULL, &err), SW_EINVAL);
    assert_int_equal(pipeline_run_cancel(f->st, "run-20261205-142233-512-9f3a1c", NULL, NULL, &err),
                     SW_ENOTFOUND);
    assert_int_equal(pipeline_run_cancel(f->st, id, "bad\nactor", NULL, &err), SW_EINVAL);

    /* a holder that died after a cancel was asked: cancelled, not failed */
    char *d = create(f, "ci", NULL, 0);
    struct pipeline_run *dm = NULL;
    assert_int_equal(pipeline_run_claim(f->st, d, "r1", 1, &dm, &err), 0);
    assert_int_equal(pipeline_run_cancel(f->st, d, "erin", NULL, &err), 0);
    usleep(20 * 1000);
    size_t n = 0;
    assert_int_equal(pipeline_runs_recover(f->st, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(status_of(f, d), PIPELINE_RUN_CANCELLED);
    pipeline_run_free(dm);
    pipeline_run_free(mine);
    free(d);
    free(q);
    free(id);
}

/* ---- concurrency groups ----------------------------------------------------------------- */

static char *reason_of(struct fixture *f, const char *id)
{
    struct pipeline_run *r = load(f, id);
    char *s = r->reason ? xstrdup(r->reason) : NULL;
    pipeline_run_free(r);
    return s;
}

/* cancel-in-progress: true. A newer run of the group asks the running one to
 * cancel and waits for it to end; a queued holder is cancelled at once. The
 * group name is case-insensitive, as on GitHub. */
static void test_group_cancel_in_progress(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    char *r1 = create(f, "ci", "deploy-main", 1);
    struct pipeline_run *m1 = claim(f, r1, "a");
    char *r2 = create(f, "ci", "Deploy-Main", 1);
    struct pipeline_run *l = load(f, r2);
    assert_int_equal(l->status, PIPELINE_RUN_QUEUED);
    assert_string_equal(l->waiting_for, r1);
    char *want = xasprintf("waiting for run %s in concurrency group Deploy-Main", r1);
    assert_string_equal(l->reason, want);
    free(want);
    pipeline_run_free(l);
    l = load(f, r1);
    assert_int_equal(l->cancel_requested, 1);
    assert_non_null(strstr(l->reason, r2));
    pipeline_run_free(l);
    struct pipeline_run *m2 = NULL;
    assert_int_equal(pipeline_run_claim(f->st, r2, "b", 0, &m2, &err), PIPELINE_EWAITING);
    assert_non_null(strstr(err.msg, r1));
    assert_int_equal(pipeline_run_claim_next(f->st, "b", 0, &m2, &err), SW_ENOTFOUND);
    /* the runner of r1 notices and stops */
    assert_int_equal(pipeline_run_heartbeat(f->st, m1, &err), 0);
    assert_int_equal(m1->cancel_requested, 1);
    assert_int_equal(pipeline_run_finish(f->st, m1, PIPELINE_CONCLUSION_CANCELLED, NULL, &err), 0);
    assert_non_null(strstr(m1->reason, "superseded by run")); /* kept: finish gave none */
    char *why = reason_of(f, r2);
    assert_null(why); /* promoted: no longer waiting */
    assert_int_equal(pipeline_run_claim_next(f->st, "b", 0, &m2, &err), 0);
    assert_string_equal(m2->id, r2);

    /* a queued holder (not claimed yet) is cancelled at once */
    char *r3 = create(f, "ci", "other", 1);
    char *r4 = create(f, "ci", "other", 1);
    assert_int_equal(status_of(f, r3), PIPELINE_RUN_CANCELLED);
    why = reason_of(f, r3);
    char *w = xasprintf("superseded by run %s in concurrency group other", r4);
    assert_string_equal(why, w);
    free(w);
    free(why);
    struct pipeline_run *m4 = claim(f, r4, "c");
    pipeline_run_free(m4);
    pipeline_run_free(m1);
    pipeline_run_free(m2);
    free(r1), free(r2), free(r3), free(r4);
}

/* cancel-in-progress: false. One running, one pending: a newer run cancels
 * the pending one and takes its place; when the running one ends, the
 * pending one runs. A runner that died releases the group too. */
static void test_group_queue(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    char *r1 = create(f, "ci", "g", 0);
    struct pipeline_run *m1 = claim(f, r1, "a");
    char *r2 = create(f, "ci", "g", 0);
    assert_int_equal(status_of(f, r2), PIPELINE_RUN_QUEUED);
    char *r3 = create(f, "ci", "g", 0);
    assert_int_equal(status_of(f, r2), PIPELINE_RUN_CANCELLED);
    char *why = reason_of(f, r2), *w = xasprintf("superseded by run %s in concurrency group g", r3);
    assert_string_equal(why, w);
    free(why), free(w);
    struct pipeline_run *l = load(f, r1);
    assert_int_equal(l->cancel_requested, 0); /* the running one is left alone */
    pipeline_run_free(l);
    struct pipeline_run *m = NULL;
    assert_int_equal(pipeline_run_claim(f->st, r3, "b", 0, &m, &err), PIPELINE_EWAITING);
    assert_int_equal(pipeline_run_claim_next(f->st, "b", 0, &m, &err), SW_ENOTFOUND);
    assert_int_equal(pipeline_run_finish(f->st, m1, PIPELINE_CONCLUSION_SUCCESS, NULL, &err), 0);
    assert_int_equal(pipeline_run_claim_next(f->st, "b", 0, &m, &err), 0);
    assert_string_equal(m->id, r3);
    /* r4 waits for r3; r3's runner dies (a child claims the next one) */
    char *r4 = create(f, "ci", "g", 0);
    assert_int_equal(pipeline_run_claim(f->st, r4, "c", 0, &l, &err), PIPELINE_EWAITING);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct store *st;
        struct pipeline_run *c = NULL;
        if (store_open(f->dir, &st, NULL) ||
            pipeline_run_finish(st, m, PIPELINE_CONCLUSION_SUCCESS, NULL, NULL))
            _exit(3);
        /* r3 ended normally; now the child takes r4 and dies */
        if (pipeline_run_claim(st, r4, "child", 60000, &c, NULL))
            _exit(4);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *r5 = create(f, "ci", "g", 0);
    assert_int_equal(pipeline_run_claim(f->st, r5, "d", 0, &l, &err), PIPELINE_EWAITING);
    /* the scan of the next claim recovers r4 and then gives r5 */
    assert_int_equal(pipeline_run_claim_next(f->st, "d", 0, &l, &err), 0);
    assert_string_equal(l->id, r5);
    assert_int_equal(status_of(f, r4), PIPELINE_RUN_FAILED);
    pipeline_run_free(l);
    pipeline_run_free(m);
    pipeline_run_free(m1);
    free(r1), free(r2), free(r3), free(r4), free(r5);
}

struct group_racer {
    struct fixture *f;
    pthread_barrier_t *start;
    char ids[10][PIPELINE_RUN_ID_SIZE];
    int rc;
};

static void *group_race(void *arg)
{
    struct group_racer *g = arg;
    pthread_barrier_wait(g->start);
    for (int i = 0; i < 10 && !g->rc; i++) {
        struct pipeline_run *s = spec("ci", "raced", 0), *r = NULL;
        struct sw_err err = {0};
        g->rc = pipeline_run_create(g->f->st, s, &r, &err);
        if (g->rc)
            fprintf(stderr, "create: %s\n", err.msg);
        else
            memcpy(g->ids[i], r->id, PIPELINE_RUN_ID_SIZE);
        pipeline_run_free(r);
        pipeline_run_free(s);
    }
    return NULL;
}

/* 8 threads queue 10 runs each into one group while one run holds it: when
 * they are done, exactly one of the 80 is pending and the other 79 are
 * cancelled, whatever the interleaving; the holder runs on. */
static void test_group_race(void **state)
{
    struct fixture *f = *state;
    char *r1 = create(f, "ci", "raced", 0);
    struct pipeline_run *m1 = claim(f, r1, "a");
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 8);
    struct group_racer g[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        memset(&g[i], 0, sizeof(g[i]));
        g[i].f = f;
        g[i].start = &start;
        assert_int_equal(pthread_create(&t[i], NULL, group_race, &g[i]), 0);
    }
    int queued = 0, cancelled = 0;
    char pending[PIPELINE_RUN_ID_SIZE] = "";
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(g[i].rc, 0);
    }
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 10; k++) {
            enum pipeline_run_status s = status_of(f, g[i].ids[k]);
            if (s == PIPELINE_RUN_QUEUED) {
                queued++;
                memcpy(pending, g[i].ids[k], sizeof(pending));
            } else if (s == PIPELINE_RUN_CANCELLED) {
                cancelled++;
            }
        }
    print_message("# 80 runs raced into one group: %d pending, %d cancelled\n", queued, cancelled);
    assert_int_equal(queued, 1);
    assert_int_equal(cancelled, 79);
    assert_int_equal(status_of(f, r1), PIPELINE_RUN_RUNNING);
    struct sw_err err = {0};
    struct pipeline_run *m = NULL;
    assert_int_equal(pipeline_run_claim_next(f->st, "b", 0, &m, &err), SW_ENOTFOUND);
    assert_int_equal(pipeline_run_finish(f->st, m1, PIPELINE_CONCLUSION_SUCCESS, NULL, &err), 0);
    assert_int_equal(pipeline_run_claim_next(f->st, "b", 0, &m, &err), 0);
    assert_string_equal(m->id, pending);
    pipeline_run_free(m);
    pipeline_run_free(m1);
    pthread_barrier_destroy(&start);
    free(r1);
}

/* The group document lost (or a creation that stopped before joining): the
 * claim joins the group then; a forged group document is overwritten, not
 * obeyed blindly. */
static void test_group_heal(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    char *r1 = create(f, "ci", "heal", 0);
    struct store_list l = {0};
    assert_int_equal(store_list_all(f->st, "runs/groups/", &l, NULL), 0);
    assert_int_equal(l.n, 1);
    char *gkey = xstrdup(l.keys[0]);
    store_list_free(&l);
    assert_int_equal(store_delete(f->st, gkey, NULL, NULL), 0);
    struct pipeline_run *m1 = claim(f, r1, "a");
    assert_true(exists(f, gkey));
    char *r2 = create(f, "ci", "heal", 0);
    struct pipeline_run *m = NULL;
    assert_int_equal(pipeline_run_claim(f->st, r2, "b", 0, &m, &err), PIPELINE_EWAITING);
    /* forged: names a run that does not exist as holder */
    put(f, gkey,
        "{\"group\":\"heal\",\"holder\":\"run-20200101-000000-000-000000\",\"pending\":null,"
        "\"generation\":1}");
    char *r3 = create(f, "ci", "heal", 0); /* the forged holder counts for nothing */
    assert_int_equal(status_of(f, r3), PIPELINE_RUN_QUEUED);
    assert_int_equal(status_of(f, r2), PIPELINE_RUN_QUEUED);
    /* garbage */
    put(f, gkey, "not json");
    char *r4 = create(f, "ci", "heal", 0);
    assert_int_equal(status_of(f, r4), PIPELINE_RUN_QUEUED);
    pipeline_run_free(m1);
    free(gkey), free(r1), free(r2), free(r3), free(r4);
}

/* A crash between a run's end and its bookkeeping (group released, marker
 * dropped): the next run of the group is not blocked by it, and the next
 * scan drops the marker. A marker whose run.json never appeared is skipped,
 * and removed once it is old. */
static void test_crash_repairs(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    char *r1 = create(f, "ci", "g", 0);
    struct pipeline_run *m1 = claim(f, r1, "a");
    /* ended by a writer that stopped right after its compare-and-swap */
    m1->status = PIPELINE_RUN_SUCCEEDED;
    m1->conclusion = PIPELINE_CONCLUSION_SUCCESS;
    m1->ended_ms = time_now_ms();
    m1->generation++;
    char *doc = pipeline_run_dump(m1), *key = xasprintf("runs/%s/run.json", r1);
    assert_int_equal(store_put_if_match(f->st, key, doc, strlen(doc), m1->etag, NULL, NULL), 0);
    free(doc), free(key);
    char *akey = xasprintf("runs/active/%s", r1);
    assert_true(exists(f, akey));
    char *r2 = create(f, "ci", "g", 0);
    struct pipeline_run *l = load(f, r2);
    assert_string_equal(l->waiting_for, "");
    assert_null(l->reason);
    pipeline_run_free(l);
    /* a marker without its run: skipped while young, removed when old */
    const char *ghost = "run-20200101-000000-000-000000";
    char *gkey = xasprintf("runs/active/%s", ghost);
    put(f, gkey, "");
    struct pipeline_run *m2 = NULL;
    assert_int_equal(pipeline_run_claim_next(f->st, "b", 0, &m2, &err), 0);
    assert_string_equal(m2->id, r2);
    assert_false(exists(f, akey)); /* the scan finished r1's bookkeeping */
    assert_true(exists(f, gkey));
    char *path = xasprintf("%s/%s", f->dir, gkey);
    struct timespec old[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
    size_t n = 0;
    assert_int_equal(pipeline_runs_recover(f->st, &n, &err), 0);
    assert_false(exists(f, gkey));
    free(path), free(gkey), free(akey), free(r1), free(r2);
    pipeline_run_free(m1);
    pipeline_run_free(m2);
}

/* Writes a queued run of group with the given (old) id, as a creation that
 * stopped before joining its group leaves it. */
static void late_joiner(struct fixture *f, const char *id, const char *group)
{
    struct sw_err err = {0};
    char *tid = create(f, "ci", NULL, 0); /* a template, outside any group */
    struct pipeline_run *r = load(f, tid);
    assert_int_equal(pipeline_run_cancel(f->st, tid, NULL, NULL, &err), 0);
    memcpy(r->id, id, PIPELINE_RUN_ID_SIZE);
    r->generation = 1;
    r->group = xstrdup(group);
    r->reason = xasprintf("joining concurrency group %s", group);
    char *doc = pipeline_run_dump(r), *key = xasprintf("runs/%s/run.json", id);
    put(f, key, doc);
    free(key);
    key = xasprintf("runs/active/%s", id);
    put(f, key, "");
    free(key), free(doc), free(tid);
    pipeline_run_free(r);
}

/* Runs join in id order, whatever the order they reach the group: an older
 * run joining late waits behind a newer holder (without cancel-in-progress),
 * and is cancelled when a newer run is pending. */
static void test_group_late_join(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    char *a = create(f, "ci", "late", 0);
    struct pipeline_run *ma = claim(f, a, "a"), *m = NULL;
    const char *l1 = "run-20200101-000000-000-000001", *l2 = "run-20200101-000000-000-000002";
    late_joiner(f, l1, "late");
    assert_int_equal(pipeline_run_claim(f->st, l1, "b", 0, &m, &err), PIPELINE_EWAITING);
    struct pipeline_run *l = load(f, l1);
    assert_string_equal(l->waiting_for, a);
    pipeline_run_free(l);
    char *b = create(f, "ci", "late", 0); /* newer: takes the pending place */
    assert_int_equal(status_of(f, l1), PIPELINE_RUN_CANCELLED);
    late_joiner(f, l2, "late");
    assert_int_equal(pipeline_run_claim(f->st, l2, "b", 0, &m, &err), PIPELINE_ECLAIMED);
    assert_int_equal(status_of(f, l2), PIPELINE_RUN_CANCELLED);
    char *why = reason_of(f, l2),
         *want = xasprintf("superseded by run %s in concurrency group late", b);
    assert_string_equal(why, want);
    free(why), free(want);
    assert_int_equal(status_of(f, b), PIPELINE_RUN_QUEUED);
    assert_int_equal(pipeline_run_finish(f->st, ma, PIPELINE_CONCLUSION_SUCCESS, NULL, &err), 0);
    assert_int_equal(pipeline_run_claim_next(f->st, "b", 0, &m, &err), 0);
    assert_string_equal(m->id, b);
    pipeline_run_free(m);
    pipeline_run_free(ma);
    free(a), free(b);
}

/* ---- listing ---------------------------------------------------------------------------- */

static void test_list(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    char *ids[25];
    for (int i = 0; i < 25; i++)
        ids[i] = create(f, i % 3 ? "ci" : "release", NULL, 0);
    struct pipeline_run_list l;
    assert_int_equal(pipeline_run_list(f->st, NULL, &l, &err), 0);
    assert_int_equal(l.n, 20);
    assert_int_equal(l.truncated, 1);
    for (size_t i = 0; i < l.n; i++)
        assert_string_equal(l.runs[i]->id, ids[24 - i]); /* newest first */
    pipeline_run_list_free(&l);
    const char *names[] = {"release", "release.yml", ".github/workflows/release.yml"};
    for (int k = 0; k < 3; k++) {
        struct pipeline_run_filter flt = {names[k], 100};
        assert_int_equal(pipeline_run_list(f->st, &flt, &l, &err), 0);
        assert_int_equal(l.n, 9);
        assert_int_equal(l.truncated, 0);
        assert_string_equal(l.runs[0]->id, ids[24]);
        for (size_t i = 0; i < l.n; i++)
            assert_string_equal(l.runs[i]->workflow, "release");
        pipeline_run_list_free(&l);
    }
    struct pipeline_run_filter rel = {"rel", 100};
    assert_int_equal(pipeline_run_list(f->st, &rel, &l, &err), 0);
    assert_int_equal(l.n, 0);
    pipeline_run_list_free(&l);
    /* an unreadable run is counted and skipped; a marker without a run too;
     * the logs (here forged and huge) are never read */
    char *key = xasprintf("runs/%s/run.json", ids[24]);
    put(f, key, "{\"id\":\"nope\"}");
    free(key);
    put(f, "runs/index/run-20991231-235959-999-ffffff", "");
    key = xasprintf("runs/%s/logs/0000-0000/00000000", ids[23]);
    char *fat = xmalloc(4 << 20);
    memset(fat, 'x', 4 << 20);
    assert_int_equal(store_put(f->st, key, fat, 4 << 20, 0, NULL, NULL), 0);
    free(fat);
    free(key);
    struct pipeline_run_filter five = {NULL, 5};
    assert_int_equal(pipeline_run_list(f->st, &five, &l, &err), 0);
    assert_int_equal(l.n, 5);
    assert_int_equal(l.unreadable, 1);
    assert_string_equal(l.runs[0]->id, ids[23]);
    pipeline_run_list_free(&l);
    for (int i = 0; i < 25; i++)
        free(ids[i]);
}

/* ---- logs ----------------------------------------------------------------------------------- */

static char *read_all(struct fixture *f, const char *id, unsigned job, unsigned step,
                      uint64_t *next)
{
    struct buf b = BUF_INIT;
    struct sw_err err = {0};
    int rc = pipeline_runlog_read(f->st, id, job, step, next, 0, &b, &err);
    if (rc)
        print_message("# read: %s\n", err.msg);
    assert_int_equal(rc, 0);
    size_t n;
    return buf_detach(&b, &n);
}

/* Streams closed in the background: nothing is lost, a stream reopened
 * before its writer was written goes on after it, a failure reaches
 * pipeline_runlog_sync once, past the queue's bound writers are closed at
 * once, and freeing the log writes what is still queued. */
static void test_logs_close_later(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    char *id = create(f, "ci", NULL, 0);
    struct pipeline_runlog *log = NULL;
    struct pipeline_runlog_writer *w = NULL, *w2 = NULL;
    uint64_t next;
    char *got;
    assert_int_equal(pipeline_runlog_new(f->st, id, 0, &log, &err), 0);
    /* a timer's flush writes nothing until the oldest byte is a second old */
    assert_int_equal(pipeline_runlog_open(log, 4, 0, &w, &err), 0);
    assert_int_equal(pipeline_runlog_append(w, "quiet\n", 6, NULL, &err), 0);
    assert_int_equal(pipeline_runlog_flush_due(w, &err), 0);
    next = 0;
    got = read_all(f, id, 4, 0, &next);
    assert_string_equal(got, "");
    free(got);
    usleep((PIPELINE_RUNLOG_FLUSH_MS + 50) * 1000);
    assert_int_equal(pipeline_runlog_flush_due(w, &err), 0);
    got = read_all(f, id, 4, 0, &next);
    assert_string_equal(got, "quiet\n");
    free(got);
    assert_int_equal(pipeline_runlog_close(w, &err), 0);
    /* reopened at once: one stream, in order, whether or not it was written */
    assert_int_equal(pipeline_runlog_open(log, 0, 1, &w, &err), 0);
    assert_int_equal(pipeline_runlog_append(w, "a\n", 2, NULL, &err), 0);
    pipeline_runlog_close_later(w);
    assert_int_equal(pipeline_runlog_open(log, 0, 1, &w, &err), 0);
    assert_int_equal(pipeline_runlog_append(w, "b\n", 2, NULL, &err), 0);
    pipeline_runlog_close_later(w);
    assert_int_equal(pipeline_runlog_sync(log, &err), 0);
    next = 0;
    got = read_all(f, id, 0, 1, &next);
    assert_string_equal(got, "a\nb\n");
    free(got);
    /* more writers than the queue holds: every line is there after a sync */
    for (unsigned i = 0; i < 300; i++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "step %u\n", i);
        assert_int_equal(pipeline_runlog_open(log, 1, i + 1, &w, &err), 0);
        assert_int_equal(pipeline_runlog_append(w, line, (size_t)n, NULL, &err), 0);
        pipeline_runlog_close_later(w);
    }
    assert_int_equal(pipeline_runlog_sync(log, &err), 0);
    for (unsigned i = 0; i < 300; i++) {
        char line[32];
        snprintf(line, sizeof(line), "step %u\n", i);
        next = 0;
        got = read_all(f, id, 1, i + 1, &next);
        assert_string_equal(got, line);
        free(got);
    }
    /* a write that fails in the background is reported by the next sync only */
    assert_int_equal(pipeline_runlog_open(log, 2, 1, &w, &err), 0);
    assert_int_equal(pipeline_runlog_open(log, 2, 1, &w2, &err), 0);
    assert_int_equal(pipeline_runlog_append(w, "first\n", 6, NULL, &err), 0);
    assert_int_equal(pipeline_runlog_append(w2, "second\n", 7, NULL, &err), 0);
    assert_int_equal(pipeline_runlog_close(w, &err), 0);
    pipeline_runlog_close_later(w2);
    err = (struct sw_err){0};
    assert_int_equal(pipeline_runlog_sync(log, &err), SW_EEXIST);
    assert_non_null(strstr(err.msg, "another process is writing this log"));
    assert_int_equal(pipeline_runlog_sync(log, &err), 0);
    /* freeing the log writes what was handed over */
    assert_int_equal(pipeline_runlog_open(log, 3, 1, &w, &err), 0);
    assert_int_equal(pipeline_runlog_append(w, "last\n", 5, NULL, &err), 0);
    pipeline_runlog_close_later(w);
    pipeline_runlog_free(log);
    next = 0;
    got = read_all(f, id, 3, 1, &next);
    assert_string_equal(got, "last\n");
    free(got);
    free(id);
}

static void test_logs(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    char *id = create(f, "ci", NULL, 0);
    struct pipeline_runlog *log = NULL;
    struct pipeline_runlog_writer *w = NULL;
    assert_int_equal(pipeline_runlog_new(f->st, id, 0, &log, &err), 0);
    assert_int_equal(pipeline_runlog_open(log, 0, 1, &w, &err), 0);
    int trunc = 9;
    assert_int_equal(pipeline_runlog_append(w, "line 1\n", 7, &trunc, &err), 0);
    assert_int_equal(trunc, 0);
    /* buffered: a follower sees nothing yet, and keeps its place */
    uint64_t next = 0;
    char *got = read_all(f, id, 0, 1, &next);
    assert_string_equal(got, "");
    assert_int_equal(next, 0);
    free(got);
    assert_int_equal(pipeline_runlog_flush(w, &err), 0);
    got = read_all(f, id, 0, 1, &next);
    assert_string_equal(got, "line 1\n");
    assert_int_equal(next, 1);
    free(got);
    /* a second passes: the next append writes what is buffered by itself */
    assert_int_equal(pipeline_runlog_append(w, "line 2\n", 7, NULL, &err), 0);
    usleep((PIPELINE_RUNLOG_FLUSH_MS + 50) * 1000);
    assert_int_equal(pipeline_runlog_append(w, "line 3\n", 7, NULL, &err), 0);
    got = read_all(f, id, 0, 1, &next);
    assert_string_equal(got, "line 2\nline 3\n");
    free(got);
    /* a big append goes out in whole chunks at once; a bounded read stops
     * after max bytes, at a chunk boundary, and resumes */
    size_t big = 3 * PIPELINE_RUNLOG_CHUNK_MAX + 100;
    char *data = xmalloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)('a' + i % 26);
    assert_int_equal(pipeline_runlog_append(w, data, big, NULL, &err), 0);
    struct buf b = BUF_INIT;
    uint64_t before = next;
    assert_int_equal(pipeline_runlog_read(f->st, id, 0, 1, &next, 1, &b, &err), 0);
    assert_int_equal(next, before + 1);
    assert_int_equal(pipeline_runlog_read(f->st, id, 0, 1, &next, 0, &b, &err), 0);
    assert_int_equal(b.len, 3 * PIPELINE_RUNLOG_CHUNK_MAX); /* the last 100 bytes wait */
    assert_int_equal(pipeline_runlog_close(w, &err), 0);
    assert_int_equal(pipeline_runlog_read(f->st, id, 0, 1, &next, 0, &b, &err), 0);
    assert_int_equal(b.len, big);
    assert_memory_equal(b.data, data, big);
    buf_free(&b);
    /* reopening the stream goes on after its chunks */
    assert_int_equal(pipeline_runlog_open(log, 0, 1, &w, &err), 0);
    assert_int_equal(pipeline_runlog_append(w, "again\n", 6, NULL, &err), 0);
    assert_int_equal(pipeline_runlog_close(w, &err), 0);
    got = read_all(f, id, 0, 1, &next);
    assert_string_equal(got, "again\n");
    free(got);
    /* another stream, and the list of streams in job, step order */
    assert_int_equal(pipeline_runlog_open(log, 2, 0, &w, &err), 0);
    assert_int_equal(pipeline_runlog_append(w, "setup\n", 6, NULL, &err), 0);
    assert_int_equal(pipeline_runlog_close(w, &err), 0);
    assert_int_equal(pipeline_runlog_open(log, 0, 0, &w, &err), 0);
    assert_int_equal(pipeline_runlog_append(w, "x", 1, NULL, &err), 0);
    assert_int_equal(pipeline_runlog_close(w, &err), 0);
    struct pipeline_runlog_stream *streams = NULL;
    size_t n = 0;
    assert_int_equal(pipeline_runlog_streams(f->st, id, &streams, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_true(streams[0].job == 0 && streams[0].step == 0);
    assert_true(streams[1].job == 0 && streams[1].step == 1);
    assert_true(streams[2].job == 2 && streams[2].step == 0);
    free(streams);
    /* two writers of one stream: the second one's chunk is refused, and
     * nothing of the first one's is overwritten */
    struct pipeline_runlog_writer *w2 = NULL;
    assert_int_equal(pipeline_runlog_open(log, 3, 0, &w, &err), 0);
    assert_int_equal(pipeline_runlog_open(log, 3, 0, &w2, &err), 0);
    assert_int_equal(pipeline_runlog_append(w, "first\n", 6, NULL, &err), 0);
    assert_int_equal(pipeline_runlog_append(w2, "second\n", 7, NULL, &err), 0);
    assert_int_equal(pipeline_runlog_close(w, &err), 0);
    assert_int_equal(pipeline_runlog_close(w2, &err), SW_EEXIST);
    assert_non_null(strstr(err.msg, "another process is writing this log"));
    next = 0;
    got = read_all(f, id, 3, 0, &next);
    assert_string_equal(got, "first\n");
    free(got);
    /* bad stream numbers and ids are refused */
    assert_int_equal(pipeline_runlog_open(log, 10000, 0, &w, &err), SW_EINVAL);
    next = 0;
    b = (struct buf)BUF_INIT;
    assert_int_equal(pipeline_runlog_read(f->st, "../x", 0, 0, &next, 0, &b, &err), SW_EINVAL);
    /* a forged chunk larger than a chunk is refused, and nothing of it kept */
    char *key = xasprintf("runs/%s/logs/0005-0000/00000000", id);
    char *fat = xmalloc(PIPELINE_RUNLOG_CHUNK_MAX + 1);
    memset(fat, 'z', PIPELINE_RUNLOG_CHUNK_MAX + 1);
    assert_int_equal(store_put(f->st, key, fat, PIPELINE_RUNLOG_CHUNK_MAX + 1, 0, NULL, NULL), 0);
    buf_adds(&b, "kept");
    assert_int_equal(pipeline_runlog_read(f->st, id, 5, 0, &next, 0, &b, &err), SW_EINVAL);
    assert_string_equal(b.data, "kept");
    assert_int_equal(next, 0);
    buf_free(&b);
    free(fat), free(key), free(data);
    pipeline_runlog_free(log);
    free(id);
}

/* The run's logs together stop at the limit: the stream that hits it, and
 * every other one that writes after, says so once; nothing more is kept. */
static void test_log_limit(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    char *id = create(f, "ci", NULL, 0);
    struct pipeline_runlog *log = NULL;
    struct pipeline_runlog_writer *w1 = NULL, *w2 = NULL;
    assert_int_equal(pipeline_runlog_new(f->st, id, 1000, &log, &err), 0);
    assert_int_equal(pipeline_runlog_open(log, 0, 1, &w1, &err), 0);
    assert_int_equal(pipeline_runlog_open(log, 0, 2, &w2, &err), 0);
    char line[100];
    memset(line, 'y', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\n';
    int trunc = 0;
    for (int i = 0; i < 6; i++)
        assert_int_equal(pipeline_runlog_append(w1, line, sizeof(line), &trunc, &err), 0);
    assert_int_equal(trunc, 0);
    /* a step that prints without end: 10 MB in 100-byte lines */
    for (int i = 0; i < 100000; i++)
        assert_int_equal(pipeline_runlog_append(w2, line, sizeof(line), &trunc, &err), 0);
    assert_int_equal(trunc, 1);
    assert_int_equal(pipeline_runlog_append(w1, line, sizeof(line), &trunc, &err), 0);
    assert_int_equal(trunc, 1);
    assert_int_equal(pipeline_runlog_close(w1, &err), 0);
    assert_int_equal(pipeline_runlog_close(w2, &err), 0);
    uint64_t n1 = 0, n2 = 0;
    char *a = read_all(f, id, 0, 1, &n1), *b = read_all(f, id, 0, 2, &n2);
    const char *note = "[slipway] the logs of this run reached their limit of 1000 bytes";
    assert_non_null(strstr(a, note));
    assert_non_null(strstr(b, note));
    assert_null(strstr(strstr(b, note) + 1, note)); /* once */
    char *na = strstr(a, note), *nb = strstr(b, note);
    assert_int_equal((size_t)(na - a) + (size_t)(nb - b), 1000);
    assert_true(strlen(a) + strlen(b) < 1200);
    free(a), free(b);
    pipeline_runlog_free(log);
    free(id);
}

/* ---- jobs in concurrency groups ------------------------------------------------------------ */

/* A claimed run with one job (queued), as the runner holds it. */
static struct pipeline_run *claimed_with_job(struct fixture *f, const char *group, const char *who)
{
    struct pipeline_run *s = spec("ci", group, 0), *r = NULL;
    struct sw_err err = {0};
    struct pipeline_run_job *j = pipeline_run_job_add(s);
    j->id = xstrdup("deploy");
    j->name = xstrdup("deploy");
    assert_int_equal(pipeline_run_create(f->st, s, &r, &err), 0);
    struct pipeline_run *m = claim(f, r->id, who);
    pipeline_run_free(s);
    pipeline_run_free(r);
    return m;
}

static int set_job(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    r->jobs[0].status = *(enum pipeline_job_status *)arg;
    r->jobs[0].conclusion = r->jobs[0].status == PIPELINE_JOB_COMPLETED
                                ? PIPELINE_CONCLUSION_SUCCESS
                                : PIPELINE_CONCLUSION_NONE;
    return 0;
}

static void job_status(struct fixture *f, struct pipeline_run *m, enum pipeline_job_status st)
{
    struct sw_err err = {0};
    assert_int_equal(pipeline_run_update(f->st, m, set_job, &st, &err), 0);
}

static int drop_job_cancel(struct pipeline_run *r, void *arg, struct sw_err *err)
{
    r->jobs[0].cancel_requested = 0;
    return 0;
}

/* enter: the state, and *why checked against want (a substring; NULL: none) */
static void enter(struct fixture *f, struct pipeline_run *m, const char *group, int cip,
                  enum pipeline_job_admit want, const char *why_has)
{
    enum pipeline_job_admit st;
    char *why = NULL;
    struct sw_err err = {0};
    int rc = pipeline_job_group_enter(f->st, m->id, 0, group, cip, &st, &why, &err);
    if (rc)
        print_message("# enter: %s\n", err.msg);
    assert_int_equal(rc, 0);
    if (st != want)
        fail_msg("%s/0 in %s: state %d, want %d (%s)", m->id, group, st, want, why ? why : "");
    if (why_has && (!why || !strstr(why, why_has)))
        fail_msg("why: '%s', want '%s'", why ? why : "(null)", why_has);
    if (!why_has)
        assert_null(why);
    free(why);
}

/* GitHub's rule for jobs, on the documents runs use: one running, one pending
 * per group across runs; a newer pending job displaces the older one (its
 * record says so, and its next look stops it); cancel-in-progress asks the
 * running job to stop; runs and jobs share group names; a job whose own run
 * holds the group is a deadlock, stopped at once. */
static void test_job_groups(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    struct pipeline_run *a = claimed_with_job(f, NULL, "ra");
    struct pipeline_run *b = claimed_with_job(f, NULL, "rb");
    struct pipeline_run *c = claimed_with_job(f, NULL, "rc");
    struct pipeline_run *d = claimed_with_job(f, NULL, "rd");
    char *wa = xasprintf("waiting for job 0 of run %s in concurrency group prod", a->id);

    enter(f, a, "prod", 0, PIPELINE_JOB_GO, NULL);
    job_status(f, a, PIPELINE_JOB_RUNNING);
    enter(f, a, "prod", 0, PIPELINE_JOB_GO, NULL);    /* asking again changes nothing */
    enter(f, b, "PROD", 0, PIPELINE_JOB_WAIT, a->id); /* names ignore case */
    enter(f, b, "prod", 0, PIPELINE_JOB_WAIT, wa);
    /* c arrives: b, pending, is displaced */
    enter(f, c, "prod", 0, PIPELINE_JOB_WAIT, wa);
    struct pipeline_run *l = load(f, b->id);
    assert_int_equal(l->jobs[0].cancel_requested, 1);
    assert_string_equal(l->jobs[0].reason,
                        "Canceling since a higher priority waiting request for 'prod' exists");
    pipeline_run_free(l);
    enter(f, b, "prod", 0, PIPELINE_JOB_STOP, "higher priority waiting request for 'prod'");
    /* the holder's runner may not drop the request from the record */
    assert_int_equal(pipeline_run_update(f->st, b, drop_job_cancel, NULL, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "cancel request"));
    l = load(f, a->id);
    assert_int_equal(l->jobs[0].cancel_requested, 0); /* without cancel-in-progress */
    pipeline_run_free(l);

    /* d with cancel-in-progress: the running a is asked to stop, c displaced */
    enter(f, d, "prod", 1, PIPELINE_JOB_WAIT, wa);
    l = load(f, a->id);
    assert_int_equal(l->jobs[0].cancel_requested, 1);
    assert_non_null(strstr(l->jobs[0].reason, "higher priority waiting request"));
    pipeline_run_free(l);
    enter(f, c, "prod", 0, PIPELINE_JOB_STOP, "higher priority");
    /* a's runner stops it (its update keeps the request); d takes its place */
    assert_int_equal(pipeline_run_heartbeat(f->st, a, &err), 0);
    assert_int_equal(a->jobs[0].cancel_requested, 1);
    enter(f, d, "prod", 1, PIPELINE_JOB_WAIT, wa);
    job_status(f, a, PIPELINE_JOB_COMPLETED);
    enter(f, d, "prod", 1, PIPELINE_JOB_GO, NULL);
    job_status(f, d, PIPELINE_JOB_RUNNING);

    /* a run of the same group waits for the job, naming it */
    char *r5 = create(f, "ci", "prod", 0);
    l = load(f, r5);
    assert_int_equal(l->status, PIPELINE_RUN_QUEUED);
    assert_string_equal(l->waiting_for, d->id);
    char *wd = xasprintf("waiting for job 0 of run %s in concurrency group prod", d->id);
    assert_string_equal(l->reason, wd);
    pipeline_run_free(l);
    struct pipeline_run *m5 = NULL;
    assert_int_equal(pipeline_run_claim(f->st, r5, "r5", 0, &m5, &err), PIPELINE_EWAITING);
    /* the job leaves: the run is promoted and runs */
    pipeline_job_group_leave(f->st, d->id, 0, "prod");
    m5 = claim(f, r5, "r5");

    /* r5 holds "prod" at the run level: a job of r5 in "prod" would wait for
     * its own run */
    enter(f, m5, "prod", 0, PIPELINE_JOB_STOP, "deadlock for concurrency group 'prod'");

    /* a job of a run that ended holds nothing */
    struct pipeline_run *e = claimed_with_job(f, NULL, "re");
    struct pipeline_run *g = claimed_with_job(f, NULL, "rg");
    enter(f, e, "solo", 0, PIPELINE_JOB_GO, NULL);
    enter(f, g, "solo", 0, PIPELINE_JOB_WAIT, e->id);
    assert_int_equal(pipeline_run_finish(f->st, e, PIPELINE_CONCLUSION_FAILURE, "gone", &err), 0);
    enter(f, g, "solo", 0, PIPELINE_JOB_GO, NULL);

    /* bad input */
    enum pipeline_job_admit st;
    char *why = NULL;
    assert_int_equal(pipeline_job_group_enter(f->st, "../x", 0, "g", 0, &st, &why, &err),
                     SW_EINVAL);
    assert_int_equal(pipeline_job_group_enter(f->st, g->id, 0, "a\nb", 0, &st, &why, &err),
                     SW_EINVAL);
    assert_null(why);

    free(wa), free(wd), free(r5);
    pipeline_run_free(a), pipeline_run_free(b), pipeline_run_free(c), pipeline_run_free(d);
    pipeline_run_free(e), pipeline_run_free(g), pipeline_run_free(m5);
}

/* A group document naming a job member is read like one naming runs; one
 * naming a job index out of bounds or a path is refused and overwritten. */
static void test_job_group_documents(void **state)
{
    struct fixture *f = *state;
    struct pipeline_run *a = claimed_with_job(f, NULL, "ra");
    struct pipeline_run *b = claimed_with_job(f, NULL, "rb");
    struct sw_err err = {0};
    char key[200], doc[400];
    /* b joins: the group's document is the one under runs/groups/ */
    enter(f, b, "forged", 0, PIPELINE_JOB_GO, NULL);
    struct store_list l = {0};
    assert_int_equal(store_list_all(f->st, "runs/groups/", &l, NULL), 0);
    assert_int_equal(l.n, 1);
    snprintf(key, sizeof(key), "%s", l.keys[0]);
    store_list_free(&l);
    enter(f, a, "forged", 0, PIPELINE_JOB_WAIT, b->id);
    pipeline_job_group_leave(f->st, a->id, 0, "forged");
    /* each would be job 0 of b to a lax reader, which would make a wait */
    const char *bad[] = {"%s/00", "%s/0 ", "%s/+0", "%s//0", "%s/0/", "%s/../0", "%s/1024"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char holder[200];
        snprintf(holder, sizeof(holder), bad[i], b->id);
        snprintf(doc, sizeof(doc),
                 "{\"group\":\"forged\",\"holder\":\"%s\",\"pending\":null,"
                 "\"generation\":1}",
                 holder);
        assert_int_equal(store_delete(f->st, key, NULL, NULL), 0);
        assert_int_equal(store_put_if_match(f->st, key, doc, strlen(doc), NULL, NULL, &err), 0);
        /* refused, so the group is free */
        enter(f, a, "forged", 0, PIPELINE_JOB_GO, NULL);
        pipeline_job_group_leave(f->st, a->id, 0, "forged");
    }
    pipeline_run_free(a);
    pipeline_run_free(b);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_round_trip),
        T(test_create_refuses),
        T(test_hostile_documents),
        cmocka_unit_test(test_fuzz_seeds_valid),
        T(test_claim_race_threads),
        T(test_claim_next_processes),
        T(test_lease_expiry),
        T(test_dead_holder),
        T(test_live_holder_kept),
        T(test_update_no_lost_writes),
        T(test_cancel),
        T(test_group_cancel_in_progress),
        T(test_group_queue),
        T(test_group_race),
        T(test_group_heal),
        T(test_group_late_join),
        T(test_crash_repairs),
        T(test_list),
        T(test_logs),
        T(test_logs_close_later),
        T(test_log_limit),
        T(test_job_groups),
        T(test_job_group_documents),
    };
    return cmocka_run_group_tests_name("pipeline_run", tests, NULL, NULL);
}
