"""PyTorch -> ONNX float (dynamo exporter, one file) and ONNX int8 (ORT static QDQ, configurable).

Encoders take "window" (1, C, T) and give "latent" (1, D); calibration uses real normalized windows.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.errors import CheckFailed

log = logging.getLogger(__name__)

OPSET = 18


@contextlib.contextmanager
def _quiet() -> Any:
    """Silence the exporter's progress prints and warnings (they go to the log at debug)."""
    import warnings

    buf = io.StringIO()
    names = ("torch.onnx", "torch.export", "onnxscript", "onnx_ir", None)  # None: ORT uses root
    noisy = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in noisy]
    try:
        for lg in noisy:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(buf):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(noisy, levels, strict=True):
            lg.setLevel(lv)
    if buf.getvalue():
        log.debug("%s", buf.getvalue())


def _clean(model_bytes: bytes) -> bytes:
    """Drop exporter metadata that varies between runs (doc strings, metadata props)."""
    import onnx

    m = onnx.load_from_string(model_bytes)
    m.doc_string = ""
    del m.metadata_props[:]
    m.graph.doc_string = ""
    for node in m.graph.node:
        node.doc_string = ""
        # the dynamo exporter stores the source stack trace per node: not deterministic
        keep = [p for p in node.metadata_props if not p.key.startswith("pkg.torch")]
        del node.metadata_props[:]
        node.metadata_props.extend(keep)
    return m.SerializeToString()


def torch_to_onnx(module: Any, example: tuple[Any, ...], *, input_names: list[str],
                  output_name: str) -> bytes:
    """Export ``module`` (eval) to one self-contained ONNX file with fixed input shapes."""
    import torch

    with tempfile.TemporaryDirectory() as d, _quiet():
        path = Path(d) / "model.onnx"
        try:
            torch.onnx.export(module.eval(), example, str(path), dynamo=True,
                              external_data=False, input_names=input_names,
                              output_names=[output_name], opset_version=OPSET, verbose=False,
                              optimize=True)
        except Exception as e:  # noqa: BLE001 - the exporter raises many internal types
            raise CheckFailed(f"ONNX export failed ({type(e).__name__}); report this "
                              "model.") from e
        del torch
        return _clean(path.read_bytes())


def encoder_onnx(encoder: Any, *, channels: int, window: int) -> bytes:
    """Float ONNX of an encoder (BatchNorm folded): "window" (1, C, T) -> "latent" (1, D)."""
    import torch

    from crossl_edge.export.keras_twin import folded_torch_encoder

    enc = folded_torch_encoder(encoder)
    return torch_to_onnx(enc, (torch.zeros(1, channels, window),), input_names=["window"],
                         output_name="latent")


def phone_onnx(phone: Any, *, n_modalities: int, latent_dim: int) -> bytes:
    """Float ONNX of the phone model: "latents" (1, M, D), "present" (1, M) -> "logits"."""
    import torch

    ex = (torch.zeros(1, n_modalities, latent_dim), torch.ones(1, n_modalities))
    return torch_to_onnx(phone, ex, input_names=["latents", "present"], output_name="logits")


class _Reader:
    """CalibrationDataReader over normalized windows (N, C, T), one (1, C, T) sample at a time."""

    def __init__(self, windows: np.ndarray, input_name: str) -> None:
        self._it = iter([{input_name: np.ascontiguousarray(w[None], np.float32)}
                         for w in windows])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - not used by MinMax
        raise NotImplementedError


def encoder_onnx_int8(float_onnx: bytes, *, calibration: np.ndarray, method: str = "minmax",
                      per_channel: bool = True, symmetric_activations: bool = False,
                      float_ops: tuple[str, ...] = (), int16_activations: bool = False) -> bytes:
    """Static QDQ quantization of a float encoder ONNX (int8 weights; int8 or int16 activations).

    ``method`` is ORT's CalibrationMethod (minmax, percentile, entropy); ``float_ops`` are op types
    left unquantized (ORT runs them in float between DequantizeLinear and QuantizeLinear).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import CalibrationDataReader
    from onnxruntime.quantization.registry import QDQRegistry
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calib = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
             "entropy": CalibrationMethod.Entropy}[method]
    reader_cls = type("Reader", (_Reader, CalibrationDataReader), {})
    op_types = sorted(set(QDQRegistry) - set(float_ops)) if float_ops else None
    with tempfile.TemporaryDirectory() as d, _quiet():
        src, pre, dst = Path(d) / "f.onnx", Path(d) / "p.onnx", Path(d) / "q.onnx"
        src.write_bytes(float_onnx)
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            quantize_static(str(pre), str(dst), reader_cls(calibration, "window"),
                            quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=QuantType.QInt16 if int16_activations
                            else QuantType.QInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=op_types, calibrate_method=calib,
                            extra_options={"ActivationSymmetric": symmetric_activations,
                                           "WeightSymmetric": True,
                                           "CalibMovingAverage": False})
        except Exception as e:  # noqa: BLE001 - ORT raises many internal types
            raise CheckFailed(f"ONNX int8 quantization failed ({type(e).__name__}: {e}); "
                              "check the calibration windows.") from e
        return _clean(dst.read_bytes())
