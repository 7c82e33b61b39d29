"""Which modalities or devices a model needs, from its every-subset score table: exact Shapley
values, the removals that raise the score (a harmful modality or device), Pareto fronts. Pure
Python: `evaluate`, `parity` and `plan` share it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

Scores = Mapping[frozenset[str], float]   # score of each subset of units (empty: the baseline)

HARM_ADVICE = (
    "A harmful modality or device is a property of the trained model and its data, not of the "
    "sensor: the model learned to lean on it in a way that does not carry over to the test "
    "windows. What to do: retrain without it (`crossl-edge train --modalities ...`), record "
    "more data (more subjects) so it generalises, or train with more modality dropout "
    "(`--modality-dropout 0.3`) so the model does not depend on any one stream.")


def shapley(units: Sequence[str], value: Scores) -> dict[str, float]:
    """Exact Shapley value of every unit: its average marginal gain over all orders in which the
    units could be added. ``value`` must hold every subset, the empty one included; the values
    sum to value(all) - value(empty)."""
    n = len(units)
    weight = [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
              for k in range(n)]
    out = {}
    for u in units:
        others = [x for x in units if x != u]
        phi = 0.0
        for k in range(n):
            for s in combinations(others, k):
                base = frozenset(s)
                phi += weight[k] * (_get(value, base | {u}) - _get(value, base))
        out[u] = phi
    return out


def _get(value: Scores, s: frozenset[str]) -> float:
    if s not in value:
        raise ValueError(f"the subset table lacks {'+'.join(sorted(s)) or 'the empty subset'}")
    return float(value[s])


@dataclass(frozen=True)
class Harm:
    """Removing ``unit`` from the subset ``present`` raises the score."""

    kind: str                   # "modality" or "device"
    unit: str
    present: tuple[str, ...]    # the subset holding the unit
    score_with: float
    score_without: float

    @property
    def gain(self) -> float:
        return self.score_without - self.score_with

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "unit": self.unit, "present": list(self.present),
                "without": [x for x in self.present if x != self.unit],
                "score_with": self.score_with, "score_without": self.score_without,
                "gain": self.gain}


def harmful_removals(units: Sequence[str], value: Scores, *, kind: str = "modality",
                     min_gain: float = 0.0) -> list[Harm]:
    """Every (unit, subset of two or more units holding it) where leaving the unit out raises
    the score by more than ``min_gain``; largest gain first. Only non-empty subsets are read."""
    out = []
    for k in range(len(units), 1, -1):
        for s in combinations(units, k):
            full = frozenset(s)
            if full not in value:
                continue
            for u in s:
                rest = full - {u}
                if rest in value and value[rest] - value[full] > min_gain:
                    out.append(Harm(kind, u, tuple(s), float(value[full]), float(value[rest])))
    return sorted(out, key=lambda h: -h.gain)


def harm_lines(harms: Sequence[Harm], n_units: int, *, metric: str = "macro-F1") -> list[str]:
    """One warning per harmful unit (how often and by how much its removal helps), then the
    advice; empty when nothing is harmful."""
    by_unit: dict[tuple[str, str], list[Harm]] = {}
    for h in harms:
        by_unit.setdefault((h.kind, h.unit), []).append(h)
    holding = 2 ** (n_units - 1) - 1          # subsets of >= 2 units that hold a given unit
    lines = []
    for (kind, unit), hs in by_unit.items():
        top = max(hs, key=lambda h: h.gain)
        rest = "+".join(x for x in top.present if x != unit)
        lines.append(f"warning: removing {kind} {unit} raises {metric} in {len(hs)} of {holding} "
                     f"subsets that hold it (most: {'+'.join(top.present)} "
                     f"{top.score_with:.3f} -> {rest} {top.score_without:.3f}, "
                     f"+{top.gain:.3f})")
    if lines:
        lines.append(f"note: {HARM_ADVICE}")
    return lines


def values_from_rows(rows: Iterable[Mapping[str, Any]],
                     score: Callable[[Mapping[str, Any]], float]) -> dict[frozenset[str], float]:
    """{frozenset(row["present"]): score(row)} for a subset table (evaluate's or parity's)."""
    return {frozenset(r["present"]): float(score(r)) for r in rows}


def unit_values(value: Scores, groups: Mapping[str, Sequence[str]]) -> dict[frozenset[str], float]:
    """Scores of subsets of groups (devices) from the scores of subsets of their members
    (modalities): a group subset scores what the union of its members scores."""
    names = list(groups)
    out = {}
    for k in range(len(names) + 1):
        for s in combinations(names, k):
            members = frozenset(m for g in s for m in groups[g])
            if members in value:
                out[frozenset(s)] = value[members]
    return out


def harm_warnings(rows: Iterable[Mapping[str, Any]], names: Sequence[str],
                  score: Callable[[Mapping[str, Any]], float], *,
                  devices: Mapping[str, Sequence[str]] | None = None,
                  min_gain: float = 0.0) -> list[str]:
    """The warning lines for a subset table: harmful modalities, and harmful devices when some
    device carries more than one modality (``devices``: device -> its modalities)."""
    value = values_from_rows(rows, score)
    harms = harmful_removals(names, value, kind="modality", min_gain=min_gain)
    lines = [x for x in harm_lines(harms, len(names)) if x.startswith("warning")]
    if devices and any(len(v) > 1 for v in devices.values()):
        dv = unit_values(value, devices)
        dh = harmful_removals(list(devices), dv, kind="device", min_gain=min_gain)
        lines += [x for x in harm_lines(dh, len(devices)) if x.startswith("warning")]
    return lines + ([f"note: {HARM_ADVICE}"] if lines else [])


def pareto_front(points: Sequence[tuple[float, Sequence[float]]]) -> list[int]:
    """Indices of the points (score, costs) no other point beats: none has a score at least as
    high and every cost at most as high, with one of them strictly better."""
    def beats(a: tuple[float, Sequence[float]], b: tuple[float, Sequence[float]]) -> bool:
        ge = a[0] >= b[0] and all(x <= y for x, y in zip(a[1], b[1], strict=True))
        gt = a[0] > b[0] or any(x < y for x, y in zip(a[1], b[1], strict=True))
        return ge and gt

    return [i for i, p in enumerate(points)
            if not any(beats(q, p) for j, q in enumerate(points) if j != i)]


def subset_table_warnings(rows: Sequence[Mapping[str, Any]], *,
                          devices: Mapping[str, Sequence[str]] | None = None,
                          pipelines: Sequence[str] | None = None) -> list[str]:
    """Harm warnings of a parity-style subset table (rows with "present", largest first, and per
    pipeline a dict with "macro_f1"), one group per pipeline, then the advice."""
    if not rows:
        return []
    names = list(rows[0]["present"])
    pipes = pipelines or [k for k, v in rows[0].items() if isinstance(v, dict)
                          and "macro_f1" in v]
    out = []
    for p in pipes:
        def score(r: Mapping[str, Any], p: str = p) -> float:
            return float(r[p]["macro_f1"])

        lines = harm_warnings(rows, names, score, devices=devices)
        out += [f"{x} [{p}]" for x in lines if x.startswith("warning")]
    return out + ([f"note: {HARM_ADVICE}"] if out else [])
