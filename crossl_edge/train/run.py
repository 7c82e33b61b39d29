"""One training run end to end: data, normalize, pretrain, downstream, evaluate, run dir."""

from __future__ import annotations

import inspect
import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossl_edge import checkpoint
from crossl_edge.atomic import write_json
from crossl_edge.data.registry import load_dataset, resolve
from crossl_edge.data.windows import Dataset, Normalizer, stratified_split
from crossl_edge.errors import UsageError
from crossl_edge.evaluate import evaluate
from crossl_edge.model.crossl import CroSSL, ModalityShape, ModelConfig
from crossl_edge.outputs import check_writable, prepare_output, write_marker
from crossl_edge.rundir import (
    CHECKPOINT_PT,
    HISTORY_JSON,
    METRICS_JSON,
    MODEL_PT,
    RUN_JSON,
    read_run,
    run_meta,
)
from crossl_edge.train.config import TrainConfig
from crossl_edge.train.distributed import DistContext, init_distributed
from crossl_edge.train.loop import EpochCallback, LoopState, Tensors, load_state, run_phase
from crossl_edge.train.progress import Reporter
from crossl_edge.train.schedule import Schedule
from crossl_edge.train.schedule import resolve as resolve_schedule

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a finished run returns: its directory, test metrics and training history."""

    run_dir: Path
    metrics: dict[str, Any]
    history: dict[str, list[dict[str, float]]]
    model: CroSSL


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            "--device cuda was asked for but no CUDA GPU is visible; use --device cpu."
        )
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def with_selection(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with ``modalities`` handed to the loader as its ``modalities`` option, so the
    windows kept are those the chosen streams allow (one selection, stored with the run)."""
    if not cfg.modalities or "modalities" not in inspect.signature(resolve(cfg.dataset)).parameters:
        return cfg
    chosen = list(cfg.modalities)
    given = cfg.data_options.get("modalities")
    if isinstance(given, str):
        given = [m.strip() for m in given.split(",") if m.strip()]
    if given is not None and list(given) != chosen:
        raise UsageError(f"--modalities {','.join(chosen)} and --data-option modalities={given} "
                         "disagree; give the selection once.")
    return replace(cfg, data_options={**cfg.data_options, "modalities": chosen})


def prepare_data(cfg: TrainConfig) -> Dataset:
    """Load the dataset with the requested modalities (selected by the loader where it can,
    else after loading; validated)."""
    cfg = with_selection(cfg)
    ds = load_dataset(cfg.dataset, path=cfg.data_path, **cfg.data_options)
    if cfg.modalities:
        ds = Dataset(ds.name, ds.train.select(cfg.modalities), ds.test.select(cfg.modalities))
    return ds


def data_summary(ds: Dataset) -> str:
    """One sentence: subjects and windows per split, and how many windows lack each modality."""
    tr, te = ds.train, ds.test
    who = len(set(tr.subjects.tolist()) | set(te.subjects.tolist()))
    text = (f"data: {ds.name}, {who} subjects, {len(tr) + len(te):,} windows ({len(tr):,} train "
            f"/ {len(te):,} test), modalities {', '.join(tr.names)}")
    absent = {n: int((~tr.present[n]).sum() + (~te.present[n]).sum()) for n in tr.names}
    absent = {n: k for n, k in absent.items() if k}
    if absent:
        text += "; absent: " + ", ".join(f"{n} in {k:,} windows" for n, k in absent.items())
    return text + "."


def model_config(ds: Dataset, cfg: TrainConfig) -> ModelConfig:
    shapes = tuple(
        ModalityShape(m.name, m.n_channels, int(ds.train.data[m.name].shape[2]))
        for m in ds.train.modalities
    )
    return ModelConfig(
        shapes,
        len(ds.train.classes),
        encoder=cfg.encoder,
        latent_dim=cfg.latent_dim,
        masking=cfg.masking,
        coverage=cfg.coverage,
    )


def _check_out(out: Path, cfg: TrainConfig, *, resume: bool, overwrite: bool) -> bool:
    """Validate --out against --resume/--overwrite; True when an old run must be removed."""
    if resume:
        f = out / RUN_JSON
        if not f.is_file():
            raise UsageError(f"nothing to resume in {out}; start a run without --resume.")
        old = TrainConfig.from_json(read_run(out, require_complete=False).meta["train"])
        check_writable(out)
        if {**old.to_json(), "device": None} != {**cfg.to_json(), "device": None}:
            raise UsageError(f"{out} was started with other settings; resume with the same ones.")
        return False
    if out.exists() and out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"{out} already exists; pass --resume to continue it, --overwrite to "
                         "replace it, or choose another --out.")
    prepare_output(out, kind="run", inputs=(cfg.data_path,))  # only ever replaces a run
    return out.exists() and any(out.iterdir())


def _phases(cfg: TrainConfig, schedule: Schedule, *, skip: bool) -> list[tuple[str, int]]:
    down = [("downstream", schedule.downstream.epochs)]
    return down if skip else [("pretrain", schedule.pretrain.epochs), *down]


def train_run(
    cfg: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: list[EpochCallback] | None = None,
    reporter: Reporter | None = None,
    pretrained: dict[str, torch.Tensor] | None = None,
) -> RunResult:
    """Train CroSSL per ``cfg`` into run directory ``out`` (resumable) and evaluate it on test.

    ``pretrained``: weights of a finished pretraining of the same data and model (e.g. from a run
    with ``epochs=0``); pretraining is then skipped, so several downstream runs can share one."""
    out = Path(out)
    cfg = with_selection(cfg)
    device = pick_device(cfg.device)
    ds = prepare_data(cfg)  # bad data fails here, before anything is written
    fit_idx, val_idx = stratified_split(ds.train.labels, fraction=cfg.val_fraction, seed=cfg.seed)
    norm = Normalizer.fit(ds.train.subset(fit_idx))
    fit_w, val_w = (
        norm.transform(ds.train.subset(fit_idx)),
        norm.transform(ds.train.subset(val_idx)),
    )
    test_w = norm.transform(ds.test)
    lab_idx = np.arange(len(fit_w))
    if cfg.label_fraction < 1:
        _, lab_idx = stratified_split(fit_w.labels, fraction=cfg.label_fraction, seed=cfg.seed + 1)
    mcfg = model_config(ds, cfg)
    schedule = resolve_schedule(cfg, n_pretrain=len(fit_w), n_labelled=len(lab_idx))
    remove_old = _check_out(out, cfg, resume=resume, overwrite=overwrite)  # every rank checks
    ctx: DistContext = init_distributed(device)
    if remove_old and ctx.is_main:
        shutil.rmtree(out)
    if device.type == "cuda" and ctx.enabled:
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    torch.manual_seed(cfg.seed)
    model = CroSSL(mcfg).to(device)
    meta = {
        **run_meta(
            dataset=ds,
            normalizer=norm,
            train_cfg=cfg.to_json(),
            model_cfg=mcfg.to_json(),
            status="running",
        ),
        "schedule": schedule.to_json(),
    }
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_marker(out, "run")
        write_json(out / RUN_JSON, meta)
    ctx.barrier()
    ck = out / CHECKPOINT_PT
    skip_pretrain = cfg.mode == "sup" or pretrained is not None
    if pretrained is not None and cfg.mode != "sup":
        model.load_state_dict(pretrained)
    state = (
        load_state(out, model)
        if resume and ck.is_file()
        else LoopState("downstream" if skip_pretrain else "pretrain")
    )
    model.to(device)
    reporter = reporter or Reporter()
    reporter.plan(_phases(cfg, schedule, skip=skip_pretrain),
                  chosen=(data_summary(ds), *schedule.chosen))
    kw: dict[str, Any] = {  # run_phase's keyword arguments common to both phases
        "model": model,
        "cfg": cfg,
        "val": Tensors.of(val_w, device),
        "device": device,
        "ctx": ctx,
        "run_dir": out,
        "callbacks": callbacks or [],
        "reporter": reporter,
    }
    if state.phase == "pretrain":
        state = run_phase(
            "pretrain", plan=schedule.pretrain, train=Tensors.of(fit_w, device), state=state, **kw
        )
        state = LoopState("downstream", history=state.history)
    if state.phase == "downstream":
        state = run_phase(
            "downstream",
            plan=schedule.downstream,
            train=Tensors.of(fit_w.subset(lab_idx), device),
            state=state,
            **kw,
        )
        state.phase = "done"
    model = model.cpu().eval()
    metrics = evaluate(model, test_w)
    if ctx.is_main:
        checkpoint.save(
            out / MODEL_PT,
            {"model_config": mcfg.to_json(), "state_dict": model.state_dict()},
        )
        write_json(out / METRICS_JSON, metrics)
        write_json(out / HISTORY_JSON, state.history)
        write_json(
            out / RUN_JSON,
            {
                **meta,
                "status": "complete",
                "labelled_windows": int(len(lab_idx)),
                "world_size": ctx.world_size,
                "device": str(device),
            },
        )
        (out / CHECKPOINT_PT).unlink(missing_ok=True)
    ctx.barrier()
    return RunResult(out, metrics, state.history, model)
