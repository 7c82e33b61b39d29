"""The manifest's typed records round-trip their JSON exactly (the fingerprint is over it)."""

from __future__ import annotations

import json
from pathlib import Path

from crossl_edge.bundle_records import EncoderStats, Provenance
from crossl_edge.manifest import MANIFEST, from_json, to_json

STATS = {"checks": {"onnx_max_abs_err": 1e-7, "tflite_int8_mean_cosine": 0.999, "new_check": 2},
         "calibration_input_percentile": 99.5, "tflite_int8_ops": ["CONV_2D", "MEAN"],
         "tflite_int8_op_count": 7, "tflm": None, "params": 1234, "macs": 56789,
         "size_bytes": {"tflite_int8": 4096}, "future_field": {"x": 1}}
PROVENANCE = {"source": {"run": "/r", "dataset": "basicmotions", "data_path": None,
                         "data_options": {}, "encoder": "edge", "model_sha256": "ab"},
              "samples": {"path": "samples.npz", "sha256": "cd", "windows": 40},
              "calibration": {"windows": 40, "of": 40, "selection": "all"},
              "versions": {"torch": "2.13.0"}, "layouts": {"latent": "(1, D)"}}


def test_stats_round_trip_keeps_nulls_and_unknown_keys() -> None:
    s = EncoderStats.from_json(STATS)
    assert s.tflm is None and s.params == 1234 and s.checks.onnx_max_abs_err == 1e-7
    assert s.checks.other == {"new_check": 2} and s.other == {"future_field": {"x": 1}}
    assert s.to_json() == STATS


def test_provenance_round_trip_keeps_an_explicit_null() -> None:
    p = Provenance.from_json(PROVENANCE)
    assert p.source is not None and p.source.data_path is None and p.source.run == "/r"
    assert p.samples is not None and p.samples.path == "samples.npz"
    assert p.to_json() == PROVENANCE


def test_real_manifest_round_trips(tiny_bundle: Path) -> None:
    obj = json.loads((tiny_bundle / MANIFEST).read_text())
    assert json.loads(json.dumps(to_json(from_json(obj, tiny_bundle)))) == obj
