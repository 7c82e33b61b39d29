"""VICReg loss between two views' embeddings, with the official CroSSL coefficients."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class VICRegWeights:
    """Invariance, variance and covariance coefficients (official code: 10, 10, 100)."""

    invariance: float = 10.0
    variance: float = 10.0
    covariance: float = 100.0


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    n = m.shape[0]
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def vicreg(
    z1: torch.Tensor, z2: torch.Tensor, *, weights: VICRegWeights = VICRegWeights()
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss for embeddings (B, E) of two masked views, and its three parts as floats."""
    z1, z2 = z1.float(), z2.float()
    b, e = z1.shape
    inv = F.mse_loss(z1, z2)
    z1c, z2c = z1 - z1.mean(0), z2 - z2.mean(0)
    std1 = torch.sqrt(z1c.var(0) + 1e-4)
    std2 = torch.sqrt(z2c.var(0) + 1e-4)
    var = (F.relu(1 - std1).mean() + F.relu(1 - std2).mean()) / 2
    cov1 = (z1c.T @ z1c) / max(b - 1, 1)  # (E, E)
    cov2 = (z2c.T @ z2c) / max(b - 1, 1)
    cov = _off_diagonal(cov1).pow(2).sum() / e + _off_diagonal(cov2).pow(2).sum() / e
    loss = weights.invariance * inv + weights.variance * var + weights.covariance * cov
    parts = {
        "invariance": float(inv.detach()),
        "variance": float(var.detach()),
        "covariance": float(cov.detach()),
    }
    return loss, parts
