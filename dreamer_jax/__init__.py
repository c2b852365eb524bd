"""dreamer_jax: a DreamerV3-style agent (world model, actor-critic, replay) in JAX and Flax."""

from dreamer_jax.agent import Agent, PolicyCarry, TrainState, init, make_policy, make_train_step
from dreamer_jax.configs import PRESETS, Config, ConfigError, get_config

__all__ = [
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
