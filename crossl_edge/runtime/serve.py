"""The serve loop: frames from a transport -> PhoneAggregator -> predictions as JSON lines.

Live sources also get the phone's sync beacon every ``beacon_interval_s`` (the time base of
frame format v2). Signal handling belongs to the caller (the CLI sets ``stop_event``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from crossl_edge.manifest import Manifest
from crossl_edge.runtime.aggregator import PhoneAggregator, Prediction
from crossl_edge.runtime.bundle import open_bundle
from crossl_edge.runtime.transports import CaptureWriter, ReplaySource, Source, open_source
from crossl_edge.wire.beacon import Beacon, encode_beacon
from crossl_edge.wire.frame import FrameError, fingerprint32
from crossl_edge.wire.hello import decode_hello, is_hello
from crossl_edge.wire.secure import PHONE_SENDER_BIT, NetworkKey, Opener, Sealer, SealError

log = logging.getLogger(__name__)


def latency_summary(values: list[float] | np.ndarray) -> dict[str, float | int | None]:
    """n, mean, p50, p90, p99 and max of latencies in seconds (None when there are none)."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return {"n": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return {"n": int(v.size), "mean": float(v.mean()), "p50": float(p50), "p90": float(p90),
            "p99": float(p99), "max": float(v.max())}


class _Writes:
    """Writes that survive a full or failing disk: the first failure of each output is logged
    once, later ones only counted, and serving goes on."""

    def __init__(self) -> None:
        self.lost: dict[str, int] = {}

    def __call__(self, what: str, fn: Callable[..., Any], *args: Any, count: bool = True) -> None:
        try:
            fn(*args)
        except (OSError, ValueError) as e:  # ValueError: the file was closed after a failure
            if what not in self.lost:
                log.error("cannot write %s (%s); serving goes on, unwritten %s are counted",
                          what, getattr(e, "strerror", None) or e, what)
            self.lost[what] = self.lost.get(what, 0) + int(count)


class Reservoir:
    """A bounded uniform sample of a stream of numbers (for latency percentiles)."""

    values: list[float]

    def __init__(self, capacity: int = 100_000, *, seed: int = 0) -> None:
        self.capacity, self.seen, self.values = capacity, 0, []
        self._rng = random.Random(seed)

    def add(self, x: float) -> None:
        self.seen += 1
        if len(self.values) < self.capacity:
            self.values.append(x)
        else:
            j = self._rng.randrange(self.seen)
            if j < self.capacity:
                self.values[j] = x


@dataclass
class ServeStats:
    """What one serve run did: counts, reasons, latency percentiles, why it stopped."""

    frames: int
    predictions: int
    empty_windows: int
    duration_s: float
    frames_per_s: float
    latency_s: dict[str, Any]
    counters: dict[str, Any]
    source: dict[str, int]
    stopped_by: str
    backend: str = ""
    reasons: dict[str, int] = field(default_factory=dict)
    lost_writes: dict[str, int] = field(default_factory=dict)  # predictions/frames not written
    beacons: dict[str, int] = field(default_factory=dict)   # epoch, sent, deliveries
    security: dict[str, Any] = field(default_factory=dict)  # with a key: opened, rejected

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def serve(bundle: str | Path | Manifest, *, source: Source | str, deadline_s: float = 0.5,
          max_open_windows: int = 64, backend: str | None = None,
          out: TextIO | str | Path | None = None, max_frames: int | None = None,
          duration_s: float | None = None, stop_event: threading.Event | None = None,
          capture: str | Path | None = None,
          on_prediction: Callable[[Prediction], None] | None = None,
          poll_interval_s: float | None = None,
          ready: threading.Event | None = None,
          beacon_interval_s: float | None = 1.0, epoch: int | None = None,
          key: NetworkKey | None = None) -> ServeStats:
    """Run the phone aggregator on ``source`` until stopped; write one JSON line per window.

    Stops on ``stop_event``, after ``max_frames`` frames or ``duration_s`` seconds, or at the end
    of a replay (whose remaining windows then expire on the recorded clock). ``ready`` is set once
    the model is loaded and the source is open. With ``key`` only sealed messages of that
    network are taken (each rejection counted by reason), beacons are sealed and go only to
    peers that sent a message that verified.
    """
    manifest = open_bundle(bundle)
    src = open_source(source) if isinstance(source, str) else source
    owns_src = isinstance(source, str)
    stream, owns_out = _open_out(out)
    cap = CaptureWriter(capture) if capture else None
    try:
        opener = _opener(key, src)
        agg = PhoneAggregator(manifest, deadline_s=deadline_s, max_open_windows=max_open_windows,
                              backend=backend, clock=src.clock)
        beacons = None if src.exhausted or isinstance(src, ReplaySource) or \
            not beacon_interval_s else BeaconClock(manifest, src, beacon_interval_s, epoch, key=key)
        poll = poll_interval_s or min(0.05, deadline_s / 10,
                                      (beacon_interval_s or 1.0) / 4)
        return _loop(agg, src, stream, cap, max_frames=max_frames, duration_s=duration_s,
                     stop_event=stop_event, on_prediction=on_prediction, ready=ready,
                     poll=poll, beacons=beacons, opener=opener)
    finally:
        if cap:
            with contextlib.suppress(OSError):
                cap.close()
        if owns_out and stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
        if owns_src:
            src.close()


def _opener(key: NetworkKey | None, src: Source) -> Opener | None:
    if key is None:
        return None
    from crossl_edge.errors import UsageError
    try:
        opener = Opener(key)
    except SealError as e:      # `cryptography` is not installed
        raise UsageError(f"{e}.") from e
    src.gated = True
    log.info("accepting sealed messages of network 0x%08x only", key.network_id)
    return opener


def _open_out(out: TextIO | str | Path | None) -> tuple[TextIO | None, bool]:
    if out is None or hasattr(out, "write"):
        return out, False   # type: ignore[return-value]
    from crossl_edge.errors import UsageError
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        return open(out, "w"), True  # noqa: SIM115 - closed by serve()
    except OSError as e:
        raise UsageError(f"cannot write predictions to {out} ({e.strerror}); "
                         "check the --out path.") from e


class BeaconClock:
    """The phone side of the time base: a sync beacon to the nodes every ``interval_s``.

    The epoch (random unless given) names this serve run's grid; its origin is the phone time
    of the first beacon, so window k starts at origin + k * window duration."""

    def __init__(self, manifest: Manifest, src: Source, interval_s: float,
                 epoch: int | None = None, *, key: NetworkKey | None = None) -> None:
        if not interval_s > 0:
            from crossl_edge.errors import UsageError
            raise UsageError(f"--beacon must be a positive number of seconds, got {interval_s}.")
        self.src, self.interval_s = src, float(interval_s)
        self.epoch = int.from_bytes(os.urandom(2), "little") if epoch is None else int(epoch)
        self.fingerprint = fingerprint32(manifest.fingerprint)
        self.origin_us: int | None = None
        self.sent = self.delivered = self.hellos = self.hellos_rejected = 0
        self._next = 0.0
        self._last_sent = float("-inf")
        # sealed beacons: a random phone session (sender bit 31 set) and boot name this run
        self.sealer = None if key is None else Sealer(
            key, sender=PHONE_SENDER_BIT | int.from_bytes(os.urandom(4), "little") >> 1,
            boot=int.from_bytes(os.urandom(4), "little"))

    def tick(self) -> None:
        now = self.src.clock()
        if now < self._next:
            return
        phone_us = round(now * 1e6)
        if self.origin_us is None:
            self.origin_us = phone_us
        b = Beacon(epoch=self.epoch, phone_time_us=phone_us, origin_us=self.origin_us,
                   fingerprint=self.fingerprint, beacon_seq=self.sent & 0xFFFF)
        msg = encode_beacon(b)
        self.delivered += self.src.send(msg if self.sealer is None else self.sealer.seal(msg))
        self.sent += 1
        self._last_sent = now
        self._next = now + self.interval_s

    def on_hello(self, msg: bytes) -> None:
        """A node's hello (FRAME_FORMAT.md, "Bootstrap"): a valid one of this bundle gets a
        beacon at once (the transport already knows the sender); at most one per 0.1 s."""
        try:
            ok = decode_hello(msg).fingerprint == self.fingerprint
        except FrameError:
            ok = False
        self.hellos += ok
        self.hellos_rejected += not ok
        if ok and self.src.clock() - self._last_sent >= 0.1:
            self._next = 0.0
            self.tick()

    def stats(self) -> dict[str, int]:
        return {"epoch": self.epoch, "sent": self.sent, "delivered": self.delivered,
                "hellos": self.hellos, "hellos_rejected": self.hellos_rejected}


def _loop(agg: PhoneAggregator, src: Source, stream: TextIO | None, cap: CaptureWriter | None, *,
          max_frames: int | None, duration_s: float | None, stop_event: threading.Event | None,
          on_prediction: Callable[[Prediction], None] | None, ready: threading.Event | None,
          poll: float, beacons: BeaconClock | None = None,
          opener: Opener | None = None) -> ServeStats:
    lat = Reservoir()
    write = _Writes()
    frames = 0
    reasons: dict[str, int] = {}

    def emit(preds: list[Prediction]) -> None:
        for p in preds:
            reasons[p.reason] = reasons.get(p.reason, 0) + 1
            if not p.empty:
                lat.add(p.latency_s)
            if stream is not None:
                write("predictions", stream.write, json.dumps(p.to_json()) + "\n")
            if on_prediction is not None:
                on_prediction(p)

    t0 = time.monotonic()
    stopped_by = "stop"
    if ready is not None:
        ready.set()
    while True:
        if stop_event is not None and stop_event.is_set():
            stopped_by = "stop"
            break
        if duration_s is not None and time.monotonic() - t0 >= duration_s:
            stopped_by = "duration"
            break
        if max_frames is not None and frames >= max_frames:
            stopped_by = "max_frames"
            break
        if src.exhausted:
            stopped_by = "end of replay"
            break
        if beacons is not None:
            beacons.tick()
        for a in src.read(poll):
            if is_hello(a.frame):        # a node asking for its first beacon, not a frame
                if beacons is not None:
                    beacons.on_hello(a.frame)
                continue
            if cap is not None:
                write("capture frames", cap.write, a.frame, a.time)
            frames += 1
            if opener is not None:      # verified before anything decodes it
                opened = opener.open(a.frame)
                if opened is None:
                    continue
                src.admit(a.peer, a.time)
                a = a._replace(frame=opened.plain)
            emit(agg.submit(a.frame, now=a.time))
            if max_frames is not None and frames >= max_frames:
                break
        emit(agg.poll(src.clock()))
        if stream is not None:
            write("predictions", stream.flush, count=False)
    if src.exhausted:     # a replay: let the open windows expire on the recorded clock
        emit(agg.poll(src.clock() + agg.deadline_s))
    emit(agg.flush(src.clock()))
    if stream is not None:
        write("predictions", stream.flush, count=False)
    dur = time.monotonic() - t0
    c = agg.counters
    stats = ServeStats(frames=frames, predictions=c.predictions, empty_windows=c.empty_windows,
                       duration_s=dur, frames_per_s=frames / dur if dur > 0 else 0.0,
                       latency_s=latency_summary(lat.values), counters=c.to_json(),
                       source=asdict(src.stats), stopped_by=stopped_by, backend=agg.backend,
                       reasons=reasons, lost_writes=write.lost,
                       beacons=beacons.stats() if beacons else {},
                       security=opener.counters.to_json() if opener else {})
    log.info("serve stopped (%s): %d frames, %d predictions, %d empty windows", stopped_by,
             frames, c.predictions, c.empty_windows)
    return stats
