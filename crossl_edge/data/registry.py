"""Dataset registry: a name maps to a lazily imported loader `fn(*, path, **options)`, and the
options a user passes are checked against that loader's signature before it runs.
"""

from __future__ import annotations

import importlib
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from crossl_edge.data.windows import Dataset
from crossl_edge.errors import UsageError

# name -> "module:function"; loaders are imported only when used.
_LOADERS: dict[str, str] = {
    "basicmotions": "crossl_edge.data.basicmotions:load_basicmotions",
    "pamap2": "crossl_edge.data.pamap2:load_pamap2",
    "wesad": "crossl_edge.data.wesad:load_wesad",
    "sleepedf": "crossl_edge.data.sleepedf:load_sleepedf",
    "uci-har": "crossl_edge.data.uci_har:load_uci_har",
    "hapt": "crossl_edge.data.hapt:load_hapt",
    "wisdm": "crossl_edge.data.wisdm:load_wisdm",
    "mhealth": "crossl_edge.data.mhealth:load_mhealth",
    "daphnet": "crossl_edge.data.daphnet:load_daphnet",
    "crossl-npz": "crossl_edge.data.crossl_npz:load_crossl_npz",
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


def _kinds(hint: object) -> set[str]:
    """What a parameter's annotation accepts: bool, int, float, str, seq, none or any."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_kinds(a) for a in typing.get_args(hint)))
    if hint is type(None):
        return {"none"}
    if hint in (bool, int, float, str):
        return {hint.__name__}
    if (origin or hint) in (list, tuple, Sequence):
        return {"seq"}
    return {"any"}


def _accepts(kinds: set[str], value: object) -> bool:
    if "any" in kinds:
        return True
    if isinstance(value, bool):
        return "bool" in kinds
    if value is None:
        return "none" in kinds
    if isinstance(value, int):
        return bool(kinds & {"int", "float", "str", "seq"})
    if isinstance(value, float):
        return "float" in kinds or ("int" in kinds and value.is_integer())
    if isinstance(value, str):
        return bool(kinds & {"str", "seq"})
    if isinstance(value, (list, tuple)):
        return "seq" in kinds
    return False


def _finite(name: str, value: object) -> None:
    items = value if isinstance(value, (list, tuple)) else [value]
    for v in items:
        if isinstance(v, float) and not math.isfinite(v):
            raise UsageError(f"option {name}={v!r} is not a finite number; give a real value.")


def check_options(name: str, loader: Callable[..., Dataset], options: Mapping[str, Any]) -> None:
    """UsageError unless every option is a parameter of ``loader`` of an accepted type, and every
    number in it is finite (each loader checks its own ranges)."""
    params = {k: p for k, p in inspect.signature(loader).parameters.items()
              if k != "path" and p.kind == p.KEYWORD_ONLY}
    unknown = sorted(set(options) - set(params))
    if unknown:
        valid = ", ".join(params) or "none"
        raise UsageError(f"unknown option {', '.join(map(repr, unknown))} for dataset {name!r}; "
                         f"valid options: {valid}.")
    try:
        hints = typing.get_type_hints(loader)
    except (NameError, TypeError):  # an unresolvable annotation: skip the type checks
        hints = {}
    for key, value in options.items():
        _finite(key, value)
        kinds = _kinds(hints[key]) if key in hints else {"any"}
        if not _accepts(kinds, value):
            raise UsageError(f"option {key}={value!r} for dataset {name!r} has the wrong type; "
                             f"expected {' or '.join(sorted(kinds))}.")


def load_dataset(
    name: str = DEFAULT_DATASET, *, path: str | None = None, **options: Any
) -> Dataset:
    """Load dataset ``name`` (reading raw files under ``path`` where it needs them)."""
    loader = resolve(name)
    check_options(name, loader, options)
    if name != DEFAULT_DATASET and path is None:
        raise UsageError(f"dataset {name!r} reads files you download yourself; pass --data PATH.")
    return loader(path=path, **options)
