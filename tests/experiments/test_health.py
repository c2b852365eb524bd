"""Health checks and small helpers of the training loop (no compilation)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from experiments import common, loop, monitor, runner


def test_nonfinite_metric_is_named():
    ok = {"loss/total": np.float32(1.0), "param_norm": np.float32(3.0)}
    assert runner._finite([ok, ok]) is None
    assert runner._finite([ok, {**ok, "param_norm": np.float32(math.inf)}]) == "param_norm"
    assert runner._finite([{**ok, "loss/total": np.float32(math.nan)}]) == "loss/total"


def test_config_diff_lists_fields(debug_config):
    a = common.to_plain(debug_config)
    debug_config.seed = 3
    debug_config.env.width = 7
    diff = common.config_diff(a, common.to_plain(debug_config))
    assert diff == ["env.width: 6 -> 7", "seed: 0 -> 3"]
    # A run saved before an agent option was retired resumes without a change when it was off.
    a["agent"]["repval_full"] = None
    assert common.config_diff(a, common.to_plain(debug_config)) == diff
    a["agent"]["repval_full"] = True
    assert "agent.repval_full: True -> <absent>" in common.config_diff(
        a, common.to_plain(debug_config)
    )


def test_train_ratio_plan(debug_config):
    assert loop.plan_updates(debug_config) == (1, 1.0)
    debug_config.train_ratio = 0.5  # One update every 4 iterations.
    assert loop.plan_updates(debug_config) == (1, 0.25)
    debug_config.train_ratio = 16.0
    assert loop.plan_updates(debug_config) == (8, 1.0)


def test_curriculum_anneals_to_empty():
    import jax

    rows = [int(loop.max_curriculum_rows(s, max_rows=8, anneal_steps=100)) for s in (0, 50, 100)]
    assert rows == [8, 4, 0]
    boards = loop.curriculum_boards(jax.random.key(0), 16, 20, 10, 5, 1)
    filled = np.asarray(boards).sum(-1)  # Cells per row.
    assert set(np.unique(filled)) <= {0, 9} and not filled[:, :15].any()


def test_progress_line():
    row = {"env_steps": 50, "env_steps_per_s": 10.0, "updates_per_s": 1.0, "updates": 5,
           "episodes": 2, "ep_lines": 1.5}  # fmt: skip
    assert "50.0%" in monitor.progress_line(row, 100)
    # With a time budget the bar follows whichever is further along.
    row["wall_s"] = 45 * 60.0
    line = monitor.progress_line(row, 1000, budget_s=60 * 60.0)
    assert "75.0%" in line and "45.0/60 min" in line, line
    assert "50.0%" in monitor.progress_line(row, 100, budget_s=3600 * 10)


@pytest.mark.parametrize("name", ["lines_only", "standard", "direct", "debug"])
def test_shipped_configs_validate(name):
    """Every config file users run passes the up-front checks and builds its env and agent."""
    path = os.path.join(os.path.dirname(common.__file__), f"{name}.py")
    config = common.resolve(common.load_config_file(path))
    common.check_config(config, 1)
    env = common.make_env(config)
    agent = common.make_agent(config, env)
    assert agent.num_actions == env.num_actions
    assert (agent.nets.qnet is not None) == bool(config.agent.qhead)


def test_qhead_without_placement_features_is_refused():
    path = os.path.join(os.path.dirname(common.__file__), "direct.py")
    config = common.resolve(common.load_config_file(path))
    config.agent.qhead = True
    with pytest.raises(common.UserError, match=r"config.agent.qhead: got True.*placement_features"):
        common.check_config(config, 1)


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

    from experiments import play
    from tetris_jax import Tetris

    env = Tetris(height=8, width=6, action_mode="direct", queue_size=1)
    games = play.play_baseline(env, "random", jax.random.key(0), num_games=4, max_pieces=3)
    assert games.lines.shape == (4,) and np.all(games.pieces <= 3)
    assert games.pieces.sum() > 0  # Random moves under gravity lock pieces.
    assert play.play_baseline(env, "dellacherie", jax.random.key(0), num_games=4,
                              max_pieces=3) is None  # fmt: skip


def test_saved_config_loads_with_its_values(debug_config):
    saved = common.to_plain(debug_config)
    saved["env"]["width"] = 7
    config = common.config_from_json(saved)
    assert common.to_plain(config) == saved
    saved["extra"] = {"n": 2}  # A config file may add fields of its own: kept.
    assert common.config_from_json(saved).extra.n == 2
    assert config.env.width == 7 and config.agent_preset == debug_config.agent_preset


def test_saved_config_must_have_every_field(debug_config):
    """A config.json saved before a field existed is refused, naming the field: only the user
    knows the value that reproduces that run (committed exports have every field)."""
    saved = common.to_plain(debug_config)
    del saved["env"]["placement_features"], saved["agent"]["qhead"]
    with pytest.raises(common.UserError, match=r"lacks agent.qhead, env.placement_features"):
        common.config_from_json(saved)


def test_saved_config_with_a_retired_field(debug_config):
    """A field the code no longer has loads when null (an unset override, the option off) and
    is refused, naming it, when set."""
    saved = common.to_plain(debug_config)
    saved["agent"]["repval_full"] = None
    assert "repval_full" not in common.config_from_json(saved).agent
    saved["agent"]["repval_full"] = True
    with pytest.raises(common.UserError, match=r"sets agent.repval_full=True, which dreamer"):
        common.config_from_json(saved)


@pytest.mark.parametrize("export", ["standard_cpu60f_best", "standard_q60"])
def test_committed_params_load(export):
    """The params committed with docs/RESULTS.md load with the networks their run used (runs
    saved before the Q head existed have none), so its reproduction commands keep working."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "results", "params", export)
    config, _, agent, params, _ = common.load_checkpoint(None, path, None)
    assert ("qnet" in params) == bool(config.agent.qhead) == export.endswith("q60")
    assert agent.nets.qnet is not None or "qnet" not in params
