"""Shared by the entry points: build the env and agent from a config, check it, compare configs."""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import ml_collections

from dreamer_jax import configs as agent_configs
from dreamer_jax.agent import Agent
from tetris_jax import Tetris

CONFIG_JSON = "config.json"


class UserError(Exception):
    """A mistake a user can fix (bad config, bad workdir, missing checkpoint): no traceback."""


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
            height=e.height, width=e.width, action_mode=e.action_mode,
            reward_mode=e.reward_mode, randomizer=e.randomizer, queue_size=e.queue_size,
            max_steps=max_steps, shaping_gamma=e.shaping_gamma,
            game_over_penalty=e.game_over_penalty, piece_reward=e.piece_reward,
            placement_features=e.placement_features,
        )  # fmt: skip
    except ValueError as err:
        raise UserError(f"config.env: {err}") from None


def agent_config(config: ml_collections.ConfigDict) -> agent_configs.Config:
    overrides = {k: v for k, v in config.agent.items() if v is not None}
    try:
        return agent_configs.get_config(
            config.agent_preset, batch_size=config.batch_size, batch_length=config.seq_len,
            **overrides,
        )  # fmt: skip
    except agent_configs.ConfigError as err:
        raise UserError(f"config.agent: {err}") from None


def make_agent(config: ml_collections.ConfigDict, env: Tetris) -> Agent:
    return Agent(agent_config(config), env.observation_spec(), env.num_actions)


def check_config(config: ml_collections.ConfigDict, num_devices: int) -> None:
    """Raise UserError naming the first bad field, before anything is compiled."""

    def need(ok: bool, field: str, allowed: str) -> None:
        if not ok:
            raise UserError(f"config.{field}: got {config[field]!r}; {allowed}")

    for field in ("num_envs", "collect_steps", "batch_size", "seq_len", "total_env_steps",
                  "log_every", "dashboard_every", "keep_last"):  # fmt: skip
        need(isinstance(config[field], int) and config[field] >= 1, field, "must be an int >= 1")
    for field in ("accelerator_num_envs", "train_start", "eval_episodes", "eval_max_pieces",
                  "no_lines_warning_steps"):  # fmt: skip
        need(isinstance(config[field], int) and config[field] >= 0, field, "must be an int >= 0")
    need(config.num_envs % num_devices == 0, "num_envs",
         f"must be a multiple of the device count {num_devices}")  # fmt: skip
    need(config.batch_size % num_devices == 0, "batch_size",
         f"must be a multiple of the device count {num_devices}")  # fmt: skip
    need(config.train_ratio > 0, "train_ratio", "must be > 0")
    need(config.ckpt_minutes > 0, "ckpt_minutes", "must be > 0")
    need(config.train_minutes >= 0, "train_minutes", "must be >= 0 (0 = no time limit)")
    need(0 < config.replay_memory_fraction <= 1, "replay_memory_fraction", "must be in (0, 1]")
    cap = config.replay_capacity
    need(isinstance(cap, int) and cap % config.num_envs == 0, "replay_capacity",
         f"must be a multiple of num_envs={config.num_envs}")  # fmt: skip
    need(cap // config.num_envs >= max(config.seq_len, config.collect_steps), "replay_capacity",
         f"must hold max(seq_len, collect_steps) steps per env: >= "
         f"{max(config.seq_len, config.collect_steps) * config.num_envs}")  # fmt: skip
    if config.agent.qhead and not config.env.placement_features:
        raise UserError("config.agent.qhead: got True; the Q head scores placements by their "
                        "features: needs env.placement_features=True (placement mode), or set "
                        "agent.qhead=False")  # fmt: skip
    cur = config.curriculum
    if cur.enabled:
        limit = config.env.height - 4
        if not (isinstance(cur.max_rows, int) and 0 <= cur.max_rows <= limit):
            raise UserError(f"config.curriculum.max_rows: got {cur.max_rows!r}; allowed: an int "
                            f"in [0, env.height - 4 = {limit}]")  # fmt: skip
        if not (isinstance(cur.holes_per_row, int) and 1 <= cur.holes_per_row < config.env.width):
            raise UserError(f"config.curriculum.holes_per_row: got {cur.holes_per_row!r}; "
                            f"allowed: an int in [1, env.width - 1]")  # fmt: skip
        if not cur.anneal_steps >= 0:
            raise UserError(f"config.curriculum.anneal_steps: got {cur.anneal_steps!r}; >= 0")


def to_plain(config: ml_collections.ConfigDict) -> dict[str, Any]:
    return json.loads(config.to_json())


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_diff(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Lines 'field: saved -> current' for every field that differs. A null agent field that
    `current` lacks (an unset override of an option since retired: off) is no difference."""
    a, b = flat(saved), flat(current)
    missing = object()
    return [
        f"{k}: {a.get(k, missing) if k in a else '<absent>'} -> {b[k] if k in b else '<absent>'}"
        for k in sorted(set(a) | set(b))
        if a.get(k, missing) != b.get(k, missing)
        and not (k.startswith("agent.") and k not in b and a[k] is None)
    ]


def load_config_json(workdir: str) -> dict[str, Any] | None:
    path = os.path.join(workdir, CONFIG_JSON)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def config_from_json(d: dict[str, Any]) -> ml_collections.ConfigDict:
    """A saved config. It must have every field of today's (experiments/lines_only.py): one it
    lacks was added since, and only the user knows the value that reproduces that run. Fields
    today's config lacks are kept as saved (a config file may add its own), except agent
    fields, which go to dreamer_jax: a null one (an unset override, e.g. a retired option left
    off) is dropped, a set one refused."""
    from experiments import lines_only

    base = lines_only.get_config().to_dict()
    want, got = flat(base), flat(d)
    missing = sorted(set(want) - set(got))
    if missing:
        raise UserError(
            f"{CONFIG_JSON} lacks {', '.join(missing)} (saved before they existed): add each "
            "with the value its run used (e.g. env.placement_features false, env.piece_reward "
            "0.0, agent.qhead null for runs from before those fields)"
        )
    unknown = sorted(k for k in set(got) - set(want) if k.startswith("agent."))
    retired = [f"{k}={got[k]!r}" for k in unknown if got[k] is not None]
    if retired:
        raise UserError(
            f"{CONFIG_JSON} sets {', '.join(retired)}, which dreamer_jax no longer has (a "
            "retired option?); if it only shaped training, delete it there to evaluate the params"
        )

    def merge(base: dict[str, Any], saved: dict[str, Any], path: str) -> dict[str, Any]:
        out = dict(base)
        for k, v in saved.items():
            if isinstance(v, dict) and isinstance(base.get(k), dict):
                out[k] = merge(base[k], v, f"{path}{k}.")
            elif f"{path}{k}" not in unknown:
                out[k] = v
        return out

    return ml_collections.ConfigDict(merge(base, d, ""))


def is_main_process() -> bool:
    return jax.process_index() == 0


def dump_json(path: str, obj: Any) -> None:
    """Write JSON atomically (a crash never leaves half a file)."""
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(path + ".tmp", path)


def load_config_file(path: str) -> ml_collections.ConfigDict:
    """`get_config()` of a config file given by path (as --config takes it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_config_file", path)
    if spec is None or spec.loader is None or not os.path.exists(path):
        raise UserError(f"{path}: no such config file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def load_checkpoint(workdir: str | None, checkpoint: str | None, step: int | None):
    """(config ConfigDict, env, agent, params, step) from a workdir checkpoint or an export;
    the env has the evaluation rules (no training step limit)."""
    from experiments import ckpt

    if bool(workdir) == bool(checkpoint):
        raise UserError("give exactly one of --workdir and --checkpoint")
    folder = workdir or checkpoint
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: no such folder")
    saved = load_config_json(folder)
    if saved is None:
        raise UserError(f"{folder}: no {CONFIG_JSON} (not a training run or export)")
    config = config_from_json(saved)
    env = make_env(config, evaluation=True)
    agent = make_agent(config, env)
    abstract = jax.eval_shape(agent.init, jax.random.key(0)).params
    if checkpoint:
        params = ckpt.load_exported(checkpoint, abstract)
        info_path = os.path.join(checkpoint, "export.json")
        step = json.load(open(info_path))["step"] if os.path.exists(info_path) else 0
    else:
        checkpoints = ckpt.Checkpointer(workdir, create=False)
        params, step = checkpoints.restore_params(abstract, step)
        checkpoints.close()
    return config, env, agent, params, step
