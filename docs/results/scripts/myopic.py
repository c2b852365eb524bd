"""Session-5 check: greedy play on the standard reward's one-step value, and on Yiyuan Lee's
weights, 64 games capped at 2,000 pieces (docs/RESULTS.md, session 5).

The standard reward of a placement is lines + phi(afterstate) - phi(s) + the per-piece bonus;
phi(s) and the bonus are the same for every placement, so ranking placements by
lines + phi(afterstate) is greedy on the one-step reward.

    PYTHONPATH=. python docs/results/scripts/myopic.py
"""

import jax
import numpy as np

from tetris_jax import heuristics
from tetris_jax.env import DEFAULT_SHAPING, Tetris

WEIGHTS = {
    "one_step_standard_reward": {"lines": 1.0, **DEFAULT_SHAPING},
    "yiyuan_lee": {"lines": 0.76, "aggregate_height": -0.51, "holes": -0.36, "bumpiness": -0.18},
}


def main() -> None:
    env = Tetris(action_mode="placement")
    for name, weights in WEIGHTS.items():
        heuristics.WEIGHTS[name] = weights  # Registered for this process only.
        heuristics.POLICIES = (*heuristics.POLICIES, name)
        r = heuristics.play(env, name, jax.random.key(0), 64, 2000)
        print(
            f"{name}: lines/game mean {np.mean(r.lines):.1f}, median {np.median(r.lines):.0f}, "
            f"capped {np.mean(r.capped):.0%}, pieces/game {np.mean(r.pieces):.0f}"
        )


if __name__ == "__main__":
    main()
