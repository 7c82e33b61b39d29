"""`bench` on the tiny bundle in a short mode: rows, sane fields, real inputs, ratios, compare, CLI.

Never asserts on speed: the machine is shared and noisy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crossl_edge.bench import report as bench_report
from crossl_edge.bench.bench import BenchResult, _encoder_feeds, run_bench
from crossl_edge.manifest import load_manifest
from crossl_edge.samples import load_samples

SHORT = {"quick": True, "min_seconds": 0.05, "min_runs": 3, "windows": 2}


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crossl_edge.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def result(tiny_bundle: Path) -> BenchResult:
    return run_bench(tiny_bundle, **SHORT)


def test_every_artifact_runs_on_every_runtime(result: BenchResult, tiny_bundle: Path) -> None:
    m = load_manifest(tiny_bundle)
    got = {(r.model, r.kind, r.runtime, r.threads, r.xnnpack) for r in result.rows}
    want = set()
    for rt in result.settings["runtimes"]:
        if rt == "tflm":
            want |= {(n, "tflite_int8", "tflm", 1, None) for n in m.names}
            continue
        fmt, xs = ("onnx", [None]) if rt == "onnxruntime" else ("tflite", [True, False])
        kinds = [k for k in ("tflite", "tflite_int8", "onnx", "onnx_int8") if k.startswith(fmt)]
        want |= {(n, k, rt, 1, x) for n in m.names for k in kinds for x in xs}
        want |= {("phone", fmt, rt, 1, x) for x in xs}
    assert "litert" in result.settings["runtimes"] and "onnxruntime" in result.settings["runtimes"]
    assert got == want


def test_fields_are_sane(result: BenchResult) -> None:
    for r in result.rows:
        assert r.status in ("ok", "functional"), r.note
        s = r.steady
        assert s is not None and r.load_s > 0 and r.first_s > 0 and r.size_bytes > 0
        assert 0 < s.min <= s.p50 <= s.p90 <= s.p99 <= s.max and s.std >= 0 and s.mean > 0
        assert r.runtime_version not in ("", "unknown")
        if r.runtime != "tflm":
            assert s.runs >= SHORT["min_runs"] * SHORT["windows"]
            assert len(s.window_means) == SHORT["windows"]
            assert r.warmup_runs >= SHORT["min_runs"] - 1 and r.warmup_mean_s > 0
    env = result.environment
    assert env["cpu"] and env["cores"] >= 1 and env["python"] and "litert" in env["runtimes"]


def test_inputs_are_real_windows(result: BenchResult, tiny_bundle: Path) -> None:
    m = load_manifest(tiny_bundle)
    raw, _ = load_samples(tiny_bundle / "samples.npz", m.names)
    for r in result.rows:
        assert "samples.npz" in r.inputs["source"]
        assert len(r.inputs["indices"]) > 1 and r.inputs["abs_mean"] > 0
    for e in m.modalities:
        for kind in ("tflite", "tflite_int8", "onnx"):
            feeds = _encoder_feeds(e, raw[e.name], kind)
            assert len(feeds) == len(raw[e.name]) > 1
            assert not np.array_equal(feeds[0][0], feeds[1][0])
            assert np.count_nonzero(feeds[0][0]) > feeds[0][0].size // 2


def test_ratios_and_paths(result: BenchResult, tiny_bundle: Path) -> None:
    names = load_manifest(tiny_bundle).names
    got = {(q["comparison"], q["model"], q["runtime"]) for q in result.ratios}
    for n in names:
        assert ("int8 vs float", n, "litert") in got and ("int8 vs float", n, "onnxruntime") in got
        assert ("litert vs onnxruntime", n, "litert") in got
        assert ("XNNPACK on vs off", n, "litert") in got
    assert all(q["speedup"] > 0 for q in result.ratios)
    paths = {(p.name, p.runtime) for p in result.paths}
    assert {(f"node:{n}", "litert") for n in names} <= paths
    assert ("phone", "litert") in paths and ("phone", "onnxruntime") in paths
    for p in result.paths:
        assert sum(p.stages_mean_s.values()) <= p.total.mean * 1.01 and p.total.p50 > 0


@pytest.mark.skipif(not bench_report.runtime_present("tflm"), reason="tflite-micro absent")
def test_tflm_functional_row(result: BenchResult) -> None:
    rows = [r for r in result.rows if r.runtime == "tflm"]
    assert rows and all(r.status == "functional" for r in rows)
    assert all("not an MCU figure" in r.note and "0 LSB" in r.note for r in rows)


def test_json_compare_and_plot(result: BenchResult, tmp_path: Path) -> None:
    a = json.loads(json.dumps(result.to_json()))
    assert a["kind"] == "crossl-edge-bench" and "samples_s" not in a["rows"][0]
    text = bench_report.format_result(a)
    assert "mlperf_us" in text and "int8 vs float" in text and "node:" in text
    b = json.loads(json.dumps(a))
    b["environment"]["cpu"] = "Cortex-A72 (Raspberry Pi 4)"
    for r in b["rows"]:
        if r["steady"]:
            r["steady"]["median_of_windows"] *= 10
    out = bench_report.compare(a, b)
    assert "Cortex-A72" in out and "10.00x" in out
    rows = bench_report.compare_rows(a, b)
    assert len(rows) == len(a["rows"]) + len(a["paths"])
    png = tmp_path / "lat.png"
    note = bench_report.plot(result, png)
    assert (note is not None) or png.stat().st_size > 1000


def test_cli_bench_json_without_tensorflow(tiny_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    p = cli("bench", str(tiny_bundle), "--quick", "--min-seconds", "0.05", "--runtime",
            "litert,onnxruntime", "--xnnpack", "on", "--json", "--out", str(out))
    assert p.returncode == 0, p.stderr
    obj = json.loads(p.stdout)
    assert obj == json.loads(out.read_text())
    assert {r["runtime"] for r in obj["rows"]} == {"litert", "onnxruntime"}
    c = cli("bench", "--compare", str(out), str(out))
    assert c.returncode == 0 and "1.00x" in c.stdout, c.stderr
    probe = ("import sys; from crossl_edge.bench.bench import run_bench; "
             f"run_bench({str(tiny_bundle)!r}, quick=True, min_seconds=0.02, runtimes=['litert']);"
             " assert 'tensorflow' not in sys.modules and 'torch' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", probe], timeout=120).returncode == 0


@pytest.mark.parametrize("args, message", [
    (["/nonexistent-bundle"], "not a bundle"),
    (["BUNDLE", "--runtime", "nope"], "unknown runtime"),
    (["BUNDLE", "--threads", "0"], "--threads"),
    (["BUNDLE", "--xnnpack", "maybe"], "--xnnpack"),
    ([], "pass a BUNDLE"),
    (["--compare", "/nonexistent-a.json", "/nonexistent-b.json"], "cannot read"),
])
def test_cli_errors_exit_2(tiny_bundle: Path, args: list[str], message: str) -> None:
    p = cli("bench", *[str(tiny_bundle) if a == "BUNDLE" else a for a in args])
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_profile_per_op(tiny_bundle: Path) -> None:
    res = run_bench(tiny_bundle, runtimes=["litert"], xnnpack=(True,), profile=True, **SHORT)
    m = load_manifest(tiny_bundle)
    assert [(p["model"], p["kind"]) for p in res.profiles] == [
        (n, k) for n in m.names for k in ("tflite", "tflite_int8")]
    for p in res.profiles:
        assert p["runtime"] == "litert" and p["xnnpack"] is True and p["total_us"] > 0
        assert [o["index"] for o in p["ops"]] == list(range(len(p["ops"])))
        assert sum(t["count"] for t in p["by_type"]) == len(p["ops"])
    obj = json.loads(json.dumps(res.to_json()))
    assert obj["profiles"][0]["by_type"]
    assert "per-op profile" in bench_report.format_result(obj)
