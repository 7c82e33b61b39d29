"""Summary and Markdown tables of the real-data deployment benchmark (benchmarks/deploy_real):
per run and subset float vs TFLite Micro / LiteRT / ONNX int8, latent SQNR per modality.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LABEL = {"tflm_int8": "TFLM int8", "tflite_int8": "LiteRT int8", "onnx_int8": "ONNX int8"}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per encoder and pipeline: subsets meeting each bar, worst drop and flip rate, SQNR."""
    out: dict[str, Any] = {}
    for enc in sorted({r["encoder"] for r in rows}):
        mine = [r for r in rows if r["encoder"] == enc]
        s: dict[str, Any] = {"runs": len(mine), "parity_passed": sum(r["passed"] for r in mine),
                             "configs": [f"{r['mode']} seed {r['seed']}" for r in mine]}
        for p in LABEL:
            subs = [x[p] for r in mine for x in r["subsets"] if p in x]
            if not subs:
                continue
            drops = np.array([q["f1_drop"] for q in subs])
            s[p] = {"subsets": len(subs),
                    "flip_rate_ok": sum(bool(q["verdicts"]["flip_rate"]) for q in subs),
                    "margin_ok": sum(bool(q["verdicts"]["margin"]) for q in subs),
                    "f1_drop_ok": sum(bool(q["verdicts"]["f1_drop"]) for q in subs),
                    "max_flip_rate": max(q["flip_rate"] for q in subs),
                    "mean_f1_drop": float(drops.mean()), "max_f1_drop": float(drops.max()),
                    "worst_margin_rank": max(q["worst_margin_rank"] for q in subs)}
        sq: dict[str, list[float]] = {}
        for r in mine:
            for mod, v in r["latent_sqnr_db"].items():
                for p, db in v.items():
                    sq.setdefault(f"{mod}/{p}", []).append(db)
        s["latent_sqnr_db_min"] = {k: min(v) for k, v in sorted(sq.items())}
        out[enc] = s
    return out


def _ci(v: list[float], fmt: str = "{:+.3f}") -> str:
    return f"[{fmt.format(v[0])}, {fmt.format(v[1])}]"


def _ranks(q: dict[str, Any], n: int) -> str:
    ranks = sorted(c["margin_rank"] for c in q["changed"])
    if not ranks:
        return "-"
    if len(ranks) <= 4:
        return ", ".join(map(str, ranks))
    close = sum(r <= n // 10 for r in ranks)
    return (f"median {int(np.median(ranks))}, worst {ranks[-1]}, {close}/{len(ranks)} in "
            "closest 10%")


def markdown(result: dict[str, Any]) -> str:
    """The per-subset table, the latent SQNR table and the per-encoder summary."""
    lines = ["| encoder | mode | seed | present | float F1 [95% CI] | TFLM int8 F1 (drop [95% CI]) "
             "| LiteRT int8 F1 | ONNX int8 F1 | flips TFLM / LiteRT / ONNX | TFLM changed windows' "
             "float-margin ranks | TFLM verdict |", "|---" * 11 + "|"]
    for r in result["runs"]:
        n = r["n_windows"]
        for x in r["subsets"]:
            f, node = x["float"], x.get("tflm_int8") or x["tflite_int8"]
            flips = " / ".join(f"{len(x[p]['changed'])} ({100 * x[p]['flip_rate']:.2f}%)"
                               if p in x else "-" for p in LABEL)
            v = node["verdicts"]
            verdict = ("pass" if all(b is not False for b in v.values()) else
                       "FAIL: " + ", ".join(k for k, b in v.items() if b is False))
            lines.append(
                f"| {r['encoder']} | {r['mode']} | {r['seed']} | {'+'.join(x['present'])} | "
                f"{f['macro_f1']:.3f} {_ci(f['macro_f1_ci95'], '{:.3f}')} | "
                f"{node['macro_f1']:.3f} ({node['f1_drop']:+.3f} {_ci(node['f1_drop_ci95'])}) | "
                f"{x['tflite_int8']['macro_f1']:.3f} | {x['onnx_int8']['macro_f1']:.3f} | "
                f"{flips} | {_ranks(node, n)} | {verdict} |")
    lines += ["", "Latent SQNR on the test windows (dB):", "",
              "| encoder | mode | seed | modality | TFLM int8 | LiteRT int8 | ONNX int8 | "
              "TFLite scheme | ONNX scheme |", "|---" * 9 + "|"]
    for r in result["runs"]:
        for mod, v in r["latent_sqnr_db"].items():
            sch = r["schemes"].get(mod, {})
            lines.append(f"| {r['encoder']} | {r['mode']} | {r['seed']} | {mod} | "
                         + " | ".join(f"{v[p]:.1f}" if p in v else "-" for p in LABEL)
                         + f" | {sch.get('tflite_int8', '-')} | {sch.get('onnx_int8', '-')} |")
    lines += ["", "| encoder | runs | parity passed | pipeline | subsets flip rate <= 1% | "
              "every changed window in the closest 10% | F1 drop <= 1 pt | max flip rate | "
              "mean / max F1 drop | worst margin rank |", "|---" * 10 + "|"]
    for enc, s in result["summary"].items():
        for p, lab in LABEL.items():
            if p not in s:
                continue
            q = s[p]
            lines.append(f"| {enc} | {s['runs']} | {s['parity_passed']} | {lab} | "
                         f"{q['flip_rate_ok']}/{q['subsets']} | {q['margin_ok']}/{q['subsets']} | "
                         f"{q['f1_drop_ok']}/{q['subsets']} | {100 * q['max_flip_rate']:.2f}% | "
                         f"{100 * q['mean_f1_drop']:+.2f} / {100 * q['max_f1_drop']:+.2f} pt | "
                         f"{q['worst_margin_rank']} |")
    return "\n".join(lines)
