"""End-to-end loop throughput: env steps/s and updates/s of experiments.train's device loop
(collect + train steps at the config's train ratio), compile time apart; no files written."""

from __future__ import annotations

import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from experiments import common, loop


def benchmark_loop(config: ml_collections.ConfigDict, iterations: int = 20, repeats: int = 3,
                   **overrides: Any) -> dict[str, Any]:  # fmt: skip
    """Times `repeats` runs of `iterations` loop iterations (replay pre-filled, training on)."""
    config = common.resolve(config)
    config.update(overrides)
    common.check_config(config, jax.device_count())
    env = common.make_env(config)
    agent = common.make_agent(config, env)
    mesh = loop.make_mesh()
    t0 = time.perf_counter()
    state = loop.init_state(
        env, agent, jax.random.key(config.seed), num_envs=config.num_envs,
        capacity=config.replay_capacity, seq_len=config.seq_len,
        memory_fraction=config.replay_memory_fraction, mesh=mesh,
    )  # fmt: skip
    collect, train, chunk, calls = loop.make_step_fns(config, env, agent, state, mesh)
    # Fill enough replay for a window, compiling collect and train on the way.
    fill = -(-config.seq_len // config.collect_steps)
    for _ in range(fill):
        state, _ = collect(state, jnp.float32(0))
    state, m = train(state)
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t0
    per_iter = config.num_envs * config.collect_steps
    env_rates, upd_rates = [], []
    for _ in range(repeats):
        debt, updates = 0.0, 0
        start = time.perf_counter()
        for _ in range(iterations):
            state, s = collect(state, jnp.float32(0))
            debt += calls
            while debt >= 1.0:
                state, m = train(state)
                updates += chunk
                debt -= 1.0
        jax.block_until_ready((state, s, m))
        dt = time.perf_counter() - start
        env_rates.append(iterations * per_iter / dt)
        upd_rates.append(updates / dt)
    ups = statistics.median(upd_rates)
    return {
        "num_envs": config.num_envs, "collect_steps": config.collect_steps,
        "train_ratio": config.train_ratio, "preset": config.agent_preset,
        "batch": config.batch_size, "seq_len": config.seq_len, "compile_s": compile_s,
        "env_steps_per_s": statistics.median(env_rates), "updates_per_s": ups,
        "replayed_steps_per_s": ups * config.batch_size * config.seq_len,
        "devices": jax.device_count(),
    }  # fmt: skip
