"""`--build` of a device image: its run harness (every modality's sample windows pushed tick by
tick in timestamp order through crossl_device_<d>_push()), the link for the host or the
Cortex-M4F, the run, and the check of its frames against LiteRT and the single-encoder images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.errors import CheckFailed
from crossl_edge.firmware_bridge import node_run
from crossl_edge.firmware_bridge import tflm_sources as ts
from crossl_edge.firmware_bridge.buildfile import LIB_CORE, LIB_KERNELS
from crossl_edge.firmware_bridge.device_image import DeviceSpec
from crossl_edge.firmware_bridge.tflm_build import TflmLibs, make_vars, run_make


def schedule(raw: list[np.ndarray], rates: list[float]) -> tuple[list[int], list[int]]:
    """The sampling ticks of modalities with windows ``raw`` (N, C, T) at ``rates``: (t_us, mask
    of the modalities sampling then) in time order; modality k's j-th sample at T0 + j*dt_k."""
    ticks: dict[int, int] = {}
    for k, (x, hz) in enumerate(zip(raw, rates, strict=True)):
        dt = node_run.dt_us(hz)
        for j in range(x.shape[0] * x.shape[2]):
            t = node_run.T0_US + dt * j
            ticks[t] = ticks.get(t, 0) | (1 << k)
    order = sorted(ticks)
    return order, [ticks[t] for t in order]


def run_data(d: DeviceSpec, raw: list[np.ndarray]) -> str:
    """run_device_data.h: each modality's samples (exact float literals) and the tick schedule."""
    times, masks = schedule(raw, [s.sample_rate_hz for s in d.members])
    parts = [f"/* Device {d.c_name}: {len(times)} ticks, written by crossl-edge. */",
             f"#define RUN_MODALITIES {len(d.members)}u", f"#define RUN_TICKS {len(times)}u",
             f"#define RUN_SPIN {node_run.SPIN}u"]
    for k, x in enumerate(raw):
        v = np.ascontiguousarray(np.transpose(x, (0, 2, 1)), np.float32).ravel()
        rows = ",\n".join("    " + ", ".join(float(a).hex() + "f" for a in v[i:i + 6])
                          for i in range(0, v.size, 6))
        parts.append(f"static const float run_samples_{k}[{v.size}] = {{\n{rows}\n}};")
    names = ", ".join(f"run_samples_{k}" for k in range(len(raw)))
    chans = ", ".join(f"{x.shape[1]}u" for x in raw)
    t_rows = ",\n".join("    " + ", ".join(f"{t}ull" for t in times[i:i + 8])
                        for i in range(0, len(times), 8))
    m_rows = ",\n".join("    " + ", ".join(f"{m}u" for m in masks[i:i + 16])
                        for i in range(0, len(masks), 16))
    parts += [f"static const float *const run_samples[RUN_MODALITIES] = {{{names}}};",
              f"static const uint32_t run_channels[RUN_MODALITIES] = {{{chans}}};",
              f"static const uint64_t run_tick_us[RUN_TICKS] = {{\n{t_rows}\n}};",
              f"static const uint8_t run_tick_mask[RUN_TICKS] = {{\n{m_rows}\n}};"]
    return "\n".join(parts) + "\n"


def harness(d: DeviceSpec) -> str:
    """run_device.c: push every tick, time it, print each frame, the arena and the stack."""
    p, m = d.prefix, d.macro
    frame = max(s.frame_size for s in d.members) + 8  # + v2 header growth
    used = "\n".join(f"    if ({s.prefix}_tflm_arena_used() > used) used = "
                     f"{s.prefix}_tflm_arena_used();" for s in d.members)
    return f"""/* crossl-edge device run harness (C99), written by `crossl-edge firmware --build`:
 * every sample of run_device_data.h through {p}_push() in time order; a WINDOW record (the ticks
 * since the previous one) and the frames of each tick that sent some; the arena and the stack. */
#include <stdint.h>
#include <string.h>
#include "crossl_frame.h"
#include "{p}.h"
#include "run_device_data.h"

#define RUN_FRAME_MAX {frame}u
#define RUN_LINE_BYTES (2u * RUN_FRAME_MAX + 64u)
#include "run_io.h"

static uint8_t sent[RUN_MODALITIES][RUN_FRAME_MAX];
static size_t sent_len[RUN_MODALITIES];
static uint32_t n_sent;

int {p}_send(uint8_t modality_id, const uint8_t *frame, size_t len)
{{
    (void)modality_id; /* the frame carries it */
    if (n_sent >= RUN_MODALITIES || len > RUN_FRAME_MAX) return -1;
    memcpy(sent[n_sent], frame, len);
    sent_len[n_sent++] = len;
    return 0;
}}

static {p}_t dev;

int main(void)
{{
    uint32_t i, k, w = 0u, next[RUN_MODALITIES];
    uint64_t t0, acc = 0u;
    size_t used = 0u;
    int32_t r;
    const float *s[RUN_MODALITIES];
#ifdef CROSSL_RUN_M4
    paint_stack();
    t0 = ticks();
    spin(RUN_SPIN);
    put_record("CAL", 2ull * RUN_SPIN, ticks() - t0);
#endif
    memset(next, 0, sizeof next);
    {p}_init(&dev);
    for (i = 0u; i < RUN_TICKS; i++) {{
        for (k = 0u; k < RUN_MODALITIES; k++) {{
            s[k] = NULL;
            if ((run_tick_mask[i] >> k) & 1u)
                s[k] = &run_samples[k][(size_t)next[k]++ * run_channels[k]];
        }}
        n_sent = 0u;
        t0 = ticks();
        r = {p}_push(&dev, s, run_tick_us[i]);
        acc += ticks() - t0;
        if (r < 0) {{
            put_record("ERROR", i, (uint64_t)(uint32_t)-r);
            put("RESULT FAIL\\n");
            return 1;
        }}
        if (r > 0) {{
            put_record("WINDOW", w++, acc);
            acc = 0u;
            for (k = 0u; k < n_sent; k++) put_frame(sent[k], sent_len[k]);
        }}
    }}
{used}
    put_record("ARENA", used, {m}_ARENA_SIZE);
#ifdef CROSSL_RUN_M4
    put_record("STACK", stack_used(), 0u);
#endif
    put("RESULT PASS\\n");
    return 0;
}}
"""


def link(fw: Path, d: DeviceSpec, libs: TflmLibs, raw: list[np.ndarray], work: Path, *,
         jobs: int = 2) -> tuple[Path, Path | None]:
    """Build the device's objects with fw/crossl.mk and link its run image into ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    app = work / "app"
    run_make(fw / "crossl.mk", [*make_vars(libs.root, libs.target, libs.kernels, app,
                                           libs.lib_dir), f"crossl-device-{d.c_name}"],
             jobs=jobs, what=f"the device {d.name!r} image for {libs.target}")
    (work / "run_device_data.h").write_text(run_data(d, raw))
    (work / "run_device.c").write_text(harness(d))
    node_run.write_run_io(work)
    tc = ts.TOOLCHAINS[libs.target]
    m4 = libs.target == "cortex-m4"
    obj = work / "run_device.o"
    node_run.check_run([tc.cc, *ts.flags(libs.target, libs.kernels)["c"], "-Wall", "-Wextra",
                        "-Werror", *(["-DCROSSL_RUN_M4"] if m4 else []),
                        f"-I{fw / d.folder}", f"-I{fw / 'common'}", f"-I{work}", "-c",
                        str(work / "run_device.c"), "-o", str(obj)],
                       f"compiling the device {d.name!r} run harness for {libs.target}")
    objs = [app / d.folder / f"{d.prefix}.o"]
    for s in d.members:
        objs += [app / d.folder / f"{s.prefix}_tflm.o", app / s.name / f"{s.prefix}_model.o",
                 app / s.name / "node_example.o"]
    out = work / ("device.elf" if m4 else "device")
    map_file = work / "device.map" if m4 else None
    extra = [*node_run.M4_LINK, f"-T{node_run.TEMPLATES / 'mps2_an386.ld'}",
             f"-Wl,-Map={map_file}"] if map_file else []
    node_run.check_run([tc.cxx, *tc.arch, tc.opt, *extra, str(obj), *map(str, objs),
                        "-Wl,--start-group", str(libs.lib_dir / LIB_KERNELS),
                        str(libs.lib_dir / LIB_CORE), "-Wl,--end-group", "-lm", "-o", str(out)],
                       f"linking the device {d.name!r} image for {libs.target}")
    return out, map_file


def split_frames(frames: list[bytes], d: DeviceSpec) -> dict[str, list[bytes]]:
    """The device's frames per modality (by the id each frame carries), in order sent."""
    from crossl_edge.wire.frame import FrameError, decode_frame

    by_id = {s.modality_id: s.name for s in d.members}
    out: dict[str, list[bytes]] = {s.name: [] for s in d.members}
    for i, f in enumerate(frames):
        try:
            mid = decode_frame(f).modality_id
        except FrameError as e:
            raise CheckFailed(f"device {d.name!r}: frame {i} is corrupt ({e}).") from e
        if mid not in by_id:
            raise CheckFailed(f"device {d.name!r}: frame {i} carries modality id {mid}, which "
                              "the device does not have.")
        out[by_id[mid]].append(f)
    return out


def figures(res: node_run.RunResult, d: DeviceSpec, node_state: int) -> dict[str, Any]:
    """Flash / RAM from the link map and instructions per window of one Cortex-M4 run."""
    assert res.map_file is not None
    split = node_run.map_split(res.map_file, tuple(s.prefix for s in d.members))
    flash = {k: v for k, v in split["flash"].items() if k != "harness"}
    flash["total"] = sum(flash.values())
    static = sum(v for k, v in split["ram"].items() if k != "harness")
    later = res.window_ticks[1:] or res.window_ticks
    stack = res.stack or 0
    return {"flash": flash, "flash_harness_excluded": split["flash"]["harness"],
            "ram": {"static": static, "arena_size": res.arena_size, "arena_used": res.arena_used,
                    "node_state": node_state, "stack": stack,
                    "total": static + node_state + stack},
            "instructions": {"per_window": res.instructions(float(np.mean(later))),
                             "first_window": res.instructions(float(res.window_ticks[0]))}}
