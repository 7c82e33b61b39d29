"""Loaders for UCI HAR, UCI HAPT raw, WISDM 2019 raw, MHEALTH and Daphnet on tiny fixtures written
in the published layouts (fixtures_public.py), their malformed-file errors, and the checks of
loader options against each loader's signature; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fixtures_public import (
    MALFORMED,
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

from crossl_edge.data import hapt as hp
from crossl_edge.data import load_dataset
from crossl_edge.data import wisdm as wd
from crossl_edge.errors import DataError, UsageError

# ============================================================================ UCI HAR

@pytest.fixture(scope="module")
def uci_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_uci_har(tmp_path_factory.mktemp("uci"), UCI_SPLITS)


def test_uci_har_official_split_modalities_and_classes(uci_dir: Path) -> None:
    ds = load_dataset("uci-har", path=str(uci_dir.parent))
    assert ds.train.names == ("body_acc", "gyro", "total_acc")
    assert ds.train.classes[0] == "WALKING" and ds.train.classes[5] == "LAYING"
    assert ds.train.spec("gyro").sample_rate_hz == 50.0
    assert len(ds.train) == 7 and len(ds.test) == 3
    assert set(ds.train.subjects) == {"1", "3"} and set(ds.test.subjects) == {"2"}
    assert ds.test.labels.tolist() == [5, 5, 0] and ds.train.meta["split"].startswith("official")
    # fixture value = activity id + 0.1 * signal file (body_acc, body_gyro, total_acc) + 0.01 * axis
    for k, name in enumerate(ds.train.names):
        x = ds.train.data[name]
        assert x.shape == (7, 3, 128)
        want = ds.train.labels[:, None] + 1 + 0.1 * k + 0.01 * np.arange(3)
        assert np.allclose(x.mean(axis=2), want, atol=1e-3)


def test_uci_har_leave_one_subject_out_and_modality_subset(uci_dir: Path) -> None:
    ds = load_dataset("uci-har", path=str(uci_dir), test_subjects=[3], modalities=["gyro"])
    assert set(ds.test.subjects) == {"3"} and set(ds.train.subjects) == {"1", "2"}
    assert len(ds.train) == 8 and ds.train.names == ("gyro",)


# ============================================================================ HAPT

HAPT_EXPERIMENTS = {  # (experiment, user): segments; users 2 and 4 are UCI HAR test users
    (1, 1): [(1, 400), (7, 200), (4, 300)],
    (2, 2): [(5, 300), (1, 256)],
    (3, 3): [(6, 192)],
    (4, 4): [(2, 128)],
}


@pytest.fixture(scope="module")
def hapt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exps = {k: hapt_experiment(v, seed=i) for i, (k, v) in enumerate(HAPT_EXPERIMENTS.items())}
    acc = exps[(1, 1)][0]
    acc[600, :] = 50.0  # a one-sample spike inside "walking": the median filter removes it
    return write_hapt(tmp_path_factory.mktemp("hapt"), exps)


def test_hapt_windows_split_and_transitions(hapt_dir: Path) -> None:
    ds = load_dataset("hapt", path=str(hapt_dir.parent.parent))
    assert ds.train.names == ("body_acc", "gyro", "total_acc") and len(ds.train.classes) == 6
    # (L - 128) // 64 + 1 windows per segment; the transition (activity 7) is dropped
    assert sorted(ds.train.labels.tolist()) == [0] * 5 + [3] * 3 + [5] * 2
    assert set(ds.test.subjects) == {"2", "4"}  # UCI HAR's official test users that are present
    assert sorted(ds.test.labels.tolist()) == [0] * 3 + [1] + [4] * 3
    both = load_dataset("hapt", path=str(hapt_dir), transitions=True)
    assert len(both.train.classes) == 12 and (both.train.labels == 6).sum() == 2
    loso = load_dataset("hapt", path=str(hapt_dir), test_subjects="3")
    assert set(loso.test.subjects) == {"3"} and len(loso.train) == 8 + 7


def test_hapt_filtering_as_uci_describes(hapt_dir: Path) -> None:
    ds = load_dataset("hapt", path=str(hapt_dir), test_subjects=[4])
    tr = ds.train
    walk = tr.labels == 0
    total, body, gyro = tr.data["total_acc"], tr.data["body_acc"], tr.data["gyro"]
    assert np.abs(total[walk]).max() < 1.2  # the 50 g spike is gone (median + low-pass)
    # gravity (0.3 Hz) stays in total_acc x (1 g) and leaves body_acc x centred on 0
    assert np.allclose(total[:, 0].mean(axis=1), 1.0, atol=0.02)
    assert np.abs(body[:, 0].mean(axis=1)).max() < 0.02
    assert np.ptp(body[:, 0], axis=1).min() > 0.08  # the 2 Hz sway survives the 20 Hz low-pass
    assert np.allclose(gyro[:, 0].mean(axis=1), 0.01 * (tr.labels + 1), atol=2e-3)
    plain = load_dataset("hapt", path=str(hapt_dir), gravity_split=False, test_subjects=[4])
    assert plain.train.names == ("total_acc", "gyro")
    assert np.allclose(plain.train.data["total_acc"], total, atol=1e-6)
    with pytest.raises(UsageError, match="choose from: total_acc, gyro"):
        load_dataset("hapt", path=str(hapt_dir), gravity_split=False, modalities=["body_acc"])


def test_hapt_preprocess_matches_the_published_filter_chain() -> None:
    from scipy.signal import butter, lfilter

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    out = hp.preprocess(x, x)
    b, a = butter(3, 20, fs=50)
    med = np.stack([np.median(np.pad(c, 1)[np.arange(400)[:, None] + np.arange(3)], axis=1)
                    for c in x.T], axis=1)  # 3-point median, zero-padded ends like medfilt
    assert np.allclose(out["total_acc"], lfilter(b, a, med, axis=0))
    assert np.allclose(out["total_acc"] - out["body_acc"],
                       lfilter(*butter(3, 0.3, fs=50), out["total_acc"], axis=0))


# ============================================================================ WISDM

WISDM_SESSIONS = {1600: [("A", 12), ("B", 10)], 1601: [("A", 8), ("S", 9)],
                  1602: [("M", 7)]}


@pytest.fixture(scope="module")
def wisdm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wisdm(tmp_path_factory.mktemp("wisdm"), WISDM_SESSIONS,
                       rates={("watch", "gyro"): 25.0})


def test_wisdm_streams_on_their_own_clocks_on_a_common_grid(wisdm_dir: Path) -> None:
    ds = load_dataset("wisdm", path=str(wisdm_dir), window=64, step=32)
    assert ds.train.names == wd.MODALITY_NAMES and len(ds.train.classes) == 18
    assert ds.train.classes[wd.CODES.index("S")] == "folding_clothes"
    assert set(ds.test.subjects) == {"1602"} and set(ds.train.subjects) == {"1600", "1601"}
    # 20 Hz grid over the streams' overlap (jittered stamps: just under 20 s samples)
    counts = {c: int((ds.train.labels == wd.CODES.index(c)).sum()) for c in "ABS"}
    assert counts == {"A": 6 + 3, "B": 5, "S": 4}  # 12 s + 8 s, 10 s, 9 s
    for split in (ds.train, ds.test):
        for k, name in enumerate(wd.MODALITY_NAMES):
            x = split.data[name]
            assert split.spec(name).sample_rate_hz == 20.0 and x.shape[1:] == (3, 64)
            # y = activity letter index + 0.1 * stream, whatever the stream's own rate
            letters = np.array([ord(wd.CODES[i]) - ord("A") for i in split.labels])
            assert np.allclose(x[:, 1].mean(axis=1), letters + 0.1 * k, atol=1e-3)
        # x = seconds since the stream's session start: every stream is aligned at the start
        ramp = np.stack([split.data[n][:, 0] for n in wd.MODALITY_NAMES])
        assert np.abs(ramp - ramp[0]).max() < 0.06  # within about one 20 Hz sample
        assert np.allclose(np.diff(ramp[0], axis=1), 0.05, atol=0.02)


def test_wisdm_gaps_missing_streams_and_options(wisdm_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "w"
    lines = wisdm_lines(1700, [("A", 12)], sensor=0, t0_ns=10**14)
    write_wisdm_stream(root, 1700, "phone", "accel", lines[:100] + lines[140:])  # a 2 s hole
    write_wisdm_stream(root, 1700, "phone", "gyro", wisdm_lines(1700, [("A", 12)], sensor=1,
                                                                t0_ns=10**14))
    write_wisdm_stream(root, 1701, "phone", "accel", wisdm_lines(1701, [("A", 12)], sensor=0,
                                                                 t0_ns=10**14))
    write_wisdm_stream(root, 1702, "phone", "accel", wisdm_lines(1702, [("B", 12)], sensor=0,
                                                                 t0_ns=10**14))
    write_wisdm_stream(root, 1702, "phone", "gyro", wisdm_lines(1702, [("B", 12)], sensor=1,
                                                                t0_ns=10**14))
    ds = load_dataset("wisdm", path=str(root / "wisdm-dataset" / "raw"), window=64, step=32,
                      modalities=["phone_accel", "phone_gyro"])
    assert ds.train.meta["subjects_skipped"] == [] and len(ds.train) == 6 + 6
    assert ds.train.meta["absent_windows"] == {  # 1700: windows 64-127, 96-159, 128-191
        "phone_accel": {"1700": 3}, "phone_gyro": {"1701": 6}}  # 1701 has no phone gyro file
    assert (ds.train.data["phone_gyro"][ds.train.subjects == "1701"] == 0).all()
    strict = load_dataset("wisdm", path=str(root / "wisdm-dataset" / "raw"), window=64, step=32,
                          modalities=["phone_accel", "phone_gyro"], strict_sensors=True)
    assert strict.train.meta["subjects_skipped"] == ["1701"]  # no phone gyro file
    assert strict.train.meta["dropped_gap_windows"] == 3 and strict.train.complete
    assert len(strict.train) == 6 - 3 and len(strict.test) == 6
    lenient = load_dataset("wisdm", path=str(root), window=64, step=32, max_gap_s=3.0,
                           modalities="phone_accel,phone_gyro", test_subjects=[1702],
                           strict_sensors=True)
    assert lenient.train.meta["dropped_gap_windows"] == 0 and len(lenient.train) == 6
    slow = load_dataset("wisdm", path=str(wisdm_dir), resample_hz=10, window=32, step=16,
                        modalities=["watch_gyro"])
    assert slow.test.spec("watch_gyro").sample_rate_hz == 10.0


# ============================================================================ MHEALTH

MH_SEGMENTS = [(0, 100), (1, 300), (4, 200), (0, 50), (12, 128)]


@pytest.fixture(scope="module")
def mhealth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mhealth(tmp_path_factory.mktemp("mh"), {
        1: mhealth_rows(MH_SEGMENTS, seed=1), 2: mhealth_rows([(3, 256), (0, 9)], seed=2),
        10: mhealth_rows([(11, 192)], seed=3)})


def test_mhealth_modalities_null_dropped_and_split(mhealth_dir: Path) -> None:
    ds = load_dataset("mhealth", path=str(mhealth_dir.parent))
    assert ds.train.names == ("chest_acc", "ecg", "ankle_acc", "ankle_gyro", "arm_acc", "arm_gyro")
    assert ds.train.spec("ecg").channels == ("ecg_lead1", "ecg_lead2")
    assert set(ds.test.subjects) == {"10"}  # subjects sorted numerically, last 20% (at least 1)
    assert sorted(ds.train.labels.tolist()) == [0] * 3 + [2] * 3 + [3] * 2 + [11]
    first = {"chest_acc": 0, "ecg": 3, "ankle_acc": 5, "ankle_gyro": 8, "arm_acc": 14,
             "arm_gyro": 17}
    for name, col in first.items():  # fixture: column c holds label + 0.01 * (c + 1)
        x = ds.train.data[name]
        want = ds.train.labels[:, None] + 1 + 0.01 * (col + 1 + np.arange(x.shape[1]))
        assert np.allclose(x.mean(axis=2), want, atol=1e-3)
    mag = load_dataset("mhealth", path=str(mhealth_dir), modalities=["arm_mag"],
                       test_subjects=["1"], window=64, step=64)
    assert mag.train.names == ("arm_mag",) and set(mag.test.subjects) == {"1"}
    assert np.allclose(mag.test.data["arm_mag"][:, 0].mean(1), mag.test.labels + 1.21, atol=1e-3)


# ============================================================================ Daphnet

@pytest.fixture(scope="module")
def daphnet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gap = daphnet_rows([(1, 300)], seed=4)
    gap[150:, 0] += 2000  # a 2 s hole in the time column: no window crosses it
    return write_daphnet(tmp_path_factory.mktemp("daphnet"), {
        "S01R01": daphnet_rows([(0, 100), (1, 300), (2, 200)], seed=1),
        "S01R02": daphnet_rows([(1, 200)], seed=2),
        "S02R01": gap,
        "S10R01": daphnet_rows([(1, 128), (2, 128), (0, 20)], seed=3)})


def test_daphnet_runs_annotations_and_time_gaps(daphnet_dir: Path) -> None:
    ds = load_dataset("daphnet", path=str(daphnet_dir.parent))
    assert ds.train.names == ("ankle_acc", "thigh_acc", "trunk_acc")
    assert ds.train.classes == ("no_freeze", "freeze")
    assert ds.train.spec("trunk_acc").channels == ("trunk_acc_fwd", "trunk_acc_vert",
                                                   "trunk_acc_lat")
    assert set(ds.test.subjects) == {"S10"} and len(ds.test) == 2
    s01, s02 = ds.train.subjects == "S01", ds.train.subjects == "S02"
    assert sorted(ds.train.labels[s01].tolist()) == [0] * (3 + 2) + [1] * 2
    assert s02.sum() == 2  # 150 + 150 rows around the hole: one window each side
    # fixture: acc column c (1..9) = 1000 * annotation + 10 * c (+ 5 +- 2)
    ankle = ds.train.data["ankle_acc"].mean(axis=2)
    assert np.allclose(ankle, 1000 * (ds.train.labels[:, None] + 1) + [15, 25, 35], atol=3)
    held = load_dataset("daphnet", path=str(daphnet_dir), test_subjects=[1],
                        modalities=["trunk_acc"])
    assert set(held.test.subjects) == {"S01"} and held.test.names == ("trunk_acc",)


# ============================================================================ malformed files



@pytest.mark.parametrize(("name", "make"), MALFORMED,
                         ids=[f"{n}-{m.__name__.lstrip('_')}" for n, m in MALFORMED])
def test_malformed_file_is_one_sentence_naming_it(name: str, make: Callable,
                                                  tmp_path: Path) -> None:
    bad, words = make(tmp_path)
    options = {"uci-har": {}, "wisdm": {"window": 64, "step": 32, "modalities": "phone_accel"}
               }.get(name, {"window": 64, "step": 32})
    with pytest.raises(DataError) as e:  # strict: a stuck sensor is refused, as it used to be
        load_dataset(name, path=str(tmp_path), strict_sensors=True, **options)
    text = str(e.value)
    assert str(bad) in text and words in text, text
    assert "\n" not in text and text.endswith(".")


RANDOM_BYTES = [("uci-har", "UCI HAR Dataset/train/Inertial Signals/body_acc_x_train.txt", {}),
                ("hapt", "RawData/labels.txt", {}), ("mhealth", "mHealth_subject1.log", {}),
                ("daphnet", "S01R01.txt", {}),
                ("wisdm", "raw/phone/accel/data_1600_accel_phone.txt",
                 {"modalities": ["phone_accel"]}),
                ("pamap2", "Protocol/subject101.dat", {})]


@pytest.mark.parametrize(("name", "rel", "options"), RANDOM_BYTES,
                         ids=[n for n, _, _ in RANDOM_BYTES])
def test_random_bytes_are_a_data_error(name: str, rel: str, options: dict,
                                       tmp_path: Path) -> None:
    if name == "uci-har":
        write_uci_har(tmp_path, UCI_SPLITS)
    f = tmp_path / rel
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(DataError) as e:
        load_dataset(name, path=str(tmp_path), **options)
    assert str(e.value).startswith(f"{f} is not a text file (binary data)"), str(e.value)


# ============================================================================ loader options

@pytest.mark.parametrize(("name", "options", "words"), [
    ("pamap2", {"windw": 64}, "unknown option 'windw' for dataset 'pamap2'; valid options: "
                              "window, step, test_subjects, heart_rate"),
    ("npz", {"window": 64}, "valid options: modalities"),
    ("basicmotions", {"window": 64}, "valid options: none"),
    ("wisdm", {"resample_hz": float("nan")}, "resample_hz=nan is not a finite number"),
    ("mhealth", {"window": float("inf")}, "window=inf is not a finite number"),
    ("daphnet", {"test_subjects": [1, float("nan")]}, "is not a finite number"),
    ("hapt", {"transitions": "yes"}, "transitions='yes' for dataset 'hapt' has the wrong type"),
    ("uci-har", {"modalities": 3.5}, "has the wrong type; expected none or seq"),
    ("hapt", {"window": 12.5}, "expected int"),
    ("mhealth", {"test_fraction": 1.5}, "test_fraction=1.5 must be a number between 0 and 1"),
    ("wisdm", {"max_gap_s": 0.01}, "max_gap_s=0.01 must be a finite number >= 0.05"),
    ("wisdm", {"resample_hz": -20}, "resample_hz=-20 must be a finite number"),
    ("pamap2", {"max_gap": -1}, "max_gap=-1 must be an integer >= 0"),
    ("pamap2", {"resample_hz": 0}, "resample_hz=0 must be a finite number"),
    ("daphnet", {"window": 0}, "positive integers"),
])
def test_loader_options_checked_against_the_signature(name: str, options: dict, words: str,
                                                      tmp_path: Path) -> None:
    write_daphnet(tmp_path, {"S01R01": daphnet_rows([(1, 300)])})  # a path for every loader
    with pytest.raises(UsageError) as e:
        load_dataset(name, path=str(tmp_path), **options)
    assert words in str(e.value), str(e.value)


def test_cli_errors_are_one_line_with_exit_2(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from crossl_edge.cli import main

    base = write_daphnet(tmp_path, {"S01R01": daphnet_rows([(1, 300)])[:, :10]})
    common = ["train", "--out", str(tmp_path / "run"), "--dataset", "daphnet", "--data", str(base)]
    for args, words in [((), "S01R01.txt has 10 columns, expected 11"),
                        (("--data-option", "windoww=64"), "unknown option 'windoww'"),
                        (("--data-option", "test_fraction=NaN"), "is not a finite number")]:
        with pytest.raises(SystemExit) as e:
            main([*common, *args])
        err = capsys.readouterr().err
        assert e.value.code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err
    assert not (tmp_path / "run").exists()


def test_cli_trains_end_to_end_on_a_uci_har_fixture(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import itertools
    import json

    from crossl_edge.cli import main

    data = tmp_path / "data"  # a run may not be written inside its input folder
    write_uci_har(data, {"train": {1: [(1, 4), (4, 4)], 3: [(2, 4), (6, 4)]},
                         "test": {2: [(1, 2), (2, 2), (4, 2), (6, 2)]}})
    with pytest.raises(SystemExit) as e:
        main(["train", "--dataset", "uci-har", "--data", str(data), "--out",
              str(tmp_path / "run"), "--pretrain-epochs", "1", "--epochs", "1", "--encoder",
              "edge", "--device", "cpu", "--json"])
    out = capsys.readouterr()
    assert e.value.code == 0, out.err
    metrics = json.loads(out.out)
    assert metrics["all"]["n"] == 8 and metrics["classes"][5] == "LAYING"
    names = ("body_acc", "gyro", "total_acc")
    subsets = {tuple(s["present"]) for s in metrics["subsets"]}
    assert subsets == {c for k in (1, 2, 3) for c in itertools.combinations(names, k)}
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["dataset"] == "uci-har"
