"""Shared fixtures: the debug config, a persistent XLA cache so repeated compiles are loads."""

from __future__ import annotations

import os

import jax
import pytest

CACHE = os.environ.get(
    "TETRIS_TEST_XLA_CACHE", os.path.expanduser("~/.cache/tetris-dreamer-jax/xla")
)
jax.config.update("jax_compilation_cache_dir", CACHE)


@pytest.fixture
def debug_config():
    from experiments import debug

    return debug.get_config()


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.update(extra)
    return env
