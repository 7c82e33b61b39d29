"""COBS (Consistent Overhead Byte Stuffing) for byte streams such as UART.

On a serial line a frame travels as COBS(frame) + b"\\x00"; the C twin is in crossl_frame.h.
"""

from __future__ import annotations

from typing import Final

from .fields import FrameError, FrameErrorReason

DELIMITER: Final[bytes] = b"\x00"


class CobsError(FrameError):
    """A COBS packet is malformed (reason BAD_COBS)."""

    def __init__(self, message: str) -> None:
        super().__init__(FrameErrorReason.BAD_COBS, message)


def cobs_max_encoded_size(n: int) -> int:
    """Upper bound of len(cobs_encode(data)) for len(data) == n (no delimiter)."""
    return n + n // 254 + 1


def cobs_encode(data: bytes | bytearray | memoryview) -> bytes:
    """Encode `data` so that it contains no zero byte (the delimiter is not appended)."""
    pieces = bytes(data).split(b"\x00")
    out = bytearray()
    last = len(pieces) - 1
    for i, piece in enumerate(pieces):
        while len(piece) >= 254:
            out += b"\xff" + piece[:254]
            piece = piece[254:]
            if i == last and not piece:
                return bytes(out)
        out.append(len(piece) + 1)
        out += piece
    return bytes(out)


def cobs_decode(data: bytes | bytearray | memoryview) -> bytes:
    """Decode one COBS packet (without its delimiter); raise CobsError if malformed."""
    buf = bytes(data)
    n = len(buf)
    if n == 0:
        raise CobsError("empty COBS packet")
    out = bytearray()
    i = 0
    while i < n:
        code = buf[i]
        if code == 0:
            raise CobsError(f"zero byte at offset {i} inside a COBS packet")
        end = i + code
        if end > n:
            raise CobsError(f"COBS group at offset {i} wants {code - 1} bytes, {n - i - 1} left")
        block = buf[i + 1:end]
        if 0 in block:
            raise CobsError(f"zero byte at offset {i + 1 + block.index(0)} inside a COBS packet")
        out += block
        i = end
        if i < n and code != 0xFF:
            out.append(0)
    return bytes(out)


def serial_packet(frame: bytes | bytearray | memoryview) -> bytes:
    """What goes on the wire for one frame: COBS(frame) followed by the 0x00 delimiter."""
    return cobs_encode(frame) + DELIMITER


class CobsStreamDecoder:
    """Split a byte stream at 0x00 delimiters and COBS-decode each packet.

    Malformed and oversized packets are dropped and counted in `dropped`; empty packets
    (back-to-back delimiters, used to resynchronize) are skipped silently.
    """

    def __init__(self, *, max_packet: int = 4096) -> None:
        if max_packet < 1:
            raise ValueError(f"max_packet must be >= 1, got {max_packet}")
        self.max_packet = max_packet
        self.dropped = 0
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Consume `data`; return the packets completed by it, decoded, in order."""
        packets: list[bytes] = []
        chunks = bytes(data).split(DELIMITER)
        for k, chunk in enumerate(chunks):
            if not self._overflow:
                self._buf += chunk
                if len(self._buf) > self.max_packet:
                    self._overflow = True
                    self._buf.clear()
            if k == len(chunks) - 1:
                break  # no delimiter after this chunk yet
            if self._overflow:
                self.dropped += 1
            elif self._buf:
                try:
                    packets.append(cobs_decode(self._buf))
                except CobsError:
                    self.dropped += 1
            self._buf.clear()
            self._overflow = False
        return packets
