"""The demo pipeline on the default dataset: each stage calls the library function of its verb."""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossl_edge.atomic import write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """Where to write, which encoder to deploy, and whether to cut epochs for a smoke run."""

    out: Path
    encoder: str = "edge"
    seed: int = 0
    quick: bool = False


def _stage_available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run_demo(cfg: DemoConfig, *, say: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run every stage on BasicMotions under ``cfg.out``; return a JSON-able summary."""
    from crossl_edge.evaluate import format_table
    from crossl_edge.train.config import TrainConfig
    from crossl_edge.train.run import train_run

    out = Path(cfg.out)
    summary: dict[str, Any] = {"out": str(out)}
    epochs = {"pretrain_epochs": 3, "epochs": 5} if cfg.quick else {}
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
    if _stage_available("export.bundle"):
        summary.update(_export_stages(res.run_dir, out, say))
    write_json(out / "demo-summary.json", summary)
    say(f"summary: {out / 'demo-summary.json'}")
    return summary


def _export_stages(run: Path, out: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Export, parity, firmware and simulation stages (each present once its issue has landed)."""
    from export.bundle import export_bundle

    stages: dict[str, Any] = {}
    bundle = out / "bundle"
    say("[2/5] exporting int8 encoders and the phone model ...")
    export_bundle(run, bundle)
    stages["bundle"] = str(bundle)
    say(f"bundle: {bundle}")
    return stages
