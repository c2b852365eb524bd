"""`python -m experiments.train` (same flags), then a digest of this process's final state.

Used by test_multiprocess.py: each process of a multi-process run writes, to $MP_DIGEST (a file
outside the workdir), a SHA-256 of its copy of the replicated train state (params, optimizer,
slow critic, return normaliser), one of the params alone, and how the state was laid out over
the processes.
"""

from __future__ import annotations

import hashlib
import json
import os

import jax
import numpy as np
from absl import app

from experiments import train
from experiments.lib import trainer

_run = trainer.Trainer.run


def _host(leaf: jax.Array) -> np.ndarray:
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    return np.asarray(leaf.addressable_data(0))


def sha256(tree) -> str:
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        digest.update(_host(leaf).tobytes())
    return digest.hexdigest()


def run_and_dump(self: trainer.Trainer, **kwargs):
    out = _run(self, **kwargs)
    agent = jax.tree.leaves(self.state.agent)
    env = jax.tree.leaves(self.state.env)[0]
    info = {
        "process": jax.process_index(),
        "processes": jax.process_count(),
        "devices": jax.device_count(),
        "local_devices": jax.local_device_count(),
        "agent_sha256": sha256(self.state.agent),
        "params_sha256": sha256(self.state.agent.params),
        "env_steps": self.c.env_steps,
        "updates": self.c.updates,
        "stopped": out["stopped"],
        "agent_devices": sorted({len(x.sharding.device_set) for x in agent}),
        "agent_replicated": all(x.sharding.is_fully_replicated for x in agent),
        "global_envs": env.shape[0],
        "local_envs": sum(s.data.shape[0] for s in env.addressable_shards),
    }
    with open(os.environ["MP_DIGEST"], "w") as f:
        json.dump(info, f)
    return out


if __name__ == "__main__":
    trainer.Trainer.run = run_and_dump
    app.run(train.main)
