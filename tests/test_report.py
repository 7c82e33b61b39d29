"""The parity report page: verdict and provenance header, per-threshold pass/fail, class names,
per-subset float vs int8, self-contained (inline PNGs, no external resources), and rendered by
a real headless Chromium when it is installed (scripts/report-screenshot.sh).
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
LOOSE = dict(min_cosine=0.9, max_f1_drop=1.0, min_sqnr_db=0.0, max_flip_rate=1.0,
             margin_quantile=1.0)


@pytest.fixture(scope="module")
def parity(tiny_bundle: Path):
    from crossl_edge.export.parity import ParityThresholds, run_parity

    return run_parity(tiny_bundle, thresholds=ParityThresholds(**LOOSE))


def _pngs(page: str) -> list[np.ndarray]:
    from matplotlib.image import imread

    out = []
    for b64 in re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page):
        out.append(imread(io.BytesIO(base64.b64decode(b64)), format="png"))
    return out


def _badges(page: str, kind: str) -> int:
    return page.count(f"<span class='badge {kind}'>")


def test_report_states_verdict_provenance_and_class_names(parity, tiny_bundle: Path,
                                                          tmp_path: Path) -> None:
    from crossl_edge.export.report import checks, write_report
    from crossl_edge.manifest import load_manifest

    m = load_manifest(tiny_bundle)
    page = write_report(parity, tmp_path / "rep", localise=False).read_text()
    assert "<div class='verdict pass'>PASSED</div>" in page
    assert f"{m.fingerprint:08x}" in page and "test split, 40 windows" in page
    assert f"LiteRT {parity.runtimes['ai-edge-litert']}" in page
    assert f"ONNX Runtime {parity.runtimes['onnxruntime']}" in page
    assert "torch " in page and "float PyTorch model of the run" in page
    for name in m.classes:                       # class names in the per-class tables
        assert f"<td>{name}</td>" in page
    for row in parity.subsets:                   # one end-to-end row per subset
        assert f"<td>{' + '.join(row['present'])}</td>" in page
    cks = checks(parity)
    # latent bars: 2 encoders x 3 pipelines x 2 (gated on TFLM and ONNX only); TFLM vs LiteRT
    # per encoder; flip rate, margin rank, F1 drop per subset x gated pipeline (F1 not gated:
    # 40 test windows)
    assert len(cks) == 2 * 3 * 2 + 2 + 3 * 3 * 2
    assert all(c.passed is not False for c in cks)
    assert sum(c.passed is None for c in cks) == 2 * 2 + 3 * 2
    for t in ("mean latent cosine ≥ 0.9", "latent SQNR ≥ 0 dB", "flip rate ≤ 100%",
              "macro-F1 drop ≤ 1 (not gated below 1000 windows)",
              "changed windows among the float model&#x27;s 100% closest calls (rank ≤ 40)",
              "TFLite Micro vs LiteRT ≤ 1 LSB"):
        assert f"<td>{t}</td>" in page
    assert "22 of 22 checks pass" in page and "int8 TFLite Micro (node)" in page
    assert _badges(page, "fail") == 0 and _badges(page, "pass") >= 4 + 4 + 3 + 2
    assert "{'" not in page and "&#x27;min_cosine" not in page   # no Python reprs
    # self-contained: no scripts, stylesheets, fonts or images fetched from anywhere
    assert not re.search(r"<(script|link|iframe)\b", page)
    assert not re.search(r"(src|href)=['\"](?!data:)", page)
    imgs = _pngs(page)
    assert len(imgs) == 3
    for im in imgs:
        h, w = im.shape[:2]
        assert 300 <= w <= 1400 and h >= 150 and im[..., :3].std() > 0.05
    obj = json.loads((tmp_path / "rep" / "parity.json").read_text())
    assert obj["passed"] is True and obj["thresholds"]["min_cosine"] == 0.9


def test_report_marks_each_failed_check(tiny_bundle: Path, tmp_path: Path) -> None:
    from crossl_edge.export.parity import ParityThresholds, run_parity
    from crossl_edge.export.report import checks, write_report

    r = run_parity(tiny_bundle, thresholds=ParityThresholds(**{**LOOSE, "min_sqnr_db": 500.0}))
    page = write_report(r, tmp_path / "rep", localise=False).read_text()
    assert not r.passed and "<div class='verdict fail'>FAILED</div>" in page
    failed = [c for c in checks(r) if c.passed is False]
    assert {c.threshold for c in failed} == {"latent SQNR ≥ 500 dB"} and len(failed) == 4
    assert "18 of 22 checks pass" in page
    # the SQNR threshold row and each encoder x pipeline row carry a FAIL; the rest pass
    assert _badges(page, "fail") == 1 + 4
    for f in r.failures:
        assert f"<li>{html.escape(f)}</li>" in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_report_renders_in_headless_chromium(parity, tmp_path: Path) -> None:
    from matplotlib.image import imread

    from crossl_edge.export.report import write_report

    page = write_report(parity, tmp_path / "rep", localise=False)
    png = tmp_path / "shot.png"
    p = subprocess.run(["bash", str(ROOT / "scripts" / "report-screenshot.sh"), str(page),
                        str(png), "1280", "1400"], capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    im = imread(png)[..., :3]
    assert im.shape[:2] == (1400, 1280)
    # the header's verdict pill (#1a7f37) is drawn, and the page is not blank
    green = np.all(np.abs(im - np.array([0x1A, 0x7F, 0x37]) / 255) < 0.02, axis=-1)
    assert green.sum() > 2000, green.sum()
    assert len(np.unique((im * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50
