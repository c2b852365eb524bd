"""Device-resident replay: a circular buffer of steps from N parallel envs, as pure functions.

Storage layout: every field of one step (a pytree leaf of ``spec``, shape ``S``) is stored as an
array of shape ``(num_envs, length, *S)`` with ``length = capacity // num_envs``: each env owns one
ring of ``length`` steps. All envs are written together (one ``add`` writes one step per env), so a
single write ``head`` and fill ``size`` describe every ring. Boolean fields with more than one
element per step (the Tetris board) are stored bit-packed as ``(num_envs, length, ceil(prod(S)/8))``
uint8 and unpacked on sampling.

A sampled window is ``seq_len`` consecutive steps of one env, in write order, lying entirely in
written data: it never spans the write head (where the newest step abuts the oldest) and, by the
layout, never mixes envs. Starts are uniform over all valid windows of all envs (FIFO eviction, as
in DreamerV3's uniform replay). Windows may begin mid-episode, as DreamerV3's do, and may contain
episode starts: the caller's ``is_first`` field marks those and comes back unchanged (the sampler
never sets it at a window's first step; the world model starts every window from its initial
carry anyway, and resets the carry wherever ``is_first`` is set).

Typical use::

    state = replay.init(spec, capacity=1_000_000, num_envs=16, seq_len=64)
    add = jax.jit(replay.add, donate_argnums=0)
    sample = jax.jit(replay.sample, static_argnames=("batch_size", "seq_len"))
    state = add(state, step)  # leaves (16, ...)
    batch = sample(state, key, batch_size=16, seq_len=64)  # leaves (16, 64, ...)
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any

# Indices and counters are int32: num_envs * windows must fit.
_MAX_CAPACITY = 2**31 - 1


class Field(NamedTuple):
    """Static description of one stored field (one leaf of the step spec)."""

    name: str  # the leaf's path in the spec, for error messages
    shape: tuple[int, ...]  # shape of one step, without the env axis
    dtype: str  # dtype as given in the spec (what `sample` returns)
    packed: bool  # stored as bit-packed uint8 along the flattened `shape`


@flax.struct.dataclass
class ReplayState:
    """Replay storage and write position; a pytree that `jit` can donate.

    data: the spec's pytree with leaves (num_envs, length, *stored_shape).
    head: int32 (), the ring index the next `add` writes (same for every env).
    size: int32 (), steps held per env, saturating at `length`.
    """

    data: PyTree
    head: jax.Array
    size: jax.Array
    fields: tuple[Field, ...] = flax.struct.field(pytree_node=False)
    num_envs: int = flax.struct.field(pytree_node=False)
    length: int = flax.struct.field(pytree_node=False)


def _fields(spec: PyTree) -> tuple[tuple[Field, ...], jax.tree_util.PyTreeDef]:
    leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(spec)
    if not leaves_with_paths:
        raise ValueError("spec: expected a pytree with at least one field, got an empty one")
    fields = []
    for path, leaf in leaves_with_paths:
        name = jax.tree_util.keystr(path) or "<root>"
        shape = tuple(int(d) for d in np.shape(leaf))
        dtype = np.dtype(leaf.dtype if hasattr(leaf, "dtype") else np.result_type(leaf))
        packed = dtype == np.bool_ and math.prod(shape) > 1
        fields.append(Field(name, shape, dtype.name, packed))
    return tuple(fields), treedef


def _stored_row(field: Field) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one stored step of `field`."""
    if field.packed:
        return (-(-math.prod(field.shape) // 8),), np.dtype(np.uint8)
    return field.shape, np.dtype(field.dtype)


def storage_bytes(spec: PyTree, *, capacity: int, num_envs: int) -> int:
    """Bytes `init` will allocate for these arguments (data plus the two int32 counters)."""
    fields, _ = _fields(spec)
    length = capacity // num_envs
    per_step = 0
    for field in fields:
        shape, dtype = _stored_row(field)
        per_step += math.prod(shape) * dtype.itemsize
    return num_envs * length * per_step + 2 * 4


def device_memory_bytes(device: jax.Device | None = None) -> tuple[int, str]:
    """Memory a buffer may use on `device`, and where the figure came from.

    Accelerators report `bytes_limit` (minus what is already in use). The CPU backend reports
    nothing, so we fall back to physical RAM, capped by a cgroup limit when one is set.
    """
    device = device or jax.local_devices()[0]  # jax.devices()[0] may be another process's.
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return free, f"{device.device_kind} bytes_limit - bytes_in_use"
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    source = "system RAM"
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                limit = f.read().strip()
        except OSError:
            continue
        if limit.isdigit() and int(limit) < ram:
            ram, source = int(limit), f"cgroup limit {path}"
    return ram, source


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: got {value!r} ({type(value).__name__}), allowed: an int")
    if value < minimum:
        raise ValueError(f"{name}: got {value}, allowed: an int >= {minimum}")
    return int(value)


def init(
    spec: PyTree,
    *,
    capacity: int,
    num_envs: int,
    seq_len: int | None = None,
    max_memory_fraction: float = 0.8,
    device: jax.Device | None = None,
) -> ReplayState:
    """Allocates an empty buffer, after checking that it fits in the device's memory.

    Args:
      spec: one step's fields, without the env axis: a pytree of `jax.ShapeDtypeStruct` or of
        example arrays. Each leaf's dtype is its storage dtype; multi-element bool leaves are
        bit-packed.
      capacity: total steps over all envs; must be a multiple of `num_envs`.
      num_envs: envs written by each `add` (leading axis of every step leaf).
      seq_len: if given, checks that each env's ring holds at least one window of this length.
      max_memory_fraction: the buffer may take at most this fraction of the device memory
        reported by `device_memory_bytes` (the rest is for parameters and activations).
      device: where to allocate; the default device if None.
    """
    fields, treedef = _fields(spec)
    num_envs = _check_int("num_envs", num_envs, 1)
    capacity = _check_int("capacity", capacity, num_envs)
    if capacity % num_envs:
        down = capacity // num_envs * num_envs
        raise ValueError(
            f"capacity: got {capacity}, not a multiple of num_envs={num_envs}; "
            f"allowed: a multiple such as {down} or {down + num_envs}"
        )
    length = capacity // num_envs
    if seq_len is not None:
        seq_len = _check_int("seq_len", seq_len, 2)
        if length < seq_len:
            raise ValueError(
                f"capacity: got {capacity}, which gives {length} steps per env, fewer than "
                f"seq_len={seq_len}; allowed: capacity >= seq_len * num_envs = {seq_len * num_envs}"
            )
    if not 0.0 < max_memory_fraction <= 1.0:
        raise ValueError(f"max_memory_fraction: got {max_memory_fraction}, allowed: (0, 1]")
    needed = storage_bytes(spec, capacity=capacity, num_envs=num_envs)
    available, source = device_memory_bytes(device)
    budget = int(available * max_memory_fraction)
    if needed > budget:
        per_step = (needed - 8) / capacity
        max_capacity = int(budget // per_step) // num_envs * num_envs
        raise ValueError(
            f"capacity: got {capacity} steps = {needed:,} bytes of replay "
            f"({per_step:g} bytes/step), more than max_memory_fraction={max_memory_fraction} "
            f"of {available:,} bytes ({source}); allowed: capacity <= {max_capacity}"
        )
    if capacity > _MAX_CAPACITY:
        raise ValueError(
            f"capacity: got {capacity}; allowed: capacity <= {_MAX_CAPACITY} (int32 indices)"
        )
    leaves = []
    for field in fields:
        shape, dtype = _stored_row(field)
        leaves.append(jnp.zeros((num_envs, length, *shape), dtype, device=device))
    data = jax.tree_util.tree_unflatten(treedef, leaves)
    # Two distinct buffers: a donated state must not hold the same buffer twice.
    head, size = (jnp.zeros((), jnp.int32, device=device) for _ in range(2))
    return ReplayState(data, head, size, fields, num_envs, length)


def _pack(state: ReplayState, step: PyTree, time_axis: bool) -> list[jax.Array]:
    """Checks `step` against the spec and returns its leaves in stored form."""
    leaves, treedef = jax.tree_util.tree_flatten(step)
    leaves = [jnp.asarray(x) for x in leaves]
    expected = jax.tree_util.tree_structure(state.data)
    if treedef != expected:
        raise ValueError(f"step: pytree structure {treedef} differs from the spec's {expected}")
    lead = leaves[0].shape[:2] if time_axis else leaves[0].shape[:1]
    out = []
    for field, x in zip(state.fields, leaves, strict=True):
        want = (state.num_envs, *lead[1:], *field.shape)
        if x.shape != want or x.dtype != field.dtype:
            layout = " ((num_envs, T, ...), one T for all fields)" if time_axis else ""
            raise ValueError(
                f"step{field.name}: got {x.dtype}{list(x.shape)}, "
                f"allowed: {field.dtype}{list(want)}{layout}"
            )
        if field.packed:
            x = jnp.packbits(x.reshape(*x.shape[: len(lead)], -1), axis=-1)
        out.append(x)
    return out


def _store(state: ReplayState, leaves: list[jax.Array]) -> PyTree:
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(state.data), leaves)


def add(state: ReplayState, step: PyTree) -> ReplayState:
    """Appends one time step for every env; `step` leaves have shape (num_envs, *field_shape)."""
    new = _pack(state, step, time_axis=False)
    old = jax.tree_util.tree_leaves(state.data)
    # A dynamic_update_slice of one row; with a donated state XLA writes it in place.
    written = [
        jax.lax.dynamic_update_index_in_dim(buf, x.astype(buf.dtype), state.head, axis=1)
        for buf, x in zip(old, new, strict=True)
    ]
    return state.replace(
        data=_store(state, written),
        head=(state.head + 1) % state.length,
        size=jnp.minimum(state.size + 1, state.length),
    )


def add_sequence(state: ReplayState, steps: PyTree) -> ReplayState:
    """Appends T time steps for every env; leaves (num_envs, T, *field_shape), T <= length.

    Equivalent to T calls of `add` in time order (e.g. the output of a collect `lax.scan`,
    moved to batch-major), but one scatter per field.
    """
    new = _pack(state, steps, time_axis=True)
    num_steps = new[0].shape[1]
    if num_steps > state.length:
        raise ValueError(
            f"steps: got T={num_steps} steps per env, allowed: T <= length={state.length} "
            "(a longer chunk would overwrite itself; add it in pieces)"
        )
    rows = (state.head + jnp.arange(num_steps, dtype=jnp.int32)) % state.length
    old = jax.tree_util.tree_leaves(state.data)
    written = [
        buf.at[:, rows].set(x.astype(buf.dtype), unique_indices=True)
        for buf, x in zip(old, new, strict=True)
    ]
    return state.replace(
        data=_store(state, written),
        head=(state.head + num_steps) % state.length,
        size=jnp.minimum(state.size + num_steps, state.length),
    )


def _check_sample_args(state: ReplayState, batch_size: int, seq_len: int) -> None:
    _check_int("batch_size", batch_size, 1)
    _check_int("seq_len", seq_len, 2)
    if seq_len > state.length:
        raise ValueError(
            f"seq_len: got {seq_len}, allowed: 2 <= seq_len <= {state.length} "
            f"(steps per env = capacity / num_envs)"
        )


def windows_per_env(state: ReplayState, *, seq_len: int) -> jax.Array:
    """int32 (): valid window starts in each env's ring, max(size - seq_len + 1, 0)."""
    return jnp.maximum(state.size - seq_len + 1, 0)


def num_windows(state: ReplayState, *, seq_len: int) -> jax.Array:
    """int32 (): valid windows of `seq_len` steps over all envs; `sample` needs it > 0."""
    return state.num_envs * windows_per_env(state, seq_len=seq_len)


def fill_fraction(state: ReplayState) -> jax.Array:
    """float32 (): fraction of the capacity holding data, in [0, 1]."""
    return state.size.astype(jnp.float32) / state.length


def num_steps(state: ReplayState) -> jax.Array:
    """int32 (): steps held over all envs."""
    return state.num_envs * state.size


def nbytes(state: ReplayState) -> int:
    """Exact bytes of every array in the state (storage plus counters)."""
    return sum(x.nbytes for x in jax.tree_util.tree_leaves(state))


def sample_indices(
    state: ReplayState, key: jax.Array, *, batch_size: int, seq_len: int
) -> tuple[jax.Array, jax.Array]:
    """Draws `batch_size` windows uniformly over valid starts: (env, ring_start), int32 (B,).

    With no valid window (`num_windows == 0`) the draw is of unwritten rows; check first.
    """
    _check_sample_args(state, batch_size, seq_len)
    # Every env holds the same number of windows: draw one flat window index and split it.
    count = jnp.maximum(windows_per_env(state, seq_len=seq_len), 1)
    flat = jax.random.randint(key, (batch_size,), 0, state.num_envs * count, jnp.int32)
    env, offset = flat // count, flat % count
    oldest = (state.head - state.size) % state.length
    return env, (oldest + offset) % state.length


def gather(state: ReplayState, env: jax.Array, start: jax.Array, *, seq_len: int) -> PyTree:
    """Reads windows (env[b], start[b] + t mod length); leaves (B, seq_len, *field_shape)."""
    (batch_size,) = env.shape
    assert start.shape == (batch_size,), (start.shape, env.shape)
    rows = (start[:, None] + jnp.arange(seq_len, dtype=jnp.int32)) % state.length
    envs = env[:, None]
    out = []
    for field, buf in zip(state.fields, jax.tree_util.tree_leaves(state.data), strict=True):
        x = buf[envs, rows]  # one gather: (B, T, *stored_shape)
        if field.packed:
            x = jnp.unpackbits(x, axis=-1, count=math.prod(field.shape)).astype(jnp.bool_)
            # Materialise the flat bits before reshaping: fused with the reshape, XLA:CPU unpacks
            # in a loop over the narrow (rows, width) shape (1024x64 20x10 boards on a 2-core
            # CPU: 16 ms with the fusion, 5 ms without).
            x = jax.lax.optimization_barrier(x).reshape(batch_size, seq_len, *field.shape)
        assert x.shape == (batch_size, seq_len, *field.shape), (field, x.shape)
        out.append(x)
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(state.data), out)


def sample(state: ReplayState, key: jax.Array, *, batch_size: int, seq_len: int) -> PyTree:
    """Samples `batch_size` windows of `seq_len` consecutive steps; leaves (B, T, ...).

    Uniform over all valid windows (see the module docstring). Fields come back exactly as
    added (bool boards unpacked; `is_first` untouched). Requires `num_windows(...) > 0`.
    """
    env, start = sample_indices(state, key, batch_size=batch_size, seq_len=seq_len)
    return gather(state, env, start, seq_len=seq_len)
