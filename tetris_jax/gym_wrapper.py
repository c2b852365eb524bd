"""A Gymnasium single-environment wrapper, for users of other RL libraries.

gymnasium is an optional dependency (`pip install gymnasium`, or the project's `gym` extra); it
is imported only here. Importing this module registers the id "tetris_jax/Tetris-v0":

    env = TetrisGymEnv(height=20, width=10, render_mode="ansi")   # any Tetris(...) argument
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(info["action_mask"].argmax())

Observations are a dict with one entry per `Observation` field (same names and shapes):
binary planes and the action mask as MultiBinary (int8), can_hold as Discrete(2), piece,
rotation and hold as Discrete, the queue as MultiDiscrete (int64). `info` carries
"action_mask" (bool) and the step's metrics; `action_masks()` returns the mask too (the
sb3-contrib MaskablePPO convention). Each step runs one compiled JAX step; compiled functions are
shared by all wrappers with the same configuration (e.g. the copies in a vector env).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

try:
    import gymnasium
    from gymnasium import spaces
except ImportError as e:  # pragma: no cover - depends on the installation.
    raise ImportError(
        "tetris_jax.gym_wrapper needs gymnasium, an optional dependency: install it with "
        "`pip install gymnasium` (or `pip install -r requirements-dev.txt`)."
    ) from e

from tetris_jax import render as rendering
from tetris_jax.env import Tetris
from tetris_jax.types import FieldSpec, Observation

ENV_ID = "tetris_jax/Tetris-v0"


def _space(field: FieldSpec) -> spaces.Space:
    if field.kind == "action_features":
        return spaces.Box(0.0, np.inf, field.shape, np.float32)
    if field.kind == "categorical":
        if field.shape == ():
            return spaces.Discrete(field.num_classes)
        return spaces.MultiDiscrete(np.full(field.shape, field.num_classes), dtype=np.int64)
    if field.shape == ():  # A binary scalar.
        return spaces.Discrete(2)
    return spaces.MultiBinary(list(field.shape))


@functools.lru_cache(maxsize=16)
def _compiled(kwargs: tuple) -> tuple[Tetris, Any, Any, Any]:
    """(env, reset, reset from a board, step) for one configuration, jitted once."""
    env = Tetris(**dict(kwargs))
    return (
        env,
        jax.jit(env.reset),
        jax.jit(lambda key, board: env.reset(key, board)),
        jax.jit(env.step),
    )


class TetrisGymEnv(gymnasium.Env):
    """`tetris_jax.Tetris` as a `gymnasium.Env` (see the module docstring).

    terminated: the game ended (top-out). truncated: the env's `max_steps` cut the episode off.
    `reset(options={"board": array})` starts from a given (height, width) board. Step again
    only after `reset` once an episode has ended.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None, cell: int = 16, **tetris_kwargs: Any):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"TetrisGymEnv: render_mode={render_mode!r} is not allowed; it must "
                f"be None or one of {self.metadata['render_modes']}."
            )
        key = tuple(
            sorted(
                (k, v if not isinstance(v, dict) else tuple(sorted(v.items())))
                for k, v in tetris_kwargs.items()
            )
        )
        self.tetris, self._reset, self._reset_board, self._step = _compiled(key)
        self.render_mode, self.cell = render_mode, cell
        spec = self.tetris.observation_spec()
        self.observation_space = spaces.Dict({k: _space(f) for k, f in spec.items()})
        self.action_space = spaces.Discrete(self.tetris.num_actions)
        self._spec = spec
        self.state = None
        self._mask = None
        self._done = True

    def _observation(self, obs: Observation) -> dict[str, Any]:
        out = {}
        for name, field in self._spec.items():
            value = np.asarray(getattr(obs, name))
            if field.kind == "action_features":
                out[name] = value.astype(np.float32)
            elif field.shape == ():
                out[name] = np.int64(value)
            else:
                out[name] = value.astype(np.int64 if field.kind == "categorical" else np.int8)
        return out

    def _finish(self, ts) -> tuple[dict[str, Any], dict[str, Any]]:
        self._mask = np.asarray(ts.observation.action_mask, bool)
        info = {"action_mask": self._mask.copy()}
        info.update({k: int(v) for k, v in ts.metrics.items()})
        return self._observation(ts.observation), info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        key = jax.random.key(int(self.np_random.integers(0, 2**63 - 1)))
        board = (options or {}).get("board")
        if board is None:
            self.state, ts = self._reset(key)
        else:
            want = (self.tetris.height, self.tetris.width)
            if np.shape(board) != want:
                raise ValueError(
                    f"TetrisGymEnv.reset: options['board'] has shape "
                    f"{np.shape(board)}; it must be (height, width) = "
                    f"{want}."
                )
            self.state, ts = self._reset_board(key, np.asarray(board))
        self._done = False
        return self._finish(jax.device_get(ts))

    def step(self, action):
        if self.state is None or self._done:
            raise RuntimeError(
                "TetrisGymEnv.step: the episode has ended (or never started); call reset() first."
            )
        if not self.action_space.contains(action):
            raise ValueError(f"TetrisGymEnv.step: action={action!r} is not in {self.action_space}.")
        self.state, ts = self._step(self.state, np.int32(action))
        ts = jax.device_get(ts)
        obs, info = self._finish(ts)
        terminated = bool(ts.is_terminal)
        truncated = bool(ts.is_last) and not terminated
        self._done = terminated or truncated
        return obs, float(ts.reward), terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """The current action mask, (num_actions,) bool."""
        return self._mask.copy()

    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn("TetrisGymEnv.render: no render_mode was given at construction.")
            return None
        if self.state is None:
            raise RuntimeError("TetrisGymEnv.render: call reset() first.")
        if self.render_mode == "ansi":
            return rendering.render_ascii(self.tetris, self.state)
        return rendering.render_rgb(self.tetris, self.state, self.cell)


if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="tetris_jax.gym_wrapper:TetrisGymEnv")
