"""Run the benchmark suite and write one JSON per benchmark plus results/SUMMARY.md.

Usage: python -m benchmarks.run_all [--quick] [--encoders edge,crossl] [--bundle B] [--skip ...]
Suite: training throughput, export time, inference latency (run_bench), end-to-end paths, load.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, environment, save
from crossl_edge.atomic import write_text

log = logging.getLogger("benchmarks.run_all")
STEPS = ("train", "export", "latency", "load")


def train_throughput(out: Path, *, quick: bool) -> dict[str, Any]:
    args = ["--seconds", "1" if quick else "3", "--batch-sizes", "8" if quick else "8,64"]
    subprocess.run([sys.executable, "-m", "benchmarks.train_throughput", *args,
                    "--device", "cpu"], check=True, cwd=Path(__file__).parent.parent)
    import json

    res = json.loads((RESULTS / "train_throughput.json").read_text())
    if out != RESULTS:
        save("train_throughput", {k: v for k, v in res.items() if k != "environment"}, out=out)
    return res


def export_time(work: Path, out: Path, *, encoders: list[str], quick: bool) -> dict[str, Any]:
    """Train a short run per encoder and time `export_bundle` on it (the bundle is kept)."""
    from crossl_edge.export.bundle import export_bundle
    from crossl_edge.manifest import load_manifest
    from crossl_edge.train.config import TrainConfig
    from crossl_edge.train.run import train_run

    rows = []
    for enc in encoders:
        t0 = time.perf_counter()
        epochs = {"pretrain_epochs": 2, "epochs": 3} if quick else {"pretrain_epochs": 10,
                                                                     "epochs": 20}
        train_run(TrainConfig(encoder=enc, seed=0, device="cpu", **epochs), work / f"run-{enc}")
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        export_bundle(work / f"run-{enc}", work / f"bundle-{enc}")
        t_export = time.perf_counter() - t0
        m = load_manifest(work / f"bundle-{enc}")
        rows.append({"encoder": enc, "train_s": t_train, "export_s": t_export,
                     "bundle": str(work / f"bundle-{enc}"),
                     "modalities": {e.name: {"macs": e.stats.macs,
                                             "size_bytes": e.stats.size_bytes,
                                             "tflm_arena_bytes": e.stats.tflm.arena_min_bytes
                                             if e.stats.tflm else None}
                                    for e in m.modalities}})
        log.warning("%s: trained in %.1f s, exported in %.1f s", enc, t_train, t_export)
    res = {"what": "train a short run, then export_bundle: ONNX/ONNX int8/TFLite/TFLite int8 "
                   "per modality + phone model, each checked against PyTorch",
           "quick": quick, "rows": rows}
    save("export_time", res, out=out)
    return res


def latency(bundles: dict[str, Path], out: Path, *, quick: bool, min_seconds: float) -> dict:
    """run_bench on each bundle -> inference_latency[_ENC].json, end_to_end_latency.json, plots."""
    from crossl_edge.bench.bench import run_bench
    from crossl_edge.bench.report import plot

    results, e2e = {}, {}
    for enc, bundle in bundles.items():
        r = run_bench(bundle, quick=quick, min_seconds=min_seconds,
                      progress=lambda msg: log.info("%s", msg))
        plot(r, out / f"inference_latency_{enc}.png")
        obj = results[enc] = r.to_json()
        save(f"inference_latency_{enc}", obj, out=out)
        node = [p for p in obj["paths"] if p["name"].startswith("node:")]
        phone = [p for p in obj["paths"] if p["name"] == "phone"]
        e2e[enc] = {"paths": obj["paths"], "compute_per_window_p50_s": {
            f"{n['runtime']} node (slowest modality) + {ph['runtime']} phone":
                max(x["total"]["p50"] for x in node if x["runtime"] == n["runtime"])
                + ph["total"]["p50"] for n in node for ph in phone}}
    save("end_to_end_latency", {"what": "node: raw window -> normalize/quantize -> int8 encoder "
                                "-> frame bytes; phone: frames -> aggregator -> prediction; "
                                "radio time excluded", "encoders": e2e}, out=out)
    return results


def load(bundle: Path, out: Path, *, quick: bool) -> dict[str, Any]:
    from benchmarks.load_bench import LoadConfig, run

    res = run(bundle, LoadConfig(duration_s=2.0 if quick else 10.0,
                                 rate=1000.0 if quick else 5000.0))
    save("load_bench", res, out=out)
    return res


def _row_line(r: dict[str, Any]) -> str:
    s = r["steady"] or {}
    from crossl_edge.bench.report import us

    xnn = "-" if r["xnnpack"] is None else ("on" if r["xnnpack"] else "off")
    return (f"| {r['model']} | {r['kind']} | {r['runtime']} {r['runtime_version']} | "
            f"{r['threads']} | {xnn} | {us(s.get('median_of_windows'))} | {us(s.get('p50'))} | "
            f"{us(s.get('p99'))} | {us(r['first_s'])} | {r['status']} |")


def summary(done: dict[str, Any], *, quick: bool) -> str:
    env = environment()
    lines = ["# Benchmark summary", "",
             f"Machine: {env['cpu']}, {env['cores']} cores, {env['os']}, Python {env['python']}; "
             f"commit {env['commit']}; {'QUICK (smoke) run' if quick else 'full run'}.",
             "Caveat: a shared machine; figures are noisy, compare medians and ratios measured "
             "in the same run, not absolute microseconds.", ""]
    if "train" in done:
        lines += ["## Training throughput (CPU)", "", "| encoder | phase | batch | windows/s |",
                  "|---|---|---|---|"]
        lines += [f"| {r['encoder']} | {r['phase']} | {r['batch']} | {r['windows_per_s']:.0f} |"
                  for r in done["train"]["rows"]]
    if "export" in done:
        lines += ["", "## Export time", "", "| encoder | train s | export s |", "|---|---|---|"]
        lines += [f"| {r['encoder']} | {r['train_s']:.1f} | {r['export_s']:.1f} |"
                  for r in done["export"]["rows"]]
    for enc, obj in done.get("latency", {}).items():
        lines += ["", f"## Inference latency, {enc} encoder (us; median of window means)", "",
                  "| model | kind | runtime | threads | XNNPACK | median | p50 | p99 | first | "
                  "status |", "|---|---|---|---|---|---|---|---|---|---|"]
        lines += [_row_line(r) for r in obj["rows"]]
        lines += ["", "| path | runtime | stages (us) | p50 us | p99 us |", "|---|---|---|---|---|"]
        lines += [f"| {p['name']} | {p['runtime']} | " + ", ".join(
            f"{k} {v * 1e6:.1f}" for k, v in p["stages_mean_s"].items())
            + f" | {p['total']['p50'] * 1e6:.1f} | {p['total']['p99'] * 1e6:.1f} |"
            for p in obj["paths"]]
        lines += ["", "Speed-ups in the same run (baseline / candidate):", ""]
        lines += [f"- {q['comparison']}: {q['model']} {q['kind']} {q['runtime']} t{q['threads']}"
                  f" xnnpack {q['xnnpack']}: {q['speedup']:.2f}x" for q in obj["ratios"]
                  if q["threads"] == 1 and q["xnnpack"] in (True, None)]
        lines += [f"- note: {n}" for n in obj["notes"]]
    if "load" in done:
        r = done["load"]
        lat = r["latency_node_send_to_prediction_s"]
        lines += ["", "## Load (UDP loopback -> serve)", "",
                  f"{r['frames_per_s']:.0f} frames/s from {r['nodes']} nodes, send -> prediction "
                  f"p50 {lat['p50'] * 1e3:.2f} ms, p99 {lat['p99'] * 1e3:.2f} ms; exactly once: "
                  f"{r['exactly_once']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: short timings")
    ap.add_argument("--encoders", default="edge,crossl")
    ap.add_argument("--bundle", type=Path, help="benchmark this bundle; skips train/export")
    ap.add_argument("--min-seconds", type=float, default=10.0)
    ap.add_argument("--skip", default="", help=f"comma list of {','.join(STEPS)}")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    skip = {s for s in a.skip.split(",") if s}
    a.out.mkdir(parents=True, exist_ok=True)
    done: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if "train" not in skip:
            done["train"] = train_throughput(a.out, quick=a.quick)
        bundles = {"given": a.bundle} if a.bundle else {}
        if not a.bundle and "export" not in skip:
            done["export"] = export_time(Path(tmp), a.out, encoders=a.encoders.split(","),
                                         quick=a.quick)
            bundles = {r["encoder"]: Path(r["bundle"]) for r in done["export"]["rows"]}
        if bundles and "latency" not in skip:
            done["latency"] = latency(bundles, a.out, quick=a.quick, min_seconds=a.min_seconds)
        if bundles and "load" not in skip:
            done["load"] = load(next(iter(bundles.values())), a.out, quick=a.quick)
    write_text(a.out / "SUMMARY.md", summary(done, quick=a.quick))
    print(f"written: {a.out / 'SUMMARY.md'}")


if __name__ == "__main__":
    main()
