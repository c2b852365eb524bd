"""Observation spec and flattening; a finished episode stays finished with its own flags."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tetris_jax


@pytest.fixture(scope="module")
def env():
    return tetris_jax.Tetris(height=8, width=6, action_mode="placement", queue_size=3)


@pytest.mark.parametrize("placement_features", [False, True])
def test_observation_matches_spec(placement_features):
    env = tetris_jax.Tetris(height=8, width=6, queue_size=3, placement_features=placement_features)
    _, ts = env.reset(jax.random.key(0))
    spec = env.observation_spec()
    optional = set() if placement_features else {"placements"}
    assert set(spec) == set(tetris_jax.Observation._fields) - optional
    for name, field in spec.items():
        value = np.asarray(getattr(ts.observation, name))
        assert value.shape == field.shape, (name, value.shape, field.shape)
        assert value.dtype == np.dtype(field.dtype), (name, value.dtype, field.dtype)
        if field.kind == "categorical":
            assert value.min() >= 0 and value.max() < field.num_classes, name


def test_flatten_observation_layout(env):
    _, ts = env.reset(jax.random.key(1))
    spec = env.observation_spec()
    flat = tetris_jax.flatten_observation(ts.observation, spec)
    rows, width = env.rows, env.width
    expected = 2 * rows * width + 7 + 4 + 3 * 7 + 8 + 1  # Planes, one-hots, can_hold.
    assert flat.shape == (expected,) and flat.dtype == jnp.float32
    np.testing.assert_array_equal(flat[: rows * width], np.ravel(ts.observation.board))
    piece = flat[2 * rows * width : 2 * rows * width + 7]
    assert piece.sum() == 1 and int(piece.argmax()) == int(ts.observation.piece)
    # Batched observations keep their leading axes.
    _, tsb = jax.vmap(env.reset)(jax.random.split(jax.random.key(2), 3))
    assert tetris_jax.flatten_observation(tsb.observation, spec).shape == (3, expected)


def test_stepping_a_finished_game_repeats_its_flags(env):
    step = jax.jit(env.step)
    state, ts = env.reset(jax.random.key(3))
    for _ in range(200):  # Always the leftmost vertical placement: tops out quickly.
        state, ts = step(state, jnp.int32(env.width))
        if bool(ts.is_last):
            break
    assert bool(ts.is_last) and bool(ts.is_terminal)
    frozen_state, frozen = step(state, jnp.int32(0))
    assert bool(frozen.is_last) and bool(frozen.is_terminal) and float(frozen.reward) == 0.0
    np.testing.assert_array_equal(frozen_state.cols, state.cols)
    assert int(frozen.metrics["pieces_placed"]) == int(ts.metrics["pieces_placed"])


@pytest.mark.parametrize("mode", ["placement", "direct"])
@pytest.mark.parametrize("batch", [(3,), (2, 3)])
def test_board_and_grid_of_a_batched_state(mode, batch):
    """`State.board` / `.grid` keep leading batch axes (they used to fail to broadcast)."""
    env = tetris_jax.Tetris(height=8, width=6, action_mode=mode, queue_size=1)
    n = int(np.prod(batch))
    boards = np.random.default_rng(0).random((n, 8, 6)) < 0.4
    keys = jax.random.split(jax.random.key(0), n)
    reset = jax.vmap(env.reset)
    if len(batch) == 2:
        reset = jax.vmap(reset)
        keys, boards = keys.reshape(batch), boards.reshape(*batch, 8, 6)
    state, _ = reset(keys, boards)
    assert state.board.shape == (*batch, 8, 6) and state.grid.shape == (*batch, env.rows, 6)
    np.testing.assert_array_equal(state.board, boards)
    for index in np.ndindex(*batch):
        one = jax.tree.map(lambda x, i=index: x[i], state)
        np.testing.assert_array_equal(state.board[index], one.board)
        np.testing.assert_array_equal(state.grid[index], one.grid)
        assert not one.grid[: env.hidden_rows].any()
