"""`rollout.play_slots` plays the same games as `rollout.play`, on fewer parallel slots."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tetris_jax import Tetris, heuristics, rollout


def _scrambled(carry, states, ts, key):
    """Deterministic (ignores `key`) but varied: an allowed action picked from the board's
    cell count and the pieces placed, so games differ in length and some top out early."""
    del key
    mask = ts.observation.action_mask
    A = mask.shape[-1]
    cells = ts.observation.board.sum((-1, -2)).astype(jnp.int32)
    rank = (jnp.arange(A)[None] * 7 + (states.pieces_placed * 13 + cells)[:, None]) % A
    return jnp.argmax(jnp.where(mask, rank, -1), -1).astype(jnp.int32), carry, ()


@pytest.mark.parametrize("action_mode", ["placement", "direct"])
def test_play_slots_gives_the_results_of_play(action_mode):
    env = Tetris(height=8, width=6, queue_size=2, action_mode=action_mode)
    key, n, cap = jax.random.key(3), 11, 12 if action_mode == "placement" else 6
    want = rollout.games(
        jax.jit(lambda k: rollout.play(env, _scrambled, k, num_games=n, max_pieces=cap))(key)
    )
    ended = ~np.asarray(want.capped)
    assert ended.any() and (~ended).any(), "the games should both top out and reach the cap"
    assert len(set(np.asarray(want.pieces).tolist())) >= 2, "game lengths should differ"
    for slots in (1, 3, n, 2 * n):
        got = jax.jit(
            lambda k, s=slots: rollout.play_slots(
                env, _scrambled, k, num_games=n, slots=s, max_pieces=cap
            )
        )(key)
        for field, a, b in zip(want._fields, want, got, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=field)


def test_play_slots_with_a_heuristic_controller_and_bad_slots():
    env = Tetris(height=10, width=6, queue_size=2)
    policy = heuristics.batch_policy(heuristics.make_policy(env, "dellacherie"))
    key = jax.random.key(0)
    want = rollout.games(rollout.play(env, policy, key, num_games=6, max_pieces=40))
    got = rollout.play_slots(env, policy, key, num_games=6, slots=4, max_pieces=40)
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(np.asarray(got.lines).sum()) > 0
    with pytest.raises(ValueError, match="slots"):
        rollout.play_slots(env, policy, key, num_games=6, slots=0, max_pieces=40)
