"""Every field of an experiment config, with its default and a one-line comment.

The config files (`experiments/lines_only.py` and its variants) start from `defaults()` and set
what their experiment chooses; a saved `config.json` is read back against the same fields
(`runs.config_from_json`), so the schema lives here and not in a config file.

The rule for a new field: its default here is the behaviour from before it existed, so that
runs saved without it load and resume as they ran.
"""

from __future__ import annotations

import dataclasses

import ml_collections
from ml_collections import config_dict

from dreamer_jax.configs import Config


def agent_overrides() -> ml_collections.ConfigDict:
    """One typed placeholder per dreamer_jax Config field: set any to override the preset."""
    fields = {}
    for f in dataclasses.fields(Config):
        if f.name in ("preset", "batch_size", "batch_length"):
            continue  # The preset is `agent_preset`; batch shape is `batch_size` / `seq_len`.
        fields[f.name] = config_dict.placeholder(type(f.default))
    return ml_collections.ConfigDict(fields)


def defaults() -> ml_collections.ConfigDict:
    """All fields at their defaults: the 10x20 placement game, 7-bag, lines_only reward."""
    c = ml_collections.ConfigDict()
    # Seed of parameters, environments, replay sampling and actions.
    c.seed = 0

    c.env = ml_collections.ConfigDict()
    # Which environment: "tetris" (the fields below), "gymnax" (gymnax env `name`; of the
    # fields below only max_steps applies: 0 = gymnax's own time limit) or "import" (your own
    # env: `name` is "module:factory", called with no arguments; README "Your own environment").
    c.env.suite = "tetris"
    # gymnax env id (e.g. "CartPole-v1", "Breakout-MinAtar") or, for "import", module:factory.
    c.env.name = ""
    # Visible rows of the board.
    c.env.height = 20
    # Columns of the board.
    c.env.width = 10
    # "placement" (one decision per piece) or "direct" (moves and rotations).
    c.env.action_mode = "placement"
    # "lines_only" (reward = lines cleared) or "standard" (lines + potential shaping).
    c.env.reward_mode = "lines_only"
    # Piece randomizer: "7bag" or "uniform".
    c.env.randomizer = "7bag"
    # Next pieces shown in the observation.
    c.env.queue_size = 5
    # Episode step limit during training (truncation, not termination); 0 = none.
    c.env.max_steps = 2000
    # Discount of the potential-based shaping (standard reward only).
    c.env.shaping_gamma = 1.0
    # Penalty for topping out (standard reward only).
    c.env.game_over_penalty = 1.0
    # Reward per piece placed, a survival bonus (standard reward only).
    c.env.piece_reward = 0.0
    # Observe the afterstate features of every placement (placement mode only).
    c.env.placement_features = False

    # dreamer_jax size preset: "tiny", "1m", "12m" or "50m" ("tiny" suits a 2-core CPU).
    c.agent_preset = "tiny"
    # Overrides of single dreamer_jax Config fields (None = the preset's value).
    c.agent = agent_overrides()

    # Parallel environments on a CPU (sharded over devices; a multiple of the device count).
    c.num_envs = 16
    # Parallel environments on a GPU/TPU backend (0 = use num_envs).
    c.accelerator_num_envs = 2048
    # Env steps per environment in one jitted collect (a lax.scan).
    c.collect_steps = 16
    # Replayed steps per env step (updates per env step = train_ratio / (batch_size * seq_len)).
    c.train_ratio = 64.0
    # Sequences per update (a multiple of the device count).
    c.batch_size = 16
    # Steps per replayed sequence.
    c.seq_len = 64
    # Replay capacity in env steps over all envs (a multiple of num_envs).
    c.replay_capacity = 1 << 20
    # Largest share of device memory the replay may take.
    c.replay_memory_fraction = 0.5
    # Env steps collected before the first update.
    c.train_start = 4096
    # Env steps to train for.
    c.total_env_steps = 5_000_000
    # Wall-clock budget of training in minutes, summed over resumes (0 = none); when spent, the
    # run ends with a checkpoint as at total_env_steps.
    c.train_minutes = 60.0

    # Iterations (collect + its updates) between progress lines.
    c.log_every = 5
    # Iterations between console dashboards.
    c.dashboard_every = 200
    # Minutes between checkpoints (also saved at the end and on SIGINT/SIGTERM).
    c.ckpt_minutes = 5.0
    # Most recent checkpoints kept (plus the best by evaluation).
    c.keep_last = 3
    # Save the replay buffer in checkpoints (exact resume; costs disk).
    c.save_replay = True
    # Greedy games played at each checkpoint to rank checkpoints (0 = no evaluation).
    c.eval_episodes = 32
    # Piece cap of those games (other envs: step cap of those episodes).
    c.eval_max_pieces = 1000
    # Greedy games at each checkpoint on which the world model is scored (experiments.lib.
    # world_model: exact boards posterior and open loop, lines, game over; 0 = off).
    c.wm_episodes = 8
    # Steps recorded per game of those (must exceed the longest horizon, 15).
    c.wm_max_pieces = 200
    # Warn when no line has been cleared for this many env steps (0 = never).
    c.no_lines_warning_steps = 200_000

    c.curriculum = ml_collections.ConfigDict()
    # Start training episodes on boards with pre-filled bottom rows (evaluation never does).
    c.curriculum.enabled = True
    # Most pre-filled rows at the start; each episode draws uniformly in [0, current max].
    c.curriculum.max_rows = 8
    # Empty cells per pre-filled row (random columns; 1 = one well per row).
    c.curriculum.holes_per_row = 1
    # Env steps over which the max number of rows is annealed linearly to 0 (the empty board).
    c.curriculum.anneal_steps = 200_000
    return c
