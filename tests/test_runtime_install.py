"""Runtime-only install: a fresh venv with `crossl-edge[litert]` has no torch/TensorFlow and can
bench and serve a bundle; install time and venv size go to benchmarks/results/runtime_install.json.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "crossl_edge", "export", "firmware_bridge")


def _tree_bytes(path: Path) -> int:
    return sum((Path(d) / f).lstat().st_size for d, _, fs in os.walk(path) for f in fs)


def _capture(bundle: Path, path: Path) -> int:
    """A capture of the int8 frames the nodes would send for the bundle's sample windows."""
    from crossl_edge.manifest import load_manifest
    from crossl_edge.runtime.bench import real_latents
    from crossl_edge.runtime.transports import CaptureWriter
    from crossl_edge.samples import load_samples
    from crossl_edge.wire.frame import LatentDType, LatentFrame, encode_frame, fingerprint32

    m = load_manifest(bundle)
    raw, _ = load_samples(bundle / "samples.npz", m.names)
    z = real_latents(m, raw, ["litert"])
    fp = fingerprint32(m.fingerprint & 0xFFFFFFFF)
    n = len(raw[m.names[0]])
    with CaptureWriter(path) as cap:
        for seq in range(n):
            for e in m.modalities:
                cap.write(encode_frame(LatentFrame(e.id, seq, seq * 1000, fp, LatentDType.INT8,
                                                   z[e.name][seq])), seq * 0.01)
    return n


def _run(cmd: list[str], *, timeout: float, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.mark.slow
def test_runtime_only_venv_benches_and_serves(tiny_bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"  # a clean copy: no stale build/ or egg-info from the checkout
    for name in SOURCES:
        s = ROOT / name
        if s.is_dir():
            shutil.copytree(s, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(s, src / name)
    venv = tmp_path / "venv"
    t0 = time.perf_counter()
    assert _run([sys.executable, "-m", "venv", str(venv)], timeout=300).returncode == 0
    t_venv = time.perf_counter() - t0
    py, exe = venv / "bin" / "python", venv / "bin" / "crossl-edge"
    t0 = time.perf_counter()
    p = _run([str(py), "-m", "pip", "install", "--quiet", f"{src}[litert]"], timeout=900)
    t_install = time.perf_counter() - t0
    assert p.returncode == 0, p.stderr[-2000:]
    listed = json.loads(_run([str(py), "-m", "pip", "list", "--format", "json"],
                             timeout=120).stdout)
    names = {d["name"].lower().replace("_", "-") for d in listed}
    assert not names & {"torch", "tensorflow", "tensorflow-cpu", "keras", "onnx"}, names
    assert {"crossl-edge", "ai-edge-litert", "numpy", "click"} <= names

    t0 = time.perf_counter()
    b = _run([str(exe), "bench", str(tiny_bundle), "--quick", "--json"], timeout=300,
             cwd=tmp_path)
    t_bench = time.perf_counter() - t0
    assert b.returncode == 0, b.stderr[-2000:]
    res = json.loads(b.stdout)
    assert res["settings"]["runtimes"] == ["litert"]
    assert {r["status"] for r in res["rows"]} == {"ok"} and res["paths"]

    windows = _capture(tiny_bundle, tmp_path / "nodes.cap")
    s = _run([str(exe), "serve", str(tiny_bundle), "--replay", str(tmp_path / "nodes.cap"),
              "--out", str(tmp_path / "preds.jsonl")], timeout=120, cwd=tmp_path)
    assert s.returncode == 0, s.stderr[-2000:]
    preds = [json.loads(x) for x in (tmp_path / "preds.jsonl").read_text().splitlines()]
    assert len(preds) == windows and all(p["class_name"] and p["reason"] == "complete"
                                         for p in preds)
    u = _run([str(exe), "serve", str(tiny_bundle), "--listen", "udp://127.0.0.1:0",
              "--duration", "1", "--json"], timeout=120, cwd=tmp_path)
    assert u.returncode == 0 and '"stopped_by": "duration"' in u.stderr, u.stderr[-2000:]

    size = _tree_bytes(venv)
    record = {
        "what": "fresh venv + `pip install '<repo>[litert]'` (pip's configured index and cache; "
                "the project built by setuptools in pip's isolated build env)",
        "python": platform.python_version(), "machine": platform.machine(),
        "venv_create_s": round(t_venv, 2), "install_s": round(t_install, 2),
        "venv_bytes": size, "venv_mib": round(size / 2**20, 1),
        "packages": sorted(f"{d['name']}=={d['version']}" for d in listed),
        "bench_quick_s": round(t_bench, 2),
        "checked": ["no torch/tensorflow/keras/onnx in pip list",
                    "crossl-edge bench BUNDLE --quick --json",
                    "crossl-edge serve --replay (real int8 frames) -> one prediction per window",
                    "crossl-edge serve --listen udp://127.0.0.1:0 --duration 1"],
    }
    out = ROOT / "benchmarks" / "results" / "runtime_install.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"runtime-only venv: {record['venv_mib']} MiB, install {t_install:.1f} s, "
          f"packages {record['packages']}")
