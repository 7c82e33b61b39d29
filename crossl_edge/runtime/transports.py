"""Frame transports: UDP (one datagram = one frame), serial (COBS + 0x00), capture-file replay.
Live sources also carry the phone's sync beacons back to the nodes (``Source.send``).

Capture file: header b"CLCAPT" + u8 version (1) + u8 reserved (0); then records, little-endian,
u64 arrival time in microseconds + u16 frame length + the frame bytes. Sources yield Arrivals.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, NamedTuple

from crossl_edge.errors import DataError, UsageError
from crossl_edge.wire.cobs import CobsStreamDecoder, serial_packet

log = logging.getLogger(__name__)

CAPTURE_MAGIC = b"CLCAPT"
CAPTURE_VERSION = 1
_CAP_HEADER = CAPTURE_MAGIC + bytes([CAPTURE_VERSION, 0])
_CAP_RECORD = struct.Struct("<QH")
MAX_DATAGRAM = 65535


class Arrival(NamedTuple):
    """One frame's bytes, the receiver's clock (seconds) when it arrived, and who sent it."""

    frame: bytes
    time: float
    peer: Any = None        # UDP: the sender's (host, port); None where there is one peer


@dataclass
class SourceStats:
    """Transport-level counts (frames the aggregator never sees as such)."""

    frames: int = 0
    bytes: int = 0
    dropped: int = 0        # malformed COBS packets, truncated capture records


class Source:
    """Base of all receivers: ``read(timeout_s)`` returns the arrivals ready within the timeout."""

    exhausted: bool = False       # True once a finite source (a replay) has nothing more

    def __init__(self) -> None:
        self.stats = SourceStats()
        # With a network key: beacons go only to peers passed to admit() (they sent a sealed
        # message that verified), not to whoever sent a datagram.
        self.gated = False

    def admit(self, peer: Any, t: float) -> None:
        """``peer`` sent an authenticated message at ``t``: a beacon recipient from now on."""

    def clock(self) -> float:
        return time.monotonic()

    def read(self, timeout_s: float) -> list[Arrival]:
        raise NotImplementedError

    def send(self, message: bytes) -> int:
        """Send ``message`` (a sync beacon) to the nodes; how many it reached (0: not possible)."""
        return 0

    def close(self) -> None:
        """Release the socket, port or file."""

    def __iter__(self) -> Iterator[Arrival]:
        while not self.exhausted:
            yield from self.read(0.1)

    def __enter__(self) -> Source:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class UdpReceiver(Source):
    """Bind ``host:port`` (port 0 picks a free one; see ``address``); each datagram is a frame."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 rcvbuf: int = 4 << 20) -> None:
        super().__init__()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.bind((host, port))
        except OSError as e:
            self.sock.close()
            raise UsageError(f"cannot listen on udp://{host}:{port} ({e.strerror}); "
                             "pick another port or address.") from e
        self.sock.setblocking(False)
        self.address: tuple[str, int] = self.sock.getsockname()
        self.peers: dict[tuple[str, int], float] = {}   # node address -> last time heard
        self.max_peers = 64

    def read(self, timeout_s: float) -> list[Arrival]:
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout_s))
        out: list[Arrival] = []
        if not ready:
            return out
        for _ in range(1024):
            try:
                data, peer = self.sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:      # e.g. ICMP errors surfacing on some platforms
                log.debug("udp recv: %s", e)
                break
            t = time.monotonic()
            if not self.gated:
                self.peers[peer] = t
            out.append(Arrival(data, t, peer))
        self._trim()
        self.stats.frames += len(out)
        self.stats.bytes += sum(len(a.frame) for a in out)
        return out

    def _trim(self) -> None:
        while len(self.peers) > self.max_peers:       # forget the longest silent
            del self.peers[min(self.peers, key=self.peers.__getitem__)]

    def admit(self, peer: Any, t: float) -> None:
        if peer is not None:
            self.peers[peer] = t
            self._trim()

    def send(self, message: bytes) -> int:
        """One datagram to every node heard from (nodes listen on the port they send from)."""
        sent = 0
        for peer in list(self.peers):
            try:
                self.sock.sendto(message, peer)
                sent += 1
            except OSError as e:
                log.debug("udp send to %s: %s", peer, e)
        return sent

    def close(self) -> None:
        self.sock.close()


def _open_serial(device: str | None, baud: int, timeout: float | None = 0.0) -> Any:
    try:
        import serial
    except ImportError as e:
        raise UsageError("the serial transport needs pyserial; `pip install pyserial`.") from e
    try:
        return serial.serial_for_url(device, baudrate=baud, timeout=timeout)
    except (serial.SerialException, ValueError) as e:
        raise UsageError(f"cannot open serial device {device} ({e}); check the device path, "
                         "permissions and --baud.") from e


class SerialReceiver(Source):
    """Read COBS-framed frames (0x00-delimited) from a serial device or pyserial URL.

    Garbage between delimiters is dropped (counted in ``stats.dropped``) and the stream resyncs
    at the next 0x00; ``port`` may be an already open ``serial.Serial``.
    """

    def __init__(self, device: str | None = None, baud: int = 115200, *, port: Any = None,
                 max_packet: int = 4096) -> None:
        super().__init__()
        if port is None and device is None:
            raise UsageError("pass a serial device (e.g. --serial /dev/ttyUSB0).")
        self.port = port if port is not None else _open_serial(device, baud)
        self._owns = port is None
        self.decoder = CobsStreamDecoder(max_packet=max_packet)
        self._admitted = False

    def admit(self, peer: Any, t: float) -> None:
        self._admitted = True

    def read(self, timeout_s: float) -> list[Arrival]:
        import serial
        try:
            t = round(max(0.0, timeout_s), 3)
            if self.port.timeout != t:      # setting it reconfigures the port: only on change
                self.port.timeout = t
            data = self.port.read(1)
            n = self.port.in_waiting if data else 0
            if n:
                data += self.port.read(n)
        except (serial.SerialException, OSError) as e:
            raise DataError(f"serial read failed ({e}); check the cable and the device.") from e
        if not data:
            return []
        t = time.monotonic()
        before = self.decoder.dropped
        packets = self.decoder.feed(data)
        self.stats.dropped += self.decoder.dropped - before
        self.stats.frames += len(packets)
        self.stats.bytes += len(data)
        return [Arrival(p, t) for p in packets]

    def send(self, message: bytes) -> int:
        """COBS(message) + 0x00 on the line (the node's UART receiver splits it the same way)."""
        import serial
        if self.gated and not self._admitted:
            return 0
        try:
            self.port.write(serial_packet(message))
        except (serial.SerialException, OSError) as e:
            log.debug("serial write: %s", e)
            return 0
        return 1

    def close(self) -> None:
        if self._owns:
            self.port.close()


class ReplaySource(Source):
    """Replay a capture file; arrival times are the recorded ones (``realtime`` also paces them).

    Recorded times are relative to the first record; with ``realtime`` they are shifted onto this
    process's monotonic clock and each record is delivered when its time comes.
    """

    def __init__(self, path: str | Path, *, realtime: bool = False, speed: float = 1.0) -> None:
        super().__init__()
        self.path = Path(path)
        try:
            self._f: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as e:
            raise UsageError(f"cannot read capture {path} ({e.strerror}); check the path.") from e
        head = self._f.read(len(_CAP_HEADER))
        if head[:len(CAPTURE_MAGIC)] != CAPTURE_MAGIC:
            self._f.close()
            raise UsageError(f"{path} is not a crossl-edge capture file; record one with "
                             "`crossl-edge serve ... --capture FILE`.")
        if len(head) < len(_CAP_HEADER) or head[len(CAPTURE_MAGIC)] != CAPTURE_VERSION:
            self._f.close()
            raise UsageError(f"{path} has capture version {head[len(CAPTURE_MAGIC):][:1]!r}; "
                             f"this toolkit reads version {CAPTURE_VERSION}.")
        self.realtime, self.speed = realtime, float(speed)
        self._t0: float | None = None      # first record's time (s)
        self._start = time.monotonic()
        self._now = 0.0
        self._pending: Arrival | None = None

    def clock(self) -> float:
        if self.realtime:
            return (time.monotonic() - self._start) * self.speed
        return self._now

    def _next(self) -> Arrival | None:
        head = self._f.read(_CAP_RECORD.size)
        if not head:
            return None
        if len(head) < _CAP_RECORD.size:
            self.stats.dropped += 1
            log.warning("capture %s ends inside a record header; ignoring the tail", self.path)
            return None
        t_us, n = _CAP_RECORD.unpack(head)
        data = self._f.read(n)
        if len(data) < n:
            self.stats.dropped += 1
            log.warning("capture %s ends inside a record; ignoring the tail", self.path)
            return None
        if self._t0 is None:
            self._t0 = t_us / 1e6
        return Arrival(data, t_us / 1e6 - self._t0)

    def read(self, timeout_s: float) -> list[Arrival]:
        if self.exhausted:
            return []
        if not self.realtime:
            out = []
            for _ in range(256):
                a = self._next()
                if a is None:
                    self.exhausted = True
                    break
                out.append(a)
            if out:
                self._now = out[-1].time
            self.stats.frames += len(out)
            return out
        end = time.monotonic() + max(0.0, timeout_s)
        out = []
        while True:
            a = self._pending or self._next()
            self._pending = None
            if a is None:
                self.exhausted = True
                break
            wait = a.time - self.clock()
            if wait > 0:
                if time.monotonic() + wait / self.speed > end:
                    self._pending = a
                    time.sleep(max(0.0, end - time.monotonic()))
                    break
                time.sleep(wait / self.speed)
            out.append(a)
        self.stats.frames += len(out)
        return out

    def close(self) -> None:
        self._f.close()


class CaptureWriter:
    """Append frames to a capture file (see the module docstring for the format)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as e:
            raise UsageError(f"cannot write capture {path} ({e.strerror}); check the path.") from e
        self._f.write(_CAP_HEADER)
        self.records = 0

    def write(self, frame: bytes, time_s: float) -> None:
        if len(frame) > 0xFFFF:
            raise ValueError(f"a capture record holds at most 65535 bytes, got {len(frame)}")
        self._f.write(_CAP_RECORD.pack(max(0, round(time_s * 1e6)), len(frame)) + bytes(frame))
        self.records += 1

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class UdpSender:
    """Send each frame as one datagram to ``host:port``."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, int(port))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, frame: bytes) -> None:
        self.sock.sendto(frame, self.address)

    def close(self) -> None:
        self.sock.close()


class SerialSender:
    """Write frames as COBS(frame) + 0x00 to a serial device, URL, or open ``serial.Serial``."""

    def __init__(self, device: str | None = None, baud: int = 115200, *, port: Any = None) -> None:
        self.port = port if port is not None else _open_serial(device, baud, timeout=1.0)
        self._owns = port is None

    def send(self, frame: bytes) -> None:
        self.port.write(serial_packet(frame))

    def close(self) -> None:
        if self._owns:
            self.port.close()


def open_source(url: str, *, baud: int = 115200, realtime: bool = False) -> Source:
    """``udp://HOST:PORT``, ``serial://DEVICE`` (or a pyserial URL) or ``replay://FILE``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise UsageError(f"cannot read source {url!r}; write udp://HOST:PORT, "
                         "serial:///dev/ttyUSB0 or replay://FILE.")
    if scheme == "udp":
        host, _, port = rest.rpartition(":")
        if not port.isdigit() or not 0 <= int(port) < 65536:
            raise UsageError(f"{url!r} needs a port number, e.g. udp://127.0.0.1:9000.")
        return UdpReceiver(host or "0.0.0.0", int(port))
    if scheme == "serial":
        return SerialReceiver(rest, baud)
    if scheme == "replay":
        return ReplaySource(rest, realtime=realtime)
    raise UsageError(f"unknown source scheme {scheme!r}; use udp, serial or replay.")
