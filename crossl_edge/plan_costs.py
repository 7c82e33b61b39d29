"""What each sensor device costs per window (flash, RAM, instructions, energy), from the firmware
generator's resources.json when given, else from the manifest's stats; every figure names its
source and says when it is an estimate.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from crossl_edge.errors import UsageError
from crossl_edge.manifest import Manifest

COSTS = ("flash_bytes", "ram_bytes", "instructions", "energy_mj")

# Energy estimate from instructions (when resources.json carries no energy figure): nRF52840,
# CPU running from flash with the cache on and the DC/DC regulator, 52 uA/MHz at 64 MHz (product
# specification v1.7, "CPU running CoreMark from flash") = 3.3 mA at 3.0 V; 1.2 cycles per
# instruction (assumed). CPU only: the radio's share is not counted here.
MCU = "nRF52840 @ 64 MHz, 3.0 V, DC/DC"
CPU_CURRENT_A = 52e-6 * 64
VOLTAGE_V = 3.0
CLOCK_HZ = 64e6
CYCLES_PER_INSTRUCTION = 1.2
INSTRUCTIONS_PER_MAC = 2.0  # CMSIS-NN int8 on a Cortex-M4: ~0.5 MAC/cycle, ~1 instruction/cycle


@dataclass(frozen=True)
class DeviceCost:
    """One device's cost per window, summed over its encoders (None: not known), and sources."""

    device: str
    modalities: tuple[str, ...]
    flash_bytes: float | None
    ram_bytes: float | None
    instructions: float | None
    energy_mj: float | None
    sources: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["modalities"] = list(self.modalities)
        return d


def energy_mj(instructions: float | None) -> float | None:
    """CPU energy (mJ, estimate) of ``instructions`` on the MCU above."""
    if instructions is None:
        return None
    seconds = instructions * CYCLES_PER_INSTRUCTION / CLOCK_HZ
    return seconds * CPU_CURRENT_A * VOLTAGE_V * 1e3


ENERGY_SOURCE = (f"estimate: instructions x {CYCLES_PER_INSTRUCTION} CPI on {MCU} at 52 uA/MHz "
                 "(datasheet), CPU only")


def device_costs(m: Manifest, raw: dict[str, Any], firmware: str | Path | None
                 ) -> tuple[list[DeviceCost], str]:
    """Per-device costs and one sentence on where they come from. ``raw``: manifest.json."""
    if firmware is not None:
        return _from_firmware(m, Path(firmware))
    return _from_manifest(m, raw)


def _from_manifest(m: Manifest, raw: dict[str, Any]) -> tuple[list[DeviceCost], str]:
    stats = {d["name"]: d.get("stats") or {} for d in raw.get("modalities", [])}
    out = []
    for dev in m.device_map:
        flash = ram = instr = 0.0
        known = {"flash": True, "ram": True, "instr": True}
        arenas = []
        for name in dev.modalities:
            s, e = stats.get(name, {}), m.modality(name)
            size = (s.get("size_bytes") or {}).get("tflite_int8")
            flash += size or 0
            known["flash"] &= size is not None
            arena = (s.get("tflm") or {}).get("arena_recorded_bytes")
            if arena is None:
                known["ram"] = False
            else:
                arenas.append(int(arena))
            ram += len(e.channels) * e.window                 # the int8 input window it keeps
            macs = s.get("macs")
            instr += INSTRUCTIONS_PER_MAC * macs if macs is not None else 0
            known["instr"] &= macs is not None
        ram += max(arenas, default=0)
        instructions = instr if known["instr"] else None
        out.append(DeviceCost(
            dev.name, dev.modalities, flash if known["flash"] else None,
            ram if known["ram"] else None, instructions, energy_mj(instructions),
            {"flash_bytes": "int8 TFLite model bytes (exact); code not counted",
             "ram_bytes": "estimate: the largest TFLite Micro arena (the encoders share one, run "
                          "in turn) + each modality's int8 input window",
             "instructions": f"estimate: {INSTRUCTIONS_PER_MAC:g} instructions per MAC "
                             "(CMSIS-NN on a Cortex-M4), elementwise ops not counted",
             "energy_mj": ENERGY_SOURCE}))
    return out, ("estimates from the manifest's stats (pass --firmware DIR for the firmware "
                 "generator's figures)")


def _from_firmware(m: Manifest, fw: Path) -> tuple[list[DeviceCost], str]:
    f = fw / "resources.json" if fw.is_dir() else fw
    try:
        doc = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise UsageError(f"{f} does not exist; write it with `crossl-edge firmware BUNDLE --out "
                         "DIR` and pass --firmware DIR.") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"{f} is not valid JSON; regenerate it with `crossl-edge firmware`.") \
            from e
    devices = doc.get("devices") if isinstance(doc.get("devices"), dict) else {}
    mods = doc.get("modalities") if isinstance(doc.get("modalities"), dict) else {}
    out = []
    for dev in m.device_map:
        if dev.name in devices:       # one image per device (the device firmware)
            out.append(_device_record(dev.name, dev.modalities, devices[dev.name]))
            continue
        missing = [n for n in dev.modalities if n not in mods]
        if missing:
            raise UsageError(f"{f} has no figures for modality {missing[0]!r}; regenerate it "
                             "from this bundle with `crossl-edge firmware`.")
        out.append(_combined(dev.name, dev.modalities, [mods[n] for n in dev.modalities]))
    return out, f"firmware resources {f}"


def _num(d: Any, *keys: str) -> float | None:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return float(d) if isinstance(d, int | float) and not isinstance(d, bool) else None


def _instructions(r: dict[str, Any]) -> tuple[float | None, str]:
    if _num(r, "instructions", "per_window") is not None:     # a device image's own figure
        return _num(r, "instructions", "per_window"), str(r.get("instructions_source",
                                                                "device image"))
    measured = r.get("measured")
    runs: dict[str, Any] = measured if isinstance(measured, dict) else {}
    m4 = sorted(k for k in runs if k.startswith("cortex-m4"))
    pick = next((k for k in m4 if "cmsis" in k), m4[0] if m4 else None)
    if pick is not None and _num(runs[pick], "instructions", "per_window") is not None:
        return _num(runs[pick], "instructions", "per_window"), f"measured on QEMU ({pick})"
    cycles = _num(r, "latency_estimate", "cortex-m4@120MHz", "cmsis_nn_cycles")
    return cycles, "estimate: Cortex-M4 CMSIS-NN cycles from MACs (firmware generator)"


def _firmware_energy(r: dict[str, Any]) -> tuple[float, str] | None:
    """Encode + send (mJ) from the firmware's energy record: the nRF52840 node if listed (else
    the first), CMSIS-NN kernels if listed (else the first set)."""
    profiles = (r.get("energy") or {}).get("profiles") if isinstance(r.get("energy"), dict) \
        else None
    if not isinstance(profiles, dict) or not profiles:
        return None
    node = next((k for k in profiles if k.startswith("nrf52840")), next(iter(profiles)))
    sets = profiles[node] if isinstance(profiles[node], dict) else {}
    kernels = "cmsis_nn" if "cmsis_nn" in sets else next(iter(sets), None)
    uj = _num(sets.get(kernels), "encode_and_send_uj") if kernels else None
    if uj is None:
        return None
    return uj / 1e3, (f"firmware energy estimate: encode + send the frame per hop, {node}, "
                      f"{kernels} kernels (resources.json)")


def _energy(records: list[dict[str, Any]], instructions: float | None) -> tuple[float | None, str]:
    got = [_firmware_energy(r) for r in records]
    if got and all(g is not None for g in got):
        return float(sum(g[0] for g in got if g)), next(g[1] for g in got if g)
    return energy_mj(instructions), ENERGY_SOURCE


def _device_record(name: str, modalities: tuple[str, ...], r: dict[str, Any]) -> DeviceCost:
    instr, isrc = _instructions(r)
    energy, esrc = _energy([r], instr)
    return DeviceCost(name, modalities, _num(r, "flash", "total"), _num(r, "ram", "total"),
                      instr, energy,
                      {"flash_bytes": str((r.get("flash") or {}).get("source", "device image")),
                       "ram_bytes": str((r.get("ram") or {}).get("source", "device image")),
                       "instructions": isrc, "energy_mj": esrc})


def _combined(name: str, modalities: tuple[str, ...], records: list[dict[str, Any]]
              ) -> DeviceCost:
    """A device's cost from its modalities' single-encoder figures: models summed, code counted
    once (the largest), one arena (the largest), every encoder's other RAM, one stack."""
    flash_model = [_num(r, "flash", "model") or 0.0 for r in records]
    flash_total = [_num(r, "flash", "total") or 0.0 for r in records]
    code = max(t - mdl for t, mdl in zip(flash_total, flash_model, strict=True))
    arenas = [_num(r, "arena", "size") or _num(r, "ram", "arena") or 0.0 for r in records]
    ram_total = [_num(r, "ram", "total") or 0.0 for r in records]
    stacks = [_num(r, "ram", "stack_estimate") or 0.0 for r in records]
    ram = (max(arenas) + sum(t - a for t, a in zip(ram_total, arenas, strict=True))
           - (sum(stacks) - max(stacks)))
    ins = [_instructions(r) for r in records]
    instr = None if any(i is None for i, _ in ins) else sum(i or 0.0 for i, _ in ins)
    energy, esrc = _energy(records, instr)
    one = len(records) == 1
    return DeviceCost(
        name, modalities, sum(flash_model) + code, ram, instr, energy,
        {"flash_bytes": str((records[0].get("flash") or {}).get("source", "")) if one else
         "estimate from single-encoder images: models summed, code counted once (the largest)",
         "ram_bytes": str((records[0].get("ram") or {}).get("source", "")) if one else
         "estimate from single-encoder images: one arena (the largest), every encoder's other "
         "RAM, one stack",
         "instructions": "; ".join(sorted({s for _, s in ins})), "energy_mj": esrc})
