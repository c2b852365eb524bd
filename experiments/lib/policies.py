"""The agent and the random baseline as `tetris_jax.rollout` policies, and the env-to-agent
adapter (`policy_obs`) that acting and training share."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dreamer_jax.agent import Agent
from tetris_jax import TimeStep


def observation_fields(obs) -> dict[str, jax.Array]:
    """The observation's fields as a dict, without the optional ones the env does not emit."""
    return {k: v for k, v in obs._asdict().items() if v is not None}


def policy_obs(ts: TimeStep) -> dict[str, jax.Array]:
    """What `Agent.policy` reads: the observation fields and `is_first` (resets the carry)."""
    return {**observation_fields(ts.observation), "is_first": ts.is_first}


def agent_policy(agent: Agent, params: Any, mode: str):
    """The agent acting with `mode` ("greedy" or "sample"); its carry is a `PolicyCarry`
    (start from `agent.initial_carry(N)`), its info the carry after the step."""

    def act(carry, states, ts, key):
        del states
        action, carry = agent.policy(params, carry, policy_obs(ts), key, mode)
        return action, carry, carry

    return act


def random_policy(carry, states, ts, key):
    """Uniformly random over the allowed actions (any action mode)."""
    del states
    logits = jnp.where(ts.observation.action_mask, 0.0, -jnp.inf)
    return jax.random.categorical(key, logits, -1).astype(jnp.int32), carry, ()
