"""Sample windows shipped inside a bundle (samples.npz): raw test windows and their labels.

They let `bench`, `simulate` and a third party feed real sensor data with only the bundle and a
runtime installed. Written as a deterministic zip so re-exports are byte-identical. numpy only.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from crossl_edge.errors import UsageError

SAMPLES = "samples.npz"


def samples_bytes(windows: dict[str, np.ndarray], labels: np.ndarray) -> bytes:
    """Serialize raw windows {m: (N, C, T)} and labels (N,) as a byte-stable .npz."""
    arrays = {f"x_{m}": np.ascontiguousarray(x, np.float32) for m, x in windows.items()}
    arrays["y"] = np.asarray(labels, np.int64)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, arrays[key], allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def load_samples(path: str | Path, names: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Read samples.npz back: raw windows per modality in ``names`` and the labels."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} is missing; re-export the bundle or pass --data.")
    with np.load(path, allow_pickle=False) as z:
        missing = [m for m in names if f"x_{m}" not in z]
        if missing:
            raise UsageError(f"{path} lacks modalities {missing}; re-export the bundle.")
        return {m: z[f"x_{m}"] for m in names}, z["y"]
