"""Export at scale: stratified, capped calibration windows; progress events and their lines; the
time budget; runners opened from bytes; the scheme record's one reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crossl_edge.errors import DataError, UsageError


def test_stratified_indices_keep_class_and_subject_shares() -> None:
    from crossl_edge.export.calibration import stratified_indices

    rng = np.random.default_rng(0)
    labels = rng.choice(6, 3000, p=[0.4, 0.3, 0.1, 0.1, 0.08, 0.02])
    subjects = rng.choice(["a", "b", "c", "d"], 3000).astype(str)
    idx = stratified_indices(labels, subjects, 300)
    assert len(idx) == 300 and len(np.unique(idx)) == 300 and np.all(np.diff(idx) > 0)
    want = np.bincount(labels, minlength=6) / len(labels)
    got = np.bincount(labels[idx], minlength=6) / len(idx)
    assert np.abs(got - want).max() < 0.01
    for c in range(6):   # within a class, subjects keep their shares too (+-1 window)
        mine = labels == c
        for s in "abcd":
            share = (subjects[mine] == s).sum() / mine.sum() * (labels[idx] == c).sum()
            assert abs((subjects[idx][labels[idx] == c] == s).sum() - share) <= 1
    assert np.array_equal(idx, stratified_indices(labels, subjects, 300))   # deterministic
    rare = np.array([0] * 99 + [1])
    assert 99 in stratified_indices(rare, np.zeros(100, str), 4)            # every class kept
    assert np.array_equal(stratified_indices(rare, np.zeros(100, str), 500), np.arange(100))


def test_calibration_indices_cap_and_errors() -> None:
    from crossl_edge.export.calibration import (
        DEFAULT_CALIBRATION,
        calibration_indices,
        recorded_indices,
    )

    labels = np.arange(5000) % 18
    subjects = (np.arange(5000) // 250).astype(str)
    idx = calibration_indices(5000, None, labels=labels, subjects=subjects)
    assert len(idx) == DEFAULT_CALIBRATION
    assert len(calibration_indices(5000, None, labels=labels, default=None)) == 5000
    assert len(calibration_indices(100, None, labels=labels[:100])) == 100
    rec = {"windows": DEFAULT_CALIBRATION, "of": 5000,
           "selection": "stratified by class and subject"}
    assert np.array_equal(recorded_indices(labels, subjects, rec), idx)
    old = {"windows": 40, "selection": "evenly spaced over the normalized training split"}
    assert np.array_equal(recorded_indices(labels, subjects, old),
                          np.unique(np.linspace(0, 4999, 40).round().astype(int)))
    with pytest.raises(DataError, match="at least 4"):
        calibration_indices(5000, 2, labels=labels)
    with pytest.raises(UsageError, match="at most the training split"):
        calibration_indices(50, 51)


def test_tracker_estimates_what_is_left_and_formats_lines() -> None:
    from crossl_edge.export.progress import Tracker, format_line

    now = [0.0]
    events = []
    t = Tracker(events.append, clock=lambda: now[0])
    t.plan({"tflite_int8": 4, "onnx_int8": 2}, ["calibrating on 8 of 8 training windows"])
    assert events[-1].stage == "plan" and format_line(events[-1]).startswith("calibrating on")
    t.start("acc")
    for _ in range(2):
        now[0] += 10.0
        t.step("tflite_int8", "a candidate", modality="acc")
    e = events[-1]
    assert (e.done, e.total, e.elapsed_s) == (2, 6, 20.0)
    assert e.eta_s == pytest.approx(4 * 10.0)     # 2 TFLite + 2 ONNX units at the mean so far
    t.skip("tflite_int8", 2)                        # early stop: two planned units will not run
    now[0] += 1.0
    t.step("onnx_int8", "done", modality="acc", units=2)
    assert events[-1].eta_s == pytest.approx(0.0) and events[-1].total == 4
    assert format_line(events[-1]) == "[21s, ~0s left] acc onnx_int8: done"


def test_runners_open_model_bytes(tmp_path: Path) -> None:
    import torch

    from crossl_edge.export import onnx_export, tflite_export
    from crossl_edge.export.keras_twin import keras_encoder
    from crossl_edge.model.encoders import edge_encoder
    from crossl_edge.runtime.backends import OnnxRunner, TFLiteRunner

    torch.manual_seed(0)
    enc = edge_encoder(3, latent_dim=8).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 32)).astype(np.float32)
    q = tflite_export.encoder_tflite_int8(keras_encoder(enc, window=32), window=32, channels=3,
                                          calibration=x)
    f = onnx_export.encoder_onnx(enc, channels=3, window=32)
    (tmp_path / "q.tflite").write_bytes(q)
    (tmp_path / "f.onnx").write_bytes(f)
    a, b = TFLiteRunner(q), TFLiteRunner(tmp_path / "q.tflite")
    xi = np.zeros(a.inputs[0].shape, np.int8)
    assert np.array_equal(a.run(xi), b.run(xi)) and a.inputs[0].scale == b.inputs[0].scale
    assert np.array_equal(OnnxRunner(f).run(x[:1]), OnnxRunner(tmp_path / "f.onnx").run(x[:1]))
    from crossl_edge.errors import CheckFailed

    with pytest.raises(CheckFailed, match="the model bytes is not a loadable"):
        OnnxRunner(b"not a model")


def test_scheme_record_round_trips_and_reads_only_records() -> None:
    from crossl_edge.export.schemes import (
        ONNX_SCHEMES,
        TFLITE_SCHEMES,
        Scheme,
        SchemeRecord,
        Trial,
        record,
    )

    for s in (*TFLITE_SCHEMES, *ONNX_SCHEMES):
        assert Scheme.from_json(json.loads(json.dumps(s.to_json()))) == s
    t = Trial(TFLITE_SCHEMES[0], scores={"sqnr_db": 30.0})
    rec = record([t], t, "only one", cut_short=True)
    obj = json.loads(json.dumps({"tflite_int8": rec.to_json(), "calibration_windows": 8,
                                 "targets": {"min_cosine": 0.99}}))
    read = SchemeRecord.read(obj)
    assert set(read) == {"tflite_int8"} and read["tflite_int8"] == rec
    assert read["tflite_int8"].scheme == TFLITE_SCHEMES[0] and read["tflite_int8"].cut_short
    assert SchemeRecord.read(None) == {} and SchemeRecord.read("x") == {}
    old = {k: v for k, v in rec.to_json().items() if k != "cut_short"}   # older bundles
    assert SchemeRecord.from_json(old).cut_short is False


def test_export_cli_budget_progress_lines_and_json(tiny_edge_run: Path, tmp_path: Path,
                                                   cli_run) -> None:
    out = tmp_path / "bundle"
    code, stdout, stderr = cli_run("export", tiny_edge_run, "--out", out, "--json",
                                   "--calibration-windows", "16", "--max-search-seconds", "0.01")
    assert code == 0, stderr
    obj = json.loads(stdout)                       # stdout is one JSON document
    lines = stderr.splitlines()
    assert lines[0].startswith("calibrating on 16 of ") and "--calibration-windows" in lines[0]
    assert "--max-search-seconds" in lines[1]
    for mod in obj["modalities"]:
        name = mod["name"]
        for stage in ("onnx", "tflite", "tflite_int8", "onnx_int8"):
            assert any(f"] {name} {stage}: " in x for x in lines), (name, stage)
        assert any(f"] {name} tflite_int8: 1/9 " in x and "SQNR" in x for x in lines)
        rec = mod["quantization"]["scheme"]["tflite_int8"]
        assert rec["cut_short"] and len(rec["tried"]) < 9 and "cut short" in rec["why"]
    assert all(x.startswith("[") and " left] " in x for x in lines[3:])   # elapsed, estimate
    assert lines[-1].split("] ", 1)[1].startswith("phone: ")


def test_export_progress_lines_off_a_terminal_and_live_on_one(capsys: pytest.CaptureFixture,
                                                              ) -> None:
    from crossl_edge.cli.common import export_progress
    from crossl_edge.export.progress import Event

    events = [Event("plan", "calibrating on 8 of 9 training windows"),
              Event("tflite_int8", "1/9 p99.5: SQNR 30.0 dB", "acc", 65.0, 150.0, 3, 10)]
    with export_progress(stdout_tty=False) as report:
        for e in events:
            report(e)
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.splitlines() == [
        "calibrating on 8 of 9 training windows",
        "[1m05s, ~2m30s left] acc tflite_int8: 1/9 p99.5: SQNR 30.0 dB"]
    with export_progress(stdout_tty=True) as report:     # rich, on stderr: the plan stays
        for e in events:
            report(e)
    cap = capsys.readouterr()
    assert cap.out == "" and "calibrating on 8 of 9" in cap.err
