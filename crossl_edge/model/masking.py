"""Latent masking: presence masks over (B, M) or (B, M, D), shared by training and inference."""

from __future__ import annotations

import torch

STRATEGIES = ("spatial", "random")


def latent_mask(
    batch: int,
    modalities: int,
    dim: int,
    *,
    strategy: str = "spatial",
    coverage: float = 0.9,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw a binary keep-mask of shape (B, M, D).

    ``spatial`` keeps whole modality latents with probability ``coverage``; ``random`` keeps each
    element independently. A sample never loses every modality: one is restored at random.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown masking strategy {strategy!r}; choose one of {STRATEGIES}.")
    if strategy == "spatial":
        keep = torch.rand(batch, modalities, generator=generator) < coverage  # (B, M)
        empty = ~keep.any(dim=1)  # (B,)
        if empty.any():
            pick = torch.randint(modalities, (int(empty.sum()),), generator=generator)
            keep[empty.nonzero().squeeze(1), pick] = True
        mask = keep[:, :, None].expand(batch, modalities, dim)  # (B, M, D)
    else:
        mask = torch.rand(batch, modalities, dim, generator=generator) < coverage
        empty = ~mask.flatten(1).any(dim=1)
        mask[empty] = True
    return mask.to(device=device, dtype=torch.float32)


def presence_to_mask(present: torch.Tensor, dim: int) -> torch.Tensor:
    """(B, M) presence of modalities -> (B, M, D) mask used to zero absent latents."""
    return present[:, :, None].expand(-1, -1, dim).to(torch.float32)
