"""Shared benchmark helpers: environment record and result writing."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from crossl_edge.atomic import write_json
from crossl_edge.bench.report import cpu_model
from crossl_edge.runtime.backends import dist_version

RESULTS = Path(__file__).parent / "results"


def environment() -> dict[str, Any]:
    """What a reader needs to reproduce a figure: CPU, cores, OS, Python, package versions."""
    found = {name: dist_version(name, default="") for name in (
        "torch",
        "tensorflow-cpu",
        "tensorflow",
        "onnxruntime",
        "ai-edge-litert",
        "tflite-runtime",
        "tflite-micro",
        "numpy",
        "crossl-edge",
    )}
    pkgs = {name: version for name, version in found.items() if version}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": pkgs,
        "commit": commit,
    }


def save(name: str, result: dict[str, Any], *, out: Path | None = None) -> Path:
    path = (out or RESULTS) / f"{name}.json"
    write_json(path, {"environment": environment(), **result})
    return path
