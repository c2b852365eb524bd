"""Is the critic right? Its value on the real states of real games against the discounted
return that actually followed:

    python -m experiments.calibration --workdir=DIR [--step=N] [--games=64] [--mode=sample]

(or `--checkpoint=PATH` for a params-only export). Plays `--games` games from the empty board
under the evaluation rules with the agent's policy (sampled by default: the critic estimates
the value of the policy it is trained with), and prints, at several game steps t, the mean
critic value of the posterior state that chooses the t-th action and the mean realised return
G_t = sum_k gamma^k r_{t+k+1}, gamma = 1 - 1/horizon (as the critic is trained). Games still
going at `--max_pieces` are cut there, which makes their G_t too low near the cut.
A world model that rarely imagines the game ending shows up here as V >> G.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from dreamer_jax import outs, rssm
from experiments.lib import policies
from tetris_jax import rollout

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defined only when run as a program: `calibration` is imported beside other tools' flags."""
    from experiments.lib.cli import define_checkpoint_flags

    define_checkpoint_flags()
    flags.DEFINE_integer("games", 64, "Games played in parallel.")
    flags.DEFINE_integer("max_pieces", 500, "Steps per game at most.")
    flags.DEFINE_enum("mode", "sample", ["sample", "greedy"], "The agent's policy.")
    flags.DEFINE_integer("seed", 3, "Seed of the games and the sampled actions.")


REPORT_STEPS = (0, 5, 10, 20, 40, 80, 160, 320)


@functools.lru_cache(maxsize=4)
def _rollout_fn(env, agent, games: int, steps: int, mode: str):
    bins = outs.twohot_bins(agent.config.bins)

    def run(params, key):
        act = policies.agent_policy(agent, params, mode)
        _, tr = rollout.trace(
            env, act, key, num_games=games, steps=steps, carry=agent.initial_carry(games)
        )
        # The critic's value of the posterior state that chose each action (the carry after it).
        feat = rssm.features(tr.info.state)
        value = outs.twohot_mean(agent.nets.critic.apply(params["critic"], feat), bins)
        return value, jnp.where(tr.going, tr.next_ts.reward, 0.0), tr.going

    return jax.jit(run)


def calibration(
    env, agent, params: Any, key: jax.Array, *, games: int, max_pieces: int, mode: str = "sample"
) -> dict[str, Any]:
    """{"rows": [{"t", "games_alive", "value", "return"}], "value", "return", "length"}: the
    critic's mean value and the mean realised discounted return, at each of REPORT_STEPS that
    some game reached and over all states of all games."""
    out = _rollout_fn(env, agent, games, max_pieces, mode)(params, key)
    value, reward, alive = (np.asarray(x) for x in out)
    gamma = 1.0 - 1.0 / agent.config.horizon
    ret = np.zeros_like(reward)
    acc = np.zeros(games, np.float64)
    for t in range(max_pieces - 1, -1, -1):
        acc = reward[t] + gamma * acc * alive[t]
        ret[t] = acc
    rows = [
        {
            "t": t,
            "games_alive": int(alive[t].sum()),
            "value": float(value[t][alive[t]].mean()),
            "return": float(ret[t][alive[t]].mean()),
        }
        for t in REPORT_STEPS
        if t < max_pieces and alive[t].any()
    ]
    return {
        "rows": rows,
        "value": float(value[alive].mean()),
        "return": float(ret[alive].mean()),
        "length": float(alive.sum(0).mean()),
    }


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from absl import logging

    from experiments.lib import runs
    from experiments.lib.errors import UserError

    logging.set_verbosity(logging.WARNING)
    try:
        if FLAGS.games < 1 or FLAGS.max_pieces < 1:
            raise UserError("--games and --max_pieces must be >= 1")
        _, env, agent, params, step = runs.load_checkpoint(
            FLAGS.workdir, FLAGS.checkpoint, FLAGS.step, tetris_only="experiments.calibration"
        )
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    result = calibration(
        env,
        agent,
        params,
        jax.random.key(FLAGS.seed),
        games=FLAGS.games,
        max_pieces=FLAGS.max_pieces,
        mode=FLAGS.mode,
    )
    print(
        f"step {step}: {FLAGS.games} games ({FLAGS.mode}), mean length {result['length']:.1f} "
        f"steps; gamma = 1 - 1/{agent.config.horizon}"
    )
    print("| t | games alive | critic value | realised return |\n|---:|---:|---:|---:|")
    for r in result["rows"]:
        print(f"| {r['t']} | {r['games_alive']} | {r['value']:.2f} | {r['return']:.2f} |")
    print(f"| all | | {result['value']:.2f} | {result['return']:.2f} |")


if __name__ == "__main__":
    define_flags()
    app.run(main)
