/*
 * The watch's decision table (monitor_watch_judge, monitor_watch_window):
 * pure functions of an environment's file and state, so every row is a
 * state built here. The rollback itself runs against a real serve in e2e 360.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "deploy/deploy.h"
#include "monitor/monitor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN (60LL * 1000)
#define T0 1800000000000LL /* a deploy's time */

static struct env_config cfg(int64_t duration_ms, enum env_watch_action a)
{
    struct env_config c;
    memset(&c, 0, sizeof(c));
    c.name = "stg";
    c.strategy = STRATEGY_BLUE_GREEN;
    c.watch.duration_ms = duration_ms;
    c.watch.on_critical = a;
    return c;
}

/* A state whose last change is action (switched or not) that made live live. */
static struct env_state mkstate(const char *action, int switched, char *live, char *to)
{
    struct env_state s;
    memset(&s, 0, sizeof(s));
    s.env = "stg";
    s.generation = 7;
    s.live_release = live;
    snprintf(s.last.action, sizeof(s.last.action), "%s", action);
    s.last.switched = switched;
    s.last.to = to;
    s.last.time_ms = T0;
    s.last.generation = 7;
    return s;
}

static enum monitor_watch_decision judge(const struct env_config *c, const struct env_state *s,
                                         const char *release, int64_t now, const char *word)
{
    struct buf why = BUF_INIT;
    enum monitor_watch_decision d = monitor_watch_judge(c, s, release, now, &why);
    assert_non_null(why.data);
    if (!strstr(why.data, word))
        fail_msg("'%s' does not say '%s'", why.data, word);
    assert_null(strchr(why.data, '\n'));
    buf_free(&why);
    return d;
}

static void test_window(void **state)
{
    (void)state;
    char b[] = "r-b", a[] = "r-a";
    struct env_config c = cfg(10 * MIN, ENV_WATCH_ROLLBACK);
    int64_t start = 0, end = 0;
    struct env_state s = mkstate("switch", 1, b, b);
    assert_int_equal(monitor_watch_window(&c, &s, &start, &end), 1);
    assert_true(start == T0 && end == T0 + 10 * MIN);
    s = mkstate("deploy", 1, b, b); /* direct, or blue-green with --switch */
    assert_int_equal(monitor_watch_window(&c, &s, &start, &end), 1);
    s = mkstate("deploy", 0, a, b); /* to the idle slot: live did not change */
    assert_int_equal(monitor_watch_window(&c, &s, &start, &end), 0);
    s = mkstate("rollback", 1, a, a); /* a rollback opens none: no loop */
    assert_int_equal(monitor_watch_window(&c, &s, &start, &end), 0);
    s = mkstate("verdict", 0, b, b);
    assert_int_equal(monitor_watch_window(&c, &s, &start, &end), 0);
    s = mkstate("switch", -1, b, b); /* an old state that did not record it */
    assert_int_equal(monitor_watch_window(&c, &s, &start, &end), 0);
    s = mkstate("switch", 1, NULL, NULL);
    assert_int_equal(monitor_watch_window(&c, &s, &start, &end), 0);
    struct env_config none = cfg(0, ENV_WATCH_ROLLBACK);
    s = mkstate("switch", 1, b, b);
    assert_int_equal(monitor_watch_window(&none, &s, &start, &end), 0);
}

static void test_judge(void **state)
{
    (void)state;
    char b[] = "r-b", a[] = "r-a";
    struct env_config c = cfg(10 * MIN, ENV_WATCH_ROLLBACK);
    struct env_state s = mkstate("switch", 1, b, b);
    assert_int_equal(judge(&c, &s, b, T0 + MIN, "inside its watch"), MONITOR_WATCH_ROLLBACK);
    assert_int_equal(judge(&c, &s, NULL, T0 + MIN, "inside its watch"), MONITOR_WATCH_ROLLBACK);
    /* the window's bounds: its last millisecond is inside */
    assert_int_equal(judge(&c, &s, b, T0 + 10 * MIN, "inside"), MONITOR_WATCH_ROLLBACK);
    assert_int_equal(judge(&c, &s, b, T0 + 10 * MIN + 1, "its watch is over"),
                     MONITOR_WATCH_OUTSIDE);
    /* a clock behind the deploy's: still inside */
    assert_int_equal(judge(&c, &s, b, T0 - 5000, "inside"), MONITOR_WATCH_ROLLBACK);
    /* about another release */
    assert_int_equal(judge(&c, &s, a, T0 + MIN, "the alert is about r-a, but r-b is live"),
                     MONITOR_WATCH_OTHER);
    /* notify */
    struct env_config n = cfg(10 * MIN, ENV_WATCH_NOTIFY);
    assert_int_equal(judge(&n, &s, b, T0 + MIN, "on_critical: notify"), MONITOR_WATCH_NOTIFY);
    assert_int_equal(judge(&n, &s, b, T0 + 11 * MIN, "its watch is over"), MONITOR_WATCH_OUTSIDE);
    /* no watch */
    struct env_config none = cfg(0, ENV_WATCH_ROLLBACK);
    assert_int_equal(judge(&none, &s, b, T0 + MIN, "stg has no watch"), MONITOR_WATCH_UNWATCHED);
    /* no window: after a rollback, a verdict, a deploy to the idle slot */
    s = mkstate("rollback", 1, a, a);
    assert_int_equal(judge(&c, &s, a, T0 + MIN, "its last change was a rollback"),
                     MONITOR_WATCH_OUTSIDE);
    s = mkstate("verdict", 0, b, b);
    assert_int_equal(judge(&c, &s, b, T0 + MIN, "its last change was a verdict"),
                     MONITOR_WATCH_OUTSIDE);
    s = mkstate("deploy", 0, a, b);
    assert_int_equal(judge(&c, &s, a, T0 + MIN, "a deploy to the idle slot"),
                     MONITOR_WATCH_OUTSIDE);
    /* nothing live */
    s = mkstate("switch", 1, NULL, NULL);
    assert_int_equal(judge(&c, &s, NULL, T0 + MIN, "nothing is live"), MONITOR_WATCH_OUTSIDE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_judge),
    };
    return cmocka_run_group_tests_name("monitor_watch", tests, NULL, NULL);
}
