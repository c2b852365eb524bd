"""Lambda-returns (imagined and replayed) and percentile return normalisation (DreamerV3,
Hafner et al. 2023/2025)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from dreamer_jax.configs import Config


def lambda_return(
    reward: jax.Array,
    cont: jax.Array,
    boot: jax.Array,
    last: jax.Array,
    lam: float,
) -> jax.Array:
    """TD(lambda) returns of one sequence (time axis 0, length L); returns R_0..R_{L-2}.

        R_{L-1} = boot_{L-1}
        R_t = r_{t+1} + c_{t+1} [(1 - l_{t+1}) boot_{t+1} + l_{t+1} R_{t+1}]
        with l_{t+1} = lam (1 - last_{t+1})

    reward[t] is received on arriving at step t; cont[t] is the discount times the probability
    that the episode continues at t (so terminal steps have c = 0 and cut bootstrapping);
    boot[t] is the value (or return estimate) of step t; last[t] marks an episode boundary at
    t, where the recursion is cut and R_{t-1} bootstraps from boot_t alone.
    With last = 0 this is DreamerV3's R_t = r_{t+1} + c_{t+1}((1-lam) V_{t+1} + lam R_{t+1}).
    """
    chex.assert_rank([reward, cont, boot, last], 1)
    chex.assert_equal_shape([reward, cont, boot, last])
    mix = lam * (1.0 - last.astype(jnp.float32))

    def step(ret_next, inputs):
        r, c, b, m = inputs
        ret = r + c * ((1.0 - m) * b + m * ret_next)
        return ret, ret

    xs = (reward[1:], cont[1:].astype(jnp.float32), boot[1:], mix[1:])
    _, rets = jax.lax.scan(step, boot[-1], xs, reverse=True)
    return rets


def replay_returns(
    batch: Mapping[str, jax.Array], boot: jax.Array, config: Config, K: int
) -> tuple[jax.Array, jax.Array]:
    """Lambda-returns of the real rewards of the last K replayed steps, bootstrapped from
    `boot` (B, K), discount 1 - 1/horizon, cut at terminals and episode ends.
    Returns (R (B, K - 1), is_last of those K steps as float (B, K))."""
    disc = 1.0 - 1.0 / config.horizon
    cont = (1.0 - batch["is_terminal"][:, -K:].astype(jnp.float32)) * disc
    last = batch["is_last"][:, -K:].astype(jnp.float32)
    reward = batch["reward"][:, -K:].astype(jnp.float32)
    lam_return = jax.vmap(lambda_return, (0, 0, 0, 0, None))
    return lam_return(reward, cont, boot, last, config.lam), last


class NormState(NamedTuple):
    """EMA of the low and high return percentiles."""

    lo: jax.Array
    hi: jax.Array


def norm_init() -> NormState:
    return NormState(jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))


def norm_update(
    state: NormState, x: jax.Array, *, rate: float, lo_pct: float = 5.0, hi_pct: float = 95.0
) -> NormState:
    """Move the percentile EMAs towards the lo/hi percentiles of x (all elements)."""
    x = jax.lax.stop_gradient(x.astype(jnp.float32))
    lo, hi = jnp.percentile(x, jnp.array([lo_pct, hi_pct]))
    return NormState(state.lo + rate * (lo - state.lo), state.hi + rate * (hi - state.hi))


def norm_scale(state: NormState, *, limit: float = 1.0) -> jax.Array:
    """max(limit, P_hi - P_lo): returns are divided by it (no offset, as in DreamerV3)."""
    return jnp.maximum(limit, state.hi - state.lo)
