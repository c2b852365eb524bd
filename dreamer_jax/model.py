"""The agent's networks as one static container, and their parameter initialisation.

Parameters are a plain dict {name: flax params} with one entry per network, so each network is
applied on its own (`nets.rssm.apply(params["rssm"], ...)`) and the scans in `rssm.py` stay
plain `jax.lax.scan`s over pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from dreamer_jax import codec, outs, qhead, rssm
from dreamer_jax.configs import Config


class Nets(NamedTuple):
    """Flax module definitions (static; hold no parameters)."""

    enc: codec.Encoder
    dec: codec.Decoder
    rssm: rssm.RSSM
    rew: codec.Head  # Twohot logits of the reward received on arriving at a state.
    con: codec.Head  # Bernoulli logit of (1 - is_terminal)(1 - 1/horizon).
    mask: codec.Head | None  # Bernoulli logits of the action mask (None without a mask field).
    actor: codec.Head  # Action logits.
    critic: codec.Head  # Twohot logits of the lambda-return.
    # With an action-features field (A, F) only, else None:
    afeat: codec.Head | None = None  # symlog of the action features, (A * F), for imagination.
    scorer: codec.ActionScorer | None = None  # Per-action logits added to the actor's.
    # With `qhead` only: the Q head (`qhead.network`), twohot Q(s, a) logits, (A, bins).
    qnet: codec.ActionScorer | None = None


def spec_tuple(obs_spec: Mapping[str, Any]) -> tuple:
    """Hashable, sorted form of an observation spec."""
    codec.check_spec(obs_spec)
    return tuple(sorted((k, v) for k, v in obs_spec.items()))


def build_nets(config: Config, obs_spec: Mapping[str, Any], num_actions: int) -> Nets:
    """Network definitions for the given config, observation spec and action count."""
    if not isinstance(num_actions, int) or num_actions < 2:
        raise ValueError(f"num_actions: got {num_actions!r}; need an integer >= 2")
    spec = spec_tuple(obs_spec)
    c = config
    dt = jnp.bfloat16 if c.compute_dtype == "bfloat16" else jnp.float32

    def head(layers, size, outscale=1.0):
        return codec.Head(layers, c.units, size, outscale, dtype=dt)

    has_mask = codec.mask_field(obs_spec) is not None
    afeat_key = codec.action_features_field(obs_spec)
    afeat_size = 0 if afeat_key is None else math.prod(obs_spec[afeat_key].shape)
    if afeat_key is not None and obs_spec[afeat_key].shape[0] != num_actions:
        raise ValueError(
            f"obs_spec[{afeat_key!r}].shape: got {obs_spec[afeat_key].shape}; the "
            f"first axis must be num_actions={num_actions}"
        )
    return Nets(
        enc=codec.Encoder(spec, c.units, c.enc_layers, c.conv_depth, c.conv_layers, dtype=dt),
        dec=codec.Decoder(spec, c.units, c.dec_layers, dtype=dt),
        rssm=rssm.RSSM(
            c.deter,
            c.hidden,
            c.stoch,
            c.classes,
            c.blocks,
            c.prior_layers,
            c.post_layers,
            c.unimix,
            dtype=dt,
        ),
        rew=head(c.rew_layers, c.bins, 0.0),
        con=head(c.con_layers, 1),
        mask=head(1, num_actions) if has_mask else None,
        actor=head(c.actor_layers, num_actions, c.actor_outscale),
        critic=head(c.critic_layers, c.bins, 0.0),
        afeat=head(1, afeat_size) if afeat_key else None,
        scorer=codec.ActionScorer(c.actor_layers, c.units, c.actor_outscale, dtype=dt)
        if afeat_key
        else None,
        qnet=qhead.network(c, obs_spec, dt),
    )


def action_features_dim(obs_spec: Mapping[str, Any]) -> int:
    """F of the action-features field (A, F), 0 without one."""
    key = codec.action_features_field(obs_spec)
    return 0 if key is None else obs_spec[key].shape[1]


def action_input(onehot: jax.Array, chosen: jax.Array | None) -> jax.Array:
    """The RSSM's action input: the one-hot action, and with action features the chosen
    action's features as symlog / 8, (..., A + F).

    The GRU bounds action inputs to [-1, 1] elementwise (for continuous actions); symlog / 8
    stays inside for |features| < e^8, so distinct feature values stay distinct.
    """
    if chosen is None or chosen.shape[-1] == 0:
        return onehot
    return jnp.concatenate([onehot, outs.symlog(chosen.astype(jnp.float32)) / 8.0], -1)


_DUMMY_DTYPES = {"categorical": jnp.int32, "action_features": jnp.float32}


def dummy_obs(obs_spec: Mapping[str, Any], batch: int) -> dict[str, jax.Array]:
    """All-zero observations (batch, ...) matching the spec."""
    return {
        k: jnp.zeros((batch, *s.shape), _DUMMY_DTYPES.get(s.kind, bool))
        for k, s in obs_spec.items()
    }


def init_params(
    key: jax.Array, nets: Nets, config: Config, obs_spec: Mapping[str, Any], num_actions: int
) -> dict[str, Any]:
    """Fresh float32 parameters of every network."""
    # The eight core networks take keys from one split, the optional ones by fold_in: adding an
    # optional network leaves the others' initialisation unchanged.
    names = Nets._fields[:8]
    keys = dict(zip(names, jax.random.split(key, len(names)), strict=True))
    keys.update({n: jax.random.fold_in(key, i) for i, n in enumerate(Nets._fields[8:])})
    obs = dummy_obs(obs_spec, 1)
    embed_params = nets.enc.init(keys["enc"], obs)
    embed = nets.enc.apply(embed_params, obs)
    state = rssm.initial_state(1, config.deter, config.stoch, config.classes)
    action = jnp.zeros((1, num_actions + action_features_dim(obs_spec)), jnp.float32)
    reset = jnp.ones((1,), bool)
    params = {
        "enc": embed_params,
        "rssm": nets.rssm.init(keys["rssm"], state, action, embed, reset, keys["rssm"]),
    }
    feat = rssm.features(state)
    for name in ("dec", "rew", "con", "mask", "actor", "critic", "afeat"):
        module = getattr(nets, name)
        if module is not None:
            params[name] = module.init(keys[name], feat)
    for name in ("scorer", "qnet"):
        module = getattr(nets, name)
        if module is not None:
            afeat = obs[codec.action_features_field(obs_spec)].astype(jnp.float32)
            params[name] = module.init(keys[name], feat, afeat)
    return jax.tree.map(lambda x: x.astype(jnp.float32), params)


def chosen(afeat: jax.Array, action: jax.Array) -> jax.Array:
    """The features of the chosen action: afeat (..., A, F), action (...) int -> (..., F)."""
    return jnp.take_along_axis(afeat, action[..., None, None], -2)[..., 0, :]


def actor_logits(nets: Nets, params: Any, feat: jax.Array, afeat: jax.Array | None) -> jax.Array:
    """Unmasked action logits: the actor head on the latent, plus with action features (raw
    values, (..., A, F)) the per-action scorer."""
    logits = nets.actor.apply(params["actor"], feat)
    if nets.scorer is not None:
        logits = logits + nets.scorer.apply(params["scorer"], feat, afeat.astype(jnp.float32))
    return logits


def predicted_action_features(
    nets: Nets, params: Any, feat: jax.Array, num_actions: int
) -> jax.Array:
    """The afeat head's prediction of the action features in symlog space, (..., A, F)."""
    pred = nets.afeat.apply(params["afeat"], feat)
    return pred.reshape((*feat.shape[:-1], num_actions, -1))
