"""The windows abstraction: per-modality arrays (N, C_m, T_m), labels, subjects, and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crossl_edge.errors import DataError


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
    """

    modalities: tuple[ModalitySpec, ...]
    data: dict[str, np.ndarray]
    labels: np.ndarray
    subjects: np.ndarray
    classes: tuple[str, ...]
    meta: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.subjects = np.asarray(self.subjects)
        self.data = {
            m.name: np.ascontiguousarray(self.data[m.name], dtype=np.float32)
            for m in self.modalities
        }
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
        )

    def select(self, names: list[str] | tuple[str, ...]) -> Windows:
        """Only the modalities ``names``, in that order."""
        specs = tuple(self.spec(n) for n in names)
        return Windows(
            specs,
            {n: self.data[n] for n in names},
            self.labels,
            self.subjects,
            self.classes,
            dict(self.meta),
        )


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
        mean, std = {}, {}
        for name, x in windows.data.items():
            mean[name] = x.mean(axis=(0, 2)).astype(np.float32)
            std[name] = np.maximum(x.std(axis=(0, 2)), eps).astype(np.float32)
        return cls(mean, std)

    def apply(self, name: str, x: np.ndarray) -> np.ndarray:
        """Normalize one modality's (N, C, T) array."""
        return ((x - self.mean[name][None, :, None]) / self.std[name][None, :, None]).astype(
            np.float32
        )

    def transform(self, windows: Windows) -> Windows:
        return Windows(
            windows.modalities,
            {n: self.apply(n, x) for n, x in windows.data.items()},
            windows.labels,
            windows.subjects,
            windows.classes,
            dict(windows.meta),
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
    windows: Windows, test_subjects: list[object] | tuple[object, ...]
) -> tuple[Windows, Windows]:
    """Subject-disjoint (train, test) split: ``test_subjects`` go to test."""
    is_test = np.isin(windows.subjects.astype(str), [str(s) for s in test_subjects])
    if not is_test.any():
        known = ", ".join(sorted(set(windows.subjects.astype(str).tolist())))
        raise DataError(
            f"none of the test subjects {list(test_subjects)} is in the data; known: {known}."
        )
    return windows.subset(~is_test), windows.subset(is_test)
