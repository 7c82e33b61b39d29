"""The C99 half of the time base for crossl_frame.h: beacon codec, clock sync, grid windows.

Rendered from beacon.py and timebase.py (constants, field offsets); frame_c.py includes the text.
"""

from __future__ import annotations

from . import beacon as B
from . import timebase as T

_TEMPLATE = r"""/* ---- Time base (frame format v2): sync beacon, node -> phone clock, grid ----
 * Integer arithmetic only; crossl_edge/wire/timebase.py is the same algorithm in Python. */
#define CROSSL_BEACON_MAGIC0 0x$MAGIC0u /* '$MAGICC0' */
#define CROSSL_BEACON_MAGIC1 0x$MAGIC1u /* '$MAGICC1' */
#define CROSSL_BEACON_VERSION $BVERSIONu
#define CROSSL_BEACON_SIZE $BSIZEu /* header + CRC */
$BOFFSETS
$CONSTANTS
#define CROSSL_SYNC_ADJUSTED $ADJUSTED
#define CROSSL_SYNC_RESYNC $RESYNC

/* A decoded sync beacon (the phone sends it; FRAME_FORMAT.md, "Time base"). */
typedef struct crossl_beacon {
$BMEMBERS
} crossl_beacon_t;

/* Encode a beacon into out[0..cap): CROSSL_BEACON_SIZE or a negative status. */
static inline int32_t crossl_beacon_encode(const crossl_beacon_t *b, uint8_t *out, size_t cap)
{
    if (b == NULL || out == NULL) return CROSSL_FRAME_ERR_INVALID_ARGUMENT;
    if ((b->flags & 0xF0u) != 0u) return CROSSL_FRAME_ERR_BAD_FLAGS;
    if (cap < CROSSL_BEACON_SIZE) return CROSSL_FRAME_ERR_BUFFER_TOO_SMALL;
    out[0] = CROSSL_BEACON_MAGIC0;
    out[1] = CROSSL_BEACON_MAGIC1;
    out[CROSSL_BEACON_OFF_VERSION] = CROSSL_BEACON_VERSION;
$BENCODE
    crossl_frame_put_u32(out + CROSSL_BEACON_SIZE - 4u,
                         crossl_frame_crc32_update(0u, out, CROSSL_BEACON_SIZE - 4u));
    return (int32_t)CROSSL_BEACON_SIZE;
}

/* Decode exactly one beacon: checks size, magic, version, size again, CRC, flags (in order). */
static inline crossl_frame_status_t crossl_beacon_decode(const uint8_t *buf, size_t len,
                                                         crossl_beacon_t *b)
{
    if (buf == NULL || b == NULL) return CROSSL_FRAME_ERR_INVALID_ARGUMENT;
    if (len < CROSSL_BEACON_SIZE) return CROSSL_FRAME_ERR_TRUNCATED;
    if (buf[0] != CROSSL_BEACON_MAGIC0 || buf[1] != CROSSL_BEACON_MAGIC1) {
        return CROSSL_FRAME_ERR_BAD_MAGIC;
    }
    if (buf[CROSSL_BEACON_OFF_VERSION] != CROSSL_BEACON_VERSION) {
        return CROSSL_FRAME_ERR_UNKNOWN_VERSION;
    }
    if (len > CROSSL_BEACON_SIZE) return CROSSL_FRAME_ERR_LENGTH_MISMATCH;
    if (crossl_frame_crc32_update(0u, buf, CROSSL_BEACON_SIZE - 4u) !=
        crossl_frame_get_u32(buf + CROSSL_BEACON_SIZE - 4u)) return CROSSL_FRAME_ERR_BAD_CRC;
    if ((buf[CROSSL_BEACON_OFF_FLAGS] & 0xF0u) != 0u) return CROSSL_FRAME_ERR_BAD_FLAGS;
$BDECODE
    return CROSSL_FRAME_OK;
}

/* A node's estimate of the phone clock; zero it (crossl_sync_init) at boot. */
typedef struct crossl_sync {
    uint8_t synced;
    uint8_t block_n;
    uint16_t epoch;
    int32_t rate_ppb;   /* local clock runs rate_ppb / 1e9 slower than the phone's */
    uint8_t have_prev;
    uint8_t rated;      /* a rate was measured since boot (the first one is taken whole) */
    uint64_t origin_us; /* phone time of grid sample 0 */
    uint64_t anchor_local, anchor_phone;
    uint64_t best_local, best_phone;
    int64_t best_err;
    uint64_t prev_local, prev_phone;
} crossl_sync_t;

static inline void crossl_sync_init(crossl_sync_t *s) { memset(s, 0, sizeof *s); }

/* C99 integer division truncates toward zero: the Python reference does the same. */
static inline uint64_t crossl_sync_to_phone(const crossl_sync_t *s, uint64_t local_us)
{
    int64_t dl = (int64_t)(local_us - s->anchor_local);
    return s->anchor_phone + (uint64_t)dl + (uint64_t)(dl * (int64_t)s->rate_ppb / 1000000000);
}

static inline uint64_t crossl_sync_to_local(const crossl_sync_t *s, uint64_t phone_us)
{
    int64_t dp = (int64_t)(phone_us - s->anchor_phone);
    return s->anchor_local + (uint64_t)(dp * 1000000000 / (1000000000 + (int64_t)s->rate_ppb));
}

/* Take one beacon received at local_us (node clock). Returns CROSSL_SYNC_RESYNC when the
 * estimate was set anew (first beacon, new epoch, error > CROSSL_SYNC_STEP_US), else
 * CROSSL_SYNC_ADJUSTED. Per block of CROSSL_SYNC_BLOCK beacons the least-delayed one re-anchors
 * the map; the rate follows the slope from a reference block minimum (>= MIN_BASELINE old,
 * moved after REF_SPAN) to the newest: the first whole, later with gain 1/RATE_GAIN. */
static inline int crossl_sync_on_beacon(crossl_sync_t *s, const crossl_beacon_t *b,
                                        uint64_t local_us)
{
    int64_t err = s->synced ? (int64_t)(b->phone_time_us - crossl_sync_to_phone(s, local_us)) : 0;
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
    dl = (int64_t)(s->best_local - s->prev_local);
    usable = dl > 0 && dl <= CROSSL_SYNC_MAX_BASELINE_US;
    if (s->have_prev && usable && dl >= CROSSL_SYNC_MIN_BASELINE_US) {
        int64_t dp = (int64_t)(s->best_phone - s->prev_phone);
        int64_t measured = (dp - dl) * 1000000000 / dl;
        int64_t gain = s->rated ? CROSSL_SYNC_RATE_GAIN : 1;
        int64_t rate = s->rate_ppb + (measured - s->rate_ppb) / gain;
        if (rate > CROSSL_SYNC_MAX_RATE_PPB) rate = CROSSL_SYNC_MAX_RATE_PPB;
        if (rate < -CROSSL_SYNC_MAX_RATE_PPB) rate = -CROSSL_SYNC_MAX_RATE_PPB;
        s->rate_ppb = (int32_t)rate;
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

/* Grid sample nearest to local_us (sample n is due at origin + n / rate); -1 before the grid.
 * rate_mhz: the sample rate in millihertz. */
static inline int64_t crossl_sync_sample_index(const crossl_sync_t *s, uint64_t local_us,
                                               uint32_t rate_mhz)
{
    int64_t d = (int64_t)(crossl_sync_to_phone(s, local_us) - s->origin_us);
    int64_t num = d * (int64_t)rate_mhz + 500000000;
    return num < 0 ? -1 : num / 1000000000;
}

/* Local time at which to take grid sample n (program the sampling timer with it). */
static inline uint64_t crossl_sync_sample_due(const crossl_sync_t *s, int64_t n,
                                              uint32_t rate_mhz)
{
    uint64_t phone = s->origin_us + (uint64_t)(n * 1000000000 / (int64_t)rate_mhz);
    return crossl_sync_to_local(s, phone);
}

/* Which grid window a run of consecutive samples completes (window k: samples
 * [k * hop, k * hop + window)); a gap or a step back restarts the run. */
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
    if (g->have && n == g->last) return -1;
    if (g->have && n == g->last + 1) {
        if (g->run < window) g->run++;
    } else {
        g->run = 1u;
    }
    g->have = 1u;
    g->last = n;
    first = n + 1 - (int64_t)window;
    if (g->run >= window && first >= 0 && first % (int64_t)hop == 0) return first / (int64_t)hop;
    return -1;
}
"""

_CTYPE = {"B": ("uint8_t", 8), "H": ("uint16_t", 16), "I": ("uint32_t", 32),
          "Q": ("uint64_t", 64)}


def _beacon_fields(*, encode: bool) -> str:
    lines = []
    for f in B.BEACON_FIELDS:
        if f.const is not None:
            continue
        off, bits = f"CROSSL_BEACON_OFF_{f.name.upper()}", _CTYPE[f.fmt][1]
        if encode:
            lines.append(f"    out[{off}] = b->{f.name};" if bits == 8 else
                         f"    crossl_frame_put_u{bits}(out + {off}, b->{f.name});")
        else:
            lines.append(f"    b->{f.name} = buf[{off}];" if bits == 8 else
                         f"    b->{f.name} = crossl_frame_get_u{bits}(buf + {off});")
    return "\n".join(lines)


def render_sync() -> str:
    """The time-base section of crossl_frame.h."""
    subs = {
        "MAGIC0": f"{B.BEACON_MAGIC[0]:02X}", "MAGIC1": f"{B.BEACON_MAGIC[1]:02X}",
        "MAGICC0": chr(B.BEACON_MAGIC[0]), "MAGICC1": chr(B.BEACON_MAGIC[1]),
        "BVERSION": str(B.BEACON_VERSION), "BSIZE": str(B.BEACON_SIZE),
        "BOFFSETS": "\n".join(f"#define CROSSL_BEACON_OFF_{f.name.upper()} "
                              f"{B.BEACON_OFFSETS[f.name]}u" for f in B.BEACON_FIELDS),
        "CONSTANTS": "\n".join(f"#define CROSSL_{k} {v}" for k, v in
                               T.TIMEBASE_CONSTANTS.items()),
        "ADJUSTED": str(T.SYNC_ADJUSTED), "RESYNC": str(T.SYNC_RESYNC),
        "BMEMBERS": "\n".join(f"    {_CTYPE[f.fmt][0]} {f.name}; /* {f.doc} */"
                              for f in B.BEACON_FIELDS if f.const is None),
        "BENCODE": _beacon_fields(encode=True), "BDECODE": _beacon_fields(encode=False),
    }
    text = _TEMPLATE
    for key in sorted(subs, key=len, reverse=True):   # $BSIZE before $B..., longest first
        text = text.replace(f"${key}", subs[key])
    assert "$" not in text, "unsubstituted placeholder"
    return text
