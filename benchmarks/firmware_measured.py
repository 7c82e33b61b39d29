"""Measured Cortex-M4F figures of the `edge` and `crossl` encoders on the real TensorFlow Lite Micro
(reference and CMSIS-NN kernels) next to the old estimates, plus cold and warm build times.

`python -m benchmarks.firmware_measured [--edge B] [--crossl B]` writes
benchmarks/results/firmware_measured.{json,md}. Without a bundle it trains a tiny one (2+4 epochs
on BasicMotions, seed 0) and exports it: the figures concern the deployed graph, not accuracy.
The build cache is a fresh folder unless --cache is given, so the first build is cold.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, save
from crossl_edge.atomic import write_text

ENCODERS = ("edge", "crossl")


def tiny_bundle(encoder: str, root: Path) -> Path:
    """Train (2 pretrain + 4 fine-tune epochs, seed 0) and export a bundle with ``encoder``."""
    from crossl_edge.export.bundle import export_bundle
    from crossl_edge.train.config import TrainConfig
    from crossl_edge.train.run import train_run

    cfg = TrainConfig(encoder=encoder, mode="fine", pretrain_epochs=2, epochs=4, seed=0,
                      device="cpu")
    run = root / f"run-{encoder}"
    train_run(cfg, run)
    export_bundle(run, root / f"bundle-{encoder}")
    return root / f"bundle-{encoder}"


def _estimates(r: dict[str, Any]) -> dict[str, Any]:
    lat = r["latency_estimate"]["cortex-m4@120MHz"]
    return {"flash_total": r["flash"]["total"], "flash_code": r["flash"]["code"],
            "ram_total": r["ram"]["total"], "arena_reserved": r["arena"]["size"],
            "stack": r["ram"]["stack_estimate"],
            "cycles": {"cmsis_nn": lat["cmsis_nn_cycles"], "reference": lat["reference_cycles"]}}


def measure_encoder(bundle: Path, kernels: tuple[str, ...], tflm: str | None,
                    work: Path) -> dict[str, Any]:
    """Estimates, then a build with the current cache (timed), then the same again (warm)."""
    from crossl_edge.firmware_bridge.firmware import generate_firmware
    from crossl_edge.firmware_bridge.measure import BuildOptions

    est = generate_firmware(bundle, work / "estimate")
    runs, reps = [], []
    for label, windows in (("first", None), ("second", 2)):
        opts = BuildOptions(kernels=kernels, host=False, tflm=tflm, max_windows=windows)
        t0 = time.perf_counter()
        reps.append(generate_firmware(bundle, work / f"build-{label}", build=opts))
        runs.append({"run": label, "windows": windows or "all",
                     "wall_s": round(time.perf_counter() - t0, 1), "builds": reps[-1].builds})
    rep = reps[0]
    return {"bundle": str(bundle), "estimate": {n: _estimates(r)
                                                for n, r in est.modalities.items()},
            "measured": {n: r["measured"] for n, r in rep.modalities.items()},
            "ops": {n: r["ops"] for n, r in rep.modalities.items()}, "runs": runs}


def _k(v: float) -> str:
    return f"{v / 1024:.1f}"


def markdown(res: dict[str, Any]) -> str:
    lines = ["# Firmware figures measured on TensorFlow Lite Micro (Cortex-M4F, QEMU mps2-an386)",
             "", f"Command: `{res['command']}`. Conditions: {res['conditions']}.", "",
             "Flash and RAM in KiB (1024 B). Measured: link map of the node image (-Os, "
             "newlib-nano, --gc-sections; run harness excluded). Instructions per invoke: QEMU "
             "`-icount`, a lower bound on cycles; ms at 120 MHz derived from it is an estimate. "
             "Estimates: the pre-measurement model of `resources.py` (cycles, not instructions).",
             "", "| encoder | modality | kernels | flash measured (model / TFLM core / kernels / "
             "glue+node+codec / libc) | flash est. | RAM measured (static + node + stack) | "
             "RAM est. | arena used / reserved B | stack B (est.) | M instr/invoke | "
             "M cycles est. | ms@120MHz from instr. (est.) | windows byte-identical to LiteRT "
             "(max LSB) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for enc, r in res["encoders"].items():
        for name, runs in r["measured"].items():
            est = r["estimate"][name]
            for cfg, f in runs.items():
                k = cfg.split("/", 1)[1]
                fl, ram, ins = f["flash"], f["ram"], f["instructions"]
                parts = " / ".join(_k(fl[p]) for p in ("model", "tflm_core", "kernels",
                                                       "glue_node_codec", "libc"))
                lines.append(
                    f"| {enc} | {name} | {k} | **{_k(fl['total'])}** ({parts}) | "
                    f"{_k(est['flash_total'])} | **{_k(ram['total'])}** ({_k(ram['static'])} + "
                    f"{_k(ram['node_state'])} + {_k(ram['stack'])}) | {_k(est['ram_total'])} | "
                    f"{ram['arena_used']:,} / {ram['arena_size']:,} | {ram['stack']:,} "
                    f"({est['stack']:,}) | **{ins['per_invoke'] / 1e6:.2f}** | "
                    f"{est['cycles'][k] / 1e6:.2f} | "
                    f"{next(iter(f['ms_estimate'].values())):.1f} | "
                    f"{f['windows_identical']} of {f['windows']} "
                    f"({f['max_lsb_vs_litert']}) |")
    lines += ["", "## Build time of TFLite Micro (only the kernels each encoder uses)", "",
              "Cold: the build that filled the cache (from its build.json). Warm: a later "
              "`firmware --build` finding the libraries in the cache. Whole command: generate + "
              "build + link + run all windows (first) / 2 windows (second) for every modality "
              "and kernel set of the encoder.", "",
              "| encoder | config | cold build s | warm build s | whole command first / "
              "second s |", "|---|---|---|---|---|"]
    for enc, r in res["encoders"].items():
        first, second = r["runs"]
        for cfg in first["builds"]:
            a, b = first["builds"][cfg], second["builds"][cfg]
            lines.append(f"| {enc} | {cfg} | {a['cold_build_seconds']} | {b['seconds']} "
                         f"({'cached' if b['cached'] else 'NOT cached'}) | "
                         f"{first['wall_s']} / {second['wall_s']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edge", type=Path, help="bundle with the edge encoder (else trained)")
    ap.add_argument("--crossl", type=Path, help="bundle with the crossl encoder (else trained)")
    ap.add_argument("--kernels", default="reference,cmsis-nn")
    ap.add_argument("--tflm", default=None, help="TFLite Micro source folder or tarball")
    ap.add_argument("--cache", type=Path, default=None,
                    help="build cache (default: a fresh folder, so the first build is cold)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--note", default="", help="conditions to record (e.g. shared cores)")
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    from crossl_edge.firmware_bridge.measure import check_kernels

    kernels = check_kernels(args.kernels.split(","))
    with tempfile.TemporaryDirectory(prefix="fw-measured-") as d:
        work = Path(d)
        os.environ["CROSSL_CACHE"] = str(args.cache or work / "cache")
        res: dict[str, Any] = {
            "command": "python -m benchmarks.firmware_measured " + " ".join(argv),
            "conditions": f"{os.cpu_count()} cores, make -j2, cache "
                          f"{'given' if args.cache else 'fresh (cold first build)'}"
                          + (f"; {args.note}" if args.note else ""),
            "encoders": {}}
        for enc in ENCODERS:
            bundle = getattr(args, enc) or tiny_bundle(enc, work / "train")
            res["encoders"][enc] = measure_encoder(bundle, kernels, args.tflm, work / enc)
    save("firmware_measured", res, out=args.out)
    write_text(args.out / "firmware_measured.md", markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
