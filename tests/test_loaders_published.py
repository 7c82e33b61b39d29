"""The smaller faults of real downloads, each on a fixture in the published layout: HAPT windows
aligned with UCI HAR's, the official HAPT folder spelling, UTF-16 / Git LFS / zip files named as
such, a WISDM row cut mid-number, and partial downloads handled alike by HAPT, WISDM and Daphnet."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fixtures_public import (
    daphnet_rows,
    hapt_experiment,
    write_daphnet,
    write_hapt,
    write_wisdm,
)

from crossl_edge.data import hapt as hp
from crossl_edge.data import load_dataset
from crossl_edge.errors import DataError


def test_hapt_windows_start_where_uci_har_windows_start(tmp_path: Path) -> None:
    acc, gyro, rows = hapt_experiment([(1, 300)])
    write_hapt(tmp_path, {(1, 1): (acc, gyro, rows), (2, 2): hapt_experiment([(4, 200)])})
    ds = load_dataset("hapt", path=str(tmp_path), test_subjects=[2])
    start = rows[0][1]  # labels.txt: 1-based first sample of the segment
    want = hp.preprocess(acc, gyro)["gyro"][start - 2:start - 2 + 128]  # one sample earlier
    assert np.allclose(ds.train.data["gyro"][0], want.T)
    assert len(ds.train) == (300 - 128) // 64 + 1


def test_hapt_official_archive_folder_spelling(tmp_path: Path) -> None:
    raw = write_hapt(tmp_path, {(1, 1): hapt_experiment([(1, 300)]),
                                (2, 2): hapt_experiment([(4, 200)])})
    raw.parent.rename(tmp_path / "HAPT Data Set")  # the official archive's spelling
    ds = load_dataset("hapt", path=str(tmp_path), test_subjects=[2])
    assert len(ds.train) == 3


@pytest.mark.parametrize("kind", ["utf16", "lfs"])
def test_utf16_and_git_lfs_files_are_named_as_such(kind: str, tmp_path: Path) -> None:
    f = write_daphnet(tmp_path, {"S01R01": daphnet_rows([(1, 300)])}) / "S01R01.txt"
    if kind == "utf16":
        f.write_bytes(f.read_text().encode("utf-16"))
        words = "is UTF-16 text; a raw Daphnet file is ASCII"
    else:
        f.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:" + "ab" * 32 +
                     "\nsize 1234567\n")
        words = "is a Git LFS pointer, not the Daphnet data"
    with pytest.raises(DataError) as e:
        load_dataset("daphnet", path=str(tmp_path))
    assert str(e.value).startswith(f"{f} {words}"), str(e.value)


def test_a_zip_that_was_not_unzipped_says_unzip_it(tmp_path: Path) -> None:
    base = write_daphnet(tmp_path / "src", {"S01R01": daphnet_rows([(1, 300)])})
    archive = tmp_path / "dl" / "daphnet.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as z:
        z.write(base / "S01R01.txt", "dataset_fog_release/dataset/S01R01.txt")
    for name, path in [("daphnet", archive), ("daphnet", archive.parent), ("hapt", archive),
                       ("wisdm", archive.parent), ("uci-har", archive.parent),
                       ("pamap2", archive), ("mhealth", archive.parent),
                       ("wesad", archive.parent)]:
        with pytest.raises(DataError, match="unzip it") as e:
            load_dataset(name, path=str(path))
        assert "\n" not in str(e.value), (name, str(e.value))


def test_wisdm_row_cut_inside_its_last_number_is_dropped(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    write_wisdm(tmp_path, {1600: [("A", 12)], 1601: [("A", 12)]})
    f = tmp_path / "wisdm-dataset" / "raw" / "phone" / "accel" / "data_1600_accel_phone.txt"
    lines = f.read_text().splitlines()
    last = lines[-1].split(",")
    lines[-1] = ",".join(last[:-1]) + "," + last[-1][:3]  # "9.80" of "9.800123;"
    f.write_text("\n".join(lines))
    with caplog.at_level(logging.WARNING):
        ds = load_dataset("wisdm", path=str(tmp_path), window=64, step=32,
                          modalities=["phone_accel"], test_subjects=[1601])
    assert "the last line does not end in ';'" in caplog.text and "dropped" in caplog.text
    z = ds.train.data["phone_accel"][:, 2]
    assert np.abs(z - 9.8).max() < 0.01  # no row read as 9.8 cut short or 98
    lines[5] = lines[5].rstrip(";")
    f.write_text("\n".join(lines) + ";\n")
    with pytest.raises(DataError, match="line 6 does not end in ';'"):
        load_dataset("wisdm", path=str(tmp_path), modalities=["phone_accel"])


def test_partial_downloads_warn_alike_and_strict_refuses(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    d = tmp_path / "daphnet"
    write_daphnet(d, {"S01R01": daphnet_rows([(1, 300)]), "S02R01": daphnet_rows([(1, 300)]),
                      "S02R03": daphnet_rows([(1, 300)])})
    w = tmp_path / "wisdm"
    write_wisdm(w, {1600: [("A", 12)], 1601: [("A", 12)], 1602: [("B", 12)]})
    (w / "wisdm-dataset" / "raw" / "watch" / "gyro" / "data_1600_gyro_watch.txt").unlink()
    h = tmp_path / "hapt"
    raw = write_hapt(h, {(1, 1): hapt_experiment([(1, 300)]), (2, 2): hapt_experiment([(4, 200)]),
                         (3, 3): hapt_experiment([(4, 200)])})
    (raw / "acc_exp03_user03.txt").unlink()
    (raw / "gyro_exp03_user03.txt").unlink()
    cases = [("daphnet", d, {}, "lacks S02R02", "S02R02"),
             ("wisdm", w, {"window": 64, "step": 32}, "have no watch_gyro file", "1600"),
             ("hapt", h, {"test_subjects": [2]}, "experiment skipped", "acc_exp03_user03.txt")]
    for name, path, options, logged, named in cases:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            load_dataset(name, path=str(path), **options)
        assert logged in caplog.text and "partial download" in caplog.text, (name, caplog.text)
        if name == "wisdm":  # strict keeps complete subjects only, as before
            strict = load_dataset(name, path=str(path), strict_sensors=True, **options)
            assert strict.train.meta["subjects_skipped"] == ["1600"]
            continue
        with pytest.raises(DataError, match="partial download") as e:
            load_dataset(name, path=str(path), strict_sensors=True, **options)
        assert named in str(e.value) and "--strict-sensors" in str(e.value)
