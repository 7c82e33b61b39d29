"""UCI HAR as published (``UCI HAR Dataset/{train,test}/Inertial Signals/*.txt``): body_acc, gyro
and total_acc windows (3 ch x 128 @ 50 Hz), 6 activities, the official subject split or your own;
a window whose sensor reads exactly 0 throughout is absent for that sensor.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crossl_edge.data.presence import finish
from crossl_edge.data.rawtext import missing_path, read_table, read_text
from crossl_edge.data.signal import pick_modalities, subject_list
from crossl_edge.data.windows import Dataset, ModalitySpec, Windows, split_by_subject
from crossl_edge.errors import DataError

log = logging.getLogger(__name__)

RAW_HZ = 50.0
WINDOW = 128
# our modality name -> the file prefix in Inertial Signals/
SIGNALS = {"body_acc": "body_acc", "gyro": "body_gyro", "total_acc": "total_acc"}
_HINT = "the unzipped 'UCI HAR Dataset' folder"


def dataset_dir(path: str | Path) -> Path:
    """The folder holding ``train/`` and ``test/``: ``path`` or ``path/UCI HAR Dataset``."""
    root = Path(path)
    for d in (root, root / "UCI HAR Dataset"):
        if all((d / s / "Inertial Signals").is_dir() for s in ("train", "test")):
            return d
    if root.is_file() or any(root.glob("*.zip")):
        raise missing_path(root, dataset="UCI HAR", hint=_HINT)
    raise DataError(f"no train/ and test/ 'Inertial Signals' folders under {root}; pass --data "
                    f"pointing at {_HINT}.")


def read_classes(root: Path) -> tuple[str, ...]:
    """Class names from ``activity_labels.txt`` (lines ``1 WALKING``; ids 1..K in order)."""
    file = root / "activity_labels.txt"
    if not file.is_file():
        raise DataError(f"{file} is missing; pass --data pointing at {_HINT}.")
    pairs = []
    for no, line in enumerate(read_text(file, dataset="UCI HAR").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{file}: line {no} is not '<id> <NAME>'; re-extract the archive.")
        pairs.append((int(parts[0]), parts[1]))
    if [i for i, _ in pairs] != list(range(1, len(pairs) + 1)):
        raise DataError(f"{file}: activity ids are not 1..{len(pairs)} in order; re-extract "
                        "the archive.")
    return tuple(name for _, name in pairs)


def _column(file: Path, n: int | None) -> np.ndarray:
    """A one-integer-per-line file (``y_*`` or ``subject_*``) with ``n`` rows."""
    if not file.is_file():
        raise DataError(f"{file} is missing; pass --data pointing at {_HINT}.")
    col = read_table(file, n_columns=1, dataset="UCI HAR")[:, 0]
    if not np.array_equal(col, np.round(col)):
        raise DataError(f"{file} holds non-integer values; re-extract the archive.")
    if n is not None and col.size != n:
        raise DataError(f"{file} has {col.size} rows but the signal files have {n}; the archive "
                        "is incomplete: re-extract it.")
    return col.astype(np.int64)


def read_split(root: Path, split: str, names: list[str], n_classes: int, *,
               strict: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray,
                                               dict[str, np.ndarray]]:
    """({modality: (N, 3, 128)}, labels 0..K-1, subjects, {modality: present (N,)}) of the
    ``train`` or ``test`` folder; a window reading exactly 0 on every axis is that sensor
    absent (a DataError when ``strict``)."""
    folder = root / split / "Inertial Signals"
    data: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    n = None
    for name in names:
        axes = []
        for axis in "xyz":
            file = folder / f"{SIGNALS[name]}_{axis}_{split}.txt"
            if not file.is_file():
                raise DataError(f"{file} is missing; pass --data pointing at {_HINT}.")
            x = read_table(file, n_columns=WINDOW, dataset="UCI HAR Inertial Signals")
            if n is not None and x.shape[0] != n:
                raise DataError(f"{file} has {x.shape[0]} rows, the other signal files {n}; the "
                                "archive is incomplete: re-extract it.")
            n = x.shape[0]
            axes.append(x)
        stack = np.stack(axes, axis=1)
        dead = ~np.any(stack != 0, axis=(1, 2))
        present[name] = ~dead
        if dead.any() and strict:
            raise DataError(f"{folder}/{SIGNALS[name]}_*_{split}.txt: sensor {name} reads exactly "
                            f"0 on every axis in {int(dead.sum())} window(s) (first: row "
                            f"{int(np.flatnonzero(dead)[0]) + 1}); it was stuck: re-extract "
                            "the archive or train without --strict-sensors.")
        data[name] = stack
    y = _column(root / split / f"y_{split}.txt", n)
    if y.min() < 1 or y.max() > n_classes:
        raise DataError(f"{root / split / f'y_{split}.txt'} holds labels outside 1..{n_classes} "
                        "(activity_labels.txt); re-extract the archive.")
    subjects = _column(root / split / f"subject_{split}.txt", n)
    return data, y - 1, subjects.astype(str), present


def load_uci_har(*, path: str | Path, modalities: Sequence[str] | None = None,
                 test_subjects: Sequence[object] | None = None,
                 strict_sensors: bool = False) -> Dataset:
    """The published windows: 128 samples at 50 Hz, 50% overlap, 6 classes from
    ``activity_labels.txt``. ``total_acc`` and ``body_acc`` are in g, ``gyro`` (the
    ``body_gyro`` files) in rad/s. By default the official split (21 train / 9 test subjects,
    disjoint); ``test_subjects`` (e.g. ``[9]`` for leave-one-subject-out) pools both folders
    and holds those subjects out instead. A window whose sensor reads exactly 0 on every axis
    has that sensor absent (``Windows.present``; ``strict_sensors`` refuses it instead).
    """
    names = pick_modalities(modalities, list(SIGNALS), "uci-har")
    root = dataset_dir(path)
    classes = read_classes(root)
    specs = tuple(ModalitySpec(n, tuple(f"{n}_{a}" for a in "xyz"), RAW_HZ) for n in names)
    meta = {"source": str(path), "dataset": "uci-har", "raw_hz": RAW_HZ}
    parts = []
    for s in ("train", "test"):
        data, y, who, present = read_split(root, s, names, len(classes), strict=strict_sensors)
        parts.append(finish("uci-har", Windows(specs, data, y, who, classes, dict(meta), present),
                            why={n: "reads exactly 0" for n in names}))
    wanted = subject_list(test_subjects)
    if wanted:
        everyone = Windows(specs, {n: np.concatenate([p.data[n] for p in parts]) for n in names},
                           np.concatenate([p.labels for p in parts]),
                           np.concatenate([p.subjects for p in parts]), classes, meta,
                           {n: np.concatenate([p.present[n] for p in parts]) for n in names})
        train, test = split_by_subject(everyone, wanted)
        train.meta["split"] = test.meta["split"] = f"test subjects {wanted}"
    else:
        train, test = parts
        shared = set(train.subjects.tolist()) & set(test.subjects.tolist())
        if shared:
            raise DataError(f"subjects {sorted(shared, key=int)} appear in both train/ and test/ "
                            f"under {root}; the official split is subject-disjoint: re-extract "
                            "the archive or pass test_subjects.")
        train.meta["split"] = test.meta["split"] = "official UCI HAR train/test"
    log.info("uci-har: %d train / %d test windows (%s)", len(train), len(test), train.meta["split"])
    return Dataset("uci-har", train, test)
