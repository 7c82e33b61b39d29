"""Bench support: which runtimes are present, the machine record, RSS probes, tables, compare, plot.

Tables and `compare` work on `BenchResult.to_json()` dicts, so two machines' files can be diffed.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crossl_edge.errors import UsageError
from crossl_edge.runtime import tflm_worker
from crossl_edge.runtime.backends import (
    TFLITE_BACKENDS,
    backend_version,
    broken_backend_hint,
    dist_version,
    tflite_backend_problem,
    tflite_backend_usable,
)
from crossl_edge.tables import table

TFLITE_RUNTIMES = tuple(TFLITE_BACKENDS)
RUNTIMES = (*TFLITE_RUNTIMES, "onnxruntime", "tflm")
ALIASES = {"ai-edge-litert": "litert", "tflite-runtime": "tflite_runtime", "tf": "tensorflow",
           "ort": "onnxruntime", "onnx": "onnxruntime", "tflite-micro": "tflm"}
DISTS = {**{name: dist for name, (_, dist) in TFLITE_BACKENDS.items()},
         "onnxruntime": "onnxruntime", "tflm": "tflite-micro"}
MEMORY_NOTE = ("VmRSS/VmHWM from /proc/self/status, peak reset through /proc/self/clear_refs: "
               "process-wide and page-granular; the first model on a runtime also pays for its "
               "libraries; memory freed by earlier rows and reused hides allocations; "
               "None off Linux")


# ---------------------------------------------------------------------------- runtimes


def runtime_present(name: str, *, explicit: bool = False) -> bool:
    """Installed here. Unless asked for ``explicit``ly, TensorFlow counts only when something
    already imported it (importing it costs ~5 s)."""
    if name == "tensorflow" and not (explicit or "tensorflow" in sys.modules):
        return False
    if name in TFLITE_BACKENDS:
        return tflite_backend_usable(name)
    return importlib.util.find_spec("tflite_micro" if name == "tflm" else name) is not None


def resolve_runtimes(requested: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(runtimes, notes): by default every present one; naming an absent one is a usage error."""
    if requested is None:
        present = [r for r in RUNTIMES if runtime_present(r)]
        notes = [f"runtime {r} is not installed here: skipped" for r in RUNTIMES
                 if r not in present and r != "tensorflow"]
        if not any(r in present for r in (*TFLITE_RUNTIMES, "onnxruntime")):
            raise UsageError("no TFLite or ONNX runtime is installed; "
                             "`pip install 'crossl-edge[litert]'` (or onnxruntime).")
        return present, notes
    out: list[str] = []
    for raw in requested:
        name = ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if name not in RUNTIMES:
            raise UsageError(f"unknown runtime {raw!r}; choose from {', '.join(RUNTIMES)}.")
        ok = runtime_present(name, explicit=True)
        problem = tflite_backend_problem(name) if name in TFLITE_BACKENDS and not ok else None
        if problem not in (None, "not installed"):
            raise UsageError(broken_backend_hint(name, problem))
        if not ok:
            pre = "--pre " if name == "tflm" else ""
            raise UsageError(f"runtime {name} is not installed here; `pip install {pre}"
                             f"{DISTS[name]}`.")
        if name not in out:
            out.append(name)
    return out, []


def runtime_version(name: str) -> str:
    return backend_version(name) if name in TFLITE_BACKENDS else dist_version(DISTS[name])


def tflm_invoke(model: Path, inputs: Any, *, arena: int) -> tuple[float, Any, Any]:
    """Each input through TFLite Micro in a subprocess (it can segfault): load s, times, outs."""
    import numpy as np

    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "in.npy", Path(d) / "out.npz"
        np.save(src, inputs)
        p = tflm_worker.spawn(["run", str(model), str(arena), str(src), str(dst)],
                              timeout=120 + len(inputs))
        if p.returncode != 0 or not dst.is_file():
            raise RuntimeError(f"TFLite Micro failed: {tflm_worker.failure_tail(p)}")
        with np.load(dst) as z:
            return float(z["load_s"]), z["times"], z["outputs"]


# ---------------------------------------------------------------------------- machine, memory


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def rss() -> tuple[int | None, int | None]:
    """(VmRSS, VmHWM) of this process in bytes, from /proc (None, None) where there is none."""
    text = _read("/proc/self/status") or ""
    vals = {k: int(v.split()[0]) * 1024 for k, v in
            (line.split(":", 1) for line in text.splitlines() if line.startswith(("VmRSS",
                                                                                 "VmHWM")))}
    return vals.get("VmRSS"), vals.get("VmHWM")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def cpu_model() -> str:
    board = _read("/proc/device-tree/model")  # "Raspberry Pi 4 Model B Rev 1.4" on a Pi
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith(("model name", "Model", "Hardware")):
            return line.split(":", 1)[1].strip()
    return (board or "").rstrip("\x00") or platform.processor() or platform.machine()


def environment(runtimes: Sequence[str]) -> dict[str, Any]:
    """CPU, cores, OS, Python, numpy and runtime versions: what a reader needs to reproduce."""
    import numpy as np

    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    cpufreq = "/sys/devices/system/cpu/cpu0/cpufreq/"
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "cores_usable": usable,
            "machine": platform.machine(), "os": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__,
            "runtimes": {r: runtime_version(r) for r in runtimes},
            "governor": _read(cpufreq + "scaling_governor"),
            "max_freq_khz": _read(cpufreq + "cpuinfo_max_freq"), "loadavg_start": loadavg()}


def caveats(env: dict[str, Any]) -> list[str]:
    out = []
    load, cores = env.get("loadavg_start") or [0.0], env.get("cores_usable") or 1
    if cores <= 2 or load[0] > 0.5 * cores:
        out.append(f"noisy machine: {cores} usable core(s), load average {load} at start; "
                   "compare medians, and re-run before trusting a small difference")
    if env.get("governor") not in (None, "performance"):
        out.append(f"CPU governor is {env['governor']}: frequency scaling adds variance")
    return out


# ---------------------------------------------------------------------------- ratios


def _key(r: dict[str, Any]) -> tuple:
    return r["model"], r["kind"], r["runtime"], r["threads"], r["xnnpack"]


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Same-run speed-ups (baseline / candidate, median of windows): int8 vs float, TFLite
    runtime vs ONNX Runtime, XNNPACK on vs off."""
    ok = {_key(r): r["steady"]["median_of_windows"] for r in rows
          if r["status"] == "ok" and r["steady"]}
    out = []

    def add(what: str, key: tuple, base: tuple, base_name: str) -> None:
        if base in ok:
            out.append({"comparison": what, "model": key[0], "kind": key[1], "runtime": key[2],
                        "threads": key[3], "xnnpack": key[4], "baseline": base_name,
                        "baseline_s": ok[base], "candidate_s": ok[key],
                        "speedup": ok[base] / ok[key]})

    for k in ok:
        model, kind, rt, t, x = k
        if kind.endswith("_int8"):
            add("int8 vs float", k, (model, kind[:-5], rt, t, x), kind[:-5])
        if rt in TFLITE_RUNTIMES:
            onnx = kind.replace("tflite", "onnx")
            add(f"{rt} vs onnxruntime", k, (model, onnx, "onnxruntime", t, None), onnx)
        if x is True:
            add("XNNPACK on vs off", k, (model, kind, rt, t, False), "XNNPACK off")
    return sorted(out, key=lambda q: (q["comparison"].lower(), q["model"], q["kind"],
                                      q["threads"], str(q["xnnpack"])))


# ---------------------------------------------------------------------------- tables


def us(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e6:.1f}"


def _xnn(x: bool | None) -> str:
    return "-" if x is None else ("on" if x else "off")


def format_result(res: dict[str, Any]) -> str:
    """Readable tables of one BenchResult JSON: models, whole paths, ratios, machine, notes."""
    env, st = res["environment"], res["settings"]
    head = ["model", "kind", "runtime", "thr", "xnn", "KB", "load_ms", "first_us", "warm_us",
            "mean_us", "std_us", "p50_us", "p90_us", "p99_us", "mlperf_us", "runs", "mem_KB"]
    rows = []
    for r in res["rows"]:
        s = r["steady"] or {}
        mem = r["arena_bytes"] if r["runtime"] == "tflm" else r["peak_rss_bytes"]
        rows.append([r["model"], r["kind"], r["runtime"], r["threads"], _xnn(r["xnnpack"]),
                     f"{r['size_bytes'] / 1024:.1f}",
                     "-" if r["load_s"] is None else f"{r['load_s'] * 1e3:.2f}",
                     us(r["first_s"]), us(r["warmup_mean_s"]), us(s.get("mean")),
                     us(s.get("std")), us(s.get("p50")), us(s.get("p90")), us(s.get("p99")),
                     us(s.get("median_of_windows")), s.get("runs", 0),
                     "-" if mem is None else f"{mem / 1024:.1f}"])
    out = [f"bundle {res['bundle']}: {env['cpu']} ({env['cores_usable']}/{env['cores']} cores), "
           f"{env['os']}, Python {env['python']}, numpy {env['numpy']}; "
           + ", ".join(f"{k} {v}" for k, v in env["runtimes"].items()),
           f"timing: >= {st['min_seconds']} s and >= {st['min_runs']} runs per row over "
           f"{st['windows']} windows (mlperf_us = median of window means); {st['timer']}", "",
           table(head, rows)]
    errors = [r for r in res["rows"] if r["status"] != "ok"]
    out += [f"  {r['model']} {r['kind']} {r['runtime']}: {r['status']}: {r['note']}"
            for r in errors]
    if res["paths"]:
        out += ["", "whole paths (mean per stage; total over the steady state)",
                table(["path", "runtime", "kind", "thr", "stages_us", "mean_us", "p50_us",
                       "p99_us", "runs"],
                      [[p["name"], p["runtime"], p["kind"], p["threads"],
                        " + ".join(f"{k} {us(v)}" for k, v in p["stages_mean_s"].items()),
                        us(p["total"]["mean"]), us(p["total"]["p50"]), us(p["total"]["p99"]),
                        p["total"]["runs"]] for p in res["paths"]])]
    if res["ratios"]:
        out += ["", "speed-ups measured in this run (baseline / candidate; > 1: candidate faster)",
                table(["comparison", "model", "kind", "runtime", "thr", "xnn", "baseline",
                       "speedup"],
                      [[q["comparison"], q["model"], q["kind"], q["runtime"], q["threads"],
                        _xnn(q["xnnpack"]), q["baseline"], f"{q['speedup']:.2f}x"]
                       for q in res["ratios"]])]
    if res.get("profiles"):
        from crossl_edge.bench.op_profile import format_profiles

        out += format_profiles(res["profiles"])
    out += ["", f"mem_KB: peak RSS growth while loading and warming up (TFLM: its measured "
            f"arena). {st['memory']}"] + [f"note: {n}" for n in res["notes"]]
    return "\n".join(out)


# ---------------------------------------------------------------------------- compare, plot


def load_result(path: str | Path) -> dict[str, Any]:
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path} ({type(e).__name__}); pass a file written by "
                         "`crossl-edge bench --out FILE.json`.") from e
    if not isinstance(obj, dict) or obj.get("kind") != "crossl-edge-bench":
        raise UsageError(f"{path} is not a bench result; write one with `crossl-edge bench "
                         "BUNDLE --out FILE.json`.")
    return obj


def compare_rows(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of A and B side by side (median of windows, seconds); ratio = B / A."""
    def index(res: dict[str, Any]) -> dict[tuple, float]:
        d = {_key(r): r["steady"]["median_of_windows"] for r in res["rows"] if r["steady"]}
        d.update({(f"path {p['name']}", p["kind"], p["runtime"], p["threads"], p["xnnpack"]):
                  p["total"]["median_of_windows"] for p in res["paths"]})
        return d

    ia, ib = index(a), index(b)
    keys = list(ia) + [k for k in ib if k not in ia]
    return [{"model": k[0], "kind": k[1], "runtime": k[2], "threads": k[3], "xnnpack": k[4],
             "a_s": ia.get(k), "b_s": ib.get(k),
             "b_over_a": ib[k] / ia[k] if k in ia and k in ib else None} for k in keys]


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Two bench results (e.g. a workstation and a Raspberry Pi) side by side."""
    def machine(tag: str, res: dict[str, Any]) -> str:
        e = res["environment"]
        rts = ", ".join(f"{k} {v}" for k, v in e["runtimes"].items())
        return (f"{tag}: {e['cpu']} ({e['cores_usable']} cores, {e['machine']}), "
                f"Python {e['python']}; {rts}; min {res['settings']['min_seconds']} s/row")

    rows = [[r["model"], r["kind"], r["runtime"], r["threads"], _xnn(r["xnnpack"]), us(r["a_s"]),
             us(r["b_s"]), "-" if r["b_over_a"] is None else f"{r['b_over_a']:.2f}x"]
            for r in compare_rows(a, b)]
    return "\n".join([machine("A", a), machine("B", b), "",
                      table(["model", "kind", "runtime", "thr", "xnn", "A_us", "B_us", "B/A"],
                            rows)])


def plot(result: Any, path: str | Path) -> str | None:
    """Box plots of the latency samples of every row and path; a note when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot (`pip install matplotlib`)"
    items = [(f"{r.model} {r.kind} {r.runtime} t{r.threads} xnn {_xnn(r.xnnpack)}", r.samples_s)
             for r in result.rows if r.samples_s is not None and r.samples_s.size]
    items += [(f"path {p.name} {p.runtime}", p.samples_s) for p in result.paths
              if p.samples_s is not None and p.samples_s.size]
    if not items:
        return "nothing measured: no plot"
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(items) + 1.5))
    new = tuple(int(v) for v in matplotlib.__version__.split(".")[:2]) >= (3, 10)
    ax.boxplot([s * 1e6 for _, s in items], showfliers=False,
               **({"orientation": "horizontal"} if new else {"vert": False}))
    ax.set_yticks(range(1, len(items) + 1), [n for n, _ in items], fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("latency per call (us, log scale; whiskers 1.5 IQR, outliers hidden)")
    ax.set_title(f"{Path(result.bundle).name}: {result.environment['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None
