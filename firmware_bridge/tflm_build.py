"""Find the TensorFlow Lite Micro source, and build (or reuse from the cache) its libraries for one
target and kernel set with the generated crossl.mk: only the kernels the bundle's models use.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from crossl_edge.errors import CheckFailed, UsageError
from crossl_edge.firmware_bridge import tflm_sources as ts
from crossl_edge.firmware_bridge.buildfile import LIB_CORE, LIB_KERNELS

log = logging.getLogger(__name__)

ENV_SOURCE = "CROSSL_TFLM_SRC"
ENV_CACHE = "CROSSL_CACHE"
TARBALL_GLOB = "tflite-micro-*.tar.gz"
MARKER = "tensorflow/lite/micro/micro_interpreter.h"
FETCH_SCRIPT = "scripts/fetch-tflm.sh"


def cache_root() -> Path:
    """``$CROSSL_CACHE`` or ~/.cache/crossl-edge."""
    env = os.environ.get(ENV_CACHE)
    return Path(env) if env else Path.home() / ".cache" / "crossl-edge"


def locate_source(explicit: str | Path | None = None) -> Path:
    """The TFLM source folder or tarball the user named: ``explicit`` (--tflm), else
    $CROSSL_TFLM_SRC. Nowhere else is searched."""
    for given, what in ((explicit, "--tflm"), (os.environ.get(ENV_SOURCE), ENV_SOURCE)):
        if given:
            p = Path(given).expanduser()
            if not p.exists():
                raise UsageError(f"{what} {p} does not exist; pass a TFLite Micro source folder "
                                 f"or tarball (bash {FETCH_SCRIPT} fetches one).")
            return p.resolve()
    raise UsageError(f"no TFLite Micro source given: pass --tflm PATH or set {ENV_SOURCE} to a "
                     f"{TARBALL_GLOB} tarball or source folder (`bash {FETCH_SCRIPT} DIR` fetches "
                     "one; needs git and network).")


def _hash_tree(root: Path) -> str:
    h = hashlib.sha256()
    for sub in ("tensorflow", ts.DOWNLOADS):
        for f in sorted((root / sub).rglob("*")):
            if f.is_file() and f.suffix in {".h", ".cc", ".c", ".hpp"}:
                h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def source_hash(src: Path) -> str:
    """sha256 of a tarball's bytes, or of a source tree's C/C++ files."""
    if src.is_file():
        h = hashlib.sha256()
        with src.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    return _hash_tree(src)


def _tree_root(d: Path) -> Path | None:
    for cand in (d, *sorted(p for p in d.iterdir() if p.is_dir())):
        if (cand / MARKER).is_file():
            return cand
    return None


def source_tree(src: Path, digest: str) -> Path:
    """The TFLM root folder: ``src`` itself, or the tarball unpacked once into the cache."""
    if src.is_dir():
        root = _tree_root(src)
        if root is None:
            raise UsageError(f"{src} is not a TFLite Micro source tree (no {MARKER}); pass the "
                             f"folder {FETCH_SCRIPT} made.")
        return root
    dest = cache_root() / "tflm" / f"src-{digest[:16]}"
    unpack_once(src, dest, what="a TFLite Micro tarball or source folder")
    root = _tree_root(dest)
    if root is None:
        raise UsageError(f"{src} holds no TFLite Micro tree (no {MARKER}).")
    return root


def unpack_once(src: Path, dest: Path, *, what: str) -> None:
    """Unpack tarball ``src`` into ``dest`` unless it is there: into a temp folder renamed into
    place, so a crash or a concurrent process never leaves a half tree; ``what`` names what the
    user should pass instead when ``src`` cannot be unpacked."""
    if dest.is_dir():
        return
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(src) as tar:
            tar.extractall(tmp, filter="data")
    except (tarfile.TarError, OSError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UsageError(f"cannot unpack {src} ({e}); pass {what}.") from e
    try:
        tmp.rename(dest)
    except OSError:  # another process unpacked it first
        shutil.rmtree(tmp, ignore_errors=True)


def toolchain_available(target: str) -> str | None:
    """None when the target's compilers, ar and make are on PATH, else what is missing."""
    tc = ts.TOOLCHAINS[target]
    tools = [tc.cc, tc.cxx, tc.cc[: -len("gcc")] + "ar", "make"]
    if target == "cortex-m4":
        tools.append("qemu-system-arm")
    missing = [t for t in tools if shutil.which(t) is None]
    return ", ".join(missing) if missing else None


@dataclass(frozen=True)
class TflmLibs:
    """Built (or cached) TFLM libraries for one target and kernel set."""

    target: str
    kernels: str
    root: Path      # the TFLM source tree
    lib_dir: Path   # holds libtflm_core.a and libtflm_kernels.a
    key: str
    cached: bool
    seconds: float        # this call: the build, or the cache lookup
    built_seconds: float  # how long the (cold) build of these libraries took


def _compiler_version(target: str) -> str:
    cxx = ts.TOOLCHAINS[target].cxx
    out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else cxx


def build_key(digest: str, target: str, kernels: str, ops: list[str]) -> str:
    """Cache key: source hash, target, kernel set, flags, op list, compiler."""
    doc = {"source": digest, "target": target, "kernels": kernels,
           "flags": ts.flags(target, kernels), "ops": sorted(ops),
           "core": list(ts.CORE_SOURCES), "kernel_files": ts.kernel_sources(ops, kernels),
           "compiler": _compiler_version(target)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:20]


def make_vars(root: Path, target: str, kernels: str, build: Path, tflm_build: Path) -> list[str]:
    return [f"TFLM_ROOT={root}", f"CROSSL_TARGET={target}", f"CROSSL_KERNELS={kernels}",
            f"CROSSL_BUILD={build}", f"CROSSL_TFLM_BUILD={tflm_build}"]


def run_make(mk: Path, args: list[str], *, jobs: int, what: str) -> None:
    cmd = ["make", "--no-print-directory", "-f", str(mk), f"-j{jobs}", *args]
    log.info("%s", " ".join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        err = [ln for ln in (p.stderr or p.stdout).splitlines() if "error" in ln.lower()]
        first = (err or (p.stderr or p.stdout).splitlines() or ["(no output)"])[0]
        raise CheckFailed(f"building {what} failed: {first.strip()[:300]}")


def build_tflm(mk: Path, *, source: Path, target: str, kernels: str, ops: list[str],
               jobs: int = 2) -> TflmLibs:
    """Build TFLM's two libraries with ``mk`` (crossl.mk) into the cache, or reuse them."""
    ts.check_choice(target, kernels)
    missing = toolchain_available(target)
    if missing:
        raise UsageError(f"building for {target} needs {missing} on PATH; install them "
                         "(bash scripts/system-deps.sh).")
    digest = source_hash(source)
    root = source_tree(source, digest)
    key = build_key(digest, target, kernels, ops)
    lib_dir = cache_root() / "tflm" / f"{target}-{kernels}-{key}"
    t0 = time.perf_counter()
    if (lib_dir / "build.json").is_file():
        built = float(json.loads((lib_dir / "build.json").read_text()).get("seconds", 0.0))
        return TflmLibs(target, kernels, root, lib_dir, key, True, time.perf_counter() - t0,
                        built)
    tmp = lib_dir.with_name(f"{lib_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    run_make(mk, [*make_vars(root, target, kernels, tmp / "app", tmp), "crossl-tflm"],
             jobs=jobs, what=f"TFLite Micro for {target} ({kernels} kernels)")
    shutil.rmtree(tmp / "obj", ignore_errors=True)
    shutil.rmtree(tmp / "cmsis_nn", ignore_errors=True)
    seconds = time.perf_counter() - t0
    (tmp / "build.json").write_text(json.dumps(
        {"target": target, "kernels": kernels, "ops": sorted(ops), "source_sha256": digest,
         "flags": ts.flags(target, kernels), "seconds": round(seconds, 1),
         "libs": [LIB_CORE, LIB_KERNELS]}, indent=2) + "\n")
    try:
        tmp.rename(lib_dir)
    except OSError:  # built concurrently by another process: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return TflmLibs(target, kernels, root, lib_dir, key, False, seconds, seconds)
