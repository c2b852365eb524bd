"""The name `experiments/lines_only.py` had in session 7 (the board world model, no features).

    python -m experiments.train --config=experiments/board.py   # = lines_only.py

Kept so that the commands of docs/RESULTS.md's session 7 runs still run. The one difference
from what they ran: `agent.actent` (3e-3 then, the default now) is an actor's entropy scale,
and the board agent has no actor.
"""

from __future__ import annotations

import ml_collections

from experiments import lines_only


def get_config() -> ml_collections.ConfigDict:
    return lines_only.get_config()
