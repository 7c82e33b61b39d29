"""A node is a device: the device map (parse, validate, manifest), export --devices, the phone
counting a device present when any of its frames arrive, and simulate / evaluate by device."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crossl_edge.devices import (
    DeviceEntry,
    check_devices,
    default_devices,
    device_subsets,
    modalities_of,
    parse_devices,
)
from crossl_edge.errors import UsageError

NAMES = ["body_acc", "gyro", "total_acc", "ppg"]


def test_parse_text_and_json_forms(tmp_path: Path) -> None:
    devs = parse_devices("waist=total_acc,body_acc,gyro; wrist=ppg", NAMES)
    assert devs == [DeviceEntry("waist", 0, ("body_acc", "gyro", "total_acc")),
                    DeviceEntry("wrist", 1, ("ppg",))]
    f = tmp_path / "devices.json"
    for obj in ({"waist": ["body_acc", "gyro", "total_acc"], "wrist": ["ppg"]},
                {"devices": [d.to_json() for d in devs]}, [d.to_json() for d in devs]):
        f.write_text(json.dumps(obj))
        assert parse_devices(str(f), NAMES) == devs
    assert device_subsets(devs) == [("waist", "wrist"), ("waist",), ("wrist",)]
    assert modalities_of(devs, ("wrist", "waist"), NAMES) == tuple(NAMES)
    assert default_devices(["a", "b"]) == [DeviceEntry("a", 0, ("a",)), DeviceEntry("b", 1,
                                                                                    ("b",))]


@pytest.mark.parametrize("text,needle", [
    ("waist=body_acc,gyro,total_acc,ppg,acc", "does not have"),
    ("waist=body_acc,gyro;wrist=gyro,total_acc,ppg", "on both 'waist' and 'wrist'"),
    ("waist=body_acc,gyro", "are on no device"),
    ("waist=body_acc,gyro;waist=total_acc,ppg", "named twice"),
    ("waist:body_acc", "is not DEVICE=MODALITY"),
    ("wa ist=body_acc,gyro,total_acc,ppg", "must match"),
    ("missing.json", "does not exist"),
])
def test_bad_maps_are_one_sentence(text: str, needle: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_devices(text, NAMES)
    msg = str(e.value)
    assert needle in msg and "\n" not in msg and msg.endswith(".") and msg.startswith("--devices")


def test_manifest_device_map_round_trip_and_old_manifests(tiny_bundle: Path) -> None:
    import dataclasses

    from crossl_edge.manifest import MANIFEST, from_json, load_manifest, to_json

    m = load_manifest(tiny_bundle)
    assert m.device_map == default_devices(m.names)           # exported without --devices
    obj = json.loads((tiny_bundle / MANIFEST).read_text())
    old = {k: v for k, v in obj.items() if k != "devices"}    # a manifest from before the key
    assert from_json(old, tiny_bundle).device_map == default_devices(m.names)
    one = dataclasses.replace(m, devices=check_devices([DeviceEntry("watch", 7, ("gyro", "acc"))],
                                                       m.names))
    back = from_json(json.loads(json.dumps(to_json(one))), tiny_bundle)
    assert back.device_map == [DeviceEntry("watch", 7, ("acc", "gyro"))]
    for bad in ([{"name": "watch", "id": 0, "modalities": ["acc"]}],
                [{"name": "w", "id": 0, "modalities": ["acc", "gyro", "ppg"]}]):
        with pytest.raises(UsageError, match="malformed: devices: .*re-export"):
            from_json({**obj, "devices": bad}, tiny_bundle)


def test_export_refuses_a_bad_map_before_exporting(tiny_edge_run: Path, tmp_path: Path,
                                                   cli_error) -> None:
    code, line = cli_error("export", tiny_edge_run, "--out", tmp_path / "b",
                           "--devices", "watch=acc,gyro,ppg")
    assert code == 2 and "'ppg', which the bundle does not have" in line
    code, line = cli_error("export", tiny_edge_run, "--out", tmp_path / "b",
                           "--devices", "watch=acc;ankle=acc,gyro")
    assert code == 2 and "exactly one device" in line
    assert not (tmp_path / "b").exists()


# -------------------------------------------------- 4 modalities on 2 devices, end to end


@pytest.fixture(scope="module")
def four_mod_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BasicMotions with each sensor split by axes: acc_xy, acc_z, gyro_xy, gyro_z (a watch
    and an ankle IMU, say), in the generic npz format."""
    from crossl_edge.data.registry import load_dataset

    ds = load_dataset("basicmotions")
    out: dict[str, np.ndarray] = {}
    n_tr, n_te = len(ds.train), len(ds.test)
    for s in ("acc", "gyro"):
        x = np.concatenate([ds.train.data[s], ds.test.data[s]])
        for part, sl in (("xy", slice(0, 2)), ("z", slice(2, 3))):
            out[f"x_{s}_{part}"] = x[:, sl].astype(np.float32)
            out[f"sample_rate_{s}_{part}"] = np.float64(10.0)
    out["y"] = np.concatenate([ds.train.labels, ds.test.labels])
    out["split"] = np.asarray(["train"] * n_tr + ["test"] * n_te)
    out["classes"] = np.asarray(ds.train.classes)
    out["modalities"] = np.asarray(["acc_xy", "acc_z", "gyro_xy", "gyro_z"])
    path = tmp_path_factory.mktemp("data") / "four.npz"
    np.savez(path, **out)
    return path


@pytest.fixture(scope="module")
def device_bundle(tmp_path_factory: pytest.TempPathFactory, four_mod_npz: Path) -> Path:
    """train (tiny) -> export --devices wrist=acc_xy,acc_z;ankle=gyro_xy,gyro_z, via the CLI."""
    from crossl_edge.cli import main

    root = tmp_path_factory.mktemp("dev")
    for args in (["train", "--dataset", "npz", "--data", four_mod_npz, "--out", root / "run",
                  "--encoder", "edge", "--mode", "fine", "--pretrain-epochs", "1",
                  "--epochs", "2"],
                 ["export", root / "run", "--out", root / "bundle", "--calibration-windows",
                  "32", "--devices", "wrist=acc_xy,acc_z;ankle=gyro_xy,gyro_z", "--json"]):
        with pytest.raises(SystemExit) as e:
            main([str(a) for a in args])
        assert e.value.code in (0, None)
    return root / "bundle"


def test_export_writes_the_device_map(device_bundle: Path) -> None:
    from crossl_edge.manifest import MANIFEST, load_manifest

    obj = json.loads((device_bundle / MANIFEST).read_text())
    assert obj["devices"] == [{"name": "wrist", "id": 0, "modalities": ["acc_xy", "acc_z"]},
                              {"name": "ankle", "id": 1, "modalities": ["gyro_xy", "gyro_z"]}]
    assert [d.name for d in load_manifest(device_bundle).device_map] == ["wrist", "ankle"]


def test_phone_counts_a_device_present_when_any_frame_arrives(device_bundle: Path) -> None:
    from crossl_edge.manifest import load_manifest
    from crossl_edge.runtime.aggregator import PhoneAggregator
    from crossl_edge.wire.frame import LatentDType, LatentFrame, encode_frame, fingerprint32

    m = load_manifest(device_bundle)
    agg = PhoneAggregator(m, deadline_s=0.1, clock=lambda: 0.0)
    fp = fingerprint32(m.fingerprint)

    def frame(name: str, seq: int) -> bytes:
        e = m.modality(name)
        return encode_frame(LatentFrame(e.id, seq, 0, fp, LatentDType.INT8,
                                        np.zeros(m.latent_dim, np.int8)))

    agg.submit(frame("acc_z", 0), now=0.0)            # one of the wrist's two frames
    agg.submit(frame("gyro_xy", 1), now=0.0)
    agg.submit(frame("gyro_z", 1), now=0.0)
    preds = sorted(agg.flush(now=1.0), key=lambda p: p.seq)
    assert [p.devices for p in preds] == [["wrist"], ["ankle"]]
    assert preds[0].to_json()["devices"] == ["wrist"]
    assert agg.counters.to_json()["device_windows"] == {"wrist": 1, "ankle": 1}


def test_simulate_and_evaluate_by_device(device_bundle: Path, cli_run) -> None:
    from crossl_edge.sim.simulate import simulate

    res = simulate(device_bundle, loss_rates=(0.0,), device_loss_rates=(0.5,),
                   outage={"ankle": (0.0, 0.5)}, max_windows=24)
    names = [r.name for r in res.device_table]
    assert names == ["device loss=0.5", "no wrist (acc_xy+acc_z)", "no ankle (gyro_xy+gyro_z)"]
    lossy, no_wrist, _ = res.device_table
    assert no_wrist.device_coverage["wrist"] == 0.0 and no_wrist.device_coverage["ankle"] == 1.0
    assert res.loss_table[0].device_coverage["ankle"] == pytest.approx(0.5)  # the outage
    assert res.loss_table[0].outage == {"gyro_xy": (0.0, 0.5), "gyro_z": (0.0, 0.5)}
    # device loss: a device's frames go together, so a window holds both or neither
    assert lossy.frames_dropped % 2 == 0 and 0 < lossy.frames_dropped < lossy.frames_sent
    code, out, err = cli_run("simulate", device_bundle, "--loss", "0", "--device-loss", "0.3",
                             "--outage", "wrist:0.2-0.4")
    assert code == 0, err
    assert "by device (all of a device's modalities vanish together)" in out
    assert "no ankle (gyro_xy+gyro_z)" in out
    code, _, err = cli_run("simulate", device_bundle, "--outage", "elbow:0.1-0.2")
    assert code == 2 and "neither a modality" in err
    run = json.loads((device_bundle / "manifest.json").read_text())["source"]["run"]
    code, out, err = cli_run("evaluate", run, "--devices", device_bundle, "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert [r["devices"] for r in obj["device_subsets"]] == [["wrist", "ankle"], ["wrist"],
                                                             ["ankle"]]
    assert obj["device_subsets"][1]["present"] == ["acc_xy", "acc_z"]
    code, out, err = cli_run("plan", device_bundle, "--max-windows", "24")
    assert code == 0, err
    assert "ankle" in out and "device subsets" in out and "device" in out.split("Shapley")[1]
