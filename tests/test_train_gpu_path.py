"""The GPU path without a GPU: collective device per backend, float32 VICReg under bf16 autocast,
no host reads between training steps, the bf16 CPU path, and the GPU check script's refusal."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from crossl_edge.model.vicreg import covariance, vicreg
from crossl_edge.train.config import TrainConfig
from crossl_edge.train.distributed import DistContext, reduce_device
from crossl_edge.train.progress import Reporter
from crossl_edge.train.run import train_run

ROOT = Path(__file__).resolve().parent.parent


def test_reduction_device_follows_the_backend() -> None:
    nccl = DistContext(rank=1, world_size=2, local_rank=1, backend="nccl")
    assert nccl.reduce_device == torch.device("cuda", 1)  # NCCL reduces CUDA tensors only
    assert reduce_device("gloo", local_rank=1) == torch.device("cpu")
    assert DistContext(rank=0, world_size=2).reduce_device == torch.device("cpu")


def test_vicreg_is_float32_under_bf16_autocast() -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(32, 32, generator=g), torch.randn(32, 32, generator=g)
    ref, ref_parts = vicreg(z1, z2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        zc = z1 - z1.mean(0)
        assert (zc.T @ zc).dtype == torch.bfloat16  # what autocast does to a bare matmul
        assert covariance(zc).dtype == torch.float32
        loss, parts = vicreg(z1, z2)
    assert loss.dtype == torch.float32 and parts["covariance"].dtype == torch.float32
    assert torch.equal(loss, ref)  # bf16 covariance matmuls would differ at ~1e-3 relative
    assert torch.equal(parts["covariance"], ref_parts["covariance"])


class _StepSpy(Reporter):
    """Counts the host reads crossl_edge makes (float()/item()) between consecutive steps."""

    def __init__(self, counter: list[int]) -> None:
        self.counter, self.between, self.last = counter, [], None

    def step(self, phase: str, epoch: int, step: int, steps: int) -> None:
        if self.last is not None and self.last[0] == (phase, epoch):
            self.between.append(self.counter[0] - self.last[1])
        self.last = ((phase, epoch), self.counter[0])


def test_no_host_reads_between_training_steps(tmp_path: Path, monkeypatch) -> None:
    counter = [0]
    for name in ("item", "__float__"):
        orig = getattr(torch.Tensor, name)

        def spy(self, *a, _orig=orig):  # counts only reads made by crossl_edge code
            if sys._getframe(1).f_globals.get("__name__", "").startswith("crossl_edge"):
                counter[0] += 1
            return _orig(self, *a)

        monkeypatch.setattr(torch.Tensor, name, spy)
    spy_reporter = _StepSpy(counter)
    cfg = TrainConfig(mode="fine", encoder="edge", pretrain_epochs=1, epochs=1, batch_size=4,
                      device="cpu", seed=0)
    train_run(cfg, tmp_path / "r", reporter=spy_reporter)
    assert len(spy_reporter.between) == 14  # 2 phases x (8 steps - 1) gaps
    assert spy_reporter.between == [0] * 14
    assert counter[0] > 0  # the once-per-epoch reads were seen, so the spy works


def test_bf16_autocast_trains_on_the_cpu(tmp_path: Path) -> None:
    cfg = TrainConfig(mode="fine", encoder="edge", pretrain_epochs=2, epochs=2, device="cpu",
                      precision="bf16", seed=0)
    res = train_run(cfg, tmp_path / "bf16")
    for phase in ("pretrain", "downstream"):
        assert all(torch.isfinite(torch.tensor(e["train_loss"])) for e in res.history[phase])
    assert res.model.encoders["acc"].blocks[0].conv.weight.dtype == torch.float32


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU tool is present")
def test_gpu_check_refuses_in_one_sentence_without_a_gpu(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh"), str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no NVIDIA GPU is visible")
    assert not (tmp_path / "o").exists()
