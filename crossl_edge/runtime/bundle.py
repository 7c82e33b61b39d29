"""Open a bundle for running it: the manifest, its hashes, and every model's shapes against it.

Every verb that runs a bundle's models (serve, simulate, bench, parity, firmware) opens it here.
"""

from __future__ import annotations

from pathlib import Path

from crossl_edge.manifest import Manifest, load_manifest
from crossl_edge.runtime.model_shapes import check_models


def open_bundle(bundle: str | Path | Manifest) -> Manifest:
    """The verified manifest of BUNDLE (fingerprint, sha256 of every file, model shapes); a
    Manifest passes through unchanged (already opened by the caller)."""
    if isinstance(bundle, Manifest):
        return bundle
    m = load_manifest(bundle)
    check_models(m)
    return m
