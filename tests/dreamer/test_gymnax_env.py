"""The gymnax adapter against gymnax's own rollouts: the same frames on the same keys, with the
terminal frame kept (`is_last`), `is_terminal` only on termination (not on the time limit),
then the reset frame (`is_first`); and the protocol checks on bad environments."""

from __future__ import annotations

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamer_jax import envs
from dreamer_jax.envs import FieldSpec, TimeStep
from dreamer_jax.gymnax_env import GymnaxEnv


def _gymnax_frames(name, key, actions, max_steps=None):
    """gymnax's own rollout on the adapter's keys, as the frames the adapter must emit: each
    step's observation, or at `done` the terminal one (final_observation) followed by the
    reset one."""
    env, params = gymnax.make(name)
    if max_steps is not None:
        params = params.replace(max_steps_in_episode=max_steps)
    key, k_reset = jax.random.split(key)
    obs, state = env.reset(k_reset, params)
    frames, pending = [(obs, 0.0, True, False, False)], obs
    for a in actions:
        if frames[-1][3]:  # The adapter spends this action on the reset frame.
            frames.append((pending, 0.0, True, False, False))
            continue
        key, k = jax.random.split(key)
        obs, state, reward, term, trunc, info = env.step(k, state, a, params)
        done = bool(term) or bool(trunc)
        frames.append((info["final_observation"], float(reward), False, done, bool(term)))
        pending = obs
    return frames


def _adapter_frames(env, key, actions):
    state, ts = env.reset(key)
    out = [ts]
    step = jax.jit(env.auto_reset_step)
    for a in actions:
        state, ts = step(state, jnp.int32(a))
        out.append(ts)
    return out


@pytest.mark.parametrize("max_steps", [None, 8])
def test_cartpole_frames_match_gymnax_with_terminal_frames_kept(max_steps):
    # Always pushing right topples the pole in ~10 steps (termination); with a limit of 8 the
    # episodes are cut first (truncation: is_last without is_terminal).
    actions = [1] * 60
    key = jax.random.key(3)
    env = GymnaxEnv("CartPole-v1", max_steps=max_steps)
    got = _adapter_frames(env, key, actions)
    want = _gymnax_frames("CartPole-v1", key, actions, max_steps)
    assert len(got) == len(want)
    flags = []
    for t, (ts, (obs, reward, first, last, terminal)) in enumerate(zip(got, want, strict=True)):
        # Equal up to float rounding (the two jitted programs fuse the physics differently).
        np.testing.assert_allclose(ts.observation["obs"], obs, rtol=1e-5, atol=1e-6, err_msg=str(t))
        assert float(ts.reward) == reward, t
        assert (bool(ts.is_first), bool(ts.is_last), bool(ts.is_terminal)) == (
            first,
            last,
            terminal,
        ), t
        flags.append((first, last, terminal))
    ends = [f for f in flags if f[1]]
    assert len(ends) >= 3
    if max_steps is None:
        assert all(f[2] for f in ends)  # Every end a real termination.
    else:
        assert not any(f[2] for f in ends)  # Every end a time-limit cut.
        lengths = [int(ts.metrics["steps"]) for ts in got if ts.is_last]
        assert lengths == [8] * len(lengths)
    # Every end is followed by a reset frame, and only ends are.
    for t in range(1, len(flags)):
        assert flags[t][0] == flags[t - 1][1], t


def test_minatar_breakout_frames_match_gymnax():
    rng = np.random.default_rng(0)
    actions = [int(a) for a in rng.integers(0, 3, 200)]
    key = jax.random.key(1)
    env = GymnaxEnv("Breakout-MinAtar")
    assert env.observation_spec()["obs"] == FieldSpec((10, 10, 4), "bool", "binary")
    got = _adapter_frames(env, key, actions)
    want = _gymnax_frames("Breakout-MinAtar", key, actions)
    for t, (ts, (obs, reward, first, last, terminal)) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_array_equal(ts.observation["obs"], np.asarray(obs), err_msg=str(t))
        assert (float(ts.reward), bool(ts.is_first), bool(ts.is_last), bool(ts.is_terminal)) == (
            reward,
            first,
            last,
            terminal,
        ), t
    assert any(bool(ts.is_last) for ts in got)


def test_adapter_and_tetris_implement_the_protocol():
    from tetris_jax import Tetris

    for env in (GymnaxEnv("CartPole-v1"), Tetris(height=8, width=6, placement_features=True)):
        assert isinstance(env, envs.Environment)
        envs.check_env(env)
    assert GymnaxEnv("CartPole-v1").observation_spec()["obs"].kind == "real"


def test_unknown_gymnax_name_is_refused():
    with pytest.raises(ValueError, match="name: got 'CartPole-v9'"):
        GymnaxEnv("CartPole-v9")


class _Bad:
    """A one-field env whose spec, observation or time step can be spoiled."""

    num_actions = 2
    episode_metrics = {"length": "steps"}

    def __init__(self, kind="real", obs_shape=(3,), flags=True):
        self.kind, self.obs_shape, self.flags = kind, obs_shape, flags

    def observation_spec(self):
        return {"x": FieldSpec((3,), "float32", self.kind)}

    def _ts(self):
        obs = {"x": jnp.zeros(self.obs_shape)}
        f = jnp.bool_(False)
        if not self.flags:
            return (obs, jnp.float32(0))
        return TimeStep(obs, jnp.float32(0), f, f, f, {"steps": jnp.int32(0)})

    def reset(self, key):
        return jnp.int32(0), self._ts()

    def step(self, state, action):
        return state, self._ts()

    auto_reset_step = step


@pytest.mark.parametrize(
    "env, message",
    [
        (_Bad(kind="pixels"), r"obs_spec\['x'\].kind: got 'pixels'"),
        (_Bad(obs_shape=(4,)), r"observation\['x'\] has shape \(4,\); the spec says \(3,\)"),
        (_Bad(flags=False), r"_Bad.reset: its time step has no 'is_first'"),
    ],
)
def test_bad_environments_are_refused_naming_the_field(env, message):
    with pytest.raises(ValueError, match=message):
        envs.check_env(env)
