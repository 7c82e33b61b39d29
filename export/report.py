"""Parity report: parity.json plus one self-contained sign-off page (verdict, what was compared
with what, per-threshold pass/fail, per-subset float vs int8), and a layer-by-layer localisation
with TensorFlow's QuantizationDebugger when a threshold is missed.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.atomic import write_json, write_text
from crossl_edge.bundle_records import Record
from crossl_edge.errors import UsageError
from crossl_edge.export.parity import ParityResult
from crossl_edge.export.report_html import (
    PIPELINE_LABELS,
    STYLE,
    badge,
    cell,
    confusion_figure,
    delta,
    error_figure,
    esc,
    f1_figure,
    num,
    table,
)

log = logging.getLogger(__name__)

def localise_layers(bundle: str | Path, modality: str, *,
                    data: str | None = None) -> list[dict[str, Any]]:
    """Rank the int8 encoder's layers by quantization error (RMSE in units of the layer's scale).

    Rebuilds the Keras twin from the run and re-runs the converter under TensorFlow's
    QuantizationDebugger on the same calibration windows; the top layers are the ones to keep in
    higher precision (or to redesign, e.g. LayerNorm -> BatchNorm as in the `edge` encoder).
    """
    from crossl_edge.export.calibration import recorded_indices
    from crossl_edge.export.keras_twin import keras_encoder
    from crossl_edge.export.tflite_export import rank_layers
    from crossl_edge.manifest import load_manifest
    from crossl_edge.rundir import load_run_dataset
    from crossl_edge.trained import load_model

    m = load_manifest(bundle, verify=False)
    e = m.modality(modality)
    src = m.provenance.source
    if src is None or not src.run:
        raise UsageError(f"{bundle} records no source run; re-export it with this version.")
    info, model = load_model(src.run)
    train = info.normalizer.transform(load_run_dataset(info, data=data).train)
    cal = m.provenance.calibration.to_json() if m.provenance.calibration else {}
    idx = recorded_indices(train.labels, train.subjects, cal)
    from crossl_edge.export.schemes import SchemeRecord

    rec = SchemeRecord.read(e.quant_extra.get("scheme")).get("tflite_int8")
    options = (rec.options if rec else None) or {}
    twin = keras_encoder(model.encoders[e.name], window=e.window,
                         layernorm=options.get("layernorm", "decomposed"))
    return rank_layers(twin, train.data[e.name][idx],
                       percentile=float(options.get("input_percentile", 100.0)),
                       headroom=float(options.get("headroom", 1.0)),
                       per_channel=bool(options.get("per_channel", True)))


@dataclass(frozen=True)
class Check:
    """One measured value held against one threshold of the parity run (``passed`` None: measured
    and shown, not gated: a pipeline beside the gated ones, or a test set too small for it)."""

    threshold: str      # what is required, e.g. "mean latent cosine >= 0.99"
    subject: str        # where it was measured, e.g. "acc, int8 TFLite (LiteRT)"
    measured: float
    passed: bool | None
    fmt: str = "{:.4f}"


def checks(result: ParityResult) -> list[Check]:
    """Every threshold check parity made, in the order of the thresholds."""
    from crossl_edge.runtime.tflm import TFLM_MAX_LSB

    t, n = result.thresholds, result.n_windows
    out: list[Check] = []
    for name, enc in result.encoders.items():
        for p in result.pipelines:
            s = enc["int8"][p]
            subject = f"{name}, {PIPELINE_LABELS[p]}"
            gated = p in result.gated
            out.append(Check(f"mean latent cosine ≥ {t.min_cosine:g}", subject,
                             s["cosine_mean"], s["cosine_mean"] >= t.min_cosine if gated
                             else None, "{:.5f}"))
            out.append(Check(f"latent SQNR ≥ {t.min_sqnr_db:g} dB", subject, s["sqnr_db"],
                             s["sqnr_db"] >= t.min_sqnr_db if gated else None, "{:.1f} dB"))
    for name, enc in result.encoders.items():
        micro = enc.get("tflm")
        if micro:
            v = micro["max_lsb_vs_litert_builtin"]
            out.append(Check(f"TFLite Micro vs LiteRT ≤ {TFLM_MAX_LSB} LSB", name, v,
                             v <= TFLM_MAX_LSB, "{:.0f} LSB"))
    bars = (("flip_rate", f"flip rate ≤ {100 * t.max_flip_rate:g}%", "flip_rate", "{:.2%}"),
            ("margin", f"changed windows among the float model's {100 * t.margin_quantile:g}% "
                       f"closest calls (rank ≤ {t.closest_calls(n)})", "worst_margin_rank",
             "{:.0f}"),
            ("f1_drop", f"macro-F1 drop ≤ {t.max_f1_drop:g}"
                        + ("" if t.gates_f1(n) else f" (not gated below {t.min_f1_windows} "
                                                    "windows)"), "f1_drop", "{:+.3f}"))
    for key, label, field_, fmt in bars:
        for row in result.subsets:
            for p in result.gated:
                out.append(Check(label, f"{' + '.join(row['present'])}, {PIPELINE_LABELS[p]}",
                                 row[p][field_], row[p]["verdicts"][key], fmt))
    return out


def _bundle_info(bundle: str) -> dict[str, Any]:
    """Class names, fingerprint, data and versions recorded in the bundle's manifest."""
    from crossl_edge.errors import CrosslError
    from crossl_edge.manifest import load_manifest

    try:
        m = load_manifest(bundle, verify=False)
    except (CrosslError, OSError, ValueError, KeyError) as e:
        log.warning("the report cannot read %s's manifest (%s): no class names", bundle, e)
        return {}
    return {"classes": list(m.classes), "fingerprint": f"{m.fingerprint:08x}",
            "toolkit": m.toolkit_version, "format": m.format_version,
            "source": _json(m.provenance.source), "versions": m.provenance.versions or {},
            "calibration": _json(m.provenance.calibration),
            "modalities": [f"{e.name} ({len(e.channels)} ch x {e.window} samples "
                           f"@ {e.sample_rate_hz:g} Hz)" for e in m.modalities]}


def _header(result: ParityResult, info: dict[str, Any], cks: list[Check],
            data_arg: str | None) -> str:
    src = info.get("source", {})
    data = src.get("dataset", "?")
    if data_arg or src.get("data_path"):
        data += f" ({data_arg or src['data_path']})"
    ref = ("float PyTorch model of the run" if result.reference == "pytorch"
           else "float ONNX encoders (the run's model.pt is gone or changed)")
    if src.get("model_sha256") and result.reference == "pytorch":
        ref += f" (model.pt sha256 {src['model_sha256'][:12]})"
    rt = result.runtimes
    compared = (f"int8 TFLite on LiteRT {rt.get('ai-edge-litert', '?')}; int8 ONNX on ONNX "
                f"Runtime {rt.get('onnxruntime', '?')}; TFLite Micro "
                f"{rt.get('tflite-micro', 'absent')}")
    vers = ", ".join(f"{k} {v}" for k, v in sorted(info.get("versions", {}).items())
                     if k != "crossl-edge")
    rows = [("Bundle", result.bundle), ("Fingerprint", info.get("fingerprint", "?")),
            ("Classes", ", ".join(info.get("classes", [])) or "?"),
            ("Data", f"{data}: test split, {result.n_windows} windows"),
            ("Encoders", f"{src.get('encoder', '?')} encoder; "
                         + "; ".join(info.get("modalities", []))),
            ("Reference", ref), ("Compared", compared),
            ("Built with", f"crossl-edge {info.get('toolkit', '?')} (bundle format "
                           f"{info.get('format', '?')}); {vers or 'versions not recorded'}"),
            ("Generated", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))]
    ok = sum(c.passed is True for c in cks)
    n_judged = sum(c.passed is not None for c in cks)
    verdict = "PASSED" if result.passed else "FAILED"
    kv = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    return (f"<header><div class='inner'><div style='flex:1'><h1>Parity report: int8 deployment "
            f"vs float</h1><p class='sub'>{ok} of {n_judged} checks pass</p>"
            f"<dl class='kv'>{kv}</dl></div><div class='verdict "
            f"{'pass' if result.passed else 'fail'}'>{verdict}</div></div></header>")


def _thresholds(result: ParityResult, cks: list[Check]) -> str:
    groups: dict[str, list[Check]] = {}
    for c in cks:
        groups.setdefault(c.threshold, []).append(c)
    rows = []
    for name, cs in groups.items():
        judged = [c for c in cs if c.passed is not None]
        high_bad = any(w in name for w in ("drop", "LSB", "flip", "rank"))
        worst = min(judged or cs, key=lambda c: (bool(c.passed),
                                                 -c.measured if high_bad else c.measured))
        verdict = all(bool(c.passed) for c in judged) if judged else None
        rows.append([cell(name), num(sum(c.passed is True for c in cs), "{:d}"),
                     num(len(judged), "{:d}"),
                     f"<td class='n'>{esc(worst.fmt.format(worst.measured + 0.0))}</td>",
                     cell(worst.subject), f"<td>{badge(verdict)}</td>"])
    fails = "".join(f"<li>{esc(f)}</li>" for f in result.failures)
    gated = ", ".join(PIPELINE_LABELS[p] for p in result.gated)
    return ("<section><h2>Thresholds</h2>"
            + table(["threshold", "pass", "gated checks", "worst measured", "where", "result"],
                    rows)
            + f"<p class='note'>Gated pipelines: {esc(gated)} (the first is the node side). "
              "Flip rate: share of test windows whose int8 prediction differs from float; "
              "margin rank: where a changed window sits among the float model's calls sorted "
              "by top-1 minus top-2 logit (1 = the closest call); n/a: measured, not gated.</p>"
            + (f"<ul class='fail'>{fails}</ul>" if fails else "") + "</section>")


def _scheme(enc: dict[str, Any]) -> str | None:
    """The quantization scheme export chose for this encoder, when parity.json records one."""
    v = enc.get("scheme") or (enc.get("stats") or {}).get("scheme")
    if isinstance(v, dict):
        return ", ".join(f"{k} {x}" for k, x in v.items())
    return None if v is None else str(v)


def _encoders(result: ParityResult, cks: list[Check]) -> str:
    show_scheme = any(_scheme(e) for e in result.encoders.values())
    ok = {(c.threshold.split(" ≥")[0], c.subject): c.passed for c in cks}
    micro_ok = {c.subject: c.passed for c in cks if c.threshold.startswith("TFLite Micro")}
    rows, float_rows = [], []
    for name, enc in result.encoders.items():
        scheme = [cell(_scheme(enc) or "—")] if show_scheme else []
        for p in result.pipelines:
            s = enc["int8"][p]
            subj = f"{name}, {PIPELINE_LABELS[p]}"
            cos_ok, sqnr_ok = ok[("mean latent cosine", subj)], ok[("latent SQNR", subj)]
            good = None if cos_ok is None else bool(cos_ok and sqnr_ok)
            rows.append([cell(name), *scheme, cell(PIPELINE_LABELS[p]),
                         num(s["cosine_mean"], "{:.5f}", bad=cos_ok is False),
                         num(s["cosine_min"], "{:.4f}"),
                         num(s["sqnr_db"], "{:.1f}", bad=sqnr_ok is False),
                         num(s["max_err_lsb"], "{:.1f}"), num(s.get("p99_err_lsb"), "{:.1f}"),
                         f"<td>{badge(good)}</td>"])
        micro = enc.get("tflm") or {}
        fe = enc.get("float_max_abs_err", {})
        float_rows.append([cell(name), num(fe.get("onnx"), "{:.2e}"),
                           num(fe.get("tflite"), "{:.2e}"),
                           num(micro.get("max_lsb_vs_litert_builtin"), "{:d}",
                               bad=micro_ok.get(name) is False),
                           num(micro.get("arena_bytes"), "{:,}"),
                           f"<td>{badge(micro_ok.get(name))}</td>"])
    return ("<section><h2>Encoders: int8 latents vs float</h2>"
            + table(["modality", *(["quantization scheme"] if show_scheme else []),
                     "int8 pipeline", "cosine mean", "cosine min", "SQNR dB", "max err LSB",
                     "p99 err LSB", "result"], rows)
            + "<h3>Float artifacts and TFLite Micro</h3>"
            + table(["modality", "float ONNX max |err|", "float TFLite max |err|",
                     "TFLM vs LiteRT (LSB)", "TFLM arena B", "TFLM result"], float_rows)
            + "<p class='note'>LSB: one step of the int8 latent (its quantization scale). "
              "TFLite Micro runs the same int8 model as LiteRT's builtin kernels; n/a: "
              "tflite-micro is not installed here.</p></section>")


def _ci(v: list[float] | None, fmt: str) -> str:
    return "" if not v else f" [{fmt.format(v[0])}, {fmt.format(v[1])}]"


def _end_to_end(result: ParityResult, cks: list[Check]) -> str:
    verdicts: dict[str, list[bool | None]] = {}
    for c in cks:
        if c.threshold.startswith(("flip rate", "changed windows", "macro-F1 drop")):
            verdicts.setdefault(c.subject.split(", ")[0], []).append(c.passed)
    rows = []
    for r in result.subsets:
        name = " + ".join(r["present"])
        f = r["float"]
        cells = [cell(name), num(f["accuracy"]),
                 cell(f"{f['macro_f1']:.3f}{_ci(f.get('macro_f1_ci95'), '{:.3f}')}")]
        for p in result.pipelines:
            q = r[p]
            drop = f"{-q['f1_drop'] + 0.0:+.3f}{_ci(q.get('f1_drop_ci95'), '{:+.3f}')}"
            bad = q["verdicts"]["f1_drop"] is False and p in result.gated
            cells += [num(q["macro_f1"]), f"<td class='n{' neg' if bad else ''}'>{esc(drop)}</td>",
                      cell(f"{len(q['changed'])} ({100 * q['flip_rate']:.2f}%)"),
                      num(q["worst_margin_rank"] or None, "{:d}")]
        vs = verdicts.get(name, [])
        good = None if not vs else all(v is not False for v in vs)
        rows.append([*cells, f"<td>{badge(good)}</td>"])
    head = ["present modalities", "float acc", "float F1 [95% CI]"]
    for p in result.pipelines:
        short = PIPELINE_LABELS[p].split(" (")[0].replace("int8 ", "")
        head += [f"{short} F1", "Δ F1 [95% CI of drop]", "changed (flip rate)", "worst rank"]
    return ("<section><h2>End to end: float vs int8 per subset of present modalities</h2>"
            + table([*head, "result"], rows)
            + "<p class='note'>Δ F1 = float minus int8 macro-F1 on the same windows, with the "
              "95% interval of a paired bootstrap over the test windows (1,000 resamples); "
              "absent modalities are masked exactly as the phone does. Changed: windows whose "
              "int8 prediction differs from float; worst rank: the largest float-margin rank "
              "among them (1 = the float model's closest call).</p>"
            + f1_figure(result.subsets, result.pipelines) + "</section>")


def _per_class(result: ParityResult, classes: list[str]) -> str:
    parts = []
    for i, r in enumerate(result.subsets):
        rows = []
        for c, name in enumerate(classes):
            f = r["float"]["per_class"]
            cells = [cell(name), num(f["support"][c], "{:d}"), num(f["f1"][c])]
            for p in result.pipelines:
                v = r[p]["per_class"]["f1"][c]
                cells += [num(v), delta(v - f["f1"][c], bad_below=-1e-9)]
            rows.append(cells)
        head = ["class", "support", "float F1"]
        for p in result.pipelines:
            head += [f"{p.split('_')[0]} int8 F1", "Δ"]
        parts.append(f"<details{' open' if i == 0 else ''}><summary>present: "
                     f"{esc(' + '.join(r['present']))}</summary>{table(head, rows)}</details>")
    return "<section><h2>Per class</h2>" + "".join(parts) + "</section>"


def _figures(result: ParityResult, classes: list[str]) -> str:
    errors: dict[str, dict[str, np.ndarray]] = {}
    for name, enc in result.encoders.items():
        ref = result.arrays.get(f"{name}/reference")
        scale = enc.get("latent_scale") or 1.0
        got = {p: (result.arrays[f"{name}/{p}"] - ref) / scale for p in result.pipelines
               if ref is not None and f"{name}/{p}" in result.arrays}
        if got:
            errors[name] = got
    out = ("<section><h2>Confusion matrices</h2>"
           + confusion_figure(result.subsets, classes, ("float", *result.pipelines)) + "</section>")
    if errors:
        out += ("<section><h2>Latent error: int8 minus float, per encoder</h2>"
                + error_figure(errors, "LSB") + "</section>")
    return out


def _localisation(obj: dict[str, Any]) -> str:
    parts = []
    for name, rows in obj.get("localisation", {}).items():
        head = list(rows[0]) if rows else ["(none)"]
        body = [[num(v, "{:.4g}") if isinstance(v, float) else cell(v) for v in r.values()]
                for r in rows]
        parts.append(f"<section><h2>Layer localisation: {esc(name)}</h2><p class='note'>Worst "
                     "first (RMSE in units of the layer's quantization scale): keep these in "
                     "higher precision or redesign them.</p>" + table(head, body) + "</section>")
    return "".join(parts)


def render_html(result: ParityResult, obj: dict[str, Any], *, data: str | None = None) -> str:
    """The report page for ``result`` (``obj``: its JSON, with any localisation; ``data``: the
    --data parity read in place of the run's dataset, if any)."""
    info = _bundle_info(result.bundle)
    k = len(result.subsets[0]["float"]["confusion"]) if result.subsets else 0
    classes = info.get("classes") or [f"class {i}" for i in range(k)]
    cks = checks(result)
    body = (_header(result, info, cks, data) + "<main>" + _thresholds(result, cks)
            + _encoders(result, cks) + _end_to_end(result, cks) + _per_class(result, classes)
            + _localisation(obj) + _figures(result, classes)
            + f"<p class='note'>Reproduce: <code>crossl-edge parity {esc(result.bundle)} --report "
              "DIR</code>. Figures are measurements on this machine's CPU with the runtimes "
              "named above; parity.json beside this page holds every number.</p></main>")
    title = f"crossl-edge parity {'PASSED' if result.passed else 'FAILED'}"
    if info.get("fingerprint"):
        title += f" ({info['fingerprint']})"
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
            f"<body>{body}</body></html>\n")


def write_report(result: ParityResult, out: str | Path, *, data: str | None = None,
                 localise: bool = True) -> Path:
    """Write OUT/parity.json and OUT/report.html; localise failing encoders when asked."""
    out = Path(out)
    obj = result.to_json()
    if localise and not result.passed:
        obj["localisation"] = {}
        for name in result.suspects:
            try:
                obj["localisation"][name] = localise_layers(result.bundle, name, data=data)
            except Exception as e:  # noqa: BLE001 - the report must still be written
                log.warning("could not localise %s: %s", name, e)
                obj["localisation"][name] = [{"error": f"{type(e).__name__}: {e}"}]
    write_json(out / "parity.json", obj)
    write_text(out / "report.html", render_html(result, obj, data=data))
    for f in (out / "parity.json", out / "report.html"):
        f.chmod(0o644)
    return out / "report.html"


def _json(rec: Record | None) -> dict[str, Any]:
    return rec.to_json() if rec is not None else {}
