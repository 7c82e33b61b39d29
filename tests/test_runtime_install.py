"""Runtime-only installs, the README's gateway rows: a fresh venv with `crossl-edge[litert]` or
`crossl-edge[onnx-runtime]` has no torch/TensorFlow and can bench and serve a bundle; install time
and venv size go to benchmarks/results/runtime_install*.json.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import pytest
from install_helpers import ROOT, clean_copy, clean_env, fresh_venv, run, tree_bytes

# extra -> (its runtime distribution, bench's runtime name, serve's --backend, results file)
EXTRAS = {
    "litert": ("ai-edge-litert", "litert", "tflite", "runtime_install.json"),
    "onnx-runtime": ("onnxruntime", "onnxruntime", "onnx", "runtime_install_onnx_runtime.json"),
}


def _capture(bundle: Path, path: Path) -> int:
    """A capture of the int8 frames the nodes would send for the bundle's sample windows."""
    from crossl_edge.bench.bench import real_latents
    from crossl_edge.manifest import load_manifest
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


@pytest.mark.slow
@pytest.mark.parametrize("extra", list(EXTRAS))
def test_runtime_only_venv_benches_and_serves(extra: str, tiny_bundle: Path,
                                              tmp_path: Path) -> None:
    dist, bench_name, backend, result_file = EXTRAS[extra]
    src = clean_copy(tmp_path / "src")  # no stale build/ or egg-info from the checkout
    venv, env = tmp_path / "venv", clean_env()
    t0 = time.perf_counter()
    py = fresh_venv(venv)
    t_venv = time.perf_counter() - t0
    exe = venv / "bin" / "crossl-edge"
    t0 = time.perf_counter()
    p = run([str(py), "-m", "pip", "install", "--quiet", f"{src}[{extra}]"], timeout=900,
            env=env)
    t_install = time.perf_counter() - t0
    assert p.returncode == 0, p.stderr[-2000:]
    listed = json.loads(run([str(py), "-m", "pip", "list", "--format", "json"],
                            timeout=120, env=env).stdout)
    names = {d["name"].lower().replace("_", "-") for d in listed}
    assert not names & {"torch", "tensorflow", "tensorflow-cpu", "keras", "onnx"}, names
    assert {"crossl-edge", dist, "numpy", "click"} <= names
    other = {"ai-edge-litert", "onnxruntime"} - {dist}
    assert not names & other, names          # one runtime extra brings one runtime

    t0 = time.perf_counter()
    b = run([str(exe), "bench", str(tiny_bundle), "--quick", "--json"], timeout=300,
            cwd=tmp_path, env=env)
    t_bench = time.perf_counter() - t0
    assert b.returncode == 0, b.stderr[-2000:]
    res = json.loads(b.stdout)
    assert res["settings"]["runtimes"] == [bench_name]
    assert {r["status"] for r in res["rows"]} == {"ok"} and res["paths"]

    windows = _capture(tiny_bundle, tmp_path / "nodes.cap")
    s = run([str(exe), "serve", str(tiny_bundle), "--backend", backend, "--replay",
             str(tmp_path / "nodes.cap"), "--out", str(tmp_path / "preds.jsonl")], timeout=120,
            cwd=tmp_path, env=env)
    assert s.returncode == 0, s.stderr[-2000:]
    preds = [json.loads(x) for x in (tmp_path / "preds.jsonl").read_text().splitlines()]
    assert len(preds) == windows and all(p["class_name"] and p["reason"] == "complete"
                                         for p in preds)
    u = run([str(exe), "serve", str(tiny_bundle), "--listen", "udp://127.0.0.1:0",
             "--duration", "1", "--json"], timeout=120, cwd=tmp_path, env=env)
    assert u.returncode == 0 and '"stopped_by": "duration"' in u.stderr, u.stderr[-2000:]

    size = tree_bytes(venv)
    record = {
        "what": f"fresh venv + `pip install '<repo>[{extra}]'` (pip's configured index and "
                "cache; the project built by setuptools in pip's isolated build env)",
        "python": platform.python_version(), "machine": platform.machine(),
        "venv_create_s": round(t_venv, 2), "install_s": round(t_install, 2),
        "venv_bytes": size, "venv_mib": round(size / 2**20, 1),
        "packages": sorted(f"{d['name']}=={d['version']}" for d in listed),
        "bench_quick_s": round(t_bench, 2),
        "checked": ["no torch/tensorflow/keras/onnx in pip list",
                    "crossl-edge bench BUNDLE --quick --json",
                    f"crossl-edge serve --backend {backend} --replay (real int8 frames) -> one "
                    "prediction per window",
                    "crossl-edge serve --listen udp://127.0.0.1:0 --duration 1"],
    }
    out = ROOT / "benchmarks" / "results" / result_file
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"[{extra}] venv: {record['venv_mib']} MiB, install {t_install:.1f} s, "
          f"packages {record['packages']}")
