"""Network key files: one 32-byte key as a hex line, written atomically with mode 0600.

`crossl-edge keys new` writes one; `serve --key-file` and `firmware --key-file` read it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path

from crossl_edge.errors import UsageError
from crossl_edge.wire.secure import KEY_SIZE, NetworkKey

log = logging.getLogger(__name__)

KEY_PREFIX = "crossl-net-key-v1:"
_HEADER = ("# crossl-edge network key: every node and the phone of one network share it.\n"
           "# Keep it secret (mode 0600); never commit it. `crossl-edge keys new` makes one.\n")


def new_key() -> NetworkKey:
    """A fresh random key from the operating system's generator."""
    return NetworkKey(os.urandom(KEY_SIZE))


def write_key_file(path: str | Path, key: NetworkKey, *, force: bool = False) -> Path:
    """Write ``key`` to ``path`` (mode 0600, atomically); refuse to replace a file unless
    ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to replace it (nodes built with the old "
                         "key then stop being accepted).")
    if path.is_dir():
        raise UsageError(f"{path} is a folder; name a key file.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise UsageError(f"cannot write {path} ({e.strerror}); check the path.") from e
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{_HEADER}{KEY_PREFIX}{key.key.hex()}\n")
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)           # fails if someone created it meanwhile: never clobber
            os.unlink(tmp)
    except FileExistsError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise UsageError(f"{path} exists; pass --force to replace it.") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def read_key_file(path: str | Path) -> NetworkKey:
    """The key in ``path``; a file others may read is used with a warning."""
    path = Path(path)
    try:
        text = path.read_text()
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read key file {path} ({getattr(e, 'strerror', None) or e}); "
                         "make one with `crossl-edge keys new --out FILE`.") from e
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    hexkey = lines[0][len(KEY_PREFIX):] if len(lines) == 1 and lines[0].startswith(KEY_PREFIX) \
        else ""
    try:
        raw = bytes.fromhex(hexkey)
    except ValueError:
        raw = b""
    if len(raw) != KEY_SIZE:
        raise UsageError(f"{path} is not a crossl-edge key file (one line "
                         f"{KEY_PREFIX}<64 hex digits>); make one with `crossl-edge keys new`.")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("key file %s is readable by other users; chmod 600 it", path)
    return NetworkKey(raw)
