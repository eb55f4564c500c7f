/*
 * Which worker a new connection goes to (internal to the http module).
 *
 * Every worker has its own SO_REUSEPORT socket for an address. By default the
 * kernel picks one by a hash of the connection's addresses; with the CPU
 * program attached to the group it picks the worker that belongs to the CPU
 * that received the connection, so every connection one client thread (or one
 * NIC queue) opens lands on one worker: its requests and that worker's
 * replies then meet in larger batches and fewer wake-ups, on one core's
 * caches. Workers are not pinned; the mapping only groups connections.
 *
 * Grouping is wrong when the groups are uneven and there is room to spread
 * them: one NIC queue, or one local client, sending everything to one busy
 * worker while other cores sit idle. balance_tick watches for that and then
 * hands new connections back to the hash for BALANCE_HASH_MS.
 */
#ifndef SLIPWAY_HTTP_BALANCE_H
#define SLIPWAY_HTTP_BALANCE_H

#include <stdatomic.h>
#include <stdint.h>

#include "http/http.h"

#define BALANCE_MAX_CPUS 1024
#define BALANCE_HASH_MS (10 * 60 * 1000)
/* Seconds in a row a skew must last before connections go back to the hash. */
#define BALANCE_SKEW_SECONDS 3

struct balance {
    atomic_int usable; /* the CPU program can give every worker connections (and attaches) */
    int nworkers;
    int ncpu;
    int cpu[BALANCE_MAX_CPUS]; /* the CPUs this process may run on, ascending */
    atomic_int steering;       /* 1 while new connections are grouped by CPU */
    atomic_ulong unsteered;    /* times a skew sent connections back to the hash */
    /* Worker 0's alone, between ticks. */
    int64_t last_us;
    int64_t idle_at_last[HTTP_MAX_WORKERS];
    unsigned long long sys_idle, sys_total;
    int skewed_for;
    int64_t hash_until_us;
};

/* Sets b up for nworkers workers; mode HTTP_BALANCE_CPU groups by CPU where
 * the process may run on at least as many CPUs as there are workers (and on
 * at least two); otherwise connections stay with the kernel's hash. */
void balance_init(struct balance *b, int nworkers, enum http_balance mode);
/* Makes the reuseport group of fd (a listening socket of the group) choose
 * by CPU when by_cpu, else by hash. 0 or -errno; a kernel that refuses the
 * program leaves the group on its hash, and b unusable from then on. */
int balance_attach(struct balance *b, int fd, int by_cpu);
/* Called by worker 0 about once a second with every worker's idle time so
 * far (microseconds, cumulative) and the monotonic clock. Returns 1 when the
 * choice changed (steering says which way): the caller attaches it to every
 * group. */
int balance_tick(struct balance *b, const int64_t *idle_us, int64_t now_us);
/* balance_tick's choice, given each worker's busy fraction over the last
 * tick and the idle cores: back to the hash after BALANCE_SKEW_SECONDS skewed
 * ticks in a row, back to CPUs BALANCE_HASH_MS later. */
int balance_decide(struct balance *b, const double *busy, double idle_cores, int64_t now_us);
/* The rule itself: given each worker's busy fraction over the last second
 * and the idle CPUs of the machine (in cores), 1 when one worker is nearly
 * saturated, another is mostly idle and an idle core could take its share. */
int balance_skewed(const double *busy, int n, double idle_cores);

#endif
