/*
 * monitor — what the edge's numbers mean: process and host figures read
 * from /proc, alert rules and their states, notifications, and the watch
 * after a deploy that calls deploy's rollback. It reads the edge's counters
 * (through the edge's public API) and never blocks the request path: every
 * function here runs on a monitor thread or in a command, not in a worker.
 *
 * Sections below belong to one source file each; the file's comment says
 * who owns what it returns.
 */
#ifndef SW_MONITOR_H
#define SW_MONITOR_H

#include "base/base.h"

/* Codes of this module (beside the SW_E* ones): -400 .. -499. */

/* ---- process and host figures (proc.c) ---------------------------------------- */

/* This process's CPU time, memory, descriptors and disk I/O, and the host's
 * CPU time, memory and block devices, read from /proc (another root in
 * tests) and written as Prometheus text. Each parser takes one file's text
 * (len bytes, no NUL needed, treated as hostile: every number is checked for
 * overflow, every loop is bounded by len) and fills *out, or returns
 * SW_EINVAL with "FILE: line N: what" in err; *out is meaningful only after 0.
 * The parsers keep no state and are thread-safe. */

/* /proc/self/stat, fields 14, 15, 22, 23 and 24 (proc(5)), in the kernel's units. */
struct monitor_self_stat {
    uint64_t utime_ticks, stime_ticks; /* CPU time, in sysconf(_SC_CLK_TCK) ticks */
    uint64_t start_ticks;              /* start time, ticks after boot */
    uint64_t vsize_bytes;              /* virtual memory size */
    uint64_t rss_pages;                /* resident set, in pages of sysconf(_SC_PAGESIZE) */
};
int monitor_parse_self_stat(const char *text, size_t len, struct monitor_self_stat *out,
                            struct sw_err *err);

/* /proc/self/io: bytes this process made the kernel fetch from, or send to,
 * storage (not page-cache hits). Both keys are required. */
struct monitor_self_io {
    uint64_t read_bytes, write_bytes;
};
int monitor_parse_self_io(const char *text, size_t len, struct monitor_self_io *out,
                          struct sw_err *err);

/* /proc/stat: the "cpu" line (all CPUs together, in clock ticks; guest time
 * is already inside user and nice, so it is left out) and "btime". A kernel
 * giving fewer than the eight modes (at least four) leaves the rest zero. */
enum {
    MONITOR_CPU_USER,
    MONITOR_CPU_NICE,
    MONITOR_CPU_SYSTEM,
    MONITOR_CPU_IDLE,
    MONITOR_CPU_IOWAIT,
    MONITOR_CPU_IRQ,
    MONITOR_CPU_SOFTIRQ,
    MONITOR_CPU_STEAL,
    MONITOR_CPU_MODES
};
struct monitor_cpu {
    uint64_t ticks[MONITOR_CPU_MODES];
    uint64_t btime; /* boot time, seconds since the epoch */
};
int monitor_parse_stat(const char *text, size_t len, struct monitor_cpu *out, struct sw_err *err);
/* The busy share of the CPU time that passed from reading a to reading b:
 * everything but idle and iowait, over all of it, in 0..1. A mode whose
 * counter went back (iowait may, on tickless kernels) counts as no time.
 * -1 when no time passed. */
double monitor_cpu_busy_ratio(const struct monitor_cpu *a, const struct monitor_cpu *b);

/* The readings a busy ratio is measured from (a scrape's caller keeps one):
 * zero it before the first use. */
#define MONITOR_CPU_WINDOW_MIN_MS 1000
struct monitor_cpu_window {
    struct monitor_cpu r[2]; /* oldest first */
    int64_t at_ms[2];        /* when each was read, monotonic */
    int n;
};
/* Takes cur (read at now_ms) into w and returns the busy ratio since the
 * newest kept reading at least MONITOR_CPU_WINDOW_MIN_MS older; without one,
 * since the oldest kept reading; without any (or when no time passed since
 * it), since boot. So with one scraper the ratio covers the time since its
 * previous scrape, and scrapes close together never measure a few ticks.
 * -1 only when the counters say no time at all has passed. Not thread-safe:
 * the caller serialises. */
double monitor_cpu_window_add(struct monitor_cpu_window *w, const struct monitor_cpu *cur,
                              int64_t now_ms);

/* /proc/meminfo: MemTotal (required) and MemAvailable (kernels before 3.14
 * lack it: has_available 0), converted from kB. */
struct monitor_meminfo {
    uint64_t total_bytes, available_bytes;
    int has_available;
};
int monitor_parse_meminfo(const char *text, size_t len, struct monitor_meminfo *out,
                          struct sw_err *err);

/* /proc/diskstats: one entry per whole block device, in the file's order;
 * partitions, loop, ram, zram and floppy devices are left out
 * (monitor_disk_skipped), and devices beyond MONITOR_MAX_DISKS are counted
 * in omitted. A device name is 1..MONITOR_DISK_NAME_MAX bytes of letters,
 * digits and "._-:+!" (so it is safe as a label value); anything else, a
 * device twice, or fewer than the eleven counters every kernel since 2.6
 * writes, refuses the file. */
#define MONITOR_MAX_DISKS 64
#define MONITOR_DISK_NAME_MAX 31
struct monitor_disk {
    char name[MONITOR_DISK_NAME_MAX + 1];
    uint64_t reads, writes;             /* I/Os completed */
    uint64_t read_bytes, written_bytes; /* sectors (always 512 bytes here) x 512 */
    uint64_t io_ms;                     /* time the device had I/O in flight */
};
struct monitor_diskstats {
    struct monitor_disk disk[MONITOR_MAX_DISKS];
    size_t n;
    size_t omitted; /* whole devices past the bound */
};
int monitor_parse_diskstats(const char *text, size_t len, struct monitor_diskstats *out,
                            struct sw_err *err);
/* 1 for a device name the figures leave out: loopN, ramN, zramN, fdN, and
 * partitions of (h|s|v|xv)d disks ("sda1"), nvme ("nvme0n1p2") and mmcblk
 * ("mmcblk0p1") devices, which would count their disk's I/O twice. */
int monitor_disk_skipped(const char *name);

/* Every figure at once. ok says which sources were read and parsed. */
enum {
    MONITOR_SRC_SELF_STAT = 1 << 0, /* self/stat */
    MONITOR_SRC_SELF_IO = 1 << 1,   /* self/io: unreadable under some sandboxes */
    MONITOR_SRC_SELF_FD = 1 << 2,   /* self/fd, and getrlimit(RLIMIT_NOFILE) */
    MONITOR_SRC_STAT = 1 << 3,      /* stat */
    MONITOR_SRC_MEMINFO = 1 << 4,   /* meminfo */
    MONITOR_SRC_DISKSTATS = 1 << 5, /* diskstats */
    MONITOR_SRC_ALL = (1 << 6) - 1
};
struct monitor_proc_reading {
    unsigned ok;             /* MONITOR_SRC_* read and parsed */
    long clk_tck, page_size; /* sysconf */
    struct monitor_self_stat self;
    struct monitor_self_io io;
    uint64_t open_fds; /* entries of self/fd, less the one used to list it */
    uint64_t max_fds;  /* the soft RLIMIT_NOFILE; UINT64_MAX: unlimited */
    struct monitor_cpu cpu;
    struct monitor_meminfo mem;
    struct monitor_diskstats disks;
};
/* Reads every source under root ("/proc" when NULL), each file up to 4 MiB.
 * A source that cannot be read or parsed only leaves its bit clear: returns
 * 0 when all were read, else the code of the first failure, described in
 * err ("/proc/self/io: Permission denied"). Thread-safe. */
int monitor_proc_read(const char *root, struct monitor_proc_reading *r, struct sw_err *err);

/* Appends r in Prometheus text format 0.0.4 (docs/monitor.md lists the
 * families): the process_* ones client_golang's process collector writes,
 * and slipway_process_* and slipway_host_* for the rest. A source r lacks
 * leaves its families out and shows as slipway_proc_readable{source} 0.
 * busy_ratio < 0 leaves slipway_host_cpu_busy_ratio out. */
void monitor_proc_format(const struct monitor_proc_reading *r, double busy_ratio, struct buf *b);

/* The renderer `slipway serve` registers with edge_set_metrics_extra: reads
 * everything at each scrape and keeps the CPU window between scrapes. */
struct monitor_proc;
/* root: "/proc" when NULL (copied). Takes a first reading, so the first
 * scrape's busy ratio covers the time since this call. Free with
 * monitor_proc_free (NULL is a no-op). */
struct monitor_proc *monitor_proc_new(const char *root);
void monitor_proc_free(struct monitor_proc *m);
/* Reads and appends the exposition (monitor_proc_format) to b. Thread-safe:
 * concurrent scrapes take turns on a mutex. */
void monitor_proc_render(struct monitor_proc *m, struct buf *b);

/* ---- alert rules (rules.c) ---------------------------------------------------- */

#endif
