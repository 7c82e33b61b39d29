"""Writers of tiny synthetic files in the real raw formats of PAMAP2, WESAD and Sleep-EDF, for the
loader tests (nothing is downloaded or committed; each file is a few kB and builds in ms).
"""

from __future__ import annotations

import datetime as dt
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------- PAMAP2

PAMAP2_BLOCKS = {"hand": 3, "chest": 20, "ankle": 37}  # 0-based first column of each IMU block


def pamap2_rows(segments: Sequence[tuple[int, int]], *, seed: int = 0,
                t0: float = 5.0) -> np.ndarray:
    """A (T, 54) PAMAP2 array: ``segments`` = [(activityID, rows)], 100 Hz timestamps.

    Every IMU channel carries ``activityID + 0.01 * channel`` plus small noise, so a window's
    values tell which segment it came from; heart rate is set on every 11th row only.
    """
    rng = np.random.default_rng(seed)
    n = sum(r for _, r in segments)
    x = np.full((n, 54), np.nan)
    x[:, 0] = t0 + np.arange(n) * 0.01
    x[:, 1] = np.repeat([a for a, _ in segments], [r for _, r in segments])
    x[::11, 2] = 80.0 + x[::11, 1]
    for b in PAMAP2_BLOCKS.values():
        x[:, b] = 32.0
        x[:, b + 1:b + 13] = (x[:, 1:2] + 0.01 * np.arange(12)
                              + rng.normal(0, 1e-3, size=(n, 12)))
        x[:, b + 13:b + 17] = [1.0, 0.0, 0.0, 0.0]
    return x


def write_pamap2_file(path: Path, rows: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, rows, fmt="%.6g")  # NaN is written as 'nan', which np.loadtxt reads back
    return path


def write_pamap2(root: Path, subjects: dict[int, np.ndarray], *, folder: str = "Protocol") -> Path:
    """``root/PAMAP2_Dataset/<folder>/subject<id>.dat`` per subject; returns the dataset dir."""
    base = root / "PAMAP2_Dataset"
    for sid, rows in subjects.items():
        write_pamap2_file(base / folder / f"subject{sid}.dat", rows)
    return base


# --------------------------------------------------------------------------- WESAD

WESAD_CHEST = {"ACC": 3, "ECG": 1, "EMG": 1, "EDA": 1, "Temp": 1, "Resp": 1}


def wesad_subject(labels: Sequence[tuple[int, int]], *, subject: str, seed: int = 0,
                  drop: Sequence[str] = ()) -> dict[str, object]:
    """A WESAD subject dict: ``labels`` = [(label, samples at 700 Hz)]; chest signals encode the
    label (value = label + 0.1 * channel index + noise); keys in ``drop`` are left out."""
    rng = np.random.default_rng(seed)
    label = np.repeat([a for a, _ in labels], [n for _, n in labels]).astype(np.int32)
    n = label.size
    chest = {}
    for i, (key, width) in enumerate(WESAD_CHEST.items()):
        if key not in drop:
            chest[key] = label[:, None] + 0.1 * i + rng.normal(0, 1e-3, (n, width))
    m = max(1, n // 700)
    wrist = {"ACC": rng.normal(size=(32 * m, 3)), "BVP": rng.normal(size=(64 * m, 1)),
             "EDA": rng.normal(size=(4 * m, 1)), "TEMP": rng.normal(size=(4 * m, 1))}
    return {"signal": {"chest": chest, "wrist": wrist}, "label": label, "subject": subject}


def write_wesad(root: Path, subjects: dict[str, dict[str, object]]) -> Path:
    """``root/WESAD/S<n>/S<n>.pkl`` (protocol-2 pickles like the originals); returns the dir."""
    base = root / "WESAD"
    for name, obj in subjects.items():
        (base / name).mkdir(parents=True, exist_ok=True)
        with open(base / name / f"{name}.pkl", "wb") as f:
            pickle.dump(obj, f, protocol=2)
    return base


# --------------------------------------------------------------------------- Sleep-EDF

SC_SIGNALS = [("EEG Fpz-Cz", 100), ("EEG Pz-Oz", 100), ("EOG horizontal", 100),
              ("Resp oro-nasal", 1), ("EMG submental", 1), ("Temp rectal", 1), ("Event marker", 1)]
START = dt.datetime(1989, 4, 24, 16, 13, 0)


def write_psg(path: Path, *, seconds: int, signals: Sequence[tuple[str, int]] = SC_SIGNALS,
              seed: int = 0, start: dt.datetime = START) -> Path:
    """An EDF+ PSG: channel 0 is a ramp equal to the time in seconds (so an epoch's first value
    is its onset); channel ``i > 0`` is ``10 * i`` plus a 1 Hz sine and noise (uV)."""
    import pyedflib

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    w = pyedflib.EdfWriter(str(path), len(signals), file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        w.setStartdatetime(start)
        w.setSignalHeaders([{"label": lab, "dimension": "uV", "sample_frequency": fs,
                             "physical_max": 500.0, "physical_min": -500.0,
                             "digital_max": 32767, "digital_min": -32768}
                            for lab, fs in signals])
        data = []
        for i, (_, fs) in enumerate(signals):
            t = np.arange(seconds * fs) / fs
            wave = 10.0 * i + 20 * np.sin(2 * np.pi * t) + rng.normal(0, 1, t.size)
            data.append(t if i == 0 else wave)
        w.writeSamples(data)
    finally:
        w.close()
    return path


def write_hypnogram(path: Path, stages: Sequence[tuple[float, float, str]],
                    start: dt.datetime = START) -> Path:
    """An annotation-only EDF+ hypnogram: ``stages`` = [(onset s, duration s, text)]."""
    import pyedflib

    path.parent.mkdir(parents=True, exist_ok=True)
    h = pyedflib.EdfWriter(str(path), 0, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        h.setStartdatetime(start)
        for onset, duration, text in stages:
            h.writeAnnotation(onset, duration, text)
    finally:
        h.close()
    return path
