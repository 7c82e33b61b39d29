"""The exporter's search over quantization schemes, per format, on the calibration windows.

TFLite candidates also run on TFLite Micro: a few LSB of rounding difference is a measured note,
a changed prediction disqualifies the candidate. Ranks the int8 layers when nothing passes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.atomic import write_bytes
from crossl_edge.errors import CheckFailed
from crossl_edge.export.schemes import (
    TFLITE_SCHEMES,
    Judge,
    Scheme,
    Targets,
    Trial,
    choose,
    onnx_schemes,
    preferred,
)
from crossl_edge.manifest import QParams
from crossl_edge.metrics import sqnr_db
from crossl_edge.runtime.backends import run_each

log = logging.getLogger(__name__)

class SearchFailed(CheckFailed):
    """No scheme met the targets; ``report`` says what was tried and which layers are to blame."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


def tflite_int8_latents(path: Path, windows: np.ndarray, *, xnnpack: bool = True,
                        ) -> tuple[np.ndarray, np.ndarray, QParams, QParams]:
    """Run an int8 .tflite on normalized windows (N, C, T) -> (float latents, int8 latents,
    input qparams, latent qparams)."""
    from crossl_edge.runtime.backends import TFLiteRunner

    r = TFLiteRunner(path, xnnpack=xnnpack)
    i, o = r.inputs[0], r.outputs[0]
    qin, qlat = QParams(i.scale, i.zero_point), QParams(o.scale, o.zero_point)
    y = run_each(r, qin.quantize(windows.transpose(0, 2, 1)))
    return qlat.dequantize(y), y, qin, qlat


def _structure_error(q: bytes) -> str | None:
    from crossl_edge import tflite_graph
    from crossl_edge.export import tflite_export

    bad = tflite_export.float_tensor_ops(q)
    if bad:
        return f"still computes in float ({', '.join(bad)}): not runnable on an int8-only MCU"
    custom = [op for op in tflite_graph.builtin_ops(q) if op.startswith("CUSTOM")]
    return f"uses custom ops {custom} that TFLite Micro lacks" if custom else None


def tflm_tolerance(path: Path, windows: np.ndarray, judge: Judge, name: str) -> dict[str, Any]:
    """TFLite Micro vs LiteRT on ``windows``: LSB differences and prediction disagreements."""
    from crossl_edge.runtime import tflm

    lat_x, q_x, qin, qlat = tflite_int8_latents(path, windows)
    _, q_b, _, _ = tflite_int8_latents(path, windows, xnnpack=False)
    micro = tflm.run_tflm(path, qin.quantize(windows.transpose(0, 2, 1))[:, None])[:, 0]
    return {**tflm.compare_lsb(micro, q_b, q_x),
            "prediction_disagreements": judge.disagreements(name, qlat.dequantize(micro), lat_x),
            "windows": int(len(windows)), "version": tflm.tflm_version()}


Twins = Callable[[str], Any]   # LayerNorm form (keras_twin.LAYERNORMS) -> Keras twin


def cross_folds(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Two folds (calibrate on one half, score the other) from 8 calibration windows up; none
    below, where candidates are scored in-sample."""
    from crossl_edge.export.tflite_export import MIN_CALIBRATION

    if n < 2 * MIN_CALIBRATION:
        return []
    even, odd = np.arange(0, n, 2), np.arange(1, n, 2)
    return [(even, odd), (odd, even)]


def _convert(s: Scheme, twins: Twins, windows: np.ndarray) -> bytes:
    from crossl_edge.export import tflite_export

    return tflite_export.encoder_tflite_int8(
        twins(s.layernorm), window=windows.shape[2], channels=windows.shape[1],
        per_channel=s.per_channel, calibration=tflite_export.calibration_set(
            windows, percentile=s.input_percentile, headroom=s.headroom))


def _tflite_trial(scratch: Path, s: Scheme, *, twins: Twins, calib: np.ndarray, judge: Judge,
                  name: str) -> Trial:
    """One scheme: the model calibrated on every window (``data``), scored out of sample: each
    window's latent comes from the same scheme calibrated on the other half (cross_folds), so
    ranges that only fit the windows they saw (overfitting) cost SQNR instead of winning."""
    t = Trial(s)
    folds = cross_folds(len(calib))
    try:
        t.data = _convert(s, twins, calib)
        t.error = _structure_error(t.data)
        if t.error:
            return t
        write_bytes(scratch, t.data)
        in_sample = tflite_int8_latents(scratch, calib)[0]
        held = in_sample.copy()
        for fit, out in folds:
            write_bytes(scratch, _convert(s, twins, calib[fit]))
            held[out] = tflite_int8_latents(scratch, calib[out])[0]
    except CheckFailed as e:
        t.error = str(e)
        return t
    t.scores = {**judge.score(name, held), "scored": "cross-fitted" if folds else "in-sample",
                "in_sample_sqnr_db": min(sqnr_db(in_sample, judge.reference[name]), 99.0)}
    return t


def search_tflite(scratch: Path, *, twins: Twins, calib: np.ndarray, judge: Judge, name: str,
                  targets: Targets, log_step: Callable[[str], None]) -> tuple[list[Trial],
                                                                              Trial | None, str]:
    """Score every TFLITE_SCHEMES candidate of a LayerNorm form (the XNNPACK-friendly decomposed
    form first), then check them on TFLite Micro in preferred() order until one agrees with LiteRT;
    the L2_NORMALIZATION form is tried only when every decomposed candidate flips a prediction."""
    from crossl_edge.runtime import tflm

    trials: list[Trial] = []
    for form in dict.fromkeys(s.layernorm for s in TFLITE_SCHEMES):
        if form != "decomposed" and twins(form) is twins("decomposed"):
            continue    # no LayerNorm in this encoder: the same graphs as the schemes tried
        group = []
        for s in (x for x in TFLITE_SCHEMES if x.layernorm == form):
            t = _tflite_trial(scratch, s, twins=twins, calib=calib, judge=judge, name=name)
            group.append(t)
            if t.scores:
                log_step(f"{name}: tflite int8 {s.name} SQNR {t.scores['sqnr_db']:.1f} dB, "
                         f"{t.scores['flips']} flip(s)")
        trials += group
        for t in preferred([t for t in group if t.passes(targets)]):
            if not tflm.tflm_available():
                break
            write_bytes(scratch, t.data)
            t.scores["tflm"] = tflm_tolerance(scratch, calib, judge, name)
            if not t.scores["tflm"]["prediction_disagreements"]:
                break
            t.error = (f"TFLite Micro changes {t.scores['tflm']['prediction_disagreements']} "
                       "prediction(s) vs LiteRT")
            t.tflm_rejected = True
        best, _ = choose(group, targets)
        if best is not None and best.passes(targets) and best.scores["flips"] == 0:
            break
    chosen, why = choose(trials, targets)
    return trials, chosen, why


def search_onnx(scratch: Path, *, float_onnx: bytes, calib: np.ndarray, judge: Judge, name: str,
                input_percentile: float, headroom: float, targets: Targets,
                log_step: Callable[[str], None]) -> tuple[list[Trial], Trial | None, str]:
    """Try the ORT schemes in order until one is good; returns (trials, chosen, why)."""
    from crossl_edge.export import onnx_export, tflite_export
    from crossl_edge.runtime.backends import OnnxRunner

    clipped = tflite_export.calibration_set(calib, percentile=input_percentile,
                                            headroom=headroom)
    trials: list[Trial] = []
    for s in onnx_schemes(input_percentile, headroom):
        t = Trial(s)
        trials.append(t)
        try:
            t.data = onnx_export.encoder_onnx_int8(
                float_onnx, calibration=clipped, method=s.calibration, per_channel=s.per_channel,
                symmetric_activations=s.symmetric_activations, float_ops=s.float_ops,
                int16_activations=s.int16_activations)
            write_bytes(scratch, t.data)
            lat = run_each(OnnxRunner(scratch), calib)
        except Exception as e:  # noqa: BLE001 - one failing candidate must not stop the search
            t.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            continue
        t.scores = judge.score(name, lat)
        log_step(f"{name}: onnx int8 {s.name} SQNR {t.scores['sqnr_db']:.1f} dB, "
                 f"{t.scores['flips']} flip(s)")
        if t.good(targets):
            break
    chosen, why = choose(trials, targets)
    return trials, chosen, why


def worst_layers(twins: Twins, calib: np.ndarray, scheme: Scheme) -> list[dict[str, Any]]:
    """The int8 layers with the largest quantization error, worst first, for ``scheme``."""
    from crossl_edge.export.tflite_export import rank_layers

    return rank_layers(twins(scheme.layernorm), calib, percentile=scheme.input_percentile,
                       headroom=scheme.headroom, per_channel=scheme.per_channel)


def failure_report(name: str, fmt: str, trials: list[Trial], targets: Targets, *, twins: Twins,
                   calib: np.ndarray) -> SearchFailed:
    """The error to raise when no scheme passed, with the worst layers of the best candidate."""
    from crossl_edge.export.schemes import best_effort, record

    best = best_effort(trials)
    try:
        layers = worst_layers(twins, calib, best.scheme if best else TFLITE_SCHEMES[0])
    except Exception as e:  # noqa: BLE001 - the report must still be written
        log.warning("could not rank the layers of %s: %s", name, e)
        layers = [{"error": f"{type(e).__name__}: {e}"}]
    worst = layers[0].get("tensor") or layers[0].get("error", "?")
    best_txt = (f"best {best.scheme.name}: cosine {best.scores['cosine_mean']:.4f}, SQNR "
                f"{best.scores['sqnr_db']:.1f} dB, F1 drop {best.scores['max_f1_drop']:.3f}"
                if best else "no candidate ran")
    report = {"modality": name, "format": fmt, "targets": vars(targets), "best": best_txt,
              "worst_layers": layers, "search": record(trials, None, "no candidate met the "
                                                       "thresholds")}
    return SearchFailed(f"no quantization scheme brings {name} {fmt} within the thresholds "
                        f"({len(trials)} tried; {best_txt}); the worst layer is {worst}", report)
