"""Play full games with a trained agent (and the baselines) on device; statistics; one game
step by step (to watch) or recorded (a GIF)."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from dreamer_jax.agent import Agent
from experiments.lib import policies
from tetris_jax import State, Tetris, heuristics, render, rollout

BASELINES = ("random", "dellacherie", "el_tetris", "bcts")


Games = rollout.Games


@functools.lru_cache(maxsize=16)
def _play_fn(
    env: Tetris,
    agent: Agent | None,
    num_games: int,
    max_pieces: int,
    mode: str,
    slots: int | None = None,
):
    """Jitted run(params, key) -> Games. agent None: uniformly random over allowed actions.
    slots: parallel games (`rollout.play_slots`); None: all `num_games` at once."""
    width = num_games if slots is None else min(slots, num_games)

    def run(params, key):
        if agent is None:
            act, carry = policies.random_policy, ()
        elif mode == policies.TRUE_DYNAMICS:
            act = policies.true_dynamics_policy(env, agent, params)
            carry = agent.initial_carry(width)
        elif mode == policies.TRUE_PLAN2:
            act = policies.true_plan2_policy(env, agent, params)
            carry = agent.initial_carry(width)
        else:
            act, carry = policies.agent_policy(agent, params, mode), agent.initial_carry(width)
        if width < num_games:
            return rollout.play_slots(
                env, act, key, num_games=num_games, slots=width, max_pieces=max_pieces, carry=carry
            )
        r = rollout.play(env, act, key, num_games=num_games, max_pieces=max_pieces, carry=carry)
        return rollout.games(r)

    return jax.jit(run)


def _host(games: Games) -> Games:
    return Games(*(np.asarray(x) for x in games))


def play_agent(
    env: Tetris,
    agent: Agent,
    params: Any,
    key: jax.Array,
    *,
    num_games: int,
    max_pieces: int,
    mode: str = "greedy",
    slots: int | None = None,
) -> Games:
    """`num_games` games in parallel until each tops out or reaches `max_pieces`; with `slots`,
    the same games on that many parallel slots (`rollout.play_slots`: a slot whose game ends
    starts the next; the same results for a deterministic mode, faster when lengths vary). `mode`:
    "greedy", "sample", `policies.PLAN2` (a board world-model agent's lookahead two placements
    deep through its model, `BoardAgent.plan2`) or `policies.TRUE_DYNAMICS` (its lookahead with
    the real rules in place of its model: a diagnostic, see `policies.true_dynamics_policy`) or
    `policies.TRUE_PLAN2` (plan2 with the real rules: `policies.true_plan2_policy`)."""
    if mode in policies.BOARD_MODES and not hasattr(agent, "lookahead"):
        raise ValueError(
            f"mode {mode!r}: only a board world-model agent (agent.world_model='board') ranks "
            "placements by a lookahead through a model"
        )
    if slots is not None and slots < 1:
        raise ValueError(f"slots: got {slots}; allowed: >= 1 (or None: every game at once)")
    return _host(_play_fn(env, agent, num_games, max_pieces, mode, slots)(params, key))


def play_baseline(
    env: Tetris, name: str, key: jax.Array, *, num_games: int, max_pieces: int
) -> Games | None:
    """A tetris_jax.heuristics controller on the same games, or None if unavailable.

    In direct mode only "random" exists: a uniformly random primitive move (among the allowed
    ones) every step.
    """
    if env.action_mode != "placement":
        if name != "random":
            return None
        return _host(_play_fn(env, None, num_games, max_pieces, "sample")(None, key))
    return _host(heuristics.play(env, name, key, num_games, max_pieces))


def bootstrap_ci(
    x: np.ndarray, *, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `x`: the `level` central share of the means
    of `resamples` resamples with replacement (fixed seed, so the same sample gives the same
    interval). Unlike mean +- 1.96 sd/sqrt(n) it stays within [min(x), max(x)], so a count
    never gets a negative bound, and follows a skewed sample; it is widened to contain the
    mean itself if a very skewed small sample would leave it just outside."""
    x = np.asarray(x, np.float64).ravel()
    if x.size == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if x.min() == x.max():
        return mean, mean
    rng = np.random.default_rng(seed)
    n, means = x.size, []
    rows = max(1, 4_000_000 // n)  # Resamples per chunk: at most ~32 MB of indices at once.
    for start in range(0, resamples, rows):
        idx = rng.integers(0, n, (min(rows, resamples - start), n))
        means.append(x[idx].mean(axis=1))
    tail = 50.0 * (1.0 - level)
    low, high = np.percentile(np.concatenate(means), [tail, 100.0 - tail])
    return min(float(low), mean), max(float(high), mean)


def stats(games: Games) -> dict[str, float]:
    """Lines per game (mean, median, std, 95% bootstrap interval of the mean, 2.5-97.5
    percentiles), pieces, score, lines per piece, share of games that hit the cap."""
    lines = np.asarray(games.lines, np.float64)
    pieces = np.asarray(games.pieces, np.float64)
    n = len(lines)
    std = float(lines.std(ddof=1)) if n > 1 else 0.0
    low, high = bootstrap_ci(lines)
    return {
        "games": n,
        "lines_mean": float(lines.mean()),
        "lines_median": float(np.median(lines)),
        "lines_std": std,
        "lines_ci95_low": low,
        "lines_ci95_high": high,
        "lines_p2_5": float(np.percentile(lines, 2.5)),
        "lines_p97_5": float(np.percentile(lines, 97.5)),
        "lines_max": float(lines.max()),
        "pieces_mean": float(pieces.mean()),
        "score_mean": float(np.asarray(games.score, np.float64).mean()),
        "lines_per_piece": float(lines.sum() / max(pieces.sum(), 1.0)),
        "capped_share": float(np.asarray(games.capped).mean()),
    }


def per_game(games: Games) -> dict[str, list]:
    """Each game's lines, pieces, score and whether it hit the cap, in game order: what
    `stats` summarises, kept so that evaluations on other seeds can be pooled (`pooled`)."""
    return {
        "lines": [int(v) for v in np.asarray(games.lines)],
        "pieces": [int(v) for v in np.asarray(games.pieces)],
        "score": [int(v) for v in np.asarray(games.score)],
        "capped": [bool(v) for v in np.asarray(games.capped)],
    }


def pooled(records: list[dict[str, list]]) -> dict[str, float]:
    """`stats` of the games of several `per_game` records together (e.g. one evaluation's
    games on several seeds); the records must hold different games (different seeds)."""
    if not records:
        raise ValueError("pooled: no per-game records given")
    keys = ("lines", "pieces", "score", "capped")
    for i, r in enumerate(records):
        missing = [k for k in keys if k not in r]
        if missing:
            raise ValueError(f"pooled: record {i} lacks {missing} (needs {list(keys)})")
    cat = {k: np.concatenate([np.asarray(r[k]) for r in records]) for k in keys}
    return stats(Games(**cat))


@functools.lru_cache(maxsize=4)
def _record_fn(env: Tetris, agent: Agent, steps: int, mode: str):
    def run(params, key):
        act = policies.agent_policy(agent, params, mode)
        last, tr = rollout.trace(
            env, act, key, num_games=1, steps=steps, carry=agent.initial_carry(1)
        )
        return tr.states, tr.going, last.states

    return jax.jit(run)


def record_game(
    env: Tetris, agent: Agent, params: Any, key: jax.Array, *, max_frames: int, mode: str = "greedy"
) -> list[State]:
    """The states of one game (at most `max_frames`), for `tetris_jax.render.save_gif`: the
    first of `play_agent`'s games for the same key."""
    steps = max(max_frames - 1, 0)
    return rollout.frames(*_record_fn(env, agent, steps, mode)(params, key))


@functools.lru_cache(maxsize=4)
def _step_fn(env: Tetris, agent: Agent, max_pieces: int, mode: str):
    def one(params, r):
        act = policies.agent_policy(agent, params, mode)
        return rollout.step(env, act, r, max_pieces=max_pieces)[0]

    return jax.jit(one)


def game_states(
    env: Tetris, agent: Agent, params: Any, key: jax.Array, *, max_pieces: int, mode: str = "greedy"
) -> Iterator[State]:
    """One game's states, one step at a time (a generator, for games of any length): the first
    from `env.reset`, then one per step until the game ends or has `max_pieces` pieces; the
    first of `play_agent`'s games for the same key."""
    r = rollout.start(env, key, 1, agent.initial_carry(1))
    step = _step_fn(env, agent, max_pieces, mode)
    for _ in range(rollout.step_limit(env, max_pieces) + 1):
        state = jax.tree.map(lambda x: x[0], jax.device_get(r.states))
        yield state
        if bool(state.done) or int(state.pieces_placed) >= max_pieces:
            return
        r = step(params, r)


def end_note(state: State, max_pieces: int | None = None) -> str:
    """How a recorded game's last state ends it: "game over" (a top-out), "cut at N pieces
    (the piece cap)" when `max_pieces` stopped it, else "cut at N pieces" (the recording
    stopped while the game went on)."""
    if bool(state.done):
        return "game over"
    pieces = int(state.pieces_placed)
    capped = max_pieces is not None and pieces >= max_pieces
    return f"cut at {pieces:,} pieces" + (" (the piece cap)" if capped else "")


def write_gif(
    path: str, env: Tetris, states: list[State], fps: float = 8, max_pieces: int | None = None
) -> str:
    """An animated GIF of the states, drawn by `tetris_jax.render`, the lines and pieces on
    every frame and, on the last (held 2 s), whether the game ended there or was cut
    (`end_note`); returns that note."""
    note = end_note(states[-1], max_pieces)
    render.save_gif(
        states, path, fps=fps, env=env, cell=12, show_counters=True, end_note=note, hold_end_s=2.0
    )
    return note
