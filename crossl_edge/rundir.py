"""The run directory: what `train` writes and `evaluate`/`export` read (run.json, model.pt, ...)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossl_edge import __version__
from crossl_edge.data.windows import Dataset, ModalitySpec, Normalizer
from crossl_edge.errors import UsageError

RUN_FORMAT = "crossl-edge-run"
RUN_FORMAT_VERSION = 1
# Every file name of a run folder, in one place.
RUN_JSON = "run.json"
METRICS_JSON = "metrics.json"
HISTORY_JSON = "history.json"
CHECKPOINT_PT = "checkpoint.pt"   # resumable state while training; removed when the run completes
MODEL_PT = "model.pt"             # the trained model: {"model_config", "state_dict"}


@dataclass
class RunInfo:
    """The parsed run.json of a run directory."""

    path: Path
    meta: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.meta.get("status"))

    @property
    def modalities(self) -> tuple[ModalitySpec, ...]:
        return tuple(
            ModalitySpec(m["name"], tuple(m["channels"]), float(m["sample_rate_hz"]))
            for m in self.meta["modalities"]
        )

    @property
    def windows(self) -> dict[str, int]:
        return {m["name"]: int(m["window"]) for m in self.meta["modalities"]}

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.meta["classes"])

    @property
    def normalizer(self) -> Normalizer:
        return Normalizer.from_json(self.meta["normalization"])


def run_meta(
    *,
    dataset: Dataset,
    normalizer: Normalizer,
    train_cfg: dict[str, Any],
    model_cfg: dict[str, Any],
    status: str,
) -> dict[str, Any]:
    """The content of run.json for a run on ``dataset``."""
    w = dataset.train
    return {
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "toolkit_version": __version__,
        "status": status,
        "dataset": train_cfg["dataset"],
        "dataset_label": dataset.name,
        "classes": list(w.classes),
        "modalities": [
            {
                "name": m.name,
                "channels": list(m.channels),
                "sample_rate_hz": m.sample_rate_hz,
                "window": int(w.data[m.name].shape[2]),
            }
            for m in w.modalities
        ],
        "normalization": normalizer.to_json(),
        "train": train_cfg,
        "model": model_cfg,
    }


def read_run(path: str | Path, *, require_complete: bool = True) -> RunInfo:
    """Read and validate run.json; a missing, foreign, or unfinished run is a usage error."""
    path = Path(path)
    f = path / RUN_JSON
    if not f.is_file():
        raise UsageError(
            f"{path} is not a run directory (no {RUN_JSON}); "
            "create one with `crossl-edge train --out DIR`."
        )
    try:
        meta = json.loads(f.read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"{f} is not valid JSON; the run is corrupt, retrain it.") from e
    if meta.get("format") != RUN_FORMAT:
        raise UsageError(f"{path} is not a crossl-edge run directory.")
    if meta.get("format_version") != RUN_FORMAT_VERSION:
        raise UsageError(
            f"{path} was written by run format {meta.get('format_version')}, this "
            f"toolkit reads {RUN_FORMAT_VERSION}; retrain with this version."
        )
    if not isinstance(meta, dict):
        raise UsageError(f"{f} is not a crossl-edge run file; retrain the run.")
    info = RunInfo(path, meta)
    _check_meta(info, f)
    if require_complete and info.status != "complete":
        raise UsageError(
            f"{path} is an unfinished run ({info.status}); finish it with "
            "`crossl-edge train --resume` first."
        )
    return info


def _check_meta(info: RunInfo, f: Path) -> None:
    """run.json's fields have the types and sizes the readers rely on (else one sentence)."""
    try:
        classes, norm = info.classes, info.meta["normalization"]
        for m, w in zip(info.modalities, info.windows.values(), strict=True):
            n = norm[m.name]
            ok = (m.channels and w >= 1 and all(isinstance(c, str) for c in m.channels)
                  and len(n["mean"]) == len(n["std"]) == len(m.channels))
            if not ok:
                raise ValueError(f"modality {m.name!r} has inconsistent channels/normalization")
        info.normalizer  # noqa: B018 - parses the arrays
        if not classes or not info.modalities or not isinstance(info.meta["train"], dict) or \
                not isinstance(info.meta["model"], dict):
            raise ValueError("classes, modalities, train and model must be filled in")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UsageError(f"{f} is inconsistent ({type(e).__name__}: {e}); retrain the run or "
                         "restore run.json.") from e


def load_run_dataset(info: RunInfo, *, data: str | None = None) -> Dataset:
    """Reload the run's dataset (or ``data`` in place of its path), with the run's modalities."""
    from crossl_edge.data.registry import load_dataset

    train = info.meta["train"]
    ds = load_dataset(
        info.meta["dataset"],
        path=data or train.get("data_path"),
        **(train.get("data_options") or {}),
    )
    names = [m.name for m in info.modalities]
    missing = [n for n in names if n not in ds.train.names]
    if missing:
        raise UsageError(f"the data lacks modalities {missing} that the run was trained on.")
    out = Dataset(ds.name, ds.train.select(names), ds.test.select(names))
    where = data or train.get("data_path") or info.meta["dataset"]
    for m in info.modalities:
        got = out.train.data[m.name].shape[1:]
        want = (m.n_channels, info.windows[m.name])
        if got != want:
            raise UsageError(f"{where}: modality {m.name!r} has windows of (channels, samples) "
                             f"{got}, the run was trained on {want}; pass data cut the same way.")
    n_classes = len(info.meta.get("classes") or out.train.classes)
    if len(out.train.classes) > n_classes:
        raise UsageError(f"{where} has {len(out.train.classes)} classes, the run was trained on "
                         f"{n_classes}; pass data with the run's classes.")
    return out
