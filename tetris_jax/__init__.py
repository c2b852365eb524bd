"""tetris_jax: Tetris as a pure, jit- and vmap-able JAX environment."""

# Submodules; gym_wrapper is not imported here (gymnasium is optional).
from tetris_jax import heuristics, render
from tetris_jax.env import DIRECT_ACTIONS, State, Tetris
from tetris_jax.types import EMPTY_HOLD, FieldSpec, Observation, TimeStep, flatten_observation

__all__ = [
    "DIRECT_ACTIONS",
    "EMPTY_HOLD",
    "FieldSpec",
    "Observation",
    "State",
    "Tetris",
    "flatten_observation",
    "TimeStep",
    "heuristics",
    "render",
]
