"""The board world model with heuristic features in its critic: `lines_only.py` plus features.

    python -m experiments.train --config=experiments/board_features.py [--config.FIELD=VALUE ...]

The same agent as `lines_only.py` (the model predicts every placement's next board, lines and game
over; placements are ranked by the predicted reward plus the critic's value of the predicted
board), except that the critic also reads the classic heuristic features (holes, row and column
transitions, wells, heights) computed on the board it values, which is always the model's
prediction. The env's per-placement afterstate features (computed by the real rules) are off:
nothing the real rules compute about a placement ranks it or trains the critic.
"""

from __future__ import annotations

import ml_collections

from experiments import lines_only


def get_config() -> ml_collections.ConfigDict:
    c = lines_only.get_config()
    c.agent.board_features = True
    return c
