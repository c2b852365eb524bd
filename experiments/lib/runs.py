"""Saved runs: config files and `config.json`, atomic JSON, opening a run's checkpoint, and
the lock that keeps a second trainer out of a workdir."""

from __future__ import annotations

import errno
import fcntl
import importlib.util
import json
import os
import socket
import time
from typing import Any

import jax
import ml_collections

from experiments.lib import build, schema
from experiments.lib import checkpoints as ckpt
from experiments.lib.errors import UserError

CONFIG_JSON = "config.json"
LOCK = ".lock"


def to_plain(config: ml_collections.ConfigDict) -> dict[str, Any]:
    return json.loads(config.to_json())


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_diff(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Lines 'field: saved -> current' for every field that differs. A null agent field that
    `current` lacks (an unset override of an option since retired: off) is no difference, nor
    is a field that `saved` lacks and `current` has at its schema default (a field added since:
    by the schema's rule its default is the behaviour the run had)."""
    a, b = flat(saved), flat(current)
    default = flat(schema.defaults().to_dict())
    missing = object()
    return [
        f"{k}: {a.get(k, missing) if k in a else '<absent>'} -> {b[k] if k in b else '<absent>'}"
        for k in sorted(set(a) | set(b))
        if a.get(k, missing) != b.get(k, missing)
        and not (k.startswith("agent.") and k not in b and a[k] is None)
        and not (k not in a and k in default and b.get(k, missing) == default[k])
    ]


def load_config_json(workdir: str) -> dict[str, Any] | None:
    path = os.path.join(workdir, CONFIG_JSON)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def config_from_json(d: dict[str, Any]) -> ml_collections.ConfigDict:
    """A saved config over the schema. A field it lacks (added to the schema since it was
    saved) takes its schema default, which by the schema's rule is the behaviour from before
    the field. Fields the schema lacks are kept as saved (a config file may add its own),
    except agent fields, which go to dreamer_jax: a null one (an unset override, e.g. a retired
    option left off) is dropped, a set one refused."""
    base = schema.defaults().to_dict()
    want, got = flat(base), flat(d)
    unknown = sorted(k for k in set(got) - set(want) if k.startswith("agent."))
    retired = [f"{k}={got[k]!r}" for k in unknown if got[k] is not None]
    if retired:
        raise UserError(
            f"{CONFIG_JSON} sets {', '.join(retired)}, which dreamer_jax no longer has (a "
            "retired option?); if it only shaped training, delete it there to evaluate the params"
        )

    def merge(base: dict[str, Any], saved: dict[str, Any], path: str) -> dict[str, Any]:
        out = dict(base)
        for k, v in saved.items():
            if isinstance(v, dict) and isinstance(base.get(k), dict):
                out[k] = merge(base[k], v, f"{path}{k}.")
            elif f"{path}{k}" not in unknown:
                out[k] = v
        return out

    return ml_collections.ConfigDict(merge(base, d, ""))


def is_main_process() -> bool:
    return jax.process_index() == 0


def dump_json(path: str, obj: Any) -> None:
    """Write JSON atomically (a crash never leaves half a file)."""
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(path + ".tmp", path)


def load_config_file(path: str) -> ml_collections.ConfigDict:
    """`get_config()` of a config file given by path (as --config takes it)."""
    spec = importlib.util.spec_from_file_location("_config_file", path)
    if spec is None or spec.loader is None or not os.path.exists(path):
        raise UserError(f"{path}: no such config file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def load_checkpoint(
    workdir: str | None, checkpoint: str | None, step: int | None, *, tetris_only: str = ""
):
    """(config ConfigDict, env, agent, params, step) from a workdir checkpoint or an export;
    the env has the evaluation rules (no training step limit). `tetris_only`: the name of a
    tool that works on Tetris runs only, refusing others with a UserError."""
    if bool(workdir) == bool(checkpoint):
        raise UserError("give exactly one of --workdir and --checkpoint")
    folder = workdir or checkpoint
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: no such folder")
    saved = load_config_json(folder)
    if saved is None:
        raise UserError(f"{folder}: no {CONFIG_JSON} (not a training run or export)")
    config = config_from_json(saved)
    if tetris_only and config.env.suite != "tetris":
        raise UserError(
            f"{tetris_only} works on Tetris runs only; {folder} is a {config.env.suite} "
            f"{config.env.name!r} run (experiments.evaluate works on any)"
        )
    env = build.make_env(config, evaluation=True)
    agent = build.make_agent(config, env)
    # Restored onto this process's first device, whatever the devices that saved them (a
    # multi-process run saves its params replicated over all processes' devices).
    here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=here),
        jax.eval_shape(agent.init, jax.random.key(0)).params,
    )
    if checkpoint:
        params = ckpt.load_exported(checkpoint, abstract)
        info_path = os.path.join(checkpoint, "export.json")
        step = json.load(open(info_path))["step"] if os.path.exists(info_path) else 0
    else:
        checkpoints = ckpt.Checkpointer(workdir, create=False)
        params, step = checkpoints.restore_params(abstract, step)
        checkpoints.close()
    return config, env, agent, params, step


def check_workdir(workdir: str) -> None:
    """UserError unless `workdir` exists (made if need be) and can be written."""
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, f".write_test_{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as err:
        raise UserError(f"--workdir={workdir}: not writable ({err.strerror})") from None


def saved_config(workdir: str) -> tuple[dict[str, Any] | None, str]:
    """(the config of the run in `workdir`, where it was read): its `config.json` or, when that
    is missing, the config kept in the metadata of its latest checkpoint; (None, "") if none."""
    saved = load_config_json(workdir)
    if saved is not None:
        return saved, os.path.join(workdir, CONFIG_JSON)
    if not os.path.isdir(os.path.join(workdir, "checkpoints")):
        return None, ""
    checkpoints = ckpt.Checkpointer(workdir, create=False)
    try:
        latest = checkpoints.latest()
        if latest is None:
            return None, ""
        saved = checkpoints.restore_meta(latest).get("config")  # None: saved before it was kept.
    finally:
        checkpoints.close()
    where = f"{checkpoints.directory}/{latest} ({CONFIG_JSON} is missing)"
    return (saved, where) if saved is not None else (None, "")


def check_config_change(workdir: str, current: dict[str, Any], allow: bool) -> None:
    """UserError if `workdir` holds a run of another config (unless `allow`)."""
    saved, where = saved_config(workdir)
    if saved is None:
        return
    diff = config_diff(saved, current)
    if diff and not allow:
        raise UserError(
            f"the config differs from the one saved in {where}:\n  "
            + "\n  ".join(diff)
            + "\nUse the saved config, another --workdir, or --allow_config_change."
        )


class WorkdirLock:
    """One trainer per workdir: an exclusive `flock` on WORKDIR/.lock, held while it runs.

    The file holds its holder's pid, host and start time (shown to a second trainer, which is
    refused). The kernel drops the lock when its holder's file is closed, on any exit: a crashed
    or killed trainer frees it without clean-up, and the stale text in the file means nothing
    once nobody holds the lock. Readers (evaluate, calibration) take no lock.

    NFS: Linux emulates `flock` there with POSIX byte-range locks, which are seen by every client
    of an NFSv4 server (or v3 with lockd). With the `nolock` mount option (and some FUSE file
    systems) locks are local to one host, so two hosts could still train in one workdir; a
    crashed holder on NFSv4 keeps the lock until the server's lease expires (about 90 s), and
    (POSIX semantics) any close of the file in the holder's process drops it: one lock per process.
    """

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, LOCK)
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.pread(fd, 1000, 0).decode(errors="replace").strip()
            os.close(fd)
            if err.errno in (errno.EAGAIN, errno.EACCES):
                raise UserError(
                    f"--workdir={os.path.dirname(self.path)} is in use by another trainer "
                    f"({holder or 'holder unknown'}; lock {self.path}): wait for it to end or "
                    f"stop it, or use another --workdir"
                ) from None
            raise UserError(
                f"cannot lock {self.path}: {err.strerror} (a file system without locks?)"
            ) from None
        since = time.strftime("%Y-%m-%d %H:%M:%S %z")
        os.ftruncate(fd, 0)
        os.pwrite(
            fd, f"pid {os.getpid()} on host {socket.gethostname()} since {since}\n".encode(), 0
        )
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)  # Closing drops the lock.
            self.fd = None
