"""The Q head (`Config.qhead`): a model-free Q(s, a) beside the world model, and its actor term.

Q(s, a) is read from the latent of a real replayed state and each action's real features
(an observation field of kind "action_features", e.g. the afterstate of every Tetris
placement), trained on the real lambda-returns of every replayed step. The actor gets a second
term on every replayed state, the expected advantage under Q over all allowed actions, beside
the imagination term. Why: the imagination actor ranks single actions by imagined next states,
whose values can vary more with the sampled latent than between actions; real afterstate
features and real returns rank them without that noise (docs/DESIGN.md).

The network is `model.Nets.qnet` (parameters `params["qnet"]`), built by `network`; the agent
adds `q_losses` to its loss, weighted by `scale_qval` and `scale_qpolicy`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from dreamer_jax import codec, outs, returns
from dreamer_jax.configs import Config

sg = jax.lax.stop_gradient


def network(config: Config, obs_spec: Mapping[str, Any], dtype: Any) -> codec.ActionScorer | None:
    """The Q network: twohot logits of Q(s, a) of every action from the latent and its features,
    (..., A, bins), with a zero-initialised output (Q starts at 0). None unless `qhead`."""
    if not config.qhead:
        return None
    if codec.action_features_field(obs_spec) is None:
        raise ValueError(
            "qhead: got True; the Q head scores actions by their features and needs "
            "an observation field of kind 'action_features'"
        )
    return codec.ActionScorer(
        config.critic_layers, config.units, 0.0, dtype=dtype, size=config.bins
    )


def q_losses(
    qnet: codec.ActionScorer,
    qparams: Any,
    feat: jax.Array,
    actor_logits: Callable,
    batch: Mapping[str, jax.Array],
    scale: jax.Array,
    *,
    config: Config,
    spec: tuple,
) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """The Q head's losses on every replayed step (real states, real action features and mask).

        R_t = r_{t+1} + gamma (1 - term_{t+1}) [(1 - l) max_a sg Q(s_{t+1}, a) + l R_{t+1}]
        L_qval = (1 - is_last_t) twohot CE(Q(s_t, a_t), sg R_t)
        L_qpolicy = -(1 - is_last_t) [sum_a pi(a|s_t) sg(Q(s_t, a) - E_pi Q) / scale + eta H]
    with l = lam (1 - is_last_{t+1}), the max over allowed actions, eta = `actent` and `scale`
    the return normaliser's. `feat` are the posterior features (B, T, F) with gradients: Q's
    gradient reaches the world model through them (like repval); the actor term's does not.
    `actor_logits(feat, afeat)` gives the actor's unmasked logits (`model.actor_logits`).
    Off-policy returns of a behaviour policy near pi (Peng's Q(lambda)).
    Returns ({"qval": (B, T - 1), "qpolicy": (B, T)}, metrics).
    """
    c = config
    bins = outs.twohot_bins(c.bins)
    afeat = batch[codec.action_features_field(dict(spec))].astype(jnp.float32)
    mask_key = codec.mask_field(dict(spec))
    allowed = jnp.ones(afeat.shape[:-1], bool) if mask_key is None else batch[mask_key].astype(bool)
    logits = qnet.apply(qparams, feat, afeat)  # (B, T, A, bins)
    q = sg(outs.twohot_mean(logits, bins))  # (B, T, A)
    best = jnp.where(allowed, q, -jnp.inf).max(-1)
    boot = jnp.where(allowed.any(-1), best, 0.0)
    ret, last = returns.replay_returns(batch, boot, c, batch["is_first"].shape[1])
    taken = jnp.take_along_axis(logits, batch["action"][..., None, None], -2)[..., 0, :]
    qval = (1.0 - last[:, :-1]) * outs.twohot_loss(taken[:, :-1], sg(ret), bins)

    logp = outs.mix_logits(actor_logits(sg(feat), afeat), c.unimix, allowed)
    pi = jnp.exp(logp)
    base = (sg(pi) * jnp.where(allowed, q, 0.0)).sum(-1, keepdims=True)
    adv = jnp.where(allowed, (q - base) / scale, 0.0)
    ent = outs.cat_entropy(logp)
    eta = jnp.asarray(c.actent, jnp.float32)
    qpolicy = -(1.0 - last) * ((pi * adv).sum(-1) + eta * ent)
    greedy_q = jnp.argmax(jnp.where(allowed, q, -jnp.inf), -1)
    metrics = {
        "q/value": jnp.where(allowed, q, 0.0).sum(-1).mean() / allowed.sum(-1).mean(),
        "q/taken": jnp.take_along_axis(q, batch["action"][..., None], -1).mean(),
        "q/spread": ((best - jnp.where(allowed, q, jnp.inf).min(-1)) / scale).mean(),
        "q/actor_agrees": (jnp.argmax(logp, -1) == greedy_q).astype(jnp.float32).mean(),
        "q/replay_entropy": ent.mean(),
    }
    return {"qval": qval, "qpolicy": qpolicy}, metrics
