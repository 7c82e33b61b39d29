"""The demo pipeline on the default dataset: each stage calls the library function of its verb."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossl_edge.atomic import write_json
from crossl_edge.outputs import output_dir, prepare_output, removed_on_failure, write_marker

log = logging.getLogger(__name__)

SUBFOLDERS = {"run": "run", "bundle": "bundle", "parity": "report", "firmware": "firmware"}


@dataclass(frozen=True)
class DemoConfig:
    """Where to write, which encoder to deploy, and whether to cut epochs for a smoke run."""

    out: Path
    encoder: str = "edge"
    seed: int = 0
    quick: bool = False


def run_demo(cfg: DemoConfig, *, say: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run every stage on BasicMotions under ``cfg.out``; return a JSON-able summary."""
    from crossl_edge.evaluate import format_table
    from crossl_edge.train.config import TrainConfig
    from crossl_edge.train.run import train_run

    out = prepare_output(cfg.out, kind="demo")  # missing, empty or an earlier demo's folder
    for sub, kind in SUBFOLDERS.items():         # each sub-folder only replaces its own kind
        prepare_output(out / sub, kind=kind, flag=f"--out (its {sub}/)")
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, "demo")
    summary: dict[str, Any] = {"out": str(out)}
    epochs: dict[str, Any] = {"pretrain_epochs": 3, "epochs": 5} if cfg.quick else {}
    t0 = time.perf_counter()
    say(f"[1/5] training CroSSL ({cfg.encoder} encoder, mode fine) on BasicMotions ...")
    res = train_run(
        TrainConfig(encoder=cfg.encoder, seed=cfg.seed, **epochs), out / "run", overwrite=True
    )
    summary["train"] = {
        "run": str(res.run_dir),
        "seconds": round(time.perf_counter() - t0, 1),
        "metrics": {
            "+".join(s_["present"]): {"accuracy": s_["accuracy"], "macro_f1": s_["macro_f1"]}
            for s_ in res.metrics["subsets"]
        },
    }
    say(format_table(res.metrics))
    summary.update(_export_stages(res.run_dir, out, say))
    summary["passed"] = bool(summary.get("parity", {}).get("passed", True))
    write_json(out / "demo-summary.json", summary)
    say(f"summary: {out / 'demo-summary.json'}")
    return summary


def _export_stages(run: Path, out: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Export, parity, firmware and simulation, each through its verb's library call."""
    from crossl_edge.export.bundle import export_bundle
    from crossl_edge.export.parity import format_table as parity_table
    from crossl_edge.export.parity import run_parity
    from crossl_edge.export.report import write_report

    stages: dict[str, Any] = {}
    bundle = out / "bundle"
    say("[2/5] exporting int8 encoders (TFLite + ONNX) and the phone model ...")
    t0 = time.perf_counter()
    manifest = export_bundle(run, bundle)
    stages["export"] = {"bundle": str(bundle), "seconds": round(time.perf_counter() - t0, 1),
                        "fingerprint": f"{manifest.fingerprint:08x}",
                        "int8_tflite_bytes": {e.name: (e.stats.size_bytes or {}).get("tflite_int8")
                                              for e in manifest.modalities}}
    say(f"bundle: {bundle} (fingerprint {manifest.fingerprint:08x})")
    say("[3/5] float vs int8 parity (LiteRT, ONNX Runtime, TFLite Micro) ...")
    parity = run_parity(bundle)
    with output_dir(out / "parity", kind="report", inputs=(bundle,)) as tmp:
        report = out / "parity" / write_report(parity, tmp).relative_to(tmp)
    say(parity_table(parity))
    say(f"parity: {'PASSED' if parity.passed else 'FAILED'}; report: {report}")
    stages["parity"] = {"passed": parity.passed, "report": str(report),
                        "failures": list(parity.failures)}
    stages["firmware"] = _firmware_stage(bundle, out, say)
    stages["simulate"] = _simulate_stage(bundle, out, say)
    return stages


def _firmware_stage(bundle: Path, out: Path, say: Callable[[str], None]) -> dict[str, Any]:
    from crossl_edge.firmware_bridge.firmware import generate_firmware

    say("[4/5] generating firmware sources for each sensor node ...")
    report = generate_firmware(bundle, out / "firmware")
    write_marker(out / "firmware", "firmware")
    say(report.table())
    say(f"firmware: {out / 'firmware'}")
    return report.to_json()


def _simulate_stage(bundle: Path, out: Path, say: Callable[[str], None]) -> dict[str, Any]:
    from crossl_edge.sim.simulate import simulate
    from crossl_edge.tables import format_simulation

    say("[5/5] simulating the body-area network (int8 nodes -> lossy radio -> phone) ...")
    result = simulate(bundle, loss_rates=(0.0, 0.1, 0.3, 0.5), seed=0)
    say(format_simulation(result))
    with removed_on_failure(out / "simulation.png"):
        plot = result.plot(out / "simulation.png")
    if plot:
        say(f"plot: {plot}")
    return result.to_json()
