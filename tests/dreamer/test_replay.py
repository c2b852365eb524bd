"""Tests for the device-resident replay buffer (dreamer_jax/replay.py).

Most tests store, for every step, its time index `t` and its `env` as data; a sampled window is
then valid iff its `env` is constant and its `t` runs over consecutive values that the buffer still
holds, which a tiny numpy reference enumerates.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamer_jax import replay

BOARD = (3, 5)  # 15 cells: not a multiple of 8, so the packing pads


def spec(board: tuple[int, ...] = BOARD) -> dict[str, jax.ShapeDtypeStruct]:
    return {
        "t": jax.ShapeDtypeStruct((), jnp.int32),
        "env": jax.ShapeDtypeStruct((), jnp.int32),
        "is_first": jax.ShapeDtypeStruct((), jnp.bool_),
        "board": jax.ShapeDtypeStruct(board, jnp.bool_),
    }


def is_first(t: np.ndarray, env: np.ndarray) -> np.ndarray:
    """Episodes of env e start at steps t with (t + e) % 5 == 0."""
    return (t + env) % 5 == 0


def board(t: np.ndarray, env: np.ndarray, shape: tuple[int, ...] = BOARD) -> np.ndarray:
    """A random-looking but reproducible board for each (t, env); shape (*t.shape, *shape)."""
    cells = np.arange(int(np.prod(shape)))
    mixed = (t[..., None] * 7919 + env[..., None] * 104729 + cells * 31337) % 1009
    return (mixed % 2 == 1).reshape(*t.shape, *shape)


def steps(t0: int, num_steps: int, num_envs: int, shape: tuple[int, ...] = BOARD) -> dict:
    """Steps t0 .. t0 + num_steps - 1 of every env, leaves (num_envs, num_steps, ...)."""
    t = np.broadcast_to(np.arange(t0, t0 + num_steps), (num_envs, num_steps))
    env = np.broadcast_to(np.arange(num_envs)[:, None], (num_envs, num_steps))
    # numpy leaves: jitted functions take them as they are; eager jnp ops would compile per shape.
    return {
        "t": t.astype(np.int32),
        "env": env.astype(np.int32),
        "is_first": is_first(t, env),
        "board": board(t, env, shape),
    }


def one_step(t: int, num_envs: int, shape: tuple[int, ...] = BOARD) -> dict:
    """Step t of every env, leaves (num_envs, ...)."""
    return {k: v[:, 0] for k, v in steps(t, 1, num_envs, shape).items()}


# Jitted once per shape: eager dispatch compiles every op per shape and would dominate run time.
add_jit = jax.jit(replay.add)
add_sequence_jit = jax.jit(replay.add_sequence)
sample_jit = jax.jit(replay.sample, static_argnames=("batch_size", "seq_len"))


def filled(num_envs: int, length: int, num_added: int, chunk: int = 1) -> replay.ReplayState:
    """A buffer after `num_added` steps per env: `add` if chunk == 1, else `add_sequence`."""
    state = replay.init(spec(), capacity=num_envs * length, num_envs=num_envs)
    for t0 in range(0, num_added, chunk):
        if chunk == 1:
            state = add_jit(state, one_step(t0, num_envs))
        else:
            state = add_sequence_jit(state, steps(t0, min(chunk, num_added - t0), num_envs))
    return state


def reference_windows(num_envs: int, length: int, num_added: int, seq_len: int) -> set:
    """All valid windows as (env, first t): inside the last `length` steps written."""
    oldest = max(0, num_added - length)
    return {(e, t) for e in range(num_envs) for t in range(oldest, num_added - seq_len + 1)}


def check_windows(batch: dict, num_envs: int, length: int, num_added: int, seq_len: int) -> set:
    """Asserts every sampled window is valid and its fields are the stored ones."""
    t, env = np.asarray(batch["t"]), np.asarray(batch["env"])
    batch_size = t.shape[0]
    assert t.shape == env.shape == (batch_size, seq_len), (t.shape, env.shape)
    np.testing.assert_array_equal(env, env[:, :1].repeat(seq_len, 1))  # one env per window
    np.testing.assert_array_equal(np.diff(t, axis=1), 1)  # consecutive, so no write head inside
    starts = set(zip(env[:, 0].tolist(), t[:, 0].tolist(), strict=True))
    invalid = starts - reference_windows(num_envs, length, num_added, seq_len)
    assert not invalid, sorted(invalid)[:10]
    np.testing.assert_array_equal(batch["is_first"], is_first(t, env))
    np.testing.assert_array_equal(batch["board"], board(t, env))
    return starts


def test_hand_counts_tiny():
    # 2 envs x 4 steps, windows of 2: per env max(size - 1, 0) windows.
    state = replay.init(spec(), capacity=8, num_envs=2, seq_len=2)
    expected = [  # (head, size, windows over both envs, fill) after k adds
        (0, 0, 0, 0.0),
        (1, 1, 0, 0.25),
        (2, 2, 2, 0.5),
        (3, 3, 4, 0.75),
        (0, 4, 6, 1.0),
        (1, 4, 6, 1.0),  # wrapped: step 0 overwritten, still 3 windows per env
    ]
    for k, (head, size, windows, fill) in enumerate(expected):
        if k:
            state = add_jit(state, one_step(k - 1, 2))
        got = (
            int(state.head),
            int(state.size),
            int(replay.num_windows(state, seq_len=2)),
            float(replay.fill_fraction(state)),
        )
        assert got == (head, size, windows, fill), (k, got)
    assert int(replay.num_steps(state)) == 8
    np.testing.assert_array_equal(state.data["t"], [[4, 1, 2, 3], [4, 1, 2, 3]])
    np.testing.assert_array_equal(state.data["env"], [[0, 0, 0, 0], [1, 1, 1, 1]])


def test_fill_keeps_every_step_in_order():
    state = filled(num_envs=3, length=10, num_added=10, chunk=4)
    for e in range(3):
        np.testing.assert_array_equal(state.data["t"][e], np.arange(10))
        np.testing.assert_array_equal(state.data["env"][e], e)
    assert float(replay.fill_fraction(state)) == 1.0
    assert int(replay.num_steps(state)) == 30
    assert int(state.head) == 0


def test_wrap_around_drops_oldest_keeps_newest_in_order():
    num_envs, length, num_added = 2, 10, 27
    state = filled(num_envs, length, num_added, chunk=3)
    assert int(state.size) == length and int(state.head) == num_added % length
    for e in range(num_envs):
        oldest_first = np.roll(np.asarray(state.data["t"][e]), -int(state.head))
        np.testing.assert_array_equal(oldest_first, np.arange(num_added - length, num_added))
    # Every window of the full length is the newest `length` steps, oldest first.
    batch = sample_jit(state, jax.random.key(0), batch_size=8, seq_len=length)
    np.testing.assert_array_equal(batch["t"], np.broadcast_to(np.arange(17, 27), (8, 10)))


@pytest.mark.parametrize("chunks", [(1, 1, 1), (3, 4), (7, 7, 7), (2, 7, 5, 1, 6)])
def test_add_sequence_equals_repeated_add(chunks):
    num_envs, length = 2, 7
    by_seq = replay.init(spec(), capacity=num_envs * length, num_envs=num_envs)
    t0 = 0
    for chunk in chunks:
        by_seq = add_sequence_jit(by_seq, steps(t0, chunk, num_envs))
        t0 += chunk
    chex.assert_trees_all_equal(by_seq, filled(num_envs, length, t0))


def test_nbytes_matches_layout():
    s = spec(board=(20, 10))
    state = replay.init(s, capacity=64, num_envs=4)
    assert state.data["board"].shape == (4, 16, 25) and state.data["board"].dtype == jnp.uint8
    assert state.data["is_first"].shape == (4, 16) and state.data["is_first"].dtype == jnp.bool_
    per_step = 4 + 4 + 1 + 25  # t, env, is_first, 200 board bits packed into 25 bytes
    assert replay.nbytes(state) == 64 * per_step + 8  # plus head and size
    assert replay.storage_bytes(s, capacity=64, num_envs=4) == replay.nbytes(state)


# Few distinct shapes (each compiles once); the fill level and the sample key vary freely.
@hypothesis.settings(max_examples=30, deadline=None)
@hypothesis.given(
    sizes=st.sampled_from([(1, 4, 2), (3, 9, 4), (2, 6, 6)]),  # num_envs, length, seq_len
    num_added=st.integers(0, 30),
)
def test_windows_never_cross_head_or_envs(sizes, num_added):
    num_envs, length, seq_len = sizes
    state = filled(num_envs, length, num_added)
    valid = reference_windows(num_envs, length, num_added, seq_len)
    assert int(replay.num_windows(state, seq_len=seq_len)) == len(valid)
    hypothesis.assume(valid)  # sampling needs a window
    batch = sample_jit(state, jax.random.key(num_added), batch_size=256, seq_len=seq_len)
    check_windows(batch, num_envs, length, num_added, seq_len)


def test_is_first_passes_through_and_windows_may_start_mid_episode():
    num_envs, length, num_added, seq_len = 2, 20, 33, 6
    state = filled(num_envs, length, num_added, chunk=5)
    batch = sample_jit(state, jax.random.key(1), batch_size=512, seq_len=seq_len)
    check_windows(batch, num_envs, length, num_added, seq_len)  # is_first equals what was added
    first = np.asarray(batch["is_first"])
    assert first[:, 0].any() and not first[:, 0].all()  # the sampler does not force a reset
    assert first[:, 1:].any()  # episode starts inside windows are kept


@pytest.mark.parametrize("shape", [(20, 10), (3, 5), (1, 9), (4, 4, 2)])
def test_packed_bool_round_trip(shape):
    num_envs, length = 3, 8
    rng = np.random.default_rng(0)
    boards = rng.random((num_envs, length, *shape)) < 0.5
    s = {
        "board": jax.ShapeDtypeStruct(shape, jnp.bool_),
        "env": jax.ShapeDtypeStruct((), jnp.int32),
    }
    env = np.broadcast_to(np.arange(num_envs)[:, None], (num_envs, length))
    state = replay.init(s, capacity=num_envs * length, num_envs=num_envs)
    state = add_sequence_jit(state, {"board": jnp.asarray(boards), "env": jnp.asarray(env)})
    assert state.data["board"].dtype == jnp.uint8
    assert state.data["board"].shape == (num_envs, length, -(-int(np.prod(shape)) // 8))
    # A window of the whole ring returns every stored board in order.
    batch = sample_jit(state, jax.random.key(0), batch_size=16, seq_len=length)
    assert batch["board"].dtype == jnp.bool_
    np.testing.assert_array_equal(batch["board"], boards[np.asarray(batch["env"][:, 0])])


class Obs(NamedTuple):
    board: np.ndarray
    piece: np.ndarray


def test_nested_spec_from_example_arrays():
    # A spec may be any pytree (here a NamedTuple inside a dict) of example arrays.
    example = {"obs": Obs(np.zeros((4, 3), bool), np.int8(0)), "reward": np.float32(0)}
    state = replay.init(example, capacity=12, num_envs=2)
    assert state.data["obs"].board.dtype == jnp.uint8 and state.data["obs"].piece.dtype == jnp.int8
    rng = np.random.default_rng(1)
    chunk = {
        "obs": Obs(rng.random((2, 6, 4, 3)) < 0.5, rng.integers(0, 7, (2, 6)).astype(np.int8)),
        "reward": rng.normal(size=(2, 6)).astype(np.float32),
    }
    state = add_sequence_jit(state, chunk)
    batch = sample_jit(state, jax.random.key(0), batch_size=8, seq_len=6)  # whole rings
    # Each window is one env's whole ring; tell which env by its rewards, then compare all fields.
    env = np.argmax((batch["reward"][:, None] == chunk["reward"][None]).all(-1), axis=1)
    chex.assert_trees_all_equal(batch, jax.tree.map(lambda x: x[env], chunk))
    bad = jax.tree.map(lambda x: x[:, 0], chunk)
    bad["obs"] = bad["obs"]._replace(board=np.zeros((2, 4, 3), np.int32))
    with pytest.raises(ValueError, match=r"step\['obs'\]\.board: got int32\[2, 4, 3\]"):
        replay.add(state, bad)


def wilson_hilferty(dof: int, z: float) -> float:
    """Chi-square quantile with `dof` degrees of freedom at standard-normal quantile `z`."""
    return dof * (1 - 2 / (9 * dof) + z * np.sqrt(2 / (9 * dof))) ** 3


@pytest.mark.parametrize("num_added", [11, 40])  # partly filled ring; wrapped ring
def test_sampling_is_uniform_over_valid_starts(num_added):
    num_envs, length, seq_len = 3, 16, 4
    state = filled(num_envs, length, num_added, chunk=5)
    valid = sorted(reference_windows(num_envs, length, num_added, seq_len))
    index = {w: i for i, w in enumerate(valid)}
    counts = np.zeros(len(valid))
    for k in range(6):
        batch = sample_jit(state, jax.random.key(k), batch_size=8192, seq_len=seq_len)
        starts = zip(batch["env"][:, 0].tolist(), batch["t"][:, 0].tolist(), strict=True)
        np.add.at(counts, [index[w] for w in starts], 1)  # KeyError if a start is invalid
    expected = counts.sum() / len(valid)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # z = 4.75: a correct sampler fails with probability ~1e-6; one never drawing a valid start
    # adds ~`expected` (>= 1000) to chi2, far above the bound (~100 for 39 cells).
    bound = wilson_hilferty(len(valid) - 1, z=4.75)
    assert counts.min() > 0, counts
    assert chi2 < bound, (chi2, bound, counts)


def test_jit_with_donation_does_not_retrace():
    num_envs, length, seq_len = 4, 16, 8
    add = jax.jit(chex.assert_max_traces(replay.add, n=1), donate_argnums=0)
    add_seq = jax.jit(chex.assert_max_traces(replay.add_sequence, n=1), donate_argnums=0)
    sample = jax.jit(
        chex.assert_max_traces(replay.sample, n=1), static_argnames=("batch_size", "seq_len")
    )
    state = replay.init(spec(), capacity=num_envs * length, num_envs=num_envs, seq_len=seq_len)
    key = jax.random.key(0)
    for t in range(0, 40, 4):  # through several wrap-arounds
        old = state
        state = add_seq(state, steps(t, 2, num_envs))
        state = add(state, one_step(t + 2, num_envs))
        state = add(state, one_step(t + 3, num_envs))
        assert old.data["board"].is_deleted()  # donated: the buffer was reused, not copied
        if t + 4 >= seq_len:
            key, sub = jax.random.split(key)
            batch = sample(state, sub, batch_size=32, seq_len=seq_len)
            check_windows(batch, num_envs, length, t + 4, seq_len)


def test_sample_with_and_without_jit_agree():
    state = filled(num_envs=2, length=9, num_added=14)
    key = jax.random.key(3)
    chex.assert_trees_all_equal(
        replay.sample(state, key, batch_size=5, seq_len=4),
        sample_jit(state, key, batch_size=5, seq_len=4),
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(capacity=10**15, num_envs=4), r"capacity: got 1000000000000000 steps = .* bytes"),
        (dict(capacity=64, num_envs=4, max_memory_fraction=1e-12), r"capacity: .*allowed"),
        (dict(capacity=30, num_envs=4), r"capacity: got 30, not a multiple of num_envs=4"),
        (dict(capacity=28, num_envs=4, seq_len=8), r"capacity: .*allowed: capacity >= .* 32"),
        (dict(capacity=2, num_envs=4), r"capacity: got 2, allowed: an int >= 4"),
        (dict(capacity=5e6, num_envs=4), r"capacity: got 5000000.0 \(float\), allowed: an int"),
        (dict(capacity=64, num_envs=0), r"num_envs: got 0"),
        (dict(capacity=64, num_envs=4, seq_len=1), r"seq_len: got 1, allowed: an int >= 2"),
        (dict(capacity=64, num_envs=4, max_memory_fraction=2.0), r"max_memory_fraction"),
    ],
)
def test_init_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        replay.init(spec(), **kwargs)


def test_sample_and_add_reject_bad_arguments():
    state = replay.init(spec(), capacity=32, num_envs=4)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"batch_size: got 0"):
        replay.sample(state, key, batch_size=0, seq_len=4)
    with pytest.raises(ValueError, match=r"seq_len: got 1"):
        replay.sample(state, key, batch_size=2, seq_len=1)
    with pytest.raises(ValueError, match=r"seq_len: got 9, allowed: 2 <= seq_len <= 8"):
        replay.sample(state, key, batch_size=2, seq_len=9)
    with pytest.raises(ValueError, match=r"step\['board'\]: got bool\[3, 3, 5\]"):
        replay.add(state, one_step(0, 3))
    bad = {**one_step(0, 4), "t": jnp.zeros(4, jnp.float32)}
    with pytest.raises(ValueError, match=r"step\['t'\]: got float32\[4\], allowed: int32\[4\]"):
        replay.add(state, bad)
    with pytest.raises(ValueError, match=r"structure"):
        replay.add(state, {"t": jnp.zeros(4, jnp.int32)})
    with pytest.raises(ValueError, match=r"steps: got T=9 .* T <= length=8"):
        replay.add_sequence(state, steps(0, 9, 4))
