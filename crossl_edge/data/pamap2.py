"""PAMAP2 (3 IMUs at 100 Hz, optional heart rate) from the raw ``subject1NN.dat`` files, windowed
within activity segments for CroSSL's 12 classes (a wireless IMU that drops out is absent there),
with a leave-one-subject-out split.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np

from crossl_edge.data.presence import finish
from crossl_edge.data.rawtext import check_number, missing_path, read_table
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

RAW_HZ = 100.0
N_COLUMNS = 54
# activityID -> class index; CroSSL's 12 classes, in its order
ACTIVITIES = {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6, 12: 7, 13: 8, 16: 9, 17: 10, 24: 11}
CLASSES = ("lying", "sitting", "standing", "walking", "running", "cycling", "nordic_walking",
           "ascending_stairs", "descending_stairs", "vacuum_cleaning", "ironing", "rope_jumping")
_IMU_START = {"hand": 3, "chest": 20, "ankle": 37}  # 0-based first column (temperature) of a block
_SENSOR_OFFSET = {"acc": 1, "gyro": 7}  # acc = the +-16 g accelerometer; gyro in rad/s
MODALITY_NAMES = ("hand_acc", "hand_gyro", "ankle_acc", "ankle_gyro", "chest_acc", "chest_gyro")
HEART_RATE = "heart_rate"
_HR_COLUMN = 2
_MAX_TIME_STEP_S = 0.1  # a larger timestamp jump (or a step back) starts a new segment


def _columns(name: str) -> list[int]:
    if name == HEART_RATE:
        return [_HR_COLUMN]
    place, sensor = name.split("_")
    first = _IMU_START[place] + _SENSOR_OFFSET[sensor]
    return [first, first + 1, first + 2]


def _channels(name: str) -> tuple[str, ...]:
    return (HEART_RATE,) if name == HEART_RATE else tuple(f"{name}_{a}" for a in "xyz")


def protocol_dir(path: str | Path) -> Path:
    """The folder holding ``subject1NN.dat``: ``path`` itself, ``path/Protocol`` or
    ``path/PAMAP2_Dataset/Protocol``."""
    root = Path(path)
    if root.is_file() and root.suffix == ".zip":
        raise missing_path(root, dataset="PAMAP2", hint="PAMAP2_Dataset or its Protocol folder")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; pass --data pointing at PAMAP2_Dataset or its "
                        "Protocol folder.")
    for d in (root / "Protocol", root / "PAMAP2_Dataset" / "Protocol", root):
        if d.is_dir() and any(d.glob("subject*.dat")):
            return d
    if any(root.glob("*.zip")):
        raise missing_path(root, dataset="PAMAP2", hint="PAMAP2_Dataset or its Protocol folder")
    raise DataError(f"no subject*.dat files under {root}; pass --data pointing at PAMAP2_Dataset "
                    "or its Protocol folder.")


def _subject_files(folder: Path) -> dict[str, Path]:
    out = {}
    for f in folder.glob("subject*.dat"):
        m = re.fullmatch(r"subject(\d+)\.dat", f.name)
        if m:
            out[m.group(1)] = f
    return out


def find_files(path: str | Path, *, include_optional: bool = False) -> list[tuple[str, Path]]:
    """(subject, file) pairs sorted by subject; Optional/ recordings follow their Protocol one."""
    protocol = protocol_dir(path)
    files = [(s, f, 0) for s, f in _subject_files(protocol).items()]
    if include_optional:
        optional = protocol.parent / "Optional"
        found = _subject_files(optional) if optional.is_dir() else {}
        if not found:
            raise DataError(f"include_optional is set but {optional} holds no subject*.dat files; "
                            "unzip the Optional folder next to Protocol or drop the option.")
        files += [(s, f, 1) for s, f in found.items()]
    files.sort(key=lambda t: (int(t[0]), t[2]))
    return [(s, f) for s, f, _ in files]


def loso_folds(path: str | Path, *, include_optional: bool = False) -> list[str]:
    """Subjects present under ``path``, in order: one leave-one-subject-out fold each
    (pass ``test_subjects=[s]``)."""
    return sorted({s for s, _ in find_files(path, include_optional=include_optional)}, key=int)


def read_dat(file: Path, columns: list[int]) -> np.ndarray:
    """Columns 0 (time), 1 (activity) and ``columns`` of one 54-column ``.dat`` file, as float64
    (NaN where PAMAP2 lost a packet); a DataError naming the file for anything else."""
    arr = read_table(file, n_columns=N_COLUMNS, dataset="PAMAP2 .dat", allow_nan=True)
    return np.ascontiguousarray(arr[:, [0, 1, *columns]])


def interpolate_gaps(x: np.ndarray, *, max_gap: int,
                     per_column: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Fill NaN in a (T, C) segment; return (filled, bad rows (T,), or (T, C) per column).

    Interior NaN runs of at most ``max_gap`` samples are linearly interpolated and count as
    good; longer runs and runs touching the segment's ends are filled too (so resampling
    stays finite) but flagged bad, so the windows covering them are not used.
    """
    t = x.shape[0]
    out = x.copy()
    cols = np.zeros((t, x.shape[1]), bool)
    grid = np.arange(t)
    for c in range(x.shape[1]):
        nan = np.isnan(x[:, c])
        if not nan.any():
            continue
        if nan.all():
            out[:, c] = 0.0
            cols[:, c] = True
            continue
        out[:, c] = np.interp(grid, grid[~nan], x[~nan, c])
        edges = np.diff(np.concatenate([[0], nan.astype(np.int8), [0]]))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        long = (stops - starts > max_gap) | (starts == 0) | (stops == t)
        mark = np.zeros(t + 1, np.int64)
        np.add.at(mark, starts[long], 1)
        np.add.at(mark, stops[long], -1)
        cols[:, c] = np.cumsum(mark[:t]) > 0
    # axis=1 of the (T, C) flags: an array (T,), never a scalar
    return out, (cols if per_column else cast(np.ndarray, cols.any(axis=1)))


def _per_modality(bad_cols: np.ndarray, names: list[str],
                  width: dict[str, int]) -> dict[str, np.ndarray]:
    """Bad rows per modality from per-column flags in read order (IMUs, heart rate last)."""
    order = [n for n in names if n != HEART_RATE] + [n for n in names if n == HEART_RATE]
    out: dict[str, np.ndarray] = {}
    col = 0
    for n in order:
        out[n] = cast(np.ndarray, bad_cols[:, col:col + width[n]].any(axis=1))  # (T,) per row
        col += width[n]
    return out


def _heart_rate(hr: np.ndarray) -> np.ndarray:
    """Interpolate the ~9 Hz heart rate over the whole recording (held at both ends)."""
    ok = np.isfinite(hr)
    if not ok.any():
        return hr
    grid = np.arange(hr.size)
    return np.interp(grid, grid[ok], hr[ok])


def _segments(time: np.ndarray, activity: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of one activity with no timestamp jump, as (start, stop, activityID)."""
    dt = np.diff(time)
    jump = np.concatenate([[False], (dt <= 0) | (dt > _MAX_TIME_STEP_S) | ~np.isfinite(dt)])
    key = np.where(np.isfinite(activity), activity, -1) + 1000 * np.cumsum(jump)
    return [(a, b, int(activity[a])) for a, b, _ in runs(key)]


def load_pamap2(*, path: str | Path, window: int = 512, step: int = 256,
                test_subjects: Sequence[object] | None = None, heart_rate: bool = False,
                resample_hz: float | None = None, include_optional: bool = False,
                max_gap: int = 20, modalities: Sequence[str] | None = None,
                strict_sensors: bool = False) -> Dataset:
    """Windows of PAMAP2's 12 CroSSL activities; label = the activity segment's class.

    ``window``/``step`` count samples at the output rate (``resample_hz`` or 100 Hz). Activity 0
    and activities outside the 12 classes are dropped; windows never cross an activity segment,
    a timestamp jump or a file. Interior NaN runs up to ``max_gap`` raw samples are linearly
    interpolated; a modality with a longer run (a wireless IMU dropping out) is absent in the
    windows touching it (``Windows.present``); with ``strict_sensors`` those windows are
    dropped instead (``meta["dropped_nan_windows"]``).
    ``heart_rate`` adds a 1-channel ``heart_rate`` modality (interpolated from ~9 Hz).
    ``test_subjects`` (e.g. ``[105]``) defaults to the last subject present (leave-one-out).
    """
    window, step = check_window(window, step)
    max_gap = int(check_number("max_gap", max_gap, minimum=0, integer=True))
    if resample_hz is not None:
        check_number("resample_hz", resample_hz, minimum=1e-3)
    known = [*MODALITY_NAMES, HEART_RATE] if heart_rate else list(MODALITY_NAMES)
    names = pick_modalities(modalities, known, "pamap2")
    rate = float(resample_hz) if resample_hz else RAW_HZ
    ratio = RAW_HZ / rate
    specs = tuple(ModalitySpec(n, _channels(n), rate) for n in names)
    imu_cols = [c for n in names if n != HEART_RATE for c in _columns(n)]
    columns = imu_cols + ([_HR_COLUMN] if HEART_RATE in names else [])
    hr_pos = len(imu_cols) + 2  # column of heart rate in what read_dat returns
    parts: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    subjects: list[np.ndarray] = []
    present: dict[str, list[np.ndarray]] = {n: [] for n in names}
    width = {n: len(_columns(n)) for n in names}
    dropped = too_short = longest = 0
    for subject, file in find_files(path, include_optional=include_optional):
        arr = read_dat(file, columns)
        if HEART_RATE in names:
            arr[:, hr_pos] = _heart_rate(arr[:, hr_pos])
        for start, stop, activity in _segments(arr[:, 0], arr[:, 1]):
            if activity not in ACTIVITIES:
                continue
            seg, bad_cols = interpolate_gaps(arr[start:stop, 2:], max_gap=max_gap, per_column=True)
            if resample_hz:
                seg = resample(seg, from_hz=RAW_HZ, to_hz=rate)
            longest = max(longest, seg.shape[0])
            if seg.shape[0] < window:
                too_short += 1
                continue
            bad = _per_modality(bad_cols, names, width)
            if strict_sensors:
                any_bad = np.logical_or.reduce(list(bad.values()))
                w, n_bad = window_segment(seg, length=window, step=step, bad=any_bad, ratio=ratio)
                ok = {n: np.ones(len(w), bool) for n in names}
            else:
                w, n_bad = window_segment(seg, length=window, step=step)
                ok = {n: ~window_flags(b, n_samples=seg.shape[0], length=window, step=step,
                                       ratio=ratio) for n, b in bad.items()}
            dropped += n_bad
            parts.append(w)
            labels.append(np.full(len(w), ACTIVITIES[activity]))
            subjects.append(np.full(len(w), subject))
            for n in names:
                present[n].append(ok[n])
    if longest < window:
        raise DataError(f"window of {window} samples is longer than every PAMAP2 activity segment "
                        f"(longest {longest} samples at {rate:g} Hz); use a shorter window.")
    x = concat_windows(parts, len(columns), window)
    if len(x) == 0:
        raise DataError(f"every PAMAP2 window contains missing samples ({dropped} dropped); "
                        "raise max_gap or check the recordings.")
    offset, col = {}, 0  # IMU columns come in ``names`` order, heart rate last
    for n in names:
        if n != HEART_RATE:
            offset[n], col = col, col + 3
    offset[HEART_RATE] = col
    data = {s.name: x[:, offset[s.name]:offset[s.name] + s.n_channels] for s in specs}
    meta: dict[str, object] = {"source": str(path), "dataset": "pamap2", "raw_hz": RAW_HZ,
                               "resampled_to_hz": rate if resample_hz else None,
                               "dropped_nan_windows": dropped, "segments_too_short": too_short,
                               "max_gap": max_gap}
    everyone = Windows(specs, data, np.concatenate(labels), np.concatenate(subjects), CLASSES, meta,
                       {n: np.concatenate(p) for n, p in present.items()})
    everyone = finish("pamap2", everyone, why={n: f"NaN for more than {max_gap} samples"
                                               for n in names})
    who = sorted(set(everyone.subjects.tolist()), key=int)
    test = subject_list(test_subjects) or who[-1:]
    train_w, test_w = split_by_subject(everyone, test)
    log.info("pamap2: %d train / %d test windows, %d NaN windows dropped, test subjects %s",
             len(train_w), len(test_w), dropped, test)
    return Dataset("pamap2", train_w, test_w)

