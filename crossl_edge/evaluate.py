"""Evaluation of a trained CroSSL model: whole-test-set metrics for every modality subset and,
with a device map, every device subset; warnings where removing a modality or device helps."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from crossl_edge.attribution import harm_warnings
from crossl_edge.data.windows import Windows
from crossl_edge.devices import (
    DeviceEntry,
    check_devices,
    device_subsets,
    modalities_of,
    parse_devices,
)
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
    return by_device({"classes": list(windows.classes), "all": subsets[0], "subsets": subsets},
                     list(model.cfg.names))


def format_table(result: dict[str, object]) -> str:
    """Human table of accuracy / macro-F1 per subset of present modalities."""
    rows = [f"{'present modalities':<32} {'acc':>6} {'macro-F1':>9}"]
    for s in result["subsets"]:  # type: ignore[union-attr]
        rows.append(f"{'+'.join(s['present']):<32} {s['accuracy']:>6.3f} {s['macro_f1']:>9.3f}")
    return "\n".join(rows + device_lines(result))


def by_device(result: dict[str, Any], names: list[str],
              devices: list[DeviceEntry] | None = None) -> dict[str, Any]:
    """``result`` plus its harm warnings (removing a modality, or with ``devices`` a device,
    raises macro-F1) and, with ``devices``, the table by device subset (a device's modalities
    present or absent together)."""
    groups = {d.name: list(d.modalities) for d in devices} if devices else None
    result["warnings"] = harm_warnings(result["subsets"], names, lambda r: r["macro_f1"],
                                       devices=groups)
    if devices:
        rows = {frozenset(s["present"]): s for s in result["subsets"]}
        result["devices"] = [d.to_json() for d in devices]
        result["device_subsets"] = [
            {"devices": list(ds), "present": list(mods),
             **{k: rows[frozenset(mods)][k] for k in ("n", "accuracy", "macro_f1")}}
            for ds in device_subsets(devices)
            for mods in [modalities_of(devices, ds, names)]]
    return result


def device_lines(result: dict[str, Any]) -> list[str]:
    """The by-device table (when a device map was given) and the warnings, as text lines."""
    lines = []
    if result.get("device_subsets"):
        lines += ["", f"{'present devices':<24} {'modalities':<32} {'acc':>6} {'macro-F1':>9}"]
        lines += [f"{'+'.join(r['devices']):<24} {'+'.join(r['present']):<32} "
                  f"{r['accuracy']:>6.3f} {r['macro_f1']:>9.3f}" for r in result["device_subsets"]]
    if result.get("warnings"):
        lines += ["", *result["warnings"]]
    return lines


def evaluate_run(run: str, *, data: str | None = None,
                 devices: str | None = None) -> dict[str, object]:
    """Reload a finished run and its test split (or ``data``) and evaluate it; ``devices``: a
    device map (`--devices` text, a JSON file, or a bundle folder whose map to use)."""
    from crossl_edge.rundir import load_run_dataset
    from crossl_edge.trained import load_model

    info, model = load_model(run)
    names = list(model.cfg.names)
    device_map = _device_map(devices, names) if devices else None
    ds = load_run_dataset(info, data=data)
    return by_device(evaluate(model, info.normalizer.transform(ds.test)), names, device_map)


def _device_map(devices: str, names: list[str]) -> list[DeviceEntry]:
    from pathlib import Path

    from crossl_edge.manifest import MANIFEST, load_manifest

    if (Path(devices) / MANIFEST).is_file():
        return check_devices(load_manifest(devices, verify=False).device_map, names)
    return parse_devices(devices, names)
