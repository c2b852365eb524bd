"""The env and the agent of an experiment config, and the config's checks (before any work)."""

from __future__ import annotations

from typing import Any

import jax
import ml_collections

from dreamer_jax import configs as agent_configs
from dreamer_jax import replay
from dreamer_jax.agent import Agent
from dreamer_jax.board import BoardAgent
from experiments.lib.errors import UserError
from tetris_jax import Tetris


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config as run on this backend: `accelerator_num_envs` replaces `num_envs` off-CPU."""
    config = ml_collections.ConfigDict(config.to_dict())
    if jax.default_backend() != "cpu" and config.accelerator_num_envs:
        config.num_envs = config.accelerator_num_envs
    return config


def make_env(config: ml_collections.ConfigDict, evaluation: bool = False) -> Tetris:
    """The training env, or (evaluation=True) the same rules without the training step limit."""
    e = config.env
    max_steps = None if evaluation or not e.max_steps else int(e.max_steps)
    try:
        return Tetris(
            height=e.height,
            width=e.width,
            action_mode=e.action_mode,
            reward_mode=e.reward_mode,
            randomizer=e.randomizer,
            queue_size=e.queue_size,
            max_steps=max_steps,
            shaping_gamma=e.shaping_gamma,
            game_over_penalty=e.game_over_penalty,
            piece_reward=e.piece_reward,
            placement_features=e.placement_features,
        )
    except ValueError as err:
        raise UserError(f"config.env: {err}") from None


def agent_config(config: ml_collections.ConfigDict) -> agent_configs.Config:
    overrides = {k: v for k, v in config.agent.items() if v is not None}
    try:
        return agent_configs.get_config(
            config.agent_preset,
            batch_size=config.batch_size,
            batch_length=config.seq_len,
            **overrides,
        )
    except agent_configs.ConfigError as err:
        raise UserError(f"config.agent: {err}") from None


def make_agent(config: ml_collections.ConfigDict, env: Tetris) -> Agent | BoardAgent:
    """The agent of a config: DreamerV3's (`agent.world_model="rssm"`) or the board world
    model's lookahead agent (`"board"`, placement mode)."""
    c = agent_config(config)
    if c.world_model == "board":
        return BoardAgent(c, env.observation_spec(), env.num_actions, env.action_planes())
    return Agent(c, env.observation_spec(), env.num_actions)


def check_config(config: ml_collections.ConfigDict, num_devices: int) -> None:
    """Raise UserError naming the first bad field, before anything is compiled."""

    def need(ok: bool, field: str, allowed: str) -> None:
        if not ok:
            raise UserError(f"config.{field}: got {config[field]!r}; {allowed}")

    make_env(config)  # The env's fields first: the checks below build on them.
    for field in (
        "num_envs",
        "collect_steps",
        "batch_size",
        "seq_len",
        "total_env_steps",
        "log_every",
        "dashboard_every",
        "keep_last",
    ):
        need(isinstance(config[field], int) and config[field] >= 1, field, "must be an int >= 1")
    for field in (
        "accelerator_num_envs",
        "train_start",
        "eval_episodes",
        "eval_max_pieces",
        "no_lines_warning_steps",
        "wm_episodes",
    ):
        need(isinstance(config[field], int) and config[field] >= 0, field, "must be an int >= 0")
    if config.wm_episodes:
        need(
            isinstance(config.wm_max_pieces, int) and config.wm_max_pieces > 15,
            "wm_max_pieces",
            "must be an int > 15 (the longest open-loop horizon)",
        )
    need(
        config.num_envs % num_devices == 0,
        "num_envs",
        f"must be a multiple of the device count {num_devices}",
    )
    need(
        config.batch_size % num_devices == 0,
        "batch_size",
        f"must be a multiple of the device count {num_devices}",
    )
    need(config.train_ratio > 0, "train_ratio", "must be > 0")
    need(config.ckpt_minutes > 0, "ckpt_minutes", "must be > 0")
    need(config.train_minutes >= 0, "train_minutes", "must be >= 0 (0 = no time limit)")
    need(0 < config.replay_memory_fraction <= 1, "replay_memory_fraction", "must be in (0, 1]")
    cap = config.replay_capacity
    need(
        isinstance(cap, int) and cap % config.num_envs == 0,
        "replay_capacity",
        f"must be a multiple of num_envs={config.num_envs}",
    )
    need(
        cap // config.num_envs >= max(config.seq_len, config.collect_steps),
        "replay_capacity",
        f"must hold max(seq_len, collect_steps) steps per env: >= "
        f"{max(config.seq_len, config.collect_steps) * config.num_envs}",
    )
    if config.agent.world_model == "board":
        if config.env.action_mode != "placement":
            raise UserError(
                f"config.agent.world_model: got 'board'; the board world model plans over "
                f"placements: needs env.action_mode='placement', got {config.env.action_mode!r}"
            )
        if config.agent.qhead:
            raise UserError(
                "config.agent.qhead: got True; the board world model has no Q head: set "
                "agent.qhead=False"
            )
        imag = agent_config(config).imag_length
        if imag > config.env.queue_size:
            raise UserError(
                f"config.agent.imag_length: got {imag}; the board world model imagines with "
                f"the queue's pieces: at most env.queue_size={config.env.queue_size}"
            )
    if config.agent.qhead and not config.env.placement_features:
        raise UserError(
            "config.agent.qhead: got True; the Q head scores placements by their "
            "features: needs env.placement_features=True (placement mode), or set "
            "agent.qhead=False"
        )
    cur = config.curriculum
    if cur.enabled:
        limit = config.env.height - 4
        if not (isinstance(cur.max_rows, int) and 0 <= cur.max_rows <= limit):
            raise UserError(
                f"config.curriculum.max_rows: got {cur.max_rows!r}; allowed: an int "
                f"in [0, env.height - 4 = {limit}]"
            )
        if not (isinstance(cur.holes_per_row, int) and 1 <= cur.holes_per_row < config.env.width):
            raise UserError(
                f"config.curriculum.holes_per_row: got {cur.holes_per_row!r}; "
                f"allowed: an int in [1, env.width - 1]"
            )
        if not cur.anneal_steps >= 0:
            raise UserError(f"config.curriculum.anneal_steps: got {cur.anneal_steps!r}; >= 0")


def check_replay_memory(config: ml_collections.ConfigDict, spec: dict[str, Any]) -> int:
    """Bytes per device of the replay of rows `spec`; UserError (before any allocation) if it
    cannot fit in `replay_memory_fraction` of a device's memory."""
    total = replay.storage_bytes(spec, capacity=config.replay_capacity, num_envs=config.num_envs)
    per_device = total // jax.device_count()
    available, source = replay.device_memory_bytes(jax.local_devices()[0])
    budget = int(available * config.replay_memory_fraction)
    if per_device > budget:
        per_step = total / config.replay_capacity
        most = int(budget * jax.device_count() / per_step) // config.num_envs * config.num_envs
        raise UserError(
            f"config.replay_capacity: got {config.replay_capacity:,} steps = {total:,} bytes "
            f"({per_step:.0f} bytes/step, {per_device:,} per device), more than "
            f"replay_memory_fraction={config.replay_memory_fraction} of {available:,} bytes "
            f"({source}); allowed: replay_capacity <= {most:,}"
        )
    return per_device
