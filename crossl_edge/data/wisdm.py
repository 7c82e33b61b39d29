"""WISDM 2019 raw streams (``wisdm-dataset/raw/{phone,watch}/{accel,gyro}/data_<subject>_<sensor>
_<device>.txt``): one modality per device x sensor, each stream resampled from its own clock onto a
common grid, 18 activities (A-S, no N); a stream that is missing, stuck or has a gap is absent in
the windows it does not cover.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np

from crossl_edge.data.presence import finish, rows_mask
from crossl_edge.data.rawtext import (
    check_fraction,
    check_number,
    check_time,
    missing_path,
    read_table,
    split_subjects,
    stuck_stretches,
)
from crossl_edge.data.signal import (
    check_window,
    concat_windows,
    pick_modalities,
    runs,
    sliding_windows,
    window_flags,
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
    if root.is_file() or any(root.glob("*.zip")):
        raise missing_path(root, dataset="WISDM", hint=_HINT)
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


Stream = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def read_stream(file: Path, subject: str, name: str, *, strict: bool = False) -> Stream:
    """(activity letter index, time in s, xyz, rows stuck at 0) of one stream file, checked: one
    subject, known activities, time never going back within an activity; every row ends in
    ``;`` (a last row cut mid-number is dropped); a stuck sensor is refused when ``strict``."""
    arr = read_table(file, n_columns=6, dataset="WISDM raw", delimiter=",", strip=";",
                     codes={1: _LETTERS}, terminator=";")
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
    stuck = rows_mask(len(arr), stuck_stretches(xyz, file, sensor=name, hz=NOMINAL_HZ,
                                                strict=strict))
    return letters, arr[:, 2] * 1e-9, xyz, stuck


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


def _session_windows(streams: dict[str, Stream], names: list[str], *, hz: float, window: int,
                     step: int, max_gap_s: float,
                     strict: bool) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """Windows (N, 3 * len(names), window) of one activity session, each modality's presence
    per window, and the windows dropped (``strict`` only). ``streams`` holds the names this
    session has; the others are absent. Streams of one device share its clock (grid over their
    overlap); devices are aligned at their session starts."""
    have = [n for n in names if n in streams]
    devices = dict.fromkeys(n.split("_")[0] for n in have)
    span = {}
    for d in devices:
        ts = [streams[n][1] for n in have if n.startswith(d)]
        span[d] = (max(t[0] for t in ts), min(t[-1] for t in ts))
    n = min(int(np.floor((hi - lo) * hz)) + 1 if hi >= lo else 0 for lo, hi in span.values())
    if n < window:
        return np.empty((0, 3 * len(names), window), np.float32), {}, 0
    cols, bads = [], {}
    for name in names:
        if name not in streams:
            cols.append(np.zeros((n, 3)))
            bads[name] = np.ones(n, bool)
            continue
        _, t, x, stuck = streams[name]
        grid = span[name.split("_")[0]][0] + np.arange(n) / hz
        y, bad = on_grid(t, x, grid, max_gap_s)
        if stuck.any():
            bad |= np.interp(grid, t, stuck.astype(float)) > 0
        cols.append(y)
        bads[name] = bad
    w = sliding_windows(np.concatenate(cols, axis=1), length=window, step=step)
    present = {m: ~window_flags(b, n_samples=n, length=window, step=step)
               for m, b in bads.items()}
    if not strict:
        return w, present, 0
    ok = np.logical_and.reduce(list(present.values()))
    return w[ok], {m: p[ok] for m, p in present.items()}, int((~ok).sum())


def load_wisdm(*, path: str | Path, window: int = 128, step: int = 64, resample_hz: float = 20.0,
               max_gap_s: float = 1.0, modalities: Sequence[str] | None = None,
               test_subjects: Sequence[object] | None = None,
               test_fraction: float = 0.2, strict_sensors: bool = False) -> Dataset:
    """Windows of the 18 activities from the phone and watch accelerometer and gyroscope.

    Each stream is interpolated from its own timestamps onto a ``resample_hz`` grid (20 Hz is
    WISDM's nominal rate); streams of one device share its clock, the phone and the watch are
    aligned at the start of each activity. accel in m/s^2, gyro in rad/s. Every subject with at
    least one of ``modalities`` is kept: a stream missing for a subject or an activity, stuck at
    0 for 10 s, or with a gap longer than ``max_gap_s`` is absent in the windows it does not
    cover (``Windows.present``). ``strict_sensors`` keeps only complete data: subjects missing
    a stream are skipped (``meta["subjects_skipped"]``), gap windows dropped
    (``meta["dropped_gap_windows"]``), a stuck stream refused. Test subjects: ``test_subjects``
    (one = leave-one-subject-out), else the last ``test_fraction`` of the sorted subject ids.
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
    partial = sorted(set(everyone_ids) - set(complete), key=int)
    kept = complete if strict_sensors else everyone_ids
    skipped = partial if strict_sensors else []
    for n in names:
        lacking = [s for s in partial if s not in files[n]]
        if lacking:
            log.warning("wisdm: subjects %s have no %s file (a partial download?); %s", lacking,
                        n, "skipped" if strict_sensors else f"{n} absent in their windows")
    if not kept:
        which = "all" if strict_sensors else "any"
        raise DataError(f"no subject under {raw} has {which} of {', '.join(names)}; pass --data "
                        f"pointing at {_HINT} or choose fewer modalities.")
    parts: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    subjects: list[np.ndarray] = []
    present: dict[str, list[np.ndarray]] = {n: [] for n in names}
    dropped = 0
    for subject in kept:
        read = {n: read_stream(files[n][subject], subject, n, strict=strict_sensors)
                for n in names if subject in files[n]}
        sessions = {n: _sessions(read[n][0]) for n in read}
        keys = [set(s) for s in sessions.values()]
        for key in sorted(set.intersection(*keys) if strict_sensors else set.union(*keys)):
            # one session's rows of each of a Stream's four arrays: still a Stream
            streams = {n: cast(Stream, tuple(a[slice(*sessions[n][key])] for a in read[n]))
                       for n in read if key in sessions[n]}
            w, ok, n_bad = _session_windows(streams, names, hz=hz, window=window, step=step,
                                            max_gap_s=max_gap_s, strict=strict_sensors)
            dropped += n_bad
            if not len(w):
                continue
            parts.append(w)
            labels.append(np.full(len(w), CODES.index(string.ascii_uppercase[key[0]])))
            subjects.append(np.full(len(w), subject))
            for n in names:
                present[n].append(ok[n])
    x = concat_windows(parts, 3 * len(names), window)
    if len(x) == 0:
        raise DataError(f"no WISDM activity under {raw} gives a {window}-sample window at "
                        f"{hz:g} Hz on all of {', '.join(names)}; use a shorter window.")
    specs = tuple(ModalitySpec(n, tuple(f"{n}_{a}" for a in "xyz"), hz) for n in names)
    data = {n: x[:, 3 * i:3 * i + 3] for i, n in enumerate(names)}
    meta: dict[str, object] = {"source": str(path), "dataset": "wisdm", "resampled_to_hz": hz,
                               "dropped_gap_windows": dropped, "subjects_skipped": skipped}
    everyone = Windows(specs, data, np.concatenate(labels), np.concatenate(subjects), CLASSES, meta,
                       {n: np.concatenate(p) for n, p in present.items()})
    everyone = finish("wisdm", everyone, why={n: "its file or session missing, stuck at 0, or "
                                              f"a gap over {max_gap_s:g} s" for n in names})
    who = sorted(set(everyone.subjects.tolist()), key=int)
    test = split_subjects(who, test_subjects=test_subjects, test_fraction=test_fraction)
    train_w, test_w = split_by_subject(everyone, test)
    log.info("wisdm: %d train / %d test windows from %d subjects, %d gap windows dropped, test "
             "subjects %s", len(train_w), len(test_w), len(who), dropped, test)
    return Dataset("wisdm", train_w, test_w)
