"""Simulated int8 quantization in PyTorch that mirrors the converter's int8 encoder graph op by
op (`edge` encoder: Conv + folded BatchNorm + ReLU per block, then MEAN over time), with a
straight-through estimator so it can be fine-tuned; the first piece of quantization-aware export.

Grid as the TFLite converter writes it: asymmetric int8 activations (one scale and zero point per
tensor), symmetric narrow-range per-channel weights (scale max|w| / 127), int32 bias on the grid
s_in * s_w, 'same' padding with the input's zero point (real 0).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crossl_edge.errors import UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TensorQuant:
    """One int8 activation tensor's grid: real = scale * (q - zero_point), q in [-128, 127]."""

    scale: float
    zero_point: int

    @classmethod
    def from_range(cls, lo: float, hi: float) -> TensorQuant:
        """The converter's asymmetric grid for a tensor seen in [lo, hi] (0 kept exact)."""
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
        scale = (hi - lo) / 255.0 or 1e-8
        return cls(scale, int(np.clip(round(-128 - lo / scale), -128, 127)))


def fake_quant(x: torch.Tensor, q: TensorQuant) -> torch.Tensor:
    """``x`` rounded onto ``q``'s int8 grid (clamped), gradient passed straight through."""
    y = (torch.clamp(torch.round(x / q.scale) + q.zero_point, -128, 127) - q.zero_point) * q.scale
    return x + (y - x).detach()


def mean_int8(x: torch.Tensor, q_in: TensorQuant, q_out: TensorQuant) -> torch.Tensor:
    """Mean over the last axis of ``x`` (on ``q_in``'s grid) requantized onto ``q_out`` as the
    reference int8 MEAN does (round(sum(q - zp_in) * s_in / (N * s_out)) + zp_out); LiteRT's and
    TFLite Micro's kernels round some of these 1 LSB apart (measured, tests/test_qat.py)."""
    return fake_quant(x.mean(dim=-1), q_out)


def weight_grid(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel symmetric narrow-range int8 weights: (w on the grid, scales (O,))."""
    s = w.detach().abs().flatten(1).amax(1).clamp_min(1e-12) / 127.0
    shape = (-1,) + (1,) * (w.dim() - 1)
    q = torch.clamp(torch.round(w / s.view(shape)), -127, 127) * s.view(shape)
    return w + (q - w).detach(), s


@dataclass(frozen=True)
class EncoderGrid:
    """The activation grids of an int8 encoder, in graph order: input, one per conv block
    (after its fused ReLU), latent (after the mean over time)."""

    input: TensorQuant
    blocks: tuple[TensorQuant, ...]
    latent: TensorQuant


class SimQuantEncoder(nn.Module):
    """The int8 `edge` encoder as the converter writes it, in simulated quantization: windows
    (B, C, T) float -> latents (B, D) on the latent grid (``int8=True``: the int8 codes)."""

    def __init__(self, encoder: Any, grid: EncoderGrid) -> None:
        super().__init__()
        from crossl_edge.export.keras_twin import conv_params

        if any(not isinstance(b.norm, nn.BatchNorm1d) for b in encoder.blocks):
            raise UsageError("simulated quantization covers the `edge` encoder (Conv + "
                             "BatchNorm + ReLU) only; the `crossl` LayerNorm graph is not "
                             "simulated yet.")
        if len(grid.blocks) != len(encoder.blocks):
            raise UsageError(f"the grid has {len(grid.blocks)} block ranges, the encoder "
                             f"{len(encoder.blocks)} blocks.")
        self.grid = grid
        self.kernels = [b.kernel for b in encoder.blocks]
        self.strides = [b.stride for b in encoder.blocks]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for b in encoder.blocks:
            w, bias = conv_params(b)                       # BatchNorm folded: (O, I, K), (O,)
            self.weights.append(nn.Parameter(torch.from_numpy(w.copy())))
            self.biases.append(nn.Parameter(torch.from_numpy(bias.copy())))

    def blocks_int8(self, x: torch.Tensor) -> torch.Tensor:
        """The last conv block's int8 codes (B, D, T') for windows (B, C, T)."""
        q = self.grid.blocks[-1]
        return torch.round(self._blocks(x) / q.scale) + q.zero_point

    def forward(self, x: torch.Tensor, *, int8: bool = False) -> torch.Tensor:
        g = self.grid
        z = mean_int8(self._blocks(x), g.blocks[-1], g.latent)
        if int8:
            return torch.round(z / g.latent.scale + g.latent.zero_point)
        return z

    def _blocks(self, x: torch.Tensor) -> torch.Tensor:
        from crossl_edge.model.encoders import same_padding

        g = self.grid
        x = fake_quant(x, g.input)
        s_in = g.input.scale
        for w, b, k, st, q in zip(self.weights, self.biases, self.kernels, self.strides,
                                  g.blocks, strict=True):
            wq, s_w = weight_grid(w)
            s_b = s_in * s_w                                            # int32 bias grid
            bq = b + (torch.round(b / s_b) * s_b - b).detach()
            left, right = same_padding(x.shape[-1], k, st)
            x = F.conv1d(F.pad(x, (left, right)), wq, bq, stride=st)
            x = fake_quant(torch.relu(x), q)
            s_in = q.scale
        return x


def grid_from_tflite(path: str | Path) -> EncoderGrid:
    """The activation grids of a converted int8 `edge` encoder, read from its flatbuffer."""
    from crossl_edge.tflite_graph import iter_ops, read_model

    def tq(t: Any) -> TensorQuant:
        qp = t.Quantization()
        return TensorQuant(float(qp.ScaleAsNumpy()[0]), int(qp.ZeroPointAsNumpy()[0]))

    model = read_model(Path(path).read_bytes())
    g = model.Subgraphs(0)
    ops = list(iter_ops(model, subgraph=0))
    convs = [tq(v.output_tensors()[0]) for v in ops if v.name == "CONV_2D"]
    return EncoderGrid(tq(g.Tensors(g.Inputs(0))), tuple(convs), tq(g.Tensors(g.Outputs(0))))


def calibrate_grid(encoder: Any, windows: np.ndarray) -> EncoderGrid:
    """Min/max grids of every simulated tensor on float windows (N, C, T), as the converter's
    representative-dataset calibration does (the starting point of a fine-tune)."""
    from crossl_edge.model.encoders import same_padding

    enc = encoder.eval()
    x = torch.from_numpy(np.asarray(windows, np.float32))
    ranges = [TensorQuant.from_range(float(x.min()), float(x.max()))]
    with torch.no_grad():
        for b in enc.blocks:
            left, right = same_padding(x.shape[-1], b.kernel, b.stride)
            x = b.act(b.norm(b.conv(F.pad(x, (left, right)))))
            ranges.append(TensorQuant.from_range(float(x.min()), float(x.max())))
        z = x.mean(dim=-1)
    return EncoderGrid(ranges[0], tuple(ranges[1:]),
                       TensorQuant.from_range(float(z.min()), float(z.max())))
