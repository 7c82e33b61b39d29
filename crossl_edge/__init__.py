"""crossl-edge: train CroSSL, export per-modality int8 encoders, fuse latents on the phone.

Each CLI verb is one library call, importable here as `run_<verb>` (loaded on first use, so
`import crossl_edge` stays light). `export/` and `firmware_bridge/` sit at the repository's top
level; committed relative symlinks `crossl_edge/export` and `crossl_edge/firmware_bridge` make
them `crossl_edge.export` / `crossl_edge.firmware_bridge` for Python and every static tool.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# run_<verb> -> module:function; the one library function behind each CLI verb.
VERB_FUNCTIONS = {
    "run_train": "crossl_edge.train.run:train_run",
    "run_evaluate": "crossl_edge.evaluate:evaluate_run",
    "run_export": "crossl_edge.export.bundle:export_bundle",
    "run_parity": "crossl_edge.export.parity:run_parity",
    "run_firmware": "crossl_edge.firmware_bridge.firmware:generate_firmware",
    "run_bench": "crossl_edge.bench.bench:run_bench",
    "run_serve": "crossl_edge.runtime.serve:serve",
    "run_simulate": "crossl_edge.sim.simulate:simulate",
    "run_plan": "crossl_edge.plan:run_plan",
    "run_demo": "crossl_edge.demo:run_demo",
}
__all__ = ["__version__", *VERB_FUNCTIONS]


def __getattr__(name: str) -> Any:
    target = VERB_FUNCTIONS.get(name)
    if target is None:
        raise AttributeError(f"module 'crossl_edge' has no attribute {name!r}")
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
