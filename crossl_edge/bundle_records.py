"""Typed records of a bundle manifest's open-ended parts: an encoder's `stats` and the bundle's
provenance (`source`, `samples`, `calibration`, `versions`), each read from and written to JSON.

Keys this version does not know are kept in `other` and written back unchanged, and a key read
as an explicit null is written back as null, so a record round-trips exactly (the fingerprint is
computed over the JSON).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

R = TypeVar("R", bound="Record")


@dataclass(frozen=True)
class Record:
    """Base of the JSON records: typed fields (None = absent unless the JSON held an explicit
    null: `nulls`) plus `other` for unknown keys."""

    other: dict[str, Any] = field(default_factory=dict, kw_only=True)
    nulls: frozenset[str] = field(default=frozenset(), kw_only=True, repr=False, compare=False)

    @classmethod
    def _known(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("other", "nulls"))

    @classmethod
    def from_json(cls: type[R], obj: Any) -> R:
        """The record of a JSON object; a non-object gives the empty record."""
        d = obj if isinstance(obj, dict) else {}
        known = cls._known()
        kw = {k: cls._read(k, d[k]) for k in known if k in d}
        return cls(**kw, other={k: v for k, v in d.items() if k not in known},
                   nulls=frozenset(k for k in known if k in d and d[k] is None))

    @classmethod
    def _read(cls, key: str, value: Any) -> Any:
        return value

    def to_json(self) -> dict[str, Any]:
        """The JSON object: every field that is set or was an explicit null, then the unknown
        keys."""
        out: dict[str, Any] = {}
        for k in self._known():
            v = getattr(self, k)
            if v is not None or k in self.nulls:
                out[k] = v.to_json() if isinstance(v, Record) else v
        return {**out, **self.other}


@dataclass(frozen=True)
class TflmStats(Record):
    """What TFLite Micro measured on an encoder at export: arena, LSB agreement with LiteRT."""

    arena_recorded_bytes: int | None = None
    arena_min_bytes: int | None = None
    version: str | None = None
    max_lsb_vs_litert_builtin: int | None = None
    prediction_disagreements: int | None = None
    windows: int | None = None


@dataclass(frozen=True)
class EncoderChecks(Record):
    """Float exports' max |error| vs PyTorch and int8 exports' mean latent cosine."""

    onnx_max_abs_err: float | None = None
    tflite_max_abs_err: float | None = None
    tflite_int8_mean_cosine: float | None = None
    onnx_int8_mean_cosine: float | None = None


@dataclass(frozen=True)
class EncoderStats(Record):
    """An encoder's `stats`: size and cost, its int8 graph, export checks, TFLite Micro figures.

    `tflm` is null when TFLite Micro was not installed at export (always written).
    """

    checks: EncoderChecks = field(default_factory=EncoderChecks)
    calibration_input_percentile: float | None = None
    tflite_int8_ops: list[str] | None = None
    tflite_int8_op_count: int | None = None
    tflm: TflmStats | None = None
    params: int | None = None
    macs: int | None = None
    size_bytes: dict[str, int] | None = None

    @classmethod
    def _read(cls, key: str, value: Any) -> Any:
        if key == "checks":
            return EncoderChecks.from_json(value)
        if key == "tflm":
            return None if value is None else TflmStats.from_json(value)
        return value

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out.setdefault("tflm", None)
        return out

    @property
    def arena_recorded_bytes(self) -> int | None:
        """The TFLite Micro arena recorded at export, if it ran."""
        return self.tflm.arena_recorded_bytes if self.tflm else None


@dataclass(frozen=True)
class SourceRecord(Record):
    """Where a bundle came from: the run folder, its dataset and the model file's sha256."""

    run: str | None = None
    dataset: str | None = None
    data_path: str | None = None
    data_options: dict[str, Any] | None = None
    encoder: str | None = None
    model_sha256: str | None = None


@dataclass(frozen=True)
class SamplesRecord(Record):
    """The bundle's raw test windows file (`samples.npz`)."""

    path: str | None = None
    sha256: str | None = None
    windows: int | None = None
    split: str | None = None
    content: str | None = None


@dataclass(frozen=True)
class CalibrationRecord(Record):
    """How many training windows calibrated int8, of how many, chosen how."""

    windows: int | None = None
    of: int | None = None
    selection: str | None = None


PROVENANCE_KEYS = ("source", "samples", "calibration", "versions")


@dataclass(frozen=True)
class Provenance(Record):
    """The manifest's top-level keys beyond the contract: source, samples, calibration, versions,
    and (in `other`) the rest (layouts, notes)."""

    source: SourceRecord | None = None
    samples: SamplesRecord | None = None
    calibration: CalibrationRecord | None = None
    versions: dict[str, str] | None = None

    @classmethod
    def _read(cls, key: str, value: Any) -> Any:
        kinds: dict[str, type[Record]] = {"source": SourceRecord, "samples": SamplesRecord,
                                          "calibration": CalibrationRecord}
        kind = kinds.get(key)
        return kind.from_json(value) if kind is not None and isinstance(value, dict) else value
