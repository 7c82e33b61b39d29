"""Writers of tiny synthetic files in the published layouts of UCI HAR, UCI HAPT raw, WISDM 2019
raw, MHEALTH and Daphnet, for the loader tests (nothing downloaded or committed; each builds in ms).

Signals encode where they came from: a sensor's value is ``label + 0.1 * sensor + 0.01 * axis``
plus small noise, so a test can tell a window's label and modality from its samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------- UCI HAR

UCI_HAR_LABELS = ("WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING",
                  "LAYING")
UCI_HAR_SIGNALS = ("body_acc", "body_gyro", "total_acc")


def write_uci_har(root: Path, splits: dict[str, dict[int, Sequence[tuple[int, int]]]], *,
                  seed: int = 0) -> Path:
    """``root/UCI HAR Dataset`` with ``splits[split][subject] = [(activity id, windows)]``."""
    rng = np.random.default_rng(seed)
    base = root / "UCI HAR Dataset"
    base.mkdir(parents=True, exist_ok=True)
    (base / "activity_labels.txt").write_text(
        "".join(f"{i} {name}\n" for i, name in enumerate(UCI_HAR_LABELS, 1)))
    for split, subjects in splits.items():
        y = np.array([a for rows in subjects.values() for a, n in rows for _ in range(n)])
        who = np.array([s for s, rows in subjects.items() for _, n in rows for _ in range(n)])
        folder = base / split / "Inertial Signals"
        folder.mkdir(parents=True, exist_ok=True)
        for k, sig in enumerate(UCI_HAR_SIGNALS):
            for j, axis in enumerate("xyz"):
                x = y[:, None] + 0.1 * k + 0.01 * j + rng.normal(0, 1e-4, (y.size, 128))
                np.savetxt(folder / f"{sig}_{axis}_{split}.txt", x, fmt="%15.7e", delimiter="")
        np.savetxt(base / split / f"y_{split}.txt", y, fmt="%d")
        np.savetxt(base / split / f"subject_{split}.txt", who, fmt="%d")
    return base


# --------------------------------------------------------------------------- UCI HAPT

def hapt_experiment(segments: Sequence[tuple[int, int]], *, lead: int = 500, gap: int = 100,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int]]]:
    """(acc (T, 3) in g, gyro (T, 3), [(activity, start, end)] 1-based inclusive) of one
    experiment: ``lead`` unlabelled samples, then each (activity, samples) segment followed by
    ``gap`` unlabelled samples. acc x holds 1 g of gravity plus a 2 Hz sway; acc y and z and the
    gyro hold ``0.01 * activity`` (+ axis) plus noise."""
    rng = np.random.default_rng(seed)
    n = lead + sum(r + gap for _, r in segments)
    level = np.zeros(n)
    rows, at = [], lead
    for activity, r in segments:
        level[at:at + r] = activity
        rows.append((activity, at + 1, at + r))
        at += r + gap
    t = np.arange(n) / 50.0
    acc = np.stack([1.0 + 0.05 * np.sin(2 * np.pi * 2 * t), 0.01 * level + 0.2,
                    0.01 * level + 0.3], axis=1) + rng.normal(0, 1e-4, (n, 3))
    gyro = 0.01 * level[:, None] + 0.001 * np.arange(3) + rng.normal(0, 1e-4, (n, 3))
    return acc, gyro, rows


def write_hapt(root: Path, experiments: dict[tuple[int, int], tuple[np.ndarray, np.ndarray,
               list[tuple[int, int, int]]]]) -> Path:
    """``root/HAPT Dataset/RawData`` with one acc/gyro file pair per (experiment, user) and
    ``labels.txt``; returns the RawData folder."""
    raw = root / "HAPT Dataset" / "RawData"
    raw.mkdir(parents=True, exist_ok=True)
    labels = []
    for (exp, user), (acc, gyro, rows) in experiments.items():
        np.savetxt(raw / f"acc_exp{exp:02d}_user{user:02d}.txt", acc, fmt="%.17g")
        np.savetxt(raw / f"gyro_exp{exp:02d}_user{user:02d}.txt", gyro, fmt="%.17g")
        labels += [(exp, user, a, s, e) for a, s, e in rows]
    np.savetxt(raw / "labels.txt", np.array(labels), fmt="%d")
    return raw


# --------------------------------------------------------------------------- WISDM 2019

WISDM_STREAMS = {("phone", "accel"): 0, ("phone", "gyro"): 1, ("watch", "accel"): 2,
                 ("watch", "gyro"): 3}


def wisdm_lines(subject: int, sessions: Sequence[tuple[str, float]], *, sensor: int, t0_ns: int,
                hz: float = 20.0, seed: int = 0) -> list[str]:
    """Lines ``subject,code,timestamp_ns,x,y,z;`` of one stream: ``sessions`` = [(activity
    letter, seconds)], back to back on this stream's own clock (starting at ``t0_ns``, jittered
    ``hz`` sampling). x = seconds since the session started; y = letter index + 0.1 * sensor."""
    rng = np.random.default_rng(seed)
    out, t = [], float(t0_ns)
    for code, seconds in sessions:
        n = int(seconds * hz)
        stamps = t + (np.arange(n) + rng.uniform(-0.2, 0.2, n)) * 1e9 / hz
        since = (stamps - stamps[0]) * 1e-9
        level = ord(code) - ord("A") + 0.1 * sensor
        for ts, s in zip(stamps, since, strict=True):
            y, z = level + rng.normal(0, 1e-4), 9.8 + rng.normal(0, 1e-3)
            out.append(f"{subject},{code},{int(ts)},{s + 1e-3:.6f},{y:.6f},{z:.6f};")
        t = stamps[-1] + 30e9  # the next activity starts 30 s later on this clock
    return out


def write_wisdm_stream(root: Path, subject: int, device: str, sensor: str,
                       lines: Sequence[str]) -> Path:
    folder = root / "wisdm-dataset" / "raw" / device / sensor
    path = folder / f"data_{subject}_{sensor}_{device}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_wisdm(root: Path, subjects: dict[int, Sequence[tuple[str, float]]], *,
                rates: dict[tuple[str, str], float] | None = None) -> Path:
    """All four streams per subject; the phone and the watch clocks start far apart, and
    ``rates`` may give a stream its own sampling rate. Returns the wisdm-dataset folder."""
    for subject, sessions in subjects.items():
        for (device, sensor), k in WISDM_STREAMS.items():
            t0 = (10**14 if device == "phone" else 7 * 10**13) + subject * 10**9
            hz = (rates or {}).get((device, sensor), 20.0)
            lines = wisdm_lines(subject, sessions, sensor=k, t0_ns=t0, hz=hz, seed=subject + k)
            write_wisdm_stream(root, subject, device, sensor, lines)
    return root / "wisdm-dataset"


# --------------------------------------------------------------------------- MHEALTH

def mhealth_rows(segments: Sequence[tuple[int, int]], *, seed: int = 0) -> np.ndarray:
    """(T, 24): ``segments`` = [(label, rows)]; column c of the 23 signals = label + 0.01 * c."""
    rng = np.random.default_rng(seed)
    label = np.repeat([a for a, _ in segments], [r for _, r in segments]).astype(float)
    sig = label[:, None] + 0.01 * np.arange(1, 24) + rng.normal(0, 1e-4, (label.size, 23))
    return np.column_stack([sig, label])


def write_mhealth(root: Path, subjects: dict[int, np.ndarray]) -> Path:
    """``root/MHEALTHDATASET/mHealth_subject<N>.log`` (tab-separated); returns the folder."""
    base = root / "MHEALTHDATASET"
    base.mkdir(parents=True, exist_ok=True)
    for sid, rows in subjects.items():
        np.savetxt(base / f"mHealth_subject{sid}.log", rows, fmt="%.6g", delimiter="\t")
    return base


# --------------------------------------------------------------------------- Daphnet

def daphnet_rows(segments: Sequence[tuple[int, int]], *, seed: int = 0,
                 t0_ms: int = 15) -> np.ndarray:
    """(T, 11) integer rows: time ms at 64 Hz, 9 acc columns = 1000 * annotation + 10 * column
    (mg, plus noise), annotation; ``segments`` = [(annotation, rows)]."""
    rng = np.random.default_rng(seed)
    label = np.repeat([a for a, _ in segments], [r for _, r in segments])
    n = label.size
    time = t0_ms + np.round(np.arange(n) * 1000 / 64)
    acc = 1000 * label[:, None] + 10 * np.arange(1, 10) + rng.integers(-2, 3, (n, 9)) + 5
    return np.column_stack([time, acc, label]).astype(np.int64)


def write_daphnet(root: Path, recordings: dict[str, np.ndarray]) -> Path:
    """``root/dataset_fog_release/dataset/<SxxRyy>.txt``; returns the dataset folder."""
    base = root / "dataset_fog_release" / "dataset"
    base.mkdir(parents=True, exist_ok=True)
    for name, rows in recordings.items():
        np.savetxt(base / f"{name}.txt", rows, fmt="%d")
    return base


# --------------------------------------------------------------------------- malformed files
# Each writes one broken file among good ones under ``root`` and returns (the broken file or
# folder, words its error must contain).

UCI_SPLITS = {"train": {1: [(1, 3), (4, 2)], 3: [(2, 2)]}, "test": {2: [(6, 2), (1, 1)]}}


def _uci_short_row(root: Path) -> tuple[Path, str]:
    f = write_uci_har(root, UCI_SPLITS) / "train" / "Inertial Signals" / "body_gyro_y_train.txt"
    lines = f.read_text().splitlines()
    lines[2] = lines[2][:-15]
    f.write_text("\n".join(lines) + "\n")
    return f, "127 columns at line 3, expected 128"


def _uci_stuck(root: Path) -> tuple[Path, str]:
    base = write_uci_har(root, UCI_SPLITS)
    for axis in "xyz":
        f = base / "test" / "Inertial Signals" / f"total_acc_{axis}_test.txt"
        x = np.loadtxt(f)
        x[1] = 0.0
        np.savetxt(f, x, fmt="%15.7e", delimiter="")
    return base / "test" / "Inertial Signals", "total_acc reads exactly 0 on every axis in 1 win"


def _uci_labels_short(root: Path) -> tuple[Path, str]:
    f = write_uci_har(root, UCI_SPLITS) / "test" / "y_test.txt"
    f.write_text("6\n6\n")
    return f, "has 2 rows but the signal files have 3"


def _hapt_labels_out_of_order(root: Path) -> tuple[Path, str]:
    raw = write_hapt(root, {(1, 1): hapt_experiment([(1, 200), (4, 200)])})
    lab = np.loadtxt(raw / "labels.txt", dtype=int)[::-1]
    np.savetxt(raw / "labels.txt", lab, fmt="%d")
    return raw / "labels.txt", "out of order or overlap"


def _hapt_stuck_gyro(root: Path) -> tuple[Path, str]:
    acc, gyro, rows = hapt_experiment([(1, 1000)])
    gyro[600:1200] = 0.0  # 12 s at 50 Hz
    raw = write_hapt(root, {(1, 1): (acc, gyro, rows)})
    return raw / "gyro_exp01_user01.txt", "sensor gyro reads exactly 0 on every axis for 12.0 s"


def _hapt_wrong_columns(root: Path) -> tuple[Path, str]:
    acc, gyro, rows = hapt_experiment([(1, 200)])
    raw = write_hapt(root, {(1, 1): (acc[:, :2], gyro, rows)})
    return raw / "acc_exp01_user01.txt", "has 2 columns, expected 3"


def _hapt_labels_past_end(root: Path) -> tuple[Path, str]:
    acc, gyro, rows = hapt_experiment([(1, 200)])
    raw = write_hapt(root, {(1, 1): (acc[:600], gyro[:600], rows)})
    return raw / "labels.txt", "ends at sample 700 but its files hold 600"


def _wisdm_time_back(root: Path) -> tuple[Path, str]:
    lines = wisdm_lines(1600, [("A", 5)], sensor=0, t0_ns=10**14)
    lines[10], lines[11] = lines[11], lines[10]
    return write_wisdm_stream(root, 1600, "phone", "accel", lines), "time goes back at row 12"


def _wisdm_code_n(root: Path) -> tuple[Path, str]:
    lines = wisdm_lines(1600, [("N", 5)], sensor=0, t0_ns=10**14)
    return write_wisdm_stream(root, 1600, "phone", "accel", lines), "unknown activity code(s) N"


def _wisdm_columns(root: Path) -> tuple[Path, str]:
    lines = wisdm_lines(1600, [("A", 5)], sensor=0, t0_ns=10**14)
    lines[4] = lines[4].rsplit(",", 1)[0] + ";"
    return write_wisdm_stream(root, 1600, "phone", "accel", lines), "5 columns at line 5"


def _wisdm_subject(root: Path) -> tuple[Path, str]:
    lines = wisdm_lines(1601, [("A", 5)], sensor=0, t0_ns=10**14)
    return write_wisdm_stream(root, 1600, "phone", "accel", lines), "belongs to subject 1601"


def _wisdm_stuck(root: Path) -> tuple[Path, str]:
    lines = [ln.rsplit(",", 3)[0] + ",0,0,0;" for ln in
             wisdm_lines(1600, [("A", 12)], sensor=0, t0_ns=10**14)]
    return write_wisdm_stream(root, 1600, "phone", "accel", lines), "sensor phone_accel reads"


def _mhealth_columns(root: Path) -> tuple[Path, str]:
    base = write_mhealth(root, {1: mhealth_rows([(1, 200)])[:, 1:]})
    return base / "mHealth_subject1.log", "has 23 columns, expected 24"


def _mhealth_label(root: Path) -> tuple[Path, str]:
    base = write_mhealth(root, {1: mhealth_rows([(1, 200), (13, 10)])})
    return base / "mHealth_subject1.log", "row 201 has label 13, outside 0..12"


def _mhealth_stuck_ecg(root: Path) -> tuple[Path, str]:
    rows = mhealth_rows([(1, 800)])
    rows[100:700, 3:5] = 0.0
    return write_mhealth(root, {1: rows}) / "mHealth_subject1.log", "sensor ecg reads exactly 0"


def _mhealth_empty(root: Path) -> tuple[Path, str]:
    base = write_mhealth(root, {1: mhealth_rows([(1, 200)])})
    (base / "mHealth_subject2.log").write_text("\n\n")
    return base / "mHealth_subject2.log", "is empty"


def _daphnet_header(root: Path) -> tuple[Path, str]:
    f = write_daphnet(root, {"S01R01": daphnet_rows([(1, 300)])}) / "S01R01.txt"
    f.write_text("time ankle_f ankle_v ankle_l thigh_f thigh_v thigh_l trunk_f trunk_v trunk_l "
                 "ann\n" + f.read_text())
    return f, "line 1 column 1 is 'time', not a number"


def _daphnet_nan(root: Path) -> tuple[Path, str]:
    f = write_daphnet(root, {"S01R01": daphnet_rows([(1, 300)])}) / "S01R01.txt"
    lines = f.read_text().splitlines()
    lines[7] = lines[7].rsplit(" ", 2)[0] + " nan 1"
    f.write_text("\n".join(lines))
    return f, "row 8 holds NaN or inf"


def _daphnet_time_back(root: Path) -> tuple[Path, str]:
    rows = daphnet_rows([(1, 300)])
    rows[50, 0] = 5
    return write_daphnet(root, {"S01R01": rows}) / "S01R01.txt", "time goes back at row 51"


def _daphnet_columns(root: Path) -> tuple[Path, str]:
    rows = daphnet_rows([(1, 300)])[:, :10]
    return write_daphnet(root, {"S01R01": rows}) / "S01R01.txt", "has 10 columns, expected 11"


def _daphnet_stuck(root: Path) -> tuple[Path, str]:
    rows = daphnet_rows([(1, 1000)])
    rows[:, 4:7] = 0
    return write_daphnet(root, {"S01R01": rows}) / "S01R01.txt", "sensor thigh_acc reads exactly"


def _daphnet_annotation(root: Path) -> tuple[Path, str]:
    rows = daphnet_rows([(1, 300), (3, 5)])
    return write_daphnet(root, {"S01R01": rows}) / "S01R01.txt", "annotation 3, not 0, 1 or 2"


MALFORMED: list[tuple[str, Callable[[Path], tuple[Path, str]]]] = [
    ("uci-har", _uci_short_row), ("uci-har", _uci_stuck), ("uci-har", _uci_labels_short),
    ("hapt", _hapt_labels_out_of_order), ("hapt", _hapt_stuck_gyro), ("hapt", _hapt_wrong_columns),
    ("hapt", _hapt_labels_past_end), ("wisdm", _wisdm_time_back), ("wisdm", _wisdm_code_n),
    ("wisdm", _wisdm_columns), ("wisdm", _wisdm_subject), ("wisdm", _wisdm_stuck),
    ("mhealth", _mhealth_columns), ("mhealth", _mhealth_label), ("mhealth", _mhealth_stuck_ecg),
    ("mhealth", _mhealth_empty), ("daphnet", _daphnet_header), ("daphnet", _daphnet_nan),
    ("daphnet", _daphnet_time_back), ("daphnet", _daphnet_columns), ("daphnet", _daphnet_stuck),
    ("daphnet", _daphnet_annotation),
]
