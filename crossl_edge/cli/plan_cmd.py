"""`crossl-edge plan`: which sensors to deploy (Shapley values, harmful sensors, Pareto front)."""

from __future__ import annotations

import click

from crossl_edge.cli.common import echo_json


@click.command("plan")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--parity", "parity_json", type=click.Path(dir_okay=False), default=None,
              help="parity.json to read the every-subset F1 table from (default: "
              "BUNDLE/parity.json if present, else computed on the test windows).")
@click.option("--data", type=click.Path(exists=True, dir_okay=False), default=None,
              help=".npz of raw test windows (x_<modality>, y) to compute the table on.")
@click.option("--firmware", type=click.Path(exists=True), default=None,
              help="Firmware folder (or its resources.json) for flash/RAM/instruction figures "
              "(default: estimates from the manifest's stats).")
@click.option("--max-windows", type=click.IntRange(min=1), default=None,
              help="Compute the table on at most this many windows.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Save the plan figure (PNG, matplotlib).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Write plan.json, plan.png and plan.html (figure embedded) to this folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_cmd(bundle: str, parity_json: str | None, data: str | None, firmware: str | None,
             max_windows: int | None, plot: str | None, report_dir: str | None,
             as_json: bool) -> None:
    """Which sensors to deploy: each modality's and device's exact Shapley value for macro-F1
    (float and int8), a warning wherever removing one raises F1, and the Pareto front of device
    subsets (F1 vs flash, RAM, instructions and energy per window).

    \b
    Example:
      crossl-edge plan bundle/
      crossl-edge plan bundle/ --parity parity-report/parity.json --firmware fw/ --plot plan.png
    """
    from crossl_edge.atomic import write_json, write_text
    from crossl_edge.outputs import output_dir, prepare_file, prepare_output, removed_on_failure
    from crossl_edge.plan import run_plan
    from crossl_edge.plan_report import render_html

    inputs = (bundle, parity_json, data, firmware)
    if plot:
        prepare_file(plot, inputs=inputs, flag="--plot")
    if report_dir:
        prepare_output(report_dir, kind="report", inputs=inputs, flag="--report")
    res = run_plan(bundle, parity=parity_json, data=data, firmware=firmware,
               max_windows=max_windows)
    if plot:
        with removed_on_failure(plot):
            if res.plot(plot) is None:
                click.echo("note: matplotlib is not installed; no plot written.", err=True)
    if report_dir:
        with output_dir(report_dir, kind="report", inputs=inputs) as tmp:
            write_json(tmp / "plan.json", res.to_json())
            write_text(tmp / "plan.html", render_html(res))
            res.plot(tmp / "plan.png")
    if as_json:
        echo_json(res.to_json())
        return
    click.echo(res.text())
