"""The paper's encoder vs the int8-friendly `edge` encoder, trained normally, exported and checked.

For each encoder and seed: train (mode fine, defaults), export, parity, firmware; reports float and
int8 macro-F1 per modality subset, MACs, parameters, int8 sizes, TFLite Micro arena, latent
cosine/SQNR and export time. Usage: python -m benchmarks.encoder_variants [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import save
from crossl_edge.train.config import TrainConfig
from crossl_edge.train.run import train_run


def one(encoder: str, seed: int, root: Path) -> dict:
    from crossl_edge.export.bundle import export_bundle
    from crossl_edge.export.parity import run_parity
    from crossl_edge.firmware_bridge.firmware import generate_firmware

    run = train_run(TrainConfig(encoder=encoder, seed=seed, device="cpu"), root / "run").run_dir
    t0 = time.perf_counter()
    manifest = export_bundle(run, root / "bundle")
    export_s = time.perf_counter() - t0
    par = run_parity(root / "bundle").to_json()
    fw = generate_firmware(root / "bundle", root / "firmware").to_json()
    enc = {}
    for e in manifest.modalities:
        p = par["encoders"][e.name]
        enc[e.name] = {
            "params": e.stats.params, "macs": e.stats.macs,
            "size_bytes": e.stats.size_bytes, "ops": e.stats.tflite_int8_ops,
            "tflm_arena_bytes": p["tflm"]["arena_bytes"],
            "tflm_max_lsb_vs_litert": p["tflm"]["max_lsb_vs_litert_builtin"],
            "tflite_int8": p["int8"]["tflite_int8"], "onnx_int8": p["int8"]["onnx_int8"]}
    subsets = {"+".join(s["present"]): {"float_f1": s["float"]["macro_f1"],
                                        "tflite_int8_f1": s["tflite_int8"]["macro_f1"],
                                        "onnx_int8_f1": s["onnx_int8"]["macro_f1"]}
               for s in par["subsets"]}
    return {"encoder": encoder, "seed": seed, "export_seconds": export_s,
            "parity_passed": par["passed"], "encoders": enc, "subsets": subsets,
            "firmware": fw}


def markdown(rows: list[dict]) -> str:
    out = ["| encoder | seed | modality | params | MACs | int8 TFLite B | TFLM arena B | "
           "cos mean (TFLite int8) | SQNR dB | parity |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for m, e in r["encoders"].items():
            out.append(f"| {r['encoder']} | {r['seed']} | {m} | {e['params']:,} | {e['macs']:,} | "
                       f"{e['size_bytes']['tflite_int8']:,} | {e['tflm_arena_bytes']:,} | "
                       f"{e['tflite_int8']['cosine_mean']:.5f} | "
                       f"{e['tflite_int8']['sqnr_db']:.1f} | "
                       f"{'pass' if r['parity_passed'] else 'FAIL'} |")
    out += ["", "| encoder | present | float macro-F1 | int8 TFLite macro-F1 | "
            "int8 ONNX macro-F1 |", "|---|---|---|---|---|"]
    for enc in sorted({r["encoder"] for r in rows}):
        rs = [r for r in rows if r["encoder"] == enc]
        for subset in rs[0]["subsets"]:
            cols = []
            for key in ("float_f1", "tflite_int8_f1", "onnx_int8_f1"):
                v = np.array([r["subsets"][subset][key] for r in rs])
                cols.append(f"{v.mean():.3f} ± {v.std():.3f}")
            out.append(f"| {enc} | {subset} | " + " | ".join(cols) + " |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--encoders", default="crossl,edge")
    args = p.parse_args()
    rows = []
    for enc in args.encoders.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(one(enc, seed, Path(tmp)))
                print(f"{enc} seed {seed}: parity {rows[-1]['parity_passed']}, "
                      f"export {rows[-1]['export_seconds']:.1f} s", flush=True)
    path = save("encoder_variants", {"rows": rows})
    md = markdown(rows)
    path.with_suffix(".md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
