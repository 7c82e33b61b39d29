"""Accuracy protocol on BasicMotions: modes sup/ssl/fine x encoders x seeds 0-4 (mean +- std).

Train = the 40 TRAIN cases (a stratified 20% held out for early stopping), test = the 40 TEST cases.
Usage: python -m benchmarks.basicmotions_protocol [--seeds 0,1,2,3,4] [--encoders crossl,edge]
       [--modes sup,ssl,fine] [--precision fp32|bf16] [--label-fraction F] [--name NAME]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import save
from crossl_edge.train.config import TrainConfig
from crossl_edge.train.run import train_run

log = logging.getLogger("benchmarks.protocol")


def run(*, seeds: list[int], encoders: list[str], modes: list[str], overrides: dict) -> dict:
    rows, subsets = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for enc in encoders:
            for mode in modes:
                for seed in seeds:
                    t0 = time.perf_counter()
                    cfg = TrainConfig(mode=mode, encoder=enc, seed=seed, device="cpu", **overrides)
                    res = train_run(cfg, Path(tmp) / f"{enc}-{mode}-{seed}")
                    sec = time.perf_counter() - t0
                    for s in res.metrics["subsets"]:
                        key = (enc, mode, "+".join(s["present"]))
                        subsets.setdefault(key, []).append((s["accuracy"], s["macro_f1"]))
                    rows.append(
                        {
                            "encoder": enc,
                            "mode": mode,
                            "seed": seed,
                            "seconds": sec,
                            "accuracy": res.metrics["all"]["accuracy"],
                            "macro_f1": res.metrics["all"]["macro_f1"],
                        }
                    )
                    log.warning(
                        "%s %s seed %d: acc %.3f f1 %.3f (%.1fs)",
                        enc,
                        mode,
                        seed,
                        rows[-1]["accuracy"],
                        rows[-1]["macro_f1"],
                        sec,
                    )
    summary = []
    for (enc, mode, present), vals in subsets.items():
        a = np.array(vals)
        summary.append(
            {
                "encoder": enc,
                "mode": mode,
                "present": present,
                "accuracy_mean": float(a[:, 0].mean()),
                "accuracy_std": float(a[:, 0].std()),
                "macro_f1_mean": float(a[:, 1].mean()),
                "macro_f1_std": float(a[:, 1].std()),
                "n": len(vals),
            }
        )
    return {
        "protocol": "BasicMotions TRAIN (20% stratified val) / TEST, seeds " + str(seeds),
        "overrides": overrides,
        "runs": rows,
        "summary": summary,
    }


def markdown(result: dict) -> str:
    lines = ["| encoder | mode | present | accuracy | macro-F1 |", "|---|---|---|---|---|"]
    for s in result["summary"]:
        lines.append(
            f"| {s['encoder']} | {s['mode']} | {s['present']} | "
            f"{s['accuracy_mean']:.3f} ± {s['accuracy_std']:.3f} | "
            f"{s['macro_f1_mean']:.3f} ± {s['macro_f1_std']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--encoders", default="crossl,edge")
    p.add_argument("--modes", default="sup,ssl,fine")
    p.add_argument(
        "--official",
        action="store_true",
        help="The official code's optimiser settings: lr 1e-4, no modality dropout.",
    )
    p.add_argument("--label-fraction", type=float, default=1.0,
                   help="Label-efficiency run: fraction of labelled windows for downstream.")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="bf16: CPU autocast, the CUDA code path on the CPU.")
    p.add_argument("--name", default=None)
    args = p.parse_args()
    overrides = (
        {"lr": 1e-4, "pretrain_lr": 1e-4, "modality_dropout": 0.0, "weight_decay": 0.0}
        if args.official
        else {}
    )
    if args.label_fraction < 1:
        overrides["label_fraction"] = args.label_fraction
    if args.precision != "fp32":
        overrides["precision"] = args.precision
    result = run(
        seeds=[int(s) for s in args.seeds.split(",")],
        encoders=args.encoders.split(","),
        modes=args.modes.split(","),
        overrides=overrides,
    )
    name = args.name or (
        "basicmotions_protocol_official_hparams" if args.official else "basicmotions_protocol"
    )
    if args.label_fraction < 1 and not args.name:
        name += f"_labels{args.label_fraction:g}"
    if args.precision != "fp32" and not args.name:
        name += f"_{args.precision}"
    path = save(name, result)
    (path.with_suffix(".md")).write_text(markdown(result) + "\n")
    print(markdown(result))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
