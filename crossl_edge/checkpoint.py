"""Torch checkpoint files (the resumable training state, the final model), written atomically and
read with `weights_only=True` (tensors and plain containers only; no pickled code runs).

Their names in a run folder are `crossl_edge.rundir`'s.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from crossl_edge.atomic import write_bytes
from crossl_edge.errors import UsageError


def save(path: str | Path, state: dict[str, Any]) -> None:
    """Serialize ``state`` with torch.save and write it atomically."""
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes(path, buf.getvalue())


def load(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint, turning a missing or corrupt file into a clear error."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} does not exist; train a run first with `crossl-edge train`.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise UsageError(
            f"{path} is not a readable checkpoint ({type(e).__name__}); "
            "retrain or restore the file."
        ) from e
