"""The bars int8 must meet: `LatentBars` (shared by the export search's `schemes.Targets` and
`parity`) and `ParityThresholds`, parity's decision (flip rate, margin of the changed windows,
macro-F1 drop where the test set can measure it).
"""

from __future__ import annotations

from dataclasses import dataclass

from crossl_edge.errors import UsageError


@dataclass(frozen=True, kw_only=True)
class LatentBars:
    """Mean latent cosine (ignores a wrong scale) and SQNR in dB (does not) per int8 encoder."""

    min_cosine: float = 0.99
    min_sqnr_db: float = 15.0

    def __post_init__(self) -> None:
        if not -1.0 <= self.min_cosine <= 1.0:
            raise UsageError("--min-cosine must lie in [-1, 1].")


def check_f1_drop(value: float | None) -> None:
    """A macro-F1 drop bar is a non-negative fraction (or None: not gated)."""
    if value is not None and value < 0:
        raise UsageError("--max-f1-drop must be >= 0.")


@dataclass(frozen=True, kw_only=True)
class ParityThresholds(LatentBars):
    """Parity's decision, per subset of modalities and gated int8 pipeline: at most
    ``max_flip_rate`` of the test windows change prediction, each of them among the float
    model's ``margin_quantile`` closest calls, and the macro-F1 drop at most ``max_f1_drop`` where
    the test set has ``min_f1_windows`` windows or more (below: reported with a bootstrap 95%
    interval, not gated); plus the latent bars per int8 encoder."""

    max_flip_rate: float = 0.01
    margin_quantile: float = 0.10
    max_f1_drop: float = 0.01
    min_f1_windows: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        check_f1_drop(self.max_f1_drop)
        if not 0.0 <= self.max_flip_rate <= 1.0:
            raise UsageError("--max-flip-rate must lie in [0, 1].")
        if not 0.0 < self.margin_quantile <= 1.0:
            raise UsageError("--margin-quantile must lie in (0, 1].")
        if self.min_f1_windows < 0:
            raise UsageError("--min-f1-windows must be >= 0.")

    def closest_calls(self, n: int) -> int:
        """How many of ``n`` windows count as the float model's closest calls (at least 1)."""
        return max(1, int(self.margin_quantile * n + 1e-9))

    def gates_f1(self, n: int) -> bool:
        """Whether a test set of ``n`` windows is large enough for the macro-F1 gate."""
        return n >= self.min_f1_windows
