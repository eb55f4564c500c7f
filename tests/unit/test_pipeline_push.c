/*
 * Unit tests for the git push trigger's pure parts (src/pipeline/trigger.c,
 * hook.c): the lines git gives a post-receive hook, read as hostile input
 * (long lines, bad hashes, control characters and git-refused bytes in ref
 * names); the hook script and its marker; the project's list of repositories;
 * the run record's repository and push fields, refused when forged; and what
 * is evaluated when a run is queued (pipeline_run_prepare, shared with
 * workflow run).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pipeline/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define H40A "0123456789abcdef0123456789abcdef01234567"
#define H40B "89abcdef0123456789abcdef0123456789abcdef"
#define Z40 "0000000000000000000000000000000000000000"
#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int parse(const char *line, struct pipeline_push_update *u, struct sw_err *err)
{
    return pipeline_push_line_parse(line, strlen(line), u, err);
}

static void test_line_ok(void **state)
{
    struct pipeline_push_update u;
    struct sw_err err = {0};
    (void)state;

    assert_int_equal(parse(H40A " " H40B " refs/heads/main", &u, &err), 0);
    assert_string_equal(u.before, H40A);
    assert_string_equal(u.after, H40B);
    assert_string_equal(u.ref, "refs/heads/main");
    assert_int_equal(parse(Z40 " " H40B " refs/tags/v1.2.3", &u, &err), 0);
    assert_true(pipeline_push_zero(u.before));
    assert_false(pipeline_push_zero(u.after));
    assert_false(pipeline_push_zero(""));
    assert_int_equal(parse(H64 " " H64 " refs/heads/feature/x-1_2", &u, &err), 0);
    assert_string_equal(u.before, H64);
    /* UTF-8 is a ref name git accepts */
    assert_int_equal(parse(H40A " " H40B " refs/heads/caf\xc3\xa9", &u, &err), 0);
    /* the longest ref accepted */
    char line[PIPELINE_PUSH_LINE_MAX + 2];
    int n = snprintf(line, sizeof(line), "%s %s refs/heads/", H40A, H40B);
    size_t reflen = strlen("refs/heads/");
    while (reflen < PIPELINE_PUSH_REF_MAX) {
        line[n++] = 'a';
        reflen++;
    }
    line[n] = '\0';
    assert_int_equal(parse(line, &u, &err), 0);
    assert_int_equal(strlen(u.ref), PIPELINE_PUSH_REF_MAX);
    line[n] = 'a';
    line[n + 1] = '\0';
    assert_int_equal(parse(line, &u, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "longer than 1024"));
}

static void refused(const char *line, size_t len, const char *why)
{
    struct pipeline_push_update u;
    struct sw_err err = {0};
    memset(&u, 'x', sizeof(u));
    if (pipeline_push_line_parse(line, len, &u, &err) != SW_EINVAL)
        fail_msg("accepted: %s", line);
    if (!strstr(err.msg, why))
        fail_msg("'%s': wanted '%s'", err.msg, why);
    /* the message is one line of printable text, whatever the input */
    for (const char *c = err.msg; *c; c++)
        assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
    /* nothing of a refused line is left in u */
    assert_string_equal(u.ref, "");
    assert_string_equal(u.before, "");
}

static void test_line_hostile(void **state)
{
    (void)state;
    refused("", 0, "OLD NEW REF");
    refused(H40A " " H40B, strlen(H40A " " H40B), "OLD NEW REF");
    refused(H40A "  " H40B " refs/heads/a", strlen(H40A "  " H40B " refs/heads/a"), "hashes");
    /* uppercase, short, mixed lengths, not hex */
    const char *bad[] = {
        "0123456789ABCDEF0123456789abcdef01234567 " H40B " refs/heads/a",
        "0123 " H40B " refs/heads/a",
        H40A " " H64 " refs/heads/a",
        "g123456789abcdef0123456789abcdef01234567 " H40B " refs/heads/a",
        H40A "\t" H40B " refs/heads/a",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        refused(bad[i], strlen(bad[i]), i == 4 ? "OLD NEW REF" : "hashes");
    /* refs git would refuse, or that would forge output */
    const char *refs[][2] = {
        {"heads/main", "not under refs/"},
        {"refs/heads/a\x1b[2Jb", "not printable"},
        {"refs/heads/a\rb", "not printable"},
        {"refs/heads/a\x7f", "not printable"},
        {"refs/heads/a b", "character git refuses"},
        {"refs/heads/a~1", "character git refuses"},
        {"refs/heads/a^", "character git refuses"},
        {"refs/heads/a:b", "character git refuses"},
        {"refs/heads/a*", "character git refuses"},
        {"refs/heads/a\\b", "character git refuses"},
        {"refs/heads/a..b", "ref name git accepts"},
        {"refs/heads/a@{1}", "ref name git accepts"},
        {"refs/heads/.hidden", "ref name git accepts"},
        {"refs/heads/a//b", "ref name git accepts"},
        {"refs/heads/a/", "ref name git accepts"},
        {"refs/heads/a.lock", "ref name git accepts"},
        {"refs/heads/a.", "ref name git accepts"},
        {"refs/heads/\xff\xfe", "not printable"},
        {"refs/heads/\xc0\xaf", "not printable"},
    };
    for (size_t i = 0; i < sizeof(refs) / sizeof(*refs); i++) {
        char *line = xasprintf("%s %s %s", H40A, H40B, refs[i][0]);
        refused(line, strlen(line), refs[i][1]);
        free(line);
    }
    /* a NUL inside the line */
    char nul[] = H40A " " H40B " refs/heads/a\0b";
    refused(nul, sizeof(nul) - 1, "NUL");
    /* a huge line */
    size_t big = PIPELINE_PUSH_LINE_MAX + 1;
    char *huge = xmalloc(big + 1);
    memset(huge, 'a', big);
    huge[big] = '\0';
    refused(huge, big, "more than");
    free(huge);
}

static void test_repository_valid(void **state)
{
    (void)state;
    assert_true(pipeline_run_repository_valid("/srv/git/site.git"));
    assert_true(pipeline_run_repository_valid("/"));
    assert_true(pipeline_run_repository_valid("/a b/c\xc3\xa9"));
    assert_false(pipeline_run_repository_valid(NULL));
    assert_false(pipeline_run_repository_valid(""));
    assert_false(pipeline_run_repository_valid("srv/git"));
    assert_false(pipeline_run_repository_valid("/srv/../etc"));
    assert_false(pipeline_run_repository_valid("/srv/./git"));
    assert_false(pipeline_run_repository_valid("/srv//git"));
    assert_false(pipeline_run_repository_valid("/srv/git/"));
    assert_false(pipeline_run_repository_valid("/srv/g\nit"));
    assert_false(pipeline_run_repository_valid("/srv/\x1b[1m"));
    char *longp = xmalloc(PIPELINE_RUN_REPOSITORY_MAX + 2);
    longp[0] = '/';
    memset(longp + 1, 'a', PIPELINE_RUN_REPOSITORY_MAX);
    longp[PIPELINE_RUN_REPOSITORY_MAX + 1] = '\0';
    assert_false(pipeline_run_repository_valid(longp));
    longp[PIPELINE_RUN_REPOSITORY_MAX] = '\0';
    assert_true(pipeline_run_repository_valid(longp));
    free(longp);
}

static void test_hook_script(void **state)
{
    char *s = NULL;
    struct sw_err err = {0};
    (void)state;

    assert_int_equal(pipeline_hook_script("/usr/bin/slipway", "/srv/it's here", &s, &err), 0);
    assert_true(str_starts_with(s, "#!/bin/sh\n"));
    assert_non_null(strstr(s, "exec '/usr/bin/slipway' hook post-receive --project "
                              "'/srv/it'\\''s here'\n"));
    assert_true(pipeline_hook_ours(s, strlen(s)));
    /* someone else's hooks, or a marker not on its line */
    const char *other[] = {"#!/bin/sh\nexec something\n", "", "#!/bin/sh\n",
                           "# slipway post-receive hook: written by 'slipway hook install'\n",
                           "#!/bin/sh\n# slipway post-receive hook: written by 'slipway hook "
                           "install' (edited)\n"};
    for (size_t i = 0; i < sizeof(other) / sizeof(*other); i++)
        assert_false(pipeline_hook_ours(other[i], strlen(other[i])));
    /* the marker line alone at the end of a cut file is not enough */
    assert_false(pipeline_hook_ours(s, strlen("#!/bin/sh\n# slipway post-receive hook")));
    free(s);
    s = NULL;
    assert_int_equal(pipeline_hook_script("slipway", "/p", &s, &err), SW_EINVAL);
    assert_int_equal(pipeline_hook_script("/bin/slipway", "/p\n; rm -rf /", &s, &err), SW_EINVAL);
    assert_null(s);
}

static void test_repos(void **state)
{
    char dir[] = "/tmp/sw-repos-XXXXXX";
    struct sw_err err = {0};
    (void)state;

    assert_non_null(mkdtemp(dir));
    char *sl = path_join(dir, ".slipway");
    assert_int_equal(mkdir(sl, 0755), 0);
    assert_false(pipeline_repos_listed(dir, "/srv/a.git"));
    assert_int_equal(pipeline_repos_update(dir, "/srv/a.git", 1, &err), 0);
    assert_int_equal(pipeline_repos_update(dir, "/srv/b.git", 1, &err), 0);
    assert_int_equal(pipeline_repos_update(dir, "/srv/a.git", 1, &err), 0); /* once */
    assert_true(pipeline_repos_listed(dir, "/srv/a.git"));
    assert_true(pipeline_repos_listed(dir, "/srv/b.git"));
    assert_false(pipeline_repos_listed(dir, "/srv/a"));
    assert_false(pipeline_repos_listed(dir, "/srv/a.git/"));
    assert_false(pipeline_repos_listed(dir, "# Repositories whose runs"));
    char *file = path_join(dir, ".slipway/repositories"), *data = NULL;
    size_t len = 0;
    assert_int_equal(file_read_all(file, &data, &len, &err), 0);
    const char *first = strstr(data, "\n/srv/a.git\n");
    assert_non_null(first); /* listed once */
    assert_null(strstr(first + 1, "\n/srv/a.git\n"));
    free(data);
    assert_int_equal(pipeline_repos_update(dir, "/srv/a.git", 0, &err), 0);
    assert_false(pipeline_repos_listed(dir, "/srv/a.git"));
    assert_true(pipeline_repos_listed(dir, "/srv/b.git"));
    assert_int_equal(pipeline_repos_update(dir, "relative", 1, &err), SW_EINVAL);
    /* hand-written lines: blanks and comments around a path */
    FILE *f = fopen(file, "a");
    fputs("  /srv/c.git  # not a comment after a path\n\t/srv/d.git\r\n#/srv/e.git\n", f);
    fclose(f);
    assert_true(pipeline_repos_listed(dir, "/srv/d.git"));
    assert_false(pipeline_repos_listed(dir, "/srv/e.git"));
    assert_false(pipeline_repos_listed(dir, "/srv/c.git"));
    free(file);
    char *cmd = xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(sl);
}

/* A run record with a repository and a push reads back the same; forged
 * ones are refused whole. */
static void test_record(void **state)
{
    struct pipeline_run *r = NULL, *back = NULL;
    struct sw_err err = {0};
    const char *key = "runs/run-20261205-142233-512-9f3a1c/run.json";
    (void)state;

    const char *base = "{\"format\":1,\"id\":\"run-20261205-142233-512-9f3a1c\",\"generation\":1,"
                       "\"workflow\":\"dev\",\"event\":\"push\",\"status\":\"queued\","
                       "\"created_at\":\"2026-12-05T14:22:33.512Z\",\"jobs\":[]";
    char *doc = xasprintf("%s,\"repository\":\"/srv/site.git\",\"push\":{\"pusher\":{\"name\":"
                          "\"alice\",\"email\":\"a@x\"},\"commits\":[{\"id\":\"%s\",\"message\":"
                          "\"one\\nline\"}],\"head_commit\":null,\"created\":true,"
                          "\"forced\":false}}",
                          base, H40A);
    assert_int_equal(pipeline_run_parse(key, doc, strlen(doc), &r, &err), 0);
    assert_string_equal(r->repository, "/srv/site.git");
    assert_true(json_is_object(r->push));
    char *out = pipeline_run_dump(r);
    assert_non_null(out);
    assert_int_equal(pipeline_run_parse(key, out, strlen(out), &back, &err), 0);
    assert_string_equal(back->repository, "/srv/site.git");
    assert_true(json_equal(back->push, r->push));
    json_t *view = pipeline_run_json(back, 1);
    assert_string_equal(json_string_value(json_object_get(view, "repository")), "/srv/site.git");
    /* run view --json: issue 11's keys, the title, and the push fields */
    const char *keys[] = {"id",         "workflow", "display_title", "status",
                          "conclusion", "jobs",     "workflow_file", "before",
                          "after",      "actor",    "push"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
        if (!json_object_get(view, keys[i]))
            fail_msg("run view --json lacks %s", keys[i]);
    json_decref(view);
    free(out);
    free(doc);
    pipeline_run_free(r);
    pipeline_run_free(back);

    /* each of these refuses the document */
    const char *bad[] = {
        "\"repository\":\"relative/path\"",
        "\"repository\":\"/srv/../etc\"",
        "\"repository\":\"/srv/a\\nb\"",
        "\"repository\":42",
        "\"push\":[]",
        "\"push\":{\"unknown\":1}",
        "\"push\":{\"pusher\":\"alice\"}",
        "\"push\":{\"pusher\":{\"name\":\"a\",\"role\":\"admin\"}}",
        "\"push\":{\"created\":\"yes\"}",
        "\"push\":{\"head_commit\":[]}",
        "\"push\":{\"commits\":[1]}",
        "\"push\":{\"commits\":[{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}}}}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        doc = xasprintf("%s,%s}", base, bad[i]);
        r = NULL;
        if (pipeline_run_parse(key, doc, strlen(doc), &r, &err) != SW_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        free(doc);
    }
    /* more commits than a push event lists */
    struct buf b = BUF_INIT;
    buf_addf(&b, "%s,\"push\":{\"commits\":[", base);
    for (int i = 0; i <= PIPELINE_PUSH_MAX_COMMITS; i++)
        buf_addf(&b, "%s{}", i ? "," : "");
    buf_adds(&b, "]}}");
    assert_int_equal(pipeline_run_parse(key, b.data, b.len, &r, &err), SW_EINVAL);
    buf_free(&b);
    /* and more than 256 KiB of push */
    buf_addf(&b, "%s,\"push\":{\"commits\":[{\"message\":\"", base);
    for (int i = 0; i < 300 * 1024; i++)
        buf_adds(&b, "x");
    buf_adds(&b, "\"}]}}");
    assert_int_equal(pipeline_run_parse(key, b.data, b.len, &r, &err), SW_EINVAL);
    buf_free(&b);
}

static struct pipeline_workflow *wf_parse(const char *text)
{
    struct pipeline_workflow *wf = NULL;
    struct sw_err err = {0};
    if (pipeline_workflow_parse(text, strlen(text), ".slipway/pipelines/ship.yml", NULL, &wf,
                                &err) < 0)
        fail_msg("does not load: %s", err.msg);
    return wf;
}

/* What the hook and workflow run share: the name, run-name (display_title)
 * and concurrency, evaluated when queued with github, inputs and vars. */
static void test_prepare(void **state)
{
    struct sw_err err = {0};
    struct pipeline_run spec = {0};
    (void)state;

    struct pipeline_workflow *wf =
        wf_parse("run-name: \"Ship ${{ github.ref_name }} by ${{ github.actor }} to "
                 "${{ vars.TARGET }}${{ inputs.x }}\"\n"
                 "concurrency:\n"
                 "  group: ${{ vars.LANE }}-${{ github.workflow }}-${{ github.repository }}\n"
                 "  cancel-in-progress: ${{ vars.LANE == 'fast' }}\n"
                 "on: push\n"
                 "jobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n");
    json_t *vars = json_pack("{s:s, s:s}", "TARGET", "blue", "LANE", "fast");
    spec.workflow_file = ".slipway/pipelines/ship.yml";
    spec.event = "push";
    spec.ref = "refs/heads/develop";
    spec.sha = H40A;
    spec.actor = "alice";
    assert_int_equal(pipeline_run_prepare(wf, &spec, "site", vars, &err), 0);
    assert_string_equal(spec.workflow, "ship");
    assert_string_equal(spec.display_title, "Ship develop by alice to blue");
    assert_string_equal(spec.group, "fast-ship-local/site");
    assert_true(spec.cancel_in_progress);
    /* called again (the name replaced, not leaked), without vars: empty */
    assert_int_equal(pipeline_run_prepare(wf, &spec, "site", NULL, &err), 0);
    assert_string_equal(spec.display_title, "Ship develop by alice to ");
    assert_string_equal(spec.group, "-ship-local/site");
    assert_false(spec.cancel_in_progress);
    free(spec.workflow);
    free(spec.group);
    free(spec.display_title);
    pipeline_workflow_free(wf);

    /* control characters in a title become spaces; no run-name, no title */
    wf = wf_parse("name: n\nrun-name: \"a${{ vars.NL }}b\"\non: push\n"
                  "jobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n");
    json_object_set_new(vars, "NL", json_string("\n\033[2J"));
    spec = (struct pipeline_run){.workflow_file = "x.yml",
                                 .event = "push",
                                 .ref = "refs/tags/v1",
                                 .sha = H40A,
                                 .actor = "alice"};
    assert_int_equal(pipeline_run_prepare(wf, &spec, "site", vars, &err), 0);
    assert_string_equal(spec.workflow, "n");
    assert_string_equal(spec.display_title, "a  [2Jb");
    assert_null(spec.group);
    free(spec.workflow);
    free(spec.display_title);
    pipeline_workflow_free(wf);
    wf = wf_parse("on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
                  "      - run: 'true'\n");
    spec = (struct pipeline_run){.workflow_file = "x.yaml",
                                 .event = "push",
                                 .ref = "refs/tags/v1",
                                 .sha = H40A,
                                 .actor = "alice"};
    assert_int_equal(pipeline_run_prepare(wf, &spec, "site", vars, &err), 0);
    assert_string_equal(spec.workflow, "x");
    assert_null(spec.display_title);
    free(spec.workflow);
    pipeline_workflow_free(wf);
    json_decref(vars);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_ok),
        cmocka_unit_test(test_line_hostile),
        cmocka_unit_test(test_repository_valid),
        cmocka_unit_test(test_hook_script),
        cmocka_unit_test(test_repos),
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_prepare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
