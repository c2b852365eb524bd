"""dreamer_jax: a DreamerV3-style agent (world model, actor-critic, replay) in JAX and Flax."""

from dreamer_jax.agent import Agent, PolicyCarry, TrainState, init, make_policy, make_train_step
from dreamer_jax.configs import PRESETS, Config, ConfigError, get_config


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
    "PRESETS",
    "Agent",
    "Config",
    "ConfigError",
    "PolicyCarry",
    "TrainState",
    "get_config",
    "init",
    "make_policy",
    "make_train_step",
]
