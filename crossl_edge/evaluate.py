"""Evaluation of a trained CroSSL model: whole-test-set metrics for every modality subset."""

from __future__ import annotations

import numpy as np
import torch

from crossl_edge.data.windows import Windows
from crossl_edge.metrics import modality_subsets, presence_vector, scores
from crossl_edge.model.crossl import CroSSL


@torch.no_grad()
def latents_of(model: CroSSL, windows: Windows, *, batch_size: int = 256) -> np.ndarray:
    """Encoder outputs (N, M, D) for normalized windows, in eval mode on the CPU."""
    model = model.eval().cpu()
    out = []
    for s in range(0, len(windows), batch_size):
        inputs = {n: torch.from_numpy(x[s : s + batch_size]) for n, x in windows.data.items()}
        out.append(model.encode(inputs).numpy())
    return np.concatenate(out, axis=0)


@torch.no_grad()
def predict_subsets(model: CroSSL, windows: Windows) -> dict[tuple[str, ...], np.ndarray]:
    """Predicted labels for every non-empty subset of present modalities."""
    latents = torch.from_numpy(latents_of(model, windows))
    names = model.cfg.names
    preds = {}
    for subset in modality_subsets(names):
        present = torch.from_numpy(np.tile(presence_vector(names, subset), (len(windows), 1)))
        preds[subset] = model.classify(latents, present).argmax(-1).numpy()
    return preds


def evaluate(model: CroSSL, windows: Windows) -> dict[str, object]:
    """Metrics on normalized ``windows``: all modalities, and each subset (absent ones zeroed)."""
    preds = predict_subsets(model, windows)
    n_classes = len(windows.classes)
    subsets = [
        {"present": list(s), **scores(windows.labels, p, n_classes)} for s, p in preds.items()
    ]
    return {"classes": list(windows.classes), "all": subsets[0], "subsets": subsets}


def format_table(result: dict[str, object]) -> str:
    """Human table of accuracy / macro-F1 per subset of present modalities."""
    rows = [f"{'present modalities':<32} {'acc':>6} {'macro-F1':>9}"]
    for s in result["subsets"]:  # type: ignore[union-attr]
        rows.append(f"{'+'.join(s['present']):<32} {s['accuracy']:>6.3f} {s['macro_f1']:>9.3f}")
    return "\n".join(rows)


def evaluate_run(run: str, *, data: str | None = None) -> dict[str, object]:
    """Reload a finished run and its test split (or ``data``) and evaluate it."""
    from crossl_edge.rundir import load_run_dataset
    from crossl_edge.trained import load_model

    info, model = load_model(run)
    ds = load_run_dataset(info, data=data)
    return evaluate(model, info.normalizer.transform(ds.test))
