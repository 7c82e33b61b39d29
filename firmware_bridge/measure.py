"""`--build`: compile TFLite Micro and each modality's node image for the host and the Cortex-M4F,
run the bundle's sample windows through them, check every frame byte-for-byte against the Python
pipeline on LiteRT's builtin kernels, and return measured flash / RAM / instruction figures.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from crossl_edge.errors import CheckFailed
from crossl_edge.firmware_bridge import device_run, node_run, resources, tflm_build
from crossl_edge.firmware_bridge import tflm_sources as ts
from crossl_edge.firmware_bridge.device_image import DeviceSpec
from crossl_edge.manifest import Manifest, ModalityEntry

log = logging.getLogger(__name__)

CLOCK_HZ: Final[float] = 120e6  # only for the labelled ms estimate


@dataclass(frozen=True)
class BuildOptions:
    """What `--build` compiles and runs."""

    kernels: tuple[str, ...] = ("reference", "cmsis_nn")
    host: bool = True                 # also build and run on the host (reference kernels)
    tflm: str | Path | None = None    # TFLM source folder or tarball (else located)
    jobs: int = 2
    max_windows: int | None = None    # None: every window of samples.npz


def configs(opts: BuildOptions) -> list[tuple[str, str]]:
    out = [("host", "reference")] if opts.host else []
    return out + [("cortex-m4", k) for k in opts.kernels]


def expected_frames(m: Manifest, entry: ModalityEntry, raw: np.ndarray) -> list[bytes]:
    """The frames the node must send for windows ``raw`` (N, C, T): LiteRT builtin kernels."""
    from crossl_edge.runtime.backends import TFLiteRunner
    from crossl_edge.wire.frame import (
        LatentDType,
        LatentFrame,
        encode_frame,
        fingerprint32,
    )

    runner = TFLiteRunner(m.path(entry.artifacts["tflite_int8"]), xnnpack=False)
    step, t = node_run.dt_us(entry.sample_rate_hz), entry.window
    out = []
    for i, window in enumerate(raw):
        latent = runner.run(entry.tflite_input(window, int8=True)).reshape(-1)
        ts_us = node_run.T0_US + step * (i * t + t - 1)
        out.append(encode_frame(LatentFrame(
            modality_id=entry.id, seq=i, timestamp_us=ts_us, fingerprint=fingerprint32(
                m.fingerprint), dtype=LatentDType.INT8, latent=latent)))
    return out


def compare_frames(got: list[bytes], want: list[bytes], what: str) -> dict[str, int]:
    """Windows byte-identical to LiteRT, and the largest latent difference in LSB.

    A frame must decode (CRC), carry the same header, and its int8 latent may differ from
    LiteRT's builtin kernels by at most TFLM_MAX_LSB (the bound export's parity check uses:
    TFLM's RSQRT/MEAN/MUL round differently from LiteRT's); anything else is CheckFailed.
    """
    from crossl_edge.runtime.tflm import TFLM_MAX_LSB
    from crossl_edge.wire.frame import FrameError, decode_frame

    if len(got) != len(want):
        raise CheckFailed(f"{what} sent {len(got)} frames for {len(want)} windows.")
    same = worst = 0
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if g == w:
            same += 1
            continue
        try:
            fg, fw = decode_frame(g), decode_frame(w)
        except FrameError as e:
            raise CheckFailed(f"{what}: the frame of window {i} is corrupt ({e}).") from e
        lsb = int(np.abs(fg.latent.astype(int) - fw.latent.astype(int)).max())
        if (fg.seq, fg.timestamp_us, fg.modality_id, fg.fingerprint) != \
                (fw.seq, fw.timestamp_us, fw.modality_id, fw.fingerprint) or lsb > TFLM_MAX_LSB:
            raise CheckFailed(f"{what}: the frame of window {i} differs from the Python "
                              f"pipeline on LiteRT's builtin kernels (latent up to {lsb} LSB); "
                              "the firmware is not equivalent to the exported model.")
        worst = max(worst, lsb)
    return {"windows_identical": same, "max_lsb_vs_litert": worst}


def per_op(res: node_run.RunResult, ops: list[tuple[str, int]]) -> dict[str, Any] | None:
    """Instructions per operator of the profiled invoke (graph order) and per op type."""
    if not res.op_ticks or len(res.op_ticks) != len(ops) or res.profile_ticks is None:
        return None
    rows = []
    by_type: dict[str, dict[str, int]] = {}
    for k, ((name, macs), ticks) in enumerate(zip(ops, res.op_ticks, strict=True)):
        n = res.instructions(float(ticks)) or 0
        rows.append({"index": k, "op": name, "macs": macs, "instructions": n})
        t = by_type.setdefault(name, {"count": 0, "macs": 0, "instructions": 0})
        t["count"] += 1
        t["macs"] += macs
        t["instructions"] += n
    total = res.instructions(float(res.profile_ticks)) or 0
    return {"ops": rows, "by_type": by_type, "profiled_invoke": total,
            "sum_of_ops": sum(r["instructions"] for r in rows),
            "source": "QEMU -icount SysTick around each kernel's Invoke() (registrations wrapped "
                      "in a second interpreter on the same model and libraries; TFLM's "
                      "MicroProfiler hook is compiled out by TF_LITE_STRIP_ERROR_STRINGS); "
                      "the rest of profiled_invoke is the interpreter's own loop"}


def _figures(res: node_run.RunResult, prefix: str, node_state: int) -> dict[str, Any]:
    """Measured figures of one Cortex-M4 run (flash/RAM from the link map, instructions)."""
    assert res.map_file is not None
    split = node_run.map_split(res.map_file, prefix)
    flash = {k: v for k, v in split["flash"].items() if k != "harness"}
    flash["total"] = sum(flash.values())
    static = sum(v for k, v in split["ram"].items() if k != "harness")
    invoke = float(np.mean(res.invoke_ticks)) if res.invoke_ticks else 0.0
    later = res.window_ticks[1:] or res.window_ticks
    per_invoke = res.instructions(invoke)
    stack = res.stack or 0
    return {
        "flash": flash,
        "flash_harness_excluded": split["flash"]["harness"],
        "ram": {"static": static, "arena_size": res.arena_size, "arena_used": res.arena_used,
                "node_state": node_state, "stack": stack,
                "total": static + node_state + stack},
        "instructions": {"per_invoke": per_invoke,
                         "per_window": res.instructions(float(np.mean(later))),
                         "first_window": res.instructions(float(res.window_ticks[0])),
                         "calibration": list(res.calibration or ())},
        "ms_estimate": {f"cortex-m4@{CLOCK_HZ / 1e6:g}MHz": round(per_invoke / CLOCK_HZ * 1e3, 3)
                        if per_invoke else None},
    }


def _keep(res: node_run.RunResult, image: Path, keep: Path | None) -> None:
    if keep is None:
        return
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(image, keep / image.name)
    if res.map_file is not None:
        shutil.copyfile(res.map_file, keep / res.map_file.name)


def measure(m: Manifest, fw: Path, windows: dict[str, np.ndarray], node_state: dict[str, int],
            opts: BuildOptions, *, keep: Path | None = None,
            devices: Sequence[DeviceSpec] = ()) -> dict[str, Any]:
    """Build, run and check every modality and device image for every config;
    {"modalities", "devices", "builds"}."""
    source = tflm_build.locate_source(opts.tflm)
    ops = _ops(m)
    per_op_macs = {e.name: resources.inspect_model(
        m.path(e.artifacts["tflite_int8"]).read_bytes()).per_op_macs for e in m.modalities}
    builds: dict[str, Any] = {}
    singles: dict[str, list[bytes]] = {}
    out: dict[str, dict[str, Any]] = {e.name: {} for e in m.modalities}
    dev_out: dict[str, dict[str, Any]] = {d.name: {} for d in devices}
    with tempfile.TemporaryDirectory(prefix="crossl-fw-") as d:
        for target, kernels in configs(opts):
            cfg = f"{target}/{kernels}"
            libs = tflm_build.build_tflm(fw / "crossl.mk", source=source, target=target,
                                         kernels=kernels, ops=ops, jobs=opts.jobs)
            builds[cfg] = {"seconds": round(libs.seconds, 1), "cached": libs.cached,
                           "cold_build_seconds": round(libs.built_seconds, 1),
                           "cache": str(libs.lib_dir)}
            log.info("TFLM %s: %s in %.1f s", cfg, "cached" if libs.cached else "built",
                     libs.seconds)
            for e in m.modalities:
                raw = windows[e.name]
                work = Path(d) / f"{target}-{kernels}" / e.name
                image, map_file = node_run.link_image(fw, e.name, libs, raw, work,
                                                      sample_rate_hz=e.sample_rate_hz,
                                                      jobs=opts.jobs)
                res = node_run.run_image(image, target)
                res.map_file = map_file
                cmp = compare_frames(res.frames, expected_frames(m, e, raw),
                                     f"modality {e.name!r} on {target} ({kernels} kernels)")
                fig: dict[str, Any] = {"windows": len(raw), **cmp,
                                       "frames_equal_litert": cmp["windows_identical"] == len(raw),
                                       "arena_used": res.arena_used}
                if target == "cortex-m4":
                    fig.update(_figures(res, f"crossl_{e.name}", node_state[e.name]))
                    fig["per_op"] = per_op(res, per_op_macs[e.name])
                out[e.name][cfg] = fig
                singles[e.name] = res.frames
                _keep(res, image, keep / f"{target}-{kernels}" / e.name if keep else None)
            for dev in devices:
                work = Path(d) / f"{target}-{kernels}" / "devices" / dev.c_name
                dev_out[dev.name][cfg] = _device_run(m, fw, dev, libs, windows, singles, work,
                                                     node_state, opts, keep=keep)
    return {"modalities": out, "devices": dev_out, "builds": builds}


def _device_run(m: Manifest, fw: Path, dev: DeviceSpec, libs: tflm_build.TflmLibs,
                windows: dict[str, np.ndarray], singles: dict[str, list[bytes]], work: Path,
                node_state: dict[str, int], opts: BuildOptions, *,
                keep: Path | None) -> dict[str, Any]:
    """Link and run one device image; its frames must equal the single-encoder images' byte for
    byte (and so LiteRT's, as those were checked)."""
    cfg = f"{libs.target}/{libs.kernels}"
    raw = [windows[s.name] for s in dev.members]
    image, map_file = device_run.link(fw, dev, libs, raw, work, jobs=opts.jobs)
    res = node_run.run_image(image, libs.target)
    res.map_file = map_file
    got = device_run.split_frames(res.frames, dev)
    fig: dict[str, Any] = {"windows": {s.name: len(got[s.name]) for s in dev.members}}
    for s in dev.members:
        e = m.modality(s.name)
        cmp = compare_frames(got[s.name], expected_frames(m, e, windows[s.name]),
                             f"device {dev.name!r}, modality {s.name!r} on {cfg}")
        if got[s.name] != singles[s.name]:
            raise CheckFailed(f"device {dev.name!r} on {cfg}: modality {s.name!r}'s frames "
                              "differ from its single-encoder image's; the shared arena "
                              "changed a result.")
        fig.setdefault("max_lsb_vs_litert", {})[s.name] = cmp["max_lsb_vs_litert"]
    fig["frames_equal_single_images"] = True
    fig["arena_used"] = res.arena_used
    if libs.target == "cortex-m4":
        fig.update(device_run.figures(res, dev, sum(node_state[s.name] for s in dev.members)))
    _keep(res, image, keep / cfg.replace("/", "-") / dev.folder if keep else None)
    return fig


def _ops(m: Manifest) -> list[str]:
    from crossl_edge.firmware_bridge.resolver import model_ops

    return sorted({op for e in m.modalities
                   for op in model_ops(m.path(e.artifacts["tflite_int8"]).read_bytes())})


def check_kernels(names: list[str]) -> tuple[str, ...]:
    """'reference,cmsis-nn' style names -> ('reference', 'cmsis_nn'); UsageError when unknown."""
    out = []
    for n in names:
        k = n.strip().lower().replace("-", "_")
        ts.check_choice("cortex-m4", k)
        if k not in out:
            out.append(k)
    return tuple(out)
