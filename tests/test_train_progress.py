"""Defaults that scale (batch, epochs, lr schedule from the dataset size), progress lines without a
terminal, and the training presence masks of the frozen mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from crossl_edge.tables import format_duration
from crossl_edge.train.config import TrainConfig
from crossl_edge.train.loop import presence, random_subsets
from crossl_edge.train.progress import LineReporter
from crossl_edge.train.schedule import FLOOR, lr_factor, resolve

ROOT = Path(__file__).resolve().parent.parent


def test_small_sets_keep_the_official_settings() -> None:
    s = resolve(TrainConfig(), n_pretrain=32, n_labelled=32)
    for plan in (s.pretrain, s.downstream):
        assert (plan.batch_size, plan.epochs, plan.patience, plan.lr_schedule) == (
            8, 50, 5, "constant")
    assert lr_factor(s.pretrain, step=10, total_steps=200) == 1.0


def test_large_sets_get_a_bigger_batch_fewer_epochs_and_say_so() -> None:
    s = resolve(TrainConfig(), n_pretrain=5932, n_labelled=593)
    assert (s.pretrain.batch_size, s.pretrain.epochs, s.pretrain.lr_schedule) == (64, 7, "cosine")
    assert (s.downstream.batch_size, s.downstream.epochs) == (8, 50)  # 10% labels: a small set
    text = " ".join(s.chosen)
    assert "pretraining batch 64 for 5,932 windows" in text and "--batch-size" in text
    assert "--epochs" in text and "--lr-schedule" in text
    given = resolve(TrainConfig(batch_size=32, pretrain_epochs=4, epochs=5, lr_schedule="constant"),
                    n_pretrain=5932, n_labelled=5932)
    assert (given.pretrain.batch_size, given.pretrain.epochs, given.downstream.epochs) == (32, 4, 5)
    assert given.chosen == ()


def test_cosine_schedule_warms_up_then_decays_to_the_floor() -> None:
    plan = resolve(TrainConfig(), n_pretrain=5932, n_labelled=5932).pretrain
    total = plan.epochs * plan.steps_per_epoch()
    f = [lr_factor(plan, step=i, total_steps=total) for i in range(total)]
    w = plan.warmup_steps
    assert w == 50 and all(a < b for a, b in zip(f[:w], f[1 : w + 1], strict=True))
    assert f[w] == pytest.approx(1.0) and all(a >= b for a, b in zip(f[w:], f[w + 1 :],
                                                                      strict=False))
    assert f[-1] == pytest.approx(FLOOR, abs=1e-3)


def test_line_reporter_epoch_lines_eta_and_step_lines() -> None:
    now, lines = [0.0], []
    rep = LineReporter(lines.append, every=30, clock=lambda: now[0])
    rep.plan([("pretrain", 4), ("downstream", 2)], chosen=("batch 64 chosen",))
    for i in range(1, 101):
        now[0] += 1.0
        rep.step("pretrain", 0, i, 100)
    rep.epoch("pretrain", 0, {"train_loss": 1.5, "val_loss": 1.25, "windows_per_s": 1234.0,
                              "seconds": 100.0})
    assert lines[0] == "batch 64 chosen"
    assert lines[1:4] == [f"pretrain epoch 1: step {s}/100" for s in (30, 60, 90)]
    assert lines[4] == ("pretrain epoch 1/4: loss 1.5000 val 1.2500 | 1,234 windows/s | "
                        "ETA 8m20s at most")  # 3 + 2 epochs left at 100 s
    assert format_duration(3725) == "1h02m"


def test_random_subsets_cover_every_nonempty_subset() -> None:
    g = torch.Generator().manual_seed(0)
    p = random_subsets(4000, 3, gen=g)
    codes = (p * torch.tensor([1.0, 2.0, 4.0])).sum(1).long()
    counts = torch.bincount(codes, minlength=8)
    assert counts[0] == 0 and (counts[1:] > 450).all()  # uniform over 7 subsets (~571 each)
    mixed = presence(1000, 3, drop=0.1, subsets=0.5, gen=g, device=torch.device("cpu"))
    assert (mixed.sum(1) >= 1).all() and 0.2 < (mixed.sum(1) < 3).float().mean() < 0.6


@pytest.mark.slow
def test_cli_prints_a_line_per_epoch_without_a_terminal(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "crossl_edge.cli", "train", "--out", str(tmp_path / "r"),
         "--encoder", "edge", "--pretrain-epochs", "2", "--epochs", "2", "--mode", "fine"],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.splitlines()
    epochs = [ln for ln in out if " epoch " in ln and "windows/s" in ln]
    assert [ln.split(":")[0] for ln in epochs] == [
        "pretrain epoch 1/2", "pretrain epoch 2/2", "downstream epoch 1/2", "downstream epoch 2/2"]
    assert all("ETA" in ln for ln in epochs)
    assert any("batch 8 for 32 windows" in ln for ln in out)
    assert any(ln.startswith("run written to") for ln in out)


def test_frozen_mode_trains_its_cheap_downstream_longer() -> None:
    s = resolve(TrainConfig(mode="ssl"), n_pretrain=5932, n_labelled=5932)
    assert (s.pretrain.epochs, s.downstream.epochs, s.downstream.patience) == (7, 40, 5)
    assert resolve(TrainConfig(mode="ssl"), n_pretrain=32, n_labelled=32).downstream.epochs == 50
