"""Monocypher (the nodes' ChaCha20-Poly1305) from the tarball or folder the user names: --monocypher
or $CROSSL_MONOCYPHER_SRC, unpacked once into the cache; nothing else is searched, nothing copied.
"""

from __future__ import annotations

import os
from pathlib import Path

from crossl_edge.errors import UsageError
from crossl_edge.firmware_bridge.tflm_build import cache_root, source_hash, unpack_once

ENV_SOURCE = "CROSSL_MONOCYPHER_SRC"
MARKER = "src/monocypher.c"


def _src_dir(root: Path) -> Path | None:
    for cand in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        if (cand / MARKER).is_file():
            return cand / "src"
        if (cand / "monocypher.c").is_file():
            return cand
    return None


def monocypher_source(explicit: str | Path | None = None) -> Path:
    """The folder holding monocypher.c and monocypher.h (Monocypher 4.x), from ``explicit`` or
    $CROSSL_MONOCYPHER_SRC (a release tarball or an unpacked tree)."""
    given, what = (explicit, "--monocypher") if explicit else (os.environ.get(ENV_SOURCE),
                                                                 ENV_SOURCE)
    if not given:
        raise UsageError(f"no Monocypher source given: set {ENV_SOURCE} (or pass --monocypher) "
                         "to a monocypher-4.0.3 tarball or source folder.")
    src = Path(given).expanduser()
    if not src.exists():
        raise UsageError(f"{what} {src} does not exist; pass a Monocypher tarball or folder.")
    if src.is_dir():
        found = _src_dir(src)
        if found is None:
            raise UsageError(f"{src} holds no {MARKER}; pass a Monocypher source folder.")
        return found
    dest = cache_root() / "monocypher" / f"src-{source_hash(src)[:16]}"
    unpack_once(src, dest, what="a Monocypher tarball")
    found = _src_dir(dest)
    if found is None:
        raise UsageError(f"{src} holds no {MARKER}; pass a Monocypher release tarball.")
    return found
