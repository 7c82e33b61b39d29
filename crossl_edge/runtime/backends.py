"""Model runners over LiteRT / tflite-runtime / tf.lite and ONNX Runtime, behind one tiny API.

A runner opens a model file (path) or its bytes; nothing heavy is imported until one is opened.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import logging
import os
from collections.abc import Iterator
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


# A 944-byte int8 model (RESHAPE + FULLY_CONNECTED, 1 -> 1; tests/tiny_tflite.py, window=1,
# channels=1, latent=1), zlib + base64: loading and invoking it is the probe of a TFLite runtime.
_PROBE_MODEL = (
    "eNplkq9Pw1AQx29rgW5rxoBmmUBMTCAgIQGxkJFMoSYQCASmsLI16X6ElmBQYAh/AZLA/4BGIDuNJEEisQQe32uv"
    "tBtdPunbvbvr9/vuGUR0sNfZelBKbWJdAS3QBhqogpOzke97G06359QDxw/qg1HX8Yh07HlI2gdN0AA5xOogD+7A"
    "JfFTphpZ6G2SgaoyIhZYBzWwKmvuN7DdIVdwnzl5k/S7B0dgHhwiUAcvSPBABTwjbuJXiip0rIgKcXnBpKKs4zj7"
    "omqqqyS6unG+YcpZ5DJaNNGhiVb2ZUV5af1aXL9kRFri2ryQ+Aq/lfoAusSTb9z+KMXfbIrmBp8fYkZGy5eKH15P"
    "wnA3W8/n4tmBMwyInpBjSS9NjpD7hTP9KKNrtHy9k/Ribceu7SezW5mZXTv1VGDPDRX3tWb6Jr2Lr4+trNYFcOG4"
    "vX7g05X67ztQ0zq1TK9J2JnyzVpPYZyiM+d5LkZaTblfoievZ+bB8/T79tiJZsgV9OeP72NHtGzLnSLZN6N36lOb"
    "8cnatIy25O64w/E5C3xX8dyZG/Ap/znvDRPkb8zLvjHlUY9iv4woZlY="
)


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration (C extensions write there)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def tflite_backend_problem(name: str) -> str | None:
    """Why backend ``name`` cannot run here (None when it can): not installed, or it fails to
    load and invoke a tiny int8 model (e.g. tflite-runtime built for numpy 1 under numpy 2)."""
    if importlib.util.find_spec(TFLITE_BACKENDS[name][0].split(".")[0]) is None:
        return "not installed"
    import base64
    import tempfile
    import zlib

    try:
        with _stderr_silenced():       # a numpy-1 wheel prints a page of advice on fd 2
            module = interpreter_module(name)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "probe.tflite"
                path.write_bytes(zlib.decompress(base64.b64decode("".join(_PROBE_MODEL))))
                interp = module.Interpreter(model_path=str(path), num_threads=1)
                interp.allocate_tensors()
                d = interp.get_input_details()[0]
                interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
                interp.invoke()
                interp.get_tensor(interp.get_output_details()[0]["index"])
    except Exception as e:  # noqa: BLE001 - a broken wheel raises anything, even SystemError
        while e.__cause__ or e.__context__:     # the root cause says more than SystemError
            e = e.__cause__ or e.__context__   # type: ignore[assignment]
        cause = (str(e).strip().splitlines() or [""])[0][:120]
        return (f"{TFLITE_BACKENDS[name][1]} {backend_version(name)} is installed but cannot "
                f"run a model with numpy {np.__version__} ({type(e).__name__}: {cause})")
    return None


def tflite_backend_usable(name: str) -> bool:
    """Backend ``name`` loads and invokes a model here (a broken wheel counts as absent)."""
    return tflite_backend_problem(name) is None


def broken_backend_hint(name: str, problem: str) -> str:
    """One sentence: what is wrong with TFLite backend ``name`` and what to do about it."""
    return (f"{problem}; install ai-edge-litert (numpy 2), or give {TFLITE_BACKENDS[name][1]} "
            "its own venv with `pip install 'numpy<2'`, or use ONNX Runtime (--backend onnx).")


def _first_tflite_backend() -> str:
    problems = {}
    for name in TFLITE_BACKENDS:
        problem = tflite_backend_problem(name)
        if problem is None:
            return name
        problems[name] = problem
    broken = {k: v for k, v in problems.items() if v != "not installed"}
    if broken:
        name, problem = next(iter(broken.items()))
        raise UsageError(broken_backend_hint(name, problem))
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


def _what(model: str | Path | bytes) -> str:
    """How an error names the model: its path, or "the model bytes"."""
    return "the model bytes" if isinstance(model, bytes | bytearray) else str(model)


class TFLiteRunner:
    """One TFLite model on one interpreter; ``run`` takes inputs in order, returns output 0.

    ``path`` is a .tflite file or the model's bytes (kept alive by the runner)."""

    def __init__(
        self,
        path: str | Path | bytes,
        *,
        threads: int = 1,
        xnnpack: bool = True,
        backend: str | None = None,
    ) -> None:
        if backend is not None and backend not in TFLITE_BACKENDS:
            raise UsageError(
                f"unknown TFLite backend {backend!r}; choose one of {', '.join(TFLITE_BACKENDS)}."
            )
        if backend is not None and (problem := tflite_backend_problem(backend)) is not None:
            raise UsageError(f"TFLite backend {backend} is not installed; pip install "
                             f"{TFLITE_BACKENDS[backend][1]}." if problem == "not installed"
                             else broken_backend_hint(backend, problem))
        self.backend = backend or _first_tflite_backend()
        module = interpreter_module(self.backend)
        self.version = backend_version(self.backend)
        self.xnnpack, self.threads = xnnpack, threads
        kwargs: dict[str, Any] = {"num_threads": threads}
        if isinstance(path, bytes | bytearray):
            self._content = bytes(path)         # the interpreter reads the buffer in place
            kwargs["model_content"] = self._content
        else:
            kwargs["model_path"] = str(path)
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
            raise CheckFailed(f"{_what(path)} is not a loadable TFLite model ({e}); "
                              "re-export it.") from e
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
    """One ONNX model (a .onnx file or its bytes) in an ONNX Runtime CPU session."""

    backend = "onnxruntime"

    def __init__(self, path: str | Path | bytes, *, threads: int = 1) -> None:
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
            model = bytes(path) if isinstance(path, bytes | bytearray) else str(path)
            self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
            raise CheckFailed(
                f"{_what(path)} is not a loadable ONNX model ({type(e).__name__}); re-export it."
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
