"""Which int8 calibration generalizes: latent SQNR of each encoder's int8 TFLite on the TEST windows
(never seen by calibration) vs on the calibration windows, per input clipping percentile and
activation headroom, over encoders x modes x seeds on BasicMotions (CLI training defaults).

Usage: python -m benchmarks.calibration_generalization [--seeds 0,1,2,3,4] [--encoders crossl,edge]
The gap between the two columns is why the exporter ranks candidates out of sample.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import save
from crossl_edge.metrics import sqnr_db

PERCENTILES = (99.5, 99.9, 100.0)
HEADROOMS = (1.0, 1.1, 1.25)


def one_run(root: Path, *, encoder: str, mode: str, seed: int) -> list[dict[str, Any]]:
    """Train one configuration; for every modality and scheme, SQNR on test and calibration."""
    import torch

    from crossl_edge.export import tflite_export as te
    from crossl_edge.export.keras_twin import keras_encoder
    from crossl_edge.export.search import tflite_int8_latents
    from crossl_edge.rundir import load_run_dataset
    from crossl_edge.train.config import TrainConfig
    from crossl_edge.train.run import train_run
    from crossl_edge.trained import load_model

    train_run(TrainConfig(mode=mode, encoder=encoder, seed=seed, device="cpu"), root / "run")
    info, model = load_model(root / "run")
    ds = load_run_dataset(info)
    train, test = info.normalizer.transform(ds.train), info.normalizer.transform(ds.test)
    rows = []
    for m in info.modalities:
        calib, x = train.data[m.name].astype(np.float32), test.data[m.name].astype(np.float32)
        enc = model.encoders[m.name]
        with torch.no_grad():
            ref_c, ref_t = (enc(torch.from_numpy(v)).numpy() for v in (calib, x))
        twin = keras_encoder(enc, window=x.shape[2])
        for pct in PERCENTILES:
            for room in HEADROOMS:
                path = root / f"{m.name}-{pct}-{room}.tflite"
                path.write_bytes(te.encoder_tflite_int8(
                    twin, window=x.shape[2], channels=x.shape[1],
                    calibration=te.calibration_set(calib, percentile=pct, headroom=room)))
                rows.append({"encoder": encoder, "mode": mode, "seed": seed,
                             "modality": m.name, "input_percentile": pct, "headroom": room,
                             "test_sqnr_db": sqnr_db(tflite_int8_latents(path, x)[0], ref_t),
                             "calibration_sqnr_db": sqnr_db(tflite_int8_latents(path, calib)[0],
                                                            ref_c)})
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean / min test SQNR and mean calibration SQNR per encoder x percentile x headroom."""
    out = []
    keys = sorted({(r["encoder"], r["input_percentile"], r["headroom"]) for r in rows})
    for enc, pct, room in keys:
        mine = [r for r in rows if (r["encoder"], r["input_percentile"], r["headroom"])
                == (enc, pct, room)]
        t = np.array([r["test_sqnr_db"] for r in mine])
        c = np.array([r["calibration_sqnr_db"] for r in mine])
        out.append({"encoder": enc, "input_percentile": pct, "headroom": room, "n": len(mine),
                    "test_mean_db": float(t.mean()), "test_min_db": float(t.min()),
                    "calibration_mean_db": float(c.mean())})
    return out


def markdown(summary: list[dict[str, Any]]) -> str:
    lines = ["| encoder | input clip | headroom | encoders | test SQNR mean / min (dB) | "
             "calibration SQNR mean (dB) |", "|---|---|---|---|---|---|"]
    lines += [f"| {s['encoder']} | p{s['input_percentile']:g} | {s['headroom']:g} | {s['n']} | "
              f"{s['test_mean_db']:.1f} / {s['test_min_db']:.1f} | "
              f"{s['calibration_mean_db']:.1f} |" for s in summary]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--encoders", default="crossl,edge")
    p.add_argument("--modes", default="ssl,fine,sup")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    rows: list[dict[str, Any]] = []
    for enc in args.encoders.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            for mode in args.modes.split(","):
                with tempfile.TemporaryDirectory() as tmp:
                    rows += one_run(Path(tmp), encoder=enc, mode=mode, seed=seed)
                logging.warning("%s %s seed %d done", enc, mode, seed)
    summary = summarize(rows)
    path = save("calibration_generalization", {
        "protocol": "BasicMotions, CLI training defaults (cpu); int8 TFLite calibrated on every "
                    "training window; SQNR of the LiteRT latents vs PyTorch",
        "rows": rows, "summary": summary})
    path.with_suffix(".md").write_text(markdown(summary) + "\n")


if __name__ == "__main__":
    main()
