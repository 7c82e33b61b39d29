"""Dropout by device: a device's modalities vanish together (its battery, its radio), as device
outages, per-window device loss, and one scenario per device fully out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crossl_edge.devices import device_of, is_default
from crossl_edge.errors import UsageError
from crossl_edge.manifest import Manifest


def expand_outage(manifest: Manifest, outage: dict[str, tuple[float, float]] | None
                  ) -> dict[str, tuple[float, float]] | None:
    """Outages by modality, a device's name standing for all of its modalities."""
    if not outage:
        return outage
    devices = {d.name: d for d in manifest.device_map}
    out: dict[str, tuple[float, float]] = {}
    for name, span in outage.items():
        if name in manifest.names:
            out[name] = span
        elif name in devices:
            out.update({m: span for m in devices[name].modalities})
        else:
            raise UsageError(f"--outage names {name!r}, which is neither a modality "
                             f"({', '.join(manifest.names)}) nor a device "
                             f"({', '.join(devices)}) of the bundle.")
    return out


def device_drops(ch: Any, latents: dict[str, np.ndarray], rng: np.random.Generator
                 ) -> dict[str, np.ndarray]:
    """modality -> (N,) bool: the windows its device lost (drawn once per device and window)."""
    owner = {m: ch.device_of.get(m, m) for m in latents}
    n = max((len(v) for v in latents.values()), default=0)
    lost = {d: rng.random(n) < ch.device_loss for d in dict.fromkeys(owner.values())}
    return {m: lost[d] for m, d in owner.items()}


def device_runs(manifest: Manifest, rates: tuple[float, ...],
                outage: dict[str, tuple[float, float]], base: dict[str, Any]
                ) -> list[tuple[str, Any]]:
    """(name, ChannelModel) of each device loss rate and, when some device carries several
    modalities, of each device fully out."""
    from crossl_edge.sim.simulate import ChannelModel

    devices = manifest.device_map
    owner = device_of(devices)
    runs = [(f"device loss={p:g}", ChannelModel(device_loss=p, device_of=owner,
                                                outage=dict(outage), **base)) for p in rates]
    if not is_default(devices):
        runs += [(f"no {d.name} ({'+'.join(d.modalities)})",
                  ChannelModel(outage={m: (0.0, 1.0) for m in d.modalities}, **base))
                 for d in devices]
    return runs
