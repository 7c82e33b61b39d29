"""The cost of sealed frames: bytes per frame (plain vs sealed) and instructions per frame on an
emulated Cortex-M4F (QEMU mps2-an386 -icount, crossl_secure.h over Monocypher 4.0.3).

`CROSSL_MONOCYPHER_SRC=... python -m benchmarks.secure_frames` writes
benchmarks/results/secure_frames.json. Needs arm-none-eabi-gcc (newlib) and qemu-system-arm.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import save
from crossl_edge.wire import secure as S
from crossl_edge.wire.beacon import BEACON_SIZE
from crossl_edge.wire.frame import LatentDType, frame_size

ROOT = Path(__file__).resolve().parents[1]
CDIR = ROOT / "tests" / "c"
GOLDEN = ROOT / "tests" / "golden"
INCLUDE = ROOT / "crossl_edge" / "wire" / "c"
ARM = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-std=c99"]
QEMU = ["-M", "mps2-an386", "-cpu", "cortex-m4", "-icount", "shift=0", "-nographic",
        "-monitor", "none", "-serial", "none", "-semihosting-config", "enable=on,target=native"]
KEY = S.NetworkKey(bytes(range(32)))
NONCE = {"SENDER": 0x01020304, "BOOT": 7, "COUNTER": 42, "PHONE": 0x80000005}
BLE_PAYLOAD = 244   # one notification, ATT MTU 247 with Data Length Extension


def secure_data_h(frame: bytes, beacon: bytes) -> str:
    """secure_data.h for tests/c/secure_m4.c: the key, nonce parts, a frame and a beacon."""
    def arr(name: str, data: bytes) -> str:
        return f"static const uint8_t {name}[{len(data)}] = {{{', '.join(map(str, data))}}};"
    macros = "\n".join(f"#define SECURE_{k} 0x{v:08X}u" for k, v in NONCE.items())
    return (f"{arr('secure_key', KEY.key)}\n{arr('secure_frame', frame)}\n"
            f"{arr('secure_beacon', beacon)}\n#define SECURE_NETWORK 0x{KEY.network_id:08X}u\n"
            f"{macros}\n")


def run_m4(mono: Path, work: Path, *, opt: str = "-Os",
           frame: bytes | None = None) -> dict[str, Any]:
    """Build tests/c/secure_m4.c with Monocypher for the M4, run it on QEMU -icount and return
    its records: instructions per step (calibrated), the sealed hex, RESULT."""
    gcc, qemu = shutil.which("arm-none-eabi-gcc"), shutil.which("qemu-system-arm")
    if gcc is None or qemu is None:
        raise RuntimeError("needs arm-none-eabi-gcc and qemu-system-arm on PATH")
    frame = frame if frame is not None else (GOLDEN / "frame_v2_int8_96.bin").read_bytes()
    work.mkdir(parents=True, exist_ok=True)
    (work / "secure_data.h").write_text(secure_data_h(frame, (GOLDEN / "beacon_v2.bin")
                                                      .read_bytes()))
    elf = work / f"secure_m4{opt}.elf"
    subprocess.run([gcc, *ARM, opt, "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections",
                    "-ffunction-sections", "-fdata-sections", f"-T{CDIR / 'mps2_m4.ld'}",
                    f"-I{INCLUDE}", f"-I{mono}", f"-I{work}", str(CDIR / "secure_m4.c"),
                    str(mono / "monocypher.c"), "-o", str(elf)], check=True, capture_output=True)
    run = subprocess.run([qemu, *QEMU, "-kernel", str(elf)], capture_output=True, text=True,
                         timeout=120)
    text = run.stdout + run.stderr
    rec = dict(re.findall(r"^(\w+) (\S+)$", text, re.M))
    cal = int(rec["CAL_INSTRUCTIONS"]) / int(rec["CAL_TICKS"])
    steps = {k: round(int(rec[k]) * cal) for k in ("CRC", "SEAL", "OPEN", "BEACON") if k in rec}
    size = subprocess.run([gcc.replace("gcc", "size"), "-A", str(elf)], capture_output=True,
                          text=True, check=True).stdout
    return {"result": rec.get("RESULT"), "sealed": rec.get("SEALED", ""),
            "instructions": steps, "elf_text_bytes": _section(size, ".text"),
            "returncode": run.returncode}


def _section(size_output: str, name: str) -> int:
    m = re.search(rf"^{re.escape(name)}\s+(\d+)", size_output, re.M)
    return int(m.group(1)) if m else 0


def byte_table() -> list[dict[str, Any]]:
    """Plain vs sealed bytes for the common latents (v2 frames) and the beacon."""
    rows = []
    for n, dt in ((32, "int8"), (64, "int8"), (96, "int8"), (128, "int8"), (96, "int16"),
                  (32, "float32")):
        plain = frame_size(n, LatentDType.parse(dt), version=2)
        sealed = plain + S.SEAL_OVERHEAD
        rows.append({"latent": f"{n} x {dt}", "plain_bytes": plain, "sealed_bytes": sealed,
                     "fits_ble_244": sealed <= BLE_PAYLOAD})
    rows.append({"latent": "sync beacon", "plain_bytes": BEACON_SIZE,
                 "sealed_bytes": BEACON_SIZE + S.SEAL_OVERHEAD, "fits_ble_244": True})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--monocypher", help="Monocypher tarball or folder "
                    "(default: $CROSSL_MONOCYPHER_SRC)")
    ap.add_argument("--out", type=Path, default=None, help="results folder")
    args = ap.parse_args(argv)
    from crossl_edge.firmware_bridge.monocypher import monocypher_source
    mono = monocypher_source(args.monocypher)
    golden = (GOLDEN / "secure_frame_v2_int8_96.bin").read_bytes()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for opt in ("-Os", "-O2"):
            r = run_m4(mono, Path(tmp), opt=opt)
            if r["result"] != "PASS" or bytes.fromhex(r["sealed"]) != golden:
                print(f"the M4 run ({opt}) failed or differs from the golden file", file=sys.stderr)
                return 1
            runs[opt] = {k: v for k, v in r.items() if k not in ("sealed", "returncode")}
        latents = {}
        for n in (32, 96, 128):     # instructions grow with the ChaCha20 blocks and Poly1305
            f = np.arange(n, dtype=np.int8)  # any bytes: only the length matters for the cost
            from crossl_edge.wire.frame import LatentFrame, encode_frame
            plain = encode_frame(LatentFrame(1, 0, 0, 0, LatentDType.INT8, f, version=2))
            latents[f"{n} x int8"] = run_m4(mono, Path(tmp), opt="-Os",
                                            frame=plain)["instructions"]
    doc = {"what": "sealed frames (crossl_secure.h, ChaCha20-Poly1305 via Monocypher 4.0.3) on "
                   "QEMU mps2-an386 Cortex-M4F with -icount (instructions, a lower bound on "
                   "cycles); SEAL = seal one v2 frame (96 x int8 = 132 B -> 168 B), OPEN = verify "
                   "and decrypt it, BEACON = verify a sealed beacon (node side), CRC = the plain "
                   "frame's CRC-32 for comparison",
           "overhead_bytes": S.SEAL_OVERHEAD, "bytes": byte_table(), "m4": runs,
           "m4_by_latent_Os": latents,
           "command": "CROSSL_MONOCYPHER_SRC=... python -m benchmarks.secure_frames"}
    path = save("secure_frames", doc, out=args.out)
    print(f"wrote {path}: seal {runs['-Os']['instructions']['SEAL']} instructions (-Os), "
          f"{runs['-O2']['instructions']['SEAL']} (-O2) per 132 -> 168 B frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
