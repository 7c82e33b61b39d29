"""Signal helpers shared by the dataset loaders: resampling, run-length segments, windowing."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from crossl_edge.data.windows import sliding_windows
from crossl_edge.errors import UsageError


def _ratio(from_hz: float, to_hz: float) -> tuple[int, int]:
    if not (from_hz > 0 and to_hz > 0 and math.isfinite(from_hz) and math.isfinite(to_hz)):
        raise UsageError(f"cannot resample from {from_hz} Hz to {to_hz} Hz; pass a positive rate.")
    frac = (Fraction(str(to_hz)) / Fraction(str(from_hz))).limit_denominator(10_000)
    return frac.numerator, frac.denominator


def resample(x: np.ndarray, *, from_hz: float, to_hz: float) -> np.ndarray:
    """Resample ``x`` (T,) or (T, C) along time to ``ceil(T * to_hz / from_hz)`` samples.

    Uses ``scipy.signal.resample_poly`` (anti-aliased polyphase FIR) when scipy is installed;
    otherwise a numpy fallback: a boxcar anti-alias filter when downsampling, then linear
    interpolation onto the new time grid. ``x`` must be finite.
    """
    up, down = _ratio(from_hz, to_hz)
    x = np.asarray(x, dtype=np.float64)
    if up == down:
        return x.copy()
    n_out = -(-x.shape[0] * up // down)
    if _HAVE_SCIPY:
        from scipy.signal import resample_poly

        y = resample_poly(x, up, down, axis=0, padtype="line")  # no zero-padding edge dip
        return y[:n_out]
    return _resample_numpy(x, up, down, n_out)


def _resample_numpy(x: np.ndarray, up: int, down: int, n_out: int) -> np.ndarray:
    flat = x.reshape(x.shape[0], -1)
    width = int(round(down / up))
    if width > 1:  # moving-average anti-alias filter, normalised at the edges
        kernel = np.ones(width) / width
        norm = np.convolve(np.ones(flat.shape[0]), kernel, mode="same")
        flat = np.stack([np.convolve(c, kernel, mode="same") / norm for c in flat.T], axis=1)
    t_new = np.arange(n_out) * (down / up)
    t_old = np.arange(flat.shape[0])
    y = np.stack([np.interp(t_new, t_old, c) for c in flat.T], axis=1)
    return y.reshape((n_out, *x.shape[1:]))


def _scipy_available() -> bool:
    try:
        import scipy.signal  # noqa: F401
    except ImportError:
        return False
    return True


_HAVE_SCIPY = _scipy_available()


def runs(values: np.ndarray) -> list[tuple[int, int, Any]]:
    """Maximal runs of equal values as (start, stop, value)."""
    values = np.asarray(values)
    if values.size == 0:
        return []
    cut = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate([[0], cut])
    stops = np.concatenate([cut, [values.size]])
    return [(int(a), int(b), values[a].item()) for a, b in zip(starts, stops, strict=True)]


def window_flags(bad: np.ndarray, *, n_samples: int, length: int, step: int,
                 ratio: float = 1.0) -> np.ndarray:
    """For each window (starts 0, step, ...) of an ``n_samples`` segment, whether it covers a
    raw sample flagged in ``bad`` (the segment's raw-rate mask; ``ratio`` raw samples per
    output sample)."""
    if n_samples < length:
        return np.zeros(0, bool)
    starts = np.arange(0, n_samples - length + 1, step)
    cum = np.concatenate([[0], np.cumsum(bad, dtype=np.int64)])
    lo = np.minimum(np.floor(starts * ratio).astype(np.int64), bad.size)
    hi = np.minimum(np.ceil((starts + length) * ratio).astype(np.int64), bad.size)
    return cum[hi] != cum[lo]


def window_segment(signal: np.ndarray, *, length: int, step: int, bad: np.ndarray | None = None,
                   ratio: float = 1.0) -> tuple[np.ndarray, int]:
    """Windows (N, C, length) of one contiguous (T, C) segment, and how many were dropped.

    A window is dropped when any raw sample it covers is flagged in ``bad`` (raw-rate mask of
    the segment); ``ratio`` = raw samples per output sample, to map windows back to raw time.
    Segments shorter than ``length`` give no windows.
    """
    t, c = signal.shape
    if t < length:
        return np.empty((0, c, length), np.float32), 0
    w = sliding_windows(signal, length=length, step=step)
    if bad is None or not bad.any():
        return w, 0
    ok = ~window_flags(bad, n_samples=t, length=length, step=step, ratio=ratio)
    return w[ok], int((~ok).sum())


def pick_modalities(requested: Sequence[str] | None, known: Sequence[str],
                    dataset: str) -> list[str]:
    """Validate a user's modality list against ``known``; None means all, in ``known`` order."""
    if requested is None:
        return list(known)
    if isinstance(requested, str):
        requested = [s.strip() for s in requested.split(",") if s.strip()]
    spelled = {k.lower(): k for k in known}
    names = [str(n) if str(n) in known else spelled.get(str(n).lower(), "") for n in requested]
    if "" in names or not names or len(set(names)) != len(names):
        raise UsageError(f"unknown, repeated or no modalities {list(requested)} for {dataset}; "
                         f"choose from: {', '.join(known)}.")
    return names


def subject_list(value: Sequence[object] | str | int | None) -> list[str] | None:
    """``test_subjects`` as a list of strings; a string may hold several, comma-separated."""
    if value is None:
        return None
    if isinstance(value, (str, int)):
        value = [s for s in str(value).split(",") if s.strip()]
    out = [str(s).strip() for s in value]
    return out or None


def check_window(window: int, step: int) -> tuple[int, int]:
    """``window`` and ``step`` as ints, or a UsageError."""
    try:
        ok = int(window) == window and int(step) == step and window >= 1 and step >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UsageError(f"window ({window}) and step ({step}) must be positive integers.")
    return int(window), int(step)


def concat_windows(parts: list[np.ndarray], n_channels: int, length: int) -> np.ndarray:
    if not parts:
        return np.empty((0, n_channels, length), np.float32)
    return np.concatenate(parts, axis=0)


def labelled_windows(x: np.ndarray, label: np.ndarray, *, length: int, step: int,
                     classes: dict[int, int], breaks: np.ndarray | None = None,
                     bad: Mapping[str, np.ndarray] | None = None,
                     ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Windows (N, C, length) of a (T, C) recording inside each run of one label, their class
    indices, and per modality of ``bad`` whether it is present in each window: ``classes`` maps
    a raw label to its class (labels not in it are dropped); ``breaks`` (T,) marks rows that
    start a new segment (a time gap), which no window crosses; ``bad[m]`` (T,) marks the rows
    where modality ``m`` did not arrive (a window touching one has ``m`` absent)."""
    bad = dict(bad or {})
    key = label.astype(np.int64)
    if breaks is not None:
        key = key + (int(key.max()) + 1) * np.cumsum(breaks)
    parts, ys = [], []
    flags: dict[str, list[np.ndarray]] = {m: [] for m in bad}
    for start, stop, _ in runs(key):
        raw = int(label[start])
        if raw in classes and stop - start >= length:
            w, _ = window_segment(x[start:stop], length=length, step=step)
            parts.append(w)
            ys.append(np.full(len(w), classes[raw], np.int64))
            for m, b in bad.items():
                flags[m].append(~window_flags(b[start:stop], n_samples=stop - start,
                                              length=length, step=step))
    if not parts:
        return (np.empty((0, x.shape[1], length), np.float32), np.empty(0, np.int64),
                {m: np.empty(0, bool) for m in bad})
    return (np.concatenate(parts), np.concatenate(ys),
            {m: np.concatenate(f) for m, f in flags.items()})
