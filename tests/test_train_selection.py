"""One modality selection (handed to the loader, stored with the run), the data summary `train`
prints, the dataset list in `train --help` and the README, and `train` without PyTorch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_public import wisdm_lines, write_wisdm, write_wisdm_stream

from crossl_edge.data.registry import available
from crossl_edge.errors import UsageError
from crossl_edge.train.config import TrainConfig
from crossl_edge.train.run import data_summary, prepare_data, with_selection

ROOT = Path(__file__).resolve().parents[1]


def test_modalities_select_before_loading(tmp_path: Path) -> None:
    write_wisdm(tmp_path, {1600: [("A", 12)], 1601: [("B", 12)]})
    for subject in (1602, 1603):  # these subjects have the watch only
        for k, sensor in ((2, "accel"), (3, "gyro")):
            write_wisdm_stream(tmp_path, subject, "watch", sensor,
                               wisdm_lines(subject, [("A", 12)], sensor=k, t0_ns=10**14))
    cfg = TrainConfig(dataset="wisdm", data_path=str(tmp_path), modalities=("watch_accel",
                      "watch_gyro"), data_options={"window": 64, "step": 32})
    assert with_selection(cfg).data_options["modalities"] == ["watch_accel", "watch_gyro"]
    ds = prepare_data(cfg)
    assert set(ds.train.subjects) | set(ds.test.subjects) == {"1600", "1601", "1602", "1603"}
    assert ds.train.complete and ds.test.complete
    assert data_summary(ds).startswith("data: wisdm, 4 subjects, 24 windows (18 train / 6 test)")
    phone = prepare_data(TrainConfig(dataset="wisdm", data_path=str(tmp_path),
                                     data_options={"window": 64, "step": 32}))
    assert "absent: phone_accel in 12 windows, phone_gyro in 12 windows" in data_summary(phone)
    same = TrainConfig(dataset="wisdm", modalities=("watch_accel",),
                       data_options={"modalities": "watch_accel"})
    assert with_selection(same).data_options["modalities"] == ["watch_accel"]
    with pytest.raises(UsageError, match="disagree; give the selection once"):
        with_selection(TrainConfig(dataset="wisdm", modalities=("watch_accel",),
                                   data_options={"modalities": ["phone_accel"]}))
    plain = TrainConfig(modalities=("acc",))  # basicmotions has no loader option: select after
    assert with_selection(plain).data_options == {}
    assert prepare_data(plain).train.names == ("acc",)


def test_help_and_readme_list_every_registered_dataset() -> None:
    out = subprocess.run([sys.executable, "-m", "crossl_edge.cli", "train", "--help"],
                         capture_output=True, text=True, check=True).stdout
    flat = " ".join(out.split())
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Datasets"):readme.index("Loader options go through")]
    rows = set(re.findall(r"^\| `([a-z0-9-]+)`", table, flags=re.M))
    for name in available():
        assert name in flat.replace("- ", "-"), name
        assert name in rows, name
    assert "--strict-sensors" in out


def test_train_without_torch_is_one_sentence(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "from crossl_edge.cli import main\n"
            f"main(['train', '--out', {str(tmp_path / 'run')!r}])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0] == ("error: `crossl-edge train` needs PyTorch, which is not installed; "
                        "install the train extra: pip install 'crossl-edge[train]'.")
