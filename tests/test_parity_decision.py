"""Parity's decision on synthetic predictions: flip rate, margin rank of the changed windows,
macro-F1 gated only from --min-f1-windows, the bootstrap interval, and the options' checks."""

from __future__ import annotations

import numpy as np
import pytest

from crossl_edge.errors import UsageError
from crossl_edge.export.decision import _macro_f1, bootstrap_f1, failures, judge
from crossl_edge.export.thresholds import ParityThresholds
from crossl_edge.metrics import confusion_matrix, scores


def _case(n: int, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, float logits (N, K) and the float prediction, 90% accurate."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.standard_normal((n, k))
    right = rng.random(n) < 0.9
    logits[np.arange(n)[right], labels[right]] += 3.0
    return labels, logits, logits.argmax(-1)


def _flip(pred: np.ndarray, idx: np.ndarray, k: int = 4) -> np.ndarray:
    out = pred.copy()
    out[idx] = (out[idx] + 1) % k
    return out


def test_macro_f1_of_resamples_matches_scores() -> None:
    labels, _, pred = _case(300)
    cm = confusion_matrix(labels, pred, 4)[None]
    assert _macro_f1(cm)[0] == pytest.approx(scores(labels, pred, 4)["macro_f1"])
    one = confusion_matrix(labels[:5], np.zeros(5, int), 4)[None]   # classes never predicted
    assert _macro_f1(one)[0] == pytest.approx(scores(labels[:5], np.zeros(5, int), 4)["macro_f1"])


def test_bootstrap_interval_is_paired_and_seeded() -> None:
    labels, _, pred_f = _case(2000)
    same = bootstrap_f1(labels, {"float": pred_f, "int8": pred_f.copy()}, 4)
    assert same["int8"]["f1_drop_ci95"] == [0.0, 0.0]          # paired: identical -> no spread
    lo, hi = same["float"]["macro_f1_ci95"]
    assert lo < scores(labels, pred_f, 4)["macro_f1"] < hi and hi - lo < 0.05
    worse = _flip(pred_f, np.flatnonzero(pred_f == labels)[:100])
    ci = bootstrap_f1(labels, {"float": pred_f, "int8": worse}, 4)["int8"]["f1_drop_ci95"]
    assert 0 < ci[0] < ci[1]
    assert bootstrap_f1(labels, {"float": pred_f, "int8": worse}, 4)["int8"]["f1_drop_ci95"] == ci


def test_judge_flip_rate_margin_and_f1_gate() -> None:
    t = ParityThresholds()
    labels, logits, pred_f = _case(2000)
    margin = np.diff(np.sort(logits, -1)[:, -2:], axis=-1)[:, 0]
    order = np.argsort(margin)
    close = judge(labels, pred_f, logits, _flip(pred_f, order[:10]), 4, t)
    assert close["flip_rate"] == pytest.approx(0.005) and close["worst_margin_rank"] == 10
    assert close["verdicts"] == {"flip_rate": True, "margin": True, "f1_drop": True}
    assert failures(close, "tflm_int8", "acc", 2000, t) == []
    confident = judge(labels, pred_f, logits, _flip(pred_f, order[-1:]), 4, t)
    assert confident["verdicts"]["margin"] is False and confident["verdicts"]["flip_rate"]
    (msg,) = failures(confident, "tflm_int8", "acc", 2000, t)
    assert "outside the float model's 10% closest calls" in msg and "rank 2000 of 2000" in msg
    many = judge(labels, pred_f, logits, _flip(pred_f, order[:100]), 4, t)
    assert many["verdicts"]["flip_rate"] is False and many["verdicts"]["margin"]
    assert many["verdicts"]["f1_drop"] is not None
    small = judge(labels[:500], pred_f[:500], logits[:500],
                  _flip(pred_f[:500], np.arange(200)), 4, t)
    assert small["verdicts"]["f1_drop"] is None and small["f1_drop"] > 0.1   # reported only
    assert not any("macro-F1" in f for f in failures(small, "onnx_int8", "acc", 500, t))
    assert ParityThresholds(min_f1_windows=500).gates_f1(500)


def test_closest_calls_and_option_checks() -> None:
    t = ParityThresholds()
    assert t.closest_calls(2996) == 299 and t.closest_calls(40) == 4 and t.closest_calls(5) == 1
    for bad, flag in (({"max_flip_rate": 1.5}, "--max-flip-rate"),
                      ({"margin_quantile": 0.0}, "--margin-quantile"),
                      ({"max_f1_drop": -0.1}, "--max-f1-drop"),
                      ({"min_f1_windows": -1}, "--min-f1-windows")):
        with pytest.raises(UsageError, match=flag):
            ParityThresholds(**bad)


def test_parity_cli_refuses_bad_thresholds(cli_error, tmp_path) -> None:
    code, line = cli_error("parity", tmp_path, "--margin-quantile", "2")
    assert code == 2 and "--margin-quantile must lie in (0, 1]." in line
