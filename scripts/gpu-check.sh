#!/usr/bin/env bash
# The GPU check (issue 15), one prepared command for a session that has a CUDA device:
#   bash scripts/gpu-check.sh [OUT_DIR]        (default gpu-check-out/; 6.5 minutes at most after install)
# 1. checks a CUDA GPU is visible (else one sentence, exit 1) and that torch sees it;
# 2. installs the package if `import crossl_edge` fails (pip, no network needed for the source);
# 3. `crossl-edge train --device cuda` (defaults: bf16 autocast) on BasicMotions and on
#    ../shared/data/uci_har.npz (skipped with a note when absent);
# 4. `torchrun --nproc-per-node N` on uci_har.npz when N > 1 GPUs;
# 5. the training-throughput benchmark on CUDA, bf16 vs float32, batch 64 and 256;
# and writes OUT_DIR/gpu-check.json (each step's exit code, wall time, result).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu-check-out}
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || command -v python3 )}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DATA=../shared/data/uci_har.npz

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "error: no NVIDIA GPU is visible on this machine (nvidia-smi finds none); run scripts/gpu-check.sh where a CUDA device is lent." >&2
  exit 1
fi
if ! timeout 120 "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "info: torch is missing or has no CUDA support; installing torch and crossl-edge[train]" >&2
  timeout 300 "$PY" -m pip install -q torch -e ".[train,data]" >&2 || true
  if ! timeout 120 "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: a GPU is visible but this Python's torch cannot use CUDA; install a CUDA build of torch (pip install torch) and rerun." >&2
    exit 1
  fi
fi
timeout 120 "$PY" -c "import crossl_edge.train.run, click, numpy" 2>/dev/null \
  || timeout 300 "$PY" -m pip install -q --no-build-isolation --no-deps -e . >&2 \
  || { echo "error: crossl_edge cannot be imported; run scripts/bootstrap.sh first." >&2; exit 1; }

mkdir -p "$OUT"
NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())")
STEPS="$OUT/steps.jsonl"
: > "$STEPS"

step() {  # step NAME LIMIT_S CMD...: run with a time limit, record rc and wall seconds
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name: $*" >&2
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "{\"step\": \"$name\", \"rc\": $rc, \"wall_s\": $((SECONDS - t0)), \"limit_s\": $limit}" >> "$STEPS"
  tail -n 12 "$OUT/$name.log" >&2
}

CLI=("$PY" -m crossl_edge.cli)
step train_basicmotions 60 "${CLI[@]}" train --device cuda --mode fine --out "$OUT/run-bm" \
  --overwrite --json
if [ -f "$DATA" ]; then
  step train_uci_har 150 "${CLI[@]}" train --device cuda --mode fine --dataset npz --data "$DATA" \
    --out "$OUT/run-har" --overwrite --json
  if [ "$NGPU" -gt 1 ]; then
    step torchrun_uci_har 120 "$PY" -m torch.distributed.run --standalone --nproc-per-node "$NGPU" \
      -m crossl_edge.cli train --device cuda --mode fine --dataset npz --data "$DATA" \
      --out "$OUT/run-har-ddp" --overwrite --json
  fi
else
  echo "{\"step\": \"train_uci_har\", \"rc\": null, \"note\": \"$DATA absent\"}" >> "$STEPS"
fi
step throughput 60 "$PY" -m benchmarks.train_throughput --device cuda --batch-sizes 64,256 \
  --precisions bf16,fp32 --seconds 2 --name train_throughput_cuda --out "$OUT"

"$PY" - "$OUT" "$NGPU" <<'EOF'
import json, sys
from pathlib import Path

out, ngpu = Path(sys.argv[1]), int(sys.argv[2])
steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines() if line]
res = {"gpus": ngpu, "steps": steps}
for name, run in (("basicmotions", "run-bm"), ("uci_har", "run-har"), ("uci_har_ddp", "run-har-ddp")):
    m = out / run / "metrics.json"
    if m.is_file():
        metrics = json.loads(m.read_text())
        hist = json.loads((out / run / "history.json").read_text())
        res[name] = {"macro_f1": {"+".join(s["present"]): s["macro_f1"] for s in metrics["subsets"]},
                     "windows_per_s": {p: [round(e["windows_per_s"]) for e in v]
                                       for p, v in hist.items()}}
t = out / "train_throughput_cuda.json"
if t.is_file():
    res["throughput"] = json.loads(t.read_text())["rows"]
(out / "gpu-check.json").write_text(json.dumps(res, indent=2))
print(json.dumps(res, indent=2))
sys.exit(0 if all(s.get("rc") in (0, None) for s in steps) else 1)
EOF
