"""Throughput benchmarks, all in one place (`experiments.benchmark` is their entry point).

- env: `make_env_rollout`, `jit(lax.scan(vmap(auto_reset_step)))` over pre-drawn actions: the
  environment alone, without a policy (so no `tetris_jax.rollout`: its per-step key split and
  policy call would be measured too).
- heuristics: `benchmark_heuristics`, the baseline controllers as `tetris_jax.rollout` policies.
- train: `benchmark_train_step`, dreamer_jax `train_step` on synthetic batches.
- loop: `benchmark_loop`, experiments.train's device loop (collect + train steps at the
  config's train ratio), compile time apart; no files written.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import tetris_jax
from dreamer_jax import configs as agent_configs
from dreamer_jax.agent import Agent
from experiments.lib import build, loop
from tetris_jax import heuristics, rollout


def machine_info() -> dict:
    """Where a figure was measured: machine, backend, devices, versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "command": " ".join(
            [os.path.basename(sys.executable), "-m", "experiments.benchmark"] + sys.argv[1:]
        ),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host_cpu": cpu,
        "host_cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],  # Shared machines.
        "backend": jax.default_backend(),
        "devices": [d.device_kind for d in jax.devices()],
        "jax": jax.__version__,
        "python": platform.python_version(),
    }


def time_fn(fn: Callable, *args, repeats: int) -> tuple[float, list[float]]:
    """(compile + first run seconds, list of timed run seconds)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        runs.append(time.perf_counter() - t0)
    return first, runs


def make_env_rollout(env: tetris_jax.Tetris, with_obs: bool) -> Callable:
    """jit(scan(vmap(auto_reset_step))) over pre-drawn actions (T, B).

    With `with_obs` the step's observation is written into the scan's carry, so XLA must
    build it every step (as when it is stored in a replay buffer); without, only the reward
    is kept and XLA drops the observation.
    """

    def body(carry, action):
        state, obs, acc = carry
        state, ts = jax.vmap(env.auto_reset_step)(state, action)
        return (state, ts.observation if with_obs else obs, acc + jnp.sum(ts.reward)), None

    @jax.jit
    def rollout(state, obs, actions):
        (state, obs, acc), _ = jax.lax.scan(body, (state, obs, jnp.float32(0)), actions)
        return state, obs, acc

    return rollout


def benchmark_heuristics(
    name: str,
    batch: int = 4096,
    steps: int = 64,
    repeats: int = 5,
    env: tetris_jax.Tetris | None = None,
    seed: int = 0,
) -> dict:
    """Pieces/s of a controller playing `batch` games (10x20 classic rules by default) for
    `steps` decisions each, `jit(lax.scan(rollout.step))` with auto-reset. Games that end
    restart; a restart step decides nothing and is not counted. The compile time (first call) is
    reported apart (compile_s: the first call, compile included); pieces_per_s is the median
    over `repeats` timed calls."""
    env = tetris_jax.Tetris(randomizer="uniform", queue_size=0) if env is None else env
    act = heuristics.batch_policy(heuristics.make_policy(env, name))

    def body(c, _):
        r, decided = c
        r, tr = rollout.step(env, act, r, auto_reset=True)
        return (r, decided + jnp.sum(~tr.states.done, dtype=jnp.int32)), None

    @jax.jit
    def run(r):
        (r, decided), _ = jax.lax.scan(body, (r, jnp.int32(0)), None, length=steps)
        return r, decided

    r = rollout.start(env, jax.random.key(seed), batch)
    t0 = time.perf_counter()
    r, decided = jax.block_until_ready(run(r))
    compile_s = time.perf_counter() - t0
    times, counts = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r, decided = jax.block_until_ready(run(r))
        times.append(time.perf_counter() - t0)
        counts.append(int(decided))
    rates = [n / t for n, t in zip(counts, times, strict=True)]
    return {
        "pieces_per_s": statistics.median(rates),
        "seconds": statistics.median(times),
        "compile_s": compile_s,
        "steps": steps,
        "batch": batch,
        "repeats": repeats,
        "env": repr(env),
        "backend": jax.default_backend(),
    }


def synthetic_batch(
    obs_spec: dict[str, Any], num_actions: int, batch_size: int, seq_len: int, seed: int = 0
) -> dict[str, jax.Array]:
    """Random observations and flags with the replay batch layout (B, T, ...)."""
    rng = np.random.default_rng(seed)
    B, T = batch_size, seq_len
    batch = {}
    for k, s in obs_spec.items():
        shape = (B, T, *s.shape)
        if s.kind == "categorical":
            batch[k] = rng.integers(0, s.num_classes, shape).astype(np.int32)
        else:
            batch[k] = rng.random(shape) < 0.5
    is_first = rng.random((B, T)) < 0.02
    is_first[:, 0] = True
    is_last = np.roll(is_first, -1, 1)
    is_last[:, -1] = False
    batch.update(
        action=rng.integers(0, num_actions, (B, T)).astype(np.int32),
        reward=rng.normal(size=(B, T)).astype(np.float32),
        is_first=is_first,
        is_last=is_last,
        is_terminal=is_last & (rng.random((B, T)) < 0.5),
    )
    return {k: jnp.asarray(v) for k, v in batch.items()}


def benchmark_train_step(
    preset: str = "tiny",
    batch_size: int = 16,
    seq_len: int = 64,
    steps: int = 20,
    repeats: int = 3,
    env: tetris_jax.Tetris | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """`train_step` on synthetic batches shaped like `env`'s observations (default: 10x20
    placement mode): compile once, then time `repeats` runs of `steps` updates each.

    Returns compile_s (first call, including tracing and compilation), updates_per_s and
    replayed_steps_per_s (medians over repeats; replayed steps = updates * B * T), the
    per-repeat rates, the parameter count and the device.
    """
    config = agent_configs.get_config(
        preset, batch_size=batch_size, batch_length=seq_len, **overrides
    )
    env = env or tetris_jax.Tetris()
    spec, num_actions = env.observation_spec(), env.num_actions
    agent = Agent(config, spec, num_actions)
    key = jax.random.key(0)
    state = agent.init(key)
    batch = synthetic_batch(spec, num_actions, batch_size, seq_len)
    start = time.perf_counter()
    state, metrics = agent.train_step(state, batch, jax.random.fold_in(key, 0))
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - start
    rates = []
    for r in range(repeats):
        start = time.perf_counter()
        for i in range(steps):
            state, metrics = agent.train_step(state, batch, jax.random.fold_in(key, r * steps + i))
        jax.block_until_ready((state, metrics))
        rates.append(steps / (time.perf_counter() - start))
    ups = statistics.median(rates)
    return {
        "preset": preset,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "compile_s": compile_s,
        "updates_per_s": ups,
        "replayed_steps_per_s": ups * batch_size * seq_len,
        "updates_per_s_repeats": rates,
        "param_count": int(sum(x.size for x in jax.tree.leaves(state.params))),
        "device": str(jax.devices()[0]),
        "finite": bool(all(np.isfinite(float(v)) for v in metrics.values())),
    }


def benchmark_loop(
    config: ml_collections.ConfigDict, iterations: int = 20, repeats: int = 3, **overrides: Any
) -> dict[str, Any]:
    """Times `repeats` runs of `iterations` loop iterations (replay pre-filled, training on)."""
    config = build.resolve(config)
    config.update(overrides)
    build.check_config(config, jax.device_count())
    env = build.make_env(config)
    agent = build.make_agent(config, env)
    mesh = loop.make_mesh()
    t0 = time.perf_counter()
    state = loop.init_state(
        env,
        agent,
        jax.random.key(config.seed),
        num_envs=config.num_envs,
        capacity=config.replay_capacity,
        seq_len=config.seq_len,
        memory_fraction=config.replay_memory_fraction,
        mesh=mesh,
    )
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
        "num_envs": config.num_envs,
        "collect_steps": config.collect_steps,
        "train_ratio": config.train_ratio,
        "preset": config.agent_preset,
        "batch": config.batch_size,
        "seq_len": config.seq_len,
        "compile_s": compile_s,
        "env_steps_per_s": statistics.median(env_rates),
        "updates_per_s": ups,
        "replayed_steps_per_s": ups * config.batch_size * config.seq_len,
        "devices": jax.device_count(),
    }
