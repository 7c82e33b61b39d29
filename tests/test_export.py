"""Export: every format for both encoders, the manifest contract, determinism, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crossl_edge.errors import CheckFailed, DataError, UsageError

KINDS = ("onnx", "onnx_int8", "tflite", "tflite_int8")
TFLM_OPS = {"ADD", "CONV_2D", "MEAN", "MUL", "PRELU", "RESHAPE", "RSQRT", "SUB"}
TFLM_LSB_TOLERANCE = 2   # RSQRT rounds differently on TFLM; predictions must still agree


@pytest.fixture(scope="session")
def crossl_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_run: Path) -> Path:
    from crossl_edge.export.bundle import export_bundle

    out = tmp_path_factory.mktemp("bundles") / "bundle-crossl"
    export_bundle(tiny_run, out, calibration_windows=24)
    return out


def _cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    from crossl_edge.cli import main

    with pytest.raises(SystemExit) as e:
        main(args)
    cap = capsys.readouterr()
    return int(e.value.code or 0), cap.out, cap.err


def _no_leftovers(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


@pytest.mark.parametrize("which", ["edge", "crossl"])
def test_bundle_contract(which: str, tiny_bundle: Path, crossl_bundle: Path) -> None:
    from crossl_edge.manifest import load_manifest
    from crossl_edge.runtime.backends import open_model

    bundle = tiny_bundle if which == "edge" else crossl_bundle
    obj = json.loads((bundle / "manifest.json").read_text())
    for key in ("format_version", "classes", "latent_dim", "modalities", "aggregator",
                "fingerprint", "source", "versions", "calibration"):
        assert key in obj
    assert obj["source"]["encoder"] == which
    m = load_manifest(bundle)                      # verifies every sha256
    assert m.names == ["acc", "gyro"] and m.latent_dim == 96
    for e in m.modalities:
        assert set(e.artifacts) == set(KINDS) and e.layout == "NWC"
        assert e.normalization["mean"] and len(e.normalization["std"]) == 3
        assert 0 < e.input_quant.scale and 0 < e.latent_quant.scale
        assert set(e.stats.tflite_int8_ops or []) <= TFLM_OPS
        assert (e.stats.params or 0) > 0 and (e.stats.macs or 0) > 0
        assert e.stats.tflm is not None and (e.stats.tflm.arena_recorded_bytes or 0) > 0
        assert (e.stats.tflm.max_lsb_vs_litert_builtin or 0) <= TFLM_LSB_TOLERANCE
        assert e.stats.tflm.prediction_disagreements == 0
        assert (e.stats.checks.tflite_max_abs_err or 0) < 1e-4
        if which == "crossl":   # LayerNorm written out, PReLU folded into two affine branches
            assert "RSQRT" in (e.stats.tflite_int8_ops or [])
            assert "PRELU" not in (e.stats.tflite_int8_ops or [])
        raw = np.random.default_rng(0).standard_normal((3, e.window)).astype(np.float32)
        t8 = open_model(m.path(e.artifacts["tflite_int8"]))
        assert t8.run(e.tflite_input(raw, int8=True)).shape == (1, 96)
        assert open_model(m.path(e.artifacts["onnx"])).run(e.onnx_input(raw)).shape == (1, 96)
    assert m.aggregator.inputs == ["latents", "present"]
    phone = open_model(m.path(m.aggregator.artifacts["tflite"]))
    logits = phone.run(np.zeros((1, 2, 96), np.float32), np.ones((1, 2), np.float32))
    assert logits.shape == (1, len(m.classes))


def test_tflm_runs_int8_encoders(tiny_bundle: Path, crossl_bundle: Path) -> None:
    from crossl_edge.manifest import load_manifest
    from crossl_edge.runtime.backends import TFLiteRunner
    from crossl_edge.runtime.tflm import measure_arena, run_tflm

    for bundle in (tiny_bundle, crossl_bundle):
        m = load_manifest(bundle)
        e = m.modalities[0]
        x = np.random.default_rng(1).integers(-60, 60, (3, 1, e.window, 3), dtype=np.int8)
        p = m.path(e.artifacts["tflite_int8"])
        micro = run_tflm(p, x)
        lite = np.stack([TFLiteRunner(p, xnnpack=False).run(xi) for xi in x])
        assert np.abs(micro.astype(int) - lite).max() <= TFLM_LSB_TOLERANCE
        arena = measure_arena(p)                   # cached: same figure as the manifest
        assert arena.recorded_bytes == e.stats.arena_recorded_bytes


def test_export_cli_deterministic(tiny_edge_run: Path, tiny_bundle: Path,
                                  tmp_path: Path) -> None:
    out = tmp_path / "again"
    exe = Path(sys.executable).with_name("crossl-edge")
    p = subprocess.run([str(exe), "export", str(tiny_edge_run), "--out", str(out), "--json"],
                       capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["fingerprint"] == json.loads(
        (tiny_bundle / "manifest.json").read_text())["fingerprint"]
    files = sorted(f.relative_to(tiny_bundle) for f in tiny_bundle.rglob("*") if f.is_file())
    assert files == sorted(f.relative_to(out) for f in out.rglob("*") if f.is_file())
    for f in files:
        assert (tiny_bundle / f).read_bytes() == (out / f).read_bytes(), f


def test_export_bad_runs(tiny_edge_run: Path, tmp_path: Path,
                         capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "b"
    code, _, err = _cli(["export", str(tmp_path / "nope"), "--out", str(out)], capsys)
    assert code == 2 and "not a run directory" in err and "Traceback" not in err
    _no_leftovers(out)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(tiny_edge_run, unfinished)
    meta = json.loads((unfinished / "run.json").read_text())
    (unfinished / "run.json").write_text(json.dumps({**meta, "status": "running"}))
    code, _, err = _cli(["export", str(unfinished), "--out", str(out)], capsys)
    assert code == 2 and "unfinished" in err
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_edge_run, corrupt)
    (corrupt / "model.pt").write_bytes(b"not a checkpoint")
    code, _, err = _cli(["export", str(corrupt), "--out", str(out)], capsys)
    assert code == 2 and "checkpoint" in err
    code, _, err = _cli(["export", str(tiny_edge_run), "--out", str(out),
                         "--calibration-windows", "100000"], capsys)
    assert code == 2 and "--calibration-windows" in err
    _no_leftovers(out)


def test_calibration_set_checks(tiny_edge_run: Path, tmp_path: Path) -> None:
    from crossl_edge.export.bundle import export_bundle
    from crossl_edge.export.tflite_export import check_calibration

    bad = np.zeros((8, 3, 100), np.float32)
    bad[2, 1, 5] = np.nan
    with pytest.raises(DataError, match="NaN"):
        check_calibration(bad, name="acc")
    out = tmp_path / "small"
    with pytest.raises(DataError, match="at least"):
        export_bundle(tiny_edge_run, out, calibration_windows=2)
    _no_leftovers(out)


def test_broken_artifact_stops_export(tiny_edge_run: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from crossl_edge.export import bundle, tflite_export

    monkeypatch.setattr(tflite_export, "encoder_tflite", lambda *a, **k: b"garbage" * 10)
    out = tmp_path / "broken"
    with pytest.raises(CheckFailed, match="not a loadable TFLite model"):
        bundle.export_bundle(tiny_edge_run, out)
    _no_leftovers(out)


def test_manifest_errors(tiny_bundle: Path, tmp_path: Path) -> None:
    from crossl_edge.manifest import load_manifest

    with pytest.raises(UsageError, match="unknown modality"):
        load_manifest(tiny_bundle).modality("ecg")
    bad = tmp_path / "bad"
    shutil.copytree(tiny_bundle, bad)
    (bad / "manifest.json").write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_manifest(bad)


def test_crossl_bundle_parity(crossl_bundle: Path) -> None:
    from crossl_edge.export.parity import ParityThresholds, run_parity

    r = run_parity(crossl_bundle, thresholds=ParityThresholds(
        min_cosine=0.9, max_f1_drop=1.0, min_sqnr_db=0.0, max_flip_rate=1.0, margin_quantile=1.0))
    assert r.passed, r.failures
    for enc in r.encoders.values():
        assert enc["float_max_abs_err"]["tflite"] < 1e-4
        assert enc["int8"]["tflite_int8"]["cosine_mean"] > 0.95
        assert enc["tflm"]["max_lsb_vs_litert_builtin"] <= TFLM_LSB_TOLERANCE
    assert all(row["tflm"]["agreement_with_litert"] == 1.0 for row in r.subsets)
