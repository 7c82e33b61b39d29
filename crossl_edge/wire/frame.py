"""Latent frame formats v1 and v2: the one field definition and the Python codec (numpy only).

`frame_c.py` (C99 header) and `frame_doc.py` (FRAME_FORMAT.md) are generated from the tables here;
v2 adds the time base (grid window, sync epoch, node boot), see `timebase.py` and `beacon.py`.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from .fields import (
    Field,
    FrameError,
    FrameErrorReason,
    check_int,
    field_offsets,
    field_range,
)

FORMAT_VERSION: Final[int] = 1          # the original format; frames of it never change
FORMAT_VERSION_V2: Final[int] = 2       # adds window/epoch/boot: nodes aligned to phone beacons
VERSIONS: Final[tuple[int, ...]] = (FORMAT_VERSION, FORMAT_VERSION_V2)
MAGIC: Final[bytes] = b"CL"
CRC32_POLY_REFLECTED: Final[int] = 0xEDB88320  # CRC-32/ISO-HDLC, the one zlib.crc32 computes
FLAGS_CRITICAL_MASK: Final[int] = 0xF0  # bits 4-7: a decoder must understand them or reject
FLAGS_ANCILLARY_MASK: Final[int] = 0x0F  # bits 0-3: a decoder ignores the ones it does not know
MAX_LATENT_LENGTH: Final[int] = 0xFFFF


FIELDS: Final[tuple[Field, ...]] = (
    Field("magic", "2s", 'ASCII "CL"; identifies a crossl latent frame.', const=MAGIC),
    Field("version", "B", "Frame format version; this document describes 1.", const=FORMAT_VERSION),
    Field("modality_id", "B", "Modality `id` from the bundle manifest's `modalities` list."),
    Field("dtype", "B", "Element type of the latent (see the dtype table)."),
    Field("flags", "B", "Bits 0-3 ancillary, bits 4-7 critical; all reserved (0) in v1."),
    Field("length", "H", "Latent length in elements (1..65535), not bytes."),
    Field("seq", "I", "Window sequence number; wraps modulo 2^32; gaps mean lost windows."),
    Field("timestamp_us", "Q", "Node clock at the window's end, microseconds (monotonic)."),
    Field("fingerprint", "I", "32 bits of the bundle manifest's `fingerprint` (fingerprint32)."),
)
FIELDS_V2: Final[tuple[Field, ...]] = (
    FIELDS[0],
    Field("version", "B", "Frame format version; 2 for these fields.", const=FORMAT_VERSION_V2),
    *FIELDS[2:6],
    Field("seq", "I", "The node's own window counter since it booted; wraps modulo 2^32; gaps "
          "mean lost windows."),
    FIELDS[7], FIELDS[8],
    Field("window", "I", "Index of the window on the phone's grid of this epoch (time base)."),
    Field("epoch", "H", "Sync epoch of the phone beacon the node is aligned to."),
    Field("boot", "H", "Node boot counter: changes at every restart of the node."),
)
TRAILER_FIELDS: Final[tuple[Field, ...]] = (
    Field("crc32", "I", "CRC-32 (IEEE, = zlib.crc32) of every byte before it."),
)
FIELDS_BY_VERSION: Final[dict[int, tuple[Field, ...]]] = {1: FIELDS, 2: FIELDS_V2}


OFFSETS_BY_VERSION: Final[dict[int, dict[str, int]]] = {
    v: field_offsets(fs) for v, fs in FIELDS_BY_VERSION.items()}
OFFSETS: Final[dict[str, int]] = OFFSETS_BY_VERSION[1]
TRAILER_SIZE: Final[int] = sum(f.size for f in TRAILER_FIELDS)
HEADER_SIZE_BY_VERSION: Final[dict[int, int]] = {
    v: sum(f.size for f in fs) for v, fs in FIELDS_BY_VERSION.items()}
OVERHEAD_BY_VERSION: Final[dict[int, int]] = {
    v: h + TRAILER_SIZE for v, h in HEADER_SIZE_BY_VERSION.items()}
HEADER_SIZE: Final[int] = HEADER_SIZE_BY_VERSION[1]
OVERHEAD: Final[int] = OVERHEAD_BY_VERSION[1]      # the smallest overhead of any version
_HEADERS = {v: struct.Struct("<" + "".join(f.fmt for f in fs))
            for v, fs in FIELDS_BY_VERSION.items()}
_HEADER = _HEADERS[1]
_CRC = struct.Struct("<I")
assert _HEADER.size == HEADER_SIZE == 24 and OVERHEAD == 28
assert HEADER_SIZE_BY_VERSION[2] == 32 and OVERHEAD_BY_VERSION[2] == 36


class LatentDType(enum.IntEnum):
    """Wire code of the latent element type."""

    INT8 = 0
    INT16 = 1
    FLOAT32 = 2

    @property
    def wire(self) -> np.dtype:
        """Little-endian numpy dtype of the elements on the wire."""
        return np.dtype(_DTYPE_WIRE[self])

    @property
    def itemsize(self) -> int:
        return self.wire.itemsize

    @classmethod
    def parse(cls, value: Any) -> LatentDType:
        """Accept a LatentDType, its wire code, its name ("int8") or a numpy dtype."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            try:
                return cls(int(value))
            except ValueError:
                pass
        try:
            dt = np.dtype(value)
        except TypeError:
            dt = None
        for member in cls:
            if dt is not None and (dt.kind, dt.itemsize) == (member.wire.kind, member.itemsize):
                return member
        raise FrameError(FrameErrorReason.BAD_DTYPE, f"unsupported latent dtype {value!r}; "
                         f"use one of {', '.join(m.name.lower() for m in cls)}")


_DTYPE_WIRE: Final[dict[int, str]] = {0: "<i1", 1: "<i2", 2: "<f4"}
DTYPE_DOCS: Final[dict[LatentDType, str]] = {
    LatentDType.INT8: "int8, as a full-int8 encoder emits it (scale/zero point: manifest)",
    LatentDType.INT16: "int16 latent (16x8 quantized encoders)",
    LatentDType.FLOAT32: "IEEE-754 binary32 latent (float encoders, debugging)",
}


REASON_DOCS: Final[dict[FrameErrorReason, str]] = {
    FrameErrorReason.TRUNCATED: "fewer bytes than the header or the declared latent needs",
    FrameErrorReason.BAD_MAGIC: 'first two bytes are not "CL"',
    FrameErrorReason.UNKNOWN_VERSION: "version byte is not one this decoder implements",
    FrameErrorReason.BAD_DTYPE: "dtype code is not in the dtype table",
    FrameErrorReason.LENGTH_MISMATCH: "declared length is 0, or bytes follow the CRC",
    FrameErrorReason.BAD_CRC: "CRC-32 does not match (corruption)",
    FrameErrorReason.BAD_FLAGS: "a critical flag bit (4-7) is set that this decoder does not know",
    FrameErrorReason.BUFFER_TOO_SMALL: "(encoders, C) output buffer too small",
    FrameErrorReason.INVALID_ARGUMENT: "(encoders) a field is out of range, or a NULL pointer (C)",
    FrameErrorReason.BAD_COBS: "(serial) COBS packet malformed",
}
# The order in which a decoder checks a buffer; the first failing check names the reason.
DECODE_CHECKS: Final[tuple[tuple[FrameErrorReason, str], ...]] = (
    (FrameErrorReason.TRUNCATED, f"buffer shorter than OVERHEAD of v1 ({OVERHEAD} bytes)"),
    (FrameErrorReason.BAD_MAGIC, 'bytes 0-1 differ from "CL"'),
    (FrameErrorReason.UNKNOWN_VERSION, "byte 2 is neither 1 nor 2"),
    (FrameErrorReason.TRUNCATED, f"(v2) buffer shorter than OVERHEAD of v2 "
                                 f"({OVERHEAD_BY_VERSION[2]} bytes)"),
    (FrameErrorReason.BAD_DTYPE, "dtype not in the dtype table"),
    (FrameErrorReason.LENGTH_MISMATCH, "length field is 0"),
    (FrameErrorReason.TRUNCATED, "buffer shorter than OVERHEAD + length * itemsize"),
    (FrameErrorReason.LENGTH_MISMATCH, "buffer longer than OVERHEAD + length * itemsize"),
    (FrameErrorReason.BAD_CRC, "CRC-32 of bytes [0, size-4) differs from the last 4 bytes"),
    (FrameErrorReason.BAD_FLAGS, "flags & 0xF0 has a bit this decoder does not know (all, in "
                                 "v1 and v2)"),
)


@dataclass(frozen=True, eq=False)
class LatentFrame:
    """One window's latent vector from one modality; `latent` is a read-only 1-D array."""

    modality_id: int
    seq: int
    timestamp_us: int
    fingerprint: int
    dtype: LatentDType
    latent: np.ndarray
    flags: int = 0
    version: int = FORMAT_VERSION
    window: int = 0     # v2: grid window index
    epoch: int = 0      # v2: sync epoch
    boot: int = 0       # v2: node boot counter

    def __post_init__(self) -> None:
        # Same order as crossl_frame_encode: dtype, latent length, field ranges, flags.
        dtype = LatentDType.parse(self.dtype)
        arr = np.asarray(self.latent)
        if arr.ndim != 1:
            raise FrameError(FrameErrorReason.INVALID_ARGUMENT,
                             f"latent must be 1-D, got shape {arr.shape}")
        if not 1 <= arr.size <= MAX_LATENT_LENGTH:
            raise FrameError(FrameErrorReason.INVALID_ARGUMENT,
                             f"latent has {arr.size} elements; a frame holds "
                             f"1..{MAX_LATENT_LENGTH}")
        if (arr.dtype.kind, arr.dtype.itemsize) != (dtype.wire.kind, dtype.itemsize):
            raise FrameError(FrameErrorReason.INVALID_ARGUMENT,
                             f"latent dtype {arr.dtype} does not match dtype "
                             f"{dtype.name.lower()}; cast (or quantize) it explicitly")
        if self.version not in VERSIONS:
            raise FrameError(FrameErrorReason.UNKNOWN_VERSION, f"version={self.version!r}: "
                             f"this codec writes {' or '.join(map(str, VERSIONS))}")
        if self.version == FORMAT_VERSION and (self.window, self.epoch, self.boot) != (0, 0, 0):
            raise FrameError(FrameErrorReason.INVALID_ARGUMENT, "window, epoch and boot exist "
                             "in version 2 frames only; pass version=2")
        for f in FIELDS_V2:
            if f.const is None and f.name not in ("dtype", "length"):
                object.__setattr__(self, f.name,
                                   check_int(f.name, getattr(self, f.name), field_range(f.fmt)))
        if self.flags & FLAGS_CRITICAL_MASK:
            raise FrameError(FrameErrorReason.BAD_FLAGS, f"flags=0x{self.flags:02x}: critical "
                             f"bits (mask 0x{FLAGS_CRITICAL_MASK:02x}) are undefined in v1")
        arr = arr.astype(dtype.wire.newbyteorder("="), copy=True)
        arr.flags.writeable = False
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "latent", arr)

    def _key(self) -> tuple[Any, ...]:
        return (self.modality_id, self.seq, self.timestamp_us, self.fingerprint, self.dtype,
                self.flags, self.latent.tobytes(), self.version, self.window, self.epoch,
                self.boot)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatentFrame):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def frame_size(n: int, dtype: LatentDType | str | int = LatentDType.INT8, *,
               version: int = FORMAT_VERSION) -> int:
    """Bytes of a frame of ``version`` holding `n` latent elements of `dtype`."""
    n = check_int("n", n, MAX_LATENT_LENGTH)
    if version not in OVERHEAD_BY_VERSION:
        raise FrameError(FrameErrorReason.UNKNOWN_VERSION, f"no frame format version {version}")
    return OVERHEAD_BY_VERSION[version] + n * LatentDType.parse(dtype).itemsize


def encode_frame(frame: LatentFrame) -> bytes:
    """Serialize `frame` (validated on construction) to wire bytes of its version, CRC included."""
    if not isinstance(frame, LatentFrame):
        raise TypeError(f"encode_frame expects a LatentFrame, got {type(frame).__name__}")
    fields = FIELDS_BY_VERSION[frame.version]
    values = {f.name: f.const for f in fields if f.const is not None}
    values.update(modality_id=frame.modality_id, dtype=int(frame.dtype), flags=frame.flags,
                  length=int(frame.latent.size), seq=frame.seq,
                  timestamp_us=frame.timestamp_us, fingerprint=frame.fingerprint,
                  window=frame.window, epoch=frame.epoch, boot=frame.boot)
    body = _HEADERS[frame.version].pack(*(values[f.name] for f in fields)) + frame.latent.astype(
        frame.dtype.wire, copy=False).tobytes()
    return body + _CRC.pack(zlib.crc32(body))


def decode_frame(buf: bytes | bytearray | memoryview) -> LatentFrame:
    """Parse one v1 or v2 frame (exactly one, nothing after it); raise FrameError with a reason."""
    data = bytes(buf)
    n = len(data)
    if n < OVERHEAD:
        raise FrameError(FrameErrorReason.TRUNCATED,
                         f"{n} bytes: a frame has at least {OVERHEAD}")
    if data[:len(MAGIC)] != MAGIC:
        raise FrameError(FrameErrorReason.BAD_MAGIC,
                         f"magic {data[:2]!r} is not {MAGIC!r}: not a crossl latent frame")
    version = data[OFFSETS["version"]]
    if version not in VERSIONS:
        raise FrameError(FrameErrorReason.UNKNOWN_VERSION,
                         f"frame format version {version}; this decoder understands "
                         f"{' and '.join(map(str, VERSIONS))} (update the phone app or the "
                         "node firmware)")
    overhead, header = OVERHEAD_BY_VERSION[version], HEADER_SIZE_BY_VERSION[version]
    if n < overhead:
        raise FrameError(FrameErrorReason.TRUNCATED,
                         f"{n} bytes: a v{version} frame has at least {overhead}")
    h = dict(zip((f.name for f in FIELDS_BY_VERSION[version]), _HEADERS[version].unpack_from(data),
                 strict=True))
    try:
        dtype = LatentDType(h["dtype"])
    except ValueError:
        raise FrameError(FrameErrorReason.BAD_DTYPE, f"unknown dtype code {h['dtype']}") from None
    count = h["length"]
    if count == 0:
        raise FrameError(FrameErrorReason.LENGTH_MISMATCH, "declared latent length is 0")
    need = overhead + count * dtype.itemsize
    if n < need:
        raise FrameError(FrameErrorReason.TRUNCATED,
                         f"{n} bytes, but {count} x {dtype.name.lower()} needs {need}")
    if n > need:
        raise FrameError(FrameErrorReason.LENGTH_MISMATCH,
                         f"{n} bytes, but {count} x {dtype.name.lower()} makes {need}: "
                         f"{n - need} trailing bytes")
    (crc,) = _CRC.unpack_from(data, n - TRAILER_SIZE)
    actual = zlib.crc32(memoryview(data)[: n - TRAILER_SIZE])
    if crc != actual:
        raise FrameError(FrameErrorReason.BAD_CRC,
                         f"CRC-32 0x{crc:08x} in frame, 0x{actual:08x} computed: corrupted")
    if h["flags"] & FLAGS_CRITICAL_MASK:
        raise FrameError(FrameErrorReason.BAD_FLAGS,
                         f"flags=0x{h['flags']:02x} sets critical bits unknown to v{version}")
    latent = np.frombuffer(data, dtype=dtype.wire, count=count, offset=header)
    return LatentFrame(modality_id=h["modality_id"], seq=h["seq"],
                       timestamp_us=h["timestamp_us"], fingerprint=h["fingerprint"],
                       dtype=dtype, latent=latent, flags=h["flags"], version=version,
                       window=h.get("window", 0), epoch=h.get("epoch", 0), boot=h.get("boot", 0))


def fingerprint32(fingerprint: str | int) -> int:
    """The u32 a frame carries for a manifest: its `fingerprint` (an int that fits u32) as is,
    or its `fingerprint_hex` (exactly 8 hex digits, that int in hex)."""
    if isinstance(fingerprint, str):
        text = fingerprint.strip().lower()
        if len(text) == 8 and all(c in "0123456789abcdef" for c in text):
            return int(text, 16)
        raise FrameError(FrameErrorReason.INVALID_ARGUMENT, f"fingerprint {fingerprint!r} is not "
                         "the manifest's 8-hex-digit fingerprint_hex")
    return check_int("fingerprint", fingerprint, 0xFFFFFFFF)
