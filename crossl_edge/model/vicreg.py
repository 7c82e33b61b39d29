"""VICReg loss between two views' embeddings, with the official CroSSL coefficients.

The loss is always computed in float32 outside autocast: the covariance term (weight 100) would
otherwise run its matmuls in bf16 under mixed precision."""

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


def covariance(zc: torch.Tensor) -> torch.Tensor:
    """Covariance (E, E) of centred embeddings (B, E), in float32 even inside an autocast region."""
    with torch.autocast(device_type=zc.device.type, enabled=False):
        zc = zc.float()
        return (zc.T @ zc) / max(zc.shape[0] - 1, 1)


def vicreg(
    z1: torch.Tensor, z2: torch.Tensor, *, weights: VICRegWeights = VICRegWeights()
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss for embeddings (B, E) of two masked views, and its three parts as detached tensors.

    The parts stay on the device (no host synchronisation); read them with ``float()`` when needed.
    """
    with torch.autocast(device_type=z1.device.type, enabled=False):
        z1, z2 = z1.float(), z2.float()
        e = z1.shape[1]
        inv = F.mse_loss(z1, z2)
        z1c, z2c = z1 - z1.mean(0), z2 - z2.mean(0)
        std1 = torch.sqrt(z1c.var(0) + 1e-4)
        std2 = torch.sqrt(z2c.var(0) + 1e-4)
        var = (F.relu(1 - std1).mean() + F.relu(1 - std2).mean()) / 2
        cov1, cov2 = covariance(z1c), covariance(z2c)  # (E, E) each
        cov = _off_diagonal(cov1).pow(2).sum() / e + _off_diagonal(cov2).pow(2).sum() / e
        loss = weights.invariance * inv + weights.variance * var + weights.covariance * cov
    parts = {"invariance": inv.detach(), "variance": var.detach(), "covariance": cov.detach()}
    return loss, parts
