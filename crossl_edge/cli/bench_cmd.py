"""`crossl-edge bench`: latency and memory of a bundle's models and on-device paths, per runtime."""

from __future__ import annotations

import sys

import click

from crossl_edge.cli.common import echo_json
from crossl_edge.errors import UsageError


def _ints(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as e:
        raise UsageError(f"--threads takes integers like 1,2; got {text!r}.") from e
    if not vals or min(vals) < 1:
        raise UsageError(f"--threads takes positive integers like 1,2; got {text!r}.")
    return vals


def _onoff(text: str) -> tuple[bool, ...]:
    table = {"on": True, "off": False, "true": True, "false": False, "1": True, "0": False}
    vals = [x.strip().lower() for x in text.split(",") if x.strip()]
    if not vals or any(v not in table for v in vals):
        raise UsageError(f"--xnnpack takes on, off or on,off; got {text!r}.")
    return tuple(dict.fromkeys(table[v] for v in vals))


@click.command("bench")
@click.argument("bundle", required=False, type=click.Path(file_okay=False))
@click.option("--threads", default="1", show_default=True, metavar="N[,N...]",
              help="Thread counts to run each model with.")
@click.option("--xnnpack", default="on,off", show_default=True, metavar="on,off",
              help="XNNPACK delegate settings for TFLite runtimes.")
@click.option("--runtime", "runtimes", metavar="NAME[,NAME...]",
              help="litert, tflite_runtime, tensorflow, onnxruntime, tflm (default: every "
                   "installed one except tensorflow).")
@click.option("--min-seconds", type=float, default=10.0, show_default=True,
              help="Steady-state seconds per model and setting (split over --windows).")
@click.option("--min-runs", type=int, default=10, show_default=True,
              help="Inferences per window, at least.")
@click.option("--windows", type=int, default=5, show_default=True,
              help="Timing windows; the headline figure is the median of the window means.")
@click.option("--quick", is_flag=True, help="A smoke run (0.3 s per row): figures are rough.")
@click.option("--profile", is_flag=True,
              help="Also profile each encoder .tflite per op (first TFLite runtime, first "
                   "--threads and --xnnpack setting): where the time goes.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the result JSON here.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Latency box plots (PNG) here.")
@click.option("--compare", nargs=2, type=click.Path(dir_okay=False), metavar="A.json B.json",
              help="Put two saved results side by side (e.g. a workstation and a Pi).")
def bench_cmd(bundle: str | None, threads: str, xnnpack: str, runtimes: str | None,
              min_seconds: float, min_runs: int, windows: int, quick: bool, profile: bool,
              as_json: bool,
              out: str | None, plot: str | None, compare: tuple[str, str] | None) -> None:
    """Time every encoder (float/int8, TFLite/ONNX) and the phone model on each runtime.

    Inputs are the bundle's real sample windows. Reports load time, first inference, warm-up,
    steady-state mean/std/p50/p90/p99 (MLPerf-Tiny-like windows), peak RSS, the whole node path
    (raw window -> int8 latent frame) and phone path (frames -> prediction), and the int8/float,
    LiteRT/ONNX Runtime and XNNPACK speed-ups measured in the same run.

    \b
    Example:
      crossl-edge bench bundle/ --threads 1,4 --out pi4.json --plot pi4.png
      crossl-edge bench bundle/ --quick --runtime litert
      crossl-edge bench bundle/ --runtime litert --xnnpack on --profile
      crossl-edge bench --compare laptop.json pi4.json
    """
    from crossl_edge.bench import report

    if compare:
        if bundle:
            raise UsageError("pass either BUNDLE or --compare A.json B.json, not both.")
        a, b = (report.load_result(p) for p in compare)
        if as_json:
            echo_json(report.compare_rows(a, b))
        else:
            click.echo(report.compare(a, b))
        return
    if not bundle:
        raise UsageError("pass a BUNDLE to benchmark (or --compare A.json B.json); "
                         "see `crossl-edge bench --help`.")
    from crossl_edge.atomic import write_json
    from crossl_edge.bench.bench import run_bench
    from crossl_edge.outputs import prepare_file, removed_on_failure

    for flag, path in (("--out", out), ("--plot", plot)):
        if path:
            prepare_file(path, inputs=(bundle,), flag=flag)  # before the long timing run

    names = [x for x in runtimes.split(",") if x.strip()] if runtimes is not None else None
    if names is not None and not names:
        raise UsageError("--runtime needs at least one name, e.g. litert,onnxruntime.")
    result = run_bench(bundle, threads=_ints(threads), xnnpack=_onoff(xnnpack), runtimes=names,
                       min_seconds=min_seconds, min_runs=min_runs, windows=windows, quick=quick,
                       profile=profile, progress=lambda msg: click.echo(f"  {msg}", err=True))
    obj = result.to_json()
    if out:
        write_json(out, obj)
    with removed_on_failure(plot or ""):
        note = report.plot(result, plot) if plot else None
    if as_json:
        echo_json(obj)
    else:
        click.echo(report.format_result(obj))
    for line in ([f"written: {out}"] if out else []) + ([f"plot: {plot}"] if plot else []):
        if not (line.startswith("plot") and note):
            click.echo(line, err=as_json)
    if note:
        click.echo(f"no plot: {note}", err=True)
    sys.stdout.flush()
