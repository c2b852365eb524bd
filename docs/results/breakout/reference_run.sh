#!/bin/bash
# The reference danijar/dreamerv3 (e3f0224 + patches in /tmp/ref/PATCHES.md) on gymnax
# Breakout-MinAtar at dreamer_jax's `tiny` sizes and experiments/minatar_breakout.py's budget.
cd /tmp/ref
LOGDIR=${1:-/tmp/ref/logdir/breakout}
shift
exec nice -n 19 .venv/bin/python dreamerv3/main.py --logdir "$LOGDIR" \
  --task gymnax_Breakout-MinAtar --seed 0 \
  --jax.platform cpu --jax.compute_dtype float32 --jax.prealloc False --replay_context 0 \
  --batch_size 16 --batch_length 64 --replay.size 262144 \
  --run.envs 16 --run.train_ratio 128 --run.duration 2400 --run.log_every 60 \
  --run.report_every 1000000 --run.save_every 1000000 --run.debug False \
  --logger.outputs jsonl \
  --agent.dyn.rssm.deter 64 --agent.dyn.rssm.hidden 32 --agent.dyn.rssm.classes 4 \
  --agent.dyn.rssm.blocks 4 --agent.dyn.rssm.imglayers 1 \
  --agent.enc.simple.units 32 --agent.enc.simple.layers 1 \
  --agent.dec.simple.units 32 --agent.dec.simple.layers 1 \
  --agent.rewhead.units 32 --agent.conhead.units 32 \
  --agent.policy.units 32 --agent.policy.layers 1 \
  --agent.value.units 32 --agent.value.layers 1 \
  --agent.imag_last 4 --agent.opt.lr 3e-4 --agent.opt.warmup 100 "$@"
