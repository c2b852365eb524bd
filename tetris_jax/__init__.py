"""tetris_jax: Tetris as a pure, jit- and vmap-able JAX environment."""

import importlib.metadata

# Submodules; gym_wrapper is not imported here (gymnasium is optional).
from tetris_jax import heuristics, render
from tetris_jax.env import DIRECT_ACTIONS, State, Tetris
from tetris_jax.types import EMPTY_HOLD, FieldSpec, Observation, TimeStep, flatten_observation

try:  # The installed distribution's version (`make install` installs the checkout, -e).
    __version__ = importlib.metadata.version("tetris-dreamer-jax")
except importlib.metadata.PackageNotFoundError:  # Imported from a source tree not installed.
    __version__ = "0+unknown"

__all__ = [
    "__version__",
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
