"""The phone-side aggregator: group latent frames by window, mask absent modalities, classify.

v2 frames are grouped by (sync epoch, grid window), v1 frames by their node's seq (aligned only
when nodes start together). Bounded memory, never raises on bad input: every rejected frame is
counted in ``Counters``; node restarts are detected and counted.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from crossl_edge.errors import UsageError
from crossl_edge.manifest import Manifest
from crossl_edge.runtime.backends import open_model
from crossl_edge.wire.frame import (
    FrameError,
    LatentDType,
    LatentFrame,
    decode_frame,
    fingerprint32,
)

log = logging.getLogger(__name__)

_REASON_COUNTER = {"complete": "complete", "deadline": "deadline", "evicted": "evicted",
                   "flush": "flushed"}


@dataclass
class Prediction:
    """One window's outcome; ``class_index`` is None for an empty window (nothing valid arrived)."""

    seq: int
    class_index: int | None
    class_name: str | None
    probabilities: list[float]
    present: list[str]
    latency_s: float            # first frame's arrival -> emit, phone-model compute included
    reason: str                 # complete | deadline | evicted | flush
    timestamp_us: int = 0       # node clock of the window's first valid frame (0 if none)
    inference_s: float = 0.0    # phone-model compute time alone
    epoch: int | None = None    # sync epoch of v2 frames (then seq is the grid window index)
    devices: list[str] = field(default_factory=list)   # devices with any of their frames here

    @property
    def empty(self) -> bool:
        return self.class_index is None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["empty"] = self.empty
        return d


@dataclass
class Counters:
    """What the aggregator saw; every frame lands in exactly one of the reject/accept buckets."""

    received: int = 0               # frames submitted (bytes or LatentFrame)
    decoded: int = 0                # passed the frame codec
    accepted: int = 0               # stored in an open window
    duplicates: int = 0             # same (seq, modality) again, before or after the emit
    late: int = 0                   # a modality's first frame for a window already emitted
    decode_errors: dict[str, int] = field(default_factory=dict)   # by FrameErrorReason name
    unknown_modality: int = 0
    fingerprint_mismatch: int = 0
    bad_latent: int = 0             # wrong length, unsupported dtype, or non-finite values
    windows_opened: int = 0
    predictions: int = 0            # windows classified
    empty_windows: int = 0          # windows reported with no valid modality (not classified)
    complete: int = 0
    deadline: int = 0
    evicted: int = 0                # pushed out by the cap on open windows
    flushed: int = 0
    inference_errors: int = 0
    restarts: int = 0               # a node's boot counter changed (v2) or its seq fell back (v1)
    frames_v1: int = 0
    frames_v2: int = 0
    device_windows: dict[str, int] = field(default_factory=dict)  # emitted windows holding any
    # frame of that device (a device is present when any of its modalities' frames arrive)

    @property
    def bad_crc(self) -> int:
        return self.decode_errors.get("BAD_CRC", 0)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["bad_crc"] = self.bad_crc
        return d


_V1 = -1            # the epoch part of a v1 frame's window key
_V1_RESTART_BACK = 16   # a v1 seq this far below the node's last one is a restart


@dataclass
class _Window:
    key: tuple[int, int]        # (epoch, grid window) for v2, (-1, seq) for v1
    first_arrival: float
    latents: dict[int, np.ndarray] = field(default_factory=dict)   # modality index -> float (D,)
    timestamp_us: int = 0


class PhoneAggregator:
    """Fuse whatever latents arrive per window (see the module docstring) and run the phone model.

    A window is emitted when all modalities arrived ("complete"), ``deadline_s`` after its first
    frame ("deadline", via ``poll`` or any later ``submit``), when more than ``max_open_windows``
    are open (oldest first, "evicted"), or by ``flush``.
    """

    def __init__(self, manifest: Manifest, *, deadline_s: float = 0.5, max_open_windows: int = 64,
                 backend: str | None = None, clock: Callable[[], float] = time.monotonic,
                 emitted_memory: int = 4096, threads: int = 1) -> None:
        if not math.isfinite(deadline_s) or deadline_s <= 0:   # NaN compares false to 0
            raise UsageError(f"--deadline must be a positive number of seconds, got {deadline_s}.")
        if max_open_windows < 1:
            raise UsageError(f"max_open_windows must be at least 1, got {max_open_windows}.")
        self.manifest = manifest
        self.deadline_s = float(deadline_s)
        self.max_open_windows = int(max_open_windows)
        self.clock = clock
        self.counters = Counters()
        self._index = {m.id: i for i, m in enumerate(manifest.modalities)}
        self._qparams = [m.latent_quant for m in manifest.modalities]
        self._fingerprint = fingerprint32(manifest.fingerprint)
        self._m, self._d = len(manifest.modalities), int(manifest.latent_dim)
        self._open: OrderedDict[tuple[int, int], _Window] = OrderedDict()  # by first arrival
        self._emitted: OrderedDict[tuple[int, int], frozenset[int]] = OrderedDict()
        self._nodes: dict[int, tuple[int, int, int]] = {}   # modality id -> (version, boot, seq)
        self._emitted_memory = int(emitted_memory)
        self._device_of = device_index(manifest)   # modality index -> device name
        self.model = self._open_phone_model(backend, threads)
        self.backend = self.model.backend

    def _open_phone_model(self, backend: str | None, threads: int) -> Any:
        arts = self.manifest.aggregator.artifacts
        if backend not in (None, "tflite", "onnx"):
            raise UsageError(f"unknown backend {backend!r}; choose tflite or onnx.")
        order = [k for k in ([backend] if backend else ["tflite", "onnx"]) if k in arts]
        for k, kind in enumerate(order):
            try:
                return open_model(self.manifest.path(arts[kind]), threads=threads)
            except UsageError:          # that runtime is not installed: try the next one
                if k == len(order) - 1:
                    raise
        raise UsageError(f"the bundle's phone model has no {backend or 'tflite/onnx'} artifact; "
                         "re-export the bundle.")

    # ------------------------------------------------------------------ intake

    def submit(self, frame: bytes | bytearray | memoryview | LatentFrame, *,
               now: float | None = None) -> list[Prediction]:
        """Take one frame (wire bytes or a LatentFrame); return the windows emitted as a result."""
        now = self.clock() if now is None else float(now)
        out = self.poll(now)
        c = self.counters
        c.received += 1
        if isinstance(frame, LatentFrame):
            f = frame
        else:
            try:
                f = decode_frame(frame)
            except FrameError as e:
                c.decode_errors[e.reason.name] = c.decode_errors.get(e.reason.name, 0) + 1
                return out
            except (TypeError, ValueError):
                c.decode_errors["INVALID"] = c.decode_errors.get("INVALID", 0) + 1
                return out
        c.decoded += 1
        self._track_node(f)
        key = (f.epoch, f.window) if f.version >= 2 else (_V1, f.seq)
        done = self._emitted.get(key)
        if done is not None:
            if self._index.get(f.modality_id) in done:
                c.duplicates += 1
            else:
                c.late += 1
            return out
        idx = self._index.get(f.modality_id)
        latent = None
        if idx is None:
            c.unknown_modality += 1
        elif f.fingerprint != self._fingerprint:
            c.fingerprint_mismatch += 1
        else:
            latent = self._latent(idx, f)
            if latent is None:
                c.bad_latent += 1
        w = self._open.get(key)
        if w is None:
            if latent is None and idx is None:
                return out     # a frame from a node we do not know opens no window
            out += self._make_room(now)
            w = self._open[key] = _Window(key, now)
            c.windows_opened += 1
        if latent is None:
            return out
        if idx in w.latents:
            c.duplicates += 1
            return out
        w.latents[idx] = latent
        if not w.timestamp_us:
            w.timestamp_us = f.timestamp_us
        c.accepted += 1
        if len(w.latents) == self._m:
            del self._open[key]
            out.append(self._emit(w, now, "complete"))
        return out

    def _track_node(self, f: LatentFrame) -> None:
        """Count versions; detect a node restart (new boot counter, or a v1 seq that fell
        back). A restarted v2 node re-syncs to the beacons before it sends again, so its new
        frames carry grid windows and meet no stale state; for v1 the seq-keyed memory of
        emitted windows is forgotten so that the new run of seqs is fused, not called late."""
        c = self.counters
        if f.version >= 2:
            c.frames_v2 += 1
        else:
            c.frames_v1 += 1
        last = self._nodes.get(f.modality_id)
        self._nodes[f.modality_id] = (f.version, f.boot, f.seq)
        if last is None or last[0] != f.version:
            return
        if f.version >= 2 and f.boot != last[1]:
            c.restarts += 1
            log.info("node of modality %d restarted (boot %d -> %d)", f.modality_id, last[1],
                     f.boot)
        elif f.version == 1 and _V1_RESTART_BACK <= (last[2] - f.seq) & 0xFFFFFFFF < 1 << 31:
            c.restarts += 1
            log.info("node of modality %d restarted (seq %d -> %d)", f.modality_id, last[2],
                     f.seq)
            for key in [k for k in self._emitted if k[0] == _V1]:
                del self._emitted[key]

    def _latent(self, idx: int, f: LatentFrame) -> np.ndarray | None:
        if f.latent.size != self._d:
            return None
        if f.dtype == LatentDType.INT8:
            return self._qparams[idx].dequantize(f.latent)
        if f.dtype == LatentDType.FLOAT32:
            x = f.latent.astype(np.float32)
            return x if np.isfinite(x).all() else None
        return None     # int16 latents need quant params the manifest does not carry

    def _make_room(self, now: float) -> list[Prediction]:
        out = []
        while len(self._open) >= self.max_open_windows:
            _, w = self._open.popitem(last=False)
            out.append(self._emit(w, now, "evicted"))
        return out

    # ------------------------------------------------------------------ output

    def poll(self, now: float | None = None) -> list[Prediction]:
        """Emit every open window whose deadline has passed at ``now``."""
        now = self.clock() if now is None else float(now)
        out = []
        while self._open:
            key, w = next(iter(self._open.items()))
            if now < w.first_arrival + self.deadline_s:      # same sum as next_deadline
                break
            del self._open[key]
            out.append(self._emit(w, now, "deadline"))
        return out

    def flush(self, now: float | None = None) -> list[Prediction]:
        """Emit every open window now (shutdown or end of a replay)."""
        now = self.clock() if now is None else float(now)
        out = [self._emit(w, now, "flush") for w in self._open.values()]
        self._open.clear()
        return out

    @property
    def open_windows(self) -> int:
        return len(self._open)

    def next_deadline(self) -> float | None:
        """Clock time at which the oldest open window expires (None when none is open)."""
        if not self._open:
            return None
        return next(iter(self._open.values())).first_arrival + self.deadline_s

    def _remember(self, w: _Window) -> None:
        self._emitted[w.key] = frozenset(w.latents)
        while len(self._emitted) > self._emitted_memory:
            self._emitted.popitem(last=False)

    def _emit(self, w: _Window, now: float, reason: str) -> Prediction:
        c = self.counters
        self._remember(w)
        name = _REASON_COUNTER[reason]
        setattr(c, name, getattr(c, name) + 1)
        present = [self.manifest.modalities[i].name for i in sorted(w.latents)]
        devices = list(dict.fromkeys(self._device_of[i] for i in sorted(w.latents)))
        for d in devices:
            c.device_windows[d] = c.device_windows.get(d, 0) + 1
        latency = max(0.0, now - w.first_arrival)
        epoch = None if w.key[0] == _V1 else w.key[0]
        empty = Prediction(w.key[1], None, None, [], present, latency, reason, w.timestamp_us,
                           epoch=epoch, devices=devices)
        if not w.latents:
            c.empty_windows += 1
            return empty
        t0 = time.perf_counter()
        try:
            probs = self.infer(w.latents)
        except Exception as e:  # noqa: BLE001 - a runtime failure must not stop the phone
            c.inference_errors += 1
            log.warning("phone model failed on window %s: %s", w.key, e)
            return empty
        c.predictions += 1
        k = int(np.argmax(probs))
        dt = time.perf_counter() - t0
        return Prediction(w.key[1], k, self.manifest.classes[k], [float(p) for p in probs],
                          present, latency + dt, reason, w.timestamp_us, dt, epoch, devices)

    def infer(self, latents: dict[int, np.ndarray]) -> np.ndarray:
        """Run the phone model on {modality index: float latent (D,)}; return probabilities."""
        x = np.zeros((1, self._m, self._d), np.float32)
        present = np.zeros((1, self._m), np.float32)
        for i, z in latents.items():
            x[0, i] = z
            present[0, i] = 1.0
        return softmax(np.asarray(self.model.run(x, present), np.float64).reshape(-1))


def device_index(manifest: Manifest) -> list[str]:
    """The device of each modality, by the modality's index in the manifest."""
    owner = {m: d.name for d in manifest.device_map for m in d.modalities}
    return [owner[m.name] for m in manifest.modalities]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max())
    return z / z.sum()
