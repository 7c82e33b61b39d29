"""The node hello (bootstrap, FRAME_FORMAT.md): golden bytes, Python and C codecs agree, and
`serve` answers a valid hello over real UDP with a beacon at once (a wrong one gets none)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from crossl_edge.wire.beacon import decode_beacon
from crossl_edge.wire.fields import FrameError, FrameErrorReason
from crossl_edge.wire.hello import HELLO_SIZE, Hello, decode_hello, encode_hello, is_hello

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "hello_v2.bin"
EXAMPLE = Hello(fingerprint=0x1234ABCD, boot=3, hello_seq=9, local_us=1_000_000)


def test_golden_and_python_round_trip() -> None:
    assert encode_hello(EXAMPLE) == GOLDEN.read_bytes() and len(GOLDEN.read_bytes()) == HELLO_SIZE
    assert decode_hello(GOLDEN.read_bytes()) == EXAMPLE and is_hello(GOLDEN.read_bytes())
    good = bytearray(GOLDEN.read_bytes())
    cases = {FrameErrorReason.TRUNCATED: bytes(good[:-1]),
             FrameErrorReason.LENGTH_MISMATCH: bytes(good) + b"\0",
             FrameErrorReason.BAD_CRC: bytes(good[:-1]) + bytes([good[-1] ^ 1]),
             FrameErrorReason.UNKNOWN_VERSION: bytes(good[:2]) + b"\x03" + bytes(good[3:]) + b"\0",
             FrameErrorReason.BAD_MAGIC: b"CB" + bytes(good[2:])}
    for reason, data in cases.items():
        with pytest.raises(FrameError) as e:
            decode_hello(data)
        assert e.value.reason == reason


def test_c_codec_matches_python(tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not on PATH")
    exe = tmp_path / "h"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    f"-I{ROOT / 'crossl_edge' / 'wire' / 'c'}",
                    str(ROOT / "tests" / "c" / "sync_harness.c"), "-o", str(exe)], check=True)
    hellos = [EXAMPLE, Hello(0, 0, 0, 0), Hello(2**32 - 1, 2**16 - 1, 2**16 - 1, 2**64 - 1, 15)]
    cmds = [f"E {h.flags} {h.boot} {h.hello_seq} {h.fingerprint} {h.local_us}" for h in hellos]
    want = [encode_hello(h).hex() for h in hellos]
    bad = bytearray(encode_hello(EXAMPLE))
    bad[5] ^= 0x40
    cmds += [f"H {encode_hello(h).hex()}" for h in hellos] + [f"H {bad.hex()}"]
    want += [f"OK {h.flags} {h.boot} {h.hello_seq} {h.fingerprint} {h.local_us} same"
             for h in hellos] + ["ERR -6"]
    out = subprocess.run([str(exe)], input="\n".join(cmds) + "\n", capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == want


def test_serve_answers_a_hello_with_a_beacon(tiny_bundle: Path) -> None:
    from crossl_edge.manifest import load_manifest
    from crossl_edge.runtime.serve import serve
    from crossl_edge.runtime.transports import UdpReceiver
    from crossl_edge.wire.frame import fingerprint32

    m = load_manifest(tiny_bundle)
    fp = fingerprint32(m.fingerprint)
    src = UdpReceiver("127.0.0.1", 0)
    stop, ready, box = threading.Event(), threading.Event(), {}
    th = threading.Thread(target=lambda: box.update(stats=serve(
        m, source=src, stop_event=stop, ready=ready, beacon_interval_s=600.0, epoch=9)),
        daemon=True)
    th.start()
    node, stranger = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
    try:
        assert ready.wait(60)
        threading.Event().wait(0.3)            # the start-up beacon went to nobody
        stranger.settimeout(1.0)
        stranger.sendto(encode_hello(Hello(fingerprint=fp ^ 1)), src.address)
        with pytest.raises(TimeoutError):      # another bundle's node: no beacon is forced
            stranger.recvfrom(64)
        node.settimeout(5)
        node.sendto(encode_hello(Hello(fingerprint=fp, boot=1)), src.address)
        b = decode_beacon(node.recvfrom(64)[0])  # long before the 600 s beacon interval
        assert b.epoch == 9 and b.fingerprint == fp
    finally:
        stop.set()
        th.join(30)
        node.close()
        stranger.close()
        src.close()
    stats = box["stats"]
    assert stats.beacons["hellos"] == 1 and stats.beacons["hellos_rejected"] == 1
    assert stats.frames == 0 and stats.counters.get("rejected", 0) == 0
