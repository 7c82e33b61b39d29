"""Loaders for the public raw formats and the npz formats, on tiny fixtures generated in the real
raw formats (see fixtures_raw.py); nothing is downloaded.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from fixtures_raw import (
    SC_SIGNALS,
    START,
    pamap2_rows,
    wesad_subject,
    write_hypnogram,
    write_pamap2,
    write_pamap2_file,
    write_psg,
    write_wesad,
)

from crossl_edge.data import load_dataset, signal
from crossl_edge.data import pamap2 as pm
from crossl_edge.data import wesad as ws
from crossl_edge.data.npz import save_npz
from crossl_edge.errors import DataError, UsageError

# ============================================================================ PAMAP2

SEGMENTS = [(0, 50), (1, 300), (4, 300), (9, 100), (5, 300)]  # activity 0 and 9 are dropped
ACTIVITY_OF_CLASS = np.array([a for a, _ in sorted(pm.ACTIVITIES.items(), key=lambda kv: kv[1])])
W = {"window": 64, "step": 32}  # 8 windows per 300-row segment


@pytest.fixture(scope="module")
def pamap2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pamap2")
    r101 = pamap2_rows(SEGMENTS, seed=1)
    r101[60:65, 4:7] = np.nan  # 5-row hand-acc packet drop inside "lying": interpolated
    r101[400:440, 20:37] = np.nan  # 40-row chest drop inside "walking": chest absent in 3
    base = write_pamap2(root, {101: r101, 102: pamap2_rows(SEGMENTS, seed=2)})
    write_pamap2_file(base / "Optional" / "subject101.dat", pamap2_rows([(1, 200)], seed=3))
    return base


def test_pamap2_shapes_labels_and_loso_split(pamap2_dir: Path) -> None:
    ds = load_dataset("pamap2", path=str(pamap2_dir), **W)
    assert ds.train.names == pm.MODALITY_NAMES and ds.train.classes == pm.CLASSES
    assert all(ds.train.data[n].shape[1:] == (3, 64) for n in ds.train.names)
    assert set(ds.train.subjects) == {"101"} and set(ds.test.subjects) == {"102"}
    assert len(ds.test) == 24 and len(ds.train) == 24  # 3 x 8; the chest NaN windows are kept
    assert ds.train.present["chest_acc"].sum() == 21 and ds.train.present["hand_acc"].all()
    assert ds.train.meta["absent_windows"]["chest_gyro"] == {"101": 3}
    for split in (ds.train, ds.test):
        assert {pm.CLASSES[i] for i in split.labels} == {"lying", "walking", "running"}
        # every window's samples carry its own segment's activity: no window crosses segments
        value = split.data["hand_acc"][:, 0, :]
        assert np.allclose(value, ACTIVITY_OF_CLASS[split.labels][:, None], atol=0.01)
        assert np.allclose(split.data["ankle_gyro"][:, 2].mean(1),
                           ACTIVITY_OF_CLASS[split.labels] + 0.08, atol=0.01)


def test_pamap2_nan_interpolated_and_long_gaps_absent(pamap2_dir: Path) -> None:
    ds = load_dataset("pamap2", path=str(pamap2_dir), test_subjects=[102], **W)
    assert ds.train.meta["dropped_nan_windows"] == 0
    walking = ds.train.labels == pm.CLASSES.index("walking")
    assert walking.sum() == 8 and (~ds.train.present["chest_acc"][walking]).sum() == 3
    assert (ds.train.data["chest_acc"][~ds.train.present["chest_acc"]] == 0).all()
    assert ds.train.present["hand_acc"].all()  # the 5-row drop is interpolated
    short = load_dataset("pamap2", path=str(pamap2_dir), max_gap=2, **W)
    assert (~short.train.present["hand_acc"]).sum() == 1  # now the 5-row drop counts
    strict = load_dataset("pamap2", path=str(pamap2_dir), max_gap=2, strict_sensors=True, **W)
    assert strict.train.meta["dropped_nan_windows"] == 3 + 1 and strict.train.complete
    assert (strict.train.labels == pm.CLASSES.index("walking")).sum() == 5


def test_interpolate_gaps_fills_short_runs_and_flags_long_and_edge_runs() -> None:
    x = np.arange(20, dtype=float)[:, None].repeat(2, axis=1)
    x[3:5, 0] = np.nan  # short interior run
    x[8:14, 1] = np.nan  # long interior run
    x[0, 1] = np.nan  # run touching the start
    filled, bad = pm.interpolate_gaps(x, max_gap=3)
    expected = np.arange(20.0)[:, None].repeat(2, axis=1)
    expected[0, 1] = 1.0  # an edge run is held (and flagged), not extrapolated
    assert np.allclose(filled, expected)
    assert np.flatnonzero(bad).tolist() == [0, *range(8, 14)]


def test_pamap2_heart_rate_resampling_and_path_forms(pamap2_dir: Path) -> None:
    ds = load_dataset("pamap2", path=str(pamap2_dir / "Protocol"), heart_rate=True,
                      resample_hz=50, window=32, step=16)
    assert ds.train.names[-1] == "heart_rate" and ds.train.spec("heart_rate").sample_rate_hz == 50
    assert (~ds.train.present["chest_acc"]).sum() == 3  # NaN mapped back to raw time correctly
    assert ds.test.data["heart_rate"].shape == (24, 1, 32)
    assert ds.test.data["hand_acc"].shape == (24, 3, 32)
    hr = ds.test.data["heart_rate"][:, 0]  # interpolated across the file, so ramps at changes
    assert np.isfinite(hr).all() and np.ptp(hr, axis=1).max() <= 4.0  # <= the HR step
    assert np.allclose(hr.mean(1), 80 + ACTIVITY_OF_CLASS[ds.test.labels], atol=0.5)
    parent = load_dataset("pamap2", path=str(pamap2_dir.parent), modalities=["chest_acc"], **W)
    assert parent.train.names == ("chest_acc",)
    assert len(parent.train) == 21  # windows with no chosen sensor present are dropped


def test_pamap2_optional_recordings_and_folds(pamap2_dir: Path) -> None:
    ds = load_dataset("pamap2", path=str(pamap2_dir), include_optional=True, **W)
    assert len(ds.train) == 24 + 5  # Optional/subject101.dat: one 200-row lying segment
    assert pm.loso_folds(pamap2_dir) == ["101", "102"]


@pytest.mark.parametrize(("options", "error", "words"), [
    ({"window": 400, "step": 32}, DataError, "longer than every PAMAP2 activity segment"),
    ({**W, "modalities": ["hand_mag"]}, UsageError, "choose from"),
    ({**W, "test_subjects": [107]}, DataError, "known: 101, 102"),
    ({"window": 0, "step": 1}, UsageError, "positive integers"),
])
def test_pamap2_option_errors(pamap2_dir: Path, options: dict, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        load_dataset("pamap2", path=str(pamap2_dir), **options)


def test_pamap2_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a folder"):
        load_dataset("pamap2", path=str(tmp_path / "nope"))
    with pytest.raises(DataError, match="no subject"):
        load_dataset("pamap2", path=str(tmp_path))
    write_pamap2(tmp_path, {101: pamap2_rows([(1, 100)])})
    with pytest.raises(DataError, match="Optional"):
        load_dataset("pamap2", path=str(tmp_path), include_optional=True, window=32, step=16)
    write_pamap2_file(tmp_path / "bad" / "subject101.dat", pamap2_rows([(1, 100)])[:, :53])
    with pytest.raises(DataError, match="has 53 columns, expected 54"):
        load_dataset("pamap2", path=str(tmp_path / "bad"))


# ============================================================================ WESAD

LABELS = [(0, 350), (1, 1400), (2, 1050), (5, 350), (3, 700), (4, 700)]  # 0 and 5 dropped


@pytest.fixture(scope="module")
def wesad_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wesad")
    return write_wesad(root, {f"S{i}": wesad_subject(LABELS, subject=f"S{i}", seed=i)
                              for i in (2, 3, 10)})


def test_wesad_shapes_labels_and_subject_split(wesad_dir: Path) -> None:
    ds = load_dataset("wesad", path=str(wesad_dir.parent), window=350, step=175)
    assert ds.train.names == ("ecg", "emg", "eda") and ds.train.classes == ws.CLASSES
    assert set(ds.test.subjects) == {"S10"} and set(ds.train.subjects) == {"S2", "S3"}
    assert len(ds.test) == 7 + 5 + 3 + 3 and len(ds.train) == 2 * len(ds.test)
    assert ds.test.data["ecg"].shape == (18, 1, 350)
    # ECG (chest key #1) = label + 0.1 in the fixture; class index = WESAD label - 1
    assert np.allclose(ds.test.data["ecg"][:, 0].mean(1), ds.test.labels + 1.1, atol=0.01)
    held = load_dataset("wesad", path=str(wesad_dir), window=350, step=175, test_subjects=[2],
                        modalities=("acc", "resp"))
    assert set(held.test.subjects) == {"S2"} and held.test.data["acc"].shape[1] == 3


def test_wesad_resampling_scipy_and_numpy_fallback(wesad_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ds = load_dataset("wesad", path=str(wesad_dir), resample_hz=100, window=50, step=25)
    assert ds.test.spec("ecg").sample_rate_hz == 100 and ds.test.data["eda"].shape == (18, 1, 50)
    assert np.allclose(ds.test.data["ecg"][:, 0].mean(1), ds.test.labels + 1.1, atol=0.02)
    t = np.arange(7000) / 700
    x = np.sin(2 * np.pi * 1.5 * t)[:, None]
    fast = ws.resample(x, from_hz=700, to_hz=64)
    monkeypatch.setattr(signal, "_HAVE_SCIPY", False)
    slow = ws.resample(x, from_hz=700, to_hz=64)
    assert fast.shape == slow.shape == (640, 1)
    assert np.abs(fast - slow)[10:-10].max() < 0.05
    assert ws.resample(np.ones(7), from_hz=1, to_hz=100).shape == (700,)


def test_wesad_errors(wesad_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="choose from: ecg, emg, eda, temp, resp, acc"):
        load_dataset("wesad", path=str(wesad_dir), modalities=["bvp"])
    with pytest.raises(DataError, match="longer than every labelled WESAD segment"):
        load_dataset("wesad", path=str(wesad_dir), window=5000)
    with pytest.raises(DataError, match="no S<n>/S<n>.pkl"):
        load_dataset("wesad", path=str(tmp_path))
    write_wesad(tmp_path / "a", {"S2": wesad_subject(LABELS, subject="S2", drop=["EMG"]),
                                 "S3": wesad_subject(LABELS, subject="S3", seed=1)})
    with pytest.raises(DataError, match="chest signal 'EMG' is missing"):
        load_dataset("wesad", path=str(tmp_path / "a"), strict_sensors=True)
    ds = load_dataset("wesad", path=str(tmp_path / "a"))  # the missing signal is absent there
    assert not ds.train.present["emg"].any() and ds.train.present["ecg"].all()
    assert ds.test.present["emg"].all() and ds.train.meta["absent_windows"]["emg"]["S2"] > 0
    (tmp_path / "b" / "S4").mkdir(parents=True)
    (tmp_path / "b" / "S4" / "S4.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataError, match="not a WESAD subject pickle"):
        load_dataset("wesad", path=str(tmp_path / "b"))


# ============================================================================ Sleep-EDF

HYP_4001 = [(0, 60, "Sleep stage W"), (60, 30, "Sleep stage 1"), (90, 30, "Sleep stage 2"),
            (120, 30, "Sleep stage 3"), (150, 30, "Sleep stage 4"), (180, 30, "Sleep stage R"),
            (210, 30, "Sleep stage ?"), (240, 30, "Movement time"), (270, 60, "Sleep stage W")]
ST_SIGNALS = [("EEG Fpz-Cz", 100), ("EEG Pz-Oz", 100), ("EOG horizontal", 100),
              ("EMG submental", 100)]


@pytest.fixture(scope="module")
def sleep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import datetime as dt

    pytest.importorskip("pyedflib")
    root = tmp_path_factory.mktemp("sleep")
    sc, st = root / "sleep-cassette", root / "sleep-telemetry"
    write_psg(sc / "SC4001E0-PSG.edf", seconds=300)
    write_hypnogram(sc / "SC4001EC-Hypnogram.edf", HYP_4001)
    write_psg(sc / "SC4002E0-PSG.edf", seconds=120, seed=1)  # same subject, second night
    write_hypnogram(sc / "SC4002EC-Hypnogram.edf", [(0, 120, "Sleep stage 2")])
    write_psg(sc / "SC4011E0-PSG.edf", seconds=120, seed=2)  # hypnogram starts 30 s later
    write_hypnogram(sc / "SC4011EH-Hypnogram.edf", [(0, 60, "Sleep stage 3")],
                    start=START + dt.timedelta(seconds=30))
    write_psg(st / "ST7011J0-PSG.edf", seconds=90, signals=ST_SIGNALS, seed=3)
    write_hypnogram(st / "ST7011JP-Hypnogram.edf", [(0, 90, "Sleep stage R")])
    return root


def test_sleepedf_epochs_labels_and_subjects(sleep_dir: Path) -> None:
    ds = load_dataset("sleepedf", path=str(sleep_dir))
    names = ("eeg_fpz_cz", "eeg_pz_oz", "eog_horizontal", "emg_submental")
    assert ds.train.names == names and ds.train.classes == ("W", "N1", "N2", "N3", "REM")
    assert all(ds.train.data[n].shape[1:] == (1, 3000) for n in names)
    assert set(ds.test.subjects) == {"ST01"}  # last 20% of SC00, SC01, ST01
    assert set(ds.train.subjects) == {"SC00", "SC01"} and len(ds.test) == 3
    sc00 = ds.train.labels[ds.train.subjects == "SC00"]
    assert sc00.tolist() == [0, 0, 1, 2, 3, 3, 4, 0] + [2] * 4  # ?/movement dropped; 3+4 = N3
    assert ds.train.meta["epochs_past_end_dropped"] == 1
    assert ds.train.meta["resampled"] == {"EMG submental": "1 Hz resampled to 100 Hz"}
    onset = ds.train.data["eeg_fpz_cz"][:, 0, 0]  # channel 0 is a ramp of the time in seconds
    assert np.allclose(onset[:8], [0, 30, 60, 90, 120, 150, 180, 270], atol=0.05)
    assert np.allclose(onset[ds.train.subjects == "SC01"], [30, 60], atol=0.05)  # start offset
    emg = ds.train.data["emg_submental"][:, 0]
    assert np.allclose(emg.mean(1), 40, atol=1.0)  # 1 Hz channel #4 upsampled to 100 Hz


def test_sleepedf_options_and_errors(sleep_dir: Path, tmp_path: Path) -> None:
    ds = load_dataset("sleepedf", path=str(sleep_dir), channels=["EEG Fpz-Cz"],
                      test_subjects=["SC01"])
    assert ds.train.names == ("eeg_fpz_cz",) and set(ds.test.subjects) == {"SC01"}
    with pytest.raises(DataError, match="has no channel 'EEG Fp1'"):
        load_dataset("sleepedf", path=str(sleep_dir), channels=["EEG Fp1"])
    with pytest.raises(DataError, match="no \\*-PSG.edf files"):
        load_dataset("sleepedf", path=str(tmp_path))
    write_psg(tmp_path / "SC4021E0-PSG.edf", seconds=30, signals=SC_SIGNALS[:1])
    with pytest.raises(DataError, match="has no matching SC4021\\*-Hypnogram.edf"):
        load_dataset("sleepedf", path=str(tmp_path))


# ============================================================================ npz formats

def test_npz_round_trip_folder_and_single_file(wesad_dir: Path, tmp_path: Path) -> None:
    ds = load_dataset("wesad", path=str(wesad_dir), window=350, step=175,
                      modalities=("ecg", "acc"))
    for target in (tmp_path / "folder", tmp_path / "one.npz"):
        save_npz(ds.train, ds.test, target)
        back = load_dataset("npz", path=str(target))
        for a, b in ((ds.train, back.train), (ds.test, back.test)):
            assert a.modalities == b.modalities and a.classes == b.classes
            assert all(np.array_equal(a.data[n], b.data[n]) for n in a.names)
            assert np.array_equal(a.labels, b.labels)
            assert a.subjects.astype(str).tolist() == b.subjects.tolist()
            assert b.meta["dataset"] == "wesad"
    only = load_dataset("npz", path=str(tmp_path / "one.npz"), modalities=["acc"])
    assert only.train.names == ("acc",)
    with pytest.raises(UsageError, match="choose from: ecg, acc"):
        load_dataset("npz", path=str(tmp_path / "folder"), modalities=["eda"])


def test_npz_minimal_arrays_and_errors(tmp_path: Path) -> None:
    x, y = np.zeros((4, 2, 8), np.float32), np.array([0, 1, 2, 1])
    np.savez(tmp_path / "min.npz", x_imu=x, y=y, split=np.array(["train"] * 3 + ["test"]))
    ds = load_dataset("npz", path=str(tmp_path / "min.npz"))
    assert ds.train.classes == ("0", "1", "2")
    assert ds.train.spec("imu").channels == ("imu_0", "imu_1")
    np.savez(tmp_path / "nosplit.npz", x_imu=x, y=y)
    with pytest.raises(DataError, match="no 'split' array"):
        load_dataset("npz", path=str(tmp_path / "nosplit.npz"))
    np.savez(tmp_path / "short.npz", x_imu=x[:3], y=y, split=np.array(["train", "test"] * 2))
    with pytest.raises(DataError, match="x_imu disagree with 'split'"):
        load_dataset("npz", path=str(tmp_path / "short.npz"))
    np.savez(tmp_path / "obj.npz", x_imu=x, y=y, subjects=np.array(["a", 1, None, 2], dtype=object),
             split=np.array(["train", "test"] * 2))
    with pytest.raises(DataError, match="without pickle"):
        load_dataset("npz", path=str(tmp_path / "obj.npz"))
    (tmp_path / "dir").mkdir()
    np.savez(tmp_path / "dir" / "train.npz", x_imu=x, y=y)
    with pytest.raises(DataError, match="lacks test.npz"):
        load_dataset("npz", path=str(tmp_path / "dir"))


def _onehot(y: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.float32)[y]


def test_crossl_npz_official_layouts(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pam = tmp_path / "pamap2_hr"
    pam.mkdir()
    for i in range(3):  # per-subject X_<i>.npy (N, T, C) channels-last, one-hot y
        np.save(pam / f"X_{i}.npy", rng.normal(size=(5, 16, 19)).astype(np.float32))
        np.save(pam / f"y_{i}.npy", _onehot(rng.integers(0, 12, 5), 12))
    ds = load_dataset("crossl-npz", path=str(tmp_path), dataset="pamap2_hr")
    assert ds.train.names == (*pm.MODALITY_NAMES, "heart_rate") and set(ds.test.subjects) == {"2"}
    x2 = np.load(pam / "X_2.npy")
    assert np.array_equal(ds.test.data["ankle_acc"], x2[:, :, 6:9].transpose(0, 2, 1))
    assert np.array_equal(ds.test.data["heart_rate"][:, 0], x2[:, :, 18])

    wes = tmp_path / "wesad"
    wes.mkdir()
    for i in (2, 3, 10):  # per-subject halves x_<i>{train,test}.npy, integer labels
        for half in ("train", "test"):
            np.save(wes / f"x_{i}{half}.npy", rng.normal(size=(4, 20, 3)))
            np.save(wes / f"y_{i}{half}.npy", rng.integers(0, 4, (4, 1)))
    ds = load_dataset("crossl-npz", path=str(wes))
    assert set(ds.test.subjects) == {"S10"} and len(ds.test) == 8 and ds.test.classes == ws.CLASSES

    sleep = tmp_path / "sleep"
    sleep.mkdir()
    for name in ("SC4001E0", "SC4002E0", "SC4011E0"):  # one npz per recording
        np.savez(sleep / f"{name}.npz", x=rng.normal(size=(3, 30, 4)), y=rng.integers(0, 5, 3))
    ds = load_dataset("crossl-npz", path=str(sleep), test_subjects=["SC01"])
    assert ds.train.names[0] == "eeg_fpz_cz" and set(ds.train.subjects) == {"SC00"}

    gen = tmp_path / "generic"
    gen.mkdir()
    for split in ("train", "val", "test"):
        np.save(gen / f"X_{split}.npy", rng.normal(size=(3, 10, 5)))
        np.save(gen / f"y_{split}.npy", rng.integers(0, 2, 3))
    ds = load_dataset("crossl-npz", path=str(gen), groups="acc:0-3,ppg:3-5", sample_rate_hz=25)
    assert len(ds.train) == 6 and ds.test.spec("ppg").sample_rate_hz == 25
    with pytest.raises(UsageError, match="already fix the test split"):
        load_dataset("crossl-npz", path=str(gen), groups="acc:0-3", test_subjects=["x"])
    with pytest.raises(DataError, match="need 19 channels but the files"):
        load_dataset("crossl-npz", path=str(gen), dataset="pamap2_hr")
    with pytest.raises(UsageError, match="cannot tell the dataset"):
        load_dataset("crossl-npz", path=str(gen))
    with pytest.raises(UsageError, match="acc:0-3,gyro:3-6"):
        load_dataset("crossl-npz", path=str(gen), groups="acc=0..3")
