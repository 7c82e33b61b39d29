"""Packed little-endian field records and the error type of every wire codec (the ground floor).

Frames, beacons and COBS share these: one `Field`, one offset table, one integer check.
"""

from __future__ import annotations

import enum
import operator
import struct
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Field:
    """One little-endian header field; `fmt` is its struct code, `const` a fixed value."""

    name: str
    fmt: str
    doc: str
    const: int | bytes | None = None

    @property
    def size(self) -> int:
        return struct.calcsize("<" + self.fmt)


def field_offsets(fields: tuple[Field, ...]) -> dict[str, int]:
    """Byte offset of each field of a packed little-endian layout."""
    offsets, off = {}, 0
    for f in fields:
        offsets[f.name] = off
        off += f.size
    return offsets



class FrameErrorReason(enum.IntEnum):
    """Why a frame was rejected; the value is the C status code (CROSSL_FRAME_ERR_*)."""

    TRUNCATED = -1
    BAD_MAGIC = -2
    UNKNOWN_VERSION = -3
    BAD_DTYPE = -4
    LENGTH_MISMATCH = -5
    BAD_CRC = -6
    BAD_FLAGS = -7
    BUFFER_TOO_SMALL = -8
    INVALID_ARGUMENT = -9
    BAD_COBS = -10



class FrameError(ValueError):
    """A frame could not be encoded or decoded; `.reason` says why, the message says what."""

    def __init__(self, reason: FrameErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def field_range(fmt: str) -> int:
    return (1 << (8 * struct.calcsize("<" + fmt))) - 1


def check_int(name: str, value: Any, hi: int) -> int:
    if isinstance(value, bool):
        raise FrameError(FrameErrorReason.INVALID_ARGUMENT, f"{name} must be an integer, not bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise FrameError(FrameErrorReason.INVALID_ARGUMENT,
                         f"{name} must be an integer, got {type(value).__name__}") from None
    if not 0 <= v <= hi:
        raise FrameError(FrameErrorReason.INVALID_ARGUMENT,
                         f"{name}={v} out of range: it must fit 0..{hi}")
    return v
