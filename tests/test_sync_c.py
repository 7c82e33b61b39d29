"""The C time base (crossl_sync_*, crossl_grid_*, crossl_beacon_*) agrees number for number with
crossl_edge.wire.timebase / beacon on seeded random scripts; host gcc with ASan/UBSan."""

from __future__ import annotations

import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from crossl_edge.wire import timebase as T
from crossl_edge.wire.beacon import Beacon, decode_beacon, encode_beacon
from crossl_edge.wire.frame import FrameError

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "crossl_edge" / "wire" / "c"
FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not on PATH")
    exe = tmp_path_factory.mktemp("sync") / "sync_harness"
    subprocess.run(["gcc", *FLAGS, f"-I{INCLUDE}", str(ROOT / "tests" / "c" / "sync_harness.c"),
                    "-o", str(exe)], check=True)
    return exe


def _script(rng: np.random.Generator, n_nodes: int = 60) -> tuple[list[str], list[str]]:
    """Nodes with random drift, jitter, epochs, restarts and out-of-order probes: commands and
    what the Python reference answers."""
    cmds, want = [], []
    rates = [10_000, 50_000, 700_000, 32_768_000]
    for _ in range(n_nodes):
        s, g = T.SyncState(), T.GridWindower(window=int(rng.integers(1, 9)), hop=1)
        g.hop = int(rng.integers(1, g.window + 1))
        cmds.append("S")
        want.append("reset")
        drift = float(rng.choice([0, 1, -1, 20, -50, 100, -100, 20_000, -20_000, 60_000]))
        local0, epoch = int(rng.integers(0, 2**40)), int(rng.integers(0, 2**16))
        origin = int(rng.integers(0, 2**40))
        interval = int(rng.choice([100_000, 1_000_000, 5_000_000]))
        for j in range(int(rng.integers(1, 120))):
            if rng.random() < 0.03:
                epoch, origin = (epoch + 1) % 2**16, origin + int(rng.integers(0, 10**8))
            phone = origin + j * interval + int(rng.integers(0, 1000))
            delay = int(rng.integers(0, 60_000)) if rng.random() > 0.02 else 2_000_000
            local = (local0 + round((phone + delay - origin) * (1 + drift * 1e-6))) % 2**64
            cmds.append(f"B {epoch} {phone} {origin} {local}")
            r = T.on_beacon(s, epoch=epoch, phone_us=phone, origin_us=origin, local_us=local)
            want.append(f"{r} {s.rate} {s.anchor_local} {s.anchor_phone}")
            t = (local + int(rng.integers(-3 * interval, 3 * interval))) % 2**64
            cmds.append(f"M {t}")
            want.append(str(T.to_phone(s, t)))
            p = phone + int(rng.integers(-10**6, 10**6))
            cmds.append(f"L {p}")
            want.append(str(T.to_local(s, p)))
            rate = int(rng.choice(rates))
            cmds.append(f"I {t} {rate}")
            idx = T.sample_index(s, t, rate)
            want.append(str(idx))
            n = max(idx, 0) + int(rng.integers(-2, 3))
            cmds.append(f"D {n} {rate}")
            want.append(str(T.sample_due_local(s, n, rate)))
            k = g.last + int(rng.choice([0, 1, 1, 1, 1, 2, -3])) if g.have else int(
                rng.integers(0, 50))
            cmds.append(f"G {k} {g.window} {g.hop}")
            want.append(str(g.push(k)))
    return cmds, want


def _beacons(rng: np.random.Generator) -> tuple[list[str], list[str]]:
    cmds, want = [], []
    for i in range(3000):
        b = encode_beacon(Beacon(epoch=int(rng.integers(0, 2**16)),
                                 phone_time_us=int(rng.integers(0, 2**64, dtype=np.uint64)),
                                 origin_us=int(rng.integers(0, 2**63)),
                                 fingerprint=int(rng.integers(0, 2**32)),
                                 beacon_seq=int(rng.integers(0, 2**16)),
                                 flags=int(rng.integers(0, 16))))
        data = bytearray(b)
        kind = i % 5
        if kind == 1:
            data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
        elif kind == 2:
            data = data[:int(rng.integers(0, len(data) + 3))]
        elif kind == 3:        # header byte changed, CRC recomputed: reaches the flag check
            data[int(rng.integers(0, 28))] = int(rng.integers(0, 256))
            data[28:] = zlib.crc32(bytes(data[:28])).to_bytes(4, "little")
        elif kind == 4:
            data += bytes(int(rng.integers(1, 4)))
        cmds.append(f"X {bytes(data).hex()}" if data else "X 00")
        raw = bytes(data) if data else b"\x00"
        try:
            d = decode_beacon(raw)
            want.append(f"OK {d.flags} {d.epoch} {d.beacon_seq} {d.phone_time_us} {d.origin_us} "
                        f"{d.fingerprint} same")
        except FrameError as e:
            want.append(f"ERR {e.reason.value}")
    return cmds, want


def test_c_time_base_matches_python(harness: Path) -> None:
    rng = np.random.default_rng(12)
    cmds, want = _script(rng)
    bc, bw = _beacons(rng)
    cmds, want = cmds + bc, want + bw
    env = {"ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1"}
    out = subprocess.run([str(harness)], input="\n".join(cmds) + "\n", capture_output=True,
                         text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    got = out.stdout.splitlines()
    assert len(got) == len(want)
    bad = [(i, cmds[i], w, o) for i, (w, o) in enumerate(zip(want, got, strict=True)) if w != o]
    assert not bad, f"{len(bad)} disagreements of {len(want)}, first: {bad[:3]}"
    kinds = {c.split()[0] for c in cmds}
    resyncs = sum(w.startswith("1 ") for c, w in zip(cmds, want, strict=True) if c[0] == "B")
    assert kinds == {"S", "B", "M", "L", "I", "D", "G", "X"} and resyncs > 60
    print(f"\nC == Python on {len(cmds)} time-base commands ({resyncs} re-syncs)")
