"""Keras twin -> TFLite float32 and full-int8 (per-channel or per-tensor, int8 I/O, builtins int8).

The representative dataset is the modality's own normalized training windows, channels-last.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from crossl_edge.errors import CheckFailed, DataError

log = logging.getLogger(__name__)

MIN_CALIBRATION = 4
TOP_LAYERS = 8          # layers a failure report and parity's localisation rank


def import_tf() -> Any:
    """Import TensorFlow quietly (logs off, oneDNN off so numerics match across machines)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    return tf


def check_calibration(windows: np.ndarray, *, name: str,
                      minimum: int = MIN_CALIBRATION) -> np.ndarray:
    """Validate calibration windows (N, C, T): enough of them, all finite; returns float32."""
    x = np.asarray(windows, np.float32)
    if x.ndim != 3 or x.shape[0] < minimum:
        raise DataError(f"modality {name!r} has {x.shape[0] if x.ndim == 3 else 0} calibration "
                        f"window(s), at least {minimum} are needed; use more training data or "
                        "a larger --calibration-windows.")
    if not np.isfinite(x).all():
        raise DataError(f"modality {name!r} calibration windows contain NaN or inf; clean the "
                        "training data first.")
    return x


def clip_percentile(windows: np.ndarray, percentile: float) -> np.ndarray:
    """Windows clipped to the [100 - p, p] percentiles of all their values (p = 100: unchanged).

    Calibrating on clipped windows narrows the int8 input range, so near-silent windows keep
    their resolution; rare spikes saturate instead (LayerNorm encoders tolerate that well).
    """
    if percentile >= 100:
        return windows
    lo, hi = np.percentile(windows, [100 - percentile, percentile])
    return np.clip(windows, lo, hi).astype(np.float32)


def calibration_set(windows: np.ndarray, *, percentile: float = 100.0,
                    headroom: float = 1.0) -> np.ndarray:
    """What a scheme calibrates on: ``windows`` clipped to the percentile, plus (headroom > 1) a
    copy scaled by ``headroom``, so every activation range is about that much wider than the
    calibration windows' own and an unseen, larger window does not saturate."""
    x = clip_percentile(windows, percentile)
    return x if headroom == 1.0 else np.concatenate([x, x * np.float32(headroom)])


def _concrete(model: Any, specs: list[tuple[str, tuple[int, ...]]]) -> Any:
    tf = import_tf()
    sig = [tf.TensorSpec(shape, tf.float32, name=n) for n, shape in specs]

    @tf.function(input_signature=sig, autograph=False)
    def serve(*xs: Any) -> Any:
        return model(list(xs) if len(xs) > 1 else xs[0], training=False)

    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    return convert_variables_to_constants_v2(serve.get_concrete_function())


_FROZEN: dict[tuple[int, tuple[Any, ...]], tuple[Any, Any]] = {}
FROZEN_CACHE = 8   # frozen graphs kept (the search converts each twin a dozen times or more)


def _frozen(model: Any, specs: list[tuple[str, tuple[int, ...]]]) -> Any:
    """``_concrete(model, specs)``, traced and frozen once per model (the model is held while
    cached, so its id cannot be reused by another)."""
    key = (id(model), tuple(specs))
    hit = _FROZEN.get(key)
    if hit is None or hit[0] is not model:
        while len(_FROZEN) >= FROZEN_CACHE:
            _FROZEN.pop(next(iter(_FROZEN)))
        hit = _FROZEN[key] = (model, _concrete(model, specs))
    return hit[1]


def converter_for(model: Any, specs: list[tuple[str, tuple[int, ...]]]) -> Any:
    """A TFLiteConverter over ``model`` (weights frozen) with fixed-shape float inputs ``specs``."""
    tf = import_tf()
    return tf.lite.TFLiteConverter.from_concrete_functions([_frozen(model, specs)])


def representative(windows_nct: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Representative dataset: one (1, T, C) float32 sample per window, in a fixed order."""
    def gen() -> Iterator[list[np.ndarray]]:
        for w in windows_nct:
            yield [np.ascontiguousarray(w.T[None], np.float32)]
    return gen


def int8_converter(model: Any, *, window: int, channels: int, calibration: np.ndarray,
                   per_channel: bool = True) -> Any:
    """The configured full-int8 converter (exposed for the QuantizationDebugger)."""
    tf = import_tf()
    conv = converter_for(model, [("window", (1, window, channels))])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative(calibration)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    conv._experimental_disable_per_channel = not per_channel  # noqa: SLF001 - no public switch
    return conv


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send the converter's C++ chatter on fd 2 to the debug log instead of the terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            text = f.read().decode(errors="replace").strip()
            if text:
                log.debug("%s", text)


def _convert(conv: Any, what: str) -> bytes:
    try:
        with quiet_stderr():
            return bytes(conv.convert())
    except Exception as e:  # noqa: BLE001 - the converter raises many internal types
        raise CheckFailed(f"TFLite conversion of {what} failed ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}); report this model.") from e


def encoder_tflite(model: Any, *, window: int, channels: int) -> bytes:
    """Float32 TFLite of a Keras encoder twin, input (1, T, C)."""
    return _convert(converter_for(model, [("window", (1, window, channels))]), "a float encoder")


def encoder_tflite_int8(model: Any, *, window: int, channels: int, calibration: np.ndarray,
                        per_channel: bool = True) -> bytes:
    """Full-int8 TFLite of a Keras encoder twin, calibrated on normalized windows (N, C, T)."""
    conv = int8_converter(model, window=window, channels=channels, calibration=calibration,
                          per_channel=per_channel)
    return _convert(conv, "an int8 encoder")


def phone_tflite(model: Any, *, n_modalities: int, latent_dim: int) -> bytes:
    """Float32 TFLite of the phone model twin: inputs latents (1, M, D), present (1, M)."""
    conv = converter_for(model, [("latents", (1, n_modalities, latent_dim)),
                                 ("present", (1, n_modalities))])
    return _convert(conv, "the phone model")


def float_tensor_ops(tflite_bytes: bytes) -> list[str]:
    """Ops of an int8 model that compute in float (DEQUANTIZE islands etc.): should be empty."""
    import tflite

    from crossl_edge.tflite_graph import iter_ops, read_model

    return [v.name for v in iter_ops(read_model(tflite_bytes), subgraph=0)
            if v.name == "DEQUANTIZE"
            or any(t.Type() == tflite.TensorType.FLOAT32 for t in v.output_tensors())]


def layer_errors(converter: Any, calibration: np.ndarray, *,
                 top: int = TOP_LAYERS) -> list[dict[str, Any]]:
    """The int8 layers with the largest quantization error (RMSE / scale), worst first, from
    TensorFlow's QuantizationDebugger running ``converter`` on ``calibration`` (N, C, T)."""
    import csv
    import io
    import warnings

    tf = import_tf()
    with quiet_stderr(), warnings.catch_warnings():   # the debugger converts and runs: chatty
        warnings.simplefilter("ignore")
        dbg = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative(calibration))
        dbg.run()
    buf = io.StringIO()
    dbg.layer_statistics_dump(buf)
    rows = []
    for r in csv.DictReader(io.StringIO(buf.getvalue())):
        scale = float(r.get("scale") or 0) or 1.0
        rmse = float(r.get("mean_squared_error") or 0) ** 0.5
        rows.append({"op": r.get("op_name"), "tensor": r.get("tensor_name"),
                     "rmse_over_scale": rmse / scale,
                     "max_abs_error": float(r.get("max_abs_error") or 0), "scale": scale})
    rows.sort(key=lambda r: -r["rmse_over_scale"])
    return rows[:top]


def rank_layers(twin: Any, windows: np.ndarray, *, percentile: float = 100.0,
                headroom: float = 1.0, per_channel: bool = True,
                top: int = TOP_LAYERS) -> list[dict[str, Any]]:
    """`layer_errors` of ``twin`` converted with one scheme's options on its calibration set
    (``windows`` (N, C, T) clipped and widened as the scheme calibrates)."""
    x = calibration_set(windows, percentile=percentile, headroom=headroom)
    conv = int8_converter(twin, window=windows.shape[2], channels=windows.shape[1],
                          calibration=x, per_channel=per_channel)
    return layer_errors(conv, x, top=top)
