"""Network building blocks: linear layers, RMSNorm, MLPs and the block-diagonal GRU core.

Parameters are always float32; `dtype` is the compute dtype (float32 or bfloat16). Every layer
casts its parameters to the compute dtype at use, so a bf16 run keeps fp32 master weights.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Dtype = Any


def trunc_normal_init(scale: float = 1.0):
    """Truncated normal (+-2 std) with variance 1/fan_in, times `scale` (0 gives zeros)."""

    def init(key, shape, dtype=jnp.float32):
        if scale == 0.0:
            return jnp.zeros(shape, dtype)
        fan_in = math.prod(shape[:-1])
        # 1.1368 undoes the variance lost by truncating at two standard deviations.
        std = 1.1368 * np.sqrt(1.0 / fan_in) * scale
        return (jax.random.truncated_normal(key, -2.0, 2.0, shape) * std).astype(dtype)

    return init


class Linear(nn.Module):
    """Dense layer with fp32 parameters, compute in `dtype`; `outscale` scales the init."""

    units: int
    outscale: float = 1.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", trunc_normal_init(self.outscale), (x.shape[-1], self.units))
        bias = self.param("bias", nn.initializers.zeros, (self.units,))
        x = x.astype(self.dtype)
        return x @ kernel.astype(self.dtype) + bias.astype(self.dtype)


class SplitLinear(nn.Module):
    """`Linear` on the concatenation of `xs`, without building it: each input meets its own
    rows of one kernel (the same parameters as `Linear` on the concatenation), so an input
    shared along a broadcast axis (shape 1 there) is multiplied once, not once per position."""

    units: int
    outscale: float = 1.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, *xs: jax.Array) -> jax.Array:
        sizes = [x.shape[-1] for x in xs]
        kernel = self.param("kernel", trunc_normal_init(self.outscale), (sum(sizes), self.units))
        bias = self.param("bias", nn.initializers.zeros, (self.units,))
        kernel = kernel.astype(self.dtype)
        out, start = bias.astype(self.dtype), 0
        for x, n in zip(xs, sizes, strict=True):
            out = out + x.astype(self.dtype) @ kernel[start : start + n]
            start += n
        return out


class BlockLinear(nn.Module):
    """Block-diagonal dense layer: `blocks` independent linear maps on equal input slices."""

    units: int
    blocks: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        g = self.blocks
        assert x.shape[-1] % g == 0 and self.units % g == 0, (x.shape, self.units, g)
        shape = (g, x.shape[-1] // g, self.units // g)
        kernel = self.param("kernel", trunc_normal_init(), shape)
        bias = self.param("bias", nn.initializers.zeros, (self.units,))
        x = x.astype(self.dtype).reshape((*x.shape[:-1], g, shape[1]))
        x = jnp.einsum("...gi,gio->...go", x, kernel.astype(self.dtype))
        return x.reshape((*x.shape[:-2], self.units)) + bias.astype(self.dtype)


class RMSNorm(nn.Module):
    """RMS normalisation over the last axis (eps 1e-4), computed in float32."""

    eps: float = 1e-4

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
        y = x.astype(jnp.float32)
        y = y * jax.lax.rsqrt(jnp.mean(jnp.square(y), -1, keepdims=True) + self.eps) * scale
        return y.astype(x.dtype)


class MLP(nn.Module):
    """`layers` x (Linear -> RMSNorm -> SiLU)."""

    layers: int
    units: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for _ in range(self.layers):
            x = nn.silu(RMSNorm()(Linear(self.units, dtype=self.dtype)(x)))
        return x


class GRUCore(nn.Module):
    """DreamerV3's recurrent core: a GRU over `deter` with block-diagonal weights.

    deter, the flattened stochastic state and the action are each projected to `hidden` units
    (Linear -> RMSNorm -> SiLU), appended to every block of deter, and mixed by block-diagonal
    layers, so each of the `blocks` groups of deter sees all inputs but only its own recurrence.
    The update gate is sigmoid(u - 1), biased towards keeping the old state. The action branch
    is a separate method so a scan over known actions can compute it for all steps at once.
    """

    deter: int
    hidden: int
    blocks: int
    dtype: Dtype = jnp.float32

    def setup(self):
        self.act_in = Linear(self.hidden, dtype=self.dtype)
        self.act_norm = RMSNorm()
        self.deter_in = Linear(self.hidden, dtype=self.dtype)
        self.deter_norm = RMSNorm()
        self.stoch_in = Linear(self.hidden, dtype=self.dtype)
        self.stoch_norm = RMSNorm()
        self.hid = BlockLinear(self.deter, self.blocks, dtype=self.dtype)
        self.hid_norm = RMSNorm()
        self.gates = BlockLinear(3 * self.deter, self.blocks, dtype=self.dtype)

    def action_input(self, action: jax.Array) -> jax.Array:
        """(..., A) action vector -> (..., hidden) input branch."""
        # Keep large action vectors bounded (one-hot actions pass unchanged).
        action = action / jax.lax.stop_gradient(jnp.maximum(1.0, jnp.abs(action)))
        return nn.silu(self.act_norm(self.act_in(action)))

    def __call__(self, deter: jax.Array, stoch: jax.Array, act_in: jax.Array) -> jax.Array:
        """One GRU step given `act_in = action_input(action)`; returns the new deter (f32)."""
        g = self.blocks
        stoch = stoch.reshape((*stoch.shape[:-2], -1))
        x0 = nn.silu(self.deter_norm(self.deter_in(deter)))
        x1 = nn.silu(self.stoch_norm(self.stoch_in(stoch)))
        x = jnp.concatenate([x0, x1, act_in.astype(self.dtype)], -1)
        x = jnp.broadcast_to(x[..., None, :], (*x.shape[:-1], g, x.shape[-1]))
        groups = deter.astype(self.dtype).reshape((*deter.shape[:-1], g, -1))
        x = jnp.concatenate([groups, x], -1).reshape((*deter.shape[:-1], -1))
        x = nn.silu(self.hid_norm(self.hid(x)))
        x = self.gates(x).astype(jnp.float32).reshape((*deter.shape[:-1], g, 3, -1))
        reset, cand, update = (x[..., i, :].reshape(deter.shape) for i in range(3))
        reset = jax.nn.sigmoid(reset)
        cand = jnp.tanh(reset * cand)
        update = jax.nn.sigmoid(update - 1.0)
        return update * cand + (1.0 - update) * deter.astype(jnp.float32)
