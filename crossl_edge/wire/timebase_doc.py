"""FRAME_FORMAT.md sections on frame version 2, the sync beacon and the time base.

Rendered from frame.py, beacon.py and timebase.py; frame_doc.py places them in the document.
"""

from __future__ import annotations

import numpy as np

from . import beacon as B
from . import frame as F
from . import timebase as T

_TYPE = {"2s": "2 x u8", "B": "u8", "H": "u16", "I": "u32", "Q": "u64"}


def _table(fields: tuple[F.Field, ...], offsets: dict[str, int], *,
           latent_at: int | None) -> list[str]:
    rows = ["| offset | size | type | field | meaning |", "|---:|---:|---|---|---|"]
    for f in fields:
        const = f" Always `{f.const!r}`." if f.const is not None else ""
        rows.append(f"| {offsets[f.name]} | {f.size} | {_TYPE[f.fmt]} | `{f.name}` | "
                    f"{f.doc}{const} |")
    if latent_at is not None:
        rows.append(f"| {latent_at} | length x itemsize | dtype | `latent` | As in version 1. |")
        rows.append(f"| {latent_at} + length x itemsize | 4 | u32 | `crc32` | As in version 1. |")
    else:
        rows.append(f"| {B.BEACON_HEADER_SIZE} | 4 | u32 | `crc32` | CRC-32 of bytes "
                    f"0-{B.BEACON_HEADER_SIZE - 1}, as for frames. |")
    return rows


def _v2_example() -> list[str]:
    f = F.LatentFrame(modality_id=2, seq=7, timestamp_us=1_000_000, fingerprint=0x1234ABCD,
                      dtype=F.LatentDType.INT8, latent=np.array([1, -1, 127, -128], np.int8),
                      version=2, window=41, epoch=0x0102, boot=3)
    b = B.Beacon(epoch=0x0102, phone_time_us=420_000_000, origin_us=10_000_000,
                 fingerprint=0x1234ABCD, beacon_seq=9)
    return ["The example frame above as version 2 with `window=41, epoch=0x0102, boot=3` "
            f"({len(F.encode_frame(f))} bytes):", "", "```", F.encode_frame(f).hex(" "), "```",
            "", "`Beacon(epoch=0x0102, phone_time_us=420_000_000, origin_us=10_000_000, "
            f"fingerprint=0x1234ABCD, beacon_seq=9)` ({B.BEACON_SIZE} bytes):", "", "```",
            B.encode_beacon(b).hex(" "), "```"]


def time_base_sections() -> list[str]:
    """Markdown lines: version 2 layout, sync beacon, time base (algorithm and constants)."""
    o2 = F.OFFSETS_BY_VERSION[2]
    h2, oh2 = F.HEADER_SIZE_BY_VERSION[2], F.OVERHEAD_BY_VERSION[2]
    consts = [f"| `{k}` | `CROSSL_{k}` | {v:,} |" for k, v in T.TIMEBASE_CONSTANTS.items()]
    return [
        "## Version 2: frames on the phone's time base", "",
        f"Version 2 is the version 1 header (byte 2 reads 2) followed by three fields, then the "
        f"latent and the CRC as before: header {h2} bytes, overhead {oh2} bytes, **8 bytes more "
        f"per frame** (a 96-d int8 frame is {F.frame_size(96, 'int8', version=2)} bytes, still "
        f"one 244-byte BLE notification). The latent starts at offset {h2}, a multiple of 8.",
        "", *_table(F.FIELDS_V2, o2, latent_at=h2), "",
        "- `seq` keeps counting the node's windows since it booted (gaps = lost windows); the "
        "phone fuses version 2 frames by **(`epoch`, `window`)**, never by `seq`.",
        "- `timestamp_us` stays the node's own clock at the window's last sample (diagnostics).",
        "- `boot` changes at every restart of the node (a counter kept in flash, or random at "
        "boot); the phone counts a change as a restart.",
        "- A node sends version 1 frames until it has received its first beacon, version 2 "
        "frames after it. The phone accepts both at once (a network may mix old and new "
        "nodes); version 1 frames are fused by `seq`, which is only right when the nodes "
        "started together.", "",
        "## Sync beacon (phone -> nodes)", "",
        f"The phone sends a {B.BEACON_SIZE}-byte beacon to every node every second (`crossl-edge "
        "serve --beacon 1.0`), over the transport the frames use: a UDP datagram to the "
        "address each node sends from, a COBS packet on a serial line, a write to the nodes' "
        "BLE characteristic. Magic \"CB\" tells it from a latent frame; decoding checks size, "
        "magic, version, size again, CRC, flags (in this order, same reasons as frames).", "",
        *_table(B.BEACON_FIELDS, B.BEACON_OFFSETS, latent_at=None), "",
        "## Time base", "",
        "**Grid.** Each epoch has an origin on the phone's clock. Grid sample n of a modality "
        "sampled at f Hz is due at phone time `origin_us + n * 1e6 / f`; window k is grid "
        "samples `[k * hop, k * hop + window)` (hop = window: windows as in training). Window "
        "k therefore covers the same stretch of time on every node, whatever its boot time.",
        "",
        "**Node clock -> phone clock.** A node maps its local time L to phone time "
        "`P = anchor_phone + (L - anchor_local) * (1 + rate_ppb / 1e9)` "
        "(`crossl_sync_to_phone`). On each beacon (phone time P, received at local time L) "
        "it computes the error `P - map(L)`:",
        f"- first beacon, a new `epoch`, or |error| > {T.SYNC_STEP_US:,} us: **re-synchronise** "
        "(step the map onto this beacon, keep the rate, drop the window in progress);",
        f"- otherwise, per block of {T.SYNC_BLOCK} beacons keep the one with the largest error "
        "(the least delayed: delivery delays only ever add, so this rejects BLE "
        "connection-event jitter) and re-anchor the map on it; the rate follows the slope from "
        f"a reference block minimum to the newest one once they are >= "
        f"{T.SYNC_MIN_BASELINE_US / 1e6:g} s apart (the first estimate taken whole, later ones "
        f"with gain 1/{T.SYNC_RATE_GAIN}); the reference moves up after "
        f"{T.SYNC_REF_SPAN_US / 1e6:g} s; the rate is clamped to +-"
        f"{T.SYNC_MAX_RATE_PPB / 1e7:g} %.",
        "",
        "**Sampling and windows.** A synced node takes sample n when its timer reaches "
        "`crossl_sync_sample_due(n)` (disciplined sampling), stores each sample in slot "
        "`n % window` of its ring by the grid index of its time stamp "
        "(`crossl_sync_sample_index`, nearest grid sample), and sends window k when a run of "
        "consecutive grid samples completes it (`crossl_grid_push`). A gap (lost samples, a "
        "re-sync that steps forward) or a step back restarts the run, so a window is sent only "
        "when all its samples are present: a restarted node sends nothing until its first "
        "beacon, then resumes at the next complete grid window, with a new `boot`.", "",
        "**Tolerance.** A sample lands in the right grid slot while the node's estimate of the "
        "phone clock is within half a sample period (50 ms at 10 Hz, 0.7 ms at 700 Hz). "
        "Delays are not compensated: a node's estimate runs late by the smallest beacon delay "
        "it saw (one connection event at most), the same for every node on the same link "
        "settings. `benchmarks/results/net_alignment.md` measures where alignment stops "
        "holding (drift, boot offsets, restarts) in simulation.", "",
        "**Phone side.** The aggregator keys windows by (`epoch`, `window`), counts a node "
        "whose `boot` changed as a restart, and treats version 1 frames as before (by `seq`; a "
        "`seq` that falls back by 16 or more is a restart, and the memory of emitted windows "
        "of version 1 is cleared so the new run is fused, not called late).", "",
        "All of this is integer arithmetic (C99 division truncates toward zero; the Python "
        "reference `crossl_edge.wire.timebase` does the same), so C and Python agree to the "
        "microsecond; 64-bit intermediates hold as long as a node hears a beacon at least "
        "every 2.5 hours.", "",
        "| Python | C | value |", "|---|---|---:|", *consts, "",
        "### Examples", "", *_v2_example(),
    ]
