"""The runtime on the installs users really have (issue 12): no dataset package, ONNX Runtime as
the only runtime, tflite-runtime built for numpy 1 next to numpy 2. Each runs the real CLI in a
subprocess where the absent packages are made unimportable (``sys.modules[name] = None``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WHEELS = Path(os.environ.get("CROSSL_CACHE", Path.home() / ".cache" / "crossl-edge")) / "wheels"


def _cli(args: list[str], *, absent: tuple[str, ...] = (), path: tuple[str, ...] = (),
         timeout: float = 300) -> subprocess.CompletedProcess:
    code = ("import sys\n"
            f"sys.path[:0] = {list(path)!r}\n"
            f"for name in {list(absent)!r}:\n"
            "    sys.modules[name] = None\n"
            "from crossl_edge.cli import main\n"
            f"main({args!r})\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def test_simulate_falls_back_to_samples_without_the_dataset_package(tiny_bundle: Path) -> None:
    r = _cli(["simulate", str(tiny_bundle), "--loss", "0", "--json"], absent=("sktime", "aeon"))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    assert res["settings"]["data"].startswith("bundle samples.npz")
    assert "sktime" in res["settings"]["data"]          # and it says why
    assert res["loss_table"][0]["coverage"] == 1.0 and res["windows"] > 0


def test_simulate_with_onnx_runtime_as_the_only_runtime(tiny_bundle: Path) -> None:
    absent = ("ai_edge_litert", "tflite_runtime", "tensorflow")
    for extra in ([], ["--backend", "onnx"]):
        r = _cli(["simulate", str(tiny_bundle), "--loss", "0", "--json", *extra], absent=absent)
        assert r.returncode == 0, r.stderr[-2000:]
        res = json.loads(r.stdout)
        assert res["settings"]["node_encoder"] == ["onnx_int8"]
        row = res["loss_table"][0]
        assert row["coverage"] == 1.0 and row["offline_agreement"] == 1.0


@pytest.fixture(scope="module")
def tflite_runtime_numpy1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tflite-runtime 2.14 (built against numpy 1), unpacked beside this venv's numpy 2."""
    import numpy as np

    if int(np.__version__.split(".")[0]) < 2:
        pytest.skip("this venv has numpy < 2: tflite-runtime works here")
    WHEELS.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    wheel = sorted(WHEELS.glob("tflite_runtime-2.14.0-*.whl"))
    if not wheel:
        got = subprocess.run([*pip, "download", "--quiet", "--no-deps", "tflite-runtime==2.14.0",
                              "-d", str(WHEELS)], capture_output=True, text=True, timeout=300)
        wheel = sorted(WHEELS.glob("tflite_runtime-2.14.0-*.whl"))
        if got.returncode != 0 or not wheel:
            pytest.skip(f"cannot fetch tflite-runtime 2.14.0 (no index?): {got.stderr[-300:]}")
    target = tmp_path_factory.mktemp("tflite-runtime")
    subprocess.run([*pip, "install", "--quiet", "--no-deps", "--target", str(target),
                    str(wheel[-1])], check=True, capture_output=True, timeout=300)
    return target


def test_broken_tflite_runtime_is_one_line_error(tiny_bundle: Path,
                                                 tflite_runtime_numpy1: Path) -> None:
    only_broken = ("ai_edge_litert", "tensorflow")
    path = (str(tflite_runtime_numpy1),)
    r = _cli(["bench", str(tiny_bundle), "--quick", "--runtime", "tflite_runtime", "--json"],
             absent=only_broken, path=path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and lines[-1].startswith("error: "), r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "numpy" in lines[-1] and "tflite-runtime" in lines[-1]
    r = _cli(["simulate", str(tiny_bundle), "--loss", "0", "--backend", "tflite", "--json"],
             absent=only_broken, path=path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.stderr.strip().splitlines()[-1].startswith("error: tflite-runtime 2.14.0 is ")
    # with a working LiteRT next to it, the broken one is skipped, not fatal
    r = _cli(["bench", str(tiny_bundle), "--quick", "--runtime", "litert", "--json"], path=path)
    assert r.returncode == 0, r.stderr[-3000:]
