"""WESAD (chest RespiBAN, 700 Hz) from the raw ``S*/S*.pkl`` files; a chest signal that is missing
or NaN is absent in the windows it does not cover.
"""

from __future__ import annotations

import logging
import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.data.presence import finish
from crossl_edge.data.rawtext import missing_path
from crossl_edge.data.signal import (
    check_window,
    concat_windows,
    pick_modalities,
    resample,
    runs,
    subject_list,
    window_flags,
    window_segment,
)
from crossl_edge.data.windows import Dataset, ModalitySpec, Windows, split_by_subject
from crossl_edge.errors import DataError

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



def find_subject_files(path: str | Path) -> list[Path]:
    """``S<n>/S<n>.pkl`` under ``path`` (the WESAD folder or its parent), sorted by number."""
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root} does not exist; pass --data pointing at the unzipped WESAD "
                        "folder.")
    if root.is_file() and root.suffix == ".pkl":
        return [root]
    if (root.is_file() and root.suffix == ".zip") or any(root.glob("*.zip")):
        raise missing_path(root, dataset="WESAD", hint="the unzipped WESAD folder")
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


def _chest_signals(obj: dict[str, Any], file: Path, names: list[str], *,
                   strict: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(signals (T, channels of ``names``), labels (T,)); a missing chest signal is all NaN
    (absent) with a warning, or a DataError when ``strict``."""
    label = np.asarray(obj["label"]).reshape(-1)
    chest = obj["signal"]["chest"]
    cols = []
    for name in names:
        key, channels = CHEST[name]
        if key not in chest:
            has = ", ".join(map(str, chest))
            if strict:
                raise DataError(f"{file}: chest signal {key!r} is missing (has: {has}); "
                                f"drop {name!r} from modalities.")
            log.warning("wesad: %s has no chest signal %r; %s absent for that subject", file,
                        key, name)
            cols.append(np.full((label.size, len(channels)), np.nan))
            continue
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
               modalities: Sequence[str] = ("ecg", "emg", "eda"),
               strict_sensors: bool = False) -> Dataset:
    """Windows of labels 1-4 (baseline, stress, amusement, meditation) from the chest device.

    ``window``/``step`` count samples at the output rate (``resample_hz`` or 700 Hz). Windows never
    cross a label change or a subject. A chest signal missing from a subject's pickle, or NaN,
    is absent in the windows it touches (``Windows.present``); ``strict_sensors`` refuses a
    missing signal and drops NaN windows (``meta["dropped_nan_windows"]``) instead.
    ``test_subjects`` (``S2``/``2``...) defaults to the last subject present; every other subject
    trains.
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
    present: dict[str, list[np.ndarray]] = {n: [] for n in names}
    bounds = np.cumsum([0, *widths])
    dropped = longest = 0
    for file in files:
        sig, label = _chest_signals(read_subject(file), file, names, strict=strict_sensors)
        for start, stop, value in runs(label):
            if value not in (1, 2, 3, 4):
                continue
            seg = sig[start:stop]
            finite = np.isfinite(seg)
            bad = {n: ~finite[:, bounds[i]:bounds[i + 1]].all(axis=1) for i, n in enumerate(names)}
            if not finite.all():
                seg = _fill_nonfinite(seg)
            if resample_hz:
                seg = resample(seg, from_hz=RAW_HZ, to_hz=rate)
            longest = max(longest, seg.shape[0])
            if strict_sensors:
                w, n_bad = window_segment(seg, length=window, step=step,
                                          bad=~finite.all(axis=1), ratio=ratio)
                ok = {n: np.ones(len(w), bool) for n in names}
            else:
                w, n_bad = window_segment(seg, length=window, step=step)
                ok = {n: ~window_flags(b, n_samples=seg.shape[0], length=window, step=step,
                                       ratio=ratio) for n, b in bad.items()}
            dropped += n_bad
            parts.append(w)
            labels.append(np.full(len(w), int(value) - 1))
            subjects.append(np.full(len(w), file.stem))
            for n in names:
                present[n].append(ok[n])
    if not any(len(p) for p in parts):
        raise DataError(f"window of {window} samples is longer than every labelled WESAD segment "
                        f"(longest {longest} samples at {rate:g} Hz); use a shorter window.")
    x = concat_windows(parts, sum(widths), window)
    data = {n: x[:, bounds[i]:bounds[i + 1]] for i, n in enumerate(names)}
    meta: dict[str, object] = {"source": str(path), "dataset": "wesad", "raw_hz": RAW_HZ,
                               "resampled_to_hz": rate if resample_hz else None,
                               "dropped_nan_windows": dropped}
    everyone = Windows(specs, data, np.concatenate(labels), np.concatenate(subjects), CLASSES, meta,
                       {n: np.concatenate(p) for n, p in present.items()})
    everyone = finish("wesad", everyone, why={n: "missing or NaN" for n in names})
    who = sorted(set(everyone.subjects.tolist()), key=lambda s: int(s[1:]))
    wanted = subject_list(test_subjects)
    test = [subject_id(s) for s in wanted] if wanted else who[-1:]
    train_w, test_w = split_by_subject(everyone, test)
    log.info("wesad: %d train / %d test windows, test subjects %s", len(train_w), len(test_w), test)
    return Dataset("wesad", train_w, test_w)


def _fill_nonfinite(seg: np.ndarray) -> np.ndarray:
    """Linear fill of non-finite samples (the windows covering them are never used)."""
    out = seg.copy()
    t = np.arange(seg.shape[0])
    for c in range(seg.shape[1]):
        ok = np.isfinite(seg[:, c])
        out[:, c] = np.interp(t, t[ok], seg[ok, c]) if ok.any() else 0.0
    return out
