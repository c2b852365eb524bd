"""Fake Tetris-shaped observation specs and batches (tests must not import tetris_jax)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class FieldSpec(NamedTuple):
    """Same fields as tetris_jax.types.FieldSpec (these tests do not import tetris_jax)."""

    shape: tuple
    dtype: str
    kind: str
    num_classes: int = 2


def tetris_like_spec(
    rows: int = 20, width: int = 10, queue: int = 5, num_actions: int = 80
) -> dict[str, Any]:
    """An observation spec shaped like tetris_jax's placement-mode observation."""
    f = FieldSpec
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


def tetris_spec(rows: int = 8, width: int = 6, queue: int = 3, actions: int = 12) -> dict:
    return tetris_like_spec(rows, width, queue, actions)


def random_obs(spec: dict, lead: tuple, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    obs = {}
    for k, s in spec.items():
        shape = (*lead, *s.shape)
        if s.kind == "categorical":
            obs[k] = jnp.asarray(rng.integers(0, s.num_classes, shape), jnp.int32)
        else:
            obs[k] = jnp.asarray(rng.random(shape) < 0.5)
    if "action_mask" in obs:  # Keep at least one action allowed, as the env does.
        obs["action_mask"] = obs["action_mask"].at[..., 0].set(True)
    return obs


def random_batch(spec: dict, num_actions: int, B: int, T: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed + 1)
    batch = random_obs(spec, (B, T), seed)
    is_first = np.zeros((B, T), bool)
    is_first[:, 0] = True
    is_last = np.zeros((B, T), bool)
    is_terminal = np.zeros((B, T), bool)
    # One episode boundary in the middle of the first sequence.
    is_last[0, T // 2 - 1] = is_terminal[0, T // 2 - 1] = True
    is_first[0, T // 2] = True
    batch.update(
        action=jnp.asarray(rng.integers(0, num_actions, (B, T)), jnp.int32),
        reward=jnp.asarray(rng.normal(size=(B, T)), jnp.float32),
        is_first=jnp.asarray(is_first),
        is_last=jnp.asarray(is_last),
        is_terminal=jnp.asarray(is_terminal),
    )
    return batch


def key(seed: int = 0) -> jax.Array:
    return jax.random.key(seed)


def structured_batch(spec: dict, num_actions: int, B: int, T: int, seed: int = 0) -> dict:
    """A learnable batch: each sequence repeats one random board; pieces cycle; reward = piece.

    Unlike `random_batch`, its observations are predictable, so a world model can fit it.
    """
    batch = random_batch(spec, num_actions, B, T, seed)
    rng = np.random.default_rng(seed + 2)
    for name in ("board", "active"):
        pattern = rng.random((B, 1, *spec[name].shape)) < 0.5
        batch[name] = jnp.asarray(np.broadcast_to(pattern, (B, T, *spec[name].shape)))
    piece = (np.arange(T)[None] + np.arange(B)[:, None]) % 7
    batch["piece"] = jnp.asarray(piece, jnp.int32)
    batch["reward"] = jnp.asarray(piece / 7.0, jnp.float32)
    return batch
