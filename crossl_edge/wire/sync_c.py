"""The C99 half of the time base for crossl_frame.h: clock sync and grid windows (overflow-free).

Rendered from timebase.py (constants) with message_c.py's beacon and hello codecs; frame_c.py
includes the text.
"""

from __future__ import annotations

from . import timebase as T
from .message_c import render_messages

_TEMPLATE = r"""/* ---- Time base (format v2): beacon, hello, node clock -> phone clock, grid ----
 * Integer arithmetic only; crossl_edge/wire/timebase.py is the normative definition (exact
 * integers, division truncating toward zero, clock values modulo 2^64, stated saturation).
 * Every product below is split (a = q * d + r) so that no int64_t intermediate can overflow
 * for any input: any gap, any u64 clock, any u32 rate. Invariant: |rate| <=
 * CROSSL_SYNC_MAX_RATE (crossl_sync_on_beacon keeps it; never write rate yourself). */
$MESSAGES
$CONSTANTS
#define CROSSL_SYNC_ADJUSTED $ADJUSTED
#define CROSSL_SYNC_RESYNC $RESYNC

/* A node's estimate of the phone clock; zero it (crossl_sync_init) at boot. */
typedef struct crossl_sync {
    uint8_t synced;
    uint8_t block_n;
    uint16_t epoch;
    int32_t rate;       /* 1/32 ppb: phone time = local time x (1 + rate / CROSSL_SYNC_RATE_ONE) */
    uint8_t have_prev;
    uint8_t rated;      /* a rate was measured since boot (the first one is taken whole) */
    uint64_t origin_us; /* phone time of grid sample 0 */
    uint64_t anchor_local, anchor_phone;
    uint64_t best_local, best_phone;
    int64_t best_err;
    uint64_t prev_local, prev_phone;
} crossl_sync_t;

static inline void crossl_sync_init(crossl_sync_t *s) { memset(s, 0, sizeof *s); }

/* (int64_t)x without implementation-defined conversion: the u64 difference of two clock
 * readings as a signed distance (two's complement, as Python's _i64). */
static inline int64_t crossl_sync_i64(uint64_t x)
{ return x <= (uint64_t)INT64_MAX ? (int64_t)x : -(int64_t)(~x) - 1; }

/* floor(t * 1e9 / den) for t < 32 * den, den < 2^44: long division in base 1000, so every
 * intermediate stays below 1000 * den. */
static inline uint64_t crossl_sync_mul1e9_div(uint64_t t, uint64_t den)
{
    uint64_t res = t / den, x = t % den;
    int k;
    for (k = 0; k < 3; k++) {
        x *= 1000u;
        res = res * 1000u + x / den;
        x %= den;
    }
    return res;
}

/* trunc(x * RATE_ONE / den) for |x| < den <= 2^35 (RATE_ONE = 32e9), by magnitude. */
static inline int64_t crossl_sync_scale(int64_t x, int64_t den)
{
    uint64_t mag = x < 0 ? (uint64_t)(-(x + 1)) + 1u : (uint64_t)x;
    int64_t q = (int64_t)crossl_sync_mul1e9_div(mag * 32u, (uint64_t)den);
    return x < 0 ? -q : q;
}

/* trunc(d * rate / RATE_ONE) for |rate| <= MAX_RATE and any d: d = q * 32e9 + r,
 * r = r1 * 1e5 + r0, r1 * rate = a1 * 320000 + a0; every term has the sign of d * rate. */
static inline int64_t crossl_sync_mul_rate(int64_t d, int32_t rate)
{
    int64_t q = d / CROSSL_SYNC_RATE_ONE, r = d % CROSSL_SYNC_RATE_ONE;
    int64_t r1 = r / 100000, r0 = r % 100000, a = r1 * (int64_t)rate;
    return q * (int64_t)rate + a / 320000 +
           (a % 320000 * 100000 + r0 * (int64_t)rate) / CROSSL_SYNC_RATE_ONE;
}

/* Phone time of local time local_us: anchor_phone + dl + trunc(dl * rate / RATE_ONE), mod 2^64. */
static inline uint64_t crossl_sync_to_phone(const crossl_sync_t *s, uint64_t local_us)
{
    int64_t dl = crossl_sync_i64(local_us - s->anchor_local);
    return s->anchor_phone + (uint64_t)dl + (uint64_t)crossl_sync_mul_rate(dl, s->rate);
}

/* Local time of phone time phone_us: anchor_local + trunc(dp * RATE_ONE / (RATE_ONE + rate)),
 * mod 2^64; dp = q * den + r: q * RATE_ONE wraps like the exact value, r goes to scale(). */
static inline uint64_t crossl_sync_to_local(const crossl_sync_t *s, uint64_t phone_us)
{
    int64_t dp = crossl_sync_i64(phone_us - s->anchor_phone);
    int64_t den = CROSSL_SYNC_RATE_ONE + (int64_t)s->rate;
    int64_t q = dp / den, r = dp % den;
    return s->anchor_local + (uint64_t)q * (uint64_t)CROSSL_SYNC_RATE_ONE +
           (uint64_t)crossl_sync_scale(r, den);
}

/* The measured rate trunc((dp - dl) * RATE_ONE / dl) saturated at +-RATE_ONE, dl in (0, 1e9]. */
static inline int64_t crossl_sync_slope(int64_t dp, int64_t dl)
{
    if (dp >= 2 * dl) return CROSSL_SYNC_RATE_ONE;  /* (dp - dl) / dl >= 1 */
    if (dp <= 0) return -CROSSL_SYNC_RATE_ONE;      /* (dp - dl) / dl <= -1 */
    return crossl_sync_scale(dp - dl, dl);         /* |dp - dl| < dl */
}

/* Take one beacon received at local_us (node clock). Returns CROSSL_SYNC_RESYNC when the
 * estimate was set anew (first beacon, new epoch, error > CROSSL_SYNC_STEP_US), else
 * CROSSL_SYNC_ADJUSTED. Per block of CROSSL_SYNC_BLOCK beacons the least-delayed one re-anchors
 * the map; the rate follows the slope from a reference block minimum (>= MIN_BASELINE old,
 * moved after REF_SPAN) to the newest: the first whole, later with gain 1/RATE_GAIN. */
static inline int crossl_sync_on_beacon(crossl_sync_t *s, const crossl_beacon_t *b,
                                        uint64_t local_us)
{
    int64_t err = s->synced ? crossl_sync_i64(b->phone_time_us - crossl_sync_to_phone(s, local_us))
                            : 0;
    int64_t dl;
    int usable;
    if (!s->synced || b->epoch != s->epoch || err > CROSSL_SYNC_STEP_US ||
        err < -CROSSL_SYNC_STEP_US) {
        s->synced = 1u;
        s->epoch = b->epoch;
        s->origin_us = b->origin_us;
        s->anchor_local = local_us;
        s->anchor_phone = b->phone_time_us;
        s->block_n = 0u;
        s->have_prev = 0u;
        return CROSSL_SYNC_RESYNC;
    }
    if (s->block_n == 0u || err > s->best_err) {
        s->best_local = local_us;
        s->best_phone = b->phone_time_us;
        s->best_err = err;
    }
    s->block_n++;
    if (s->block_n < CROSSL_SYNC_BLOCK) return CROSSL_SYNC_ADJUSTED;
    dl = crossl_sync_i64(s->best_local - s->prev_local);
    usable = dl > 0 && dl <= CROSSL_SYNC_MAX_BASELINE_US;
    if (s->have_prev && usable && dl >= CROSSL_SYNC_MIN_BASELINE_US) {
        int64_t dp = crossl_sync_i64(s->best_phone - s->prev_phone);
        int64_t measured = crossl_sync_slope(dp, dl);
        int64_t gain = s->rated ? CROSSL_SYNC_RATE_GAIN : 1;
        int64_t rate = s->rate + (measured - s->rate) / gain;
        if (rate > CROSSL_SYNC_MAX_RATE) rate = CROSSL_SYNC_MAX_RATE;
        if (rate < -CROSSL_SYNC_MAX_RATE) rate = -CROSSL_SYNC_MAX_RATE;
        s->rate = (int32_t)rate;
        s->rated = 1u;
    }
    if (!s->have_prev || !usable || dl > CROSSL_SYNC_REF_SPAN_US) {
        s->prev_local = s->best_local;
        s->prev_phone = s->best_phone;
        s->have_prev = 1u;
    }
    s->anchor_local = s->best_local;
    s->anchor_phone = s->best_phone;
    s->block_n = 0u;
    return CROSSL_SYNC_ADJUSTED;
}

/* Grid sample nearest to local_us: floor((d * rate_mhz + 5e8) / 1e9) for d = to_phone - origin
 * (ties round up); -1 before the grid or for rate_mhz 0; saturates at INT64_MAX. Split
 * d = q * 1e9 + r: r * rate_mhz < 4.3e18 fits, q * rate_mhz is checked before it is formed. */
static inline int64_t crossl_sync_sample_index(const crossl_sync_t *s, uint64_t local_us,
                                               uint32_t rate_mhz)
{
    int64_t d = crossl_sync_i64(crossl_sync_to_phone(s, local_us) - s->origin_us);
    uint64_t q, lo;
    if (rate_mhz == 0u) return -1;
    if (d < 0) { /* d * rate + 5e8 >= 0 (sample 0) iff |d| <= 5e8 / rate */
        uint64_t mag = (uint64_t)(-(d + 1)) + 1u;
        return mag <= 500000000u / rate_mhz ? 0 : -1;
    }
    q = (uint64_t)d / 1000000000u;
    lo = ((uint64_t)d % 1000000000u * rate_mhz + 500000000u) / 1000000000u;
    if (q > ((uint64_t)INT64_MAX - lo) / rate_mhz) return INT64_MAX;
    return (int64_t)(q * rate_mhz + lo);
}

/* Local time at which to take grid sample n (program the sampling timer with it): the phone
 * time origin + trunc(n * 1e6 / (rate_mhz / 1e3)) mapped by crossl_sync_to_local; 0 for rate 0.
 * n = q * rate + r: |r| * 1e9 < 4.3e18 fits, q * 1e9 wraps like the exact value. */
static inline uint64_t crossl_sync_sample_due(const crossl_sync_t *s, int64_t n,
                                              uint32_t rate_mhz)
{
    int64_t q, r;
    if (rate_mhz == 0u) return 0u;
    q = n / (int64_t)rate_mhz;
    r = n % (int64_t)rate_mhz;
    return crossl_sync_to_local(s, s->origin_us + (uint64_t)q * 1000000000u +
                                       (uint64_t)(r * 1000000000 / (int64_t)rate_mhz));
}

/* Which grid window a run of consecutive samples completes (window k: samples
 * [k * hop, k * hop + window)); a gap or a step back restarts the run. A negative n, or a
 * window or hop of 0, is no grid sample: the run restarts and -1 is returned. */
typedef struct crossl_grid {
    uint8_t have;
    uint32_t run;
    int64_t last;
} crossl_grid_t;

/* Sample n was stored in slot n % window: the window it completes (>= 0), or -1. */
static inline int64_t crossl_grid_push(crossl_grid_t *g, int64_t n, uint32_t window,
                                       uint32_t hop)
{
    int64_t first;
    if (n < 0 || window == 0u || hop == 0u) {
        g->have = 0u;
        g->run = 0u;
        return -1;
    }
    if (g->have && n == g->last) return -1;
    if (g->have && n - 1 == g->last) {
        if (g->run < window) g->run++;
    } else {
        g->run = 1u;
    }
    g->have = 1u;
    g->last = n;
    first = n - (int64_t)(window - 1u);
    if (g->run >= window && first >= 0 && first % (int64_t)hop == 0) return first / (int64_t)hop;
    return -1;
}
"""

def render_sync() -> str:
    """The time-base section of crossl_frame.h."""
    subs = {
        "MESSAGES": render_messages(),
        "CONSTANTS": "\n".join(f"#define CROSSL_{k} " + (f"INT64_C({v})" if v >= 2**31 else str(v))
                               for k, v in T.TIMEBASE_CONSTANTS.items()),
        "ADJUSTED": str(T.SYNC_ADJUSTED), "RESYNC": str(T.SYNC_RESYNC),
    }
    text = _TEMPLATE
    for key in sorted(subs, key=len, reverse=True):
        text = text.replace(f"${key}", subs[key])
    return text
