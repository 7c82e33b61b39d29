"""Windows, normalization, splits, and the embedded BasicMotions loader."""

from __future__ import annotations

import numpy as np
import pytest

from crossl_edge.data import Normalizer, load_dataset
from crossl_edge.data.basicmotions import read_ts
from crossl_edge.data.windows import ModalitySpec, Windows, sliding_windows, stratified_split
from crossl_edge.errors import DataError, UsageError


def test_basicmotions_shapes_and_classes() -> None:
    ds = load_dataset("basicmotions")
    assert len(ds.train) == 40 and len(ds.test) == 40
    assert ds.train.names == ("acc", "gyro")
    assert ds.train.data["acc"].shape == (40, 3, 100)
    assert np.bincount(ds.train.labels).tolist() == [10, 10, 10, 10]
    # gyroscope channels are ~zero-mean, accelerometer ones are not (datasets.md)
    assert abs(ds.train.data["gyro"].mean()) < abs(ds.train.data["acc"].mean(axis=(0, 2))).max()


def test_normalizer_uses_train_only_and_round_trips() -> None:
    ds = load_dataset("basicmotions")
    norm = Normalizer.fit(ds.train)
    z = norm.transform(ds.train)
    assert np.allclose(z.data["acc"].mean(axis=(0, 2)), 0, atol=1e-4)
    assert np.allclose(z.data["acc"].std(axis=(0, 2)), 1, atol=1e-3)
    again = Normalizer.from_json(norm.to_json())
    assert np.array_equal(again.apply("gyro", ds.test.data["gyro"]),
                          norm.apply("gyro", ds.test.data["gyro"]))


def test_stratified_split_is_seeded_and_stratified() -> None:
    y = np.repeat(np.arange(4), 10)
    rest, picked = stratified_split(y, fraction=0.2, seed=3)
    assert np.bincount(y[picked]).tolist() == [2, 2, 2, 2]
    assert set(rest) | set(picked) == set(range(40)) and not set(rest) & set(picked)
    assert np.array_equal(picked, stratified_split(y, fraction=0.2, seed=3)[1])


def test_nan_and_shape_errors_are_clear() -> None:
    spec = (ModalitySpec("acc", ("x", "y", "z"), 10.0),)
    x = np.zeros((2, 3, 10), np.float32)
    x[1, 0, 3] = np.nan
    with pytest.raises(DataError, match="NaN or inf in 1 window"):
        Windows(spec, {"acc": x}, [0, 0], ["a", "b"], ("c",))
    with pytest.raises(DataError, match="expected \\(2, 3, T\\)"):
        Windows(spec, {"acc": np.zeros((2, 2, 10))}, [0, 0], ["a", "b"], ("c",))
    with pytest.raises(DataError, match="longer than the recording"):
        sliding_windows(np.zeros((5, 3)), length=10, step=5)


def test_unknown_dataset_and_modality() -> None:
    with pytest.raises(UsageError, match="unknown dataset"):
        load_dataset("nope")
    with pytest.raises(DataError, match="unknown modality"):
        load_dataset("basicmotions").train.select(["ecg"])


def test_malformed_ts_file(tmp_path) -> None:
    f = tmp_path / "x.ts"
    f.write_text("@data\n1,2,oops:3,4,5:Walking\n")
    with pytest.raises(DataError, match="corrupt"):
        read_ts(f)
