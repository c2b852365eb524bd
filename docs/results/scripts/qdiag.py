"""Session-5 diagnostic: the one-imagined-step Q(s, a) = r(s') + c(s') V(s') of every placement
on a checkpoint (`one_step_values`, which dreamer_jax's retired `all_actions` option used), its
noise over sampled latents of the imagined next state, and its agreement with the best one-step
reward (docs/RESULTS.md).

    PYTHONPATH=. python docs/results/scripts/qdiag.py runs/standard_cpu60aa 110848
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

from dreamer_jax import codec, model, outs, rssm
from experiments.lib import runs
from experiments.lib.policies import policy_obs

GAMES, STEPS, SAMPLES = 16, 30, 8


def one_step_values(nets, wm, critic, start, afeat, key, num_actions, bins):
    """Q(s, a) = r(s') + c(s') V(s') for every action a of every state s (N, ...) -> (N, A),
    with s' one imagined step after a (its features `afeat` (N, A, F) go with it)."""
    N, A = start.deter.shape[0], num_actions
    states = jax.tree.map(lambda x: jnp.repeat(x, A, 0), start)
    onehot = jax.nn.one_hot(jnp.tile(jnp.arange(A), N), A, dtype=jnp.float32)
    chosen = None if afeat is None else afeat.reshape((N * A, -1))
    nxt, _ = nets.rssm.apply(
        wm["rssm"], states, model.action_input(onehot, chosen), key, method=rssm.RSSM.img_step
    )
    feat = rssm.features(nxt)
    rew = outs.twohot_mean(nets.rew.apply(wm["rew"], feat), bins)
    con = jax.nn.sigmoid(nets.con.apply(wm["con"], feat)[..., 0])
    value = outs.twohot_mean(nets.critic.apply(critic, feat), bins)
    return jax.lax.stop_gradient(rew + con * value).reshape((N, A))


def main(workdir: str, step: int) -> None:
    _, env, agent, params, _ = runs.load_checkpoint(workdir, None, step)
    bins = outs.twohot_bins(agent.config.bins)
    A, nets = agent.num_actions, agent.nets
    spec = dict(agent.obs_spec)
    afk, mk = codec.action_features_field(spec), codec.mask_field(spec)

    def q_samples(state, afeat, key):  # (SAMPLES, GAMES, A)
        keys = jax.random.split(key, SAMPLES)
        return jnp.stack(
            [
                one_step_values(nets, params, params["critic"], state, afeat, k, A, bins)
                for k in keys
            ]
        )

    def rewards(s):  # True one-step reward of every placement.
        return jax.vmap(lambda a: env.step(s, a)[1].reward)(jnp.arange(A))

    @jax.jit
    def run(key):
        states, ts = jax.vmap(env.reset)(jax.random.split(key, GAMES))

        def body(c, k):
            states, ts, carry, alive = c
            k1, k2 = jax.random.split(k)
            obs = policy_obs(ts)
            action, carry = agent.policy(params, carry, obs, k1, "greedy")
            q = q_samples(carry.state, obs[afk].astype(jnp.float32), k2)
            r = jax.vmap(rewards)(states)
            out = (q, r, obs[mk], alive, action)
            states, ts = jax.vmap(env.step)(states, action)
            return (states, ts, carry, alive & ~ts.is_last), out

        init = (states, ts, agent.initial_carry(GAMES), jnp.ones((GAMES,), bool))
        return jax.lax.scan(body, init, jax.random.split(key, STEPS))[1]

    q, r, mask, alive, act = (np.asarray(x) for x in run(jax.random.key(0)))
    q_mean, q_std = q.mean(1), q.std(1)  # Over samples: (STEPS, GAMES, A).
    rows = []
    for t in range(STEPS):
        for g in range(GAMES):
            m = mask[t, g]
            if not alive[t, g] or m.sum() < 2:
                continue
            rr = np.where(m, r[t, g], -np.inf)
            best = rr.max() - 1e-6
            rows.append(
                (
                    q_std[t, g][m].mean(),
                    q_mean[t, g][m].std(),
                    rr[np.argmax(np.where(m, q_mean[t, g], -np.inf))] >= best,
                    rr[act[t, g]] >= best,
                    r[t, g][m].std(),
                )
            )
    w, a, agree_q, agree_act, r_std = np.mean(np.array(rows, np.float64), 0)
    print(f"states {len(rows)}")
    print(f"std of Q over sampled latents (same action): {w:.2f}")
    print(f"std over actions of the {SAMPLES}-sample mean Q: {a:.2f}")
    print(f"best mean-Q action has the best one-step reward: {agree_q:.0%}")
    print(f"greedy actor's action has the best one-step reward: {agree_act:.0%}")
    print(f"std over actions of the true one-step reward: {r_std:.2f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
