/*
 * libFuzzer target for the /proc parsers of src/monitor/proc.c: every input is
 * given to all five (self/stat, self/io, stat, meminfo, diskstats), as a file a
 * hostile or unexpected kernel could hand them. Beyond the sanitizers: a refusal
 * is SW_EINVAL naming the file; what is accepted keeps the parsers' promises
 * (device names safe as label values, unique, never a partition or loop device,
 * within the bound; byte counts whole sectors and kB; a busy ratio within 0..1);
 * and the exposition written from whatever was accepted is well-formed
 * Prometheus text: every line a HELP, a TYPE or a sample of the family just
 * declared, no control character, no label value that could end its quotes.
 */
#include "fuzz.h"
#include "monitor/monitor.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_refusal(int rc, const struct sw_err *err, const char *file)
{
    CHECK(rc == SW_EINVAL && err->code == SW_EINVAL);
    CHECK(strncmp(err->msg, file, strlen(file)) == 0 && err->msg[strlen(file)] == ':');
}

static int name_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("._-:+!", *s)))
            return 0;
    return 1;
}

static void check_disks(const struct monitor_diskstats *d)
{
    CHECK(d->n <= MONITOR_MAX_DISKS);
    CHECK(d->omitted == 0 || d->n == MONITOR_MAX_DISKS);
    for (size_t i = 0; i < d->n; i++) {
        const struct monitor_disk *k = &d->disk[i];
        CHECK(memchr(k->name, '\0', sizeof(k->name)) != NULL);
        CHECK(name_ok(k->name));
        CHECK(!monitor_disk_skipped(k->name));
        CHECK(k->read_bytes % 512 == 0 && k->written_bytes % 512 == 0);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(d->disk[j].name, k->name) != 0);
    }
}

/* Each line: "# HELP name ...", "# TYPE name counter|gauge" for the name of
 * the HELP before it, or "family[{...}] value" of the family declared last. */
static void check_exposition(const char *p, size_t len)
{
    const char *end = p + len, *family = NULL;
    size_t flen = 0;
    CHECK(len == 0 || end[-1] == '\n');
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        CHECK(e != NULL && e > p);
        for (const char *c = p; c < e; c++)
            CHECK(*c >= ' ' && *c < 0x7f);
        if (!strncmp(p, "# HELP ", 7)) {
            family = p + 7;
            flen = strcspn(family, " ");
        } else if (!strncmp(p, "# TYPE ", 7)) {
            CHECK(family && !strncmp(p + 7, family, flen) && p[7 + flen] == ' ');
            const char *t = p + 8 + flen;
            CHECK((e - t == 7 && !strncmp(t, "counter", 7)) ||
                  (e - t == 5 && !strncmp(t, "gauge", 5)));
        } else {
            CHECK(family && !strncmp(p, family, flen));
            const char *q = p + flen;
            if (*q == '{') {
                /* one label: name="value" with a value of safe characters */
                const char *eq = memchr(q, '=', (size_t)(e - q));
                CHECK(eq && eq[1] == '"');
                const char *v = eq + 2, *close = v;
                while (close < e && *close != '"')
                    close++;
                CHECK(close < e && close[1] == '}');
                for (const char *c = v; c < close; c++)
                    CHECK(*c != '\\' && *c != '{' && *c != '}' && *c != ' ');
                q = close + 2;
            }
            CHECK(*q == ' ');
            q++;
            CHECK(q < e);
            if (e - q == 4 && !strncmp(q, "+Inf", 4))
                ;
            else
                for (const char *c = q; c < e; c++)
                    CHECK((*c >= '0' && *c <= '9') || (*c == '.' && c > q && c < e - 1));
        }
        p = e + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    static struct monitor_proc_reading r;
    struct sw_err err;
    int rc;

    memset(&r, 0, sizeof(r));
    r.clk_tck = 100;
    r.page_size = 4096;

    memset(&err, 0, sizeof(err));
    if ((rc = monitor_parse_self_stat(text, size, &r.self, &err)))
        check_refusal(rc, &err, "/proc/self/stat");
    else
        r.ok |= MONITOR_SRC_SELF_STAT;

    memset(&err, 0, sizeof(err));
    if ((rc = monitor_parse_self_io(text, size, &r.io, &err)))
        check_refusal(rc, &err, "/proc/self/io");
    else
        r.ok |= MONITOR_SRC_SELF_IO;

    double busy = -1;
    memset(&err, 0, sizeof(err));
    if ((rc = monitor_parse_stat(text, size, &r.cpu, &err))) {
        check_refusal(rc, &err, "/proc/stat");
    } else {
        r.ok |= MONITOR_SRC_STAT;
        /* the same reading twice: no time passed */
        CHECK(monitor_cpu_busy_ratio(&r.cpu, &r.cpu) == -1);
        struct monitor_cpu_window w;
        memset(&w, 0, sizeof(w));
        busy = monitor_cpu_window_add(&w, &r.cpu, 0);
        CHECK(busy == -1 || (busy >= 0 && busy <= 1));
        double again = monitor_cpu_window_add(&w, &r.cpu, 5000);
        CHECK(again == busy); /* nothing moved: since boot, as before */
    }

    memset(&err, 0, sizeof(err));
    if ((rc = monitor_parse_meminfo(text, size, &r.mem, &err))) {
        check_refusal(rc, &err, "/proc/meminfo");
    } else {
        r.ok |= MONITOR_SRC_MEMINFO;
        CHECK(r.mem.total_bytes % 1024 == 0 && r.mem.available_bytes % 1024 == 0);
        CHECK(r.mem.has_available || r.mem.available_bytes == 0);
    }

    memset(&err, 0, sizeof(err));
    if ((rc = monitor_parse_diskstats(text, size, &r.disks, &err))) {
        check_refusal(rc, &err, "/proc/diskstats");
    } else {
        r.ok |= MONITOR_SRC_DISKSTATS;
        check_disks(&r.disks);
    }

    struct buf b = BUF_INIT;
    monitor_proc_format(&r, busy, &b);
    check_exposition(b.data, b.len);
    buf_free(&b);
    return 0;
}
