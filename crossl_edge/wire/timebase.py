"""The network's time base: node clock -> phone clock from beacons, and the phone's sample grid.

The normative integer definition (FRAME_FORMAT.md quotes this source): exact integers, division
truncating toward zero (``_tdiv``, as C99), clock values reduced modulo 2^64, the stated clamps;
the C twin in crossl_frame.h computes the same numbers bit for bit without 128-bit arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

PPB: Final[int] = 1_000_000_000
SYNC_BLOCK: Final[int] = 8              # beacons per min-delay block
SYNC_STEP_US: Final[int] = 500_000      # |error| beyond this: re-synchronise (step)
SYNC_RATE_GAIN: Final[int] = 4          # rate += (measured - rate) / GAIN, per block
SYNC_RATE_PER_PPB: Final[int] = 32             # rate unit: 1/32 ppb (30 days: < 0.1 ms)
SYNC_RATE_ONE: Final[int] = PPB * SYNC_RATE_PER_PPB   # the map's slope is 1 + rate / RATE_ONE
SYNC_MAX_RATE: Final[int] = 50_000_000 * SYNC_RATE_PER_PPB  # +-5 %: RC oscillators included
SYNC_MIN_BASELINE_US: Final[int] = 16_000_000   # rate updates need this much history ...
SYNC_REF_SPAN_US: Final[int] = 64_000_000       # ... and the reference point moves after this
SYNC_MAX_BASELINE_US: Final[int] = 1_000_000_000  # older block minima are not used for the rate
SYNC_ADJUSTED: Final[int] = 0
SYNC_RESYNC: Final[int] = 1
TIMEBASE_CONSTANTS: Final[dict[str, int]] = {
    "SYNC_BLOCK": SYNC_BLOCK, "SYNC_STEP_US": SYNC_STEP_US, "SYNC_RATE_GAIN": SYNC_RATE_GAIN,
    "SYNC_RATE_PER_PPB": SYNC_RATE_PER_PPB, "SYNC_RATE_ONE": SYNC_RATE_ONE,
    "SYNC_MAX_RATE": SYNC_MAX_RATE, "SYNC_MIN_BASELINE_US": SYNC_MIN_BASELINE_US,
    "SYNC_REF_SPAN_US": SYNC_REF_SPAN_US, "SYNC_MAX_BASELINE_US": SYNC_MAX_BASELINE_US}
_U64 = (1 << 64) - 1
I64_MAX: Final[int] = (1 << 63) - 1


def _tdiv(a: int, b: int) -> int:
    """a / b rounded toward zero, as C99 integer division."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _i64(x: int) -> int:
    """The int64 value of a uint64 difference (C: (int64_t)(a - b))."""
    x &= _U64
    return x - (1 << 64) if x >> 63 else x


@dataclass
class SyncState:
    """A node's estimate of the phone clock (mirror of crossl_sync_t)."""

    synced: int = 0
    block_n: int = 0
    epoch: int = 0
    rate: int = 0           # 1/32 ppb: phone time runs (1 + rate / SYNC_RATE_ONE) x local
    have_prev: int = 0
    rated: int = 0          # a rate was measured since boot (the first one is taken whole)
    origin_us: int = 0
    anchor_local: int = 0
    anchor_phone: int = 0
    best_local: int = 0
    best_phone: int = 0
    best_err: int = 0
    prev_local: int = 0
    prev_phone: int = 0


def to_phone(s: SyncState, local_us: int) -> int:
    """Phone time (us) of the node's local time ``local_us`` under the current estimate (any
    distance from the anchor: the exact value modulo 2^64)."""
    dl = _i64(local_us - s.anchor_local)
    return (s.anchor_phone + dl + _tdiv(dl * s.rate, SYNC_RATE_ONE)) & _U64


def to_local(s: SyncState, phone_us: int) -> int:
    """Inverse of ``to_phone`` (to within 1 us): when the local clock reads phone time (exact
    quotient truncated toward zero, modulo 2^64)."""
    dp = _i64(phone_us - s.anchor_phone)
    return (s.anchor_local + _tdiv(dp * SYNC_RATE_ONE, SYNC_RATE_ONE + s.rate)) & _U64


def on_beacon(s: SyncState, *, epoch: int, phone_us: int, origin_us: int,
              local_us: int) -> int:
    """Take one beacon received at ``local_us``; SYNC_RESYNC when the estimate was (re)set.

    First beacon, a new epoch, or an error beyond SYNC_STEP_US: step onto it (rate kept; block
    and rate reference dropped; this beacon opens no block). Otherwise per block of SYNC_BLOCK
    beacons keep the one with the least delay (largest phone - mapped local, the first on ties;
    delays only ever add, so this rejects jitter) and re-anchor there. The rate follows the
    slope from the reference block minimum to the newest, over dl in local time with
    SYNC_MIN_BASELINE_US <= dl <= SYNC_MAX_BASELINE_US: the first slope after boot whole,
    later ones with gain 1/SYNC_RATE_GAIN; the reference moves to the newest minimum when
    there is none, dl is unusable, or dl > SYNC_REF_SPAN_US."""
    err = _i64(phone_us - to_phone(s, local_us)) if s.synced else 0
    if not s.synced or epoch != s.epoch or abs(err) > SYNC_STEP_US:
        s.synced, s.epoch, s.origin_us = 1, epoch, origin_us
        s.anchor_local, s.anchor_phone = local_us, phone_us
        s.block_n = s.have_prev = 0
        return SYNC_RESYNC
    if s.block_n == 0 or err > s.best_err:
        s.best_local, s.best_phone, s.best_err = local_us, phone_us, err
    s.block_n += 1
    if s.block_n < SYNC_BLOCK:
        return SYNC_ADJUSTED
    dl = _i64(s.best_local - s.prev_local)
    usable = 0 < dl <= SYNC_MAX_BASELINE_US
    if s.have_prev and usable and dl >= SYNC_MIN_BASELINE_US:
        dp = _i64(s.best_phone - s.prev_phone)
        measured = max(-SYNC_RATE_ONE, min(SYNC_RATE_ONE,       # saturated at +-100 %
                                           _tdiv((dp - dl) * SYNC_RATE_ONE, dl)))
        gain = SYNC_RATE_GAIN if s.rated else 1
        rate = s.rate + _tdiv(measured - s.rate, gain)
        s.rate = max(-SYNC_MAX_RATE, min(SYNC_MAX_RATE, rate))
        s.rated = 1
    if not s.have_prev or not usable or dl > SYNC_REF_SPAN_US:
        s.prev_local, s.prev_phone, s.have_prev = s.best_local, s.best_phone, 1
    s.anchor_local, s.anchor_phone = s.best_local, s.best_phone
    s.block_n = 0
    return SYNC_ADJUSTED


def sample_index(s: SyncState, local_us: int, rate_mhz: int) -> int:
    """Grid sample nearest to ``local_us`` (sample n is due at origin + n / rate); -1 before
    the grid or with ``rate_mhz`` 0 (the modality's sample rate in millihertz, a u32);
    saturates at 2^63 - 1. Ties round up: (d * rate_mhz + PPB / 2) floor-divided by PPB."""
    if rate_mhz <= 0:
        return -1
    d = _i64(to_phone(s, local_us) - s.origin_us)
    num = d * rate_mhz + PPB // 2
    return -1 if num < 0 else min(num // PPB, I64_MAX)


def sample_due_phone(origin_us: int, n: int, rate_mhz: int) -> int:
    """Phone time (us) at which grid sample ``n`` (an int64) is due; ``rate_mhz`` >= 1."""
    return (origin_us + _tdiv(n * PPB, rate_mhz)) & _U64


def sample_due_local(s: SyncState, n: int, rate_mhz: int) -> int:
    """Local time at which the node should take grid sample ``n`` (disciplined sampling); 0
    when ``rate_mhz`` is 0 (no grid)."""
    if rate_mhz <= 0:
        return 0
    return to_local(s, sample_due_phone(s.origin_us, n, rate_mhz))


@dataclass
class GridWindower:
    """Which grid window a run of consecutive samples completes (mirror of crossl_grid_t).

    Window k holds grid samples [k * hop, k * hop + window). A gap or a step back in the sample
    index (lost samples, a re-sync) restarts the run: a window is only ever complete. A negative
    index, or a window or hop of 0, is no grid sample: the run restarts and nothing completes."""

    window: int
    hop: int
    have: int = 0
    last: int = 0
    run: int = 0

    def push(self, n: int) -> int:
        """Sample ``n`` was stored in slot n % window; the window it completes, or -1."""
        if n < 0 or self.window <= 0 or self.hop <= 0:
            self.reset()
            return -1
        if self.have and n == self.last:
            return -1                      # the same slot again (timer jitter): overwritten
        self.run = min(self.run + 1, self.window) if self.have and n == self.last + 1 else 1
        self.have, self.last = 1, n
        first = n + 1 - self.window
        if self.run >= self.window and first >= 0 and first % self.hop == 0:
            return first // self.hop
        return -1

    def reset(self) -> None:
        self.have = self.run = 0
