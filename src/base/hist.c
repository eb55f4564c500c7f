/*
 * Log-linear histograms (HdrHistogram's layout, fixed to one precision and
 * range). Recording is inline in base.h because it runs on every request; this
 * file holds what readers do: bucket bounds, merging, the difference of two
 * readings (a window), counting and quantiles.
 *
 * The one idea: bucket i is the inverse of hist_index. Below 2 * HIST_SUB the
 * shift is 0 and the index is the value; above, index / HIST_SUB - 1 is the
 * shift (the bucket's width is 2^shift) and index % HIST_SUB + HIST_SUB the
 * value's top HIST_SUB_BITS + 1 bits.
 */
#include "base/base.h"

#define GET(c) atomic_load_explicit(&(c), memory_order_relaxed)

static unsigned shift_of(size_t i)
{
    return i < 2 * HIST_SUB ? 0 : (unsigned)(i / HIST_SUB) - 1;
}

uint64_t hist_bucket_low(size_t i)
{
    if (i >= HIST_OVERFLOW)
        return HIST_LIMIT;
    if (i < HIST_SUB)
        return i;
    return (uint64_t)(i % HIST_SUB + HIST_SUB) << shift_of(i);
}

uint64_t hist_bucket_high(size_t i)
{
    if (i >= HIST_OVERFLOW)
        return UINT64_MAX;
    return hist_bucket_low(i) + ((uint64_t)1 << shift_of(i)) - 1;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        uint64_t v = GET(src->n[i]);
        if (v)
            atomic_store_explicit(&dst->n[i], GET(dst->n[i]) + v, memory_order_relaxed);
    }
}

void hist_sub(struct hist *dst, const struct hist *a, const struct hist *b)
{
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        uint64_t x = GET(a->n[i]), y = GET(b->n[i]);
        atomic_store_explicit(&dst->n[i], x > y ? x - y : 0, memory_order_relaxed);
    }
}

uint64_t hist_count(const struct hist *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        n += GET(h->n[i]);
    return n;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    uint64_t n = hist_count(h);
    if (n == 0)
        return 0;
    /* Nearest rank: ceil(q * n), at least 1, at most n; without libm. A NaN
     * fails every comparison and so ranks first. */
    uint64_t rank = 1;
    if (q >= 1) {
        rank = n;
    } else if (q > 0) {
        double r = q * (double)n;
        rank = (uint64_t)r;
        if ((double)rank < r)
            rank++;
        if (rank < 1)
            rank = 1;
        if (rank > n)
            rank = n;
    }
    /* The counters may grow while we walk (a live histogram): the rank is then
     * reached sooner, never missed, and the last bucket is the fallback. */
    uint64_t seen = 0;
    size_t i = 0;
    for (; i < HIST_OVERFLOW; i++) {
        seen += GET(h->n[i]);
        if (seen >= rank)
            break;
    }
    if (i == HIST_OVERFLOW)
        return HIST_LIMIT;
    uint64_t lo = hist_bucket_low(i);
    return lo + (hist_bucket_high(i) - lo) / 2;
}

uint64_t hist_count_le(const struct hist *h, uint64_t bound)
{
    uint64_t n = 0;
    for (size_t i = 0; i < HIST_BUCKETS && hist_bucket_high(i) <= bound; i++)
        n += GET(h->n[i]);
    return n;
}
