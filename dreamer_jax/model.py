"""The agent's networks as one static container, and their parameter initialisation.

Parameters are a plain dict {name: flax params} with one entry per network, so each network is
applied on its own (`nets.rssm.apply(params["rssm"], ...)`) and the scans in `rssm.py` stay
plain `jax.lax.scan`s over pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from dreamer_jax import codec, rssm
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
        ),  # fmt: skip
        rew=head(c.rew_layers, c.bins, 0.0),
        con=head(c.con_layers, 1),
        mask=head(1, num_actions) if has_mask else None,
        actor=head(c.actor_layers, num_actions, c.actor_outscale),
        critic=head(c.critic_layers, c.bins, 0.0),
    )


def dummy_obs(obs_spec: Mapping[str, Any], batch: int) -> dict[str, jax.Array]:
    """All-zero observations (batch, ...) matching the spec."""
    return {
        k: jnp.zeros((batch, *s.shape), jnp.int32 if s.kind == "categorical" else bool)
        for k, s in obs_spec.items()
    }


def init_params(
    key: jax.Array, nets: Nets, config: Config, obs_spec: Mapping[str, Any], num_actions: int
) -> dict[str, Any]:
    """Fresh float32 parameters of every network."""
    keys = dict(zip(Nets._fields, jax.random.split(key, len(Nets._fields)), strict=True))
    obs = dummy_obs(obs_spec, 1)
    embed_params = nets.enc.init(keys["enc"], obs)
    embed = nets.enc.apply(embed_params, obs)
    state = rssm.initial_state(1, config.deter, config.stoch, config.classes)
    action = jnp.zeros((1, num_actions), jnp.float32)
    reset = jnp.ones((1,), bool)
    params = {
        "enc": embed_params,
        "rssm": nets.rssm.init(keys["rssm"], state, action, embed, reset, keys["rssm"]),
    }
    feat = rssm.features(state)
    for name in ("dec", "rew", "con", "mask", "actor", "critic"):
        module = getattr(nets, name)
        if module is not None:
            params[name] = module.init(keys[name], feat)
    return jax.tree.map(lambda x: x.astype(jnp.float32), params)
