"""Transports on real sockets, a real pseudo-terminal, and capture files; runtime import hygiene."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from crossl_edge.errors import UsageError
from crossl_edge.runtime.transports import (
    CaptureWriter,
    ReplaySource,
    SerialReceiver,
    SerialSender,
    UdpReceiver,
    UdpSender,
    open_source,
)
from crossl_edge.wire.cobs import CobsStreamDecoder, serial_packet
from crossl_edge.wire.frame import LatentDType, LatentFrame, decode_frame, encode_frame

serial = pytest.importorskip("serial")


def _frames(n: int, mod: int = 0) -> list[bytes]:
    rng = np.random.default_rng(mod)
    return [encode_frame(LatentFrame(mod, i, 1000 * i, 0xDEADBEEF, LatentDType.INT8,
                                     rng.integers(-128, 128, 16, dtype=np.int8)))
            for i in range(n)]


def _collect(src, n: int, timeout: float = 5.0) -> list:
    out, end = [], time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        out += src.read(0.05)
    return out


def test_udp_one_datagram_one_frame() -> None:
    frames = _frames(20)
    with UdpReceiver("127.0.0.1", 0) as rx:
        tx = UdpSender(*rx.address)
        for f in frames:
            tx.send(f)
        got = _collect(rx, len(frames))
        tx.close()
    assert [a.frame for a in got] == frames
    assert all(b.time >= a.time for a, b in zip(got, got[1:], strict=False))
    assert rx.stats.frames == 20


def test_udp_port_in_use_is_a_usage_error() -> None:
    with UdpReceiver("127.0.0.1", 0) as rx, pytest.raises(UsageError, match="another port"):
        UdpReceiver("127.0.0.1", rx.address[1])


@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    port = serial.Serial(os.ttyname(slave), baudrate=115200, timeout=0)
    yield master, port
    port.close()
    os.close(slave)
    os.close(master)


def test_serial_pty_cobs_with_resync_after_garbage(pty_pair) -> None:
    master, port = pty_pair
    frames = _frames(6, mod=1)
    rx = SerialReceiver(port=port)
    stream = b"\x13\x37garbage-before-first-delimiter"          # joins the first packet: dropped
    stream += serial_packet(frames[0]) + serial_packet(frames[1])
    stream += b"\x00\x00" + b"\x05\x01\x02\x00"                 # empty packets, then a bad one
    stream += b"".join(serial_packet(f) for f in frames[2:])
    for i in range(0, len(stream), 7):                          # arrives in small pieces
        os.write(master, stream[i:i + 7])
    got = _collect(rx, 5)
    decoded = []
    for a in got:
        try:
            decoded.append(decode_frame(a.frame))
        except ValueError:
            pass
    assert [encode_frame(f) for f in decoded] == frames[1:]
    assert rx.stats.dropped + (len(got) - len(decoded)) >= 1


def test_serial_sender_writes_cobs_packets(pty_pair) -> None:
    master, port = pty_pair
    frames = _frames(4)
    tx = SerialSender(port=port)
    for f in frames:
        tx.send(f)
    dec, got, end = CobsStreamDecoder(), [], time.monotonic() + 5
    while len(got) < 4 and time.monotonic() < end:
        got += dec.feed(os.read(master, 4096))
    assert got == frames


def test_serial_over_pyserial_loop_url() -> None:
    rx = SerialReceiver("loop://", 115200)
    tx = SerialSender(port=rx.port)
    for f in _frames(3):
        tx.send(f)
    assert [a.frame for a in _collect(rx, 3)] == _frames(3)
    rx.close()


def test_capture_roundtrip_and_truncated_tail(tmp_path) -> None:
    path = tmp_path / "cap.bin"
    frames = _frames(5)
    with CaptureWriter(path) as w:
        for i, f in enumerate(frames):
            w.write(f, 100.0 + 0.25 * i)
    with ReplaySource(path) as src:
        got = list(src)
    assert [a.frame for a in got] == frames
    assert [a.time for a in got] == pytest.approx([0.25 * i for i in range(5)])
    path.write_bytes(path.read_bytes()[:-3])                  # cut inside the last record
    with ReplaySource(path) as src:
        got = list(src)
        assert len(got) == 4 and src.stats.dropped == 1 and src.exhausted


def test_replay_realtime_paces(tmp_path) -> None:
    path = tmp_path / "cap.bin"
    with CaptureWriter(path) as w:
        for i, f in enumerate(_frames(3)):
            w.write(f, 0.1 * i)
    t0 = time.monotonic()
    with ReplaySource(path, realtime=True) as src:
        got = list(src)
    assert len(got) == 3 and time.monotonic() - t0 >= 0.18


def test_bad_capture_and_bad_urls(tmp_path) -> None:
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"not a capture")
    with pytest.raises(UsageError, match="not a crossl-edge capture"):
        ReplaySource(bad)
    for url in ("localhost:9000", "udp://127.0.0.1:port", "tcp://x:1"):
        with pytest.raises(UsageError):
            open_source(url)
    with pytest.raises(UsageError, match="serial device"):
        SerialReceiver("/dev/does-not-exist", 115200)


def test_runtime_path_imports_neither_torch_nor_tensorflow() -> None:
    code = ("import sys\n"
            "import crossl_edge.runtime.serve, crossl_edge.sim.simulate\n"
            "import crossl_edge.runtime.aggregator, crossl_edge.runtime.transports\n"
            "import crossl_edge.cli.runtime_cmd\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow')]\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
