"""Tiny everything: a full run in well under a minute on a 2-core CPU (tests use this)."""

from __future__ import annotations

import ml_collections

from experiments import qhead


def get_config() -> ml_collections.ConfigDict:
    c = qhead.get_config()
    # A small board keeps env steps and the encoder cheap.
    c.env.height = 8
    c.env.width = 6
    c.env.queue_size = 2
    # Dense reward so that short runs see non-zero rewards.
    c.env.reward_mode = "standard"
    c.env.max_steps = 100
    # The smallest dreamer_jax preset.
    c.agent_preset = "tiny"
    c.agent.imag_length = 4
    c.agent.bins = 31
    c.agent.warmup = 10
    c.num_envs = 4
    c.accelerator_num_envs = 0
    c.collect_steps = 8
    # One update of 4 x 16 replayed steps per iteration of 4 x 8 env steps.
    c.train_ratio = 2.0
    c.batch_size = 4
    c.seq_len = 16
    c.replay_capacity = 4 * 256
    c.train_start = 64
    c.total_env_steps = 4 * 8 * 40
    c.log_every = 5
    c.dashboard_every = 20
    c.ckpt_minutes = 10.0
    c.keep_last = 2
    c.eval_episodes = 4
    c.eval_max_pieces = 30
    c.wm_episodes = 2
    c.wm_max_pieces = 20
    c.no_lines_warning_steps = 1000
    c.curriculum.max_rows = 3
    c.curriculum.anneal_steps = 640
    return c
