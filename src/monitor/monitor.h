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
#include "edge/edge.h"

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

/* The alert rules of .slipway/alerts.yml and their states (see docs/monitor.md,
 * "Alert rules"). rules.c loads and checks the file (every error as
 * FILE:LINE:COL); alert.c runs each rule per environment through Prometheus's
 * states, inactive -> pending -> firing -> resolved (then inactive), on samples
 * and times the caller passes in: no clock, no thread, no I/O but reading the
 * file. Not thread-safe: one monitor thread (or a command) owns a rule set and
 * its states. */

/* What a rule watches. The measured signals index monitor_sample.value;
 * MONITOR_SIGNAL_DEPLOYMENT is an event, not a measure: its rules are never
 * evaluated, they say who hears of a deploy, switch or rollback
 * (monitor_rules_deployed). */
enum monitor_signal {
    MONITOR_SIGNAL_ERROR_RATIO,  /* errors / requests in the window, 0..1 */
    MONITOR_SIGNAL_LATENCY_P50,  /* seconds */
    MONITOR_SIGNAL_LATENCY_P95,  /* seconds */
    MONITOR_SIGNAL_LATENCY_P99,  /* seconds */
    MONITOR_SIGNAL_REQUEST_RATE, /* requests per second */
    MONITOR_SIGNAL_CPU,          /* host CPU busy, 0..1 of all cores */
    MONITOR_SIGNAL_MEMORY,       /* host memory in use (1 - available / total), 0..1 */
    MONITOR_SIGNAL_DISK_IO,      /* host disk bytes read + written per second */
    MONITOR_SIGNAL_DEPLOYMENT,
};
/* The measured signals: the length of monitor_sample.value. */
#define MONITOR_NSIGNALS MONITOR_SIGNAL_DEPLOYMENT

enum monitor_op { MONITOR_OP_GT, MONITOR_OP_GE, MONITOR_OP_LT, MONITOR_OP_LE };
enum monitor_severity { MONITOR_CRITICAL, MONITOR_WARNING, MONITOR_INFO };

#define MONITOR_RULES_MAX 100                         /* rules in one file */
#define MONITOR_RULE_ENVS_MAX 64                      /* patterns in one rule's environments */
#define MONITOR_SUMMARY_MAX 1024                      /* bytes of a summary template */
#define MONITOR_DURATION_MAX_MS (30LL * 86400 * 1000) /* for, keep_firing_for */
/* How long Alertmanager shows a deployment alert firing before it resolves
 * it by itself (its endsAt), unless the rule's keep_firing_for says otherwise. */
#define MONITOR_EVENT_HOLD_MS (5LL * 60 * 1000)

/* One rule, as the file (or the defaults) said, every default applied. */
struct monitor_rule {
    char *name;          /* unique in the set: [a-z0-9-], 1 to 63 */
    char **environments; /* fnmatch(3) patterns of environment names, at least one */
    size_t nenvironments;
    enum monitor_signal signal;
    enum monitor_op op;         /* not for MONITOR_SIGNAL_DEPLOYMENT */
    double threshold;           /* in the signal's unit; not for deployment */
    int64_t for_ms;             /* pending this long before firing (0: fires at once) */
    int64_t keep_firing_for_ms; /* firing this long after the condition stops holding */
    int64_t min_requests;       /* fewer requests in the window: no verdict */
    enum monitor_severity severity;
    char *summary;    /* template; {{ $value }}, {{ $env }} and {{ $release }} only */
    size_t line, col; /* the rule's position in the file (in the defaults' text for those) */
};

struct monitor_rules {
    char *file; /* the file read, or NULL for the defaults */
    struct monitor_rule *v;
    size_t n;
};

/* The rules that apply without a file, exactly as docs/monitor.md shows them. */
extern const char monitor_rules_default_yaml[];

/* Parses an alerts file (len bytes, named name in messages) into *out (free
 * with monitor_rules_free; ->file is name). SW_EINVAL with "NAME:LINE:COL:
 * what" on the first error: YAML syntax, an unknown or missing key, a bad
 * value, a duplicate name, a template other than the three. */
int monitor_rules_parse(const char *data, size_t len, const char *name, struct monitor_rules **out,
                        struct sw_err *err);
/* Reads and parses path; a missing file gives the default rules (->file NULL).
 * Other errors as monitor_rules_parse, or what reading failed with (SW_EIO,
 * SW_EACCES, ...) naming path. */
int monitor_rules_load(const char *path, struct monitor_rules **out, struct sw_err *err);
/* The default rules (->file NULL). Never fails. */
struct monitor_rules *monitor_rules_default(void);
void monitor_rules_free(struct monitor_rules *r);

/* 1 when one of r's environment patterns matches env. */
int monitor_rule_applies(const struct monitor_rule *r, const char *env);
/* "error_ratio", ">", "critical": the file's words. */
const char *monitor_signal_name(enum monitor_signal s);
const char *monitor_op_name(enum monitor_op op);
const char *monitor_severity_name(enum monitor_severity s);

/* Appends the summary template tmpl (as a rule holds it: already checked)
 * with value, env and release in place of {{ $value }}, {{ $env }} and
 * {{ $release }} to out. The values come from the store and the network: each
 * is cut at 256 bytes and escaped (buf_add_escaped), so the result is one
 * printable line whatever they hold. A NULL release reads "none". */
void monitor_summary_render(const char *tmpl, const char *value, const char *env,
                            const char *release, struct buf *out);

/* Alert states (alert.c). */

/* What one evaluation sees of an environment: each measured signal (NaN: not
 * measured, e.g. a percentile of no requests), the requests in the window
 * the ratios and percentiles cover, and the live release. */
struct monitor_sample {
    double value[MONITOR_NSIGNALS];
    uint64_t requests;
    const char *release; /* borrowed for the call; NULL: none */
};

enum monitor_state { MONITOR_INACTIVE, MONITOR_PENDING, MONITOR_FIRING };

/* What the last evaluation could say. A rule below its min_requests, or whose
 * signal was not measured, has no verdict: it is not "fine". */
enum monitor_verdict {
    MONITOR_VERDICT_NONE,        /* never evaluated */
    MONITOR_VERDICT_OK,          /* the condition does not hold */
    MONITOR_VERDICT_BREACH,      /* the condition holds */
    MONITOR_VERDICT_LOW_TRAFFIC, /* fewer requests than min_requests: "not enough traffic" */
    MONITOR_VERDICT_NO_DATA,     /* the signal was not measured */
};

/* The state of one rule for one environment. Times in ms; 0 when not set. */
struct monitor_alert {
    const struct monitor_rule *rule; /* in the rule set given to monitor_alerts_new */
    char *env;
    enum monitor_state state;
    enum monitor_verdict verdict;
    double value;            /* at the last breach (what the summary shows); NaN before one */
    double last;             /* at the last evaluation; NaN when not measured */
    uint64_t requests;       /* in the last evaluation's window */
    char *release;           /* live at the last breach, or NULL */
    char *summary;           /* rendered at the last breach, or NULL */
    int64_t active_ms;       /* pending (or firing) since: Prometheus's activeAt */
    int64_t fired_ms;        /* firing since: the alert's startsAt */
    int64_t resolved_ms;     /* the last resolution: the resolved alert's endsAt */
    int64_t keep_firing_ms;  /* the condition stopped holding while firing, at */
    int64_t last_eval_ms;    /* the last evaluation */
    int64_t last_verdict_ms; /* the last evaluation that had a verdict (OK or BREACH) */
    char fingerprint[17];    /* of the labels, as Alertmanager computes it: 16 hex digits */
};

/* A change an evaluation made, for the caller to record and notify (only
 * MONITOR_TRANSITION_FIRING and _RESOLVED go to Alertmanager; the others are
 * for history and `slipway alerts`). Every string is owned by the list. */
enum monitor_transition_kind {
    MONITOR_TRANSITION_PENDING,    /* inactive -> pending */
    MONITOR_TRANSITION_FIRING,     /* pending (or inactive, with for: 0) -> firing */
    MONITOR_TRANSITION_RESOLVED,   /* firing -> inactive: endsAt set */
    MONITOR_TRANSITION_CLEARED,    /* pending -> inactive before firing: nothing to notify */
    MONITOR_TRANSITION_NO_VERDICT, /* the verdict became LOW_TRAFFIC or NO_DATA */
    MONITOR_TRANSITION_EVENT,      /* a deployment rule's alert: firing until endsAt */
};

#define MONITOR_LABELS_MAX 5
struct monitor_label {
    char *name, *value;
};

struct monitor_transition {
    enum monitor_transition_kind kind;
    const struct monitor_rule *rule;
    enum monitor_verdict verdict;
    /* Labels, sorted by name: alertname, env, severity; deployment alerts add
     * action and release (so each deploy is an alert of its own). */
    struct monitor_label labels[MONITOR_LABELS_MAX];
    size_t nlabels;
    char *summary;     /* the summary annotation; NULL before any breach was seen */
    double value;      /* the value at the last breach (NaN before one, and for events) */
    double last;       /* the value of this evaluation (NaN: not measured) */
    uint64_t requests; /* requests in this evaluation's window */
    char *release;     /* the release the alert is about, or NULL */
    int64_t at_ms;     /* when this happened (the evaluation's time) */
    int64_t starts_ms; /* the alert's startsAt (firing since; the event's time) */
    int64_t ends_ms;   /* its endsAt: resolution or the event's end; 0 while firing */
    char fingerprint[17];
};

struct monitor_transitions {
    struct monitor_transition *v;
    size_t n, cap;
};
#define MONITOR_TRANSITIONS_INIT                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }
/* Frees what the list holds and leaves it empty (reusable). */
void monitor_transitions_reset(struct monitor_transitions *t);

/* The states of every rule of a set, per environment, created as
 * environments are evaluated. Keeps rules (borrowed: it must outlive the
 * states). Free with monitor_alerts_free. */
struct monitor_alerts;
struct monitor_alerts *monitor_alerts_new(const struct monitor_rules *rules);
void monitor_alerts_free(struct monitor_alerts *a);

/* Evaluates every measured rule that applies to env against sample s at
 * now_ms (ms since the epoch; a time before an environment's last counts as
 * its last), appending what changed to out, at most one transition per rule.
 * Prometheus's semantics: the condition holding makes an inactive alert
 * pending (activeAt = now) and a pending one firing once now - activeAt >=
 * for (at once with for 0); not holding clears a pending alert, and resolves
 * a firing one unless keep_firing_for has not run out since it stopped
 * holding. Without a verdict (fewer requests than min_requests, or the
 * signal not measured) a pending alert is cleared (it was not seen to hold)
 * but a firing one stays firing as it was: too little traffic never resolves
 * an alert. A NO_VERDICT transition is reported when the verdict becomes
 * LOW_TRAFFIC or NO_DATA. SW_EINVAL for an env that is not a printable name
 * of 1 to 63 bytes or a now_ms <= 0, SW_ENOSPC past MONITOR_ENVS_MAX
 * environments; out is unchanged then. */
#define MONITOR_ENVS_MAX 1024
int monitor_alerts_eval(struct monitor_alerts *a, const char *env, const struct monitor_sample *s,
                        int64_t now_ms, struct monitor_transitions *out, struct sw_err *err);
/* The states, in the order they were created: i from 0 to count-1.
 * Borrowed: valid until monitor_alerts_free. */
size_t monitor_alerts_count(const struct monitor_alerts *a);
const struct monitor_alert *monitor_alerts_get(const struct monitor_alerts *a, size_t i);
/* The state of rule name for env, or NULL when never evaluated. */
const struct monitor_alert *monitor_alerts_find(const struct monitor_alerts *a, const char *name,
                                                const char *env);

/* After a deploy, switch or rollback (action: "deploy", "switch",
 * "rollback") of release to env at now_ms: appends a MONITOR_TRANSITION_EVENT
 * for every deployment rule that applies to env, firing from now_ms to
 * now_ms + the rule's keep_firing_for (MONITOR_EVENT_HOLD_MS when 0).
 * {{ $value }} in its summary is the action. */
void monitor_rules_deployed(const struct monitor_rules *r, const char *env, const char *action,
                            const char *release, int64_t now_ms, struct monitor_transitions *out);

/* ---- history (history.c) ---------------------------------------------------------- */

/* What the edge served, step by step, for a day: per environment and slot
 * (EDGE_SLOT_*), the requests and errors of each step and their p50/p95/p99,
 * beside the process and host figures of the same step. A ring of fixed size
 * made at creation: MONITOR_HISTORY_STEPS steps (24 h of 10 s), 41 bytes of
 * host figures per step (354,240 bytes) and 21 bytes per step of each series,
 * an environment's slot (181,440 bytes per series, allocated when a series is
 * first seen; at most MONITOR_HISTORY_SERIES_MAX). Not thread-safe: its owner
 * (the sampler) serialises. */
#define MONITOR_HISTORY_STEP_MS 10000
#define MONITOR_HISTORY_STEPS 8640     /* 24 h of 10 s steps */
#define MONITOR_HISTORY_SERIES_MAX 192 /* 64 environments x 3 slots */
#define MONITOR_HISTORY_STEP_MAX_MS 86400000
/* Where `slipway serve` keeps it, under the project (beside the blob cache). */
#define MONITOR_HISTORY_FILE ".slipway/cache/monitor/history.bin"
/* Where `slipway serve` writes its status every interval (status.c). */
#define MONITOR_STATUS_FILE ".slipway/cache/monitor/status.json"

/* Which process and host figures a step has (/proc may hide some). */
enum {
    MONITOR_HOST_CPU = 1 << 0,  /* host_cpu_ppm */
    MONITOR_HOST_MEM = 1 << 1,  /* host_mem_ppm */
    MONITOR_HOST_DISK = 1 << 2, /* disk_io_bps */
    MONITOR_PROC_CPU = 1 << 3,  /* proc_cpu_milli */
    MONITOR_PROC_RSS = 1 << 4,  /* proc_rss_bytes */
    MONITOR_HOST_ALL = (1 << 5) - 1
};
/* Integers, so a file read back is checked without floating-point surprises;
 * a figure whose bit is clear in ok is 0. */
struct monitor_host_figures {
    unsigned ok;             /* MONITOR_HOST_* */
    uint32_t host_cpu_ppm;   /* host CPU busy over the step, millionths of all cores */
    uint32_t host_mem_ppm;   /* host memory in use at the step's end, millionths */
    uint64_t disk_io_bps;    /* host disk bytes read + written per second over the step */
    uint32_t proc_cpu_milli; /* serve's CPU time per second, thousandths of a core */
    uint64_t proc_rss_bytes; /* serve's resident memory at the step's end */
};
#define MONITOR_PPM_MAX 1000000u
#define MONITOR_PROC_CPU_MAX 4096000u /* 4096 cores */

/* One slot's requests in one step (counts saturate at UINT32_MAX). */
struct monitor_slot_figures {
    uint32_t requests, errors; /* errors <= requests */
    uint32_t p50_us, p95_us,
        p99_us; /* of those requests, p50 <= p95 <= p99 <= HIST_LIMIT; 0 without requests */
};

/* One step of one environment and slot, as a reader sees it. */
struct monitor_point {
    int64_t at_ms;  /* the step's end, ms since the epoch */
    int64_t dur_ms; /* its length */
    int slot;       /* EDGE_SLOT_* */
    int live;       /* the slot was the environment's live one at the step's end */
    struct monitor_slot_figures s;
    struct monitor_host_figures host;
};

/* An empty ring of steps steps (1..MONITOR_HISTORY_STEPS) of step_ms
 * (1..MONITOR_HISTORY_STEP_MAX_MS; what the file records). NULL for other
 * values. Free with monitor_history_free (NULL is a no-op). */
struct monitor_history;
struct monitor_history *monitor_history_new(size_t steps, int64_t step_ms);
void monitor_history_free(struct monitor_history *h);
int64_t monitor_history_step_ms(const struct monitor_history *h);
/* Steps held, and the time of the newest (0 when none). */
size_t monitor_history_count(const struct monitor_history *h);
int64_t monitor_history_newest_ms(const struct monitor_history *h);

/* What one step records for one environment and slot. */
struct monitor_history_entry {
    const char *env; /* an environment name (env_name_check) */
    int slot;        /* EDGE_SLOT_* */
    int live;
    struct monitor_slot_figures s;
};
/* Appends a step ending at at_ms (made 1 ms later than the newest step when it
 * is not later: the clock stepped back) and lasting dur_ms (clamped to
 * 0..MONITOR_HISTORY_STEP_MAX_MS), with host's figures (values out of range
 * are clamped) and the n entries: a series (env, slot) not among them is
 * absent from this step. The oldest step goes when the ring is full. A series
 * new to h takes the place of one absent from every step kept, else a new
 * place up to MONITOR_HISTORY_SERIES_MAX; an entry that finds none, or with a
 * bad name or slot, is left out and counted in the return value. */
size_t monitor_history_append(struct monitor_history *h, int64_t at_ms, int64_t dur_ms,
                              const struct monitor_host_figures *host,
                              const struct monitor_history_entry *e, size_t n);

/* Which slot of an environment a reader follows from step to step: the one
 * live at each step (a blue-green switch moves it), or the other one. */
enum monitor_pick { MONITOR_PICK_LIVE, MONITOR_PICK_IDLE };
/* The steps of env at or after since_ms, oldest first, in the slot pick
 * chooses (steps without one are left out), into *out (caller frees; NULL when
 * none). Returns how many. */
size_t monitor_history_points(const struct monitor_history *h, const char *env,
                              enum monitor_pick pick, int64_t since_ms, struct monitor_point **out);
/* 1 when env has at least one step in h (whichever slot). */
int monitor_history_has(const struct monitor_history *h, const char *env);
/* The i-th series that has a step in h: its environment (borrowed: valid
 * until h changes) and slot. 0, or -1 when there are fewer. */
int monitor_history_series(const struct monitor_history *h, size_t i, const char **env, int *slot);

/* The file: a versioned binary format (docs/monitor.md, "History"),
 * little-endian, ending with the SHA-256 of what precedes it (hex). */
#define MONITOR_HISTORY_VERSION 1
/* The largest valid file: a full ring and every series (35 MB). */
#define MONITOR_HISTORY_FILE_MAX                                                                   \
    (32 + (size_t)MONITOR_HISTORY_STEPS * 41 +                                                     \
     (size_t)MONITOR_HISTORY_SERIES_MAX * (65 + (size_t)MONITOR_HISTORY_STEPS * 21) + 64)
/* Appends h's file to out: the steps kept and the series present in them. */
void monitor_history_encode(const struct monitor_history *h, struct buf *out);
/* Reads a file (len bytes, named name in messages) as hostile input: every
 * length and count is bounded and checked before use, every value against its
 * range (the ones above), names, duplicates, order of times, the checksum and
 * the exact length. step_ms 0 accepts the file's step; another is required.
 * The history made holds at most steps steps (the newest), as
 * monitor_history_new; free with monitor_history_free. SW_EINVAL with "NAME:
 * what" on any refusal (nothing is made). */
int monitor_history_decode(const char *data, size_t len, const char *name, int64_t step_ms,
                           size_t steps, struct monitor_history **out, struct sw_err *err);
/* Writes h's file to path atomically (fs_write_atomic). */
int monitor_history_save(const struct monitor_history *h, const char *path, struct sw_err *err);
/* Reads path (a regular file up to MONITOR_HISTORY_FILE_MAX bytes) and decodes
 * it. SW_ENOTFOUND when there is none; SW_EINVAL (as decode, naming path) for
 * a file that is not a valid history; SW_EIO and friends for reading. */
int monitor_history_load(const char *path, int64_t step_ms, size_t steps,
                         struct monitor_history **out, struct sw_err *err);

/* ---- the status document (status.c) ---------------------------------------------- */

/* What `slipway serve`'s monitor saw at its last interval, for the commands
 * that run in another process (`slipway alerts`, `slipway top`): per
 * environment and slot the window's requests, rate, error ratio and
 * percentiles and the requests and errors of each of the last
 * MONITOR_STATUS_RECENT intervals; per environment the state of every
 * measured rule that applies to it. The sampler writes it (JSON,
 * docs/monitor.md "Status") at the end of every interval; a reader treats it
 * as hostile: monitor_status_parse bounds every size and count and checks
 * every name and number. Pure functions: any thread. */
#define MONITOR_STATUS_VERSION 1
#define MONITOR_STATUS_RECENT 60        /* intervals of per-interval counts, for a sparkline */
#define MONITOR_STATUS_ENVS_MAX 64      /* environments (as many as the edge serves) */
#define MONITOR_STATUS_SUMMARY_MAX 1024 /* bytes of a summary (cut at a character) */
#define MONITOR_STATUS_HOST_MAX 255     /* bytes of the host name */
#define MONITOR_STATUS_FILE_MAX (16u << 20)
/* How old a status may be before its writer counts as gone: 5 intervals, and
 * at least this (a reader and a loaded writer are not in step). */
#define MONITOR_STATUS_STALE_MIN_MS 3000

/* One slot over the window (NaN: not measured: no requests, no time). */
struct monitor_status_slot {
    int slot; /* EDGE_SLOT_* */
    int live;
    char release[RELEASE_ID_MAX + 1]; /* "" : none */
    uint64_t requests, errors;        /* in the window; errors <= requests */
    double req_per_s;                 /* >= 0 */
    double error_ratio;               /* 0..1 */
    double p50_s, p95_s, p99_s;       /* seconds, ordered, 0..HIST_LIMIT µs */
    /* Requests and errors of each of the last nrecent intervals, oldest first
     * (errors <= requests each). */
    size_t nrecent;
    uint64_t recent_requests[MONITOR_STATUS_RECENT], recent_errors[MONITOR_STATUS_RECENT];
};

/* One rule's state for one environment, as struct monitor_alert says it. */
struct monitor_status_alert {
    char rule[64]; /* the rule's name: [a-z0-9-], 1 to 63 */
    enum monitor_severity severity;
    enum monitor_signal signal; /* a measured one */
    enum monitor_op op;
    double threshold;
    int64_t for_ms, min_requests;
    enum monitor_state state;
    enum monitor_verdict verdict;
    double value, last;                                /* NaN: none (no breach yet; not measured) */
    uint64_t requests;                                 /* in the last evaluation's window */
    int64_t active_ms, fired_ms, resolved_ms, eval_ms; /* ms since the epoch; 0: never */
    char release[RELEASE_ID_MAX + 1];                  /* at the last breach; "": none */
    char *summary;                                     /* at the last breach, or NULL */
};

struct monitor_status_env {
    char name[64];
    struct monitor_status_slot slots[EDGE_SLOTS]; /* the slots read, each slot once */
    size_t nslots;
    struct monitor_status_alert *alerts; /* one per rule name */
    size_t nalerts;
};

struct monitor_status {
    int64_t written_ms;                     /* ms since the epoch */
    int64_t interval_ms;                    /* the sampler's, 1 .. 8640000 */
    int64_t window_ms;                      /* the alert window */
    int64_t pid;                            /* the writer's (serve's) */
    char host[MONITOR_STATUS_HOST_MAX + 1]; /* the writer's host (sys_host) */
    double proc_cpu, proc_rss;       /* serve's CPU (cores) and resident bytes; NaN: unknown */
    double host_cpu, host_mem;       /* the host's CPU busy and memory in use, 0..1; NaN */
    struct monitor_status_env *envs; /* names unique */
    size_t nenvs;
};
/* Frees what s holds (not s) and zeroes it. */
void monitor_status_clear(struct monitor_status *s);
/* Appends s's document to out (one line and a newline). Values out of the
 * ranges above are written clamped, a summary cut, so that what is written
 * is always read back. */
void monitor_status_encode(const struct monitor_status *s, struct buf *out);
/* Reads a document (len bytes, named name in messages) into *out (cleared
 * first; monitor_status_clear it after 0 only). SW_EINVAL with "NAME: what"
 * for anything but a document monitor_status_encode could have written: a
 * larger size, another version, an unknown enum word, a bad name, a number
 * out of range, a duplicate environment, slot or rule, too many of anything. */
int monitor_status_parse(const char *data, size_t len, const char *name, struct monitor_status *out,
                         struct sw_err *err);
/* Writes s to path: a temporary file beside it (NAME.tmp-PID) renamed over it,
 * so a reader sees the old or the new whole; not fsynced (it is rewritten
 * every interval and worth nothing after a crash). */
int monitor_status_save(const struct monitor_status *s, const char *path, struct sw_err *err);
/* Reads path (a regular file up to MONITOR_STATUS_FILE_MAX) and parses it.
 * SW_ENOTFOUND when there is none; otherwise as parse, naming path. */
int monitor_status_load(const char *path, struct monitor_status *out, struct sw_err *err);
/* 1 when the writer of s is still running at now_ms: s is younger than 5 of
 * its intervals (at least MONITOR_STATUS_STALE_MIN_MS) and, when written on
 * this host, its pid is alive. */
int monitor_status_live(const struct monitor_status *s, int64_t now_ms);
/* "ok", "breach", "not_enough_traffic", "no_data", "none"; "inactive",
 * "pending", "firing": the document's words. */
const char *monitor_verdict_name(enum monitor_verdict v);
const char *monitor_state_name(enum monitor_state s);

/* ---- the sampler (sampler.c) ------------------------------------------------------ */

/* The monitor thread of `slipway serve`. Every interval (1 s) it reads what
 * each environment's slots have served (edge_slot_stats) and the process and
 * host figures (monitor_proc_read), and keeps the last
 * MONITOR_WINDOW_TICKS + 1 readings of each (per environment and slot: 61
 * snapshots of 11.3 KiB, 0.7 MiB; allocated while the environment is served),
 * so a window's signals are differences of two readings: requests and their
 * rate, errors and their ratio, p50/p95/p99 of the window's requests alone
 * (hist_sub), host CPU busy, memory in use, disk bytes per second. It judges
 * each environment's live slot by the alert rules over the last
 * MONITOR_WINDOW_TICKS intervals (60 s) at every interval, records each
 * transition (a bounded list, a line to the log, the on_transition hook), and
 * every MONITOR_HISTORY_TICKS intervals appends a step to the history, saved
 * every MONITOR_SAVE_STEPS steps and when it stops. It never touches the
 * request path: the edge's counters are read while workers count. */
#define MONITOR_INTERVAL_MS 1000
#define MONITOR_WINDOW_TICKS 60  /* the alert window, in intervals */
#define MONITOR_HISTORY_TICKS 10 /* a history step, in intervals */
#define MONITOR_SAVE_STEPS 6     /* the file is rewritten every 6 steps (1 min) */
#define MONITOR_TRANSITIONS_KEPT 256

struct monitor_sampler_opts {
    struct edge *edge; /* read with edge_slot_stats; borrowed, must outlive the sampler */
    /* Tests replace the edge: called as edge_slot_stats is (NULL: edge_slot_stats(edge, ...)). */
    int (*slot_stats)(void *arg, const char *env, int slot, struct edge_slot_stats *out,
                      struct sw_err *err);
    void *stats_arg;
    const char *envs_dir;     /* the environment files: which environments and slots to read */
    const char *alerts_file;  /* .slipway/alerts.yml; missing: the default rules */
    const char *history_file; /* MONITOR_HISTORY_FILE under the project; NULL: not kept */
    const char *status_file;  /* MONITOR_STATUS_FILE, rewritten every interval; NULL: none */
    const char *proc_root;    /* NULL: /proc */
    int64_t interval_ms;      /* MONITOR_INTERVAL_MS; a history step is 10 of them */
    int manual;               /* tests: no thread; monitor_sampler_tick drives it */
    /* One line without a newline per call, from the monitor thread (or the
     * caller of start, stop and tick); the caller escapes it. NULL: nowhere. */
    void (*log)(void *arg, const char *line);
    void *log_arg;
    /* Called on the monitor thread for every transition, after it is recorded
     * and logged, with the environment it is about: for notifications and the
     * automatic rollback. t and its strings are valid during the call only;
     * t->rule too (rules may be reloaded after it). It must not block for long
     * (the next interval waits for it); it may call the sampler's functions
     * but monitor_sampler_stop. NULL: none. */
    void (*on_transition)(void *arg, const char *env, const struct monitor_transition *t);
    void *hook_arg;
};
/* Fills o with the defaults (interval_ms MONITOR_INTERVAL_MS, the rest NULL/0). */
void monitor_sampler_opts_init(struct monitor_sampler_opts *o);

struct monitor_sampler;
/* Loads the environment files and the alert rules (an error in either is
 * returned: SW_EINVAL with FILE:LINE:COL), and the history file: a missing
 * one starts empty; one that is not a valid history (corrupt, truncated, of
 * another version or step, or from the future) is reported on the log, kept
 * as FILE.corrupt and replaced at once by an empty one. Takes the first
 * reading and starts the thread (unless manual). o's strings and edge must
 * outlive the sampler. The caller should block its signals first: the thread
 * inherits the mask. Stop and free with monitor_sampler_stop. */
int monitor_sampler_start(const struct monitor_sampler_opts *o, struct monitor_sampler **out,
                          struct sw_err *err);
/* Asks for the environment files and the alert rules to be read again at the
 * next interval (SIGHUP, after edge_reload): new environments are
 * sampled, removed ones stop (their history stays); rules whose file changed
 * replace the old ones, and their states start over. A file in error keeps
 * what runs, and says so on the log. Thread-safe (a flag). */
void monitor_sampler_reload(struct monitor_sampler *s);
/* Stops and joins the thread, saves the history and frees everything. NULL is
 * a no-op. */
void monitor_sampler_stop(struct monitor_sampler *s);
/* manual only: one interval at mono_ms (monotonic) and wall_ms (since the epoch). */
void monitor_sampler_tick(struct monitor_sampler *s, int64_t mono_ms, int64_t wall_ms);

/* Copies the last transitions (at most MONITOR_TRANSITIONS_KEPT, oldest first)
 * into out (reset first; ->rule is NULL in the copies). Thread-safe. */
void monitor_sampler_transitions(struct monitor_sampler *s, struct monitor_transitions *out);
/* The signals of env's live slot over the window as the last interval judged
 * them, and the live release (copied into release, "" for none). SW_ENOTFOUND
 * when env is not sampled or has no live slot. Thread-safe. */
int monitor_sampler_signals(struct monitor_sampler *s, const char *env, struct monitor_sample *out,
                            char release[RELEASE_ID_MAX + 1], struct sw_err *err);
/* What the watch asks at the end of a window: could env's critical rules
 * judge it? Of the critical measured rules that apply to env (critical of
 * them), the one whose last verdict (OK or BREACH) is oldest: its name, when
 * (verdict_ms, ms since the epoch; 0 never), its requests at the last
 * evaluation and its min_requests. verdict_ms is 0 too when there is no such
 * rule. */
struct monitor_judged {
    size_t critical;
    int64_t verdict_ms;
    char rule[64];
    uint64_t requests;
    int64_t min_requests;
};
/* As of the last judgement of env's live slot. SW_ENOTFOUND when env is not
 * sampled or had no live slot then. Thread-safe. */
int monitor_sampler_judged(struct monitor_sampler *s, const char *env, struct monitor_judged *out);
/* The history's points of env (as monitor_history_points). Thread-safe. */
size_t monitor_sampler_points(struct monitor_sampler *s, const char *env, enum monitor_pick pick,
                              int64_t since_ms, struct monitor_point **out);

/* Alertmanager's fingerprint of a label set (sorted by name): FNV-1a 64 over
 * each name and value followed by the byte 0xff, as 16 hex digits. */
void monitor_labels_fingerprint(const struct monitor_label *l, size_t n, char out[17]);

/* ---- notifications (config.c, notify.c, hook.c) ---------------------------------- */

/* Where alerts go and what may come back (docs/monitor.md, "Notifications").
 *
 * Outbound: a notifier owns one thread and a bounded queue. The sampler's
 * on_transition hook (and serve, after each deploy, switch and rollback)
 * hands it transitions with monitor_notify_push, which copies them and never
 * waits for the network: a full queue drops its oldest entry and counts it.
 * The thread sends FIRING, RESOLVED and EVENT transitions to every
 * Alertmanager (POST /api/v2/alerts) and webhook (Alertmanager's webhook
 * format, version 4), re-sends firing alerts to Alertmanager every resend
 * interval, and retries each message with exponential backoff and jitter a
 * bounded number of times before logging it as lost.
 *
 * Inbound: monitor_hook_handle answers POST /_slipway/hooks/alertmanager: a
 * bearer token, Alertmanager's webhook JSON, and one call of on_critical per
 * new firing critical alert that names an environment. */

/* .slipway/monitor.yml. Lists and strings are owned by the config. */
#define MONITOR_TARGETS_MAX 16 /* Alertmanagers, and webhooks, each */
#define MONITOR_URL_MAX 2048
struct monitor_config {
    char *file;          /* the file read; NULL: there is none (nothing sent, no hook) */
    char **alertmanager; /* base URLs (http or https), without a trailing '/' */
    size_t nalertmanager;
    char **webhooks; /* full URLs */
    size_t nwebhooks;
    int64_t resend_ms;        /* firing alerts re-sent to Alertmanager this often: 1m */
    int64_t timeout_ms;       /* one attempt, connecting included: 10s */
    int64_t retries;          /* attempts after the first: 5 */
    int64_t backoff_ms;       /* the wait before the first retry: 1s, doubling... */
    int64_t backoff_max_ms;   /* ...up to this: 30s */
    int64_t queue;            /* transitions waiting for the notifier: 1024 */
    char *external_url;       /* each alert's generatorURL, a webhook's externalURL; NULL */
    char *webhook_token_file; /* the hook's bearer token, absolute; NULL: the hook is off */
};
/* Parses a monitor file (len bytes, named name in messages) into *out (free
 * with monitor_config_free); a relative webhook_token_file is taken from
 * base_dir (the project). SW_EINVAL with "NAME:LINE:COL: what" on the first
 * error: YAML syntax, an unknown key, a bad URL, a value out of range. */
int monitor_config_parse(const char *data, size_t len, const char *name, const char *base_dir,
                         struct monitor_config **out, struct sw_err *err);
/* Reads and parses path; a missing file gives a config with every default
 * and no target (->file NULL). */
int monitor_config_load(const char *path, const char *base_dir, struct monitor_config **out,
                        struct sw_err *err);
void monitor_config_free(struct monitor_config *c);

/* The JSON bodies, as pure functions for tests. Each transition must be a
 * FIRING, RESOLVED or EVENT one (others are skipped).
 * Alertmanager's POST /api/v2/alerts body: an array of {labels, annotations
 * (summary; value and release when known), startsAt, endsAt, generatorURL
 * when gen_url is set}. A firing alert's endsAt is now_ms + 4 x resend_ms,
 * as Prometheus sends it: Alertmanager resolves it by itself if slipway stops
 * re-sending; an event's and a resolved alert's endsAt are their own. */
void monitor_am_alerts_json(const struct monitor_transition *const *v, size_t n, int64_t now_ms,
                            int64_t resend_ms, const char *gen_url, struct buf *out);
/* A webhook's body in Alertmanager's format (version "4"): status (firing
 * when any alert is), receiver "slipway", groupLabels {}, commonLabels and
 * commonAnnotations (what every alert shares), externalURL, alerts (with
 * status, fingerprint; a firing alert's endsAt is 0001-01-01T00:00:00Z, as
 * Alertmanager writes an unknown end). */
void monitor_webhook_json(const struct monitor_transition *const *v, size_t n,
                          const char *external_url, struct buf *out);
/* The wait before retry number retry (1, 2, ...): d = min(backoff_max,
 * backoff x 2^(retry-1)), then "equal jitter": d - d/2 + rnd mod (d/2 + 1),
 * from half of d to d. rnd: any random number. */
int64_t monitor_notify_backoff_ms(const struct monitor_config *c, int retry, uint64_t rnd);

/* The notifier. c is borrowed and must outlive it; log receives one line
 * (no newline) per notification lost, from the notifier's thread. */
struct monitor_notify;
struct monitor_notify *monitor_notify_new(const struct monitor_config *c,
                                          void (*log)(void *arg, const char *line), void *log_arg);
/* Starts the thread. Transitions pushed before wait in the queue. */
int monitor_notify_start(struct monitor_notify *n, struct sw_err *err);
/* Copies t into the queue (t is the caller's still) and wakes the thread.
 * Never waits on I/O: the lock it takes is held only for queue operations.
 * A full queue drops its oldest entry (counted in dropped). Thread-safe; a
 * NULL n is a no-op. This is what the sampler's on_transition calls for each
 * transition of an evaluation. */
void monitor_notify_push(struct monitor_notify *n, const struct monitor_transition *t);
/* After a deploy, switch or rollback (action) of release to env at at_ms:
 * pushes the event of every deployment rule of r that applies to env
 * (monitor_rules_deployed). Thread-safe as push, r being read only. */
void monitor_notify_deployed(struct monitor_notify *n, const struct monitor_rules *r,
                             const char *env, const char *action, const char *release,
                             int64_t at_ms);
struct monitor_notify_stats {
    uint64_t pushed;  /* transitions taken by push (before any drop) */
    uint64_t dropped; /* the oldest, when the queue was full */
    uint64_t queued;  /* waiting in the queue now */
    uint64_t sent;    /* messages delivered (a 2xx answer) */
    uint64_t retried; /* failed attempts followed by another */
    uint64_t lost;    /* messages given up on (and logged) */
    uint64_t resends; /* re-sends of firing alerts started */
    uint64_t firing;  /* alerts firing now, re-sent to Alertmanager */
};
void monitor_notify_stats(struct monitor_notify *n, struct monitor_notify_stats *out);
/* What became of one firing alert's first message to one target (a re-send
 * is not told): delivered (a 2xx answer) or lost, and why. Strings are
 * borrowed for the call. */
struct monitor_notify_delivery {
    int delivered;           /* 1: delivered; 0: lost */
    const char *target;      /* "webhook 1 http://host:port": kind and origin only */
    const char *env, *rule;  /* the alert's env and alertname labels */
    const char *fingerprint; /* 16 hex digits */
    int64_t starts_ms;       /* the alert's startsAt: when it fired */
    const char *why;         /* lost: what went wrong; NULL when delivered */
    int64_t at_ms;           /* when, ms since the epoch */
};
/* Sets the function told of each delivery, on the notifier's thread (and on
 * the thread of monitor_notify_free, for what it gives up): it must not
 * block for long. Call before monitor_notify_start. */
void monitor_notify_on_delivery(struct monitor_notify *n,
                                void (*fn)(void *arg, const struct monitor_notify_delivery *d),
                                void *arg);
/* Stops the thread (an attempt in progress is cut short) and frees n; what
 * was not delivered is logged as lost. NULL is a no-op. */
void monitor_notify_free(struct monitor_notify *n);

/* Alertmanager's webhook, parsed (hook.c). Strings are printable UTF-8 and
 * bounded; labels are sorted by name. Free with monitor_am_webhook_free. */
#define MONITOR_HOOK_BODY_MAX (1 << 20) /* bytes of one webhook */
#define MONITOR_AM_ALERTS_MAX 1000
#define MONITOR_AM_LABELS_MAX 64
struct monitor_am_alert {
    int firing; /* its status: 1 "firing", 0 "resolved" */
    struct monitor_label *labels;
    size_t nlabels;
    char fingerprint[17]; /* as sent, or computed from the labels when absent */
    int64_t starts_ms;    /* startsAt (RFC 3339) in ms since the epoch; 0 when absent */
    char *value;          /* the annotation "value", or NULL */
};
struct monitor_am_webhook {
    int firing; /* the group's status */
    struct monitor_am_alert *alerts;
    size_t nalerts;
};
/* Parses body (len bytes, untrusted) into *out. SW_EINVAL with what is wrong
 * ("alerts[2].labels: ...") for anything but a webhook of version "4" within
 * the bounds above. A startsAt is read to the millisecond (Alertmanager's
 * webhook writes nanoseconds, its API milliseconds: the same instant).
 * Pure: any thread. */
int monitor_am_webhook_parse(const char *body, size_t len, struct monitor_am_webhook **out,
                             struct sw_err *err);
void monitor_am_webhook_free(struct monitor_am_webhook *w);
/* The value of label name of a, or NULL. */
const char *monitor_am_label(const struct monitor_am_alert *a, const char *name);

/* Called once per new firing alert with the labels severity="critical" and
 * env=<an environment name>. Strings are borrowed for the call; value is the
 * alert's "value" annotation or NULL. Runs on the thread calling
 * monitor_hook_handle (an edge worker): it must not block. */
typedef void monitor_critical_fn(void *arg, const char *env, const char *alertname,
                                 const char *fingerprint, const char *value);
struct monitor_hook;
/* Reads the token from c->webhook_token_file (16 to 1024 bytes of visible
 * ASCII, trailing blanks and newlines dropped, as Alertmanager drops them from
 * its credentials_file). SW_EINVAL when c has none or it is not such a token;
 * what reading failed with otherwise. Free with monitor_hook_free. */
int monitor_hook_new(const struct monitor_config *c, monitor_critical_fn *on_critical, void *arg,
                     struct monitor_hook **out, struct sw_err *err);
void monitor_hook_free(struct monitor_hook *h);
/* Answers one request: authz is its Authorization field value (NULL: none),
 * body its body. Returns the HTTP status and puts a JSON body in out: 401
 * (nothing parsed, nothing remembered) unless authz is "Bearer <token>"
 * (compared in constant time); 400 for a body that is not a valid webhook;
 * 200 with {"critical": N, "duplicate": N, "ignored": N}. A firing alert is
 * new unless the same fingerprint and startsAt (to the ms) already triggered (a resolved
 * alert forgets its fingerprint, so the next incident triggers again); the
 * last MONITOR_HOOK_SEEN_MAX are remembered. Thread-safe. */
#define MONITOR_HOOK_SEEN_MAX 4096
int monitor_hook_handle(struct monitor_hook *h, const char *authz, size_t authz_len,
                        const char *body, size_t len, struct buf *out);

/* ---- the incident journal (journal.c) --------------------------------------------- */

/* What happened to each alert, for `slipway incidents`: one JSON line per
 * event (docs/monitor.md, "Incidents"), appended by `slipway serve` from the
 * monitor's threads (never an edge worker): an alert fired and resolved (the
 * sampler), a firing alert delivered to a target or lost (the notifier), a
 * critical alert rolled back or not and why, a watch window's verdict (the
 * watch). The reader treats the file as hostile: every line is parsed alone,
 * strictly and bounded; a bad line is skipped and counted. */
#define MONITOR_INCIDENTS_FILE ".slipway/cache/monitor/incidents.jsonl"
#define MONITOR_JOURNAL_VERSION 1
#define MONITOR_JOURNAL_MAX (4u << 20)       /* past this, the newest half is kept */
#define MONITOR_JOURNAL_READ_MAX (16u << 20) /* a larger file is not read */
#define MONITOR_JOURNAL_LINE_MAX 8192        /* bytes of one line, its newline included */
#define MONITOR_JOURNAL_TEXT_MAX 1024        /* bytes of a summary, reason, why or verdict */
#define MONITOR_JOURNAL_TARGET_MAX 300       /* bytes of a target ("webhook 1 http://...") */
#define MONITOR_JOURNAL_RULE_MAX 63          /* bytes of a rule (or an alertname) */

enum monitor_journal_kind {
    MONITOR_JOURNAL_FIRED,            /* "fired" */
    MONITOR_JOURNAL_RESOLVED,         /* "resolved" */
    MONITOR_JOURNAL_NOTIFIED,         /* "notified" */
    MONITOR_JOURNAL_LOST,             /* "lost" */
    MONITOR_JOURNAL_ROLLED_BACK,      /* "rolled_back" */
    MONITOR_JOURNAL_ROLLBACK_SKIPPED, /* "rollback_skipped" */
    MONITOR_JOURNAL_VERDICT,          /* "verdict" */
    MONITOR_JOURNAL_KINDS
};

/* One line. Which fields a kind has is fixed (docs/monitor.md); the others
 * are empty: NULL, "", -1, 0 or NaN. Strings are owned (free with
 * monitor_journal_event_clear); a parsed one is printable UTF-8 within its
 * bound. */
struct monitor_journal_event {
    enum monitor_journal_kind kind;
    int64_t at_ms;        /* "time": when it happened */
    char env[64];         /* env_name_check's form */
    char *rule;           /* all but verdict: the rule, or Alertmanager's alertname */
    int severity;         /* fired, resolved: enum monitor_severity; else -1 */
    char fingerprint[17]; /* fired, resolved, notified, lost: 16 hex digits; else "" */
    int64_t fired_ms;     /* all but verdict: when the alert fired (its startsAt) */
    double value;         /* fired, resolved: the value at the last breach; NaN: none */
    char *release;        /* fired, resolved: the alert's; rolled_back, skipped: judged;
                             verdict: the window's; NULL: none (release_id_valid's form) */
    char *to;             /* rolled_back: the release now live; NULL: none */
    char *target;         /* notified, lost: where */
    char *source;         /* rolled_back, skipped: "slipway" or "alertmanager" */
    char *text;           /* fired, resolved: summary; lost, skipped: why; rolled_back:
                             reason; verdict: the verdict. NULL: none */
};
void monitor_journal_event_clear(struct monitor_journal_event *e);
/* "fired", "rolled_back", ...: the file's words; "?" for others. */
const char *monitor_journal_kind_name(enum monitor_journal_kind k);

/* Appends e as one line and a newline to out. A string that is not what the
 * reader accepts is escaped (buf_add_escaped) and cut to its bound, a release
 * that is not an id left out, so what is written is read back. SW_EINVAL
 * (nothing appended) when e's env, time or fingerprint could not be read
 * back at all. Pure. */
int monitor_journal_encode(const struct monitor_journal_event *e, struct buf *out,
                           struct sw_err *err);
/* Parses one line (len bytes, no newline, untrusted) into *out (cleared first;
 * monitor_journal_event_clear it after 0 only). SW_EINVAL with what is wrong
 * for anything monitor_journal_encode could not have written: too long, not
 * one JSON object, another version, an unknown event, a field the event does
 * not have or lacks, a value out of its form. Pure: any thread. */
int monitor_journal_parse_line(const char *line, size_t len, struct monitor_journal_event *out,
                               struct sw_err *err);

/* Events of a file, in its order. */
struct monitor_journal_events {
    struct monitor_journal_event *v;
    size_t n;
    size_t bad; /* lines skipped */
};
void monitor_journal_events_clear(struct monitor_journal_events *ev);
/* Parses data (a journal's len bytes, named name) line by line into *out
 * (cleared first). A bad line is skipped, counted in out->bad and told to
 * warn ("NAME:LINE: what", NULL: not told); an empty last line is no line.
 * Never fails. */
void monitor_journal_parse(const char *data, size_t len, const char *name,
                           struct monitor_journal_events *out,
                           void (*warn)(void *arg, const char *line), void *warn_arg);
/* Reads path (a regular file up to MONITOR_JOURNAL_READ_MAX) and parses it.
 * SW_ENOTFOUND when there is none; what reading failed with otherwise. */
int monitor_journal_load(const char *path, struct monitor_journal_events *out,
                         void (*warn)(void *arg, const char *line), void *warn_arg,
                         struct sw_err *err);

/* The writer `slipway serve` keeps open. */
struct monitor_journal;
/* Opens (creates, with its directory) path for appending; max: the size past
 * which the file is rewritten with its newest half (0: MONITOR_JOURNAL_MAX).
 * Free with monitor_journal_close (NULL is a no-op). */
int monitor_journal_open(const char *path, size_t max, struct monitor_journal **out,
                         struct sw_err *err);
/* Appends e's line with one write(2) on an O_APPEND descriptor, so lines of
 * several writers never mix; when the file then exceeds max, rewrites it
 * atomically (a temporary file renamed over it) with the newest half of its
 * lines. Thread-safe: a mutex orders the callers. */
int monitor_journal_append(struct monitor_journal *j, const struct monitor_journal_event *e,
                           struct sw_err *err);
void monitor_journal_close(struct monitor_journal *j);

/* Incidents: the events of one alert's firing, grouped by env, fingerprint
 * and the time it fired; a rollback or a skipped one joins the incident of
 * its env, rule and fired time, else the newest of its env and rule that
 * fired before it, else one of its own (an alert from Alertmanager); a
 * verdict joins the newest incident of its env and release before it, else
 * none. Pointers are into the events given (borrowed: they must outlive the
 * incidents). */
#define MONITOR_INCIDENT_NOTES_MAX 32 /* deliveries kept per incident (the first ones) */
struct monitor_incident {
    const char *env, *rule;
    const char *fingerprint; /* "" : unknown (an incident known from the watch alone) */
    int64_t fired_ms;
    const struct monitor_journal_event *fired;    /* NULL: its line was not kept */
    const struct monitor_journal_event *resolved; /* NULL: still firing (as far as known) */
    const struct monitor_journal_event *rollback; /* the last rolled_back or skipped, or NULL */
    const struct monitor_journal_event *verdict;  /* or NULL */
    const struct monitor_journal_event *notes[MONITOR_INCIDENT_NOTES_MAX]; /* notified, lost */
    size_t nnotes, notes_omitted;
    const struct monitor_journal_event *first; /* its first line */
    int64_t last_ms;                           /* its newest event's time */
};
struct monitor_incidents {
    struct monitor_incident *v; /* newest first (by fired_ms) */
    size_t n;
};
/* Groups ev's events of env (NULL: every one) into out (caller frees out->v),
 * keeping incidents with an event at or after since_ms. Linear in the events. */
void monitor_incidents_group(const struct monitor_journal_events *ev, const char *env,
                             int64_t since_ms, struct monitor_incidents *out);

/* ---- the watch and the automatic rollback (watch.c) ------------------------------ */

/* After a deploy or switch that changes what serves an environment's
 * traffic, the release that went live is watched for the environment's
 * watch.duration (deploy's env_watch). A critical alert for the environment
 * inside that window rolls it back at once (on_critical: rollback; the
 * release is rejected, the reason recorded in the audit chain) or is logged
 * only (notify); the end of a window is recorded as a verdict. The window is
 * read from the environment's state, so every node judges the same one, and
 * each change is made by compare-and-swap on the generation judged: of
 * several nodes exactly one rolls back. docs/environments.md. */

struct env_config;
struct env_state;
struct store;

/* What a critical alert says; everything is borrowed for the call. */
struct monitor_critical {
    const char *env;     /* the environment it names */
    const char *rule;    /* the rule, or Alertmanager's alertname */
    const char *source;  /* who judged: "slipway" or "alertmanager" */
    const char *detail;  /* its value and condition, one line ("error_ratio 0.12 > 0.05 ...") */
    const char *release; /* the release judged; NULL: whatever is live when it is handled */
    int64_t at_ms;       /* when it fired */
};

enum monitor_watch_decision {
    MONITOR_WATCH_ROLLBACK,  /* inside an open window: roll back */
    MONITOR_WATCH_NOTIFY,    /* inside, but on_critical is notify */
    MONITOR_WATCH_UNWATCHED, /* the environment has no watch */
    MONITOR_WATCH_OUTSIDE,   /* no window is open (the last change opened none, or it ended) */
    MONITOR_WATCH_OTHER,     /* the alert is about another release than the live one */
};
/* The window s's last change opened: 1, with its start and end (ms since the
 * epoch), when c has a watch and that change was a deploy or switch that
 * made s's live release live; 0 otherwise (a rollback or verdict opens none). */
int monitor_watch_window(const struct env_config *c, const struct env_state *s, int64_t *start_ms,
                         int64_t *end_ms);
/* What a critical alert about release (NULL: the live one) at now_ms means
 * for environment c in state s, and why in one line appended to why. Pure. */
enum monitor_watch_decision monitor_watch_judge(const struct env_config *c,
                                                const struct env_state *s, const char *release,
                                                int64_t now_ms, struct buf *why);

/* One thing the watch did about a critical alert or a window, as data. */
enum monitor_watch_event_kind {
    MONITOR_WATCH_EVENT_ROLLED_BACK, /* by this node, or found rolled back already (text says) */
    MONITOR_WATCH_EVENT_SKIPPED,     /* nothing rolled back: text says why */
    MONITOR_WATCH_EVENT_VERDICT,     /* a window's end was recorded: text is the verdict */
};
struct monitor_watch_event {
    enum monitor_watch_event_kind kind;
    const char *env;
    const char *rule;    /* the alert's rule (or alertname); NULL for a verdict */
    const char *source;  /* "slipway" or "alertmanager"; NULL for a verdict */
    int64_t alert_ms;    /* when the alert fired (monitor_critical.at_ms); 0 for a verdict */
    const char *release; /* judged (rolled back from; the window's); NULL: none */
    const char *to;      /* rolled back to; NULL */
    const char *text;    /* the reason, why nothing was rolled back, or the verdict */
    int64_t at_ms;       /* when, ms since the epoch */
};

struct monitor_sampler;
struct monitor_watch_opts {
    struct store *store;  /* borrowed; thread-safe, used from the watch's thread */
    const char *envs_dir; /* the environment files (their watch key) */
    struct monitor_sampler
        *sampler;        /* asked at a window's end; NULL: verdicts say nothing measured */
    const char *actor;   /* the audit chain's actor: "slipway-monitor@HOST" */
    int64_t interval_ms; /* how often ended windows are looked for: 1 s */
    /* One line without a newline per event, from the watch's thread; the
     * caller escapes it. NULL: nowhere. */
    void (*log)(void *arg, const char *line);
    void *log_arg;
    /* What the watch did, as data, from its thread beside each line it logs
     * (for the incident journal). e and its strings are valid during the call
     * only; it must not block for long. NULL: nowhere. */
    void (*on_event)(void *arg, const struct monitor_watch_event *e);
    void *event_arg;
};
void monitor_watch_opts_init(struct monitor_watch_opts *o);

struct monitor_watch;
/* Starts the watch's thread. o's strings, store and sampler must outlive its
 * thread. Stop with monitor_watch_stop, free with monitor_watch_free. */
int monitor_watch_start(const struct monitor_watch_opts *o, struct monitor_watch **out,
                        struct sw_err *err);
/* Queues a critical alert (copied; a full queue of 64 drops its oldest) and
 * wakes the thread. Never waits on I/O. Thread-safe; a NULL w is a no-op. */
void monitor_watch_critical(struct monitor_watch *w, const struct monitor_critical *c);
struct monitor_watch_stats {
    uint64_t alerts;                /* critical alerts queued */
    uint64_t dropped;               /* ... and dropped from a full queue */
    uint64_t rollbacks;             /* made by this node */
    uint64_t rolled_back_elsewhere; /* found made by another node (or a person) meanwhile */
    uint64_t gave_way;              /* to a newer change, or a lock held too long */
    uint64_t verdicts;              /* windows' ends recorded by this node */
};
void monitor_watch_stats(struct monitor_watch *w, struct monitor_watch_stats *out);
/* Stops and joins the thread (an alert being handled is finished first);
 * w stays valid: alerts queued after are kept, never judged. Called by one
 * thread; NULL or stopped already is a no-op. */
void monitor_watch_stop(struct monitor_watch *w);
/* Stops w if needed and frees it, once nothing can queue an alert any more.
 * NULL is a no-op. */
void monitor_watch_free(struct monitor_watch *w);

#endif
