"""Latent masking: presence masks over (B, M) or (B, M, D), shared by training and inference; a
modality that never arrived (``available`` False) is never kept."""

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
    available: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw a binary keep-mask of shape (B, M, D).

    ``spatial`` keeps whole modality latents with probability ``coverage``; ``random`` keeps each
    element independently. ``available`` (B, M) marks the modalities that arrived for each
    window: an absent one is never kept, exactly like a masked one. A sample never loses every
    available modality: one is restored at random among them.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown masking strategy {strategy!r}; choose one of {STRATEGIES}.")
    avail = None if available is None else available.detach().to("cpu") > 0  # (B, M)
    if avail is not None and bool(avail.all()):
        avail = None  # complete data: the same draws as without it
    if strategy == "spatial":
        keep = torch.rand(batch, modalities, generator=generator) < coverage  # (B, M)
        if avail is not None:
            keep &= avail
        empty = ~keep.any(dim=1)  # (B,)
        if empty.any():
            rows = empty.nonzero().squeeze(1)
            if avail is None:
                pick = torch.randint(modalities, (len(rows),), generator=generator)
            else:
                weights = avail[rows].float() + 1e-12 * (~avail[rows].any(1, keepdim=True))
                pick = torch.multinomial(weights, 1, generator=generator).squeeze(1)
            keep[rows, pick] = True if avail is None else avail[rows, pick]
        mask = keep[:, :, None].expand(batch, modalities, dim)  # (B, M, D)
    else:
        mask = torch.rand(batch, modalities, dim, generator=generator) < coverage
        if avail is not None:
            mask &= avail[:, :, None]
        empty = ~mask.flatten(1).any(dim=1)
        if avail is None:
            mask[empty] = True
        else:
            mask[empty] = avail[empty][:, :, None].expand(-1, -1, dim)
    return mask.to(device=device, dtype=torch.float32)


def restrict(drawn: torch.Tensor, available: torch.Tensor | None, *,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, M) training presence ``drawn`` limited to the ``available`` modalities; a row left
    with none keeps one available modality at random."""
    if available is None:
        return drawn
    avail = available.to(drawn.device) > 0
    if bool(avail.all()):
        return drawn
    out = (drawn > 0) & avail
    empty = ~out.any(dim=1) & avail.any(dim=1)
    if empty.any():
        rows = empty.nonzero().squeeze(1)
        pick = torch.multinomial(avail[rows].float().cpu(), 1, generator=generator).squeeze(1)
        out[rows, pick.to(out.device)] = True
    return out.to(drawn.dtype)


def presence_to_mask(present: torch.Tensor, dim: int) -> torch.Tensor:
    """(B, M) presence of modalities -> (B, M, D) mask used to zero absent latents."""
    return present[:, :, None].expand(-1, -1, dim).to(torch.float32)
