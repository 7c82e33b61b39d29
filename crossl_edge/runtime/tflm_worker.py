"""TFLite Micro's Python interpreter in a child process (it can segfault on a too-small arena).

`python -m crossl_edge.runtime.tflm_worker run MODEL ARENA IN.npy OUT.npz [--record]` saves
load time, per-invoke times and outputs; `... probe MODEL ARENA IN.npy [REF.npz]` exits 3 when the
outputs differ from REF's. numpy only here; `tflite_micro` is imported in the child alone.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def spawn(args: list[str], *, timeout: float) -> subprocess.CompletedProcess:
    """Run the worker with ``args`` in a fresh Python process and capture its output."""
    return subprocess.run([sys.executable, "-m", "crossl_edge.runtime.tflm_worker", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def failure_tail(p: subprocess.CompletedProcess) -> str:
    """The last line the worker printed (the reason it failed), or its exit code."""
    return ((p.stdout + p.stderr).strip().splitlines()[-1:] or [f"exit {p.returncode}"])[0]


def main(argv: list[str]) -> int:
    from tflite_micro.python.tflite_micro import runtime

    cmd, model, arena, src = argv[0], Path(argv[1]), int(argv[2]), np.load(argv[3])
    t0 = time.perf_counter()
    it = runtime.Interpreter.from_bytes(model.read_bytes(), arena_size=arena)
    load_s, times, outs = time.perf_counter() - t0, [], []
    for x in src:                                # stateless encoders: one interpreter for all
        t0 = time.perf_counter()
        it.set_input(np.ascontiguousarray(x), 0)
        it.invoke()
        outs.append(np.array(it.get_output(0)))
        times.append(time.perf_counter() - t0)
    if "--record" in argv:
        sys.stdout.flush()
        it.print_allocations()
    out = np.stack(outs)
    if cmd == "run":
        np.savez(argv[4], load_s=load_s, times=np.array(times), outputs=out)
        return 0
    if len(argv) > 4 and not np.array_equal(out, np.load(argv[4])["outputs"]):
        print("output differs from the reference", flush=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
