"""Shared fixtures: tiny seeded runs on BasicMotions (both encoders) and their exported bundles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _tiny_run(root: Path, encoder: str) -> Path:
    from crossl_edge.train.config import TrainConfig
    from crossl_edge.train.run import train_run

    out = root / f"run-{encoder}"
    cfg = TrainConfig(encoder=encoder, mode="fine", pretrain_epochs=2, epochs=4, seed=0,
                      device="cpu")
    train_run(cfg, out)
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run directory (faithful `crossl` encoder), trained for a few epochs."""
    return _tiny_run(tmp_path_factory.mktemp("runs"), "crossl")


@pytest.fixture(scope="session")
def tiny_edge_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run directory with the int8-friendly `edge` encoder."""
    return _tiny_run(tmp_path_factory.mktemp("runs"), "edge")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_edge_run: Path) -> Path:
    """The exported bundle of the tiny edge run (all formats, verified on write)."""
    from crossl_edge.export.bundle import export_bundle

    out = tmp_path_factory.mktemp("bundles") / "bundle-edge"
    export_bundle(tiny_edge_run, out)
    return out
