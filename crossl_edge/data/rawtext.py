"""Checked reading of the raw text tables public HAR datasets ship (columns, numbers, time order,
stuck sensors), and the subject-split rules their loaders share; every fault is one DataError
naming the file.
"""

from __future__ import annotations

import io
import logging
import math
import re
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from crossl_edge.data.presence import STUCK_SECONDS, stuck_runs
from crossl_edge.data.signal import subject_list
from crossl_edge.errors import DataError, UsageError

log = logging.getLogger(__name__)

_LFS = b"version https://git-lfs.github.com/spec/"


def _utf16(raw: bytes) -> bool:
    """A UTF-16 byte-order mark, or ASCII text with a NUL after (or before) every character."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    head = raw[:400]
    return len(head) >= 4 and (head[1::2].count(0) > 0.9 * len(head[1::2])
                               or head[0::2].count(0) > 0.9 * len(head[0::2]))


def read_text(file: Path, *, dataset: str) -> str:
    """The file's text, or a DataError when it cannot be read or is not text at all (a UTF-16
    file, a Git LFS pointer and a zip archive are each named as such)."""
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {file} ({e.strerror or e}); check the path and its "
                        "permissions.") from e
    if raw.startswith(_LFS):
        raise DataError(f"{file} is a Git LFS pointer, not the {dataset} data; fetch the file "
                        "itself (git lfs pull in that repository, or download it directly).")
    if raw[:4] == b"PK\x03\x04":
        raise DataError(f"{file} is a zip archive, not a raw {dataset} file: unzip it and pass "
                        "--data the extracted folder.")
    if _utf16(raw):
        raise DataError(f"{file} is UTF-16 text; a raw {dataset} file is ASCII: convert it "
                        "(iconv -f UTF-16 -t UTF-8) or re-extract the original.")
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
               allow_nan: bool = False, terminator: str = "") -> np.ndarray:
    """A (rows, ``n_columns``) float64 table from a whitespace- or ``delimiter``-separated file.

    ``strip`` characters are removed first (WISDM's trailing ``;``); ``codes`` maps a column's
    text values to numbers (WISDM's activity letters). With ``terminator``, every row ends in it:
    a last row without it was cut mid-number by a partial download and is dropped (logged), a
    row inside the file without it is refused. A file that is not text, has a row of another
    width, a non-numeric field, no rows, or (unless ``allow_nan``) NaN/inf raises a DataError
    naming the file and the line.
    """
    text = read_text(file, dataset=dataset)
    if not text.strip():
        raise DataError(f"{file} is empty; re-extract the {dataset} archive.")
    if terminator:
        text = _cut_last_row(text, file, terminator=terminator)
    for ch in strip:
        text = text.replace(ch, "")
    codes = codes or {}

    def convert(i: int, field: str) -> float:
        f = field.strip()
        return codes[i][f] if i in codes else float(f)

    try:
        converters: dict[int | str, Callable[..., float]] = {  # (s, m=m): m binds each column's map
            i: (lambda s, m=m: m[s.strip()]) for i, m in codes.items()}
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


def _cut_last_row(text: str, file: Path, *, terminator: str) -> str:
    lines = text.rstrip().splitlines()
    bad = [i for i, ln in enumerate(lines) if ln.strip() and not ln.rstrip().endswith(terminator)]
    inner = [i for i in bad if i != len(lines) - 1]
    if inner:
        raise DataError(f"{file}: line {inner[0] + 1} does not end in {terminator!r} like every "
                        "row of the file; it was edited or merged: restore the original.")
    if bad:
        log.warning("%s: the last line does not end in %r (the file was cut mid-row by a partial "
                    "download); that row is dropped", file, terminator)
        lines = lines[:-1]
        if not any(ln.strip() for ln in lines):
            raise DataError(f"{file} holds only a cut row; download the file again.")
    return "\n".join(lines) + "\n"


def check_time(time: np.ndarray, file: Path, *, unit: str, first_row: int = 0) -> None:
    """DataError naming the row where ``time`` steps back (equal stamps are allowed)."""
    back = np.flatnonzero(np.diff(time) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise DataError(f"{file}: time goes back at row {first_row + i + 1} ({time[i - 1]:.0f} -> "
                        f"{time[i]:.0f} {unit}); the rows are out of order: restore the original "
                        "file.")


def stuck_stretches(x: np.ndarray, file: Path, *, sensor: str, hz: float,
                    used: np.ndarray | None = None, strict: bool = False,
                    max_seconds: float = STUCK_SECONDS) -> list[tuple[int, int]]:
    """File rows (start, stop) where every channel of ``x`` (T, C, all the file's rows) reads
    exactly 0 for ``max_seconds`` or more: a stuck or disconnected sensor, absent there. With
    ``strict`` the longest such stretch is a DataError naming its first file row instead."""
    found = stuck_runs(x, hz=hz, used=used, max_seconds=max_seconds)
    if found and strict:
        a, b = max(found, key=lambda r: r[1] - r[0])
        raise DataError(f"{file}: sensor {sensor} reads exactly 0 on every axis for "
                        f"{(b - a) / hz:.1f} s from row {a + 1}; it was stuck or disconnected: "
                        "drop that recording or that sensor (or train without --strict-sensors "
                        "to mark it absent there).")
    return found


def missing_path(root: Path, *, dataset: str, hint: str) -> DataError:
    """The DataError for ``--data`` naming no usable files: a zip archive is told to be
    unzipped, a folder holding only zip archives likewise."""
    if root.is_file() and zipfile.is_zipfile(root):
        return DataError(f"{root} is a zip archive; unzip it and pass --data {hint}.")
    zips = sorted(root.glob("*.zip")) if root.is_dir() else []
    if zips:
        return DataError(f"no {dataset} files under {root}, only the archive {zips[0].name}: "
                         f"unzip it and pass --data {hint}.")
    return DataError(f"no {dataset} files under {root}; pass --data pointing at {hint}.")


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
        if zipfile.is_zipfile(root):
            raise missing_path(root, dataset=dataset, hint=hint)
        raise DataError(f"{root} is not a {dataset} file; pass --data pointing at {hint}.")
    for sub in (*where, "."):
        d = root / sub
        if d.is_dir():
            found = sorted(f for f in d.iterdir() if f.is_file() and re.fullmatch(pattern, f.name))
            if found:
                return found
    raise missing_path(root, dataset=dataset, hint=hint)


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
