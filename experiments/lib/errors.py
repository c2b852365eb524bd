"""The error types of the experiments: a user's mistake is printed as one line, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake a user can fix (bad config, bad workdir, missing checkpoint): no traceback."""


class Diverged(UserError):
    """NaN or Inf in the losses or parameters."""
