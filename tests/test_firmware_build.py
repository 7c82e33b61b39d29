"""`crossl-edge firmware --build` on the real TensorFlow Lite Micro: TFLM compiled for the host and
for a Cortex-M4F with CMSIS-NN (cached per machine), every sample window through the node loop on
the host and on QEMU mps2-an386, frames byte-identical with LiteRT, measured figures, the
generated README's build lines.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from crossl_edge.errors import CheckFailed, UsageError
from crossl_edge.firmware_bridge import node_run, tflm_build
from crossl_edge.firmware_bridge.firmware import generate_firmware
from crossl_edge.firmware_bridge.measure import BuildOptions, check_kernels, compare_frames
from crossl_edge.firmware_bridge.resources import inspect_model
from crossl_edge.manifest import load_manifest
from crossl_edge.wire.frame import LatentDType, LatentFrame, encode_frame


def _source() -> Path:
    missing = tflm_build.toolchain_available("cortex-m4") or tflm_build.toolchain_available("host")
    if missing:
        pytest.skip(f"no toolchain to build TFLite Micro: {missing} missing "
                    "(bash scripts/system-deps.sh installs them)")
    try:
        return tflm_build.locate_source()
    except UsageError as e:
        pytest.skip(f"no TFLite Micro source: {e}")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> tuple[Path, object]:
    """The tiny edge bundle built for the host (reference) and the M4 (CMSIS-NN), run, checked."""
    _source()
    out = tmp_path_factory.mktemp("fwbuild") / "fw"
    rep = generate_firmware(tiny_bundle, out, build=BuildOptions(kernels=("cmsis_nn",)))
    return out, rep


def test_frames_equal_litert_on_host_and_m4_with_measured_figures(built, tiny_bundle) -> None:
    out, rep = built
    m = load_manifest(tiny_bundle)
    n = len(np.load(tiny_bundle / "samples.npz")["y"])
    assert set(rep.builds) == {"host/reference", "cortex-m4/cmsis_nn"}
    doc = json.loads((out / "resources.json").read_text())
    assert doc["builds"] == rep.builds and "instructions" in doc["assumptions"]
    for e in m.modalities:
        r = doc["modalities"][e.name]
        assert "latency_estimate" not in r and "code" not in r["flash"]   # estimates replaced
        host, m4 = r["measured"]["host/reference"], r["measured"]["cortex-m4/cmsis_nn"]
        assert host["windows"] == m4["windows"] == n    # edge: byte-identical, every window
        for run in (host, m4):
            assert run["frames_equal_litert"] and run["windows_identical"] == n
            assert run["max_lsb_vs_litert"] == 0
        fl, ram, ins = m4["flash"], m4["ram"], m4["instructions"]
        model_len = (tiny_bundle / e.artifacts["tflite_int8"]).stat().st_size
        assert model_len <= fl["model"] < model_len + 64
        assert fl["tflm_core"] > 10_000 and fl["kernels"] > 2_000 and fl["libc"] > 0
        assert 0 < fl["glue_node_codec"] < 4_000
        assert fl["total"] == sum(fl[k] for k in node_run.PARTS if k != "harness")
        assert 0 < ram["arena_used"] <= ram["arena_size"] < ram["static"] < ram["total"]
        assert 200 < ram["stack"] < 16_384
        assert 100_000 < ins["per_invoke"] < ins["per_window"] < ins["first_window"]
        assert r["flash"]["total"] == fl["total"] and r["ram"]["total"] == ram["total"]
        # Per op: every operator of the graph, in order, timed on the M4; they add up to the
        # profiled invoke (the rest is the interpreter's loop), which matches a plain invoke.
        po = m4["per_op"]
        graph = inspect_model((tiny_bundle / e.artifacts["tflite_int8"]).read_bytes())
        assert [(o["op"], o["macs"]) for o in po["ops"]] == graph.per_op_macs
        assert all(o["instructions"] > 0 for o in po["ops"])
        assert 0.9 * po["profiled_invoke"] < po["sum_of_ops"] < po["profiled_invoke"]
        assert abs(po["profiled_invoke"] - ins["per_invoke"]) < 0.02 * ins["per_invoke"]
        assert po["by_type"]["CONV_2D"]["instructions"] > po["profiled_invoke"] / 2
        # Energy rests on the measured instructions per window, times the MCU's CPI.
        en = r["energy"]["profiles"]["nrf52840+nrf52840-ble"]
        assert set(en) == {"cmsis_nn"} and en["cmsis_nn"]["label"] == "estimate"
        assert en["cmsis_nn"]["rests_on"]["cycles"].startswith("measured")
        assert en["cmsis_nn"]["encode"]["cycles"] == round(1.2 * ins["per_window"])
        # The image's own size agrees with the link-map split (harness excluded).
        elf = out / "build" / "cortex-m4-cmsis_nn" / e.name / "node.elf"
        sizes = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True,
                               text=True, check=True).stdout
        sec = {ln.split()[0]: int(ln.split()[1]) for ln in sizes.splitlines()[2:] if ln.strip()
               and ln.split()[0].startswith(".")}
        flash_total = sec[".text"] + sec.get(".ARM.exidx", 0) + sec.get(".data", 0)
        assert flash_total == fl["total"] + m4["flash_harness_excluded"]
        syms = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                              check=True).stdout
        assert "__dso_handle" not in syms and "__aeabi_atexit" not in syms
    text = rep.table()
    assert "M instr/invoke" in text and "cmsis_nn" in text
    assert "instructions per op, modality 'acc'" in text and "energy per window (ESTIMATE" in text


def test_cli_second_build_uses_the_cache(built, tiny_bundle, tmp_path) -> None:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "crossl_edge.cli", "firmware", str(tiny_bundle),
                        "--out", str(tmp_path / "fw2"), "--build", "--kernels", "cmsis-nn",
                        "--json"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    doc = json.loads(p.stdout)
    assert set(doc["builds"]) == {"host/reference", "cortex-m4/cmsis_nn"}
    assert all(b["cached"] and b["seconds"] < 5 for b in doc["builds"].values()), doc["builds"]
    assert time.perf_counter() - t0 < 300
    assert doc["modalities"]["acc"]["measured"]["cortex-m4/cmsis_nn"]["frames_equal_litert"]


def test_readme_build_lines_build_and_run_on_qemu(built, tiny_bundle, tmp_path) -> None:
    """The generated README's make and link lines, run as written (TFLM_ROOT and the startup
    object filled in; the library folder pointed at the cache so nothing recompiles)."""
    out, rep = built
    text = (out / "README.md").read_text()
    make_line, link_line = re.search(r"```sh\n(.*?)\n```", text, re.S).group(1).splitlines()
    cache = Path(rep.builds["cortex-m4/cmsis_nn"]["cache"])
    root = tflm_build.source_tree(tflm_build.locate_source(),
                                  tflm_build.source_hash(tflm_build.locate_source()))
    work = tmp_path / "proj"
    shutil.copytree(out, work, ignore=shutil.ignore_patterns("build"))
    make = shlex.split(make_line.replace("/path/to/tflite-micro", str(root)))
    subprocess.run([*make, f"CROSSL_TFLM_BUILD={cache}"], cwd=work, check=True,
                   capture_output=True)
    e = load_manifest(tiny_bundle).modalities[0]
    name = e.name
    one = np.zeros((1, len(e.channels), e.window), np.float32)
    (work / "run_data.h").write_text(node_run.run_data(one, sample_rate_hz=e.sample_rate_hz))
    harness = node_run._compile_harness(work, name, work, "cortex-m4", "cmsis_nn")
    link = shlex.split(link_line.replace("-T your.ld", f"-T {node_run.TEMPLATES / 'mps2_an386.ld'}")
                       .replace("startup_and_main.o", str(harness))
                       .replace("build/cortex-m4-cmsis_nn/tflm/", f"{cache}/"))
    subprocess.run(link, cwd=work, check=True)
    res = node_run.run_image(work / "node.elf", "cortex-m4")
    assert len(res.frames) == 1 and res.arena_used > 0


def test_frame_mismatch_and_bad_options_are_reported(monkeypatch, tmp_path) -> None:
    def frame(seq: int, latent: list[int]) -> bytes:
        return encode_frame(LatentFrame(modality_id=1, seq=seq, timestamp_us=7, fingerprint=9,
                                        dtype=LatentDType.INT8,
                                        latent=np.array(latent, np.int8)))

    want = [frame(0, [1, 2]), frame(1, [3, 4])]
    assert compare_frames(want, want, "x") == {"windows_identical": 2, "max_lsb_vs_litert": 0}
    assert compare_frames([want[0], frame(1, [3, 5])], want, "x") == {
        "windows_identical": 1, "max_lsb_vs_litert": 1}   # TFLM_MAX_LSB, as export's parity
    with pytest.raises(CheckFailed, match="window 1 differs.*up to 2 LSB"):
        compare_frames([want[0], frame(1, [3, 6])], want, "modality 'acc' on cortex-m4")
    with pytest.raises(CheckFailed, match="window 1 differs"):
        compare_frames([want[0], frame(2, [3, 4])], want, "x")   # wrong seq
    with pytest.raises(CheckFailed, match="window 0 is corrupt"):
        compare_frames([want[0][:-1] + b"\0", want[1]], want, "x")
    with pytest.raises(CheckFailed, match="sent 1 frames for 2"):
        compare_frames(want[:1], want, "x")
    assert check_kernels(["cmsis-nn", "reference", "CMSIS_NN"]) == ("cmsis_nn", "reference")
    with pytest.raises(UsageError, match="unknown kernel set"):
        check_kernels(["neon"])
    monkeypatch.setenv(tflm_build.ENV_SOURCE, str(tmp_path / "nope"))
    with pytest.raises(UsageError, match="fetch-tflm.sh"):
        tflm_build.locate_source()
    monkeypatch.delenv(tflm_build.ENV_SOURCE)
    with pytest.raises(UsageError, match="not a TFLite Micro source tree"):
        tflm_build.source_tree(tmp_path, "0" * 64)


def test_cli_unknown_kernel_set_is_a_usage_error(tiny_bundle, tmp_path) -> None:
    p = subprocess.run([sys.executable, "-m", "crossl_edge.cli", "firmware", str(tiny_bundle),
                        "--out", str(tmp_path / "o"), "--build", "--kernels", "neon"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and p.stderr.startswith("error: unknown kernel set"), p.stderr
    assert not (tmp_path / "o").exists()
