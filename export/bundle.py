"""Export a trained run to a bundle: per-modality encoders (ONNX/TFLite, float/int8), phone model,
manifest.json; every artifact is checked against PyTorch as soon as it is written, and each int8
format is the scheme the search (export/search.py) chose.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge import __version__
from crossl_edge.atomic import write_bytes, write_json
from crossl_edge.bundle_records import EncoderStats, Provenance
from crossl_edge.devices import (
    DeviceEntry,
    DeviceMapError,
    check_devices,
    default_devices,
    parse_devices,
)
from crossl_edge.errors import CheckFailed, UsageError
from crossl_edge.export.calibration import (
    DEFAULT_CALIBRATION,
    SELECTION,
    calibration_indices,
    make_judge,
)
from crossl_edge.export.progress import Callback, Tracker, plan_export
from crossl_edge.export.schemes import Judge, SchemeRecord, Targets
from crossl_edge.manifest import (
    BUNDLE_FORMAT_VERSION,
    MANIFEST,
    AggregatorEntry,
    Manifest,
    ModalityEntry,
    QParams,
    file_sha256,
    seal,
    to_json,
)
from crossl_edge.outputs import output_dir
from crossl_edge.runtime.backends import dist_version, run_each
from crossl_edge.samples import SAMPLES, samples_bytes

log = logging.getLogger(__name__)

CHECK_WINDOWS = 16          # windows each artifact is checked on right after it is written
FLOAT_TOL = 1e-4            # max abs error of a float artifact vs PyTorch (relative to max |y|)
PHONE_INPUTS = ["latents", "present"]


MAX_SAMPLES = 64  # raw test windows shipped in samples.npz for bench/simulate/third parties


def versions() -> dict[str, str]:
    """Versions of the converters and runtimes that built and checked the bundle."""
    dists = ("torch", "tensorflow-cpu", "tensorflow", "onnx", "onnxruntime", "onnxscript",
             "ai-edge-litert", "tflite-micro")
    found = {d: dist_version(d, default="") for d in dists}
    return {"crossl-edge": __version__, **{d: v for d, v in found.items() if v}}


def _float_check(what: str, got: np.ndarray, ref: np.ndarray) -> float:
    err = float(np.abs(got - ref).max())
    if not np.isfinite(err) or err > FLOAT_TOL * (1.0 + float(np.abs(ref).max())):
        raise CheckFailed(f"{what} differs from PyTorch by {err:.3g} right after export; the "
                          "converter changed the model, report it with the run.")
    return err


def _write(root: Path, rel: str, data: bytes) -> Path:
    write_bytes(root / rel, data)
    return root / rel


@dataclass(frozen=True)
class EncoderExport:
    """What export_encoder wrote for one modality: artifact paths (relative to the bundle), the
    int8 input and latent quantization, the measured stats and the search's scheme record."""

    artifacts: dict[str, str]
    input_quant: QParams
    latent_quant: QParams
    stats: dict[str, Any]
    scheme: dict[str, Any]      # quantization.scheme: per int8 format a SchemeRecord, and more

    @property
    def records(self) -> dict[str, SchemeRecord]:
        return SchemeRecord.read(self.scheme)


def _int8_search(root: Path, arts: dict[str, str], *, job: Any, f_onnx: bytes) -> dict[str, Any]:
    """Search both int8 formats and write the chosen artifacts; returns the scheme record."""
    from crossl_edge.export import search

    tfl = search.search_tflite(job)
    if tfl.chosen is None:
        raise search.failure_report(job.name, "tflite_int8", tfl.trials, job.targets,
                                    twins=job.twins, calib=job.calib)
    _write(root, arts["tflite_int8"], tfl.chosen.data)
    s = tfl.chosen.scheme
    onx = search.search_onnx(job, float_onnx=f_onnx, input_percentile=s.input_percentile,
                             headroom=s.headroom)
    if onx.chosen is None:
        raise search.failure_report(job.name, "onnx_int8", onx.trials, job.targets,
                                    twins=job.twins, calib=job.calib)
    _write(root, arts["onnx_int8"], onx.chosen.data)
    job.step("onnx_int8", f"chose {onx.chosen.scheme.name} ({len(onx.trials)} tried)", units=0)
    return {"tflite_int8": tfl.record().to_json(), "onnx_int8": onx.record().to_json(),
            "calibration_windows": int(len(job.calib)),
            "judged_on": ("TFLite: 2-fold cross-fitting (each calibration window scored by the "
                          "scheme calibrated on the other half; the shipped model is calibrated "
                          "on all)" if search.cross_folds(len(job.calib)) else "TFLite: in-sample")
            + f"; ONNX: in-sample; {len(job.judge.subsets(job.name))} modality subset(s)",
            "targets": dataclasses.asdict(job.targets)}


def export_encoder(root: Path, *, name: str, encoder: Any, calib: np.ndarray, judge: Judge,
                   targets: Targets = Targets(), tracker: Tracker | None = None,
                   deadline: float | None = None) -> EncoderExport:
    """Write and check the four encoder artifacts (the int8 ones searched, the search's
    candidates started no later than ``deadline`` once one passes, on time.monotonic())."""
    import torch

    from crossl_edge import tflite_graph
    from crossl_edge.export import onnx_export, tflite_export
    from crossl_edge.export.keras_twin import keras_encoder
    from crossl_edge.export.search import Search
    from crossl_edge.model.encoders import ChannelLayerNorm, encoder_macs
    from crossl_edge.runtime import tflm
    from crossl_edge.runtime.backends import OnnxRunner, TFLiteRunner

    _, c, t = calib.shape
    pick = np.unique(np.linspace(0, len(calib) - 1, CHECK_WINDOWS).round().astype(int))
    check = calib[pick]                                                  # (n, C, T)
    with torch.no_grad():
        ref = encoder(torch.from_numpy(check)).numpy()                   # (n, D)
    arts = {k: f"encoders/{name}{s}" for k, s in (("onnx", ".onnx"), ("onnx_int8", ".int8.onnx"),
                                                  ("tflite", ".tflite"),
                                                  ("tflite_int8", ".int8.tflite"))}
    stats: dict[str, Any] = {"checks": {}}
    tracker = tracker or Tracker()
    tracker.start(name)
    f_onnx = onnx_export.encoder_onnx(encoder, channels=c, window=t)
    _write(root, arts["onnx"], f_onnx)
    stats["checks"]["onnx_max_abs_err"] = err = _float_check(
        f"{name} ONNX float", run_each(OnnxRunner(f_onnx), check), ref)
    tracker.step("onnx", f"float ONNX written, max error {err:.1e} vs PyTorch", modality=name)

    has_layernorm = any(isinstance(b.norm, ChannelLayerNorm) for b in encoder.blocks)

    @functools.cache
    def twins(layernorm: str) -> Any:
        if not has_layernorm and layernorm != "decomposed":
            return twins("decomposed")
        twin = keras_encoder(encoder, window=t, name=f"{name}_encoder", layernorm=layernorm)
        _float_check(f"{name} Keras twin ({layernorm} LayerNorm)",
                     twin(check.transpose(0, 2, 1)).numpy(), ref)
        return twin

    twin = twins("decomposed")
    f_tfl = tflite_export.encoder_tflite(twin, window=t, channels=c)
    _write(root, arts["tflite"], f_tfl)
    stats["checks"]["tflite_max_abs_err"] = err = _float_check(
        f"{name} TFLite float", run_each(TFLiteRunner(f_tfl), check.transpose(0, 2, 1)), ref)
    tracker.step("tflite", f"float TFLite written, max error {err:.1e} vs PyTorch",
                 modality=name)
    job = Search(name, twins, calib, judge, targets, root / arts["tflite_int8"], tracker,
                 deadline)
    scheme = _int8_search(root, arts, job=job, f_onnx=f_onnx)
    tfl, onx = scheme["tflite_int8"], scheme["onnx_int8"]
    stats["calibration_input_percentile"] = tfl["options"]["input_percentile"]
    stats["checks"]["tflite_int8_mean_cosine"] = tfl["scores"]["cosine_mean"]
    stats["checks"]["onnx_int8_mean_cosine"] = onx["scores"]["cosine_mean"]
    p = root / arts["tflite_int8"]
    q_bytes = p.read_bytes()
    runner = TFLiteRunner(p)
    i, o = runner.inputs[0], runner.outputs[0]
    qin, qlat = QParams(i.scale, i.zero_point), QParams(o.scale, o.zero_point)
    stats.update({"tflite_int8_ops": tflite_graph.builtin_ops(q_bytes),
                  "tflite_int8_op_count": tflite_graph.op_count(q_bytes)})
    if tflm.tflm_available():
        tol = tfl["scores"].get("tflm") or {}
        if tol.get("max_lsb_vs_litert_builtin", 0) > tflm.TFLM_MAX_LSB:
            log.info("%s: TFLite Micro rounds up to %d LSB off LiteRT's builtin kernels and "
                     "changes no prediction on %d calibration windows (a note, not an error)",
                     name, tol["max_lsb_vs_litert_builtin"], tol.get("windows", 0))
        arena = tflm.measure_arena(p)
        stats["tflm"] = {**tol, "arena_recorded_bytes": arena.recorded_bytes,
                         "arena_min_bytes": arena.minimum_bytes, "version": tflm.tflm_version()}
        tracker.step("tflm", f"arena {arena.recorded_bytes:,} B measured", modality=name)
    else:
        log.warning("tflite-micro is not installed: %s was not run on TFLite Micro", name)
        stats["tflm"] = None
    stats.update({
        "params": int(sum(p.numel() for p in encoder.parameters())),
        "macs": int(encoder_macs(encoder, t)),
        "size_bytes": {k: (root / rel).stat().st_size for k, rel in arts.items()},
    })
    return EncoderExport(arts, qin, qlat, stats, scheme)


def export_phone(root: Path, *, model: Any, n_mod: int, dim: int) -> dict[str, str]:
    """Write and check the phone model (aggregator + head) as float TFLite and ONNX."""
    import torch

    from crossl_edge.export import onnx_export, tflite_export
    from crossl_edge.export.keras_twin import keras_phone
    from crossl_edge.model.crossl import PhoneModel
    from crossl_edge.runtime.backends import OnnxRunner, TFLiteRunner

    phone = PhoneModel(model).eval()
    arts = {"onnx": "phone/phone.onnx", "tflite": "phone/phone.tflite"}
    _write(root, arts["onnx"], onnx_export.phone_onnx(phone, n_modalities=n_mod, latent_dim=dim))
    twin = keras_phone(phone, n_modalities=n_mod, latent_dim=dim)
    _write(root, arts["tflite"],
           tflite_export.phone_tflite(twin, n_modalities=n_mod, latent_dim=dim))
    rng = np.random.default_rng(0)
    runners = {k: (OnnxRunner if k == "onnx" else TFLiteRunner)((root / v).read_bytes())
               for k, v in arts.items()}
    for s in range(2 ** n_mod - 1):
        lat = rng.standard_normal((1, n_mod, dim)).astype(np.float32)
        pres = np.array([[(s + 1) >> j & 1 for j in range(n_mod)]], np.float32)
        with torch.no_grad():
            ref = phone(torch.from_numpy(lat), torch.from_numpy(pres)).numpy()
        for kind, r in runners.items():
            _float_check(f"phone model {kind}", r.run(lat, pres), ref)
    return arts


def _publish_modes(root: Path) -> None:
    """Temp files are created 0600/0700; a bundle is meant to be shared: 0644 files, 0755 dirs."""
    root.chmod(0o755)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)


def _source(info: Any, data: str | None) -> dict[str, Any]:
    from crossl_edge.rundir import MODEL_PT

    train = info.meta.get("train", {})
    return {"run": str(info.path.resolve()), "dataset": info.meta["dataset"],
            "data_path": data or train.get("data_path"),
            "data_options": train.get("data_options") or {},
            "encoder": info.meta["model"]["encoder"],
            "model_sha256": file_sha256(info.path / MODEL_PT)}


def failure_report_path(out: str | Path) -> Path:
    """Where a failed export writes its report (next to the bundle it could not write)."""
    out = Path(out)
    return out.parent / f"{out.name}.export-report.json"


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """How export calibrates and searches: ``calibration_windows`` (None: at most
    calibration.DEFAULT_CALIBRATION, stratified; 0: every training window), the thresholds, and
    ``max_search_seconds``, the search's time budget over all modalities (None: unbounded; once
    spent, each format takes the best passing candidate so far and its record says so)."""

    calibration_windows: int | None = None
    targets: Targets = Targets()
    max_search_seconds: float | None = None

    def __post_init__(self) -> None:
        b = self.max_search_seconds
        if b is not None and not (np.isfinite(b) and b > 0):
            raise UsageError(f"--max-search-seconds must be a positive number, not {b}.")


def export_bundle(run_dir: str | Path, out: str | Path, *, calibration_windows: int | None = None,
                  data: str | None = None, progress: Callback | None = None,
                  targets: Targets = Targets(), max_search_seconds: float | None = None,
                  devices: str | Sequence[DeviceEntry] | None = None) -> Manifest:
    """Export run ``run_dir`` to bundle ``out`` (replaced atomically; nothing left on failure but
    ``failure_report_path(out)`` when no quantization scheme meets ``targets``). ``devices``: the
    device map (a `--devices` text, a JSON file, or entries; default one device per modality).
    ``progress`` receives an Event for the plan and for every modality's stages."""
    from crossl_edge.export.search import SearchFailed

    opts = ExportOptions(calibration_windows=calibration_windows, targets=targets,
                         max_search_seconds=max_search_seconds)
    try:
        return _export_bundle(run_dir, out, opts=opts, data=data,
                              tracker=Tracker(progress) if progress else Tracker(),
                              devices=devices)
    except SearchFailed as e:
        path = failure_report_path(out)
        write_json(path, {"run": str(run_dir), "error": str(e), **e.report})
        raise CheckFailed(f"{e}; nothing was exported, see {path}.") from e


def _device_map(devices: str | Sequence[DeviceEntry] | None,
                names: list[str]) -> list[DeviceEntry]:
    """The bundle's device map, checked against the run's modalities before any export work."""
    if devices is None:
        return default_devices(names)
    if isinstance(devices, str):
        return parse_devices(devices, names)
    try:
        return check_devices(list(devices), names)
    except DeviceMapError as e:
        raise UsageError(f"the device map is wrong: {e}.") from e


def _export_bundle(run_dir: str | Path, out: str | Path, *, opts: ExportOptions,
                   data: str | None, tracker: Tracker,
                   devices: str | Sequence[DeviceEntry] | None = None) -> Manifest:
    from crossl_edge.export.tflite_export import check_calibration, import_tf
    from crossl_edge.model.encoders import ChannelLayerNorm
    from crossl_edge.rundir import load_run_dataset
    from crossl_edge.runtime import tflm
    from crossl_edge.trained import load_model

    t0 = time.perf_counter()
    info, model = load_model(run_dir)
    names = [s.name for s in info.modalities]
    device_map = _device_map(devices, names)
    ds = load_run_dataset(info, data=data)
    train = info.normalizer.transform(ds.train)
    want = opts.calibration_windows
    idx = calibration_indices(len(train), None if want == 0 else want, labels=train.labels,
                              subjects=train.subjects, default=None if want == 0 else
                              DEFAULT_CALIBRATION)
    import_tf()
    out = Path(out)
    entries = []
    calibs = {s.name: check_calibration(train.data[s.name][idx], name=s.name)
              for s in info.modalities}
    judge = make_judge(model, names, calibs, train.labels[idx])
    has_ln = any(isinstance(b.norm, ChannelLayerNorm)
                 for s in info.modalities for b in model.encoders[s.name].blocks)
    plan_export(tracker, names, n_cal=len(idx), n_train=len(train), forms=2 if has_ln else 1,
          budget=opts.max_search_seconds, subsets=len(judge.subsets(names[0])),
          tflm=tflm.tflm_available())
    budget_end = (time.monotonic() + opts.max_search_seconds
                  if opts.max_search_seconds else None)
    with output_dir(out, kind="bundle", inputs=(run_dir, data)) as tmp:
        for mid, spec in enumerate(info.modalities):
            calib = calibs[spec.name]
            deadline = None if budget_end is None else \
                time.monotonic() + (budget_end - time.monotonic()) / (len(names) - mid)
            enc = export_encoder(tmp, name=spec.name, encoder=model.encoders[spec.name],
                                 calib=calib, judge=judge, targets=opts.targets, tracker=tracker,
                                 deadline=deadline)
            arts, qin, qlat, stats, scheme = (enc.artifacts, enc.input_quant, enc.latent_quant,
                                              enc.stats, enc.scheme)
            norm = info.normalizer
            entries.append(ModalityEntry(
                name=spec.name, id=mid, channels=list(spec.channels),
                window=int(calib.shape[2]), sample_rate_hz=spec.sample_rate_hz,
                normalization={"mean": norm.mean[spec.name].tolist(),
                               "std": norm.std[spec.name].tolist()},
                layout="NWC", artifacts=arts,
                sha256={k: file_sha256(tmp / v) for k, v in arts.items()},
                input_quant=qin, latent_quant=qlat, onnx_layout="NCW",
                stats=EncoderStats.from_json(stats),
                quant_extra={"scheme": scheme}))  # the search's record, per int8 format
        dim = int(model.cfg.latent_dim)
        tracker.start(None)
        phone_arts = export_phone(tmp, model=model, n_mod=len(entries), dim=dim)
        tracker.step("phone", "float phone model written (TFLite, ONNX) and checked")
        agg = AggregatorEntry(phone_arts, {k: file_sha256(tmp / v) for k, v in phone_arts.items()},
                              PHONE_INPUTS, "logits")
        n_samples = min(len(ds.test), MAX_SAMPLES)
        _write(tmp, SAMPLES, samples_bytes({e.name: ds.test.data[e.name][:n_samples]
                                            for e in entries}, ds.test.labels[:n_samples]))
        extra = {"source": _source(info, data), "versions": versions(),
                 "calibration": {"windows": int(len(idx)), "of": int(len(train)),
                                 "selection": SELECTION},
                 "layouts": {"tflite_input": "NWC (1, T, C)", "onnx_input": "NCW (1, C, T)",
                             "latent": "(1, D)", "phone_inputs": "latents (1, M, D) float32 "
                             "(int8 latents dequantized with quantization.latent), present "
                             "(1, M) float32 1/0"},
                 "samples": {"path": SAMPLES, "sha256": file_sha256(tmp / SAMPLES),
                             "windows": int(n_samples), "split": "test",
                             "content": "raw sensor windows x_<modality> (N, C, T) float32 in "
                             "the units of the recording, labels y (N,)"},
                 "phone_int8": "not exported: the phone model is tiny and runs in float"}
        manifest = seal(Manifest(tmp, BUNDLE_FORMAT_VERSION, __version__, list(info.classes),
                                 dim, 0, entries, agg, Provenance.from_json(extra)))
        manifest = seal(dataclasses.replace(manifest, devices=device_map))
        write_json(tmp / MANIFEST, to_json(manifest))
        _publish_modes(tmp)
    log.info("exported %s to %s in %.1f s", run_dir, out, time.perf_counter() - t0)
    return dataclasses.replace(manifest, root=out)
