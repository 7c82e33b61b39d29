"""`crossl-edge export` (run -> bundle) and `crossl-edge parity` (float vs int8 checks)."""

from __future__ import annotations

import time

import click

from crossl_edge.cli.common import check_deadline, echo_json, export_progress


def _calibration(value: str | None) -> int | None:
    """--calibration-windows: a count, or "all" (every training window; returned as 0)."""
    if value is None:
        return None
    if value.strip().lower() == "all":
        return 0
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number of windows or 'all'",
                                 param_hint="--calibration-windows") from None


@click.command("export")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Bundle directory to write (replaced atomically).")
@click.option("--calibration-windows", default=None, metavar="N|all",
              help="Training windows that calibrate int8 and judge the search's candidates, "
              "stratified by class and subject (default: at most 512; 'all': every one).")
@click.option("--max-search-seconds", type=float, default=None,
              help="Time budget of the quantization search over all modalities; when spent, "
              "each format takes the best candidate so far that meets the thresholds and the "
              "manifest says the search was cut short (default: no budget).")
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
def export_cmd(run: str, out: str, calibration_windows: str | None, data: str | None,
               min_cosine: float, min_sqnr_db: float, as_json: bool,
               devices: str | None = None, max_search_seconds: float | None = None) -> None:
    """Export RUN's encoders (ONNX/TFLite, float/int8) and phone model to a bundle.

    Each int8 format is searched over quantization schemes (input clipping, per-channel or
    per-tensor, ORT calibration method, symmetric or int16 activations, LayerNorm in float);
    the chosen scheme and why are in manifest.json under quantization.scheme. When no scheme
    reaches the thresholds nothing is exported and OUT.export-report.json names the worst layer.
    Progress: a live display on a terminal, else one line per modality and stage on stderr.

    \b
    Example:
      crossl-edge export runs/basicmotions --out bundle --calibration-windows 32
      crossl-edge export runs/uci --out bundle --devices waist=body_acc,gyro,total_acc
      crossl-edge export runs/big --out bundle --max-search-seconds 120 2> export.log
    """
    import json
    from pathlib import Path

    from crossl_edge.export.bundle import export_bundle
    from crossl_edge.export.schemes import SchemeRecord, Targets
    from crossl_edge.outputs import prepare_output

    n_cal = _calibration(calibration_windows)
    if max_search_seconds is not None:
        check_deadline(max_search_seconds, flag="--max-search-seconds")
    prepare_output(out, kind="bundle", inputs=(run, data))  # before loading anything
    t0 = time.perf_counter()
    with export_progress() as report:
        m = export_bundle(run, out, calibration_windows=n_cal, data=data, progress=report,
                          targets=Targets(min_cosine=min_cosine, min_sqnr_db=min_sqnr_db),
                          max_search_seconds=max_search_seconds, devices=devices)
    obj = json.loads((Path(out) / "manifest.json").read_text())
    if as_json:
        echo_json(obj)
        return
    click.echo(f"{'modality':<10} {'int8 tflite':>12} {'int8 onnx':>10} {'MACs':>10} "
               f"{'TFLM arena':>11} {'ops'}")
    for e in m.modalities:
        s = e.stats
        size = s.size_bytes or {}
        arena = s.arena_recorded_bytes or "-"
        click.echo(f"{e.name:<10} {size.get('tflite_int8', '-'):>12} "
                   f"{size.get('onnx_int8', '-'):>10} {s.macs or '-':>10} {arena:>11} "
                   f"{','.join(s.tflite_int8_ops or [])}")
    for e in m.modalities:
        for fmt, rec in sorted(SchemeRecord.read(e.quant_extra.get("scheme")).items()):
            click.echo(f"{e.name:<10} {fmt:<12} {rec.chosen} ({len(rec.tried)} tried: "
                       f"{rec.why})")
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
