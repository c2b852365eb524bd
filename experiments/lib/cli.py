"""What the entry points share: their checkpoint flags and their `main`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from experiments.lib.errors import UserError


def tool_main(argv: list[str], body: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The `main` of an entry point: refuse stray arguments, quiet absl/orbax logging, run
    `body(*args, **kwargs)`; a UserError is printed as one line and exits with status 2."""
    from absl import app, logging

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO.
    try:
        return body(*args, **kwargs)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def flag_values(*names: str) -> dict[str, Any]:
    """{name: value} of absl flags, to pass them on as keyword arguments."""
    from absl import flags

    return {n: flags.FLAGS[n].value for n in names}


def define_checkpoint_flags() -> None:
    """--workdir, --step and --checkpoint: which saved agent a tool opens
    (`runs.load_checkpoint`)."""
    from absl import flags

    flags.DEFINE_string("workdir", None, "Training run folder (with checkpoints/ and config.json).")
    flags.DEFINE_integer("step", None, "Checkpoint step (env steps); default: the latest.")
    flags.DEFINE_string("checkpoint", None, "A params-only export folder instead of --workdir.")


def checkpoint_tool_main(argv: list[str], body: Callable[..., Any], *names: str) -> Any:
    """`tool_main` of a tool on one saved agent: body(workdir, checkpoint, step, **flags named)."""
    from absl import flags

    f = flags.FLAGS
    return tool_main(argv, body, f.workdir, f.checkpoint, f.step, **flag_values(*names))
