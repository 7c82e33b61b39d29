"""The generated C99 codec agrees byte-for-byte and verdict-for-verdict with the Python one.

Host gcc with ASan/UBSan; Cortex-M4 cross-compile (size) and QEMU run when the toolchain exists.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from crossl_edge.wire.cobs import CobsError, cobs_decode, cobs_encode
from crossl_edge.wire.frame import (
    OVERHEAD,
    FrameError,
    FrameErrorReason,
    LatentDType,
    LatentFrame,
    decode_frame,
    encode_frame,
)

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "crossl_edge" / "wire" / "c"
CDIR = Path(__file__).parent / "c"
GOLDEN = sorted((Path(__file__).parent / "golden").glob("frame_v1_*.bin"))
GOLDEN_V2 = sorted((Path(__file__).parent / "golden").glob("frame_v2_*.bin"))
HOST_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1",
              "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-Os", "-std=c99", "-Wall", "-Wextra", "-Werror"]
N_DECODE_CORPUS = 20_000


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not on PATH")
    exe = tmp_path_factory.mktemp("c") / "harness"
    subprocess.run(["gcc", *HOST_FLAGS, f"-I{INCLUDE}", str(CDIR / "harness.c"), "-o", str(exe)],
                   check=True)
    return exe


def _run(exe: Path, mode: str, path: Path) -> list[str]:
    env = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"}
    out = subprocess.run([str(exe), mode, str(path)], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out.stdout.splitlines()


def _write_records(path: Path, records: list[bytes]) -> Path:
    path.write_bytes(b"".join(len(r).to_bytes(4, "little") + r for r in records))
    return path


def _random_frame(rng: np.random.Generator, *, n: int | None = None) -> LatentFrame:
    dtype = LatentDType(int(rng.integers(0, 3)))
    n = int(rng.integers(1, 65)) if n is None else n
    bits = rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32)
    latent = {LatentDType.INT8: bits.astype(np.uint8).view(np.int8),
              LatentDType.INT16: bits.astype(np.uint16).view(np.int16),
              LatentDType.FLOAT32: bits.view(np.float32)}[dtype]  # any bits, NaN payloads too
    return LatentFrame(modality_id=int(rng.integers(0, 256)), seq=int(rng.integers(0, 2**32)),
                       timestamp_us=int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2)),
                       fingerprint=int(rng.integers(0, 2**32)), dtype=dtype, latent=latent,
                       flags=int(rng.integers(0, 16)) if rng.random() < 0.2 else 0)


def _values(frame: LatentFrame) -> list[str]:
    if frame.dtype is LatentDType.FLOAT32:
        return [f"{b:08x}" for b in frame.latent.view(np.uint32)]
    return [str(int(v)) for v in frame.latent]


def _python_verdict(buf: bytes) -> str:
    try:
        f = decode_frame(buf)
    except FrameError as exc:
        return f"ERR {exc.reason.value}"
    head = [f.modality_id, int(f.dtype), f.flags, f.latent.size, f.seq, f.timestamp_us,
            f.fingerprint]
    if f.version == 2:
        head += ["v2", f.window, f.epoch, f.boot]
    return " ".join(["OK", *map(str, head), *_values(f)])


def _spec(frame: LatentFrame) -> str:
    return " ".join(map(str, [frame.modality_id, int(frame.dtype), frame.flags, frame.seq,
                              frame.timestamp_us, frame.fingerprint, frame.latent.size,
                              *_values(frame)]))


def test_c_encodes_like_python(harness: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frames = [decode_frame(p.read_bytes()) for p in GOLDEN] + [_random_frame(rng)
                                                               for _ in range(300)]
    frames += [_random_frame(rng, n=96) for _ in range(10)]
    bad = [("0 3 0 1 2 3 2 5 6", FrameErrorReason.BAD_DTYPE),  # dtype 3
           ("0 0 0 1 2 3 0", FrameErrorReason.INVALID_ARGUMENT),  # empty latent
           ("0 0 64 1 2 3 1 5", FrameErrorReason.BAD_FLAGS),  # critical flag
           ("0 9 128 1 2 3 1 5", FrameErrorReason.BAD_DTYPE)]  # dtype checked before flags
    for line, reason in bad:  # Python agrees on the reason
        mod, dt, fl, seq, ts, fp, n, *vals = (int(t) for t in line.split())
        with pytest.raises(FrameError) as err:
            LatentFrame(modality_id=mod, seq=seq, timestamp_us=ts, fingerprint=fp, dtype=dt,
                        flags=fl, latent=np.array(vals, np.int8))
        assert err.value.reason is reason
    spec = tmp_path / "spec.txt"
    spec.write_text("\n".join([_spec(f) for f in frames] + [b for b, _ in bad]) + "\n")
    out = _run(harness, "encode", spec)
    assert out[:len(frames)] == [encode_frame(f).hex() for f in frames]
    assert out[len(frames):] == [f"ERR {r.value}" for _, r in bad]
    for path, line in zip(GOLDEN, out, strict=False):  # the golden files, from C
        assert bytes.fromhex(line) == path.read_bytes()


def _as_v2(f: LatentFrame, rng: np.random.Generator) -> LatentFrame:
    return LatentFrame(f.modality_id, f.seq, f.timestamp_us, f.fingerprint, f.dtype, f.latent,
                       f.flags, version=2, window=int(rng.integers(0, 2**32)),
                       epoch=int(rng.integers(0, 2**16)), boot=int(rng.integers(0, 2**16)))


def _decode_corpus(rng: np.random.Generator) -> list[bytes]:
    base = [p.read_bytes() for p in GOLDEN + GOLDEN_V2] + [
        encode_frame(_random_frame(rng)) for _ in range(300)] + [
        encode_frame(_as_v2(_random_frame(rng), rng)) for _ in range(200)]
    out: list[bytes] = []
    for i in range(N_DECODE_CORPUS):
        good = base[int(rng.integers(len(base)))]
        kind = i % 9
        if kind == 0:
            out.append(good)
        elif kind in (1, 2):  # burst of 1-4 random bytes / one flipped bit
            b = bytearray(good)
            at = int(rng.integers(len(b)))
            if kind == 1:
                w = min(int(rng.integers(1, 5)), len(b) - at)
                b[at:at + w] = rng.integers(0, 256, w, dtype=np.uint8).tobytes()
            else:
                b[at] ^= 1 << int(rng.integers(8))
            out.append(bytes(b))
        elif kind == 3:
            out.append(good[:int(rng.integers(0, len(good)))])
        elif kind == 4:
            out.append(good + rng.integers(0, 256, int(rng.integers(1, 9)), np.uint8).tobytes())
        elif kind in (5, 6):  # header byte(s) changed, CRC recomputed: reaches the later checks
            body = bytearray(good[:-4])
            at = (int(rng.integers(0, min(32, len(body)))) if kind == 5
                  else int(rng.choice([2, 4, 5, 6, 7])))
            body[at] = int(rng.integers(0, 256)) if rng.random() < 0.5 else body[at] ^ 0x10
            extra = int(rng.integers(-3, 4)) if kind == 6 and rng.random() < 0.3 else 0
            body = body[:len(body) + extra] if extra < 0 else body + bytes(extra)
            out.append(bytes(body) + zlib.crc32(body).to_bytes(4, "little"))
        elif kind == 7:
            out.append(rng.integers(0, 256, int(rng.integers(0, 160)), np.uint8).tobytes())
        else:
            tail = rng.integers(0, 256, int(rng.integers(0, 100)), np.uint8).tobytes()
            out.append((b"CL\x01" if i % 2 else b"CL\x02") + tail)
    return out


def test_c_decoder_agrees_with_python_on_corpus(harness: Path, tmp_path: Path) -> None:
    corpus = _decode_corpus(np.random.default_rng(2))
    out = _run(harness, "decode", _write_records(tmp_path / "corpus.bin", corpus))
    expected = [_python_verdict(rec) for rec in corpus]
    assert len(out) == len(expected) == N_DECODE_CORPUS
    bad = [(i, e, o) for i, (e, o) in enumerate(zip(expected, out, strict=True)) if e != o]
    assert not bad, f"{len(bad)} disagreements, first: {bad[:3]}"
    counts = collections.Counter(v.split()[0] if v.startswith("OK") else
                                 FrameErrorReason(int(v.split()[1])).name for v in expected)
    print(f"\nC vs Python decode verdicts on {len(corpus)} frames: {dict(counts)}")
    decode_reasons = {r.name for r in FrameErrorReason} - {"BUFFER_TOO_SMALL",
                                                           "INVALID_ARGUMENT", "BAD_COBS"}
    assert decode_reasons | {"OK"} == set(counts)  # every reason was exercised


def _cobs_corpus(rng: np.random.Generator) -> list[bytes]:
    out: list[bytes] = [b"", b"\x00", b"\x01", b"\xff" * 254, b"\xff" * 255]
    for n in (253, 254, 255, 256, 507, 508, 509, 510):
        out += [bytes([7]) * n, bytes([7]) * n + b"\x00", b"\x00" + bytes([7]) * n]
    for i in range(4000):
        n = int(rng.integers(0, 700))
        data = rng.integers(0, 256, n, np.uint8)
        if i % 3 == 0:
            data[rng.random(n) < 0.9] = 0x5A  # long zero-free runs
        raw = data.tobytes()
        if i % 4 == 1:
            raw = cobs_encode(raw)  # valid packets
        elif i % 4 == 2 and raw:
            enc = bytearray(cobs_encode(raw))
            enc[int(rng.integers(len(enc)))] = int(rng.integers(0, 256))
            raw = bytes(enc[:len(enc) - int(rng.integers(0, 3))])
        elif i % 4 == 3:
            raw = raw.replace(b"\x00", b"\x03")  # zero-free: often valid, often not
        out.append(raw)
    return out


def test_c_cobs_and_crc_agree_with_python(harness: Path, tmp_path: Path) -> None:
    corpus = _cobs_corpus(np.random.default_rng(3))
    path = _write_records(tmp_path / "cobs.bin", corpus)
    expected, ok = [], 0
    for rec in corpus:
        try:
            dec = "OK:" + cobs_decode(rec).hex()
            ok += 1
        except CobsError as exc:
            dec = f"ERR:{exc.reason.value}"
        expected.append(f"{cobs_encode(rec).hex()} {dec}")
    out = _run(harness, "cobs", path)
    assert len(out) == len(expected)
    bad = [(i, e, o) for i, (e, o) in enumerate(zip(expected, out, strict=True)) if e != o]
    assert not bad, f"{len(bad)} disagreements, first: {bad[:2]}"
    assert 0 < ok < len(corpus)
    print(f"\nCOBS: {len(corpus)} packets, {ok} valid, {len(corpus) - ok} rejected; C == Python")
    assert _run(harness, "crc", path) == [f"{zlib.crc32(r):08x}" for r in corpus]


def _arm_gcc() -> str:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc not on PATH (apt-get install gcc-arm-none-eabi)")
    return gcc


def test_cortex_m4_cross_compile_and_size(tmp_path: Path) -> None:
    gcc = _arm_gcc()
    sizes = {}
    for variant, defines in (("node", []), ("node+gateway", ["-DCROSSL_SIZE_FULL"])):
        obj = tmp_path / f"{variant}.o"
        subprocess.run([gcc, *ARM_FLAGS, *defines, f"-I{INCLUDE}", "-c",
                        str(CDIR / "m4_size.c"), "-o", str(obj)], check=True)
        out = subprocess.run([gcc.replace("-gcc", "-size"), str(obj)], capture_output=True,
                             text=True, check=True).stdout
        text, data, bss = (int(x) for x in out.splitlines()[1].split()[:3])
        assert data == 0 and bss == 0  # no globals, no heap
        sizes[variant] = text
    print(f"\nCortex-M4 -Os .text bytes: {sizes}")
    assert sizes["node"] < 1024 and sizes["node+gateway"] < 2048


def test_cortex_m4_runs_on_qemu(tmp_path: Path) -> None:
    gcc = _arm_gcc()
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        pytest.skip("qemu-system-arm not on PATH")
    elf = tmp_path / "m4.elf"
    subprocess.run([gcc, *ARM_FLAGS, "-nostartfiles", "--specs=nano.specs",
                    f"-T{CDIR / 'mps2_m4.ld'}", f"-I{INCLUDE}", str(CDIR / "m4_qemu.c"),
                    "-o", str(elf)], check=True)
    run = subprocess.run([qemu, "-M", "mps2-an386", "-nographic", "-monitor", "none",
                          "-serial", "none", "-semihosting-config", "enable=on,target=native",
                          "-kernel", str(elf)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = dict(re.findall(r"^(\w+) (\S+)$", run.stdout + run.stderr, re.M))  # SYS_WRITE0
    golden = (Path(__file__).parent / "golden" / "frame_v1_int8_96.bin").read_bytes()
    assert bytes.fromhex(lines["FRAME"]) == golden
    assert lines["DECODE"] == "0" and lines["RESULT"] == "PASS"
    assert len(golden) == OVERHEAD + 96
