"""UEA BasicMotions (smartwatch acc + gyro, 4 classes), read from the installed sktime or aeon."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from crossl_edge.data.windows import Dataset, ModalitySpec, Windows
from crossl_edge.errors import DataError, UsageError

CLASSES = ("Standing", "Running", "Walking", "Badminton")
MODALITIES = (
    ModalitySpec("acc", ("acc_x", "acc_y", "acc_z"), 10.0),
    ModalitySpec("gyro", ("gyro_x", "gyro_y", "gyro_z"), 10.0),
)
_CHANNELS = {"acc": slice(0, 3), "gyro": slice(3, 6)}


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_files() -> tuple[Path, Path]:
    """Locate BasicMotions_{TRAIN,TEST}.ts inside sktime or aeon."""
    for pkg in ("sktime", "aeon"):
        root = _package_dir(pkg)
        if root is None:
            continue
        d = root / "datasets" / "data" / "BasicMotions"
        train, test = d / "BasicMotions_TRAIN.ts", d / "BasicMotions_TEST.ts"
        if train.is_file() and test.is_file():
            return train, test
    raise UsageError(
        "BasicMotions ships inside sktime; install it with "
        "`pip install --no-deps sktime==1.2.0` (or `pip install crossl-edge[data]`)."
    )


def read_ts(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an equal-length multivariate UEA ``.ts`` file: X (n, c, t) float32 and labels (n,)."""
    xs: list[list[np.ndarray]] = []
    ys: list[str] = []
    in_data = False
    for lineno, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("@data"):
            in_data = True
            continue
        if not in_data:
            continue
        *dims, label = line.split(":")
        try:
            xs.append([np.asarray(d.split(","), dtype=np.float32) for d in dims])
        except ValueError as e:
            raise DataError(
                f"{path}:{lineno}: malformed value ({e}); the .ts file is corrupt."
            ) from e
        ys.append(label)
    if not xs or len({tuple(len(d) for d in x) for x in xs}) != 1:
        raise DataError(
            f"{path}: no data or unequal lengths; expected an equal-length UEA .ts file."
        )
    return np.asarray(xs, dtype=np.float32), np.asarray(ys)


def _windows(path: Path, split: str) -> Windows:
    x, y = read_ts(path)
    if x.shape[1] != 6:
        raise DataError(f"{path}: expected 6 channels (acc xyz, gyro xyz), found {x.shape[1]}.")
    unknown = set(y.tolist()) - set(CLASSES)
    if unknown:
        raise DataError(f"{path}: unknown labels {sorted(unknown)}.")
    labels = np.array([CLASSES.index(v) for v in y])
    data = {m.name: x[:, _CHANNELS[m.name]] for m in MODALITIES}
    # The archive does not record who wore the watch per case; each case is its own "subject".
    subjects = np.array([f"{split}{i}" for i in range(len(y))])
    return Windows(MODALITIES, data, labels, subjects, CLASSES, {"source": str(path)})


def load_basicmotions(*, path: str | None = None) -> Dataset:
    """The official 40 TRAIN / 40 TEST split; ``path`` may name a folder holding the two files."""
    if path is not None:
        d = Path(path)
        train, test = d / "BasicMotions_TRAIN.ts", d / "BasicMotions_TEST.ts"
        if not (train.is_file() and test.is_file()):
            raise UsageError(f"{d} must hold BasicMotions_TRAIN.ts and BasicMotions_TEST.ts.")
    else:
        train, test = find_files()
    return Dataset("basicmotions", _windows(train, "train"), _windows(test, "test"))
