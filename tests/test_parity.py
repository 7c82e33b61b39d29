"""Parity: metrics on the tiny edge bundle, the CLI and its report, and the failure paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from crossl_edge.manifest import manifest_fingerprint

LOOSE = ["--min-cosine", "0.9", "--max-f1-drop", "1", "--min-sqnr-db", "0",
         "--max-flip-rate", "1", "--margin-quantile", "1"]


def _cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    from crossl_edge.cli import main

    with pytest.raises(SystemExit) as e:
        main(args)
    cap = capsys.readouterr()
    return int(e.value.code or 0), cap.out, cap.err


def test_parity_metrics(tiny_bundle: Path) -> None:
    from crossl_edge.export.parity import PIPELINES, ParityThresholds, format_table, run_parity

    r = run_parity(tiny_bundle, thresholds=ParityThresholds(
        min_cosine=0.9, max_f1_drop=1.0, min_sqnr_db=0.0, max_flip_rate=1.0,
        margin_quantile=1.0))
    assert r.passed and r.reference == "pytorch" and r.n_windows == 40
    assert r.pipelines == list(PIPELINES) and r.gated == ["tflm_int8", "onnx_int8"]
    assert [s["present"] for s in r.subsets] == [["acc", "gyro"], ["acc"], ["gyro"]]
    for enc in r.encoders.values():
        assert enc["float_max_abs_err"]["onnx"] < 1e-4
        for p in PIPELINES:
            s = enc["int8"][p]
            assert 0.99 <= s["cosine_mean"] <= 1.0 and s["sqnr_db"] > 15
        assert enc["tflm"]["max_lsb_vs_litert_builtin"] <= 2
    assert {row["tflm"]["agreement_with_litert"] for row in r.subsets} == {1.0}
    assert set(r.schemes) == {"acc", "gyro"}
    assert r.schemes["acc"]["tflite_int8"]["scheme"].startswith("minmax/")
    row = r.subsets[0]
    assert len(row["float"]["confusion"]) == 4 and "f1_drop" in row["tflite_int8"]
    for p in PIPELINES:                          # the decision's measurements, every pipeline
        q = row[p]
        assert q["flip_rate"] == pytest.approx(len(q["changed"]) / 40)
        lo, hi = q["f1_drop_ci95"]
        assert lo <= hi and q["verdicts"]["f1_drop"] is None     # 40 < 1,000 windows: not gated
        assert q["verdicts"]["flip_rate"] and q["verdicts"]["margin"]
    lo, hi = row["float"]["macro_f1_ci95"]
    assert lo <= row["float"]["macro_f1"] <= hi
    # the TFLM pipeline is the node's: TFLM latents through the phone model, on its own
    assert r.arrays["acc/tflm_int8"].shape == r.arrays["acc/tflite_int8"].shape
    obj = json.loads(json.dumps(r.to_json()))
    assert obj["schemes"] == r.schemes and obj["gated"] == r.gated and obj["f1_gated"] is False
    assert any("not gated: 40 test windows < 1000" in n for n in r.notes)
    table = format_table(r)
    assert "acc+gyro" in table and "scheme minmax/" in table and "tflm=litert" in table
    assert "tflm8 F1" in table and "threshold: flip rate <= 100%" in table
    assert "gated from 1000 test windows (40 here): n/a" in table


def test_parity_cli_report(tiny_bundle: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture) -> None:
    rep = tmp_path / "rep"
    code, out, _ = _cli(["parity", str(tiny_bundle), "--json", "--report", str(rep), *LOOSE],
                        capsys)
    assert code == 0 and json.loads(out)["passed"] is True
    saved = json.loads((rep / "parity.json").read_text())
    assert saved["subsets"] and saved["schemes"]["gyro"]["onnx_int8"]["scheme"]
    assert (rep / "report.html").read_text().count("data:image/png;base64,") >= 3


def test_parity_catches_tampered_quantization(tiny_bundle: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "tampered"
    shutil.copytree(tiny_bundle, bad)
    f = bad / "manifest.json"
    obj = json.loads(f.read_text())
    obj["modalities"][1]["quantization"]["latent"]["scale"] *= 8   # artifacts untouched
    obj["fingerprint"] = manifest_fingerprint(obj)                   # a consistent, wrong bundle
    obj["fingerprint_hex"] = f"{obj['fingerprint']:08x}"
    f.write_text(json.dumps(obj))
    rep = tmp_path / "rep"
    code, out, err = _cli(["parity", str(bad), "--report", str(rep)], capsys)
    assert code == 1 and "gyro tflm_int8: latent SQNR" in err and "FAILED" in out
    assert "gyro onnx_int8" not in err            # the ONNX artifacts were not touched
    loc = json.loads((rep / "parity.json").read_text())["localisation"]
    assert loc["gyro"] and "rmse_over_scale" in loc["gyro"][0]
    assert "Layer localisation" in (rep / "report.html").read_text()


def test_parity_bad_bundles(tiny_bundle: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture) -> None:
    code, _, err = _cli(["parity", str(tmp_path / "none")], capsys)
    assert code == 2 and "not a bundle" in err
    bad = tmp_path / "corrupt"
    shutil.copytree(tiny_bundle, bad)
    art = bad / "encoders" / "acc.int8.tflite"
    art.write_bytes(art.read_bytes()[:-10] + b"0123456789")
    code, _, err = _cli(["parity", str(bad)], capsys)
    assert code == 1 and "does not match its sha256" in err
    code, _, err = _cli(["parity", str(tiny_bundle), "--data", str(tmp_path / "nodata")],
                        capsys)
    assert code != 0 and "Traceback" not in err


def test_changed_windows_carry_the_float_margin_rank() -> None:
    from crossl_edge.export.parity import changed_windows

    pred_f = np.array([0, 1, 2, 1])
    pred = np.array([0, 2, 2, 0])
    margin = np.array([3.0, 0.01, 1.0, 0.5])
    got = changed_windows(pred_f, pred, margin)
    assert [c["window"] for c in got] == [1, 3]
    assert [c["margin_rank"] for c in got] == [1, 2]      # the two closest calls flipped
    assert got[0]["float_margin"] == pytest.approx(0.01)
    assert changed_windows(pred_f, pred_f, margin) == []
