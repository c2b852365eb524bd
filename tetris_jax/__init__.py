"""tetris_jax: Tetris as a pure, jit- and vmap-able JAX environment."""

# Submodules; gym_wrapper is not imported here (gymnasium is optional).
from tetris_jax import heuristics, render
from tetris_jax.env import DIRECT_ACTIONS, State, Tetris
from tetris_jax.types import EMPTY_HOLD, FieldSpec, Observation, TimeStep, flatten_observation


def _version() -> str:
    """pyproject.toml's version: read there in a source checkout (an installed copy elsewhere
    may be older), else from the installed package's metadata."""
    import importlib.metadata
    import os
    import tomllib

    path = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyproject.toml"
    )
    if os.path.exists(path):
        with open(path, "rb") as f:
            project = tomllib.load(f).get("project", {})
        if project.get("name") == "tetris-dreamer-jax":
            return project["version"]
    try:
        return importlib.metadata.version("tetris-dreamer-jax")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = _version()

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
