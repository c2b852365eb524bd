"""The Gymnasium wrapper: API conformance (gymnasium's env checker), episodes, errors."""

from __future__ import annotations

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from gymnasium.utils.env_checker import check_env  # noqa: E402

from tetris_jax.gym_wrapper import ENV_ID, TetrisGymEnv  # noqa: E402

# Two configurations, each compiled once and shared by every wrapper built with it.
PLACEMENT = dict(height=8, width=6, queue_size=2)
DIRECT = dict(height=8, width=6, action_mode="direct", max_steps=5)  # Truncates before a lock.


@pytest.mark.parametrize("config", [PLACEMENT, DIRECT], ids=["placement", "direct"])
@pytest.mark.parametrize("render_mode", ["ansi", "rgb_array"])
def test_check_env(config, render_mode):
    env = gymnasium.make(ENV_ID, render_mode=render_mode, **config).unwrapped
    assert isinstance(env, TetrisGymEnv)
    check_env(env, skip_render_check=False)
    frame = env.render()
    if render_mode == "ansi":
        assert isinstance(frame, str) and frame.count("\n") == env.tetris.rows + 1
    else:
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3


def test_spaces_match_observation_spec():
    env = TetrisGymEnv(**PLACEMENT)
    spec = env.tetris.observation_spec()
    assert set(env.observation_space.spaces) == set(spec)
    for name, field in spec.items():
        assert env.observation_space[name].shape == field.shape, name
    assert env.action_space.n == env.tetris.num_actions == 4 * 6


def test_placement_episode_terminates_and_return_is_lines():
    env = TetrisGymEnv(**PLACEMENT)
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs) and info["pieces_placed"] == 0
    total, terminated, truncated, steps = 0.0, False, False, 0
    while not (terminated or truncated):
        assert np.array_equal(info["action_mask"], env.action_masks())
        assert np.array_equal(obs["action_mask"], info["action_mask"])
        action = rng.choice(np.flatnonzero(info["action_mask"]))
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        total += reward
        steps += 1
    assert terminated and not truncated and steps == info["steps"]
    assert total == info["total_lines"]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    # Seeding: the same seed gives the same episode start; reset() continues the rng.
    first = env.reset(seed=3)[0]
    assert all(np.array_equal(first[k], env.reset(seed=3)[0][k]) for k in first)


def test_direct_mode_truncates_at_max_steps():
    env = TetrisGymEnv(**DIRECT)
    env.reset(seed=0)
    flags = [env.step(0)[2:4] for _ in range(5)]
    assert flags == [(False, False)] * 4 + [(False, True)]


def test_reset_from_board_and_errors():
    env = TetrisGymEnv(**PLACEMENT)
    board = np.zeros((8, 6), bool)
    board[-1, :5] = True
    obs, _ = env.reset(seed=0, options={"board": board})
    np.testing.assert_array_equal(obs["board"], board.astype(np.int8))
    with pytest.raises(ValueError, match="shape"):
        env.reset(options={"board": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="action"):
        env.step(env.action_space.n)
    with pytest.raises(ValueError, match="render_mode"):
        TetrisGymEnv(render_mode="human", **PLACEMENT)


def test_gymnasium_make():
    env = gymnasium.make(ENV_ID, **PLACEMENT)
    obs, info = env.reset(seed=1)
    assert env.observation_space.contains(obs) and info["action_mask"].any()
    env.close()
