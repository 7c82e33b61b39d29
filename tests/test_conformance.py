"""The shipped conformance vectors (crossl_edge/wire/conformance/*.json) are current and pass in
Python and in C (gcc, ASan/UBSan); the long-gap ones (3 h, 72 h, 30 days without a beacon,
crystals within +-100 ppm) hold exact arithmetic and grid times to 1 ms (issues 23 and 26)."""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from crossl_edge.wire import conformance_vectors as CV
from crossl_edge.wire import timebase as T

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
NAMES = sorted(CV.VECTORS)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not on PATH")
    exe = tmp_path_factory.mktemp("conf") / "sync_harness"
    subprocess.run(["gcc", *FLAGS, f"-I{ROOT / 'crossl_edge' / 'wire' / 'c'}",
                    str(ROOT / "tests" / "c" / "sync_harness.c"), "-o", str(exe)], check=True)
    return exe


def _command(st: dict[str, Any]) -> tuple[str, str]:
    """The harness command of one step and the line it must print."""
    op, e = st["op"], st.get("expect")
    if op == "reset":
        return "S", "reset"
    if op == "beacon":
        return (f"B {st['epoch']} {st['phone_us']} {st['origin_us']} {st['local_us']}",
                f"{e['result']} {e['rate']} {e['anchor_local']} {e['anchor_phone']}")
    cmd = {"to_phone": f"M {st.get('local_us')}", "to_local": f"L {st.get('phone_us')}",
           "sample_index": f"I {st.get('local_us')} {st.get('rate_mhz')}",
           "sample_due": f"D {st.get('n')} {st.get('rate_mhz')}",
           "grid_push": f"G {st.get('n')} {st.get('window')} {st.get('hop')}"}[op]
    return cmd, str(e)


def run_c(harness: Path, cmds: list[str]) -> list[str]:
    out = subprocess.run([str(harness)], input="\n".join(cmds) + "\n", capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.splitlines()


def test_shipped_vectors_are_current() -> None:
    assert CV.main(["--check"]) == 0


@pytest.mark.parametrize("name", NAMES)
def test_python_passes_vectors(name: str) -> None:
    doc = CV.load(name)
    assert CV.replay(doc) == []
    assert len(doc["steps"]) > 200


@pytest.mark.parametrize("name", NAMES)
def test_c_passes_vectors(harness: Path, name: str) -> None:
    pairs = [_command(st) for st in CV.load(name)["steps"]]
    got = run_c(harness, [c for c, _ in pairs])
    bad = [(i, c, w, g) for i, ((c, w), g) in enumerate(zip(pairs, got, strict=True)) if w != g]
    assert not bad, f"{len(bad)} of {len(pairs)} differ, first: {bad[:3]}"


def _state(beacon: dict[str, Any]) -> T.SyncState:
    e = beacon["expect"]
    return T.SyncState(synced=1, epoch=e["epoch"], rate=e["rate"],
                       origin_us=e["origin_us"], anchor_local=e["anchor_local"],
                       anchor_phone=e["anchor_phone"])


def test_long_gaps_exact_arithmetic_and_grid_to_1ms() -> None:
    """After 3 h, 72 h and 30 days without a beacon: each due time is the exact rational value
    of the node's map (to 1 us), and the sample taken then is on the phone's grid to 1 ms."""
    doc = CV.load("long_gaps")
    steps, worst = doc["steps"], {}
    for c in doc["clocks"]:
        i = c["step"]
        beacon = next(st for st in reversed(steps[:i]) if st["op"] == "beacon")
        s = _state(beacon)
        for q in (steps[i + 5 * k: i + 5 * k + 5] for k in range(len(CV.RATES_MHZ))):
            n, rate, due = q[2]["expect"], q[2]["rate_mhz"], q[3]["expect"]
            assert n > 0 and q[3]["n"] == n
            grid = s.origin_us + Fraction(n * T.PPB, rate)          # phone time of sample n
            exact = s.anchor_local + (T.sample_due_phone(s.origin_us, n, rate) - s.anchor_phone
                                      ) * Fraction(T.SYNC_RATE_ONE, T.SYNC_RATE_ONE + s.rate)
            assert abs((due - exact + 2**63) % 2**64 - 2**63) < 1    # the map, to 1 us
            period = Fraction(T.PPB, rate)
            assert 0 < q[4]["expect"] - due <= period * Fraction(10001, 10000) + 2
            true_phone = c["phone0"] + Fraction(((due - c["local0"]) % 2**64) * 10**6,
                                                10**6 + c["ppm"])
            err_us = abs(float(true_phone - grid))
            worst[(c["ppm"], c["gap_us"])] = max(worst.get((c["ppm"], c["gap_us"]), 0), err_us)
    assert len(worst) == 15
    assert all(err <= 1000 for err in worst.values()), worst
    print("\nworst grid error (us) by (ppm, gap):", {k: round(v, 1) for k, v in worst.items()})


def test_c_sampling_times_through_30_days_match_python(harness: Path) -> None:
    """The issue-23 probe: sync, then due times every few hours for 30 days (and far beyond):
    C equals Python, and the grid never steps backwards."""
    rec = CV.Recorder()
    for ppm in (-100, 100):
        clk = CV.Clock(ppm, 2**63 + 12345, 1_000_000)
        rec.reset()
        CV._sync(rec, clk, __import__("random").Random(ppm), start=1_000_000, seconds=80,
                 epoch=1, origin=1_000_000, jitter_us=0, rate=10_000, query_every=0)
        prev = None
        for h in [*range(0, 30 * 24 + 1, 7), 10**5, 10**7]:
            n = h * 36_000                                          # 10 Hz grid, h hours on
            due = T.sample_due_local(rec.s, n, 10_000)
            rec.steps.append({"op": "sample_due", "n": n, "rate_mhz": 10_000, "expect": due})
            if prev is not None:
                assert 0 < (due - prev) % 2**64 < 2**63
            prev = due
    pairs = [_command(st) for st in rec.steps]
    assert run_c(harness, [c for c, _ in pairs]) == [w for _, w in pairs]
