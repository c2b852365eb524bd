"""A gymnax environment as a `dreamer_jax.envs.Environment`: `GymnaxEnv("CartPole-v1")`.

gymnax resets inside `step` (the observation returned with `done` is already the next
episode's) and its `done` folds the time limit in. This adapter keeps DreamerV3's frames
instead: the step that ends an episode returns the terminal observation with `is_last`, and
`is_terminal` only on real termination (gymnax's `terminated`; a time-limit cut, `truncated`,
is not termination); the next `auto_reset_step` (its action ignored) returns the reset
observation with `is_first`. The keys are gymnax's own: transition t uses the key k_t drawn
by `key, k_t = split(key)` from the state's key, split into (step, reset) keys as
`gymnax.environments.environment.Environment.step` does, and the reset frame after an ended
episode is gymnax's reset with that step's reset key. So the frames are exactly those of
gymnax's `step` on the keys k_t, with `info["final_observation"]` inserted before each reset
(tests/dreamer/test_gymnax_env.py checks it).

The observation is one field, "obs": kind "binary" (bool) when gymnax's observation space is
a box on [0, 1] (MinAtar's planes), else "real" (float32: CartPole's positions and velocities).
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from dreamer_jax.envs import FieldSpec, TimeStep


@flax.struct.dataclass
class GymnaxState:
    env: Any  # gymnax's state of the running episode.
    key: jax.Array  # typed key of the next transitions.
    reset_key: jax.Array  # reset key of the last transition (used after it ended an episode).
    done: jax.Array  # () bool: the last time step had `is_last`.
    steps: jax.Array  # () int32 steps of the running episode.


class GymnaxEnv:
    """gymnax env `name` (gymnax.make) with DreamerV3's frames and flags; see the module doc.

    `max_steps`: the episode's time limit (None: gymnax's, e.g. 500 for CartPole-v1)."""

    episode_metrics = {"length": "steps"}

    def __init__(self, name: str, max_steps: int | None = None, **make_kwargs: Any):
        import gymnax

        if name not in gymnax.registered_envs:
            raise ValueError(
                f"name: got {name!r}; gymnax has {', '.join(sorted(gymnax.registered_envs))}"
            )
        self.name = name
        self.env, self.params = gymnax.make(name, **make_kwargs)
        if max_steps is not None:
            if not isinstance(max_steps, int) or max_steps < 1:
                raise ValueError(f"max_steps: got {max_steps!r}; need None or an int >= 1")
            self.params = self.params.replace(max_steps_in_episode=max_steps)
        self.max_steps = int(self.params.max_steps_in_episode)
        space = self.env.observation_space(self.params)
        self._shape = tuple(int(d) for d in space.shape)
        low, high = np.asarray(space.low), np.asarray(space.high)
        self._kind = "binary" if (low == 0).all() and (high == 1).all() else "real"
        # Binary planes as bool: a quarter of the replay's bytes.
        self._dtype = "bool" if self._kind == "binary" else "float32"
        self.num_actions = int(self.env.num_actions)

    def __repr__(self) -> str:
        return f"GymnaxEnv({self.name!r}, max_steps={self.max_steps})"

    def observation_spec(self) -> dict[str, FieldSpec]:
        return {"obs": FieldSpec(self._shape, self._dtype, self._kind)}

    def _timestep(self, obs, reward, first, last, terminal, steps) -> TimeStep:
        return TimeStep(
            observation={"obs": jnp.asarray(obs).astype(self._dtype).reshape(self._shape)},
            reward=jnp.asarray(reward, jnp.float32),
            is_first=jnp.asarray(first, bool),
            is_last=jnp.asarray(last, bool),
            is_terminal=jnp.asarray(terminal, bool),
            metrics={"steps": steps},
        )

    def reset(self, key: jax.Array) -> tuple[GymnaxState, TimeStep]:
        """A new episode: gymnax's `reset(k_reset)` with `key, k_reset = split(key)`."""
        key, k_reset = jax.random.split(key)
        return self._reset(key, k_reset)

    def _reset(self, key, k_reset) -> tuple[GymnaxState, TimeStep]:
        obs, env_state = self.env.reset_env(k_reset, self.params)
        zero = jnp.int32(0)
        state = GymnaxState(env_state, key, k_reset, jnp.bool_(False), zero)
        return state, self._timestep(obs, 0.0, True, False, False, zero)

    def step(self, state: GymnaxState, action: jax.Array) -> tuple[GymnaxState, TimeStep]:
        """One transition: the next observation, or the terminal one with `is_last`."""
        key, k = jax.random.split(state.key)
        k_step, k_reset = jax.random.split(k)
        obs, env_state, reward, terminated, _ = self.env.step_env(
            k_step, state.env, jnp.asarray(action, jnp.int32), self.params
        )
        terminated = jnp.asarray(terminated, bool)
        truncated = jnp.asarray(self.env.is_truncated(env_state, self.params), bool)
        last = terminated | truncated
        steps = state.steps + 1
        new = GymnaxState(env_state, key, k_reset, last, steps)
        return new, self._timestep(obs, reward, False, last, terminated, steps)

    def auto_reset_step(
        self, state: GymnaxState, action: jax.Array
    ) -> tuple[GymnaxState, TimeStep]:
        """`step`, except that after an `is_last` the reset frame (`is_first`) comes instead."""
        stepped = self.step(state, action)
        fresh = self._reset(state.key, state.reset_key)
        return jax.tree.map(lambda u, v: jnp.where(state.done, u, v), fresh, stepped)
