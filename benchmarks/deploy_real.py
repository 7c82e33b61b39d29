"""Real-data deployment benchmark: UCI HAR (../shared/data/uci_har.npz), encoders x modes x seeds
trained with the CLI defaults, exported (scheme search), then parity on every modality subset of
the 2,996 test windows: float vs TFLite Micro / LiteRT / ONNX int8 (macro-F1 with a bootstrap 95%
interval, flip rate, float-margin ranks of the changed windows, latent SQNR per modality).

Usage: python -m benchmarks.deploy_real [--seeds 0] [--encoders crossl,edge] [--modes sup,fine,ssl]
       [--stage train|measure|all] [--work DIR] [--name deploy_real] [--resume]
Runs and bundles are kept in --work (one pretraining per encoder and seed, shared by ssl and
fine), so `--stage measure` re-measures finished bundles; results are rewritten after every run.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, save
from benchmarks.deploy_tables import markdown, summarize
from crossl_edge.errors import CrosslError

log = logging.getLogger("benchmarks.deploy_real")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "uci_har.npz"
WORK = Path("/tmp/crossl-deploy-real")
CALIBRATION_WINDOWS = 512            # as the README's field check


def _base(data: Path) -> dict[str, Any]:
    return {"dataset": "npz", "data_path": str(data), "device": "cpu"}


def _pretrained(work: Path, enc: str, seed: int, data: Path) -> dict[str, Any]:
    """Weights of one ssl pretraining per (encoder, seed), cached in ``work``."""
    import torch

    from crossl_edge.train.config import TrainConfig
    from crossl_edge.train.run import train_run

    f = work / f"pretrained-{enc}-{seed}.pt"
    if not f.is_file():
        t0 = time.perf_counter()
        res = train_run(TrainConfig(mode="ssl", encoder=enc, seed=seed, epochs=0, **_base(data)),
                        work / f"pre-{enc}-{seed}", overwrite=True)
        torch.save({"state": res.model.state_dict(), "wall_s": time.perf_counter() - t0}, f)
    return torch.load(f, weights_only=False)


def train_and_export(work: Path, *, enc: str, mode: str, seed: int, data: Path) -> dict[str, Any]:
    """Train (unless done) and export (unless done) one configuration into work/ENC-MODE-SEED."""
    from crossl_edge.export.bundle import export_bundle
    from crossl_edge.rundir import MODEL_PT
    from crossl_edge.train.config import TrainConfig
    from crossl_edge.train.run import train_run

    d = work / f"{enc}-{mode}-{seed}"
    info: dict[str, Any] = {}
    if not (d / "run" / MODEL_PT).is_file():
        pre = None if mode == "sup" else _pretrained(work, enc, seed, data)
        t0 = time.perf_counter()
        train_run(TrainConfig(mode=mode, encoder=enc, seed=seed, **_base(data)), d / "run",
                  overwrite=True, pretrained=pre and pre["state"])
        info["train_s"] = time.perf_counter() - t0 + (pre["wall_s"] if pre else 0.0)
    if not (d / "bundle" / "manifest.json").is_file():
        t0 = time.perf_counter()
        try:
            export_bundle(d / "run", d / "bundle", calibration_windows=CALIBRATION_WINDOWS)
        except CrosslError as e:
            return {**info, "exported": False, "export_error": str(e)}
        info["export_s"] = time.perf_counter() - t0
    return {**info, "exported": True}


def measure(bundle: Path) -> dict[str, Any]:
    """Parity of one bundle, reduced to the benchmark's figures."""
    from crossl_edge.export.parity import run_parity

    t0 = time.perf_counter()
    res = run_parity(bundle)
    obj = res.to_json()
    return {"parity_s": time.perf_counter() - t0, "passed": res.passed,
            "failures": res.failures, "notes": res.notes, "n_windows": res.n_windows,
            "pipelines": obj["pipelines"], "subsets": obj["subsets"],
            "latent_sqnr_db": {n: {p: s["sqnr_db"] for p, s in e["int8"].items()}
                               for n, e in res.encoders.items()},
            "schemes": {n: {f: s["scheme"] for f, s in fm.items()}
                        for n, fm in res.schemes.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--seeds", default="0")
    p.add_argument("--encoders", default="crossl,edge")
    p.add_argument("--modes", default="sup,fine,ssl")
    p.add_argument("--stage", default="all", choices=["train", "measure", "all"])
    p.add_argument("--work", type=Path, default=WORK)
    p.add_argument("--name", default="deploy_real")
    p.add_argument("--note", default="")
    p.add_argument("--resume", action="store_true",
                   help="Keep the runs already measured in benchmarks/results/NAME.json.")
    a = p.parse_args()
    if not a.data.is_file():
        raise SystemExit(f"error: {a.data} not found; pass --data PATH to uci_har.npz.")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    a.work.mkdir(parents=True, exist_ok=True)
    plan = [(e, m, int(s)) for s in a.seeds.split(",") for e in a.encoders.split(",")
            for m in a.modes.split(",")]
    rows: list[dict[str, Any]] = []
    saved = RESULTS / f"{a.name}.json"
    if a.resume and saved.is_file():
        rows = [r for r in json.loads(saved.read_text())["runs"]
                if (r["encoder"], r["mode"], r["seed"]) in plan]
    done = {(r["encoder"], r["mode"], r["seed"]) for r in rows}
    for enc, mode, seed in (x for x in plan if x not in done):
        row: dict[str, Any] = {"encoder": enc, "mode": mode, "seed": seed}
        if a.stage in ("train", "all"):
            row.update(train_and_export(a.work, enc=enc, mode=mode, seed=seed, data=a.data))
            log.warning("%s %s seed %d: trained/exported %s", enc, mode, seed, row)
        bundle = a.work / f"{enc}-{mode}-{seed}" / "bundle"
        if a.stage in ("measure", "all") and (bundle / "manifest.json").is_file():
            row.update(measure(bundle))
            log.warning("%s %s seed %d: parity %s", enc, mode, seed, row["passed"])
        if "subsets" in row:
            rows.append(row)
        if a.stage != "train":
            result = {"protocol": "UCI HAR (official split: 5,931 train / 2,996 test windows), "
                                  "CLI training defaults on the CPU, export with the scheme "
                                  f"search on {CALIBRATION_WINDOWS} calibration windows, parity "
                                  "on the test split", "note": a.note,
                      "planned": [list(x) for x in plan], "runs": rows,
                      "summary": summarize(rows)}
            path = save(a.name, result)
            path.with_suffix(".md").write_text(markdown(result) + "\n")


if __name__ == "__main__":
    main()
