"""The plan as text (tables and warnings), as a figure (matplotlib, imported lazily) and as a small
HTML page with the figure embedded (`crossl-edge plan --report DIR`).
"""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path
from typing import Any

from crossl_edge.attribution import HARM_ADVICE, harm_lines
from crossl_edge.tables import table

log = logging.getLogger(__name__)

COST_HEADS = {"flash_bytes": "flash B", "ram_bytes": "RAM B", "instructions": "instr/window",
              "energy_mj": "mJ/window"}


def _cost(k: str, v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" if k == "energy_mj" else f"{v:,.0f}"


def format_plan(r: Any) -> str:
    """The human-readable plan: Shapley values, device costs, device subsets with the Pareto
    front, then the warnings and what they mean."""
    parts = [f"plan for {r.bundle}: macro-F1 table {r.table_source}",
             f"baseline (nothing present: the most frequent class for every window) "
             f"{r.baseline:.3f}; all present: float {r.all_present['float']:.3f}, "
             f"int8 {r.all_present['int8']:.3f}", "",
             "Shapley value for macro-F1 (exact; per pipeline they sum to all-present minus "
             "baseline)"]
    rows = [[u, kind, sh["float"][u], sh["int8"][u]]
            for kind in ("modality", "device") if kind == "modality" or _devices_matter(r)
            for sh in [r.shapley[kind]] for u in sh["float"]]
    parts.append(table(["unit", "kind", "float", "int8"], rows, first_left=True))
    parts += ["", f"device costs per window: {r.cost_source}",
              table(["device", "modalities", *COST_HEADS.values()],
                    [[c.device, "+".join(c.modalities),
                      *(_cost(k, getattr(c, k)) for k in COST_HEADS)] for c in r.costs],
                    first_left=True)]
    front = ", ".join(COST_HEADS[k] for k in r.front_costs) or "no cost known"
    parts += ["", f"device subsets (* = Pareto front: int8 macro-F1 vs {front})",
              table(["devices", "modalities", "F1 float", "F1 int8",
                     *(COST_HEADS[k] for k in r.front_costs), "front"],
                    [["+".join(s.devices), "+".join(s.modalities), s.f1["float"], s.f1["int8"],
                      *(_cost(k, s.costs[k]) for k in r.front_costs), "*" if s.front else ""]
                     for s in r.subsets], first_left=True)]
    warn = []
    for p in ("int8", "float"):
        n = {"modality": len(r.names), "device": len(r.devices)}
        for kind in ("modality", "device"):
            hs = [h for h in r.harms[p] if h.kind == kind]
            warn += [f"{x} [{p}]" for x in harm_lines(hs, n[kind]) if x.startswith("warning")]
    parts.append("")
    if warn:
        parts += warn + [f"note: {HARM_ADVICE}"]
    else:
        parts.append("no modality or device lowers macro-F1: removing any of them never helps.")
    parts.append("sources: " + "; ".join(f"{COST_HEADS[k]}: {v}"
                                         for k, v in r.costs[0].sources.items()))
    return "\n".join(parts)


def _devices_matter(r: Any) -> bool:
    return any(len(d.modalities) > 1 for d in r.devices)


def figure(r: Any) -> Any:
    """A matplotlib figure: Shapley bars, then int8 macro-F1 vs each known cost per device
    subset, the front drawn as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    costs = r.front_costs
    fig, axes = plt.subplots(1, 1 + len(costs), figsize=(4.2 * (1 + len(costs)), 3.8),
                             squeeze=False)
    ax = axes[0][0]
    kind = "device" if _devices_matter(r) else "modality"
    units = list(r.shapley["modality"]["int8"]) + (
        list(r.shapley["device"]["int8"]) if kind == "device" else [])
    vals = {p: [r.shapley["modality"][p].get(u, r.shapley["device"][p].get(u, 0.0))
                for u in units] for p in ("float", "int8")}
    xs = range(len(units))
    ax.bar([x - 0.2 for x in xs], vals["float"], 0.4, label="float")
    ax.bar([x + 0.2 for x in xs], vals["int8"], 0.4, label="int8")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(list(xs), units, rotation=30, ha="right")
    ax.set(title="Shapley value (macro-F1)", ylabel="macro-F1 contributed")
    ax.legend()
    for ax, k in zip(axes[0][1:], costs, strict=True):
        pts = [(s.costs[k], s.f1["int8"], "+".join(s.devices), s.front) for s in r.subsets]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=["C3" if p[3] else "C0"
                                                                   for p in pts])
        for x, y, label, _ in pts:
            ax.annotate(label, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        front = sorted(_front_2d(pts))
        ax.plot([p[0] for p in front], [p[1] for p in front], "C3--", lw=1)
        ax.set(xlabel=COST_HEADS[k], ylabel="int8 macro-F1", title=f"F1 vs {COST_HEADS[k]}")
    fig.tight_layout()
    return fig


def _front_2d(pts: list[tuple[float, float, str, bool]]) -> list[tuple[float, float]]:
    """The 2-D front (lowest cost for each gain in F1) of (cost, F1) points."""
    out, best = [], -1.0
    for c, f, _, _ in sorted(pts, key=lambda p: (p[0], -p[1])):
        if f > best:
            out.append((c, f))
            best = f
    return out


def plot_plan(r: Any, path: str | Path) -> Path | None:
    """Save the figure as PNG; None (and a log line) when matplotlib is not installed."""
    try:
        fig = figure(r)
    except ImportError:
        log.warning("matplotlib is not installed; no plan plot (pip install matplotlib)")
        return None
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render_html(r: Any) -> str:
    """A self-contained page: the figure as an embedded PNG, then the text plan."""
    img = ""
    try:
        import matplotlib.pyplot as plt

        fig = figure(r)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        img = (f"<img alt='plan: Shapley values and the Pareto front' style='max-width:100%' "
               f"src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'/>")
    except ImportError:
        img = "<p>matplotlib is not installed: no figure.</p>"
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<title>crossl-edge plan</title></head><body style='font-family:sans-serif'>"
            f"<h1>Which sensors to deploy</h1>{img}<pre>{html.escape(format_plan(r))}</pre>"
            "</body></html>\n")
