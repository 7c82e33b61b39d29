"""Per-modality encoders and their registry: window (B, C, T) -> latent (B, D).

``crossl`` is the paper's encoder (Conv -> LayerNorm -> PReLU, x3, then mean over time); ``edge`` is
an int8-friendly variant (Conv with BatchNorm that folds away at export -> ReLU, strided).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from crossl_edge.errors import UsageError


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of one encoder: conv filters and kernel sizes per layer, stride, latent size."""

    in_channels: int
    filters: tuple[int, ...] = (24, 48, 96)
    kernels: tuple[int, ...] = (24, 16, 8)
    stride: int = 1
    dropout: float = 0.1

    @property
    def latent_dim(self) -> int:
        return self.filters[-1]


def same_padding(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (left = total // 2), equal to PyTorch 'same' at stride 1."""
    out = math.ceil(length / stride)
    total = max((out - 1) * stride + kernel - length, 0)
    return total // 2, total - total // 2


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of (B, C, T), as Keras LayerNormalization on (B, T, C)."""

    def __init__(self, channels: int, *, eps: float = 1e-3) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)  # (B, C, T) -> (B, T, C) -> (B, C, T)


class ConvBlock(nn.Module):
    """Conv1d with TF-'same' padding -> norm -> activation -> dropout."""

    def __init__(
        self, cin: int, cout: int, *, kernel: int, stride: int, norm: str, dropout: float
    ) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv1d(cin, cout, kernel, stride=stride, bias=False)
        if norm == "layer":
            self.norm: nn.Module = ChannelLayerNorm(cout)
            self.act: nn.Module = nn.PReLU(cout, init=0.0)
        else:
            self.norm = nn.BatchNorm1d(cout, eps=1e-3, momentum=0.1)
            self.act = nn.ReLU()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = same_padding(x.shape[-1], self.kernel, self.stride)
        x = F.pad(x, (left, right))  # (B, C_in, T + pad)
        x = self.conv(x)  # (B, C_out, ceil(T / stride))
        return self.drop(self.act(self.norm(x)))


class Encoder(nn.Module):
    """Stack of ConvBlocks then global average pooling over time: (B, C, T) -> (B, D)."""

    def __init__(self, cfg: EncoderConfig, *, norm: str) -> None:
        super().__init__()
        self.cfg = cfg
        chans = (cfg.in_channels, *cfg.filters)
        self.blocks = nn.ModuleList(
            ConvBlock(
                chans[i], chans[i + 1], kernel=k, stride=cfg.stride, norm=norm, dropout=cfg.dropout
            )
            for i, k in enumerate(cfg.kernels)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.normal_(m.weight, 0.0, 0.05)  # the official Keras initializer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)  # (B, C_i, T_i)
        return x.mean(dim=-1)  # (B, D)


def crossl_encoder(in_channels: int, *, latent_dim: int = 96, dropout: float = 0.1) -> Encoder:
    """The paper's encoder: 24/48/96 filters, kernels 24/16/8, stride 1, LayerNorm + PReLU."""
    filters = (latent_dim // 4, latent_dim // 2, latent_dim)
    return Encoder(EncoderConfig(in_channels, filters, (24, 16, 8), 1, dropout), norm="layer")


def edge_encoder(in_channels: int, *, latent_dim: int = 96, dropout: float = 0.1) -> Encoder:
    """int8-friendly: Conv + BatchNorm (folded at export) + ReLU, stride 2, kernels 9/7/5."""
    filters = (latent_dim // 4, latent_dim // 2, latent_dim)
    return Encoder(EncoderConfig(in_channels, filters, (9, 7, 5), 2, dropout), norm="batch")


ENCODERS: dict[str, Callable[..., Encoder]] = {"crossl": crossl_encoder, "edge": edge_encoder}


def build_encoder(
    name: str, in_channels: int, *, latent_dim: int = 96, dropout: float = 0.1
) -> Encoder:
    """Build encoder ``name`` from the registry."""
    if name not in ENCODERS:
        raise UsageError(f"unknown encoder {name!r}; choose one of: {', '.join(sorted(ENCODERS))}.")
    return ENCODERS[name](in_channels, latent_dim=latent_dim, dropout=dropout)


def encoder_macs(encoder: Encoder, length: int) -> int:
    """Multiply-accumulates of one forward pass on a window of ``length`` steps (convs only)."""
    macs, t = 0, length
    # nn.ModuleList iterates as plain Modules; Encoder fills it with ConvBlocks
    for block in cast("Iterable[ConvBlock]", encoder.blocks):
        conv = block.conv
        t = math.ceil(t / block.stride)
        macs += t * conv.out_channels * conv.in_channels * block.kernel
    return macs
