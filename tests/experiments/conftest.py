"""Shared fixtures: the debug config, a persistent XLA cache so repeated compiles are loads."""

from __future__ import annotations

import importlib.util
import os
import pathlib

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


ROOT = pathlib.Path(__file__).resolve().parents[2]


def load_script(name: str):
    """The module docs/results/scripts/<name>.py (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / f"docs/results/scripts/{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
