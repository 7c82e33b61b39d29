"""Model runners over LiteRT / tflite-runtime / tf.lite and ONNX Runtime, behind one tiny API.

Imports nothing heavy at module load; each runner imports its runtime when opened.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.errors import CheckFailed, UsageError

log = logging.getLogger(__name__)

# Preference order for TFLite: LiteRT first, then the legacy tflite-runtime, then full TensorFlow.
TFLITE_BACKENDS = {
    "litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
    "tflite_runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
    "tensorflow": ("tensorflow.lite", "tensorflow"),
}


def dist_version(dist: str, *, default: str = "unknown") -> str:
    """Installed version of distribution ``dist``, or ``default`` when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return default


def backend_version(name: str) -> str:
    """Version of TFLite backend ``name`` (CPU-only TensorFlow installs as tensorflow-cpu)."""
    dist = TFLITE_BACKENDS[name][1]
    if dist == "tensorflow":
        return dist_version("tensorflow", default=dist_version("tensorflow-cpu"))
    return dist_version(dist)


def interpreter_module(name: str) -> Any:
    """The module holding ``Interpreter`` for backend ``name`` (tf.lite is an attribute in TF)."""
    module = importlib.import_module(TFLITE_BACKENDS[name][0])
    if name == "tensorflow":
        module = importlib.import_module("tensorflow").lite
    if not hasattr(module, "Interpreter"):
        raise ImportError(f"{name} has no TFLite Interpreter")
    return module


def tflite_backend_usable(name: str) -> bool:
    """Backend ``name`` imports and has an Interpreter (a broken wheel counts as absent)."""
    if importlib.util.find_spec(TFLITE_BACKENDS[name][0].split(".")[0]) is None:
        return False
    try:
        interpreter_module(name)
        return True
    except Exception:  # noqa: BLE001 - e.g. a numpy ABI mismatch in an old wheel
        return False


def _first_tflite_backend() -> str:
    for name in TFLITE_BACKENDS:
        if tflite_backend_usable(name):
            return name
    raise UsageError(
        "no TFLite runtime is installed; `pip install ai-edge-litert` "
        "(or tflite-runtime on an old Raspberry Pi OS image)."
    )


@dataclass
class TensorInfo:
    """Name, shape, dtype and (for int8) quantization of one model input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float = 0.0
    zero_point: int = 0


class TFLiteRunner:
    """One TFLite model on one interpreter; ``run`` takes inputs in order, returns output 0."""

    def __init__(
        self,
        path: str | Path,
        *,
        threads: int = 1,
        xnnpack: bool = True,
        backend: str | None = None,
    ) -> None:
        if backend is not None and backend not in TFLITE_BACKENDS:
            raise UsageError(
                f"unknown TFLite backend {backend!r}; choose one of {', '.join(TFLITE_BACKENDS)}."
            )
        self.backend = backend or _first_tflite_backend()
        module = interpreter_module(self.backend)
        self.version = backend_version(self.backend)
        self.xnnpack, self.threads = xnnpack, threads
        kwargs: dict[str, Any] = {"model_path": str(path), "num_threads": threads}
        if not xnnpack:
            resolver = (
                module.experimental.OpResolverType
                if self.backend == "tensorflow"
                else module.OpResolverType
            )
            kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self.interp = module.Interpreter(**kwargs)
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise CheckFailed(f"{path} is not a loadable TFLite model ({e}); re-export it.") from e
        self._in = self.interp.get_input_details()
        self._out = self.interp.get_output_details()

    @staticmethod
    def _info(d: dict[str, Any]) -> TensorInfo:
        scale, zp = d.get("quantization", (0.0, 0))
        return TensorInfo(
            d["name"],
            tuple(int(s) for s in d["shape"]),
            np.dtype(d["dtype"]),
            float(scale),
            int(zp),
        )

    @property
    def inputs(self) -> list[TensorInfo]:
        return [self._info(d) for d in self._in]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [self._info(d) for d in self._out]

    def run(self, *inputs: np.ndarray) -> np.ndarray:
        for d, x in zip(self._in, inputs, strict=True):
            self.interp.set_tensor(d["index"], np.ascontiguousarray(x, dtype=d["dtype"]))
        self.interp.invoke()
        return self.interp.get_tensor(self._out[0]["index"]).copy()


class OnnxRunner:
    """One ONNX model in an ONNX Runtime CPU session."""

    backend = "onnxruntime"

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise UsageError("ONNX Runtime is not installed; `pip install onnxruntime`.") from e
        self.version = ort.__version__
        self.threads = threads
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
            raise CheckFailed(
                f"{path} is not a loadable ONNX model ({type(e).__name__}); re-export it."
            ) from e
        self._in = [i.name for i in self.session.get_inputs()]
        self._out = [o.name for o in self.session.get_outputs()]

    @property
    def inputs(self) -> list[TensorInfo]:
        return [
            TensorInfo(
                i.name,
                tuple(d if isinstance(d, int) else -1 for d in i.shape),
                np.dtype(np.float32),
            )
            for i in self.session.get_inputs()
        ]

    def run(self, *inputs: np.ndarray) -> np.ndarray:
        feed = {
            n: np.ascontiguousarray(x, np.float32) for n, x in zip(self._in, inputs, strict=True)
        }
        return self.session.run([self._out[0]], feed)[0]


def run_each(runner: TFLiteRunner | OnnxRunner, xs: np.ndarray) -> np.ndarray:
    """Run a batch-1 model on every row of ``xs`` and stack the outputs along axis 0."""
    return np.concatenate([runner.run(x[None]) for x in xs])


def open_model(
    path: str | Path, *, threads: int = 1, xnnpack: bool = True, backend: str | None = None
) -> TFLiteRunner | OnnxRunner:
    """Open a .tflite or .onnx file with the best available runtime."""
    suffix = Path(path).suffix
    if suffix == ".onnx":
        return OnnxRunner(path, threads=threads)
    if suffix == ".tflite":
        return TFLiteRunner(path, threads=threads, xnnpack=xnnpack, backend=backend)
    raise UsageError(f"{path}: expected a .tflite or .onnx file.")
