"""gymnax CartPole-v1 (discrete, 500-step time limit): the `tiny` agent on a 2-core CPU.

    python -m experiments.train --config=experiments/cartpole.py [--config.FIELD=VALUE ...]
    python -m experiments.evaluate --workdir=runs/cartpole --episodes=100

Target (issue 13): greedy return >= 475 of 500 on 100 episodes within 20 minutes of training.
The observation is one "real" field (positions and velocities: symlog-MSE decoder); the time
limit is a truncation (`is_last` without `is_terminal`), as in DreamerV3.
"""

from __future__ import annotations

import ml_collections

from experiments.lib import schema


def get_config() -> ml_collections.ConfigDict:
    c = schema.defaults()
    c.env.suite = "gymnax"
    c.env.name = "CartPole-v1"
    # gymnax's own time limit (500 steps).
    c.env.max_steps = 0
    # Tetris-only parts off.
    c.curriculum.enabled = False
    c.wm_episodes = 0
    c.no_lines_warning_steps = 0
    c.agent_preset = "tiny"
    # A tiny model and a 20-minute budget: a learning rate well above DreamerV3's 4e-5, a
    # short warm-up (as the Tetris configs).
    c.agent.lr = 3e-4
    c.agent.warmup = 100
    c.num_envs = 16
    c.accelerator_num_envs = 0
    c.collect_steps = 16
    # Replayed steps per env step: DreamerV3 uses 512 to 1024 for proprioceptive control.
    c.train_ratio = 512.0
    c.batch_size = 16
    c.seq_len = 64
    c.replay_capacity = 16 * 8192
    c.train_start = 2048
    c.total_env_steps = 1_000_000
    c.train_minutes = 20.0
    c.ckpt_minutes = 2.0
    c.keep_last = 2
    # Greedy episodes at each checkpoint (they rank checkpoints); at most 500 steps each.
    c.eval_episodes = 16
    c.eval_max_pieces = 500
    c.dashboard_every = 50
    return c
