"""Helpers for the install tests: a clean copy of the project's sources and fresh venvs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "crossl_edge", "export", "firmware_bridge")


def clean_copy(dest: Path) -> Path:
    """The sources a build reads, without build/, egg-info or caches from the checkout."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        s = ROOT / name
        if s.is_dir():
            shutil.copytree(s, dest / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            shutil.copy2(s, dest / name)
    return dest


def run(cmd: list[str], *, timeout: float, **kw) -> subprocess.CompletedProcess:
    """Run ``cmd`` and capture its text output (no shell)."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def fresh_venv(path: Path) -> Path:
    """A new venv at ``path`` made by the test's interpreter; returns its python."""
    p = run([sys.executable, "-m", "venv", str(path)], timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return path / "bin" / "python"


def clean_env() -> dict[str, str]:
    """The environment without PYTHONPATH, so a venv sees only what was installed into it."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def tree_bytes(path: Path) -> int:
    """Bytes in every file under ``path`` (links counted as links)."""
    return sum((Path(d) / f).lstat().st_size for d, _, fs in os.walk(path) for f in fs)
