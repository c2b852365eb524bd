"""Slow learning test: the agent must clearly beat a random policy on a masked cue task.

Task (numpy, 16 envs): each episode draws a cue in [0, 6) and an action mask in which the cued
action is always allowed and every other action with probability 1/2; both are shown at every
step of the episode. Taking the cued action pays 1 on the next step, anything else 0. Episodes
end by time limit after 10 steps (is_last, not is_terminal). A uniform policy over allowed
actions earns about 0.33 per step; the agent must learn through its world model that reward
follows the cue, and act on it.

The cue is drawn per episode, not per step: imagined rollouts then stay coherent (the prior
predicts the next cue from the recurrent state). With a fresh cue every step, the prior's 32
independent latents sample an incoherent mix of cues after the first imagined step, and the
actor spends most of its updates on states that match no real observation (that version stayed
at random after 2,000 updates). The reward is an interaction of cue and action, which the tiny
world model needs ~1,500 updates to fit; hence 3,000 updates.
Run with `pytest -m slow tests/dreamer/test_learning.py` (about 3-5 minutes on 2 CPU cores).
"""

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamer_jax import Agent, get_config

A, EPISODE, ENVS = 6, 10, 16


class FieldSpec(NamedTuple):
    shape: tuple
    dtype: str
    kind: str
    num_classes: int = 2


SPEC = {
    "cue": FieldSpec((), "int32", "categorical", A),
    "action_mask": FieldSpec((A,), "bool", "mask"),
}


class CueEnv:
    """Vectorised numpy cue task; `step` returns the replay record of the new step."""

    def __init__(self, n, seed):
        self.rng = np.random.default_rng(seed)
        self.n = n
        self.t = np.zeros(n, int)
        self.cue = np.zeros(n, int)
        self.mask = np.ones((n, A), bool)

    def _new_obs(self, where):
        k = int(where.sum())
        self.cue[where] = self.rng.integers(0, A, k)
        mask = self.rng.random((k, A)) < 0.5
        mask[np.arange(k), self.cue[where]] = True
        self.mask[where] = mask

    def reset(self):
        self.t[:] = 0
        self._new_obs(np.ones(self.n, bool))
        return self._record(np.zeros(self.n), np.ones(self.n, bool))

    def step(self, action):
        reward = (action == self.cue).astype(np.float32)
        done = self.t == EPISODE - 1  # The step that ended the previous episode was is_last.
        self.t = np.where(done, 0, self.t + 1)
        self._new_obs(done)  # A new cue and mask where a new episode starts.
        reward = np.where(done, 0.0, reward)
        return self._record(reward, done)

    def _record(self, reward, is_first):
        return {
            "cue": self.cue.astype(np.int32).copy(),
            "action_mask": self.mask.copy(),
            "reward": reward.astype(np.float32),
            "is_first": is_first.copy(),
            "is_last": self.t == EPISODE - 1,
            "is_terminal": np.zeros(self.n, bool),
        }


def _obs(record):
    return {k: jnp.asarray(record[k]) for k in ("cue", "action_mask", "is_first")}


def _evaluate(agent, params, steps, seed, mode):
    """Mean reward per step over all envs; agent=None plays uniformly over allowed actions."""
    env = CueEnv(ENVS, seed)
    rng = np.random.default_rng(seed)
    record = env.reset()
    carry = agent.initial_carry(ENVS)
    rewards, valid = [], []
    for i in range(steps):
        if params is None:
            action = np.array([rng.choice(np.flatnonzero(m)) for m in record["action_mask"]])
        else:
            key = jax.random.key(10_000 + i)
            action, carry = agent.policy(params, carry, _obs(record), key, mode)
            action = np.asarray(action)
        valid.append(record["action_mask"][np.arange(ENVS), action])
        record = env.step(action)
        rewards.append(record["reward"][~record["is_first"]])
    assert np.all(valid), "a masked action was chosen"
    return float(np.concatenate(rewards).mean())


@pytest.mark.slow
def test_agent_beats_random_on_masked_cue_task():
    B, T = 16, 16
    config = get_config(
        "tiny", batch_size=B, batch_length=T, lr=1e-3, warmup=20, imag_last=0, horizon=20
    )
    agent = Agent(config, SPEC, A)
    state = agent.init(jax.random.key(0))
    env = CueEnv(ENVS, seed=0)
    record = env.reset()
    carry = agent.initial_carry(ENVS)
    iterations = 3000
    capacity = 2 * iterations
    buffer = {k: np.zeros((capacity, ENVS, *np.shape(v)[1:]), v.dtype) for k, v in record.items()}
    buffer["action"] = np.zeros((capacity, ENVS), np.int32)
    rng = np.random.default_rng(0)
    size, updates, start = 0, 0, time.time()
    for it in range(iterations):
        # Collect 2 steps per env, then one update (train ratio 256 / 32 = 8).
        for _ in range(2):
            action, carry = agent.policy(
                state.params, carry, _obs(record), jax.random.key(it * 2 + _), "sample"
            )
            action = np.asarray(action)
            for k, v in record.items():
                buffer[k][size] = v
            buffer["action"][size] = action
            size += 1
            record = env.step(action)
        if size < T + 1:
            continue
        t0 = rng.integers(0, size - T + 1, B)
        e = rng.integers(0, ENVS, B)
        idx = t0[:, None] + np.arange(T)[None]
        batch = {k: jnp.asarray(v[idx, e[:, None]]) for k, v in buffer.items()}
        state, metrics = agent.train_step(state, batch, jax.random.key(100_000 + it))
        updates += 1
    elapsed = time.time() - start
    assert all(np.isfinite(float(v)) for v in metrics.values())
    random_score = _evaluate(agent, None, 60, seed=1, mode="sample")
    greedy = _evaluate(agent, state.params, 60, seed=1, mode="greedy")
    sample = _evaluate(agent, state.params, 60, seed=2, mode="sample")
    print(
        f"updates={updates} elapsed={elapsed:.0f}s random={random_score:.3f} "
        f"greedy={greedy:.3f} sample={sample:.3f} entropy={float(metrics['actor/entropy']):.3f}"
    )
    assert 0.25 < random_score < 0.42
    assert greedy > random_score + 0.3, (greedy, random_score)
    assert sample > random_score + 0.2, (sample, random_score)
