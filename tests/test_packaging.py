"""The wheel: one top-level package (`crossl_edge`) carrying export/, firmware_bridge/ and their
data; extras that resolve as named (runtime extras torch/TensorFlow-free, `[all]` with TFLite
Micro without --pre); and a fresh venv that imports the installed sub-packages.
"""

from __future__ import annotations

import json
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from install_helpers import ROOT, clean_copy, clean_env, fresh_venv, run
from packaging.requirements import Requirement
from packaging.version import Version

HEAVY = {"torch", "tensorflow", "tensorflow-cpu", "keras", "onnx", "onnxscript", "tflite"}
RUNTIME_EXTRAS = ("litert", "onnx-runtime", "serial", "runtime", "tflite-runtime")
# (sys_platform, platform_machine) of the machines the README names.
PLATFORMS = (("linux", "x86_64"), ("linux", "aarch64"), ("linux", "armv7l"), ("darwin", "arm64"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel --no-deps` of a clean copy of the sources (setuptools from this venv)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = clean_copy(tmp / "src")
    p = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
             "--quiet", "-w", str(tmp / "dist"), str(src)], timeout=600, env=clean_env())
    assert p.returncode == 0, p.stderr[-2000:]
    (whl,) = (tmp / "dist").glob("crossl_edge-*.whl")
    return whl


def _names(whl: Path) -> set[str]:
    with zipfile.ZipFile(whl) as z:
        return set(z.namelist())


def _metadata(whl: Path) -> list[str]:
    with zipfile.ZipFile(whl) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(z.read(meta).decode()).get_all("Requires-Dist") or []


def _resolve(reqs: list[Requirement], extra: str, env: dict[str, str],
             seen: set[str] | None = None) -> set[str]:
    """Distribution names (lower-case) that ``crossl-edge[extra]`` pulls in on ``env``."""
    seen = set() if seen is None else seen
    if extra in seen:
        return set()
    seen.add(extra)
    out: set[str] = set()
    for r in reqs:
        if r.marker is not None and not r.marker.evaluate({**env, "extra": extra}):
            continue
        if r.name == "crossl-edge":
            for sub in r.extras:
                out |= _resolve(reqs, sub, env, seen)
        else:
            out.add(r.name.lower())
    return out


def _env(system: str, machine: str) -> dict[str, str]:
    return {"sys_platform": system, "platform_machine": machine, "platform_system":
            {"linux": "Linux", "darwin": "Darwin"}[system], "python_version": "3.11",
            "python_full_version": "3.11.7", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "os_name": "posix"}


def test_wheel_has_one_top_level_package(wheel: Path) -> None:
    names = _names(wheel)
    tops = {n.split("/")[0] for n in names}
    info = next(t for t in tops if t.endswith(".dist-info"))
    assert tops == {"crossl_edge", info}, tops
    with zipfile.ZipFile(wheel) as z:
        assert z.read(f"{info}/top_level.txt").decode().split() == ["crossl_edge"]
        entry = z.read(f"{info}/entry_points.txt").decode()
    assert "crossl-edge = crossl_edge.cli:main" in entry


def _shipped_sources() -> dict[str, Path]:
    """Wheel path -> checkout file for every .py, .md, C header and header template they hold
    (export/ and firmware_bridge/ land inside crossl_edge/, as the package-dir mapping says)."""
    out = {}
    for folder, prefix in (("crossl_edge", "crossl_edge"), ("export", "crossl_edge/export"),
                           ("firmware_bridge", "crossl_edge/firmware_bridge")):
        for pat in ("**/*.py", "**/*.md", "**/c/*.h", "**/c/*.h.in"):
            for f in (ROOT / folder).glob(pat):
                if "__pycache__" not in f.parts:
                    out[f"{prefix}/{f.relative_to(ROOT / folder).as_posix()}"] = f
    return out


def test_wheel_carries_subpackages_and_data(wheel: Path) -> None:
    names = _names(wheel)
    want = _shipped_sources()
    assert any(k.startswith("crossl_edge/export/") for k in want)
    assert any(k.startswith("crossl_edge/firmware_bridge/") for k in want)
    assert any(k.endswith(".h") for k in want) and any(k.endswith(".md") for k in want)
    assert set(want) <= names, sorted(set(want) - names)
    # the _layout finder is for checkouts only: a wheel has the folders inside the package
    assert not any(n.startswith(("export/", "firmware_bridge/", "tests/")) for n in names)


def test_runtime_extras_stay_torch_and_tensorflow_free(wheel: Path) -> None:
    reqs = [Requirement(r) for r in _metadata(wheel)]
    for system, machine in PLATFORMS:
        env = _env(system, machine)
        assert _resolve(reqs, "", env) == {"numpy", "click"}
        for extra in RUNTIME_EXTRAS:
            pulled = _resolve(reqs, extra, env)
            assert pulled and not pulled & HEAVY, (extra, machine, pulled)
        assert {"torch", "onnx", "ai-edge-litert", "onnxruntime", "sktime"} <= _resolve(
            reqs, "all", env)


def test_all_extra_carries_tflite_micro_where_it_exists(wheel: Path) -> None:
    reqs = [Requirement(r) for r in _metadata(wheel)]
    assert "tflite-micro" in _resolve(reqs, "all", _env("linux", "x86_64"))
    for system, machine in PLATFORMS[1:]:  # no wheels there: the marker keeps [all] installable
        assert "tflite-micro" not in _resolve(reqs, "all", _env(system, machine))
    (tflm,) = (r for r in reqs if r.name == "tflite-micro")
    # tflite-micro publishes dev builds only; a specifier naming a pre-release admits them
    # without --pre (PEP 440), which is how `pip install '.[all]'` gets it.
    assert tflm.specifier.contains(Version("0.dev20261023182759"))
    assert tflm.specifier.prereleases


@pytest.mark.slow
def test_fresh_venv_imports_the_wheel(wheel: Path, tmp_path: Path) -> None:
    py = fresh_venv(tmp_path / "venv")
    env = clean_env()
    p = run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
            timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    p = run([str(py), "-m", "pip", "install", "--quiet", "numpy>=1.23", "click>=8.1"],
            timeout=600, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    header = next(k for k in _shipped_sources() if k.endswith(".h")).removeprefix("crossl_edge/")
    probe = (
        "import json, importlib.resources as r, importlib.util as u, crossl_edge, "
        "crossl_edge.export, crossl_edge.firmware_bridge\n"
        f"h = r.files('crossl_edge').joinpath({header!r}).read_text()\n"
        "print(json.dumps({'export': crossl_edge.export.__file__, "
        "'fb': crossl_edge.firmware_bridge.__file__, 'header': '#' in h, "
        "'export_top': u.find_spec('export') is None}))"
    )
    p = run([str(py), "-c", probe], timeout=120, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    got = json.loads(p.stdout)
    site = str(tmp_path / "venv")
    assert got["export"].startswith(site)
    assert got["export"].endswith("crossl_edge/export/__init__.py")
    assert got["fb"].startswith(site) and "crossl_edge/firmware_bridge" in got["fb"]
    assert got["header"] and got["export_top"], got
    v = run([str(tmp_path / "venv" / "bin" / "crossl-edge"), "--version"], timeout=120, env=env,
            cwd=tmp_path)
    assert v.returncode == 0 and "0.1.0" in v.stdout, v.stderr[-2000:]
