"""Sensor nodes with their own clocks and radios: drift, start offsets, restarts, phone beacons
and BLE-like delivery, simulated in event time; each node samples one shared world signal.

A synced node runs the time base of ``crossl_edge.wire.timebase`` (the C node's algorithm) and
sends v2 frames keyed by grid window; a legacy node counts its own windows and sends v1 frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from crossl_edge.wire import timebase as T
from crossl_edge.wire.frame import LatentDType, LatentFrame, encode_frame


@dataclass(frozen=True)
class NodeClock:
    """One node's clock: boot time (s of true time), crystal error, reboots."""

    start_s: float = 0.0
    drift_ppm: float = 0.0
    restarts: tuple[float, ...] = ()        # true times at which the node reboots
    reboot_s: float = 0.5                   # offline time of a reboot


@dataclass(frozen=True)
class BleLink:
    """BLE-like delivery: data moves only at connection events (each node its own phase)."""

    conn_interval_s: float = 0.03
    frames_per_event: int = 4               # link-layer packets per event and direction
    mtu: int = 247                          # ATT MTU: a notification carries mtu - 3 bytes
    min_delay_s: float = 0.001              # radio + stack after the event

    def packets(self, size: int) -> int:
        return max(1, math.ceil(size / (self.mtu - 3)))


@dataclass(frozen=True)
class NetConfig:
    """The network: per-node clocks, the link, beacons (None: legacy free-running v1 nodes)."""

    clocks: dict[str, NodeClock]
    link: BleLink = field(default_factory=BleLink)
    beacon_interval_s: float | None = 1.0
    epoch: int = 1


@dataclass
class SentFrame:
    """A frame a node handed to its radio, and which world samples its window really held."""

    ready_s: float
    node: str
    data: bytes
    key: int                                # grid window (v2) or node seq (v1)
    aligned: bool                           # the samples are exactly world window ``key``


def _conn_events(phase: float, ci: float, t: float) -> float:
    """First connection event at or after true time t."""
    return phase + math.ceil(max(0.0, t - phase) / ci - 1e-12) * ci


def _boot_segments(clock: NodeClock, end_s: float) -> list[tuple[float, float]]:
    starts = [clock.start_s] + [r + clock.reboot_s for r in clock.restarts]
    ends = list(clock.restarts) + [end_s]
    return [(a, b) for a, b in zip(starts, ends, strict=True) if a < b]


class SimNode:
    """One modality's node over its whole life (boots, beacons, samples, windows, frames)."""

    def __init__(self, name: str, modality_id: int, fingerprint: int, world: np.ndarray, *,
                 window: int, rate_hz: float, clock: NodeClock, encode: Callable, seed: int
                 ) -> None:
        self.name, self.mid, self.fp = name, modality_id, fingerprint
        self.world, self.window, self.fs = world, window, rate_hz
        self.rate_mhz = round(rate_hz * 1000)
        self.clock, self.encode = clock, encode
        self.rng = np.random.default_rng(seed)
        self.resyncs = 0

    def _world_index(self, t: float) -> int:
        return int(round(t * self.fs))

    def run(self, net: NetConfig, end_s: float, phase: float) -> list[SentFrame]:
        out: list[SentFrame] = []
        for boot, (b0, b1) in enumerate(_boot_segments(self.clock, end_s)):
            local0 = int(self.rng.integers(0, 2**32))
            scale = 1 + self.clock.drift_ppm * 1e-6

            def local(t: float, b0: float = b0, local0: int = local0, scale: float = scale) -> int:
                return local0 + round((t - b0) * 1e6 * scale)

            def true(lu: int, b0: float = b0, local0: int = local0, scale: float = scale) -> float:
                return b0 + (lu - local0) / 1e6 / scale

            seg = (self._run_synced if net.beacon_interval_s else self._run_legacy)(
                net, boot, b0, b1, local, true, phase)
            out += seg
        return out

    def _frame(self, *, seq: int, ts: int, raw: np.ndarray, v2: dict | None) -> bytes:
        lat = self.encode(raw)
        extra = {"version": 2, **v2} if v2 else {}
        return encode_frame(LatentFrame(self.mid, seq & 0xFFFFFFFF, ts & (2**64 - 1), self.fp,
                                        LatentDType.INT8, lat, **extra))

    def _window_of(self, idx: list[int]) -> tuple[np.ndarray, bool, int]:
        raw = self.world[:, idx]
        k, r = divmod(idx[0], self.window)
        return raw, r == 0 and idx == list(range(idx[0], idx[0] + self.window)), k

    def _run_legacy(self, net: NetConfig, boot: int, b0: float, b1: float, local: Callable,
                    true: Callable, phase: float) -> list[SentFrame]:
        out, idx, seq = [], [], 0
        period_us = 1e6 / self.fs
        n = 0
        while True:
            lu = local(b0) + round(n * period_us)
            t = true(lu)
            j = self._world_index(t)
            if t >= b1 or j >= self.world.shape[1]:
                return out
            idx.append(j)
            n += 1
            if len(idx) == self.window:
                raw, aligned, k = self._window_of(idx)
                data = self._frame(seq=seq, ts=lu, raw=raw, v2=None)
                out.append(SentFrame(t, self.name, data, seq, aligned and k == seq))
                seq, idx = seq + 1, []

    def _run_synced(self, net: NetConfig, boot: int, b0: float, b1: float, local: Callable,
                    true: Callable, phase: float) -> list[SentFrame]:
        link, bi = net.link, float(net.beacon_interval_s or 0)
        s, grid = T.SyncState(), T.GridWindower(self.window, self.window)
        ring: dict[int, int] = {}
        out: list[SentFrame] = []
        seq, n_next = 0, None
        j = math.ceil(b0 / bi)
        t_beacon = _conn_events(phase, link.conn_interval_s, j * bi + link.min_delay_s)
        while True:
            t_sample = math.inf
            if n_next is not None:
                due = T.sample_due_local(s, n_next, self.rate_mhz)
                t_sample = true(due)
            if min(t_sample, t_beacon) >= b1:
                return out
            if t_beacon <= t_sample:
                r = T.on_beacon(s, epoch=net.epoch, phone_us=round(j * bi * 1e6), origin_us=0,
                                local_us=local(t_beacon))
                lu_now = local(t_beacon)
                nxt = max(T.sample_index(s, lu_now, self.rate_mhz), 0)
                if T.sample_due_local(s, nxt, self.rate_mhz) < lu_now:
                    nxt += 1                           # the first sample still to come
                if r == T.SYNC_RESYNC:
                    self.resyncs += 1
                    grid.reset()
                    n_next = nxt
                else:
                    n_next = max(n_next if n_next is not None else 0, nxt)
                j += 1
                t_beacon = _conn_events(phase, link.conn_interval_s, j * bi + link.min_delay_s)
                continue
            wj = self._world_index(t_sample)
            if wj >= self.world.shape[1]:
                return out
            lu = T.sample_due_local(s, n_next, self.rate_mhz)
            n = T.sample_index(s, lu, self.rate_mhz)
            ring[n % self.window] = wj
            k = grid.push(n)
            n_next = n + 1
            if k >= 0:
                idx = [ring[(k * self.window + i) % self.window] for i in range(self.window)]
                raw, aligned, wk = self._window_of(idx)
                data = self._frame(seq=seq, ts=lu, raw=raw,
                                   v2={"window": k & 0xFFFFFFFF, "epoch": net.epoch,
                                       "boot": boot & 0xFFFF})
                out.append(SentFrame(t_sample, self.name, data, k, aligned and wk == k))
                seq += 1


def deliver(frames: list[SentFrame], link: BleLink, phase: float) -> list[tuple[float, SentFrame]]:
    """When each frame of one node reaches the phone: connection events, packets per event."""
    out: list[tuple[float, SentFrame]] = []
    t_event, left = -math.inf, 0
    for f in sorted(frames, key=lambda f: f.ready_s):
        need = link.packets(len(f.data))
        t = _conn_events(phase, link.conn_interval_s, max(f.ready_s, t_event))
        if t == t_event and left < need:
            t += link.conn_interval_s
        if t != t_event:
            t_event, left = t, link.frames_per_event
        while need > left:                       # spread over several events
            need -= left
            t_event += link.conn_interval_s
            left = link.frames_per_event
        left -= need
        out.append((t_event + link.min_delay_s, f))
    return out
