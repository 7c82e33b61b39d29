"""Run int8 .tflite models in the TFLite Micro Python interpreter and measure the minimum arena.

TFLM can segfault for an arena just below its minimum, so every probe runs in a subprocess.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from crossl_edge.errors import CheckFailed, UsageError
from crossl_edge.runtime import tflm_worker
from crossl_edge.runtime.backends import dist_version

log = logging.getLogger(__name__)

TFLM_MAX_LSB = 1  # TFLM vs LiteRT builtin kernels (XNNPACK rounds differently)

_RECORDED = re.compile(r"Arena allocation total (\d+) bytes")
PROBE_TIMEOUT_S = 60


@dataclass(frozen=True)
class ArenaResult:
    """The arena TFLM's RecordingMicroAllocator reports and the smallest arena that runs."""

    recorded_bytes: int
    minimum_bytes: int
    probes: int

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def tflm_available() -> bool:
    """Whether the `tflite-micro` package imports here."""
    import importlib.util

    return importlib.util.find_spec("tflite_micro") is not None


def tflm_version() -> str:
    return dist_version("tflite-micro", default="absent")


def _worker(args: list[str], *, timeout: float = PROBE_TIMEOUT_S) -> subprocess.CompletedProcess:
    if not tflm_available():
        raise UsageError("TFLite Micro is not installed; `pip install --pre tflite-micro`.")
    return tflm_worker.spawn(args, timeout=timeout)


def _probe(model: Path, arena: int, inputs: Path, expected: Path | None) -> tuple[bool, str]:
    args = ["probe", str(model), str(arena), str(inputs)] + ([str(expected)] if expected else [])
    p = _worker(args)
    return p.returncode == 0, p.stdout + p.stderr


def run_tflm(model: str | Path, inputs: np.ndarray, *, arena_size: int | None = None) -> np.ndarray:
    """Invoke ``model`` on each int8 input (N, *input_shape) in one TFLM subprocess -> (N, ...)."""
    model = Path(model)
    arena = arena_size or max(64 * 1024, model.stat().st_size * 10)
    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "in.npy", Path(d) / "out.npz"
        np.save(src, np.asarray(inputs))
        p = _worker(["run", str(model), str(arena), str(src), str(dst)],
                    timeout=PROBE_TIMEOUT_S + 0.05 * len(inputs))
        if p.returncode != 0 or not dst.is_file():
            raise CheckFailed(f"TFLite Micro could not run {model.name} "
                              f"({tflm_worker.failure_tail(p)}); the model uses an op or type "
                              "TFLM lacks.")
        with np.load(dst) as z:
            return z["outputs"]


@functools.lru_cache(maxsize=64)
def _arena_cached(digest: str, path: str, slack: int) -> ArenaResult:
    model = Path(path)
    with tempfile.TemporaryDirectory() as d:
        import tflite  # shapes from the flatbuffer, no interpreter needed

        g = tflite.Model.GetRootAsModel(model.read_bytes(), 0).Subgraphs(0)
        shape = tuple(int(s) for s in g.Tensors(g.Inputs(0)).ShapeAsNumpy())
        rng = np.random.default_rng(0)
        x = rng.integers(-128, 128, size=(1, *shape), dtype=np.int8)
        src, ref = Path(d) / "in.npy", Path(d) / "ref.npz"
        np.save(src, x)
        big = max(256 * 1024, model.stat().st_size * 10)
        p = _worker(["run", str(model), str(big), str(src), str(ref), "--record"])
        m = _RECORDED.search(p.stdout + p.stderr)
        if p.returncode != 0 or not m:
            raise CheckFailed(f"TFLite Micro could not run {model.name} "
                              f"({tflm_worker.failure_tail(p)}); the model uses an op or type "
                              "TFLM lacks.")
        recorded = int(m.group(1))
        hi, probes = recorded + slack, 0
        while True:                              # grow until a probe matches the reference
            ok, _ = _probe(model, hi, src, ref)
            probes += 1
            if ok:
                break
            if hi > 64 * big:
                raise CheckFailed(f"TFLite Micro found no working arena for {model.name}.")
            hi *= 2
        lo = max(recorded - 256, 0)              # assumed to fail; bisect (lo, hi]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            ok, _ = _probe(model, mid, src, ref)
            probes += 1
            lo, hi = (lo, mid) if ok else (mid, hi)
        return ArenaResult(recorded, hi, probes)


def measure_arena(model: str | Path, *, slack: int = 64) -> ArenaResult:
    """Smallest arena (bytes) with which TFLM runs ``model`` and gives the reference output."""
    model = Path(model)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    return _arena_cached(digest, str(model.resolve()), slack)


def compare_lsb(micro: np.ndarray, builtin: np.ndarray,
                xnnpack: np.ndarray | None = None) -> dict[str, float | int]:
    """TFLite Micro's int8 outputs vs LiteRT's builtin kernels (and XNNPACK's) on the same
    inputs: the largest difference in LSB and the share of values that differ at all."""
    diff = np.abs(np.asarray(micro, np.int32) - np.asarray(builtin, np.int32))
    out: dict[str, float | int] = {"max_lsb_vs_litert_builtin": int(diff.max(initial=0)),
                                   "latents_differing": float((diff > 0).mean())}
    if xnnpack is not None:
        out["max_lsb_vs_litert_xnnpack"] = int(np.abs(np.asarray(micro, np.int32)
                                                      - np.asarray(xnnpack, np.int32)).max(
                                                          initial=0))
    return out
