"""The generated node loop's half of the time base (C, ASan/UBSan) against a Python twin built
from crossl_edge.wire.timebase: beacons with jitter and a new epoch, drifting disciplined
sampling, garbage and foreign beacons; every frame byte-identical."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from crossl_edge.firmware_bridge.firmware import generate_firmware
from crossl_edge.manifest import ModalityEntry, load_manifest
from crossl_edge.wire import timebase as T
from crossl_edge.wire.beacon import Beacon, decode_beacon, encode_beacon
from crossl_edge.wire.frame import FrameError, LatentDType, LatentFrame, encode_frame, fingerprint32

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-g", "-O1",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
BOOT = 3
ERR_BEACON = -22


class PyNode:
    """What node_example.c does, written with the Python time base."""

    def __init__(self, e: ModalityEntry, fp: int, hop: int, latent_dim: int) -> None:
        self.e, self.fp, self.hop, self.d = e, fp, hop, latent_dim
        self.sync, self.grid = T.SyncState(), T.GridWindower(e.window, hop)
        self.ring: dict[int, np.ndarray] = {}
        self.hist: list[np.ndarray] = []
        self.seq = self.since = 0
        self.rate = round(e.sample_rate_hz * 1000)

    def on_beacon(self, msg: bytes, t: int) -> int:
        try:
            b = decode_beacon(msg)
        except FrameError as err:
            return err.reason.value
        if b.fingerprint != self.fp:
            return ERR_BEACON
        r = T.on_beacon(self.sync, epoch=b.epoch, phone_us=b.phone_time_us,
                        origin_us=b.origin_us, local_us=t)
        if r == T.SYNC_RESYNC:
            self.grid.reset()
        return r

    def _frame(self, window: np.ndarray, t: int, v2: dict | None) -> bytes:
        q = self.e.tflite_input(window.T.astype(np.float32), int8=True).reshape(-1)
        latent = q[np.arange(self.d) % q.size].astype(np.int8)
        extra = {"version": 2, **v2} if v2 else {}
        f = LatentFrame(self.e.id, self.seq, t, self.fp, LatentDType.INT8, latent, **extra)
        self.seq += 1
        return encode_frame(f)

    def push(self, x: np.ndarray, t: int) -> bytes | None:
        if self.sync.synced:
            n = T.sample_index(self.sync, t, self.rate)
            if n < 0:
                return None
            self.ring[n % self.e.window] = x
            k = self.grid.push(n)
            if k < 0:
                return None
            w = np.stack([self.ring[(n - self.e.window + 1 + i) % self.e.window]
                          for i in range(self.e.window)])
            return self._frame(w, t, {"window": k, "epoch": self.sync.epoch, "boot": BOOT})
        self.hist = (self.hist + [x])[-self.e.window:]
        self.since += 1
        if len(self.hist) < self.e.window or self.since < self.hop:
            return None
        self.since = 0
        return self._frame(np.stack(self.hist), t, None)


def _script(e: ModalityEntry, fp: int, node: PyNode, rng: np.random.Generator
            ) -> tuple[list[str], list[str]]:
    cmds, want = [], []
    drift = float(rng.choice([-20_000, -100, 37, 100, 20_000]))
    t_true, local0 = 0.0, int(rng.integers(0, 2**40))
    epoch, origin = 5, 0

    def local(t: float) -> int:
        return local0 + round(t * 1e6 * (1 + drift * 1e-6))

    def sample() -> np.ndarray:
        return rng.normal(0, 2, len(e.channels)).astype(np.float32)

    for _ in range(e.window + node.hop + 2):   # before any beacon: free-running v1 windows
        x, t = sample(), local(t_true)
        cmds.append(f"P {t} " + " ".join(float(v).hex() for v in x))
        f = node.push(x, t)
        want += ([f"FRAME {f.hex()}"] if f else []) + [f"P {len(f) if f else 0}"]
        t_true += 1 / e.sample_rate_hz
    next_beacon, j = t_true, 0
    while t_true < 90.0:
        if next_beacon <= t_true:
            if j == 40:
                epoch, origin = 6, round(t_true * 1e6) + 1234   # the phone restarted
            b = encode_beacon(Beacon(epoch=epoch, phone_time_us=round(next_beacon * 1e6),
                                     origin_us=origin, fingerprint=fp, beacon_seq=j))
            if j % 17 == 5:
                b = b[:-1] + bytes([b[-1] ^ 1])                       # corrupted
            if j % 23 == 7:
                b = encode_beacon(Beacon(epoch, 1, 0, fp ^ 1))       # another bundle's phone
            t_rx = local(next_beacon + float(rng.uniform(0.001, 0.04)))
            cmds.append(f"B {b.hex()} {t_rx}")
            want.append(f"B {node.on_beacon(b, t_rx)}")
            next_beacon += 0.5
            j += 1
        t = local(t_true)
        cmds.append(f"N {t}")
        due = 0
        if node.sync.synced:
            n = max(T.sample_index(node.sync, t, node.rate), 0)
            due = T.sample_due_local(node.sync, n, node.rate)
            if due - t < 0:
                due = T.sample_due_local(node.sync, n + 1, node.rate)
        want.append(f"N {due}")
        tt = due if due and rng.random() < 0.9 else t + int(rng.integers(0, 3000))
        x = sample()
        cmds.append(f"P {tt} " + " ".join(float(v).hex() for v in x))
        f = node.push(x, tt)
        want += ([f"FRAME {f.hex()}"] if f else []) + [f"P {len(f) if f else 0}"]
        t_true += (tt - t) / 1e6 / (1 + drift * 1e-6) + 1 / e.sample_rate_hz * 0.5
    return cmds, want


def test_generated_node_follows_the_grid_like_python(tiny_bundle: Path, tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not on PATH")
    m = load_manifest(tiny_bundle)
    fw = tmp_path / "fw"
    generate_firmware(tiny_bundle, fw)
    fp = fingerprint32(m.fingerprint)
    e = m.modalities[0]
    hop = e.window // 2
    template = (ROOT / "tests" / "c" / "node_sync_harness.c").read_text()
    src = tmp_path / "h.c"
    src.write_text(template.replace("PFXM", f"CROSSL_{e.name.upper()}")
                   .replace("PFX", f"crossl_{e.name}"))
    exe = tmp_path / "h"
    subprocess.run(["gcc", *FLAGS, f"-DCROSSL_{e.name.upper()}_HOP={hop}u", f"-I{fw / e.name}",
                    f"-I{fw / 'common'}", str(src), str(fw / e.name / "node_example.c"),
                    "-o", str(exe)], check=True)
    frames = resyncs = 0
    for seed in range(3):
        node = PyNode(e, fp, hop, m.latent_dim)
        cmds, want = _script(e, fp, node, np.random.default_rng(seed))
        run = subprocess.run([str(exe), str(BOOT)], input="\n".join(cmds) + "\n",
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        got = run.stdout.splitlines()
        bad = [(i, w, g) for i, (w, g) in enumerate(zip(want, got, strict=False)) if w != g]
        assert not bad and len(got) == len(want), bad[:2]
        frames += sum(w.startswith("FRAME 434c02") for w in want)
        resyncs += sum(w == "B 1" for w in want)
        assert any(w.startswith("FRAME 434c01") for w in want)          # v1 before the sync
        assert {"B -6", f"B {ERR_BEACON}"} <= set(want)                 # bad CRC, foreign phone
    assert frames > 20 and resyncs >= 6
