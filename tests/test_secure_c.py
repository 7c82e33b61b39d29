"""crossl_secure.h (C, Monocypher from CROSSL_MONOCYPHER_SRC) against the Python envelope: equal
sealed bytes, the same rejections, the generated node sealing its frames and refusing forged,
replayed and foreign beacons (host, ASan/UBSan), and the golden frame sealed on QEMU's M4."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cryptography", reason="sealed frames need the cryptography package")

from crossl_edge.wire import secure as S  # noqa: E402
from crossl_edge.wire.beacon import Beacon, encode_beacon  # noqa: E402
from crossl_edge.wire.frame import LatentDType, LatentFrame, decode_frame, encode_frame  # noqa: E402
from crossl_edge.wire.hello import Hello, encode_hello  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CDIR = ROOT / "tests" / "c"
INCLUDE = ROOT / "crossl_edge" / "wire" / "c"
GOLDEN = ROOT / "tests" / "golden"
SAN = ["-std=c99", "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
KEY = S.NetworkKey(bytes(range(32)))
OTHER = S.NetworkKey(bytes(range(7, 39)))
BOOT = 41


@pytest.fixture(scope="module")
def mono(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not os.environ.get("CROSSL_MONOCYPHER_SRC"):
        pytest.skip("CROSSL_MONOCYPHER_SRC is not set (a monocypher-4.0.3 tarball; .ci/run "
                    "sets it)")
    if shutil.which("gcc") is None:
        pytest.skip("gcc not on PATH")
    from crossl_edge.firmware_bridge.monocypher import monocypher_source
    src = monocypher_source()
    obj = tmp_path_factory.mktemp("mono") / "monocypher.o"
    # third-party code: compiled plainly (the sanitizers watch our code calling it)
    subprocess.run(["gcc", "-std=c99", "-O2", "-c", str(src / "monocypher.c"), "-o", str(obj)],
                   check=True)
    return obj


@pytest.fixture(scope="module")
def host(mono: Path) -> Path:
    exe = mono.parent / "secure_host"
    subprocess.run(["gcc", *SAN, "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{INCLUDE}",
                    f"-I{_src()}", str(CDIR / "secure_host.c"), str(mono), "-o", str(exe)],
                   check=True)
    return exe


def _src() -> Path:
    from crossl_edge.firmware_bridge.monocypher import monocypher_source
    return monocypher_source()


def _run(exe: Path, lines: list[str]) -> list[str]:
    p = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    return [ln.split(" ", 1)[1] for ln in p.stdout.splitlines()]


def _messages(rng: np.random.Generator) -> list[bytes]:
    out = [(GOLDEN / "frame_v2_int8_96.bin").read_bytes(), (GOLDEN / "beacon_v2.bin").read_bytes(),
           encode_hello(Hello(fingerprint=5, boot=2))]
    for n, dt, v in ((1, "int8", 1), (17, "int16", 2), (64, "float32", 2), (200, "int8", 1)):
        x = rng.integers(-100, 100, n).astype(LatentDType.parse(dt).wire)
        extra = {"version": 2, "window": 3, "epoch": 4, "boot": 5} if v == 2 else {}
        out.append(encode_frame(LatentFrame(2, 9, 10, 11, LatentDType.parse(dt), x, **extra)))
    return out


def test_c_seals_opens_and_rejects_like_python(host: Path) -> None:
    rng = np.random.default_rng(0)
    k, net = KEY.key.hex(), KEY.network_id
    msgs = _messages(rng)
    nonces = [(int(rng.integers(0, 2**32)), int(rng.integers(0, 2**32)),
               int(rng.integers(0, 2**32))) for _ in msgs]
    pairs = list(zip(msgs, nonces, strict=True))
    py = [S.seal(KEY, m, sender=a, boot=b, counter=c) for m, (a, b, c) in pairs]
    lines = [f"N {k}"] + [f"S {k} {net} {a} {b} {c} {m.hex()}" for m, (a, b, c) in pairs] + \
        [f"O {k} {net} {s.hex()}" for s in py]
    got = _run(host, lines)
    assert int(got[0]) == net
    assert got[1:1 + len(msgs)] == [s.hex() for s in py]              # identical sealed bytes
    assert got[1 + len(msgs):] == [m.hex() for m in msgs]             # C opens Python's seals
    flip = bytearray(py[0])
    flip[40] ^= 0x10
    wrong = bytearray(S.seal(OTHER, msgs[0], sender=1, boot=1, counter=1))
    wrong[4:8] = net.to_bytes(4, "little")
    bad = [bytes(flip), bytes(wrong), S.seal(OTHER, msgs[0], sender=1, boot=1, counter=1),
           py[0][:35], b"CS\x02" + py[0][3:], py[0][:3] + b"\xff" + py[0][4:], msgs[0]]
    want = [S.SealReason.BAD_TAG] * 2 + [S.SealReason.OTHER_NETWORK] + \
        [S.SealReason.MALFORMED] * 4
    for b, w in zip(bad, want, strict=True):
        with pytest.raises(S.SealError) as e:
            S.open_sealed(KEY, b)
        assert e.value.reason == w
    assert _run(host, [f"O {k} {net} {b.hex()}" for b in bad]) == [str(int(w)) for w in want]
    golden = _run(host, [f"S {k} {net} {0x01020304} 7 42 {msgs[0].hex()}"])
    assert bytes.fromhex(golden[0]) == (GOLDEN / "secure_frame_v2_int8_96.bin").read_bytes()


def test_c_beacon_check_matches_the_python_twin(host: Path) -> None:
    b = (GOLDEN / "beacon_v2.bin").read_bytes()
    phone = S.Sealer(KEY, sender=S.PHONE_SENDER_BIT | 3, boot=8, counter=10)
    seq = [phone.seal(b) for _ in range(3)]
    script = [seq[1], seq[0], seq[1], seq[2], S.Sealer(KEY, sender=3, boot=8).seal(b),
              S.Sealer(OTHER, sender=S.PHONE_SENDER_BIT | 3, boot=8, counter=99).seal(b), b,
              S.Sealer(KEY, sender=S.PHONE_SENDER_BIT | 4, boot=1).seal(b)]
    guard = S.BeaconGuard(KEY)
    want = []
    for m in script:
        r = guard.open(m)
        want.append(r.hex() if isinstance(r, bytes) else str(int(r)))
    assert want.count(b.hex()) == 3                        # seq[1], seq[2], the new session
    assert _run(host, [f"B {KEY.key.hex()} {KEY.network_id} {m.hex()}" for m in script]) == want


def _node_fw(tmp: Path) -> tuple[Path, str]:
    from test_firmware import synth_bundle

    from crossl_edge.firmware_bridge.firmware import generate_firmware
    fw = tmp / "fw"
    generate_firmware(synth_bundle(tmp / "bundle"), fw, key=KEY)
    return fw, "imu"


def _node_exe(fw: Path, name: str, mono: Path, tmp: Path, *, boot_hook: bool) -> Path:
    p = f"crossl_{name}"
    src = tmp / "h.c"
    src.write_text((CDIR / "node_sync_harness.c").read_text().replace("PFXM", p.upper())
                   .replace("PFX", p))
    srcs = [src, fw / name / "node_example.c", fw / "common" / "crossl_network_key.c"]
    if boot_hook:
        hook = tmp / "boot.c"
        hook.write_text(f"#include <stdint.h>\nint {p}_next_boot(uint32_t *boot);\n"
                        f"int {p}_next_boot(uint32_t *boot) {{ *boot = {BOOT}u; return 0; }}\n")
        srcs.append(hook)
    exe = tmp / ("node" if boot_hook else "node_noboot")
    subprocess.run(["gcc", *SAN, "-Wall", "-Wextra", "-Werror", f"-I{fw / name}",
                    f"-I{fw / 'common'}", f"-I{_src()}", *map(str, srcs), str(mono), "-o",
                    str(exe)], check=True)
    return exe


def test_sealed_node_on_the_host(mono: Path, tmp_path: Path) -> None:
    fw, name = _node_fw(tmp_path)
    key_c = fw / "common" / "crossl_network_key.c"
    assert stat.S_IMODE(key_c.stat().st_mode) == 0o600
    hexkey = ", ".join(f"0x{b:02x}" for b in KEY.key[:8])
    leaks = [f for f in fw.rglob("*") if f.is_file() and f != key_c and hexkey in f.read_text()]
    assert hexkey in key_c.read_text() and not leaks
    assert KEY.key.hex() not in (fw / "resources.json").read_text()
    node_id = int((fw / "common" / "crossl_network_key.h").read_text().split(
        f"CROSSL_{name.upper()}_NODE_ID 0x")[1][:8], 16)
    exe = _node_exe(fw, name, mono, tmp_path, boot_hook=True)
    fp = int(next(ln.split()[-1].rstrip("u") for ln in (fw / name / f"crossl_{name}_contract.h")
                  .read_text().splitlines() if "_BUNDLE_FINGERPRINT " in ln), 0)
    sample = "P {t} 0x1p-1 -0x1p+0"
    phone = S.Sealer(KEY, sender=S.PHONE_SENDER_BIT | 9, boot=2)
    beacon = encode_beacon(Beacon(epoch=7, phone_time_us=10_000_000, origin_us=9_000_000,
                                  fingerprint=fp))
    good = phone.seal(beacon)
    forged = bytearray(good)
    forged[-1] ^= 1
    script = [sample.format(t=1_000_000 + 20_000 * i) for i in range(8)]   # v1 frames
    script += [f"B {m.hex()} 1200000" for m in (
        beacon, bytes(forged), S.Sealer(OTHER, sender=phone.sender, boot=2, counter=5).seal(
            beacon), S.Sealer(KEY, sender=node_id, boot=1).seal(beacon), good, good)]
    script += [sample.format(t=1_200_000 + 20_000 * i) for i in range(1, 12)]  # v2 frames
    p = subprocess.run([str(exe), str(BOOT)], input="\n".join(script) + "\n",
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout.splitlines()
    assert [ln for ln in out if ln.startswith("B ")] == [
        "B -30", "B -32", "B -31", "B -33", "B 1", "B -33"]   # plain, forged, foreign, node, ok,
    frames = [bytes.fromhex(ln[6:]) for ln in out if ln.startswith("FRAME ")]  # replayed
    opener = S.Opener(KEY)
    opened = [opener.open(f) for f in frames]
    assert len(frames) >= 4 and all(o is not None for o in opened)
    assert [(o.sender, o.boot, o.counter) for o in opened] == [
        (node_id, BOOT, i) for i in range(len(frames))]
    versions = [decode_frame(o.plain).version for o in opened]
    assert versions[:2] == [1, 1] and versions[-1] == 2
    assert all(f.epoch == 7 for f in map(decode_frame, (o.plain for o in opened))
               if f.version == 2)
    noboot = _node_exe(fw, name, mono, tmp_path, boot_hook=False)
    p = subprocess.run([str(noboot)], input="\n".join(script[:4]) + "\n", capture_output=True,
                       text=True, timeout=60)
    assert "P -23" in p.stdout and "FRAME" not in p.stdout     # no boot counter: nothing sent


def test_golden_frame_sealed_on_the_emulated_m4(mono: Path, tmp_path: Path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not on PATH")
    from benchmarks.secure_frames import run_m4
    r = run_m4(_src(), tmp_path, opt="-Os")
    assert r["result"] == "PASS" and r["returncode"] == 0
    assert bytes.fromhex(r["sealed"]) == (GOLDEN / "secure_frame_v2_int8_96.bin").read_bytes()
    assert 0 < r["instructions"]["SEAL"] < 100_000      # recorded in secure_frames.json
