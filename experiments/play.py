"""Play full games with a trained agent (and the baselines) on device; statistics; a GIF."""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dreamer_jax.agent import Agent
from experiments.loop import policy_obs
from tetris_jax import State, Tetris, render

BASELINES = ("random", "dellacherie", "el_tetris", "bcts")


class Games(NamedTuple):
    """Per-game results, each (num_games,), as in tetris_jax.heuristics.PlayResult."""

    lines: Any  # lines cleared.
    pieces: Any  # pieces locked (a topping-out piece is not counted).
    score: Any  # Guideline score.
    capped: Any  # still going at the piece cap.


def step_limit(env: Tetris, max_pieces: int) -> int:
    """Env steps allowed per game: one per piece in placement mode, generous in direct mode."""
    return max_pieces if env.action_mode == "placement" else max_pieces * 4 * env.rows


@functools.lru_cache(maxsize=16)
def _play_fn(env: Tetris, agent: Agent | None, num_games: int, max_pieces: int, mode: str):
    """Jitted run(params, key) -> Games. agent None: uniformly random over allowed actions."""
    limit = step_limit(env, max_pieces)

    def run(params, key):
        # Same key use as tetris_jax.heuristics.play: identical piece streams for the same key.
        key, reset_key = jax.random.split(key)
        states, ts = jax.vmap(env.reset)(jax.random.split(reset_key, num_games))
        carry = agent.initial_carry(num_games) if agent else jnp.zeros((num_games,))
        term = jnp.zeros((num_games,), bool)

        def live(c):
            states, _, _, _, _, t = c
            going = ~states.done & (states.pieces_placed < max_pieces)
            return (t < limit) & jnp.any(going)

        def body(c):
            states, ts, carry, term, key, t = c
            key, sub = jax.random.split(key)
            if agent:
                action, carry = agent.policy(params, carry, policy_obs(ts), sub, mode)
            else:
                logits = jnp.where(ts.observation.action_mask, 0.0, -jnp.inf)
                action = jax.random.categorical(sub, logits, -1).astype(jnp.int32)
            going = ~states.done & (states.pieces_placed < max_pieces)
            new, new_ts = jax.vmap(env.step)(states, action)
            pick = lambda a, b: jax.tree.map(
                lambda u, v: jnp.where(going.reshape(going.shape + (1,) * (u.ndim - 1)), u, v),
                a, b)  # fmt: skip
            term = term | (going & new_ts.is_terminal)
            return pick(new, states), pick(new_ts, ts), carry, term, key, t + 1

        c = jax.lax.while_loop(live, body, (states, ts, carry, term, key, jnp.int32(0)))
        states, term = c[0], c[3]
        return Games(states.total_lines, states.pieces_placed - term.astype(jnp.int32),
                     states.score, ~term)  # fmt: skip

    return jax.jit(run)


def play_agent(env: Tetris, agent: Agent, params: Any, key: jax.Array, *, num_games: int,
               max_pieces: int, mode: str = "greedy") -> Games:  # fmt: skip
    """`num_games` games in parallel until each tops out or reaches `max_pieces`."""
    out = _play_fn(env, agent, num_games, max_pieces, mode)(params, key)
    return Games(*(np.asarray(x) for x in out))


def play_baseline(env: Tetris, name: str, key: jax.Array, *, num_games: int,
                  max_pieces: int) -> Games | None:  # fmt: skip
    """A tetris_jax.heuristics controller on the same seeds, or None if unavailable.

    In direct mode only "random" exists: a uniformly random primitive move (among the allowed
    ones) every step, played by the same loop as the agent.
    """
    if env.action_mode != "placement":
        if name != "random":
            return None
        out = _play_fn(env, None, num_games, max_pieces, "sample")(None, key)
        return Games(*(np.asarray(x) for x in out))
    try:
        from tetris_jax import heuristics
    except ImportError:
        return None
    r = heuristics.play(env, name, key, num_games, max_pieces)
    return Games(*(np.asarray(x) for x in (r.lines, r.pieces, r.score, r.capped)))


def stats(games: Games) -> dict[str, float]:
    """Lines per game (mean, median, std, 95% interval of the mean, 2.5-97.5 percentiles),
    pieces, score, lines per piece, share of games that hit the cap."""
    lines = np.asarray(games.lines, np.float64)
    pieces = np.asarray(games.pieces, np.float64)
    n = len(lines)
    std = float(lines.std(ddof=1)) if n > 1 else 0.0
    half = 1.96 * std / math.sqrt(n)
    return {
        "games": n, "lines_mean": float(lines.mean()), "lines_median": float(np.median(lines)),
        "lines_std": std, "lines_ci95_low": float(lines.mean() - half),
        "lines_ci95_high": float(lines.mean() + half),
        "lines_p2_5": float(np.percentile(lines, 2.5)),
        "lines_p97_5": float(np.percentile(lines, 97.5)), "lines_max": float(lines.max()),
        "pieces_mean": float(pieces.mean()),
        "score_mean": float(np.asarray(games.score, np.float64).mean()),
        "lines_per_piece": float(lines.sum() / max(pieces.sum(), 1.0)),
        "capped_share": float(np.asarray(games.capped).mean()),
    }  # fmt: skip


def record_game(env: Tetris, agent: Agent, params: Any, key: jax.Array, *, max_frames: int,
                mode: str = "greedy") -> list[State]:  # fmt: skip
    """The states of one game (at most `max_frames`), for `tetris_jax.render.save_gif`."""
    key, reset_key = jax.random.split(key)
    state, ts = jax.jit(env.reset)(jax.random.split(reset_key, 1)[0])
    carry = agent.initial_carry(1)

    @jax.jit
    def step(state, ts, carry, k):
        obs = jax.tree.map(lambda x: x[None], policy_obs(ts))
        action, carry = agent.policy(params, carry, obs, k, mode)
        state, ts = env.step(state, action[0])
        return state, ts, carry

    frames = []
    for i in range(max_frames):
        frames.append(state)
        if bool(state.done):
            break
        state, ts, carry = step(state, ts, carry, jax.random.fold_in(key, i))
    return frames


def write_gif(path: str, env: Tetris, states: list[State], fps: float = 8) -> None:
    """An animated GIF of the states, drawn by `tetris_jax.render`."""
    render.save_gif(states, path, fps=fps, env=env, cell=12)
