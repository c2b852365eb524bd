"""End to end on experiments/debug.py: train, interrupt (SIGTERM), resume, evaluate, export."""

from __future__ import annotations

import json
import os
import shutil
import signal

import pytest
from tbreader import scalar_tags

from experiments import evaluate
from experiments.lib import bench, monitor, play, trainer
from experiments.lib.errors import UserError


def _rows(workdir):
    with open(os.path.join(workdir, monitor.METRICS_JSONL)) as f:
        return [json.loads(line) for line in f]


def test_train_interrupt_resume_evaluate(tmp_path, debug_config):
    workdir = str(tmp_path / "run")
    per_iter = debug_config.num_envs * debug_config.collect_steps
    lines = []

    def interrupting_log(text):
        lines.append(text)
        if "env/s" in text and sum("env/s" in t for t in lines) == 3:  # After training began.
            os.kill(os.getpid(), signal.SIGTERM)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        first = trainer.run(debug_config, workdir, install_signals=True, log=interrupting_log)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    assert first["stopped"] == "stopped: signal", first["stopped"]
    stopped_at = first["training"]["env_steps"]
    assert 0 < stopped_at < debug_config.total_env_steps
    assert first["training"]["updates"] > 0
    assert first["training"]["checkpoints"] == [stopped_at]
    updates_at_stop = first["training"]["updates"]

    # A few rows logged after the checkpoint by a run that was killed must not duplicate.
    with open(os.path.join(workdir, monitor.METRICS_JSONL), "a") as f:
        f.write(json.dumps({"env_steps": stopped_at + per_iter, "ghost": 1}) + "\n")

    log2 = []
    second = trainer.run(debug_config, workdir, log=log2.append)
    assert any(t.startswith("resumed from") for t in log2), log2[:3]
    # Compiles are announced, then timed.
    for name in ("collect", "the train step"):
        i = log2.index(next(t for t in log2 if t.endswith(f"compiling {name}...")))
        assert log2[i + 1].startswith(f"compiled {name} in "), log2[i : i + 2]
    assert second["stopped"] == "end"
    assert second["training"]["env_steps"] == debug_config.total_env_steps
    assert second["training"]["updates"] > updates_at_stop
    rows = _rows(workdir)
    steps = [r["env_steps"] for r in rows]
    assert steps == sorted(set(steps)), steps  # No duplicates, in order.
    assert not any("ghost" in r for r in rows)
    # Counters continue; the replay was restored (its fill did not restart from one collect).
    resumed = next(r for r in rows if r["env_steps"] > stopped_at)
    assert resumed["env_steps"] == stopped_at + per_iter
    assert resumed["updates"] > updates_at_stop
    length = debug_config.replay_capacity // debug_config.num_envs
    expected_fill = min(1.0, resumed["iteration"] * debug_config.collect_steps / length)
    assert resumed["replay_fill"] == pytest.approx(expected_fill)
    assert rows[-1]["episodes"] >= rows[0]["episodes"]

    # Files a user looks at.
    for name in ("config.json", "metrics.csv", "dashboard.png", "summary.json"):
        assert os.path.getsize(os.path.join(workdir, name)) > 0, name
    with open(os.path.join(workdir, "metrics.csv")) as f:
        assert len(f.read().strip().splitlines()) == len(rows) + 1
    summary = json.load(open(os.path.join(workdir, "summary.json")))
    assert {"training", "performance", "learning"} <= set(summary)
    tags = scalar_tags(workdir)
    assert "env_steps_per_s" in tags and "loss/total" in tags, sorted(tags)[:20]
    # The world model is scored at every checkpoint, in TensorBoard and evals.jsonl.
    assert "wm/open_loop_1/board_exact" in tags and "wm/posterior/board_error" in tags
    evals = [json.loads(line) for line in open(os.path.join(workdir, monitor.EVALS_JSONL))]
    assert all(0.0 <= e["wm/open_loop_1/board_error"] <= 1.0 for e in evals), evals
    assert max(s for s, _ in tags["env_steps_per_s"]) == debug_config.total_env_steps

    # Evaluate the final checkpoint, export its params and evaluate the export.
    result = evaluate.evaluate(
        workdir,
        episodes=4,
        max_pieces=30,
        baselines=("random",),
        gif_frames=10,
        export=str(tmp_path / "export"),
    )
    step = debug_config.total_env_steps
    assert result["step"] == step
    names = [r["policy"] for r in result["rows"]]
    assert names[0] == "agent (greedy)"
    for ext in ("json", "md", "gif"):
        assert os.path.exists(os.path.join(workdir, f"eval_{step}.{ext}"))
    s = result["rows"][0]["stats"]
    assert s["games"] == 4 and 0 <= s["capped_share"] <= 1 and s["pieces_mean"] <= 30
    assert play.pooled([result["rows"][0]["games"]]) == s  # Each game kept, to pool seeds.
    again = evaluate.evaluate(
        checkpoint=str(tmp_path / "export"), episodes=4, max_pieces=30, baselines=(), gif=False
    )
    assert again["rows"][0]["stats"] == s  # Same params, same seeds: the same games.

    # A damaged checkpoint gives a clear error, not a traceback from deep inside orbax.
    bad = tmp_path / "bad"
    shutil.copytree(workdir, bad)
    ckdir = bad / "checkpoints" / str(step) / "params"
    for root, _, files in os.walk(ckdir):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"garbage")
    with pytest.raises(UserError, match="cannot be restored"):
        evaluate.evaluate(str(bad), episodes=2, max_pieces=5, baselines=(), gif=False)
    with pytest.raises(UserError, match="no such checkpoint"):
        evaluate.evaluate(workdir, step=step + 1, episodes=2, max_pieces=5, gif=False)

    # The loop benchmark (experiments.benchmark --what=loop) on the same, now compiled, config.
    r = bench.benchmark_loop(debug_config, iterations=2, repeats=1)
    assert r["env_steps_per_s"] > 0 and r["updates_per_s"] > 0
    assert r["replayed_steps_per_s"] == r["updates_per_s"] * 4 * 16
    # Its variants: fields checked before timing, set on a copy.
    from absl import app

    from experiments import benchmark

    v = benchmark.parse_variant("batch_size=8,agent.lr=0.01,env.reward_mode=standard", debug_config)
    assert v == {"batch_size": 8, "agent.lr": 0.01, "env.reward_mode": "standard"}
    changed = benchmark.apply_variant(debug_config, v)
    assert (changed.batch_size, changed.agent.lr, changed.env.reward_mode) == (8, 0.01, "standard")
    assert debug_config.batch_size == 4
    for bad in ("batch=8", "agent.nope=1", "batch_size"):
        with pytest.raises(app.UsageError, match="--loop_variant"):
            benchmark.parse_variant(bad, debug_config)


def test_train_minutes_budget_is_summed_over_resumes(tmp_path, debug_config):
    """A spent wall-clock budget ends the run (as `end`) without collecting more."""
    workdir = str(tmp_path / "run")
    first = trainer.run(debug_config, workdir, max_iterations=2, log=lambda _: None)
    assert first["stopped"] == "stopped: max_iterations", first["stopped"]
    steps, wall = first["training"]["env_steps"], first["training"]["wall_s"]
    assert steps == 2 * debug_config.num_envs * debug_config.collect_steps
    # Resume with a budget below the time already spent: nothing more is collected.
    debug_config.train_minutes = wall / 60 / 2
    log = []
    second = trainer.run(debug_config, workdir, allow_config_change=True, log=log.append)
    assert second["stopped"] == f"end: train_minutes={wall / 120} spent", second["stopped"]
    assert second["training"]["env_steps"] == steps
    assert second["training"]["checkpoints"] == [steps]
    assert not any("re-run the same command" in line for line in log), log
