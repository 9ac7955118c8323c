#!/usr/bin/env bash
# The prepared GPU check: CUDA tests, `make bench` on CUDA, ms per frame (paper and small
# configs, batch 1 and 4, peak GPU memory), the onnxruntime CUDA/TensorRT providers, the paper
# config's training throughput (fp32 and mixed precision) and a CUDA out-of-memory retry.
# Writes benchmarks/results_gpu.json. Run from the repository root after `make setup`:
#     bash benchmarks/gpu_check.sh            (needs one CUDA GPU; about 5 min, limit 8 min)
#     bash benchmarks/gpu_check.sh --dry-run  (CPU, tiny config: checks the script itself)
# Extra arguments go to `python -m benchmarks.gpu_check` (e.g. --sections frame,train).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv/bin/python || ! -f install/setup.bash ]]; then
    echo "gpu_check: run 'make setup' first (.venv and install/ are missing)" >&2
    exit 2
fi
set +u
export VIRTUAL_ENV=$PWD/.venv PATH=$PWD/.venv/bin:$PATH
export AMENT_PREFIX_PATH=$PWD/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
# shellcheck disable=SC1091
source install/setup.bash
set -u
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
# the whole check stops after 470 s (the goal is under 8 minutes on one GPU); every section
# writes the JSON as it finishes, so a time-out keeps what was measured
exec timeout --signal=INT --kill-after=10 470 python -m benchmarks.gpu_check "$@"
