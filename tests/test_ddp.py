"""DDP on the CPU: torchrun launches 2 gloo processes that train one run together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_two_gloo_ranks_disjoint_shards_identical_weights_rank0_writes(tmp_path: Path) -> None:
    out, reports = tmp_path / "run", tmp_path / "reports"
    reports.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent.parent)}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(Path(__file__).with_name("ddp_worker.py")), str(out), str(reports)],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((reports / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    # each step's batch on rank 0 and the same step on rank 1 never share a window
    assert len(r0["seen"]) == len(r1["seen"]) > 0
    for a, b in zip(r0["seen"], r1["seen"], strict=True):
        assert not set(a) & set(b)
    # the union of one epoch's shards covers the training set (32 windows after the val split)
    first_epoch = len(r0["seen"]) // 4  # 2 pretrain + 2 downstream epochs
    covered = {i for step in r0["seen"][:first_epoch] + r1["seen"][:first_epoch] for i in step}
    assert len(covered) == 32
    assert r0["weights"] == r1["weights"]
    assert r0["saves"] and not r1["saves"]
    assert (out / "model.pt").is_file()
    assert json.loads((out / "run.json").read_text())["world_size"] == 2
