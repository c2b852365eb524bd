"""Dense reward: lines plus potential-based shaping (height, holes, bumpiness)."""

from __future__ import annotations

import ml_collections

from experiments import lines_only


def get_config() -> ml_collections.ConfigDict:
    c = lines_only.get_config()
    # Lines plus potential-based shaping and a game-over penalty.
    c.env.reward_mode = "standard"
    # Shaping already guides the agent: no pre-filled boards.
    c.curriculum.enabled = False
    return c
