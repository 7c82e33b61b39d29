"""Fault sweep, outputs: no verb destroys what the user gave it. An --out that is, contains or lies
inside an input is refused; an existing folder is replaced only when its marker says it is an
earlier output of the same kind; leftovers of killed runs are cleaned on the next run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from crossl_edge.errors import UsageError
from crossl_edge.outputs import (
    MARKER,
    clean_stale,
    output_dir,
    output_kind,
    prepare_output,
    write_marker,
)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture
def run_copy(tiny_edge_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_edge_run, tmp_path / "run"))


def test_export_onto_its_run_is_refused(run_copy: Path, cli_error: Callable) -> None:
    before = _tree(run_copy)
    code, line = cli_error("export", run_copy, "--out", run_copy)
    assert code == 2 and "is the input" in line
    code, line = cli_error("export", run_copy, "--out", run_copy / "bundle")
    assert code == 2 and "lies inside the input" in line
    code, line = cli_error("export", run_copy, "--out", run_copy.parent)
    assert code == 2 and "contains the input" in line
    assert _tree(run_copy) == before


def test_export_into_another_bundle_is_refused(run_copy: Path, bundle_copy: Callable,
                                               cli_error: Callable) -> None:
    other = bundle_copy("other")
    before = _tree(other)
    code, line = cli_error("export", run_copy, "--out", other / "encoders")
    assert code == 2 and "not a crossl-edge output" in line
    code, line = cli_error("export", run_copy, "--out", other, "--data", other / "samples.npz")
    assert code == 2 and "contains the input" in line
    assert _tree(other) == before


def test_firmware_onto_its_bundle_is_refused(bundle_copy: Callable, tmp_path: Path,
                                             cli_error: Callable) -> None:
    b = bundle_copy("b")
    before = _tree(b)
    code, line = cli_error("firmware", b, "--out", b)
    assert code == 2 and "is the input" in line
    code, line = cli_error("firmware", b, "--out", b / "phone")
    assert code == 2 and "lies inside the input" in line
    assert _tree(b) == before


def test_train_overwrite_keeps_a_folder_that_is_not_a_run(tmp_path: Path,
                                                          cli_error: Callable) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    code, line = cli_error("train", "--out", out, "--overwrite", "--epochs", "1",
                           "--pretrain-epochs", "1")
    assert code == 2 and "not a crossl-edge output" in line
    assert (out / "thesis.tex").read_text() == "years of work"


def test_demo_keeps_user_files_in_its_sub_folders(tmp_path: Path, cli_error: Callable) -> None:
    mine = tmp_path / "mine"
    (mine / "run").mkdir(parents=True)
    (mine / "run" / "notes.txt").write_text("keep")
    code, line = cli_error("demo", "--out", mine, "--quick")
    assert code == 2 and "not a crossl-edge output" in line        # not a demo folder
    demo = tmp_path / "demo"
    (demo / "bundle").mkdir(parents=True)
    write_marker(demo, "demo")
    (demo / "bundle" / "data.csv").write_text("keep")
    code, line = cli_error("demo", "--out", demo, "--quick")
    assert code == 2 and "bundle/" in line and "not a crossl-edge output" in line
    assert (mine / "run" / "notes.txt").read_text() == "keep"
    assert (demo / "bundle" / "data.csv").read_text() == "keep"


def test_parity_report_and_file_outputs_never_overwrite_inputs(
        bundle_copy: Callable, tmp_path: Path, cli_error: Callable) -> None:
    b = bundle_copy("b")
    before = _tree(b)
    code, line = cli_error("parity", b, "--report", b / "encoders")
    assert code == 2 and "--report" in line
    code, line = cli_error("simulate", b, "--out", b / "manifest.json")
    assert code == 2 and "lies inside the input" in line
    code, line = cli_error("bench", b, "--quick", "--out", b / "samples.npz")
    assert code == 2 and "lies inside the input" in line
    code, line = cli_error("simulate", b, "--plot", b / "phone" / "phone.tflite")
    assert code == 2 and "--plot" in line
    assert _tree(b) == before


def test_outputs_replace_only_their_own_kind(tmp_path: Path) -> None:
    out = tmp_path / "o"
    with output_dir(out, kind="report") as tmp:
        (tmp / "a.json").write_text("{}")
    assert output_kind(out) == "report" and (out / MARKER).is_file()
    with output_dir(out, kind="report") as tmp:              # an earlier report: replaced
        (tmp / "b.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "b.json"]
    with pytest.raises(UsageError, match="a crossl-edge report output"):
        prepare_output(out, kind="bundle")
    with pytest.raises(UsageError, match="already holds"):
        prepare_output(out, kind="report", replace=False)
    with pytest.raises(UsageError, match="is a file"):
        prepare_output(out / "b.json", kind="report")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prepare_output(empty, kind="bundle") == empty


def test_stale_temp_folders_are_cleaned_on_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    stale = [tmp_path / ".bundle.k3j2.tmp", tmp_path / ".bundle.old"]
    for s in stale:
        (s / "encoders").mkdir(parents=True)
    (tmp_path / ".bundle.x9.tmp.keep").mkdir()                 # not ours: left alone
    (tmp_path / ".other.ab.tmp").mkdir()
    prepare_output(out, kind="bundle")
    assert not any(s.exists() for s in stale)
    assert (tmp_path / ".bundle.x9.tmp.keep").exists() and (tmp_path / ".other.ab.tmp").exists()
    assert clean_stale(out) == []


def test_sigterm_during_export_leaves_no_temp_folder(tiny_edge_run: Path,
                                                     tmp_path: Path) -> None:
    out = tmp_path / "b"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    p = subprocess.Popen([sys.executable, "-m", "crossl_edge.cli", "export", str(tiny_edge_run),
                          "--out", str(out), "--json"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and p.poll() is None:
        if list(tmp_path.glob(".b.*.tmp/encoders/*")):        # export is writing artifacts
            break
        time.sleep(0.05)
    assert p.poll() is None, "export ended before it could be interrupted"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143 and "terminated." in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".b.*"))
