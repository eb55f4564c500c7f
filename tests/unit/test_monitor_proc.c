/* Unit tests for monitor's process and host figures (src/monitor/proc.c):
 * each parser on text copied from a real /proc (a 6.x kernel in a 2-CPU VM),
 * then on what a hostile or older kernel could hand it: every prefix of every
 * fixture, fields missing, numbers too large, duplicated keys, device names
 * that would break a label; the busy ratio and the window it is measured
 * over; the reader on a fake root (a source missing says so without failing
 * the rest); the exposition, line by line; and scrapes from several threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "monitor/monitor.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- fixtures: real text (cat /proc/...) ---------------------------------------- */

/* /proc/1/stat of the VM's init, "process_api": CPU time, start and sizes
 * non-zero, negative fields (tpgid, nice) in between. */
static const char real_self_stat[] =
    "1 (process_api) S 0 0 0 0 -1 4194560 154595 619767400 0 13958 5676 11462 1924111 "
    "1615658 10 -10 40 0 18 58200064 3806 18446744073709551615 1 1 0 0 0 0 0 4096 1256 0 0 0 "
    "17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
/* /proc/self/stat of cat: a command name chosen by the process may hold
 * spaces and parentheses (prctl(PR_SET_NAME)); this one is edited to. */
static const char odd_comm_stat[] =
    "20016 (a) (b c) R 20014 20014 17277 0 -1 4194304 98 0 0 0 7 3 0 0 20 0 1 0 2096684 "
    "3133440 388 18446744073709551615 93945131130880 93945131150761 140736801728144 0 0 0 0 0 "
    "0 0 0 0 17 0 0 0 0 0 0 93945131166768 93945131168384 93946034958336 140736801733063 "
    "140736801733083 140736801733083 140736801734635 0\n";
static const char real_self_io[] = "rchar: 6976\n"
                                   "wchar: 0\n"
                                   "syscr: 10\n"
                                   "syscw: 0\n"
                                   "read_bytes: 8192\n"
                                   "write_bytes: 4096\n"
                                   "cancelled_write_bytes: 0\n";
static const char real_stat[] =
    "cpu  1898262 1225 1557345 569694 20019 0 45503 0 0 0\n"
    "cpu0 931623 721 775853 310793 6874 0 22548 0 0 0\n"
    "cpu1 966638 503 781492 258901 13144 0 22955 0 0 0\n"
    "intr 24590850 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 1 0 0 0 0 4238 1169 0 35"
    "8 1 3869574 0 852 790 0 11895 39935 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    "ctxt 67815195\n"
    "btime 1796463741\n"
    "processes 1398286\n"
    "procs_running 1\n"
    "procs_blocked 0\n"
    "softirq 185947832 0 2695680 4 167145125 3869325 0 9 1909861 2666509 7661319\n";
static const char real_meminfo[] = "MemTotal:       24683744 kB\n"
                                   "MemFree:        23152536 kB\n"
                                   "MemAvailable:   24228596 kB\n"
                                   "Buffers:           36804 kB\n"
                                   "Cached:          1194372 kB\n"
                                   "SwapCached:            0 kB\n"
                                   "Active:           614156 kB\n"
                                   "Inactive:         627812 kB\n"
                                   "Active(anon):        220 kB\n"
                                   "Inactive(anon):    20896 kB\n"
                                   "Active(file):     613936 kB\n"
                                   "Inactive(file):   606916 kB\n"
                                   "Unevictable:       18232 kB\n"
                                   "Mlocked:           15360 kB\n"
                                   "SwapTotal:             0 kB\n"
                                   "SwapFree:              0 kB\n"
                                   "Zswap:                 0 kB\n"
                                   "Zswapped:              0 kB\n"
                                   "Dirty:             13652 kB\n"
                                   "Writeback:            44 kB\n"
                                   "AnonPages:         29084 kB\n"
                                   "Mapped:            20828 kB\n"
                                   "Shmem:             10320 kB\n"
                                   "KReclaimable:     158792 kB\n"
                                   "Slab:             193752 kB\n"
                                   "SReclaimable:     158792 kB\n"
                                   "SUnreclaim:        34960 kB\n"
                                   "KernelStack:        2048 kB\n"
                                   "PageTables:         1852 kB\n"
                                   "SecPageTables:         0 kB\n"
                                   "NFS_Unstable:          0 kB\n"
                                   "Bounce:                0 kB\n"
                                   "WritebackTmp:          0 kB\n"
                                   "CommitLimit:    12341872 kB\n"
                                   "Committed_AS:     143928 kB\n"
                                   "VmallocTotal:   34359738367 kB\n"
                                   "VmallocUsed:       14844 kB\n"
                                   "VmallocChunk:          0 kB\n"
                                   "Percpu:              960 kB\n"
                                   "AnonHugePages:         0 kB\n"
                                   "ShmemHugePages:        0 kB\n"
                                   "ShmemPmdMapped:        0 kB\n"
                                   "FileHugePages:     12288 kB\n"
                                   "FilePmdMapped:         0 kB\n"
                                   "Balloon:               0 kB\n"
                                   "HugePages_Total:       0\n"
                                   "HugePages_Free:        0\n"
                                   "HugePages_Rsvd:        0\n"
                                   "HugePages_Surp:        0\n"
                                   "Hugepagesize:       2048 kB\n"
                                   "Hugetlb:               0 kB\n"
                                   "DirectMap4k:       30720 kB\n"
                                   "DirectMap2M:    25135104 kB\n";
static const char real_diskstats[] =
    "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    "   7       1 loop1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    "   7       2 loop2 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    "   7       3 loop3 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    "   7       4 loop4 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    "   7       5 loop5 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    "   7       6 loop6 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    "   7       7 loop7 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    " 254       0 vda 293827 24224 8293490 187538 2987200 965984 109752544 1800769 0 876940 268"
    "0767 1070309 35 90914568 381708 901010 310750\n"
    " 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

/* ---- helpers ---------------------------------------------------------------------------- */

typedef int parse_any(const char *text, size_t len, void *out, struct sw_err *err);

static int any_self_stat(const char *t, size_t l, void *o, struct sw_err *e)
{
    return monitor_parse_self_stat(t, l, o, e);
}
static int any_self_io(const char *t, size_t l, void *o, struct sw_err *e)
{
    return monitor_parse_self_io(t, l, o, e);
}
static int any_stat(const char *t, size_t l, void *o, struct sw_err *e)
{
    return monitor_parse_stat(t, l, o, e);
}
static int any_meminfo(const char *t, size_t l, void *o, struct sw_err *e)
{
    return monitor_parse_meminfo(t, l, o, e);
}
static int any_diskstats(const char *t, size_t l, void *o, struct sw_err *e)
{
    return monitor_parse_diskstats(t, l, o, e);
}

/* Parses text with parse and expects SW_EINVAL with want in the message. */
static void expect_bad(parse_any *parse, const char *text, const char *want)
{
    static struct monitor_diskstats out; /* the largest of the outs */
    struct sw_err err = {0};
    int rc = parse(text, strlen(text), &out, &err);
    if (rc != SW_EINVAL || !strstr(err.msg, want))
        print_message("# input: %s\n# got %d '%s', wanted '%s'\n", text, rc, err.msg, want);
    assert_int_equal(rc, SW_EINVAL);
    assert_int_equal(err.code, SW_EINVAL);
    assert_non_null(strstr(err.msg, want));
}

/* A copy of text[0..n) in its own allocation, so ASan sees any read past it. */
static char *exact(const char *text, size_t n)
{
    char *c = malloc(n ? n : 1);
    assert_non_null(c);
    memcpy(c, text, n);
    return c;
}

/* ---- /proc/self/stat ---------------------------------------------------------------------- */

static void test_self_stat_real(void **state)
{
    struct monitor_self_stat s;
    struct sw_err err = {0};
    assert_int_equal(monitor_parse_self_stat(real_self_stat, strlen(real_self_stat), &s, &err), 0);
    assert_int_equal(s.utime_ticks, 5676);
    assert_int_equal(s.stime_ticks, 11462);
    assert_int_equal(s.start_ticks, 18);
    assert_int_equal(s.vsize_bytes, 58200064);
    assert_int_equal(s.rss_pages, 3806);
    /* the fields count from the last ')', whatever the name holds */
    assert_int_equal(monitor_parse_self_stat(odd_comm_stat, strlen(odd_comm_stat), &s, &err), 0);
    assert_int_equal(s.utime_ticks, 7);
    assert_int_equal(s.stime_ticks, 3);
    assert_int_equal(s.start_ticks, 2096684);
    assert_int_equal(s.vsize_bytes, 3133440);
    assert_int_equal(s.rss_pages, 388);
    /* exactly 24 fields, no newline, is enough */
    const char *min = "1 (x) S 0 0 0 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 7 8 9";
    assert_int_equal(monitor_parse_self_stat(min, strlen(min), &s, &err), 0);
    assert_int_equal(s.utime_ticks + s.stime_ticks + s.start_ticks + s.vsize_bytes + s.rss_pages,
                     35);
}

static void test_self_stat_malformed(void **state)
{
    expect_bad(any_self_stat, "", "no process id");
    expect_bad(any_self_stat, "(x) S", "no process id");
    expect_bad(any_self_stat, "-1 (x) S", "no process id");
    expect_bad(any_self_stat, "1 x S 0", "no command name");
    expect_bad(any_self_stat, "1 (x S 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0", "not closed");
    /* the ')' on the next line is not this line's */
    expect_bad(any_self_stat, "1 (x S 0\n)", "not closed");
    expect_bad(any_self_stat, "1 (x)", "2 fields, expected at least 24");
    expect_bad(any_self_stat, "1 (x) S 0 0 0 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 7 8",
               "23 fields, expected at least 24");
    expect_bad(any_self_stat, "1 (x) S 0 0 0 0 -1 0 0 0 0 0 5  6 0 0 20 0 1 0 7 8 9",
               "field 15 is empty");
    expect_bad(any_self_stat, "1 (x) S 0 0 0 0 -1 0 0 0 0 0 -5 6 0 0 20 0 1 0 7 8 9",
               "field 14 is not an unsigned number");
    expect_bad(any_self_stat, "1 (x) S 0 0 0 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 7 8 9x",
               "field 24 is not");
    expect_bad(any_self_stat, "1 (x) S 0 0 0 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 7 8\t9",
               "field 23 is not");
    /* 2^64 does not wrap to 0 */
    expect_bad(any_self_stat,
               "1 (x) S 0 0 0 0 -1 0 0 0 0 0 18446744073709551616 6 0 0 20 0 1 0 7 8 9",
               "field 14 is not");
    struct monitor_self_stat s;
    const char *max = "1 (x) S 0 0 0 0 -1 0 0 0 0 0 18446744073709551615 6 0 0 20 0 1 0 7 8 9";
    assert_int_equal(monitor_parse_self_stat(max, strlen(max), &s, NULL), 0);
    assert_true(s.utime_ticks == UINT64_MAX);
    /* a NUL inside is text like any other: not a digit */
    static const char nul[] = "1 (x) S 0 0 0 0 -1 0 0 0 0 0 5\0 6 0 0 20 0 1 0 7 8 9";
    struct sw_err err = {0};
    assert_int_equal(monitor_parse_self_stat(nul, sizeof(nul) - 1, &s, &err), SW_EINVAL);
}

/* Every proper prefix of a fixture is parsed without reading past it; for
 * self/stat, a prefix that ends before field 24 does is refused. */
static void prefixes(parse_any *parse, const char *text, size_t must_fail_below)
{
    static struct monitor_diskstats out;
    size_t len = strlen(text);
    for (size_t n = 0; n <= len; n++) {
        char *c = exact(text, n);
        struct sw_err err = {0};
        int rc = parse(c, n, &out, &err);
        assert_true(rc == 0 || (rc == SW_EINVAL && err.msg[0] == '/'));
        if (n < must_fail_below)
            assert_int_equal(rc, SW_EINVAL);
        free(c);
    }
}

static void test_every_prefix(void **state)
{
    const char *f24 = strstr(real_self_stat, " 3806 ");
    prefixes(any_self_stat, real_self_stat, (size_t)(f24 - real_self_stat) + 2);
    prefixes(any_self_stat, odd_comm_stat, 0);
    prefixes(any_self_io, real_self_io, strlen("rchar: 6976\nwchar: 0\nsyscr: 10\nsyscw: 0\n"));
    prefixes(any_stat, real_stat, strlen("cpu  1"));
    prefixes(any_meminfo, real_meminfo, strlen("MemTotal:       2"));
    prefixes(any_diskstats, real_diskstats, 0);
}

/* ---- /proc/self/io ------------------------------------------------------------------------ */

static void test_self_io(void **state)
{
    struct monitor_self_io io;
    struct sw_err err = {0};
    assert_int_equal(monitor_parse_self_io(real_self_io, strlen(real_self_io), &io, &err), 0);
    assert_int_equal(io.read_bytes, 8192);
    assert_int_equal(io.write_bytes, 4096);
    const char *order = "write_bytes:\t7 \r\nread_bytes: 9\n\n";
    expect_bad(any_self_io, order, "line 1: the value is not an unsigned number"); /* \r */
    order = "write_bytes:\t7 \nread_bytes: 9\n\n";
    assert_int_equal(monitor_parse_self_io(order, strlen(order), &io, &err), 0);
    assert_int_equal(io.read_bytes, 9);
    assert_int_equal(io.write_bytes, 7);
    expect_bad(any_self_io, "rchar: 1\n", "no read_bytes");
    expect_bad(any_self_io, "read_bytes: 1\n", "no write_bytes");
    expect_bad(any_self_io, "read_bytes: 1\nwrite_bytes: 2\nread_bytes: 3\n",
               "line 3: read_bytes twice");
    expect_bad(any_self_io, "read_bytes: 1\nwrite_bytes 2\n", "line 2: not 'key: value'");
    expect_bad(any_self_io, "read_bytes: 1\n: 2\n", "line 2: not 'key: value'");
    expect_bad(any_self_io, "read_bytes: 1 2\nwrite_bytes: 2\n", "line 1: the value");
    expect_bad(any_self_io, "read_bytes:\nwrite_bytes: 2\n", "line 1: the value");
    expect_bad(any_self_io, "read_bytes: 99999999999999999999\nwrite_bytes: 2\n", "line 1:");
    /* read_bytes_extra is another key */
    expect_bad(any_self_io, "read_bytes_extra: 1\nwrite_bytes: 2\n", "no read_bytes");
}

/* ---- /proc/stat and the busy ratio ---------------------------------------------------------- */

static void test_stat(void **state)
{
    struct monitor_cpu c;
    struct sw_err err = {0};
    assert_int_equal(monitor_parse_stat(real_stat, strlen(real_stat), &c, &err), 0);
    assert_int_equal(c.ticks[MONITOR_CPU_USER], 1898262);
    assert_int_equal(c.ticks[MONITOR_CPU_NICE], 1225);
    assert_int_equal(c.ticks[MONITOR_CPU_SYSTEM], 1557345);
    assert_int_equal(c.ticks[MONITOR_CPU_IDLE], 569694);
    assert_int_equal(c.ticks[MONITOR_CPU_IOWAIT], 20019);
    assert_int_equal(c.ticks[MONITOR_CPU_IRQ], 0);
    assert_int_equal(c.ticks[MONITOR_CPU_SOFTIRQ], 45503);
    assert_int_equal(c.ticks[MONITOR_CPU_STEAL], 0);
    assert_int_equal(c.btime, 1796463741);
    /* Linux 2.4 wrote four times; the rest stay zero. Later kernels may add more. */
    const char *old = "cpu 1 2 3 4\nbtime 5\n";
    assert_int_equal(monitor_parse_stat(old, strlen(old), &c, &err), 0);
    assert_int_equal(c.ticks[MONITOR_CPU_IDLE], 4);
    assert_int_equal(c.ticks[MONITOR_CPU_IOWAIT], 0);
    const char *more = "btime 5\ncpu 1 2 3 4 5 6 7 8 9 10 11 12\n";
    assert_int_equal(monitor_parse_stat(more, strlen(more), &c, &err), 0);
    assert_int_equal(c.ticks[MONITOR_CPU_STEAL], 8);
    expect_bad(any_stat, "cpu 1 2 3\nbtime 5\n", "line 1: fewer than 4 cpu times");
    expect_bad(any_stat, "cpu0 1 2 3 4\nbtime 5\n", "no cpu line");
    expect_bad(any_stat, "cpu 1 2 3 4\n", "no btime line");
    expect_bad(any_stat, "cpu 1 2 3 4\ncpu 1 2 3 4\nbtime 5\n", "line 2: a second cpu line");
    expect_bad(any_stat, "cpu 1 2 3 4\nbtime 5\nbtime 6\n", "line 3: a second btime line");
    expect_bad(any_stat, "cpu 1 2 -3 4\nbtime 5\n", "line 1: a cpu time is not");
    expect_bad(any_stat, "cpu 1 2 3 4 x\nbtime 5\n", "line 1: a cpu time is not");
    expect_bad(any_stat, "cpu 1 2 3 18446744073709551616\nbtime 5\n", "line 1: a cpu time");
    expect_bad(any_stat, "cpu 1 2 3 4\nbtime 5 6\n", "line 2: btime is not");
    expect_bad(any_stat, "cpu 1 2 3 4\nbtime\n", "no btime line"); /* "btime" alone */
    /* other lines are not read at all */
    const char *junk = "intr \x01\xff garbage\ncpu 1 2 3 4\nbtime 5\n\x7f\n";
    assert_int_equal(monitor_parse_stat(junk, strlen(junk), &c, &err), 0);
}

static struct monitor_cpu cpu(uint64_t user, uint64_t system, uint64_t idle, uint64_t iowait)
{
    struct monitor_cpu c = {{0}, 0};
    c.ticks[MONITOR_CPU_USER] = user;
    c.ticks[MONITOR_CPU_SYSTEM] = system;
    c.ticks[MONITOR_CPU_IDLE] = idle;
    c.ticks[MONITOR_CPU_IOWAIT] = iowait;
    return c;
}

static void test_busy_ratio(void **state)
{
    struct monitor_cpu a = cpu(100, 100, 100, 100), b = cpu(130, 120, 140, 110);
    /* 50 busy of 100 ticks */
    assert_float_equal(monitor_cpu_busy_ratio(&a, &b), 0.5, 1e-12);
    /* all idle, all busy */
    struct monitor_cpu c = cpu(100, 100, 200, 100);
    assert_float_equal(monitor_cpu_busy_ratio(&a, &c), 0.0, 1e-12);
    c = cpu(150, 150, 100, 100);
    assert_float_equal(monitor_cpu_busy_ratio(&a, &c), 1.0, 1e-12);
    /* iowait going back (tickless kernels) counts as no time, not as 2^64 */
    c = cpu(110, 110, 120, 90);
    assert_float_equal(monitor_cpu_busy_ratio(&a, &c), 0.5, 1e-12);
    /* no time passed, or everything went back: no ratio */
    assert_true(monitor_cpu_busy_ratio(&a, &a) < 0);
    c = cpu(1, 1, 1, 1);
    assert_true(monitor_cpu_busy_ratio(&a, &c) < 0);
    /* counters near 2^64 */
    struct monitor_cpu h1 = cpu(UINT64_MAX - 10, UINT64_MAX - 10, UINT64_MAX - 10, 0);
    struct monitor_cpu h2 = cpu(UINT64_MAX, UINT64_MAX - 10, UINT64_MAX, 0);
    assert_float_equal(monitor_cpu_busy_ratio(&h1, &h2), 0.5, 1e-12);
}

static void test_cpu_window(void **state)
{
    struct monitor_cpu_window w;
    memset(&w, 0, sizeof(w));
    /* the first reading: since boot (3 busy of 4) */
    struct monitor_cpu r0 = cpu(200, 100, 100, 0);
    assert_float_equal(monitor_cpu_window_add(&w, &r0, 10000), 0.75, 1e-12);
    assert_int_equal(w.n, 1);
    /* 2 s later: since r0 (all busy) */
    struct monitor_cpu r1 = cpu(300, 100, 100, 0);
    assert_float_equal(monitor_cpu_window_add(&w, &r1, 12000), 1.0, 1e-12);
    assert_int_equal(w.n, 2);
    /* 0.1 s after r1: not since r1 (too close), since r0 */
    struct monitor_cpu r2 = cpu(300, 100, 200, 0);
    assert_float_equal(monitor_cpu_window_add(&w, &r2, 12100), 0.5, 1e-12);
    assert_int_equal(w.n, 2); /* r2 was not kept */
    assert_int_equal(w.at_ms[1], 12000);
    /* 1 s after r1: since r1, and r0 is dropped */
    struct monitor_cpu r3 = cpu(300, 100, 400, 0);
    assert_float_equal(monitor_cpu_window_add(&w, &r3, 13000), 0.0, 1e-12);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.at_ms[0], 12000);
    assert_int_equal(w.at_ms[1], 13000);
    /* no tick since the base: since boot instead of no answer */
    assert_float_equal(monitor_cpu_window_add(&w, &r3, 14500), 400.0 / 800, 1e-12);
    /* the first scrape within a second of the first reading: since it */
    memset(&w, 0, sizeof(w));
    (void)monitor_cpu_window_add(&w, &r0, 0);
    assert_float_equal(monitor_cpu_window_add(&w, &r2, 200), 0.5, 1e-12);
    assert_int_equal(w.n, 1);
    /* all zero counters: -1 */
    memset(&w, 0, sizeof(w));
    struct monitor_cpu z = cpu(0, 0, 0, 0);
    assert_true(monitor_cpu_window_add(&w, &z, 0) < 0);
    /* a damaged count is reset, never indexed */
    w.n = 7;
    assert_float_equal(monitor_cpu_window_add(&w, &r0, 0), 0.75, 1e-12);
    assert_int_equal(w.n, 1);
}

/* ---- /proc/meminfo ----------------------------------------------------------------------------
 */

static void test_meminfo(void **state)
{
    struct monitor_meminfo m;
    struct sw_err err = {0};
    assert_int_equal(monitor_parse_meminfo(real_meminfo, strlen(real_meminfo), &m, &err), 0);
    assert_int_equal(m.total_bytes, 24683744ull * 1024);
    assert_int_equal(m.available_bytes, 24228596ull * 1024);
    assert_true(m.has_available);
    /* before Linux 3.14 */
    const char *old = "MemTotal: 1000 kB\nMemFree: 10 kB\nHugePages_Total: 0\n";
    assert_int_equal(monitor_parse_meminfo(old, strlen(old), &m, &err), 0);
    assert_int_equal(m.total_bytes, 1024000);
    assert_false(m.has_available);
    expect_bad(any_meminfo, "MemFree: 10 kB\n", "no MemTotal");
    expect_bad(any_meminfo, "MemTotal: 10\n", "line 1: the value is not in kB");
    expect_bad(any_meminfo, "MemTotal: 10 MB\n", "line 1: the value is not in kB");
    expect_bad(any_meminfo, "MemTotal: 10 kB x\n", "line 1: the value is not in kB");
    expect_bad(any_meminfo, "MemTotal: 10 kB\nMemTotal: 10 kB\n", "line 2: MemTotal twice");
    expect_bad(any_meminfo, "MemTotal: 1 kB\nMemAvailable: 1 kB\nMemAvailable: 1 kB\n",
               "line 3: MemAvailable twice");
    expect_bad(any_meminfo, "MemTotal: 18014398509481984 kB\n", "line 1: the value is too large");
    expect_bad(any_meminfo, "MemTotal: -1 kB\n", "line 1: the value is not an unsigned");
    expect_bad(any_meminfo, "MemTotal 1 kB\n", "line 1: not 'Key: value'");
    const char *max = "MemTotal: 18014398509481983 kB\n";
    assert_int_equal(monitor_parse_meminfo(max, strlen(max), &m, &err), 0);
    assert_true(m.total_bytes == 18014398509481983ull * 1024);
}

/* ---- /proc/diskstats
 * ------------------------------------------------------------------------------ */

static void test_diskstats_real(void **state)
{
    struct monitor_diskstats d;
    struct sw_err err = {0};
    assert_int_equal(monitor_parse_diskstats(real_diskstats, strlen(real_diskstats), &d, &err), 0);
    /* loop0-7 and zram0 are left out */
    assert_int_equal(d.n, 1);
    assert_int_equal(d.omitted, 0);
    assert_string_equal(d.disk[0].name, "vda");
    assert_int_equal(d.disk[0].reads, 293827);
    assert_int_equal(d.disk[0].read_bytes, 8293490ull * 512);
    assert_int_equal(d.disk[0].writes, 2987200);
    assert_int_equal(d.disk[0].written_bytes, 109752544ull * 512);
    assert_int_equal(d.disk[0].io_ms, 876940);
}

static void test_disk_skipped(void **state)
{
    static const char *const skip[] = {
        "loop0", "loop12", "ram0",  "zram0",     "fd0",         "sda1",      "sdab12",
        "hdc3",  "vda1",   "xvda2", "nvme0n1p1", "nvme10n2p15", "mmcblk0p1", "mmcblk1p12"};
    static const char *const keep[] = {
        "sda",  "sdab",     "vda",     "xvda",     "hdc",      "nvme0n1", "nvme10n2", "mmcblk0",
        "dm-0", "md127",    "sr0",     "nbd0",     "loop",     "loopy0",  "ram",      "sd",
        "sd1",  "nvme0n1p", "nvme0p1", "mmcblk0p", "mmcblkp1", "fd",      "zram"};
    for (size_t i = 0; i < sizeof(skip) / sizeof(*skip); i++)
        if (!monitor_disk_skipped(skip[i]))
            fail_msg("%s should be skipped", skip[i]);
    for (size_t i = 0; i < sizeof(keep) / sizeof(*keep); i++)
        if (monitor_disk_skipped(keep[i]))
            fail_msg("%s should be kept", keep[i]);
}

static void test_diskstats_malformed(void **state)
{
    struct monitor_diskstats d;
    struct sw_err err = {0};
#define ELEVEN " 1 2 3 4 5 6 7 8 9 10 11\n"
    /* a partition in the 2.6.25 four-counter form is skipped, not refused */
    const char *old = "   8 0 sda" ELEVEN "   8 1 sda1 1 2 3 4\n\n";
    assert_int_equal(monitor_parse_diskstats(old, strlen(old), &d, &err), 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.disk[0].read_bytes, 3 * 512);
    assert_int_equal(d.disk[0].io_ms, 10);
    /* an empty file: no devices (a container may see none) */
    assert_int_equal(monitor_parse_diskstats("", 0, &d, &err), 0);
    assert_int_equal(d.n, 0);
    expect_bad(any_diskstats, "8 0 sda 1 2 3 4 5 6 7 8 9 10\n", "line 1: fewer than 11 counters");
    expect_bad(any_diskstats, "8 0 sda" ELEVEN "8 16 sdb 1 2 x\n", "line 2: a counter is not");
    expect_bad(any_diskstats, "8 sda" ELEVEN, "line 1: no major and minor");
    expect_bad(any_diskstats, "8 0" ELEVEN, "line 1: fewer than 11"); /* "1" is the name */
    expect_bad(any_diskstats, "8 0 \n", "the device name is empty");
    expect_bad(any_diskstats, "8 0 sd\"a" ELEVEN, "line 1: the device name has a character");
    expect_bad(any_diskstats, "8 0 sd\\a" ELEVEN, "line 1: the device name has a character");
    expect_bad(any_diskstats, "8 0 sd{a}" ELEVEN, "line 1: the device name has a character");
    expect_bad(any_diskstats, "8 0 ../etc" ELEVEN, "line 1: the device name has a character");
    expect_bad(any_diskstats, "8 0 sd\xc3\xa9" ELEVEN, "line 1: the device name has a character");
    expect_bad(any_diskstats, "8 0 abcdefghijklmnopqrstuvwxyz012345" ELEVEN,
               "longer than 31 bytes");
    const char *name31 = "8 0 abcdefghijklmnopqrstuvwxyz01234" ELEVEN;
    assert_int_equal(monitor_parse_diskstats(name31, strlen(name31), &d, &err), 0);
    expect_bad(any_diskstats, "8 0 sda" ELEVEN "8 0 sda" ELEVEN, "line 2: a device named twice");
    expect_bad(any_diskstats, "8 0 sda 1 2 36028797018963968 4 5 6 7 8 9 10 11\n",
               "a sector count is too large");
    const char *big = "8 0 sda 1 2 36028797018963967 4 5 6 7 8 9 10 11\n";
    assert_int_equal(monitor_parse_diskstats(big, strlen(big), &d, &err), 0);
    assert_true(d.disk[0].read_bytes == 36028797018963967ull * 512);
#undef ELEVEN
}

static void test_diskstats_bound(void **state)
{
    struct buf b = BUF_INIT;
    static struct monitor_diskstats d;
    struct sw_err err = {0};
    for (int i = 0; i < MONITOR_MAX_DISKS + 10; i++)
        buf_addf(&b, "253 %d dm-%d 1 0 8 0 2 0 16 0 0 3 0\n", i, i);
    assert_int_equal(monitor_parse_diskstats(b.data, b.len, &d, &err), 0);
    assert_int_equal(d.n, MONITOR_MAX_DISKS);
    assert_int_equal(d.omitted, 10);
    assert_string_equal(d.disk[MONITOR_MAX_DISKS - 1].name, "dm-63");
    buf_free(&b);
}

/* ---- reading a root, and the exposition
 * ------------------------------------------------------------ */

static void put(const char *root, const char *name, const char *text)
{
    char *p = path_join(root, name);
    assert_int_equal(fs_write_atomic(p, text, strlen(text), NULL), 0);
    free(p);
}

/* A fake /proc with every source, three descriptors and no self/io. */
static char *fake_root(void)
{
    char tmpl[] = "/tmp/test_monitor_proc.XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char *root = xstrdup(tmpl);
    char *fd = path_join(root, "self/fd");
    assert_int_equal(fs_mkdir_p(fd, NULL), 0);
    put(root, "self/stat", real_self_stat);
    put(root, "stat", real_stat);
    put(root, "meminfo", real_meminfo);
    put(root, "diskstats", real_diskstats);
    put(fd, "a", "");
    put(fd, "b", "");
    put(fd, "c", "");
    free(fd);
    return root;
}

static void rm_root(char *root)
{
    assert_int_equal(fs_remove_tree(root, NULL), 0);
    free(root);
}

/* Every line is a HELP, a TYPE, or a sample of the family just declared
 * with a number, +Inf, and label values of safe characters only. */
static void check_exposition(const char *text)
{
    char family[128] = "";
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        assert_non_null(e);
        char line[512];
        size_t n = (size_t)(e - p);
        assert_true(n > 0 && n < sizeof(line));
        memcpy(line, p, n);
        line[n] = '\0';
        for (size_t i = 0; i < n; i++)
            assert_true(line[i] >= ' ' && line[i] < 0x7f);
        char name[128], type[32];
        if (sscanf(line, "# HELP %127s ", name) == 1) {
            snprintf(family, sizeof(family), "%s", name);
        } else if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
            assert_string_equal(name, family);
            assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge"));
            if (!strcmp(type, "counter"))
                assert_non_null(strstr(name, "_total"));
        } else {
            size_t fl = strlen(family);
            assert_true(fl > 0 && !strncmp(line, family, fl));
            assert_true(line[fl] == ' ' || line[fl] == '{');
            const char *v = strrchr(line, ' ') + 1;
            if (line[fl] == '{') {
                const char *close = strchr(line, '}');
                assert_true(close && close + 1 == v - 1);
                for (const char *c = line + fl; c < close; c++)
                    assert_true(*c != '\\');
            }
            char *end;
            if (strcmp(v, "+Inf") != 0) {
                (void)strtod(v, &end);
                assert_true(end != v && *end == '\0' && v[0] != '-');
            }
        }
        p = e + 1;
    }
}

static void test_read_root(void **state)
{
    char *root = fake_root();
    static struct monitor_proc_reading r;
    struct sw_err err = {0};
    int rc = monitor_proc_read(root, &r, &err);
    /* self/io is missing: said, and nothing else is lost */
    assert_int_equal(rc, SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/self/io: "));
    assert_int_equal(r.ok, MONITOR_SRC_ALL & ~MONITOR_SRC_SELF_IO);
    assert_int_equal(r.open_fds, 3);
    assert_true(r.max_fds > 0);
    assert_int_equal(r.self.rss_pages, 3806);
    assert_int_equal(r.cpu.btime, 1796463741);
    assert_int_equal(r.disks.n, 1);

    struct buf b = BUF_INIT;
    r.clk_tck = 100;
    r.page_size = 4096;
    monitor_proc_format(&r, 0.25, &b);
    check_exposition(b.data);
    assert_non_null(strstr(b.data, "\nprocess_cpu_seconds_total 171.380\n"));
    assert_non_null(strstr(b.data, "\nprocess_resident_memory_bytes 15589376\n"));
    assert_non_null(strstr(b.data, "\nprocess_virtual_memory_bytes 58200064\n"));
    assert_non_null(strstr(b.data, "\nprocess_start_time_seconds 1796463741.180\n"));
    assert_non_null(strstr(b.data, "\nprocess_open_fds 3\n"));
    assert_non_null(strstr(b.data, "\nslipway_host_cpu_seconds_total{mode=\"user\"} 18982.620\n"));
    assert_non_null(strstr(b.data, "\nslipway_host_cpu_busy_ratio 0.250000\n"));
    assert_non_null(strstr(b.data, "\nslipway_host_memory_available_bytes 24810082304\n"));
    assert_non_null(strstr(b.data, "\nslipway_host_disk_read_bytes_total{device=\"vda\"} "
                                   "4246266880\n"));
    assert_non_null(strstr(b.data, "\nslipway_host_disk_io_time_seconds_total{device=\"vda\"} "
                                   "876.940\n"));
    assert_null(strstr(b.data, "loop0"));
    assert_null(strstr(b.data, "slipway_process_disk_read_bytes_total"));
    assert_non_null(strstr(b.data, "\nslipway_proc_readable{source=\"self_io\"} 0\n"));
    assert_non_null(strstr(b.data, "\nslipway_proc_readable{source=\"diskstats\"} 1\n"));
    buf_reset(&b);

    /* with self/io: its two counters appear and the root reads whole */
    put(root, "self/io", real_self_io);
    assert_int_equal(monitor_proc_read(root, &r, &err), 0);
    assert_int_equal(r.ok, MONITOR_SRC_ALL);
    monitor_proc_format(&r, -1, &b);
    check_exposition(b.data);
    assert_non_null(strstr(b.data, "\nslipway_process_disk_read_bytes_total 8192\n"));
    assert_non_null(strstr(b.data, "\nslipway_process_disk_written_bytes_total 4096\n"));
    assert_null(strstr(b.data, "slipway_host_cpu_busy_ratio")); /* no ratio given */
    buf_reset(&b);

    /* a malformed source: its figures go, the error names the file and line */
    put(root, "meminfo", "MemTotal: lots\n");
    put(root, "diskstats", "8 0 sd\"a 1 2 3 4 5 6 7 8 9 10 11\n");
    assert_int_equal(monitor_proc_read(root, &r, &err), SW_EINVAL);
    assert_string_equal(err.msg, "/proc/meminfo: line 1: the value is not an unsigned number");
    assert_int_equal(r.ok, MONITOR_SRC_ALL & ~(MONITOR_SRC_MEMINFO | MONITOR_SRC_DISKSTATS));
    monitor_proc_format(&r, -1, &b);
    check_exposition(b.data);
    assert_null(strstr(b.data, "slipway_host_memory"));
    assert_null(strstr(b.data, "slipway_host_disk"));
    buf_reset(&b);

    /* a file past the bound is refused, not read into memory whole */
    char *big = xcalloc(1, (4u << 20) + 2);
    memset(big, ' ', (4u << 20) + 1);
    put(root, "stat", big);
    free(big);
    assert_int_equal(monitor_proc_read(root, &r, &err), SW_EINVAL);
    assert_false(r.ok & MONITOR_SRC_STAT);
    assert_true(r.ok & MONITOR_SRC_SELF_STAT);

    /* nothing there at all */
    struct sw_err e2 = {0};
    assert_int_equal(monitor_proc_read("/nonexistent-proc", &r, &e2), SW_ENOTFOUND);
    assert_int_equal(r.ok, 0);
    monitor_proc_format(&r, 0.5, &b);
    check_exposition(b.data);
    assert_non_null(strstr(b.data, "slipway_proc_readable{source=\"self_stat\"} 0\n"));
    assert_null(strstr(b.data, "process_"));
    buf_free(&b);
    rm_root(root);
}

static void test_format_hostile_reading(void **state)
{
    /* a reading made by hand, as a caller or the fuzzer might: every value
     * at its maximum, nonsense from sysconf, device names that would break
     * the label or are not terminated */
    static struct monitor_proc_reading r;
    memset(&r, 0xff, sizeof(r));
    r.ok = MONITOR_SRC_ALL;
    r.clk_tck = 0;
    r.page_size = -1;
    r.disks.n = (size_t)-1;
    memcpy(r.disks.disk[0].name, "a\"} 1\nx", 8);
    memcpy(r.disks.disk[1].name, "sda", 4);
    struct buf b = BUF_INIT;
    monitor_proc_format(&r, 2.0, &b);
    check_exposition(b.data);
    assert_non_null(strstr(b.data, "\nprocess_cpu_seconds_total 368934881474191032.300\n"));
    assert_non_null(strstr(b.data, "\nprocess_max_fds +Inf\n"));
    assert_non_null(strstr(b.data, "\nprocess_resident_memory_bytes 18446744073709551615\n"));
    assert_non_null(strstr(b.data, "\nprocess_start_time_seconds 18446744073709551615.150\n"));
    assert_non_null(strstr(b.data, "{device=\"?\"}"));
    assert_non_null(strstr(b.data, "{device=\"sda\"}"));
    assert_null(strstr(b.data, "busy_ratio")); /* 2.0 is no ratio */
    buf_free(&b);
}

/* The real /proc of this test: the figures exist and make sense. */
static void test_real_proc(void **state)
{
    static struct monitor_proc_reading r;
    struct sw_err err = {0};
    int rc = monitor_proc_read(NULL, &r, &err);
    if (rc)
        print_message("# %s (may be a sandbox)\n", err.msg);
    unsigned need = MONITOR_SRC_SELF_STAT | MONITOR_SRC_SELF_FD | MONITOR_SRC_STAT |
                    MONITOR_SRC_MEMINFO | MONITOR_SRC_DISKSTATS;
    assert_int_equal(r.ok & need, need);
    assert_true(r.self.rss_pages > 0);
    assert_true(r.open_fds >= 3);
    assert_true(r.max_fds >= r.open_fds);
    assert_true(r.mem.total_bytes > 0);
    assert_true(r.cpu.btime > 1000000000);
    /* one more descriptor shows */
    uint64_t before = r.open_fds;
    int fd = dup(0);
    assert_true(fd >= 0);
    (void)monitor_proc_read(NULL, &r, &err);
    assert_int_equal(r.open_fds, before + 1);
    close(fd);
}

struct scrape {
    struct monitor_proc *m;
    int bad;
};

static void *scraper(void *arg)
{
    struct scrape *s = arg;
    for (int i = 0; i < 30; i++) {
        struct buf b = BUF_INIT;
        monitor_proc_render(s->m, &b);
        if (!strstr(b.data, "\nprocess_open_fds 3\n") ||
            !strstr(b.data, "\nslipway_host_cpu_busy_ratio "))
            s->bad++;
        buf_free(&b);
    }
    return NULL;
}

/* Scrapes from several workers at once take turns: each sees whole text. */
static void test_render_concurrent(void **state)
{
    char *root = fake_root();
    struct monitor_proc *m = monitor_proc_new(root);
    struct scrape s[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (struct scrape){m, 0};
        assert_int_equal(pthread_create(&t[i], NULL, scraper, &s[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(s[i].bad, 0);
    }
    /* the same readings again and again: no time passed, since boot */
    struct buf b = BUF_INIT;
    monitor_proc_render(m, &b);
    check_exposition(b.data);
    assert_non_null(strstr(b.data, "\nslipway_host_cpu_busy_ratio 0.855888\n"));
    buf_free(&b);
    monitor_proc_free(m);
    monitor_proc_free(NULL);
    rm_root(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_stat_real),
        cmocka_unit_test(test_self_stat_malformed),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_self_io),
        cmocka_unit_test(test_stat),
        cmocka_unit_test(test_busy_ratio),
        cmocka_unit_test(test_cpu_window),
        cmocka_unit_test(test_meminfo),
        cmocka_unit_test(test_diskstats_real),
        cmocka_unit_test(test_disk_skipped),
        cmocka_unit_test(test_diskstats_malformed),
        cmocka_unit_test(test_diskstats_bound),
        cmocka_unit_test(test_read_root),
        cmocka_unit_test(test_format_hostile_reading),
        cmocka_unit_test(test_real_proc),
        cmocka_unit_test(test_render_concurrent),
    };
    return cmocka_run_group_tests_name("monitor_proc", tests, NULL, NULL);
}
