"""Train the agent: `python -m experiments.train --config=experiments/lines_only.py
[--workdir=DIR] [--config.FIELD=VALUE ...]`. Re-running the same command resumes.

The device runs one jitted collect (policy + vmapped env steps + replay writes, a lax.scan) and
jitted chunks of train steps at the configured train ratio; this loop only counts, logs,
checkpoints and evaluates. Multi-host: launch the same command on every host with
`--distributed` (or JAX_DISTRIBUTED=1): jax.distributed.initialize() is called before any
other JAX call, the data are sharded over jax.devices(), and only process 0 writes files.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (get_config()).", lock_config=True)
flags.DEFINE_string("workdir", None, "Run folder (default: runs/<config file name>).")
flags.DEFINE_bool("allow_config_change", False, "Resume even if the config differs.")
flags.DEFINE_integer("max_iterations", 0, "Stop (with a checkpoint) after this many iterations "
                     "of this invocation; 0 = run to total_env_steps.")  # fmt: skip
flags.DEFINE_string("compile_cache", "~/.cache/tetris-dreamer-jax/xla",
                    "Persistent XLA compilation cache ('' = off).")  # fmt: skip
flags.DEFINE_bool(
    "distributed",
    os.environ.get("JAX_DISTRIBUTED", "") == "1",
    "Call jax.distributed.initialize() first (multi-host; also JAX_DISTRIBUTED=1).",
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import jax
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO.

    if FLAGS.distributed:
        jax.distributed.initialize()
    if FLAGS.compile_cache:
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(FLAGS.compile_cache))
    from experiments.lib.errors import UserError
    from experiments.lib.trainer import run

    config = FLAGS.config
    if config is None:
        raise app.UsageError("--config is required, e.g. --config=experiments/lines_only.py")
    workdir = FLAGS.workdir or os.path.join("runs", _config_name())
    try:
        run(config, workdir, allow_config_change=FLAGS.allow_config_change,
            max_iterations=FLAGS.max_iterations or None, install_signals=True)  # fmt: skip
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def _config_name() -> str:
    path = config_flags.get_config_filename(FLAGS["config"])
    return os.path.splitext(os.path.basename(path))[0]


if __name__ == "__main__":
    app.run(main)
