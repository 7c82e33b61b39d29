"""Deployment protocol on BasicMotions: encoders x modes x seeds, each trained with the CLI
defaults, exported (scheme search), then the deployed int8 pipelines measured on every modality
subset of the test split (float vs int8 macro-F1, TFLite Micro vs LiteRT agreement).

Usage: python -m benchmarks.deploy_protocol [--seeds 0,1,2,3,4] [--encoders crossl,edge]
       [--modes ssl,fine,sup] [--name deploy_protocol]
Results are rewritten after every run (JSON + Markdown in benchmarks/results/), so a partial
sweep is still a valid record of the runs it finished.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, save
from crossl_edge.errors import CrosslError

log = logging.getLogger("benchmarks.deploy")


def litert_latency_us(float_path: Path, int8_path: Path, *, rounds: int = 7,
                      calls: int = 200) -> dict[str, float]:
    """Float vs int8 encoder on LiteRT (1 thread, XNNPACK on), interleaved rounds so both see the
    same machine load; the best round's mean per call, in microseconds."""
    from crossl_edge.runtime.backends import TFLiteRunner

    runners = {k: TFLiteRunner(p, threads=1) for k, p in (("float", float_path),
                                                         ("int8", int8_path))}
    rng = np.random.default_rng(0)
    feeds = {k: (rng.standard_normal(r.inputs[0].shape).astype(np.float32) if k == "float"
                 else rng.integers(-100, 100, r.inputs[0].shape).astype(np.int8))
             for k, r in runners.items()}
    best = {k: float("inf") for k in runners}
    for _ in range(rounds):
        for k, r in runners.items():
            for _ in range(calls // 4):
                r.run(feeds[k])                                   # warm caches
            t0 = time.perf_counter()
            for _ in range(calls):
                r.run(feeds[k])
            best[k] = min(best[k], (time.perf_counter() - t0) / calls * 1e6)
    return {"float_us": best["float"], "int8_us": best["int8"],
            "int8_over_float": best["int8"] / best["float"]}


def one_run(root: Path, *, encoder: str, mode: str, seed: int) -> dict[str, Any]:
    """Train, export and measure one configuration; export failures are recorded, not raised."""
    from crossl_edge.export.bundle import export_bundle
    from crossl_edge.export.parity import chosen_schemes, run_parity
    from crossl_edge.manifest import load_manifest
    from crossl_edge.train.config import TrainConfig
    from crossl_edge.train.run import train_run

    row: dict[str, Any] = {"encoder": encoder, "mode": mode, "seed": seed}
    t0 = time.perf_counter()
    train_run(TrainConfig(mode=mode, encoder=encoder, seed=seed, device="cpu"),
              root / "run")
    row["train_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        export_bundle(root / "run", root / "bundle")
    except CrosslError as e:
        row.update(exported=False, export_error=str(e), export_s=time.perf_counter() - t0)
        return row
    row.update(exported=True, export_s=time.perf_counter() - t0)
    row["schemes"] = {n: {f: s["scheme"] for f, s in fm.items()}
                      for n, fm in chosen_schemes(load_manifest(root / "bundle")).items()}
    t0 = time.perf_counter()
    res = run_parity(root / "bundle")
    row["parity_s"] = time.perf_counter() - t0
    row["parity_passed"], row["failures"], row["notes"] = res.passed, res.failures, res.notes
    row["subsets"] = [{"present": "+".join(s["present"]),
                       "float_f1": s["float"]["macro_f1"],
                       "tflite_int8_f1": s["tflite_int8"]["macro_f1"],
                       "onnx_int8_f1": s["onnx_int8"]["macro_f1"],
                       "tflite_int8_agreement": s["tflite_int8"].get("agreement"),
                       "tflm_agreement": s.get("tflm", {}).get("agreement_with_litert"),
                       "tflm_disagreements": s.get("tflm", {}).get("disagreements"),
                       "tflite_int8_changed": s["tflite_int8"].get("changed", [])}
                      for s in res.subsets]
    m = load_manifest(root / "bundle")
    row["layernorm"] = {e.name: e.quant_extra["scheme"]["tflite_int8"]["options"].get(
        "layernorm", "decomposed") for e in m.modalities}
    row["latency"] = {e.name: litert_latency_us(m.path(e.artifacts["tflite"]),
                                                m.path(e.artifacts["tflite_int8"]))
                      for e in m.modalities}
    row["latent_sqnr_db"] = {n: {p: e["int8"][p]["sqnr_db"] for p in e["int8"]}
                             for n, e in res.encoders.items()}
    row["tflm_max_lsb"] = {n: (e.get("tflm") or {}).get("max_lsb_vs_litert_builtin")
                           for n, e in res.encoders.items()}
    return row


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Export success, F1 drops (max, mean) per pipeline, TFLM agreement and scheme counts."""
    out: dict[str, Any] = {}
    for enc in sorted({r["encoder"] for r in rows}):
        mine = [r for r in rows if r["encoder"] == enc]
        ok = [r for r in mine if r.get("exported")]
        s: dict[str, Any] = {"runs": len(mine), "exported": len(ok),
                             "parity_passed": sum(bool(r.get("parity_passed")) for r in ok)}
        for p in ("tflite_int8", "onnx_int8"):
            d = np.array([x["float_f1"] - x[f"{p}_f1"] for r in ok for x in r["subsets"]])
            if d.size:
                s[p] = {"mean_drop": float(d.mean()), "max_drop": float(d.max()),
                        "max_abs_change": float(np.abs(d).max()),
                        "within_1pt": int((np.abs(d) <= 0.01 + 1e-9).sum()), "of": int(d.size)}
        agree = [x["tflm_agreement"] for r in ok for x in r["subsets"]
                 if x["tflm_agreement"] is not None]
        s["tflm_agreement_min"] = min(agree) if agree else None
        s["tflm_disagreeing_windows"] = sum(x.get("tflm_disagreements") or 0
                                            for r in ok for x in r["subsets"])
        d = np.array([x["float_f1"] - x["tflite_int8_f1"] for r in ok for x in r["subsets"]])
        if d.size:
            s["tflite_int8"]["drop_within_1pt"] = int((d <= 0.01 + 1e-9).sum())
        ranks = [c["margin_rank"] for r in ok for x in r["subsets"]
                 for c in x.get("tflite_int8_changed", [])]
        s["tflite_int8"]["changed_windows_margin_ranks"] = sorted(ranks)
        ratios = [v["int8_over_float"] for r in ok for v in (r.get("latency") or {}).values()]
        if ratios:
            s["latency_int8_over_float"] = {"max": max(ratios), "median": float(
                np.median(ratios)), "of": len(ratios)}
        s["schemes"] = {f: dict(Counter(fm[f] for r in ok for fm in r["schemes"].values()))
                        for f in ("tflite_int8", "onnx_int8")}
        out[enc] = s
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = ["| encoder | mode | seed | export | present | float F1 | TFLite int8 F1 | "
             "ONNX int8 F1 | TFLM = LiteRT | schemes (tflite / onnx) | LiteRT µs float / int8 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        head = f"| {r['encoder']} | {r['mode']} | {r['seed']} |"
        if not r.get("exported"):
            lines.append(f"{head} FAILED: {r['export_error']} | | | | | | | |")
            continue
        sch = "; ".join(f"{n}: {s.get('tflite_int8')} / {s.get('onnx_int8')}"
                        for n, s in r["schemes"].items())
        lat = "; ".join(f"{n}: {v['float_us']:.0f} / {v['int8_us']:.0f}"
                        for n, v in (r.get("latency") or {}).items())
        for i, x in enumerate(r["subsets"]):
            agree = "-" if x["tflm_agreement"] is None else f"{x['tflm_agreement']:.3f}"
            lines.append(f"{head} {'ok' if i == 0 else ''} | {x['present']} | "
                         f"{x['float_f1']:.3f} | {x['tflite_int8_f1']:.3f} | "
                         f"{x['onnx_int8_f1']:.3f} | {agree} | {sch if i == 0 else ''} | "
                         f"{lat if i == 0 else ''} |")
    lines += ["", "| encoder | runs | exported | parity passed | TFLite int8 drop mean / max | "
              "ONNX int8 drop mean / max | subsets within 1 pt (TFLite, ONNX) | TFLite subsets "
              "dropping <= 1 pt | TFLM agreement (min; windows differing) | LiteRT int8/float "
              "latency max (median) | TFLite schemes | ONNX schemes |", "|---" * 12 + "|"]
    for enc, s in result["summary"].items():
        t, o = s.get("tflite_int8", {}), s.get("onnx_int8", {})
        lat = s.get("latency_int8_over_float", {})
        lines.append(
            f"| {enc} | {s['runs']} | {s['exported']} | {s['parity_passed']} | "
            f"{t.get('mean_drop', float('nan')):.4f} / {t.get('max_drop', float('nan')):.3f} | "
            f"{o.get('mean_drop', float('nan')):.4f} / {o.get('max_drop', float('nan')):.3f} | "
            f"{t.get('within_1pt')}/{t.get('of')}, {o.get('within_1pt')}/{o.get('of')} | "
            f"{t.get('drop_within_1pt')}/{t.get('of')} | "
            f"{s['tflm_agreement_min']}; {s.get('tflm_disagreeing_windows')} | "
            f"{lat.get('max', float('nan')):.2f} ({lat.get('median', float('nan')):.2f}) | "
            f"{s['schemes']['tflite_int8']} | "
            f"{s['schemes']['onnx_int8']} |")
    return "\n".join(lines)


def _write(name: str, rows: list[dict[str, Any]], plan: list[tuple[str, str, int]]) -> Path:
    result = {"protocol": "BasicMotions, CLI training defaults (device cpu), export with the "
                          "scheme search, parity on the TEST split (40 windows)",
              "planned": [list(p) for p in plan], "runs": rows, "summary": summarize(rows)}
    path = save(name, result)
    path.with_suffix(".md").write_text(markdown(result) + "\n")
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--encoders", default="crossl,edge")
    p.add_argument("--modes", default="ssl,fine,sup")
    p.add_argument("--name", default="deploy_protocol")
    p.add_argument("--resume", action="store_true",
                   help="Keep the runs already in benchmarks/results/NAME.json; do the rest.")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    # seed-major: an interrupted sweep still covers every encoder and mode
    plan = [(e, m, int(s)) for s in args.seeds.split(",") for e in args.encoders.split(",")
            for m in args.modes.split(",")]
    rows: list[dict[str, Any]] = []
    saved = RESULTS / f"{args.name}.json"
    if args.resume and saved.is_file():
        rows = [r for r in json.loads(saved.read_text())["runs"]
                if (r["encoder"], r["mode"], r["seed"]) in plan]
    done = {(r["encoder"], r["mode"], r["seed"]) for r in rows}
    for enc, mode, seed in (x for x in plan if x not in done):
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(one_run(Path(tmp), encoder=enc, mode=mode, seed=seed))
        rows[-1]["total_s"] = time.perf_counter() - t0
        path = _write(args.name, rows, plan)
        log.warning("%s %s seed %d: exported %s, parity %s (%.0f s) -> %s", enc, mode, seed,
                    rows[-1]["exported"], rows[-1].get("parity_passed"), rows[-1]["total_s"],
                    path.relative_to(RESULTS.parent.parent))


if __name__ == "__main__":
    main()
