"""A bundle's model files against its manifest: the input/output shapes every artifact must have,
checked with the runtime this install has (TFLite if one works, else ONNX Runtime).
"""

from __future__ import annotations

import logging
from pathlib import Path

from crossl_edge.errors import UsageError
from crossl_edge.manifest import Manifest

log = logging.getLogger(__name__)


def _expected_shapes(m: Manifest) -> list[tuple[str, str, list[tuple[int, ...]], tuple[int, ...]]]:
    """(kind, relative path, input shapes, output shape) every artifact must have."""
    out: list[tuple[str, str, list[tuple[int, ...]], tuple[int, ...]]] = []
    for e in m.modalities:
        c, t = len(e.channels), e.window
        for kind, rel in e.artifacts.items():
            shape: tuple[int, ...] = (1, t, c) if kind.startswith("tflite") else (1, c, t)
            out.append((kind, rel, [shape], (1, m.latent_dim)))
    n = len(m.modalities)
    for kind, rel in m.aggregator.artifacts.items():
        out.append((kind, rel, [(1, n, m.latent_dim), (1, n)], (1, len(m.classes))))
    return out


def _usable_kinds() -> tuple[str, ...]:
    """Artifact families this install can open: TFLite if a TFLite runtime works, else ONNX."""
    import importlib.util

    from crossl_edge.runtime.backends import TFLITE_BACKENDS, tflite_backend_usable

    if any(tflite_backend_usable(b) for b in TFLITE_BACKENDS):
        return ("tflite",)
    return ("onnx",) if importlib.util.find_spec("onnxruntime") else ()


def _same(got: tuple[int, ...], want: tuple[int, ...]) -> bool:
    return len(got) == len(want) and all(g in (w, -1) for g, w in zip(got, want, strict=True))


def _io_shapes(kind: str, path: Path) -> tuple[list[tuple[int, ...]], tuple[int, ...]]:
    from crossl_edge.runtime.backends import OnnxRunner, TFLiteRunner

    if kind.startswith("tflite"):
        t = TFLiteRunner(path, xnnpack=False)  # no delegate: quiet and quick to open
        return sorted(i.shape for i in t.inputs), t.outputs[0].shape
    o = OnnxRunner(path)
    dims = tuple(d if isinstance(d, int) else -1 for d in o.session.get_outputs()[0].shape)
    return sorted(i.shape for i in o.inputs), dims


def check_models(m: Manifest) -> None:
    """Fail (exit 2) if a model's input or output shape disagrees with the manifest (window,
    channels, latent_dim, number of modalities, classes); checks the installed runtime's family."""
    family = _usable_kinds()
    if not family:
        log.warning("no TFLite or ONNX runtime: model shapes not checked against the manifest")
        return
    for kind, rel, ins, out in _expected_shapes(m):
        if not kind.startswith(family):
            continue
        got_in, got_out = _io_shapes(kind, m.path(rel))
        want_in = sorted(ins)
        if len(got_in) != len(want_in) or not _same(got_out, out) or not all(
                _same(g, w) for g, w in zip(got_in, want_in, strict=True)):
            raise UsageError(
                f"bundle file {rel} takes {got_in} and gives {got_out}, but the manifest says "
                f"{want_in} -> {out} (window, channels, latent_dim or classes edited); "
                "re-export the bundle.")
