"""Baseline controllers for placement mode: random and one-piece feature-weighted heuristics.

A heuristic scores every (rotation, column) placement of the current piece by a weighted sum of
features of the board the placement leaves (after line clears) and plays the argmax; placements
that top out, and duplicates that the action mask drops, are worth -inf. Feature definitions
and weights: `shared/TETRIS_FACTS.md` (MdpTetris conventions).

All placements are scored at once: per-placement quantities are (num_actions,) arrays, and the
board features run on `board.Cols` whose columns are those arrays, so under `vmap` every op is
one elementwise kernel over (batch, num_actions) values.

    policy = heuristics.make_policy(env, "dellacherie")   # (state, key) -> action
    result = heuristics.play(env, "dellacherie", key, num_games=64, max_pieces=2000)
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from tetris_jax import afterstates, rollout
from tetris_jax.env import State, Tetris
from tetris_jax.randomizer import mix32

FEATURES = afterstates.FEATURES
# Weights from TETRIS_FACTS.md. Dellacherie (Fahey 2003); El-Tetris (Yiyuan Lee / El-Ashi 2011),
# which rewards lines removed rather than eroded cells; BCTS (Thiery & Scherrer 2009).
WEIGHTS: dict[str, dict[str, float]] = {
    "dellacherie": {
        "landing_height": -1.0,
        "eroded_cells": 1.0,
        "row_transitions": -1.0,
        "column_transitions": -1.0,
        "holes": -4.0,
        "well_sums": -1.0,
    },
    "el_tetris": {
        "landing_height": -4.500158825082766,
        "lines": 3.4181268101392694,
        "row_transitions": -3.2178882868487753,
        "column_transitions": -9.348695305445199,
        "holes": -7.899265427351652,
        "well_sums": -3.3855972247263626,
    },
    "bcts": {
        "landing_height": -12.63,
        "eroded_cells": 6.60,
        "row_transitions": -9.22,
        "column_transitions": -19.77,
        "holes": -13.08,
        "well_sums": -10.49,
        "hole_depth": -1.61,
        "rows_with_holes": -24.04,
    },
}
POLICIES = ("random", *WEIGHTS)

Policy = Callable[[State, jax.Array], jax.Array]


def _check_env(env: Tetris) -> None:
    if env.action_mode != "placement":
        raise ValueError(
            f"heuristics: env.action_mode={env.action_mode!r} is not allowed; the "
            "controllers need action_mode='placement'."
        )


def placement_features(env: Tetris, state: State) -> tuple[dict[str, jax.Array], jax.Array]:
    """Features of every placement of the current piece, and which placements are playable.

    Returns ({feature: (num_actions,) float32}, valid (num_actions,) bool), see
    `afterstates.placement_features`. `valid` is `env.action_mask` without its all-top-out
    fallback: a distinct placement that does not top out.
    """
    _check_env(env)
    return afterstates.placement_features(state.cols, state.piece, env.width, env.height, env.rows)


def placement_scores(env: Tetris, state: State, weights: dict[str, float]) -> jax.Array:
    """(num_actions,) float32 weighted feature sums; -inf where the placement is not valid."""
    unknown = set(weights) - set(FEATURES)
    if unknown:
        raise ValueError(
            f"heuristics: weights has unknown features {sorted(unknown)}; allowed: {FEATURES}."
        )
    features, valid = placement_features(env, state)  # XLA drops the features not weighted.
    score = sum(jnp.float32(w) * features[k] for k, w in weights.items())
    return jnp.where(valid, score, -jnp.inf)


def _first_argmax(x: jax.Array) -> jax.Array:
    """argmax over the last axis, ties to the lowest index.

    `lax.top_k` (ties to the lowest index too) instead of `jnp.argmax`: XLA's CPU backend fuses
    the whole feature computation into an argmax reduction, where it runs unvectorised (~4-5x
    slower); top_k is a library call, so its input is computed by vectorised elementwise loops.
    """
    return jax.lax.top_k(x, 1)[1][..., 0].astype(jnp.int32)


def random_policy(env: Tetris, state: State, key: jax.Array) -> jax.Array:
    """A uniformly random action among those `env.action_mask` allows (never empty)."""
    # The allowed action with the largest random priority. Priorities hash one random word with
    # the action index (one threefry call per decision, not one per action) and are 24-bit
    # floats (top_k is fast on floats); a tie for the top (chance ~2e-6 per decision) goes to
    # the lower index.
    word = jax.random.bits(key, (), jnp.uint32)
    index = jnp.arange(env.num_actions, dtype=jnp.uint32) * jnp.uint32(0x9E3779B9)
    priority = (mix32(word ^ index) >> 8).astype(jnp.float32)
    return _first_argmax(jnp.where(env.action_mask(state), priority, -1.0))


def make_policy(env: Tetris, name: str, weights: dict[str, float] | None = None) -> Policy:
    """`(state, key) -> action` for one game (vmap it for a batch); the key is used by "random"
    only. `name` is one of POLICIES; `weights` overrides a heuristic's weights. Ties go to the
    lowest action index; if every placement tops out, action 0 (the game ends either way)."""
    _check_env(env)
    if name not in POLICIES:
        raise ValueError(
            f"heuristics: name={name!r} is not allowed; name must be one of {POLICIES}."
        )
    if name == "random":
        if weights is not None:
            raise ValueError("heuristics: the random policy takes no weights.")
        return functools.partial(random_policy, env)
    weights = dict(WEIGHTS[name] if weights is None else weights)

    def policy(state: State, key: jax.Array | None = None) -> jax.Array:
        del key
        return _first_argmax(placement_scores(env, state, weights))

    return policy


# Per-game results of `play`: lines, pieces, score, capped (each (num_games,)).
PlayResult = rollout.Games


def game_keys(key: jax.Array, num_games: int) -> jax.Array:
    """The keys `play` resets its games with: game i starts from `env.reset(keys[i])`."""
    return jax.random.split(jax.random.split(key)[1], num_games)


def batch_policy(policy: Policy) -> rollout.Policy:
    """A one-game controller `(state, key) -> action` as a `tetris_jax.rollout` policy."""

    def act(carry, states, ts, key):
        del ts
        keys = jax.random.split(key, states.piece.shape[0])
        return jax.vmap(policy)(states, keys), carry, ()

    return act


@functools.lru_cache(maxsize=32)
def _play_fn(env: Tetris, name: str, num_games: int, max_pieces: int):
    act = batch_policy(make_policy(env, name))

    def run(key):
        r = rollout.play(env, act, key, num_games=num_games, max_pieces=max_pieces)
        return rollout.games(r)

    return jax.jit(run)


def play(
    env: Tetris, policy_name: str, key: jax.Array, num_games: int, max_pieces: int
) -> PlayResult:
    """Plays `num_games` games (from `env.reset` with keys split from `key`) with a controller
    until each tops out or has made `max_pieces` decisions, in one compiled loop of vmapped
    steps. The compiled function is cached per (env, policy_name, num_games, max_pieces)."""
    _check_env(env)
    if not (isinstance(num_games, int) and num_games > 0):
        raise ValueError(f"heuristics: num_games={num_games!r} must be a positive int.")
    if not (isinstance(max_pieces, int) and max_pieces > 0):
        raise ValueError(f"heuristics: max_pieces={max_pieces!r} must be a positive int.")
    if policy_name not in POLICIES:
        raise ValueError(
            f"heuristics: policy_name={policy_name!r} is not allowed; it must be one of {POLICIES}."
        )
    return _play_fn(env, policy_name, num_games, max_pieces)(key)
