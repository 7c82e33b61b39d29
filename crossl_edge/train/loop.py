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

from crossl_edge.data.windows import Windows
from crossl_edge.model.crossl import CroSSL
from crossl_edge.model.masking import latent_mask
from crossl_edge.train import checkpoint
from crossl_edge.train.config import TrainConfig
from crossl_edge.train.distributed import DistContext, average_buffers, shard_indices

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
    """Wraps classification with a presence mask as a forward() for DDP."""

    def __init__(self, model: CroSSL) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: dict[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
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


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
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


def _present(
    batch: int, m: int, *, drop: float, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    if drop <= 0:
        return torch.ones(batch, m, device=device)
    return latent_mask(batch, m, 1, coverage=1 - drop, generator=gen, device=device)[:, :, 0]


@torch.no_grad()
def _val_ssl(model: CroSSL, val: Tensors, cfg: TrainConfig, device: torch.device) -> float:
    model.eval()
    gen = torch.Generator().manual_seed(cfg.seed + 99991)  # fixed masks: comparable across epochs
    with _autocast(device):
        loss, _ = model.ssl_loss(val.inputs, generator=gen)
    return float(loss)


@torch.no_grad()
def _val_ce(model: CroSSL, val: Tensors, device: torch.device) -> float:
    model.eval()
    with _autocast(device):
        logits = model(val.inputs)
    return float(F.cross_entropy(logits.float(), val.labels))


def run_phase(
    phase: str,
    *,
    model: CroSSL,
    cfg: TrainConfig,
    train: Tensors,
    val: Tensors,
    state: LoopState,
    device: torch.device,
    ctx: DistContext,
    run_dir: Path,
    callbacks: list[EpochCallback],
) -> LoopState:
    """Train one phase ('pretrain' or 'downstream') to early stopping, checkpointing each epoch."""
    frozen = phase == "downstream" and cfg.mode == "ssl"
    if phase == "pretrain":
        params = [p for n, p in model.named_parameters() if not n.startswith("head.")]
        step: nn.Module = _SSLStep(model)
        lr, epochs = cfg.pretrain_lr, cfg.pretrain_epochs
    else:
        for p in [*model.encoders.parameters(), *model.aggregator.parameters()]:
            p.requires_grad_(not frozen)
        params = [p for p in model.parameters() if p.requires_grad]
        step = _ClassifyStep(model)
        lr, epochs = cfg.lr, cfg.epochs
    wrapped = _wrap(step, ctx, device)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    if state.optimizer is not None:
        opt.load_state_dict(state.optimizer)
    m = len(model.cfg.modalities)
    while state.epoch < epochs and state.bad_epochs < max(cfg.patience, 1):
        epoch = state.epoch
        torch.manual_seed(cfg.seed * 100_003 + epoch * 7 + (phase == "downstream"))
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        model.train()
        if phase == "pretrain":
            _set_dropout(model.encoders, active=False)  # the official code pretrains without it
        if frozen:
            model.encoders.eval()
            model.aggregator.eval()
        order = shard_indices(
            len(train), epoch=epoch, seed=cfg.seed + (phase == "downstream"), ctx=ctx
        )
        t0, seen, total = time.perf_counter(), 0, 0.0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            if len(idx) < 2:
                continue
            inputs, labels = train.take(idx)
            with _autocast(device):
                if phase == "pretrain":
                    loss = wrapped(inputs, gen)
                else:
                    present = _present(
                        len(idx), m, drop=cfg.modality_dropout, gen=gen, device=device
                    )
                    loss = F.cross_entropy(wrapped(inputs, present).float(), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen, total = seen + len(idx), total + float(loss.detach()) * len(idx)
        elapsed = time.perf_counter() - t0
        average_buffers(model, ctx)
        val_loss = (
            _val_ssl(model, val, cfg, device)
            if phase == "pretrain"
            else _val_ce(model, val, device)
        )
        val_loss = ctx.all_reduce_mean(val_loss)
        logs = {
            "epoch": epoch,
            "train_loss": total / max(seen, 1),
            "val_loss": val_loss,
            "windows_per_s": seen * ctx.world_size / max(elapsed, 1e-9),
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
            log.info("%s epoch %d: train %.4f val %.4f", phase, epoch, logs["train_loss"],
                     val_loss)
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
        run_dir / checkpoint.CHECKPOINT,
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
    ck = checkpoint.load(run_dir / checkpoint.CHECKPOINT)
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
