"""Evaluation of a trained CroSSL model: whole-test-set metrics for every modality subset and,
with a device map, every device subset; warnings where removing a modality or device helps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

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

if TYPE_CHECKING:
    from pathlib import Path


def _arrived(windows: Windows, names: tuple[str, ...]) -> np.ndarray:
    """(N, M) bool presence in the model's modality order."""
    return np.stack([windows.present[n] for n in names], axis=1)


@torch.no_grad()
def latents_of(model: CroSSL, windows: Windows, *, batch_size: int = 256) -> np.ndarray:
    """Encoder outputs (N, M, D) for normalized windows, in eval mode on the CPU; an absent
    modality's latent is 0 (it is never encoded)."""
    model = model.eval().cpu()
    avail = torch.from_numpy(_arrived(windows, model.cfg.names).astype(np.float32))
    out = []
    for s in range(0, len(windows), batch_size):
        inputs = {n: torch.from_numpy(x[s : s + batch_size]) for n, x in windows.data.items()}
        out.append(model.encode(inputs, avail[s : s + batch_size]).numpy())
    return np.concatenate(out, axis=0)


@torch.no_grad()
def predict_subsets(
    model: CroSSL, windows: Windows
) -> dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]]:
    """For every non-empty subset of modalities: (rows it can be judged on, their predicted
    labels). A window's presence is the subset minus the modalities that did not arrive for it;
    windows where none of the subset arrived are left out."""
    latents = torch.from_numpy(latents_of(model, windows))
    names = model.cfg.names
    arrived = _arrived(windows, names)
    preds = {}
    for subset in modality_subsets(names):
        want = presence_vector(names, subset) > 0
        present = arrived & want[None, :]
        rows = np.flatnonzero(present.any(axis=1))
        p = torch.from_numpy(present[rows].astype(np.float32))
        logits = model.classify(latents[rows], p) if len(rows) else torch.zeros(0, 1)
        preds[subset] = (rows, logits.argmax(-1).numpy())
    return preds


def evaluate(model: CroSSL, windows: Windows) -> dict[str, object]:
    """Metrics on normalized ``windows``: all modalities, and each subset (absent ones zeroed).

    Each subset's entry scores the windows where at least one of its modalities arrived (``n``);
    its ``arrived`` entry scores only the windows where exactly that subset arrived (what a
    phone sees when those sensors, and no others, report), or is None where there are none."""
    preds = predict_subsets(model, windows)
    n_classes = len(windows.classes)
    names = model.cfg.names
    arrived = _arrived(windows, names)
    subsets = []
    for s, (rows, p) in preds.items():
        entry = {"present": list(s), **scores(windows.labels[rows], p, n_classes)}
        exact = np.flatnonzero((arrived[rows] == (presence_vector(names, s) > 0)).all(axis=1))
        entry["arrived"] = (
            {k: v for k, v in scores(windows.labels[rows][exact], p[exact], n_classes).items()
             if k in ("n", "accuracy", "macro_f1")} if len(exact) else None
        )
        subsets.append(entry)
    return by_device({"classes": list(windows.classes), "all": subsets[0], "subsets": subsets},
                     list(names))


def format_table(result: dict[str, object]) -> str:
    """Human table of accuracy / macro-F1 per subset of present modalities, and beside it the
    windows where exactly that subset arrived (when there are any with a sensor absent)."""
    subs = cast("list[dict[str, Any]]", result["subsets"])  # the evaluate() result's rows
    full = subs[0]["arrived"] or {}
    natural = any(s.get("arrived") and s is not subs[0] for s in subs) or \
        full.get("n", 0) != subs[0]["n"]
    head = f"{'present modalities':<32} {'acc':>6} {'macro-F1':>9}"
    rows = [head + (f" {'arrived: n':>11} {'acc':>6} {'macro-F1':>9}" if natural else "")]
    for s in subs:
        line = f"{'+'.join(s['present']):<32} {s['accuracy']:>6.3f} {s['macro_f1']:>9.3f}"
        if natural:
            a = s.get("arrived")
            line += (f" {a['n']:>11} {a['accuracy']:>6.3f} {a['macro_f1']:>9.3f}" if a
                     else f" {0:>11} {'-':>6} {'-':>9}")
        rows.append(line)
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


def evaluate_run(run: str | Path, *, data: str | None = None,
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
