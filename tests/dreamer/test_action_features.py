"""Agent with an "action_features" observation field (per-action features, e.g. afterstates)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamer_jax import Agent, get_config, losses, outs
from tests.dreamer import fakes

A, F = 8, 3
SPEC = {
    "board": fakes.FieldSpec((4, 4), "bool", "binary"),
    "action_mask": fakes.FieldSpec((A,), "bool", "mask"),
    "placements": fakes.FieldSpec((A, F), "float16", "action_features"),
}
B, T = 16, 8


def bandit_batch(rng: np.random.Generator, b: int = B, t: int = T) -> dict:
    """Every step is a fresh one-step choice: random per-action features, a random action, and
    the next step's reward is the chosen action's feature 0. Which index is best changes every
    step, so only the features tell the actions apart."""
    feats = rng.integers(0, 4, (b, t, A, F)).astype(np.float32)
    action = rng.integers(0, A, (b, t))
    chosen = np.take_along_axis(feats[..., 0], action[..., None], -1)[..., 0]
    reward = np.zeros((b, t), np.float32)
    reward[:, 1:] = chosen[:, :-1]
    is_first = np.zeros((b, t), bool)
    is_first[:, 0] = True
    return {
        "board": jnp.asarray(rng.random((b, t, 4, 4)) < 0.3),
        "action_mask": jnp.ones((b, t, A), bool),
        "placements": jnp.asarray(feats, jnp.float16),
        "action": jnp.asarray(action, jnp.int32),
        "reward": jnp.asarray(reward),
        "is_first": jnp.asarray(is_first),
        "is_last": jnp.zeros((b, t), bool),
        "is_terminal": jnp.zeros((b, t), bool),
    }


@pytest.fixture(scope="module")
def agent():
    config = get_config(
        "tiny",
        batch_size=B,
        batch_length=T,
        lr=1e-3,
        warmup=0,
        imag_last=4,
        imag_length=2,
        horizon=2,
    )
    return Agent(config, SPEC, A)


def test_networks_and_spec_checks(agent):
    state = agent.init(jax.random.key(0))
    assert {"afeat", "scorer"} <= set(state.params)
    bad = dict(SPEC, placements=fakes.FieldSpec((A + 1, F), "float16", "action_features"))
    with pytest.raises(ValueError, match="placements"):
        Agent(agent.config, bad, A).init(jax.random.key(0))
    two = dict(SPEC, more=fakes.FieldSpec((A, F), "float16", "action_features"))
    with pytest.raises(ValueError, match="action_features"):
        Agent(agent.config, two, A).init(jax.random.key(0))


def test_rssm_action_input_carries_the_chosen_features(agent):
    """Changing the features of the action taken at step t changes the model's state at t+1
    (and not before); changing another action's features there does not reach it that way."""
    state = agent.init(jax.random.key(0))
    batch = bandit_batch(np.random.default_rng(0))
    vec = losses.prev_actions(batch["action"], A, batch["placements"].astype(jnp.float32))
    assert vec.shape == (B, T, A + F)
    t = 3
    a = batch["action"][:, t]
    changed = batch["placements"].at[jnp.arange(B), t, a, :].add(5.0)
    vec2 = losses.prev_actions(batch["action"], A, changed.astype(jnp.float32))
    diff = jnp.abs(vec2 - vec).sum(-1)
    assert bool((diff[:, t + 1] > 0).all()) and float(diff.at[:, t + 1].set(0).sum()) == 0.0
    # In acting, the carry keeps the chosen action's features for the next step's input.
    obs = {k: batch[k][:, 0] for k in SPEC}
    obs["is_first"] = jnp.ones((B,), bool)
    act, carry = agent.policy(state.params, agent.initial_carry(B), obs, jax.random.key(1))
    want = batch["placements"][jnp.arange(B), 0, act].astype(jnp.float32)
    np.testing.assert_array_equal(carry.prev_features, want)


@pytest.mark.parametrize("option", ["", "qhead"])
def test_actor_learns_to_rank_actions_by_their_features(agent, option):
    """The contextual bandit of `bandit_batch`: the best index is random at every step, so a
    latent-only actor stays at chance (~1/3 of choices best, ties included); ranking by
    features wins. The reward model needs ~500 updates to read the chosen action's features
    (before, the best share stays at chance); the actor follows within ~200. With `qhead`
    it also learns from the Q head's values on every replayed state."""
    agent = Agent(agent.config.replace(**({option: True} if option else {})), SPEC, A)
    rng = np.random.default_rng(1)
    state = agent.init(jax.random.key(0))
    for i in range(800):
        state, metrics = agent.train_step(state, bandit_batch(rng), jax.random.key(i))
    assert np.isfinite(float(metrics["loss/total"]))
    test = bandit_batch(np.random.default_rng(99), b=256, t=1)
    obs = {k: test[k][:, 0] for k in SPEC}
    obs["is_first"] = jnp.ones((256,), bool)
    act, _ = agent.policy(state.params, agent.initial_carry(256), obs, jax.random.key(5), "greedy")
    f0 = np.asarray(test["placements"][:, 0, :, 0], np.float32)
    got = f0[np.arange(256), np.asarray(act)]
    best = f0.max(-1)
    assert (got == best).mean() > 0.9, ((got == best).mean(), got.mean())
    assert got.mean() > 2.5, got.mean()  # A random choice averages 1.5.
    if option == "qhead":
        assert float(metrics["q/actor_agrees"]) > 0.8, metrics["q/actor_agrees"]


def test_qhead_values_follow_the_chosen_features(agent):
    """The Q head alone (no actor terms, no world-model gradient to lean on) learns the
    bandit's Q(s, a) = feature 0 of a: its values rank the actions as the reward does."""
    config = agent.config.replace(qhead=True, scale_policy=0.0, scale_qpolicy=0.0)
    agent = Agent(config, SPEC, A)
    rng = np.random.default_rng(2)
    state = agent.init(jax.random.key(0))
    for i in range(300):
        state, metrics = agent.train_step(state, bandit_batch(rng), jax.random.key(i))
    test = bandit_batch(np.random.default_rng(7), b=8, t=T)
    kw = dict(config=config, spec=agent.obs_spec, num_actions=A)
    world = losses.world_model_loss(agent.nets, state.params, test, jax.random.key(0), **kw)[2]
    feats = test["placements"].astype(jnp.float32)
    logits = agent.nets.qnet.apply(state.params["qnet"], world.feat, feats)
    q = np.asarray(outs.twohot_mean(logits, outs.twohot_bins(config.bins)))
    f0 = np.asarray(feats[..., 0])
    # horizon 2: Q = f0(a) + 0.5 * (expected next reward, the same for every action).
    corr = np.mean(
        [
            np.corrcoef(q[b, t], f0[b, t])[0, 1]
            for b in range(8)
            for t in range(T)
            if f0[b, t].std() > 0
        ]
    )
    assert corr > 0.9, corr


def test_qhead_needs_action_features():
    spec = {k: v for k, v in SPEC.items() if k != "placements"}
    config = get_config("tiny", qhead=True)
    with pytest.raises(ValueError, match="qhead"):
        Agent(config, spec, A).init(jax.random.key(0))
