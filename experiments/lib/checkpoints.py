"""Checkpoints in WORKDIR/checkpoints (orbax): the loop state, params alone, and counters.

Each step directory holds three items: "state" (params, optimizer, slow critic, return
normaliser, env states, policy carries, RNG and, when `save_replay`, the replay buffer),
"params" (the agent's parameters alone, so evaluation loads little) and "meta" (JSON: counters,
host-side statistics, the run's config). Steps are env steps. The last `keep_last` steps are
kept plus the best by evaluation score.

Once a save has committed, the sha256 of every file of its items goes to STEP/sha256.json; a
restore first checks the files it reads against it, so damaged bytes are refused (naming the
newest intact checkpoint) instead of restored. A checkpoint without that file (saved before it
existed, or killed between the commit and its write) is restored unchecked.

Multi-process runs: every process calls `save` and the restores (orbax writes each process's
shards and synchronises the processes); only process 0 writes the scores file, and each
process keeps the scores in memory (read once, when the Checkpointer is made), so no process
reads a file that another is writing.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import shutil
from typing import Any

import jax
import orbax.checkpoint as ocp

from experiments.lib.errors import UserError

SCORES = "eval_scores.json"
DIGESTS = "sha256.json"
ITEMS = ("state", "params", "meta")


def _drop_empty(tree: Any) -> Any:
    """`tree` with zero-size arrays (orbax cannot save them; e.g. the policy's previous action
    features when there are none) as None; `_put_back_empty` restores them."""
    return jax.tree.map(lambda x: None if getattr(x, "size", 1) == 0 else x, tree)


def _put_back_empty(restored: Any, template: Any) -> Any:
    return jax.tree.map(lambda t, r: t if getattr(t, "size", 1) == 0 else r, template, restored)


def _to_tree(state: Any, save_replay: bool) -> dict[str, Any]:
    tree = {
        "agent": state.agent,
        "env": state.env,
        "last": state.last,
        "policy": state.policy,
        "ep_return": state.ep_return,
        "key": jax.random.key_data(state.key),
    }
    if save_replay:
        tree["replay"] = state.replay
    return _drop_empty(tree)


def _to_tree_full(state: Any, save_replay: bool) -> dict[str, Any]:
    """`_to_tree` with the zero-size arrays kept (the template they are put back from)."""
    tree = dict(
        agent=state.agent,
        env=state.env,
        last=state.last,
        policy=state.policy,
        ep_return=state.ep_return,
        key=state.key,
    )
    if save_replay:
        tree["replay"] = state.replay
    return tree


def _abstract(tree: Any) -> Any:
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
        tree,
    )


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tree_bytes(tree: Any) -> int:
    return sum(int(getattr(x, "nbytes", 0)) for x in jax.tree.leaves(tree))


def _dir_bytes(path: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, files in os.walk(path)
        for name in files
    )


def _is_disk_full(err: BaseException) -> bool:
    """Whether `err` or an exception it was raised from is ENOSPC (orbax and tensorstore wrap it,
    sometimes as text only)."""
    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


class Checkpointer:
    """Save / restore / prune the checkpoints of one workdir."""

    def __init__(
        self, workdir: str, *, keep_last: int = 3, save_replay: bool = True, create: bool = True
    ):
        self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
        if not create and not os.path.isdir(self.directory):
            raise UserError(f"no checkpoints: {self.directory} does not exist (train first)")
        self.keep_last, self.save_replay = keep_last, save_replay
        options = ocp.CheckpointManagerOptions(create=create, enable_async_checkpointing=False)
        self.manager = ocp.CheckpointManager(self.directory, options=options)
        self.scores_path = os.path.join(self.directory, SCORES)
        self.primary = jax.process_index() == 0
        self._scores: dict[int, float] = {}
        if os.path.exists(self.scores_path):
            with open(self.scores_path) as f:
                self._scores = {int(k): float(v) for k, v in json.load(f).items()}

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def latest(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def scores(self) -> dict[int, float]:
        return dict(self._scores)

    def save(self, step: int, state: Any, meta: dict[str, Any], score: float | None) -> None:
        """Writes a checkpoint (replacing one of the same step), its digests and score, prunes.

        UserError if the disk is (or gets) full: the checkpoints already there are kept."""
        tree = _to_tree(state, self.save_replay)
        latest = self.latest()
        if latest is not None:
            need, basis = _dir_bytes(self._step_dir(latest)), f"the size of checkpoint {latest}"
        else:
            need = _tree_bytes(tree) + _tree_bytes(state.agent.params)
            basis = "the state's size"
        free = shutil.disk_usage(self.directory).free
        if free < need:
            self._disk_full(step, need, basis, free, latest)
        try:
            if step in self.manager.all_steps():
                self.manager.delete(step)
            args = ocp.args.Composite(
                state=ocp.args.StandardSave(tree),
                params=ocp.args.StandardSave(state.agent.params),
                meta=ocp.args.JsonSave(meta),
            )
            self.manager.save(step, args=args, force=True)
            self.manager.wait_until_finished()
            if jax.process_index() == 0:
                self._write_digests(step)
            scores = self.scores()
            if score is not None:
                scores[step] = float(score)
            self._prune(scores)
        except Exception as err:  # noqa: BLE001 - ENOSPC comes wrapped in many types.
            if not _is_disk_full(err):
                raise
            for tmp in glob.glob(os.path.join(self.directory, f"{step}.orbax-checkpoint-tmp*")):
                shutil.rmtree(tmp, ignore_errors=True)
            self._disk_full(step, need, basis, shutil.disk_usage(self.directory).free, latest)

    def _disk_full(self, step: int, need: int, basis: str, free: int, latest: int | None):
        kept = (
            "no earlier checkpoint"
            if latest is None
            else f"the last good checkpoint {self.directory}/{latest} is kept"
        )
        raise UserError(
            f"no space left on device for checkpoint {step} in {self.directory}: it needs about "
            f"{_mib(need)} ({basis}) and {_mib(free)} are free; {kept}. Free some space (or "
            f"lower keep_last, or save_replay=False) and re-run to resume."
        ) from None

    def _step_dir(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    def _write_digests(self, step: int) -> None:
        root = self._step_dir(step)
        digests = {}
        for item in ITEMS:
            for dirpath, _, files in os.walk(os.path.join(root, item)):
                for name in files:
                    path = os.path.join(dirpath, name)
                    digests[os.path.relpath(path, root)] = _sha256(path)
        tmp = os.path.join(root, DIGESTS + ".tmp")
        with open(tmp, "w") as f:
            json.dump(dict(sorted(digests.items())), f, indent=0)
        os.replace(tmp, os.path.join(root, DIGESTS))

    def damaged(self, step: int, items: tuple[str, ...] = ITEMS) -> str | None:
        """The first file of `items` of checkpoint `step` that is missing or differs from its
        digest at save; None if all match (or the checkpoint has no digests to check)."""
        root = self._step_dir(step)
        try:
            with open(os.path.join(root, DIGESTS)) as f:
                digests = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return DIGESTS
        for rel, digest in digests.items():
            if rel.split(os.sep, 1)[0] not in items:
                continue
            path = os.path.join(root, rel)
            if not os.path.isfile(path) or _sha256(path) != digest:
                return rel
        return None

    def _verify(self, step: int, items: tuple[str, ...], advice) -> None:
        """UserError if checkpoint `step` is damaged, naming the newest intact one and
        `advice(intact_step, damaged_newer_steps)` (how to use it)."""
        bad = self.damaged(step, items)
        if bad is None:
            return
        older = [s for s in self.steps() if s < step]
        intact = next((s for s in reversed(older) if self.damaged(s, items) is None), None)
        if intact is None:
            tail = (
                f"no intact checkpoint is left: delete {self.directory} to start over, or "
                f"use another --workdir"
            )
        else:
            newer = [s for s in self.steps() if s > intact]
            tail = f"the newest intact checkpoint is {intact}: {advice(intact, newer)}"
        raise UserError(
            f"checkpoint {step} in {self.directory} cannot be restored: {bad} is "
            f"corrupt (its sha256 differs from the one recorded at save); "
            f"{tail}"
        )

    def _prune(self, scores: dict[int, float]) -> None:
        steps = self.steps()
        keep = set(steps[-self.keep_last :])
        live = {s: v for s, v in scores.items() if s in steps}
        if live:
            keep.add(max(live, key=lambda s: (live[s], s)))
        for s in steps:
            if s not in keep:
                self.manager.delete(s)
        self._scores = {s: v for s, v in sorted(scores.items()) if s in keep}
        if self.primary:
            tmp = self.scores_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump({str(s): v for s, v in self._scores.items()}, f)
            os.replace(tmp, self.scores_path)

    def best(self) -> int | None:
        live = {s: v for s, v in self.scores().items() if s in self.steps()}
        return max(live, key=lambda s: (live[s], s)) if live else None

    def _check_step(self, step: int | None) -> int:
        steps = self.steps()
        if not steps:
            raise UserError(f"no checkpoints in {self.directory} (train first)")
        if step is None:
            return steps[-1]
        if step not in steps:
            raise UserError(
                f"--step={step}: no such checkpoint in {self.directory}; available: {steps}"
            )
        return step

    def restore_state(self, state: Any, step: int | None = None) -> tuple[Any, dict, bool]:
        """Restores into `state`'s structure and shardings: (state, meta, replay_restored)."""
        step = self._check_step(step)

        def advice(intact: int, newer: list[int]) -> str:
            paths = " ".join(self._step_dir(s) for s in newer)
            return f"to resume from it, delete the newer checkpoint(s) (rm -r {paths}) and re-run"

        self._verify(step, ("state", "meta"), advice)
        meta = self.restore_meta(step)
        has_replay = bool(meta.get("has_replay", False))
        target = _abstract(_to_tree(state, has_replay))
        try:
            out = self.manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))
            )
        except Exception as err:  # noqa: BLE001 - orbax raises many types for damaged files.
            raise UserError(
                f"checkpoint {step} in {self.directory} cannot be restored "
                f"(corrupt, or from a different config): {err}"
            ) from err
        tree = _put_back_empty(out["state"], _to_tree_full(state, has_replay))
        state = state.replace(
            agent=tree["agent"],
            env=tree["env"],
            last=tree["last"],
            policy=tree["policy"],
            ep_return=tree["ep_return"],
            key=jax.random.wrap_key_data(tree["key"]),
            replay=tree["replay"] if has_replay else state.replay,
        )
        return state, meta, has_replay

    def restore_meta(self, step: int) -> dict[str, Any]:
        try:
            out = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        except Exception as err:  # noqa: BLE001
            raise UserError(
                f"checkpoint {step} in {self.directory}: metadata unreadable "
                f"(corrupt checkpoint?): {err}"
            ) from err
        return dict(out["meta"])

    def restore_params(self, abstract_params: Any, step: int | None = None) -> tuple[Any, int]:
        step = self._check_step(step)
        self._verify(step, ("params",), lambda intact, newer: f"pass --step={intact}")
        try:
            out = self.manager.restore(
                step, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract_params))
            )
        except Exception as err:  # noqa: BLE001
            raise UserError(
                f"checkpoint {step} in {self.directory} cannot be restored "
                f"(corrupt, or from a different config): {err}"
            ) from err
        return out["params"], step

    def close(self) -> None:
        self.manager.close()


def export_params(path: str, params: Any, config_json: dict[str, Any]) -> None:
    """A params-only export (small, committable): PATH/params (orbax) and PATH/config.json."""
    path = os.path.abspath(path)
    os.makedirs(path, exist_ok=True)
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(os.path.join(path, "params"), params, force=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config_json, f, indent=2)


def load_exported(path: str, abstract_params: Any) -> Any:
    target = os.path.join(os.path.abspath(path), "params")
    if not os.path.isdir(target):
        raise UserError(f"--checkpoint={path}: no params export there (expected {target})")
    try:
        with ocp.StandardCheckpointer() as ckptr:
            return ckptr.restore(target, abstract_params)
    except Exception as err:  # noqa: BLE001
        raise UserError(f"--checkpoint={path}: cannot be restored: {err}") from err
