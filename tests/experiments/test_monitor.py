"""What a user watches during training: the progress line, compile announcements and the
rates (no compilation)."""

from __future__ import annotations

import time

from experiments.lib import monitor, trainer


def test_progress_line_says_what_the_percentage_is_of():
    row = {"env_steps": 50, "env_steps_per_s": 10.0, "updates_per_s": 1.0, "updates": 5,
           "episodes": 2, "ep_lines": 1.5}  # fmt: skip
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
