/*
 * Grouping connections by the CPU that received them (see balance.h).
 *
 * The CPU program is classic BPF, attached with SO_ATTACH_REUSEPORT_CBPF: it
 * loads the current CPU and returns the index of a socket in the group, which
 * is the order the sockets were bound in, worker by worker. The n-th CPU the
 * process may run on maps to worker n % workers, by a chain of comparisons
 * (cpuset CPU numbers need not be contiguous). Any other CPU, and the hash
 * program, return an index past the last socket, which makes the kernel fall
 * back to its hash: replacing the program is how the choice is undone, on
 * every kernel that has the option (4.5 on).
 */
#include "http/balance.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void balance_init(struct balance *b, int nworkers, enum http_balance mode)
{
    memset(b, 0, sizeof(*b));
    b->nworkers = nworkers;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        for (int c = 0; c < CPU_SETSIZE && b->ncpu < BALANCE_MAX_CPUS; c++)
            if (CPU_ISSET(c, &set))
                b->cpu[b->ncpu++] = c;
    int usable = mode == HTTP_BALANCE_CPU && nworkers >= 2 && b->ncpu >= nworkers;
    atomic_init(&b->usable, usable);
    atomic_init(&b->steering, usable);
    atomic_init(&b->unsteered, 0);
}

int balance_attach(struct balance *b, int fd, int by_cpu)
{
    struct sock_filter code[2 + 2 * BALANCE_MAX_CPUS];
    unsigned short n = 0;
    if (by_cpu) {
        code[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                                 (uint32_t)(SKF_AD_OFF + SKF_AD_CPU));
        for (int i = 0; i < b->ncpu; i++) {
            /* Equal: the next instruction returns this CPU's worker; else skip it. */
            code[n++] =
                (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)b->cpu[i], 0, 1);
            code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (uint32_t)(i % b->nworkers));
        }
    }
    code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (uint32_t)b->nworkers);
    struct sock_fprog prog = {.len = n, .filter = code};
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0) {
        int e = errno;
        atomic_store(&b->steering, 0);
        atomic_store(&b->usable, 0);
        return -e;
    }
    return 0;
}

/* Idle and total time so far of the CPUs this process may run on, in clock
 * ticks, from /proc/stat's per-CPU lines. */
static int read_cpu_times(const struct balance *b, unsigned long long *idle,
                          unsigned long long *total)
{
    char text[1 << 15]; /* the per-CPU lines come first: room for some 300 CPUs */
    int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    ssize_t k;
    while (len < sizeof(text) - 1 && (k = read(fd, text + len, sizeof(text) - 1 - len)) > 0)
        len += (size_t)k;
    close(fd);
    text[len] = '\0';
    *idle = *total = 0;
    int seen = 0, next = 0; /* cpu[] is ascending, as /proc/stat's lines are */
    for (char *p = text; p && next < b->ncpu; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        int cpu;
        unsigned long long v[8] = {0};
        if (strncmp(p, "cpu", 3) != 0 || p[3] < '0' || p[3] > '9' ||
            sscanf(p, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]) < 6)
            continue;
        while (next < b->ncpu && b->cpu[next] < cpu)
            next++;
        if (next == b->ncpu || b->cpu[next] != cpu)
            continue;
        *idle += v[3] + v[4];
        for (int i = 0; i < 8; i++)
            *total += v[i];
        seen++;
        next++;
    }
    return seen ? 0 : -1;
}

int balance_skewed(const double *busy, int n, double idle_cores)
{
    double hi = 0, lo = 1;
    for (int i = 0; i < n; i++) {
        hi = busy[i] > hi ? busy[i] : hi;
        lo = busy[i] < lo ? busy[i] : lo;
    }
    /* Without an idle core, spreading only makes the busy worker share a core
     * with whatever keeps the others busy: grouping stays the better choice. */
    return n >= 2 && hi >= 0.85 && lo <= 0.5 && idle_cores >= 0.5;
}

int balance_tick(struct balance *b, const int64_t *idle_us, int64_t now_us)
{
    if (!atomic_load(&b->usable))
        return 0;
    unsigned long long sys_idle = 0, sys_total = 0;
    int have_sys = read_cpu_times(b, &sys_idle, &sys_total) == 0;
    int64_t span = now_us - b->last_us;
    int first = b->last_us == 0;
    double busy[HTTP_MAX_WORKERS];
    for (int i = 0; i < b->nworkers; i++) {
        double idle = span > 0 ? (double)(idle_us[i] - b->idle_at_last[i]) / (double)span : 1;
        busy[i] = idle >= 1 ? 0 : idle <= 0 ? 1 : 1 - idle;
        b->idle_at_last[i] = idle_us[i];
    }
    /* The ticks of all our CPUs sum to ncpu times the wall time: idle share times ncpu. */
    double idle_cores = 0;
    if (have_sys && sys_total > b->sys_total)
        idle_cores =
            (double)(sys_idle - b->sys_idle) / (double)(sys_total - b->sys_total) * (double)b->ncpu;
    b->sys_idle = sys_idle;
    b->sys_total = sys_total;
    b->last_us = now_us;
    if (first || !have_sys)
        return 0;
    return balance_decide(b, busy, idle_cores, now_us);
}

int balance_decide(struct balance *b, const double *busy, double idle_cores, int64_t now_us)
{
    if (!atomic_load(&b->steering)) {
        if (now_us < b->hash_until_us)
            return 0;
        b->skewed_for = 0;
        atomic_store(&b->steering, 1);
        return 1;
    }
    b->skewed_for = balance_skewed(busy, b->nworkers, idle_cores) ? b->skewed_for + 1 : 0;
    if (b->skewed_for < BALANCE_SKEW_SECONDS)
        return 0;
    b->skewed_for = 0;
    b->hash_until_us = now_us + (int64_t)BALANCE_HASH_MS * 1000;
    atomic_fetch_add(&b->unsteered, 1);
    atomic_store(&b->steering, 0);
    return 1;
}
