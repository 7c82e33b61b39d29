"""Building blocks of the parity report page: escaped tables, pass/fail badges, the stylesheet,
and the three figures (macro-F1 per subset, latent error histograms, confusion matrices) as
inline base64 PNGs so the page stays one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

PIPELINE_LABELS = {"float": "float reference", "tflm_int8": "int8 TFLite Micro (node)",
                   "tflite_int8": "int8 TFLite (LiteRT)", "onnx_int8": "int8 ONNX (ONNX Runtime)"}
COLORS = {"float": "#4c72b0", "tflm_int8": "#c44e52", "tflite_int8": "#dd8452",
          "onnx_int8": "#55a868"}

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 margin:0;color:#1f2328;background:#f6f8fa;font-size:14px;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:0 24px 40px}
header{background:#fff;border-bottom:1px solid #d0d7de;padding:20px 24px;margin-bottom:16px}
header .inner{max-width:1100px;margin:0 auto;display:flex;gap:24px;align-items:flex-start}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid #d0d7de}
h3{font-size:14px;margin:16px 0 6px}
.verdict{font-size:20px;font-weight:700;padding:10px 18px;border-radius:8px;color:#fff;
 white-space:nowrap}
.verdict.pass{background:#1a7f37}.verdict.fail{background:#cf222e}
.sub{color:#57606a;margin:0}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:10px 0 0}
.kv dt{color:#57606a}.kv dd{margin:0;font-family:ui-monospace,"DejaVu Sans Mono",monospace;
 font-size:13px;overflow-wrap:anywhere}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:4px 16px 14px;
 margin-bottom:16px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border-bottom:1px solid #d8dee4;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;font-family:ui-monospace,
 "DejaVu Sans Mono",monospace}
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;font-weight:700;
 color:#fff}
.badge.pass{background:#1a7f37}.badge.fail{background:#cf222e}.badge.na{background:#8c959f}
.neg{color:#cf222e}.pos{color:#1a7f37}
.note{color:#57606a;font-size:12.5px}
img{max-width:100%;height:auto;display:block;margin:8px 0}
details{margin:4px 0}summary{cursor:pointer;font-weight:600}
ul.fail li{color:#cf222e}
"""


def esc(v: Any) -> str:
    return html.escape(str(v))


def badge(ok: bool | None) -> str:
    """PASS / FAIL / n/a (measured, not gated) as a coloured pill."""
    if ok is None:
        return "<span class='badge na'>n/a</span>"
    return f"<span class='badge {'pass' if ok else 'fail'}'>{'PASS' if ok else 'FAIL'}</span>"


def num(v: float | int | None, fmt: str = "{:.3f}", *, bad: bool = False) -> str:
    """A right-aligned numeric cell (an em dash for a missing value; red when ``bad``)."""
    cls = "n neg" if bad else "n"
    if v is None:
        return f"<td class='{cls}'>&mdash;</td>"
    if isinstance(v, float) and not np.isfinite(v):
        return f"<td class='{cls}'>{'&infin;' if v > 0 else '-&infin;'}</td>"
    return f"<td class='{cls}'>{esc(fmt.format(v))}</td>"


def delta(v: float, *, bad_below: float | None = None) -> str:
    """A signed difference cell, red when it is below ``bad_below``."""
    v = round(float(v), 3) + 0.0          # no "-0.000"
    cls = "neg" if bad_below is not None and v < bad_below else ""
    return f"<td class='n {cls}'>{v:+.3f}</td>"


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Header strings are escaped; row cells are ready-made HTML (`<td>...</td>`)."""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def cell(v: Any) -> str:
    return f"<td>{esc(v)}</td>"


def _png(fig: Any, alt: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f"<img alt='{esc(alt)}' src='data:image/png;base64,{data}'/>"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "axes.spines.top": False,
                         "axes.spines.right": False})
    return plt


def f1_figure(subsets: list[dict[str, Any]], pipelines: Sequence[str]) -> str:
    """Horizontal grouped bars: macro-F1 of float and each int8 pipeline per modality subset."""
    plt = _plt()
    keys = ("float", *pipelines)
    names = [" + ".join(r["present"]) for r in subsets]
    fig, ax = plt.subplots(figsize=(7.5, 0.75 + 0.62 * len(names)), layout="constrained")
    h = 0.8 / len(keys)
    y = np.arange(len(names))
    for j, key in enumerate(keys):
        vals = [r[key]["macro_f1"] for r in subsets]
        pos = y - 0.4 + h * (j + 0.5)
        ax.barh(pos, vals, h, color=COLORS.get(key), label=PIPELINE_LABELS.get(key, key))
        for p, v in zip(pos, vals, strict=True):
            ax.text(min(v, 1.0) + 0.01, p, f"{v:.3f}", va="center", fontsize=7.5)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.12)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xlabel("macro-F1 on the test windows")
    fig.legend(loc="outside upper center", ncols=len(keys), frameon=False)
    return _png(fig, "macro-F1 per subset of present modalities")


def error_figure(errors: dict[str, dict[str, np.ndarray]], unit: str) -> str:
    """One histogram per encoder of the int8 - float latent error, pipelines as outlines."""
    plt = _plt()
    mods = list(errors)
    cols = min(3, len(mods))
    rows = -(-len(mods) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows + 0.5),
                             squeeze=False, layout="constrained")
    for ax, name in zip(axes.ravel(), mods, strict=False):
        span = max((float(np.abs(e).max()) for e in errors[name].values()), default=1.0) or 1.0
        bins = np.linspace(-span, span, 61)
        for p, err in errors[name].items():
            ax.hist(err.ravel(), bins=bins, histtype="step", linewidth=1.4, log=True,
                    color=COLORS.get(p), label=PIPELINE_LABELS.get(p, p))
        ax.set_title(name)
        ax.set_xlabel(f"int8 - float latent ({unit})")
        ax.set_ylabel("count (log)")
    for ax in axes.ravel()[len(mods):]:
        ax.set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), frameon=False)
    return _png(fig, "latent error histograms")


def confusion_figure(subsets: list[dict[str, Any]], classes: list[str],
                     columns: Sequence[str]) -> str:
    """Confusion matrices with class names: one row per subset, one column per pipeline."""
    plt = _plt()
    k = len(classes)
    side = max(2.6, 0.45 * k + 1.2)
    fig, axes = plt.subplots(len(subsets), len(columns),
                             figsize=(side * len(columns) + 0.6, side * len(subsets)),
                             squeeze=False, layout="constrained")
    for i, r in enumerate(subsets):
        for j, key in enumerate(columns):
            ax = axes[i][j]
            cm = np.asarray(r[key]["confusion"])
            ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(int(cm.max()), 1))
            hi = cm.max() * 0.6
            for (a, b), v in np.ndenumerate(cm):
                ax.text(b, a, str(v), ha="center", va="center", fontsize=8,
                        color="white" if v > hi else "black")
            ax.set_xticks(range(k), classes, rotation=35, ha="right")
            ax.set_yticks(range(k), classes if j == 0 else [""] * k)
            ax.tick_params(left=j == 0)
            ax.spines[:].set_visible(False)
            ax.set_title(f"{PIPELINE_LABELS.get(key, key)}\npresent: {' + '.join(r['present'])}",
                         fontsize=8.5)
            if i == len(subsets) - 1:
                ax.set_xlabel("predicted")
            if j == 0:
                ax.set_ylabel("true")
    return _png(fig, "confusion matrices")
