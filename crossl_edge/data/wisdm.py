"""WISDM 2019 raw streams (``wisdm-dataset/raw/{phone,watch}/{accel,gyro}/data_<subject>_<sensor>
_<device>.txt``): one modality per device x sensor, each stream resampled from its own clock onto a
common grid, 18 activities (A-S, no N).
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crossl_edge.data.rawtext import (
    check_fraction,
    check_not_stuck,
    check_number,
    check_time,
    read_table,
    split_subjects,
)
from crossl_edge.data.signal import (
    check_window,
    concat_windows,
    pick_modalities,
    runs,
    window_segment,
)
from crossl_edge.data.windows import Dataset, ModalitySpec, Windows, split_by_subject
from crossl_edge.errors import DataError

log = logging.getLogger(__name__)

NOMINAL_HZ = 20.0
CODES = "ABCDEFGHIJKLMOPQRS"  # activity letters in class order (there is no N)
CLASSES = ("walking", "jogging", "stairs", "sitting", "standing", "typing", "brushing_teeth",
           "eating_soup", "eating_chips", "eating_pasta", "drinking", "eating_sandwich",
           "kicking", "playing_catch", "dribbling", "writing", "clapping", "folding_clothes")
MODALITY_NAMES = ("phone_accel", "phone_gyro", "watch_accel", "watch_gyro")
_LETTERS = {c: float(i) for i, c in enumerate(string.ascii_uppercase)}
_HINT = "the unzipped wisdm-dataset folder (or its raw/ folder)"


def raw_dir(path: str | Path) -> Path:
    """The ``raw`` folder holding ``phone/`` and ``watch/``."""
    root = Path(path)
    for d in (root, root / "raw", root / "wisdm-dataset" / "raw"):
        if (d / "phone").is_dir() or (d / "watch").is_dir():
            return d
    raise DataError(f"no phone/ or watch/ folders under {root}; pass --data pointing at {_HINT}.")


def stream_files(raw: Path, name: str) -> dict[str, Path]:
    """subject -> ``data_<subject>_<sensor>_<device>.txt`` of modality ``<device>_<sensor>``."""
    device, sensor = name.split("_")
    pattern = re.compile(rf"data_(\d+)_{sensor}_{device}\.txt")
    folder = raw / device / sensor
    found = {}
    for f in folder.glob("data_*.txt") if folder.is_dir() else []:
        m = pattern.fullmatch(f.name)
        if m:
            found[m.group(1)] = f
    return found


def read_stream(file: Path, subject: str, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(activity letter index, time in s, xyz) of one stream file, checked: one subject, known
    activities, time never going back within an activity, sensor not stuck at 0."""
    arr = read_table(file, n_columns=6, dataset="WISDM raw", delimiter=",", strip=";",
                     codes={1: _LETTERS})
    if (arr[:, 0] != float(subject)).any():
        row = int(np.flatnonzero(arr[:, 0] != float(subject))[0])
        raise DataError(f"{file}: row {row + 1} belongs to subject {arr[row, 0]:.0f}, not "
                        f"{subject}; the file was renamed or merged: restore the original.")
    letters = arr[:, 1].astype(np.int64)
    unknown = sorted({string.ascii_uppercase[i] for i in letters} - set(CODES))
    if unknown:
        raise DataError(f"{file}: unknown activity code(s) {', '.join(unknown)}; WISDM 2019 uses "
                        f"{CODES[0]}-{CODES[-1]} without N.")
    for start, stop, _ in runs(letters):
        check_time(arr[start:stop, 2], file, unit="ns", first_row=start)
    xyz = arr[:, 3:6]
    check_not_stuck(xyz, file, sensor=name, hz=NOMINAL_HZ)
    return letters, arr[:, 2] * 1e-9, xyz


def _sessions(letters: np.ndarray) -> dict[tuple[int, int], tuple[int, int]]:
    """(activity, k-th run of it) -> (start, stop) rows."""
    seen: dict[int, int] = {}
    out = {}
    for start, stop, a in runs(letters):
        k = seen.get(a, 0)
        seen[a] = k + 1
        out[(int(a), k)] = (start, stop)
    return out


def on_grid(t: np.ndarray, x: np.ndarray, grid: np.ndarray,
            max_gap_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (T, C) sampled at times ``t`` (non-decreasing) interpolated at ``grid``; and the grid
    points lying in a gap longer than ``max_gap_s`` between two samples (flagged bad)."""
    keep = np.concatenate([[True], np.diff(t) > 0])  # repeated stamps: keep the first
    t, x = t[keep], x[keep]
    y = np.stack([np.interp(grid, t, c) for c in x.T], axis=1)
    hi = np.clip(np.searchsorted(t, grid), 1, len(t) - 1)
    bad = (t[hi] - t[hi - 1] > max_gap_s) if len(t) > 1 else np.zeros(len(grid), bool)
    return y, bad


def _session_windows(streams: dict[str, tuple[np.ndarray, np.ndarray]], names: list[str], *,
                     hz: float, window: int, step: int,
                     max_gap_s: float) -> tuple[np.ndarray, int]:
    """Windows (N, 3 * len(names), window) of one activity session: streams of one device share
    its clock (grid over their overlap); devices are aligned at their session starts."""
    devices = dict.fromkeys(n.split("_")[0] for n in names)
    span = {}
    for d in devices:
        ts = [streams[n][0] for n in names if n.startswith(d)]
        span[d] = (max(t[0] for t in ts), min(t[-1] for t in ts))
    n = min(int(np.floor((hi - lo) * hz)) + 1 if hi >= lo else 0 for lo, hi in span.values())
    if n < window:
        return np.empty((0, 3 * len(names), window), np.float32), 0
    cols, bads = [], np.zeros(n, bool)
    for name in names:
        t, x = streams[name]
        grid = span[name.split("_")[0]][0] + np.arange(n) / hz
        y, bad = on_grid(t, x, grid, max_gap_s)
        cols.append(y)
        bads |= bad
    return window_segment(np.concatenate(cols, axis=1), length=window, step=step, bad=bads)


def load_wisdm(*, path: str | Path, window: int = 128, step: int = 64, resample_hz: float = 20.0,
               max_gap_s: float = 1.0, modalities: Sequence[str] | None = None,
               test_subjects: Sequence[object] | None = None,
               test_fraction: float = 0.2) -> Dataset:
    """Windows of the 18 activities from the phone and watch accelerometer and gyroscope.

    Each stream is interpolated from its own timestamps onto a ``resample_hz`` grid (20 Hz is
    WISDM's nominal rate); streams of one device share its clock, the phone and the watch are
    aligned at the start of each activity. Windows touching a gap longer than ``max_gap_s`` are
    dropped (``meta["dropped_gap_windows"]``). accel in m/s^2, gyro in rad/s. A subject missing a
    stream is skipped (``meta["subjects_skipped"]``). Test subjects: ``test_subjects`` (one =
    leave-one-subject-out), else the last ``test_fraction`` of the sorted subject ids.
    """
    window, step = check_window(window, step)
    hz = check_number("resample_hz", resample_hz, minimum=1e-3)
    max_gap_s = check_number("max_gap_s", max_gap_s, minimum=1.0 / hz)
    test_fraction = check_fraction("test_fraction", test_fraction)
    names = pick_modalities(modalities, MODALITY_NAMES, "wisdm")
    raw = raw_dir(path)
    files = {n: stream_files(raw, n) for n in names}
    everyone_ids = sorted(set().union(*files.values()), key=int)
    complete = [s for s in everyone_ids if all(s in files[n] for n in names)]
    skipped = sorted(set(everyone_ids) - set(complete), key=int)
    if skipped:
        log.warning("wisdm: subjects %s lack a stream of %s; skipped", skipped, names)
    if not complete:
        raise DataError(f"no subject under {raw} has all of {', '.join(names)}; pass --data "
                        f"pointing at {_HINT} or choose fewer modalities.")
    parts: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    subjects: list[np.ndarray] = []
    dropped = 0
    for subject in complete:
        read = {n: read_stream(files[n][subject], subject, n) for n in names}
        sessions = {n: _sessions(read[n][0]) for n in names}
        for key in sorted(set.intersection(*(set(s) for s in sessions.values()))):
            streams = {n: (read[n][1][slice(*sessions[n][key])],
                           read[n][2][slice(*sessions[n][key])]) for n in names}
            w, n_bad = _session_windows(streams, names, hz=hz, window=window, step=step,
                                        max_gap_s=max_gap_s)
            dropped += n_bad
            parts.append(w)
            labels.append(np.full(len(w), CODES.index(string.ascii_uppercase[key[0]])))
            subjects.append(np.full(len(w), subject))
    x = concat_windows(parts, 3 * len(names), window)
    if len(x) == 0:
        raise DataError(f"no WISDM activity under {raw} gives a {window}-sample window at "
                        f"{hz:g} Hz on all of {', '.join(names)}; use a shorter window.")
    specs = tuple(ModalitySpec(n, tuple(f"{n}_{a}" for a in "xyz"), hz) for n in names)
    data = {n: x[:, 3 * i:3 * i + 3] for i, n in enumerate(names)}
    meta: dict[str, object] = {"source": str(path), "dataset": "wisdm", "resampled_to_hz": hz,
                               "dropped_gap_windows": dropped, "subjects_skipped": skipped}
    everyone = Windows(specs, data, np.concatenate(labels), np.concatenate(subjects), CLASSES, meta)
    present = sorted(set(everyone.subjects.tolist()), key=int)
    test = split_subjects(present, test_subjects=test_subjects, test_fraction=test_fraction)
    train_w, test_w = split_by_subject(everyone, test)
    log.info("wisdm: %d train / %d test windows, %d gap windows dropped, test subjects %s",
             len(train_w), len(test_w), dropped, test)
    return Dataset("wisdm", train_w, test_w)
