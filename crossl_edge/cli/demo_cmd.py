"""`crossl-edge demo`: the whole pipeline on the embedded BasicMotions dataset."""

from __future__ import annotations

from pathlib import Path

import click

from crossl_edge.cli.common import echo_json


@click.command("demo")
@click.option(
    "--out",
    "out",
    default="demo-out",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for every output.",
)
@click.option(
    "--encoder",
    default="edge",
    show_default=True,
    help="Encoder to deploy: edge (int8-friendly) or crossl (the paper's).",
)
@click.option("--seed", default=0, show_default=True)
@click.option("--quick", is_flag=True, help="Few epochs: a smoke run in seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo_cmd(out: Path, encoder: str, seed: int, quick: bool, as_json: bool) -> None:
    """Train, evaluate, export, check parity, generate firmware and simulate, on BasicMotions.

    \b
    Example:
      crossl-edge demo --out demo-out
    """
    from crossl_edge.demo import DemoConfig, run_demo

    def say(msg: str) -> None:
        if not as_json:
            click.echo(msg)

    from crossl_edge.errors import CheckFailed

    summary = run_demo(DemoConfig(out=out, encoder=encoder, seed=seed, quick=quick), say=say)
    if as_json:
        echo_json(summary)
    if not summary["passed"]:
        raise CheckFailed("int8 parity failed on the demo bundle; see the parity report above.")
