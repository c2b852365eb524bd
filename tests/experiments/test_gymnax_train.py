"""A gymnax env end to end through the same entry points as Tetris: `trainer.run` on a shrunk
`experiments/cartpole.py` (checkpoints, evaluations ranked by return, dashboard), then
`evaluate` on the run; and the config errors a user can make with a non-Tetris env."""

from __future__ import annotations

import json
import os

import pytest

from experiments import cartpole, evaluate
from experiments.lib import build, runs, trainer
from experiments.lib.errors import UserError


def _tiny():
    c = cartpole.get_config()
    c.num_envs, c.collect_steps = 4, 8
    c.batch_size, c.seq_len = 4, 16
    c.train_ratio = 2.0
    c.replay_capacity = 4 * 256
    c.train_start = 64
    c.total_env_steps = 4 * 8 * 6
    c.train_minutes = 0.0
    c.agent.imag_length, c.agent.bins = 4, 31
    c.eval_episodes, c.eval_max_pieces = 2, 50
    c.log_every = 2
    return c


def test_cartpole_trains_checkpoints_and_evaluates(tmp_path):
    workdir = str(tmp_path / "run")
    summary = trainer.run(_tiny(), workdir, log=print)
    assert summary["stopped"] == "end"
    with open(os.path.join(workdir, "evals.jsonl")) as f:
        ev = json.loads(f.readlines()[-1])
    assert 0 < ev["eval/return_mean"] <= 50 and "eval/lines_mean" not in ev
    assert os.path.exists(os.path.join(workdir, "dashboard.png"))
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert any("ep_return" in r and "ep_length" in r for r in rows)
    assert not any("ep_lines" in r or "lines_total" in r for r in rows)
    result = evaluate.evaluate(
        workdir, episodes=3, max_pieces=40, baselines=("random", "bcts"), gif=False, log=print
    )
    names = [r["policy"] for r in result["rows"]]
    assert names == ["agent (greedy)", "random"]
    s = result["rows"][0]["stats"]
    assert s["episodes"] == 3 and s["return_ci95_low"] <= s["return_mean"] <= s["return_max"]
    # The same params and seed play the same episodes.
    again = evaluate.evaluate(workdir, episodes=3, max_pieces=40, baselines=(), gif=False)
    assert again["rows"][0]["stats"] == s
    with pytest.raises(UserError, match="experiments.watch works on Tetris runs only"):
        runs.load_checkpoint(workdir, None, None, tetris_only="experiments.watch")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("env.suite", "atari", r"config.env.suite: got 'atari'; allowed: tetris, gymnax"),
        ("env.name", "CartPole-v9", r"config.env.name: got 'CartPole-v9'"),
        ("agent.qhead", True, r"config.agent.qhead: Tetris only"),
        ("curriculum.enabled", True, r"config.curriculum.enabled: Tetris only"),
        ("wm_episodes", 2, r"config.wm_episodes: Tetris only"),
    ],
)
def test_bad_gymnax_configs_are_refused_naming_the_field(field, value, message):
    c = cartpole.get_config()
    group, name = field.split(".") if "." in field else (None, field)
    (c[group] if group else c)[name] = value
    with pytest.raises(UserError, match=message):
        build.check_config(build.resolve(c), 1)


def test_a_run_saved_before_env_suite_resumes_without_a_config_change(tmp_path):
    from experiments import debug

    current = runs.to_plain(debug.get_config())
    saved = json.loads(json.dumps(current))
    del saved["env"]["suite"], saved["env"]["name"]
    assert runs.config_diff(saved, current) == []
    saved["env"]["suite"] = "gymnax"
    assert runs.config_diff(saved, current) == ["env.suite: gymnax -> tetris"]


def test_your_own_env_trains_through_suite_import(tmp_path):
    """The README's Corridor, imported by name, through the same trainer and evaluation."""
    from dreamer_jax import envs
    from tests.dreamer.corridor_env import Corridor

    envs.check_env(Corridor())
    c = _tiny()
    c.env.suite, c.env.name = "import", "tests.dreamer.corridor_env:Corridor"
    workdir = str(tmp_path / "run")
    assert trainer.run(c, workdir, log=print)["stopped"] == "end"
    result = evaluate.evaluate(workdir, episodes=2, max_pieces=30, baselines=("random",), gif=False)
    assert [r["stats"]["episodes"] for r in result["rows"]] == [2, 2]
    c.env.name = "tests.dreamer.corridor_env:Nothing"
    with pytest.raises(UserError, match="config.env.name: got .*cannot import it"):
        build.check_config(build.resolve(c), 1)
