"""FRAME_FORMAT.md sections on frame version 2, the sync beacon, the hello and the time base.

Rendered from frame.py, beacon.py, hello.py and timebase.py (timebase_spec.py quotes its source);
frame_doc.py places them in the document.
"""

from __future__ import annotations

import numpy as np

from . import beacon as B
from . import frame as F
from . import hello as H
from . import timebase as T
from .timebase_spec import conformance_section, integer_rules

_TYPE = {"2s": "2 x u8", "B": "u8", "H": "u16", "I": "u32", "Q": "u64"}


def _table(fields: tuple[F.Field, ...], offsets: dict[str, int], *,
           latent_at: int | None, size: int = B.BEACON_HEADER_SIZE) -> list[str]:
    rows = ["| offset | size | type | field | meaning |", "|---:|---:|---|---|---|"]
    for f in fields:
        const = f" Always `{f.const!r}`." if f.const is not None else ""
        rows.append(f"| {offsets[f.name]} | {f.size} | {_TYPE[f.fmt]} | `{f.name}` | "
                    f"{f.doc}{const} |")
    if latent_at is not None:
        rows.append(f"| {latent_at} | length x itemsize | dtype | `latent` | As in version 1. |")
        rows.append(f"| {latent_at} + length x itemsize | 4 | u32 | `crc32` | As in version 1. |")
    else:
        rows.append(f"| {size} | 4 | u32 | `crc32` | CRC-32 of bytes 0-{size - 1}, as for "
                    "frames. |")
    return rows


def _v2_example() -> list[str]:
    f = F.LatentFrame(modality_id=2, seq=7, timestamp_us=1_000_000, fingerprint=0x1234ABCD,
                      dtype=F.LatentDType.INT8, latent=np.array([1, -1, 127, -128], np.int8),
                      version=2, window=41, epoch=0x0102, boot=3)
    b = B.Beacon(epoch=0x0102, phone_time_us=420_000_000, origin_us=10_000_000,
                 fingerprint=0x1234ABCD, beacon_seq=9)
    return ["The example frame of \"Example (version 1)\" below, as version 2 with "
            "`window=41, epoch=0x0102, boot=3` "
            f"({len(F.encode_frame(f))} bytes):", "", "```", F.encode_frame(f).hex(" "), "```",
            "", "`Beacon(epoch=0x0102, phone_time_us=420_000_000, origin_us=10_000_000, "
            f"fingerprint=0x1234ABCD, beacon_seq=9)` ({B.BEACON_SIZE} bytes):", "", "```",
            B.encode_beacon(b).hex(" "), "```"]


def _v2_table() -> list[str]:
    """The version 2 layout; the flags row says what holds in version 2."""
    rows = _table(F.FIELDS_V2, F.OFFSETS_BY_VERSION[2], latent_at=F.HEADER_SIZE_BY_VERSION[2])
    return [r.replace("all reserved (0) in v1.", "none is defined in version 2 either: "
                      "encoders write 0.") if "`flags`" in r else r for r in rows]


def _bootstrap() -> list[str]:
    return [
        "## Bootstrap: the node's hello (node -> phone)", "",
        f"**What a node sends before its first beacon (the one rule).** From boot, and again "
        f"after every restart (a node keeps no sync state across reboots), until it has taken "
        f"its first valid beacon, a node sends a {H.HELLO_SIZE}-byte **hello** every "
        f"{H.HELLO_INTERVAL_US / 1e6:g} s (`HELLO_INTERVAL_US`, `CROSSL_HELLO_INTERVAL_US`) on "
        "the link its frames use, and sends the windows it completes meanwhile as **version 1** "
        "frames (free-running, every `hop` samples; the phone fuses them by `seq` as a format-1 "
        "node's). From its first beacon on it sends hellos no more and only version 2 frames, "
        "beginning with the next grid window all of whose samples it took after that beacon. A "
        "phone that answers hellos makes the version 1 phase one round trip long: a node "
        "normally sends no version 1 frame at all. In C: `crossl_hello_encode`; the generated "
        "`node_example.c` leaves the hello to the application's loop (send one every "
        "`CROSSL_HELLO_INTERVAL_US` while `!node.sync.synced`).", "",
        "**What the phone does.** `crossl-edge serve` answers a hello whose CRC, version, flags "
        "and `fingerprint` (its bundle's) are valid with a beacon at once (at most one per "
        "0.1 s), over the same transport: for UDP, to every address heard from, which now "
        "includes the hello's sender. It counts hellos and rejected hellos (`serve --json`, "
        "`beacons`), and never passes a hello to the aggregator. Magic \"CH\" tells a hello "
        "from a frame (\"CL\") and a beacon (\"CB\"). Decoding runs the beacon's checks in the "
        "beacon's order.", "",
        *_table(H.HELLO_FIELDS, H.HELLO_OFFSETS, latent_at=None, size=H.HELLO_HEADER_SIZE), "",
        "Golden file: `tests/golden/hello_v2.bin` (`Hello(fingerprint=0x1234ABCD, boot=3, "
        "hello_seq=9, local_us=1_000_000)`):", "", "```",
        H.encode_hello(H.Hello(fingerprint=0x1234ABCD, boot=3, hello_seq=9,
                               local_us=1_000_000)).hex(" "), "```", "",
    ]


def _node_rules() -> list[str]:
    return [
        "**Beacons a node ignores.** A beacon that fails decoding, or whose `fingerprint` is "
        "not the node's bundle's (`ERR_BEACON` in the generated node), changes nothing: no "
        "re-sync, no block entry. `epoch` is only compared for equality: any change, "
        "65535 -> 0 included, is a new epoch. `beacon_seq` is for diagnostics only.", "",
        "**Before the origin, and wraps.** Grid sample n >= 0 exists from `origin_us` on; a "
        "sample whose `sample_index` is -1 (more than half a period before the origin) is "
        "stored nowhere and sends nothing, so window 0 is the first a node can send. The "
        "frame's u32 `window` carries the grid window index k modulo 2^32 (at one window a "
        "second it wraps after 136 years); `seq` wraps as in version 1.", "",
        "**Phone side.** The aggregator keys windows by (`epoch`, `window`), counts a node "
        "whose `boot` changed as a restart, and treats version 1 frames as before (by `seq`; a "
        "`seq` that falls back by 16 or more is a restart, and the memory of emitted windows "
        "of version 1 is cleared so the new run is fused, not called late). In `serve`'s JSON "
        "lines, `seq` is the grid window index `k` for a version 2 window (with its `epoch`), "
        "the nodes' `seq` for a version 1 window (`epoch` null).", "",
    ]


def _sync_rules() -> list[str]:
    return [
        "**Node clock -> phone clock.** A node maps its local time L to phone time "
        "`P = anchor_phone + (L - anchor_local) * (1 + rate / SYNC_RATE_ONE)` "
        f"(`rate` in 1/{T.SYNC_RATE_PER_PPB} ppb; `to_phone`, `crossl_sync_to_phone`), and "
        "back with `to_local`; the integer definition below fixes the rounding. On each beacon "
        "(phone time P, received at local time L) it computes `err = P - to_phone(L)` (0 when "
        "not synced) and:",
        f"- **re-synchronises** on the first beacon, a new `epoch`, or |err| > "
        f"{T.SYNC_STEP_US:,} us: the anchor steps onto this beacon (`anchor_local = L`, "
        "`anchor_phone = P`), `epoch` and `origin_us` are taken from it, the rate is kept "
        "(and so is whether one was ever measured), the block and the rate reference are "
        "dropped (`block_n = 0`, no reference), and the node drops the window in progress "
        "(grid run reset). The re-sync beacon opens no block: the next beacon is the first of "
        "the next block;",
        f"- otherwise counts the beacon into the current **block** of {T.SYNC_BLOCK}: the "
        "block keeps its beacon with the largest `err` (the least delayed: delays only add; "
        "the first one on ties). When the block is full, with `dl = best_local - ref_local` "
        "(**local** time from the reference minimum to this block's minimum) and `dp` the same "
        "in phone time: when there is a reference and "
        f"{T.SYNC_MIN_BASELINE_US / 1e6:g} s <= dl <= {T.SYNC_MAX_BASELINE_US / 1e6:g} s, "
        "`measured = (dp - dl) * SYNC_RATE_ONE / dl` (truncated, saturated at +-100 %); the "
        "first measurement since boot becomes the rate whole, later ones move it by "
        f"`(measured - rate) / {T.SYNC_RATE_GAIN}` (truncated); the rate is clamped to +-"
        f"{T.SYNC_MAX_RATE // T.SYNC_RATE_PER_PPB / 1e7:g} %. The reference then moves to "
        "this block's minimum when there was none, when dl is outside (0, "
        f"{T.SYNC_MAX_BASELINE_US / 1e6:g} s] (older minima are not used), or when dl > "
        f"{T.SYNC_REF_SPAN_US / 1e6:g} s (`SYNC_REF_SPAN_US`, local time since the reference "
        "minimum). Finally the map re-anchors on this block's minimum and a new block starts.",
        "",
    ]


def time_base_sections() -> list[str]:
    """Markdown lines: version 2 layout, sync beacon, hello, time base (rules and constants)."""
    h2, oh2 = F.HEADER_SIZE_BY_VERSION[2], F.OVERHEAD_BY_VERSION[2]
    consts = [f"| `{k}` | `CROSSL_{k}` | {v:,} |" for k, v in T.TIMEBASE_CONSTANTS.items()]
    return [
        "## Version 2: frames on the phone's time base", "",
        f"Version 2 is the version 1 header (byte 2 reads 2) followed by three fields, then the "
        f"latent and the CRC as before: header {h2} bytes, overhead {oh2} bytes, **8 bytes more "
        f"per frame** (a 96-d int8 frame is {F.frame_size(96, 'int8', version=2)} bytes, still "
        f"one 244-byte BLE notification). The latent starts at offset {h2}, a multiple of 8.",
        "", *_v2_table(), "",
        "- `seq` keeps counting the node's windows since it booted (gaps = lost windows); the "
        "phone fuses version 2 frames by **(`epoch`, `window`)**, never by `seq`.",
        "- `timestamp_us` stays the node's own clock at the window's last sample (diagnostics).",
        "- `boot` changes at every restart of the node (a counter kept in flash, or random at "
        "boot); the phone counts a change as a restart.",
        "- Which version a node sends when: see \"Bootstrap\" below. The phone accepts both at "
        "once (a network may mix old and new nodes).", "",
        "## Sync beacon (phone -> nodes)", "",
        f"The phone sends a {B.BEACON_SIZE}-byte beacon to every node every second (`crossl-edge "
        "serve --beacon 1.0`) and at once in answer to a hello, over the transport the frames "
        "use: a UDP datagram to the address each node sends from, a COBS packet on a serial "
        "line, a write to the nodes' BLE characteristic. Magic \"CB\" tells it from a latent "
        "frame. Decoding checks, in this order (same reasons as frames): shorter than "
        f"{B.BEACON_SIZE} bytes (`TRUNCATED`), magic, version, longer than {B.BEACON_SIZE} "
        "bytes (`LENGTH_MISMATCH`), CRC, flags. The length is judged in two steps on purpose: "
        "a later beacon version may be longer, and its receiver must say `UNKNOWN_VERSION`, "
        "not `LENGTH_MISMATCH`.", "",
        *_table(B.BEACON_FIELDS, B.BEACON_OFFSETS, latent_at=None), "",
        *_bootstrap(),
        "## Time base", "",
        "**Grid.** Each epoch has an origin on the phone's clock. Grid sample n of a modality "
        "sampled at f Hz (`rate_mhz = round(1000 f)`) is due at phone time "
        "`sample_due_phone(n) = origin_us + trunc(n * 1e9 / rate_mhz)`; window k is grid "
        "samples `[k * hop, k * hop + window)` (hop = window: windows as in training). Window "
        "k therefore covers the same stretch of time on every node, whatever its boot time.",
        "", *_sync_rules(),
        "**Sampling and windows.** A synced node takes sample n when its timer reaches "
        "`sample_due_local(n) = to_local(sample_due_phone(n))` (`crossl_sync_sample_due`, "
        "disciplined sampling), stores each sample in slot `n % window` of its ring under "
        "`n = sample_index(L) = floor((to_phone(L) - origin_us) * rate_mhz / 1e9 + 1/2)` "
        "(`crossl_sync_sample_index`: the nearest grid sample, ties to the later one, -1 "
        "before the grid), and sends window k when a run of consecutive grid samples completes "
        "it (`crossl_grid_push`). A gap (lost samples, a re-sync that steps forward) or a step "
        "back restarts the run, so a version 2 window is sent only when all its samples are "
        "present.", "", *_node_rules(),
        "**Tolerance.** A sample lands in the right grid slot while the node's estimate of the "
        "phone clock is within half a sample period (50 ms at 10 Hz, 0.7 ms at 700 Hz). "
        "Delays are not compensated: a node's estimate runs late by the smallest beacon delay "
        "it saw (one connection event at most), the same for every node on the same link "
        "settings. Without beacons the grid drifts by the rate's error only: the arithmetic "
        "is exact for any gap (3 h, 72 h and 30 days are tested: C = Python, and a crystal "
        "within +-100 ppm measured by jitter-free beacons stays on the grid to 65 us after 30 "
        "days, `tests/test_conformance.py`). `benchmarks/results/net_alignment.md` measures "
        "where alignment stops holding (drift, boot offsets, restarts) in simulation.", "",
        *integer_rules(),
        "| Python | C | value |", "|---|---|---:|", *consts, "",
        *conformance_section(),
        "### Examples", "", *_v2_example(),
    ]
