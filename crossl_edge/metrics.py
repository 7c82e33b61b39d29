"""Classification metrics on a whole test set (numpy only: the phone runtime uses them too)."""

from __future__ import annotations

from itertools import combinations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts; rows are true classes, columns predictions."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, object]:
    """Accuracy, macro-F1 over all classes present in truth or prediction, per-class P/R/F1."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(cm).astype(float)
    pred_pos, true_pos = cm.sum(0).astype(float), cm.sum(1).astype(float)
    precision = np.divide(tp, pred_pos, out=np.zeros_like(tp), where=pred_pos > 0)
    recall = np.divide(tp, true_pos, out=np.zeros_like(tp), where=true_pos > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    active = (pred_pos + true_pos) > 0
    return {
        "n": int(cm.sum()),
        "accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "macro_f1": float(f1[active].mean()) if active.any() else 0.0,
        "per_class": {
            "precision": precision.tolist(),
            "recall": recall.tolist(),
            "f1": f1.tolist(),
            "support": true_pos.astype(int).tolist(),
        },
        "confusion": cm.tolist(),
    }


def modality_subsets(names: tuple[str, ...] | list[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``names``, largest first, in manifest order within a subset."""
    out: list[tuple[str, ...]] = []
    for k in range(len(names), 0, -1):
        out.extend(combinations(names, k))
    return out


def presence_vector(names: tuple[str, ...] | list[str], subset: tuple[str, ...]) -> np.ndarray:
    """(M,) float32 with 1 where the modality is in ``subset``."""
    return np.array([1.0 if n in subset else 0.0 for n in names], dtype=np.float32)


def cosine_rows(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``got`` (N, D) with the same row of ``ref``."""
    den = np.linalg.norm(got, axis=-1) * np.linalg.norm(ref, axis=-1) + 1e-12
    return (got * ref).sum(-1) / den


def sqnr_db(got: np.ndarray, ref: np.ndarray) -> float:
    """10 log10(signal energy / error energy) of ``got`` vs ``ref`` over all elements (inf when
    they are equal)."""
    noise = float(((got - ref) ** 2).sum())
    return float(10 * np.log10(float((ref ** 2).sum()) / noise)) if noise > 0 else float("inf")
