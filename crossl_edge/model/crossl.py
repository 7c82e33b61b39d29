"""The CroSSL model: one encoder per modality, latent masking, a shared aggregator, and a head."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from crossl_edge.model.aggregator import Aggregator, Head
from crossl_edge.model.encoders import build_encoder
from crossl_edge.model.masking import latent_mask, presence_to_mask
from crossl_edge.model.vicreg import VICRegWeights, vicreg


@dataclass(frozen=True)
class ModalityShape:
    """What an encoder needs to know about its modality."""

    name: str
    channels: int
    window: int


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a CroSSL model from a checkpoint."""

    modalities: tuple[ModalityShape, ...]
    n_classes: int
    encoder: str = "crossl"
    latent_dim: int = 96
    embed_dim: int = 32
    dropout: float = 0.1
    masking: str = "spatial"
    coverage: float = 0.9
    vicreg: VICRegWeights = field(default_factory=VICRegWeights)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> ModelConfig:
        obj = dict(obj)
        obj["modalities"] = tuple(ModalityShape(**m) for m in obj["modalities"])
        obj["vicreg"] = VICRegWeights(**obj.get("vicreg", {}))
        return cls(**obj)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modalities)


class CroSSL(nn.Module):
    """Encoders (one per modality) -> stacked latents (B, M, D) -> aggregator -> head."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoders = nn.ModuleDict(
            {
                m.name: build_encoder(
                    cfg.encoder, m.channels, latent_dim=cfg.latent_dim, dropout=cfg.dropout
                )
                for m in cfg.modalities
            }
        )
        self.aggregator = Aggregator(len(cfg.modalities), cfg.latent_dim, embed_dim=cfg.embed_dim)
        self.head = Head(cfg.embed_dim, cfg.n_classes, dropout=cfg.dropout)

    def encode(
        self, inputs: dict[str, torch.Tensor], available: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Windows {m: (B, C_m, T_m)} -> latents (B, M, D) in the configured modality order.

        ``available`` (B, M): a modality that did not arrive for a window is not encoded there
        (its latent is 0), so fabricated data never reaches an encoder or its BatchNorm."""
        if available is None:
            return torch.stack([self.encoders[n](inputs[n]) for n in self.cfg.names], dim=1)
        return torch.stack(
            [self._encode_present(n, inputs[n], available[:, i] > 0)
             for i, n in enumerate(self.cfg.names)], dim=1)

    def _encode_present(self, name: str, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        enc = self.encoders[name]
        if bool(keep.all()):
            return enc(x)
        idx = keep.nonzero().squeeze(1)
        if len(idx) == 0:  # a zero that still touches every weight (DDP expects them all used)
            tie = sum(p.sum() for p in enc.parameters()) * 0.0
            return x.new_zeros(len(x), self.cfg.latent_dim) + tie
        z = enc(x.index_select(0, idx))
        return z.new_zeros(len(x), z.shape[1]).index_copy(0, idx, z)

    def classify(self, latents: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """The phone model: latents (B, M, D) and presence (B, M) -> logits (B, n_classes)."""
        z = self.aggregator(latents, presence_to_mask(present, latents.shape[-1]))  # (B, E)
        return self.head(z)

    def forward(
        self, inputs: dict[str, torch.Tensor], present: torch.Tensor | None = None,
        available: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits; ``present`` (B, M) masks latents, ``available`` (B, M) says which modalities
        arrived (absent ones are not encoded)."""
        latents = self.encode(inputs, available)  # (B, M, D)
        if present is None:
            present = torch.ones(latents.shape[:2], device=latents.device)  # (B, M)
        return self.classify(latents, present)

    def ssl_loss(
        self, inputs: dict[str, torch.Tensor], *, generator: torch.Generator | None = None,
        available: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """CroSSL pretraining: one encoder pass, two latent masks, VICReg between the views; a
        modality absent from a window (``available`` (B, M)) is masked in both views."""
        latents = self.encode(inputs, available)  # (B, M, D)
        b, m, d = latents.shape
        views = [
            latent_mask(
                b,
                m,
                d,
                strategy=self.cfg.masking,
                coverage=self.cfg.coverage,
                generator=generator,
                device=latents.device,
                available=available,
            )
            for _ in range(2)
        ]
        z1 = self.aggregator(latents, views[0])  # (B, E)
        z2 = self.aggregator(latents, views[1])  # (B, E)
        return vicreg(z1, z2, weights=self.cfg.vicreg)


class PhoneModel(nn.Module):
    """Aggregator + head as one module with inputs (latents (1, M, D), present (1, M))."""

    def __init__(self, model: CroSSL) -> None:
        super().__init__()
        self.aggregator, self.head = model.aggregator, model.head

    def forward(self, latents: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        mask = present[:, :, None]  # (B, M, 1)
        return self.head(self.aggregator(latents, mask))  # (B, n_classes)
