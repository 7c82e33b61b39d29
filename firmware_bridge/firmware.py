"""`generate_firmware(bundle, out)`: per modality, the C sources a sensor node needs (model array,
contract, op resolver, TFLM invoke, node loop) plus resources.json, written atomically.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossl_edge.atomic import atomic_dir
from crossl_edge.errors import CheckFailed, UsageError
from crossl_edge.firmware_bridge import (
    codegen,
    device_image,
    energy,
    measure,
    node_example,
    resources,
)
from crossl_edge.firmware_bridge.buildfile import makefile
from crossl_edge.firmware_bridge.resolver import int8_only_ops, resolver_header
from crossl_edge.firmware_bridge.secure_node import KEY_C, write_secure_common
from crossl_edge.manifest import Manifest, ModalityEntry
from crossl_edge.runtime.bundle import open_bundle
from crossl_edge.wire.frame import OVERHEAD_BY_VERSION, fingerprint32
from crossl_edge.wire.frame_c import HEADER_PATH
from crossl_edge.wire.secure import NetworkKey

log = logging.getLogger(__name__)

CODEC = HEADER_PATH  # the wire codec, copied into every firmware folder
ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-Os", "-std=c99", "-Wall", "-Wextra", "-Werror"]


@dataclass(frozen=True)
class FirmwareReport:
    """What `generate_firmware` wrote and measured; `over_budget` lists the failed checks."""

    out: Path
    modalities: dict[str, dict[str, Any]]
    flash_budget: int
    ram_budget: int
    over_budget: list[str] = field(default_factory=list)
    builds: dict[str, Any] = field(default_factory=dict)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)  # multi-encoder images

    @property
    def ok(self) -> bool:
        return not self.over_budget

    def to_json(self) -> dict[str, Any]:
        return {"out": str(self.out), "flash_budget": self.flash_budget,
                "ram_budget": self.ram_budget, "ok": self.ok, "over_budget": self.over_budget,
                "modalities": self.modalities, "builds": self.builds,
                **({"devices": self.devices} if self.devices else {})}

    def table(self) -> str:
        if any("measured" in r for r in self.modalities.values()):
            text = resources.measured_table(self.modalities, flash_budget=self.flash_budget,
                                            ram_budget=self.ram_budget)
        else:
            text = resources.table(self.modalities, flash_budget=self.flash_budget,
                                   ram_budget=self.ram_budget)
        ops = resources.per_op_table(self.modalities)
        dev = device_image.table(self.devices)
        return "\n\n".join(t for t in (text, dev, ops, energy.table(self.modalities)) if t)


def _stats(entry: ModalityEntry) -> dict[str, Any]:
    """The encoder's manifest stats as JSON (a plain dict or a typed record with to_json)."""
    s: Any = entry.stats
    return s.to_json() if hasattr(s, "to_json") else dict(s or {})


def _arena(entry: ModalityEntry, model: Path) -> tuple[int, str]:
    """Minimum arena measured on the TFLite Micro interpreter (or at export, if TFLM is absent)."""
    from crossl_edge.runtime import tflm

    if tflm.tflm_available():
        res = tflm.measure_arena(model)
        return res.minimum_bytes, f"tflite-micro {tflm.tflm_version()}"
    rec = _stats(entry).get("tflm") or {}
    if "arena_min_bytes" in rec:
        log.warning("tflite-micro is not installed: using the arena measured at export")
        return int(rec["arena_min_bytes"]), f"tflite-micro {rec.get('version', '?')} at export"
    raise UsageError("TFLite Micro is needed to measure the tensor arena and the bundle has no "
                     "measurement; `pip install --pre tflite-micro` and run again.")


def _check_model(entry: ModalityEntry, g: resources.GraphInfo, latent_dim: int) -> None:
    c, t = len(entry.channels), entry.window
    want_in = {"NWC": (1, t, c), "NCW": (1, c, t)}.get(entry.layout)
    if want_in is None:
        raise CheckFailed(f"modality {entry.name!r} has layout {entry.layout!r}; the firmware "
                          "generator handles NWC and NCW.")
    if g.input.dtype != "INT8" or g.output.dtype != "INT8":
        raise CheckFailed(f"modality {entry.name!r}: the model's input/output are "
                          f"{g.input.dtype}/{g.output.dtype}, not INT8; re-export the bundle.")
    if g.input.shape != want_in or g.output.shape not in ((1, latent_dim), (latent_dim,)):
        raise CheckFailed(f"modality {entry.name!r}: the model takes {g.input.shape} and gives "
                          f"{g.output.shape}, but the manifest says {want_in} -> (1, "
                          f"{latent_dim}); the bundle is inconsistent, re-export it.")
    for what, tq, mq in (("input", g.input, entry.input_quant),
                         ("latent", g.output, entry.latent_quant)):
        if tq.scale is None or abs(tq.scale - mq.scale) > 1e-6 * abs(mq.scale) \
                or tq.zero_point != mq.zero_point:
            raise CheckFailed(f"modality {entry.name!r}: the model's {what} quantization "
                              f"({tq.scale}, {tq.zero_point}) differs from the manifest's "
                              f"({mq.scale}, {mq.zero_point}); re-export the bundle.")


def node_code_size(moddir: Path, prefix: str) -> int | None:
    """Cortex-M4 -Os .text+.data of node_example.c (codec inlined); None without a toolchain."""
    gcc = shutil.which("arm-none-eabi-gcc")
    size = shutil.which("arm-none-eabi-size")
    if gcc is None or size is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        obj = Path(d) / "node.o"
        cmd = [gcc, *ARM_FLAGS, f"-I{moddir}", f"-I{moddir.parent / 'common'}", "-c",
               str(moddir / "node_example.c"), "-o", str(obj)]
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise CheckFailed(f"the generated {prefix} node example does not compile for "
                              f"Cortex-M4: {p.stderr.strip().splitlines()[:1]}")
        out = subprocess.run([size, str(obj)], capture_output=True, text=True, check=True)
        text, data = (int(x) for x in out.stdout.splitlines()[1].split()[:2])
        return text + data


def _spec(m: Manifest, entry: ModalityEntry, data: bytes, g: resources.GraphInfo,
          arena: dict[str, int], source: str) -> codegen.NodeSpec:
    rel = entry.artifacts["tflite_int8"]
    note = (f"Measured {arena['measured']} B with {source} (host, reference kernels); margin "
            f"{arena['margin']} B = CMSIS-NN scratch {arena['cmsis_nn_scratch']} B + headroom "
            f"{arena['headroom']} B; size rounded up to 16 B.")
    return codegen.NodeSpec(
        name=entry.name, modality_id=entry.id, fingerprint=fingerprint32(m.fingerprint),
        toolkit_version=m.toolkit_version, channels=tuple(entry.channels), window=entry.window,
        sample_rate_hz=entry.sample_rate_hz, layout=entry.layout,
        mean=tuple(entry.normalization["mean"]), std=tuple(entry.normalization["std"]),
        input_scale=entry.input_quant.scale, input_zero_point=entry.input_quant.zero_point,
        latent_dim=m.latent_dim, latent_scale=entry.latent_quant.scale,
        latent_zero_point=entry.latent_quant.zero_point, model_path=rel,
        model_sha256=entry.sha256["tflite_int8"], model_len=len(data), ops=tuple(g.ops),
        arena_measured=arena["measured"], arena_margin=arena["margin"], arena_size=arena["size"],
        arena_note=note)


def _write(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8"))


def _modality(m: Manifest, entry: ModalityEntry, moddir: Path, *,
              sealed: bool = False) -> tuple[codegen.NodeSpec, dict[str, Any]]:
    """Write one modality's sources into ``moddir``; return its spec and resource figures."""
    rel = entry.artifacts.get("tflite_int8")
    if rel is None:
        raise UsageError(f"modality {entry.name!r} has no int8 TFLite model in the bundle; "
                         "export it with `crossl-edge export`.")
    data = m.path(rel).read_bytes()
    g = resources.inspect_model(data)
    _check_model(entry, g, m.latent_dim)
    measured, source = _arena(entry, m.path(rel))
    arena = resources.arena_budget(measured, g)
    spec = _spec(m, entry, data, g, arena, source)
    p = spec.prefix
    moddir.mkdir(parents=True)
    _write(moddir / f"{p}_model.h", codegen.model_header(spec))
    _write(moddir / f"{p}_model.c", codegen.model_source(spec, data))
    _write(moddir / f"{p}_contract.h", codegen.contract_header(spec))
    _write(moddir / f"{p}_resolver.h", resolver_header(p, list(g.ops), banner=codegen.banner(
        spec, f"TFLite Micro op resolver of modality '{entry.name}' (C++)."),
        int8_ops=int8_only_ops(data)))
    _write(moddir / f"{p}_tflm.cc", codegen.tflm_source(spec))
    _write(moddir / f"{p}_node.h", node_example.node_header(spec, sealed=sealed))
    _write(moddir / "node_example.c", node_example.node_source(spec, sealed=sealed))
    code = resources.code_estimate(g.ops, None if sealed else node_code_size(moddir, p))
    state = node_example.node_state_bytes(spec, sealed=sealed)
    params = int(_stats(entry).get("params") or g.constant_elements)
    return spec, {
        "modality_id": entry.id, "model": rel, "model_sha256": spec.model_sha256,
        "ops": g.ops, "op_count": g.op_count, "params": params,
        "graph_constant_elements": g.constant_elements, "macs": g.macs,
        "elementwise_elements": g.elementwise_elements,
        "arena": {**arena, "source": source},
        "flash": {"model": len(data), "code": code, "total": len(data) + code["total"],
                  "source": "estimate: model bytes exact, code estimated (no --build)"},
        "ram": {"arena": arena["size"], "node_state": state,
                "stack_estimate": resources.STACK_ESTIMATE_BYTES,
                "total": arena["size"] + state + resources.STACK_ESTIMATE_BYTES,
                "source": "estimate: reserved arena + node state + estimated stack (no --build)"},
        "latency_estimate": resources.latency(g),
        "window_period_ms": round(1e3 * entry.window / entry.sample_rate_hz, 3),
    }


def _readme(m: Manifest, names: list[str]) -> str:
    lines = [f"# Firmware sources for bundle {fingerprint32(m.fingerprint):08x}", "",
             f"Generated by crossl-edge {m.toolkit_version} (`crossl-edge firmware`); do not "
             "edit, regenerate from the bundle.", "",
             "- `common/crossl_frame.h`: the latent frame codec (C99, header-only).",
             "- `resources.json`: flash, RAM, arena and latency figures with their assumptions.",
             ""]
    for n in names:
        p = f"crossl_{n}"
        lines += [f"## `{n}/`", "",
                  f"- `{p}_model.c/.h`: the int8 encoder as a 16-byte aligned C array.",
                  f"- `{p}_contract.h`: window, channels, normalization, quantization, arena.",
                  f"- `{p}_resolver.h`, `{p}_tflm.cc`: TFLite Micro op resolver and "
                  f"`{p}_invoke()` (C++).",
                  f"- `{p}_node.h`, `node_example.c`: ring buffer -> quantize -> invoke -> "
                  f"frame -> `{p}_send()` (yours).", "",
                  ""]
    first = names[0] if names else "<modality>"
    lines += ["## Build", "",
              "`crossl.mk` builds TensorFlow Lite Micro with only these models' kernels, and each "
              "modality's glue, model and node loop (C++17, `-DTF_LITE_STATIC_MEMORY`, no "
              "exceptions, RTTI or `__dso_handle`). `crossl-edge firmware --build` runs exactly "
              "these lines:", "",
              "```sh",
              "make -f crossl.mk TFLM_ROOT=/path/to/tflite-micro CROSSL_TARGET=cortex-m4 "
              f"CROSSL_KERNELS=cmsis_nn crossl-{first}",
              "arm-none-eabi-g++ -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -Os "
              "-nostartfiles --specs=nano.specs --specs=nosys.specs -Wl,--gc-sections "
              "-T your.ld startup_and_main.o "
              f"build/cortex-m4-cmsis_nn/{first}/crossl_{first}_tflm.o "
              f"build/cortex-m4-cmsis_nn/{first}/crossl_{first}_model.o "
              f"build/cortex-m4-cmsis_nn/{first}/node_example.o "
              "-Wl,--start-group build/cortex-m4-cmsis_nn/tflm/libtflm_kernels.a "
              "build/cortex-m4-cmsis_nn/tflm/libtflm_core.a -Wl,--end-group -lm -o node.elf",
              "```", "",
              "`CROSSL_TARGET=host` builds for this machine; `CROSSL_KERNELS=reference` uses "
              "TFLite Micro's reference kernels. `bash scripts/fetch-tflm.sh DIR` (crossl-edge "
              "repository) fetches the pinned TFLite Micro source.", ""]
    return "\n".join(lines)


def _mk_banner(m: Manifest) -> str:
    return (f"# crossl.mk: Makefile fragment for bundle {fingerprint32(m.fingerprint):08x}.\n"
            f"# GENERATED by crossl-edge {m.toolkit_version} (`crossl-edge firmware`); do not "
            "edit, regenerate from the bundle.")


def _apply_measured(report: dict[str, dict[str, Any]], measured: dict[str, Any]) -> None:
    """Replace the estimates by what the Cortex-M4 builds measured (largest kernel set counts)."""
    for name, r in report.items():
        runs = measured["modalities"][name]
        r["measured"] = runs
        m4 = {cfg: f for cfg, f in runs.items() if cfg.startswith("cortex-m4/")}
        if not m4:
            continue
        src = "measured: link map and run of the Cortex-M4F image on QEMU (largest kernel set)"
        r["flash"] = {"model": r["flash"]["model"],
                      "total": max(f["flash"]["total"] for f in m4.values()), "source": src}
        r["ram"] = {"total": max(f["ram"]["total"] for f in m4.values()), "source": src}
        r.pop("latency_estimate", None)


def _work(r: dict[str, Any]) -> dict[str, tuple[float, str, bool]]:
    """Per M4 kernel set: (instructions measured per window, or cycles estimated from MACs)."""
    m4 = {cfg.split("/", 1)[1]: f for cfg, f in r.get("measured", {}).items()
          if cfg.startswith("cortex-m4/")}
    if m4:
        return {k: (float(n), f"measured: {n:,} instructions per window (node push: normalize, "
                              f"quantize, invoke, frame) on QEMU mps2-an386 -icount, cortex-m4/{k}",
                    True)
                for k, f in m4.items() if (n := f["instructions"]["per_window"])}
    est = r["latency_estimate"]["cortex-m4@120MHz"]
    return {k: (float(est[f"{k}_cycles"]), f"estimate from {r['macs']:,} MACs (resources.py "
                f"throughput model, cycles; no --build)", False)
            for k in ("cmsis_nn", "reference")}


def _energy(m: Manifest, report: dict[str, dict[str, Any]],
            profiles: list[tuple[energy.McuProfile, energy.RadioProfile]],
            hop: int | None, *, sealed: bool = False) -> None:
    from crossl_edge.wire.secure import SEAL_OVERHEAD

    frame = max(OVERHEAD_BY_VERSION.values()) + m.latent_dim  # the v2 frame, int8 latent
    seal = SEAL_OVERHEAD if sealed else 0  # sealed: each message (frame or raw hop) carries it
    for e in m.modalities:
        h = energy.hop_of(e.window, e.sample_rate_hz, hop=hop,
                          manifest_hop=getattr(e, "hop", None))
        report[e.name]["energy"] = energy.modality_energy(
            profiles=profiles, hop=h, channels=len(e.channels), frame_bytes=frame + seal,
            work=_work(report[e.name]), message_overhead=seal)


def generate_firmware(bundle: str | Path, out: str | Path, *, flash_budget: int = 256 * 1024,
                      ram_budget: int = 64 * 1024,
                      build: measure.BuildOptions | None = None,
                      profiles: list[tuple[energy.McuProfile, energy.RadioProfile]] | None = None,
                      hop: int | None = None, key: NetworkKey | None = None) -> FirmwareReport:
    """Generate OUT/<modality>/, OUT/common/, OUT/crossl.mk and OUT/resources.json from ``bundle``.

    With ``build``: also compile TFLite Micro and every node image, run the bundle's sample
    windows through them (host and QEMU Cortex-M4F), check the frames against LiteRT and write
    the measured figures instead of the estimates (images and link maps in OUT/build/).
    Files are written (atomically) even when a budget is exceeded; the report says which.
    ``profiles`` (MCU, radio) pairs for the energy estimate (default: every shipped MCU with its
    radio); ``hop`` new samples per window (default: the manifest's, else the window).
    With ``key`` the nodes seal their frames and verify beacons; the key goes only into
    OUT/common/crossl_network_key.c (mode 0600), never into reports.
    """
    profiles = energy.node_profiles() if profiles is None else profiles
    m = open_bundle(bundle)  # hash check: a corrupt model fails here (CheckFailed, exit 1)
    names = [codegen.check_identifier(e.name) for e in m.modalities]
    upper = [n.upper() for n in names]
    if len(set(upper)) != len(upper):
        raise UsageError(f"modality names {names} collide once upper-cased (C macros); "
                         "rename them and re-export the bundle.")
    for e in m.modalities:  # a bad --hop fails before anything is built
        energy.hop_of(e.window, e.sample_rate_hz, hop=hop)
    out = Path(out)
    report: dict[str, dict[str, Any]] = {}
    specs: dict[str, codegen.NodeSpec] = {}
    with atomic_dir(out) as tmp:
        (tmp / "common").mkdir()
        shutil.copyfile(CODEC, tmp / "common" / CODEC.name)
        if key is not None:
            write_secure_common(tmp / "common", key, names)
        for entry in m.modalities:
            specs[entry.name], report[entry.name] = _modality(m, entry, tmp / entry.name,
                                                              sealed=key is not None)
            log.info("firmware for %s: arena %d B", entry.name, report[entry.name]["arena"]["size"])
        devices = _devices(m, specs, tmp, sealed=key is not None)
        ops = sorted({op for r in report.values() for op in r["ops"]})
        _write(tmp / "crossl.mk", makefile(names, ops, banner=_mk_banner(m),
                                           sealed=key is not None)
               + "".join(device_image.make_rules(d) for d in devices))
        dev_report = {d.name: device_image.estimate(d, report) for d in devices}
        measured = None
        if build is not None:
            measured = _measure(m, tmp, report, build, devices)
            _apply_measured(report, measured)
            for d in devices:
                dev_report[d.name] = device_image.measured(d, dev_report[d.name], report,
                                                           measured["devices"][d.name])
        _energy(m, report, profiles, hop, sealed=key is not None)
        over = resources.check_budget(report, flash_budget=flash_budget, ram_budget=ram_budget)
        over += device_image.check_budget(dev_report, flash_budget=flash_budget,
                                          ram_budget=ram_budget)
        doc = {"bundle_fingerprint": f"{fingerprint32(m.fingerprint):08x}",
               "toolkit_version": m.toolkit_version,
               "budget": {"flash": flash_budget, "ram": ram_budget},
               "ok": not over, "over_budget": over, "assumptions": resources.assumptions(),
               "modalities": report}
        if dev_report:
            doc["devices"] = dev_report
        if measured is not None:
            doc["builds"] = measured["builds"]
            doc["assumptions"] = resources.measured_assumptions()
        doc["energy_assumptions"] = energy.assumptions(profiles)
        _write(tmp / "resources.json", json.dumps(doc, indent=2, sort_keys=True) + "\n")
        _write(tmp / "README.md", _readme(m, names))
        for f in tmp.rglob("*"):
            f.chmod(0o755 if f.is_dir() else 0o600 if f.name == KEY_C else 0o644)
        tmp.chmod(0o755)
    return FirmwareReport(out, report, flash_budget, ram_budget, over,
                          builds=measured["builds"] if measured else {}, devices=dev_report)


def _devices(m: Manifest, specs: dict[str, codegen.NodeSpec], tmp: Path, *,
             sealed: bool) -> list[device_image.DeviceSpec]:
    """Write devices/<device>/ for every device of the map with two or more encoders."""
    devices = device_image.device_specs(m.device_map, specs)
    if devices and sealed:
        log.warning("sealed firmware (--key-file) is generated per modality; the device "
                    "images (%s) are built without --key-file", ", ".join(d.name for d in devices))
        return []
    for d in devices:
        folder = tmp / d.folder
        folder.mkdir(parents=True)
        _write(folder / f"{d.prefix}.h", device_image.device_header(d))
        _write(folder / f"{d.prefix}.c", device_image.device_source(d))
    return devices


def _measure(m: Manifest, fw: Path, report: dict[str, dict[str, Any]],
             opts: measure.BuildOptions,
             devices: list[device_image.DeviceSpec]) -> dict[str, Any]:
    from crossl_edge.samples import SAMPLES, load_samples

    xs, _ = load_samples(m.root / SAMPLES, m.names, manifest=m)
    if opts.max_windows is not None:
        xs = {k: v[: opts.max_windows] for k, v in xs.items()}
    state = {n: r["ram"]["node_state"] for n, r in report.items()}
    return measure.measure(m, fw, xs, state, opts, keep=fw / "build", devices=devices)
