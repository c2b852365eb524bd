"""The JAX env against the numpy reference (tests/tetris/reference.py), with and without jit,
vmapped and one env at a time, with no retracing."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.tetris import harness as h

CONFIGS = list(h.SMALL)


@pytest.mark.parametrize("name", CONFIGS)
def test_random_games_match_the_reference(name):
    """16 of the 256 rollout envs (both kinds of players), 200 steps each, auto-resets
    included: boards, pieces, queue, hold, masks, rewards, flags and metrics, every step."""
    cfg, r = h.SMALL[name], h.rollout(h.SMALL[name])
    for b in range(16):
        h.replay_against_reference(cfg, h.unbatch(r, b), r["action"][:, b])


@pytest.mark.parametrize("cfg", [h.PLACEMENT, h.DIRECT], ids=["placement", "direct"])
def test_long_full_size_game_matches_the_reference(cfg):
    """A greedy player on the default 20x10 board: long games with many line clears (and,
    in direct mode, rotations against the stack, holds and soft drops from its random
    moves). Also checks the 7-bag over the long piece sequence."""
    steps = 500 if cfg.action_mode == "placement" else 1200
    r = h.play_single(cfg, h.GreedyPlayer(cfg, seed=1), steps)
    h.replay_against_reference(cfg, h.unbatch(r, 0), r["action"][:, 0])
    assert r["lines_cleared"].sum() >= 40, r["lines_cleared"].sum()
    # lines_only: every reward is the step's lines, so a game's return is its total_lines.
    np.testing.assert_array_equal(r["reward"], r["lines_cleared"])
    ends = r["is_last"][:, 0]
    episode = np.cumsum(r["is_first"][:, 0]) - 1
    returns = np.bincount(episode, weights=r["reward"][:, 0])
    np.testing.assert_array_equal(returns[episode[ends]], r["total_lines"][ends, 0])
    longest = max(h.piece_draws(r), key=len)
    assert len(longest) >= 70  # Ten bags or more in one game.
    for i in range(0, len(longest) - 6, 7):
        assert sorted(longest[i : i + 7]) == list(range(7)), (i, longest[i : i + 7])


@pytest.mark.parametrize("cfg", [h.PLACEMENT, h.DIRECT], ids=["placement", "direct"])
def test_jit_and_no_jit_agree(cfg):
    env, (reset, step) = h.env_of(cfg), h.single(cfg)
    state, _ = reset(jax.random.key(3), jnp.zeros((cfg.height, cfg.width), bool))
    actions = [17, 3, 39, 0] if cfg.action_mode == "placement" else [1, 3, 7, 6]
    for action in actions:
        jitted = step(state, jnp.int32(action))
        eager = env.step(state, jnp.int32(action))
        jax.tree.map(np.testing.assert_array_equal, jitted, eager)
        state = jitted[0]


@pytest.mark.parametrize("name", CONFIGS)
def test_vmapped_batch_equals_a_loop_of_single_envs(name):
    """Envs of the jit(vmap(auto_reset_step)) rollout, replayed one at a time with
    jit(auto_reset_step) from the same keys and actions: the same frames, and one trace."""
    cfg = h.SMALL[name]
    r = h.rollout(cfg)
    reset, auto_step, traces = h.single_auto(cfg)
    keys = jax.random.split(jax.random.key(0), r["piece"].shape[1])  # As in h.rollout.
    for b in (0, 3, 6):
        state, ts = reset(keys[b])
        frames = [h.to_frame(ts)]
        for t in range(1, r["piece"].shape[0]):
            state, ts = auto_step(state, jnp.int32(r["action"][t, b]))
            frames.append(h.to_frame(ts))
        for t, (got, want) in enumerate(zip(frames, h.unbatch(r, b), strict=True)):
            for key in want:
                if key != "action":
                    np.testing.assert_array_equal(got[key], want[key], err_msg=f"{key} t={t}")
    assert len(traces) == 1
