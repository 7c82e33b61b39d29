"""Cross-modal aggregator (flatten -> MLP -> LayerNorm) and the downstream classification head."""

from __future__ import annotations

import torch
from torch import nn


class Aggregator(nn.Module):
    """Fuse M masked latents (B, M, D) into one global embedding (B, E)."""

    def __init__(
        self,
        n_modalities: int,
        latent_dim: int,
        *,
        hidden: tuple[int, int] = (64, 32),
        embed_dim: int = 32,
    ) -> None:
        super().__init__()
        self.n_modalities, self.latent_dim = n_modalities, latent_dim
        self.mlp = nn.Sequential(
            nn.Linear(n_modalities * latent_dim, hidden[0]),
            nn.ReLU(),
            nn.Linear(hidden[0], hidden[1]),
            nn.ReLU(),
            nn.Linear(hidden[1], embed_dim),
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-3)

    def forward(self, latents: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = latents * mask  # (B, M, D), absent entries exactly 0
        x = x.flatten(1)  # (B, M * D)
        return self.norm(self.mlp(x))  # (B, E)


class Head(nn.Module):
    """Linear 128 -> ReLU -> Dropout -> Linear(n_classes) on the global embedding."""

    def __init__(
        self, embed_dim: int, n_classes: int, *, hidden: int = 128, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(embed_dim, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, E) -> (B, n_classes)
