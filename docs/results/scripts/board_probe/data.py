"""Transition data for the board-model probe: (board, piece, action) -> (next board,
lines, top-out)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from tetris_jax import Tetris, heuristics, pieces


def piece_planes(width: int) -> np.ndarray:
    """(7, 4 * width, 4, width) bool: the piece of each placement drawn in a 4-row strip."""
    out = np.zeros((7, 4 * width, 4, width), bool)
    for p in range(7):
        for a in range(4 * width):
            r, c = divmod(a, width)
            last = width - 1 - (pieces.MAX_DX[p, r] - pieces.MIN_DX[p, r])
            x = min(c, last) - pieces.MIN_DX[p, r]
            for dx, dy in pieces.CELLS[p, r]:
                out[p, a, 3 - dy, x + dx] = True
    return out


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _games(env, num_games, steps, eps, key):
    base = heuristics.make_policy(env, "dellacherie")
    rand = heuristics.make_policy(env, "random")

    def one(state, k):
        k1, k2 = jax.random.split(k)
        return jnp.where(jax.random.uniform(k1) < eps, rand(state, k2), base(state))

    def step(carry, k):
        states, ts = carry
        keys = jax.random.split(k, num_games)
        acts = jax.vmap(one)(states, keys)
        nstates, nts = jax.vmap(env.auto_reset_step)(states, acts)
        # The step's own outcome: env.step from the same state (auto_reset replaces the
        # board of an ended game by the next game's).
        s2, t2 = jax.vmap(env.step)(states, acts)
        rec = dict(
            board=ts.observation.board,
            piece=ts.observation.piece,
            queue=ts.observation.queue,
            action=acts,
            next_board=t2.observation.board,
            lines=t2.metrics["lines_cleared"],
            top_out=t2.is_terminal,
        )
        return (nstates, nts), rec

    k0, k1 = jax.random.split(key)
    states, ts = jax.vmap(env.reset)(jax.random.split(k0, num_games))
    _, recs = jax.lax.scan(step, (states, ts), jax.random.split(k1, steps))
    return jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), recs)


def make(seed: int, num_games: int, steps: int, eps: float):
    env = Tetris(height=20, width=10, action_mode="placement", reward_mode="lines_only")
    return jax.device_get(_games(env, num_games, steps, eps, jax.random.key(seed)))
