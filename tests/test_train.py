"""Training: modes, resume after a crash equals an uninterrupted run, label fractions, run dirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from crossl_edge.errors import UsageError
from crossl_edge.rundir import read_run
from crossl_edge.train.config import TrainConfig
from crossl_edge.train.run import train_run
from crossl_edge.trained import load_model

FAST = {"pretrain_epochs": 3, "epochs": 3, "seed": 1, "device": "cpu", "encoder": "edge"}


class Crash(Exception):
    pass


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "model.pt", weights_only=False)["state_dict"]


@pytest.mark.parametrize("stop_at", [("pretrain", 1), ("downstream", 0)])
def test_resume_after_crash_matches_uninterrupted(tmp_path: Path, stop_at: tuple) -> None:
    cfg = TrainConfig(mode="fine", **FAST)
    full = train_run(cfg, tmp_path / "full")

    def crash(phase: str, epoch: int, logs: dict) -> None:
        if (phase, epoch) == stop_at:
            raise Crash

    with pytest.raises(Crash):
        train_run(cfg, tmp_path / "cut", callbacks=[crash])
    assert read_run(tmp_path / "cut", require_complete=False).status == "running"
    with pytest.raises(UsageError, match="unfinished run"):
        load_model(tmp_path / "cut")
    resumed = train_run(cfg, tmp_path / "cut", resume=True)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    def losses(h: dict) -> dict:
        return {p: [(e["epoch"], e["train_loss"], e["val_loss"]) for e in v] for p, v in h.items()}

    assert losses(resumed.history) == losses(full.history)
    assert not (tmp_path / "cut" / "checkpoint.pt").exists()


def test_resume_refuses_other_settings(tmp_path: Path) -> None:
    train_run(TrainConfig(mode="sup", **FAST), tmp_path / "r")
    with pytest.raises(UsageError, match="other settings"):
        train_run(TrainConfig(mode="fine", **FAST), tmp_path / "r", resume=True)
    with pytest.raises(UsageError, match="already exists"):
        train_run(TrainConfig(mode="sup", **FAST), tmp_path / "r")


@pytest.mark.parametrize("mode", ["ssl", "fine", "sup"])
def test_modes_write_complete_runs(tmp_path: Path, mode: str) -> None:
    res = train_run(TrainConfig(mode=mode, **FAST), tmp_path / mode)
    meta = json.loads((tmp_path / mode / "run.json").read_text())
    assert meta["status"] == "complete" and meta["train"]["mode"] == mode
    assert ("pretrain" in res.history) == (mode != "sup")
    assert len(res.metrics["subsets"]) == 3                       # acc+gyro, acc, gyro
    assert 0 <= res.metrics["all"]["macro_f1"] <= 1


@pytest.mark.parametrize("train_aggregator", [True, False])
def test_ssl_mode_freezes_the_encoders(tmp_path: Path, train_aggregator: bool) -> None:
    from crossl_edge.model.crossl import CroSSL, ModelConfig

    cfg = TrainConfig(mode="ssl", ssl_train_aggregator=train_aggregator, **FAST)
    res = train_run(cfg, tmp_path / "ssl")
    hist = res.history
    # re-create the pretrained model by running only pretraining: encoders must equal the final ones
    pre = train_run(TrainConfig(mode="ssl", **{**FAST, "epochs": 0}), tmp_path / "pre")
    assert "downstream" in hist
    final = res.model.state_dict()
    pretrained = pre.model.state_dict()
    enc_keys = [k for k in final if k.startswith("encoders.")]
    assert enc_keys and all(torch.equal(final[k], pretrained[k]) for k in enc_keys)
    agg_keys = [k for k in final if k.startswith("aggregator.")]
    same = [torch.equal(final[k], pretrained[k]) for k in agg_keys]
    assert all(same) if not train_aggregator else not all(same)
    assert isinstance(res.model, CroSSL) and isinstance(res.model.cfg, ModelConfig)


def test_label_fraction_uses_fewer_windows(tmp_path: Path) -> None:
    train_run(TrainConfig(mode="sup", label_fraction=0.25, **FAST), tmp_path / "few")
    meta = json.loads((tmp_path / "few" / "run.json").read_text())
    assert meta["labelled_windows"] == 8                          # 25% of 32, 2 per class


def test_bad_config_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown encoder"):
        TrainConfig(encoder="resnet")
    with pytest.raises(UsageError, match="label-fraction"):
        TrainConfig(label_fraction=0)


def test_shared_pretraining_gives_the_standalone_run(tmp_path: Path) -> None:
    alone = train_run(TrainConfig(mode="fine", **FAST), tmp_path / "alone")
    pre = train_run(TrainConfig(mode="ssl", **{**FAST, "epochs": 0}), tmp_path / "pre")
    shared = train_run(TrainConfig(mode="fine", **FAST), tmp_path / "shared",
                       pretrained=pre.model.state_dict())
    a, b = _weights(tmp_path / "alone"), _weights(tmp_path / "shared")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert shared.history["downstream"] == [
        {**e, "seconds": s["seconds"], "windows_per_s": s["windows_per_s"]}
        for e, s in zip(alone.history["downstream"], shared.history["downstream"], strict=True)
    ]
    assert "pretrain" not in shared.history
