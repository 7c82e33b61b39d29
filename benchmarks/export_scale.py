"""Export at real scale: wall/CPU time of `export` with the defaults against the data-set size, and
test-window SQNR / prediction flips of the chosen int8 schemes against the number of calibration
windows (stratified by class and subject), up to every training window.

Usage (train the runs first; short schedules keep this under an hour on 2 cores):
  python -m benchmarks.export_scale --make-recording REC.npz   # the 4-modality, 18-class case
  crossl-edge train --dataset npz --data REC.npz --out RUN --mode fine \
      --pretrain-epochs 1 --epochs 3
  python -m benchmarks.export_scale --run RUN [--sizes 0.25,0.5,1] \
      [--counts 64,128,256,512,1024,all]
Each invocation adds its run's rows to benchmarks/results/export_scale.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, environment
from crossl_edge.atomic import write_json, write_text
from crossl_edge.metrics import sqnr_db

TEST_WINDOWS = 1000     # test windows (stratified) the SQNR and flips are measured on


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _subset_npz(src: Path, fraction: float, dst: Path) -> int:
    """``src`` (generic npz, one file) with ``fraction`` of its training rows, drawn stratified by
    class and subject; the test rows unchanged. Returns the number of training rows kept."""
    from crossl_edge.export.calibration import stratified_indices

    z = dict(np.load(src))
    train = np.flatnonzero(z["split"] == "train")
    n = max(int(round(fraction * len(train))), 8)
    keep_train = train[stratified_indices(z["y"][train], z["subjects"][train], n)]
    keep = np.sort(np.concatenate([keep_train, np.flatnonzero(z["split"] != "train")]))
    per_row = {k for k, v in z.items() if v.ndim and len(v) == len(z["split"])}
    np.savez(dst, **{k: (v[keep] if k in per_row else v) for k, v in z.items()})
    return int(len(keep_train))


SCALE_TRAIN_WINDOWS = 5958     # the phone + watch recording of the scale report


def make_recording(src: Path, dst: Path, *, train_windows: int = SCALE_TRAIN_WINDOWS) -> dict:
    """A 4-modality, 18-class recording of the size users reported, from UCI HAR (generic npz):
    body_acc, gyro, gravity (total_acc - body_acc, the low-pass part) and total_acc, 3 axes
    each; class = activity x intensity tercile (the window's body_acc RMS against its activity's
    training-window terciles: 18 labels, learnable from the signal on unseen subjects);
    ``train_windows`` training windows drawn stratified by activity and subject, every test
    window."""
    from crossl_edge.export.calibration import stratified_indices

    z = dict(np.load(src))
    train = np.flatnonzero(z["split"] == "train")
    rms = np.sqrt((z["x_body_acc"] ** 2).mean(axis=(1, 2)))
    tercile = np.zeros(len(rms), dtype=np.int64)
    for c in np.unique(z["y"]):
        cut = np.quantile(rms[train][z["y"][train] == c], [1 / 3, 2 / 3])
        tercile[z["y"] == c] = np.searchsorted(cut, rms[z["y"] == c])
    y = z["y"] * 3 + tercile
    classes = [f"{c}/{g}" for c in z["classes"].tolist() for g in ("low", "mid", "high")]
    keep = np.sort(np.concatenate([
        train[stratified_indices(z["y"][train], z["subjects"][train], train_windows)],
        np.flatnonzero(z["split"] != "train")]))
    x = {"body_acc": z["x_body_acc"], "gyro": z["x_gyro"],
         "gravity": z["x_total_acc"] - z["x_body_acc"], "total_acc": z["x_total_acc"]}
    out: dict[str, Any] = {"modalities": np.asarray(list(x)), "y": y[keep],
                           "subjects": z["subjects"][keep], "split": z["split"][keep],
                           "classes": np.asarray(classes),
                           "meta": np.asarray(json.dumps({
                               "dataset": "export-scale recording built from UCI HAR by "
                                          "benchmarks/export_scale.py --make-recording",
                               "labels": "activity x subject tercile (18)"}))}
    for n, v in x.items():
        out[f"x_{n}"] = v[keep].astype(np.float32)
        out[f"sample_rate_{n}"] = np.float64(50.0)
        out[f"channels_{n}"] = np.asarray(["x", "y", "z"])
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dst, **out)
    return {"train_windows": int((out["split"] == "train").sum()),
            "test_windows": int((out["split"] != "train").sum()), "classes": len(classes),
            "modalities": list(x)}


def export_rows(run: Path, sizes: list[float], root: Path) -> tuple[list[dict[str, Any]], Path]:
    """Export ``run`` with the defaults on each training-set fraction; returns the rows and the
    bundle of the full data set."""
    from crossl_edge.export.bundle import export_bundle
    from crossl_edge.export.progress import Event
    from crossl_edge.export.schemes import SchemeRecord
    from crossl_edge.rundir import read_run

    info = read_run(run)
    src = Path(info.meta["train"]["data_path"])
    rows, full = [], root / "bundle-1"
    for f in sizes:
        data = root / f"data-{f:g}.npz"
        n_train = _subset_npz(src, f, data)
        out = root / f"bundle-{f:g}"
        events: list[Event] = []
        w0, c0 = time.perf_counter(), _cpu()
        m = export_bundle(run, out, data=str(data), progress=events.append)
        wall, cpu = time.perf_counter() - w0, _cpu() - c0
        recs = {e.name: SchemeRecord.read(e.quant_extra.get("scheme")) for e in m.modalities}
        rows.append({"run": run.name, "train_windows": n_train, "fraction": f,
                     "calibration_windows": m.provenance.calibration.to_json()["windows"],
                     "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                     "progress_lines": len(events),
                     "tflite_tried": {k: len(r["tflite_int8"].tried) for k, r in recs.items()},
                     "onnx_tried": {k: len(r["onnx_int8"].tried) for k, r in recs.items()},
                     "chosen": {k: r["tflite_int8"].chosen for k, r in recs.items()}})
        logging.info("%s", rows[-1])
        if f == 1:
            full = out
    return rows, full


def calibration_rows(run: Path, bundle: Path, counts: list[int | None]) -> list[dict[str, Any]]:
    """Per modality and calibration count: the bundle's chosen TFLite scheme calibrated on that
    many stratified training windows, scored on stratified test windows (SQNR vs float, and
    prediction flips of the phone model with every modality present)."""
    import torch

    from crossl_edge.export import search, tflite_export
    from crossl_edge.export.calibration import stratified_indices
    from crossl_edge.export.keras_twin import keras_encoder
    from crossl_edge.export.schemes import SchemeRecord
    from crossl_edge.manifest import load_manifest
    from crossl_edge.metrics import presence_vector
    from crossl_edge.rundir import load_run_dataset
    from crossl_edge.trained import load_model

    info, model = load_model(run)
    ds = load_run_dataset(info)
    train, test = info.normalizer.transform(ds.train), info.normalizer.transform(ds.test)
    ti = stratified_indices(test.labels, test.subjects, TEST_WINDOWS)
    names = [s.name for s in info.modalities]
    with torch.no_grad():
        ref = {n: model.encoders[n](torch.from_numpy(test.data[n][ti])).numpy() for n in names}
        pres = torch.from_numpy(np.repeat(presence_vector(names, tuple(names))[None], len(ti), 0))

        def predict(swap: dict[str, np.ndarray]) -> np.ndarray:
            lat = np.stack([swap.get(n, ref[n]) for n in names], 1).astype(np.float32)
            with torch.no_grad():
                return model.classify(torch.from_numpy(lat), pres).numpy().argmax(-1)

        p_float = predict({})
    m = load_manifest(bundle, verify=False)
    rows = []
    for e in m.modalities:
        scheme = SchemeRecord.read(e.quant_extra.get("scheme"))["tflite_int8"].scheme
        twin = keras_encoder(model.encoders[e.name], window=e.window, layernorm=scheme.layernorm)
        x_test = test.data[e.name][ti]
        for n in counts:
            k = len(train) if n is None else min(n, len(train))
            calib = train.data[e.name][stratified_indices(train.labels, train.subjects, k)]
            w0 = time.perf_counter()
            q = tflite_export.encoder_tflite_int8(
                twin, window=e.window, channels=len(e.channels), per_channel=scheme.per_channel,
                calibration=tflite_export.calibration_set(
                    calib, percentile=scheme.input_percentile, headroom=scheme.headroom))
            convert_s = time.perf_counter() - w0
            lat = search.tflite_int8_latents(q, x_test)[0]
            rows.append({"run": run.name, "modality": e.name, "scheme": scheme.name,
                         "calibration_windows": k, "all": n is None,
                         "test_sqnr_db": round(sqnr_db(lat, ref[e.name]), 2),
                         "test_flips": int((predict({e.name: lat}) != p_float).sum()),
                         "test_windows": int(len(ti)), "convert_s": round(convert_s, 1)})
            logging.info("%s", rows[-1])
    return rows


def markdown(result: dict[str, Any]) -> str:
    lines = ["# Export at scale", "", "Export with the defaults (wall and CPU seconds; 2 shared "
             "cores, see `load_average`):", "",
             "| run | training windows | calibration windows | wall s | CPU s | TFLite tried "
             "(per modality) | ONNX tried | progress lines |", "|---|---|---|---|---|---|---|---|"]
    for r in result["export"]:
        tfl = ", ".join(map(str, r["tflite_tried"].values()))
        onx = ", ".join(map(str, r["onnx_tried"].values()))
        lines.append(f"| {r['run']} | {r['train_windows']:,} | {r['calibration_windows']} | "
                     f"{r['wall_s']} | {r['cpu_s']} | {tfl} | {onx} | {r['progress_lines']} |")
    lines += ["", f"Chosen TFLite scheme calibrated on N stratified training windows, scored on "
              f"{TEST_WINDOWS} stratified test windows (latent SQNR vs float; prediction flips of "
              "the phone model, every modality present); Δ = SQNR minus the all-window SQNR:", "",
              "| run | modality | scheme | calibration windows | test SQNR dB | Δ vs all dB | "
              "flips | convert s |", "|---|---|---|---|---|---|---|---|"]
    cal = result["calibration"]
    for r in cal:
        ref = next(x for x in cal if x["run"] == r["run"] and x["modality"] == r["modality"]
                   and x["all"])
        lines.append(f"| {r['run']} | {r['modality']} | {r['scheme']} | "
                     f"{r['calibration_windows']:,}{' (all)' if r['all'] else ''} | "
                     f"{r['test_sqnr_db']} | {r['test_sqnr_db'] - ref['test_sqnr_db']:+.2f} | "
                     f"{r['test_flips']} | {r['convert_s']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path)
    ap.add_argument("--make-recording", type=Path, metavar="NPZ",
                    help="write the 4-modality, 18-class recording built from UCI HAR and stop")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
                    / "data" / "uci_har.npz", help="UCI HAR (generic npz) for --make-recording")
    ap.add_argument("--sizes", default="0.25,0.5,1", help="training-set fractions to export")
    ap.add_argument("--counts", default="64,128,256,512,1024,all")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("crossl_edge").setLevel(logging.WARNING)
    if a.make_recording:
        print(json.dumps(make_recording(a.data, a.make_recording)))
        return
    if a.run is None:
        ap.error("--run RUN (or --make-recording NPZ) is required")
    sizes = sorted({float(s) for s in a.sizes.split(",")} | {1.0})
    counts = [None if c == "all" else int(c) for c in a.counts.split(",")]
    with tempfile.TemporaryDirectory() as d:
        load0 = Path("/proc/loadavg").read_text().split()[:3]
        exp, bundle = export_rows(a.run, sizes, Path(d))
        cal = calibration_rows(a.run, bundle, counts)
    path = a.out / "export_scale.json"
    old = json.loads(path.read_text()) if path.exists() else {"export": [], "calibration": []}
    keep = [r for r in old["export"] if r["run"] != a.run.name]
    result = {"environment": environment(),
              "load_average": {**old.get("load_average", {}), a.run.name: {
                  "start": load0, "end": Path("/proc/loadavg").read_text().split()[:3]}},
              "export": keep + exp,
              "calibration": [r for r in old["calibration"] if r["run"] != a.run.name] + cal}
    write_json(path, result)
    write_text(a.out / "export_scale.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
