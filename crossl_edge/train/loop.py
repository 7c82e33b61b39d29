"""The training loops: CroSSL pretraining (VICReg on two latent masks) and downstream training,
each with early stopping on a validation split and a resumable checkpoint after every epoch; a
modality absent from a window is treated exactly like a masked one."""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crossl_edge import checkpoint
from crossl_edge.data.windows import Windows
from crossl_edge.model.crossl import CroSSL
from crossl_edge.model.masking import latent_mask, restrict
from crossl_edge.rundir import CHECKPOINT_PT
from crossl_edge.train.config import TrainConfig
from crossl_edge.train.distributed import DistContext, average_buffers, shard_indices
from crossl_edge.train.progress import Reporter
from crossl_edge.train.schedule import PhasePlan, lr_factor

log = logging.getLogger(__name__)

EpochCallback = Callable[[str, int, dict[str, float]], None]


@dataclass
class Tensors:
    """A Windows split as tensors on the training device; ``present`` (N, M) says which
    modalities arrived for each window (1.0) and which did not (0.0)."""

    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor
    present: torch.Tensor

    @classmethod
    def of(cls, w: Windows, device: torch.device) -> Tensors:
        nb = device.type == "cuda"
        pin = (lambda t: t.pin_memory()) if nb else (lambda t: t)
        return cls(
            {n: pin(torch.from_numpy(x)).to(device, non_blocking=nb) for n, x in w.data.items()},
            pin(torch.from_numpy(w.labels)).to(device, non_blocking=nb),
            torch.from_numpy(w.presence().astype(np.float32)).to(device),
        )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def take(
        self, idx: np.ndarray
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        i = torch.as_tensor(idx, device=self.labels.device)
        inputs = {n: x.index_select(0, i) for n, x in self.inputs.items()}
        return inputs, self.labels[i], self.present[i]


class _SSLStep(nn.Module):
    """Wraps the pretraining loss as a forward() so DDP can synchronise its gradients."""

    def __init__(self, model: CroSSL) -> None:
        super().__init__()
        self.encoders, self.aggregator, self.model = model.encoders, model.aggregator, [model]

    def forward(self, inputs: dict[str, torch.Tensor], gen: torch.Generator,
                available: torch.Tensor) -> torch.Tensor:
        loss, _ = self.model[0].ssl_loss(inputs, generator=gen, available=available)
        return loss


class _ClassifyStep(nn.Module):
    """Wraps classification with a presence mask as a forward() for DDP.

    With ``latents=True`` the inputs are precomputed latents (B, M, D): the frozen ``ssl`` mode
    encodes the data once and trains the head on masked latents only."""

    def __init__(self, model: CroSSL, *, latents: bool = False) -> None:
        super().__init__()
        self.model, self.latents = model, latents

    def forward(self, inputs: Any, present: torch.Tensor,
                available: torch.Tensor) -> torch.Tensor:
        if self.latents:
            return self.model.classify(inputs, present)
        return self.model(inputs, present, available)


@dataclass
class LoopState:
    """Everything a resumed run needs: phase, epoch, weights, optimizer, early-stopping memory."""

    phase: str
    epoch: int = 0
    best_metric: float = float("inf")
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    history: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    optimizer: dict[str, Any] | None = None


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` for precision bf16 (or auto on CUDA); otherwise float32."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _set_dropout(module: nn.Module, *, active: bool) -> None:
    for m in module.modules():
        if isinstance(m, nn.Dropout):
            m.train(active)


def _wrap(step: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    if not ctx.enabled:
        return step
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(step, device_ids=ids)


def random_subsets(batch: int, m: int, *, gen: torch.Generator) -> torch.Tensor:
    """(B, M) presence of a uniformly drawn non-empty modality subset per window."""
    code = torch.randint(1, 2**m, (batch, 1), generator=gen)  # (B, 1), never 0
    return ((code >> torch.arange(m)) & 1).float()  # (B, M)


def presence(
    batch: int, m: int, *, drop: float, subsets: float, gen: torch.Generator,
    device: torch.device, available: torch.Tensor | None = None,
) -> torch.Tensor:
    """Training presence (B, M): a random subset for a ``subsets`` share of windows, else each
    modality dropped with probability ``drop`` (never all); a modality not ``available`` (B, M)
    for a window is never present."""
    if drop <= 0 and subsets <= 0:
        out = torch.ones(batch, m)
    else:
        out = latent_mask(batch, m, 1, coverage=1 - drop, generator=gen,
                          available=available)[:, :, 0]
        if subsets > 0:
            pick = torch.rand(batch, 1, generator=gen) < subsets  # (B, 1)
            drawn = restrict(random_subsets(batch, m, gen=gen), available, generator=gen)
            out = torch.where(pick, drawn, out)
    if available is not None:
        out = out * (available.to("cpu") > 0)
    return out.to(device)


@torch.no_grad()
def encode_all(model: CroSSL, t: Tensors, precision: str, *, batch: int = 512) -> Tensors:
    """Frozen-backbone latents (N, M, D) of a split, as a Tensors with one 'latents' input
    (absent modalities' latents are 0 and stay marked absent)."""
    model.eval()
    out = []
    with autocast(t.labels.device, precision):
        for s in range(0, len(t), batch):
            idx = np.arange(s, min(s + batch, len(t)))
            inputs, _, avail = t.take(idx)
            out.append(model.encode(inputs, avail).float())
    return Tensors({"latents": torch.cat(out)}, t.labels, t.present)


@torch.no_grad()
def _val_ssl(model: CroSSL, val: Tensors, cfg: TrainConfig, device: torch.device) -> float:
    model.eval()
    gen = torch.Generator().manual_seed(cfg.seed + 99991)  # fixed masks: comparable across epochs
    with autocast(device, cfg.precision):
        loss, _ = model.ssl_loss(val.inputs, generator=gen, available=val.present)
    return float(loss)


@torch.no_grad()
def _val_ce(model: CroSSL, val: Tensors, cfg: TrainConfig, device: torch.device) -> float:
    model.eval()
    with autocast(device, cfg.precision):
        if "latents" in val.inputs:
            logits = model.classify(val.inputs["latents"], val.present)
        else:
            logits = model(val.inputs, val.present, val.present)
    return float(F.cross_entropy(logits.float(), val.labels))


@dataclass
class PhaseSetup:
    """What one phase's epochs share: the step module (DDP-wrapped), optimizer, data, options."""

    phase: str
    step: nn.Module
    opt: torch.optim.Optimizer
    lr: float
    epochs: int
    train: Tensors
    val: Tensors
    frozen: bool
    subsets: float
    n_steps: int


def setup_phase(
    phase: str, *, model: CroSSL, cfg: TrainConfig, plan: PhasePlan, train: Tensors,
    val: Tensors, state: LoopState, device: torch.device, ctx: DistContext,
) -> PhaseSetup:
    """Freeze what the phase keeps fixed, build its step and optimizer (restored on resume) and,
    for the frozen ``ssl`` head, encode the data once."""
    frozen = phase == "downstream" and cfg.mode == "ssl"
    if phase == "pretrain":
        params = [p for n, p in model.named_parameters() if not n.startswith("head.")]
        step: nn.Module = _SSLStep(model)
        lr = cfg.pretrain_lr
    else:
        for p in model.encoders.parameters():
            p.requires_grad_(not frozen)
        for p in model.aggregator.parameters():
            p.requires_grad_(not frozen or cfg.ssl_train_aggregator)
        params = [p for p in model.parameters() if p.requires_grad]
        step = _ClassifyStep(model, latents=frozen)
        lr = cfg.lr
        if frozen and state.epoch < plan.epochs:  # a fixed backbone: encode once, train the head
            train = encode_all(model, train, cfg.precision)
            val = encode_all(model, val, cfg.precision)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    if state.optimizer is not None:
        opt.load_state_dict(state.optimizer)
    return PhaseSetup(phase, _wrap(step, ctx, device), opt, lr, plan.epochs, train, val, frozen,
                      cfg.ssl_head_masking if frozen else 0.0,
                      plan.steps_per_epoch(world_size=ctx.world_size))


def run_epoch(
    ps: PhaseSetup, *, model: CroSSL, cfg: TrainConfig, plan: PhasePlan, epoch: int,
    device: torch.device, ctx: DistContext, reporter: Reporter,
) -> dict[str, float]:
    """One epoch of ``ps.phase``: the optimiser steps, then the validation loss; its logs."""
    phase, train, m = ps.phase, ps.train, len(model.cfg.modalities)
    torch.manual_seed(cfg.seed * 100_003 + epoch * 7 + (phase == "downstream"))
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    model.train()
    if phase == "pretrain":
        _set_dropout(model.encoders, active=False)  # the official code pretrains without it
    if ps.frozen:
        model.encoders.eval()
        model.aggregator.train(cfg.ssl_train_aggregator)
    order = shard_indices(len(train), epoch=epoch, seed=cfg.seed + (phase == "downstream"),
                          ctx=ctx)
    t0, seen = time.perf_counter(), 0
    total = torch.zeros((), device=device)  # summed on the device, read once per epoch
    for i, start in enumerate(range(0, len(order), plan.batch_size)):
        idx = order[start : start + plan.batch_size]
        if len(idx) < 2:
            continue
        factor = lr_factor(plan, step=epoch * ps.n_steps + i, total_steps=ps.epochs * ps.n_steps)
        for group in ps.opt.param_groups:
            group["lr"] = ps.lr * factor
        inputs, labels, avail = train.take(idx)
        with autocast(device, cfg.precision):
            if phase == "pretrain":
                loss = ps.step(inputs, gen, avail)
            else:
                present = presence(len(idx), m, drop=cfg.modality_dropout, subsets=ps.subsets,
                                   gen=gen, device=device, available=avail)
                x = inputs["latents"] if ps.frozen else inputs
                loss = F.cross_entropy(ps.step(x, present, avail).float(), labels)
        ps.opt.zero_grad(set_to_none=True)
        loss.backward()
        ps.opt.step()
        seen, total = seen + len(idx), total + loss.detach().float() * len(idx)
        reporter.step(phase, epoch, i + 1, ps.n_steps)
    train_loss = float(total) / max(seen, 1)  # the one host synchronisation of the epoch
    elapsed = time.perf_counter() - t0
    average_buffers(model, ctx)
    val_fn = _val_ssl if phase == "pretrain" else _val_ce
    val_loss = ctx.all_reduce_mean(val_fn(model, ps.val, cfg, device))
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": val_loss,
        "windows_per_s": seen * ctx.world_size / max(elapsed, 1e-9),
        "seconds": time.perf_counter() - t0,
    }


def run_phase(
    phase: str,
    *,
    model: CroSSL,
    cfg: TrainConfig,
    plan: PhasePlan,
    train: Tensors,
    val: Tensors,
    state: LoopState,
    device: torch.device,
    ctx: DistContext,
    run_dir: Path,
    callbacks: list[EpochCallback],
    reporter: Reporter | None = None,
) -> LoopState:
    """Train one phase ('pretrain' or 'downstream') to early stopping, checkpointing each epoch."""
    reporter = reporter or Reporter()
    ps = setup_phase(phase, model=model, cfg=cfg, plan=plan, train=train, val=val, state=state,
                     device=device, ctx=ctx)
    while state.epoch < ps.epochs and state.bad_epochs < max(plan.patience, 1):
        epoch = state.epoch
        logs = run_epoch(ps, model=model, cfg=cfg, plan=plan, epoch=epoch, device=device,
                         ctx=ctx, reporter=reporter)
        state.history.setdefault(phase, []).append(logs)
        if logs["val_loss"] < state.best_metric - 1e-6:
            state.best_metric, state.bad_epochs = logs["val_loss"], 0
            state.best_state = copy.deepcopy(model.state_dict())
        else:
            state.bad_epochs += 1
        state.epoch += 1
        state.optimizer = ps.opt.state_dict()
        if ctx.is_main:
            save_state(run_dir, model, state)
        ctx.barrier()
        if ctx.is_main:
            log.info("%s epoch %d: train %.4f val %.4f", phase, epoch, logs["train_loss"],
                     logs["val_loss"])
            reporter.epoch(phase, epoch, logs)
        for cb in callbacks:
            cb(phase, epoch, logs)
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    for p in model.parameters():
        p.requires_grad_(True)
    return state


def save_state(run_dir: Path, model: CroSSL, state: LoopState) -> None:
    """Write the resumable checkpoint (rank 0 only; the caller guarantees that)."""
    checkpoint.save(
        run_dir / CHECKPOINT_PT,
        {
            "phase": state.phase,
            "epoch": state.epoch,
            "best_metric": state.best_metric,
            "best_state": state.best_state,
            "bad_epochs": state.bad_epochs,
            "history": state.history,
            "optimizer": state.optimizer,
            "model": model.state_dict(),
        },
    )


def load_state(run_dir: Path, model: CroSSL) -> LoopState:
    """Restore model weights and loop state from the run's checkpoint."""
    ck = checkpoint.load(run_dir / CHECKPOINT_PT)
    model.load_state_dict(ck["model"])
    return LoopState(
        ck["phase"],
        ck["epoch"],
        ck["best_metric"],
        ck["best_state"],
        ck["bad_epochs"],
        ck["history"],
        ck["optimizer"],
    )
