"""Energy per window on a sensor node, an estimate: encode + send the latent frame vs stream the raw
samples of each hop, from MCU and radio profiles (datasheet figures, each with its source).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

from crossl_edge.errors import UsageError

LABEL: Final[str] = "estimate"
PROFILES: Final[Path] = Path(__file__).parent / "profiles"
RAW_BYTES_PER_SAMPLE: Final[int] = 2  # int16 per axis per sample: what a raw IMU stream carries
_UNITS: Final[dict[str, float]] = {
    "1": 1.0, "V": 1.0, "A": 1.0, "mA": 1e-3, "uA": 1e-6, "Hz": 1.0, "kHz": 1e3, "MHz": 1e6,
    "s": 1.0, "ms": 1e-3, "us": 1e-6, "B": 1.0, "bit/s": 1.0, "kbit/s": 1e3, "Mbit/s": 1e6,
    "mAh": 3.6}  # mAh -> coulomb


@dataclass(frozen=True)
class Figure:
    """One number from a profile: value and unit, the document it comes from, its conditions."""

    value: float
    unit: str
    source: str
    conditions: str

    @property
    def si(self) -> float:
        return self.value * _UNITS[self.unit]

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "source": self.source,
                "conditions": self.conditions}


@dataclass(frozen=True)
class Cell:
    name: str
    capacity: Figure
    voltage: Figure


@dataclass(frozen=True)
class McuProfile:
    """A node's processor: clock, supply, run and sleep current, cycles per instruction, cell."""

    name: str
    title: str
    core: str
    radio: str          # the radio profile it is paired with by default
    clock: Figure
    supply: Figure
    run_current: Figure
    sleep_current: Figure
    cycles_per_instruction: Figure
    cell: Cell
    path: str


@dataclass(frozen=True)
class RadioProfile:
    """A node's radio: currents, bit rate and the per-packet / per-burst protocol overhead."""

    name: str
    title: str
    supply: Figure
    tx_current: Figure
    rx_current: Figure
    sleep_current: Figure
    bit_rate: Figure
    packet_overhead: Figure     # bytes on air per packet besides the payload
    max_payload: Figure         # payload bytes per packet
    preamble_time: Figure       # PHY preamble per packet not counted in packet_overhead
    per_packet_rx_time: Figure  # radio on per packet besides TX (ACK, inter-frame spaces)
    per_burst_time: Figure      # radio on per hop's burst (ramp-up, wake, channel access)
    path: str


_MCU_FIGURES = ("clock", "supply", "run_current", "sleep_current", "cycles_per_instruction")
_RADIO_FIGURES = tuple(f.name for f in fields(RadioProfile)
                       if f.name not in ("name", "title", "path"))


def shipped(kind: str) -> list[str]:
    """Names of the profiles shipped with the package, of ``kind`` 'mcu' or 'radio'."""
    return sorted(p.stem.split("-", 1)[1] for p in PROFILES.glob(f"{kind}-*.json"))


def _figure(d: dict[str, Any], key: str, where: str) -> Figure:
    f = d.get(key)
    if not isinstance(f, dict):
        raise ValueError(f"{key!r} is missing")
    v, unit = f.get("value"), f.get("unit")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{key}.value must be a number >= 0")
    if unit not in _UNITS:
        raise ValueError(f"{key}.unit {unit!r} is not one of {', '.join(_UNITS)}")
    for k in ("source", "conditions"):
        if not isinstance(f.get(k), str) or not f[k].strip():
            raise ValueError(f"{key}.{k} must say where the figure comes from")
    return Figure(float(v), unit, f["source"], f["conditions"])


def _read(kind: str, spec: str | Path) -> tuple[dict[str, Any], str]:
    path = Path(spec)
    if not path.suffix == ".json":
        if str(spec) not in shipped(kind):
            raise UsageError(f"unknown {kind.upper()} profile {str(spec)!r}; use one of "
                             f"{', '.join(shipped(kind))} or a JSON file.")
        path = PROFILES / f"{kind}-{spec}.json"
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"cannot read the {kind.upper()} profile {path}: "
                         f"{getattr(e, 'strerror', None) or e}.") from e
    if not isinstance(d, dict) or d.get("kind") != kind:
        raise UsageError(f"{path} is not a {kind.upper()} profile (it needs \"kind\": "
                         f"\"{kind}\"); see firmware_bridge/profiles/ for the format.")
    return d, str(path)


def load_mcu(spec: str | Path) -> McuProfile:
    """A shipped MCU profile by name, or a user's JSON file; UsageError if unknown or malformed."""
    d, path = _read("mcu", spec)
    try:
        figs = {k: _figure(d, k, path) for k in _MCU_FIGURES}
        c = d.get("cell")
        if not isinstance(c, dict):
            raise ValueError("'cell' is missing")
        cell = Cell(str(c.get("name") or "cell"), _figure(c, "capacity", path),
                    _figure(c, "voltage", path))
        if figs["clock"].si <= 0 or figs["supply"].si <= 0 or cell.voltage.si <= 0:
            raise ValueError("clock, supply and cell voltage must be above 0")
        return McuProfile(str(d.get("name") or Path(path).stem), str(d.get("title", "")),
                          str(d.get("core", "")), str(d.get("radio", "")), **figs, cell=cell,
                          path=path)
    except ValueError as e:
        raise UsageError(f"{path} is not a valid MCU profile: {e}.") from e


def load_radio(spec: str | Path) -> RadioProfile:
    """A shipped radio profile by name, or a user's JSON file; UsageError if unknown/malformed."""
    d, path = _read("radio", spec)
    try:
        figs = {k: _figure(d, k, path) for k in _RADIO_FIGURES}
        if figs["bit_rate"].si <= 0 or figs["max_payload"].value < 1 or figs["supply"].si <= 0:
            raise ValueError("bit_rate, max_payload and supply must be above 0")
        return RadioProfile(str(d.get("name") or Path(path).stem), str(d.get("title", "")),
                            **figs, path=path)
    except ValueError as e:
        raise UsageError(f"{path} is not a valid radio profile: {e}.") from e


def node_profiles(mcu: str | None = None, radio: str | None = None
                  ) -> list[tuple[McuProfile, RadioProfile]]:
    """(MCU, radio) pairs: every shipped MCU with its own radio unless ``mcu`` names one;
    ``radio`` replaces the radio of every pair."""
    mcus = [load_mcu(mcu)] if mcu else [load_mcu(n) for n in shipped("mcu")]
    return [(m, load_radio(radio or m.radio)) for m in mcus]


# --- Arithmetic ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RadioCost:
    """Sending ``nbytes`` as one burst: packets, seconds with the radio in TX and in RX."""

    nbytes: int
    packets: int
    tx_s: float
    rx_s: float

    def charge_c(self, radio: RadioProfile) -> float:
        return self.tx_s * radio.tx_current.si + self.rx_s * radio.rx_current.si

    def energy_j(self, radio: RadioProfile) -> float:
        return self.charge_c(radio) * radio.supply.si


def radio_cost(radio: RadioProfile, nbytes: int) -> RadioCost:
    """Air time of ``nbytes`` in packets of at most max_payload bytes, plus the protocol's
    overhead bytes and preamble per packet (TX), its ACK/inter-frame time per packet and its
    wake/ramp-up time per burst (RX current)."""
    if nbytes <= 0:
        return RadioCost(0, 0, 0.0, 0.0)
    packets = math.ceil(nbytes / radio.max_payload.value)
    air_bytes = nbytes + packets * radio.packet_overhead.value
    tx = air_bytes * 8 / radio.bit_rate.si + packets * radio.preamble_time.si
    rx = packets * radio.per_packet_rx_time.si + radio.per_burst_time.si
    return RadioCost(nbytes, packets, tx, rx)


@dataclass(frozen=True)
class Hop:
    """New samples between two windows (window - overlap), in samples and seconds, and why."""

    samples: int
    seconds: float
    source: str


def hop_of(window: int, sample_rate_hz: float, *, hop: int | None = None,
           manifest_hop: int | None = None) -> Hop:
    """The hop: ``hop`` (given by the user), else the manifest's, else the node's default."""
    if hop is not None:
        n, why = hop, "--hop"
    elif manifest_hop:
        n, why = int(manifest_hop), "the bundle's manifest"
    else:
        n, why = window, "the node's default HOP = WINDOW (non-overlapping windows, as trained)"
    if not 1 <= n <= window:
        raise UsageError(f"the hop must be between 1 and the window ({window} samples), "
                         f"not {n}.")
    return Hop(n, n / sample_rate_hz, why)


def window_energy(mcu: McuProfile, radio: RadioProfile, *, cycles: float, cycles_basis: str,
                  frame_bytes: int, raw_bytes: int, hop_s: float) -> dict[str, Any]:
    """Per hop: encode + send the frame vs stream the raw bytes; duty cycle, battery life."""
    t_cpu = cycles / mcu.clock.si
    q_cpu = t_cpu * mcu.run_current.si
    send, raw = radio_cost(radio, frame_bytes), radio_cost(radio, raw_bytes)
    e_enc, e_send, e_raw = q_cpu * mcu.supply.si, send.energy_j(radio), raw.energy_j(radio)
    sleep = mcu.sleep_current.si + radio.sleep_current.si
    cap = mcu.cell.capacity.si

    def days(charge_per_hop: float) -> float:
        return round(cap / (charge_per_hop / hop_s + sleep) / 86400, 1)

    uj = 1e6
    return {
        "label": LABEL, "mcu": mcu.name, "radio": radio.name,
        "encode": {"cycles": round(cycles), "ms": round(t_cpu * 1e3, 3),
                   "energy_uj": round(e_enc * uj, 2)},
        "send_frame": {"bytes": frame_bytes, "packets": send.packets,
                       "radio_on_us": round((send.tx_s + send.rx_s) * 1e6, 1),
                       "energy_uj": round(e_send * uj, 2)},
        "encode_and_send_uj": round((e_enc + e_send) * uj, 2),
        "stream_raw": {"bytes": raw_bytes, "packets": raw.packets,
                       "radio_on_us": round((raw.tx_s + raw.rx_s) * 1e6, 1),
                       "energy_uj": round(e_raw * uj, 2)},
        "ratio_encode_vs_raw": round((e_enc + e_send) / e_raw, 3) if e_raw else None,
        # the encoder's budget: cycles per hop at which encode + send costs what streaming does
        "break_even_cycles": max(0, round((e_raw - e_send) / (mcu.run_current.si
                                                              * mcu.supply.si) * mcu.clock.si)),
        "cpu_duty_cycle": round(t_cpu / hop_s, 7),
        "battery_days": {"encode_and_send": days(q_cpu + send.charge_c(radio)),
                         "stream_raw": days(raw.charge_c(radio)), "cell": mcu.cell.name},
        "rests_on": {
            "cycles": cycles_basis,
            "cycles_per_instruction": f"{mcu.cycles_per_instruction.value:g}: "
                                      f"{mcu.cycles_per_instruction.source}",
            "mcu": f"{mcu.title} ({mcu.path}): {mcu.run_current.value:g} {mcu.run_current.unit} "
                   f"run, {mcu.run_current.source}",
            "radio": f"{radio.title} ({radio.path}): TX {radio.tx_current.value:g} "
                     f"{radio.tx_current.unit}, {radio.tx_current.source}",
            "cell": f"{mcu.cell.name}, {mcu.cell.capacity.value:g} {mcu.cell.capacity.unit}: "
                    f"{mcu.cell.capacity.source}",
        },
    }


def modality_energy(*, profiles: list[tuple[McuProfile, RadioProfile]], hop: Hop, channels: int,
                    frame_bytes: int, work: dict[str, tuple[float, str, bool]],
                    message_overhead: int = 0) -> dict[str, Any]:
    """One modality's energy record: ``work`` maps kernel set -> (count, basis, is_instructions)
    (instructions measured on the M4 are scaled by each MCU's CPI; MAC-estimated cycles not).
    ``message_overhead``: bytes each message carries besides its data (a seal), raw hops too;
    ``frame_bytes`` already includes it."""
    raw_bytes = hop.samples * channels * RAW_BYTES_PER_SAMPLE + message_overhead
    out: dict[str, Any] = {}
    for mcu, radio in profiles:
        per_kernels = {}
        for kernels, (count, basis, is_instr) in work.items():
            cpi = mcu.cycles_per_instruction.value if is_instr else 1.0
            per_kernels[kernels] = window_energy(
                mcu, radio, cycles=count * cpi, cycles_basis=basis, frame_bytes=frame_bytes,
                raw_bytes=raw_bytes, hop_s=hop.seconds)
        out[f"{mcu.name}+{radio.name}"] = per_kernels
    return {"label": LABEL, "hop": {"samples": hop.samples, "seconds": round(hop.seconds, 4),
                                    "source": hop.source},
            "raw_bytes_per_hop": raw_bytes, "frame_bytes": frame_bytes,
            "message_overhead_bytes": message_overhead, "profiles": out}


def assumptions(profiles: list[tuple[McuProfile, RadioProfile]]) -> dict[str, Any]:
    """The model and every profile figure with its source, written next to the estimates."""
    seen: dict[str, Any] = {}
    for mcu, radio in profiles:
        seen[f"mcu/{mcu.name}"] = {"title": mcu.title, "file": mcu.path, "core": mcu.core,
                                   **{k: getattr(mcu, k).to_json() for k in _MCU_FIGURES},
                                   "cell": {"name": mcu.cell.name,
                                            "capacity": mcu.cell.capacity.to_json(),
                                            "voltage": mcu.cell.voltage.to_json()}}
        seen[f"radio/{radio.name}"] = {"title": radio.title, "file": radio.path,
                                       **{k: getattr(radio, k).to_json()
                                          for k in _RADIO_FIGURES}}
    return {
        "label": LABEL,
        "model": "per hop (window - overlap new samples): encode = cycles / clock x run current "
                 "x supply (cycles = instructions measured on QEMU x CPI with --build, else "
                 "the MAC estimate's cycles); send = the frame's bytes in packets of "
                 "max_payload, (bytes + overhead per packet) x 8 / bit rate + preamble at TX "
                 "current, per-packet ACK/inter-frame time and per-burst ramp-up at RX current; "
                 "stream raw = the hop's new samples the same way; the CPU sleeps while the "
                 "radio works",
        "raw_samples": f"int16 ({RAW_BYTES_PER_SAMPLE} B) per axis per sample, no timestamp "
                       "or application header (favours streaming)",
        "frame": "the v2 latent frame (36 B header and CRC + int8 latent): what the node "
                 "sends once synchronized; with --key-file every message (the frame, or a raw "
                 "hop) carries the seal (36 B) too",
        "battery": "cell capacity / (charge per hop / hop + MCU and radio sleep current); "
                   "charge passes through an LDO or direct connection (no converter "
                   "efficiency); sensor, connection keep-alive and sampling wake-ups excluded, "
                   "as both options pay them",
        "not_included": "sensor sampling, the connection's empty keep-alive events, HFXO "
                        "start-up, regulator and board losses",
        "profiles": seen,
        "units": "uJ = microjoules; mJ in the table; days of 24 h",
    }


def table(report: dict[str, Any]) -> str:
    """Per modality, kernel set and node: encode + send vs raw streaming, per hop, in mJ."""
    from crossl_edge.tables import table as text_table

    heads = ["modality", "kernels", "node (MCU+radio)", "M cycles", "encode mJ", "send mJ",
             "enc+send mJ", "raw mJ", "ratio", "break-even Mcyc", "CPU duty",
             "battery d enc/raw"]
    rows, hops = [], set()
    for name, r in report.items():
        en = r.get("energy")
        if not en:
            continue
        hops.add(f"{en['hop']['samples']} samples = {en['hop']['seconds']:g} s "
                 f"({en['hop']['source']})")
        for node, per in en["profiles"].items():
            for kernels, e in per.items():
                mark = "m" if e["rests_on"]["cycles"].startswith("measured") else "e"
                rows.append([name, kernels, node, f"{e['encode']['cycles'] / 1e6:.2f}{mark}",
                             f"{e['encode']['energy_uj'] / 1e3:.3f}",
                             f"{e['send_frame']['energy_uj'] / 1e3:.3f}",
                             f"{e['encode_and_send_uj'] / 1e3:.3f}",
                             f"{e['stream_raw']['energy_uj'] / 1e3:.3f}",
                             f"{e['ratio_encode_vs_raw']:.2f}",
                             f"{e['break_even_cycles'] / 1e6:.2f}",
                             f"{100 * e['cpu_duty_cycle']:.2f}%",
                             f"{e['battery_days']['encode_and_send']:g} / "
                             f"{e['battery_days']['stream_raw']:g}"])
    if not rows:
        return ""
    lines = ["energy per window (ESTIMATE, per hop; ratio = encode+send / raw stream, < 1: "
             "encoding wins)", text_table(heads, rows, first_left=True)]
    lines.append("M cycles: m = instructions measured on QEMU x the MCU's cycles/instruction, "
                 "e = estimated from MACs; break-even: the cycles per hop at which encode + send "
                 "costs what raw streaming does; currents: the profiles' datasheet tables "
                 "(named in resources.json); raw = int16 per axis; hop " + "; ".join(sorted(hops)))
    return "\n".join(lines)
