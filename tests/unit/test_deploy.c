/* Unit tests for deploy with real releases, on the fs store and, when
 * SLIPWAY_TEST_S3 names a bucket, on s3 (store_fixture.h): environment files
 * and their errors, the state machine (direct and blue-green deploy, switch,
 * rollback), the lease lock, compare-and-swap, the hash-chained history, its
 * head and its repair (each change recorded once however the head moves), the
 * state and event parsers against hostile documents, and garbage collection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "deploy/deploy.h"
#include "deploy/internal.h" /* deploy_state_save, to play a second writer */
#include "release/release.h"
#include "store_fixture.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char *site;
    char *data; /* the store's URL: a directory, or an s3:// prefix */
    char *envdir;
    struct store *st;
    int nrel; /* releases made so far, for distinct bodies */
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sw-deploy-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    f->site = path_join(f->dir, "site");
    f->data = sf_store_url(f->dir, "data");
    f->envdir = path_join(f->dir, "environments");
    if (fs_mkdir_p(f->site, NULL) || fs_mkdir_p(f->envdir, NULL))
        return -1;
    if (store_open(f->data, &f->st, NULL))
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
    free(f->site);
    free(f->data);
    free(f->envdir);
    free(f);
    return rc;
}

/* ---- helpers --------------------------------------------------------------- */

static void write_str(const char *dir, const char *rel, const char *s)
{
    char *path = path_join(dir, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(fd_write_all(fd, s, strlen(s)), 0);
    assert_int_equal(close(fd), 0);
    free(path);
}

/* A release with one body shared by all and one of its own (10 bytes:
 * "release N\n" for N < 10). Returns its id (caller frees). */
static char *make_release(struct fixture *f)
{
    char body[32];
    snprintf(body, sizeof(body), "release %d\n", ++f->nrel);
    write_str(f->site, "common.txt", "shared by every release\n");
    write_str(f->site, "unique.txt", body);
    struct release_create_opts o = {.dir = f->site};
    struct release_create_result res;
    struct sw_err err = {0};
    char *id = NULL;
    int rc = release_create(f->st, &o, &id, &res, &err);
    if (rc)
        print_message("# release_create: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return id;
}

/* Writes environments/<name>.yml and loads it; must succeed. */
static struct env_config *env_load(struct fixture *f, const char *name, const char *yaml)
{
    char *file = xasprintf("%s/%s.yml", f->envdir, name);
    write_str(f->envdir, strrchr(file, '/') + 1, yaml);
    struct env_config *c = NULL;
    struct sw_err err = {0};
    int rc = env_config_load(file, &c, &err);
    if (rc)
        print_message("# env_config_load: %s\n", err.msg);
    assert_int_equal(rc, 0);
    free(file);
    return c;
}

static struct env_state *state_of(struct fixture *f, const char *env)
{
    struct env_state *s = NULL;
    struct sw_err err = {0};
    assert_int_equal(deploy_state_load(f->st, env, &s, &err), 0);
    return s;
}

static void assert_str_or_null(const char *got, const char *want)
{
    if (!want)
        assert_null(got);
    else
        assert_string_equal(got, want);
}

/* Waits (bounded) until the wall clock has moved past ms, so "within
 * keep_previous = 0" cannot be true by sharing a millisecond. */
static void clock_past(int64_t ms)
{
    for (int i = 0; i < 1000 && time_now_ms() <= ms + 1; i++)
        usleep(1000);
    assert_true(time_now_ms() > ms + 1);
}

static const struct deploy_opts ALICE = {.actor = "alice", .message = "ship it"};

/* ---- environment files --------------------------------------------------------- */

static void test_config_valid(void **state)
{
    struct fixture *f = *state;
    struct env_config *d = env_load(f, "dev", "strategy: direct\nlisten: 127.0.0.1:8081\n");
    assert_string_equal(d->name, "dev");
    assert_non_null(strstr(d->file, "dev.yml"));
    assert_int_equal(d->strategy, STRATEGY_DIRECT);
    assert_string_equal(d->listen, "127.0.0.1:8081");
    assert_null(d->preview);
    assert_int_equal(d->keep_previous_ms, 24LL * 3600 * 1000); /* default 24h */
    assert_int_equal(d->retain_releases, 20);                  /* default 20 */
    assert_null(d->spa_fallback);
    assert_int_equal(d->ncache, 0);
    env_config_free(d);

    struct env_config *s = env_load(f, "staging",
                                    "# the staging environment\n"
                                    "strategy: blue-green        # two slots\n"
                                    "listen: 127.0.0.1:8082\n"
                                    "preview: '[::1]:9082'\n"
                                    "keep_previous: 1h30m\n"
                                    "retain_releases: 5\n"
                                    "spa_fallback: /index.html\n"
                                    "cache:\n"
                                    "  \"*.woff2\": public, max-age=31536000, immutable\n"
                                    "  \"*.json\": no-store\n");
    assert_string_equal(s->name, "staging");
    assert_int_equal(s->strategy, STRATEGY_BLUE_GREEN);
    assert_string_equal(s->preview, "[::1]:9082");
    assert_int_equal(s->keep_previous_ms, 90LL * 60 * 1000);
    assert_int_equal(s->retain_releases, 5);
    assert_string_equal(s->spa_fallback, "/index.html");
    assert_int_equal(s->ncache, 2);
    assert_string_equal(s->cache[0].pattern, "*.woff2");
    assert_string_equal(s->cache[0].policy, "public, max-age=31536000, immutable");
    assert_string_equal(s->cache[1].pattern, "*.json");
    env_config_free(s);

    /* blue-green with only the strategy: defaults again */
    struct env_config *m = env_load(f, "min", "strategy: blue-green\n");
    assert_int_equal(m->strategy, STRATEGY_BLUE_GREEN);
    assert_null(m->listen);
    assert_int_equal(m->keep_previous_ms, 24LL * 3600 * 1000);
    assert_int_equal(m->retain_releases, 20);
    env_config_free(m);

    /* a directory of files: sorted by name, other files ignored */
    write_str(f->envdir, "README.md", "not an environment\n");
    write_str(f->envdir, "alpha.yaml", "strategy: direct\n");
    struct env_config **v;
    size_t n;
    assert_int_equal(env_configs_load_dir(f->envdir, &v, &n, NULL), 0);
    assert_int_equal(n, 4);
    assert_string_equal(v[0]->name, "alpha");
    assert_string_equal(v[1]->name, "dev");
    assert_string_equal(v[2]->name, "min");
    assert_string_equal(v[3]->name, "staging");
    env_configs_free(v, n);

    /* by name: .yml, else .yaml; an unknown one lists every name the
     * directory has, a file that does not load and x.yml beside x.yaml
     * included, once each, without other files */
    struct env_config *c;
    struct sw_err err = {0};
    assert_int_equal(env_config_find(f->envdir, "alpha", &c, &err), 0);
    assert_string_equal(c->name, "alpha");
    env_config_free(c);
    write_str(f->envdir, "broken.yml", "strategy: sideways\n");
    write_str(f->envdir, "dev.yaml", "strategy: direct\n");
    write_str(f->envdir, "Bad Name.yml", "strategy: direct\n");
    assert_int_equal(env_config_find(f->envdir, "prod", &c, &err), SW_ENOTFOUND);
    assert_null(c);
    assert_non_null(strstr(err.msg, "unknown environment 'prod' (no "));
    assert_non_null(strstr(err.msg, "; known: alpha, broken, dev, min, staging)"));
    assert_int_equal(env_config_find(f->envdir, "../dev", &c, &err), SW_EINVAL);
    assert_int_equal(env_config_find(f->envdir, "broken", &c, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "broken.yml"));
    char *empty = path_join(f->envdir, "empty");
    assert_int_equal(mkdir(empty, 0700), 0);
    assert_int_equal(env_config_find(empty, "dev", &c, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "known: none)"));
    free(empty);
}

/* approval and deploy_from: defaults, values and positions. */
static void test_config_gates(void **state)
{
    struct fixture *f = *state;
    struct env_config *c = env_load(f, "staging",
                                    "strategy: blue-green\n"
                                    "approval:\n"
                                    "  required: 2\n"
                                    "  approvers: [alice, bob, carol]\n"
                                    "  timeout: 90m\n"
                                    "  allow_self_approval: true\n"
                                    "deploy_from:\n"
                                    "  branches: [main, 'release/**']\n"
                                    "  tags: ['v*.*.*']\n");
    assert_int_equal(c->approval.required, 2);
    assert_int_equal(c->approval.napprovers, 3);
    assert_string_equal(c->approval.approvers[2], "carol");
    assert_int_equal(c->approval.timeout_ms, 90LL * 60 * 1000);
    assert_int_equal(c->approval.allow_self_approval, 1);
    assert_int_equal(c->deploy_from.present, 1);
    assert_int_equal(c->deploy_from.nbranches, 2);
    assert_string_equal(c->deploy_from.branches[1].pattern, "release/**");
    assert_int_equal(c->deploy_from.branches[1].line, 8);
    assert_int_equal(c->deploy_from.branches[1].col, 20);
    assert_int_equal(c->deploy_from.ntags, 1);
    env_config_free(c);

    /* defaults: required 1, 24h, no self-approval; no deploy_from: any ref */
    c = env_load(f, "dev", "strategy: direct\napproval:\n  approvers: [alice]\n");
    assert_int_equal(c->approval.required, 1);
    assert_int_equal(c->approval.timeout_ms, 24LL * 3600 * 1000);
    assert_int_equal(c->approval.allow_self_approval, 0);
    assert_int_equal(c->deploy_from.present, 0);
    env_config_free(c);

    /* neither: no gate */
    c = env_load(f, "prod", "strategy: direct\n");
    assert_int_equal(c->approval.required, 0);
    assert_int_equal(c->deploy_from.present, 0);
    env_config_free(c);

    /* only tags: no branch may deploy */
    c = env_load(f, "tagged", "strategy: direct\ndeploy_from:\n  tags: [v1]\n");
    assert_int_equal(c->deploy_from.present, 1);
    assert_int_equal(c->deploy_from.nbranches, 0);
    env_config_free(c);
}

/* errors: regressed 404s count by default; only they can be turned off (5xx always count). */
static void test_config_errors_key(void **state)
{
    struct fixture *f = *state;
    struct env_config *c = env_load(f, "dev", "strategy: direct\n");
    assert_int_equal(c->errors.regressed_404, 1);
    env_config_free(c);
    c = env_load(f, "dev", "strategy: direct\nerrors: {regressed_404: false}\n");
    assert_int_equal(c->errors.regressed_404, 0);
    env_config_free(c);
    c = env_load(f, "dev", "strategy: direct\nerrors:\n  regressed_404: true\n");
    assert_int_equal(c->errors.regressed_404, 1);
    env_config_free(c);
    /* an empty mapping changes nothing */
    c = env_load(f, "dev", "strategy: blue-green\nerrors: {}\n");
    assert_int_equal(c->errors.regressed_404, 1);
    env_config_free(c);
}

/* Every validation error names file:line:col, the key and what was expected.
 * The location is the key for errors about a key (unknown, duplicate, not
 * allowed here) and the value for errors about a value. All cases run and
 * every mismatch is printed before the test fails. */
static void test_config_errors(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *name, *yaml;
        const char *loc;  /* "L:C", or alternatives "L:C|L:C" */
        const char *word; /* must appear in the message */
        int expected;     /* the message must also say what was "expected" */
    } cases[] = {
        {"unknown-key", "strategy: direct\nkeep_previos: 24h\n", "2:1", "keep_previos", 1},
        {"bad-strategy", "strategy: purple\n", "1:11", "blue-green", 1},
        {"strategy-list", "strategy:\n  - direct\n", "2:3", "strategy", 1},
        {"bad-listen", "strategy: direct\nlisten: localhost\n", "2:9", "listen", 1},
        {"bad-port", "strategy: direct\nlisten: 127.0.0.1:70000\n", "2:9", "listen", 1},
        {"bad-preview", "strategy: blue-green\npreview: 127.0.0.1\n", "2:10", "preview", 1},
        {"preview-direct", "strategy: direct\nlisten: 127.0.0.1:8081\npreview: 127.0.0.1:9081\n",
         "3:1", "preview", 0},
        {"preview-is-listen",
         "strategy: blue-green\nlisten: 127.0.0.1:8081\npreview: 127.0.0.1:8081\n", "3:1|3:10",
         "preview", 0},
        {"duplicate", "strategy: direct\nlisten: 127.0.0.1:8081\nstrategy: blue-green\n", "3:1",
         "duplicate key 'strategy'", 0},
        {"bad-keep", "strategy: direct\nkeep_previous: soon\n", "2:16", "keep_previous", 1},
        {"bad-retain", "strategy: direct\nretain_releases: 0\n", "2:18", "retain_releases", 1},
        {"bad-spa", "strategy: direct\nspa_fallback: index.html\n", "2:15", "spa_fallback", 1},
        {"malformed", "strategy: direct\nlisten: a: b\n", "2:10", "YAML", 0},
        {"unclosed", "strategy: direct\nlisten: [127.0.0.1:8081\n", "3:1", "YAML", 0},
        {"empty", "", "1:1", "strategy", 1},
        {"missing-strategy", "listen: 127.0.0.1:8081\n", "1:1", "strategy", 1},
        {"not-a-mapping", "- strategy\n- direct\n", "1:1", "mapping", 1},
        /* a second document would otherwise be ignored, unknown keys and all */
        {"two-documents", "strategy: direct\n---\nbogus: 1\n", "2:1|3:1", "document", 0},
        /* approval and deploy_from: each fault at its line */
        {"approval-unknown", "strategy: direct\napproval:\n  approvers: [a]\n  approver: [b]\n",
         "4:3", "unknown key 'approver' (expected required, approvers, timeout or", 1},
        {"approval-not-map", "strategy: direct\napproval: yes\n", "2:11", "approval", 1},
        {"approval-no-approvers", "strategy: direct\napproval:\n  required: 1\n", "3:3",
         "missing key 'approvers'", 1},
        {"approval-required-0", "strategy: direct\napproval:\n  required: 0\n  approvers: [a]\n",
         "3:13", "approval.required", 1},
        {"approval-required-text",
         "strategy: direct\napproval:\n  required: two\n  approvers: [a]\n", "3:13",
         "approval.required", 1},
        {"approval-required-many",
         "strategy: direct\napproval:\n  required: 3\n  approvers: [a, b]\n", "3:13",
         "only 2 approvers", 1},
        {"approval-approvers-empty", "strategy: direct\napproval:\n  approvers: []\n", "3:14",
         "approval.approvers", 1},
        {"approval-approvers-map", "strategy: direct\napproval:\n  approvers: {a: 1}\n", "3:14",
         "approval.approvers", 1},
        {"approval-approver-blank",
         "strategy: direct\napproval:\n  approvers:\n    - alice\n    - 'bob smith'\n", "5:7",
         "'bob smith'", 1},
        {"approval-approver-twice", "strategy: direct\napproval:\n  approvers: [a, b, a]\n", "3:21",
         "listed twice", 0},
        {"approval-timeout", "strategy: direct\napproval:\n  approvers: [a]\n  timeout: soon\n",
         "4:12", "approval.timeout", 1},
        {"approval-timeout-long", "strategy: direct\napproval:\n  approvers: [a]\n  timeout: 31d\n",
         "4:12", "approval.timeout", 1},
        {"approval-self",
         "strategy: direct\napproval:\n  approvers: [a]\n  allow_self_approval: "
         "maybe\n",
         "4:24", "allow_self_approval", 1},
        {"deploy-from-unknown", "strategy: direct\ndeploy_from:\n  branch: [main]\n", "3:3",
         "unknown key 'branch' (expected branches or tags)", 1},
        {"deploy-from-scalar", "strategy: direct\ndeploy_from:\n  branches: main\n", "3:13",
         "deploy_from.branches", 1},
        {"deploy-from-empty", "strategy: direct\ndeploy_from: {}\n", "2:14", "deploy_from", 1},
        {"deploy-from-item", "strategy: direct\ndeploy_from:\n  tags:\n    - v1\n    - [x]\n",
         "5:7", "deploy_from.tags", 1},
        /* errors: only regressed_404, a boolean; 5xx cannot be turned off */
        {"errors-unknown", "strategy: direct\nerrors:\n  regressed_403: true\n", "3:3",
         "errors: unknown key 'regressed_403' (expected regressed_404)", 1},
        {"errors-5xx", "strategy: direct\nerrors: {5xx: false}\n", "2:10",
         "5xx responses always count as errors", 1},
        {"errors-not-bool", "strategy: direct\nerrors: {regressed_404: yes}\n", "2:25",
         "errors.regressed_404: expected true or false, got 'yes'", 1},
        {"errors-list", "strategy: direct\nerrors:\n  - regressed_404\n", "3:3",
         "errors: expected a mapping", 1},
        {"errors-scalar", "strategy: direct\nerrors: regressed_404\n", "2:9", "errors:", 1},
        {"errors-unknown-top", "strategy: direct\nerror: {regressed_404: true}\n", "2:1",
         "unknown key 'error' (expected strategy, listen, preview, keep_previous, "
         "retain_releases, spa_fallback, cache, approval, deploy_from, errors or watch)",
         1},
        {"watch-scalar", "strategy: direct\nwatch: 10m\n", "2:8", "watch: expected a mapping", 1},
        {"watch-no-duration", "strategy: direct\nwatch: {on_critical: notify}\n", "2:8",
         "watch: missing key 'duration' (expected a duration", 1},
        {"watch-short", "strategy: direct\nwatch: {duration: 500ms}\n", "2:19",
         "watch.duration: expected a duration from 1s to 7d", 1},
        {"watch-long", "strategy: direct\nwatch: {duration: 8d}\n", "2:19",
         "watch.duration: expected a duration from 1s to 7d such as 10m, got '8d'", 1},
        {"watch-action", "strategy: direct\nwatch: {duration: 5m, on_critical: page}\n", "2:36",
         "watch.on_critical: expected rollback or notify, got 'page'", 1},
        {"watch-unknown", "strategy: direct\nwatch: {duration: 5m, for: 1m}\n", "2:23",
         "watch: unknown key 'for' (expected duration or on_critical)", 1},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char *file = xasprintf("%s/%s.yml", f->envdir, cases[i].name);
        write_str(f->envdir, strrchr(file, '/') + 1, cases[i].yaml);
        struct env_config *c = NULL;
        struct sw_err err = {0};
        int rc = env_config_load(file, &c, &err);
        int ok = rc == SW_EINVAL && !c && strstr(err.msg, cases[i].word) &&
                 (!cases[i].expected || strstr(err.msg, "expected"));
        int located = 0;
        char *alts = xstrdup(cases[i].loc), *save = NULL;
        for (char *a = strtok_r(alts, "|", &save); a; a = strtok_r(NULL, "|", &save)) {
            char *want = xasprintf("%s:%s: ", file, a);
            located |= strstr(err.msg, want) != NULL;
            free(want);
        }
        if (!ok || !located) {
            print_message("# %s: rc %d, wanted %s:%s with '%s'; got: %s\n", cases[i].name, rc,
                          cases[i].name, cases[i].loc, cases[i].word, rc ? err.msg : "(loaded)");
            failures++;
        }
        env_config_free(c);
        free(alts);
        free(file);
    }
    assert_int_equal(failures, 0);
}

static void test_config_file_errors(void **state)
{
    struct fixture *f = *state;
    struct env_config *c = NULL;
    struct sw_err err = {0};
    char *missing = path_join(f->envdir, "nope.yml");
    assert_int_equal(env_config_load(missing, &c, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "nope.yml"));
    /* the file name is the environment name, so it must be a valid one */
    write_str(f->envdir, "Bad Name.yml", "strategy: direct\n");
    char *bad = path_join(f->envdir, "Bad Name.yml");
    assert_int_equal(env_config_load(bad, &c, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "Bad Name.yml"));
    assert_null(c);
    /* one bad file fails the directory, naming it */
    struct env_config **v;
    size_t n;
    assert_int_equal(env_configs_load_dir(f->envdir, &v, &n, &err), SW_EINVAL);
    assert_null(v);
    assert_non_null(strstr(err.msg, "Bad Name.yml"));
    free(missing);
    free(bad);
}

static void test_env_name_check(void **state)
{
    const char *good[] = {"dev", "staging", "prod-eu_1", "0", "a-", "9lives"};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        assert_int_equal(env_name_check(good[i], NULL), 0);
    char longest[64], too_long[65];
    memset(longest, 'a', 63);
    longest[63] = '\0';
    memset(too_long, 'a', 64);
    too_long[64] = '\0';
    assert_int_equal(env_name_check(longest, NULL), 0);
    const char *bad[] = {"",   "Dev",  "-dev", "_x",  "a b",   "a/b",
                         "..", "dev.", "é",    "a\n", "STAGE", too_long};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct sw_err err = {0};
        assert_int_equal(env_name_check(bad[i], &err), SW_EINVAL);
        assert_non_null(strstr(err.msg, "environment name"));
    }
}

/* ---- the state machine -------------------------------------------------------- */

static void test_direct(void **state)
{
    struct fixture *f = *state;
    struct env_config *dev = env_load(f, "dev", "strategy: direct\n");
    char *r1 = make_release(f), *r2 = make_release(f), *r3 = make_release(f);
    struct deploy_result res;
    struct sw_err err = {0};

    struct env_state *s = state_of(f, "dev");
    assert_int_equal(s->generation, 0); /* never deployed */
    assert_null(s->live_release);
    assert_string_equal(s->etag, "");
    env_state_free(s);

    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), 0);
    assert_string_equal(res.action, "deploy");
    assert_null(res.from);
    assert_string_equal(res.to, r1);
    assert_int_equal(res.slot, SLOT_NONE);
    assert_true(res.switched);
    assert_int_equal(res.generation, 1);
    deploy_result_free(&res);

    assert_int_equal(deploy_release(f->st, dev, r2, &ALICE, &res, &err), 0);
    assert_string_equal(res.from, r1);
    assert_string_equal(res.to, r2);
    assert_int_equal(res.generation, 2);
    deploy_result_free(&res);
    s = state_of(f, "dev");
    assert_int_equal(s->strategy, STRATEGY_DIRECT);
    assert_string_equal(s->live_release, r2);
    assert_string_equal(s->previous_release, r1);
    assert_int_equal(s->live_slot, SLOT_NONE);
    assert_null(s->slot_release[0]);
    assert_null(s->slot_release[1]);
    assert_string_equal(s->last.action, "deploy");
    assert_string_equal(s->last.actor, "alice");
    assert_string_equal(s->last.message, "ship it");
    assert_int_equal(s->last.generation, 2);
    assert_int_not_equal(strlen(s->etag), 0);
    env_state_free(s);

    /* a direct environment has no idle slot */
    assert_int_equal(deploy_switch(f->st, dev, &ALICE, &res, &err), DEPLOY_ESTRATEGY);
    assert_non_null(strstr(err.msg, "dev"));
    /* rollback deploys the previous release */
    assert_int_equal(deploy_rollback(f->st, dev, NULL, &ALICE, &res, &err), 0);
    assert_string_equal(res.action, "rollback");
    assert_string_equal(res.from, r2);
    assert_string_equal(res.to, r1);
    assert_int_equal(res.generation, 3);
    deploy_result_free(&res);
    s = state_of(f, "dev");
    assert_string_equal(s->live_release, r1);
    assert_string_equal(s->previous_release, r2);
    env_state_free(s);
    /* rollback --to any release */
    assert_int_equal(deploy_rollback(f->st, dev, r3, &ALICE, &res, &err), 0);
    assert_string_equal(res.to, r3);
    assert_int_equal(res.generation, 4);
    deploy_result_free(&res);
    /* to what is live already: nothing to do, nothing changed */
    assert_int_equal(deploy_rollback(f->st, dev, r3, &ALICE, &res, &err), DEPLOY_ENOTHING);
    /* an unknown release or one with a missing body is refused up front */
    assert_int_equal(deploy_release(f->st, dev, "r-19990101-000000-000-000000", &ALICE, &res, &err),
                     SW_ENOTFOUND);
    struct release *rel;
    assert_int_equal(release_load(f->st, r2, &rel, NULL), 0);
    char key[128];
    release_blob_key(rel->files[1].blob, key, sizeof(key)); /* unique.txt */
    assert_int_equal(store_delete(f->st, key, NULL, NULL), 0);
    assert_int_equal(deploy_release(f->st, dev, r2, &ALICE, &res, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "unique.txt"));
    release_free(rel);
    s = state_of(f, "dev");
    assert_int_equal(s->generation, 4);
    assert_string_equal(s->live_release, r3);
    env_state_free(s);

    env_config_free(dev);
    free(r1);
    free(r2);
    free(r3);
}

/* The whole audit log verifies, want events long. */
static void assert_log_whole(struct fixture *f, size_t want)
{
    size_t checked = 0;
    struct sw_err err = {0};
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), 0);
    assert_int_equal(checked, want);
}

/* deploy_ahead: a change's lock and reads begun before it is known. Taken by
 * the change (which then releases the lock as ever, and the ahead holds
 * none); freed untaken, its lock is given back; meanwhile it holds the lock
 * (another change is DEPLOY_ELOCKED); taken for another environment or
 * action, refused. */
static void test_deploy_ahead(void **state)
{
    struct fixture *f = *state;
    struct env_config *dev = env_load(f, "dev", "strategy: direct\n");
    struct env_config *stg = env_load(f, "staging", "strategy: direct\n");
    char *r1 = make_release(f), *r2 = make_release(f);
    struct deploy_result res;
    struct sw_err err = {0};

    struct deploy_ahead *a = deploy_ahead_start(f->st, dev, "deploy", NULL);
    assert_int_equal(deploy_ahead_wait(a, &err), 0);
    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), DEPLOY_ELOCKED);
    deploy_ahead_free(a); /* untaken: the lock given back */
    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), 0);
    deploy_result_free(&res);

    a = deploy_ahead_start(f->st, dev, "deploy", NULL);
    struct deploy_opts o = ALICE;
    o.ahead = a;
    assert_int_equal(deploy_release(f->st, dev, r2, &o, &res, &err), 0);
    assert_string_equal(res.from, r1);
    assert_string_equal(res.to, r2);
    assert_int_equal(res.generation, 2);
    deploy_result_free(&res);
    deploy_ahead_free(a); /* taken: nothing left to give back */
    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), 0);
    deploy_result_free(&res);

    a = deploy_ahead_start(f->st, dev, "deploy", NULL);
    o.ahead = a;
    assert_int_equal(deploy_release(f->st, stg, r1, &o, &res, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "taken for staging"));
    deploy_ahead_free(a);
    assert_int_equal(deploy_release(f->st, dev, r2, &ALICE, &res, &err), 0);
    deploy_result_free(&res);

    /* an ahead that failed (the lock held elsewhere) is the change's failure */
    struct deploy_ahead *held = deploy_ahead_start(f->st, dev, "deploy", NULL);
    assert_int_equal(deploy_ahead_wait(held, &err), 0);
    a = deploy_ahead_start(f->st, dev, "deploy", NULL);
    o.ahead = a;
    assert_int_equal(deploy_release(f->st, dev, r1, &o, &res, &err), DEPLOY_ELOCKED);
    deploy_ahead_free(a);
    deploy_ahead_free(held);
    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    env_config_free(dev);
    env_config_free(stg);
    free(r1);
    free(r2);
}

/* deploy_known_fn for the tests: a copy of the state arg, or none. */
static struct env_state *known_copy(void *arg)
{
    return arg ? env_state_dup(arg) : NULL;
}

/* deploy_ahead_start with known, the state read before the lease: the change
 * reads none of its own. A copy that says what the store's does not (a
 * rejection) is what gets written, so it was used; overtaken by another
 * change between the read and the lease, the lease's compare-and-swap write
 * fails and the state is read again, the change made on it (both changes
 * kept, in order); and an old copy that names the release live is never
 * judged on: the change is made on the state as it is. */
static void test_deploy_ahead_known(void **state)
{
    struct fixture *f = *state;
    struct env_config *dev = env_load(f, "dev", "strategy: direct\n");
    char *r1 = make_release(f), *r2 = make_release(f), *r3 = make_release(f);
    struct deploy_result res;
    struct sw_err err = {0};
    struct deploy_opts o = ALICE;
    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), 0);
    deploy_result_free(&res);

    struct env_state *known = state_of(f, "dev");
    known->rejected[0].release = xstrdup(r3);
    known->rejected[0].reason = xstrdup("marker: the copy was used");
    known->rejected[0].time_ms = 1700000000000;
    known->nrejected = 1;
    o.ahead = deploy_ahead_start(f->st, dev, "deploy",
                                 &(struct deploy_ahead_opts){known_copy, known, 0, NULL});
    assert_int_equal(deploy_release(f->st, dev, r2, &o, &res, &err), 0);
    assert_int_equal(res.generation, 2);
    deploy_result_free(&res);
    deploy_ahead_free(o.ahead);
    env_state_free(known);
    struct env_state *s = state_of(f, "dev");
    assert_int_equal(s->nrejected, 1);
    assert_string_equal(s->rejected[0].reason, "marker: the copy was used");
    env_state_free(s);

    /* overtaken: r1 deployed by another change after the read */
    known = state_of(f, "dev");
    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    o.ahead = deploy_ahead_start(f->st, dev, "deploy",
                                 &(struct deploy_ahead_opts){known_copy, known, 0, NULL});
    assert_int_equal(deploy_release(f->st, dev, r2, &o, &res, &err), 0);
    assert_int_equal(res.generation, 4);
    assert_string_equal(res.from, r1);
    assert_string_equal(res.to, r2);
    deploy_result_free(&res);
    deploy_ahead_free(o.ahead);

    /* refused on the old copy (r2 live there, r1 live now): made again */
    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    o.ahead = deploy_ahead_start(f->st, dev, "deploy",
                                 &(struct deploy_ahead_opts){known_copy, known, 0, NULL});
    assert_int_equal(deploy_release(f->st, dev, r2, &o, &res, &err), 0);
    assert_int_equal(res.generation, 6);
    assert_string_equal(res.from, r1);
    deploy_result_free(&res);
    deploy_ahead_free(o.ahead);
    env_state_free(known);
    s = state_of(f, "dev");
    assert_int_equal(s->generation, 6);
    assert_string_equal(s->live_release, r2);
    env_state_free(s);
    assert_log_whole(f, 6);
    env_config_free(dev);
    free(r1);
    free(r2);
    free(r3);
}

/* deploy_ahead_start with lease_after_ms (deploy DIR): a change that takes it
 * over in time takes no lease. Another change made meanwhile is not refused
 * (no lease was there), and the ahead's write, refused by the compare-and-
 * swap, is made again on it under the lease; a refusal judged on an old copy
 * is made again too. Not taken in time, the ahead takes the lease (others are
 * refused); a lease held elsewhere refuses it whatever the wait. */
static void test_deploy_ahead_lease_free(void **state)
{
    struct fixture *f = *state;
    struct env_config *dev = env_load(f, "dev", "strategy: direct\n");
    char *r1 = make_release(f), *r2 = make_release(f), *r3 = make_release(f);
    struct deploy_result res;
    struct sw_err err = {0};
    struct deploy_opts o = ALICE;
    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), 0);
    deploy_result_free(&res);

    /* in time: one write, no lease */
    struct env_state *known = state_of(f, "dev");
    o.ahead = deploy_ahead_start(f->st, dev, "deploy",
                                 &(struct deploy_ahead_opts){known_copy, known, 60000, NULL});
    assert_int_equal(deploy_release(f->st, dev, r2, &o, &res, &err), 0);
    assert_int_equal(res.generation, 2);
    deploy_result_free(&res);
    deploy_ahead_free(o.ahead);
    env_state_free(known);

    /* another change meanwhile goes through; the ahead's is made after it */
    known = state_of(f, "dev");
    o.ahead = deploy_ahead_start(f->st, dev, "deploy",
                                 &(struct deploy_ahead_opts){known_copy, known, 60000, NULL});
    assert_int_equal(deploy_release(f->st, dev, r3, &ALICE, &res, &err), 0);
    assert_int_equal(res.generation, 3);
    deploy_result_free(&res);
    assert_int_equal(deploy_release(f->st, dev, r1, &o, &res, &err), 0);
    assert_int_equal(res.generation, 4);
    assert_string_equal(res.from, r3);
    assert_string_equal(res.to, r1);
    deploy_result_free(&res);
    deploy_ahead_free(o.ahead);

    /* the old copy says r2 is live (nothing to do); r1 is: made again */
    o.ahead = deploy_ahead_start(f->st, dev, "deploy",
                                 &(struct deploy_ahead_opts){known_copy, known, 60000, NULL});
    assert_int_equal(deploy_release(f->st, dev, r2, &o, &res, &err), 0);
    assert_int_equal(res.generation, 5);
    assert_string_equal(res.from, r1);
    deploy_result_free(&res);
    deploy_ahead_free(o.ahead);
    env_state_free(known);

    /* not taken in time: the lease, and another change is refused */
    struct deploy_ahead *slow =
        deploy_ahead_start(f->st, dev, "deploy", &(struct deploy_ahead_opts){.lease_after_ms = 20});
    assert_int_equal(deploy_ahead_wait(slow, &err), 0);
    assert_int_equal(deploy_release(f->st, dev, r3, &ALICE, &res, &err), DEPLOY_ELOCKED);
    /* and one that would wait is refused at once by the lease there */
    o.ahead = deploy_ahead_start(f->st, dev, "deploy",
                                 &(struct deploy_ahead_opts){.lease_after_ms = 60000});
    assert_int_equal(deploy_ahead_wait(o.ahead, &err), DEPLOY_ELOCKED);
    deploy_ahead_free(o.ahead);
    o.ahead = slow;
    assert_int_equal(deploy_release(f->st, dev, r3, &o, &res, &err), 0);
    assert_int_equal(res.generation, 6);
    deploy_result_free(&res);
    deploy_ahead_free(slow);

    struct env_state *s = state_of(f, "dev");
    assert_null(s->lease.owner);
    assert_string_equal(s->live_release, r3);
    env_state_free(s);
    assert_log_whole(f, 6);
    env_config_free(dev);
    free(r1);
    free(r2);
    free(r3);
}

/* deploy_opts.head_copy: each change leaves the head as it wrote it in the
 * copy, and the next starts from there. A copy behind the head (someone else
 * appended) is refused by the head's compare-and-swap, the head read, and the
 * copy paused; a paused or damaged copy is not used; the log stays whole
 * through all of it. */
static void test_head_copy(void **state)
{
    struct fixture *f = *state;
    struct env_config *dev = env_load(f, "dev", "strategy: direct\n");
    char *r[2] = {make_release(f), make_release(f)};
    char *copy = xasprintf("%s/head-copy", f->dir), *old = NULL, *data = NULL;
    struct deploy_result res;
    struct sw_err err = {0};
    struct deploy_opts o = ALICE;
    size_t len, oldlen;
    o.head_copy = copy;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(deploy_release(f->st, dev, r[i % 2], &o, &res, &err), 0);
        deploy_result_free(&res);
    }
    assert_int_equal(file_read_all(copy, &old, &oldlen, NULL), 0);
    assert_non_null(strstr(old, "slipway-head-copy 1\netag "));
    assert_non_null(strstr(old, "\"seq\":3"));
    /* the copy is what the store holds */
    char *head = NULL;
    assert_int_equal(store_get(f->st, "events/head.json", &head, &len, NULL, NULL), 0);
    assert_non_null(strstr(old, head));
    free(head);

    /* another writer moves the head; the old copy is refused, then paused */
    assert_int_equal(deploy_release(f->st, dev, r[1], &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(deploy_release(f->st, dev, r[0], &o, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(file_read_all(copy, &data, &len, NULL), 0);
    assert_int_equal(strncmp(data, "slipway-head-copy 1\npaused-until ", 33), 0);
    free(data);
    assert_int_equal(fs_write_atomic(copy, old, oldlen, NULL), 0);
    assert_int_equal(deploy_release(f->st, dev, r[1], &o, &res, &err), 0);
    deploy_result_free(&res);
    /* paused: not written over by a change that found nothing wrong */
    assert_int_equal(file_read_all(copy, &data, &len, NULL), 0);
    assert_int_equal(strncmp(data, "slipway-head-copy 1\npaused-until ", 33), 0);
    free(data);
    assert_int_equal(deploy_release(f->st, dev, r[0], &o, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(file_read_all(copy, &data, &len, NULL), 0);
    assert_int_equal(strncmp(data, "slipway-head-copy 1\npaused-until ", 33), 0);
    free(data);

    /* damaged copies are not used (a bad ETag, a document that is no head, an
     * unknown format): the change reads the head and writes a good copy; a
     * well-formed copy the head never was (a token that could not go into a
     * header is not learnt) is refused like any copy behind */
    const char *bad[] = {
        "slipway-head-copy 1\netag xyz\ntoken -\n{}",
        "slipway-head-copy 1\netag "
        "0000000000000000000000000000000000000000000000000000000000000000\ntoken "
        "-\n{\"seq\":9,\"envs\":{}}",
        "slipway-head-copy 2\n",
        "slipway-head-copy 1\netag "
        "0000000000000000000000000000000000000000000000000000000000000000\ntoken "
        "a\"b\n{\"seq\":0,\"envs\":{},\"event\":null}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(fs_write_atomic(copy, bad[i], strlen(bad[i]), NULL), 0);
        assert_int_equal(deploy_release(f->st, dev, r[(i + 1) % 2], &o, &res, &err), 0);
        deploy_result_free(&res);
        assert_int_equal(file_read_all(copy, &data, &len, NULL), 0);
        assert_non_null(strstr(data, i < 3 ? "slipway-head-copy 1\netag "
                                           : "slipway-head-copy 1\npaused-until "));
        free(data);
    }
    assert_log_whole(f, 11);
    free(old);
    free(copy);
    env_config_free(dev);
    free(r[0]);
    free(r[1]);
}

/* Deploying the release that is live changes nothing, on either strategy:
 * DEPLOY_ENOTHING saying so, the same generation and state, no new event. */
static void test_deploy_live_is_noop(void **state)
{
    struct fixture *f = *state;
    struct env_config *dev = env_load(f, "dev", "strategy: direct\n");
    struct env_config *stg = env_load(f, "staging", "strategy: blue-green\n");
    char *r1 = make_release(f), *r2 = make_release(f);
    struct deploy_result res;
    struct sw_err err = {0};
    struct deploy_opts sw = ALICE;
    sw.do_switch = 1;
    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(deploy_release(f->st, stg, r1, &ALICE, &res, &err), 0); /* live in blue */
    deploy_result_free(&res);
    assert_int_equal(deploy_release(f->st, stg, r2, &ALICE, &res, &err), 0); /* idle green */
    deploy_result_free(&res);
    struct env_state *d0 = state_of(f, "dev"), *s0 = state_of(f, "staging");
    struct deploy_event *ev;
    size_t n0, n;
    assert_int_equal(deploy_history(f->st, NULL, &ev, &n0, &err), 0);
    deploy_events_free(ev, n0);

    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), DEPLOY_ENOTHING);
    assert_non_null(strstr(err.msg, "already live on dev; nothing changed"));
    assert_non_null(strstr(err.msg, r1));
    assert_int_equal(deploy_release(f->st, stg, r1, &ALICE, &res, &err), DEPLOY_ENOTHING);
    assert_int_equal(deploy_release(f->st, stg, r1, &sw, &res, &err), DEPLOY_ENOTHING);

    struct env_state *d1 = state_of(f, "dev"), *s1 = state_of(f, "staging");
    assert_string_equal(d1->etag, d0->etag); /* byte for byte the same document */
    assert_string_equal(s1->etag, s0->etag);
    assert_string_equal(s1->slot_release[SLOT_GREEN], r2); /* the idle slot kept r2 */
    assert_int_equal(deploy_history(f->st, NULL, &ev, &n, &err), 0);
    deploy_events_free(ev, n);
    assert_int_equal(n, n0);
    /* what is in the idle slot is not live: deploying it with --switch does go live */
    assert_int_equal(deploy_release(f->st, stg, r2, &sw, &res, &err), 0);
    assert_string_equal(res.to, r2);
    assert_int_equal(res.generation, s0->generation + 1);
    deploy_result_free(&res);
    env_state_free(d0), env_state_free(d1), env_state_free(s0), env_state_free(s1);
    env_config_free(dev), env_config_free(stg);
    free(r1), free(r2);
}

static void test_blue_green(void **state)
{
    struct fixture *f = *state;
    struct env_config *stg = env_load(f, "staging", "strategy: blue-green\n");
    char *r1 = make_release(f), *r2 = make_release(f), *r3 = make_release(f);
    struct deploy_result res;
    struct sw_err err = {0};

    struct env_state *s = state_of(f, "staging");
    assert_int_equal(deploy_idle_slot(s), SLOT_BLUE); /* empty: blue first */
    env_state_free(s);
    assert_int_equal(deploy_rollback(f->st, stg, NULL, &ALICE, &res, &err), DEPLOY_ENOTHING);

    /* the first deploy has nothing live to protect: it goes live at once */
    assert_int_equal(deploy_release(f->st, stg, r1, &ALICE, &res, &err), 0);
    assert_int_equal(res.slot, SLOT_BLUE);
    assert_true(res.switched);
    assert_string_equal(res.to, r1);
    assert_int_equal(res.generation, 1);
    deploy_result_free(&res);
    s = state_of(f, "staging");
    assert_int_equal(s->live_slot, SLOT_BLUE);
    assert_string_equal(s->live_release, r1);
    assert_string_equal(s->slot_release[SLOT_BLUE], r1);
    assert_null(s->slot_release[SLOT_GREEN]);
    assert_int_equal(deploy_idle_slot(s), SLOT_GREEN);
    env_state_free(s);
    /* nothing in the idle slot to switch to */
    assert_int_equal(deploy_switch(f->st, stg, &ALICE, &res, &err), DEPLOY_ENOTHING);
    assert_non_null(strstr(err.msg, "green"));

    /* the second deploy goes to the idle slot and waits */
    assert_int_equal(deploy_release(f->st, stg, r2, &ALICE, &res, &err), 0);
    assert_int_equal(res.slot, SLOT_GREEN);
    assert_false(res.switched);
    assert_string_equal(res.to, r1); /* live is unchanged */
    assert_int_equal(res.generation, 2);
    deploy_result_free(&res);
    s = state_of(f, "staging");
    assert_string_equal(s->live_release, r1);
    assert_int_equal(s->live_slot, SLOT_BLUE);
    assert_string_equal(s->slot_release[SLOT_GREEN], r2);
    assert_null(s->previous_release);
    env_state_free(s);

    /* switch: green goes live, r1 becomes previous and stays in blue */
    assert_int_equal(deploy_switch(f->st, stg, &ALICE, &res, &err), 0);
    assert_string_equal(res.action, "switch");
    assert_int_equal(res.slot, SLOT_GREEN);
    assert_true(res.switched);
    assert_string_equal(res.from, r1);
    assert_string_equal(res.to, r2);
    assert_int_equal(res.generation, 3);
    deploy_result_free(&res);
    s = state_of(f, "staging");
    assert_int_equal(s->live_slot, SLOT_GREEN);
    assert_string_equal(s->previous_release, r1);
    assert_string_equal(s->slot_release[SLOT_BLUE], r1);
    assert_true(s->previous_since_ms > 0);
    env_state_free(s);

    /* deploy --switch: into the idle slot (blue) and live at once */
    struct deploy_opts sw = ALICE;
    sw.do_switch = 1;
    assert_int_equal(deploy_release(f->st, stg, r3, &sw, &res, &err), 0);
    assert_int_equal(res.slot, SLOT_BLUE);
    assert_true(res.switched);
    assert_string_equal(res.from, r2);
    assert_string_equal(res.to, r3);
    assert_int_equal(res.generation, 4);
    deploy_result_free(&res);
    s = state_of(f, "staging");
    assert_int_equal(s->live_slot, SLOT_BLUE);
    assert_string_equal(s->slot_release[SLOT_BLUE], r3);
    assert_string_equal(s->slot_release[SLOT_GREEN], r2);
    assert_string_equal(s->previous_release, r2);
    assert_int_equal(s->generation, 4);
    env_state_free(s);

    env_config_free(stg);
    free(r1);
    free(r2);
    free(r3);
}

/* Rolls back once with the given keep_previous and returns how the blue slot
 * (which held the previous release) was treated: its "since" before and after. */
static void rollback_once(struct fixture *f, const char *name, int64_t keep_previous_ms,
                          const char *r1, const char *r2, int64_t *since_before,
                          int64_t *since_after, int64_t *t_rollback)
{
    struct env_config *c = env_load(f, name, "strategy: blue-green\n");
    c->keep_previous_ms = keep_previous_ms;
    struct deploy_result res;
    struct sw_err err = {0};
    struct deploy_opts sw = ALICE;
    sw.do_switch = 1;
    assert_int_equal(deploy_release(f->st, c, r1, &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(deploy_release(f->st, c, r2, &sw, &res, &err), 0);
    deploy_result_free(&res);
    struct env_state *s = state_of(f, name);
    assert_string_equal(s->slot_release[SLOT_BLUE], r1);
    assert_string_equal(s->previous_release, r1);
    *since_before = s->slot_since_ms[SLOT_BLUE];
    clock_past(s->previous_since_ms);
    env_state_free(s);

    *t_rollback = time_now_ms();
    assert_int_equal(deploy_rollback(f->st, c, NULL, &ALICE, &res, &err), 0);
    assert_string_equal(res.action, "rollback");
    assert_string_equal(res.from, r2);
    assert_string_equal(res.to, r1);
    assert_int_equal(res.slot, SLOT_BLUE);
    assert_true(res.switched);
    assert_int_equal(res.generation, 3);
    deploy_result_free(&res);
    s = state_of(f, name);
    assert_int_equal(s->live_slot, SLOT_BLUE);
    assert_string_equal(s->live_release, r1);
    assert_string_equal(s->previous_release, r2);
    assert_string_equal(s->slot_release[SLOT_GREEN], r2);
    *since_after = s->slot_since_ms[SLOT_BLUE];
    env_state_free(s);
    env_config_free(c);
}

static void test_rollback_flip_or_deploy(void **state)
{
    struct fixture *f = *state;
    char *r1 = make_release(f), *r2 = make_release(f), *r3 = make_release(f);
    int64_t before, after, t;
    /* within keep_previous: the instant flip, the blue slot is not rewritten */
    rollback_once(f, "flip", 24LL * 3600 * 1000, r1, r2, &before, &after, &t);
    assert_int_equal(after, before);
    /* keep_previous expired: the previous release is deployed again */
    rollback_once(f, "redo", 0, r1, r2, &before, &after, &t);
    assert_true(after > before);
    assert_true(after >= t);

    /* rollback --to a release the idle slot holds is a flip whatever its age */
    struct env_config *c = env_load(f, "redo", "strategy: blue-green\n");
    c->keep_previous_ms = 0;
    struct deploy_result res;
    struct sw_err err = {0};
    struct env_state *s = state_of(f, "redo");
    int64_t green_since = s->slot_since_ms[SLOT_GREEN];
    clock_past(s->updated_ms);
    env_state_free(s);
    assert_int_equal(deploy_rollback(f->st, c, r2, &ALICE, &res, &err), 0);
    assert_int_equal(res.slot, SLOT_GREEN);
    deploy_result_free(&res);
    s = state_of(f, "redo");
    assert_int_equal(s->slot_since_ms[SLOT_GREEN], green_since);
    assert_string_equal(s->live_release, r2);
    env_state_free(s);
    /* rollback --to a release no slot holds: it goes to the idle slot and live */
    assert_int_equal(deploy_rollback(f->st, c, r3, &ALICE, &res, &err), 0);
    assert_int_equal(res.slot, SLOT_BLUE);
    assert_string_equal(res.to, r3);
    assert_int_equal(res.generation, 5);
    deploy_result_free(&res);
    s = state_of(f, "redo");
    assert_string_equal(s->slot_release[SLOT_BLUE], r3);
    assert_string_equal(s->slot_release[SLOT_GREEN], r2);
    assert_string_equal(s->previous_release, r2);
    env_state_free(s);
    /* --to an unknown release changes nothing */
    assert_int_equal(deploy_rollback(f->st, c, "r-19990101-000000-000-000000", &ALICE, &res, &err),
                     SW_ENOTFOUND);
    s = state_of(f, "redo");
    assert_int_equal(s->generation, 5);
    env_state_free(s);
    env_config_free(c);
    free(r1);
    free(r2);
    free(r3);
}

/* The environment file may switch strategy between changes. */
static void test_strategy_change(void **state)
{
    struct fixture *f = *state;
    char *r1 = make_release(f), *r2 = make_release(f);
    struct env_config *direct = env_load(f, "web", "strategy: direct\n");
    struct deploy_result res;
    assert_int_equal(deploy_release(f->st, direct, r1, &ALICE, &res, NULL), 0);
    deploy_result_free(&res);
    struct env_config *bg = env_load(f, "web", "strategy: blue-green\n");
    assert_int_equal(deploy_release(f->st, bg, r2, &ALICE, &res, NULL), 0);
    assert_int_equal(res.slot, SLOT_GREEN);
    assert_false(res.switched);
    deploy_result_free(&res);
    struct env_state *s = state_of(f, "web");
    assert_int_equal(s->strategy, STRATEGY_BLUE_GREEN);
    assert_int_equal(s->live_slot, SLOT_BLUE);
    assert_string_equal(s->slot_release[SLOT_BLUE], r1);
    assert_string_equal(s->slot_release[SLOT_GREEN], r2);
    assert_string_equal(s->live_release, r1);
    env_state_free(s);
    env_config_free(direct);
    env_config_free(bg);
    free(r1);
    free(r2);
}

/* ---- the lease and compare-and-swap -------------------------------------------- */

/* Writes a lease held by owner/pid into env's state, as a change in progress
 * would; the state's document as written (caller frees). */
static char *put_lease(struct fixture *f, const char *env, const char *owner, int64_t pid,
                       int64_t expires_ms)
{
    struct env_state *s = state_of(f, env);
    struct sw_err err = {0};
    env_lease_clear(&s->lease);
    s->lease = (struct env_lease){.owner = xstrdup(owner),
                                  .actor = xstrdup("bob"),
                                  .pid = pid,
                                  .since_ms = time_now_ms() - 2000,
                                  .expires_ms = expires_ms};
    snprintf(s->lease.action, sizeof(s->lease.action), "deploy");
    assert_int_equal(deploy_state_save(f->st, s, &err), 0);
    env_state_free(s);
    char *doc = NULL;
    size_t len;
    char *key = xasprintf("envs/%s/state.json", env);
    assert_int_equal(store_get(f->st, key, &doc, &len, NULL, NULL), 0);
    free(key);
    return doc;
}

static char *state_doc(struct fixture *f, const char *env)
{
    char *doc = NULL, *key = xasprintf("envs/%s/state.json", env);
    size_t len;
    int rc = store_get(f->st, key, &doc, &len, NULL, NULL);
    free(key);
    return rc ? NULL : doc;
}

static void test_lock(void **state)
{
    struct fixture *f = *state;
    struct env_config *dev = env_load(f, "dev", "strategy: direct\n");
    char *r1 = make_release(f), *r2 = make_release(f);
    struct deploy_result res;
    struct sw_err err = {0};

    /* held by someone else, lease running: refused, nothing changed (not even the
     * document of an environment never deployed, which holds only the lease) */
    char *before = put_lease(f, "dev", "otherhost", 4242, time_now_ms() + 3600 * 1000);
    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), DEPLOY_ELOCKED);
    assert_non_null(
        strstr(err.msg, "locked by another change (deploy by bob, pid 4242 on otherhost"));
    assert_non_null(strstr(err.msg, "lease expires at"));
    char *after = state_doc(f, "dev");
    assert_non_null(after);
    assert_string_equal(after, before); /* the holder's lease is left alone */
    free(before);
    free(after);
    assert_int_equal(deploy_rollback(f->st, dev, r1, &ALICE, &res, &err), DEPLOY_ELOCKED);
    struct env_state *s = state_of(f, "dev");
    assert_int_equal(s->generation, 0);
    assert_null(s->live_release);
    env_state_free(s);

    /* an expired lease is taken over, and the change's write leaves it out */
    free(put_lease(f, "dev", "otherhost", 4242, time_now_ms() - 1000));
    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), 0);
    assert_int_equal(res.generation, 1);
    deploy_result_free(&res);
    s = state_of(f, "dev");
    assert_null(s->lease.owner);
    assert_string_equal(s->live_release, r1);
    env_state_free(s);

    /* held by a process of this host that no longer exists: taken over at once,
     * with hours of its lease left */
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    assert_true(child > 0);
    assert_int_equal(waitpid(child, NULL, 0), child);
    free(put_lease(f, "dev", sys_host(), child, time_now_ms() + 3600 * 1000));
    assert_int_equal(deploy_release(f->st, dev, r2, &ALICE, &res, &err), 0);
    assert_int_equal(res.generation, 2);
    deploy_result_free(&res);

    /* a change that makes nothing gives the lease back: the state as it was */
    before = state_doc(f, "dev");
    assert_int_equal(deploy_release(f->st, dev, r2, &ALICE, &res, &err), DEPLOY_ENOTHING);
    after = state_doc(f, "dev");
    assert_string_equal(after, before);
    free(before);
    free(after);

    /* so does one on an environment never deployed: it has no document again */
    struct env_config *qa = env_load(f, "qa", "strategy: blue-green\n");
    assert_int_equal(deploy_switch(f->st, qa, &ALICE, &res, &err), DEPLOY_ENOTHING);
    assert_null(state_doc(f, "qa"));

    /* a lease of the wrong form is a state no change trusts */
    char *bad = xasprintf("{\"env\":\"qa\",\"strategy\":\"direct\",\"generation\":0,"
                          "\"lease\":{\"owner\":\"h\\u001b[2Jx\",\"pid\":1,\"actor\":\"bob\","
                          "\"action\":\"deploy\",\"since\":\"2026-01-01T00:00:00Z\","
                          "\"expires\":\"2026-01-01T00:01:00Z\"}}");
    assert_int_equal(store_put(f->st, "envs/qa/state.json", bad, strlen(bad), 0, NULL, NULL), 0);
    free(bad);
    assert_int_equal(deploy_switch(f->st, qa, &ALICE, &res, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "lease holds a field of the wrong form"));
    env_config_free(qa);
    env_config_free(dev);
    free(r1);
    free(r2);
}

struct bg_deploy {
    struct store *st;
    const struct env_config *env;
    const char *release;
    int rc;
    struct sw_err err;
};

static void *bg_deploy(void *arg)
{
    struct bg_deploy *b = arg;
    struct deploy_result res;
    b->rc = deploy_release(b->st, b->env, b->release, &ALICE, &res, &b->err);
    if (!b->rc)
        deploy_result_free(&res);
    return NULL;
}

/* A change that holds the lease (held open by the test hook) meets a second
 * change (locked out) and then a state written behind its back (it must lose
 * the compare-and-swap and change nothing). */
static void test_concurrent_change(void **state)
{
    struct fixture *f = *state;
    struct env_config *dev = env_load(f, "dev", "strategy: direct\n");
    char *r1 = make_release(f), *r2 = make_release(f);
    struct deploy_result res;
    struct sw_err err = {0};
    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), 0);
    deploy_result_free(&res);

    /* The change reads the state, takes the lease and then waits in
     * the test hook, held until the test has done its part however long a loaded
     * machine takes; the hook says it is holding (HOLD.held): the test waits for
     * that, not for a time. */
    char *hold = path_join(f->dir, "release-the-hold");
    char *held = xasprintf("%s.held", hold);
    setenv("SLIPWAY_TEST_DEPLOY_HOLD_FILE", hold, 1);
    struct bg_deploy b = {f->st, dev, r2, 0, {0}};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bg_deploy, &b), 0);
    for (int i = 0; i < 3000 && access(held, F_OK) != 0; i++)
        usleep(10000);
    assert_int_equal(access(held, F_OK), 0);
    free(held);
    struct env_state *s = state_of(f, "dev");
    assert_non_null(s->lease.owner);
    assert_int_equal(s->lease.pid, getpid());
    env_state_free(s);
    assert_int_equal(deploy_release(f->st, dev, r2, &ALICE, &res, &err), DEPLOY_ELOCKED);

    /* a writer that ignores the lease: the change holding it must lose the CAS */
    s = state_of(f, "dev");
    env_lease_clear(&s->lease);
    free(s->last.actor);
    s->last.actor = xstrdup("intruder");
    s->generation = 7;
    s->last.generation = 7;
    assert_int_equal(deploy_state_save(f->st, s, &err), 0);
    env_state_free(s);
    int fd = open(hold, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(pthread_join(t, NULL), 0);
    unsetenv("SLIPWAY_TEST_DEPLOY_HOLD_FILE");
    free(hold);
    assert_int_equal(b.rc, SW_ECONFLICT);
    assert_non_null(strstr(b.err.msg, "dev"));
    s = state_of(f, "dev");
    assert_int_equal(s->generation, 7);
    assert_string_equal(s->live_release, r1);
    assert_string_equal(s->last.actor, "intruder");
    /* and its giving the lease back did not touch the intruder's state */
    assert_null(s->lease.owner);
    env_state_free(s);
    env_config_free(dev);
    free(r1);
    free(r2);
}

static void test_state_cas(void **state)
{
    struct fixture *f = *state;
    struct sw_err err = {0};
    /* two writers of a new environment: the second finds it exists */
    struct env_state *a = state_of(f, "qa"), *b = state_of(f, "qa");
    a->strategy = b->strategy = STRATEGY_BLUE_GREEN;
    a->generation = b->generation = 1;
    a->live_slot = SLOT_GREEN;
    a->slot_release[SLOT_GREEN] = xstrdup("r-g");
    a->slot_release[SLOT_BLUE] = xstrdup("r-b");
    a->live_release = xstrdup("r-g");
    a->previous_release = xstrdup("r-b");
    a->previous_since_ms = 1700000000123;
    a->slot_since_ms[SLOT_BLUE] = 1700000000001;
    a->slot_since_ms[SLOT_GREEN] = 1700000000002;
    a->updated_ms = 1700000000456;
    snprintf(a->last.action, sizeof(a->last.action), "switch");
    a->last.from = xstrdup("r-b");
    a->last.to = xstrdup("r-g");
    a->last.actor = xstrdup("alice");
    a->last.message = xstrdup("m");
    a->last.time_ms = 1700000000456;
    a->last.generation = 1;
    assert_int_equal(deploy_state_save(f->st, a, &err), 0);
    assert_int_equal(strlen(a->etag), SHA256_HEX_LEN);
    assert_int_equal(deploy_state_save(f->st, b, &err), SW_ECONFLICT);
    assert_non_null(strstr(err.msg, "qa"));

    /* every field survives the round trip */
    struct env_state *c = state_of(f, "qa");
    assert_string_equal(c->env, "qa");
    assert_int_equal(c->strategy, STRATEGY_BLUE_GREEN);
    assert_int_equal(c->generation, 1);
    assert_int_equal(c->live_slot, SLOT_GREEN);
    assert_string_equal(c->slot_release[SLOT_GREEN], "r-g");
    assert_string_equal(c->slot_release[SLOT_BLUE], "r-b");
    assert_int_equal(c->slot_since_ms[SLOT_BLUE], 1700000000001);
    assert_int_equal(c->slot_since_ms[SLOT_GREEN], 1700000000002);
    assert_string_equal(c->live_release, "r-g");
    assert_string_equal(c->previous_release, "r-b");
    assert_int_equal(c->previous_since_ms, 1700000000123);
    assert_int_equal(c->updated_ms, 1700000000456);
    assert_string_equal(c->last.action, "switch");
    assert_string_equal(c->last.from, "r-b");
    assert_string_equal(c->last.to, "r-g");
    assert_string_equal(c->last.actor, "alice");
    assert_string_equal(c->last.message, "m");
    assert_int_equal(c->last.time_ms, 1700000000456);
    assert_int_equal(c->last.generation, 1);
    assert_string_equal(c->etag, a->etag);

    /* a stale ETag loses, the current one wins */
    c->generation = 2;
    assert_int_equal(deploy_state_save(f->st, c, &err), 0);
    a->generation = 3;
    assert_int_equal(deploy_state_save(f->st, a, &err), SW_ECONFLICT);
    struct env_state *d = state_of(f, "qa");
    assert_int_equal(d->generation, 2);
    env_state_free(d);

    /* a state document that is not one is an error naming it */
    assert_int_equal(store_put(f->st, "envs/bad/state.json", "{\"x\":1}", 7, 0, NULL, NULL), 0);
    assert_int_equal(deploy_state_load(f->st, "bad", &d, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "envs/bad/state.json"));
    env_state_free(a);
    env_state_free(b);
    env_state_free(c);
}

/* ---- history ------------------------------------------------------------------- */

static void test_history(void **state)
{
    struct fixture *f = *state;
    struct env_config *dev = env_load(f, "dev", "strategy: direct\n");
    struct env_config *stg = env_load(f, "staging", "strategy: blue-green\n");
    char *r1 = make_release(f), *r2 = make_release(f);
    struct deploy_result res;
    struct sw_err err = {0};
    struct deploy_opts bob = {.actor = "bob"};
    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(deploy_release(f->st, stg, r1, &bob, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(deploy_release(f->st, dev, r2, &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(deploy_release(f->st, stg, r2, &bob, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(deploy_switch(f->st, stg, &bob, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(deploy_rollback(f->st, dev, NULL, &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    /* a failed change leaves no event */
    assert_int_equal(deploy_switch(f->st, dev, &ALICE, &res, &err), DEPLOY_ESTRATEGY);

    struct deploy_event *ev;
    size_t n;
    assert_int_equal(deploy_history(f->st, "dev", &ev, &n, &err), 0);
    assert_int_equal(n, 3);
    const char *actions[] = {"deploy", "deploy", "rollback"};
    const char *from[] = {NULL, r1, r2}, *to[] = {r1, r2, r1};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(ev[i].env, "dev");
        assert_string_equal(ev[i].action, actions[i]);
        assert_str_or_null(ev[i].from, from[i]);
        assert_str_or_null(ev[i].to, to[i]);
        assert_string_equal(ev[i].actor, "alice");
        assert_string_equal(ev[i].message, "ship it");
        assert_int_equal(ev[i].generation, (int64_t)i + 1);
        int64_t ms;
        assert_int_equal(time_parse_iso(ev[i].time, &ms), 0);
        if (i)
            assert_true(ev[i].seq > ev[i - 1].seq);
    }
    deploy_events_free(ev, n);
    assert_int_equal(deploy_history(f->st, "staging", &ev, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(ev[2].action, "switch");
    assert_string_equal(ev[2].from, r1);
    assert_string_equal(ev[2].to, r2);
    assert_string_equal(ev[2].actor, "bob");
    assert_null(ev[2].message);
    deploy_events_free(ev, n);
    /* all environments: one gapless sequence */
    assert_int_equal(deploy_history(f->st, NULL, &ev, &n, &err), 0);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ev[i].seq, (int64_t)i + 1);
    deploy_events_free(ev, n);
    assert_int_equal(deploy_history(f->st, "nobody", &ev, &n, &err), 0);
    assert_int_equal(n, 0);
    deploy_events_free(ev, n);

    size_t checked = 0;
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), 0);
    assert_int_equal(checked, 6);

    /* the newest event has no successor to link to it, and the head that
     * holds it hashes what it holds; the state pins it */
    char *data;
    size_t len;
    assert_int_equal(store_get(f->st, "events/head.json", &data, &len, NULL, NULL), 0);
    char *who = strstr(data, "alice");
    assert_non_null(who);
    memcpy(who, "malic", 5);
    char *orig = NULL;
    assert_int_equal(store_get(f->st, "events/head.json", &orig, &len, NULL, NULL), 0);
    sf_put_str(f->st, "events/head.json", data);
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "events/000000000006.json: altered"));
    sf_put_str(f->st, "events/head.json", orig);
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), 0);
    free(orig);
    free(data);

    /* editing an event breaks the link the next one carries */
    assert_int_equal(store_get(f->st, "events/000000000002.json", &data, &len, NULL, NULL), 0);
    char *bobp = strstr(data, "\"bob\"");
    assert_non_null(bobp);
    memcpy(bobp, "\"eve\"", 5);
    sf_put_str(f->st, "events/000000000002.json", data);
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "events/000000000003.json"));
    free(data);
    /* so does removing one */
    sf_delete(f->st, "events/000000000002.json");
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "events/000000000002.json: missing"));
    env_config_free(dev);
    env_config_free(stg);
    free(r1);
    free(r2);
}

/* A crash between the state write and the event append leaves a state whose
 * last change has no event; the next change must write both. */
static void test_history_repair(void **state)
{
    struct fixture *f = *state;
    struct env_config *dev = env_load(f, "dev", "strategy: direct\n");
    char *r1 = make_release(f), *r2 = make_release(f), *r3 = make_release(f);
    struct deploy_result res;
    struct sw_err err = {0};
    assert_int_equal(deploy_release(f->st, dev, r1, &ALICE, &res, &err), 0);
    deploy_result_free(&res);

    struct env_state *s = state_of(f, "dev");
    s->generation = 2;
    free(s->live_release);
    s->live_release = xstrdup(r2);
    free(s->previous_release);
    s->previous_release = xstrdup(r1);
    env_change_clear(&s->last);
    snprintf(s->last.action, sizeof(s->last.action), "deploy");
    s->last.from = xstrdup(r1);
    s->last.to = xstrdup(r2);
    s->last.actor = xstrdup("crashed");
    s->last.time_ms = time_now_ms();
    s->last.generation = 2;
    assert_int_equal(deploy_state_save(f->st, s, &err), 0);
    env_state_free(s);

    assert_int_equal(deploy_release(f->st, dev, r3, &ALICE, &res, &err), 0);
    assert_int_equal(res.generation, 3);
    assert_string_equal(res.from, r2);
    deploy_result_free(&res);
    struct deploy_event *ev;
    size_t n;
    assert_int_equal(deploy_history(f->st, "dev", &ev, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ev[1].generation, 2);
    assert_string_equal(ev[1].actor, "crashed");
    assert_string_equal(ev[1].to, r2);
    assert_int_equal(ev[2].generation, 3);
    assert_string_equal(ev[2].from, r2);
    assert_string_equal(ev[2].to, r3);
    deploy_events_free(ev, n);
    size_t checked;
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), 0);
    assert_int_equal(checked, 3);
    /* repaired once only */
    assert_int_equal(deploy_rollback(f->st, dev, NULL, &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(deploy_history(f->st, "dev", &ev, &n, &err), 0);
    assert_int_equal(n, 4);
    deploy_events_free(ev, n);
    env_config_free(dev);
    free(r1);
    free(r2);
    free(r3);
}

/* The audit log holds every change of every environment exactly once, in one
 * gapless chain that verifies, and the head names its newest event: n events
 * in all, and for each environment generations 1.. in order. */
static void assert_events_once(struct fixture *f, size_t want)
{
    struct deploy_event *ev;
    size_t n, checked = 0;
    struct sw_err err = {0};
    assert_int_equal(deploy_history(f->st, NULL, &ev, &n, &err), 0);
    if (n != want)
        fail_msg("%zu events, want %zu", n, want);
    json_t *gens = json_object();
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ev[i].seq, (int64_t)i + 1);
        int64_t g = json_integer_value(json_object_get(gens, ev[i].env));
        if (ev[i].generation != g + 1)
            fail_msg("event %zu: %s generation %lld after %lld", i + 1, ev[i].env,
                     (long long)ev[i].generation, (long long)g);
        json_object_set_new(gens, ev[i].env, json_integer(ev[i].generation));
    }
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), 0);
    assert_int_equal(checked, want);
    char *head = NULL, hash[SHA256_HEX_LEN + 1];
    size_t len;
    int64_t seq;
    json_t *envs = NULL;
    assert_int_equal(store_get(f->st, "events/head.json", &head, &len, NULL, NULL), 0);
    assert_int_equal(deploy_head_parse(head, len, &seq, hash, &envs, NULL, &err), 0);
    assert_int_equal(seq, (int64_t)want);
    const char *name;
    json_t *g;
    json_object_foreach(gens, name, g)
    {
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(envs, name), "generation")),
            json_integer_value(g));
        struct env_state *s = state_of(f, name);
        assert_int_equal(s->generation, json_integer_value(g));
        env_state_free(s);
    }
    json_decref(envs);
    json_decref(gens);
    free(head);
    deploy_events_free(ev, n);
}

/* Another writer's change to env: its state and its event, written as change()
 * does (no lock: nobody else changes env here). */
static void other_change(struct fixture *f, const char *env, const char *release)
{
    struct env_state *s = state_of(f, env);
    struct sw_err err = {0};
    env_change_clear(&s->last);
    snprintf(s->last.action, sizeof(s->last.action), "deploy");
    s->last.from = s->live_release;
    s->live_release = xstrdup(release);
    s->last.to = xstrdup(release);
    s->last.actor = xstrdup("other");
    s->last.slot = SLOT_NONE;
    s->last.switched = 1;
    s->last.time_ms = time_now_ms();
    s->last.generation = ++s->generation;
    assert_int_equal(deploy_state_save(f->st, s, &err), 0);
    assert_int_equal(deploy_event_append(f->st, s, NULL, &err), 0);
    env_state_free(s);
}

/* A deploy of release to env that waits (test hook) after its first append,
 * holding the lock, while another writer changes other; then goes on. */
static void deploy_overtaken(struct fixture *f, const struct env_config *env, const char *release,
                             const char *other, const char *other_release)
{
    char *hold = path_join(f->dir, "release-the-hold");
    char *held = xasprintf("%s.held", hold);
    unlink(hold);
    unlink(held);
    setenv("SLIPWAY_TEST_DEPLOY_HOLD_FILE", hold, 1);
    struct bg_deploy b = {f->st, env, release, 0, {0}};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bg_deploy, &b), 0);
    for (int i = 0; i < 3000 && access(held, F_OK) != 0; i++)
        usleep(10000);
    assert_int_equal(access(held, F_OK), 0);
    other_change(f, other, other_release);
    int fd = open(hold, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(pthread_join(t, NULL), 0);
    unsetenv("SLIPWAY_TEST_DEPLOY_HOLD_FILE");
    if (b.rc)
        fail_msg("the overtaken deploy: %s", b.err.msg);
    free(held);
    free(hold);
}

/* A change appends twice (the repair of the last change's event, then its
 * own) from one read of the audit head: however the head moves between the
 * two, each change is recorded exactly once and the chain verifies. Changes
 * to two environments alternately; another environment's change appended
 * while a change holds its lock between its appends; and that again after a
 * crash left the last change without its event, so the first append writes. */
static void test_history_once(void **state)
{
    struct fixture *f = *state;
    struct env_config *dev = env_load(f, "dev", "strategy: direct\n");
    struct env_config *stg = env_load(f, "staging", "strategy: direct\n");
    char *r[2] = {make_release(f), make_release(f)};
    struct deploy_result res;
    struct sw_err err = {0};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(deploy_release(f->st, dev, r[i % 2], &ALICE, &res, &err), 0);
        deploy_result_free(&res);
        assert_int_equal(deploy_release(f->st, stg, r[i % 2], &ALICE, &res, &err), 0);
        deploy_result_free(&res);
    }
    assert_events_once(f, 6);

    /* dev's own event comes after staging's, which took the sequence number dev's
     * read of the head pointed at */
    deploy_overtaken(f, dev, r[1], "staging", r[1]);
    assert_events_once(f, 8);
    struct deploy_event *ev;
    size_t n;
    assert_int_equal(deploy_history(f->st, NULL, &ev, &n, &err), 0);
    assert_string_equal(ev[6].env, "staging");
    assert_string_equal(ev[7].env, "dev");
    assert_string_equal(ev[7].to, r[1]);
    deploy_events_free(ev, n);

    /* a crash after dev's state write, before its event */
    struct env_state *s = state_of(f, "dev");
    env_change_clear(&s->last);
    snprintf(s->last.action, sizeof(s->last.action), "deploy");
    s->last.from = s->live_release;
    s->live_release = xstrdup(r[0]);
    s->last.to = xstrdup(r[0]);
    s->last.actor = xstrdup("crashed");
    s->last.slot = SLOT_NONE;
    s->last.switched = 1;
    s->last.time_ms = time_now_ms();
    s->last.generation = ++s->generation;
    assert_int_equal(deploy_state_save(f->st, s, &err), 0);
    env_state_free(s);
    deploy_overtaken(f, dev, r[1], "staging", r[0]);
    assert_events_once(f, 11);
    assert_int_equal(deploy_history(f->st, NULL, &ev, &n, &err), 0);
    assert_string_equal(ev[8].env, "dev");
    assert_string_equal(ev[8].actor, "crashed");
    assert_string_equal(ev[9].env, "staging");
    assert_string_equal(ev[10].env, "dev");
    assert_string_equal(ev[10].from, r[0]);
    deploy_events_free(ev, n);
    /* and the next changes go on from there */
    assert_int_equal(deploy_release(f->st, stg, r[1], &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(deploy_release(f->st, dev, r[0], &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    assert_events_once(f, 13);
    env_config_free(dev);
    env_config_free(stg);
    free(r[0]);
    free(r[1]);
}

/* ---- hostile documents ------------------------------------------------------------ */

/* doc with the first occurrence of from replaced by to; caller frees. */
static char *replace_once(const char *doc, const char *from, const char *to)
{
    const char *at = strstr(doc, from);
    if (!at)
        fail_msg("'%s' is not in the document", from);
    return xasprintf("%.*s%s%s", (int)(at - doc), doc, to, at + strlen(from));
}

struct mutation {
    const char *from, *to; /* replace from by to in the good document */
    const char *why;       /* NULL: accepted; else part of the refusal */
};

/* A blue-green state as slipway writes it (compact): each mutation of it must
 * be refused with its reason, and the state reader keeps nothing of it. */
static void test_state_parse_hostile(void **state)
{
    static const char good[] =
        "{\"env\":\"staging\",\"strategy\":\"blue-green\",\"generation\":5,\"live_slot\":\"green\","
        "\"live_release\":\"r-2\",\"slots\":{\"blue\":{\"release\":\"r-1\",\"since\":"
        "\"2026-12-01T20:46:52.671Z\"},\"green\":{\"release\":\"r-2\",\"since\":"
        "\"2026-12-01T20:46:52.859Z\"}},\"previous_release\":\"r-1\",\"previous_since\":"
        "\"2026-12-01T20:46:52.859Z\",\"updated\":\"2026-12-01T20:46:52.859Z\",\"last_change\":"
        "{\"action\":\"deploy\",\"from\":\"r-1\",\"to\":\"r-2\",\"slot\":\"green\",\"switched\":"
        "true,"
        "\"actor\":\"alice\",\"message\":\"ship it\",\"time\":\"2026-12-01T20:46:52.859Z\","
        "\"generation\":5}}";
    static const char wrong[] = "a field has the wrong form";
    static const char last_wrong[] = "last_change holds a field of the wrong form";
    const struct mutation cases[] = {
        {"\"ship it\"", "\"ship it\"", NULL},
        {"\"ship it\"", "\"two\\nlines\\tand a tab\"", NULL},
        {"\"env\":\"staging\",", "", NULL}, /* the key names the environment */
        {"\"switched\":true", "\"switched\":null", NULL},
        {"\"live_release\":\"r-2\"", "\"live_release\":\"../../../etc/passwd\"", wrong},
        {"\"live_release\":\"r-2\"", "\"live_release\":7", wrong},
        {"\"blue-green\"", "\"yolo\"", "strategy is not direct or blue-green"},
        {"\"strategy\":\"blue-green\",", "", "not an environment state document"},
        {"\"blue-green\"", "\"direct\"", "a direct environment has no slots"},
        {"\"env\":\"staging\"", "\"env\":\"prod\"", "names another environment"},
        {"\"live_slot\":\"green\"", "\"live_slot\":\"blue\"", "not the release in the live slot"},
        {"\"live_slot\":\"green\"", "\"live_slot\":null", "live_release is set but live_slot"},
        {"\"live_slot\":\"green\"", "\"live_slot\":\"red\"", wrong},
        {"\"release\":\"r-2\"", "\"release\":null", "not the release in the live slot"},
        {"\"generation\":5,", "\"generation\":-1,", wrong},
        {"\"generation\":5,", "\"generation\":5.0,", wrong},
        {"\"generation\":5,", "\"generation\":\"5\",", wrong},
        {"\"generation\":5,", "\"generation\":1125899906842625,", wrong}, /* 2^50 + 1 */
        {"\"generation\":5,", "", wrong},
        {"\"slots\":{", "\"slots\":[],\"x\":{", wrong},
        {"\"blue\":{\"release\":\"r-1\"", "\"blue\":{\"release\":\"../x\"", wrong},
        {"\"blue\":{\"release\":\"r-1\"", "\"blue\":\"r-1\",\"x\":{\"release\":\"r-1\"", wrong},
        {"\"since\":\"2026-12-01T20:46:52.671Z\"", "\"since\":12", wrong},
        {"\"updated\":\"2026-12-01T20:46:52.859Z\"", "\"updated\":\"yesterday\"", wrong},
        /* times whose dump would not read back */
        {"\"updated\":\"2026-12-01T20:46:52.859Z\"", "\"updated\":\"1969-12-31T23:59:58.500Z\"",
         wrong},
        {"\"updated\":\"2026-12-01T20:46:52.859Z\"", "\"updated\":\"9999-12-31T23:59:60.000Z\"",
         wrong},
        {"\"since\":\"2026-12-01T20:46:52.671Z\"", "\"since\":\"0000-01-01T00:00:00.250Z\"", wrong},
        {"\"time\":\"2026-12-01T20:46:52.859Z\"", "\"time\":\"9999-99-99T99:99:99.000Z\"",
         last_wrong},
        {"\"time\":\"2026-12-01T20:46:52.859Z\"", "\"time\":\"9999-12-31T23:59:59.999Z\"", NULL},
        {"\"previous_release\":\"r-1\"", "\"previous_release\":\"r/1\"", wrong},
        {"\"actor\":\"alice\"", "\"actor\":\"eve\\nnot ok - forged\"", last_wrong},
        {"\"actor\":\"alice\"", "\"actor\":\"eve\\u001b[2K\"", last_wrong},
        {"\"actor\":\"alice\"", "\"actor\":\"eve\\u0085\"", last_wrong},
        {"\"ship it\"", "\"ok\\rnot ok - forged\"", last_wrong},
        {"\"ship it\"", "\"a\\u001b]0;owned\\u0007\"", last_wrong},
        {"\"slot\":\"green\"", "\"slot\":\"red\"", last_wrong},
        {"\"switched\":true", "\"switched\":\"yes\"", last_wrong},
        {"\"to\":\"r-2\"", "\"to\":\"../x\"", last_wrong},
        {"\"action\":\"deploy\"", "\"action\":\"delete\"", "last_change.action"},
        {"\"action\":\"deploy\"", "\"action\":\"deploy\\r\\n\"", "last_change.action"},
        {"\"action\":\"deploy\"", "\"action\":\"deploydeploydeploy\"", "last_change.action"},
        {"\"generation\":5}}", "\"generation\":6}}", "last_change is newer than the state"},
        {"\"last_change\":{", "\"last_change\":\"deploy\",\"x\":{", "not an object"},
        {"\"last_change\":{", "\"x\":{", "needs last_change"},
        {"\"last_change\":{", "\"last_change\":null,\"x\":{", "needs last_change"},
        {"\"generation\":5,", "\"generation\":5,\"generation\":5,", "duplicate"},
        {"\"actor\":\"alice\"", "\"actor\":\"alice\",\"actor\":\"bob\"", "duplicate"},
        {"\"live_slot\"",
         "\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
         "line 1"}, /* unbalanced and deep: refused by the JSON reader */
        {"\"alice\"", "\"ali\xc3\x28\"", "line 1"}, /* not UTF-8 */
        {"{\"env\"", "[{\"env\"", "line 1"},
        /* rejected: what an automatic rollback refused */
        {"\"updated\":",
         "\"rejected\":[{\"release\":\"r-3\",\"reason\":\"high-error-rate\",\"time\":\"2026-12-"
         "01T20:46:52.859Z\"}],\"updated\":",
         NULL},
        {"\"updated\":", "\"rejected\":[],\"updated\":", NULL},
        {"\"updated\":", "\"rejected\":{},\"updated\":", "rejected is not a list"},
        {"\"updated\":", "\"rejected\":[7],\"updated\":", "not an object"},
        {"\"updated\":",
         "\"rejected\":[{\"release\":\"r-3\",\"reason\":\"high-error-rate\",\"time\":\"2026-12-"
         "01T20:46:52.859Z\"}],\"updated\":",
         NULL},
        {"\"updated\":",
         "\"rejected\":[{\"release\":\"../"
         "x\",\"reason\":\"r\",\"time\":\"2026-12-01T20:46:52.859Z\"}],\"updated\":",
         "rejected holds an entry of the wrong form"},
        {"\"updated\":",
         "\"rejected\":[{\"release\":\"r-3\",\"reason\":\"a\\nnot ok - "
         "forged\",\"time\":\"2026-12-01T20:46:52.859Z\"}],\"updated\":",
         "rejected holds an entry of the wrong form"},
        {"\"updated\":",
         "\"rejected\":[{\"release\":\"r-3\",\"time\":\"2026-12-01T20:46:52.859Z\"}],\"updated\":",
         "rejected holds an entry of the wrong form"},
        {"\"updated\":", "\"rejected\":[{\"release\":\"r-3\",\"reason\":\"x\"}],\"updated\":",
         "rejected holds an entry of the wrong form"},
        {"\"updated\":",
         "\"rejected\":[{\"release\":\"r-3\",\"reason\":\"x\",\"time\":\"2026-12-01T20:46:52."
         "859Z\"},{\"release\":\"r-3\",\"reason\":\"y\",\"time\":\"2026-12-01T20:46:52.859Z\"}],"
         "\"updated\":",
         "rejected names a release twice"},
        {"\"updated\":", "%17\"updated\":", "rejected is not a list of at most 16"},
        {"\"action\":\"deploy\"", "\"action\":\"verdict\"", NULL},
    };
    struct buf many = BUF_INIT;
    buf_adds(&many, "\"rejected\":[");
    for (int k = 0; k < ENV_REJECTED_MAX + 1; k++)
        buf_addf(&many,
                 "%s{\"release\":\"r-%d\",\"reason\":\"x\",\"time\":\"2026-12-01T20:46:52.859Z\"}",
                 k ? "," : "", k + 10);
    buf_adds(&many, "],\"updated\":");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *to = strcmp(cases[i].to, "%17\"updated\":") ? cases[i].to : many.data;
        char *doc = replace_once(good, cases[i].from, to);
        struct env_state *s = xcalloc(1, sizeof(*s));
        s->env = xstrdup("staging");
        s->live_slot = s->last.slot = SLOT_NONE;
        s->last.switched = -1;
        struct sw_err err = {0};
        int rc =
            deploy_state_parse("envs/staging/state.json", "staging", doc, strlen(doc), s, &err);
        if (!cases[i].why) {
            if (rc)
                fail_msg("case %zu refused: %s", i, err.msg);
            assert_int_equal(s->strategy, STRATEGY_BLUE_GREEN);
            assert_int_equal(s->generation, 5);
            assert_int_equal(s->live_slot, SLOT_GREEN);
            assert_string_equal(s->live_release, "r-2");
            assert_string_equal(s->slot_release[SLOT_BLUE], "r-1");
            assert_true(!strcmp(s->last.action, "deploy") || !strcmp(s->last.action, "verdict"));
            assert_int_equal(s->last.slot, SLOT_GREEN);
            assert_int_equal(s->last.generation, 5);
            if (strstr(doc, "high-error-rate")) {
                assert_int_equal(s->nrejected, 1);
                assert_string_equal(s->rejected[0].release, "r-3");
                assert_non_null(deploy_rejection(s, "r-3"));
                assert_null(deploy_rejection(s, "r-2"));
            }
        } else {
            if (rc == 0)
                fail_msg("case %zu accepted: %s", i, doc);
            assert_int_equal(rc, SW_EINVAL);
            assert_true(str_starts_with(err.msg, "envs/staging/state.json: "));
            if (!strstr(err.msg, cases[i].why))
                fail_msg("case %zu: '%s' does not say '%s'", i, err.msg, cases[i].why);
        }
        env_state_free(s); /* partial fields of a refused document: no leak */
        free(doc);
    }
    buf_free(&many);
}

/* An audit event as slipway writes it: each mutation must be refused with its
 * reason, leaving the event cleared and no link. */
static void test_event_parse_hostile(void **state)
{
    static const char good[] =
        "{\"seq\":6,\"time\":\"2026-12-01T20:46:52.763Z\",\"env\":\"staging\",\"actor\":\"root\","
        "\"action\":\"switch\",\"from\":\"r-1\",\"to\":\"r-2\",\"slot\":\"green\",\"switched\":"
        "true,\"message\":\"go \\\"live\\\"\",\"generation\":3,\"prev\":"
        "\"589c6021cdf673f004d4f4fde9873d15a93bc00a984e4727a0723c0b2bfe53ee\"}";
    static const char text[] = "from, to, actor or message has the wrong form";
    static const char seq[] = "seq or generation";
    static const char tea[] = "time, env or action has the wrong form";
    const struct mutation cases[] = {
        {"\"root\"", "\"root\"", NULL},
        {"\"go \\\"live\\\"\"", "\"two\\nlines\\tand a tab\"", NULL},
        {"\"slot\":\"green\",\"switched\":true,", "", NULL}, /* an event from before slots */
        {"\"prev\":\"589c6021cdf673f004d4f4fde9873d15a93bc00a984e4727a0723c0b2bfe53ee\"",
         "\"prev\":null", NULL},
        {"\"seq\":6", "\"seq\":7", seq}, /* not the sequence its key names */
        {"\"seq\":6", "\"seq\":0", seq},
        {"\"seq\":6", "\"seq\":\"6\"", seq},
        {"\"seq\":6", "\"seq\":6.0", seq},
        {"\"generation\":3", "\"generation\":0", seq},
        {"\"generation\":3", "\"generation\":-3", seq},
        {"\"2026-12-01T20:46:52.763Z\"", "\"Tuesday\"", tea},
        /* sscanf skips blanks and line breaks: history would print them */
        {"\"2026-12-01T20:46:52.763Z\"", "\"\\n2026-12-01T20:46:52.763Z\"", tea},
        {"\"2026-12-01T20:46:52.763Z\"", "\"2026-12-01T\\r20:46:52.763Z\"", tea},
        {"\"2026-12-01T20:46:52.763Z\"", "\"2026-\\t12-01T20:46:52.763Z\"", tea},
        {"\"2026-12-01T20:46:52.763Z\"", "\"2026-12-01T20:46:52Z\"", tea}, /* not as written */
        {"\"2026-12-01T20:46:52.763Z\"", "\"1969-12-31T23:59:58.500Z\"", tea},
        {"\"2026-12-01T20:46:52.763Z\"", "\"9999-12-31T23:59:60.000Z\"", tea},
        {"\"staging\"", "\"../envs\"", tea},
        {"\"staging\"", "\"Staging\"", tea},
        {"\"switch\"", "\"destroy\"", tea},
        {"\"switch\"", "\"switch\\r\\n\"", tea},
        {"\"env\":\"staging\",", "", "not an event document"},
        {"\"prev\":\"589c", "\"prev\":\"589C", "prev is not 64 lowercase hex digits"},
        {"\"prev\":\"589c", "\"prev\":\"89c", "prev is not 64 lowercase hex digits"},
        {"\"prev\":\"589c6021cdf673f004d4f4fde9873d15a93bc00a984e4727a0723c0b2bfe53ee\"",
         "\"prev\":0", "prev is not 64 lowercase hex digits"},
        {"\"slot\":\"green\"", "\"slot\":\"red\"", "slot or switched"},
        {"\"slot\":\"green\"", "\"slot\":1", "slot or switched"},
        {"\"switched\":true", "\"switched\":\"true\"", "slot or switched"},
        {"\"root\"", "\"mallory\\u001b[2K\"", text},
        {"\"root\"", "\"eve\\n   9  2026-12-01T00:00:00  root\"", text},
        {"\"root\"", "\"eve\\u009b\"", text},
        {"\"go \\\"live\\\"\"", "\"ok\\rforged\"", text},
        {"\"go \\\"live\\\"\"", "\"\\u001b]8;;http://x\\u0007link\"", text},
        {"\"go \\\"live\\\"\"", "3", text},
        {"\"from\":\"r-1\"", "\"from\":\"../../etc/passwd\"", text},
        {"\"to\":\"r-2\"", "\"to\":7", text},
        {"\"seq\":6", "\"seq\":6,\"seq\":6", "duplicate"},
        {"\"root\"", "\"ro\xed\xa0\x80t\"", "line 1"}, /* a UTF-8 encoded surrogate */
        {"{\"seq\"", "[{\"seq\"", "line 1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *doc = replace_once(good, cases[i].from, cases[i].to);
        struct deploy_event e;
        char prev[SHA256_HEX_LEN + 1];
        struct sw_err err = {0};
        memset(&e, 0x5a, sizeof(e));
        int rc = deploy_event_parse("events/000000000006.json", doc, strlen(doc), &e, prev, &err);
        if (!cases[i].why) {
            if (rc)
                fail_msg("case %zu refused: %s", i, err.msg);
            assert_int_equal(e.seq, 6);
            assert_int_equal(e.generation, 3);
            assert_string_equal(e.env, "staging");
            assert_string_equal(e.action, "switch");
            assert_string_equal(e.from, "r-1");
            assert_string_equal(e.to, "r-2");
            assert_true(prev[0] == '\0' || hex_lower_valid(prev, SHA256_HEX_LEN));
            assert_true(e.switched == 1 || (e.switched == -1 && !e.slot));
            deploy_event_clear(&e);
        } else {
            static const struct deploy_event zero;
            if (rc == 0)
                fail_msg("case %zu accepted: %s", i, doc);
            assert_int_equal(rc, SW_EINVAL);
            assert_true(str_starts_with(err.msg, "events/000000000006.json: "));
            if (!strstr(err.msg, cases[i].why))
                fail_msg("case %zu: '%s' does not say '%s'", i, err.msg, cases[i].why);
            assert_memory_equal(&e, &zero, sizeof(zero));
            assert_string_equal(prev, "");
        }
        free(doc);
    }
    /* A sequence no 12-digit key can name is refused under any key: appending
     * after it would write keys that history never lists. */
    char *big = replace_once(good, "\"seq\":6", "\"seq\":1000000000000");
    struct deploy_event e;
    char prev[SHA256_HEX_LEN + 1];
    struct sw_err err = {0};
    assert_int_equal(deploy_event_parse("events/x.json", big, strlen(big), &e, prev, &err),
                     SW_EINVAL);
    assert_non_null(strstr(err.msg, seq));
    free(big);
    int64_t hseq;
    char hash[SHA256_HEX_LEN + 1];
    json_t *envs = NULL;
    const char *head = "{\"envs\":{},\"hash\":"
                       "\"589c6021cdf673f004d4f4fde9873d15a93bc00a984e4727a0723c0b2bfe53ee\","
                       "\"seq\":1000000000000}";
    assert_int_equal(deploy_head_parse(head, strlen(head), &hseq, hash, &envs, NULL, &err),
                     SW_EINVAL);
    assert_non_null(strstr(err.msg, "events/head.json: not an audit head"));
    assert_null(envs);
    head = "{\"envs\":{},\"hash\":"
           "\"589c6021cdf673f004d4f4fde9873d15a93bc00a984e4727a0723c0b2bfe53ee\","
           "\"seq\":999999999999}";
    assert_int_equal(deploy_head_parse(head, strlen(head), &hseq, hash, &envs, NULL, &err), 0);
    assert_int_equal(hseq, 999999999999LL);
    json_decref(envs);
}

/* A store whose log has no head (written before heads existed) gets one built
 * from a listing of its events at the next change; a store with no head and no
 * first event has an empty log, known without listing; a log whose head and
 * first event were both removed is reported by --verify and refused by the
 * change after. */
static void test_audit_head_missing(void **state)
{
    struct fixture *f = *state;
    struct env_config *dev = env_load(f, "dev", "strategy: direct\n");
    char *r[2] = {make_release(f), make_release(f)};
    struct deploy_result res;
    struct sw_err err = {0};
    size_t checked;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(deploy_release(f->st, dev, r[i % 2], &ALICE, &res, &err), 0);
        deploy_result_free(&res);
    }
    sf_delete(f->st, "events/head.json");
    assert_int_equal(deploy_release(f->st, dev, r[1], &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), 0);
    assert_int_equal(checked, 4);
    char *head = NULL;
    size_t len;
    int64_t seq;
    char hash[SHA256_HEX_LEN + 1];
    json_t *envs = NULL;
    assert_int_equal(store_get(f->st, "events/head.json", &head, &len, NULL, NULL), 0);
    assert_int_equal(deploy_head_parse(head, len, &seq, hash, &envs, NULL, &err), 0);
    assert_int_equal(seq, 4);
    json_decref(envs);
    free(head);

    /* the first event and the head gone: the next change appends a new first
     * event, which the old second one does not link to */
    sf_delete(f->st, "events/head.json");
    sf_delete(f->st, "events/000000000001.json");
    assert_int_equal(deploy_release(f->st, dev, r[0], &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "events/000000000002.json: chain broken"));
    assert_int_equal(deploy_release(f->st, dev, r[1], &ALICE, &res, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "events/000000000002.json"));
    env_config_free(dev);
    free(r[0]);
    free(r[1]);
}

/* events/head.json holds the newest event, so removing events, removing the
 * head or editing any event is detected; a change writes only the head after
 * its state (its event becomes an object of its own at the next change); and
 * a head written before heads held their event (it named it by hash) is
 * continued the old way, including the crash it allowed between an event
 * write and the head update (the head one event behind), which the next
 * change repairs. */
static void test_audit_head(void **state)
{
    struct fixture *f = *state;
    struct env_config *dev = env_load(f, "dev", "strategy: direct\n");
    char *r[2] = {make_release(f), make_release(f)};
    struct deploy_result res;
    struct sw_err err = {0};
    enum { N = 5 };
    for (int i = 0; i < N; i++) {
        assert_int_equal(deploy_release(f->st, dev, r[i % 2], &ALICE, &res, &err), 0);
        deploy_result_free(&res);
    }

    /* the head holds the newest event: its sequence, document and generation */
    char *head = NULL, *data = NULL, *orig[N + 1] = {0}, hash[SHA256_HEX_LEN + 1];
    char key[64];
    size_t len, hlen, checked;
    int64_t seq;
    json_t *envs = NULL;
    assert_int_equal(store_get(f->st, "events/head.json", &head, &hlen, NULL, NULL), 0);
    assert_int_equal(deploy_head_parse(head, hlen, &seq, hash, &envs, &orig[N], &err), 0);
    assert_int_equal(seq, N);
    assert_non_null(orig[N]);
    for (int i = 1; i < N; i++) {
        snprintf(key, sizeof(key), "events/%012d.json", i);
        assert_int_equal(store_get(f->st, key, &orig[i], &len, NULL, NULL), 0);
    }
    /* the change wrote its event into the head only */
    snprintf(key, sizeof(key), "events/%012d.json", N);
    assert_int_equal(store_get(f->st, key, &data, &len, NULL, NULL), SW_ENOTFOUND);
    char want[SHA256_HEX_LEN + 1];
    sha256_hex(orig[N], strlen(orig[N]), want);
    assert_string_equal(hash, want);
    assert_non_null(strstr(orig[N], "\"seq\":5,"));
    assert_non_null(strstr(orig[N], "\"generation\":5,"));
    json_t *d = json_object_get(envs, "dev");
    assert_int_equal(json_integer_value(json_object_get(d, "seq")), N);
    assert_int_equal(json_integer_value(json_object_get(d, "generation")), N);
    json_decref(envs);
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), 0);
    assert_int_equal(checked, N);
    struct deploy_event *ev;
    size_t n;
    assert_int_equal(deploy_history(f->st, "dev", &ev, &n, &err), 0);
    assert_int_equal(n, N);
    assert_int_equal(ev[N - 1].seq, N);
    deploy_events_free(ev, n);

    /* the newest stored events removed: the head says so */
    snprintf(key, sizeof(key), "events/%012d.json", N - 1);
    assert_int_equal(store_delete(f->st, key, NULL, NULL), 0);
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "events/head.json names event 5 but the log ends at 3"));
    sf_put_str(f->st, key, orig[N - 1]);
    /* the head removed */
    assert_int_equal(store_delete(f->st, "events/head.json", NULL, NULL), 0);
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "events/head.json is missing"));
    sf_put_str(f->st, "events/head.json", head);
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), 0);
    /* any event edited, the one the head holds included: verify names it */
    for (int i = 1; i <= N; i++) {
        snprintf(key, sizeof(key), "events/%012d.json", i);
        if (i < N) {
            char *edited = replace_once(orig[i], "\"alice\"", "\"malic\"");
            sf_put_str(f->st, key, edited);
            free(edited);
        } else {
            char *edited = replace_once(head, "alice", "malic");
            sf_put_str(f->st, "events/head.json", edited);
            free(edited);
        }
        assert_int_equal(deploy_history_verify(f->st, &checked, &err), SW_EINVAL);
        if (!strstr(err.msg, key))
            fail_msg("editing %s: '%s' does not name it", key, err.msg);
        sf_put_str(f->st, i < N ? key : "events/head.json", i < N ? orig[i] : head);
    }
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), 0);
    /* an object for the held event that is not it: altered */
    snprintf(key, sizeof(key), "events/%012d.json", N);
    char *other = replace_once(orig[N], "\"alice\"", "\"malic\"");
    sf_put_str(f->st, key, other);
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "events/000000000005.json: altered (its hash"));
    /* and the next change refuses to build on it */
    assert_int_equal(deploy_release(f->st, dev, r[N % 2], &ALICE, &res, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "events/000000000005.json is not the newest event"));
    sf_delete(f->st, key);
    free(other);

    /* A head that names its event by hash, as heads did before they held it,
     * over events that are all objects. */
    sf_put_str(f->st, key, orig[N]);
    free(head);
    head = xasprintf("{\"envs\":{\"dev\":{\"generation\":%d,\"seq\":%d}},\"hash\":\"%s\","
                     "\"seq\":%d}",
                     N, N, want, N);
    sf_put_str(f->st, "events/head.json", head);
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), 0);
    assert_int_equal(checked, N);

    /* A crash after the state and event 6 were written, before the head moved:
     * the state is at generation 6, event 6 links to the head, the head names 5. */
    struct env_state *s = state_of(f, "dev");
    const char *from = s->live_release, *to = r[N % 2];
    free(s->previous_release);
    s->previous_release = xstrdup(from);
    env_change_clear(&s->last);
    snprintf(s->last.action, sizeof(s->last.action), "deploy");
    s->last.from = xstrdup(from);
    s->last.to = xstrdup(to);
    s->last.actor = xstrdup("crashed");
    s->last.slot = SLOT_NONE;
    s->last.switched = 1;
    s->last.time_ms = time_now_ms();
    s->last.generation = s->generation = N + 1;
    free(s->live_release);
    s->live_release = xstrdup(to);
    assert_int_equal(deploy_state_save(f->st, s, &err), 0);
    char when[40];
    time_format_iso(s->last.time_ms, when, sizeof(when));
    char *ev6 = xasprintf("{\"seq\":%d,\"time\":\"%s\",\"env\":\"dev\",\"actor\":\"crashed\","
                          "\"action\":\"deploy\",\"from\":\"%s\",\"to\":\"%s\",\"slot\":null,"
                          "\"switched\":true,\"message\":null,\"generation\":%d,\"prev\":\"%s\"}",
                          N + 1, when, s->last.from, s->last.to, N + 1, want);
    env_state_free(s);
    snprintf(key, sizeof(key), "events/%012d.json", N + 1);
    sf_put_str(f->st, key, ev6);
    /* the one window verify accepts: the head one event behind */
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), 0);
    assert_int_equal(checked, N + 1);

    /* an extra event that does not link to the head is not taken over */
    char *forged =
        replace_once(ev6, want, "0000000000000000000000000000000000000000000000000000000000000000");
    sf_put_str(f->st, key, forged);
    assert_int_equal(deploy_release(f->st, dev, r[0], &ALICE, &res, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, key));
    sf_put_str(f->st, key, ev6);
    free(forged);

    /* the next change moves the head over event 6, then appends its own,
     * which the head now holds */
    assert_int_equal(deploy_release(f->st, dev, r[0], &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), 0);
    assert_int_equal(checked, N + 2);
    assert_int_equal(store_get(f->st, key, &data, &len, NULL, NULL), 0);
    assert_string_equal(data, ev6); /* taken over as it was */
    sha256_hex(data, len, want);
    free(data);
    free(head);
    char *ev7 = NULL;
    assert_int_equal(store_get(f->st, "events/head.json", &head, &hlen, NULL, NULL), 0);
    assert_int_equal(deploy_head_parse(head, hlen, &seq, hash, &envs, &ev7, &err), 0);
    assert_int_equal(seq, N + 2);
    assert_non_null(ev7);
    assert_non_null(strstr(ev7, want)); /* event 7 links to event 6 */
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(envs, "dev"), "generation")), N + 2);
    json_decref(envs);
    /* and the change after stores event 7 as it was held */
    assert_int_equal(deploy_release(f->st, dev, r[1], &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    snprintf(key, sizeof(key), "events/%012d.json", N + 2);
    assert_int_equal(store_get(f->st, key, &data, &len, NULL, NULL), 0);
    assert_string_equal(data, ev7);
    free(data);
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), 0);
    assert_int_equal(checked, N + 3);

    free(ev7);
    free(ev6);
    free(head);
    for (int i = 1; i <= N; i++)
        free(orig[i]);
    free(r[0]);
    free(r[1]);
    env_config_free(dev);
}

/* ---- garbage collection ---------------------------------------------------------- */

static int blob_exists(struct fixture *f, const char *release_id, const char *path)
{
    struct release *r;
    assert_int_equal(release_load(f->st, release_id, &r, NULL), 0);
    int found = -1;
    for (size_t i = 0; i < r->nfiles; i++)
        if (!strcmp(r->files[i].path, path)) {
            char key[128];
            struct store_stat sb;
            release_blob_key(r->files[i].blob, key, sizeof(key));
            found = store_head(f->st, key, &sb, 0, NULL) == 0;
        }
    release_free(r);
    assert_int_not_equal(found, -1);
    return found;
}

static size_t count_keys(struct store *st, const char *prefix)
{
    struct store_list l;
    assert_int_equal(store_list_all(st, prefix, &l, NULL), 0);
    size_t n = l.n;
    store_list_free(&l);
    return n;
}

static int report_has(const struct gc_report *rep, const char *id)
{
    for (size_t i = 0; i < rep->nreleases; i++)
        if (!strcmp(rep->releases[i], id))
            return 1;
    return 0;
}

static void test_gc(void **state)
{
    struct fixture *f = *state;
    struct env_config *envs[3];
    envs[0] = env_load(f, "dev", "strategy: direct\nretain_releases: 1\n");
    envs[1] = env_load(f, "stage", "strategy: blue-green\nretain_releases: 1\n");
    envs[1]->keep_previous_ms = 0;
    envs[2] = env_load(f, "prod", "strategy: direct\nretain_releases: 2\n");
    envs[2]->keep_previous_ms = 0;
    char *r[9];
    for (int i = 1; i <= 8; i++)
        r[i] = make_release(f);
    struct deploy_result res;
    struct sw_err err = {0};
    const int plan[][2] = {{0, 1}, {0, 2}, {1, 3}, {1, 4}, {2, 5}, {2, 6}, {2, 7}};
    for (size_t i = 0; i < sizeof(plan) / sizeof(*plan); i++) {
        assert_int_equal(deploy_release(f->st, envs[plan[i][0]], r[plan[i][1]], &ALICE, &res, &err),
                         0);
        deploy_result_free(&res);
    }
    /* dev: live r2, previous r1 (within 24h); stage: slots r3 (live) and r4;
     * prod: live r7, retained r6; r5 fell out of prod's two; r8 never deployed */
    clock_past(time_now_ms());
    assert_int_equal(count_keys(f->st, "releases/"), 8);
    assert_int_equal(count_keys(f->st, RELEASE_BLOB_PREFIX), 9);

    struct gc_report rep;
    assert_int_equal(deploy_gc(f->st, envs, 3, NULL, 0, 0, &rep, &err), 0);
    assert_int_equal(rep.nreleases, 2);
    assert_true(report_has(&rep, r[5]));
    assert_true(report_has(&rep, r[8]));
    assert_int_equal(rep.kept, 6);
    assert_int_equal(rep.blobs, 2); /* unique.txt of r5 and r8 */
    assert_int_equal(rep.bytes, 20);
    gc_report_free(&rep);
    /* a dry run deletes nothing */
    assert_int_equal(count_keys(f->st, "releases/"), 8);
    assert_int_equal(count_keys(f->st, RELEASE_BLOB_PREFIX), 9);

    /* dev's previous release is kept by keep_previous alone */
    envs[0]->keep_previous_ms = 0;
    assert_int_equal(deploy_gc(f->st, envs, 3, NULL, 0, 0, &rep, &err), 0);
    assert_int_equal(rep.nreleases, 3);
    assert_true(report_has(&rep, r[1]));
    gc_report_free(&rep);
    envs[0]->keep_previous_ms = 24LL * 3600 * 1000;
    /* and everything younger than the grace period */
    assert_int_equal(deploy_gc(f->st, envs, 3, NULL, 0, 3600 * 1000, &rep, &err), 0);
    assert_int_equal(rep.nreleases, 0);
    assert_int_equal(rep.blobs, 0);
    gc_report_free(&rep);

    assert_int_equal(deploy_gc(f->st, envs, 3, NULL, 1, 0, &rep, &err), 0);
    assert_int_equal(rep.nreleases, 2);
    assert_int_equal(rep.blobs, 2);
    assert_int_equal(rep.temporaries, 0);
    gc_report_free(&rep);
    struct release *gone;
    assert_int_equal(release_load(f->st, r[5], &gone, NULL), SW_ENOTFOUND);
    assert_int_equal(release_load(f->st, r[8], &gone, NULL), SW_ENOTFOUND);
    assert_int_equal(count_keys(f->st, "releases/"), 6);
    assert_int_equal(count_keys(f->st, RELEASE_BLOB_PREFIX), 7);
    const int kept[] = {1, 2, 3, 4, 6, 7};
    for (size_t i = 0; i < 6; i++) {
        struct release *k;
        assert_int_equal(release_load(f->st, r[kept[i]], &k, &err), 0);
        assert_int_equal(release_verify(f->st, k, &err), 0);
        release_free(k);
        assert_true(blob_exists(f, r[kept[i]], "common.txt"));
    }
    /* again: nothing left to do */
    assert_int_equal(deploy_gc(f->st, envs, 3, NULL, 1, 0, &rep, &err), 0);
    assert_int_equal(rep.nreleases, 0);
    assert_int_equal(rep.blobs, 0);
    assert_int_equal(rep.kept, 6);
    gc_report_free(&rep);
    for (int i = 0; i < 3; i++)
        env_config_free(envs[i]);
    for (int i = 1; i <= 8; i++)
        free(r[i]);
}

/* gc --apply removes the temporary an interrupted write left, and counts it. */
/* A release written over another (manifest format 3) keeps its base: gc
 * deletes neither that manifest nor its bodies, even where the base itself
 * is no environment's. */
static void test_gc_delta(void **state)
{
    struct fixture *f = *state;
    struct env_config *env = env_load(f, "dev", "strategy: direct\nretain_releases: 1\n");
    env->keep_previous_ms = 0;
    char *r1 = make_release(f); /* common.txt and unique.txt */
    char *doc = xasprintf("{\"format\":3,\"id\":\"r-delta\",\"created\":\"2026-01-01T00:00:00Z\","
                          "\"base\":\"%s\",\"depth\":1,\"files_count\":1,\"bytes\":24,"
                          "\"files\":[],\"removed\":[\"unique.txt\"]}",
                          r1);
    assert_int_equal(store_put(f->st, "releases/r-delta.json", doc, strlen(doc), 0, NULL, NULL), 0);
    free(doc);
    char *r3 = make_release(f);
    struct deploy_result res;
    struct sw_err err = {0};
    assert_int_equal(deploy_release(f->st, env, r1, &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(deploy_release(f->st, env, "r-delta", &ALICE, &res, &err), 0);
    deploy_result_free(&res);
    clock_past(time_now_ms());
    struct gc_report rep;
    assert_int_equal(deploy_gc(f->st, &env, 1, NULL, 1, 0, &rep, &err), 0);
    assert_int_equal(rep.nreleases, 1); /* r3 only: r1 is r-delta's base */
    assert_true(report_has(&rep, r3));
    assert_int_equal(rep.kept, 2);
    assert_int_equal(rep.blobs, 1); /* r3's unique.txt; r1's stays with r1 */
    gc_report_free(&rep);
    struct release *r = NULL;
    assert_int_equal(release_load(f->st, "r-delta", &r, &err), 0);
    assert_int_equal(r->nfiles, 1);
    assert_int_equal(release_verify(f->st, r, &err), 0);
    release_free(r);
    assert_int_equal(release_load(f->st, r1, &r, &err), 0);
    assert_int_equal(release_verify(f->st, r, &err), 0);
    release_free(r);
    free(r1);
    free(r3);
    env_config_free(env);
}

static void test_gc_temporaries(void **state)
{
    SF_FS_ONLY("temporary files of interrupted writes (S3's leftovers are incomplete multipart "
               "uploads, which no store operation leaves behind to test with)");
    struct fixture *f = *state;
    struct env_config *env = env_load(f, "dev", "strategy: direct\n");
    char *dir = path_join(f->data, "blobs");
    assert_int_equal(fs_mkdir_p(dir, NULL), 0);
    write_str(dir, ".tmp.1.2.3", "half a body");
    struct gc_report rep;
    struct sw_err err = {0};
    assert_int_equal(deploy_gc(f->st, &env, 1, NULL, 0, 0, &rep, &err), 0);
    assert_int_equal(rep.temporaries, 0); /* a dry run removes nothing */
    gc_report_free(&rep);
    assert_int_equal(deploy_gc(f->st, &env, 1, NULL, 1, 0, &rep, &err), 0);
    assert_int_equal(rep.temporaries, 1);
    gc_report_free(&rep);
    char *tmp = path_join(dir, ".tmp.1.2.3");
    assert_int_not_equal(access(tmp, F_OK), 0);
    free(tmp);
    free(dir);
    env_config_free(env);
}

/* A release's gzip and br variants are its bodies too: gc keeps them with the
 * release, deletes them with it, and deploy refuses a release missing one. */
static void test_gc_keeps_variants(void **state)
{
    struct fixture *f = *state;
    struct env_config *env = env_load(f, "dev", "strategy: direct\nretain_releases: 1\n");
    env->keep_previous_ms = 0;
    char *ids[2];
    struct deploy_result res;
    struct sw_err err = {0};
    for (int i = 0; i < 2; i++) {
        struct buf css = BUF_INIT;
        for (int j = 0; j < 200; j++)
            buf_addf(&css, ".r%d-%d{margin:%dpx}\n", i, j, j);
        write_str(f->site, "app.css", css.data);
        buf_free(&css);
        struct release_create_opts o = {.dir = f->site};
        struct release_create_result rres;
        assert_int_equal(release_create(f->st, &o, &ids[i], &rres, &err), 0);
        assert_int_equal(rres.variants, 2);
        assert_int_equal(deploy_release(f->st, env, ids[i], &ALICE, &res, &err), 0);
        deploy_result_free(&res);
    }
    clock_past(time_now_ms());
    assert_int_equal(count_keys(f->st, RELEASE_BLOB_PREFIX), 6);
    struct gc_report rep;
    assert_int_equal(deploy_gc(f->st, &env, 1, NULL, 1, 0, &rep, &err), 0);
    assert_int_equal(rep.nreleases, 1);
    assert_true(report_has(&rep, ids[0]));
    assert_int_equal(rep.blobs, 3); /* the first release's body and both its variants */
    gc_report_free(&rep);
    assert_int_equal(count_keys(f->st, RELEASE_BLOB_PREFIX), 3);
    struct release *live;
    assert_int_equal(release_load(f->st, ids[1], &live, &err), 0);
    assert_int_equal(release_verify(f->st, live, &err), 0);

    /* without its br body the release cannot be deployed, and says why */
    char key[128];
    release_blob_key(live->files[0].var[RELEASE_BR].blob, key, sizeof(key));
    assert_int_equal(store_delete(f->st, key, NULL, &err), 0);
    struct env_config *other = env_load(f, "other", "strategy: direct\n");
    assert_int_equal(deploy_release(f->st, other, ids[1], &ALICE, &res, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "br body of app.css"));
    env_config_free(other);
    release_free(live);
    env_config_free(env);
    free(ids[0]);
    free(ids[1]);
}

/* Blobs another module's documents name (artifacts) come in as roots: kept
 * although no release references them; and a caller that could not read every
 * such document (incomplete) keeps every blob, while releases are collected. */
static void test_gc_roots(void **state)
{
    struct fixture *f = *state;
    struct env_config *env = env_load(f, "dev", "strategy: direct\n");
    char *r1 = make_release(f), *r2 = make_release(f);
    struct release *rel;
    struct sw_err err = {0};
    assert_int_equal(release_load(f->st, r1, &rel, &err), 0);
    char root[SHA256_HEX_LEN + 1] = "";
    for (size_t i = 0; i < rel->nfiles; i++)
        if (!strcmp(rel->files[i].path, "unique.txt"))
            memcpy(root, rel->files[i].blob, sizeof(root));
    release_free(rel);
    assert_int_equal(strlen(root), SHA256_HEX_LEN);
    clock_past(time_now_ms());
    assert_int_equal(count_keys(f->st, RELEASE_BLOB_PREFIX), 3);

    /* incomplete: both releases go, no blob does */
    const char *const blobs[] = {root};
    struct gc_roots roots = {.blobs = blobs, .nblobs = 1, .incomplete = 1};
    struct gc_report rep;
    assert_int_equal(deploy_gc(f->st, &env, 1, &roots, 1, 0, &rep, &err), 0);
    assert_int_equal(rep.nreleases, 2);
    assert_int_equal(rep.blobs, 0);
    gc_report_free(&rep);
    assert_int_equal(count_keys(f->st, "releases/"), 0);
    assert_int_equal(count_keys(f->st, RELEASE_BLOB_PREFIX), 3);

    /* complete: the root survives, the other two bodies go */
    roots.incomplete = 0;
    assert_int_equal(deploy_gc(f->st, &env, 1, &roots, 0, 0, &rep, &err), 0);
    assert_int_equal(rep.blobs, 2);
    gc_report_free(&rep);
    assert_int_equal(deploy_gc(f->st, &env, 1, &roots, 1, 0, &rep, &err), 0);
    assert_int_equal(rep.blobs, 2);
    gc_report_free(&rep);
    char key[128];
    struct store_stat sb;
    release_blob_key(root, key, sizeof(key));
    assert_int_equal(store_head(f->st, key, &sb, 0, NULL), 0);
    assert_int_equal(count_keys(f->st, RELEASE_BLOB_PREFIX), 1);

    /* without roots it goes too */
    assert_int_equal(deploy_gc(f->st, &env, 1, NULL, 1, 0, &rep, &err), 0);
    assert_int_equal(rep.blobs, 1);
    gc_report_free(&rep);
    assert_int_equal(count_keys(f->st, RELEASE_BLOB_PREFIX), 0);
    env_config_free(env);
    free(r1);
    free(r2);
}

/* What the watch asks of deploy: a rollback only while the state is the
 * generation it judged, that rejects what it took off; a rejected release
 * needs force everywhere (and force takes it off the list); a verdict moves
 * nothing and is recorded once. */
static void test_watch_changes(void **state)
{
    struct fixture *f = *state;
    char *r1 = make_release(f), *r2 = make_release(f), *r3 = make_release(f);
    struct env_config *c = env_load(f, "stg", "strategy: blue-green\n");
    struct deploy_result res;
    struct sw_err err = {0};
    struct deploy_opts sw = {.actor = "alice", .do_switch = 1};
    assert_int_equal(deploy_release(f->st, c, r1, &sw, &res, &err), 0);
    deploy_result_free(&res);
    assert_int_equal(deploy_release(f->st, c, r2, &sw, &res, &err), 0);
    deploy_result_free(&res);
    struct env_state *s = state_of(f, "stg");
    int64_t judged = s->generation;
    env_state_free(s);

    /* a stale generation: nothing changes */
    struct deploy_opts mon = {.actor = "slipway-monitor@h",
                              .message = "automatic rollback: x",
                              .if_generation = judged - 1,
                              .reject = "high-error-rate (critical): error_ratio 0.3 > 0.05"};
    assert_int_equal(deploy_rollback(f->st, c, NULL, &mon, &res, &err), DEPLOY_ESTALE);
    assert_non_null(strstr(err.msg, "changed since generation"));
    s = state_of(f, "stg");
    assert_int_equal(s->generation, judged);
    assert_string_equal(s->live_release, r2);
    env_state_free(s);
    /* a reason that could forge a line is refused before the lock */
    mon.if_generation = judged;
    mon.reject = "x\nnot ok - forged";
    assert_int_equal(deploy_rollback(f->st, c, NULL, &mon, &res, &err), SW_EINVAL);
    mon.reject = "high-error-rate (critical): error_ratio 0.3 > 0.05";
    assert_int_equal(deploy_rollback(f->st, c, NULL, &mon, &res, &err), 0);
    deploy_result_free(&res);
    s = state_of(f, "stg");
    assert_string_equal(s->live_release, r1);
    assert_int_equal(s->nrejected, 1);
    assert_string_equal(s->rejected[0].release, r2);
    assert_string_equal(s->rejected[0].reason, mon.reject);
    assert_string_equal(s->last.message, "automatic rollback: x");
    env_state_free(s);
    /* the same judgement again (a second node): stale */
    assert_int_equal(deploy_rollback(f->st, c, NULL, &mon, &res, &err), DEPLOY_ESTALE);

    /* r2 is refused by switch, deploy and rollback --to without force */
    struct deploy_opts plain = {.actor = "bob"};
    assert_int_equal(deploy_switch(f->st, c, &plain, &res, &err), DEPLOY_EREJECTED);
    assert_non_null(strstr(err.msg, "add --force"));
    assert_non_null(strstr(err.msg, "high-error-rate"));
    assert_int_equal(deploy_release(f->st, c, r2, &plain, &res, &err), DEPLOY_EREJECTED);
    assert_int_equal(deploy_rollback(f->st, c, r2, &plain, &res, &err), DEPLOY_EREJECTED);
    /* another release is fine */
    assert_int_equal(deploy_release(f->st, c, r3, &plain, &res, &err), 0);
    deploy_result_free(&res);
    /* force takes it off the list */
    struct deploy_opts forced = {.actor = "bob", .force = 1, .do_switch = 1};
    assert_int_equal(deploy_release(f->st, c, r2, &forced, &res, &err), 0);
    deploy_result_free(&res);
    s = state_of(f, "stg");
    assert_int_equal(s->nrejected, 0);
    assert_string_equal(s->live_release, r2);
    int64_t g = s->generation;
    env_state_free(s);

    /* a verdict: needs a message and a generation; moves nothing; once */
    struct deploy_opts v = {.actor = "slipway-monitor@h", .message = "watch of r ended: passed"};
    assert_int_equal(deploy_verdict(f->st, c, &v, &res, &err), SW_EINVAL);
    v.if_generation = g;
    assert_int_equal(deploy_verdict(f->st, c, &v, &res, &err), 0);
    assert_int_equal(res.switched, 0);
    deploy_result_free(&res);
    s = state_of(f, "stg");
    assert_string_equal(s->last.action, "verdict");
    assert_string_equal(s->last.to, r2);
    assert_string_equal(s->live_release, r2);
    assert_int_equal(s->generation, g + 1);
    env_state_free(s);
    assert_int_equal(deploy_verdict(f->st, c, &v, &res, &err), DEPLOY_ESTALE);
    size_t checked = 0;
    assert_int_equal(deploy_history_verify(f->st, &checked, &err), 0);

    /* the list keeps the newest ENV_REJECTED_MAX */
    for (int i = 0; i < ENV_REJECTED_MAX + 2; i++) {
        char *r = make_release(f);
        assert_int_equal(deploy_release(f->st, c, r, &sw, &res, &err), 0);
        deploy_result_free(&res);
        s = state_of(f, "stg");
        mon.if_generation = s->generation;
        env_state_free(s);
        assert_int_equal(deploy_rollback(f->st, c, NULL, &mon, &res, &err), 0);
        deploy_result_free(&res);
        free(r);
    }
    s = state_of(f, "stg");
    assert_int_equal(s->nrejected, ENV_REJECTED_MAX);
    assert_null(deploy_rejection(s, r3));
    env_state_free(s);
    env_config_free(c);
    free(r1);
    free(r2);
    free(r3);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_config_valid),
        T(test_config_errors),
        T(test_config_file_errors),
        cmocka_unit_test(test_env_name_check),
        T(test_config_gates),
        T(test_config_errors_key),
        T(test_direct),
        T(test_blue_green),
        T(test_deploy_live_is_noop),
        T(test_deploy_ahead),
        T(test_deploy_ahead_known),
        T(test_deploy_ahead_lease_free),
        T(test_head_copy),
        T(test_rollback_flip_or_deploy),
        T(test_watch_changes),
        T(test_strategy_change),
        T(test_lock),
        T(test_concurrent_change),
        T(test_state_cas),
        T(test_history),
        T(test_history_repair),
        T(test_history_once),
        cmocka_unit_test(test_state_parse_hostile),
        cmocka_unit_test(test_event_parse_hostile),
        T(test_audit_head),
        T(test_audit_head_missing),
        T(test_gc),
        T(test_gc_delta),
        T(test_gc_temporaries),
        T(test_gc_keeps_variants),
        T(test_gc_roots),
    };
    return cmocka_run_group_tests_name("deploy", tests, NULL, NULL);
}
