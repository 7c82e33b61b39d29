"""Simulate a body-area network: one node per modality runs its int8 encoder on real windows and
sends frames through a seeded lossy channel to the phone aggregator (in-process or UDP loopback);
a device's modalities can vanish together (device loss, device outages).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossl_edge.errors import DataError, UsageError
from crossl_edge.manifest import Manifest, ModalityEntry
from crossl_edge.metrics import scores
from crossl_edge.runtime.aggregator import PhoneAggregator, Prediction
from crossl_edge.runtime.backends import open_model
from crossl_edge.runtime.bundle import open_bundle
from crossl_edge.runtime.serve import latency_summary
from crossl_edge.samples import load_samples
from crossl_edge.sim.device_loss import device_drops, device_runs, expand_outage
from crossl_edge.sim.runners import run_inproc, run_udp
from crossl_edge.wire.frame import LatentDType, LatentFrame, encode_frame, fingerprint32

log = logging.getLogger(__name__)
TRANSPORTS = ("inproc", "udp")


class SensorNode:
    """One sensor node: its modality's int8 encoder (TFLite, or ONNX Runtime's int8 model when
    that is the only runtime or ``backend="onnx"``) and the frame packer."""

    def __init__(self, manifest: Manifest, modality: ModalityEntry, *,
                 backend: str | None = None) -> None:
        self.modality = modality
        self.fingerprint = fingerprint32(manifest.fingerprint)
        self.kind = _node_artifact(modality, backend)
        self.runner = open_model(manifest.path(modality.artifacts[self.kind]))

    def encode(self, raw: np.ndarray) -> np.ndarray:
        """Raw window (C, T) -> int8 latent (D,), as the microcontroller computes it."""
        x = (self.modality.tflite_input(raw, int8=True) if self.kind == "tflite_int8"
             else self.modality.onnx_input(raw))
        out = self.runner.run(x).reshape(-1)
        return out if out.dtype == np.int8 else self.modality.latent_quant.quantize(out)

    def frame(self, seq: int, latent: np.ndarray, timestamp_us: int) -> bytes:
        return encode_frame(LatentFrame(self.modality.id, seq, timestamp_us, self.fingerprint,
                                        LatentDType.INT8, latent))


def _node_artifact(modality: ModalityEntry, backend: str | None) -> str:
    """tflite_int8 when a TFLite runtime runs here (and onnx is not asked for), else onnx_int8."""
    from crossl_edge.runtime.backends import TFLITE_BACKENDS, tflite_backend_usable

    arts = modality.artifacts
    want_tflite = backend != "onnx" and "tflite_int8" in arts and (
        backend == "tflite" or any(tflite_backend_usable(b) for b in TFLITE_BACKENDS))
    if want_tflite or "onnx_int8" not in arts:
        if "tflite_int8" not in arts:
            raise UsageError(f"the bundle has no int8 encoder for {modality.name!r}; "
                             "re-export it with int8 artifacts.")
        return "tflite_int8"
    return "onnx_int8"


@dataclass(frozen=True)
class ChannelModel:
    """Seeded radio channel: i.i.d. loss, outages (run fractions), jitter, dups, reordering, and
    device loss: each window, a device's frames (all its modalities) are lost together."""

    loss: float = 0.0
    outage: dict[str, tuple[float, float]] = field(default_factory=dict)
    jitter_s: float = 0.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    base_delay_s: float = 0.002
    device_loss: float = 0.0
    device_of: dict[str, str] = field(default_factory=dict)   # modality -> device (default: own)

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate_rate", "reorder_rate", "device_loss"):
            if not 0 <= getattr(self, name) <= 1:
                raise UsageError(f"{name} must lie in [0, 1], got {getattr(self, name)}.")
        if self.jitter_s < 0:
            raise UsageError(f"--jitter must be non-negative, got {self.jitter_s}.")


def schedule(latents: dict[str, np.ndarray], nodes: dict[str, SensorNode], ch: ChannelModel, *,
             period_s: float, rng: np.random.Generator) -> tuple[list[tuple[float, str, bytes]],
                                                                  int, int]:
    """(arrival time, node, frame bytes) sorted by time, plus frames sent and dropped."""
    events: list[tuple[float, str, bytes]] = []
    sent = dropped = 0
    gone = device_drops(ch, latents, rng) if ch.device_loss > 0 else {}
    for name, lat in latents.items():
        n = len(lat)
        a, b = ch.outage.get(name, (0.0, 0.0))
        lost = gone.get(name)
        for i in range(n):
            t = i * period_s
            sent += 1
            if a * n <= i < b * n or (lost is not None and lost[i]) or rng.random() < ch.loss:
                dropped += 1
                continue
            data = nodes[name].frame(i, lat[i], round(t * 1e6))
            arrive = t + ch.base_delay_s + rng.uniform(0, ch.jitter_s)
            if rng.random() < ch.reorder_rate:        # held back behind later windows
                arrive += rng.uniform(1.0, 3.0) * period_s
            events.append((arrive, name, data))
            if rng.random() < ch.duplicate_rate:
                events.append((arrive + rng.uniform(0, max(period_s, ch.jitter_s)), name, data))
    events.sort(key=lambda e: e[0])
    return events, sent, dropped


@dataclass
class ScenarioResult:
    """Accuracy and transport numbers of one channel setting (accuracy on predicted windows)."""

    name: str
    loss: float
    outage: dict[str, tuple[float, float]]
    windows: int
    predicted: int
    empty: int
    coverage: float
    accuracy: float | None
    macro_f1: float | None
    accuracy_all: float          # windows without a prediction count as wrong
    offline_agreement: float | None
    frames_sent: int
    frames_dropped: int
    frames_received: int
    duplicates: int
    late: int
    reasons: dict[str, int]
    latency_s: dict[str, Any]
    device_loss: float = 0.0
    device_coverage: dict[str, float] = field(default_factory=dict)  # windows with the device


@dataclass
class SimulationResult:
    """The simulation: settings, offline reference, loss table, missing-modality table."""

    bundle: str
    transport: str
    windows: int
    settings: dict[str, Any]
    offline: dict[str, float]               # deployed pipeline, no network: subset -> accuracy
    loss_table: list[ScenarioResult]
    missing_table: list[ScenarioResult]
    clock_table: list[Any] = field(default_factory=list)   # clock_scenarios.ClockResult
    device_table: list[ScenarioResult] = field(default_factory=list)  # device loss, device out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def plot(self, path: str | Path) -> Path | None:
        """Accuracy vs loss and per missing modality; returns None when matplotlib is absent."""
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            log.warning("matplotlib is not installed; skipping the plot (pip install matplotlib)")
            return None
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        xs = [r.loss for r in self.loss_table]
        ax1.plot(xs, [r.accuracy_all for r in self.loss_table], "o-", label="accuracy (all)")
        ax1.plot(xs, [r.accuracy or 0 for r in self.loss_table], "s--", label="accuracy (pred.)")
        ax1.plot(xs, [r.macro_f1 or 0 for r in self.loss_table], "^:", label="macro-F1 (pred.)")
        ax1.set(xlabel="frame loss rate", ylabel="score", ylim=(0, 1.05), title="vs frame loss")
        ax1.legend()
        names = [r.name for r in self.missing_table]
        ax2.bar(names, [r.accuracy or 0 for r in self.missing_table])
        ax2.set(ylabel="accuracy", ylim=(0, 1.05), title="one modality fully out")
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def load_windows(manifest: Manifest, data: str | Path | None) -> tuple[dict[str, np.ndarray],
                                                                     np.ndarray]:
    """Raw test windows {modality: (N, C, T)} and labels (see ``load_windows_from``)."""
    xs, y, _ = load_windows_from(manifest, data)
    return xs, y


def load_windows_from(manifest: Manifest, data: str | Path | None
                      ) -> tuple[dict[str, np.ndarray], np.ndarray, str]:
    """Raw test windows, labels and where they came from: ``data`` (.npz), else the run's test
    split when its dataset loads here, else the bundle's samples.npz, else the named dataset."""
    if data is not None:
        xs, y = load_samples(data, manifest.names, manifest=manifest)
        return xs, y, str(data)
    src = manifest.provenance.source.to_json() if manifest.provenance.source else {}
    samples = manifest.provenance.samples
    samples_path = (manifest.path(samples.path) if samples is not None
                    and isinstance(samples.path, str) else None)
    has_samples = samples_path is not None and samples_path.is_file()
    problem = None
    if src.get("run") and Path(src["run"], "run.json").is_file():
        try:
            return (*_run_test_split(manifest, src), f"run test split ({src['run']})")
        except (DataError, UsageError, ImportError) as e:
            if not has_samples:
                raise
            problem = str(e)
    if has_samples:
        xs, y = load_samples(samples_path, manifest.names, manifest=manifest)
        label = "bundle samples.npz"
        if problem:
            log.warning("the run's test split does not load here (%s); using %s", problem,
                        samples_path)
            label += f" (the run's test split does not load here: {problem})"
        return xs, y, label
    if src.get("dataset"):
        from crossl_edge.data.registry import load_dataset
        test = load_dataset(src["dataset"], path=src.get("data_path"),
                            **(src.get("data_options") or {})).test
        return (*_pick(manifest, test), f"dataset {src['dataset']} test split")
    raise UsageError("the bundle does not name its training data; pass --data FILE.npz "
                     "(keys x_<modality> (N, C, T) and y).")


def _run_test_split(manifest: Manifest, src: dict[str, Any]
                    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    from crossl_edge.rundir import load_run_dataset, read_run
    return _pick(manifest, load_run_dataset(read_run(src["run"]), data=src.get("data_path")).test)


def _pick(manifest: Manifest, test: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    missing = [n for n in manifest.names if n not in test.names]
    if missing:
        raise DataError(f"the run's test data lacks modalities {missing}; pass --data FILE.npz.")
    return {n: test.data[n] for n in manifest.names}, test.labels


def simulate(bundle: str | Path, *, data: str | Path | None = None,
             loss_rates: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5),
             outage: dict[str, tuple[float, float]] | None = None, jitter_s: float = 0.0,
             duplicate_rate: float = 0.0, reorder_rate: float = 0.0, seed: int = 0,
             transport: str = "inproc", deadline_s: float = 0.25, period_s: float = 0.02,
             backend: str | None = None, max_windows: int | None = None,
             clocks: Any = None, device_loss_rates: tuple[float, ...] = ()) -> SimulationResult:
    """Run every loss rate, then each modality fully out, then each device loss rate and (when
    a device carries several modalities) each device fully out, through the channel and the
    aggregator; with ``clocks`` (a ``clock_scenarios.ClockSweep``) also the node-clock sweep.
    ``outage`` may name devices: all their modalities go out together."""
    if transport not in TRANSPORTS:
        raise UsageError(f"unknown transport {transport!r}; choose inproc or udp.")
    if not (math.isfinite(period_s) and math.isfinite(deadline_s)) or period_s <= 0 \
            or deadline_s <= 0:
        raise UsageError("--deadline and the window period must be positive.")
    manifest = open_bundle(bundle)
    outage = expand_outage(manifest, outage)
    xs, y, data_label = load_windows_from(manifest, data)
    if max_windows is not None:
        xs, y = {k: v[:max_windows] for k, v in xs.items()}, y[:max_windows]
    nodes = {m.name: SensorNode(manifest, m, backend=backend) for m in manifest.modalities}
    latents = {n: np.stack([node.encode(x) for x in xs[n]]) for n, node in nodes.items()}
    oracle = _Offline(manifest, latents, backend)
    base: dict[str, Any] = {"jitter_s": jitter_s, "duplicate_rate": duplicate_rate,
                            "reorder_rate": reorder_rate}
    runs: list[tuple[str, ChannelModel]] = [
        (f"loss={p:g}", ChannelModel(loss=p, outage=dict(outage or {}), **base))
        for p in loss_rates]
    runs += [(f"no {m.name}", ChannelModel(outage={m.name: (0.0, 1.0)}, **base))
             for m in manifest.modalities]
    n_missing = len(runs)
    runs += device_runs(manifest, device_loss_rates, outage or {}, base)
    results = []
    for k, (name, ch) in enumerate(runs):
        rng = np.random.default_rng([seed, k])
        events, sent, dropped = schedule(latents, nodes, ch, period_s=period_s, rng=rng)
        run = run_udp if transport == "udp" else run_inproc
        preds, counters = run(manifest, events, deadline_s=deadline_s, backend=backend)
        results.append(_score(name, ch, preds, counters, y, oracle, sent, dropped,
                              manifest.device_map))
        log.info("%s: coverage %.2f accuracy %s", name, results[-1].coverage,
                 results[-1].accuracy)
    clock_table = []
    if clocks is not None:
        from crossl_edge.sim.clock_scenarios import cached, clock_sweep
        encoders = {n: cached(node.encode) for n, node in nodes.items()}
        clock_table = clock_sweep(manifest, encoders, xs, y, oracle, clocks, seed=seed,
                                  transport=transport, backend=backend)
    n_loss = len(loss_rates)
    settings = {**base, "seed": seed, "deadline_s": deadline_s, "period_s": period_s,
                "loss_rates": list(loss_rates), "outage": outage or {},
                "data": data_label, "device_loss_rates": list(device_loss_rates),
                "devices": [d.to_json() for d in manifest.device_map],
                "node_encoder": sorted({n.kind for n in nodes.values()})}
    if clocks is not None:
        settings["clocks"] = asdict(clocks)
    return SimulationResult(str(bundle), transport, len(y), settings, oracle.accuracy(y),
                            results[:n_loss], results[n_loss:n_missing], clock_table,
                            results[n_missing:])



class _Offline:
    """The deployed pipeline without a network: phone model on dequantized int8 latents."""

    def __init__(self, manifest: Manifest, latents: dict[str, np.ndarray],
                 backend: str | None) -> None:
        self.agg = PhoneAggregator(manifest, backend=backend)
        self.names = manifest.names
        self.deq = {i: manifest.modalities[i].latent_quant.dequantize(latents[n])
                    for i, n in enumerate(self.names)}
        self._cache: dict[tuple[int, tuple[str, ...]], int] = {}

    def predict(self, i: int, present: tuple[str, ...]) -> int:
        key = (i, present)
        if key not in self._cache:
            lat = {j: self.deq[j][i] for j, n in enumerate(self.names) if n in present}
            self._cache[key] = int(np.argmax(self.agg.infer(lat)))
        return self._cache[key]

    def accuracy(self, y: np.ndarray) -> dict[str, float]:
        from crossl_edge.metrics import modality_subsets
        return {"+".join(s): float(np.mean([self.predict(i, s) == y[i] for i in range(len(y))]))
                for s in modality_subsets(self.names)}


def _score(name: str, ch: ChannelModel, preds: list[Prediction], counters: dict[str, Any],
           y: np.ndarray, oracle: _Offline, sent: int, dropped: int,
           devices: list[Any]) -> ScenarioResult:
    n_classes = len(oracle.agg.manifest.classes)
    got = [p for p in preds if not p.empty and p.seq < len(y)]
    reasons: dict[str, int] = {}
    for p in preds:
        reasons[p.reason] = reasons.get(p.reason, 0) + 1
    yt = np.array([y[p.seq] for p in got], np.int64)
    yp = np.array([p.class_index for p in got], np.int64)
    s = scores(yt, yp, n_classes) if got else None
    agree = [oracle.predict(p.seq, tuple(p.present)) == p.class_index for p in got]
    return ScenarioResult(
        name=name, loss=ch.loss, outage=dict(ch.outage), windows=len(y), predicted=len(got),
        empty=sum(p.empty for p in preds), coverage=len(got) / max(len(y), 1),
        accuracy=s["accuracy"] if s else None, macro_f1=s["macro_f1"] if s else None,
        accuracy_all=float((yt == yp).sum()) / max(len(y), 1),
        offline_agreement=float(np.mean(agree)) if agree else None,
        frames_sent=sent, frames_dropped=dropped, frames_received=int(counters["received"]),
        duplicates=int(counters["duplicates"]), late=int(counters["late"]), reasons=reasons,
        latency_s=latency_summary([p.latency_s for p in got]), device_loss=ch.device_loss,
        device_coverage={d.name: sum(d.name in p.devices for p in got) / max(len(y), 1)
                         for d in devices})
