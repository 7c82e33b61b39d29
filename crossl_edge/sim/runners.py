"""Deliver a timed frame stream to the phone: in process on a virtual clock, or over real UDP.

Both the loss/outage scenarios (`simulate`) and the clock sweep (`clock_scenarios`) use these.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from crossl_edge.manifest import Manifest
from crossl_edge.runtime.aggregator import PhoneAggregator, Prediction
from crossl_edge.runtime.serve import serve
from crossl_edge.runtime.transports import UdpReceiver, UdpSender


def run_inproc(manifest: Manifest, events: list[tuple[float, str, bytes]], *, deadline_s: float,
               backend: str | None) -> tuple[list[Prediction], dict[str, Any]]:
    """Feed timed frames to an in-process aggregator on a virtual clock; predictions, counters."""
    agg = PhoneAggregator(manifest, deadline_s=deadline_s, backend=backend,
                          max_open_windows=1 << 16, clock=lambda: 0.0)
    out: list[Prediction] = []

    def expire_until(t: float) -> None:
        while (d := agg.next_deadline()) is not None and d <= t:
            out.extend(agg.poll(d))

    for t, _, data in events:
        expire_until(t)
        out.extend(agg.submit(data, now=t))
    expire_until(float("inf"))
    return out, agg.counters.to_json()


def run_udp(manifest: Manifest, events: list[tuple[float, str, bytes]], *, deadline_s: float,
            backend: str | None) -> tuple[list[Prediction], dict[str, Any]]:
    """Send timed frames over real UDP loopback to `serve` in a thread; predictions, counters."""
    out: list[Prediction] = []
    stop, ready = threading.Event(), threading.Event()
    src = UdpReceiver("127.0.0.1", 0)
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["stats"] = serve(manifest, source=src, deadline_s=deadline_s, backend=backend,
                                 max_open_windows=4096, stop_event=stop, ready=ready,
                                 on_prediction=out.append, beacon_interval_s=None)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = e
            ready.set()

    th = threading.Thread(target=run, name="serve", daemon=True)
    th.start()
    ready.wait(30)
    senders = {n: UdpSender(*src.address) for n in {e[1] for e in events}}
    try:
        t0 = time.monotonic()
        for t, name, data in events:
            wait = t0 + t - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            senders[name].send(data)
        time.sleep(deadline_s + 0.2)
    finally:
        stop.set()
        th.join(30)
        for s in senders.values():
            s.close()
        src.close()
    if "error" in box:
        raise box["error"]
    return out, box["stats"].counters
