"""Output distributions as pure functions: symlog, twohot, categoricals with unimix, Bernoulli.

All functions act on the last axis and broadcast over leading (batch, time) axes; inputs are
cast to float32 so the losses stay exact under bf16 compute.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

sg = jax.lax.stop_gradient
MASKED_LOGIT = -1e9  # Finite, so that 0 * logit stays 0 in entropies and KLs.


def symlog(x: jax.Array) -> jax.Array:
    """symlog(x) = sign(x) log(1 + |x|) (Hafner et al. 2023, eq. 9)."""
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def symexp(x: jax.Array) -> jax.Array:
    """Inverse of `symlog`: sign(x) (exp(|x|) - 1)."""
    return jnp.sign(x) * jnp.expm1(jnp.abs(x))


def twohot_bins(num_bins: int = 255, limit: float = 20.0) -> jax.Array:
    """`num_bins` (odd) bins at symexp(linspace(-limit, limit)), exactly antisymmetric at 0.

    The negative half is computed once and mirrored, so bins[k] == -bins[-1 - k] bit for bit
    and the middle bin is exactly 0.
    """
    if num_bins % 2 != 1 or num_bins < 3:
        raise ValueError(f"num_bins must be odd and >= 3, got {num_bins}")
    x = np.linspace(-limit, 0.0, (num_bins - 1) // 2 + 1, dtype=np.float64)
    half = (np.sign(x) * np.expm1(np.abs(x))).astype(np.float32)  # Computed once, host side.
    return jnp.asarray(np.concatenate([half, -half[:-1][::-1]]), jnp.float32)


def twohot_encode(x: jax.Array, bins: jax.Array) -> jax.Array:
    """Two-hot weights over `bins` whose expectation is x (clipped to the bin range)."""
    x = jnp.clip(x.astype(jnp.float32), bins[0], bins[-1])
    n = bins.shape[0]
    above = jnp.clip(jnp.searchsorted(bins, x, side="right", method="compare_all"), 1, n - 1)
    below = above - 1
    lo, hi = bins[below], bins[above]
    w_hi = jnp.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return (
        jax.nn.one_hot(below, n) * (1.0 - w_hi)[..., None]
        + jax.nn.one_hot(above, n) * w_hi[..., None]
    )


def twohot_mean(logits: jax.Array, bins: jax.Array) -> jax.Array:
    """Expected value of softmax(logits) over `bins`.

    Sums the two halves mirrored (inner bins first), so uniform probabilities give exactly 0,
    which a left-to-right sum over 255 huge bins would not.
    """
    probs = jax.nn.softmax(logits.astype(jnp.float32), -1)
    m = (bins.shape[0] - 1) // 2
    lo = (probs[..., :m] * bins[:m])[..., ::-1]
    hi = probs[..., m + 1 :] * bins[m + 1 :]
    return (lo + hi).sum(-1) + probs[..., m] * bins[m]


def twohot_loss(logits: jax.Array, target: jax.Array, bins: jax.Array) -> jax.Array:
    """Cross-entropy between softmax(logits) and the two-hot encoding of sg(target)."""
    weights = twohot_encode(sg(target), bins)
    return -(weights * jax.nn.log_softmax(logits.astype(jnp.float32), -1)).sum(-1)


def mix_logits(logits: jax.Array, unimix: float, mask: jax.Array | None = None) -> jax.Array:
    """Log-probabilities of (1 - unimix) softmax(logits) + unimix uniform, over allowed entries.

    With a `mask`, disallowed entries get probability exactly 0 (log-prob MASKED_LOGIT) and the
    uniform part spreads over the allowed entries only. A row with no allowed entry is treated
    as all allowed, so the distribution is always proper.
    """
    logits = logits.astype(jnp.float32)
    if mask is None:
        mask = jnp.ones(logits.shape, bool)
    mask = mask | ~mask.any(-1, keepdims=True)
    logits = jnp.where(mask, logits, MASKED_LOGIT)
    if not unimix:
        return jax.nn.log_softmax(logits, -1)
    probs = jax.nn.softmax(logits, -1)
    uniform = mask / mask.sum(-1, keepdims=True)
    probs = (1.0 - unimix) * probs + unimix * uniform
    # Double where: log(0) would give NaN gradients even where it is not selected.
    return jnp.where(mask, jnp.log(jnp.where(mask, probs, 1.0)), MASKED_LOGIT)


def cat_entropy(logp: jax.Array) -> jax.Array:
    """Entropy of a categorical given normalised log-probabilities."""
    return -(jnp.exp(logp) * logp).sum(-1)


def cat_kl(logp: jax.Array, logq: jax.Array) -> jax.Array:
    """KL(p || q) for normalised log-probabilities."""
    return (jnp.exp(logp) * (logp - logq)).sum(-1)


def cat_logp(logp: jax.Array, index: jax.Array) -> jax.Array:
    """log p(index) for normalised log-probabilities."""
    return jnp.take_along_axis(logp, index[..., None].astype(jnp.int32), -1)[..., 0]


def sample_categorical(key: jax.Array, logp: jax.Array) -> jax.Array:
    """Index sample from log-probabilities by inverting the CDF with one uniform per draw.

    Gumbel-max (jax.random.categorical) draws one random number per class; on CPU random bits
    dominate imagination, so this draws one per categorical. Entries of probability 0 are never
    returned: they add nothing to the CDF, and a round-up past the end is clamped to the last
    entry with positive probability.
    """
    probs = jnp.exp(logp.astype(jnp.float32))
    cdf = jnp.cumsum(probs, -1)
    u = jax.random.uniform(key, logp.shape[:-1]) * cdf[..., -1]
    index = (cdf <= u[..., None]).sum(-1)
    positive = jnp.arange(logp.shape[-1]) * (probs > 0)
    return jnp.minimum(index, positive.max(-1)).astype(jnp.int32)


def onehot_straight_through(key: jax.Array, logp: jax.Array) -> jax.Array:
    """One-hot sample whose gradient is that of the probabilities (straight-through)."""
    index = sample_categorical(key, logp)
    probs = jnp.exp(logp)
    onehot = jax.nn.one_hot(index, logp.shape[-1], dtype=jnp.float32)
    return sg(onehot) + probs - sg(probs)


def bernoulli_logp(logit: jax.Array, target: jax.Array) -> jax.Array:
    """log p(target) of a Bernoulli with the given logit, elementwise; soft targets allowed."""
    logit = logit.astype(jnp.float32)
    if target.dtype == jnp.bool_:  # One log-sigmoid instead of two.
        return jax.nn.log_sigmoid(jnp.where(target, logit, -logit))
    target = target.astype(jnp.float32)
    return target * jax.nn.log_sigmoid(logit) + (1.0 - target) * jax.nn.log_sigmoid(-logit)
