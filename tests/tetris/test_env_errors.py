"""Bad configuration, keys, boards and actions: a ValueError or TypeError naming the parameter,
its value and what is allowed, raised before any JAX work; and integer actions of any size or
dtype clipped, not wrapped."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tetris_jax

MODES = ["placement", "direct"]


@pytest.fixture(scope="module", params=MODES)
def small(request):
    """(env, a state after reset) on a small board, for eager calls."""
    env = tetris_jax.Tetris(height=8, width=6, action_mode=request.param, queue_size=1)
    return env, env.reset(jax.random.key(0))[0]


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
        # Reward constants: finite real numbers (float('a') used to raise its own error, and nan
        # or inf turned every reward into nan).
        (dict(shaping_gamma="a"), "shaping_gamma"),
        (dict(shaping_gamma=None), "shaping_gamma"),
        (dict(shaping_gamma=float("nan")), "shaping_gamma"),
        (dict(game_over_penalty=float("nan")), "game_over_penalty"),
        (dict(game_over_penalty=float("inf")), "game_over_penalty"),
        (dict(game_over_penalty=-np.inf), "game_over_penalty"),
        (dict(game_over_penalty=True), "game_over_penalty"),
        (dict(piece_reward=np.nan), "piece_reward"),
        (dict(piece_reward=False), "piece_reward"),
        (dict(piece_reward="0.1"), "piece_reward"),
        (dict(piece_reward=10**400), "piece_reward"),  # Too large for a float.
        (dict(shaping=[("holes", 1.0)]), "shaping"),
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
    for call in (
        lambda b: env.reset(key, board=b),
        lambda b: env.auto_reset_step(None, 0, board=b),
    ):
        with pytest.raises(ValueError, match=r"board=.*\(20, 10\)") as info:
            call(np.zeros(shape, bool))
        assert str(shape) in str(info.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "a", True, None])
@pytest.mark.parametrize("weight", ["aggregate_height", "holes", "bumpiness"])
def test_bad_shaping_weight_names_the_weight(weight, value):
    with pytest.raises(ValueError) as info:
        tetris_jax.Tetris(reward_mode="standard", shaping={weight: value})
    message = str(info.value)
    assert f"shaping[{weight!r}]={value!r}" in message and "finite real number" in message, message


def test_reward_constants_that_are_allowed():
    env = tetris_jax.Tetris(
        reward_mode="standard",
        shaping={"holes": -1},
        shaping_gamma=np.float32(0.5),
        game_over_penalty=2,
        piece_reward=np.float64(0.25),
    )
    assert (env.shaping["holes"], env.shaping_gamma, env.game_over_penalty, env.piece_reward) == (
        -1.0,
        0.5,
        2.0,
        0.25,
    )
    assert all(type(v) is float for v in (env.shaping_gamma, env.game_over_penalty))


# ----- keys -----

BAD_KEYS = {
    "python int": (0, TypeError, "key=0 "),
    "numpy int": (np.int64(3), TypeError, "key=np.int64(3) "),
    "float": (1.5, TypeError, "key=1.5 "),
    "uint32 (3,)": (np.zeros(3, np.uint32), TypeError, "key=<uint32 array of shape (3,)>"),
    "int32 (2,)": (np.zeros(2, np.int32), TypeError, "key=<int32 array of shape (2,)>"),
    # Batches of keys: reset takes one key; vmap for many.
    "raw batch": (np.zeros((4, 2), np.uint32), TypeError, "key=<uint32 array of shape (4, 2)>"),
    "typed batch": (jax.random.split(jax.random.key(0), 4), ValueError, "shape (4,)>"),
}


@pytest.mark.parametrize("name", BAD_KEYS)
def test_bad_key_says_what_a_key_is(name):
    key, error, shown = BAD_KEYS[name]
    env = tetris_jax.Tetris(height=8, width=6)
    with pytest.raises(error) as info:
        env.reset(key)
    message = str(info.value)
    assert shown in message and "jax.random.key(seed)" in message, message


def test_bad_key_is_caught_under_jit_and_vmap():
    env = tetris_jax.Tetris(height=8, width=6)
    with pytest.raises(TypeError, match=r"key=<int32 array of shape \(\)>.*jax.random.key"):
        jax.jit(env.reset)(0)
    with pytest.raises(TypeError, match=r"key=<uint32 array of shape \(3,\)>"):
        jax.vmap(env.reset)(jnp.zeros((2, 3), jnp.uint32))


def test_legacy_uint32_keys_still_work():
    """jax.random.PRNGKey keys: the same games as the typed keys they wrap, under vmap too."""
    env = tetris_jax.Tetris(height=8, width=6)
    same = lambda a, b: jax.tree.map(np.testing.assert_array_equal, a, b)
    same(env.reset(jax.random.PRNGKey(5)), env.reset(jax.random.key(5)))
    raw = jax.random.split(jax.random.PRNGKey(5), 3)
    same(jax.vmap(env.reset)(raw), jax.vmap(env.reset)(jax.random.wrap_key_data(raw)))


# ----- actions -----


@pytest.mark.parametrize(
    "wild,high",
    [
        (2**32, True),
        (2**40 + 1, True),
        (-(2**40), False),
        (-(2**32), False),
        (np.int64(2**33), True),
        (np.int64(-(2**33)), False),
        (np.uint64(2**64 - 1), True),
        (np.uint32(2**32 - 1), True),
        (np.array(2**33), True),
    ],
)
def test_huge_integer_actions_are_clipped_not_wrapped(small, wild, high):
    """Clipped on the host before the cast to int32 (2**32 used to wrap to action 0)."""
    env, state = small
    tame = env.num_actions - 1 if high else 0
    jax.tree.map(np.testing.assert_array_equal, env.step(state, wild), env.step(state, tame))


def test_integer_actions_of_any_dtype_are_clipped_under_jit(small):
    """Traced actions clip in their own dtype: a uint32 2**32 - 1 is the last action, not -1."""
    env, state = small
    step = jax.jit(env.step)
    last = env.step(state, env.num_actions - 1)
    for wild in (jnp.uint32(2**32 - 1), jnp.uint8(255), jnp.int8(127)):
        jax.tree.map(np.testing.assert_array_equal, step(state, wild), last)
    jax.tree.map(np.testing.assert_array_equal, step(state, jnp.int8(-128)), env.step(state, 0))


BAD_ACTIONS = {
    "python float": (2.0, "action=2.0 ", "float64"),
    "fractional float": (2.7, "action=2.7 ", "float64"),
    "numpy float": (np.float32(1), "action=np.float32(1.0) ", "float32"),
    "float array": (np.array([1.0, 2.0]), "action=<float64 array of shape (2,)>", "float64"),
    "jax float": (jnp.float32(3), "action=<float32 array of shape ()>", "float32"),
    "python bool": (True, "action=True ", "bool"),
    "numpy bool": (np.bool_(False), "action=np.False_ ", "bool"),
    "jax bool array": (jnp.array([True]), "action=<bool array of shape (1,)>", "bool"),
    "string": ("3", "action='3' ", "<U1"),
    "None": (None, "action=None ", "object"),
}


@pytest.mark.parametrize("name", BAD_ACTIONS)
def test_non_integer_actions_are_refused(small, name):
    """Floats used to be truncated silently; now a TypeError names action, value and dtype."""
    env, state = small
    action, shown, dtype = BAD_ACTIONS[name]
    for call in (env.step, env.auto_reset_step):
        with pytest.raises(TypeError) as info:
            call(state, action)
        message = str(info.value)
        assert shown in message and f"dtype {dtype}" in message and "integer" in message, message


def test_non_integer_actions_are_refused_under_jit_and_vmap(small):
    """The check reads the dtype, which is static: it fires at trace time."""
    env, state = small
    with pytest.raises(TypeError, match=r"action=<float32 array of shape \(\)>.*dtype float32"):
        jax.jit(env.step)(state, 1.0)
    states = jax.tree.map(lambda x: jnp.stack([x, x]), state)
    with pytest.raises(TypeError, match=r"action=<bool array of shape \(\)>.*dtype bool"):
        jax.vmap(env.auto_reset_step)(states, jnp.array([True, False]))
