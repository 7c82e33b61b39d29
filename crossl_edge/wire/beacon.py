"""The phone's sync beacon (phone -> nodes): field table and Python codec (stdlib only).

Same conventions as the latent frame (little-endian, CRC-32 trailer, bytes 0-2 magic + version);
its own magic "CB" so a receiver tells it from a latent frame ("CL") by the first two bytes.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Final

from .fields import Field, FrameError, FrameErrorReason, check_int, field_offsets

BEACON_MAGIC: Final[bytes] = b"CB"
BEACON_VERSION: Final[int] = 2          # introduced with frame format v2
BEACON_FIELDS: Final[tuple[Field, ...]] = (
    Field("magic", "2s", 'ASCII "CB"; identifies a crossl sync beacon.', const=BEACON_MAGIC),
    Field("version", "B", "Beacon version (2, with frame format v2).", const=BEACON_VERSION),
    Field("flags", "B", "Reserved, 0; a node ignores a beacon with bits 4-7 set."),
    Field("epoch", "H", "Sync epoch: a new value whenever the phone's grid restarts."),
    Field("beacon_seq", "H", "Beacon counter within the epoch (wraps); for diagnostics."),
    Field("phone_time_us", "Q", "Phone clock (microseconds, monotonic) when the beacon was sent."),
    Field("origin_us", "Q", "Phone time of grid sample 0 of this epoch (window 0 starts there)."),
    Field("fingerprint", "I", "fingerprint32 of the bundle the phone runs."),
)
BEACON_OFFSETS: Final[dict[str, int]] = field_offsets(BEACON_FIELDS)
BEACON_HEADER_SIZE: Final[int] = sum(f.size for f in BEACON_FIELDS)
BEACON_SIZE: Final[int] = BEACON_HEADER_SIZE + 4
_STRUCT = struct.Struct("<" + "".join(f.fmt for f in BEACON_FIELDS))
_CRC = struct.Struct("<I")
assert BEACON_SIZE == 32 == _STRUCT.size + 4


@dataclass(frozen=True)
class Beacon:
    """One sync beacon; every field is range-checked on construction."""

    epoch: int
    phone_time_us: int
    origin_us: int
    fingerprint: int
    beacon_seq: int = 0
    flags: int = 0

    def __post_init__(self) -> None:
        for f in BEACON_FIELDS:
            if f.const is None:
                hi = (1 << (8 * f.size)) - 1
                object.__setattr__(self, f.name, check_int(f.name, getattr(self, f.name), hi))
        if self.flags & 0xF0:
            raise FrameError(FrameErrorReason.BAD_FLAGS, f"beacon flags=0x{self.flags:02x}: "
                             "critical bits are undefined")


def encode_beacon(b: Beacon) -> bytes:
    """The 32 wire bytes of ``b``."""
    values = {f.name: f.const if f.const is not None else getattr(b, f.name)
              for f in BEACON_FIELDS}
    body = _STRUCT.pack(*(values[f.name] for f in BEACON_FIELDS))
    return body + _CRC.pack(zlib.crc32(body))


def decode_beacon(buf: bytes | bytearray | memoryview) -> Beacon:
    """Parse exactly one beacon; checks: size, magic, version, CRC, flags (in this order)."""
    data = bytes(buf)
    if len(data) < BEACON_SIZE:
        raise FrameError(FrameErrorReason.TRUNCATED, f"{len(data)} bytes: a beacon has "
                         f"{BEACON_SIZE}")
    if data[:2] != BEACON_MAGIC:
        raise FrameError(FrameErrorReason.BAD_MAGIC, f"magic {data[:2]!r} is not a beacon's")
    if data[2] != BEACON_VERSION:
        raise FrameError(FrameErrorReason.UNKNOWN_VERSION, f"beacon version {data[2]}; this "
                         f"decoder understands {BEACON_VERSION}")
    if len(data) > BEACON_SIZE:
        raise FrameError(FrameErrorReason.LENGTH_MISMATCH, f"{len(data)} bytes: a beacon has "
                         f"{BEACON_SIZE}")
    (crc,) = _CRC.unpack_from(data, BEACON_HEADER_SIZE)
    if crc != zlib.crc32(data[:BEACON_HEADER_SIZE]):
        raise FrameError(FrameErrorReason.BAD_CRC, "beacon CRC-32 does not match: corrupted")
    h = dict(zip((f.name for f in BEACON_FIELDS), _STRUCT.unpack_from(data), strict=True))
    if h["flags"] & 0xF0:
        raise FrameError(FrameErrorReason.BAD_FLAGS, f"beacon flags=0x{h['flags']:02x}")
    return Beacon(epoch=h["epoch"], phone_time_us=h["phone_time_us"], origin_us=h["origin_us"],
                  fingerprint=h["fingerprint"], beacon_seq=h["beacon_seq"], flags=h["flags"])

