"""WESAD (chest RespiBAN, 700 Hz) from the raw ``S*/S*.pkl`` files, plus the resampling and
segment-windowing helpers the other raw-format loaders share.
"""

from __future__ import annotations

import logging
import math
import pickle
import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.data.windows import (
    Dataset,
    ModalitySpec,
    Windows,
    sliding_windows,
    split_by_subject,
)
from crossl_edge.errors import DataError, UsageError

log = logging.getLogger(__name__)

RAW_HZ = 700.0
CLASSES = ("baseline", "stress", "amusement", "meditation")  # WESAD labels 1, 2, 3, 4
# our modality name -> (key in signal["chest"], channel names)
CHEST: dict[str, tuple[str, tuple[str, ...]]] = {
    "ecg": ("ECG", ("ecg",)),
    "emg": ("EMG", ("emg",)),
    "eda": ("EDA", ("eda",)),
    "temp": ("Temp", ("temp",)),
    "resp": ("Resp", ("resp",)),
    "acc": ("ACC", ("acc_x", "acc_y", "acc_z")),
}


# ---------------------------------------------------------------- shared helpers (all loaders)

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
    starts = np.arange(0, t - length + 1, step)
    cum = np.concatenate([[0], np.cumsum(bad, dtype=np.int64)])
    lo = np.minimum(np.floor(starts * ratio).astype(np.int64), bad.size)
    hi = np.minimum(np.ceil((starts + length) * ratio).astype(np.int64), bad.size)
    ok = cum[hi] == cum[lo]
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


# ---------------------------------------------------------------- WESAD

def find_subject_files(path: str | Path) -> list[Path]:
    """``S<n>/S<n>.pkl`` under ``path`` (the WESAD folder or its parent), sorted by number."""
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root} does not exist; pass --data pointing at the unzipped WESAD "
                        "folder.")
    if root.is_file() and root.suffix == ".pkl":
        return [root]
    for base in (root, root / "WESAD"):
        files = [f for f in base.glob("S*/S*.pkl") if f.stem == f.parent.name
                 and re.fullmatch(r"S\d+", f.stem)]
        if files:
            return sorted(files, key=lambda f: int(f.stem[1:]))
    raise DataError(f"no S<n>/S<n>.pkl files under {root}; pass --data pointing at the WESAD "
                    "folder.")


def subject_id(value: object) -> str:
    """``2``, ``"2"`` and ``"S2"`` all name WESAD subject ``"S2"``."""
    s = str(value).strip()
    return s if s.upper().startswith("S") else f"S{s}"


def read_subject(file: Path) -> dict[str, Any]:
    """Unpickle one subject (Python-2 pickle, so ``encoding="latin1"``). Only open trusted files."""
    try:
        with open(file, "rb") as f:
            obj = pickle.load(f, encoding="latin1")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, AttributeError,
            ImportError) as e:
        raise DataError(f"{file}: cannot unpickle ({e}); re-extract the WESAD archive.") from e
    if not isinstance(obj, dict) or "label" not in obj or "chest" not in obj.get("signal", {}):
        raise DataError(f"{file}: not a WESAD subject pickle (no 'label' or signal['chest']); "
                        "point --data at the original WESAD files.")
    return obj


def _chest_signals(obj: dict[str, Any], file: Path,
                   names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    label = np.asarray(obj["label"]).reshape(-1)
    chest = obj["signal"]["chest"]
    cols = []
    for name in names:
        key, channels = CHEST[name]
        if key not in chest:
            has = ", ".join(map(str, chest))
            raise DataError(f"{file}: chest signal {key!r} is missing (has: {has}); "
                            f"drop {name!r} from modalities.")
        x = np.asarray(chest[key], dtype=np.float64)
        x = x[:, None] if x.ndim == 1 else x
        if x.shape != (label.size, len(channels)):
            raise DataError(f"{file}: chest {key!r} has shape {np.shape(chest[key])}, expected "
                            f"({label.size}, {len(channels)}) like the labels; the file is "
                            "corrupt.")
        cols.append(x)
    return np.concatenate(cols, axis=1), label


def load_wesad(*, path: str | Path, window: int = 1000, step: int = 500,
               resample_hz: float | None = None, test_subjects: Sequence[object] | None = None,
               modalities: Sequence[str] = ("ecg", "emg", "eda")) -> Dataset:
    """Windows of labels 1-4 (baseline, stress, amusement, meditation) from the chest device.

    ``window``/``step`` count samples at the output rate (``resample_hz`` or 700 Hz). Windows never
    cross a label change or a subject. ``test_subjects`` (``S2``/``2``...) defaults to the last
    subject present; every other subject trains.
    """
    window, step = check_window(window, step)
    names = pick_modalities(modalities, list(CHEST), "wesad")
    rate = float(resample_hz) if resample_hz else RAW_HZ
    ratio = RAW_HZ / rate
    specs = tuple(ModalitySpec(n, CHEST[n][1], rate) for n in names)
    widths = [len(CHEST[n][1]) for n in names]
    files = find_subject_files(path)
    parts: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    subjects: list[np.ndarray] = []
    dropped = longest = 0
    for file in files:
        sig, label = _chest_signals(read_subject(file), file, names)
        for start, stop, value in runs(label):
            if value not in (1, 2, 3, 4):
                continue
            seg = sig[start:stop]
            bad = ~np.isfinite(seg).all(axis=1)
            if bad.any():
                seg = _fill_nonfinite(seg)
            if resample_hz:
                seg = resample(seg, from_hz=RAW_HZ, to_hz=rate)
            longest = max(longest, seg.shape[0])
            w, n_bad = window_segment(seg, length=window, step=step, bad=bad, ratio=ratio)
            dropped += n_bad
            parts.append(w)
            labels.append(np.full(len(w), int(value) - 1))
            subjects.append(np.full(len(w), file.stem))
    if not any(len(p) for p in parts):
        raise DataError(f"window of {window} samples is longer than every labelled WESAD segment "
                        f"(longest {longest} samples at {rate:g} Hz); use a shorter window.")
    x = concat_windows(parts, sum(widths), window)
    bounds = np.cumsum([0, *widths])
    data = {n: x[:, bounds[i]:bounds[i + 1]] for i, n in enumerate(names)}
    meta: dict[str, object] = {"source": str(path), "dataset": "wesad", "raw_hz": RAW_HZ,
                               "resampled_to_hz": rate if resample_hz else None,
                               "dropped_nan_windows": dropped}
    everyone = Windows(specs, data, np.concatenate(labels), np.concatenate(subjects), CLASSES, meta)
    present = sorted(set(everyone.subjects.tolist()), key=lambda s: int(s[1:]))
    wanted = subject_list(test_subjects)
    test = [subject_id(s) for s in wanted] if wanted else present[-1:]
    train_w, test_w = split_by_subject(everyone, test)
    log.info("wesad: %d train / %d test windows, test subjects %s", len(train_w), len(test_w), test)
    return Dataset("wesad", train_w, test_w)


def _fill_nonfinite(seg: np.ndarray) -> np.ndarray:
    """Linear fill of non-finite samples (the windows covering them are dropped anyway)."""
    out = seg.copy()
    t = np.arange(seg.shape[0])
    for c in range(seg.shape[1]):
        ok = np.isfinite(seg[:, c])
        out[:, c] = np.interp(t, t[ok], seg[ok, c]) if ok.any() else 0.0
    return out
