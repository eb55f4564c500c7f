/*
 * Human sizes: "10G", "512MiB", "64K", "1048576". Units are powers of 1024
 * whatever their spelling ("G", "GB" and "GiB" are all 2^30 bytes), as in
 * nginx and Docker, so that a limit typed from habit means what it says on
 * a disk or in a memory report.
 */
#include "base/base.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int size_parse(const char *s, uint64_t *bytes)
{
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s))
        return SW_EINVAL;
    while (isdigit((unsigned char)*s)) {
        unsigned d = (unsigned)(*s++ - '0');
        if (v > (UINT64_MAX - d) / 10)
            return SW_EINVAL;
        v = v * 10 + d;
    }
    static const char units[] = "KMGTPE";
    unsigned shift = 0;
    if (*s) {
        const char *u = strchr(units, toupper((unsigned char)*s));
        if (*s == 'B' || *s == 'b') {
            s++; /* "512B" */
        } else if (u) {
            shift = 10 * (unsigned)(u - units + 1);
            s++;
            if (!strcmp(s, "iB"))
                s += 2;
            else if (*s == 'B' || *s == 'b')
                s++;
        } else {
            return SW_EINVAL;
        }
    }
    if (*s)
        return SW_EINVAL;
    if (shift && v > UINT64_MAX >> shift)
        return SW_EINVAL;
    *bytes = v << shift;
    return 0;
}

void size_format(uint64_t bytes, char *out, size_t outlen)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(out, outlen, "%llu bytes", (unsigned long long)bytes);
        return;
    }
    int u = 0;
    double v = (double)bytes / 1024;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    /* Whole numbers as they would be typed ("10 GiB"), others to one decimal. */
    if (bytes % (1ULL << (10 * (u + 1))) == 0)
        snprintf(out, outlen, "%.0f %s", v, units[u]);
    else
        snprintf(out, outlen, "%.1f %s", v, units[u]);
}
