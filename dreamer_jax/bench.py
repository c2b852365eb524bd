"""Throughput of `train_step` on synthetic Tetris-shaped batches (no environment needed)."""

from __future__ import annotations

import statistics
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dreamer_jax.agent import Agent
from dreamer_jax.configs import get_config


class _FieldSpec(NamedTuple):
    """Same fields as tetris_jax.types.FieldSpec, so the benchmark needs no environment."""

    shape: tuple
    dtype: str
    kind: str
    num_classes: int = 2


def tetris_like_spec(
    rows: int = 20, width: int = 10, queue: int = 5, num_actions: int = 80
) -> dict[str, Any]:
    """An observation spec shaped like tetris_jax's placement-mode observation."""
    f = _FieldSpec
    return {
        "board": f((rows, width), "bool", "binary"),
        "active": f((rows, width), "bool", "binary"),
        "piece": f((), "int32", "categorical", 7),
        "rotation": f((), "int32", "categorical", 4),
        "queue": f((queue,), "int32", "categorical", 7),
        "hold": f((), "int32", "categorical", 8),
        "can_hold": f((), "bool", "binary"),
        "action_mask": f((num_actions,), "bool", "mask"),
    }


def synthetic_batch(
    obs_spec: dict[str, Any], num_actions: int, batch_size: int, seq_len: int, seed: int = 0
) -> dict[str, jax.Array]:
    """Random observations and flags with the replay batch layout (B, T, ...)."""
    rng = np.random.default_rng(seed)
    B, T = batch_size, seq_len
    batch = {}
    for k, s in obs_spec.items():
        shape = (B, T, *s.shape)
        if s.kind == "categorical":
            batch[k] = rng.integers(0, s.num_classes, shape).astype(np.int32)
        else:
            batch[k] = rng.random(shape) < 0.5
    is_first = rng.random((B, T)) < 0.02
    is_first[:, 0] = True
    is_last = np.roll(is_first, -1, 1)
    is_last[:, -1] = False
    batch.update(
        action=rng.integers(0, num_actions, (B, T)).astype(np.int32),
        reward=rng.normal(size=(B, T)).astype(np.float32),
        is_first=is_first,
        is_last=is_last,
        is_terminal=is_last & (rng.random((B, T)) < 0.5),
    )
    return {k: jnp.asarray(v) for k, v in batch.items()}


def benchmark_train_step(
    preset: str = "tiny",
    batch_size: int = 16,
    seq_len: int = 64,
    steps: int = 20,
    repeats: int = 3,
    num_actions: int = 80,
    **overrides: Any,
) -> dict[str, Any]:
    """Compile once, then time `repeats` runs of `steps` updates each.

    Returns compile_s (first call, including tracing and compilation), updates_per_s and
    replayed_steps_per_s (medians over repeats; replayed steps = updates * B * T), the
    per-repeat rates, the parameter count and the device.
    """
    config = get_config(preset, batch_size=batch_size, batch_length=seq_len, **overrides)
    spec = tetris_like_spec(num_actions=num_actions)
    agent = Agent(config, spec, num_actions)
    key = jax.random.key(0)
    state = agent.init(key)
    batch = synthetic_batch(spec, num_actions, batch_size, seq_len)
    start = time.perf_counter()
    state, metrics = agent.train_step(state, batch, jax.random.fold_in(key, 0))
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - start
    rates = []
    for r in range(repeats):
        start = time.perf_counter()
        for i in range(steps):
            state, metrics = agent.train_step(state, batch, jax.random.fold_in(key, r * steps + i))
        jax.block_until_ready((state, metrics))
        rates.append(steps / (time.perf_counter() - start))
    ups = statistics.median(rates)
    return {
        "preset": preset,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "compile_s": compile_s,
        "updates_per_s": ups,
        "replayed_steps_per_s": ups * batch_size * seq_len,
        "updates_per_s_repeats": rates,
        "param_count": int(sum(x.size for x in jax.tree.leaves(state.params))),
        "device": str(jax.devices()[0]),
        "finite": bool(all(np.isfinite(float(v)) for v in metrics.values())),
    }
