#!/usr/bin/env bash
# The GPU check of issue 12 item 6, sized for ~10 minutes of H200 time:
#   1. env steps/s, placement mode with the observation built, batches 16k-64k;
#   2. train updates/s of the 12m preset at 16x64, float32 and bfloat16;
#   3. a short lines_only run at the GPU defaults (accelerator_num_envs), then its evaluation.
# Results go to $OUT (default runs/gpu_check); copy them under docs/results/ with this command.
#   bash docs/results/scripts/gpu_check.sh            # on the device
#   QUICK=1 bash docs/results/scripts/gpu_check.sh    # tiny sizes: checks it runs (CPU)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
PY=${PYTHON:-python}
OUT=${OUT:-runs/gpu_check}
MINUTES=${MINUTES:-4}
mkdir -p "$OUT"
if [[ "${QUICK:-0}" == 1 ]]; then
  BATCHES=64,256; PRESET=tiny; SHAPE=4x16; MINUTES=2; REPEATS=2; TARGET=4096; EPISODES=4
else
  BATCHES=16384,65536; PRESET=12m; SHAPE=16x64; REPEATS=3; TARGET=$((1 << 24)); EPISODES=64
fi
{
  echo "date: $(date -u +%FT%TZ)"; nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
  $PY -c 'import jax; print("jax", jax.__version__, jax.default_backend(), jax.devices())'
} | tee "$OUT/machine.txt"
$PY -m experiments.benchmark --what=env --env_modes=placement --batches=$BATCHES \
  --repeats=$REPEATS --target_steps=$TARGET --out="$OUT" --tag=gpu_env 2>&1 | tee "$OUT/env.log"
$PY -m experiments.benchmark --what=train --presets=$PRESET --shapes=$SHAPE \
  --dtypes=float32,bfloat16 --repeats=$REPEATS --out="$OUT" --tag=gpu_train 2>&1 \
  | tee "$OUT/train.log"
TRAIN_ARGS=(--config=experiments/lines_only.py --workdir="$OUT/lines_only"
  --config.train_minutes=$MINUTES --compile_cache=)
if [[ "${QUICK:-0}" == 1 ]]; then
  TRAIN_ARGS=(--config=experiments/debug.py --workdir="$OUT/lines_only"
    --config.train_minutes=$MINUTES --compile_cache=)
fi
$PY -m experiments.train "${TRAIN_ARGS[@]}" 2>&1 | tail -n 40 | tee "$OUT/train_run.log"
$PY -m experiments.evaluate --workdir="$OUT/lines_only" --episodes=$EPISODES \
  --max_pieces=10000 --baselines=random --gif=false 2>&1 | tail -n 20 | tee "$OUT/eval.log"
# Drop the run's checkpoints (large); metrics, dashboard, summary and evals come back.
rm -rf "$OUT/lines_only/checkpoints"
echo "done: $OUT"
