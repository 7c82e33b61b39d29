"""Fault sweep, inputs: every npz goes through one checked reader (train, evaluate, simulate,
bench), an inconsistent run is refused, and bad options end in one `error:` line, no traceback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from crossl_edge.data.npz import read_npz, save_npz
from crossl_edge.data.windows import ModalitySpec, Windows
from crossl_edge.errors import DataError


def _windows(n: int, *, t: int = 32) -> Windows:
    rng = np.random.default_rng(0)
    return Windows((ModalitySpec("acc", ("x", "y", "z"), 50.0),),
                   {"acc": rng.normal(size=(n, 3, t)).astype(np.float32)},
                   np.arange(n) % 2, np.array(["s"] * n), ("a", "b"))


@pytest.fixture(scope="module")
def npz_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run trained on our npz format (windows of 32 samples)."""
    from crossl_edge.train.config import TrainConfig
    from crossl_edge.train.run import train_run

    root = tmp_path_factory.mktemp("npzrun")
    save_npz(_windows(24), _windows(8), root / "d")
    cfg = TrainConfig(dataset="npz", data_path=str(root / "d"), encoder="edge", epochs=1,
                      pretrain_epochs=1, device="cpu")
    train_run(cfg, root / "run")
    return root / "run"


def _bad_files(d: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, words the error must contain)."""
    good = {"x_acc": np.zeros((4, 3, 8), np.float32), "y": np.array([0, 1, 0, 1])}
    np.savez(d / "good.npz", **good)
    raw = (d / "good.npz").read_bytes()
    cases: dict[str, tuple[dict[str, object] | bytes, str]] = {
        "truncated": (raw[: len(raw) // 2], "not an .npz archive"),
        "random bytes": (np.random.default_rng(0).bytes(2000), "not an .npz archive"),
        "empty": (b"", "is empty"),
        "object array": ({**good, "subjects": np.array([{"a": 1}] * 4, dtype=object)},
                         "object arrays"),
        "nan": ({**good, "x_acc": np.full((4, 3, 8), np.nan, np.float32)}, "NaN or inf"),
        "inf": ({**good, "x_acc": np.full((4, 3, 8), np.inf, np.float32)}, "NaN or inf"),
        "complex": ({**good, "x_acc": np.ones((4, 3, 8), np.complex64)}, "complex"),
        "float labels": ({**good, "y": np.array([0.0, 1.5, 0.0, 1.0])}, "integer"),
        "slash in a name": ({"x_acc/left": good["x_acc"], "y": good["y"]}, "no '/'"),
    }
    out = {}
    for name, (content, words) in cases.items():
        f = d / f"{name.replace(' ', '_')}.npz"
        if isinstance(content, bytes):
            f.write_bytes(content)
        else:
            np.savez(f, **content)  # type: ignore[arg-type]
        out[name] = (f, words)
    return out


def test_checked_reader_names_the_file_in_one_sentence(tmp_path: Path) -> None:
    for name, (f, words) in _bad_files(tmp_path).items():
        with pytest.raises(DataError) as e:
            read_npz(f)
        msg = str(e.value)
        assert words in msg and str(f) in msg and "\n" not in msg, (name, msg)
    assert set(read_npz(tmp_path / "good.npz")) == {"x_acc", "y"}


def test_label_out_of_range_names_the_file(tmp_path: Path) -> None:
    from crossl_edge.data.registry import load_dataset

    x = np.zeros((4, 3, 8), np.float32)
    np.savez(tmp_path / "d.npz", x_acc=x, y=[0, 1, 5, 1], classes=np.asarray(["a", "b"]),
             split=np.asarray(["train", "train", "test", "test"]))
    with pytest.raises(DataError, match=r"d\.npz: 'y' holds class index 5 but there are 2"):
        load_dataset("npz", path=str(tmp_path / "d.npz"))


@pytest.mark.parametrize("name", ["truncated", "random bytes", "empty", "object array", "nan",
                                  "complex", "float labels", "slash in a name"])
def test_bad_npz_is_one_line_in_train_and_simulate(name: str, tmp_path: Path,
                                                   tiny_bundle: Path,
                                                   cli_error: Callable) -> None:
    f, words = _bad_files(tmp_path)[name]
    d = tmp_path / "split"
    d.mkdir()
    shutil.copy(f, d / "train.npz")
    shutil.copy(f, d / "test.npz")
    code, line = cli_error("train", "--out", tmp_path / "run", "--dataset", "npz", "--data", d)
    assert code == 2 and words in line and "train.npz" in line
    assert not (tmp_path / "run").exists()
    code, line = cli_error("simulate", tiny_bundle, "--data", f)
    assert code == 2 and words in line and f.name in line


def test_bad_npz_in_evaluate_and_empty_samples_in_bench(npz_run: Path, tmp_path: Path,
                                                        bundle_copy: Callable,
                                                        cli_error: Callable) -> None:
    bad = _bad_files(tmp_path)
    d = tmp_path / "d"
    d.mkdir()
    shutil.copy(bad["truncated"][0], d / "train.npz")
    shutil.copy(bad["truncated"][0], d / "test.npz")
    code, line = cli_error("evaluate", npz_run, "--data", d)
    assert code == 2 and "not an .npz archive" in line
    b = bundle_copy("b")
    (b / "samples.npz").write_bytes(b"")                       # was: "aborted.", exit 130
    from crossl_edge.samples import load_samples
    with pytest.raises(DataError, match="is empty"):
        load_samples(b / "samples.npz", ["acc"])
    code, line = cli_error("bench", b, "--quick")
    assert code == 1 and "samples.npz" in line                 # its sha256 no longer matches


def test_data_cut_differently_from_the_run_is_refused(npz_run: Path, tmp_path: Path,
                                                      cli_error: Callable) -> None:
    save_npz(_windows(8, t=2), _windows(8, t=2), tmp_path / "short")
    for verb in ("evaluate", "export"):
        extra = ["--out", tmp_path / "b"] if verb == "export" else []
        code, line = cli_error(verb, npz_run, "--data", tmp_path / "short", *extra)
        assert code == 2 and "(3, 2)" in line and "(3, 32)" in line
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("edit, words", [
    (lambda m: m.pop("classes"), "inconsistent"),
    (lambda m: m["modalities"][0].pop("window"), "inconsistent"),
    (lambda m: m["normalization"]["acc"]["std"].pop(), "inconsistent"),
    (lambda m: m.update(modalities={"acc": 1}), "inconsistent"),
])
def test_inconsistent_run_json_is_one_line(npz_run: Path, tmp_path: Path, edit: Callable,
                                           words: str, cli_error: Callable) -> None:
    run = Path(shutil.copytree(npz_run, tmp_path / "run"))
    meta = json.loads((run / "run.json").read_text())
    edit(meta)
    (run / "run.json").write_text(json.dumps(meta))
    code, line = cli_error("evaluate", run)
    assert code == 2 and words in line and "run.json" in line


def test_model_from_another_run_is_refused(npz_run: Path, tiny_edge_run: Path, tmp_path: Path,
                                           cli_error: Callable) -> None:
    run = Path(shutil.copytree(npz_run, tmp_path / "run"))
    shutil.copy(tiny_edge_run / "model.pt", run / "model.pt")
    code, line = cli_error("evaluate", run)
    assert code == 2 and "belongs to another run" in line


@pytest.mark.parametrize("args, words", [
    (["serve", "{b}", "--replay", "{cap}", "--deadline", "nan"], "--deadline must be"),
    (["serve", "{b}", "--replay", "{cap}", "--deadline", "inf"], "--deadline must be"),
    (["simulate", "{b}", "--deadline", "nan"], "--deadline must be"),
    (["simulate", "{b}", "--deadline", "inf"], "--deadline must be"),
    (["simulate", "{b}", "--outage", "gyro:0.6-0.2"], "must run forwards"),
    (["simulate", "{b}", "--loss", ""], "--loss needs at least one value"),
    (["simulate", "{b}", "--loss", "0,nan"], "--loss values must be finite"),
    (["simulate", "{b}", "--jitter", "inf"], "--jitter values must be finite"),
    (["export", "{run}", "--out", "{tmp}/b", "--calibration-windows", "2"], "not in 4.."),
])
def test_bad_options_are_one_line_exit_2(args: list[str], words: str, tiny_bundle: Path,
                                         tiny_edge_run: Path, tmp_path: Path,
                                         cli_error: Callable) -> None:
    from crossl_edge.runtime.transports import CaptureWriter

    CaptureWriter(tmp_path / "c.cap").close()
    fill = {"b": tiny_bundle, "cap": tmp_path / "c.cap", "run": tiny_edge_run, "tmp": tmp_path}
    code, line = cli_error(*[a.format(**fill) for a in args])
    assert code == 2 and words in line
