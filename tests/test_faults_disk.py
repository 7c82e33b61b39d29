"""Fault sweep, disks: a read-only or full --out is one `error:` line (exit 2 or 1) found before the
long work, with nothing half-written left; `serve` keeps serving when its outputs cannot be
written. Real tmpfs mounts (tiny, or read-only); skipped where the test cannot mount."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def _tmpfs(where: Path, *, size_kib: int, ro: bool = False) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size_kib}k" + (",ro" if ro else "")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {p.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def ro_dir(tmp_path: Path) -> Iterator[Path]:
    with _tmpfs(tmp_path / "ro", size_kib=64, ro=True) as d:
        yield d


@pytest.fixture
def full_dir(tmp_path: Path) -> Iterator[Path]:
    """A 16 KiB tmpfs: a probe fits, a model does not."""
    with _tmpfs(tmp_path / "small", size_kib=16) as d:
        yield d


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


@pytest.mark.parametrize("verb", ["export", "firmware", "parity", "bench", "simulate", "train",
                                  "demo"])
def test_read_only_out_is_one_line_before_the_work(verb: str, ro_dir: Path, tiny_edge_run: Path,
                                                   tiny_bundle: Path, cli_run: Callable) -> None:
    args = {"export": ["export", tiny_edge_run, "--out", ro_dir / "b"],
            "firmware": ["firmware", tiny_bundle, "--out", ro_dir / "fw"],
            "parity": ["parity", tiny_bundle, "--report", ro_dir / "rep"],
            "bench": ["bench", tiny_bundle, "--out", ro_dir / "r.json"],
            "simulate": ["simulate", tiny_bundle, "--plot", ro_dir / "s.png"],
            "train": ["train", "--out", ro_dir / "run", "--epochs", "1", "--pretrain-epochs", "1"],
            "demo": ["demo", "--out", ro_dir / "demo", "--quick"]}[verb]
    code, out, err = cli_run(*args)
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1, err                  # no progress: refused up front
    assert lines[0].startswith("error: ") and "read-only" in lines[0], err
    assert out == "" and _leftovers(ro_dir) == []


def test_full_disk_during_export_is_one_line_and_leaves_nothing(full_dir: Path,
                                                                tiny_edge_run: Path,
                                                                cli_error: Callable) -> None:
    code, line = cli_error("export", tiny_edge_run, "--out", full_dir / "b")
    assert code == 1 and "no space left" in line
    assert _leftovers(full_dir) == []


def test_full_disk_during_train_leaves_no_half_run(full_dir: Path, cli_error: Callable) -> None:
    code, line = cli_error("train", "--out", full_dir / "run", "--encoder", "edge", "--epochs",
                           "1", "--pretrain-epochs", "1")
    assert code == 1 and "no space left" in line
    assert _leftovers(full_dir) == []


def _capture(bundle: Path, path: Path, windows: int) -> None:
    from crossl_edge.manifest import load_manifest
    from crossl_edge.runtime.transports import CaptureWriter
    from crossl_edge.wire.frame import LatentDType, LatentFrame, encode_frame

    m = load_manifest(bundle)
    with CaptureWriter(path) as w:
        for s in range(windows):
            for mod in m.modalities:
                w.write(encode_frame(LatentFrame(mod.id, s, 0, m.fingerprint, LatentDType.INT8,
                                                 np.zeros(m.latent_dim, np.int8))), 0.01 * s)


def test_serve_keeps_serving_when_the_disk_fills(tiny_bundle: Path, tmp_path: Path) -> None:
    cap = tmp_path / "in.cap"
    _capture(tiny_bundle, cap, 200)
    with _tmpfs(tmp_path / "sd", size_kib=8) as sd:
        (sd / "filler").write_bytes(b"\0" * 4096)             # one free page left
        preds = sd / "p.jsonl"
        p = subprocess.run([sys.executable, "-m", "crossl_edge.cli", "serve", str(tiny_bundle),
                            "--replay", str(cap), "--out", str(preds), "--capture",
                            str(sd / "again.cap"), "--json"],
                           capture_output=True, text=True, timeout=300,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
        said = [x for x in p.stderr.splitlines() if "cannot write predictions" in x]
        assert len(said) == 1 and "serving goes on" in said[0]
        stats = json.loads(p.stderr[p.stderr.index("{"):])
        assert stats["predictions"] == 200 and stats["frames"] == 400
        written = len(preds.read_text().splitlines())
        assert stats["lost_writes"]["predictions"] > 0
        assert written + stats["lost_writes"]["predictions"] <= 200 and written < 200
