/*
 * Sortable ids: a UTC time to the millisecond and a random suffix, so that
 * ids made anywhere sort roughly by time and a listing of them reads as a
 * history. Within one process they sort exactly: the last id made is
 * remembered, and an id that would not sort after it (the same millisecond, or
 * a clock stepped back) keeps its time and takes the next suffix, as ULID's
 * monotonic mode does. The suffix starts below 2^23, so at least 2^23 ids fit
 * in one millisecond before the time has to move on by one.
 */
#include "base/base.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define SUFFIX_MAX 0xffffffu

/* The one piece of process-wide state in base: the order of ids is a
 * property of the process, whichever thread asks. */
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_ms = -1;
static uint32_t last_suffix;

static uint32_t random_start(void)
{
    unsigned char b[3];
    if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
        /* No entropy yet (early boot): ids still differ between processes. */
        uint32_t v = (uint32_t)getpid() * 2654435761u ^ (uint32_t)time_mono_ms();
        memcpy(b, &v, sizeof(b));
    }
    return ((uint32_t)b[0] << 16 | (uint32_t)b[1] << 8 | b[2]) & (SUFFIX_MAX >> 1);
}

int id_new_at(const char *prefix, int64_t now_ms, char *buf, size_t len)
{
    size_t plen = strlen(prefix);
    if (len < ID_LEN(plen) + 1)
        return SW_EINVAL;
    uint32_t start = random_start(), suffix;
    int64_t ms = now_ms < 0 ? 0 : now_ms;
    pthread_mutex_lock(&last_lock);
    if (ms > last_ms) {
        suffix = start;
    } else {
        ms = last_ms;
        suffix = last_suffix + 1;
        if (suffix > SUFFIX_MAX) {
            ms++;
            suffix = start;
        }
    }
    last_ms = ms;
    last_suffix = suffix;
    pthread_mutex_unlock(&last_lock);
    char iso[40];
    time_format_iso(ms, iso, sizeof(iso));
    /* 2026-11-25T08:25:06.123Z → PREFIX-20261125-082506-123-9f3a1c */
    int n = snprintf(buf, len, "%s-%.4s%.2s%.2s-%.2s%.2s%.2s-%.3s-%06x", prefix, iso, iso + 5,
                     iso + 8, iso + 11, iso + 14, iso + 17, iso + 20, (unsigned)suffix);
    return n == (int)ID_LEN(plen) ? 0 : SW_EINVAL;
}

int id_new(const char *prefix, char *buf, size_t len)
{
    return id_new_at(prefix, time_now_ms(), buf, len);
}
