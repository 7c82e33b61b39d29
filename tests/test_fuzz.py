"""Every libFuzzer target in tests/fuzz/ builds (clang, ASan + UBSan, no recovery), replays its
corpus of seeds and regression inputs, and fuzzes for two seconds without a finding."""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from benchmarks.fuzz import CORPUS, TARGETS, FuzzUnavailable, build, run

SECONDS = 2


@pytest.fixture(scope="module")
def executables() -> dict[str, Path]:
    tmp = Path(tempfile.mkdtemp(prefix="crossl-fuzz-"))
    try:
        with ThreadPoolExecutor(2) as pool:
            return dict(zip(TARGETS, pool.map(lambda t: build(t, tmp), TARGETS), strict=True))
    except FuzzUnavailable as e:
        pytest.skip(f"fuzzing needs clang with libFuzzer: {e}")


def test_every_target_has_a_corpus_in_the_repo() -> None:
    assert len(TARGETS) >= 6
    for t in TARGETS:
        assert any((CORPUS / t).iterdir()), f"{t}: no seed or regression input"


@pytest.mark.parametrize("target", TARGETS)
def test_short_fuzz_run_finds_nothing(executables: dict[str, Path], target: str) -> None:
    r = run(target, executables[target], SECONDS, merge=False)
    assert r["returncode"] == 0 and r["findings"] == 0, r["log_tail"]
    assert r["inputs"] > 1000
