/*
 * libFuzzer target for the run record parser (pipeline_run_parse in
 * src/pipeline/run.c): every input is a runs/<id>/run.json someone else wrote
 * into a shared bucket. It is read under the key of the id it names (when that
 * is a run id), so real documents pass; the same document under another run's
 * key is refused. Beyond the sanitizers (and ASan's leak check), an accepted
 * record must keep what every writer keeps: statuses and conclusions from
 * their lists and consistent with each other, a running run claimed, ids,
 * names and text of their forms, counts within their bounds; its views for
 * `run view` and `run list` encode; and writing it back with
 * pipeline_run_dump gives a document that parses again and dumps to the same
 * bytes (the dump is a fixed point). A refused document names the key and
 * says why.
 */
#include "fuzz.h"
#include "pipeline/pipeline.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char OTHER[] = "run-20260101-000000-000-000000";

static int parse(const char *id, const char *data, size_t len, struct pipeline_run **out)
{
    char key[128];
    struct sw_err err;
    memset(&err, 0, sizeof(err));
    snprintf(key, sizeof(key), "runs/%s/run.json", id);
    *out = NULL;
    int rc = pipeline_run_parse(key, data, len, out, &err);
    if (rc) {
        CHECK(rc == SW_EINVAL && err.code == rc);
        CHECK(*out == NULL);
        CHECK(strncmp(err.msg, key, strlen(key)) == 0 && err.msg[strlen(key)] == ':');
        CHECK(strlen(err.msg) > strlen(key) + 2);
    }
    return rc;
}

static int conclusion_ok(enum pipeline_conclusion c)
{
    return c >= PIPELINE_CONCLUSION_NONE && c <= PIPELINE_CONCLUSION_SKIPPED;
}

static void check_text(const char *s, size_t max)
{
    CHECK(!s || text_valid(s, max, 0));
}

static void check_run(const struct pipeline_run *r)
{
    CHECK(pipeline_run_id_valid(r->id));
    CHECK(r->generation >= 1 && r->generation <= ((int64_t)1 << 50));
    CHECK(r->status >= PIPELINE_RUN_QUEUED && r->status <= PIPELINE_RUN_CANCELLED);
    CHECK(conclusion_ok(r->conclusion) && r->conclusion != PIPELINE_CONCLUSION_SKIPPED);
    CHECK(pipeline_run_status_ended(r->status) == (r->conclusion != PIPELINE_CONCLUSION_NONE));
    CHECK(!pipeline_run_status_ended(r->status) || r->ended_ms > 0);
    if (r->status == PIPELINE_RUN_RUNNING || r->status == PIPELINE_RUN_WAITING)
        CHECK(r->claim.runner && r->started_ms > 0);
    if (r->status == PIPELINE_RUN_QUEUED)
        CHECK(!r->claim.runner);
    if (r->claim.runner) {
        CHECK(pipeline_runner_id_valid(r->claim.runner));
        CHECK(r->claim.host && text_valid(r->claim.host, 255, 0));
        CHECK(r->claim.pid >= 1 && r->claim.pid <= INT32_MAX);
        CHECK(r->claim.lease_ms >= 1);
    }
    CHECK(r->workflow && text_valid(r->workflow, 1024, 0));
    CHECK(r->event && r->event[0]);
    CHECK(!r->workflow_file || (r->workflow_file[0] != '/' && !strstr(r->workflow_file, "..")));
    check_text(r->ref, 1024);
    check_text(r->actor, 256);
    check_text(r->reason, 4096);
    check_text(r->group, 1024);
    CHECK(!r->waiting_for[0] ||
          (pipeline_run_id_valid(r->waiting_for) && r->group && r->status == PIPELINE_RUN_QUEUED));
    CHECK(!r->inputs || json_is_object(r->inputs));
    CHECK(r->njobs <= PIPELINE_RUN_MAX_JOBS);
    for (size_t i = 0; i < r->njobs; i++) {
        const struct pipeline_run_job *j = &r->jobs[i];
        CHECK(j->id && j->id[0] && strlen(j->id) <= 100 && !strchr(j->id, '/'));
        CHECK(j->name && text_valid(j->name, 1024, 0));
        CHECK(j->status >= PIPELINE_JOB_QUEUED && j->status <= PIPELINE_JOB_COMPLETED);
        CHECK(conclusion_ok(j->conclusion));
        CHECK((j->status == PIPELINE_JOB_COMPLETED) == (j->conclusion != PIPELINE_CONCLUSION_NONE));
        CHECK(!j->matrix || json_is_object(j->matrix));
        CHECK(!j->outputs || json_is_object(j->outputs));
        CHECK(j->nsteps <= PIPELINE_RUN_MAX_STEPS);
        for (size_t k = 0; k < j->nsteps; k++) {
            CHECK(j->steps[k].name && text_valid(j->steps[k].name, 1024, 0));
            CHECK(conclusion_ok(j->steps[k].outcome) && conclusion_ok(j->steps[k].conclusion));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    char id[PIPELINE_RUN_ID_SIZE];
    struct pipeline_run *r, *t;

    /* Read it under the key of the run it names, as a reader of that run would. */
    snprintf(id, sizeof(id), "%s", OTHER);
    json_t *root = json_loadb(buf, size, 0, NULL);
    const char *named = json_string_value(json_object_get(root, "id"));
    if (named && pipeline_run_id_valid(named))
        snprintf(id, sizeof(id), "%s", named);
    json_decref(root);

    if (parse(id, buf, size, &r))
        return 0;
    check_run(r);
    CHECK(!strcmp(r->id, id));

    /* Under another run's key it is not that run. */
    CHECK(parse(strcmp(id, OTHER) ? OTHER : "run-20260101-000000-000-000001", buf, size, &t) != 0);

    /* The views encode. */
    json_t *v = pipeline_run_json(r, 1);
    CHECK(v != NULL);
    json_decref(v);
    v = pipeline_run_json(r, 0);
    CHECK(v != NULL);
    json_decref(v);

    /* Written back, it reads again as the same record: dumping is a fixed point. */
    char *doc = pipeline_run_dump(r);
    CHECK(doc != NULL);
    if (parse(id, doc, strlen(doc), &t))
        fprintf(stderr, "the dump of an accepted record is refused:\n%s\n", doc);
    CHECK(t != NULL);
    check_run(t);
    char *again = pipeline_run_dump(t);
    CHECK(again != NULL);
    if (strcmp(doc, again) != 0)
        fprintf(stderr, "dump changed:\n%s\n---\n%s\n", doc, again);
    CHECK(!strcmp(doc, again));

    free(again);
    free(doc);
    pipeline_run_free(t);
    pipeline_run_free(r);
    return 0;
}
