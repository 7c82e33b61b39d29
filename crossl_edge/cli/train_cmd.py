"""`crossl-edge train` and `crossl-edge evaluate`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from crossl_edge.cli.common import echo_json
from crossl_edge.data.registry import DEFAULT_DATASET, available
from crossl_edge.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from crossl_edge.train.progress import Reporter


@contextmanager
def _torch_needed(verb: str) -> Iterator[None]:
    """Turn a missing PyTorch into one sentence (exit 2) instead of an import traceback."""
    try:
        yield
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "torch":
            raise
        raise UsageError(f"`crossl-edge {verb}` needs PyTorch, which is not installed; install "
                         "the train extra: pip install 'crossl-edge[train]'.") from None


def _parse_options(pairs: tuple[str, ...]) -> dict[str, object]:
    out: dict[str, object] = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--data-option")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


class _BarReporter:
    """The rich bars on a terminal: one over all epochs (loss, ETA), one over the epoch's steps."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console
        self.bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
        )

    def __enter__(self) -> _BarReporter:
        self.bar.__enter__()
        self.epochs = self.bar.add_task("training", total=None, info="")
        self.steps = self.bar.add_task("steps", total=None, info="")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def plan(self, phases: list[tuple[str, int]], *, chosen: tuple[str, ...] = ()) -> None:
        for sentence in chosen:
            self.bar.console.print(sentence, highlight=False)
        self.bar.update(self.epochs, total=sum(n for _, n in phases))

    def step(self, phase: str, epoch: int, step: int, steps: int) -> None:
        self.bar.update(self.steps, completed=step, total=steps,
                        description=f"{phase} epoch {epoch + 1}")

    def epoch(self, phase: str, epoch: int, logs: dict[str, float]) -> None:
        info = f"loss {logs['train_loss']:.3f} val {logs['val_loss']:.3f} " \
               f"{logs['windows_per_s']:,.0f} windows/s"
        self.bar.update(self.epochs, advance=1, description=phase, info=info)


@contextmanager
def _reporter(*, enabled: bool, to_stderr: bool) -> Iterator[Reporter]:
    """A rich bar (epochs and steps) on a terminal; plain lines per epoch otherwise."""
    from crossl_edge.train.progress import LineReporter, Reporter

    if not enabled:
        yield Reporter()
        return
    stream = sys.stderr if to_stderr else sys.stdout
    if stream.isatty():
        try:
            from rich.console import Console
        except ImportError:  # rich absent: plain lines
            pass
        else:
            with _BarReporter(Console(file=stream)) as bar:
                yield cast("Reporter", bar)  # Reporter's three methods, duck-typed
            return
    yield LineReporter(lambda line: click.echo(line, err=to_stderr))


@click.command("train")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory to create (checkpoints, model.pt, metrics.json).",
)
@click.option(
    "--dataset",
    default=DEFAULT_DATASET,
    show_default=True,
    help=f"One of: {', '.join(available())}.",
)
@click.option("--data", "data_path", default=None, help="Folder/file of the raw dataset.")
@click.option(
    "--data-option",
    "data_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Loader option, e.g. window=256 or test_subjects='[\"105\"]' (repeatable).",
)
@click.option(
    "--modalities", default=None,
    help="Comma-separated subset, e.g. acc,gyro; chosen before loading, so windows are kept "
    "wherever one of these streams arrived.",
)
@click.option(
    "--strict-sensors", is_flag=True,
    help="Refuse data where a sensor is stuck, NaN or missing, as before, instead of training "
    "with it absent in those windows.",
)
@click.option(
    "--mode",
    type=click.Choice(["ssl", "fine", "sup"]),
    default="fine",
    show_default=True,
    help="ssl: frozen encoders; fine: fine-tune; sup: no pretraining.",
)
@click.option(
    "--encoder",
    default="crossl",
    show_default=True,
    help="Encoder from the registry: crossl (paper) or edge (int8-friendly).",
)
@click.option(
    "--masking", type=click.Choice(["spatial", "random"]), default="spatial", show_default=True
)
@click.option("--coverage", default=0.9, show_default=True, help="Keep probability per latent.")
@click.option(
    "--pretrain-epochs", type=int, default=None,
    help="Default: 50 up to 2,000 training windows, else ~600 optimiser steps.",
)
@click.option(
    "--epochs", type=int, default=None,
    help="Downstream epochs. Default: 50 up to 2,000 windows, else ~600 optimiser steps.",
)
@click.option(
    "--patience", type=int, default=None,
    help="Early-stopping patience. Default: 5 up to 2,000 windows, else 3.",
)
@click.option(
    "--batch-size", type=int, default=None,
    help="Default: 8 up to 1,131 windows, else the power of two nearest windows/100 (at most 256).",
)
@click.option("--lr", default=1e-3, show_default=True, help="Downstream learning rate.")
@click.option("--pretrain-lr", default=1e-3, show_default=True)
@click.option(
    "--lr-schedule", type=click.Choice(["auto", "constant", "cosine"]), default="auto",
    show_default=True, help="auto: constant up to 2,000 windows, else warm-up + cosine decay.",
)
@click.option(
    "--label-fraction",
    default=1.0,
    show_default=True,
    help="Fraction of labelled windows for the head (stratified, seeded).",
)
@click.option(
    "--modality-dropout",
    default=0.1,
    show_default=True,
    help="Probability of dropping a modality per window during downstream training.",
)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--ssl-head-masking",
    default=0.8,
    show_default=True,
    help="ssl mode: share of training windows given a random subset of modalities.",
)
@click.option(
    "--ssl-train-aggregator/--ssl-freeze-aggregator",
    default=True,
    show_default=True,
    help="ssl mode: train the phone-side aggregator with the head on masked latents of the "
    "frozen encoders, or freeze it too (the paper's linear evaluation).",
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option(
    "--precision", type=click.Choice(["auto", "bf16", "fp32"]), default="auto",
    show_default=True, help="auto: bf16 autocast on CUDA, float32 on the CPU.",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def train(
    out: Path,
    dataset: str,
    data_path: str | None,
    data_options: tuple[str, ...],
    modalities: str | None,
    strict_sensors: bool,
    as_json: bool,
    resume: bool,
    overwrite: bool,
    **kw: Any,
) -> None:
    """Pretrain CroSSL and train the downstream head; evaluate on the test split.

    \b
    Example:
      crossl-edge train --out runs/bm --mode fine --encoder edge
      torchrun --nproc-per-node 2 -m crossl_edge.cli train --out runs/ddp   # DDP
    """
    import inspect

    from crossl_edge.data.registry import resolve
    from crossl_edge.outputs import removed_on_failure
    from crossl_edge.rundir import CHECKPOINT_PT as CHECKPOINT

    with _torch_needed("train"):
        from crossl_edge.evaluate import format_table
        from crossl_edge.train.config import TrainConfig
        from crossl_edge.train.run import train_run

    options = _parse_options(data_options)
    if strict_sensors and "strict_sensors" in inspect.signature(resolve(dataset)).parameters:
        options["strict_sensors"] = True  # a loader without it never marks a sensor absent
    cfg = TrainConfig(
        dataset=dataset,
        data_path=data_path,
        data_options=options,
        modalities=tuple(m.strip() for m in modalities.split(",") if m.strip())
        if modalities else None,
        **kw,
    )
    import os

    main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 prints
    with _reporter(enabled=main_rank, to_stderr=as_json) as reporter, \
            removed_on_failure(out, unless=out / CHECKPOINT):  # no half-written run left
        result = train_run(cfg, out, resume=resume, overwrite=overwrite, reporter=reporter)
    if not main_rank:
        return
    if as_json:
        echo_json(result.metrics)
        return
    click.echo(f"run written to {result.run_dir}")
    click.echo(format_table(result.metrics))


@click.command("evaluate")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--data", default=None, help="Evaluate on this data path instead of the run's.")
@click.option("--devices", default=None, metavar="DEV=MOD,MOD;... | FILE.json | BUNDLE",
              help="Also score every subset of devices (a device's modalities present or "
              "absent together): a map like waist=body_acc,gyro, or a bundle folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate_cmd(run: Path, data: str | None, as_json: bool, devices: str | None = None) -> None:
    """Accuracy and macro-F1 of a run on its test split, for every subset of modalities, and
    beside each the windows where exactly that subset arrived (sensors absent in the data).

    \b
    Example:
      crossl-edge evaluate runs/bm --json
      crossl-edge evaluate runs/uci --devices waist=body_acc,gyro;pocket=total_acc
    """
    with _torch_needed("evaluate"):
        from crossl_edge.evaluate import evaluate_run, format_table

    result = evaluate_run(run, data=data, devices=devices)
    if as_json:
        echo_json(result)
    else:
        click.echo(format_table(result))
