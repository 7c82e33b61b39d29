"""libFuzzer runs of the C wire code: frame, beacon/hello and COBS decoders, round trips, time base.

`python -m benchmarks.fuzz [--seconds 180] [--target NAME ...] [--jobs 2]` builds each
tests/fuzz/fuzz_*.c with clang (-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all),
runs it from its corpus tests/fuzz/corpus/<target>/, merges new coverage into that corpus,
keeps every crash there as a regression input, and writes results/fuzz.json. tests/test_fuzz.py
runs each target for seconds with the same build.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FUZZ_DIR = ROOT / "tests" / "fuzz"
CORPUS = FUZZ_DIR / "corpus"
INCLUDE = ROOT / "crossl_edge" / "wire" / "c"
TARGETS = tuple(sorted(p.stem for p in FUZZ_DIR.glob("fuzz_*.c")))
FLAGS = ("-std=c99", "-g", "-O1", "-Wall", "-Wextra", "-Werror",
         "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all")
MAX_LEN = 4096


class FuzzUnavailable(RuntimeError):
    """clang or its libFuzzer runtime is missing: the reason says what to install."""


def build(target: str, out_dir: Path) -> Path:
    """Compile one target; FuzzUnavailable when clang cannot link a fuzzer here."""
    clang = shutil.which("clang")
    if clang is None:
        raise FuzzUnavailable("clang not on PATH (scripts/system-deps.sh installs it)")
    exe = out_dir / target
    run = subprocess.run([clang, *FLAGS, f"-I{INCLUDE}", f"-I{FUZZ_DIR}",
                          str(FUZZ_DIR / f"{target}.c"), "-o", str(exe)],
                         capture_output=True, text=True)
    if run.returncode != 0:
        if "fuzzer" in run.stderr and ("cannot find" in run.stderr or "not found" in run.stderr):
            raise FuzzUnavailable("clang has no libFuzzer runtime (install libclang-rt-14-dev)")
        raise RuntimeError(f"building {target} failed:\n{run.stderr[-3000:]}")
    return exe


def _keep_crashes(target: str, work: Path) -> list[str]:
    """Copy crash/leak/timeout artifacts into the target's corpus (regression inputs)."""
    kept = []
    for art in sorted(work.glob("*-*")):
        if art.name.split("-")[0] in ("crash", "leak", "timeout", "oom"):
            data = art.read_bytes()
            dest = CORPUS / target / f"regression-{hashlib.sha1(data).hexdigest()[:16]}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            kept.append(dest.name)
    return kept


def run(target: str, exe: Path, seconds: float, *, merge: bool = False) -> dict[str, Any]:
    """Fuzz for ``seconds`` from the repo corpus: inputs executed, findings, coverage."""
    corpus = CORPUS / target
    corpus.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work, new = Path(tmp), Path(tmp) / "new"
        new.mkdir()
        proc = subprocess.run([str(exe), f"-max_total_time={max(1, round(seconds))}",
                               f"-max_len={MAX_LEN}", "-print_final_stats=1",
                               f"-artifact_prefix={work}/", str(new), str(corpus)],
                              capture_output=True, text=True, errors="replace")
        stats = dict(re.findall(r"stat::(\w+):\s*(\d+)", proc.stderr))
        crashes = _keep_crashes(target, work)
        if merge and proc.returncode == 0:
            subprocess.run([str(exe), "-merge=1", f"-max_len={MAX_LEN}", str(corpus), str(new)],
                           capture_output=True, text=True)
    cov = re.findall(r"cov: (\d+)", proc.stderr)
    return {"target": target, "seconds": seconds, "returncode": proc.returncode,
            "inputs": int(stats.get("number_of_executed_units", 0)),
            "exec_per_s": int(stats.get("average_exec_per_sec", 0)),
            "coverage": int(cov[-1]) if cov else 0, "corpus_files": len(list(corpus.iterdir())),
            "findings": len(crashes) + (proc.returncode != 0 and not crashes),
            "regression_inputs": crashes,
            "log_tail": proc.stderr[-2000:] if proc.returncode else ""}


def fuzz_all(targets: tuple[str, ...], seconds: float, *, jobs: int = 2,
             merge: bool = True) -> list[dict[str, Any]]:
    """Build and run every target, ``jobs`` at a time."""
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(jobs) as pool:
        exes = list(pool.map(lambda t: build(t, Path(tmp)), targets))
        return list(pool.map(lambda te: run(te[0], te[1], seconds, merge=merge),
                             zip(targets, exes, strict=True)))


def clang_version() -> str:
    out = subprocess.run(["clang", "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.stdout else ""


def main(argv: list[str] | None = None) -> int:
    from benchmarks.common import save

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=180.0, help="per target")
    ap.add_argument("--target", action="append", choices=TARGETS, help="repeatable; default all")
    ap.add_argument("--jobs", type=int, default=2, help="targets fuzzed at once")
    ap.add_argument("--no-merge", action="store_true", help="leave the repo corpus as it is")
    args = ap.parse_args(argv)
    targets = tuple(args.target or TARGETS)
    try:
        rows = fuzz_all(targets, args.seconds, jobs=args.jobs, merge=not args.no_merge)
    except FuzzUnavailable as e:
        print(f"cannot fuzz: {e}")
        return 1
    total = sum(r["inputs"] for r in rows)
    findings = sum(r["findings"] for r in rows)
    path = save("fuzz", {"clang": clang_version(), "flags": list(FLAGS), "max_len": MAX_LEN,
                         "jobs": args.jobs, "seconds_per_target": args.seconds,
                         "total_inputs": total, "total_findings": findings, "targets": rows})
    for r in rows:
        print(f"{r['target']:22s} {r['inputs']:>12,d} inputs  {r['findings']} findings  "
              f"cov {r['coverage']}")
    print(f"total {total:,d} inputs, {findings} findings -> {path}")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
