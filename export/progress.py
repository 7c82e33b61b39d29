"""Export progress: the library reports typed events (plan, one per modality and stage) through a
callback, with elapsed time and an estimate of what is left; only the CLI prints them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from crossl_edge.tables import format_duration

# Stages of one modality, in order, and how many units of work each plans (candidates count one
# each: a TFLite candidate is a cross-fitted pair of conversions, an ONNX one a quantize_static).
STAGES = ("onnx", "tflite", "tflite_int8", "tflm", "onnx_int8")


@dataclass(frozen=True)
class Event:
    """One progress report: ``stage`` of ``modality`` (None for the bundle's own stages: plan,
    phone, done), what happened, and the export's elapsed seconds and estimated seconds left
    (None until something has been timed); ``done``/``total`` are units of planned work."""

    stage: str
    message: str
    modality: str | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None
    done: int = 0
    total: int = 0


Callback = Callable[[Event], None]


def _ignore(event: Event) -> None:
    """The library default: nobody listens."""


@dataclass
class Tracker:
    """Counts planned units per stage and the seconds each took, and turns a step into an Event
    with an estimate of what is left: the remaining units of every stage at that stage's mean
    seconds per unit (the overall mean for a stage not timed yet). Early stopping makes the
    estimate an upper bound. Thread-safe (modalities may be searched in parallel)."""

    callback: Callback = _ignore
    clock: Callable[[], float] = time.monotonic
    planned: dict[str, int] = field(default_factory=dict)
    spent: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.t0 = self.clock()
        self._lock = threading.Lock()
        self._last: dict[str | None, float] = {}

    def plan(self, units: dict[str, int], messages: list[str]) -> None:
        """Add planned units per stage; report each sentence of the plan."""
        with self._lock:
            for k, n in units.items():
                self.planned[k] = self.planned.get(k, 0) + n
        for m in messages:
            self.callback(self._event("plan", m, None))

    def start(self, modality: str | None) -> None:
        """Start the clock of ``modality``'s next step (steps of one modality run in sequence)."""
        with self._lock:
            self._last[modality] = self.clock()

    def step(self, stage: str, message: str, *, modality: str | None = None, units: int = 1,
             skipped: int = 0) -> None:
        """``units`` of ``stage`` done (timed since the modality's last step); ``skipped`` planned
        units of it will not run (early stop, time budget)."""
        now = self.clock()
        with self._lock:
            seconds = now - self._last.get(modality, self.t0)
            self._last[modality] = now
            self.spent.setdefault(stage, []).extend([seconds / max(units, 1)] * units)
            self.planned[stage] = max(self.planned.get(stage, 0) - skipped,
                                      len(self.spent[stage]))
        self.callback(self._event(stage, message, modality))

    def skip(self, stage: str, units: int) -> None:
        """``units`` planned units of ``stage`` will not run."""
        with self._lock:
            done = len(self.spent.get(stage, []))
            self.planned[stage] = max(self.planned.get(stage, 0) - units, done)

    def eta(self) -> float | None:
        times = [s for v in self.spent.values() for s in v]
        if not times:
            return None
        overall = sum(times) / len(times)
        left = 0.0
        for stage, n in self.planned.items():
            done = self.spent.get(stage, [])
            mean = sum(done) / len(done) if done else overall
            left += mean * max(n - len(done), 0)
        return left

    def _event(self, stage: str, message: str, modality: str | None) -> Event:
        with self._lock:
            done = sum(len(v) for v in self.spent.values())
            total = max(sum(self.planned.values()), done)
            eta = self.eta()
        return Event(stage, message, modality, self.clock() - self.t0, eta, done, total)


def format_line(e: Event) -> str:
    """One plain line: ``[1m05s, ~2m30s left] wrist_acc tflite_int8: ...``."""
    if e.stage == "plan":
        return e.message
    left = "" if e.eta_s is None else f", ~{format_duration(e.eta_s)} left"
    who = f"{e.modality} " if e.modality else ""
    return f"[{format_duration(e.elapsed_s)}{left}] {who}{e.stage}: {e.message}"


def plan_export(tracker: Tracker, names: list[str], *, n_cal: int, n_train: int, forms: int,
          budget: float | None, subsets: int, tflm: bool) -> None:
    """Report the plan (the way `train` does: what was chosen and the option that changes it)
    and count the units of work for the estimate of what is left."""
    from crossl_edge.export.calibration import SELECTION
    from crossl_edge.export.schemes import ONNX_SCHEMES, TFLITE_SCHEMES

    n_tfl = sum(s.layernorm == "decomposed" for s in TFLITE_SCHEMES) if forms == 1 \
        else len(TFLITE_SCHEMES)
    m = len(names)
    tracker.plan({"onnx": m, "tflite": m, "tflite_int8": n_tfl * m, "tflm": 2 * m * tflm,
                  "onnx_int8": len(ONNX_SCHEMES) * m, "phone": 1}, [
        f"calibrating on {n_cal:,} of {n_train:,} training windows ({SELECTION.split(' (')[0]})"
        "; --calibration-windows to change",
        f"searching {m} modalit{'y' if m == 1 else 'ies'}: up to {n_tfl} TFLite and "
        f"{len(ONNX_SCHEMES)} ONNX int8 candidates each, judged on those windows x {subsets} "
        f"modality subset(s); "
        + (f"time budget {budget:g} s" if budget else "no time budget")
        + "; --max-search-seconds to change"])
