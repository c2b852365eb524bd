"""Headline configuration: sparse `lines_only` reward, placement mode, 10x20 board, 7-bag.

    python -m experiments.train --config=experiments/lines_only.py [--config.FIELD=VALUE ...]

Variants (`standard.py`, `debug.py`) import `get_config` from here and override what differs.
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


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    # Seed of parameters, environments, replay sampling and actions.
    c.seed = 0

    c.env = ml_collections.ConfigDict()
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
    # Observe the afterstate features of every placement (placement mode only): the actor ranks
    # placements by them and the world model gets the chosen one's with the action. Without
    # them the 60-minute CPU runs cleared 0.32 (lines_only) and 0.00 (standard) lines/game.
    c.env.placement_features = True

    # dreamer_jax size preset: "tiny", "1m", "12m" or "50m". "tiny" on a 2-core CPU: it does
    # ~20 updates/s at 16x64 there, "1m" ~1 (docs/results/benchmark_heuristics-train_cpu.md).
    c.agent_preset = "tiny"
    # Overrides of single dreamer_jax Config fields (None = the preset's value).
    c.agent = agent_overrides()
    # Learning rate far above DreamerV3's 4e-5: a tiny model and hour-long CPU runs (3e-4 learned
    # clearly slower than 1e-3 on a 6x10 board with the same updates).
    c.agent.lr = 1e-3
    # Shorter warm-up than DreamerV3's 1000 updates, for CPU-length runs.
    c.agent.warmup = 200
    # Entropy bonus 10x DreamerV3's 3e-4: the policy collapsed within ~1,200 updates, before the
    # world model was useful (12-minute probes with placement features: 13.3 lines/game at
    # 3,680 updates vs 1.2 at 2,080 with 3e-4; 32 games each).
    c.agent.actent = 3e-3
    # Q head on the placements' real afterstate features, trained on replayed returns, and an
    # actor term over every replayed state (dreamer_jax Config.qhead). 16-minute probes (two
    # at a time on 2 cores, 32-game validation): lines_only 75.2 lines/game after 10k env steps,
    # standard 48.6 after 29k; without it the best of any earlier setting was 11.6 / 10.2.
    c.agent.qhead = True

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
    # Piece cap of those games.
    c.eval_max_pieces = 1000
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
