/* Unit tests for the watch with several nodes on one store (src/monitor/watch.c):
 * this process plays one node's watch, deploy_rollback with another actor
 * plays the node that won. A critical alert about a release another node has
 * rolled back says so ("already rolled back"), and a node whose own rule
 * never fired still records the rollback once; its own rollback is never
 * noted as another's; a person's rollback is not an automatic one; two nodes
 * judging the same alert at once make exactly one rollback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "deploy/deploy.h"
#include "monitor/monitor.h"
#include "release/release.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OTHER "slipway-monitor@other-node"
#define SELF "slipway-monitor@this-node"

struct fixture {
    char dir[64];
    char *site, *data, *envdir;
    struct store *st;
    struct env_config *env;
    int nrel;
    pthread_mutex_t lock; /* guards log: the watch's thread writes it */
    struct buf log;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sw-watch-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    f->site = path_join(f->dir, "site");
    f->data = path_join(f->dir, "data");
    f->envdir = path_join(f->dir, "environments");
    if (fs_mkdir_p(f->site, NULL) || fs_mkdir_p(f->envdir, NULL))
        return -1;
    if (store_open(f->data, &f->st, NULL))
        return -1;
    pthread_mutex_init(&f->lock, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    env_config_free(f->env);
    store_free(f->st);
    char *cmd = xasprintf("rm -rf %s", f->dir);
    int rc = system(cmd);
    free(cmd);
    free(f->site);
    free(f->data);
    free(f->envdir);
    buf_free(&f->log);
    pthread_mutex_destroy(&f->lock);
    free(f);
    return rc;
}

static void write_str(const char *dir, const char *rel, const char *s)
{
    char *path = path_join(dir, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(fd_write_all(fd, s, strlen(s)), 0);
    assert_int_equal(close(fd), 0);
    free(path);
}

/* A release of its own bytes; its id (caller frees). */
static char *make_release(struct fixture *f)
{
    char body[32];
    snprintf(body, sizeof(body), "release %d\n", ++f->nrel);
    write_str(f->site, "index.html", body);
    struct release_create_opts o = {.dir = f->site};
    struct release_create_result res;
    struct sw_err err = {0};
    char *id = NULL;
    assert_int_equal(release_create(f->st, &o, &id, &res, &err), 0);
    return id;
}

/* stg, direct, watched for 10 minutes with on_critical: rollback. */
static void env_stg(struct fixture *f)
{
    write_str(f->envdir, "stg.yml",
              "strategy: direct\nlisten: 127.0.0.1:1\nwatch: {duration: 10m, on_critical: "
              "rollback}\n");
    struct sw_err err = {0};
    assert_int_equal(env_config_find(f->envdir, "stg", &f->env, &err), 0);
}

static void deploy(struct fixture *f, const char *id)
{
    struct deploy_opts o = {.actor = "tester"};
    struct deploy_result res = {0};
    struct sw_err err = {0};
    assert_int_equal(deploy_release(f->st, f->env, id, &o, &res, &err), 0);
    deploy_result_free(&res);
}

/* Another node's automatic rollback (reject set), or a person's (reject NULL). */
static void rollback_by(struct fixture *f, const char *actor, const char *reject)
{
    char *message = reject ? xasprintf("automatic rollback: %s", reject) : NULL;
    struct deploy_opts o = {.actor = actor, .message = message, .reject = reject};
    struct deploy_result res = {0};
    struct sw_err err = {0};
    assert_int_equal(deploy_rollback(f->st, f->env, NULL, &o, &res, &err), 0);
    deploy_result_free(&res);
    free(message);
}

static void on_log(void *arg, const char *line)
{
    struct fixture *f = arg;
    pthread_mutex_lock(&f->lock);
    buf_adds(&f->log, line);
    buf_adds(&f->log, "\n");
    pthread_mutex_unlock(&f->lock);
}

static int logged(struct fixture *f, const char *want)
{
    pthread_mutex_lock(&f->lock);
    int yes = f->log.data && strstr(f->log.data, want) != NULL;
    pthread_mutex_unlock(&f->lock);
    return yes;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Polls until want is logged: 10 s at most. */
static int wait_logged(struct fixture *f, const char *want)
{
    for (int i = 0; i < 1000; i++, sleep_ms(10))
        if (logged(f, want))
            return 1;
    print_message("# waited for: %s\n# log:\n%s", want, f->log.data ? f->log.data : "");
    return 0;
}

static struct monitor_watch *watch_start(struct fixture *f, int64_t interval_ms)
{
    struct monitor_watch_opts o;
    monitor_watch_opts_init(&o);
    o.store = f->st;
    o.envs_dir = f->envdir;
    o.actor = SELF;
    o.interval_ms = interval_ms;
    o.log = on_log;
    o.log_arg = f;
    struct monitor_watch *w = NULL;
    struct sw_err err = {0};
    assert_int_equal(monitor_watch_start(&o, &w, &err), 0);
    return w;
}

static void critical(struct monitor_watch *w, const char *release)
{
    struct monitor_critical c = {"stg",     "high-error-rate",
                                 "slipway", "error_ratio 0.5 > 0.05 for 3s over 1000 requests",
                                 release,   0};
    monitor_watch_critical(w, &c);
}

/* This node's rule fired a tick after the other node's: its alert, about B,
 * is judged once B is no longer live. It finds the rollback and says by whom
 * (it used to say only "the alert is about B, but A is live"). */
static void test_alert_after_another_nodes_rollback(void **state)
{
    struct fixture *f = *state;
    env_stg(f);
    char *a = make_release(f), *b = make_release(f);
    deploy(f, a);
    deploy(f, b);
    rollback_by(f, OTHER, "high-error-rate (critical, from slipway): error_ratio 0.5");
    struct monitor_watch *w = watch_start(f, 3600000); /* after it: no note, only the alert */
    critical(w, b);
    char *want = xasprintf("watch: stg: %s was already rolled back to %s by " OTHER
                           " (automatic rollback: high-error-rate",
                           b, a);
    assert_true(wait_logged(f, want));
    monitor_watch_stop(w);
    struct monitor_watch_stats ws;
    monitor_watch_stats(w, &ws);
    assert_int_equal(ws.rolled_back_elsewhere, 1);
    assert_int_equal(ws.rollbacks, 0);
    assert_false(logged(f, "nothing rolled back"));
    struct env_state *s = NULL;
    struct sw_err err = {0};
    assert_int_equal(deploy_state_load(f->st, "stg", &s, &err), 0);
    assert_string_equal(s->live_release, a);
    assert_string_equal(s->last.actor, OTHER); /* nothing more was changed */
    env_state_free(s);
    monitor_watch_free(w);
    free(want);
    free(a);
    free(b);
}

/* This node's rule never fired (its edge served A again before its `for`
 * was over): it still records, once, that another node rolled B back; an
 * alert about B that comes later says so without counting it twice. A
 * person's rollback is not noted; this node's own rollback is not another's. */
static void test_rollback_noted_without_an_alert(void **state)
{
    struct fixture *f = *state;
    env_stg(f);
    char *a = make_release(f), *b = make_release(f), *c = make_release(f);
    deploy(f, a);
    deploy(f, b);
    struct monitor_watch *w = watch_start(f, 20);
    rollback_by(f, "alice", NULL); /* a person's: B is not rejected */
    sleep_ms(200);
    assert_false(logged(f, "was rolled back"));
    deploy(f, b);
    rollback_by(f, OTHER, "high-error-rate (critical, from slipway): error_ratio 0.5");
    char *want = xasprintf("watch: stg: %s was rolled back to %s by " OTHER
                           ", another node's watch (automatic rollback: high-error-rate",
                           b, a);
    assert_true(wait_logged(f, want));
    sleep_ms(200); /* said once */
    pthread_mutex_lock(&f->lock);
    const char *first = strstr(f->log.data, want);
    assert_null(strstr(first + 1, want));
    pthread_mutex_unlock(&f->lock);
    critical(w, b);
    char *found = xasprintf("watch: stg: %s was already rolled back to %s", b, a);
    assert_true(wait_logged(f, found));
    struct monitor_watch_stats ws;
    monitor_watch_stats(w, &ws);
    assert_int_equal(ws.rolled_back_elsewhere, 1);

    /* This node wins the next one: it is not "another node's". */
    deploy(f, c);
    critical(w, NULL);
    char *mine = xasprintf("watch: stg: rolled back %s -> %s", c, a);
    assert_true(wait_logged(f, mine));
    sleep_ms(200);
    monitor_watch_stop(w);
    monitor_watch_stats(w, &ws);
    assert_int_equal(ws.rollbacks, 1);
    assert_int_equal(ws.rolled_back_elsewhere, 1);
    char *not_mine = xasprintf("%s was rolled back to %s by", c, a);
    assert_false(logged(f, not_mine));
    monitor_watch_free(w);
    free(not_mine);
    free(mine);
    free(found);
    free(want);
    free(a);
    free(b);
    free(c);
}

/* Two nodes (two watches, each with its own handle on the store, as two
 * processes have) judge the same critical alert about B at the same moment,
 * ten times over: each time exactly one rolls back, the other says B was
 * already rolled back, and neither says anything failed. */
static void test_two_nodes_race(void **state)
{
    struct fixture *f = *state;
    env_stg(f);
    struct store *st2 = NULL;
    assert_int_equal(store_open(f->data, &st2, NULL), 0);
    char *a = make_release(f);
    deploy(f, a);
    struct monitor_watch *w1 = watch_start(f, 3600000);
    struct monitor_watch_opts o;
    monitor_watch_opts_init(&o);
    o.store = st2;
    o.envs_dir = f->envdir;
    o.actor = OTHER;
    o.interval_ms = 3600000;
    o.log = on_log;
    o.log_arg = f;
    struct monitor_watch *w2 = NULL;
    struct sw_err err = {0};
    assert_int_equal(monitor_watch_start(&o, &w2, &err), 0);
    uint64_t done = 0;
    for (int round = 1; round <= 10; round++) {
        char *b = make_release(f);
        deploy(f, b);
        critical(w1, b);
        critical(w2, b);
        struct monitor_watch_stats s1, s2;
        for (int i = 0; i < 1000; i++, sleep_ms(10)) {
            monitor_watch_stats(w1, &s1);
            monitor_watch_stats(w2, &s2);
            if (s1.rollbacks + s2.rollbacks + s1.rolled_back_elsewhere + s2.rolled_back_elsewhere +
                    s1.gave_way + s2.gave_way >=
                done + 2)
                break;
        }
        done += 2;
        print_message("# round %d: rollbacks %llu + %llu\n", round,
                      (unsigned long long)s1.rollbacks, (unsigned long long)s2.rollbacks);
        assert_int_equal(s1.rollbacks + s2.rollbacks, round);
        assert_int_equal(s1.rolled_back_elsewhere + s2.rolled_back_elsewhere, round);
        assert_int_equal(s1.gave_way + s2.gave_way, 0);
        struct env_state *s = NULL;
        assert_int_equal(deploy_state_load(f->st, "stg", &s, &err), 0);
        assert_string_equal(s->live_release, a);
        assert_string_equal(s->last.action, "rollback");
        env_state_free(s);
        free(b);
    }
    assert_false(logged(f, "failed"));
    assert_false(logged(f, "nothing rolled back"));
    struct deploy_event *ev = NULL;
    size_t n = 0, rollbacks = 0;
    assert_int_equal(deploy_history(f->st, "stg", &ev, &n, &err), 0);
    for (size_t i = 0; i < n; i++)
        rollbacks += !strcmp(ev[i].action, "rollback");
    assert_int_equal(rollbacks, 10);
    deploy_events_free(ev, n);
    monitor_watch_free(w1);
    monitor_watch_free(w2);
    store_free(st2);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_alert_after_another_nodes_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_noted_without_an_alert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_nodes_race, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
