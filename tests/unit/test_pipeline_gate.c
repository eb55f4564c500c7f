/* Unit tests for gates (src/pipeline/gate.c): the decision of a gate from its
 * decisions, deploy_from against refs, the checks of `slipway approve`, whether
 * a run passed an environment's gate, and a gate in the run record (written,
 * read back, refused when forged). */
#include "deploy/deploy.h"
#include "pipeline/pipeline.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define T0 1800000000000LL /* waiting since */
#define HOUR 3600000LL

static char *approvers3[] = {"alice", "bob", "carol"};

/* A gate waiting since T0 for `required` of alice, bob, carol for an hour. */
static struct pipeline_gate *gate_new(int required)
{
    struct pipeline_gate *g = calloc(1, sizeof(*g));
    g->environment = strdup("staging");
    g->required = required;
    g->napprovers = 3;
    g->approvers = calloc(3, sizeof(char *));
    for (size_t i = 0; i < 3; i++)
        g->approvers[i] = strdup(approvers3[i]);
    g->timeout_ms = HOUR;
    g->waiting_since_ms = T0;
    return g;
}

static void decide_add(struct pipeline_gate *g, const char *by, const char *os_user, int reject,
                       int64_t at)
{
    g->decisions = realloc(g->decisions, (g->ndecisions + 1) * sizeof(*g->decisions));
    struct pipeline_gate_decision *d = &g->decisions[g->ndecisions++];
    memset(d, 0, sizeof(*d));
    d->by = strdup(by);
    d->os_user = os_user ? strdup(os_user) : NULL;
    d->reject = reject;
    d->at_ms = at;
}

static void test_decide(void **state)
{
    (void)state;
    const struct pipeline_gate_decision *d = NULL;
    size_t n = 9;

    struct pipeline_gate *g = gate_new(2);
    assert_int_equal(pipeline_gate_decide(g, "tester", T0 + 1, &d, &n), PIPELINE_GATE_WAITING);
    assert_null(d);
    assert_int_equal(n, 0);
    /* someone not an approver, and the actor, do not count; nor does alice twice */
    decide_add(g, "mallory", "mallory", 0, T0 + 1);
    decide_add(g, "alice", "alice", 0, T0 + 2);
    decide_add(g, "alice", "alice", 0, T0 + 3);
    assert_int_equal(pipeline_gate_decide(g, "alice", T0 + 4, &d, &n), PIPELINE_GATE_WAITING);
    assert_int_equal(n, 0);
    assert_int_equal(pipeline_gate_decide(g, "tester", T0 + 4, &d, &n), PIPELINE_GATE_WAITING);
    assert_int_equal(n, 1);
    /* --as by an OS user who is not an approver does not count */
    decide_add(g, "bob", "mallory", 0, T0 + 5);
    assert_int_equal(pipeline_gate_decide(g, "tester", T0 + 6, &d, &n), PIPELINE_GATE_WAITING);
    /* the actor recording for another does not count either */
    decide_add(g, "carol", "tester", 0, T0 + 6);
    assert_int_equal(pipeline_gate_decide(g, "tester", T0 + 7, &d, &n), PIPELINE_GATE_WAITING);
    assert_int_equal(n, 1);
    /* allowing self-approval changes nothing here: carol's was recorded by
     * tester, who is not an approver */
    g->allow_self_approval = 1;
    assert_int_equal(pipeline_gate_decide(g, "tester", T0 + 7, &d, &n), PIPELINE_GATE_WAITING);
    g->allow_self_approval = 0;
    /* the second distinct approver passes it */
    decide_add(g, "bob", "bob", 0, T0 + 8);
    assert_int_equal(pipeline_gate_decide(g, "tester", T0 + 9, &d, &n), PIPELINE_GATE_APPROVED);
    assert_non_null(d);
    assert_string_equal(d->by, "bob");
    assert_int_equal(n, 2);
    /* decided: a timeout after that changes nothing */
    assert_int_equal(pipeline_gate_decide(g, "tester", T0 + 2 * HOUR, NULL, NULL),
                     PIPELINE_GATE_APPROVED);
    pipeline_gate_free(g);

    /* a rejection before the approvals are in fails it */
    g = gate_new(2);
    decide_add(g, "alice", NULL, 0, T0 + 1);
    decide_add(g, "carol", NULL, 1, T0 + 2);
    decide_add(g, "bob", NULL, 0, T0 + 3);
    assert_int_equal(pipeline_gate_decide(g, "tester", T0 + 4, &d, &n), PIPELINE_GATE_REJECTED);
    assert_string_equal(d->by, "carol");
    pipeline_gate_free(g);

    /* ... one after is too late: the gate had passed */
    g = gate_new(1);
    decide_add(g, "alice", NULL, 0, T0 + 1);
    decide_add(g, "carol", NULL, 1, T0 + 2);
    assert_int_equal(pipeline_gate_decide(g, "tester", T0 + 4, &d, &n), PIPELINE_GATE_APPROVED);
    pipeline_gate_free(g);

    /* the actor's own rejection does not count; allowed, it does */
    g = gate_new(1);
    decide_add(g, "alice", NULL, 1, T0 + 1);
    assert_int_equal(pipeline_gate_decide(g, "alice", T0 + 2, NULL, NULL), PIPELINE_GATE_WAITING);
    g->allow_self_approval = 1;
    assert_int_equal(pipeline_gate_decide(g, "alice", T0 + 2, NULL, NULL), PIPELINE_GATE_REJECTED);
    pipeline_gate_free(g);

    /* timeout: at waiting_since + timeout, and a decision then does not count */
    g = gate_new(1);
    assert_int_equal(pipeline_gate_decide(g, "tester", T0 + HOUR - 1, &d, NULL),
                     PIPELINE_GATE_WAITING);
    assert_int_equal(pipeline_gate_decide(g, "tester", T0 + HOUR, &d, NULL),
                     PIPELINE_GATE_TIMED_OUT);
    assert_null(d);
    decide_add(g, "alice", NULL, 0, T0 + HOUR);
    assert_int_equal(pipeline_gate_decide(g, "tester", T0 + HOUR + 5, &d, NULL),
                     PIPELINE_GATE_TIMED_OUT);
    pipeline_gate_free(g);

    assert_string_equal(pipeline_gate_state_name(PIPELINE_GATE_TIMED_OUT), "timed_out");
}

static void test_ref_check(void **state)
{
    (void)state;
    struct env_ref_pattern br[] = {{"main", 8, 14}, {"release/**", 8, 20}};
    struct env_ref_pattern tg[] = {{"v*.*.*", 9, 10}};
    struct env_deploy_from d = {1, br, tg, 2, 1};
    struct sw_err err = {0};

    assert_int_equal(pipeline_gate_ref_check(NULL, "staging", "s.yml", "refs/heads/x", &err), 0);
    struct env_deploy_from none = {0};
    assert_int_equal(pipeline_gate_ref_check(&none, "staging", "s.yml", "refs/heads/x", &err), 0);
    assert_int_equal(pipeline_gate_ref_check(&d, "staging", "s.yml", "refs/heads/main", &err), 0);
    assert_int_equal(
        pipeline_gate_ref_check(&d, "staging", "s.yml", "refs/heads/release/1/2", &err), 0);
    assert_int_equal(pipeline_gate_ref_check(&d, "staging", "s.yml", "refs/tags/v1.2.3", &err), 0);
    assert_int_equal(pipeline_gate_ref_check(&d, "staging", "s.yml", "refs/heads/feature", &err),
                     PIPELINE_EGATE);
    assert_string_equal(err.msg, "ref refs/heads/feature may not deploy to environment staging "
                                 "(deploy_from branches: main, release/**; tags: v*.*.*)");
    /* a branch named like an allowed tag is still a branch */
    assert_int_equal(pipeline_gate_ref_check(&d, "staging", "s.yml", "refs/heads/v1.2.3", &err),
                     PIPELINE_EGATE);
    assert_int_equal(pipeline_gate_ref_check(&d, "staging", "s.yml", "refs/tags/main", &err),
                     PIPELINE_EGATE);
    assert_int_equal(pipeline_gate_ref_check(&d, "staging", "s.yml", "refs/pull/1/merge", &err),
                     PIPELINE_EGATE);
    assert_non_null(strstr(err.msg, "only branches and tags may deploy"));
    /* only tags: no branch */
    struct env_deploy_from tags_only = {1, NULL, tg, 0, 1};
    assert_int_equal(pipeline_gate_ref_check(&tags_only, "prod", "p.yml", "refs/heads/main", &err),
                     PIPELINE_EGATE);
    assert_non_null(strstr(err.msg, "branches: none"));
    /* a bad pattern is named where it is written, whichever ref comes */
    struct env_ref_pattern bad[] = {{"v[1-", 3, 9}};
    struct env_deploy_from b = {1, br, bad, 2, 1};
    assert_int_equal(pipeline_gate_ref_check(&b, "staging", "s.yml", "refs/heads/main", &err),
                     SW_EINVAL);
    assert_non_null(strstr(err.msg, "s.yml:3:9: deploy_from.tags: "));
}

/* A run of actor tester with build (completed) and deploy waiting at a gate. */
static struct pipeline_run *run_new(void)
{
    struct pipeline_run *r = calloc(1, sizeof(*r));
    strcpy(r->id, "run-20261205-142233-512-9f3a1c");
    r->actor = strdup("tester");
    r->status = PIPELINE_RUN_WAITING;
    struct pipeline_run_job *j = pipeline_run_job_add(r);
    j->id = strdup("build");
    j->name = strdup("build");
    j->status = PIPELINE_JOB_COMPLETED;
    j->conclusion = PIPELINE_CONCLUSION_SUCCESS;
    j = pipeline_run_job_add(r);
    j->id = strdup("deploy");
    j->name = strdup("deploy");
    j->status = PIPELINE_JOB_WAITING;
    j->gate = gate_new(1);
    free(j->gate->approvers[2]);
    j->gate->approvers[2] = strdup("tester");
    return r;
}

static int approve(const struct pipeline_run *r, const char *job, const char *os_user,
                   const char *as, struct sw_err *err)
{
    struct pipeline_approve q = {r->id, job, os_user, as, 0, NULL, T0 + 10};
    size_t at = 99;
    int rc = pipeline_gate_approve_check(r, &q, &at, err);
    if (rc == 0)
        assert_int_equal(at, 1);
    return rc;
}

static void test_approve_check(void **state)
{
    (void)state;
    struct pipeline_run *r = run_new();
    struct sw_err err = {0};

    assert_int_equal(approve(r, NULL, "alice", NULL, &err), 0);
    assert_int_equal(approve(r, "deploy", "alice", "bob", &err), 0);
    assert_int_equal(approve(r, NULL, "mallory", NULL, &err), PIPELINE_EGATE);
    assert_string_equal(err.msg, "mallory is not an approver of environment staging (approvers: "
                                 "alice, bob, tester)");
    assert_int_equal(approve(r, NULL, "alice", "mallory", &err), PIPELINE_EGATE);
    assert_non_null(strstr(err.msg, "mallory is not an approver"));
    assert_int_equal(approve(r, NULL, "mallory", "alice", &err), PIPELINE_EGATE);
    assert_non_null(strstr(err.msg, "--as alice: you (mallory) are not an approver"));
    /* self-approval, directly or through --as either way */
    assert_int_equal(approve(r, NULL, "tester", NULL, &err), PIPELINE_EGATE);
    assert_non_null(strstr(err.msg, "tester triggered run"));
    assert_int_equal(approve(r, NULL, "alice", "tester", &err), PIPELINE_EGATE);
    assert_int_equal(approve(r, NULL, "tester", "alice", &err), PIPELINE_EGATE);
    r->jobs[1].gate->allow_self_approval = 1;
    assert_int_equal(approve(r, NULL, "tester", NULL, &err), 0);
    r->jobs[1].gate->allow_self_approval = 0;
    /* twice */
    decide_add(r->jobs[1].gate, "bob", "alice", 0, T0 + 1);
    assert_int_equal(approve(r, NULL, "bob", NULL, &err), PIPELINE_EGATE);
    assert_string_equal(err.msg, "bob has already approved job deploy of run "
                                 "run-20261205-142233-512-9f3a1c");
    /* jobs */
    assert_int_equal(approve(r, "build", "alice", NULL, &err), PIPELINE_EGATE);
    assert_non_null(strstr(err.msg, "job build of run run-20261205-142233-512-9f3a1c is not "
                                    "waiting at a gate (it is success)"));
    assert_int_equal(approve(r, "nope", "alice", NULL, &err), PIPELINE_EGATE);
    assert_non_null(strstr(err.msg, "has no job nope"));
    /* two waiting: --job needed, and the message lists them */
    struct pipeline_run_job *j = pipeline_run_job_add(r);
    j->id = strdup("deploy2");
    j->name = strdup("deploy2");
    j->status = PIPELINE_JOB_WAITING;
    j->gate = gate_new(1);
    assert_int_equal(approve(r, NULL, "alice", NULL, &err), PIPELINE_EGATE);
    assert_string_equal(err.msg, "2 jobs of run run-20261205-142233-512-9f3a1c wait at gates: "
                                 "deploy (staging), deploy2 (staging); say which with --job NAME");
    assert_int_equal(approve(r, "deploy", "alice", NULL, &err), 0);
    /* timed out (not recorded yet) */
    r->jobs[1].gate->timeout_ms = 5;
    assert_int_equal(approve(r, "deploy", "alice", NULL, &err), PIPELINE_EGATE);
    assert_non_null(strstr(err.msg, "timed out at"));
    r->jobs[1].gate->timeout_ms = HOUR;
    /* a comment is one line */
    struct pipeline_approve q = {r->id, "deploy", "alice", NULL, 0, "two\nlines", T0 + 10};
    assert_int_equal(pipeline_gate_approve_check(r, &q, NULL, &err), PIPELINE_EGATE);
    assert_non_null(strstr(err.msg, "--comment"));
    /* decided, or nothing waiting, or ended */
    r->jobs[1].gate->state = PIPELINE_GATE_APPROVED;
    r->jobs[2].status = PIPELINE_JOB_COMPLETED;
    r->jobs[2].conclusion = PIPELINE_CONCLUSION_CANCELLED;
    r->status = PIPELINE_RUN_RUNNING;
    assert_int_equal(approve(r, NULL, "alice", NULL, &err), PIPELINE_EGATE);
    assert_string_equal(err.msg, "run run-20261205-142233-512-9f3a1c is not waiting at a gate "
                                 "(it is running)");
    r->status = PIPELINE_RUN_SUCCEEDED;
    assert_int_equal(approve(r, NULL, "alice", NULL, &err), PIPELINE_EENDED);
    pipeline_run_free(r);
}

/* A run passed an environment's gate when a job's gate for it was decided
 * approved and the decisions, judged by the environment file's rules (not
 * the record's), approve it. */
static void test_passed(void **state)
{
    (void)state;
    struct pipeline_run *r = run_new();
    char *approvers[] = {"alice", "bob"}, *only_carol[] = {"carol"};
    struct env_config cfg = {.name = "staging"};
    cfg.approval = (struct env_approval){1, approvers, 2, HOUR, 0};

    /* waiting: not passed, also with an approval recorded not yet decided */
    assert_int_equal(pipeline_gate_passed(r, &cfg), 0);
    decide_add(r->jobs[1].gate, "alice", NULL, 0, T0 + 1);
    assert_int_equal(pipeline_gate_passed(r, &cfg), 0);
    r->jobs[1].gate->state = PIPELINE_GATE_APPROVED;
    assert_int_equal(pipeline_gate_passed(r, &cfg), 1);
    /* another environment's gate passes nothing here */
    struct env_config prod = cfg;
    prod.name = "production";
    assert_int_equal(pipeline_gate_passed(r, &prod), 0);
    /* the server's rules decide: alice is no approver of it, or two are needed */
    cfg.approval.approvers = only_carol;
    cfg.approval.napprovers = 1;
    assert_int_equal(pipeline_gate_passed(r, &cfg), 0);
    cfg.approval = (struct env_approval){2, approvers, 2, HOUR, 0};
    assert_int_equal(pipeline_gate_passed(r, &cfg), 0);
    decide_add(r->jobs[1].gate, "bob", NULL, 0, T0 + 2);
    assert_int_equal(pipeline_gate_passed(r, &cfg), 1);
    /* an approval after the file's (shorter) timeout does not count */
    cfg.approval.timeout_ms = 2;
    assert_int_equal(pipeline_gate_passed(r, &cfg), 0);
    cfg.approval.timeout_ms = HOUR;
    /* a record that says approved over a rejection does not pass */
    r->jobs[1].gate->decisions[0].reject = 1;
    assert_int_equal(pipeline_gate_passed(r, &cfg), 0);
    /* the actor's own approval counts only with allow_self_approval */
    r->jobs[1].gate->decisions[0].reject = 0;
    free(r->jobs[1].gate->decisions[0].by);
    r->jobs[1].gate->decisions[0].by = strdup("tester");
    char *with_tester[] = {"tester", "bob"};
    cfg.approval = (struct env_approval){2, with_tester, 2, HOUR, 0};
    assert_int_equal(pipeline_gate_passed(r, &cfg), 0);
    cfg.approval.allow_self_approval = 1;
    assert_int_equal(pipeline_gate_passed(r, &cfg), 1);
    pipeline_run_free(r);
}

/* A gate survives the record's writer and parser; forged ones are refused. */
static void test_record(void **state)
{
    (void)state;
    struct pipeline_run *r = run_new();
    struct sw_err err = {0};
    r->created_ms = r->started_ms = T0 - 1000;
    r->generation = 1;
    r->workflow = strdup("ship");
    r->event = strdup("push");
    r->sha = strdup("0123456789abcdef0123456789abcdef01234567");
    r->claim.runner = strdup("r1");
    r->claim.host = strdup("h");
    r->claim.pid = 5;
    r->claim.since_ms = T0 - 1000;
    r->claim.lease_ms = 60000;
    r->claim.expires_ms = T0 + 60000;
    decide_add(r->jobs[1].gate, "bob", "alice", 0, T0 + 1);
    r->jobs[1].gate->decisions[0].comment = strdup("ok");
    decide_add(r->jobs[1].gate, "alice", NULL, 1, T0 + 2);
    char *doc = pipeline_run_dump(r);
    assert_non_null(doc);
    struct pipeline_run *back = NULL;
    int prc = pipeline_run_parse("runs/run-20261205-142233-512-9f3a1c/run.json", doc, strlen(doc),
                                 &back, &err);
    if (prc)
        print_message("# %s\n", err.msg);
    assert_int_equal(prc, 0);
    const struct pipeline_gate *g = back->jobs[1].gate;
    assert_non_null(g);
    assert_string_equal(g->environment, "staging");
    assert_int_equal(g->required, 1);
    assert_int_equal(g->napprovers, 3);
    assert_int_equal(g->timeout_ms, HOUR);
    assert_int_equal(g->waiting_since_ms, T0);
    assert_int_equal(g->state, PIPELINE_GATE_WAITING);
    assert_int_equal(g->ndecisions, 2);
    assert_string_equal(g->decisions[0].by, "bob");
    assert_string_equal(g->decisions[0].os_user, "alice");
    assert_string_equal(g->decisions[0].comment, "ok");
    assert_int_equal(g->decisions[1].reject, 1);
    assert_null(g->decisions[1].os_user);
    char *again = pipeline_run_dump(back);
    assert_string_equal(doc, again); /* a fixed point */
    free(again);
    pipeline_run_free(back);

    /* a run its runner holds is not parked, whatever its gates say */
    assert_true(pipeline_run_parked_ready(r, T0 + HOUR) == 0);
    /* parked: waiting without a claim is a valid record */
    free(r->claim.runner);
    free(r->claim.host);
    memset(&r->claim, 0, sizeof(r->claim));
    char *parked = pipeline_run_dump(r);
    assert_int_equal(pipeline_run_parse("runs/run-20261205-142233-512-9f3a1c/run.json", parked,
                                        strlen(parked), &back, &err),
                     0);
    /* bob's approval decides the gate: a runner may claim it */
    assert_true(pipeline_run_parked_ready(back, T0 + 5) == 1);
    /* without it, only once it has timed out */
    size_t nd = back->jobs[1].gate->ndecisions;
    back->jobs[1].gate->ndecisions = 0;
    assert_true(pipeline_run_parked_ready(back, T0 + 5) == 0);
    assert_true(pipeline_run_parked_ready(back, T0 + HOUR) == 1);
    back->jobs[1].gate->ndecisions = nd;
    pipeline_run_free(back);
    free(parked);

    /* forged: a waiting job without a gate; a decided gate without decided_at;
     * a decision by a name with a blank; an unknown decision */
    static const struct {
        const char *from, *to;
    } forge[] = {
        {"\"status\":\"completed\",\"conclusion\":\"success\"",
         "\"status\":\"waiting\",\"conclusion\":null"},
        {"\"state\":\"waiting\"", "\"state\":\"approved\""},
        {"\"by\":\"bob\"", "\"by\":\"bo b\""},
        {"\"decision\":\"rejected\"", "\"decision\":\"maybe\""},
        {"\"required\":1", "\"required\":0"},
        {"\"approvers\":[\"alice\",\"bob\",\"tester\"]", "\"approvers\":[]"},
    };
    for (size_t i = 0; i < sizeof(forge) / sizeof(*forge); i++) {
        char *p = strstr(doc, forge[i].from);
        assert_non_null(p);
        char *bad = malloc(strlen(doc) + strlen(forge[i].to) + 1);
        memcpy(bad, doc, (size_t)(p - doc));
        strcpy(bad + (p - doc), forge[i].to);
        strcat(bad, p + strlen(forge[i].from));
        back = NULL;
        int rc = pipeline_run_parse("runs/run-20261205-142233-512-9f3a1c/run.json", bad,
                                    strlen(bad), &back, &err);
        if (rc != SW_EINVAL)
            print_message("# forgery %zu accepted: %s\n", i, bad);
        assert_int_equal(rc, SW_EINVAL);
        assert_null(back);
        free(bad);
    }
    free(doc);
    pipeline_run_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide),        cmocka_unit_test(test_ref_check),
        cmocka_unit_test(test_approve_check), cmocka_unit_test(test_passed),
        cmocka_unit_test(test_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
