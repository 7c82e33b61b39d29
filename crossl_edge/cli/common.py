"""Helpers shared by the CLI verbs: JSON output, progress bars, option checks."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from crossl_edge.errors import UsageError


def echo_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (the machine-readable result of a verb)."""
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


@contextmanager
def export_progress(*, stdout_tty: bool | None = None) -> Iterator[Any]:
    """A callback for export's progress events: a live rich display on stderr when stdout is a
    terminal (plan sentences printed above it), else one plain line per event on stderr, so
    stdout stays the verb's result (one JSON document with --json)."""
    from crossl_edge.export.progress import Event, format_line
    from crossl_edge.tables import format_duration

    tty = sys.stdout.isatty() if stdout_tty is None else stdout_tty
    try:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    except ImportError:
        tty = False
    if not tty:
        def line(e: Event) -> None:
            click.echo(format_line(e), err=True)
        yield line
        return
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
        TextColumn("{task.fields[left]}"), console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task("export", total=None, info="", left="")

        def live(e: Event) -> None:
            if e.stage == "plan":
                bar.console.print(e.message, highlight=False)
                return
            left = "" if e.eta_s is None else f"~{format_duration(e.eta_s)} left"
            bar.update(task, completed=e.done, total=e.total or None, left=left,
                       description=f"{e.modality or 'bundle'} {e.stage}", info=e.message)

        yield live


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
