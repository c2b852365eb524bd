"""DreamerV3's optimizer as an optax chain (LaProp order).

    g -> adaptive gradient clipping per tensor (ratio 0.3)
      -> divide by sqrt(EMA of g^2) (beta2 0.999, eps 1e-20, bias-corrected)
      -> EMA momentum of the normalised update (beta1 0.9, bias-corrected)
      -> times -lr, with a linear warm-up from 0.

Normalising before the momentum (LaProp, Ziyin et al. 2020) rather than after (Adam) is what
DreamerV3 does; one optimizer covers every parameter.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


def clip_by_agc(clip: float = 0.3, pmin: float = 1e-3) -> optax.GradientTransformation:
    """Scale each tensor's update so ||u|| <= clip * max(pmin, ||param||) (Brock et al. 2021)."""

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("clip_by_agc needs params")

        def fn(u, p):
            unorm = jnp.linalg.norm(u.ravel())
            upper = clip * jnp.maximum(pmin, jnp.linalg.norm(p.ravel()))
            return u / jnp.maximum(1.0, unorm / upper)

        return jax.tree.map(fn, updates, params), state

    return optax.GradientTransformation(init_fn, update_fn)


class _MomentState(NamedTuple):
    count: jax.Array
    moment: optax.Updates


def _init_moment(params) -> _MomentState:
    """A zero float32 moment per parameter and a zero step count."""
    zeros = jax.tree.map(lambda p: jnp.zeros_like(p, jnp.float32), params)
    return _MomentState(jnp.zeros((), jnp.int32), zeros)


def scale_by_rms(beta: float = 0.999, eps: float = 1e-20) -> optax.GradientTransformation:
    """u / (sqrt(nu_hat) + eps) with nu the bias-corrected EMA of u^2."""

    def update_fn(updates, state, params=None):
        del params
        count = optax.safe_int32_increment(state.count)
        nu = jax.tree.map(lambda v, u: beta * v + (1 - beta) * u * u, state.moment, updates)
        corr = 1 - beta ** count.astype(jnp.float32)
        updates = jax.tree.map(lambda u, v: u / (jnp.sqrt(v / corr) + eps), updates, nu)
        return updates, _MomentState(count, nu)

    return optax.GradientTransformation(_init_moment, update_fn)


def scale_by_momentum(beta: float = 0.9) -> optax.GradientTransformation:
    """Bias-corrected EMA of the updates (not optax.trace's sum)."""

    def update_fn(updates, state, params=None):
        del params
        count = optax.safe_int32_increment(state.count)
        mu = jax.tree.map(lambda m, u: beta * m + (1 - beta) * u, state.moment, updates)
        corr = 1 - beta ** count.astype(jnp.float32)
        return jax.tree.map(lambda m: m / corr, mu), _MomentState(count, mu)

    return optax.GradientTransformation(_init_moment, update_fn)


def make_optimizer(
    *,
    lr: float = 4e-5,
    agc: float = 0.3,
    eps: float = 1e-20,
    beta1: float = 0.9,
    beta2: float = 0.999,
    warmup: int = 1000,
) -> optax.GradientTransformation:
    """The full chain; `agc=0` disables clipping, `warmup=0` uses a constant rate."""
    if warmup:
        schedule = optax.linear_schedule(0.0, lr, warmup)
    else:
        schedule = optax.constant_schedule(lr)
    chain = [clip_by_agc(agc)] if agc else []
    chain += [scale_by_rms(beta2, eps), scale_by_momentum(beta1)]
    chain.append(optax.scale_by_learning_rate(schedule))
    return optax.chain(*chain)
