"""A node's hello (node -> phone): "I am up, send me a beacon"; field table and codec (stdlib).

Same conventions as frames and beacons (little-endian, CRC-32 trailer, bytes 0-2 magic + version);
magic "CH". A node sends one every HELLO_INTERVAL_US from boot until its first valid beacon.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Final

from .fields import Field, FrameError, FrameErrorReason, check_int, field_offsets

HELLO_MAGIC: Final[bytes] = b"CH"
HELLO_VERSION: Final[int] = 2           # introduced with frame format v2
HELLO_INTERVAL_US: Final[int] = 1_000_000   # a node repeats its hello this often until synced
HELLO_FIELDS: Final[tuple[Field, ...]] = (
    Field("magic", "2s", 'ASCII "CH"; identifies a crossl node hello.', const=HELLO_MAGIC),
    Field("version", "B", "Hello version (2, with frame format v2).", const=HELLO_VERSION),
    Field("flags", "B", "Reserved, 0; the phone ignores a hello with bits 4-7 set."),
    Field("boot", "H", "The node's boot counter, as in its version 2 frames."),
    Field("hello_seq", "H", "Hello counter since boot (wraps); for diagnostics."),
    Field("fingerprint", "I", "fingerprint32 of the bundle the node runs."),
    Field("local_us", "Q", "Node clock (microseconds, monotonic) when the hello was sent."),
)
HELLO_OFFSETS: Final[dict[str, int]] = field_offsets(HELLO_FIELDS)
HELLO_HEADER_SIZE: Final[int] = sum(f.size for f in HELLO_FIELDS)
HELLO_SIZE: Final[int] = HELLO_HEADER_SIZE + 4
_STRUCT = struct.Struct("<" + "".join(f.fmt for f in HELLO_FIELDS))
_CRC = struct.Struct("<I")
assert HELLO_SIZE == 24 == _STRUCT.size + 4


@dataclass(frozen=True)
class Hello:
    """One node hello; every field is range-checked on construction."""

    fingerprint: int
    boot: int = 0
    hello_seq: int = 0
    local_us: int = 0
    flags: int = 0

    def __post_init__(self) -> None:
        for f in HELLO_FIELDS:
            if f.const is None:
                hi = (1 << (8 * f.size)) - 1
                object.__setattr__(self, f.name, check_int(f.name, getattr(self, f.name), hi))
        if self.flags & 0xF0:
            raise FrameError(FrameErrorReason.BAD_FLAGS, f"hello flags=0x{self.flags:02x}: "
                             "critical bits are undefined")


def is_hello(buf: bytes | bytearray | memoryview) -> bool:
    """True when ``buf`` starts with the hello magic (decode it to know whether it is valid)."""
    return bytes(buf[:2]) == HELLO_MAGIC


def encode_hello(h: Hello) -> bytes:
    """The 24 wire bytes of ``h``."""
    values = {f.name: f.const if f.const is not None else getattr(h, f.name)
              for f in HELLO_FIELDS}
    body = _STRUCT.pack(*(values[f.name] for f in HELLO_FIELDS))
    return body + _CRC.pack(zlib.crc32(body))


def decode_hello(buf: bytes | bytearray | memoryview) -> Hello:
    """Parse exactly one hello; checks, in order: too short, magic, version, too long, CRC,
    flags (the beacon's order: a later version may be longer, so length is judged after it)."""
    data = bytes(buf)
    if len(data) < HELLO_SIZE:
        raise FrameError(FrameErrorReason.TRUNCATED, f"{len(data)} bytes: a hello has "
                         f"{HELLO_SIZE}")
    if data[:2] != HELLO_MAGIC:
        raise FrameError(FrameErrorReason.BAD_MAGIC, f"magic {data[:2]!r} is not a hello's")
    if data[2] != HELLO_VERSION:
        raise FrameError(FrameErrorReason.UNKNOWN_VERSION, f"hello version {data[2]}; this "
                         f"decoder understands {HELLO_VERSION}")
    if len(data) > HELLO_SIZE:
        raise FrameError(FrameErrorReason.LENGTH_MISMATCH, f"{len(data)} bytes: a hello has "
                         f"{HELLO_SIZE}")
    (crc,) = _CRC.unpack_from(data, HELLO_HEADER_SIZE)
    if crc != zlib.crc32(data[:HELLO_HEADER_SIZE]):
        raise FrameError(FrameErrorReason.BAD_CRC, "hello CRC-32 does not match: corrupted")
    v = dict(zip((f.name for f in HELLO_FIELDS), _STRUCT.unpack_from(data), strict=True))
    if v["flags"] & 0xF0:
        raise FrameError(FrameErrorReason.BAD_FLAGS, f"hello flags=0x{v['flags']:02x}")
    return Hello(fingerprint=v["fingerprint"], boot=v["boot"], hello_seq=v["hello_seq"],
                 local_us=v["local_us"], flags=v["flags"])
