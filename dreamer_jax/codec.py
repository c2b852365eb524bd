"""Encoder and decoder for structured observations, plus the MLP heads.

Observations are dicts of arrays described by a spec `{name: FieldSpec}` (see
`dreamer_jax.envs.FieldSpec`): kind "binary" (0/1 cells), "categorical" (ints in
[0, num_classes)), "real" (floats of any range), "mask" (the bool action mask) or
"action_features" (below). Any leading (batch, time) axes are allowed.

Encoder: every field becomes a flat float vector (binary and mask fields as 0/1, categorical
fields one-hot), symlog-squashed as in DreamerV3, concatenated and fed to an MLP. Optionally
(`conv_depth > 0`) the 2-D binary planes (board, active) are also stacked as channels and
passed through a few 3x3 convolutions with stride 1 and no pooling: a 20x10 board is too small
for DreamerV3's 4x-pooled CNN, while local 3x3 features (holes, wells, surface bumps) are
translation-equivariant and cheap. The flat MLP path stays, because absolute position matters
in Tetris (the height of the stack). `tiny` and `1m` use the MLP only; `12m`/`50m` add the conv.

Decoder: an MLP from the latent features, then per field a linear layer giving per-cell
Bernoulli logits for binary fields, class logits for categorical fields and, for real fields,
the prediction in symlog space, trained by symlog-MSE as in DreamerV3 (`symlog_mse`; its
observation estimate is `decoded_mean`). Mask and
action-features fields are not decoded here: each gets its own head in the agent (`mask`,
`afeat`), used in imagination.

Action features ((num_actions, F) reals, e.g. the afterstate of every Tetris placement) are
encoded like any field (symlog of the raw values) and also enter action selection
(`ActionScorer`) and the RSSM's action input (the chosen action's features).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dreamer_jax import nets, outs

KINDS = ("binary", "categorical", "real", "mask", "action_features")


def check_spec(obs_spec: Mapping[str, Any]) -> None:
    """Raise ValueError naming the field if an observation spec entry is unusable."""
    if not obs_spec:
        raise ValueError("obs_spec: empty; need at least one observation field")
    for name, spec in obs_spec.items():
        if spec.kind not in KINDS:
            raise ValueError(f"obs_spec[{name!r}].kind: got {spec.kind!r}; allowed: {KINDS}")
        if spec.kind == "categorical" and spec.num_classes < 2:
            raise ValueError(f"obs_spec[{name!r}].num_classes: got {spec.num_classes}; need >= 2")
    for kind in ("mask", "action_features"):
        names = [k for k, s in obs_spec.items() if s.kind == kind]
        if len(names) > 1:
            raise ValueError(f"obs_spec: at most one field of kind {kind!r}, got {names}")
    for name, spec in obs_spec.items():
        if spec.kind == "action_features" and len(spec.shape) != 2:
            raise ValueError(
                f"obs_spec[{name!r}].shape: got {spec.shape}; an action_features "
                "field is (num_actions, features)"
            )


def mask_field(obs_spec: Mapping[str, Any]) -> str | None:
    """Name of the action-mask field, or None."""
    return next((k for k, s in obs_spec.items() if s.kind == "mask"), None)


def action_features_field(obs_spec: Mapping[str, Any]) -> str | None:
    """Name of the per-action features field (kind "action_features"), or None."""
    return next((k for k, s in obs_spec.items() if s.kind == "action_features"), None)


def _flat_input(x: jax.Array, spec: Any) -> jax.Array:
    lead = x.shape[: x.ndim - len(spec.shape)]
    assert x.shape[len(lead) :] == tuple(spec.shape), (x.shape, spec)
    if spec.kind == "categorical":
        x = jax.nn.one_hot(x, spec.num_classes, dtype=jnp.float32)
    return x.astype(jnp.float32).reshape((*lead, -1))


class Encoder(nn.Module):
    """Observation dict -> embedding (..., units)."""

    spec: tuple  # Sorted (name, FieldSpec) pairs.
    units: int
    layers: int
    conv_depth: int = 0
    conv_layers: int = 2
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, obs: Mapping[str, jax.Array]) -> jax.Array:
        parts = [_flat_input(obs[k], s) for k, s in self.spec]
        x = outs.symlog(jnp.concatenate(parts, -1))
        planes = [k for k, s in self.spec if s.kind == "binary" and len(s.shape) == 2]
        if self.conv_depth and planes:
            shape = dict(self.spec)[planes[0]].shape
            planes = [k for k in planes if dict(self.spec)[k].shape == shape]
            img = jnp.stack([obs[k].astype(self.dtype) for k in planes], -1)
            lead = img.shape[:-3]
            img = img.reshape((-1, *img.shape[-3:]))
            for _ in range(self.conv_layers):
                img = nn.Conv(
                    self.conv_depth,
                    (3, 3),
                    padding="SAME",
                    dtype=self.dtype,
                    kernel_init=nets.trunc_normal_init(),
                )(img)
                img = nn.silu(nets.RMSNorm()(img))
            x = jnp.concatenate([x.astype(self.dtype), img.reshape((*lead, -1))], -1)
        return nets.MLP(self.layers, self.units, dtype=self.dtype)(x)


class Decoder(nn.Module):
    """Latent features -> {field: output} for every binary, categorical and real field.

    Binary fields give logits of the field's shape; categorical ones (*shape, num_classes);
    real ones the symlog-space prediction of the field's shape.
    """

    spec: tuple
    units: int
    layers: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, feat: jax.Array) -> dict[str, jax.Array]:
        x = nets.MLP(self.layers, self.units, dtype=self.dtype)(feat)
        lead = feat.shape[:-1]
        logits = {}
        for name, spec in self.spec:
            if spec.kind in ("mask", "action_features"):
                continue  # Predicted by their own heads (`mask`, `afeat` in the agent).
            classes = (spec.num_classes,) if spec.kind == "categorical" else ()
            size = math.prod(spec.shape) * math.prod(classes)
            y = nets.Linear(size, dtype=self.dtype, name=f"out_{name}")(x)
            logits[name] = y.astype(jnp.float32).reshape((*lead, *spec.shape, *classes))
        return logits


def recon_losses(
    spec: tuple, logits: Mapping[str, jax.Array], obs: Mapping[str, jax.Array]
) -> dict[str, jax.Array]:
    """Negative log-likelihood per decoded field, summed over the field's cells: (...); for a
    real field the symlog squared error (`symlog_mse`), DreamerV3's loss for continuous keys."""
    losses = {}
    for name, s in spec:
        if name not in logits:
            continue
        target = obs[name]
        axes = tuple(range(-len(s.shape), 0))
        if s.kind == "categorical":
            logp = outs.cat_logp(jax.nn.log_softmax(logits[name], -1), target)
        elif s.kind == "real":
            logp = -symlog_mse(logits[name], target)
        else:
            logp = outs.bernoulli_logp(logits[name], target)
        losses[name] = -logp.sum(axes) if axes else -logp
    return losses


def symlog_mse(pred: jax.Array, target: jax.Array) -> jax.Array:
    """(pred - symlog(target))^2 per cell: DreamerV3's reconstruction loss of a continuous
    field (Hafner et al. 2023, eq. 1-2), `pred` being in symlog space."""
    return jnp.square(pred.astype(jnp.float32) - outs.symlog(target.astype(jnp.float32)))


def decoded_mean(spec: tuple, outputs: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """The decoder's estimate of each field: the cell probabilities of a binary field, the
    most likely class of a categorical one, symexp(prediction) of a real one."""
    kinds = dict(spec)
    out = {}
    for name, y in outputs.items():
        kind = kinds[name].kind
        if kind == "categorical":
            out[name] = jnp.argmax(y, -1).astype(jnp.int32)
        elif kind == "real":
            out[name] = outs.symexp(y)
        else:
            out[name] = jax.nn.sigmoid(y)
    return out


class Head(nn.Module):
    """MLP trunk and a linear output of `size` units (`outscale` 0 gives a zero-init output)."""

    layers: int
    units: int
    size: int
    outscale: float = 1.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        x = nets.MLP(self.layers, self.units, dtype=self.dtype)(feat)
        return nets.Linear(self.size, self.outscale, dtype=self.dtype)(x).astype(jnp.float32)


class ActionScorer(nn.Module):
    """Per-action logits from each action's features and the latent: (..., A).

    Every action a gets the same MLP on Linear(symlog(features[a])) + Linear(latent), so
    the actor can rank actions by what they lead to (a learned afterstate evaluation, as in
    feature-based Tetris agents) however many actions there are.
    """

    layers: int
    units: int
    outscale: float = 1.0
    dtype: Any = jnp.float32
    size: int = 0  # Outputs per action: 0 = one logit, (..., A); else (..., A, size).

    @nn.compact
    def __call__(self, feat: jax.Array, afeat: jax.Array) -> jax.Array:
        ctx = nets.Linear(self.units, dtype=self.dtype, name="ctx")(feat)
        x = nets.Linear(self.units, dtype=self.dtype, name="act")(outs.symlog(afeat))
        x = nn.silu(nets.RMSNorm()(x + ctx[..., None, :]))
        x = nets.MLP(self.layers - 1, self.units, dtype=self.dtype)(x)
        out = nets.Linear(max(self.size, 1), self.outscale, dtype=self.dtype)(x)
        return (out if self.size else out[..., 0]).astype(jnp.float32)
