"""Helpers shared by the CLI verbs: JSON output, progress bars, option types."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click


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
