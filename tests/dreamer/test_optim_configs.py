"""Optimizer chain against hand-computed steps; config validation names the bad field."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dreamer_jax import configs, losses, outs
from dreamer_jax.optim import clip_by_agc, make_optimizer, scale_by_momentum, scale_by_rms


def test_agc_clips_per_tensor_relative_to_param_norm():
    params = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([1e-6, 0.0])}
    grads = {"a": jnp.array([30.0, 40.0]), "b": jnp.array([0.0, 1.0])}
    out, _ = clip_by_agc(0.3).update(grads, clip_by_agc(0.3).init(params), params)
    np.testing.assert_allclose(jnp.linalg.norm(out["a"]), 0.3 * 5.0, rtol=1e-6)
    np.testing.assert_allclose(out["a"] / jnp.linalg.norm(out["a"]), [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(jnp.linalg.norm(out["b"]), 0.3 * 1e-3, rtol=1e-5)  # pmin floor.
    small = {"a": jnp.array([0.1, 0.0]), "b": jnp.array([0.0, 1e-5])}
    out, _ = clip_by_agc(0.3).update(small, (), params)
    np.testing.assert_allclose(out["a"], small["a"])  # Below the limit: unchanged.


def test_rms_then_momentum_hand_computed():
    params = {"w": jnp.zeros(2)}
    g1, g2 = jnp.array([2.0, -0.5]), jnp.array([1.0, 1.0])
    chain = optax.chain(scale_by_rms(0.999, 1e-20), scale_by_momentum(0.9))
    state = chain.init(params)
    u1, state = chain.update({"w": g1}, state, params)
    np.testing.assert_allclose(u1["w"], jnp.sign(g1), rtol=1e-5)  # Bias-corrected: g/|g|.
    u2, _ = chain.update({"w": g2}, state, params)
    nu = 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    n2 = g2 / jnp.sqrt(nu / (1 - 0.999**2))
    mu = 0.9 * 0.1 * jnp.sign(g1) + 0.1 * n2
    np.testing.assert_allclose(u2["w"], mu / (1 - 0.9**2), rtol=1e-4)


def test_warmup_starts_at_zero_and_reaches_lr():
    opt = make_optimizer(lr=1e-2, warmup=10, agc=0.0)
    params = {"w": jnp.ones(3)}
    state = opt.init(params)
    grads = {"w": jnp.ones(3)}
    steps = []
    for _ in range(12):
        upd, state = opt.update(grads, state, params)
        steps.append(float(-upd["w"][0]))
    assert steps[0] == 0.0 and steps[5] == pytest.approx(5e-3, rel=1e-4)
    assert steps[11] == pytest.approx(1e-2, rel=1e-4)


def test_free_bits_clamp_value_and_gradient():
    key = jax.random.key(0)
    post = jax.nn.log_softmax(jax.random.normal(key, (5, 32, 4)) * 0.01)
    prior = jax.nn.log_softmax(jax.random.normal(jax.random.key(1), (5, 32, 4)) * 0.01)
    terms, dyn, rep = losses.kl_losses(post, prior, 1.0)
    assert float(dyn.max()) < 1.0  # Nearly equal distributions: tiny KL.
    np.testing.assert_allclose(terms["dyn"], 1.0)
    np.testing.assert_allclose(terms["rep"], 1.0)
    grad = jax.grad(lambda p: losses.kl_losses(p, prior, 1.0)[0]["rep"].sum())(post)
    assert float(jnp.abs(grad).max()) == 0.0  # Clamped: no gradient.
    far = jax.nn.log_softmax(jax.random.normal(key, (5, 32, 4)) * 5.0)
    terms, dyn, _ = losses.kl_losses(far, prior, 1.0)
    np.testing.assert_allclose(terms["dyn"], dyn)
    assert float(dyn.min()) > 1.0
    # dyn trains only the prior, rep only the posterior.
    g_post = jax.grad(lambda p: losses.kl_losses(p, prior, 1.0)[0]["dyn"].sum())(far)
    assert float(jnp.abs(g_post).max()) == 0.0
    np.testing.assert_allclose(dyn, outs.cat_kl(far, prior).sum(-1), rtol=1e-6)


@pytest.mark.parametrize("preset", configs.PRESETS)
def test_presets_validate(preset):
    config = configs.get_config(preset)
    assert config.preset == preset and config.deter % config.blocks == 0


def test_reference_sizes():
    c = configs.get_config("12m")
    assert (c.deter, c.hidden, c.stoch, c.classes, c.units) == (2048, 256, 32, 16, 256)
    c = configs.get_config("50m")
    assert (c.deter, c.hidden, c.classes, c.units) == (4096, 512, 32, 512)
    c = configs.get_config("1m")
    assert (c.deter, c.hidden, c.classes, c.units) == (512, 64, 4, 64)
    assert (c.lr, c.agc, c.eps, c.horizon, c.lam, c.imag_length) == (
        4e-5,
        0.3,
        1e-20,
        333,
        0.95,
        15,
    )


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(preset="huge"), "preset"),
        (dict(batch_length=1), "batch_length"),
        (dict(compute_dtype="float16"), "compute_dtype"),
        (dict(blocks=3), "blocks"),
        (dict(bins=254), "bins"),
        (dict(batch_size=0), "batch_size"),
        (dict(lam=1.5), "lam"),
        (dict(imag_last=1), "imag_last"),
        (dict(retnorm_lo=99.0), "retnorm_lo"),
        (dict(lr=0.0), "lr"),
        (dict(deterr=12), "deterr"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    preset = kwargs.pop("preset", "tiny")
    with pytest.raises(configs.ConfigError, match=rf"^{field}: "):
        configs.get_config(preset, **kwargs)


def test_replace_and_direct_construction_validate():
    c = configs.get_config("tiny")
    assert c.replace(batch_length=2).batch_length == 2
    with pytest.raises(configs.ConfigError, match="^batch_length: got 1"):
        c.replace(batch_length=1)
    with pytest.raises(configs.ConfigError, match="^compute_dtype"):
        configs.validate(dataclasses.replace(c, compute_dtype="int8"))
