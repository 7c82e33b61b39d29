"""`crossl-edge plan`: exact Shapley values, harmful modalities flagged, the Pareto front and
the plot."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import pytest

from crossl_edge.attribution import harm_warnings, harmful_removals, pareto_front, shapley


def _all_subsets(units: list[str]) -> list[frozenset[str]]:
    return [frozenset(c) for k in range(len(units) + 1) for c in combinations(units, k)]


def test_shapley_is_exact_on_known_games() -> None:
    units = ["a", "b", "c"]
    additive = {s: sum({"a": 0.1, "b": 0.2, "c": 0.3}[u] for u in s) for s in _all_subsets(units)}
    assert shapley(units, additive) == pytest.approx({"a": 0.1, "b": 0.2, "c": 0.3})
    # "glove game": worth 1 only when a and b are both there; c is a null player
    glove = {s: float({"a", "b"} <= s) for s in _all_subsets(units)}
    assert shapley(units, glove) == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.0})
    with pytest.raises(ValueError, match="lacks"):
        shapley(units, {frozenset(units): 1.0})


def test_harmful_removal_and_pareto_front() -> None:
    v = {frozenset({"a", "b"}): 0.80, frozenset({"a"}): 0.85, frozenset({"b"}): 0.40}
    harms = harmful_removals(["a", "b"], v)
    assert [(h.unit, round(h.gain, 3)) for h in harms] == [("b", 0.05)]
    lines = harm_warnings([{"present": sorted(s), "macro_f1": f} for s, f in v.items()],
                          ["a", "b"], lambda r: r["macro_f1"])
    assert lines[0].startswith("warning: removing modality b raises macro-F1")
    assert "property of the trained model and its data" in lines[-1]
    # (score, costs): the second is beaten by the first (same score, cheaper)
    assert pareto_front([(0.9, [1, 1]), (0.9, [2, 1]), (0.95, [3, 3]), (0.5, [0, 9])]) == [0, 2, 3]


def _crafted_parity(bundle: Path, out: Path) -> Path:
    """A parity.json for the tiny bundle (acc, gyro) in which gyro is harmful: acc alone beats
    acc+gyro, in float and int8 alike."""
    support = [10, 10, 10, 10]

    def s(f1: float) -> dict:
        return {"macro_f1": f1, "accuracy": f1, "per_class": {"support": support}}

    rows = [{"present": ["acc", "gyro"], "float": s(0.80), "tflite_int8": s(0.78)},
            {"present": ["acc"], "float": s(0.90), "tflite_int8": s(0.88)},
            {"present": ["gyro"], "float": s(0.45), "tflite_int8": s(0.40)}]
    out.write_text(json.dumps({"bundle": str(bundle), "subsets": rows}))
    return out


def test_plan_flags_a_harmful_modality(tiny_bundle: Path, tmp_path: Path, cli_run) -> None:
    from crossl_edge.plan import majority_f1, run_plan

    parity = _crafted_parity(tiny_bundle, tmp_path / "parity.json")
    res = run_plan(tiny_bundle, parity=parity)
    assert [h.unit for h in res.harms["int8"]] == ["gyro"]
    assert res.harms["float"][0].gain == pytest.approx(0.10)
    base = majority_f1([10, 10, 10, 10])
    assert res.baseline == pytest.approx(base)
    for p in ("float", "int8"):
        total = sum(res.shapley["modality"][p].values())
        assert total == pytest.approx(res.all_present[p] - base)
    code, out, err = cli_run("plan", tiny_bundle, "--parity", parity)
    assert code == 0, err
    assert "warning: removing modality gyro raises macro-F1" in out
    assert "property of the trained model and its data" in out
    assert "retrain without it" in out and "modality dropout" in out
    front = [s for s in res.subsets if s.front]
    assert ("acc",) in [s.devices for s in front]      # best F1 at less cost than acc+gyro
    assert ("acc", "gyro") not in [s.devices for s in front]


def test_plan_computes_the_table_and_shapley_sums(tiny_bundle: Path, tmp_path: Path,
                                                  cli_run) -> None:
    code, out, err = cli_run("plan", tiny_bundle, "--json", "--report", tmp_path / "rep",
                             "--plot", tmp_path / "plan.png")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["table_source"].startswith("computed on")
    for p in ("float", "int8"):
        assert obj["shapley_sum_check"][p] == pytest.approx(
            obj["all_present"][p] - obj["baseline_macro_f1"], abs=1e-9)
    assert len(obj["subsets"]) == 3 and obj["pareto_front"]
    assert all(c["flash_bytes"] > 0 and c["instructions"] > 0 for c in obj["device_costs"])
    png = (tmp_path / "plan.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    page = (tmp_path / "rep" / "plan.html").read_text()
    assert "data:image/png;base64," in page and "Shapley" in page
    assert json.loads((tmp_path / "rep" / "plan.json").read_text())["modalities"] == \
        ["acc", "gyro"]


def test_plan_reads_firmware_resources(tiny_bundle: Path, tmp_path: Path) -> None:
    from crossl_edge.plan import run_plan

    fw = tmp_path / "fw"
    fw.mkdir()
    rec = {"flash": {"model": 9000, "total": 50000, "source": "estimate"},
           "ram": {"arena": 16000, "node_state": 900, "stack_estimate": 2048, "total": 18948},
           "arena": {"size": 16000},
           "latency_estimate": {"cortex-m4@120MHz": {"cmsis_nn_cycles": 1_500_000}}}
    energy = {"profiles": {"esp32c3+wifi": {"cmsis_nn": {"encode_and_send_uj": 900.0}},
                           "nrf52840+nrf52840-ble": {"reference": {"encode_and_send_uj": 800.0},
                                                     "cmsis_nn": {"encode_and_send_uj": 250.0}}}}
    (fw / "resources.json").write_text(json.dumps({"modalities": {"acc": {**rec,
                                                                          "energy": energy},
                                                                  "gyro": rec}}))
    res = run_plan(tiny_bundle, parity=_crafted_parity(tiny_bundle, tmp_path / "p.json"),
               firmware=fw)
    acc = next(c for c in res.costs if c.device == "acc")
    assert (acc.flash_bytes, acc.ram_bytes, acc.instructions) == (50000, 18948, 1_500_000)
    assert acc.energy_mj == pytest.approx(0.25) and "nrf52840" in acc.sources["energy_mj"]
    gyro = next(c for c in res.costs if c.device == "gyro")    # no energy record: from instructions
    assert "estimate" in gyro.sources["energy_mj"] and gyro.energy_mj > 0
    # one image per device (the device firmware's figures) take precedence
    dev = {"flash": {"total": 70000, "source": "link map"}, "ram": {"total": 21000},
           "instructions": {"per_window": 2_000_000}}
    (fw / "resources.json").write_text(json.dumps({"devices": {"acc": dev, "gyro": dev}}))
    res = run_plan(tiny_bundle, parity=tmp_path / "p.json", firmware=fw / "resources.json")
    c = res.costs[0]
    assert (c.flash_bytes, c.ram_bytes, c.instructions) == (70000, 21000, 2_000_000)
    assert c.sources["flash_bytes"] == "link map"


def test_plan_usage_errors(tiny_bundle: Path, tmp_path: Path, cli_error) -> None:
    code, line = cli_error("plan", tiny_bundle, "--parity", tmp_path / "nope.json")
    assert code == 2 and "does not exist" in line
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    code, line = cli_error("plan", tiny_bundle, "--parity", bad)
    assert code == 2 and "not a parity.json" in line
    code, line = cli_error("plan", tiny_bundle, "--firmware", tmp_path)
    assert code == 2 and "resources.json does not exist" in line
