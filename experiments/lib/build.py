"""The env and the agent of an experiment config, and the config's checks (before any work).

`config.env.suite` picks the environment: "tetris" (`experiments.lib.tetris`) or "gymnax"
(`dreamer_jax.gymnax_env`); the loop, evaluation and checkpoints see only the protocol of
`dreamer_jax.envs`."""

from __future__ import annotations

from typing import Any

import jax
import ml_collections

from dreamer_jax import configs as agent_configs
from dreamer_jax import envs, replay
from dreamer_jax.agent import Agent
from dreamer_jax.board import BoardAgent
from experiments.lib import tetris
from experiments.lib.errors import UserError
from tetris_jax import Tetris

SUITES = ("tetris", "gymnax", "import")


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config as run on this backend: `accelerator_num_envs` replaces `num_envs` off-CPU."""
    config = ml_collections.ConfigDict(config.to_dict())
    if jax.default_backend() != "cpu" and config.accelerator_num_envs:
        config.num_envs = config.accelerator_num_envs
    return config


def make_env(config: ml_collections.ConfigDict, evaluation: bool = False):
    """The training env of `config.env` (a `dreamer_jax.envs.Environment`), or (evaluation=True)
    the evaluation rules: Tetris without its training step limit; a gymnax env as in training
    (its time limit is part of the task). Checked against the protocol before any compile."""
    suite = config.env.suite
    if suite == "tetris":
        env = tetris.make_env(config, evaluation)
    elif suite == "gymnax":
        from dreamer_jax.gymnax_env import GymnaxEnv

        try:
            env = GymnaxEnv(config.env.name, max_steps=int(config.env.max_steps) or None)
        except ValueError as err:
            raise UserError(f"config.env.{err}") from None
    elif suite == "import":
        env = _import_env(config.env.name)
    else:
        raise UserError(f"config.env.suite: got {suite!r}; allowed: {', '.join(SUITES)}")
    if suite != "tetris":  # Tetris is checked by its own tests; this traces it (seconds).
        try:
            envs.check_env(env)
        except ValueError as err:
            raise UserError(f"config.env ({env!r}): {err}") from None
    return env


def _import_env(name: str):
    """`module:factory` called with no arguments: your own env (README, "Your own
    environment")."""
    import importlib

    module, _, attr = str(name).partition(":")
    if not module or not attr:
        raise UserError(f"config.env.name: got {name!r}; suite 'import' needs 'module:factory'")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise UserError(f"config.env.name: got {name!r}; cannot import it: {err}") from None
    return factory()


def task(env):
    """The module that evaluates `env` and names the score ranking checkpoints: Tetris' own
    (lines per game) or the generic one (return per episode); both have `evaluate`, `SCORE`."""
    from experiments.lib import episodes

    return tetris if isinstance(env, Tetris) else episodes


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


def make_agent(config: ml_collections.ConfigDict, env) -> Agent | BoardAgent:
    """The agent of a config: DreamerV3's (`agent.world_model="rssm"`) or the board world
    model's lookahead agent (`"board"`, Tetris placement mode)."""
    c = agent_config(config)
    if c.world_model == "board":
        feats = getattr(env, "board_features", None) if c.board_features else None
        if c.board_features and feats is None:
            raise UserError(
                "config.agent.board_features: got True; this env has no board_features "
                "function (Tetris has)"
            )
        step = getattr(env, "board_step", None) if c.board_oracle else None
        if c.board_oracle and step is None:
            raise UserError(
                "config.agent.board_oracle: got True; this env has no board_step function "
                "(Tetris has)"
            )
        return BoardAgent(
            c,
            env.observation_spec(),
            env.num_actions,
            env.action_planes(),
            board_features=feats,
            true_step=step,
        )
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
    if config.env.suite == "tetris":
        tetris.check_config(config)
    else:
        for field, off in (
            ("agent.qhead", not config.agent.qhead),
            ("agent.world_model", config.agent.world_model in (None, "rssm")),
            ("curriculum.enabled", not config.curriculum.enabled),
            ("wm_episodes", not config.wm_episodes),
        ):
            if not off:
                raise UserError(
                    f"config.{field}: Tetris only; set it off (False / 0) for "
                    f"env.suite={config.env.suite!r}"
                )


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
