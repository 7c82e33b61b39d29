"""Provenance digest of the wire definition tables (frames, beacons, time base constants).

Generated files (C header, FRAME_FORMAT.md) carry it so a stale copy is visible.
"""

from __future__ import annotations

import hashlib

from . import frame as F
from .beacon import BEACON_FIELDS, BEACON_MAGIC
from .fields import FrameErrorReason
from .hello import HELLO_FIELDS, HELLO_INTERVAL_US
from .timebase import TIMEBASE_CONSTANTS


def definition_digest() -> str:
    """Short sha256 of the definition tables: generated files carry it as provenance."""
    text = repr((F.FORMAT_VERSION, F.MAGIC, F.FIELDS, F.FIELDS_V2, F.TRAILER_FIELDS, BEACON_MAGIC,
                 BEACON_FIELDS, sorted(TIMEBASE_CONSTANTS.items()), sorted(F._DTYPE_WIRE.items()),
                 [(r.name, r.value) for r in FrameErrorReason], F.FLAGS_CRITICAL_MASK,
                 F.CRC32_POLY_REFLECTED, HELLO_FIELDS, HELLO_INTERVAL_US))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
