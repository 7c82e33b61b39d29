"""Pre-windowed arrays: the official CroSSL code's ``.npy``/``.npz`` layouts (``load_crossl_npz``)
and our documented generic format (``load_npz``/``save_npz``, spec in NPZ_FORMAT.md).
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
from crossl_edge.data import pamap2, sleepedf, wesad
from crossl_edge.data.signal import pick_modalities, subject_list
from crossl_edge.data.windows import Dataset, ModalitySpec, Windows, split_by_subject
from crossl_edge.errors import DataError, UsageError

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
Groups = Mapping[str, tuple[int, int]] | Sequence[tuple[str, int, int]] | str

# dataset -> (sub-folder of the official code, modality channel ranges, Hz, classes)
_PAMAP2_GROUPS = [(n, 3 * i, 3 * i + 3) for i, n in enumerate(pamap2.MODALITY_NAMES)]
CROSSL_LAYOUTS: dict[str, tuple[str, list[tuple[str, int, int]], float, tuple[str, ...]]] = {
    "pamap2": ("pamap2", _PAMAP2_GROUPS, 100.0, pamap2.CLASSES),
    "pamap2_hr": ("pamap2_hr", [*_PAMAP2_GROUPS, ("heart_rate", 18, 19)], 100.0, pamap2.CLASSES),
    "wesad": ("wesad", [("ecg", 0, 1), ("emg", 1, 2), ("eda", 2, 3)], 700.0, wesad.CLASSES),
    "sleepedf": ("sleep", [(sleepedf.modality_name(c), i, i + 1)
                           for i, c in enumerate(sleepedf.DEFAULT_CHANNELS)], 100.0,
                 sleepedf.CLASSES),
}
SLEEP_TEST_FILES = 8  # the official code tests on the last 8 recording files


# ---------------------------------------------------------------- official CroSSL layouts

def parse_groups(groups: Groups) -> list[tuple[str, int, int]]:
    """``{"acc": (0, 3)}``, ``[("acc", 0, 3)]`` or ``"acc:0-3,gyro:3-6"`` -> [(name, a, b)]."""
    try:
        if isinstance(groups, str):
            out = []
            for part in filter(None, (p.strip() for p in groups.split(","))):
                name, rng = part.split(":")
                a, b = rng.split("-")
                out.append((name.strip(), int(a), int(b)))
        elif isinstance(groups, Mapping):
            out = [(str(n), int(r[0]), int(r[1])) for n, r in groups.items()]
        else:
            out = [(str(n), int(a), int(b)) for n, a, b in groups]
    except (ValueError, TypeError) as e:
        raise UsageError(f"cannot read modality groups {groups!r}; write them as "
                         "'acc:0-3,gyro:3-6' (channel ranges, end exclusive).") from e
    distinct = len({n for n, _, _ in out}) == len(out)
    if not out or any(a < 0 or b <= a for _, a, b in out) or not distinct:
        raise UsageError(f"modality groups {groups!r} need distinct names and ranges start < stop; "
                         "write them as 'acc:0-3,gyro:3-6'.")
    return out


def _labels(y: np.ndarray, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2:  # one-hot
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise DataError(f"{where}: labels have shape {y.shape}; expected (N,), (N, 1) or one-hot.")
    return y.astype(np.int64)


def _crossl_files(d: Path) -> list[tuple[str, str, Path, Path]]:
    """(subject, fixed split or "", x file, y file) for each official-layout file in ``d``."""
    out = []
    for f in sorted(d.glob("*.npy")):
        split = re.fullmatch(r"[Xx]_(train|val|test)\.npy", f.name)
        per_subject = re.fullmatch(r"[Xx]_(\d+)(train|test)?\.npy", f.name)
        if not (split or per_subject):
            continue
        y = next((d / f"{p}{f.name[1:]}" for p in "yY" if (d / f"{p}{f.name[1:]}").is_file()), None)
        if y is None:
            raise DataError(f"{f} has no matching y{f.name[1:]} in {d}; copy the label files too.")
        if split:  # no subject ids in this layout: the split name stands in for them
            name = "test" if split.group(1) == "test" else "train"
            out.append((name, name, f, y))
        else:
            out.append((per_subject.group(1), "", f, y))
    for f in sorted(d.glob("*.npz")):
        out.append((f.stem, "", f, f))
    return sorted(out, key=lambda t: (_natural(t[0]), t[2].name))


def _read_npy(file: Path, key: str) -> np.ndarray:
    try:
        v = np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{file} is not a readable .npy array without pickle ({type(e).__name__});"
                        " write it again with np.save.") from e
    if not isinstance(v, np.ndarray):
        raise DataError(f"{file} is not a .npy array; write it with np.save.")
    _check_array(file, key, v, labels="")
    return v


def _natural(s: str) -> tuple[object, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s))


def load_crossl_npz(*, path: str | Path, dataset: str | None = None, groups: Groups | None = None,
                    test_subjects: Sequence[object] | None = None,
                    sample_rate_hz: float | None = None,
                    classes: Sequence[str] | None = None) -> Dataset:
    """Pre-windowed arrays as the official CroSSL code reads them (channels-last x (N, T, C)).

    Layouts found in ``path`` or ``path/<pamap2|pamap2_hr|wesad|sleep>``: ``X_<i>.npy`` +
    ``y_<i>.npy`` per subject (PAMAP2), ``x_<i>{train,test}.npy`` + ``y_...`` per subject (WESAD,
    both halves kept and the subject held out), ``X_{train,val,test}.npy`` (split given; val
    joins train) or one ``<record>.npz`` with keys ``x``, ``y`` per recording (Sleep-EDF).
    ``y`` may be integer or one-hot. ``groups`` (e.g. ``"acc:0-3,gyro:3-6"``) overrides the
    modality channel ranges that ``dataset`` implies.
    """
    root = Path(path)
    if dataset is None:
        dataset = {"sleep": "sleepedf"}.get(root.name, root.name)
        if dataset not in CROSSL_LAYOUTS and groups is None:
            raise UsageError(f"cannot tell the dataset from {root.name!r}; pass dataset= (one of "
                             f"{', '.join(CROSSL_LAYOUTS)}) or groups=.")
    elif dataset not in CROSSL_LAYOUTS and groups is None:
        raise UsageError(f"unknown dataset {dataset!r} for crossl-npz; choose one of "
                         f"{', '.join(CROSSL_LAYOUTS)} or pass groups=.")
    sub, default_groups, default_hz, default_classes = CROSSL_LAYOUTS.get(
        dataset, ("", [], 1.0, ()))
    d = root / sub if sub and (root / sub).is_dir() else root
    if not d.is_dir():
        raise DataError(f"{root} is not a folder; pass --data pointing at the official code's data "
                        "folder.")
    found = _crossl_files(d)
    if not found:
        raise DataError(f"no X_*.npy / y_*.npy or *.npz files in {d}; pass --data pointing at the "
                        "folder the official CroSSL code reads.")
    grp = parse_groups(groups) if groups is not None else default_groups
    rate = float(sample_rate_hz) if sample_rate_hz else default_hz
    xs, ys, subs, splits = [], [], [], []
    for subject, split, xf, yf in found:
        if xf.suffix == ".npz":
            z = read_npz(xf, labels="")  # y may be one-hot here
            if "x" not in z or "y" not in z:
                raise DataError(f"{xf} lacks the keys 'x' and 'y'; it is not a CroSSL file.")
            x, y = z["x"], z["y"]
            subject = sleepedf.subject_of(subject) if re.match(r"S[CT]\d{4}", subject) else subject
        else:
            x, y = _read_npy(xf, "x"), _read_npy(yf, "")
        x = x[:, :, None] if x.ndim == 2 else x
        if x.ndim != 3 or len(x) != len(y):
            raise DataError(f"{xf}: x has shape {x.shape} and y {np.shape(y)}; expected x "
                            "(N, T, C) channels-last with one label per window.")
        xs.append(x)
        ys.append(_labels(y, str(yf)))
        subs.append(np.full(len(x), f"S{subject}" if dataset == "wesad" else subject))
        splits.append(np.full(len(x), split or "any"))
    if len({x.shape[1:] for x in xs}) != 1:
        raise DataError(f"windows in {d} differ in shape ({sorted({x.shape[1:] for x in xs})}); "
                        "all files must share (T, C).")
    x = np.concatenate(xs)
    n_ch = x.shape[2]
    if not grp:
        raise UsageError("pass groups= to say which channels form each modality, e.g. 'acc:0-3'.")
    if max(b for _, _, b in grp) > n_ch:
        raise DataError(f"the modality groups need {max(b for _, _, b in grp)} channels but the "
                        f"files in {d} have {n_ch}; pass groups= that fit.")
    y = np.concatenate(ys)
    if default_classes and y.min() >= 1 and y.max() == len(default_classes):
        log.info("crossl-npz: labels run 1..%d; shifting them to start at 0", y.max())
        y = y - 1
    cls = tuple(classes) if classes else default_classes
    cls = cls or tuple(str(i) for i in range(y.max() + 1))
    specs = tuple(ModalitySpec(n, tuple(f"{n}_{i}" for i in range(b - a)), rate) for n, a, b in grp)
    data = {n: x[:, :, a:b].transpose(0, 2, 1) for n, a, b in grp}
    meta: dict[str, object] = {"source": str(d), "dataset": dataset, "layout": "crossl-npz"}
    everyone = Windows(specs, data, y, np.concatenate(subs), cls, meta)
    split = np.concatenate(splits)
    if (split == "test").any():  # the files fix the split
        if test_subjects is not None:
            raise UsageError(f"the files in {d} already fix the test split; drop test_subjects.")
        train_w, test_w = everyone.subset(split == "train"), everyone.subset(split == "test")
    else:
        n_last = SLEEP_TEST_FILES if found[0][2].suffix == ".npz" else 1
        last = list(dict.fromkeys(s[0] for s in subs[-n_last:] if len(s)))
        wanted = subject_list(test_subjects)
        if wanted and dataset == "wesad":
            wanted = [wesad.subject_id(s) for s in wanted]
        train_w, test_w = split_by_subject(everyone, wanted or last)
    return Dataset(f"crossl-npz:{dataset}", train_w, test_w)


# ---------------------------------------------------------------- our generic format

def _str_array(values: Sequence[object]) -> np.ndarray:
    return np.asarray([str(v) for v in values], dtype=str)


def _pack(w: Windows) -> dict[str, np.ndarray]:
    arrays = {"modalities": _str_array(w.names), "y": w.labels.astype(np.int64),
              "subjects": _str_array(w.subjects.tolist()), "classes": _str_array(w.classes)}
    for m in w.modalities:
        if not _NAME.fullmatch(m.name):
            raise UsageError(f"modality name {m.name!r} cannot be an npz key; use letters, digits, "
                             "'_', '.' or '-'.")
        arrays[f"x_{m.name}"] = w.data[m.name]
        arrays[f"sample_rate_{m.name}"] = np.float64(m.sample_rate_hz)
        arrays[f"channels_{m.name}"] = _str_array(m.channels)
    try:
        arrays["meta"] = np.asarray(json.dumps(w.meta, sort_keys=True, default=str))
    except (TypeError, ValueError):
        log.warning("npz: meta is not JSON-serialisable; not saved")
    return arrays


def _write(path: Path, arrays: dict[str, np.ndarray], compress: bool) -> None:
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
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
        merged["split"] = _str_array(["train"] * len(windows_train) + ["test"] * len(windows_test))
        _write(path, merged, compress)
    else:
        path.mkdir(parents=True, exist_ok=True)
        _write(path / "train.npz", _pack(windows_train), compress)
        _write(path / "test.npz", _pack(windows_test), compress)


def _unpack(z: Mapping[str, np.ndarray], where: str,
            modalities: Sequence[str] | None) -> tuple[list[ModalitySpec], dict[str, np.ndarray]]:
    found = [k[2:] for k in z if k.startswith("x_")]
    order = [str(n) for n in z["modalities"]] if "modalities" in z else found
    if not found or sorted(order) != sorted(found):
        raise DataError(f"{where}: needs one x_<modality> array per modality (found {found}, "
                        f"'modalities' lists {order}); see NPZ_FORMAT.md.")
    names = pick_modalities(modalities, order, where) if modalities is not None else order
    specs, data = [], {}
    for n in names:
        x = z[f"x_{n}"]
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
    return specs, data


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
        _check_array(file, k, v, labels=labels)
    return arrays


def _check_array(file: Path, key: str, v: np.ndarray, *, labels: str) -> None:
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
             modalities: Sequence[str] | None, classes: tuple[str, ...] | None) -> Windows:
    if "y" not in z:
        raise DataError(f"{where}: missing the 'y' label array; see NPZ_FORMAT.md.")
    specs, data = _unpack(z, where, modalities)
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
    return Windows(tuple(specs), data, y, subjects, classes, meta)


def _classes(*arrays: Mapping[str, np.ndarray]) -> tuple[str, ...] | None:
    given = {tuple(str(c) for c in z["classes"]) for z in arrays if "classes" in z}
    if len(given) > 1:
        raise DataError("train.npz and test.npz list different 'classes'; save both with the same "
                        "class list.")
    if given:
        return given.pop()
    top = max((int(z["y"].max()) for z in arrays if "y" in z and len(z["y"])), default=-1)
    return tuple(str(i) for i in range(top + 1))


def load_npz(*, path: str | Path, modalities: Sequence[str] | None = None) -> Dataset:
    """Our generic format (NPZ_FORMAT.md): a folder with ``train.npz`` + ``test.npz``, or one
    ``.npz`` file with a ``split`` array. ``modalities`` keeps only those, in that order."""
    p = Path(path)
    if p.is_dir():
        files = [p / f"{s}.npz" for s in SPLITS]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise DataError(f"{p} lacks {' and '.join(missing)}; put train.npz and test.npz there "
                            "or point --data at one .npz with a 'split' array.")
        ztr, zte = read_npz(files[0]), read_npz(files[1])
        cls = _classes(ztr, zte)
        train = _windows(ztr, str(files[0]), "train", modalities, cls)
        test = _windows(zte, str(files[1]), "test", modalities, cls)
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
        per_row = {k for k, v in z.items() if k in ("y", "subjects") or k.startswith("x_")}
        bad = sorted(k for k in per_row if len(z[k]) != n)
        if bad:
            raise DataError(f"{p}: {', '.join(bad)} disagree with 'split' on N ({n}).")
        cls = _classes(z)
        parts = []
        for s in SPLITS:
            keep = split == s
            sub = {k: (v[keep] if k in per_row else v) for k, v in z.items()}
            parts.append(_windows(sub, str(p), s, modalities, cls))
        train, test = parts
    else:
        raise DataError(f"{p} does not exist; pass --data pointing at a folder with train.npz and "
                        "test.npz or at one .npz file.")
    return Dataset(str(train.meta.get("dataset") or (p.stem if p.is_file() else p.name)),
                   train, test)
