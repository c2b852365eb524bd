"""Games played by a policy: one step function, run to the games' end or for a fixed length.

    policy(carry, states, ts, key) -> (actions, carry, info)

acts on a batch of N games: `states` and `ts` are the vmapped env state and the time step to act
on, `key` one key for the whole batch, `carry` whatever the policy keeps between steps (an RSSM
state; `()` for a stateless controller) and `info` any per-step output to trace (`()` if none).

Every rollout starts the same way and uses its keys the same way, so that the agent, the
heuristic controllers and random play meet identical piece streams for the same key:
`key, reset_key = split(key)`; game i starts from `env.reset(split(reset_key, N)[i])`; each step
does `key, sub = split(key)` and gives `sub` to the policy.

- `play` runs a `lax.while_loop` until every game has ended or made `max_pieces` decisions
  (evaluation; heuristic baselines).
- `play_slots` plays the same N games (the same reset keys) on fewer parallel slots: a slot
  whose game ends starts the next unplayed one, so a few long games do not keep the whole
  batch stepping (evaluation of costly policies).
- `trace` runs a `lax.scan` of a fixed number of steps and returns every step's `Transition`
  (calibration, world-model reports, GIFs).
- `step` is one step of either; with `auto_reset=True` finished games restart by themselves
  (training collection, throughput benchmarks).

In `play` and `trace` a game that has ended or reached the cap is frozen: its state and time step
stop changing and `Transition.going` is False from then on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from tetris_jax.env import State, Tetris
from tetris_jax.types import TimeStep

Policy = Callable[[Any, State, TimeStep, jax.Array], tuple[jax.Array, Any, Any]]


class Rollout(NamedTuple):
    """The loop carry of N games."""

    states: State  # (N, ...) env states.
    ts: TimeStep  # (N, ...) the time steps to act on next.
    carry: Any  # the policy's own carry.
    terminated: jax.Array  # (N,) bool: the game ended by a top-out.
    key: jax.Array  # typed PRNG key.
    t: jax.Array  # () int32 steps taken.


class Transition(NamedTuple):
    """One step of N games, as `trace` returns it with a leading time axis (T, N, ...)."""

    states: State  # the states acted on.
    ts: TimeStep  # the time steps acted on.
    action: jax.Array  # (N,) int32.
    info: Any  # the policy's per-step output.
    next_ts: TimeStep  # the time steps that followed (for frozen games: `ts` again).
    going: jax.Array  # (N,) bool: the game was still going, so this step counted.


class Games(NamedTuple):
    """Per-game results of `play`, each (N,)."""

    lines: jax.Array  # int32: lines cleared.
    pieces: jax.Array  # int32: pieces locked on the board (the env's `pieces_placed`).
    score: jax.Array  # int32: Guideline score.
    capped: jax.Array  # bool: still going at the cap (not ended by a top-out).


def step_limit(env: Tetris, max_pieces: int) -> int:
    """Steps allowed per game: one per piece in placement mode, generous in direct mode."""
    return max_pieces if env.action_mode == "placement" else max_pieces * 4 * env.rows


def start(env: Tetris, key: jax.Array, num_games: int, carry: Any = ()) -> Rollout:
    """N fresh games from `env.reset`, keys split from `key` as described above."""
    key, reset_key = jax.random.split(key)
    states, ts = jax.vmap(env.reset)(jax.random.split(reset_key, num_games))
    return Rollout(states, ts, carry, jnp.zeros((num_games,), bool), key, jnp.int32(0))


def going(r: Rollout, max_pieces: int | None) -> jax.Array:
    """(N,) bool: the games that have not ended and are under the piece cap."""
    live = ~r.states.done
    return live if max_pieces is None else live & (r.states.pieces_placed < max_pieces)


def _freeze(mask: jax.Array, new: Any, old: Any) -> Any:
    pick = lambda u, v: jnp.where(mask.reshape(mask.shape + (1,) * (u.ndim - 1)), u, v)
    return jax.tree.map(pick, new, old)


def step(
    env: Tetris,
    policy: Policy,
    r: Rollout,
    *,
    max_pieces: int | None = None,
    auto_reset: bool = False,
    boards: jax.Array | None = None,
) -> tuple[Rollout, Transition]:
    """One policy decision and env step of every game.

    With `auto_reset` an ended game restarts (its reset shows up as the next step's is_first;
    `boards` (N, height, width), if given, are the start boards of such restarts); otherwise
    ended and capped games are frozen.
    """
    key, sub = jax.random.split(r.key)
    action, carry, info = policy(r.carry, r.states, r.ts, sub)
    if auto_reset:
        args = (r.states, action) if boards is None else (r.states, action, boards)
        states, ts = jax.vmap(env.auto_reset_step)(*args)
        live = jnp.ones(action.shape, bool)
    else:
        live = going(r, max_pieces)
        new_states, new_ts = jax.vmap(env.step)(r.states, action)
        states, ts = _freeze(live, new_states, r.states), _freeze(live, new_ts, r.ts)
    terminated = r.terminated | (live & ts.is_terminal)
    out = Transition(r.states, r.ts, action, info, ts, live)
    return Rollout(states, ts, carry, terminated, key, r.t + 1), out


def games(r: Rollout) -> Games:
    """The per-game results of a finished `play` or `trace`."""
    s = r.states
    return Games(s.total_lines, s.pieces_placed, s.score, ~r.terminated)


def play(
    env: Tetris,
    policy: Policy,
    key: jax.Array,
    *,
    num_games: int,
    max_pieces: int,
    carry: Any = (),
) -> Rollout:
    """Plays N games until each tops out or reaches `max_pieces`; the final carry (`games(r)`
    gives the results). Jit the caller."""
    limit = step_limit(env, max_pieces)
    live = lambda r: (r.t < limit) & jnp.any(going(r, max_pieces))
    body = lambda r: step(env, policy, r, max_pieces=max_pieces)[0]
    return jax.lax.while_loop(live, body, start(env, key, num_games, carry))


def play_slots(
    env: Tetris,
    policy: Policy,
    key: jax.Array,
    *,
    num_games: int,
    slots: int,
    max_pieces: int,
    carry: Any = (),
) -> Games:
    """The N games of `play` (game i from `env.reset(split(reset_key, N)[i])`), played on
    `slots` parallel games: when a slot's game ends (top-out, `max_pieces` decisions, or the
    step limit) its results are recorded and the slot starts the next unplayed game, whose
    first time step has `is_first` (the policy resets its carry there, as in training's
    auto-reset); `carry` is for `slots` games. A deterministic policy (one that ignores `key`)
    plays every game exactly as in `play`, so the results equal `games(play(...))`; a policy
    that samples draws other keys. Costs about sum(game lengths) / slots steps plus the
    longest game, where `play` costs the longest game for all N. Jit the caller."""
    if not 1 <= slots:
        raise ValueError(f"play_slots: slots={slots!r} must be >= 1")
    S = min(slots, num_games)
    key, reset_key = jax.random.split(key)
    keys = jax.random.split(reset_key, num_games)
    states, ts = jax.vmap(env.reset)(keys[:S])
    limit = step_limit(env, max_pieces)
    zeros = jnp.zeros((num_games,), jnp.int32)
    init = (
        Rollout(states, ts, carry, jnp.zeros((S,), bool), key, jnp.int32(0)),
        jnp.arange(S, dtype=jnp.int32),  # The game each slot plays; num_games: none left.
        jnp.zeros((S,), jnp.int32),  # Steps of the slot's current game.
        jnp.int32(S),  # The next unplayed game.
        Games(zeros, zeros, zeros, jnp.zeros((num_games,), bool)),
    )

    def body(c):
        r, game, t, nxt, res = c
        live = (game < num_games) & going(r, max_pieces) & (t < limit)
        key, sub = jax.random.split(r.key)
        action, carry, _ = policy(r.carry, r.states, r.ts, sub)
        new_states, new_ts = jax.vmap(env.step)(r.states, action)
        states, ts = _freeze(live, new_states, r.states), _freeze(live, new_ts, r.ts)
        terminated = r.terminated | (live & ts.is_terminal)
        t = t + live
        ended = (game < num_games) & (
            states.done | (states.pieces_placed >= max_pieces) | (t >= limit)
        )
        at = jnp.where(ended, game, num_games)  # Out of range: dropped.
        put = lambda a, v: a.at[at].set(v.astype(a.dtype), mode="drop")  # noqa: E731
        res = Games(
            put(res.lines, states.total_lines),
            put(res.pieces, states.pieces_placed),
            put(res.score, states.score),
            put(res.capped, ~terminated),
        )
        new_game = jnp.where(ended, nxt + jnp.cumsum(ended) - 1, game)
        new_game = jnp.minimum(new_game, num_games)
        fresh = ended & (new_game < num_games)
        # Reset only on the steps where a slot starts a game (most steps none does).
        states, ts = jax.lax.cond(
            fresh.any(),
            lambda: _freeze(
                fresh, jax.vmap(env.reset)(keys[jnp.minimum(new_game, num_games - 1)]), (states, ts)
            ),
            lambda: (states, ts),
        )
        terminated = terminated & ~fresh
        t = jnp.where(fresh, 0, t)
        nxt = nxt + ended.sum(dtype=jnp.int32)
        return Rollout(states, ts, carry, terminated, key, r.t + 1), new_game, t, nxt, res

    return jax.lax.while_loop(lambda c: jnp.any(c[1] < num_games), body, init)[-1]


def trace(
    env: Tetris,
    policy: Policy,
    key: jax.Array,
    *,
    num_games: int,
    steps: int,
    max_pieces: int | None = None,
    carry: Any = (),
) -> tuple[Rollout, Transition]:
    """`steps` steps of N games from the start: the final carry and every step's Transition,
    stacked time-major (steps, N, ...). Jit the caller."""
    body = lambda r, _: step(env, policy, r, max_pieces=max_pieces)
    return jax.lax.scan(body, start(env, key, num_games, carry), None, length=steps)


def frames(states: State, going: jax.Array, last: State, game: int = 0) -> list[State]:
    """One game of a `trace` as a list of single States (host side, e.g. for a GIF): those it
    was going at, then its last (frozen) state. `states` and `going` are `Transition.states`
    and `Transition.going` (steps, N, ...); `last` the final `Rollout.states`."""
    states, going, last = jax.device_get((states, going, last))
    n = int(going[:, game].sum())  # Steps taken before the game ended or the trace did.
    out = [jax.tree.map(lambda x, t=t: x[t, game], states) for t in range(n)]
    return out + [jax.tree.map(lambda x: x[game], last)]
