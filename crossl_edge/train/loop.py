"""The training loops: CroSSL pretraining (VICReg on two latent masks) and downstream training,
each with early stopping on a validation split and a resumable checkpoint after every epoch."""

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
from crossl_edge.model.masking import latent_mask
from crossl_edge.rundir import CHECKPOINT_PT
from crossl_edge.train.config import TrainConfig
from crossl_edge.train.distributed import DistContext, average_buffers, shard_indices
from crossl_edge.train.progress import Reporter
from crossl_edge.train.schedule import PhasePlan, lr_factor

log = logging.getLogger(__name__)

EpochCallback = Callable[[str, int, dict[str, float]], None]


@dataclass
class Tensors:
    """A Windows split as tensors on the training device."""

    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor

    @classmethod
    def of(cls, w: Windows, device: torch.device) -> Tensors:
        nb = device.type == "cuda"
        pin = (lambda t: t.pin_memory()) if nb else (lambda t: t)
        return cls(
            {n: pin(torch.from_numpy(x)).to(device, non_blocking=nb) for n, x in w.data.items()},
            pin(torch.from_numpy(w.labels)).to(device, non_blocking=nb),
        )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def take(self, idx: np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        i = torch.as_tensor(idx, device=self.labels.device)
        return {n: x.index_select(0, i) for n, x in self.inputs.items()}, self.labels[i]


class _SSLStep(nn.Module):
    """Wraps the pretraining loss as a forward() so DDP can synchronise its gradients."""

    def __init__(self, model: CroSSL) -> None:
        super().__init__()
        self.encoders, self.aggregator, self.model = model.encoders, model.aggregator, [model]

    def forward(self, inputs: dict[str, torch.Tensor], gen: torch.Generator) -> torch.Tensor:
        loss, _ = self.model[0].ssl_loss(inputs, generator=gen)
        return loss


class _ClassifyStep(nn.Module):
    """Wraps classification with a presence mask as a forward() for DDP.

    With ``latents=True`` the inputs are precomputed latents (B, M, D): the frozen ``ssl`` mode
    encodes the data once and trains the head on masked latents only."""

    def __init__(self, model: CroSSL, *, latents: bool = False) -> None:
        super().__init__()
        self.model, self.latents = model, latents

    def forward(self, inputs: Any, present: torch.Tensor) -> torch.Tensor:
        if self.latents:
            return self.model.classify(inputs, present)
        return self.model(inputs, present)


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
    device: torch.device,
) -> torch.Tensor:
    """Training presence (B, M): a random subset for a ``subsets`` share of windows, else each
    modality dropped with probability ``drop`` (never all)."""
    if drop <= 0 and subsets <= 0:
        return torch.ones(batch, m, device=device)
    out = latent_mask(batch, m, 1, coverage=1 - drop, generator=gen)[:, :, 0]
    if subsets > 0:
        pick = torch.rand(batch, 1, generator=gen) < subsets  # (B, 1)
        out = torch.where(pick, random_subsets(batch, m, gen=gen), out)
    return out.to(device)


@torch.no_grad()
def encode_all(model: CroSSL, t: Tensors, precision: str, *, batch: int = 512) -> Tensors:
    """Frozen-backbone latents (N, M, D) of a split, as a Tensors with one 'latents' input."""
    model.eval()
    out = []
    with autocast(t.labels.device, precision):
        for s in range(0, len(t), batch):
            idx = np.arange(s, min(s + batch, len(t)))
            out.append(model.encode(t.take(idx)[0]).float())
    return Tensors({"latents": torch.cat(out)}, t.labels)


@torch.no_grad()
def _val_ssl(model: CroSSL, val: Tensors, cfg: TrainConfig, device: torch.device) -> float:
    model.eval()
    gen = torch.Generator().manual_seed(cfg.seed + 99991)  # fixed masks: comparable across epochs
    with autocast(device, cfg.precision):
        loss, _ = model.ssl_loss(val.inputs, generator=gen)
    return float(loss)


@torch.no_grad()
def _val_ce(model: CroSSL, val: Tensors, cfg: TrainConfig, device: torch.device) -> float:
    model.eval()
    with autocast(device, cfg.precision):
        if "latents" in val.inputs:
            m = val.inputs["latents"].shape[1]
            logits = model.classify(val.inputs["latents"], torch.ones(len(val), m, device=device))
        else:
            logits = model(val.inputs)
    return float(F.cross_entropy(logits.float(), val.labels))


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
    frozen = phase == "downstream" and cfg.mode == "ssl"
    subsets = cfg.ssl_head_masking if frozen else 0.0
    if phase == "pretrain":
        params = [p for n, p in model.named_parameters() if not n.startswith("head.")]
        step: nn.Module = _SSLStep(model)
        lr, epochs = cfg.pretrain_lr, plan.epochs
    else:
        for p in model.encoders.parameters():
            p.requires_grad_(not frozen)
        for p in model.aggregator.parameters():
            p.requires_grad_(not frozen or cfg.ssl_train_aggregator)
        params = [p for p in model.parameters() if p.requires_grad]
        step = _ClassifyStep(model, latents=frozen)
        lr, epochs = cfg.lr, plan.epochs
        if frozen and state.epoch < epochs:  # a fixed backbone: encode once, train the head
            train = encode_all(model, train, cfg.precision)
            val = encode_all(model, val, cfg.precision)
    wrapped = _wrap(step, ctx, device)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    if state.optimizer is not None:
        opt.load_state_dict(state.optimizer)
    m = len(model.cfg.modalities)
    n_steps = plan.steps_per_epoch(world_size=ctx.world_size)
    while state.epoch < epochs and state.bad_epochs < max(plan.patience, 1):
        epoch = state.epoch
        torch.manual_seed(cfg.seed * 100_003 + epoch * 7 + (phase == "downstream"))
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        model.train()
        if phase == "pretrain":
            _set_dropout(model.encoders, active=False)  # the official code pretrains without it
        if frozen:
            model.encoders.eval()
            model.aggregator.train(cfg.ssl_train_aggregator)
        order = shard_indices(
            len(train), epoch=epoch, seed=cfg.seed + (phase == "downstream"), ctx=ctx
        )
        t0, seen = time.perf_counter(), 0
        total = torch.zeros((), device=device)  # summed on the device, read once per epoch
        for i, start in enumerate(range(0, len(order), plan.batch_size)):
            idx = order[start : start + plan.batch_size]
            if len(idx) < 2:
                continue
            factor = lr_factor(plan, step=epoch * n_steps + i, total_steps=epochs * n_steps)
            for group in opt.param_groups:
                group["lr"] = lr * factor
            inputs, labels = train.take(idx)
            with autocast(device, cfg.precision):
                if phase == "pretrain":
                    loss = wrapped(inputs, gen)
                else:
                    present = presence(
                        len(idx), m, drop=cfg.modality_dropout, subsets=subsets, gen=gen,
                        device=device,
                    )
                    x = inputs["latents"] if frozen else inputs
                    loss = F.cross_entropy(wrapped(x, present).float(), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen, total = seen + len(idx), total + loss.detach().float() * len(idx)
            reporter.step(phase, epoch, i + 1, n_steps)
        train_loss = float(total) / max(seen, 1)  # the one host synchronisation of the epoch
        elapsed = time.perf_counter() - t0
        average_buffers(model, ctx)
        val_loss = (
            _val_ssl(model, val, cfg, device)
            if phase == "pretrain"
            else _val_ce(model, val, cfg, device)
        )
        val_loss = ctx.all_reduce_mean(val_loss)
        logs = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "windows_per_s": seen * ctx.world_size / max(elapsed, 1e-9),
            "seconds": time.perf_counter() - t0,
        }
        state.history.setdefault(phase, []).append(logs)
        if val_loss < state.best_metric - 1e-6:
            state.best_metric, state.bad_epochs = val_loss, 0
            state.best_state = copy.deepcopy(model.state_dict())
        else:
            state.bad_epochs += 1
        state.epoch += 1
        state.optimizer = opt.state_dict()
        if ctx.is_main:
            save_state(run_dir, model, state)
        ctx.barrier()
        if ctx.is_main:
            log.info("%s epoch %d: train %.4f val %.4f", phase, epoch, train_loss, val_loss)
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
