"""Recurrent state-space model: one step function for acting, `observe` and `imagine` scans.

State: deter (N, deter) float32, the GRU state; stoch (N, stoch, classes) float32 one-hot
samples of `stoch` categorical latents (straight-through gradients). The prior predicts stoch
from deter alone; the posterior from concat(deter, embedding). Categoricals use a 1% uniform
mix. Parts of a step that depend only on its inputs (the action branch of the GRU, the
embedding's share of the posterior's first layer) are computed for all steps before the scan
in `observe`; `obs_step` does the same for one step, so acting and training share one function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from dreamer_jax import nets, outs


class State(NamedTuple):
    """RSSM carry: deter (..., deter), stoch (..., stoch, classes)."""

    deter: jax.Array
    stoch: jax.Array


def initial_state(batch: int, deter: int, stoch: int, classes: int) -> State:
    """All-zero state, the same as the state after a reset."""
    return State(
        jnp.zeros((batch, deter), jnp.float32), jnp.zeros((batch, stoch, classes), jnp.float32)
    )


def features(state: State) -> jax.Array:
    """Input of all heads: concat(deter, flattened stoch), (..., deter + stoch * classes)."""
    stoch = state.stoch.reshape((*state.stoch.shape[:-2], -1))
    return jnp.concatenate([state.deter, stoch], -1)


class RSSM(nn.Module):
    """DreamerV3 RSSM. Step methods take one time step of a batch (N, ...)."""

    deter: int
    hidden: int
    stoch: int
    classes: int
    blocks: int
    prior_layers: int = 2
    post_layers: int = 1
    unimix: float = 0.01
    dtype: Any = jnp.float32

    def setup(self):
        dt = self.dtype
        self.core = nets.GRUCore(self.deter, self.hidden, self.blocks, dtype=dt)
        self.prior_net = nets.MLP(self.prior_layers, self.hidden, dtype=dt)
        self.prior_out = nets.Linear(self.stoch * self.classes, dtype=dt)
        # The posterior's first layer on concat(deter, embed), split into its two halves.
        self.post_deter = nets.Linear(self.hidden, dtype=dt)
        self.post_embed = nets.Linear(self.hidden, dtype=dt)
        self.post_norm = nets.RMSNorm()
        self.post_net = nets.MLP(self.post_layers - 1, self.hidden, dtype=dt)
        self.post_out = nets.Linear(self.stoch * self.classes, dtype=dt)

    def _logp(self, x: jax.Array) -> jax.Array:
        x = x.astype(jnp.float32).reshape((*x.shape[:-1], self.stoch, self.classes))
        return outs.mix_logits(x, self.unimix)

    def prior(self, deter: jax.Array) -> jax.Array:
        """Mixed log-probabilities of the prior, (..., stoch, classes)."""
        return self._logp(self.prior_out(self.prior_net(deter)))

    def inputs(self, action: jax.Array, embed: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Step inputs that need no state: (GRU action branch, posterior embed branch)."""
        return self.core.action_input(action), self.post_embed(embed)

    def img_step(self, state: State, action: jax.Array, key: jax.Array) -> tuple[State, jax.Array]:
        """Prior step: (state, one-hot action) -> (next state, prior log-probs)."""
        deter = self.core(state.deter, state.stoch, self.core.action_input(action))
        logp = self.prior(deter)
        return State(deter, outs.onehot_straight_through(key, logp)), logp

    def post_step(
        self, state: State, act_in: jax.Array, emb_in: jax.Array, reset: jax.Array, key: jax.Array
    ) -> tuple[State, jax.Array]:
        """Posterior step from precomputed `inputs`; zeroes the state where `reset` (N,)."""
        keep = (~reset).astype(jnp.float32)
        deter = self.core(state.deter * keep[:, None], state.stoch * keep[:, None, None], act_in)
        x = self.post_deter(deter) + emb_in.astype(self.dtype)
        logp = self._logp(self.post_out(self.post_net(nn.silu(self.post_norm(x)))))
        return State(deter, outs.onehot_straight_through(key, logp)), logp

    def obs_step(
        self, state: State, action: jax.Array, embed: jax.Array, reset: jax.Array, key: jax.Array
    ) -> tuple[State, jax.Array]:
        """Posterior step for acting. Where `reset`, state and previous action are zeroed."""
        action = action * (~reset).astype(jnp.float32)[:, None]
        act_in, emb_in = self.inputs(action, embed)
        return self.post_step(state, act_in, emb_in, reset, key)

    def __call__(self, state, action, embed, reset, key):
        """Touches every parameter (for `init`)."""
        state, _ = self.obs_step(state, action, embed, reset, key)
        return self.prior(state.deter)


def observe(
    model: RSSM,
    params: Any,
    state: State,
    embed: jax.Array,
    action: jax.Array,
    reset: jax.Array,
    key: jax.Array,
    unroll: int = 1,
    remat: bool = False,
) -> tuple[State, State, jax.Array]:
    """Posterior rollout over a batch-major window.

    embed (B, T, E); action (B, T, A) one-hot previous actions; reset (B, T) bool: there the
    state and the previous action are zeroed before the step.
    Returns (last state, states (B, T, ...), posterior log-probs (B, T, stoch, classes)).
    """
    B, T = reset.shape
    assert embed.shape[:2] == (B, T) and action.shape[:2] == (B, T), (embed.shape, action.shape)
    action = action * (~reset).astype(jnp.float32)[..., None]
    act_in, emb_in = model.apply(params, action, embed, method=RSSM.inputs)

    def step(carry, inputs):
        a, e, res, k = inputs
        carry, logp = model.apply(params, carry, a, e, res, k, method=RSSM.post_step)
        return carry, (carry, logp)

    xs = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), (act_in, emb_in, reset))
    keys = jax.random.split(key, T)
    if remat:
        step = jax.checkpoint(step)
    last, (states, logp) = jax.lax.scan(step, state, (*xs, keys), unroll=unroll)
    states, logp = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), (states, logp))
    return last, states, logp


def imagine(
    model: RSSM,
    params: Any,
    start: State,
    policy_fn: Callable[[State, jax.Array, jax.Array], tuple[jax.Array, Any]],
    num_actions: int,
    length: int,
    key: jax.Array,
    unroll: int = 1,
    action_fn: Callable[[jax.Array, Any], jax.Array] | None = None,
) -> tuple[State, jax.Array, Any]:
    """Prior rollout of `length` steps from `start` (N, ...), choosing actions with policy_fn.

    policy_fn(state, step, key) -> (action (N,) int32, extras pytree) is called on states
    0..length-1. The RSSM's action input is the one-hot action, or action_fn(action, extras)
    when given (e.g. with the chosen action's features). Returns states (N, length + 1, ...)
    including the start, actions (N, length) and the extras stacked as (N, length, ...).
    """

    def step(carry, inputs):
        h, k = inputs
        k_act, k_img = jax.random.split(k)
        action, extras = policy_fn(carry, h, k_act)
        if action_fn is None:
            vec = jax.nn.one_hot(action, num_actions, dtype=jnp.float32)
        else:
            vec = action_fn(action, extras)
        nxt, _ = model.apply(params, carry, vec, k_img, method=RSSM.img_step)
        return nxt, (nxt, action, extras)

    xs = (jnp.arange(length), jax.random.split(key, length))
    _, (states, actions, extras) = jax.lax.scan(step, start, xs, unroll=unroll)
    states, actions, extras = jax.tree.map(
        lambda x: jnp.swapaxes(x, 0, 1), (states, actions, extras)
    )
    states = jax.tree.map(lambda s, x: jnp.concatenate([s[:, None], x], 1), start, states)
    return states, actions, extras
