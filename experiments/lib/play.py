"""Play full games with a trained agent (and the baselines) on device; statistics; a GIF."""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import numpy as np

from dreamer_jax.agent import Agent
from experiments.lib import policies
from tetris_jax import State, Tetris, heuristics, render, rollout

BASELINES = ("random", "dellacherie", "el_tetris", "bcts")


Games = rollout.Games


@functools.lru_cache(maxsize=16)
def _play_fn(env: Tetris, agent: Agent | None, num_games: int, max_pieces: int, mode: str):
    """Jitted run(params, key) -> Games. agent None: uniformly random over allowed actions."""

    def run(params, key):
        if agent is None:
            act, carry = policies.random_policy, ()
        else:
            act, carry = policies.agent_policy(agent, params, mode), agent.initial_carry(num_games)
        r = rollout.play(env, act, key, num_games=num_games, max_pieces=max_pieces, carry=carry)
        return rollout.games(r)

    return jax.jit(run)


def _host(games: Games) -> Games:
    return Games(*(np.asarray(x) for x in games))


def play_agent(env: Tetris, agent: Agent, params: Any, key: jax.Array, *, num_games: int,
               max_pieces: int, mode: str = "greedy") -> Games:  # fmt: skip
    """`num_games` games in parallel until each tops out or reaches `max_pieces`."""
    return _host(_play_fn(env, agent, num_games, max_pieces, mode)(params, key))


def play_baseline(env: Tetris, name: str, key: jax.Array, *, num_games: int,
                  max_pieces: int) -> Games | None:  # fmt: skip
    """A tetris_jax.heuristics controller on the same games, or None if unavailable.

    In direct mode only "random" exists: a uniformly random primitive move (among the allowed
    ones) every step.
    """
    if env.action_mode != "placement":
        if name != "random":
            return None
        return _host(_play_fn(env, None, num_games, max_pieces, "sample")(None, key))
    return _host(heuristics.play(env, name, key, num_games, max_pieces))


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


@functools.lru_cache(maxsize=4)
def _record_fn(env: Tetris, agent: Agent, steps: int, mode: str):
    def run(params, key):
        act = policies.agent_policy(agent, params, mode)
        last, tr = rollout.trace(env, act, key, num_games=1, steps=steps,
                                 carry=agent.initial_carry(1))  # fmt: skip
        return tr.states, tr.going, last.states

    return jax.jit(run)


def record_game(env: Tetris, agent: Agent, params: Any, key: jax.Array, *, max_frames: int,
                mode: str = "greedy") -> list[State]:  # fmt: skip
    """The states of one game (at most `max_frames`), for `tetris_jax.render.save_gif`: the
    first of `play_agent`'s games for the same key."""
    steps = max(max_frames - 1, 0)
    states, going, last = jax.device_get(_record_fn(env, agent, steps, mode)(params, key))
    n = int(going[:, 0].sum())
    frames = [jax.tree.map(lambda x, t=t: x[t, 0], states) for t in range(n)]
    return frames + [jax.tree.map(lambda x: x[0], last)]


def write_gif(path: str, env: Tetris, states: list[State], fps: float = 8) -> None:
    """An animated GIF of the states, drawn by `tetris_jax.render`."""
    render.save_gif(states, path, fps=fps, env=env, cell=12)
