"""What only Tetris has, behind the environment protocol: its env from a config and that
config's checks, the curriculum of pre-filled start boards, the per-step line statistics of
collection, and greedy evaluation in lines per game (the heuristic baselines and the game
statistics are in `experiments.lib.play`)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from dreamer_jax import configs as agent_configs
from experiments.lib.errors import UserError
from tetris_jax import Tetris

SCORE = "lines_mean"  # The evaluation statistic that ranks checkpoints.


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


def check_config(config: ml_collections.ConfigDict) -> None:
    """The Tetris-only fields: the Q head's placements, the board world model, the curriculum."""
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
        if config.agent.board_act_plan2 and config.env.queue_size < 2:
            raise UserError(
                f"config.agent.board_act_plan2: got True; plan2 places the current piece and "
                f"the queue's next: needs env.queue_size >= 2, got {config.env.queue_size}"
            )
        imag = config.agent.imag_length
        imag = agent_configs.Config().imag_length if imag is None else imag  # No preset sets it.
        if imag > config.env.queue_size:
            raise UserError(
                f"config.agent.imag_length: got {imag}; the board world model imagines with "
                f"the queue's pieces: at most env.queue_size={config.env.queue_size}"
            )
        if config.agent.board_imag_plan2 and imag + 1 > config.env.queue_size:
            raise UserError(
                f"config.agent.board_imag_plan2: got True; every imagined plan2 step places a "
                f"piece and the queue's next two: needs env.queue_size >= imag_length + 1 = "
                f"{imag + 1}, got {config.env.queue_size}"
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


def curriculum_boards(
    key: jax.Array, num: int, height: int, width: int, max_rows: jax.Array, holes: int
) -> jax.Array:
    """(num, height, width) bool start boards: 0..max_rows bottom rows filled, `holes` gaps each."""
    k_rows, k_holes = jax.random.split(key)
    rows = jax.random.randint(k_rows, (num,), 0, max_rows + 1)
    u = jax.random.uniform(k_holes, (num, height, width))
    gap = jnp.argsort(jnp.argsort(u, axis=-1), axis=-1) < holes  # `holes` random columns.
    row = jnp.arange(height)[None, :, None]
    return ~gap & (row >= height - rows[:, None, None])


def max_curriculum_rows(env_steps: jax.Array, *, max_rows: int, anneal_steps: int) -> jax.Array:
    """Linear anneal from `max_rows` to 0 over `anneal_steps` env steps."""
    left = 1.0 - env_steps / max(anneal_steps, 1)
    return jnp.round(max_rows * jnp.clip(left, 0.0, 1.0)).astype(jnp.int32)


def collect_stats(ts: Any, end: jax.Array) -> dict[str, jax.Array]:
    """Per-step line statistics of a collect step ((N,) time steps, `end` their is_last)."""
    m = ts.metrics
    return {
        "ep_lines_max": jnp.max(jnp.where(end, m["total_lines"], 0)).astype(jnp.float32),
        "lines": jnp.sum(m["lines_cleared"]).astype(jnp.float32),
    }


def evaluate(env: Tetris, agent, params, key, *, episodes: int, max_steps: int):
    """Greedy games on the empty board: `play.stats` (lines per game, ...)."""
    from experiments.lib import play

    games = play.play_agent(env, agent, params, key, num_games=episodes, max_pieces=max_steps)
    return play.stats(games)
