"""Pre-windowed arrays in our documented generic format (``load_npz``/``save_npz``, spec in
NPZ_FORMAT.md); the official CroSSL code's layouts are read by ``crossl_npz``.
"""

from __future__ import annotations

import io
import json
import logging
import re
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from crossl_edge.atomic import write_bytes
from crossl_edge.data.signal import pick_modalities
from crossl_edge.data.windows import Dataset, ModalitySpec, Windows
from crossl_edge.errors import DataError, UsageError

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

# ---------------------------------------------------------------- our generic format

def _str_array(values: Sequence[object]) -> np.ndarray:
    return np.asarray([str(v) for v in values], dtype=str)


def _pack(w: Windows) -> dict[str, np.ndarray | np.generic]:
    arrays: dict[str, np.ndarray | np.generic] = {
        "modalities": _str_array(w.names), "y": w.labels.astype(np.int64),
        "subjects": _str_array(w.subjects.tolist()), "classes": _str_array(w.classes)}
    for m in w.modalities:
        if not _NAME.fullmatch(m.name):
            raise UsageError(f"modality name {m.name!r} cannot be an npz key; use letters, digits, "
                             "'_', '.' or '-'.")
        arrays[f"x_{m.name}"] = w.data[m.name]
        arrays[f"sample_rate_{m.name}"] = np.float64(m.sample_rate_hz)
        arrays[f"channels_{m.name}"] = _str_array(m.channels)
        if not w.present[m.name].all():
            arrays[f"present_{m.name}"] = w.present[m.name]
    try:
        arrays["meta"] = np.asarray(json.dumps(w.meta, sort_keys=True, default=str))
    except (TypeError, ValueError):
        log.warning("npz: meta is not JSON-serialisable; not saved")
    return arrays


def _write(path: Path, arrays: dict[str, np.ndarray | np.generic], compress: bool) -> None:
    buf = io.BytesIO()
    # mypy checks a **dict against every keyword, allow_pickle: bool included (the keys are npz
    # names, never "allow_pickle")
    (np.savez_compressed if compress else np.savez)(buf, **arrays)  # type: ignore[arg-type]
    write_bytes(path, buf.getvalue())


def save_npz(windows_train: Windows, windows_test: Windows, path: str | Path, *,
             compress: bool = True) -> None:
    """Write train/test windows in our npz format: ``path`` ending in ``.npz`` gives one file
    with a ``split`` array; any other ``path`` is a folder given ``train.npz`` and ``test.npz``."""
    tr, te = windows_train, windows_test
    if tr.modalities != te.modalities or tr.classes != te.classes:
        raise UsageError("train and test windows must share modalities and classes to be saved "
                         "together.")
    path = Path(path)
    if path.suffix == ".npz":
        a, b = _pack(windows_train), _pack(windows_test)
        merged = dict(a)
        for k in ("y", "subjects", *(f"x_{n}" for n in windows_train.names)):
            merged[k] = np.concatenate([a[k], b[k]])
        for n in windows_train.names:
            if f"present_{n}" in a or f"present_{n}" in b:
                merged[f"present_{n}"] = np.concatenate([tr.present[n], te.present[n]])
        merged["split"] = _str_array(["train"] * len(windows_train) + ["test"] * len(windows_test))
        _write(path, merged, compress)
    else:
        path.mkdir(parents=True, exist_ok=True)
        _write(path / "train.npz", _pack(windows_train), compress)
        _write(path / "test.npz", _pack(windows_test), compress)


def _unpack(z: Mapping[str, np.ndarray], where: str, modalities: Sequence[str] | None,
            ) -> tuple[list[ModalitySpec], dict[str, np.ndarray], dict[str, np.ndarray]]:
    found = [k[2:] for k in z if k.startswith("x_")]
    order = [str(n) for n in z["modalities"]] if "modalities" in z else found
    if not found or sorted(order) != sorted(found):
        raise DataError(f"{where}: needs one x_<modality> array per modality (found {found}, "
                        f"'modalities' lists {order}); see NPZ_FORMAT.md.")
    names = pick_modalities(modalities, order, where) if modalities is not None else order
    specs, data, present = [], {}, {}
    for n in names:
        x = z[f"x_{n}"]
        if f"present_{n}" in z:
            p = np.asarray(z[f"present_{n}"])
            if p.shape != (len(x),) or not (p.dtype == bool or np.isin(p, (0, 1)).all()):
                raise DataError(f"{where}: present_{n} must be a (N,) boolean array, one flag "
                                f"per window of x_{n}; got {p.dtype} {p.shape}.")
            present[n] = p.astype(bool)
        if x.ndim != 3 or not np.issubdtype(x.dtype, np.number):
            raise DataError(f"{where}: x_{n} has shape {x.shape} and dtype {x.dtype}; expected a "
                            "numeric (N, C, T) array.")
        if f"sample_rate_{n}" in z:
            rate = float(np.asarray(z[f"sample_rate_{n}"]).reshape(-1)[0])
        else:
            log.warning("npz: %s has no sample_rate_%s; assuming 1.0 Hz", where, n)
            rate = 1.0
        default = [f"{n}_{i}" for i in range(x.shape[1])]
        channels = tuple(str(c) for c in z[f"channels_{n}"]) if f"channels_{n}" in z else default
        specs.append(ModalitySpec(n, tuple(channels), rate))
        data[n] = x
    return specs, data, present


def read_npz(file: str | Path, *, labels: str = "y") -> dict[str, np.ndarray]:
    """The one checked reader of every .npz that enters (train, evaluate, simulate, bench,
    samples): corrupt or pickled archives, bad names, complex/non-numeric/NaN/inf windows and
    non-integer labels are refused with one sentence naming the file."""
    file = Path(file)
    if not file.is_file():
        raise DataError(f"{file} does not exist or is not a file; pass an existing .npz.")
    if file.stat().st_size == 0:
        raise DataError(f"{file} is empty (0 bytes); write it again with np.savez.")
    if not zipfile.is_zipfile(file):
        raise DataError(f"{file} is not an .npz archive (truncated or other bytes); write it "
                        "with np.savez or np.savez_compressed.")
    try:
        with np.load(file, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise DataError(f"{file} holds object arrays, which cannot be read without pickle "
                            "(never allowed); save strings as fixed-width str arrays "
                            "(np.asarray(values, dtype=str)) and numbers as numeric arrays.") from e
        raise DataError(f"{file} has an unreadable array ({e}); write it again.") from e
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
        raise DataError(f"{file} is a corrupt .npz archive ({type(e).__name__}: {e}); write it "
                        "again.") from e
    for k, v in arrays.items():
        p = arrays.get(f"present_{k[2:]}") if k.startswith("x_") else None
        if p is not None and p.shape == v.shape[:1] and p.dtype == bool:
            v = v[p]  # absent windows may hold anything (NaN included): they are never read
        check_array(file, k, v, labels=labels)
    return arrays


def check_array(file: Path, key: str, v: np.ndarray, *, labels: str) -> None:
    """Refuse an array a loader cannot use (bad modality key, dtype, shape or non-finite data)."""
    if key.startswith("x_") and not _NAME.fullmatch(key[2:]):
        raise DataError(f"{file}: array {key!r} has a modality name that is not allowed; use "
                        "letters, digits, '_', '.' or '-' (no '/').")
    if key.startswith("x_") or key == "x":
        if np.iscomplexobj(v) or not (np.issubdtype(v.dtype, np.number) or v.dtype == bool):
            raise DataError(f"{file}: {key} has dtype {v.dtype}; windows must be real numbers "
                            "(complex values are refused, keep the magnitude or split re/im into "
                            "channels).")
        bad = ~np.isfinite(v)
        if bad.any():
            n = int(bad.reshape(len(v), -1).any(axis=1).sum()) if v.ndim else 1
            raise DataError(f"{file}: {key} has NaN or inf in {n} window(s); clean or "
                            "interpolate the recording first.")
    if key == labels and labels == "y":
        if v.ndim != 1 or not np.issubdtype(v.dtype, np.integer):
            raise DataError(f"{file}: 'y' must be an integer (N,) array of class indices, got "
                            f"{v.dtype} {v.shape}.")
        if len(v) and v.min() < 0:
            raise DataError(f"{file}: 'y' has negative class indices; use 0..K-1.")


def _windows(z: Mapping[str, np.ndarray], where: str, split: str,
             modalities: Sequence[str] | None, classes: tuple[str, ...] | None, *,
             strict: bool = False) -> Windows:
    if "y" not in z:
        raise DataError(f"{where}: missing the 'y' label array; see NPZ_FORMAT.md.")
    specs, data, present = _unpack(z, where, modalities)
    y = np.asarray(z["y"])
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: 'y' must be an integer (N,) array, got {y.dtype} {y.shape}.")
    if any(len(x) != len(y) for x in data.values()):
        raise DataError(f"{where}: the x_ arrays and 'y' disagree on N "
                        f"({[len(x) for x in data.values()]} vs {len(y)}).")
    if classes is not None and len(y) and int(y.max()) >= len(classes):
        raise DataError(f"{where}: 'y' holds class index {int(y.max())} but there are "
                        f"{len(classes)} classes; labels must lie in 0..{len(classes) - 1}.")
    subjects = z["subjects"].astype(str) if "subjects" in z else np.full(len(y), split)
    if classes is None:
        classes = tuple(str(i) for i in range(int(y.max()) + 1 if len(y) else 0))
    meta: dict[str, object] = {}
    if "meta" in z:
        try:
            meta.update(json.loads(str(z["meta"])))
        except ValueError:
            log.warning("npz: %s has an unreadable 'meta' entry; ignored", where)
    meta["source"] = where
    w = Windows(tuple(specs), data, y, subjects, classes, meta, present)
    if strict and not w.complete:
        absent = {n: int((~p).sum()) for n, p in w.present.items() if not p.all()}
        raise DataError(f"{where}: modalities are absent in some windows ({absent}, from the "
                        "present_ arrays); --strict-sensors refuses them: drop that flag to train "
                        "with them absent.")
    return w.drop_empty()


def _classes(*arrays: Mapping[str, np.ndarray]) -> tuple[str, ...] | None:
    given = {tuple(str(c) for c in z["classes"]) for z in arrays if "classes" in z}
    if len(given) > 1:
        raise DataError("train.npz and test.npz list different 'classes'; save both with the same "
                        "class list.")
    if given:
        return given.pop()
    top = max((int(z["y"].max()) for z in arrays if "y" in z and len(z["y"])), default=-1)
    return tuple(str(i) for i in range(top + 1))


def load_npz(*, path: str | Path, modalities: Sequence[str] | None = None,
             strict_sensors: bool = False) -> Dataset:
    """Our generic format (NPZ_FORMAT.md): a folder with ``train.npz`` + ``test.npz``, or one
    ``.npz`` file with a ``split`` array. ``modalities`` keeps only those, in that order (windows
    where none of them is present are dropped). ``strict_sensors`` refuses absent windows."""
    p = Path(path)
    if p.is_dir():
        files = [p / f"{s}.npz" for s in SPLITS]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise DataError(f"{p} lacks {' and '.join(missing)}; put train.npz and test.npz there "
                            "or point --data at one .npz with a 'split' array.")
        ztr, zte = read_npz(files[0]), read_npz(files[1])
        cls = _classes(ztr, zte)
        train = _windows(ztr, str(files[0]), "train", modalities, cls, strict=strict_sensors)
        test = _windows(zte, str(files[1]), "test", modalities, cls, strict=strict_sensors)
    elif p.is_file():
        z = read_npz(p)
        if "split" not in z:
            raise DataError(f"{p} has no 'split' array; add one (values 'train'/'test') or use a "
                            "folder with train.npz and test.npz.")
        split = z["split"].astype(str)
        odd = sorted(set(split.tolist()) - set(SPLITS))
        if odd or split.ndim != 1:
            raise DataError(f"{p}: 'split' must be a (N,) array of 'train'/'test', found {odd}.")
        n = len(split)
        per_row = {k for k, v in z.items()
                   if k in ("y", "subjects") or k.startswith(("x_", "present_"))}
        bad = sorted(k for k in per_row if len(z[k]) != n)
        if bad:
            raise DataError(f"{p}: {', '.join(bad)} disagree with 'split' on N ({n}).")
        cls = _classes(z)
        parts = []
        for s in SPLITS:
            keep = split == s
            sub = {k: (v[keep] if k in per_row else v) for k, v in z.items()}
            parts.append(_windows(sub, str(p), s, modalities, cls, strict=strict_sensors))
        train, test = parts
    else:
        raise DataError(f"{p} does not exist; pass --data pointing at a folder with train.npz and "
                        "test.npz or at one .npz file.")
    return Dataset(str(train.meta.get("dataset") or (p.stem if p.is_file() else p.name)),
                   train, test)
