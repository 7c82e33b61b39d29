"""Dataset registry: a name maps to a lazily imported loader `fn(*, path, **options)`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from crossl_edge.data.windows import Dataset
from crossl_edge.errors import UsageError

# name -> "module:function"; loaders are imported only when used.
_LOADERS: dict[str, str] = {
    "basicmotions": "crossl_edge.data.basicmotions:load_basicmotions",
    "pamap2": "crossl_edge.data.pamap2:load_pamap2",
    "wesad": "crossl_edge.data.wesad:load_wesad",
    "sleepedf": "crossl_edge.data.sleepedf:load_sleepedf",
    "crossl-npz": "crossl_edge.data.npz:load_crossl_npz",
    "npz": "crossl_edge.data.npz:load_npz",
}

DEFAULT_DATASET = "basicmotions"


def available() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return sorted(_LOADERS)


def resolve(name: str) -> Callable[..., Dataset]:
    if name not in _LOADERS:
        raise UsageError(f"unknown dataset {name!r}; choose one of: {', '.join(available())}.")
    module, fn = _LOADERS[name].split(":")
    return getattr(importlib.import_module(module), fn)


def load_dataset(
    name: str = DEFAULT_DATASET, *, path: str | None = None, **options: Any
) -> Dataset:
    """Load dataset ``name`` (reading raw files under ``path`` where it needs them)."""
    loader = resolve(name)
    if name != DEFAULT_DATASET and path is None:
        raise UsageError(f"dataset {name!r} reads files you download yourself; pass --data PATH.")
    return loader(path=path, **options)
