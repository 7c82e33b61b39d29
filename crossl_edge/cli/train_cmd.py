"""`crossl-edge train` and `crossl-edge evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from crossl_edge.cli.common import echo_json, progress


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
    default="basicmotions",
    show_default=True,
    help="basicmotions, pamap2, wesad, sleepedf, crossl-npz or npz.",
)
@click.option("--data", "data_path", default=None, help="Folder/file of the raw dataset.")
@click.option(
    "--data-option",
    "data_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Loader option, e.g. window=256 or test_subjects='[\"105\"]' (repeatable).",
)
@click.option("--modalities", default=None, help="Comma-separated subset, e.g. acc,gyro.")
@click.option(
    "--mode",
    type=click.Choice(["ssl", "fine", "sup"]),
    default="fine",
    show_default=True,
    help="ssl: frozen backbone; fine: fine-tune; sup: no pretraining.",
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
@click.option("--pretrain-epochs", default=50, show_default=True)
@click.option("--epochs", default=50, show_default=True, help="Downstream epochs.")
@click.option("--patience", default=5, show_default=True, help="Early-stopping patience.")
@click.option("--batch-size", default=8, show_default=True)
@click.option("--lr", default=1e-3, show_default=True, help="Downstream learning rate.")
@click.option("--pretrain-lr", default=1e-3, show_default=True)
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
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
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
    as_json: bool,
    resume: bool,
    overwrite: bool,
    **kw: object,
) -> None:
    """Pretrain CroSSL and train the downstream head; evaluate on the test split.

    \b
    Example:
      crossl-edge train --out runs/bm --mode fine --encoder edge
      torchrun --nproc-per-node 2 -m crossl_edge.cli train --out runs/ddp   # DDP
    """
    from crossl_edge.evaluate import format_table
    from crossl_edge.outputs import removed_on_failure
    from crossl_edge.train.checkpoint import CHECKPOINT
    from crossl_edge.train.config import TrainConfig
    from crossl_edge.train.run import train_run

    cfg = TrainConfig(
        dataset=dataset,
        data_path=data_path,
        data_options=_parse_options(data_options),
        modalities=tuple(modalities.split(",")) if modalities else None,
        **kw,
    )  # type: ignore[arg-type]
    import os

    main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 prints
    total = cfg.epochs + (0 if cfg.mode == "sup" else cfg.pretrain_epochs)
    with progress("training", total, enabled=not as_json and main_rank) as advance:

        def on_epoch(phase: str, epoch: int, logs: dict[str, float]) -> None:
            advance(1, description=phase, info=f"val {logs['val_loss']:.3f}")

        with removed_on_failure(out, unless=out / CHECKPOINT):  # no half-written run left
            result = train_run(cfg, out, resume=resume, overwrite=overwrite,
                               callbacks=[on_epoch])
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
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate_cmd(run: Path, data: str | None, as_json: bool) -> None:
    """Accuracy and macro-F1 of a run on its test split, for every subset of modalities.

    \b
    Example:
      crossl-edge evaluate runs/bm --json
    """
    from crossl_edge.evaluate import evaluate_run, format_table

    result = evaluate_run(run, data=data)
    if as_json:
        echo_json(result)
    else:
        click.echo(format_table(result))
