#!/usr/bin/env bash
# The prepared GPU check: CUDA tests, `make bench` on CUDA, ms per frame (paper and small
# configs, batch 1 and 4, peak GPU memory), the onnxruntime CUDA/TensorRT providers, the paper
# config's training throughput (fp32 and mixed precision) and a CUDA out-of-memory retry.
# Writes benchmarks/results_gpu.json. Run from the repository root after `make setup`, or on a GPU
# machine without network with .offline/ from scripts/offline_bundle.sh beside the checkout:
#     bash benchmarks/gpu_check.sh            (needs one CUDA GPU; about 5 min, limit 8 min)
#     bash benchmarks/gpu_check.sh --dry-run  (CPU, tiny config: checks the script itself)
# Extra arguments go to `python -m benchmarks.gpu_check` (e.g. --sections frame,train).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/homae_gpu_check.XXXXXX)
stamp() { echo "[gpu_check] $*"; }
# the venv after `make setup`; on a GPU machine without it (no network), the machine's python3
# with what scripts/offline_bundle.sh put in .offline/ (see scripts/gpu_env.sh)
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh
# the whole check stops after 470 s (the goal is under 8 minutes on one GPU); every section
# writes the JSON as it finishes, so a time-out keeps what was measured
exec timeout --signal=INT --kill-after=10 470 "$PY" -m benchmarks.gpu_check "$@"
