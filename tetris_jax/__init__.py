"""tetris_jax: Tetris as a pure, jit- and vmap-able JAX environment."""

from tetris_jax.env import DIRECT_ACTIONS, Tetris, State
from tetris_jax.types import EMPTY_HOLD, FieldSpec, Observation, TimeStep

__all__ = ["DIRECT_ACTIONS", "EMPTY_HOLD", "FieldSpec", "Observation", "State", "Tetris",
           "TimeStep"]
