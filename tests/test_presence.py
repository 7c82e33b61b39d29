"""Presence per window: absent data is zeroed and never counted, survives npz, and each loader marks
its stuck, NaN and missing stretches absent on fixtures in the published layouts."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from fixtures_public import (
    UCI_SPLITS,
    daphnet_rows,
    hapt_experiment,
    mhealth_rows,
    wisdm_lines,
    write_daphnet,
    write_hapt,
    write_mhealth,
    write_uci_har,
    write_wisdm,
    write_wisdm_stream,
)

from crossl_edge.data import Normalizer, load_dataset
from crossl_edge.data.npz import load_npz, save_npz
from crossl_edge.data.windows import ModalitySpec, Windows
from crossl_edge.errors import DataError


def _two(n: int = 6, *, absent: tuple[int, ...] = (1, 4)) -> Windows:
    rng = np.random.default_rng(0)
    gyro_ok = np.ones(n, bool)
    gyro_ok[list(absent)] = False
    gyro = rng.normal(5.0, 2.0, (n, 3, 8))
    gyro[~gyro_ok] = np.nan  # what a loader may hold there: never read
    return Windows((ModalitySpec("acc", ("x", "y", "z"), 10.0),
                    ModalitySpec("gyro", ("x", "y", "z"), 10.0)),
                   {"acc": rng.normal(size=(n, 3, 8)), "gyro": gyro}, np.arange(n) % 2,
                   np.array(["a", "a", "a", "b", "b", "b"][:n]), ("c0", "c1"),
                   present={"gyro": gyro_ok})


def test_absent_windows_are_zero_and_statistics_come_from_present_ones() -> None:
    w = _two()
    assert w.presence().tolist()[1] == [True, False] and not w.complete
    assert (w.data["gyro"][[1, 4]] == 0).all() and np.isfinite(w.data["gyro"]).all()
    norm = Normalizer.fit(w)
    ok = w.data["gyro"][w.present["gyro"]]
    assert np.allclose(norm.mean["gyro"], ok.mean(axis=(0, 2)))
    assert np.allclose(norm.std["gyro"], ok.std(axis=(0, 2)))
    z = norm.transform(w)
    assert (z.data["gyro"][[1, 4]] == 0).all() and z.present["gyro"].tolist() == \
        w.present["gyro"].tolist()
    sub = w.subset(np.array([0, 1]))
    assert sub.present["gyro"].tolist() == [True, False]
    only = w.select(["gyro"])  # windows where nothing chosen arrived are dropped
    assert len(only) == 4 and only.present["gyro"].all()
    with pytest.raises(DataError, match="one flag per window"):
        Windows(w.modalities, w.data, w.labels, w.subjects, w.classes,
                present={"gyro": np.ones(3, bool)})


def test_presence_round_trips_through_npz(tmp_path: Path) -> None:
    w = _two()
    for target in (tmp_path / "d", tmp_path / "one.npz"):
        save_npz(w, _two(absent=()), target)
        ds = load_npz(path=target)
        assert ds.train.present["gyro"].tolist() == w.present["gyro"].tolist()
        assert ds.test.complete
        with pytest.raises(DataError, match="--strict-sensors refuses them"):
            load_npz(path=target, strict_sensors=True)
    z = dict(np.load(tmp_path / "d" / "train.npz"))
    assert z["present_gyro"].dtype == bool and "present_acc" not in z
    z["x_gyro"][1] = np.nan  # NaN where the modality is absent is tolerated
    np.savez(tmp_path / "d" / "train.npz", **z)
    assert (load_npz(path=tmp_path / "d").train.data["gyro"][1] == 0).all()
    z["x_gyro"][1], z["present_gyro"] = 0.0, np.ones(5, bool)
    np.savez(tmp_path / "d" / "train.npz", **z)
    with pytest.raises(DataError, match="present_gyro must be a \\(N,\\) boolean array"):
        load_npz(path=tmp_path / "d")


# ------------------------------------------------------------ what each loader marks absent

def test_daphnet_stuck_thigh_in_one_run_is_absent_there(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    stuck = daphnet_rows([(0, 700), (1, 1000)], seed=5)
    stuck[:, 4:7] = 0  # thigh reads 0,0,0 for the whole run, as in S03R03 of the release
    write_daphnet(tmp_path, {"S01R01": daphnet_rows([(1, 600)], seed=1),
                             "S02R01": daphnet_rows([(1, 300)], seed=2),
                             "S03R01": daphnet_rows([(1, 400)], seed=3), "S03R02": stuck})
    with caplog.at_level(logging.WARNING):
        ds = load_dataset("daphnet", path=str(tmp_path), test_subjects=[2])
    s03 = ds.train.subjects == "S03"
    thigh = ds.train.present["thigh_acc"]
    assert (~thigh).sum() == 14 and not thigh[s03][-14:].any() and thigh[~s03].all()
    assert ds.train.present["ankle_acc"].all() and ds.train.meta["absent_windows"] == {
        "thigh_acc": {"S03": 14}}
    assert "thigh_acc absent in 14 of" in caplog.text and "S03: 14" in caplog.text
    with pytest.raises(DataError, match=r"S03R02.txt: sensor thigh_acc reads exactly 0 on every "
                                        r"axis for 15.6 s from row 701"):  # a file row
        load_dataset("daphnet", path=str(tmp_path), strict_sensors=True)
    both = load_dataset("daphnet", path=str(tmp_path), modalities="ankle_acc,trunk_acc",
                        test_subjects=[2])
    assert both.train.complete and len(both.train) == len(ds.train)


def test_mhealth_stuck_ecg_absent_and_file_row_named(tmp_path: Path) -> None:
    rows = mhealth_rows([(0, 1000), (1, 800)])
    rows[1100:1700, 3:5] = 0.0  # 12 s of ECG at exactly 0 inside activity 1
    write_mhealth(tmp_path, {1: rows, 2: mhealth_rows([(1, 300)], seed=2)})
    ds = load_dataset("mhealth", path=str(tmp_path), test_subjects=[2])
    assert ds.train.meta["absent_windows"] == {"ecg": {"1": 11}}
    with pytest.raises(DataError, match="for 12.0 s from row 1101"):  # not row 101 of activity 1
        load_dataset("mhealth", path=str(tmp_path), strict_sensors=True)


def test_hapt_stuck_gyro_and_missing_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    acc, gyro, rows = hapt_experiment([(1, 1000)])
    gyro[600:1200] = 0.0  # 12 s at 50 Hz
    raw = write_hapt(tmp_path, {(1, 1): (acc, gyro, rows),
                                (2, 2): hapt_experiment([(1, 300)], seed=1),
                                (3, 3): hapt_experiment([(4, 300)], seed=2)})
    (raw / "gyro_exp03_user03.txt").unlink()  # a partial download
    with caplog.at_level(logging.WARNING):
        ds = load_dataset("hapt", path=str(tmp_path), test_subjects=[2])
    assert ds.train.meta["absent_windows"]["gyro"] == {"1": 12, "3": 3}
    assert "gyro_exp03_user03.txt is missing" in caplog.text
    assert ds.train.present["body_acc"].all() and ds.train.present["total_acc"].all()
    with pytest.raises(DataError, match="gyro_exp01_user01.txt: sensor gyro reads exactly 0"):
        load_dataset("hapt", path=str(tmp_path), strict_sensors=True)
    np.savetxt(raw / "gyro_exp01_user01.txt", hapt_experiment([(1, 1000)])[1], fmt="%.17g")
    with pytest.raises(DataError, match="gyro_exp03_user03.txt missing .* partial download"):
        load_dataset("hapt", path=str(tmp_path), strict_sensors=True)


def test_wisdm_watch_only_keeps_the_subjects_that_have_the_watch(tmp_path: Path) -> None:
    write_wisdm(tmp_path, {1600: [("A", 12)], 1601: [("B", 12)]})
    for subject in (1602, 1603):  # watch streams only (no phone files at all)
        for k, sensor in ((2, "accel"), (3, "gyro")):
            write_wisdm_stream(tmp_path, subject, "watch", sensor,
                               wisdm_lines(subject, [("A", 12)], sensor=k, t0_ns=10**14))
    watch = load_dataset("wisdm", path=str(tmp_path), window=64, step=32,
                         modalities="watch_accel,watch_gyro", test_subjects=[1603])
    assert set(watch.train.subjects) == {"1600", "1601", "1602"} and watch.train.complete
    every = load_dataset("wisdm", path=str(tmp_path), window=64, step=32, test_subjects=[1603])
    assert every.train.meta["absent_windows"]["phone_accel"] == {"1602": 6, "1603": 6}
    strict = load_dataset("wisdm", path=str(tmp_path), window=64, step=32, strict_sensors=True,
                          test_subjects=[1601])
    assert set(strict.train.subjects) == {"1600"}  # the old behaviour: complete subjects only


def test_uci_har_zero_window_is_absent(tmp_path: Path) -> None:
    base = write_uci_har(tmp_path, UCI_SPLITS)
    for axis in "xyz":
        f = base / "test" / "Inertial Signals" / f"total_acc_{axis}_test.txt"
        x = np.loadtxt(f)
        x[1] = 0.0
        np.savetxt(f, x, fmt="%15.7e", delimiter="")
    ds = load_dataset("uci-har", path=str(tmp_path))
    assert ds.test.present["total_acc"].tolist() == [True, False, True]
    assert ds.test.meta["absent_windows"] == {"total_acc": {"2": 1}}
