"""The command lines: bad input is refused before heavy work, multi-device training runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEBUG = "--config=experiments/debug.py"


def _run(module, *args, timeout=600, **env):
    return subprocess.run(
        [sys.executable, "-m", f"experiments.{module}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=subprocess_env(**env),
    )


def _snapshot(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


def test_config_typo_is_refused(tmp_path):
    r = _run("train", DEBUG, f"--workdir={tmp_path}/w", "--config.agent.lrr=0.1")
    assert r.returncode != 0
    assert "lrr" in r.stderr
    assert not os.path.exists(tmp_path / "w")


def test_bad_values_are_refused_before_heavy_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = _run("train", DEBUG, f"--workdir={blocker}/run")
    assert r.returncode == 2 and "not writable" in r.stderr, r.stderr[-2000:]
    r = _run("train", DEBUG, f"--workdir={tmp_path}/big", "--config.replay_capacity=400000000000")
    assert r.returncode == 2 and "config.replay_capacity" in r.stderr, r.stderr[-2000:]
    assert "allowed: replay_capacity <=" in r.stderr
    r = _run("train", DEBUG, f"--workdir={tmp_path}/n", "--config.num_envs=3")
    assert r.returncode == 2 and "config.replay_capacity" in r.stderr, r.stderr[-2000:]
    r = _run("evaluate", f"--workdir={tmp_path}/big")
    assert r.returncode == 2 and "error:" in r.stderr, r.stderr[-2000:]


def test_changed_config_is_refused_and_workdir_untouched(tmp_path, debug_config):
    from experiments.lib import runs

    workdir = tmp_path / "run"
    workdir.mkdir()
    runs.dump_json(str(workdir / "config.json"), runs.to_plain(debug_config))
    (workdir / "metrics.jsonl").write_text(json.dumps({"env_steps": 32}) + "\n")
    before = _snapshot(workdir)
    r = _run("train", DEBUG, f"--workdir={workdir}", "--config.seed=7", "--config.num_envs=8")
    assert r.returncode == 2, r.stderr[-2000:]
    assert "seed: 0 -> 7" in r.stderr and "num_envs: 4 -> 8" in r.stderr
    assert "--allow_config_change" in r.stderr
    assert _snapshot(workdir) == before


def test_evaluate_without_checkpoints(tmp_path, debug_config):
    from experiments.lib import runs

    runs.dump_json(str(tmp_path / "config.json"), runs.to_plain(debug_config))
    r = _run("evaluate", f"--workdir={tmp_path}", "--episodes=2")
    assert r.returncode == 2 and "no checkpoints" in r.stderr, r.stderr[-2000:]


def test_two_cpu_devices(tmp_path):
    steps = 4 * 8 * 4
    r = _run(
        "train",
        DEBUG,
        f"--workdir={tmp_path}/run",
        f"--config.total_env_steps={steps}",
        "--config.eval_episodes=2",
        "--config.log_every=2",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 cpu device(s)" in r.stdout, r.stdout[-2000:]
    with open(tmp_path / "run" / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]
    assert rows[-1]["env_steps"] == steps and rows[-1]["updates"] > 0
    assert os.path.isdir(tmp_path / "run" / "checkpoints" / str(steps))


@pytest.mark.parametrize("bad", ["--config.curriculum.max_rows=99"])
def test_bad_curriculum(tmp_path, bad):
    r = _run("train", DEBUG, f"--workdir={tmp_path}/w", bad)
    assert r.returncode == 2 and "curriculum.max_rows" in r.stderr, r.stderr[-2000:]
