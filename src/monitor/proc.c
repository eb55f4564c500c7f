/*
 * Process and host figures from /proc, as Prometheus text. Parsing is kept
 * apart from reading: each parser is a pure function of one file's text, so
 * tests and the fuzzer feed it whatever they like, and the thin reader below
 * only opens files under a root that tests may point elsewhere.
 *
 * The one idea: /proc is read at scrape time, every time, and nothing is
 * cached but the CPU readings the busy ratio is measured between (a ratio is
 * a difference of two readings). A source that cannot be read is not an
 * error of the scrape: its families are left out and
 * slipway_proc_readable{source} says 0, so a sandbox hiding /proc/self/io
 * costs two series, not the endpoint.
 */
#include "monitor/monitor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define FILE_MAX (4u << 20) /* bytes read of one /proc file */

/* ---- parsing helpers ------------------------------------------------------------- */

static int bad(struct sw_err *err, const char *file, size_t line, const char *what)
{
    return sw_err_set(err, SW_EINVAL, "%s: line %zu: %s", file, line, what);
}

static int blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The end of the line starting at p: its '\n', or end. */
static const char *eol(const char *p, const char *end)
{
    const char *q = memchr(p, '\n', (size_t)(end - p));
    return q ? q : end;
}

static const char *skip_blanks(const char *p, const char *end)
{
    while (p < end && blank(*p))
        p++;
    return p;
}

/* An unsigned decimal at *pp after blanks, ending at a blank or end (which
 * callers set to the end of the line or of a field): "12x" is not 12. */
static int num(const char **pp, const char *end, uint64_t *v)
{
    const char *p = skip_blanks(*pp, end);
    uint64_t x = 0;
    if (p == end || *p < '0' || *p > '9')
        return -1;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    if (p < end && !blank(*p))
        return -1;
    *pp = p;
    *v = x;
    return 0;
}

/* Only blanks left before end. */
static int rest_blank(const char *p, const char *end)
{
    return skip_blanks(p, end) == end;
}

/* A "Key: value" line (self/io, meminfo): the key, and where the value starts. */
static int key_value(const char *p, const char *end, const char **key, size_t *klen,
                     const char **val)
{
    const char *colon = memchr(p, ':', (size_t)(end - p));
    if (!colon || colon == p)
        return -1;
    *key = p;
    *klen = (size_t)(colon - p);
    *val = colon + 1;
    return 0;
}

static int key_is(const char *key, size_t klen, const char *name)
{
    return klen == strlen(name) && memcmp(key, name, klen) == 0;
}

/* ---- /proc/self/stat ---------------------------------------------------------------- */

int monitor_parse_self_stat(const char *text, size_t len, struct monitor_self_stat *out,
                            struct sw_err *err)
{
    static const char file[] = "/proc/self/stat";
    const char *p = text, *end = eol(text, text + len);
    uint64_t pid;
    memset(out, 0, sizeof(*out));
    if (num(&p, end, &pid))
        return bad(err, file, 1, "no process id");
    if (end - p < 2 || p[0] != ' ' || p[1] != '(')
        return bad(err, file, 1, "no command name after the process id");
    /* The command name is whatever the process called itself, spaces and
     * parentheses included: the fields start after the last ')'. */
    const char *close = memrchr(p + 2, ')', (size_t)(end - p - 2));
    if (!close)
        return bad(err, file, 1, "command name not closed with ')'");
    p = close + 1;
    for (int field = 3; field <= 24; field++) {
        if (p == end || *p != ' ')
            return sw_err_set(err, SW_EINVAL, "%s: line 1: %d fields, expected at least 24", file,
                              field - 1);
        const char *tok = ++p;
        while (p < end && *p != ' ')
            p++;
        if (tok == p)
            return sw_err_set(err, SW_EINVAL, "%s: line 1: field %d is empty", file, field);
        uint64_t *dst = field == 14   ? &out->utime_ticks
                        : field == 15 ? &out->stime_ticks
                        : field == 22 ? &out->start_ticks
                        : field == 23 ? &out->vsize_bytes
                        : field == 24 ? &out->rss_pages
                                      : NULL;
        const char *q = tok;
        if (dst && (num(&q, p, dst) || q != p))
            return sw_err_set(err, SW_EINVAL, "%s: line 1: field %d is not an unsigned number",
                              file, field);
    }
    return 0;
}

/* ---- /proc/self/io, /proc/meminfo ---------------------------------------------------- */

/* The values of keys[0] and keys[1] in "Key: value" lines (any other key is
 * skipped): each at most once, an unsigned number, followed by " kB" (then
 * returned in bytes) when kb. seen[i] says whether keys[i] was there. shape
 * names the line's form in the error ("not 'key: value'"). */
static int two_keys(const char *text, size_t len, const char *file, const char *shape,
                    const char *const keys[2], int kb, uint64_t v[2], int seen[2],
                    struct sw_err *err)
{
    const char *p = text, *end = text + len;
    seen[0] = seen[1] = 0;
    v[0] = v[1] = 0;
    for (size_t line = 1; p < end; line++, p++) {
        const char *e = eol(p, end), *key, *val;
        size_t klen;
        if (rest_blank(p, e)) {
            p = e;
            continue;
        }
        if (key_value(p, e, &key, &klen, &val)) {
            char what[48];
            snprintf(what, sizeof(what), "not '%s'", shape);
            return bad(err, file, line, what);
        }
        int k = key_is(key, klen, keys[0]) ? 0 : key_is(key, klen, keys[1]) ? 1 : -1;
        if (k >= 0) {
            char what[48];
            snprintf(what, sizeof(what), "%s twice", keys[k]);
            if (seen[k]++)
                return bad(err, file, line, what);
            if (num(&val, e, &v[k]))
                return bad(err, file, line, "the value is not an unsigned number");
            if (kb) {
                val = skip_blanks(val, e);
                if (e - val < 2 || memcmp(val, "kB", 2) != 0 || !rest_blank(val + 2, e))
                    return bad(err, file, line, "the value is not in kB");
                if (v[k] > UINT64_MAX / 1024)
                    return bad(err, file, line, "the value is too large");
                v[k] *= 1024;
            } else if (!rest_blank(val, e)) {
                return bad(err, file, line, "the value is not an unsigned number");
            }
        }
        p = e;
    }
    return 0;
}

int monitor_parse_self_io(const char *text, size_t len, struct monitor_self_io *out,
                          struct sw_err *err)
{
    static const char file[] = "/proc/self/io";
    static const char *const keys[2] = {"read_bytes", "write_bytes"};
    uint64_t v[2];
    int seen[2];
    memset(out, 0, sizeof(*out));
    int rc = two_keys(text, len, file, "key: value", keys, 0, v, seen, err);
    if (rc)
        return rc;
    if (!seen[0] || !seen[1])
        return sw_err_set(err, SW_EINVAL, "%s: no %s", file, keys[seen[0]]);
    out->read_bytes = v[0];
    out->write_bytes = v[1];
    return 0;
}

int monitor_parse_meminfo(const char *text, size_t len, struct monitor_meminfo *out,
                          struct sw_err *err)
{
    static const char file[] = "/proc/meminfo";
    static const char *const keys[2] = {"MemTotal", "MemAvailable"};
    uint64_t v[2];
    int seen[2];
    memset(out, 0, sizeof(*out));
    int rc = two_keys(text, len, file, "Key: value", keys, 1, v, seen, err);
    if (rc)
        return rc;
    if (!seen[0])
        return sw_err_set(err, SW_EINVAL, "%s: no MemTotal", file);
    out->total_bytes = v[0];
    out->available_bytes = v[1];
    out->has_available = seen[1];
    return 0;
}

/* ---- /proc/stat ----------------------------------------------------------------------- */

/* The first word of the line p..e is exactly word, followed by a blank. */
static const char *word(const char *p, const char *e, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(e - p) <= n || memcmp(p, w, n) != 0 || !blank(p[n]))
        return NULL;
    return p + n;
}

int monitor_parse_stat(const char *text, size_t len, struct monitor_cpu *out, struct sw_err *err)
{
    static const char file[] = "/proc/stat";
    const char *p = text, *end = text + len, *v;
    int cpu = 0, btime = 0;
    memset(out, 0, sizeof(*out));
    for (size_t line = 1; p < end; line++, p++) {
        const char *e = eol(p, end);
        if ((v = word(p, e, "cpu"))) {
            if (cpu++)
                return bad(err, file, line, "a second cpu line");
            int n = 0;
            uint64_t t;
            /* user nice system idle iowait irq softirq steal guest guest_nice:
             * more in a later kernel are ignored, but must be numbers. */
            for (; !rest_blank(v, e); n++) {
                if (num(&v, e, &t))
                    return bad(err, file, line, "a cpu time is not an unsigned number");
                if (n < MONITOR_CPU_MODES)
                    out->ticks[n] = t;
            }
            if (n < 4)
                return bad(err, file, line, "fewer than 4 cpu times");
        } else if ((v = word(p, e, "btime"))) {
            if (btime++)
                return bad(err, file, line, "a second btime line");
            if (num(&v, e, &out->btime) || !rest_blank(v, e))
                return bad(err, file, line, "btime is not an unsigned number");
        }
        p = e;
    }
    if (!cpu || !btime)
        return sw_err_set(err, SW_EINVAL, "%s: no %s line", file, cpu ? "btime" : "cpu");
    return 0;
}

double monitor_cpu_busy_ratio(const struct monitor_cpu *a, const struct monitor_cpu *b)
{
    double total = 0, idle = 0;
    for (int m = 0; m < MONITOR_CPU_MODES; m++) {
        double d = b->ticks[m] >= a->ticks[m] ? (double)(b->ticks[m] - a->ticks[m]) : 0;
        total += d;
        if (m == MONITOR_CPU_IDLE || m == MONITOR_CPU_IOWAIT)
            idle += d;
    }
    if (total <= 0)
        return -1;
    return (total - idle) / total;
}

double monitor_cpu_window_add(struct monitor_cpu_window *w, const struct monitor_cpu *cur,
                              int64_t now_ms)
{
    static const struct monitor_cpu boot; /* all zero: the counters at boot */
    const struct monitor_cpu *base = NULL;
    if (w->n < 0 || w->n > 2)
        w->n = 0;
    for (int i = w->n - 1; i >= 0 && !base; i--)
        if (now_ms - w->at_ms[i] >= MONITOR_CPU_WINDOW_MIN_MS)
            base = &w->r[i];
    if (!base && w->n > 0)
        base = &w->r[0];
    double ratio = base ? monitor_cpu_busy_ratio(base, cur) : -1;
    if (ratio < 0)
        ratio = monitor_cpu_busy_ratio(&boot, cur);
    /* Keep cur only a full window after the newest kept reading, so the
     * older one is always at least that far behind the next scrape. */
    if (w->n == 0 || now_ms - w->at_ms[w->n - 1] >= MONITOR_CPU_WINDOW_MIN_MS) {
        if (w->n == 2) {
            w->r[0] = w->r[1];
            w->at_ms[0] = w->at_ms[1];
            w->n = 1;
        }
        w->r[w->n] = *cur;
        w->at_ms[w->n] = now_ms;
        w->n++;
    }
    return ratio;
}

/* ---- /proc/diskstats -------------------------------------------------------------------- */

/* After a prefix of s equal to pre, or NULL. */
static const char *after(const char *s, const char *pre)
{
    size_t n = strlen(pre);
    return strncmp(s, pre, n) == 0 ? s + n : NULL;
}

/* After one or more characters of s in lo..hi, or NULL. */
static const char *run(const char *s, char lo, char hi)
{
    const char *p = s;
    while (p && *p >= lo && *p <= hi)
        p++;
    return p && p != s ? p : NULL;
}

int monitor_disk_skipped(const char *name)
{
    static const char *const virt[] = {"loop", "ram", "zram", "fd"};
    static const char *const disk[] = {"hd", "sd", "vd", "xvd"};
    const char *p;
    for (size_t i = 0; i < sizeof(virt) / sizeof(*virt); i++)
        if ((p = after(name, virt[i])) && (p = run(p, '0', '9')) && !*p)
            return 1;
    for (size_t i = 0; i < sizeof(disk) / sizeof(*disk); i++)
        if ((p = after(name, disk[i])) && (p = run(run(p, 'a', 'z'), '0', '9')) && !*p)
            return 1;
    /* nvme<ctrl>n<ns>p<part>, mmcblk<dev>p<part> */
    if ((p = after(name, "nvme")) && (p = run(p, '0', '9')) && *p == 'n' &&
        (p = run(p + 1, '0', '9')) && *p == 'p' && (p = run(p + 1, '0', '9')) && !*p)
        return 1;
    if ((p = after(name, "mmcblk")) && (p = run(p, '0', '9')) && *p == 'p' &&
        (p = run(p + 1, '0', '9')) && !*p)
        return 1;
    return 0;
}

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("._-:+!", c));
}

int monitor_parse_diskstats(const char *text, size_t len, struct monitor_diskstats *out,
                            struct sw_err *err)
{
    static const char file[] = "/proc/diskstats";
    const char *p = text, *end = text + len;
    memset(out, 0, sizeof(*out));
    for (size_t line = 1; p < end; line++, p++) {
        const char *e = eol(p, end);
        uint64_t major, minor, v[10];
        char name[MONITOR_DISK_NAME_MAX + 1];
        if (rest_blank(p, e)) {
            p = e;
            continue;
        }
        if (num(&p, e, &major) || num(&p, e, &minor))
            return bad(err, file, line, "no major and minor device numbers");
        p = skip_blanks(p, e);
        const char *n0 = p;
        while (p < e && !blank(*p))
            p++;
        size_t nlen = (size_t)(p - n0);
        if (nlen == 0 || nlen > MONITOR_DISK_NAME_MAX)
            return bad(err, file, line, "the device name is empty or longer than 31 bytes");
        for (size_t i = 0; i < nlen; i++)
            if (!name_char(n0[i]))
                return bad(err, file, line,
                           "the device name has a character other than "
                           "letters, digits and ._-:+!");
        memcpy(name, n0, nlen);
        name[nlen] = '\0';
        if (monitor_disk_skipped(name)) {
            p = e;
            continue;
        }
        /* reads, merged, sectors read, ms reading, writes, merged, sectors
         * written, ms writing, in flight, ms doing I/O, weighted ms; later
         * kernels add discards and flushes, which are read and ignored. */
        int k = 0;
        uint64_t t;
        for (; !rest_blank(p, e); k++) {
            if (num(&p, e, &t))
                return bad(err, file, line, "a counter is not an unsigned number");
            if (k < 10)
                v[k] = t;
        }
        if (k < 11)
            return bad(err, file, line, "fewer than 11 counters");
        if (v[2] > UINT64_MAX / 512 || v[6] > UINT64_MAX / 512)
            return bad(err, file, line, "a sector count is too large");
        for (size_t i = 0; i < out->n; i++)
            if (!strcmp(out->disk[i].name, name))
                return bad(err, file, line, "a device named twice");
        if (out->n == MONITOR_MAX_DISKS) {
            out->omitted++;
        } else {
            struct monitor_disk *d = &out->disk[out->n++];
            memcpy(d->name, name, nlen + 1);
            d->reads = v[0];
            d->read_bytes =
                v[2] * 512; /* always 512-byte sectors (Documentation/admin-guide/iostats) */
            d->writes = v[4];
            d->written_bytes = v[6] * 512;
            d->io_ms = v[9];
        }
        p = e;
    }
    return 0;
}

/* ---- reading the real files ------------------------------------------------------------ */

/* Reads root/name whole, up to FILE_MAX bytes, NUL-terminated (caller frees). */
static int read_text(const char *root, const char *name, char **out, size_t *len,
                     struct sw_err *err)
{
    char *path = xasprintf("%s/%s", root, name);
    struct buf b = BUF_INIT;
    int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = sw_err_sys(err, errno, "%s", path);
        goto out;
    }
    buf_grow(&b, 8192);
    for (;;) {
        if (b.len + 1 >= b.cap)
            buf_grow(&b, b.cap);
        ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = sw_err_sys(err, errno, "%s", path);
            goto out;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
        if (b.len > FILE_MAX) {
            rc = sw_err_set(err, SW_EINVAL, "%s: larger than %u bytes", path, FILE_MAX);
            goto out;
        }
    }
    b.data[b.len] = '\0';
    *out = buf_detach(&b, len);
out:
    if (fd >= 0)
        close(fd);
    buf_free(&b);
    free(path);
    return rc;
}

typedef int parse_fn(const char *text, size_t len, void *out, struct sw_err *err);

static int read_parse(const char *root, const char *name, parse_fn *parse, void *out,
                      struct sw_err *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_text(root, name, &text, &len, err);
    if (!rc)
        rc = parse(text, len, out, err);
    free(text);
    return rc;
}

/* The descriptors open now: entries of root/self/fd but the directory's own. */
static int count_fds(const char *root, uint64_t *n, struct sw_err *err)
{
    char *path = xasprintf("%s/self/fd", root);
    int rc = 0;
    DIR *d = opendir(path);
    if (!d) {
        rc = sw_err_sys(err, errno, "%s", path);
        goto out;
    }
    char self[24];
    snprintf(self, sizeof(self), "%d", dirfd(d));
    *n = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                rc = sw_err_sys(err, errno, "%s", path);
            break;
        }
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, self))
            (*n)++;
    }
    closedir(d);
out:
    free(path);
    return rc;
}

/* Adapters from each parser's typed out to read_parse's. */
static int p_self_stat(const char *t, size_t l, void *o, struct sw_err *e)
{
    return monitor_parse_self_stat(t, l, o, e);
}
static int p_self_io(const char *t, size_t l, void *o, struct sw_err *e)
{
    return monitor_parse_self_io(t, l, o, e);
}
static int p_stat(const char *t, size_t l, void *o, struct sw_err *e)
{
    return monitor_parse_stat(t, l, o, e);
}
static int p_meminfo(const char *t, size_t l, void *o, struct sw_err *e)
{
    return monitor_parse_meminfo(t, l, o, e);
}
static int p_diskstats(const char *t, size_t l, void *o, struct sw_err *e)
{
    return monitor_parse_diskstats(t, l, o, e);
}

int monitor_proc_read(const char *root, struct monitor_proc_reading *r, struct sw_err *err)
{
    struct sw_err e = {0};
    int first = 0;
    if (!root)
        root = "/proc";
    memset(r, 0, sizeof(*r));
    r->clk_tck = sysconf(_SC_CLK_TCK);
    r->page_size = sysconf(_SC_PAGESIZE);
    for (unsigned src = 1; src < MONITOR_SRC_ALL; src <<= 1) {
        int rc = 0;
        struct rlimit rl;
        switch (src) {
        case MONITOR_SRC_SELF_STAT:
            rc = r->clk_tck <= 0 || r->page_size <= 0
                     ? sw_err_set(&e, SW_EIO, "sysconf: no clock tick or page size")
                     : read_parse(root, "self/stat", p_self_stat, &r->self, &e);
            break;
        case MONITOR_SRC_SELF_IO:
            rc = read_parse(root, "self/io", p_self_io, &r->io, &e);
            break;
        case MONITOR_SRC_SELF_FD:
            rc = count_fds(root, &r->open_fds, &e);
            if (!rc && getrlimit(RLIMIT_NOFILE, &rl) != 0)
                rc = sw_err_sys(&e, errno, "getrlimit(RLIMIT_NOFILE)");
            if (!rc)
                r->max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
            break;
        case MONITOR_SRC_STAT:
            rc = r->clk_tck <= 0 ? sw_err_set(&e, SW_EIO, "sysconf: no clock tick")
                                 : read_parse(root, "stat", p_stat, &r->cpu, &e);
            break;
        case MONITOR_SRC_MEMINFO:
            rc = read_parse(root, "meminfo", p_meminfo, &r->mem, &e);
            break;
        case MONITOR_SRC_DISKSTATS:
            rc = read_parse(root, "diskstats", p_diskstats, &r->disks, &e);
            break;
        }
        if (!rc) {
            r->ok |= src;
        } else if (!first) {
            first = rc;
            if (err)
                *err = e;
        }
    }
    return first;
}

/* ---- the exposition ---------------------------------------------------------------------- */

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* ticks of hz per second as seconds with three decimals, exactly (no
 * floating point between a counter and its text). */
static void add_seconds(struct buf *b, uint64_t ticks, uint64_t hz)
{
    buf_addf(b, "%llu.%03llu\n", (unsigned long long)(ticks / hz),
             (unsigned long long)(ticks % hz * 1000 / hz));
}

static void add_u64(struct buf *b, const char *name, uint64_t v)
{
    buf_addf(b, "%s %llu\n", name, (unsigned long long)v);
}

void monitor_proc_format(const struct monitor_proc_reading *r, double busy_ratio, struct buf *b)
{
    static const char *const modes[MONITOR_CPU_MODES] = {"user",   "nice", "system",  "idle",
                                                         "iowait", "irq",  "softirq", "steal"};
    static const struct {
        unsigned src;
        const char *name;
    } sources[] = {{MONITOR_SRC_SELF_STAT, "self_stat"}, {MONITOR_SRC_SELF_IO, "self_io"},
                   {MONITOR_SRC_SELF_FD, "self_fd"},     {MONITOR_SRC_STAT, "stat"},
                   {MONITOR_SRC_MEMINFO, "meminfo"},     {MONITOR_SRC_DISKSTATS, "diskstats"}};
    /* sysconf's values are checked by the reader; a reading made by hand
     * (a test, the fuzzer) with nonsense in them still writes sane text. */
    uint64_t hz = r->clk_tck > 0 && r->clk_tck <= 1000000 ? (uint64_t)r->clk_tck : 100;
    uint64_t page = r->page_size > 0 ? (uint64_t)r->page_size : 4096;

    if (r->ok & MONITOR_SRC_SELF_STAT) {
        const struct monitor_self_stat *s = &r->self;
        family(b, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.");
        /* utime + stime as whole seconds and leftover ticks, so the sum of
         * two 64-bit counters saturates instead of wrapping. */
        uint64_t sec, rem = s->utime_ticks % hz + s->stime_ticks % hz;
        if (__builtin_add_overflow(s->utime_ticks / hz, s->stime_ticks / hz, &sec) ||
            __builtin_add_overflow(sec, rem / hz, &sec))
            sec = UINT64_MAX;
        buf_addf(b, "process_cpu_seconds_total %llu.%03llu\n", (unsigned long long)sec,
                 (unsigned long long)(rem % hz * 1000 / hz));
        family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        add_u64(b, "process_resident_memory_bytes",
                s->rss_pages > UINT64_MAX / page ? UINT64_MAX : s->rss_pages * page);
        family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        add_u64(b, "process_virtual_memory_bytes", s->vsize_bytes);
        if (r->ok & MONITOR_SRC_STAT) {
            family(b, "process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds.");
            uint64_t start;
            if (__builtin_add_overflow(r->cpu.btime, s->start_ticks / hz, &start))
                start = UINT64_MAX;
            buf_addf(b, "process_start_time_seconds %llu.%03llu\n", (unsigned long long)start,
                     (unsigned long long)(s->start_ticks % hz * 1000 / hz));
        }
    }
    if (r->ok & MONITOR_SRC_SELF_FD) {
        family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        add_u64(b, "process_open_fds", r->open_fds);
        family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        if (r->max_fds == UINT64_MAX)
            buf_adds(b, "process_max_fds +Inf\n");
        else
            add_u64(b, "process_max_fds", r->max_fds);
    }
    if (r->ok & MONITOR_SRC_SELF_IO) {
        family(b, "slipway_process_disk_read_bytes_total", "counter",
               "Bytes this process caused to be read from storage (/proc/self/io read_bytes).");
        add_u64(b, "slipway_process_disk_read_bytes_total", r->io.read_bytes);
        family(b, "slipway_process_disk_written_bytes_total", "counter",
               "Bytes this process caused to be written to storage (/proc/self/io "
               "write_bytes).");
        add_u64(b, "slipway_process_disk_written_bytes_total", r->io.write_bytes);
    }
    if (r->ok & MONITOR_SRC_STAT) {
        family(b, "slipway_host_cpu_seconds_total", "counter",
               "CPU time of the host, all CPUs together, by mode.");
        for (int m = 0; m < MONITOR_CPU_MODES; m++) {
            buf_addf(b, "slipway_host_cpu_seconds_total{mode=\"%s\"} ", modes[m]);
            add_seconds(b, r->cpu.ticks[m], hz);
        }
        if (busy_ratio >= 0 && busy_ratio <= 1) {
            family(b, "slipway_host_cpu_busy_ratio", "gauge",
                   "Share of the host's CPU time not idle nor waiting for I/O since the "
                   "previous scrape at least 1s earlier.");
            buf_addf(b, "slipway_host_cpu_busy_ratio %.6f\n", busy_ratio);
        }
    }
    if (r->ok & MONITOR_SRC_MEMINFO) {
        family(b, "slipway_host_memory_total_bytes", "gauge", "Memory of the host (MemTotal).");
        add_u64(b, "slipway_host_memory_total_bytes", r->mem.total_bytes);
        if (r->mem.has_available) {
            family(b, "slipway_host_memory_available_bytes", "gauge",
                   "Memory available to start new work without swapping (MemAvailable).");
            add_u64(b, "slipway_host_memory_available_bytes", r->mem.available_bytes);
        }
    }
    if (r->ok & MONITOR_SRC_DISKSTATS) {
        static const struct {
            const char *name, *type, *help;
        } f[] = {
            {"slipway_host_disk_reads_completed_total", "counter",
             "Reads completed by each whole block device."},
            {"slipway_host_disk_writes_completed_total", "counter",
             "Writes completed by each whole block device."},
            {"slipway_host_disk_read_bytes_total", "counter",
             "Bytes read by each whole block device."},
            {"slipway_host_disk_written_bytes_total", "counter",
             "Bytes written by each whole block device."},
            {"slipway_host_disk_io_time_seconds_total", "counter",
             "Time each whole block device had I/O in flight."},
        };
        size_t n = r->disks.n < MONITOR_MAX_DISKS ? r->disks.n : MONITOR_MAX_DISKS;
        for (size_t k = 0; k < sizeof(f) / sizeof(*f) && n; k++) {
            family(b, f[k].name, f[k].type, f[k].help);
            for (size_t i = 0; i < n; i++) {
                const struct monitor_disk *d = &r->disks.disk[i];
                uint64_t v[] = {d->reads, d->writes, d->read_bytes, d->written_bytes};
                /* The name was checked by the parser; a reading made by hand
                 * gets "?" rather than a broken label. */
                int safe = d->name[0] && memchr(d->name, '\0', sizeof(d->name));
                for (const char *c = d->name; safe && *c; c++)
                    safe = name_char(*c);
                buf_addf(b, "%s{device=\"%s\"} ", f[k].name, safe ? d->name : "?");
                if (k < 4)
                    buf_addf(b, "%llu\n", (unsigned long long)v[k]);
                else
                    add_seconds(b, d->io_ms, 1000);
            }
        }
    }
    family(b, "slipway_proc_readable", "gauge",
           "Whether each /proc source was read and understood at this scrape (0: its "
           "figures are missing).");
    for (size_t i = 0; i < sizeof(sources) / sizeof(*sources); i++)
        buf_addf(b, "slipway_proc_readable{source=\"%s\"} %d\n", sources[i].name,
                 (r->ok & sources[i].src) != 0);
}

/* ---- the renderer -------------------------------------------------------------------------- */

struct monitor_proc {
    pthread_mutex_t lock; /* one scrape at a time: guards win and r */
    char *root;
    struct monitor_cpu_window win;
    struct monitor_proc_reading r; /* here rather than on a worker's stack */
};

struct monitor_proc *monitor_proc_new(const char *root)
{
    struct monitor_proc *m = xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    m->root = xstrdup(root ? root : "/proc");
    (void)monitor_proc_read(m->root, &m->r, NULL);
    if (m->r.ok & MONITOR_SRC_STAT)
        (void)monitor_cpu_window_add(&m->win, &m->r.cpu, time_mono_ms());
    return m;
}

void monitor_proc_free(struct monitor_proc *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m->root);
    free(m);
}

void monitor_proc_render(struct monitor_proc *m, struct buf *b)
{
    pthread_mutex_lock(&m->lock);
    (void)monitor_proc_read(m->root, &m->r, NULL);
    double busy = -1;
    if (m->r.ok & MONITOR_SRC_STAT)
        busy = monitor_cpu_window_add(&m->win, &m->r.cpu, time_mono_ms());
    monitor_proc_format(&m->r, busy, b);
    pthread_mutex_unlock(&m->lock);
}
