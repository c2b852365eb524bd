"""The "real" observation kind: symlog-MSE loss and the decoder's estimate on known values."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamer_jax import codec
from dreamer_jax.envs import FieldSpec

SPEC = (("x", FieldSpec((2,), "float32", "real")),)


def test_symlog_mse_on_hand_computed_values():
    # symlog(e - 1) = 1 and symlog(-(e^2 - 1)) = -2: errors (0.5 - 1)^2 and (-2 - -2)^2.
    target = jnp.array([math.e - 1, -(math.e**2 - 1)])
    pred = jnp.array([0.5, -2.0])
    np.testing.assert_allclose(codec.symlog_mse(pred, target), [0.25, 0.0], atol=1e-6)
    losses = codec.recon_losses(SPEC, {"x": pred}, {"x": target})
    np.testing.assert_allclose(losses["x"], 0.25, atol=1e-6)  # Summed over the field's cells.


def test_recon_loss_keeps_leading_axes():
    pred = jnp.zeros((3, 5, 2))
    target = jnp.full((3, 5, 2), math.e - 1)
    loss = codec.recon_losses(SPEC, {"x": pred}, {"x": target})["x"]
    assert loss.shape == (3, 5)
    np.testing.assert_allclose(loss, 2.0, atol=1e-5)  # Two cells, each (0 - 1)^2.


def test_decoder_outputs_real_fields_and_its_mean_is_symexp():
    dec = codec.Decoder(SPEC, units=8, layers=1)
    feat = jnp.ones((4, 6))
    params = dec.init(jax.random.key(0), feat)
    out = dec.apply(params, feat)
    assert out["x"].shape == (4, 2)
    mean = codec.decoded_mean(SPEC, {"x": jnp.array([1.0, -2.0])})["x"]
    np.testing.assert_allclose(mean, [math.e - 1, -(math.e**2 - 1)], rtol=1e-6)


def test_the_loss_is_minimised_at_the_symlog_of_the_target():
    target = jnp.array([1000.0, -0.3])
    grad = jax.grad(lambda p: codec.symlog_mse(p, target).sum())
    best = jnp.sign(target) * jnp.log1p(jnp.abs(target))
    np.testing.assert_allclose(grad(best), 0.0, atol=1e-6)


def test_encoder_accepts_real_fields_of_any_range():
    enc = codec.Encoder(SPEC, units=8, layers=1)
    obs = {"x": jnp.array([[1e6, -1e6]])}
    params = enc.init(jax.random.key(0), obs)
    assert np.isfinite(np.asarray(enc.apply(params, obs))).all()


def test_unknown_kind_is_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"obs_spec\['x'\].kind: got 'float'"):
        codec.check_spec({"x": FieldSpec((2,), "float32", "float")})
