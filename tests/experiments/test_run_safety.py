"""A run's data survive kills, full disks, damaged files, a second trainer and config mistakes.

One short debug run (checkpoints at env steps 64 and 128, finished) is made once; every test
works on its own copy.
"""

from __future__ import annotations

import collections
import errno
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
from conftest import subprocess_env

from experiments import debug
from experiments.lib import build, monitor, runs, trainer
from experiments.lib import checkpoints as ckpt
from experiments.lib.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOTAL = 4 * 8 * 4  # Four iterations of the debug config.


def _config():
    c = debug.get_config()
    c.total_env_steps = TOTAL
    return c


def _quiet(_):
    pass


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("base") / "run")
    trainer.run(_config(), workdir, max_iterations=2, log=_quiet)
    trainer.run(_config(), workdir, log=_quiet)
    return workdir


@pytest.fixture
def workdir(base_run, tmp_path):
    path = str(tmp_path / "run")
    shutil.copytree(base_run, path)
    assert ckpt.Checkpointer(path, create=False).steps() == [TOTAL // 2, TOTAL]
    return path


def _read(path):
    with open(path) as f:
        return f.read()


def _garble(path, n=1000):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(max(0, size // 2 - n // 2))
        f.write(bytes((i * 37 + 11) % 256 for i in range(min(n, size))))


def _largest_file(folder):
    files = [os.path.join(r, n) for r, _, names in os.walk(folder) for n in names]
    return max(files, key=os.path.getsize)


def test_failed_restore_leaves_config_json(workdir):
    before = _read(os.path.join(workdir, runs.CONFIG_JSON))
    wider = _config()
    wider.env.width = 7
    with pytest.raises(UserError, match="cannot be restored"):
        trainer.Trainer(wider, workdir, allow_config_change=True, log=_quiet)
    assert _read(os.path.join(workdir, runs.CONFIG_JSON)) == before
    runs.check_config_change(workdir, runs.to_plain(_config()), allow=False)  # Plain rerun: ok.
    lock = runs.WorkdirLock(workdir)
    lock.acquire()  # The failed trainer freed it.
    lock.release()


def test_second_trainer_is_refused_and_killed_holder_frees_the_lock(workdir):
    first = trainer.Trainer(_config(), workdir, log=_quiet)
    try:
        holder = rf"pid {os.getpid()} on host {socket.gethostname()} since \d{{4}}-"
        with pytest.raises(UserError, match=rf"in use by another trainer \({holder}"):
            trainer.Trainer(_config(), workdir, log=_quiet)
        _, _, _, _, step = runs.load_checkpoint(workdir, None, None)  # Readers take no lock.
        assert step == TOTAL
    finally:
        first.close()
    code = (
        "import sys, time\nfrom experiments.lib import runs\n"
        "runs.WorkdirLock(sys.argv[1]).acquire()\nprint('held', flush=True)\ntime.sleep(600)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, workdir],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        env=subprocess_env(),
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=rf"\(pid {proc.pid} on host "):
            runs.WorkdirLock(workdir).acquire()
    finally:
        proc.kill()
        proc.wait()
    lock = runs.WorkdirLock(workdir)
    lock.acquire()  # The killed holder's lock went with it.
    lock.release()


def test_evals_reconciled_on_resume_and_kept_on_full_disk(workdir, monkeypatch):
    evals = os.path.join(workdir, monitor.EVALS_JSONL)
    rows = monitor.read_jsonl(evals)
    assert [r["env_steps"] for r in rows] == [TOTAL // 2, TOTAL]
    # Killed runs' leftovers: an earlier evaluation of the last step (before its checkpoint
    # committed; the last row of a step is the one kept) and one of a step never saved.
    stale = {**rows[-1], "wall_s": 1.0}
    ghost = {**rows[-1], "env_steps": TOTAL + 32}
    with open(evals, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in (rows[0], stale, rows[1], ghost))
    t = trainer.Trainer(_config(), workdir, log=_quiet)
    try:
        assert monitor.read_jsonl(evals) == rows

        # The disk fills up during the next save: one clear line, nothing half-written kept.
        t.c.env_steps = TOTAL + 32

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(t.checkpoints.manager, "save", full)
        kept = rf"the last good checkpoint .*checkpoints/{TOTAL} is kept"
        with pytest.raises(
            UserError,
            match=rf"no space left on device for checkpoint "
            rf"{TOTAL + 32} in .*: it needs about [\d.,]+ MiB \(the size of "
            rf"checkpoint {TOTAL}\) and [\d.,]+ MiB are free; {kept}",
        ):
            t.save("periodic")
        assert monitor.read_jsonl(evals) == rows  # No evaluation of a checkpoint not saved.
        assert t.checkpoints.steps() == [TOTAL // 2, TOTAL]
        assert t.checkpoints.damaged(TOTAL) is None

        # Too little free space is seen before writing anything.
        usage = collections.namedtuple("usage", "total used free")
        monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 5000, 5000))
        with pytest.raises(UserError, match=r"and 0\.0 MiB are free"):
            t.save("periodic")
        assert monitor.read_jsonl(evals) == rows
    finally:
        t.close()


def test_a_failed_evaluation_still_checkpoints_and_the_rerun_resumes(tmp_path, monkeypatch):
    """The checkpoint's scoring games raise (here: a bug; in session 10 a file edited under a
    running trainer): the state is saved unscored before the error propagates, so the same
    command resumes from that step and the run's minutes are not lost."""
    workdir = str(tmp_path / "run")

    def broken(self):
        raise RuntimeError("scoring broke")

    monkeypatch.setattr(trainer.Trainer, "evaluate", broken)
    lines = []
    with pytest.raises(RuntimeError, match="scoring broke"):
        trainer.run(_config(), workdir, max_iterations=2, log=lines.append)
    assert any("evaluation at env step 64 failed" in line for line in lines), lines
    assert ckpt.Checkpointer(workdir, create=False).steps() == [TOTAL // 2]
    assert monitor.read_jsonl(os.path.join(workdir, monitor.EVALS_JSONL)) == []
    monkeypatch.undo()
    lines = []
    out = trainer.run(_config(), workdir, log=lines.append)
    assert out["stopped"] == "end"
    assert any(f"from env step {TOTAL // 2:,}" in line or "resum" in line for line in lines), lines
    evals = monitor.read_jsonl(os.path.join(workdir, monitor.EVALS_JSONL))
    assert [r["env_steps"] for r in evals] == [TOTAL]


def test_corrupt_latest_checkpoint_is_refused(workdir):
    directory = os.path.join(workdir, "checkpoints")
    _garble(_largest_file(os.path.join(directory, str(TOTAL), "state")))
    _garble(_largest_file(os.path.join(directory, str(TOTAL), "params")))
    with pytest.raises(UserError) as err:
        trainer.Trainer(_config(), workdir, log=_quiet)
    msg = str(err.value)
    assert f"checkpoint {TOTAL} in {directory} cannot be restored: state/" in msg, msg
    assert f"the newest intact checkpoint is {TOTAL // 2}" in msg, msg
    assert f"rm -r {directory}/{TOTAL})" in msg, msg
    with pytest.raises(UserError, match=rf"params/.* is corrupt.*--step={TOTAL // 2}"):
        runs.load_checkpoint(workdir, None, None)
    # The advice works: without the damaged one, training resumes from the intact one.
    shutil.rmtree(os.path.join(directory, str(TOTAL)))
    t = trainer.Trainer(_config(), workdir, log=_quiet)
    t.close()
    assert t.c.env_steps == TOTAL // 2


def test_missing_config_json_is_taken_from_the_checkpoint(workdir):
    path = os.path.join(workdir, runs.CONFIG_JSON)
    os.remove(path)
    changed = _config()
    changed.seed = 7
    with pytest.raises(UserError, match=r"config.json is missing\):\n  seed: 0 -> 7"):
        trainer.Trainer(changed, workdir, log=_quiet)
    assert not os.path.exists(path)
    t = trainer.Trainer(_config(), workdir, log=_quiet)
    t.close()
    assert runs.load_config_json(workdir) == runs.to_plain(_config())  # Written back.


def test_rerun_of_finished_run_writes_dashboard_and_summary(workdir):
    for name in (monitor.DASHBOARD_PNG, monitor.SUMMARY_JSON):
        os.remove(os.path.join(workdir, name))
    final = trainer.run(_config(), workdir, log=_quiet)
    assert final["stopped"] == "end" and final["training"]["env_steps"] == TOTAL
    for name in (monitor.DASHBOARD_PNG, monitor.SUMMARY_JSON):
        assert os.path.getsize(os.path.join(workdir, name)) > 0, name


def test_bad_env_field_is_blamed_on_the_env():
    c = _config()
    c.env.height = 0
    with pytest.raises(UserError, match=r"^config.env: .*height=0 .*allowed; .*\[4, 28\]"):
        build.check_config(c, 1)


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("--config.agent.foo=1", "--config.agent.foo: config.agent has no field 'foo'"),
        ("--config.fooo=1", "--config.fooo: config has no field 'fooo'"),
        ("--config.agent.lrr=1", "did you mean config.agent.lr?"),
    ],
)
def test_unknown_config_field_is_one_line(tmp_path, arg, expected):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.train",
            "--config=experiments/debug.py",
            f"--workdir={tmp_path}/w",
            arg,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
    )
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1 and expected in r.stderr, r.stderr[-2000:]
    assert not os.path.exists(tmp_path / "w")
