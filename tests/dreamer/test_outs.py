"""Hand-checkable maths of the output distributions: symlog, twohot, masked categoricals."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dreamer_jax import outs

BINS = outs.twohot_bins(255)


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False, width=32))
def test_symexp_inverts_symlog(x):
    x = np.float32(x)
    np.testing.assert_allclose(outs.symexp(outs.symlog(x)), x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs.symlog(outs.symexp(outs.symlog(x))), outs.symlog(x), rtol=1e-5)


def test_symlog_values():
    x = jnp.array([-np.e + 1, -1.0, 0.0, 1.0, np.e - 1])
    np.testing.assert_allclose(outs.symlog(x), [-1, -np.log(2), 0, np.log(2), 1], rtol=1e-6)


def test_bins_exactly_symmetric_at_zero():
    bins = np.asarray(BINS)
    assert bins.shape == (255,) and bins[127] == 0.0
    np.testing.assert_array_equal(bins, -bins[::-1])
    assert np.all(np.diff(bins) > 0)
    np.testing.assert_allclose(bins[-1], np.expm1(20.0), rtol=1e-6)


def test_uniform_and_zero_logits_decode_to_exactly_zero():
    assert float(outs.twohot_mean(jnp.zeros(255), BINS)) == 0.0
    logits = jax.random.normal(jax.random.key(0), (255,))
    sym = jnp.concatenate([logits[:127], logits[127:128], logits[:127][::-1]])
    assert float(outs.twohot_mean(sym, BINS)) == 0.0


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e4, 1e4, allow_nan=False, width=32))
def test_twohot_round_trip(x):
    weights = outs.twohot_encode(jnp.float32(x), BINS)
    assert int((weights > 0).sum()) <= 2
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-6)
    decoded = (weights * BINS).sum()
    np.testing.assert_allclose(decoded, x, rtol=1e-5, atol=1e-5)
    # The logits log(weights) decode through the symmetric sum to the same value.
    logits = jnp.log(jnp.maximum(weights, 1e-30))
    np.testing.assert_allclose(outs.twohot_mean(logits, BINS), x, rtol=1e-4, atol=1e-4)


def test_twohot_hand_example():
    bins = jnp.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(outs.twohot_encode(jnp.float32(0.25), bins), [0, 0, 0.75, 0.25, 0])
    np.testing.assert_allclose(outs.twohot_encode(jnp.float32(-5.0), bins), [1, 0, 0, 0, 0])
    np.testing.assert_allclose(outs.twohot_encode(jnp.float32(2.0), bins), [0, 0, 0, 0, 1])


def test_twohot_loss_is_minimised_by_target_logits():
    target = jnp.float32(3.7)
    best = jnp.log(jnp.maximum(outs.twohot_encode(target, BINS), 1e-30))
    other = jnp.zeros(255)
    assert outs.twohot_loss(best, target, BINS) < outs.twohot_loss(other, target, BINS)
    grad = jax.grad(lambda z: outs.twohot_loss(z, target, BINS))(other)
    assert jnp.all(jnp.isfinite(grad))


def test_mix_logits_masks_exactly_and_mixes_over_allowed():
    logits = jnp.array([[5.0, 0.0, -3.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    mask = jnp.array([[False, True, True, False], [False, False, False, False]])
    logp = outs.mix_logits(logits, 0.01, mask)
    probs = jnp.exp(logp)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    assert float(probs[0, 0]) == 0.0 and float(probs[0, 3]) == 0.0
    assert float(probs[0, 2]) >= 0.01 / 2  # The uniform part covers allowed actions only.
    np.testing.assert_allclose(probs[1], 0.25, rtol=1e-6)  # No allowed action: all allowed.
    grads = jax.grad(lambda z: (outs.mix_logits(z, 0.01, mask) * jnp.exp(logp)).sum())(logits)
    assert jnp.all(jnp.isfinite(grads))
    ent = outs.cat_entropy(logp)
    assert jnp.all(jnp.isfinite(ent)) and float(ent[0]) <= np.log(2) + 1e-6


def test_kl_and_entropy_hand_values():
    p = jnp.log(jnp.array([0.5, 0.5]))
    q = jnp.log(jnp.array([0.25, 0.75]))
    expected = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    np.testing.assert_allclose(outs.cat_kl(p, q), expected, rtol=1e-6)
    np.testing.assert_allclose(outs.cat_entropy(p), np.log(2), rtol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_sample_categorical_matches_probs_and_skips_zero(jit):
    probs = jnp.array([0.0, 0.2, 0.0, 0.5, 0.3, 0.0])
    logp = jnp.where(probs > 0, jnp.log(jnp.where(probs > 0, probs, 1.0)), outs.MASKED_LOGIT)
    logp = jnp.broadcast_to(logp, (20000, 6))
    fn = jax.jit(outs.sample_categorical) if jit else outs.sample_categorical
    draws = np.asarray(fn(jax.random.key(1), logp))
    counts = np.bincount(draws, minlength=6) / draws.size
    assert counts[0] == counts[2] == counts[5] == 0.0
    np.testing.assert_allclose(counts, probs, atol=0.015)


def test_sample_categorical_never_returns_zero_prob_at_the_end():
    # u * total rounding up to total must not select trailing zero-probability entries.
    logp = jnp.log(jnp.array([[1.0, 1e-30, 0.0]]))
    logp = jnp.where(jnp.isfinite(logp), logp, outs.MASKED_LOGIT)
    draws = outs.sample_categorical(jax.random.key(0), jnp.broadcast_to(logp, (5000, 3)))
    assert int(draws.max()) <= 1


def test_straight_through_sample_is_onehot_with_prob_gradient():
    logits = jnp.array([[0.3, -0.2, 1.0]])

    def f(z):
        logp = jax.nn.log_softmax(z)
        return (outs.onehot_straight_through(jax.random.key(3), logp) * jnp.arange(3.0)).sum()

    sample = outs.onehot_straight_through(jax.random.key(3), jax.nn.log_softmax(logits))
    chex.assert_trees_all_close(sample.sum(), 1.0)
    assert set(np.unique(np.asarray(sample))) <= {0.0, 1.0}
    expected = jax.grad(lambda z: (jax.nn.softmax(z) * jnp.arange(3.0)).sum())(logits)
    chex.assert_trees_all_close(jax.grad(f)(logits), expected, atol=1e-6)


def test_bernoulli_logp_hard_and_soft_agree():
    logit = jnp.array([-2.0, 0.0, 3.0])
    hard = outs.bernoulli_logp(logit, jnp.array([True, False, True]))
    soft = outs.bernoulli_logp(logit, jnp.array([1.0, 0.0, 1.0]))
    np.testing.assert_allclose(hard, soft, rtol=1e-6)
    np.testing.assert_allclose(hard[1], np.log(0.5), rtol=1e-6)
