"""Export's scheme search: the manifest record, the failure report, the ORT options, the Keras
twin's PReLU rewrite, TFLite Micro tolerance, and the per-op profile used by `bench --profile`."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from crossl_edge.errors import CheckFailed


def test_manifest_records_the_chosen_scheme(tiny_bundle: Path) -> None:
    from crossl_edge.export.schemes import TFLITE_SCHEMES, onnx_schemes

    obj = json.loads((tiny_bundle / "manifest.json").read_text())
    for mod in obj["modalities"]:
        rec = mod["quantization"]["scheme"]
        assert set(mod["quantization"]) == {"input", "latent", "scheme"}
        tfl, onx = rec["tflite_int8"], rec["onnx_int8"]
        assert tfl["chosen"] in [s.name for s in TFLITE_SCHEMES] and tfl["why"]
        pct = tfl["options"]["input_percentile"]
        assert onx["chosen"] in [s.name for s in onnx_schemes(pct)]
        assert onx["options"]["input_percentile"] == pct
        assert mod["stats"]["calibration_input_percentile"] == pct
        assert onx["tried"][-1]["scheme"] == onx["chosen"] or onx["scores"]["flips"] > 0
        ran = [t for t in tfl["tried"] if t["scores"] and not t["error"]
               and t["scores"]["cosine_mean"] >= 0.99 and t["scores"]["sqnr_db"] >= 15]
        fewest = min(t["scores"]["flips"] for t in ran)
        pool = [t for t in ran if t["scores"]["flips"] == fewest]
        top = max(t["scores"]["sqnr_db"] for t in pool)
        best = next(t for t in pool if t["scores"]["sqnr_db"] >= top - 1.0)
        assert best["scheme"] == tfl["chosen"]   # every candidate scored; earliest near-best kept
        for r in (tfl, onx):
            assert r["scores"]["cosine_mean"] >= 0.99 and r["scores"]["sqnr_db"] >= 15
            assert r["scores"]["windows"] == obj["calibration"]["windows"]
        assert tfl["scores"]["tflm"]["prediction_disagreements"] == 0
        want = "cross-fitted" if obj["calibration"]["windows"] >= 8 else "in-sample"
        assert all(t["scores"]["scored"] == want for t in tfl["tried"] if t["scores"])


def test_no_scheme_passes_writes_the_report(tiny_edge_run: Path, tmp_path: Path) -> None:
    from crossl_edge.export.bundle import export_bundle, failure_report_path
    from crossl_edge.export.schemes import TFLITE_SCHEMES, Targets

    out = tmp_path / "strict"
    with pytest.raises(CheckFailed, match="no quantization scheme brings acc tflite_int8") as e:
        export_bundle(tiny_edge_run, out, calibration_windows=8,
                      targets=Targets(min_sqnr_db=99.0))
    assert not out.exists()
    report = failure_report_path(out)
    assert str(report) in str(e.value)
    rep = json.loads(report.read_text())
    assert rep["modality"] == "acc" and rep["format"] == "tflite_int8"
    # the edge encoder has no LayerNorm: the LayerNorm variants are the same graph, not retried
    assert len(rep["search"]["tried"]) == sum(s.layernorm == "decomposed" for s in TFLITE_SCHEMES)
    assert all(t["scores"]["sqnr_db"] < 99 for t in rep["search"]["tried"])
    worst = rep["worst_layers"]
    assert worst and worst[0]["rmse_over_scale"] >= worst[-1]["rmse_over_scale"] > 0
    assert f"the worst layer is {worst[0]['tensor']}" in str(e.value)


def test_judge_scores_flips_and_fidelity(tiny_run: Path) -> None:
    from crossl_edge.export.bundle import make_judge
    from crossl_edge.rundir import load_run_dataset
    from crossl_edge.trained import load_model

    info, model = load_model(tiny_run)
    train = info.normalizer.transform(load_run_dataset(info).train)
    names = [m.name for m in info.modalities]
    judge = make_judge(model, names, {n: train.data[n][:12] for n in names}, train.labels[:12])
    same = judge.score("gyro", judge.reference["gyro"])
    assert same["flips"] == 0 and same["cosine_mean"] == pytest.approx(1.0)
    assert same["sqnr_db"] == 99.0 and same["max_f1_drop"] == 0.0
    noisy = judge.reference["gyro"] + np.random.default_rng(0).standard_normal(
        judge.reference["gyro"].shape).astype(np.float32) * 10
    bad = judge.score("gyro", noisy)
    assert bad["sqnr_db"] < 15 and bad["cosine_mean"] < 0.99
    assert judge.disagreements("gyro", noisy, noisy) == 0
    assert judge.disagreements("gyro", noisy, judge.reference["gyro"]) == bad["flips"]


@pytest.fixture(scope="module")
def acc_float_onnx(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory,
                   ) -> tuple[Path, np.ndarray]:
    from crossl_edge.export.onnx_export import encoder_onnx
    from crossl_edge.rundir import load_run_dataset
    from crossl_edge.trained import load_model

    info, model = load_model(tiny_run)
    x = info.normalizer.transform(load_run_dataset(info).train).data["acc"][:8]
    path = tmp_path_factory.mktemp("onnx") / "acc.onnx"
    path.write_bytes(encoder_onnx(model.encoders["acc"], channels=3, window=x.shape[2]))
    return path, x


@pytest.mark.parametrize("options", [
    {"method": "entropy"}, {"method": "percentile", "per_channel": False},
    {"symmetric_activations": True, "float_ops": ("LayerNormalization",)},
    {"int16_activations": True}])
def test_ort_scheme_options(acc_float_onnx: tuple[Path, np.ndarray], tmp_path: Path,
                            options: dict) -> None:
    import onnx

    from crossl_edge.export.onnx_export import encoder_onnx_int8
    from crossl_edge.metrics import cosine_rows
    from crossl_edge.runtime.backends import OnnxRunner, run_each

    f_path, x = acc_float_onnx
    q = encoder_onnx_int8(f_path.read_bytes(), calibration=x, **options)
    path = tmp_path / "q.onnx"
    path.write_bytes(q)
    ref = run_each(OnnxRunner(f_path), x)
    assert cosine_rows(run_each(OnnxRunner(path), x), ref).mean() > 0.95
    ops = [n.op_type for n in onnx.load_from_string(q).graph.node]
    assert "QuantizeLinear" in ops
    graph = onnx.load_from_string(q).graph
    ln_out = {n.output[0] for n in graph.node if n.op_type == "LayerNormalization"}
    requantized = any(n.op_type == "QuantizeLinear" and n.input[0] in ln_out for n in graph.node)
    assert ln_out and requantized == (not options.get("float_ops"))


def test_prelu_rewrite_and_fallback(tiny_run: Path) -> None:
    import torch

    from crossl_edge import tflite_graph
    from crossl_edge.export import tflite_export
    from crossl_edge.export.keras_twin import keras_encoder, prelu_rewritable
    from crossl_edge.trained import load_model

    _, model = load_model(tiny_run)
    enc = copy.deepcopy(model.encoders["acc"]).eval()
    x = np.random.default_rng(3).standard_normal((4, 3, 100)).astype(np.float32)
    for slope_one in (False, True):
        if slope_one:   # a slope >= 1 cannot become relu(c*y) + a*y: the PRELU op stays
            with torch.no_grad():
                enc.blocks[1].act.weight[0] = 1.5
        slopes = [b.act.weight.detach().numpy() for b in enc.blocks]
        assert [prelu_rewritable(a) for a in slopes] == [True, not slope_one, True]
        twin = keras_encoder(enc, window=100)
        with torch.no_grad():
            ref = enc(torch.from_numpy(x)).numpy()
        assert np.abs(twin(x.transpose(0, 2, 1)).numpy() - ref).max() < 1e-4
        ops = tflite_graph.builtin_ops(tflite_export.encoder_tflite(twin, window=100,
                                                                     channels=3))
        assert ("PRELU" in ops) == slope_one


def test_l2norm_layernorm_is_exact_and_int8_on_tflm(tiny_run: Path, tmp_path: Path) -> None:
    """The L2_NORMALIZATION LayerNorm: same float function, no RSQRT/variance tensor in int8,
    and TFLite Micro computes the same int8 latents as LiteRT's builtin kernels."""
    import torch

    from crossl_edge import tflite_graph
    from crossl_edge.export import tflite_export
    from crossl_edge.export.keras_twin import keras_encoder
    from crossl_edge.export.search import tflite_int8_latents
    from crossl_edge.rundir import load_run_dataset
    from crossl_edge.runtime import tflm
    from crossl_edge.trained import load_model

    info, model = load_model(tiny_run)
    x = info.normalizer.transform(load_run_dataset(info).train).data["gyro"][:16]
    with torch.no_grad():
        ref = model.encoders["gyro"](torch.from_numpy(x)).numpy()
    twin = keras_encoder(model.encoders["gyro"], window=x.shape[2], layernorm="l2norm")
    assert np.abs(twin(x.transpose(0, 2, 1)).numpy() - ref).max() < 1e-4
    q = tflite_export.encoder_tflite_int8(twin, window=x.shape[2], channels=3, calibration=x)
    ops = tflite_graph.builtin_ops(q)
    assert "L2_NORMALIZATION" in ops and "RSQRT" not in ops
    assert tflite_export.float_tensor_ops(q) == []
    path = tmp_path / "gyro.l2.int8.tflite"
    path.write_bytes(q)
    lat, _, qin, _ = tflite_int8_latents(path, x)
    from crossl_edge.metrics import cosine_rows

    assert cosine_rows(lat, ref).mean() > 0.99
    if not tflm.tflm_available():
        pytest.skip("tflite-micro is not installed")
    _, builtin, _, _ = tflite_int8_latents(path, x, xnnpack=False)
    micro = tflm.run_tflm(path, qin.quantize(x.transpose(0, 2, 1))[:, None])[:, 0]
    assert np.abs(micro.astype(int) - builtin.astype(int)).max() <= 1


def test_op_profile_prefixes_are_real_subgraphs(tiny_bundle: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from crossl_edge.bench.op_profile import by_type, prefix_model, profile_ops
    from crossl_edge.runtime.backends import TFLiteRunner
    from crossl_edge.tflite_graph import op_count

    path = tiny_bundle / "encoders" / "acc.int8.tflite"
    data = path.read_bytes()
    r = TFLiteRunner(path)
    x = np.random.default_rng(0).integers(-50, 50, r.inputs[0].shape, dtype=np.int8)
    full = Interpreter(model_content=data, experimental_preserve_all_tensors=True)
    full.allocate_tensors()
    full.set_tensor(full.get_input_details()[0]["index"], x)
    full.invoke()
    import tflite

    g = tflite.Model.GetRootAsModel(data, 0).Subgraphs(0)
    for k in (1, 3, op_count(data)):
        cut = Interpreter(model_content=prefix_model(data, k))
        cut.allocate_tensors()
        cut.set_tensor(cut.get_input_details()[0]["index"], x)
        cut.invoke()
        got = cut.get_tensor(cut.get_output_details()[0]["index"])
        np.testing.assert_array_equal(got, full.get_tensor(g.Operators(k - 1).Outputs(0)))
    rows = profile_ops(path, x, runs=20)
    assert [c.index for c in rows] == list(range(op_count(data)))
    assert rows[-1].cumulative_us > 0 and {c.op for c in rows} >= {"CONV_2D"}
    types = by_type(rows)
    assert sum(t["count"] for t in types) == len(rows)
    assert sum(t["total_us"] for t in types) == pytest.approx(rows[-1].cumulative_us)
    with pytest.raises(ValueError, match="n_ops"):
        prefix_model(data, 0)


def test_preferred_needs_a_margin_to_leave_the_list_order() -> None:
    from crossl_edge.export.schemes import TFLITE_SCHEMES, Trial, preferred

    def trial(i: int, flips: int, sqnr: float) -> Trial:
        return Trial(TFLITE_SCHEMES[i], scores={"flips": flips, "sqnr_db": sqnr})

    a, b, c = trial(0, 0, 30.0), trial(1, 0, 30.8), trial(2, 1, 40.0)
    assert preferred([a, b, c])[0] is a          # 0.8 dB better is within the noise: keep order
    b.scores["sqnr_db"] = 31.5
    assert preferred([a, b, c])[0] is b          # 1.5 dB better displaces the earlier one
    assert preferred([c])[0] is c and preferred([]) == []
    assert preferred([a, b, c])[1:] == [a, c]    # then fewest flips, highest SQNR


def test_calibration_set_and_cross_folds() -> None:
    from crossl_edge.export.search import cross_folds
    from crossl_edge.export.tflite_export import calibration_set

    x = np.random.default_rng(0).standard_normal((10, 3, 20)).astype(np.float32)
    folds = cross_folds(len(x))
    assert len(folds) == 2 and cross_folds(7) == []         # too few windows to split: in-sample
    for fit, held in folds:                                   # every window held out exactly once
        assert not set(fit) & set(held)
    assert sorted(np.concatenate([h for _, h in folds])) == list(range(10))
    assert np.array_equal(calibration_set(x), x)
    wide = calibration_set(x, headroom=1.25)
    assert wide.shape == (20, 3, 20) and np.allclose(wide[10:], x * 1.25)
    clipped = calibration_set(x, percentile=99.0, headroom=1.25)
    assert np.abs(clipped[:10]).max() < np.abs(x).max()
    assert np.abs(clipped).max() == pytest.approx(1.25 * np.abs(clipped[:10]).max())


def test_headroom_scheme_widens_the_int8_ranges(tiny_edge_run: Path, tmp_path: Path) -> None:
    """A headroom candidate's latent scale is ~25% wider: a window 20% larger than any seen
    still fits in the int8 latent range."""
    from crossl_edge.export import tflite_export
    from crossl_edge.export.keras_twin import keras_encoder
    from crossl_edge.rundir import load_run_dataset
    from crossl_edge.runtime.backends import TFLiteRunner
    from crossl_edge.trained import load_model

    info, model = load_model(tiny_edge_run)
    x = info.normalizer.transform(load_run_dataset(info).train).data["acc"][:16]
    twin = keras_encoder(model.encoders["acc"], window=x.shape[2])
    scales = []
    for room in (1.0, 1.25):
        q = tflite_export.encoder_tflite_int8(
            twin, window=x.shape[2], channels=3,
            calibration=tflite_export.calibration_set(x, headroom=room))
        path = tmp_path / f"acc-{room}.int8.tflite"
        path.write_bytes(q)
        scales.append(TFLiteRunner(path).outputs[0].scale)
    assert 1.1 < scales[1] / scales[0] < 1.4

