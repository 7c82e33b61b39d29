"""Per-window presence for the raw-format loaders: stuck or missing stretches of a sensor become
an absent modality for the windows they touch, counted per modality and subject and logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import cast

import numpy as np

from crossl_edge.data.signal import runs
from crossl_edge.data.windows import Windows

log = logging.getLogger(__name__)

STUCK_SECONDS = 10.0  # all axes exactly 0 for this long = a stuck or disconnected sensor


def stuck_runs(x: np.ndarray, *, hz: float, used: np.ndarray | None = None,
               max_seconds: float = STUCK_SECONDS) -> list[tuple[int, int]]:
    """(start, stop) file rows where every channel of ``x`` (T, C) reads exactly 0 for
    ``max_seconds`` or more in a row (real motion sensors are never exactly 0). Only rows in
    ``used`` count towards a run's length; the rows returned index the whole file."""
    zero = ~np.any(x != 0, axis=1)
    if used is not None:
        zero = zero & used
    longest = max(2, math.ceil(max_seconds * hz))
    out = []
    for a, b, v in runs(zero):
        if v and b - a >= longest:
            out.append((a, b))
    return out


def rows_mask(n: int, stretches: list[tuple[int, int]]) -> np.ndarray:
    """(n,) bool, True inside each (start, stop) stretch."""
    bad = np.zeros(n, bool)
    for a, b in stretches:
        bad[a:b] = True
    return bad


def absent_counts(w: Windows) -> dict[str, dict[str, int]]:
    """modality -> subject -> windows where that modality is absent (only non-zero counts)."""
    out: dict[str, dict[str, int]] = {}
    subjects = w.subjects.astype(str)
    for name in w.names:
        miss = ~w.present[name]
        if miss.any():
            who, n = np.unique(subjects[miss], return_counts=True)
            out[name] = {str(s): int(k) for s, k in zip(who, n, strict=True)}
    return out


def finish(dataset: str, w: Windows, *, why: Mapping[str, str] | None = None) -> Windows:
    """Drop windows with no modality present, log how many windows each modality is absent in
    per subject (``why[m]`` says what made it absent), and record it as
    ``meta["absent_windows"]`` (modality -> subject -> count) and ``meta["dropped_empty_windows"]``.
    """
    keep = cast(np.ndarray, w.presence().any(axis=1))  # (N,): axis=1 of an (N, M) array
    dropped = int((~keep).sum())
    if dropped:
        log.warning("%s: %d window(s) have no sensor present; dropped", dataset, dropped)
        w = w.subset(keep)
    counts = absent_counts(w)
    for name, per_subject in counts.items():
        total = sum(per_subject.values())
        detail = ", ".join(f"{s}: {k}" for s, k in per_subject.items())
        reason = f" ({why[name]})" if why and name in why else ""
        log.warning("%s: %s absent in %d of %d windows%s; per subject %s", dataset, name, total,
                    len(w), reason, detail)
    w.meta["absent_windows"] = counts
    w.meta["dropped_empty_windows"] = dropped
    return w
