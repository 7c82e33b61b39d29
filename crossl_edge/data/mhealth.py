"""MHEALTH (``mHealth_subjectN.log``: 23 signal columns + label, 50 Hz): chest acc, ECG, ankle and
arm acc/gyro(/mag) windows of the 12 activities, null class 0 dropped; a stuck sensor is absent in
the windows it touches.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crossl_edge.data.presence import finish, rows_mask
from crossl_edge.data.rawtext import (
    check_fraction,
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
)
from crossl_edge.data.windows import Dataset, ModalitySpec, Windows, split_by_subject
from crossl_edge.errors import DataError

log = logging.getLogger(__name__)

RAW_HZ = 50.0
N_COLUMNS = 24  # 23 signals + the label
CLASSES = ("standing_still", "sitting_relaxing", "lying_down", "walking", "climbing_stairs",
           "waist_bends_forward", "frontal_elevation_arms", "knees_bending", "cycling", "jogging",
           "running", "jump_front_back")  # labels 1..12; 0 = null, dropped
# modality -> (first 0-based column, channel names)
SENSORS: dict[str, tuple[int, tuple[str, ...]]] = {
    "chest_acc": (0, ("x", "y", "z")),
    "ecg": (3, ("lead1", "lead2")),
    "ankle_acc": (5, ("x", "y", "z")),
    "ankle_gyro": (8, ("x", "y", "z")),
    "ankle_mag": (11, ("x", "y", "z")),
    "arm_acc": (14, ("x", "y", "z")),
    "arm_gyro": (17, ("x", "y", "z")),
    "arm_mag": (20, ("x", "y", "z")),
}
DEFAULT_MODALITIES = ("chest_acc", "ecg", "ankle_acc", "ankle_gyro", "arm_acc", "arm_gyro")
_LABEL = 23
_HINT = "the unzipped MHEALTHDATASET folder"


def subject_files(path: str | Path) -> dict[str, Path]:
    """subject -> ``mHealth_subject<N>.log``, in subject order."""
    files = find_files(path, r"mHealth_subject\d+\.log", dataset="MHEALTH",
                       where=("MHEALTHDATASET",), hint=_HINT)
    found = {re.sub(r"\D", "", f.stem): f for f in files}
    return dict(sorted(found.items(), key=lambda kv: int(kv[0])))


def load_mhealth(*, path: str | Path, window: int = 128, step: int = 64,
                 modalities: Sequence[str] | None = DEFAULT_MODALITIES,
                 test_subjects: Sequence[object] | None = None,
                 test_fraction: float = 0.2, strict_sensors: bool = False) -> Dataset:
    """Windows inside each run of one activity (label 0 dropped), 50 Hz. A sensor reading exactly
    0 on every channel for 10 s or more is absent in the windows touching that stretch
    (``strict_sensors`` refuses it instead).

    Modalities: ``chest_acc``, ``ecg`` (2 leads, mV), ``ankle_acc``/``ankle_gyro``/``ankle_mag``,
    ``arm_acc``/``arm_gyro``/``arm_mag``; the magnetometers only when asked for. Test subjects:
    ``test_subjects`` (one = leave-one-subject-out), else the last ``test_fraction`` of them.
    """
    window, step = check_window(window, step)
    test_fraction = check_fraction("test_fraction", test_fraction)
    names = pick_modalities(modalities, list(SENSORS), "mhealth")
    cols = [c for n in names for c in range(SENSORS[n][0], SENSORS[n][0] + len(SENSORS[n][1]))]
    parts: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    subjects: list[np.ndarray] = []
    present: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for subject, file in subject_files(path).items():
        arr = read_table(file, n_columns=N_COLUMNS, dataset="MHEALTH .log")
        label = arr[:, _LABEL]
        if not np.isin(label, np.arange(len(CLASSES) + 1)).all():
            row = int(np.flatnonzero(~np.isin(label, np.arange(len(CLASSES) + 1)))[0])
            raise DataError(f"{file}: row {row + 1} has label {label[row]:g}, outside 0..12; it "
                            "is not a raw MHEALTH file.")
        used = label != 0
        stuck = {}
        for n in names:
            first, chans = SENSORS[n]
            stuck[n] = rows_mask(len(arr), stuck_stretches(
                arr[:, first:first + len(chans)], file, sensor=n, hz=RAW_HZ, used=used,
                strict=strict_sensors))
        w, y, ok = labelled_windows(arr[:, cols], label, length=window, step=step,
                                    classes={i + 1: i for i in range(len(CLASSES))}, bad=stuck)
        parts.append(w)
        labels.append(y)
        subjects.append(np.full(len(w), subject))
        for n in names:
            present[n].append(ok[n])
    x = concat_windows(parts, len(cols), window)
    if len(x) == 0:
        raise DataError(f"no MHEALTH activity run under {path} is {window} samples long; use a "
                        "shorter window.")
    bounds = np.cumsum([0, *(len(SENSORS[n][1]) for n in names)])
    data = {n: x[:, bounds[i]:bounds[i + 1]] for i, n in enumerate(names)}
    specs = tuple(ModalitySpec(n, tuple(f"{n}_{c}" for c in SENSORS[n][1]), RAW_HZ)
                  for n in names)
    meta: dict[str, object] = {"source": str(path), "dataset": "mhealth", "raw_hz": RAW_HZ}
    everyone = Windows(specs, data, np.concatenate(labels), np.concatenate(subjects), CLASSES, meta,
                       {n: np.concatenate(p) for n, p in present.items()})
    everyone = finish("mhealth", everyone, why={n: "stuck at 0" for n in names})
    who = sorted(set(everyone.subjects.tolist()), key=int)
    test = split_subjects(who, test_subjects=test_subjects, test_fraction=test_fraction)
    train_w, test_w = split_by_subject(everyone, test)
    log.info("mhealth: %d train / %d test windows, test subjects %s", len(train_w), len(test_w),
             test)
    return Dataset("mhealth", train_w, test_w)
