"""Health checks and small helpers of the training loop (no compilation)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

import experiments
from experiments.lib import build, loop, monitor, runs, tetris, trainer
from experiments.lib.errors import UserError


def test_nonfinite_metric_is_named():
    ok = {"loss/total": np.float32(1.0), "param_norm": np.float32(3.0)}
    assert trainer.first_non_finite([ok, ok]) is None
    bad_norm = {**ok, "param_norm": np.float32(math.inf)}
    assert trainer.first_non_finite([ok, bad_norm]) == "param_norm"
    assert trainer.first_non_finite([{**ok, "loss/total": np.float32(math.nan)}]) == "loss/total"


def test_config_diff_lists_fields(debug_config):
    a = runs.to_plain(debug_config)
    debug_config.seed = 3
    debug_config.env.width = 7
    diff = runs.config_diff(a, runs.to_plain(debug_config))
    assert diff == ["env.width: 6 -> 7", "seed: 0 -> 3"]
    # A run saved before an agent option was retired resumes without a change when it was off.
    a["agent"]["repval_full"] = None
    assert runs.config_diff(a, runs.to_plain(debug_config)) == diff
    a["agent"]["repval_full"] = True
    assert "agent.repval_full: True -> <absent>" in runs.config_diff(a, runs.to_plain(debug_config))


def test_train_ratio_plan(debug_config):
    assert loop.plan_updates(debug_config) == (1, 1.0)
    debug_config.train_ratio = 0.5  # One update every 4 iterations.
    assert loop.plan_updates(debug_config) == (1, 0.25)
    debug_config.train_ratio = 16.0
    assert loop.plan_updates(debug_config) == (8, 1.0)


def test_curriculum_anneals_to_empty():
    import jax

    rows = [int(tetris.max_curriculum_rows(s, max_rows=8, anneal_steps=100)) for s in (0, 50, 100)]
    assert rows == [8, 4, 0]
    boards = tetris.curriculum_boards(jax.random.key(0), 16, 20, 10, 5, 1)
    filled = np.asarray(boards).sum(-1)  # Cells per row.
    assert set(np.unique(filled)) <= {0, 9} and not filled[:, :15].any()


@pytest.mark.parametrize(
    "name", ["lines_only", "board", "board_features", "qhead", "standard", "direct", "debug"]
)
def test_shipped_configs_validate(name):
    """Every config file users run passes the up-front checks and builds its env and agent."""
    path = os.path.join(os.path.dirname(experiments.__file__), f"{name}.py")
    config = build.resolve(runs.load_config_file(path))
    build.check_config(config, 1)
    env = build.make_env(config)
    agent = build.make_agent(config, env)
    assert agent.num_actions == env.num_actions
    if config.agent.world_model == "board":
        assert not config.agent.qhead and not config.env.placement_features
        assert agent.config.board_features == (name == "board_features")
    else:
        assert (agent.nets.qnet is not None) == bool(config.agent.qhead)


def test_qhead_without_placement_features_is_refused():
    path = os.path.join(os.path.dirname(experiments.__file__), "direct.py")
    config = build.resolve(runs.load_config_file(path))
    config.agent.qhead = True
    with pytest.raises(UserError, match=r"config.agent.qhead: got True.*placement_features"):
        build.check_config(config, 1)


def test_curves_plot_training_and_eval_points(tmp_path):
    from experiments import curves

    run = tmp_path / "run"
    run.mkdir()
    with open(run / monitor.METRICS_JSONL, "w") as f:
        for i in range(5):
            f.write(
                json.dumps({"env_steps": 100 * i, "wall_s": 6.0 * i, "ep_lines": 0.1 * i}) + "\n"
            )
    monitor.append_eval(str(run), {"env_steps": 400, "wall_s": 24.0, "eval/lines_mean": 0.5})
    assert monitor.read_jsonl(str(run / monitor.EVALS_JSONL))[0]["eval/lines_mean"] == 0.5
    out = curves.plot([str(run)], str(tmp_path / "c.png"))
    assert os.path.getsize(out) > 1000
    with pytest.raises(ValueError, match="no metrics.jsonl"):
        curves.plot([str(tmp_path)], str(tmp_path / "d.png"))
    with pytest.raises(ValueError, match="labels"):
        curves.plot([str(run)], str(tmp_path / "e.png"), labels=["a", "b"])


def test_random_baseline_in_direct_mode():
    """Direct mode has a random-move baseline (heuristics need placement mode)."""
    import jax

    from experiments.lib import play
    from tetris_jax import Tetris

    env = Tetris(height=8, width=6, action_mode="direct", queue_size=1)
    games = play.play_baseline(env, "random", jax.random.key(0), num_games=4, max_pieces=3)
    assert games.lines.shape == (4,) and np.all(games.pieces <= 3)
    assert games.pieces.sum() > 0  # Random moves under gravity lock pieces.
    assert (
        play.play_baseline(env, "dellacherie", jax.random.key(0), num_games=4, max_pieces=3) is None
    )


def test_saved_config_loads_with_its_values(debug_config):
    saved = runs.to_plain(debug_config)
    saved["env"]["width"] = 7
    config = runs.config_from_json(saved)
    assert runs.to_plain(config) == saved
    saved["extra"] = {"n": 2}  # A config file may add fields of its own: kept.
    assert runs.config_from_json(saved).extra.n == 2
    assert config.env.width == 7 and config.agent_preset == debug_config.agent_preset


def test_saved_config_from_before_new_fields_loads(debug_config):
    """A config.json saved before a field existed (e.g. exported params) loads with that
    field's default, which keeps the old behaviour; saved values win everywhere else."""
    saved = runs.to_plain(debug_config)
    saved["env"]["width"] = 7
    del saved["env"]["placement_features"], saved["env"]["piece_reward"], saved["agent"]["qhead"]
    config = runs.config_from_json(saved)
    assert config.env.placement_features is False and config.env.piece_reward == 0.0
    assert config.agent.qhead is None  # The preset's value: off, as before the Q head.
    assert config.env.width == 7 and config.agent_preset == debug_config.agent_preset
    assert "placements" not in build.make_env(config).observation_spec()


def test_saved_config_with_a_retired_field(debug_config):
    """A field the code no longer has loads when null (an unset override, the option off) and
    is refused, naming it, when set."""
    saved = runs.to_plain(debug_config)
    saved["agent"]["repval_full"] = None
    assert "repval_full" not in runs.config_from_json(saved).agent
    saved["agent"]["repval_full"] = True
    with pytest.raises(UserError, match=r"sets agent.repval_full=True, which dreamer"):
        runs.config_from_json(saved)


@pytest.mark.parametrize("export", ["standard_cpu60f_best", "standard_q60"])
def test_committed_params_load(export):
    """The params committed with docs/RESULTS.md load with the networks their run used (runs
    saved before the Q head existed have none), so its reproduction commands keep working."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "results", "params", export)
    config, _, agent, params, _ = runs.load_checkpoint(None, path, None)
    assert ("qnet" in params) == bool(config.agent.qhead) == export.endswith("q60")
    assert agent.nets.qnet is not None or "qnet" not in params
