"""Fusion under node clocks and radios: run netsim scenarios through the phone aggregator and
score accuracy, agreement with the offline pipeline, misaligned windows and latency.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crossl_edge.errors import UsageError
from crossl_edge.manifest import Manifest
from crossl_edge.runtime.serve import latency_summary
from crossl_edge.sim.netsim import BleLink, NetConfig, NodeClock, SentFrame, SimNode, deliver
from crossl_edge.sim.runners import run_inproc, run_udp
from crossl_edge.wire.frame import fingerprint32

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClockSweep:
    """Drift values to sweep (node i gets +d or -d alternately), start spread, restarts."""

    drift_ppm: tuple[float, ...] = (0.0, 20.0, 100.0, 1000.0, 20000.0)
    start_spread_s: float = 3.0             # node i boots at spread * i / (M - 1)
    restarts: int = 1                       # node 0 reboots this many times, evenly spaced
    beacon_interval_s: float = 1.0
    link: BleLink = field(default_factory=BleLink)
    legacy: bool = True                     # also run free-running v1 nodes (no beacons)
    deadline_s: float | None = None         # default: half a window
    loss: float = 0.0
    time_scale: float = 0.01                # UDP only: real seconds per simulated second

    def __post_init__(self) -> None:
        if not self.drift_ppm or not all(abs(d) < 1e6 for d in self.drift_ppm):
            raise UsageError("--drift needs one or more crystal errors in ppm, e.g. 0,20,100.")
        if self.beacon_interval_s <= 0 or self.start_spread_s < 0 or self.restarts < 0:
            raise UsageError("--beacon must be positive, --start-spread and --restarts "
                             "non-negative.")
        if self.link.frames_per_event < 1 or self.link.mtu < 23 or \
                self.link.conn_interval_s <= 0:
            raise UsageError("--conn-interval must be positive, --frames-per-event >= 1 and "
                             "--mtu >= 23 (the BLE minimum).")


@dataclass
class ClockResult:
    """One clock scenario: how many windows were fused right, and how late."""

    name: str
    mode: str                       # sync (v2, beacons) | legacy (v1, free-running)
    drift_ppm: float
    start_spread_s: float
    restarts: int
    windows: int
    predicted: int
    complete: int                   # predicted windows that fused every modality
    coverage: float
    accuracy_all: float             # windows without a prediction count as wrong
    offline_agreement: float | None  # prediction == offline pipeline for the same modalities
    misaligned_rate: float | None   # predicted windows fusing a latent of other samples
    latency_s: dict[str, Any]       # prediction time - the window's last sample (phone clock)
    frames_sent: int
    frames_received: int
    resyncs: int
    restarts_detected: int


def cached(encode: Any) -> Any:
    """``encode`` memoized on the window's bytes (nodes re-encode the same windows often)."""
    memo: dict[bytes, np.ndarray] = {}

    def run(raw: np.ndarray) -> np.ndarray:
        key = np.ascontiguousarray(raw, np.float32).tobytes()
        if key not in memo:
            memo[key] = encode(raw)
        return memo[key]

    return run


def clocks_for(names: list[str], drift_ppm: float, sweep: ClockSweep,
               duration_s: float, *, device_of: dict[str, str] | None = None
               ) -> dict[str, NodeClock]:
    """Device i: boots at spread * i / (D-1), drift (-1)^i * drift; device 0 reboots evenly.
    The modalities of one device (``device_of``: modality -> device; default each its own)
    share its clock, so they boot, drift and restart together."""
    owner = {n: (device_of or {}).get(n, n) for n in names}
    devices = list(dict.fromkeys(owner.values()))
    m = len(devices)
    clocks = {}
    for i, d in enumerate(devices):
        restarts = tuple(duration_s * (r + 1) / (sweep.restarts + 1)
                         for r in range(sweep.restarts)) if i == 0 else ()
        clocks[d] = NodeClock(start_s=sweep.start_spread_s * i / max(m - 1, 1),
                              drift_ppm=drift_ppm * (1 if i % 2 == 0 else -1), restarts=restarts)
    return {n: clocks[owner[n]] for n in names}


def run_clock_scenario(manifest: Manifest, encoders: dict[str, Any], xs: dict[str, np.ndarray],
                       y: np.ndarray, oracle: Any, net: NetConfig, *, name: str,
                       sweep: ClockSweep, seed: int, transport: str = "inproc",
                       backend: str | None = None, time_scale: float = 1.0) -> ClockResult:
    """Simulate every node's life, deliver its frames over BLE-like links, fuse, score."""
    rng = np.random.default_rng(seed)
    n_win = len(y)
    fp = fingerprint32(manifest.fingerprint)
    m0 = manifest.modalities[0]
    win_s = m0.window / m0.sample_rate_hz
    deadline = sweep.deadline_s or win_s / 2
    end_s = n_win * win_s + 2 * deadline
    sent: list[SentFrame] = []
    arrivals: list[tuple[float, SentFrame]] = []
    resyncs = 0
    dev = {n: i for i, d in enumerate(manifest.device_map) for n in d.modalities}
    phases: dict[int, float] = {}
    for m in manifest.modalities:
        world = np.concatenate(list(xs[m.name]), axis=1)           # (C, N*T)
        k = dev[m.name]     # one device: one clock (same seed), one radio connection (phase)
        node = SimNode(m.name, m.id, fp, world, window=m.window, rate_hz=m.sample_rate_hz,
                       clock=net.clocks[m.name], encode=encoders[m.name], seed=seed * 100 + k)
        if k not in phases:
            phases[k] = float(rng.uniform(0, net.link.conn_interval_s))
        phase = phases[k]
        frames = node.run(net, end_s, phase)
        resyncs += node.resyncs
        sent += frames
        arrivals += deliver(frames, net.link, phase)
    kept = [(t, f) for t, f in arrivals if rng.random() >= sweep.loss]
    kept.sort(key=lambda e: e[0])
    first: dict[tuple[str, int], tuple[float, SentFrame]] = {}
    for t, f in kept:
        first.setdefault((f.node, f.key), (t, f))
    events = [(t * time_scale, f.node, f.data) for t, f in kept]
    run = run_udp if transport == "udp" else run_inproc
    preds, counters = run(manifest, events, deadline_s=deadline * time_scale,
                          backend=backend)
    got, seen = [], set()
    for p in preds:     # the first prediction of each window (a v1 restart repeats seqs)
        if not p.empty and 0 <= p.seq < n_win and p.seq not in seen:
            seen.add(p.seq)
            got.append(p)
    misaligned, agree, lat = [], [], []
    for p in got:
        used = [first[(n, p.seq)] for n in p.present if (n, p.seq) in first]
        misaligned.append(not all(f.aligned for _, f in used))
        agree.append(oracle.predict(p.seq, tuple(p.present)) == p.class_index)
        t_first = min(t for t, _ in used) if used else 0.0      # emit - last sample's time
        last_sample = (p.seq + 1) * win_s - 1 / m0.sample_rate_hz
        lat.append(t_first + p.latency_s / time_scale - last_sample)
    correct = sum(int(y[p.seq] == p.class_index) for p in got)
    mode = "sync" if net.beacon_interval_s else "legacy"
    return ClockResult(
        name=name, mode=mode, drift_ppm=float(net.clocks[manifest.names[0]].drift_ppm),
        start_spread_s=sweep.start_spread_s, restarts=sweep.restarts, windows=n_win,
        predicted=len(got), complete=sum(len(p.present) == len(manifest.names) for p in got),
        coverage=len(got) / max(n_win, 1),
        accuracy_all=correct / max(n_win, 1),
        offline_agreement=float(np.mean(agree)) if agree else None,
        misaligned_rate=float(np.mean(misaligned)) if misaligned else None,
        latency_s=latency_summary(lat), frames_sent=len(sent),
        frames_received=int(counters["received"]), resyncs=resyncs,
        restarts_detected=int(counters.get("restarts", 0)))


def clock_sweep(manifest: Manifest, encoders: dict[str, Any], xs: dict[str, np.ndarray],
                y: np.ndarray, oracle: Any, sweep: ClockSweep, *, seed: int = 0,
                transport: str = "inproc", backend: str | None = None) -> list[ClockResult]:
    """Every drift value, synced (v2 + beacons) and, if asked, legacy (v1, no beacons)."""
    m0 = manifest.modalities[0]
    if any(m.window / m.sample_rate_hz != m0.window / m0.sample_rate_hz
           for m in manifest.modalities):
        raise UsageError("the modalities' windows last different times; the clock simulation "
                         "needs one window duration for all.")
    duration = len(y) * m0.window / m0.sample_rate_hz
    modes = [sweep.beacon_interval_s] + ([None] if sweep.legacy else [])
    out = []
    for k, drift in enumerate(sweep.drift_ppm):
        clocks = clocks_for(manifest.names, drift, sweep, duration,
                            device_of={n: d.name for d in manifest.device_map
                                       for n in d.modalities})
        for bi in modes:
            net = NetConfig(clocks=clocks, link=sweep.link, beacon_interval_s=bi)
            mode = "sync" if bi else "legacy"
            res = run_clock_scenario(manifest, encoders, xs, y, oracle, net,
                                     name=f"{mode} +-{drift:g}ppm", sweep=sweep,
                                     seed=seed * 1000 + k, transport=transport, backend=backend,
                                     time_scale=sweep.time_scale if transport == "udp" else 1.0)
            log.info("%s: agreement %s misaligned %s", res.name, res.offline_agreement,
                     res.misaligned_rate)
            out.append(res)
    return out
