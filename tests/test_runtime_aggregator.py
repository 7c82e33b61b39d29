"""PhoneAggregator faults, and serve over real UDP sockets, a real pty and a capture replay."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossl_edge.manifest import Manifest, load_manifest
from crossl_edge.runtime.aggregator import PhoneAggregator
from crossl_edge.runtime.backends import open_model
from crossl_edge.runtime.serve import serve
from crossl_edge.runtime.transports import SerialReceiver, UdpReceiver, UdpSender
from crossl_edge.sim.simulate import load_windows
from crossl_edge.wire.cobs import serial_packet
from crossl_edge.wire.frame import LatentDType, LatentFrame, encode_frame


@pytest.fixture(scope="module")
def manifest(tiny_bundle: Path) -> Manifest:
    return load_manifest(tiny_bundle)


def _frame(m: Manifest, mod: int, seq: int, *, fingerprint: int | None = None,
           latent: np.ndarray | None = None, mod_id: int | None = None) -> bytes:
    if latent is None:
        latent = np.random.default_rng(seq * 7 + mod).integers(-128, 128, m.latent_dim,
                                                               dtype=np.int8)
    fp = m.fingerprint if fingerprint is None else fingerprint
    mid = m.modalities[mod].id if mod_id is None else mod_id
    return encode_frame(LatentFrame(mid, seq, 1000 * seq, fp, LatentDType.INT8, latent))


def _agg(m: Manifest, **kw) -> PhoneAggregator:
    return PhoneAggregator(m, clock=lambda: 0.0, **kw)


def test_complete_window_and_duplicates(manifest: Manifest) -> None:
    agg = _agg(manifest)
    assert agg.submit(_frame(manifest, 0, 5), now=1.0) == []
    assert agg.submit(_frame(manifest, 0, 5), now=1.01) == []          # duplicate
    (p,) = agg.submit(_frame(manifest, 1, 5), now=1.1)
    assert (p.seq, p.reason, p.present) == (5, "complete", manifest.names)
    assert p.latency_s == pytest.approx(0.1, abs=0.01)
    assert sum(p.probabilities) == pytest.approx(1.0)
    assert p.class_name == manifest.classes[p.class_index]
    c = agg.counters
    assert (c.received, c.decoded, c.accepted, c.duplicates, c.predictions) == (3, 3, 2, 1, 1)


def test_reordering_gives_the_same_predictions(manifest: Manifest) -> None:
    in_order, shuffled = _agg(manifest), _agg(manifest)
    frames = [_frame(manifest, k, s) for s in range(6) for k in range(2)]
    a = [p for f in frames for p in in_order.submit(f, now=0.0)]
    order = np.random.default_rng(1).permutation(len(frames))
    b = [p for i in order for p in shuffled.submit(frames[i], now=0.0)]
    assert sorted((p.seq, p.class_index, tuple(p.probabilities)) for p in a) == \
        sorted((p.seq, p.class_index, tuple(p.probabilities)) for p in b)
    assert len(b) == 6 and shuffled.counters.complete == 6


def test_late_frames_after_emit_are_counted_not_predicted(manifest: Manifest) -> None:
    agg = _agg(manifest)
    agg.submit(_frame(manifest, 0, 1), now=0.0)
    (p,) = agg.poll(now=0.6)
    assert p.reason == "deadline" and p.present == [manifest.names[0]]
    assert 0.6 <= p.latency_s < 0.61 and 0 < p.inference_s < 0.01
    assert agg.submit(_frame(manifest, 1, 1), now=0.7) == []
    assert agg.submit(_frame(manifest, 0, 1), now=0.8) == []          # a duplicate, after emit
    assert (agg.counters.late, agg.counters.duplicates, agg.open_windows) == (1, 1, 0)


def test_deadline(manifest: Manifest) -> None:
    agg = _agg(manifest, deadline_s=0.5)
    agg.submit(_frame(manifest, 1, 3), now=10.0)
    assert agg.poll(now=10.49) == [] and agg.next_deadline() == pytest.approx(10.5)
    (p,) = agg.poll(now=10.5)
    assert p.reason == "deadline" and p.present == [manifest.names[1]] and not p.empty


def test_decode_errors_unknown_modality_fingerprint_and_empty_window(manifest: Manifest) -> None:
    agg = _agg(manifest)
    good = bytearray(_frame(manifest, 0, 2))
    good[30] ^= 0xFF                                                   # corrupt the latent
    agg.submit(bytes(good), now=0.0)
    agg.submit(b"CL", now=0.0)
    agg.submit(b"XX" + bytes(40), now=0.0)
    agg.submit(_frame(manifest, 0, 2, mod_id=9), now=0.0)
    assert agg.open_windows == 0                                       # none of these opens one
    agg.submit(_frame(manifest, 0, 2, fingerprint=manifest.fingerprint ^ 1), now=0.0)
    agg.submit(encode_frame(LatentFrame(manifest.modalities[1].id, 2, 0, manifest.fingerprint,
                                        LatentDType.INT8, np.zeros(3, np.int8))), now=0.0)
    (p,) = agg.poll(now=1.0)
    assert p.empty and p.class_index is None and p.present == [] and p.seq == 2
    c = agg.counters
    assert c.bad_crc == 1 and c.decode_errors == {"BAD_CRC": 1, "TRUNCATED": 1, "BAD_MAGIC": 1}
    assert (c.unknown_modality, c.fingerprint_mismatch, c.bad_latent) == (1, 1, 1)
    assert (c.empty_windows, c.predictions) == (1, 0)


def test_eviction_cap_and_bounded_memory(manifest: Manifest) -> None:
    agg = _agg(manifest, max_open_windows=3, emitted_memory=8)
    out = [p for s in range(5) for p in agg.submit(_frame(manifest, 0, s), now=0.01 * s)]
    assert [(p.seq, p.reason) for p in out] == [(0, "evicted"), (1, "evicted")]
    assert agg.counters.evicted == 2 and agg.open_windows == 3 and not out[0].empty
    for s in range(5, 200):
        agg.submit(_frame(manifest, 0, s), now=1.0 + s)
    assert agg.open_windows == 1 and len(agg._emitted) == 8       # older ones expired
    assert agg.counters.deadline == 197 and [p.reason for p in agg.flush(now=1e6)] == ["flush"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_arbitrary_bytes_never_crash(manifest: Manifest, blobs: list[bytes]) -> None:
    agg = _agg(manifest, max_open_windows=2)
    for b in blobs:
        agg.submit(b, now=0.0)
        agg.submit(b"CL\x01" + b, now=0.0)
    agg.poll(now=10.0)
    assert agg.counters.received == 2 * len(blobs)


def _serve_thread(m: Manifest, src, **kw):
    out, stop, ready, box = [], threading.Event(), threading.Event(), {}

    def run() -> None:
        box["stats"] = serve(m, source=src, stop_event=stop, ready=ready,
                             on_prediction=out.append, **kw)
    th = threading.Thread(target=run, daemon=True)
    th.start()
    assert ready.wait(30)

    def finish(wait: float = 0.3):
        time.sleep(wait)
        stop.set()
        th.join(30)
        return out, box["stats"]
    return finish


def test_serve_udp_faults_on_real_sockets(manifest: Manifest, tmp_path: Path) -> None:
    rx = UdpReceiver("127.0.0.1", 0)
    lines = io.StringIO()
    finish = _serve_thread(manifest, rx, deadline_s=0.2, out=lines, capture=tmp_path / "c.bin")
    tx = [UdpSender(*rx.address) for _ in manifest.modalities]
    bad = bytearray(_frame(manifest, 0, 3))
    bad[-1] ^= 1
    plan = [(0, _frame(manifest, 0, 0)), (1, _frame(manifest, 1, 1)), (0, _frame(manifest, 0, 0)),
            (1, _frame(manifest, 1, 0)), (0, _frame(manifest, 0, 1)), (0, bytes(bad)),
            (0, _frame(manifest, 0, 4, mod_id=42)),
            (1, _frame(manifest, 1, 5, fingerprint=manifest.fingerprint ^ 0xFF)),
            (0, _frame(manifest, 0, 6))]
    for node, data in plan:
        tx[node].send(data)
        time.sleep(0.005)
    time.sleep(0.4)
    tx[1].send(_frame(manifest, 1, 6))                                  # late: 6 has expired
    preds, stats = finish()
    for t in tx:
        t.close()
    rx.close()
    by_seq = {p.seq: p for p in preds}
    assert sorted(by_seq) == [0, 1, 5, 6] and len(preds) == 4
    assert by_seq[0].reason == by_seq[1].reason == "complete"
    assert by_seq[5].empty and by_seq[6].reason == "deadline"
    c = stats.counters
    assert (c["received"], c["duplicates"], c["bad_crc"], c["unknown_modality"],
            c["fingerprint_mismatch"], c["late"], c["empty_windows"]) == (10, 1, 1, 1, 1, 1, 1)
    rows = [json.loads(x) for x in lines.getvalue().splitlines()]
    assert [r["seq"] for r in rows] == [p.seq for p in preds]
    replayed = serve(manifest, source=f"replay://{tmp_path / 'c.bin'}", deadline_s=0.2)
    assert replayed.counters == c and replayed.stopped_by == "end of replay"


def test_serve_serial_pty_with_garbage(manifest: Manifest) -> None:
    serial = pytest.importorskip("serial")
    master, slave = os.openpty()
    port = serial.Serial(os.ttyname(slave), 115200, timeout=0)
    try:
        finish = _serve_thread(manifest, SerialReceiver(port=port), deadline_s=0.2)
        stream = b"\xde\xad\xbe\xef"                                   # noise before the first
        for s in range(4):
            for k in range(2):
                stream += serial_packet(_frame(manifest, k, s))
            stream += b"\x01\x02noise\x00"
        os.write(master, stream)
        preds, stats = finish(0.5)
    finally:
        port.close()
        os.close(slave)
        os.close(master)
    got = {p.seq: p.reason for p in preds}
    assert got == {0: "deadline", 1: "complete", 2: "complete", 3: "complete"}  # 0 lost acc
    assert stats.source["dropped"] + sum(stats.counters["decode_errors"].values()) >= 5


def test_fused_predictions_equal_offline_deployed_pipeline(manifest: Manifest) -> None:
    xs, y = load_windows(manifest, None)
    n = min(len(y), 20)
    # offline: each int8 encoder on LiteRT, dequantize, the phone model run directly
    phone = open_model(manifest.path(manifest.aggregator.artifacts["tflite"]))
    latents, expected = {}, []
    for m in manifest.modalities:
        enc = open_model(manifest.path(m.artifacts["tflite_int8"]))
        latents[m.name] = [enc.run(m.tflite_input(xs[m.name][i], int8=True))[0]
                           for i in range(n)]
    for i in range(n):
        z = np.stack([m.latent_quant.dequantize(latents[m.name][i])
                      for m in manifest.modalities])[None]
        logits = phone.run(z, np.ones((1, len(manifest.modalities)), np.float32))[0]
        expected.append(int(np.argmax(logits)))
    rx = UdpReceiver("127.0.0.1", 0)
    finish = _serve_thread(manifest, rx, deadline_s=1.0)
    tx = UdpSender(*rx.address)
    for i in range(n):
        for m in manifest.modalities:
            tx.send(_frame(manifest, manifest.modalities.index(m), i, latent=latents[m.name][i]))
    preds, stats = finish(0.3)
    tx.close()
    rx.close()
    got = {p.seq: p for p in preds}
    assert sorted(got) == list(range(n)) and all(p.reason == "complete" for p in preds)
    assert [got[i].class_index for i in range(n)] == expected


@pytest.mark.parametrize("deadline", [float("nan"), float("inf"), 0.0, -1.0])
def test_library_refuses_a_deadline_that_is_not_a_positive_number(tiny_bundle: Path,
                                                                   deadline: float) -> None:
    from crossl_edge.errors import UsageError
    from crossl_edge.sim.simulate import simulate

    with pytest.raises(UsageError, match="--deadline must be a positive number"):
        PhoneAggregator(load_manifest(tiny_bundle), deadline_s=deadline)
    with pytest.raises(UsageError, match="--deadline"):
        simulate(tiny_bundle, deadline_s=deadline)
