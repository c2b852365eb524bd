"""experiments.calibration: the critic's value on real states against the realised return."""

import jax
import numpy as np

from experiments import calibration
from experiments.lib import build


def test_realised_returns_and_untrained_critic(debug_config):
    """lines_only rewards are the lines cleared, so with gamma close to 1 the realised return
    from the first step is just under the lines of the game; an untrained critic (zero output
    kernel) gives every state the same value."""
    debug_config.env.reward_mode = "lines_only"
    env = build.make_env(debug_config, evaluation=True)
    agent = build.make_agent(debug_config, env)
    params = agent.init(jax.random.key(0)).params
    games, cap = 32, 60
    result = calibration.calibration(
        env, agent, params, jax.random.key(1), games=games, max_pieces=cap, mode="sample"
    )
    rows = result["rows"]
    assert rows[0]["t"] == 0 and rows[0]["games_alive"] == games
    alive = [r["games_alive"] for r in rows]
    assert alive == sorted(alive, reverse=True)
    np.testing.assert_allclose([r["value"] for r in rows], result["value"], rtol=1e-5)
    # Replaying the same games' lines: the same key gives the same games.
    out = calibration._rollout_fn(env, agent, games, cap, "sample")(params, jax.random.key(1))
    lines = np.asarray(out[1]).sum(0)
    gamma = 1.0 - 1.0 / agent.config.horizon
    assert lines.mean() > 0
    assert gamma**cap * lines.mean() <= rows[0]["return"] <= lines.mean() + 1e-6
    assert 1 <= result["length"] <= cap
