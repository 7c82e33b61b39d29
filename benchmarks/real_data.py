"""CroSSL on real recordings (UCI HAR rebuilt, ../shared/data/uci_har.npz): sup/ssl/fine x encoders
x seeds x label fractions, macro-F1 on every modality subset, wall/CPU time, windows/s, and
(--deployed) int8 F1 next to float through the export + parity pipeline of crossl_edge.export.

Usage: python -m benchmarks.real_data [--encoders crossl,edge] [--seeds 0,1,2]
       [--fractions 0.01,0.1,1] [--modes sup,ssl,fine] [--deployed] [--data PATH]
One pretraining per (encoder, seed) is shared by ssl and fine at every label fraction (the runs are
then identical to standalone ones: pretraining does not depend on the labels). Results are written
after every run (JSON + Markdown in benchmarks/results/), so an interrupted grid keeps what ran.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, save
from crossl_edge.train.config import TrainConfig
from crossl_edge.train.run import train_run

log = logging.getLogger("benchmarks.real_data")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "uci_har.npz"


def _timed(fn: Any) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process) of ``fn()``."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def _rate(history: dict, phase: str) -> float | None:
    rows = history.get(phase) or []
    return sum(r["windows_per_s"] for r in rows) / len(rows) if rows else None


def _deployed(run_dir: Path, tmp: Path) -> list[dict[str, Any]]:
    """int8 macro-F1 next to float on every subset, via export_bundle + run_parity."""
    from crossl_edge.export.bundle import export_bundle
    from crossl_edge.export.parity import run_parity

    bundle = tmp / f"{run_dir.name}-bundle"
    export_bundle(run_dir, bundle)
    res = run_parity(bundle)
    return [
        {"present": "+".join(r["present"]), "float": r["float"]["macro_f1"],
         **{p: r[p]["macro_f1"] for p in r if p not in ("present", "float")}}
        for r in res.subsets
    ]


def _pretrain(enc: str, seed: int, *, base: dict, tmp: Path, cache: Path | None) -> dict:
    """One pretraining (weights, wall/CPU time), reused from ``cache`` when it holds it."""
    import torch

    f = cache / f"pretrained-{enc}-{seed}.pt" if cache else None
    if f is not None and f.is_file():
        return torch.load(f, weights_only=False)
    cfg = TrainConfig(mode="ssl", encoder=enc, seed=seed, epochs=0, **base)
    res, wall, cpu = _timed(lambda: train_run(cfg, tmp / f"pre-{enc}-{seed}"))
    pre = {"state": res.model.state_dict(), "wall_s": wall, "cpu_s": cpu,
           "epochs": len(res.history.get("pretrain", [])),
           "windows_per_s": _rate(res.history, "pretrain")}
    log.warning("%s seed %d: pretrained in %.0f s wall", enc, seed, wall)
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        torch.save(pre, f)
    return pre


def _row(res: Any, *, enc: str, mode: str, seed: int, frac: float, times: dict) -> dict:
    meta = {"schedule": None}
    run_json = res.run_dir / "run.json"
    if run_json.is_file():
        meta = json.loads(run_json.read_text())
    return {
        "encoder": enc, "mode": mode, "seed": seed, "label_fraction": frac,
        "ssl_head": (None if mode != "ssl" else "aggregator+head" if meta.get("train", {}).get(
            "ssl_train_aggregator") else "head"),
        "labelled_windows": meta.get("labelled_windows"),
        "schedule": meta.get("schedule"),
        "subsets": {"+".join(s["present"]): s["macro_f1"] for s in res.metrics["subsets"]},
        "accuracy_all": res.metrics["all"]["accuracy"],
        "epochs": {p: len(v) for p, v in res.history.items()},
        "windows_per_s": {p: _rate(res.history, p) for p in ("pretrain", "downstream")},
        **times,
    }


def run(args: argparse.Namespace, result: dict, name: str) -> dict:
    base = {"dataset": "npz", "data_path": str(args.data), "device": args.device, **args.set}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for enc in args.encoders:
            for seed in args.seeds:
                pre = None
                if {"ssl", "fine"} & set(args.modes):
                    pre = _pretrain(enc, seed, base=base, tmp=tmp_path, cache=args.cache)
                    result["pretraining"].append({k: v for k, v in pre.items() if k != "state"}
                                                 | {"encoder": enc, "seed": seed})
                for frac in args.fractions:
                    for mode in args.modes:
                        cfg = TrainConfig(mode=mode, encoder=enc, seed=seed,
                                          label_fraction=frac, **base)
                        out = tmp_path / f"{enc}-{mode}-{seed}-{frac:g}"
                        state = None if mode == "sup" else pre["state"]
                        res, wall, cpu = _timed(
                            lambda c=cfg, o=out, s=state: train_run(c, o, pretrained=s))
                        times = {"downstream_wall_s": wall, "downstream_cpu_s": cpu,
                                 "total_wall_s": wall + (pre["wall_s"] if state else 0),
                                 "total_cpu_s": cpu + (pre["cpu_s"] if state else 0)}
                        row = _row(res, enc=enc, mode=mode, seed=seed, frac=frac, times=times)
                        if args.deployed and frac == 1 and mode in args.deployed_modes:
                            row["deployed"] = _deployed(out, tmp_path)
                        result["runs"].append(row)
                        log.warning("%s %s seed %d frac %g: F1 %s (%.0f s wall)", enc, mode,
                                    seed, frac, row["subsets"], wall)
                        _write(result, name)
    return result


def markdown(result: dict) -> str:
    """Per run: macro-F1 on every subset, total wall/CPU time; deployed int8 rows where run."""
    runs = result["runs"]
    # all modalities first, then pairs, then singles (JSON round trips sort the keys)
    subsets = sorted(runs[0]["subsets"], key=lambda s: (-s.count("+"), s)) if runs else []
    head = ["encoder", "mode", "seed", "labels", *subsets, "wall s", "CPU s"]
    head[1] = "mode (ssl: trained part)"
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        mode = r["mode"] + (f" ({r['ssl_head']})" if r.get("ssl_head") else "")
        cells = [r["encoder"], mode, str(r["seed"]), f"{r['label_fraction']:.0%}",
                 *(f"{r['subsets'][s]:.3f}" for s in subsets),
                 f"{r['total_wall_s']:.0f}", f"{r['total_cpu_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    for r in runs:
        if r.get("deployed"):
            lines += ["", f"Deployed ({r['encoder']} {r['mode']} seed {r['seed']}), macro-F1:",
                      "| present | float | " + " | ".join(k for k in r["deployed"][0]
                                                          if k not in ("present", "float")) + " |",
                      "|---|---|" + "---|" * (len(r["deployed"][0]) - 2)]
            for d in r["deployed"]:
                lines.append("| " + " | ".join(
                    [d["present"]] + [f"{v:.3f}" for k, v in d.items() if k != "present"]) + " |")
    return "\n".join(lines)


def _write(result: dict, name: str) -> None:
    path = save(name, result)
    (RESULTS / f"{name}.md").write_text(markdown(result) + "\n")
    log.info("written %s", path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--encoders", default="crossl,edge")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--fractions", default="0.01,0.1,1")
    p.add_argument("--modes", default="sup,ssl,fine")
    p.add_argument("--deployed", action="store_true", help="int8 F1 of 100%%-label runs too.")
    p.add_argument("--deployed-modes", default="fine")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--name", default="real_data")
    p.add_argument("--note", default="", help="Conditions, e.g. machine load.")
    p.add_argument("--cache", type=Path, default=None,
                   help="Folder keeping pretrained weights per (encoder, seed) across invocations.")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="TrainConfig override for every run, e.g. ssl_head_masking=0.8.")
    p.add_argument("--append", action="store_true",
                   help="Add the runs to results/NAME.json instead of replacing it.")
    a = p.parse_args()
    if not a.data.is_file():
        raise SystemExit(f"error: {a.data} not found; pass --data PATH to uci_har.npz.")
    a.encoders, a.modes = a.encoders.split(","), a.modes.split(",")
    a.set = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in a.set)}
    a.deployed_modes = a.deployed_modes.split(",")
    a.seeds = [int(s) for s in a.seeds.split(",")]
    a.fractions = [float(f) for f in a.fractions.split(",")]
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    result = {"data": str(a.data), "note": a.note, "grid": {
        "encoders": a.encoders, "seeds": a.seeds, "fractions": a.fractions, "modes": a.modes},
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None, "overrides": a.set,
        "pretraining": [], "runs": []}
    old = RESULTS / f"{a.name}.json"
    if a.append and old.is_file():
        prev = json.loads(old.read_text())
        result = {**prev, "note": "; ".join(n for n in (prev.get("note"), a.note) if n)}
        result.pop("environment", None)
    run(a, result, a.name)
    _write(result, a.name)
    print(markdown(result))


if __name__ == "__main__":
    main()
