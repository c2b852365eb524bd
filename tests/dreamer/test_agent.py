"""End-to-end agent checks on the tiny preset with small fake Tetris observations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamer_jax import Agent, get_config, init, make_train_step
from tests.dreamer import fakes

A = 12
SPEC = fakes.tetris_spec(rows=8, width=6, queue=3, actions=A)
B, T = 4, 16


@pytest.fixture(scope="module")
def agent():
    config = get_config("tiny", batch_size=B, batch_length=T, lr=1e-3, warmup=0)
    return Agent(config, SPEC, A)


@pytest.fixture(scope="module")
def trained(agent):
    """Run 40 updates on one fixed, learnable batch; return (state, per-step metrics)."""
    state = agent.init(jax.random.key(0))
    batch = fakes.structured_batch(SPEC, A, B, T)
    history = []
    for i in range(40):
        state, metrics = agent.train_step(state, batch, jax.random.key(i))
        history.append(jax.device_get(metrics))
    return state, history


def test_train_step_metrics_are_finite_scalars(trained):
    _, history = trained
    for metrics in history:
        for name, value in metrics.items():
            assert np.shape(value) == () and np.isfinite(value), (name, value)
    expected = {
        "loss/total",
        "loss/world_model",
        "loss/dyn",
        "loss/rep",
        "loss/rew",
        "loss/con",
        "loss/rec/board",
        "loss/rec/piece",
        "loss/rec/action_mask",
        "loss/policy",
        "loss/value",
        "loss/repval",
        "kl/dyn",
        "kl/rep",
        "actor/entropy",
        "grad_norm",
    }
    assert expected <= set(history[0])
    assert history[-1]["step"] == 40


def test_no_retrace_across_calls(agent, trained):
    del trained
    assert agent.traces == {"train_step": 1}


def test_world_model_loss_falls_on_a_fixed_batch(trained):
    _, history = trained
    first = np.mean([m["loss/world_model"] for m in history[:3]])
    last = np.mean([m["loss/world_model"] for m in history[-3:]])
    assert last < 0.9 * first, (first, last)
    assert history[-1]["loss/rec/board"] < 0.9 * history[0]["loss/rec/board"]


def test_train_step_donates_state(agent, trained):
    state, _ = trained
    state = jax.tree.map(jnp.copy, state)
    batch = fakes.random_batch(SPEC, A, B, T, seed=3)
    new, _ = agent.train_step(state, batch, jax.random.key(99))
    assert state.params["actor"]["params"]["Linear_0"]["kernel"].is_deleted()
    assert not new.params["actor"]["params"]["Linear_0"]["kernel"].is_deleted()


def _obs(n, seed, is_first):
    obs = fakes.random_obs(SPEC, (n,), seed)
    obs["is_first"] = jnp.full((n,), is_first)
    return obs


@pytest.mark.parametrize("mode", ["sample", "greedy"])
def test_policy_never_picks_a_masked_action(agent, trained, mode):
    state, _ = trained
    params = jax.tree.map(jnp.copy, state.params)
    # Make the actor strongly prefer action 3, then mask it out in every environment.
    out = params["actor"]["params"]["Linear_0"]
    out["bias"] = out["bias"].at[3].set(50.0)
    n = 256
    carry = agent.initial_carry(n)
    for step in range(5):
        obs = _obs(n, seed=step, is_first=step == 0)
        mask = obs["action_mask"].at[:, 3].set(False)
        obs["action_mask"] = mask
        action, carry = agent.policy(params, carry, obs, jax.random.key(step), mode)
        assert action.shape == (n,) and action.dtype == jnp.int32
        assert bool(mask[jnp.arange(n), action].all()), mode
    # Only one action allowed: it is always the one chosen.
    obs = _obs(n, seed=9, is_first=False)
    only = jax.random.randint(jax.random.key(5), (n,), 0, A)
    obs["action_mask"] = jax.nn.one_hot(only, A, dtype=bool)
    action, _ = agent.policy(params, carry, obs, jax.random.key(7), mode)
    np.testing.assert_array_equal(action, only)
    # Unmasked, the strongly preferred action wins.
    obs["action_mask"] = jnp.ones((n, A), bool)
    action, _ = agent.policy(params, carry, obs, jax.random.key(8), mode)
    assert float((action == 3).mean()) > 0.9


def test_policy_carry_resets_on_is_first(agent, trained):
    state, _ = trained
    n = 8
    fresh = agent.initial_carry(n)
    obs = _obs(n, seed=1, is_first=False)
    _, used = agent.policy(state.params, fresh, obs, jax.random.key(0), "greedy")
    _, used = agent.policy(state.params, used, _obs(n, 2, False), jax.random.key(1), "greedy")
    first = _obs(n, seed=3, is_first=True)
    _, a = agent.policy(state.params, used, first, jax.random.key(2), "greedy")
    _, b = agent.policy(state.params, fresh, first, jax.random.key(2), "greedy")
    jax.tree.map(np.testing.assert_array_equal, a, b)
    cont = dict(first, is_first=jnp.zeros((n,), bool))
    _, c = agent.policy(state.params, used, cont, jax.random.key(2), "greedy")
    assert not np.allclose(c.state.deter, b.state.deter)


def test_module_level_api(agent):
    state = init(jax.random.key(1), SPEC, A, agent.config)
    assert int(state.step) == 0
    assert callable(make_train_step(agent.config, SPEC, A))
    with pytest.raises(ValueError, match="num_actions"):
        init(jax.random.key(1), SPEC, 1, agent.config)
    bad = dict(SPEC, board=fakes.FieldSpec((8, 6), "bool", "image"))
    with pytest.raises(ValueError, match="board"):
        init(jax.random.key(1), bad, A, agent.config)


def test_bf16_compute_and_conv_encoder_variant():
    config = get_config(
        "tiny", batch_size=2, batch_length=4, compute_dtype="bfloat16", conv_depth=4, imag_last=2
    )
    agent = Agent(config, SPEC, A)
    state = agent.init(jax.random.key(0))
    leaves = jax.tree.leaves(state.params)
    assert all(x.dtype == jnp.float32 for x in leaves)
    assert "Conv_0" in state.params["enc"]["params"]
    batch = fakes.random_batch(SPEC, A, 2, 4)
    state, metrics = agent.train_step(state, batch, jax.random.key(1))
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.params))
