"""Daphnet freezing of gait (``dataset_fog_release/dataset/SxxRyy.txt``: time ms, ankle/thigh/trunk
acc, annotation; 64 Hz): windows labelled no-freeze / freeze, annotation 0 dropped; a stuck sensor
is absent in the windows it touches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crossl_edge.data.presence import finish, rows_mask
from crossl_edge.data.rawtext import (
    check_fraction,
    check_time,
    find_files,
    read_table,
    split_subjects,
    stuck_stretches,
)
from crossl_edge.data.signal import (
    check_window,
    concat_windows,
    labelled_windows,
    pick_modalities,
    subject_list,
)
from crossl_edge.data.windows import Dataset, ModalitySpec, Windows, split_by_subject
from crossl_edge.errors import DataError

log = logging.getLogger(__name__)

RAW_HZ = 64.0
N_COLUMNS = 11
CLASSES = ("no_freeze", "freeze")  # annotations 1 and 2; 0 = outside the experiment, dropped
SENSORS = {"ankle_acc": 1, "thigh_acc": 4, "trunk_acc": 7}  # first 0-based column of each
AXES = ("fwd", "vert", "lat")  # horizontal forward, vertical, horizontal lateral (mg)
_MAX_STEP_MS = 3 * 1000 / RAW_HZ  # a larger time step starts a new segment
_HINT = "the unzipped dataset_fog_release folder (or its dataset/ folder)"


def recording_files(path: str | Path, *, strict: bool = False) -> list[tuple[str, Path]]:
    """(subject ``Sxx``, ``SxxRyy.txt``) pairs sorted by subject and run. Runs missing before
    a subject's last one (a partial download) are logged, or refused when ``strict``."""
    files = find_files(path, r"S\d\dR\d\d\.txt", dataset="Daphnet", hint=_HINT,
                       where=("dataset", "dataset_fog_release/dataset"))
    runs_of: dict[str, set[int]] = {}
    for f in files:
        runs_of.setdefault(f.name[:3], set()).add(int(f.name[4:6]))
    missing = [f"{s}R{r:02d}" for s, got in runs_of.items() for r in range(1, max(got))
               if r not in got]
    if missing:
        where = files[0].parent
        if strict:
            raise DataError(f"{where} lacks {', '.join(missing)} although later runs of those "
                            "subjects are there (a partial download?); extract the whole "
                            "archive or train without --strict-sensors.")
        log.warning("daphnet: %s lacks %s although later runs of those subjects are there (a "
                    "partial download?); loading the runs that are present", where,
                    ", ".join(missing))
    return [(f.name[:3], f) for f in files]


def subject_id(value: object) -> str:
    """``1``, ``"1"``, ``"S1"`` and ``"S01"`` all name Daphnet subject ``"S01"``."""
    s = str(value).strip().upper().lstrip("S")
    return f"S{int(s):02d}" if s.isdigit() else str(value)


def read_recording(file: Path, names: list[str], *, strict: bool = False,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(signals of ``names`` (T, 3 * k), annotation (T,), segment breaks (T,), rows where each
    sensor was stuck at 0 (T,)), checked; a stuck sensor is a DataError when ``strict``."""
    arr = read_table(file, n_columns=N_COLUMNS, dataset="Daphnet")
    check_time(arr[:, 0], file, unit="ms")
    label = arr[:, 10]
    if not np.isin(label, (0, 1, 2)).all():
        row = int(np.flatnonzero(~np.isin(label, (0, 1, 2)))[0])
        raise DataError(f"{file}: row {row + 1} has annotation {label[row]:g}, not 0, 1 or 2; it "
                        "is not a raw Daphnet file.")
    used = label != 0
    stuck = {n: rows_mask(len(arr), stuck_stretches(arr[:, SENSORS[n]:SENSORS[n] + 3], file,
                                                    sensor=n, hz=RAW_HZ, used=used,
                                                    strict=strict))
             for n in names}
    breaks = np.concatenate([[False], np.diff(arr[:, 0]) > _MAX_STEP_MS])
    cols = [c for n in names for c in range(SENSORS[n], SENSORS[n] + 3)]
    return arr[:, cols], label, breaks, stuck


def load_daphnet(*, path: str | Path, window: int = 128, step: int = 64,
                 modalities: Sequence[str] | None = None,
                 test_subjects: Sequence[object] | None = None,
                 test_fraction: float = 0.2, strict_sensors: bool = False) -> Dataset:
    """Windows inside each run of one annotation (1 no freeze, 2 freeze) at 64 Hz, never across
    a time gap; ankle, thigh and trunk accelerometers in mg. Runs of one subject (``S01R01``,
    ``S01R02``) are that subject's. A sensor reading exactly 0 on every axis for 10 s or more
    (stuck or disconnected) is absent in the windows touching that stretch
    (``Windows.present``; ``strict_sensors`` refuses it instead). Test subjects:
    ``test_subjects`` (``1``/``S01``; one = leave-one-subject-out), else the last
    ``test_fraction`` of the subjects.
    """
    window, step = check_window(window, step)
    test_fraction = check_fraction("test_fraction", test_fraction)
    names = pick_modalities(modalities, list(SENSORS), "daphnet")
    parts: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    subjects: list[np.ndarray] = []
    present: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for subject, file in recording_files(path, strict=strict_sensors):
        x, label, breaks, stuck = read_recording(file, names, strict=strict_sensors)
        w, y, ok = labelled_windows(x, label, length=window, step=step, classes={1: 0, 2: 1},
                                    breaks=breaks, bad=stuck)
        parts.append(w)
        labels.append(y)
        subjects.append(np.full(len(w), subject))
        for n in names:
            present[n].append(ok[n])
    x = concat_windows(parts, 3 * len(names), window)
    if len(x) == 0:
        raise DataError(f"no annotated Daphnet run under {path} is {window} samples long; use a "
                        "shorter window.")
    data = {n: x[:, 3 * i:3 * i + 3] for i, n in enumerate(names)}
    specs = tuple(ModalitySpec(n, tuple(f"{n}_{a}" for a in AXES), RAW_HZ) for n in names)
    meta: dict[str, object] = {"source": str(path), "dataset": "daphnet", "raw_hz": RAW_HZ}
    everyone = Windows(specs, data, np.concatenate(labels), np.concatenate(subjects), CLASSES, meta,
                       {n: np.concatenate(p) for n, p in present.items()})
    everyone = finish("daphnet", everyone, why={n: "stuck at 0" for n in names})
    who = sorted(set(everyone.subjects.tolist()))
    wanted = subject_list(test_subjects)
    test = split_subjects(who, test_subjects=[subject_id(s) for s in wanted or []],
                          test_fraction=test_fraction)
    train_w, test_w = split_by_subject(everyone, test)
    log.info("daphnet: %d train / %d test windows, test subjects %s", len(train_w), len(test_w),
             test)
    return Dataset("daphnet", train_w, test_w)
