"""Export a trained run to a bundle: per-modality encoders (ONNX/TFLite, float/int8), phone model,
manifest.json; every artifact is checked against PyTorch as soon as it is written.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge import __version__
from crossl_edge.atomic import write_bytes, write_json
from crossl_edge.errors import CheckFailed, DataError, UsageError
from crossl_edge.manifest import (
    BUNDLE_FORMAT_VERSION,
    MANIFEST,
    AggregatorEntry,
    Manifest,
    ModalityEntry,
    QParams,
    file_sha256,
    seal,
    to_json,
)
from crossl_edge.metrics import cosine_rows
from crossl_edge.outputs import output_dir
from crossl_edge.runtime.backends import dist_version, run_each
from crossl_edge.samples import SAMPLES, samples_bytes

log = logging.getLogger(__name__)

CHECK_WINDOWS = 16          # windows each artifact is checked on right after it is written
FLOAT_TOL = 1e-4            # max abs error of a float artifact vs PyTorch (relative to max |y|)
INT8_MIN_COSINE = 0.95      # mean cosine below this: the int8 artifact is broken
PHONE_INPUTS = ["latents", "present"]
INPUT_PERCENTILES = (100.0, 99.9, 99.5)   # candidate int8 input ranges (percentile clip)
Progress = Callable[..., None]


MAX_SAMPLES = 64  # raw test windows shipped in samples.npz for bench/simulate/third parties


def versions() -> dict[str, str]:
    """Versions of the converters and runtimes that built and checked the bundle."""
    dists = ("torch", "tensorflow-cpu", "tensorflow", "onnx", "onnxruntime", "onnxscript",
             "ai-edge-litert", "tflite-micro")
    found = {d: dist_version(d, default="") for d in dists}
    return {"crossl-edge": __version__, **{d: v for d, v in found.items() if v}}


def calibration_indices(n_train: int, requested: int | None) -> np.ndarray:
    """Evenly spaced training-window indices (all of them when ``requested`` is None)."""
    if requested is None:
        return np.arange(n_train)
    from crossl_edge.export.tflite_export import MIN_CALIBRATION

    if requested < MIN_CALIBRATION or requested > n_train:
        raise (DataError if requested < MIN_CALIBRATION else UsageError)(f"--calibration-windows {requested} is not in {MIN_CALIBRATION}.."
                         f"{n_train} (at least {MIN_CALIBRATION}, at most the training split); "
                         "pick a value in that range.")
    return np.unique(np.linspace(0, n_train - 1, requested).round().astype(int))


def _float_check(what: str, got: np.ndarray, ref: np.ndarray) -> float:
    err = float(np.abs(got - ref).max())
    if not np.isfinite(err) or err > FLOAT_TOL * (1.0 + float(np.abs(ref).max())):
        raise CheckFailed(f"{what} differs from PyTorch by {err:.3g} right after export; the "
                          "converter changed the model, report it with the run.")
    return err


def _cosine_check(what: str, got: np.ndarray, ref: np.ndarray) -> float:
    cmean = float(cosine_rows(got, ref).mean())
    if not np.isfinite(cmean) or cmean < INT8_MIN_COSINE:
        raise CheckFailed(f"{what} is broken (mean latent cosine {cmean:.3f} vs PyTorch right "
                          "after export); check the calibration windows.")
    return cmean


def _write(root: Path, rel: str, data: bytes) -> Path:
    write_bytes(root / rel, data)
    return root / rel


def _pick_input_range(scratch: Path, twin: Any, encoder: Any, calib: np.ndarray,
                      ) -> tuple[float, bytes]:
    """Convert with each input-range percentile; keep the one whose worst calibration window
    has the best int8 latent cosine (ties go to the widest range)."""
    import torch

    from crossl_edge.runtime.backends import TFLiteRunner
    from crossl_edge.export import tflite_export

    with torch.no_grad():
        ref = encoder(torch.from_numpy(calib)).numpy()                      # (N, D)
    best: tuple[float, float, bytes] | None = None
    for pct in INPUT_PERCENTILES:
        q = tflite_export.encoder_tflite_int8(twin, window=calib.shape[2], channels=calib.shape[1],
                                              calibration=tflite_export.clip_percentile(calib, pct))
        write_bytes(scratch, q)
        r = TFLiteRunner(scratch)
        i, o = r.inputs[0], r.outputs[0]
        y = QParams(o.scale, o.zero_point).dequantize(
            run_each(r, QParams(i.scale, i.zero_point).quantize(calib.transpose(0, 2, 1))))
        score = float(cosine_rows(y, ref).min())
        log.debug("input percentile %s: worst calibration cosine %.5f", pct, score)
        if best is None or score > best[1] + 1e-4:
            best = (pct, score, q)
    assert best is not None
    return best[0], best[2]


def export_encoder(root: Path, *, name: str, encoder: Any, calib: np.ndarray,
                   advance: Progress) -> tuple[dict[str, str], QParams, QParams, dict[str, Any]]:
    """Write and check the four encoder artifacts; returns (artifacts, in q, latent q, stats)."""
    import torch

    from crossl_edge.model.encoders import encoder_macs
    from crossl_edge.runtime.backends import OnnxRunner, TFLiteRunner
    from crossl_edge.export import onnx_export, tflite_export, tflm
    from crossl_edge.export.keras_twin import keras_encoder

    _, c, t = calib.shape
    pick = np.unique(np.linspace(0, len(calib) - 1, CHECK_WINDOWS).round().astype(int))
    check = calib[pick]                                                  # (n, C, T)
    with torch.no_grad():
        ref = encoder(torch.from_numpy(check)).numpy()                   # (n, D)
    arts = {k: f"encoders/{name}{s}" for k, s in (("onnx", ".onnx"), ("onnx_int8", ".int8.onnx"),
                                                  ("tflite", ".tflite"),
                                                  ("tflite_int8", ".int8.tflite"))}
    stats: dict[str, Any] = {"checks": {}}
    f_onnx = onnx_export.encoder_onnx(encoder, channels=c, window=t)
    p = _write(root, arts["onnx"], f_onnx)
    stats["checks"]["onnx_max_abs_err"] = _float_check(
        f"{name} ONNX float", run_each(OnnxRunner(p), check), ref)
    advance(info=f"{name}: onnx")
    twin = keras_encoder(encoder, window=t, name=f"{name}_encoder")
    _float_check(f"{name} Keras twin", twin(check.transpose(0, 2, 1)).numpy(), ref)
    p = _write(root, arts["tflite"], tflite_export.encoder_tflite(twin, window=t, channels=c))
    stats["checks"]["tflite_max_abs_err"] = _float_check(
        f"{name} TFLite float", run_each(TFLiteRunner(p), check.transpose(0, 2, 1)), ref)
    advance(info=f"{name}: tflite")
    pct, q_bytes = _pick_input_range(root / arts["tflite_int8"], twin, encoder, calib)
    stats["calibration_input_percentile"] = pct
    p = _write(root, arts["tflite_int8"], q_bytes)
    runner = TFLiteRunner(p)
    i, o = runner.inputs[0], runner.outputs[0]
    qin, qlat = QParams(i.scale, i.zero_point), QParams(o.scale, o.zero_point)
    x_q = qin.quantize(check.transpose(0, 2, 1))                          # (n, T, C) int8
    y_q = run_each(runner, x_q)                                           # (n, D) int8
    stats["checks"]["tflite_int8_mean_cosine"] = _cosine_check(
        f"{name} TFLite int8", qlat.dequantize(y_q), ref)
    bad = tflite_export.float_tensor_ops(q_bytes)
    if bad:
        raise CheckFailed(f"{name} int8 TFLite still computes in float ({', '.join(bad)}); "
                          "it cannot run on an int8-only microcontroller.")
    ops = tflite_export.builtin_ops(q_bytes)
    if any(op.startswith("CUSTOM") for op in ops):
        raise CheckFailed(f"{name} int8 TFLite uses custom ops {ops}; TFLite Micro lacks them.")
    stats.update({"tflite_int8_ops": ops, "tflite_int8_op_count": tflite_export.op_count(q_bytes)})
    advance(info=f"{name}: tflite int8")
    p_onnx8 = _write(root, arts["onnx_int8"], onnx_export.encoder_onnx_int8(
        f_onnx, calibration=tflite_export.clip_percentile(calib, pct)))
    stats["checks"]["onnx_int8_mean_cosine"] = _cosine_check(
        f"{name} ONNX int8", run_each(OnnxRunner(p_onnx8), check), ref)
    advance(info=f"{name}: onnx int8")
    if tflm.tflm_available():
        micro = tflm.run_tflm(p, x_q[:, None])[:, 0]                     # (n, D) int8
        builtin = run_each(TFLiteRunner(p, xnnpack=False), x_q)          # same kernels family
        lsb = int(np.abs(micro.astype(int) - builtin.astype(int)).max())
        if lsb > tflm.TFLM_MAX_LSB:
            raise CheckFailed(f"{name} int8 TFLite gives different results on TFLite Micro "
                              f"({lsb} LSB off LiteRT's builtin kernels); report this model.")
        arena = tflm.measure_arena(p)
        stats["tflm"] = {"max_lsb_vs_litert_builtin": lsb,
                         "arena_recorded_bytes": arena.recorded_bytes,
                         "arena_min_bytes": arena.minimum_bytes, "version": tflm.tflm_version()}
    else:
        log.warning("tflite-micro is not installed: %s was not run on TFLite Micro", name)
        stats["tflm"] = None
    advance(info=f"{name}: tflm")
    stats.update({
        "params": int(sum(p.numel() for p in encoder.parameters())),
        "macs": int(encoder_macs(encoder, t)),
        "size_bytes": {k: (root / rel).stat().st_size for k, rel in arts.items()},
    })
    return arts, qin, qlat, stats


def export_phone(root: Path, *, model: Any, n_mod: int, dim: int) -> dict[str, str]:
    """Write and check the phone model (aggregator + head) as float TFLite and ONNX."""
    import torch

    from crossl_edge.model.crossl import PhoneModel
    from crossl_edge.runtime.backends import OnnxRunner, TFLiteRunner
    from crossl_edge.export import onnx_export, tflite_export
    from crossl_edge.export.keras_twin import keras_phone

    phone = PhoneModel(model).eval()
    arts = {"onnx": "phone/phone.onnx", "tflite": "phone/phone.tflite"}
    _write(root, arts["onnx"], onnx_export.phone_onnx(phone, n_modalities=n_mod, latent_dim=dim))
    twin = keras_phone(phone, n_modalities=n_mod, latent_dim=dim)
    _write(root, arts["tflite"],
           tflite_export.phone_tflite(twin, n_modalities=n_mod, latent_dim=dim))
    rng = np.random.default_rng(0)
    runners = {k: (OnnxRunner if k == "onnx" else TFLiteRunner)(root / v) for k, v in arts.items()}
    for s in range(2 ** n_mod - 1):
        lat = rng.standard_normal((1, n_mod, dim)).astype(np.float32)
        pres = np.array([[(s + 1) >> j & 1 for j in range(n_mod)]], np.float32)
        with torch.no_grad():
            ref = phone(torch.from_numpy(lat), torch.from_numpy(pres)).numpy()
        for kind, r in runners.items():
            _float_check(f"phone model {kind}", r.run(lat, pres), ref)
    return arts


def _publish_modes(root: Path) -> None:
    """Temp files are created 0600/0700; a bundle is meant to be shared: 0644 files, 0755 dirs."""
    root.chmod(0o755)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)


def _source(info: Any, data: str | None) -> dict[str, Any]:
    from crossl_edge.train import checkpoint

    train = info.meta.get("train", {})
    return {"run": str(info.path.resolve()), "dataset": info.meta["dataset"],
            "data_path": data or train.get("data_path"),
            "data_options": train.get("data_options") or {},
            "encoder": info.meta["model"]["encoder"],
            "model_sha256": file_sha256(info.path / checkpoint.MODEL)}


def export_bundle(run_dir: str | Path, out: str | Path, *, calibration_windows: int | None = None,
                  data: str | None = None, progress: Progress | None = None) -> Manifest:
    """Export run ``run_dir`` to bundle ``out`` (replaced atomically; nothing left on failure)."""
    from crossl_edge.rundir import load_model, load_run_dataset
    from crossl_edge.export.tflite_export import check_calibration, import_tf

    advance = progress or (lambda *a, **k: None)
    t0 = time.perf_counter()
    info, model = load_model(run_dir)
    ds = load_run_dataset(info, data=data)
    train = info.normalizer.transform(ds.train)
    idx = calibration_indices(len(train), calibration_windows)
    import_tf()
    out = Path(out)
    entries = []
    with output_dir(out, kind="bundle", inputs=(run_dir, data)) as tmp:
        for mid, spec in enumerate(info.modalities):
            calib = check_calibration(train.data[spec.name][idx], name=spec.name)
            arts, qin, qlat, stats = export_encoder(tmp, name=spec.name,
                                                    encoder=model.encoders[spec.name],
                                                    calib=calib, advance=advance)
            norm = info.normalizer
            entries.append(ModalityEntry(
                name=spec.name, id=mid, channels=list(spec.channels),
                window=int(calib.shape[2]), sample_rate_hz=spec.sample_rate_hz,
                normalization={"mean": norm.mean[spec.name].tolist(),
                               "std": norm.std[spec.name].tolist()},
                layout="NWC", artifacts=arts,
                sha256={k: file_sha256(tmp / v) for k, v in arts.items()},
                input_quant=qin, latent_quant=qlat, onnx_layout="NCW", stats=stats))
        dim = int(model.cfg.latent_dim)
        phone_arts = export_phone(tmp, model=model, n_mod=len(entries), dim=dim)
        advance(info="phone model")
        agg = AggregatorEntry(phone_arts, {k: file_sha256(tmp / v) for k, v in phone_arts.items()},
                              PHONE_INPUTS, "logits")
        n_samples = min(len(ds.test), MAX_SAMPLES)
        _write(tmp, SAMPLES, samples_bytes({e.name: ds.test.data[e.name][:n_samples]
                                            for e in entries}, ds.test.labels[:n_samples]))
        extra = {"source": _source(info, data), "versions": versions(),
                 "calibration": {"windows": int(len(idx)), "of": int(len(train)),
                                 "selection": "evenly spaced over the normalized training split"},
                 "layouts": {"tflite_input": "NWC (1, T, C)", "onnx_input": "NCW (1, C, T)",
                             "latent": "(1, D)", "phone_inputs": "latents (1, M, D) float32 "
                             "(int8 latents dequantized with quantization.latent), present "
                             "(1, M) float32 1/0"},
                 "samples": {"path": SAMPLES, "sha256": file_sha256(tmp / SAMPLES),
                             "windows": int(n_samples), "split": "test",
                             "content": "raw sensor windows x_<modality> (N, C, T) float32 in "
                             "the units of the recording, labels y (N,)"},
                 "phone_int8": "not exported: the phone model is tiny and runs in float"}
        manifest = seal(Manifest(tmp, BUNDLE_FORMAT_VERSION, __version__, list(info.classes),
                                 dim, 0, entries, agg, extra))
        write_json(tmp / MANIFEST, to_json(manifest))
        _publish_modes(tmp)
    log.info("exported %s to %s in %.1f s", run_dir, out, time.perf_counter() - t0)
    return dataclasses.replace(manifest, root=out)
