"""Episodes of any `dreamer_jax.envs.Environment` played to their end on device, and their
statistics (return mean, median and 95% interval; length; the env's episode metrics).

    policy(carry, states, ts, key) -> (actions, carry, info)   (as in `tetris_jax.rollout`)

Keys are used as in `tetris_jax.rollout`: `key, reset_key = split(key)`, episode i starts from
`env.reset(split(reset_key, N)[i])`, each step does `key, sub = split(key)` for the policy. An
episode that has ended (`is_last`) is frozen: its return, length and metrics stop changing.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dreamer_jax.agent import Agent
from experiments.lib import policies


class Episodes(NamedTuple):
    """Per-episode results, each (N,)."""

    returns: jax.Array  # float32 sum of rewards.
    lengths: jax.Array  # int32 steps taken.
    ended: jax.Array  # bool: reached `is_last` (else cut by the step cap).
    metrics: dict[str, jax.Array]  # The env's episode metrics, at the end (or the cut).


class _Loop(NamedTuple):
    states: Any
    ts: Any
    carry: Any
    key: jax.Array
    returns: jax.Array
    lengths: jax.Array
    done: jax.Array
    t: jax.Array


def play(env, policy, key: jax.Array, *, num_episodes: int, max_steps: int, carry=()) -> Episodes:
    """N episodes until each ends or has taken `max_steps` steps. Jit the caller."""
    key, reset_key = jax.random.split(key)
    states, ts = jax.vmap(env.reset)(jax.random.split(reset_key, num_episodes))
    zeros = jnp.zeros((num_episodes,), jnp.float32)
    start = _Loop(
        states, ts, carry, key, zeros, zeros.astype(jnp.int32), zeros.astype(bool), jnp.int32(0)
    )

    def body(r: _Loop) -> _Loop:
        key, sub = jax.random.split(r.key)
        action, carry, _ = policy(r.carry, r.states, r.ts, sub)
        new_states, new_ts = jax.vmap(env.step)(r.states, action)
        live = ~r.done
        pick = lambda new, old: jax.tree.map(
            lambda u, v: jnp.where(live.reshape(live.shape + (1,) * (u.ndim - 1)), u, v), new, old
        )
        return _Loop(
            pick(new_states, r.states),
            pick(new_ts, r.ts),
            carry,
            key,
            r.returns + jnp.where(live, new_ts.reward, 0.0),
            r.lengths + live.astype(jnp.int32),
            r.done | (live & new_ts.is_last),
            r.t + 1,
        )

    r = jax.lax.while_loop(lambda r: (r.t < max_steps) & ~jnp.all(r.done), body, start)
    metrics = {name: r.ts.metrics[k] for name, k in env.episode_metrics.items()}
    return Episodes(r.returns, r.lengths, r.done, metrics)


@functools.lru_cache(maxsize=16)
def _play_fn(env, agent: Agent | None, num_episodes: int, max_steps: int, mode: str):
    def run(params, key):
        if agent is None:
            act, carry = policies.make_random_policy(env), ()
        else:
            act = policies.agent_policy(agent, params, mode)
            carry = agent.initial_carry(num_episodes)
        return play(env, act, key, num_episodes=num_episodes, max_steps=max_steps, carry=carry)

    return jax.jit(run)


def play_agent(env, agent, params, key, *, num_episodes: int, max_steps: int, mode="greedy"):
    """The agent's episodes (agent None: uniformly random over the allowed actions), on host."""
    out = _play_fn(env, agent, num_episodes, max_steps, mode)(params, key)
    return jax.tree.map(np.asarray, out)


def stats(episodes: Episodes) -> dict[str, float]:
    """Return per episode: mean, median, std, 95% bootstrap interval of the mean, 2.5-97.5
    percentiles, min, max; mean length; share cut by the step cap; each episode metric's mean."""
    from experiments.lib.play import bootstrap_ci

    ret = np.asarray(episodes.returns, np.float64)
    n = len(ret)
    low, high = bootstrap_ci(ret)
    out = {
        "episodes": n,
        "return_mean": float(ret.mean()),
        "return_median": float(np.median(ret)),
        "return_std": float(ret.std(ddof=1)) if n > 1 else 0.0,
        "return_ci95_low": low,
        "return_ci95_high": high,
        "return_p2_5": float(np.percentile(ret, 2.5)),
        "return_p97_5": float(np.percentile(ret, 97.5)),
        "return_min": float(ret.min()),
        "return_max": float(ret.max()),
        "length_mean": float(np.asarray(episodes.lengths, np.float64).mean()),
        "capped_share": float(1.0 - np.asarray(episodes.ended).mean()),
    }
    for name, v in episodes.metrics.items():
        if name != "length":
            out[f"{name}_mean"] = float(np.asarray(v, np.float64).mean())
    return out


SCORE = "return_mean"  # The evaluation statistic that ranks checkpoints of non-Tetris envs.


def evaluate(env, agent, params, key, *, episodes: int, max_steps: int) -> dict[str, float]:
    """Greedy episodes: `stats`."""
    return stats(play_agent(env, agent, params, key, num_episodes=episodes, max_steps=max_steps))
