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


@pytest.fixture
def cli_run(capsys: pytest.CaptureFixture):  # -> Callable[..., tuple[int, str, str]]
    """Run `crossl-edge ARGS` in-process; returns (exit code, stdout, stderr)."""
    from crossl_edge.cli import main

    def run(*args: object) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as e:
            main([str(a) for a in args])
        cap = capsys.readouterr()
        return int(e.value.code or 0), cap.out, cap.err

    return run


@pytest.fixture
def cli_error(cli_run):  # -> Callable[..., tuple[int, str]]
    """Run the CLI and assert it failed with exactly one `error:` line, the last one, and no
    traceback (progress lines a verb prints on stderr before it may precede it); returns
    (exit code, that line)."""

    def run(*args: object) -> tuple[int, str]:
        code, _, err = cli_run(*args)
        lines = [x for x in err.splitlines() if x.strip() and not x.startswith(("INFO", "  "))]
        errors = [x for x in lines if x.startswith("error: ")]
        assert code in (1, 2), (code, err)
        assert "Traceback" not in err and len(errors) == 1 and lines[-1] == errors[0], err
        return code, errors[0]

    return run


@pytest.fixture
def bundle_copy(tiny_bundle: Path, tmp_path: Path):  # -> Callable[[str], Path]
    """A fresh copy of the tiny bundle under tmp_path (safe to edit or to point --out at)."""
    import shutil

    def make(name: str = "bundle") -> Path:
        return Path(shutil.copytree(tiny_bundle, tmp_path / name))

    return make
