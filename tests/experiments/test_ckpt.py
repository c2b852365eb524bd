"""Checkpoint retention (last K plus the best by evaluation) and clear errors."""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import pytest

from experiments.lib import checkpoints as ckpt
from experiments.lib.errors import UserError


@flax.struct.dataclass
class _Agent:
    params: dict


@flax.struct.dataclass
class _State:
    """The attributes of loop.LoopState that the checkpointer reads, with tiny arrays."""

    agent: _Agent
    env: jax.Array
    last: jax.Array
    policy: jax.Array
    ep_return: jax.Array
    replay: jax.Array
    key: jax.Array


def _state(x: float) -> _State:
    a = jnp.full((3,), x)
    return _State(_Agent({"w": a}), a, a, a, a, a, jax.random.key(0))


def test_keeps_last_k_plus_best(tmp_path):
    c = ckpt.Checkpointer(str(tmp_path), keep_last=2)
    for step, score in [(10, 1.0), (20, 5.0), (30, 2.0), (40, 3.0), (50, None)]:
        c.save(step, _state(step), {"counters": {"env_steps": step}, "has_replay": True}, score)
    assert c.steps() == [20, 40, 50]
    assert c.best() == 20
    restored, meta, had_replay = c.restore_state(_state(0.0), 40)
    assert had_replay and meta["counters"]["env_steps"] == 40
    assert float(restored.replay[0]) == 40.0
    params, step = c.restore_params({"w": jax.ShapeDtypeStruct((3,), jnp.float32)})
    assert step == 50 and float(params["w"][0]) == 50.0
    with pytest.raises(UserError, match="no such checkpoint"):
        c.restore_params({"w": jax.ShapeDtypeStruct((3,), jnp.float32)}, 30)
    c.close()


def test_missing_checkpoints(tmp_path):
    with pytest.raises(UserError, match="no checkpoints"):
        ckpt.Checkpointer(str(tmp_path), create=False)
