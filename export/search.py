"""The exporter's search over quantization schemes, per format, on the calibration windows.

TFLite candidates also run on TFLite Micro: a few LSB of rounding difference is a measured note,
a changed prediction disqualifies the candidate. Ranks the int8 layers when nothing passes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.atomic import write_bytes
from crossl_edge.errors import CheckFailed
from crossl_edge.export.progress import Tracker
from crossl_edge.export.schemes import (
    TFLITE_SCHEMES,
    Judge,
    Scheme,
    SchemeRecord,
    Targets,
    Trial,
    choose,
    onnx_schemes,
    preferred,
    record,
)
from crossl_edge.manifest import QParams
from crossl_edge.metrics import sqnr_db
from crossl_edge.runtime.backends import run_each

log = logging.getLogger(__name__)

PATIENCE = 3   # later candidates the leading passing TFLite candidate must withstand (measured)

class SearchFailed(CheckFailed):
    """No scheme met the targets; ``report`` says what was tried and which layers are to blame."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


def tflite_int8_latents(model: str | Path | bytes, windows: np.ndarray, *, xnnpack: bool = True,
                        ) -> tuple[np.ndarray, np.ndarray, QParams, QParams]:
    """Run an int8 TFLite model (a path or its bytes) on normalized windows (N, C, T) ->
    (float latents, int8 latents, input qparams, latent qparams)."""
    from crossl_edge.runtime.backends import TFLiteRunner

    r = TFLiteRunner(model, xnnpack=xnnpack)
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

    model = path.read_bytes()
    lat_x, q_x, qin, qlat = tflite_int8_latents(model, windows)
    _, q_b, _, _ = tflite_int8_latents(model, windows, xnnpack=False)
    micro = tflm.run_tflm(path, qin.quantize(windows.transpose(0, 2, 1))[:, None])[:, 0]
    return {**tflm.compare_lsb(micro, q_b, q_x),
            "prediction_disagreements": judge.disagreements(name, qlat.dequantize(micro), lat_x),
            "windows": int(len(windows)), "version": tflm.tflm_version()}


Twins = Callable[[str], Any]   # LayerNorm form (keras_twin.LAYERNORMS) -> Keras twin


@dataclass
class Search:
    """One modality's search: its calibration windows (also the judged windows), the judge, the
    thresholds, where progress goes, and the time budget (``deadline`` on time.monotonic(): no
    candidate starts after it once one passes). ``scratch`` is a file TFLite Micro (a subprocess)
    reads candidates from. ``patience``: the TFLite search of a LayerNorm form stops once the
    leading passing candidate has withstood that many later ones."""

    name: str
    twins: Twins
    calib: np.ndarray
    judge: Judge
    targets: Targets
    scratch: Path
    tracker: Tracker = field(default_factory=Tracker)
    deadline: float | None = None
    patience: int = PATIENCE

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def step(self, stage: str, message: str, **kw: int) -> None:
        self.tracker.step(stage, message, modality=self.name, **kw)


@dataclass
class Outcome:
    """What a format's search tried, what it chose and why, and whether the budget cut it short."""

    trials: list[Trial]
    chosen: Trial | None
    why: str
    cut_short: bool = False

    def record(self) -> SchemeRecord:
        return record(self.trials, self.chosen, self.why, cut_short=self.cut_short)


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


def _tflite_trial(s: Scheme, job: Search) -> Trial:
    """One scheme scored out of sample: each window's latent comes from the scheme calibrated on
    the other half (cross_folds), so ranges that only fit the windows they saw (overfitting) cost
    SQNR instead of winning. The model calibrated on every window (``data``, what ships) is built
    only for the candidates that get that far (_finish); below 8 windows it is the one scored."""
    t = Trial(s)
    calib = job.calib
    folds = cross_folds(len(calib))
    try:
        if not folds:
            t.data = _convert(s, job.twins, calib)
            t.error = _structure_error(t.data)
            if t.error:
                return t
            held = tflite_int8_latents(t.data, calib)[0]
        for k, (fit, out) in enumerate(folds):
            q = _convert(s, job.twins, calib[fit])
            if k == 0 and (err := _structure_error(q)):
                t.error = err
                return t
            lat = tflite_int8_latents(q, calib[out])[0]
            held = held if k else np.empty((len(calib), lat.shape[1]), lat.dtype)
            held[out] = lat
    except CheckFailed as e:
        t.error = str(e)
        return t
    t.scores = {**job.judge.score(job.name, held),
                "scored": "cross-fitted" if folds else "in-sample"}
    return t


def _finish(t: Trial, job: Search) -> None:
    """Build the shipped model of ``t`` (calibrated on every window) and its in-sample SQNR."""
    if not t.data:
        t.data = _convert(t.scheme, job.twins, job.calib)
    lat = tflite_int8_latents(t.data, job.calib)[0]
    t.scores["in_sample_sqnr_db"] = min(sqnr_db(lat, job.judge.reference[job.name]), 99.0)


def _tflm_check(group: list[Trial], job: Search) -> None:
    """Run the passing candidates on TFLite Micro in preferred() order until one agrees with
    LiteRT on every prediction; those that do not are disqualified."""
    from crossl_edge.runtime import tflm

    for t in preferred([t for t in group if t.passes(job.targets)]):
        _finish(t, job)
        if not tflm.tflm_available():
            break
        write_bytes(job.scratch, t.data)
        t.scores["tflm"] = tflm_tolerance(job.scratch, job.calib, job.judge, job.name)
        n = t.scores["tflm"]["prediction_disagreements"]
        job.step("tflm", f"{t.scheme.name}: {t.scores['tflm']['max_lsb_vs_litert_builtin']} LSB "
                 f"vs LiteRT, {n} prediction(s) changed")
        if not n:
            break
        t.error = f"TFLite Micro changes {n} prediction(s) vs LiteRT"
        t.tflm_rejected = True


def tflite_forms(twins: Twins) -> list[str]:
    """The LayerNorm forms whose graphs differ (an encoder without LayerNorm has one)."""
    forms = list(dict.fromkeys(s.layernorm for s in TFLITE_SCHEMES))
    return [f for f in forms if f == "decomposed" or twins(f) is not twins("decomposed")]


def search_tflite(job: Search) -> Outcome:
    """Score the TFLITE_SCHEMES candidates of a LayerNorm form (the XNNPACK-friendly decomposed
    form first) in list order until the leading passing candidate has withstood ``patience``
    later ones (or the budget is spent), then check them on TFLite Micro in preferred() order
    until one agrees with LiteRT; the L2_NORMALIZATION form is tried only when every decomposed
    candidate flips a prediction."""
    trials: list[Trial] = []
    cut = False
    for form in tflite_forms(job.twins):
        schemes = [x for x in TFLITE_SCHEMES if x.layernorm == form]
        group: list[Trial] = []
        lead, since = None, 0
        for k, s in enumerate(schemes):
            if job.out_of_time() and any(t.passes(job.targets) for t in trials + group):
                cut = True
                break
            t = _tflite_trial(s, job)
            group.append(t)
            passing = [x for x in group if x.passes(job.targets)]
            top = preferred(passing)[0] if passing else None
            lead, since = (top, 0) if top is not lead else (lead, since + 1)
            job.step("tflite_int8", f"{k + 1}/{len(schemes)} {s.name}: " + _scored(t))
            if lead is not None and since >= job.patience:
                break
        job.tracker.skip("tflite_int8", len(schemes) - len(group))
        trials += group
        _tflm_check(group, job)
        best, _ = choose(group, job.targets)
        if cut or (best is not None and best.scores["flips"] == 0):
            break
    for form in tflite_forms(job.twins)[len({t.scheme.layernorm for t in trials}):]:
        job.tracker.skip("tflite_int8", sum(x.layernorm == form for x in TFLITE_SCHEMES))
    chosen, why = choose(trials, job.targets)
    if chosen is not None and not chosen.data:
        _finish(chosen, job)
    return Outcome(trials, chosen, _budget_note(why, cut, trials), cut)


def _scored(t: Trial) -> str:
    if not t.scores:
        return f"failed ({t.error})"
    return f"SQNR {t.scores['sqnr_db']:.1f} dB, {t.scores['flips']} flip(s)"


def _budget_note(why: str, cut: bool, trials: list[Trial]) -> str:
    if not cut:
        return why
    return (f"{why}; the search was cut short by --max-search-seconds after {len(trials)} "
            "candidate(s)")


def search_onnx(job: Search, *, float_onnx: bytes, input_percentile: float,
                headroom: float) -> Outcome:
    """Try the ORT schemes in order until one is good (or the budget is spent once one passes)."""
    from crossl_edge.export import onnx_export, tflite_export
    from crossl_edge.runtime.backends import OnnxRunner

    clipped = tflite_export.calibration_set(job.calib, percentile=input_percentile,
                                            headroom=headroom)
    schemes = onnx_schemes(input_percentile, headroom)
    trials: list[Trial] = []
    cut = False
    for k, s in enumerate(schemes):
        if job.out_of_time() and any(t.passes(job.targets) for t in trials):
            cut = True
            break
        t = Trial(s)
        trials.append(t)
        try:
            t.data = onnx_export.encoder_onnx_int8(
                float_onnx, calibration=clipped, method=s.calibration, per_channel=s.per_channel,
                symmetric_activations=s.symmetric_activations, float_ops=s.float_ops,
                int16_activations=s.int16_activations)
            lat = run_each(OnnxRunner(t.data), job.calib)
        except Exception as e:  # noqa: BLE001 - one failing candidate must not stop the search
            t.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        else:
            t.scores = job.judge.score(job.name, lat)
        job.step("onnx_int8", f"{k + 1}/{len(schemes)} {s.name}: " + _scored(t))
        if t.scores and t.good(job.targets):
            break
    job.tracker.skip("onnx_int8", len(schemes) - len(trials))
    chosen, why = choose(trials, job.targets)
    return Outcome(trials, chosen, _budget_note(why, cut, trials), cut)


def worst_layers(twins: Twins, calib: np.ndarray, scheme: Scheme) -> list[dict[str, Any]]:
    """The int8 layers with the largest quantization error, worst first, for ``scheme``."""
    from crossl_edge.export.tflite_export import rank_layers

    return rank_layers(twins(scheme.layernorm), calib, percentile=scheme.input_percentile,
                       headroom=scheme.headroom, per_channel=scheme.per_channel)


def failure_report(name: str, fmt: str, trials: list[Trial], targets: Targets, *, twins: Twins,
                   calib: np.ndarray) -> SearchFailed:
    """The error to raise when no scheme passed, with the worst layers of the best candidate."""
    from crossl_edge.export.schemes import best_effort

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
              "worst_layers": layers,
              "search": record(trials, None, "no candidate met the thresholds").to_json()}
    return SearchFailed(f"no quantization scheme brings {name} {fmt} within the thresholds "
                        f"({len(trials)} tried; {best_txt}); the worst layer is {worst}", report)
