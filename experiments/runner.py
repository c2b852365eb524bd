"""`run(config, workdir)`: the host loop of experiments.train (testable in-process)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dreamer_jax import replay
from experiments import ckpt, common, loop, monitor, play
from experiments.common import UserError


class Diverged(UserError):
    """NaN or Inf in the losses or parameters."""


def install_signal_handlers(stop: dict[str, Any]) -> None:
    """SIGINT/SIGTERM ask the loop to stop after the current iteration and save."""

    def handler(signum, frame):
        if stop.get("signal"):
            raise KeyboardInterrupt  # A second signal: stop now.
        stop["signal"] = signal.Signals(signum).name
        print(f"\n{stop['signal']}: saving a checkpoint and stopping...", flush=True)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def check_workdir(workdir: str) -> None:
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, f".write_test_{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as err:
        raise UserError(f"--workdir={workdir}: not writable ({err.strerror})") from None


def check_replay_memory(config: ml_collections.ConfigDict, env) -> int:
    """Bytes per device of the replay; UserError (before any allocation) if it cannot fit."""
    spec = loop.replay_spec(env)
    total = replay.storage_bytes(spec, capacity=config.replay_capacity, num_envs=config.num_envs)
    per_device = total // jax.device_count()
    available, source = replay.device_memory_bytes(jax.local_devices()[0])
    budget = int(available * config.replay_memory_fraction)
    if per_device > budget:
        per_step = total / config.replay_capacity
        most = int(budget * jax.device_count() / per_step) // config.num_envs * config.num_envs
        raise UserError(
            f"config.replay_capacity: got {config.replay_capacity:,} steps = {total:,} bytes "
            f"({per_step:.0f} bytes/step, {per_device:,} per device), more than "
            f"replay_memory_fraction={config.replay_memory_fraction} of {available:,} bytes "
            f"({source}); allowed: replay_capacity <= {most:,}"
        )
    return per_device


def check_config_change(workdir: str, current: dict[str, Any], allow: bool) -> None:
    saved = common.load_config_json(workdir)
    if saved is None:
        return
    diff = common.config_diff(saved, current)
    if diff and not allow:
        raise UserError(
            f"the config differs from the one saved in {workdir}/{common.CONFIG_JSON}:\n  "
            + "\n  ".join(diff)
            + "\nUse the saved config, another --workdir, or --allow_config_change."
        )


def _finite(metrics: list[dict[str, Any]]) -> str | None:
    for m in metrics:
        for k, v in m.items():
            if not np.all(np.isfinite(np.asarray(v))):
                return k
    return None


def run(config: ml_collections.ConfigDict, workdir: str, *, allow_config_change: bool = False,
        max_iterations: int | None = None, install_signals: bool = False,
        log=print) -> dict[str, Any]:  # fmt: skip
    """Train (or resume) in `workdir`; returns the final summary."""
    t_start = time.time()
    main = common.is_main_process()
    plain = common.to_plain(config)  # As given: compared with the saved config on resume.
    config = common.resolve(config)
    # Everything a user can get wrong is checked before compiling or allocating.
    common.check_config(config, jax.device_count())
    env, eval_env = common.make_env(config), common.make_env(config, evaluation=True)
    agent = common.make_agent(config, env)
    replay_bytes = check_replay_memory(config, env)
    check_config_change(workdir, plain, allow_config_change)
    check_workdir(workdir)
    if main:
        common.dump_json(os.path.join(workdir, common.CONFIG_JSON), plain)

    mesh = loop.make_mesh()
    state = loop.init_state(
        env, agent, jax.random.key(config.seed), num_envs=config.num_envs,
        capacity=config.replay_capacity, seq_len=config.seq_len,
        memory_fraction=1.0, mesh=mesh,
    )  # fmt: skip
    checkpoints = ckpt.Checkpointer(workdir, keep_last=config.keep_last,
                                    save_replay=config.save_replay)  # fmt: skip
    c = dict(env_steps=0, updates=0, iterations=0, episodes=0, lines_total=0, debt=0.0,
             train_s=0.0, last_line_step=0, best_eval=None)  # fmt: skip
    latest = checkpoints.latest()
    if latest is not None:
        state, meta, had_replay = checkpoints.restore_state(state, latest)
        c.update(meta["counters"])
        log(
            f"resumed from {checkpoints.directory}/{latest}: env step {c['env_steps']:,}, "
            f"update {c['updates']:,}" + ("" if had_replay else " (replay not saved: empty)")
        )
    metrics = monitor.MetricsLog(workdir, resume_step=c["env_steps"]) if main else None

    collect, train, chunk, calls_per_iter = loop.make_step_fns(config, env, agent, state, mesh)
    train_start = max(config.train_start, config.seq_len * config.num_envs)
    per_iter = config.num_envs * config.collect_steps
    log(f"{jax.device_count()} {jax.default_backend()} device(s); {config.num_envs} envs x "
        f"{config.collect_steps} steps per collect; {chunk} update(s) of "
        f"{config.batch_size}x{config.seq_len} per train call, {calls_per_iter:.3g} calls per "
        f"iteration (train ratio {config.train_ratio}); replay {replay_bytes / 2**20:.1f} MiB "
        f"per device; workdir {workdir}")  # fmt: skip

    stop: dict[str, Any] = {}
    if install_signals:
        install_signal_handlers(stop)
    pending_collect: list[Any] = []
    pending_train: list[Any] = []
    good_train: list[Any] = []
    window = dict(t=time.time(), env_steps=c["env_steps"], updates=c["updates"])
    last_ckpt = time.time()
    last_row: dict[str, Any] = {}
    warned_at = -1
    its = 0

    def wall_s() -> float:
        """Training wall-clock so far, summed over resumes (compiles and evaluations included)."""
        return c["train_s"] + time.time() - t_start

    def check_health() -> None:
        host = jax.device_get(pending_train)
        bad = _finite(host)  # Losses, norms and param_norm: covers the parameters too.
        if bad is not None:
            last = checkpoints.latest()
            raise Diverged(
                f"NaN/Inf in {bad} by update {c['updates']:,} (env step {c['env_steps']:,}); "
                f"training stopped. Last good checkpoint: "
                f"{'none' if last is None else f'{checkpoints.directory}/{last}'} (kept; "
                f"nothing newer was saved)."
            )
        good_train[:] = host

    def log_row() -> dict[str, Any]:
        nonlocal warned_at
        check_health()
        cs = jax.device_get(pending_collect)
        now = time.time()
        dt = max(now - window["t"], 1e-9)
        row: dict[str, Any] = {
            "env_steps": c["env_steps"], "iteration": c["iterations"], "updates": c["updates"],
            "wall_s": c["train_s"] + (now - t_start),
            "env_steps_per_s": (c["env_steps"] - window["env_steps"]) / dt,
            "updates_per_s": (c["updates"] - window["updates"]) / dt,
        }  # fmt: skip
        row["replayed_steps_per_s"] = row["updates_per_s"] * config.batch_size * config.seq_len
        if cs:
            tot = {k: float(sum(float(s[k]) for s in cs)) for k in cs[0] if not k.endswith("_max")}
            eps = tot["episodes"]
            c["episodes"] += int(eps)
            c["lines_total"] += int(tot["lines"])
            if tot["lines"] > 0:
                c["last_line_step"] = c["env_steps"]
            if eps > 0:
                for k in ("return", "length", "lines", "pieces", "score"):
                    row[f"ep_{k}"] = tot[f"ep_{k}_sum"] / eps
                row["ep_lines_max"] = max(float(s["ep_lines_max"]) for s in cs)
            row["replay_fill"] = float(cs[-1]["replay_fill"])
            if "curriculum_rows" in cs[-1]:
                row["curriculum_rows"] = float(cs[-1]["curriculum_rows"])
        row["episodes"], row["lines_total"] = c["episodes"], c["lines_total"]
        if good_train:
            for k in good_train[0]:
                row[k] = float(np.mean([float(m[k]) for m in good_train]))
        pending_collect.clear()
        pending_train.clear()
        window.update(t=now, env_steps=c["env_steps"], updates=c["updates"])
        quiet = c["env_steps"] - c["last_line_step"]
        if config.no_lines_warning_steps and quiet >= config.no_lines_warning_steps:
            if warned_at < 0 or c["env_steps"] - warned_at >= config.no_lines_warning_steps:
                log(f"warning: no line cleared in the last {quiet:,} env steps")
                warned_at = c["env_steps"]
        return row

    def evaluate() -> dict[str, float] | None:
        if not config.eval_episodes:
            return None
        games = play.play_agent(eval_env, agent, state.agent.params, jax.random.key(config.seed),
                                num_games=config.eval_episodes,
                                max_pieces=config.eval_max_pieces)  # fmt: skip
        return play.stats(games)

    def save(reason: str) -> None:
        nonlocal last_ckpt
        check_health()
        ev = evaluate()
        if ev is not None:
            if c["best_eval"] is None or ev["lines_mean"] > c["best_eval"]:
                c["best_eval"] = ev["lines_mean"]
            if metrics is not None:
                row = {"env_steps": c["env_steps"], **{f"eval/{k}": v for k, v in ev.items()}}
                for k, v in row.items():
                    if k != "env_steps":
                        metrics.tb.add_scalar(k, v, global_step=c["env_steps"])
                monitor.append_eval(workdir, {**row, "updates": c["updates"], "wall_s": wall_s()})
        saved = dict(c, train_s=wall_s())
        meta = {"counters": saved, "has_replay": bool(config.save_replay), "reason": reason}
        checkpoints.save(c["env_steps"], state, meta, None if ev is None else ev["lines_mean"])
        last_ckpt = time.time()
        if metrics is not None:
            metrics.flush()
            monitor.write_dashboard(workdir, metrics.rows)
            monitor.write_summary(workdir, summary(ev))
        log(f"checkpoint {c['env_steps']:,} ({reason})"
            + ("" if ev is None else f"; eval lines/game {ev['lines_mean']:.2f}"))  # fmt: skip

    def summary(ev: dict[str, float] | None) -> dict[str, Any]:
        wall = wall_s()
        return {
            "training": {"config": plain, "workdir": os.path.abspath(workdir),
                         "env_steps": c["env_steps"], "updates": c["updates"],
                         "iterations": c["iterations"], "episodes": c["episodes"],
                         "wall_s": wall, "devices": [str(d) for d in jax.devices()],
                         "backend": jax.default_backend(), "jax": jax.__version__,
                         "checkpoints": checkpoints.steps(), "best_checkpoint": checkpoints.best()},
            "performance": {k: last_row.get(k) for k in
                            ("env_steps_per_s", "updates_per_s", "replayed_steps_per_s")},
            "learning": {"lines_total": c["lines_total"], "best_eval_lines": c["best_eval"],
                         "last_eval": ev, **{k: last_row.get(k) for k in (
                             "ep_return", "ep_lines", "ep_pieces", "ep_length", "loss/total",
                             "loss/world_model", "loss/policy", "actor/entropy")}},
        }  # fmt: skip

    budget_s = 60.0 * config.train_minutes  # 0: no wall-clock budget.
    first = True
    first_update = True  # The first update of this process compiles the train step.
    while c["env_steps"] < config.total_env_steps and not stop:
        if budget_s and wall_s() >= budget_s:
            stop["train_minutes"] = True
            break
        state, cstats = collect(state, jnp.float32(c["env_steps"]))
        if pending_collect:
            # At most two iterations in flight: a signal or a log line is not queued behind
            # many iterations of dispatched work.
            jax.block_until_ready(pending_collect[-1])
        pending_collect.append(cstats)
        c["env_steps"] += per_iter
        c["iterations"] += 1
        its += 1
        if c["env_steps"] >= train_start:
            c["debt"] += calls_per_iter
            while c["debt"] >= 1.0:
                if first_update:
                    first_update = False
                    log(f"env step {c['env_steps']:,}: first updates (compiling the train step)")
                state, tm = train(state)
                pending_train.append(tm)
                c["updates"] += chunk
                c["debt"] -= 1.0
        done = c["env_steps"] >= config.total_env_steps
        if max_iterations and its >= max_iterations:
            stop["max_iterations"] = True
        if first or done or stop or c["iterations"] % config.log_every == 0:
            last_row = log_row()
            if metrics is not None:
                metrics.append(last_row)
            log(
                monitor.progress_line(last_row, config.total_env_steps, budget_s)
                + (f" | first line after {time.time() - t_start:.0f}s" if first else "")
            )
            first = False
            if c["iterations"] % config.dashboard_every == 0:
                log(monitor.dashboard_text(last_row))
        if time.time() - last_ckpt >= 60 * config.ckpt_minutes and not done and not stop:
            save("periodic")
    if c["env_steps"] >= config.total_env_steps:
        reason = "end"
    elif stop.get("train_minutes"):
        reason = f"end: train_minutes={config.train_minutes} spent"
    else:
        reason = "stopped: " + ",".join(stop)
    if checkpoints.latest() != c["env_steps"]:
        save(reason)
    final = summary(None)
    final["stopped"] = reason
    if metrics is not None:
        monitor.write_summary(workdir, {**final, "learning": {
            **final["learning"], "last_eval": _last_eval(checkpoints)}})  # fmt: skip
        metrics.close()
    checkpoints.close()
    if not reason.startswith("end"):
        log(f"{reason}; re-run the same command to resume from env step {c['env_steps']:,}.")
    return final


def _last_eval(checkpoints: ckpt.Checkpointer) -> float | None:
    scores = checkpoints.scores()
    return scores[max(scores)] if scores else None
