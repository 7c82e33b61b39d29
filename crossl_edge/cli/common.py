"""Helpers shared by the CLI verbs: JSON output, progress bars, option checks."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from crossl_edge.errors import UsageError


def echo_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (the machine-readable result of a verb)."""
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


@contextmanager
def progress(description: str, total: int | None, *, enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar on stderr (a no-op advance function when disabled or rich is absent)."""
    try:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    except ImportError:
        enabled = False
    if not enabled:
        yield lambda *a, **k: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total, info="")

        def advance(n: int = 1, *, info: str = "", description: str | None = None) -> None:
            kw = {"description": description} if description else {}
            bar.update(task, advance=n, info=info, **kw)

        yield advance


def check_deadline(deadline: float, *, flag: str = "--deadline") -> float:
    """A deadline must be a positive, finite number of seconds (NaN and inf are refused)."""
    if not math.isfinite(deadline) or deadline <= 0:
        raise UsageError(f"{flag} must be a positive, finite number of seconds, not {deadline}.")
    return deadline


def check_rates(values: tuple[float, ...], flag: str, *,
                upper: float | None = 1.0) -> tuple[float, ...]:
    """At least one finite value, each in [0, upper] (no upper bound when ``upper`` is None)."""
    if not values:
        raise UsageError(f"{flag} needs at least one value, e.g. 0,0.1,0.3.")
    for v in values:
        if not math.isfinite(v) or v < 0 or (upper is not None and v > upper):
            rng = f"0..{upper:g}" if upper is not None else "0 or more"
            raise UsageError(f"{flag} values must be finite numbers in {rng}, not {v}.")
    return values


def check_outage(outage: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Each outage a-b must satisfy 0 <= a < b <= 1 (fractions of the run)."""
    for name, (a, b) in outage.items():
        if not (math.isfinite(a) and math.isfinite(b) and 0 <= a < b <= 1):
            raise UsageError(f"--outage {name}:{a:g}-{b:g} must run forwards within the run "
                             "(0 <= start < end <= 1), e.g. gyro:0.2-0.6.")
    return outage
