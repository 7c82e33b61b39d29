"""Where the cycles go and what a window costs: instructions per op on the emulated Cortex-M4F (both
kernel sets) and energy per window (estimate) of encode + send vs raw streaming on every profile.

`python -m benchmarks.energy --bundle NAME=PATH [--bundle ...] [--hop N]` runs `firmware --build`
(TFLite Micro, QEMU mps2-an386 -icount) on each bundle and writes
benchmarks/results/energy.{json,md}. The figures concern the deployed graph; accuracy is not
measured here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, save
from crossl_edge.atomic import write_text


def measure_bundle(bundle: Path, *, kernels: tuple[str, ...], hop: int | None,
                   max_windows: int | None, work: Path) -> dict[str, Any]:
    """`firmware --build` on ``bundle``: per-op profile and energy per modality."""
    from crossl_edge.firmware_bridge.firmware import generate_firmware
    from crossl_edge.firmware_bridge.measure import BuildOptions

    t0 = time.perf_counter()
    rep = generate_firmware(bundle, work / "fw", hop=hop, build=BuildOptions(
        kernels=kernels, host=False, max_windows=max_windows))
    out: dict[str, Any] = {"bundle": str(bundle), "wall_s": round(time.perf_counter() - t0, 1),
                           "builds": rep.builds, "modalities": {}}
    for name, r in rep.modalities.items():
        m4 = {cfg.split("/", 1)[1]: f for cfg, f in r["measured"].items()
              if cfg.startswith("cortex-m4/")}
        out["modalities"][name] = {
            "macs": r["macs"], "ops": r["ops"],
            "instructions": {k: f["instructions"] for k, f in m4.items()},
            "per_op": {k: f.get("per_op") for k, f in m4.items()},
            "energy": r["energy"]}
    out["table"] = rep.table()
    return out


def _op_rows(name: str, enc: str, r: dict[str, Any]) -> list[str]:
    kernels = sorted(k for k, v in r["per_op"].items() if v)
    if not kernels:
        return []
    lines = [f"### `{enc}` encoder, modality `{name}`: instructions per op", "",
             "| # | op | MACs | " + " | ".join(f"{k} instr (%)" for k in kernels) + " |",
             "|---|---|---|" + "---|" * len(kernels)]
    for i, op in enumerate(r["per_op"][kernels[0]]["ops"]):
        cells = []
        for k in kernels:
            p = r["per_op"][k]
            n = p["ops"][i]["instructions"]
            cells.append(f"{n:,} ({100 * n / max(1, p['profiled_invoke']):.1f})")
        lines.append(f"| {i} | {op['op']} | {op['macs']:,} | " + " | ".join(cells) + " |")
    lines.append("| | **invoke** | " + f"{r['macs']:,} | " + " | ".join(
        f"**{r['per_op'][k]['profiled_invoke']:,}**" for k in kernels) + " |")
    return [*lines, ""]


def _energy_rows(name: str, enc: str, r: dict[str, Any]) -> list[str]:
    en = r["energy"]
    lines = []
    for node, per in en["profiles"].items():
        for k, e in per.items():
            lines.append(
                f"| {enc} | {name} | {k} | {node} | {e['encode']['cycles'] / 1e6:.2f} | "
                f"{e['encode']['energy_uj'] / 1e3:.3f} | {e['send_frame']['energy_uj'] / 1e3:.3f}"
                f" ({e['send_frame']['bytes']} B) | **{e['encode_and_send_uj'] / 1e3:.3f}** | "
                f"{e['stream_raw']['energy_uj'] / 1e3:.3f} ({e['stream_raw']['bytes']} B) | "
                f"**{e['ratio_encode_vs_raw']:.2f}** | {e['break_even_cycles'] / 1e6:.2f} | "
                f"{100 * e['cpu_duty_cycle']:.2f}% | "
                f"{e['battery_days']['encode_and_send']:g} / {e['battery_days']['stream_raw']:g}"
                " |")
    return lines


def markdown(res: dict[str, Any]) -> str:
    lines = ["# Energy per window and instructions per op (Cortex-M4F on QEMU mps2-an386)", "",
             f"Command: `{res['command']}`. {res['note']}", "",
             "Instructions: QEMU `-icount` (a lower bound on cycles), one profiled invoke on the "
             "last sample window; per op = SysTick around each kernel's `Invoke()` (the rest of "
             "the invoke is the interpreter's loop). Energy: **estimates** from "
             "`firmware_bridge/profiles/*.json` (datasheet currents with their sources), "
             "cycles = instructions per window x the profile's cycles per instruction; raw = "
             "int16 per axis per hop; see `energy_assumptions` in the JSON.", ""]
    for enc, r in res["encoders"].items():
        for name, mod in r["modalities"].items():
            lines += _op_rows(name, enc, mod)
            break  # modalities of one bundle share the graph; the JSON has them all
    hops = {f"{e['hop']['samples']} samples = {e['hop']['seconds']:g} s ({e['hop']['source']})"
            for r in res["encoders"].values() for m in r["modalities"].values()
            for e in [m["energy"]]}
    lines += ["## Energy per window (estimate), per hop: " + "; ".join(sorted(hops)), "",
              "| encoder | modality | kernels | node | M cycles | encode mJ | send mJ | "
              "encode + send mJ | raw stream mJ | ratio | break-even M cycles | CPU duty | "
              "battery days enc / raw |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for enc, r in res["encoders"].items():
        for name, mod in r["modalities"].items():
            lines += _energy_rows(name, enc, mod)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", action="append", required=True, metavar="NAME=PATH",
                    help="an exported bundle, named (e.g. edge=demo-out/bundle); repeatable")
    ap.add_argument("--kernels", default="reference,cmsis-nn")
    ap.add_argument("--hop", type=int, default=None, help="new samples per window")
    ap.add_argument("--max-windows", type=int, default=2,
                    help="sample windows run per image (the profile uses the last)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--note", default="", help="conditions to record (e.g. shared cores)")
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    from crossl_edge.firmware_bridge.energy import assumptions, node_profiles
    from crossl_edge.firmware_bridge.measure import check_kernels

    kernels = check_kernels(args.kernels.split(","))
    res: dict[str, Any] = {"command": "python -m benchmarks.energy " + " ".join(argv),
                           "note": args.note, "encoders": {},
                           "energy_assumptions": assumptions(node_profiles())}
    with tempfile.TemporaryDirectory(prefix="energy-bench-") as d:
        for spec in args.bundle:
            name, _, path = spec.partition("=")
            res["encoders"][name] = measure_bundle(Path(path), kernels=kernels, hop=args.hop,
                                                   max_windows=args.max_windows,
                                                   work=Path(d) / name)
    save("energy", res, out=args.out)
    write_text(args.out / "energy.md", markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
