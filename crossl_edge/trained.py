"""A run folder's trained model: model.pt read back into a CroSSL module, checked against run.json.

Apart from `rundir` (names and run.json, no torch) so that readers of a run's data need no torch.
"""

from __future__ import annotations

from pathlib import Path

from crossl_edge import checkpoint
from crossl_edge.errors import UsageError
from crossl_edge.model.crossl import CroSSL, ModelConfig
from crossl_edge.rundir import MODEL_PT, RunInfo, read_run


def load_model(path: str | Path) -> tuple[RunInfo, CroSSL]:
    """The run's info and its trained CroSSL model (eval mode, CPU); model.pt must be this run's."""
    from crossl_edge.model.crossl import CroSSL

    info = read_run(path)
    f = info.path / MODEL_PT
    ck = checkpoint.load(f)
    try:
        cfg = ModelConfig.from_json(ck["model_config"])
        model = CroSSL(cfg)
        model.load_state_dict(ck["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise UsageError(f"{f} is not a model checkpoint of this toolkit ({type(e).__name__}); "
                         "retrain the run.") from e
    want = tuple((m.name, m.n_channels, info.windows[m.name]) for m in info.modalities)
    got = tuple((m.name, m.channels, m.window) for m in cfg.modalities)
    if got != want or cfg.n_classes != len(info.classes):
        raise UsageError(f"{f} belongs to another run (modalities {got}, {cfg.n_classes} classes; "
                         f"run.json says {want}, {len(info.classes)}); restore this run's model.pt "
                         "or retrain.")
    return info, model.eval()
