"""Saved runs: config files and `config.json`, atomic JSON, opening a run's checkpoint."""

from __future__ import annotations

import importlib.util
import json
import os
from typing import Any

import jax
import ml_collections

from experiments.lib import build, schema
from experiments.lib import checkpoints as ckpt
from experiments.lib.errors import UserError

CONFIG_JSON = "config.json"


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
    """Lines 'field: saved -> current' for every field that differs."""
    a, b = flat(saved), flat(current)
    missing = object()
    return [
        f"{k}: {a.get(k, missing) if k in a else '<absent>'} -> {b[k] if k in b else '<absent>'}"
        for k in sorted(set(a) | set(b))
        if a.get(k, missing) != b.get(k, missing)
    ]


def load_config_json(workdir: str) -> dict[str, Any] | None:
    path = os.path.join(workdir, CONFIG_JSON)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def config_from_json(d: dict[str, Any]) -> ml_collections.ConfigDict:
    """A saved config over the schema: a field it lacks (added to the schema since it was saved)
    takes its schema default, which is chosen to be the behaviour from before the field."""

    def merge(base: dict[str, Any], saved: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for k, v in saved.items():
            nested = isinstance(v, dict) and isinstance(base.get(k), dict)
            out[k] = merge(base[k], v) if nested else v
        return out

    return ml_collections.ConfigDict(merge(schema.defaults().to_dict(), d))


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


def load_checkpoint(workdir: str | None, checkpoint: str | None, step: int | None):
    """(config ConfigDict, env, agent, params, step) from a workdir checkpoint or an export;
    the env has the evaluation rules (no training step limit)."""
    if bool(workdir) == bool(checkpoint):
        raise UserError("give exactly one of --workdir and --checkpoint")
    folder = workdir or checkpoint
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: no such folder")
    saved = load_config_json(folder)
    if saved is None:
        raise UserError(f"{folder}: no {CONFIG_JSON} (not a training run or export)")
    config = config_from_json(saved)
    env = build.make_env(config, evaluation=True)
    agent = build.make_agent(config, env)
    # Restored onto this process's first device, whatever the devices that saved them (a
    # multi-process run saves its params replicated over all processes' devices).
    here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=here),
                            jax.eval_shape(agent.init, jax.random.key(0)).params)  # fmt: skip
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


def check_config_change(workdir: str, current: dict[str, Any], allow: bool) -> None:
    """UserError if `workdir` holds a run of another config (unless `allow`)."""
    saved = load_config_json(workdir)
    if saved is None:
        return
    diff = config_diff(saved, current)
    if diff and not allow:
        raise UserError(
            f"the config differs from the one saved in {workdir}/{CONFIG_JSON}:\n  "
            + "\n  ".join(diff)
            + "\nUse the saved config, another --workdir, or --allow_config_change."
        )
