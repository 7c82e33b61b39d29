"""Which sensors to deploy: from a bundle's every-subset macro-F1 table (float and int8) and each
device's cost, the exact Shapley value of every modality and device, the removals that raise F1,
and the Pareto front of device subsets (F1 vs flash, RAM, instructions, energy per window).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.attribution import (
    HARM_ADVICE,
    Harm,
    harmful_removals,
    pareto_front,
    shapley,
    unit_values,
)
from crossl_edge.devices import DeviceEntry, device_subsets, is_default, modalities_of
from crossl_edge.errors import UsageError
from crossl_edge.manifest import MANIFEST, Manifest
from crossl_edge.metrics import modality_subsets, scores
from crossl_edge.plan_costs import COSTS, DeviceCost, device_costs
from crossl_edge.runtime.bundle import open_bundle

log = logging.getLogger(__name__)

PIPELINES = ("float", "int8")
PARITY_INT8 = ("tflm_int8", "tflm", "tflite_int8", "onnx_int8")  # the node's pipeline first


@dataclass(frozen=True)
class SubsetPlan:
    """One subset of devices: the modalities it brings, its macro-F1 and summed costs."""

    devices: tuple[str, ...]
    modalities: tuple[str, ...]
    f1: dict[str, float]
    costs: dict[str, float | None]
    front: bool = False


@dataclass
class PlanResult:
    """The plan of a bundle (see the module docstring); ``text()``, ``to_json()``, ``plot()``."""

    bundle: str
    table_source: str
    n_windows: int
    names: list[str]
    devices: list[DeviceEntry]
    baseline: float                              # macro-F1 with nothing present
    all_present: dict[str, float]
    shapley: dict[str, dict[str, dict[str, float]]]   # kind -> pipeline -> unit -> value
    harms: dict[str, list[Harm]]                 # pipeline -> harmful removals
    costs: list[DeviceCost]
    subsets: list[SubsetPlan]
    cost_source: str
    front_costs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"bundle": self.bundle, "table_source": self.table_source,
                "n_windows": self.n_windows, "modalities": self.names,
                "devices": [d.to_json() for d in self.devices],
                "baseline_macro_f1": self.baseline,
                "baseline": "the most frequent test class predicted for every window",
                "all_present": self.all_present, "shapley": self.shapley,
                "shapley_sum_check": {p: sum(self.shapley["modality"][p].values())
                                      for p in PIPELINES},
                "harmful": {p: [h.to_json() for h in hs] for p, hs in self.harms.items()},
                "advice": HARM_ADVICE if any(self.harms.values()) else None,
                "device_costs": [c.to_json() for c in self.costs],
                "cost_source": self.cost_source, "pareto_costs": self.front_costs,
                "subsets": [asdict(s) for s in self.subsets],
                "pareto_front": [list(s.devices) for s in self.subsets if s.front]}

    def text(self) -> str:
        from crossl_edge.plan_report import format_plan

        return format_plan(self)

    def plot(self, path: str | Path) -> Path | None:
        """Save the plan figure as PNG; None when matplotlib is not installed."""
        from crossl_edge.plan_report import plot_plan

        return plot_plan(self, path)


def run_plan(bundle: str | Path, *, parity: str | Path | None = None,
             data: str | Path | None = None,
         firmware: str | Path | None = None, max_windows: int | None = None) -> PlanResult:
    """Plan ``bundle``: the F1 table from ``parity`` (a parity.json), else BUNDLE/parity.json,
    else computed on the test windows (``data``, else the run's test split, else the bundle's
    samples); costs from ``firmware``'s resources.json, else the manifest's stats."""
    m = open_bundle(bundle)
    found = Path(parity) if parity else m.root / "parity.json"
    if parity and not found.is_file():
        raise UsageError(f"--parity {parity} does not exist; run `crossl-edge parity BUNDLE "
                         "--report DIR` and pass DIR/parity.json.")
    if found.is_file():
        table, support, source = table_from_parity(m, found)
    else:
        table, support, source = table_from_windows(m, data, max_windows=max_windows)
    raw = json.loads((m.root / MANIFEST).read_text(encoding="utf-8"))
    costs, cost_source = device_costs(m, raw, firmware)
    return make_plan(m, table, support, source, costs, cost_source)


def majority_f1(support: list[int]) -> float:
    """Macro-F1 of predicting the most frequent class for every window (the none-present
    baseline), scored like every other row."""
    y = np.repeat(np.arange(len(support)), support)
    k = int(np.argmax(support))
    return _f1(scores(y, np.full(len(y), k), len(support)))


def _f1(s: dict[str, object]) -> float:
    f1 = s["macro_f1"]
    assert isinstance(f1, float)
    return f1


def make_plan(m: Manifest, table: dict[str, dict[frozenset[str], float]], support: list[int],
              source: str, costs: list[DeviceCost], cost_source: str) -> PlanResult:
    """Everything but the I/O: Shapley values, harms, subsets with costs, the Pareto front."""
    names, devices = m.names, m.device_map
    groups = {d.name: d.modalities for d in devices}
    base = majority_f1(support)
    sh: dict[str, dict[str, dict[str, float]]] = {"modality": {}, "device": {}}
    harms: dict[str, list[Harm]] = {}
    for p in PIPELINES:
        value = {**table[p], frozenset(): base}
        sh["modality"][p] = shapley(names, value)
        dv = unit_values(value, groups)
        sh["device"][p] = shapley(list(groups), dv)
        harms[p] = harmful_removals(names, value, kind="modality")
        if not is_default(devices):
            harms[p] += harmful_removals(list(groups), dv, kind="device")
    by_dev = {c.device: c for c in costs}
    rows = []
    for ds in device_subsets(devices):
        mods = modalities_of(devices, ds, names)
        summed: dict[str, float | None] = {}
        for k in COSTS:
            vals = [getattr(by_dev[d], k) for d in ds]
            summed[k] = None if any(v is None for v in vals) else float(sum(vals))
        rows.append(SubsetPlan(ds, mods, {p: table[p][frozenset(mods)] for p in PIPELINES},
                               summed))
    known = [k for k in COSTS if all(r.costs[k] is not None for r in rows)]
    front = set(pareto_front([(r.f1["int8"], [float(r.costs[k] or 0) for k in known])
                              for r in rows]))
    rows = [SubsetPlan(r.devices, r.modalities, r.f1, r.costs, i in front)
            for i, r in enumerate(rows)]
    full = frozenset(names)
    return PlanResult(str(m.root), source, sum(support), names, devices, base,
                      {p: table[p][full] for p in PIPELINES}, sh, harms, costs, rows,
                      cost_source, known)


def _int8_key(row: dict[str, Any]) -> str:
    for k in PARITY_INT8:
        if isinstance(row.get(k), dict) and "macro_f1" in row[k]:
            return k
    raise UsageError("the parity table has no int8 macro-F1 column; re-run `crossl-edge "
                     "parity BUNDLE --report DIR` with this version.")


def table_from_parity(m: Manifest, path: Path) -> tuple[dict[str, dict[frozenset[str], float]],
                                                        list[int], str]:
    """The macro-F1 table (float, int8) and class support from a parity.json."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        rows = obj["subsets"]
        key = _int8_key(rows[0])
        table = {"float": {frozenset(r["present"]): float(r["float"]["macro_f1"]) for r in rows},
                 "int8": {frozenset(r["present"]): float(r[key]["macro_f1"]) for r in rows}}
        support = [int(s) for s in rows[0]["float"]["per_class"]["support"]]
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise UsageError(f"{path} is not a parity.json of this toolkit ({type(e).__name__}: "
                         f"{e}); re-run `crossl-edge parity BUNDLE --report DIR`.") from e
    want = {frozenset(s) for s in modality_subsets(m.names)}
    if set(table["float"]) != want:
        raise UsageError(f"{path} does not cover every subset of this bundle's modalities "
                         f"({', '.join(m.names)}); it belongs to another bundle.")
    return table, support, f"{path} (float PyTorch vs {key})"


def table_from_windows(m: Manifest, data: str | Path | None, *, max_windows: int | None = None
                       ) -> tuple[dict[str, dict[frozenset[str], float]], list[int], str]:
    """The macro-F1 table computed here: float and int8 TFLite encoders (ONNX where TFLite is
    missing), then the phone model, on every subset of modalities."""
    from crossl_edge.runtime.aggregator import PhoneAggregator
    from crossl_edge.sim.simulate import load_windows_from

    xs, y, label = load_windows_from(m, data)
    if max_windows is not None:
        xs, y = {k: v[:max_windows] for k, v in xs.items()}, y[:max_windows]
    agg = PhoneAggregator(m)
    k = len(m.classes)
    table: dict[str, dict[frozenset[str], float]] = {}
    kinds = {}
    for p in PIPELINES:
        lat = {}
        for i, e in enumerate(m.modalities):
            lat[i], kinds[(p, e.name)] = _encode(m, e, xs[e.name], int8=p == "int8")
        table[p] = {}
        for s in modality_subsets(m.names):
            idx = [i for i, n in enumerate(m.names) if n in s]
            pred = np.array([int(np.argmax(agg.infer({i: lat[i][w] for i in idx})))
                             for w in range(len(y))])
            table[p][frozenset(s)] = _f1(scores(y, pred, k))
    used = sorted(set(kinds.values()))
    support = np.bincount(y, minlength=k).astype(int).tolist()
    return table, support, f"computed on {len(y)} windows of {label} ({', '.join(used)})"


def _encode(m: Manifest, e: Any, raw: np.ndarray, *, int8: bool) -> tuple[np.ndarray, str]:
    """Latents (N, D) float32 of one modality's raw windows (N, C, T) and the artifact used."""
    from crossl_edge.runtime.backends import open_model

    order = ("tflite_int8", "onnx_int8") if int8 else ("tflite", "onnx")
    kind = next((k for k in order if k in e.artifacts), None)
    if kind is None:
        raise UsageError(f"the bundle has no {'int8' if int8 else 'float'} encoder for "
                         f"{e.name!r}; re-export it.")
    runner = open_model(m.path(e.artifacts[kind]))
    out = []
    for x in raw:
        inp = e.tflite_input(x, int8=kind == "tflite_int8") if kind.startswith("tflite") \
            else e.onnx_input(x)
        z = np.asarray(runner.run(inp)).reshape(-1)
        out.append(e.latent_quant.dequantize(z) if z.dtype == np.int8 else z.astype(np.float32))
    return np.stack(out), kind
