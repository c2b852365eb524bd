"""Two processes, one machine: `experiments.train --distributed` on the CPU backend.

Each process has one CPU device; the collectives go through gloo (jax's default CPU
implementation once jax.distributed is initialized). The processes train experiments/debug.py
data-parallel: 4 envs and a batch of 4 split 2 + 2, parameters replicated. Checked:

- both processes end with the same train state (a digest of each process's own copy, written
  by mp_worker.py outside the workdir), laid out over both processes' devices;
- a SIGTERM to process 1 alone stops both at the same iteration, with a checkpoint, and a
  re-run resumes from it and trains to the end;
- only process 0 writes logs: process 1 runs with umask 077, so anything it creates lacks the
  group-read bit; the only such paths are orbax's per-process checkpoint shards;
- the checkpoint holds the trained params, and a single process can read it back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading

import jax
import numpy as np
import pytest
from conftest import CACHE, subprocess_env

from experiments import debug
from experiments.lib import monitor, runs

pytestmark = pytest.mark.slow  # Two runs of two processes: ~4-8 min on a 2-core CPU.

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(ROOT, "tests", "experiments", "mp_worker.py")
RUN_TIMEOUT_S = 900
UMASK = (0o022, 0o077)  # Process 0's, process 1's.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(tmp_path, workdir: str, name: str, on_line=None) -> tuple[list[str], str, list]:
    """Runs both processes to the end: (process 0's output lines, process 1's output, the two
    digests). `on_line(line, procs)` sees each line of process 0's output as it comes."""
    port = _free_port()
    procs, logs = [], []
    for i in range(2):
        cmd = [
            sys.executable,
            WORKER,
            "--config=experiments/debug.py",
            f"--workdir={workdir}",
            f"--compile_cache={CACHE}",
            "--distributed",
            f"--coordinator_address=localhost:{port}",
            "--num_processes=2",
            f"--process_id={i}",
        ]
        env = subprocess_env(
            MP_DIGEST=str(tmp_path / f"{name}_{i}.json"), PYTHONPATH=ROOT, PYTHONUNBUFFERED="1"
        )
        env.pop("XLA_FLAGS", None)  # One CPU device per process.
        log = open(tmp_path / f"{name}_{i}.log", "w+")
        logs.append(log)
        out = subprocess.PIPE if i == 0 else log
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True, umask=UMASK[i]
        )
        procs.append(proc)
    watchdog = threading.Timer(RUN_TIMEOUT_S, lambda: [p.kill() for p in procs])
    watchdog.start()
    lines = []
    try:
        for line in procs[0].stdout:
            lines.append(line.rstrip("\n"))
            logs[0].write(line)
            if on_line is not None:
                on_line(line, procs)
        codes = [p.wait() for p in procs]
    finally:
        watchdog.cancel()
        for p in procs:
            if p.poll() is None:
                p.kill()
    logs[1].seek(0)
    other = logs[1].read()
    for log in logs:
        log.close()
    assert codes == [0, 0], (codes, "\n".join(lines[-30:]), other[-3000:])
    digests = [json.load(open(tmp_path / f"{name}_{i}.json")) for i in range(2)]
    return lines, other, digests


def _check_layout(digests, stopped: str, env_steps: int | None = None) -> None:
    a, b = digests
    for i, d in enumerate(digests):
        assert d["process"] == i and d["processes"] == 2, d
        assert d["devices"] == 2 and d["local_devices"] == 1, d
        # Parameters and optimizer state span both processes' devices, replicated; each
        # process holds its own half of the envs.
        assert d["agent_devices"] == [2] and d["agent_replicated"], d
        assert d["global_envs"] == 4 and d["local_envs"] == 2, d
        assert d["stopped"] == stopped, d
    for key in ("agent_sha256", "params_sha256", "env_steps", "updates"):
        assert a[key] == b[key], (key, a, b)
    if env_steps is not None:
        assert a["env_steps"] == env_steps


def _check_writers(workdir: str) -> list[str]:
    """Every path that process 1 created is an orbax per-process shard; returns the top level."""
    for root, dirs, files in os.walk(workdir):
        for name in dirs + files:
            path = os.path.join(root, name)
            if stat.S_IMODE(os.stat(path).st_mode) & 0o040:
                continue  # Made by process 0 (umask 022).
            rel = os.path.relpath(path, workdir).split(os.sep)
            shard = any(part.endswith("process_1") for part in rel)  # ocdbt.process_1, ...
            assert rel[0] == "checkpoints" and shard, f"process 1 wrote {rel}"
    assert stat.S_IMODE(os.stat(workdir).st_mode) & 0o040, "process 1 made the workdir"
    return sorted(os.listdir(workdir))


def _events(names: list[str]) -> list[str]:
    return [n for n in names if n.startswith("events.out.tfevents")]


def _sha256(tree) -> str:
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        digest.update(np.asarray(leaf).tobytes())
    return digest.hexdigest()


def test_two_processes_train_stop_together_and_resume(tmp_path):
    config = debug.get_config()
    workdir = str(tmp_path / "run")
    os.makedirs(workdir)  # By the user, as a shared folder would be.
    sent = []

    def signal_process_1(line, procs):
        # After the first progress line both processes run the loop (their collectives keep
        # them within an iteration of each other), so process 1 has its signal handlers.
        if "env/s" in line and not sent:
            procs[1].send_signal(signal.SIGTERM)
            sent.append(line)

    lines, other, digests = _launch(tmp_path, workdir, "first", on_line=signal_process_1)
    assert sent, lines[-20:]
    text = "\n".join(lines)
    assert "2 cpu device(s)" in text, text[-3000:]
    _check_layout(digests, "stopped: signal")
    stopped_at = digests[0]["env_steps"]
    assert 0 < stopped_at < config.total_env_steps
    assert f"re-run the same command to resume from env step {stopped_at:,}" in text
    # Only process 0 logs (process 1 prints its signal handler's notice, and jax's warnings).
    assert "env/s" not in other and not re.search(r"^checkpoint \d", other, re.M), other[-3000:]
    names = _check_writers(workdir)
    for name in (
        "config.json",
        "metrics.jsonl",
        "metrics.csv",
        "dashboard.png",
        "summary.json",
        "evals.jsonl",
        "checkpoints",
    ):
        assert name in names, names
    assert len(_events(names)) == 1, names  # One TensorBoard writer.
    ckpts = os.listdir(os.path.join(workdir, "checkpoints"))
    assert str(stopped_at) in ckpts, ckpts

    # Both killed; the same command again resumes and runs to the end.
    lines, other, digests = _launch(tmp_path, workdir, "second")
    text = "\n".join(lines)
    assert f"env step {stopped_at:,}, update " in text and "resumed from" in text, text[-3000:]
    assert "resumed from" not in other
    _check_layout(digests, "end", env_steps=config.total_env_steps)
    assert digests[0]["updates"] > 0
    names = _check_writers(workdir)
    assert len(_events(names)) == 2, names  # One per run.
    rows = monitor.read_jsonl(os.path.join(workdir, monitor.METRICS_JSONL))
    steps = [r["env_steps"] for r in rows]
    assert steps == sorted(set(steps)), steps  # Written once per log point, not twice.
    per_iter = config.num_envs * config.collect_steps
    assert next(s for s in steps if s > stopped_at) == stopped_at + per_iter
    assert steps[-1] == config.total_env_steps
    evals = [e["env_steps"] for e in monitor.read_jsonl(os.path.join(workdir, "evals.jsonl"))]
    assert evals == sorted(set(evals)) and {stopped_at, config.total_env_steps} <= set(evals)
    summary = json.load(open(os.path.join(workdir, monitor.SUMMARY_JSON)))
    assert summary["stopped"] == "end"
    assert len(summary["training"]["devices"]) == 2

    # The final checkpoint holds what both processes trained; one process reads it back.
    _, _, _, params, step = runs.load_checkpoint(workdir, None, None)
    assert step == config.total_env_steps
    assert _sha256(params) == digests[0]["params_sha256"]
