"""Train the agent: `python -m experiments.train --config=experiments/lines_only.py
[--workdir=DIR] [--config.FIELD=VALUE ...]`. Re-running the same command resumes.

The device runs one jitted collect (policy + vmapped env steps + replay writes, a lax.scan) and
jitted chunks of train steps at the configured train ratio; this loop only counts, logs,
checkpoints and evaluates. Multi-process (several hosts, or several processes on one): launch
the same command in every process with `--distributed` (or JAX_DISTRIBUTED=1):
jax.distributed.initialize() is called before any other JAX call (under SLURM, Open MPI or
Kubernetes it finds the coordinator, the process count and the process id itself; elsewhere
pass --coordinator_address (or JAX_COORDINATOR_ADDRESS), --num_processes and --process_id),
the data are sharded over jax.devices(), and only process 0 writes logs. See BUILD.md.
"""

from __future__ import annotations

import difflib
import os
import sys

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (get_config()).", lock_config=True)
flags.DEFINE_string("workdir", None, "Run folder (default: runs/<config file name>).")
flags.DEFINE_bool("allow_config_change", False, "Resume even if the config differs.")
flags.DEFINE_integer(
    "max_iterations",
    0,
    "Stop (with a checkpoint) after this many iterations "
    "of this invocation; 0 = run to total_env_steps.",
)
flags.DEFINE_string(
    "compile_cache",
    "~/.cache/tetris-dreamer-jax/xla",
    "Persistent XLA compilation cache ('' = off).",
)
flags.DEFINE_bool(
    "distributed",
    os.environ.get("JAX_DISTRIBUTED", "") == "1",
    "Call jax.distributed.initialize() first (multi-process; also JAX_DISTRIBUTED=1).",
)
flags.DEFINE_string(
    "coordinator_address",
    None,
    "With --distributed: host:port of process 0's "
    "coordinator (default: JAX_COORDINATOR_ADDRESS or auto-detected).",
)
flags.DEFINE_integer(
    "num_processes",
    None,
    "With --distributed: the number of processes (default: auto-detected, e.g. under SLURM).",
)
flags.DEFINE_integer(
    "process_id", None, "With --distributed: this process's id, 0..N-1 (default: auto-detected)."
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import jax
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO.

    given = [
        f"--{k}"
        for k in ("coordinator_address", "num_processes", "process_id")
        if FLAGS[k].value is not None
    ]
    if given and not FLAGS.distributed:
        raise app.UsageError(f"{', '.join(given)} need(s) --distributed")
    if FLAGS.distributed:
        jax.distributed.initialize(
            coordinator_address=FLAGS.coordinator_address,
            num_processes=FLAGS.num_processes,
            process_id=FLAGS.process_id,
        )
        from jax.experimental import multihost_utils

        # The first collective sets up the CPU collectives (gloo), and that set-up gives up if
        # the processes reach it more than 30 s apart, as they would at the first collect if
        # one process loads the compiled program from the persistent cache and another
        # compiles it (only process 0 writes cache entries). Later collectives wait as long
        # as it takes, so meet once now, while the processes are in step.
        multihost_utils.sync_global_devices("experiments.train: started")
    if FLAGS.compile_cache:
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(FLAGS.compile_cache))
    from experiments.lib.errors import UserError
    from experiments.lib.trainer import run

    config = FLAGS.config
    if config is None:
        raise app.UsageError("--config is required, e.g. --config=experiments/lines_only.py")
    workdir = FLAGS.workdir or os.path.join("runs", _config_name())
    try:
        run(
            config,
            workdir,
            allow_config_change=FLAGS.allow_config_change,
            max_iterations=FLAGS.max_iterations or None,
            install_signals=True,
        )
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's parsing, with one line instead of a traceback for an unknown config field."""
    try:
        return app.parse_flags_with_usage(argv)
    except (AttributeError, KeyError) as err:
        print(f"error: {unknown_field(argv) or err}", file=sys.stderr)
        sys.exit(2)


def unknown_field(argv: list[str]) -> str | None:
    """'--config.a.b: no field b in config.a; closest: ...' for the first --config.FIELD of
    `argv` that the config file lacks; None if there is none (or the file cannot be read)."""
    import ml_collections

    from experiments.lib import runs

    path = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
    try:
        config = runs.load_config_file(path) if path else None
    except Exception:  # noqa: BLE001 - its own error is reported instead.
        return None
    for arg in argv[1:]:
        if not arg.startswith("--config."):
            continue
        name = arg[2:].split("=", 1)[0]
        parts, node = name.split(".")[1:], config
        for i, part in enumerate(parts):
            where = ".".join(["config", *parts[:i]])
            if not isinstance(node, ml_collections.ConfigDict):
                return f"--{name}: {where} is a value, not a group of fields"
            if part not in node:
                fields = sorted(node.keys())
                close = difflib.get_close_matches(part, fields, n=3, cutoff=0.5)
                hint = (
                    f"did you mean {', '.join(f'{where}.{c}' for c in close)}?"
                    if close
                    else f"its fields: {', '.join(fields)}"
                )
                return f"--{name}: {where} has no field {part!r}; {hint}"
            node = node[part]
    return None


def _config_name() -> str:
    path = config_flags.get_config_filename(FLAGS["config"])
    return os.path.splitext(os.path.basename(path))[0]


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
