#!/usr/bin/env bash
# The GPU check (issue 18): ResNet-50 training images/s, cnnlab vs a plain AMP loop, at 32-true,
# 16-mixed and bf16-mixed with channels_last; data=shards pipeline images/s with CPU and GPU
# decoding; DDP over all GPUs when there are several. ≤ 8 minutes on one CUDA machine.
#   bash benchmarks/gpu_check.sh              # on a CUDA machine; table → benchmarks/results/gpu_check.md
#   bash benchmarks/gpu_check.sh --dry-run    # tiny sizes on the CPU (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec timeout 480 "$PY" -m benchmarks.gpu_check "$@"
