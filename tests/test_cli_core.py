"""CLI for train/evaluate: one-line errors with exit code 2, no half-written run directories."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crossl_edge.data.npz import save_npz
from crossl_edge.data.windows import ModalitySpec, Windows


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crossl_edge.cli", *args], capture_output=True,
                          text=True, timeout=300)


def _windows(n: int, *, nan: bool = False) -> Windows:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3, 32)).astype(np.float32)
    if nan:
        x[1, 0, 5] = np.nan
    return Windows((ModalitySpec("acc", ("x", "y", "z"), 50.0),), {"acc": x},
                   np.arange(n) % 2, np.array(["s"] * n), ("a", "b"))


def test_help_lists_every_verb_with_an_example() -> None:
    out = cli("--help").stdout
    for verb in ("train", "evaluate", "demo"):
        assert verb in out
    assert "Example" in cli("train", "--help").stdout


@pytest.mark.parametrize("args, message", [
    (["--dataset", "nope"], "unknown dataset"),
    (["--dataset", "pamap2"], "pass --data PATH"),
    (["--encoder", "transformer"], "unknown encoder"),
    (["--modalities", "acc,ecg"], "unknown modality"),
    (["--dataset", "pamap2", "--data", "/does/not/exist"], "/does/not/exist"),
    (["--dataset", "pamap2", "--data", "{tmp}", "--data-option", "window=99999"], "error:"),
])
def test_bad_train_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, args: list[str],
                                                                message: str) -> None:
    out = tmp_path / "run"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = cli("train", "--out", str(out), "--epochs", "1", "--pretrain-epochs", "1", *args)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_nan_in_data_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    np.savez(data / "train.npz", x_acc=np.full((4, 3, 8), np.nan, np.float32), y=[0, 1, 0, 1])
    np.savez(data / "test.npz", x_acc=np.zeros((4, 3, 8), np.float32), y=[0, 1, 0, 1])
    proc = cli("train", "--out", str(tmp_path / "run"), "--dataset", "npz", "--data", str(data))
    assert proc.returncode == 2 and "NaN" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_train_and_evaluate_on_own_npz_data(tmp_path: Path) -> None:
    save_npz(_windows(24), _windows(8), tmp_path / "d")
    run = tmp_path / "run"
    proc = cli("train", "--out", str(run), "--dataset", "npz", "--data", str(tmp_path / "d"),
               "--encoder", "edge", "--epochs", "2", "--pretrain-epochs", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"macro_f1"' in proc.stdout
    ev = cli("evaluate", str(run))
    assert ev.returncode == 0 and "acc" in ev.stdout and "macro-F1" in ev.stdout
    bad = cli("evaluate", str(tmp_path / "missing"))
    assert bad.returncode == 2 and bad.stderr.startswith("error:")
