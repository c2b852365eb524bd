"""DreamerV3 losses over a replayed batch (B, T): world model, imagination, replay value
(the Q head's are in `qhead.py`).

Equations follow Hafner et al., "Mastering diverse control tasks through world models"
(Nature 2025), and the reference code (danijar/dreamerv3, `agent.py`). Every loss is returned
per element and averaged by the caller; metrics are scalars.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from dreamer_jax import codec, model, outs, returns, rssm
from dreamer_jax.configs import Config
from dreamer_jax.model import Nets

sg = jax.lax.stop_gradient


class WorldOut(NamedTuple):
    """World-model outputs the actor-critic losses reuse."""

    states: rssm.State  # Posterior states (B, T, ...).
    feat: jax.Array  # features(states), (B, T, F), with gradients.


def prev_actions(action: jax.Array, num_actions: int, afeat: jax.Array | None = None) -> jax.Array:
    """RSSM action input of the previous action for each step of (B, T) actions; step 0 gets
    zeros. One-hot, plus with action features afeat (B, T, A, F) the chosen action's
    (`model.action_input`).

    Windows start from a zero state (the reset state) and a zero previous action, whether or
    not step 0 begins an episode, so no carry is kept between replayed windows.
    """
    vec = jax.nn.one_hot(action, num_actions, dtype=jnp.float32)
    if afeat is not None:
        vec = model.action_input(vec, model.chosen(afeat, action))
    return jnp.concatenate([jnp.zeros_like(vec[:, :1]), vec[:, :-1]], 1)


def kl_losses(
    post: jax.Array, prior: jax.Array, free_nats: float
) -> tuple[dict[str, jax.Array], jax.Array, jax.Array]:
    """KL balancing with free bits on log-probabilities (..., stoch, classes).

        dyn = max(free, sum_latents KL[sg(post) || prior]),  rep = max(free, KL[post || sg(prior)])
    Below `free_nats` the clamp passes no gradient. Returns ({"dyn", "rep"}, raw dyn, raw rep).
    """
    dyn = outs.cat_kl(sg(post), prior).sum(-1)
    rep = outs.cat_kl(post, sg(prior)).sum(-1)
    losses = {"dyn": jnp.maximum(dyn, free_nats), "rep": jnp.maximum(rep, free_nats)}
    return losses, dyn, rep


def world_model_loss(
    nets: Nets,
    params: Any,
    batch: Mapping[str, jax.Array],
    key: jax.Array,
    *,
    config: Config,
    spec: tuple,
    num_actions: int,
) -> tuple[dict[str, jax.Array], dict[str, jax.Array], WorldOut]:
    """Reconstruction, reward, continue and KL losses, each (B, T).

    L_dyn = max(free, KL[sg(q(z|h,x)) || p(z|h)]),  L_rep = max(free, KL[q || sg(p)])
    L_rec = -ln p(x|z,h) per field,  L_rew = twohot CE,  L_con = Bernoulli CE with target
    (1 - is_terminal)(1 - 1/horizon).
    """
    c = config
    B, T = batch["is_first"].shape
    obs = {k: batch[k] for k, _ in spec}
    reset = batch["is_first"].at[:, 0].set(True)
    embed = nets.enc.apply(params["enc"], obs)
    start = rssm.initial_state(B, c.deter, c.stoch, c.classes)
    afeat_key = codec.action_features_field(dict(spec))
    afeat = None if afeat_key is None else batch[afeat_key].astype(jnp.float32)
    action = prev_actions(batch["action"], num_actions, afeat)
    _, states, post = rssm.observe(
        nets.rssm, params["rssm"], start, embed, action, reset, key, c.unroll, c.remat
    )
    prior = nets.rssm.apply(params["rssm"], states.deter, method=rssm.RSSM.prior)
    losses, dyn, rep = kl_losses(post, prior, c.free_nats)
    metrics = {
        "kl/dyn": dyn.mean(),
        "kl/rep": rep.mean(),
        "kl/prior_entropy": outs.cat_entropy(prior).sum(-1).mean(),
        "kl/post_entropy": outs.cat_entropy(post).sum(-1).mean(),
    }

    feat = rssm.features(states)
    recon = codec.recon_losses(spec, nets.dec.apply(params["dec"], feat), obs)
    for name, loss in recon.items():
        losses[f"rec/{name}"] = loss
    mask_key = codec.mask_field(dict(spec))
    if nets.mask is not None:
        mask_logit = nets.mask.apply(params["mask"], feat)
        target = batch[mask_key]
        losses[f"rec/{mask_key}"] = -outs.bernoulli_logp(mask_logit, target).sum(-1)
        allowed = jax.nn.sigmoid(mask_logit) > c.mask_threshold
        metrics["mask/accuracy"] = (allowed == target).mean()

    if afeat is not None:  # Regression in symlog space, summed over features, mean over actions.
        pred = model.predicted_action_features(nets, params, feat, num_actions)
        losses[f"rec/{afeat_key}"] = jnp.square(pred - outs.symlog(afeat)).sum(-1).mean(-1)

    rew_logits = nets.rew.apply(params["rew"], feat)
    losses["rew"] = outs.twohot_loss(rew_logits, batch["reward"], _bins(c))
    con_target = (1.0 - batch["is_terminal"].astype(jnp.float32)) * (1.0 - 1.0 / c.horizon)
    con_logit = nets.con.apply(params["con"], feat)[..., 0]
    losses["con"] = -outs.bernoulli_logp(con_logit, con_target)
    for name, loss in losses.items():
        assert loss.shape == (B, T), (name, loss.shape, B, T)
    return losses, metrics, WorldOut(states, feat)


def imag_starts(config: Config, seq_len: int) -> int:
    """Number of last steps per sequence that start imagination (all when imag_last is 0)."""
    return min(config.imag_last or seq_len, seq_len)


def _bins(config: Config) -> jax.Array:
    return outs.twohot_bins(config.bins)


def imagination_loss(
    nets: Nets,
    params: Any,
    slow_critic: Any,
    norm: returns.NormState,
    world: WorldOut,
    batch: Mapping[str, jax.Array],
    key: jax.Array,
    *,
    config: Config,
    spec: tuple,
    num_actions: int,
) -> tuple[dict[str, jax.Array], dict[str, jax.Array], returns.NormState, jax.Array]:
    """Actor and critic losses on `imag_length`-step rollouts from every posterior state.

    Imagined states are stop-gradient: no actor-critic gradient reaches the world model.
        R = lambda-returns of (predicted reward, predicted continue, critic value)
        L_policy = -w sg((R - V) / max(1, P95 - P5)) ln pi(a) - w eta H[pi]   (eta = actent)
        L_value = w (twohot CE(v, sg R) + slowreg twohot CE(v, sg v_slow))
    with w = sg(cumprod of predicted continues). Rollouts start from the last K =
    `imag_starts` posterior states of each sequence (all of them by default), N = B K.
    Returns (losses (N, H), metrics, new return normaliser, returns R_0 per start state (B, K)
    for the replay-value loss).

    Action masking: the first state of each rollout is a real posterior state, so it uses the
    real mask; later states use the mask head's prediction thresholded at `mask_threshold`
    (an action is also allowed if it has the highest predicted probability, so at least one
    always is). Sampling and the actor's log-probabilities use the same masked distribution.
    """
    c = config
    B, T = batch["is_first"].shape
    K = imag_starts(c, T)
    N, H = B * K, c.imag_length
    bins = _bins(c)
    wm = sg(params)
    start = jax.tree.map(lambda x: sg(x[:, -K:]).reshape((N, *x.shape[2:])), world.states)
    mask_key = codec.mask_field(dict(spec))
    real_mask = None if mask_key is None else batch[mask_key][:, -K:].reshape((N, -1))

    def mask_for(feat, h):
        if nets.mask is None:
            return jnp.ones((feat.shape[0], num_actions), bool)
        prob = jax.nn.sigmoid(nets.mask.apply(wm["mask"], feat))
        pred = (prob > c.mask_threshold) | (prob >= prob.max(-1, keepdims=True))
        return jnp.where(h == 0, real_mask, pred)

    afeat_key = codec.action_features_field(dict(spec))
    if afeat_key is None:
        real_afeat = None
    else:
        real_afeat = batch[afeat_key][:, -K:].astype(jnp.float32)
        real_afeat = real_afeat.reshape((N, *real_afeat.shape[2:]))

    def afeat_for(feat, h):
        # Like the mask: real features at the real start state, predicted ones later.
        if real_afeat is None:
            return None
        pred = outs.symexp(model.predicted_action_features(nets, wm, feat, num_actions))
        return jnp.where(h == 0, real_afeat, jnp.maximum(pred, 0.0))

    def policy_fn(state, h, k):
        feat = rssm.features(state)
        mask, afeat = mask_for(feat, h), afeat_for(feat, h)
        logits = model.actor_logits(nets, wm, feat, afeat)
        logp = outs.mix_logits(logits, c.unimix, mask)
        return outs.sample_categorical(k, logp), (mask, afeat)

    def action_fn(action, extras):
        onehot = jax.nn.one_hot(action, num_actions, dtype=jnp.float32)
        afeat = extras[1]
        return model.action_input(onehot, None if afeat is None else model.chosen(afeat, action))

    # Split although the second key is unused: a seed keeps giving the same rollouts
    # (docs/DESIGN.md).
    key = jax.random.split(key)[0]
    states, actions, (masks, afeats) = rssm.imagine(
        nets.rssm, wm["rssm"], start, policy_fn, num_actions, H, key, c.unroll, action_fn
    )
    feat = sg(rssm.features(states))  # (N, H + 1, F)
    rew = outs.twohot_mean(nets.rew.apply(wm["rew"], feat), bins)
    con = jax.nn.sigmoid(nets.con.apply(wm["con"], feat)[..., 0])
    value_logits = nets.critic.apply(params["critic"], feat)
    value = sg(outs.twohot_mean(value_logits, bins))
    slow = outs.twohot_mean(nets.critic.apply(slow_critic, feat), bins)
    ret = jax.vmap(returns.lambda_return, (0, 0, 0, 0, None))(
        rew, con, value, jnp.zeros_like(con), c.lam
    )  # (N, H)
    weight = sg(jnp.cumprod(con, 1))[:, :-1]
    norm = returns.norm_update(
        norm, ret, rate=c.retnorm_rate, lo_pct=c.retnorm_lo, hi_pct=c.retnorm_hi
    )
    scale = returns.norm_scale(norm, limit=c.retnorm_limit)
    adv = sg((ret - value[:, :-1]) / scale)

    logits = model.actor_logits(nets, params, feat[:, :-1], afeats)
    logp = outs.mix_logits(logits, c.unimix, masks)
    logpi = outs.cat_logp(logp, actions)
    ent = outs.cat_entropy(logp)
    eta = jnp.asarray(c.actent, jnp.float32)
    losses = {
        "policy": weight * -(logpi * adv + eta * ent),
        "value": weight
        * (
            outs.twohot_loss(value_logits[:, :-1], sg(ret), bins)
            + c.slowreg * outs.twohot_loss(value_logits[:, :-1], sg(slow[:, :-1]), bins)
        ),
    }
    metrics = {
        "actor/entropy": ent.mean(),
        "actor/entropy_bonus": eta,
        "actor/allowed_actions": masks.sum(-1).astype(jnp.float32).mean(),
        "imag/return": ret.mean(),
        "imag/reward": rew.mean(),
        "imag/continue": con.mean(),
        "imag/value": value.mean(),
        "imag/advantage": adv.mean(),
        "imag/advantage_std": adv.std(),
        "imag/weight": weight.mean(),
        "retnorm/lo": norm.lo,
        "retnorm/hi": norm.hi,
        "retnorm/scale": scale,
    }
    return losses, metrics, norm, sg(ret[:, 0]).reshape((B, K))


def replay_value_loss(
    nets: Nets,
    params: Any,
    slow_critic: Any,
    world: WorldOut,
    batch: Mapping[str, jax.Array],
    boot: jax.Array,
    *,
    config: Config,
) -> dict[str, jax.Array]:
    """Critic trained on replayed real rewards, bootstrapped from imagination returns.

        R_t = r_{t+1} + gamma (1 - term_{t+1}) [(1 - l) R^imag_{t+1} + l R_{t+1}],
        l = lam (1 - is_last_{t+1}); loss (1 - is_last_t)(twohot CE(v_t, sg R_t) + slowreg CE)
    Gradients flow into the world model through the features (DreamerV3's repval_grad).
    Uses the last K steps, those that started imagination (`boot` is (B, K)).
    Returns {"repval": (B, K - 1)}.
    """
    c = config
    bins = _bins(c)
    K = boot.shape[1]
    feat = world.feat[:, -K:]
    slow = outs.twohot_mean(nets.critic.apply(slow_critic, sg(feat)), bins)
    ret, last = returns.replay_returns(batch, boot, c, K)
    logits = nets.critic.apply(params["critic"], feat)[:, :-1]
    weight = 1.0 - last[:, :-1]
    loss = outs.twohot_loss(logits, sg(ret), bins) + c.slowreg * outs.twohot_loss(
        logits, sg(slow[:, :-1]), bins
    )
    return {"repval": weight * loss}
