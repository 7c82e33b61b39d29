"""Checked reading of the raw text tables public HAR datasets ship (columns, numbers, time order,
stuck sensors), and the subject-split rules their loaders share; every fault is one DataError
naming the file.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from crossl_edge.data.signal import runs, subject_list
from crossl_edge.errors import DataError, UsageError

STUCK_SECONDS = 10.0  # all axes exactly 0 for this long = a stuck or disconnected sensor


def read_text(file: Path, *, dataset: str) -> str:
    """The file's text, or a DataError when it cannot be read or is not text at all."""
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {file} ({e.strerror or e}); check the path and its "
                        "permissions.") from e
    try:
        if b"\x00" in raw:
            raise UnicodeDecodeError("ascii", raw, 0, 1, "NUL byte")
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{file} is not a text file (binary data); it is not a raw {dataset} "
                        "file: re-extract the archive.") from e


def _fields(line: str, delimiter: str | None) -> list[str]:
    return line.split(delimiter) if delimiter else line.split()


def _locate_fault(lines: list[str], *, file: Path, n_columns: int, delimiter: str | None,
                  convert: Callable[[int, str], float], dataset: str) -> DataError:
    """The first line that is not ``n_columns`` numbers, as a DataError (error path only)."""
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = _fields(line, delimiter)
        if len(fields) != n_columns:
            return DataError(f"{file} has {len(fields)} columns at line {no}, expected "
                             f"{n_columns}; it is not a raw {dataset} file or it is truncated.")
        for i, f in enumerate(fields):
            try:
                convert(i, f)
            except (ValueError, KeyError):
                return DataError(f"{file}: line {no} column {i + 1} is {f.strip()[:20]!r}, not a "
                                 f"number; it is not a raw {dataset} file.")
    return DataError(f"{file} cannot be parsed as {n_columns} numeric columns; it is not a raw "
                     f"{dataset} file.")


def read_table(file: Path, *, n_columns: int, dataset: str, delimiter: str | None = None,
               strip: str = "", codes: dict[int, dict[str, float]] | None = None,
               allow_nan: bool = False) -> np.ndarray:
    """A (rows, ``n_columns``) float64 table from a whitespace- or ``delimiter``-separated file.

    ``strip`` characters are removed first (WISDM's trailing ``;``); ``codes`` maps a column's
    text values to numbers (WISDM's activity letters). A file that is not text, has a row of
    another width, a non-numeric field, no rows, or (unless ``allow_nan``) NaN/inf raises a
    DataError naming the file and the line.
    """
    text = read_text(file, dataset=dataset)
    if not text.strip():
        raise DataError(f"{file} is empty; re-extract the {dataset} archive.")
    for ch in strip:
        text = text.replace(ch, "")
    codes = codes or {}

    def convert(i: int, field: str) -> float:
        f = field.strip()
        return codes[i][f] if i in codes else float(f)

    try:
        converters = {i: (lambda s, m=m: m[s.strip()]) for i, m in codes.items()}
        with warnings.catch_warnings():  # "input contained no data": reported below instead
            warnings.simplefilter("ignore", UserWarning)
            arr = np.loadtxt(io.StringIO(text), dtype=np.float64, delimiter=delimiter, ndmin=2,
                             converters=converters or None)
    except (ValueError, KeyError, IndexError):
        raise _locate_fault(text.splitlines(), file=file, n_columns=n_columns, delimiter=delimiter,
                            convert=convert, dataset=dataset) from None
    if arr.size == 0:
        raise DataError(f"{file} holds no rows; re-extract the {dataset} archive.")
    if arr.shape[1] != n_columns:
        raise DataError(f"{file} has {arr.shape[1]} columns, expected {n_columns}; it is not a "
                        f"raw {dataset} file.")
    if not allow_nan and not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise DataError(f"{file}: row {row + 1} holds NaN or inf; a raw {dataset} file has "
                        "none: re-extract it.")
    return arr


def check_time(time: np.ndarray, file: Path, *, unit: str, first_row: int = 0) -> None:
    """DataError naming the row where ``time`` steps back (equal stamps are allowed)."""
    back = np.flatnonzero(np.diff(time) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise DataError(f"{file}: time goes back at row {first_row + i + 1} ({time[i - 1]:.0f} -> "
                        f"{time[i]:.0f} {unit}); the rows are out of order: restore the original "
                        "file.")


def check_not_stuck(x: np.ndarray, file: Path, *, sensor: str, hz: float,
                    max_seconds: float = STUCK_SECONDS) -> None:
    """DataError when every channel of ``x`` (T, C) reads exactly 0 for ``max_seconds`` or more
    in a row: a sensor that is stuck or disconnected (real motion sensors are never exactly 0)."""
    zero = ~np.any(x != 0, axis=1)
    if not zero.any():
        return
    longest = max(((b - a, a) for a, b, v in runs(zero) if v), default=(0, 0))
    if longest[0] >= max(2, math.ceil(max_seconds * hz)):
        raise DataError(f"{file}: sensor {sensor} reads exactly 0 on every axis for "
                        f"{longest[0] / hz:.1f} s from row {longest[1] + 1}; it was stuck or "
                        "disconnected: drop that recording or that sensor.")


def find_files(path: str | Path, pattern: str, *, dataset: str, where: Sequence[str],
               hint: str) -> list[Path]:
    """Files whose names fully match ``pattern`` in ``path`` or ``path/<where...>``, sorted by
    name; a DataError telling what ``--data`` should name when there are none."""
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root} does not exist; pass --data pointing at {hint}.")
    if root.is_file():
        if re.fullmatch(pattern, root.name):
            return [root]
        raise DataError(f"{root} is not a {dataset} file; pass --data pointing at {hint}.")
    for sub in (*where, "."):
        d = root / sub
        if d.is_dir():
            found = sorted(f for f in d.iterdir() if f.is_file() and re.fullmatch(pattern, f.name))
            if found:
                return found
    raise DataError(f"no {dataset} files under {root}; pass --data pointing at {hint}.")


def check_fraction(name: str, value: float, *, low: float = 0.0, high: float = 1.0) -> float:
    """``value`` as a float strictly between ``low`` and ``high``, or a UsageError."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and low < value < high):
        raise UsageError(f"option {name}={value!r} must be a number between {low:g} and {high:g} "
                         "(exclusive).")
    return float(value)


def check_number(name: str, value: float, *, minimum: float, integer: bool = False) -> float:
    """``value`` as a finite number >= ``minimum`` (an int when ``integer``), or a UsageError."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if not (ok and math.isfinite(value) and value >= minimum):
        kind = "an integer" if integer else "a finite number"
        raise UsageError(f"option {name}={value!r} must be {kind} >= {minimum:g}.")
    return int(value) if integer else float(value)


def split_subjects(present: Sequence[str], *, test_subjects: object, test_fraction: float,
                   default: Sequence[str] = ()) -> list[str]:
    """Test subjects: ``test_subjects`` if given (one subject = leave-one-subject-out), else
    ``default`` where present (an official split), else the last ``test_fraction`` of
    ``present`` (at least one subject, never all)."""
    wanted = subject_list(test_subjects)  # type: ignore[arg-type]
    if wanted:
        return wanted
    official = [s for s in default if s in present]
    if official and len(official) < len(present):
        return official
    if len(present) < 2:
        raise DataError(f"only subject {', '.join(present) or 'none'} has windows; a "
                        "subject-disjoint split needs two or more subjects.")
    k = min(len(present) - 1, max(1, round(test_fraction * len(present))))
    return list(present[-k:])
