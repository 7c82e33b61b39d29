"""Resource report of an int8 encoder on a Cortex-M: parameters, MACs, flash, measured arena with
a stated margin, estimated cycles and latency, checked against a flash/RAM budget.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from crossl_edge.errors import CheckFailed, UsageError

# --- Assumptions (stated in resources.json and the README) -------------------------------------
# TFLM's arena on the host (x86_64, reference kernels) vs a Cortex-M build with CMSIS-NN: the
# CMSIS-NN conv kernels ask for an im2col scratch buffer the reference kernels do not, so we add
# the CMSIS-NN scratch of every conv/depthwise/FC op (DSP path of arm_convolve_s8 and friends:
# 2 columns x cin*kh*kw int16 for a conv), summed over ops: an upper bound, since TFLM plans each
# scratch buffer only for the lifetime of its op. On top: 10% (at least 1 KiB) for TFLM versions
# and targets that differ from the one measured. Host pointers are 8 bytes, a Cortex-M's 4, so the
# host's persistent allocations already overstate the target's.
ARENA_HEADROOM_FRACTION: Final[float] = 0.10
ARENA_HEADROOM_MIN: Final[int] = 1024
ARENA_ALIGN: Final[int] = 16
# Flash for code (estimates; measure your own link map): the TFLM runtime core (interpreter,
# allocator, flatbuffer parsing, error reporting) and an average per registered kernel.
TFLM_CORE_CODE_BYTES: Final[int] = 24 * 1024
KERNEL_CODE_BYTES: Final[int] = 4 * 1024
HEAVY_KERNEL_CODE_BYTES: Final[int] = 8 * 1024  # CONV_2D/DEPTHWISE/FC with CMSIS-NN variants
HEAVY_OPS: Final[frozenset[str]] = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"})
NODE_CODE_ESTIMATE_BYTES: Final[int] = 2 * 1024  # node example + frame codec, when not measured
STACK_ESTIMATE_BYTES: Final[int] = 2 * 1024  # TFLM Invoke() + node loop call depth
# Throughput. MLPerf Tiny keyword spotting on a Cortex-M4F @ 120 MHz ran 181.9 ms with the TFLM
# reference kernels and 72.7 ms with an optimized library: 2.5x. CMSIS-NN int8 convs reach about
# 0.5-1 MAC/cycle on an M4 (SIMD SMLAD) and 1-2 on an M7 (dual issue): we take the low ends, and
# the reference kernels 2.5x slower. Elementwise int8 ops with requantization: ~10 cycles/element
# on an M4, ~5 on an M7.
REFERENCE_SLOWDOWN: Final[float] = 181.9 / 72.7
TARGETS: Final[dict[str, dict[str, float]]] = {
    "cortex-m4@120MHz": {"hz": 120e6, "cmsis_nn_macs_per_cycle": 0.5, "cycles_per_element": 10},
    "cortex-m7@480MHz": {"hz": 480e6, "cmsis_nn_macs_per_cycle": 1.0, "cycles_per_element": 5},
}
_UNITS: Final[dict[str, int]] = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024,
                                 "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20}
_SHAPE_ONLY: Final[frozenset[str]] = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "QUANTIZE",
                                                "DEQUANTIZE"})
_REDUCTIONS: Final[frozenset[str]] = frozenset({"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN"})


def parse_size(text: str | int) -> int:
    """'256KiB', '64KB', '64k', '1MiB' or '65536' -> bytes (K/KB/KiB all mean 1024 here)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS or float(m.group(1)) <= 0:
        raise UsageError(f"size {text!r} is not understood; write it like 256KiB, 64KB or 65536.")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int | None


@dataclass(frozen=True)
class GraphInfo:
    """What the flatbuffer says: ops, I/O, MACs, constant elements, CMSIS-NN scratch bound."""

    ops: list[str]
    op_count: int
    schema_version: int
    input: TensorInfo
    output: TensorInfo
    macs: int
    elementwise_elements: int
    constant_elements: int
    cmsis_scratch_bytes: int
    per_op_macs: list[tuple[str, int]] = field(default_factory=list)


def _tensor(g: Any, idx: int, types: dict[int, str]) -> TensorInfo:
    t = g.Tensors(idx)
    q = t.Quantization()
    scale = zp = None
    if q is not None and q.ScaleLength() > 0:
        scale, zp = float(q.Scale(0)), int(q.ZeroPoint(0))
    shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    return TensorInfo(shape, types.get(t.Type(), str(t.Type())), scale, zp)


def inspect_model(tflite_bytes: bytes) -> GraphInfo:
    """Read subgraph 0 of an int8 .tflite with the `tflite` flatbuffer package."""
    from crossl_edge.firmware_bridge.resolver import model_ops
    from crossl_edge.tflite_graph import iter_ops, read_model, tensor_type_names

    ops = model_ops(tflite_bytes)
    m = read_model(tflite_bytes)
    g = m.Subgraphs(0)
    if g.InputsLength() != 1 or g.OutputsLength() != 1:
        raise CheckFailed(f"an encoder has one input and one output; this model has "
                          f"{g.InputsLength()} and {g.OutputsLength()}.")
    types = tensor_type_names()
    macs = elementwise = scratch = 0
    per_op: list[tuple[str, int]] = []
    for v in iter_ops(m, subgraph=0):
        name, ins, out = v.name, v.input_tensors(), v.output_tensors()[0]
        out_n = int(np.prod(out.ShapeAsNumpy())) if out.ShapeLength() else 1
        w = [int(s) for s in ins[1].ShapeAsNumpy()] if len(ins) > 1 and ins[1].ShapeLength() \
            else []
        n = 0
        if name == "CONV_2D" and len(w) == 4:          # filter (cout, kh, kw, cin)
            n = out_n * w[1] * w[2] * w[3]
            scratch += _align(4 * w[1] * w[2] * w[3])
        elif name == "DEPTHWISE_CONV_2D" and len(w) == 4:  # filter (1, kh, kw, cout)
            n = out_n * w[1] * w[2]
            scratch += _align(2 * w[1] * w[2] * w[3])
        elif name == "FULLY_CONNECTED" and len(w) == 2:   # filter (cout, cin)
            n = out_n * w[1]
            scratch += _align(4 * w[0])
        elif name == "BATCH_MATMUL" and ins[0].ShapeLength():
            n = out_n * int(ins[0].ShapeAsNumpy()[-1])
        elif name in _REDUCTIONS and ins[0].ShapeLength():
            elementwise += int(np.prod(ins[0].ShapeAsNumpy()))  # cost follows what is read
        elif name not in _SHAPE_ONLY:
            elementwise += out_n
        macs += n
        per_op.append((name, n))
    const = 0
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        buf = m.Buffers(t.Buffer()) if t.Buffer() < m.BuffersLength() else None
        if buf is not None and buf.DataLength() > 0 and t.ShapeLength():
            const += int(np.prod(t.ShapeAsNumpy()))
    return GraphInfo(ops, g.OperatorsLength(), int(m.Version()), _tensor(g, g.Inputs(0), types),
                     _tensor(g, g.Outputs(0), types), macs, elementwise, const, scratch, per_op)


def _align(n: int, a: int = ARENA_ALIGN) -> int:
    return (n + a - 1) // a * a


def arena_budget(measured: int, graph: GraphInfo) -> dict[str, int]:
    """Arena to reserve on the target: measured + CMSIS-NN scratch + headroom, 16-aligned."""
    headroom = max(ARENA_HEADROOM_MIN, math.ceil(ARENA_HEADROOM_FRACTION * measured))
    margin = graph.cmsis_scratch_bytes + headroom
    return {"measured": measured, "cmsis_nn_scratch": graph.cmsis_scratch_bytes,
            "headroom": headroom, "margin": margin, "size": _align(measured + margin)}


def latency(graph: GraphInfo) -> dict[str, dict[str, float]]:
    """Estimated cycles and ms per target, for CMSIS-NN and for the TFLM reference kernels."""
    out: dict[str, dict[str, float]] = {}
    for target, t in TARGETS.items():
        rate = t["cmsis_nn_macs_per_cycle"]
        elem = graph.elementwise_elements * t["cycles_per_element"]
        for kernels, r in (("cmsis_nn", rate), ("reference", rate / REFERENCE_SLOWDOWN)):
            cycles = graph.macs / r + elem
            out.setdefault(target, {})[f"{kernels}_cycles"] = round(cycles)
            out[target][f"{kernels}_ms"] = round(cycles / t["hz"] * 1e3, 3)
    return out


def assumptions() -> dict[str, Any]:
    """The constants behind every estimate, written next to the figures."""
    return {
        "arena": "TFLM RecordingMicroAllocator / minimum-arena bisection on the host "
                 "(reference kernels), plus the CMSIS-NN scratch of every conv/depthwise/FC op "
                 f"(summed: an upper bound), plus {ARENA_HEADROOM_FRACTION:.0%} (>= "
                 f"{ARENA_HEADROOM_MIN} B) headroom for other TFLM versions and targets; "
                 "rounded up to 16 B",
        "code_bytes": f"estimate: TFLM core {TFLM_CORE_CODE_BYTES} B + {KERNEL_CODE_BYTES} B per "
                      f"kernel ({HEAVY_KERNEL_CODE_BYTES} B for {', '.join(sorted(HEAVY_OPS))}) "
                      "+ node example and frame codec (arm-none-eabi-size when available)",
        "stack_bytes": STACK_ESTIMATE_BYTES,
        "macs_per_cycle": {k: v["cmsis_nn_macs_per_cycle"] for k, v in TARGETS.items()},
        "reference_kernel_slowdown": round(REFERENCE_SLOWDOWN, 3),
        "reference_slowdown_source": "MLPerf Tiny keyword spotting, Cortex-M4F @ 120 MHz: "
                                     "181.9 ms TFLM reference vs 72.7 ms optimized",
        "elementwise_cycles_per_element": {k: v["cycles_per_element"]
                                           for k, v in TARGETS.items()},
        "units": "K/KB/KiB = 1024 bytes",
    }


def code_estimate(ops: list[str], node_code: int | None) -> dict[str, Any]:
    kernels = sum(HEAVY_KERNEL_CODE_BYTES if op in HEAVY_OPS else KERNEL_CODE_BYTES for op in ops)
    node = NODE_CODE_ESTIMATE_BYTES if node_code is None else node_code
    return {"tflm_core": TFLM_CORE_CODE_BYTES, "kernels": kernels, "node_and_codec": node,
            "node_and_codec_source": "estimate" if node_code is None else "arm-none-eabi-size",
            "total": TFLM_CORE_CODE_BYTES + kernels + node}


def check_budget(report: dict[str, Any], *, flash_budget: int, ram_budget: int) -> list[str]:
    """One message per modality and resource over budget (empty when everything fits)."""
    over = []
    for name, r in report.items():
        for res, budget in (("flash", flash_budget), ("ram", ram_budget)):
            total = r[res]["total"]
            if total > budget:
                over.append(f"modality {name!r} needs {total:,} B of {res.upper()}, over the "
                            f"{budget:,} B budget")
    return over


def table(report: dict[str, Any], *, flash_budget: int, ram_budget: int) -> str:
    """A readable table of the per-modality figures."""
    heads = ["modality", "params", "MACs", "model B", "flash B", "arena B", "RAM B",
             "M4 ms", "M7 ms", "fits"]
    rows = []
    for name, r in report.items():
        m4, m7 = (r["latency_estimate"][t] for t in ("cortex-m4@120MHz",
                                                         "cortex-m7@480MHz"))
        fits = r["flash"]["total"] <= flash_budget and r["ram"]["total"] <= ram_budget
        rows.append([name, f"{r['params']:,}", f"{r['macs']:,}", f"{r['flash']['model']:,}",
                     f"{r['flash']['total']:,}", f"{r['arena']['size']:,}",
                     f"{r['ram']['total']:,}",
                     f"{m4['cmsis_nn_ms']:.1f} ({m4['reference_ms']:.0f})",
                     f"{m7['cmsis_nn_ms']:.1f} ({m7['reference_ms']:.0f})",
                     "yes" if fits else "NO"])
    from crossl_edge.tables import table as text_table

    lines = [text_table(heads, rows, first_left=True)]
    lines.append(f"budget: flash {flash_budget:,} B, RAM {ram_budget:,} B; RAM = arena (measured "
                 "+ margin) + node state + stack; latency: CMSIS-NN estimate (reference kernels)")
    return "\n".join(lines)


def measured_assumptions() -> dict[str, Any]:
    """How the measured figures (`crossl-edge firmware --build`) were obtained."""
    return {
        "flash": "GNU ld link map of the Cortex-M4F node image (-Os, newlib-nano, --gc-sections), "
                 "split into model array, TFLM core, kernels (TFLM + CMSIS-NN), glue + node loop "
                 "+ frame codec, and libc/libm/libgcc; the run harness (startup, sample data) "
                 "is left out",
        "ram": "static = .data + .bss of the same parts (includes the whole tensor arena); "
               "arena_used = MicroInterpreter::arena_used_bytes() after the runs; stack = "
               "painted stack high-water mark of the whole run (harness frames included: an "
               "upper bound); node_state = sizeof the node struct; total = static + node_state "
               "+ stack",
        "instructions": "QEMU mps2-an386 -icount shift=0: SysTick ticks calibrated against a "
                        "loop of known instruction count; a LOWER BOUND on cycles (no wait "
                        "states, multi-cycle instructions count once)",
        "ms_estimate": "instructions / 120 MHz: an estimate, not a measurement",
        "per_op": "one more invoke on the last window in a second interpreter whose kernel "
                  "registrations are wrapped: SysTick (QEMU -icount) around each op's Invoke(); "
                  "TFLite Micro's MicroProfiler hook is compiled out by "
                  "TF_LITE_STRIP_ERROR_STRINGS; the profiler's code and arena count as harness",
        "frames": "every window of samples.npz through the node loop; frame bytes compared "
                  "with the Python pipeline on LiteRT's builtin kernels",
        "units": "bytes",
    }


def measured_table(report: dict[str, Any], *, flash_budget: int, ram_budget: int) -> str:
    """Per modality and Cortex-M4 kernel set: measured flash, RAM, arena, stack, instructions."""
    from crossl_edge.tables import table as text_table

    heads = ["modality", "kernels", "flash B", "model", "TFLM core", "kernels B", "glue+node",
             "libc", "RAM B", "arena used", "stack", "M instr/invoke", "ms@120MHz*", "fits"]
    rows = []
    for name, r in report.items():
        for cfg, f in r.get("measured", {}).items():
            if not cfg.startswith("cortex-m4/"):
                continue
            fl, ram, ins = f["flash"], f["ram"], f["instructions"]
            fits = fl["total"] <= flash_budget and ram["total"] <= ram_budget
            rows.append([name, cfg.split("/", 1)[1], f"{fl['total']:,}", f"{fl['model']:,}",
                         f"{fl['tflm_core']:,}", f"{fl['kernels']:,}",
                         f"{fl['glue_node_codec']:,}", f"{fl['libc']:,}", f"{ram['total']:,}",
                         f"{ram['arena_used']:,}", f"{ram['stack']:,}",
                         f"{(ins['per_invoke'] or 0) / 1e6:.2f}",
                         f"{next(iter(f['ms_estimate'].values())) or 0:.1f}",
                         "yes" if fits else "NO"])
    lines = [text_table(heads, rows, first_left=True)]
    lines.append(f"measured on QEMU mps2-an386 (Cortex-M4F); budget: flash {flash_budget:,} B, "
                 f"RAM {ram_budget:,} B; instructions are a lower bound on cycles; "
                 "*ms at 120 MHz is an estimate from them")
    return "\n".join(lines)


def per_op_table(report: dict[str, Any]) -> str:
    """Per modality and operator: MACs and instructions measured on the M4 per kernel set."""
    from crossl_edge.tables import table as text_table

    blocks = []
    for name, r in report.items():
        runs = {cfg.split("/", 1)[1]: f["per_op"] for cfg, f in r.get("measured", {}).items()
                if cfg.startswith("cortex-m4/") and f.get("per_op")}
        if not runs:
            continue
        kernels = sorted(runs)
        first = runs[kernels[0]]["ops"]
        heads = ["#", "op", "MACs", *(f"{k} instr" for k in kernels),
                 *(f"{k} %" for k in kernels)]
        rows = []
        for i, op in enumerate(first):
            ins = [runs[k]["ops"][i]["instructions"] for k in kernels]
            rows.append([str(i), op["op"], f"{op['macs']:,}", *(f"{n:,}" for n in ins),
                         *(f"{100 * n / max(1, runs[k]['profiled_invoke']):.1f}"
                           for n, k in zip(ins, kernels, strict=True))])
        rows.append(["", "invoke (profiled)", f"{r['macs']:,}",
                     *(f"{runs[k]['profiled_invoke']:,}" for k in kernels),
                     *("100.0" for _ in kernels)])
        blocks.append(f"instructions per op, modality {name!r} (measured: QEMU -icount on the "
                      f"Cortex-M4F, one invoke)\n{text_table(heads, rows, first_left=True)}")
    return "\n\n".join(blocks)
