/* The time base's exact definition in __int128 (clang, x86-64 hosts only): the fuzz targets
 * check the header's 64-bit split arithmetic against it, value for value. */
#ifndef CROSSL_FUZZ_REFERENCE_H
#define CROSSL_FUZZ_REFERENCE_H

#include "fuzz_common.h"

typedef __int128 i128;

static inline uint64_t ref_to_phone(const crossl_sync_t *s, uint64_t local)
{
    i128 dl = crossl_sync_i64(local - s->anchor_local);
    return (uint64_t)((i128)s->anchor_phone + dl + dl * s->rate / CROSSL_SYNC_RATE_ONE);
}

static inline uint64_t ref_to_local(const crossl_sync_t *s, uint64_t phone)
{
    i128 dp = crossl_sync_i64(phone - s->anchor_phone);
    return (uint64_t)((i128)s->anchor_local + dp * CROSSL_SYNC_RATE_ONE / (CROSSL_SYNC_RATE_ONE + s->rate));
}

static inline int64_t ref_sample_index(const crossl_sync_t *s, uint64_t local, uint32_t rate)
{
    i128 d = crossl_sync_i64(ref_to_phone(s, local) - s->origin_us), num, n;
    if (rate == 0u) return -1;
    num = d * rate + 500000000;
    if (num < 0) return -1;
    n = num / 1000000000;
    return n > INT64_MAX ? INT64_MAX : (int64_t)n;
}

static inline uint64_t ref_sample_due(const crossl_sync_t *s, int64_t n, uint32_t rate)
{
    if (rate == 0u) return 0u;
    return ref_to_local(s, (uint64_t)((i128)s->origin_us + (i128)n * 1000000000 / rate));
}

static inline int64_t ref_slope(int64_t dp, int64_t dl)
{
    i128 m = ((i128)dp - dl) * CROSSL_SYNC_RATE_ONE / dl;
    return m > CROSSL_SYNC_RATE_ONE ? CROSSL_SYNC_RATE_ONE
         : m < -CROSSL_SYNC_RATE_ONE ? -CROSSL_SYNC_RATE_ONE : (int64_t)m;
}

/* Every query of the time base at one point, against the reference. */
static inline void ref_check(const crossl_sync_t *s, uint64_t local, uint64_t phone, int64_t n,
                             uint32_t rate)
{
    FUZZ_CHECK(s->rate <= CROSSL_SYNC_MAX_RATE && s->rate >= -CROSSL_SYNC_MAX_RATE);
    FUZZ_CHECK(crossl_sync_to_phone(s, local) == ref_to_phone(s, local));
    FUZZ_CHECK(crossl_sync_to_local(s, phone) == ref_to_local(s, phone));
    FUZZ_CHECK(crossl_sync_sample_index(s, local, rate) == ref_sample_index(s, local, rate));
    FUZZ_CHECK(crossl_sync_sample_due(s, n, rate) == ref_sample_due(s, n, rate));
}

#endif
