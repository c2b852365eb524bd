"""Slow learning test: `experiments/cartpole.py` learns gymnax CartPole-v1.

12,288 env steps at the config's train ratio 512 (6,144 updates of 16 x 64 steps; 6-10 minutes
on 2 CPU cores), no wall-clock budget; then 32 greedy episodes of at most 500 steps must
return far more than random play on the same seeds (~22). Its first run (2026-12-01, CPU
shared, ~8 minutes): greedy 406.4, random 24.2.
Run with `pytest -m slow tests/experiments/test_learning_cartpole.py`.
"""

from __future__ import annotations

import jax
import pytest

from experiments import cartpole
from experiments.lib import episodes, runs, trainer


@pytest.mark.slow
def test_cartpole_is_learned(tmp_path):
    c = cartpole.get_config()
    c.total_env_steps = 12_288
    c.train_minutes = 0.0
    c.eval_episodes = 0
    c.log_every = 10
    workdir = str(tmp_path / "run")
    assert trainer.run(c, workdir, log=print)["stopped"] == "end"

    # The final checkpoint, loaded as experiments.evaluate loads it (the run's own config.json).
    _, env, agent, params, _ = runs.load_checkpoint(workdir, None, None)
    key = jax.random.key(7)
    trained = episodes.stats(
        episodes.play_agent(env, agent, params, key, num_episodes=32, max_steps=500)
    )
    rand = episodes.stats(
        episodes.play_agent(env, None, None, key, num_episodes=32, max_steps=500, mode="sample")
    )
    print(f"greedy return {trained['return_mean']:.1f}; random {rand['return_mean']:.1f}")
    assert 10 < rand["return_mean"] < 40  # The baseline is what it should be.
    assert trained["return_mean"] > 300, (trained, rand)
