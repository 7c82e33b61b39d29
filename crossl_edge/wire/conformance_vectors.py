"""Conformance vectors of the time base, generated from the Python twin: conformance/*.json.

`python -m crossl_edge.wire.conformance_vectors` rewrites them, `--check` verifies the shipped
copies. Each file: beacon/clock sequences with the expected anchor, rate, sample indices, due
times and grid windows after every step (FRAME_FORMAT.md, "Conformance vectors").
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

from . import timebase as T
from .digest import definition_digest
from .generated import sync_file

DIR = Path(__file__).resolve().parent / "conformance"
HOUR_US = 3_600_000_000
RATES_MHZ = (10_000, 50_000, 700_000)
GAPS_US = (3 * HOUR_US, 72 * HOUR_US, 30 * 24 * HOUR_US)
FORMAT = ("steps run in order on one node; 'reset' is a reboot (zeroed sync and grid state). "
          "beacon: on_beacon(epoch, phone_us, origin_us, local_us) -> expect.result (0 adjusted, "
          "1 re-synchronised) and the state after it; to_phone/to_local/sample_index/sample_due/"
          "grid_push: the call's result. u64 clocks, int64 indices, u32 rates (mHz).")


class Recorder:
    """Runs operations on the Python time base and records each with its expected result."""

    steps: list[dict[str, Any]]

    def __init__(self) -> None:
        self.s, self.grid, self.steps = T.SyncState(), T.GridWindower(1, 1), []

    def reset(self) -> None:
        self.s, self.grid = T.SyncState(), T.GridWindower(1, 1)
        self.steps.append({"op": "reset"})

    def beacon(self, epoch: int, phone: int, origin: int, local: int) -> int:
        r = T.on_beacon(self.s, epoch=epoch, phone_us=phone, origin_us=origin, local_us=local)
        s = self.s
        self.steps.append({"op": "beacon", "epoch": epoch, "phone_us": phone, "origin_us": origin,
                           "local_us": local, "expect": {
                               "result": r, "anchor_local": s.anchor_local,
                               "anchor_phone": s.anchor_phone, "rate": s.rate,
                               "epoch": s.epoch, "origin_us": s.origin_us}})
        return r

    def queries(self, local: int, rate: int) -> None:
        """to_phone, to_local, the nearest grid sample and the due times around it."""
        s = self.s
        p = T.to_phone(s, local)
        self.steps.append({"op": "to_phone", "local_us": local, "expect": p})
        self.steps.append({"op": "to_local", "phone_us": p, "expect": T.to_local(s, p)})
        n = T.sample_index(s, local, rate)
        self.steps.append({"op": "sample_index", "local_us": local, "rate_mhz": rate, "expect": n})
        for k in (n, min(n + 1, T.I64_MAX)):             # n is an int64
            self.steps.append({"op": "sample_due", "n": k, "rate_mhz": rate,
                               "expect": T.sample_due_local(s, k, rate)})

    def push(self, n: int, window: int, hop: int) -> int:
        self.grid.window, self.grid.hop = window, hop
        k = self.grid.push(n)
        self.steps.append({"op": "grid_push", "n": n, "window": window, "hop": hop, "expect": k})
        return k


class Clock:
    """A node clock: local = local0 + (phone - phone0) * (1e6 + ppm) / 1e6 (floor), mod 2^64."""

    def __init__(self, ppm: int, local0: int, phone0: int) -> None:
        self.ppm, self.local0, self.phone0 = ppm, local0, phone0

    def local(self, phone: int) -> int:
        return (self.local0 + (phone - self.phone0) * (10**6 + self.ppm) // 10**6) % 2**64


def _sync(rec: Recorder, clk: Clock, rng: random.Random, *, start: int, seconds: int,
          epoch: int, origin: int, jitter_us: int, rate: int, query_every: int = 1) -> int:
    """One beacon a second for ``seconds`` s with random delays; queries after every
    ``query_every``-th (0: none)."""
    phone = start
    for i in range(seconds):
        local = clk.local(phone + rng.randrange(jitter_us + 1))
        rec.beacon(epoch, phone % 2**64, origin % 2**64, local)
        if query_every and i % query_every == 0:
            rec.queries((local + rng.randrange(-2_000_000, 2_000_000)) % 2**64, rate)
        phone += 1_000_000
    return phone


def first_sync() -> dict[str, Any]:
    rec, rng = Recorder(), random.Random(1)
    for ppm, rate in ((37, 10_000), (-100, 50_000), (100, 700_000), (0, 10_000)):
        rec.reset()
        clk = Clock(ppm, rng.randrange(2**40), 5_000_000)
        _sync(rec, clk, rng, start=5_000_000, seconds=150, epoch=7, origin=4_000_000,
              jitter_us=30_000, rate=rate, query_every=3)
    return {"description": "boot and first sync at 1 beacon/s with 0-30 ms delays, crystals of "
            "+37, -100, +100 and 0 ppm: blocks of 8, the first rate taken whole, later ones with "
            "gain 1/4, the reference moving after 64 s", "steps": rec.steps}


def resync() -> dict[str, Any]:
    rec, rng = Recorder(), random.Random(2)
    clk = Clock(50, 123_456_789, 0)
    phone = _sync(rec, clk, rng, start=0, seconds=90, epoch=1, origin=0, jitter_us=20_000,
                  rate=10_000)
    phone = _sync(rec, clk, rng, start=phone, seconds=20, epoch=2, origin=phone + 777,
                  jitter_us=20_000, rate=10_000)                       # the phone restarted
    clk.local0 += 2_000_000                                            # the node's clock stepped
    phone = _sync(rec, clk, rng, start=phone, seconds=40, epoch=2, origin=phone - 20_000_000 + 777,
                  jitter_us=20_000, rate=10_000)
    rec.reset()                                                        # the node rebooted
    _sync(rec, clk, rng, start=phone, seconds=30, epoch=2, origin=phone - 60_000_000 + 777,
          jitter_us=20_000, rate=10_000)
    return {"description": "re-synchronisation: a new epoch (rate kept, block and rate reference "
            "restarted), a 2 s step of the node clock (error > 0.5 s), a reboot",
            "steps": rec.steps}


def long_gaps() -> dict[str, Any]:
    rec, rng, meta = Recorder(), random.Random(3), []
    for ppm in (-100, -37, 0, 20, 100):
        rec.reset()
        clk = Clock(ppm, rng.randrange(2**63), 10_000_000)
        phone = _sync(rec, clk, rng, start=10_000_000, seconds=110, epoch=3, origin=10_000_000,
                      jitter_us=0, rate=10_000, query_every=0)
        for gap in GAPS_US:
            meta.append({"ppm": ppm, "gap_us": gap, "local0": clk.local0, "phone0": clk.phone0,
                         "step": len(rec.steps)})
            for rate in RATES_MHZ:
                rec.queries(clk.local(phone + gap), rate)
        end = phone + GAPS_US[-1]
        rec.beacon(3, end, 10_000_000, clk.local(end))                 # heard again
        rec.queries(clk.local(end + 500_000), 10_000)
    return {"description": "110 s of jitter-free beacons, then 3 h, 72 h and 30 days without "
            "one (queries at each, from the same state), crystals of -100..+100 ppm (clock: "
            "local = local0 + (phone - phone0) * (1e6 + ppm) / 1e6, floor, mod 2^64); then the "
            "next beacon", "clocks": meta, "steps": rec.steps}


def extremes() -> dict[str, Any]:
    rec, rng = Recorder(), random.Random(4)
    top = 2**64
    clk = Clock(-50_000, top - 40_000_000, top - 30_000_000)          # both clocks wrap
    _sync(rec, clk, rng, start=top - 30_000_000, seconds=60, epoch=65535,
          origin=top - 31_000_000, jitter_us=1000, rate=10_000)
    for local in (0, 2**62, 2**63 - 1, 2**63, 2**64 - 1, 12345):
        for rate in (0, 1, 10_000, 32_768_000, 2**32 - 1):
            rec.queries(local, rate)
    for n in (-(2**63), -1, 0, 2**62, 2**63 - 1):
        rec.steps.append({"op": "sample_due", "n": n, "rate_mhz": 1,
                          "expect": T.sample_due_local(rec.s, n, 1)})
    rec.reset()
    clk = Clock(70_000, 0, 0)                                         # beyond the 5 % clamp
    _sync(rec, clk, rng, start=0, seconds=60, epoch=0, origin=0, jitter_us=0, rate=700_000)
    return {"description": "u64 wrap of both clocks, queries across the whole u64/int64/u32 "
            "range (saturation, rate 0), a 7 % crystal clamped to 5 %", "steps": rec.steps}


def grid() -> dict[str, Any]:
    rec, rng = Recorder(), random.Random(5)
    for window, hop in ((4, 4), (4, 2), (5, 3), (1, 1), (0, 1), (3, 0)):
        n = 0
        for _ in range(40):
            n = max(-2, n + rng.choice((0, 1, 1, 1, 1, 1, 2, -3)))
            rec.push(n, window, hop)
    for n in (2**63 - 3, 2**63 - 2, 2**63 - 1):
        rec.push(n, 2, 1)
    return {"description": "grid windows: runs, duplicates, gaps, steps back, negative "
            "indices, window or hop 0, indices at 2^63 - 1", "steps": rec.steps}


VECTORS = {"first_sync": first_sync, "resync": resync, "long_gaps": long_gaps,
           "extremes": extremes, "grid": grid}


def render(name: str) -> str:
    body = VECTORS[name]()
    doc = {"generated_by": "crossl_edge/wire/conformance_vectors.py (python -m "
           "crossl_edge.wire.conformance_vectors); do not edit", "definition_digest":
           definition_digest(), "format": FORMAT, "name": name, **body}
    steps = doc.pop("steps")
    head = "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}"
                              for k, v in doc.items())
    lines = ",\n".join(json.dumps(st, separators=(",", ":")) for st in steps)
    return f'{head},\n "steps": [\n{lines}\n]\n}}\n'   # one step a line


def replay(doc: dict[str, Any]) -> list[str]:
    """Run one vector file through the Python time base: the steps whose result differs."""
    s, g, bad = T.SyncState(), T.GridWindower(1, 1), []
    for i, st in enumerate(doc["steps"]):
        op = st["op"]
        if op == "reset":
            s, g = T.SyncState(), T.GridWindower(1, 1)
            continue
        if op == "beacon":
            r = T.on_beacon(s, epoch=st["epoch"], phone_us=st["phone_us"],
                            origin_us=st["origin_us"], local_us=st["local_us"])
            got: Any = {"result": r, "anchor_local": s.anchor_local,
                        "anchor_phone": s.anchor_phone, "rate": s.rate,
                        "epoch": s.epoch, "origin_us": s.origin_us}
        elif op == "to_phone":
            got = T.to_phone(s, st["local_us"])
        elif op == "to_local":
            got = T.to_local(s, st["phone_us"])
        elif op == "sample_index":
            got = T.sample_index(s, st["local_us"], st["rate_mhz"])
        elif op == "sample_due":
            got = T.sample_due_local(s, st["n"], st["rate_mhz"])
        else:
            g.window, g.hop = st["window"], st["hop"]
            got = g.push(st["n"])
        if got != st["expect"]:
            bad.append(f"step {i} {op}: expected {st['expect']}, got {got}")
    return bad


def load(name: str) -> dict[str, Any]:
    """One shipped vector file."""
    return json.loads((DIR / f"{name}.json").read_text())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="fail if a shipped file is stale")
    args = ap.parse_args(argv)
    stale = [n for n in VECTORS if not sync_file(DIR / f"{n}.json", render(n), check=args.check)]
    if args.check and stale:
        print(f"stale conformance vectors: {stale}; run python -m "
              "crossl_edge.wire.conformance_vectors", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
