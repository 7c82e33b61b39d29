"""Defaults that scale: batch size, epochs, patience and the learning-rate schedule chosen from the
number of training windows unless the user gave them, with a sentence saying what was chosen."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from crossl_edge.train.config import TrainConfig

SMALL = 2_000  # up to this many training windows the official settings apply (BasicMotions: 32)
PRETRAIN_STEPS, DOWNSTREAM_STEPS = 600, 600  # optimiser steps aimed at on larger sets
FLOOR = 0.05  # the cosine schedule ends at 5% of the base learning rate
FROZEN_EPOCHS = 40  # ssl downstream on large sets: masked-subset training needs more epochs


@dataclass(frozen=True)
class PhasePlan:
    """The resolved optimisation plan of one phase (pretraining or downstream)."""

    n_train: int
    batch_size: int
    epochs: int
    patience: int
    lr_schedule: str  # "constant" or "cosine" (linear warm-up, then cosine decay)
    warmup_steps: int

    def steps_per_epoch(self, *, world_size: int = 1) -> int:
        per_rank = -(-self.n_train // max(world_size, 1))
        return max(1, -(-per_rank // self.batch_size))


@dataclass(frozen=True)
class Schedule:
    """Both phases' plans and one sentence per setting that was chosen for the user."""

    pretrain: PhasePlan
    downstream: PhasePlan
    chosen: tuple[str, ...]

    def to_json(self) -> dict:
        return {**asdict(self), "chosen": list(self.chosen)}


def auto_batch_size(n_train: int) -> int:
    """8 for small sets (the official setting), a power of two near n/100 above, at most 256."""
    return int(min(256, max(8, 2 ** round(math.log2(max(n_train, 1) / 100)))))


def auto_epochs(n_train: int, batch_size: int, *, target_steps: int) -> tuple[int, int]:
    """(epochs, patience): 50 and 5 for small sets (the official code); for large ones enough
    epochs for about ``target_steps`` optimiser steps, which converge under a cosine schedule."""
    if n_train <= SMALL:
        return 50, 5
    return max(2, math.ceil(target_steps / -(-n_train // batch_size))), 3


def _plan(
    n: int, cfg: TrainConfig, *, epochs: int | None, target_steps: int, frozen: bool = False
) -> PhasePlan:
    batch = cfg.batch_size or auto_batch_size(n)
    auto_ep, auto_patience = auto_epochs(n, batch, target_steps=target_steps)
    if frozen and n > SMALL:  # ssl: aggregator + head on precomputed latents, cheap per epoch
        auto_ep, auto_patience = FROZEN_EPOCHS, 5
    sched = cfg.lr_schedule
    if sched == "auto":
        sched = "constant" if n <= SMALL else "cosine"
    warmup = 0 if sched == "constant" else min(50, -(-n // batch))
    return PhasePlan(
        n,
        batch,
        auto_ep if epochs is None else epochs,
        auto_patience if cfg.patience is None else cfg.patience,
        sched,
        warmup,
    )


def resolve(cfg: TrainConfig, *, n_pretrain: int, n_labelled: int) -> Schedule:
    """Fill every setting ``cfg`` leaves unset (None / "auto") from the training-set sizes."""
    pre = _plan(n_pretrain, cfg, epochs=cfg.pretrain_epochs, target_steps=PRETRAIN_STEPS)
    down = _plan(n_labelled, cfg, epochs=cfg.epochs, target_steps=DOWNSTREAM_STEPS,
                 frozen=cfg.mode == "ssl")
    chosen: list[str] = []
    phases = [("downstream", down)] if cfg.mode == "sup" else [("pretraining", pre),
                                                                ("downstream", down)]
    if cfg.batch_size is None:
        said = "; ".join(f"{name} batch {p.batch_size} for {p.n_train:,} windows"
                         for name, p in phases)
        chosen.append(f"chosen from the training-set size: {said}; --batch-size to change")
    if cfg.epochs is None or (cfg.pretrain_epochs is None and cfg.mode != "sup"):
        said = " + ".join(f"{p.epochs} {name}" for name, p in phases)
        chosen.append(
            f"{said} epochs at most (early stopping, patience {down.patience}); "
            "--pretrain-epochs/--epochs/--patience to change"
        )
    if cfg.lr_schedule == "auto":
        said = "; ".join(
            f"{name} {'constant' if p.lr_schedule == 'constant' else 'warm-up + cosine decay'}"
            for name, p in phases
        )
        chosen.append(f"learning rate: {said}; --lr-schedule to change")
    return Schedule(pre, down, tuple(chosen))


def lr_factor(plan: PhasePlan, *, step: int, total_steps: int) -> float:
    """Multiplier of the base learning rate at optimiser ``step`` (0-based) of ``total_steps``."""
    if plan.lr_schedule == "constant":
        return 1.0
    if step < plan.warmup_steps:
        return (step + 1) / (plan.warmup_steps + 1)
    span = max(total_steps - plan.warmup_steps, 1)
    return FLOOR + (1 - FLOOR) * 0.5 * (
        1 + math.cos(math.pi * min(step - plan.warmup_steps, span) / span)
    )
