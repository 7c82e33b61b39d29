"""`crossl-edge firmware`: golden C (and crossl.mk) for a hand-built int8 model, host (ASan/UBSan)
and Cortex-M4 builds, the node loop's bytes vs Python on the host and on QEMU, TFLM with the
measured arena. The real TFLite Micro build and run: tests/test_firmware_build.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_tflite import tiny_tflite

from crossl_edge.errors import CheckFailed, UsageError
from crossl_edge.firmware_bridge.codegen import check_identifier
from crossl_edge.firmware_bridge.firmware import CODEC, generate_firmware
from crossl_edge.firmware_bridge.resolver import OP_METHODS, model_ops, resolver_methods
from crossl_edge.manifest import (
    BUNDLE_FORMAT_VERSION,
    MANIFEST,
    AggregatorEntry,
    Manifest,
    ModalityEntry,
    QParams,
    file_sha256,
    load_manifest,
    seal,
    to_json,
)
from crossl_edge.wire.frame import LatentDType, LatentFrame, encode_frame, fingerprint32

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "firmware"
CDIR = Path(__file__).parent / "c"
HOST_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1",
              "-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all"]
ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-Os", "-std=c99", "-Wall", "-Wextra", "-Werror"]


def synth_bundle(root: Path, *, name: str = "imu") -> Path:
    """A one-modality bundle around tiny_tflite(); fixed fields, so its C is golden-testable."""
    rel = f"encoders/{name}.int8.tflite"
    (root / "encoders").mkdir(parents=True)
    (root / rel).write_bytes(tiny_tflite())
    sha = {"tflite_int8": file_sha256(root / rel)}
    f32 = lambda v: float(np.float32(v))  # noqa: E731 - the flatbuffer stores float32 scales
    entry = ModalityEntry(name=name, id=3, channels=["ax", "ay"], window=4, sample_rate_hz=50.0,
                          normalization={"mean": [0.5, -1.25], "std": [2.0, 0.75]},
                          layout="NWC", artifacts={"tflite_int8": rel}, sha256=sha,
                          input_quant=QParams(f32(0.05), 3), latent_quant=QParams(f32(0.1), -5))
    m = seal(Manifest(root, BUNDLE_FORMAT_VERSION, "0.0.0-test", ["a", "b"], 6, 0, [entry],
                      AggregatorEntry({}, {}, ["latents", "present"])))
    (root / MANIFEST).write_text(json.dumps(to_json(m), indent=2, sort_keys=True))
    return root


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_bundle(tmp_path_factory.mktemp("synth") / "bundle")


@pytest.fixture(scope="module")
def edge_fw(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> Path:
    out = tmp_path_factory.mktemp("fw") / "fw"
    generate_firmware(tiny_bundle, out)
    return out


def _needs_tflm() -> None:
    from crossl_edge.runtime.tflm import tflm_available

    if not tflm_available():
        pytest.skip("tflite-micro not installed: no arena measurement")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crossl_edge.cli", "firmware", *args],
                          capture_output=True, text=True, timeout=300)


def macros(header: Path) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"#define CROSSL_\w+?_(\w+) \(?(-?\d+)u?\)?",
                                             header.read_text())}


def _normalize(text: str) -> str:  # the arena depends on the TFLM version: not pinned
    text = re.sub(r"(_ARENA_(MEASURED|MARGIN|SIZE)) \d+u", r"\1 <N>u", text)
    return re.sub(r"/\* TFLite Micro tensor arena\..*?\*/", "/* TFLite Micro tensor arena. */",
                  text, flags=re.S)


def test_golden_sources_and_determinism(synth: Path, tmp_path: Path) -> None:
    _needs_tflm()
    rep = generate_firmware(synth, tmp_path / "a")
    generate_firmware(synth, tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                   if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*")
                           if p.is_file())
    for rel in files:  # byte-identical on a re-run
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert (tmp_path / "a" / "common" / "crossl_frame.h").read_bytes() == CODEC.read_bytes()
    pinned = [r for r in files if r.parts[0] == "imu" or r.name in ("README.md", "crossl.mk")]
    assert len(pinned) == 9
    for rel in pinned:
        got, gold = _normalize((tmp_path / "a" / rel).read_text()), GOLDEN / rel
        if os.environ.get("UPDATE_GOLDEN"):
            gold.parent.mkdir(parents=True, exist_ok=True)
            gold.write_text(got)
        assert got == gold.read_text(), f"{rel} differs from {gold} (UPDATE_GOLDEN=1 to accept)"
    r = rep.modalities["imu"]
    assert r["macs"] == 48 and r["params"] == 56 and r["ops"] == ["FULLY_CONNECTED", "RESHAPE"]
    assert r["arena"]["size"] >= r["arena"]["measured"] + r["arena"]["cmsis_nn_scratch"] + 1024
    doc = json.loads((tmp_path / "a" / "resources.json").read_text())
    assert doc["ok"] and doc["modalities"]["imu"] == r and "macs_per_cycle" in doc["assumptions"]


@pytest.mark.parametrize("name", ["imu-1", "1imu", "_imu", "im__u", "imu_", "ímu", ""])
def test_bad_modality_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="not a C identifier"):
        check_identifier(name)


def test_cli_bad_name_exit_2_budget_exit_1_corrupt_exit_1(synth: Path, tmp_path: Path) -> None:
    _needs_tflm()
    bad = cli(str(synth_bundle(tmp_path / "bad", name="imu-1")), "--out", str(tmp_path / "o1"))
    assert bad.returncode == 2 and "not a C identifier" in bad.stderr, bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "o1").exists()
    over = cli(str(synth), "--out", str(tmp_path / "o2"), "--flash-budget", "1KiB", "--json")
    assert over.returncode == 1, over.stderr
    assert re.fullmatch(r"error: modality 'imu' needs [\d,]+ B of FLASH, over the 1,024 B "
                        r"budget; files were written to .*\n", over.stderr), over.stderr
    assert json.loads(over.stdout)["ok"] is False and (tmp_path / "o2" / "resources.json").is_file()
    ok = cli(str(synth), "--out", str(tmp_path / "o3"))
    assert ok.returncode == 0 and "imu" in ok.stdout and "fits" in ok.stdout, ok.stderr
    corrupt = shutil.copytree(synth, tmp_path / "corrupt")
    model = corrupt / "encoders" / "imu.int8.tflite"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    bad = cli(str(corrupt), "--out", str(tmp_path / "o4"))
    assert bad.returncode == 1 and "sha256" in bad.stderr and not (tmp_path / "o4").exists()
    assert cli(str(tmp_path / "nope"), "--out", str(tmp_path / "o5")).returncode == 2
    assert "Example" in cli("--help").stdout


def test_resolver_registers_exactly_the_model_ops(tiny_bundle: Path, edge_fw: Path) -> None:
    from crossl_edge.tflite_graph import builtin_ops

    m = load_manifest(tiny_bundle)
    for e in m.modalities:
        data = m.path(e.artifacts["tflite_int8"]).read_bytes()
        ops = model_ops(data)
        assert ops == builtin_ops(data) == e.stats.tflite_int8_ops
        text = (edge_fw / e.name / f"crossl_{e.name}_resolver.h").read_text()
        assert re.findall(r"r\.(Add\w+)\(", text) == [OP_METHODS[o] for o in ops]
        if "CONV_2D" in ops:  # int8 model: the int8-only kernel (CMSIS-NN links only that path)
            assert "r.AddConv2D(tflite::Register_CONV_2D_INT8())" in text
            assert '#include "tensorflow/lite/micro/kernels/conv.h"' in text
        assert f"MicroMutableOpResolver<CROSSL_{e.name.upper()}_OP_COUNT>" in text
        assert f"_OP_COUNT {len(ops)}u" in text
    with pytest.raises(CheckFailed, match="CUSTOM:Foo"):
        resolver_methods(["CONV_2D", "CUSTOM:Foo"])


def test_tflm_runs_each_model_with_the_measured_arena(tiny_bundle: Path, edge_fw: Path,
                                                      synth: Path, tmp_path: Path) -> None:
    from crossl_edge.runtime import tflm

    _needs_tflm()
    generate_firmware(synth, tmp_path / "fw")
    m = load_manifest(tiny_bundle)
    cases = [(synth / "encoders" / "imu.int8.tflite", tmp_path / "fw" / "imu", "imu")]
    cases += [(m.path(e.artifacts["tflite_int8"]), edge_fw / e.name, e.name) for e in m.modalities]
    rng = np.random.default_rng(0)
    for model, d, name in cases:
        k = macros(d / f"crossl_{name}_contract.h")
        x = rng.integers(-128, 128, size=(2, 1, k["WINDOW"], k["CHANNELS"]), dtype=np.int8)
        ref = tflm.run_tflm(model, x, arena_size=1 << 20)
        for arena in (k["ARENA_MEASURED"], k["ARENA_SIZE"]):
            assert np.array_equal(tflm.run_tflm(model, x, arena_size=arena), ref)
        with pytest.raises(CheckFailed):  # far too small: TFLM refuses (or dies) in a subprocess
            tflm.run_tflm(model, x, arena_size=k["ARENA_MEASURED"] // 4)




def _harness(d: Path, entry: ModalityEntry, dim: int, hop: int, n: int) -> tuple[Path, list]:
    """Write harness.c + harness_data.h for ``entry``; return them and the expected records."""
    rng = np.random.default_rng(entry.id)
    mean, std = (np.asarray(entry.normalization[k], np.float32) for k in ("mean", "std"))
    raw = (mean + std * 2.5 * rng.standard_normal((n, len(mean)))).astype(np.float32)
    raw[5] = 1e6
    raw[6] = -1e6  # saturate
    scale = np.float32(entry.input_quant.scale)
    for row, k in enumerate(range(-6, 6), start=10):  # exact ties: round half to even
        x = np.float32(mean[0] + std[0] * scale * (k + 0.5))
        for _ in range(64):
            y = ((x - mean[0]) / std[0]) / scale
            if y == np.float32(k + 0.5):
                raw[row, 0] = x
                break
            x = np.nextafter(x, np.float32(np.inf if y < k + 0.5 else -np.inf))
    ties = int(sum(((raw[10:22, 0] - mean[0]) / std[0] / scale) % 1 == 0.5))
    assert ties >= 6, ties
    latent = rng.integers(-128, 128, dim, dtype=np.int8)
    p = f"crossl_{entry.name}"
    ends = list(range(entry.window - 1, n, hop))
    (d / "harness.c").write_text((CDIR / "fw_node_harness.c").read_text()
                              .replace("PFXM", p.upper()).replace("PFX", p))
    floats = ", ".join(float(v).hex() + "f" for v in raw.ravel())
    (d / "harness_data.h").write_text(
        f"#define HARNESS_N {n}u\n#define HARNESS_FRAMES {len(ends)}\n"
        f"static const float harness_samples[] = {{{floats}}};\n"
        f"static const int8_t harness_latent[] = {{{', '.join(map(str, latent))}}};\n")
    expected = []
    for seq, e in enumerate(ends):
        window = raw[e - entry.window + 1:e + 1].T
        expected.append(("INPUT", entry.tflite_input(window, int8=True).tobytes()))
        expected.append(("FRAME", (seq, 1_000_000 + 100_000 * e, latent)))
    return d / "harness.c", expected


def _check(out: str, expected: list, entry: ModalityEntry, fingerprint: int) -> None:
    recs = re.findall(r"^(INPUT|FRAME) ([0-9a-f]+)$", out, re.M)
    assert [r[0] for r in recs] == [e[0] for e in expected] and "RESULT PASS" in out, out[-500:]
    for (_, got), (kind, want) in zip(recs, expected, strict=True):
        if kind == "FRAME":
            seq, ts, latent = want
            want = encode_frame(LatentFrame(modality_id=entry.id, seq=seq, timestamp_us=ts,
                                            fingerprint=fingerprint, dtype=LatentDType.INT8,
                                            latent=latent))
        assert bytes.fromhex(got) == want, kind


def test_node_example_host_asan_matches_python(tiny_bundle: Path, edge_fw: Path,
                                               tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not on PATH")
    m = load_manifest(tiny_bundle)
    for e in m.modalities:
        d, hop = edge_fw / e.name, e.window // 4 + 3   # overlapping windows wrap the ring
        work = tmp_path / e.name
        work.mkdir()
        src, expected = _harness(work, e, m.latent_dim, hop, 3 * e.window)
        exe = work / "harness"
        subprocess.run(["gcc", *HOST_FLAGS, f"-DCROSSL_{e.name.upper()}_HOP={hop}u", f"-I{d}",
                        f"-I{edge_fw / 'common'}", f"-I{work}", str(src), str(d / "node_example.c"),
                        str(d / f"crossl_{e.name}_model.c"), "-o", str(exe)], check=True)
        run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stdout[-1000:] + run.stderr[-3000:]
        model_hex, rest = run.stdout.split("\n", 1)
        assert bytes.fromhex(model_hex) == m.path(e.artifacts["tflite_int8"]).read_bytes()
        _check(rest, expected, e, fingerprint32(m.fingerprint))


def _arm() -> str:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc not on PATH (scripts/system-deps.sh installs it)")
    return gcc


def test_cortex_m4_builds_and_sizes(tiny_bundle: Path, edge_fw: Path, tmp_path: Path) -> None:
    gcc = _arm()
    sizes = {}
    for e in load_manifest(tiny_bundle).modalities:
        d = edge_fw / e.name
        for src in ("node_example.c", f"crossl_{e.name}_model.c"):
            obj = tmp_path / f"{e.name}-{src}.o"
            subprocess.run([gcc, *ARM_FLAGS, f"-I{d}", f"-I{edge_fw / 'common'}", "-c",
                            str(d / src), "-o", str(obj)], check=True)
            out = subprocess.run([gcc.replace("-gcc", "-size"), str(obj)], capture_output=True,
                                 text=True, check=True).stdout.splitlines()[1].split()[:3]
            sizes[f"{e.name}/{src}"] = dict(zip(("text", "data", "bss"), map(int, out),
                                                strict=True))
        node = sizes[f"{e.name}/node_example.c"]
        model = sizes[f"{e.name}/crossl_{e.name}_model.c"]
        assert node["data"] == 0 and node["bss"] == 0 and node["text"] < 3072  # + time base
        assert model["text"] >= (tiny_bundle / e.artifacts["tflite_int8"]).stat().st_size
        assert model["data"] == 0
        res = json.loads((edge_fw / "resources.json").read_text())["modalities"][e.name]
        assert res["flash"]["code"]["node_and_codec"] == node["text"] + node["data"]
    print(f"\nCortex-M4 -Os sizes (node example + inlined codec; model array): {sizes}")


def test_node_example_on_qemu_cortex_m4(tiny_bundle: Path, edge_fw: Path, tmp_path: Path) -> None:
    gcc = _arm()
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        pytest.skip("qemu-system-arm not on PATH")
    m = load_manifest(tiny_bundle)
    e = m.modalities[0]
    d = edge_fw / e.name
    src, expected = _harness(tmp_path, e, m.latent_dim, e.window, 2 * e.window + 3)
    elf = tmp_path / "node.elf"
    subprocess.run([gcc, *ARM_FLAGS, "-DCROSSL_QEMU", "-nostartfiles", "--specs=nano.specs",
                    f"-T{ROOT / 'tests' / 'c' / 'mps2_m4.ld'}", f"-I{d}",
                    f"-I{edge_fw / 'common'}", f"-I{tmp_path}", str(src),
                    str(d / "node_example.c"), "-o", str(elf)], check=True)
    run = subprocess.run([qemu, "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial",
                          "none", "-semihosting-config", "enable=on,target=native", "-kernel",
                          str(elf)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    _check(run.stdout + run.stderr, expected, e, fingerprint32(m.fingerprint))
    size = subprocess.run([gcc.replace("-gcc", "-size"), str(elf)], capture_output=True,
                          text=True, check=True).stdout
    print(f"\nQEMU image (node example + codec + harness + libgcc soft-float):\n{size}")
