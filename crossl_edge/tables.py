"""Plain-text tables for runtime results (simulation, serve stats); numpy-free, runtime path."""

from __future__ import annotations

from typing import Any


def table(headers: list[str], rows: list[list[Any]], *, first_left: bool = False) -> str:
    """Right-aligned columns (the first left-aligned if asked) with a dashed rule under the
    header."""
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 and first_left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, cells)])


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def format_duration(seconds: float) -> str:
    """12s, 4m05s, 1h02m (progress lines of train and export)."""
    s = int(round(max(seconds, 0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e3:.1f}"


_HEADS = ["scenario", "coverage", "accuracy", "macro_f1", "acc_all", "agree", "sent", "dropped",
          "recv", "dups", "late", "p50_ms", "p99_ms"]


def _row(r: Any) -> list[Any]:
    return [r.name, r.coverage, r.accuracy, r.macro_f1, r.accuracy_all, r.offline_agreement,
            r.frames_sent, r.frames_dropped, r.frames_received, r.duplicates, r.late,
            ms(r.latency_s["p50"]), ms(r.latency_s["p99"])]


def format_simulation(res: Any) -> str:
    """The accuracy-vs-loss, per-missing-modality and (if run) node-clock tables."""
    head = (f"{res.windows} windows, transport {res.transport}; offline (no network): "
            + ", ".join(f"{k} {v:.3f}" for k, v in res.offline.items()))
    parts = [head]
    if res.loss_table:
        parts += ["", "accuracy vs frame loss (accuracy/macro-F1 on predicted windows; acc_all "
                  "counts missing windows as wrong)",
                  table(_HEADS, [_row(r) for r in res.loss_table])]
    if res.missing_table:
        parts += ["", "one modality fully out", table(_HEADS, [_row(r) for r in res.missing_table])]
    if getattr(res, "device_table", None):
        parts += ["", "by device (all of a device's modalities vanish together)",
                  table(_HEADS + ["devices_present"], [
                      _row(r) + [" ".join(f"{d} {v:.2f}" for d, v in r.device_coverage.items())]
                      for r in res.device_table])]
    if res.clock_table:
        parts += ["", format_clock_table(res.clock_table)]
    return "\n".join(parts)


_CLOCK_HEADS = ["scenario", "coverage", "acc_all", "agree", "misaligned", "p50_ms", "p99_ms",
                "sent", "recv", "resyncs", "restarts"]


def format_clock_table(rows: list[Any]) -> str:
    """Accuracy, agreement with the offline pipeline, misaligned windows and latency (from the
    window's last sample to the prediction) against crystal drift."""
    r0 = rows[0]
    head = (f"node clocks: nodes boot {r0.start_spread_s:g} s apart, drift +d / -d ppm, "
            f"{r0.restarts} restart(s); sync = v2 frames + phone beacons, legacy = v1 seq")
    return "\n".join([head, table(_CLOCK_HEADS, [
        [r.name, r.coverage, r.accuracy_all, r.offline_agreement, r.misaligned_rate,
         ms(r.latency_s["p50"]), ms(r.latency_s["p99"]), r.frames_sent, r.frames_received,
         r.resyncs, r.restarts_detected] for r in rows], first_left=True)])
