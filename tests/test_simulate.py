"""simulate(): lossy channel -> aggregator, in-process and over UDP; the runtime CLI verbs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crossl_edge.cli import main
from crossl_edge.manifest import load_manifest
from crossl_edge.runtime.transports import CaptureWriter
from crossl_edge.sim.simulate import load_windows, simulate
from crossl_edge.wire.frame import LatentDType, LatentFrame, encode_frame


@pytest.fixture(scope="module")
def npz(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    m = load_manifest(tiny_bundle)
    xs, y = load_windows(m, None)
    path = tmp_path_factory.mktemp("sim") / "windows.npz"
    np.savez(path, y=y[:16], **{f"x_{k}": v[:16] for k, v in xs.items()})
    return path


def test_simulate_inproc_matches_offline_and_is_seeded(tiny_bundle: Path) -> None:
    res = simulate(tiny_bundle, loss_rates=(0.0, 0.5), seed=3)
    zero, half = res.loss_table
    assert zero.coverage == 1.0 and zero.offline_agreement == 1.0
    assert zero.accuracy == pytest.approx(res.offline["acc+gyro"])
    assert zero.frames_sent == zero.frames_received == 2 * res.windows
    assert half.frames_dropped > 0 and half.offline_agreement == 1.0
    assert half.accuracy_all <= half.coverage
    for r, other in zip(res.missing_table, ["gyro", "acc"], strict=True):
        assert r.coverage == 1.0 and r.accuracy == pytest.approx(res.offline[other])
        assert r.reasons == {"deadline": res.windows}
    again = simulate(tiny_bundle, loss_rates=(0.0, 0.5), seed=3)
    for x, y in zip(again.loss_table + again.missing_table, res.loss_table + res.missing_table,
                    strict=True):
        assert x.latency_s["p50"] == pytest.approx(y.latency_s["p50"], abs=0.01)
        x.latency_s = y.latency_s = {}
    assert json.dumps(again.to_json()) == json.dumps(res.to_json())


def test_simulate_faults_from_npz(tiny_bundle: Path, npz: Path, tmp_path: Path) -> None:
    res = simulate(tiny_bundle, data=npz, loss_rates=(0.0,), jitter_s=0.05, duplicate_rate=0.4,
                   reorder_rate=0.4, outage={"gyro": (0.5, 1.0)}, seed=1)
    (r,) = res.loss_table
    assert res.windows == 16 and r.coverage == 1.0 and r.offline_agreement == 1.0
    assert r.duplicates > 0 and r.late == 0 and r.frames_dropped == 8
    assert res.plot(tmp_path / "sim.png") is None or (tmp_path / "sim.png").stat().st_size > 0


def test_simulate_over_udp_loopback(tiny_bundle: Path, npz: Path) -> None:
    res = simulate(tiny_bundle, data=npz, loss_rates=(0.0,), transport="udp", max_windows=8)
    (r,) = res.loss_table
    assert r.coverage == 1.0 and r.offline_agreement == 1.0 and r.reasons == {"complete": 8}
    assert all(m.coverage == 1.0 for m in res.missing_table)


def _cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
    cap = capsys.readouterr()
    return int(e.value.code), cap.out, cap.err


def test_cli_simulate_and_serve_replay(tiny_bundle: Path, npz: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    code, out, _ = _cli(["simulate", str(tiny_bundle), "--data", str(npz), "--loss", "0",
                         "--json"], capsys)
    assert code == 0 and json.loads(out)["loss_table"][0]["coverage"] == 1.0
    code, out, _ = _cli(["simulate", str(tiny_bundle), "--data", str(npz), "--loss", "0,0.3"],
                        capsys)
    assert code == 0 and "loss=0.3" in out and "no gyro" in out
    m = load_manifest(tiny_bundle)
    cap = tmp_path / "cap.bin"
    with CaptureWriter(cap) as w:
        for s in range(3):
            for mod in m.modalities:
                w.write(encode_frame(LatentFrame(mod.id, s, 0, m.fingerprint, LatentDType.INT8,
                                                 np.zeros(m.latent_dim, np.int8))), 0.01 * s)
    preds = tmp_path / "p.jsonl"
    code, _, err = _cli(["serve", str(tiny_bundle), "--replay", str(cap), "--out", str(preds)],
                        capsys)
    rows = [json.loads(x) for x in preds.read_text().splitlines()]
    assert code == 0 and [r["seq"] for r in rows] == [0, 1, 2] and "3 predictions" in err


@pytest.mark.parametrize("args", [["serve", "{b}"], ["serve", "{b}", "--listen", "udp://x:y"],
                                  ["simulate", "{b}", "--loss", "a,b"],
                                  ["simulate", "{b}", "--outage", "gyro"],
                                  ["simulate", "{b}", "--outage", "pressure:0-1"],
                                  ["simulate", "{b}", "--data", "{npz}", "--duplicate", "2"]])
def test_cli_usage_errors_exit_2(tiny_bundle: Path, npz: Path, args: list[str],
                                 capsys: pytest.CaptureFixture) -> None:
    code, _, err = _cli([a.format(b=tiny_bundle, npz=npz) for a in args], capsys)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_simulate_runs_without_torch_or_tensorflow(tiny_bundle: Path, npz: Path) -> None:
    code = (f"import sys\nfrom crossl_edge.sim.simulate import simulate\n"
            f"simulate({str(tiny_bundle)!r}, data={str(npz)!r}, loss_rates=(0.0,))\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow')]\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_cli_serve_udp_stops_cleanly_on_sigint(tiny_bundle: Path) -> None:
    import select
    import signal
    import socket

    m = load_manifest(tiny_bundle)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "crossl_edge.cli", "serve", str(tiny_bundle),
                             "--listen", f"udp://127.0.0.1:{port}", "--deadline", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        line = ""
        for seq in range(300):                  # until the server is up and answers
            for mod in m.modalities:
                tx.sendto(encode_frame(LatentFrame(mod.id, seq, 0, m.fingerprint,
                                                   LatentDType.INT8,
                                                   np.zeros(m.latent_dim, np.int8))),
                          ("127.0.0.1", port))
            if select.select([proc.stdout], [], [], 0.1)[0]:
                line = proc.stdout.readline()
                break
        assert json.loads(line)["reason"] == "complete"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        tx.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "stopped (stop)" in err and "latency ms: p50" in err and "Traceback" not in err
