"""The device map: which modalities each sensor device carries (a node is a device, a modality is
a stream; when a device drops out, all its modalities vanish together). Parse, validate, and turn
device subsets into modality subsets. Pure Python (runtime path).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from crossl_edge.errors import UsageError

DEVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # the npz modality-name rule
MAX_DEVICE_ID = 255  # one byte, like a modality id, should a frame ever carry it
EXAMPLE = "waist=body_acc,gyro;wrist=total_acc"


class DeviceMapError(UsageError):
    """A device map breaks a rule; the message is one clause naming the rule and the culprit."""


@dataclass(frozen=True)
class DeviceEntry:
    """One sensor device (a microcontroller): its name, a one-byte id, the modalities it carries
    (in manifest order)."""

    name: str
    id: int
    modalities: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "id": self.id, "modalities": list(self.modalities)}


def default_devices(names: Sequence[str]) -> list[DeviceEntry]:
    """One device per modality, named after it (what bundles without a device map mean)."""
    return [DeviceEntry(n, i, (n,)) for i, n in enumerate(names)]


def is_default(devices: Sequence[DeviceEntry]) -> bool:
    """True when every device carries exactly one modality (the map adds nothing)."""
    return all(len(d.modalities) == 1 for d in devices)


def check_devices(devices: Sequence[DeviceEntry], names: Sequence[str]) -> list[DeviceEntry]:
    """Validate ``devices`` against the bundle's modality ``names``; returns them with each
    device's modalities in manifest order. Raises DeviceMapError (one clause) on any breach."""
    if not devices:
        raise DeviceMapError("the device map is empty; it needs at least one device")
    seen_names: set[str] = set()
    seen_ids: set[int] = set()
    owner: dict[str, str] = {}
    out = []
    for d in devices:
        if not isinstance(d.name, str) or not DEVICE_NAME.fullmatch(d.name):
            raise DeviceMapError(f"device name {d.name!r} must match {DEVICE_NAME.pattern}")
        if d.name in seen_names:
            raise DeviceMapError(f"device {d.name!r} is named twice")
        if isinstance(d.id, bool) or not isinstance(d.id, int) or not 0 <= d.id <= MAX_DEVICE_ID:
            raise DeviceMapError(f"device {d.name!r} has id {d.id!r}; ids are 0..{MAX_DEVICE_ID}")
        if d.id in seen_ids:
            raise DeviceMapError(f"two devices share id {d.id}")
        if not d.modalities:
            raise DeviceMapError(f"device {d.name!r} carries no modality")
        for m in d.modalities:
            if m not in names:
                raise DeviceMapError(f"device {d.name!r} names modality {m!r}, which the bundle "
                                     f"does not have (it has {', '.join(names)})")
            if m in owner:
                where = ("twice" if owner[m] == d.name
                         else f"on both {owner[m]!r} and {d.name!r}")
                raise DeviceMapError(f"modality {m!r} is listed {where}; a modality lives on "
                                     "exactly one device")
            owner[m] = d.name
        seen_names.add(d.name)
        seen_ids.add(d.id)
        out.append(DeviceEntry(d.name, d.id, tuple(n for n in names if n in d.modalities)))
    missing = [n for n in names if n not in owner]
    if missing:
        raise DeviceMapError(f"modalit{'y' if len(missing) == 1 else 'ies'} "
                             f"{', '.join(map(repr, missing))} "
                             f"{'is' if len(missing) == 1 else 'are'} on no device; every "
                             "modality lives on exactly one device")
    return out


def devices_from_json(obj: Any, names: Sequence[str]) -> list[DeviceEntry]:
    """The manifest's ``devices`` list ([{name, id, modalities}]), or a user's JSON file in any
    of three forms: that list, {"devices": that list}, or {"waist": ["acc", "gyro"], ...}."""
    if isinstance(obj, dict) and "devices" in obj:
        obj = obj["devices"]
    if isinstance(obj, dict):
        obj = [{"name": k, "modalities": v} for k, v in obj.items()]
    if not isinstance(obj, list):
        raise DeviceMapError("the device map must be a list of {name, modalities} objects or "
                             "an object {device: [modalities]}")
    out = []
    for i, d in enumerate(obj):
        if not isinstance(d, dict) or not isinstance(d.get("name"), str):
            raise DeviceMapError(f"device entry {i} must be an object with a 'name'")
        mods = d.get("modalities")
        if not isinstance(mods, list) or not all(isinstance(m, str) for m in mods):
            raise DeviceMapError(f"device {d['name']!r} needs 'modalities', a list of names")
        out.append(DeviceEntry(d["name"], d.get("id", i), tuple(mods)))
    return check_devices(out, names)


def parse_devices(text: str, names: Sequence[str], *, flag: str = "--devices"
                  ) -> list[DeviceEntry]:
    """A command-line device map: ``waist=body_acc,gyro;wrist=total_acc`` or the path of a JSON
    file (see ``devices_from_json``). Any problem is one UsageError sentence."""
    try:
        path = Path(text)
        if text.endswith(".json") or path.is_file():
            if not path.is_file():
                raise DeviceMapError(f"file {text} does not exist")
            try:
                obj = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise DeviceMapError(f"{text} is not valid JSON") from e
            return devices_from_json(obj, names)
        out = []
        for i, part in enumerate(p for p in text.split(";") if p.strip()):
            name, eq, mods = part.partition("=")
            if not eq or not name.strip():
                raise DeviceMapError(f"{part.strip()!r} is not DEVICE=MODALITY[,MODALITY...]")
            out.append(DeviceEntry(name.strip(), i,
                                   tuple(m.strip() for m in mods.split(",") if m.strip())))
        return check_devices(out, names)
    except DeviceMapError as e:
        raise UsageError(f"{flag} {text!r}: {e}; write it like {EXAMPLE} (every modality on "
                         "exactly one device) or pass a JSON file.") from e


def device_of(devices: Sequence[DeviceEntry]) -> dict[str, str]:
    """modality name -> the name of the device that carries it."""
    return {m: d.name for d in devices for m in d.modalities}


def modalities_of(devices: Sequence[DeviceEntry], subset: Sequence[str],
                  names: Sequence[str]) -> tuple[str, ...]:
    """The modalities (in manifest order ``names``) present when exactly the devices in
    ``subset`` are present."""
    by_name = {d.name: d for d in devices}
    unknown = [s for s in subset if s not in by_name]
    if unknown:
        raise UsageError(f"unknown device {unknown[0]!r}; the bundle has "
                         f"{', '.join(by_name)}.")
    keep = {m for s in subset for m in by_name[s].modalities}
    return tuple(n for n in names if n in keep)


def device_subsets(devices: Sequence[DeviceEntry]) -> list[tuple[str, ...]]:
    """Every non-empty subset of device names, largest first, in map order within a subset."""
    names = [d.name for d in devices]
    return [c for k in range(len(names), 0, -1) for c in combinations(names, k)]


def devices_present(devices: Sequence[DeviceEntry], present: Sequence[str]) -> list[str]:
    """Devices with at least one of their modalities in ``present`` (a device counts as present
    when any of its frames arrived)."""
    got = set(present)
    return [d.name for d in devices if got.intersection(d.modalities)]


def rows_by_device(devices: Sequence[DeviceEntry], rows: Sequence[dict[str, Any]],
                   names: Sequence[str]) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """(device subset, row) for every device subset, from a table of rows keyed by their
    "present" modalities (evaluate's or parity's every-subset table)."""
    by = {frozenset(r["present"]): r for r in rows}
    return [(ds, by[frozenset(modalities_of(devices, ds, names))]) for ds in device_subsets(devices)
            if frozenset(modalities_of(devices, ds, names)) in by]
