"""Static checks CI runs with the tests: ruff, the import-layer contracts, mypy, the layout links,
and that every verb's library function is importable as `crossl_edge.run_<verb>`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import crossl_edge

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    exe = BIN / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_check_passes() -> None:
    r = _run(_tool("ruff"), "check", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_import_layers_hold() -> None:
    r = _run(_tool("lint-imports"), "--no-cache")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


def test_mypy_passes() -> None:
    r = _run(_tool("mypy"))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("sub", ["export", "firmware_bridge"])
def test_top_level_folders_are_relative_links(sub: str) -> None:
    link = ROOT / "crossl_edge" / sub
    assert link.is_symlink() and os.readlink(link) == f"../{sub}"
    assert (link / "__init__.py").is_file()


@pytest.mark.parametrize("name", sorted(crossl_edge.VERB_FUNCTIONS))
def test_every_verb_function_resolves(name: str) -> None:
    assert callable(getattr(crossl_edge, name))
