"""Frame format v2, the sync beacon and the time base (Python side; C agreement: test_sync_c)."""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossl_edge.wire import timebase as T
from crossl_edge.wire.beacon import BEACON_SIZE, Beacon, decode_beacon, encode_beacon
from crossl_edge.wire.frame import (
    OVERHEAD_BY_VERSION,
    FrameError,
    FrameErrorReason,
    LatentDType,
    LatentFrame,
    decode_frame,
    encode_frame,
    frame_size,
)

GOLDEN = Path(__file__).parent / "golden"
FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def golden_v2() -> dict[str, bytes | LatentFrame | Beacon]:
    """The messages pinned by tests/golden/frame_v2_*.bin and beacon_v2.bin."""
    i8 = ((np.arange(96) * 37 + 11) % 256 - 128).astype(np.int8)
    return {
        "frame_v2_int8_96": LatentFrame(modality_id=0, seq=123456,
                                        timestamp_us=1_700_000_000_123_456,
                                        fingerprint=0xC0FFEE42, dtype=LatentDType.INT8,
                                        latent=i8, version=2, window=0x01020304, epoch=0xBEEF,
                                        boot=7),
        "frame_v2_float32_4": LatentFrame(modality_id=3, seq=0xFFFFFFFF, timestamp_us=5,
                                          fingerprint=1, dtype="float32",
                                          latent=np.array([1.0, -2.5, 0.0, 1e-3], np.float32),
                                          flags=0x02, version=2, window=0xFFFFFFFF, epoch=0,
                                          boot=0xFFFF),
        "beacon_v2": Beacon(epoch=0xBEEF, phone_time_us=1_700_000_000_000_000,
                            origin_us=1_699_999_990_000_000, fingerprint=0xC0FFEE42,
                            beacon_seq=42),
    }


def _bytes(obj: LatentFrame | Beacon) -> bytes:
    return encode_beacon(obj) if isinstance(obj, Beacon) else encode_frame(obj)


@pytest.mark.parametrize("name", sorted(golden_v2()))
def test_v2_golden_bytes(name: str) -> None:
    obj = golden_v2()[name]
    data = (GOLDEN / f"{name}.bin").read_bytes()
    assert _bytes(obj) == data
    assert (decode_beacon(data) if isinstance(obj, Beacon) else decode_frame(data)) == obj


def test_v2_layout_by_hand_and_cost() -> None:
    data = (GOLDEN / "frame_v2_int8_96.bin").read_bytes()
    v1 = encode_frame(LatentFrame(0, 123456, 1_700_000_000_123_456, 0xC0FFEE42,
                                  LatentDType.INT8, golden_v2()["frame_v2_int8_96"].latent))
    assert data[:2] == v1[:2] and data[2] == 2 and data[3:24] == v1[3:24]  # v1 header + ...
    assert int.from_bytes(data[24:28], "little") == 0x01020304            # window
    assert int.from_bytes(data[28:30], "little") == 0xBEEF                # epoch
    assert int.from_bytes(data[30:32], "little") == 7                     # boot
    assert data[32:-4] == v1[24:-4] and len(data) == len(v1) + 8 == 132 <= 244
    assert OVERHEAD_BY_VERSION == {1: 28, 2: 36} and frame_size(96, "int8", version=2) == 132
    b = (GOLDEN / "beacon_v2.bin").read_bytes()
    assert len(b) == BEACON_SIZE == 32 and b[:3] == b"CB\x02"
    assert int.from_bytes(b[-4:], "little") == zlib.crc32(b[:-4])


def test_v1_frames_cannot_carry_v2_fields_and_bad_versions_fail() -> None:
    with pytest.raises(FrameError) as e:
        LatentFrame(0, 1, 2, 3, "int8", np.zeros(4, np.int8), window=5)
    assert e.value.reason is FrameErrorReason.INVALID_ARGUMENT
    with pytest.raises(FrameError) as e:
        LatentFrame(0, 1, 2, 3, "int8", np.zeros(4, np.int8), version=3)
    assert e.value.reason is FrameErrorReason.UNKNOWN_VERSION
    good = (GOLDEN / "beacon_v2.bin").read_bytes()
    for bad, reason in [(good[:-1], "TRUNCATED"), (b"CL" + good[2:], "BAD_MAGIC"),
                        (good[:2] + b"\x03" + good[3:], "UNKNOWN_VERSION"),
                        (good + b"\x00", "LENGTH_MISMATCH"), (good[:-1] + b"\x00", "BAD_CRC")]:
        with pytest.raises(FrameError) as e:
            decode_beacon(bad)
        assert e.value.reason.name == reason


@FUZZ
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**16 - 1), st.integers(0, 2**16 - 1),
       st.integers(1, 64), st.integers(0, 2**64 - 1))
def test_v2_round_trip(window: int, epoch: int, boot: int, n: int, ts: int) -> None:
    f = LatentFrame(1, 2, ts, 3, "int8", np.arange(n, dtype=np.int8), version=2, window=window,
                    epoch=epoch, boot=boot)
    assert decode_frame(encode_frame(f)) == f


def _run_node(drift_ppm: float, jitter_us: int, beacons: int, *, seed: int = 0,
              interval_us: int = 1_000_000) -> list[int]:
    """Errors (phone - mapped local, us) after each beacon for a node whose crystal is off by
    ``drift_ppm``, beacons delayed by 2 ms + up to ``jitter_us``."""
    rng = np.random.default_rng(seed)
    s, errs = T.SyncState(), []
    boot_local = 123_456_789
    for j in range(beacons):
        sent = 5_000_000 + j * interval_us
        rx_true = sent + 2_000 + int(rng.integers(0, jitter_us + 1))
        local = boot_local + round(rx_true * (1 + drift_ppm * 1e-6))
        T.on_beacon(s, epoch=9, phone_us=sent, origin_us=0, local_us=local)
        probe = boot_local + round((sent + interval_us // 2) * (1 + drift_ppm * 1e-6))
        errs.append(T.to_phone(s, probe) - (sent + interval_us // 2))
    return errs


@pytest.mark.parametrize("drift_ppm", [-20_000, -100, 0, 50, 100, 20_000])
def test_sync_converges_under_jitter(drift_ppm: float) -> None:
    errs = _run_node(drift_ppm, jitter_us=30_000, beacons=80)
    tail = np.abs(errs[-20:])
    assert tail.max() < 20_000, (drift_ppm, errs[-20:])   # below a 50 ms half sample (10 Hz)


def test_sync_resyncs_on_new_epoch_and_step() -> None:
    s = T.SyncState()
    assert T.on_beacon(s, epoch=1, phone_us=10**6, origin_us=0, local_us=5) == T.SYNC_RESYNC
    assert T.on_beacon(s, epoch=1, phone_us=2 * 10**6, origin_us=0, local_us=10**6 + 5) == \
        T.SYNC_ADJUSTED
    assert T.on_beacon(s, epoch=2, phone_us=3 * 10**6, origin_us=7, local_us=2 * 10**6 + 5) == \
        T.SYNC_RESYNC and s.origin_us == 7
    assert T.on_beacon(s, epoch=2, phone_us=9 * 10**6, origin_us=7, local_us=3 * 10**6) == \
        T.SYNC_RESYNC      # 5 s off: a step, not a slow correction


def test_grid_windower_only_reports_complete_runs() -> None:
    g = T.GridWindower(window=4, hop=2)
    got = [g.push(n) for n in [0, 1, 2, 3, 3, 4, 5, 7, 8, 9, 10, 11, 5, 6, 7, 8, 9]]
    assert got == [-1, -1, -1, 0, -1, -1, 1, -1, -1, -1, -1, 4, -1, -1, -1, -1, 3]
    s = T.SyncState(synced=1, origin_us=1_000_000)
    assert T.sample_index(s, 1_000_000 - 50_001, 10_000) == -1
    assert T.sample_index(s, 1_000_000 + 149_999, 10_000) == 1
    assert T.sample_index(s, T.sample_due_local(s, 17, 10_000), 10_000) == 17


def test_wire_package_imports_light() -> None:
    code = ("import sys, crossl_edge.wire.frame, crossl_edge.wire.beacon, "
            "crossl_edge.wire.timebase, crossl_edge.wire.cobs; "
            "heavy = {'torch', 'tensorflow', 'onnx', 'onnxruntime', 'click',"
            " 'crossl_edge.firmware_bridge'}"
            " & set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


if __name__ == "__main__":  # one-off: write the v2 golden files (never change them afterwards)
    for name, obj in golden_v2().items():
        path = GOLDEN / f"{name}.bin"
        if not path.exists():
            path.write_bytes(_bytes(obj))
