"""Sample windows shipped inside a bundle (samples.npz): raw test windows and their labels.

They let `bench`, `simulate` and a third party feed real sensor data with only the bundle and a
runtime installed. Written as a deterministic zip so re-exports are byte-identical. numpy only.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crossl_edge.errors import DataError, UsageError

if TYPE_CHECKING:
    from crossl_edge.manifest import Manifest

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


def bundle_samples_path(manifest: Manifest) -> Path:
    """The bundle's samples file, as its manifest names it (samples.npz by default)."""
    rec = manifest.provenance.samples
    return manifest.path(rec.path if rec is not None and rec.path else SAMPLES)


def load_samples(path: str | Path, names: list[str], *, manifest: Manifest | None = None,
                 ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Read raw windows {m: (N, C, T)} for ``names`` and labels (N,) from a samples-style .npz,
    through the one checked npz reader. With ``manifest``, also check every window's shape and
    the labels against the bundle."""
    from crossl_edge.data.npz import read_npz

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} is missing; re-export the bundle or pass --data.")
    z = read_npz(path)
    missing = [k for k in [f"x_{n}" for n in names] + ["y"] if k not in z]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}; it needs x_<modality> "
                        "(N, C, T) for every bundle modality and y (N,).")
    xs = {n: np.asarray(z[f"x_{n}"], np.float32) for n in names}
    y = z["y"].astype(np.int64)
    if len(y) == 0:
        raise DataError(f"{path} holds no windows (y is empty); pass a file with at least one.")
    for n, x in xs.items():
        if x.ndim != 3 or len(x) != len(y):
            raise DataError(f"x_{n} in {path} has shape {x.shape}; it needs (N, C, T) with "
                            f"N = {len(y)} (the length of y).")
    if manifest is not None:
        for m in manifest.modalities:
            want = (len(y), len(m.channels), m.window)
            if xs[m.name].shape != want:
                raise DataError(f"x_{m.name} in {path} has shape {xs[m.name].shape}, the bundle "
                                f"needs {want}.")
        if y.max() >= len(manifest.classes):
            raise DataError(f"y in {path} must be class indices in "
                            f"0..{len(manifest.classes) - 1}.")
    return xs, y
