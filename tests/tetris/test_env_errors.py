"""Bad configuration and bad boards: a ValueError naming the parameter, its value and what is
allowed, raised before any JAX work."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import tetris_jax


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(action_mode="continuous"), "action_mode"),
        (dict(reward_mode="score"), "reward_mode"),
        (dict(randomizer="14bag"), "randomizer"),
        (dict(height=3), "height"),
        (dict(width=3), "width"),
        (dict(height=3, width=3), "width"),  # Either may be named first.
        (dict(height=10.5), "height"),
        (dict(queue_size=-1), "queue_size"),
        (dict(max_steps=0), "max_steps"),
        (dict(max_steps=-5), "max_steps"),
        (dict(hidden_rows=9), "hidden_rows"),
        # Direct mode spawns in two hidden rows; with fewer, pieces spawned off the grid and
        # every game ended at the first lock.
        (dict(action_mode="direct", hidden_rows=1), "hidden_rows"),
        (dict(action_mode="direct", hidden_rows=0), "hidden_rows"),
    ],
)
def test_bad_configuration_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError) as info:
        tetris_jax.Tetris(**kwargs)
    message = str(info.value)
    assert f"{name}={kwargs[name]!r}" in message, message  # The parameter and its value,
    assert "must be" in message, message  # and what is allowed.


@pytest.mark.parametrize("mode,hidden", [("placement", 0), ("placement", 3), ("direct", 2)])
def test_hidden_rows_that_are_allowed(mode, hidden):
    assert tetris_jax.Tetris(action_mode=mode, hidden_rows=hidden).hidden_rows == hidden


@pytest.mark.parametrize("shape", [(19, 10), (20, 9), (10, 20), (200,), (20, 10, 1)])
@pytest.mark.parametrize("mode", ["placement", "direct"])
def test_board_of_the_wrong_shape(shape, mode):
    env = tetris_jax.Tetris(action_mode=mode)
    key = jax.random.key(0)
    # auto_reset_step checks its board before touching the state.
    for call in (lambda b: env.reset(key, board=b),
                 lambda b: env.auto_reset_step(None, 0, board=b)):  # fmt: skip
        with pytest.raises(ValueError, match=r"board=.*\(20, 10\)") as info:
            call(np.zeros(shape, bool))
        assert str(shape) in str(info.value)
