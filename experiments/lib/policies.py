"""The agent and the random baseline as `tetris_jax.rollout` policies, and the env-to-agent
adapter (`policy_obs`) that acting and training share."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dreamer_jax import codec, envs
from dreamer_jax.agent import Agent

# The observation's fields as a dict (a dict, or a NamedTuple without the optional fields the
# env does not emit).
observation_fields = envs.observation_fields


def policy_obs(ts: Any) -> dict[str, jax.Array]:
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
    """Uniformly random over the allowed actions (any Tetris action mode)."""
    del states
    logits = jnp.where(ts.observation.action_mask, 0.0, -jnp.inf)
    return jax.random.categorical(key, logits, -1).astype(jnp.int32), carry, ()


def make_random_policy(env):
    """Uniformly random over the allowed actions of any env (all of them without a mask)."""
    mask = codec.mask_field(dict(env.observation_spec()))

    def act(carry, states, ts, key):
        del states
        if mask is None:
            logits = jnp.zeros((*ts.reward.shape, env.num_actions))
        else:
            logits = jnp.where(observation_fields(ts.observation)[mask], 0.0, -jnp.inf)
        return jax.random.categorical(key, logits, -1).astype(jnp.int32), carry, ()

    return act
