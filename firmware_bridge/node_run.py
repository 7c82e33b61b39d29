"""Link one modality's node image (generated glue + node loop + TFLM + run harness) for the host or
a Cortex-M4F, run every sample window through it (QEMU mps2-an386 with -icount on the M4), and
read back its frames, arena, stack and instruction counts.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.errors import CheckFailed
from crossl_edge.firmware_bridge import tflm_sources as ts
from crossl_edge.firmware_bridge.buildfile import LIB_CORE, LIB_KERNELS
from crossl_edge.firmware_bridge.tflm_build import TflmLibs, make_vars, run_make

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
T0_US = 1_000_000
SPIN = 1_000_000     # calibration loop: 2 instructions per iteration
REPEAT = 3           # extra timed invokes on the last window
QEMU_TIMEOUT_S = 600
QEMU = ["qemu-system-arm", "-M", "mps2-an386", "-cpu", "cortex-m4", "-icount", "shift=0",
        "-nographic", "-monitor", "none", "-serial", "none",
        "-semihosting-config", "enable=on,target=native"]
M4_LINK = ["-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections"]


@dataclass
class RunResult:
    """What one image printed: frames per window, arena, stack, timing ticks and calibration."""

    frames: list[bytes]
    window_ticks: list[int]
    invoke_ticks: list[int]
    arena_used: int
    arena_size: int
    stack: int | None = None
    calibration: tuple[int, int] | None = None  # (instructions, ticks) of the spin loop
    op_ticks: list[int] = field(default_factory=list)  # per operator of the profiled invoke
    profile_ticks: int | None = None                   # the whole profiled invoke
    elf: Path | None = None
    map_file: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def instructions(self, ticks: float) -> int | None:
        if not self.calibration or not self.calibration[1]:
            return None
        n, t = self.calibration
        return round(ticks * n / t)


def dt_us(sample_rate_hz: float) -> int:
    """Microseconds between two samples, as the harness steps its clock."""
    return max(1, round(1e6 / sample_rate_hz))


def run_data(raw: np.ndarray, *, sample_rate_hz: float) -> str:
    """run_data.h: raw windows (N, C, T) as exact float literals, sample by sample."""
    n, c, t = raw.shape
    samples = np.ascontiguousarray(np.transpose(raw, (0, 2, 1)), np.float32).ravel()
    rows = []
    for i in range(0, samples.size, 6):
        rows.append("    " + ", ".join(float(v).hex() + "f" for v in samples[i:i + 6]) + ",")
    body = "\n".join(rows)
    return (f"/* {n} windows x {t} samples x {c} channels (raw units), written by crossl-edge. */\n"
            f"#define RUN_WINDOWS {n}u\n#define RUN_T0_US {T0_US}ull\n"
            f"#define RUN_DT_US {dt_us(sample_rate_hz)}ull\n#define RUN_REPEAT {REPEAT}u\n"
            f"#define RUN_SPIN {SPIN}u\n"
            f"static const float run_samples[{samples.size}] = {{\n{body}\n}};\n")


def _template(name: str, prefix: str, work: Path) -> Path:
    src = (TEMPLATES / name).read_text().replace("PFXM", prefix.upper()).replace("PFX", prefix)
    (work / name).write_text(src)
    return work / name


def write_run_io(work: Path) -> None:
    """run_io.h (start-up, clock, record printing) beside a harness in ``work``."""
    (work / "run_io.h").write_text((TEMPLATES / "run_io.h").read_text())


def _compile_harness(fw: Path, name: str, work: Path, target: str, kernels: str, *,
                     profile: bool = False) -> Path:
    p = f"crossl_{name}"
    _template("run_harness.c", p, work)
    write_run_io(work)
    tc = ts.TOOLCHAINS[target]
    defs = ["-DCROSSL_RUN_M4"] if target == "cortex-m4" else []
    defs += ["-DCROSSL_RUN_PROFILE"] if profile else []
    obj = work / "run_harness.o"
    cmd = [tc.cc, *ts.flags(target, kernels)["c"], "-Wall", "-Wextra", "-Werror", *defs,
           f"-I{fw / name}", f"-I{fw / 'common'}", f"-I{work}", "-c", str(work / "run_harness.c"),
           "-o", str(obj)]
    check_run(cmd, f"compiling the run harness for {target}")
    return obj


def _compile_profile(fw: Path, name: str, work: Path, libs: TflmLibs) -> Path:
    """run_profile.o: the per-op timing interpreter (Cortex-M4 image only), compiled as the
    generated glue is (crossl.mk's C++ flags and TFLM include folders)."""
    src = _template("run_profile.cc", f"crossl_{name}", work)
    tc = ts.TOOLCHAINS[libs.target]
    dirs = [*ts.include_dirs(), *(ts.cmsis_include_dirs() if libs.kernels == "cmsis_nn" else [])]
    inc = [x for d in dirs for x in ("-isystem", str(libs.root / d))]
    obj = work / "run_profile.o"
    cmd = [tc.cxx, *ts.flags(libs.target, libs.kernels)["cxx"], "-Wall", "-Wextra", "-Werror",
           *inc, f"-I{fw / name}", f"-I{fw / 'common'}", "-c", str(src), "-o", str(obj)]
    check_run(cmd, f"compiling the per-op profiler for {libs.target}")
    return obj


def check_run(cmd: list[str], what: str) -> None:
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        msg = (p.stderr or p.stdout).strip().splitlines()
        raise CheckFailed(f"{what} failed: {(msg or ['(no output)'])[0][:300]}")


def link_image(fw: Path, name: str, libs: TflmLibs, raw: np.ndarray, work: Path, *,
               sample_rate_hz: float, jobs: int = 2) -> tuple[Path, Path | None]:
    """Build modality ``name``'s objects with fw/crossl.mk and link the run image into ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    run_make(fw / "crossl.mk", [*make_vars(libs.root, libs.target, libs.kernels, work / "app",
                                           libs.lib_dir), f"crossl-{name}"],
             jobs=jobs, what=f"the {name} glue for {libs.target}")
    (work / "run_data.h").write_text(run_data(raw, sample_rate_hz=sample_rate_hz))
    m4 = libs.target == "cortex-m4"
    harness = _compile_harness(fw, name, work, libs.target, libs.kernels, profile=m4)
    p = f"crossl_{name}"
    objs = [work / "app" / name / f"{s}.o" for s in (f"{p}_tflm", f"{p}_model", "node_example")]
    if m4:
        objs.append(_compile_profile(fw, name, work, libs))
    tc = ts.TOOLCHAINS[libs.target]
    out = work / ("node.elf" if libs.target == "cortex-m4" else "node")
    map_file = work / "node.map" if libs.target == "cortex-m4" else None
    extra = [*M4_LINK, f"-T{TEMPLATES / 'mps2_an386.ld'}", f"-Wl,-Map={map_file}"] \
        if map_file else []
    cmd = [tc.cxx, *tc.arch, tc.opt, *extra, str(harness), *map(str, objs),
           "-Wl,--start-group", str(libs.lib_dir / LIB_KERNELS), str(libs.lib_dir / LIB_CORE),
           "-Wl,--end-group", "-lm", "-o", str(out)]
    check_run(cmd, f"linking the {name} node image for {libs.target}")
    return out, map_file


def _parse(text: str) -> RunResult:
    if "RESULT PASS" not in text:
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise CheckFailed(f"the node image did not finish ({tail[:300] or 'no output'}); "
                          "see the log above.")
    rec = {k: [tuple(int(x) for x in m) for m in re.findall(rf"^{k} (\d+) (\d+)$", text, re.M)]
           for k in ("CAL", "WINDOW", "ARENA", "INVOKE", "STACK", "OP", "PROFILE")}
    frames = [bytes.fromhex(h) for h in re.findall(r"^FRAME ([0-9a-f]+)$", text, re.M)]
    arena = rec["ARENA"][0] if rec["ARENA"] else (0, 0)
    return RunResult(frames=frames, window_ticks=[w[1] for w in rec["WINDOW"]],
                     invoke_ticks=[i[1] for i in rec["INVOKE"]], arena_used=arena[0],
                     arena_size=arena[1], stack=rec["STACK"][0][0] if rec["STACK"] else None,
                     calibration=rec["CAL"][0] if rec["CAL"] else None,
                     op_ticks=[t for _, t in sorted(rec["OP"])],
                     profile_ticks=rec["PROFILE"][0][1] if rec["PROFILE"] else None)


def run_image(image: Path, target: str) -> RunResult:
    """Run a linked image (natively, or on QEMU mps2-an386 with -icount) and parse its output."""
    if target == "cortex-m4":
        qemu = shutil.which("qemu-system-arm")
        if qemu is None:
            raise CheckFailed("qemu-system-arm is not on PATH (bash scripts/system-deps.sh).")
        cmd = [qemu, *QEMU[1:], "-kernel", str(image)]
    else:
        cmd = [str(image)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=QEMU_TIMEOUT_S,
                           check=False)
    except subprocess.TimeoutExpired as e:
        raise CheckFailed(f"the node image ran over {QEMU_TIMEOUT_S} s; it hangs.") from e
    res = _parse(p.stdout + p.stderr)
    if p.returncode != 0:
        raise CheckFailed(f"the node image exited with status {p.returncode}.")
    return res


# --- Link map: flash and RAM per part of the image ----------------------------------------------
_FLASH_SECTIONS = (".text", ".ARM.exidx", ".data")
_RAM_SECTIONS = (".data", ".bss")
_OUT = re.compile(r"^(\.[\w.]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)")
_IN = re.compile(r"^ (\S+)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)(?:\s+(.*))?$")
PARTS = ("model", "tflm_core", "kernels", "glue_node_codec", "libc", "harness")


def _part(source: str, prefixes: tuple[str, ...]) -> str:
    if source.endswith(tuple(f"{p}_model.o" for p in prefixes)):
        return "model"
    if f"{LIB_CORE}(" in source:
        return "tflm_core"
    if f"{LIB_KERNELS}(" in source:
        return "kernels"
    if source.endswith((*(f"{p}_tflm.o" for p in prefixes), "node_example.o")) \
            or re.search(r"crossl_device_\w+\.o$", source):
        return "glue_node_codec"
    if source.endswith(("run_harness.o", "run_profile.o", "run_device.o")):
        return "harness"  # the run harnesses and the per-op profiler: not part of a node
    return "libc"  # newlib(-nano), libm, libgcc, libstdc++/libsupc++, linker stubs


def map_split(map_file: Path, prefix: str | tuple[str, ...]) -> dict[str, dict[str, int]]:
    """{"flash": {part: bytes}, "ram": {part: bytes}} from a GNU ld map (alignment fill goes to
    the part of the section before it); ``prefix``: the image's modality prefix(es)."""
    prefixes = (prefix,) if isinstance(prefix, str) else prefix
    flash = dict.fromkeys(PARTS, 0)
    ram = dict.fromkeys(PARTS, 0)
    section, last, pending = None, "libc", None
    started = False
    for line in map_file.read_text(errors="replace").splitlines():
        if not started:
            started = line.startswith("Linker script and memory map")
            continue
        m = _OUT.match(line)
        if m and not line.startswith(" "):
            section = m.group(1)
            continue
        if line and not line.startswith(" "):
            section = line.split()[0] if line.startswith(".") else None
            continue
        m = _IN.match(line)
        if not m or section is None:
            if re.fullmatch(r" \S+", line):
                pending = line.strip()
            continue
        name, size, src = m.group(1) or pending, int(m.group(3), 16), (m.group(4) or "").strip()
        pending = None
        if size == 0:
            continue
        part = last if name == "*fill*" or not src else _part(src, prefixes)
        last = part
        if section in _FLASH_SECTIONS:
            flash[part] += size
        if section in _RAM_SECTIONS:
            ram[part] += size
    return {"flash": flash, "ram": ram}
