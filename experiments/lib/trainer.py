"""The host loop of `experiments.train`: `run(config, workdir)` (testable in-process).

The device does the work (`loop.make_step_fns`: a jitted collect and jitted chunks of updates);
this loop counts, logs, checkpoints and evaluates. `Trainer` holds one run: `__init__` checks
everything a user can get wrong and restores the latest checkpoint, `run` iterates until the
env-step or wall-clock budget is spent or a signal arrives, then checkpoints.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from experiments.lib import build, loop, monitor, runs, world_model
from experiments.lib import checkpoints as ckpt
from experiments.lib.errors import Diverged


@dataclasses.dataclass
class Counters:
    """What a run has done, summed over resumes; saved in every checkpoint's metadata."""

    env_steps: int = 0
    updates: int = 0
    iterations: int = 0
    episodes: int = 0
    lines_total: int = 0
    debt: float = 0.0  # Train calls owed to the train ratio, carried between iterations.
    train_s: float = 0.0  # Wall-clock of training before this process started.
    last_line_step: int = 0  # Env step of the last iteration that cleared a line.
    best_eval: float | None = None


def install_signal_handlers(signals: dict[str, Any]) -> None:
    """SIGINT/SIGTERM ask the loop to stop after the current iteration and save (the loop reads
    `signals["signal"]`; with several processes, at its next agreement, `Trainer.agree`)."""

    def handler(signum, frame):
        if signals.get("signal"):
            raise KeyboardInterrupt  # A second signal: stop now.
        signals["signal"] = signal.Signals(signum).name
        print(f"\n{signals['signal']}: saving a checkpoint and stopping...", flush=True)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def first_non_finite(metrics: list[dict[str, Any]]) -> str | None:
    for m in metrics:
        for k, v in m.items():
            if not np.all(np.isfinite(np.asarray(v))):
                return k
    return None


def window_rates(
    window: tuple[float, int, int, float], now: float, env_steps: int, updates: int, paused_s: float
) -> tuple[float, float]:
    """(env steps/s, updates/s) since `window` = (time, env steps, updates, paused seconds) at
    its start, the seconds paused since (compiles, checkpoints) left out."""
    t0, steps0, updates0, paused0 = window
    dt = max(now - t0 - (paused_s - paused0), 1e-9)
    return (env_steps - steps0) / dt, (updates - updates0) / dt


class Trainer:
    """One training run in `workdir`: checked and restored on construction."""

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        workdir: str,
        *,
        allow_config_change: bool = False,
        log=print,
    ):
        self.t_start = time.time()
        self.main = runs.is_main_process()
        # Multi-process: only process 0 prints (the others would print the same lines).
        self.log, self.workdir = (log if self.main else lambda _text: None), workdir
        self.lock: runs.WorkdirLock | None = None
        self.checkpoints: ckpt.Checkpointer | None = None
        self.metrics: monitor.MetricsLog | None = None
        self.plain = runs.to_plain(config)  # As given: compared with the saved config on resume.
        config = self.config = build.resolve(config)
        # Everything a user can get wrong is checked before compiling or allocating.
        build.check_config(config, jax.device_count())
        self.env = build.make_env(config)
        self.eval_env = build.make_env(config, evaluation=True)
        self.task = build.task(self.env)  # Evaluation and its score: Tetris' or generic.
        self.agent = build.make_agent(config, self.env)
        self.replay_bytes = build.check_replay_memory(config, loop.replay_spec(self.env))
        runs.check_config_change(workdir, self.plain, allow_config_change)
        if self.main:  # Only process 0 writes files besides its checkpoint shards.
            runs.check_workdir(workdir)
            self.lock = runs.WorkdirLock(workdir)
            self.lock.acquire()
        try:
            self._restore(config, workdir)
        except BaseException:
            self.close(quiet=True)
            raise

    def _restore(self, config: ml_collections.ConfigDict, workdir: str) -> None:
        """The initial state, restored from the latest checkpoint if any; then `config.json`
        (only now: a failed restore leaves the workdir's config as it was)."""
        log = self.log
        self.mesh = loop.make_mesh()
        self.state = loop.init_state(
            self.env,
            self.agent,
            jax.random.key(config.seed),
            num_envs=config.num_envs,
            capacity=config.replay_capacity,
            seq_len=config.seq_len,
            memory_fraction=1.0,
            mesh=self.mesh,
        )
        self.checkpoints = ckpt.Checkpointer(
            workdir, keep_last=config.keep_last, save_replay=config.save_replay
        )
        self.c = Counters()
        latest = self.checkpoints.latest()
        if latest is not None:
            self.state, meta, had_replay = self.checkpoints.restore_state(self.state, latest)
            self.c = Counters(**meta["counters"])
            log(
                f"resumed from {self.checkpoints.directory}/{latest}: env step "
                f"{self.c.env_steps:,}, update {self.c.updates:,}"
                + ("" if had_replay else " (replay not saved: empty)")
            )
        if self.main:
            runs.dump_json(os.path.join(workdir, runs.CONFIG_JSON), self.plain)
            # Rows logged after the resumed checkpoint (by a run killed before its next one)
            # are dropped, from the metrics and the evaluations alike.
            self.metrics = monitor.MetricsLog(workdir, resume_step=self.c.env_steps)
            monitor.reconcile_evals(workdir, self.c.env_steps)
        self.collect, self.train, self.chunk, self.calls_per_iter = loop.make_step_fns(
            config, self.env, self.agent, self.state, self.mesh
        )
        self.train_start = max(config.train_start, config.seq_len * config.num_envs)
        self.per_iter = config.num_envs * config.collect_steps
        self.budget_s = 60.0 * config.train_minutes  # 0: no wall-clock budget.
        # Device results not yet read back, and the last finite train metrics.
        self.pending_collect: list[Any] = []
        self.pending_train: list[Any] = []
        self.good_train: list[Any] = []
        # Seconds spent compiling and checkpointing (left out of the rates), the step functions
        # compiled so far in this process, and the window of the rates: (time, env steps,
        # updates, paused seconds) when it began.
        self.paused_s = 0.0
        self.compiled: set[str] = set()
        self.window = (time.time(), self.c.env_steps, self.c.updates, 0.0)
        self.last_ckpt = time.time()
        self.last_row: dict[str, Any] = {}
        self.warned_at = -1

    def close(self, quiet: bool = False) -> None:
        """Closes the files and frees the workdir's lock (idempotent). `quiet`: on the way out of
        an error, whose message a second error (a full disk again, say) must not replace."""
        for name in ("metrics", "checkpoints"):
            obj = getattr(self, name)
            setattr(self, name, None)
            if obj is not None:
                try:
                    obj.close()
                except Exception:
                    if not quiet:
                        raise
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def wall_s(self) -> float:
        """Training wall-clock so far, summed over resumes (compiles and evaluations included)."""
        return self.c.train_s + time.time() - self.t_start

    # -- one iteration -------------------------------------------------------------------------

    def paused(self, fn, *args):
        """fn(*args) with its wall-clock left out of env/s and upd/s (the device work queued
        before it is waited for first, so that is not left out)."""
        jax.block_until_ready(self.state)
        t = time.time()
        out = fn(*args)
        self.paused_s += time.time() - t
        return out

    def call(self, name: str, fn, *args):
        """A jitted step function; its first call in this process compiles it (a jit call
        returns once compiled, before the work is done): announced with its duration."""
        if name in self.compiled:
            return fn(*args)
        self.log(f"env step {self.c.env_steps:,}: compiling {name}...")
        t = time.time()
        out = self.paused(fn, *args)
        self.compiled.add(name)
        self.log(f"compiled {name} in {time.time() - t:.1f} s")
        return out

    def iterate(self) -> bool:
        """One collect and the train calls it pays for; returns whether an update ran."""
        c = self.c
        self.state, cstats = self.call(
            "collect", self.collect, self.state, jnp.float32(c.env_steps)
        )
        if self.pending_collect:
            # At most two iterations in flight: a signal or a log line is not queued behind
            # many iterations of dispatched work.
            jax.block_until_ready(self.pending_collect[-1])
        self.pending_collect.append(cstats)
        c.env_steps += self.per_iter
        c.iterations += 1
        updated = False
        if c.env_steps >= self.train_start:
            c.debt += self.calls_per_iter
            while c.debt >= 1.0:
                self.state, tm = self.call("the train step", self.train, self.state)
                self.pending_train.append(tm)
                c.updates += self.chunk
                c.debt -= 1.0
                updated = True
        return updated

    # -- logging -------------------------------------------------------------------------------

    def check_health(self) -> None:
        """Diverged if the pending train metrics (losses, norms, param norm) are not finite."""
        host = jax.device_get(self.pending_train)
        bad = first_non_finite(host)
        if bad is not None:
            last = self.checkpoints.latest()
            raise Diverged(
                f"NaN/Inf in {bad} by update {self.c.updates:,} (env step "
                f"{self.c.env_steps:,}); training stopped. Last good checkpoint: "
                f"{'none' if last is None else f'{self.checkpoints.directory}/{last}'} (kept; "
                f"nothing newer was saved)."
            )
        self.good_train[:] = host

    def log_row(self) -> dict[str, Any]:
        """The metrics row of the iterations since the last one (and their episodes)."""
        self.check_health()
        c, config = self.c, self.config
        cs = jax.device_get(self.pending_collect)
        now = time.time()
        env_rate, update_rate = window_rates(
            self.window, now, c.env_steps, c.updates, self.paused_s
        )
        row: dict[str, Any] = {
            "env_steps": c.env_steps,
            "iteration": c.iterations,
            "updates": c.updates,
            "wall_s": c.train_s + (now - self.t_start),
            "env_steps_per_s": env_rate,
            "updates_per_s": update_rate,
        }
        row["replayed_steps_per_s"] = row["updates_per_s"] * config.batch_size * config.seq_len
        if cs:
            tot = {k: float(sum(float(s[k]) for s in cs)) for k in cs[0] if not k.endswith("_max")}
            eps = tot["episodes"]
            c.episodes += int(eps)
            if "lines" in tot:  # Tetris.
                c.lines_total += int(tot["lines"])
                if tot["lines"] > 0:
                    c.last_line_step = c.env_steps
            if eps > 0:
                for k in ("return", *self.env.episode_metrics):
                    row[f"ep_{k}"] = tot[f"ep_{k}_sum"] / eps
                if "ep_lines_max" in cs[0]:
                    row["ep_lines_max"] = max(float(s["ep_lines_max"]) for s in cs)
            row["replay_fill"] = float(cs[-1]["replay_fill"])
            if "curriculum_rows" in cs[-1]:
                row["curriculum_rows"] = float(cs[-1]["curriculum_rows"])
        row["episodes"] = c.episodes
        if config.env.suite == "tetris":
            row["lines_total"] = c.lines_total
        if self.good_train:
            for k in self.good_train[0]:
                row[k] = float(np.mean([float(m[k]) for m in self.good_train]))
        self.pending_collect.clear()
        self.pending_train.clear()
        self.window = (now, c.env_steps, c.updates, self.paused_s)
        self._warn_if_no_lines()
        return row

    def _warn_if_no_lines(self) -> None:
        every = self.config.no_lines_warning_steps if self.config.env.suite == "tetris" else 0
        quiet = self.c.env_steps - self.c.last_line_step
        since_warned = self.c.env_steps - self.warned_at
        if every and quiet >= every and (self.warned_at < 0 or since_warned >= every):
            self.log(f"warning: no line cleared in the last {quiet:,} env steps")
            self.warned_at = self.c.env_steps

    # -- checkpoints ---------------------------------------------------------------------------

    def evaluate(self) -> dict[str, float] | None:
        """Greedy episodes (Tetris: games on the empty board); `self.task.SCORE` of them ranks
        checkpoints."""
        config = self.config
        if not config.eval_episodes:
            return None
        return self.task.evaluate(
            self.eval_env,
            self.agent,
            self.state.agent.params,
            jax.random.key(config.seed),
            episodes=config.eval_episodes,
            max_steps=config.eval_max_pieces,
        )

    def world_model_metrics(self) -> dict[str, float]:
        """The world model scored on greedy games ("wm/..." scalars; experiments.world_model
        reports the same on more games)."""
        config = self.config
        if not config.wm_episodes:
            return {}
        report = world_model.measure(
            self.agent,
            self.state.agent.params,
            self.eval_env,
            jax.random.key(config.seed + 1),
            episodes=config.wm_episodes,
            max_pieces=config.wm_max_pieces,
        )
        return world_model.flat_metrics(report)

    def _meta(self, reason: str) -> dict[str, Any]:
        """What a checkpoint records besides the state: counters (wall time so far), config."""
        counters = dataclasses.replace(self.c, train_s=self.wall_s())
        return {
            "counters": dataclasses.asdict(counters),
            "config": self.plain,
            "has_replay": bool(self.config.save_replay),
            "reason": reason,
        }

    def save(self, reason: str) -> None:
        """Evaluate, checkpoint, then (once it committed) log the evaluation and refresh the
        metrics files, dashboard and summary."""
        self.check_health()
        c = self.c
        try:
            ev = self.evaluate()
            wm = self.world_model_metrics()
        except Exception as e:
            # The training state is sound; only its scoring failed. Checkpoint it unscored (so a
            # re-run resumes here and loses nothing), then stop with the error.
            self.log(
                f"evaluation at env step {c.env_steps:,} failed ({type(e).__name__}: {e}); "
                "checkpointing without a score, then stopping"
            )
            self.checkpoints.save(c.env_steps, self.state, self._meta(f"{reason}; unscored"), None)
            self.last_ckpt = time.time()
            raise
        score = None if ev is None else ev[self.task.SCORE]
        if score is not None and (c.best_eval is None or score > c.best_eval):
            c.best_eval = score
        meta = self._meta(reason)
        counters = meta["counters"]
        self.checkpoints.save(c.env_steps, self.state, meta, score)
        self.last_ckpt = time.time()
        if self.metrics is not None:
            for k, v in wm.items():
                self.metrics.tb.add_scalar(k, v, global_step=c.env_steps)
            if ev is not None:
                row = {f"eval/{k}": v for k, v in ev.items()}
                for k, v in row.items():
                    self.metrics.tb.add_scalar(k, v, global_step=c.env_steps)
                monitor.append_eval(
                    self.workdir,
                    {
                        "env_steps": c.env_steps,
                        **row,
                        **wm,
                        "updates": c.updates,
                        "wall_s": counters["train_s"],
                    },
                )
            self.metrics.flush()
            monitor.write_dashboard(self.workdir, self.metrics.rows)
            monitor.write_summary(self.workdir, self.summary(ev))
        what = "lines/game" if self.task.SCORE == "lines_mean" else "return/episode"
        self.log(
            f"checkpoint {c.env_steps:,} ({reason})"
            + ("" if ev is None else f"; eval {what} {score:.2f}")
        )

    def summary(self, ev: dict[str, float] | None) -> dict[str, Any]:
        c, last = self.c, self.last_row
        return {
            "training": {
                "config": self.plain,
                "workdir": os.path.abspath(self.workdir),
                "env_steps": c.env_steps,
                "updates": c.updates,
                "iterations": c.iterations,
                "episodes": c.episodes,
                "wall_s": self.wall_s(),
                "devices": [str(d) for d in jax.devices()],
                "backend": jax.default_backend(),
                "jax": jax.__version__,
                "checkpoints": self.checkpoints.steps(),
                "best_checkpoint": self.checkpoints.best(),
            },
            "performance": {
                k: last.get(k) for k in ("env_steps_per_s", "updates_per_s", "replayed_steps_per_s")
            },
            "learning": {
                "lines_total": c.lines_total,
                "best_eval_lines": c.best_eval,
                "last_eval": ev,
                **{
                    k: last.get(k)
                    for k in (
                        "ep_return",
                        "ep_lines",
                        "ep_pieces",
                        "ep_length",
                        "loss/total",
                        "loss/world_model",
                        "loss/policy",
                        "actor/entropy",
                    )
                },
            },
        }

    # -- the loop ------------------------------------------------------------------------------

    def log_line_info(self) -> None:
        config = self.config
        self.log(
            f"{jax.device_count()} {jax.default_backend()} device(s); {config.num_envs} envs "
            f"x {config.collect_steps} steps per collect; {self.chunk} update(s) of "
            f"{config.batch_size}x{config.seq_len} per train call, "
            f"{self.calls_per_iter:.3g} calls per iteration (train ratio "
            f"{config.train_ratio}); replay {self.replay_bytes / 2**20:.1f} MiB per device; "
            f"workdir {self.workdir}"
        )

    def agree(self, signals: dict[str, Any], stop: dict[str, Any]) -> bool:
        """The decisions that every process must take at the same iteration (or the others wait
        forever in the next collective): adds "signal" (a signal reached any process) and
        "train_minutes" (the wall-clock budget is spent) to `stop`, and returns whether a
        periodic checkpoint is due. Clocks are process 0's: the processes' clocks differ. With
        several processes this is one small all-gather per iteration."""
        flags = np.array(
            [
                bool(signals.get("signal")),
                bool(self.budget_s) and self.wall_s() >= self.budget_s,
                time.time() - self.last_ckpt >= 60 * self.config.ckpt_minutes,
            ],
            np.int32,
        )
        if jax.process_count() > 1:
            every = multihost_utils.process_allgather(flags)  # (processes, 3)
            flags = np.array([every[:, 0].max(), every[0, 1], every[0, 2]])
        if flags[0]:
            stop["signal"] = signals.get("signal") or "on another process"
        if flags[1]:
            stop["train_minutes"] = True
        return bool(flags[2])

    def run(
        self, *, max_iterations: int | None = None, install_signals: bool = False
    ) -> dict[str, Any]:
        """Train to the end of the budget (or a stop); returns the final summary."""
        self.log_line_info()
        signals: dict[str, Any] = {}  # Written by the signal handlers at any time.
        if install_signals:
            install_signal_handlers(signals)
        try:
            final = self.finish(self._loop(signals, max_iterations))
        except BaseException:
            self.close(quiet=True)  # The lock is freed whatever happened.
            raise
        self.close()
        return final

    def _loop(self, signals: dict[str, Any], max_iterations: int | None) -> dict[str, Any]:
        """Iterates until the budget is spent or a stop; returns why it stopped."""
        config, c = self.config, self.c
        stop: dict[str, Any] = {}  # Only `agree` and this loop write: the same on every process.
        its, first = 0, True
        self.agree(signals, stop)  # A resumed run may have spent its budget already.
        while c.env_steps < config.total_env_steps and not stop:
            self.iterate()
            its += 1
            done = c.env_steps >= config.total_env_steps
            if max_iterations and its >= max_iterations:
                stop["max_iterations"] = True
            ckpt_due = self.agree(signals, stop)
            if first or done or stop or c.iterations % config.log_every == 0:
                self.last_row = self.log_row()
                if self.metrics is not None:
                    self.metrics.append(self.last_row)
                self.log(
                    monitor.progress_line(self.last_row, config.total_env_steps, self.budget_s)
                    + (f" | first line after {time.time() - self.t_start:.0f}s" if first else "")
                )
                first = False
                if c.iterations % config.dashboard_every == 0:
                    self.log(monitor.dashboard_text(self.last_row))
            if ckpt_due and not (done or stop):
                self.paused(self.save, "periodic")
        return stop

    def finish(self, stop: dict[str, Any]) -> dict[str, Any]:
        """The final checkpoint (unless the latest is of this step), summary and log close."""
        config, c = self.config, self.c
        if c.env_steps >= config.total_env_steps:
            reason = "end"
        elif stop.get("train_minutes"):
            reason = f"end: train_minutes={config.train_minutes} spent"
        else:
            reason = "stopped: " + ",".join(stop)
        saved = self.checkpoints.latest() != c.env_steps
        if saved:
            self.save(reason)
        final = self.summary(None)
        final["stopped"] = reason
        if self.metrics is not None:
            if not saved:  # A rerun with nothing left to do: the dashboard a kill may have cost.
                self.metrics.flush()
                monitor.write_dashboard(self.workdir, self.metrics.rows)
            scores = self.checkpoints.scores()
            last_eval = scores[max(scores)] if scores else None
            monitor.write_summary(
                self.workdir, {**final, "learning": {**final["learning"], "last_eval": last_eval}}
            )
        if not reason.startswith("end"):
            self.log(f"{reason}; re-run the same command to resume from env step {c.env_steps:,}.")
        return final


def run(
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    allow_config_change: bool = False,
    max_iterations: int | None = None,
    install_signals: bool = False,
    log=print,
) -> dict[str, Any]:
    """Train (or resume) in `workdir`; returns the final summary."""
    trainer = Trainer(config, workdir, allow_config_change=allow_config_change, log=log)
    return trainer.run(max_iterations=max_iterations, install_signals=install_signals)
