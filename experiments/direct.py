"""Direct mode (8 primitive moves, SRS kicks, gravity, hold) with the dense `standard` reward.

    python -m experiments.train --config=experiments/direct.py

A piece takes ~10-20 decisions here instead of one, so credit for a line is spread over far
more steps than in placement mode; every published learned agent that clears many lines
decides once per piece. Reported for completeness next to the placement headline runs.
"""

from __future__ import annotations

import ml_collections

from experiments import standard


def get_config() -> ml_collections.ConfigDict:
    c = standard.get_config()
    # Primitive moves: no-op, left, right, rotate cw/ccw, soft drop, hard drop, hold.
    c.env.action_mode = "direct"
    # Afterstate features are per placement; direct mode has none.
    c.env.placement_features = False
    # The Q head scores placements by those features, so it is off here too.
    c.agent.qhead = False
    # Episodes are ~10-20x longer in steps than in placement mode.
    c.env.max_steps = 10_000
    return c
