/*
 * Unit tests for how the http module shares new connections between workers
 * (src/http/balance.c): the skew rule, the decision's timing (three skewed
 * seconds to leave CPU grouping, ten minutes before it is tried again), when
 * grouping is used at all, and the CPU program on a real SO_REUSEPORT group:
 * connections opened from a thread pinned to one CPU all reach that CPU's
 * socket, and the hash program spreads them again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "http/balance.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_skewed(void **state)
{
    /* One worker saturated, the other mostly idle, a core free: skewed. */
    assert_true(balance_skewed((double[]){0.95, 0.10}, 2, 1.0));
    assert_true(balance_skewed((double[]){0.10, 0.85}, 2, 0.5));
    /* No idle core (a client on the other core, say): spreading would not help. */
    assert_false(balance_skewed((double[]){0.95, 0.10}, 2, 0.3));
    /* Not saturated, or the other not idle enough. */
    assert_false(balance_skewed((double[]){0.80, 0.00}, 2, 1.0));
    assert_false(balance_skewed((double[]){0.95, 0.60}, 2, 1.0));
    assert_false(balance_skewed((double[]){0.90, 0.90}, 2, 1.0));
    assert_false(balance_skewed((double[]){1.00}, 1, 1.0));
    assert_true(balance_skewed((double[]){0.9, 0.9, 0.9, 0.2}, 4, 0.8));
}

static void test_decide(void **state)
{
    struct balance b;
    balance_init(&b, 2, HTTP_BALANCE_CPU);
    atomic_store(&b.usable, 1);
    atomic_store(&b.steering, 1);
    const double skew[] = {0.97, 0.05}, even[] = {0.6, 0.5};
    int64_t t = 1000000;
    /* Two skewed seconds, then an even one: the count starts over. */
    assert_int_equal(balance_decide(&b, skew, 1.0, t += 1000000), 0);
    assert_int_equal(balance_decide(&b, skew, 1.0, t += 1000000), 0);
    assert_int_equal(balance_decide(&b, even, 1.0, t += 1000000), 0);
    assert_int_equal(balance_decide(&b, skew, 1.0, t += 1000000), 0);
    assert_int_equal(balance_decide(&b, skew, 1.0, t += 1000000), 0);
    assert_int_equal(atomic_load(&b.steering), 1);
    /* The third in a row: back to the hash, counted. */
    assert_int_equal(balance_decide(&b, skew, 1.0, t += 1000000), 1);
    assert_int_equal(atomic_load(&b.steering), 0);
    assert_int_equal(atomic_load(&b.unsteered), 1);
    /* Kept for ten minutes, whatever the load... */
    int64_t until = t + (int64_t)BALANCE_HASH_MS * 1000;
    assert_int_equal(balance_decide(&b, even, 0.0, until - 1), 0);
    assert_int_equal(atomic_load(&b.steering), 0);
    /* ...then grouped by CPU again, and judged from scratch. */
    assert_int_equal(balance_decide(&b, even, 0.0, until), 1);
    assert_int_equal(atomic_load(&b.steering), 1);
    assert_int_equal(balance_decide(&b, skew, 1.0, until + 1000000), 0);
    assert_int_equal(atomic_load(&b.unsteered), 1);
}

static void test_init(void **state)
{
    struct balance b;
    cpu_set_t all, one;
    assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
    int n = CPU_COUNT(&all);
    balance_init(&b, 2, HTTP_BALANCE_HASH);
    assert_false(atomic_load(&b.usable));
    balance_init(&b, 1, HTTP_BALANCE_CPU);
    assert_false(atomic_load(&b.usable)); /* one worker: nothing to choose */
    balance_init(&b, n + 1, HTTP_BALANCE_CPU);
    assert_false(atomic_load(&b.usable)); /* a worker no CPU maps to would get nothing */
    assert_int_equal(b.ncpu, n);
    if (n < 2) {
        skip();
        return;
    }
    balance_init(&b, 2, HTTP_BALANCE_CPU);
    assert_true(atomic_load(&b.usable));
    assert_int_equal(atomic_load(&b.steering), 1);
    /* Confined to one CPU (a cpuset, taskset), two workers cannot both be fed. */
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all)) {
            CPU_SET(c, &one);
            break;
        }
    assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
    balance_init(&b, 2, HTTP_BALANCE_CPU);
    assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
    assert_false(atomic_load(&b.usable));
    assert_int_equal(b.ncpu, 1);
}

/* ---- the program on a real group ---------------------------------------------------------- */

struct dialer {
    int cpu, port, n, ok;
};

/* Pinned to d->cpu, opens d->n connections and closes them once accepted or refused. */
static void *dial(void *arg)
{
    struct dialer *d = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(d->cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
        return NULL;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < d->n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return NULL;
        int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (rc < 0)
            return NULL;
    }
    d->ok = 1;
    return NULL;
}

/* Opens n connections from cpu and counts those each of the group's two sockets accepted. */
static void count_from(int cpu, int port, int n, const int *lfd, int *got)
{
    struct dialer d = {cpu, port, n, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, dial, &d), 0);
    pthread_join(th, NULL);
    assert_true(d.ok);
    got[0] = got[1] = 0;
    /* A handshake may complete a moment after connect returns: wait, bounded. */
    for (int tries = 0; got[0] + got[1] < n && tries < 200; tries++) {
        for (int i = 0; i < 2; i++) {
            int fd;
            while ((fd = accept4(lfd[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                close(fd);
                got[i]++;
            }
            assert_int_equal(errno, EAGAIN);
        }
        if (got[0] + got[1] < n)
            usleep(10000);
    }
    assert_int_equal(got[0] + got[1], n);
}

static void test_program(void **state)
{
    struct balance b;
    balance_init(&b, 2, HTTP_BALANCE_CPU);
    if (!atomic_load(&b.usable)) {
        skip(); /* one CPU */
        return;
    }
    int lfd[2], one = 1, port = 0;
    for (int i = 0; i < 2; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(sa);
        lfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(lfd[i] >= 0);
        assert_int_equal(setsockopt(lfd[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
        assert_int_equal(bind(lfd[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(lfd[i], 128), 0);
        assert_int_equal(getsockname(lfd[i], (struct sockaddr *)&sa, &len), 0);
        port = ntohs(sa.sin_port);
    }
    int got[2];
    assert_int_equal(balance_attach(&b, lfd[0], 1), 0);
    /* The first CPU maps to socket 0, the second to socket 1. */
    count_from(b.cpu[0], port, 16, lfd, got);
    assert_int_equal(got[0], 16);
    count_from(b.cpu[1], port, 16, lfd, got);
    assert_int_equal(got[1], 16);
    /* By hash, 32 connections from one CPU on one socket would have odds of 2 in 2^32. */
    assert_int_equal(balance_attach(&b, lfd[1], 0), 0);
    count_from(b.cpu[0], port, 32, lfd, got);
    assert_true(got[0] > 0 && got[1] > 0);
    close(lfd[0]);
    close(lfd[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skewed),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_program),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
