"""Load benchmark of the phone runtime: many nodes send latent frames over UDP loopback at a fixed
rate to a serve loop; reports sustained frames/s, latency percentiles and exactly-once delivery.

Usage: python -m benchmarks.load_bench BUNDLE [--duration 10] [--rate 5000] [--nodes 16]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import save
from crossl_edge.manifest import load_manifest
from crossl_edge.runtime.aggregator import Prediction
from crossl_edge.runtime.serve import latency_summary, serve
from crossl_edge.runtime.transports import UdpReceiver


@dataclass(frozen=True)
class LoadConfig:
    """Bench settings: ``rate`` windows/s in total, spread over ``nodes`` sensor nodes."""

    duration_s: float = 10.0
    rate: float = 5000.0
    nodes: int = 16  # rounded to a multiple of the bundle's modality count
    deadline_s: float = 0.5
    max_open_windows: int = 1024
    seed: int = 0


def _sender(
    address: tuple[str, int],
    ids: list[int],
    dim: int,
    fingerprint: int,
    cfg: LoadConfig,
    replicas: int,
    conn: Any,
) -> None:
    """Child process: each (replica, modality) node has its own socket; windows go round-robin."""
    import socket

    from crossl_edge.wire.frame import LatentDType, LatentFrame, encode_frame

    rng = np.random.default_rng(cfg.seed)
    pool = rng.integers(-128, 128, (256, dim), dtype=np.int8)
    socks = [
        [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in ids] for _ in range(replicas)
    ]
    conn.send("ready")
    conn.recv()
    t0 = time.monotonic()
    seq = 0
    while True:
        elapsed = time.monotonic() - t0
        if elapsed >= cfg.duration_s:
            break
        due = int(elapsed * cfg.rate) + 1
        while seq < due:
            ts = time.monotonic_ns() // 1000
            group = socks[seq % replicas]
            for j, mid in enumerate(ids):
                data = encode_frame(
                    LatentFrame(
                        mid, seq, ts, fingerprint, LatentDType.INT8, pool[(seq + j) % len(pool)]
                    )
                )
                group[j].sendto(data, address)
            seq += 1
        time.sleep(0.0005)
    conn.send((seq, time.monotonic() - t0))
    for group in socks:
        for s in group:
            s.close()


def run(bundle: str | Path, cfg: LoadConfig) -> dict[str, Any]:
    """Run the bench once; return the JSON-ready result."""
    manifest = load_manifest(bundle)
    ids = [m.id for m in manifest.modalities]
    replicas = max(1, cfg.nodes // len(ids))
    rx = UdpReceiver("127.0.0.1", 0, rcvbuf=16 << 20)
    parent, child = mp.get_context("spawn").Pipe()
    proc = mp.get_context("spawn").Process(
        target=_sender,
        args=(
            rx.address,
            ids,
            manifest.latent_dim,
            manifest.fingerprint,
            cfg,
            replicas,
            child,
        ),
        daemon=True,
    )
    proc.start()
    counts: dict[int, int] = {}
    reasons: dict[str, int] = {}
    e2e: list[float] = []
    agg_lat: list[float] = []

    def on_prediction(p: Prediction) -> None:
        now_us = time.monotonic_ns() // 1000
        counts[p.seq] = counts.get(p.seq, 0) + 1
        reasons[p.reason] = reasons.get(p.reason, 0) + 1
        e2e.append((now_us - p.timestamp_us) / 1e6)
        agg_lat.append(p.latency_s)

    stop, ready = threading.Event(), threading.Event()
    box: dict[str, Any] = {}

    def serve_thread() -> None:
        box["stats"] = serve(
            manifest,
            source=rx,
            deadline_s=cfg.deadline_s,
            max_open_windows=cfg.max_open_windows,
            stop_event=stop,
            ready=ready,
            on_prediction=on_prediction,
        )

    th = threading.Thread(target=serve_thread, daemon=True)
    th.start()
    ready.wait(60)
    if parent.recv() != "ready":
        raise RuntimeError("sender failed to start")
    parent.send("go")
    sent, send_s = parent.recv()
    time.sleep(cfg.deadline_s + 0.5)
    stop.set()
    th.join(60)
    proc.join(10)
    rx.close()
    stats = box["stats"]
    missing = sum(1 for s in range(sent) if s not in counts)
    repeated = sum(1 for c in counts.values() if c > 1)
    incomplete = sum(v for k, v in reasons.items() if k != "complete")
    frames = stats.counters["received"]
    return {
        "config": asdict(cfg),
        "bundle": str(bundle),
        "modalities": manifest.names,
        "nodes": replicas * len(ids),
        "backend": stats.backend,
        "windows_sent": sent,
        "frames_sent": sent * len(ids),
        "frames_received": frames,
        "send_duration_s": send_s,
        "frames_per_s": frames / send_s,
        "windows_per_s": len(counts) / send_s,
        "latency_first_frame_to_prediction_s": latency_summary(agg_lat),
        "latency_node_send_to_prediction_s": latency_summary(e2e),
        "exactly_once": missing == 0 and repeated == 0 and incomplete == 0,
        "windows_missing": missing,
        "windows_repeated": repeated,
        "windows_not_complete": incomplete,
        "reasons": reasons,
        "counters": stats.counters,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    ap.add_argument("--rate", type=float, default=5000.0, help="windows per second, in total")
    ap.add_argument("--nodes", type=int, default=16, help="sensor nodes (sockets)")
    ap.add_argument("--deadline", type=float, default=0.5)
    ap.add_argument("--out", type=Path, default=None, help="results folder")
    a = ap.parse_args(argv)
    res = run(
        a.bundle,
        LoadConfig(duration_s=a.duration, rate=a.rate, nodes=a.nodes, deadline_s=a.deadline),
    )
    path = save("load_bench", res, out=a.out)
    lat = res["latency_node_send_to_prediction_s"]
    ms = {k: "-" if lat[k] is None else f"{lat[k] * 1e3:.2f}" for k in ("p50", "p99")}
    print(
        f"{res['frames_per_s']:.0f} frames/s ({res['windows_per_s']:.0f} windows/s) from "
        f"{res['nodes']} nodes; send->prediction p50 {ms['p50']} ms, p99 {ms['p99']} ms; "
        f"exactly once: {res['exactly_once']} -> {path}"
    )


if __name__ == "__main__":
    main()
