"""Latency/memory benchmark of a bundle's models on every installed runtime, on real windows.

MLPerf-Tiny-like timing (>= min_seconds, >= min_runs, median of windows); numpy only at import.
"""

from __future__ import annotations

import functools
import gc
import logging
import math
import subprocess
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.bench import report
from crossl_edge.bench.report import TFLITE_RUNTIMES
from crossl_edge.errors import UsageError
from crossl_edge.manifest import ARTIFACT_KINDS, Manifest
from crossl_edge.runtime.bundle import open_bundle
from crossl_edge.samples import SAMPLES, bundle_samples_path, load_samples

log = logging.getLogger(__name__)

FEED = {"tflite": "normalized float32 (1,T,C)", "tflite_int8": "normalized, int8 (1,T,C)",
        "onnx": "normalized float32 (1,C,T)", "onnx_int8": "normalized float32 (1,C,T)"}
TFLM_NOTE = "functional, x86 reference kernels, not an MCU figure"
KEEP_SAMPLES = 4000  # per row, for plots only (never written to JSON)


@dataclass
class Latency:
    """Steady-state latency (seconds), pooled over windows, plus each window's mean."""

    runs: int
    seconds: float
    mean: float
    std: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float
    window_means: list[float]
    median_of_windows: float  # MLPerf Tiny's figure: median over windows of the window mean

    @classmethod
    def of(cls, ns: np.ndarray, bounds: Sequence[int], seconds: float) -> Latency:
        s = ns.astype(np.float64) / 1e9
        p50, p90, p99 = np.percentile(s, [50, 90, 99])
        means = [float(s[a:b].mean()) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        return cls(int(s.size), seconds, float(s.mean()), float(s.std()), float(p50), float(p90),
                   float(p99), float(s.min()), float(s.max()), means, float(np.median(means)))


@dataclass
class BenchRow:
    """One artifact on one runtime with one setting of threads and XNNPACK."""

    model: str  # modality name, or "phone"
    kind: str  # tflite | tflite_int8 | onnx | onnx_int8
    path: str
    runtime: str
    runtime_version: str
    threads: int
    xnnpack: bool | None  # None: not applicable to this runtime
    status: str = "ok"  # ok | functional | error
    note: str = ""
    size_bytes: int = 0
    load_s: float | None = None
    first_s: float | None = None
    warmup_runs: int = 0
    warmup_mean_s: float | None = None
    steady: Latency | None = None
    rss_load_bytes: int | None = None  # VmRSS after load - before load
    peak_rss_bytes: int | None = None  # VmHWM through load+first+warm-up - VmRSS before load
    arena_bytes: int | None = None  # TFLM only: the manifest's measured minimum arena
    inputs: dict[str, Any] = field(default_factory=dict)
    samples_s: np.ndarray | None = field(default=None, repr=False)  # subsample, plots only

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "samples_s"}


@dataclass
class PathBench:
    """A whole on-device path timed stage by stage (node: raw -> frame; phone: frames -> class)."""

    name: str
    runtime: str
    kind: str
    threads: int
    xnnpack: bool | None
    description: str
    stages_mean_s: dict[str, float]
    total: Latency
    inputs: dict[str, Any]
    samples_s: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "samples_s"}


@dataclass
class BenchResult:
    """Everything one `run_bench` measured, with the settings and machine needed to reproduce it."""

    bundle: str
    settings: dict[str, Any]
    environment: dict[str, Any]
    rows: list[BenchRow]
    paths: list[PathBench]
    ratios: list[dict[str, Any]]
    notes: list[str]
    profiles: list[dict[str, Any]] = field(default_factory=list)  # per-op, when asked

    def to_json(self) -> dict[str, Any]:
        return {"kind": "crossl-edge-bench", "version": 1, "bundle": self.bundle,
                "settings": self.settings, "environment": self.environment,
                "rows": [r.to_json() for r in self.rows],
                "paths": [p.to_json() for p in self.paths],
                "ratios": self.ratios, "notes": self.notes, "profiles": self.profiles}


def _open(runtime: str, path: Path, threads: int, xnnpack: bool | None) -> Any:
    from crossl_edge.runtime.backends import OnnxRunner, TFLiteRunner

    if runtime == "onnxruntime":
        return OnnxRunner(path, threads=threads)
    return TFLiteRunner(path, threads=threads, xnnpack=bool(xnnpack), backend=runtime)


@dataclass(frozen=True)
class Budget:
    """How long to time: >= min_seconds in all and >= min_runs per window, over `windows`."""

    min_seconds: float
    min_runs: int
    windows: int
    warmup_seconds: float


def steady_state(call: Callable[[int], Any], n: int, budget: Budget,
                 start: int = 0) -> tuple[Latency, np.ndarray, list[int]]:
    """Time ``call(i % n)`` in windows; return stats, a subsample and the input indices used."""
    ns, bounds, i = array("q"), [0], start
    per_window = budget.min_seconds / budget.windows
    clock = time.perf_counter_ns
    t_all = time.perf_counter()
    for _ in range(budget.windows):
        t_end, runs = time.perf_counter() + per_window, 0
        while runs < budget.min_runs or time.perf_counter() < t_end:
            t0 = clock()
            call(i % n)
            ns.append(clock() - t0)
            i, runs = i + 1, runs + 1
        bounds.append(len(ns))
    v = np.frombuffer(ns, np.int64)
    lat = Latency.of(v, bounds, time.perf_counter() - t_all)
    step = max(1, math.ceil(v.size / KEEP_SAMPLES))
    used = sorted({k % n for k in range(start, min(i, start + n))})
    return lat, v[::step].astype(np.float64) / 1e9, used


def _inputs_record(feeds: list[tuple[np.ndarray, ...]], used: list[int], what: str) -> dict:
    fed = [feeds[k][0] for k in used]
    return {"source": f"{SAMPLES} ({what})", "windows": len(feeds), "indices": used,
            "abs_mean": float(np.mean([np.abs(x.astype(np.float64)).mean() for x in fed]))}


def bench_model(row: BenchRow, path: Path, feeds: list[tuple[np.ndarray, ...]],
                budget: Budget, *, what: str) -> BenchRow:
    """Fill ``row``: load, first inference, warm-up, steady state, RSS; errors become the note."""
    gc.collect()
    rss0, _ = report.rss()
    reset = report.reset_peak_rss()
    try:
        t0 = time.perf_counter()
        runner = _open(row.runtime, path, row.threads, row.xnnpack)
        row.load_s = time.perf_counter() - t0
        rss1, _ = report.rss()
        t0 = time.perf_counter()
        runner.run(*feeds[0])
        row.first_s = time.perf_counter() - t0
        n, k, t_end, acc = len(feeds), 1, time.perf_counter() + budget.warmup_seconds, 0.0
        while k < budget.min_runs or time.perf_counter() < t_end:
            t0 = time.perf_counter()
            runner.run(*feeds[k % n])
            acc, k = acc + time.perf_counter() - t0, k + 1
        row.warmup_runs, row.warmup_mean_s = k - 1, acc / (k - 1)
        _, hwm = report.rss()
        if rss0 is not None and rss1 is not None:
            row.rss_load_bytes = rss1 - rss0
            row.peak_rss_bytes = hwm - rss0 if reset and hwm is not None else None
        row.steady, row.samples_s, used = steady_state(
            lambda j: runner.run(*feeds[j]), n, budget, start=k)
        row.inputs = _inputs_record(feeds, used, what)
    except Exception as e:  # noqa: BLE001 - one broken runtime/artifact must not stop the bench
        row.status, row.note = "error", f"{type(e).__name__}: {e}"
        log.warning("%s %s on %s failed: %s", row.model, row.kind, row.runtime, e)
    return row


def _encoder_feeds(m: Any, raw: np.ndarray, kind: str) -> list[tuple[np.ndarray, ...]]:
    if kind.startswith("tflite"):
        return [(m.tflite_input(w, int8=kind == "tflite_int8"),) for w in raw]
    return [(m.onnx_input(w),) for w in raw]


def real_latents(manifest: Manifest, windows: dict[str, np.ndarray],
                 runtimes: Sequence[str]) -> dict[str, np.ndarray]:
    """The int8 latents (N, D) each node would send for the sample windows (builtin kernels)."""
    out = {}
    tfl = next((r for r in runtimes if r in TFLITE_RUNTIMES), None)
    for m in manifest.modalities:
        if tfl is not None:
            runner = _open(tfl, manifest.path(m.artifacts["tflite_int8"]), 1, False)
            z = [runner.run(m.tflite_input(w, int8=True)).reshape(-1) for w in windows[m.name]]
        else:
            runner = _open("onnxruntime", manifest.path(m.artifacts["onnx_int8"]), 1, None)
            z = [m.latent_quant.quantize(runner.run(m.onnx_input(w)).reshape(-1))
                 for w in windows[m.name]]
        out[m.name] = np.stack(z).astype(np.int8)
    return out


def _phone_feeds(manifest: Manifest, latents: dict[str, np.ndarray]) -> list[tuple]:
    n = len(next(iter(latents.values())))
    present = np.ones((1, len(manifest.modalities)), np.float32)
    return [(np.stack([m.latent_quant.dequantize(latents[m.name][i])
                       for m in manifest.modalities])[None], present) for i in range(n)]


def tflm_row(m: Any, path: Path, feeds: list[tuple[np.ndarray, ...]], reference: np.ndarray,
             *, runs: int) -> BenchRow:
    """A few invocations in the TFLite Micro interpreter, in a subprocess (it can segfault)."""
    row = BenchRow(m.name, "tflite_int8", m.artifacts["tflite_int8"], "tflm",
                   report.runtime_version("tflm"), 1, None, status="functional", note=TFLM_NOTE,
                   size_bytes=path.stat().st_size,
                   arena_bytes=m.stats.tflm.arena_min_bytes if m.stats.tflm else None)
    n = min(runs, len(feeds))
    try:
        load_s, times, outs = report.tflm_invoke(path, np.stack([f[0] for f in feeds[:n]]),
                                                 arena=max(256 * 1024, 10 * row.size_bytes))
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        row.status, row.note = "error", str(e)
        return row
    row.load_s, row.first_s = load_s, float(times[0])
    rest = times[1:] if n > 1 else times
    row.steady = Latency.of((rest * 1e9).astype(np.int64), [0, rest.size], float(rest.sum()))
    row.samples_s = rest.astype(np.float64)
    lsb = int(np.abs(outs.reshape(n, -1).astype(np.int32) - reference[:n].astype(np.int32)).max())
    row.note += f"; {n} runs; max {lsb} LSB vs the reference int8 latents"
    row.inputs = _inputs_record(feeds, list(range(n)), "normalized, int8")
    return row


def node_path(manifest: Manifest, m: Any, windows: np.ndarray, runtime: str, *, threads: int,
              xnnpack: bool | None, budget: Budget) -> PathBench:
    """Raw window -> normalize/quantize -> int8 encoder -> LatentFrame -> wire bytes."""
    from crossl_edge.wire.frame import LatentDType, LatentFrame, encode_frame, fingerprint32

    tfl = runtime != "onnxruntime"
    kind = "tflite_int8" if tfl else "onnx_int8"
    runner = _open(runtime, manifest.path(m.artifacts[kind]), threads, xnnpack)
    fp, q = fingerprint32(manifest.fingerprint), m.latent_quant
    stages = np.zeros(3)
    clock = time.perf_counter_ns

    def call(i: int) -> None:
        t0 = clock()
        x = m.tflite_input(windows[i], int8=True) if tfl else m.onnx_input(windows[i])
        t1 = clock()
        z = runner.run(x).reshape(-1)
        t2 = clock()
        z = z.astype(np.int8) if tfl else q.quantize(z)
        encode_frame(LatentFrame(m.id, i, t2 // 1000, fp, LatentDType.INT8, z))
        stages[:] += (t1 - t0, t2 - t1, clock() - t2)

    for i in range(budget.min_runs):
        call(i % len(windows))
    stages[:] = 0
    lat, kept, used = steady_state(call, len(windows), budget)
    names = ("normalize+quantize", "encoder", "frame") if tfl else \
        ("normalize", "encoder", "quantize+frame")
    return PathBench(f"node:{m.name}", runtime, kind, threads, xnnpack,
                     f"raw window -> {names[0]} -> int8 encoder ({kind}) -> encode_frame",
                     {k: float(v / lat.runs / 1e9) for k, v in zip(names, stages, strict=True)},
                     lat, {"source": SAMPLES, "windows": len(windows), "indices": used}, kept)


def phone_path(manifest: Manifest, latents: dict[str, np.ndarray], backend: str, *,
               threads: int, budget: Budget) -> PathBench:
    """All modalities' frames of one window -> PhoneAggregator.submit -> a Prediction."""
    from crossl_edge.runtime.aggregator import PhoneAggregator
    from crossl_edge.wire.frame import LatentDType, LatentFrame, encode_frame, fingerprint32

    agg = PhoneAggregator(manifest, backend=backend, threads=threads, deadline_s=60.0)
    fp = fingerprint32(manifest.fingerprint)
    n = len(next(iter(latents.values())))
    # Pre-encoded frames; 8192 distinct seqs outlive the aggregator's memory of emitted ones.
    frames = [[encode_frame(LatentFrame(m.id, s, 0, fp, LatentDType.INT8, latents[m.name][s % n]))
               for m in manifest.modalities] for s in range(8192)]
    infer = [0.0]

    def call(s: int) -> None:
        out = [p for f in frames[s] for p in agg.submit(f)]
        if len(out) != 1 or out[0].empty:
            raise RuntimeError(f"phone path emitted {out!r}")
        infer[0] += out[0].inference_s

    for s in range(budget.min_runs):
        call(s)
    infer[0] = 0.0
    lat, kept, used = steady_state(call, len(frames), budget, start=budget.min_runs)
    total = lat.mean * lat.runs
    return PathBench(
        "phone", agg.backend, backend, threads, None,
        f"{len(manifest.modalities)} int8 frames -> decode/dequantize/assemble -> phone model "
        f"({backend}) -> softmax", {"decode+assemble": (total - infer[0]) / lat.runs,
                                    "phone model": infer[0] / lat.runs},
        lat, {"source": f"{SAMPLES} -> int8 encoders", "windows": n,
              "indices": sorted({s % n for s in used})}, kept)


def run_bench(bundle: str | Path, *, threads: Sequence[int] = (1,),
              xnnpack: Sequence[bool] = (True, False), runtimes: Sequence[str] | None = None,
              min_seconds: float = 10.0, min_runs: int = 10, windows: int = 5,
              quick: bool = False, profile: bool = False,
              progress: Callable[[str], None] | None = None) -> BenchResult:
    """Benchmark every artifact of ``bundle`` on every runtime, plus the node and phone paths
    (and, with ``profile``, the per-op cost of each encoder .tflite on the first TFLite runtime)."""
    manifest = open_bundle(bundle)
    if quick:
        min_seconds, windows = min(min_seconds, 0.3), min(windows, 3)
    if min_seconds <= 0 or min_runs < 1 or windows < 1 or not threads or min(threads) < 1:
        raise UsageError("--min-seconds must be > 0, and threads, runs and windows >= 1.")
    if not xnnpack:
        raise UsageError("--xnnpack needs at least one of on, off.")
    names, notes = report.resolve_runtimes(runtimes)
    say = progress or (lambda _msg: None)
    env = report.environment(names)
    raw, _ = load_samples(bundle_samples_path(manifest),
                          manifest.names)
    budget = Budget(min_seconds, min_runs, windows, min(1.0, 0.1 * min_seconds))
    compute = [r for r in names if r != "tflm"]
    latents = real_latents(manifest, raw, compute)
    targets = [(m.name, kind, m.artifacts[kind], _encoder_feeds(m, raw[m.name], kind), FEED[kind])
               for m in manifest.modalities for kind in ARTIFACT_KINDS if kind in m.artifacts]
    phone = _phone_feeds(manifest, latents)
    targets += [("phone", kind, rel, phone, "int8 encoder latents (1,M,D), all present")
                for kind, rel in manifest.aggregator.artifacts.items()]
    rows: list[BenchRow] = []
    for rt in compute:
        fmt, xs = ("onnx", (None,)) if rt == "onnxruntime" else ("tflite", tuple(xnnpack))
        for model, kind, rel, feeds, what in targets:
            for t in threads if kind.split("_")[0] == fmt else ():
                for x in xs:
                    say(f"{model} {kind} on {rt}, {t} thread(s), XNNPACK {x}")
                    path = manifest.path(rel)
                    row = BenchRow(model, kind, rel, rt, report.runtime_version(rt), t, x,
                                   size_bytes=path.stat().st_size)
                    rows.append(bench_model(row, path, feeds, budget, what=what))
    if "tflm" in names:
        for m in manifest.modalities:
            say(f"{m.name} tflite_int8 on TFLite Micro (functional)")
            rows.append(tflm_row(m, manifest.path(m.artifacts["tflite_int8"]),
                                 _encoder_feeds(m, raw[m.name], "tflite_int8"), latents[m.name],
                                 runs=5 if quick else 20))
    t0, x0 = threads[0], xnnpack[0]
    jobs: list[tuple[str, Callable[[], PathBench]]] = [
        (f"node path {m.name} on {rt}", functools.partial(
            node_path, manifest, m, raw[m.name], rt, threads=t0,
            xnnpack=None if rt == "onnxruntime" else x0, budget=budget))
        for rt in compute for m in manifest.modalities]
    jobs += [(f"phone path on {b}", functools.partial(phone_path, manifest, latents, b,
                                                      threads=t0, budget=budget))
             for b in ("tflite", "onnx") if b in manifest.aggregator.artifacts
             and any((r in TFLITE_RUNTIMES) == (b == "tflite") for r in compute)]
    paths: list[PathBench] = []
    for msg, job in jobs:
        say(msg)
        try:
            paths.append(job())
        except Exception as e:  # noqa: BLE001 - report the failure, keep the other figures
            notes.append(f"{msg} failed: {type(e).__name__}: {e}")
            log.warning("%s failed: %s", msg, e)
    profiles = []
    tfl = next((r for r in compute if r in TFLITE_RUNTIMES), None)
    if profile and tfl:
        from crossl_edge.bench.op_profile import profile_bundle

        say(f"per-op profiles on {tfl}")
        op_feeds = {m.name: {k: _encoder_feeds(m, raw[m.name][:1], k)[0][0]
                          for k in ("tflite", "tflite_int8")} for m in manifest.modalities}
        profiles = profile_bundle(manifest, op_feeds, runtime=tfl, threads=t0, xnnpack=x0,
                                  runs=50 if quick else 300)
    env["loadavg_end"] = report.loadavg()
    settings = {"threads": list(threads), "xnnpack": list(xnnpack), "runtimes": names,
                "min_seconds": min_seconds, "min_runs": min_runs, "windows": windows,
                "warmup_seconds": budget.warmup_seconds, "quick": quick,
                "timer": "perf_counter_ns around one Python call: set_tensor/feed + invoke + "
                         "output copy (what an app sees; benchmark_model times invoke alone)",
                "memory": report.MEMORY_NOTE}
    rows_json = [r.to_json() for r in rows]
    return BenchResult(str(bundle), settings, env, rows, paths, report.ratios(rows_json),
                       notes + report.caveats(env), profiles)
