"""gymnax Breakout-MinAtar (10x10x4 binary planes, 3 actions): the `tiny` agent on a CPU.

    python -m experiments.train --config=experiments/minatar_breakout.py [--config.FIELD=VALUE]
    python -m experiments.evaluate --workdir=runs/minatar_breakout --episodes=100

The four planes are one "binary" field (per-cell Bernoulli decoder). Issue 13 asks for a
learning curve against env steps beside danijar/dreamerv3's on the same env, size and budget;
docs/RESULTS.md ("dreamer_jax beyond Tetris") says what was run.
"""

from __future__ import annotations

import ml_collections

from experiments import cartpole


def get_config() -> ml_collections.ConfigDict:
    c = cartpole.get_config()
    c.env.name = "Breakout-MinAtar"
    # Rewards are sparse (one per brick) and episodes long: fewer replayed steps per env step
    # than CartPole, so that a 40-minute CPU run sees more of the game.
    c.train_ratio = 128.0
    c.replay_capacity = 16 * 16384
    c.train_minutes = 40.0
    c.ckpt_minutes = 5.0
    c.eval_max_pieces = 1000
    return c
