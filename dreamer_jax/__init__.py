"""dreamer_jax: a DreamerV3-style agent (world model, actor-critic, replay) in JAX and Flax."""

import importlib.metadata

from dreamer_jax.agent import Agent, PolicyCarry, TrainState, init, make_policy, make_train_step
from dreamer_jax.configs import PRESETS, Config, ConfigError, get_config

try:  # The installed distribution's version (`make install` installs the checkout, -e).
    __version__ = importlib.metadata.version("tetris-dreamer-jax")
except importlib.metadata.PackageNotFoundError:  # Imported from a source tree not installed.
    __version__ = "0+unknown"

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
