"""Typed training configuration (defaults follow the official CroSSL code where it has one)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from crossl_edge.errors import UsageError

MODES = ("ssl", "fine", "sup")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "bf16", "fp32")  # auto: bf16 autocast on CUDA, float32 on the CPU
LR_SCHEDULES = ("auto", "constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """One training run: data, model choices, optimisation, and the downstream protocol."""

    dataset: str = "basicmotions"
    data_path: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)
    modalities: tuple[str, ...] | None = None  # None = every modality of the dataset
    mode: str = "fine"
    encoder: str = "crossl"
    masking: str = "spatial"
    coverage: float = 0.9
    latent_dim: int = 96
    # None / "auto": chosen from the number of training windows (crossl_edge.train.schedule)
    pretrain_epochs: int | None = None
    epochs: int | None = None
    patience: int | None = None
    batch_size: int | None = None
    lr_schedule: str = "auto"
    lr: float = 1e-3
    pretrain_lr: float = 1e-3
    weight_decay: float = 1e-4
    label_fraction: float = 1.0
    val_fraction: float = 0.2
    modality_dropout: float = 0.1
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    ssl_head_masking: float = 0.8  # ssl mode: share of head windows given a random modality subset
    ssl_train_aggregator: bool = True  # ssl mode: train the phone-side aggregator with the head
    workers: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}.")
        if self.device not in DEVICES:
            raise UsageError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}.")
        from crossl_edge.model.encoders import ENCODERS

        if self.encoder not in ENCODERS:
            raise UsageError(
                f"unknown encoder {self.encoder!r}; choose one of {', '.join(sorted(ENCODERS))}."
            )
        if self.masking not in ("spatial", "random"):
            raise UsageError(f"unknown masking {self.masking!r}; choose spatial or random.")
        if not 0 < self.label_fraction <= 1:
            raise UsageError("--label-fraction must be in (0, 1].")
        if not 0 < self.val_fraction < 1:
            raise UsageError("--val-fraction must be in (0, 1).")
        if not 0 < self.coverage <= 1:
            raise UsageError("--coverage must be in (0, 1].")
        if not 0 <= self.modality_dropout < 1:
            raise UsageError("--modality-dropout must be in [0, 1).")
        if self.precision not in PRECISIONS:
            raise UsageError(
                f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}."
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise UsageError(
                f"unknown lr schedule {self.lr_schedule!r}; choose one of "
                f"{', '.join(LR_SCHEDULES)}."
            )
        if not 0 <= self.ssl_head_masking <= 1:
            raise UsageError("--ssl-head-masking must be in [0, 1].")
        if self.batch_size is not None and self.batch_size < 2:
            raise UsageError("--batch-size must be at least 2 (VICReg needs a batch variance).")
        given = [v for v in (self.epochs, self.pretrain_epochs, self.patience) if v is not None]
        if given and min(given) < 0:
            raise UsageError("epochs and patience must be non-negative.")

    def to_json(self) -> dict[str, Any]:
        obj = asdict(self)
        obj["modalities"] = list(self.modalities) if self.modalities else None
        return obj

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrainConfig:
        obj = dict(obj)
        if obj.get("modalities"):
            obj["modalities"] = tuple(obj["modalities"])
        return cls(**obj)
