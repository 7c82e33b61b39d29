"""Parity of a bundle: float PyTorch vs every artifact per encoder, and end to end (accuracy and
macro-F1 of the deployed int8 pipeline) on every non-empty subset of present modalities.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.errors import UsageError
from crossl_edge.export.thresholds import LatentBars, check_f1_drop
from crossl_edge.manifest import MANIFEST, Manifest, ModalityEntry
from crossl_edge.metrics import cosine_rows, sqnr_db
from crossl_edge.runtime import tflm
from crossl_edge.runtime.backends import dist_version, run_each
from crossl_edge.runtime.bundle import open_bundle

log = logging.getLogger(__name__)

PIPELINES = ("tflite_int8", "onnx_int8")     # deployed int8 pipelines checked end to end


@dataclass(frozen=True, kw_only=True)
class ParityThresholds(LatentBars):
    """Pass bars: mean latent cosine and SQNR per int8 encoder (cosine ignores a wrong scale,
    SQNR does not), and the macro-F1 drop per subset of modalities and int8 pipeline."""

    max_f1_drop: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        check_f1_drop(self.max_f1_drop)


@dataclass
class ParityResult:
    """Everything parity measured; ``arrays`` (latents, for plots) is left out of the JSON."""

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

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"bundle": self.bundle, "passed": self.passed, "reference": self.reference,
                "n_windows": self.n_windows, "thresholds": asdict(self.thresholds),
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

    raw = json.loads((m.root / MANIFEST).read_text())
    out: dict[str, dict[str, Any]] = {}
    for mod in raw.get("modalities", []):
        rec = (mod.get("quantization") or {}).get("scheme") or {}
        out[mod["name"]] = {f: {"scheme": r.get("chosen"), "why": r.get("why"),
                                "tried": len(r.get("tried", []))}
                            for f, r in rec.items() if isinstance(r, dict) and "chosen" in r}
    return out


def _dataset(m: Manifest, data: str | None) -> Any:
    """The test split named in the manifest's source (``data`` in place of its path)."""
    from crossl_edge.rundir import RunInfo, load_run_dataset

    src = m.extra.get("source")
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

    src = m.extra.get("source", {})
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
    q_lat = run_each(TFLiteRunner(int8_path), q_in)                          # (N, D) int8, XNNPACK
    q_builtin = run_each(TFLiteRunner(int8_path, xnnpack=False), q_in)
    lat["tflite_int8"] = e.latent_quant.dequantize(q_lat)
    lat["onnx_int8"] = run_each(OnnxRunner(m.path(e.artifacts["onnx_int8"])), x)
    scale = e.latent_quant.scale
    out: dict[str, Any] = {
        "float_max_abs_err": {k: float(np.abs(lat[k] - ref).max()) for k in ("onnx", "tflite")},
        "int8": {k: latent_stats(lat[k], ref, scale) for k in PIPELINES},
        "litert_xnnpack_vs_builtin_max_lsb": int(np.abs(q_lat.astype(int) - q_builtin).max()),
        "latent_scale": scale,
        "stats": e.stats,
    }
    if tflm.tflm_available():
        arena = (e.stats.get("tflm") or {}).get("arena_recorded_bytes")
        micro = tflm.run_tflm(int8_path, q_in[:, None], arena_size=arena and arena + 1024)[:, 0]
        lat["tflm"] = e.latent_quant.dequantize(micro)
        out["tflm"] = {"max_lsb_vs_litert_builtin": int(np.abs(micro.astype(int) - q_builtin)
                                                        .max()),
                       "max_lsb_vs_litert_xnnpack": int(np.abs(micro.astype(int) - q_lat).max()),
                       "latents_differing": float((micro != q_builtin).mean()),
                       "arena_bytes": arena, "version": tflm.tflm_version()}
    else:
        out["tflm"] = None
    return out, lat


def changed_windows(pred_f: np.ndarray, pred: np.ndarray,
                    margin: np.ndarray) -> list[dict[str, Any]]:
    """Windows whose int8 prediction differs from float, with the float model's own top-1 minus
    top-2 logit margin and its rank among all windows (1 = the closest call of the test set)."""
    rank = np.empty(len(margin), int)
    rank[np.argsort(margin, kind="stable")] = np.arange(1, len(margin) + 1)
    return [{"window": int(i), "float_margin": float(margin[i]), "margin_rank": int(rank[i])}
            for i in np.flatnonzero(pred != pred_f)]


def margin_summary(changed: list[dict[str, Any]], n: int) -> str:
    """One phrase on where the changed windows sit among the float model's calls."""
    ranks = sorted(c["margin_rank"] for c in changed)
    if len(ranks) <= 5:
        return (f"changed windows' float-margin rank {', '.join(map(str, ranks))} of {n}, "
                "1 = the closest call")
    return (f"{len(ranks)} changed windows, float-margin rank median {int(np.median(ranks))} "
            f"of {n} (1 = the closest call), {sum(r <= n // 10 for r in ranks)} in the closest "
            "10%")


def end_to_end(m: Manifest, lat: dict[str, dict[str, np.ndarray]], labels: np.ndarray,
               model: Any | None) -> list[dict[str, Any]]:
    """Accuracy/macro-F1/confusion of float vs each int8 pipeline on every modality subset."""
    from crossl_edge.metrics import modality_subsets, presence_vector, scores
    from crossl_edge.runtime.backends import OnnxRunner, TFLiteRunner

    names = m.names
    kinds = ("reference", *PIPELINES) + (("tflm",) if all("tflm" in lat[n] for n in names) else ())
    stack = {k: np.stack([lat[n][k] for n in names], axis=1) for k in kinds}
    phone = {"tflite_int8": TFLiteRunner(m.path(m.aggregator.artifacts["tflite"])),
             "onnx_int8": OnnxRunner(m.path(m.aggregator.artifacts["onnx"]))}
    k = len(m.classes)
    rows = []
    for subset in modality_subsets(names):
        pres = presence_vector(names, subset)[None]                          # (1, M)
        if model is not None:
            import torch

            with torch.no_grad():
                logits = model.classify(torch.from_numpy(stack["reference"]),
                                        torch.from_numpy(np.repeat(pres, len(labels), 0)))
            logits_f = logits.numpy()
        else:
            logits_f = np.concatenate([phone["onnx_int8"].run(z[None], pres)
                                       for z in stack["reference"]])
        pred_f = logits_f.argmax(-1)                                        # (N,)
        margin = np.diff(np.sort(logits_f, axis=-1)[:, -2:], axis=-1)[:, 0]  # top-1 - top-2
        row: dict[str, Any] = {"present": list(subset), "float": scores(labels, pred_f, k)}
        for p in PIPELINES:
            pred = np.array([phone[p].run(z[None], pres).argmax() for z in stack[p]])
            row[p] = scores(labels, pred, k)
            row[p]["f1_drop"] = row["float"]["macro_f1"] - row[p]["macro_f1"]
            row[p]["agreement"] = float((pred == pred_f).mean())
            row[p]["changed"] = changed_windows(pred_f, pred, margin)
            if p == "tflite_int8" and "tflm" in stack:
                micro = np.array([phone[p].run(z[None], pres).argmax() for z in stack["tflm"]])
                row["tflm"] = {"agreement_with_litert": float((micro == pred).mean()),
                               "disagreements": int((micro != pred).sum())}
        rows.append(row)
    return rows


def run_parity(bundle: str | Path, *, data: str | None = None,
               thresholds: ParityThresholds = ParityThresholds()) -> ParityResult:
    """Measure ``bundle`` against float PyTorch on the run's test split (or ``data``)."""
    m = open_bundle(bundle)
    test = _dataset(m, data)
    model = _reference_model(m)
    encoders, lat, failures, suspects, notes = {}, {}, [], [], []
    for e in m.modalities:
        encoders[e.name], lat[e.name] = encoder_parity(m, e, e.normalize(test.data[e.name]),
                                                       model)
        for p in PIPELINES:
            c = encoders[e.name]["int8"][p]["cosine_mean"]
            if not c >= thresholds.min_cosine:
                failures.append(f"{e.name} {p}: mean latent cosine {c:.4f} < "
                                f"{thresholds.min_cosine}")
                suspects.append(e.name)
            q = encoders[e.name]["int8"][p]["sqnr_db"]
            if not q >= thresholds.min_sqnr_db:
                failures.append(f"{e.name} {p}: latent SQNR {q:.1f} dB < "
                                f"{thresholds.min_sqnr_db} dB")
                suspects.append(e.name)
        micro = encoders[e.name]["tflm"]
        if micro and micro["max_lsb_vs_litert_builtin"] > tflm.TFLM_MAX_LSB:
            notes.append(f"{e.name}: TFLite Micro rounds up to "
                         f"{micro['max_lsb_vs_litert_builtin']} LSB off LiteRT's builtin kernels "
                         f"({100 * micro['latents_differing']:.2f}% of latent values differ)")
    subsets = end_to_end(m, lat, test.labels, model)
    for row in subsets:
        if row.get("tflm", {}).get("disagreements"):
            failures.append(f"{'+'.join(row['present'])}: TFLite Micro and LiteRT predict "
                            f"differently on {row['tflm']['disagreements']} window(s)")
            suspects.extend(row["present"])
        for p in PIPELINES:
            if row[p]["f1_drop"] > thresholds.max_f1_drop + 1e-9:
                failures.append(f"{'+'.join(row['present'])} {p}: macro-F1 drop "
                                f"{row[p]['f1_drop']:.3f} > {thresholds.max_f1_drop} "
                                f"({margin_summary(row[p]['changed'], len(test))})")
                suspects.extend(row["present"])
    runtimes = {d: dist_version(d, default="absent")
                for d in ("ai-edge-litert", "onnxruntime", "tflite-micro")}
    arrays = {f"{n}/{k}": v for n, d in lat.items() for k, v in d.items()}
    arrays["labels"] = test.labels
    return ParityResult(str(bundle), "pytorch" if model is not None else "onnx-float",
                        len(test), thresholds, encoders, subsets, failures, runtimes,
                        list(dict.fromkeys(suspects)), arrays, notes, chosen_schemes(m))


def format_table(result: ParityResult) -> str:
    """Human-readable summary: per-encoder latent figures, then per-subset accuracy/macro-F1."""
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
    lines.append(f"{'present':<20} {'float F1':>9} {'tflite8 F1':>11} {'onnx8 F1':>9} "
                 f"{'float acc':>10} {'tflite8 acc':>12} {'tflm=litert':>12}")
    for r in result.subsets:
        agree = r.get("tflm", {}).get("agreement_with_litert")
        lines.append(f"{'+'.join(r['present']):<20} {r['float']['macro_f1']:>9.3f} "
                     f"{r['tflite_int8']['macro_f1']:>11.3f} {r['onnx_int8']['macro_f1']:>9.3f} "
                     f"{r['float']['accuracy']:>10.3f} {r['tflite_int8']['accuracy']:>12.3f} "
                     f"{'-' if agree is None else f'{agree:.3f}':>12}")
    lines.append("")
    lines.extend(f"note: {n}" for n in result.notes)
    lines.append("PASSED" if result.passed else "FAILED: " + "; ".join(result.failures))
    return "\n".join(lines)
