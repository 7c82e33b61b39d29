"""Parity report: parity.json plus one self-contained HTML page (plots as base64 PNG), and a
layer-by-layer localisation with TensorFlow's QuantizationDebugger when a threshold is missed.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.atomic import write_json, write_text
from crossl_edge.export.parity import PIPELINES, ParityResult

log = logging.getLogger(__name__)

TOP_LAYERS = 8


def localise_layers(bundle: str | Path, modality: str, *, data: str | None = None,
                    top: int = TOP_LAYERS) -> list[dict[str, Any]]:
    """Rank the int8 encoder's layers by quantization error (RMSE in units of the layer's scale).

    Rebuilds the Keras twin from the run and re-runs the converter under TensorFlow's
    QuantizationDebugger on the same calibration windows; the top layers are the ones to keep in
    higher precision (or to redesign, e.g. LayerNorm -> BatchNorm as in the `edge` encoder).
    """
    from crossl_edge.manifest import load_manifest
    from crossl_edge.rundir import load_model, load_run_dataset
    from crossl_edge.export.bundle import calibration_indices
    from crossl_edge.export.keras_twin import keras_encoder
    from crossl_edge.export.tflite_export import (
        clip_percentile,
        import_tf,
        int8_converter,
        quiet_stderr,
        representative,
    )

    m = load_manifest(bundle, verify=False)
    e = m.modality(modality)
    info, model = load_model(m.extra["source"]["run"])
    train = info.normalizer.transform(load_run_dataset(info, data=data).train)
    cal = m.extra.get("calibration", {})
    idx = calibration_indices(len(train), cal.get("windows") if cal.get("windows") != len(train)
                              else None)
    x = clip_percentile(train.data[e.name][idx],
                        float(e.stats.get("calibration_input_percentile", 100.0)))
    tf = import_tf()
    twin = keras_encoder(model.encoders[e.name], window=e.window)
    conv = int8_converter(twin, window=e.window, channels=len(e.channels), calibration=x)
    dbg = tf.lite.experimental.QuantizationDebugger(converter=conv,
                                                    debug_dataset=representative(x))
    with quiet_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dbg.run()
    buf = io.StringIO()
    dbg.layer_statistics_dump(buf)
    rows = []
    for r in csv.DictReader(io.StringIO(buf.getvalue())):
        scale = float(r.get("scale") or 0) or 1.0
        rmse = float(r.get("mean_squared_error") or 0) ** 0.5
        rows.append({"op": r.get("op_name"), "tensor": r.get("tensor_name"),
                     "rmse_over_scale": rmse / scale,
                     "max_abs_error": float(r.get("max_abs_error") or 0), "scale": scale})
    rows.sort(key=lambda r: -r["rmse_over_scale"])
    return rows[:top]


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "<img src='data:image/png;base64," + base64.b64encode(buf.getvalue()).decode() + "'/>"


def _plots(result: ParityResult) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    names = ["+".join(r["present"]) for r in result.subsets]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(names)), 3))
    w = 0.27
    for j, key in enumerate(("float", *PIPELINES)):
        ax.bar(np.arange(len(names)) + (j - 1) * w,
               [r[key]["macro_f1"] for r in result.subsets], w, label=key)
    ax.set_xticks(np.arange(len(names)), names, rotation=20)
    ax.set_ylabel("macro-F1")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    out.append(("Macro-F1: float vs int8, per subset of present modalities", _png(fig)))
    mods = list(result.encoders)
    fig, axes = plt.subplots(1, len(mods), figsize=(4 * len(mods), 3), squeeze=False)
    for ax, name in zip(axes[0], mods, strict=True):
        ref = result.arrays.get(f"{name}/reference")
        scale = result.encoders[name].get("latent_scale")
        for p in PIPELINES:
            got = result.arrays.get(f"{name}/{p}")
            if ref is not None and got is not None:
                err = (got - ref).ravel() / (scale or 1.0)
                ax.hist(err, bins=60, alpha=0.6, label=p, log=True)
        ax.set_title(f"{name}: int8 - float latent" + (" (LSB)" if scale else ""))
        ax.legend(fontsize=7)
    out.append(("Latent error histograms", _png(fig)))
    k = len(result.subsets)
    fig, axes = plt.subplots(2, k, figsize=(3 * k, 6), squeeze=False)
    for j, r in enumerate(result.subsets):
        for i, key in enumerate(("float", "tflite_int8")):
            cm = np.asarray(r[key]["confusion"])
            axes[i][j].imshow(cm, cmap="Blues")
            for (a, b), v in np.ndenumerate(cm):
                axes[i][j].text(b, a, str(v), ha="center", va="center", fontsize=7)
            axes[i][j].set_title(f"{key}: {'+'.join(r['present'])}", fontsize=8)
            axes[i][j].set_xlabel("predicted")
            axes[i][j].set_ylabel("true")
    out.append(("Confusion matrices (top float PyTorch, bottom int8 TFLite pipeline)", _png(fig)))
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(
        f"<td>{v:.5g}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>"
        for v in (r[c] for c in cols)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


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
    enc_rows = [{"encoder": n, "format": p, **{k: v for k, v in s.items()}}
                for n, enc in result.encoders.items() for p, s in enc["int8"].items()]
    sub_rows = [{"present": "+".join(r["present"]), "float F1": r["float"]["macro_f1"],
                 **{f"{p} F1": r[p]["macro_f1"] for p in PIPELINES},
                 "float acc": r["float"]["accuracy"],
                 **{f"{p} acc": r[p]["accuracy"] for p in PIPELINES}} for r in result.subsets]
    verdict = "PASSED" if result.passed else "FAILED"
    parts = [f"<h1>crossl-edge parity: {verdict}</h1>",
             f"<p>bundle {html.escape(result.bundle)}; reference {result.reference}; "
             f"{result.n_windows} test windows; thresholds {html.escape(str(obj['thresholds']))}"
             "</p>",
             "<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in result.failures) + "</ul>",
             "<h2>Encoders: int8 vs float latents</h2>", _table(enc_rows),
             "<h2>End to end</h2>", _table(sub_rows)]
    for name, rows in obj.get("localisation", {}).items():
        parts += [f"<h2>Layer localisation: {html.escape(name)} (worst first; keep these in "
                  "higher precision)</h2>", _table(rows)]
    for title, img in _plots(result):
        parts += [f"<h2>{html.escape(title)}</h2>", img]
    style = ("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}</style>")
    write_text(out / "report.html", "<!doctype html><html><head><meta charset='utf-8'>"
               f"<title>parity</title>{style}</head><body>{''.join(parts)}</body></html>\n")
    for f in (out / "parity.json", out / "report.html"):
        f.chmod(0o644)
    return out / "report.html"
