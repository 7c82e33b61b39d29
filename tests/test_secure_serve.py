"""`serve --key-file` on real UDP sockets: forged, flipped, replayed, plain and foreign frames are
each rejected and counted, beacons are sealed and reach only authenticated nodes, and a sealed
fleet fuses exactly like a plain one."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cryptography", reason="sealed frames need the cryptography package")

from crossl_edge.manifest import (  # noqa: E402
    BUNDLE_FORMAT_VERSION,
    MANIFEST,
    AggregatorEntry,
    Manifest,
    ModalityEntry,
    QParams,
    file_sha256,
    load_manifest,
    seal,
    to_json,
)
from crossl_edge.runtime.serve import serve  # noqa: E402
from crossl_edge.runtime.transports import UdpReceiver  # noqa: E402
from crossl_edge.wire import secure as S  # noqa: E402
from crossl_edge.wire.beacon import decode_beacon  # noqa: E402
from crossl_edge.wire.frame import LatentDType, LatentFrame, encode_frame, fingerprint32  # noqa: E402

KEY = S.NetworkKey(bytes(range(32)))
OTHER = S.NetworkKey(bytes(range(100, 132)))


def phone_onnx(m: int, d: int, classes: int) -> bytes:
    """A fixed phone model by hand: logits = flatten(latents) @ W + present @ V."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.normal(size=(m * d, classes)).astype(np.float32), "W")
    v = numpy_helper.from_array(rng.normal(size=(m, classes)).astype(np.float32), "V")
    shape = numpy_helper.from_array(np.array([1, m * d], np.int64), "S")
    nodes = [helper.make_node("Reshape", ["latents", "S"], ["flat"]),
             helper.make_node("MatMul", ["flat", "W"], ["a"]),
             helper.make_node("MatMul", ["present", "V"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["logits"])]
    g = helper.make_graph(nodes, "phone", [
        helper.make_tensor_value_info("latents", TensorProto.FLOAT, [1, m, d]),
        helper.make_tensor_value_info("present", TensorProto.FLOAT, [1, m])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])],
        initializer=[w, v, shape])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def sealed_test_bundle(root: Path) -> Path:
    """Two modalities (hand-built int8 encoders) and a hand-built ONNX phone model: a bundle
    serve and firmware take, without training or TensorFlow."""
    from tiny_tflite import tiny_tflite
    root.mkdir(parents=True)
    (root / "encoders").mkdir()
    (root / "phone.onnx").write_bytes(phone_onnx(2, 6, 3))
    mods = []
    for i, name in enumerate(("acc", "gyro")):
        rel = f"encoders/{name}.int8.tflite"
        (root / rel).write_bytes(tiny_tflite())
        mods.append(ModalityEntry(
            name=name, id=i, channels=["x", "y"], window=4, sample_rate_hz=50.0,
            normalization={"mean": [0.0, 0.0], "std": [1.0, 1.0]}, layout="NWC",
            artifacts={"tflite_int8": rel}, sha256={"tflite_int8": file_sha256(root / rel)},
            input_quant=QParams(float(np.float32(0.05)), 3),
            latent_quant=QParams(float(np.float32(0.1)), -5)))
    agg = AggregatorEntry({"onnx": "phone.onnx"}, {"onnx": file_sha256(root / "phone.onnx")},
                          ["latents", "present"])
    m = seal(Manifest(root, BUNDLE_FORMAT_VERSION, "0.0.0-test", ["a", "b", "c"], 6, 0, mods,
                      agg))
    import json
    (root / MANIFEST).write_text(json.dumps(to_json(m), indent=2, sort_keys=True))
    return root


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    return sealed_test_bundle(tmp_path_factory.mktemp("secure") / "bundle")


@pytest.fixture(scope="module")
def manifest(bundle: Path) -> Manifest:
    return load_manifest(bundle)


def _frame(m: Manifest, mod: int, window: int, *, epoch: int = 0, boot: int = 1) -> bytes:
    latent = np.random.default_rng(window * 7 + mod).integers(-128, 128, m.latent_dim,
                                                              dtype=np.int8)
    return encode_frame(LatentFrame(m.modalities[mod].id, window, 1000 * window,
                                    fingerprint32(m.fingerprint), LatentDType.INT8, latent,
                                    version=2, window=window, epoch=epoch, boot=boot))


def _start(m: Manifest, **kw):
    rx = UdpReceiver("127.0.0.1", 0)
    out, stop, ready, box = [], threading.Event(), threading.Event(), {}
    th = threading.Thread(target=lambda: box.update(stats=serve(
        m, source=rx, stop_event=stop, ready=ready, on_prediction=out.append, **kw)),
        daemon=True)
    th.start()
    assert ready.wait(30)

    def finish(wait: float = 0.4):
        time.sleep(wait)
        stop.set()
        th.join(30)
        rx.close()
        return out, box["stats"]
    return rx.address, finish


def _socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.05)
    return s


def _drain(s: socket.socket) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(s.recv(4096))
        except (TimeoutError, BlockingIOError):
            return got


def test_keyed_serve_rejects_and_counts_each_attack(manifest: Manifest) -> None:
    addr, finish = _start(manifest, deadline_s=0.2, key=KEY, beacon_interval_s=0.05)
    node, attacker = _socket(), _socket()
    sealer = S.Sealer(KEY, sender=21, boot=4)
    good = [sealer.seal(_frame(manifest, 0, w)) for w in range(3)]
    flipped = bytearray(sealer.seal(_frame(manifest, 0, 3)))
    flipped[-20] ^= 0x04
    wrong_key = bytearray(S.seal(OTHER, _frame(manifest, 0, 4), sender=21, boot=4, counter=90))
    wrong_key[4:8] = KEY.network_id.to_bytes(4, "little")
    attacks = [bytes(flipped), bytes(wrong_key), good[0],                 # bad tag x2, replay
               S.seal(OTHER, _frame(manifest, 0, 5), sender=21, boot=4, counter=91),  # network
               _frame(manifest, 0, 6), b"CS\x01\xff" + bytes(40), b"junk"]  # plain, malformed, junk
    for msg in good:
        node.sendto(msg, addr)
    time.sleep(0.2)
    for msg in attacks:                             # good[0] again: a replay
        attacker.sendto(msg, addr)
    time.sleep(0.3)
    beacons = _drain(node)
    attacker.sendto(good[1], addr)                  # another replay of the node's frame
    preds, stats = finish()
    assert _drain(attacker) == []                   # no beacon to whoever merely sent datagrams
    assert beacons and all(S.is_sealed(b) for b in beacons)
    guard = S.BeaconGuard(KEY)
    opened = [guard.open(b) for b in beacons]
    assert all(isinstance(p, bytes) for p in opened)
    assert decode_beacon(opened[0]).fingerprint == fingerprint32(manifest.fingerprint)
    assert stats.security == {
        "opened": 3, "rejected_total": 8,
        "rejected": {"bad_tag": 2, "malformed": 1, "other_network": 1, "replay": 2,
                     "unsealed": 2}}                # b"junk" is not sealed at all
    assert stats.frames == 11 and stats.counters["decoded"] == 3     # only verified ones decode
    assert sorted(p.seq for p in preds) == [0, 1, 2]
    node.close()
    attacker.close()


def _run_fleet(m: Manifest, *, key: S.NetworkKey | None, n: int) -> list[tuple]:
    addr, finish = _start(m, deadline_s=1.0, key=key, beacon_interval_s=None)
    socks = [_socket() for _ in m.modalities]
    sealers = [S.Sealer(key, sender=100 + i, boot=9) if key else None
               for i in range(len(m.modalities))]
    for w in range(n):
        for i, s in enumerate(socks):
            f = _frame(m, i, w, epoch=5)
            s.sendto(sealers[i].seal(f) if key else f, addr)
    preds, stats = finish(0.4)
    for s in socks:
        s.close()
    assert stats.counters["accepted"] == n * len(m.modalities)
    return sorted((p.epoch, p.seq, p.reason, p.class_index, tuple(p.probabilities),
                   tuple(p.present)) for p in preds)


def test_sealed_fleet_fuses_exactly_like_a_plain_one(manifest: Manifest) -> None:
    plain = _run_fleet(manifest, key=None, n=12)
    sealed = _run_fleet(manifest, key=KEY, n=12)
    assert len(plain) == 12 and all(p[2] == "complete" for p in plain)
    assert sealed == plain


def test_cli_serve_key_file_errors(cli_run, bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    for path, want in ((bad, "not a crossl-edge key file"), (tmp_path / "none.key", "cannot read")):
        code, _, err = cli_run("serve", bundle, "--listen", "udp://127.0.0.1:0",
                               "--key-file", path, "--duration", "0.1")
        assert code == 2 and want in err and "Traceback" not in err
    from crossl_edge.runtime.keys import write_key_file
    write_key_file(tmp_path / "net.key", KEY)
    code, _, err = cli_run("serve", bundle, "--listen", "udp://127.0.0.1:0", "--key-file",
                           tmp_path / "net.key", "--duration", "0.2", "--json")
    assert code == 0 and '"security"' in err and KEY.key.hex() not in err
