"""The latent bars an int8 encoder must meet, shared by the export search and `parity`.

`schemes.Targets` (what a candidate must reach) and `parity.ParityThresholds` (what a bundle must
reach) both extend `LatentBars`; one field set, one range check.
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
