"""DDP context from torchrun's environment: rank, world size, sharding, and rank-0-only helpers."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "gloo"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    @property
    def reduce_device(self) -> torch.device:
        """Where collective tensors must live: NCCL reduces CUDA tensors only, gloo CPU ones."""
        return reduce_device(self.backend, local_rank=self.local_rank)

    def all_reduce_mean(self, value: float) -> float:
        """Average a scalar over ranks (used for validation metrics), on the backend's device."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.reduce_device)
        dist.all_reduce(t)
        return float(t.item() / self.world_size)


def reduce_device(backend: str, *, local_rank: int = 0) -> torch.device:
    """The device a ``backend`` collective needs: this rank's GPU for nccl, else the CPU."""
    return torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")


def average_buffers(module: torch.nn.Module, ctx: DistContext) -> None:
    """Average floating-point buffers (BatchNorm running stats) so every rank holds one model."""
    if not ctx.enabled:
        return
    for buf in module.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf)
            buf.div_(ctx.world_size)


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group torchrun set up (nccl on CUDA, gloo on CPU); no-op when alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    ctx = DistContext(
        dist.get_rank(),
        dist.get_world_size(),
        int(os.environ.get("LOCAL_RANK", 0)),
        str(dist.get_backend()),
    )
    log.info("DDP rank %d/%d (%s)", ctx.rank, ctx.world_size, dist.get_backend())
    return ctx


def shard_indices(
    n: int, *, epoch: int, seed: int, ctx: DistContext, shuffle: bool = True
) -> np.ndarray:
    """This rank's indices for ``epoch``: one seeded permutation, padded, then rank::world."""
    order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
    if ctx.world_size > 1:
        per_rank = -(-n // ctx.world_size)
        order = np.resize(order, per_rank * ctx.world_size)  # wrap to equal shard sizes
        order = order[ctx.rank :: ctx.world_size]
    return order
