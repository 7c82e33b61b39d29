"""The bundle manifest (manifest.json): read, validate, hash-check; numpy only (runtime path).

A bundle = per-modality encoders + a phone model + this manifest, enough for a third party to go
from a raw sensor window to a prediction with only a TFLite or ONNX runtime.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from crossl_edge.bundle_records import EncoderStats, Provenance
from crossl_edge.devices import DeviceEntry, DeviceMapError, default_devices, devices_from_json
from crossl_edge.errors import CheckFailed, UsageError

BUNDLE_FORMAT = "crossl-edge-bundle"
BUNDLE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARTIFACT_KINDS = ("onnx", "onnx_int8", "tflite", "tflite_int8")
PHONE_KINDS = ("onnx", "tflite")
PHONE_INPUTS = ["latents", "present"]
LAYOUTS = {"layout": ("NWC",), "onnx_layout": ("NCW",)}
MAX_MODALITY_ID = 255  # the frame header carries the id in one byte


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
    stats: EncoderStats = field(default_factory=EncoderStats)  # params, MACs, sizes, arena...
    quant_extra: dict[str, Any] = field(default_factory=dict)  # other keys of "quantization"

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
    provenance: Provenance = field(default_factory=Provenance)  # source, samples, calibration

    devices: list[DeviceEntry] = field(default_factory=list)  # empty: one per modality

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.modalities]

    @property
    def device_map(self) -> list[DeviceEntry]:
        """The devices and the modalities each carries (one device per modality when the
        manifest has no ``devices`` key)."""
        return list(self.devices) or default_devices(self.names)

    def modality(self, key: str | int) -> ModalityEntry:
        for m in self.modalities:
            if key in (m.name, m.id):
                return m
        raise UsageError(f"unknown modality {key!r}; the bundle has {', '.join(self.names)}.")

    def path(self, rel: str) -> Path:
        return self.root / rel


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


FINGERPRINT_KEYS = ("fingerprint", "fingerprint_hex")


def manifest_fingerprint(obj: dict[str, Any]) -> int:
    """u32 fingerprint of a bundle: the first 4 bytes (little-endian) of the sha256 of the
    canonical manifest JSON without its fingerprint fields. The manifest holds every artifact's
    and the samples' sha256, so the fingerprint covers the whole bundle, manifest included."""
    body = {k: v for k, v in obj.items() if k not in FINGERPRINT_KEYS}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def seal(m: Manifest) -> Manifest:
    """``m`` with its fingerprint computed over its own JSON (call last, before writing)."""
    obj = json.loads(json.dumps(to_json(m)))
    return dataclasses.replace(m, fingerprint=manifest_fingerprint(obj))


def to_json(m: Manifest) -> dict[str, Any]:
    """The JSON object written as manifest.json (root excluded)."""
    mods = []
    for e in m.modalities:
        d = asdict(e)
        d["stats"] = e.stats.to_json()
        extra_q = d.pop("quant_extra")
        d["quantization"] = {**extra_q, "input": d.pop("input_quant"),
                             "latent": d.pop("latent_quant")}
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
        **({"devices": [d.to_json() for d in m.devices]} if m.devices else {}),
        **m.provenance.to_json(),
    }


def from_json(obj: Any, root: Path) -> Manifest:
    """Parse and validate a manifest object; anything malformed is one UsageError sentence."""
    if not isinstance(obj, dict):
        raise UsageError(f"{root / MANIFEST} holds a JSON {type(obj).__name__}, not an object; "
                         "re-export the bundle.")
    if obj.get("format") != BUNDLE_FORMAT:
        raise UsageError(
            f"{root} is not a crossl-edge bundle (manifest format {obj.get('format')!r})."
        )
    if obj.get("format_version") != BUNDLE_FORMAT_VERSION:
        raise UsageError(
            f"bundle format {obj.get('format_version')} is not supported (this toolkit "
            f"reads {BUNDLE_FORMAT_VERSION}); re-export it with this version."
        )
    return _with_devices(_parse(obj, root), obj)


def load_manifest(bundle: str | Path, *, verify: bool = True) -> Manifest:
    """Read and validate BUNDLE/manifest.json. With ``verify`` (every reader but report tools),
    also check the fingerprint and every artifact's and the samples' sha256. Pure: no model is
    opened here; `crossl_edge.runtime.bundle.open_bundle` adds the model-shape check."""
    root = Path(bundle)
    f = root / MANIFEST
    if not f.is_file():
        raise UsageError(
            f"{root} is not a bundle (no {MANIFEST}); create one with "
            "`crossl-edge export RUN --out BUNDLE`."
        )
    try:
        obj = json.loads(f.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"{f} is not valid JSON; re-export the bundle.") from e
    m = from_json(obj, root)
    if verify:
        if manifest_fingerprint(obj) != m.fingerprint:
            raise CheckFailed(f"{f} does not match its fingerprint (edited or corrupt); "
                              "re-export the bundle.")
        verify_hashes(m)
    return m


def verify_hashes(m: Manifest) -> None:
    """Fail (exit 1) if an artifact or the samples file is missing or differs from its sha256."""
    entries = [(e.artifacts, e.sha256) for e in m.modalities] + [
        (m.aggregator.artifacts, m.aggregator.sha256)
    ]
    samples = m.provenance.samples
    if samples is not None and samples.sha256 is not None and samples.path is not None:
        entries.append(({"samples": samples.path}, {"samples": samples.sha256}))
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


class _Bad(Exception):
    """A field of the manifest is malformed: the message names it and says what it must be."""


def _get(d: Any, key: str, where: str) -> Any:
    if not isinstance(d, dict):
        raise _Bad(f"{where} must be an object")
    if key not in d:
        raise _Bad(f"{where} lacks {key!r}")
    return d[key]


def _int(v: Any, where: str, lo: int, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
        raise _Bad(f"{where} must be an integer in {lo}..{hi if hi is not None else ''}, "
                   f"not {v!r}")
    return v


def _num(v: Any, where: str, *, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or (
            positive and v <= 0):
        raise _Bad(f"{where} must be a {'positive ' if positive else ''}finite number, not {v!r}")
    return float(v)


def _strs(v: Any, where: str, *, n: int | None = None) -> list[str]:
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
        raise _Bad(f"{where} must be a non-empty list of names")
    if len(set(v)) != len(v):
        raise _Bad(f"{where} has duplicates")
    if n is not None and len(v) != n:
        raise _Bad(f"{where} must have {n} entries, not {len(v)}")
    return list(v)


def _nums(v: Any, where: str, n: int, *, positive: bool = False) -> list[float]:
    if not isinstance(v, list) or len(v) != n:
        raise _Bad(f"{where} must be a list of {n} numbers (one per channel)")
    return [_num(x, f"{where}[{i}]", positive=positive) for i, x in enumerate(v)]


def _qparams(d: Any, where: str) -> QParams:
    return QParams(_num(_get(d, "scale", where), f"{where}.scale", positive=True),
                   _int(_get(d, "zero_point", where), f"{where}.zero_point", -128, 127))


def _files(arts: Any, hashes: Any, where: str, kinds: tuple[str, ...]) -> tuple[dict, dict]:
    if not isinstance(arts, dict) or not isinstance(hashes, dict):
        raise _Bad(f"{where}.artifacts and .sha256 must be objects")
    for kind, rel in arts.items():
        if kind not in kinds:
            raise _Bad(f"{where}.artifacts has unknown kind {kind!r} (known: {', '.join(kinds)})")
        p = PurePosixPath(rel) if isinstance(rel, str) else None
        if p is None or not rel or p.is_absolute() or ".." in p.parts:
            raise _Bad(f"{where}.artifacts.{kind} must be a path inside the bundle, not {rel!r}")
        if not isinstance(hashes.get(kind), str):
            raise _Bad(f"{where}.sha256 lacks {kind!r}")
    return dict(arts), dict(hashes)


def _modality(d: Any, where: str) -> ModalityEntry:
    name = _get(d, "name", where)
    if not isinstance(name, str) or not name or "/" in name:
        raise _Bad(f"{where}.name must be a non-empty name without '/', not {name!r}")
    where = f"modality {name!r}"
    channels = _strs(_get(d, "channels", where), f"{where}.channels")
    norm = _get(d, "normalization", where)
    for k in LAYOUTS:
        if d.get(k, LAYOUTS[k][0]) not in LAYOUTS[k]:
            raise _Bad(f"{where}.{k} must be {' or '.join(LAYOUTS[k])}, not {d.get(k)!r}")
    q = _get(d, "quantization", where)
    arts, hashes = _files(_get(d, "artifacts", where), _get(d, "sha256", where), where,
                          ARTIFACT_KINDS)
    if not arts:
        raise _Bad(f"{where}.artifacts is empty")
    stats = d.get("stats", {})
    return ModalityEntry(
        name=name, id=_int(_get(d, "id", where), f"{where}.id", 0, MAX_MODALITY_ID),
        channels=channels, window=_int(_get(d, "window", where), f"{where}.window", 1),
        sample_rate_hz=_num(_get(d, "sample_rate_hz", where), f"{where}.sample_rate_hz",
                            positive=True),
        normalization={"mean": _nums(_get(norm, "mean", f"{where}.normalization"),
                                     f"{where}.normalization.mean", len(channels)),
                       "std": _nums(_get(norm, "std", f"{where}.normalization"),
                                    f"{where}.normalization.std", len(channels), positive=True)},
        layout=d.get("layout", "NWC"), artifacts=arts, sha256=hashes,
        input_quant=_qparams(_get(q, "input", f"{where}.quantization"),
                             f"{where}.quantization.input"),
        latent_quant=_qparams(_get(q, "latent", f"{where}.quantization"),
                              f"{where}.quantization.latent"),
        onnx_layout=d.get("onnx_layout", "NCW"),
        stats=EncoderStats.from_json(stats),
        quant_extra={k: v for k, v in q.items() if k not in ("input", "latent")})


KNOWN_KEYS = {"format", "format_version", "toolkit_version", "classes", "latent_dim",
              "fingerprint", "fingerprint_hex", "modalities", "aggregator", "devices"}


def _with_devices(m: Manifest, obj: dict[str, Any]) -> Manifest:
    """``m`` with the manifest's ``devices`` key parsed and checked (absent: none, which
    ``device_map`` reads as one device per modality)."""
    if "devices" not in obj:
        return m
    try:
        devices = devices_from_json(obj["devices"], m.names)
    except DeviceMapError as e:
        raise UsageError(f"{m.root / MANIFEST} is malformed: devices: {e}; re-export the "
                         "bundle.") from e
    return dataclasses.replace(m, devices=devices)


def _parse(obj: dict[str, Any], root: Path) -> Manifest:
    try:
        mods_in = _get(obj, "modalities", "the manifest")
        if not isinstance(mods_in, list) or not mods_in:
            raise _Bad("'modalities' must be a non-empty list")
        mods = [_modality(d, f"modalities[{i}]") for i, d in enumerate(mods_in)]
        for what in ("name", "id"):
            seen = [getattr(m, what) for m in mods]
            if len(set(seen)) != len(seen):
                raise _Bad(f"two modalities share the same {what} ({seen})")
        a = _get(obj, "aggregator", "the manifest")
        arts, hashes = _files(_get(a, "artifacts", "aggregator"), _get(a, "sha256", "aggregator"),
                              "aggregator", PHONE_KINDS)
        if a.get("inputs", PHONE_INPUTS) != PHONE_INPUTS or not isinstance(a.get("output", ""),
                                                                           str):
            raise _Bad(f"aggregator.inputs must be {PHONE_INPUTS} and output a name")
        agg = AggregatorEntry(arts, hashes, list(a.get("inputs", PHONE_INPUTS)),
                              a.get("output", "logits"))
        fp = _int(_get(obj, "fingerprint", "the manifest"), "fingerprint", 0, 0xFFFFFFFF)
        if obj.get("fingerprint_hex", f"{fp:08x}") != f"{fp:08x}":
            raise _Bad(f"fingerprint_hex {obj.get('fingerprint_hex')!r} is not {fp:08x}")
        samples = obj.get("samples")
        if samples is not None:
            _files({"samples": _get(samples, "path", "samples")},
                   {"samples": _get(samples, "sha256", "samples")}, "samples", ("samples",))
        return Manifest(root, BUNDLE_FORMAT_VERSION, str(obj.get("toolkit_version", "")),
                        _strs(_get(obj, "classes", "the manifest"), "classes"),
                        _int(_get(obj, "latent_dim", "the manifest"), "latent_dim", 1), fp,
                        mods, agg,
                        Provenance.from_json({k: v for k, v in obj.items() if k not in KNOWN_KEYS}))
    except _Bad as e:
        raise UsageError(f"{root / MANIFEST} is malformed: {e}; re-export the bundle.") from e
