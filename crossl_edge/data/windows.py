"""The windows abstraction: per-modality arrays (N, C_m, T_m), labels, subjects, and metadata."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from crossl_edge.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModalitySpec:
    """One sensor's channel group: its name, channel names and sample rate."""

    name: str
    channels: tuple[str, ...]
    sample_rate_hz: float

    @property
    def n_channels(self) -> int:
        return len(self.channels)


@dataclass
class Windows:
    """Labelled windows of several modalities sharing one time span per row.

    ``data[m]`` is float32 of shape (N, C_m, T_m); ``labels`` int64 (N,) indexing ``classes``;
    ``subjects`` (N,) identifies who recorded each window (for subject-disjoint splits).
    ``present[m]`` is bool (N,): False where modality ``m`` did not arrive for that window (a
    stuck, disconnected or missing sensor); a modality left out of ``present`` is present in
    every window. An absent window's data is never used: it is set to 0 here (and after
    normalization), whatever the loader put there.
    """

    modalities: tuple[ModalitySpec, ...]
    data: dict[str, np.ndarray]
    labels: np.ndarray
    subjects: np.ndarray
    classes: tuple[str, ...]
    meta: dict[str, object] = field(default_factory=dict)
    present: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.subjects = np.asarray(self.subjects)
        n = len(self.labels)
        self.present = {
            m.name: np.ascontiguousarray(self.present[m.name], dtype=bool)
            if m.name in self.present else np.ones(n, bool)
            for m in self.modalities
        }
        data = {}
        for m in self.modalities:
            x = np.ascontiguousarray(self.data[m.name], dtype=np.float32)
            p = self.present[m.name]
            if p.shape == (n,) and x.ndim >= 1 and x.shape[0] == n and not p.all():
                x = x.copy()
                x[~p] = 0.0  # never used; finite so nothing downstream trips over it
            data[m.name] = x
        self.data = data
        self.validate()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modalities)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def spec(self, name: str) -> ModalitySpec:
        for m in self.modalities:
            if m.name == name:
                return m
        raise DataError(f"unknown modality {name!r}; this dataset has {', '.join(self.names)}.")

    def validate(self) -> None:
        """Check shapes, finiteness and labels; raise DataError with a fix-it sentence."""
        n = len(self)
        if self.subjects.shape != (n,):
            raise DataError(f"subjects has shape {self.subjects.shape}, expected ({n},).")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise DataError(f"labels must lie in 0..{len(self.classes) - 1}; fix the label map.")
        for m in self.modalities:
            x = self.data[m.name]
            if self.present[m.name].shape != (n,):
                raise DataError(f"present[{m.name!r}] has shape {self.present[m.name].shape}, "
                                f"expected ({n},); give one flag per window.")
            if x.ndim != 3 or x.shape[0] != n or x.shape[1] != m.n_channels:
                raise DataError(
                    f"modality {m.name!r} has shape {x.shape}, expected ({n}, {m.n_channels}, T); "
                    "check the channel count of the recording."
                )
            if x.shape[2] < 1:
                raise DataError(f"modality {m.name!r} has empty windows.")
            if not np.isfinite(x).all():
                bad = int((~np.isfinite(x)).any(axis=(1, 2)).sum())
                raise DataError(
                    f"modality {m.name!r} has NaN or inf in {bad} window(s); clean or "
                    "interpolate the recording first."
                )

    def presence(self) -> np.ndarray:
        """(N, M) bool: which modality arrived for each window, in modality order."""
        if not self.modalities:
            return np.ones((len(self), 0), bool)
        return np.stack([self.present[n] for n in self.names], axis=1)

    @property
    def complete(self) -> bool:
        """True when every modality is present in every window."""
        return all(p.all() for p in self.present.values())

    def subset(self, idx: np.ndarray) -> Windows:
        """Rows ``idx`` (indices or boolean mask) as a new Windows."""
        idx = np.asarray(idx)
        return Windows(
            self.modalities,
            {k: v[idx] for k, v in self.data.items()},
            self.labels[idx],
            self.subjects[idx],
            self.classes,
            dict(self.meta),
            {k: v[idx] for k, v in self.present.items()},
        )

    def select(self, names: list[str] | tuple[str, ...]) -> Windows:
        """Only the modalities ``names``, in that order; windows where none of them arrived are
        dropped (logged)."""
        specs = tuple(self.spec(n) for n in names)
        out = Windows(
            specs,
            {n: self.data[n] for n in names},
            self.labels,
            self.subjects,
            self.classes,
            dict(self.meta),
            {n: self.present[n] for n in names},
        )
        return out.drop_empty()

    def drop_empty(self) -> Windows:
        """These windows without those where no modality arrived (logged when there are any)."""
        keep = cast(np.ndarray, self.presence().any(axis=1))  # (N,): axis=1 of an (N, M) array
        if keep.all():
            return self
        log.warning("%d window(s) have none of %s present; dropped", int((~keep).sum()),
                    ", ".join(self.names))
        return self.subset(keep)


@dataclass
class Dataset:
    """A named train/test pair of Windows with identical modalities and classes."""

    name: str
    train: Windows
    test: Windows

    def __post_init__(self) -> None:
        if self.train.modalities != self.test.modalities or self.train.classes != self.test.classes:
            raise DataError("train and test splits disagree on modalities or classes.")
        if len(self.train) == 0 or len(self.test) == 0:
            raise DataError(
                f"dataset {self.name!r} has an empty train or test split; check the subject split."
            )


@dataclass(frozen=True)
class Normalizer:
    """Per-modality, per-channel mean/std computed on the training split only."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]

    @classmethod
    def fit(cls, windows: Windows, *, eps: float = 1e-6) -> Normalizer:
        """Statistics of the windows where each modality is present (absent ones never count;
        a modality absent everywhere gets mean 0, std 1)."""
        mean, std = {}, {}
        for name, x in windows.data.items():
            x = x[windows.present[name]]
            if len(x) == 0:
                log.warning("modality %s is absent in every training window; normalization "
                            "left at mean 0, std 1", name)
                mean[name] = np.zeros(x.shape[1], np.float32)
                std[name] = np.ones(x.shape[1], np.float32)
                continue
            mean[name] = x.mean(axis=(0, 2)).astype(np.float32)
            std[name] = np.maximum(x.std(axis=(0, 2)), eps).astype(np.float32)
        return cls(mean, std)

    def apply(self, name: str, x: np.ndarray) -> np.ndarray:
        """Normalize one modality's (N, C, T) array."""
        return ((x - self.mean[name][None, :, None]) / self.std[name][None, :, None]).astype(
            np.float32
        )

    def transform(self, windows: Windows) -> Windows:
        """Normalized windows; absent windows stay exactly 0 (Windows zeroes them)."""
        return Windows(
            windows.modalities,
            {n: self.apply(n, x) for n, x in windows.data.items()},
            windows.labels,
            windows.subjects,
            windows.classes,
            dict(windows.meta),
            dict(windows.present),
        )

    def to_json(self) -> dict[str, dict[str, list[float]]]:
        return {n: {"mean": self.mean[n].tolist(), "std": self.std[n].tolist()} for n in self.mean}

    @classmethod
    def from_json(cls, obj: dict[str, dict[str, list[float]]]) -> Normalizer:
        return cls(
            {n: np.asarray(v["mean"], np.float32) for n, v in obj.items()},
            {n: np.asarray(v["std"], np.float32) for n, v in obj.items()},
        )


def sliding_windows(signal: np.ndarray, *, length: int, step: int) -> np.ndarray:
    """Cut a (T, C) recording into (N, C, length) windows every ``step`` samples."""
    if length < 1 or step < 1:
        raise DataError("window length and step must be positive.")
    t = signal.shape[0]
    if t < length:
        raise DataError(
            f"window of {length} samples is longer than the recording ({t} samples); "
            "use a shorter --window."
        )
    starts = np.arange(0, t - length + 1, step)
    idx = starts[:, None] + np.arange(length)[None, :]
    return np.ascontiguousarray(signal[idx].transpose(0, 2, 1), dtype=np.float32)


def stratified_split(
    labels: np.ndarray, *, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (rest, picked) with ``fraction`` of each class picked (at least one)."""
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = max(1, int(round(fraction * len(idx)))) if len(idx) > 1 else 0
        picked.extend(idx[:k].tolist())
    mask = np.zeros(len(labels), bool)
    mask[picked] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def split_by_subject(
    windows: Windows, test_subjects: Sequence[object]
) -> tuple[Windows, Windows]:
    """Subject-disjoint (train, test) split: ``test_subjects`` go to test."""
    is_test = np.isin(windows.subjects.astype(str), [str(s) for s in test_subjects])
    if not is_test.any():
        known = ", ".join(sorted(set(windows.subjects.astype(str).tolist())))
        raise DataError(
            f"none of the test subjects {list(test_subjects)} is in the data; known: {known}."
        )
    return windows.subset(~is_test), windows.subset(is_test)
