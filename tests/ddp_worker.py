"""Run by tests/test_ddp.py under torchrun: train a tiny run and report what this rank saw."""

from __future__ import annotations

import hashlib
import json
import os
import sys

from crossl_edge import checkpoint
from crossl_edge.train import loop
from crossl_edge.train import run as run_mod
from crossl_edge.train.config import TrainConfig

out_dir, report_dir = sys.argv[1], sys.argv[2]
rank = int(os.environ["RANK"])
seen: list[list[int]] = []
saves: list[str] = []
_take, _save = loop.Tensors.take, checkpoint.save


def take(self: loop.Tensors, idx):  # spy: records the indices this rank trains on, then takes
    seen.append([int(i) for i in idx])
    return _take(self, idx)


def save(path, state):  # spy: records each checkpoint write this rank makes, then writes it
    saves.append(str(path))
    return _save(path, state)


loop.Tensors.take = take  # type: ignore[method-assign]
checkpoint.save = save
cfg = TrainConfig(encoder="edge", mode="fine", pretrain_epochs=2, epochs=2, patience=5,
                  batch_size=4, seed=0, device="cpu")
result = run_mod.train_run(cfg, out_dir)
digest = hashlib.sha256()
for key, value in sorted(result.model.state_dict().items()):
    digest.update(key.encode() + value.detach().cpu().numpy().tobytes())
with open(os.path.join(report_dir, f"rank{rank}.json"), "w") as f:
    json.dump({"seen": seen, "saves": saves, "world": int(os.environ["WORLD_SIZE"]),
               "weights": digest.hexdigest(), "history": result.history}, f)
