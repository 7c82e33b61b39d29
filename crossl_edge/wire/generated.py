"""Checked-in generated files: write-or-check one file, and the shared `--out/--check` CLI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def sync_file(path: Path, text: str, *, check: bool = False) -> bool:
    """Write ``text`` to ``path`` (or with check=True only compare); True if it was up to date."""
    current = path.read_text() if path.exists() else None
    if not check and current != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return current == text


def generator_main(argv: list[str] | None, *, description: str, default: Path,
                   write: Callable[..., bool], module: str) -> int:
    """`python -m MODULE [--out P] [--check]`: regenerate, or exit 1 when the copy is stale."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=default, help="file to write")
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    if write(args.out, check=args.check) or not args.check:
        return 0
    print(f"{args.out} is stale: run python -m {module}", file=sys.stderr)
    return 1
