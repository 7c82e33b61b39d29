"""Fault sweep, bundles: an inconsistent or edited manifest is refused on load by every reader
(serve, simulate, bench, parity, firmware) with one sentence, never served as a wrong answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crossl_edge.errors import CheckFailed, UsageError
from crossl_edge.manifest import MANIFEST, load_manifest, manifest_fingerprint, to_json
from crossl_edge.runtime.bundle import open_bundle
from crossl_edge.runtime.transports import CaptureWriter


def _edit(bundle: Path, change: Callable[[dict[str, Any]], Any], *, reseal: bool = True) -> Path:
    """Apply ``change`` to BUNDLE/manifest.json; reseal the fingerprint so only ``change`` is
    wrong (the fingerprint check has its own test)."""
    f = bundle / MANIFEST
    obj = json.loads(f.read_text())
    before = obj["fingerprint"]
    new = change(obj)
    obj = new if isinstance(new, list) else obj  # a change may replace the whole object
    if reseal and isinstance(obj, dict) and obj["fingerprint"] == before:
        obj["fingerprint"] = manifest_fingerprint(obj)
        obj["fingerprint_hex"] = f"{obj['fingerprint']:08x}"
    f.write_text(json.dumps(obj))
    return bundle


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        *keys, last = path.split(".")
        d: Any = obj
        for k in keys:
            d = d[int(k)] if isinstance(d, list) else d[k]
        if isinstance(d, list):
            d[int(last)] = value
        else:
            d[last] = value
    return change


def _phone_as_encoder(obj: dict[str, Any]) -> None:
    m = obj["modalities"][0]
    m["artifacts"] = {"tflite": obj["aggregator"]["artifacts"]["tflite"]}
    m["sha256"] = {"tflite": obj["aggregator"]["sha256"]["tflite"]}


CASES = {
    "duplicate id": (_set("modalities.1.id", 0), "share the same id"),
    "id over a byte": (_set("modalities.0.id", 300), "id must be an integer in 0..255"),
    "classes shorter than the model": (lambda o: o["classes"].pop(), "classes edited"),
    "latent_dim 64 for a 96-d model": (_set("latent_dim", 64), "classes edited"),
    "window 2 for a 100-sample model": (_set("modalities.0.window", 2), "re-export"),
    "std zero": (_set("modalities.0.normalization.std.0", 0.0), "positive finite number"),
    "input scale zero": (_set("modalities.1.quantization.input.scale", 0), "positive finite"),
    "scale as a string": (_set("modalities.1.quantization.latent.scale", "0.1"),
                          "positive finite number"),
    "negative fingerprint": (_set("fingerprint", -5), "fingerprint must be an integer"),
    "a list instead of an object": (lambda o: [o], "holds a JSON list"),
    "modalities as an object": (_set("modalities", {"acc": 1}), "non-empty list"),
    "unknown layout": (_set("modalities.0.layout", "NHWC"), "layout must be NWC"),
    "unknown artifact kind": (_set("modalities.0.artifacts.tflite_fp16", "x.tflite"),
                              "unknown kind 'tflite_fp16'"),
    "artifact outside the bundle": (_set("modalities.0.artifacts.onnx", "../../etc/passwd"),
                                    "path inside the bundle"),
    "phone model in an encoder's place": (_phone_as_encoder, "re-export"),
    "channels and normalization disagree": (lambda o: o["modalities"][0]["channels"].pop(),
                                            "list of 2 numbers"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_inconsistent_manifest_is_refused_on_load(bundle_copy: Callable[[str], Path],
                                                  case: str) -> None:
    change, message = CASES[case]
    bad = _edit(bundle_copy("bad"), change)
    with pytest.raises(UsageError, match="re-export the bundle") as e:
        open_bundle(bad)  # the manifest's own checks, then the models' shapes against it
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("verb", ["serve", "simulate", "bench", "parity", "firmware"])
def test_every_reader_refuses_duplicate_ids(bundle_copy: Callable[[str], Path], tmp_path: Path,
                                            verb: str, cli_error: Callable) -> None:
    bad = _edit(bundle_copy("bad"), _set("modalities.1.id", 0))
    CaptureWriter(tmp_path / "empty.cap").close()
    extra = {"serve": ["--replay", tmp_path / "empty.cap"], "firmware": ["--out", tmp_path / "fw"],
             "bench": ["--quick"]}.get(verb, [])
    code, line = cli_error(verb, bad, *extra)
    assert code == 2 and "share the same id" in line
    assert not (tmp_path / "fw").exists()


def test_manifest_edit_without_new_fingerprint_fails_the_check(
        bundle_copy: Callable[[str], Path], cli_error: Callable) -> None:
    bad = _edit(bundle_copy("bad"), _set("classes.0", "renamed"), reseal=False)
    with pytest.raises(CheckFailed, match="does not match its fingerprint"):
        load_manifest(bad)
    code, line = cli_error("simulate", bad)
    assert code == 1 and "fingerprint" in line


def test_samples_sha256_is_checked(bundle_copy: Callable[[str], Path], cli_error: Callable
                                   ) -> None:
    bad = bundle_copy("bad")
    samples = bad / "samples.npz"
    with np.load(samples) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["y"] = np.zeros_like(arrays["y"])                  # a valid file, other labels
    np.savez(samples, **arrays)
    code, line = cli_error("simulate", bad)
    assert code == 1 and "samples.npz does not match its sha256" in line


def test_unknown_quantization_keys_stay_allowed(bundle_copy: Callable[[str], Path]) -> None:
    scheme = {"weights": "per-channel", "activations": "per-tensor"}
    ok = _edit(bundle_copy("ok"), _set("modalities.0.quantization.scheme", scheme))
    m = load_manifest(ok)
    assert to_json(m)["modalities"][0]["quantization"]["scheme"] == scheme
    assert manifest_fingerprint(to_json(m)) == m.fingerprint


def test_fingerprint_covers_the_manifest(tiny_bundle: Path) -> None:
    obj = json.loads((tiny_bundle / MANIFEST).read_text())
    assert manifest_fingerprint(obj) == obj["fingerprint"] == load_manifest(tiny_bundle).fingerprint
    for edit in (_set("classes.0", "x"), _set("modalities.0.sample_rate_hz", 11.0),
                 _set("samples.windows", 1)):
        other = json.loads(json.dumps(obj))
        edit(other)
        assert manifest_fingerprint(other) != obj["fingerprint"]
