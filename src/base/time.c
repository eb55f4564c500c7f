/*
 * Clocks, ISO-8601 timestamps and human durations. Stored documents always use
 * UTC with millisecond precision so that ids and history sort as text.
 */
#include "base/base.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}

struct timespec time_mono_deadline(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int64_t time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void time_format_iso(int64_t ms, char *out, size_t outlen)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int time_parse_iso(const char *s, int64_t *ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int frac = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6)
        return SW_EINVAL;
    s += n;
    if (*s == '.') {
        int digits = 0;
        for (s++; isdigit((unsigned char)*s); s++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*s - '0');
        for (; digits < 3; digits++)
            frac *= 10;
    }
    if (strcmp(s, "Z") != 0)
        return SW_EINVAL;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return SW_EINVAL;
    *ms = (int64_t)t * 1000 + frac;
    return 0;
}

int duration_parse(const char *s, int64_t *ms)
{
    int64_t total = 0;
    if (!*s)
        return SW_EINVAL;
    while (*s) {
        if (!isdigit((unsigned char)*s))
            return SW_EINVAL;
        int64_t v = 0;
        while (isdigit((unsigned char)*s)) {
            v = v * 10 + (*s++ - '0');
            if (v > 100000000)
                return SW_EINVAL;
        }
        int64_t unit;
        if (s[0] == 'm' && s[1] == 's')
            unit = 1, s++;
        else if (*s == 's')
            unit = 1000;
        else if (*s == 'm')
            unit = 60 * 1000;
        else if (*s == 'h')
            unit = 3600 * 1000;
        else if (*s == 'd')
            unit = 86400 * 1000;
        else
            return SW_EINVAL;
        s++;
        /* Each part is bounded, but a hostile file can repeat parts. */
        if (v * unit > DURATION_MAX_MS - total)
            return SW_EINVAL;
        total += v * unit;
    }
    *ms = total;
    return 0;
}

void duration_format(int64_t ms, char *out, size_t outlen)
{
    int64_t s = ms / 1000;
    if (s < 60)
        snprintf(out, outlen, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(out, outlen, "%lldm", (long long)(s / 60));
    else if (s < 86400)
        snprintf(out, outlen, "%lldh%lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        snprintf(out, outlen, "%lldd%lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}
