"""Training throughput (windows/s) for CroSSL pretraining and fine-tuning steps, CPU and CUDA.

Usage: python -m benchmarks.train_throughput [--seconds 3] [--batch-sizes 8,64] [--device auto]
       [--precisions auto|bf16,fp32] [--out DIR]
Real BasicMotions windows (normalized) are tiled to the batch size; timing is steady state after
warm-up, with CUDA synchronised. Precision ``auto`` is what `crossl-edge train` uses (bf16 autocast
on CUDA, float32 on the CPU); ``bf16,fp32`` measures both through the same autocast helper.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import save
from crossl_edge.data import Normalizer, load_dataset
from crossl_edge.model.crossl import CroSSL, ModalityShape, ModelConfig
from crossl_edge.train.loop import autocast


def _batch(ds, n: int, device: torch.device) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    norm = Normalizer.fit(ds.train)
    w = norm.transform(ds.train)
    idx = np.resize(np.arange(len(w)), n)
    return (
        {k: torch.from_numpy(v[idx]).to(device) for k, v in w.data.items()},
        torch.from_numpy(w.labels[idx]).to(device),
    )


def measure(
    *, encoder: str, phase: str, batch: int, device: torch.device, seconds: float,
    precision: str = "auto",
) -> dict:
    ds = load_dataset("basicmotions")
    shapes = tuple(ModalityShape(m.name, m.n_channels, 100) for m in ds.train.modalities)
    torch.manual_seed(0)
    model = CroSSL(ModelConfig(shapes, 4, encoder=encoder)).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    inputs, labels = _batch(ds, batch, device)
    gen = torch.Generator().manual_seed(0)
    def step() -> None:
        with autocast(device, precision):
            if phase == "pretrain":
                loss, _ = model.ssl_loss(inputs, generator=gen)
            else:
                loss = F.cross_entropy(model(inputs).float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(5):
        step()
    sync()
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or steps < 10:
        step()
        steps += 1
    sync()
    elapsed = time.perf_counter() - t0
    return {
        "encoder": encoder,
        "phase": phase,
        "batch": batch,
        "device": str(device),
        "dtype": "bf16-autocast" if _bf16(device, precision) else "float32",
        "threads": torch.get_num_threads(),
        "steps": steps,
        "seconds": elapsed,
        "windows_per_s": steps * batch / elapsed,
    }


def _bf16(device: torch.device, precision: str) -> bool:
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--batch-sizes", default="8,64")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precisions", default="auto", help="auto, or e.g. bf16,fp32.")
    p.add_argument("--name", default="train_throughput")
    p.add_argument("--out", type=Path, default=None, help="Results folder (default results/).")
    args = p.parse_args()
    devices = [torch.device("cpu")]
    if args.device in ("auto", "cuda") and torch.cuda.is_available():
        devices = [torch.device("cuda")] + ([] if args.device == "cuda" else devices)
    elif args.device == "cuda":
        raise SystemExit("error: --device cuda but no CUDA device is visible; use --device cpu.")
    rows = []
    for device in devices:
        for encoder in ("crossl", "edge"):
            for phase in ("pretrain", "finetune"):
                for batch in (int(b) for b in args.batch_sizes.split(",")):
                    for precision in args.precisions.split(","):
                        r = measure(encoder=encoder, phase=phase, batch=batch, device=device,
                                    seconds=args.seconds, precision=precision)
                        rows.append(r)
                        print(
                            f"{device.type:5} {encoder:7} {phase:9} batch {batch:4} "
                            f"{r['dtype']:13}: {r['windows_per_s']:9.0f} windows/s"
                        )
    path = save(args.name, {"window": "BasicMotions acc(3x100) + gyro(3x100)", "rows": rows},
                out=args.out)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
