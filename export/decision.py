"""Parity's decision per subset of modalities and int8 pipeline: flip rate, the float model's
margin rank of every changed window, macro-F1 drop (gated only on large test sets) with a paired
bootstrap 95% interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crossl_edge.export.thresholds import ParityThresholds
from crossl_edge.metrics import scores

BOOTSTRAP = 1000       # resamples of the test windows for the 95% intervals
BOOTSTRAP_SEED = 0


def margins(logits: np.ndarray) -> np.ndarray:
    """The float model's top-1 minus top-2 logit per window (N,): small = a close call."""
    return np.diff(np.sort(logits, axis=-1)[:, -2:], axis=-1)[:, 0]


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
    if not ranks:
        return "no window changed"
    if len(ranks) <= 5:
        return (f"changed windows' float-margin rank {', '.join(map(str, ranks))} of {n}, "
                "1 = the closest call")
    return (f"{len(ranks)} changed windows, float-margin rank median {int(np.median(ranks))} "
            f"of {n} (1 = the closest call), {sum(r <= n // 10 for r in ranks)} in the closest "
            "10%")


def _macro_f1(cm: np.ndarray) -> np.ndarray:
    """Macro-F1 of confusion matrices (B, K, K) exactly as metrics.scores computes it."""
    tp = np.diagonal(cm, axis1=1, axis2=2).astype(float)
    pred_pos, true_pos = cm.sum(1).astype(float), cm.sum(2).astype(float)
    denom = pred_pos + true_pos                      # 2TP / (pred + true) == F1
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    active = denom > 0
    return (f1 * active).sum(1) / np.maximum(active.sum(1), 1)


def bootstrap_f1(labels: np.ndarray, preds: dict[str, np.ndarray], n_classes: int, *,
                 reference: str = "float", resamples: int = BOOTSTRAP,
                 seed: int = BOOTSTRAP_SEED) -> dict[str, dict[str, list[float]]]:
    """Paired bootstrap over the test windows: per prediction set, the 95% interval of its
    macro-F1 and (except ``reference``) of its drop below the reference's on the same resample."""
    n = len(labels)
    w = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples)
    k2 = n_classes * n_classes
    f1 = {}
    for name, pred in preds.items():
        cell = np.asarray(labels, int) * n_classes + np.asarray(pred, int)   # (N,)
        onehot = np.zeros((n, k2), np.float64)
        onehot[np.arange(n), cell] = 1.0
        f1[name] = _macro_f1((w @ onehot).reshape(resamples, n_classes, n_classes))

    def ci(v: np.ndarray) -> list[float]:
        return [float(x) for x in np.percentile(v, [2.5, 97.5])]

    out: dict[str, dict[str, list[float]]] = {}
    for name, v in f1.items():
        out[name] = {"macro_f1_ci95": ci(v)}
        if name != reference:
            out[name]["f1_drop_ci95"] = ci(f1[reference] - v)
    return out


def judge(labels: np.ndarray, pred_f: np.ndarray, logits_f: np.ndarray, pred: np.ndarray,
          n_classes: int, thresholds: ParityThresholds) -> dict[str, Any]:
    """Scores of one int8 pipeline on one subset against float, with the decision's measurements
    and a verdict per bar (``f1_drop`` None where the test set is too small to gate it)."""
    n = len(labels)
    row: dict[str, Any] = scores(labels, pred, n_classes)
    row["f1_drop"] = float(scores(labels, pred_f, n_classes)["macro_f1"] - row["macro_f1"])
    row["agreement"] = float((pred == pred_f).mean())
    row["changed"] = changed_windows(pred_f, pred, margins(logits_f))
    row["flip_rate"] = len(row["changed"]) / max(n, 1)
    closest = thresholds.closest_calls(n)
    worst = max((c["margin_rank"] for c in row["changed"]), default=0)
    row["worst_margin_rank"] = worst
    row["verdicts"] = {
        "flip_rate": row["flip_rate"] <= thresholds.max_flip_rate + 1e-12,
        "margin": worst <= closest,
        "f1_drop": (row["f1_drop"] <= thresholds.max_f1_drop + 1e-9
                    if thresholds.gates_f1(n) else None),
    }
    return row


def failures(row: dict[str, Any], pipeline: str, present: str, n: int,
             thresholds: ParityThresholds) -> list[str]:
    """One sentence per bar ``row`` (a `judge` result) misses."""
    v, out = row["verdicts"], []
    if not v["flip_rate"]:
        out.append(f"{present} {pipeline}: flip rate {100 * row['flip_rate']:.2f}% "
                   f"({len(row['changed'])} of {n} windows) > "
                   f"{100 * thresholds.max_flip_rate:g}%")
    if not v["margin"]:
        far = sum(c["margin_rank"] > thresholds.closest_calls(n) for c in row["changed"])
        out.append(f"{present} {pipeline}: {far} changed window(s) outside the float model's "
                   f"{100 * thresholds.margin_quantile:g}% closest calls (worst float-margin "
                   f"rank {row['worst_margin_rank']} of {n}, bar "
                   f"{thresholds.closest_calls(n)})")
    if v["f1_drop"] is False:
        out.append(f"{present} {pipeline}: macro-F1 drop {row['f1_drop']:.3f} > "
                   f"{thresholds.max_f1_drop} ({margin_summary(row['changed'], n)})")
    return out
