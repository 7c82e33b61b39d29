"""Where a verb may write: an --out never is, contains or lies inside an input; an existing folder
is replaced only when its marker says it is a previous output of the same kind; disk faults
(ENOSPC, EROFS, EACCES) become one sentence; leftovers of killed runs are cleaned.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from crossl_edge.atomic import atomic_dir, write_json
from crossl_edge.errors import CheckFailed, CrosslError, UsageError

log = logging.getLogger(__name__)

MARKER = ".crossl-edge-output.json"
KINDS = ("run", "bundle", "firmware", "report", "bench", "simulate", "demo")
# Outputs written before markers existed are still recognised by their own signature file.
_SIGNATURES: dict[str, tuple[str, dict[str, Any]]] = {
    "run": ("run.json", {"format": "crossl-edge-run"}),
    "bundle": ("manifest.json", {"format": "crossl-edge-bundle"}),
    "firmware": ("resources.json", {"assumptions": None, "bundle_fingerprint": None})}
Inputs = Iterable[str | Path | None]
PROBE_BYTES = 4096


def _resolved(p: str | Path) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(p)))).resolve()


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_not_input(out: str | Path, *, inputs: Inputs, flag: str = "--out") -> None:
    """Refuse an output that is, contains, or lies inside one of ``inputs``."""
    o = _resolved(out)
    for i in inputs:
        if i is None or str(i) == "":
            continue
        p = _resolved(i)
        if _inside(o, p) or _inside(p, o):
            how = "is" if o == p else ("lies inside" if _inside(o, p) else "contains")
            raise UsageError(f"{flag} {out} {how} the input {i}; writing there would destroy it, "
                             f"choose another {flag}.")


def output_kind(path: str | Path) -> str | None:
    """The kind of crossl-edge output in folder ``path`` (from its marker), else None."""
    path = Path(path)
    try:
        obj = json.loads((path / MARKER).read_text())
        if isinstance(obj, dict) and obj.get("kind") in KINDS:
            return str(obj["kind"])
    except (OSError, ValueError):
        pass
    for kind, (name, want) in _SIGNATURES.items():
        try:
            obj = json.loads((path / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(obj, dict) and all(k in obj and v in (None, obj[k])
                                         for k, v in want.items()):
            return kind
    return None


def write_marker(path: str | Path, kind: str) -> None:
    """Mark folder ``path`` as a crossl-edge output of ``kind`` (deterministic content)."""
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    write_json(Path(path) / MARKER, {"kind": kind, "written_by": "crossl-edge"})


def clean_stale(out: str | Path) -> list[Path]:
    """Remove hidden temp siblings (``.NAME.*.tmp``, ``.NAME.old``) left by a killed run."""
    out = Path(out)
    parent = out.parent
    if not parent.is_dir():
        return []
    removed = []
    for p in parent.glob(f".{glob_escape(out.name)}.*"):
        if not (p.name.endswith(".tmp") or p.name == f".{out.name}.old"):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
        log.info("removed %s left by an interrupted run", p)
        removed.append(p)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def check_writable(folder: str | Path, *, flag: str = "--out") -> None:
    """Create and remove a probe file in ``folder`` (created if needed); a fault is one sentence."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".crossl-edge-probe.", suffix=".tmp")
        try:
            os.write(fd, b"\0" * PROBE_BYTES)  # an empty file fits even on a full disk
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        raise disk_error(e, folder, flag=flag) from e


def _first_existing(p: Path) -> Path:
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def prepare_output(out: str | Path, *, kind: str, inputs: Inputs = (), replace: bool = True,
                   flag: str = "--out") -> Path:
    """Check folder ``out`` before long work: not an input, replaceable, writable; clean leftovers.

    ``out`` may be missing, empty, or a previous output of ``kind`` (replaced only if
    ``replace``); anything else is refused whatever the flags.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    out = Path(out)
    check_not_input(out, inputs=inputs, flag=flag)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise UsageError(f"{flag} {out} is a file, not a folder; choose another {flag}.")
        if any(True for _ in out.iterdir()):
            found = output_kind(out)
            if found != kind:
                what = f"a crossl-edge {found} output" if found else "not a crossl-edge output"
                raise UsageError(f"{flag} {out} already exists and is {what}; it is only replaced "
                                 f"when it is a previous {kind} output, choose another {flag}.")
            if not replace:
                raise UsageError(f"{flag} {out} already holds a {kind}; choose another {flag}.")
    clean_stale(out)
    check_writable(_first_existing(out), flag=flag)
    return out


def prepare_file(out: str | Path, *, inputs: Inputs = (), flag: str = "--out") -> Path:
    """Check file output ``out`` before long work: not an input, not a folder, writable."""
    out = Path(out)
    check_not_input(out, inputs=inputs, flag=flag)
    if out.is_dir():
        raise UsageError(f"{flag} {out} is a folder; give a file name.")
    if out.exists() and not os.access(out, os.W_OK):
        raise UsageError(f"{flag} {out} is not writable; choose another {flag}.")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.exists():
        parent = _first_existing(parent)
    check_writable(parent, flag=flag)
    clean_stale(out)
    return out


@contextlib.contextmanager
def output_dir(out: str | Path, *, kind: str, inputs: Inputs = (),
               replace: bool = True) -> Iterator[Path]:
    """Prepare ``out``, yield a temp folder, then mark it and swap it in (nothing left on error)."""
    out = prepare_output(out, kind=kind, inputs=inputs, replace=replace)
    try:
        with atomic_dir(out) as tmp:
            yield tmp
            write_marker(tmp, kind)
    except OSError as e:
        if e.errno in DISK_ERRNOS:
            raise disk_error(e, out) from e
        raise


@contextlib.contextmanager
def removed_on_failure(out: str | Path, *, unless: str | Path | None = None) -> Iterator[None]:
    """Remove ``out`` (folder or file) if the block fails and ``out`` did not exist before it
    (kept when ``unless`` exists by then, e.g. a checkpoint a resume can continue from)."""
    out = Path(out)
    existed = out.exists()
    try:
        yield
    except BaseException:
        if not existed and out.exists() and not (unless and Path(unless).exists()):
            if out.is_dir():
                shutil.rmtree(out, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    out.unlink()
            log.info("removed the partial output %s", out)
        raise


DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}


def disk_error(e: OSError, path: str | Path | None = None, *, flag: str = "--out") -> CrosslError:
    """One sentence for a disk fault: full disk (exit 1), read-only or no permission (exit 2)."""
    where = e.filename or path or "the output"
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return CheckFailed(f"no space left on the device while writing {where}; free some space "
                           f"or choose another {flag} (nothing half-written was kept).")
    if e.errno == errno.EROFS:
        return UsageError(f"{where} is on a read-only file system; choose another {flag}.")
    if e.errno in (errno.EACCES, errno.EPERM):
        return UsageError(f"no permission to use {where}; fix its permissions or choose another "
                          f"{flag}.")
    return CheckFailed(f"cannot write {where} ({e.strerror or e}); check the disk and {flag}.")
