"""The error types of the experiments: a user's mistake is printed as one line, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class UserError(Exception):
    """A mistake a user can fix (bad config, bad workdir, missing checkpoint): no traceback."""


class Diverged(UserError):
    """NaN or Inf in the losses or parameters."""


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
