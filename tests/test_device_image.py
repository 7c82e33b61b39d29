"""Device images (`crossl-edge firmware` on a bundle whose device map puts several encoders on one
microcontroller): the generated device sources compile, and with --build the image runs on the
host and on QEMU's Cortex-M4F with one shared arena, its frames byte-identical with the
single-encoder images (and so LiteRT), its RAM below theirs summed.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from crossl_edge.devices import DeviceEntry, check_devices
from crossl_edge.errors import UsageError
from crossl_edge.firmware_bridge import tflm_build
from crossl_edge.firmware_bridge.device_image import c_identifier, device_specs
from crossl_edge.firmware_bridge.device_run import schedule
from crossl_edge.firmware_bridge.firmware import generate_firmware
from crossl_edge.firmware_bridge.measure import BuildOptions
from crossl_edge.manifest import MANIFEST, load_manifest, seal, to_json


def with_device(src: Path, dst: Path, devices: list[DeviceEntry]) -> Path:
    """A copy of bundle ``src`` whose manifest carries ``devices`` (resealed)."""
    shutil.copytree(src, dst)
    m = load_manifest(dst)
    m = seal(dataclasses.replace(m, devices=check_devices(devices, m.names)))
    (dst / MANIFEST).write_text(json.dumps(to_json(m), indent=2, sort_keys=True))
    return dst


@pytest.fixture(scope="module")
def imu_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> Path:
    return with_device(tiny_bundle, tmp_path_factory.mktemp("dev") / "b",
                       [DeviceEntry("wrist-imu", 4, ("acc", "gyro"))])


def test_device_sources_and_estimate(imu_bundle: Path, tmp_path: Path) -> None:
    rep = generate_firmware(imu_bundle, tmp_path / "fw")
    d = tmp_path / "fw" / "devices" / "wrist_imu"
    head = (d / "crossl_device_wrist_imu.h").read_text()
    assert '#include "../../acc/crossl_acc_node.h"' in head and "crossl_gyro_node_t gyro;" in head
    arenas = {n: rep.modalities[n]["arena"]["size"] for n in ("acc", "gyro")}
    assert f"#define CROSSL_DEVICE_WRIST_IMU_ARENA_SIZE {max(arenas.values())}u" in head
    mk = (tmp_path / "fw" / "crossl.mk").read_text()
    assert "crossl-device-wrist_imu:" in mk and mk.count("-DCROSSL_SHARED_ARENA") == 2
    dev = json.loads((tmp_path / "fw" / "resources.json").read_text())["devices"]["wrist-imu"]
    assert dev == rep.devices["wrist-imu"] and dev["modalities"] == ["acc", "gyro"]
    assert dev["ram"]["arena"] == max(arenas.values())
    assert dev["ram"]["total"] < dev["single_images"]["ram_total"]
    assert "wrist-imu" in rep.table() and "shared arena B" in rep.table()


def test_names_and_schedule() -> None:
    assert [c_identifier(n) for n in ("wrist-imu", "3d.cam", "a--b")] == ["wrist_imu", "d3d_cam",
                                                                          "a_b"]
    import numpy as np

    t, mask = schedule([np.zeros((1, 1, 4)), np.zeros((1, 1, 2))], [100.0, 50.0])
    assert t == [1_000_000, 1_010_000, 1_020_000, 1_030_000] and mask == [3, 1, 3, 1]
    with pytest.raises(UsageError, match="same C name"):
        device_specs([DeviceEntry("a-b", 0, ("x", "y")), DeviceEntry("a_b", 1, ("z", "w"))],
                     {})


def _source() -> None:
    missing = tflm_build.toolchain_available("cortex-m4") or tflm_build.toolchain_available("host")
    if missing:
        pytest.skip(f"no toolchain to build TFLite Micro: {missing} missing")
    try:
        tflm_build.locate_source()
    except UsageError as e:
        pytest.skip(f"no TFLite Micro source: {e}")


def test_device_image_runs_byte_exact_with_less_ram(imu_bundle: Path, tmp_path: Path) -> None:
    _source()
    rep = generate_firmware(imu_bundle, tmp_path / "fw",
                            build=BuildOptions(kernels=("cmsis_nn",), max_windows=4))
    dev = rep.devices["wrist-imu"]
    runs = dev["measured"]
    assert set(runs) == {"host/reference", "cortex-m4/cmsis_nn"}
    for run in runs.values():
        assert run["frames_equal_single_images"] and run["windows"] == {"acc": 4, "gyro": 4}
        assert run["max_lsb_vs_litert"] == {"acc": 0, "gyro": 0}
    m4 = runs["cortex-m4/cmsis_nn"]
    singles = [rep.modalities[n]["measured"]["cortex-m4/cmsis_nn"] for n in ("acc", "gyro")]
    assert m4["ram"]["arena_size"] == max(s["ram"]["arena_size"] for s in singles)
    assert m4["ram"]["total"] < sum(s["ram"]["total"] for s in singles)
    assert dev["single_images"]["ram_saved"] > 0 and dev["ram"]["total"] == m4["ram"]["total"]
    # one TFLM in the image: less flash than the two images, more than the larger one
    flash = [s["flash"]["total"] for s in singles]
    assert max(flash) < m4["flash"]["total"] < sum(flash)
    # a window of the device runs both encoders (and sets each interpreter up again)
    per = m4["instructions"]["per_window"]
    assert per > sum(s["instructions"]["per_window"] for s in singles)
    elf = tmp_path / "fw" / "build" / "cortex-m4-cmsis_nn" / "devices" / "wrist_imu"
    assert (elf / "device.elf").is_file()
