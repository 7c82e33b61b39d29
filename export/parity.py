"""Parity of a bundle: float PyTorch vs every artifact per encoder, and end to end on every
non-empty subset of present modalities for three int8 pipelines: TFLite Micro (what the node
runs; the gates apply to it and to ONNX int8), LiteRT and ONNX Runtime.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.attribution import subset_table_warnings
from crossl_edge.errors import UsageError
from crossl_edge.export.decision import (
    bootstrap_f1,
    changed_windows,
    failures,
    judge,
    margin_summary,
)
from crossl_edge.export.thresholds import ParityThresholds
from crossl_edge.manifest import MANIFEST, Manifest, ModalityEntry
from crossl_edge.metrics import cosine_rows, scores, sqnr_db
from crossl_edge.runtime import tflm
from crossl_edge.runtime.backends import dist_version, run_each
from crossl_edge.runtime.bundle import open_bundle

__all__ = ["PIPELINES", "ParityResult", "ParityThresholds", "changed_windows", "format_table",
           "margin_summary", "run_parity"]

log = logging.getLogger(__name__)

# int8 pipelines checked end to end: int8 encoders on TFLite Micro / LiteRT / ONNX Runtime ->
# dequantize -> float phone model (TFLite for the first two, ONNX for the last)
PIPELINES = ("tflm_int8", "tflite_int8", "onnx_int8")
NODE = "tflm_int8"                 # what a sensor node runs: the node side's gates judge it
NODE_FALLBACK = "tflite_int8"      # judged in its place where tflite-micro is not installed


@dataclass
class ParityResult:
    """Everything parity measured; ``arrays`` (latents, for plots) is left out of the JSON.
    ``pipelines``: the int8 pipelines measured here; ``gated``: those the decision applies to."""

    bundle: str
    reference: str
    n_windows: int
    thresholds: ParityThresholds
    encoders: dict[str, dict[str, Any]]
    subsets: list[dict[str, Any]]
    failures: list[str]
    runtimes: dict[str, str]
    suspects: list[str] = field(default_factory=list)      # encoders involved in a failure
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    notes: list[str] = field(default_factory=list)         # measured, within tolerance
    schemes: dict[str, dict[str, Any]] = field(default_factory=dict)  # chosen int8 schemes
    pipelines: list[str] = field(default_factory=lambda: [NODE_FALLBACK, "onnx_int8"])
    gated: list[str] = field(default_factory=lambda: [NODE_FALLBACK, "onnx_int8"])

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def f1_gated(self) -> bool:
        """Whether the test set is large enough for the macro-F1 gate."""
        return self.thresholds.gates_f1(self.n_windows)

    def to_json(self) -> dict[str, Any]:
        return {"bundle": self.bundle, "passed": self.passed, "reference": self.reference,
                "n_windows": self.n_windows, "thresholds": asdict(self.thresholds),
                "pipelines": self.pipelines, "gated": self.gated, "f1_gated": self.f1_gated,
                "encoders": self.encoders, "subsets": self.subsets, "failures": self.failures,
                "suspects": self.suspects, "runtimes": self.runtimes, "notes": self.notes,
                "schemes": self.schemes}


def latent_stats(got: np.ndarray, ref: np.ndarray, scale: float) -> dict[str, float]:
    """Cosine mean/min, SQNR (dB) and error in output LSBs of latents (N, D) vs reference."""
    cos = cosine_rows(got, ref)
    err = np.abs(got - ref)
    return {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
            "sqnr_db": sqnr_db(got, ref), "max_err_lsb": float(err.max() / scale),
            "p99_err_lsb": float(np.percentile(err, 99) / scale),
            "max_abs_err": float(err.max())}


def chosen_schemes(m: Manifest) -> dict[str, dict[str, Any]]:
    """Per modality and int8 format: the scheme the exporter chose and why (from manifest.json's
    ``quantization.scheme``; empty for bundles exported before the search existed)."""
    import json

    from crossl_edge.export.schemes import SchemeRecord

    raw = json.loads((m.root / MANIFEST).read_text())
    out: dict[str, dict[str, Any]] = {}
    for mod in raw.get("modalities", []):
        recs = SchemeRecord.read((mod.get("quantization") or {}).get("scheme"))
        out[mod["name"]] = {f: {"scheme": r.chosen, "why": r.why, "tried": len(r.tried),
                                "cut_short": r.cut_short} for f, r in recs.items()}
    return out


def _dataset(m: Manifest, data: str | None) -> Any:
    """The test split named in the manifest's source (``data`` in place of its path)."""
    from crossl_edge.rundir import RunInfo, load_run_dataset

    src = m.provenance.source.to_json() if m.provenance.source else None
    if not isinstance(src, dict) or "dataset" not in src:
        raise UsageError(f"{m.root} records no source dataset; re-export it with this version.")
    meta = {"dataset": src["dataset"],
            "train": {"data_path": src.get("data_path"), "data_options": src.get("data_options")},
            "modalities": [{"name": e.name, "channels": e.channels,
                            "sample_rate_hz": e.sample_rate_hz, "window": e.window}
                           for e in m.modalities]}
    ds = load_run_dataset(RunInfo(Path(src.get("run", ".")), meta), data=data)
    if list(ds.test.classes) != list(m.classes):
        raise UsageError(f"the data's classes {list(ds.test.classes)} differ from the bundle's "
                         f"{m.classes}; pass the data the run was trained on.")
    for e in m.modalities:
        shape = ds.test.data[e.name].shape[1:]
        if shape != (len(e.channels), e.window):
            raise UsageError(f"the data's {e.name!r} windows are {shape}, the bundle expects "
                             f"({len(e.channels)}, {e.window}); pass matching --data.")
    return ds.test


def _reference_model(m: Manifest) -> Any | None:
    """The run's PyTorch model when the run is still there and unchanged, else None."""
    from crossl_edge.manifest import file_sha256
    from crossl_edge.rundir import MODEL_PT
    from crossl_edge.trained import load_model

    src = m.provenance.source.to_json() if m.provenance.source else {}
    run = Path(src.get("run", ""))
    ck = run / MODEL_PT
    if not ck.is_file() or file_sha256(ck) != src.get("model_sha256"):
        log.warning("run %s is gone or changed: the float ONNX artifacts are the reference", run)
        return None
    return load_model(run)[1]


def encoder_parity(m: Manifest, e: ModalityEntry, x: np.ndarray, model: Any | None,
                   ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Per-encoder metrics and latents (N, D) of every format for normalized windows (N, C, T)."""
    from crossl_edge.runtime.backends import OnnxRunner, TFLiteRunner

    lat: dict[str, np.ndarray] = {"onnx": run_each(OnnxRunner(m.path(e.artifacts["onnx"])), x)}
    if model is not None:
        import torch

        with torch.no_grad():
            lat["reference"] = model.encoders[e.name](torch.from_numpy(x)).numpy()
    else:
        lat["reference"] = lat["onnx"]
    ref = lat["reference"]
    x_nwc = x.transpose(0, 2, 1)
    lat["tflite"] = run_each(TFLiteRunner(m.path(e.artifacts["tflite"])), x_nwc)
    q_in = e.input_quant.quantize(x_nwc)                                 # (N, T, C) int8
    int8_path = m.path(e.artifacts["tflite_int8"])
    q_lat = run_each(TFLiteRunner(int8_path), q_in)                      # (N, D) int8, XNNPACK
    q_builtin = run_each(TFLiteRunner(int8_path, xnnpack=False), q_in)
    lat["tflite_int8"] = e.latent_quant.dequantize(q_lat)
    lat["onnx_int8"] = run_each(OnnxRunner(m.path(e.artifacts["onnx_int8"])), x)
    micro_info = None
    if tflm.tflm_available():
        arena = e.stats.arena_recorded_bytes
        micro = tflm.run_tflm(int8_path, q_in[:, None], arena_size=arena and arena + 1024)[:, 0]
        lat["tflm_int8"] = e.latent_quant.dequantize(micro)
        micro_info = {**tflm.compare_lsb(micro, q_builtin, q_lat), "arena_bytes": arena,
                      "version": tflm.tflm_version()}
    scale = e.latent_quant.scale
    out: dict[str, Any] = {
        "float_max_abs_err": {k: float(np.abs(lat[k] - ref).max()) for k in ("onnx", "tflite")},
        "int8": {k: latent_stats(lat[k], ref, scale) for k in PIPELINES if k in lat},
        "litert_xnnpack_vs_builtin_max_lsb": int(np.abs(q_lat.astype(int) - q_builtin).max()),
        "latent_scale": scale,
        "stats": e.stats.to_json(),
        "tflm": micro_info,
    }
    return out, lat


def _float_logits(model: Any | None, phone: Any, z: np.ndarray,
                  pres: np.ndarray) -> np.ndarray:
    """The float model's logits (N, K) on reference latents ``z`` (N, M, D) with ``pres``."""
    if model is None:                  # the float ONNX phone model stands in for PyTorch
        return np.concatenate([phone.run(zi[None], pres) for zi in z])
    import torch

    with torch.no_grad():
        return model.classify(torch.from_numpy(z),
                              torch.from_numpy(np.repeat(pres, len(z), 0))).numpy()


def end_to_end(m: Manifest, lat: dict[str, dict[str, np.ndarray]], labels: np.ndarray,
               model: Any | None, thresholds: ParityThresholds,
               pipelines: list[str]) -> list[dict[str, Any]]:
    """Per subset of modalities: float and each int8 pipeline's scores, flip rate, changed
    windows with their float-margin rank, bootstrap 95% intervals and the decision's verdicts."""
    from crossl_edge.metrics import modality_subsets, presence_vector
    from crossl_edge.runtime.backends import OnnxRunner, TFLiteRunner

    names = m.names
    stack = {k: np.stack([lat[n][k] for n in names], axis=1)
             for k in ("reference", *pipelines)}
    tfl = TFLiteRunner(m.path(m.aggregator.artifacts["tflite"]))
    onnx = OnnxRunner(m.path(m.aggregator.artifacts["onnx"]))
    phone = {p: onnx if p == "onnx_int8" else tfl for p in pipelines}
    k = len(m.classes)
    rows = []
    for subset in modality_subsets(names):
        pres = presence_vector(names, subset)[None]                          # (1, M)
        logits_f = _float_logits(model, onnx, stack["reference"], pres)
        pred_f = logits_f.argmax(-1)                                        # (N,)
        preds = {p: np.array([phone[p].run(z[None], pres).argmax() for z in stack[p]])
                 for p in pipelines}
        row: dict[str, Any] = {"present": list(subset), "float": scores(labels, pred_f, k)}
        ci = bootstrap_f1(labels, {"float": pred_f, **preds}, k)
        row["float"].update(ci["float"])
        for p in pipelines:
            row[p] = {**judge(labels, pred_f, logits_f, preds[p], k, thresholds), **ci[p]}
        if "tflm_int8" in preds:
            diff = preds["tflm_int8"] != preds["tflite_int8"]
            row["tflm"] = {"agreement_with_litert": float(1 - diff.mean()),
                           "disagreements": int(diff.sum())}
        rows.append(row)
    return rows


def _latent_failures(name: str, enc: dict[str, Any], gated: list[str],
                     t: ParityThresholds) -> list[str]:
    out = []
    for p in gated:
        c, q = enc["int8"][p]["cosine_mean"], enc["int8"][p]["sqnr_db"]
        if not c >= t.min_cosine:
            out.append(f"{name} {p}: mean latent cosine {c:.4f} < {t.min_cosine}")
        if not q >= t.min_sqnr_db:
            out.append(f"{name} {p}: latent SQNR {q:.1f} dB < {t.min_sqnr_db} dB")
    return out


def run_parity(bundle: str | Path, *, data: str | None = None,
               thresholds: ParityThresholds = ParityThresholds()) -> ParityResult:
    """Measure ``bundle`` against float PyTorch on the run's test split (or ``data``)."""
    m = open_bundle(bundle)
    test = _dataset(m, data)
    model = _reference_model(m)
    encoders, lat, fails, suspects, notes = {}, {}, [], [], []
    for e in m.modalities:
        encoders[e.name], lat[e.name] = encoder_parity(m, e, e.normalize(test.data[e.name]),
                                                       model)
    micro = all("tflm_int8" in lat[n] for n in m.names)
    pipelines = list(PIPELINES) if micro else [NODE_FALLBACK, "onnx_int8"]
    gated = [NODE if micro else NODE_FALLBACK, "onnx_int8"]
    if not micro:
        notes.append("tflite-micro is not installed: the node side is judged on LiteRT's int8 "
                     "kernels (`pip install --pre tflite-micro` to judge what the node runs)")
    for name, enc in encoders.items():
        bad = _latent_failures(name, enc, gated, thresholds)
        fails += bad
        suspects += [name] * bool(bad)
        lsb = (enc["tflm"] or {}).get("max_lsb_vs_litert_builtin", 0)
        if lsb > tflm.TFLM_MAX_LSB:
            notes.append(f"{name}: TFLite Micro rounds up to {lsb} LSB off LiteRT's builtin "
                         f"kernels ({100 * enc['tflm']['latents_differing']:.2f}% of latent "
                         "values differ)")
    subsets = end_to_end(m, lat, test.labels, model, thresholds, pipelines)
    n = len(test)
    for row in subsets:
        present = "+".join(row["present"])
        for p in gated:
            bad = failures(row[p], p, present, n, thresholds)
            fails += bad
            suspects += row["present"] * bool(bad)
        if row.get("tflm", {}).get("disagreements"):
            notes.append(f"{present}: TFLite Micro and LiteRT predict differently on "
                         f"{row['tflm']['disagreements']} of {n} window(s)")
    if not thresholds.gates_f1(n):
        notes.append(f"macro-F1 drop not gated: {n} test windows < {thresholds.min_f1_windows} "
                     "(reported with its bootstrap 95% interval)")
    runtimes = {d: dist_version(d, default="absent")
                for d in ("ai-edge-litert", "onnxruntime", "tflite-micro")}
    arrays = {f"{nm}/{k}": v for nm, d in lat.items() for k, v in d.items()}
    arrays["labels"] = test.labels
    return ParityResult(str(bundle), "pytorch" if model is not None else "onnx-float",
                        n, thresholds, encoders, subsets, fails, runtimes,
                        list(dict.fromkeys(suspects)), arrays, notes, chosen_schemes(m),
                        pipelines, gated)


SHORT = {"tflm_int8": "tflm8", "tflite_int8": "litert8", "onnx_int8": "onnx8"}


def _verdict(v: bool | None) -> str:
    return "n/a" if v is None else "pass" if v else "FAIL"


def threshold_lines(result: ParityResult) -> list[str]:
    """The decision's bars, each with its verdict over every gated subset and pipeline."""
    t, n = result.thresholds, result.n_windows
    gated = ", ".join(result.gated)

    def over(key: str) -> bool | None:
        vs = [r[p]["verdicts"][key] for r in result.subsets for p in result.gated]
        return None if any(v is None for v in vs) else all(vs)

    lat_ok = not any(("cosine" in f or "SQNR" in f) for f in result.failures)
    return [f"threshold: flip rate <= {100 * t.max_flip_rate:g}% ({gated}): "
            f"{_verdict(over('flip_rate'))}",
            f"threshold: changed windows among the float model's {100 * t.margin_quantile:g}% "
            f"closest calls (rank <= {t.closest_calls(n)} of {n}): {_verdict(over('margin'))}",
            f"threshold: macro-F1 drop <= {t.max_f1_drop:g}, gated from {t.min_f1_windows} "
            f"test windows ({n} here): {_verdict(over('f1_drop'))}",
            f"threshold: latent cosine >= {t.min_cosine:g}, SQNR >= {t.min_sqnr_db:g} dB: "
            f"{_verdict(lat_ok)}"]


def format_table(result: ParityResult) -> str:
    """Human-readable summary: per-encoder latent figures, per-subset macro-F1 (with the
    bootstrap 95% interval of the drop), flip rates and verdicts, then the thresholds."""
    lines = [f"{'encoder':<8} {'format':<12} {'cos mean':>9} {'cos min':>8} {'SQNR dB':>8} "
             f"{'max LSB':>8}"]
    for name, enc in result.encoders.items():
        for p, s in enc["int8"].items():
            lines.append(f"{name:<8} {p:<12} {s['cosine_mean']:>9.5f} {s['cosine_min']:>8.4f} "
                         f"{s['sqnr_db']:>8.1f} {s['max_err_lsb']:>8.1f}")
        if enc.get("tflm"):
            lines.append(f"{name:<8} {'tflm':<12} max {enc['tflm']['max_lsb_vs_litert_builtin']} "
                         f"LSB vs LiteRT, arena {enc['tflm']['arena_bytes']} B")
        for fmt, sch in result.schemes.get(name, {}).items():
            lines.append(f"{name:<8} {fmt:<12} scheme {sch['scheme']} ({sch['tried']} tried)")
    lines.append("")
    ps = result.pipelines
    w = max([len("+".join(r["present"])) for r in result.subsets] + [len("present")])
    lines.append(f"{'present':<{w}} {'float F1':>9} "
                 + " ".join(f"{SHORT[p] + ' F1':>10}" for p in ps)
                 + f" {'node drop [95% CI]':>22} " + " ".join(f"{SHORT[p] + ' flip':>11}"
                                                             for p in ps)
                 + f" {'tflm=litert':>12} verdict")
    node = result.gated[0]
    for r in result.subsets:
        agree = r.get("tflm", {}).get("agreement_with_litert")
        lo, hi = r[node]["f1_drop_ci95"]
        ok = all(v is not False for p in result.gated for v in r[p]["verdicts"].values())
        lines.append(f"{'+'.join(r['present']):<{w}} {r['float']['macro_f1']:>9.3f} "
                     + " ".join(f"{r[p]['macro_f1']:>10.3f}" for p in ps)
                     + f" {r[node]['f1_drop']:>+7.3f} [{lo:+.3f}, {hi:+.3f}] "
                     + " ".join(f"{100 * r[p]['flip_rate']:>10.2f}%" for p in ps)
                     + f" {'-' if agree is None else f'{agree:.3f}':>12} "
                     + ("pass" if ok else "FAIL"))
    lines.append("")
    lines.append(f"gated pipelines: {', '.join(result.gated)} (node side: {node}); "
                 "drop = float minus int8 macro-F1, interval: paired bootstrap over the test "
                 "windows")
    lines.extend(threshold_lines(result))
    lines.extend(f"note: {x}" for x in result.notes)
    lines.extend(subset_table_warnings(result.subsets))   # removing a modality raises F1
    lines.append("PASSED" if result.passed else "FAILED: " + "; ".join(result.failures))
    return "\n".join(lines)
