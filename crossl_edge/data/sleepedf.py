"""Sleep-EDF Expanded: PSG/Hypnogram EDF pairs read with pyedflib into 30 s epochs at 100 Hz,
5 classes (W, N1, N2, N3, REM), with a subject-disjoint split.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.data.signal import resample, subject_list
from crossl_edge.data.windows import Dataset, ModalitySpec, Windows, split_by_subject
from crossl_edge.errors import DataError, UsageError

log = logging.getLogger(__name__)

RATE_HZ = 100.0
EPOCH_S = 30
CLASSES = ("W", "N1", "N2", "N3", "REM")
STAGES = {"Sleep stage W": 0, "Sleep stage 1": 1, "Sleep stage 2": 2, "Sleep stage 3": 3,
          "Sleep stage 4": 3, "Sleep stage R": 4}  # "Sleep stage ?" and "Movement time" dropped
DEFAULT_CHANNELS = ("EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental")
TEST_FRACTION = 0.2


def modality_name(channel: str) -> str:
    """``"EEG Fpz-Cz"`` -> ``"eeg_fpz_cz"``."""
    return re.sub(r"[^0-9a-z]+", "_", channel.lower()).strip("_")


def subject_of(name: str) -> str:
    """Subject of a Sleep-EDF file name: ``SC4ssN...`` -> ``SCss``, ``ST7ssN...`` -> ``STss``."""
    return name[:2] + name[3:5]


def find_pairs(path: str | Path) -> list[tuple[str, Path, Path]]:
    """(record, PSG, hypnogram) triples under ``path``, paired on the first 6 characters."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; pass --data pointing at the sleep-cassette or "
                        "sleep-telemetry folder.")
    psgs = sorted(root.rglob("*-PSG.edf"))
    if not psgs:
        raise DataError(f"no *-PSG.edf files under {root}; pass --data pointing at the "
                        "sleep-cassette or sleep-telemetry folder.")
    hyps: dict[str, list[Path]] = {}
    for h in root.rglob("*-Hypnogram.edf"):
        hyps.setdefault(h.name[:6], []).append(h)
    pairs = []
    for psg in psgs:
        found = hyps.get(psg.name[:6], [])
        if len(found) != 1:
            what = "no" if not found else "more than one"
            raise DataError(f"{psg.name} has {what} matching {psg.name[:6]}*-Hypnogram.edf; "
                            "download exactly one hypnogram per PSG or remove the PSG file.")
        pairs.append((psg.name[:6], psg, found[0]))
    return pairs


def _open(file: Path) -> Any:
    try:
        import pyedflib
    except ImportError as e:
        raise UsageError("Sleep-EDF needs pyedflib; install it with `pip install pyedflib` "
                         "(or `pip install crossl-edge[data]`).") from e

    try:
        return pyedflib.EdfReader(str(file))
    except OSError as e:
        raise DataError(f"{file}: pyedflib cannot read it ({e}); re-download the file.") from e


def _read_channels(psg: Path, channels: Sequence[str],
                   notes: dict[str, str]) -> tuple[list[np.ndarray], Any]:
    """Each requested channel at 100 Hz (float64), and the PSG's start time."""
    reader = _open(psg)
    try:
        labels = [lab.strip() for lab in reader.getSignalLabels()]
        out = []
        for ch in channels:
            matches = [i for i, lab in enumerate(labels) if lab.lower() == ch.lower()]
            if not matches:
                raise DataError(f"{psg.name} has no channel {ch!r} (it has: {', '.join(labels)}); "
                                "pass channels= with labels it has.")
            i = matches[0]
            fs = float(reader.getSampleFrequency(i))
            x = reader.readSignal(i).astype(np.float64)
            if fs != RATE_HZ:
                x = resample(x, from_hz=fs, to_hz=RATE_HZ)
                notes[ch] = f"{fs:g} Hz resampled to {RATE_HZ:g} Hz"
            out.append(x)
        return out, reader.getStartdatetime()
    finally:
        reader.close()


def _read_stages(hyp: Path) -> tuple[list[tuple[float, float, int]], Any]:
    """(onset s, duration s, class) of each staged annotation, and the hypnogram's start time."""
    reader = _open(hyp)
    try:
        onsets, durations, texts = reader.readAnnotations()
        start = reader.getStartdatetime()
    finally:
        reader.close()
    stages = []
    for onset, duration, text in zip(onsets, durations, texts, strict=True):
        label = STAGES.get(str(text).strip())
        if label is not None:
            stages.append((float(onset), float(duration), label))
    return stages, start


def _epochs(signals: list[np.ndarray], stages: list[tuple[float, float, int]],
            offset_s: float) -> tuple[np.ndarray, np.ndarray, int]:
    """(n, channels, 3000) epochs and labels; epochs running past the recording are dropped."""
    n_samples = min(len(s) for s in signals)
    epoch = int(EPOCH_S * RATE_HZ)
    starts: list[int] = []
    labels: list[int] = []
    lost = 0
    for onset, duration, label in stages:
        for k in range(int(math.floor(duration / EPOCH_S + 1e-6))):
            a = int(round((onset + offset_s + k * EPOCH_S) * RATE_HZ))
            if a < 0 or a + epoch > n_samples:
                lost += 1
                continue
            starts.append(a)
            labels.append(label)
    idx = np.asarray(starts, np.int64)[:, None] + np.arange(epoch)[None, :]
    if not starts:
        return np.empty((0, len(signals), epoch), np.float32), np.empty(0, np.int64), lost
    x = np.stack([s[idx] for s in signals], axis=1)
    return x.astype(np.float32), np.asarray(labels, np.int64), lost


def load_sleepedf(*, path: str | Path, test_subjects: Sequence[object] | None = None,
                  channels: Sequence[str] = DEFAULT_CHANNELS) -> Dataset:
    """30 s epochs of each channel (one 1-channel modality per channel, named like ``eeg_fpz_cz``).

    Channels not at 100 Hz (the sleep-cassette EMG is a 1 Hz envelope) are resampled to 100 Hz
    and listed in ``meta["resampled"]``. Subjects are ``SCss``/``STss`` from the file names;
    ``test_subjects`` defaults to the last 20% of subjects (at least one) in sorted order.
    """
    if isinstance(channels, str):
        channels = [c.strip() for c in channels.split(",") if c.strip()]
    channels = tuple(channels)
    names = [modality_name(c) for c in channels]
    if not channels or len(set(names)) != len(names):
        raise UsageError(f"channels {list(channels)} must be non-empty and distinct; "
                         f"for example {', '.join(DEFAULT_CHANNELS)}.")
    notes: dict[str, str] = {}
    xs, ys, subs = [], [], []
    lost = 0
    for record, psg, hyp in find_pairs(path):
        signals, psg_start = _read_channels(psg, channels, notes)
        stages, hyp_start = _read_stages(hyp)
        offset = (hyp_start - psg_start).total_seconds()
        x, y, n_lost = _epochs(signals, stages, offset)
        lost += n_lost
        xs.append(x)
        ys.append(y)
        subs.append(np.full(len(y), subject_of(record)))
        log.debug("sleepedf: %s: %d epochs", record, len(y))
    x = np.concatenate(xs)
    if len(x) == 0:
        raise DataError(f"no staged 30 s epoch fits inside the recordings under {path}; "
                        "check that each hypnogram belongs to its PSG.")
    specs = tuple(ModalitySpec(n, (c,), RATE_HZ) for n, c in zip(names, channels, strict=True))
    data = {n: x[:, i:i + 1] for i, n in enumerate(names)}
    meta: dict[str, object] = {"source": str(path), "dataset": "sleepedf", "epoch_s": EPOCH_S,
                               "resampled": dict(notes), "epochs_past_end_dropped": lost}
    everyone = Windows(specs, data, np.concatenate(ys), np.concatenate(subs), CLASSES, meta)
    present = sorted(set(everyone.subjects.tolist()))
    n_test = max(1, math.ceil(TEST_FRACTION * len(present)))
    test = subject_list(test_subjects) or present[-n_test:]
    train_w, test_w = split_by_subject(everyone, test)
    log.info("sleepedf: %d train / %d test epochs, test subjects %s",
             len(train_w), len(test_w), test)
    return Dataset("sleepedf", train_w, test_w)
