"""UCI HAPT raw recordings (``RawData/acc_expXX_userYY.txt``, ``gyro_...``, ``labels.txt``),
filtered and windowed as UCI HAR: 50 Hz, 2.56 s windows, 50% overlap, median + 20 Hz Butterworth,
optional body/gravity split and postural transitions; a stuck or missing sensor file is absent.
"""

from __future__ import annotations

import logging
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
    pick_modalities,
    window_flags,
    window_segment,
)
from crossl_edge.data.windows import Dataset, ModalitySpec, Windows, split_by_subject
from crossl_edge.errors import DataError, UsageError

log = logging.getLogger(__name__)

RAW_HZ = 50.0
CLASSES = ("WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING",
           "STAND_TO_SIT", "SIT_TO_STAND", "SIT_TO_LIE", "LIE_TO_SIT", "STAND_TO_LIE",
           "LIE_TO_STAND")  # HAPT activity ids 1..12; 7..12 are the postural transitions
OFFICIAL_TEST_USERS = ("2", "4", "9", "10", "12", "13", "18", "20", "24")  # UCI HAR's test split
NOISE_CUTOFF_HZ = 20.0
GRAVITY_CUTOFF_HZ = 0.3
_HINT = "the HAPT RawData folder (or the folder above it)"
SETTLE_S = 1.0  # after a stuck stretch the filters settle this long: absent there too
SOURCE = {"body_acc": "acc", "total_acc": "acc", "gyro": "gyro"}  # modality -> raw file


def raw_dir(path: str | Path) -> Path:
    """The folder holding ``labels.txt`` and the per-experiment files."""
    files = find_files(path, r"labels\.txt", dataset="HAPT", where=("RawData",
                       "HAPT Dataset/RawData", "HAPT Data Set/RawData"), hint=_HINT)
    return files[0].parent


def read_labels(file: Path) -> np.ndarray:
    """``labels.txt`` rows (experiment, user, activity, start, end), checked: 1-based inclusive
    sample ranges, increasing and non-overlapping within an experiment."""
    lab = read_table(file, n_columns=5, dataset="HAPT labels.txt")
    if not np.array_equal(lab, np.round(lab)) or (lab < 1).any():
        raise DataError(f"{file} holds values that are not positive integers; re-extract it.")
    lab = lab.astype(np.int64)
    bad = np.flatnonzero((lab[:, 2] > len(CLASSES)) | (lab[:, 4] < lab[:, 3]))
    if bad.size:
        raise DataError(f"{file}: row {bad[0] + 1} has an unknown activity or ends before it "
                        "starts; re-extract it.")
    same = lab[1:, 0] == lab[:-1, 0]
    back = np.flatnonzero(same & (lab[1:, 3] < lab[:-1, 4]))
    if back.size:
        raise DataError(f"{file}: row {back[0] + 2} starts at sample {lab[back[0] + 1, 3]}, before "
                        f"the previous segment of experiment {lab[back[0], 0]} ends; the rows are "
                        "out of order or overlap: restore the original file.")
    return lab


def preprocess(total: np.ndarray, gyro: np.ndarray) -> dict[str, np.ndarray]:
    """UCI's filtering over a whole experiment: 3-point median, then a causal 3rd-order 20 Hz
    Butterworth low-pass on acc and gyro; gravity = 3rd-order 0.3 Hz Butterworth of total acc,
    body acc = total - gravity."""
    try:
        from scipy.signal import butter, lfilter, medfilt
    except ImportError as e:
        raise UsageError("the hapt loader filters with scipy, which is not installed; run "
                         "pip install 'crossl-edge[data]'.") from e

    def clean(x: np.ndarray) -> np.ndarray:
        med = np.stack([medfilt(c, 3) for c in x.T], axis=1)
        b, a = butter(3, NOISE_CUTOFF_HZ, fs=RAW_HZ)
        return lfilter(b, a, med, axis=0)

    total_f, gyro_f = clean(total), clean(gyro)
    b, a = butter(3, GRAVITY_CUTOFF_HZ, fs=RAW_HZ)
    gravity = lfilter(b, a, total_f, axis=0)
    return {"total_acc": total_f, "gyro": gyro_f, "body_acc": total_f - gravity}


def _experiment(folder: Path, exp: int, user: int, *, strict: bool,
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    """{"acc", "gyro"}: (T, 3) signals and the rows where each is absent (stuck at 0, or its file
    missing: zeros, absent throughout, logged; refused when ``strict``). None when both files
    are missing."""
    files = {s: folder / f"{s}_exp{exp:02d}_user{user:02d}.txt" for s in ("acc", "gyro")}
    lost = [f for f in files.values() if not f.is_file()]
    if lost and (strict or len(lost) == 2):
        names = " and ".join(f.name for f in lost)
        msg = (f"{folder}: {names} missing but labels.txt names experiment {exp} of user {user} "
               "(a partial download?)")
        if strict:
            raise DataError(f"{msg}; re-extract the HAPT archive or train without "
                            "--strict-sensors.")
        log.warning("hapt: %s; experiment skipped", msg)
        return None
    x: dict[str, np.ndarray] = {}
    bad: dict[str, np.ndarray] = {}
    for sensor, file in files.items():
        if file.is_file():
            x[sensor] = read_table(file, n_columns=3, dataset="HAPT RawData")
            found = stuck_stretches(x[sensor], file, sensor=sensor, hz=RAW_HZ, strict=strict)
            settle = int(SETTLE_S * RAW_HZ)
            bad[sensor] = rows_mask(len(x[sensor]), [(a, b + settle) for a, b in found])
    for sensor, file in files.items():
        if file in lost:
            log.warning("hapt: %s is missing but labels.txt names experiment %d of user %d (a "
                        "partial download?); its modalities are absent there", file, exp, user)
            other = next(iter(x.values()))
            x[sensor] = np.zeros_like(other)
            bad[sensor] = np.ones(len(other), bool)
    if x["acc"].shape[0] != x["gyro"].shape[0]:
        raise DataError(f"{files['acc']} has {x['acc'].shape[0]} rows but the gyro file "
                        f"{x['gyro'].shape[0]}; re-extract the HAPT archive.")
    return x, bad


def load_hapt(*, path: str | Path, window: int = 128, step: int = 64, transitions: bool = False,
              gravity_split: bool = True, modalities: Sequence[str] | None = None,
              test_subjects: Sequence[object] | None = None,
              test_fraction: float = 0.3, strict_sensors: bool = False) -> Dataset:
    """Windows inside each ``labels.txt`` segment (never across one), label = its activity; the
    segment is cut one sample earlier than labels.txt's 1-based start, as UCI HAR's published
    windows are.

    ``gravity_split`` gives ``body_acc``, ``gyro`` and ``total_acc`` (as UCI HAR); without it
    ``total_acc`` and ``gyro``. ``transitions`` keeps the 6 postural transitions (12 classes).
    acc in g, gyro in rad/s. The default split is UCI HAR's (test users 2, 4, 9, 10, 12, 13,
    18, 20, 24) where they are present, else the last ``test_fraction`` of the subjects;
    ``test_subjects`` overrides it (one subject = leave-one-subject-out). A sensor stuck at 0
    for 10 s or more, or a file missing from an experiment labels.txt names, is absent in the
    windows it touches (``strict_sensors`` refuses either instead).
    """
    window, step = check_window(window, step)
    test_fraction = check_fraction("test_fraction", test_fraction)
    known = ["body_acc", "gyro", "total_acc"] if gravity_split else ["total_acc", "gyro"]
    names = pick_modalities(modalities, known, "hapt")
    classes = CLASSES if transitions else CLASSES[:6]
    folder = raw_dir(path)
    labels_file = folder / "labels.txt"
    lab = read_labels(labels_file)
    parts: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    subjects: list[np.ndarray] = []
    present: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for exp, user in dict.fromkeys(map(tuple, lab[:, :2].tolist())):
        got = _experiment(folder, exp, user, strict=strict_sensors)
        if got is None:
            continue
        raw, bad = got
        signals = preprocess(raw["acc"], raw["gyro"])
        stream = np.concatenate([signals[n] for n in names], axis=1)
        for _, _, activity, start, end in lab[(lab[:, 0] == exp) & (lab[:, 1] == user)]:
            if end > stream.shape[0]:
                raise DataError(f"{labels_file}: experiment {exp} ends at sample {end} but its "
                                f"files hold {stream.shape[0]}; the files do not belong together.")
            if activity > len(classes):
                continue
            lo, hi = max(start - 2, 0), end - 1  # UCI HAR's windows start one sample earlier
            w, _ = window_segment(stream[lo:hi], length=window, step=step)
            parts.append(w)
            labels.append(np.full(len(w), activity - 1))
            subjects.append(np.full(len(w), str(user)))
            for n in names:
                present[n].append(~window_flags(bad[SOURCE[n]][lo:hi], n_samples=hi - lo,
                                                length=window, step=step))
    x = concat_windows(parts, 3 * len(names), window)
    if len(x) == 0:
        raise DataError(f"no labelled HAPT segment under {folder} is {window} samples long; use "
                        "a shorter window.")
    data = {n: x[:, 3 * i:3 * i + 3] for i, n in enumerate(names)}
    specs = tuple(ModalitySpec(n, tuple(f"{n}_{a}" for a in "xyz"), RAW_HZ) for n in names)
    meta: dict[str, object] = {"source": str(path), "dataset": "hapt", "raw_hz": RAW_HZ,
                               "preprocessing": "median3 + Butterworth(3, 20 Hz) causal; gravity "
                               "= Butterworth(3, 0.3 Hz) causal of total_acc"}
    everyone = Windows(specs, data, np.concatenate(labels), np.concatenate(subjects), classes, meta,
                       {n: np.concatenate(p) for n, p in present.items()})
    everyone = finish("hapt", everyone, why={n: f"{SOURCE[n]} stuck at 0 or its file missing"
                                             for n in names})
    who = sorted(set(everyone.subjects.tolist()), key=int)
    test = split_subjects(who, test_subjects=test_subjects, test_fraction=test_fraction,
                          default=OFFICIAL_TEST_USERS)
    train_w, test_w = split_by_subject(everyone, test)
    log.info("hapt: %d train / %d test windows, test subjects %s", len(train_w), len(test_w), test)
    return Dataset("hapt", train_w, test_w)
