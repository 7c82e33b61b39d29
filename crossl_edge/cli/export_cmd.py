"""`crossl-edge export` (run -> bundle) and `crossl-edge parity` (float vs int8 checks)."""

from __future__ import annotations

import time

import click

from crossl_edge.cli.common import echo_json, progress


@click.command("export")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Bundle directory to write (replaced atomically).")
@click.option("--calibration-windows", type=int, default=None,
              help="Training windows used to calibrate int8 (default: all of them).")
@click.option("--data", type=click.Path(), default=None,
              help="Dataset path in place of the one recorded in the run.")
@click.option("--min-cosine", type=float, default=0.99, show_default=True,
              help="Mean latent cosine an int8 scheme must reach on the calibration windows.")
@click.option("--min-sqnr-db", type=float, default=15.0, show_default=True,
              help="Latent SQNR (dB) an int8 scheme must reach on the calibration windows.")
@click.option("--devices", default=None, metavar="DEV=MOD,MOD;DEV=MOD | FILE.json",
              help="Which modalities each sensor device carries, e.g. "
              "waist=body_acc,gyro;wrist=total_acc (default: one device per modality).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def export_cmd(run: str, out: str, calibration_windows: int | None, data: str | None,
               min_cosine: float, min_sqnr_db: float, as_json: bool,
               devices: str | None = None) -> None:
    """Export RUN's encoders (ONNX/TFLite, float/int8) and phone model to a bundle.

    Each int8 format is searched over quantization schemes (input clipping, per-channel or
    per-tensor, ORT calibration method, symmetric or int16 activations, LayerNorm in float);
    the chosen scheme and why are in manifest.json under quantization.scheme. When no scheme
    reaches the thresholds nothing is exported and OUT.export-report.json names the worst layer.

    \b
    Example:
      crossl-edge export runs/basicmotions --out bundle --calibration-windows 32
      crossl-edge export runs/uci --out bundle --devices waist=body_acc,gyro,total_acc
    """
    import json
    from pathlib import Path

    from crossl_edge.export.bundle import export_bundle
    from crossl_edge.export.schemes import Targets
    from crossl_edge.outputs import prepare_output

    prepare_output(out, kind="bundle", inputs=(run, data))  # before loading anything
    t0 = time.perf_counter()
    with progress("export", None, enabled=not as_json) as advance:
        m = export_bundle(run, out, calibration_windows=calibration_windows, data=data,
                          progress=advance,
                          targets=Targets(min_cosine=min_cosine, min_sqnr_db=min_sqnr_db),
                          devices=devices)
    obj = json.loads((Path(out) / "manifest.json").read_text())
    if as_json:
        echo_json(obj)
        return
    click.echo(f"{'modality':<10} {'int8 tflite':>12} {'int8 onnx':>10} {'MACs':>10} "
               f"{'TFLM arena':>11} {'ops'}")
    for e in m.modalities:
        s = e.stats
        arena = (s.get("tflm") or {}).get("arena_recorded_bytes", "-")
        click.echo(f"{e.name:<10} {s['size_bytes']['tflite_int8']:>12} "
                   f"{s['size_bytes']['onnx_int8']:>10} {s['macs']:>10} {arena:>11} "
                   f"{','.join(s['tflite_int8_ops'])}")
    for mod in obj["modalities"]:
        for fmt, rec in sorted(mod["quantization"].get("scheme", {}).items()):
            if isinstance(rec, dict) and "chosen" in rec:
                click.echo(f"{mod['name']:<10} {fmt:<12} {rec['chosen']} "
                           f"({len(rec['tried'])} tried: {rec['why']})")
    click.echo(f"bundle {out} (fingerprint {m.fingerprint:08x}) in "
               f"{time.perf_counter() - t0:.1f} s")


@click.command("parity")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option("--data", type=click.Path(), default=None,
              help="Dataset path in place of the one recorded in the bundle.")
@click.option("--max-flip-rate", type=float, default=0.01, show_default=True,
              help="Largest share of test windows whose int8 prediction may differ from float, "
                   "on every subset of modalities.")
@click.option("--margin-quantile", type=float, default=0.10, show_default=True,
              help="Every changed window must be among this share of the float model's closest "
                   "calls (smallest top-1 minus top-2 logit margin).")
@click.option("--max-f1-drop", type=float, default=0.01, show_default=True,
              help="Maximum macro-F1 drop (0.01 = 1 point) on every subset of modalities.")
@click.option("--min-f1-windows", type=int, default=1000, show_default=True,
              help="Gate the macro-F1 drop only on test sets of at least this many windows "
                   "(smaller: reported with a bootstrap 95% interval).")
@click.option("--min-cosine", type=float, default=0.99, show_default=True,
              help="Minimum mean latent cosine, int8 vs float, per encoder.")
@click.option("--min-sqnr-db", type=float, default=15.0, show_default=True,
              help="Minimum latent SQNR (dB), int8 vs float, per encoder.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Write parity.json and report.html (with plots) to this directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def parity_cmd(bundle: str, data: str | None, max_flip_rate: float, margin_quantile: float,
               max_f1_drop: float, min_f1_windows: int, min_cosine: float, min_sqnr_db: float,
               report_dir: str | None, as_json: bool) -> None:
    """Check BUNDLE's int8 pipelines against float PyTorch (exit 1 on a miss).

    The gates apply to TFLite Micro's int8 encoders (what a node runs) and ONNX int8, each
    followed by the phone model; LiteRT int8 is measured beside them.

    \b
    Example:
      crossl-edge parity bundle --report parity-report
    """
    from crossl_edge.errors import CheckFailed
    from crossl_edge.export.parity import ParityThresholds, format_table, run_parity
    from crossl_edge.outputs import output_dir, prepare_output

    thresholds = ParityThresholds(min_cosine=min_cosine, min_sqnr_db=min_sqnr_db,
                                  max_flip_rate=max_flip_rate, margin_quantile=margin_quantile,
                                  max_f1_drop=max_f1_drop, min_f1_windows=min_f1_windows)
    if report_dir:
        prepare_output(report_dir, kind="report", inputs=(bundle, data), flag="--report")
    result = run_parity(bundle, data=data, thresholds=thresholds)
    if report_dir:
        from crossl_edge.export.report import write_report

        with output_dir(report_dir, kind="report", inputs=(bundle, data)) as tmp:
            write_report(result, tmp, data=data)
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo(format_table(result))
    if not result.passed:
        raise CheckFailed(f"parity failed ({'; '.join(result.failures)}); see the table"
                          + (f" and {report_dir}/report.html." if report_dir else "."))
