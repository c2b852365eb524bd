"""What a user watches during training: the progress line, compile announcements, the rates
and the dashboard PNG (no compilation)."""

from __future__ import annotations

import json
import os
import time

from experiments.lib import monitor, trainer


def test_progress_line_says_what_the_percentage_is_of():
    row = {
        "env_steps": 50,
        "env_steps_per_s": 10.0,
        "updates_per_s": 1.0,
        "updates": 5,
        "episodes": 2,
        "ep_lines": 1.5,
    }
    assert "50.0% of 100 env steps" in monitor.progress_line(row, 100)
    # With a time budget the bar follows whichever is further along, and says so.
    row["wall_s"] = 45 * 60.0
    line = monitor.progress_line(row, 1000, budget_s=60 * 60.0)
    assert "75.0% of 60 min" in line and "45.0/60 min" in line, line
    assert "[###############.....]" in line
    line = monitor.progress_line(row, 100, budget_s=3600 * 10)
    assert "50.0% of 100 env steps" in line and "45.0/600 min" in line, line
    assert "of 0.5 min" in monitor.progress_line({**row, "wall_s": 20.0}, 10**6, budget_s=30.0)


def test_first_call_of_a_step_function_is_announced_and_left_out_of_the_rates():
    t = trainer.Trainer.__new__(trainer.Trainer)  # Only what `call` uses: no env, no compile.
    lines = []
    t.log, t.c, t.state = lines.append, trainer.Counters(env_steps=64), ()
    t.compiled, t.paused_s = set(), 0.0

    def slow(x):
        time.sleep(0.2)
        return x + 1

    assert t.call("collect", slow, 1) == 2
    assert lines[0] == "env step 64: compiling collect..."
    assert lines[1].startswith("compiled collect in 0.") and lines[1].endswith(" s"), lines
    assert t.paused_s >= 0.2
    t.call("collect", slow, 1)  # Compiled already: not announced, not paused.
    assert len(lines) == 2 and t.paused_s < 0.4


def test_rates_leave_out_paused_seconds():
    # 10 s of wall-clock, 4 of them compiling: 600 env steps and 12 updates in 6 s.
    env_rate, update_rate = trainer.window_rates((100.0, 1000, 30, 1.0), 110.0, 1600, 42, 5.0)
    assert (env_rate, update_rate) == (100.0, 2.0)


def _run_folder(tmp_path, config, eval_result=None):
    run = tmp_path / "lines_only_q60"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config))
    rows = []
    for i in range(1, 41):
        row = {
            "env_steps": 256 * i,
            "updates": 16 * i,
            "wall_s": 3.0 * i,
            "env_steps_per_s": 85.0 + i % 3,
            "updates_per_s": 5.0,
            "ep_lines": 0.5 * i,
            "ep_pieces": 3.0 * i,
            "ep_length": 3.0 * i,
            "ep_return": 0.5 * i,
            "replay_fill": i / 40,
            "lines_total": 10 * i,
            "curriculum_rows": 8 - i / 5,
        }
        if i > 4:
            row.update(
                {
                    "loss/world_model": 5.0 / i,
                    "loss/policy": -0.1,
                    "loss/value": 1.0,
                    "actor/entropy": 1.5,
                }
            )
        rows.append(row)
    for i in (10, 20, 30, 40):
        monitor.append_eval(
            str(run),
            {
                "env_steps": 256 * i,
                "eval/lines_mean": 0.1 * i,
                "eval/lines_ci95_low": 0.05 * i,
                "eval/lines_ci95_high": 0.2 * i,
                "updates": 16 * i,
                "wall_s": 3.0 * i,
            },
        )
    if eval_result is not None:
        (run / "eval_10240.json").write_text(json.dumps(eval_result))
    return run, rows


def test_dashboard_panels_do_not_repeat_each_other(debug_config):
    from experiments.lib import runs

    config = runs.to_plain(debug_config)
    config["env"].update(reward_mode="lines_only", action_mode="placement")
    keys = [k for k, _ in monitor.dashboard_panels(config, [{"loss/qval": 1.0}])]
    assert keys[0] == monitor.EVAL_PANEL and "loss/qval" in keys
    # lines_only: the return is the line count; placement: a step is a piece; the cumulative
    # line count is the per-episode one summed.
    assert not {"ep_return", "ep_length", "lines_total"} & set(keys), keys
    assert len(keys) == len(set(keys))
    config["env"].update(reward_mode="standard", action_mode="direct")
    keys = [k for k, _ in monitor.dashboard_panels(config, [])]
    assert {"ep_return", "ep_length"} <= set(keys) and "loss/qval" not in keys


def test_dashboard_title_references_and_png(tmp_path, debug_config):
    from experiments.lib import runs

    config = runs.to_plain(debug_config)
    cap, width = config["eval_max_pieces"], config["env"]["width"]
    other_cap = {
        "max_pieces": cap + 1,
        "episodes": 8,
        "rows": [{"policy": "random", "stats": {"games": 8, "lines_mean": 9.0}}],
    }
    run, rows = _run_folder(tmp_path, config, other_cap)
    # Only the cap is known (the evaluation in the folder is under another cap).
    assert monitor.reference_lines(str(run), config) == [
        (f"most possible in {cap} pieces", float(4 * cap // width))
    ]
    same_cap = {
        "max_pieces": cap,
        "episodes": 8,
        "rows": [
            {"policy": "agent (greedy)", "stats": {"games": 8, "lines_mean": 3.0}},
            {"policy": "random", "stats": {"games": 8, "lines_mean": 0.25}},
            {"policy": "dellacherie", "stats": {"games": 8, "lines_mean": 19.5}},
        ],
    }
    (run / "eval_20480.json").write_text(json.dumps(same_cap))
    refs = monitor.reference_lines(str(run), config)
    assert refs[1:] == [("random (8 games)", 0.25), ("dellacherie (8 games)", 19.5)]

    evals = monitor.read_jsonl(str(run / monitor.EVALS_JSONL))
    title = monitor.dashboard_title(str(run), config, rows, evals)
    head, where = title.split("\n")
    assert head.startswith("lines_only_q60: standard reward, placement mode, 6x8 board, 7bag")
    assert "agent tiny" in head and "seed 0" in head
    assert where == ("env step 10,240, 640 updates, 2.0 min; last evaluation 4 lines/game, best 4")

    path = monitor.write_dashboard(str(run), rows)
    assert os.path.getsize(path) > 10_000
    # Without config.json or evaluations it still draws (panels say "no data yet").
    bare = tmp_path / "bare"
    bare.mkdir()
    assert os.path.getsize(monitor.write_dashboard(str(bare), rows[:1])) > 1000
