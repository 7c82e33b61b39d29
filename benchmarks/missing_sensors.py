"""Training with sensors that dropped out (UCI HAR rebuilt, ../shared/data/uci_har.npz): one
sensor absent in 10%, 30% and 50% of the training windows at random, and one training subject
whose gyro is absent throughout, against the full-data model; macro-F1 on every modality subset.

Usage: python -m benchmarks.missing_sensors [--sensor gyro] [--shares 0.1,0.3,0.5]
       [--mode sup] [--encoder edge] [--epochs N] [--seeds 0] [--subject 1] [--data PATH]
Each variant marks the windows absent through the npz format's present_<modality> arrays, so the
runs go through the same loader, normalization and training as any user's data (the project's
default schedule; sup mode, no pretraining, to fit 2 CPU cores). The test split is complete.
JSON + Markdown in benchmarks/results/, rewritten after every run.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, save
from crossl_edge.data.npz import load_npz, save_npz
from crossl_edge.data.windows import Windows
from crossl_edge.train.config import TrainConfig
from crossl_edge.train.run import train_run

log = logging.getLogger("benchmarks.missing_sensors")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "uci_har.npz"


def variants(train: Windows, *, sensor: str, shares: list[float], subject: str,
             seed: int, only: set[str] | None = None) -> dict[str, Windows]:
    """name -> training windows with ``sensor`` absent where the variant says; ``only`` keeps
    the variants keyed ``full``, a share (``0.1``) or ``subject``."""
    out = {}
    if not only or "full" in only:
        out["full data"] = train
    for share in shares:
        rng = np.random.default_rng([seed, int(round(share * 1000))])
        present = dict(train.present)
        gone = rng.choice(len(train), size=int(round(share * len(train))), replace=False)
        present[sensor] = present[sensor].copy()
        present[sensor][gone] = False
        if not only or f"{share:g}" in only:
            out[f"{sensor} absent in {share:.0%}"] = _with(train, present)
    if not only or "subject" in only:
        present = dict(train.present)
        present["gyro"] = train.present["gyro"] & (train.subjects.astype(str) != subject)
        out[f"subject {subject} without gyro"] = _with(train, present)
    return out


def _with(w: Windows, present: dict[str, np.ndarray]) -> Windows:
    return Windows(w.modalities, w.data, w.labels, w.subjects, w.classes, dict(w.meta), present)


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one row per variant, macro-F1 per subset, and the largest drop vs full data."""
    subsets = list(rows[0]["macro_f1"])
    full = {r["seed"]: r["macro_f1"] for r in rows if r["variant"] == "full data"}
    head = ["variant", "seed", "absent train windows", *subsets, "worst drop vs full (points)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        base = full.get(r["seed"])
        drop = max(100 * (base[s] - r["macro_f1"][s]) for s in subsets) if base else float("nan")
        cells = [r["variant"], str(r["seed"]), f"{r['absent_windows']:,}",
                 *(f"{r['macro_f1'][s]:.3f}" for s in subsets),
                 "-" if r["variant"] == "full data" else f"{drop:+.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rank(variant: str) -> tuple[int, str]:
    if variant == "full data":
        return 0, ""
    if variant.startswith("subject"):
        return 2, variant
    return 1, variant.rsplit(" ", 1)[-1].rstrip("%").zfill(3)


def write_table(out: Path, *, title: str, n_train: int, n_test: int) -> None:
    """missing_sensors.md from every missing_sensors*.json in ``out`` (all processes' runs)."""
    rows = [r for f in sorted(out.glob("missing_sensors*.json"))
            for r in json.loads(f.read_text())["runs"]]
    rows.sort(key=lambda r: (r["seed"], _rank(r["variant"])))
    (out / "missing_sensors.md").write_text(
        f"# Missing sensors ({title})\n\nTest macro-F1 per subset of present modalities "
        f"(complete test split, {n_test:,} windows; {n_train:,} training windows).\n\n"
        + table(rows) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--sensor", default="gyro")
    ap.add_argument("--shares", default="0.1,0.3,0.5")
    ap.add_argument("--subject", default="1", help="training subject whose gyro is absent")
    ap.add_argument("--mode", default="sup", choices=["sup", "fine", "ssl"])
    ap.add_argument("--encoder", default="edge")
    ap.add_argument("--epochs", type=int, default=None, help="downstream epochs (default: auto)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--only", default="", help="e.g. full,0.1 (several processes share a grid)")
    ap.add_argument("--tag", default="", help="result file suffix of this process's share")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    ds = load_npz(path=args.data)
    shares = [float(s) for s in args.shares.split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in [int(s) for s in args.seeds.split(",")]:
            only = {s for s in args.only.split(",") if s} or None
            for name, train in variants(ds.train, sensor=args.sensor, shares=shares,
                                        subject=args.subject, seed=seed, only=only).items():
                data = Path(tmp) / f"d{seed}-{len(rows)}"
                save_npz(train, ds.test, data, compress=False)
                cfg = TrainConfig(dataset="npz", data_path=str(data), mode=args.mode,
                                  encoder=args.encoder, seed=seed, device="cpu",
                                  epochs=args.epochs)
                t0 = time.perf_counter()
                res = train_run(cfg, Path(tmp) / f"run{len(rows)}")
                rows.append({
                    "variant": name, "seed": seed, "mode": args.mode, "encoder": args.encoder,
                    "absent_windows": int(sum((~p).sum() for p in train.present.values())),
                    "train_windows": len(train), "seconds": round(time.perf_counter() - t0, 1),
                    "macro_f1": {"+".join(s["present"]): s["macro_f1"]
                                 for s in res.metrics["subsets"]},
                    "accuracy": {"+".join(s["present"]): s["accuracy"]
                                 for s in res.metrics["subsets"]},
                })
                log.info("%s seed %d: %s", name, seed, rows[-1]["macro_f1"])
                save(f"missing_sensors{args.tag}", {"data": str(args.data),
                                                    "sensor": args.sensor, "runs": rows},
                     out=args.out)
                write_table(args.out, title=f"UCI HAR, `{args.mode}`, `{args.encoder}` encoder",
                            n_train=len(ds.train), n_test=len(ds.test))


if __name__ == "__main__":
    main()
