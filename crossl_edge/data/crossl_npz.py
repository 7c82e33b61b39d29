"""The official CroSSL code's pre-windowed layouts (``X_<i>.npy`` + ``y_<i>.npy`` per recording, or
its sleep ``.npz`` files) as a Dataset: ``load_crossl_npz``, registered as ``crossl-npz``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from crossl_edge.data import pamap2, sleepedf, wesad
from crossl_edge.data.npz import check_array, read_npz
from crossl_edge.data.signal import subject_list
from crossl_edge.data.windows import Dataset, ModalitySpec, Windows, split_by_subject
from crossl_edge.errors import DataError, UsageError

log = logging.getLogger(__name__)

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
            assert per_subject is not None  # `split or per_subject` matched above
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
    check_array(file, key, v, labels="")
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
    split_of = np.concatenate(splits)  # (not `split`: the loop above's str)
    if (split_of == "test").any():  # the files fix the split
        if test_subjects is not None:
            raise UsageError(f"the files in {d} already fix the test split; drop test_subjects.")
        train_w, test_w = everyone.subset(split_of == "train"), everyone.subset(split_of == "test")
    else:
        n_last = SLEEP_TEST_FILES if found[0][2].suffix == ".npz" else 1
        last = list(dict.fromkeys(s[0] for s in subs[-n_last:] if len(s)))
        wanted = subject_list(test_subjects)
        if wanted and dataset == "wesad":
            wanted = [wesad.subject_id(s) for s in wanted]
        train_w, test_w = split_by_subject(everyone, wanted or last)
    return Dataset(f"crossl-npz:{dataset}", train_w, test_w)
