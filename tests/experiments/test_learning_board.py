"""Slow learning test: the board world model learns Tetris on a small board from the board alone.

`experiments/lines_only.py` (lines_only reward, no hand-made features, no Q head: the agent ranks
placements by the learned model's predicted lines plus the imagination critic's value of the
predicted board) on a 6 wide x 10 tall board, 7-bag, queue 5, 24,000 env steps at train ratio
32 (1,500 updates).
The greedy policy then plays 64 games on the empty board and must clear clearly more lines than
random placement on the same piece streams (random: ~0.4 lines/game), and its world model must
predict the next board exactly on a good share of the steps of its own games.
Run with `pytest -m slow tests/experiments/test_learning_board.py`.
"""

from __future__ import annotations

import jax
import pytest

from experiments import lines_only
from experiments.lib import play, runs, trainer
from experiments.lib import world_model as wm


@pytest.mark.slow
def test_board_model_agent_beats_random_on_small_board(tmp_path):
    c = lines_only.get_config()
    c.env.height, c.env.width = 10, 6
    c.env.max_steps = 200
    c.curriculum.enabled = False
    c.num_envs, c.collect_steps = 16, 8
    c.batch_size = 16
    c.replay_capacity = 16 * 4096
    c.train_start = 512
    c.total_env_steps = 24_000
    c.train_minutes = 0.0
    c.agent.warmup = 100
    c.log_every, c.eval_episodes, c.wm_episodes = 50, 0, 0
    workdir = str(tmp_path / "run")
    summary = trainer.run(c, workdir, log=print)
    assert summary["stopped"] == "end"

    # The final checkpoint, loaded as experiments.evaluate loads it (the run's own config.json).
    _, env, agent, params, _ = runs.load_checkpoint(workdir, None, None)
    key = jax.random.key(7)
    agent_games = play.play_agent(env, agent, params, key, num_games=64, max_pieces=500)
    random_games = play.play_baseline(env, "random", key, num_games=64, max_pieces=500)
    trained, rand = play.stats(agent_games), play.stats(random_games)
    report = wm.measure(agent, params, env, jax.random.key(8), episodes=8, max_pieces=100)
    one = report["open_loop"]["1"]
    print(
        f"greedy agent {trained['lines_mean']:.3f} lines/game ({trained['pieces_mean']:.1f} "
        f"pieces); random {rand['lines_mean']:.3f}; world model 1-step board exact "
        f"{one['board_exact']:.3f}, lines exact {one['lines_exact']:.3f}"
    )
    assert 0.2 < rand["lines_mean"] < 0.8  # The baseline is what it should be on this board.
    assert trained["lines_mean"] > 5 * rand["lines_mean"], (trained, rand)
    # Measured when written: 6.2 lines/game (random 0.375), one-step exact boards 39.9% on the
    # agent's own games (lines exact 76%): far from issue 12's 99%, but a model that knows
    # the game (copying the board is never right after a placement).
    copy = report["baselines"]["copy_start"]["1"]["board_exact"]
    assert one["board_exact"] >= 0.3 and one["board_exact"] > copy + 0.2, (one, copy)
