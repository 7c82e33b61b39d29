"""The bundle manifest (manifest.json): read, validate, hash-check; numpy only (runtime path).

A bundle = per-modality encoders + a phone model + this manifest, enough for a third party to go
from a raw sensor window to a prediction with only a TFLite or ONNX runtime.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.errors import CheckFailed, UsageError

BUNDLE_FORMAT = "crossl-edge-bundle"
BUNDLE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARTIFACT_KINDS = ("onnx", "onnx_int8", "tflite", "tflite_int8")


@dataclass(frozen=True)
class QParams:
    """Affine int8 quantization: real = scale * (q - zero_point)."""

    scale: float
    zero_point: int

    def quantize(self, x: np.ndarray) -> np.ndarray:
        q = np.round(np.asarray(x, np.float32) / self.scale) + self.zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (self.scale * (np.asarray(q, np.float32) - self.zero_point)).astype(np.float32)


@dataclass(frozen=True)
class ModalityEntry:
    """One sensor node's encoder: input contract, artifacts, quantization, hashes."""

    name: str
    id: int
    channels: list[str]
    window: int
    sample_rate_hz: float
    normalization: dict[str, list[float]]
    layout: str  # layout of the TFLite input, e.g. "NWC"
    artifacts: dict[str, str]
    sha256: dict[str, str]
    input_quant: QParams
    latent_quant: QParams
    onnx_layout: str = "NCW"
    stats: dict[str, Any] = field(default_factory=dict)  # params, MACs, sizes, arena...

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """Raw window(s) (..., C, T) in sensor units -> normalized float32, same shape."""
        raw = np.asarray(raw, np.float32)
        if raw.shape[-2:] != (len(self.channels), self.window):
            raise UsageError(
                f"modality {self.name!r} expects a window of shape "
                f"({len(self.channels)}, {self.window}), got {raw.shape}."
            )
        mean = np.asarray(self.normalization["mean"], np.float32)[:, None]
        std = np.asarray(self.normalization["std"], np.float32)[:, None]
        return (raw - mean) / std

    def tflite_input(self, raw: np.ndarray, *, int8: bool) -> np.ndarray:
        """Raw (C, T) -> the TFLite encoder's input (1, T, C), quantized when ``int8``."""
        x = self.normalize(raw).T[None]  # (1, T, C) channels-last
        return self.input_quant.quantize(x) if int8 else x.astype(np.float32)

    def onnx_input(self, raw: np.ndarray) -> np.ndarray:
        """Raw (C, T) -> the ONNX encoder's float input (1, C, T)."""
        return self.normalize(raw)[None].astype(np.float32)


@dataclass(frozen=True)
class AggregatorEntry:
    """The phone model: inputs latents (1, M, D) float32 and present (1, M) float32 -> logits."""

    artifacts: dict[str, str]
    sha256: dict[str, str]
    inputs: list[str]
    output: str = "logits"


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest.json, plus the bundle directory it came from."""

    root: Path
    format_version: int
    toolkit_version: str
    classes: list[str]
    latent_dim: int
    fingerprint: int
    modalities: list[ModalityEntry]
    aggregator: AggregatorEntry
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.modalities]

    def modality(self, key: str | int) -> ModalityEntry:
        for m in self.modalities:
            if key in (m.name, m.id):
                return m
        raise UsageError(f"unknown modality {key!r}; the bundle has {', '.join(self.names)}.")

    def path(self, rel: str) -> Path:
        return self.root / rel


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fingerprint_of(hashes: list[str]) -> int:
    """u32 fingerprint of a bundle: first 4 bytes (little-endian) of sha256 over sorted hashes."""
    digest = hashlib.sha256("".join(sorted(hashes)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def to_json(m: Manifest) -> dict[str, Any]:
    """The JSON object written as manifest.json (root excluded)."""
    mods = []
    for e in m.modalities:
        d = asdict(e)
        d["quantization"] = {"input": d.pop("input_quant"), "latent": d.pop("latent_quant")}
        mods.append(d)
    return {
        "format": BUNDLE_FORMAT,
        "format_version": m.format_version,
        "toolkit_version": m.toolkit_version,
        "classes": m.classes,
        "latent_dim": m.latent_dim,
        "fingerprint": m.fingerprint,
        "fingerprint_hex": f"{m.fingerprint:08x}",
        "modalities": mods,
        "aggregator": asdict(m.aggregator),
        **m.extra,
    }


def from_json(obj: dict[str, Any], root: Path) -> Manifest:
    """Parse a manifest object; a malformed one raises UsageError naming the bad field."""
    if obj.get("format") != BUNDLE_FORMAT:
        raise UsageError(
            f"{root} is not a crossl-edge bundle (manifest format {obj.get('format')!r})."
        )
    if obj.get("format_version") != BUNDLE_FORMAT_VERSION:
        raise UsageError(
            f"bundle format {obj.get('format_version')} is not supported (this toolkit "
            f"reads {BUNDLE_FORMAT_VERSION}); re-export it with this version."
        )
    try:
        mods = [
            ModalityEntry(
                name=d["name"],
                id=int(d["id"]),
                channels=list(d["channels"]),
                window=int(d["window"]),
                sample_rate_hz=float(d["sample_rate_hz"]),
                normalization=d["normalization"],
                layout=d["layout"],
                artifacts=dict(d["artifacts"]),
                sha256=dict(d["sha256"]),
                input_quant=QParams(**d["quantization"]["input"]),
                latent_quant=QParams(**d["quantization"]["latent"]),
                onnx_layout=d.get("onnx_layout", "NCW"),
                stats=d.get("stats", {}),
            )
            for d in obj["modalities"]
        ]
        agg = AggregatorEntry(**obj["aggregator"])
        known = {
            "format",
            "format_version",
            "toolkit_version",
            "classes",
            "latent_dim",
            "fingerprint",
            "fingerprint_hex",
            "modalities",
            "aggregator",
        }
        return Manifest(
            root,
            int(obj["format_version"]),
            str(obj["toolkit_version"]),
            list(obj["classes"]),
            int(obj["latent_dim"]),
            int(obj["fingerprint"]),
            mods,
            agg,
            {k: v for k, v in obj.items() if k not in known},
        )
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(
            f"{root / MANIFEST} is malformed ({type(e).__name__}: {e}); re-export the bundle."
        ) from e


def load_manifest(bundle: str | Path, *, verify: bool = True) -> Manifest:
    """Read BUNDLE/manifest.json; with ``verify`` check every artifact's sha256."""
    root = Path(bundle)
    f = root / MANIFEST
    if not f.is_file():
        raise UsageError(
            f"{root} is not a bundle (no {MANIFEST}); create one with "
            "`crossl-edge export RUN --out BUNDLE`."
        )
    try:
        obj = json.loads(f.read_text())
    except ValueError as e:
        raise UsageError(f"{f} is not valid JSON; re-export the bundle.") from e
    m = from_json(obj, root)
    if verify:
        verify_hashes(m)
    return m


def verify_hashes(m: Manifest) -> None:
    """Fail (exit 1) if an artifact is missing or its bytes differ from the manifest's sha256."""
    entries = [(e.artifacts, e.sha256) for e in m.modalities] + [
        (m.aggregator.artifacts, m.aggregator.sha256)
    ]
    for artifacts, hashes in entries:
        for kind, rel in artifacts.items():
            p = m.path(rel)
            if not p.is_file():
                raise CheckFailed(f"bundle file {rel} is missing; re-export the bundle.")
            if file_sha256(p) != hashes.get(kind):
                raise CheckFailed(
                    f"bundle file {rel} does not match its sha256 in the manifest "
                    "(corrupt or edited); re-export the bundle."
                )
