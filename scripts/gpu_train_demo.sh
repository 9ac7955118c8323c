#!/usr/bin/env bash
# Retrain the demo weights on one CUDA GPU in about 8.5 minutes, from nothing: synthetic scenes,
# dense pretraining of the image path, full training, held-out evaluation (issue #15's recipe,
# weights/demo/README.md "Training on a GPU"). Every stage has a time limit; each writes its
# results as it goes, so a stage that runs out keeps what it made.
#
#     bash scripts/gpu_train_demo.sh OUT            # one CUDA GPU; OUT gets what to bring back
#     bash scripts/gpu_train_demo.sh --dry-run OUT  # CPU, a few scenes and steps: checks the script
#
# OUT receives at most 8 small files: weights.part00.. (the averaged model.safetensors cut into
# 15 MiB parts), config.yaml, summary.json (timings, held-out curves, the evaluation report,
# sha256 of the weights) and run.log. Put the weights back together with
#     cat OUT/weights.part* > OUT/model.safetensors && sha256sum OUT/model.safetensors
# (the sha256 is summary.json's); OUT is then a checkpoint folder (homae-eval --checkpoint OUT).
# A machine without network access: run scripts/offline_bundle.sh where PyPI is reachable and
# carry .offline/ (wheels the image may lack, GL loader packages for headless rendering).
# Knobs (environment): SCENES (20000), WORKERS (CPU count - 2), PRETRAIN_MIN (2.0),
# TRAIN_MIN (3.5), PRETRAIN_BATCH (256), TRAIN_BATCH (128), TRAIN_LR (4e-4), BUDGET_S (570:
# the whole run, seconds), WORK (a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=0
if [[ ${1:-} == --dry-run ]]; then
    DRY=1
    shift
fi
if [[ $# -ne 1 ]]; then
    echo "usage: bash scripts/gpu_train_demo.sh [--dry-run] OUT" >&2
    exit 2
fi
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
WORK=${WORK:-$(mktemp -d /tmp/homae_gpu_train.XXXXXX)}
mkdir -p "$WORK"
LOG=$OUT/run.log
exec > >(tee -a "$LOG") 2>&1
T0=$(date +%s)
stamp() { echo "[gpu_train_demo +$(($(date +%s) - T0))s] $*"; }
STAGES=$WORK/stages.jsonl
: >"$STAGES"
# The whole run must end inside one command's limit on the GPU machine (600 s there): every
# stage's limit is cut to what is left of BUDGET_S, and OUT is brought up to date after each.
# stage NAME LIMIT_S CMD...: run CMD under a time limit (SIGINT: the trainers then checkpoint and
# stop, as they do at their own --max-minutes), append {"stage", "seconds", "status"} to
# stages.jsonl (status 124: stopped at the limit; "skipped": no time left)
stage() {
    local name=$1 limit=$2 t rc=0 left
    shift 2
    left=$((BUDGET_S - ($(date +%s) - T0) - 15))
    if ((left < 10)); then
        echo "{\"stage\": \"$name\", \"seconds\": 0, \"status\": \"skipped\"}" >>"$STAGES"
        stamp "$name: skipped, no time left of BUDGET_S=$BUDGET_S"
        return 0
    fi
    ((limit > left)) && limit=$left
    t=$(date +%s)
    stamp "$name: start (limit ${limit}s)"
    timeout --signal=INT --kill-after=10 "$limit" "$@" || rc=$?
    echo "{\"stage\": \"$name\", \"seconds\": $(($(date +%s) - t)), \"status\": $rc}" >>"$STAGES"
    stamp "$name: done, status $rc"
    "$PY" scripts/gpu_train_summary.py "$WORK" "$OUT" >/dev/null || true
    return 0
}

if [[ $DRY == 1 ]]; then
    SCENES=${SCENES:-16} WORKERS=${WORKERS:-1} DEVICE=cpu BUDGET_S=${BUDGET_S:-1200}
    PRETRAIN_MIN=${PRETRAIN_MIN:-0.2} TRAIN_MIN=${TRAIN_MIN:-0.4}
    PRETRAIN_BATCH=${PRETRAIN_BATCH:-4} TRAIN_BATCH=${TRAIN_BATCH:-2} HELD=8 EVAL_LIMIT=4 CHECK=4
else
    SCENES=${SCENES:-20000} WORKERS=${WORKERS:-$(($(nproc) > 3 ? $(nproc) - 2 : 1))} DEVICE=cuda
    BUDGET_S=${BUDGET_S:-570}
    PRETRAIN_MIN=${PRETRAIN_MIN:-2.0} TRAIN_MIN=${TRAIN_MIN:-3.5}
    PRETRAIN_BATCH=${PRETRAIN_BATCH:-256} TRAIN_BATCH=${TRAIN_BATCH:-128} HELD=256 EVAL_LIMIT=200
    CHECK=64
fi
# a training step dispatches about 6,300 operators besides the optimiser's, whatever the batch
# (counted on the CPU), so on a GPU it is bound by kernel launches: large batches cost little
TRAIN_LR=${TRAIN_LR:-4e-4}

# --- Python and its environment (the venv after `make setup`, else python3 + .offline/) -----
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh
"$PY" - "$DEVICE" <<'EOF'
import sys

import torch

from homae_model.render.gl import GLRenderer

GLRenderer(64, 64)  # headless EGL works (the synthetic scenes need it)
if sys.argv[1] == "cuda" and not torch.cuda.is_available():
    sys.exit("gpu_train_demo: no CUDA device (use --dry-run to check the script on a CPU)")
name = torch.cuda.get_device_name() if sys.argv[1] == "cuda" else "cpu"
print(f"[gpu_train_demo] python {sys.version.split()[0]}, torch {torch.__version__}, {name}")
EOF
stamp "work folder $WORK, out $OUT, $SCENES scenes, $WORKERS workers, device $DEVICE"

# --- 1. synthetic scenes: the seeds of data/train, data/val and data/test ---------------------
SYNTH=("$PY" -m homae_model.cli.synth --quiet --no-contact-sheet --size 256x256)
stage synth_train 150 "${SYNTH[@]}" --out "$WORK/train" --num "$SCENES" --seed 1000 --split train \
    --workers "$WORKERS"
stage synth_heldout 60 "${SYNTH[@]}" --out "$WORK/val" --num "$HELD" --seed 3000 --split test \
    --workers "$WORKERS"
stage synth_test 60 "${SYNTH[@]}" --out "$WORK/test" --num "$((EVAL_LIMIT * 2))" --seed 2000 \
    --split test --workers "$WORKERS"

# --- 2. dense pretraining of the image path, from the bundled weights -------------------------
CONFIG=weights/demo/config.yaml
BUNDLED=weights/demo/homae_small_synthetic.safetensors
PRE_S=$(awk -v m="$PRETRAIN_MIN" 'BEGIN { printf "%d", m * 60 + 90 }')
stage pretrain "$PRE_S" "$PY" -m homae_model.cli.pretrain --config "$CONFIG" --init "$BUNDLED" \
    --data "$WORK/train" --eval-data "$WORK/val" --out "$WORK/pre" --steps 1000000 \
    --batch-size "$PRETRAIN_BATCH" --lr 1e-3 --joints-weight 300 --workers "$WORKERS" \
    --eval-every 200 --eval-samples "$((CHECK * 2))" --ckpt-every 0 --max-minutes "$PRETRAIN_MIN" \
    --device "$DEVICE"

# --- 3. the full model, from the pretrained image path and the bundled 3D heads ---------------
INIT=$WORK/pre
[[ -d $WORK/pre/checkpoints ]] || INIT=$BUNDLED
TRAIN_S=$(awk -v m="$TRAIN_MIN" 'BEGIN { printf "%d", m * 60 + 120 }')
stage train "$TRAIN_S" "$PY" -m homae_model.cli.train --config "$CONFIG" --init "$INIT" \
    --data "$WORK/train" --eval-data "$WORK/val" --eval-samples "$CHECK" --eval-every 250 \
    --ckpt-every-steps 100 --keep-last 3 --out "$WORK/full" --device "$DEVICE" --no-progress \
    --max-minutes "$TRAIN_MIN" \
    --preview-every 0 --batch-size "$TRAIN_BATCH" --epochs 100 "train.lr=$TRAIN_LR" \
    train.lr_decay=0.85 "train.num_workers=$WORKERS"

# --- 4. the mean of the last checkpoints, evaluated on the held-out test scenes ---------------
mapfile -t CKPTS < <(ls -d "$WORK"/full/checkpoints/step_* 2>/dev/null | sort | tail -3)
if [[ ${#CKPTS[@]} -gt 0 ]]; then
    if [[ ${#CKPTS[@]} -gt 1 ]]; then
        stage average 60 "$PY" scripts/average_checkpoints.py "$WORK/final" "${CKPTS[@]}"
    else
        mkdir -p "$WORK/final"
        cp "${CKPTS[0]}/model.safetensors" "${CKPTS[0]}/config.yaml" "$WORK/final/"
    fi
    stage evaluate 120 "$PY" -m homae_model.cli.evaluate --checkpoint "$WORK/final" \
        --data "$WORK/test" --protocol both --limit "$EVAL_LIMIT" --device "$DEVICE" \
        --detector weights/demo/detector_synthetic.safetensors --out "$WORK/eval"
else
    stamp "no checkpoint of the full model: nothing to average or evaluate"
fi

# --- 5. what comes back ------------------------------------------------------------------------
"$PY" scripts/gpu_train_summary.py "$WORK" "$OUT"
stamp "done: $(ls "$OUT" | tr '\n' ' ')"
