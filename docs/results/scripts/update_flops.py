"""FLOPs per part of the board agent's update (XLA cost analysis; compiles, runs nothing).

    PYTHONPATH=. python docs/results/scripts/update_flops.py

Session 17 ran it niced beside two other processes under `timeout 600`: the train step's compile
took 4 min 20 s there and the run ended after the first three lines (train step 21.336 GFLOP,
model step 3.903, model loss grad 3.898).
"""

import jax
import jax.numpy as jnp

from experiments import board_features_pool
from experiments.lib import build


def flops(f, *args):
    ca = jax.jit(f).lower(*args).compile().cost_analysis()
    ca = ca[0] if isinstance(ca, list) else ca
    return ca.get("flops", float("nan")) / 1e9


def main():
    config = build.resolve(board_features_pool.get_config())
    env = build.make_env(config)
    agent = build.make_agent(config, env)
    c = agent.config
    state = jax.eval_shape(agent.init, jax.random.key(0))
    spec = env.observation_spec()
    B, T = c.batch_size, c.batch_length
    sds = jax.ShapeDtypeStruct
    batch = {k: sds((B, T, *v.shape), v.dtype) for k, v in spec.items()}
    for k, dt in (("action", jnp.int32), ("reward", jnp.float32)):
        batch[k] = sds((B, T), dt)
    for k in ("is_first", "is_last", "is_terminal"):
        batch[k] = sds((B, T), bool)
    key = jax.random.key(1)
    n = B // c.board_model_steps
    half = jax.tree.map(lambda x: sds((n, *x.shape[1:]), x.dtype), batch)
    ml = lambda p, b: agent._world_loss(agent._model_loss(p, b)[0])  # noqa: E731
    loss = lambda p, s, b, k: agent._loss(p, s, b, k)[0]  # noqa: E731
    parts = (
        ("train step", agent._train_step, (state, batch, key)),
        ("model step", agent._model_step, (state, half)),
        ("model loss grad", jax.grad(ml), (state.params, half)),
        ("imagination fwd", agent._imagine, (state.params, state.slow_critic, half, key)),
        ("full loss grad", jax.grad(loss), (state.params, state, half, key)),
    )
    for name, f, args in parts:
        print(f"{name:16s} {flops(f, *args):8.3f} GFLOP", flush=True)


if __name__ == "__main__":
    main()
