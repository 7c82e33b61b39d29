#!/usr/bin/env bash
# Create .venv with the full workstation stack (training, export, tests). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch first, pinned: this resolves to the CPU wheel on build machines (a range may pull CUDA builds).
python -m pip install -q "torch==2.13.0"
# [all] includes the TFLite Micro interpreter (dev builds only; the extra's specifier admits them).
python -m pip install -q -e ".[all,dev]"
