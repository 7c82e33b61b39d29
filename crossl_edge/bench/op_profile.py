"""Per-op latency profile of a .tflite on a TFLite runtime, by timing every prefix of the graph.

The Python interpreters expose no op profiler, so prefix k (ops 0..k-1, its output the last op's
output) is cut from the flatbuffer in place (two vector lengths and one output index) and timed;
op k's cost is the difference of consecutive prefix medians. With XNNPACK the delegate fuses
runs of ops, so a cost lands on the op that closes a partition: read it per op type, roughly.
"""

from __future__ import annotations

import struct
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class OpCost:
    """One op: its index, type, output shape and the median-latency increment it adds."""

    index: int
    op: str
    output_shape: list[int]
    cumulative_us: float
    delta_us: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _vector(tab: Any, field_offset: int) -> int:
    """Absolute position of the first element of a table's vector field."""
    return int(tab.Vector(tab.Offset(field_offset)))


def prefix_model(model: bytes, n_ops: int) -> bytes:
    """``model`` cut after its first ``n_ops`` ops (subgraph 0), output = the last op's output 0."""
    import tflite

    buf = bytearray(model)
    g = tflite.Model.GetRootAsModel(bytes(buf), 0).Subgraphs(0)
    if not 1 <= n_ops <= g.OperatorsLength():
        raise ValueError(f"n_ops {n_ops} not in 1..{g.OperatorsLength()}")
    out_tensor = g.Operators(n_ops - 1).Outputs(0)
    ops_at = _vector(g._tab, 10)                       # SubGraph.operators  # noqa: SLF001
    outs_at = _vector(g._tab, 8)                       # SubGraph.outputs  # noqa: SLF001
    struct.pack_into("<I", buf, ops_at - 4, n_ops)
    struct.pack_into("<I", buf, outs_at - 4, 1)
    struct.pack_into("<i", buf, outs_at, out_tensor)
    return bytes(buf)


def _median_us(runner: Any, x: np.ndarray, *, runs: int) -> float:
    for _ in range(max(runs // 10, 5)):
        runner.run(x)
    ts = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter_ns()
        runner.run(x)
        ts[i] = time.perf_counter_ns() - t0
    return float(np.median(ts) / 1e3)


def profile_ops(path: str | Path, x: np.ndarray, *, runtime: str = "litert", threads: int = 1,
                xnnpack: bool = True, runs: int = 200) -> list[OpCost]:
    """Per-op cost of model ``path`` (subgraph 0) on input ``x`` (the model's input dtype)."""
    from crossl_edge.runtime.backends import TFLiteRunner
    from crossl_edge.tflite_graph import iter_ops, read_model

    data = Path(path).read_bytes()
    rows: list[OpCost] = []
    prev = 0.0
    with tempfile.TemporaryDirectory() as d:
        for v in iter_ops(read_model(data), subgraph=0):
            k = v.index + 1
            p = Path(d) / f"prefix{k}.tflite"
            p.write_bytes(prefix_model(data, k))
            r = TFLiteRunner(p, threads=threads, xnnpack=xnnpack, backend=runtime)
            cum = _median_us(r, x, runs=runs)
            shape = [int(s) for s in v.output_tensors()[0].ShapeAsNumpy()]
            rows.append(OpCost(v.index, v.name, shape, cum, cum - prev))
            prev = cum
    return rows


def by_type(rows: list[OpCost]) -> list[dict[str, Any]]:
    """Op types by total increment, largest first, with their count and share of the whole."""
    total = sum(max(r.delta_us, 0.0) for r in rows) or 1.0
    acc: dict[str, list[float]] = {}
    for r in rows:
        acc.setdefault(r.op, []).append(r.delta_us)
    out = [{"op": k, "count": len(v), "total_us": float(sum(v)),
            "share": float(max(sum(v), 0.0) / total)} for k, v in acc.items()]
    return sorted(out, key=lambda o: -o["total_us"])


def profile_bundle(manifest: Any, feeds: dict[str, dict[str, np.ndarray]], *, runtime: str,
                   threads: int, xnnpack: bool, runs: int) -> list[dict[str, Any]]:
    """Per-op profiles of every encoder's float and int8 .tflite; ``feeds[name][kind]`` is one
    real input window for that model."""
    out = []
    for m in manifest.modalities:
        for kind in ("tflite", "tflite_int8"):
            if kind not in m.artifacts:
                continue
            rows = profile_ops(manifest.path(m.artifacts[kind]), feeds[m.name][kind],
                               runtime=runtime, threads=threads, xnnpack=xnnpack, runs=runs)
            out.append({"model": m.name, "kind": kind, "runtime": runtime, "threads": threads,
                        "xnnpack": xnnpack, "runs_per_prefix": runs,
                        "total_us": rows[-1].cumulative_us if rows else 0.0,
                        "by_type": by_type(rows), "ops": [r.to_json() for r in rows]})
    return out


def format_profiles(profiles: list[dict[str, Any]]) -> list[str]:
    """Text lines: per model, op types by total increment (share of the whole)."""
    lines = ["", "per-op profile (median latency of each graph prefix; an op's cost is the "
             "increment it adds; with XNNPACK fused partitions charge the op that closes them)"]
    for p in profiles:
        parts = ", ".join(f"{t['op']} {t['total_us']:.1f} ({100 * t['share']:.0f}%)"
                          for t in p["by_type"])
        lines.append(f"  {p['model']} {p['kind']} {p['runtime']} {p['threads']} thr, XNNPACK "
                     f"{'on' if p['xnnpack'] else 'off'}: {p['total_us']:.1f} us = {parts}")
    return lines
