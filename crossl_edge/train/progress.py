"""Training progress events (plan, step, epoch) and a plain-text reporter that turns them into one
line per epoch (loss, windows/s, ETA) plus a step line every so often within long epochs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from crossl_edge.tables import format_duration


class Reporter:
    """Receives training progress; the base class ignores it (library default)."""

    def plan(self, phases: list[tuple[str, int]], *, chosen: tuple[str, ...] = ()) -> None:
        """Called once: the phases with their maximum epochs, and the settings chosen."""

    def step(self, phase: str, epoch: int, step: int, steps: int) -> None:
        """Called after every optimiser step (no loss: reading it would synchronise a GPU)."""

    def epoch(self, phase: str, epoch: int, logs: dict[str, float]) -> None:
        """Called after every epoch with its train/val loss, windows/s and seconds."""


class Timeline:
    """Epoch bookkeeping for an ETA: the maximum remaining epochs times the mean epoch time of the
    current phase (an upper bound when early stopping ends a phase sooner)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.phases: dict[str, int] = {}
        self.done: dict[str, list[float]] = {}

    def set_plan(self, phases: list[tuple[str, int]]) -> None:
        self.phases = dict(phases)

    def record(self, phase: str, seconds: float) -> None:
        self.done.setdefault(phase, []).append(seconds)

    def eta(self, phase: str) -> float:
        names = list(self.phases)
        times = self.done.get(phase) or [0.0]
        mean = sum(times) / len(times)
        left = self.phases.get(phase, 0) - len(self.done.get(phase, []))
        later = names[names.index(phase) + 1 :] if phase in names else []
        # a later phase's epochs are priced at this phase's mean (same windows, similar cost)
        return mean * (max(left, 0) + sum(self.phases[p] for p in later))


class LineReporter(Reporter):
    """Plain lines for logs, nohup and CI: one per epoch, one per ``every`` seconds within one."""

    def __init__(self, write: Callable[[str], Any], *, every: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.write, self.every, self.clock = write, every, clock
        self.timeline = Timeline(clock)
        self.last = clock()

    def plan(self, phases: list[tuple[str, int]], *, chosen: tuple[str, ...] = ()) -> None:
        self.timeline.set_plan(phases)
        for sentence in chosen:
            self.write(sentence)
        self.last = self.clock()

    def step(self, phase: str, epoch: int, step: int, steps: int) -> None:
        now = self.clock()
        if now - self.last >= self.every and step < steps:
            self.last = now
            self.write(f"{phase} epoch {epoch + 1}: step {step}/{steps}")

    def epoch(self, phase: str, epoch: int, logs: dict[str, float]) -> None:
        self.timeline.record(phase, logs.get("seconds", 0.0))
        self.last = self.clock()
        total = self.timeline.phases.get(phase, epoch + 1)
        self.write(
            f"{phase} epoch {epoch + 1}/{total}: loss {logs['train_loss']:.4f} "
            f"val {logs['val_loss']:.4f} | {logs['windows_per_s']:,.0f} windows/s | "
            f"ETA {format_duration(self.timeline.eta(phase))} at most"
        )
