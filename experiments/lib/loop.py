"""The on-device training loop: one jitted collect and one jitted chunk of train steps.

`collect` is a `lax.scan` over `collect_steps` of: the agent's policy (recurrent carry kept in
the state) on every env, a vmapped `auto_reset_step` of any `dreamer_jax.envs.Environment`,
and a row for the replay; the rows are
written with `replay.add_sequence`. `train` is a `lax.scan` over `num_updates` of a replay
sample and `agent.train_step`. Both take and return the whole `LoopState` (donated), so the
host only sees the small per-call statistics. With several devices the envs, their carries
and the replay's env axis are sharded over a 1-D mesh ("data"); parameters are replicated.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from dreamer_jax import replay
from dreamer_jax.agent import Agent, PolicyCarry, TrainState
from dreamer_jax.envs import FLAGS, Environment
from experiments.lib import policies, tetris


@flax.struct.dataclass
class LoopState:
    """Everything the device loop carries; checkpointed whole (the replay optionally)."""

    agent: TrainState
    env: Any  # (N, ...) env states.
    last: Any  # (N, ...) the latest time step, not acted on yet.
    policy: PolicyCarry  # (N, ...) RSSM state and previous action.
    ep_return: jax.Array  # (N,) float32 return of the running episode so far.
    replay: replay.ReplayState
    key: jax.Array  # typed PRNG key.


def replay_spec(env: Environment) -> dict[str, jax.ShapeDtypeStruct]:
    """One replay row: the observation fields, the action taken on them, reward and flags."""
    spec = {k: jax.ShapeDtypeStruct(f.shape, f.dtype) for k, f in env.observation_spec().items()}
    spec["action"] = jax.ShapeDtypeStruct((), jnp.int32)
    spec["reward"] = jax.ShapeDtypeStruct((), jnp.float32)
    for k in FLAGS:
        spec[k] = jax.ShapeDtypeStruct((), jnp.bool_)
    return spec


class Collecting(NamedTuple):
    """The scan carry of `collect`."""

    states: Any  # (N, ...) env states.
    ts: Any  # (N, ...) the time steps to act on next.
    carry: PolicyCarry
    key: jax.Array
    ep_return: jax.Array  # (N,) float32 return of the running episodes so far.


def make_mesh() -> Mesh:
    return Mesh(np.asarray(jax.devices()), ("data",))


def shardings(state: LoopState, mesh: Mesh) -> LoopState:
    """Per-env leaves sharded on axis 0 over "data", everything else replicated."""
    split, rep = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    per_env = lambda tree: jax.tree.map(lambda _: split, tree)
    whole = lambda tree: jax.tree.map(lambda _: rep, tree)
    return LoopState(
        agent=whole(state.agent),
        env=per_env(state.env),
        last=per_env(state.last),
        policy=per_env(state.policy),
        ep_return=split,
        replay=state.replay.replace(data=per_env(state.replay.data), head=rep, size=rep),
        key=rep,
    )


def init_state(
    env: Environment,
    agent: Agent,
    key: jax.Array,
    *,
    num_envs: int,
    capacity: int,
    seq_len: int,
    memory_fraction: float,
    mesh: Mesh,
) -> LoopState:
    """A fresh loop state, made on the mesh by one jitted program (replay allocated after a
    memory check). Every process of a multi-process run computes the same state from the same
    `key` and keeps only its own shards: nothing is made whole on one device and then split,
    and no value is checked or sent across processes (`jax.device_put` onto devices of other
    processes would all-gather every leaf to check that the processes agree)."""
    impl = jax.random.key_impl(key)
    key_data = np.asarray(jax.random.key_data(key))

    def make() -> LoopState:
        k_agent, k_env, k_loop = jax.random.split(jax.random.wrap_key_data(key_data, impl=impl), 3)
        env_state, ts = jax.vmap(env.reset)(jax.random.split(k_env, num_envs))
        buf = replay.init(
            replay_spec(env),
            capacity=capacity,
            num_envs=num_envs,
            seq_len=seq_len,
            max_memory_fraction=memory_fraction,
        )
        return LoopState(
            agent=agent.init(k_agent),
            env=env_state,
            last=ts,
            policy=agent.initial_carry(num_envs),
            ep_return=jnp.zeros((num_envs,), jnp.float32),
            replay=buf,
            key=k_loop,
        )

    return jax.jit(make, out_shardings=shardings(jax.eval_shape(make), mesh))()


def make_collect(
    env: Environment,
    agent: Agent,
    *,
    num_envs: int,
    steps: int,
    curriculum: dict[str, Any] | None,
    mesh: Mesh,
    state_shardings: LoopState,
):
    """Jitted collect(state, env_steps) -> (state, stats); `state` is donated. `curriculum`
    (Tetris only): the start boards of the episodes that restart (`experiments.lib.tetris`)."""
    split = NamedSharding(mesh, P("data"))
    is_tetris = isinstance(env, tetris.Tetris)
    metrics = dict(env.episode_metrics)

    def collect(state: LoopState, env_steps: jax.Array):
        key, k_board, k_roll = jax.random.split(state.key, 3)
        boards = None
        if curriculum is not None:
            top = tetris.max_curriculum_rows(
                env_steps, max_rows=curriculum["max_rows"], anneal_steps=curriculum["anneal_steps"]
            )
            boards = tetris.curriculum_boards(
                k_board, num_envs, env.height, env.width, top, curriculum["holes_per_row"]
            )
            boards = jax.lax.with_sharding_constraint(boards, split)

        def body(c: Collecting, _):
            # Keys as in tetris_jax.rollout.step: one split per step, its second for the policy.
            k_next, k_act = jax.random.split(c.key)
            action, carry, _ = act(c.carry, c.states, c.ts, k_act)
            args = (c.states, action) if boards is None else (c.states, action, boards)
            states, ts = jax.vmap(env.auto_reset_step)(*args)
            last = c.ts
            row = policies.observation_fields(last.observation)
            row.update(
                action=action,
                reward=last.reward,
                is_first=last.is_first,
                is_last=last.is_last,
                is_terminal=last.is_terminal,
            )
            ret = jnp.where(ts.is_first, 0.0, c.ep_return + ts.reward)
            end = ts.is_last
            ended = lambda x: jnp.sum(jnp.where(end, x, 0).astype(jnp.float32))
            stats = {"episodes": ended(1), "ep_return_sum": ended(ret)}
            for name, k in metrics.items():
                stats[f"ep_{name}_sum"] = ended(ts.metrics[k])
            if is_tetris:
                stats.update(tetris.collect_stats(ts, end))
            stats["reward"] = jnp.sum(ts.reward)
            return Collecting(states, ts, carry, k_next, ret), (row, stats)

        act = policies.agent_policy(agent, state.agent.params, "sample")
        start = Collecting(state.env, state.last, state.policy, k_roll, state.ep_return)
        c, (rows, stats) = jax.lax.scan(body, start, None, steps)
        rows = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), rows)  # (T, N, ...) -> (N, T, ...)
        buf = replay.add_sequence(state.replay, rows)
        stats = {k: (jnp.max(v) if k.endswith("_max") else jnp.sum(v)) for k, v in stats.items()}
        if boards is not None:
            stats["curriculum_rows"] = top.astype(jnp.float32)
        stats["replay_fill"] = replay.fill_fraction(buf)
        new = state.replace(
            env=c.states, last=c.ts, policy=c.carry, ep_return=c.ep_return, replay=buf, key=key
        )
        return new, stats

    return jax.jit(collect, donate_argnums=0, out_shardings=(state_shardings, None))


def make_train(
    agent: Agent,
    *,
    batch_size: int,
    seq_len: int,
    num_updates: int,
    mesh: Mesh,
    state_shardings: LoopState,
):
    """Jitted train(state) -> (state, mean metrics) doing `num_updates` updates; donated."""
    split = NamedSharding(mesh, P("data"))

    def train(state: LoopState):
        def body(carry, _):
            agent_state, key = carry
            key, k_sample, k_train = jax.random.split(key, 3)
            batch = replay.sample(state.replay, k_sample, batch_size=batch_size, seq_len=seq_len)
            batch = jax.lax.with_sharding_constraint(batch, jax.tree.map(lambda _: split, batch))
            agent_state, metrics = agent.train_step(agent_state, batch, k_train)
            return (agent_state, key), metrics

        (agent_state, key), metrics = jax.lax.scan(
            body, (state.agent, state.key), None, length=num_updates
        )
        metrics = jax.tree.map(jnp.mean, metrics)
        return state.replace(agent=agent_state, key=key), metrics

    return jax.jit(train, donate_argnums=0, out_shardings=(state_shardings, None))


def plan_updates(config) -> tuple[int, float]:
    """(updates per train call, train calls per iteration as a float) for the train ratio."""
    env_steps = config.num_envs * config.collect_steps
    per_iter = env_steps * config.train_ratio / (config.batch_size * config.seq_len)
    chunk = max(1, int(round(per_iter))) if per_iter >= 1 else 1
    return chunk, per_iter / chunk


def make_step_fns(config, env: Environment, agent: Agent, state: LoopState, mesh: Mesh):
    """The jitted collect and train functions of a config: (collect, train, updates per train
    call, train calls per iteration). Only entry points read `config`; this is their shared
    wiring."""
    shard = shardings(state, mesh)
    curriculum = dict(config.curriculum) if config.curriculum.enabled else None
    collect = make_collect(
        env,
        agent,
        num_envs=config.num_envs,
        steps=config.collect_steps,
        curriculum=curriculum,
        mesh=mesh,
        state_shardings=shard,
    )
    chunk, calls = plan_updates(config)
    train = make_train(
        agent,
        batch_size=config.batch_size,
        seq_len=config.seq_len,
        num_updates=chunk,
        mesh=mesh,
        state_shardings=shard,
    )
    return collect, train, chunk, calls
