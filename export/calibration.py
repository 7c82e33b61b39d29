"""Which training windows calibrate int8 and judge the search's candidates: at most
DEFAULT_CALIBRATION of them (measured: benchmarks/export_scale.py), stratified by class and subject.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from crossl_edge.errors import DataError, UsageError

# Test-window SQNR of the chosen schemes stops improving well below this many calibration windows
# (benchmarks/results/export_scale.md); beyond, export time grows and SQNR does not.
DEFAULT_CALIBRATION = 512
SELECTION = "stratified by class and subject (largest remainder), evenly spaced within each"


def _largest_remainder(sizes: list[int], n: int) -> list[int]:
    """``n`` split over groups in proportion to ``sizes`` (each at most its size)."""
    total = sum(sizes)
    raw = [n * s / total for s in sizes]
    quota = [min(int(r), s) for r, s in zip(raw, sizes, strict=True)]
    order = sorted(range(len(sizes)), key=lambda i: (-(raw[i] - int(raw[i])), i))
    while sum(quota) < n:
        for i in order:
            if sum(quota) < n and quota[i] < sizes[i]:
                quota[i] += 1
    return quota


def stratified_indices(labels: np.ndarray, subjects: np.ndarray, n: int) -> np.ndarray:
    """``n`` window indices (sorted) drawn in proportion to each class, and within a class to each
    subject, evenly spaced within each (class, subject) group; every class gets a window when
    ``n`` is at least the number of classes. Deterministic: no random state."""
    labels, subjects = np.asarray(labels), np.asarray(subjects).astype(str)
    if n >= len(labels):
        return np.arange(len(labels))
    by_class: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, (y, s) in enumerate(zip(labels.tolist(), subjects.tolist(), strict=True)):
        by_class[y][s].append(i)
    classes = sorted(by_class)
    sizes = [sum(len(v) for v in by_class[c].values()) for c in classes]
    quota = _largest_remainder(sizes, n)
    if n >= len(classes):           # a rare class keeps one window
        while 0 in quota:
            quota[quota.index(0)] += 1
            quota[int(np.argmax(quota))] -= 1
    picked: list[int] = []
    for c, q in zip(classes, quota, strict=True):
        groups = [by_class[c][s] for s in sorted(by_class[c])]
        for g, k in zip(groups, _largest_remainder([len(g) for g in groups], q), strict=True):
            if k:
                picked += [g[j] for j in np.unique(np.linspace(0, len(g) - 1, k).round()
                                                   .astype(int))]
    return np.sort(np.asarray(picked, dtype=int))


def calibration_indices(n_train: int, requested: int | None, *, labels: np.ndarray | None = None,
                        subjects: np.ndarray | None = None,
                        default: int | None = DEFAULT_CALIBRATION) -> np.ndarray:
    """The calibration windows: ``requested`` of the ``n_train`` training windows (None: at most
    ``default``, all when ``default`` is None), stratified by class and subject when ``labels``
    are given, else evenly spaced (what bundles before the stratified selection used)."""
    from crossl_edge.export.tflite_export import MIN_CALIBRATION

    if requested is not None and (requested < MIN_CALIBRATION or requested > n_train):
        error = DataError if requested < MIN_CALIBRATION else UsageError
        raise error(f"--calibration-windows {requested} is not in {MIN_CALIBRATION}..{n_train} "
                    f"(at least {MIN_CALIBRATION}, at most the training split); "
                    "pick a value in that range.")
    n = requested if requested is not None else min(n_train, default or n_train)
    if labels is None:
        return np.unique(np.linspace(0, n_train - 1, n).round().astype(int))
    return stratified_indices(labels, subjects if subjects is not None
                              else np.zeros(n_train, str), n)


def recorded_indices(labels: np.ndarray, subjects: np.ndarray,
                     calibration: dict[str, object]) -> np.ndarray:
    """The calibration windows a bundle's ``calibration`` record (windows, of, selection) names,
    re-drawn from the same training split (``labels``, ``subjects``)."""
    n_train = len(labels)
    windows = calibration.get("windows")
    n = int(windows) if isinstance(windows, int) else n_train
    if str(calibration.get("selection", "")).startswith("stratified"):
        return stratified_indices(labels, subjects, n)
    return np.unique(np.linspace(0, n_train - 1, min(n, n_train)).round().astype(int))


def make_judge(model: Any, names: list[str], calib: dict[str, np.ndarray],
               labels: np.ndarray) -> Any:
    """Float latents of every modality on the calibration windows, for scoring candidates."""
    import torch

    from crossl_edge.export.schemes import Judge

    with torch.no_grad():
        ref = {n: model.encoders[n](torch.from_numpy(calib[n])).numpy() for n in names}
    return Judge(model, list(names), ref, np.asarray(labels), int(model.cfg.n_classes))
